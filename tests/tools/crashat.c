/* crashat.so: fault injection for the crash tests (not part of keyrite).
 *
 * Preloaded (LD_PRELOAD) with KR_CRASH_AT=FUNC:N, it kills the process with
 * SIGKILL just before its Nth call to FUNC, one of the calls that order a
 * batch's durable effects: pwrite64 (SQLite writing a transaction),
 * fdatasync (SQLite making a commit durable), syncfs (keyrite syncing an
 * output directory) or linkat (keyrite naming an output). A test can so stop
 * a batch at an exact point, every time, instead of at a random instant.
 * With KR_FULL_AT=FUNC:N instead, the Nth call and every later one fail with
 * ENOSPC, as on a disk that has just filled up.
 * The calls are counted over all threads. KR_CRASH_COUNT=FILE appends each
 * FUNC's total at exit, for choosing the points. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PWRITE64, FDATASYNC, SYNCFS, LINKAT, NFUNCS };
static const char *const names[NFUNCS] = {"pwrite64", "fdatasync", "syncfs", "linkat"};
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
