/* crashat.so: fault injection for the crash tests (not part of keyrite).
 *
 * Preloaded (LD_PRELOAD) with KR_CRASH_AT=FUNC:N, it kills the process with
 * SIGKILL just before its Nth call to FUNC, one of the calls that order a
 * batch's durable effects: pwrite64 (SQLite writing a transaction),
 * fdatasync (SQLite making a commit durable), fsync (a ceremony transcript
 * line or a single output made durable), syncfs (keyrite syncing an output
 * directory), linkat (keyrite naming an output) or send (libpq sending
 * statements to PostgreSQL: each statement, and each COMMIT, is one
 * send). A test can so stop
 * a batch at an exact point, every time, instead of at a random instant.
 * With KR_FULL_AT=FUNC:N instead, the Nth call and every later one fail with
 * ENOSPC, as on a disk that has just filled up. KR_CUT_AT=send:N cuts the
 * connection at the Nth send instead: the socket is shut down both ways
 * and the call fails with ECONNRESET, as when a network or the database
 * drops a connection (the server sees its client gone; the process lives
 * on to say so).
 * KR_TOKEN_EIO_AT=N makes SoftHSM's storage fail as a dying disk would: the
 * Nth open of a key object file (*.object but token.object) and every later one fail with
 * EIO, and so does every remove of one from then on (the real module, its
 * real error paths; nothing of PKCS#11 is imitated).
 * The calls are counted over all threads. KR_CRASH_COUNT=FILE appends each
 * FUNC's total at exit, for choosing the points. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PWRITE64, FDATASYNC, FSYNC, SYNCFS, LINKAT, SEND, OBJECT_OPEN, NFUNCS };
static const char *const names[NFUNCS] = {"pwrite64", "fdatasync", "fsync",      "syncfs",
					  "linkat",   "send",      "object-open"};
static long counts[NFUNCS];

/* The N of "FUNC:N" in the environment variable var when FUNC is f's name,
 * else 0. */
static long chosen(const char *var, int f)
{
	const char *at = getenv(var);
	size_t len = strlen(names[f]);
	return at && strncmp(at, names[f], len) == 0 && at[len] == ':' ? atol(at + len + 1) : 0;
}

/* Counts a call to f: 0 to make it; at the chosen one, the process dies
 * before making it; from the chosen one on, -1 to fail it with ENOSPC. */
static int point(int f)
{
	long n = __atomic_add_fetch(&counts[f], 1, __ATOMIC_SEQ_CST);
	if (chosen("KR_CRASH_AT", f) == n)
		raise(SIGKILL);
	long full = chosen("KR_FULL_AT", f);
	if (full > 0 && n >= full) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

static void *next(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);
	if (!fn)
		abort();
	return fn;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (point(PWRITE64) < 0)
		return -1;
	ssize_t (*real)(int, const void *, size_t, off_t) = next("pwrite64");
	return real(fd, buf, n, off);
}

int fdatasync(int fd)
{
	if (point(FDATASYNC) < 0)
		return -1;
	int (*real)(int) = next("fdatasync");
	return real(fd);
}

int fsync(int fd)
{
	if (point(FSYNC) < 0)
		return -1;
	int (*real)(int) = next("fsync");
	return real(fd);
}

int syncfs(int fd)
{
	if (point(SYNCFS) < 0)
		return -1;
	int (*real)(int) = next("syncfs");
	return real(fd);
}

int linkat(int olddir, const char *old, int newdir, const char *new, int flags)
{
	if (point(LINKAT) < 0)
		return -1;
	int (*real)(int, const char *, int, const char *, int) = next("linkat");
	return real(olddir, old, newdir, new, flags);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	if (point(SEND) < 0)
		return -1;
	if (chosen("KR_CUT_AT", SEND) == __atomic_load_n(&counts[SEND], __ATOMIC_SEQ_CST)) {
		shutdown(fd, SHUT_RDWR);
		errno = ECONNRESET;
		return -1;
	}
	ssize_t (*real)(int, const void *, size_t, int) = next("send");
	return real(fd, buf, n, flags);
}

/* A key's file in a SoftHSM token directory, not the token's own. */
static int token_object(const char *path)
{
	size_t n = strlen(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	return n > 7 && strcmp(path + n - 7, ".object") == 0 && strcmp(base, "token.object") != 0;
}

/* 1 once the token's storage is to fail (KR_TOKEN_EIO_AT reached). */
static int token_failing(int counting)
{
	const char *at = getenv("KR_TOKEN_EIO_AT");
	long n = counting ? __atomic_add_fetch(&counts[OBJECT_OPEN], 1, __ATOMIC_SEQ_CST)
			  : __atomic_load_n(&counts[OBJECT_OPEN], __ATOMIC_SEQ_CST) + 1;
	return at && atol(at) > 0 && n >= atol(at);
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	if (token_object(path) && token_failing(1)) {
		errno = EIO;
		return -1;
	}
	int (*real)(const char *, int, ...) = next("open");
	return real(path, flags, mode);
}

int remove(const char *path)
{
	if (token_object(path) && token_failing(0)) {
		errno = EIO;
		return -1;
	}
	int (*real)(const char *) = next("remove");
	return real(path);
}

__attribute__((destructor)) static void report(void)
{
	const char *path = getenv("KR_CRASH_COUNT");
	FILE *f = path ? fopen(path, "a") : NULL;
	if (!f)
		return;
	for (int i = 0; i < NFUNCS; i++)
		fprintf(f, "%s %ld\n", names[i], counts[i]);
	fclose(f);
}
