#include "text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pgpwords.inc"

static void hex_with(const char *digits, const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void kr_hex(const uint8_t *p, size_t n, char *out) { hex_with("0123456789abcdef", p, n, out); }

void kr_hex_upper(const uint8_t *p, size_t n, char *out)
{
	hex_with("0123456789ABCDEF", p, n, out);
}

void kr_hex_groups(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && i % 2 == 0)
			out[o++] = ' ';
		out[o++] = digits[p[i] >> 4];
		out[o++] = digits[p[i] & 15];
	}
	out[o] = '\0';
}

void kr_pgp_words(const uint8_t *p, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *w = (i % 2 == 0) ? kr_pgp_even[p[i]] : kr_pgp_odd[p[i]];
		int k = snprintf(out + o, outsz - o, "%s%s", i ? " " : "", w);
		if (k < 0 || (size_t)k >= outsz - o) {
			out[o] = '\0'; /* whole words only */
			return;
		}
		o += (size_t)k;
	}
}

void kr_utc_now(char out[21])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kr_copy(char *dst, size_t n, const char *src)
{
	if (n == 0)
		return;
	size_t len = strnlen(src, n - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}
