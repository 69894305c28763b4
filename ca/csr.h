/* Certificate signing requests (RFC 2986), parsed and checked without
 * OpenSSL 3's slow public-key decoding. A request that fails any check gets
 * one reason, suitable for the batch report. */
#ifndef KR_CA_CSR_H
#define KR_CA_CSR_H

#include "../hsm/hsm.h"
#include "../util/err.h"

#include <openssl/x509.h>
#include <stdint.h>

#define KR_CSR_MAX_NAMES 100

typedef struct kr_csr {
	uint8_t sha256[32]; /* of the request's DER */
	kr_key_type key_type;
	uint8_t *spki; /* DER SubjectPublicKeyInfo, as in the request */
	int spki_len;
	uint8_t spki_sha256[32];
	uint8_t key_sha1[20];        /* SHA-1 of subjectPublicKey: the SKI (RFC 5280 4.2.1.2) */
	char cn[256];                /* UTF-8; "" when the subject has no CN */
	char *dns[KR_CSR_MAX_NAMES]; /* the dNSNames it requests */
	int ndns;
	/* the other names it requests, as OpenSSL prints them ("IP
	 * Address:192.0.2.1", "email:a@example.com"): the profile decides */
	char *other[KR_CSR_MAX_NAMES];
	int nother;
	X509_EXTENSION *ku, *eku; /* requested, for profiles that honour them */
} kr_csr;

/* What one thread reuses from request to request (an EC key per curve, so
 * that the curve is not rebuilt for every request). */
typedef struct kr_csr_ctx kr_csr_ctx;
KR_MUST_USE kr_err kr_csr_ctx_new(kr_csr_ctx **out);
void kr_csr_ctx_free(kr_csr_ctx *ctx);

/* Parses and checks a DER request: structure, version, key (algorithm,
 * curve, size, exponent, point), signature algorithm and proof of
 * possession, subject, and requested extensions (CA:TRUE, keyCertSign and
 * unknown critical extensions are refused; the names it asks for are
 * collected for the profile to judge). ctx may be
 * NULL; with one, a thread must use its own. */
KR_MUST_USE kr_err kr_csr_parse(kr_csr_ctx *ctx, const uint8_t *der, size_t len, kr_csr *out);
/* The same, or a CRMF certificate template (RFC 4211 5) whose proof of
 * possession its source checked: the CMP server (RFC 4211 4), and the
 * registry's record of what it once issued from. A template's key is
 * checked as a CSR's; its subject gives the CN; it asks for no names.
 * Never for requests from files: they must prove their key themselves. */
KR_MUST_USE kr_err kr_csr_parse_proven(kr_csr_ctx *ctx, const uint8_t *der, size_t len,
				       kr_csr *out);
void kr_csr_clear(kr_csr *c);

/* Decodes PEM text holding exactly one CERTIFICATE REQUEST. */
KR_MUST_USE kr_err kr_csr_pem_to_der(const char *pem, size_t len, uint8_t **der, size_t *der_len);

#endif
