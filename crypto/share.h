/* crypto/share: a VSS share (crypto/vss.h) as a person reads it off paper
 * and types it back. Its 33 bytes (the index, then the value) in five lines
 * of at most eight bytes, hex in groups of four digits, each line ended by
 * a checksum of its own (the first two bytes of SHA-256 over the line's
 * number and bytes): a typo is named by its line before the share is
 * checked against the verifier, and a line typed in the wrong place fails
 * its checksum too. */
#ifndef KR_CRYPTO_SHARE_H
#define KR_CRYPTO_SHARE_H

#include "vss.h"

#define KR_SHARE_LINES 5
#define KR_SHARE_LINE_MAX 64 /* "5: " and 4 groups and a checksum, with room */

/* Line i (1..KR_SHARE_LINES) of the share: "1: 02a1 3f5c 9e00 7b12  c4d1". */
void kr_share_line(const kr_vss_share *s, int i, char out[KR_SHARE_LINE_MAX]);

/* Reads line i as typed (spaces and case do not matter, "i:" optional):
 * its bytes into the share (the index from line 1). KR_EINPUT naming the
 * line: not hex, a wrong length, or a checksum that does not match. */
KR_MUST_USE kr_err kr_share_read_line(const char *text, int i, kr_vss_share *s);

/* The verifier's fingerprint for a page: SHA-256 of its bytes as eight PGP
 * words (the first eight bytes), which a custodian reads aloud to compare
 * a page with the transcript. */
KR_MUST_USE kr_err kr_share_verifier_words(const kr_vss_verifier *v, char *out, size_t outsz);

#endif
