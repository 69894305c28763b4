/* esim: plays the meters' eSIMs for the registry's tests: makes N P-256
 * keys on a token, each generated there and never leaving it, and prints
 * the manifest their MNO relays, each CSR signed by its key on the token.
 *
 *   esim TOKEN START N      (PIN from $KR_TEST_PIN)
 *
 * Device ids START, START + 1, ...; a key's label is its device id. One
 * process for all keys: keyrite hsm keygen and hsm csr would take two per
 * key, and SoftHSM reads its whole token directory at each start. */
#include "../../ca/sign.h"
#include "../../hsm/hsm.h"
#include "../../util/cleanup.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const kr_err *e)
{
	fprintf(stderr, "esim: %s\n", e->msg);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: esim TOKEN START N\n");
		return 2;
	}
	unsigned long long start = strtoull(argv[2], NULL, 10);
	long n = strtol(argv[3], NULL, 10);
	char uri[256];
	snprintf(uri, sizeof uri, "pkcs11:token=%s", argv[1]);
	kr_hsm_opts o = {.pin = {.env = "KR_TEST_PIN"}};
	KR_AUTO(kr_hsm) h = NULL;
	kr_err e = kr_hsm_open(uri, &o, &h);
	if (kr_failed(&e))
		return fail(&e);
	puts("device_id,model,version,csr");
	for (long i = 0; i < n; i++) {
		char id[32], key[300];
		snprintf(id, sizeof id, "%llu", start + (unsigned long long)i);
		snprintf(key, sizeof key, "%s;object=%s", uri, id);
		KR_AUTO(kr_hsm_key) k = NULL;
		KR_SIGNING(s);
		KR_AUTO(uint8_t) der = NULL;
		int len = 0;
		e = kr_hsm_keygen(h, key, KR_KEY_EC_P256, &k);
		if (!kr_failed(&e))
			e = kr_signing_init(&s, h, k, 0);
		if (!kr_failed(&e))
			e = kr_sign_csr(&s, id, NULL, &der, &len);
		if (kr_failed(&e))
			return fail(&e);
		unsigned char b64[4096];
		EVP_EncodeBlock(b64, der, len);
		printf("%s,SParkometer,1.1,%s\n", id, b64);
	}
	return 0;
}
