/* keyrite revoke --ca NAME [--reason R] SERIAL... | --device ID */
#include "cli.h"
#include "../ca/authority.h"
#include "../ca/build.h"
#include "../ca/revoke.h"
#include "../util/text.h"

#include <stdio.h>

static const char usage_text[] =
	"usage: keyrite revoke [--config FILE] --ca NAME [--reason REASON] [--module PATH]\n"
	"                      [--pin-file FILE | --pin-env VAR] SERIAL...\n"
	"       keyrite revoke [--config FILE] --ca NAME [--reason REASON] [--module PATH]\n"
	"                      [--pin-file FILE | --pin-env VAR] --device ID\n"
	"REASON: keyCompromise, cACompromise, affiliationChanged, superseded,\n"
	"cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise,\n"
	"unspecified (RFC 5280 5.3.1).\n";

typedef struct args {
	const char *ca, *reason, *device;
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	if (opt == 'a')
		a->ca = arg;
	else if (opt == 'r')
		a->reason = arg;
	else
		a->device = arg;
	return kr_ok();
}

int kr_cmd_revoke(int argc, char **argv)
{
	static const struct option own[] = {{"ca", required_argument, NULL, 'a'},
					    {"reason", required_argument, NULL, 'r'},
					    {"device", required_argument, NULL, 'd'},
					    {0}};
	args a = {.reason = "unspecified"};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM, own, take, &a, 0, -1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.ca || (a.device != NULL) == (first < argc))
		return kr_cli_misuse(&spec, "revoke: --ca and either serials or --device");
	kr_serials s = {0};
	int reason = 0;
	kr_err e = kr_crl_reason_parse(a.reason, &reason);
	for (int i = first; i < argc && !kr_failed(&e); i++) {
		uint8_t v[20];
		size_t len = 0;
		e = kr_serial_parse(argv[i], v, &len);
		if (!kr_failed(&e))
			e = kr_serials_add(&s, v, len);
	}
	kr_cli_ca ca = {0};
	if (!kr_failed(&e))
		e = kr_cli_open_ca(co.config, a.ca, 0, 1, &co.hsm, &ca);
	if (!kr_failed(&e) && a.device)
		e = kr_ca_device_serials(ca.store, &ca.ca, a.device, &s);
	if (!kr_failed(&e))
		e = kr_ca_revoke(ca.store, &ca.ca, &s, reason);
	for (size_t i = 0; !kr_failed(&e) && i < s.n; i++) {
		char hex[41];
		kr_hex_upper(s.v[i].v, s.v[i].len, hex);
		printf("revoked %s (%s)\n", hex, a.reason);
	}
	kr_cli_close_ca(&ca);
	kr_serials_free(&s);
	return kr_cli_report(&e);
}
