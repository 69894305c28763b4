/* The signature algorithm each key type signs with, and checking one. */
#ifndef KR_CRYPTO_SIG_H
#define KR_CRYPTO_SIG_H

#include "keys.h"

#include <stddef.h>
#include <stdint.h>

typedef enum kr_sig_scheme {
	KR_SIG_ECDSA,     /* ECDSA over a digest; DER ECDSA-Sig-Value */
	KR_SIG_ECDSA_RAW, /* the same, r || s as a token gives it (DNSSEC) */
	KR_SIG_RSA_PKCS1, /* RSASSA-PKCS1-v1_5 */
	KR_SIG_RSA_PSS,   /* RSASSA-PSS, MGF1 with the digest, salt = digest size */
	KR_SIG_EDDSA,     /* pure EdDSA over the whole message (no digest) */
} kr_sig_scheme;

typedef struct kr_sig_alg {
	kr_sig_scheme scheme;
	const EVP_MD *md; /* NULL for EdDSA */
} kr_sig_alg;

/* P-256: ECDSA-SHA256, P-384: ECDSA-SHA384, RSA: PKCS#1 v1.5 SHA-256 or, with
 * pss, RSASSA-PSS SHA-256; Ed25519: pure EdDSA. */
KR_MUST_USE kr_err kr_sig_alg_for(kr_key_type t, int pss, kr_sig_alg *out);

/* 1 if sig is pub's signature of msg under its type's algorithm (an RSA key:
 * PKCS#1 v1.5 or PSS), 0 otherwise. */
int kr_sig_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen);

#endif
