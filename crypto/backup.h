/* crypto/backup: the files of an M-of-N key backup (docs/ceremony-guide.md).
 *
 * The verifier file holds the VSS commitments (crypto/vss.h), PEM
 * "KEYRITE VSS VERIFIER" over kr_vss_verifier_encode's bytes. A backup file
 * holds one CA key wrapped under the backup key, PEM "KEYRITE WRAPPED KEY":
 *
 *   KeyriteWrappedKey ::= SEQUENCE {
 *     version         INTEGER (1),
 *     label           UTF8String,            -- CKA_LABEL on the token
 *     id              OCTET STRING,          -- CKA_ID
 *     publicKey       SubjectPublicKeyInfo,  -- to compare with the CA certificate
 *     verifierSha256  OCTET STRING (SIZE (32)), -- the share set it belongs to
 *     wrapped         OCTET STRING }         -- RFC 5649 over the PKCS#8 key
 *
 * Nothing in it is secret without the backup key; it is integrity-checked
 * by the key wrap itself (RFC 5649 section 3's integrity check) and by the
 * backup transcript's hash of the file. */
#ifndef KR_CRYPTO_BACKUP_H
#define KR_CRYPTO_BACKUP_H

#include "vss.h"
#include "../util/err.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define KR_BACKUP_ID_MAX 64
#define KR_BACKUP_WRAPPED_MAX 8192

typedef struct kr_backup_file {
	char label[256];
	uint8_t id[KR_BACKUP_ID_MAX];
	size_t id_len;
	EVP_PKEY *pub; /* owned */
	uint8_t verifier_sha256[32];
	uint8_t wrapped[KR_BACKUP_WRAPPED_MAX];
	size_t wrapped_len;
} kr_backup_file;

/* PEM text; free *pem with OPENSSL_free. */
KR_MUST_USE kr_err kr_backup_file_encode(const kr_backup_file *f, char **pem, size_t *len);
/* KR_EINPUT naming what is wrong: not PEM, not the structure, a field out
 * of range. f is cleared first; kr_backup_file_clear it after. */
KR_MUST_USE kr_err kr_backup_file_decode(const uint8_t *in, size_t len, kr_backup_file *f);
void kr_backup_file_clear(kr_backup_file *f);

KR_MUST_USE kr_err kr_backup_verifier_encode(const kr_vss_verifier *v, char **pem, size_t *len);
KR_MUST_USE kr_err kr_backup_verifier_decode(const uint8_t *in, size_t len, kr_vss_verifier *v);
/* SHA-256 of the verifier's bytes: what the transcript and a backup file
 * name it by. */
KR_MUST_USE kr_err kr_backup_verifier_sha256(const kr_vss_verifier *v, uint8_t md[32]);

#endif
