/* Auth codes (RFC 9154 practice): 128 bits from the token's RNG, shown once
 * to the owner, kept only as a salted HKDF-SHA-256 (RFC 5869) of the code,
 * compared in constant time.
 *
 * Why HKDF and not a slow password hash: the code is 128 random bits, not a
 * password, so no work factor makes guessing it harder than 2^128; the salt
 * (random per code) and the device id in the info make each stored hash
 * unlinkable to any other, and a bulk transfer of 100,000 devices checks
 * its codes in milliseconds. */
#ifndef KR_REGISTRY_AUTHCODE_H
#define KR_REGISTRY_AUTHCODE_H

#include "../hsm/hsm.h"
#include "../util/err.h"

#include <stdint.h>

#define KR_CODE_BYTES 16
/* four groups of eight hex digits: 8 + 1 + 8 + 1 + 8 + 1 + 8 */
#define KR_CODE_TEXT 35

/* A new code for device: its text (shown once), salt and hash (stored). */
KR_MUST_USE kr_err kr_authcode_new(kr_hsm *h, const char *device, char text[KR_CODE_TEXT + 1],
				   uint8_t salt[16], uint8_t hash[32]);

/* *yes: code is the one hashed (case, hyphens and spaces do not matter).
 * A code that is not 32 hex digits matches nothing. */
KR_MUST_USE kr_err kr_authcode_matches(const char *code, const char *device, const uint8_t salt[16],
				       const uint8_t hash[32], int *yes);

/* A device's enrollment secret (the shared secret of CMP's PBM, RFC 9483
 * section 4.1.5), text as an auth code's: derived on the token, never
 * stored, from the AES key labelled key_label, the device and the
 * secret's generation (a new one voids the old). Shown once to the owner;
 * the service derives it again to check a message. */
KR_MUST_USE kr_err kr_enrollment_secret(kr_hsm *h, const char *key_label, const char *device,
					int64_t gen, char text[KR_CODE_TEXT + 1]);

#endif
