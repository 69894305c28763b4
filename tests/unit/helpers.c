#include "helpers.h"
#include "../../util/fs.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[256];

const char *kr_test_dir(void)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/kr-unit.XXXXXX");
		cr_assert(mkdtemp(dir), "mkdtemp");
	}
	return dir;
}

char *kr_test_file(const char *name, const char *text)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, 512, "%s/%s", kr_test_dir(), name);
	FILE *f = fopen(p, "w");
	cr_assert(f, "fopen %s", p);
	fputs(text, f);
	fclose(f);
	return p;
}

kr_pin_source kr_test_token(const char *label)
{
	char tokens[512], conf[600];
	snprintf(tokens, sizeof tokens, "%s/tokens", kr_test_dir());
	mkdir(tokens, 0700);
	snprintf(conf, sizeof conf, "directories.tokendir = %s\nlog.level = ERROR\n", tokens);
	setenv("SOFTHSM2_CONF", kr_test_file("softhsm2.conf", conf), 1);
	char *pin = kr_test_file("pin", "unit-test-pin"); /* keyrite(1): no final newline */
	chmod(pin, 0600);
	static char pin_path[512];
	snprintf(pin_path, sizeof pin_path, "%s", pin);
	kr_pin_source src = {.file = pin_path};
	kr_err e = kr_hsm_init_token(NULL, label, &src, &src);
	cr_assert(e.code == KR_OK, "init token: %s", e.msg);
	return src;
}

void kr_test_cleanup(void)
{
	if (dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		cr_assert(system(cmd) == 0);
		dir[0] = '\0';
	}
}
