#include "build.h"
#include "../util/cleanup.h"

#include <string.h>

static KR_MUST_USE kr_err set_validity(X509 *x, time_t not_before, long days)
{
	/* ASN1_TIME_adj picks UTCTime through 2049 and GeneralizedTime after, as
	 * RFC 5280 section 4.1.2.5 requires. */
	KR_OSSL(ASN1_TIME_adj(X509_getm_notBefore(x), not_before, 0, 0) &&
			ASN1_TIME_adj(X509_getm_notAfter(x), not_before, (int)days, 0),
		KR_EINTERNAL, "setting validity");
	return kr_ok();
}

static KR_MUST_USE kr_err add_key_ids(X509 *x, X509 *issuer, const ASN1_OCTET_STRING *ski_override)
{
	KR_AUTO(ASN1_OCTET_STRING) ski = NULL;
	if (ski_override) {
		ski = ASN1_OCTET_STRING_dup(ski_override);
	} else {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned len = 0;
		KR_OSSL(X509_pubkey_digest(x, EVP_sha1(), md, &len), KR_EINTERNAL, "hashing key");
		ski = ASN1_OCTET_STRING_new();
		KR_OSSL(ski && ASN1_OCTET_STRING_set(ski, md, (int)len), KR_EINTERNAL, "SKI");
	}
	KR_OSSL(X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) > 0,
		KR_EINTERNAL, "adding subjectKeyIdentifier");

	const ASN1_OCTET_STRING *issuer_ski = issuer ? X509_get0_subject_key_id(issuer) : ski;
	KR_ENSURE(issuer_ski, KR_EPOLICY,
		  "the issuer certificate has no subjectKeyIdentifier to name in the "
		  "authorityKeyIdentifier");
	KR_AUTO(AUTHORITY_KEYID) aki = AUTHORITY_KEYID_new();
	KR_OSSL(aki, KR_EINTERNAL, "out of memory");
	aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
	KR_OSSL(aki->keyid && X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0,
						X509V3_ADD_DEFAULT) > 0,
		KR_EINTERNAL, "adding authorityKeyIdentifier");
	return kr_ok();
}

static KR_MUST_USE kr_err add_section(X509 *x, X509 *issuer, CONF *conf, const char *section)
{
	STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, section);
	KR_OSSL(vals, KR_EINPUT, "extension section [%s] is missing", section);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509V3_set_nconf(&ctx, conf);
	for (int i = 0; i < sk_CONF_VALUE_num(vals); i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
		int nid = OBJ_sn2nid(v->name);
		if (nid == NID_undef)
			nid = OBJ_ln2nid(v->name);
		KR_ENSURE(nid != NID_subject_key_identifier && nid != NID_authority_key_identifier,
			  KR_EINPUT,
			  "[%s] %s: keyrite sets the key identifiers itself (SHA-1 of the key, "
			  "RFC 5280 4.2.1.2 method 1); remove this line",
			  section, v->name);
		KR_AUTO(X509_EXTENSION) ext = X509V3_EXT_nconf(conf, &ctx, v->name, v->value);
		KR_OSSL(ext, KR_EINPUT, "[%s] %s = %s", section, v->name, v->value);
		KR_OSSL(X509_add_ext(x, ext, -1), KR_EINTERNAL, "adding %s", v->name);
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_cert_draft(const kr_cert_spec *spec, X509 **out)
{
	KR_AUTO(X509) x = X509_new();
	KR_OSSL(x, KR_EINTERNAL, "out of memory");
	const X509_NAME *issuer_name =
		spec->issuer ? X509_get_subject_name(spec->issuer) : spec->subject;
	KR_OSSL(X509_set_version(x, X509_VERSION_3) &&
			X509_set_serialNumber(x, (ASN1_INTEGER *)spec->serial) &&
			X509_set_subject_name(x, spec->subject) &&
			X509_set_issuer_name(x, issuer_name) &&
			X509_set_pubkey(x, spec->subject_key),
		KR_EINTERNAL, "building the certificate");
	KR_TRY(set_validity(x, spec->not_before, spec->days));
	KR_TRY(add_key_ids(x, spec->issuer, spec->ski));
	if (spec->ext_section)
		KR_TRY(add_section(x, spec->issuer, spec->conf, spec->ext_section));
	*out = x;
	x = NULL;
	return kr_ok();
}

static const struct {
	const char *name;
	int code;
} reasons[] = {
	{"unspecified", CRL_REASON_UNSPECIFIED},
	{"keyCompromise", CRL_REASON_KEY_COMPROMISE},
	{"cACompromise", CRL_REASON_CA_COMPROMISE},
	{"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
	{"superseded", CRL_REASON_SUPERSEDED},
	{"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
	{"certificateHold", CRL_REASON_CERTIFICATE_HOLD},
	{"privilegeWithdrawn", CRL_REASON_PRIVILEGE_WITHDRAWN},
	{"aACompromise", CRL_REASON_AA_COMPROMISE},
};

KR_MUST_USE kr_err kr_crl_reason_parse(const char *name, int *out)
{
	for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
		if (strcmp(reasons[i].name, name) == 0) {
			*out = reasons[i].code;
			return kr_ok();
		}
	return kr_errf(KR_EINPUT, "unknown revocation reason '%s' (RFC 5280 section 5.3.1)", name);
}

static KR_MUST_USE kr_err add_revoked(X509_CRL *crl, const kr_crl_entry *e)
{
	X509_REVOKED *r = X509_REVOKED_new();
	KR_OSSL(r, KR_EINTERNAL, "out of memory");
	KR_AUTO(ASN1_TIME) when = ASN1_TIME_adj(NULL, e->when, 0, 0);
	int ok = when && X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)e->serial) &&
		 X509_REVOKED_set_revocationDate(r, when);
	/* RFC 5280 5.3.1: the reasonCode unspecified SHOULD be absent. */
	if (ok && e->reason != CRL_REASON_NONE && e->reason != CRL_REASON_UNSPECIFIED) {
		ASN1_ENUMERATED *code = ASN1_ENUMERATED_new();
		ok = code && ASN1_ENUMERATED_set(code, e->reason) &&
		     X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, code, 0, 0) > 0;
		ASN1_ENUMERATED_free(code);
	}
	if (!ok || !X509_CRL_add0_revoked(crl, r)) {
		X509_REVOKED_free(r);
		return kr_err_ossl(KR_EINTERNAL, "adding a revoked certificate");
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_crl_draft(const kr_crl_spec *spec, X509_CRL **out)
{
	KR_AUTO(X509_CRL) crl = X509_CRL_new();
	KR_AUTO(ASN1_TIME) this_update = ASN1_TIME_adj(NULL, spec->this_update, 0, 0);
	KR_AUTO(ASN1_TIME)
	next_update = ASN1_TIME_adj(NULL, spec->this_update, (int)spec->next_update_days, 0);
	KR_AUTO(ASN1_INTEGER) number = ASN1_INTEGER_new();
	KR_OSSL(crl && this_update && next_update && number &&
			ASN1_INTEGER_set_int64(number, spec->number) &&
			X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
			X509_CRL_set_issuer_name(crl, X509_get_subject_name(spec->issuer)) &&
			X509_CRL_set1_lastUpdate(crl, this_update) &&
			X509_CRL_set1_nextUpdate(crl, next_update) &&
			X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) > 0,
		KR_EINTERNAL, "building the CRL");
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(spec->issuer);
	KR_ENSURE(ski, KR_EPOLICY, "the CRL issuer's certificate has no subjectKeyIdentifier");
	KR_AUTO(AUTHORITY_KEYID) aki = AUTHORITY_KEYID_new();
	KR_OSSL(aki && (aki->keyid = ASN1_OCTET_STRING_dup(ski)) &&
			X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0, 0) > 0,
		KR_EINTERNAL, "adding the CRL's authorityKeyIdentifier");
	for (size_t i = 0; i < spec->nrevoked; i++)
		KR_TRY(add_revoked(crl, &spec->revoked[i]));
	KR_OSSL(X509_CRL_sort(crl), KR_EINTERNAL, "sorting the CRL");
	*out = crl;
	crl = NULL;
	return kr_ok();
}
