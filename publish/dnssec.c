/* DNSSEC signing of the published zone with ldns, the KSK and ZSK staying
 * on the token: ldns signs through their EVP_PKEYs, whose private-key
 * operation is a C_Sign (hsm/evp.c). Keys that come from outside ldns have
 * no flags, owner or key tag until they are given (reference section 4). */
#include "internal.h"

#include <string.h>
#include <time.h>

#define SIGNATURE_DAYS 30

typedef struct zone_keys {
	kr_hsm *hsm[2];
	ldns_key_list *keys;
} zone_keys;

static kr_err open_token(const kr_zone_conf *z, const kr_hsm_opts *hsm, const char *uri,
			 kr_hsm **out)
{
	kr_hsm_opts o = hsm ? *hsm : (kr_hsm_opts){0};
	if (z->pin_file[0] || z->pin_env[0]) {
		o.pin.file = z->pin_file[0] ? z->pin_file : NULL;
		o.pin.env = z->pin_env[0] ? z->pin_env : NULL;
	}
	return kr_hsm_open(uri, &o, out);
}

/* One key: ECDSA P-256 (algorithm 13) or P-384 (14), as RFC 6605 defines. */
static kr_err zone_key(kr_hsm *h, const char *uri, const kr_zone_conf *z, uint16_t flags,
		       ldns_dnssec_zone *zone, ldns_key **out)
{
	kr_hsm_key *k = NULL;
	KR_TRY(kr_hsm_key_find(h, uri, &k));
	kr_key_type t = kr_hsm_key_type(k);
	EVP_PKEY *evp = NULL;
	kr_err e = t == KR_KEY_EC_P256 || t == KR_KEY_EC_P384
			   ? kr_hsm_key_evp(h, k, &evp)
			   : kr_errf(KR_EINPUT, "%s: a %s key; DNSSEC keys are ec-p256 or ec-p384",
				     uri, kr_key_type_name(t));
	kr_hsm_key_free(k);
	KR_TRY(e);
	ldns_key *key = ldns_key_new();
	if (!key) {
		EVP_PKEY_free(evp);
		return kr_errf(KR_EINTERNAL, "out of memory");
	}
	ldns_key_set_algorithm(key, t == KR_KEY_EC_P256 ? LDNS_SIGN_ECDSAP256SHA256
							: LDNS_SIGN_ECDSAP384SHA384);
	ldns_key_set_evp_key(key, evp);
	ldns_key_set_flags(key, flags);
	char apex[260];
	snprintf(apex, sizeof apex, "%s.", z->apex);
	ldns_key_set_pubkey_owner(key, ldns_dname_new_frm_str(apex));
	time_t now = time(NULL);
	ldns_key_set_inception(key, (uint32_t)(now - 3600)); /* clocks drift */
	ldns_key_set_expiration(key, (uint32_t)(now + SIGNATURE_DAYS * 86400));
	ldns_rr *dnskey = ldns_key2rr(key);
	ldns_status st = LDNS_STATUS_MEM_ERR;
	if (dnskey) {
		ldns_rr_set_ttl(dnskey, (uint32_t)z->ttl);
		ldns_key_set_keytag(key, ldns_calc_keytag(dnskey));
		st = ldns_dnssec_zone_add_rr(zone, dnskey);
	}
	if (st != LDNS_STATUS_OK) {
		ldns_rr_free(dnskey);
		ldns_key_deep_free(key);
		return kr_ldns_err(st, KR_EINTERNAL, "adding the DNSKEY of", uri);
	}
	*out = key;
	return kr_ok();
}

static void ds(const ldns_key *ksk, ldns_dnssec_zone *zone, kr_publish_summary *sum)
{
	ldns_rr *dnskey = ldns_key2rr(ksk);
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
	(void)zone;
}

static kr_err sign(ldns_dnssec_zone *zone, ldns_key_list *keys, int nsec3)
{
	ldns_rr_list *added = ldns_rr_list_new();
	KR_ENSURE(added, KR_EINTERNAL, "out of memory");
	/* NSEC3 without iterations or salt (RFC 9276 section 3.1), or NSEC */
	ldns_status st =
		nsec3 ? ldns_dnssec_zone_sign_nsec3(zone, added, keys,
						    ldns_dnssec_default_replace_signatures, NULL,
						    LDNS_SHA1, 0, 0, 0, NULL)
		      : ldns_dnssec_zone_sign(zone, added, keys,
					      ldns_dnssec_default_replace_signatures, NULL);
	ldns_rr_list_free(added);
	unsigned long ossl = ERR_peek_error();
	KR_ENSURE(st == LDNS_STATUS_OK, KR_EHSM, "signing the zone: %s%s%s",
		  ldns_get_errorstr_by_id(st), ossl ? ": " : "",
		  ossl ? ERR_reason_error_string(ossl) : "");
	return kr_ok();
}

kr_err kr_publish_sign(const kr_zone_conf *z, const kr_hsm_opts *hsm, ldns_dnssec_zone *zone,
		       kr_publish_summary *sum)
{
	KR_ENSURE(z->ksk_uri[0] && z->zsk_uri[0], KR_EUSAGE,
		  "zone %s: --sign needs ksk_uri and zsk_uri in [zone_%s]", z->apex, z->name);
	char ksk_token[33], zsk_token[33];
	KR_TRY(kr_hsm_uri_token_label(z->ksk_uri, ksk_token));
	KR_TRY(kr_hsm_uri_token_label(z->zsk_uri, zsk_token));
	zone_keys k = {{NULL, NULL}, ldns_key_list_new()};
	KR_ENSURE(k.keys, KR_EINTERNAL, "out of memory");
	ldns_key *ksk = NULL, *zsk = NULL;
	kr_err e = open_token(z, hsm, z->ksk_uri, &k.hsm[0]);
	if (!kr_failed(&e) && strcmp(ksk_token, zsk_token) != 0)
		e = open_token(z, hsm, z->zsk_uri, &k.hsm[1]);
	kr_hsm *zh = k.hsm[1] ? k.hsm[1] : k.hsm[0];
	/* flags 257: zone key and secure entry point; 256: zone key (RFC 4034 2.1.1) */
	if (!kr_failed(&e))
		e = zone_key(k.hsm[0], z->ksk_uri, z, 257, zone, &ksk);
	if (!kr_failed(&e))
		ldns_key_list_push_key(k.keys, ksk);
	if (!kr_failed(&e))
		e = zone_key(zh, z->zsk_uri, z, 256, zone, &zsk);
	if (!kr_failed(&e))
		ldns_key_list_push_key(k.keys, zsk);
	if (!kr_failed(&e))
		e = sign(zone, k.keys, z->nsec3);
	if (!kr_failed(&e))
		ds(ksk, zone, sum);
	ldns_key_list_free(k.keys); /* the keys, EVP_PKEYs and their sessions with them */
	kr_hsm_close(k.hsm[1]);
	kr_hsm_close(k.hsm[0]);
	return e;
}
