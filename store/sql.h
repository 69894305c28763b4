/* Inside the store: the connection and the helpers its files share (sql.c,
 * the issuance store and audit log; sql_registry.c, the device registry;
 * sql_service.c, the online service's records), over the driver of
 * db.h. Nothing outside store/ includes this. */
#ifndef KR_STORE_SQL_H
#define KR_STORE_SQL_H

#include "store.h"
#include "db.h"
#include "detail.h"

/* The store's format: sql.c's steps take an older one up to it. */
#define KR_STORE_VERSION 9

enum {
	Q_REJECTED,
	Q_AUDIT_HEAD,
	Q_AUDIT_LAST,
	Q_AUDIT_ADD,
	Q_DEVICE_GET,
	Q_PROFILE_ID,
	Q_PROFILE_ID_SET,
	Q_FIRMWARE,
	Q_REVOKE,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	Q_COUNT
};

/* sql_registry.c's statements, prepared at first use. */
#define SQ_REGISTRY_STATEMENTS 16
/* sql_service.c's. */
#define SQ_SERVICE_STATEMENTS 8

/* Statements of 1, 2, 4, ... 64 rows (sql.c's sq_piece), of each kind. */
#define SQ_PIECES 7
enum { SQ_DEVICES, SQ_PRIORS, SQ_AUDITS, SQ_ISSUED, SQ_RESERVES, SQ_ROW_KINDS };

/* What a transaction keeps in memory: the audit chain's head (under the
 * store's lock no other node appends meanwhile), and, where the database
 * has no sequence for them (SQLite), the profile-id counter, counted here
 * and written at the commit (one statement per chunk, not per request). */
typedef struct sq_cache {
	int head_valid;
	int64_t last_seq;   /* the store's last entry, whichever node wrote it */
	kr_audit_head head; /* this node's chain head */
	int pid_valid, pid_dirty;
	int64_t pid;
} sq_cache;

struct kr_store {
	const db_driver *drv;
	void *conn; /* the driver's */
	/* what messages name: the file, or the database (never its password) */
	char *path;
	int node; /* kr_store_open's */
	db_stmt *q[Q_COUNT];
	db_stmt *rq[SQ_REGISTRY_STATEMENTS];
	db_stmt *sv[SQ_SERVICE_STATEMENTS];
	db_stmt *pub_add;     /* keyrite publish: INSERT INTO current */
	db_stmt *profile_ids; /* the driver's profile_ids, prepared at first use */
	db_stmt *pieces[SQ_ROW_KINDS][SQ_PIECES];
	sq_cache c;
	/* the caches as they were at kr_txn_mark, for kr_txn_undo */
	sq_cache mark;
	int marked;
};

/* An error with the database's text: "PATH: what: message". */
KR_MUST_USE kr_err sq_err(kr_store *s, const char *what);
KR_MUST_USE kr_err sq_exec(kr_store *s, const char *sql);
KR_MUST_USE kr_err sq_prepare(kr_store *s, const char *sql, db_stmt **st);
/* A prepared statement of the Q_ list, reset and unbound. */
db_stmt *sq_q(kr_store *s, int i);
/* *slot prepared from sql at its first use (kept until the store closes),
 * reset and unbound: sql_registry.c's and sql_service.c's caches. */
KR_MUST_USE kr_err sq_cached(kr_store *s, db_stmt **slot, const char *sql, db_stmt **out);
/* Ends the open transaction, keeping nothing of it. */
void sq_rollback(kr_store *s);
/* Steps a statement that changes rows (or gives one). */
KR_MUST_USE kr_err sq_done(kr_store *s, db_stmt *st, const char *what);
/* Appends an entry to the audit chain (inside the caller's transaction). */
KR_MUST_USE kr_err sq_audit(kr_store *s, const char *kind, const kr_detail *d);
void sq_now(char out[21]);

#endif
