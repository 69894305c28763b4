/* Shared by the hsm/ sources only. */
#ifndef KR_HSM_INTERNAL_H
#define KR_HSM_INTERNAL_H

#include "hsm.h"

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

struct kr_hsm {
	CK_FUNCTION_LIST *fn;
	CK_SLOT_ID slot;
	kr_hsm_token_info token;
	struct kr_hsm_session *main;
};

struct kr_hsm_session {
	kr_hsm *h;
	CK_SESSION_HANDLE handle;
	int encrypting; /* a C_EncryptInit not yet ended */
};

struct kr_hsm_key {
	CK_OBJECT_HANDLE priv, pub;
	CK_OBJECT_HANDLE copy; /* session copy of priv that signs, if any */
	char label[256];
	uint8_t id[64];
	size_t id_len;
	kr_key_type type;
	EVP_PKEY *pubkey;
};

/* Error carrying the PKCS#11 return value and p11-kit's text for it. */
KR_MUST_USE kr_err kr_hsm_ck_err_(CK_RV rv, kr_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define kr_hsm_ck_err(rv, code, ...) kr_err_code_((code), kr_hsm_ck_err_((rv), (code), __VA_ARGS__))

#define KR_CK(call, code, ...)                                                                     \
	do {                                                                                       \
		CK_RV kr_ck_rv_ = (call);                                                          \
		if (kr_ck_rv_ != CKR_OK)                                                           \
			return kr_hsm_ck_err(kr_ck_rv_, (code), __VA_ARGS__);                      \
	} while (0)

/* Parses uri with p11-kit after refusing attribute names RFC 7512 does not
 * define and pin-value (a PIN must never be on a command line). */
KR_MUST_USE kr_err kr_hsm_uri_parse(const char *uri, P11KitUri **out);

/* Reads a PIN into buf (NUL-terminated). uri_source is the URI's pin-source. */
KR_MUST_USE kr_err kr_hsm_pin_read(const char *uri_source, const kr_pin_source *src,
				   const char *what, char *buf, size_t bufsz);

/* C_FindObjects for at most max objects matching tmpl. */
KR_MUST_USE kr_err kr_hsm_find(kr_hsm_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
			       CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *found);

/* keys.c, shared with backup.c: a key's handles and attributes read into
 * k from its private key handle (k->priv); a curve's CKA_EC_PARAMS (its
 * OID, DER). */
KR_MUST_USE kr_err kr_hsm_key_load(kr_hsm_session *s, kr_hsm_key *k);
KR_MUST_USE kr_err kr_hsm_ec_params(int nid, uint8_t *out, size_t *len);

/* The attributes of every private key keyrite makes, generated or restored
 * (reference section 2): sensitive, unextractable (with backup:
 * extractable under a trusted key only), signing only. label and id must
 * outlive t. */
#define KR_PRIVATE_ATTRS 11
void kr_hsm_private_attrs(CK_ATTRIBUTE t[KR_PRIVATE_ATTRS], const char *label, const uint8_t *id,
			  size_t id_len, int backup);

#endif
