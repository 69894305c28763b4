/* An issuing CA opened for work: its certificate and chain from the
 * configuration, its key on the token (which must be the certificate's key),
 * and its record in the store. */
#ifndef KR_CA_AUTHORITY_H
#define KR_CA_AUTHORITY_H

#include "sign.h"
#include "../store/store.h"
#include "../policy/config.h"

/* The PEM certificates in path, in order; KR_EINPUT if there is none. */
KR_MUST_USE kr_err kr_certs_read(const char *path, STACK_OF(X509) * *out);
/* The first of them. */
KR_MUST_USE kr_err kr_cert_read(const char *path, X509 **out);

typedef struct kr_leaf kr_leaf;

typedef struct kr_authority {
	const kr_ca_conf *conf;
	X509 *cert;
	STACK_OF(X509) * chain; /* the certificates above it, up to the root */
	int64_t id;             /* in the store */
	kr_hsm *hsm;
	kr_hsm_key *key;
	kr_signing signing;
	/* each profile's issuance template, linted once (kr_authority_leaf) */
	struct {
		const kr_profile *p;
		kr_leaf *leaf;
	} leaves[KR_MAX_LIST];
	int nleaves;
} kr_authority;

/* with_key: also log in to the token and find the key (not needed to list
 * or revoke). opts: module and PIN fallbacks from the command line. */
KR_MUST_USE kr_err kr_authority_open(const kr_ca_conf *conf, kr_store *store,
				     const kr_hsm_opts *opts, int with_key, kr_authority *out);
void kr_authority_close(kr_authority *a);

/* The key at uri, logged in with the PIN from pin_file or pin_env if the
 * configuration gives one (else opts'), which must be cert's key; who
 * ("CA 'devices'") names it in errors. */
KR_MUST_USE kr_err kr_authority_key_open(const char *uri, const char *pin_file, const char *pin_env,
					 const kr_hsm_opts *opts, X509 *cert, const char *who,
					 kr_hsm **h, kr_hsm_key **k);

/* The profile's issuance template (ca/leaf.h), made and linted at its
 * first use and kept while the authority is open: a service issuing a few
 * certificates at a time does not lint its profile each time. */
KR_MUST_USE kr_err kr_authority_leaf(kr_authority *a, const kr_profile *p, CONF *conf,
				     const kr_leaf **out);

/* Signs the audit chain's head with the CA key and records the checkpoint
 * (inside the caller's transaction). */
KR_MUST_USE kr_err kr_authority_checkpoint(kr_authority *a, kr_store *store);

/* The same for any signer under the CA ca_id: unless a checkpoint covers
 * the head already, signs it and records the checkpoint with cert, the
 * signer's certificate (NULL for the CA's own key). */
KR_MUST_USE kr_err kr_checkpoint_sign(kr_store *store, const kr_signing *signer, int64_t ca_id,
				      X509 *cert);

/* A DER certificate as PEM (malloc'd, NUL-terminated). */
KR_MUST_USE kr_err kr_cert_der_pem(const uint8_t *der, size_t der_len, char **pem, size_t *len);

/* PEM of the CA certificate followed by its chain. */
KR_MUST_USE kr_err kr_authority_chain_pem(const kr_authority *a, char **pem, size_t *len);

#endif
