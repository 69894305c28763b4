/* keyrite issue --ca NAME --profile NAME [--out DIR] [--json] INPUT... */
#include "cli.h"
#include "../ca/authority.h"
#include "../ca/issue.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: keyrite issue [--config FILE] --ca NAME --profile NAME [--out DIR] [--json]\n"
	"                     [--chunk N] [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"                     INPUT...\n"
	"INPUT: a CSR file (PEM or DER), a directory of them, a CSV manifest\n"
	"(device_id,model,version,csr), or - for PEM CSRs on standard input.\n";

static void summary(const kr_issue_summary *s)
{
	fprintf(stderr, "keyrite: %ld issued, %ld already issued, %ld rejected\n", s->issued,
		s->already, s->rejected);
	for (int i = 0; i < s->nreasons; i++)
		fprintf(stderr, "  %6ld  %s\n", s->reasons[i].n, s->reasons[i].reason);
}

int kr_cmd_issue(int argc, char **argv)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS,
					     {"config", required_argument, NULL, 'c'},
					     {"ca", required_argument, NULL, 'a'},
					     {"profile", required_argument, NULL, 'p'},
					     {"out", required_argument, NULL, 'o'},
					     {"json", no_argument, NULL, 'j'},
					     {"chunk", required_argument, NULL, 'k'},
					     {0}};
	kr_hsm_opts h = {0};
	const char *config = NULL, *ca_name = NULL, *profile = NULL;
	kr_issue_opts o = {.report = stderr, .progress = isatty(STDERR_FILENO)};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'a')
			ca_name = optarg;
		else if (c == 'p')
			profile = optarg;
		else if (c == 'o')
			o.out_dir = optarg;
		else if (c == 'j')
			o.json = stdout;
		else if (c == 'k') {
			char *end = NULL;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 100000) {
				fputs("keyrite: --chunk takes 1 to 100000\n", stderr);
				return KR_EUSAGE;
			}
			o.chunk = (int)v;
		} else if (!kr_cli_hsm_opt(&h, c, optarg)) {
			fputs(usage_text, stderr);
			return KR_EUSAGE;
		}
	}
	if (!ca_name || !profile || optind == argc) {
		fputs(usage_text, stderr);
		return KR_EUSAGE;
	}
	kr_cli_ca ca;
	const kr_profile *p = NULL;
	kr_issue_summary sum = {0};
	kr_err e = kr_cli_open_ca(config, ca_name, 1, 1, &h, &ca);
	if (!kr_failed(&e))
		e = kr_config_profile(ca.cfg, ca.conf, profile, &p);
	int ran = !kr_failed(&e);
	if (ran)
		e = kr_issue_batch(ca.cfg, ca.store, &ca.ca, p, argv + optind, argc - optind, &o,
				   &sum);
	if (ran && sum.started)
		summary(&sum);
	kr_cli_close_ca(&ca);
	if (kr_failed(&e))
		return kr_cli_report(&e);
	/* every request issued or already issued: 0; some rejected: 1; all: 9 */
	return kr_cli_batch_status(sum.issued + sum.already, sum.rejected);
}
