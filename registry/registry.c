/* The registry's commands: one device at a time, decided by rules.c, in
 * chunks of one transaction. Activation is activate.c's. */
#include "internal.h"
#include "../store/detail.h"
#include "authcode.h"
#include "../store/service.h"
#include "../util/fs.h"
#include "../util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

KR_MUST_USE kr_err kr_registry_open(kr_config *cfg, kr_store *store, const char *as,
				    const kr_hsm_opts *hsm, kr_registry **out)
{
	const kr_registry_conf *conf = NULL;
	const kr_account_conf *acct = NULL;
	const kr_ca_conf *ca = NULL;
	const kr_profile *p = NULL;
	KR_TRY(kr_config_registry(cfg, &conf));
	KR_TRY(kr_config_account(conf, as ? as : "operator", &acct));
	KR_TRY(kr_config_ca(cfg, conf->ca, &ca));
	KR_TRY(kr_config_profile(cfg, ca, conf->profile, &p));
	kr_registry *r = calloc(1, sizeof *r);
	KR_ENSURE(r, KR_EINTERNAL, "out of memory");
	*r = (kr_registry){.cfg = cfg, .store = store, .conf = conf, .as = acct, .profile = p};
	if (hsm)
		r->hsm = *hsm;
	kr_err e = kr_authority_open(ca, store, hsm, 1, &r->ca);
	if (kr_failed(&e)) {
		kr_authority_close(&r->ca); /* what it opened before it failed */
		free(r);
		return e;
	}
	*out = r;
	return kr_ok();
}

void kr_registry_close(kr_registry *r)
{
	if (!r)
		return;
	kr_payload_key_close(r->payload);
	kr_authority_close(&r->ca);
	free(r);
}

/* ---- the view of one device --------------------------------------------------- */

static int is_device_level(kr_reg_cmd c)
{
	switch (c) {
	case KR_CMD_IMPORT:
	case KR_CMD_AUTHCODE:
	case KR_CMD_LOCK:
	case KR_CMD_UNLOCK:
	case KR_CMD_DELETE:
	case KR_CMD_RESTORE:
	case KR_CMD_PURGE:
	case KR_CMD_SWITCH_MNO:
	case KR_CMD_SHOW:
		return 1;
	default:
		return 0;
	}
}

static int find_registration(const kr_reg_record *rec, const char *asp, int gaining)
{
	for (int i = 0; i < rec->nr; i++)
		if (!strcmp(gaining ? rec->r[i].gaining : rec->r[i].asp, asp))
			return i;
	return -1;
}

kr_reg_state kr_registry_state_of(const kr_reg_device *d, const kr_registration *g)
{
	if (!d->listed)
		return KR_ST_NONE;
	if (d->deleted)
		return KR_ST_PENDING_DELETE;
	if (!g)
		return KR_ST_LISTED;
	kr_reg_state s = kr_reg_state_named(g->state);
	return s == KR_NSTATES ? KR_ST_LISTED : s;
}

unsigned kr_registry_flags_of(const kr_reg_device *d, const kr_registration *g)
{
	unsigned f = d->locks & KR_LOCKS;
	if (g && g->gaining[0])
		f |= KR_FL_PENDING_TRANSFER;
	if (g && g->hold)
		f |= KR_FL_HOLD;
	return f;
}

/* Which registration an account's command is about: an ASP's own (or the
 * one it is gaining); for a transfer request, the losing ASP's; for the
 * others, the one named, or the only one. */
static KR_MUST_USE kr_err pick(kr_registry *r, kr_reg_cmd cmd, const char *asp, kr_reg_view *v)
{
	const kr_reg_record *rec = &v->rec;
	const kr_account_conf *me = r->as;
	v->gi = -1;
	if (me->kind == KR_ACCOUNT_ASP && cmd != KR_CMD_TRANSFER_REQUEST) {
		v->gi = find_registration(rec, me->name, 0);
		if (v->gi < 0)
			v->gi = find_registration(rec, me->name, 1);
		return kr_ok();
	}
	if (cmd == KR_CMD_REGISTER || asp) {
		KR_ENSURE(asp, KR_EUSAGE, "name the ASP with --asp");
		v->gi = find_registration(rec, asp, 0);
		return kr_ok();
	}
	if (rec->nr > 1 && !is_device_level(cmd))
		return kr_errf(KR_EUSAGE,
			       "device %s is registered with %d ASPs: name one with --asp",
			       rec->d.id, rec->nr);
	v->gi = rec->nr == 1 ? 0 : -1;
	return kr_ok();
}

static kr_reg_role role_of(const kr_registry *r, kr_reg_cmd cmd, const kr_reg_view *v)
{
	const kr_account_conf *me = r->as;
	const kr_reg_device *d = &v->rec.d;
	const kr_registration *g = v->gi >= 0 ? &v->rec.r[v->gi] : NULL;
	switch (me->kind) {
	case KR_ACCOUNT_OPERATOR:
		return KR_ROLE_OPERATOR;
	case KR_ACCOUNT_OWNER:
		/* who imports a device becomes its owner */
		return (cmd == KR_CMD_IMPORT && !d->listed) || !strcmp(d->owner, me->name)
			       ? KR_ROLE_OWNER
			       : KR_ROLE_STRANGER;
	case KR_ACCOUNT_MNO:
		return !strcmp(d->mno, me->name) ? KR_ROLE_MNO : KR_ROLE_STRANGER;
	case KR_ACCOUNT_ASP:
		if (g && !strcmp(g->asp, me->name))
			return KR_ROLE_SPONSOR;
		if (g && !strcmp(g->gaining, me->name))
			return KR_ROLE_GAINING;
		return KR_ROLE_OTHER_ASP;
	}
	return KR_ROLE_STRANGER;
}

/* A device-level command meets the furthest state of its registrations
 * and the flags of them all. */
static void device_level(kr_reg_view *v)
{
	static const int rank[KR_NSTATES] = {[KR_ST_LISTED] = 1,
					     [KR_ST_REGISTERED] = 2,
					     [KR_ST_DEACTIVATED] = 3,
					     [KR_ST_ACTIVE] = 4};
	v->state = kr_registry_state_of(&v->rec.d, NULL);
	v->flags = kr_registry_flags_of(&v->rec.d, NULL);
	for (int i = 0; i < v->rec.nr; i++) {
		kr_reg_state s = kr_registry_state_of(&v->rec.d, &v->rec.r[i]);
		if (v->state != KR_ST_PENDING_DELETE && rank[s] > rank[v->state])
			v->state = s;
		v->flags |= kr_registry_flags_of(&v->rec.d, &v->rec.r[i]);
	}
}

KR_MUST_USE kr_err kr_reg_view_decide(kr_registry *r, kr_reg_cmd cmd, const char *device,
				      const char *asp, kr_reg_view *v, char *why, size_t whysz,
				      kr_code *code)
{
	why[0] = '\0';
	*code = KR_OK;
	v->found = 0;
	v->gi = -1;
	v->role = KR_ROLE_STRANGER;
	v->state = KR_ST_NONE;
	v->flags = 0;
	kr_err e = kr_reg_device_id_check(device);
	if (kr_failed(&e)) {
		snprintf(why, whysz, "%s", e.msg);
		*code = KR_EINPUT;
		return kr_ok();
	}
	KR_TRY(kr_store_registry_device(r->store, device, &v->rec, &v->found));
	if (!v->found)
		kr_reg_record_clear(&v->rec, device);
	e = pick(r, cmd, asp, v);
	if (kr_failed(&e)) {
		snprintf(why, whysz, "%s", e.msg);
		*code = e.code;
		return kr_ok();
	}
	v->role = role_of(r, cmd, v);
	if (is_device_level(cmd)) {
		device_level(v);
	} else {
		const kr_registration *g = v->gi >= 0 ? &v->rec.r[v->gi] : NULL;
		v->state = kr_registry_state_of(&v->rec.d, g);
		v->flags = kr_registry_flags_of(&v->rec.d, g);
	}
	v->v = kr_reg_decide(cmd, v->role, v->state, v->flags);
	if (!v->v.allowed) {
		snprintf(why, whysz, "%s: %s (as %s)", kr_reg_cmd_name(cmd), v->v.reason,
			 r->as->name);
		*code = KR_EDENIED;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_reg_log(kr_registry *r, const char *device, kr_reg_cmd cmd, const char *asp,
			      kr_reg_state from, kr_reg_state to, int64_t profile_id,
			      const char *note)
{
	char op[32];
	kr_copy(op, sizeof op, kr_reg_cmd_name(cmd));
	for (char *p = op; *p; p++)
		if (*p == ' ')
			*p = '-';
	kr_reg_event ev = {
		.device = device,
		.op = op,
		.account = r->as->name,
		.asp = asp,
		.from = from == KR_NSTATES ? NULL : kr_reg_state_name(from),
		.to = to == KR_NSTATES ? NULL : kr_reg_state_name(to),
		.profile_id = profile_id,
		.note = note,
	};
	KR_TRY(kr_store_log_registry(r->store, &ev));
	char detail[512];
	snprintf(detail, sizeof detail, "%s%s%s by %s%s%.300s", ev.from ? ev.from : "",
		 ev.from && ev.to ? "->" : "", ev.to ? ev.to : "", r->as->name, note ? ": " : "",
		 note ? note : "");
	return kr_reg_notify(r, device, cmd, asp, detail);
}

/* ---- one device's change -------------------------------------------------------- */

typedef struct out {
	kr_reg_item item;
	const char *result;
	char reason[KR_ERR_MSG];
	kr_code code;
	kr_reg_state from, to;
	int64_t profile_id;
	char secret[KR_CODE_TEXT + 1];
	int keep; /* refused, but what it recorded stays (a wrong auth code) */
} out;

typedef struct act_ctx {
	kr_registry *r;
	const kr_reg_args *a;
	kr_reg_view v;
	kr_registration *g; /* the registration acted on, or NULL */
	out *o;
	int64_t now;
} act_ctx;

static __attribute__((format(printf, 3, 4))) kr_err refuse(out *o, kr_code code, const char *fmt,
							   ...)
{
	o->result = "refused";
	o->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof o->reason, fmt, ap);
	va_end(ap);
	return kr_ok();
}

static kr_err unchanged(out *o, const char *why)
{
	o->result = "unchanged";
	kr_copy(o->reason, sizeof o->reason, why);
	return kr_ok();
}

/* The change's result and its audit entry (to: KR_NSTATES when the state
 * does not change). */
static KR_MUST_USE kr_err logged_as(act_ctx *c, kr_reg_cmd cmd, const char *result, kr_reg_state to,
				    const char *note)
{
	c->o->result = result;
	c->o->to = to == KR_NSTATES ? c->v.state : to;
	return kr_reg_log(c->r, c->v.rec.d.id, cmd, c->g ? c->g->asp : NULL, c->v.state, to,
			  c->g ? c->g->profile_id : 0, note);
}

static KR_MUST_USE kr_err logged(act_ctx *c, const char *result, kr_reg_state to, const char *note)
{
	return logged_as(c, c->a->cmd, result, to, note);
}

/* The registration's certificates revoked (RFC 5280 section 5.3.1 reason):
 * its profile's, and one a rekey left valid while it waited for a
 * confirmation that never came (serve/cmp.c: kur). */
static KR_MUST_USE kr_err revoke_profile(act_ctx *c, kr_registration *g, int reason)
{
	if (reason < 0)
		return kr_ok();
	long n = 0;
	KR_TRY(kr_store_supersede(c->r->store, c->v.rec.d.id, g->asp, 0, NULL, 0, reason, c->now,
				  &n));
	if (n > 0 && !strcmp(g->cert_status, "valid"))
		kr_copy(g->cert_status, sizeof g->cert_status, "revoked");
	return kr_ok();
}

static KR_MUST_USE kr_err account_of_kind(const kr_registry *r, const char *name,
					  kr_account_kind kind, const char *what)
{
	const kr_account_conf *a = NULL;
	KR_TRY(kr_config_account(r->conf, name, &a));
	KR_ENSURE(a->kind == kind, KR_EINPUT, "%s is not an %s account", name, what);
	return kr_ok();
}

static KR_MUST_USE kr_err act_import(act_ctx *c)
{
	const kr_reg_item *it = &c->o->item;
	kr_reg_device *d = &c->v.rec.d;
	const char *owner = it->owner[0]                         ? it->owner
			    : c->a->owner                        ? c->a->owner
			    : c->r->as->kind == KR_ACCOUNT_OWNER ? c->r->as->name
								 : "";
	const char *mno = it->mno[0] ? it->mno : c->a->mno ? c->a->mno : "";
	if (!it->model[0])
		return refuse(c->o, KR_EINPUT, "%s: no model", it->device);
	if (c->r->as->kind == KR_ACCOUNT_OWNER && strcmp(owner, c->r->as->name) != 0)
		return refuse(c->o, KR_EDENIED,
			      "an owner imports its own devices only (row says %s)", owner);
	kr_err e = owner[0] ? account_of_kind(c->r, owner, KR_ACCOUNT_OWNER, "owner") : kr_ok();
	if (!kr_failed(&e) && mno[0])
		e = account_of_kind(c->r, mno, KR_ACCOUNT_MNO, "MNO");
	if (kr_failed(&e))
		return refuse(c->o, KR_EINPUT, "%s", e.msg);
	kr_copy(d->model, sizeof d->model, it->model);
	kr_copy(d->version, sizeof d->version, it->version);
	kr_copy(d->owner, sizeof d->owner, owner);
	kr_copy(d->mno, sizeof d->mno, mno);
	int imported = 0;
	KR_TRY(kr_store_import_device(c->r->store, d, &imported));
	/* listed already: no result, the caller decides on what is there */
	return imported ? logged(c, "imported", KR_ST_LISTED, NULL) : kr_ok();
}

/* Most devices a bulk import names are new: tried first as new (the rules
 * on no device, one upsert), read and decided only when listed already. */
static KR_MUST_USE kr_err import_new(act_ctx *c, int *done)
{
	kr_reg_role role = c->r->as->kind == KR_ACCOUNT_OPERATOR ? KR_ROLE_OPERATOR
			   : c->r->as->kind == KR_ACCOUNT_OWNER  ? KR_ROLE_OWNER
								 : KR_ROLE_STRANGER;
	*done = 0;
	kr_err e = kr_reg_device_id_check(c->o->item.device);
	if (kr_failed(&e) || !kr_reg_decide(KR_CMD_IMPORT, role, KR_ST_NONE, 0).allowed)
		return kr_ok(); /* the full decision says why not */
	kr_reg_record_clear(&c->v.rec, c->o->item.device);
	c->v.found = 0;
	c->v.gi = -1;
	c->v.role = role;
	c->v.state = c->o->from = KR_ST_NONE;
	c->v.flags = 0;
	KR_TRY(act_import(c));
	*done = c->o->result != NULL;
	return kr_ok();
}

/* A re-import of the same row changes nothing; another row is refused. */
static KR_MUST_USE kr_err import_again(act_ctx *c)
{
	const kr_reg_item *it = &c->o->item;
	const kr_reg_device *d = &c->v.rec.d;
	if (strcmp(d->model, it->model) != 0 || strcmp(d->version, it->version) != 0)
		return refuse(c->o, KR_EINPUT, "already listed, as %s",
			      d->model[0] ? d->model : "?");
	return unchanged(c->o, "already listed");
}

static KR_MUST_USE kr_err act_register(act_ctx *c)
{
	kr_err e = account_of_kind(c->r, c->a->asp, KR_ACCOUNT_ASP, "ASP");
	if (kr_failed(&e))
		return refuse(c->o, KR_EINPUT, "%s", e.msg);
	kr_reg_record *rec = &c->v.rec;
	if (rec->nr == KR_REG_MAX_ASPS)
		return refuse(c->o, KR_EDENIED, "register: a device has at most %d ASPs",
			      KR_REG_MAX_ASPS);
	kr_registration *g = &rec->r[rec->nr++];
	*g = (kr_registration){0};
	kr_copy(g->asp, sizeof g->asp, c->a->asp);
	kr_copy(g->state, sizeof g->state, "registered");
	c->g = g;
	KR_TRY(kr_store_save_registration(c->r->store, rec->d.id, g, NULL));
	return logged(c, "registered", KR_ST_REGISTERED, NULL);
}

static KR_MUST_USE kr_err act_authcode(act_ctx *c)
{
	kr_reg_device *d = &c->v.rec.d;
	KR_TRY(kr_authcode_new(c->r->ca.hsm, d->id, c->o->secret, d->code_salt, d->code_hash));
	d->has_code = 1;
	d->code_expires = c->now + c->r->conf->code_days * 86400;
	d->code_failures = 0;
	KR_TRY(kr_store_save_device(c->r->store, d));
	return logged(c, "code made", KR_NSTATES, NULL);
}

/* A new enrollment secret: the next generation, the old one void. */
static KR_MUST_USE kr_err act_secret(act_ctx *c)
{
	kr_reg_device *d = &c->v.rec.d;
	const char *key = c->r->conf->enrollment_key;
	if (!key[0])
		return refuse(c->o, KR_EINPUT, "%s",
			      "[registry] has no enrollment_key (keyrite-ca(5))");
	d->enroll_gen++;
	KR_TRY(kr_enrollment_secret(c->r->ca.hsm, key, d->id, d->enroll_gen, c->o->secret));
	KR_TRY(kr_store_save_device(c->r->store, d));
	return logged(c, "secret made", KR_NSTATES, NULL);
}

/* A wrong code is recorded (and refused); enough of them lock the device
 * against transfer and void its code, until its owner makes a new one and
 * unlocks. */
static KR_MUST_USE kr_err wrong_code(act_ctx *c, const char *why)
{
	kr_reg_device *d = &c->v.rec.d;
	d->code_failures++;
	int locked = d->code_failures >= c->r->conf->code_attempts;
	if (locked) {
		d->locks |= KR_LOCK_TRANSFER;
		d->has_code = 0;
	}
	KR_TRY(kr_store_save_device(c->r->store, d));
	char note[160];
	snprintf(note, sizeof note, "%s (%d of %ld)%s", why, d->code_failures,
		 c->r->conf->code_attempts, locked ? ": locked against transfer" : "");
	KR_TRY(kr_reg_log(c->r, d->id, c->a->cmd, c->g->asp, KR_NSTATES, KR_NSTATES, 0, note));
	c->o->keep = 1;
	return refuse(c->o, KR_EAUTH, "%s", note);
}

static KR_MUST_USE kr_err check_code(act_ctx *c, int *ok)
{
	const kr_reg_device *d = &c->v.rec.d;
	*ok = 0;
	if (!c->o->item.code[0])
		return refuse(c->o, KR_EAUTH, "%s: no auth code given (a Code column)", d->id);
	if (!d->has_code)
		return refuse(c->o, KR_EAUTH,
			      "%s: the device has no auth code (used, voided, or never made: its "
			      "owner makes one with keyrite registry authcode)",
			      d->id);
	if (d->code_expires <= c->now)
		return wrong_code(c, "auth code expired");
	int yes = 0;
	KR_TRY(kr_authcode_matches(c->o->item.code, d->id, d->code_salt, d->code_hash, &yes));
	if (!yes)
		return wrong_code(c, "wrong auth code");
	*ok = 1;
	return kr_ok();
}

/* The gaining ASP sponsors the device; the losing one's certificate is
 * revoked (affiliationChanged) and its records go with it; the code is
 * spent (RFC 9154 section 4.3). */
static KR_MUST_USE kr_err approve(act_ctx *c, const char *how)
{
	kr_registration *g = c->g;
	int reason = kr_reg_decide(KR_CMD_TRANSFER_APPROVE, KR_ROLE_OPERATOR, c->v.state,
				   KR_FL_PENDING_TRANSFER)
			     .revoke_reason;
	KR_TRY(revoke_profile(c, g, reason));
	char losing[sizeof g->asp];
	kr_copy(losing, sizeof losing, g->asp);
	kr_registration moved = {0};
	kr_copy(moved.asp, sizeof moved.asp, g->gaining);
	kr_copy(moved.state, sizeof moved.state, "registered");
	KR_TRY(kr_store_save_registration(c->r->store, c->v.rec.d.id, &moved, losing));
	kr_reg_device *d = &c->v.rec.d;
	d->has_code = 0;
	d->code_failures = 0;
	KR_TRY(kr_store_save_device(c->r->store, d));
	char note[256];
	snprintf(note, sizeof note, "%s; from %s to %s", how, losing, moved.asp);
	if (strcmp(losing, c->r->as->name) != 0) /* it has no registration to hear by now */
		KR_TRY(kr_store_poll_add(c->r->store, losing, d->id, "transfer approve", note));
	*g = moved;
	return logged_as(c, KR_CMD_TRANSFER_APPROVE, "transferred", KR_ST_REGISTERED, note);
}

static KR_MUST_USE kr_err act_transfer_request(act_ctx *c)
{
	if (find_registration(&c->v.rec, c->r->as->name, 0) >= 0)
		return refuse(c->o, KR_EDENIED, "%s already registers the device", c->r->as->name);
	int ok = 0;
	KR_TRY(check_code(c, &ok));
	if (!ok)
		return kr_ok();
	kr_registration *g = c->g;
	kr_copy(g->gaining, sizeof g->gaining, c->r->as->name);
	g->requested_at = c->now;
	KR_TRY(logged(c, "transfer pending", KR_NSTATES, NULL));
	if (c->r->conf->transfer_days > 0)
		return kr_store_save_registration(c->r->store, c->v.rec.d.id, g, NULL);
	/* auto-approval at once (serverApproved, RFC 5730 section 2.9.3.4) */
	return approve(c, "approved by the registry at once");
}

/* The registry approves a transfer the losing ASP let wait past
 * transfer_auto_approve_days (serverApproved, RFC 5730 section 2.9.3.4)
 * when a command first meets the device after that: what the command then
 * decides, it decides on the device as transferred. */
static KR_MUST_USE kr_err settle_due(act_ctx *c, int *settled)
{
	long days = c->r->conf->transfer_days;
	*settled = 0;
	for (int i = 0; days > 0 && i < c->v.rec.nr; i++) {
		kr_registration *g = &c->v.rec.r[i];
		if (!g->gaining[0] || c->now < g->requested_at + days * 86400)
			continue;
		char how[96];
		snprintf(how, sizeof how, "approved by the registry after %ld day(s)", days);
		c->g = g;
		c->v.state = kr_registry_state_of(&c->v.rec.d, g);
		KR_TRY(approve(c, how));
		*settled = 1;
	}
	c->g = NULL;
	return kr_ok();
}

KR_MUST_USE kr_err kr_reg_settle(kr_registry *r, const char *device, int *settled)
{
	*settled = 0;
	if (r->conf->transfer_days == 0)
		return kr_ok(); /* every transfer was approved at once */
	kr_reg_args a = {.cmd = KR_CMD_TRANSFER_APPROVE};
	out o;
	act_ctx c;
	c.r = r;
	c.a = &a;
	c.o = &o;
	c.now = (int64_t)time(NULL);
	c.g = NULL;
	char why[KR_ERR_MSG];
	kr_code code = KR_OK;
	KR_TRY(kr_reg_view_decide(r, KR_CMD_SHOW, device, NULL, &c.v, why, sizeof why, &code));
	return c.v.found ? settle_due(&c, settled) : kr_ok();
}

static KR_MUST_USE kr_err act_transfer_end(act_ctx *c)
{
	kr_registration *g = c->g;
	kr_reg_cmd cmd = c->a->cmd;
	if (cmd == KR_CMD_TRANSFER_APPROVE)
		return approve(c, c->r->as->kind == KR_ACCOUNT_OPERATOR
					  ? "approved by the registry operator"
					  : "approved by the losing ASP");
	if (cmd == KR_CMD_TRANSFER_QUERY) {
		char why[256];
		int64_t due = g->requested_at + c->r->conf->transfer_days * 86400;
		snprintf(why, sizeof why, "pending: %s asked on %lld; approves itself at %lld",
			 g->gaining, (long long)g->requested_at, (long long)due);
		return unchanged(c->o, why);
	}
	char note[96];
	snprintf(note, sizeof note, "%s by %s",
		 cmd == KR_CMD_TRANSFER_REJECT ? "rejected" : "cancelled", c->r->as->name);
	g->gaining[0] = '\0';
	g->requested_at = 0;
	KR_TRY(kr_store_save_registration(c->r->store, c->v.rec.d.id, g, NULL));
	return logged(c, cmd == KR_CMD_TRANSFER_REJECT ? "transfer rejected" : "transfer cancelled",
		      KR_NSTATES, note);
}

static KR_MUST_USE kr_err act_hold(act_ctx *c)
{
	c->g->hold = c->a->cmd == KR_CMD_HOLD;
	KR_TRY(kr_store_save_registration(c->r->store, c->v.rec.d.id, c->g, NULL));
	return logged(c, c->g->hold ? "held" : "unheld", KR_NSTATES, NULL);
}

static KR_MUST_USE kr_err act_lock(act_ctx *c)
{
	kr_reg_device *d = &c->v.rec.d;
	unsigned before = d->locks;
	if (c->a->cmd == KR_CMD_LOCK)
		d->locks |= c->a->lock;
	else
		d->locks &= ~c->a->lock;
	if (d->locks == before)
		return unchanged(c->o, c->a->cmd == KR_CMD_LOCK ? "already locked" : "not locked");
	KR_TRY(kr_store_save_device(c->r->store, d));
	return logged(c, c->a->cmd == KR_CMD_LOCK ? "locked" : "unlocked", KR_NSTATES,
		      kr_reg_flag_name(c->a->lock));
}

/* deactivate, reset: the certificate revoked, the records withdrawn. */
static KR_MUST_USE kr_err act_deprovision(act_ctx *c)
{
	KR_TRY(revoke_profile(c, c->g, c->v.v.revoke_reason));
	kr_reg_state to = c->v.v.to;
	kr_copy(c->g->state, sizeof c->g->state, kr_reg_state_name(to));
	c->g->hold = 0;
	if (to == KR_ST_REGISTERED)
		c->g->profile_id = 0; /* a reset device starts a new profile */
	KR_TRY(kr_store_save_registration(c->r->store, c->v.rec.d.id, c->g, NULL));
	return logged(c, to == KR_ST_REGISTERED ? "reset" : "deactivated", to, NULL);
}

/* Every registration's certificate revoked; active ones deactivated; the
 * device waits out its grace period (RFC 3915 section 3.1). */
static KR_MUST_USE kr_err act_delete(act_ctx *c)
{
	kr_reg_record *rec = &c->v.rec;
	for (int i = 0; i < rec->nr; i++) {
		kr_registration *g = &rec->r[i];
		KR_TRY(revoke_profile(c, g, c->v.v.revoke_reason));
		if (!strcmp(g->state, "active")) {
			kr_copy(g->state, sizeof g->state, "deactivated");
			KR_TRY(kr_store_save_registration(c->r->store, rec->d.id, g, NULL));
		}
	}
	rec->d.deleted = c->now;
	rec->d.purge_after = c->now + c->r->conf->grace_days * 86400;
	KR_TRY(kr_store_save_device(c->r->store, &rec->d));
	return logged(c, "deleted", KR_ST_PENDING_DELETE, NULL);
}

static KR_MUST_USE kr_err act_restore(act_ctx *c)
{
	c->v.rec.d.deleted = c->v.rec.d.purge_after = 0;
	KR_TRY(kr_store_save_device(c->r->store, &c->v.rec.d));
	device_level(&c->v);
	c->v.state = KR_ST_PENDING_DELETE;
	kr_reg_view now = c->v;
	device_level(&now);
	return logged(c, "restored", now.state, NULL);
}

static KR_MUST_USE kr_err act_purge(act_ctx *c)
{
	if (c->now < c->v.rec.d.purge_after) {
		char why[96];
		snprintf(why, sizeof why, "in its grace period until %lld (delete_grace_days)",
			 (long long)c->v.rec.d.purge_after);
		return refuse(c->o, KR_EDENIED, "purge: %s", why);
	}
	KR_TRY(kr_store_purge_device(c->r->store, c->v.rec.d.id));
	return logged(c, "purged", KR_ST_NONE, NULL);
}

static KR_MUST_USE kr_err act_switch_mno(act_ctx *c)
{
	kr_reg_device *d = &c->v.rec.d;
	kr_err e = account_of_kind(c->r, c->a->mno, KR_ACCOUNT_MNO, "MNO");
	if (kr_failed(&e))
		return refuse(c->o, KR_EINPUT, "%s", e.msg);
	if (!strcmp(d->mno, c->a->mno))
		return unchanged(c->o, "already with that MNO");
	char note[160];
	snprintf(note, sizeof note, "from %s to %s", d->mno[0] ? d->mno : "none", c->a->mno);
	kr_copy(d->mno, sizeof d->mno, c->a->mno);
	KR_TRY(kr_store_save_device(c->r->store, d));
	return logged(c, "switched", KR_NSTATES, note);
}

/* The payload of the device's current profile into DIR/DEVICE.p7m. */
static KR_MUST_USE kr_err act_payload(act_ctx *c)
{
	kr_registry *r = c->r;
	KR_ENSURE(c->a->out_dir, KR_EUSAGE, "payload: --out DIR");
	char path[PATH_MAX], name[96];
	snprintf(name, sizeof name, "%s.p7m", c->v.rec.d.id);
	KR_TRY(kr_fs_join(c->a->out_dir, name, path, sizeof path));
	if (access(path, F_OK) == 0)
		return unchanged(c->o, "its payload file exists already");
	if (!r->payload)
		KR_TRY(kr_payload_key_open(r, &r->hsm, &r->payload));
	KR_TRY(kr_payload_for(r, r->payload, c->v.rec.d.id, c->g, path));
	c->o->result = "written";
	c->o->to = c->v.state;
	return kr_ok();
}

typedef KR_MUST_USE kr_err (*act_fn)(act_ctx *c);
static const act_fn acts[KR_NCMDS] = {
	[KR_CMD_IMPORT] = act_import,
	[KR_CMD_REGISTER] = act_register,
	[KR_CMD_AUTHCODE] = act_authcode,
	[KR_CMD_SECRET] = act_secret,
	[KR_CMD_TRANSFER_REQUEST] = act_transfer_request,
	[KR_CMD_TRANSFER_APPROVE] = act_transfer_end,
	[KR_CMD_TRANSFER_REJECT] = act_transfer_end,
	[KR_CMD_TRANSFER_CANCEL] = act_transfer_end,
	[KR_CMD_TRANSFER_QUERY] = act_transfer_end,
	[KR_CMD_HOLD] = act_hold,
	[KR_CMD_UNHOLD] = act_hold,
	[KR_CMD_LOCK] = act_lock,
	[KR_CMD_UNLOCK] = act_lock,
	[KR_CMD_DEACTIVATE] = act_deprovision,
	[KR_CMD_RESET] = act_deprovision,
	[KR_CMD_DELETE] = act_delete,
	[KR_CMD_RESTORE] = act_restore,
	[KR_CMD_PURGE] = act_purge,
	[KR_CMD_SWITCH_MNO] = act_switch_mno,
	[KR_CMD_PAYLOAD] = act_payload,
};

static KR_MUST_USE kr_err act(kr_registry *r, const kr_reg_args *a, out *o, int64_t now)
{
	act_ctx c; /* not {0}: its view is 8 KiB, and the decision fills it */
	c.r = r;
	c.a = a;
	c.o = o;
	c.now = now;
	c.g = NULL;
	const kr_reg_item *it = &o->item;
	o->from = o->to = KR_NSTATES;
	if (it->error[0])
		return refuse(o, KR_EINPUT, "%s", it->error);
	if (!it->device[0])
		return refuse(o, KR_EINPUT, "%s", "no device id");
	if (a->cmd == KR_CMD_IMPORT) {
		int done = 0;
		KR_TRY(import_new(&c, &done));
		if (done)
			return kr_ok();
	}
	KR_TRY(kr_reg_view_decide(r, a->cmd, it->device, a->asp, &c.v, o->reason, sizeof o->reason,
				  &o->code));
	int settled = 0;
	if (c.v.found)
		KR_TRY(settle_due(&c, &settled));
	if (settled) { /* decided again, on the device as the approval left it */
		o->keep = 1;
		KR_TRY(kr_reg_view_decide(r, a->cmd, it->device, a->asp, &c.v, o->reason,
					  sizeof o->reason, &o->code));
	}
	o->from = c.v.state;
	/* importing a listed device again is no error when the row agrees */
	if (o->code == KR_EDENIED && a->cmd == KR_CMD_IMPORT && c.v.rec.d.listed &&
	    (c.v.role == KR_ROLE_OPERATOR || c.v.role == KR_ROLE_OWNER))
		return import_again(&c);
	/* a transfer request run again: what it asked for is done, or pending */
	if (o->code == KR_EDENIED && a->cmd == KR_CMD_TRANSFER_REQUEST &&
	    (c.v.role == KR_ROLE_SPONSOR || c.v.role == KR_ROLE_GAINING))
		return unchanged(o, c.v.role == KR_ROLE_SPONSOR ? "already sponsored by this ASP"
								: "transfer already pending");
	if (o->code != KR_OK) {
		o->result = "refused";
		return kr_ok();
	}
	c.g = c.v.gi >= 0 ? &c.v.rec.r[c.v.gi] : NULL;
	o->profile_id = c.g ? c.g->profile_id : 0;
	KR_ENSURE(acts[a->cmd], KR_EINTERNAL, "registry %s: not a bulk command",
		  kr_reg_cmd_name(a->cmd));
	KR_TRY(acts[a->cmd](&c));
	if (!o->result) /* an import that met a device listed meanwhile */
		return refuse(o, KR_EDENIED, "%s: listed by another import meanwhile", it->device);
	return kr_ok();
}

const char *kr_reg_secret_name(const kr_reg_outcome *o)
{
	return o->result && !strcmp(o->result, "secret made") ? "enrollment_secret" : "auth_code";
}

/* ---- the run: chunks of devices, a transaction each --------------------------------- */

static void report(const out *o, kr_reg_outcome_cb cb, void *arg, kr_reg_summary *sum)
{
	const char *result = o->result ? o->result : "refused"; /* act() always gives one */
	int refused = !strcmp(result, "refused");
	if (refused && sum->refused++ == 0)
		sum->first_refusal = o->code;
	else if (!refused && !strcmp(result, "unchanged"))
		sum->unchanged++;
	else if (!refused)
		sum->done++;
	kr_reg_outcome oc = {
		.where = o->item.where,
		.device = o->item.device,
		.result = result,
		.reason = o->reason[0] ? o->reason : NULL,
		.code = refused ? o->code : KR_OK,
		.from = o->from == KR_NSTATES ? NULL : kr_reg_state_name(o->from),
		.to = o->to == KR_NSTATES ? NULL : kr_reg_state_name(o->to),
		.profile_id = o->profile_id,
		.secret = o->secret[0] ? o->secret : NULL,
	};
	if (cb)
		cb(&oc, arg);
}

/* One chunk: each device marked, changed, kept or undone; a checkpoint;
 * the commit; then the outcomes, which are true only once committed. */
static KR_MUST_USE kr_err run_chunk(kr_registry *r, const kr_reg_args *a, out *outs, int n,
				    kr_reg_outcome_cb cb, void *arg, kr_reg_summary *sum)
{
	int64_t now = (int64_t)time(NULL);
	int kept = 0;
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, r->store));
	for (int i = 0; i < n; i++) {
		out *o = &outs[i];
		KR_TRY(kr_txn_mark(&t));
		kr_err e = act(r, a, o, now);
		const char *res = kr_failed(&e) || !o->result ? "" : o->result;
		if (kr_failed(&e) ||
		    ((!strcmp(res, "refused") || !strcmp(res, "unchanged")) && !o->keep)) {
			KR_TRY(kr_txn_undo(&t));
		} else {
			KR_TRY(kr_txn_keep(&t));
			kept++;
		}
		if (kr_failed(&e)) {
			kr_err_prefix(&e, "%s", o->item.where);
			return e;
		}
	}
	if (kept && !a->preview)
		KR_TRY(kr_authority_checkpoint(&r->ca, r->store));
	if (!a->preview)
		KR_TRY(kr_txn_commit(&t));
	for (int i = 0; i < n; i++)
		report(&outs[i], cb, arg, sum);
	return kr_ok(); /* a preview's transaction rolls back here */
}

KR_MUST_USE kr_err kr_registry_run(kr_registry *r, const kr_reg_args *a, char *const *items,
				   int nitems, kr_reg_outcome_cb cb, void *arg, kr_reg_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	/* only an import is harmless to try: another command's refusals (a
	 * wrong auth code) must be recorded, never rolled back */
	KR_ENSURE(!a->preview || a->cmd == KR_CMD_IMPORT, KR_EUSAGE,
		  "registry %s: only an import can be previewed", kr_reg_cmd_name(a->cmd));
	if (a->cmd == KR_CMD_ACTIVATE || a->cmd == KR_CMD_REACTIVATE || a->cmd == KR_CMD_REKEY)
		return kr_reg_activate(r, a, items, nitems, cb, arg, sum);
	KR_ENSURE(a->cmd < KR_NCMDS && acts[a->cmd], KR_EINTERNAL,
		  "registry %s: not a bulk command", kr_reg_cmd_name(a->cmd));
	kr_items *it = NULL;
	KR_TRY(kr_items_of(a, items, nitems, &it));
	int size = a->chunk > 0 ? a->chunk : 1000;
	out *outs = calloc((size_t)size, sizeof *outs);
	kr_err e = outs ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	int more = 1;
	long seen = 0;
	while (!kr_failed(&e) && more) {
		int n = 0;
		while (n < size && more && !kr_failed(&e)) {
			out *o = &outs[n];
			/* kr_items_next clears the item; the rest here, field by
			 * field (the whole is 6 KiB a device) */
			o->result = NULL;
			o->reason[0] = o->secret[0] = '\0';
			o->code = KR_OK;
			o->from = o->to = KR_NSTATES;
			o->profile_id = 0;
			o->keep = 0;
			e = kr_items_next(it, &o->item, &more);
			n += more && !kr_failed(&e);
		}
		if (!kr_failed(&e) && n > 0)
			e = run_chunk(r, a, outs, n, cb, arg, sum);
		seen += n;
		if (a->progress)
			fprintf(stderr, "\rkeyrite: registry %s: %ld devices ",
				kr_reg_cmd_name(a->cmd), seen);
	}
	if (a->progress)
		fputc('\n', stderr);
	free(outs);
	kr_items_close(it);
	return e;
}

/* ---- show and list ------------------------------------------------------------------ */

/* An ASP sees of a device's history what concerns its own registration
 * and the device itself, not another ASP's registration of it. */
typedef struct seen_by {
	const char *asp;
	kr_audit_cb cb;
	void *arg;
} seen_by;

static KR_MUST_USE kr_err history_of(const kr_audit_entry *e, void *arg)
{
	seen_by *s = arg;
	kr_detail *d = malloc(sizeof *d);
	KR_ENSURE(d, KR_EINTERNAL, "out of memory");
	kr_detail_parse(e->detail, d);
	int theirs = kr_detail_has(d, KR_D_ASP) && strcmp(d->str[KR_D_ASP], s->asp) != 0;
	free(d);
	return theirs ? kr_ok() : s->cb(e, s->arg);
}

KR_MUST_USE kr_err kr_registry_show(kr_registry *r, const char *device, kr_reg_record *rec,
				    kr_audit_cb history, void *arg)
{
	kr_reg_view *v = calloc(1, sizeof *v);
	KR_ENSURE(v, KR_EINTERNAL, "out of memory");
	char why[KR_ERR_MSG];
	kr_code code = KR_OK;
	kr_err e = kr_reg_view_decide(r, KR_CMD_SHOW, device, NULL, v, why, sizeof why, &code);
	if (!kr_failed(&e) && code != KR_OK)
		e = kr_errf(code, "%s: %s", device, why);
	if (!kr_failed(&e))
		*rec = v->rec;
	free(v);
	KR_TRY(e);
	if (!history)
		return kr_ok();
	seen_by by = {r->as->name, history, arg};
	if (r->as->kind == KR_ACCOUNT_ASP)
		return kr_store_device_history(r->store, device, history_of, &by);
	return kr_store_device_history(r->store, device, history, arg);
}

typedef struct list_filter {
	const char *asp; /* only this ASP's registrations (its own, or gaining) */
	kr_reg_state state;
	kr_reg_row_cb cb;
	void *arg;
	char last[80]; /* the last device read */
	long n;        /* devices read */
} list_filter;

/* A device's rows: one per registration the account may see, or the
 * device alone when it has none. */
static KR_MUST_USE kr_err rows_of(const kr_reg_record *rec, void *arg)
{
	list_filter *f = arg;
	kr_copy(f->last, sizeof f->last, rec->d.id);
	f->n++;
	for (int i = 0; i < (rec->nr ? rec->nr : 1); i++) {
		const kr_registration *g = rec->nr ? &rec->r[i] : NULL;
		if (g && f->asp && strcmp(g->asp, f->asp) != 0 && strcmp(g->gaining, f->asp) != 0)
			continue;
		if (f->state != KR_NSTATES && kr_registry_state_of(&rec->d, g) != f->state)
			continue;
		KR_TRY(f->cb(&rec->d, g, f->arg));
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_list(kr_registry *r, const kr_reg_filter *f, kr_reg_state state,
				    kr_reg_row_cb cb, void *arg, char next[80])
{
	kr_reg_filter mine = *f;
	/* the store pages by state too, so a page holds its size of them; the
	 * rows are filtered again below, as the account sees them */
	mine.state = state != KR_NSTATES ? kr_reg_state_name(state) : NULL;
	switch (r->as->kind) {
	case KR_ACCOUNT_OPERATOR:
		break;
	case KR_ACCOUNT_ASP:
		mine.asp = r->as->name;
		break;
	case KR_ACCOUNT_OWNER:
		mine.owner = r->as->name;
		break;
	case KR_ACCOUNT_MNO:
		mine.mno = r->as->name;
		break;
	}
	/* an account asking for another's devices gets none of them */
	if ((f->asp && mine.asp != f->asp && strcmp(f->asp, mine.asp) != 0) ||
	    (f->owner && mine.owner != f->owner && strcmp(f->owner, mine.owner) != 0) ||
	    (f->mno && mine.mno != f->mno && strcmp(f->mno, mine.mno) != 0))
		return kr_errf(KR_EDENIED, "list: %s may list only its own devices", r->as->name);
	/* an ASP sees its own registration of a device, not another ASP's */
	list_filter lf = {mine.asp, state, cb, arg, "", 0};
	KR_TRY(kr_store_registry_list(r->store, &mine, rows_of, &lf));
	if (next)
		kr_copy(next, 80, f->limit > 0 && lf.n == f->limit ? lf.last : "");
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_rows(kr_registry *r, const kr_reg_record *rec, kr_reg_row_cb cb,
				    void *arg)
{
	list_filter lf = {
		r->as->kind == KR_ACCOUNT_ASP ? r->as->name : NULL, KR_NSTATES, cb, arg, "", 0};
	return rows_of(rec, &lf);
}
