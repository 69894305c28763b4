/* policy: what keyrite may issue. Caps that a ceremony script cannot raise. */
#ifndef KR_POLICY_H
#define KR_POLICY_H

#include "../crypto/keys.h"
#include "../util/err.h"

typedef enum kr_cert_role {
	KR_ROLE_ROOT,
	KR_ROLE_SUB_CA,
	KR_ROLE_CROSS,
	KR_ROLE_CRL,
	KR_ROLE_LEAF, /* an end-entity certificate from a batch */
} kr_cert_role;

const char *kr_role_name(kr_cert_role r);

typedef struct kr_policy kr_policy;

/* path NULL: the built-in defaults (docs/keyrite-ceremony.5, POLICY). */
KR_MUST_USE kr_err kr_policy_load(const char *path, kr_policy **out);
void kr_policy_free(kr_policy *p);

/* Caps for the roles a ceremony makes (not KR_ROLE_LEAF: a profile sets
 * an end-entity certificate's validity). */
long kr_policy_max_days(const kr_policy *p, kr_cert_role r);
KR_MUST_USE kr_err kr_policy_check_days(const kr_policy *p, kr_cert_role r, long days);
KR_MUST_USE kr_err kr_policy_check_ca_key(const kr_policy *p, kr_key_type t);

#endif
