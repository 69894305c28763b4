/* kr_nconf: a strictly checked OpenSSL-syntax (NCONF) file. The files
 * built on it say what they are: a ceremony script (ceremony/), the CA
 * configuration kr_config (policy/config.h), the policy (policy/policy.h).
 *
 * NCONF does the parsing; this module adds what a ceremony needs on top:
 * every section a schema, unknown or missing keys and unused sections refused,
 * and every error located as "file:line: [section] key: reason". */
#ifndef KR_UTIL_NCONF_H
#define KR_UTIL_NCONF_H

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

typedef struct kr_nconf kr_nconf;

KR_MUST_USE kr_err kr_nconf_load(const char *path, kr_nconf **out);
void kr_nconf_free(kr_nconf *c);

const char *kr_nconf_path(const kr_nconf *c);
CONF *kr_nconf_nconf(kr_nconf *c);
/* SHA-256 of the file as read. */
const uint8_t *kr_nconf_sha256(const kr_nconf *c);

/* Refuses unknown keys, missing required keys and values of the wrong kind.
 * A KR_F_SECTION value must name a section that exists; it is marked used. */
KR_MUST_USE kr_err kr_nconf_check(kr_nconf *c, const char *section, const kr_field *fields,
				  size_t n);

/* Refuses any non-empty section that no schema claimed. */
KR_MUST_USE kr_err kr_nconf_check_unused(kr_nconf *c);

/* NULL when absent. */
const char *kr_nconf_get(kr_nconf *c, const char *section, const char *key);
KR_MUST_USE kr_err kr_nconf_get_long(kr_nconf *c, const char *section, const char *key, long min,
				     long max, long *out);
int kr_nconf_get_bool(kr_nconf *c, const char *section, const char *key, int dflt);

/* Calls each(name, arg) for every name of a list of section names
 * (separated by commas and blanks: "root_key, devices_key"), in order,
 * until one fails. */
typedef kr_err (*kr_nconf_name_cb)(const char *name, void *arg);
KR_MUST_USE kr_err kr_nconf_each_name(const char *list, kr_nconf_name_cb each, void *arg);

/* An error located at section/key (key may be NULL: the section header). */
KR_MUST_USE kr_err kr_nconf_err_(const kr_nconf *c, kr_code code, const char *section,
				 const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define kr_nconf_err(c, code, ...) kr_err_code_((code), kr_nconf_err_((c), (code), __VA_ARGS__))

#endif
