/* DNSSEC signing of the published zone, the KSK and ZSK staying on the
 * token. ldns builds the zone, the NSEC3 chain and each RRSIG's header
 * (ldns_create_empty_rrsig) and the canonical wire form (RFC 4034 section
 * 6); keyrite hashes it and signs with C_Sign, on as many sessions as there
 * are workers. CKM_ECDSA gives r || s, which is the DNSSEC signature form
 * (RFC 6605 section 4). Keys from outside ldns have no flags, owner or key
 * tag until they are given them (reference section 4). */
#include "internal.h"
#include "../util/mem.h"
#include "../util/parallel.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIGNATURE_DAYS 30
#define MAX_SIGNERS 8

typedef struct zone_key {
	kr_hsm *hsm; /* borrowed */
	kr_hsm_key *hk;
	ldns_key *key; /* metadata for the RRSIG header: algorithm, tag, owner, times */
	const EVP_MD *md;
	size_t half; /* bytes of r and of s */
} zone_key;

/* ECDSA P-256 (algorithm 13) or P-384 (14), RFC 6605. */
static KR_MUST_USE kr_err key_load(kr_hsm *h, const char *uri, const kr_zone_conf *z,
				   uint16_t flags, ldns_dnssec_zone *zone, zone_key *k)
{
	k->hsm = h;
	KR_TRY(kr_hsm_key_find(h, uri, &k->hk));
	kr_key_type t = kr_hsm_key_type(k->hk);
	KR_ENSURE(t == KR_KEY_EC_P256 || t == KR_KEY_EC_P384, KR_EINPUT,
		  "%s: a %s key; DNSSEC keys are ec-p256 or ec-p384", uri, kr_key_type_name(t));
	int copied; /* either way it signs on the token */
	KR_TRY(kr_hsm_key_session_copy(h, k->hk, &copied));
	k->md = t == KR_KEY_EC_P256 ? EVP_sha256() : EVP_sha384();
	k->half = t == KR_KEY_EC_P256 ? 32 : 48;
	EVP_PKEY *pub = kr_hsm_key_public(k->hk);
	k->key = ldns_key_new();
	KR_ENSURE(k->key && EVP_PKEY_up_ref(pub), KR_EINTERNAL, "out of memory");
	ldns_key_set_algorithm(k->key, t == KR_KEY_EC_P256 ? LDNS_SIGN_ECDSAP256SHA256
							   : LDNS_SIGN_ECDSAP384SHA384);
	ldns_key_set_evp_key(k->key, pub); /* the public half, for the DNSKEY record */
	ldns_key_set_flags(k->key, flags);
	char apex[260];
	snprintf(apex, sizeof apex, "%s.", z->apex);
	ldns_key_set_pubkey_owner(k->key, ldns_dname_new_frm_str(apex));
	time_t now = time(NULL);
	ldns_key_set_inception(k->key, (uint32_t)(now - 3600)); /* clocks drift */
	ldns_key_set_expiration(k->key, (uint32_t)(now + (time_t)SIGNATURE_DAYS * 86400));
	ldns_rr *dnskey = ldns_key2rr(k->key);
	ldns_status st = LDNS_STATUS_MEM_ERR;
	if (dnskey) {
		ldns_rr_set_ttl(dnskey, (uint32_t)z->ttl);
		ldns_key_set_keytag(k->key, ldns_calc_keytag(dnskey));
		st = ldns_dnssec_zone_add_rr(zone, dnskey);
	}
	if (st != LDNS_STATUS_OK)
		ldns_rr_free(dnskey);
	return st == LDNS_STATUS_OK ? kr_ok()
				    : kr_ldns_err(st, KR_EINTERNAL, "adding the DNSKEY of", uri);
}

static void key_free(zone_key *k)
{
	if (k->key)
		ldns_key_deep_free(k->key); /* and its reference to the public key */
	kr_hsm_key_free(k->hk);
	memset(k, 0, sizeof *k);
}

/* ---- the signatures -------------------------------------------------------------------- */

/* One RRset to sign: collected in zone order, then canonicalized, hashed
 * and signed by whichever worker takes it. */
typedef struct job {
	ldns_dnssec_rrs *rrs; /* the RRset's records, or */
	ldns_rr *single;      /* its one NSEC or NSEC3 record */
	const zone_key *k;
	ldns_dnssec_rrs **into;
	ldns_rr *sig;
} job;

typedef struct jobs {
	job *v;
	size_t n, cap;
	kr_err e;
	pthread_mutex_t lock;
} jobs;

static KR_MUST_USE kr_err add_job(jobs *js, ldns_dnssec_rrs *rrs, ldns_rr *single,
				  const zone_key *k, ldns_dnssec_rrs **into)
{
	KR_TRY(kr_grow((void **)&js->v, &js->cap, js->n + 1, sizeof *js->v));
	js->v[js->n++] = (job){rrs, single, k, into, NULL};
	return kr_ok();
}

/* Every RRset with authority: the DNSKEY set by the KSK, the others and
 * the NSEC3 records by the ZSK; occluded names and below-apex NS sets are
 * not signed (RFC 4035 section 2.2). */
static KR_MUST_USE kr_err collect(ldns_dnssec_zone *zone, const zone_key *ksk, const zone_key *zsk,
				  jobs *js)
{
	ldns_dnssec_zone_mark_glue(zone);
	ldns_rdf *apex = zone->soa->name;
	for (ldns_rbnode_t *n = ldns_rbtree_first(zone->names); n != LDNS_RBTREE_NULL;
	     n = ldns_rbtree_next(n)) {
		ldns_dnssec_name *name = (ldns_dnssec_name *)n->data;
		if (ldns_dnssec_name_is_glue(name))
			continue;
		int at_apex = ldns_dname_compare(name->name, apex) == 0;
		for (ldns_dnssec_rrsets *s = name->rrsets; s; s = s->next) {
			if (!s->rrs || (s->type == LDNS_RR_TYPE_NS && !at_apex))
				continue;
			const zone_key *k = s->type == LDNS_RR_TYPE_DNSKEY ? ksk : zsk;
			KR_TRY(add_job(js, s->rrs, NULL, k, &s->signatures));
		}
		if (name->nsec)
			KR_TRY(add_job(js, NULL, name->nsec, zsk, &name->nsec_signatures));
	}
	return kr_ok();
}

static int push_clone(ldns_rr_list *list, const ldns_rr *rr)
{
	ldns_rr *c = ldns_rr_clone(rr);
	if (c && ldns_rr_list_push_rr(list, c))
		return 1;
	ldns_rr_free(c);
	return 0;
}

/* RFC 4034 section 6.2: canonical form, the RRSIG's original TTL, sorted. */
static ldns_rr_list *canonical_rrset(const job *j)
{
	ldns_rr_list *list = ldns_rr_list_new();
	int ok = list != NULL;
	for (ldns_dnssec_rrs *r = j->rrs; ok && r; r = r->next)
		ok = push_clone(list, r->rr);
	if (ok && j->single)
		ok = push_clone(list, j->single);
	if (!ok || ldns_rr_list_rr_count(list) == 0) {
		ldns_rr_list_deep_free(list);
		return NULL;
	}
	uint32_t ttl = ldns_rr_ttl(ldns_rr_list_rr(list, 0));
	for (size_t i = 0; i < ldns_rr_list_rr_count(list); i++) {
		ldns_rr_set_ttl(ldns_rr_list_rr(list, i), ttl);
		ldns_rr2canonical(ldns_rr_list_rr(list, i));
	}
	ldns_rr_list_sort(list);
	return list;
}

/* RFC 4034 section 3.1.8.1: the signature covers the RRSIG's rdata without
 * the signature, then the canonical RRset; ECDSA's r || s is the DNSSEC
 * signature form (RFC 6605 section 4). buf is the worker's, reused. */
static KR_MUST_USE kr_err sign_one(kr_hsm_session *session, ldns_buffer *buf, job *j)
{
	ldns_rr_list *rrset = canonical_rrset(j);
	j->sig = rrset ? ldns_create_empty_rrsig(rrset, j->k->key) : NULL;
	ldns_buffer_clear(buf);
	ldns_status st = j->sig ? ldns_rrsig2buffer_wire(buf, j->sig) : LDNS_STATUS_MEM_ERR;
	if (st == LDNS_STATUS_OK)
		st = ldns_rr_list2buffer_wire(buf, rrset);
	ldns_rr_list_deep_free(rrset);
	KR_ENSURE(st == LDNS_STATUS_OK, KR_EINTERNAL, "an RRSIG: %s", ldns_get_errorstr_by_id(st));
	uint8_t d[EVP_MAX_MD_SIZE], raw[KR_HSM_MAX_SIG];
	unsigned dlen = 0;
	size_t rawlen = 0;
	KR_OSSL(EVP_Digest(ldns_buffer_begin(buf), ldns_buffer_position(buf), d, &dlen, j->k->md,
			   NULL),
		KR_EINTERNAL, "hashing an RRset");
	KR_TRY(kr_hsm_sign(session, j->k->hk, KR_SIG_ECDSA_RAW, j->k->md, d, dlen, raw, &rawlen));
	KR_ENSURE(rawlen == 2 * j->k->half, KR_EHSM, "the token's ECDSA signature has %zu bytes",
		  rawlen);
	ldns_rdf *sig = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_B64, rawlen, raw);
	KR_ENSURE(sig, KR_EINTERNAL, "out of memory");
	ldns_rr_rrsig_set_sig(j->sig, sig);
	return kr_ok();
}

typedef struct signing {
	jobs *js;
	kr_hsm_pool *sessions;
	ldns_buffer *buf[MAX_SIGNERS]; /* a worker's each */
	int stop;                      /* an RRset failed: the others take no more */
} signing;

static void sign_job(void *arg, int i, int wi)
{
	signing *sg = arg;
	jobs *js = sg->js;
	if (js->v[i].sig || __atomic_load_n(&sg->stop, __ATOMIC_RELAXED))
		return; /* the KSK's, done already; or the run is failing */
	kr_err e = sign_one(kr_hsm_pool_session(sg->sessions, wi), sg->buf[wi], &js->v[i]);
	if (kr_failed(&e)) {
		pthread_mutex_lock(&js->lock);
		if (!kr_failed(&js->e))
			js->e = e;
		pthread_mutex_unlock(&js->lock);
		__atomic_store_n(&sg->stop, 1, __ATOMIC_RELAXED);
	}
}

/* The ZSK's work on a session per core (the DNSKEY set, the KSK's, is in
 * the list too: its token may differ, so it is signed here first). */
static KR_MUST_USE kr_err sign_all(jobs *js, const zone_key *ksk, const zone_key *zsk)
{
	ldns_buffer *buf = ldns_buffer_new(512);
	KR_ENSURE(buf, KR_EINTERNAL, "out of memory");
	kr_err e = kr_ok();
	for (size_t i = 0; i < js->n && !kr_failed(&e); i++)
		if (js->v[i].k == ksk)
			e = sign_one(kr_hsm_main_session(ksk->hsm), buf, &js->v[i]);
	ldns_buffer_free(buf);
	KR_TRY(e);
	KR_ENSURE(js->n <= INT_MAX, KR_EINTERNAL, "too many RRsets");
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	signing sg = {.js = js};
	e = kr_hsm_pool_open(zsk->hsm, cores > MAX_SIGNERS ? MAX_SIGNERS : (int)cores,
			     &sg.sessions);
	int n = kr_failed(&e) ? 0 : kr_hsm_pool_size(sg.sessions);
	for (int i = 0; i < n && !kr_failed(&e); i++)
		if (!(sg.buf[i] = ldns_buffer_new(512)))
			e = kr_errf(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e))
		kr_parallel_for((int)js->n, n, sign_job, &sg);
	for (int i = 0; i < n; i++)
		ldns_buffer_free(sg.buf[i]);
	kr_hsm_pool_close(sg.sessions);
	KR_TRY(e);
	return js->e;
}

static KR_MUST_USE kr_err attach(jobs *js)
{
	for (size_t i = 0; i < js->n; i++) {
		job *j = &js->v[i];
		KR_ENSURE(j->sig, KR_EINTERNAL, "an RRset was left unsigned");
		if (!*j->into) {
			*j->into = ldns_dnssec_rrs_new();
			KR_ENSURE(*j->into, KR_EINTERNAL, "out of memory");
			(*j->into)->rr = j->sig;
		} else if (ldns_dnssec_rrs_add_rr(*j->into, j->sig) != LDNS_STATUS_OK) {
			return kr_errf(KR_EINTERNAL, "attaching a signature");
		}
		j->sig = NULL;
	}
	return kr_ok();
}

static void jobs_free(jobs *js)
{
	for (size_t i = 0; i < js->n; i++)
		ldns_rr_free(js->v[i].sig);
	free(js->v);
	pthread_mutex_destroy(&js->lock);
}

/* NSEC3 without iterations or salt (RFC 9276 section 3.1), or NSEC. */
static KR_MUST_USE kr_err chain(ldns_dnssec_zone *zone, const kr_zone_conf *z, ldns_rr_list *added)
{
	ldns_status st;
	if (z->nsec3) {
		char text[300];
		snprintf(text, sizeof text, "%s. 0 IN NSEC3PARAM 1 0 0 -", z->apex);
		ldns_rr *param = NULL;
		st = ldns_rr_new_frm_str(&param, text, 0, NULL, NULL);
		if (st == LDNS_STATUS_OK)
			st = ldns_dnssec_zone_add_rr(zone, param);
		/* RFC 5155 section 7.1: empty non-terminals get NSEC3 records too */
		if (st == LDNS_STATUS_OK)
			st = ldns_dnssec_zone_add_empty_nonterminals(zone);
		if (st == LDNS_STATUS_OK)
			st = ldns_dnssec_zone_create_nsec3s(zone, added, LDNS_SHA1, 0, 0, 0, NULL);
	} else {
		st = ldns_dnssec_zone_create_nsecs(zone, added);
	}
	return st == LDNS_STATUS_OK ? kr_ok() : kr_ldns_err(st, KR_EINPUT, "the NSEC chain", NULL);
}

static void ds(const zone_key *ksk, kr_publish_summary *sum)
{
	ldns_rr *dnskey = ldns_key2rr(ksk->key);
	ldns_hash hashes[] = {LDNS_SHA256, LDNS_SHA384};
	for (int i = 0; dnskey && i < 2; i++) {
		ldns_rr *d = ldns_key_rr2ds(dnskey, hashes[i]);
		char *text = d ? ldns_rr2str(d) : NULL;
		if (text) {
			text[strcspn(text, "\n")] = '\0';
			snprintf(sum->ds[i], sizeof sum->ds[i], "%s", text);
		}
		free(text);
		ldns_rr_free(d);
	}
	ldns_rr_free(dnskey);
}

static void free_list(ldns_rr_list **l) { ldns_rr_list_free(*l); } /* not the records */

static KR_MUST_USE kr_err sign_zone(const kr_zone_conf *z, kr_hsm *kh, kr_hsm *zh,
				    ldns_dnssec_zone *zone, kr_publish_summary *sum)
{
	__attribute__((cleanup(key_free))) zone_key ksk = {0};
	__attribute__((cleanup(key_free))) zone_key zsk = {0};
	__attribute__((cleanup(jobs_free))) jobs js = {.e = kr_ok()};
	pthread_mutex_init(&js.lock, NULL);
	/* the NSEC3 records it lists belong to the zone */
	__attribute__((cleanup(free_list))) ldns_rr_list *added = ldns_rr_list_new();
	KR_ENSURE(added, KR_EINTERNAL, "out of memory");
	/* flags 257: zone key and secure entry point; 256: zone key (RFC 4034 2.1.1) */
	KR_TRY(key_load(kh, z->ksk_uri, z, 257, zone, &ksk));
	KR_TRY(key_load(zh, z->zsk_uri, z, 256, zone, &zsk));
	KR_TRY(chain(zone, z, added));
	KR_TRY(collect(zone, &ksk, &zsk, &js));
	KR_TRY(sign_all(&js, &ksk, &zsk));
	KR_TRY(attach(&js));
	ds(&ksk, sum);
	return kr_ok();
}

KR_MUST_USE kr_err kr_publish_sign(const kr_zone_conf *z, const kr_hsm_opts *hsm,
				   ldns_dnssec_zone *zone, kr_publish_summary *sum)
{
	KR_ENSURE(zone->soa, KR_EINPUT, "zone %s: signing needs the SOA", z->apex);
	char ksk_token[33], zsk_token[33];
	KR_TRY(kr_hsm_uri_token_label(z->ksk_uri, ksk_token));
	KR_TRY(kr_hsm_uri_token_label(z->zsk_uri, zsk_token));
	KR_AUTO(kr_hsm) kh = NULL;
	KR_AUTO(kr_hsm) zh = NULL;
	kr_hsm_opts o = kr_hsm_opts_pin(hsm, z->pin_file, z->pin_env);
	KR_TRY(kr_hsm_open(z->ksk_uri, &o, &kh));
	if (strcmp(ksk_token, zsk_token) != 0)
		KR_TRY(kr_hsm_open(z->zsk_uri, &o, &zh));
	return sign_zone(z, kh, zh ? zh : kh, zone, sum);
}
