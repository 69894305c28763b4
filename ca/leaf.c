#include "leaf.h"
#include "lint.h"
#include "serial.h"
#include "../util/cleanup.h"

#include <openssl/x509v3.h>
#include <string.h>

struct kr_leaf {
	const kr_profile *p;
	X509 *issuer;
	X509_ALGOR *sigalg;
	ASN1_TYPE *issuer_name;
	ASN1_INTEGER *version;
	STACK_OF(X509_EXTENSION) * fixed; /* the profile's extensions and the AKI */
	int has_ku, has_eku;
	NAME_CONSTRAINTS *nc; /* the issuer's, or NULL */
};

void kr_leaf_free(kr_leaf *l)
{
	if (!l)
		return;
	X509_free(l->issuer);
	X509_ALGOR_free(l->sigalg);
	ASN1_TYPE_free(l->issuer_name);
	ASN1_INTEGER_free(l->version);
	sk_X509_EXTENSION_pop_free(l->fixed, X509_EXTENSION_free);
	NAME_CONSTRAINTS_free(l->nc);
	free(l);
}

/* The AlgorithmIdentifier the signer's signatures carry, as OpenSSL writes
 * it for that key type (RSA-PSS parameters included). */
static KR_MUST_USE kr_err signature_algorithm(const kr_signing *s, X509_ALGOR **out)
{
	KR_AUTO(X509) dummy = X509_new();
	KR_OSSL(dummy && X509_set_pubkey(dummy, s->throwaway), KR_EINTERNAL, "draft");
	KR_TRY(kr_sign_draft_cert(s, dummy));
	const X509_ALGOR *alg = NULL;
	X509_get0_signature(NULL, &alg, dummy);
	*out = X509_ALGOR_dup(alg);
	KR_OSSL(*out, KR_EINTERNAL, "copying the signature algorithm");
	return kr_ok();
}

static KR_MUST_USE kr_err fixed_extensions(kr_leaf *l, CONF *conf)
{
	l->fixed = sk_X509_EXTENSION_new_null();
	KR_OSSL(l->fixed, KR_EINTERNAL, "out of memory");
	STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, l->p->extensions);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, l->issuer, NULL, NULL, NULL, 0);
	X509V3_set_nconf(&ctx, conf);
	for (int i = 0; vals && i < sk_CONF_VALUE_num(vals); i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
		X509_EXTENSION *ext = X509V3_EXT_nconf(conf, &ctx, v->name, v->value);
		KR_OSSL(ext, KR_EINPUT, "profile %s: [%s] %s", l->p->name, l->p->extensions,
			v->name);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
		l->has_ku |= nid == NID_key_usage;
		l->has_eku |= nid == NID_ext_key_usage;
		if (!sk_X509_EXTENSION_push(l->fixed, ext)) {
			X509_EXTENSION_free(ext);
			return kr_err_ossl(KR_EINTERNAL, "out of memory");
		}
	}
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(l->issuer);
	KR_ENSURE(ski, KR_EPOLICY, "the issuing CA's certificate has no subjectKeyIdentifier");
	KR_AUTO(AUTHORITY_KEYID) aki = AUTHORITY_KEYID_new();
	KR_OSSL(aki && (aki->keyid = ASN1_OCTET_STRING_dup(ski)), KR_EINTERNAL, "AKI");
	X509_EXTENSION *ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, aki);
	KR_OSSL(ext && sk_X509_EXTENSION_push(l->fixed, ext), KR_EINTERNAL, "AKI");
	return kr_ok();
}

/* RFC 5280 4.2.1.10 for dNSName: a constraint matches the name itself and
 * the names below it; a constraint with a leading dot only the names below
 * it (as OpenSSL and GnuTLS read it). Comparison ignores case. */
static int dns_within(const char *name, const ASN1_IA5STRING *base)
{
	size_t n = strlen(name), m = (size_t)base->length;
	const char *b = (const char *)base->data;
	if (m == 0)
		return 1;
	if (b[0] == '.')
		return n > m && strncasecmp(name + n - m, b, m) == 0;
	return (n == m && strncasecmp(name, b, m) == 0) ||
	       (n > m && name[n - m - 1] == '.' && strncasecmp(name + n - m, b, m) == 0);
}

static int any_dns_within(const char *name, STACK_OF(GENERAL_SUBTREE) * trees, int *has_dns)
{
	int hit = 0;
	for (int i = 0; i < sk_GENERAL_SUBTREE_num(trees); i++) {
		const GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(trees, i)->base;
		if (g->type != GEN_DNS)
			continue;
		*has_dns = 1;
		hit |= dns_within(name, g->d.dNSName);
	}
	return hit;
}

KR_MUST_USE kr_err kr_leaf_check_name(const kr_leaf *l, const char *dns)
{
	if (!l->nc)
		return kr_ok();
	int permitted_dns = 0, excluded_dns = 0;
	int in = any_dns_within(dns, l->nc->permittedSubtrees, &permitted_dns);
	KR_ENSURE(!permitted_dns || in, KR_EPOLICY,
		  "name '%.80s' is outside the issuing CA's permitted name constraints", dns);
	KR_ENSURE(!any_dns_within(dns, l->nc->excludedSubtrees, &excluded_dns), KR_EPOLICY,
		  "name '%.80s' is excluded by the issuing CA's name constraints", dns);
	return kr_ok();
}

KR_MUST_USE kr_err kr_leaf_validity(const kr_leaf *l, time_t now, KR_VALIDITY **out)
{
	KR_VALIDITY *v = (KR_VALIDITY *)ASN1_item_new(ASN1_ITEM_rptr(KR_VALIDITY));
	/* ASN1_TIME_adj picks UTCTime or GeneralizedTime by year (RFC 5280 4.1.2.5). */
	int ok = v && ASN1_TIME_adj(v->not_before, now, 0, 0) &&
		 ASN1_TIME_adj(v->not_after, now, (int)l->p->validity_days, 0);
	if (ok && ASN1_TIME_compare(v->not_after, X509_get0_notAfter(l->issuer)) > 0) {
		ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(KR_VALIDITY));
		return kr_errf(KR_EPOLICY,
			       "profile %s: %ld days from now outlast the issuing CA's certificate",
			       l->p->name, l->p->validity_days);
	}
	if (!ok) {
		ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(KR_VALIDITY));
		return kr_err_ossl(KR_EINTERNAL, "validity");
	}
	*out = v;
	return kr_ok();
}

static KR_MUST_USE kr_err subject(const kr_leaf *l, const char *cn, X509_NAME **out)
{
	KR_ENSURE(cn && cn[0] && strlen(cn) <= 64, KR_EPOLICY,
		  "subject common name must be 1 to 64 characters (RFC 5280 appendix A)");
	X509_NAME *n = X509_NAME_new();
	int ok = n &&
		 (!l->p->organization[0] ||
		  X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
					     (const unsigned char *)l->p->organization, -1, -1,
					     0)) &&
		 X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					    (const unsigned char *)cn, -1, -1, 0);
	if (!ok) {
		X509_NAME_free(n);
		return kr_err_ossl(KR_EPOLICY, "subject name");
	}
	*out = n;
	return kr_ok();
}

static X509_EXTENSION *san(const char *const *dns, int n)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	for (int i = 0; gens && i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		if (!g || !s || !ASN1_STRING_set(s, dns[i], -1)) {
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(s);
			break;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		sk_GENERAL_NAME_push(gens, g);
	}
	X509_EXTENSION *ext = gens && sk_GENERAL_NAME_num(gens) == n
				      ? X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)
				      : NULL;
	GENERAL_NAMES_free(gens);
	return ext;
}

static X509_EXTENSION *ski(const kr_csr *c)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = os && ASN1_OCTET_STRING_set(os, c->key_sha1, 20)
				      ? X509V3_EXT_i2d(NID_subject_key_identifier, 0, os)
				      : NULL;
	ASN1_OCTET_STRING_free(os);
	return ext;
}

/* The per-certificate extensions go after the shared ones; they are freed
 * by the caller, the shared ones never. */
static KR_MUST_USE kr_err extensions(const kr_leaf *l, const kr_leaf_req *r,
				     STACK_OF(X509_EXTENSION) * *all,
				     STACK_OF(X509_EXTENSION) * *own)
{
	*all = sk_X509_EXTENSION_new_reserve(NULL, sk_X509_EXTENSION_num(l->fixed) + 4);
	*own = sk_X509_EXTENSION_new_reserve(NULL, 4);
	KR_OSSL(*all && *own, KR_EINTERNAL, "out of memory");
	for (int i = 0; i < sk_X509_EXTENSION_num(l->fixed); i++)
		sk_X509_EXTENSION_push(*all, sk_X509_EXTENSION_value(l->fixed, i));
	X509_EXTENSION *mine[4] = {ski(r->csr), r->ndns ? san(r->dns, r->ndns) : NULL, NULL, NULL};
	KR_OSSL(mine[0] && (!r->ndns || mine[1]), KR_EINTERNAL, "encoding SKI or SAN");
	if (l->p->honour_ku && !l->has_ku && r->csr->ku)
		mine[2] = X509_EXTENSION_dup(r->csr->ku);
	if (l->p->honour_eku && !l->has_eku && r->csr->eku)
		mine[3] = X509_EXTENSION_dup(r->csr->eku);
	for (int i = 0; i < 4; i++)
		if (mine[i]) {
			sk_X509_EXTENSION_push(*own, mine[i]);
			sk_X509_EXTENSION_push(*all, mine[i]);
		}
	return kr_ok();
}

KR_MUST_USE kr_err kr_leaf_tbs(const kr_leaf *l, const kr_leaf_req *r, uint8_t **tbs, int *len)
{
	KR_AUTO(BIGNUM) sn = ASN1_INTEGER_to_BN(r->serial, NULL);
	KR_ENSURE(sn && !BN_is_negative(sn) && !BN_is_zero(sn) && BN_num_bits(sn) / 8 + 1 <= 20,
		  KR_EINTERNAL, "serial must be positive and at most 20 octets");
	KR_AUTO(X509_NAME) name = NULL;
	KR_TRY(subject(l, r->cn, &name));
	STACK_OF(X509_EXTENSION) *all = NULL, *own = NULL;
	kr_err e = extensions(l, r, &all, &own);
	/* The key goes in exactly as the request carried it. */
	ASN1_STRING spki_der = {r->csr->spki_len, V_ASN1_SEQUENCE, r->csr->spki, 0};
	ASN1_TYPE spki = {.type = V_ASN1_SEQUENCE, .value.sequence = &spki_der};
	KR_TBS t = {
		.version = l->version,
		.serial = (ASN1_INTEGER *)r->serial,
		.sigalg = l->sigalg,
		.issuer = l->issuer_name,
		.validity = (KR_VALIDITY *)r->validity,
		.subject = name,
		.spki = &spki,
		.extensions = all,
	};
	*tbs = NULL;
	if (!kr_failed(&e)) {
		*len = ASN1_item_i2d((ASN1_VALUE *)&t, tbs, ASN1_ITEM_rptr(KR_TBS));
		if (*len <= 0)
			e = kr_err_ossl(KR_EINTERNAL, "encoding the certificate");
	}
	sk_X509_EXTENSION_free(all);
	sk_X509_EXTENSION_pop_free(own, X509_EXTENSION_free);
	return e;
}

KR_MUST_USE kr_err kr_leaf_finish(const kr_leaf *l, const uint8_t *tbs, int tbslen,
				  const uint8_t *sig, size_t siglen, uint8_t **der, int *derlen)
{
	return kr_sign_assemble(tbs, (size_t)tbslen, l->sigalg, sig, siglen, der, derlen);
}

/* A request for a throwaway key of the profile's first key type, with names
 * of the profile's form. */
static KR_MUST_USE kr_err sample_request(const kr_leaf *l, EVP_PKEY **key, kr_csr *c, char *name,
					 size_t sz)
{
	kr_key_type t = KR_KEY_EC_P256;
	for (int i = KR_KEY_ED25519; i >= 0; i--)
		if (l->p->key_types & (1u << i))
			t = (kr_key_type)i;
	KR_TRY(kr_throwaway_key(t, key));
	c->spki_len = i2d_PUBKEY(*key, &c->spki);
	X509_PUBKEY *xp = X509_PUBKEY_new();
	const unsigned char *bits = NULL;
	int nbits = 0;
	int ok = c->spki_len > 0 && xp && X509_PUBKEY_set(&xp, *key) &&
		 X509_PUBKEY_get0_param(NULL, &bits, &nbits, NULL, xp);
	ok = ok && EVP_Digest(bits, (size_t)nbits, c->key_sha1, NULL, EVP_sha1(), NULL);
	X509_PUBKEY_free(xp);
	KR_OSSL(ok, KR_EINTERNAL, "sample key");
	c->key_type = t;
	if (l->p->identity == KR_ID_DEVICE)
		return kr_profile_device_name(l->p, "1000000000000001", 11, name, sz);
	snprintf(name, sz, "%s", l->p->identity == KR_ID_DNS ? l->p->permitted[0] : "sample");
	return kr_ok();
}

static void free_validity(KR_VALIDITY **v)
{
	ASN1_item_free((ASN1_VALUE *)*v, ASN1_ITEM_rptr(KR_VALIDITY));
}

/* This builder's output for a sample request, signed with the signing
 * key's throwaway twin. */
static KR_MUST_USE kr_err sample_cert(const kr_leaf *l, const kr_signing *s, X509 **out)
{
	KR_AUTO(EVP_PKEY) key = NULL;
	__attribute__((cleanup(kr_csr_clear))) kr_csr c = {0};
	__attribute__((cleanup(free_validity))) KR_VALIDITY *v = NULL;
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_AUTO(uint8_t) tbs = NULL;
	KR_AUTO(uint8_t) der = NULL;
	char name[256];
	const char *dns[1] = {name};
	int tbslen = 0, derlen = 0;
	uint8_t sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	KR_TRY(sample_request(l, &key, &c, name, sizeof name));
	KR_TRY(kr_serial_throwaway(&serial));
	KR_TRY(kr_leaf_validity(l, time(NULL), &v));
	kr_leaf_req r = {&c, name, dns, l->p->identity == KR_ID_CN ? 0 : 1, serial, v};
	KR_TRY(kr_leaf_tbs(l, &r, &tbs, &tbslen));
	KR_TRY(kr_signing_sign_draft(s, tbs, (size_t)tbslen, sig, &siglen));
	KR_TRY(kr_leaf_finish(l, tbs, tbslen, sig, siglen, &der, &derlen));
	const unsigned char *p = der;
	*out = d2i_X509(NULL, &p, derlen);
	KR_OSSL(*out && X509_verify(*out, s->throwaway) == 1, KR_EINTERNAL,
		"the sample certificate does not verify");
	return kr_ok();
}

/* The profile lint: a sample certificate through the full pre-issuance
 * lint, before any request is read. */
static KR_MUST_USE kr_err lint_profile(const kr_leaf *l, const kr_signing *s)
{
	KR_AUTO(X509) x = NULL;
	kr_err e = sample_cert(l, s, &x);
	if (!kr_failed(&e))
		e = kr_lint_cert(x, l->issuer, KR_ROLE_LEAF, 1);
	kr_err_prefix(&e, "profile %s", l->p->name);
	return e;
}

KR_MUST_USE kr_err kr_leaf_new(const kr_profile *p, CONF *conf, X509 *issuer,
			       const kr_signing *signer, kr_leaf **out)
{
	kr_leaf *l = calloc(1, sizeof *l);
	KR_ENSURE(l, KR_EINTERNAL, "out of memory");
	l->p = p;
	l->issuer = X509_dup(issuer);
	l->version = ASN1_INTEGER_new();
	KR_AUTO(uint8_t) name = NULL;
	int n = i2d_X509_NAME(X509_get_subject_name(issuer), &name);
	const unsigned char *q = name;
	l->issuer_name = n > 0 ? d2i_ASN1_TYPE(NULL, &q, n) : NULL;
	kr_err e = l->issuer && l->version && l->issuer_name &&
				   ASN1_INTEGER_set(l->version, X509_VERSION_3)
			   ? kr_ok()
			   : kr_err_ossl(KR_EINTERNAL, "preparing the profile");
	if (!kr_failed(&e))
		e = signature_algorithm(signer, &l->sigalg);
	l->nc = X509_get_ext_d2i(issuer, NID_name_constraints, NULL, NULL);
	if (!kr_failed(&e))
		e = fixed_extensions(l, conf);
	if (!kr_failed(&e))
		e = lint_profile(l, signer);
	if (kr_failed(&e)) {
		kr_leaf_free(l);
		return e;
	}
	*out = l;
	return kr_ok();
}
