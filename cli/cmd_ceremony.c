/* keyrite ceremony run [--dry-run] SCRIPT... | verify TRANSCRIPT */
#include "cli.h"
#include "../ceremony/ceremony.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite ceremony run [--dir DIR] [--policy FILE] [--module PATH]\n"
	"                            [--pin-file FILE | --pin-env VAR] SCRIPT\n"
	"       keyrite ceremony run --dry-run [--dir DIR] [--policy FILE] SCRIPT...\n"
	"       keyrite ceremony verify TRANSCRIPT\n";

typedef struct args {
	int dry;
	kr_ceremony_opts o;
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	if (opt == 'n')
		a->dry = 1;
	else if (opt == 'C')
		a->o.dir = arg;
	else
		a->o.policy = arg;
	return kr_ok();
}

static int cmd_run(int argc, char **argv)
{
	static const struct option own[] = {{"dry-run", no_argument, NULL, 'n'},
					    {"dir", required_argument, NULL, 'C'},
					    {"policy", required_argument, NULL, 'p'},
					    {0}};
	args a = {.o = {.echo = stdout}};
	kr_cli_spec spec = {usage_text, KR_OPT_HSM, own, take, &a, 1, -1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	int nscripts = argc - first;
	if (!a.dry && nscripts != 1)
		return kr_cli_misuse(&spec, "ceremony run: one script at a time (or --dry-run)");
	a.o.hsm = co.hsm;
	if (!a.dry) {
		kr_err e = kr_ceremony_run(argv[first], &a.o);
		return kr_cli_report(&e);
	}
	char scratch[PATH_MAX];
	kr_err e =
		kr_ceremony_rehearse(argv + first, (size_t)nscripts, &a.o, scratch, sizeof scratch);
	if (!kr_failed(&e))
		printf("\nRehearsal complete; outputs and throwaway tokens are in %s\n", scratch);
	return kr_cli_report(&e);
}

static int cmd_verify(int argc, char **argv)
{
	kr_cli_spec spec = {usage_text, 0, NULL, NULL, NULL, 1, 1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	kr_err e = kr_ceremony_verify(argv[first], stdout);
	return kr_cli_report(&e);
}

int kr_cmd_ceremony(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {{"run", cmd_run}, {"verify", cmd_verify}};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}
