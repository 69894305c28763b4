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

/* RFC 4108 (Appendix A, with erratum 4093) firmware package attributes.
 * FirmwarePackageIdentifier, section 2.2.3: a name, preferred as the
 * package's OID and a version number, or a legacy octet string; and
 * optionally the stale version below which a device refuses the package. */
typedef struct kr_fwpkg_preferred_st {
	ASN1_OBJECT *id;
	ASN1_INTEGER *version;
} KR_FWPKG_PREFERRED;
DECLARE_ASN1_ITEM(KR_FWPKG_PREFERRED)

typedef struct kr_fwpkg_name_st {
	int type; /* 0 preferred, 1 legacy */
	union {
		KR_FWPKG_PREFERRED *preferred;
		ASN1_OCTET_STRING *legacy;
	} d;
} KR_FWPKG_NAME;
DECLARE_ASN1_ITEM(KR_FWPKG_NAME)

typedef struct kr_fwpkg_stale_st {
	int type;
	union {
		ASN1_INTEGER *preferred;
		ASN1_OCTET_STRING *legacy;
	} d;
} KR_FWPKG_STALE;
DECLARE_ASN1_ITEM(KR_FWPKG_STALE)

typedef struct kr_fwpkg_id_st {
	KR_FWPKG_NAME *name;
	KR_FWPKG_STALE *stale; /* OPTIONAL */
} KR_FWPKG_ID;
DECLARE_ASN1_ITEM(KR_FWPKG_ID)

/* TargetHardwareIdentifiers, section 2.2.4: SEQUENCE OF OBJECT IDENTIFIER. */
typedef STACK_OF(ASN1_OBJECT) KR_HW_IDS;
DECLARE_ASN1_ITEM(KR_HW_IDS)

#endif
