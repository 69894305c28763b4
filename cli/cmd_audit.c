/* keyrite audit verify */
#include "cli.h"
#include "../ca/audit.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] = "usage: keyrite audit verify [--config FILE]\n";

int kr_cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {0}};
	const char *config = NULL;
	if (argc < 2 || strcmp(argv[1], "verify") != 0)
		return fputs(usage_text, stderr), KR_EUSAGE;
	argc--, argv++;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else
			return fputs(usage_text, stderr), KR_EUSAGE;
	}
	if (optind != argc)
		return fputs(usage_text, stderr), KR_EUSAGE;
	kr_config *cfg = NULL;
	kr_store *store = NULL;
	kr_err e = kr_cli_open(config, 0, &cfg, &store);
	if (!kr_failed(&e))
		e = kr_audit_verify(store, stdout);
	kr_store_close(store);
	kr_config_free(cfg);
	return kr_cli_report(&e);
}
