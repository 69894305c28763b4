/* Verification of the audit log and of the store's state against it. */
#ifndef KR_STORE_AUDIT_H
#define KR_STORE_AUDIT_H

#include "store.h"

#include <stdio.h>

/* Entries after the last checkpoint are not a problem (for keyrite crl,
 * whose own checkpoint will cover them). */
#define KR_AUDIT_TAIL_OK 1u

/* Detects an edited, deleted, inserted or reordered entry (the chain); a
 * checkpoint whose head is not in the chain or whose signature does not
 * verify under its CA's key; entries no checkpoint covers; and a store whose
 * state is not the one the log describes: a certificate without its entry,
 * or whose status, revocation time and reason, or to-be-signed part are not
 * what its entries say, one the log records and the store lacks, a CRL
 * without its entry, not the one recorded, or whose revoked certificates
 * are not those the log had revoked by then. Writes one line per finding to
 * report (unless NULL); *problems (unless NULL) counts them. KR_EVERIFY if
 * there is any. */
KR_MUST_USE kr_err kr_audit_verify(kr_store *s, FILE *report, unsigned flags, long *problems);

#endif
