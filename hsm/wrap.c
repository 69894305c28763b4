/* Device-class AES keys kept on the token: wrapping under a key-encryption
 * key (KEK), where only the content-encryption key (CEK) crosses, as a
 * session object that is destroyed at once; and encryption of a whole
 * package under a firmware-decryption key. The AES key never leaves. */
#include "internal.h"

#include <openssl/crypto.h>
#include <string.h>

static KR_MUST_USE kr_err find_kek(kr_hsm_session *s, const char *label, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	KR_TRY(kr_hsm_find(s, tmpl, 3, found, 2, &n));
	KR_ENSURE(n > 0, KR_EHSM, "no AES key labelled '%s' on token '%s'", label,
		  s->h->token.label);
	KR_ENSURE(n == 1, KR_EHSM, "several AES keys labelled '%s' on token '%s'", label,
		  s->h->token.label);
	*out = found[0];
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_kek_id(kr_hsm_session *s, const char *label, uint8_t *id, size_t *idlen,
				 size_t *keylen)
{
	CK_OBJECT_HANDLE kek;
	KR_TRY(find_kek(s, label, &kek));
	CK_ULONG len = 0;
	CK_ATTRIBUTE a[] = {{CKA_ID, id, *idlen}, {CKA_VALUE_LEN, &len, sizeof len}};
	KR_CK(s->h->fn->C_GetAttributeValue(s->handle, kek, a, 2), KR_EHSM,
	      "reading the id and length of AES key '%s'", label);
	KR_ENSURE(a[0].ulValueLen > 0, KR_EHSM, "AES key '%s' has no CKA_ID to name it by", label);
	*idlen = a[0].ulValueLen;
	*keylen = len;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_wrap(kr_hsm_session *s, const char *label, const uint8_t *cek,
			       size_t ceklen, uint8_t *out, size_t *outlen)
{
	CK_OBJECT_HANDLE kek, obj = CK_INVALID_HANDLE;
	KR_TRY(find_kek(s, label, &kek));
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},       {CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_TOKEN, &no, sizeof no},         {CKA_PRIVATE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &yes, sizeof yes}, {CKA_VALUE, (void *)cek, ceklen},
	};
	CK_FUNCTION_LIST *fn = s->h->fn;
	CK_SESSION_HANDLE sh = s->handle;
	KR_CK(fn->C_CreateObject(sh, tmpl, sizeof tmpl / sizeof *tmpl, &obj), KR_EHSM,
	      "loading the content key for wrapping");
	/* RFC 3394 key wrap with its default IV: what CMS's id-aes*-wrap and
	 * openssl cms -secretkey expect (RFC 3565 section 2.3.2). */
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ULONG n = *outlen;
	CK_RV rv = fn->C_WrapKey(sh, &mech, kek, obj, out, &n);
	fn->C_DestroyObject(sh, obj);
	KR_CK(rv, KR_EHSM, "C_WrapKey under AES key '%s' (it needs CKA_WRAP)", label);
	*outlen = n;
	return kr_ok();
}

/* An encryption left unfinished (an error between updates, a run that
 * stopped) is ended here, so the session can start another: PKCS#11 2.40
 * section 5.8 ends an operation only with C_EncryptFinal or an error. */
void kr_hsm_encrypt_cancel(kr_hsm_session *s)
{
	if (!s->encrypting)
		return;
	uint8_t rest[32];
	CK_ULONG n = sizeof rest;
	(void)s->h->fn->C_EncryptFinal(s->handle, rest, &n);
	OPENSSL_cleanse(rest, sizeof rest);
	s->encrypting = 0;
}

KR_MUST_USE kr_err kr_hsm_encrypt_begin(kr_hsm_session *s, const char *label, const uint8_t iv[16])
{
	CK_OBJECT_HANDLE key;
	kr_hsm_encrypt_cancel(s);
	KR_TRY(find_kek(s, label, &key));
	CK_MECHANISM mech = {CKM_AES_CBC_PAD, (void *)iv, 16};
	KR_CK(s->h->fn->C_EncryptInit(s->handle, &mech, key), KR_EHSM,
	      "C_EncryptInit (AES-CBC) under AES key '%s' (it needs CKA_ENCRYPT)", label);
	s->encrypting = 1;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_encrypt_update(kr_hsm_session *s, const uint8_t *in, size_t n,
					 uint8_t *out, size_t *outlen)
{
	CK_ULONG len = *outlen;
	CK_RV rv = s->h->fn->C_EncryptUpdate(s->handle, (CK_BYTE *)in, n, out, &len);
	if (rv != CKR_OK)
		s->encrypting = 0; /* an error other than a short buffer ends it */
	KR_CK(rv, KR_EHSM, "C_EncryptUpdate");
	*outlen = len;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_encrypt_end(kr_hsm_session *s, uint8_t *out, size_t *outlen)
{
	CK_ULONG len = *outlen;
	CK_RV rv = s->h->fn->C_EncryptFinal(s->handle, out, &len);
	s->encrypting = 0;
	KR_CK(rv, KR_EHSM, "C_EncryptFinal");
	*outlen = len;
	return kr_ok();
}
