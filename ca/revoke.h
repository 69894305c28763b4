/* Revocation and CRLs from the issuance store. */
#ifndef KR_CA_REVOKE_H
#define KR_CA_REVOKE_H

#include "authority.h"
#include "store.h"

/* Issues the CA's next CRL (RFC 5280 section 5): number one above the last,
 * every revoked certificate of the CA, nextUpdate from the CA's
 * crl_next_update_days; linted, signed on the HSM, recorded with an audit
 * entry, and written to out (created exclusively) when out is not NULL. */
KR_MUST_USE kr_err kr_ca_crl(kr_store *store, kr_authority *ca, const char *out, int64_t *number);

/* Parses a hexadecimal serial ("0A1B...", colons allowed). */
KR_MUST_USE kr_err kr_serial_parse(const char *hex, uint8_t *out, size_t *len);

#endif
