/* A VSS share on paper (crypto/share.h). */
#include "share.h"
#include "backup.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The share's 33 bytes: its index, then its value. */
static void bytes_of(const kr_vss_share *s, uint8_t b[33])
{
	b[0] = (uint8_t)s->index;
	memcpy(b + 1, s->value, 32);
}

static void span(int i, size_t *at, size_t *n)
{
	*at = (size_t)(i - 1) * 8;
	*n = i < KR_SHARE_LINES ? 8 : 33 - *at;
}

/* The first two bytes of SHA-256("keyrite share v1", i, bytes). */
static unsigned checksum(int i, const uint8_t *p, size_t n)
{
	static const uint8_t tag[16] = "keyrite share v1"; /* no NUL: 16 bytes exactly */
	uint8_t in[sizeof tag + 1 + 8], d[32];
	memcpy(in, tag, sizeof tag);
	in[16] = (uint8_t)i;
	memcpy(in + 17, p, n);
	kr_err e = kr_sha256(in, 17 + n, d);
	return kr_failed(&e) ? 0x10000u : (unsigned)d[0] << 8 | d[1];
}

void kr_share_line(const kr_vss_share *s, int i, char out[KR_SHARE_LINE_MAX])
{
	uint8_t b[33];
	bytes_of(s, b);
	size_t at, n;
	span(i, &at, &n);
	int len = snprintf(out, KR_SHARE_LINE_MAX, "%d:", i);
	for (size_t k = 0; k < n; k += 2)
		len += snprintf(out + len, (size_t)(KR_SHARE_LINE_MAX - len),
				k + 1 < n ? " %02x%02x" : " %02x", b[at + k],
				k + 1 < n ? b[at + k + 1] : 0);
	snprintf(out + len, (size_t)(KR_SHARE_LINE_MAX - len), "  %04x", checksum(i, b + at, n));
	OPENSSL_cleanse(b, sizeof b);
}

static int nibble(int c)
{
	c = tolower(c);
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

KR_MUST_USE kr_err kr_share_read_line(const char *text, int i, kr_vss_share *s)
{
	KR_ENSURE(i >= 1 && i <= KR_SHARE_LINES, KR_EINPUT, "no line %d in a share", i);
	const char *p = text;
	while (*p == ' ' || *p == '\t')
		p++;
	const char *colon = strchr(p, ':');
	if (colon) { /* "i:" as printed: the right line in the right place */
		char *end = NULL;
		long n = strtol(p, &end, 10);
		while (end && *end == ' ')
			end++;
		KR_ENSURE(end == colon && n == i, KR_EINPUT, "line %d: it is numbered %.*s", i,
			  (int)(colon - p), p);
		p = colon + 1;
	}
	uint8_t got[8 + 2];
	size_t n = 0, at, want;
	span(i, &at, &want);
	int half = -1;
	for (; *p && *p != '\n' && *p != '\r'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '-')
			continue;
		int v = nibble((unsigned char)*p);
		KR_ENSURE(v >= 0, KR_EINPUT, "line %d: '%c' is not a hex digit", i, *p);
		KR_ENSURE(n < sizeof got, KR_EINPUT, "line %d: too many digits", i);
		if (half < 0) {
			half = v;
		} else {
			got[n++] = (uint8_t)(half << 4 | v);
			half = -1;
		}
	}
	KR_ENSURE(half < 0 && n == want + 2, KR_EINPUT,
		  "line %d: %zu digits, the line has %zu (and 4 of checksum)", i,
		  n * 2 + (half >= 0), want * 2);
	unsigned sum = (unsigned)got[want] << 8 | got[want + 1];
	KR_ENSURE(sum == checksum(i, got, want), KR_EINPUT,
		  "line %d: its checksum does not match: a digit of this line is mistyped", i);
	uint8_t b[33];
	bytes_of(s, b);
	memcpy(b + at, got, want);
	s->index = b[0];
	memcpy(s->value, b + 1, 32);
	OPENSSL_cleanse(b, sizeof b);
	OPENSSL_cleanse(got, sizeof got);
	return kr_ok();
}

KR_MUST_USE kr_err kr_share_verifier_words(const kr_vss_verifier *v, char *out, size_t outsz)
{
	uint8_t d[32];
	KR_TRY(kr_backup_verifier_sha256(v, d));
	kr_pgp_words(d, 8, out, outsz);
	return kr_ok();
}
