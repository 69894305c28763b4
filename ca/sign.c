#include "sign.h"
#include "../util/cleanup.h"

#include "der.h"

#include <openssl/rsa.h>
#include <string.h>

/* Certificates and CRLs are assembled as KR_SIGNED (ca/der.h): the
 * to-be-signed part travels as an opaque, already-encoded value, so the
 * signed bytes are exactly the bytes that were linted. */

KR_MUST_USE kr_err kr_signing_init_draft(kr_signing *s, kr_key_type t, int pss)
{
	memset(s, 0, sizeof *s);
	KR_TRY(kr_sig_alg_for(t, pss, &s->alg));
	return kr_throwaway_key(t, &s->throwaway);
}

KR_MUST_USE kr_err kr_signing_init(kr_signing *s, kr_hsm *hsm, const kr_hsm_key *key, int pss)
{
	KR_TRY(kr_signing_init_draft(s, kr_hsm_key_type(key), pss));
	s->hsm = hsm;
	s->key = key;
	return kr_ok();
}

void kr_signing_clear(kr_signing *s)
{
	EVP_PKEY_free(s->throwaway);
	s->throwaway = NULL;
}

static KR_MUST_USE kr_err throwaway_ctx(const kr_signing *s, EVP_MD_CTX **out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = ctx && EVP_DigestSignInit(ctx, &pctx, s->alg.md, NULL, s->throwaway) > 0;
	/* RFC 4055 section 3.1: MGF1 with the same hash, salt of the hash size. */
	if (ok && s->alg.scheme == KR_SIG_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
	if (!ok) {
		EVP_MD_CTX_free(ctx);
		return kr_err_ossl(KR_EINTERNAL, "preparing the throwaway signature");
	}
	*out = ctx;
	return kr_ok();
}

KR_MUST_USE kr_err kr_signing_sign_draft(const kr_signing *s, const uint8_t *tbs, size_t len,
					 uint8_t sig[KR_HSM_MAX_SIG], size_t *siglen)
{
	KR_AUTO(EVP_MD_CTX) ctx = NULL;
	KR_TRY(throwaway_ctx(s, &ctx));
	*siglen = KR_HSM_MAX_SIG;
	KR_OSSL(EVP_DigestSign(ctx, sig, siglen, tbs, len) > 0, KR_EINTERNAL,
		"signing a draft with the throwaway key");
	return kr_ok();
}

KR_MUST_USE kr_err kr_sign_draft_cert(const kr_signing *s, X509 *draft)
{
	KR_AUTO(EVP_MD_CTX) ctx = NULL;
	KR_TRY(throwaway_ctx(s, &ctx));
	KR_OSSL(X509_sign_ctx(draft, ctx) > 0, KR_EINTERNAL, "signing the draft certificate");
	return kr_ok();
}

KR_MUST_USE kr_err kr_sign_draft_crl(const kr_signing *s, X509_CRL *draft)
{
	KR_AUTO(EVP_MD_CTX) ctx = NULL;
	KR_TRY(throwaway_ctx(s, &ctx));
	KR_OSSL(X509_CRL_sign_ctx(draft, ctx) > 0, KR_EINTERNAL, "signing the draft CRL");
	return kr_ok();
}

KR_MUST_USE kr_err kr_signing_sign(const kr_signing *s, kr_hsm_session *session, const uint8_t *tbs,
				   size_t len, uint8_t sig[KR_HSM_MAX_SIG], size_t *siglen)
{
	if (!session)
		session = kr_hsm_main_session(s->hsm);
	if (s->alg.scheme == KR_SIG_EDDSA)
		return kr_hsm_sign(session, s->key, KR_SIG_EDDSA, NULL, tbs, len, sig, siglen);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	KR_OSSL(EVP_Digest(tbs, len, md, &mdlen, s->alg.md, NULL), KR_EINTERNAL, "hashing");
	return kr_hsm_sign(session, s->key, s->alg.scheme, s->alg.md, md, mdlen, sig, siglen);
}

KR_MUST_USE kr_err kr_sign_assemble(const uint8_t *tbs, size_t tbslen, const X509_ALGOR *alg,
				    const uint8_t *sig, size_t siglen, uint8_t **der, int *derlen)
{
	KR_SIGNED *obj = (KR_SIGNED *)ASN1_item_new(ASN1_ITEM_rptr(KR_SIGNED));
	KR_OSSL(obj, KR_EINTERNAL, "out of memory");
	const unsigned char *p = tbs;
	ASN1_TYPE_free(obj->tbs);
	obj->tbs = d2i_ASN1_TYPE(NULL, &p, (long)tbslen);
	X509_ALGOR_free(obj->alg);
	obj->alg = X509_ALGOR_dup(alg);
	int ok = obj->tbs && obj->alg &&
		 ASN1_BIT_STRING_set(obj->sig, (unsigned char *)sig, (int)siglen);
	/* A signature is whole octets: say so, or OpenSSL would count trailing
	 * zero bits as unused (what ASN1_item_sign does too). */
	obj->sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	obj->sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	*der = NULL;
	*derlen = ok ? ASN1_item_i2d((ASN1_VALUE *)obj, der, ASN1_ITEM_rptr(KR_SIGNED)) : -1;
	ASN1_item_free((ASN1_VALUE *)obj, ASN1_ITEM_rptr(KR_SIGNED));
	KR_OSSL(*derlen > 0, KR_EINTERNAL, "assembling the signed object");
	return kr_ok();
}

/* The HSM's signature over tbs, assembled with alg into the signed DER. */
static KR_MUST_USE kr_err sign_and_assemble(const kr_signing *s, const uint8_t *tbs, int tbslen,
					    const X509_ALGOR *alg, uint8_t **der, int *derlen)
{
	uint8_t sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	KR_TRY(kr_signing_sign(s, NULL, tbs, (size_t)tbslen, sig, &siglen));
	return kr_sign_assemble(tbs, (size_t)tbslen, alg, sig, siglen, der, derlen);
}

static KR_MUST_USE kr_err same_bytes(const uint8_t *a, int alen, const uint8_t *b, int blen,
				     const char *what)
{
	KR_ENSURE(alen > 0 && alen == blen && memcmp(a, b, (size_t)alen) == 0, KR_EVERIFY,
		  "the HSM-signed %s's to-be-signed bytes differ from the linted ones", what);
	return kr_ok();
}

KR_MUST_USE kr_err kr_sign_cert(const kr_signing *s, X509 *linted, EVP_PKEY *issuer_pub, X509 **out)
{
	KR_AUTO(uint8_t) tbs = NULL;
	int tbslen = i2d_re_X509_tbs(linted, &tbs);
	KR_OSSL(tbslen > 0, KR_EINTERNAL, "encoding the to-be-signed certificate");
	const X509_ALGOR *alg = NULL;
	X509_get0_signature(NULL, &alg, linted);
	KR_AUTO(uint8_t) der = NULL;
	int derlen = 0;
	KR_TRY(sign_and_assemble(s, tbs, tbslen, alg, &der, &derlen));
	const unsigned char *p = der;
	KR_AUTO(X509) cert = d2i_X509(NULL, &p, derlen);
	KR_OSSL(cert, KR_EINTERNAL, "decoding the signed certificate");

	KR_OSSL(X509_verify(cert, issuer_pub) == 1, KR_EVERIFY,
		"the HSM's signature does not verify with the issuer's public key");
	KR_AUTO(uint8_t) tbs2 = NULL;
	int tbs2len = i2d_re_X509_tbs(cert, &tbs2);
	KR_TRY(same_bytes(tbs, tbslen, tbs2, tbs2len, "certificate"));
	*out = cert;
	cert = NULL;
	return kr_ok();
}

KR_MUST_USE kr_err kr_sign_crl(const kr_signing *s, X509_CRL *linted, EVP_PKEY *issuer_pub,
			       X509_CRL **out)
{
	KR_AUTO(uint8_t) tbs = NULL;
	int tbslen = i2d_re_X509_CRL_tbs(linted, &tbs);
	KR_OSSL(tbslen > 0, KR_EINTERNAL, "encoding the to-be-signed CRL");
	const X509_ALGOR *alg = NULL;
	X509_CRL_get0_signature(linted, NULL, &alg);
	KR_AUTO(uint8_t) der = NULL;
	int derlen = 0;
	KR_TRY(sign_and_assemble(s, tbs, tbslen, alg, &der, &derlen));
	const unsigned char *p = der;
	KR_AUTO(X509_CRL) crl = d2i_X509_CRL(NULL, &p, derlen);
	KR_OSSL(crl, KR_EINTERNAL, "decoding the signed CRL");

	KR_OSSL(X509_CRL_verify(crl, issuer_pub) == 1, KR_EVERIFY,
		"the HSM's CRL signature does not verify with the issuer's public key");
	KR_AUTO(uint8_t) tbs2 = NULL;
	int tbs2len = i2d_re_X509_CRL_tbs(crl, &tbs2);
	KR_TRY(same_bytes(tbs, tbslen, tbs2, tbs2len, "CRL"));
	*out = crl;
	crl = NULL;
	return kr_ok();
}

/* The request's subjectAltName (RFC 2985 extensionRequest), in OpenSSL's
 * x509v3 syntax: a TLS server's name, which clients take from there only
 * (RFC 6125 section 6.4.4). */
static KR_MUST_USE kr_err request_name(X509_REQ *req, const char *dns)
{
	char value[300];
	KR_ENSURE(snprintf(value, sizeof value, "DNS:%s", dns) < (int)sizeof value, KR_EINPUT,
		  "%.40s...: name too long", dns);
	X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, value);
	STACK_OF(X509_EXTENSION) *exts = san ? sk_X509_EXTENSION_new_null() : NULL;
	int ok = exts && sk_X509_EXTENSION_push(exts, san) > 0;
	if (ok)
		san = NULL;
	ok = ok && X509_REQ_add_extensions(req, exts) == 1;
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	KR_OSSL(ok, KR_EINPUT, "subjectAltName %s", value);
	return kr_ok();
}

KR_MUST_USE kr_err kr_sign_csr(const kr_signing *s, const char *cn, const char *dns, uint8_t **der,
			       int *derlen)
{
	EVP_PKEY *pub = kr_hsm_key_public(s->key);
	KR_AUTO(X509_REQ) req = X509_REQ_new();
	KR_OSSL(req && X509_REQ_set_version(req, 0) &&
			X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
						   MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
						   0) &&
			X509_REQ_set_pubkey(req, pub),
		KR_EINPUT, "building a request for CN=%s", cn);
	if (dns)
		KR_TRY(request_name(req, dns));
	/* The throwaway signature fills in the algorithm fields, as for drafts. */
	KR_AUTO(EVP_MD_CTX) ctx = NULL;
	KR_TRY(throwaway_ctx(s, &ctx));
	KR_OSSL(X509_REQ_sign_ctx(req, ctx) > 0, KR_EINTERNAL, "signing the draft request");
	KR_AUTO(uint8_t) tbs = NULL;
	int tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
	KR_OSSL(tbslen > 0, KR_EINTERNAL, "encoding the request");
	const X509_ALGOR *alg = NULL;
	X509_REQ_get0_signature(req, NULL, &alg);
	KR_TRY(sign_and_assemble(s, tbs, tbslen, alg, der, derlen));
	const unsigned char *p = *der;
	KR_AUTO(X509_REQ) signed_req = d2i_X509_REQ(NULL, &p, *derlen);
	KR_OSSL(signed_req && X509_REQ_verify(signed_req, pub) == 1, KR_EVERIFY,
		"the token's signature on the request does not verify");
	return kr_ok();
}
