/* The command table's entries; one file per command. */
#ifndef KR_CLI_H
#define KR_CLI_H

#include "../hsm/hsm.h"
#include "../util/err.h"

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

/* Prints "keyrite: <message>" and returns the exit status for e. */
int kr_cli_report(const kr_err *e);

/* Exit status of a batch (keyrite(1)): 0 when every item was done, 1 when
 * some failed or were rejected, 9 when none was done. */
int kr_cli_batch_status(long done, long failed);

/* Options every HSM-touching command shares: --module, --pin-file, --pin-env. */
#define KR_CLI_HSM_LONGOPTS                                                                        \
	{"module", required_argument, NULL, 'm'}, {"pin-file", required_argument, NULL, 'P'},      \
	{                                                                                          \
		"pin-env", required_argument, NULL, 'E'                                            \
	}

/* Handles -m/-P/-E; returns 1 if it took the option. */
int kr_cli_hsm_opt(kr_hsm_opts *o, int opt, const char *arg);

/* The CA configuration: --config, else $KEYRITE_CONFIG, else ./keyrite.cnf. */
#include "../ca/store.h"
#include "../policy/profile.h"
KR_MUST_USE kr_err kr_cli_open(const char *config, int create_store, kr_config **cfg,
			       kr_store **store);

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
