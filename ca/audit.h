/* Verification of the audit log (the hash chain in the store). */
#ifndef KR_CA_AUDIT_H
#define KR_CA_AUDIT_H

#include "store.h"

#include <stdio.h>

/* Detects an edited, deleted, inserted or reordered entry (the chain), a
 * checkpoint whose signature does not verify under its CA's key or whose
 * head is not in the chain, and an issued certificate without its entry.
 * Writes one line per finding to report. */
KR_MUST_USE kr_err kr_audit_verify(kr_store *s, FILE *report);

#endif
