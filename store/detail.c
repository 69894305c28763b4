#include "detail.h"
#include "../util/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum kind { NUM, SERIAL, DIGEST, STR } kind;

/* The keys are the ones keyrite has always written, so that the entries of
 * an older store read back the same. */
static const struct {
	const char *key;
	kind kind;
} fields[KR_D_NFIELDS] = {
	[KR_D_CA] = {"ca", NUM},
	[KR_D_SERIAL] = {"serial", SERIAL},
	[KR_D_PROFILE] = {"profile", STR},
	[KR_D_CSR] = {"csr-sha256", DIGEST},
	[KR_D_TBS] = {"tbs-sha256", DIGEST},
	[KR_D_REASON] = {"reason", NUM},
	[KR_D_AT] = {"at", NUM},
	[KR_D_BATCH] = {"batch", NUM},
	[KR_D_CRL_NUMBER] = {"crl-number", NUM},
	[KR_D_THIS_UPDATE] = {"this-update", NUM},
	[KR_D_NEXT_UPDATE] = {"next-update", NUM},
	[KR_D_REVOKED] = {"revoked", NUM},
	[KR_D_DEVICE] = {"device", STR},
	[KR_D_VERSION] = {"version", STR},
	[KR_D_SIGNER] = {"signer", STR},
	[KR_D_SIGNER_SHA] = {"signer_sha256", DIGEST},
	[KR_D_FORMAT] = {"format", STR},
	[KR_D_SIZE] = {"size", NUM},
	[KR_D_SHA256] = {"sha256", DIGEST},
	[KR_D_FILE] = {"file", STR},
	[KR_D_TO] = {"to", STR},
	[KR_D_PACKAGE] = {"package", STR},
	[KR_D_PACKAGE_VER] = {"package-version", NUM},
	[KR_D_OP] = {"op", STR},
	[KR_D_ACCOUNT] = {"as", STR},
	[KR_D_ASP] = {"asp", STR},
	[KR_D_STATE] = {"state", STR},
	[KR_D_PROFILE_ID] = {"profile-id", NUM},
	[KR_D_NOTE] = {"note", STR},
};

void kr_detail_init(kr_detail *d) { d->has = 0; }

int kr_detail_has(const kr_detail *d, kr_detail_field f) { return (int)((d->has >> f) & 1u); }

void kr_detail_num(kr_detail *d, kr_detail_field f, int64_t v)
{
	d->num[f] = v;
	d->has |= 1u << f;
}

void kr_detail_bytes(kr_detail *d, kr_detail_field f, const uint8_t *p, size_t n)
{
	n = n < sizeof d->bytes[f] ? n : sizeof d->bytes[f];
	memcpy(d->bytes[f], p, n);
	d->num[f] = (int64_t)n;
	d->has |= 1u << f;
}

void kr_detail_str(kr_detail *d, kr_detail_field f, const char *s)
{
	kr_copy(d->str[f], sizeof d->str[f], s);
	d->has |= 1u << f;
}

const uint8_t *kr_detail_serial(const kr_detail *d, size_t *len)
{
	*len = (size_t)d->num[KR_D_SERIAL];
	return d->bytes[KR_D_SERIAL];
}

/* ---- the text --------------------------------------------------------------- */

static int plain(unsigned char c) { return c > 0x20 && c < 0x7f && c != '%'; }

static size_t encode(const char *s, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < outsz; p++) {
		if (plain(*p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return o;
}

static void value(const kr_detail *d, kr_detail_field f, char *out, size_t outsz)
{
	switch (fields[f].kind) {
	case NUM:
		snprintf(out, outsz, "%lld", (long long)d->num[f]);
		break;
	case SERIAL:
		kr_hex_upper(d->bytes[f], (size_t)d->num[f], out);
		break;
	case DIGEST:
		kr_hex(d->bytes[f], 32, out);
		break;
	case STR:
		encode(d->str[f], out, outsz);
		break;
	}
}

KR_MUST_USE kr_err kr_detail_format(const kr_detail *d, char *out, size_t outsz)
{
	size_t o = 0;
	out[0] = '\0';
	for (int f = 0; f < KR_D_NFIELDS; f++) {
		if (!kr_detail_has(d, (kr_detail_field)f))
			continue;
		char v[3 * sizeof d->str[0] + 1];
		value(d, (kr_detail_field)f, v, sizeof v);
		int n = snprintf(out + o, outsz - o, "%s%s=%s", o ? " " : "", fields[f].key, v);
		KR_ENSURE(n > 0 && (size_t)n < outsz - o, KR_EINTERNAL,
			  "an audit entry's detail is longer than %zu octets", outsz);
		o += (size_t)n;
	}
	return kr_ok();
}

static int field_of(const char *key, size_t n)
{
	for (int f = 0; f < KR_D_NFIELDS; f++)
		if (strlen(fields[f].key) == n && memcmp(fields[f].key, key, n) == 0)
			return f;
	return -1;
}

static int hexval(char c)
{
	return isdigit((unsigned char)c)    ? c - '0'
	       : isxdigit((unsigned char)c) ? (c | 0x20) - 'a' + 10
					    : -1;
}

/* Hex digits (an even number of them, at most max octets) into out. */
static int unhex(const char *v, size_t n, uint8_t *out, size_t max, size_t *len)
{
	if (n == 0 || n % 2 || n / 2 > max)
		return 0;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(v[i]), lo = hexval(v[i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 1;
}

static int decode(const char *v, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o + 1 >= outsz)
			return 0;
		if (v[i] == '%') {
			int hi = i + 2 < n ? hexval(v[i + 1]) : -1,
			    lo = hi < 0 ? -1 : hexval(v[i + 2]);
			if (lo < 0)
				return 0;
			out[o++] = (char)((unsigned)hi << 4 | (unsigned)lo);
			i += 2;
		} else {
			out[o++] = v[i];
		}
	}
	out[o] = '\0';
	return 1;
}

static int take(kr_detail *d, kr_detail_field f, const char *v, size_t n)
{
	size_t len = 0;
	switch (fields[f].kind) {
	case NUM: {
		char buf[24], *end = NULL;
		if (n == 0 || n >= sizeof buf)
			return 0;
		memcpy(buf, v, n);
		buf[n] = '\0';
		errno = 0;
		long long x = strtoll(buf, &end, 10);
		if (errno || *end)
			return 0;
		kr_detail_num(d, f, x);
		return 1;
	}
	case SERIAL:
	case DIGEST:
		if (!unhex(v, n, d->bytes[f], fields[f].kind == SERIAL ? 20 : 32, &len) ||
		    (fields[f].kind == DIGEST && len != 32))
			return 0;
		d->num[f] = (int64_t)len;
		d->has |= 1u << f;
		return 1;
	case STR:
		if (!decode(v, n, d->str[f], sizeof d->str[f]))
			return 0;
		d->has |= 1u << f;
		return 1;
	}
	return 0;
}

void kr_detail_parse(const char *text, kr_detail *d)
{
	kr_detail_init(d);
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, " ");
		const char *eq = memchr(p, '=', n);
		int f = eq ? field_of(p, (size_t)(eq - p)) : -1;
		if (f < 0 || !take(d, (kr_detail_field)f, eq + 1, n - (size_t)(eq + 1 - p)))
			return; /* an older entry's closing remark, or a damaged field */
		p += n;
		p += *p == ' ';
	}
}
