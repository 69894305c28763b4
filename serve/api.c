/* The JSON API (docs/api.md): the registry's commands over HTTPS, EPP-like
 * (RFC 5730): check, info, list (paged), the transform commands, poll and
 * ack. Bodies are parsed by jansson, strictly (an unknown member is an
 * error, as in the configuration); every command is the registry's, run on
 * the desk as the connection's account. */
#include "internal.h"
#include "../ca/authority.h"
#include "../ca/csr.h"
#include "../util/base64.h"
#include "../util/fs.h"
#include "../util/text.h"

#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ITEMS 10000
#define PAGE_MAX 1000

/* EPP result codes (RFC 5730 section 3) for a device's outcome. */
static int epp_code(const char *result, kr_code code)
{
	if (strcmp(result, "refused") != 0)
		return 1000;
	switch (code) {
	case KR_EDENIED:
		return 2201; /* authorization error (the account's rights or the state) */
	case KR_EAUTH:
		return 2202; /* invalid authorization information */
	case KR_EINPUT:
		return 2005; /* parameter value syntax error */
	default:
		return 2400; /* command failed */
	}
}

static void reply_error(struct evhttp_request *req, int status, const kr_err *e)
{
	kr_serve_error(req, status, e->msg);
}

static int http_status(kr_code code)
{
	switch (code) {
	case KR_EDENIED:
	case KR_EAUTH:
		return 403;
	case KR_EINPUT:
	case KR_EUSAGE:
		return 400;
	case KR_EINTERNAL:
	case KR_EHSM:
	case KR_EIO:
		return 500;
	default:
		return 400;
	}
}

/* ---- reading a request ---------------------------------------------------------- */

static KR_MUST_USE kr_err parse_json(const uint8_t *body, size_t len, json_t **out)
{
	KR_ENSURE(body && len, KR_EINPUT, "no JSON body");
	json_error_t err;
	*out = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &err);
	KR_ENSURE(*out, KR_EINPUT, "request body, line %d column %d: %s", err.line, err.column,
		  err.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL; /* the caller frees what it is given */
		return kr_errf(KR_EINPUT, "request body: not a JSON object");
	}
	return kr_ok();
}

static KR_MUST_USE kr_err only_keys(json_t *o, const char *const *keys, const char *where)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		int known = 0;
		for (const char *const *p = keys; *p && !known; p++)
			known = !strcmp(*p, k);
		KR_ENSURE(known, KR_EINPUT, "%s: unknown member '%.60s'", where, k);
	}
	return kr_ok();
}

static KR_MUST_USE kr_err string_of(json_t *o, const char *key, const char *where, const char **out)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return kr_ok();
	KR_ENSURE(json_is_string(v), KR_EINPUT, "%s: '%s' is not a string", where, key);
	*out = json_string_value(v);
	return kr_ok();
}

struct kr_api_call {
	json_t *body; /* the rows' strings are its */
	kr_reg_args a;
	kr_reg_row *rows;
	uint8_t **csrs;
	json_t *results;
	kr_reg_summary sum;
	const char *csv;    /* the devices as CSV text (the console's chosen file) */
	char dir[PATH_MAX]; /* where the registry reads and writes files of the call */
	char file[PATH_MAX];
	char *items[1];
};
typedef struct kr_api_call call;

void kr_api_call_free(call *c)
{
	if (!c)
		return;
	for (int i = 0; c->csrs && i < c->a.nrows; i++)
		free(c->csrs[i]);
	free(c->csrs);
	free(c->rows);
	json_decref(c->results);
	json_decref(c->body);
	free(c);
}

/* A row: a device id, or an object of its fields (import's model and
 * version, a transfer's code, an activation's PEM CSR). */
static KR_MUST_USE kr_err read_row(call *c, json_t *v, int i)
{
	char where[32];
	snprintf(where, sizeof where, "devices[%d]", i);
	kr_reg_row *r = &c->rows[i];
	if (json_is_string(v)) {
		r->device = json_string_value(v);
		return kr_ok();
	}
	KR_ENSURE(json_is_object(v), KR_EINPUT, "%s: a device id or an object", where);
	static const char *const keys[] = {"device", "model", "version", "mno",
					   "owner",  "code",  "csr",     NULL};
	KR_TRY(only_keys(v, keys, where));
	KR_TRY(string_of(v, "device", where, &r->device));
	KR_ENSURE(r->device, KR_EINPUT, "%s: no device", where);
	KR_TRY(string_of(v, "model", where, &r->model));
	KR_TRY(string_of(v, "version", where, &r->version));
	KR_TRY(string_of(v, "mno", where, &r->mno));
	KR_TRY(string_of(v, "owner", where, &r->owner));
	KR_TRY(string_of(v, "code", where, &r->code));
	const char *pem = NULL;
	KR_TRY(string_of(v, "csr", where, &pem));
	if (pem) {
		kr_err e = kr_csr_pem_to_der(pem, strlen(pem), &c->csrs[i], &r->csr_len);
		if (kr_failed(&e))
			return kr_errf(KR_EINPUT, "%s: csr: %s", where, e.msg);
		r->csr = c->csrs[i];
	}
	return kr_ok();
}

static KR_MUST_USE kr_err read_call(call *c, json_t *body)
{
	static const char *const keys[] = {"devices", "csv",   "preview", "asp",
					   "mno",     "owner", "lock",    NULL};
	KR_TRY(only_keys(body, keys, "request"));
	json_t *preview = json_object_get(body, "preview");
	KR_ENSURE(!preview || json_is_boolean(preview), KR_EINPUT, "preview: true or false");
	c->a.preview = json_is_true(preview);
	KR_TRY(string_of(body, "asp", "request", &c->a.asp));
	KR_TRY(string_of(body, "mno", "request", &c->a.mno));
	KR_TRY(string_of(body, "owner", "request", &c->a.owner));
	json_t *locks = json_object_get(body, "lock");
	size_t i;
	json_t *v;
	if (locks) {
		KR_ENSURE(json_is_array(locks), KR_EINPUT, "lock: a list of lock names");
		json_array_foreach(locks, i, v)
		{
			unsigned bit =
				json_is_string(v) ? kr_reg_lock_named(json_string_value(v)) : 0;
			KR_ENSURE(bit, KR_EINPUT, "lock[%zu]: one of transfer, delete, update", i);
			c->a.lock |= bit;
		}
	}
	KR_TRY(string_of(body, "csv", "request", &c->csv));
	json_t *devices = json_object_get(body, "devices");
	KR_ENSURE(!c->csv || !devices, KR_EINPUT, "devices or csv, not both");
	if (c->csv)
		return kr_ok();
	KR_ENSURE(json_is_array(devices) && json_array_size(devices) > 0, KR_EINPUT,
		  "devices: a list of one device or more");
	KR_ENSURE(json_array_size(devices) <= MAX_ITEMS, KR_EINPUT,
		  "devices: at most %d in one request", MAX_ITEMS);
	size_t n = json_array_size(devices);
	c->rows = calloc(n, sizeof *c->rows);
	c->csrs = calloc(n, sizeof *c->csrs);
	KR_ENSURE(c->rows && c->csrs, KR_EINTERNAL, "out of memory");
	c->a.rows = c->rows;
	c->a.nrows = (int)n;
	json_array_foreach(devices, i, v) KR_TRY(read_row(c, v, (int)i));
	return kr_ok();
}

/* ---- running it ------------------------------------------------------------------ */

/* payload: the file the registry wrote for the device, base64 in the
 * result, then gone (the service keeps no payload). */
static void payload_of(call *c, const char *device, json_t *r)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s.p7m", c->a.out_dir, device);
	uint8_t *der = NULL;
	size_t len = 0;
	kr_err e = kr_fs_read(path, 1 << 20, &der, &len);
	char *b64 = NULL;
	size_t n = 0;
	if (!kr_failed(&e))
		e = kr_base64_encode(der, len, &b64, &n);
	if (!kr_failed(&e))
		json_object_set_new(r, "payload", json_string(b64));
	else
		json_object_set_new(r, "payload_error", json_string(e.msg));
	free(b64);
	free(der);
	unlink(path);
}

static void on_outcome(const kr_reg_outcome *o, void *arg)
{
	call *c = arg;
	json_t *r = json_object();
	if (!r)
		return;
	json_object_set_new(r, "device", json_string(o->device));
	const char *at = c->csv && o->where ? strrchr(o->where, ':') : NULL;
	if (at) /* "rows.csv:12": the CSV text's line */
		json_object_set_new(r, "line", json_integer(strtol(at + 1, NULL, 10)));
	json_object_set_new(r, "result", json_string(o->result));
	json_object_set_new(r, "code", json_integer(epp_code(o->result, o->code)));
	if (o->reason)
		json_object_set_new(r, "reason", json_string(o->reason));
	if (o->from)
		json_object_set_new(r, "from", json_string(o->from));
	if (o->to)
		json_object_set_new(r, "to", json_string(o->to));
	if (o->profile_id > 0)
		json_object_set_new(r, "profile_id", json_integer(o->profile_id));
	if (o->secret) /* the new auth code, shown this once */
		json_object_set_new(r, kr_reg_secret_name(o), json_string(o->secret));
	char *pem = NULL;
	size_t len = 0;
	kr_err e = o->cert ? kr_cert_der_pem(o->cert, o->cert_len, &pem, &len) : kr_ok();
	if (!kr_failed(&e) && pem)
		json_object_set_new(r, "certificate", json_string(pem));
	free(pem);
	if (c->a.out_dir && !strcmp(o->result, "written"))
		payload_of(c, o->device, r);
	json_array_append_new(c->results, r);
}

static KR_MUST_USE kr_err run_call(kr_registry *r, void *arg)
{
	call *c = arg;
	int n = c->csv && !c->a.ncsrs;
	return kr_registry_run(r, &c->a, n ? c->items : NULL, n, on_outcome, c, &c->sum);
}

/* The call's scratch directory: a payload's files, the CSV text as the
 * file the registry reads (an activation's as its MNO manifest), so that
 * the registry parses it as it parses the CLI's: one CSV reader. */
static KR_MUST_USE kr_err scratch(call *c)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(c->dir, sizeof c->dir, "%s/keyrite-call-XXXXXX", tmp ? tmp : "/tmp");
	KR_ENSURE(mkdtemp(c->dir), KR_EIO, "%s: %s", c->dir, strerror(errno));
	if (c->a.cmd == KR_CMD_PAYLOAD)
		c->a.out_dir = c->dir;
	if (!c->csv)
		return kr_ok();
	KR_TRY(kr_fs_join(c->dir, "rows.csv", c->file, sizeof c->file));
	KR_TRY(kr_fs_write_new_nosync(c->file, c->csv, strlen(c->csv), 0600));
	c->items[0] = c->file;
	if (c->a.cmd == KR_CMD_ACTIVATE || c->a.cmd == KR_CMD_REKEY) {
		c->a.csrs = c->items;
		c->a.ncsrs = 1;
	}
	return kr_ok();
}

static int command_named(const char *path, kr_reg_cmd *out)
{
	char name[40];
	kr_copy(name, sizeof name, path);
	for (char *p = name; *p; p++)
		if (*p == '/')
			*p = ' ';
	for (int i = 0; i < KR_NCMDS; i++)
		if (!strcmp(kr_reg_cmd_name((kr_reg_cmd)i), name) && i != KR_CMD_SHOW) {
			*out = (kr_reg_cmd)i;
			return 1;
		}
	return 0;
}

KR_MUST_USE kr_err kr_api_read_call(const uint8_t *body, size_t len, int cmd, call **out)
{
	call *c = calloc(1, sizeof *c);
	KR_ENSURE(c, KR_EINTERNAL, "out of memory");
	c->a.cmd = (kr_reg_cmd)cmd;
	kr_err e = parse_json(body, len, &c->body);
	if (!kr_failed(&e))
		e = read_call(c, c->body);
	c->results = json_array();
	if (!kr_failed(&e) && !c->results)
		e = kr_errf(KR_EINTERNAL, "out of memory");
	if (kr_failed(&e)) {
		kr_api_call_free(c);
		return e;
	}
	*out = c;
	return kr_ok();
}

static void command(kr_server *s, struct evhttp_request *req, const char *account, kr_reg_cmd cmd)
{
	size_t len = 0;
	const uint8_t *body = kr_serve_body(req, &len);
	call *c = NULL;
	kr_err e = kr_api_read_call(body, len, cmd, &c);
	if (!kr_failed(&e) && (cmd == KR_CMD_PAYLOAD || c->csv))
		e = scratch(c);
	if (!kr_failed(&e))
		e = kr_desk_call(s->desk, account, run_call, c);
	if (c && c->file[0])
		unlink(c->file);
	if (c && c->dir[0])
		rmdir(c->dir); /* each payload went with its result */
	if (kr_failed(&e)) {
		reply_error(req, http_status(e.code), &e);
	} else {
		int all_refused = c->sum.refused && !c->sum.done && !c->sum.unchanged;
		json_t *o = json_pack(
			"{s:s,s:O,s:{s:I,s:I,s:I}}", "command", kr_reg_cmd_name(cmd), "results",
			c->results, "summary", "done", (json_int_t)c->sum.done, "unchanged",
			(json_int_t)c->sum.unchanged, "refused", (json_int_t)c->sum.refused);
		if (o && c->a.preview)
			json_object_set_new(o, "preview", json_true());
		kr_serve_json(req, all_refused ? http_status(c->sum.first_refusal) : 200, o);
	}
	kr_api_call_free(c);
}

/* ---- reading the registry ---------------------------------------------------------- */

static json_t *row_json(const kr_reg_device *d, const kr_registration *g)
{
	unsigned f = kr_registry_flags_of(d, g);
	json_t *flags = json_array();
	for (unsigned bit = 1; flags && bit < 1u << KR_NFLAGS; bit <<= 1)
		if (f & bit)
			json_array_append_new(flags, json_string(kr_reg_flag_name(bit)));
	json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:b,s:s?,s:s,s:o}", "device", d->id, "model",
			      d->model, "version", d->version, "owner",
			      d->owner[0] ? d->owner : NULL, "mno", d->mno[0] ? d->mno : NULL,
			      "auth_code", d->has_code, "asp", g ? g->asp : NULL, "state",
			      kr_reg_state_name(kr_registry_state_of(d, g)), "flags", flags);
	if (o && g && g->profile_id > 0)
		json_object_set_new(o, "profile_id", json_integer(g->profile_id));
	if (o && g && g->gaining[0])
		json_object_set_new(o, "gaining", json_string(g->gaining));
	if (o && d->created[0]) /* the registry operator's "IoT database" columns */
		json_object_set_new(o, "created", json_string(d->created));
	const char *updated = g && g->updated[0] ? g->updated : d->updated;
	if (o && updated[0])
		json_object_set_new(o, "updated", json_string(updated));
	return o;
}

typedef struct rows {
	json_t *list;
	kr_reg_filter f;
	kr_reg_state state;
	char next[80];
	const char *device;
} rows;

static KR_MUST_USE kr_err add_row(const kr_reg_device *d, const kr_registration *g, void *arg)
{
	rows *r = arg;
	json_t *o = row_json(d, g);
	KR_ENSURE(o && json_array_append_new(r->list, o) == 0, KR_EINTERNAL, "out of memory");
	return kr_ok();
}

static KR_MUST_USE kr_err run_info(kr_registry *r, void *arg)
{
	rows *x = arg;
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	kr_err e = kr_registry_show(r, x->device, rec, NULL, NULL);
	if (!kr_failed(&e))
		e = kr_registry_rows(r, rec, add_row, x);
	free(rec);
	return e;
}

static KR_MUST_USE kr_err run_list(kr_registry *r, void *arg)
{
	rows *x = arg;
	return kr_registry_list(r, &x->f, x->state, add_row, x, x->next);
}

static void info(kr_server *s, struct evhttp_request *req, const char *account, const char *id)
{
	rows x = {.list = json_array(), .device = id};
	kr_err e = x.list ? kr_desk_call(s->desk, account, run_info, &x)
			  : kr_errf(KR_EINTERNAL, "out of memory");
	if (kr_failed(&e))
		reply_error(req, e.code == KR_EINPUT ? 404 : http_status(e.code), &e);
	else
		kr_serve_json(req, 200,
			      json_pack("{s:s,s:O}", "device", id, "registrations", x.list));
	json_decref(x.list);
}

static KR_MUST_USE kr_err list_query(struct evhttp_request *req, rows *x, struct evkeyvalq *q)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	KR_ENSURE(!query || evhttp_parse_query_str(query, q) == 0, KR_EINPUT, "a malformed query");
	x->f.limit = 100;
	x->state = KR_NSTATES;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, q, next)
	{
		if (!strcmp(kv->key, "asp"))
			x->f.asp = kv->value;
		else if (!strcmp(kv->key, "owner"))
			x->f.owner = kv->value;
		else if (!strcmp(kv->key, "mno"))
			x->f.mno = kv->value;
		else if (!strcmp(kv->key, "after"))
			x->f.after = kv->value;
		else if (!strcmp(kv->key, "q"))
			x->f.prefix = kv->value[0] ? kv->value : NULL;
		else if (!strcmp(kv->key, "sort")) {
			KR_ENSURE(!strcmp(kv->value, "id") || !strcmp(kv->value, "-id"), KR_EINPUT,
				  "sort: id or -id");
			x->f.desc = kv->value[0] == '-';
		} else if (!strcmp(kv->key, "state")) {
			x->state = kr_reg_state_named(kv->value);
			KR_ENSURE(x->state != KR_NSTATES, KR_EINPUT, "state: '%.40s' is no state",
				  kv->value);
		} else if (!strcmp(kv->key, "limit")) {
			char *end = NULL;
			x->f.limit = strtol(kv->value, &end, 10);
			KR_ENSURE(*kv->value && !*end && x->f.limit >= 1 && x->f.limit <= PAGE_MAX,
				  KR_EINPUT, "limit: 1 to %d", PAGE_MAX);
		} else {
			return kr_errf(KR_EINPUT, "unknown parameter '%.40s'", kv->key);
		}
	}
	return kr_ok();
}

static void list(kr_server *s, struct evhttp_request *req, const char *account)
{
	rows x = {.list = json_array()};
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	kr_err e = x.list ? list_query(req, &x, &q) : kr_errf(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e))
		e = kr_desk_call(s->desk, account, run_list, &x);
	if (kr_failed(&e)) {
		reply_error(req, http_status(e.code), &e);
	} else {
		json_t *o = json_pack("{s:O}", "devices", x.list);
		if (o && x.next[0])
			json_object_set_new(o, "next", json_string(x.next));
		kr_serve_json(req, 200, o);
	}
	evhttp_clear_headers(&q);
	json_decref(x.list);
}

/* check: for each device, whether the account may act on it (EPP check);
 * one it may not see and one that does not exist look alike. */
typedef struct checks {
	json_t *devices, *results;
} checks;

static KR_MUST_USE kr_err run_check(kr_registry *r, void *arg)
{
	checks *c = arg;
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	size_t i;
	json_t *v;
	kr_err e = kr_ok();
	json_array_foreach(c->devices, i, v)
	{
		const char *id = json_string_value(v);
		kr_err seen = id ? kr_registry_show(r, id, rec, NULL, NULL)
				 : kr_errf(KR_EINPUT, "not a device id");
		if (seen.code == KR_EINTERNAL || seen.code == KR_EIO) {
			e = seen;
			break;
		}
		json_array_append_new(c->results, json_pack("{s:s?,s:b}", "device", id, "known",
							    !kr_failed(&seen)));
	}
	free(rec);
	return e;
}

static void check(kr_server *s, struct evhttp_request *req, const char *account)
{
	json_t *body = NULL;
	checks c = {.results = json_array()};
	static const char *const keys[] = {"devices", NULL};
	size_t len = 0;
	const uint8_t *raw = kr_serve_body(req, &len);
	kr_err e = parse_json(raw, len, &body);
	if (!kr_failed(&e))
		e = only_keys(body, keys, "request");
	c.devices = body ? json_object_get(body, "devices") : NULL;
	if (!kr_failed(&e) && (!json_is_array(c.devices) || json_array_size(c.devices) > PAGE_MAX))
		e = kr_errf(KR_EINPUT, "devices: a list of at most %d device ids", PAGE_MAX);
	if (!kr_failed(&e))
		e = kr_desk_call(s->desk, account, run_check, &c);
	if (kr_failed(&e))
		reply_error(req, http_status(e.code), &e);
	else
		kr_serve_json(req, 200, json_pack("{s:O}", "results", c.results));
	json_decref(c.results);
	json_decref(body);
}

/* ---- the poll queue ------------------------------------------------------------------ */

typedef struct polled {
	json_t *msg;
	long count;
	int64_t ack;
} polled;

static KR_MUST_USE kr_err keep_msg(const kr_poll_msg *m, long count, void *arg)
{
	polled *p = arg;
	(void)count;
	p->msg = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)m->id, "time", m->time,
			   "device", m->device, "event", m->event, "detail", m->detail);
	KR_ENSURE(p->msg, KR_EINTERNAL, "out of memory");
	return kr_ok();
}

static KR_MUST_USE kr_err run_poll(kr_registry *r, void *arg)
{
	polled *p = arg;
	return kr_registry_poll(r, keep_msg, p, &p->count);
}

static KR_MUST_USE kr_err run_ack(kr_registry *r, void *arg)
{
	polled *p = arg;
	return kr_registry_poll_ack(r, p->ack);
}

static void poll_req(kr_server *s, struct evhttp_request *req, const char *account,
		     const char *rest)
{
	polled p = {0};
	kr_err e = kr_ok();
	if (*rest == '/') { /* /poll/ID/ack */
		char *end = NULL;
		p.ack = strtoll(rest + 1, &end, 10);
		if (p.ack <= 0 || strcmp(end, "/ack") != 0 ||
		    evhttp_request_get_command(req) != EVHTTP_REQ_POST)
			e = kr_errf(KR_EINPUT, "POST /api/v1/poll/ID/ack");
		if (!kr_failed(&e))
			e = kr_desk_call(s->desk, account, run_ack, &p);
	} else {
		e = kr_desk_call(s->desk, account, run_poll, &p);
	}
	if (kr_failed(&e)) {
		reply_error(req, e.code == KR_EINPUT && p.ack ? 404 : http_status(e.code), &e);
		return;
	}
	json_t *o = p.ack ? json_pack("{s:I,s:b}", "id", (json_int_t)p.ack, "acknowledged", 1)
			  : json_pack("{s:I}", "count", (json_int_t)p.count);
	if (o && p.msg) /* none when nothing waits */
		json_object_set_new(o, "message", p.msg);
	else
		json_decref(p.msg);
	kr_serve_json(req, 200, o);
}

/* ---- routing -------------------------------------------------------------------------- */

/* A call that changes something carries a header that a page of another
 * origin cannot send without the service's consent (a CORS preflight,
 * which it never gives): the client certificate goes with every request
 * a browser makes, so without it any site could act as the account. */
static int sent_from_here(struct evhttp_request *req)
{
	const char *h =
		evhttp_find_header(evhttp_request_get_input_headers(req), "Keyrite-Request");
	return h && !strcmp(h, "1");
}

void kr_api_handle(kr_server *s, struct evhttp_request *req, const char *account, const char *path)
{
	int get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
	kr_reg_cmd cmd;
	if (!get && !sent_from_here(req)) {
		kr_serve_log("csrf-refused", "account", account, "path", path);
		kr_serve_error(req, 403,
			       "a call that changes something needs the header "
			       "Keyrite-Request: 1 (docs/api.md)");
		return;
	}
	static const char devices[] = "devices";
	if (!strcmp(path, devices) && get)
		list(s, req, account);
	else if (!strncmp(path, "devices/", 8) && get && path[8] && !strchr(path + 8, '/'))
		info(s, req, account, path + 8);
	else if (!strncmp(path, "devices/", 8) && get)
		kr_view_device(s, req, account, path + 8);
	else if (get && (!strcmp(path, "account") || !strcmp(path, "stats")))
		kr_view(s, req, account, path);
	else if (!strncmp(path, "poll", 4) && (!path[4] || path[4] == '/'))
		poll_req(s, req, account, path + 4);
	else if (!strcmp(path, "check") && !get)
		check(s, req, account);
	else if (!get && command_named(path, &cmd))
		command(s, req, account, cmd);
	else
		kr_serve_error(req, 404, "no such call");
}
