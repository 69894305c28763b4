/* keyrite audit verify: the hash chain, the checkpoints the CA signed over
 * it, and the store's state set against the one the log describes. */
#include "audit.h"
#include "detail.h"
#include "log.h"
#include "../crypto/sig.h"
#include "../util/cleanup.h"
#include "../util/hash.h"
#include "../util/mem.h"
#include "../util/text.h"

#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A checkpoint, copied from the store: checked against the chain as the
 * walk passes its entry, its signature afterwards. */
typedef struct cp {
	int64_t seq;
	int node;
	int64_t node_seq; /* its node's own number for the entry, once passed */
	uint8_t head[32];
	int matched; /* the chain's head at seq is the one signed */
	char ca[64];
	uint8_t *sig, *ca_der, *signer_der;
	size_t sig_len, ca_der_len, signer_der_len;
} cp;

/* A node's chain as the walk has it so far (log.h). */
typedef struct chain {
	int node;
	uint8_t prev[32];      /* its last entry's hash */
	int64_t last, covered; /* its last entry; the last one a checkpoint of its covers */
} chain;

typedef struct walk {
	kr_store *store;
	FILE *report;
	unsigned flags;
	int64_t expect;
	/* the entry passed last: its node, its number there, its hash */
	int last_node;
	int64_t last_node_seq;
	uint8_t last_hash[32];
	long entries, problems;
	cp *cps;
	size_t ncps, cap, next; /* next: the first checkpoint not yet passed */
	chain *chains;
	size_t nchains, chains_cap;
} walk;

static void problem(walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(walk *w, const char *fmt, ...)
{
	w->problems++;
	if (!w->report)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("audit: ", w->report);
	vfprintf(w->report, fmt, ap);
	fputc('\n', w->report);
	va_end(ap);
}

static void serial_hex(const uint8_t *serial, size_t len, char out[41])
{
	kr_hex_upper(serial, len < 20 ? len : 20, out);
}

/* ---- the checkpoints ----------------------------------------------------------- */

static uint8_t *copy(const void *p, size_t n)
{
	uint8_t *q = n ? malloc(n) : NULL;
	if (q)
		memcpy(q, p, n);
	return q;
}

static KR_MUST_USE kr_err load_checkpoint(const kr_checkpoint *c, void *arg)
{
	walk *w = arg;
	KR_TRY(kr_grow((void **)&w->cps, &w->cap, w->ncps + 1, sizeof *w->cps));
	cp *k = &w->cps[w->ncps++];
	*k = (cp){
		.seq = c->seq, .node = c->node, .sig_len = c->sig_len, .ca_der_len = c->ca_der_len};
	snprintf(k->ca, sizeof k->ca, "%s", c->ca);
	if (c->head)
		memcpy(k->head, c->head, 32);
	else
		k->seq = -1; /* a head that is not 32 octets matches nothing */
	k->sig = copy(c->sig, c->sig_len);
	k->ca_der = copy(c->ca_der, c->ca_der_len);
	if (c->signer_der && c->signer_der_len) {
		k->signer_der = copy(c->signer_der, c->signer_der_len);
		k->signer_der_len = c->signer_der_len;
	}
	KR_ENSURE((k->sig || !c->sig_len) && (k->ca_der || !c->ca_der_len), KR_EINTERNAL,
		  "out of memory");
	return kr_ok();
}

static void free_checkpoints(walk *w)
{
	for (size_t i = 0; i < w->ncps; i++) {
		free(w->cps[i].sig);
		free(w->cps[i].ca_der);
		free(w->cps[i].signer_der);
	}
	free(w->cps);
}

/* The checkpoints at this entry (ordered by seq) see its node's chain head:
 * the entry. */
static void pass_checkpoints(walk *w, int64_t seq)
{
	while (w->next < w->ncps && w->cps[w->next].seq <= seq) {
		cp *k = &w->cps[w->next++];
		k->matched = k->seq == seq && k->node == w->last_node &&
			     memcmp(k->head, w->last_hash, 32) == 0;
		k->node_seq = w->last_node_seq;
	}
}

/* A checkpoint counts if the chain had its head at its entry and the CA (or
 * a firmware signer the CA certified) signed that head. */
static void check_checkpoint(walk *w, const cp *c)
{
	if (!c->matched) {
		problem(w,
			"checkpoint at entry %lld: the chain's head there is not the one the CA "
			"signed",
			(long long)c->seq);
		return;
	}
	const unsigned char *p = c->ca_der;
	KR_AUTO(X509) ca = d2i_X509(NULL, &p, (long)c->ca_der_len);
	p = c->signer_der;
	KR_AUTO(X509) signer = c->signer_der ? d2i_X509(NULL, &p, (long)c->signer_der_len) : NULL;
	if (c->signer_der && (!ca || !signer || X509_verify(signer, X509_get0_pubkey(ca)) != 1)) {
		ERR_clear_error();
		problem(w, "checkpoint at entry %lld: its signer is not certified by CA '%s'",
			(long long)c->seq, c->ca);
		return;
	}
	uint8_t msg[KR_CHECKPOINT_MSG_MAX];
	size_t len = 0;
	kr_checkpoint_message(c->node, c->node_seq, c->head, msg, &len);
	X509 *by = signer ? signer : ca;
	if (!by || !kr_sig_verify(X509_get0_pubkey(by), msg, len, c->sig, c->sig_len))
		problem(w, "checkpoint at entry %lld: bad signature by %s '%s'", (long long)c->seq,
			signer ? "a firmware signer under CA" : "CA", c->ca);
}

/* ---- the entries ------------------------------------------------------------------ */

static int same_serial(const kr_audit_entry *e, const kr_detail *d)
{
	size_t n = 0;
	const uint8_t *s = kr_detail_serial(d, &n);
	if (!kr_detail_has(d, KR_D_SERIAL))
		return e->serial == NULL;
	return e->serial && e->serial_len == n && memcmp(e->serial, s, n) == 0;
}

/* The columns a lookup uses must say what the hashed text says. */
static void check_columns(walk *w, const kr_audit_entry *e, const kr_detail *d)
{
	int ca_ok = kr_detail_has(d, KR_D_CA) ? e->ca == d->num[KR_D_CA] : e->ca == 0;
	int dev_ok = kr_detail_has(d, KR_D_DEVICE)
			     ? e->device && !strcmp(e->device, d->str[KR_D_DEVICE])
			     : e->device == NULL;
	if (!ca_ok || !same_serial(e, d) || !dev_ok)
		problem(w,
			"entry %lld (%s): its ca, serial or device column does not say what its "
			"detail says (edited)",
			(long long)e->seq, e->kind);
}

/* What an issue, revoke or abandon entry says of a certificate, with the
 * order the lifecycle allows: issued once, revoked only while valid. */
static KR_MUST_USE kr_err certificate_entry(walk *w, const kr_audit_entry *e, const kr_detail *d)
{
	int issue = !strcmp(e->kind, "issue"), revoke = !strcmp(e->kind, "revoke");
	int complete = kr_detail_has(d, KR_D_CA) && kr_detail_has(d, KR_D_SERIAL) &&
		       (!issue || kr_detail_has(d, KR_D_TBS)) &&
		       (!revoke || kr_detail_has(d, KR_D_REASON));
	if (!complete) {
		problem(w, "entry %lld (%s): its detail lacks a field it must have",
			(long long)e->seq, e->kind);
		return kr_ok();
	}
	kr_expect_cert c = {
		.ca = d->num[KR_D_CA],
		.status = issue    ? "valid"
			  : revoke ? "revoked"
				   : "abandoned",
		.reason = revoke ? (int)d->num[KR_D_REASON] : -1,
		.at = revoke && kr_detail_has(d, KR_D_AT) ? d->num[KR_D_AT] : -1,
		.tbs = issue ? d->bytes[KR_D_TBS] : NULL,
		.seq = e->seq,
	};
	c.serial = kr_detail_serial(d, &c.serial_len);
	char prior[16], hex[41];
	KR_TRY(kr_store_expect_cert(w->store, &c, prior));
	serial_hex(c.serial, c.serial_len, hex);
	if ((issue || !strcmp(e->kind, "abandon")) && prior[0])
		problem(w, "entry %lld (%s): serial %s of CA %lld was %s before", (long long)e->seq,
			e->kind, hex, (long long)c.ca, prior);
	if (revoke && strcmp(prior, "valid") != 0)
		problem(w, "entry %lld (revoke): serial %s of CA %lld was not a valid certificate",
			(long long)e->seq, hex, (long long)c.ca);
	return kr_ok();
}

static KR_MUST_USE kr_err crl_entry(walk *w, const kr_audit_entry *e, const kr_detail *d)
{
	if (!kr_detail_has(d, KR_D_CA) || !kr_detail_has(d, KR_D_CRL_NUMBER)) {
		problem(w, "entry %lld (crl): its detail lacks a field it must have",
			(long long)e->seq);
		return kr_ok();
	}
	int again = 0;
	KR_TRY(kr_store_expect_crl(w->store, d->num[KR_D_CA], d->num[KR_D_CRL_NUMBER],
				   kr_detail_has(d, KR_D_SHA256) ? d->bytes[KR_D_SHA256] : NULL,
				   e->seq, &again));
	if (again)
		problem(w, "entry %lld (crl): CRL %lld of CA %lld was recorded before",
			(long long)e->seq, (long long)d->num[KR_D_CRL_NUMBER],
			(long long)d->num[KR_D_CA]);
	return kr_ok();
}

/* The walk's chain of node, new if its first entry is coming. */
static KR_MUST_USE kr_err chain_of(walk *w, int node, chain **out)
{
	for (size_t i = 0; i < w->nchains; i++)
		if (w->chains[i].node == node) {
			*out = &w->chains[i];
			return kr_ok();
		}
	KR_TRY(kr_grow((void **)&w->chains, &w->chains_cap, w->nchains + 1, sizeof *w->chains));
	*out = &w->chains[w->nchains++];
	**out = (chain){.node = node};
	return kr_ok();
}

static KR_MUST_USE kr_err entry(const kr_audit_entry *e, void *arg)
{
	walk *w = arg;
	w->entries++;
	if (e->seq != w->expect)
		problem(w,
			"entry %lld: expected entry %lld here (an entry was deleted, inserted or "
			"reordered)",
			(long long)e->seq, (long long)w->expect);
	chain *c = NULL;
	KR_TRY(chain_of(w, e->node, &c));
	char in[40] = "";
	if (e->node)
		snprintf(in, sizeof in, " in node %d's chain", e->node);
	uint8_t want[32];
	if (!e->prev || memcmp(e->prev, c->prev, 32) != 0)
		problem(w, "entry %lld: does not follow the entry before it%s (chain broken)",
			(long long)e->seq, in);
	KR_TRY(kr_audit_hash(e->prev ? e->prev : c->prev, e->node, e->node_seq, e->time, e->kind,
			     e->detail, want));
	if (!e->hash || memcmp(e->hash, want, 32) != 0)
		problem(w, "entry %lld (%s): its content does not match its hash (edited)",
			(long long)e->seq, e->kind);
	memcpy(c->prev, e->hash ? e->hash : want, 32);
	c->last = e->seq;
	w->expect = e->seq + 1;
	w->last_node = e->node;
	w->last_node_seq = e->node_seq;
	memcpy(w->last_hash, c->prev, 32);
	pass_checkpoints(w, e->seq);

	kr_detail d;
	kr_detail_parse(e->detail, &d);
	check_columns(w, e, &d);
	if (!strcmp(e->kind, "issue") || !strcmp(e->kind, "revoke") || !strcmp(e->kind, "abandon"))
		return certificate_entry(w, e, &d);
	if (!strcmp(e->kind, "crl"))
		return crl_entry(w, e, &d);
	return kr_ok();
}

/* ---- the store's state ------------------------------------------------------------- */

/* SHA-256 of a certificate's TBSCertificate, the first element of its
 * SEQUENCE (RFC 5280 4.1), sliced from the DER as it is stored. */
static int tbs_sha256(const uint8_t *der, size_t len, uint8_t out[32])
{
	const unsigned char *p = der;
	long n = 0;
	int tag = 0, cls = 0;
	if (ASN1_get_object(&p, &n, &tag, &cls, (long)len) & 0x80)
		return 0;
	const unsigned char *tbs = p;
	if (ASN1_get_object(&p, &n, &tag, &cls, (long)(len - (size_t)(p - der))) & 0x80)
		return 0;
	kr_err e = kr_sha256(tbs, (size_t)(p - tbs) + (size_t)n, out);
	return !kr_failed(&e);
}

static KR_MUST_USE kr_err certificate(const kr_cert_state *c, void *arg)
{
	walk *w = arg;
	char hex[41];
	serial_hex(c->serial, c->serial_len, hex);
	const char *have = c->status, *want = c->want.status;
	if (!want) {
		if (have && strcmp(have, "pending") != 0)
			problem(w,
				"certificate %s of CA %lld has no audit entry (an entry was "
				"deleted)",
				hex, (long long)c->ca);
		return kr_ok(); /* pending: reserved by a run that has not recorded it (yet) */
	}
	if (!have) {
		problem(w,
			"certificate %s of CA %lld: the log records it (entry %lld), the store has "
			"no row for it (a row was deleted)",
			hex, (long long)c->ca,
			(long long)(c->revoke_seq ? c->revoke_seq : c->issue_seq));
		return kr_ok();
	}
	if (strcmp(have, want) != 0) {
		if (!strcmp(want, "revoked") && !strcmp(have, "valid"))
			problem(w,
				"certificate %s of CA %lld: the log revoked it (entry %lld), the "
				"store "
				"says valid (a revocation was undone)",
				hex, (long long)c->ca, (long long)c->revoke_seq);
		else
			problem(w, "certificate %s of CA %lld: the store says %s, the log says %s",
				hex, (long long)c->ca, have, want);
		return kr_ok();
	}
	if (!strcmp(want, "revoked") &&
	    (c->reason != c->want.reason || (c->want.at >= 0 && c->revoked_at != c->want.at)))
		problem(w,
			"certificate %s of CA %lld: revoked at %lld with reason %d in the store, "
			"at "
			"%lld with reason %d in the log (entry %lld)",
			hex, (long long)c->ca, (long long)c->revoked_at, c->reason,
			(long long)c->want.at, c->want.reason, (long long)c->revoke_seq);
	uint8_t tbs[32];
	if (c->want.tbs &&
	    (!c->der || !tbs_sha256(c->der, c->der_len, tbs) || memcmp(tbs, c->want.tbs, 32) != 0))
		problem(w,
			"certificate %s of CA %lld: the store's certificate is not the one issued "
			"(its to-be-signed part differs from entry %lld)",
			hex, (long long)c->ca, (long long)c->issue_seq);
	return kr_ok();
}

/* A CRL's entry, by serial, for the search. */
typedef struct listed {
	uint8_t serial[20];
	size_t len;
	int reason;
} listed;

static int by_serial(const void *a, const void *b)
{
	const listed *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->serial, y->serial, x->len);
}

/* The CRL's entries against the revocations the log had made before it. */
typedef struct listing {
	walk *w;
	const kr_crl_state *crl;
	listed *v;
	size_t n;
	long found;
} listing;

static KR_MUST_USE kr_err list_entries(X509_CRL *x, listing *l)
{
	STACK_OF(X509_REVOKED) *rs = X509_CRL_get_REVOKED(x); /* NULL for an empty CRL */
	l->n = rs ? (size_t)sk_X509_REVOKED_num(rs) : 0;
	l->v = calloc(l->n ? l->n : 1, sizeof *l->v);
	KR_ENSURE(l->v, KR_EINTERNAL, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		const X509_REVOKED *r = sk_X509_REVOKED_value(rs, (int)i);
		const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(r);
		int n = ASN1_STRING_length(sn);
		l->v[i].len = n > 0 && n <= 20 ? (size_t)n : 0;
		memcpy(l->v[i].serial, ASN1_STRING_get0_data(sn), l->v[i].len);
		ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
		l->v[i].reason = code ? (int)ASN1_ENUMERATED_get(code) : CRL_REASON_UNSPECIFIED;
		ASN1_ENUMERATED_free(code);
	}
	ERR_clear_error();
	qsort(l->v, l->n, sizeof *l->v, by_serial);
	return kr_ok();
}

static KR_MUST_USE kr_err revoked_by_then(const uint8_t *serial, size_t len, int64_t at, int reason,
					  void *arg)
{
	(void)at; /* a CRL's revocation date is the store's, checked with the certificate */
	listing *l = arg;
	char hex[41];
	serial_hex(serial, len, hex);
	listed key = {.len = len < 20 ? len : 20};
	memcpy(key.serial, serial, key.len);
	const listed *r = l->n ? bsearch(&key, l->v, l->n, sizeof *l->v, by_serial) : NULL;
	if (!r)
		problem(l->w, "CRL %lld of CA %lld omits serial %s, which the log had revoked",
			(long long)l->crl->number, (long long)l->crl->ca, hex);
	else if (r->reason != (reason == CRL_REASON_NONE ? CRL_REASON_UNSPECIFIED : reason))
		problem(l->w, "CRL %lld of CA %lld gives serial %s another reason than the log",
			(long long)l->crl->number, (long long)l->crl->ca, hex);
	l->found += r != NULL;
	return kr_ok();
}

static KR_MUST_USE kr_err crl(const kr_crl_state *c, void *arg)
{
	walk *w = arg;
	if (!c->logged) {
		problem(w, "CRL %lld of CA %lld has no audit entry (an entry was deleted)",
			(long long)c->number, (long long)c->ca);
		return kr_ok();
	}
	if (!c->der) {
		problem(w,
			"CRL %lld of CA %lld: the log records it (entry %lld), the store has no "
			"such "
			"CRL (a row was deleted)",
			(long long)c->number, (long long)c->ca, (long long)c->seq);
		return kr_ok();
	}
	uint8_t md[32];
	KR_TRY(kr_sha256(c->der, c->der_len, md));
	if (c->sha256 && memcmp(md, c->sha256, 32) != 0)
		problem(w, "CRL %lld of CA %lld is not the one entry %lld recorded (edited)",
			(long long)c->number, (long long)c->ca, (long long)c->seq);
	const unsigned char *p = c->der;
	KR_AUTO(X509_CRL) x = d2i_X509_CRL(NULL, &p, (long)c->der_len);
	if (!x) {
		ERR_clear_error();
		problem(w, "CRL %lld of CA %lld cannot be parsed", (long long)c->number,
			(long long)c->ca);
		return kr_ok();
	}
	listing l = {w, c, NULL, 0, 0};
	kr_err e = list_entries(x, &l);
	if (!kr_failed(&e))
		e = kr_store_revocations_before(w->store, c->ca, c->seq, revoked_by_then, &l);
	if (!kr_failed(&e) && (long)l.n != l.found)
		problem(w, "CRL %lld of CA %lld lists %ld certificate(s) the log had not revoked",
			(long long)c->number, (long long)c->ca, (long)l.n - l.found);
	free(l.v);
	return e;
}

/* ---- the whole ------------------------------------------------------------------------ */

/* Each chain's tail must be signed by a checkpoint of its own node. */
static void uncovered(walk *w, const chain *c)
{
	if (c->last <= c->covered)
		return;
	if (c->node == 0)
		problem(w,
			"entries %lld to %lld come after the last checkpoint: no signature covers "
			"them (a command stopped before its checkpoint; the next one that uses the "
			"CA key signs them)",
			(long long)c->covered + 1, (long long)c->last);
	else
		problem(w,
			"node %d: its entries after entry %lld, to entry %lld, come after its last "
			"checkpoint: no signature covers them (a command on that node stopped "
			"before its checkpoint; the node's next one signs them)",
			c->node, (long long)c->covered, (long long)c->last);
}

static KR_MUST_USE kr_err walk_log(kr_store *s, walk *w)
{
	KR_TRY(kr_store_checkpoints(s, load_checkpoint, w));
	KR_TRY(kr_store_expect_begin(s));
	KR_TRY(kr_store_audit_walk(s, entry, w));
	pass_checkpoints(w, INT64_MAX);
	for (size_t i = 0; i < w->ncps; i++) {
		check_checkpoint(w, &w->cps[i]);
		chain *c = NULL;
		KR_TRY(chain_of(w, w->cps[i].node, &c));
		if (w->cps[i].matched && w->cps[i].seq > c->covered)
			c->covered = w->cps[i].seq;
	}
	for (size_t i = 0; i < w->nchains && !(w->flags & KR_AUDIT_TAIL_OK); i++)
		uncovered(w, &w->chains[i]);
	KR_TRY(kr_store_state_certs(s, certificate, w));
	return kr_store_state_crls(s, crl, w);
}

KR_MUST_USE kr_err kr_audit_verify(kr_store *s, FILE *report, unsigned flags, long *problems)
{
	walk w = {.store = s, .report = report, .flags = flags, .expect = 1, .last_node = -1};
	kr_err e = kr_store_check(s);
	if (kr_failed(&e))
		problem(&w, "%s", e.msg);
	e = walk_log(s, &w);
	size_t by_signers = 0;
	for (size_t i = 0; i < w.ncps; i++)
		by_signers += w.cps[i].signer_der != NULL;
	free_checkpoints(&w);
	size_t chains = 0;
	for (size_t i = 0; i < w.nchains; i++)
		chains += w.chains[i].last > 0;
	free(w.chains);
	KR_TRY(e);
	if (report)
		fprintf(report,
			"audit: %ld entries in %zu chain(s), %zu checkpoint(s) (%zu by firmware "
			"signers), %ld problem(s)\n",
			w.entries, chains, w.ncps, by_signers, w.problems);
	if (problems)
		*problems = w.problems;
	KR_ENSURE(w.problems == 0, KR_EVERIFY, "the audit log fails verification (%ld problem(s))",
		  w.problems);
	return kr_ok();
}
