/* Inside the SQLite store: the connection and the helpers its files share
 * (sqlite.c, the issuance store and audit log; sqlite_registry.c, the
 * device registry). Nothing outside store/ includes this. */
#ifndef KR_STORE_SQLITE_H
#define KR_STORE_SQLITE_H

#include "store.h"
#include "detail.h"

#include <sqlite3.h>

enum {
	Q_PRIOR,
	Q_RESERVE,
	Q_ISSUED,
	Q_REJECTED,
	Q_AUDIT_HEAD,
	Q_AUDIT_ADD,
	Q_DEVICE_PUT,
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

/* sqlite_registry.c's statements, prepared at first use. */
#define SQ_REGISTRY_STATEMENTS 16
/* sqlite_service.c's. */
#define SQ_SERVICE_STATEMENTS 8

/* What a transaction keeps in memory: the audit chain's head, and the
 * profile-id counter, counted here and written at the commit (one
 * statement per chunk, not per request). */
typedef struct sq_cache {
	int head_valid;
	int64_t head_seq;
	uint8_t head[32];
	int pid_valid, pid_dirty;
	int64_t pid;
} sq_cache;

struct kr_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *q[Q_COUNT];
	sqlite3_stmt *rq[SQ_REGISTRY_STATEMENTS];
	sqlite3_stmt *sv[SQ_SERVICE_STATEMENTS];
	sqlite3_stmt *pub_add; /* keyrite publish: INSERT INTO current */
	sq_cache c;
	/* the caches as they were at kr_txn_mark, for kr_txn_undo */
	sq_cache mark;
	int marked;
};

/* An error with SQLite's text: "PATH: what: message". */
KR_MUST_USE kr_err sq_err(kr_store *s, const char *what);
KR_MUST_USE kr_err sq_exec(kr_store *s, const char *sql);
KR_MUST_USE kr_err sq_prepare(kr_store *s, const char *sql, sqlite3_stmt **st);
/* A prepared statement of the Q_ list, reset and unbound. */
sqlite3_stmt *sq_q(kr_store *s, int i);
/* *slot prepared from sql at its first use (kept until the store closes),
 * reset and unbound: sqlite_registry.c's and sqlite_service.c's caches. */
KR_MUST_USE kr_err sq_cached(kr_store *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out);
/* NULL binds NULL. */
void sq_text(sqlite3_stmt *st, int i, const char *v);
void sq_blob(sqlite3_stmt *st, int i, const void *v, size_t n);
/* Steps a statement that changes rows (or gives one). */
KR_MUST_USE kr_err sq_done(kr_store *s, sqlite3_stmt *st, const char *what);
/* Appends an entry to the audit chain (inside the caller's transaction). */
KR_MUST_USE kr_err sq_audit(kr_store *s, const char *kind, const kr_detail *d);
void sq_now(char out[21]);

#endif
