/* The devices a registry command names: ids on the command line, files of
 * one id per line, or CSV files whose header names the columns (the
 * seeds' import form "Device ID,Model,Version"; "device,code" for the
 * codes an owner hands over). */
#include "internal.h"
#include "../util/csv.h"
#include "../util/text.h"

#include <ctype.h>
#include <openssl/x509.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum col { C_DEVICE, C_MODEL, C_VERSION, C_MNO, C_OWNER, C_CODE, C_NCOLS };
#define MAX_FIELDS 16

struct kr_items {
	const kr_reg_row *in; /* rows in memory, instead of args */
	char *const *args;
	int n, next;
	FILE *f;
	const char *path;
	long lineno, rows;
	int cols[MAX_FIELDS]; /* field index -> enum col, or -1 */
	int nfields;          /* 0: no header (one id per line) */
	char *line;
	size_t cap;
};

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* A file is named with a '/' or a '.'; anything else is a device id. */
static int is_file(const char *arg) { return strchr(arg, '/') || strchr(arg, '.'); }

KR_MUST_USE kr_err kr_reg_device_id_check(const char *id)
{
	size_t n = strlen(id);
	KR_ENSURE(all_digits(id) && ((n >= 15 && n <= 20) || n == 32), KR_EINPUT,
		  "'%.40s' is not an eID (32 digits) or an ICCID-length device id (15 to 20 "
		  "digits)",
		  id);
	if (n == 32) {
		unsigned rem = 0;
		for (const char *p = id; *p; p++)
			rem = (rem * 10 + (unsigned)(*p - '0')) % 97;
		KR_ENSURE(rem == 1, KR_EINPUT, "%s: not an eID: its check digits do not hold", id);
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_items_open(char *const *args, int n, kr_items **out)
{
	for (int i = 0; i < n; i++) {
		if (!is_file(args[i]))
			continue;
		FILE *f = fopen(args[i], "r");
		KR_ENSURE(f, KR_EIO, "%s: %s", args[i], strerror(errno));
		fclose(f);
	}
	kr_items *it = calloc(1, sizeof *it);
	KR_ENSURE(it, KR_EINTERNAL, "out of memory");
	it->args = args;
	it->n = n;
	*out = it;
	return kr_ok();
}

KR_MUST_USE kr_err kr_items_open_rows(const kr_reg_row *rows, int n, kr_items **out)
{
	kr_items *it = calloc(1, sizeof *it);
	KR_ENSURE(it, KR_EINTERNAL, "out of memory");
	it->in = rows;
	it->n = n;
	*out = it;
	return kr_ok();
}

void kr_items_close(kr_items *it)
{
	if (!it)
		return;
	if (it->f)
		fclose(it->f);
	free(it->line);
	free(it);
}

static int column_named(const char *name)
{
	static const struct {
		const char *name;
		enum col c;
	} names[] = {
		{"deviceid", C_DEVICE}, {"device", C_DEVICE}, {"eid", C_DEVICE},
		{"euiccid", C_DEVICE},  {"id", C_DEVICE},     {"model", C_MODEL},
		{"version", C_VERSION}, {"mno", C_MNO},       {"owner", C_OWNER},
		{"code", C_CODE},       {"authcode", C_CODE}, {"authorizationcode", C_CODE},
	};
	char key[64];
	size_t k = 0;
	for (const char *p = name; *p && k + 1 < sizeof key; p++)
		if (isalnum((unsigned char)*p))
			key[k++] = (char)tolower((unsigned char)*p);
	key[k] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(key, names[i].name))
			return (int)names[i].c;
	return -1;
}

/* The header line: every column named, a device column among them. */
static KR_MUST_USE kr_err header(kr_items *it, char **f, int nf)
{
	int device = 0;
	for (int i = 0; i < nf; i++) {
		it->cols[i] = column_named(kr_trim(f[i]));
		KR_ENSURE(it->cols[i] >= 0, KR_EINPUT,
			  "%s:%ld: unknown column '%.60s' (Device ID, Model, Version, MNO, Owner, "
			  "Code)",
			  it->path, it->lineno, kr_trim(f[i]));
		device |= it->cols[i] == C_DEVICE;
	}
	KR_ENSURE(device, KR_EINPUT, "%s:%ld: no Device ID column", it->path, it->lineno);
	it->nfields = nf;
	return kr_ok();
}

static void field(kr_reg_item *item, int col, const char *v)
{
	static const struct {
		size_t off, size;
		const char *name;
	} at[C_NCOLS] = {
		[C_DEVICE] = {offsetof(kr_reg_item, device), sizeof item->device, "Device ID"},
		[C_MODEL] = {offsetof(kr_reg_item, model), sizeof item->model, "Model"},
		[C_VERSION] = {offsetof(kr_reg_item, version), sizeof item->version, "Version"},
		[C_MNO] = {offsetof(kr_reg_item, mno), sizeof item->mno, "MNO"},
		[C_OWNER] = {offsetof(kr_reg_item, owner), sizeof item->owner, "Owner"},
		[C_CODE] = {offsetof(kr_reg_item, code), sizeof item->code, "Code"},
	};
	char *dst = (char *)item + at[col].off;
	if (strlen(v) >= at[col].size && !item->error[0])
		snprintf(item->error, sizeof item->error, "%s is longer than %zu characters",
			 at[col].name, at[col].size - 1);
	kr_copy(dst, at[col].size, v);
}

/* 1: a row into item; 0: the file's end. */
static KR_MUST_USE kr_err file_row(kr_items *it, kr_reg_item *item, int *got)
{
	*got = 0;
	for (;;) {
		errno = 0;
		if (getline(&it->line, &it->cap, it->f) < 0) {
			KR_ENSURE(!errno, KR_EIO, "%s: %s", it->path, strerror(errno));
			return kr_ok();
		}
		it->lineno++;
		char *line = kr_trim(it->line);
		if (!line[0] || line[0] == '#')
			continue;
		char *f[MAX_FIELDS];
		int nf = kr_csv_split(line, f, MAX_FIELDS);
		/* the first row is a header when it does not start with an id */
		if (it->rows++ == 0 && nf > 0 && !all_digits(kr_trim(f[0]))) {
			KR_TRY(header(it, f, nf));
			continue;
		}
		snprintf(item->where, sizeof item->where, "%s:%ld", it->path, it->lineno);
		if (nf < 0)
			snprintf(item->error, sizeof item->error, "malformed CSV: %s",
				 nf == -1 ? "too many columns" : "bad quoting");
		else if (it->nfields == 0 && nf != 1)
			snprintf(item->error, sizeof item->error,
				 "%d columns but no header line naming them", nf);
		else if (it->nfields && nf != it->nfields)
			snprintf(item->error, sizeof item->error, "%d columns, the header names %d",
				 nf, it->nfields);
		else
			for (int i = 0; i < nf; i++)
				field(item, it->nfields ? it->cols[i] : C_DEVICE, kr_trim(f[i]));
		*got = 1;
		return kr_ok();
	}
}

static void item_clear(kr_reg_item *item)
{
	item->where[0] = item->device[0] = item->model[0] = item->version[0] = '\0';
	item->mno[0] = item->owner[0] = item->code[0] = item->error[0] = '\0';
}

/* A row in memory, each field checked as a file's would be. */
static void memory_row(kr_items *it, kr_reg_item *item)
{
	const kr_reg_row *r = &it->in[it->next];
	const char *v[C_NCOLS] = {r->device, r->model, r->version, r->mno, r->owner, r->code};
	for (int c = 0; c < C_NCOLS; c++)
		if (v[c])
			field(item, c, v[c]);
	if (item->device[0])
		snprintf(item->where, sizeof item->where, "%s", item->device);
	else
		snprintf(item->where, sizeof item->where, "item %d", it->next + 1);
	it->next++;
}

KR_MUST_USE kr_err kr_items_next(kr_items *it, kr_reg_item *item, int *more)
{
	item_clear(item);
	if (it->in) {
		*more = it->next < it->n;
		if (*more)
			memory_row(it, item);
		return kr_ok();
	}
	for (;;) {
		if (it->f) {
			int got = 0;
			KR_TRY(file_row(it, item, &got));
			if (got) {
				*more = 1;
				return kr_ok();
			}
			fclose(it->f);
			it->f = NULL;
		}
		if (it->next == it->n) {
			*more = 0;
			return kr_ok();
		}
		const char *arg = it->args[it->next++];
		if (!is_file(arg)) {
			snprintf(item->where, sizeof item->where, "%s", arg);
			field(item, C_DEVICE, arg);
			*more = 1;
			return kr_ok();
		}
		it->f = fopen(arg, "r");
		KR_ENSURE(it->f, KR_EIO, "%s: %s", arg, strerror(errno));
		it->path = arg;
		it->lineno = it->rows = 0;
		it->nfields = 0;
	}
}

KR_MUST_USE kr_err kr_items_of(const kr_reg_args *a, char *const *items, int n, kr_items **out)
{
	KR_ENSURE(!a->rows || n == 0, KR_EUSAGE, "devices in memory or named, not both");
	return a->rows ? kr_items_open_rows(a->rows, a->nrows, out) : kr_items_open(items, n, out);
}

/* An online request names its device in its subject: the serialNumber
 * attribute (X.520), else the common name, as the MNO's CSRs do. */
KR_MUST_USE kr_err kr_registry_device_of(const X509_NAME *subject, char *out, size_t outsz)
{
	int nids[] = {NID_serialNumber, NID_commonName};
	for (size_t i = 0; i < 2; i++) {
		int at = X509_NAME_get_index_by_NID(subject, nids[i], -1);
		if (at < 0)
			continue;
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8, v);
		int ok = n > 0 && (size_t)n < outsz && memchr(utf8, 0, (size_t)n) == NULL;
		if (ok) {
			memcpy(out, utf8, (size_t)n);
			out[n] = '\0';
		}
		OPENSSL_free(utf8);
		KR_ENSURE(ok, KR_EINPUT, "the subject's device id is empty or too long");
		return kr_ok();
	}
	return kr_errf(KR_EINPUT, "the subject names no device (serialNumber or commonName)");
}
