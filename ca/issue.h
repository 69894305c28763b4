/* Batch issuance: requests in, certificates out, everything recorded.
 *
 * Per chunk of requests: parse and verify them (workers); reserve a serial
 * and profile id for each acceptable one and commit; sign them on the HSM
 * (workers, one session each); record the certificates and their audit
 * entries and commit; only then write the files. A batch killed at any
 * point and run again completes: committed requests are "already issued"
 * (their missing files are written from the store), reserved-but-unrecorded
 * serials are retired, never reused. The batch ends with a checkpoint over
 * the audit chain, signed by the CA key. */
#ifndef KR_CA_ISSUE_H
#define KR_CA_ISSUE_H

#include "authority.h"
#include "../store/store.h"
#include "../policy/config.h"

#include <stdio.h>

typedef struct kr_issue_opts {
	const char *out_dir; /* NULL: the certificates stay in the store only */
	FILE *json;          /* one JSON object per request, or NULL */
	FILE *report;        /* one line per rejected request, the summary */
	int progress;        /* a progress line on stderr */
	int chunk;           /* requests per transaction; 0: 1000 */
} kr_issue_opts;

#define KR_MAX_REASONS 32

typedef struct kr_issue_summary {
	int started; /* the batch got as far as reading requests */
	long issued, already, rejected;
	struct {
		char reason[80];
		long n;
	} reasons[KR_MAX_REASONS];
	int nreasons;
} kr_issue_summary;

/* Counts a rejection under its reason's leading clause ("bad signature",
 * "key too weak"); past KR_MAX_REASONS - 1 kinds, under "other reasons". */
void kr_issue_summary_add(kr_issue_summary *s, const char *reason);

KR_MUST_USE kr_err kr_issue_batch(kr_config *cfg, kr_store *store, kr_authority *ca,
				  const kr_profile *p, char *const *inputs, int ninputs,
				  const kr_issue_opts *o, kr_issue_summary *sum);

#endif
