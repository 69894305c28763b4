/* Feldman VSS over P-256 (crypto/vss.h). Secret values live in BIGNUMs
 * from a secure BN_CTX and are cleared when freed. */
#include "vss.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <string.h>

typedef struct vss {
	EC_GROUP *g;
	const BIGNUM *n;
	BN_CTX *ctx;
} vss;

static KR_MUST_USE kr_err vss_open(vss *w)
{
	w->g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	w->ctx = BN_CTX_secure_new();
	w->n = w->g ? EC_GROUP_get0_order(w->g) : NULL;
	KR_OSSL(w->g && w->ctx && w->n, KR_EINTERNAL, "P-256");
	BN_CTX_start(w->ctx);
	return kr_ok();
}

static void vss_close(vss *w)
{
	if (w->ctx)
		BN_CTX_end(w->ctx);
	BN_CTX_free(w->ctx);
	EC_GROUP_free(w->g);
}

int kr_vss_scalar_ok(const uint8_t b[32])
{
	/* P-256's order, big-endian (SEC 2 section 2.4.2) */
	static const uint8_t n[32] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
		0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	};
	static const uint8_t zero[32] = {0};
	return memcmp(b, n, 32) < 0 && memcmp(b, zero, 32) != 0;
}

/* The commitment of a scalar: a G, compressed. */
static KR_MUST_USE kr_err commit(vss *w, const BIGNUM *a, uint8_t out[KR_VSS_POINT])
{
	EC_POINT *p = EC_POINT_new(w->g);
	int ok = p && EC_POINT_mul(w->g, p, a, NULL, NULL, w->ctx) == 1 &&
		 EC_POINT_point2oct(w->g, p, POINT_CONVERSION_COMPRESSED, out, KR_VSS_POINT,
				    w->ctx) == KR_VSS_POINT;
	EC_POINT_free(p);
	KR_OSSL(ok, KR_EINTERNAL, "a commitment");
	return kr_ok();
}

/* sum_j i^j C_j, by Horner's rule on the points. */
static KR_MUST_USE kr_err expected(vss *w, const kr_vss_verifier *v, int index, EC_POINT *r)
{
	EC_POINT *c = EC_POINT_new(w->g);
	BIGNUM *i = BN_CTX_get(w->ctx);
	int ok = c && i && BN_set_word(i, (BN_ULONG)index) == 1 &&
		 EC_POINT_oct2point(w->g, r, v->c[v->m - 1], KR_VSS_POINT, w->ctx) == 1;
	for (int j = v->m - 2; ok && j >= 0; j--)
		ok = EC_POINT_mul(w->g, r, NULL, r, i, w->ctx) == 1 &&
		     EC_POINT_oct2point(w->g, c, v->c[j], KR_VSS_POINT, w->ctx) == 1 &&
		     EC_POINT_add(w->g, r, r, c, w->ctx) == 1;
	EC_POINT_free(c);
	KR_ENSURE(ok, KR_EVERIFY, "the verifier holds a point that is not on P-256");
	return kr_ok();
}

static KR_MUST_USE kr_err check(vss *w, const kr_vss_verifier *v, const kr_vss_share *s)
{
	KR_ENSURE(v->m >= 2 && v->m <= KR_VSS_MAX, KR_EINPUT, "a verifier of %d points", v->m);
	KR_ENSURE(s->index >= 1 && s->index <= KR_VSS_MAX, KR_EVERIFY, "share %d: no such index",
		  s->index);
	BIGNUM *y = BN_CTX_get(w->ctx);
	EC_POINT *lhs = EC_POINT_new(w->g), *rhs = EC_POINT_new(w->g);
	kr_err e = y && lhs && rhs ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e) && (!BN_bin2bn(s->value, 32, y) || BN_cmp(y, w->n) >= 0))
		e = kr_errf(KR_EVERIFY, "share %d: its value is not below the group order",
			    s->index);
	if (!kr_failed(&e) && EC_POINT_mul(w->g, lhs, y, NULL, NULL, w->ctx) != 1)
		e = kr_err_ossl(KR_EINTERNAL, "y G");
	if (!kr_failed(&e))
		e = expected(w, v, s->index, rhs);
	if (!kr_failed(&e) && EC_POINT_cmp(w->g, lhs, rhs, w->ctx) != 0)
		e = kr_errf(KR_EVERIFY,
			    "share %d does not match the verifier (mistyped, altered, or of "
			    "another backup)",
			    s->index);
	EC_POINT_free(lhs);
	EC_POINT_free(rhs);
	return e;
}

KR_MUST_USE kr_err kr_vss_check(const kr_vss_verifier *v, const kr_vss_share *s)
{
	vss w = {0};
	kr_err e = vss_open(&w);
	if (!kr_failed(&e))
		e = check(&w, v, s);
	vss_close(&w);
	return e;
}

static KR_MUST_USE kr_err split(vss *w, const uint8_t secret[32], int m, int n,
				const uint8_t *coeffs, kr_vss_share *shares, kr_vss_verifier *v)
{
	BIGNUM *a[KR_VSS_MAX], *x = BN_CTX_get(w->ctx), *y = BN_CTX_get(w->ctx);
	KR_OSSL(x && y, KR_EINTERNAL, "out of memory");
	for (int j = 0; j < m; j++) {
		const uint8_t *b = j ? coeffs + (size_t)(j - 1) * 32 : secret;
		KR_ENSURE(kr_vss_scalar_ok(b), KR_EINPUT,
			  "%s is zero or not below P-256's order: draw it again",
			  j ? "a coefficient" : "the secret");
		a[j] = BN_CTX_get(w->ctx);
		KR_OSSL(a[j] && BN_bin2bn(b, 32, a[j]), KR_EINTERNAL, "a coefficient");
		KR_TRY(commit(w, a[j], v->c[j]));
	}
	v->m = m;
	for (int i = 1; i <= n; i++) { /* f(i) by Horner's rule */
		int ok = BN_set_word(x, (BN_ULONG)i) == 1 && BN_copy(y, a[m - 1]) != NULL;
		for (int j = m - 2; ok && j >= 0; j--)
			ok = BN_mod_mul(y, y, x, w->n, w->ctx) == 1 &&
			     BN_mod_add(y, y, a[j], w->n, w->ctx) == 1;
		KR_OSSL(ok && BN_bn2binpad(y, shares[i - 1].value, 32) == 32, KR_EINTERNAL,
			"share %d", i);
		shares[i - 1].index = i;
	}
	/* each share checked before it is released (reference section 9) */
	for (int i = 0; i < n; i++)
		KR_TRY(check(w, v, &shares[i]));
	return kr_ok();
}

KR_MUST_USE kr_err kr_vss_split(const uint8_t secret[32], int m, int n, const uint8_t *coeffs,
				size_t coeffs_len, kr_vss_share *shares, kr_vss_verifier *v)
{
	KR_ENSURE(m >= 2 && m <= n && n <= KR_VSS_MAX, KR_EINPUT, "%d of %d: 2 <= M <= N <= %d", m,
		  n, KR_VSS_MAX);
	KR_ENSURE(coeffs_len == (size_t)(m - 1) * 32, KR_EINPUT, "%zu random bytes, not %d",
		  coeffs_len, (m - 1) * 32);
	vss w = {0};
	kr_err e = vss_open(&w);
	if (!kr_failed(&e))
		e = split(&w, secret, m, n, coeffs, shares, v);
	vss_close(&w);
	if (kr_failed(&e))
		OPENSSL_cleanse(shares, sizeof *shares * (size_t)n);
	return e;
}

/* Lagrange interpolation at 0 over the first m shares:
 * s = sum_i y_i prod_(j != i) x_j / (x_j - x_i) mod n. */
static KR_MUST_USE kr_err combine(vss *w, const kr_vss_verifier *v, const kr_vss_share *sh,
				  uint8_t secret[32])
{
	BIGNUM *s = BN_CTX_get(w->ctx), *term = BN_CTX_get(w->ctx), *num = BN_CTX_get(w->ctx),
	       *den = BN_CTX_get(w->ctx), *t = BN_CTX_get(w->ctx);
	KR_OSSL(t, KR_EINTERNAL, "out of memory");
	BN_zero(s);
	for (int i = 0; i < v->m; i++) {
		int ok = BN_bin2bn(sh[i].value, 32, term) && BN_one(num) && BN_one(den);
		for (int j = 0; ok && j < v->m; j++) {
			if (j == i)
				continue;
			ok = BN_set_word(t, (BN_ULONG)sh[j].index) == 1 &&
			     BN_mod_mul(num, num, t, w->n, w->ctx) == 1 &&
			     BN_set_word(t, (BN_ULONG)sh[j].index) == 1 &&
			     BN_sub_word(t, (BN_ULONG)sh[i].index) == 1 &&
			     BN_mod_mul(den, den, t, w->n, w->ctx) == 1;
		}
		ok = ok && BN_mod_inverse(den, den, w->n, w->ctx) != NULL &&
		     BN_mod_mul(term, term, num, w->n, w->ctx) == 1 &&
		     BN_mod_mul(term, term, den, w->n, w->ctx) == 1 &&
		     BN_mod_add(s, s, term, w->n, w->ctx) == 1;
		KR_OSSL(ok, KR_EINTERNAL, "interpolating share %d", sh[i].index);
	}
	uint8_t c0[KR_VSS_POINT];
	KR_TRY(commit(w, s, c0));
	KR_ENSURE(!memcmp(c0, v->c[0], KR_VSS_POINT), KR_EVERIFY,
		  "the shares rebuild a key the verifier does not commit to");
	KR_OSSL(BN_bn2binpad(s, secret, 32) == 32, KR_EINTERNAL, "the secret");
	return kr_ok();
}

KR_MUST_USE kr_err kr_vss_combine(const kr_vss_verifier *v, const kr_vss_share *shares, int k,
				  uint8_t secret[32])
{
	KR_ENSURE(v->m >= 2 && v->m <= KR_VSS_MAX, KR_EINPUT, "a verifier of %d points", v->m);
	KR_ENSURE(k >= v->m, KR_EINPUT, "%d share%s, and %d are needed", k, k == 1 ? "" : "s",
		  v->m);
	for (int i = 0; i < k; i++)
		for (int j = 0; j < i; j++)
			KR_ENSURE(shares[i].index != shares[j].index, KR_EINPUT,
				  "share %d given twice", shares[i].index);
	vss w = {0};
	kr_err e = vss_open(&w);
	for (int i = 0; !kr_failed(&e) && i < k; i++)
		e = check(&w, v, &shares[i]);
	if (!kr_failed(&e))
		e = combine(&w, v, shares, secret);
	vss_close(&w);
	return e;
}

KR_MUST_USE kr_err kr_vss_verifier_encode(const kr_vss_verifier *v, uint8_t *out, size_t cap,
					  size_t *len)
{
	size_t need = 1 + (size_t)v->m * KR_VSS_POINT;
	KR_ENSURE(v->m >= 2 && v->m <= KR_VSS_MAX && cap >= need, KR_EINPUT,
		  "a verifier of %d points", v->m);
	out[0] = (uint8_t)v->m;
	for (int j = 0; j < v->m; j++)
		memcpy(out + 1 + (size_t)j * KR_VSS_POINT, v->c[j], KR_VSS_POINT);
	*len = need;
	return kr_ok();
}

KR_MUST_USE kr_err kr_vss_verifier_decode(const uint8_t *in, size_t len, kr_vss_verifier *v)
{
	KR_ENSURE(len >= 1 && in[0] >= 2 && in[0] <= KR_VSS_MAX &&
			  len == 1 + (size_t)in[0] * KR_VSS_POINT,
		  KR_EINPUT, "not a verifier (%zu bytes)", len);
	v->m = in[0];
	for (int j = 0; j < v->m; j++)
		memcpy(v->c[j], in + 1 + (size_t)j * KR_VSS_POINT, KR_VSS_POINT);
	/* every point on the curve */
	vss w = {0};
	kr_err e = vss_open(&w);
	EC_POINT *p = kr_failed(&e) ? NULL : EC_POINT_new(w.g);
	for (int j = 0; !kr_failed(&e) && j < v->m; j++)
		if (!p || EC_POINT_oct2point(w.g, p, v->c[j], KR_VSS_POINT, w.ctx) != 1)
			e = kr_errf(KR_EINPUT, "the verifier's point %d is not on P-256", j);
	EC_POINT_free(p);
	vss_close(&w);
	return e;
}
