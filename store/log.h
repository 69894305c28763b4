/* The audit log's formats, whatever store holds it: how an entry is chained
 * to the one before, and what a checkpoint's signature covers. */
#ifndef KR_STORE_LOG_H
#define KR_STORE_LOG_H

#include "../util/err.h"

#include <stddef.h>
#include <stdint.h>

/* The entry hash: SHA-256(prev || seq "\t" time "\t" kind "\t" detail). */
KR_MUST_USE kr_err kr_audit_hash(const uint8_t prev[32], int64_t seq, const char *time,
				 const char *kind, const char *detail, uint8_t out[32]);

/* The message a checkpoint signature covers: "keyrite audit checkpoint
 * <seq> <head as hex>"; msg takes KR_CHECKPOINT_MSG_MAX bytes. */
#define KR_CHECKPOINT_MSG_MAX 128
void kr_checkpoint_message(int64_t seq, const uint8_t head[32], uint8_t *msg, size_t *len);

#endif
