/* CSR intake: PEM or DER, keyrite's own ASN.1 templates and checks of
 * structure, key, signature and extensions (ca/csr.c), then what each
 * profile of the example configuration makes of the request's names and
 * key (policy/config.c), as a batch would. */
#include "fuzz.h"
#include "../../ca/csr.h"
#include "../../policy/config.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static kr_config *cfg;
static kr_csr_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	char path[PATH_MAX];
	kr_fuzz_repo_file("docs/examples/keyrite.cnf", path);
	kr_err e = kr_config_load(path, &cfg);
	if (!kr_failed(&e))
		e = kr_csr_ctx_new(&ctx);
	if (kr_failed(&e))
		abort();
	return 0;
}

/* Every profile of every CA, as a request from a manifest (device_id) or not. */
static void judge(const kr_csr *c)
{
	kr_request_names r = {c->cn, c->dns, c->ndns, c->other, c->nother, NULL};
	char id[80], name[256];
	for (int i = 0; i < kr_config_ncas(cfg); i++) {
		const kr_ca_conf *ca = kr_config_ca_at(cfg, i);
		for (int p = 0; p < ca->nprofiles; p++) {
			const kr_profile *prof = NULL;
			kr_err e = kr_config_profile(cfg, ca, ca->profiles[p], &prof);
			if (kr_failed(&e))
				abort(); /* the example's own profiles */
			e = kr_profile_key_check(prof, c->key_type);
			(void)kr_failed(&e);
			for (int from_manifest = 0; from_manifest < 2; from_manifest++) {
				r.device_id = from_manifest ? "302220601105021" : NULL;
				e = kr_profile_identity(prof, &r, id, sizeof id, name, sizeof name);
				(void)kr_failed(&e);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *der = NULL;
	size_t len = size;
	const uint8_t *p = data;
	if (size >= 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		kr_err e = kr_csr_pem_to_der((const char *)data, size, &der, &len);
		if (kr_failed(&e))
			return 0;
		p = der;
	}
	kr_csr c;
	memset(&c, 0, sizeof c);
	kr_err e = kr_csr_parse(ctx, p, len, &c);
	if (!kr_failed(&e))
		judge(&c);
	kr_csr_clear(&c);
	OPENSSL_free(der);
	return 0;
}
