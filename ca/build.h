/* Drafts of certificates and CRLs, before anything signs them. */
#ifndef KR_CA_BUILD_H
#define KR_CA_BUILD_H

#include "../hsm/hsm.h"
#include "../util/err.h"

#include <openssl/conf.h>
#include <openssl/x509.h>
#include <time.h>

typedef struct kr_cert_spec {
	const X509_NAME *subject;
	EVP_PKEY *subject_key;
	X509 *issuer;                 /* NULL: self-signed */
	const ASN1_OCTET_STRING *ski; /* NULL: SHA-1 of the key (RFC 5280 4.2.1.2 (1)) */
	const ASN1_INTEGER *serial;
	time_t not_before;
	long days;
	CONF *conf;              /* extensions in x509v3_config(5) syntax */
	const char *ext_section; /* NULL: none beyond SKI and AKI */
} kr_cert_spec;

/* A version 3 certificate with SKI and AKI set by keyrite (the AKI's key id
 * is the issuer's SKI, or the certificate's own when self-signed); the
 * section must not set them itself. */
KR_MUST_USE kr_err kr_cert_draft(const kr_cert_spec *spec, X509 **out);

typedef struct kr_crl_entry {
	const ASN1_INTEGER *serial;
	time_t when;
	int reason; /* CRL_REASON_*; CRL_REASON_NONE for no reasonCode */
} kr_crl_entry;

typedef struct kr_crl_spec {
	X509 *issuer;
	long number;
	time_t this_update;
	long next_update_days;
	const kr_crl_entry *revoked;
	size_t nrevoked;
} kr_crl_spec;

KR_MUST_USE kr_err kr_crl_draft(const kr_crl_spec *spec, X509_CRL **out);

/* "keyCompromise" etc. (RFC 5280 5.3.1) to CRL_REASON_*. */
KR_MUST_USE kr_err kr_crl_reason_parse(const char *name, int *out);

#endif
