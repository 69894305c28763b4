#include "policy.h"
#include "../util/nconf.h"

#include <stdlib.h>
#include <string.h>

/* Defaults: a root lives at most 25 years, an intermediate or cross
 * certificate 10, a CA's CRL is reissued at least yearly. RSA-2048 is not
 * offered for CA keys that must outlive 2030 (NIST SP 800-131A). */
/* End-entity validity is the profile's (keyrite-ca(5)), not capped here. */
struct kr_policy {
	long max_days[KR_ROLE_LEAF];
	unsigned ca_key_types; /* bit per kr_key_type */
};

static const char *const role_names[] = {"root", "sub-CA", "cross-certificate", "CRL",
					 "end-entity certificate"};
const char *kr_role_name(kr_cert_role r) { return role_names[r]; }

static const kr_field policy_fields[] = {
	{"root_max_days", KR_F_INT, 0},   {"sub_ca_max_days", KR_F_INT, 0},
	{"cross_max_days", KR_F_INT, 0},  {"crl_max_days", KR_F_INT, 0},
	{"ca_key_types", KR_F_STRING, 0},
};

static KR_MUST_USE kr_err parse_key_types(kr_nconf *c, const char *list, unsigned *out)
{
	char *copy = strdup(list), *save = NULL;
	KR_ENSURE(copy, KR_EINTERNAL, "out of memory");
	*out = 0;
	kr_err e = kr_ok();
	for (char *t = strtok_r(copy, ", ", &save); t && !kr_failed(&e);
	     t = strtok_r(NULL, ", ", &save)) {
		kr_key_type kt;
		e = kr_key_type_parse(t, &kt);
		if (kr_failed(&e))
			e = kr_nconf_err(c, KR_EINPUT, "ceremony", "ca_key_types", "%s", e.msg);
		*out |= 1u << kt;
	}
	free(copy);
	return e;
}

static KR_MUST_USE kr_err load_file(kr_policy *p, const char *path)
{
	kr_nconf *c = NULL;
	KR_TRY(kr_nconf_load(path, &c));
	static const char *const keys[] = {"root_max_days", "sub_ca_max_days", "cross_max_days",
					   "crl_max_days"};
	kr_err e = kr_nconf_check(c, "ceremony", policy_fields,
				  sizeof policy_fields / sizeof *policy_fields);
	for (size_t i = 0; i < 4 && !kr_failed(&e); i++)
		if (kr_nconf_get(c, "ceremony", keys[i]))
			e = kr_nconf_get_long(c, "ceremony", keys[i], 1, 36525, &p->max_days[i]);
	const char *types = kr_failed(&e) ? NULL : kr_nconf_get(c, "ceremony", "ca_key_types");
	if (types)
		e = parse_key_types(c, types, &p->ca_key_types);
	if (!kr_failed(&e))
		e = kr_nconf_check_unused(c);
	kr_nconf_free(c);
	return e;
}

KR_MUST_USE kr_err kr_policy_load(const char *path, kr_policy **out)
{
	kr_policy *p = calloc(1, sizeof *p);
	KR_ENSURE(p, KR_EINTERNAL, "out of memory");
	p->max_days[KR_ROLE_ROOT] = 9132;
	p->max_days[KR_ROLE_SUB_CA] = 3653;
	p->max_days[KR_ROLE_CROSS] = 3653;
	p->max_days[KR_ROLE_CRL] = 366;
	p->ca_key_types = 1u << KR_KEY_EC_P256 | 1u << KR_KEY_EC_P384 | 1u << KR_KEY_RSA_3072 |
			  1u << KR_KEY_RSA_4096 | 1u << KR_KEY_ED25519;
	kr_err e = path ? load_file(p, path) : kr_ok();
	if (kr_failed(&e)) {
		free(p);
		return e;
	}
	*out = p;
	return kr_ok();
}

void kr_policy_free(kr_policy *p) { free(p); }

long kr_policy_max_days(const kr_policy *p, kr_cert_role r)
{
	return r < KR_ROLE_LEAF ? p->max_days[r] : 0;
}

KR_MUST_USE kr_err kr_policy_check_days(const kr_policy *p, kr_cert_role r, long days)
{
	KR_ENSURE(r < KR_ROLE_LEAF, KR_EINTERNAL, "no ceremony cap for a %s", kr_role_name(r));
	KR_ENSURE(days >= 1, KR_EPOLICY, "a %s must be valid for at least one day",
		  kr_role_name(r));
	KR_ENSURE(days <= p->max_days[r], KR_EPOLICY,
		  "%ld days exceeds the policy cap of %ld days for a %s", days, p->max_days[r],
		  kr_role_name(r));
	return kr_ok();
}

KR_MUST_USE kr_err kr_policy_check_ca_key(const kr_policy *p, kr_key_type t)
{
	KR_ENSURE(p->ca_key_types & (1u << t), KR_EPOLICY,
		  "policy does not allow %s keys for certificate authorities", kr_key_type_name(t));
	return kr_ok();
}
