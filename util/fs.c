#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

KR_MUST_USE kr_err kr_fs_read(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	KR_ENSURE(fd >= 0, KR_EIO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kr_errf(KR_EIO, "%s: not a regular file", path);
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return kr_errf(KR_EINPUT, "%s: file too large (%lld bytes, limit %zu)", path,
			       (long long)st.st_size, max);
	}
	uint8_t *p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return kr_errf(KR_EINTERNAL, "%s: out of memory", path);
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = errno;
			free(p);
			close(fd);
			return kr_errf(KR_EIO, "%s: read failed: %s", path,
				       n == 0 ? "file shrank while reading" : strerror(saved));
		}
		got += (size_t)n;
	}
	close(fd);
	p[got] = '\0';
	*buf = p;
	*len = got;
	return kr_ok();
}

KR_MUST_USE kr_err kr_fs_must_not_exist(const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return kr_errf(KR_EEXIST, "%s: already exists; keyrite never overwrites an output",
			       path);
	KR_ENSURE(errno == ENOENT, KR_EIO, "%s: cannot check: %s", path, strerror(errno));
	return kr_ok();
}

static KR_MUST_USE kr_err write_all(int fd, const char *path, const uint8_t *p, size_t len,
				    int sync)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		KR_ENSURE(n > 0, KR_EIO, "%s: write failed: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	KR_ENSURE(!sync || fsync(fd) == 0, KR_EIO, "%s: fsync failed: %s", path, strerror(errno));
	return kr_ok();
}

static KR_MUST_USE kr_err write_new(const char *path, const void *data, size_t len, unsigned mode,
				    int sync);

KR_MUST_USE kr_err kr_fs_write_new(const char *path, const void *data, size_t len, unsigned mode)
{
	return write_new(path, data, len, mode, 1);
}

KR_MUST_USE kr_err kr_fs_write_new_nosync(const char *path, const void *data, size_t len,
					  unsigned mode)
{
	return write_new(path, data, len, mode, 0);
}

KR_MUST_USE kr_err kr_fs_clean_temps(const char *dir, int *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	KR_ENSURE(d, KR_EIO, "%s: %s", dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || !strstr(e->d_name, KR_FS_TEMP))
			continue;
		char path[4096];
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
		    unlink(path) == 0)
			(*n)++;
	}
	closedir(d);
	return kr_ok();
}

/* fn (syncfs or fsync) on the directory dir. */
static KR_MUST_USE kr_err dir_sync(const char *dir, int (*fn)(int), const char *what)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	KR_ENSURE(fd >= 0, KR_EIO, "%s: %s", dir, strerror(errno));
	int rc = fn(fd);
	int saved = errno;
	close(fd);
	KR_ENSURE(rc == 0, KR_EIO, "%s: %s failed: %s", dir, what, strerror(saved));
	return kr_ok();
}

KR_MUST_USE kr_err kr_fs_sync(const char *dir) { return dir_sync(dir, syncfs, "sync"); }

KR_MUST_USE kr_err kr_fs_same(const char *path, const void *data, size_t len, int *same)
{
	uint8_t *have = NULL;
	size_t n = 0;
	KR_TRY(kr_fs_read(path, len + 1, &have, &n));
	*same = n == len && memcmp(have, data, len) == 0;
	free(have);
	return kr_ok();
}

/* An output is an unnamed file (O_TMPFILE) in the target directory,
 * written and then given its name with linkat(2): exclusive (the link fails
 * if the name exists), atomic (no reader sees it half written), and a run
 * killed midway leaves nothing behind. It also spares ext4 the
 * create-then-unlink churn that slows its inode allocator. Where O_TMPFILE
 * is not supported, a hidden temporary name that is plainly keyrite's
 * (kr_fs_clean_temps removes those a killed run left) takes its place. */
static KR_MUST_USE kr_err open_unnamed(kr_fs_out *o, const char *path, unsigned mode, int exclusive)
{
	memset(o, 0, sizeof *o);
	o->fd = -1;
	o->mode = mode;
	KR_ENSURE(snprintf(o->path, sizeof o->path, "%s", path) < (int)sizeof o->path, KR_EIO,
		  "%s: path too long", path);
	if (exclusive)
		KR_TRY(kr_fs_must_not_exist(path));
	char dir[4096];
	kr_fs_dirname(path, dir, sizeof dir);
	o->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (o->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		KR_ENSURE(snprintf(o->tmp, sizeof o->tmp, "%.3800s/.%.200s" KR_FS_TEMP "XXXXXX",
				   dir, base) < (int)sizeof o->tmp,
			  KR_EIO, "%s: path too long", path);
		o->fd = mkostemp(o->tmp, O_CLOEXEC);
		if (o->fd < 0)
			o->tmp[0] = '\0';
	}
	KR_ENSURE(o->fd >= 0, KR_EIO, "%s: cannot create: %s", path, strerror(errno));
	return kr_ok();
}

KR_MUST_USE kr_err kr_fs_out_open(kr_fs_out *o, const char *path, unsigned mode)
{
	return open_unnamed(o, path, mode, 1);
}

KR_MUST_USE kr_err kr_fs_out_write(kr_fs_out *o, const void *data, size_t len)
{
	return write_all(o->fd, o->path, data, len, 0);
}

KR_MUST_USE kr_err kr_fs_out_pwrite(kr_fs_out *o, const void *data, size_t len, off_t at)
{
	ssize_t n = pwrite(o->fd, data, len, at);
	KR_ENSURE(n == (ssize_t)len, KR_EIO, "%s: write failed: %s", o->path,
		  n < 0 ? strerror(errno) : "short write");
	return kr_ok();
}

void kr_fs_out_abort(kr_fs_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp[0])
		unlink(o->tmp);
	o->fd = -1;
	o->tmp[0] = '\0';
}

static KR_MUST_USE kr_err link_out(kr_fs_out *o)
{
	int rc;
	if (o->tmp[0]) {
		rc = link(o->tmp, o->path);
	} else {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->fd);
		rc = linkat(AT_FDCWD, proc, AT_FDCWD, o->path, AT_SYMLINK_FOLLOW);
	}
	KR_ENSURE(rc == 0 || errno != EEXIST, KR_EEXIST,
		  "%s: already exists; keyrite never overwrites an output", o->path);
	KR_ENSURE(rc == 0, KR_EIO, "%s: cannot create: %s", o->path, strerror(errno));
	return kr_ok();
}

/* A new name lasts once its directory is synced (fsync(2)). */
static KR_MUST_USE kr_err sync_dir(const char *path)
{
	char dir[4096];
	kr_fs_dirname(path, dir, sizeof dir);
	return dir_sync(dir, fsync, "fsync");
}

KR_MUST_USE kr_err kr_fs_out_commit(kr_fs_out *o, int sync)
{
	kr_err e = kr_ok();
	if (fchmod(o->fd, o->mode) != 0)
		e = kr_errf(KR_EIO, "%s: chmod failed: %s", o->path, strerror(errno));
	if (!kr_failed(&e) && sync && fsync(o->fd) != 0)
		e = kr_errf(KR_EIO, "%s: fsync failed: %s", o->path, strerror(errno));
	if (!kr_failed(&e))
		e = link_out(o);
	kr_fs_out_abort(o);
	return !kr_failed(&e) && sync ? sync_dir(o->path) : e;
}

/* Replaces path atomically: the file gets a hidden temporary name of
 * keyrite's, then rename(2) puts it in place, and the directory is synced. */
KR_MUST_USE kr_err kr_fs_out_commit_replace(kr_fs_out *o)
{
	kr_err e = kr_ok();
	if (fchmod(o->fd, o->mode) != 0 || fsync(o->fd) != 0)
		e = kr_errf(KR_EIO, "%s: %s", o->path, strerror(errno));
	if (!kr_failed(&e) && !o->tmp[0]) {
		char dir[4096], proc[64];
		kr_fs_dirname(o->path, dir, sizeof dir);
		const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->fd);
		int rc = -1;
		for (int i = 0; i < 100 && rc != 0; i++) {
			snprintf(o->tmp, sizeof o->tmp, "%.3800s/.%.200s" KR_FS_TEMP "%d.%d", dir,
				 base, (int)getpid(), i);
			rc = linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW);
			if (rc != 0 && errno != EEXIST)
				break;
		}
		if (rc != 0) {
			o->tmp[0] = '\0';
			e = kr_errf(KR_EIO, "%s: cannot create: %s", o->path, strerror(errno));
		}
	}
	if (!kr_failed(&e) && rename(o->tmp, o->path) != 0)
		e = kr_errf(KR_EIO, "%s: cannot replace: %s", o->path, strerror(errno));
	else if (!kr_failed(&e))
		o->tmp[0] = '\0'; /* renamed: nothing to remove */
	kr_fs_out_abort(o);
	return kr_failed(&e) ? e : sync_dir(o->path);
}

KR_MUST_USE kr_err kr_fs_out_open_replace(kr_fs_out *o, const char *path, unsigned mode)
{
	return open_unnamed(o, path, mode, 0);
}

static KR_MUST_USE kr_err write_new(const char *path, const void *data, size_t len, unsigned mode,
				    int sync)
{
	kr_fs_out o;
	/* No check before: the data is at hand, and the link is exclusive. */
	KR_TRY(open_unnamed(&o, path, mode, 0));
	kr_err e = kr_fs_out_write(&o, data, len);
	if (kr_failed(&e)) {
		kr_fs_out_abort(&o);
		return e;
	}
	return kr_fs_out_commit(&o, sync);
}

KR_MUST_USE kr_err kr_fs_sha256(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	KR_ENSURE(fd >= 0, KR_EIO, "%s: cannot open: %s", path, strerror(errno));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	kr_err e = kr_ok();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		e = kr_err_ossl(KR_EINTERNAL, "%s: cannot start SHA-256", path);
	static const size_t chunk = 1 << 16;
	uint8_t *buf = malloc(chunk);
	if (!buf && !kr_failed(&e))
		e = kr_errf(KR_EINTERNAL, "out of memory");
	while (!kr_failed(&e)) {
		ssize_t n = read(fd, buf, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			e = kr_errf(KR_EIO, "%s: read failed: %s", path, strerror(errno));
		if (n <= 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
			e = kr_err_ossl(KR_EINTERNAL, "%s: SHA-256 failed", path);
	}
	if (!kr_failed(&e) && !EVP_DigestFinal_ex(ctx, out, NULL))
		e = kr_err_ossl(KR_EINTERNAL, "%s: SHA-256 failed", path);
	free(buf);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return e;
}

void kr_fs_dirname(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, outsz, ".");
		return;
	}
	size_t n = (size_t)(slash - path);
	if (n == 0)
		n = 1; /* "/x" -> "/" */
	snprintf(out, outsz, "%.*s", (int)n, path);
}

KR_MUST_USE kr_err kr_fs_join(const char *base, const char *rel, char *out, size_t outsz)
{
	int n = rel[0] == '/' ? snprintf(out, outsz, "%s", rel)
			      : snprintf(out, outsz, "%s/%s", base, rel);
	KR_ENSURE(n > 0 && (size_t)n < outsz, KR_EINPUT, "path too long: %s", rel);
	return kr_ok();
}
