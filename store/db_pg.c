/* The PostgreSQL driver (store/db.h), over libpq: one database shared by
 * several signing nodes (docs/scaling.md). Statements are prepared on the
 * server at their first step, octets travel as binary parameters and every
 * result comes back in binary, so nothing is quoted or escaped here. A
 * transaction takes one advisory lock, the store's write lock, as SQLite's
 * BEGIN IMMEDIATE does for one file: the audit chain's head is read and
 * extended by one writer at a time on every node, while the HSMs sign
 * outside any transaction. Profile ids come from a sequence (format 9). */
#include "sql.h"

#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the OIDs of the types the store's columns and expressions have
 * (PostgreSQL's src/include/catalog/pg_type.dat) */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25 };

/* pg_advisory_xact_lock's key: "krit", as SQLite's application_id */
#define PG_WRITE_LOCK "1802660212"
#define PG_PARAMS 65535

typedef struct pg_conn {
	PGconn *c;
	long changes;
	unsigned next_name;
	int closing; /* pg_closing's: statements are no longer deallocated */
	char err[512];
} pg_conn;

typedef struct pg_stmt {
	db_stmt base;
	kr_store *s;
	char *sql; /* with $N placeholders */
	char name[16];
	int nparams, prepared;
	/* nparams of each (a statement of many rows has hundreds) */
	const char **val;
	int *len, *fmt;
	/* the types bound (a NULL text or blob has its type too: a parameter
	 * met first in "? IS NULL" is not inferred), and those prepared */
	Oid *type, *prepared_type;
	char (*num)[24];
	PGresult *res;
	int row, nrows;
} pg_stmt;

static pg_conn *conn(kr_store *s) { return s->conn; }
static pg_stmt *pst(db_stmt *st) { return (pg_stmt *)st; }

/* The server's words for what failed: the primary message and its detail,
 * on one line. */
static void keep_error(kr_store *s, const PGresult *res)
{
	pg_conn *pc = conn(s);
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	if (primary)
		snprintf(pc->err, sizeof pc->err, "%s%s%s", primary, detail ? ": " : "",
			 detail ? detail : "");
	else
		snprintf(pc->err, sizeof pc->err, "%s", PQerrorMessage(pc->c));
	for (char *p = pc->err; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? ' ' : '\0';
}

static const char *pg_errmsg(kr_store *s) { return conn(s)->err; }

static int result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static KR_MUST_USE kr_err pg_exec(kr_store *s, const char *sql)
{
	PGresult *res = PQexec(conn(s)->c, sql);
	kr_err e = kr_ok();
	if (!result_ok(res)) {
		keep_error(s, res);
		e = kr_errf(KR_EIO, "%s: %s", s->path, pg_errmsg(s));
	}
	PQclear(res);
	return e;
}

/* SQLite's placeholders (?, ?N) as PostgreSQL's ($N); a ? in a quoted
 * literal is left alone. */
static KR_MUST_USE kr_err translate(const char *sql, char **out, int *nparams)
{
	size_t n = strlen(sql);
	char *t = malloc(n * 6 + 1); /* "?" becomes at most "$99999" */
	KR_ENSURE(t, KR_EINTERNAL, "out of memory");
	int quoted = 0, next = 0, max = 0;
	char *w = t;
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (quoted || *p != '?') {
			*w++ = *p;
			continue;
		}
		int k = next + 1;
		if (p[1] >= '0' && p[1] <= '9') { /* "?N" */
			char *end = NULL;
			k = (int)strtol(p + 1, &end, 10);
			p = end - 1;
		}
		next = k > next ? k : next;
		max = k > max ? k : max;
		w += sprintf(w, "$%d", k);
	}
	*w = '\0';
	if (max > PG_PARAMS) { /* the protocol's limit */
		free(t);
		return kr_errf(KR_EINTERNAL, "a statement with %d parameters", max);
	}
	*out = t;
	*nparams = max;
	return kr_ok();
}

static void free_stmt(pg_stmt *st)
{
	free(st->val);
	free(st->len);
	free(st->fmt);
	free(st->type);
	free(st->prepared_type);
	free(st->num);
	free(st->sql);
	free(st);
}

static KR_MUST_USE kr_err pg_prepare(kr_store *s, const char *sql, db_stmt **out)
{
	pg_stmt *st = calloc(1, sizeof *st);
	KR_ENSURE(st, KR_EINTERNAL, "out of memory");
	st->base.drv = &kr_db_pg;
	st->s = s;
	kr_err e = translate(sql, &st->sql, &st->nparams);
	size_t n = st->nparams > 0 ? (size_t)st->nparams : 1;
	if (!kr_failed(&e)) {
		st->val = calloc(n, sizeof *st->val);
		st->len = calloc(n, sizeof *st->len);
		st->fmt = calloc(n, sizeof *st->fmt);
		st->type = calloc(n, sizeof *st->type);
		st->prepared_type = calloc(n, sizeof *st->prepared_type);
		st->num = calloc(n, sizeof *st->num);
		if (!st->val || !st->len || !st->fmt || !st->type || !st->prepared_type || !st->num)
			e = kr_errf(KR_EINTERNAL, "out of memory");
	}
	if (kr_failed(&e)) {
		free_stmt(st);
		return e;
	}
	*out = &st->base;
	return kr_ok();
}

static void pg_reset(db_stmt *d)
{
	pg_stmt *st = pst(d);
	PQclear(st->res);
	st->res = NULL;
	st->row = st->nrows = 0;
	size_t n = st->nparams > 0 ? (size_t)st->nparams : 1;
	memset(st->val, 0, n * sizeof *st->val);
	memset(st->type, 0, n * sizeof *st->type);
}

static void deallocate(pg_stmt *st)
{
	if (st->prepared && !conn(st->s)->closing && PQstatus(conn(st->s)->c) == CONNECTION_OK) {
		char sql[40];
		snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
		PQclear(PQexec(conn(st->s)->c, sql));
	}
	st->prepared = 0;
}

static void pg_finalize(db_stmt *d)
{
	pg_stmt *st = pst(d);
	pg_reset(d);
	deallocate(st);
	free_stmt(st);
}

/* The statement is prepared on the server at its first run with the types
 * bound (those left unbound inferred from where they stand), and again if
 * a later run binds other types. */
static int run(pg_stmt *st)
{
	pg_conn *pc = conn(st->s);
	size_t types = (size_t)st->nparams * sizeof *st->type;
	if (st->prepared && memcmp(st->type, st->prepared_type, types) != 0)
		deallocate(st);
	if (!st->prepared) {
		snprintf(st->name, sizeof st->name, "kr%u", ++pc->next_name);
		PGresult *res = PQprepare(pc->c, st->name, st->sql, st->nparams, st->type);
		int ok = result_ok(res);
		if (!ok)
			keep_error(st->s, res);
		PQclear(res);
		if (!ok)
			return DB_ERROR;
		st->prepared = 1;
		memcpy(st->prepared_type, st->type, types);
	}
	st->res = PQexecPrepared(pc->c, st->name, st->nparams, st->val, st->len, st->fmt, 1);
	if (!result_ok(st->res)) {
		keep_error(st->s, st->res);
		PQclear(st->res);
		st->res = NULL;
		return DB_ERROR;
	}
	const char *changed = PQcmdTuples(st->res);
	pc->changes = changed && *changed ? strtol(changed, NULL, 10) : 0;
	st->nrows = PQntuples(st->res);
	st->row = 0;
	return DB_DONE;
}

static int pg_step(db_stmt *d)
{
	pg_stmt *st = pst(d);
	if (!st->res && run(st) == DB_ERROR)
		return DB_ERROR;
	if (st->row >= st->nrows)
		return DB_DONE;
	st->row++;
	return DB_ROW;
}

static int param(pg_stmt *st, int i) { return i >= 1 && i <= st->nparams ? i - 1 : -1; }

static void pg_int(db_stmt *d, int i, int64_t v)
{
	pg_stmt *st = pst(d);
	int k = param(st, i);
	if (k < 0)
		return;
	snprintf(st->num[k], sizeof st->num[k], "%lld", (long long)v);
	st->val[k] = st->num[k];
	st->fmt[k] = 0;
	st->type[k] = OID_INT8;
}

static void pg_text(db_stmt *d, int i, const char *v)
{
	pg_stmt *st = pst(d);
	int k = param(st, i);
	if (k < 0)
		return;
	st->val[k] = v;
	st->fmt[k] = 0;
	st->type[k] = OID_TEXT;
}

static void pg_blob(db_stmt *d, int i, const void *v, size_t n)
{
	pg_stmt *st = pst(d);
	int k = param(st, i);
	if (k < 0)
		return;
	st->val[k] = v;
	st->len[k] = (int)n;
	st->fmt[k] = 1;
	st->type[k] = OID_BYTEA;
}

/* the current row: the one the last step gave */
static int here(pg_stmt *st, int col)
{
	return st->res && st->row > 0 && col < PQnfields(st->res) &&
	       !PQgetisnull(st->res, st->row - 1, col);
}

static int pg_col_null(db_stmt *d, int col) { return !here(pst(d), col); }

static int64_t pg_col_int(db_stmt *d, int col)
{
	pg_stmt *st = pst(d);
	if (!here(st, col))
		return 0;
	const char *v = PQgetvalue(st->res, st->row - 1, col);
	uint64_t u = 0;
	switch (PQftype(st->res, col)) {
	case OID_INT8:
		memcpy(&u, v, 8);
		return (int64_t)be64toh(u);
	case OID_INT4: {
		uint32_t w;
		memcpy(&w, v, 4);
		return (int32_t)be32toh(w);
	}
	case OID_INT2: {
		uint16_t h;
		memcpy(&h, v, 2);
		return (int16_t)be16toh(h);
	}
	case OID_BOOL:
		return v[0] != 0;
	default: /* text: SQLite's reading of it */
		return strtoll(v, NULL, 10);
	}
}

static const char *pg_col_text(db_stmt *d, int col)
{
	pg_stmt *st = pst(d);
	return here(st, col) ? PQgetvalue(st->res, st->row - 1, col) : NULL;
}

static const void *pg_col_blob(db_stmt *d, int col) { return pg_col_text(d, col); }

static size_t pg_col_bytes(db_stmt *d, int col)
{
	pg_stmt *st = pst(d);
	return here(st, col) ? (size_t)PQgetlength(st->res, st->row - 1, col) : 0;
}

static long pg_changes(kr_store *s) { return conn(s)->changes; }

/* ---- the connection, the format, the write lock ----------------------------- */

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* NOTICEs ("... already exists, skipping") are not errors */
}

/* What messages name: the database, never the password. */
static KR_MUST_USE kr_err name_it(kr_store *s)
{
	PGconn *c = conn(s)->c;
	const char *host = PQhost(c), *port = PQport(c), *db = PQdb(c);
	char buf[512];
	snprintf(buf, sizeof buf, "postgresql://%s%s%s%s%s/%s", PQuser(c) ? PQuser(c) : "",
		 PQuser(c) && *PQuser(c) ? "@" : "", host && *host != '/' ? host : "localhost",
		 port && *port ? ":" : "", port ? port : "", db ? db : "");
	s->path = strdup(buf);
	KR_ENSURE(s->path, KR_EINTERNAL, "out of memory");
	return kr_ok();
}

/* One row's integers from a query of the driver's own (text results). */
static KR_MUST_USE kr_err query_ints(kr_store *s, const char *sql, int64_t *v, int n, int *rows)
{
	PGresult *res = PQexec(conn(s)->c, sql);
	kr_err e = kr_ok();
	if (!result_ok(res)) {
		keep_error(s, res);
		e = kr_errf(KR_EIO, "%s: cannot read: %s", s->path, pg_errmsg(s));
	} else {
		*rows = PQntuples(res);
		for (int i = 0; i < n; i++)
			v[i] = *rows > 0 && i < PQnfields(res)
				       ? strtoll(PQgetvalue(res, 0, i), NULL, 10)
				       : 0;
	}
	PQclear(res);
	return e;
}

/* The format is a row of keyrite_meta. A database with tables of its own
 * and no such row is not a store, and is refused untouched. */
static KR_MUST_USE kr_err pg_identity(kr_store *s, int64_t *format)
{
	int64_t v[2];
	int rows = 0;
	KR_TRY(query_ints(s,
			  "SELECT (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname ="
			  " current_schema()), (to_regclass('keyrite_meta') IS NOT NULL)::int",
			  v, 2, &rows));
	*format = 0;
	if (v[0] == 0)
		return kr_ok();
	KR_ENSURE(v[1], KR_EINPUT,
		  "%s: not a keyrite store (%lld tables and no keyrite_meta); refusing to touch it",
		  s->path, (long long)v[0]);
	KR_TRY(query_ints(s, "SELECT format FROM keyrite_meta WHERE app = 'keyrite'", format, 1,
			  &rows));
	KR_ENSURE(rows == 1, KR_EINPUT,
		  "%s: not a keyrite store (keyrite_meta has no keyrite row); refusing to touch it",
		  s->path);
	return kr_ok();
}

static KR_MUST_USE kr_err pg_set_format(kr_store *s, int format)
{
	char sql[256];
	snprintf(
		sql, sizeof sql,
		"CREATE TABLE IF NOT EXISTS keyrite_meta (app TEXT NOT NULL, format INTEGER NOT"
		" NULL); DELETE FROM keyrite_meta; INSERT INTO keyrite_meta VALUES ('keyrite', %d)",
		format);
	return pg_exec(s, sql);
}

/* A password written in the CA configuration would travel with every copy
 * of it: libpq's passfile (~/.pgpass, or passfile=) holds it instead. */
static KR_MUST_USE kr_err no_password(const char *conninfo)
{
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
	if (!opts) {
		size_t n = why ? strcspn(why, "\n") : 0; /* libpq ends it with a newline */
		kr_err e = kr_errf(KR_EINPUT, "store: not a PostgreSQL connection string: %.*s",
				   (int)n, why ? why : "");
		PQfreemem(why);
		return e;
	}
	int has = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		has |= strcmp(o->keyword, "password") == 0 && o->val && *o->val;
	PQconninfoFree(opts);
	KR_ENSURE(!has, KR_EINPUT,
		  "store: the connection string holds a password; keep it in libpq's passfile "
		  "(~/.pgpass or passfile=FILE) instead");
	return kr_ok();
}

static KR_MUST_USE kr_err pg_open(kr_store *s, const char *conninfo, int create)
{
	(void)create;
	pg_conn *pc = calloc(1, sizeof *pc);
	KR_ENSURE(pc, KR_EINTERNAL, "out of memory");
	s->conn = pc;
	/* "postgresql://..." is a URI libpq reads whole */
	char uri[1024];
	if (strncmp(conninfo, "//", 2) == 0) {
		snprintf(uri, sizeof uri, "postgresql:%s", conninfo);
		conninfo = uri;
	}
	KR_TRY(no_password(conninfo));
	pc->c = PQconnectdb(conninfo);
	KR_ENSURE(pc->c, KR_EINTERNAL, "out of memory");
	PQsetNoticeProcessor(pc->c, quiet, NULL);
	KR_TRY(name_it(s));
	if (PQstatus(pc->c) != CONNECTION_OK) {
		keep_error(s, NULL);
		return kr_errf(KR_EIO, "%s: cannot connect: %s", s->path, pg_errmsg(s));
	}
	return kr_ok(); /* an empty database is made a store by kr_store_open, if asked */
}

static void pg_closing(kr_store *s) { conn(s)->closing = 1; }

static void pg_close(kr_store *s)
{
	PQfinish(conn(s)->c);
	free(s->conn);
	s->conn = NULL;
}

static KR_MUST_USE kr_err pg_begin(kr_store *s)
{
	return pg_exec(s, "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK ")");
}

/* REPEATABLE READ: every statement sees the snapshot of the first, while
 * the other nodes go on writing (a publication of a large zone, signed on
 * the HSM, would otherwise hold them all). Two publications of one zone
 * at once: the second to record it fails on the first's rows
 * (serialization failure), and is run again. */
static KR_MUST_USE kr_err pg_begin_snapshot(kr_store *s)
{
	return pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ");
}

/* Format 6 (sql.c's formats 1 to 6 at once), in PostgreSQL's types. Text
 * is compared and ordered octet by octet (COLLATE "C"), as SQLite does:
 * device lists page by id, and a prefix is a range of ids. */
#define TXT "TEXT COLLATE \"C\""
#define ID "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
static const char schema[] =
	"CREATE TABLE ca (id " ID ", name " TXT " UNIQUE NOT NULL, subject " TXT " NOT NULL,"
	" der BYTEA NOT NULL);"
	"CREATE TABLE device (id " TXT " PRIMARY KEY, model " TXT ", version " TXT ","
	" registered " TXT " NOT NULL, owner " TXT ", mno " TXT ","
	" listed BIGINT NOT NULL DEFAULT 0, deleted BIGINT NOT NULL DEFAULT 0,"
	" purge_after BIGINT NOT NULL DEFAULT 0, locks BIGINT NOT NULL DEFAULT 0,"
	" code_salt BYTEA, code_hash BYTEA, code_expires BIGINT NOT NULL DEFAULT 0,"
	" code_failures BIGINT NOT NULL DEFAULT 0, csr BYTEA, updated " TXT ","
	" enroll_gen BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE batch (id " ID ", ca_id BIGINT NOT NULL REFERENCES ca,"
	" profile " TXT " NOT NULL, started " TXT " NOT NULL, finished " TXT ","
	" issued BIGINT, rejected BIGINT, already BIGINT);"
	"CREATE TABLE cert (id " ID ", ca_id BIGINT NOT NULL REFERENCES ca,"
	" serial BYTEA NOT NULL, status " TXT " NOT NULL"
	"  CHECK (status IN ('pending','valid','revoked','abandoned')),"
	" profile " TXT " NOT NULL, csr_sha256 BYTEA NOT NULL, batch_id BIGINT REFERENCES batch,"
	" input " TXT ", device_id " TXT ", profile_id BIGINT, subject " TXT ", sans " TXT ","
	" spki_sha256 BYTEA, not_before BIGINT, not_after BIGINT, der BYTEA,"
	" revoked_at BIGINT, reason BIGINT, asp " TXT ", UNIQUE (ca_id, serial));"
	"CREATE UNIQUE INDEX cert_request ON cert (ca_id, profile, csr_sha256,"
	" coalesce(profile_id, 0)) WHERE status <> 'abandoned';"
	"CREATE INDEX cert_device ON cert (device_id);"
	"CREATE INDEX cert_pending ON cert (ca_id) WHERE status = 'pending';"
	"CREATE INDEX cert_profile_id ON cert (profile_id) WHERE profile_id IS NOT NULL;"
	"CREATE TABLE rejected (id " ID ", batch_id BIGINT REFERENCES batch, input " TXT ","
	" csr_sha256 BYTEA, reason " TXT " NOT NULL);"
	"CREATE TABLE crl (ca_id BIGINT NOT NULL REFERENCES ca, number BIGINT NOT NULL,"
	" this_update BIGINT NOT NULL, next_update BIGINT NOT NULL, der BYTEA NOT NULL,"
	" PRIMARY KEY (ca_id, number));"
	"CREATE TABLE audit (seq BIGINT PRIMARY KEY, time " TXT " NOT NULL, kind " TXT " NOT NULL,"
	" detail " TXT " NOT NULL, prev BYTEA NOT NULL, hash BYTEA NOT NULL, ca BIGINT,"
	" serial BYTEA, device " TXT ");"
	"CREATE INDEX audit_serial ON audit (serial) WHERE serial IS NOT NULL;"
	"CREATE INDEX audit_device ON audit (device) WHERE device IS NOT NULL;"
	"CREATE TABLE checkpoint (seq BIGINT PRIMARY KEY, ca_id BIGINT NOT NULL REFERENCES ca,"
	" time " TXT " NOT NULL, head BYTEA NOT NULL, signature BYTEA NOT NULL, signer BYTEA);"
	"CREATE TABLE counter (name " TXT " PRIMARY KEY, value BIGINT NOT NULL);"
	"INSERT INTO counter VALUES ('profile_id', 10);"
	"CREATE TABLE firmware (id " ID ", time " TXT " NOT NULL, signer " TXT " NOT NULL,"
	" signer_sha256 BYTEA NOT NULL, file " TXT " NOT NULL, size BIGINT NOT NULL,"
	" image_sha256 BYTEA NOT NULL, format " TXT " NOT NULL, output " TXT " NOT NULL,"
	" recipients " TXT ");"
	"CREATE TABLE published (zone " TXT " NOT NULL, owner " TXT " NOT NULL,"
	" type " TXT " NOT NULL, rdata " TXT " NOT NULL, PRIMARY KEY (zone, owner, type, rdata));"
	"CREATE TABLE registration (device " TXT " NOT NULL REFERENCES device ON DELETE CASCADE,"
	" asp " TXT " NOT NULL,"
	" state " TXT " NOT NULL CHECK (state IN ('registered','active','deactivated')),"
	" hold BIGINT NOT NULL DEFAULT 0, gaining " TXT ", requested_at BIGINT,"
	" profile_id BIGINT, created " TXT " NOT NULL, updated " TXT " NOT NULL,"
	" PRIMARY KEY (device, asp));"
	"CREATE INDEX registration_asp ON registration (asp);"
	"CREATE INDEX registration_gaining ON registration (gaining) WHERE gaining IS NOT NULL;"
	"CREATE TABLE api_client (ca_id BIGINT NOT NULL REFERENCES ca, serial BYTEA NOT NULL,"
	" account " TXT " NOT NULL, created " TXT " NOT NULL, PRIMARY KEY (ca_id, serial));"
	"CREATE TABLE poll (id " ID ", account " TXT " NOT NULL, time " TXT " NOT NULL,"
	" device " TXT " NOT NULL, event " TXT " NOT NULL, detail " TXT " NOT NULL);"
	"CREATE INDEX poll_account ON poll (account, id);"
	"CREATE TABLE cmp_seen (transaction_id BYTEA NOT NULL, nonce BYTEA NOT NULL,"
	" time BIGINT NOT NULL, PRIMARY KEY (transaction_id, nonce));"
	/* the UTC date of a unix time, as db_sqlite.c's kr_day */
	"CREATE FUNCTION kr_day(BIGINT) RETURNS TEXT LANGUAGE sql IMMUTABLE"
	" AS $$ SELECT to_char(to_timestamp($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD') $$;";

/* Every table the schema makes (later formats add columns, indexes and
 * the profile_id sequence, no table) answers a query. */
static KR_MUST_USE kr_err pg_check(kr_store *s)
{
	static const char create[] = "CREATE TABLE ";
	for (const char *p = strstr(schema, create); p; p = strstr(p + 1, create)) {
		const char *table = p + sizeof create - 1;
		int len = (int)strcspn(table, " (");
		char sql[96];
		snprintf(sql, sizeof sql, "SELECT 1 FROM %.*s LIMIT 1", len, table);
		kr_err e = pg_exec(s, sql);
		if (kr_failed(&e))
			return kr_errf(KR_EVERIFY, "%s: damaged: table %.*s: %s", s->path, len,
				       table, pg_errmsg(s));
	}
	return kr_ok();
}

const db_driver kr_db_pg = {
	.name = "PostgreSQL",
	.schema = schema,
	.schema_format = 6,
	.blob_type = "BYTEA",
	.text_type = TXT,
	.sequences = "CREATE SEQUENCE profile_id AS BIGINT;"
		     " SELECT setval('profile_id', value) FROM counter WHERE name = 'profile_id';"
		     " DELETE FROM counter WHERE name = 'profile_id'",
	.profile_ids = "SELECT nextval('profile_id') FROM generate_series(1, ?)",
	.open = pg_open,
	.closing = pg_closing,
	.close = pg_close,
	.identity = pg_identity,
	.set_format = pg_set_format,
	.check = pg_check,
	.exec = pg_exec,
	.begin = pg_begin,
	.begin_snapshot = pg_begin_snapshot,
	.prepare = pg_prepare,
	.step = pg_step,
	.reset = pg_reset,
	.finalize = pg_finalize,
	.bind_int = pg_int,
	.bind_text = pg_text,
	.bind_blob = pg_blob,
	.col_int = pg_col_int,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.col_bytes = pg_col_bytes,
	.col_null = pg_col_null,
	.changes = pg_changes,
	.errmsg = pg_errmsg,
};
