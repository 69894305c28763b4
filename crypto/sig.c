/* What each key type signs with, and checking such a signature. */
#include "sig.h"

#include <openssl/err.h>
#include <openssl/rsa.h>

KR_MUST_USE kr_err kr_sig_alg_for(kr_key_type t, int pss, kr_sig_alg *out)
{
	KR_ENSURE(!pss || kr_key_type_is_rsa(t), KR_EINPUT, "RSA-PSS needs an RSA key, not %s",
		  kr_key_type_name(t));
	switch (t) {
	case KR_KEY_EC_P256:
		*out = (kr_sig_alg){KR_SIG_ECDSA, EVP_sha256()};
		break;
	case KR_KEY_EC_P384:
		*out = (kr_sig_alg){KR_SIG_ECDSA, EVP_sha384()};
		break;
	case KR_KEY_ED25519:
		*out = (kr_sig_alg){KR_SIG_EDDSA, NULL};
		break;
	default:
		*out = (kr_sig_alg){pss ? KR_SIG_RSA_PSS : KR_SIG_RSA_PKCS1, EVP_sha256()};
	}
	return kr_ok();
}

int kr_sig_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen)
{
	kr_key_type t;
	kr_err e = kr_key_type_of(pub, &t);
	if (kr_failed(&e))
		return 0;
	for (int pss = 0; pss <= kr_key_type_is_rsa(t); pss++) {
		kr_sig_alg alg;
		e = kr_sig_alg_for(t, pss, &alg);
		if (kr_failed(&e))
			return 0;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;
		int ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, alg.md, NULL, pub) > 0;
		if (ok && pss)
			ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
		ok = ok && EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		if (ok)
			return 1;
	}
	return 0;
}
