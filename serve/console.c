/* The web console's files (docs/console.md): read once at the start from
 * [serve] console, served from memory at /console/NAME. The console is
 * plain HTML, CSS and JavaScript modules that speak only the JSON API, so
 * it can do nothing the account's API calls could not. Names are taken
 * from the directory, not from requests: a request names one of them or
 * gets 404 (no path is ever opened for a client). */
#include "internal.h"
#include "../util/text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILES 64
#define MAX_FILE (1 << 20)

typedef struct file {
	char name[64];
	const char *type;
	uint8_t *body;
	size_t len;
} file;

struct kr_console {
	file files[MAX_FILES];
	int n;
};

/* The content type of a name keyrite serves; NULL: not one. */
static const char *type_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return NULL;
}

static int plain_name(const char *name)
{
	if (!name[0] || name[0] == '.' || strlen(name) >= sizeof((file *)0)->name)
		return 0;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
			return 0;
	return 1;
}

static KR_MUST_USE kr_err load(const char *dir, const char *name, file *f)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", dir, name);
	KR_ENSURE(n > 0 && (size_t)n < sizeof path, KR_EINPUT, "%s/%s: path too long", dir, name);
	FILE *in = fopen(path, "rb");
	KR_ENSURE(in, KR_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	kr_err e = fstat(fileno(in), &st) == 0 ? kr_ok()
					       : kr_errf(KR_EIO, "%s: %s", path, strerror(errno));
	if (!kr_failed(&e) && (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE))
		e = kr_errf(KR_EINPUT, "%s: not a regular file of at most %d octets", path,
			    MAX_FILE);
	f->body = kr_failed(&e) ? NULL : malloc((size_t)st.st_size + 1);
	if (!kr_failed(&e) && !f->body)
		e = kr_errf(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e)) {
		f->len = fread(f->body, 1, (size_t)st.st_size, in);
		if (f->len != (size_t)st.st_size)
			e = kr_errf(KR_EIO, "%s: a short read", path);
	}
	fclose(in);
	kr_copy(f->name, sizeof f->name, name);
	f->type = type_of(name);
	return e;
}

KR_MUST_USE kr_err kr_console_open(const char *dir, kr_console **out)
{
	*out = NULL;
	DIR *d = opendir(dir);
	KR_ENSURE(d, KR_EINPUT, "[serve] console = %s: %s", dir, strerror(errno));
	kr_console *c = calloc(1, sizeof *c);
	kr_err e = c ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	struct dirent *ent;
	while (!kr_failed(&e) && (ent = readdir(d))) {
		if (!plain_name(ent->d_name) || !type_of(ent->d_name))
			continue; /* dot files, an editor's backups: not the console */
		if (c->n == MAX_FILES)
			e = kr_errf(KR_EINPUT, "%s: more than %d files", dir, MAX_FILES);
		else
			e = load(dir, ent->d_name, &c->files[c->n++]);
	}
	closedir(d);
	int index = 0;
	for (int i = 0; c && i < c->n; i++)
		index |= !strcmp(c->files[i].name, "index.html");
	if (!kr_failed(&e) && !index)
		e = kr_errf(KR_EINPUT, "%s: no index.html", dir);
	if (kr_failed(&e)) {
		kr_console_close(c);
		return e;
	}
	*out = c;
	return kr_ok();
}

void kr_console_close(kr_console *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		free(c->files[i].body);
	free(c);
}

void kr_console_handle(const kr_console *c, struct evhttp_request *req, const char *name)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		kr_serve_error(req, 405, "the console's files are read with GET");
		return;
	}
	if (!name[0])
		name = "index.html";
	for (int i = 0; c && i < c->n; i++)
		if (!strcmp(c->files[i].name, name)) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
					  "no-cache");
			kr_serve_reply(req, 200, c->files[i].type, c->files[i].body,
				       c->files[i].len);
			return;
		}
	kr_serve_error(req, 404, "no such console file");
}
