#include "config.h"
#include "../store/store.h"
#include "../util/nconf.h"
#include "../util/fs.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct kr_config {
	kr_nconf *conf;
	char store[PATH_MAX];
	long node;
	kr_ca_conf cas[KR_MAX_LIST];
	int ncas;
	kr_profile profiles[KR_MAX_LIST];
	int nprofiles;
	kr_signer_conf signers[KR_MAX_LIST];
	int nsigners;
	kr_zone_conf zones[KR_MAX_LIST];
	int nzones;
	int has_registry;
	kr_registry_conf registry;
};

static const kr_field keyrite_fields[] = {
	{"store", KR_F_STRING, 1}, {"cas", KR_F_STRING, 1},       {"signers", KR_F_STRING, 0},
	{"zones", KR_F_STRING, 0}, {"registry", KR_F_SECTION, 0}, {"node", KR_F_INT, 0},
};
static const kr_field ca_fields[] = {
	{"certificate", KR_F_STRING, 1}, {"chain", KR_F_STRING, 0},
	{"uri", KR_F_STRING, 1},         {"pin_file", KR_F_STRING, 0},
	{"pin_env", KR_F_STRING, 0},     {"rsa_pss", KR_F_BOOL, 0},
	{"workers", KR_F_INT, 0},        {"crl_next_update_days", KR_F_INT, 1},
	{"profiles", KR_F_STRING, 1},
};
static const kr_field signer_fields[] = {
	{"certificate", KR_F_STRING, 1}, {"ca", KR_F_STRING, 1},       {"uri", KR_F_STRING, 1},
	{"pin_file", KR_F_STRING, 0},    {"pin_env", KR_F_STRING, 0},  {"workers", KR_F_INT, 0},
	{"package", KR_F_STRING, 0},     {"hardware", KR_F_STRING, 0},
};
static const kr_field zone_fields[] = {
	{"zone", KR_F_STRING, 1},          {"ttl", KR_F_INT, 0},
	{"device_tlsa", KR_F_STRING, 0},   {"cert_records", KR_F_BOOL, 0},
	{"rootcert_tlsa", KR_F_STRING, 0}, {"ca_host", KR_F_STRING, 0},
	{"server_port", KR_F_INT, 0},      {"soa_mname", KR_F_STRING, 0},
	{"soa_rname", KR_F_STRING, 0},     {"ns", KR_F_STRING, 0},
	{"ksk_uri", KR_F_STRING, 0},       {"zsk_uri", KR_F_STRING, 0},
	{"pin_file", KR_F_STRING, 0},      {"pin_env", KR_F_STRING, 0},
	{"nsec3", KR_F_BOOL, 0},           {"rootcert", KR_F_BOOL, 0},
};
static const kr_field profile_fields[] = {
	{"identity", KR_F_STRING, 1},    {"name", KR_F_STRING, 0},
	{"zone", KR_F_STRING, 0},        {"permitted", KR_F_STRING, 0},
	{"max_names", KR_F_INT, 0},      {"organization", KR_F_STRING, 0},
	{"key_types", KR_F_STRING, 1},   {"validity_days", KR_F_INT, 1},
	{"extensions", KR_F_SECTION, 1}, {"honour", KR_F_STRING, 0},
};
static const kr_field registry_fields[] = {
	{"ca", KR_F_STRING, 1},
	{"profile", KR_F_STRING, 1},
	{"accounts", KR_F_STRING, 1},
	{"auth_code_days", KR_F_INT, 0},
	{"auth_code_attempts", KR_F_INT, 0},
	{"transfer_auto_approve_days", KR_F_INT, 0},
	{"delete_grace_days", KR_F_INT, 0},
	{"payload_uri", KR_F_STRING, 0},
	{"payload_certificate", KR_F_STRING, 0},
	{"pin_file", KR_F_STRING, 0},
	{"pin_env", KR_F_STRING, 0},
	{"trust_anchor", KR_F_STRING, 0},
	{"client_profile", KR_F_STRING, 0},
	{"enrollment_key", KR_F_STRING, 0},
	{"serve", KR_F_SECTION, 0},
};
static const kr_field serve_fields[] = {
	{"address", KR_F_STRING, 0}, {"port", KR_F_INT, 1},        {"certificate", KR_F_STRING, 1},
	{"key", KR_F_STRING, 0},     {"key_uri", KR_F_STRING, 0},  {"pin_file", KR_F_STRING, 0},
	{"pin_env", KR_F_STRING, 0}, {"tls", KR_F_STRING, 0},      {"threads", KR_F_INT, 0},
	{"max_body", KR_F_INT, 0},   {"max_headers", KR_F_INT, 0}, {"timeout", KR_F_INT, 0},
	{"rate", KR_F_INT, 0},       {"burst", KR_F_INT, 0},       {"batch", KR_F_INT, 0},
	{"console", KR_F_STRING, 0}, {"dns", KR_F_STRING, 0},
};
static const kr_field account_fields[] = {
	{"kind", KR_F_STRING, 1},     {"endpoint", KR_F_STRING, 0},           {"port", KR_F_INT, 0},
	{"protocol", KR_F_STRING, 0}, {"server_certificate", KR_F_STRING, 0},
};
#define CHECK(c, sec, f) kr_nconf_check((c)->conf, sec, f, sizeof f / sizeof *f)

/* Splits a comma list into fixed slots; returns the count or -1 if too many. */
static int split(const char *list, char out[][64], int max)
{
	char *copy = strdup(list), *save = NULL;
	int n = 0;
	for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (n == max || strlen(t) >= 64) {
			n = -1;
			break;
		}
		snprintf(out[n++], 64, "%s", t);
	}
	free(copy);
	return n;
}

static KR_MUST_USE kr_err path_of(kr_config *c, const char *section, const char *key, char *out)
{
	const char *v = kr_nconf_get(c->conf, section, key);
	if (!v) {
		out[0] = '\0';
		return kr_ok();
	}
	char dir[PATH_MAX];
	kr_fs_dirname(kr_nconf_path(c->conf), dir, sizeof dir);
	return kr_fs_join(dir, v, out, PATH_MAX);
}

/* Copies a value into a fixed field; a value that does not fit is an error,
 * never silently shortened. */
static KR_MUST_USE kr_err copy_value(kr_config *c, const char *section, const char *key, char *dst,
				     size_t n)
{
	const char *v = kr_nconf_get(c->conf, section, key);
	size_t len = v ? strlen(v) : 0;
	if (len >= n)
		return kr_nconf_err(c->conf, KR_EINPUT, section, key, "longer than %zu characters",
				    n - 1);
	memcpy(dst, v ? v : "", len);
	dst[len] = '\0';
	return kr_ok();
}

/* A PostgreSQL database (store/store.h's kr_store_conninfo) is taken as
 * written; a file is beside the configuration. */
static KR_MUST_USE kr_err store_of(kr_config *c)
{
	const char *v = kr_nconf_get(c->conf, "keyrite", "store");
	const char *conninfo = v ? kr_store_conninfo(v) : NULL;
	if (!conninfo)
		return path_of(c, "keyrite", "store", c->store);
	KR_ENSURE(conninfo[0], KR_EINPUT, "%s: [keyrite] store: no connection string after %.*s",
		  kr_nconf_path(c->conf), (int)(conninfo - v), v);
	return copy_value(c, "keyrite", "store", c->store, sizeof c->store);
}

static void copy(char *dst, size_t n, const char *v)
{
	size_t len = strlen(v);
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

/* A comma list of names (none when the key is absent), min to KR_MAX_LIST. */
static KR_MUST_USE kr_err name_list(kr_config *c, const char *section, const char *key, int min,
				    char names[][64], int *n)
{
	const char *v = kr_nconf_get(c->conf, section, key);
	*n = v ? split(v, names, KR_MAX_LIST) : 0;
	if (*n < min) /* split says -1 for too many or too long */
		return kr_nconf_err(c->conf, KR_EINPUT, section, key,
				    "list %d to %d names of at most 63 characters", min,
				    KR_MAX_LIST);
	return kr_ok();
}

/* An optional number: dflt when the key is absent. */
static KR_MUST_USE kr_err optional_long(kr_config *c, const char *section, const char *key,
					long min, long max, long dflt, long *out)
{
	*out = dflt;
	return kr_nconf_get(c->conf, section, key)
		       ? kr_nconf_get_long(c->conf, section, key, min, max, out)
		       : kr_ok();
}

static KR_MUST_USE kr_err load_ca(kr_config *c, const char *name, kr_ca_conf *ca)
{
	char section[80];
	snprintf(section, sizeof section, "ca_%.63s", name);
	KR_TRY(CHECK(c, section, ca_fields));
	copy(ca->name, sizeof ca->name, name);
	KR_TRY(path_of(c, section, "certificate", ca->certificate));
	KR_TRY(path_of(c, section, "chain", ca->chain));
	KR_TRY(path_of(c, section, "pin_file", ca->pin_file));
	KR_TRY(copy_value(c, section, "uri", ca->uri, sizeof ca->uri));
	KR_TRY(copy_value(c, section, "pin_env", ca->pin_env, sizeof ca->pin_env));
	ca->rsa_pss = kr_nconf_get_bool(c->conf, section, "rsa_pss", 0) == 1;
	long workers;
	KR_TRY(optional_long(c, section, "workers", 1, 64, 2, &workers));
	ca->workers = (int)workers;
	KR_TRY(kr_nconf_get_long(c->conf, section, "crl_next_update_days", 1, 366, &ca->crl_days));
	return name_list(c, section, "profiles", 1, ca->profiles, &ca->nprofiles);
}

/* A dotted object identifier (or nothing). */
static KR_MUST_USE kr_err oid_value(kr_config *c, const char *section, const char *key,
				    const char *v)
{
	if (!v[0])
		return kr_ok();
	ASN1_OBJECT *o = OBJ_txt2obj(v, 1);
	ERR_clear_error();
	ASN1_OBJECT_free(o);
	if (!o)
		return kr_nconf_err(c->conf, KR_EINPUT, section, key,
				    "'%s' is not an object identifier (dotted numbers)", v);
	return kr_ok();
}

static KR_MUST_USE kr_err load_signer(kr_config *c, const char *name, kr_signer_conf *sg)
{
	char section[80];
	snprintf(section, sizeof section, "signer_%.63s", name);
	KR_TRY(CHECK(c, section, signer_fields));
	copy(sg->name, sizeof sg->name, name);
	KR_TRY(path_of(c, section, "certificate", sg->certificate));
	KR_TRY(path_of(c, section, "pin_file", sg->pin_file));
	KR_TRY(copy_value(c, section, "uri", sg->uri, sizeof sg->uri));
	KR_TRY(copy_value(c, section, "pin_env", sg->pin_env, sizeof sg->pin_env));
	KR_TRY(copy_value(c, section, "ca", sg->ca, sizeof sg->ca));
	long workers;
	KR_TRY(optional_long(c, section, "workers", 1, 64, 2, &workers));
	sg->workers = (int)workers;
	const kr_ca_conf *ca = NULL;
	kr_err e = kr_config_ca(c, sg->ca, &ca);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, KR_EINPUT, section, "ca", "'%s' is not in cas = ...",
				    sg->ca);
	KR_TRY(copy_value(c, section, "package", sg->package, sizeof sg->package));
	KR_TRY(name_list(c, section, "hardware", 0, sg->hardware, &sg->nhardware));
	KR_TRY(oid_value(c, section, "package", sg->package));
	for (int i = 0; i < sg->nhardware; i++)
		KR_TRY(oid_value(c, section, "hardware", sg->hardware[i]));
	return kr_ok();
}

/* A DNS name from the file: syntax checked, no final dot, lower case. */
static KR_MUST_USE kr_err dns_value(kr_config *c, const char *section, const char *key, char *out,
				    size_t n)
{
	KR_TRY(copy_value(c, section, key, out, n));
	size_t len = strlen(out);
	if (len > 1 && out[len - 1] == '.')
		out[len - 1] = '\0';
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	kr_err e = out[0] ? kr_dns_name_check(out) : kr_ok();
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, KR_EINPUT, section, key, "%s", e.msg);
	return kr_ok();
}

static KR_MUST_USE kr_err tlsa_choice(kr_config *c, const char *section, const char *key,
				      const char *a, const char *b, int *is_b)
{
	const char *v = kr_nconf_get(c->conf, section, key);
	*is_b = v && strcmp(v, b) == 0;
	if (v && !*is_b && strcmp(v, a) != 0)
		return kr_nconf_err(c->conf, KR_EINPUT, section, key, "'%s': expected '%s' or '%s'",
				    v, a, b);
	return kr_ok();
}

static KR_MUST_USE kr_err load_zone(kr_config *c, const char *name, kr_zone_conf *z)
{
	char section[80];
	snprintf(section, sizeof section, "zone_%.63s", name);
	KR_TRY(CHECK(c, section, zone_fields));
	copy(z->name, sizeof z->name, name);
	KR_TRY(dns_value(c, section, "zone", z->apex, sizeof z->apex));
	KR_TRY(optional_long(c, section, "ttl", 60, 604800, 3600, &z->ttl));
	KR_TRY(optional_long(c, section, "server_port", 1, 65535, 443, &z->server_port));
	KR_TRY(tlsa_choice(c, section, "device_tlsa", "3 1 1", "3 0 0", &z->device_full));
	int zero = 0;
	KR_TRY(tlsa_choice(c, section, "rootcert_tlsa", "2 0 0", "0 0 0", &zero));
	z->rootcert_usage = zero ? 0 : 2;
	z->cert_records = kr_nconf_get_bool(c->conf, section, "cert_records", 0) == 1;
	z->nsec3 = kr_nconf_get_bool(c->conf, section, "nsec3", 1) == 1;
	z->rootcert = kr_nconf_get_bool(c->conf, section, "rootcert", 1) == 1;
	KR_TRY(dns_value(c, section, "ca_host", z->ca_host, sizeof z->ca_host));
	if (!z->ca_host[0]) /* draft-wilson-dane-pkix-cd: x._device.<zone> gives device.<zone> */
		snprintf(z->ca_host, sizeof z->ca_host, "device.%.240s", z->apex);
	KR_TRY(dns_value(c, section, "soa_mname", z->soa_mname, sizeof z->soa_mname));
	KR_TRY(dns_value(c, section, "soa_rname", z->soa_rname, sizeof z->soa_rname));
	char list[KR_MAX_LIST][64];
	KR_TRY(name_list(c, section, "ns", 0, list, &z->nns));
	for (int i = 0; i < z->nns; i++) {
		/* NAME or NAME=ADDRESS: a server inside the zone needs its address */
		char *eq = strchr(list[i], '=');
		if (eq)
			*eq = '\0';
		copy(z->ns[i], sizeof z->ns[i], list[i]);
		copy(z->ns_addr[i], sizeof z->ns_addr[i], eq ? eq + 1 : "");
		kr_err e = kr_dns_name_check(z->ns[i]);
		if (kr_failed(&e))
			return kr_nconf_err(c->conf, KR_EINPUT, section, "ns", "%s", e.msg);
		uint8_t a[16];
		if (eq && inet_pton(AF_INET, eq + 1, a) != 1 && inet_pton(AF_INET6, eq + 1, a) != 1)
			return kr_nconf_err(c->conf, KR_EINPUT, section, "ns",
					    "'%s': not an IPv4 or IPv6 address", eq + 1);
		if (kr_dns_name_within(z->ns[i], z->apex) && !eq)
			return kr_nconf_err(c->conf, KR_EINPUT, section, "ns",
					    "%s is inside the zone: give its address as %s=ADDRESS",
					    z->ns[i], z->ns[i]);
	}
	KR_TRY(copy_value(c, section, "ksk_uri", z->ksk_uri, sizeof z->ksk_uri));
	KR_TRY(copy_value(c, section, "zsk_uri", z->zsk_uri, sizeof z->zsk_uri));
	KR_TRY(path_of(c, section, "pin_file", z->pin_file));
	KR_TRY(copy_value(c, section, "pin_env", z->pin_env, sizeof z->pin_env));
	return kr_ok();
}

static KR_MUST_USE kr_err load_account(kr_config *c, const char *name, kr_account_conf *a)
{
	char section[80];
	snprintf(section, sizeof section, "account_%.63s", name);
	KR_TRY(CHECK(c, section, account_fields));
	copy(a->name, sizeof a->name, name);
	static const char *const kinds[] = {"operator", "owner", "asp", "mno"};
	const char *kind = kr_nconf_get(c->conf, section, "kind");
	size_t k = 0;
	while (k < sizeof kinds / sizeof *kinds && strcmp(kind, kinds[k]) != 0)
		k++;
	if (k == sizeof kinds / sizeof *kinds)
		return kr_nconf_err(c->conf, KR_EINPUT, section, "kind",
				    "'%s': one of operator, owner, asp, mno", kind);
	a->kind = (kr_account_kind)k;
	KR_TRY(dns_value(c, section, "endpoint", a->endpoint, sizeof a->endpoint));
	KR_TRY(optional_long(c, section, "port", 1, 65535, 443, &a->port));
	KR_TRY(copy_value(c, section, "protocol", a->protocol, sizeof a->protocol));
	if (!a->protocol[0])
		copy(a->protocol, sizeof a->protocol, "tls");
	KR_TRY(path_of(c, section, "server_certificate", a->server_certificate));
	if (a->kind != KR_ACCOUNT_ASP && (a->endpoint[0] || a->server_certificate[0]))
		return kr_nconf_err(c->conf, KR_EINPUT, section, "endpoint",
				    "only an ASP account has a service endpoint");
	return kr_ok();
}

/* trust_anchor: one or two DS records (RFC 4034 section 5.3), ';'
 * between them, each read by ldns. */
static KR_MUST_USE kr_err trust_anchors(kr_config *c, const char *section, kr_registry_conf *r)
{
	const char *v = kr_nconf_get(c->conf, section, "trust_anchor");
	if (!v)
		return kr_ok();
	char *list = strdup(v), *save = NULL;
	KR_ENSURE(list, KR_EINTERNAL, "out of memory");
	kr_err e = kr_ok();
	for (char *t = strtok_r(list, ";", &save); t && !kr_failed(&e);
	     t = strtok_r(NULL, ";", &save)) {
		while (isspace((unsigned char)*t))
			t++;
		ldns_rr *rr = NULL;
		ldns_status st = ldns_rr_new_frm_str(&rr, t, 0, NULL, NULL);
		if (st != LDNS_STATUS_OK || ldns_rr_get_type(rr) != LDNS_RR_TYPE_DS)
			e = kr_nconf_err(c->conf, KR_EINPUT, section, "trust_anchor",
					 "'%.80s': not a DS record (%s)", t,
					 st != LDNS_STATUS_OK ? ldns_get_errorstr_by_id(st)
							      : "another type");
		else if (r->ntrust_anchors == 2 || strlen(t) >= sizeof r->trust_anchors[0])
			e = kr_nconf_err(c->conf, KR_EINPUT, section, "trust_anchor",
					 "one or two DS records of at most 511 characters");
		else
			copy(r->trust_anchors[r->ntrust_anchors++], sizeof r->trust_anchors[0], t);
		ldns_rr_free(rr);
	}
	free(list);
	return e;
}

static KR_MUST_USE kr_err load_serve(kr_config *c, const char *section, kr_serve_conf *v)
{
	KR_TRY(CHECK(c, section, serve_fields));
	KR_TRY(copy_value(c, section, "address", v->address, sizeof v->address));
	if (!v->address[0])
		copy(v->address, sizeof v->address, "127.0.0.1");
	unsigned char a[16];
	if (inet_pton(AF_INET, v->address, a) != 1 && inet_pton(AF_INET6, v->address, a) != 1)
		return kr_nconf_err(c->conf, KR_EINPUT, section, "address",
				    "'%s': not an IPv4 or IPv6 address", v->address);
	KR_TRY(optional_long(c, section, "port", 1, 65535, 443, &v->port));
	KR_TRY(path_of(c, section, "certificate", v->certificate));
	KR_TRY(path_of(c, section, "key", v->key));
	KR_TRY(copy_value(c, section, "key_uri", v->key_uri, sizeof v->key_uri));
	KR_TRY(path_of(c, section, "pin_file", v->pin_file));
	KR_TRY(copy_value(c, section, "pin_env", v->pin_env, sizeof v->pin_env));
	if (!v->key[0] == !v->key_uri[0])
		return kr_nconf_err(c->conf, KR_EINPUT, section, "key",
				    "one of key (a PEM file) or key_uri (a key on a token)");
	const char *tls = kr_nconf_get(c->conf, section, "tls");
	if (tls && strcmp(tls, "1.3") != 0 && strcmp(tls, "1.2") != 0)
		return kr_nconf_err(c->conf, KR_EINPUT, section, "tls",
				    "'%s': 1.3 (the default) or 1.2 (1.2 and 1.3)", tls);
	v->tls12 = tls && !strcmp(tls, "1.2");
	KR_TRY(optional_long(c, section, "threads", 1, 256, 8, &v->threads));
	KR_TRY(optional_long(c, section, "max_body", 1024, 16 << 20, 1 << 20, &v->max_body));
	KR_TRY(optional_long(c, section, "max_headers", 4, 1000, 64, &v->max_headers));
	KR_TRY(optional_long(c, section, "timeout", 1, 3600, 10, &v->timeout));
	KR_TRY(optional_long(c, section, "rate", 1, 1000000, 1000, &v->rate));
	KR_TRY(optional_long(c, section, "burst", 1, 1000000, 2000, &v->burst));
	KR_TRY(optional_long(c, section, "batch", 1, 10000, 256, &v->batch));
	KR_TRY(path_of(c, section, "console", v->console));
	KR_TRY(copy_value(c, section, "dns", v->dns, sizeof v->dns));
	return kr_ok();
}

/* client_profile: the registry's CA issues it, to names (KR_ID_CN). */
static KR_MUST_USE kr_err client_profile(kr_config *c, const char *section, const kr_ca_conf *ca,
					 kr_registry_conf *r)
{
	KR_TRY(copy_value(c, section, "client_profile", r->client_profile,
			  sizeof r->client_profile));
	if (!r->client_profile[0])
		return kr_ok();
	const kr_profile *p = NULL;
	kr_err e = kr_config_profile(c, ca, r->client_profile, &p);
	if (!kr_failed(&e) && p->identity != KR_ID_CN)
		e = kr_errf(KR_EINPUT, "profile %s: a client profile has identity = cn", p->name);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, KR_EINPUT, section, "client_profile", "%s", e.msg);
	return kr_ok();
}

static KR_MUST_USE kr_err load_registry(kr_config *c, const char *section)
{
	kr_registry_conf *r = &c->registry;
	KR_TRY(CHECK(c, section, registry_fields));
	KR_TRY(copy_value(c, section, "ca", r->ca, sizeof r->ca));
	KR_TRY(copy_value(c, section, "profile", r->profile, sizeof r->profile));
	const kr_ca_conf *ca = NULL;
	const kr_profile *p = NULL;
	kr_err e = kr_config_ca(c, r->ca, &ca);
	if (!kr_failed(&e))
		e = kr_config_profile(c, ca, r->profile, &p);
	if (!kr_failed(&e) && p->identity != KR_ID_DEVICE)
		e = kr_errf(KR_EINPUT, "profile %s does not issue device identities", p->name);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, KR_EINPUT, section, "profile", "%s", e.msg);
	KR_TRY(optional_long(c, section, "auth_code_days", 1, 366, 14, &r->code_days));
	KR_TRY(optional_long(c, section, "auth_code_attempts", 1, 100, 5, &r->code_attempts));
	KR_TRY(optional_long(c, section, "transfer_auto_approve_days", 0, 60, 0,
			     &r->transfer_days));
	KR_TRY(optional_long(c, section, "delete_grace_days", 0, 366, 30, &r->grace_days));
	KR_TRY(copy_value(c, section, "payload_uri", r->payload_uri, sizeof r->payload_uri));
	KR_TRY(path_of(c, section, "payload_certificate", r->payload_certificate));
	KR_TRY(path_of(c, section, "pin_file", r->pin_file));
	KR_TRY(copy_value(c, section, "pin_env", r->pin_env, sizeof r->pin_env));
	KR_TRY(trust_anchors(c, section, r));
	KR_TRY(client_profile(c, section, ca, r));
	KR_TRY(copy_value(c, section, "enrollment_key", r->enrollment_key,
			  sizeof r->enrollment_key));
	const char *serve = kr_nconf_get(c->conf, section, "serve");
	if (serve) {
		KR_TRY(load_serve(c, serve, &r->serve));
		r->has_serve = 1;
	}
	if (!r->payload_uri[0] != !r->payload_certificate[0])
		return kr_nconf_err(c->conf, KR_EINPUT, section, "payload_uri",
				    "payload_uri and payload_certificate go together");
	/* the console is always an account */
	r->accounts[0] = (kr_account_conf){.name = "operator", .kind = KR_ACCOUNT_OPERATOR};
	char names[KR_MAX_LIST][64];
	int n = 0;
	KR_TRY(name_list(c, section, "accounts", 1, names, &n));
	r->naccounts = 1;
	for (int i = 0; i < n; i++) {
		const kr_account_conf *dup = NULL;
		kr_err d = kr_config_account(r, names[i], &dup);
		if (!kr_failed(&d))
			return kr_nconf_err(c->conf, KR_EINPUT, section, "accounts",
					    "%s: named twice (or is the built-in operator)",
					    names[i]);
		KR_TRY(load_account(c, names[i], &r->accounts[r->naccounts++]));
	}
	c->has_registry = 1;
	return kr_ok();
}

static KR_MUST_USE kr_err key_types(kr_config *c, const char *section, unsigned *out)
{
	char names[KR_MAX_LIST][64];
	int n = 0;
	KR_TRY(name_list(c, section, "key_types", 1, names, &n));
	*out = 0;
	for (int i = 0; i < n; i++) {
		kr_key_type t;
		kr_err e = kr_key_type_parse(names[i], &t);
		if (kr_failed(&e))
			return kr_nconf_err(c->conf, KR_EINPUT, section, "key_types", "%s", e.msg);
		*out |= 1u << t;
	}
	return kr_ok();
}

/* The placeholders a device name template may use. */
static KR_MUST_USE kr_err check_template(kr_config *c, const char *section, const char *t)
{
	static const char *const known[] = {"{device_id}", "{profile_id}", "{zone}"};
	for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
		int ok = 0;
		for (size_t i = 0; i < 3; i++)
			ok |= strncmp(p, known[i], strlen(known[i])) == 0;
		if (!ok)
			return kr_nconf_err(c->conf, KR_EINPUT, section, "name",
					    "unknown placeholder at '%.16s' ({device_id}, "
					    "{profile_id}, {zone})",
					    p);
	}
	KR_ENSURE(strstr(t, "{device_id}"), KR_EINPUT, "%s: [%s] name: must contain {device_id}",
		  kr_nconf_path(c->conf), section);
	return kr_ok();
}

static KR_MUST_USE kr_err identity(kr_config *c, const char *section, kr_profile *p)
{
	const char *id = kr_nconf_get(c->conf, section, "identity");
	const char *name = kr_nconf_get(c->conf, section, "name");
	const char *permitted = kr_nconf_get(c->conf, section, "permitted");
	if (strcmp(id, "device") == 0) {
		p->identity = KR_ID_DEVICE;
		if (!name)
			return kr_nconf_err(c->conf, KR_EINPUT, section, NULL,
					    "identity = device needs a name template");
		KR_TRY(copy_value(c, section, "name", p->name_template, sizeof p->name_template));
		KR_TRY(copy_value(c, section, "zone", p->zone, sizeof p->zone));
		KR_TRY(check_template(c, section, name));
		if (p->zone[0])
			KR_TRY(kr_dns_name_check(p->zone));
	} else if (strcmp(id, "dns") == 0) {
		p->identity = KR_ID_DNS;
		char list[KR_MAX_LIST][64];
		p->npermitted = permitted ? split(permitted, list, KR_MAX_LIST) : 0;
		if (p->npermitted <= 0)
			return kr_nconf_err(c->conf, KR_EINPUT, section, NULL,
					    "identity = dns needs permitted = domain, ...");
		for (int i = 0; i < p->npermitted; i++) {
			copy(p->permitted[i], sizeof p->permitted[i], list[i]);
			kr_err e = kr_dns_name_check(list[i]);
			if (kr_failed(&e))
				return kr_nconf_err(c->conf, KR_EINPUT, section, "permitted", "%s",
						    e.msg);
		}
		long max;
		KR_TRY(optional_long(c, section, "max_names", 1, 100, 8, &max));
		p->max_names = (int)max;
	} else if (strcmp(id, "cn") == 0) {
		p->identity = KR_ID_CN;
	} else {
		return kr_nconf_err(c->conf, KR_EINPUT, section, "identity",
				    "'%s': expected device, dns or cn", id);
	}
	return kr_ok();
}

static KR_MUST_USE kr_err honour(kr_config *c, const char *section, kr_profile *p)
{
	char list[KR_MAX_LIST][64];
	int n = 0;
	KR_TRY(name_list(c, section, "honour", 0, list, &n));
	for (int i = 0; i < n; i++) {
		if (strcmp(list[i], "keyUsage") == 0)
			p->honour_ku = 1;
		else if (strcmp(list[i], "extendedKeyUsage") == 0)
			p->honour_eku = 1;
		else
			return kr_nconf_err(c->conf, KR_EINPUT, section, "honour",
					    "'%s': a CSR may only ask for keyUsage or "
					    "extendedKeyUsage",
					    list[i]);
	}
	return kr_ok();
}

/* Every extension line must be one OpenSSL knows, and none may make a CA. */
static KR_MUST_USE kr_err check_extensions(kr_config *c, const char *section)
{
	STACK_OF(CONF_VALUE) *vals = NCONF_get_section(kr_nconf_nconf(c->conf), section);
	for (int i = 0; vals && i < sk_CONF_VALUE_num(vals); i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
		X509V3_CTX ctx;
		X509V3_set_ctx_test(&ctx);
		X509V3_set_nconf(&ctx, kr_nconf_nconf(c->conf));
		X509_EXTENSION *ext =
			X509V3_EXT_nconf(kr_nconf_nconf(c->conf), &ctx, v->name, v->value);
		if (!ext) {
			kr_err e = kr_err_ossl(KR_EINPUT, "bad extension");
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name, "%s", e.msg);
		}
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
		X509_EXTENSION_free(ext);
		if (nid == NID_subject_key_identifier || nid == NID_authority_key_identifier ||
		    nid == NID_subject_alt_name)
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name,
					    "keyrite sets this extension itself");
	}
	return kr_ok();
}

static KR_MUST_USE kr_err load_profile(kr_config *c, const char *name, kr_profile *p)
{
	char section[80];
	snprintf(section, sizeof section, "profile_%.63s", name);
	KR_TRY(CHECK(c, section, profile_fields));
	copy(p->name, sizeof p->name, name);
	KR_TRY(identity(c, section, p));
	KR_TRY(key_types(c, section, &p->key_types));
	KR_TRY(kr_nconf_get_long(c->conf, section, "validity_days", 1, 3650, &p->validity_days));
	KR_TRY(copy_value(c, section, "organization", p->organization, sizeof p->organization));
	KR_TRY(copy_value(c, section, "extensions", p->extensions, sizeof p->extensions));
	KR_TRY(honour(c, section, p));
	return check_extensions(c, p->extensions);
}

static int find_profile(const kr_config *c, const char *name)
{
	for (int i = 0; i < c->nprofiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return i;
	return -1;
}

static KR_MUST_USE kr_err load(kr_config *c)
{
	KR_TRY(CHECK(c, "keyrite", keyrite_fields));
	KR_TRY(store_of(c));
	if (kr_nconf_get(c->conf, "keyrite", "node"))
		KR_TRY(kr_nconf_get_long(c->conf, "keyrite", "node", 1, KR_CONFIG_NODE_MAX,
					 &c->node));
	char names[KR_MAX_LIST][64];
	KR_TRY(name_list(c, "keyrite", "cas", 1, names, &c->ncas));
	for (int i = 0; i < c->ncas; i++) {
		kr_ca_conf *ca = &c->cas[i];
		KR_TRY(load_ca(c, names[i], ca));
		for (int j = 0; j < ca->nprofiles; j++) {
			if (find_profile(c, ca->profiles[j]) >= 0)
				continue;
			KR_ENSURE(c->nprofiles < KR_MAX_LIST, KR_EINPUT, "%s: too many profiles",
				  kr_nconf_path(c->conf));
			KR_TRY(load_profile(c, ca->profiles[j], &c->profiles[c->nprofiles++]));
		}
	}
	KR_TRY(name_list(c, "keyrite", "signers", 0, names, &c->nsigners));
	for (int i = 0; i < c->nsigners; i++)
		KR_TRY(load_signer(c, names[i], &c->signers[i]));
	KR_TRY(name_list(c, "keyrite", "zones", 0, names, &c->nzones));
	for (int i = 0; i < c->nzones; i++)
		KR_TRY(load_zone(c, names[i], &c->zones[i]));
	const char *registry = kr_nconf_get(c->conf, "keyrite", "registry");
	if (registry)
		KR_TRY(load_registry(c, registry));
	return kr_nconf_check_unused(c->conf);
}

KR_MUST_USE kr_err kr_config_load(const char *path, kr_config **out)
{
	kr_config *c = calloc(1, sizeof *c);
	KR_ENSURE(c, KR_EINTERNAL, "out of memory");
	kr_err e = kr_nconf_load(path, &c->conf);
	if (!kr_failed(&e))
		e = load(c);
	if (kr_failed(&e)) {
		kr_config_free(c);
		return e;
	}
	*out = c;
	return kr_ok();
}

void kr_config_free(kr_config *c)
{
	if (!c)
		return;
	kr_nconf_free(c->conf);
	free(c);
}

KR_MUST_USE kr_err kr_config_registry(const kr_config *c, const kr_registry_conf **out)
{
	KR_ENSURE(c->has_registry, KR_EINPUT,
		  "%s: no registry ([keyrite] registry = SECTION, keyrite-ca(5))",
		  kr_nconf_path(c->conf));
	*out = &c->registry;
	return kr_ok();
}

KR_MUST_USE kr_err kr_config_account(const kr_registry_conf *r, const char *name,
				     const kr_account_conf **out)
{
	for (int i = 0; i < r->naccounts; i++)
		if (strcmp(r->accounts[i].name, name) == 0) {
			*out = &r->accounts[i];
			return kr_ok();
		}
	return kr_errf(KR_EINPUT, "no registry account '%s'", name);
}

const char *kr_config_store(const kr_config *c) { return c->store; }
int kr_config_node(const kr_config *c) { return (int)c->node; }
CONF *kr_config_nconf(kr_config *c) { return kr_nconf_nconf(c->conf); }

KR_MUST_USE kr_err kr_config_ca(const kr_config *c, const char *name, const kr_ca_conf **out)
{
	for (int i = 0; i < c->ncas; i++)
		if (strcmp(c->cas[i].name, name) == 0) {
			*out = &c->cas[i];
			return kr_ok();
		}
	return kr_errf(KR_EUSAGE, "%s: no CA named '%s' (cas = ...)", kr_nconf_path(c->conf), name);
}

KR_MUST_USE kr_err kr_config_signer(const kr_config *c, const char *name,
				    const kr_signer_conf **out)
{
	for (int i = 0; i < c->nsigners; i++)
		if (strcmp(c->signers[i].name, name) == 0) {
			*out = &c->signers[i];
			return kr_ok();
		}
	return kr_errf(KR_EUSAGE, "%s: no firmware signer named '%s' (signers = ...)",
		       kr_nconf_path(c->conf), name);
}

KR_MUST_USE kr_err kr_config_zone(const kr_config *c, const char *apex, const kr_zone_conf **out)
{
	size_t n = strlen(apex);
	if (n > 1 && apex[n - 1] == '.')
		n--;
	for (int i = 0; i < c->nzones; i++)
		if (strlen(c->zones[i].apex) == n && strncasecmp(c->zones[i].apex, apex, n) == 0) {
			*out = &c->zones[i];
			return kr_ok();
		}
	return kr_errf(KR_EUSAGE, "%s: no zone '%s' (zones = ..., [zone_NAME] zone = %s)",
		       kr_nconf_path(c->conf), apex, apex);
}

const kr_profile *kr_config_profile_named(const kr_config *c, const char *name)
{
	int i = find_profile(c, name);
	return i < 0 ? NULL : &c->profiles[i];
}

int kr_config_ncas(const kr_config *c) { return c->ncas; }
const kr_ca_conf *kr_config_ca_at(const kr_config *c, int i) { return &c->cas[i]; }

KR_MUST_USE kr_err kr_config_profile(const kr_config *c, const kr_ca_conf *ca, const char *name,
				     const kr_profile **out)
{
	int allowed = 0;
	for (int i = 0; i < ca->nprofiles; i++)
		allowed |= strcmp(ca->profiles[i], name) == 0;
	KR_ENSURE(allowed, KR_EUSAGE, "CA '%s' does not issue profile '%s'", ca->name, name);
	*out = &c->profiles[find_profile(c, name)];
	return kr_ok();
}

/* ---- names ------------------------------------------------------------------ */

static int ldh(char ch) { return isalnum((unsigned char)ch) || ch == '-'; }

KR_MUST_USE kr_err kr_device_id_check(const char *id)
{
	size_t n = strlen(id);
	KR_ENSURE(n >= 1 && n <= 63, KR_EPOLICY, "device id '%.70s' must be 1 to 63 characters",
		  id);
	for (size_t i = 0; i < n; i++)
		KR_ENSURE(ldh(id[i]), KR_EPOLICY,
			  "device id '%s' may hold only letters, digits and hyphens", id);
	KR_ENSURE(id[0] != '-' && id[n - 1] != '-', KR_EPOLICY,
		  "device id '%s' must not begin or end with a hyphen", id);
	return kr_ok();
}

KR_MUST_USE kr_err kr_dns_name_check(const char *name)
{
	size_t n = strlen(name);
	KR_ENSURE(n >= 1 && n <= 253, KR_EPOLICY, "DNS name of %zu octets (1 to 253)", n);
	const char *label = name;
	for (;;) {
		const char *dot = strchr(label, '.');
		size_t len = dot ? (size_t)(dot - label) : strlen(label);
		KR_ENSURE(len >= 1 && len <= 63, KR_EPOLICY,
			  "DNS name '%.80s': a label of %zu octets (1 to 63)", name, len);
		for (size_t i = 0; i < len; i++)
			KR_ENSURE(ldh(label[i]) || (i == 0 && label[i] == '_' && len > 1),
				  KR_EPOLICY, "DNS name '%.80s': character '%c' is not allowed",
				  name, label[i]);
		KR_ENSURE(label[0] != '-' && label[len - 1] != '-', KR_EPOLICY,
			  "DNS name '%.80s': a label begins or ends with '-'", name);
		if (!dot)
			break;
		label = dot + 1;
	}
	return kr_ok();
}

static void append(char *out, size_t outsz, size_t *o, const char *s)
{
	size_t n = strlen(s);
	if (*o + n < outsz)
		*o += (size_t)snprintf(out + *o, outsz - *o, "%s", s);
	else
		*o = outsz; /* marks overflow */
}

static int is_token(const char *t, size_t n, const char *literal)
{
	return strlen(literal) == n && memcmp(t, literal, n) == 0;
}

KR_MUST_USE kr_err kr_profile_device_name(const kr_profile *p, const char *device_id,
					  int64_t profile_id, char *out, size_t outsz)
{
	char pid[24];
	snprintf(pid, sizeof pid, "%lld", (long long)profile_id);
	size_t o = 0;
	for (const char *t = p->name_template; *t && o < outsz;) {
		if (*t == '{') {
			const char *end = strchr(t, '}');
			size_t n = end ? (size_t)(end - t + 1) : strlen(t);
			append(out, outsz, &o,
			       is_token(t, n, "{device_id}")    ? device_id
			       : is_token(t, n, "{profile_id}") ? pid
								: p->zone);
			t += n;
		} else {
			char ch[2] = {*t++, '\0'};
			append(out, outsz, &o, ch);
		}
	}
	KR_ENSURE(o < outsz, KR_EPOLICY, "device name for '%s' is too long", device_id);
	out[o] = '\0';
	return kr_dns_name_check(out);
}

KR_MUST_USE kr_err kr_profile_key_check(const kr_profile *p, kr_key_type t)
{
	KR_ENSURE(p->key_types & (1u << t), KR_EPOLICY, "key type %s is not allowed by profile %s",
		  kr_key_type_name(t), p->name);
	return kr_ok();
}

static KR_MUST_USE kr_err requested_names(const kr_profile *p, const kr_request_names *r)
{
	KR_ENSURE(r->nother == 0, KR_EPOLICY,
		  "SAN not permitted: %s (keyrite issues dNSNames only)",
		  r->nother ? r->other[0] : "");
	for (int i = 0; i < r->ndns; i++) {
		KR_ENSURE(p->identity == KR_ID_DNS, KR_EPOLICY,
			  "SAN not permitted: DNS:%.80s (profile %s names the %s itself)",
			  r->dns[i], p->name, p->identity == KR_ID_DEVICE ? "device" : "signer");
		kr_err e = kr_profile_permits(p, r->dns[i]);
		KR_ENSURE(!kr_failed(&e), KR_EPOLICY, "SAN not permitted: DNS:%.80s (%s)",
			  r->dns[i], e.msg);
	}
	return kr_ok();
}

static KR_MUST_USE kr_err device_identity(const kr_request_names *r, char *device_id, size_t idsz)
{
	const char *id = r->device_id ? r->device_id : r->cn;
	KR_ENSURE(id[0], KR_EPOLICY,
		  "no device id: the CSR has no common name and no manifest names the device");
	KR_TRY(kr_device_id_check(id));
	KR_ENSURE(!r->cn[0] || strcmp(r->cn, id) == 0, KR_EPOLICY,
		  "identity mismatch: the CSR's common name '%.64s' is not the device id '%.64s'",
		  r->cn, id);
	snprintf(device_id, idsz, "%s", id);
	return kr_ok();
}

KR_MUST_USE kr_err kr_profile_identity(const kr_profile *p, const kr_request_names *r,
				       char *device_id, size_t idsz, char *name, size_t namesz)
{
	KR_TRY(requested_names(p, r));
	switch (p->identity) {
	case KR_ID_DEVICE:
		return device_identity(r, device_id, idsz);
	case KR_ID_DNS:
		KR_ENSURE(r->ndns > 0, KR_EPOLICY, "no DNS names requested (subjectAltName)");
		KR_ENSURE(r->ndns <= p->max_names, KR_EPOLICY,
			  "too many names requested (%d, profile %s takes %d)", r->ndns, p->name,
			  p->max_names);
		snprintf(name, namesz, "%s", r->dns[0]);
		return kr_ok();
	case KR_ID_CN:
		KR_ENSURE(r->cn[0], KR_EPOLICY, "the subject has no common name");
		snprintf(name, namesz, "%s", r->cn);
		return kr_ok();
	}
	return kr_errf(KR_EINTERNAL, "unknown identity kind");
}

int kr_dns_name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), m = strlen(domain);
	return strcasecmp(name, domain) == 0 ||
	       (n > m && name[n - m - 1] == '.' && strcasecmp(name + n - m, domain) == 0);
}

KR_MUST_USE kr_err kr_profile_permits(const kr_profile *p, const char *dns)
{
	KR_ENSURE(dns[0] != '*', KR_EPOLICY, "wildcards are not issued");
	KR_TRY(kr_dns_name_check(dns));
	for (int i = 0; i < p->npermitted; i++)
		if (kr_dns_name_within(dns, p->permitted[i]))
			return kr_ok();
	return kr_errf(KR_EPOLICY, "not within profile %s's permitted domains", p->name);
}
