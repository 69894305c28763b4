/* crypto: keyrite's vocabulary of keys and signatures, in OpenSSL's terms,
 * shared by every layer (the token, the store's audit, the CA).
 *
 * The key types keyrite generates, issues for and signs with. */
#ifndef KR_CRYPTO_KEYS_H
#define KR_CRYPTO_KEYS_H

#include "../util/err.h"

#include <openssl/evp.h>

typedef enum kr_key_type {
	KR_KEY_EC_P256,
	KR_KEY_EC_P384,
	KR_KEY_RSA_2048,
	KR_KEY_RSA_3072,
	KR_KEY_RSA_4096,
	KR_KEY_ED25519,
} kr_key_type;

/* "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519". */
KR_MUST_USE kr_err kr_key_type_parse(const char *name, kr_key_type *out);
const char *kr_key_type_name(kr_key_type t);
/* The type of a public key; KR_EPOLICY for any key keyrite does not support
 * (another curve or size, an RSA exponent other than 65537). */
KR_MUST_USE kr_err kr_key_type_of(const EVP_PKEY *pub, kr_key_type *out);

/* SHA-256 of the key's DER SubjectPublicKeyInfo: how people compare keys. */
KR_MUST_USE kr_err kr_spki_sha256(const EVP_PKEY *pub, uint8_t out[32]);

int kr_key_type_is_rsa(kr_key_type t);
int kr_key_type_bits(kr_key_type t);
int kr_key_type_curve(kr_key_type t); /* an EC type's curve (NID), else 0 */

/* An in-memory key of type t, for drafts that are signed only to be linted. */
KR_MUST_USE kr_err kr_throwaway_key(kr_key_type t, EVP_PKEY **out);

#endif
