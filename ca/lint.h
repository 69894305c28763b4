/* The pre-issuance lint: RFC 5280 profile checks on a drafted certificate or
 * CRL. Every finding is reported at once, as one KR_EPOLICY error. */
#ifndef KR_CA_LINT_H
#define KR_CA_LINT_H

#include "../policy/policy.h"
#include "../util/err.h"

#include <openssl/x509.h>

/* issuer NULL: cert is self-signed. check_ski_method: the SKI must be the
 * SHA-1 of the key (true for every key keyrite generates). */
KR_MUST_USE kr_err kr_lint_cert(X509 *cert, X509 *issuer, kr_cert_role role, int check_ski_method);
KR_MUST_USE kr_err kr_lint_crl(X509_CRL *crl, X509 *issuer);

#endif
