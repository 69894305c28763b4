/* The detail of an audit entry: what the entry says, as typed fields, and
 * its text, which the hash chain covers: "key=value" pairs separated by one
 * space, in one fixed order. kr_detail_format writes the text and
 * kr_detail_parse reads it back; nothing else knows the text's form.
 *
 * Numbers are decimal, serials uppercase hex (as OpenSSL prints them),
 * digests lowercase hex, strings percent-encoded (RFC 3986 section 2.1)
 * where they hold a space, '%' or a control character. */
#ifndef KR_STORE_DETAIL_H
#define KR_STORE_DETAIL_H

#include "../util/err.h"

#include <stddef.h>
#include <stdint.h>

/* The fields, in the order the text gives them. */
typedef enum kr_detail_field {
	KR_D_CA,          /* ca=<store id of the CA> */
	KR_D_SERIAL,      /* serial=<HEX> */
	KR_D_PROFILE,     /* profile=<name> */
	KR_D_CSR,         /* csr-sha256=<hex>: the request */
	KR_D_TBS,         /* tbs-sha256=<hex>: the certificate's to-be-signed part */
	KR_D_REASON,      /* reason=<RFC 5280 reason code> */
	KR_D_AT,          /* at=<unix time of a revocation> */
	KR_D_BATCH,       /* batch=<store id> */
	KR_D_CRL_NUMBER,  /* crl-number=<n> */
	KR_D_THIS_UPDATE, /* this-update=<unix time> */
	KR_D_NEXT_UPDATE, /* next-update=<unix time> */
	KR_D_REVOKED,     /* revoked=<entries of a CRL> */
	KR_D_DEVICE,      /* device=<id> */
	KR_D_VERSION,     /* version=<from>-><to> */
	KR_D_SIGNER,      /* signer=<name> */
	KR_D_SIGNER_SHA,  /* signer_sha256=<hex>: the signer's certificate */
	KR_D_FORMAT,      /* format=<cms|cms-embedded|mcuboot...> */
	KR_D_SIZE,        /* size=<octets> */
	KR_D_SHA256,      /* sha256=<hex>: an image, a CRL */
	KR_D_FILE,        /* file=<path> */
	KR_D_TO,          /* to=<recipients> */
	KR_D_PACKAGE,     /* package=<OID>: a CMS firmware package's identifier */
	KR_D_PACKAGE_VER, /* package-version=<n> */
	KR_D_OP,          /* op=<registry command> */
	KR_D_ACCOUNT,     /* as=<account that acted> */
	KR_D_ASP,         /* asp=<the registration's ASP> */
	KR_D_STATE,       /* state=<from>-><to> */
	KR_D_PROFILE_ID,  /* profile-id=<n> */
	KR_D_NOTE,        /* note=<why>: a refused attempt that is recorded */
	KR_D_NFIELDS
} kr_detail_field;

#define KR_DETAIL_MAX 2048

typedef struct kr_detail {
	uint32_t has; /* bit per kr_detail_field present */
	int64_t num[KR_D_NFIELDS];
	uint8_t bytes[KR_D_NFIELDS][32]; /* serial (len in num), digests */
	char str[KR_D_NFIELDS][520];
} kr_detail;

void kr_detail_init(kr_detail *d);
void kr_detail_num(kr_detail *d, kr_detail_field f, int64_t v);
/* A serial (at most 20 octets) or a digest (32 octets). */
void kr_detail_bytes(kr_detail *d, kr_detail_field f, const uint8_t *p, size_t n);
void kr_detail_str(kr_detail *d, kr_detail_field f, const char *s);

KR_MUST_USE kr_err kr_detail_format(const kr_detail *d, char *out, size_t outsz);

/* Reads the fields of text up to the first word that is not a well-formed
 * one (an older entry's closing remark, or damage): what a reader needs and
 * does not find, it sees with kr_detail_has. */
void kr_detail_parse(const char *text, kr_detail *d);

int kr_detail_has(const kr_detail *d, kr_detail_field f);
/* A serial's octets and length. */
const uint8_t *kr_detail_serial(const kr_detail *d, size_t *len);

#endif
