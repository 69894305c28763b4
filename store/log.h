/* The audit log's formats, whatever store holds it: how an entry is chained
 * to the one before, and what a checkpoint's signature covers. */
#ifndef KR_STORE_LOG_H
#define KR_STORE_LOG_H

#include "../util/err.h"

#include <stddef.h>
#include <stdint.h>

/* Each node (keyrite-ca(5) node; 0 when none is set) keeps a chain of its
 * own, as EJBCA's nodes do: an entry is its node's entry number seq, and
 * prev is the hash of that node's entry before it. The entry hash:
 * SHA-256(prev || id "\t" time "\t" kind "\t" detail), where id is
 * "seq" for node 0 (a store's format before nodes, unchanged) and
 * "node.seq" for another node. */
KR_MUST_USE kr_err kr_audit_hash(const uint8_t prev[32], int node, int64_t seq, const char *time,
				 const char *kind, const char *detail, uint8_t out[32]);

/* The message a checkpoint signature covers: "keyrite audit checkpoint
 * <id> <head as hex>", id as above, of the node's chain head; msg takes
 * KR_CHECKPOINT_MSG_MAX bytes. */
#define KR_CHECKPOINT_MSG_MAX 128
void kr_checkpoint_message(int node, int64_t seq, const uint8_t head[32], uint8_t *msg,
			   size_t *len);

#endif
