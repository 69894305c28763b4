/* activate, reactivate and rekey: a profile id and a certificate for each
 * device, through batch issuance (ca/issue.h) with the registry as its
 * gate.
 *
 * Zero touch: the CSR comes from the device's MNO (--csr: a manifest of
 * device_id,model,version,csr, the key made on the eSIM), or, when none is
 * given, from the store: the CSR the device's first activation verified,
 * re-certified under the new profile id (a transfer, a reactivation, a
 * reset). A new CSR is needed only for a device that was never activated,
 * or whose key changed: a rekey, whose new certificate supersedes the
 * current one (revoked in the same transaction, or when the CMP client
 * confirms it: kr_registry_supersede). */
#include "internal.h"
#include "../ca/issue.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gate_ctx {
	kr_registry *r;
	const kr_reg_args *a;
	kr_reg_outcome_cb cb;
	void *arg;
	kr_reg_summary *sum;
	kr_items *items; /* the CSRs on record: these devices' (or a's rows) */
	int row;         /* the next of a's rows */
	kr_reg_view view;
} gate_ctx;

/* The state each of these commands starts from (rules.c). */
static kr_reg_state start_of(kr_reg_cmd cmd)
{
	return cmd == KR_CMD_ACTIVATE ? KR_ST_REGISTERED
	       : cmd == KR_CMD_REKEY  ? KR_ST_ACTIVE
				      : KR_ST_DEACTIVATED;
}

/* A request done already: an active device's activation (reactivation),
 * when the account could have made it; a rekey with the CSR its current
 * certificate came from (a client's retry gets that certificate again). */
static int done_already(const kr_reg_view *view, kr_reg_cmd cmd, kr_code code, const kr_input *in)
{
	if (cmd == KR_CMD_REKEY)
		return code == KR_OK && in->der_len == view->rec.d.csr_len &&
		       !memcmp(in->der, view->rec.d.csr, in->der_len);
	return code == KR_EDENIED && view->state == KR_ST_ACTIVE &&
	       kr_reg_decide(cmd, view->role, start_of(cmd), view->flags & ~KR_FL_HOLD).allowed;
}

/* The registry's decision. */
static KR_MUST_USE kr_err decide(gate_ctx *g, const kr_input *in, kr_gate_verdict *v, char *why,
				 size_t whysz, kr_code *refusal)
{
	kr_reg_view *view = &g->view;
	kr_code code = KR_OK;
	int settled = 0;
	KR_TRY(kr_reg_settle(g->r, in->device_id, &settled));
	KR_TRY(kr_reg_view_decide(g->r, g->a->cmd, in->device_id, g->a->asp, view, why, whysz,
				  &code));
	if (done_already(view, g->a->cmd, code, in)) {
		*v = KR_GATE_ALREADY;
		return kr_ok();
	}
	if (code == KR_OK && in->from_manifest && in->model[0] &&
	    strcmp(in->model, view->rec.d.model) != 0) {
		snprintf(why, whysz, "device %s is listed as model '%s', the manifest says '%s'",
			 in->device_id, view->rec.d.model, in->model);
		code = KR_EINPUT;
	}
	*v = code == KR_OK ? KR_GATE_ISSUE : KR_GATE_REFUSE;
	*refusal = code;
	return kr_ok();
}

static KR_MUST_USE kr_err admit(void *arg, kr_store *s, const kr_input *in, kr_gate_verdict *v,
				int64_t *profile_id, char *why, size_t whysz, kr_code *code)
{
	gate_ctx *g = arg;
	KR_TRY(decide(g, in, v, why, whysz, code));
	if (*v != KR_GATE_ISSUE)
		return kr_ok();
	kr_registration *reg = &g->view.rec.r[g->view.gi];
	/* a profile id reserved by a killed run, whose certificate was never
	 * recorded, is used again; a revoked profile's is not */
	if (reg->profile_id == 0 || reg->cert_status[0]) {
		KR_TRY(kr_store_take_profile_id(s, &reg->profile_id));
		KR_TRY(kr_store_save_registration(s, in->device_id, reg, NULL));
	}
	*profile_id = reg->profile_id;
	return kr_ok();
}

static KR_MUST_USE kr_err issued(void *arg, kr_store *s, const kr_input *in, int64_t profile_id,
				 int64_t ca, const uint8_t *serial, size_t len)
{
	gate_ctx *g = arg;
	kr_reg_cmd cmd = g->a->cmd;
	char asp[64];
	KR_TRY(kr_store_profile_issued(s, in->device_id, profile_id, ca, serial, len, in->der,
				       in->der_len, asp));
	if (cmd == KR_CMD_REKEY && !g->a->confirm_later) {
		long n = 0;
		int reason = kr_reg_decide(cmd, KR_ROLE_OPERATOR, KR_ST_ACTIVE, 0).revoke_reason;
		KR_TRY(kr_store_supersede(s, in->device_id, asp, ca, serial, len, reason,
					  (int64_t)time(NULL), &n));
	}
	/* admit() let it through from the one state the command starts in */
	return kr_reg_log(g->r, in->device_id, cmd, asp, start_of(cmd), KR_ST_ACTIVE, profile_id,
			  cmd == KR_CMD_REKEY && g->a->confirm_later
				  ? "the certificate it replaces stays valid until confirmed"
				  : NULL);
}

static void outcome(void *arg, const kr_input *in, const char *status, const char *reason,
		    kr_code code, int64_t profile_id, const uint8_t *der, size_t der_len)
{
	gate_ctx *g = arg;
	kr_reg_outcome o = {.where = in->where,
			    .device = in->device_id,
			    .reason = reason,
			    .cert = der,
			    .cert_len = der_len};
	if (!strcmp(status, "issued")) {
		o.result = g->a->cmd == KR_CMD_ACTIVATE ? "activated"
			   : g->a->cmd == KR_CMD_REKEY  ? "rekeyed"
							: "reactivated";
		o.to = "active";
		o.profile_id = profile_id;
		g->sum->done++;
	} else if (!strcmp(status, "already-issued")) {
		o.result = "unchanged";
		o.reason = g->a->cmd == KR_CMD_REKEY ? "already rekeyed with this request"
						     : "already active";
		o.to = "active";
		g->sum->unchanged++;
	} else {
		o.result = "refused";
		o.code = code;
		if (g->sum->refused++ == 0)
			g->sum->first_refusal = o.code;
	}
	if (g->cb)
		g->cb(&o, g->arg);
}

/* The devices named, each with the CSR on record. The decision is
 * admit()'s; a device without a CSR on record is told why here, as the
 * rules would tell the account (which may not learn whether it exists). */
static KR_MUST_USE kr_err on_record(void *arg, kr_input *in, int *more)
{
	gate_ctx *g = arg;
	kr_reg_item item;
	KR_TRY(kr_items_next(g->items, &item, more));
	if (!*more)
		return kr_ok();
	snprintf(in->where, sizeof in->where, "%s", item.where);
	snprintf(in->device_id, sizeof in->device_id, "%s", item.device);
	in->from_manifest = 1; /* the id is the registry's, not the CSR's */
	kr_code code = KR_OK;
	const kr_reg_row *row = g->a->rows ? &g->a->rows[g->row++] : NULL;
	if (item.error[0] || !item.device[0]) {
		snprintf(in->error, sizeof in->error, "%s",
			 item.error[0] ? item.error : "no device id");
		return kr_ok();
	}
	uint8_t csr[KR_REG_CSR_MAX];
	size_t len = 0;
	kr_err e = kr_reg_device_id_check(item.device);
	if (row && row->csr) { /* the MNO's request, relayed online */
		if (row->csr_len > KR_REG_CSR_MAX || row->csr_len == 0) {
			snprintf(in->error, sizeof in->error, "%s: a CSR of %zu octets (1 to %d)",
				 item.device, row->csr_len, KR_REG_CSR_MAX);
			return kr_ok();
		}
		memcpy(csr, row->csr, row->csr_len);
		len = row->csr_len;
		in->proven = row->proven;
	} else if (!kr_failed(&e) && g->a->cmd == KR_CMD_REKEY) {
		snprintf(in->error, sizeof in->error,
			 "%s: a rekey needs the device's new CSR (--csr MANIFEST)", item.device);
		return kr_ok();
	} else if (!kr_failed(&e)) {
		KR_TRY(kr_store_device_csr(g->r->store, item.device, csr, sizeof csr, &len));
		in->proven = 1; /* what a first activation took, in whichever form */
	}
	if (len) {
		in->der = malloc(len);
		KR_ENSURE(in->der, KR_EINTERNAL, "out of memory");
		memcpy(in->der, csr, len);
		in->der_len = len;
		return kr_ok();
	}
	KR_TRY(kr_reg_view_decide(g->r, g->a->cmd, item.device, g->a->asp, &g->view, in->error,
				  sizeof in->error, &code));
	if (code == KR_OK || g->view.state == KR_ST_ACTIVE) {
		snprintf(in->error, sizeof in->error,
			 "%s: no CSR on record: activate it from its MNO's manifest (--csr FILE)",
			 item.device);
		code = KR_EINPUT;
	}
	in->error_code = code;
	return kr_ok();
}

KR_MUST_USE kr_err kr_reg_activate(kr_registry *r, const kr_reg_args *a, char *const *items,
				   int nitems, kr_reg_outcome_cb cb, void *arg, kr_reg_summary *sum)
{
	KR_ENSURE(a->ncsrs == 0 || nitems == 0, KR_EUSAGE,
		  "activate takes devices (their CSRs on record) or --csr manifests, not both");
	gate_ctx *g = calloc(1, sizeof *g);
	KR_ENSURE(g, KR_EINTERNAL, "out of memory");
	*g = (gate_ctx){.r = r, .a = a, .cb = cb, .arg = arg, .sum = sum};
	kr_issue_gate gate = {admit, issued, outcome, g};
	kr_issue_opts o = {.progress = a->progress, .chunk = a->chunk, .gate = &gate};
	kr_issue_summary isum;
	kr_reader *rd = NULL;
	kr_err e = a->ncsrs ? kr_reader_open(a->csrs, a->ncsrs, &rd)
			    : kr_items_of(a, items, nitems, &g->items);
	if (!kr_failed(&e) && !a->ncsrs)
		e = kr_reader_open_source(on_record, g, &rd);
	if (!kr_failed(&e))
		e = kr_issue_batch_read(r->cfg, r->store, &r->ca, r->profile, rd, &o, &isum);
	kr_reader_close(rd);
	kr_items_close(g->items);
	free(g);
	return e;
}
