#include "nconf.h"
#include "cleanup.h"
#include "fs.h"
#include "hash.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KR_CONF_MAX (1 << 20)
#define KR_CONF_MAX_SECTIONS 64

struct kr_nconf {
	char *path;
	uint8_t *text;
	size_t len;
	uint8_t sha256[32];
	CONF *nconf;
	char *used[KR_CONF_MAX_SECTIONS];
	size_t nused;
};

KR_MUST_USE kr_err kr_nconf_load(const char *path, kr_nconf **out)
{
	kr_nconf *c = calloc(1, sizeof *c);
	KR_ENSURE(c, KR_EINTERNAL, "out of memory");
	c->path = strdup(path);
	kr_err e = kr_fs_read(path, KR_CONF_MAX, &c->text, &c->len);
	if (kr_failed(&e)) {
		kr_nconf_free(c);
		return e;
	}
	e = kr_sha256(c->text, c->len, c->sha256);
	if (kr_failed(&e)) {
		kr_nconf_free(c);
		return e;
	}

	c->nconf = NCONF_new(NULL);
	KR_AUTO(BIO) bio = BIO_new_mem_buf(c->text, (int)c->len);
	long eline = 0;
	if (!c->nconf || !bio || NCONF_load_bio(c->nconf, bio, &eline) <= 0) {
		kr_err le = kr_err_ossl(KR_EINPUT, "%s:%ld: syntax error", path, eline);
		kr_nconf_free(c);
		return le;
	}
	*out = c;
	return kr_ok();
}

void kr_nconf_free(kr_nconf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nused; i++)
		free(c->used[i]);
	NCONF_free(c->nconf);
	free(c->text);
	free(c->path);
	free(c);
}

const char *kr_nconf_path(const kr_nconf *c) { return c->path; }
CONF *kr_nconf_nconf(kr_nconf *c) { return c->nconf; }
const uint8_t *kr_nconf_sha256(const kr_nconf *c) { return c->sha256; }

static int has_section(kr_nconf *c, const char *section)
{
	return NCONF_get_section(c->nconf, section) != NULL;
}

const char *kr_nconf_get(kr_nconf *c, const char *section, const char *key)
{
	const char *v = NCONF_get_string(c->nconf, section, key);
	ERR_clear_error(); /* absence queues an error we do not want to report */
	return v;
}

/* Skips blanks; returns the end of an identifier-like token. */
static const char *skip_blank(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static int token_eq(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - p) >= n && memcmp(p, word, n) == 0;
}

/* Line of the nth (0-based) occurrence of key in section, or of the section
 * header when key is NULL; 0 if there is none. */
static int line_of(const kr_nconf *c, const char *section, const char *key, int nth)
{
	const char *p = (const char *)c->text, *end = p + c->len;
	int line = 1, in_section = strcmp(section, "default") == 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *q = skip_blank(p, eol);
		if (q < eol && *q == '[') {
			q = skip_blank(q + 1, eol);
			size_t n = strlen(section);
			const char *r = skip_blank(q + n, eol);
			in_section = token_eq(q, eol, section) && r < eol && *r == ']';
			if (in_section && !key)
				return line;
		} else if (in_section && key && token_eq(q, eol, key)) {
			const char *r = skip_blank(q + strlen(key), eol);
			if (r < eol && *r == '=' && nth-- == 0)
				return line;
		}
		p = eol + 1;
		line++;
	}
	return 0;
}

KR_MUST_USE kr_err kr_nconf_err_(const kr_nconf *c, kr_code code, const char *section,
				 const char *key, const char *fmt, ...)
{
	char what[KR_ERR_MSG];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	int line = line_of(c, section, key, 0);
	char where[512];
	if (line > 0)
		snprintf(where, sizeof where, "%s:%d", c->path, line);
	else
		snprintf(where, sizeof where, "%s", c->path);
	if (key)
		return kr_errf(code, "%s: [%s] %s: %s", where, section, key, what);
	return kr_errf(code, "%s: [%s]: %s", where, section, what);
}

/* Marks a section as used. */
static void use(kr_nconf *c, const char *section)
{
	for (size_t i = 0; i < c->nused; i++)
		if (strcmp(c->used[i], section) == 0)
			return;
	if (c->nused < KR_CONF_MAX_SECTIONS)
		c->used[c->nused++] = strdup(section);
}

static const kr_field *find_field(const kr_field *f, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].key, key) == 0)
			return &f[i];
	return NULL;
}

static KR_MUST_USE kr_err check_value(kr_nconf *c, const char *section, const kr_field *f,
				      const char *v)
{
	if (v[0] == '\0')
		return kr_nconf_err(c, KR_EINPUT, section, f->key, "empty value");
	switch (f->kind) {
	case KR_F_STRING:
		break;
	case KR_F_INT: {
		long ignored;
		KR_TRY(kr_nconf_get_long(c, section, f->key, 0, 0x7fffffffL, &ignored));
		break;
	}
	case KR_F_BOOL:
		if (kr_nconf_get_bool(c, section, f->key, -1) < 0)
			return kr_nconf_err(c, KR_EINPUT, section, f->key,
					    "expected yes or no, got '%s'", v);
		break;
	case KR_F_SECTION:
		if (!has_section(c, v))
			return kr_nconf_err(c, KR_EINPUT, section, f->key,
					    "names section [%s], which the file does not have", v);
		use(c, v);
		break;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_nconf_check(kr_nconf *c, const char *section, const kr_field *fields,
				  size_t n)
{
	STACK_OF(CONF_VALUE) *vals = NCONF_get_section(c->nconf, section);
	ERR_clear_error();
	KR_ENSURE(vals, KR_EINPUT, "%s: section [%s] is missing", c->path, section);
	use(c, section);

	for (int i = 0; i < sk_CONF_VALUE_num(vals); i++) {
		const CONF_VALUE *cv = sk_CONF_VALUE_value(vals, i);
		const kr_field *f = find_field(fields, n, cv->name);
		if (!f)
			return kr_nconf_err(c, KR_EINPUT, section, cv->name, "unknown key");
		/* NCONF keeps only the last of a repeated key: refuse the repeat
		 * rather than let a later line silently override an earlier one. */
		int again = line_of(c, section, cv->name, 1);
		if (again)
			return kr_nconf_err(c, KR_EINPUT, section, cv->name,
					    "key given twice (again on line %d)", again);
		KR_TRY(check_value(c, section, f, cv->value));
	}
	for (size_t i = 0; i < n; i++)
		if (fields[i].required && !kr_nconf_get(c, section, fields[i].key))
			return kr_nconf_err(c, KR_EINPUT, section, NULL,
					    "missing required key '%s'", fields[i].key);
	return kr_ok();
}

KR_MUST_USE kr_err kr_nconf_check_unused(kr_nconf *c)
{
	STACK_OF(OPENSSL_CSTRING) *names = NCONF_get_section_names(c->nconf);
	KR_OSSL(names, KR_EINTERNAL, "%s: cannot list sections", c->path);
	kr_err e = kr_ok();
	for (int i = 0; i < sk_OPENSSL_CSTRING_num(names) && !kr_failed(&e); i++) {
		const char *s = sk_OPENSSL_CSTRING_value(names, i);
		int used = 0;
		for (size_t j = 0; j < c->nused; j++)
			used |= strcmp(c->used[j], s) == 0;
		STACK_OF(CONF_VALUE) *vals = NCONF_get_section(c->nconf, s);
		if (!used && vals && sk_CONF_VALUE_num(vals) > 0)
			e = strcmp(s, "default") == 0
				    ? kr_nconf_err(c, KR_EINPUT, s,
						   sk_CONF_VALUE_value(vals, 0)->name,
						   "key outside any section")
				    : kr_nconf_err(c, KR_EINPUT, s, NULL,
						   "section is not used by this ceremony type");
	}
	sk_OPENSSL_CSTRING_free(names);
	return e;
}

KR_MUST_USE kr_err kr_nconf_get_long(kr_nconf *c, const char *section, const char *key, long min,
				     long max, long *out)
{
	const char *v = kr_nconf_get(c, section, key);
	KR_ENSURE(v, KR_EINPUT, "%s: [%s] missing key '%s'", c->path, section, key);
	char *end = NULL;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end != '\0' || !isdigit((unsigned char)v[0]))
		return kr_nconf_err(c, KR_EINPUT, section, key, "expected a whole number, got '%s'",
				    v);
	if (x < min || x > max)
		return kr_nconf_err(c, KR_EPOLICY, section, key, "%ld is outside %ld..%ld", x, min,
				    max);
	*out = x;
	return kr_ok();
}

int kr_nconf_get_bool(kr_nconf *c, const char *section, const char *key, int dflt)
{
	const char *v = kr_nconf_get(c, section, key);
	if (!v)
		return dflt;
	if (!strcmp(v, "yes") || !strcmp(v, "true"))
		return 1;
	if (!strcmp(v, "no") || !strcmp(v, "false"))
		return 0;
	return -1;
}

KR_MUST_USE kr_err kr_nconf_each_name(const char *list, kr_nconf_name_cb each, void *arg)
{
	char *copy = strdup(list), *save = NULL;
	KR_ENSURE(copy, KR_EINTERNAL, "out of memory");
	kr_err e = kr_ok();
	for (char *name = strtok_r(copy, ", \t", &save); name && !kr_failed(&e);
	     name = strtok_r(NULL, ", \t", &save))
		e = each(name, arg);
	free(copy);
	return e;
}
