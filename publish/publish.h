/* Publication: the issuance store turned into what a registry publishes.
 * TLSA records for device identities (draft-ietf-dance-client-auth) and
 * servers (RFC 6698), RFC 4398 CERT records, the root as _rootcert TLSA,
 * .well-known/ca/<SKI>.pem files for PKIX certificate discovery
 * (draft-wilson-dane-pkix-cd), optionally DNSSEC-signed with keys on the
 * token; and a check of what is published against the store. */
#ifndef KR_PUBLISH_H
#define KR_PUBLISH_H

#include "../hsm/hsm.h"
#include "../store/store.h"
#include "../policy/config.h"

#include <stdio.h>

typedef struct kr_publish_opts {
	const char *out_dir;
	int soa;             /* a complete zone (SOA, NS), not a fragment to include */
	int sign;            /* DNSSEC-sign with the zone's KSK and ZSK on the token */
	const char *changes; /* write the difference from the last publication (nsupdate) */
	kr_hsm_opts hsm;
} kr_publish_opts;

typedef struct kr_publish_summary {
	long devices, servers, certs, roots, ca_files, records, added, removed;
	long messages; /* DNS UPDATE messages in the changes file */
	char zone_file[4096];
	char ds[2][512]; /* --sign: the KSK's DS records for the parent (SHA-256, SHA-384) */
} kr_publish_summary;

/* Writes DIR/ZONE.zone (replaced atomically) and DIR/.well-known/ca/, and
 * records what was published. Only valid, unexpired certificates whose
 * names lie in the zone are published. */
KR_MUST_USE kr_err kr_publish(const kr_config *cfg, kr_store *store, const kr_zone_conf *z,
			      const kr_publish_opts *o, kr_publish_summary *sum);

typedef struct kr_check_opts {
	const char *zone_file; /* compare with this zone file, or */
	const char *server;    /* ask this server: ADDR or ADDR:PORT, ADDR IPv4 or [IPv6] */
} kr_check_opts;

typedef struct kr_check_summary {
	long expected, match, missing, mismatched, stale;
} kr_check_summary;

/* One line on report per problem: missing, mismatched, or stale (a
 * revoked, expired or unknown certificate still published). KR_EVERIFY if
 * there is any. */
KR_MUST_USE kr_err kr_publish_check(const kr_config *cfg, kr_store *store, const kr_zone_conf *z,
				    const kr_check_opts *o, FILE *report, kr_check_summary *sum);

/* One certificate's records, as kr_publish would write them (a device's
 * TLSA and CERT), in presentation form; and what a DNS server (as
 * kr_check_opts.server) answers for an owner name and type: the web
 * console's live check of one device, the comparison publish check makes. */
typedef KR_MUST_USE kr_err (*kr_record_cb)(const char *owner, const char *type, const char *rdata,
					   void *arg);
KR_MUST_USE kr_err kr_publish_cert_records(const kr_config *cfg, const kr_zone_conf *z,
					   const kr_cert_info *c, kr_record_cb cb, void *arg);
KR_MUST_USE kr_err kr_publish_ask(const char *server, const char *owner, const char *type,
				  kr_record_cb cb, void *arg);

#endif
