/* store: the issuance store and its audit log, below everything that
 * records. Every CA, device, batch, request, certificate, CRL and audit
 * entry keyrite records, in one SQLite file or one PostgreSQL database.
 * All SQL lives behind this header, in store/sql*.c, written once over
 * store/db.h's drivers (db_sqlite.c, db_pg.c); the log's formats
 * (store/log.h, store/detail.h) and its verification (store/audit.h) are
 * the backends' common part.
 *
 * Names: a function that changes the store is named for what it does
 * (kr_store_reserve, kr_store_revoke, kr_store_add_crl), one that reads it
 * for what it gives (kr_store_certs, kr_store_revocations, kr_store_priors).
 *
 * A certificate row is reserved ('pending', with its serial) before the HSM
 * signs and completed ('valid', with its DER) after; a row still pending when
 * a batch starts belongs to a run that was killed, and is retired
 * ('abandoned'), never reused. */
#ifndef KR_STORE_STORE_H
#define KR_STORE_STORE_H

#include "../util/err.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kr_store kr_store;

/* where: a file (SQLite), or "postgresql:" and a libpq connection string
 * (several signing nodes on one database, docs/scaling.md). create: make
 * the file if it does not exist (a PostgreSQL database is made by its
 * administrator; its tables are made here). A file or database that is
 * not a keyrite store, or is a newer keyrite's, is refused and left
 * untouched; an older store is migrated in one transaction. node: this
 * process's node number (keyrite-ca(5) node; 0 for none): the rows it
 * reserves and the audit chain it extends are its own, and only its own
 * killed runs' rows are retired. */
KR_MUST_USE kr_err kr_store_open(const char *where, int create, int node, kr_store **out);
/* The libpq connection string of a where naming a PostgreSQL database
 * ("postgresql:CONNINFO", possibly empty), or NULL for a file. */
const char *kr_store_conninfo(const char *where);
void kr_store_close(kr_store *s);
int kr_store_node(const kr_store *s);

/* SQLite's integrity_check over the whole file (on PostgreSQL, that every
 * table answers); KR_EVERIFY if damaged. */
KR_MUST_USE kr_err kr_store_check(kr_store *s);

/* A transaction that rolls back when it goes out of scope unless it was
 * committed: the one way keyrite changes the store.
 *
 *	KR_TXN(t);
 *	KR_TRY(kr_txn_begin(&t, store));
 *	KR_TRY(kr_store_revoke(store, ...));
 *	return kr_txn_commit(&t);
 */
typedef struct kr_txn {
	kr_store *s; /* NULL once committed or rolled back */
} kr_txn;
#define KR_TXN(name) __attribute__((cleanup(kr_txn_end))) kr_txn name = {NULL}
KR_MUST_USE kr_err kr_txn_begin(kr_txn *t, kr_store *s);
/* A transaction that reads one snapshot of the store, whatever other nodes
 * commit meanwhile, and may write only the last publication's records
 * (keyrite publish): it does not hold the other nodes' writes. */
KR_MUST_USE kr_err kr_txn_begin_snapshot(kr_txn *t, kr_store *s);
/* A commit that fails is rolled back. */
KR_MUST_USE kr_err kr_txn_commit(kr_txn *t);
void kr_txn_end(kr_txn *t);
/* One item of a bulk change inside a transaction (a device of keyrite
 * registry): mark before it; keep it, or undo it so that a refused item
 * leaves nothing while the others stay. */
KR_MUST_USE kr_err kr_txn_mark(kr_txn *t);
KR_MUST_USE kr_err kr_txn_keep(kr_txn *t);
KR_MUST_USE kr_err kr_txn_undo(kr_txn *t);

KR_MUST_USE kr_err kr_store_ca_count(kr_store *s, long *n);

/* Registers a CA under name, or checks that name is this certificate. */
KR_MUST_USE kr_err kr_store_register_ca(kr_store *s, const char *name, X509 *cert, int64_t *id);

typedef struct kr_device {
	const char *id, *model, *version;
} kr_device;

/* Adds the devices whose ids are not recorded (a chunk's, in statements
 * of many rows); added[i] says which were. */
KR_MUST_USE kr_err kr_store_add_devices(kr_store *s, const kr_device *d, size_t n, int *added);
/* What the store records of device id: *found 0 if nothing; model and
 * version ("" if unknown) into the caller's buffers. */
KR_MUST_USE kr_err kr_store_device(kr_store *s, const char *id, int *found, char *model,
				   size_t modelsz, char *version, size_t versionsz);
/* A recorded device's new version, with an audit entry 'device' (from, to). */
KR_MUST_USE kr_err kr_store_set_device_version(kr_store *s, const char *id, const char *from,
					       const char *to);

KR_MUST_USE kr_err kr_store_start_batch(kr_store *s, int64_t ca, const char *profile,
					int64_t *batch);

typedef struct kr_batch_counts {
	long issued, rejected, already;
} kr_batch_counts;
KR_MUST_USE kr_err kr_store_finish_batch(kr_store *s, int64_t batch, const kr_batch_counts *c);

/* What the store holds for a CSR under a profile: nothing, or a certificate. */
typedef struct kr_prior {
	int found;
	int64_t batch;
	int node; /* the node that reserved it (kr_store_open's) */
	char status[16];
	uint8_t serial[20];
	size_t serial_len;
	char subject[256]; /* the common name it was issued under */
	uint8_t *der;      /* malloc'd; NULL unless status is valid or revoked */
	size_t der_len;
} kr_prior;
/* What the store holds of n requests (a chunk's, in statements of many),
 * out[i] for csr[i]. */
KR_MUST_USE kr_err kr_store_priors(kr_store *s, int64_t ca, const char *profile,
				   const uint8_t (*csr)[32], size_t n, kr_prior *out);
void kr_prior_clear(kr_prior *p);

/* Retires the pending rows of killed runs; each gets an audit entry. */
KR_MUST_USE kr_err kr_store_abandon_pending(kr_store *s, int64_t ca, long *n);

/* The next profile id, or the next n, never given before on any node:
 * from PostgreSQL's sequence (an id drawn in a transaction that rolls
 * back is not given again), or from SQLite's counter, counted within the
 * transaction and stored at its commit. */
KR_MUST_USE kr_err kr_store_take_profile_id(kr_store *s, int64_t *id);
KR_MUST_USE kr_err kr_store_take_profile_ids(kr_store *s, size_t n, int64_t *ids);

typedef struct kr_cert_row {
	int64_t ca, batch, profile_id;
	const uint8_t *serial;
	size_t serial_len;
	const char *profile, *device_id, *input;
	uint8_t csr_sha256[32];
	/* filled when issued */
	const char *subject, *sans;
	uint8_t spki_sha256[32];
	int64_t not_before, not_after;
	const uint8_t *der;
	size_t der_len;
	uint8_t tbs_sha256[32]; /* for the audit entry */
} kr_cert_row;

/* n pending rows (a chunk's reservations). */
KR_MUST_USE kr_err kr_store_reserve(kr_store *s, const kr_cert_row *rows, size_t n);
/* pending -> valid for n rows (a chunk's), each with an audit entry
 * carrying its tbs_sha256. */
KR_MUST_USE kr_err kr_store_complete(kr_store *s, const kr_cert_row *rows, size_t n);

/* A rejected request, for the record of the batch. */
KR_MUST_USE kr_err kr_store_reject(kr_store *s, int64_t batch, const char *input,
				   const uint8_t *csr_sha256, const char *reason);

typedef struct kr_cert_info {
	const char *ca, *status, *profile, *device_id, *subject, *sans;
	const uint8_t *serial, *der;
	size_t serial_len, der_len;
	int64_t profile_id, not_before, not_after, revoked_at;
	int reason;                 /* -1 when not revoked */
	const uint8_t *spki_sha256; /* 32 bytes, recorded at issuance */
	int withheld;               /* a registry profile whose records are not published
				     * (held, not active, its device deleted) */
} kr_cert_info;

typedef struct kr_cert_filter {
	const char *ca, *status, *device_id;
	const uint8_t *serial;
	size_t serial_len;
} kr_cert_filter;

/* A callback that fails ends the listing with its error. */
typedef KR_MUST_USE kr_err (*kr_cert_cb)(const kr_cert_info *c, void *arg);
KR_MUST_USE kr_err kr_store_certs(kr_store *s, const kr_cert_filter *f, kr_cert_cb cb, void *arg);

/* Revokes one certificate; KR_EINPUT if it does not exist or is not valid. */
KR_MUST_USE kr_err kr_store_revoke(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
				   int reason, int64_t when);

typedef KR_MUST_USE kr_err (*kr_revoked_cb)(const uint8_t *serial, size_t len, int64_t when,
					    int reason, void *arg);
KR_MUST_USE kr_err kr_store_revocations(kr_store *s, int64_t ca, kr_revoked_cb cb, void *arg);

KR_MUST_USE kr_err kr_store_next_crl_number(kr_store *s, int64_t ca, int64_t *number);
KR_MUST_USE kr_err kr_store_add_crl(kr_store *s, int64_t ca, int64_t number, int64_t this_update,
				    int64_t next_update, long nrevoked, const uint8_t *der,
				    size_t len);

/* A firmware signature: recorded with an audit entry 'firmware'. */
typedef struct kr_fw_row {
	const char *signer, *file, *format, *output;
	const char *recipients;                      /* encrypted to: comma list, or NULL */
	const uint8_t *signer_sha256, *image_sha256; /* 32 bytes each */
	int64_t size;
	const char *package; /* CMS: the package's identifier (OID) and version; else NULL */
	int64_t package_version;
	const char *time; /* read back: when it was recorded; the package is in its audit entry */
} kr_fw_row;
KR_MUST_USE kr_err kr_store_add_firmware(kr_store *s, const kr_fw_row *r);
/* Every firmware signature recorded, oldest first. */
typedef KR_MUST_USE kr_err (*kr_fw_row_cb)(const kr_fw_row *r, void *arg);
KR_MUST_USE kr_err kr_store_firmware(kr_store *s, kr_fw_row_cb cb, void *arg);

/* ---- publication (keyrite publish): the records last published per zone.
 * In one transaction: begin opens an empty set of current records; add
 * fills it; diff calls gone for each record published last time and not
 * now, and added for each new one (both sorted); commit makes the current
 * set the published one. */
KR_MUST_USE kr_err kr_store_publish_begin(kr_store *s);
KR_MUST_USE kr_err kr_store_publish_add(kr_store *s, const char *owner, const char *type,
					const char *rdata);
typedef KR_MUST_USE kr_err (*kr_record_cb)(const char *owner, const char *type, const char *rdata,
					   void *arg);
KR_MUST_USE kr_err kr_store_publish_diff(kr_store *s, const char *zone, kr_record_cb gone,
					 kr_record_cb added, void *arg);
KR_MUST_USE kr_err kr_store_publish_commit(kr_store *s, const char *zone);

/* ---- the audit log: a hash chain per node (each entry's hash covers its
 * node's entry before it, log.h), its entries numbered in one order for
 * the whole store (seq) and in its own (node_seq) */

/* This process's node's chain head: its last entry (seq 0 if none). */
typedef struct kr_audit_head {
	int64_t seq, node_seq;
	uint8_t hash[32];
} kr_audit_head;
KR_MUST_USE kr_err kr_store_audit_head(kr_store *s, kr_audit_head *h);

typedef struct kr_audit_entry {
	int64_t seq;
	int node;
	int64_t node_seq;
	const char *time, *kind, *detail;
	const uint8_t *prev, *hash;
	/* the columns lookups use, taken from the detail when it was written
	 * (audit verify checks them against it): 0, NULL when absent */
	int64_t ca;
	const uint8_t *serial;
	size_t serial_len;
	const char *device;
} kr_audit_entry;
typedef KR_MUST_USE kr_err (*kr_audit_cb)(const kr_audit_entry *e, void *arg);
KR_MUST_USE kr_err kr_store_audit_walk(kr_store *s, kr_audit_cb cb, void *arg);

typedef struct kr_checkpoint {
	int64_t seq; /* the entry whose node's chain head it signed */
	int node;
	const char *ca, *time;
	const uint8_t *head, *sig, *ca_der;
	size_t sig_len, ca_der_len;
	const uint8_t *signer_der; /* a firmware signer's certificate, or NULL: the CA's key */
	size_t signer_der_len;
} kr_checkpoint;
/* 1 if the entry seq already has a checkpoint. */
KR_MUST_USE kr_err kr_store_has_checkpoint(kr_store *s, int64_t seq, int *yes);
/* A signature over this node's head h; signer: the DER certificate of the
 * firmware signer that signed, under CA ca; NULL when the CA's own key
 * signed. */
KR_MUST_USE kr_err kr_store_add_checkpoint(kr_store *s, int64_t ca, const kr_audit_head *h,
					   const uint8_t *sig, size_t len, const uint8_t *signer,
					   size_t signer_len);
typedef KR_MUST_USE kr_err (*kr_checkpoint_cb)(const kr_checkpoint *c, void *arg);
KR_MUST_USE kr_err kr_store_checkpoints(kr_store *s, kr_checkpoint_cb cb, void *arg);

/* The audit entries that name a serial (its issue, its revocation), in order. */
KR_MUST_USE kr_err kr_store_history(kr_store *s, const uint8_t *serial, size_t len, kr_audit_cb cb,
				    void *arg);

/* The audit entries that name a device, in order. */
KR_MUST_USE kr_err kr_store_device_history(kr_store *s, const char *device, kr_audit_cb cb,
					   void *arg);

/* ---- audit verification: the store's state set against the one its log
 * describes. expect_begin makes empty scratch tables (this connection
 * only). expect_cert records, in log order, what an entry says of a
 * certificate (a later entry replaces what an earlier one said), and gives
 * what the log said of it before (*prior, "" for nothing). expect_crl does
 * the same for a CRL (*again: the log recorded that CRL before). state_certs
 * then calls cb for every certificate the store or the log knows, the two
 * sides side by side; state_crls for every CRL; revoked_before lists the
 * revocations of CA ca that the log had made before entry seq. */
typedef struct kr_expect_cert {
	int64_t ca;
	const uint8_t *serial;
	size_t serial_len;
	const char *status; /* valid, revoked, abandoned */
	int reason;         /* revoked */
	int64_t at;         /* revoked: when; -1 unknown (an older entry) */
	const uint8_t *tbs; /* issued: the to-be-signed part's SHA-256 */
	int64_t seq;        /* the entry's */
} kr_expect_cert;

typedef struct kr_cert_state {
	int64_t ca;
	const uint8_t *serial;
	size_t serial_len;
	/* the store's row: status NULL when it has none */
	const char *status;
	int64_t revoked_at;
	int reason;
	const uint8_t *der;
	size_t der_len;
	/* the log's: want.status NULL when it says nothing of it; issue_seq
	 * and revoke_seq 0 for no such entry */
	kr_expect_cert want;
	int64_t issue_seq, revoke_seq;
} kr_cert_state;

typedef struct kr_crl_state {
	int64_t ca, number;
	const uint8_t *der; /* the store's; NULL when it has none */
	size_t der_len;
	int logged;            /* the log records it */
	const uint8_t *sha256; /* ... and its DER's SHA-256, or NULL (an older entry) */
	int64_t seq;           /* of that entry */
} kr_crl_state;

KR_MUST_USE kr_err kr_store_expect_begin(kr_store *s);
KR_MUST_USE kr_err kr_store_expect_cert(kr_store *s, const kr_expect_cert *c, char prior[16]);
KR_MUST_USE kr_err kr_store_expect_crl(kr_store *s, int64_t ca, int64_t number,
				       const uint8_t *sha256, int64_t seq, int *again);
typedef KR_MUST_USE kr_err (*kr_cert_state_cb)(const kr_cert_state *c, void *arg);
KR_MUST_USE kr_err kr_store_state_certs(kr_store *s, kr_cert_state_cb cb, void *arg);
typedef KR_MUST_USE kr_err (*kr_crl_state_cb)(const kr_crl_state *c, void *arg);
KR_MUST_USE kr_err kr_store_state_crls(kr_store *s, kr_crl_state_cb cb, void *arg);
KR_MUST_USE kr_err kr_store_revocations_before(kr_store *s, int64_t ca, int64_t seq,
					       kr_revoked_cb cb, void *arg);

#endif
