/* keyrite's one error type.
 *
 * Every fallible function returns a kr_err by value. code is KR_OK on success;
 * otherwise it is the category that main() turns into the documented exit
 * status (docs/keyrite.1, EXIT STATUS) and msg holds one precise sentence,
 * prefixed with context (file:line, item) as the error travels up. */
#ifndef KR_ERR_H
#define KR_ERR_H

#include <stdarg.h>

typedef enum kr_code {
	KR_OK = 0,
	KR_EUSAGE = 2,     /* bad command line */
	KR_EINPUT = 3,     /* malformed input: script, file, URI, request */
	KR_EHSM = 4,       /* module, token, PIN or key problem */
	KR_EPOLICY = 5,    /* refused by policy or by the pre-issuance lint */
	KR_EEXIST = 6,     /* an output file or key label already exists */
	KR_EIO = 7,        /* reading or writing a file failed */
	KR_EVERIFY = 8,    /* a verification failed (signature, hash, chain) */
	KR_EDENIED = 11,   /* the registry refused: the account's rights or the device's state */
	KR_EAUTH = 12,     /* an auth code wrong, expired, used, or the device locked by them */
	KR_EINTERNAL = 70, /* a bug or an unexpected library failure */
} kr_code;

#define KR_ERR_MSG 768

/* Every function that returns a kr_err is declared with KR_MUST_USE: a
 * dropped error is a compile error under -Werror (as s2n-tls's
 * S2N_RESULT_MUST_USE), and a cast to void does not silence it. */
#define KR_MUST_USE __attribute__((warn_unused_result))

typedef struct kr_err {
	kr_code code;
	char msg[KR_ERR_MSG];
} kr_err;

static inline KR_MUST_USE kr_err kr_ok(void)
{
	kr_err e;
	e.code = KR_OK;
	e.msg[0] = '\0';
	return e;
}

static inline int kr_failed(const kr_err *e) { return e->code != KR_OK; }

/* An error with a formatted message. */
KR_MUST_USE kr_err kr_errf_(kr_code code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* As kr_errf, then appends ": " and the OpenSSL error queue (which it drains). */
KR_MUST_USE kr_err kr_err_ossl_(kr_code code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The constructors restate the code inline, so that a static analyser, which
 * cannot see into err.c, knows an error built here is never KR_OK. */
static inline KR_MUST_USE kr_err kr_err_code_(kr_code code, kr_err e)
{
	e.code = code;
	return e;
}
#define kr_errf(code, ...) kr_err_code_((code), kr_errf_((code), __VA_ARGS__))
#define kr_err_ossl(code, ...) kr_err_code_((code), kr_err_ossl_((code), __VA_ARGS__))

/* Prepends "<prefix>: " to e's message; does nothing on success. */
void kr_err_prefix(kr_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A second failure met while handling e (undoing what e interrupted):
 * appends "; also <more's message>" to e, so neither is lost. Does nothing
 * if more is a success. */
void kr_err_also(kr_err *e, const kr_err *more);

/* Guards. Each returns from the enclosing function on failure. */
#define KR_TRY(expr)                                                                               \
	do {                                                                                       \
		kr_err kr_try_e_ = (expr);                                                         \
		if (kr_try_e_.code != KR_OK)                                                       \
			return kr_try_e_;                                                          \
	} while (0)

#define KR_ENSURE(cond, code, ...)                                                                 \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return kr_errf((code), __VA_ARGS__);                                       \
	} while (0)

#define KR_OSSL(cond, code, ...)                                                                   \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return kr_err_ossl((code), __VA_ARGS__);                                   \
	} while (0)

#endif
