/* Strictly checked OpenSSL-syntax (NCONF) configuration files.
 *
 * NCONF does the parsing; this module adds what a ceremony needs on top:
 * every section a schema, unknown or missing keys and unused sections refused,
 * and every error located as "file:line: [section] key: reason". */
#ifndef KR_CONF_H
#define KR_CONF_H

#include "err.h"

#include <openssl/conf.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kr_field_kind {
	KR_F_STRING,
	KR_F_INT,     /* decimal, >= 0 */
	KR_F_BOOL,    /* yes/no/true/false */
	KR_F_SECTION, /* names another section of the file */
} kr_field_kind;

typedef struct kr_field {
	const char *key;
	kr_field_kind kind;
	int required;
} kr_field;

typedef struct kr_conf kr_conf;

KR_MUST_USE kr_err kr_conf_load(const char *path, kr_conf **out);
void kr_conf_free(kr_conf *c);

const char *kr_conf_path(const kr_conf *c);
CONF *kr_conf_nconf(kr_conf *c);
/* SHA-256 of the file as read. */
const uint8_t *kr_conf_sha256(const kr_conf *c);

/* Refuses unknown keys, missing required keys and values of the wrong kind.
 * A KR_F_SECTION value must name a section that exists; it is marked used. */
KR_MUST_USE kr_err kr_conf_check(kr_conf *c, const char *section, const kr_field *fields, size_t n);

/* Refuses any non-empty section that no schema claimed. */
KR_MUST_USE kr_err kr_conf_check_unused(kr_conf *c);

/* NULL when absent. */
const char *kr_conf_get(kr_conf *c, const char *section, const char *key);
KR_MUST_USE kr_err kr_conf_get_long(kr_conf *c, const char *section, const char *key, long min,
				    long max, long *out);
int kr_conf_get_bool(kr_conf *c, const char *section, const char *key, int dflt);

/* An error located at section/key (key may be NULL: the section header). */
KR_MUST_USE kr_err kr_conf_err_(const kr_conf *c, kr_code code, const char *section,
				const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define kr_conf_err(c, code, ...) kr_err_code_((code), kr_conf_err_((c), (code), __VA_ARGS__))

#endif
