/* keyrite ceremony run [--dry-run] SCRIPT... | verify TRANSCRIPT */
#include "cli.h"
#include "../ceremony/ceremony.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite ceremony run [--dir DIR] [--policy FILE] [--module PATH]\n"
	"                            [--pin-file FILE | --pin-env VAR] SCRIPT\n"
	"       keyrite ceremony run --dry-run [--dir DIR] [--policy FILE] SCRIPT...\n"
	"       keyrite ceremony verify TRANSCRIPT\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return KR_EUSAGE;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS,
					     {"dry-run", no_argument, NULL, 'n'},
					     {"dir", required_argument, NULL, 'C'},
					     {"policy", required_argument, NULL, 'p'},
					     {0}};
	kr_hsm_opts h = {0};
	kr_ceremony_opts o = {.echo = stdout};
	int dry = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			dry = 1;
		else if (c == 'C')
			o.dir = optarg;
		else if (c == 'p')
			o.policy = optarg;
		else if (!kr_cli_hsm_opt(&h, c, optarg))
			return usage();
	}
	int nscripts = argc - optind;
	if (nscripts < 1 || (!dry && nscripts != 1))
		return usage();
	o.hsm = h;
	if (!dry) {
		kr_err e = kr_ceremony_run(argv[optind], &o);
		return kr_cli_report(&e);
	}
	char scratch[PATH_MAX];
	kr_err e =
		kr_ceremony_rehearse(argv + optind, (size_t)nscripts, &o, scratch, sizeof scratch);
	if (!kr_failed(&e))
		printf("\nRehearsal complete; outputs and throwaway tokens are in %s\n", scratch);
	return kr_cli_report(&e);
}

static int cmd_verify(int argc, char **argv)
{
	if (argc != 2)
		return usage();
	kr_err e = kr_ceremony_verify(argv[1], stdout);
	return kr_cli_report(&e);
}

int kr_cmd_ceremony(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "verify"))
		return cmd_verify(argc - 1, argv + 1);
	return usage();
}
