/* The SQLite issuance store. WAL journal, synchronous=FULL: a committed batch
 * survives a killed process and a power cut; callers commit many rows per
 * transaction, so the fsync is paid once per chunk. */
#include "sqlite.h"
#include "log.h"
#include "../util/hash.h"
#include "../util/mem.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KR_STORE_APP_ID 0x6b726974 /* "krit" */
#define KR_STORE_VERSION 6

/* Format 2 added firmware signatures; a format-1 store gains the table. */
static const char schema_v2[] =
	"CREATE TABLE firmware (id INTEGER PRIMARY KEY, time TEXT NOT NULL, signer TEXT NOT NULL,"
	" signer_sha256 BLOB NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL,"
	" image_sha256 BLOB NOT NULL, format TEXT NOT NULL, output TEXT NOT NULL,"
	" recipients TEXT);"
	/* A checkpoint signed by a firmware signer (under ca_id) carries its
	 * certificate; one signed by the CA key has none. */
	"ALTER TABLE checkpoint ADD COLUMN signer BLOB;"
	/* What keyrite publish last wrote for each zone, for incremental updates. */
	"CREATE TABLE published (zone TEXT NOT NULL, owner TEXT NOT NULL, type TEXT NOT NULL,"
	" rdata TEXT NOT NULL, PRIMARY KEY (zone, owner, type, rdata)) WITHOUT ROWID;";

/* Format 3: an audit entry's CA, serial and device as columns of their own,
 * taken from its detail (which the hash covers and audit verify checks
 * them against), so a certificate's or a device's history is an index
 * lookup, not a scan of every entry's text. */
static const char schema_v3[] =
	"ALTER TABLE audit ADD COLUMN ca INTEGER;"
	"ALTER TABLE audit ADD COLUMN serial BLOB;"
	"ALTER TABLE audit ADD COLUMN device TEXT;"
	"CREATE INDEX audit_serial ON audit (serial) WHERE serial IS NOT NULL;"
	"CREATE INDEX audit_device ON audit (device) WHERE device IS NOT NULL;";

/* Format 4: the device registry (store/registry.h). A device gains its
 * owner, MNO, locks, auth code hash and the CSR on record; each ASP's
 * registration of it is a row; a profile's certificate records its ASP.
 * A transfer re-certifies a device's CSR under a new profile id, so the
 * rule "no CSR signed twice under one profile" becomes "... for one
 * profile id". */
static const char schema_v4[] =
	"ALTER TABLE device ADD COLUMN owner TEXT;"
	"ALTER TABLE device ADD COLUMN mno TEXT;"
	"ALTER TABLE device ADD COLUMN listed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE device ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE device ADD COLUMN purge_after INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE device ADD COLUMN locks INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE device ADD COLUMN code_salt BLOB;"
	"ALTER TABLE device ADD COLUMN code_hash BLOB;"
	"ALTER TABLE device ADD COLUMN code_expires INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE device ADD COLUMN code_failures INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE device ADD COLUMN csr BLOB;"
	"ALTER TABLE device ADD COLUMN updated TEXT;"
	"CREATE TABLE registration (device TEXT NOT NULL REFERENCES device ON DELETE CASCADE,"
	" asp TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('registered','active','deactivated')),"
	" hold INTEGER NOT NULL DEFAULT 0, gaining TEXT, requested_at INTEGER,"
	" profile_id INTEGER, created TEXT NOT NULL, updated TEXT NOT NULL,"
	" PRIMARY KEY (device, asp)) WITHOUT ROWID;"
	"CREATE INDEX registration_asp ON registration (asp);"
	"CREATE INDEX registration_gaining ON registration (gaining) WHERE gaining IS NOT NULL;"
	"ALTER TABLE cert ADD COLUMN asp TEXT;"
	"CREATE INDEX cert_profile_id ON cert (profile_id) WHERE profile_id IS NOT NULL;"
	"DROP INDEX cert_request;"
	"CREATE UNIQUE INDEX cert_request ON cert (ca_id, profile, csr_sha256,"
	" coalesce(profile_id, 0)) WHERE status <> 'abandoned';";

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

static const char *const queries[Q_COUNT] = {
	[Q_PRIOR] = "SELECT status, der, batch_id, serial, subject FROM cert WHERE ca_id = ? AND "
		    "profile = ? AND "
		    "csr_sha256 = ? AND status <> 'abandoned'",
	[Q_RESERVE] = "INSERT INTO cert (ca_id, serial, status, profile, csr_sha256, batch_id,"
		      " input, device_id, profile_id) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
	[Q_ISSUED] = "UPDATE cert SET status = 'valid', subject = ?, sans = ?, spki_sha256 = ?,"
		     " not_before = ?, not_after = ?, der = ? WHERE ca_id = ? AND serial = ?"
		     " AND status = 'pending'",
	[Q_REJECTED] = "INSERT INTO rejected (batch_id, input, csr_sha256, reason)"
		       " VALUES (?, ?, ?, ?)",
	[Q_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[Q_AUDIT_ADD] =
		"INSERT INTO audit (seq, time, kind, detail, prev, hash, ca, serial, device)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[Q_DEVICE_PUT] = "INSERT INTO device (id, model, version, registered) VALUES (?, ?, ?, ?)",
	[Q_DEVICE_GET] =
		"SELECT coalesce(model, ''), coalesce(version, '') FROM device WHERE id = ?",
	[Q_PROFILE_ID] = "SELECT value FROM counter WHERE name = 'profile_id'",
	[Q_PROFILE_ID_SET] = "UPDATE counter SET value = ? WHERE name = 'profile_id'",
	[Q_REVOKE] = "UPDATE cert SET status = 'revoked', revoked_at = ?, reason = ?"
		     " WHERE ca_id = ? AND serial = ? AND status = 'valid'",
	[Q_SAVEPOINT] = "SAVEPOINT item",
	[Q_RELEASE] = "RELEASE item",
	[Q_ROLLBACK_TO] = "ROLLBACK TO item",
	[Q_FIRMWARE] =
		"INSERT INTO firmware (time, signer, signer_sha256, file, size,"
		" image_sha256, format, output, recipients) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
};

KR_MUST_USE kr_err sq_err(kr_store *s, const char *what)
{
	return kr_errf(KR_EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

KR_MUST_USE kr_err sq_exec(kr_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	kr_err e = rc == SQLITE_OK
			   ? kr_ok()
			   : kr_errf(KR_EIO, "%s: %s", s->path, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return e;
}

/* ---- statement helpers ---------------------------------------------------- */

KR_MUST_USE kr_err sq_prepare(kr_store *s, const char *sql, sqlite3_stmt **st)
{
	KR_ENSURE(sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK, KR_EIO, "%s: %s",
		  s->path, sqlite3_errmsg(s->db));
	return kr_ok();
}

KR_MUST_USE kr_err sq_cached(kr_store *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out)
{
	if (!*slot &&
	    sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK)
		return sq_err(s, "preparing a statement");
	sqlite3_reset(*slot);
	sqlite3_clear_bindings(*slot);
	*out = *slot;
	return kr_ok();
}

sqlite3_stmt *sq_q(kr_store *s, int i)
{
	sqlite3_reset(s->q[i]);
	sqlite3_clear_bindings(s->q[i]);
	return s->q[i];
}

void sq_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

void sq_blob(sqlite3_stmt *st, int i, const void *v, size_t n)
{
	if (v)
		sqlite3_bind_blob(st, i, v, (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

KR_MUST_USE kr_err sq_done(kr_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	KR_ENSURE(rc == SQLITE_DONE || rc == SQLITE_ROW, KR_EIO, "%s: %s: %s", s->path, what,
		  sqlite3_errmsg(s->db));
	return kr_ok();
}

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
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return read_err(s, sqlite3_errcode(s->db));
	int rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? kr_ok() : read_err(s, rc);
}

/* A foreign or damaged file is refused before keyrite writes to it; so is
 * a store made by a newer keyrite. *format: 0 for an empty file. */
static KR_MUST_USE kr_err check_identity(kr_store *s, int64_t *format)
{
	int64_t app = 0, tables = 0;
	KR_TRY(pragma_int(s, "PRAGMA application_id", &app));
	KR_TRY(pragma_int(s, "PRAGMA user_version", format));
	KR_TRY(pragma_int(s, "SELECT count(*) FROM sqlite_master", &tables));
	if (app == 0 && *format == 0 && tables == 0)
		return kr_ok();
	KR_ENSURE(app == KR_STORE_APP_ID, KR_EINPUT,
		  "%s: not a keyrite store (SQLite application_id 0x%llx); refusing to touch it",
		  s->path, (unsigned long long)app);
	KR_ENSURE(*format >= 1 && *format <= KR_STORE_VERSION, KR_EINPUT,
		  "%s: store format %lld, and this keyrite reads formats 1 to %d (a newer "
		  "keyrite made it?); refusing to touch it",
		  s->path, (long long)*format, KR_STORE_VERSION);
	return kr_ok();
}

/* A full read of the file: O(size), so not on every open (damage met in
 * normal work surfaces as SQLITE_CORRUPT from the statement that meets it). */
KR_MUST_USE kr_err kr_store_check(kr_store *s)
{
	sqlite3_stmt *st = NULL;
	KR_ENSURE(sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK,
		  KR_EINPUT, "%s: damaged: %s", s->path, sqlite3_errmsg(s->db));
	int rc = sqlite3_step(st);
	const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	kr_err e = res && strcmp(res, "ok") == 0 ? kr_ok()
						 : kr_errf(KR_EVERIFY, "%s: damaged: %s", s->path,
							   res ? res : sqlite3_errstr(rc));
	sqlite3_finalize(st);
	return e;
}

/* Format 3's columns for the entries written before it, from their text,
 * a thousand entries at a time (a statement is not stepped while the table
 * it reads is changed). */
static KR_MUST_USE kr_err fill_audit_columns(kr_store *s)
{
	sqlite3_stmt *rd = NULL, *wr = NULL;
	KR_TRY(sq_prepare(s, "SELECT seq, detail FROM audit WHERE seq > ? ORDER BY seq LIMIT 1000",
			  &rd));
	kr_err e =
		sq_prepare(s, "UPDATE audit SET ca = ?, serial = ?, device = ? WHERE seq = ?", &wr);
	int64_t after = 0;
	for (int more = 1; more && !kr_failed(&e);) {
		typedef struct {
			int64_t seq;
			kr_detail d;
		} entry;
		static entry batch[1000]; /* a migration runs once, on one thread */
		int n = 0, rc;
		sqlite3_reset(rd);
		sqlite3_bind_int64(rd, 1, after);
		while (n < 1000 && (rc = sqlite3_step(rd)) == SQLITE_ROW) {
			batch[n].seq = sqlite3_column_int64(rd, 0);
			kr_detail_parse((const char *)sqlite3_column_text(rd, 1), &batch[n].d);
			n++;
		}
		if (n < 1000 && rc != SQLITE_DONE)
			e = sq_err(s, "reading audit entries to migrate");
		sqlite3_reset(rd);
		more = n == 1000;
		for (int i = 0; i < n && !kr_failed(&e); i++) {
			const kr_detail *d = &batch[i].d;
			size_t len = 0;
			const uint8_t *serial = kr_detail_serial(d, &len);
			sqlite3_reset(wr);
			sqlite3_clear_bindings(wr);
			if (kr_detail_has(d, KR_D_CA))
				sqlite3_bind_int64(wr, 1, d->num[KR_D_CA]);
			sq_blob(wr, 2, kr_detail_has(d, KR_D_SERIAL) ? serial : NULL, len);
			sq_text(wr, 3, kr_detail_has(d, KR_D_DEVICE) ? d->str[KR_D_DEVICE] : NULL);
			sqlite3_bind_int64(wr, 4, batch[i].seq);
			e = sq_done(s, wr, "migrating the audit log");
			after = batch[i].seq;
		}
	}
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	return e;
}

/* Format 5: the online service (store/service.h). Client certificates
 * bound to registry accounts, each account's poll queue, and the CMP
 * messages seen (RFC 9483 section 3.1: transactionID and senderNonce), so
 * a replay is refused: OpenSSL's CMP server accepts one and would issue
 * again. */
static const char schema_v5[] =
	"CREATE TABLE api_client (ca_id INTEGER NOT NULL REFERENCES ca, serial BLOB NOT NULL,"
	" account TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (ca_id, serial))"
	" WITHOUT ROWID;"
	"CREATE TABLE poll (id INTEGER PRIMARY KEY, account TEXT NOT NULL, time TEXT NOT NULL,"
	" device TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL);"
	"CREATE INDEX poll_account ON poll (account, id);"
	"CREATE TABLE cmp_seen (transaction_id BLOB NOT NULL, nonce BLOB NOT NULL,"
	" time INTEGER NOT NULL, PRIMARY KEY (transaction_id, nonce)) WITHOUT ROWID;";

/* Format 6: a device's enrollment secret (CMP PBM, RFC 9483 section 4.1.5)
 * is derived on the token from the registry's enrollment key, the device
 * and a generation; the store keeps only the generation (0: none). */
static const char schema_v6[] =
	"ALTER TABLE device ADD COLUMN enroll_gen INTEGER NOT NULL DEFAULT 0;";

/* The steps from one format to the next: steps[i] takes format i + 1 to
 * i + 2. */
static const struct {
	const char *sql;
	kr_err (*then)(kr_store *s);
} steps[KR_STORE_VERSION - 1] = {
	{schema_v2, NULL}, {schema_v3, fill_audit_columns}, {schema_v4, NULL}, {schema_v5, NULL},
	{schema_v6, NULL},
};

/* Makes an empty file a store, or takes an older store to this format, in
 * one transaction that ends by recording the format: a store is never half
 * migrated, and a process that finds another one has just done it (the
 * format is read again under the write lock) does nothing. */
static KR_MUST_USE kr_err migrate(kr_store *s)
{
	KR_TRY(sq_exec(s, "BEGIN IMMEDIATE"));
	int64_t format = 0;
	kr_err e = pragma_int(s, "PRAGMA user_version", &format);
	if (!kr_failed(&e) && (format < 0 || format > KR_STORE_VERSION))
		e = kr_errf(KR_EINPUT, "%s: store format %lld appeared while it was opened",
			    s->path, (long long)format);
	if (!kr_failed(&e) && format == 0)
		e = sq_exec(s, schema);
	/* a new store is made in format 1, then taken up like an old one */
	size_t first = format > 1 ? (size_t)format - 1 : 0;
	for (size_t i = first; i < sizeof steps / sizeof *steps && !kr_failed(&e); i++) {
		e = sq_exec(s, steps[i].sql);
		if (!kr_failed(&e) && steps[i].then)
			e = steps[i].then(s);
		kr_err_prefix(&e, "migrating the store from format %zu to %zu", i + 1, i + 2);
	}
	if (!kr_failed(&e) && format < KR_STORE_VERSION) {
		char sql[96];
		snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
			 KR_STORE_APP_ID, KR_STORE_VERSION);
		e = sq_exec(s, sql);
	}
	if (!kr_failed(&e))
		return sq_exec(s, "COMMIT");
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

static KR_MUST_USE kr_err prepare_all(kr_store *s)
{
	for (int i = 0; i < Q_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i],
				       NULL) != SQLITE_OK)
			return sq_err(s, "preparing a statement");
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_open(const char *path, int create, kr_store **out)
{
	KR_ENSURE(create || access(path, F_OK) == 0, KR_EINPUT,
		  "%s: no such store (create it with keyrite issue or keyrite ca init)", path);
	kr_store *s = calloc(1, sizeof *s);
	KR_ENSURE(s, KR_EINTERNAL, "out of memory");
	s->path = strdup(path);
	int flags =
		SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
	kr_err e = kr_ok();
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK)
		e = kr_errf(KR_EIO, "%s: cannot open: %s", path,
			    s->db ? sqlite3_errmsg(s->db) : "out of memory");
	int64_t format = 0;
	if (!kr_failed(&e)) {
		sqlite3_busy_timeout(s->db, 10000);
		e = check_identity(s, &format);
	}
	if (!kr_failed(&e))
		/* A chunk of a bulk registry command dirties a page or more per
		 * device; a 16 MiB cache keeps SQLite from spilling them to the
		 * WAL before the commit (it writes each once, at the commit). */
		e = sq_exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			       " PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384");
	if (!kr_failed(&e) && format < KR_STORE_VERSION)
		e = migrate(s);
	if (!kr_failed(&e))
		e = prepare_all(s);
	if (kr_failed(&e)) {
		kr_store_close(s);
		return e;
	}
	*out = s;
	return kr_ok();
}

void kr_store_close(kr_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	sqlite3_finalize(s->pub_add);
	for (int i = 0; i < SQ_REGISTRY_STATEMENTS; i++)
		sqlite3_finalize(s->rq[i]);
	for (int i = 0; i < SQ_SERVICE_STATEMENTS; i++)
		sqlite3_finalize(s->sv[i]);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

/* ---- transactions ------------------------------------------------------------ */

static void forget_cached(kr_store *s)
{
	s->c.head_valid = s->c.pid_valid = s->c.pid_dirty = s->marked = 0;
}

static KR_MUST_USE kr_err begin(kr_store *s)
{
	forget_cached(s);
	return sq_exec(s, "BEGIN IMMEDIATE");
}

static KR_MUST_USE kr_err commit(kr_store *s)
{
	kr_err e = kr_ok();
	if (s->c.pid_dirty) {
		sqlite3_stmt *st = sq_q(s, Q_PROFILE_ID_SET);
		sqlite3_bind_int64(st, 1, s->c.pid);
		e = sq_done(s, st, "counting profile ids");
	}
	forget_cached(s);
	if (kr_failed(&e)) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return e;
	}
	return sq_exec(s, "COMMIT");
}

static void rollback(kr_store *s)
{
	forget_cached(s);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

KR_MUST_USE kr_err kr_txn_begin(kr_txn *t, kr_store *s)
{
	KR_ENSURE(!t->s, KR_EINTERNAL, "a transaction inside a transaction");
	KR_TRY(begin(s));
	t->s = s;
	return kr_ok();
}

KR_MUST_USE kr_err kr_txn_commit(kr_txn *t)
{
	kr_store *s = t->s;
	t->s = NULL;
	KR_ENSURE(s, KR_EINTERNAL, "committing no transaction");
	return commit(s); /* it rolls back what it cannot commit */
}

void kr_txn_end(kr_txn *t)
{
	if (t->s)
		rollback(t->s);
	t->s = NULL;
}

KR_MUST_USE kr_err kr_txn_mark(kr_txn *t)
{
	kr_store *s = t->s;
	KR_ENSURE(s && !s->marked, KR_EINTERNAL, "an item outside a transaction, or in an item");
	KR_TRY(sq_done(s, sq_q(s, Q_SAVEPOINT), "marking an item"));
	s->marked = 1;
	s->mark = s->c;
	return kr_ok();
}

KR_MUST_USE kr_err kr_txn_keep(kr_txn *t)
{
	kr_store *s = t->s;
	KR_ENSURE(s && s->marked, KR_EINTERNAL, "keeping no item");
	s->marked = 0;
	return sq_done(s, sq_q(s, Q_RELEASE), "keeping an item");
}

KR_MUST_USE kr_err kr_txn_undo(kr_txn *t)
{
	kr_store *s = t->s;
	KR_ENSURE(s && s->marked, KR_EINTERNAL, "undoing no item");
	s->marked = 0;
	s->c = s->mark;
	KR_TRY(sq_done(s, sq_q(s, Q_ROLLBACK_TO), "undoing an item"));
	return sq_done(s, sq_q(s, Q_RELEASE), "undoing an item");
}

void sq_now(char out[21]) { kr_utc_now(out); }

/* ---- CAs, devices, batches --------------------------------------------------- */

/* The id of the CA recorded under name, which must be this certificate;
 * 0 if there is none. */
static KR_MUST_USE kr_err ca_lookup(kr_store *s, const char *name, const uint8_t *der, int len,
				    int64_t *id)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT id, der FROM ca WHERE name = ?", &st));
	sq_text(st, 1, name);
	int rc = sqlite3_step(st);
	kr_err e = kr_ok();
	*id = 0;
	if (rc == SQLITE_ROW && (sqlite3_column_bytes(st, 1) != len ||
				 memcmp(sqlite3_column_blob(st, 1), der, (size_t)len) != 0))
		e = kr_errf(KR_EINPUT, "%s: CA '%s' is recorded with a different certificate",
			    s->path, name);
	else if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		e = sq_err(s, "looking up CA");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_register_ca(kr_store *s, const char *name, X509 *cert, int64_t *id)
{
	KR_AUTO(uint8_t) der = NULL;
	int len = i2d_X509(cert, &der);
	KR_OSSL(len > 0, KR_EINTERNAL, "encoding CA certificate");
	KR_TRY(ca_lookup(s, name, der, len, id));
	if (*id)
		return kr_ok();
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "INSERT INTO ca (name, subject, der) VALUES (?, ?, ?)", &st));
	KR_AUTO(uint8_t)
	subject = (uint8_t *)X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
	sq_text(st, 1, name);
	sq_text(st, 2, (const char *)subject);
	sq_blob(st, 3, der, (size_t)len);
	kr_err e = sq_done(s, st, "adding CA");
	*id = sqlite3_last_insert_rowid(s->db);
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_add_device(kr_store *s, const kr_device *d)
{
	char now[21];
	sq_now(now);
	sqlite3_stmt *st = sq_q(s, Q_DEVICE_PUT);
	sq_text(st, 1, d->id);
	sq_text(st, 2, d->model);
	sq_text(st, 3, d->version);
	sq_text(st, 4, now);
	return sq_done(s, st, "adding device");
}

KR_MUST_USE kr_err kr_store_device(kr_store *s, const char *id, int *found, char *model,
				   size_t modelsz, char *version, size_t versionsz)
{
	sqlite3_stmt *st = sq_q(s, Q_DEVICE_GET);
	sq_text(st, 1, id);
	int rc = sqlite3_step(st);
	KR_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, KR_EIO, "%s: %s", s->path,
		  sqlite3_errmsg(s->db));
	*found = rc == SQLITE_ROW;
	snprintf(model, modelsz, "%s", *found ? (const char *)sqlite3_column_text(st, 0) : "");
	snprintf(version, versionsz, "%s", *found ? (const char *)sqlite3_column_text(st, 1) : "");
	sqlite3_reset(st); /* the texts were copied */
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_set_device_version(kr_store *s, const char *id, const char *from,
					       const char *to)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "UPDATE device SET version = ? WHERE id = ?", &st));
	sq_text(st, 1, to);
	sq_text(st, 2, id);
	kr_err e = sq_done(s, st, "recording a device's version");
	sqlite3_finalize(st);
	KR_TRY(e);
	kr_detail d;
	char change[96];
	snprintf(change, sizeof change, "%.40s->%.40s", from, to);
	kr_detail_init(&d);
	kr_detail_str(&d, KR_D_DEVICE, id);
	kr_detail_str(&d, KR_D_VERSION, change);
	return sq_audit(s, "device", &d);
}

KR_MUST_USE kr_err kr_store_start_batch(kr_store *s, int64_t ca, const char *profile,
					int64_t *batch)
{
	char now[21];
	sq_now(now);
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "INSERT INTO batch (ca_id, profile, started) VALUES (?, ?, ?)", &st));
	sqlite3_bind_int64(st, 1, ca);
	sq_text(st, 2, profile);
	sq_text(st, 3, now);
	kr_err e = sq_done(s, st, "starting batch");
	*batch = sqlite3_last_insert_rowid(s->db);
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_finish_batch(kr_store *s, int64_t batch, const kr_batch_counts *c)
{
	char now[21];
	sq_now(now);
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "UPDATE batch SET finished = ?, issued = ?, rejected = ?,"
			  " already = ? WHERE id = ?",
			  &st));
	sq_text(st, 1, now);
	sqlite3_bind_int64(st, 2, c->issued);
	sqlite3_bind_int64(st, 3, c->rejected);
	sqlite3_bind_int64(st, 4, c->already);
	sqlite3_bind_int64(st, 5, batch);
	kr_err e = sq_done(s, st, "finishing batch");
	sqlite3_finalize(st);
	return e;
}

/* ---- issuance --------------------------------------------------------------- */

void kr_prior_clear(kr_prior *p)
{
	free(p->der);
	memset(p, 0, sizeof *p);
}

KR_MUST_USE kr_err kr_store_prior(kr_store *s, int64_t ca, const char *profile,
				  const uint8_t csr[32], kr_prior *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = sq_q(s, Q_PRIOR);
	sqlite3_bind_int64(st, 1, ca);
	sq_text(st, 2, profile);
	sq_blob(st, 3, csr, 32);
	int rc = sqlite3_step(st);
	KR_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, KR_EIO, "%s: %s", s->path,
		  sqlite3_errmsg(s->db));
	if (rc == SQLITE_DONE)
		return kr_ok();
	out->found = 1;
	out->batch = sqlite3_column_int64(st, 2);
	int sn = sqlite3_column_bytes(st, 3);
	out->serial_len = sn > 0 && sn <= 20 ? (size_t)sn : 0;
	memcpy(out->serial, sqlite3_column_blob(st, 3), out->serial_len);
	const unsigned char *subject = sqlite3_column_text(st, 4);
	snprintf(out->subject, sizeof out->subject, "%s", subject ? (const char *)subject : "");
	snprintf(out->status, sizeof out->status, "%s", (const char *)sqlite3_column_text(st, 0));
	int n = sqlite3_column_bytes(st, 1);
	if (n > 0) {
		out->der = malloc((size_t)n);
		KR_ENSURE(out->der, KR_EINTERNAL, "out of memory");
		memcpy(out->der, sqlite3_column_blob(st, 1), (size_t)n);
		out->der_len = (size_t)n;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_take_profile_id(kr_store *s, int64_t *id)
{
	if (!s->c.pid_valid) {
		sqlite3_stmt *st = sq_q(s, Q_PROFILE_ID);
		int rc = sqlite3_step(st);
		KR_ENSURE(rc == SQLITE_ROW, KR_EIO, "%s: profile id: %s", s->path,
			  sqlite3_errmsg(s->db));
		s->c.pid = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		s->c.pid_valid = 1;
	}
	*id = ++s->c.pid;
	s->c.pid_dirty = 1;
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_reserve(kr_store *s, const kr_cert_row *r)
{
	sqlite3_stmt *st = sq_q(s, Q_RESERVE);
	sqlite3_bind_int64(st, 1, r->ca);
	sq_blob(st, 2, r->serial, r->serial_len);
	sq_text(st, 3, r->profile);
	sq_blob(st, 4, r->csr_sha256, 32);
	sqlite3_bind_int64(st, 5, r->batch);
	sq_text(st, 6, r->input);
	sq_text(st, 7, r->device_id);
	if (r->profile_id > 0)
		sqlite3_bind_int64(st, 8, r->profile_id);
	return sq_done(s, st, "reserving a serial");
}

KR_MUST_USE kr_err kr_store_complete(kr_store *s, const kr_cert_row *r,
				     const uint8_t tbs_sha256[32])
{
	sqlite3_stmt *st = sq_q(s, Q_ISSUED);
	sq_text(st, 1, r->subject);
	sq_text(st, 2, r->sans);
	sq_blob(st, 3, r->spki_sha256, 32);
	sqlite3_bind_int64(st, 4, r->not_before);
	sqlite3_bind_int64(st, 5, r->not_after);
	sq_blob(st, 6, r->der, r->der_len);
	sqlite3_bind_int64(st, 7, r->ca);
	sq_blob(st, 8, r->serial, r->serial_len);
	KR_TRY(sq_done(s, st, "recording a certificate"));
	KR_ENSURE(sqlite3_changes(s->db) == 1, KR_EINTERNAL, "%s: no pending row for a serial",
		  s->path);
	kr_detail d;
	kr_detail_init(&d);
	kr_detail_num(&d, KR_D_CA, r->ca);
	kr_detail_bytes(&d, KR_D_SERIAL, r->serial, r->serial_len);
	kr_detail_str(&d, KR_D_PROFILE, r->profile);
	kr_detail_bytes(&d, KR_D_CSR, r->csr_sha256, 32);
	kr_detail_bytes(&d, KR_D_TBS, tbs_sha256, 32);
	return sq_audit(s, "issue", &d);
}

KR_MUST_USE kr_err kr_store_reject(kr_store *s, int64_t batch, const char *input,
				   const uint8_t *csr_sha256, const char *reason)
{
	sqlite3_stmt *st = sq_q(s, Q_REJECTED);
	sqlite3_bind_int64(st, 1, batch);
	sq_text(st, 2, input);
	sq_blob(st, 3, csr_sha256, 32);
	sq_text(st, 4, reason);
	return sq_done(s, st, "recording a rejection");
}

KR_MUST_USE kr_err kr_store_abandon_pending(kr_store *s, int64_t ca, long *n)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "UPDATE cert SET status = 'abandoned' WHERE ca_id = ? AND"
			  " status = 'pending' RETURNING serial, batch_id",
			  &st));
	sqlite3_bind_int64(st, 1, ca);
	*n = 0;
	kr_err e = kr_ok();
	int rc;
	/* RETURNING rows are complete before the first one is stepped out; the
	 * audit entries are added after, from a copy. */
	typedef struct {
		uint8_t serial[20];
		size_t len;
		int64_t batch;
	} gone;
	gone *list = NULL;
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e = kr_grow((void **)&list, &cap, (size_t)*n + 1, sizeof *list);
		if (kr_failed(&e))
			break;
		int len = sqlite3_column_bytes(st, 0);
		list[*n].len = len > 0 && len <= 20 ? (size_t)len : 0;
		memcpy(list[*n].serial, sqlite3_column_blob(st, 0), list[*n].len);
		list[*n].batch = sqlite3_column_int64(st, 1);
		(*n)++;
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "retiring pending serials");
	sqlite3_finalize(st);
	/* The run was killed between reserving and recording: the serial is
	 * retired, never reused. */
	for (long i = 0; i < *n && !kr_failed(&e); i++) {
		kr_detail d;
		kr_detail_init(&d);
		kr_detail_num(&d, KR_D_CA, ca);
		kr_detail_bytes(&d, KR_D_SERIAL, list[i].serial, list[i].len);
		kr_detail_num(&d, KR_D_BATCH, list[i].batch);
		e = sq_audit(s, "abandon", &d);
	}
	free(list);
	return e;
}

/* ---- listing and revocation ------------------------------------------------- */

KR_MUST_USE kr_err kr_store_certs(kr_store *s, const kr_cert_filter *f, kr_cert_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT ca.name, cert.status, profile, device_id, cert.subject, sans,"
			  " serial, cert.der, profile_id, not_before, not_after, revoked_at,"
			  " reason, spki_sha256,"
			  /* a registry profile is published while its registration
			   * is active, not held, and the device not deleted */
			  " cert.asp IS NOT NULL AND NOT EXISTS (SELECT 1 FROM registration r"
			  " JOIN device d ON d.id = r.device WHERE r.device = cert.device_id"
			  " AND r.asp = cert.asp AND r.profile_id = cert.profile_id"
			  " AND r.state = 'active' AND r.hold = 0 AND d.deleted = 0)"
			  " FROM cert JOIN ca ON ca.id = cert.ca_id"
			  " WHERE (?1 IS NULL OR ca.name = ?1) AND (?2 IS NULL OR cert.status = ?2)"
			  " AND (?3 IS NULL OR device_id = ?3) AND (?4 IS NULL OR serial = ?4)"
			  " AND cert.status IN ('valid', 'revoked') ORDER BY cert.id",
			  &st));
	sq_text(st, 1, f->ca);
	sq_text(st, 2, f->status);
	sq_text(st, 3, f->device_id);
	sq_blob(st, 4, f->serial, f->serial_len);
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		kr_cert_info c = {
			.ca = (const char *)sqlite3_column_text(st, 0),
			.status = (const char *)sqlite3_column_text(st, 1),
			.profile = (const char *)sqlite3_column_text(st, 2),
			.device_id = (const char *)sqlite3_column_text(st, 3),
			.subject = (const char *)sqlite3_column_text(st, 4),
			.sans = (const char *)sqlite3_column_text(st, 5),
			.serial = sqlite3_column_blob(st, 6),
			.serial_len = (size_t)sqlite3_column_bytes(st, 6),
			.der = sqlite3_column_blob(st, 7),
			.der_len = (size_t)sqlite3_column_bytes(st, 7),
			.profile_id = sqlite3_column_int64(st, 8),
			.not_before = sqlite3_column_int64(st, 9),
			.not_after = sqlite3_column_int64(st, 10),
			.revoked_at = sqlite3_column_int64(st, 11),
			.reason = sqlite3_column_type(st, 12) == SQLITE_NULL
					  ? -1
					  : sqlite3_column_int(st, 12),
			.spki_sha256 = sqlite3_column_bytes(st, 13) == 32
					       ? sqlite3_column_blob(st, 13)
					       : NULL,
			.withheld = sqlite3_column_int(st, 14),
		};
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "listing certificates");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_revoke(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
				   int reason, int64_t when)
{
	sqlite3_stmt *st = sq_q(s, Q_REVOKE);
	sqlite3_bind_int64(st, 1, when);
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_int64(st, 3, ca);
	sq_blob(st, 4, serial, len);
	kr_err e = sq_done(s, st, "revoking");
	int changed = sqlite3_changes(s->db);
	sqlite3_reset(st);
	KR_TRY(e);
	char hex[41];
	kr_hex_upper(serial, len, hex);
	KR_ENSURE(changed == 1, KR_EINPUT, "serial %s: no valid certificate of this CA has it",
		  hex);
	kr_detail d;
	kr_detail_init(&d);
	kr_detail_num(&d, KR_D_CA, ca);
	kr_detail_bytes(&d, KR_D_SERIAL, serial, len);
	kr_detail_num(&d, KR_D_REASON, reason);
	kr_detail_num(&d, KR_D_AT, when);
	return sq_audit(s, "revoke", &d);
}

/* cb for each (serial, time, reason) row of st; st is finalized. */
static KR_MUST_USE kr_err revocation_rows(kr_store *s, sqlite3_stmt *st, kr_revoked_cb cb,
					  void *arg, const char *what)
{
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW)
		e = cb(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
		       sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2), arg);
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, what);
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_revocations(kr_store *s, int64_t ca, kr_revoked_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT serial, revoked_at, reason FROM cert WHERE ca_id = ?"
			  " AND status = 'revoked' ORDER BY serial",
			  &st));
	sqlite3_bind_int64(st, 1, ca);
	return revocation_rows(s, st, cb, arg, "listing revocations");
}

KR_MUST_USE kr_err kr_store_next_crl_number(kr_store *s, int64_t ca, int64_t *number)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT coalesce(max(number), 0) + 1 FROM crl WHERE ca_id = ?", &st));
	sqlite3_bind_int64(st, 1, ca);
	int rc = sqlite3_step(st);
	*number = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	KR_ENSURE(rc == SQLITE_ROW, KR_EIO, "%s: next CRL number", s->path);
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_add_crl(kr_store *s, int64_t ca, int64_t number, int64_t this_update,
				    int64_t next_update, long nrevoked, const uint8_t *der,
				    size_t len)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "INSERT INTO crl VALUES (?, ?, ?, ?, ?)", &st));
	sqlite3_bind_int64(st, 1, ca);
	sqlite3_bind_int64(st, 2, number);
	sqlite3_bind_int64(st, 3, this_update);
	sqlite3_bind_int64(st, 4, next_update);
	sq_blob(st, 5, der, len);
	kr_err e = sq_done(s, st, "recording the CRL");
	sqlite3_finalize(st);
	KR_TRY(e);
	uint8_t md[32];
	KR_TRY(kr_sha256(der, len, md));
	kr_detail d;
	kr_detail_init(&d);
	kr_detail_num(&d, KR_D_CA, ca);
	kr_detail_num(&d, KR_D_CRL_NUMBER, number);
	kr_detail_num(&d, KR_D_THIS_UPDATE, this_update);
	kr_detail_num(&d, KR_D_NEXT_UPDATE, next_update);
	kr_detail_num(&d, KR_D_REVOKED, nrevoked);
	kr_detail_bytes(&d, KR_D_SHA256, md, 32);
	return sq_audit(s, "crl", &d);
}

/* ---- audit ------------------------------------------------------------------ */

KR_MUST_USE kr_err kr_store_audit_head(kr_store *s, int64_t *seq, uint8_t hash[32])
{
	if (!s->c.head_valid) {
		sqlite3_stmt *st = sq_q(s, Q_AUDIT_HEAD);
		int rc = sqlite3_step(st);
		KR_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, KR_EIO, "%s: audit head: %s",
			  s->path, sqlite3_errmsg(s->db));
		s->c.head_seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		memset(s->c.head, 0, 32);
		if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32)
			memcpy(s->c.head, sqlite3_column_blob(st, 1), 32);
		sqlite3_reset(st);
		s->c.head_valid = 1;
	}
	*seq = s->c.head_seq;
	memcpy(hash, s->c.head, 32);
	return kr_ok();
}

/* The entry's text from its fields, and the columns a lookup uses. */
KR_MUST_USE kr_err sq_audit(kr_store *s, const char *kind, const kr_detail *d)
{
	int64_t seq;
	uint8_t prev[32], hash[32];
	char now[21], detail[KR_DETAIL_MAX];
	KR_TRY(kr_detail_format(d, detail, sizeof detail));
	KR_TRY(kr_store_audit_head(s, &seq, prev));
	seq++;
	sq_now(now);
	KR_TRY(kr_audit_hash(prev, seq, now, kind, detail, hash));
	sqlite3_stmt *st = sq_q(s, Q_AUDIT_ADD);
	sqlite3_bind_int64(st, 1, seq);
	sq_text(st, 2, now);
	sq_text(st, 3, kind);
	sq_text(st, 4, detail);
	sq_blob(st, 5, prev, 32);
	sq_blob(st, 6, hash, 32);
	if (kr_detail_has(d, KR_D_CA))
		sqlite3_bind_int64(st, 7, d->num[KR_D_CA]);
	size_t n = 0;
	const uint8_t *serial = kr_detail_serial(d, &n);
	sq_blob(st, 8, kr_detail_has(d, KR_D_SERIAL) ? serial : NULL, n);
	sq_text(st, 9, kr_detail_has(d, KR_D_DEVICE) ? d->str[KR_D_DEVICE] : NULL);
	KR_TRY(sq_done(s, st, "appending to the audit log"));
	s->c.head_seq = seq;
	memcpy(s->c.head, hash, 32);
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_add_firmware(kr_store *s, const kr_fw_row *r)
{
	char now[21];
	sq_now(now);
	sqlite3_stmt *st = sq_q(s, Q_FIRMWARE);
	sq_text(st, 1, now);
	sq_text(st, 2, r->signer);
	sq_blob(st, 3, r->signer_sha256, 32);
	sq_text(st, 4, r->file);
	sqlite3_bind_int64(st, 5, r->size);
	sq_blob(st, 6, r->image_sha256, 32);
	sq_text(st, 7, r->format);
	sq_text(st, 8, r->output);
	sq_text(st, 9, r->recipients);
	KR_TRY(sq_done(s, st, "recording a firmware signature"));
	kr_detail d;
	kr_detail_init(&d);
	kr_detail_str(&d, KR_D_SIGNER, r->signer);
	kr_detail_bytes(&d, KR_D_SIGNER_SHA, r->signer_sha256, 32);
	kr_detail_str(&d, KR_D_FORMAT, r->format);
	kr_detail_num(&d, KR_D_SIZE, r->size);
	kr_detail_bytes(&d, KR_D_SHA256, r->image_sha256, 32);
	kr_detail_str(&d, KR_D_FILE, r->file);
	if (r->recipients)
		kr_detail_str(&d, KR_D_TO, r->recipients);
	if (r->package) {
		kr_detail_str(&d, KR_D_PACKAGE, r->package);
		kr_detail_num(&d, KR_D_PACKAGE_VER, r->package_version);
	}
	return sq_audit(s, "firmware", &d);
}

KR_MUST_USE kr_err kr_store_firmware(kr_store *s, kr_fw_row_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(
		s,
		"SELECT time, signer, signer_sha256, file, size, image_sha256, format, output,"
		" recipients FROM firmware ORDER BY id",
		&st));
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to r */
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int digests =
			sqlite3_column_bytes(st, 2) == 32 && sqlite3_column_bytes(st, 5) == 32;
		kr_fw_row r = {
			.time = (const char *)sqlite3_column_text(st, 0),
			.signer = (const char *)sqlite3_column_text(st, 1),
			.signer_sha256 = digests ? sqlite3_column_blob(st, 2) : NULL,
			.file = (const char *)sqlite3_column_text(st, 3),
			.size = sqlite3_column_int64(st, 4),
			.image_sha256 = digests ? sqlite3_column_blob(st, 5) : NULL,
			.format = (const char *)sqlite3_column_text(st, 6),
			.output = (const char *)sqlite3_column_text(st, 7),
			.recipients = (const char *)sqlite3_column_text(st, 8),
		};
		e = digests ? cb(&r, arg)
			    : kr_errf(KR_EVERIFY, "%s: a firmware row's digests are not 32 octets",
				      s->path);
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "listing firmware signatures");
	sqlite3_finalize(st);
	return e;
}

#define AUDIT_COLUMNS "seq, time, kind, detail, prev, hash, ca, serial, device"

/* Calls cb for each row of st, a SELECT of AUDIT_COLUMNS. */
static KR_MUST_USE kr_err audit_rows(kr_store *s, sqlite3_stmt *st, kr_audit_cb cb, void *arg)
{
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to a */
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		kr_audit_entry a = {
			.seq = sqlite3_column_int64(st, 0),
			.time = (const char *)sqlite3_column_text(st, 1),
			.kind = (const char *)sqlite3_column_text(st, 2),
			.detail = (const char *)sqlite3_column_text(st, 3),
			.prev = sqlite3_column_bytes(st, 4) == 32 ? sqlite3_column_blob(st, 4)
								  : NULL,
			.hash = sqlite3_column_bytes(st, 5) == 32 ? sqlite3_column_blob(st, 5)
								  : NULL,
			.ca = sqlite3_column_int64(st, 6),
			.serial = sqlite3_column_blob(st, 7),
			.serial_len = (size_t)sqlite3_column_bytes(st, 7),
			.device = (const char *)sqlite3_column_text(st, 8),
		};
		e = cb(&a, arg);
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "reading the audit log");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_audit_walk(kr_store *s, kr_audit_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq", &st));
	return audit_rows(s, st, cb, arg);
}

KR_MUST_USE kr_err kr_store_has_checkpoint(kr_store *s, int64_t seq, int *yes)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT 1 FROM checkpoint WHERE seq = ?", &st));
	sqlite3_bind_int64(st, 1, seq);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	KR_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, KR_EIO, "%s: checkpoint lookup", s->path);
	*yes = rc == SQLITE_ROW;
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_history(kr_store *s, const uint8_t *serial, size_t len, kr_audit_cb cb,
				    void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit WHERE serial = ? ORDER BY seq",
			  &st));
	sq_blob(st, 1, serial, len);
	return audit_rows(s, st, cb, arg);
}

KR_MUST_USE kr_err kr_store_device_history(kr_store *s, const char *device, kr_audit_cb cb,
					   void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit WHERE device = ? ORDER BY seq",
			  &st));
	sq_text(st, 1, device);
	return audit_rows(s, st, cb, arg);
}

KR_MUST_USE kr_err kr_store_add_checkpoint(kr_store *s, int64_t ca, int64_t seq,
					   const uint8_t head[32], const uint8_t *sig, size_t len,
					   const uint8_t *signer, size_t signer_len)
{
	char now[21];
	sq_now(now);
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "INSERT INTO checkpoint (seq, ca_id, time, head, signature, signer)"
			  " VALUES (?, ?, ?, ?, ?, ?)",
			  &st));
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, ca);
	sq_text(st, 3, now);
	sq_blob(st, 4, head, 32);
	sq_blob(st, 5, sig, len);
	if (signer)
		sq_blob(st, 6, signer, signer_len);
	kr_err e = sq_done(s, st, "recording a checkpoint");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_checkpoints(kr_store *s, kr_checkpoint_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT seq, ca.name, time, head, signature, ca.der, signer FROM"
			  " checkpoint JOIN ca ON ca.id = checkpoint.ca_id ORDER BY seq",
			  &st));
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		kr_checkpoint c = {
			.seq = sqlite3_column_int64(st, 0),
			.ca = (const char *)sqlite3_column_text(st, 1),
			.time = (const char *)sqlite3_column_text(st, 2),
			.head = sqlite3_column_bytes(st, 3) == 32 ? sqlite3_column_blob(st, 3)
								  : NULL,
			.sig = sqlite3_column_blob(st, 4),
			.sig_len = (size_t)sqlite3_column_bytes(st, 4),
			.ca_der = sqlite3_column_blob(st, 5),
			.ca_der_len = (size_t)sqlite3_column_bytes(st, 5),
			.signer_der = sqlite3_column_blob(st, 6),
			.signer_der_len = (size_t)sqlite3_column_bytes(st, 6),
		};
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "reading checkpoints");
	sqlite3_finalize(st);
	return e;
}

/* ---- audit verification ----------------------------------------------------- */

KR_MUST_USE kr_err kr_store_expect_begin(kr_store *s)
{
	return sq_exec(
		s, "CREATE TEMP TABLE IF NOT EXISTS log_cert (ca INTEGER NOT NULL,"
		   " serial BLOB NOT NULL, status TEXT NOT NULL, reason INTEGER, at INTEGER,"
		   " tbs BLOB, issue_seq INTEGER, revoke_seq INTEGER, PRIMARY KEY (ca, serial));"
		   "CREATE TEMP TABLE IF NOT EXISTS log_crl (ca INTEGER NOT NULL,"
		   " number INTEGER NOT NULL, sha256 BLOB, seq INTEGER NOT NULL,"
		   " PRIMARY KEY (ca, number));"
		   "DELETE FROM temp.log_cert; DELETE FROM temp.log_crl");
}

KR_MUST_USE kr_err kr_store_expect_cert(kr_store *s, const kr_expect_cert *c, char prior[16])
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT status FROM temp.log_cert WHERE ca = ? AND serial = ?", &st));
	sqlite3_bind_int64(st, 1, c->ca);
	sq_blob(st, 2, c->serial, c->serial_len);
	int rc = sqlite3_step(st);
	snprintf(prior, 16, "%s", rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	KR_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, KR_EIO, "%s: %s", s->path,
		  sqlite3_errmsg(s->db));
	KR_TRY(sq_prepare(
		s,
		"INSERT INTO temp.log_cert VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
		" CASE WHEN ?6 IS NOT NULL THEN ?7 END, CASE WHEN ?3 = 'revoked' THEN ?7 END)"
		" ON CONFLICT (ca, serial) DO UPDATE SET status = excluded.status,"
		" reason = excluded.reason, at = excluded.at,"
		" tbs = coalesce(excluded.tbs, tbs),"
		" issue_seq = coalesce(excluded.issue_seq, issue_seq),"
		" revoke_seq = coalesce(excluded.revoke_seq, revoke_seq)",
		&st));
	sqlite3_bind_int64(st, 1, c->ca);
	sq_blob(st, 2, c->serial, c->serial_len);
	sq_text(st, 3, c->status);
	if (!strcmp(c->status, "revoked")) {
		sqlite3_bind_int(st, 4, c->reason);
		if (c->at >= 0)
			sqlite3_bind_int64(st, 5, c->at);
	}
	sq_blob(st, 6, c->tbs, 32);
	sqlite3_bind_int64(st, 7, c->seq);
	kr_err e = sq_done(s, st, "recording what the log says");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_expect_crl(kr_store *s, int64_t ca, int64_t number,
				       const uint8_t *sha256, int64_t seq, int *again)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "INSERT OR IGNORE INTO temp.log_crl VALUES (?, ?, ?, ?)", &st));
	sqlite3_bind_int64(st, 1, ca);
	sqlite3_bind_int64(st, 2, number);
	sq_blob(st, 3, sha256, 32);
	sqlite3_bind_int64(st, 4, seq);
	kr_err e = sq_done(s, st, "recording what the log says");
	*again = sqlite3_changes(s->db) == 0;
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_state_certs(kr_store *s, kr_cert_state_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT c.ca_id, c.serial, c.status, c.revoked_at, c.reason, c.der,"
			  " l.status, l.reason, l.at, l.tbs, l.issue_seq, l.revoke_seq"
			  " FROM cert c LEFT JOIN temp.log_cert l"
			  " ON l.ca = c.ca_id AND l.serial = c.serial"
			  " UNION ALL SELECT l.ca, l.serial, NULL, NULL, NULL, NULL, l.status,"
			  " l.reason, l.at, l.tbs, l.issue_seq, l.revoke_seq FROM temp.log_cert l"
			  " WHERE NOT EXISTS (SELECT 1 FROM cert c WHERE c.ca_id = l.ca"
			  " AND c.serial = l.serial)",
			  &st));
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		kr_cert_state c = {
			.ca = sqlite3_column_int64(st, 0),
			.serial = sqlite3_column_blob(st, 1),
			.serial_len = (size_t)sqlite3_column_bytes(st, 1),
			.status = (const char *)sqlite3_column_text(st, 2),
			.revoked_at = sqlite3_column_int64(st, 3),
			.reason = sqlite3_column_type(st, 4) == SQLITE_NULL
					  ? -1
					  : sqlite3_column_int(st, 4),
			.der = sqlite3_column_blob(st, 5),
			.der_len = (size_t)sqlite3_column_bytes(st, 5),
			.want = {.status = (const char *)sqlite3_column_text(st, 6),
				 .reason = sqlite3_column_type(st, 7) == SQLITE_NULL
						   ? -1
						   : sqlite3_column_int(st, 7),
				 .at = sqlite3_column_type(st, 8) == SQLITE_NULL
					       ? -1
					       : sqlite3_column_int64(st, 8),
				 .tbs = sqlite3_column_bytes(st, 9) == 32
						? sqlite3_column_blob(st, 9)
						: NULL},
			.issue_seq = sqlite3_column_int64(st, 10),
			.revoke_seq = sqlite3_column_int64(st, 11),
		};
		c.want.ca = c.ca;
		c.want.serial = c.serial;
		c.want.serial_len = c.serial_len;
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "comparing certificates with the audit log");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_state_crls(kr_store *s, kr_crl_state_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(
		s,
		"SELECT r.ca_id, r.number, r.der, l.seq IS NOT NULL, l.sha256, l.seq"
		" FROM crl r LEFT JOIN temp.log_crl l ON l.ca = r.ca_id AND l.number = r.number"
		" UNION ALL SELECT l.ca, l.number, NULL, 1, l.sha256, l.seq FROM temp.log_crl l"
		" WHERE NOT EXISTS (SELECT 1 FROM crl r WHERE r.ca_id = l.ca"
		" AND r.number = l.number) ORDER BY 1, 2",
		&st));
	kr_err e = kr_ok();
	int rc = SQLITE_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		kr_crl_state c = {
			.ca = sqlite3_column_int64(st, 0),
			.number = sqlite3_column_int64(st, 1),
			.der = sqlite3_column_blob(st, 2),
			.der_len = (size_t)sqlite3_column_bytes(st, 2),
			.logged = sqlite3_column_int(st, 3),
			.sha256 = sqlite3_column_bytes(st, 4) == 32 ? sqlite3_column_blob(st, 4)
								    : NULL,
			.seq = sqlite3_column_int64(st, 5),
		};
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "comparing CRLs with the audit log");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_revocations_before(kr_store *s, int64_t ca, int64_t seq,
					       kr_revoked_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT serial, coalesce(at, -1), reason FROM temp.log_cert WHERE ca = ?"
			  " AND status = 'revoked' AND revoke_seq < ? ORDER BY serial",
			  &st));
	sqlite3_bind_int64(st, 1, ca);
	sqlite3_bind_int64(st, 2, seq);
	return revocation_rows(s, st, cb, arg, "listing the log's revocations");
}

/* ---- publication: the records of the last keyrite publish per zone */

KR_MUST_USE kr_err kr_store_publish_begin(kr_store *s)
{
	KR_TRY(sq_exec(s, "CREATE TEMP TABLE IF NOT EXISTS current (owner TEXT NOT NULL,"
			  " type TEXT NOT NULL, rdata TEXT NOT NULL); DELETE FROM current"));
	KR_ENSURE(s->pub_add || sqlite3_prepare_v3(s->db, "INSERT INTO current VALUES (?, ?, ?)",
						   -1, SQLITE_PREPARE_PERSISTENT, &s->pub_add,
						   NULL) == SQLITE_OK,
		  KR_EIO, "%s: %s", s->path, sqlite3_errmsg(s->db));
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_publish_add(kr_store *s, const char *owner, const char *type,
					const char *rdata)
{
	sqlite3_reset(s->pub_add);
	sq_text(s->pub_add, 1, owner);
	sq_text(s->pub_add, 2, type);
	sq_text(s->pub_add, 3, rdata);
	kr_err e = sq_done(s, s->pub_add, "recording a published record");
	sqlite3_reset(s->pub_add); /* the bound strings are the caller's */
	return e;
}

static KR_MUST_USE kr_err diff_rows(kr_store *s, const char *sql, const char *zone, kr_record_cb cb,
				    void *arg)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, sql, &st));
	sq_text(st, 1, zone);
	kr_err e = kr_ok();
	int rc;
	while (!kr_failed(&e) && (rc = sqlite3_step(st)) == SQLITE_ROW)
		e = cb((const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2), arg);
	if (!kr_failed(&e) && rc != SQLITE_DONE)
		e = sq_err(s, "comparing with the last publication");
	sqlite3_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_publish_diff(kr_store *s, const char *zone, kr_record_cb gone,
					 kr_record_cb added, void *arg)
{
	KR_TRY(diff_rows(s,
			 "SELECT owner, type, rdata FROM published WHERE zone = ?1 EXCEPT"
			 " SELECT owner, type, rdata FROM current ORDER BY 1, 2, 3",
			 zone, gone, arg));
	return diff_rows(s,
			 "SELECT owner, type, rdata FROM current EXCEPT SELECT owner, type, rdata"
			 " FROM published WHERE zone = ?1 ORDER BY 1, 2, 3",
			 zone, added, arg);
}

KR_MUST_USE kr_err kr_store_publish_commit(kr_store *s, const char *zone)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "DELETE FROM published WHERE zone = ?1", &st));
	sq_text(st, 1, zone);
	kr_err e = sq_done(s, st, "replacing the last publication");
	sqlite3_finalize(st);
	if (!kr_failed(&e))
		e = sq_prepare(s,
			       "INSERT OR IGNORE INTO published SELECT ?1, owner, type, rdata FROM "
			       "current",
			       &st);
	if (!kr_failed(&e)) {
		sq_text(st, 1, zone);
		e = sq_done(s, st, "recording the publication");
		sqlite3_finalize(st);
	}
	return e;
}

KR_MUST_USE kr_err kr_store_ca_count(kr_store *s, long *n)
{
	sqlite3_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT count(*) FROM ca", &st));
	int rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	KR_ENSURE(rc == SQLITE_ROW, KR_EIO, "%s: counting CAs: %s", s->path, sqlite3_errstr(rc));
	return kr_ok();
}
