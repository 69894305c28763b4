/* The EC and RSA verification below uses EC_KEY and RSA directly: through
 * EVP, OpenSSL 3.0 decodes every key with its provider machinery, ten times
 * slower (reference section 2). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "csr.h"
#include "der.h"
#include "../util/cleanup.h"
#include "../util/hash.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct kr_csr_ctx {
	EC_KEY *p256, *p384;
};

KR_MUST_USE kr_err kr_csr_ctx_new(kr_csr_ctx **out)
{
	kr_csr_ctx *c = calloc(1, sizeof *c);
	KR_ENSURE(c, KR_EINTERNAL, "out of memory");
	c->p256 = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	c->p384 = EC_KEY_new_by_curve_name(NID_secp384r1);
	if (!c->p256 || !c->p384) {
		kr_csr_ctx_free(c);
		return kr_err_ossl(KR_EINTERNAL, "preparing the curves");
	}
	*out = c;
	return kr_ok();
}

void kr_csr_ctx_free(kr_csr_ctx *c)
{
	if (!c)
		return;
	EC_KEY_free(c->p256);
	EC_KEY_free(c->p384);
	free(c);
}

#define BAD(...) kr_errf(KR_EINPUT, __VA_ARGS__)
#define REFUSE(...) kr_errf(KR_EPOLICY, __VA_ARGS__)

void kr_csr_clear(kr_csr *c)
{
	OPENSSL_free(c->spki);
	for (int i = 0; i < c->ndns; i++)
		free(c->dns[i]);
	for (int i = 0; i < c->nother; i++)
		free(c->other[i]);
	X509_EXTENSION_free(c->ku);
	X509_EXTENSION_free(c->eku);
	memset(c, 0, sizeof *c);
}

KR_MUST_USE kr_err kr_csr_pem_to_der(const char *pem, size_t len, uint8_t **der, size_t *der_len)
{
	KR_AUTO(BIO) bio = BIO_new_mem_buf(pem, (int)len);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long n = 0;
	int ok = bio && PEM_read_bio(bio, &name, &header, &data, &n) > 0;
	ERR_clear_error();
	if (!ok)
		return BAD("malformed PEM: no readable BEGIN/END block");
	int is_req = strcmp(name, "CERTIFICATE REQUEST") == 0 ||
		     strcmp(name, "NEW CERTIFICATE REQUEST") == 0;
	char label[64];
	snprintf(label, sizeof label, "%.60s", name);
	OPENSSL_free(name);
	OPENSSL_free(header);
	if (!is_req) {
		OPENSSL_free(data);
		return BAD("PEM block is '%s', not a CERTIFICATE REQUEST", label);
	}
	char *more = NULL, *more_header = NULL;
	unsigned char *more_data = NULL;
	long more_len = 0;
	int another = PEM_read_bio(bio, &more, &more_header, &more_data, &more_len) > 0;
	ERR_clear_error();
	OPENSSL_free(more);
	OPENSSL_free(more_header);
	OPENSSL_free(more_data);
	if (another) {
		OPENSSL_free(data);
		return BAD("file holds more than one PEM block");
	}
	*der = data;
	*der_len = (size_t)n;
	return kr_ok();
}

/* ---- public keys -------------------------------------------------------------- */

/* *out is the context's key when there is a context (*owned = 0). */
static KR_MUST_USE kr_err ec_key(kr_csr_ctx *ctx, const KR_SPKI *spki, EC_KEY **out, int *owned,
				 kr_key_type *t)
{
	const ASN1_OBJECT *obj = NULL;
	int ptype = 0;
	const void *pval = NULL;
	X509_ALGOR_get0(&obj, &ptype, &pval, spki->alg);
	if (ptype != V_ASN1_OBJECT)
		return REFUSE("EC key with explicit or missing curve parameters (RFC 5480 "
			      "requires a named curve)");
	int nid = OBJ_obj2nid(pval);
	if (nid == NID_X9_62_prime256v1)
		*t = KR_KEY_EC_P256;
	else if (nid == NID_secp384r1)
		*t = KR_KEY_EC_P384;
	else
		return REFUSE("curve %s is not allowed (P-256, P-384)",
			      nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
	*owned = !ctx;
	EC_KEY *k = ctx ? (nid == NID_secp384r1 ? ctx->p384 : ctx->p256)
			: EC_KEY_new_by_curve_name(nid);
	/* oct2key rejects a point that is not on the curve. */
	if (!k || !EC_KEY_oct2key(k, spki->key->data, (size_t)spki->key->length, NULL)) {
		if (*owned)
			EC_KEY_free(k);
		ERR_clear_error();
		return BAD("EC public key is not a valid point on %s", OBJ_nid2sn(nid));
	}
	*out = k;
	return kr_ok();
}

static KR_MUST_USE kr_err rsa_key(const KR_SPKI *spki, RSA **out, kr_key_type *t)
{
	const unsigned char *p = spki->key->data;
	RSA *rsa = d2i_RSAPublicKey(NULL, &p, spki->key->length);
	ERR_clear_error();
	if (!rsa)
		return BAD("RSA public key is malformed");
	const BIGNUM *n = NULL, *e = NULL;
	RSA_get0_key(rsa, &n, &e, NULL);
	int bits = BN_num_bits(n);
	kr_err err = kr_ok();
	if (!BN_is_word(e, RSA_F4))
		err = REFUSE("RSA public exponent is not 65537");
	else if (bits < 2048)
		err = REFUSE("key too weak: RSA %d bits (at least 2048)", bits);
	else if (bits == 2048 || bits == 3072 || bits == 4096)
		*t = bits == 2048   ? KR_KEY_RSA_2048
		     : bits == 3072 ? KR_KEY_RSA_3072
				    : KR_KEY_RSA_4096;
	else
		err = REFUSE("RSA key of %d bits (2048, 3072 or 4096)", bits);
	if (kr_failed(&err)) {
		RSA_free(rsa);
		return err;
	}
	*out = rsa;
	return kr_ok();
}

/* ---- proof of possession ----------------------------------------------------- */

static KR_MUST_USE kr_err verify(kr_csr_ctx *ctx, const KR_SPKI *spki, const X509_ALGOR *alg,
				 const ASN1_BIT_STRING *sig, const uint8_t *tbs, size_t tbslen,
				 kr_key_type *t)
{
	int key_nid = OBJ_obj2nid(spki->alg->algorithm);
	int md_nid = NID_undef, pk_nid = NID_undef;
	int sig_nid = OBJ_obj2nid(alg->algorithm);
	if (!OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid))
		return REFUSE("signature algorithm %s is not accepted",
			      sig_nid != NID_undef ? OBJ_nid2sn(sig_nid) : "unknown");
	if (pk_nid != key_nid && !(key_nid == NID_ED25519 && sig_nid == NID_ED25519))
		return BAD("signature algorithm %s does not fit the %s key", OBJ_nid2sn(sig_nid),
			   OBJ_nid2sn(key_nid));
	if (sig->flags & 0x07)
		return BAD("signature BIT STRING has unused bits");

	if (key_nid == NID_ED25519) {
		const unsigned char *p = spki->key->data;
		KR_AUTO(EVP_PKEY)
		pk = spki->key->length == 32
			     ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, p, 32)
			     : NULL;
		if (!pk)
			return BAD("Ed25519 public key is malformed");
		*t = KR_KEY_ED25519;
		KR_AUTO(EVP_MD_CTX) mctx = EVP_MD_CTX_new();
		int ok = mctx && EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pk) > 0 &&
			 EVP_DigestVerify(mctx, sig->data, (size_t)sig->length, tbs, tbslen) == 1;
		ERR_clear_error();
		return ok ? kr_ok()
			  : kr_errf(KR_EVERIFY, "bad signature: proof of possession fails");
	}
	if (md_nid != NID_sha256 && md_nid != NID_sha384 && md_nid != NID_sha512)
		return REFUSE("signature algorithm %s is not accepted (SHA-2 only)",
			      OBJ_nid2sn(sig_nid));
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	KR_TRY(kr_digest(EVP_get_digestbynid(md_nid), tbs, tbslen, md, &mdlen));
	int ok = 0;
	if (key_nid == NID_X9_62_id_ecPublicKey) {
		EC_KEY *k = NULL;
		int owned = 0;
		KR_TRY(ec_key(ctx, spki, &k, &owned, t));
		ok = ECDSA_verify(0, md, (int)mdlen, sig->data, sig->length, k) == 1;
		if (owned)
			EC_KEY_free(k);
	} else if (key_nid == NID_rsaEncryption) {
		RSA *r = NULL;
		KR_TRY(rsa_key(spki, &r, t));
		ok = RSA_verify(md_nid, md, mdlen, sig->data, (unsigned)sig->length, r) == 1;
		RSA_free(r);
	} else {
		return REFUSE("key algorithm %s is not accepted",
			      key_nid != NID_undef ? OBJ_nid2sn(key_nid) : "unknown");
	}
	ERR_clear_error();
	return ok ? kr_ok() : kr_errf(KR_EVERIFY, "bad signature: proof of possession fails");
}

/* ---- subject and requested extensions ------------------------------------------ */

static KR_MUST_USE kr_err subject_cn(const X509_NAME *name, char *out, size_t outsz)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	out[0] = '\0';
	if (i < 0)
		return kr_ok();
	if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return BAD("subject has more than one common name");
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	ERR_clear_error();
	if (n < 0)
		return BAD("subject common name is not valid text");
	kr_err e = kr_ok();
	if ((size_t)n >= outsz || n > 64)
		e = BAD("subject common name longer than 64 characters");
	for (int j = 0; j < n && !kr_failed(&e); j++)
		if (utf8[j] < 0x20 || utf8[j] == 0x7f)
			e = BAD("subject common name holds a control character");
	if (!kr_failed(&e))
		memcpy(out, utf8, (size_t)n + 1);
	OPENSSL_free(utf8);
	return e;
}

/* A requested name of another type, as OpenSSL prints it, for the reason
 * the profile gives (control characters shown as '?'). */
static KR_MUST_USE kr_err other_name(kr_csr *c, const GENERAL_NAME *g)
{
	KR_AUTO(BIO) mem = BIO_new(BIO_s_mem());
	KR_OSSL(mem && GENERAL_NAME_print(mem, (GENERAL_NAME *)g) > 0, KR_EINPUT,
		"a requested subjectAltName cannot be read");
	char *text = NULL;
	long n = BIO_get_mem_data(mem, &text);
	char *copy = strndup(text, (size_t)(n < 120 ? n : 120));
	KR_ENSURE(copy, KR_EINTERNAL, "out of memory");
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	c->other[c->nother++] = copy;
	return kr_ok();
}

static KR_MUST_USE kr_err names(kr_csr *c, X509_EXTENSION *ext)
{
	GENERAL_NAMES *gens = X509V3_EXT_d2i(ext);
	ERR_clear_error();
	if (!gens)
		return BAD("subjectAltName is malformed");
	kr_err e = kr_ok();
	for (int i = 0; i < sk_GENERAL_NAME_num(gens) && !kr_failed(&e); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (c->ndns + c->nother == KR_CSR_MAX_NAMES)
			e = REFUSE("more than %d names requested", KR_CSR_MAX_NAMES);
		else if (g->type != GEN_DNS)
			e = other_name(c, g);
		else if (memchr(g->d.dNSName->data, 0, (size_t)g->d.dNSName->length) ||
			 g->d.dNSName->length > 253 || g->d.dNSName->length == 0)
			e = BAD("a requested DNS name is empty, too long or holds a NUL");
		else
			c->dns[c->ndns++] = strndup((const char *)g->d.dNSName->data,
						    (size_t)g->d.dNSName->length);
	}
	GENERAL_NAMES_free(gens);
	return e;
}

/* RFC 2986 4.1: extensionRequest (RFC 2985 5.4.2). A request never makes a
 * CA: CA:TRUE, keyCertSign and cRLSign are refused whatever the profile. */
static KR_MUST_USE kr_err requested(kr_csr *c, X509_EXTENSION *ext)
{
	int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
	switch (nid) {
	case NID_basic_constraints: {
		BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(ext);
		int ca = bc && bc->ca;
		BASIC_CONSTRAINTS_free(bc);
		ERR_clear_error();
		return ca ? REFUSE("CA:TRUE requested") : kr_ok();
	}
	case NID_key_usage: {
		ASN1_BIT_STRING *ku = X509V3_EXT_d2i(ext);
		int bad = !ku || ASN1_BIT_STRING_get_bit(ku, 5) || ASN1_BIT_STRING_get_bit(ku, 6);
		ASN1_BIT_STRING_free(ku);
		ERR_clear_error();
		if (bad)
			return REFUSE("keyCertSign or cRLSign requested");
		c->ku = X509_EXTENSION_dup(ext);
		return kr_ok();
	}
	case NID_ext_key_usage:
		c->eku = X509_EXTENSION_dup(ext);
		return kr_ok();
	case NID_subject_alt_name:
		return names(c, ext);
	default:
		if (X509_EXTENSION_get_critical(ext))
			return REFUSE("critical extension %s requested",
				      nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
		return kr_ok(); /* not copied: the profile decides what a certificate says */
	}
}

static KR_MUST_USE kr_err extensions(kr_csr *c, const STACK_OF(X509_ATTRIBUTE) * attrs)
{
	for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); i++) {
		X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(attrs, i);
		int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a));
		if (nid != NID_ext_req && nid != NID_ms_ext_req)
			continue;
		const ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, 0);
		if (X509_ATTRIBUTE_count(a) != 1 || !t || t->type != V_ASN1_SEQUENCE)
			return BAD("extensionRequest attribute is malformed");
		const unsigned char *p = t->value.sequence->data;
		STACK_OF(X509_EXTENSION) *exts =
			d2i_X509_EXTENSIONS(NULL, &p, t->value.sequence->length);
		ERR_clear_error();
		if (!exts)
			return BAD("extensionRequest attribute is malformed");
		kr_err e = kr_ok();
		for (int j = 0; j < sk_X509_EXTENSION_num(exts) && !kr_failed(&e); j++) {
			const ASN1_OBJECT *o =
				X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j));
			for (int k = 0; k < j; k++)
				if (!OBJ_cmp(o, X509_EXTENSION_get_object(
							sk_X509_EXTENSION_value(exts, k))))
					e = BAD("extension %s requested twice",
						OBJ_nid2sn(OBJ_obj2nid(o)));
			if (!kr_failed(&e))
				e = requested(c, sk_X509_EXTENSION_value(exts, j));
		}
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		KR_TRY(e);
	}
	return kr_ok();
}

/* The request's key, re-encoded, and the digests the store and the
 * certificate use: the request's own hash is what the store knows it by
 * (no request signed twice), the key's gives the SKI. */
static KR_MUST_USE kr_err key_and_digests(const uint8_t *der, size_t len, const KR_SPKI *spki,
					  kr_csr *c)
{
	c->spki_len = ASN1_item_i2d((ASN1_VALUE *)spki, &c->spki, ASN1_ITEM_rptr(KR_SPKI));
	KR_OSSL(c->spki_len > 0, KR_EINTERNAL, "re-encoding the public key");
	KR_TRY(kr_sha256(der, len, c->sha256));
	KR_TRY(kr_sha256(c->spki, (size_t)c->spki_len, c->spki_sha256));
	return kr_digest(EVP_sha1(), spki->key->data, (size_t)spki->key->length, c->key_sha1, NULL);
}

static KR_MUST_USE kr_err parse(kr_csr_ctx *ctx, const uint8_t *der, size_t len, KR_SIGNED *req,
				kr_csr *c)
{
	KR_ENSURE(req->tbs->type == V_ASN1_SEQUENCE, KR_EINPUT, "malformed DER: not a CSR");
	const ASN1_STRING *tbs = req->tbs->value.sequence;
	const unsigned char *p = tbs->data;
	KR_REQ_INFO *info =
		(KR_REQ_INFO *)ASN1_item_d2i(NULL, &p, tbs->length, ASN1_ITEM_rptr(KR_REQ_INFO));
	ERR_clear_error();
	KR_ENSURE(info, KR_EINPUT, "malformed DER: not a certification request (a certificate?)");
	kr_err e = kr_ok();
	if (ASN1_INTEGER_get(info->version) != 0)
		e = BAD("CSR version is not 1 (RFC 2986)");
	if (!kr_failed(&e))
		e = verify(ctx, info->spki, req->alg, req->sig, tbs->data, (size_t)tbs->length,
			   &c->key_type);
	if (!kr_failed(&e))
		e = subject_cn(info->subject, c->cn, sizeof c->cn);
	if (!kr_failed(&e))
		e = extensions(c, info->attributes);
	if (!kr_failed(&e))
		e = key_and_digests(der, len, info->spki, c);
	ASN1_item_free((ASN1_VALUE *)info, ASN1_ITEM_rptr(KR_REQ_INFO));
	return e;
}

/* The key checks verify() makes, without a signature to check. */
static KR_MUST_USE kr_err key_only(kr_csr_ctx *ctx, const KR_SPKI *spki, kr_key_type *t)
{
	int nid = OBJ_obj2nid(spki->alg->algorithm);
	if (nid == NID_ED25519) {
		KR_ENSURE(spki->key->length == 32, KR_EINPUT, "Ed25519 public key is malformed");
		*t = KR_KEY_ED25519;
		return kr_ok();
	}
	if (nid == NID_X9_62_id_ecPublicKey) {
		EC_KEY *k = NULL;
		int owned = 0;
		KR_TRY(ec_key(ctx, spki, &k, &owned, t));
		if (owned)
			EC_KEY_free(k);
		return kr_ok();
	}
	if (nid == NID_rsaEncryption) {
		RSA *r = NULL;
		KR_TRY(rsa_key(spki, &r, t));
		RSA_free(r);
		return kr_ok();
	}
	return REFUSE("key algorithm %s is not accepted",
		      nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
}

static KR_MUST_USE kr_err parse_template(kr_csr_ctx *ctx, const uint8_t *der, size_t len, kr_csr *c)
{
	const unsigned char *p = der;
	KR_CERT_TEMPLATE *t = (KR_CERT_TEMPLATE *)ASN1_item_d2i(NULL, &p, (long)len,
								ASN1_ITEM_rptr(KR_CERT_TEMPLATE));
	ERR_clear_error();
	KR_ENSURE(t, KR_EINPUT, "malformed DER: neither a CSR nor a certificate template");
	kr_err e = (size_t)(p - der) == len ? kr_ok()
					    : BAD("trailing data after the certificate template");
	if (!kr_failed(&e) && (!t->subject || !t->spki))
		e = BAD("a certificate template needs a subject and a public key (RFC 9483 4.1.1)");
	if (!kr_failed(&e))
		e = key_only(ctx, t->spki, &c->key_type);
	if (!kr_failed(&e))
		e = subject_cn(t->subject, c->cn, sizeof c->cn);
	if (!kr_failed(&e))
		e = key_and_digests(der, len, t->spki, c);
	ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(KR_CERT_TEMPLATE));
	return e;
}

KR_MUST_USE kr_err kr_csr_parse_proven(kr_csr_ctx *ctx, const uint8_t *der, size_t len, kr_csr *out)
{
	kr_err e = kr_csr_parse(ctx, der, len, out);
	if (!kr_failed(&e) || len == 0 || der[0] != 0x30)
		return e;
	/* not a CSR: a CRMF template, whose proof its source checked */
	kr_err t = parse_template(ctx, der, len, out);
	if (kr_failed(&t)) {
		kr_csr_clear(out);
		return t.code == KR_EINPUT && strstr(t.msg, "neither") ? e : t;
	}
	return t;
}

KR_MUST_USE kr_err kr_csr_parse(kr_csr_ctx *ctx, const uint8_t *der, size_t len, kr_csr *out)
{
	memset(out, 0, sizeof *out);
	KR_ENSURE(len > 0, KR_EINPUT, "empty request");
	const unsigned char *p = der;
	KR_SIGNED *req = (KR_SIGNED *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(KR_SIGNED));
	ERR_clear_error();
	KR_ENSURE(req, KR_EINPUT, "malformed DER");
	kr_err e = (size_t)(p - der) == len ? parse(ctx, der, len, req, out)
					    : BAD("%zu bytes of trailing data after the CSR",
						  len - (size_t)(p - der));
	ASN1_item_free((ASN1_VALUE *)req, ASN1_ITEM_rptr(KR_SIGNED));
	if (kr_failed(&e))
		kr_csr_clear(out);
	return e;
}
