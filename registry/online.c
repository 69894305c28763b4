/* What the online service (keyrite serve) asks of the registry besides
 * its commands: who a client certificate is, the acting account, a
 * device's current certificate, and each account's poll queue. The
 * service authenticates; the registry decides what the account may do. */
#include "internal.h"
#include "authcode.h"
#include "../ca/issue.h"
#include "../store/service.h"
#include "../util/text.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

KR_MUST_USE kr_err kr_registry_act_as(kr_registry *r, const char *account)
{
	const kr_account_conf *a = NULL;
	KR_TRY(kr_config_account(r->conf, account, &a));
	r->as = a;
	return kr_ok();
}

const kr_authority *kr_registry_authority(const kr_registry *r) { return &r->ca; }

KR_MUST_USE kr_err kr_registry_checkpoint(kr_registry *r)
{
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, r->store));
	KR_TRY(kr_authority_checkpoint(&r->ca, r->store));
	return kr_txn_commit(&t);
}

typedef struct found_der {
	uint8_t *der;
	size_t len;
} found_der;

static KR_MUST_USE kr_err keep_der(const kr_cert_info *c, void *arg)
{
	found_der *f = arg;
	free(f->der);
	f->der = malloc(c->der_len);
	KR_ENSURE(f->der, KR_EINTERNAL, "out of memory");
	memcpy(f->der, c->der, c->der_len);
	f->len = c->der_len;
	return kr_ok();
}

static KR_MUST_USE kr_err cert_der(kr_registry *r, const uint8_t *serial, size_t len, found_der *f)
{
	kr_cert_filter filter = {.serial = serial, .serial_len = len, .status = "valid"};
	return kr_store_certs(r->store, &filter, keep_der, f);
}

KR_MUST_USE kr_err kr_registry_current_cert(kr_registry *r, const char *device, uint8_t **der,
					    size_t *len)
{
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	kr_err e = kr_registry_show(r, device, rec, NULL, NULL);
	found_der f = {0};
	for (int i = 0; !kr_failed(&e) && !f.der && i < rec->nr; i++) {
		const kr_registration *g = &rec->r[i];
		int mine = r->as->kind != KR_ACCOUNT_ASP || !strcmp(g->asp, r->as->name);
		if (mine && !strcmp(g->state, "active") && !strcmp(g->cert_status, "valid"))
			e = cert_der(r, g->serial, g->serial_len, &f);
	}
	free(rec);
	KR_TRY(e);
	KR_ENSURE(f.der, KR_EINPUT, "%s: no valid certificate", device);
	*der = f.der;
	*len = f.len;
	return kr_ok();
}

/* The confirmation of a rekey (RFC 4210 section 5.3.18: a CMP kur's
 * certConf): the certificate it replaced is revoked as superseded. */
static KR_MUST_USE kr_err supersede(kr_registry *r, kr_reg_view *v, const char *device,
				    const uint8_t *serial, size_t len, long *n)
{
	char why[KR_ERR_MSG];
	kr_code code = KR_OK;
	KR_TRY(kr_reg_view_decide(r, KR_CMD_REKEY, device, NULL, v, why, sizeof why, &code));
	KR_ENSURE(code == KR_OK, code, "%s", why);
	kr_registration *g = &v->rec.r[v->gi];
	KR_ENSURE(!strcmp(g->cert_status, "valid") && g->serial_len == len &&
			  !memcmp(g->serial, serial, len),
		  KR_EINPUT, "%s: that certificate is not the device's current one", device);
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, r->store));
	KR_TRY(kr_store_supersede(r->store, device, g->asp, g->ca, g->serial, g->serial_len,
				  v->v.revoke_reason, (int64_t)time(NULL), n));
	if (*n == 0)
		return kr_ok(); /* confirmed already */
	KR_TRY(kr_reg_log(r, device, KR_CMD_REKEY, g->asp, KR_ST_ACTIVE, KR_ST_ACTIVE,
			  g->profile_id, "confirmed: the certificate it replaced is revoked"));
	KR_TRY(kr_authority_checkpoint(&r->ca, r->store));
	return kr_txn_commit(&t);
}

KR_MUST_USE kr_err kr_registry_supersede(kr_registry *r, const char *device, const uint8_t *serial,
					 size_t len, long *n)
{
	kr_reg_view *v = malloc(sizeof *v);
	KR_ENSURE(v, KR_EINTERNAL, "out of memory");
	kr_err e = supersede(r, v, device, serial, len, n);
	free(v);
	return e;
}

typedef struct valid_of {
	const uint8_t *der;
	size_t len;
	char *device;
	size_t n;
} valid_of;

static KR_MUST_USE kr_err same_cert(const kr_cert_info *c, void *arg)
{
	valid_of *v = arg;
	if (c->der_len == v->len && !memcmp(c->der, v->der, v->len))
		kr_copy(v->device, v->n, c->device_id ? c->device_id : "");
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_device_of_valid(kr_registry *r, const uint8_t *der, size_t len,
					       char *device, size_t n)
{
	device[0] = '\0';
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	const ASN1_INTEGER *sn = cert ? X509_get0_serialNumber(cert) : NULL;
	kr_err e = sn && sn->length > 0 && sn->length <= 20
			   ? kr_ok()
			   : kr_errf(KR_EAUTH, "not a certificate with a serial of 1 to 20 octets");
	valid_of v = {der, len, device, n};
	kr_cert_filter f = {.ca = r->ca.conf->name, .status = "valid"};
	if (!kr_failed(&e)) {
		f.serial = sn->data;
		f.serial_len = (size_t)sn->length;
		e = kr_store_certs(r->store, &f, same_cert, &v);
	}
	X509_free(cert);
	KR_TRY(e);
	KR_ENSURE(device[0], KR_EAUTH, "not a valid device certificate of %s", r->ca.conf->name);
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_enrollment_secret(kr_registry *r, const char *device,
						 char text[KR_CODE_TEXT + 1])
{
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	int found = 0;
	kr_err e = kr_store_registry_device(r->store, device, rec, &found);
	const kr_reg_device *d = &rec->d;
	int mine = r->as->kind == KR_ACCOUNT_OPERATOR ||
		   (r->as->kind == KR_ACCOUNT_MNO && !strcmp(d->mno, r->as->name));
	int64_t gen = d->enroll_gen;
	if (!kr_failed(&e) &&
	    !(r->conf->enrollment_key[0] && found && d->listed && !d->deleted && gen > 0 && mine))
		e = kr_errf(KR_EAUTH, "device %s has no enrollment secret that %s may use", device,
			    r->as->name);
	free(rec);
	KR_TRY(e);
	return kr_enrollment_secret(r->ca.hsm, r->conf->enrollment_key, device, gen, text);
}

KR_MUST_USE kr_err kr_registry_stats(kr_registry *r, kr_reg_stat_cb cb, void *arg)
{
	KR_ENSURE(r->as->kind == KR_ACCOUNT_OPERATOR, KR_EDENIED,
		  "the registry's figures are the operator's (as %s)", r->as->name);
	return kr_store_registry_stats(r->store, cb, arg);
}

void kr_registry_account(const kr_registry *r, const char **name, const char **kind)
{
	static const char *const kinds[] = {
		[KR_ACCOUNT_OPERATOR] = "operator",
		[KR_ACCOUNT_OWNER] = "owner",
		[KR_ACCOUNT_ASP] = "asp",
		[KR_ACCOUNT_MNO] = "mno",
	};
	*name = r->as->name;
	*kind = (unsigned)r->as->kind < sizeof kinds / sizeof *kinds ? kinds[r->as->kind] : "?";
}

typedef struct certs_of {
	const kr_registration *g;
	kr_reg_cert_cb cb;
	void *arg;
} certs_of;

static KR_MUST_USE kr_err cert_of(const kr_cert_info *c, void *arg)
{
	certs_of *x = arg;
	return x->cb(x->g, c, x->arg);
}

typedef struct reg_certs {
	kr_registry *r;
	kr_reg_cert_cb cb;
	void *arg;
} reg_certs;

static KR_MUST_USE kr_err certs_row(const kr_reg_device *d, const kr_registration *g, void *arg)
{
	(void)d;
	reg_certs *x = arg;
	if (!g || !g->cert_status[0])
		return kr_ok();
	certs_of c = {g, x->cb, x->arg};
	kr_cert_filter f = {
		.serial = g->serial, .serial_len = g->serial_len, .ca = x->r->ca.conf->name};
	return kr_store_certs(x->r->store, &f, cert_of, &c);
}

KR_MUST_USE kr_err kr_registry_certs(kr_registry *r, const char *device, kr_reg_cert_cb cb,
				     void *arg)
{
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	kr_err e = kr_registry_show(r, device, rec, NULL, NULL);
	reg_certs x = {r, cb, arg};
	if (!kr_failed(&e))
		e = kr_registry_rows(r, rec, certs_row, &x);
	free(rec);
	return e;
}

/* ---- client certificates -------------------------------------------------------- */

typedef struct client_req {
	kr_registry *r;
	const char *account;
	const uint8_t *csr;
	size_t csr_len;
	int given;
	found_der cert;
	char why[KR_ERR_MSG];
	kr_code code;
} client_req;

static KR_MUST_USE kr_err client_source(void *arg, kr_input *in, int *more)
{
	client_req *c = arg;
	*more = !c->given;
	if (c->given++)
		return kr_ok();
	snprintf(in->where, sizeof in->where, "client %s", c->account);
	in->der = malloc(c->csr_len);
	KR_ENSURE(in->der, KR_EINTERNAL, "out of memory");
	memcpy(in->der, c->csr, c->csr_len);
	in->der_len = c->csr_len;
	return kr_ok();
}

static KR_MUST_USE kr_err client_admit(void *arg, kr_store *s, const kr_input *in,
				       kr_gate_verdict *v, int64_t *profile_id, char *why,
				       size_t whysz, kr_code *code)
{
	(void)arg, (void)s, (void)in, (void)why, (void)whysz, (void)code;
	*v = KR_GATE_ISSUE;
	*profile_id = 0;
	return kr_ok();
}

static KR_MUST_USE kr_err client_issued(void *arg, kr_store *s, const kr_input *in,
					int64_t profile_id, int64_t ca, const uint8_t *serial,
					size_t len)
{
	(void)in, (void)profile_id;
	client_req *c = arg;
	return kr_store_bind_client(s, ca, serial, len, c->account);
}

static void client_outcome(void *arg, const kr_input *in, const char *status, const char *reason,
			   kr_code code, int64_t profile_id, const uint8_t *der, size_t der_len)
{
	(void)in, (void)profile_id;
	client_req *c = arg;
	if (!strcmp(status, "issued") && der && (c->cert.der = malloc(der_len))) {
		memcpy(c->cert.der, der, der_len);
		c->cert.len = der_len;
		return;
	}
	snprintf(c->why, sizeof c->why, "%s", reason ? reason : status);
	c->code = code ? code : KR_EINPUT;
}

KR_MUST_USE kr_err kr_registry_issue_client(kr_registry *r, const char *account, const uint8_t *csr,
					    size_t csr_len, uint8_t **der, size_t *len)
{
	KR_ENSURE(r->as->kind == KR_ACCOUNT_OPERATOR, KR_EDENIED,
		  "client certificates are the operator's to issue (as %s)", r->as->name);
	KR_ENSURE(r->conf->client_profile[0], KR_EINPUT,
		  "[registry] has no client_profile (keyrite-ca(5))");
	const kr_account_conf *a = NULL;
	KR_TRY(kr_config_account(r->conf, account, &a));
	const kr_profile *p = NULL;
	KR_TRY(kr_config_profile(r->cfg, r->ca.conf, r->conf->client_profile, &p));
	client_req c = {.r = r, .account = a->name, .csr = csr, .csr_len = csr_len};
	kr_issue_gate gate = {client_admit, client_issued, client_outcome, &c};
	kr_issue_opts o = {.gate = &gate};
	kr_issue_summary sum;
	kr_reader *rd = NULL;
	KR_TRY(kr_reader_open_source(client_source, &c, &rd));
	kr_err e = kr_issue_batch_read(r->cfg, r->store, &r->ca, p, rd, &o, &sum);
	kr_reader_close(rd);
	if (!kr_failed(&e) && !c.cert.der)
		e = kr_errf(c.code ? c.code : KR_EINPUT, "client %s: %s", account,
			    c.why[0] ? c.why : "not issued");
	if (kr_failed(&e)) {
		free(c.cert.der);
		return e;
	}
	*der = c.cert.der;
	*len = c.cert.len;
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_client_account(kr_registry *r, X509 *cert, char account[64])
{
	KR_ENSURE(X509_check_issued(r->ca.cert, cert) == X509_V_OK, KR_EAUTH,
		  "not issued by the registry's CA");
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	uint8_t serial[20];
	KR_ENSURE(sn->length > 0 && sn->length <= 20, KR_EAUTH, "a serial of %d octets",
		  sn->length);
	memcpy(serial, sn->data, (size_t)sn->length);
	char status[16];
	KR_TRY(kr_store_client(r->store, r->ca.id, serial, (size_t)sn->length, account, status));
	KR_ENSURE(status[0], KR_EAUTH, "a certificate the store does not hold");
	KR_ENSURE(!strcmp(status, "valid"), KR_EAUTH, "the certificate is %s", status);
	KR_ENSURE(account[0], KR_EAUTH, "the certificate is bound to no account");
	const kr_account_conf *a = NULL;
	kr_err e = kr_config_account(r->conf, account, &a);
	KR_ENSURE(!kr_failed(&e), KR_EAUTH, "account %s is no longer configured", account);
	return kr_ok();
}

/* ---- the poll queue ----------------------------------------------------------------- */

typedef struct poll_ctx {
	kr_reg_poll_cb cb;
	void *arg;
	long count;
} poll_ctx;

static KR_MUST_USE kr_err poll_one(const kr_poll_msg *m, void *arg)
{
	poll_ctx *p = arg;
	return p->cb(m, p->count, p->arg);
}

KR_MUST_USE kr_err kr_registry_poll(kr_registry *r, kr_reg_poll_cb cb, void *arg, long *count)
{
	poll_ctx p = {cb, arg, 0};
	KR_TRY(kr_store_poll_first(r->store, r->as->name, &p.count, poll_one, &p));
	*count = p.count;
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_poll_ack(kr_registry *r, int64_t id)
{
	int found = 0;
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, r->store));
	KR_TRY(kr_store_poll_ack(r->store, r->as->name, id, &found));
	KR_ENSURE(found, KR_EINPUT, "%s has no poll message %lld", r->as->name, (long long)id);
	return kr_txn_commit(&t);
}

/* Who hears of a change: the events another account's action brings to a
 * device's owner, its MNO and its ASPs (the sponsoring, gaining and, for
 * a transfer, losing one). Imports, registrations, activations, codes and
 * locks are the actor's own business and queue nothing. */
static int is_news(kr_reg_cmd cmd)
{
	switch (cmd) {
	case KR_CMD_TRANSFER_REQUEST:
	case KR_CMD_TRANSFER_APPROVE:
	case KR_CMD_TRANSFER_REJECT:
	case KR_CMD_TRANSFER_CANCEL:
	case KR_CMD_HOLD:
	case KR_CMD_UNHOLD:
	case KR_CMD_DEACTIVATE:
	case KR_CMD_DELETE:
	case KR_CMD_RESTORE:
	case KR_CMD_PURGE:
	case KR_CMD_SWITCH_MNO:
	case KR_CMD_RESET:
	case KR_CMD_REKEY:
		return 1;
	default:
		return 0;
	}
}

static KR_MUST_USE kr_err tell(kr_registry *r, char told[][64], int *n, const char *to,
			       const char *device, const char *event, const char *detail)
{
	if (!to || !to[0] || !strcmp(to, r->as->name) || *n == 2 * KR_REG_MAX_ASPS + 3)
		return kr_ok();
	for (int i = 0; i < *n; i++)
		if (!strcmp(told[i], to))
			return kr_ok();
	kr_copy(told[(*n)++], 64, to);
	return kr_store_poll_add(r->store, to, device, event, detail);
}

KR_MUST_USE kr_err kr_reg_notify(kr_registry *r, const char *device, kr_reg_cmd cmd,
				 const char *also, const char *detail)
{
	if (!is_news(cmd))
		return kr_ok();
	kr_reg_record *rec = malloc(sizeof *rec);
	KR_ENSURE(rec, KR_EINTERNAL, "out of memory");
	int found = 0;
	kr_err e = kr_store_registry_device(r->store, device, rec, &found);
	char told[2 * KR_REG_MAX_ASPS + 3][64];
	int n = 0;
	const char *event = kr_reg_cmd_name(cmd);
	if (!kr_failed(&e))
		e = tell(r, told, &n, also, device, event, detail);
	if (!kr_failed(&e) && found) {
		e = tell(r, told, &n, rec->d.owner, device, event, detail);
		if (!kr_failed(&e))
			e = tell(r, told, &n, rec->d.mno, device, event, detail);
		for (int i = 0; !kr_failed(&e) && i < rec->nr; i++) {
			e = tell(r, told, &n, rec->r[i].asp, device, event, detail);
			if (!kr_failed(&e))
				e = tell(r, told, &n, rec->r[i].gaining, device, event, detail);
		}
	}
	free(rec);
	return e;
}

typedef struct device_of {
	char *out;
	size_t n;
} device_of;

static KR_MUST_USE kr_err keep_device(const kr_cert_info *c, void *arg)
{
	device_of *d = arg;
	kr_copy(d->out, d->n, c->device_id ? c->device_id : "");
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_device_of_cert(kr_registry *r, const uint8_t *serial, size_t len,
					      char *device, size_t n)
{
	device[0] = '\0';
	device_of d = {device, n};
	kr_cert_filter f = {.serial = serial, .serial_len = len, .ca = r->ca.conf->name};
	KR_TRY(kr_store_certs(r->store, &f, keep_device, &d));
	KR_ENSURE(device[0], KR_EINPUT, "no device certificate of that serial from %s",
		  r->ca.conf->name);
	return kr_ok();
}
