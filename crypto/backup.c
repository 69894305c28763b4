/* The files of an M-of-N key backup (crypto/backup.h). */
#include "backup.h"
#include "../util/cleanup.h"
#include "../util/hash.h"

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#define PEM_WRAPPED "KEYRITE WRAPPED KEY"
#define PEM_VERIFIER "KEYRITE VSS VERIFIER"

typedef struct kr_wrapped_st {
	ASN1_INTEGER *version;
	ASN1_UTF8STRING *label;
	ASN1_OCTET_STRING *id;
	X509_PUBKEY *pub;
	ASN1_OCTET_STRING *verifier_sha256;
	ASN1_OCTET_STRING *wrapped;
} KR_WRAPPED;
DECLARE_ASN1_FUNCTIONS(KR_WRAPPED)

/* clang-format off */
ASN1_SEQUENCE(KR_WRAPPED) = {
	ASN1_SIMPLE(KR_WRAPPED, version, ASN1_INTEGER),
	ASN1_SIMPLE(KR_WRAPPED, label, ASN1_UTF8STRING),
	ASN1_SIMPLE(KR_WRAPPED, id, ASN1_OCTET_STRING),
	ASN1_SIMPLE(KR_WRAPPED, pub, X509_PUBKEY),
	ASN1_SIMPLE(KR_WRAPPED, verifier_sha256, ASN1_OCTET_STRING),
	ASN1_SIMPLE(KR_WRAPPED, wrapped, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(KR_WRAPPED)
IMPLEMENT_ASN1_FUNCTIONS(KR_WRAPPED)
	/* clang-format on */

	KR_DEFINE_FREE(KR_WRAPPED, KR_WRAPPED_free)

	/* DER as PEM text under name. */
	static KR_MUST_USE kr_err
	pem_of(const char *name, const uint8_t *der, long derlen, char **pem, size_t *len)
{
	KR_AUTO(BIO) bio = BIO_new(BIO_s_mem());
	KR_OSSL(bio && PEM_write_bio(bio, name, "", der, derlen) > 0, KR_EINTERNAL, "encoding a %s",
		name);
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);
	*pem = OPENSSL_memdup(p, (size_t)n);
	KR_ENSURE(*pem, KR_EINTERNAL, "out of memory");
	*len = (size_t)n;
	return kr_ok();
}

/* The DER inside the one PEM block named name; OPENSSL_free *der. */
static KR_MUST_USE kr_err der_of(const char *name, const uint8_t *in, size_t len, uint8_t **der,
				 long *derlen)
{
	KR_ENSURE(len <= 1 << 20, KR_EINPUT, "larger than a %s can be", name);
	KR_AUTO(BIO) bio = BIO_new_mem_buf(in, (int)len);
	char *got = NULL, *header = NULL;
	KR_OSSL(bio, KR_EINTERNAL, "out of memory");
	if (PEM_read_bio(bio, &got, &header, der, derlen) != 1) {
		ERR_clear_error();
		return kr_errf(KR_EINPUT, "not a PEM %s", name);
	}
	int same = strcmp(got, name) == 0;
	OPENSSL_free(header);
	if (!same) {
		kr_err e = kr_errf(KR_EINPUT, "a PEM %s, not a %s", got, name);
		OPENSSL_free(got);
		OPENSSL_free(*der);
		*der = NULL;
		return e;
	}
	OPENSSL_free(got);
	return kr_ok();
}

static KR_MUST_USE kr_err octets(ASN1_OCTET_STRING *s, const uint8_t *p, size_t n)
{
	KR_OSSL(ASN1_OCTET_STRING_set(s, p, (int)n), KR_EINTERNAL, "out of memory");
	return kr_ok();
}

KR_MUST_USE kr_err kr_backup_file_encode(const kr_backup_file *f, char **pem, size_t *len)
{
	KR_AUTO(KR_WRAPPED) w = KR_WRAPPED_new();
	KR_OSSL(w && ASN1_INTEGER_set(w->version, 1) &&
			ASN1_STRING_set(w->label, f->label, (int)strlen(f->label)) &&
			X509_PUBKEY_set(&w->pub, f->pub),
		KR_EINTERNAL, "encoding a backup file");
	KR_TRY(octets(w->id, f->id, f->id_len));
	KR_TRY(octets(w->verifier_sha256, f->verifier_sha256, 32));
	KR_TRY(octets(w->wrapped, f->wrapped, f->wrapped_len));
	KR_AUTO(uint8_t) der = NULL;
	int derlen = i2d_KR_WRAPPED(w, &der);
	KR_OSSL(derlen > 0, KR_EINTERNAL, "encoding a backup file");
	return pem_of(PEM_WRAPPED, der, derlen, pem, len);
}

/* A decoded file's fields, each within what keyrite writes. */
static KR_MUST_USE kr_err fields_of(const KR_WRAPPED *w, kr_backup_file *f)
{
	KR_ENSURE(ASN1_INTEGER_get(w->version) == 1, KR_EINPUT, "version %ld, keyrite reads 1",
		  ASN1_INTEGER_get(w->version));
	int n = ASN1_STRING_length(w->label);
	const uint8_t *label = ASN1_STRING_get0_data(w->label);
	KR_ENSURE(n > 0 && (size_t)n < sizeof f->label && !memchr(label, '\0', (size_t)n),
		  KR_EINPUT, "the key's label is empty, too long or holds a NUL");
	memcpy(f->label, label, (size_t)n);
	f->label[n] = '\0';
	n = ASN1_STRING_length(w->id);
	KR_ENSURE(n > 0 && n <= KR_BACKUP_ID_MAX, KR_EINPUT, "the key's id is %d bytes", n);
	memcpy(f->id, ASN1_STRING_get0_data(w->id), (size_t)n);
	f->id_len = (size_t)n;
	KR_ENSURE(ASN1_STRING_length(w->verifier_sha256) == 32, KR_EINPUT,
		  "the verifier's hash is not 32 bytes");
	memcpy(f->verifier_sha256, ASN1_STRING_get0_data(w->verifier_sha256), 32);
	n = ASN1_STRING_length(w->wrapped);
	KR_ENSURE(n >= 24 && n <= KR_BACKUP_WRAPPED_MAX, KR_EINPUT, "the wrapped key is %d bytes",
		  n);
	memcpy(f->wrapped, ASN1_STRING_get0_data(w->wrapped), (size_t)n);
	f->wrapped_len = (size_t)n;
	f->pub = X509_PUBKEY_get(w->pub);
	KR_OSSL(f->pub, KR_EINPUT, "the public key does not decode");
	return kr_ok();
}

KR_MUST_USE kr_err kr_backup_file_decode(const uint8_t *in, size_t len, kr_backup_file *f)
{
	memset(f, 0, sizeof *f);
	KR_AUTO(uint8_t) der = NULL;
	long derlen = 0;
	KR_TRY(der_of(PEM_WRAPPED, in, len, &der, &derlen));
	const uint8_t *p = der;
	KR_AUTO(KR_WRAPPED) w = d2i_KR_WRAPPED(NULL, &p, derlen);
	KR_OSSL(w && p == der + derlen, KR_EINPUT, "not a KeyriteWrappedKey structure");
	kr_err e = fields_of(w, f);
	if (kr_failed(&e))
		kr_backup_file_clear(f);
	return e;
}

void kr_backup_file_clear(kr_backup_file *f)
{
	EVP_PKEY_free(f->pub);
	memset(f, 0, sizeof *f);
}

KR_MUST_USE kr_err kr_backup_verifier_encode(const kr_vss_verifier *v, char **pem, size_t *len)
{
	uint8_t b[1 + KR_VSS_MAX * KR_VSS_POINT];
	size_t n = 0;
	KR_TRY(kr_vss_verifier_encode(v, b, sizeof b, &n));
	return pem_of(PEM_VERIFIER, b, (long)n, pem, len);
}

KR_MUST_USE kr_err kr_backup_verifier_decode(const uint8_t *in, size_t len, kr_vss_verifier *v)
{
	KR_AUTO(uint8_t) der = NULL;
	long derlen = 0;
	KR_TRY(der_of(PEM_VERIFIER, in, len, &der, &derlen));
	return kr_vss_verifier_decode(der, (size_t)derlen, v);
}

KR_MUST_USE kr_err kr_backup_verifier_sha256(const kr_vss_verifier *v, uint8_t md[32])
{
	uint8_t b[1 + KR_VSS_MAX * KR_VSS_POINT];
	size_t n = 0;
	KR_TRY(kr_vss_verifier_encode(v, b, sizeof b, &n));
	return kr_sha256(b, n, md);
}
