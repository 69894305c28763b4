/* keyrite's key types, in OpenSSL's terms. */
#include "keys.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

static const struct {
	kr_key_type type;
	const char *name;
	int nid; /* curve for EC, 0 otherwise */
	int bits;
} key_types[] = {
	{KR_KEY_EC_P256, "ec-p256", NID_X9_62_prime256v1, 256},
	{KR_KEY_EC_P384, "ec-p384", NID_secp384r1, 384},
	{KR_KEY_RSA_2048, "rsa-2048", 0, 2048},
	{KR_KEY_RSA_3072, "rsa-3072", 0, 3072},
	{KR_KEY_RSA_4096, "rsa-4096", 0, 4096},
	{KR_KEY_ED25519, "ed25519", NID_ED25519, 256},
};
#define N_KEY_TYPES (sizeof key_types / sizeof *key_types)

KR_MUST_USE kr_err kr_key_type_parse(const char *name, kr_key_type *out)
{
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (strcmp(key_types[i].name, name) == 0) {
			*out = key_types[i].type;
			return kr_ok();
		}
	return kr_errf(KR_EINPUT,
		       "unsupported key type '%s' (ec-p256, ec-p384, rsa-2048, rsa-3072, "
		       "rsa-4096, ed25519)",
		       name);
}

const char *kr_key_type_name(kr_key_type t) { return key_types[t].name; }

int kr_key_type_is_rsa(kr_key_type t) { return t >= KR_KEY_RSA_2048 && t <= KR_KEY_RSA_4096; }

int kr_key_type_bits(kr_key_type t) { return key_types[t].bits; }

int kr_key_type_curve(kr_key_type t) { return key_types[t].nid; }

KR_MUST_USE kr_err kr_key_type_of(const EVP_PKEY *pub, kr_key_type *out)
{
	int id = EVP_PKEY_get_base_id(pub);
	if (id == EVP_PKEY_ED25519) {
		*out = KR_KEY_ED25519;
		return kr_ok();
	}
	if (id == EVP_PKEY_RSA) {
		BIGNUM *e = NULL;
		int bits = EVP_PKEY_get_bits(pub);
		KR_OSSL(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_E, &e), KR_EINPUT,
			"RSA key without exponent");
		int f4 = BN_is_word(e, RSA_F4);
		BN_free(e);
		KR_ENSURE(f4, KR_EPOLICY, "RSA public exponent is not 65537");
		for (size_t i = 0; i < N_KEY_TYPES; i++)
			if (kr_key_type_is_rsa(key_types[i].type) && key_types[i].bits == bits) {
				*out = key_types[i].type;
				return kr_ok();
			}
		return kr_errf(KR_EPOLICY, "RSA key of %d bits (keyrite takes 2048, 3072, 4096)",
			       bits);
	}
	if (id == EVP_PKEY_EC) {
		char group[64] = "";
		EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
					       NULL);
		int nid = OBJ_sn2nid(group);
		for (size_t i = 0; i < N_KEY_TYPES; i++)
			if (key_types[i].nid == nid && nid != NID_ED25519) {
				*out = key_types[i].type;
				return kr_ok();
			}
		return kr_errf(KR_EPOLICY, "EC curve '%s' is not allowed (P-256, P-384)",
			       group[0] ? group : "explicit parameters");
	}
	return kr_errf(KR_EPOLICY, "key algorithm %s is not supported",
		       OBJ_nid2sn(id) ? OBJ_nid2sn(id) : "unknown");
}

KR_MUST_USE kr_err kr_throwaway_key(kr_key_type t, EVP_PKEY **out)
{
	if (kr_key_type_is_rsa(t))
		*out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)kr_key_type_bits(t));
	else if (t == KR_KEY_ED25519)
		*out = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else
		*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", OBJ_nid2sn(kr_key_type_curve(t)));
	KR_OSSL(*out, KR_EINTERNAL, "generating a throwaway %s key", kr_key_type_name(t));
	return kr_ok();
}

KR_MUST_USE kr_err kr_spki_sha256(const EVP_PKEY *pub, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pub, &der);
	int ok = n > 0 && EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	KR_OSSL(ok, KR_EINTERNAL, "hashing a public key");
	return kr_ok();
}
