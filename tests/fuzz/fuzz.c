#include "fuzz.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[PATH_MAX];

static void remove_dir(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *kr_fuzz_dir(void)
{
	if (dir[0])
		return dir;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof dir, "%s/keyrite-fuzz.XXXXXX", base);
	if (!mkdtemp(dir))
		abort(); /* the harness cannot run: not an input's fault */
	atexit(remove_dir);
	return dir;
}

void kr_fuzz_file(const char *name, const uint8_t *data, size_t size, char *path)
{
	snprintf(path, PATH_MAX, "%s/%s", kr_fuzz_dir(), name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
		abort();
}

void kr_fuzz_repo_file(const char *name, char *path)
{
	snprintf(path, PATH_MAX, "%s/%s", KR_FUZZ_REPO, name);
}
