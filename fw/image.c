/* What the formats share, below them: an image opened and read in a stream,
 * its outputs named and opened, and the check of a signer certificate. */
#include "internal.h"
#include "../ca/authority.h"
#include "../util/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kr_fw_code_signing(X509 *x)
{
	return (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
	       (X509_get_extended_key_usage(x) & XKU_CODE_SIGN);
}

KR_MUST_USE kr_err kr_fw_stream(const kr_fw_image *img, off_t from, uint64_t len,
				EVP_MD_CTX *const *mds, kr_fs_out *out, EVP_CIPHER_CTX *enc)
{
	/* A buffer reused image after image: a fresh one would be faulted in
	 * page by page for every image. */
	uint8_t *own = img->buf ? NULL : malloc(KR_FW_BUF), *buf = img->buf ? img->buf : own;
	KR_ENSURE(buf, KR_EINTERNAL, "out of memory");
	kr_err e = kr_ok();
	while (len > 0 && !kr_failed(&e)) {
		size_t want = len < KR_FW_BUF ? (size_t)len : KR_FW_BUF;
		ssize_t n = pread(img->fd, buf, want, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = kr_errf(KR_EIO, "%s: %s", img->path,
				    n < 0 ? strerror(errno) : "shorter than it was (changed?)");
			break;
		}
		for (int i = 0; mds && mds[i] && !kr_failed(&e); i++)
			if (!EVP_DigestUpdate(mds[i], buf, (size_t)n))
				e = kr_err_ossl(KR_EINTERNAL, "hashing %s", img->path);
		int elen = (int)n;
		if (enc && !kr_failed(&e) &&
		    (!EVP_EncryptUpdate(enc, buf, &elen, buf, (int)n) || elen != n))
			e = kr_err_ossl(KR_EINTERNAL, "encrypting %s", img->path);
		if (out && !kr_failed(&e))
			e = kr_fs_out_write(out, buf, (size_t)n);
		from += n;
		len -= (uint64_t)n;
	}
	free(own);
	return e;
}

KR_MUST_USE kr_err kr_fw_output_path(const kr_fw_opts *o, const char *image, const char *suffix,
				     int strip_bin, char *out, size_t outsz)
{
	const char *base = strrchr(image, '/') ? strrchr(image, '/') + 1 : image;
	int len = (int)strlen(base);
	if (strip_bin && len > 4 && strcmp(base + len - 4, ".bin") == 0)
		len -= 4;
	int n = snprintf(out, outsz, "%s/%.*s%s", o->out_dir ? o->out_dir : ".", len, base, suffix);
	KR_ENSURE(n > 0 && (size_t)n < outsz, KR_EINPUT, "%s: output path too long", image);
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_out_new(kr_fw_job *j, const char *path, kr_fs_out **out)
{
	/* Grown one at a time: an image has one output, or two plus one per
	 * recipient, each 8 KiB, and the array is kept from chunk to chunk. */
	if ((size_t)j->nouts == j->cap) {
		kr_fs_out *more = realloc(j->outs, (j->cap + 1) * sizeof *more);
		KR_ENSURE(more, KR_EINTERNAL, "out of memory");
		j->outs = more;
		j->cap++;
	}
	KR_TRY(kr_fs_out_open(&j->outs[j->nouts], path, 0644));
	*out = &j->outs[j->nouts++];
	kr_fw_result *r = &j->r;
	size_t used = strlen(r->outputs);
	snprintf(r->outputs + used, sizeof r->outputs - used, "%s%s", used ? "," : "", path);
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_image_open(const char *path, kr_fw_image *img)
{
	img->path = path;
	img->fd = open(path, O_RDONLY | O_CLOEXEC);
	KR_ENSURE(img->fd >= 0, KR_EIO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	KR_ENSURE(fstat(img->fd, &st) == 0, KR_EIO, "%s: %s", path, strerror(errno));
	KR_ENSURE(S_ISREG(st.st_mode), KR_EINPUT, "%s: not a regular file", path);
	KR_ENSURE(st.st_size > 0, KR_EINPUT, "%s: empty image", path);
	img->size = (uint64_t)st.st_size;
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_digest(const kr_fw_image *img, const EVP_MD *md, uint8_t *d,
				uint8_t *sha256)
{
	KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	KR_AUTO(EVP_MD_CTX) ctx256 = sha256 && md != EVP_sha256() ? EVP_MD_CTX_new() : NULL;
	KR_OSSL(ctx && EVP_DigestInit_ex(ctx, md, NULL), KR_EINTERNAL, "hashing");
	KR_OSSL(!ctx256 || EVP_DigestInit_ex(ctx256, EVP_sha256(), NULL), KR_EINTERNAL, "hashing");
	EVP_MD_CTX *mds[] = {ctx, ctx256, NULL};
	KR_TRY(kr_fw_stream(img, 0, img->size, mds, NULL, NULL));
	KR_OSSL(EVP_DigestFinal_ex(ctx, d, NULL), KR_EINTERNAL, "hashing");
	if (sha256 && ctx256)
		KR_OSSL(EVP_DigestFinal_ex(ctx256, sha256, NULL), KR_EINTERNAL, "hashing");
	else if (sha256)
		memcpy(sha256, d, 32);
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_check_signer(X509 *cert, STACK_OF(X509) * untrusted, const char *root)
{
	KR_AUTO(X509) anchor = NULL;
	KR_TRY(kr_cert_read(root, &anchor));
	KR_AUTO(X509_STORE) st = X509_STORE_new();
	KR_AUTO(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	KR_OSSL(st && ctx && X509_STORE_add_cert(st, anchor) &&
			X509_STORE_CTX_init(ctx, st, cert, untrusted),
		KR_EINTERNAL, "setting up chain verification");
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	KR_ENSURE(X509_verify_cert(ctx) == 1, KR_EVERIFY, "signer certificate: %s",
		  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	KR_ENSURE(kr_fw_code_signing(cert), KR_EVERIFY,
		  "signer certificate does not allow codeSigning");
	return kr_ok();
}
