/* MCUboot images (docs.mcuboot.com, "Image format"): a little-endian header,
 * the image, optional protected TLVs, then the TLV area keyrite appends:
 * key hash, image hash, signature, and for encrypted copies the
 * ECIES-P256 wrapped image key. The hash covers header + image + protected
 * TLVs, the image as plaintext, so one token signature serves every
 * encrypted copy (their headers all carry the encrypted flag). */
#include "internal.h"
#include "../ca/authority.h"
#include "../util/cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

KR_DEFINE_FREE(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)

#define IMAGE_MAGIC 0x96f3b83dU
#define IMAGE_HEADER_SIZE 32
#define TLV_INFO_MAGIC 0x6907
#define TLV_PROT_INFO_MAGIC 0x6908
#define IMAGE_F_ENCRYPTED_AES128 0x04U
#define IMAGE_F_RAM_LOAD 0x20U

enum {
	TLV_KEYHASH = 0x01,
	TLV_SHA256 = 0x10,
	TLV_SHA384 = 0x11,
	TLV_RSA2048_PSS = 0x20,
	TLV_ECDSA_SIG = 0x22,
	TLV_RSA3072_PSS = 0x23,
	TLV_ED25519 = 0x24,
	TLV_ENC_EC256 = 0x32,
};

#define ECIES_LEN (65 + 32 + 16) /* ephemeral point, HMAC tag, wrapped AES-128 key */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

typedef struct mcu_image {
	uint8_t *header; /* hdr_size bytes: what the bootloader hashes */
	uint16_t hdr_size, prot_size;
	uint32_t img_size, flags;
	kr_mcuboot_version version;
	off_t body_at;     /* where the image's bytes start in the input file */
	uint32_t body_len; /* how many of img_size are in the file */
	uint32_t pad;      /* the zeros after them (imgtool's 16-byte alignment) */
	int has_hash;      /* an unsigned input's SHA-256 TLV, checked when hashed */
	uint8_t hash[32];
} mcu_image;

static void mcu_clear(mcu_image *m)
{
	free(m->header);
	m->header = NULL;
}

static void parse_fields(mcu_image *m, const uint8_t *h)
{
	m->hdr_size = le16(h + 8);
	m->prot_size = le16(h + 10);
	m->img_size = le32(h + 12);
	m->flags = le32(h + 16);
	m->version = (kr_mcuboot_version){h[20], h[21], le16(h + 22), le32(h + 24)};
}

/* Signature and key-exchange TLVs (RSA2048, ECDSA224, ECDSA, RSA3072,
 * Ed25519, Ed448; ENCRSA2048, ENCKW, ENCEC256, ENCX25519). */
static int signature_tlv(int t) { return t >= 0x20 && t <= 0x25; }
static int encryption_tlv(int t) { return t >= 0x30 && t <= 0x33; }

/* The unprotected TLV area of an unsigned image: imgtool create without a
 * key writes one holding the image's SHA-256 only. keyrite replaces it;
 * a signed or encrypted one is refused. The SHA-256 is kept, to be
 * checked against the image as it is hashed. */
static KR_MUST_USE kr_err unsigned_tlvs(const kr_fw_image *img, mcu_image *m, uint64_t at)
{
	uint8_t area[2048];
	uint64_t n = img->size - at;
	KR_ENSURE(n >= 4 && n <= sizeof area &&
			  pread(img->fd, area, (size_t)n, (off_t)at) == (ssize_t)n,
		  KR_EINPUT, "%s: %llu bytes after the image that are not a TLV area", img->path,
		  (unsigned long long)n);
	KR_ENSURE(le16(area) == TLV_INFO_MAGIC && le16(area + 2) == n, KR_EINPUT,
		  "%s: the %llu bytes after the image (header: %u + %u + %u) are not a TLV area "
		  "(magic 0x6907 and its length)",
		  img->path, (unsigned long long)n, m->hdr_size, m->img_size, m->prot_size);
	for (size_t p = 4; p < n;) {
		KR_ENSURE(p + 4 <= n && p + 4 + le16(area + p + 2) <= n, KR_EINPUT,
			  "%s: TLV at offset %zu runs past the TLV area", img->path, p);
		int type = le16(area + p);
		size_t len = le16(area + p + 2);
		KR_ENSURE(!signature_tlv(type), KR_EINPUT,
			  "%s: already signed (its TLV area holds signature TLV 0x%02x); keyrite "
			  "signs an unsigned image, as imgtool create writes it",
			  img->path, type);
		KR_ENSURE(!encryption_tlv(type), KR_EINPUT, "%s: already encrypted (TLV 0x%02x)",
			  img->path, type);
		if (type == TLV_SHA256 && len == 32) {
			memcpy(m->hash, area + p + 4, 32);
			m->has_hash = 1;
		}
		p += 4 + len;
	}
	return kr_ok();
}

/* An input that already has a header (the vendor's build, imgtool create
 * without a key): its fields must describe the file, which may end in an
 * unsigned TLV area. */
static KR_MUST_USE kr_err read_headered(const kr_fw_image *img, const uint8_t *h, mcu_image *m)
{
	parse_fields(m, h);
	KR_ENSURE(m->hdr_size >= IMAGE_HEADER_SIZE, KR_EINPUT,
		  "%s: header size %u is below 32 bytes", img->path, m->hdr_size);
	KR_ENSURE(!(m->flags & IMAGE_F_ENCRYPTED_AES128), KR_EINPUT,
		  "%s: already encrypted (flags 0x%x)", img->path, m->flags);
	uint64_t want = (uint64_t)m->hdr_size + m->img_size + m->prot_size;
	KR_ENSURE(img->size >= want, KR_EINPUT,
		  "%s: header says %u + %u + %u bytes (header, image, protected TLVs) = %llu, "
		  "the file has %llu",
		  img->path, m->hdr_size, m->img_size, m->prot_size, (unsigned long long)want,
		  (unsigned long long)img->size);
	if (img->size > want)
		KR_TRY(unsigned_tlvs(img, m, want));
	m->header = malloc(m->hdr_size);
	KR_ENSURE(m->header, KR_EINTERNAL, "out of memory");
	KR_ENSURE(pread(img->fd, m->header, m->hdr_size, 0) == m->hdr_size, KR_EIO, "%s: %s",
		  img->path, strerror(errno));
	m->body_at = m->hdr_size;
	m->body_len = m->img_size;
	return kr_ok();
}

/* A raw binary: keyrite writes the header as imgtool's image.py does for
 * the same options (add_header): into the header_size zero bytes a Zephyr
 * zephyr.bin built for MCUboot begins with, or with pad_header in front
 * of the image over header_size bytes of the erased value; img_size is the
 * image without the header area; a load address sets IMAGE_F_RAM_LOAD; an
 * image to be encrypted is padded with zeros to a multiple of 16 bytes,
 * header included. */
static KR_MUST_USE kr_err make_header(const kr_fw_opts *o, const kr_fw_image *img, mcu_image *m)
{
	uint16_t hs = o->header_size;
	KR_ENSURE(hs >= IMAGE_HEADER_SIZE, KR_EUSAGE, "--header-size %u: at least 32", hs);
	m->header = malloc(hs);
	KR_ENSURE(m->header, KR_EINTERNAL, "out of memory");
	if (o->pad_header) {
		memset(m->header, o->erased_val, hs);
		m->body_at = 0;
	} else {
		KR_ENSURE(img->size > hs && pread(img->fd, m->header, hs, 0) == hs, KR_EINPUT,
			  "%s: shorter than --header-size %u", img->path, hs);
		for (uint16_t i = 0; i < hs; i++)
			KR_ENSURE(m->header[i] == 0, KR_EINPUT,
				  "%s: does not begin with %u zero bytes where the header goes (as "
				  "Zephyr's zephyr.bin for MCUboot does); give --pad-header to put "
				  "the header in front of it",
				  img->path, hs);
		m->body_at = hs;
	}
	uint64_t body = img->size - (uint64_t)m->body_at;
	KR_ENSURE(body <= UINT32_MAX - 16, KR_EINPUT, "%s: too big for an MCUboot image",
		  img->path);
	m->body_len = (uint32_t)body;
	uint64_t total = hs + body;
	m->pad = o->nrecipients && total % 16 ? (uint32_t)(16 - total % 16) : 0;
	uint8_t *h = m->header;
	put_le32(h, IMAGE_MAGIC);
	put_le32(h + 4, o->load_addr);
	put_le16(h + 8, hs);
	put_le16(h + 10, 0);
	put_le32(h + 12, m->body_len + m->pad);
	put_le32(h + 16, o->load_addr ? IMAGE_F_RAM_LOAD : 0);
	h[20] = o->version.major;
	h[21] = o->version.minor;
	put_le16(h + 22, o->version.revision);
	put_le32(h + 24, o->version.build);
	put_le32(h + 28, 0);
	parse_fields(m, h);
	return kr_ok();
}

/* The input's layout, from its first bytes and the options. */
static KR_MUST_USE kr_err read_input(const kr_fw_opts *o, const kr_fw_image *img, mcu_image *m)
{
	uint8_t h[IMAGE_HEADER_SIZE] = {0};
	ssize_t got = pread(img->fd, h, sizeof h, 0);
	KR_ENSURE(got >= 0, KR_EIO, "%s: %s", img->path, strerror(errno));
	int headered = got == (ssize_t)sizeof h && le32(h) == IMAGE_MAGIC;
	if (o->raw) {
		KR_ENSURE(!headered, KR_EUSAGE,
			  "%s: already has an MCUboot header; --header-size, --version, "
			  "--load-addr and --pad-header are for a raw binary",
			  img->path);
		return make_header(o, img, m);
	}
	KR_ENSURE(headered, KR_EINPUT,
		  "%s: no MCUboot header (magic 0x%08x, expected 0x96f3b83d); for a raw binary "
		  "give --header-size and --version: a Zephyr zephyr.bin built for MCUboot "
		  "begins with that many zero bytes, where keyrite writes the header; add "
		  "--pad-header to put it in front of an image that does not",
		  img->path, le32(h));
	KR_TRY(read_headered(img, h, m));
	/* imgtool pads an image it encrypts; a vendor's build is not changed. */
	KR_ENSURE(!o->nrecipients || ((uint64_t)m->hdr_size + m->img_size) % 16 == 0, KR_EINPUT,
		  "%s: header and image take %llu bytes; an MCUboot image to be encrypted takes "
		  "a multiple of 16 (imgtool pads it): sign it from the raw binary",
		  img->path, (unsigned long long)m->hdr_size + m->img_size);
	return kr_ok();
}

/* ---- keys and signatures ----------------------------------------------------------- */

typedef struct mcu_alg {
	const EVP_MD *md; /* the image hash */
	int hash_tlv, sig_tlv;
	kr_sig_scheme scheme;
} mcu_alg;

static KR_MUST_USE kr_err alg_for(kr_key_type t, mcu_alg *a)
{
	switch (t) {
	case KR_KEY_EC_P256:
		*a = (mcu_alg){EVP_sha256(), TLV_SHA256, TLV_ECDSA_SIG, KR_SIG_ECDSA};
		return kr_ok();
	case KR_KEY_EC_P384:
		*a = (mcu_alg){EVP_sha384(), TLV_SHA384, TLV_ECDSA_SIG, KR_SIG_ECDSA};
		return kr_ok();
	case KR_KEY_RSA_2048:
		*a = (mcu_alg){EVP_sha256(), TLV_SHA256, TLV_RSA2048_PSS, KR_SIG_RSA_PSS};
		return kr_ok();
	case KR_KEY_RSA_3072:
		*a = (mcu_alg){EVP_sha256(), TLV_SHA256, TLV_RSA3072_PSS, KR_SIG_RSA_PSS};
		return kr_ok();
	case KR_KEY_ED25519:
		*a = (mcu_alg){EVP_sha256(), TLV_SHA256, TLV_ED25519, KR_SIG_EDDSA};
		return kr_ok();
	default:
		return kr_errf(KR_EINPUT, "MCUboot has no signature type for %s keys",
			       kr_key_type_name(t));
	}
}

/* The key hash TLV: the image hash of the key as the bootloader embeds it
 * (imgtool getpub): SubjectPublicKeyInfo for EC and Ed25519, PKCS#1
 * RSAPublicKey for RSA. */
static KR_MUST_USE kr_err key_hash(EVP_PKEY *pub, const EVP_MD *md, uint8_t *out, unsigned *len)
{
	uint8_t *der = NULL;
	int n = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA ? i2d_PublicKey(pub, &der)
							  : i2d_PUBKEY(pub, &der);
	KR_OSSL(n > 0, KR_EINTERNAL, "encoding the public key");
	int ok = EVP_Digest(der, (size_t)n, out, len, md, NULL);
	OPENSSL_free(der);
	KR_OSSL(ok, KR_EINTERNAL, "hashing the public key");
	return kr_ok();
}

/* ECDSA and RSA-PSS (salt = hash length, MGF1 with it) sign the digest;
 * Ed25519 signs the 32 digest bytes as its message (MCUboot's
 * image_ed25519.c verifies over the hash). */
static KR_MUST_USE kr_err sig_verify(EVP_PKEY *pub, const mcu_alg *a, const uint8_t *d, size_t dlen,
				     const uint8_t *sig, size_t siglen)
{
	int ok;
	if (a->scheme == KR_SIG_EDDSA) {
		KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
		ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
		     EVP_DigestVerify(ctx, sig, siglen, d, dlen) == 1;
	} else {
		KR_AUTO(EVP_PKEY_CTX) ctx = EVP_PKEY_CTX_new(pub, NULL);
		ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, a->md) == 1;
		if (ok && a->scheme == KR_SIG_RSA_PSS)
			ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
		ok = ok && EVP_PKEY_verify(ctx, sig, siglen, d, dlen) == 1;
	}
	ERR_clear_error();
	return ok ? kr_ok() : kr_errf(KR_EVERIFY, "the signature does not verify");
}

/* ---- the signed region and the TLVs ------------------------------------------------ */

/* n zero bytes of the image (at most 15: imgtool's alignment), hashed and
 * written like the rest of it. */
static KR_MUST_USE kr_err zeros(uint32_t n, EVP_MD_CTX *md, kr_fs_out *out, EVP_CIPHER_CTX *enc)
{
	uint8_t z[16] = {0};
	int len = (int)n;
	KR_ENSURE(n <= sizeof z, KR_EINTERNAL, "%u bytes of alignment", n);
	if (n == 0)
		return kr_ok();
	KR_OSSL(EVP_DigestUpdate(md, z, n), KR_EINTERNAL, "hashing");
	KR_OSSL(!enc || (EVP_EncryptUpdate(enc, z, &len, z, (int)n) && len == (int)n), KR_EINTERNAL,
		"encrypting");
	return out ? kr_fs_out_write(out, z, n) : kr_ok();
}

/* Hashes header + image + protected TLVs; with out, also writes them (the
 * image encrypted under enc when set). */
static KR_MUST_USE kr_err region(const kr_fw_image *img, const mcu_image *m, const uint8_t *header,
				 const mcu_alg *a, uint8_t *d, kr_fs_out *out, EVP_CIPHER_CTX *enc)
{
	KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	KR_OSSL(ctx && EVP_DigestInit_ex(ctx, a->md, NULL) &&
			EVP_DigestUpdate(ctx, header, m->hdr_size),
		KR_EINTERNAL, "hashing");
	if (out)
		KR_TRY(kr_fs_out_write(out, header, m->hdr_size));
	EVP_MD_CTX *mds[] = {ctx, NULL};
	KR_TRY(kr_fw_stream(img, m->body_at, m->body_len, mds, out, enc));
	KR_TRY(zeros(m->pad, ctx, out, enc));
	KR_TRY(kr_fw_stream(img, m->body_at + (off_t)m->body_len, m->prot_size, mds, out, NULL));
	KR_OSSL(EVP_DigestFinal_ex(ctx, d, NULL), KR_EINTERNAL, "hashing");
	return kr_ok();
}

typedef struct tlv_area {
	uint8_t buf[2048];
	size_t len;
} tlv_area;

static void tlv_add(tlv_area *t, int type, const uint8_t *v, size_t n)
{
	if (t->len == 0)
		t->len = 4;
	put_le16(t->buf + t->len, (uint16_t)type);
	put_le16(t->buf + t->len + 2, (uint16_t)n);
	memcpy(t->buf + t->len + 4, v, n);
	t->len += 4 + n;
	put_le16(t->buf, TLV_INFO_MAGIC);
	put_le16(t->buf + 2, (uint16_t)t->len); /* it_tlv_tot counts the info header */
}

/* ---- ECIES-P256 (MCUboot's encrypted.c, "MCUBoot_ECIES_v1") -------------------------- */

static KR_MUST_USE kr_err p256_key(const kr_fw_recipient *r, EVP_PKEY **pub)
{
	*pub = r->cert ? X509_get0_pubkey(r->cert) : r->key;
	kr_key_type t;
	kr_err e = *pub ? kr_key_type_of(*pub, &t) : kr_errf(KR_EINPUT, "no key");
	KR_ENSURE(!kr_failed(&e) && t == KR_KEY_EC_P256, KR_EINPUT,
		  "recipient %s: MCUboot encrypts to P-256 keys (ECIES-P256) only", r->name);
	return kr_ok();
}

/* The TLV: an ephemeral P-256 point, ECDH with the device-class key,
 * HKDF-SHA256 (no salt, info "MCUBoot_ECIES_v1") to 48 bytes: an AES-128
 * key that encrypts the image key in CTR mode from a zero counter, and an
 * HMAC-SHA256 key for the tag over the encrypted image key. */
static KR_MUST_USE kr_err ecies(EVP_PKEY *peer, const uint8_t key[16], uint8_t tlv[ECIES_LEN])
{
	KR_AUTO(EVP_PKEY) eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	KR_AUTO(EVP_PKEY_CTX) dh = eph ? EVP_PKEY_CTX_new(eph, NULL) : NULL;
	uint8_t shared[32], derived[48];
	size_t n = sizeof shared, pl = 0;
	KR_OSSL(dh && EVP_PKEY_derive_init(dh) == 1 && EVP_PKEY_derive_set_peer(dh, peer) == 1 &&
			EVP_PKEY_derive(dh, shared, &n) == 1 && n == 32,
		KR_EINTERNAL, "ECDH");
	KR_AUTO(EVP_PKEY_CTX) kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t dl = sizeof derived;
	int ok = kdf && EVP_PKEY_derive_init(kdf) == 1 &&
		 EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) == 1 &&
		 EVP_PKEY_CTX_set1_hkdf_key(kdf, shared, 32) == 1 &&
		 EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)"MCUBoot_ECIES_v1", 16) ==
			 1 &&
		 EVP_PKEY_derive(kdf, derived, &dl) == 1 && dl == 48;
	OPENSSL_cleanse(shared, sizeof shared);
	KR_AUTO(EVP_CIPHER_CTX) c = ok ? EVP_CIPHER_CTX_new() : NULL;
	uint8_t zero[16] = {0};
	int len = 0;
	ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, derived, zero) &&
	     EVP_EncryptUpdate(c, tlv + 97, &len, key, 16) && len == 16 &&
	     HMAC(EVP_sha256(), derived + 16, 32, tlv + 97, 16, tlv + 65, NULL) &&
	     EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, tlv, 65,
					     &pl) == 1 &&
	     pl == 65;
	OPENSSL_cleanse(derived, sizeof derived);
	KR_OSSL(ok, KR_EINTERNAL, "ECIES-P256");
	return kr_ok();
}

/* ---- signing ------------------------------------------------------------------------ */

/* One encrypted copy for recipient r: header, image encrypted under a fresh
 * key that the ECIES TLV carries, protected TLVs, and the TLV area; the
 * region is hashed again on the way and must match what the token signed. */
static KR_MUST_USE kr_err write_copy(kr_fw_job *j, const kr_fw_image *img, const mcu_image *m,
				     const mcu_alg *a, const uint8_t *d, const tlv_area *tlvs,
				     const kr_fw_recipient *r, const char *path)
{
	tlv_area t = *tlvs;
	uint8_t key[16], again[EVP_MAX_MD_SIZE], zero[16] = {0}, v[ECIES_LEN];
	EVP_PKEY *peer = NULL;
	KR_TRY(p256_key(r, &peer));
	KR_OSSL(RAND_priv_bytes(key, sizeof key) == 1, KR_EINTERNAL, "random");
	kr_err e = ecies(peer, key, v);
	KR_AUTO(EVP_CIPHER_CTX) enc = kr_failed(&e) ? NULL : EVP_CIPHER_CTX_new();
	if (enc && !EVP_EncryptInit_ex(enc, EVP_aes_128_ctr(), NULL, key, zero))
		e = kr_err_ossl(KR_EINTERNAL, "AES-CTR");
	OPENSSL_cleanse(key, sizeof key);
	KR_TRY(e);
	KR_OSSL(enc, KR_EINTERNAL, "out of memory");
	tlv_add(&t, TLV_ENC_EC256, v, sizeof v);
	kr_fs_out *out = NULL;
	KR_TRY(kr_fw_out_new(j, path, &out));
	KR_TRY(region(img, m, m->header, a, again, out, enc));
	KR_ENSURE(memcmp(again, d, (size_t)EVP_MD_get_size(a->md)) == 0, KR_EIO,
		  "%s: changed while it was being signed", img->path);
	return kr_fs_out_write(out, t.buf, t.len);
}

/* The TLV area for digest d: key hash, image hash, and the token's
 * signature, checked before it is used. */
static KR_MUST_USE kr_err sign_digest(const kr_fw_job *j, const mcu_alg *a, const uint8_t *d,
				      tlv_area *t)
{
	const kr_fw_signer *s = j->s;
	uint8_t kh[EVP_MAX_MD_SIZE], sig[KR_HSM_MAX_SIG];
	unsigned khlen = 0;
	size_t dlen = (size_t)EVP_MD_get_size(a->md), siglen = 0;
	EVP_PKEY *pub = X509_get0_pubkey(s->cert);
	KR_TRY(kr_hsm_sign(j->lane->session, s->key, a->scheme,
			   a->scheme == KR_SIG_EDDSA ? NULL : a->md, d, dlen, sig, &siglen));
	kr_err e = sig_verify(pub, a, d, dlen, sig, siglen);
	KR_ENSURE(!kr_failed(&e), KR_EVERIFY, "signer '%s': the token's signature does not verify",
		  s->name);
	KR_TRY(key_hash(pub, a->md, kh, &khlen));
	t->len = 0;
	tlv_add(t, TLV_KEYHASH, kh, khlen);
	tlv_add(t, a->hash_tlv, d, dlen);
	tlv_add(t, a->sig_tlv, sig, siglen);
	return kr_ok();
}

/* An unsigned image's own SHA-256 TLV (imgtool create's) must be the
 * image's: one changed since would be signed as it is now, unnoticed. */
static KR_MUST_USE kr_err check_own_hash(const kr_fw_image *img, const mcu_image *m)
{
	if (!m->has_hash)
		return kr_ok();
	mcu_alg sha = {EVP_sha256(), TLV_SHA256, 0, KR_SIG_ECDSA};
	uint8_t d[EVP_MAX_MD_SIZE];
	KR_TRY(region(img, m, m->header, &sha, d, NULL, NULL));
	KR_ENSURE(memcmp(d, m->hash, 32) == 0, KR_EINPUT,
		  "%s: its SHA-256 TLV is not the image's (changed after imgtool wrote it?)",
		  img->path);
	return kr_ok();
}

/* The image to sign, as it is to be signed. */
static KR_MUST_USE kr_err read_checked(const kr_fw_opts *o, const kr_fw_image *img, mcu_image *m)
{
	KR_TRY(read_input(o, img, m));
	return check_own_hash(img, m);
}

static KR_MUST_USE kr_err sign_image(kr_fw_job *j, const kr_fw_image *img, mcu_image *m)
{
	const kr_fw_opts *o = j->o;
	mcu_alg a;
	uint8_t d[EVP_MAX_MD_SIZE];
	tlv_area t;
	char path[4096];
	KR_TRY(alg_for(j->s->type, &a));
	if (o->nrecipients == 0) {
		/* One pass writes the output and hashes what it writes: what
		 * the token signs is what the file holds. */
		kr_fs_out *out = NULL;
		KR_TRY(kr_fw_output_path(o, img->path, ".signed.bin", 1, path, sizeof path));
		KR_TRY(kr_fw_out_new(j, path, &out));
		KR_TRY(region(img, m, m->header, &a, d, out, NULL));
		KR_TRY(sign_digest(j, &a, d, &t));
		return kr_fs_out_write(out, t.buf, t.len);
	}
	/* The encrypted copies' header is what is hashed and signed; each copy
	 * is read again from the image and checked against that digest. */
	put_le32(m->header + 16, m->flags | IMAGE_F_ENCRYPTED_AES128);
	KR_TRY(region(img, m, m->header, &a, d, NULL, NULL));
	KR_TRY(sign_digest(j, &a, d, &t));
	for (int i = 0; i < o->nrecipients; i++) {
		char suffix[160];
		snprintf(suffix, sizeof suffix, ".%s.enc.bin", o->recipients[i].name);
		KR_TRY(kr_fw_output_path(o, img->path, suffix, 1, path, sizeof path));
		KR_TRY(write_copy(j, img, m, &a, d, &t, &o->recipients[i], path));
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_mcuboot_sign(kr_fw_job *j, const kr_fw_image *img)
{
	KR_ENSURE(j->o->nkeks == 0, KR_EUSAGE,
		  "--encrypt-kek is for CMS; MCUboot images are encrypted to P-256 keys");
	mcu_image m = {0};
	kr_err e = read_checked(j->o, img, &m);
	if (!kr_failed(&e))
		e = sign_image(j, img, &m);
	mcu_clear(&m);
	return e;
}

KR_MUST_USE kr_err kr_fw_mcuboot_inspect(const kr_fw_opts *o, const kr_fw_image *img)
{
	mcu_image m = {0};
	kr_err e = read_checked(o, img, &m);
	mcu_clear(&m);
	return e;
}

/* ---- verification ------------------------------------------------------------------- */

typedef struct found_tlvs {
	const uint8_t *keyhash, *hash, *sig;
	size_t keyhash_len, hash_len, sig_len;
	int hash_type, sig_type;
} found_tlvs;

static KR_MUST_USE kr_err walk_tlvs(const char *file, const uint8_t *p, size_t n, found_tlvs *f)
{
	KR_ENSURE(n >= 4 && le16(p) == TLV_INFO_MAGIC && le16(p + 2) == n, KR_EVERIFY,
		  "%s: no TLV area where the header says (magic 0x6907 and its length)", file);
	for (size_t at = 4; at < n;) {
		KR_ENSURE(at + 4 <= n && at + 4 + le16(p + at + 2) <= n, KR_EVERIFY,
			  "%s: TLV at offset %zu runs past the area", file, at);
		int type = le16(p + at);
		size_t len = le16(p + at + 2);
		const uint8_t *v = p + at + 4;
		if (type == TLV_KEYHASH)
			f->keyhash = v, f->keyhash_len = len;
		else if (type == TLV_SHA256 || type == TLV_SHA384)
			f->hash = v, f->hash_len = len, f->hash_type = type;
		else if (type == TLV_ECDSA_SIG || type == TLV_RSA2048_PSS ||
			 type == TLV_RSA3072_PSS || type == TLV_ED25519)
			f->sig = v, f->sig_len = len, f->sig_type = type;
		at += 4 + len;
	}
	KR_ENSURE(f->keyhash && f->hash && f->sig, KR_EVERIFY,
		  "%s: the TLV area lacks a key hash, image hash or signature", file);
	return kr_ok();
}

static KR_MUST_USE kr_err check_image(const kr_fw_verify_opts *o, const kr_fw_image *img,
				      mcu_image *m, X509 *cert, char *summary, size_t sumsz)
{
	uint8_t h[IMAGE_HEADER_SIZE];
	KR_ENSURE(pread(img->fd, h, sizeof h, 0) == (ssize_t)sizeof h && le32(h) == IMAGE_MAGIC,
		  KR_EVERIFY, "%s: not an MCUboot image (magic)", img->path);
	parse_fields(m, h);
	KR_ENSURE(!(m->flags & IMAGE_F_ENCRYPTED_AES128), KR_EUSAGE,
		  "%s: encrypted; its hash covers the plaintext, so verify the plain image",
		  img->path);
	uint64_t end = (uint64_t)m->hdr_size + m->img_size + m->prot_size;
	KR_ENSURE(m->hdr_size >= IMAGE_HEADER_SIZE && end + 4 <= img->size &&
			  end + 4 + 2048 > img->size,
		  KR_EVERIFY, "%s: the header's sizes do not match the file", img->path);
	uint8_t area[2048 + 4];
	size_t n = (size_t)(img->size - end);
	KR_ENSURE(pread(img->fd, area, n, (off_t)end) == (ssize_t)n, KR_EIO, "%s: %s", img->path,
		  strerror(errno));
	found_tlvs f = {0};
	KR_TRY(walk_tlvs(img->path, area, n, &f));
	kr_key_type t;
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	mcu_alg a;
	KR_TRY(kr_key_type_of(pub, &t));
	KR_TRY(alg_for(t, &a));
	KR_ENSURE(f.sig_type == a.sig_tlv && f.hash_type == a.hash_tlv, KR_EVERIFY,
		  "%s: signature or hash type does not fit the signer's %s key", img->path,
		  kr_key_type_name(t));
	m->header = malloc(m->hdr_size);
	KR_ENSURE(m->header && pread(img->fd, m->header, m->hdr_size, 0) == m->hdr_size, KR_EIO,
		  "%s: reading the header", img->path);
	m->body_at = m->hdr_size;
	m->body_len = m->img_size;
	uint8_t d[EVP_MAX_MD_SIZE], kh[EVP_MAX_MD_SIZE];
	unsigned khlen = 0;
	KR_TRY(region(img, m, m->header, &a, d, NULL, NULL));
	KR_ENSURE(f.hash_len == (size_t)EVP_MD_get_size(a.md) && memcmp(f.hash, d, f.hash_len) == 0,
		  KR_EVERIFY, "%s: the image hash does not match (image altered)", img->path);
	KR_TRY(key_hash(pub, a.md, kh, &khlen));
	KR_ENSURE(f.keyhash_len == khlen && memcmp(f.keyhash, kh, khlen) == 0, KR_EVERIFY,
		  "%s: signed by another key than the certificate's", img->path);
	kr_err e = sig_verify(pub, &a, d, f.hash_len, f.sig, f.sig_len);
	KR_ENSURE(!kr_failed(&e), KR_EVERIFY, "%s: %s", img->path, e.msg);
	char v[48];
	snprintf(v, sizeof v, "%u.%u.%u+%u", m->version.major, m->version.minor,
		 m->version.revision, (unsigned)m->version.build);
	if (o->expect_version) {
		kr_mcuboot_version want;
		KR_TRY(kr_mcuboot_version_parse(o->expect_version, &want));
		KR_ENSURE(memcmp(&want, &m->version, sizeof want) == 0, KR_EVERIFY,
			  "%s: version %s, expected %s", img->path, v, o->expect_version);
	}
	snprintf(summary, sumsz, "%s: good MCUboot signature (%s), version %s", img->path,
		 kr_key_type_name(t), v);
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_mcuboot_verify(const kr_fw_verify_opts *o, const char *file, char *summary,
					size_t sumsz)
{
	KR_ENSURE(o->cert, KR_EUSAGE, "MCUboot images carry no certificate: give --cert");
	STACK_OF(X509) *rest = NULL; /* the signer's certificate, then its chain */
	KR_TRY(kr_certs_read(o->cert, &rest));
	KR_AUTO(X509) cert = sk_X509_shift(rest);
	kr_err e = kr_fw_check_signer(cert, rest, o->root);
	kr_fw_image img = {.path = file, .fd = -1};
	mcu_image m = {0};
	if (!kr_failed(&e))
		e = kr_fw_image_open(file, &img);
	if (!kr_failed(&e))
		e = check_image(o, &img, &m, cert, summary, sumsz);
	if (img.fd >= 0)
		close(img.fd);
	mcu_clear(&m);
	sk_X509_pop_free(rest, X509_free);
	return e;
}

KR_MUST_USE kr_err kr_mcuboot_version_parse(const char *text, kr_mcuboot_version *v)
{
	static const unsigned long max[4] = {255, 255, 65535, 0xffffffffUL};
	unsigned long part[4] = {0};
	const char *p = text;
	int n = 0, ok = 1;
	while (ok && n < 4) {
		char *end = NULL;
		ok = isdigit((unsigned char)*p) && (part[n] = strtoul(p, &end, 10)) <= max[n];
		p = ok ? end : p;
		n += ok;
		if (!ok || *p == '\0')
			break;
		ok = *p++ == (n < 3 ? '.' : '+');
	}
	/* imgtool's grammar (imgtool/version.py): later parts optional, a
	 * build number only after a revision */
	KR_ENSURE(ok && n >= 1 && *p == '\0', KR_EUSAGE,
		  "version '%s': expected MAJOR[.MINOR[.REVISION[+BUILD]]] (at most "
		  "255.255.65535+4294967295)",
		  text);
	*v = (kr_mcuboot_version){(uint8_t)part[0], (uint8_t)part[1], (uint16_t)part[2],
				  (uint32_t)part[3]};
	return kr_ok();
}
