/* Shared by the publish/ sources only. */
#ifndef KR_PUBLISH_INTERNAL_H
#define KR_PUBLISH_INTERNAL_H

#include "publish.h"

#include <ldns/ldns.h>

typedef enum kr_rec_kind { KR_REC_DEVICE, KR_REC_CERT, KR_REC_SERVER, KR_REC_ROOT } kr_rec_kind;

/* A record the store calls for (live) or forbids (a revoked or expired
 * certificate's, which must not be published). */
typedef struct kr_rec {
	kr_rec_kind kind;
	int live;
	const char *why;  /* when not live: "revoked", "expired", "withheld ..." */
	const char *what; /* "device ID serial S", "server HOST", "root" */
	ldns_rr *rr;      /* borrowed for the callback */
} kr_rec;

typedef KR_MUST_USE kr_err (*kr_rec_cb)(const kr_rec *r, void *arg);

/* Every record of the zone the store and configuration call for, and those
 * of certificates that must no longer be published. */
KR_MUST_USE kr_err kr_publish_records(const kr_config *cfg, kr_store *store, const kr_zone_conf *z,
				      kr_rec_cb cb, void *arg);

/* Every CA certificate of the configuration (the CAs' own and their
 * chains: roots, sub-CAs, cross certificates), once each. */
KR_MUST_USE kr_err kr_publish_ca_certs(const kr_config *cfg, STACK_OF(X509) * *out);

/* ldns's status as an error. */
KR_MUST_USE kr_err kr_ldns_err(ldns_status st, kr_code code, const char *what, const char *name);

/* The rdata of rr in presentation form (malloc'd). */
char *kr_rr_rdata(const ldns_rr *rr);

/* DNSSEC: signs the zone with the configured KSK and ZSK (kr_publish has
 * checked that both are configured); fills ds. */
KR_MUST_USE kr_err kr_publish_sign(const kr_zone_conf *z, const kr_hsm_opts *hsm,
				   ldns_dnssec_zone *zone, kr_publish_summary *sum);

/* Prints the (signed) zone to out as ldns would, on every core. */
KR_MUST_USE kr_err kr_publish_print(FILE *out, const ldns_dnssec_zone *zone);

#endif
