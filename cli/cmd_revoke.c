/* keyrite revoke --ca NAME [--reason R] SERIAL... | --device ID */
#include "cli.h"
#include "../util/mem.h"
#include "../util/text.h"
#include "../ca/authority.h"
#include "../ca/build.h"
#include "../ca/revoke.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
	"usage: keyrite revoke [--config FILE] --ca NAME [--reason REASON] SERIAL...\n"
	"       keyrite revoke [--config FILE] --ca NAME [--reason REASON] --device ID\n"
	"REASON: keyCompromise, cACompromise, affiliationChanged, superseded,\n"
	"cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise,\n"
	"unspecified (RFC 5280 5.3.1).\n";

typedef struct serial {
	uint8_t v[20];
	size_t len;
} serial;

typedef struct serials {
	serial *v;
	int n;
	size_t cap;
} serials;

static serial *more(serials *s)
{
	kr_err e = kr_grow((void **)&s->v, &s->cap, (size_t)s->n + 1, sizeof *s->v);
	return kr_failed(&e) ? NULL : &s->v[s->n];
}

static KR_MUST_USE kr_err by_device(const kr_cert_info *c, void *arg)
{
	serials *s = arg;
	if (strcmp(c->status, "valid") != 0 || c->serial_len > 20)
		return kr_ok();
	serial *x = more(s);
	KR_ENSURE(x, KR_EINTERNAL, "out of memory listing device %s", c->device_id);
	memcpy(x->v, c->serial, c->serial_len);
	x->len = c->serial_len;
	s->n++;
	return kr_ok();
}

static KR_MUST_USE kr_err from_args(char **args, int n, serials *s)
{
	for (int i = 0; i < n; i++) {
		serial *x = more(s);
		KR_ENSURE(x, KR_EINTERNAL, "out of memory");
		KR_TRY(kr_serial_parse(args[i], x->v, &x->len));
		s->n++;
	}
	return kr_ok();
}

static KR_MUST_USE kr_err revoke(kr_store *store, int64_t ca, const serials *s, int reason)
{
	KR_TRY(kr_store_begin(store));
	kr_err e = kr_ok();
	for (int i = 0; i < s->n && !kr_failed(&e); i++)
		e = kr_store_revoke(store, ca, s->v[i].v, s->v[i].len, reason, (int64_t)time(NULL));
	if (kr_failed(&e)) {
		kr_store_rollback(store);
		return e;
	}
	return kr_store_commit(store);
}

int kr_cmd_revoke(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"ca", required_argument, NULL, 'a'},
					     {"reason", required_argument, NULL, 'r'},
					     {"device", required_argument, NULL, 'd'},
					     {0}};
	const char *config = NULL, *ca_name = NULL, *reason_name = "unspecified", *device = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'a')
			ca_name = optarg;
		else if (c == 'r')
			reason_name = optarg;
		else if (c == 'd')
			device = optarg;
		else
			return fputs(usage_text, stderr), KR_EUSAGE;
	}
	if (!ca_name || (device != NULL) == (optind < argc))
		return fputs(usage_text, stderr), KR_EUSAGE;
	serials s = {0};
	int reason = 0;
	kr_err e = kr_crl_reason_parse(reason_name, &reason);
	if (!kr_failed(&e))
		e = from_args(argv + optind, argc - optind, &s);
	kr_cli_ca ca = {0};
	if (!kr_failed(&e))
		e = kr_cli_open_ca(config, ca_name, 0, 0, NULL, &ca);
	if (!kr_failed(&e) && device) {
		kr_cert_filter f = {.ca = ca_name, .device_id = device};
		e = kr_store_certs(ca.store, &f, by_device, &s);
		if (!kr_failed(&e) && s.n == 0)
			e = kr_errf(KR_EINPUT, "device %s has no valid certificate from CA %s",
				    device, ca_name);
	}
	if (!kr_failed(&e))
		e = revoke(ca.store, ca.ca.id, &s, reason);
	for (int i = 0; !kr_failed(&e) && i < s.n; i++) {
		char hex[41];
		kr_hex_upper(s.v[i].v, s.v[i].len, hex);
		printf("revoked %s (%s)\n", hex, reason_name);
	}
	kr_cli_close_ca(&ca);
	free(s.v);
	return kr_cli_report(&e);
}
