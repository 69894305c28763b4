/* The command table's entries; one file per command. */
#ifndef KR_CLI_H
#define KR_CLI_H

#include "../hsm/hsm.h"
#include "../util/err.h"

int kr_cmd_hsm(int argc, char **argv);
int kr_cmd_ceremony(int argc, char **argv);

/* Prints "keyrite: <message>" and returns the exit status for e. */
int kr_cli_report(const kr_err *e);

/* Options every HSM-touching command shares. */
typedef struct kr_cli_hsm_opts {
	const char *module;
	kr_pin_source pin;
} kr_cli_hsm_opts;

#define KR_CLI_HSM_LONGOPTS                                                                        \
	{"module", required_argument, NULL, 'm'}, {"pin-file", required_argument, NULL, 'P'},      \
	{                                                                                          \
		"pin-env", required_argument, NULL, 'E'                                            \
	}

/* Handles -m/-P/-E; returns 1 if it took the option. */
int kr_cli_hsm_opt(kr_cli_hsm_opts *o, int opt, const char *arg);

#endif
