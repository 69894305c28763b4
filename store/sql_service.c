/* The online service's records in the SQLite store (store/service.h). */
#include "service.h"
#include "sql.h"
#include "../util/text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum { SV_BIND, SV_CLIENT, SV_POLL_ADD, SV_POLL_COUNT, SV_POLL_FIRST, SV_POLL_ACK, SV_SEEN, SV_N };
_Static_assert(SV_N <= SQ_SERVICE_STATEMENTS, "sql.h: SQ_SERVICE_STATEMENTS");

static const char *const squeries[SV_N] = {
	[SV_BIND] = "INSERT INTO api_client (ca_id, serial, account, created) VALUES (?, ?, ?, ?)",
	[SV_CLIENT] = "SELECT coalesce(a.account, ''), c.status FROM cert c LEFT JOIN api_client a"
		      " ON a.ca_id = c.ca_id AND a.serial = c.serial"
		      " WHERE c.ca_id = ? AND c.serial = ?",
	[SV_POLL_ADD] = "INSERT INTO poll (account, time, device, event, detail)"
			" VALUES (?, ?, ?, ?, ?)",
	[SV_POLL_COUNT] = "SELECT count(*) FROM poll WHERE account = ?",
	[SV_POLL_FIRST] = "SELECT id, time, device, event, detail FROM poll WHERE account = ?"
			  " ORDER BY id LIMIT 1",
	[SV_POLL_ACK] = "DELETE FROM poll WHERE account = ? AND id = ?",
	[SV_SEEN] = "INSERT INTO cmp_seen (transaction_id, nonce, time) VALUES (?, ?, ?)"
		    " ON CONFLICT DO NOTHING",
};

static KR_MUST_USE kr_err sv(kr_store *s, int i, db_stmt **out)
{
	return sq_cached(s, &s->sv[i], squeries[i], out);
}

KR_MUST_USE kr_err kr_store_bind_client(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
					const char *account)
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(sv(s, SV_BIND, &st));
	db_int(st, 1, ca);
	db_blob(st, 2, serial, len);
	db_text(st, 3, account);
	db_text(st, 4, now);
	KR_TRY(sq_done(s, st, "binding a client certificate"));
	kr_detail d;
	kr_detail_init(&d);
	kr_detail_num(&d, KR_D_CA, ca);
	kr_detail_bytes(&d, KR_D_SERIAL, serial, len);
	kr_detail_str(&d, KR_D_ACCOUNT, account);
	return sq_audit(s, "api-client", &d);
}

KR_MUST_USE kr_err kr_store_client(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
				   char account[64], char status[16])
{
	db_stmt *st = NULL;
	KR_TRY(sv(s, SV_CLIENT, &st));
	db_int(st, 1, ca);
	db_blob(st, 2, serial, len);
	account[0] = status[0] = '\0';
	int rc = db_step(st);
	if (rc == DB_ROW) {
		const char *a = db_col_text(st, 0), *t = db_col_text(st, 1);
		kr_copy(account, 64, a ? a : "");
		kr_copy(status, 16, t ? t : "");
	}
	db_reset(st);
	KR_ENSURE(rc == DB_ROW || rc == DB_DONE, KR_EIO, "%s: reading a client: %s", s->path,
		  s->drv->errmsg(s));
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_poll_add(kr_store *s, const char *account, const char *device,
				     const char *event, const char *detail)
{
	char now[21];
	sq_now(now);
	db_stmt *st = NULL;
	KR_TRY(sv(s, SV_POLL_ADD, &st));
	db_text(st, 1, account);
	db_text(st, 2, now);
	db_text(st, 3, device);
	db_text(st, 4, event);
	db_text(st, 5, detail ? detail : "");
	return sq_done(s, st, "queueing a poll message");
}

KR_MUST_USE kr_err kr_store_poll_first(kr_store *s, const char *account, long *count, kr_poll_cb cb,
				       void *arg)
{
	db_stmt *st = NULL;
	KR_TRY(sv(s, SV_POLL_COUNT, &st));
	db_text(st, 1, account);
	KR_ENSURE(db_step(st) == DB_ROW, KR_EIO, "%s: counting poll messages: %s", s->path,
		  s->drv->errmsg(s));
	*count = (long)db_col_int(st, 0);
	db_reset(st);
	if (*count == 0)
		return kr_ok();
	KR_TRY(sv(s, SV_POLL_FIRST, &st));
	db_text(st, 1, account);
	int rc = db_step(st);
	KR_ENSURE(rc == DB_ROW, KR_EIO, "%s: reading a poll message: %s", s->path,
		  s->drv->errmsg(s));
	kr_err e;
	kr_poll_msg m = {
		.id = db_col_int(st, 0),
		.time = db_col_text(st, 1),
		.device = db_col_text(st, 2),
		.event = db_col_text(st, 3),
		.detail = db_col_text(st, 4),
	};
	e = cb(&m, arg);
	db_reset(st);
	/* cppcheck-suppress returnDanglingLifetime ; e holds no pointer to m */
	return e;
}

KR_MUST_USE kr_err kr_store_poll_ack(kr_store *s, const char *account, int64_t id, int *found)
{
	db_stmt *st = NULL;
	KR_TRY(sv(s, SV_POLL_ACK, &st));
	db_text(st, 1, account);
	db_int(st, 2, id);
	KR_TRY(sq_done(s, st, "acknowledging a poll message"));
	*found = s->drv->changes(s) > 0;
	return kr_ok();
}

KR_MUST_USE kr_err kr_store_cmp_seen(kr_store *s, const uint8_t *tid, size_t tid_len,
				     const uint8_t *nonce, size_t nonce_len, int *fresh)
{
	db_stmt *st = NULL;
	KR_TRY(sv(s, SV_SEEN, &st));
	db_blob(st, 1, tid, tid_len);
	db_blob(st, 2, nonce, nonce_len);
	db_int(st, 3, (int64_t)time(NULL));
	KR_TRY(sq_done(s, st, "recording a CMP message"));
	*fresh = s->drv->changes(s) > 0;
	return kr_ok();
}
