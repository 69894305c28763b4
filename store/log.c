#include "log.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <stdio.h>
#include <string.h>

/* "seq" for node 0, "node.seq" for another. */
static int entry_id(int node, int64_t seq, char *out, size_t size)
{
	return node ? snprintf(out, size, "%d.%lld", node, (long long)seq)
		    : snprintf(out, size, "%lld", (long long)seq);
}

KR_MUST_USE kr_err kr_audit_hash(const uint8_t prev[32], int node, int64_t seq, const char *time,
				 const char *kind, const char *detail, uint8_t out[32])
{
	char head[64];
	int n = entry_id(node, seq, head, sizeof head - 1);
	head[n++] = '\t';
	KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	KR_OSSL(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
			EVP_DigestUpdate(ctx, prev, 32) && EVP_DigestUpdate(ctx, head, (size_t)n) &&
			EVP_DigestUpdate(ctx, time, strlen(time)) &&
			EVP_DigestUpdate(ctx, "\t", 1) &&
			EVP_DigestUpdate(ctx, kind, strlen(kind)) &&
			EVP_DigestUpdate(ctx, "\t", 1) &&
			EVP_DigestUpdate(ctx, detail, strlen(detail)) &&
			EVP_DigestFinal_ex(ctx, out, NULL),
		KR_EINTERNAL, "hashing audit entry %lld", (long long)seq);
	return kr_ok();
}

void kr_checkpoint_message(int node, int64_t seq, const uint8_t head[32], uint8_t *msg, size_t *len)
{
	char hex[65], id[48];
	kr_hex(head, 32, hex);
	entry_id(node, seq, id, sizeof id);
	*len = (size_t)snprintf((char *)msg, KR_CHECKPOINT_MSG_MAX,
				"keyrite audit checkpoint %s %s", id, hex);
}
