/* The backup ceremony's wrapping key (hsm.h): an AES-256 key the SO puts
 * on the token as a trusted session object, which alone can wrap the keys
 * made for backup (CKA_WRAP_WITH_TRUSTED, reference section 9). Login
 * state belongs to the whole application (PKCS#11 2.40 section 5.5), so
 * the user logs out, the SO logs in to create it, and the user logs in
 * again; the key is public (SoftHSM takes CKA_TRUSTED on no other kind)
 * and never on the token's storage (CKA_TOKEN false): it is gone when the
 * session ends, and destroyed before that. */
#include "internal.h"
#include "../util/cleanup.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

struct kr_hsm_backup_key {
	kr_hsm *h;
	CK_OBJECT_HANDLE key;
};

static KR_MUST_USE kr_err login_as(kr_hsm *h, CK_USER_TYPE who, const kr_pin_source *src)
{
	char pin[256], what[128];
	snprintf(what, sizeof what, "token '%s'%s", h->token.label,
		 who == CKU_SO ? "'s security officer" : "");
	KR_TRY(kr_hsm_pin_read(NULL, src, what, pin, sizeof pin));
	CK_RV rv = h->fn->C_Login(h->main->handle, who, (CK_UTF8CHAR *)pin, strlen(pin));
	OPENSSL_cleanse(pin, sizeof pin);
	KR_CK(rv, KR_EHSM, "%s: login failed (keyrite does not retry)", what);
	return kr_ok();
}

static KR_MUST_USE kr_err create(kr_hsm *h, const uint8_t key[32], CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static const char label[] = "keyrite backup key";
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_TOKEN, &no, sizeof no},
		{CKA_PRIVATE, &no, sizeof no},
		{CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &no, sizeof no},
		{CKA_TRUSTED, &yes, sizeof yes},
		{CKA_WRAP, &yes, sizeof yes},
		{CKA_UNWRAP, &yes, sizeof yes},
		{CKA_ENCRYPT, &no, sizeof no},
		{CKA_DECRYPT, &no, sizeof no},
		{CKA_SIGN, &no, sizeof no},
		{CKA_LABEL, (void *)label, sizeof label - 1},
		{CKA_VALUE, (void *)key, 32},
	};
	KR_CK(h->fn->C_CreateObject(h->main->handle, t, sizeof t / sizeof *t, out), KR_EHSM,
	      "token '%s': the SO creating the trusted backup key", h->token.label);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_backup_key_new(kr_hsm *h, const kr_pin_source *so,
					 const kr_pin_source *user, const uint8_t key[32],
					 kr_hsm_backup_key **out)
{
	kr_hsm_backup_key *b = calloc(1, sizeof *b);
	KR_ENSURE(b, KR_EINTERNAL, "out of memory");
	b->h = h;
	b->key = CK_INVALID_HANDLE;
	(void)h->fn->C_Logout(h->main->handle);
	kr_err e = login_as(h, CKU_SO, so);
	if (!kr_failed(&e)) {
		e = create(h, key, &b->key);
		(void)h->fn->C_Logout(h->main->handle);
	}
	/* the user again, whatever happened: the caller's session as it was */
	kr_err back = login_as(h, CKU_USER, user);
	if (!kr_failed(&e) && kr_failed(&back))
		e = back;
	if (kr_failed(&e)) {
		kr_hsm_backup_key_destroy(b);
		return e;
	}
	*out = b;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_backup_wrap(const kr_hsm_backup_key *b, const kr_hsm_key *k, uint8_t *out,
				      size_t *len)
{
	/* the user's logout made every handle to a private object invalid
	 * (PKCS#11 2.40 section 5.5): the key is found again by its id */
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE by[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, (void *)k->id, k->id_len}};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG nfound = 0;
	KR_TRY(kr_hsm_find(b->h->main, by, 2, found, 2, &nfound));
	KR_ENSURE(nfound == 1, KR_EHSM, "key '%s': %lu private keys with its id", k->label,
		  (unsigned long)nfound);
	/* RFC 5649: AES key wrap with padding, the private key as PKCS#8 */
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_ULONG n = *len;
	CK_RV rv = b->h->fn->C_WrapKey(b->h->main->handle, &mech, b->key, found[0], out, &n);
	if (rv == CKR_KEY_NOT_WRAPPABLE || rv == CKR_KEY_UNEXTRACTABLE) {
		CK_BBOOL ext = CK_FALSE, trusted = CK_FALSE;
		CK_ATTRIBUTE q[] = {{CKA_EXTRACTABLE, &ext, 1},
				    {CKA_WRAP_WITH_TRUSTED, &trusted, 1}};
		(void)b->h->fn->C_GetAttributeValue(b->h->main->handle, found[0], q, 2);
		KR_ENSURE(ext == CK_TRUE && trusted == CK_TRUE, KR_EINPUT,
			  "key '%s' was not made for backup (keyrite hsm keygen --backup: "
			  "CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED)",
			  k->label);
		return kr_hsm_ck_err(rv, KR_EHSM,
				     "token '%s' cannot wrap key '%s', a %s key made for backup "
				     "(SoftHSM 2.6.1 wraps EC and RSA keys only)",
				     b->h->token.label, k->label, kr_key_type_name(k->type));
	}
	KR_CK(rv, KR_EHSM, "token '%s': wrapping key '%s' (C_WrapKey, AES key wrap with padding)",
	      b->h->token.label, k->label);
	*len = n;
	return kr_ok();
}

void kr_hsm_backup_key_destroy(kr_hsm_backup_key *b)
{
	if (!b)
		return;
	if (b->key != CK_INVALID_HANDLE)
		(void)b->h->fn->C_DestroyObject(b->h->main->handle, b->key);
	free(b);
}

/* The public key's own attributes, from the certificate's key: a curve and
 * a point (CKA_EC_POINT: the point as a DER OCTET STRING), or RSA's
 * modulus and exponent. */
typedef struct pub_attrs {
	CK_KEY_TYPE kt;
	uint8_t a[600], b[600];
	size_t alen, blen;
} pub_attrs;

static KR_MUST_USE kr_err pub_attrs_of(EVP_PKEY *pub, pub_attrs *p)
{
	kr_key_type t;
	KR_TRY(kr_key_type_of(pub, &t));
	p->alen = sizeof p->a;
	p->blen = sizeof p->b;
	if (kr_key_type_is_rsa(t)) {
		p->kt = CKK_RSA;
		BIGNUM *n = NULL, *e = NULL;
		int ok = EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
			 EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
			 BN_num_bytes(n) <= (int)sizeof p->a && BN_num_bytes(e) <= (int)sizeof p->b;
		if (ok) {
			p->alen = (size_t)BN_bn2bin(n, p->a);
			p->blen = (size_t)BN_bn2bin(e, p->b);
		}
		BN_free(n);
		BN_free(e);
		KR_OSSL(ok, KR_EINTERNAL, "the RSA public key");
		return kr_ok();
	}
	p->kt = t == KR_KEY_ED25519 ? CKK_EC_EDWARDS : CKK_EC;
	KR_TRY(kr_hsm_ec_params(kr_key_type_curve(t), p->a, &p->alen));
	uint8_t pt[200];
	size_t ptlen = sizeof pt;
	int ok = t == KR_KEY_ED25519
			 ? EVP_PKEY_get_raw_public_key(pub, pt, &ptlen) == 1
			 : EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
							   pt, sizeof pt, &ptlen) == 1;
	ASN1_OCTET_STRING *os = ok ? ASN1_OCTET_STRING_new() : NULL;
	unsigned char *q = p->b;
	ok = os && ASN1_OCTET_STRING_set(os, pt, (int)ptlen) == 1 &&
	     i2d_ASN1_OCTET_STRING(os, NULL) <= (int)sizeof p->b;
	int n = ok ? i2d_ASN1_OCTET_STRING(os, &q) : 0;
	ASN1_OCTET_STRING_free(os);
	KR_OSSL(n > 0, KR_EINTERNAL, "the public point");
	p->blen = (size_t)n;
	return kr_ok();
}

static KR_MUST_USE kr_err create_public(kr_hsm *h, const pub_attrs *p, const char *label,
					const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = p->kt;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	int rsa = kt == CKK_RSA;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_TOKEN, &yes, sizeof yes},
		{CKA_PRIVATE, &no, sizeof no},
		{CKA_VERIFY, &yes, sizeof yes},
		{CKA_ENCRYPT, &no, sizeof no},
		{CKA_WRAP, &no, sizeof no},
		{CKA_LABEL, (void *)label, strlen(label)},
		{CKA_ID, (void *)id, id_len},
		{rsa ? CKA_MODULUS : CKA_EC_PARAMS, (void *)p->a, p->alen},
		{rsa ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT, (void *)p->b, p->blen},
	};
	KR_CK(h->fn->C_CreateObject(h->main->handle, t, sizeof t / sizeof *t, out), KR_EHSM,
	      "token '%s': creating the public key of '%s'", h->token.label, label);
	return kr_ok();
}

static KR_MUST_USE kr_err unwrap(const kr_hsm_backup_key *b, const uint8_t *blob, size_t len,
				 const pub_attrs *p, const char *label, const uint8_t *id,
				 size_t id_len, int for_backup, CK_OBJECT_HANDLE *out)
{
	kr_hsm *h = b->h;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = p->kt;
	/* a restored key is made as a generated one is */
	CK_ATTRIBUTE t[2 + KR_PRIVATE_ATTRS] = {{CKA_CLASS, &cls, sizeof cls},
						{CKA_KEY_TYPE, &kt, sizeof kt}};
	kr_hsm_private_attrs(t + 2, label, id, id_len, for_backup);
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_RV rv = h->fn->C_UnwrapKey(h->main->handle, &mech, b->key, (CK_BYTE *)blob, len, t,
				      2 + KR_PRIVATE_ATTRS, out);
	/* RFC 5649's integrity check failed: SoftHSM 2.6.1 says so with
	 * CKR_GENERAL_ERROR, others with the wrapped-key codes */
	if (rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_ENCRYPTED_DATA_INVALID ||
	    rv == CKR_WRAPPED_KEY_LEN_RANGE || rv == CKR_GENERAL_ERROR)
		return kr_hsm_ck_err(rv, KR_EVERIFY,
				     "the backup of '%s' does not open under the rebuilt key: "
				     "altered, or of another backup",
				     label);
	KR_CK(rv, KR_EHSM, "token '%s': unwrapping '%s'", h->token.label, label);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_backup_unwrap(const kr_hsm_backup_key *b, const uint8_t *blob, size_t len,
					const char *label, const uint8_t *id, size_t id_len,
					EVP_PKEY *pub, int for_backup, kr_hsm_key **out)
{
	kr_hsm *h = b->h;
	KR_TRY(kr_hsm_label_unused(h, label));
	KR_ENSURE(id_len > 0 && id_len <= 64, KR_EINPUT, "key '%s': an id of 1 to 64 bytes", label);
	pub_attrs *p = calloc(1, sizeof *p);
	kr_hsm_key *k = calloc(1, sizeof *k);
	kr_err e = p && k ? pub_attrs_of(pub, p) : kr_errf(KR_EINTERNAL, "out of memory");
	CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pubh = CK_INVALID_HANDLE;
	if (!kr_failed(&e))
		e = unwrap(b, blob, len, p, label, id, id_len, for_backup, &priv);
	if (!kr_failed(&e))
		e = create_public(h, p, label, id, id_len, &pubh);
	if (!kr_failed(&e)) {
		k->priv = priv;
		e = kr_hsm_key_load(h->main, k);
	}
	if (!kr_failed(&e) && EVP_PKEY_eq(k->pubkey, pub) != 1)
		e = kr_errf(KR_EHSM, "key '%s': the token reads back another public key", label);
	free(p);
	if (kr_failed(&e)) { /* nothing half-restored stays on the token */
		if (priv != CK_INVALID_HANDLE)
			(void)h->fn->C_DestroyObject(h->main->handle, priv);
		if (pubh != CK_INVALID_HANDLE)
			(void)h->fn->C_DestroyObject(h->main->handle, pubh);
		kr_hsm_key_free(k);
		return e;
	}
	*out = k;
	return kr_ok();
}
