/* The CA configuration checker (policy/config.c, util/nconf.c): OpenSSL's
 * NCONF syntax, unknown keys and sections refused, typed values, profiles
 * and their x509v3 extension sections, CAs, signers and zones. */
#include "fuzz.h"
#include "../../policy/config.h"

#include <limits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[PATH_MAX];
	kr_fuzz_file("keyrite.cnf", data, size, path);
	kr_config *c = NULL;
	kr_err e = kr_config_load(path, &c);
	if (!kr_failed(&e))
		kr_config_free(c);
	return 0;
}
