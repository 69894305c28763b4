/* The command table's entries; one file per command. */
#ifndef KR_CLI_H
#define KR_CLI_H

#include "../hsm/hsm.h"
#include "../util/err.h"

#include <getopt.h>
#include <stddef.h>

int kr_cmd_hsm(int argc, char **argv);
int kr_cmd_ceremony(int argc, char **argv);
int kr_cmd_issue(int argc, char **argv);
int kr_cmd_revoke(int argc, char **argv);
int kr_cmd_crl(int argc, char **argv);
int kr_cmd_certs(int argc, char **argv);
int kr_cmd_show(int argc, char **argv);
int kr_cmd_audit(int argc, char **argv);
int kr_cmd_fw(int argc, char **argv);
int kr_cmd_publish(int argc, char **argv);
int kr_cmd_registry(int argc, char **argv);
int kr_cmd_serve(int argc, char **argv);

/* Prints "keyrite: <message>" and returns the exit status for e. */
int kr_cli_report(const kr_err *e);

/* Exit status of a batch (keyrite(1)): 0 when every item was done, 1 when
 * some failed or were rejected, 9 when none was done. */
int kr_cli_batch_status(long done, long failed);

/* ---- the command line: every command's goes through kr_cli_parse ---------- */

/* Options several commands share, taken by kr_cli_parse for a command that
 * asks for them; --help is everyone's. */
enum {
	KR_OPT_CONFIG = 1 << 0, /* --config FILE */
	KR_OPT_HSM = 1 << 1,    /* --module PATH, --pin-file FILE, --pin-env VAR */
	KR_OPT_JSON = 1 << 2,   /* --json */
};

typedef struct kr_cli_opts {
	const char *config;
	kr_hsm_opts hsm;
	int json;
} kr_cli_opts;

/* Takes one of the command's own options (its getopt_long val, below 256;
 * the shared ones use 256 and up); a KR_EUSAGE error refuses it. */
typedef KR_MUST_USE kr_err (*kr_cli_take)(int opt, const char *arg, void *ctx);

typedef struct kr_cli_spec {
	const char *usage;        /* the whole usage text, for --help and misuse */
	unsigned shared;          /* the KR_OPT_* it takes */
	const struct option *own; /* its own long options, {0}-terminated, or NULL */
	kr_cli_take take;
	void *ctx;
	int min_args, max_args; /* operands after the options; max_args -1: any */
} kr_cli_spec;

/* Parses argv (argv[0] names the command). Returns -1 when the command is to
 * run, its operands from argv[*first]; otherwise the exit status: 0 once
 * --help printed the usage on standard output, KR_EUSAGE once a bad command
 * line was reported, with the usage, on standard error. */
int kr_cli_parse(const kr_cli_spec *spec, int argc, char **argv, kr_cli_opts *o, int *first);

/* "keyrite: <message>" and the usage on standard error; KR_EUSAGE. */
int kr_cli_misuse(const kr_cli_spec *spec, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A whole number for option opt, min to max. */
KR_MUST_USE kr_err kr_cli_number(const char *opt, const char *arg, long min, long max, long *out);

/* A command made of subcommands: runs the one argv[1] names; "--help" or
 * "help" there prints usage on standard output (exit 0). */
typedef struct kr_cli_sub {
	const char *name;
	int (*fn)(int argc, char **argv);
} kr_cli_sub;
int kr_cli_dispatch(const char *usage, const kr_cli_sub *subs, size_t n, int argc, char **argv);

/* The CA configuration: --config, else $KEYRITE_CONFIG, else ./keyrite.cnf. */
#include "../store/store.h"
#include "../policy/config.h"
/* It and its store, opened together and closed together at scope end:
 *	KR_CLI_STORE(s);
 *	KR_TRY(kr_cli_open(config, 0, &s));	(s.cfg, s.store) */
typedef struct kr_cli_store {
	kr_config *cfg;
	kr_store *store;
} kr_cli_store;
KR_MUST_USE kr_err kr_cli_open(const char *config, int create_store, kr_cli_store *out);
void kr_cli_store_close(kr_cli_store *s);
#define KR_CLI_STORE(name) __attribute__((cleanup(kr_cli_store_close))) kr_cli_store name = {0}

/* The configuration, the store and one issuing CA, opened together. */
#include "../ca/authority.h"
typedef struct kr_cli_ca {
	kr_config *cfg;
	kr_store *store;
	const kr_ca_conf *conf;
	kr_authority ca;
} kr_cli_ca;

/* with_key: log in to the CA's token (h: PIN and module options). */
KR_MUST_USE kr_err kr_cli_open_ca(const char *config, const char *ca_name, int create_store,
				  int with_key, const kr_hsm_opts *h, kr_cli_ca *out);
void kr_cli_close_ca(kr_cli_ca *c);

#endif
