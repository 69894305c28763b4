/* The pre-issuance lint on certificates built in memory. */
#include "../../ca/build.h"
#include "../../ca/lint.h"
#include "../../ca/sign.h"
#include "../../util/cleanup.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

static CONF *conf_of(const char *text)
{
	CONF *c = NCONF_new(NULL);
	BIO *b = BIO_new_mem_buf(text, -1);
	long eline;
	cr_assert(NCONF_load_bio(c, b, &eline) > 0);
	BIO_free(b);
	return c;
}

static const char root_ext[] = "[ext]\nbasicConstraints = critical, CA:TRUE\n"
			       "keyUsage = critical, keyCertSign, cRLSign\n";

/* A certificate for a throwaway key of type t with the [ext] section of
 * conf_text, signed by a throwaway key (self-signed when issuer is NULL). */
static X509 *draft(const char *conf_text, kr_key_type t, long days, X509 *issuer)
{
	EVP_PKEY *key = NULL;
	KR_ASSERT_OK(kr_throwaway_key(t, &key));
	X509_NAME *name = X509_NAME_new();
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"Test", -1, -1,
				   0);
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	ASN1_INTEGER_set(serial, 0x1234567);
	CONF *conf = conf_of(conf_text);
	kr_cert_spec spec = {.subject = name,
			     .subject_key = key,
			     .issuer = issuer,
			     .serial = serial,
			     .not_before = time(NULL),
			     .days = days,
			     .conf = conf,
			     .ext_section = "ext"};
	X509 *x = NULL;
	KR_ASSERT_OK(kr_cert_draft(&spec, &x));
	kr_signing s;
	KR_ASSERT_OK(kr_signing_init_draft(&s, KR_KEY_EC_P256, 0));
	KR_ASSERT_OK(kr_sign_draft_cert(&s, x));
	kr_signing_clear(&s);
	NCONF_free(conf);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return x;
}

static void resign(X509 *x)
{
	kr_signing s;
	KR_ASSERT_OK(kr_signing_init_draft(&s, KR_KEY_EC_P256, 0));
	KR_ASSERT_OK(kr_sign_draft_cert(&s, x));
	kr_signing_clear(&s);
}

Test(lint, good_root_and_subca_pass)
{
	KR_AUTO(X509) root = draft(root_ext, KR_KEY_EC_P256, 3650, NULL);
	KR_ASSERT_OK(kr_lint_cert(root, NULL, KR_ROLE_ROOT, 1));
	KR_AUTO(X509)
	sub = draft("[ext]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n"
		    "keyUsage = critical, keyCertSign\n"
		    "nameConstraints = critical, permitted;DNS:.iotregistry.ca\n",
		    KR_KEY_EC_P384, 365, root);
	KR_ASSERT_OK(kr_lint_cert(sub, root, KR_ROLE_SUB_CA, 1));
}

Test(lint, ca_without_keycertsign)
{
	KR_AUTO(X509)
	x = draft("[ext]\nbasicConstraints = critical, CA:TRUE\n"
		  "keyUsage = critical, digitalSignature\n",
		  KR_KEY_EC_P256, 365, NULL);
	KR_ASSERT_ERR(kr_lint_cert(x, NULL, KR_ROLE_ROOT, 1), KR_EPOLICY,
		      "keyUsage must include keyCertSign");
}

Test(lint, basic_constraints_missing_or_not_critical)
{
	KR_AUTO(X509)
	x = draft("[ext]\nkeyUsage = critical, keyCertSign\n", KR_KEY_EC_P256, 365, NULL);
	KR_ASSERT_ERR(kr_lint_cert(x, NULL, KR_ROLE_ROOT, 1), KR_EPOLICY,
		      "critical basicConstraints with CA:TRUE");
	KR_AUTO(X509)
	y = draft("[ext]\nbasicConstraints = CA:TRUE\nkeyUsage = critical, "
		  "keyCertSign\n",
		  KR_KEY_EC_P256, 365, NULL);
	KR_ASSERT_ERR(kr_lint_cert(y, NULL, KR_ROLE_ROOT, 1), KR_EPOLICY,
		      "critical basicConstraints");
}

Test(lint, pathlen_and_name_constraints_rules)
{
	KR_AUTO(X509)
	x = draft("[ext]\nbasicConstraints = critical, CA:TRUE, pathlen:1\n"
		  "keyUsage = critical, cRLSign\n"
		  "nameConstraints = permitted;DNS:.example\n",
		  KR_KEY_EC_P256, 365, NULL);
	kr_err e = kr_lint_cert(x, NULL, KR_ROLE_ROOT, 1);
	cr_assert(strstr(e.msg, "pathLenConstraint without CA:TRUE and keyCertSign"), "%s", e.msg);
	cr_assert(strstr(e.msg, "nameConstraints must be critical"), "%s", e.msg);
}

Test(lint, serial_rules)
{
	KR_AUTO(X509) x = draft(root_ext, KR_KEY_EC_P256, 365, NULL);
	KR_AUTO(ASN1_INTEGER) neg = ASN1_INTEGER_new();
	ASN1_INTEGER_set(neg, -5);
	X509_set_serialNumber(x, neg);
	resign(x);
	KR_ASSERT_ERR(kr_lint_cert(x, NULL, KR_ROLE_ROOT, 1), KR_EPOLICY, "must be positive");
	KR_AUTO(BIGNUM) big = NULL;
	BN_hex2bn(&big, "7F0102030405060708090A0B0C0D0E0F1011121314"); /* 21 octets */
	KR_AUTO(ASN1_INTEGER) longer = BN_to_ASN1_INTEGER(big, NULL);
	X509_set_serialNumber(x, longer);
	resign(x);
	KR_ASSERT_ERR(kr_lint_cert(x, NULL, KR_ROLE_ROOT, 1), KR_EPOLICY, "longer than 20 octets");
}

Test(lint, duplicate_extension_and_weak_key)
{
	KR_AUTO(X509) x = draft(root_ext, KR_KEY_EC_P256, 365, NULL);
	X509_EXTENSION *ku = X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1));
	X509_add_ext(x, ku, -1);
	resign(x);
	KR_ASSERT_ERR(kr_lint_cert(x, NULL, KR_ROLE_ROOT, 1), KR_EPOLICY,
		      "extension keyUsage appears twice");

	KR_AUTO(X509) y = draft(root_ext, KR_KEY_EC_P256, 365, NULL);
	KR_AUTO(EVP_PKEY) weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	X509_set_pubkey(y, weak);
	resign(y);
	kr_err e = kr_lint_cert(y, NULL, KR_ROLE_ROOT, 1);
	cr_assert(strstr(e.msg, "RSA key of 1024 bits"), "%s", e.msg);
	cr_assert(strstr(e.msg, "not the SHA-1 of the key"), "%s", e.msg);
}

Test(lint, validity_order_and_issuer_rules)
{
	KR_AUTO(X509) root = draft(root_ext, KR_KEY_EC_P256, 30, NULL);
	KR_AUTO(X509) x = draft(root_ext, KR_KEY_EC_P256, 365, root);
	KR_ASSERT_ERR(kr_lint_cert(x, root, KR_ROLE_SUB_CA, 1), KR_EPOLICY,
		      "later than the issuer's notAfter");
	X509_time_adj_ex(X509_getm_notAfter(x), -2, 0, NULL);
	resign(x);
	KR_ASSERT_ERR(kr_lint_cert(x, root, KR_ROLE_SUB_CA, 1), KR_EPOLICY,
		      "notAfter is not after notBefore");
	/* The AKI names the issuer the draft was built for, not another CA. */
	KR_AUTO(X509) other = draft(root_ext, KR_KEY_EC_P256, 3650, NULL);
	KR_AUTO(X509) z = draft(root_ext, KR_KEY_EC_P256, 10, root);
	KR_ASSERT_ERR(kr_lint_cert(z, other, KR_ROLE_SUB_CA, 1), KR_EPOLICY,
		      "does not match the issuer's subjectKeyIdentifier");
}

Test(lint, key_identifiers_set_by_keyrite)
{
	KR_AUTO(X509) root = draft(root_ext, KR_KEY_EC_P256, 30, NULL);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(root);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(root);
	cr_assert(ski && aki && ASN1_OCTET_STRING_cmp(ski, aki) == 0,
		  "a root carries an AKI equal to its SKI");
	EVP_PKEY *key = NULL;
	KR_ASSERT_OK(kr_throwaway_key(KR_KEY_EC_P256, &key));
	X509_NAME *name = X509_NAME_new();
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"T", -1, -1,
				   0);
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	ASN1_INTEGER_set(serial, 1);
	CONF *conf = conf_of("[ext]\nsubjectKeyIdentifier = hash\n");
	kr_cert_spec spec = {.subject = name,
			     .subject_key = key,
			     .serial = serial,
			     .not_before = time(NULL),
			     .days = 1,
			     .conf = conf,
			     .ext_section = "ext"};
	X509 *x = NULL;
	KR_ASSERT_ERR(kr_cert_draft(&spec, &x), KR_EINPUT, "keyrite sets the key identifiers");
	NCONF_free(conf);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
}
