#include "issue.h"
#include "csr.h"
#include "leaf.h"
#include "requests.h"
#include "serial.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/json.h"
#include "../util/parallel.h"
#include "../util/text.h"

#include <openssl/pem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS KR_PARALLEL_MAX
#define CHUNKS 4       /* in the pipeline at once */
#define FIRST_CHUNK 64 /* requests in the first chunk, at most */

enum state { R_NEW, R_REJECTED, R_ALREADY, R_RESERVED, R_ISSUED, R_FAILED };
static const char *const state_names[] = {"new",      "rejected", "already-issued",
					  "reserved", "issued",   "failed"};

typedef struct req {
	kr_input in;
	kr_csr csr;
	enum state state;
	char reason[KR_ERR_MSG];
	kr_code code; /* rejected: the kind of its reason */
	char name[256];
	const char *dns[KR_CSR_MAX_NAMES];
	int ndns;
	int64_t profile_id;
	uint8_t serial[20];
	size_t serial_len;
	ASN1_INTEGER *serial_int;
	uint8_t *der; /* OPENSSL_malloc'd */
	int der_len;
	uint8_t tbs_sha256[32];
	char *file; /* the output file's path, once written */
} req;

/* A chunk of requests, handled together: one transaction to reserve, one
 * to record. */
typedef struct chunk {
	req *reqs;
	int n;
	int flushed;    /* the reservations of reqs[0..flushed) are in the store */
	kr_err written; /* what writing its files came to */
} chunk;

typedef struct batch {
	kr_store *store;
	kr_authority *ca;
	const kr_profile *p;
	const kr_issue_opts *o;
	kr_issue_summary *sum;
	const kr_leaf *leaf; /* the authority's */
	KR_VALIDITY *validity;
	int64_t batch_id;
	int workers;
	kr_hsm_pool *sessions; /* one per worker */
	kr_csr_ctx *parsers[MAX_WORKERS];
	/* One chunk is signed while the one before is recorded, the next
	 * parsed and reserved, and the files of the one before those
	 * written (run_chunks). */
	chunk chunks[CHUNKS];
	int ramp; /* the size of the next chunk read, up to --chunk */
	long seen;
} batch;

/* ---- a parallel for over the chunk ---------------------------------------------- */

typedef struct over_chunk {
	batch *b;
	chunk *c;
	void (*fn)(batch *b, req *r, int worker);
} over_chunk;

static void on_req(void *arg, int i, int worker)
{
	over_chunk *o = arg;
	o->fn(o->b, &o->c->reqs[i], worker);
}

/* Runs fn on every request of the chunk; worker w signs on session w. */
static void parallel(batch *b, chunk *c, void (*fn)(batch *b, req *r, int worker))
{
	over_chunk o = {b, c, fn};
	kr_parallel_for(c->n, b->workers, on_req, &o);
}

/* ---- per request ------------------------------------------------------------------ */

static void reject_as(req *r, kr_code code, const char *why)
{
	r->state = R_REJECTED;
	r->code = code ? code : KR_EINPUT;
	snprintf(r->reason, sizeof r->reason, "%s", why);
}

static void reject(req *r, const char *why) { reject_as(r, KR_EINPUT, why); }

/* The profile's verdict on the request's identity, then the issuing CA's
 * name constraints on the names it yields. */
static void check_identity(const kr_profile *p, const kr_leaf *leaf, req *r)
{
	const kr_csr *c = &r->csr;
	kr_request_names names = {c->cn,     c->dns,
				  c->ndns,   c->other,
				  c->nother, r->in.from_manifest ? r->in.device_id : NULL};
	char id[sizeof r->in.device_id];
	kr_err e = kr_profile_identity(p, &names, id, sizeof id, r->name, sizeof r->name);
	if (kr_failed(&e))
		return reject(r, e.msg);
	if (p->identity == KR_ID_DEVICE) {
		memcpy(r->in.device_id, id, sizeof id);
		return; /* the name needs the profile id; admit() checks it */
	}
	for (int i = 0; i < c->ndns && p->identity == KR_ID_DNS; i++) {
		e = kr_leaf_check_name(leaf, c->dns[i]);
		if (kr_failed(&e)) {
			char why[KR_ERR_MSG];
			snprintf(why, sizeof why, "SAN not permitted: DNS:%.80s (%.600s)",
				 c->dns[i], e.msg);
			return reject(r, why);
		}
		r->dns[i] = c->dns[i];
	}
	r->ndns = p->identity == KR_ID_DNS ? c->ndns : 0;
}

static void stage_parse(batch *b, req *r, int worker)
{
	if (r->in.error[0])
		return reject_as(r, r->in.error_code, r->in.error);
	kr_err e =
		r->in.proven
			? kr_csr_parse_proven(b->parsers[worker], r->in.der, r->in.der_len, &r->csr)
			: kr_csr_parse(b->parsers[worker], r->in.der, r->in.der_len, &r->csr);
	if (kr_failed(&e))
		return reject(r, e.msg);
	e = kr_profile_key_check(b->p, r->csr.key_type);
	if (kr_failed(&e))
		return reject(r, e.msg);
	check_identity(b->p, b->leaf, r);
}

static void stage_sign(batch *b, req *r, int worker)
{
	if (r->state != R_RESERVED)
		return;
	kr_leaf_req lr = {&r->csr, r->name, r->dns, r->ndns, r->serial_int, b->validity};
	KR_AUTO(uint8_t) tbs = NULL;
	int tbslen = 0;
	uint8_t sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	kr_err e = kr_leaf_tbs(b->leaf, &lr, &tbs, &tbslen);
	if (!kr_failed(&e))
		e = kr_sha256(tbs, (size_t)tbslen, r->tbs_sha256);
	if (!kr_failed(&e))
		e = kr_signing_sign(&b->ca->signing, kr_hsm_pool_session(b->sessions, worker), tbs,
				    (size_t)tbslen, sig, &siglen);
	if (!kr_failed(&e))
		e = kr_leaf_finish(b->leaf, tbs, tbslen, sig, siglen, &r->der, &r->der_len);
	if (kr_failed(&e)) {
		r->state = R_FAILED;
		snprintf(r->reason, sizeof r->reason, "%s", e.msg);
		return;
	}
	r->state = R_ISSUED;
}

/* ---- the chunk, in the main thread ------------------------------------------------ */

/* ---- requests that an earlier one of the chunk matches ---------------------- */

/* The same CSR (a duplicate), the same device (one adds it, the rest find
 * it known): found by sorting the chunk's requests on the key, earliest
 * first among equals, for a chunk may hold 100,000 of them. */
typedef int (*req_key_cmp)(const req *x, const req *y);

static int csr_cmp(const req *x, const req *y) { return memcmp(x->csr.sha256, y->csr.sha256, 32); }

static int device_cmp(const req *x, const req *y)
{
	return strcmp(x->in.device_id, y->in.device_id);
}

/* A request of the chunk, as sorted, and the key it is sorted on. */
typedef struct placed {
	const req *r;
} placed;

typedef struct sort_key {
	req_key_cmp cmp;
} sort_key;

static int by_key_then_place(const void *a, const void *b, void *arg)
{
	const req *x = ((const placed *)a)->r, *y = ((const placed *)b)->r;
	int d = ((const sort_key *)arg)->cmp(x, y);
	return d ? d : (x > y) - (x < y);
}

/* later[i] = 1 for each request i of the chunk for which in_set holds and an
 * earlier one in_set has the same key. */
static KR_MUST_USE kr_err later_of(const chunk *c, int (*in_set)(const req *r), req_key_cmp key,
				   uint8_t *later)
{
	placed *v = calloc((size_t)c->n + 1, sizeof *v);
	KR_ENSURE(v, KR_EINTERNAL, "out of memory");
	size_t n = 0;
	for (int i = 0; i < c->n; i++) {
		later[i] = 0;
		if (in_set(&c->reqs[i]))
			v[n++].r = &c->reqs[i];
	}
	sort_key k = {key};
	qsort_r(v, n, sizeof *v, by_key_then_place, &k);
	for (size_t i = 1; i < n; i++)
		if (key(v[i - 1].r, v[i].r) == 0)
			later[v[i].r - c->reqs] = 1;
	free(v);
	return kr_ok();
}

static int new_request(const req *r) { return r->state == R_NEW; }

static int new_manifest_request(const req *r) { return r->state == R_NEW && r->in.from_manifest; }

/* Reserved by another run that has not ended: another node's batch now
 * (its reservation serializes with ours), or that node's killed run, whose
 * rows its own next run retires (keyrite-ca(5) node). Nothing is issued
 * twice; the request is refused until then. */
static void busy(req *r, const kr_prior *prior)
{
	char why[160];
	snprintf(why, sizeof why,
		 "being issued by node %d (batch %lld), or left by its killed run: run again "
		 "once that node's batch has ended",
		 prior->node, (long long)prior->batch);
	reject(r, why);
}

/* A request the store has seen: report the certificate it got. */
static void already(req *r, const kr_prior *prior)
{
	r->state = R_ALREADY;
	r->der = OPENSSL_memdup(prior->der, prior->der_len);
	r->der_len = (int)prior->der_len;
	memcpy(r->serial, prior->serial, prior->serial_len);
	r->serial_len = prior->serial_len;
	snprintf(r->name, sizeof r->name, "%s", prior->subject);
}

/* A device the store knows: a manifest row keeps its model (a manifest
 * that says otherwise is refused, for a device does not change model) and
 * gives it the manifest's version, audited. A bare CSR's device must be
 * known already. */
static KR_MUST_USE kr_err known_device(batch *b, req *r)
{
	char model[sizeof r->in.model], version[sizeof r->in.version];
	int known = 0;
	KR_TRY(kr_store_device(b->store, r->in.device_id, &known, model, sizeof model, version,
			       sizeof version));
	if (!r->in.from_manifest) {
		if (!known)
			reject(r, "unknown device: not registered in the store (issue it from a "
				  "manifest first)");
		return kr_ok();
	}
	if (strcmp(model, r->in.model) != 0) {
		char why[KR_ERR_MSG];
		snprintf(why, sizeof why,
			 "device %s is recorded as model '%s', the manifest says '%s' (a "
			 "manifest does not change a device's model)",
			 r->in.device_id, model, r->in.model);
		reject(r, why);
		return kr_ok();
	}
	return strcmp(version, r->in.version) == 0
		       ? kr_ok()
		       : kr_store_set_device_version(b->store, r->in.device_id, version,
						     r->in.version);
}

/* The chunk's manifest devices: the new ones added in statements of many
 * rows (most are new), the others looked up and compared one by one. */
static KR_MUST_USE kr_err register_devices(batch *b, chunk *c)
{
	kr_device *d = calloc((size_t)c->n + 1, sizeof *d);
	int *who = calloc((size_t)c->n + 1, sizeof *who),
	    *added = calloc((size_t)c->n + 1, sizeof *added);
	uint8_t *known = calloc((size_t)c->n + 1, 1); /* an earlier request adds it */
	kr_err e = d && who && added && known ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e))
		e = later_of(c, new_manifest_request, device_cmp, known);
	size_t n = 0;
	for (int i = 0; !kr_failed(&e) && i < c->n; i++) {
		req *r = &c->reqs[i];
		if (new_manifest_request(r) && !known[i]) {
			d[n] = (kr_device){r->in.device_id, r->in.model, r->in.version};
			who[n++] = i;
		}
	}
	if (!kr_failed(&e))
		e = kr_store_add_devices(b->store, d, n, added);
	size_t k = 0;
	for (int i = 0; !kr_failed(&e) && i < c->n; i++) {
		req *r = &c->reqs[i];
		int is_new = k < n && who[k] == i && added[k];
		if (k < n && who[k] == i)
			k++;
		if (r->state == R_NEW && !is_new)
			e = known_device(b, r);
	}
	free(d);
	free(who);
	free(added);
	free(known);
	return e;
}

static KR_MUST_USE kr_err reserve(batch *b, req *r, const uint8_t *rnd);
static KR_MUST_USE kr_err store_reserved(batch *b, chunk *c, int upto);

/* The gate decides instead of the store's record of CSRs. */
static KR_MUST_USE kr_err gated(batch *b, chunk *c, req *r, const uint8_t *rnd)
{
	const kr_issue_gate *g = b->o->gate;
	kr_gate_verdict v = KR_GATE_REFUSE;
	char why[KR_ERR_MSG] = "";
	kr_code code = KR_EINPUT;
	/* the registry decides on what the store holds: the chunk's earlier
	 * reservations first */
	KR_TRY(store_reserved(b, c, (int)(r - c->reqs)));
	KR_TRY(g->admit(g->arg, b->store, &r->in, &v, &r->profile_id, why, sizeof why, &code));
	if (v == KR_GATE_REFUSE)
		reject_as(r, code, why[0] ? why : "refused");
	else if (v == KR_GATE_ALREADY)
		r->state = R_ALREADY;
	else
		return reserve(b, r, rnd);
	return kr_ok();
}

/* A new profile id for each request of a device profile that the store has
 * not seen, drawn for the chunk at once (one statement on PostgreSQL's
 * sequence, not one a request); 0 for the others. */
static KR_MUST_USE kr_err profile_ids_for(batch *b, const kr_prior *prior, size_t n, int64_t *ids)
{
	if (b->p->identity != KR_ID_DEVICE)
		return kr_ok();
	size_t fresh = 0;
	for (size_t k = 0; k < n; k++)
		fresh += !prior[k].found;
	int64_t *drawn = calloc(fresh + 1, sizeof *drawn);
	KR_ENSURE(drawn, KR_EINTERNAL, "out of memory");
	kr_err e = kr_store_take_profile_ids(b->store, fresh, drawn);
	for (size_t k = 0, d = 0; !kr_failed(&e) && k < n; k++)
		if (!prior[k].found)
			ids[k] = drawn[d++];
	free(drawn);
	return e;
}

/* A request's fate from what the store has of its CSR; reserves a new one.
 * profile_id: a device's new one (profile_ids_for), or 0. */
static KR_MUST_USE kr_err decide(batch *b, req *r, const kr_prior *prior, int64_t profile_id,
				 const uint8_t *rnd)
{
	if (prior->found) {
		if (prior->batch == b->batch_id)
			reject(r, "duplicate: the same CSR appears earlier in this batch");
		else if (!prior->der && strcmp(prior->status, "pending") == 0)
			busy(r, prior);
		else if (!prior->der)
			reject(r, "already issued, but the store holds no certificate for it");
		else
			already(r, prior);
		return kr_ok();
	}
	r->profile_id = profile_id;
	return reserve(b, r, rnd);
}

/* Decides the fate of each of the chunk's acceptable requests against the
 * store, and reserves: the registry's gate one by one, as it asks;
 * otherwise the chunk's devices first (a manifest row's model and version
 * count even for a request issued before), then what the store has of all
 * the chunk's CSRs, in statements of many rows. */
static KR_MUST_USE kr_err admit_chunk(batch *b, chunk *c, const uint8_t *rnd)
{
	KR_AUTO(uint8_t) dup = OPENSSL_malloc((size_t)c->n + 1);
	KR_ENSURE(dup, KR_EINTERNAL, "out of memory");
	KR_TRY(later_of(c, new_request, csr_cmp, dup));
	for (int i = 0; i < c->n; i++)
		if (dup[i])
			reject(&c->reqs[i],
			       "duplicate: the same CSR appears earlier in this batch");
	if (b->o->gate) {
		for (int i = 0; i < c->n; i++)
			if (c->reqs[i].state == R_NEW)
				KR_TRY(gated(b, c, &c->reqs[i],
					     rnd + (size_t)KR_SERIAL_LEN * (size_t)i));
		return kr_ok();
	}
	if (b->p->identity == KR_ID_DEVICE)
		KR_TRY(register_devices(b, c));
	uint8_t(*csr)[32] = calloc((size_t)c->n + 1, sizeof *csr);
	int *who = calloc((size_t)c->n + 1, sizeof *who);
	kr_prior *prior = calloc((size_t)c->n + 1, sizeof *prior);
	int64_t *ids = calloc((size_t)c->n + 1, sizeof *ids);
	kr_err e = csr && who && prior && ids ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	size_t n = 0;
	for (int i = 0; !kr_failed(&e) && i < c->n; i++)
		if (c->reqs[i].state == R_NEW) {
			memcpy(csr[n], c->reqs[i].csr.sha256, 32);
			who[n++] = i;
		}
	if (!kr_failed(&e))
		e = kr_store_priors(b->store, b->ca->id, b->p->name, (const uint8_t(*)[32])csr, n,
				    prior);
	if (!kr_failed(&e))
		e = profile_ids_for(b, prior, n, ids);
	for (size_t k = 0; !kr_failed(&e) && k < n; k++)
		e = decide(b, &c->reqs[who[k]], &prior[k], ids[k],
			   rnd + (size_t)KR_SERIAL_LEN * (size_t)who[k]);
	for (size_t k = 0; prior && k < n; k++)
		kr_prior_clear(&prior[k]);
	free(csr);
	free(who);
	free(prior);
	free(ids);
	return e;
}

/* Names a device's certificate after its profile id, and reserves its
 * serial. */
static KR_MUST_USE kr_err reserve(batch *b, req *r, const uint8_t *rnd)
{
	if (b->p->identity == KR_ID_DEVICE) {
		kr_err e = kr_profile_device_name(b->p, r->in.device_id, r->profile_id, r->name,
						  sizeof r->name);
		if (!kr_failed(&e))
			e = kr_leaf_check_name(b->leaf, r->name);
		if (kr_failed(&e)) {
			reject(r, e.msg);
			return kr_ok();
		}
		r->dns[0] = r->name;
		r->ndns = 1;
	}
	/* The token's random octets, drawn for the whole chunk at once. */
	memcpy(r->serial, rnd, KR_SERIAL_LEN);
	r->serial_len = KR_SERIAL_LEN;
	kr_serial_make_node(r->serial, kr_store_node(b->store));
	KR_TRY(kr_serial_asn1(r->serial, r->serial_len, &r->serial_int));
	r->state = R_RESERVED; /* in the store at store_reserved, before the commit */
	return kr_ok();
}

/* The reservations of the chunk's requests before upto that are not in
 * the store yet, written in one go (the statements of many rows cost a
 * round trip each on PostgreSQL, not one per request). */
static KR_MUST_USE kr_err store_reserved(batch *b, chunk *c, int upto)
{
	kr_cert_row *rows = calloc((size_t)(upto - c->flushed) + 1, sizeof *rows);
	KR_ENSURE(rows, KR_EINTERNAL, "out of memory");
	size_t n = 0;
	for (int i = c->flushed; i < upto; i++) {
		req *r = &c->reqs[i];
		if (r->state != R_RESERVED)
			continue;
		kr_cert_row *row = &rows[n++];
		*row = (kr_cert_row){
			.ca = b->ca->id,
			.batch = b->batch_id,
			.profile_id = r->profile_id,
			.serial = r->serial,
			.serial_len = 16,
			.profile = b->p->name,
			.device_id = b->p->identity == KR_ID_DEVICE ? r->in.device_id : NULL,
			.input = r->in.where,
		};
		memcpy(row->csr_sha256, r->csr.sha256, 32);
	}
	kr_err e = kr_store_reserve(b->store, rows, n);
	free(rows);
	if (!kr_failed(&e))
		c->flushed = upto;
	return e;
}

static KR_MUST_USE kr_err reserve_all(batch *b, chunk *c)
{
	KR_AUTO(uint8_t) rnd = OPENSSL_malloc((size_t)c->n * KR_SERIAL_LEN);
	KR_ENSURE(rnd, KR_EINTERNAL, "out of memory");
	KR_TRY(kr_hsm_random(b->ca->hsm, rnd, (size_t)c->n * KR_SERIAL_LEN));
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, b->store));
	KR_TRY(admit_chunk(b, c, rnd));
	for (int i = 0; i < c->n; i++) {
		req *r = &c->reqs[i];
		if (r->state == R_REJECTED)
			KR_TRY(kr_store_reject(b->store, b->batch_id, r->in.where,
					       r->in.der ? r->csr.sha256 : NULL, r->reason));
	}
	KR_TRY(store_reserved(b, c, c->n));
	return kr_txn_commit(&t);
}

/* "name1,name2,..." */
static char *names_of(const req *r)
{
	size_t n = 1;
	for (int i = 0; i < r->ndns; i++)
		n += strlen(r->dns[i]) + 1;
	char *s = calloc(1, n);
	size_t o = 0;
	for (int i = 0; s && i < r->ndns; i++)
		o += (size_t)snprintf(s + o, n - o, "%s%s", i ? "," : "", r->dns[i]);
	return s;
}

/* The chunk's issued certificates as the store's rows, *n of them, their
 * names in sans[] (malloc'd). */
static KR_MUST_USE kr_err rows_of(const batch *b, chunk *c, kr_cert_row *rows, char **sans,
				  size_t *n)
{
	struct tm tm;
	ASN1_TIME_to_tm(b->validity->not_before, &tm);
	int64_t nb = (int64_t)timegm(&tm);
	ASN1_TIME_to_tm(b->validity->not_after, &tm);
	int64_t na = (int64_t)timegm(&tm);
	*n = 0;
	for (int i = 0; i < c->n; i++) {
		req *r = &c->reqs[i];
		if (r->state != R_ISSUED)
			continue;
		sans[*n] = names_of(r);
		KR_ENSURE(sans[*n], KR_EINTERNAL, "out of memory");
		kr_cert_row *row = &rows[(*n)++];
		*row = (kr_cert_row){
			.ca = b->ca->id,
			.serial = r->serial,
			.serial_len = 16,
			.profile = b->p->name,
			.subject = r->name,
			.sans = sans[*n - 1],
			.not_before = nb,
			.not_after = na,
			.der = r->der,
			.der_len = (size_t)r->der_len,
		};
		memcpy(row->spki_sha256, r->csr.spki_sha256, 32);
		memcpy(row->csr_sha256, r->csr.sha256, 32);
		memcpy(row->tbs_sha256, r->tbs_sha256, 32);
	}
	return kr_ok();
}

/* The chunk's certificates recorded, then what the gate (the registry)
 * records of each, in one transaction. */
static KR_MUST_USE kr_err record(batch *b, chunk *c)
{
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, b->store));
	size_t n = 0;
	kr_cert_row *rows = calloc((size_t)c->n + 1, sizeof *rows);
	char **sans = calloc((size_t)c->n + 1, sizeof *sans);
	kr_err e = rows && sans ? rows_of(b, c, rows, sans, &n)
				: kr_errf(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e))
		e = kr_store_complete(b->store, rows, n);
	for (int i = 0; i < c->n && !kr_failed(&e) && b->o->gate; i++) {
		req *r = &c->reqs[i];
		if (r->state == R_ISSUED)
			e = b->o->gate->issued(b->o->gate->arg, b->store, &r->in, r->profile_id,
					       b->ca->id, r->serial, r->serial_len);
	}
	for (int i = 0; sans && i < c->n; i++)
		free(sans[i]);
	free(sans);
	free(rows);
	KR_TRY(e);
	return kr_txn_commit(&t);
}

/* Device certificates are named by their DNS name, others by serial. */
static KR_MUST_USE kr_err file_name(const batch *b, req *r)
{
	char serial[41];
	kr_hex_upper(r->serial, r->serial_len, serial);
	const char *base = b->p->identity == KR_ID_DEVICE && r->name[0] ? r->name : serial;
	if (asprintf(&r->file, "%s/%s.pem", b->o->out_dir, base) < 0) {
		r->file = NULL;
		return kr_errf(KR_EINTERNAL, "out of memory");
	}
	return kr_ok();
}

/* The request's certificate into its file: written, or (a re-run) found
 * there already with the same bytes. *wrote: 1 if written now. */
static KR_MUST_USE kr_err write_file(const batch *b, req *r, int *wrote)
{
	KR_TRY(file_name(b, r));
	KR_AUTO(BIO) pem = BIO_new(BIO_s_mem());
	KR_OSSL(pem && PEM_write_bio(pem, PEM_STRING_X509, "", r->der, r->der_len) > 0,
		KR_EINTERNAL, "encoding a certificate");
	char *data = NULL;
	long len = BIO_get_mem_data(pem, &data);
	kr_err e = kr_fs_write_new_nosync(r->file, data, (size_t)len, 0644);
	*wrote = !kr_failed(&e);
	if (e.code != KR_EEXIST)
		return e;
	int same = 0;
	KR_TRY(kr_fs_same(r->file, data, (size_t)len, &same));
	KR_ENSURE(same, KR_EEXIST,
		  "%s: exists with other content; keyrite never overwrites an output (the "
		  "certificate is in the store)",
		  r->file);
	return kr_ok();
}

/* Certificates reach files only after they are committed to the store. A
 * request whose file could not be written is reported without one (its
 * name may be another file's). */
static KR_MUST_USE kr_err write_files(batch *b, chunk *c)
{
	int wrote = 0;
	for (int i = 0; i < c->n; i++) {
		req *r = &c->reqs[i];
		if (r->state != R_ISSUED && r->state != R_ALREADY)
			continue;
		int now = 0;
		kr_err e = write_file(b, r, &now);
		if (kr_failed(&e)) {
			free(r->file);
			r->file = NULL;
			return e;
		}
		wrote += now;
	}
	return wrote ? kr_fs_sync(b->o->out_dir) : kr_ok();
}

/* ---- reporting ------------------------------------------------------------------- */

void kr_issue_summary_add(kr_issue_summary *s, const char *reason)
{
	char key[80];
	size_t n = strcspn(reason, "(");
	const char *colon = strstr(reason, ": ");
	if (colon && (size_t)(colon - reason) < n)
		n = (size_t)(colon - reason);
	while (n > 0 && reason[n - 1] == ' ')
		n--;
	snprintf(key, sizeof key, "%.*s", (int)(n < 79 ? n : 79), reason);
	if (s->nreasons >= KR_MAX_REASONS - 1) {
		int known = 0;
		for (int i = 0; i < s->nreasons; i++)
			known |= !strcmp(s->reasons[i].reason, key);
		if (!known)
			snprintf(key, sizeof key, "other reasons");
	}
	for (int i = 0; i < s->nreasons; i++)
		if (!strcmp(s->reasons[i].reason, key)) {
			s->reasons[i].n++;
			return;
		}
	snprintf(s->reasons[s->nreasons].reason, sizeof s->reasons[0].reason, "%s", key);
	s->reasons[s->nreasons++].n = 1;
}

static void report(batch *b, chunk *c)
{
	const kr_issue_opts *o = b->o;
	for (int i = 0; i < c->n; i++) {
		req *r = &c->reqs[i];
		if (r->state == R_REJECTED) {
			b->sum->rejected++;
			kr_issue_summary_add(b->sum, r->reason);
			if (o->report)
				fprintf(o->report, "%s: rejected: %s\n", r->in.where, r->reason);
		} else if (r->state == R_ALREADY) {
			b->sum->already++;
		} else if (r->state == R_ISSUED) {
			b->sum->issued++;
		}
		if (o->gate && o->gate->outcome &&
		    (r->state == R_REJECTED || r->state == R_ALREADY || r->state == R_ISSUED))
			o->gate->outcome(o->gate->arg, &r->in, state_names[r->state],
					 r->state == R_REJECTED ? r->reason : NULL, r->code,
					 r->profile_id, r->state == R_ISSUED ? r->der : NULL,
					 r->state == R_ISSUED ? (size_t)r->der_len : 0);
		if (!o->json || r->state == R_RESERVED || r->state == R_FAILED)
			continue;
		char serial[41] = "";
		if (r->serial_len)
			kr_hex_upper(r->serial, r->serial_len, serial);
		fputs("{\"input\":", o->json);
		kr_json_str(o->json, r->in.where);
		fputs(",\"id\":", o->json);
		kr_json_str(o->json, r->in.device_id[0] ? r->in.device_id : NULL);
		fputs(",\"name\":", o->json);
		kr_json_str(o->json, r->name[0] ? r->name : NULL);
		fputs(",\"serial\":", o->json);
		kr_json_str(o->json, serial[0] ? serial : NULL);
		fprintf(o->json, ",\"status\":\"%s\",\"reason\":", state_names[r->state]);
		kr_json_str(o->json, r->state == R_REJECTED ? r->reason : NULL);
		fputs(",\"file\":", o->json);
		kr_json_str(o->json, r->file);
		fputs("}\n", o->json);
	}
	if (o->json)
		fflush(o->json);
	if (o->progress)
		fprintf(stderr,
			"\rkeyrite: %ld requests: %ld issued, %ld already issued, %ld "
			"rejected ",
			b->seen, b->sum->issued, b->sum->already, b->sum->rejected);
}

static void clear_chunk(chunk *c)
{
	for (int i = 0; i < c->n; i++) {
		req *r = &c->reqs[i];
		kr_input_clear(&r->in);
		kr_csr_clear(&r->csr);
		ASN1_INTEGER_free(r->serial_int);
		OPENSSL_free(r->der);
		free(r->file);
		memset(r, 0, sizeof *r);
	}
	c->n = c->flushed = 0;
}

static KR_MUST_USE kr_err first_failure(const chunk *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->reqs[i].state == R_FAILED)
			return kr_errf(KR_EHSM, "%s: %s", c->reqs[i].in.where, c->reqs[i].reason);
	return kr_ok();
}

/* Reads the next chunk. Here, in the main thread: a registry's reader
 * consults the store. */
static KR_MUST_USE kr_err read_chunk(batch *b, kr_reader *rd, chunk *c, int size, int *more)
{
	/* The first chunks are smaller (FIRST_CHUNK, twice that, ... up to
	 * size): the token starts signing at once, and a batch of one chunk's
	 * size is still a pipeline. */
	int want = b->ramp < size ? b->ramp : size;
	b->ramp = want < size / 2 ? 2 * want : size;
	for (c->n = 0; c->n < want && *more;) {
		KR_TRY(kr_reader_next(rd, &c->reqs[c->n].in, more));
		if (*more)
			c->n++;
	}
	b->seen += c->n;
	return kr_ok();
}

static void parse_all(batch *b, chunk *c) { parallel(b, c, stage_parse); }

/* Reads the next chunk, parses its requests (workers) and reserves. */
static KR_MUST_USE kr_err fill(batch *b, kr_reader *rd, chunk *c, int size, int *more)
{
	KR_TRY(read_chunk(b, rd, c, size, more));
	if (c->n == 0)
		return kr_ok();
	parse_all(b, c);
	return reserve_all(b, c);
}

/* ---- the pipeline ------------------------------------------------------------------ */

/* A step on a chunk that runs on a thread of its own (or here, when no
 * thread can be started). */
typedef struct step {
	void (*fn)(batch *b, chunk *c);
	batch *b;
	chunk *c;
	pthread_t t;
	int threaded, running;
} step;

static void *step_main(void *arg)
{
	step *s = arg;
	s->fn(s->b, s->c);
	return NULL;
}

static void step_start(step *s, void (*fn)(batch *b, chunk *c), batch *b, chunk *c)
{
	*s = (step){.fn = fn, .b = b, .c = c, .running = 1};
	s->threaded = pthread_create(&s->t, NULL, step_main, s) == 0;
	if (!s->threaded)
		fn(b, c);
}

static void step_wait(step *s)
{
	if (s->running && s->threaded)
		pthread_join(s->t, NULL);
	s->running = 0;
}

static void sign_all(batch *b, chunk *c) { parallel(b, c, stage_sign); }

static void write_all(batch *b, chunk *c)
{
	c->written = b->o->out_dir ? write_files(b, c) : kr_ok();
}

/* The chunk whose files were being written: reported once they are (its
 * certificates are recorded, so they are reported even if writing failed;
 * those without a file have none in the report), in input order, then
 * emptied for the next read. */
static KR_MUST_USE kr_err written(batch *b, step *writing)
{
	if (!writing->running)
		return kr_ok();
	step_wait(writing);
	chunk *c = writing->c;
	kr_err e = c->written;
	report(b, c);
	clear_chunk(c);
	return e;
}

/* A pipeline of four chunks: while one is on the HSM, the one signed before
 * it is recorded as the one after it is parsed (workers), then reserved,
 * and the files of the one recorded before are written. The store's work
 * thus waits for the parsing only where the parsing takes longer. The
 * order that makes a batch crash-safe holds for each chunk: reserved and
 * committed, then signed, then recorded and committed, then written. */
static KR_MUST_USE kr_err run_chunks(batch *b, kr_reader *rd, int size)
{
	chunk *cur = &b->chunks[0], *next = &b->chunks[1], *after = &b->chunks[2];
	chunk *spare = &b->chunks[3];
	step signing = {0}, parsing = {0}, writing = {0};
	int more = 1;
	KR_TRY(fill(b, rd, cur, size, &more));
	if (cur->n > 0)
		step_start(&signing, sign_all, b, cur);
	kr_err e = more ? fill(b, rd, next, size, &more) : kr_ok();
	while (cur->n > 0) {
		step_wait(&signing);
		int go = !kr_failed(&e) && next->n > 0;
		if (go)
			step_start(&signing, sign_all, b, next);
		kr_err a = go && more ? read_chunk(b, rd, after, size, &more) : kr_ok();
		if (!kr_failed(&a) && after->n > 0)
			step_start(&parsing, parse_all, b, after);
		kr_err f = record(b, cur);
		if (!kr_failed(&f))
			f = first_failure(cur);
		kr_err w = written(b, &writing);
		if (!kr_failed(&f) && !kr_failed(&w))
			step_start(&writing, write_all, b, cur);
		step_wait(&parsing);
		if (kr_failed(&f) || kr_failed(&w) || kr_failed(&e)) {
			/* What the next chunk signed is not recorded, so it is not
			 * reported as issued: its serials stay reserved, to be
			 * retired by the next run. The one after it was only
			 * read: the next run reads it again. */
			step_wait(&signing);
			for (int i = 0; i < next->n; i++)
				if (next->reqs[i].state == R_ISSUED)
					next->reqs[i].state = R_RESERVED;
			kr_err last = written(b, &writing);
			if (!kr_failed(&f) && kr_failed(&w))
				report(b, cur); /* recorded; its files were not written */
			report(b, next);
			return kr_failed(&f) ? f : kr_failed(&w) ? w : kr_failed(&e) ? e : last;
		}
		e = !kr_failed(&a) && after->n > 0 ? reserve_all(b, after) : a;
		chunk *emptied = spare;
		spare = cur;
		cur = next;
		next = after;
		after = emptied;
	}
	return written(b, &writing);
}

static KR_MUST_USE kr_err write_chain(batch *b)
{
	char path[PATH_MAX], *pem = NULL;
	size_t len = 0;
	KR_TRY(kr_fs_join(b->o->out_dir, "chain.pem", path, sizeof path));
	KR_TRY(kr_authority_chain_pem(b->ca, &pem, &len));
	kr_err e = kr_ok();
	if (access(path, F_OK) == 0) {
		int same = 0;
		e = kr_fs_same(path, pem, len, &same);
		if (!kr_failed(&e) && !same)
			e = kr_errf(KR_EEXIST, "%s: exists with another chain; use another --out",
				    path);
	} else {
		e = kr_fs_write_new(path, pem, len, 0644);
	}
	free(pem);
	return e;
}

static KR_MUST_USE kr_err setup(batch *b, kr_config *cfg)
{
	KR_TRY(kr_authority_leaf(b->ca, b->p, kr_config_nconf(cfg), &b->leaf));
	KR_TRY(kr_leaf_validity(b->leaf, time(NULL), &b->validity));
	if (b->o->out_dir) {
		int stale = 0;
		KR_TRY(kr_fs_clean_temps(b->o->out_dir, &stale));
		if (stale && b->o->report)
			fprintf(b->o->report,
				"keyrite: removed %d unfinished file(s) of an interrupted run\n",
				stale);
		KR_TRY(write_chain(b));
	}
	KR_TRY(kr_hsm_pool_open(b->ca->hsm, b->ca->conf->workers, &b->sessions));
	b->workers = kr_hsm_pool_size(b->sessions);
	for (int w = 0; w < b->workers; w++)
		KR_TRY(kr_csr_ctx_new(&b->parsers[w]));
	long abandoned = 0;
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, b->store));
	KR_TRY(kr_store_abandon_pending(b->store, b->ca->id, &abandoned));
	KR_TRY(kr_store_start_batch(b->store, b->ca->id, b->p->name, &b->batch_id));
	if (abandoned && b->o->report)
		fprintf(b->o->report,
			"keyrite: %ld serial(s) reserved by an interrupted run were retired\n",
			abandoned);
	return kr_txn_commit(&t);
}

/* The checkpoint and the batch's counts, even after a failure: whatever was
 * committed is covered. */
static KR_MUST_USE kr_err finish(batch *b)
{
	kr_batch_counts c = {b->sum->issued, b->sum->rejected, b->sum->already};
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, b->store));
	KR_TRY(kr_store_finish_batch(b->store, b->batch_id, &c));
	KR_TRY(kr_authority_checkpoint(b->ca, b->store));
	return kr_txn_commit(&t);
}

KR_MUST_USE kr_err kr_issue_batch(kr_config *cfg, kr_store *store, kr_authority *ca,
				  const kr_profile *p, char *const *inputs, int ninputs,
				  const kr_issue_opts *o, kr_issue_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	kr_reader *rd = NULL;
	KR_TRY(kr_reader_open(inputs, ninputs, &rd));
	kr_err e = kr_issue_batch_read(cfg, store, ca, p, rd, o, sum);
	kr_reader_close(rd);
	return e;
}

KR_MUST_USE kr_err kr_issue_batch_read(kr_config *cfg, kr_store *store, kr_authority *ca,
				       const kr_profile *p, kr_reader *rd, const kr_issue_opts *o,
				       kr_issue_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	int size = o->chunk > 0 ? o->chunk : 1000;
	batch b = {.store = store, .ca = ca, .p = p, .o = o, .sum = sum, .ramp = FIRST_CHUNK};
	int have = 1;
	for (int i = 0; i < CHUNKS; i++)
		have &= (b.chunks[i].reqs = calloc((size_t)size, sizeof(req))) != NULL;
	if (!have) {
		for (int i = 0; i < CHUNKS; i++)
			free(b.chunks[i].reqs);
		return kr_errf(KR_EINTERNAL, "out of memory");
	}
	kr_err e = setup(&b, cfg);
	int started = !kr_failed(&e);
	sum->started = started;
	if (started)
		e = run_chunks(&b, rd, size);
	if (started) {
		kr_err f = finish(&b);
		if (!kr_failed(&e))
			e = f;
	}
	if (o->progress)
		fputc('\n', stderr);
	for (int i = 0; i < CHUNKS; i++)
		clear_chunk(&b.chunks[i]);
	for (int w = 0; w < b.workers; w++)
		kr_csr_ctx_free(b.parsers[w]);
	kr_hsm_pool_close(b.sessions);
	ASN1_item_free((ASN1_VALUE *)b.validity, ASN1_ITEM_rptr(KR_VALIDITY));
	for (int i = 0; i < CHUNKS; i++)
		free(b.chunks[i].reqs);
	return e;
}
