/* What the web console reads besides the registry's commands (docs/api.md):
 * the account it acts as, the operator's figures, and a device's history
 * and certificates. Each is the registry's answer for the connection's
 * account, read on the desk; nothing here decides who may see what. */
#include "internal.h"
#include "../ca/authority.h"
#include "../publish/publish.h"
#include "../util/text.h"

#include <stdlib.h>
#include <string.h>

static int status_of(kr_code code)
{
	return code == KR_EDENIED || code == KR_EAUTH ? 403
	       : code == KR_EINPUT                    ? 404
	       : code == KR_EUSAGE                    ? 400
						      : 500;
}

typedef struct view {
	json_t *o;    /* the answer being built */
	json_t *list; /* its list */
	const char *device;
	kr_server *s;
	kr_registry *r; /* on the desk: the registry being read */
} view;

static KR_MUST_USE kr_err added(json_t *list, json_t *item)
{
	KR_ENSURE(item && json_array_append_new(list, item) == 0, KR_EINTERNAL, "out of memory");
	return kr_ok();
}

/* ---- the account, the figures ------------------------------------------------------ */

static KR_MUST_USE kr_err run_account(kr_registry *r, void *arg)
{
	view *v = arg;
	const char *name, *kind;
	kr_registry_account(r, &name, &kind);
	v->o = json_pack("{s:s,s:s}", "account", name, "kind", kind);
	KR_ENSURE(v->o, KR_EINTERNAL, "out of memory");
	return kr_ok();
}

static KR_MUST_USE kr_err one_stat(const char *series, const char *key, long n, void *arg)
{
	view *v = arg;
	json_t *s = json_object_get(v->o, series);
	if (!strcmp(series, "state")) {
		KR_ENSURE(json_object_set_new(s, key, json_integer(n)) == 0, KR_EINTERNAL,
			  "out of memory");
		return kr_ok();
	}
	return added(s, json_pack("{s:s,s:I}", "day", key, "count", (json_int_t)n));
}

static KR_MUST_USE kr_err run_stats(kr_registry *r, void *arg)
{
	view *v = arg;
	v->o = json_pack("{s:{},s:[],s:[]}", "state", "issued", "revoked");
	KR_ENSURE(v->o, KR_EINTERNAL, "out of memory");
	return kr_registry_stats(r, one_stat, v);
}

void kr_view(kr_server *s, struct evhttp_request *req, const char *account, const char *what)
{
	view v = {0};
	kr_err e = kr_desk_call(s->desk, account, !strcmp(what, "stats") ? run_stats : run_account,
				&v);
	if (kr_failed(&e)) {
		json_decref(v.o);
		kr_serve_error(req, status_of(e.code), e.msg);
		return;
	}
	kr_serve_json(req, 200, v.o);
}

/* ---- a device ----------------------------------------------------------------------- */

static KR_MUST_USE kr_err one_entry(const kr_audit_entry *e, void *arg)
{
	view *v = arg;
	return added(v->list, json_pack("{s:I,s:s,s:s,s:s}", "seq", (json_int_t)e->seq, "time",
					e->time, "kind", e->kind, "detail", e->detail));
}

static KR_MUST_USE kr_err run_history(kr_registry *r, void *arg)
{
	view *v = arg;
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	kr_err e = kr_registry_show(r, v->device, rec, one_entry, v);
	free(rec);
	return e;
}

static KR_MUST_USE kr_err one_cert(const kr_registration *g, const kr_cert_info *c, void *arg)
{
	view *v = arg;
	char *pem = NULL;
	size_t len = 0;
	KR_TRY(kr_cert_der_pem(c->der, c->der_len, &pem, &len));
	char serial[41];
	kr_hex_upper(c->serial, c->serial_len, serial);
	json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:s,s:I,s:I,s:s}", "asp", g->asp, "profile_id",
			      (json_int_t)c->profile_id, "status", c->status, "serial", serial,
			      "subject", c->subject ? c->subject : "", "not_before",
			      (json_int_t)c->not_before, "not_after", (json_int_t)c->not_after,
			      "certificate", pem);
	free(pem);
	if (o && c->reason >= 0)
		json_object_set_new(o, "revocation_reason", json_integer(c->reason));
	return added(v->list, o);
}

static KR_MUST_USE kr_err run_certs(kr_registry *r, void *arg)
{
	view *v = arg;
	return kr_registry_certs(r, v->device, one_cert, v);
}

/* ---- a device's records, and their live check ------------------------------------- */

static KR_MUST_USE kr_err one_record(const char *owner, const char *type, const char *rdata,
				     void *arg)
{
	view *v = arg;
	return added(v->list, json_pack("{s:s,s:s,s:s,s:s}", "owner", owner, "type", type,
					"expected", rdata, "of", "device"));
}

/* The device's provider's service key, the seed's "Record match": what
 * the payload tells the device to expect of the server. */
static KR_MUST_USE kr_err service_of(kr_registry *r, view *v, const char *asp)
{
	char owner[300], rdata[8 + 65];
	kr_err e = kr_registry_service_tlsa(r, asp, owner, rdata);
	if (kr_failed(&e))
		return e.code == KR_EINPUT ? kr_ok() : e; /* it names none */
	return added(v->list, json_pack("{s:s,s:s,s:s,s:s}", "owner", owner, "type", "TLSA",
					"expected", rdata, "of", "service"));
}

static KR_MUST_USE kr_err records_of(const kr_registration *g, const kr_cert_info *c, void *arg)
{
	view *v = arg;
	if (!strcmp(c->status, "valid"))
		KR_TRY(service_of(v->r, v, g->asp));
	const kr_profile *p = kr_config_profile_named(v->s->cfg, c->profile);
	const kr_zone_conf *z = NULL;
	/* which of its records are live (revoked, expired, withheld) is
	 * publish's to say, as for the zone */
	if (!p || !p->zone[0])
		return kr_ok(); /* its profile names no zone */
	kr_err e = kr_config_zone(v->s->cfg, p->zone, &z);
	if (kr_failed(&e))
		return kr_ok(); /* a zone keyrite does not publish */
	return kr_publish_cert_records(v->s->cfg, z, c, one_record, v);
}

static KR_MUST_USE kr_err run_records(kr_registry *r, void *arg)
{
	view *v = arg;
	v->r = r;
	return kr_registry_certs(r, v->device, records_of, v);
}

typedef struct answer {
	const char *expected;
	int match;
	json_t *rec;
} answer;

static KR_MUST_USE kr_err one_answer(const char *owner, const char *type, const char *rdata,
				     void *arg)
{
	(void)owner, (void)type;
	answer *a = arg;
	int same = !strcmp(rdata, a->expected);
	if (same || !a->match)
		json_object_set_new(a->rec, "published", json_string(rdata));
	a->match |= same;
	return kr_ok();
}

/* What [serve] dns answers for each record: asked on the connection's
 * thread, not on the desk (a server that does not answer takes seconds). */
static void check_live(const kr_server *s, json_t *list)
{
	size_t i;
	json_t *rec;
	json_array_foreach(list, i, rec)
	{
		answer a = {json_string_value(json_object_get(rec, "expected")), 0, rec};
		kr_err e = kr_publish_ask(
			s->sc->dns, json_string_value(json_object_get(rec, "owner")),
			json_string_value(json_object_get(rec, "type")), one_answer, &a);
		json_object_set_new(rec, "checked", json_boolean(!kr_failed(&e)));
		json_object_set_new(rec, "match", json_boolean(!kr_failed(&e) && a.match));
		if (kr_failed(&e))
			json_object_set_new(rec, "error", json_string(e.msg));
	}
}

void kr_view_device(kr_server *s, struct evhttp_request *req, const char *account, const char *path)
{
	char device[80];
	const char *slash = strchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	const char *what = slash ? slash + 1 : "";
	int history = !strcmp(what, "history"), records = !strcmp(what, "records");
	if (!n || n >= sizeof device ||
	    (!history && !records && strcmp(what, "certificates") != 0)) {
		kr_serve_error(req, 404, "no such call");
		return;
	}
	memcpy(device, path, n);
	device[n] = '\0';
	view v = {.list = json_array(), .device = device, .s = s};
	kr_desk_fn fn = history ? run_history : records ? run_records : run_certs;
	kr_err e = v.list ? kr_desk_call(s->desk, account, fn, &v)
			  : kr_errf(KR_EINTERNAL, "out of memory");
	if (kr_failed(&e)) {
		json_decref(v.list);
		kr_serve_error(req, status_of(e.code), e.msg);
		return;
	}
	if (records && s->sc->dns[0])
		check_live(s, v.list);
	const char *key = history ? "history" : records ? "records" : "certificates";
	kr_serve_json(req, 200, json_pack("{s:s,s:o}", "device", device, key, v.list));
}
