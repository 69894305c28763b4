/* Revocation and CRLs from the issuance store. */
#ifndef KR_CA_REVOKE_H
#define KR_CA_REVOKE_H

#include "authority.h"
#include "serial.h"
#include "../store/store.h"

/* Issues the CA's next CRL (RFC 5280 section 5): number one above the last,
 * every revoked certificate of the CA, nextUpdate from the CA's
 * crl_next_update_days; linted, signed on the HSM, recorded with an audit
 * entry and a checkpoint, and written to out (created exclusively) when out
 * is not NULL. Refused (KR_EVERIFY) if the store's state and its audit log
 * disagree (kr_audit_verify). */
KR_MUST_USE kr_err kr_ca_crl(kr_store *store, kr_authority *ca, const char *out, int64_t *number);

/* The valid certificates of a device from this CA; KR_EINPUT if it has none. */
KR_MUST_USE kr_err kr_ca_device_serials(kr_store *store, const kr_authority *ca, const char *device,
					kr_serials *out);

/* Revokes the CA's certificates with these serials (RFC 5280 reason code),
 * each with its audit entry, in one transaction that ends with a checkpoint
 * signed by the CA key; if any is not one of the CA's valid certificates,
 * nothing is revoked. Takes effect in the next CRL. */
KR_MUST_USE kr_err kr_ca_revoke(kr_store *store, kr_authority *ca, const kr_serials *s, int reason);

#endif
