/* keyrite serve [--config FILE]: the registry online (docs/api.md). Parses
 * and calls serve/; the service logs JSON lines on standard error. */
#include "cli.h"
#include "../serve/serve.h"

#include <stdio.h>

static const char usage_text[] =
	"usage: keyrite serve [--config FILE] [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"HTTPS with mutual TLS at [registry] serve's address and port: the JSON API\n"
	"(/api/v1/), CMP (/.well-known/cmp/p/PROFILE) and EST (/.well-known/est/).\n"
	"SIGTERM or SIGINT stops it once what is in flight is answered.\n";

int kr_cmd_serve(int argc, char **argv)
{
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM, NULL, NULL, NULL, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	KR_CLI_STORE(s);
	kr_err e = kr_cli_open(co.config, 0, &s);
	if (!kr_failed(&e))
		e = kr_serve_run(s.cfg, s.store, &co.hsm, stdout);
	return kr_cli_report(&e);
}
