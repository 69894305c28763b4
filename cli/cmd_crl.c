/* keyrite crl --ca NAME [--out FILE] */
#include "cli.h"
#include "../ca/authority.h"
#include "../ca/revoke.h"

#include <getopt.h>
#include <stdio.h>

static const char usage_text[] =
	"usage: keyrite crl [--config FILE] --ca NAME [--out FILE] [--module PATH]\n"
	"                   [--pin-file FILE | --pin-env VAR]\n";

int kr_cmd_crl(int argc, char **argv)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS,
					     {"config", required_argument, NULL, 'c'},
					     {"ca", required_argument, NULL, 'a'},
					     {"out", required_argument, NULL, 'o'},
					     {0}};
	kr_hsm_opts h = {0};
	const char *config = NULL, *ca_name = NULL, *out = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'a')
			ca_name = optarg;
		else if (c == 'o')
			out = optarg;
		else if (!kr_cli_hsm_opt(&h, c, optarg))
			return fputs(usage_text, stderr), KR_EUSAGE;
	}
	if (!ca_name || optind != argc)
		return fputs(usage_text, stderr), KR_EUSAGE;
	kr_cli_ca ca;
	int64_t number = 0;
	kr_err e = kr_cli_open_ca(config, ca_name, 0, 1, &h, &ca);
	if (!kr_failed(&e))
		e = kr_ca_crl(ca.store, &ca.ca, out, &number);
	if (!kr_failed(&e))
		printf("CRL number %lld of CA %s%s%s\n", (long long)number, ca_name,
		       out ? " written to " : "", out ? out : "");
	kr_cli_close_ca(&ca);
	return kr_cli_report(&e);
}
