/* C_Sign for the four schemes keyrite uses. Only a digest crosses to the
 * token, except for EdDSA, which is defined over the whole message. */
#include "internal.h"
#include "../util/cleanup.h"

#include <openssl/ec.h>
#include <openssl/objects.h>
#include <string.h>

/* PKCS#1 v1.5 signs a DigestInfo (RFC 8017 section 9.2); OpenSSL encodes it. */
static KR_MUST_USE kr_err digest_info(const EVP_MD *md, const uint8_t *dgst, size_t len,
				      uint8_t **out, int *outlen)
{
	X509_SIG *sig = X509_SIG_new();
	KR_OSSL(sig, KR_EINTERNAL, "DigestInfo");
	X509_ALGOR *alg = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_SIG_getm(sig, &alg, &os);
	int ok = X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL, NULL) &&
		 ASN1_OCTET_STRING_set(os, dgst, (int)len);
	*out = NULL;
	*outlen = ok ? i2d_X509_SIG(sig, out) : -1;
	X509_SIG_free(sig);
	KR_OSSL(*outlen > 0, KR_EINTERNAL, "encoding DigestInfo");
	return kr_ok();
}

/* CKM_ECDSA returns r || s (PKCS#11 2.40 section 2.3.1); X.509 and CMS want
 * the DER ECDSA-Sig-Value of RFC 5480 section 2.2. */
static KR_MUST_USE kr_err ecdsa_to_der(const uint8_t *raw, size_t n, uint8_t *sig, size_t *siglen)
{
	KR_ENSURE(n % 2 == 0 && n > 0, KR_EHSM, "token returned a malformed ECDSA signature");
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)(n / 2), NULL);
	BIGNUM *s = BN_bin2bn(raw + n / 2, (int)(n / 2), NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return kr_err_ossl(KR_EINTERNAL, "building ECDSA-Sig-Value");
	}
	int len = i2d_ECDSA_SIG(es, NULL);
	if (len > 0 && (size_t)len <= KR_HSM_MAX_SIG) {
		unsigned char *p = sig;
		len = i2d_ECDSA_SIG(es, &p);
	}
	ECDSA_SIG_free(es);
	KR_OSSL(len > 0 && (size_t)len <= KR_HSM_MAX_SIG, KR_EINTERNAL, "encoding ECDSA signature");
	*siglen = (size_t)len;
	return kr_ok();
}

static CK_MECHANISM_TYPE hash_mech(const EVP_MD *md, CK_RSA_PKCS_MGF_TYPE *mgf)
{
	switch (EVP_MD_get_type(md)) {
	case NID_sha256:
		*mgf = CKG_MGF1_SHA256;
		return CKM_SHA256;
	case NID_sha384:
		*mgf = CKG_MGF1_SHA384;
		return CKM_SHA384;
	case NID_sha512:
		*mgf = CKG_MGF1_SHA512;
		return CKM_SHA512;
	default:
		return CKM_VENDOR_DEFINED;
	}
}

static KR_MUST_USE kr_err check_scheme(const kr_hsm_key *k, kr_sig_scheme scheme, const EVP_MD *md,
				       size_t inlen)
{
	kr_key_type t = kr_hsm_key_type(k);
	int rsa = t == KR_KEY_RSA_2048 || t == KR_KEY_RSA_3072 || t == KR_KEY_RSA_4096;
	int ecdsa = scheme == KR_SIG_ECDSA || scheme == KR_SIG_ECDSA_RAW;
	int fits = (ecdsa && (t == KR_KEY_EC_P256 || t == KR_KEY_EC_P384)) ||
		   ((scheme == KR_SIG_RSA_PKCS1 || scheme == KR_SIG_RSA_PSS) && rsa) ||
		   (scheme == KR_SIG_EDDSA && t == KR_KEY_ED25519);
	KR_ENSURE(fits, KR_EINTERNAL, "key '%s' (%s) cannot make this kind of signature",
		  kr_hsm_key_label(k), kr_key_type_name(t));
	/* ECDSA signs any digest (md may be unknown, as from OpenSSL's method
	 * hook); the RSA encodings name their digest. */
	if (scheme == KR_SIG_RSA_PKCS1 || scheme == KR_SIG_RSA_PSS || md)
		KR_ENSURE(md && (size_t)EVP_MD_get_size(md) == inlen, KR_EINTERNAL,
			  "digest length does not match its algorithm");
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_sign(kr_hsm_session *s, const kr_hsm_key *k, kr_sig_scheme scheme,
			       const EVP_MD *md, const uint8_t *in, size_t inlen, uint8_t *sig,
			       size_t *siglen)
{
	KR_TRY(check_scheme(k, scheme, md, inlen));
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_RSA_PKCS_PSS_PARAMS pss;
	KR_AUTO(uint8_t) info = NULL;
	const uint8_t *data = in;
	CK_ULONG datalen = inlen;

	switch (scheme) {
	case KR_SIG_ECDSA:
	case KR_SIG_ECDSA_RAW:
		break;
	case KR_SIG_RSA_PKCS1: {
		int len = 0;
		KR_TRY(digest_info(md, in, inlen, &info, &len));
		mech.mechanism = CKM_RSA_PKCS;
		data = info;
		datalen = (CK_ULONG)len;
		break;
	}
	case KR_SIG_RSA_PSS:
		pss.hashAlg = hash_mech(md, &pss.mgf);
		KR_ENSURE(pss.hashAlg != CKM_VENDOR_DEFINED, KR_EINTERNAL,
			  "RSA-PSS needs SHA-256, SHA-384 or SHA-512");
		pss.sLen = inlen; /* RFC 4055 section 3.1: salt as long as the digest */
		mech = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pss, sizeof pss};
		break;
	case KR_SIG_EDDSA:
		mech.mechanism = CKM_EDDSA;
		break;
	}

	CK_FUNCTION_LIST *fn = s->h->fn;
	uint8_t raw[KR_HSM_MAX_SIG];
	CK_ULONG rawlen = sizeof raw;
	KR_CK(fn->C_SignInit(s->handle, &mech, k->copy ? k->copy : k->priv), KR_EHSM,
	      "key '%s': C_SignInit", k->label);
	KR_CK(fn->C_Sign(s->handle, (CK_BYTE *)data, datalen, raw, &rawlen), KR_EHSM,
	      "key '%s': C_Sign", k->label);
	if (scheme == KR_SIG_ECDSA)
		return ecdsa_to_der(raw, rawlen, sig, siglen);
	memcpy(sig, raw, rawlen);
	*siglen = rawlen;
	return kr_ok();
}
