/* keyrite publish check: what is published (a zone file, or a server's
 * answers) against what the store calls for, record by record. */
#include "internal.h"
#include "../util/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct entry {
	char *key;   /* "owner type", owner lowercase and absolute */
	char *rdata; /* presentation form */
	char *what;  /* whose record (expected and forbidden sets) */
	const char *why;
} entry;

typedef struct set {
	entry *v;
	size_t n, cap;
} set;

typedef struct check {
	set expected, forbidden, published;
	FILE *report;
	kr_check_summary *sum;
} check;

static void set_free(set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].rdata);
		free(s->v[i].what);
	}
	free(s->v);
}

static KR_MUST_USE kr_err set_add(set *s, const ldns_rr *rr, const char *what, const char *why)
{
	KR_TRY(kr_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v));
	char *owner = ldns_rdf2str(ldns_rr_owner(rr)), *rdata = kr_rr_rdata(rr);
	entry *e = &s->v[s->n];
	*e = (entry){NULL, rdata, what ? strdup(what) : NULL, why};
	if (owner) {
		for (char *c = owner; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		size_t len = strlen(owner) + 16;
		e->key = malloc(len);
		if (e->key)
			snprintf(e->key, len, "%s %s", owner,
				 ldns_rr_get_type(rr) == LDNS_RR_TYPE_TLSA ? "TLSA" : "CERT");
	}
	free(owner);
	s->n++;
	KR_ENSURE(e->key && e->rdata && (!what || e->what), KR_EINTERNAL, "out of memory");
	return kr_ok();
}

static int by_key(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->rdata, y->rdata);
}

static int by_key_only(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->key, ((const entry *)b)->key);
}

static const entry *find(const set *s, const entry *k, int exact)
{
	return s->n ? bsearch(k, s->v, s->n, sizeof *s->v, exact ? by_key : by_key_only) : NULL;
}

static void sort(set *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof *s->v, by_key);
}

static KR_MUST_USE kr_err expect(const kr_rec *r, void *arg)
{
	check *c = arg;
	if (r->kind == KR_REC_ROOT && !r->live)
		return kr_ok();
	return set_add(r->live ? &c->expected : &c->forbidden, r->rr, r->what, r->why);
}

static int wanted(const ldns_rr *rr)
{
	ldns_rr_type t = ldns_rr_get_type(rr);
	return t == LDNS_RR_TYPE_TLSA || t == LDNS_RR_TYPE_CERT;
}

/* ---- what is published -------------------------------------------------------------- */

static KR_MUST_USE kr_err from_file(check *c, const char *path)
{
	FILE *f = fopen(path, "r");
	KR_ENSURE(f, KR_EIO, "%s: cannot open: %s", path, strerror(errno));
	ldns_zone *zone = NULL;
	int line = 0;
	ldns_status st = ldns_zone_new_frm_fp_l(&zone, f, NULL, 3600, LDNS_RR_CLASS_IN, &line);
	fclose(f);
	KR_ENSURE(st == LDNS_STATUS_OK, KR_EINPUT, "%s:%d: %s", path, line,
		  ldns_get_errorstr_by_id(st));
	kr_err e = kr_ok();
	ldns_rr_list *rrs = ldns_zone_rrs(zone);
	for (size_t i = 0; !kr_failed(&e) && i < ldns_rr_list_rr_count(rrs); i++)
		if (wanted(ldns_rr_list_rr(rrs, i)))
			e = set_add(&c->published, ldns_rr_list_rr(rrs, i), NULL, NULL);
	ldns_zone_deep_free(zone);
	return e;
}

static KR_MUST_USE kr_err resolver(const char *server, ldns_resolver **out)
{
	char host[256];
	unsigned port = 53;
	const char *p = server;
	if (*p == '[') { /* [IPv6]:PORT */
		const char *end = strchr(p, ']');
		KR_ENSURE(end, KR_EUSAGE, "--server %s: expected ADDR, ADDR:PORT or [ADDR]:PORT",
			  server);
		snprintf(host, sizeof host, "%.*s", (int)(end - p - 1), p + 1);
		p = end + 1;
	} else {
		size_t n = strcspn(p, ":");
		snprintf(host, sizeof host, "%.*s", (int)n, p);
		p += n;
	}
	if (*p == ':') {
		char *end = NULL;
		unsigned long v = strtoul(p + 1, &end, 10);
		KR_ENSURE(*end == '\0' && v > 0 && v < 65536, KR_EUSAGE, "--server %s: bad port",
			  server);
		port = (unsigned)v;
	}
	ldns_rdf *addr = ldns_rdf_new_frm_str(
		strchr(host, ':') ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, host);
	KR_ENSURE(addr, KR_EUSAGE, "--server %s: '%s' is not an IP address", server, host);
	ldns_resolver *r = ldns_resolver_new();
	if (!r || ldns_resolver_push_nameserver(r, addr) != LDNS_STATUS_OK) {
		ldns_rdf_deep_free(addr);
		ldns_resolver_deep_free(r);
		return kr_errf(KR_EINTERNAL, "out of memory");
	}
	ldns_rdf_deep_free(addr);
	ldns_resolver_set_port(r, (uint16_t)port);
	ldns_resolver_set_recursive(r, false);
	ldns_resolver_set_retry(r, 2);
	ldns_resolver_set_timeout(r, (struct timeval){2, 0});
	*out = r;
	return kr_ok();
}

static KR_MUST_USE kr_err ask(check *c, ldns_resolver *res, const char *server, const entry *k)
{
	char owner[300];
	size_t n = strcspn(k->key, " ");
	snprintf(owner, sizeof owner, "%.*s", (int)n, k->key);
	ldns_rr_type type =
		strcmp(k->key + n + 1, "TLSA") == 0 ? LDNS_RR_TYPE_TLSA : LDNS_RR_TYPE_CERT;
	ldns_rdf *name = ldns_dname_new_frm_str(owner);
	KR_ENSURE(name, KR_EINPUT, "bad owner name %s", owner);
	/* Flags 0: RD clear (RFC 1035 4.1.1), so the server answers from what it
	 * serves itself, not from what it might recurse to. */
	ldns_pkt *pkt = ldns_resolver_query(res, name, type, LDNS_RR_CLASS_IN, 0);
	ldns_rdf_deep_free(name);
	KR_ENSURE(pkt, KR_EIO, "DNS server %s does not answer (asked for %s %s)", server, owner,
		  k->key + n + 1);
	ldns_rr_list *rrs = ldns_pkt_rr_list_by_type(pkt, type, LDNS_SECTION_ANSWER);
	kr_err e = kr_ok();
	for (size_t i = 0; rrs && !kr_failed(&e) && i < ldns_rr_list_rr_count(rrs); i++)
		e = set_add(&c->published, ldns_rr_list_rr(rrs, i), NULL, NULL);
	ldns_rr_list_deep_free(rrs);
	ldns_pkt_free(pkt);
	return e;
}

/* Asks for every name the store knows, once each. */
static KR_MUST_USE kr_err from_server(check *c, const char *server)
{
	ldns_resolver *res = NULL;
	KR_TRY(resolver(server, &res));
	kr_err e = kr_ok();
	set *sets[] = {&c->expected, &c->forbidden};
	for (int s = 0; s < 2 && !kr_failed(&e); s++) {
		sort(sets[s]);
		for (size_t i = 0; i < sets[s]->n && !kr_failed(&e); i++) {
			const entry *k = &sets[s]->v[i];
			int done = (i > 0 && strcmp(sets[s]->v[i - 1].key, k->key) == 0) ||
				   (s == 1 && find(&c->expected, k, 0));
			if (!done)
				e = ask(c, res, server, k);
		}
	}
	ldns_resolver_deep_free(res);
	return e;
}

/* ---- the comparison ---------------------------------------------------------------- */

static void compare(check *c)
{
	set *ex = &c->expected, *fb = &c->forbidden, *pb = &c->published;
	sort(ex);
	sort(fb);
	sort(pb);
	c->sum->expected = (long)ex->n;
	for (size_t i = 0; i < ex->n; i++) {
		const entry *e = &ex->v[i], *got = find(pb, e, 1), *other = find(pb, e, 0);
		if (got) {
			c->sum->match++;
		} else if (other) {
			c->sum->mismatched++;
			fprintf(c->report, "mismatch %s: published %s, expected %s (%s)\n", e->key,
				other->rdata, e->rdata, e->what);
		} else {
			c->sum->missing++;
			fprintf(c->report, "missing %s %s (%s)\n", e->key, e->rdata, e->what);
		}
	}
	for (size_t i = 0; i < pb->n; i++) {
		const entry *p = &pb->v[i];
		if (find(ex, p, 1) || (find(ex, p, 0) && !find(fb, p, 1)))
			continue; /* expected, or reported as a mismatch above */
		const entry *f = find(fb, p, 1);
		c->sum->stale++;
		if (f)
			fprintf(c->report, "stale %s %s: certificate %s (%s)\n", p->key, p->rdata,
				f->why, f->what);
		else
			fprintf(c->report, "stale %s %s: no valid certificate in the store\n",
				p->key, p->rdata);
	}
}

KR_MUST_USE kr_err kr_publish_check(const kr_config *cfg, kr_store *store, const kr_zone_conf *z,
				    const kr_check_opts *o, FILE *report, kr_check_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	check c = {.report = report, .sum = sum};
	kr_err e = kr_publish_records(cfg, store, z, expect, &c);
	if (!kr_failed(&e))
		e = o->zone_file ? from_file(&c, o->zone_file) : from_server(&c, o->server);
	if (!kr_failed(&e)) {
		compare(&c);
		fprintf(report,
			"zone %s: %ld expected, %ld match, %ld missing, %ld mismatched, %ld "
			"stale\n",
			z->apex, sum->expected, sum->match, sum->missing, sum->mismatched,
			sum->stale);
		if (sum->missing + sum->mismatched + sum->stale)
			e = kr_errf(KR_EVERIFY, "zone %s: %ld problem(s) in what is published",
				    z->apex, sum->missing + sum->mismatched + sum->stale);
	}
	set_free(&c.expected);
	set_free(&c.forbidden);
	set_free(&c.published);
	return e;
}

KR_MUST_USE kr_err kr_publish_ask(const char *server, const char *owner, const char *type,
				  kr_record_cb cb, void *arg)
{
	ldns_rr_type t = ldns_get_rr_type_by_name(type);
	KR_ENSURE(t == LDNS_RR_TYPE_TLSA || t == LDNS_RR_TYPE_CERT, KR_EINPUT,
		  "%s: only TLSA and CERT records are checked", type);
	ldns_resolver *res = NULL;
	KR_TRY(resolver(server, &res));
	ldns_rdf *name = ldns_dname_new_frm_str(owner);
	/* RD clear, as from_server asks: what the server serves itself */
	ldns_pkt *pkt = name ? ldns_resolver_query(res, name, t, LDNS_RR_CLASS_IN, 0) : NULL;
	ldns_rdf_deep_free(name);
	ldns_resolver_deep_free(res);
	KR_ENSURE(pkt, KR_EIO, "DNS server %s does not answer (asked for %s %s)", server, owner,
		  type);
	ldns_rr_list *rrs = ldns_pkt_rr_list_by_type(pkt, t, LDNS_SECTION_ANSWER);
	kr_err e = kr_ok();
	for (size_t i = 0; rrs && !kr_failed(&e) && i < ldns_rr_list_rr_count(rrs); i++) {
		char *rdata = kr_rr_rdata(ldns_rr_list_rr(rrs, i));
		e = rdata ? cb(owner, type, rdata, arg) : kr_errf(KR_EINTERNAL, "out of memory");
		free(rdata);
	}
	ldns_rr_list_deep_free(rrs);
	ldns_pkt_free(pkt);
	return e;
}
