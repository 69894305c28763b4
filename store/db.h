/* Inside the store: the database under it. The store's SQL (sql.c,
 * sql_registry.c, sql_service.c) is written once against this contract, in
 * the SQL that SQLite and PostgreSQL share; a driver (db_sqlite.c,
 * db_pg.c) runs it and owns what differs: the connection, placeholders,
 * how a transaction takes the store's write lock, where the format is
 * recorded, and the schema a new store starts from. Nothing outside store/
 * includes this. */
#ifndef KR_STORE_DB_H
#define KR_STORE_DB_H

#include "../util/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kr_store kr_store;
typedef struct db_stmt db_stmt;

enum { DB_DONE = 0, DB_ROW = 1, DB_ERROR = -1 };

typedef struct db_driver {
	const char *name;
	/* The schema of a new store and the format it is: later formats are
	 * the steps both drivers share (sql.c). */
	const char *schema;
	int schema_format;
	/* the types of a column of octets and of text, in a table made later */
	const char *blob_type, *text_type;
	/* Profile ids from a sequence of the database's own, if it has one:
	 * sequences makes it (format 9, from the store's counter) and
	 * profile_ids gives ?1 new ids, a row each. NULL: the store's counter,
	 * under its write lock. */
	const char *sequences, *profile_ids;
	KR_MUST_USE kr_err (*open)(kr_store *s, const char *where, int create);
	/* closing: the store's statements are finalized next, then close; a
	 * server's prepared statements end with the connection, so none is
	 * released one by one (a round trip each). NULL if nothing to do. */
	void (*closing)(kr_store *s);
	void (*close)(kr_store *s);
	/* *format: 0 for an empty database; a foreign one is refused. */
	KR_MUST_USE kr_err (*identity)(kr_store *s, int64_t *format);
	KR_MUST_USE kr_err (*set_format)(kr_store *s, int format);
	KR_MUST_USE kr_err (*check)(kr_store *s);
	KR_MUST_USE kr_err (*exec)(kr_store *s, const char *sql);
	/* A transaction holding the store's write lock: one writer at a time
	 * on SQLite (BEGIN IMMEDIATE) and across every node on PostgreSQL. */
	/* begin_snapshot: a transaction that reads one snapshot of the store
	 * and writes only what no other command writes meanwhile (keyrite
	 * publish's record of a zone): it need not hold the store's write
	 * lock while it reads. */
	KR_MUST_USE kr_err (*begin_snapshot)(kr_store *s);
	KR_MUST_USE kr_err (*begin)(kr_store *s);
	KR_MUST_USE kr_err (*prepare)(kr_store *s, const char *sql, db_stmt **out);
	int (*step)(db_stmt *st);
	void (*reset)(db_stmt *st);
	void (*finalize)(db_stmt *st);
	void (*bind_int)(db_stmt *st, int i, int64_t v);
	void (*bind_text)(db_stmt *st, int i, const char *v);
	void (*bind_blob)(db_stmt *st, int i, const void *v, size_t n);
	int64_t (*col_int)(db_stmt *st, int col);
	const char *(*col_text)(db_stmt *st, int col);
	const void *(*col_blob)(db_stmt *st, int col);
	size_t (*col_bytes)(db_stmt *st, int col);
	int (*col_null)(db_stmt *st, int col);
	/* The rows the last statement changed. */
	long (*changes)(kr_store *s);
	const char *(*errmsg)(kr_store *s);
} db_driver;

extern const db_driver kr_db_sqlite, kr_db_pg;

/* Every statement starts with its driver, so that the calls below find it. */
struct db_stmt {
	const db_driver *drv;
};

static inline int db_step(db_stmt *st) { return st->drv->step(st); }
static inline void db_reset(db_stmt *st) { st->drv->reset(st); }
static inline void db_finalize(db_stmt *st)
{
	if (st)
		st->drv->finalize(st);
}
static inline void db_int(db_stmt *st, int i, int64_t v) { st->drv->bind_int(st, i, v); }
/* NULL binds NULL; the text and bytes are the caller's until the step. */
static inline void db_text(db_stmt *st, int i, const char *v) { st->drv->bind_text(st, i, v); }
static inline void db_blob(db_stmt *st, int i, const void *v, size_t n)
{
	st->drv->bind_blob(st, i, v, n);
}
static inline int64_t db_col_int(db_stmt *st, int c) { return st->drv->col_int(st, c); }
static inline const char *db_col_text(db_stmt *st, int c) { return st->drv->col_text(st, c); }
static inline const void *db_col_blob(db_stmt *st, int c) { return st->drv->col_blob(st, c); }
static inline size_t db_col_bytes(db_stmt *st, int c) { return st->drv->col_bytes(st, c); }
static inline int db_col_null(db_stmt *st, int c) { return st->drv->col_null(st, c); }
/* A column the schema keeps small (a reason code, a flag, a count): an int. */
static inline int db_col_small(db_stmt *st, int c) { return (int)st->drv->col_int(st, c); }

#endif
