#include "audit.h"
#include "../util/mem.h"
#include "authority.h"
#include "sign.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* An 'issue' entry, reduced to what a certificate row is checked against. */
typedef struct issued {
	char key[64]; /* "<ca id>:<SERIAL>" */
} issued;

typedef struct walk {
	FILE *report;
	int64_t expect;
	uint8_t prev[32];
	long entries, problems;
	/* hashes by seq, for the checkpoints */
	uint8_t (*hashes)[32];
	size_t nhashes, cap;
	issued *issues;
	size_t nissues, icap;
} walk;

static void problem(walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(walk *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("audit: ", w->report);
	vfprintf(w->report, fmt, ap);
	fputc('\n', w->report);
	va_end(ap);
	w->problems++;
}

/* "ca=<id> serial=<HEX> ..." -> "<id>:<HEX>" */
static int issue_key(const char *detail, char *key, size_t n)
{
	if (strncmp(detail, "ca=", 3) != 0)
		return 0;
	char *end = NULL;
	long long ca = strtoll(detail + 3, &end, 10);
	if (end == detail + 3 || strncmp(end, " serial=", 8) != 0)
		return 0;
	const char *serial = end + 8;
	size_t len = strcspn(serial, " ");
	if (len == 0 || len > 40)
		return 0;
	snprintf(key, n, "%lld:%.*s", ca, (int)len, serial);
	return 1;
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
	uint8_t want[32];
	if (!e->prev || memcmp(e->prev, w->prev, 32) != 0)
		problem(w, "entry %lld: does not follow the entry before it (chain broken)",
			(long long)e->seq);
	KR_TRY(kr_audit_hash(e->prev ? e->prev : w->prev, e->seq, e->time, e->kind, e->detail,
			     want));
	if (!e->hash || memcmp(e->hash, want, 32) != 0)
		problem(w, "entry %lld (%s): its content does not match its hash (edited)",
			(long long)e->seq, e->kind);
	memcpy(w->prev, e->hash ? e->hash : want, 32);
	w->expect = e->seq + 1;
	KR_TRY(kr_grow((void **)&w->hashes, &w->cap, (size_t)e->seq + 1, 32));
	if ((size_t)e->seq >= w->nhashes) {
		memset(w->hashes + w->nhashes, 0, ((size_t)e->seq + 1 - w->nhashes) * 32);
		w->nhashes = (size_t)e->seq + 1;
	}
	memcpy(w->hashes[e->seq], w->prev, 32);
	if (!strcmp(e->kind, "issue")) {
		KR_TRY(kr_grow((void **)&w->issues, &w->icap, w->nissues + 1, sizeof *w->issues));
		if (issue_key(e->detail, w->issues[w->nissues].key, sizeof w->issues[0].key))
			w->nissues++;
	}
	return kr_ok();
}

static int verify_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig,
		      size_t siglen)
{
	kr_key_type t;
	kr_err e = kr_key_type_of(pub, &t);
	if (kr_failed(&e))
		return 0;
	for (int pss = 0; pss < 2; pss++) {
		kr_sig_alg alg;
		e = kr_sig_alg_for(t, pss, &alg);
		if (kr_failed(&e))
			break;
		KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;
		int ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, alg.md, NULL, pub) > 0;
		if (ok && pss)
			ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
		ok = ok && EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
		ERR_clear_error();
		if (ok)
			return 1;
	}
	return 0;
}

static KR_MUST_USE kr_err checkpoint(const kr_checkpoint *c, void *arg)
{
	walk *w = arg;
	if (c->seq < 1 || (size_t)c->seq >= w->nhashes || !c->head ||
	    memcmp(w->hashes[c->seq], c->head, 32) != 0) {
		problem(w,
			"checkpoint at entry %lld: the chain's head there is not the one the CA "
			"signed",
			(long long)c->seq);
		return kr_ok();
	}
	const unsigned char *p = c->ca_der;
	KR_AUTO(X509) ca = d2i_X509(NULL, &p, (long)c->ca_der_len);
	/* A firmware signer's checkpoint counts only if the CA issued the
	 * certificate it carries. */
	p = c->signer_der;
	KR_AUTO(X509) signer = c->signer_der ? d2i_X509(NULL, &p, (long)c->signer_der_len) : NULL;
	if (c->signer_der && (!ca || !signer || X509_verify(signer, X509_get0_pubkey(ca)) != 1)) {
		ERR_clear_error();
		problem(w, "checkpoint at entry %lld: its signer is not certified by CA '%s'",
			(long long)c->seq, c->ca);
		return kr_ok();
	}
	uint8_t msg[128];
	size_t len = 0;
	kr_checkpoint_message(c->seq, c->head, msg, &len);
	X509 *by = signer ? signer : ca;
	if (!by || !verify_sig(X509_get0_pubkey(by), msg, len, c->sig, c->sig_len))
		problem(w, "checkpoint at entry %lld: bad signature by %s '%s'", (long long)c->seq,
			signer ? "a firmware signer under CA" : "CA", c->ca);
	return kr_ok();
}

static int cmp_issued(const void *a, const void *b)
{
	return strcmp(((const issued *)a)->key, ((const issued *)b)->key);
}

static KR_MUST_USE kr_err certificate(const char *ca, const uint8_t *serial, size_t len, void *arg)
{
	walk *w = arg;
	issued k;
	char hex[41];
	kr_hex_upper(serial, len < 20 ? len : 20, hex);
	snprintf(k.key, sizeof k.key, "%s:%s", ca, hex);
	if (!w->nissues || !bsearch(&k, w->issues, w->nissues, sizeof *w->issues, cmp_issued))
		problem(w, "certificate %s of CA %s has no audit entry (an entry was deleted)", hex,
			ca);
	return kr_ok();
}

KR_MUST_USE kr_err kr_audit_verify(kr_store *s, FILE *report)
{
	walk w = {.report = report, .expect = 1};
	kr_err e = kr_store_check(s);
	if (kr_failed(&e))
		problem(&w, "%s", e.msg);
	e = kr_store_audit_walk(s, entry, &w);
	if (!kr_failed(&e))
		e = kr_store_checkpoints(s, checkpoint, &w);
	if (!kr_failed(&e)) {
		if (w.nissues > 1)
			qsort(w.issues, w.nissues, sizeof *w.issues, cmp_issued);
		e = kr_store_issued_serials(s, certificate, &w);
	}
	free(w.hashes);
	free(w.issues);
	KR_TRY(e);
	fprintf(report, "audit: %ld entries, %ld problem(s)\n", w.entries, w.problems);
	KR_ENSURE(w.problems == 0, KR_EVERIFY, "the audit log fails verification (%ld problem(s))",
		  w.problems);
	return kr_ok();
}
