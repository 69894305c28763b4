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
#include "requests.h"

#include <stdio.h>

/* A caller that decides each request's fate and records with it: the
 * registry, for whom a certificate is a device's profile. With a gate,
 * requests are not matched by CSR ("already issued") and manifests do not
 * register devices: the gate does both, inside issuance's transactions. */
typedef enum kr_gate_verdict {
	KR_GATE_ISSUE,   /* issue, under *profile_id */
	KR_GATE_ALREADY, /* done before: nothing to sign */
	KR_GATE_REFUSE,  /* why says why, code its kind */
} kr_gate_verdict;

typedef struct kr_issue_gate {
	/* In the reserving transaction, for each request that parsed. */
	KR_MUST_USE kr_err (*admit)(void *arg, kr_store *s, const kr_input *in, kr_gate_verdict *v,
				    int64_t *profile_id, char *why, size_t whysz, kr_code *code);
	/* In the recording transaction, once the certificate is recorded. */
	KR_MUST_USE kr_err (*issued)(void *arg, kr_store *s, const kr_input *in, int64_t profile_id,
				     int64_t ca, const uint8_t *serial, size_t len);
	/* Every request's outcome, once committed: "issued", "already-issued"
	 * or "rejected" with its reason and kind (the gate's code, the
	 * source's error_code, else KR_EINPUT); der: an issued certificate. */
	void (*outcome)(void *arg, const kr_input *in, const char *status, const char *reason,
			kr_code code, int64_t profile_id, const uint8_t *der, size_t der_len);
	void *arg;
} kr_issue_gate;

typedef struct kr_issue_opts {
	const char *out_dir;       /* NULL: the certificates stay in the store only */
	FILE *json;                /* one JSON object per request, or NULL */
	FILE *report;              /* one line per rejected request, the summary */
	int progress;              /* a progress line on stderr */
	int chunk;                 /* requests per transaction; 0: 1000 */
	const kr_issue_gate *gate; /* or NULL */
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
/* The same, from requests the caller's reader gives. */
KR_MUST_USE kr_err kr_issue_batch_read(kr_config *cfg, kr_store *store, kr_authority *ca,
				       const kr_profile *p, kr_reader *rd, const kr_issue_opts *o,
				       kr_issue_summary *sum);

#endif
