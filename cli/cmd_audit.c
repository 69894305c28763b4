/* keyrite audit verify | list */
#include "cli.h"
#include "../store/audit.h"

#include <stdio.h>
#include <string.h>

static const char usage_text[] = "usage: keyrite audit verify [--config FILE]\n"
				 "       keyrite audit list [--config FILE] [--kind KIND]\n";

static int cmd_verify(int argc, char **argv)
{
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG, NULL, NULL, NULL, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	KR_CLI_STORE(s);
	kr_err e = kr_cli_open(co.config, 0, &s);
	if (!kr_failed(&e))
		e = kr_audit_verify(s.store, stdout, 0, NULL);
	return kr_cli_report(&e);
}

/* The entries, oldest first: "SEQ TIME KIND DETAIL", the detail as the
 * chain's hash covers it. */
static KR_MUST_USE kr_err print_entry(const kr_audit_entry *a, void *arg)
{
	const char *kind = arg;
	if (!kind || strcmp(kind, a->kind) == 0)
		printf("%lld %s %s %s\n", (long long)a->seq, a->time, a->kind, a->detail);
	return kr_ok();
}

static KR_MUST_USE kr_err take_kind(int opt, const char *arg, void *ctx)
{
	(void)opt;
	*(const char **)ctx = arg;
	return kr_ok();
}

static int cmd_list(int argc, char **argv)
{
	static const struct option own[] = {{"kind", required_argument, NULL, 'k'}, {0}};
	const char *kind = NULL;
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG, own, take_kind, &kind, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	KR_CLI_STORE(s);
	kr_err e = kr_cli_open(co.config, 0, &s);
	if (!kr_failed(&e))
		e = kr_store_audit_walk(s.store, print_entry, (void *)kind);
	return kr_cli_report(&e);
}

int kr_cmd_audit(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {{"verify", cmd_verify}, {"list", cmd_list}};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}
