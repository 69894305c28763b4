/* One-shot digests. A digest OpenSSL failed to compute is an error, never
 * a buffer of whatever was there before. */
#ifndef KR_HASH_H
#define KR_HASH_H

#include "err.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* out needs EVP_MAX_MD_SIZE bytes (or md's size); len may be NULL. */
KR_MUST_USE kr_err kr_digest(const EVP_MD *md, const void *p, size_t n, uint8_t *out,
			     unsigned *len);
KR_MUST_USE kr_err kr_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
