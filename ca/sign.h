/* Signing X.509 objects with a key that stays on the token.
 *
 * The flow (after Boulder's ceremony tool): build the object, sign it with a
 * throwaway in-memory key of the signing key's type, lint that, then have the HSM
 * sign exactly the same to-be-signed bytes, verify the result with the
 * issuer's public key and byte-compare its to-be-signed part with the linted
 * one. Nothing the HSM signs has not been linted first. */
#ifndef KR_CA_SIGN_H
#define KR_CA_SIGN_H

#include "../crypto/sig.h"
#include "../hsm/hsm.h"
#include "../util/err.h"

#include <openssl/x509.h>

/* How an object gets signed: the token key, the algorithm it signs with,
 * and its throwaway twin for drafts. ("Signer" is the firmware signer of
 * keyrite-ca(5), fw/.) With cleanup, KR_SIGNING(s) clears it at scope end. */
typedef struct kr_signing {
	kr_hsm *hsm;
	const kr_hsm_key *key;
	kr_sig_alg alg;
	EVP_PKEY *throwaway; /* owned: same type as key, for the lint pass */
} kr_signing;

KR_MUST_USE kr_err kr_signing_init(kr_signing *s, kr_hsm *hsm, const kr_hsm_key *key, int pss);
/* For drafts only (no HSM): lints a profile before any key exists. */
KR_MUST_USE kr_err kr_signing_init_draft(kr_signing *s, kr_key_type t, int pss);
void kr_signing_clear(kr_signing *s);
#define KR_SIGNING(name) __attribute__((cleanup(kr_signing_clear))) kr_signing name = {0}

/* Signs the draft with the throwaway key (filling in both signature
 * algorithm fields); afterwards the draft is what the lint examines. */
KR_MUST_USE kr_err kr_sign_draft_cert(const kr_signing *s, X509 *draft);
KR_MUST_USE kr_err kr_sign_draft_crl(const kr_signing *s, X509_CRL *draft);

/* HSM-signs the linted draft's to-be-signed bytes, verifies the result with
 * issuer_pub and checks its to-be-signed bytes equal the draft's. */
KR_MUST_USE kr_err kr_sign_cert(const kr_signing *s, X509 *linted, EVP_PKEY *issuer_pub,
				X509 **out);
KR_MUST_USE kr_err kr_sign_crl(const kr_signing *s, X509_CRL *linted, EVP_PKEY *issuer_pub,
			       X509_CRL **out);

/* Signs raw bytes with the throwaway key (for linting drafts built by hand). */
KR_MUST_USE kr_err kr_signing_sign_draft(const kr_signing *s, const uint8_t *tbs, size_t len,
					 uint8_t sig[KR_HSM_MAX_SIG], size_t *siglen);

/* DER of SEQUENCE { tbs, alg, signature } (RFC 5280 4.1). */
KR_MUST_USE kr_err kr_sign_assemble(const uint8_t *tbs, size_t tbslen, const X509_ALGOR *alg,
				    const uint8_t *sig, size_t siglen, uint8_t **der, int *derlen);

/* A signature over raw bytes (hashed here unless EdDSA). */
KR_MUST_USE kr_err kr_signing_sign(const kr_signing *s, kr_hsm_session *session, const uint8_t *tbs,
				   size_t len, uint8_t sig[KR_HSM_MAX_SIG], size_t *siglen);

/* A PKCS#10 request (RFC 2986) for the signing key with subject CN=cn,
 * signed on the token (its proof of possession); DER, OPENSSL_free it. */
KR_MUST_USE kr_err kr_sign_csr(const kr_signing *s, const char *cn, const char *dns, uint8_t **der,
			       int *derlen);

#endif
