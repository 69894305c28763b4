/* Shared by the fw/ sources only. */
#ifndef KR_FW_INTERNAL_H
#define KR_FW_INTERNAL_H

#include "fw.h"
#include "../ca/sign.h"
#include "../util/fs.h"

#include <openssl/cms.h>
#include <sys/types.h>

struct kr_fw_signer {
	char name[64];
	X509 *cert;
	STACK_OF(X509) * chain; /* the issuing CA's certificate and those above it */
	kr_hsm *hsm;
	kr_hsm_key *key;
	kr_key_type type;
	int workers;
	uint8_t fingerprint[32];
	int64_t ca_id; /* the issuing CA, in the store */
	/* its CMS packages' identifier and target hardware, by default */
	char package[64];
	char hardware[KR_FW_MAX_HARDWARE][64];
	int nhardware;
};

/* An image opened for signing: read twice (digest, then output), and
 * checked to be unchanged in between. */
typedef struct kr_fw_image {
	const char *path;
	int fd;
	uint64_t size;
	uint8_t *buf; /* KR_FW_BUF bytes to read through, reused; NULL: one per pass */
	uint8_t digest[EVP_MAX_MD_SIZE]; /* CMS: under the signer's hash, from the first pass */
} kr_fw_image;

#define KR_FW_BUF (1 << 20) /* big reads: the hash, not the syscalls, sets the pace */

/* One pass over the whole image: its digest under md into d, and its
 * SHA-256 into sha256 if that is not NULL. */
KR_MUST_USE kr_err kr_fw_digest(const kr_fw_image *img, const EVP_MD *md, uint8_t *d,
				uint8_t *sha256);

/* Opens path read-only: a regular, non-empty file (img->fd, img->size). */
KR_MUST_USE kr_err kr_fw_image_open(const char *path, kr_fw_image *img);

/* Feeds bytes [from, from + len) of the image to each digest (NULL ends the
 * list) and, if out is set, copies them there, encrypted by enc if set. */
KR_MUST_USE kr_err kr_fw_stream(const kr_fw_image *img, off_t from, uint64_t len,
				EVP_MD_CTX *const *mds, kr_fs_out *out, EVP_CIPHER_CTX *enc);

/* What one batch worker signs with: a session, for CMS the key bridged for
 * OpenSSL's CMS code (on a session of its own), and a read buffer. */
typedef struct kr_fw_lane {
	kr_hsm_session *session;
	EVP_PKEY *evp; /* NULL for Ed25519 */
	uint8_t *buf;  /* KR_FW_BUF bytes */
} kr_fw_lane;

/* One image of a batch: signed in the lane of the worker that takes it,
 * then recorded and its outputs named by the batch, in input order. */
typedef struct kr_fw_job {
	kr_fw_signer *s;
	const kr_fw_opts *o;
	const kr_fw_lane *lane;
	char *image;
	kr_fw_result r;
	kr_fs_out *outs; /* unnamed until the chunk is recorded */
	int nouts;
	size_t cap;
	kr_err e;     /* signing it */
	kr_err named; /* naming its outputs */
} kr_fw_job;

/* Opens an output of the image being signed (its path joins the result). */
KR_MUST_USE kr_err kr_fw_out_new(kr_fw_job *j, const char *path, kr_fs_out **out);

/* "DIR/BASE" + suffix, BASE without ".bin" if strip_bin. */
KR_MUST_USE kr_err kr_fw_output_path(const kr_fw_opts *o, const char *image, const char *suffix,
				     int strip_bin, char *out, size_t outsz);

KR_MUST_USE kr_err kr_fw_cms_sign(kr_fw_job *j, const kr_fw_image *img);
/* The package's RFC 4108 signed attributes (fw_attrs.c): its identifier
 * and target hardware from o, and over an encrypted package the id of the
 * key that decrypts it (keyid NULL otherwise). */
KR_MUST_USE kr_err kr_fw_attrs_add(CMS_SignerInfo *si, const kr_fw_opts *o, const uint8_t *keyid,
				   size_t keyidlen);
/* Checks them in a package being verified, against o's expectations, and
 * describes them into desc ("package OID version N for OID, ..."). */
KR_MUST_USE kr_err kr_fw_attrs_check(const char *file, CMS_SignerInfo *si,
				     const kr_fw_verify_opts *o, int encrypted, char *desc,
				     size_t descsz);
/* what: oid is a dotted object identifier, or KR_EUSAGE saying what. */
KR_MUST_USE kr_err kr_fw_oid_check(const char *what, const char *oid);
KR_MUST_USE kr_err kr_fw_mcuboot_sign(kr_fw_job *j, const kr_fw_image *img);
/* What kr_fw_mcuboot_sign reads of the image before it signs (header or
 * the one o makes, layout, an unsigned TLV area and its hash), alone: for
 * tests/fuzz. */
KR_MUST_USE kr_err kr_fw_mcuboot_inspect(const kr_fw_opts *o, const kr_fw_image *img);

/* The certificate allows codeSigning (extendedKeyUsage). */
int kr_fw_code_signing(X509 *x);
/* The certificate chains to the root and may sign code. */
KR_MUST_USE kr_err kr_fw_check_signer(X509 *cert, STACK_OF(X509) * untrusted, const char *root);

KR_MUST_USE kr_err kr_fw_cms_verify(const kr_fw_verify_opts *o, const char *file, char *summary,
				    size_t sumsz);
KR_MUST_USE kr_err kr_fw_mcuboot_verify(const kr_fw_verify_opts *o, const char *file, char *summary,
					size_t sumsz);

#endif
