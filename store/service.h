/* store: what the online service (keyrite serve) keeps beside the
 * registry's records, in the same file and transactions: which client
 * certificate is which account, each account's poll queue (RFC 5730
 * section 2.9.2.3: what happened to its devices, oldest first, until it
 * acknowledges), and the CMP messages seen, so a replay is refused.
 *
 * Names as in store.h: kr_store_bind_*, _add, _ack write; the others read. */
#ifndef KR_STORE_SERVICE_H
#define KR_STORE_SERVICE_H

#include "store.h"

/* A client certificate (its CA's store id and serial) belongs to account. */
KR_MUST_USE kr_err kr_store_bind_client(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
					const char *account);

/* The account a certificate was bound to ("" if none) and the
 * certificate's status ("valid", "revoked", ...; "" if the store has no
 * such certificate). */
KR_MUST_USE kr_err kr_store_client(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
				   char account[64], char status[16]);

typedef struct kr_poll_msg {
	int64_t id;
	const char *time, *device, *event, *detail;
} kr_poll_msg;

KR_MUST_USE kr_err kr_store_poll_add(kr_store *s, const char *account, const char *device,
				     const char *event, const char *detail);
/* The account's oldest message and how many wait (*count 0: none, and
 * cb is not called). */
typedef KR_MUST_USE kr_err (*kr_poll_cb)(const kr_poll_msg *m, void *arg);
KR_MUST_USE kr_err kr_store_poll_first(kr_store *s, const char *account, long *count, kr_poll_cb cb,
				       void *arg);
/* Removes the account's message id; *found 0 if it has none of that id. */
KR_MUST_USE kr_err kr_store_poll_ack(kr_store *s, const char *account, int64_t id, int *found);

/* Records a CMP message's transactionID and senderNonce; *fresh 0 if they
 * were seen before (nothing written). */
KR_MUST_USE kr_err kr_store_cmp_seen(kr_store *s, const uint8_t *tid, size_t tid_len,
				     const uint8_t *nonce, size_t nonce_len, int *fresh);

#endif
