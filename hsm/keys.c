/* Key pairs on the token: generation with explicit templates, lookup by URI,
 * and the public key and security attributes read back from the token. */
#include "internal.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- attribute helpers ------------------------------------------------- */

static KR_MUST_USE kr_err get_attr(kr_hsm_session *s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
				   uint8_t **val, size_t *len)
{
	CK_ATTRIBUTE a = {t, NULL, 0};
	KR_CK(s->h->fn->C_GetAttributeValue(s->handle, o, &a, 1), KR_EHSM,
	      "reading attribute 0x%lx", t);
	*val = OPENSSL_malloc(a.ulValueLen + 1);
	KR_ENSURE(*val, KR_EINTERNAL, "out of memory");
	a.pValue = *val;
	CK_RV rv = s->h->fn->C_GetAttributeValue(s->handle, o, &a, 1);
	if (rv != CKR_OK) {
		OPENSSL_free(*val);
		*val = NULL;
		return kr_hsm_ck_err(rv, KR_EHSM, "reading attribute 0x%lx", t);
	}
	*len = a.ulValueLen;
	return kr_ok();
}

static int get_bool(kr_hsm_session *s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {t, &v, sizeof v};
	if (s->h->fn->C_GetAttributeValue(s->handle, o, &a, 1) != CKR_OK)
		return -1;
	return v == CK_TRUE;
}

KR_MUST_USE kr_err kr_hsm_find(kr_hsm_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
			       CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *found)
{
	CK_FUNCTION_LIST *fn = s->h->fn;
	KR_CK(fn->C_FindObjectsInit(s->handle, tmpl, n), KR_EHSM, "C_FindObjectsInit");
	CK_RV rv = fn->C_FindObjects(s->handle, out, max, found);
	fn->C_FindObjectsFinal(s->handle);
	KR_CK(rv, KR_EHSM, "C_FindObjects");
	return kr_ok();
}

/* ---- public keys ------------------------------------------------------- */

/* CKA_EC_POINT is a DER OCTET STRING (PKCS#11 2.40 section 2.3.3); a few
 * modules return the raw point. Accept both. */
static void unwrap_point(const uint8_t *p, size_t n, const uint8_t **pt, size_t *ptlen)
{
	const unsigned char *q = p;
	ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)n);
	if (os && (size_t)(q - p) == n) {
		*pt = p + (n - (size_t)os->length);
		*ptlen = (size_t)os->length;
	} else {
		*pt = p;
		*ptlen = n;
	}
	ASN1_OCTET_STRING_free(os);
	ERR_clear_error();
}

static int curve_nid(const uint8_t *params, size_t n)
{
	const unsigned char *q = params;
	ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &q, (long)n);
	int nid = obj ? OBJ_obj2nid(obj) : NID_undef;
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
	/* Some modules name Ed25519 as a PrintableString (PKCS#11 3.0). */
	if (nid == NID_undef && n > 2 && params[0] == 0x13 &&
	    memmem(params, n, "edwards25519", 12) != NULL)
		nid = NID_ED25519;
	return nid;
}

static KR_MUST_USE kr_err ec_public(int nid, const uint8_t *pt, size_t ptlen, EVP_PKEY **out)
{
	if (nid == NID_ED25519) {
		*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, ptlen);
		KR_OSSL(*out, KR_EHSM, "token returned a bad Ed25519 public key");
		return kr_ok();
	}
	const char *group = OBJ_nid2sn(nid);
	KR_ENSURE(group, KR_EHSM, "token key uses an unknown curve");
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, ptlen),
		OSSL_PARAM_construct_end(),
	};
	KR_AUTO(EVP_PKEY_CTX) ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	KR_OSSL(ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
			EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) > 0,
		KR_EHSM, "token returned a bad EC public key");
	return kr_ok();
}

static KR_MUST_USE kr_err rsa_public(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
				     EVP_PKEY **out)
{
	KR_AUTO(BIGNUM) bn = BN_bin2bn(n, (int)nlen, NULL);
	KR_AUTO(BIGNUM) be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	if (bld && bn && be && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		params = OSSL_PARAM_BLD_to_param(bld);
	OSSL_PARAM_BLD_free(bld);
	KR_AUTO(EVP_PKEY_CTX) ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	int ok = params && ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
		 EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) > 0;
	OSSL_PARAM_free(params);
	KR_OSSL(ok, KR_EHSM, "token returned a bad RSA public key");
	return kr_ok();
}

/* The public key, from the public key object when there is one (EC needs it:
 * a private EC key object carries no point), else from the RSA private key. */
static KR_MUST_USE kr_err read_public(kr_hsm_session *s, kr_hsm_key *k, CK_KEY_TYPE kt)
{
	CK_OBJECT_HANDLE src = k->pub != CK_INVALID_HANDLE ? k->pub : k->priv;
	KR_AUTO(uint8_t) a = NULL;
	KR_AUTO(uint8_t) b = NULL;
	size_t alen = 0, blen = 0;
	if (kt == CKK_RSA) {
		KR_TRY(get_attr(s, src, CKA_MODULUS, &a, &alen));
		KR_TRY(get_attr(s, src, CKA_PUBLIC_EXPONENT, &b, &blen));
		return rsa_public(a, alen, b, blen, &k->pubkey);
	}
	KR_ENSURE(kt == CKK_EC || kt == CKK_EC_EDWARDS, KR_EHSM,
		  "key '%s': key type 0x%lx is not supported", k->label, kt);
	KR_ENSURE(k->pub != CK_INVALID_HANDLE, KR_EHSM,
		  "key '%s': the token holds no public key object for it, so its public key "
		  "cannot be read",
		  k->label);
	KR_TRY(get_attr(s, k->pub, CKA_EC_PARAMS, &a, &alen));
	KR_TRY(get_attr(s, k->pub, CKA_EC_POINT, &b, &blen));
	const uint8_t *pt;
	size_t ptlen;
	unwrap_point(b, blen, &pt, &ptlen);
	return ec_public(curve_nid(a, alen), pt, ptlen, &k->pubkey);
}

/* Fills k (label, id, public key, type) from its private key handle. */
KR_MUST_USE kr_err kr_hsm_key_load(kr_hsm_session *s, kr_hsm_key *k)
{
	KR_AUTO(uint8_t) v = NULL;
	size_t n = 0;
	KR_TRY(get_attr(s, k->priv, CKA_LABEL, &v, &n));
	snprintf(k->label, sizeof k->label, "%.*s", (int)n, (const char *)v);
	OPENSSL_free(v);
	v = NULL;
	KR_TRY(get_attr(s, k->priv, CKA_ID, &v, &n));
	k->id_len = n < sizeof k->id ? n : sizeof k->id;
	if (v && k->id_len)
		memcpy(k->id, v, k->id_len);

	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
	KR_CK(s->h->fn->C_GetAttributeValue(s->handle, k->priv, &a, 1), KR_EHSM,
	      "key '%s': reading its key type", k->label);

	CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &pub_class, sizeof pub_class},
			       {CKA_ID, k->id, k->id_len},
			       {CKA_LABEL, k->label, strlen(k->label)}};
	CK_ULONG found = 0;
	/* Match on the id when there is one; labels are for people. */
	KR_TRY(kr_hsm_find(s, tmpl, k->id_len ? 2 : 3, &k->pub, 1, &found));
	if (found == 0)
		k->pub = CK_INVALID_HANDLE;
	KR_TRY(read_public(s, k, kt));
	kr_err e = kr_key_type_of(k->pubkey, &k->type);
	kr_err_prefix(&e, "key '%s'", k->label);
	return e;
}

void kr_hsm_key_free(kr_hsm_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pubkey);
	free(k);
}

const char *kr_hsm_key_label(const kr_hsm_key *k) { return k->label; }
kr_key_type kr_hsm_key_type(const kr_hsm_key *k) { return k->type; }
EVP_PKEY *kr_hsm_key_public(const kr_hsm_key *k) { return k->pubkey; }
KR_MUST_USE kr_err kr_hsm_key_spki_sha256(const kr_hsm_key *k, uint8_t out[32])
{
	kr_err e = kr_spki_sha256(k->pubkey, out);
	kr_err_prefix(&e, "key '%s'", k->label);
	return e;
}

const uint8_t *kr_hsm_key_id(const kr_hsm_key *k, size_t *len)
{
	*len = k->id_len;
	return k->id;
}

/* ---- lookup ------------------------------------------------------------ */

KR_MUST_USE kr_err kr_hsm_key_find(kr_hsm *h, const char *uri, kr_hsm_key **out)
{
	P11KitUri *u = NULL;
	KR_TRY(kr_hsm_uri_parse(uri, &u));
	CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(u, CKA_LABEL);
	CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(u, CKA_ID);
	CK_ATTRIBUTE *cls = p11_kit_uri_get_attribute(u, CKA_CLASS);
	CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE; /* not a session copy (kr_hsm_key_session_copy) */
	CK_ATTRIBUTE tmpl[4] = {{CKA_CLASS, &priv_class, sizeof priv_class},
				{CKA_TOKEN, &yes, sizeof yes}};
	CK_ULONG n = 2;
	if (label)
		tmpl[n++] = *label;
	if (id)
		tmpl[n++] = *id;
	kr_err e = kr_ok();
	if (n == 2)
		e = kr_errf(KR_EINPUT, "%s: names no key; add object=LABEL or id=...", uri);
	else if (cls && (cls->ulValueLen != sizeof(CK_OBJECT_CLASS) ||
			 *(CK_OBJECT_CLASS *)cls->pValue != CKO_PRIVATE_KEY))
		e = kr_errf(KR_EINPUT,
			    "%s: keyrite addresses a key pair by its private key; use type=private "
			    "or leave type out",
			    uri);
	CK_OBJECT_HANDLE handles[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
	CK_ULONG found = 0;
	if (!kr_failed(&e))
		e = kr_hsm_find(h->main, tmpl, n, handles, 2, &found);
	p11_kit_uri_free(u);
	KR_TRY(e);
	KR_ENSURE(found > 0, KR_EHSM, "%s: no such private key on token '%s'", uri, h->token.label);
	KR_ENSURE(found == 1, KR_EHSM, "%s: several private keys match on token '%s'; add id=", uri,
		  h->token.label);

	kr_hsm_key *k = calloc(1, sizeof *k);
	KR_ENSURE(k, KR_EINTERNAL, "out of memory");
	k->priv = handles[0];
	e = kr_hsm_key_load(h->main, k);
	if (kr_failed(&e)) {
		kr_hsm_key_free(k);
		return e;
	}
	*out = k;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_keys(kr_hsm *h, kr_hsm_key_cb cb, void *arg)
{
	CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &priv_class, sizeof priv_class},
			       {CKA_TOKEN, &yes, sizeof yes}};
	CK_OBJECT_HANDLE handles[1024];
	CK_ULONG found = 0;
	KR_TRY(kr_hsm_find(h->main, tmpl, 2, handles, 1024, &found));
	for (CK_ULONG i = 0; i < found; i++) {
		kr_hsm_key *k = calloc(1, sizeof *k);
		KR_ENSURE(k, KR_EINTERNAL, "out of memory");
		k->priv = handles[i];
		kr_err e = kr_hsm_key_load(h->main, k);
		if (kr_failed(&e)) {
			kr_hsm_key_free(k);
			return e;
		}
		cb(h, k, arg);
		kr_hsm_key_free(k);
	}
	return kr_ok();
}

void kr_hsm_key_attrs(kr_hsm *h, const kr_hsm_key *k, kr_key_attrs *a)
{
	kr_hsm_session *s = h->main;
	a->token = get_bool(s, k->priv, CKA_TOKEN);
	a->private_ = get_bool(s, k->priv, CKA_PRIVATE);
	a->sensitive = get_bool(s, k->priv, CKA_SENSITIVE);
	a->extractable = get_bool(s, k->priv, CKA_EXTRACTABLE);
	a->always_sensitive = get_bool(s, k->priv, CKA_ALWAYS_SENSITIVE);
	a->never_extractable = get_bool(s, k->priv, CKA_NEVER_EXTRACTABLE);
	a->local = get_bool(s, k->priv, CKA_LOCAL);
	a->sign = get_bool(s, k->priv, CKA_SIGN);
	a->decrypt = get_bool(s, k->priv, CKA_DECRYPT);
	a->unwrap = get_bool(s, k->priv, CKA_UNWRAP);
	a->derive = get_bool(s, k->priv, CKA_DERIVE);
	a->wrap_with_trusted = get_bool(s, k->priv, CKA_WRAP_WITH_TRUSTED);
}

void kr_key_attrs_format(const kr_key_attrs *a, char *out, size_t outsz)
{
	static const char *const names[] = {"CKA_TOKEN",
					    "CKA_PRIVATE",
					    "CKA_SENSITIVE",
					    "CKA_EXTRACTABLE",
					    "CKA_ALWAYS_SENSITIVE",
					    "CKA_NEVER_EXTRACTABLE",
					    "CKA_LOCAL",
					    "CKA_SIGN",
					    "CKA_DECRYPT",
					    "CKA_UNWRAP",
					    "CKA_DERIVE",
					    "CKA_WRAP_WITH_TRUSTED"};
	const int vals[] = {a->token,
			    a->private_,
			    a->sensitive,
			    a->extractable,
			    a->always_sensitive,
			    a->never_extractable,
			    a->local,
			    a->sign,
			    a->decrypt,
			    a->unwrap,
			    a->derive,
			    a->wrap_with_trusted};
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof vals / sizeof *vals && o < outsz; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%s=%s", i ? " " : "", names[i],
				      vals[i] < 0 ? "unreadable"
				      : vals[i]   ? "true"
						  : "false");
}

/* PKCS#11 2.40 section 4.4 lets a copy tighten CKA_SENSITIVE and
 * CKA_EXTRACTABLE, never loosen them; they are read back all the same, and a
 * copy that would be weaker than the token object is destroyed unused. */
KR_MUST_USE kr_err kr_hsm_key_session_copy(kr_hsm *h, kr_hsm_key *k, int *copied)
{
	CK_BBOOL no = CK_FALSE;
	/* a key made for backup is extractable under a trusted key; its copy,
	 * which only signs, need not be (SoftHSM refuses the attribute in the
	 * template of a key that is not extractable already) */
	CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_EXTRACTABLE, &no, sizeof no}};
	CK_ULONG n = get_bool(h->main, k->priv, CKA_EXTRACTABLE) == 1 ? 2 : 1;
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	*copied = k->copy != CK_INVALID_HANDLE;
	if (*copied || h->fn->C_CopyObject(h->main->handle, k->priv, tmpl, n, &copy) != CKR_OK)
		return kr_ok(); /* made already, or refused (CKA_COPYABLE false) */
	int sensitive = get_bool(h->main, copy, CKA_SENSITIVE);
	int extractable = get_bool(h->main, copy, CKA_EXTRACTABLE);
	if (sensitive != 1 || extractable != 0) {
		h->fn->C_DestroyObject(h->main->handle, copy);
		return kr_errf(KR_EHSM,
			       "key '%s': the token made a session copy that is not "
			       "sensitive or is extractable",
			       k->label);
	}
	k->copy = copy;
	*copied = 1;
	return kr_ok();
}

/* ---- generation -------------------------------------------------------- */

KR_MUST_USE kr_err kr_hsm_key_destroy(kr_hsm *h, kr_hsm_key *k)
{
	CK_FUNCTION_LIST *fn = h->fn;
	CK_RV rv = fn->C_DestroyObject(h->main->handle, k->priv);
	if (k->pub != CK_INVALID_HANDLE) {
		CK_RV rv2 = fn->C_DestroyObject(h->main->handle, k->pub);
		if (rv == CKR_OK)
			rv = rv2;
	}
	KR_CK(rv, KR_EHSM, "key '%s': C_DestroyObject", k->label);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_label_unused(kr_hsm *h, const char *label)
{
	CK_ATTRIBUTE tmpl[] = {{CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE o;
	CK_ULONG found = 0;
	KR_TRY(kr_hsm_find(h->main, tmpl, 1, &o, 1, &found));
	KR_ENSURE(found == 0, KR_EEXIST, "token '%s' already holds an object labelled '%s'",
		  h->token.label, label);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_ec_params(int nid, uint8_t *out, size_t *len)
{
	unsigned char *p = out;
	int n = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &p);
	KR_OSSL(n > 0 && (size_t)n <= *len, KR_EINTERNAL, "encoding curve OID");
	*len = (size_t)n;
	return kr_ok();
}

static CK_BBOOL yes_ = CK_TRUE, no_ = CK_FALSE;

void kr_hsm_private_attrs(CK_ATTRIBUTE t[KR_PRIVATE_ATTRS], const char *label, const uint8_t *id,
			  size_t id_len, int backup)
{
	CK_ATTRIBUTE a[KR_PRIVATE_ATTRS] = {
		{CKA_TOKEN, &yes_, sizeof yes_},
		{CKA_PRIVATE, &yes_, sizeof yes_},
		{CKA_SENSITIVE, &yes_, sizeof yes_},
		{CKA_EXTRACTABLE, backup ? &yes_ : &no_, sizeof no_},
		{CKA_WRAP_WITH_TRUSTED, backup ? &yes_ : &no_, sizeof no_},
		{CKA_SIGN, &yes_, sizeof yes_},
		{CKA_DECRYPT, &no_, sizeof no_},
		{CKA_UNWRAP, &no_, sizeof no_},
		{CKA_DERIVE, &no_, sizeof no_},
		{CKA_LABEL, (void *)label, strlen(label)},
		{CKA_ID, (void *)id, id_len},
	};
	memcpy(t, a, sizeof a);
}

/* Every attribute that decides whether the key can leave the token or be
 * misused is set explicitly: SoftHSM's defaults allow decrypt, unwrap and
 * derive. (reference section 2) */
static KR_MUST_USE kr_err generate(kr_hsm *h, kr_key_type type, int backup, kr_hsm_key *k,
				   CK_RV *rv)
{
	const char *label = k->label;
	const uint8_t *id = k->id;
	size_t id_len = k->id_len;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = (CK_ULONG)kr_key_type_bits(type);
	uint8_t f4[] = {0x01, 0x00, 0x01}, params[32];
	size_t params_len = sizeof params;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	if (kr_key_type_is_rsa(type))
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
	else {
		if (type == KR_KEY_ED25519)
			mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		KR_TRY(kr_hsm_ec_params(kr_key_type_curve(type), params, &params_len));
	}
	/* The last two entries are per algorithm: EC takes only the curve, RSA
	 * replaces it with the modulus size and adds the exponent. */
	CK_ATTRIBUTE pubt[] = {
		{CKA_TOKEN, &yes, sizeof yes},        {CKA_PRIVATE, &no, sizeof no},
		{CKA_VERIFY, &yes, sizeof yes},       {CKA_ENCRYPT, &no, sizeof no},
		{CKA_WRAP, &no, sizeof no},           {CKA_LABEL, (void *)label, strlen(label)},
		{CKA_ID, (void *)id, id_len},         {CKA_EC_PARAMS, params, params_len},
		{CKA_PUBLIC_EXPONENT, f4, sizeof f4},
	};
	CK_ULONG npub = 8;
	if (kr_key_type_is_rsa(type)) {
		pubt[7] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
		npub = 9;
	}
	CK_ATTRIBUTE privt[KR_PRIVATE_ATTRS];
	kr_hsm_private_attrs(privt, label, id, id_len, backup);
	*rv = h->fn->C_GenerateKeyPair(h->main->handle, &mech, pubt, npub, privt, KR_PRIVATE_ATTRS,
				       &k->pub, &k->priv);
	KR_CK(*rv, KR_EHSM, "token '%s': C_GenerateKeyPair (%s)", h->token.label,
	      kr_key_type_name(type));
	return kr_ok();
}

/* The read-back of reference section 2: a key whose attributes are not what
 * was asked for is not a CA key. */
static KR_MUST_USE kr_err check_generated(kr_hsm *h, kr_hsm_key *k, kr_key_type want, int backup)
{
	kr_key_attrs a;
	kr_hsm_key_attrs(h, k, &a);
	char text[512];
	kr_key_attrs_format(&a, text, sizeof text);
	int ok = a.token == 1 && a.private_ == 1 && a.sensitive == 1 && a.extractable == backup &&
		 a.always_sensitive == 1 && a.never_extractable == !backup && a.local == 1 &&
		 a.sign == 1 && a.decrypt == 0 && a.unwrap == 0 && a.derive == 0 &&
		 (a.wrap_with_trusted == backup || !backup);
	KR_ENSURE(ok, KR_EHSM, "key '%s': token did not honour the template (%s)", k->label, text);
	KR_ENSURE(k->type == want, KR_EHSM, "key '%s': token made a %s key, not %s", k->label,
		  kr_key_type_name(k->type), kr_key_type_name(want));
	return kr_ok();
}

static KR_MUST_USE kr_err new_label(kr_hsm *h, const char *uri, char label[256])
{
	P11KitUri *u = NULL;
	KR_TRY(kr_hsm_uri_parse(uri, &u));
	CK_ATTRIBUTE *la = p11_kit_uri_get_attribute(u, CKA_LABEL);
	int has_id = p11_kit_uri_get_attribute(u, CKA_ID) != NULL;
	label[0] = '\0';
	if (la)
		snprintf(label, 256, "%.*s", (int)la->ulValueLen, (const char *)la->pValue);
	p11_kit_uri_free(u);
	KR_ENSURE(label[0], KR_EINPUT, "%s: a new key needs a label: add object=LABEL", uri);
	KR_ENSURE(!has_id, KR_EINPUT,
		  "%s: keyrite draws a new key's id from the token's RNG; remove id=", uri);
	return kr_hsm_label_unused(h, label);
}

KR_MUST_USE kr_err kr_hsm_keygen_check(kr_hsm *h, const char *uri)
{
	char label[256];
	return new_label(h, uri, label);
}

/* A token refuses a bad template or mechanism before it makes anything; a
 * device that fails in the middle may have stored part of the pair (SoftHSM
 * does, when its storage fails). */
static int may_have_stored(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED || rv == CKR_DEVICE_ERROR ||
	       rv == CKR_DEVICE_MEMORY || rv == CKR_DEVICE_REMOVED || rv == CKR_HOST_MEMORY;
}

/* Destroys what carries the new key's CKA_ID (fresh from the token's RNG,
 * so nothing else has it); *n: how many objects it found. */
static KR_MUST_USE kr_err destroy_by_id(kr_hsm *h, const kr_hsm_key *k, CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[] = {{CKA_ID, (void *)k->id, k->id_len}};
	CK_OBJECT_HANDLE found[8];
	KR_TRY(kr_hsm_find(h->main, tmpl, 1, found, 8, n));
	for (CK_ULONG i = 0; i < *n; i++)
		KR_CK(h->fn->C_DestroyObject(h->main->handle, found[i]), KR_EHSM,
		      "C_DestroyObject");
	return kr_ok();
}

/* No half-made key stays behind, and one that may have is named, so that the
 * operator removes it by hand: after a failed read-back the pair's handles
 * are known; after a failed C_GenerateKeyPair only its id is, and a token
 * that failed midway may not even list what it stored (SoftHSM does not, in
 * the same process). */
static void undo_keygen(kr_hsm *h, const kr_hsm_key *k, CK_RV generate_rv, kr_err *e)
{
	kr_err d = kr_ok();
	CK_ULONG found = 0;
	if (generate_rv == CKR_OK)
		d = kr_hsm_key_destroy(h, (kr_hsm_key *)k);
	else if (may_have_stored(generate_rv)) {
		d = destroy_by_id(h, k, &found);
		if (!kr_failed(&d) && found == 0)
			d = kr_errf(KR_EHSM, "the token failed during C_GenerateKeyPair and lists "
					     "none of what it may have stored");
	}
	if (!kr_failed(&d))
		return;
	char hex[2 * sizeof k->id + 1];
	kr_hex(k->id, k->id_len, hex);
	kr_err_prefix(&d,
		      "the new key (label '%s', id %s) may still be on token '%s': check with "
		      "keyrite hsm keys and remove it by hand",
		      k->label, hex, h->token.label);
	kr_err_also(e, &d);
}

KR_MUST_USE kr_err kr_hsm_secret_keygen(kr_hsm *h, const char *uri, uint8_t id[16])
{
	char label[256];
	KR_TRY(new_label(h, uri, label));
	KR_TRY(kr_hsm_random(h, id, 16));
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32;
	/* encryption only: the registry derives from it (registry/secret.c),
	 * nothing is ever decrypted or wrapped with it */
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_VALUE_LEN, &len, sizeof len},
		{CKA_TOKEN, &yes, sizeof yes},
		{CKA_PRIVATE, &yes, sizeof yes},
		{CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &no, sizeof no},
		{CKA_ENCRYPT, &yes, sizeof yes},
		{CKA_DECRYPT, &no, sizeof no},
		{CKA_WRAP, &no, sizeof no},
		{CKA_UNWRAP, &no, sizeof no},
		{CKA_SIGN, &no, sizeof no},
		{CKA_DERIVE, &no, sizeof no},
		{CKA_LABEL, label, strlen(label)},
		{CKA_ID, id, 16},
	};
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE key;
	KR_CK(h->fn->C_GenerateKey(h->main->handle, &mech, t, sizeof t / sizeof *t, &key), KR_EHSM,
	      "token '%s': C_GenerateKey (AES-256) for '%s'", h->token.label, label);
	/* read back, as for key pairs: a token that ignored the template
	 * loses the key */
	CK_BBOOL got[7];
	CK_ATTRIBUTE r[] = {
		{CKA_SENSITIVE, &got[0], 1},   {CKA_ALWAYS_SENSITIVE, &got[1], 1},
		{CKA_LOCAL, &got[2], 1},       {CKA_ENCRYPT, &got[3], 1},
		{CKA_EXTRACTABLE, &got[4], 1}, {CKA_NEVER_EXTRACTABLE, &got[5], 1},
		{CKA_DECRYPT, &got[6], 1},
	};
	CK_RV rv = h->fn->C_GetAttributeValue(h->main->handle, key, r, 7);
	int ok = rv == CKR_OK && got[0] && got[1] && got[2] && got[3] && !got[4] && got[5] &&
		 !got[6];
	if (ok)
		return kr_ok();
	(void)h->fn->C_DestroyObject(h->main->handle, key);
	if (rv != CKR_OK)
		return kr_hsm_ck_err(rv, KR_EHSM,
				     "token '%s': reading back AES key '%s' (destroyed)",
				     h->token.label, label);
	return kr_errf(KR_EHSM,
		       "token '%s': the new AES key '%s' is not sensitive, local, never "
		       "extractable and encrypt-only as asked; destroyed",
		       h->token.label, label);
}

static KR_MUST_USE kr_err keygen(kr_hsm *h, const char *uri, kr_key_type type, int backup,
				 kr_hsm_key **out)
{
	kr_hsm_key *k = calloc(1, sizeof *k);
	KR_ENSURE(k, KR_EINTERNAL, "out of memory");
	k->id_len = 16;
	kr_err e = new_label(h, uri, k->label);
	if (!kr_failed(&e))
		e = kr_hsm_random(h, k->id, k->id_len);
	if (kr_failed(&e)) {
		kr_hsm_key_free(k);
		return e;
	}
	CK_RV rv = CKR_FUNCTION_NOT_SUPPORTED; /* until the token is asked */
	e = generate(h, type, backup, k, &rv);
	if (!kr_failed(&e)) {
		e = kr_hsm_key_load(h->main, k);
		kr_err_prefix(&e, "token '%s': reading back the new key '%s'", h->token.label,
			      k->label);
	}
	if (!kr_failed(&e))
		e = check_generated(h, k, type, backup);
	if (kr_failed(&e)) {
		undo_keygen(h, k, rv, &e);
		kr_hsm_key_free(k);
		return e;
	}
	*out = k;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_keygen(kr_hsm *h, const char *uri, kr_key_type type, kr_hsm_key **out)
{
	return keygen(h, uri, type, 0, out);
}

KR_MUST_USE kr_err kr_hsm_keygen_backup(kr_hsm *h, const char *uri, kr_key_type type,
					kr_hsm_key **out)
{
	return keygen(h, uri, type, 1, out);
}
