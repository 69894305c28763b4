/* Renderings of bytes for people and for files. */
#ifndef KR_TEXT_H
#define KR_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Lowercase hex; out needs 2n+1 bytes. */
void kr_hex(const uint8_t *p, size_t n, char *out);

/* Uppercase hex, as OpenSSL prints serial numbers; out needs 2n+1 bytes. */
void kr_hex_upper(const uint8_t *p, size_t n, char *out);

/* Uppercase hex in groups of four digits ("AB12 CD34 ..."), for reading
 * aloud or comparing on paper; out needs 2n + n/2 + 1 bytes. */
void kr_hex_groups(const uint8_t *p, size_t n, char *out);

/* PGP words, space separated; truncates safely at outsz. */
void kr_pgp_words(const uint8_t *p, size_t n, char *out, size_t outsz);

/* Copies src into dst (n bytes), cut to fit and always terminated: a
 * snprintf("%s") without the format parsing, for hot paths. */
void kr_copy(char *dst, size_t n, const char *src);
/* UTC time as RFC 3339 ("2026-11-23T10:00:00Z"); out needs 21 bytes. */
void kr_utc_now(char out[21]);

#endif
