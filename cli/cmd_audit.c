/* keyrite audit verify */
#include "cli.h"
#include "../store/audit.h"

#include <stdio.h>

static const char usage_text[] = "usage: keyrite audit verify [--config FILE]\n";

static int cmd_verify(int argc, char **argv)
{
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG, NULL, NULL, NULL, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	kr_config *cfg = NULL;
	kr_store *store = NULL;
	kr_err e = kr_cli_open(co.config, 0, &cfg, &store);
	if (!kr_failed(&e))
		e = kr_audit_verify(store, stdout, 0, NULL);
	kr_store_close(store);
	kr_config_free(cfg);
	return kr_cli_report(&e);
}

int kr_cmd_audit(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {{"verify", cmd_verify}};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}
