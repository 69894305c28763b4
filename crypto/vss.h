/* crypto/vss: Feldman's verifiable secret sharing (FOCS 1987) over P-256,
 * on OpenSSL's BN and EC_POINT functions: the M-of-N paper backup of a CA
 * key's wrapping key (docs/ceremony-guide.md).
 *
 * The secret is a scalar s < n (the group order). A polynomial
 * f(x) = s + a1 x + ... + a(m-1) x^(m-1) mod n with random coefficients
 * gives share i the value f(i), i = 1..N; the verifier is the commitments
 * C_j = a_j G (C_0 = s G). A share (i, y) is good if and only if
 * y G = sum_j i^j C_j: a typo, a flipped bit or a share of another backup
 * is refused before it is used, which plain Shamir (ssss, libgfshare)
 * cannot do. Any M good shares give s back by Lagrange interpolation at 0;
 * fewer give nothing that can be checked.
 *
 * The verifier reveals s G: a key backed up so is as strong as the
 * discrete logarithm on P-256 (128 bits), as strong as the AES-256 key
 * wrap it protects is meant to be against classical attackers. */
#ifndef KR_CRYPTO_VSS_H
#define KR_CRYPTO_VSS_H

#include "../util/err.h"

#include <stddef.h>
#include <stdint.h>

#define KR_VSS_MAX 16   /* shares, and the threshold, at most */
#define KR_VSS_POINT 33 /* a compressed P-256 point */

typedef struct kr_vss_share {
	int index;         /* 1..N */
	uint8_t value[32]; /* f(index), big-endian */
} kr_vss_share;

typedef struct kr_vss_verifier {
	int m;                               /* the threshold */
	uint8_t c[KR_VSS_MAX][KR_VSS_POINT]; /* C_0 .. C_(m-1) */
} kr_vss_verifier;

/* Splits secret (32 bytes, big-endian, below the group order: KR_EINPUT if
 * not) M-of-N, 2 <= M <= N <= KR_VSS_MAX. coeffs: (M-1) * 32 random bytes
 * (the HSM's RNG), each below the order. Every share is checked against
 * the verifier before this returns. */
KR_MUST_USE kr_err kr_vss_split(const uint8_t secret[32], int m, int n, const uint8_t *coeffs,
				size_t coeffs_len, kr_vss_share *shares, kr_vss_verifier *v);

/* Whether the share belongs to this verifier: KR_EVERIFY if not. */
KR_MUST_USE kr_err kr_vss_check(const kr_vss_verifier *v, const kr_vss_share *s);

/* The secret from k >= v->m good shares of distinct indexes (each checked,
 * and the result checked against C_0). */
KR_MUST_USE kr_err kr_vss_combine(const kr_vss_verifier *v, const kr_vss_share *shares, int k,
				  uint8_t secret[32]);

/* Whether 32 bytes are a scalar below P-256's order (a secret or a
 * coefficient to draw again if not). */
int kr_vss_scalar_ok(const uint8_t b[32]);

/* The verifier as bytes (1 + M * 33: M, then the points) and back. */
KR_MUST_USE kr_err kr_vss_verifier_encode(const kr_vss_verifier *v, uint8_t *out, size_t cap,
					  size_t *len);
KR_MUST_USE kr_err kr_vss_verifier_decode(const uint8_t *in, size_t len, kr_vss_verifier *v);

#endif
