/* What the zone should hold, from the store and the configuration. Records
 * are built as ldns structures: numbers for TLSA fields (BIND and Knot refuse
 * the mnemonics), digests from the store (the SPKI SHA-256 recorded at
 * issuance, so no certificate is parsed for 3 1 1), lengths checked. */
#include "internal.h"
#include "../ca/authority.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <openssl/x509.h>
#include <string.h>
#include <time.h>

KR_MUST_USE kr_err kr_ldns_err(ldns_status st, kr_code code, const char *what, const char *name)
{
	return kr_errf(code, "%s%s%s: %s", what, name ? " " : "", name ? name : "",
		       ldns_get_errorstr_by_id(st));
}

char *kr_rr_rdata(const ldns_rr *rr)
{
	ldns_buffer *b = ldns_buffer_new(256);
	for (size_t i = 0; b && i < ldns_rr_rd_count(rr); i++) {
		if (i)
			ldns_buffer_printf(b, " ");
		ldns_rdf2buffer_str(b, ldns_rr_rdf(rr, i));
	}
	char *s = b ? ldns_buffer_export2str(b) : NULL;
	ldns_buffer_free(b);
	return s;
}

typedef struct gen {
	const kr_config *cfg;
	const kr_zone_conf *z;
	kr_rec_cb cb;
	void *arg;
	time_t now;
} gen;

static KR_MUST_USE kr_err owner_rr(gen *g, const char *owner, ldns_rr_type type, ldns_rr **out)
{
	char fq[300];
	snprintf(fq, sizeof fq, "%s.", owner);
	ldns_rdf *dname = NULL;
	ldns_status st = ldns_str2rdf_dname(&dname, fq);
	KR_ENSURE(st == LDNS_STATUS_OK, KR_EINPUT, "owner name '%s': %s", owner,
		  ldns_get_errorstr_by_id(st));
	ldns_rr *rr = ldns_rr_new();
	KR_ENSURE(rr, KR_EINTERNAL, "out of memory");
	ldns_rr_set_owner(rr, dname);
	ldns_rr_set_type(rr, type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, (uint32_t)g->z->ttl);
	*out = rr;
	return kr_ok();
}

static void push8(ldns_rr *rr, uint8_t v)
{
	ldns_rr_push_rdf(rr, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, v));
}

/* TLSA usage selector matching-type data (RFC 6698 section 2.1): a SHA-256
 * digest is 32 bytes, a full certificate is DER. */
static KR_MUST_USE kr_err tlsa(gen *g, const char *owner, int usage, int selector, int mtype,
			       const uint8_t *data, size_t len, ldns_rr **out)
{
	KR_ENSURE(data && (mtype != 1 || len == 32) && len > 0, KR_EINPUT,
		  "%s: no SPKI digest recorded for this certificate", owner);
	KR_TRY(owner_rr(g, owner, LDNS_RR_TYPE_TLSA, out));
	push8(*out, (uint8_t)usage);
	push8(*out, (uint8_t)selector);
	push8(*out, (uint8_t)mtype);
	ldns_rr_push_rdf(*out, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_HEX, len, data));
	return kr_ok();
}

/* RFC 4398 section 2.1: key tag and algorithm only when the key is
 * expressible as a DNSKEY (here the curves with a DNSSEC algorithm: P-256
 * 13, P-384 14, Ed25519 15); otherwise both 0. ldns builds the DNSKEY
 * (flags 0, protocol 3) and computes the tag (RFC 4034 appendix B). */
static void key_tag(const uint8_t *der, size_t len, int *tag, int *alg)
{
	static const struct {
		kr_key_type type;
		ldns_signing_algorithm alg;
	} dnssec[] = {
		{KR_KEY_EC_P256, LDNS_SIGN_ECDSAP256SHA256},
		{KR_KEY_EC_P384, LDNS_SIGN_ECDSAP384SHA384},
		{KR_KEY_ED25519, LDNS_SIGN_ED25519},
	};
	*tag = *alg = 0;
	const unsigned char *p = der;
	KR_AUTO(X509) x = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
	kr_key_type t;
	kr_err e = k ? kr_key_type_of(k, &t) : kr_errf(KR_EINPUT, "no key");
	ERR_clear_error();
	for (size_t i = 0; !kr_failed(&e) && i < sizeof dnssec / sizeof *dnssec; i++) {
		if (dnssec[i].type != t)
			continue;
		ldns_key *key = ldns_key_new();
		if (!key || !EVP_PKEY_up_ref(k)) {
			ldns_key_free(key);
			return;
		}
		ldns_key_set_algorithm(key, dnssec[i].alg);
		ldns_key_set_evp_key(key, k); /* freed with key */
		ldns_key_set_flags(key, 0);
		ldns_rr *dnskey = ldns_key2rr(key);
		if (dnskey) {
			*alg = (int)dnssec[i].alg; /* the DNSSEC algorithm number */
			*tag = ldns_calc_keytag(dnskey);
		}
		ldns_rr_free(dnskey);
		ldns_key_deep_free(key);
	}
}

static KR_MUST_USE kr_err cert_rr(gen *g, const kr_cert_info *c, ldns_rr **out)
{
	char owner[300];
	snprintf(owner, sizeof owner, "%lld.%s.%s", (long long)c->profile_id, c->device_id,
		 g->z->apex);
	int tag, alg;
	key_tag(c->der, c->der_len, &tag, &alg);
	KR_TRY(owner_rr(g, owner, LDNS_RR_TYPE_CERT, out));
	ldns_rr_push_rdf(*out, ldns_native2rdf_int16(LDNS_RDF_TYPE_CERT_ALG, 1)); /* PKIX */
	ldns_rr_push_rdf(*out, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, (uint16_t)tag));
	push8(*out, (uint8_t)alg);
	ldns_rr_push_rdf(*out, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_B64, c->der_len, c->der));
	return kr_ok();
}

static KR_MUST_USE kr_err emit(gen *g, kr_rec_kind kind, const kr_cert_info *c, const char *what,
			       ldns_rr *rr)
{
	int revoked = strcmp(c->status, "revoked") == 0;
	int expired = c->not_after <= (int64_t)g->now;
	const char *why = revoked   ? "revoked"
			  : expired ? "expired"
				    : "withheld by the registry (held, not active or deleted)";
	kr_rec r = {kind, !revoked && !expired && !c->withheld, why, what, rr};
	kr_err e = g->cb(&r, g->arg);
	ldns_rr_free(rr);
	/* cppcheck-suppress returnDanglingLifetime ; e holds no pointer to r */
	return e;
}

static KR_MUST_USE kr_err device(gen *g, const kr_cert_info *c)
{
	char name[256], what[160];
	snprintf(name, sizeof name, "%.*s", (int)strcspn(c->sans ? c->sans : "", ","),
		 c->sans ? c->sans : "");
	if (!name[0] || !kr_dns_name_within(name, g->z->apex))
		return kr_ok();
	char hex[41];
	kr_hex_upper(c->serial, c->serial_len < 20 ? c->serial_len : 20, hex);
	snprintf(what, sizeof what, "device %s serial %s", c->device_id ? c->device_id : "?", hex);
	ldns_rr *rr = NULL;
	KR_TRY(g->z->device_full ? tlsa(g, name, 3, 0, 0, c->der, c->der_len, &rr)
				 : tlsa(g, name, 3, 1, 1, c->spki_sha256, 32, &rr));
	KR_TRY(emit(g, KR_REC_DEVICE, c, what, rr));
	if (!g->z->cert_records || !c->device_id)
		return kr_ok();
	KR_TRY(cert_rr(g, c, &rr));
	return emit(g, KR_REC_CERT, c, what, rr);
}

static KR_MUST_USE kr_err server(gen *g, const kr_cert_info *c)
{
	char sans[2048], *save = NULL, what[300];
	snprintf(sans, sizeof sans, "%s", c->sans ? c->sans : "");
	for (char *h = strtok_r(sans, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		if (!kr_dns_name_within(h, g->z->apex))
			continue;
		char owner[300];
		snprintf(owner, sizeof owner, "_%ld._tcp.%s", g->z->server_port, h);
		snprintf(what, sizeof what, "server %s", h);
		ldns_rr *rr = NULL;
		KR_TRY(tlsa(g, owner, 3, 1, 1, c->spki_sha256, 32, &rr));
		KR_TRY(emit(g, KR_REC_SERVER, c, what, rr));
	}
	return kr_ok();
}

static KR_MUST_USE kr_err each_cert(const kr_cert_info *c, void *arg)
{
	gen *g = arg;
	const kr_profile *p = kr_config_profile_named(g->cfg, c->profile);
	if (!p)
		return kr_ok(); /* a profile since removed from the configuration */
	if (p->identity == KR_ID_DEVICE)
		return device(g, c);
	if (p->identity == KR_ID_DNS)
		return server(g, c);
	return kr_ok();
}

KR_MUST_USE kr_err kr_publish_ca_certs(const kr_config *cfg, STACK_OF(X509) * *out)
{
	STACK_OF(X509) *all = sk_X509_new_null();
	KR_OSSL(all, KR_EINTERNAL, "out of memory");
	kr_err e = kr_ok();
	for (int i = 0; !kr_failed(&e) && i < kr_config_ncas(cfg); i++) {
		const kr_ca_conf *ca = kr_config_ca_at(cfg, i);
		const char *files[] = {ca->certificate, ca->chain};
		for (int f = 0; f < 2 && files[f][0] && !kr_failed(&e); f++) {
			STACK_OF(X509) *certs = NULL;
			e = kr_certs_read(files[f], &certs);
			X509 *x;
			while (!kr_failed(&e) && (x = sk_X509_shift(certs)) != NULL) {
				int dup = 0;
				for (int j = 0; j < sk_X509_num(all); j++)
					dup |= X509_cmp(x, sk_X509_value(all, j)) == 0;
				if (dup || !sk_X509_push(all, x))
					X509_free(x);
			}
			sk_X509_pop_free(certs, X509_free);
		}
	}
	if (kr_failed(&e)) {
		sk_X509_pop_free(all, X509_free);
		return e;
	}
	*out = all;
	return kr_ok();
}

/* The roots above the file's CAs: _rootcert.<ca host>. */
static KR_MUST_USE kr_err roots(gen *g)
{
	STACK_OF(X509) *cas = NULL;
	KR_TRY(kr_publish_ca_certs(g->cfg, &cas));
	char owner[300];
	snprintf(owner, sizeof owner, "_rootcert.%s", g->z->ca_host);
	kr_err e = kr_ok();
	/* cppcheck-suppress invalidLifetime ; e holds no pointer to r */
	for (int i = 0; !kr_failed(&e) && i < sk_X509_num(cas); i++) {
		X509 *x = sk_X509_value(cas, i);
		if (X509_check_issued(x, x) != X509_V_OK)
			continue;
		uint8_t *der = NULL;
		int len = i2d_X509(x, &der);
		ldns_rr *rr = NULL;
		e = len > 0 ? tlsa(g, owner, g->z->rootcert_usage, 0, 0, der, (size_t)len, &rr)
			    : kr_err_ossl(KR_EINTERNAL, "encoding the root");
		OPENSSL_free(der);
		if (!kr_failed(&e)) {
			kr_rec r = {KR_REC_ROOT, 1, NULL, "root", rr};
			e = g->cb(&r, g->arg);
			ldns_rr_free(rr);
		}
	}
	sk_X509_pop_free(cas, X509_free);
	return e;
}

KR_MUST_USE kr_err kr_publish_records(const kr_config *cfg, kr_store *store, const kr_zone_conf *z,
				      kr_rec_cb cb, void *arg)
{
	gen g = {cfg, z, cb, arg, time(NULL)};
	if (z->rootcert && kr_dns_name_within(z->ca_host, z->apex))
		KR_TRY(roots(&g));
	kr_cert_filter all = {0};
	return kr_store_certs(store, &all, each_cert, &g);
}

typedef struct as_text {
	kr_record_cb cb;
	void *arg;
} as_text;

static KR_MUST_USE kr_err text_of(const kr_rec *r, void *arg)
{
	as_text *t = arg;
	if (!r->live)
		return kr_ok();
	char *owner = ldns_rdf2str(ldns_rr_owner(r->rr));
	char *type = ldns_rr_type2str(ldns_rr_get_type(r->rr));
	char *rdata = kr_rr_rdata(r->rr);
	kr_err e = owner && type && rdata ? t->cb(owner, type, rdata, t->arg)
					  : kr_errf(KR_EINTERNAL, "out of memory");
	free(owner);
	free(type);
	free(rdata);
	return e;
}

KR_MUST_USE kr_err kr_publish_cert_records(const kr_config *cfg, const kr_zone_conf *z,
					   const kr_cert_info *c, kr_record_cb cb, void *arg)
{
	as_text t = {cb, arg};
	gen g = {cfg, z, text_of, &t, time(NULL)};
	return each_cert(c, &g);
}
