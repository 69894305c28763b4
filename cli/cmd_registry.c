/* keyrite registry COMMAND [--as ACCOUNT] ... DEVICE|FILE... : the device
 * registry (docs/registry.md). Parses, calls registry/, prints. */
#include "cli.h"
#include "../ca/authority.h"
#include "../ca/csr.h"
#include "../ca/requests.h"
#include "../registry/registry.h"
#include "../util/fs.h"
#include "../util/json.h"
#include "../util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite registry COMMAND [--config FILE] [--as ACCOUNT] [--json] [--chunk N]\n"
	"                        [--progress] [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"commands, each on DEVICE... or FILE... (ids one per line, or CSV with a header):\n"
	"  import FILE.csv [--owner NAME] [--mno NAME] [--preview]\n"
	"                                                Device ID,Model,Version[,MNO][,Owner]\n"
	"  register --asp ASP DEVICE...\n"
	"  activate [--asp ASP] DEVICE... | --csr MANIFEST.csv...\n"
	"  reactivate [--asp ASP] DEVICE...\n"
	"  rekey [--asp ASP] --csr MANIFEST.csv...       new keys, the old certificates "
	"superseded\n"
	"  authcode DEVICE...                            prints each new code once\n"
	"  secret DEVICE...                              each new enrollment secret (CMP PBM), "
	"once\n"
	"  transfer request [--asp LOSING] CODES.csv     device,code\n"
	"  transfer approve|reject|cancel|query [--asp ASP] DEVICE...\n"
	"  hold|unhold|deactivate|reset [--asp ASP] DEVICE...\n"
	"  lock|unlock --lock transfer|delete|update DEVICE...\n"
	"  delete|restore|purge DEVICE...\n"
	"  switch-mno --mno MNO DEVICE...\n"
	"  payload --out DIR DEVICE...                  DIR/DEVICE.p7m, for the device's MNO\n"
	"  payload verify --key KEY --cert CERT --root ROOT FILE\n"
	"  client ACCOUNT --csr CSR.pem --out CERT.pem  a client certificate for keyrite serve\n"
	"  show DEVICE\n"
	"  list [--asp ASP] [--owner NAME] [--mno NAME] [--state STATE]\n"
	"ACCOUNT: an account of the configuration's [registry] (default: operator).\n";

typedef struct args {
	kr_reg_args r;
	const char *as, *state;
	const char *key, *cert, *root; /* payload verify */
	char *csrs[64];
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	switch (opt) {
	case 'a':
		a->as = arg;
		break;
	case 'p':
		a->r.asp = arg;
		break;
	case 'm':
		a->r.mno = arg;
		break;
	case 'o':
		a->r.owner = arg;
		break;
	case 's':
		a->state = arg;
		break;
	case 'c':
		KR_ENSURE(a->r.ncsrs < 64, KR_EUSAGE, "--csr: at most 64 manifests");
		a->csrs[a->r.ncsrs++] = (char *)arg;
		a->r.csrs = a->csrs;
		break;
	case 'l': {
		unsigned bit = kr_reg_lock_named(arg);
		KR_ENSURE(bit, KR_EUSAGE, "--lock %s: one of transfer, delete, update", arg);
		a->r.lock |= bit;
		break;
	}
	case 'u':
		a->r.out_dir = arg;
		break;
	case 'K':
		a->key = arg;
		break;
	case 'C':
		a->cert = arg;
		break;
	case 'R':
		a->root = arg;
		break;
	case 'v':
		a->r.preview = 1;
		break;
	case 'k': {
		long chunk = 0;
		KR_TRY(kr_cli_number("--chunk", arg, 1, 100000, &chunk));
		a->r.chunk = (int)chunk;
		break;
	}
	default:
		a->r.progress = 1;
	}
	return kr_ok();
}

static const struct option own[] = {
	{"as", required_argument, NULL, 'a'},    {"asp", required_argument, NULL, 'p'},
	{"mno", required_argument, NULL, 'm'},   {"owner", required_argument, NULL, 'o'},
	{"state", required_argument, NULL, 's'}, {"csr", required_argument, NULL, 'c'},
	{"lock", required_argument, NULL, 'l'},  {"progress", no_argument, NULL, 'g'},
	{"chunk", required_argument, NULL, 'k'}, {"out", required_argument, NULL, 'u'},
	{"preview", no_argument, NULL, 'v'},     {0}};

/* ---- printing ----------------------------------------------------------------- */

static void print_outcome(const kr_reg_outcome *o, void *arg)
{
	const int *json = arg;
	if (*json) {
		fputs("{\"input\":", stdout);
		kr_json_str(stdout, o->where);
		fputs(",\"id\":", stdout);
		kr_json_str(stdout, o->device[0] ? o->device : NULL);
		fputs(",\"result\":", stdout);
		kr_json_str(stdout, o->result);
		fputs(",\"reason\":", stdout);
		kr_json_str(stdout, o->reason);
		fputs(",\"state\":", stdout);
		kr_json_str(stdout, o->to ? o->to : o->from);
		if (o->profile_id > 0)
			printf(",\"profile_id\":%lld", (long long)o->profile_id);
		if (o->secret) {
			printf(",\"%s\":", kr_reg_secret_name(o));
			kr_json_str(stdout, o->secret);
		}
		if (o->code != KR_OK)
			printf(",\"exit\":%d", (int)o->code);
		fputs("}\n", stdout);
		return;
	}
	if (!strcmp(o->result, "refused")) {
		fprintf(stderr, "keyrite: %s: %s\n", o->where, o->reason ? o->reason : "refused");
		return;
	}
	printf("%s %s", o->device, o->result);
	if (o->secret)
		printf(" %s", o->secret);
	if (o->profile_id > 0 && (!strcmp(o->result, "activated") || !strcmp(o->result, "rekeyed")))
		printf(" profile %lld", (long long)o->profile_id);
	if (o->reason)
		printf(" (%s)", o->reason);
	putchar('\n');
}

/* 0: every device done or unchanged; 1: some refused; a single device's
 * refusal: its own status; 9: every device refused. */
static int status_of(const kr_reg_summary *s)
{
	long ok = s->done + s->unchanged;
	if (s->refused == 1 && ok == 0)
		return (int)s->first_refusal;
	return kr_cli_batch_status(ok, s->refused);
}

/* ---- the commands -------------------------------------------------------------- */

/* The configuration, its store and the registry acting as --as. */
static KR_MUST_USE kr_err open_registry(const kr_cli_opts *co, const char *as, int create,
					kr_cli_store *s, kr_registry **reg)
{
	KR_TRY(kr_cli_open(co->config, create, s));
	return kr_registry_open(s->cfg, s->store, as, &co->hsm, reg);
}

static int run_bulk(kr_reg_cmd cmd, int argc, char **argv)
{
	args a = {.r = {.cmd = cmd}};
	int needs_items = cmd != KR_CMD_ACTIVATE && cmd != KR_CMD_REKEY;
	kr_cli_spec spec = {
		usage_text, KR_OPT_CONFIG | KR_OPT_HSM | KR_OPT_JSON, own, take, &a, needs_items,
		-1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (cmd == KR_CMD_ACTIVATE && first == argc && a.r.ncsrs == 0)
		return kr_cli_misuse(&spec, "registry activate: devices, or --csr manifests");
	if (cmd == KR_CMD_REKEY && (first != argc || a.r.ncsrs == 0))
		return kr_cli_misuse(&spec, "registry rekey: --csr manifests of the new CSRs");
	if ((cmd == KR_CMD_LOCK || cmd == KR_CMD_UNLOCK) && !a.r.lock)
		return kr_cli_misuse(&spec, "registry %s: --lock transfer|delete|update",
				     kr_reg_cmd_name(cmd));
	if (cmd == KR_CMD_PAYLOAD && !a.r.out_dir)
		return kr_cli_misuse(&spec, "registry payload: --out DIR");
	if ((cmd == KR_CMD_REGISTER && !a.r.asp) || (cmd == KR_CMD_SWITCH_MNO && !a.r.mno))
		return kr_cli_misuse(&spec, "registry %s: --%s NAME", kr_reg_cmd_name(cmd),
				     cmd == KR_CMD_REGISTER ? "asp" : "mno");
	KR_CLI_STORE(s);
	kr_registry *reg = NULL;
	kr_reg_summary sum = {0};
	kr_err e = open_registry(&co, a.as, cmd == KR_CMD_IMPORT, &s, &reg);
	if (!kr_failed(&e))
		e = kr_registry_run(reg, &a.r, argv + first, argc - first, print_outcome, &co.json,
				    &sum);
	kr_registry_close(reg);
	fflush(stdout);
	if (kr_failed(&e))
		return kr_cli_report(&e);
	fprintf(co.json ? stderr : stdout, "registry %s%s: %ld done, %ld unchanged, %ld refused\n",
		kr_reg_cmd_name(cmd), a.r.preview ? " (preview: nothing kept)" : "", sum.done,
		sum.unchanged, sum.refused);
	return status_of(&sum);
}

#define BULK(fn, cmd)                                                                              \
	static int fn(int argc, char **argv) { return run_bulk(cmd, argc, argv); }
BULK(cmd_import, KR_CMD_IMPORT)
BULK(cmd_register, KR_CMD_REGISTER)
BULK(cmd_activate, KR_CMD_ACTIVATE)
BULK(cmd_reactivate, KR_CMD_REACTIVATE)
BULK(cmd_rekey, KR_CMD_REKEY)
BULK(cmd_authcode, KR_CMD_AUTHCODE)
BULK(cmd_secret, KR_CMD_SECRET)
BULK(cmd_hold, KR_CMD_HOLD)
BULK(cmd_unhold, KR_CMD_UNHOLD)
BULK(cmd_lock, KR_CMD_LOCK)
BULK(cmd_unlock, KR_CMD_UNLOCK)
BULK(cmd_deactivate, KR_CMD_DEACTIVATE)
BULK(cmd_delete, KR_CMD_DELETE)
BULK(cmd_restore, KR_CMD_RESTORE)
BULK(cmd_purge, KR_CMD_PURGE)
BULK(cmd_switch_mno, KR_CMD_SWITCH_MNO)
BULK(cmd_reset, KR_CMD_RESET)
BULK(cmd_request, KR_CMD_TRANSFER_REQUEST)
BULK(cmd_approve, KR_CMD_TRANSFER_APPROVE)
BULK(cmd_reject, KR_CMD_TRANSFER_REJECT)
BULK(cmd_cancel, KR_CMD_TRANSFER_CANCEL)
BULK(cmd_query, KR_CMD_TRANSFER_QUERY)
BULK(cmd_payload_write, KR_CMD_PAYLOAD)

static int cmd_payload_verify(int argc, char **argv)
{
	static const struct option verify_opts[] = {{"key", required_argument, NULL, 'K'},
						    {"cert", required_argument, NULL, 'C'},
						    {"root", required_argument, NULL, 'R'},
						    {0}};
	args a = {0};
	kr_cli_spec spec = {usage_text, 0, verify_opts, take, &a, 1, 1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.key || !a.cert || !a.root)
		return kr_cli_misuse(&spec, "registry payload verify: --key, --cert and --root");
	char *json = NULL, signer[256] = "";
	size_t len = 0;
	kr_err e = kr_payload_verify(argv[first], a.key, a.cert, a.root, &json, &len, signer,
				     sizeof signer);
	if (!kr_failed(&e)) {
		fwrite(json, 1, len, stdout);
		fprintf(stderr, "%s: good registry payload, signed by %s\n", argv[first], signer);
	}
	free(json);
	return kr_cli_report(&e);
}

/* payload DEVICE... writes; payload verify FILE opens one */
static int cmd_payload(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "verify"))
		return cmd_payload_verify(argc - 1, argv + 1);
	return cmd_payload_write(argc, argv);
}

static int cmd_transfer(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {{"request", cmd_request},
					  {"approve", cmd_approve},
					  {"reject", cmd_reject},
					  {"cancel", cmd_cancel},
					  {"query", cmd_query}};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}

/* ---- show and list --------------------------------------------------------------- */

/* What a registration's profile is, as the seeds' screens say it. */
static const char *profile_status(const kr_registration *g)
{
	if (!strcmp(g->cert_status, "valid"))
		return "generated";
	if (!strcmp(g->cert_status, "revoked"))
		return "revoked";
	return g->cert_status[0] ? g->cert_status : "";
}

static void flags_text(const kr_reg_device *d, const kr_registration *g, char *out, size_t n)
{
	unsigned f = kr_registry_flags_of(d, g);
	size_t o = 0;
	out[0] = '\0';
	for (unsigned bit = 1; bit < 1u << KR_NFLAGS; bit <<= 1)
		if (f & bit)
			o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s%s", o ? "," : "",
					      kr_reg_flag_name(bit));
}

typedef struct list_ctx {
	int json;
} list_ctx;

static void json_row(const kr_reg_device *d, const kr_registration *g)
{
	char flags[160];
	flags_text(d, g, flags, sizeof flags);
	fputs("{\"id\":", stdout);
	kr_json_str(stdout, d->id);
	fputs(",\"model\":", stdout);
	kr_json_str(stdout, d->model);
	fputs(",\"version\":", stdout);
	kr_json_str(stdout, d->version);
	fputs(",\"owner\":", stdout);
	kr_json_str(stdout, d->owner[0] ? d->owner : NULL);
	fputs(",\"mno\":", stdout);
	kr_json_str(stdout, d->mno[0] ? d->mno : NULL);
	printf(",\"auth_code\":%s", d->has_code ? "\"*****\"" : "null");
	fputs(",\"asp\":", stdout);
	kr_json_str(stdout, g ? g->asp : NULL);
	fputs(",\"state\":", stdout);
	kr_json_str(stdout, kr_reg_state_name(kr_registry_state_of(d, g)));
	fputs(",\"flags\":", stdout);
	kr_json_str(stdout, flags);
	if (g && g->profile_id > 0)
		printf(",\"profile_id\":%lld", (long long)g->profile_id);
	fputs(",\"profile_status\":", stdout);
	kr_json_str(stdout, g && g->profile_id > 0 ? profile_status(g) : NULL);
	fputs(",\"gaining\":", stdout);
	kr_json_str(stdout, g && g->gaining[0] ? g->gaining : NULL);
	fputs("}\n", stdout);
}

static void text_row(const kr_reg_device *d, const kr_registration *g)
{
	char flags[160], pid[24] = "-";
	flags_text(d, g, flags, sizeof flags);
	if (g && g->profile_id > 0)
		snprintf(pid, sizeof pid, "%lld", (long long)g->profile_id);
	printf("%-20s %-14s %-6s %-10s %-7s %-12s %-7s %-10s %-13s %s\n", d->id, d->model,
	       d->has_code ? "*****" : "-", d->mno[0] ? d->mno : "-",
	       d->deleted ? "deleted" : "active", g ? g->asp : "-", pid,
	       g && g->profile_id > 0 ? profile_status(g) : "-",
	       kr_reg_state_name(kr_registry_state_of(d, g)), flags);
}

static KR_MUST_USE kr_err list_row(const kr_reg_device *d, const kr_registration *g, void *arg)
{
	const list_ctx *c = arg;
	if (c->json)
		json_row(d, g);
	else
		text_row(d, g);
	return kr_ok();
}

static int cmd_list(int argc, char **argv)
{
	args a = {0};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM | KR_OPT_JSON, own, take, &a, 0,
			    0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	list_ctx c = {.json = co.json};
	kr_reg_state state = KR_NSTATES;
	if (a.state && (state = kr_reg_state_named(a.state)) == KR_NSTATES)
		return kr_cli_misuse(&spec, "registry list: --state %s: not a state", a.state);
	KR_CLI_STORE(s);
	kr_registry *reg = NULL;
	kr_reg_filter f = {a.r.asp, a.r.owner, a.r.mno};
	kr_err e = open_registry(&co, a.as, 0, &s, &reg);
	if (!kr_failed(&e) && !co.json)
		printf("%-20s %-14s %-6s %-10s %-7s %-12s %-7s %-10s %-13s %s\n", "eID", "model",
		       "code", "MNO", "status", "ASP", "profile", "profile", "state", "flags");
	if (!kr_failed(&e))
		e = kr_registry_list(reg, &f, state, list_row, &c, NULL);
	kr_registry_close(reg);
	return kr_cli_report(&e);
}

static KR_MUST_USE kr_err history_line(const kr_audit_entry *e, void *arg)
{
	(void)arg;
	printf("  %lld %s %s %s\n", (long long)e->seq, e->time, e->kind, e->detail);
	return kr_ok();
}

static KR_MUST_USE kr_err show_row(const kr_reg_device *d, const kr_registration *g, void *arg)
{
	(void)arg;
	if (!g)
		return kr_ok();
	char flags[160];
	flags_text(d, g, flags, sizeof flags);
	printf("  %s: %s%s%s, profile %lld %s\n", g->asp, g->state, flags[0] ? " " : "", flags,
	       (long long)g->profile_id, profile_status(g));
	return kr_ok();
}

static int cmd_show(int argc, char **argv)
{
	args a = {0};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM | KR_OPT_JSON, own, take, &a, 1,
			    1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	KR_CLI_STORE(s);
	kr_registry *reg = NULL;
	static kr_reg_record rec;
	kr_err e = open_registry(&co, a.as, 0, &s, &reg);
	if (!kr_failed(&e))
		e = kr_registry_show(reg, argv[first], &rec, NULL, NULL);
	if (!kr_failed(&e) && co.json) {
		e = kr_registry_rows(reg, &rec, list_row, &(list_ctx){.json = 1});
	} else if (!kr_failed(&e)) {
		const kr_reg_device *d = &rec.d;
		printf("device %s\n  model %s, version %s\n  owner %s, MNO %s\n", d->id, d->model,
		       d->version[0] ? d->version : "-", d->owner[0] ? d->owner : "-",
		       d->mno[0] ? d->mno : "-");
		printf("  listed %s, updated %s%s\n  auth code %s\n", d->created, d->updated,
		       d->deleted ? ", pendingDelete" : "", d->has_code ? "set (*****)" : "none");
		e = kr_registry_rows(reg, &rec, show_row, NULL);
		puts("history:");
		if (!kr_failed(&e))
			e = kr_registry_show(reg, argv[first], &rec, history_line, NULL);
	}
	kr_registry_close(reg);
	return kr_cli_report(&e);
}

/* client ACCOUNT --csr FILE --out FILE: the operator issues an account its
 * certificate for the online service. */
static int cmd_client(int argc, char **argv)
{
	args a = {0};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM, own, take, &a, 1, 1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (a.r.ncsrs != 1 || !a.r.out_dir)
		return kr_cli_misuse(&spec, "registry client: --csr FILE and --out FILE");
	KR_CLI_STORE(s);
	kr_registry *reg = NULL;
	uint8_t *in = NULL, *der = NULL;
	size_t in_len = 0, der_len = 0;
	char *pem = NULL;
	kr_err e = kr_fs_must_not_exist(a.r.out_dir);
	if (!kr_failed(&e))
		e = kr_fs_read(a.csrs[0], KR_CSR_MAX_SIZE, &in, &in_len);
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	if (!kr_failed(&e))
		e = kr_csr_pem_to_der((const char *)in, in_len, &csr, &csr_len);
	if (!kr_failed(&e))
		e = open_registry(&co, a.as, 0, &s, &reg);
	if (!kr_failed(&e))
		e = kr_registry_issue_client(reg, argv[first], csr, csr_len, &der, &der_len);
	size_t pem_len = 0;
	if (!kr_failed(&e))
		e = kr_cert_der_pem(der, der_len, &pem, &pem_len);
	if (!kr_failed(&e))
		e = kr_fs_write_new(a.r.out_dir, pem, pem_len, 0644);
	if (!kr_failed(&e))
		printf("%s: client certificate of %s\n", a.r.out_dir, argv[first]);
	kr_registry_close(reg);
	free(in);
	free(csr);
	free(der);
	free(pem);
	return kr_cli_report(&e);
}

int kr_cmd_registry(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {
		{"import", cmd_import},
		{"register", cmd_register},
		{"activate", cmd_activate},
		{"reactivate", cmd_reactivate},
		{"rekey", cmd_rekey},
		{"authcode", cmd_authcode},
		{"secret", cmd_secret},
		{"transfer", cmd_transfer},
		{"hold", cmd_hold},
		{"unhold", cmd_unhold},
		{"lock", cmd_lock},
		{"unlock", cmd_unlock},
		{"deactivate", cmd_deactivate},
		{"delete", cmd_delete},
		{"restore", cmd_restore},
		{"purge", cmd_purge},
		{"switch-mno", cmd_switch_mno},
		{"reset", cmd_reset},
		{"show", cmd_show},
		{"list", cmd_list},
		{"client", cmd_client},
		{"payload", cmd_payload},
	};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}
