/* keyrite serve's request readers (serve/), apart from the network: the
 * first byte picks one, the rest is its body. A JSON command's body into
 * the registry's arguments (serve/api.c); a DER PKIMessage and what
 * keyrite reads of it before the library processes it: its transactionID,
 * senderNonce and protection certificate (serve/cmp.c); an EST enrollment's
 * base64 PKCS#10 and the device it names (serve/est.c). */
#include "fuzz.h"
#include "../../serve/internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *body = data + 1;
	size_t len = size - 1;
	switch (data[0] % 3) {
	case 0: {
		kr_api_call *c = NULL;
		kr_err e = kr_api_read_call(body, len, KR_CMD_TRANSFER_REQUEST, &c);
		if (!kr_failed(&e))
			kr_api_call_free(c);
		break;
	}
	case 1: {
		OSSL_CMP_MSG *msg = NULL;
		kr_cmp_peek m;
		kr_err e = kr_cmp_read(body, len, &msg, &m);
		if (!kr_failed(&e)) {
			if (m.tid_len < 1 || m.tid_len > 64 || m.nonce_len < 1 ||
			    m.nonce_len > 64 ||
			    (m.protector &&
			     (m.protector < body || m.protector + m.protector_len > body + len)))
				abort(); /* kr_cmp_read promises these bounds */
			const unsigned char *p = m.protector;
			X509_free(p ? d2i_X509(NULL, &p, (long)m.protector_len) : NULL);
			OSSL_CMP_MSG_free(msg);
		}
		break;
	}
	default: {
		uint8_t *der = NULL;
		size_t n = 0;
		char device[80];
		kr_err e = kr_est_read_csr(body, len, &der, &n, device, sizeof device);
		if (!kr_failed(&e) && (!der || !n || !device[0]))
			abort();
		free(der);
		break;
	}
	}
	return 0;
}
