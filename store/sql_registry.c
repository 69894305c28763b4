/* The device registry's records in the SQLite store (store/registry.h). */
#include "registry.h"
#include "sql.h"
#include "../util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	RQ_DEVICE,
	RQ_IMPORT,
	RQ_SAVE_DEVICE,
	RQ_SAVE_REG,
	RQ_DROP_REG,
	RQ_PURGE,
	RQ_CERT_ASP,
	RQ_CSR,
	RQ_ISSUED,
	RQ_ACTIVE,
	RQ_KEEP_CSR,
	RQ_OTHERS,
	RQ_COUNT
};
_Static_assert(RQ_COUNT <= SQ_REGISTRY_STATEMENTS, "sql.h: SQ_REGISTRY_STATEMENTS");

/* One row: the device's columns, then one registration's (NULL when it has
 * none) and its profile's certificate. */
#define RECORD_COLUMNS                                                                             \
	"d.id, coalesce(d.model, ''), coalesce(d.version, ''), coalesce(d.owner, ''),"             \
	" coalesce(d.mno, ''), d.listed, d.deleted, d.purge_after, d.locks, d.code_salt,"          \
	" d.code_hash, d.code_expires, d.code_failures, d.csr, d.registered,"                      \
	" coalesce(d.updated, d.registered), r.asp, r.state, r.hold, coalesce(r.gaining, ''),"     \
	" coalesce(r.requested_at, 0), coalesce(r.profile_id, 0), coalesce(c.status, ''),"         \
	" coalesce(c.ca_id, 0), c.serial, r.created, r.updated, d.enroll_gen"                      \
	" FROM device d LEFT JOIN registration r ON r.device = d.id"                               \
	" LEFT JOIN cert c ON c.profile_id = r.profile_id AND c.status <> 'abandoned'"

static const char *const rqueries[RQ_COUNT] = {
	[RQ_DEVICE] = "SELECT " RECORD_COLUMNS " WHERE d.id = ? ORDER BY r.asp",
	/* a device keyrite issue recorded becomes listed; a new one is added */
	[RQ_IMPORT] =
		"INSERT INTO device (id, model, version, registered, owner, mno, listed,"
		" updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?4) ON CONFLICT (id) DO UPDATE"
		" SET model = ?2, version = ?3, owner = ?5, mno = ?6, listed = 1, updated = ?4"
		" WHERE device.listed = 0",
	[RQ_SAVE_DEVICE] = "UPDATE device SET version = ?2, owner = ?3, mno = ?4, deleted = ?5,"
			   " purge_after = ?6, locks = ?7, code_salt = ?8, code_hash = ?9,"
			   " code_expires = ?10, code_failures = ?11, csr = ?12, updated = ?13,"
			   " enroll_gen = ?14 WHERE id = ?1",
	[RQ_SAVE_REG] = "INSERT INTO registration (device, asp, state, hold, gaining,"
			" requested_at, profile_id, created, updated)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT (device, asp)"
			" DO UPDATE SET state = excluded.state, hold = excluded.hold,"
			" gaining = excluded.gaining, requested_at = excluded.requested_at,"
			" profile_id = excluded.profile_id, updated = excluded.updated",
	[RQ_DROP_REG] = "DELETE FROM registration WHERE device = ? AND asp = ?",
	[RQ_PURGE] = "DELETE FROM device WHERE id = ?",
	[RQ_CERT_ASP] = "UPDATE cert SET asp = ? WHERE ca_id = ? AND serial = ?",
	[RQ_CSR] = "SELECT csr FROM device WHERE id = ?",
	[RQ_ISSUED] = "SELECT asp FROM registration WHERE device = ? AND profile_id = ?",
	[RQ_ACTIVE] = ("UPDATE registration SET state = 'active', updated = ? WHERE device = ?"
		       " AND asp = ?"),
	[RQ_KEEP_CSR] = "UPDATE device SET csr = ?2 WHERE id = ?1 AND csr IS DISTINCT FROM ?2",
	[RQ_OTHERS] = "SELECT ca_id, serial FROM cert WHERE device_id = ?1 AND asp = ?2"
		      " AND status = 'valid' AND profile_id IS NOT NULL"
		      " AND NOT (ca_id = ?3 AND serial IS NOT DISTINCT FROM ?4) LIMIT 16",
};

static KR_MUST_USE kr_err rq(kr_store *s, int i, db_stmt **out)
{
	return sq_cached(s, &s->rq[i], rqueries[i], out);
}

/* ---- reading ------------------------------------------------------------------ */

static void text(db_stmt *st, int col, char *out, size_t n)
{
	const char *v = db_col_text(st, col);
	kr_copy(out, n, v ? v : "");
}

static void blob(db_stmt *st, int col, uint8_t *out, size_t n, size_t *len)
{
	size_t have = db_col_bytes(st, col);
	if (have > n)
		have = 0; /* not one the registry wrote */
	if (have)
		memcpy(out, db_col_blob(st, col), have);
	if (len)
		*len = have;
}

static void read_device(db_stmt *st, kr_reg_device *d)
{
	text(st, 0, d->id, sizeof d->id);
	text(st, 1, d->model, sizeof d->model);
	text(st, 2, d->version, sizeof d->version);
	text(st, 3, d->owner, sizeof d->owner);
	text(st, 4, d->mno, sizeof d->mno);
	d->listed = db_col_small(st, 5);
	d->deleted = db_col_int(st, 6);
	d->purge_after = db_col_int(st, 7);
	d->locks = (unsigned)db_col_int(st, 8);
	size_t salt = 0, hash = 0;
	blob(st, 9, d->code_salt, sizeof d->code_salt, &salt);
	blob(st, 10, d->code_hash, sizeof d->code_hash, &hash);
	d->has_code = salt == sizeof d->code_salt && hash == sizeof d->code_hash;
	d->code_expires = db_col_int(st, 11);
	d->code_failures = db_col_small(st, 12);
	blob(st, 13, d->csr, sizeof d->csr, &d->csr_len);
	text(st, 14, d->created, sizeof d->created);
	text(st, 15, d->updated, sizeof d->updated);
	d->enroll_gen = db_col_int(st, 27);
}

static void read_registration(db_stmt *st, kr_registration *r)
{
	text(st, 16, r->asp, sizeof r->asp);
	text(st, 17, r->state, sizeof r->state);
	r->hold = db_col_small(st, 18);
	text(st, 19, r->gaining, sizeof r->gaining);
	r->requested_at = db_col_int(st, 20);
	r->profile_id = db_col_int(st, 21);
	text(st, 22, r->cert_status, sizeof r->cert_status);
	r->ca = db_col_int(st, 23);
	blob(st, 24, r->serial, sizeof r->serial, &r->serial_len);
	text(st, 25, r->created, sizeof r->created);
	text(st, 26, r->updated, sizeof r->updated);
}

void kr_reg_record_clear(kr_reg_record *r, const char *id)
{
	kr_reg_device *d = &r->d;
	kr_copy(d->id, sizeof d->id, id);
	d->model[0] = d->version[0] = d->owner[0] = d->mno[0] = '\0';
	d->created[0] = d->updated[0] = '\0';
	d->listed = d->has_code = d->code_failures = 0;
	d->deleted = d->purge_after = d->code_expires = d->enroll_gen = 0;
	d->locks = 0;
	d->csr_len = 0;
	r->nr = 0;
}

/* Reads rows grouped by device into out, calling cb at each device's end. */
static KR_MUST_USE kr_err records(kr_store *s, db_stmt *st, kr_reg_record *out, kr_reg_record_cb cb,
				  void *arg, long *n)
{
	kr_err e = kr_ok();
	int rc, open = 0;
	*n = 0;
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		const char *id = db_col_text(st, 0);
		if (open && strcmp(id, out->d.id) != 0) {
			e = cb ? cb(out, arg) : kr_ok();
			open = 0;
			if (kr_failed(&e))
				break;
		}
		if (!open) {
			kr_reg_record_clear(out, "");
			read_device(st, &out->d);
			open = 1;
			(*n)++;
		}
		if (!db_col_null(st, 16) && out->nr < KR_REG_MAX_ASPS)
			read_registration(st, &out->r[out->nr++]);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "reading the registry");
	if (!kr_failed(&e) && open && cb)
		e = cb(out, arg);
	return e;
}

KR_MUST_USE kr_err kr_store_registry_device(kr_store *s, const char *id, kr_reg_record *out,
					    int *found)
{
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_DEVICE, &st));
	db_text(st, 1, id);
	long n = 0;
	kr_err e = records(s, st, out, NULL, NULL, &n);
	db_reset(st);
	*found = n > 0;
	return e;
}

KR_MUST_USE kr_err kr_store_registry_list(kr_store *s, const kr_reg_filter *f, kr_reg_record_cb cb,
					  void *arg)
{
	db_stmt *st = NULL;
	const char *dir = f->desc ? "DESC" : "", *beyond = f->desc ? "<" : ">";
	char sql[2048];
	/* a prefix is a range of the primary key: [prefix, prefix with its last
	 * octet one up) */
	snprintf(sql, sizeof sql,
		 "SELECT " RECORD_COLUMNS " WHERE d.id IN (SELECT dd.id FROM device dd"
		 " WHERE dd.listed = 1"
		 " AND (?1 IS NULL OR EXISTS (SELECT 1 FROM registration x WHERE"
		 " x.device = dd.id AND (x.asp = ?1 OR x.gaining = ?1)))"
		 " AND (?2 IS NULL OR dd.owner = ?2) AND (?3 IS NULL OR dd.mno = ?3)"
		 " AND (?4 IS NULL OR dd.id %s ?4) AND (?6 IS NULL OR (dd.id >= ?6 AND dd.id < ?7))"
		 " AND (?8 IS NULL OR (?8 = 'pendingDelete' AND dd.deleted > 0) OR (dd.deleted = 0 "
		 "AND"
		 " ((?8 = 'listed' AND NOT EXISTS (SELECT 1 FROM registration y WHERE y.device = "
		 "dd.id))"
		 " OR EXISTS (SELECT 1 FROM registration y WHERE y.device = dd.id AND y.state = ?8"
		 " AND (?1 IS NULL OR y.asp = ?1 OR y.gaining = ?1)))))"
		 " ORDER BY dd.id %s LIMIT ?5) ORDER BY d.id %s, r.asp",
		 beyond, dir, dir);
	KR_TRY(sq_prepare(s, sql, &st));
	db_text(st, 1, f->asp);
	db_text(st, 2, f->owner);
	db_text(st, 3, f->mno);
	db_text(st, 4, f->after);
	db_int(st, 5, f->limit > 0 ? f->limit : INT64_MAX);
	char upto[80] = "";
	size_t plen = f->prefix ? strlen(f->prefix) : 0;
	if (plen && plen < sizeof upto) {
		memcpy(upto, f->prefix, plen + 1);
		upto[plen - 1]++;
	}
	db_text(st, 6, plen && plen < sizeof upto ? f->prefix : NULL);
	db_text(st, 7, upto);
	db_text(st, 8, f->state);
	kr_reg_record *rec = calloc(1, sizeof *rec);
	if (!rec) {
		db_finalize(st);
		return kr_errf(KR_EINTERNAL, "out of memory");
	}
	long n = 0;
	kr_err e = records(s, st, rec, cb, arg, &n);
	db_finalize(st);
	free(rec);
	return e;
}

/* ---- writing ------------------------------------------------------------------ */

KR_MUST_USE kr_err kr_store_import_device(kr_store *s, const kr_reg_device *d, int *imported)
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_IMPORT, &st));
	db_text(st, 1, d->id);
	db_text(st, 2, d->model);
	db_text(st, 3, d->version);
	db_text(st, 4, now);
	db_text(st, 5, d->owner[0] ? d->owner : NULL);
	db_text(st, 6, d->mno[0] ? d->mno : NULL);
	KR_TRY(sq_done(s, st, "importing a device"));
	*imported = s->drv->changes(s) == 1;
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_save_device(kr_store *s, const kr_reg_device *d)
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_SAVE_DEVICE, &st));
	db_text(st, 1, d->id);
	db_text(st, 2, d->version);
	db_text(st, 3, d->owner[0] ? d->owner : NULL);
	db_text(st, 4, d->mno[0] ? d->mno : NULL);
	db_int(st, 5, d->deleted);
	db_int(st, 6, d->purge_after);
	db_int(st, 7, (int64_t)d->locks);
	db_blob(st, 8, d->has_code ? d->code_salt : NULL, sizeof d->code_salt);
	db_blob(st, 9, d->has_code ? d->code_hash : NULL, sizeof d->code_hash);
	db_int(st, 10, d->has_code ? d->code_expires : 0);
	db_int(st, 11, d->code_failures);
	db_blob(st, 12, d->csr_len ? d->csr : NULL, d->csr_len);
	db_text(st, 13, now);
	db_int(st, 14, d->enroll_gen);
	KR_TRY(sq_done(s, st, "recording a device"));
	KR_ENSURE(s->drv->changes(s) == 1, KR_EINPUT, "device %s: not in the store", d->id);
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_drop_registration(kr_store *s, const char *device, const char *asp)
{
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_DROP_REG, &st));
	db_text(st, 1, device);
	db_text(st, 2, asp);
	return sq_done(s, st, "dropping a registration");
}

KR_MUST_USE kr_err kr_store_save_registration(kr_store *s, const char *device,
					      const kr_registration *r, const char *old_asp)
{
	if (old_asp && strcmp(old_asp, r->asp) != 0)
		KR_TRY(kr_store_drop_registration(s, device, old_asp));
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_SAVE_REG, &st));
	db_text(st, 1, device);
	db_text(st, 2, r->asp);
	db_text(st, 3, r->state);
	db_int(st, 4, r->hold);
	db_text(st, 5, r->gaining[0] ? r->gaining : NULL);
	if (r->gaining[0])
		db_int(st, 6, r->requested_at);
	if (r->profile_id > 0)
		db_int(st, 7, r->profile_id);
	db_text(st, 8, now);
	return sq_done(s, st, "recording a registration");
}

KR_MUST_USE kr_err kr_store_purge_device(kr_store *s, const char *device)
{
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_PURGE, &st));
	db_text(st, 1, device);
	return sq_done(s, st, "purging a device");
}

KR_MUST_USE kr_err kr_store_device_csr(kr_store *s, const char *id, uint8_t *buf, size_t cap,
				       size_t *len)
{
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_CSR, &st));
	db_text(st, 1, id);
	int rc = db_step(st);
	*len = 0;
	if (rc == DB_ROW)
		blob(st, 0, buf, cap, len);
	db_reset(st);
	KR_ENSURE(rc == DB_ROW || rc == DB_DONE, KR_EIO, "%s: reading a CSR: %s", s->path,
		  s->drv->errmsg(s));
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_profile_issued(kr_store *s, const char *device, int64_t profile_id,
					   int64_t ca, const uint8_t *serial, size_t len,
					   const uint8_t *csr, size_t csr_len, char asp[64])
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_ISSUED, &st));
	db_text(st, 1, device);
	db_int(st, 2, profile_id);
	int rc = db_step(st);
	if (rc == DB_ROW)
		text(st, 0, asp, 64);
	db_reset(st);
	KR_ENSURE(rc == DB_ROW, KR_EIO, "%s: device %s: profile %lld has no registration (%s)",
		  s->path, device, (long long)profile_id,
		  rc == DB_DONE ? "none" : s->drv->errmsg(s));
	KR_TRY(rq(s, RQ_ACTIVE, &st));
	db_text(st, 1, now);
	db_text(st, 2, device);
	db_text(st, 3, asp);
	KR_TRY(sq_done(s, st, "activating a registration"));
	KR_TRY(kr_store_set_cert_asp(s, ca, serial, len, asp));
	KR_TRY(rq(s, RQ_KEEP_CSR, &st));
	db_text(st, 1, device);
	db_blob(st, 2, csr, csr_len);
	return sq_done(s, st, "keeping a CSR on record");
}

KR_MUST_USE kr_err kr_store_supersede(kr_store *s, const char *device, const char *asp,
				      int64_t keep_ca, const uint8_t *keep, size_t keep_len,
				      int reason, int64_t when, long *n)
{
	*n = 0;
	for (int more = 1; more;) { /* 16 at a time: the rows are read, then revoked */
		int64_t ca[16];
		uint8_t serial[16][20];
		size_t len[16];
		int k = 0, rc;
		db_stmt *st = NULL;
		KR_TRY(rq(s, RQ_OTHERS, &st));
		db_text(st, 1, device);
		db_text(st, 2, asp);
		db_int(st, 3, keep_ca);
		db_blob(st, 4, keep, keep_len);
		while ((rc = db_step(st)) == DB_ROW && k < 16) {
			ca[k] = db_col_int(st, 0);
			blob(st, 1, serial[k], sizeof serial[k], &len[k]);
			k++;
		}
		kr_err e =
			rc == DB_ROW || rc == DB_DONE ? kr_ok() : sq_err(s, "reading certificates");
		db_reset(st);
		KR_TRY(e);
		for (int i = 0; i < k; i++)
			KR_TRY(kr_store_revoke(s, ca[i], serial[i], len[i], reason, when));
		*n += k;
		more = k == 16;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_set_cert_asp(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
					 const char *asp)
{
	db_stmt *st = NULL;
	KR_TRY(rq(s, RQ_CERT_ASP, &st));
	db_text(st, 1, asp);
	db_int(st, 2, ca);
	db_blob(st, 3, serial, len);
	return sq_done(s, st, "recording a profile's ASP");
}

KR_MUST_USE kr_err kr_store_log_registry(kr_store *s, const kr_reg_event *ev)
{
	kr_detail d;
	kr_detail_init(&d);
	kr_detail_str(&d, KR_D_DEVICE, ev->device);
	kr_detail_str(&d, KR_D_OP, ev->op);
	kr_detail_str(&d, KR_D_ACCOUNT, ev->account);
	if (ev->asp && ev->asp[0])
		kr_detail_str(&d, KR_D_ASP, ev->asp);
	if (ev->from && ev->to) {
		char change[64];
		snprintf(change, sizeof change, "%.28s->%.28s", ev->from, ev->to);
		kr_detail_str(&d, KR_D_STATE, change);
	} else if (ev->from || ev->to) {
		kr_detail_str(&d, KR_D_STATE, ev->from ? ev->from : ev->to);
	}
	if (ev->profile_id > 0)
		kr_detail_num(&d, KR_D_PROFILE_ID, ev->profile_id);
	if (ev->note)
		kr_detail_str(&d, KR_D_NOTE, ev->note);
	return sq_audit(s, "registry", &d);
}

static KR_MUST_USE kr_err stat_rows(kr_store *s, const char *series, const char *sql,
				    kr_reg_stat_cb cb, void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sq_prepare(s, sql, &st));
	kr_err e = kr_ok();
	int rc;
	while (!kr_failed(&e) && (rc = db_step(st)) == DB_ROW) {
		const char *key = db_col_text(st, 0);
		e = cb(series, key ? key : "", (long)db_col_int(st, 1), arg);
	}
	if (!kr_failed(&e) && rc != DB_DONE)
		e = sq_err(s, "counting the registry");
	db_finalize(st);
	return e;
}

KR_MUST_USE kr_err kr_store_registry_stats(kr_store *s, kr_reg_stat_cb cb, void *arg)
{
	KR_TRY(stat_rows(
		s, "state",
		"SELECT CASE WHEN d.deleted > 0 THEN 'pendingDelete'"
		" WHEN r.state IS NULL THEN 'listed' ELSE r.state END, count(*)"
		" FROM device d LEFT JOIN registration r ON r.device = d.id"
		" WHERE d.listed = 1 GROUP BY 1 UNION ALL"
		" SELECT 'hold', count(*) FROM registration WHERE hold = 1 UNION ALL"
		" SELECT 'pendingTransfer', count(*) FROM registration WHERE gaining IS NOT NULL",
		cb, arg));
	KR_TRY(stat_rows(s, "issued",
			 "SELECT kr_day(not_before), count(*) FROM cert"
			 " WHERE asp IS NOT NULL AND status IN ('valid', 'revoked')"
			 " GROUP BY 1 ORDER BY 1",
			 cb, arg));
	return stat_rows(s, "revoked",
			 "SELECT kr_day(revoked_at), count(*) FROM cert"
			 " WHERE asp IS NOT NULL AND status = 'revoked' GROUP BY 1 ORDER BY 1",
			 cb, arg);
}
