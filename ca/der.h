/* keyrite's ASN.1 structures, declared with OpenSSL's template machinery.
 * They carry some parts as already-encoded values (ASN1_ANY), which is what
 * lets keyrite sign exactly the bytes it linted, and parse requests and build
 * certificates without OpenSSL 3's slow public-key decoding. */
#ifndef KR_CA_DER_H
#define KR_CA_DER_H

#include <openssl/asn1t.h>
#include <openssl/x509.h>

/* Certificate, CertificateList, CertificationRequest: RFC 5280 4.1, 5.1;
 * RFC 2986 4.2. */
typedef struct kr_signed_st {
	ASN1_TYPE *tbs;
	X509_ALGOR *alg;
	ASN1_BIT_STRING *sig;
} KR_SIGNED;
DECLARE_ASN1_ITEM(KR_SIGNED)

/* SubjectPublicKeyInfo, undecoded: RFC 5280 4.1.2.7. */
typedef struct kr_spki_st {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} KR_SPKI;
DECLARE_ASN1_ITEM(KR_SPKI)

/* CertificationRequestInfo: RFC 2986 4.1. */
typedef struct kr_req_info_st {
	ASN1_INTEGER *version;
	X509_NAME *subject;
	KR_SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) * attributes;
} KR_REQ_INFO;
DECLARE_ASN1_ITEM(KR_REQ_INFO)

/* CertTemplate: RFC 4211 5 (CRMF), as a CMP ir, cr or kur carries it;
 * the validity and unique ids are read only to be skipped. */
typedef struct kr_opt_validity_st {
	ASN1_TIME *not_before, *not_after;
} KR_OPT_VALIDITY;
DECLARE_ASN1_ITEM(KR_OPT_VALIDITY)

typedef struct kr_cert_template_st {
	ASN1_INTEGER *version, *serial;
	X509_ALGOR *signing_alg;
	X509_NAME *issuer;
	KR_OPT_VALIDITY *validity;
	X509_NAME *subject;
	KR_SPKI *spki;
	ASN1_BIT_STRING *issuer_uid, *subject_uid;
	STACK_OF(X509_EXTENSION) * extensions;
} KR_CERT_TEMPLATE;
DECLARE_ASN1_ITEM(KR_CERT_TEMPLATE)

typedef struct kr_validity_st {
	ASN1_TIME *not_before, *not_after;
} KR_VALIDITY;
DECLARE_ASN1_ITEM(KR_VALIDITY)

/* TBSCertificate, RFC 5280 4.1, with issuer and subjectPublicKeyInfo carried
 * as encoded values. */
typedef struct kr_tbs_st {
	ASN1_INTEGER *version;
	ASN1_INTEGER *serial;
	X509_ALGOR *sigalg;
	ASN1_TYPE *issuer;
	KR_VALIDITY *validity;
	X509_NAME *subject;
	ASN1_TYPE *spki;
	STACK_OF(X509_EXTENSION) * extensions;
} KR_TBS;
DECLARE_ASN1_ITEM(KR_TBS)

#endif
