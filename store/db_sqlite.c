/* The SQLite driver (store/db.h): one file, WAL journal, synchronous=FULL,
 * so that a committed batch survives a killed process and a power cut;
 * callers commit many rows per transaction, so the fsync is paid once per
 * chunk. */
#include "sql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KR_STORE_APP_ID 0x6b726974 /* "krit" */

typedef struct sq_stmt {
	db_stmt base;
	sqlite3_stmt *st;
} sq_stmt;

static sqlite3 *conn(kr_store *s) { return s->conn; }
static sqlite3_stmt *raw(db_stmt *st) { return ((sq_stmt *)st)->st; }

/* A file SQLite cannot make sense of is not a store (bad input); one it
 * cannot read or write (a full disk, a read-only directory for its WAL) is
 * an I/O failure, whatever the file holds. */
static KR_MUST_USE kr_err read_err(kr_store *s, int rc)
{
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		return kr_errf(KR_EINPUT, "%s: not a keyrite store or damaged (%s)", s->path,
			       sqlite3_errstr(rc));
	return kr_errf(KR_EIO, "%s: cannot read: %s", s->path, sqlite3_errstr(rc));
}

static KR_MUST_USE kr_err pragma_int(kr_store *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(conn(s), sql, -1, &st, NULL) != SQLITE_OK)
		return read_err(s, sqlite3_errcode(conn(s)));
	int rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? kr_ok() : read_err(s, rc);
}

static KR_MUST_USE kr_err sq_exec_raw(kr_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(conn(s), sql, NULL, NULL, &msg);
	kr_err e = rc == SQLITE_OK
			   ? kr_ok()
			   : kr_errf(KR_EIO, "%s: %s", s->path, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return e;
}

/* kr_day(unix time): its UTC date, as PostgreSQL's schema defines it too. */
static void day_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	time_t t = (time_t)sqlite3_value_int64(argv[0]);
	struct tm tm;
	char out[16];
	if (!gmtime_r(&t, &tm) || strftime(out, sizeof out, "%Y-%m-%d", &tm) == 0) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

static KR_MUST_USE kr_err sq_open(kr_store *s, const char *path, int create)
{
	KR_ENSURE(create || access(path, F_OK) == 0, KR_EINPUT,
		  "%s: no such store (keyrite issue makes one)", path);
	s->path = strdup(path);
	KR_ENSURE(s->path, KR_EINTERNAL, "out of memory");
	int flags =
		SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	s->conn = db;
	KR_ENSURE(rc == SQLITE_OK, KR_EIO, "%s: cannot open: %s", path,
		  db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_busy_timeout(db, 10000);
	KR_ENSURE(sqlite3_create_function(db, "kr_day", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
					  day_fn, NULL, NULL) == SQLITE_OK,
		  KR_EIO, "%s: %s", path, sqlite3_errmsg(db));
	int64_t app = 0, format = 0, tables = 0;
	KR_TRY(pragma_int(s, "PRAGMA application_id", &app));
	KR_TRY(pragma_int(s, "PRAGMA user_version", &format));
	KR_TRY(pragma_int(s, "SELECT count(*) FROM sqlite_master", &tables));
	KR_ENSURE((app == 0 && format == 0 && tables == 0) || app == KR_STORE_APP_ID, KR_EINPUT,
		  "%s: not a keyrite store (SQLite application_id 0x%llx); refusing to touch it",
		  s->path, (unsigned long long)app);
	/* A chunk of a bulk registry command dirties a page or more per device;
	 * a 16 MiB cache keeps SQLite from spilling them to the WAL before the
	 * commit (it writes each once, at the commit). */
	return sq_exec_raw(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			      " PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384");
}

static void sq_close(kr_store *s) { sqlite3_close(conn(s)); }

static KR_MUST_USE kr_err sq_identity(kr_store *s, int64_t *format)
{
	return pragma_int(s, "PRAGMA user_version", format);
}

static KR_MUST_USE kr_err sq_set_format(kr_store *s, int format)
{
	char sql[96];
	snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 KR_STORE_APP_ID, format);
	return sq_exec_raw(s, sql);
}

/* A full read of the file: O(size), so not on every open (damage met in
 * normal work surfaces as SQLITE_CORRUPT from the statement that meets it). */
static KR_MUST_USE kr_err sq_check(kr_store *s)
{
	sqlite3_stmt *st = NULL;
	KR_ENSURE(sqlite3_prepare_v2(conn(s), "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK,
		  KR_EINPUT, "%s: damaged: %s", s->path, sqlite3_errmsg(conn(s)));
	int rc = sqlite3_step(st);
	const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	kr_err e = res && strcmp(res, "ok") == 0 ? kr_ok()
						 : kr_errf(KR_EVERIFY, "%s: damaged: %s", s->path,
							   res ? res : sqlite3_errstr(rc));
	sqlite3_finalize(st);
	return e;
}

static KR_MUST_USE kr_err sq_begin(kr_store *s) { return sq_exec_raw(s, "BEGIN IMMEDIATE"); }

static KR_MUST_USE kr_err sq_prepare_drv(kr_store *s, const char *sql, db_stmt **out)
{
	sq_stmt *st = calloc(1, sizeof *st);
	KR_ENSURE(st, KR_EINTERNAL, "out of memory");
	st->base.drv = &kr_db_sqlite;
	if (sqlite3_prepare_v3(conn(s), sql, -1, SQLITE_PREPARE_PERSISTENT, &st->st, NULL) !=
	    SQLITE_OK) {
		free(st);
		return kr_errf(KR_EIO, "%s: preparing a statement: %s", s->path,
			       sqlite3_errmsg(conn(s)));
	}
	*out = &st->base;
	return kr_ok();
}

static int sq_step(db_stmt *st)
{
	int rc = sqlite3_step(raw(st));
	return rc == SQLITE_ROW ? DB_ROW : rc == SQLITE_DONE ? DB_DONE : DB_ERROR;
}

static void sq_reset(db_stmt *st)
{
	sqlite3_reset(raw(st));
	sqlite3_clear_bindings(raw(st));
}

static void sq_finalize(db_stmt *st)
{
	sqlite3_finalize(raw(st));
	free(st);
}

static void sq_int(db_stmt *st, int i, int64_t v) { sqlite3_bind_int64(raw(st), i, v); }

static void sq_text(db_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(raw(st), i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(raw(st), i);
}

static void sq_blob(db_stmt *st, int i, const void *v, size_t n)
{
	if (v)
		sqlite3_bind_blob(raw(st), i, v, (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_null(raw(st), i);
}

static int64_t sq_col_int(db_stmt *st, int c) { return sqlite3_column_int64(raw(st), c); }
static const char *sq_col_text(db_stmt *st, int c)
{
	return (const char *)sqlite3_column_text(raw(st), c);
}
static const void *sq_col_blob(db_stmt *st, int c) { return sqlite3_column_blob(raw(st), c); }
static size_t sq_col_bytes(db_stmt *st, int c) { return (size_t)sqlite3_column_bytes(raw(st), c); }
static int sq_col_null(db_stmt *st, int c)
{
	return sqlite3_column_type(raw(st), c) == SQLITE_NULL;
}
static long sq_changes(kr_store *s) { return sqlite3_changes(conn(s)); }
static const char *sq_errmsg(kr_store *s) { return sqlite3_errmsg(conn(s)); }

/* Format 1, the first a SQLite store had; the steps of sql.c take it up. */
static const char schema[] =
	"CREATE TABLE ca (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
	" subject TEXT NOT NULL, der BLOB NOT NULL);"
	"CREATE TABLE device (id TEXT PRIMARY KEY, model TEXT, version TEXT,"
	" registered TEXT NOT NULL);"
	"CREATE TABLE batch (id INTEGER PRIMARY KEY, ca_id INTEGER NOT NULL REFERENCES ca,"
	" profile TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,"
	" issued INTEGER, rejected INTEGER, already INTEGER);"
	"CREATE TABLE cert (id INTEGER PRIMARY KEY, ca_id INTEGER NOT NULL REFERENCES ca,"
	" serial BLOB NOT NULL, status TEXT NOT NULL"
	"  CHECK (status IN ('pending','valid','revoked','abandoned')),"
	" profile TEXT NOT NULL, csr_sha256 BLOB NOT NULL, batch_id INTEGER REFERENCES batch,"
	" input TEXT, device_id TEXT, profile_id INTEGER, subject TEXT, sans TEXT,"
	" spki_sha256 BLOB, not_before INTEGER, not_after INTEGER, der BLOB,"
	" revoked_at INTEGER, reason INTEGER, UNIQUE (ca_id, serial));"
	/* No CSR signed twice under one profile (abandoned rows excepted). */
	"CREATE UNIQUE INDEX cert_request ON cert (ca_id, profile, csr_sha256)"
	" WHERE status <> 'abandoned';"
	"CREATE INDEX cert_device ON cert (device_id);"
	/* Finds the rows of killed runs without reading the whole table. */
	"CREATE INDEX cert_pending ON cert (ca_id) WHERE status = 'pending';"
	"CREATE TABLE rejected (id INTEGER PRIMARY KEY, batch_id INTEGER REFERENCES batch,"
	" input TEXT, csr_sha256 BLOB, reason TEXT NOT NULL);"
	"CREATE TABLE crl (ca_id INTEGER NOT NULL REFERENCES ca, number INTEGER NOT NULL,"
	" this_update INTEGER NOT NULL, next_update INTEGER NOT NULL, der BLOB NOT NULL,"
	" PRIMARY KEY (ca_id, number));"
	"CREATE TABLE audit (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL,"
	" detail TEXT NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL);"
	"CREATE TABLE checkpoint (seq INTEGER PRIMARY KEY, ca_id INTEGER NOT NULL REFERENCES ca,"
	" time TEXT NOT NULL, head BLOB NOT NULL, signature BLOB NOT NULL);"
	"CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO counter VALUES ('profile_id', 10);";

const db_driver kr_db_sqlite = {
	.name = "SQLite",
	.schema = schema,
	.schema_format = 1,
	.blob_type = "BLOB",
	.text_type = "TEXT",
	.open = sq_open,
	.close = sq_close,
	.identity = sq_identity,
	.set_format = sq_set_format,
	.check = sq_check,
	.exec = sq_exec_raw,
	.begin = sq_begin,
	.begin_snapshot = sq_begin, /* one machine: its write lock, as ever */
	.prepare = sq_prepare_drv,
	.step = sq_step,
	.reset = sq_reset,
	.finalize = sq_finalize,
	.bind_int = sq_int,
	.bind_text = sq_text,
	.bind_blob = sq_blob,
	.col_int = sq_col_int,
	.col_text = sq_col_text,
	.col_blob = sq_col_blob,
	.col_bytes = sq_col_bytes,
	.col_null = sq_col_null,
	.changes = sq_changes,
	.errmsg = sq_errmsg,
};
