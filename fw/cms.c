/* CMS for firmware: SignedData over an RFC 4108 firmware package (detached,
 * or encapsulated with --embed); an encrypted package as RFC 4108 section
 * 2.1.2 has it, EncryptedData under a firmware-decryption key on the token,
 * signed; and, outside RFC 4108, RFC 5083 AuthEnvelopedData (AES-256-GCM) to
 * device certificates (KeyAgreeRecipientInfo, ECDH-ES) and to device-class
 * AES key-wrap keys on the token (KEKRecipientInfo).
 *
 * Either way it is encrypt, then sign: the encrypted package is what is
 * signed, so a device checks the signature before it decrypts anything. */
#include "internal.h"
#include "../util/cleanup.h"

#include <openssl/cms.h>
#include <errno.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

KR_DEFINE_FREE(CMS_ContentInfo, CMS_ContentInfo_free)
KR_DEFINE_FREE(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
KR_DEFINE_FREE(X509_ALGOR, X509_ALGOR_free)

#define OID_FIRMWARE_PACKAGE "1.2.840.113549.1.9.16.1.16" /* id-ct-firmwarePackage */
#define OID_AUTH_ENVELOPED "1.2.840.113549.1.9.16.1.23"   /* id-ct-authEnvelopedData */
#define OID_ENCRYPTED_DATA "1.2.840.113549.1.7.6"         /* id-encryptedData */

/* ---- SignedData ----------------------------------------------------------------- */

/* What is signed: its content type, its digest under md, and for an
 * RFC 4108 encrypted package the id of the key that decrypts it. */
typedef struct signed_content {
	const char *type;
	const uint8_t *digest;
	const EVP_MD *md;
	const uint8_t *keyid;
	size_t keyidlen;
} signed_content;

/* SignedData without its content, over content whose digest is known: the
 * signed attributes are contentType, signingTime and messageDigest (RFC 5652
 * section 11) and RFC 4108's (section 2.2), and the token signs their DER
 * through the worker's bridged key. */
static KR_MUST_USE kr_err signed_data(const kr_fw_job *j, const signed_content *c, uint8_t **der,
				      int *derlen)
{
	const kr_fw_signer *s = j->s;
	KR_ENSURE(j->lane->evp, KR_EINPUT,
		  "signer '%s': CMS needs an ECDSA or RSA key (Ed25519 signs MCUboot images)",
		  s->name);
	unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_NOSMIMECAP;
	KR_AUTO(CMS_ContentInfo) cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	KR_AUTO(ASN1_OBJECT) type = OBJ_txt2obj(c->type, 1);
	KR_OSSL(cms && type && CMS_set1_eContentType(cms, type), KR_EINTERNAL, "CMS SignedData");
	CMS_SignerInfo *si = CMS_add1_signer(cms, s->cert, j->lane->evp, c->md, flags);
	KR_OSSL(si, KR_EINTERNAL, "CMS signer");
	for (int i = 0; i < sk_X509_num(s->chain); i++)
		KR_OSSL(CMS_add1_cert(cms, sk_X509_value(s->chain, i)), KR_EINTERNAL,
			"CMS certificates");
	KR_OSSL(CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT, type, -1) &&
			CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
						    V_ASN1_OCTET_STRING, c->digest,
						    EVP_MD_get_size(c->md)),
		KR_EINTERNAL, "CMS signed attributes");
	KR_TRY(kr_fw_attrs_add(si, j->o, c->keyid, c->keyidlen));
	/* Adds signingTime, then signs on the token. */
	KR_OSSL(CMS_SignerInfo_sign(si) == 1, KR_EHSM, "signer '%s': signing", s->name);
	/* Checked with the certificate's key, as a device will check it (the
	 * token's key was matched to the certificate when the signer opened). */
	CMS_SignerInfo_set1_signer_cert(si, s->cert);
	KR_OSSL(CMS_SignerInfo_verify(si) == 1, KR_EVERIFY,
		"signer '%s': the token's signature does not verify", s->name);
	*der = NULL;
	*derlen = i2d_CMS_ContentInfo(cms, der);
	KR_OSSL(*derlen > 0, KR_EINTERNAL, "encoding CMS");
	return kr_ok();
}

/* A DER header (identifier and length octets) read from p. */
typedef struct hdr {
	const uint8_t *at, *content; /* header start, content start */
	long len;
	int tag, cls;
} hdr;

static KR_MUST_USE kr_err read_hdr(const uint8_t **p, const uint8_t *end, hdr *h)
{
	h->at = *p;
	int r = ASN1_get_object(p, &h->len, &h->tag, &h->cls, end - *p);
	KR_ENSURE(!(r & 0x80) && !(r & 0x01), KR_EINTERNAL, "walking our own CMS encoding");
	h->content = *p;
	return kr_ok();
}

static uint8_t *put_hdr(uint8_t *out, int constructed, int len, int tag, int cls)
{
	ASN1_put_object(&out, constructed, len, tag, cls);
	return out;
}

/* The encapsulated form (RFC 5652 section 5.2: eContent [0] EXPLICIT OCTET
 * STRING) made from the detached one by inserting the content after
 * eContentType and lengthening the four SEQUENCEs around it. The content is
 * copied from the image in a stream and hashed again on the way: it must
 * still be what was signed. */
static KR_MUST_USE kr_err write_embedded(const uint8_t *der, int derlen, const kr_fw_image *img,
					 const EVP_MD *md, const uint8_t *d, kr_fs_out *out)
{
	const uint8_t *p = der, *end = der + derlen;
	hdr ci, oid, ex, sd, ver, algs, eci;
	KR_TRY(read_hdr(&p, end, &ci));
	KR_TRY(read_hdr(&p, end, &oid));
	p += oid.len;
	KR_TRY(read_hdr(&p, end, &ex));
	KR_TRY(read_hdr(&p, end, &sd));
	KR_TRY(read_hdr(&p, end, &ver));
	p += ver.len;
	KR_TRY(read_hdr(&p, end, &algs));
	p += algs.len;
	KR_TRY(read_hdr(&p, end, &eci));
	const uint8_t *rest = eci.content + eci.len;

	KR_ENSURE(img->size <= (uint64_t)INT32_MAX - 64, KR_EINPUT,
		  "%s: too big to encapsulate (use a detached signature)", img->path);
	/* ASN1_object_size counts in int: the size check above keeps every
	 * length below INT32_MAX. */
	int size = (int)img->size;
	int octets = ASN1_object_size(0, size, V_ASN1_OCTET_STRING);
	int econtent = ASN1_object_size(1, octets, 0);
	int eci_len = (int)eci.len + econtent;
	int sd_len =
		(int)sd.len + ASN1_object_size(1, eci_len, V_ASN1_SEQUENCE) - (int)(rest - eci.at);
	int ex_len = ASN1_object_size(1, sd_len, V_ASN1_SEQUENCE);
	int ci_len = (int)(ex.at - oid.at) + ASN1_object_size(1, ex_len, 0);
	KR_ENSURE(octets > 0 && econtent > 0 && ex_len > 0 && ci_len > 0, KR_EINPUT,
		  "%s: too big to encapsulate (use a detached signature)", img->path);

	uint8_t head[64], *h = head;
	h = put_hdr(h, 1, ci_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	KR_TRY(kr_fs_out_write(out, head, (size_t)(h - head)));
	KR_TRY(kr_fs_out_write(out, oid.at, (size_t)(ex.at - oid.at)));
	h = put_hdr(head, 1, ex_len, 0, V_ASN1_CONTEXT_SPECIFIC);
	h = put_hdr(h, 1, sd_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	KR_TRY(kr_fs_out_write(out, head, (size_t)(h - head)));
	KR_TRY(kr_fs_out_write(out, ver.at, (size_t)(eci.at - ver.at)));
	h = put_hdr(head, 1, eci_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	KR_TRY(kr_fs_out_write(out, head, (size_t)(h - head)));
	KR_TRY(kr_fs_out_write(out, eci.content, (size_t)eci.len));
	h = put_hdr(head, 1, octets, 0, V_ASN1_CONTEXT_SPECIFIC);
	h = put_hdr(h, 0, size, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL);
	KR_TRY(kr_fs_out_write(out, head, (size_t)(h - head)));

	KR_AUTO(EVP_MD_CTX) again = EVP_MD_CTX_new();
	KR_OSSL(again && EVP_DigestInit_ex(again, md, NULL), KR_EINTERNAL, "hashing");
	EVP_MD_CTX *mds[] = {again, NULL};
	KR_TRY(kr_fw_stream(img, 0, img->size, mds, out, NULL));
	uint8_t d2[EVP_MAX_MD_SIZE];
	KR_OSSL(EVP_DigestFinal_ex(again, d2, NULL), KR_EINTERNAL, "hashing");
	KR_ENSURE(memcmp(d, d2, (size_t)EVP_MD_get_size(md)) == 0, KR_EIO,
		  "%s: changed while it was being signed", img->path);
	return kr_fs_out_write(out, rest, (size_t)(end - rest));
}

/* Signs the content [0, size) of img (a firmware package, or the encrypted
 * one), whose digest under the signer's hash is img->digest, into path:
 * detached, or with the content encapsulated. */
static KR_MUST_USE kr_err sign_to(kr_fw_job *j, const kr_fw_image *img, signed_content *c,
				  const char *path)
{
	kr_sig_alg alg;
	KR_TRY(kr_sig_alg_for(j->s->type, 0, &alg));
	c->md = alg.md;
	c->digest = img->digest;
	KR_AUTO(uint8_t) der = NULL;
	int derlen = 0;
	KR_TRY(signed_data(j, c, &der, &derlen));
	kr_fs_out *out = NULL;
	KR_TRY(kr_fw_out_new(j, path, &out));
	return j->o->embed ? write_embedded(der, derlen, img, alg.md, img->digest, out)
			   : kr_fs_out_write(out, der, (size_t)derlen);
}

/* ---- AuthEnvelopedData ----------------------------------------------------------- */

static KR_MUST_USE kr_err add_recipient(CMS_ContentInfo *cms, const kr_fw_recipient *r)
{
	KR_ENSURE(r->cert, KR_EINPUT, "recipient %s: CMS needs a certificate, not a bare key",
		  r->name);
	CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, r->cert, CMS_KEY_PARAM);
	KR_OSSL(ri, KR_EINPUT, "recipient %s: no usable key for key agreement", r->name);
	KR_ENSURE(CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE, KR_EINPUT,
		  "recipient %s: firmware is encrypted to EC device keys (key agreement) only",
		  r->name);
	/* dhSinglePass-stdDH-sha256kdf-scheme with AES-256 key wrap (RFC 5753
	 * section 7.1.4, RFC 8418's choice of SHA-256) rather than SHA-1. */
	EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
	EVP_CIPHER_CTX *wrap = CMS_RecipientInfo_kari_get0_ctx(ri);
	KR_OSSL(pctx && wrap && EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) > 0 &&
			EVP_EncryptInit_ex(wrap, EVP_aes_256_wrap(), NULL, NULL, NULL),
		KR_EINTERNAL, "recipient %s: key agreement parameters", r->name);
	return kr_ok();
}

/* OpenSSL wraps the content key only under KEK bytes it holds; ours stay on
 * the token. So each KEK recipient is first written with a throwaway KEK
 * (same algorithm, same length), and afterwards its 40-byte encryptedKey is
 * unwrapped with the throwaway and replaced in place by the token's
 * C_WrapKey of the same content key. */
typedef struct kek_slot {
	uint8_t throwaway[32];
	uint8_t id[64];
	size_t idlen;
} kek_slot;

static KR_MUST_USE kr_err add_kek(CMS_ContentInfo *cms, kr_hsm_session *hs, const char *label,
				  kek_slot *k)
{
	size_t keylen = 0;
	k->idlen = sizeof k->id;
	KR_TRY(kr_hsm_kek_id(hs, label, k->id, &k->idlen, &keylen));
	KR_ENSURE(keylen == 32, KR_EINPUT,
		  "KEK recipient %s: an AES-%zu key; key-wrap recipients take AES-256 keys", label,
		  keylen * 8);
	KR_OSSL(RAND_priv_bytes(k->throwaway, sizeof k->throwaway) == 1, KR_EINTERNAL, "random");
	uint8_t *key = OPENSSL_memdup(k->throwaway, 32), *id = OPENSSL_memdup(k->id, k->idlen);
	CMS_RecipientInfo *ri = key && id ? CMS_add0_recipient_key(cms, NID_id_aes256_wrap, key, 32,
								   id, k->idlen, NULL, NULL, NULL)
					  : NULL;
	if (!ri) {
		OPENSSL_free(key);
		OPENSSL_free(id);
	}
	KR_OSSL(ri, KR_EINTERNAL, "KEK recipient %s", label);
	return kr_ok();
}

/* Finds the encryptedKey of each KEKRecipientInfo ([2], RFC 5652 section
 * 6.2.3) in the head of the streamed encoding, in order. */
static KR_MUST_USE kr_err find_kek_keys(const uint8_t *buf, size_t n, long *offsets, int want)
{
	const uint8_t *p = buf, *end = buf + n;
	/* ContentInfo, [0], AuthEnvelopedData are streamed: indefinite length */
	for (int i = 0; i < 3; i++) {
		long len;
		int tag, cls;
		int r = ASN1_get_object(&p, &len, &tag, &cls, end - p);
		KR_ENSURE(!(r & 0x80), KR_EINTERNAL, "walking the encrypted package");
		if (i == 0) { /* skip the contentType OID */
			hdr oid;
			KR_TRY(read_hdr(&p, end, &oid));
			p += oid.len;
		}
	}
	hdr h, set;
	KR_TRY(read_hdr(&p, end, &h)); /* version */
	p += h.len;
	KR_TRY(read_hdr(&p, end, &set));
	KR_ENSURE(set.tag == V_ASN1_SET, KR_EINTERNAL, "walking the encrypted package");
	int found = 0;
	for (const uint8_t *q = set.content; q < set.content + set.len;) {
		hdr ri;
		KR_TRY(read_hdr(&q, end, &ri));
		const uint8_t *next = ri.content + ri.len;
		if (ri.cls == V_ASN1_CONTEXT_SPECIFIC && ri.tag == 2 && found < want) {
			for (int field = 0; field < 3; field++) { /* version, kekid, algorithm */
				KR_TRY(read_hdr(&q, end, &h));
				q += h.len;
			}
			KR_TRY(read_hdr(&q, end, &h));
			KR_ENSURE(h.tag == V_ASN1_OCTET_STRING && h.len == 40, KR_EINTERNAL,
				  "unexpected KEK recipient encoding");
			offsets[found++] = h.content - buf;
		}
		q = next;
	}
	KR_ENSURE(found == want, KR_EINTERNAL, "found %d of %d KEK recipients", found, want);
	return kr_ok();
}

static KR_MUST_USE kr_err rewrap(kr_hsm_session *hs, const kr_fw_opts *o, kr_fs_out *out,
				 kek_slot *keks)
{
	uint8_t head[1 << 16];
	ssize_t n = pread(out->fd, head, sizeof head, 0);
	KR_ENSURE(n > 0, KR_EIO, "%s: reading back", out->path);
	long at[KR_FW_MAX_RECIPIENTS];
	KR_TRY(find_kek_keys(head, (size_t)n, at, o->nkeks));
	for (int i = 0; i < o->nkeks; i++) {
		uint8_t cek[32], wrapped[64];
		size_t wlen = sizeof wrapped;
		KR_AUTO(EVP_CIPHER_CTX) c = EVP_CIPHER_CTX_new();
		int len = 0;
		kr_err e = kr_ok();
		if (c)
			EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
		if (!c ||
		    !EVP_DecryptInit_ex(c, EVP_aes_256_wrap(), NULL, keks[i].throwaway, NULL) ||
		    !EVP_DecryptUpdate(c, cek, &len, head + at[i], 40) || len != 32)
			e = kr_err_ossl(KR_EINTERNAL, "recovering the content key");
		if (!kr_failed(&e))
			e = kr_hsm_wrap(hs, o->keks[i], cek, 32, wrapped, &wlen);
		OPENSSL_cleanse(cek, sizeof cek);
		KR_TRY(e);
		KR_ENSURE(wlen == 40, KR_EHSM, "C_WrapKey returned %zu bytes, not 40", wlen);
		KR_TRY(kr_fs_out_pwrite(out, wrapped, 40, at[i]));
	}
	return kr_ok();
}

/* Streams the AuthEnvelopedData of the image to out, checking on the way
 * that the image is the one hashed before (its SHA-256 in want). */
static KR_MUST_USE kr_err envelop(const kr_fw_job *j, const kr_fw_image *img,
				  const uint8_t want[32], kr_fs_out *out)
{
	const kr_fw_opts *o = j->o;
	KR_AUTO(CMS_ContentInfo) cms = CMS_AuthEnvelopedData_create(EVP_aes_256_gcm());
	KR_AUTO(ASN1_OBJECT) type = OBJ_txt2obj(OID_FIRMWARE_PACKAGE, 1);
	KR_OSSL(cms && type && CMS_set1_eContentType(cms, type), KR_EINTERNAL,
		"CMS AuthEnvelopedData");
	for (int i = 0; i < o->nrecipients; i++)
		KR_TRY(add_recipient(cms, &o->recipients[i]));
	kek_slot keks[KR_FW_MAX_RECIPIENTS];
	for (int i = 0; i < o->nkeks; i++)
		KR_TRY(add_kek(cms, j->lane->session, o->keks[i], &keks[i]));

	KR_OSSL(lseek(img->fd, 0, SEEK_SET) == 0, KR_EIO, "%s: seek", img->path);
	BIO *file = BIO_new_fd(img->fd, BIO_NOCLOSE);
	BIO *md = BIO_new(BIO_f_md());
	KR_AUTO(BIO) in = md && file ? BIO_push(md, file) : NULL;
	if (!in) {
		BIO_free(file);
		BIO_free(md);
	}
	KR_AUTO(BIO) sink = BIO_new_fd(out->fd, BIO_NOCLOSE);
	KR_OSSL(in && sink && BIO_set_md(md, EVP_sha256()), KR_EINTERNAL, "BIO");
	kr_err e = i2d_CMS_bio_stream(sink, cms, in, CMS_STREAM | CMS_BINARY) == 1 &&
				   BIO_flush(sink) == 1
			   ? kr_ok()
			   : kr_err_ossl(KR_EIO, "%s: encrypting", out->path);
	uint8_t got[32];
	if (!kr_failed(&e) && BIO_gets(md, (char *)got, sizeof got) != 32)
		e = kr_err_ossl(KR_EINTERNAL, "hashing");
	if (!kr_failed(&e) && memcmp(got, want, 32) != 0)
		e = kr_errf(KR_EIO, "%s: changed while it was being encrypted", img->path);
	if (!kr_failed(&e) && o->nkeks)
		e = rewrap(j->lane->session, o, out, keks);
	for (int i = 0; i < o->nkeks; i++)
		OPENSSL_cleanse(keks[i].throwaway, sizeof keks[i].throwaway);
	return e;
}

/* ---- EncryptedData (RFC 4108 section 2.1.2) --------------------------------------- */

/* What precedes the ciphertext in EncryptedData (RFC 5652 section 8):
 * version 0, then EncryptedContentInfo with the content type, AES-CBC of
 * the key's length with its IV, and the [0] IMPLICIT header of the clen
 * ciphertext bytes that follow. */
static KR_MUST_USE kr_err encrypted_head(size_t keylen, const uint8_t iv[16], int clen,
					 uint8_t *head, int *headlen)
{
	int nid = keylen == 16 ? NID_aes_128_cbc : keylen == 24 ? NID_aes_192_cbc : NID_aes_256_cbc;
	KR_AUTO(ASN1_OBJECT) type = OBJ_txt2obj(OID_FIRMWARE_PACKAGE, 1);
	KR_AUTO(ASN1_OCTET_STRING) ivs = ASN1_OCTET_STRING_new();
	KR_AUTO(X509_ALGOR) alg = X509_ALGOR_new();
	KR_OSSL(type && ivs && alg && ASN1_OCTET_STRING_set(ivs, iv, 16) &&
			X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_OCTET_STRING, ivs),
		KR_EINTERNAL, "EncryptedData");
	ivs = NULL;                     /* the algorithm has it */
	uint8_t *p = head + 32, *q = p; /* room for the two SEQUENCE headers */
	static const uint8_t version0[] = {V_ASN1_INTEGER, 1, 0};
	int tlen = i2d_ASN1_OBJECT(type, NULL), alen = i2d_X509_ALGOR(alg, NULL);
	KR_OSSL(tlen > 0 && alen > 0 && tlen + alen < 256, KR_EINTERNAL, "EncryptedData");
	i2d_ASN1_OBJECT(type, &q);
	i2d_X509_ALGOR(alg, &q);
	ASN1_put_object(&q, 0, clen, 0, V_ASN1_CONTEXT_SPECIFIC);
	int eci = (int)(q - p) + clen;
	int body = (int)sizeof version0 + ASN1_object_size(1, eci, V_ASN1_SEQUENCE);
	uint8_t *h = head;
	ASN1_put_object(&h, 1, body, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(h, version0, sizeof version0);
	h += sizeof version0;
	ASN1_put_object(&h, 1, eci, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memmove(h, p, (size_t)(q - p));
	*headlen = (int)(h - head) + (int)(q - p);
	return kr_ok();
}

/* The image encrypted on the token into out, a stream of half buffers
 * (CBC may hand back up to 15 bytes more than it takes), hashed on the way:
 * it must still be the image hashed before (its SHA-256 in want). */
static KR_MUST_USE kr_err encrypt_stream(kr_hsm_session *hs, const kr_fw_image *img,
					 const uint8_t want[32], kr_fs_out *out, uint64_t *written)
{
	const size_t half = KR_FW_BUF / 2;
	uint8_t *own = img->buf ? NULL : malloc(KR_FW_BUF), *in = img->buf ? img->buf : own;
	KR_ENSURE(in, KR_EINTERNAL, "out of memory");
	uint8_t *ct = in + half, got[32];
	KR_AUTO(EVP_MD_CTX) sha = EVP_MD_CTX_new();
	kr_err e = sha && EVP_DigestInit_ex(sha, EVP_sha256(), NULL)
			   ? kr_ok()
			   : kr_err_ossl(KR_EINTERNAL, "hashing");
	*written = 0;
	for (uint64_t at = 0; at < img->size && !kr_failed(&e);) {
		size_t want_n = img->size - at < half - 16 ? (size_t)(img->size - at) : half - 16;
		ssize_t n = pread(img->fd, in, want_n, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		size_t clen = half;
		if (n <= 0)
			e = kr_errf(KR_EIO, "%s: %s", img->path,
				    n < 0 ? strerror(errno) : "shorter than it was (changed?)");
		else if (!EVP_DigestUpdate(sha, in, (size_t)n))
			e = kr_err_ossl(KR_EINTERNAL, "hashing");
		else
			e = kr_hsm_encrypt_update(hs, in, (size_t)n, ct, &clen);
		if (!kr_failed(&e))
			e = kr_fs_out_write(out, ct, clen);
		at += n > 0 ? (uint64_t)n : 0;
		*written += clen;
	}
	size_t last = 16;
	if (!kr_failed(&e))
		e = kr_hsm_encrypt_end(hs, ct, &last);
	if (!kr_failed(&e))
		e = kr_fs_out_write(out, ct, last);
	*written += last;
	free(own);
	KR_TRY(e);
	KR_OSSL(EVP_DigestFinal_ex(sha, got, NULL), KR_EINTERNAL, "hashing");
	KR_ENSURE(memcmp(got, want, 32) == 0, KR_EIO, "%s: changed while it was being encrypted",
		  img->path);
	return kr_ok();
}

/* The package as EncryptedData under the firmware-decryption key on the
 * token (its CKA_ID into keyid, for the decrypt-key-identifier attribute):
 * AES-CBC from a fresh IV, with PKCS #7 padding, so the ciphertext is the
 * image rounded up to the next multiple of 16. */
static KR_MUST_USE kr_err encrypted_data(const kr_fw_job *j, const kr_fw_image *img, kr_fs_out *out,
					 uint8_t *keyid, size_t *keyidlen)
{
	kr_hsm_session *hs = j->lane->session;
	const char *label = j->o->keks[0];
	size_t keylen = 0;
	KR_TRY(kr_hsm_kek_id(hs, label, keyid, keyidlen, &keylen));
	KR_ENSURE(keylen == 16 || keylen == 24 || keylen == 32, KR_EINPUT,
		  "AES key '%s' is %zu bytes long, not an AES key length", label, keylen);
	KR_ENSURE(img->size <= (uint64_t)INT32_MAX - 64, KR_EINPUT,
		  "%s: too big for one EncryptedData", img->path);
	int clen = (int)(img->size / 16 + 1) * 16;
	uint8_t iv[16], head[512];
	int headlen = 0;
	KR_OSSL(RAND_bytes(iv, sizeof iv) == 1, KR_EINTERNAL, "random");
	KR_TRY(encrypted_head(keylen, iv, clen, head, &headlen));
	KR_TRY(kr_fs_out_write(out, head, (size_t)headlen));
	KR_TRY(kr_hsm_encrypt_begin(hs, label, iv));
	uint64_t written = 0;
	kr_err e = encrypt_stream(hs, img, j->r.sha256, out, &written);
	kr_hsm_encrypt_cancel(hs); /* after a failure; nothing to do otherwise */
	KR_TRY(e);
	KR_ENSURE(written == (uint64_t)clen, KR_EHSM,
		  "AES key '%s': the token returned %llu bytes of ciphertext for %llu, not %d",
		  label, (unsigned long long)written, (unsigned long long)img->size, clen);
	return kr_ok();
}

/* ---- per image ------------------------------------------------------------------- */

/* The encrypted package at enc_path, written by the form the options ask
 * for, then signed into sig_path. */
static KR_MUST_USE kr_err encrypt_and_sign(kr_fw_job *j, const kr_fw_image *img,
					   const char *enc_path, const char *sig_path)
{
	kr_fs_out *out = NULL;
	uint8_t keyid[64];
	size_t keyidlen = sizeof keyid;
	signed_content c = {OID_AUTH_ENVELOPED};
	KR_TRY(kr_fw_out_new(j, enc_path, &out));
	if (j->o->authenveloped) {
		KR_TRY(envelop(j, img, j->r.sha256, out));
	} else {
		KR_TRY(encrypted_data(j, img, out, keyid, &keyidlen));
		c = (signed_content){OID_ENCRYPTED_DATA, .keyid = keyid, .keyidlen = keyidlen};
	}
	struct stat st;
	KR_ENSURE(fstat(out->fd, &st) == 0, KR_EIO, "%s: %s", enc_path, strerror(errno));
	kr_fw_image enc = {
		.path = enc_path, .fd = out->fd, .size = (uint64_t)st.st_size, .buf = img->buf};
	kr_sig_alg alg;
	KR_TRY(kr_sig_alg_for(j->s->type, 0, &alg));
	KR_TRY(kr_fw_digest(&enc, alg.md, enc.digest, NULL));
	return sign_to(j, &enc, &c, sig_path);
}

KR_MUST_USE kr_err kr_fw_cms_sign(kr_fw_job *j, const kr_fw_image *img)
{
	const kr_fw_opts *o = j->o;
	char sig_path[4096], enc_path[4096];
	if (o->nrecipients == 0 && o->nkeks == 0) {
		KR_TRY(kr_fw_output_path(o, img->path, o->embed ? ".p7m" : ".p7s", 0, sig_path,
					 sizeof sig_path));
		signed_content c = {OID_FIRMWARE_PACKAGE};
		return sign_to(j, img, &c, sig_path);
	}
	KR_TRY(kr_fw_output_path(o, img->path, ".p7e", 0, enc_path, sizeof enc_path));
	KR_TRY(kr_fw_output_path(o, img->path, o->embed ? ".p7e.p7m" : ".p7e.p7s", 0, sig_path,
				 sizeof sig_path));
	return encrypt_and_sign(j, img, enc_path, sig_path);
}

/* ---- verification ------------------------------------------------------------------ */

KR_MUST_USE kr_err kr_fw_cms_verify(const kr_fw_verify_opts *o, const char *file, char *summary,
				    size_t sumsz)
{
	KR_AUTO(BIO) in = BIO_new_file(file, "rb");
	KR_OSSL(in, KR_EIO, "%s: cannot open", file);
	KR_AUTO(CMS_ContentInfo) cms = d2i_CMS_bio(in, NULL);
	KR_OSSL(cms, KR_EINPUT, "%s: not a DER CMS message", file);
	KR_ENSURE(OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed, KR_EINPUT,
		  "%s: not CMS SignedData", file);
	int detached = CMS_is_detached(cms);
	KR_ENSURE(!detached || o->content, KR_EUSAGE,
		  "%s: a detached signature: name the image with --content", file);
	KR_ENSURE(detached || !o->content, KR_EUSAGE,
		  "%s: the image is inside it; --content is not needed", file);
	KR_AUTO(BIO) content = detached ? BIO_new_file(o->content, "rb") : NULL;
	KR_OSSL(!detached || content, KR_EIO, "%s: cannot open", o->content);

	STACK_OF(X509) *certs = CMS_get1_certs(cms);
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	kr_err e = sk_CMS_SignerInfo_num(sis) == 1
			   ? kr_ok()
			   : kr_errf(KR_EVERIFY, "%s: %d signers, expected one", file,
				     sk_CMS_SignerInfo_num(sis));
	X509 *signer = NULL;
	for (int i = 0; !kr_failed(&e) && i < sk_X509_num(certs); i++)
		if (CMS_SignerInfo_cert_cmp(sk_CMS_SignerInfo_value(sis, 0),
					    sk_X509_value(certs, i)) == 0)
			signer = sk_X509_value(certs, i);
	if (!kr_failed(&e) && !signer)
		e = kr_errf(KR_EVERIFY, "%s: the signer's certificate is not included", file);
	if (!kr_failed(&e))
		e = kr_fw_check_signer(signer, certs, o->root);
	/* The chain is checked above, with code signing; OpenSSL 3.0 has no
	 * code-signing purpose, so its own pass is told not to check again. */
	KR_AUTO(BIO) sink = BIO_new(BIO_s_null());
	if (!kr_failed(&e) &&
	    CMS_verify(cms, NULL, NULL, content, sink, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
		e = kr_err_ossl(KR_EVERIFY, "%s: signature does not verify", file);
	char desc[512] = "", cn[256] = "";
	int type = OBJ_obj2nid(CMS_get0_eContentType(cms));
	const char *form = type == NID_pkcs7_encrypted ? "EncryptedData, "
			   : type == NID_id_smime_ct_authEnvelopedData
				   ? "AuthEnvelopedData, not RFC 4108, "
				   : "";
	KR_AUTO(ASN1_OBJECT) package = OBJ_txt2obj(OID_FIRMWARE_PACKAGE, 1);
	if (!kr_failed(&e) && !form[0] && type != NID_id_smime_ct_compressedData &&
	    OBJ_cmp(CMS_get0_eContentType(cms), package) != 0)
		e = kr_errf(KR_EVERIFY, "%s: its content is not a firmware package (RFC 4108 2.1)",
			    file);
	if (!kr_failed(&e))
		e = kr_fw_attrs_check(file, sk_CMS_SignerInfo_value(sis, 0), o,
				      type == NID_pkcs7_encrypted, desc, sizeof desc);
	if (!kr_failed(&e)) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(signer), NID_commonName, cn,
					  sizeof cn);
		snprintf(summary, sumsz, "%s: good CMS signature by '%s' (%s; %s%s)", file, cn,
			 desc, form, detached ? "detached" : "encapsulated");
	}
	sk_X509_pop_free(certs, X509_free);
	return e;
}
