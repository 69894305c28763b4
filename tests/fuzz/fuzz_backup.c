/* crypto/backup: a backup file and a verifier file as a restore reads
 * them; the first byte picks which. */
#include "fuzz.h"
#include "../../crypto/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		kr_vss_verifier v;
		kr_err e = kr_backup_verifier_decode(data + 1, size - 1, &v);
		uint8_t md[32];
		if (!kr_failed(&e))
			e = kr_backup_verifier_sha256(&v, md);
		(void)kr_failed(&e);
		return 0;
	}
	kr_backup_file f;
	kr_err e = kr_backup_file_decode(data + 1, size - 1, &f);
	if (!kr_failed(&e)) {
		char *pem = NULL;
		size_t len = 0;
		e = kr_backup_file_encode(&f, &pem, &len);
		if (!kr_failed(&e))
			OPENSSL_free(pem);
		kr_backup_file_clear(&f);
	}
	return 0;
}
