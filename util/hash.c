#include "hash.h"

KR_MUST_USE kr_err kr_digest(const EVP_MD *md, const void *p, size_t n, uint8_t *out, unsigned *len)
{
	KR_OSSL(md && EVP_Digest(p, n, out, len, md, NULL), KR_EINTERNAL, "computing %s",
		md ? EVP_MD_get0_name(md) : "a digest of an unknown algorithm");
	return kr_ok();
}

KR_MUST_USE kr_err kr_sha256(const void *p, size_t n, uint8_t out[32])
{
	return kr_digest(EVP_sha256(), p, n, out, NULL);
}
