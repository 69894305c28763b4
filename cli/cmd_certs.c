/* keyrite certs [--ca NAME] [--status S] [--device ID] [--json] | show SERIAL */
#include "cli.h"
#include "../util/text.h"
#include "../ca/revoke.h"
#include "../util/json.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char certs_usage[] =
	"usage: keyrite certs [--config FILE] [--ca NAME] [--status valid|revoked]\n"
	"                     [--device ID] [--json]\n"
	"       keyrite show [--config FILE] [--ca NAME] SERIAL\n";

static void day(int64_t t, char out[11])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static KR_MUST_USE kr_err line(const kr_cert_info *c, void *arg)
{
	int json = *(int *)arg;
	char serial[41], nb[11], na[11];
	kr_hex_upper(c->serial, c->serial_len < 20 ? c->serial_len : 20, serial);
	day(c->not_before, nb);
	day(c->not_after, na);
	if (!json) {
		printf("%s %-8s %-7s %s %s %s %s\n", serial, c->status, c->ca, nb, na, c->profile,
		       c->sans && c->sans[0] ? c->sans
		       : c->subject          ? c->subject
					     : "");
		return kr_ok();
	}
	printf("{\"serial\":\"%s\",\"status\":\"%s\",\"ca\":", serial, c->status);
	kr_json_str(stdout, c->ca);
	fputs(",\"profile\":", stdout);
	kr_json_str(stdout, c->profile);
	fputs(",\"device\":", stdout);
	kr_json_str(stdout, c->device_id);
	fputs(",\"subject\":", stdout);
	kr_json_str(stdout, c->subject);
	fputs(",\"names\":", stdout);
	kr_json_str(stdout, c->sans);
	printf(",\"not_before\":\"%s\",\"not_after\":\"%s\"", nb, na);
	if (c->profile_id)
		printf(",\"profile_id\":%lld", (long long)c->profile_id);
	if (c->reason >= 0)
		printf(",\"revoked_at\":%lld,\"reason\":%d", (long long)c->revoked_at, c->reason);
	fputs("}\n", stdout);
	return kr_ok();
}

static KR_MUST_USE kr_err history_line(const kr_audit_entry *a, void *arg)
{
	(void)arg;
	printf("  %s  %-7s audit entry %lld: %s\n", a->time, a->kind, (long long)a->seq, a->detail);
	return kr_ok();
}

/* show_history: after the certificates, the audit entries naming f->serial. */
static int run(const char *config, const kr_cert_filter *f, kr_cert_cb cb, void *arg,
	       int show_history)
{
	KR_CLI_STORE(s);
	kr_err e = kr_cli_open(config, 0, &s);
	if (!kr_failed(&e))
		e = kr_store_certs(s.store, f, cb, arg);
	if (!kr_failed(&e) && show_history && *(int *)arg) {
		printf("history:\n");
		e = kr_store_history(s.store, f->serial, f->serial_len, history_line, NULL);
	}
	return kr_cli_report(&e);
}

static KR_MUST_USE kr_err take_filter(int opt, const char *arg, void *ctx)
{
	kr_cert_filter *f = ctx;
	if (opt == 'a')
		f->ca = arg;
	else if (opt == 's')
		f->status = arg;
	else
		f->device_id = arg;
	return kr_ok();
}

int kr_cmd_certs(int argc, char **argv)
{
	static const struct option own[] = {{"ca", required_argument, NULL, 'a'},
					    {"status", required_argument, NULL, 's'},
					    {"device", required_argument, NULL, 'd'},
					    {0}};
	kr_cert_filter f = {0};
	kr_cli_spec spec = {certs_usage, KR_OPT_CONFIG | KR_OPT_JSON, own, take_filter, &f, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	return run(co.config, &f, line, &co.json, 0);
}

static KR_MUST_USE kr_err show(const kr_cert_info *c, void *arg)
{
	int *found = arg;
	(*found)++;
	char serial[41], nb[11], na[11];
	kr_hex_upper(c->serial, c->serial_len < 20 ? c->serial_len : 20, serial);
	day(c->not_before, nb);
	day(c->not_after, na);
	printf("serial:     %s\nca:         %s\nprofile:    %s\nstatus:     %s\n", serial, c->ca,
	       c->profile, c->status);
	if (c->device_id)
		printf("device:     %s (profile id %lld)\n", c->device_id,
		       (long long)c->profile_id);
	printf("subject:    %s\nnames:      %s\nvalid:      %s to %s\n",
	       c->subject ? c->subject : "", c->sans ? c->sans : "", nb, na);
	if (!strcmp(c->status, "revoked")) {
		char when[11];
		day(c->revoked_at, when);
		printf("revoked:    %s, reason code %d\n", when, c->reason);
	}
	const unsigned char *p = c->der;
	X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
	if (x)
		PEM_write_X509(stdout, x);
	X509_free(x);
	return kr_ok();
}

int kr_cmd_show(int argc, char **argv)
{
	static const struct option own[] = {{"ca", required_argument, NULL, 'a'}, {0}};
	kr_cert_filter f = {0};
	kr_cli_spec spec = {certs_usage, KR_OPT_CONFIG, own, take_filter, &f, 1, 1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	uint8_t serial[20];
	kr_err e = kr_serial_parse(argv[first], serial, &f.serial_len);
	if (kr_failed(&e))
		return kr_cli_report(&e);
	f.serial = serial;
	int found = 0;
	rc = run(co.config, &f, show, &found, 1);
	if (rc == 0 && !found) {
		fprintf(stderr, "keyrite: no certificate has serial %s\n", argv[first]);
		return KR_EINPUT;
	}
	return rc;
}
