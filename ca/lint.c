#include "lint.h"
#include "../util/cleanup.h"

#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct findings {
	char text[KR_ERR_MSG - 64];
	int n;
} findings;

static void add(findings *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(findings *f, const char *fmt, ...)
{
	size_t used = strlen(f->text);
	if (used + 8 >= sizeof f->text)
		return;
	used += (size_t)snprintf(f->text + used, sizeof f->text - used, "%s(%d) ", f->n ? "; " : "",
				 f->n + 1);
	va_list ap;
	va_start(ap, fmt);
	if (used < sizeof f->text)
		vsnprintf(f->text + used, sizeof f->text - used, fmt, ap);
	va_end(ap);
	f->n++;
}

static KR_MUST_USE kr_err verdict(const findings *f, const char *what)
{
	KR_ENSURE(f->n == 0, KR_EPOLICY, "pre-issuance lint refused the %s: %s", what, f->text);
	return kr_ok();
}

/* RFC 5280 4.1.2.2: positive, at most 20 octets. */
static void lint_serial(findings *f, const ASN1_INTEGER *serial)
{
	KR_AUTO(BIGNUM) bn = ASN1_INTEGER_to_BN(serial, NULL);
	if (!bn || BN_is_negative(bn) || BN_is_zero(bn))
		add(f, "serial number must be positive (RFC 5280 4.1.2.2)");
	else if (BN_num_bits(bn) / 8 + 1 > 20)
		add(f, "serial number is longer than 20 octets (RFC 5280 4.1.2.2)");
}

/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
static void lint_time(findings *f, const ASN1_TIME *t, const char *name)
{
	struct tm tm;
	if (!ASN1_TIME_to_tm(t, &tm)) {
		add(f, "%s is not a valid time", name);
		return;
	}
	int want = tm.tm_year + 1900 < 2050 ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME;
	if (ASN1_STRING_type(t) != want)
		add(f, "%s uses the wrong time encoding for its year (RFC 5280 4.1.2.5)", name);
}

static void lint_validity(findings *f, X509 *x)
{
	lint_time(f, X509_get0_notBefore(x), "notBefore");
	lint_time(f, X509_get0_notAfter(x), "notAfter");
	if (ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notAfter(x)) >= 0)
		add(f, "notAfter is not after notBefore");
}

/* RFC 5280 appendix A upper bounds; countryName is two PrintableString
 * letters; everything else PrintableString or UTF8String (4.1.2.6). */
static void lint_name(findings *f, const X509_NAME *name, const char *which)
{
	if (X509_NAME_entry_count(name) == 0) {
		add(f, "%s name is empty", which);
		return;
	}
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne));
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(ne);
		int len = ASN1_STRING_length(v), type = ASN1_STRING_type(v);
		const char *sn = OBJ_nid2sn(nid) ? OBJ_nid2sn(nid) : "attribute";
		int max = nid == NID_countryName                                        ? 2
			  : (nid == NID_localityName || nid == NID_stateOrProvinceName) ? 128
											: 64;
		if (len == 0)
			add(f, "%s %s is empty", which, sn);
		if (len > max)
			add(f, "%s %s is longer than %d (RFC 5280 appendix A)", which, sn, max);
		if (nid == NID_countryName && (type != V_ASN1_PRINTABLESTRING || len != 2))
			add(f, "%s countryName must be two letters as PrintableString", which);
		else if (type != V_ASN1_PRINTABLESTRING && type != V_ASN1_UTF8STRING)
			add(f, "%s %s must be PrintableString or UTF8String", which, sn);
	}
}

static void lint_duplicates(findings *f, X509 *x)
{
	int n = X509_get_ext_count(x);
	for (int i = 0; i < n; i++) {
		X509_EXTENSION *e = X509_get_ext(x, i);
		const ASN1_OBJECT *o = X509_EXTENSION_get_object(e);
		for (int j = i + 1; j < n; j++)
			if (OBJ_cmp(o, X509_EXTENSION_get_object(X509_get_ext(x, j))) == 0)
				add(f, "extension %s appears twice (RFC 5280 4.2)",
				    OBJ_nid2sn(OBJ_obj2nid(o)));
		if (X509_EXTENSION_get_critical(e) && !X509_supported_extension(e))
			add(f, "critical extension %s is not one a verifier is sure to know",
			    OBJ_nid2sn(OBJ_obj2nid(o)));
	}
}

static int ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	return i >= 0 ? X509_EXTENSION_get_critical(X509_get_ext(x, i)) : -1;
}

/* basicConstraints, keyUsage and nameConstraints (RFC 5280 4.2.1.3, 4.2.1.9,
 * 4.2.1.10). */
static void lint_ca_extensions(findings *f, X509 *x, int is_ca)
{
	uint32_t flags = X509_get_extension_flags(x);
	int bc_crit = ext_critical(x, NID_basic_constraints);
	int ku_crit = ext_critical(x, NID_key_usage);
	uint32_t ku = X509_get_key_usage(x);
	if (is_ca) {
		if (bc_crit != 1 || !(flags & EXFLAG_CA))
			add(f, "a CA needs a critical basicConstraints with CA:TRUE");
		if (ku_crit != 1)
			add(f, "a CA needs a critical keyUsage");
		else if (!(ku & KU_KEY_CERT_SIGN))
			add(f, "a CA's keyUsage must include keyCertSign");
	} else if (flags & EXFLAG_CA) {
		add(f, "CA:TRUE in a certificate that is not a CA's");
	}
	if (ku_crit >= 0 && (ku & KU_KEY_CERT_SIGN) && !(flags & EXFLAG_CA))
		add(f, "keyCertSign without basicConstraints CA:TRUE (RFC 5280 4.2.1.9)");
	if (ku_crit >= 0 && ku == 0)
		add(f, "keyUsage asserts no usage");
	long pathlen = X509_get_pathlen(x);
	if (pathlen >= 0 && !(is_ca && (ku & KU_KEY_CERT_SIGN)))
		add(f, "pathLenConstraint without CA:TRUE and keyCertSign (RFC 5280 4.2.1.9)");
	int nc_crit = ext_critical(x, NID_name_constraints);
	if (nc_crit >= 0 && !is_ca)
		add(f, "nameConstraints in a certificate that is not a CA's");
	if (nc_crit == 0)
		add(f, "nameConstraints must be critical (RFC 5280 4.2.1.10)");
	if (ext_critical(x, NID_ext_key_usage) >= 0 && !(flags & EXFLAG_XKUSAGE))
		add(f, "extendedKeyUsage could not be decoded");
}

/* A CA that may issue TLS server certificates does not also vouch for code,
 * mail, time stamps or OCSP responses, and anyExtendedKeyUsage stands alone
 * (CA/B BR 7.1.2.2 (g); what zlint's e_ca_invalid_eku checks). */
static void lint_ca_eku(findings *f, X509 *x)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	int n = eku ? sk_ASN1_OBJECT_num(eku) : 0, server = 0, any = 0, other = NID_undef;
	for (int i = 0; i < n; i++) {
		int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
		server |= nid == NID_server_auth;
		any |= nid == NID_anyExtendedKeyUsage;
		if (nid == NID_code_sign || nid == NID_email_protect || nid == NID_time_stamp ||
		    nid == NID_OCSP_sign)
			other = nid;
	}
	EXTENDED_KEY_USAGE_free(eku);
	if (any && n > 1)
		add(f, "anyExtendedKeyUsage must stand alone in a CA's extendedKeyUsage (CA/B BR "
		       "7.1.2.2)");
	if (server && other != NID_undef)
		add(f,
		    "a CA's extendedKeyUsage with serverAuth must not include %s: give code, mail, "
		    "time stamps and OCSP a CA of their own (CA/B BR 7.1.2.2)",
		    OBJ_nid2sn(other));
}

static void lint_key_ids(findings *f, X509 *x, X509 *issuer, int check_method)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	if (!ski)
		add(f, "subjectKeyIdentifier missing (RFC 5280 4.2.1.2)");
	if (ext_critical(x, NID_subject_key_identifier) == 1 ||
	    ext_critical(x, NID_authority_key_identifier) == 1)
		add(f, "key identifier extensions must not be critical");
	if (ski && check_method) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned len = 0;
		X509_pubkey_digest(x, EVP_sha1(), md, &len);
		if ((unsigned)ASN1_STRING_length(ski) != len ||
		    memcmp(ASN1_STRING_get0_data(ski), md, len) != 0)
			add(f, "subjectKeyIdentifier is not the SHA-1 of the key (RFC 5280 "
			       "4.2.1.2 method 1), which DANE PKIX discovery relies on");
	}
	/* Every certificate, the root included, names its issuer's key, so a
	 * client can walk AKI -> .well-known/ca/<AKI>.pem to the root. */
	const ASN1_OCTET_STRING *want = issuer ? X509_get0_subject_key_id(issuer) : ski;
	if (!aki)
		add(f, "authorityKeyIdentifier with a key identifier missing");
	else if (!want || ASN1_OCTET_STRING_cmp(aki, want) != 0)
		add(f, "authorityKeyIdentifier does not match the issuer's subjectKeyIdentifier");
}

static void lint_key(findings *f, X509 *x)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	kr_key_type t;
	kr_err e = pub ? kr_key_type_of(pub, &t) : kr_errf(KR_EPOLICY, "no public key");
	if (kr_failed(&e))
		add(f, "subject key: %s", e.msg);
}

KR_MUST_USE kr_err kr_lint_cert(X509 *x, X509 *issuer, kr_cert_role role, int check_ski_method)
{
	findings f = {"", 0};
	if (X509_get_version(x) != X509_VERSION_3)
		add(&f, "version must be 3 when extensions are present");
	lint_serial(&f, X509_get0_serialNumber(x));
	lint_validity(&f, x);
	lint_name(&f, X509_get_subject_name(x), "subject");
	const X509_NAME *want_issuer =
		issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x);
	if (X509_NAME_cmp(X509_get_issuer_name(x), want_issuer) != 0)
		add(&f, "issuer name differs from the issuer's subject name");
	const X509_ALGOR *outer = NULL;
	X509_get0_signature(NULL, &outer, x);
	if (X509_ALGOR_cmp(outer, X509_get0_tbs_sigalg(x)) != 0)
		add(&f, "the two signature algorithm fields differ (RFC 5280 4.1.1.2)");
	const ASN1_BIT_STRING *iuid = NULL, *suid = NULL;
	X509_get0_uids(x, &iuid, &suid);
	if (iuid || suid)
		add(&f, "unique identifiers must not be used (RFC 5280 4.1.2.8)");
	lint_duplicates(&f, x);
	int is_ca = role == KR_ROLE_ROOT || role == KR_ROLE_SUB_CA || role == KR_ROLE_CROSS;
	lint_ca_extensions(&f, x, is_ca);
	if (is_ca)
		lint_ca_eku(&f, x);
	lint_key_ids(&f, x, issuer, check_ski_method);
	lint_key(&f, x);
	if (issuer && !(X509_get_key_usage(issuer) & KU_KEY_CERT_SIGN))
		add(&f, "the issuer's keyUsage lacks keyCertSign");
	if (issuer && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0)
		add(&f, "notAfter is later than the issuer's notAfter");
	NAME_CONSTRAINTS *nc =
		issuer ? X509_get_ext_d2i(issuer, NID_name_constraints, NULL, NULL) : NULL;
	if (nc && NAME_CONSTRAINTS_check(x, nc) != X509_V_OK)
		add(&f, "a name is outside the issuer's name constraints (RFC 5280 4.2.1.10)");
	NAME_CONSTRAINTS_free(nc);
	return verdict(&f, "certificate");
}

KR_MUST_USE kr_err kr_lint_crl(X509_CRL *crl, X509 *issuer)
{
	findings f = {"", 0};
	if (X509_CRL_get_version(crl) != X509_CRL_VERSION_2)
		add(&f, "CRL version must be 2 (RFC 5280 5.1.2.1)");
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0)
		add(&f, "CRL issuer differs from the CA's subject");
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	if (!next || ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl), next) >= 0)
		add(&f, "nextUpdate must be present and after thisUpdate (RFC 5280 5.1.2.5)");
	int crit = -1;
	KR_AUTO(ASN1_INTEGER) number = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	if (!number || crit != 0)
		add(&f, "cRLNumber must be present and not critical (RFC 5280 5.2.3)");
	else
		lint_serial(&f, number);
	KR_AUTO(AUTHORITY_KEYID)
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	if (!aki || !aki->keyid || !ski || ASN1_OCTET_STRING_cmp(aki->keyid, ski) != 0)
		add(&f, "authorityKeyIdentifier must name the issuer's key (RFC 5280 5.2.1)");
	if (!(X509_get_key_usage(issuer) & KU_CRL_SIGN))
		add(&f, "the issuer's keyUsage lacks cRLSign");
	return verdict(&f, "CRL");
}
