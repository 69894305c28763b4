#include "transcript.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/mem.h"
#include "../util/text.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kr_transcript {
	char *path;
	FILE *echo;
	int fd; /* -1 until committed */
	char *buf;
	size_t len, cap;
	EVP_MD_CTX *sha;
	kr_err err; /* the first write failure, reported by finish */
};

KR_MUST_USE kr_err kr_transcript_new(const char *path, FILE *echo, kr_transcript **out)
{
	kr_transcript *t = calloc(1, sizeof *t);
	KR_ENSURE(t, KR_EINTERNAL, "out of memory");
	t->path = strdup(path);
	t->echo = echo;
	t->fd = -1;
	t->err = kr_ok();
	t->sha = EVP_MD_CTX_new();
	if (!t->path || !t->sha || !EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL)) {
		kr_transcript_free(t);
		return kr_err_ossl(KR_EINTERNAL, "starting the transcript");
	}
	*out = t;
	return kr_ok();
}

void kr_transcript_free(kr_transcript *t)
{
	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	EVP_MD_CTX_free(t->sha);
	free(t->buf);
	free(t->path);
	free(t);
}

static void write_through(kr_transcript *t, const char *p, size_t n)
{
	while (n > 0 && !kr_failed(&t->err)) {
		ssize_t w = write(t->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			t->err = kr_errf(KR_EIO, "%s: write failed: %s", t->path, strerror(errno));
		else {
			p += w;
			n -= (size_t)w;
		}
	}
	if (!kr_failed(&t->err) && fsync(t->fd) != 0)
		t->err = kr_errf(KR_EIO, "%s: fsync failed: %s", t->path, strerror(errno));
}

static void append(kr_transcript *t, const char *line, size_t n)
{
	if (!EVP_DigestUpdate(t->sha, line, n) && !kr_failed(&t->err))
		t->err = kr_err_ossl(KR_EINTERNAL, "%s: hashing the transcript", t->path);
	if (t->echo) {
		fwrite(line, 1, n, t->echo);
		fflush(t->echo);
	}
	if (t->fd >= 0) {
		write_through(t, line, n);
		return;
	}
	kr_err e = kr_grow((void **)&t->buf, &t->cap, t->len + n, 1);
	if (kr_failed(&e)) {
		t->err = e;
		return;
	}
	memcpy(t->buf + t->len, line, n);
	t->len += n;
}

__attribute__((format(printf, 3, 0))) static void vline(kr_transcript *t, const char *prefix,
							const char *fmt, va_list ap)
{
	char line[4096];
	int n = snprintf(line, sizeof line, "%s", prefix);
	int k = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (k < 0 ? 0 : (size_t)k);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	/* One record per line: a stray newline in a value would forge a record. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	append(t, line, len);
}

void kr_transcript_line(kr_transcript *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(t, "", fmt, ap);
	va_end(ap);
}

void kr_transcript_step(kr_transcript *t, const char *name, const char *fmt, ...)
{
	char prefix[128], now[21];
	kr_utc_now(now);
	snprintf(prefix, sizeof prefix, "step %s %s ", now, name);
	va_list ap;
	va_start(ap, fmt);
	vline(t, prefix, fmt, ap);
	va_end(ap);
}

KR_MUST_USE kr_err kr_transcript_commit(kr_transcript *t)
{
	if (t->fd >= 0)
		return t->err; /* a line since the file was made may not be on disk */
	t->fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	KR_ENSURE(t->fd >= 0, errno == EEXIST ? KR_EEXIST : KR_EIO, "%s: cannot create: %s",
		  t->path, strerror(errno));
	write_through(t, t->buf, t->len);
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
	return t->err;
}

int kr_transcript_committed(const kr_transcript *t) { return t->fd >= 0; }

KR_MUST_USE kr_err kr_transcript_finish(kr_transcript *t, uint8_t hash[32])
{
	KR_TRY(kr_transcript_commit(t));
	KR_TRY(t->err);
	KR_ENSURE(EVP_DigestFinal_ex(t->sha, hash, NULL), KR_EINTERNAL, "hashing transcript");
	char hex[65], line[96];
	kr_hex(hash, 32, hex);
	int n = snprintf(line, sizeof line, "transcript-sha256 %s\n", hex);
	if (t->echo)
		fputs(line, t->echo);
	write_through(t, line, (size_t)n);
	KR_TRY(t->err);
	KR_ENSURE(close(t->fd) == 0, KR_EIO, "%s: close failed: %s", t->path, strerror(errno));
	t->fd = -1;
	return kr_ok();
}

/* The last line is "transcript-sha256 <hex>" over every byte before it. */
static KR_MUST_USE kr_err check_self_hash(const uint8_t *text, size_t len, size_t *body)
{
	KR_ENSURE(len > 0 && text[len - 1] == '\n', KR_EVERIFY, "transcript is truncated");
	size_t start = len - 1;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	static const char key[] = "transcript-sha256 ";
	KR_ENSURE(len - start == sizeof key - 1 + 64 + 1 &&
			  memcmp(text + start, key, sizeof key - 1) == 0,
		  KR_EVERIFY, "transcript does not end with its transcript-sha256 line");
	uint8_t md[32];
	char hex[65];
	KR_TRY(kr_sha256(text, start, md));
	kr_hex(md, 32, hex);
	KR_ENSURE(memcmp(hex, text + start + sizeof key - 1, 64) == 0, KR_EVERIFY,
		  "transcript has been altered: its SHA-256 is %s", hex);
	*body = start;
	return kr_ok();
}

KR_MUST_USE kr_err kr_transcript_check(const char *path, uint8_t *text, size_t len, size_t *body)
{
	KR_ENSURE(len > strlen(KR_TRANSCRIPT_MAGIC) &&
			  !memcmp(text, KR_TRANSCRIPT_MAGIC, strlen(KR_TRANSCRIPT_MAGIC)),
		  KR_EINPUT, "%s: not a keyrite transcript", path);
	KR_TRY(check_self_hash(text, len, body));
	text[*body] = '\0';
	return kr_ok();
}

int kr_transcript_find(const char *body, const char *keyword, size_t nth, char *out, size_t outsz)
{
	size_t n = strlen(keyword);
	for (const char *line = body; *line;) {
		const char *eol = strchrnul(line, '\n');
		if ((size_t)(eol - line) > n && !strncmp(line, keyword, n) && line[n] == ' ' &&
		    nth-- == 0) {
			snprintf(out, outsz, "%.*s", (int)(eol - line - (long)n - 1), line + n + 1);
			return 1;
		}
		line = *eol ? eol + 1 : eol;
	}
	return 0;
}
