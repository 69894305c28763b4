/* hsm: the only part of keyrite that speaks PKCS#11.
 *
 * A kr_hsm is one logged-in token, found by an RFC 7512 "pkcs11:" URI (parsed
 * by p11-kit) in a module loaded through p11-kit. Keys are generated on the
 * token, sensitive and never extractable, and are used through C_Sign only.
 * Batch work takes one kr_hsm_session per worker thread. */
#ifndef KR_HSM_H
#define KR_HSM_H

#include "../crypto/sig.h"
#include "../util/cleanup.h"
#include "../util/err.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define KR_HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define KR_HSM_MAX_SIG 1024

/* Where a PIN comes from when the URI has no pin-source: a file that only its
 * owner may read, or a named environment variable; with neither, a no-echo
 * prompt on the terminal. A PIN is never taken from the command line. */
typedef struct kr_pin_source {
	const char *file;
	const char *env;
} kr_pin_source;

typedef struct kr_hsm_token_info {
	unsigned long slot;
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	int initialized;
	int login_required;
} kr_hsm_token_info;

typedef struct kr_hsm kr_hsm;
typedef struct kr_hsm_key kr_hsm_key;
typedef struct kr_hsm_session kr_hsm_session;

typedef struct kr_hsm_opts {
	const char *module;
	kr_pin_source pin;
	/* A rehearsal on throwaway SoftHSM tokens: module and pin win over the
	 * URI's module-path and pin-source, and tokens match by label alone. */
	int rehearsal;
} kr_hsm_opts;

/* Module: the URI's module-path, else opts->module, else
 * $KEYRITE_PKCS11_MODULE, else SoftHSM's. Exactly one initialized token must
 * match the URI. */
KR_MUST_USE kr_err kr_hsm_open(const char *uri, const kr_hsm_opts *opts, kr_hsm **out);
/* opts (or none) with the PIN source a configuration names, a file or a
 * variable ("" for none), in place of the command line's. */
kr_hsm_opts kr_hsm_opts_pin(const kr_hsm_opts *opts, const char *pin_file, const char *pin_env);

/* The token label a URI names ("" if none). */
KR_MUST_USE kr_err kr_hsm_uri_token_label(const char *uri, char out[33]);
/* KR_EINPUT if the URI names an object (object= or id=): where keys come
 * from elsewhere, as in a restore, it names their token only. */
KR_MUST_USE kr_err kr_hsm_uri_token_only(const char *uri);
void kr_hsm_close(kr_hsm *h);
const kr_hsm_token_info *kr_hsm_token(const kr_hsm *h);

typedef void (*kr_hsm_token_cb)(const kr_hsm_token_info *t, void *arg);
KR_MUST_USE kr_err kr_hsm_tokens(const char *module, kr_hsm_token_cb cb, void *arg);

/* Initializes the first uninitialized slot's token (SoftHSM's free slot). */
KR_MUST_USE kr_err kr_hsm_init_token(const char *module, const char *label,
				     const kr_pin_source *so_pin, const kr_pin_source *user_pin);

/* The URI must name the key with object=LABEL and no id (keyrite draws the
 * CKA_ID from the token's RNG). Refuses a label that already exists. Every
 * security attribute is read back; on any mismatch the key is destroyed. */
KR_MUST_USE kr_err kr_hsm_keygen(kr_hsm *h, const char *uri, kr_key_type type, kr_hsm_key **out);
/* An AES-256 secret key made on the token, sensitive, never extractable,
 * for encryption only; named as kr_hsm_keygen's keys are. Gives its id. */
KR_MUST_USE kr_err kr_hsm_secret_keygen(kr_hsm *h, const char *uri, uint8_t id[16]);
/* As kr_hsm_keygen, for a key that may be backed up (the backup ceremony):
 * CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED, so that only a trusted
 * wrapping key, which only the SO can make, can ever take it out. */
KR_MUST_USE kr_err kr_hsm_keygen_backup(kr_hsm *h, const char *uri, kr_key_type type,
					kr_hsm_key **out);
/* The checks kr_hsm_keygen makes before it acts (label given and unused, no
 * id), so a caller can refuse before anything irreversible happens. */
KR_MUST_USE kr_err kr_hsm_keygen_check(kr_hsm *h, const char *uri);
/* KR_EEXIST if an object on the token carries label. */
KR_MUST_USE kr_err kr_hsm_label_unused(kr_hsm *h, const char *label);
/* Exactly one private key must match the URI's object and/or id. */
KR_MUST_USE kr_err kr_hsm_key_find(kr_hsm *h, const char *uri, kr_hsm_key **out);
typedef void (*kr_hsm_key_cb)(kr_hsm *h, kr_hsm_key *k, void *arg);
KR_MUST_USE kr_err kr_hsm_keys(kr_hsm *h, kr_hsm_key_cb cb, void *arg);
/* For batch signing: signs from now on with a copy of the private key made
 * as a session object on the same token (C_CopyObject, CKA_TOKEN false),
 * gone when h closes. The copy never leaves the token and stays sensitive
 * and non-extractable (checked). Why: SoftHSM re-reads a token object's file
 * under a lock on every use, and signs about 1.5 times as fast with a session
 * object. A token that refuses the copy (CKA_COPYABLE false, as many HSMs
 * set) keeps signing with the token object; *copied says which. */
KR_MUST_USE kr_err kr_hsm_key_session_copy(kr_hsm *h, kr_hsm_key *k, int *copied);
/* Removes the key pair from the token (used to undo a failed ceremony). */
KR_MUST_USE kr_err kr_hsm_key_destroy(kr_hsm *h, kr_hsm_key *k);
void kr_hsm_key_free(kr_hsm_key *k);

const char *kr_hsm_key_label(const kr_hsm_key *k);
const uint8_t *kr_hsm_key_id(const kr_hsm_key *k, size_t *len);
kr_key_type kr_hsm_key_type(const kr_hsm_key *k);
EVP_PKEY *kr_hsm_key_public(const kr_hsm_key *k); /* borrowed */
/* kr_spki_sha256 of the key's public half. */
KR_MUST_USE kr_err kr_hsm_key_spki_sha256(const kr_hsm_key *k, uint8_t out[32]);

typedef struct kr_key_attrs {
	int token, private_, sensitive, extractable, always_sensitive, never_extractable, local;
	int sign, decrypt, unwrap, derive;
	int wrap_with_trusted; /* extractable only under a trusted key (a backup) */
} kr_key_attrs;

/* An attribute the token will not read out is -1 ("unreadable"). */
void kr_hsm_key_attrs(kr_hsm *h, const kr_hsm_key *k, kr_key_attrs *out);
/* "CKA_SENSITIVE=true CKA_EXTRACTABLE=false ..." */
void kr_key_attrs_format(const kr_key_attrs *a, char *out, size_t outsz);

KR_MUST_USE kr_err kr_hsm_session_open(kr_hsm *h, kr_hsm_session **out);
void kr_hsm_session_close(kr_hsm_session *s);
/* The session opened with the token; for single-threaded callers. */
kr_hsm_session *kr_hsm_main_session(kr_hsm *h);

/* A session for each worker of a parallel run (util/parallel.h), opened and
 * closed together: n, clamped to 1..KR_PARALLEL_MAX, is how many workers
 * the run may use. */
typedef struct kr_hsm_pool kr_hsm_pool;
KR_MUST_USE kr_err kr_hsm_pool_open(kr_hsm *h, int n, kr_hsm_pool **out);
int kr_hsm_pool_size(const kr_hsm_pool *p);
kr_hsm_session *kr_hsm_pool_session(const kr_hsm_pool *p, int worker);
void kr_hsm_pool_close(kr_hsm_pool *p);

/* in is the digest of the message under md, or the message itself for EdDSA.
 * sig must hold KR_HSM_MAX_SIG bytes. The schemes' mechanisms: CKM_ECDSA
 * (DER out, or r || s for KR_SIG_ECDSA_RAW), CKM_RSA_PKCS over a DigestInfo
 * built here, CKM_RSA_PKCS_PSS, CKM_EDDSA. */
KR_MUST_USE kr_err kr_hsm_sign(kr_hsm_session *s, const kr_hsm_key *k, kr_sig_scheme scheme,
			       const EVP_MD *md, const uint8_t *in, size_t inlen, uint8_t *sig,
			       size_t *siglen);

KR_MUST_USE kr_err kr_hsm_random(kr_hsm *h, uint8_t *buf, size_t len);

/* A device-class AES key (KEK) on the token, by label: its CKA_ID and its
 * length in bytes, and an RFC 3394 wrap of cek under it (C_WrapKey; the KEK
 * never leaves). On the caller's session, so workers can wrap side by side. */
KR_MUST_USE kr_err kr_hsm_kek_id(kr_hsm_session *s, const char *label, uint8_t *id, size_t *idlen,
				 size_t *keylen);
KR_MUST_USE kr_err kr_hsm_wrap(kr_hsm_session *s, const char *label, const uint8_t *cek,
			       size_t ceklen, uint8_t *out, size_t *outlen);
/* Encrypts a stream on the token under the AES key labelled label, with
 * AES-CBC and PKCS #7 padding (CKM_AES_CBC_PAD) from iv: begin, then update
 * (out takes up to n + 15 bytes), then end (up to 16). One at a time per
 * session; one not ended is cancelled by the next begin, by cancel, or when
 * the session closes. */
KR_MUST_USE kr_err kr_hsm_encrypt_begin(kr_hsm_session *s, const char *label, const uint8_t iv[16]);
KR_MUST_USE kr_err kr_hsm_encrypt_update(kr_hsm_session *s, const uint8_t *in, size_t n,
					 uint8_t *out, size_t *outlen);
KR_MUST_USE kr_err kr_hsm_encrypt_end(kr_hsm_session *s, uint8_t *out, size_t *outlen);
void kr_hsm_encrypt_cancel(kr_hsm_session *s);

/* The backup ceremony's wrapping key: key (32 bytes, from the VSS split)
 * put on the token by its SO as a trusted AES key, a session object that
 * never reaches the token's storage; the user is logged in again
 * afterwards (so: the SO's PIN, user: the user's). It wraps the keys made
 * for backup (kr_hsm_keygen_backup), and only those: another is refused
 * with KR_EINPUT. Destroy it as soon as the keys are wrapped. The user's
 * logout invalidates the handles of keys found before (PKCS#11 2.40
 * section 5.5): find a key again to sign with it; kr_hsm_backup_wrap finds
 * its key again by id. */
typedef struct kr_hsm_backup_key kr_hsm_backup_key;
KR_MUST_USE kr_err kr_hsm_backup_key_new(kr_hsm *h, const kr_pin_source *so,
					 const kr_pin_source *user, const uint8_t key[32],
					 kr_hsm_backup_key **out);
/* The private key wrapped (RFC 5649, the key as PKCS#8) into out (*len:
 * its room, then its length). */
KR_MUST_USE kr_err kr_hsm_backup_wrap(const kr_hsm_backup_key *b, const kr_hsm_key *k, uint8_t *out,
				      size_t *len);
/* A wrapped key restored onto this token (the restore ceremony): its
 * private key unwrapped with label and id (sensitive, unextractable, or
 * with for_backup extractable only under a trusted key again), its public
 * key object made from pub (the CA certificate's key). KR_EVERIFY if the
 * blob does not open (altered, or of another backup), KR_EEXIST if the
 * label is taken; on any failure nothing of it stays on the token. */
KR_MUST_USE kr_err kr_hsm_backup_unwrap(const kr_hsm_backup_key *b, const uint8_t *blob, size_t len,
					const char *label, const uint8_t *id, size_t id_len,
					EVP_PKEY *pub, int for_backup, kr_hsm_key **out);
void kr_hsm_backup_key_destroy(kr_hsm_backup_key *b);

/* An EVP_PKEY whose private-key operations happen on the token, for OpenSSL
 * APIs that sign by themselves (X509_sign, X509_CRL_sign, CMS_sign). It has a
 * session of its own: use it from one thread at a time, and free it before
 * closing h. ECDSA (P-256, P-384) and RSA PKCS#1 v1.5 only: OpenSSL 3.0 would
 * do RSA-PSS through raw RSA, which many HSMs forbid, and has no method hook
 * for Ed25519; those sign through kr_hsm_sign. */
KR_MUST_USE kr_err kr_hsm_key_evp(kr_hsm *h, const kr_hsm_key *k, EVP_PKEY **out);

/* For KR_AUTO(kr_hsm) and the like (util/cleanup.h). */
KR_DEFINE_FREE(kr_hsm, kr_hsm_close)
KR_DEFINE_FREE(kr_hsm_key, kr_hsm_key_free)
KR_DEFINE_FREE(kr_hsm_pool, kr_hsm_pool_close)

#endif
