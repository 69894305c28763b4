/* Certificate serial numbers: the one rule for making them, and reading
 * them back from operators. */
#ifndef KR_CA_SERIAL_H
#define KR_CA_SERIAL_H

#include "../hsm/hsm.h"
#include "../util/err.h"

#include <openssl/asn1.h>
#include <stddef.h>
#include <stdint.h>

/* 16 random octets (CA/B BR 7.1: at least 64 bits from a CSPRNG) made a
 * serial (RFC 5280 4.1.2.2: positive, at most 20 octets): the first octet's
 * top bit cleared and its low bit set, so the number is positive and its
 * encoding always 16 octets. */
#define KR_SERIAL_LEN 16
void kr_serial_make(uint8_t serial[KR_SERIAL_LEN]);
/* The same for signing node node (1 to KR_CONFIG_NODE_MAX, the 14 bits
 * here; keyrite-ca(5) node): its
 * number in the first 14 bits after 01 (0x40 | node >> 8, node & 0xff),
 * then 112 random bits, so that two nodes never draw one serial whatever
 * their RNGs do, and the database's unique (CA, serial) constraint is the
 * backstop, not the rule. Node 0 is kr_serial_make. */
void kr_serial_make_node(uint8_t serial[KR_SERIAL_LEN], int node);
KR_MUST_USE kr_err kr_serial_asn1(const uint8_t *serial, size_t len, ASN1_INTEGER **out);
/* A serial from the token's RNG: what is issued. */
KR_MUST_USE kr_err kr_serial_random(kr_hsm *h, ASN1_INTEGER **out);
/* One from OpenSSL's RNG, for drafts that are only linted. */
KR_MUST_USE kr_err kr_serial_throwaway(ASN1_INTEGER **out);

/* Parses a hexadecimal serial ("0A1B...", colons allowed). */
KR_MUST_USE kr_err kr_serial_parse(const char *hex, uint8_t *out, size_t *len);

/* A list of serial numbers (RFC 5280: at most 20 octets each). */
typedef struct kr_serial {
	uint8_t v[20];
	size_t len;
} kr_serial;
typedef struct kr_serials {
	kr_serial *v;
	size_t n, cap;
} kr_serials;
KR_MUST_USE kr_err kr_serials_add(kr_serials *s, const uint8_t *v, size_t len);
void kr_serials_free(kr_serials *s);

#endif
