/* keyrite issue --ca NAME --profile NAME [--out DIR] [--json] INPUT... */
#include "cli.h"
#include "../ca/authority.h"
#include "../ca/issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: keyrite issue [--config FILE] --ca NAME --profile NAME [--out DIR] [--json]\n"
	"                     [--chunk N] [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"                     INPUT...\n"
	"INPUT: a CSR file (PEM or DER), a directory of them, a CSV manifest\n"
	"(device_id,model,version,csr), or - for PEM CSRs on standard input.\n";

typedef struct args {
	const char *ca, *profile;
	kr_issue_opts o;
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	long chunk = 0;
	switch (opt) {
	case 'a':
		a->ca = arg;
		return kr_ok();
	case 'p':
		a->profile = arg;
		return kr_ok();
	case 'o':
		a->o.out_dir = arg;
		return kr_ok();
	default:
		KR_TRY(kr_cli_number("--chunk", arg, 1, 100000, &chunk));
		a->o.chunk = (int)chunk;
		return kr_ok();
	}
}

static void summary(const kr_issue_summary *s)
{
	fprintf(stderr, "keyrite: %ld issued, %ld already issued, %ld rejected\n", s->issued,
		s->already, s->rejected);
	for (int i = 0; i < s->nreasons; i++)
		fprintf(stderr, "  %6ld  %s\n", s->reasons[i].n, s->reasons[i].reason);
}

int kr_cmd_issue(int argc, char **argv)
{
	static const struct option own[] = {{"ca", required_argument, NULL, 'a'},
					    {"profile", required_argument, NULL, 'p'},
					    {"out", required_argument, NULL, 'o'},
					    {"chunk", required_argument, NULL, 'k'},
					    {0}};
	args a = {.o = {.report = stderr, .progress = isatty(STDERR_FILENO)}};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM | KR_OPT_JSON, own, take, &a, 1,
			    -1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.ca || !a.profile)
		return kr_cli_misuse(&spec, "issue: --ca and --profile are needed");
	a.o.json = co.json ? stdout : NULL;
	kr_cli_ca ca;
	const kr_profile *p = NULL;
	kr_issue_summary sum = {0};
	kr_err e = kr_cli_open_ca(co.config, a.ca, 1, 1, &co.hsm, &ca);
	if (!kr_failed(&e))
		e = kr_config_profile(ca.cfg, ca.conf, a.profile, &p);
	int ran = !kr_failed(&e);
	if (ran)
		e = kr_issue_batch(ca.cfg, ca.store, &ca.ca, p, argv + first, argc - first, &a.o,
				   &sum);
	if (ran && sum.started)
		summary(&sum);
	kr_cli_close_ca(&ca);
	if (kr_failed(&e))
		return kr_cli_report(&e);
	/* every request issued or already issued: 0; some rejected: 1; all: 9 */
	return kr_cli_batch_status(sum.issued + sum.already, sum.rejected);
}
