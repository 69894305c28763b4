/* The SQLite issuance store. WAL journal, synchronous=FULL: a committed batch
 * survives a killed process and a power cut; callers commit many rows per
 * transaction, so the fsync is paid once per chunk. */
#include "sql.h"
#include "log.h"
#include "../util/hash.h"
#include "../util/mem.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* An audit entry's insert, a chunk's reservations, and its certificates
 * recorded (pending -> valid), in statements of one row or of many
 * (sq_piece). */
#define AUDIT_INSERT                                                                               \
	"INSERT INTO audit (seq, time, kind, detail, prev, hash, ca, serial, device, node,"        \
	" node_seq) VALUES "
#define AUDIT_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define RESERVE_INSERT                                                                             \
	"INSERT INTO cert (ca_id, serial, status, profile, csr_sha256, batch_id, input,"           \
	" device_id, profile_id, node) VALUES "
#define RESERVE_ROW "(?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)"
#define ISSUED_HEAD                                                                                \
	"UPDATE cert SET status = 'valid', subject = v.column1, sans = v.column2,"                 \
	" spki_sha256 = v.column3, not_before = v.column4, not_after = v.column5,"                 \
	" der = v.column6 FROM (VALUES "
#define ISSUED_ROW "(?, ?, ?, ?, ?, ?, ?, ?)"
#define ISSUED_TAIL                                                                                \
	") AS v WHERE cert.ca_id = v.column7 AND cert.serial = v.column8 AND"                      \
	" cert.status = 'pending'"

static const char *const queries[Q_COUNT] = {
	[Q_REJECTED] = "INSERT INTO rejected (batch_id, input, csr_sha256, reason)"
		       " VALUES (?, ?, ?, ?)",
	[Q_AUDIT_HEAD] = "SELECT seq, node_seq, hash FROM audit WHERE node = ? ORDER BY seq DESC"
			 " LIMIT 1",
	[Q_AUDIT_LAST] = "SELECT coalesce(max(seq), 0) FROM audit",
	[Q_AUDIT_ADD] = AUDIT_INSERT AUDIT_ROW,
	[Q_DEVICE_GET] =
		"SELECT coalesce(model, ''), coalesce(version, '') FROM device WHERE id = ?",
	[Q_PROFILE_ID] = "SELECT value FROM counter WHERE name = 'profile_id'",
	[Q_PROFILE_ID_SET] = "UPDATE counter SET value = ? WHERE name = 'profile_id'",
	[Q_REVOKE] = "UPDATE cert SET status = 'revoked', revoked_at = ?, reason = ?"
		     " WHERE ca_id = ? AND serial = ? AND status = 'valid'",
	[Q_SAVEPOINT] = "SAVEPOINT item",
	[Q_RELEASE] = "RELEASE SAVEPOINT item",
	[Q_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT item",
	[Q_FIRMWARE] =
		"INSERT INTO firmware (time, signer, signer_sha256, file, size,"
		" image_sha256, format, output, recipients) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
};

KR_MUST_USE kr_err sq_err(kr_store *s, const char *what)
{
	return kr_errf(KR_EIO, "%s: %s: %s", s->path, what, s->drv->errmsg(s));
}

KR_MUST_USE kr_err sq_exec(kr_store *s, const char *sql) { return s->drv->exec(s, sql); }

void sq_rollback(kr_store *s)
{
	kr_err e = s->drv->exec(s, "ROLLBACK");
	(void)e; /* a transaction the database ended itself is ended */
}

/* ---- statement helpers ---------------------------------------------------- */

KR_MUST_USE kr_err sq_prepare(kr_store *s, const char *sql, db_stmt **st)
{
	return s->drv->prepare(s, sql, st);
}

KR_MUST_USE kr_err sq_cached(kr_store *s, db_stmt **slot, const char *sql, db_stmt **out)
{
	if (!*slot)
		KR_TRY(s->drv->prepare(s, sql, slot));
	db_reset(*slot);
	*out = *slot;
	return kr_ok();
}

db_stmt *sq_q(kr_store *s, int i)
{
	db_reset(s->q[i]);
	return s->q[i];
}

KR_MUST_USE kr_err sq_done(kr_store *s, db_stmt *st, const char *what)
{
	int rc = db_step(st);
	KR_ENSURE(rc == DB_DONE || rc == DB_ROW, KR_EIO, "%s: %s: %s", s->path, what,
		  s->drv->errmsg(s));
	return kr_ok();
}

/* A foreign or damaged database is refused before keyrite writes to it; so
 * is a store made by a newer keyrite. *format: 0 for an empty one. */
static KR_MUST_USE kr_err check_identity(kr_store *s, int64_t *format)
{
	KR_TRY(s->drv->identity(s, format));
	KR_ENSURE(*format == 0 || (*format >= s->drv->schema_format && *format <= KR_STORE_VERSION),
		  KR_EINPUT,
		  "%s: store format %lld, and this keyrite reads formats %d to %d on %s (a newer "
		  "keyrite made it?); refusing to touch it",
		  s->path, (long long)*format, s->drv->schema_format, KR_STORE_VERSION,
		  s->drv->name);
	return kr_ok();
}

/* SQLite's integrity_check over the whole file (O(size), so not on every
 * open); on PostgreSQL, that every table answers. KR_EVERIFY if damaged. */
KR_MUST_USE kr_err kr_store_check(kr_store *s) { return s->drv->check(s); }

/* Format 3's columns for the entries written before it, from their text,
 * a thousand entries at a time (a statement is not stepped while the table
 * it reads is changed). */
static KR_MUST_USE kr_err fill_audit_columns(kr_store *s)
{
	db_stmt *rd = NULL, *wr = NULL;
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
		db_reset(rd);
		db_int(rd, 1, after);
		while (n < 1000 && (rc = db_step(rd)) == DB_ROW) {
			batch[n].seq = db_col_int(rd, 0);
			kr_detail_parse(db_col_text(rd, 1), &batch[n].d);
			n++;
		}
		if (n < 1000 && rc != DB_DONE)
			e = sq_err(s, "reading audit entries to migrate");
		db_reset(rd);
		more = n == 1000;
		for (int i = 0; i < n && !kr_failed(&e); i++) {
			const kr_detail *d = &batch[i].d;
			size_t len = 0;
			const uint8_t *serial = kr_detail_serial(d, &len);
			db_reset(wr);
			if (kr_detail_has(d, KR_D_CA))
				db_int(wr, 1, d->num[KR_D_CA]);
			db_blob(wr, 2, kr_detail_has(d, KR_D_SERIAL) ? serial : NULL, len);
			db_text(wr, 3, kr_detail_has(d, KR_D_DEVICE) ? d->str[KR_D_DEVICE] : NULL);
			db_int(wr, 4, batch[i].seq);
			e = sq_done(s, wr, "migrating the audit log");
			after = batch[i].seq;
		}
	}
	db_finalize(rd);
	db_finalize(wr);
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

/* Format 7: several signing nodes on one database (docs/scaling.md). A
 * reserved row names the node that reserved it, so that a node starting a
 * batch retires the rows its own killed runs left pending and never
 * another node's, which may be signing them at that moment. The first
 * format both backends share. */
static const char schema_v7[] = "ALTER TABLE cert ADD COLUMN node INTEGER NOT NULL DEFAULT 0;";

/* Format 8: a chain per node (log.h). The entries so far are node 0's, its
 * own numbers theirs; a checkpoint names the node whose head it signed. */
static const char schema_v8[] =
	"ALTER TABLE audit ADD COLUMN node INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE audit ADD COLUMN node_seq BIGINT;"
	"UPDATE audit SET node_seq = seq;"
	"CREATE INDEX audit_node ON audit (node, seq);"
	"ALTER TABLE checkpoint ADD COLUMN node INTEGER NOT NULL DEFAULT 0;";

/* Format 9: profile ids from the database's own sequence where it has one
 * (PostgreSQL: each node draws its ids with nextval, which no lock need
 * guard), starting after the counter's last; SQLite keeps its counter. */
static KR_MUST_USE kr_err make_sequences(kr_store *s)
{
	return s->drv->sequences ? sq_exec(s, s->drv->sequences) : kr_ok();
}

/* The steps from one format to the next: steps[i] takes format i + 1 to
 * i + 2. Those before format 6 are SQLite's alone (a PostgreSQL store
 * starts at format 6, db_pg.c); from format 7 on, each is written in the
 * SQL both share, or asks the driver for what is its own (format 9). */
static const struct {
	const char *sql;
	kr_err (*then)(kr_store *s);
} steps[KR_STORE_VERSION - 1] = {
	{schema_v2, NULL}, {schema_v3, fill_audit_columns},
	{schema_v4, NULL}, {schema_v5, NULL},
	{schema_v6, NULL}, {schema_v7, NULL},
	{schema_v8, NULL}, {NULL, make_sequences},
};

/* Makes an empty database a store, or takes an older store to this format,
 * in one transaction that ends by recording the format: a store is never
 * half migrated, and a process that finds another one has just done it
 * (the format is read again under the write lock) does nothing. */
static KR_MUST_USE kr_err migrate(kr_store *s)
{
	KR_TRY(s->drv->begin(s));
	int64_t format = 0;
	kr_err e = s->drv->identity(s, &format);
	if (!kr_failed(&e) && (format < 0 || format > KR_STORE_VERSION))
		e = kr_errf(KR_EINPUT, "%s: store format %lld appeared while it was opened",
			    s->path, (long long)format);
	if (!kr_failed(&e) && format == 0) {
		/* a new store is made in the driver's first format, then taken
		 * up like an old one */
		e = sq_exec(s, s->drv->schema);
		format = s->drv->schema_format;
	}
	int64_t from = format;
	for (int64_t i = format - 1; i < KR_STORE_VERSION - 1 && !kr_failed(&e); i++) {
		if (steps[i].sql)
			e = sq_exec(s, steps[i].sql);
		if (!kr_failed(&e) && steps[i].then)
			e = steps[i].then(s);
		kr_err_prefix(&e, "migrating the store from format %lld to %lld", (long long)i + 1,
			      (long long)i + 2);
	}
	if (!kr_failed(&e) && from < KR_STORE_VERSION)
		e = s->drv->set_format(s, KR_STORE_VERSION);
	if (!kr_failed(&e))
		return sq_exec(s, "COMMIT");
	sq_rollback(s);
	return e;
}

static KR_MUST_USE kr_err prepare_all(kr_store *s)
{
	for (int i = 0; i < Q_COUNT; i++)
		KR_TRY(s->drv->prepare(s, queries[i], &s->q[i]));
	return kr_ok();
}

const char *kr_store_conninfo(const char *where)
{
	static const char pg[] = "postgresql:";
	return strncmp(where, pg, sizeof pg - 1) == 0 ? where + sizeof pg - 1 : NULL;
}

/* A PostgreSQL database's driver and connection string, or SQLite's and
 * the file. */
static const db_driver *driver_of(const char *where, const char **rest)
{
	*rest = kr_store_conninfo(where);
	if (*rest)
		return &kr_db_pg;
	*rest = where;
	return &kr_db_sqlite;
}

KR_MUST_USE kr_err kr_store_open(const char *where, int create, int node, kr_store **out)
{
	KR_ENSURE(node >= 0, KR_EINTERNAL, "node %d out of range", node);
	kr_store *s = calloc(1, sizeof *s);
	KR_ENSURE(s, KR_EINTERNAL, "out of memory");
	const char *rest = NULL;
	s->drv = driver_of(where, &rest);
	s->node = node;
	kr_err e = s->drv->open(s, rest, create);
	int64_t format = 0;
	if (!kr_failed(&e))
		e = check_identity(s, &format);
	if (!kr_failed(&e) && format == 0 && !create)
		e = kr_errf(KR_EINPUT, "%s: no keyrite store here (keyrite issue makes one)",
			    s->path);
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
	if (s->conn && s->drv->closing)
		s->drv->closing(s);
	for (int i = 0; i < Q_COUNT; i++)
		db_finalize(s->q[i]);
	db_finalize(s->pub_add);
	db_finalize(s->profile_ids);
	for (int i = 0; i < SQ_REGISTRY_STATEMENTS; i++)
		db_finalize(s->rq[i]);
	for (int i = 0; i < SQ_SERVICE_STATEMENTS; i++)
		db_finalize(s->sv[i]);
	for (int i = 0; i < SQ_ROW_KINDS; i++)
		for (int k = 0; k < SQ_PIECES; k++)
			db_finalize(s->pieces[i][k]);
	if (s->conn)
		s->drv->close(s);
	free(s->path);
	free(s);
}

int kr_store_node(const kr_store *s) { return s->node; }

/* An audit entry as it is written: the chain's next link. */
typedef struct sq_entry {
	int64_t seq, node_seq;
	int node;
	char now[21], detail[KR_DETAIL_MAX];
	const char *kind;
	uint8_t prev[32], hash[32];
	const kr_detail *d;
} sq_entry;

/* The next entry of this node's chain, the store's next in its one order,
 * which both become (in the cache; the caller writes it in the same
 * transaction). */
static KR_MUST_USE kr_err audit_next(kr_store *s, const char *kind, const kr_detail *d, sq_entry *e)
{
	e->kind = kind;
	e->d = d;
	KR_TRY(kr_detail_format(d, e->detail, sizeof e->detail));
	kr_audit_head h;
	KR_TRY(kr_store_audit_head(s, &h));
	e->seq = s->c.last_seq + 1;
	e->node = s->node;
	e->node_seq = h.node_seq + 1;
	memcpy(e->prev, h.hash, 32);
	sq_now(e->now);
	KR_TRY(kr_audit_hash(e->prev, s->node, e->node_seq, e->now, kind, e->detail, e->hash));
	s->c.last_seq = e->seq;
	s->c.head = (kr_audit_head){.seq = e->seq, .node_seq = e->node_seq};
	memcpy(s->c.head.hash, e->hash, 32);
	return kr_ok();
}

/* Binds an entry as the eleven values after parameter at (AUDIT_ROW's). */
static void bind_entry(db_stmt *st, int at, const sq_entry *e)
{
	db_int(st, at + 1, e->seq);
	db_text(st, at + 2, e->now);
	db_text(st, at + 3, e->kind);
	db_text(st, at + 4, e->detail);
	db_blob(st, at + 5, e->prev, 32);
	db_blob(st, at + 6, e->hash, 32);
	if (kr_detail_has(e->d, KR_D_CA))
		db_int(st, at + 7, e->d->num[KR_D_CA]);
	size_t n = 0;
	const uint8_t *serial = kr_detail_serial(e->d, &n);
	db_blob(st, at + 8, kr_detail_has(e->d, KR_D_SERIAL) ? serial : NULL, n);
	db_text(st, at + 9, kr_detail_has(e->d, KR_D_DEVICE) ? e->d->str[KR_D_DEVICE] : NULL);
	db_int(st, at + 10, e->node);
	db_int(st, at + 11, e->node_seq);
}

/* A statement of many rows: head, the row 2^k times between seps, tail. */
typedef struct sq_rows {
	const char *head, *row, *sep, *tail;
} sq_rows;

static const sq_rows rows_sql[SQ_ROW_KINDS] = {
	[SQ_DEVICES] = {"INSERT INTO device (id, model, version, registered) VALUES ",
			"(?, ?, ?, ?)", ", ", " ON CONFLICT (id) DO NOTHING RETURNING id"},
	/* One lookup per request, each by the request index (CA, profile,
	 * CSR): an IN list was planned as a scan of the CA's rows while the
	 * table's statistics lagged its growth, on PostgreSQL 9 ms a chunk at
	 * 10000. */
	[SQ_PRIORS] = {"",
		       "SELECT status, der, batch_id, serial, subject, node, csr_sha256 FROM cert"
		       " WHERE ca_id = ?1 AND profile = ?2 AND status <> 'abandoned' AND"
		       " csr_sha256 = ?",
		       " UNION ALL ", ""},
	[SQ_AUDITS] = {AUDIT_INSERT, AUDIT_ROW, ", ", ""},
	[SQ_ISSUED] = {ISSUED_HEAD, ISSUED_ROW, ", ", ISSUED_TAIL},
	[SQ_RESERVES] = {RESERVE_INSERT, RESERVE_ROW, ", ", ""},
};

/* The statement of kind with 2^k rows, prepared at its first use. */
static KR_MUST_USE kr_err sq_piece(kr_store *s, int kind, int k, db_stmt **out)
{
	db_stmt **slots = s->pieces[kind];
	const sq_rows *r = &rows_sql[kind];
	if (slots[k])
		return sq_cached(s, &slots[k], NULL, out);
	size_t n = (size_t)1 << k;
	size_t len = strlen(r->head) + n * (strlen(r->row) + strlen(r->sep)) + strlen(r->tail) + 1;
	char *sql = malloc(len);
	KR_ENSURE(sql, KR_EINTERNAL, "out of memory");
	size_t o = (size_t)snprintf(sql, len, "%s", r->head);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(sql + o, len - o, "%s%s", i ? r->sep : "", r->row);
	snprintf(sql + o, len - o, "%s", r->tail);
	kr_err e = sq_cached(s, &slots[k], sql, out);
	free(sql);
	return e;
}

/* The largest piece for n rows: 2^k <= n, up to 2^(SQ_PIECES - 1). */
static int piece_for(size_t n)
{
	int k = 0;
	while (k + 1 < SQ_PIECES && ((size_t)2 << k) <= n)
		k++;
	return k;
}

/* ---- transactions ------------------------------------------------------------ */

static void forget_cached(kr_store *s)
{
	s->c.head_valid = s->c.pid_valid = s->c.pid_dirty = s->marked = 0;
}

static KR_MUST_USE kr_err begin(kr_store *s)
{
	forget_cached(s);
	return s->drv->begin(s);
}

static KR_MUST_USE kr_err commit(kr_store *s)
{
	kr_err e = kr_ok();
	if (s->c.pid_dirty) {
		db_stmt *st = sq_q(s, Q_PROFILE_ID_SET);
		db_int(st, 1, s->c.pid);
		e = sq_done(s, st, "counting profile ids");
	}
	forget_cached(s);
	if (kr_failed(&e)) {
		sq_rollback(s);
		return e;
	}
	return sq_exec(s, "COMMIT");
}

static void rollback(kr_store *s)
{
	forget_cached(s);
	sq_rollback(s);
}

KR_MUST_USE kr_err kr_txn_begin(kr_txn *t, kr_store *s)
{
	KR_ENSURE(!t->s, KR_EINTERNAL, "a transaction inside a transaction");
	KR_TRY(begin(s));
	t->s = s;
	return kr_ok();
}

KR_MUST_USE kr_err kr_txn_begin_snapshot(kr_txn *t, kr_store *s)
{
	KR_ENSURE(!t->s, KR_EINTERNAL, "a transaction inside a transaction");
	forget_cached(s);
	KR_TRY(s->drv->begin_snapshot(s));
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
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT id, der FROM ca WHERE name = ?", &st));
	db_text(st, 1, name);
	int rc = db_step(st);
	kr_err e = kr_ok();
	*id = 0;
	if (rc == DB_ROW && (db_col_bytes(st, 1) != (size_t)len ||
			     memcmp(db_col_blob(st, 1), der, (size_t)len) != 0))
		e = kr_errf(KR_EINPUT, "%s: CA '%s' is recorded with a different certificate",
			    s->path, name);
	else if (rc == DB_ROW)
		*id = db_col_int(st, 0);
	else if (rc != DB_DONE)
		e = sq_err(s, "looking up CA");
	db_finalize(st);
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
	/* Two nodes may meet the CA for the first time at once: the second
	 * insert does nothing, and both read the one row back (which must hold
	 * this certificate). */
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "INSERT INTO ca (name, subject, der) VALUES (?, ?, ?)"
			  " ON CONFLICT (name) DO NOTHING",
			  &st));
	KR_AUTO(uint8_t)
	subject = (uint8_t *)X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
	db_text(st, 1, name);
	db_text(st, 2, (const char *)subject);
	db_blob(st, 3, der, (size_t)len);
	kr_err e = sq_done(s, st, "adding CA");
	db_finalize(st);
	KR_TRY(e);
	KR_TRY(ca_lookup(s, name, der, len, id));
	KR_ENSURE(*id, KR_EINTERNAL, "%s: CA '%s' was added but is not there", s->path, name);
	return kr_ok();
}

/* 2^k devices in one statement; added[i] for those that were not there. */
static KR_MUST_USE kr_err devices_piece(kr_store *s, const kr_device *d, int k, const char *now,
					int *added)
{
	size_t n = (size_t)1 << k;
	db_stmt *st = NULL;
	KR_TRY(sq_piece(s, SQ_DEVICES, k, &st));
	for (size_t i = 0; i < n; i++) {
		int at = (int)i * 4;
		db_text(st, at + 1, d[i].id);
		db_text(st, at + 2, d[i].model);
		db_text(st, at + 3, d[i].version);
		db_text(st, at + 4, now);
		added[i] = 0;
	}
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		const char *id = db_col_text(st, 0);
		for (size_t i = 0; id && i < n; i++)
			if (!added[i] && strcmp(d[i].id, id) == 0) {
				added[i] = 1;
				break;
			}
	}
	KR_ENSURE(rc == DB_DONE, KR_EIO, "%s: adding devices: %s", s->path, s->drv->errmsg(s));
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_add_devices(kr_store *s, const kr_device *d, size_t n, int *added)
{
	char now[21];
	sq_now(now);
	for (size_t done = 0; done < n;) {
		int k = piece_for(n - done);
		KR_TRY(devices_piece(s, d + done, k, now, added + done));
		done += (size_t)1 << k;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_device(kr_store *s, const char *id, int *found, char *model,
				   size_t modelsz, char *version, size_t versionsz)
{
	db_stmt *st = sq_q(s, Q_DEVICE_GET);
	db_text(st, 1, id);
	int rc = db_step(st);
	KR_ENSURE(rc == DB_ROW || rc == DB_DONE, KR_EIO, "%s: %s", s->path, s->drv->errmsg(s));
	*found = rc == DB_ROW;
	snprintf(model, modelsz, "%s", *found ? db_col_text(st, 0) : "");
	snprintf(version, versionsz, "%s", *found ? db_col_text(st, 1) : "");
	db_reset(st); /* the texts were copied */
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_set_device_version(kr_store *s, const char *id, const char *from,
					       const char *to)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "UPDATE device SET version = ? WHERE id = ?", &st));
	db_text(st, 1, to);
	db_text(st, 2, id);
	kr_err e = sq_done(s, st, "recording a device's version");
	db_finalize(st);
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
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(
		s, "INSERT INTO batch (ca_id, profile, started) VALUES (?, ?, ?) RETURNING id",
		&st));
	db_int(st, 1, ca);
	db_text(st, 2, profile);
	db_text(st, 3, now);
	kr_err e = sq_done(s, st, "starting batch");
	*batch = kr_failed(&e) ? 0 : db_col_int(st, 0);
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_finish_batch(kr_store *s, int64_t batch, const kr_batch_counts *c)
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "UPDATE batch SET finished = ?, issued = ?, rejected = ?,"
			  " already = ? WHERE id = ?",
			  &st));
	db_text(st, 1, now);
	db_int(st, 2, c->issued);
	db_int(st, 3, c->rejected);
	db_int(st, 4, c->already);
	db_int(st, 5, batch);
	kr_err e = sq_done(s, st, "finishing batch");
	db_finalize(st);
	return e;
}

/* ---- issuance --------------------------------------------------------------- */

void kr_prior_clear(kr_prior *p)
{
	free(p->der);
	memset(p, 0, sizeof *p);
}

/* out from a row of SQ_PRIORS's columns. */
static KR_MUST_USE kr_err prior_of(db_stmt *st, kr_prior *out)
{
	out->found = 1;
	out->batch = db_col_int(st, 2);
	out->node = db_col_small(st, 5);
	size_t sn = db_col_bytes(st, 3);
	out->serial_len = sn <= 20 ? sn : 0;
	memcpy(out->serial, db_col_blob(st, 3), out->serial_len);
	const char *subject = db_col_text(st, 4);
	snprintf(out->subject, sizeof out->subject, "%s", subject ? subject : "");
	snprintf(out->status, sizeof out->status, "%s", db_col_text(st, 0));
	size_t n = db_col_bytes(st, 1);
	if (n > 0) {
		out->der = malloc(n);
		KR_ENSURE(out->der, KR_EINTERNAL, "out of memory");
		memcpy(out->der, db_col_blob(st, 1), n);
		out->der_len = n;
	}
	return kr_ok();
}

/* 2^k of the requests: one statement finds those the store has seen. */
static KR_MUST_USE kr_err priors_piece(kr_store *s, int64_t ca, const char *profile,
				       const uint8_t (*csr)[32], int k, kr_prior *out)
{
	size_t n = (size_t)1 << k;
	db_stmt *st = NULL;
	KR_TRY(sq_piece(s, SQ_PRIORS, k, &st));
	db_int(st, 1, ca);
	db_text(st, 2, profile);
	for (size_t i = 0; i < n; i++)
		db_blob(st, 3 + (int)i, csr[i], 32);
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		const void *h = db_col_blob(st, 6);
		for (size_t i = 0; h && db_col_bytes(st, 6) == 32 && i < n; i++)
			if (!out[i].found && memcmp(csr[i], h, 32) == 0) {
				KR_TRY(prior_of(st, &out[i]));
				break;
			}
	}
	KR_ENSURE(rc == DB_DONE, KR_EIO, "%s: looking up requests: %s", s->path, s->drv->errmsg(s));
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_priors(kr_store *s, int64_t ca, const char *profile,
				   const uint8_t (*csr)[32], size_t n, kr_prior *out)
{
	memset(out, 0, n * sizeof *out);
	for (size_t done = 0; done < n;) {
		int k = piece_for(n - done);
		KR_TRY(priors_piece(s, ca, profile, csr + done, k, out + done));
		done += (size_t)1 << k;
	}
	return kr_ok();
}

/* The next id from the counter, counted here and written at the commit. */
static KR_MUST_USE kr_err count_profile_id(kr_store *s, int64_t *id)
{
	if (!s->c.pid_valid) {
		db_stmt *st = sq_q(s, Q_PROFILE_ID);
		int rc = db_step(st);
		KR_ENSURE(rc == DB_ROW, KR_EIO, "%s: profile id: %s", s->path, s->drv->errmsg(s));
		s->c.pid = db_col_int(st, 0);
		db_reset(st);
		s->c.pid_valid = 1;
	}
	*id = ++s->c.pid;
	s->c.pid_dirty = 1;
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_take_profile_ids(kr_store *s, size_t n, int64_t *ids)
{
	if (!s->drv->profile_ids) {
		for (size_t i = 0; i < n; i++)
			KR_TRY(count_profile_id(s, &ids[i]));
		return kr_ok();
	}
	if (n == 0)
		return kr_ok();
	if (!s->profile_ids)
		KR_TRY(sq_prepare(s, s->drv->profile_ids, &s->profile_ids));
	db_stmt *st = s->profile_ids;
	db_int(st, 1, (int64_t)n);
	size_t got = 0;
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		if (got < n)
			ids[got++] = db_col_int(st, 0);
	kr_err e = rc == DB_DONE && got == n ? kr_ok() : sq_err(s, "drawing profile ids");
	db_reset(st);
	return e;
}

KR_MUST_USE kr_err kr_store_take_profile_id(kr_store *s, int64_t *id)
{
	return kr_store_take_profile_ids(s, 1, id);
}

/* What a piece of a chunk's completions writes to the audit log. */
typedef struct sq_issues {
	kr_detail d[1 << (SQ_PIECES - 1)];
	sq_entry e[1 << (SQ_PIECES - 1)];
} sq_issues;

static KR_MUST_USE kr_err audit_issues(kr_store *s, const kr_cert_row *rows, int k, sq_issues *a)
{
	size_t n = (size_t)1 << k;
	for (size_t i = 0; i < n; i++) {
		const kr_cert_row *r = &rows[i];
		kr_detail *d = &a->d[i];
		kr_detail_init(d);
		kr_detail_num(d, KR_D_CA, r->ca);
		kr_detail_bytes(d, KR_D_SERIAL, r->serial, r->serial_len);
		kr_detail_str(d, KR_D_PROFILE, r->profile);
		kr_detail_bytes(d, KR_D_CSR, r->csr_sha256, 32);
		kr_detail_bytes(d, KR_D_TBS, r->tbs_sha256, 32);
		KR_TRY(audit_next(s, "issue", d, &a->e[i]));
	}
	db_stmt *st = NULL;
	KR_TRY(sq_piece(s, SQ_AUDITS, k, &st));
	for (size_t i = 0; i < n; i++)
		bind_entry(st, (int)i * 11, &a->e[i]);
	return sq_done(s, st, "appending to the audit log");
}

/* 2^k rows of a chunk: one statement records them, one logs them. */
static KR_MUST_USE kr_err complete_piece(kr_store *s, const kr_cert_row *rows, int k, sq_issues *a)
{
	size_t n = (size_t)1 << k;
	db_stmt *st = NULL;
	KR_TRY(sq_piece(s, SQ_ISSUED, k, &st));
	for (size_t i = 0; i < n; i++) {
		const kr_cert_row *r = &rows[i];
		int at = (int)i * 8;
		db_text(st, at + 1, r->subject);
		db_text(st, at + 2, r->sans);
		db_blob(st, at + 3, r->spki_sha256, 32);
		db_int(st, at + 4, r->not_before);
		db_int(st, at + 5, r->not_after);
		db_blob(st, at + 6, r->der, r->der_len);
		db_int(st, at + 7, r->ca);
		db_blob(st, at + 8, r->serial, r->serial_len);
	}
	KR_TRY(sq_done(s, st, "recording certificates"));
	KR_ENSURE(s->drv->changes(s) == (long)n, KR_EINTERNAL, "%s: no pending row for a serial",
		  s->path);
	return audit_issues(s, rows, k, a);
}

/* A chunk is recorded in pieces of up to 64 rows: on PostgreSQL each
 * statement is a round trip under the store's lock, and a certificate's two
 * (its row, its audit entry) were most of a chunk's time there. */
KR_MUST_USE kr_err kr_store_complete(kr_store *s, const kr_cert_row *rows, size_t n)
{
	sq_issues *a = malloc(sizeof *a);
	KR_ENSURE(a, KR_EINTERNAL, "out of memory");
	kr_err e = kr_ok();
	for (size_t done = 0; done < n && !kr_failed(&e);) {
		int k = piece_for(n - done);
		e = complete_piece(s, rows + done, k, a);
		done += (size_t)1 << k;
	}
	free(a);
	return e;
}

static KR_MUST_USE kr_err reserve_piece(kr_store *s, const kr_cert_row *rows, int k)
{
	db_stmt *st = NULL;
	KR_TRY(sq_piece(s, SQ_RESERVES, k, &st));
	for (size_t i = 0; i < (size_t)1 << k; i++) {
		const kr_cert_row *r = &rows[i];
		int at = (int)i * 9;
		db_int(st, at + 1, r->ca);
		db_blob(st, at + 2, r->serial, r->serial_len);
		db_text(st, at + 3, r->profile);
		db_blob(st, at + 4, r->csr_sha256, 32);
		db_int(st, at + 5, r->batch);
		db_text(st, at + 6, r->input);
		db_text(st, at + 7, r->device_id);
		if (r->profile_id > 0)
			db_int(st, at + 8, r->profile_id);
		db_int(st, at + 9, s->node);
	}
	return sq_done(s, st, "reserving serials");
}

KR_MUST_USE kr_err kr_store_reserve(kr_store *s, const kr_cert_row *rows, size_t n)
{
	for (size_t done = 0; done < n;) {
		int k = piece_for(n - done);
		KR_TRY(reserve_piece(s, rows + done, k));
		done += (size_t)1 << k;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_reject(kr_store *s, int64_t batch, const char *input,
				   const uint8_t *csr_sha256, const char *reason)
{
	db_stmt *st = sq_q(s, Q_REJECTED);
	db_int(st, 1, batch);
	db_text(st, 2, input);
	db_blob(st, 3, csr_sha256, 32);
	db_text(st, 4, reason);
	return sq_done(s, st, "recording a rejection");
}

KR_MUST_USE kr_err kr_store_abandon_pending(kr_store *s, int64_t ca, long *n)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "UPDATE cert SET status = 'abandoned' WHERE ca_id = ? AND"
			  " status = 'pending' AND node = ? RETURNING serial, batch_id",
			  &st));
	db_int(st, 1, ca);
	db_int(st, 2, s->node);
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
	while ((rc = db_step(st)) == DB_ROW) {
		e = kr_grow((void **)&list, &cap, (size_t)*n + 1, sizeof *list);
		if (kr_failed(&e))
			break;
		size_t len = db_col_bytes(st, 0);
		list[*n].len = len <= 20 ? len : 0;
		memcpy(list[*n].serial, db_col_blob(st, 0), list[*n].len);
		list[*n].batch = db_col_int(st, 1);
		(*n)++;
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "retiring pending serials");
	db_finalize(st);
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
	db_stmt *st = NULL;
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
	db_text(st, 1, f->ca);
	db_text(st, 2, f->status);
	db_text(st, 3, f->device_id);
	db_blob(st, 4, f->serial, f->serial_len);
	kr_err e = kr_ok();
	int rc = DB_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		kr_cert_info c = {
			.ca = db_col_text(st, 0),
			.status = db_col_text(st, 1),
			.profile = db_col_text(st, 2),
			.device_id = db_col_text(st, 3),
			.subject = db_col_text(st, 4),
			.sans = db_col_text(st, 5),
			.serial = db_col_blob(st, 6),
			.serial_len = db_col_bytes(st, 6),
			.der = db_col_blob(st, 7),
			.der_len = db_col_bytes(st, 7),
			.profile_id = db_col_int(st, 8),
			.not_before = db_col_int(st, 9),
			.not_after = db_col_int(st, 10),
			.revoked_at = db_col_int(st, 11),
			.reason = db_col_null(st, 12) ? -1 : db_col_small(st, 12),
			.spki_sha256 = db_col_bytes(st, 13) == 32 ? db_col_blob(st, 13) : NULL,
			.withheld = db_col_small(st, 14),
		};
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "listing certificates");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_revoke(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
				   int reason, int64_t when)
{
	db_stmt *st = sq_q(s, Q_REVOKE);
	db_int(st, 1, when);
	db_int(st, 2, reason);
	db_int(st, 3, ca);
	db_blob(st, 4, serial, len);
	kr_err e = sq_done(s, st, "revoking");
	long changed = s->drv->changes(s);
	db_reset(st);
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
static KR_MUST_USE kr_err revocation_rows(kr_store *s, db_stmt *st, kr_revoked_cb cb, void *arg,
					  const char *what)
{
	kr_err e = kr_ok();
	int rc = DB_DONE;
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW)
		e = cb(db_col_blob(st, 0), db_col_bytes(st, 0), db_col_int(st, 1),
		       db_col_small(st, 2), arg);
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, what);
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_revocations(kr_store *s, int64_t ca, kr_revoked_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT serial, revoked_at, reason FROM cert WHERE ca_id = ?"
			  " AND status = 'revoked' ORDER BY serial",
			  &st));
	db_int(st, 1, ca);
	return revocation_rows(s, st, cb, arg, "listing revocations");
}

KR_MUST_USE kr_err kr_store_next_crl_number(kr_store *s, int64_t ca, int64_t *number)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT coalesce(max(number), 0) + 1 FROM crl WHERE ca_id = ?", &st));
	db_int(st, 1, ca);
	int rc = db_step(st);
	*number = rc == DB_ROW ? db_col_int(st, 0) : 0;
	db_finalize(st);
	KR_ENSURE(rc == DB_ROW, KR_EIO, "%s: next CRL number", s->path);
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_add_crl(kr_store *s, int64_t ca, int64_t number, int64_t this_update,
				    int64_t next_update, long nrevoked, const uint8_t *der,
				    size_t len)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "INSERT INTO crl VALUES (?, ?, ?, ?, ?)", &st));
	db_int(st, 1, ca);
	db_int(st, 2, number);
	db_int(st, 3, this_update);
	db_int(st, 4, next_update);
	db_blob(st, 5, der, len);
	kr_err e = sq_done(s, st, "recording the CRL");
	db_finalize(st);
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

KR_MUST_USE kr_err kr_store_audit_head(kr_store *s, kr_audit_head *h)
{
	if (!s->c.head_valid) {
		db_stmt *st = sq_q(s, Q_AUDIT_LAST);
		int rc = db_step(st);
		KR_ENSURE(rc == DB_ROW, KR_EIO, "%s: audit head: %s", s->path, s->drv->errmsg(s));
		s->c.last_seq = db_col_int(st, 0);
		db_reset(st);
		st = sq_q(s, Q_AUDIT_HEAD);
		db_int(st, 1, s->node);
		rc = db_step(st);
		KR_ENSURE(rc == DB_ROW || rc == DB_DONE, KR_EIO, "%s: audit head: %s", s->path,
			  s->drv->errmsg(s));
		s->c.head = (kr_audit_head){0};
		if (rc == DB_ROW) {
			s->c.head.seq = db_col_int(st, 0);
			s->c.head.node_seq = db_col_int(st, 1);
			if (db_col_bytes(st, 2) == 32)
				memcpy(s->c.head.hash, db_col_blob(st, 2), 32);
		}
		db_reset(st);
		s->c.head_valid = 1;
	}
	*h = s->c.head;
	return kr_ok();
}

/* The entry's text from its fields, and the columns a lookup uses. */
KR_MUST_USE kr_err sq_audit(kr_store *s, const char *kind, const kr_detail *d)
{
	sq_entry e;
	KR_TRY(audit_next(s, kind, d, &e));
	db_stmt *st = sq_q(s, Q_AUDIT_ADD);
	bind_entry(st, 0, &e);
	return sq_done(s, st, "appending to the audit log");
}

KR_MUST_USE kr_err kr_store_add_firmware(kr_store *s, const kr_fw_row *r)
{
	char now[21];
	sq_now(now);
	db_stmt *st = sq_q(s, Q_FIRMWARE);
	db_text(st, 1, now);
	db_text(st, 2, r->signer);
	db_blob(st, 3, r->signer_sha256, 32);
	db_text(st, 4, r->file);
	db_int(st, 5, r->size);
	db_blob(st, 6, r->image_sha256, 32);
	db_text(st, 7, r->format);
	db_text(st, 8, r->output);
	db_text(st, 9, r->recipients);
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
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(
		s,
		"SELECT time, signer, signer_sha256, file, size, image_sha256, format, output,"
		" recipients FROM firmware ORDER BY id",
		&st));
	kr_err e = kr_ok();
	int rc = DB_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to r */
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		int digests = db_col_bytes(st, 2) == 32 && db_col_bytes(st, 5) == 32;
		kr_fw_row r = {
			.time = db_col_text(st, 0),
			.signer = db_col_text(st, 1),
			.signer_sha256 = digests ? db_col_blob(st, 2) : NULL,
			.file = db_col_text(st, 3),
			.size = db_col_int(st, 4),
			.image_sha256 = digests ? db_col_blob(st, 5) : NULL,
			.format = db_col_text(st, 6),
			.output = db_col_text(st, 7),
			.recipients = db_col_text(st, 8),
		};
		e = digests ? cb(&r, arg)
			    : kr_errf(KR_EVERIFY, "%s: a firmware row's digests are not 32 octets",
				      s->path);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "listing firmware signatures");
	db_finalize(st);
	return e;
}

#define AUDIT_COLUMNS "seq, time, kind, detail, prev, hash, ca, serial, device, node, node_seq"

/* Calls cb for each row of st, a SELECT of AUDIT_COLUMNS. */
static KR_MUST_USE kr_err audit_rows(kr_store *s, db_stmt *st, kr_audit_cb cb, void *arg)
{
	kr_err e = kr_ok();
	int rc = DB_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to a */
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		kr_audit_entry a = {
			.seq = db_col_int(st, 0),
			.time = db_col_text(st, 1),
			.kind = db_col_text(st, 2),
			.detail = db_col_text(st, 3),
			.prev = db_col_bytes(st, 4) == 32 ? db_col_blob(st, 4) : NULL,
			.hash = db_col_bytes(st, 5) == 32 ? db_col_blob(st, 5) : NULL,
			.ca = db_col_int(st, 6),
			.serial = db_col_blob(st, 7),
			.serial_len = db_col_bytes(st, 7),
			.device = db_col_text(st, 8),
			.node = db_col_small(st, 9),
			.node_seq = db_col_int(st, 10),
		};
		e = cb(&a, arg);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "reading the audit log");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_audit_walk(kr_store *s, kr_audit_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq", &st));
	return audit_rows(s, st, cb, arg);
}

KR_MUST_USE kr_err kr_store_has_checkpoint(kr_store *s, int64_t seq, int *yes)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT 1 FROM checkpoint WHERE seq = ?", &st));
	db_int(st, 1, seq);
	int rc = db_step(st);
	db_finalize(st);
	KR_ENSURE(rc == DB_ROW || rc == DB_DONE, KR_EIO, "%s: checkpoint lookup", s->path);
	*yes = rc == DB_ROW;
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_history(kr_store *s, const uint8_t *serial, size_t len, kr_audit_cb cb,
				    void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit WHERE serial = ? ORDER BY seq",
			  &st));
	db_blob(st, 1, serial, len);
	return audit_rows(s, st, cb, arg);
}

KR_MUST_USE kr_err kr_store_device_history(kr_store *s, const char *device, kr_audit_cb cb,
					   void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit WHERE device = ? ORDER BY seq",
			  &st));
	db_text(st, 1, device);
	return audit_rows(s, st, cb, arg);
}

KR_MUST_USE kr_err kr_store_add_checkpoint(kr_store *s, int64_t ca, const kr_audit_head *h,
					   const uint8_t *sig, size_t len, const uint8_t *signer,
					   size_t signer_len)
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "INSERT INTO checkpoint (seq, ca_id, time, head, signature, signer, node)"
			  " VALUES (?, ?, ?, ?, ?, ?, ?)",
			  &st));
	db_int(st, 1, h->seq);
	db_int(st, 2, ca);
	db_text(st, 3, now);
	db_blob(st, 4, h->hash, 32);
	db_blob(st, 5, sig, len);
	if (signer)
		db_blob(st, 6, signer, signer_len);
	db_int(st, 7, s->node);
	kr_err e = sq_done(s, st, "recording a checkpoint");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_checkpoints(kr_store *s, kr_checkpoint_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT seq, ca.name, time, head, signature, ca.der, signer, node FROM"
			  " checkpoint JOIN ca ON ca.id = checkpoint.ca_id ORDER BY seq",
			  &st));
	kr_err e = kr_ok();
	int rc = DB_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		kr_checkpoint c = {
			.seq = db_col_int(st, 0),
			.ca = db_col_text(st, 1),
			.time = db_col_text(st, 2),
			.head = db_col_bytes(st, 3) == 32 ? db_col_blob(st, 3) : NULL,
			.sig = db_col_blob(st, 4),
			.sig_len = db_col_bytes(st, 4),
			.ca_der = db_col_blob(st, 5),
			.ca_der_len = db_col_bytes(st, 5),
			.signer_der = db_col_blob(st, 6),
			.signer_der_len = db_col_bytes(st, 6),
			.node = db_col_small(st, 7),
		};
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "reading checkpoints");
	db_finalize(st);
	return e;
}

/* ---- audit verification ----------------------------------------------------- */

KR_MUST_USE kr_err kr_store_expect_begin(kr_store *s)
{
	char sql[640];
	const char *blob = s->drv->blob_type;
	snprintf(sql, sizeof sql,
		 "CREATE TEMP TABLE IF NOT EXISTS log_cert (ca BIGINT NOT NULL,"
		 " serial %s NOT NULL, status %s NOT NULL, reason BIGINT, at BIGINT,"
		 " tbs %s, issue_seq BIGINT, revoke_seq BIGINT, PRIMARY KEY (ca, serial));"
		 "CREATE TEMP TABLE IF NOT EXISTS log_crl (ca BIGINT NOT NULL,"
		 " number BIGINT NOT NULL, sha256 %s, seq BIGINT NOT NULL,"
		 " PRIMARY KEY (ca, number));"
		 "DELETE FROM log_cert; DELETE FROM log_crl",
		 blob, s->drv->text_type, blob, blob);
	return sq_exec(s, sql);
}

KR_MUST_USE kr_err kr_store_expect_cert(kr_store *s, const kr_expect_cert *c, char prior[16])
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT status FROM log_cert WHERE ca = ? AND serial = ?", &st));
	db_int(st, 1, c->ca);
	db_blob(st, 2, c->serial, c->serial_len);
	int rc = db_step(st);
	snprintf(prior, 16, "%s", rc == DB_ROW ? db_col_text(st, 0) : "");
	db_finalize(st);
	KR_ENSURE(rc == DB_ROW || rc == DB_DONE, KR_EIO, "%s: %s", s->path, s->drv->errmsg(s));
	KR_TRY(sq_prepare(s,
			  "INSERT INTO log_cert VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
			  " ON CONFLICT (ca, serial) DO UPDATE SET status = excluded.status,"
			  " reason = excluded.reason, at = excluded.at,"
			  " tbs = coalesce(excluded.tbs, log_cert.tbs),"
			  " issue_seq = coalesce(excluded.issue_seq, log_cert.issue_seq),"
			  " revoke_seq = coalesce(excluded.revoke_seq, log_cert.revoke_seq)",
			  &st));
	int revoked = !strcmp(c->status, "revoked");
	db_int(st, 1, c->ca);
	db_blob(st, 2, c->serial, c->serial_len);
	db_text(st, 3, c->status);
	if (revoked) {
		db_int(st, 4, c->reason);
		if (c->at >= 0)
			db_int(st, 5, c->at);
		db_int(st, 8, c->seq);
	}
	db_blob(st, 6, c->tbs, 32);
	if (c->tbs) /* an issue: the entry that made it */
		db_int(st, 7, c->seq);
	kr_err e = sq_done(s, st, "recording what the log says");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_expect_crl(kr_store *s, int64_t ca, int64_t number,
				       const uint8_t *sha256, int64_t seq, int *again)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "INSERT INTO log_crl VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			  &st));
	db_int(st, 1, ca);
	db_int(st, 2, number);
	db_blob(st, 3, sha256, 32);
	db_int(st, 4, seq);
	kr_err e = sq_done(s, st, "recording what the log says");
	*again = s->drv->changes(s) == 0;
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_state_certs(kr_store *s, kr_cert_state_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT c.ca_id, c.serial, c.status, c.revoked_at, c.reason, c.der,"
			  " l.status, l.reason, l.at, l.tbs, l.issue_seq, l.revoke_seq"
			  " FROM cert c LEFT JOIN log_cert l"
			  " ON l.ca = c.ca_id AND l.serial = c.serial"
			  " UNION ALL SELECT l.ca, l.serial, NULL, NULL, NULL, NULL, l.status,"
			  " l.reason, l.at, l.tbs, l.issue_seq, l.revoke_seq FROM log_cert l"
			  " WHERE NOT EXISTS (SELECT 1 FROM cert c WHERE c.ca_id = l.ca"
			  " AND c.serial = l.serial)",
			  &st));
	kr_err e = kr_ok();
	int rc = DB_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		kr_cert_state c = {
			.ca = db_col_int(st, 0),
			.serial = db_col_blob(st, 1),
			.serial_len = db_col_bytes(st, 1),
			.status = db_col_text(st, 2),
			.revoked_at = db_col_int(st, 3),
			.reason = db_col_null(st, 4) ? -1 : db_col_small(st, 4),
			.der = db_col_blob(st, 5),
			.der_len = db_col_bytes(st, 5),
			.want = {.status = db_col_text(st, 6),
				 .reason = db_col_null(st, 7) ? -1 : db_col_small(st, 7),
				 .at = db_col_null(st, 8) ? -1 : db_col_int(st, 8),
				 .tbs = db_col_bytes(st, 9) == 32 ? db_col_blob(st, 9) : NULL},
			.issue_seq = db_col_int(st, 10),
			.revoke_seq = db_col_int(st, 11),
		};
		c.want.ca = c.ca;
		c.want.serial = c.serial;
		c.want.serial_len = c.serial_len;
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "comparing certificates with the audit log");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_state_crls(kr_store *s, kr_crl_state_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(
		s,
		"SELECT r.ca_id, r.number, r.der, CASE WHEN l.seq IS NULL THEN 0 ELSE 1 END,"
		" l.sha256, l.seq"
		" FROM crl r LEFT JOIN log_crl l ON l.ca = r.ca_id AND l.number = r.number"
		" UNION ALL SELECT l.ca, l.number, NULL, 1, l.sha256, l.seq FROM log_crl l"
		" WHERE NOT EXISTS (SELECT 1 FROM crl r WHERE r.ca_id = l.ca"
		" AND r.number = l.number) ORDER BY 1, 2",
		&st));
	kr_err e = kr_ok();
	int rc = DB_DONE;
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to c */
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		kr_crl_state c = {
			.ca = db_col_int(st, 0),
			.number = db_col_int(st, 1),
			.der = db_col_blob(st, 2),
			.der_len = db_col_bytes(st, 2),
			.logged = db_col_small(st, 3),
			.sha256 = db_col_bytes(st, 4) == 32 ? db_col_blob(st, 4) : NULL,
			.seq = db_col_int(st, 5),
		};
		e = cb(&c, arg);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "comparing CRLs with the audit log");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_revocations_before(kr_store *s, int64_t ca, int64_t seq,
					       kr_revoked_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s,
			  "SELECT serial, coalesce(at, -1), reason FROM log_cert WHERE ca = ?"
			  " AND status = 'revoked' AND revoke_seq < ? ORDER BY serial",
			  &st));
	db_int(st, 1, ca);
	db_int(st, 2, seq);
	return revocation_rows(s, st, cb, arg, "listing the log's revocations");
}

/* ---- publication: the records of the last keyrite publish per zone */

KR_MUST_USE kr_err kr_store_publish_begin(kr_store *s)
{
	char sql[256];
	const char *text = s->drv->text_type;
	snprintf(sql, sizeof sql,
		 "CREATE TEMP TABLE IF NOT EXISTS current (owner %s NOT NULL, type %s NOT NULL,"
		 " rdata %s NOT NULL); DELETE FROM current",
		 text, text, text);
	KR_TRY(sq_exec(s, sql));
	if (!s->pub_add)
		KR_TRY(sq_prepare(s, "INSERT INTO current VALUES (?, ?, ?)", &s->pub_add));
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_publish_add(kr_store *s, const char *owner, const char *type,
					const char *rdata)
{
	db_reset(s->pub_add);
	db_text(s->pub_add, 1, owner);
	db_text(s->pub_add, 2, type);
	db_text(s->pub_add, 3, rdata);
	kr_err e = sq_done(s, s->pub_add, "recording a published record");
	db_reset(s->pub_add); /* the bound strings are the caller's */
	return e;
}

static KR_MUST_USE kr_err diff_rows(kr_store *s, const char *sql, const char *zone, kr_record_cb cb,
				    void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, sql, &st));
	db_text(st, 1, zone);
	kr_err e = kr_ok();
	int rc;
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW)
		e = cb(db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2), arg);
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "comparing with the last publication");
	db_finalize(st);
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
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "DELETE FROM published WHERE zone = ?1", &st));
	db_text(st, 1, zone);
	kr_err e = sq_done(s, st, "replacing the last publication");
	db_finalize(st);
	if (!kr_failed(&e))
		e = sq_prepare(s,
			       "INSERT INTO published SELECT DISTINCT ?1, owner, type, rdata FROM"
			       " current WHERE true ON CONFLICT DO NOTHING",
			       &st);
	if (!kr_failed(&e)) {
		db_text(st, 1, zone);
		e = sq_done(s, st, "recording the publication");
		db_finalize(st);
	}
	return e;
}

KR_MUST_USE kr_err kr_store_ca_count(kr_store *s, long *n)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, "SELECT count(*) FROM ca", &st));
	int rc = db_step(st);
	*n = rc == DB_ROW ? (long)db_col_int(st, 0) : 0;
	db_finalize(st);
	KR_ENSURE(rc == DB_ROW, KR_EIO, "%s: counting CAs: %s", s->path, s->drv->errmsg(s));
	return kr_ok();
}
