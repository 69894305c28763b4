/* keyrite crl --ca NAME [--out FILE] */
#include "cli.h"
#include "../ca/authority.h"
#include "../ca/revoke.h"

#include <stdio.h>

static const char usage_text[] =
	"usage: keyrite crl [--config FILE] --ca NAME [--out FILE] [--module PATH]\n"
	"                   [--pin-file FILE | --pin-env VAR]\n";

typedef struct args {
	const char *ca, *out;
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	if (opt == 'a')
		a->ca = arg;
	else
		a->out = arg;
	return kr_ok();
}

int kr_cmd_crl(int argc, char **argv)
{
	static const struct option own[] = {
		{"ca", required_argument, NULL, 'a'}, {"out", required_argument, NULL, 'o'}, {0}};
	args a = {0};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM, own, take, &a, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.ca)
		return kr_cli_misuse(&spec, "crl: --ca is needed");
	kr_cli_ca ca;
	int64_t number = 0;
	kr_err e = kr_cli_open_ca(co.config, a.ca, 0, 1, &co.hsm, &ca);
	if (!kr_failed(&e))
		e = kr_ca_crl(ca.store, &ca.ca, a.out, &number);
	if (!kr_failed(&e))
		printf("CRL number %lld of CA %s%s%s\n", (long long)number, a.ca,
		       a.out ? " written to " : "", a.out ? a.out : "");
	kr_cli_close_ca(&ca);
	return kr_cli_report(&e);
}
