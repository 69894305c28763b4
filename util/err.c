#include "err.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

/* Appends s to dst (capacity cap), truncating quietly: a long library error
 * text must never crowd out the message or overflow. */
static void append(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(dst), k = strlen(s);
	if (n + 1 >= cap)
		return;
	if (k > cap - n - 1)
		k = cap - n - 1;
	memcpy(dst + n, s, k);
	dst[n + k] = '\0';
}

__attribute__((format(printf, 3, 0))) static void vformat(kr_err *e, kr_code code, const char *fmt,
							  va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

KR_MUST_USE kr_err kr_errf_(kr_code code, const char *fmt, ...)
{
	kr_err e;
	va_list ap;
	va_start(ap, fmt);
	vformat(&e, code, fmt, ap);
	va_end(ap);
	return e;
}

KR_MUST_USE kr_err kr_err_ossl_(kr_code code, const char *fmt, ...)
{
	kr_err e;
	va_list ap;
	va_start(ap, fmt);
	vformat(&e, code, fmt, ap);
	va_end(ap);

	/* The queue's oldest entry is the root cause; newer ones add context. */
	unsigned long ec;
	const char *sep = ": ", *data = NULL;
	int flags = 0;
	while ((ec = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		char buf[256];
		ERR_error_string_n(ec, buf, sizeof buf);
		append(e.msg, sizeof e.msg, sep);
		append(e.msg, sizeof e.msg, buf);
		/* the detail a library (or keyrite's token bridge) attached */
		if ((flags & ERR_TXT_STRING) && data && *data) {
			append(e.msg, sizeof e.msg, " (");
			append(e.msg, sizeof e.msg, data);
			append(e.msg, sizeof e.msg, ")");
		}
		sep = "; ";
	}
	if (strcmp(sep, ": ") == 0)
		append(e.msg, sizeof e.msg, " (OpenSSL gave no reason)");
	return e;
}

void kr_err_prefix(kr_err *e, const char *fmt, ...)
{
	if (e->code == KR_OK)
		return;
	char prefix[KR_ERR_MSG];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);

	char old[KR_ERR_MSG];
	memcpy(old, e->msg, sizeof old);
	e->msg[0] = '\0';
	append(e->msg, sizeof e->msg, prefix);
	append(e->msg, sizeof e->msg, ": ");
	append(e->msg, sizeof e->msg, old);
}

void kr_err_also(kr_err *e, const kr_err *more)
{
	if (more->code == KR_OK)
		return;
	if (e->code == KR_OK) {
		*e = *more;
		return;
	}
	append(e->msg, sizeof e->msg, "; also ");
	append(e->msg, sizeof e->msg, more->msg);
}
