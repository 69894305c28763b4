#include "requests.h"
#include "../util/base64.h"
#include "csr.h"
#include "../util/csv.h"
#include "../util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum source { SRC_NONE, SRC_DIR, SRC_MANIFEST, SRC_STDIN };

struct kr_reader {
	char *const *paths;
	int npaths, next_path;
	enum source src;
	/* directory */
	struct dirent **entries;
	int nentries, next_entry;
	char dir[PATH_MAX];
	/* manifest and stdin */
	FILE *f;
	BIO *bio;
	char *line;
	size_t line_cap;
	long lineno, count;
	char manifest[PATH_MAX], manifest_dir[PATH_MAX];
	/* the caller's source */
	kr_source_fn fn;
	void *fn_arg;
};

void kr_input_clear(kr_input *in)
{
	free(in->der);
	memset(in, 0, sizeof *in);
}

static int is_csv(const char *path)
{
	size_t n = strlen(path);
	return n > 4 && strcasecmp(path + n - 4, ".csv") == 0;
}

KR_MUST_USE kr_err kr_reader_open(char *const *paths, int n, kr_reader **out)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (strcmp(paths[i], "-") == 0)
			continue;
		KR_ENSURE(stat(paths[i], &st) == 0, KR_EIO, "%s: %s", paths[i], strerror(errno));
		KR_ENSURE(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode), KR_EINPUT,
			  "%s: not a file or directory", paths[i]);
	}
	kr_reader *r = calloc(1, sizeof *r);
	KR_ENSURE(r, KR_EINTERNAL, "out of memory");
	r->paths = paths;
	r->npaths = n;
	*out = r;
	return kr_ok();
}

static void end_source(kr_reader *r)
{
	for (int i = 0; i < r->nentries; i++)
		free(r->entries[i]);
	free(r->entries);
	r->entries = NULL;
	r->nentries = r->next_entry = 0;
	if (r->f)
		fclose(r->f);
	r->f = NULL;
	BIO_free(r->bio);
	r->bio = NULL;
	r->src = SRC_NONE;
}

void kr_reader_close(kr_reader *r)
{
	if (!r)
		return;
	end_source(r);
	free(r->line);
	free(r);
}

/* A CSR file: PEM (one block) or DER. */
static void read_csr_file(const char *path, kr_input *in)
{
	snprintf(in->where, sizeof in->where, "%s", path);
	uint8_t *data = NULL;
	size_t len = 0;
	kr_err e = kr_fs_read(path, (size_t)KR_CSR_MAX_SIZE, &data, &len);
	if (kr_failed(&e)) {
		snprintf(in->error, sizeof in->error, "%s",
			 strstr(e.msg, "too large") ? "file too large for a CSR" : e.msg);
		return;
	}
	if (len == 0) {
		snprintf(in->error, sizeof in->error, "empty file");
		free(data);
		return;
	}
	if (len >= 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		uint8_t *der = NULL;
		size_t der_len = 0;
		e = kr_csr_pem_to_der((const char *)data, len, &der, &der_len);
		free(data);
		if (kr_failed(&e)) {
			snprintf(in->error, sizeof in->error, "%s", e.msg);
			return;
		}
		in->der = malloc(der_len ? der_len : 1);
		if (in->der)
			memcpy(in->der, der, der_len);
		in->der_len = der_len;
		OPENSSL_free(der);
		return;
	}
	in->der = data;
	in->der_len = len;
}

static int csr_entry(const struct dirent *d) { return d->d_name[0] != '.'; }

static KR_MUST_USE kr_err start(kr_reader *r, const char *path, int *file_done, kr_input *in)
{
	*file_done = 0;
	if (strcmp(path, "-") == 0) {
		r->bio = BIO_new_fp(stdin, BIO_NOCLOSE);
		KR_ENSURE(r->bio, KR_EINTERNAL, "out of memory");
		r->src = SRC_STDIN;
		r->count = 0;
		return kr_ok();
	}
	struct stat st;
	KR_ENSURE(stat(path, &st) == 0, KR_EIO, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		/* Sorted, so a re-run meets the requests in the same order. */
		r->nentries = scandir(path, &r->entries, csr_entry, alphasort);
		KR_ENSURE(r->nentries >= 0, KR_EIO, "%s: %s", path, strerror(errno));
		snprintf(r->dir, sizeof r->dir, "%s", path);
		r->src = SRC_DIR;
		return kr_ok();
	}
	if (is_csv(path)) {
		r->f = fopen(path, "r");
		KR_ENSURE(r->f, KR_EIO, "%s: %s", path, strerror(errno));
		snprintf(r->manifest, sizeof r->manifest, "%s", path);
		kr_fs_dirname(path, r->manifest_dir, sizeof r->manifest_dir);
		r->lineno = 0;
		r->src = SRC_MANIFEST;
		return kr_ok();
	}
	read_csr_file(path, in);
	*file_done = 1;
	return kr_ok();
}

/* ---- manifests: RFC 4180 CSV, one record per line ------------------------------ */

static void copy_field(char *dst, size_t n, const char *v, kr_input *in, const char *name)
{
	if (strlen(v) >= n && !in->error[0])
		snprintf(in->error, sizeof in->error, "%s is longer than %zu characters", name,
			 n - 1);
	snprintf(dst, n, "%.*s", (int)(n - 1), v);
}

/* The csr column: base64 DER on one line, or a file beside the manifest. */
static void manifest_csr(kr_reader *r, const char *v, kr_input *in)
{
	size_t n = strlen(v);
	if (n == 0) {
		snprintf(in->error, sizeof in->error, "csr column is empty");
		return;
	}
	const char *dot = strrchr(v, '.');
	if (dot && (!strcmp(dot, ".pem") || !strcmp(dot, ".der") || !strcmp(dot, ".csr"))) {
		/* A manifest names files beside it, never elsewhere. */
		if (strchr(v, '/')) {
			snprintf(in->error, sizeof in->error,
				 "csr column '%.200s': a file beside the manifest is named without "
				 "'/'",
				 v);
			return;
		}
		char path[PATH_MAX];
		kr_err e = kr_fs_join(r->manifest_dir, v, path, sizeof path);
		char where[sizeof in->where];
		memcpy(where, in->where, sizeof where);
		if (!kr_failed(&e))
			read_csr_file(path, in);
		memcpy(in->where, where, sizeof where);
		return;
	}
	if (n > (size_t)KR_CSR_MAX_SIZE * 4 / 3 + 4) {
		snprintf(in->error, sizeof in->error, "csr column too large for a CSR");
		return;
	}
	kr_err e = kr_base64_decode(v, n, &in->der, &in->der_len);
	if (kr_failed(&e))
		snprintf(in->error, sizeof in->error, "csr column is not base64 DER");
}

static int manifest_next(kr_reader *r, kr_input *in, kr_err *err)
{
	for (;;) {
		errno = 0;
		ssize_t got = getline(&r->line, &r->line_cap, r->f);
		if (got < 0) {
			if (errno)
				*err = kr_errf(KR_EIO, "%s: %s", r->manifest, strerror(errno));
			return 0;
		}
		r->lineno++;
		char *line = kr_trim(r->line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char *f[5];
		int nf = kr_csv_split(line, f, 5);
		if (nf == 4 && !strcasecmp(kr_trim(f[0]), "device_id") &&
		    !strcasecmp(kr_trim(f[3]), "csr"))
			continue; /* the header line */
		snprintf(in->where, sizeof in->where, "%s:%ld", r->manifest, r->lineno);
		in->from_manifest = 1;
		if (nf != 4) {
			snprintf(in->error, sizeof in->error,
				 nf < -1 ? "malformed quoting"
					 : "expected 4 columns: device_id,model,version,csr");
			return 1;
		}
		copy_field(in->device_id, sizeof in->device_id, kr_trim(f[0]), in, "device_id");
		copy_field(in->model, sizeof in->model, kr_trim(f[1]), in, "model");
		copy_field(in->version, sizeof in->version, kr_trim(f[2]), in, "version");
		if (!in->error[0])
			manifest_csr(r, kr_trim(f[3]), in);
		return 1;
	}
}

/* 1: *in holds the next request (or a damaged block's error); 0: the end.
 * A damaged block's lines are consumed, so the stream goes on after it; a
 * read error of standard input itself ends the batch. */
static int stdin_next(kr_reader *r, kr_input *in, kr_err *err)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	if (PEM_read_bio(r->bio, &name, &header, &data, &len) <= 0) {
		unsigned long e = ERR_peek_last_error();
		ERR_clear_error();
		if (ferror(stdin)) {
			*err = kr_errf(KR_EIO,
				       "-: reading standard input failed after %ld "
				       "request(s)",
				       r->count);
			return 0;
		}
		if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
			return 0;
		snprintf(in->where, sizeof in->where, "-:%ld", ++r->count);
		snprintf(in->error, sizeof in->error, "malformed PEM");
		return 1;
	}
	snprintf(in->where, sizeof in->where, "-:%ld", ++r->count);
	if (strcmp(name, "CERTIFICATE REQUEST") != 0 &&
	    strcmp(name, "NEW CERTIFICATE REQUEST") != 0)
		snprintf(in->error, sizeof in->error,
			 "PEM block is '%.60s', not a CERTIFICATE "
			 "REQUEST",
			 name);
	else if ((in->der = malloc((size_t)len + 1)) != NULL) {
		memcpy(in->der, data, (size_t)len);
		in->der_len = (size_t)len;
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	return 1;
}

KR_MUST_USE kr_err kr_reader_open_source(kr_source_fn fn, void *arg, kr_reader **out)
{
	kr_reader *r = calloc(1, sizeof *r);
	KR_ENSURE(r, KR_EINTERNAL, "out of memory");
	r->fn = fn;
	r->fn_arg = arg;
	*out = r;
	return kr_ok();
}

KR_MUST_USE kr_err kr_reader_next(kr_reader *r, kr_input *in, int *more)
{
	kr_input_clear(in);
	if (r->fn)
		return r->fn(r->fn_arg, in, more);
	for (;;) {
		kr_err e = kr_ok();
		switch (r->src) {
		case SRC_DIR:
			if (r->next_entry < r->nentries) {
				char path[PATH_MAX];
				e = kr_fs_join(r->dir, r->entries[r->next_entry++]->d_name, path,
					       sizeof path);
				if (!kr_failed(&e))
					read_csr_file(path, in);
				*more = 1;
				return e;
			}
			break;
		case SRC_MANIFEST:
			if (manifest_next(r, in, &e) || kr_failed(&e)) {
				*more = !kr_failed(&e);
				return e;
			}
			break;
		case SRC_STDIN:
			if (stdin_next(r, in, &e) || kr_failed(&e)) {
				*more = !kr_failed(&e);
				return e;
			}
			break;
		case SRC_NONE:
			if (r->next_path == r->npaths) {
				*more = 0;
				return kr_ok();
			}
			int done = 0;
			KR_TRY(start(r, r->paths[r->next_path++], &done, in));
			if (done) {
				*more = 1;
				return kr_ok();
			}
			continue;
		}
		end_source(r);
	}
}
