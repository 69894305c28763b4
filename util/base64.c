/* Base64 through OpenSSL's EVP codec (util/base64.h). */
#include "base64.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>

KR_MUST_USE kr_err kr_base64_encode(const uint8_t *in, size_t n, char **out, size_t *len)
{
	KR_ENSURE(n <= (size_t)INT_MAX / 4 * 3, KR_EINPUT, "%zu octets: too many for base64", n);
	*out = malloc(4 * ((n + 2) / 3) + 1);
	KR_ENSURE(*out, KR_EINTERNAL, "out of memory");
	*len = (size_t)EVP_EncodeBlock((unsigned char *)*out, in, (int)n);
	return kr_ok();
}

KR_MUST_USE kr_err kr_base64_decode(const char *in, size_t n, uint8_t **out, size_t *len)
{
	KR_ENSURE(n <= INT_MAX, KR_EINPUT, "%zu characters: too many for base64", n);
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	*out = ctx ? malloc(n / 4 * 3 + 3) : NULL;
	int a = 0, b = 0, ok = *out != NULL;
	if (ok) {
		EVP_DecodeInit(ctx);
		/* Update returns -1 on a character outside the alphabet */
		ok = EVP_DecodeUpdate(ctx, *out, &a, (const unsigned char *)in, (int)n) >= 0 &&
		     EVP_DecodeFinal(ctx, *out + a, &b) >= 0;
	}
	EVP_ENCODE_CTX_free(ctx);
	if (!ok || a + b == 0) {
		free(*out);
		*out = NULL;
		return kr_errf(KR_EINPUT, "not base64");
	}
	*len = (size_t)a + (size_t)b;
	return kr_ok();
}
