/* keyrite: an offline certificate authority and key-ceremony tool. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define KR_VERSION "0.1.0"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"hsm", kr_cmd_hsm, "list tokens and keys, generate keys, initialize tokens"},
	{"ceremony", kr_cmd_ceremony, "run or verify a scripted key ceremony"},
	{"issue", kr_cmd_issue, "sign a batch of CSRs under a profile"},
	{"revoke", kr_cmd_revoke, "revoke certificates by serial or device"},
	{"crl", kr_cmd_crl, "issue a CA's next CRL"},
	{"certs", kr_cmd_certs, "list issued certificates"},
	{"show", kr_cmd_show, "print one certificate and its history"},
	{"audit", kr_cmd_audit, "verify or list the audit log"},
	{"fw", kr_cmd_fw, "sign, encrypt, verify and list firmware images (CMS, MCUboot)"},
	{"publish", kr_cmd_publish, "write the DNS zone and .well-known CA files; check them"},
	{"registry", kr_cmd_registry,
	 "the device registry: import, register, activate, transfer, ..."},
	{"serve", kr_cmd_serve, "the registry online: HTTPS, a JSON API, CMP and EST enrollment"},
};

int kr_cli_report(const kr_err *e)
{
	if (e->code == KR_OK)
		return 0;
	fprintf(stderr, "keyrite: %s\n", e->msg);
	return (int)e->code;
}

int kr_cli_batch_status(long done, long failed) { return failed == 0 ? 0 : done ? 1 : 9; }

KR_MUST_USE kr_err kr_cli_open(const char *config, int create_store, kr_cli_store *out)
{
	const char *path = config ? config : getenv("KEYRITE_CONFIG");
	*out = (kr_cli_store){0};
	KR_TRY(kr_config_load(path ? path : "keyrite.cnf", &out->cfg));
	kr_err e = kr_store_open(kr_config_store(out->cfg), create_store, kr_config_node(out->cfg),
				 &out->store);
	if (kr_failed(&e))
		kr_cli_store_close(out);
	return e;
}

void kr_cli_store_close(kr_cli_store *s)
{
	kr_store_close(s->store);
	kr_config_free(s->cfg);
	*s = (kr_cli_store){0};
}

KR_MUST_USE kr_err kr_cli_open_ca(const char *config, const char *ca_name, int create_store,
				  int with_key, const kr_hsm_opts *h, kr_cli_ca *out)
{
	memset(out, 0, sizeof *out);
	kr_cli_store s;
	KR_TRY(kr_cli_open(config, create_store, &s));
	out->cfg = s.cfg;
	out->store = s.store;
	KR_TRY(kr_config_ca(out->cfg, ca_name, &out->conf));
	return kr_authority_open(out->conf, out->store, h, with_key, &out->ca);
}

void kr_cli_close_ca(kr_cli_ca *c)
{
	kr_authority_close(&c->ca);
	kr_store_close(c->store);
	kr_config_free(c->cfg);
	memset(c, 0, sizeof *c);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: keyrite <command> [<args>]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-10s %s\n", "version", "print the version");
	fprintf(f, "\nSee keyrite(1).\n");
}

/* A PIN passes through this process's memory: keep it out of core files
 * (and out of reach of ptrace by other processes of the same user). Both
 * only lower what is allowed, so they fail only if the kernel refuses
 * outright; keyrite then does not run at all. */
static KR_MUST_USE kr_err no_core_dumps(void)
{
	struct rlimit zero = {0, 0};
	KR_ENSURE(setrlimit(RLIMIT_CORE, &zero) == 0, KR_EINTERNAL,
		  "cannot switch off core dumps (setrlimit): %s", strerror(errno));
	KR_ENSURE(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, KR_EINTERNAL,
		  "cannot make the process undumpable (prctl): %s", strerror(errno));
	return kr_ok();
}

int main(int argc, char **argv)
{
	kr_err e = no_core_dumps();
	if (kr_failed(&e))
		return kr_cli_report(&e);
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? KR_EUSAGE : 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("keyrite %s\n", KR_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "keyrite: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return KR_EUSAGE;
}
