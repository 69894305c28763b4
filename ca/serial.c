#include "serial.h"
#include "../util/cleanup.h"
#include "../util/mem.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

void kr_serial_make(uint8_t serial[KR_SERIAL_LEN])
{
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);
}

void kr_serial_make_node(uint8_t serial[KR_SERIAL_LEN], int node)
{
	if (node <= 0) {
		kr_serial_make(serial);
		return;
	}
	serial[0] = (uint8_t)(0x40 | ((node >> 8) & 0x3f));
	serial[1] = (uint8_t)(node & 0xff);
}

KR_MUST_USE kr_err kr_serial_asn1(const uint8_t *serial, size_t len, ASN1_INTEGER **out)
{
	KR_AUTO(BIGNUM) bn = BN_bin2bn(serial, (int)len, NULL);
	*out = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	KR_OSSL(*out, KR_EINTERNAL, "building a serial number");
	return kr_ok();
}

KR_MUST_USE kr_err kr_serial_random(kr_hsm *h, ASN1_INTEGER **out)
{
	uint8_t buf[KR_SERIAL_LEN];
	KR_TRY(kr_hsm_random(h, buf, sizeof buf));
	kr_serial_make(buf);
	return kr_serial_asn1(buf, sizeof buf, out);
}

KR_MUST_USE kr_err kr_serial_throwaway(ASN1_INTEGER **out)
{
	uint8_t buf[KR_SERIAL_LEN];
	KR_OSSL(RAND_bytes(buf, sizeof buf) == 1, KR_EINTERNAL, "drawing a draft's serial");
	kr_serial_make(buf);
	return kr_serial_asn1(buf, sizeof buf, out);
}

KR_MUST_USE kr_err kr_serial_parse(const char *hex, uint8_t *out, size_t *len)
{
	char clean[64];
	size_t n = 0;
	for (const char *p = hex; *p; p++) {
		if (*p == ':')
			continue;
		KR_ENSURE(isxdigit((unsigned char)*p) && n < sizeof clean - 1, KR_EUSAGE,
			  "'%s' is not a hexadecimal serial number of at most 20 octets", hex);
		clean[n++] = *p;
	}
	clean[n] = '\0';
	KR_ENSURE(n > 0 && n <= 40, KR_EUSAGE, "'%s' is not a serial number", hex);
	KR_AUTO(BIGNUM) bn = NULL;
	KR_ENSURE(BN_hex2bn(&bn, clean) > 0 && !BN_is_zero(bn), KR_EUSAGE,
		  "'%s' is not a serial number", hex);
	*len = (size_t)BN_bn2bin(bn, out);
	return kr_ok();
}

KR_MUST_USE kr_err kr_serials_add(kr_serials *s, const uint8_t *v, size_t len)
{
	KR_ENSURE(len > 0 && len <= sizeof s->v[0].v, KR_EINPUT, "a serial of %zu octets", len);
	KR_TRY(kr_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v));
	memcpy(s->v[s->n].v, v, len);
	s->v[s->n++].len = len;
	return kr_ok();
}

void kr_serials_free(kr_serials *s)
{
	free(s->v);
	*s = (kr_serials){0};
}
