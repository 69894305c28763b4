/* ceremony: scripted key ceremonies (docs/keyrite-ceremony.5).
 *
 * One strictly checked script per ceremony. Everything that can be checked
 * without touching the HSM is checked first; then the HSM acts, and every act
 * is in the transcript before the next. */
#ifndef KR_CEREMONY_H
#define KR_CEREMONY_H

#include "../hsm/hsm.h"
#include "../util/err.h"

#include <stdio.h>

typedef struct kr_ceremony_opts {
	const char *dir;       /* outputs and relative inputs; NULL: "." */
	const char *input_dir; /* rehearsal: where inputs missing from dir are read */
	const char *policy;    /* policy file; NULL: built-in caps */
	kr_hsm_opts hsm;       /* default module and PIN source */
	FILE *echo;            /* the transcript as it is written (stdout) */
} kr_ceremony_opts;

KR_MUST_USE kr_err kr_ceremony_run(const char *script, const kr_ceremony_opts *o);

/* Runs the scripts in order on throwaway SoftHSM tokens that carry the same
 * labels, with every output in a new scratch directory (named in scratch). */
KR_MUST_USE kr_err kr_ceremony_rehearse(char *const *scripts, size_t n, const kr_ceremony_opts *o,
					char *scratch, size_t scratch_sz);

/* Re-checks the transcript's own hash, every input and output hash, and every
 * signature and chain it records. Writes one line per check to report. */
KR_MUST_USE kr_err kr_ceremony_verify(const char *transcript, FILE *report);

#endif
