/* End-entity certificates for batch issuance, built from prepared parts.
 *
 * kr_leaf_new prepares what every certificate of a (CA, profile) pair
 * shares, and lints the profile by building a certificate with this very
 * builder for a throwaway key and running the full pre-issuance lint on it;
 * a profile the lint refuses never reaches the HSM. Per request only the
 * serial, validity, subject, key, SKI and SAN change; those are checked per
 * certificate by kr_leaf_tbs. */
#ifndef KR_CA_LEAF_H
#define KR_CA_LEAF_H

#include "csr.h"
#include "der.h"
#include "sign.h"
#include "../policy/config.h"

#include <time.h>

typedef struct kr_leaf kr_leaf;

KR_MUST_USE kr_err kr_leaf_new(const kr_profile *p, CONF *conf, X509 *issuer,
			       const kr_signing *signer, kr_leaf **out);
void kr_leaf_free(kr_leaf *l);

/* Validity for certificates made now: the profile's days, refused if it
 * would outlast the issuer. Shared by every certificate of a chunk. */
KR_MUST_USE kr_err kr_leaf_validity(const kr_leaf *l, time_t now, KR_VALIDITY **out);

typedef struct kr_leaf_req {
	const kr_csr *csr;
	const char *cn;         /* subject CN */
	const char *const *dns; /* SAN dNSNames */
	int ndns;
	const ASN1_INTEGER *serial;
	const KR_VALIDITY *validity;
} kr_leaf_req;

/* A DNS name the issuing CA's nameConstraints allow (RFC 5280 4.2.1.10);
 * KR_EPOLICY otherwise. */
KR_MUST_USE kr_err kr_leaf_check_name(const kr_leaf *l, const char *dns);

/* The DER TBSCertificate. Thread-safe: l is only read. */
KR_MUST_USE kr_err kr_leaf_tbs(const kr_leaf *l, const kr_leaf_req *r, uint8_t **tbs, int *len);
/* The signed certificate's DER. */
KR_MUST_USE kr_err kr_leaf_finish(const kr_leaf *l, const uint8_t *tbs, int tbslen,
				  const uint8_t *sig, size_t siglen, uint8_t **der, int *derlen);

#endif
