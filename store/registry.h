/* store: the device registry's records (keyrite registry), beside the
 * issuance store of store.h and in the same file and transactions. The
 * store keeps what the registry decided; registry/ decides. One device
 * row (its owner, MNO, locks, auth code hash, the CSR on record) and one
 * registration per ASP that sponsors it (its state, hold, a pending
 * transfer, its current profile id). A profile is a certificate row with a
 * profile id and the ASP it was issued for, so its state is the
 * certificate's: generated while valid, revoked after.
 *
 * Names as in store.h: kr_store_import_device, kr_store_save_* write;
 * kr_store_registry_device, kr_store_registry_list read. */
#ifndef KR_STORE_REGISTRY_H
#define KR_STORE_REGISTRY_H

#include "store.h"

#define KR_REG_MAX_ASPS 8
#define KR_REG_CSR_MAX 4096

/* A device as the registry holds it. */
typedef struct kr_reg_device {
	char id[80], model[80], version[40], owner[64], mno[64];
	int listed;          /* imported into the registry (0: known from keyrite issue only) */
	int64_t deleted;     /* pendingDelete since (unix time); 0 otherwise */
	int64_t purge_after; /* pendingDelete: purged from then on */
	unsigned locks;      /* bit per lock (registry/rules.h) */
	/* the auth code: salted hash only (RFC 9154) */
	int has_code;
	uint8_t code_salt[16], code_hash[32];
	int64_t code_expires;
	int code_failures;
	int64_t enroll_gen; /* its enrollment secret's generation; 0: none */
	/* the device's verified CSR, re-certified after a transfer */
	uint8_t csr[KR_REG_CSR_MAX];
	size_t csr_len;
	char created[21], updated[21];
} kr_reg_device;

/* One ASP's registration of a device. */
typedef struct kr_registration {
	char asp[64];
	char state[16]; /* registered, active, deactivated */
	int hold;
	char gaining[64]; /* a pending transfer's gaining ASP; "" for none */
	int64_t requested_at;
	int64_t profile_id; /* the current profile; 0 before the first activation */
	/* that profile's certificate: status "" when none was reserved yet */
	char cert_status[16];
	int64_t ca;
	uint8_t serial[20];
	size_t serial_len;
	char created[21], updated[21];
} kr_registration;

typedef struct kr_reg_record {
	kr_reg_device d;
	kr_registration r[KR_REG_MAX_ASPS];
	int nr;
} kr_reg_record;

/* An empty record for device id, field by field (the whole is 8 KiB and
 * bulk commands clear one per device). */
void kr_reg_record_clear(kr_reg_record *r, const char *id);

/* The device and its registrations; *found 0 if the store has no such
 * device. */
KR_MUST_USE kr_err kr_store_registry_device(kr_store *s, const char *id, kr_reg_record *out,
					    int *found);

/* Which devices a listing gives: NULL fields do not filter. asp: those
 * this ASP sponsors or is gaining in a transfer. */
typedef struct kr_reg_filter {
	const char *asp, *owner, *mno;
	const char *after;  /* only devices whose id sorts after this one (before: desc) */
	long limit;         /* at most this many devices; 0: all */
	const char *prefix; /* only devices whose id begins so */
	int desc;           /* in descending id order */
	const char *state;  /* only devices in this state (registry/rules.h's names): a
			     * deleted one pendingDelete, one with no registration listed,
			     * else one of its (the ASP's) registrations' */
} kr_reg_filter;

/* The registry's devices (imported ones) in id order, with their
 * registrations. */
typedef KR_MUST_USE kr_err (*kr_reg_record_cb)(const kr_reg_record *r, void *arg);
KR_MUST_USE kr_err kr_store_registry_list(kr_store *s, const kr_reg_filter *f, kr_reg_record_cb cb,
					  void *arg);

/* The CSR on record of a device (*len 0 when it has none, or there is no
 * such device): activation's zero-touch source, one lookup. */
KR_MUST_USE kr_err kr_store_device_csr(kr_store *s, const char *id, uint8_t *buf, size_t cap,
				       size_t *len);

/* A profile's certificate is recorded: the registration that holds
 * profile_id becomes active, the certificate records its ASP, the CSR it
 * was issued from becomes the device's on record. Gives the ASP. */
KR_MUST_USE kr_err kr_store_profile_issued(kr_store *s, const char *device, int64_t profile_id,
					   int64_t ca, const uint8_t *serial, size_t len,
					   const uint8_t *csr, size_t csr_len, char asp[64]);

/* A device imported: inserted, or a device keyrite issue knew made listed;
 * *imported 0 (and nothing written) if it is listed already. */
KR_MUST_USE kr_err kr_store_import_device(kr_store *s, const kr_reg_device *d, int *imported);
/* Writes every registry field of an existing device. */
KR_MUST_USE kr_err kr_store_save_device(kr_store *s, const kr_reg_device *d);
/* Inserts or replaces the registration of d under r->asp; old_asp names the
 * row it replaces when the ASP changes (a transfer), else NULL. */
KR_MUST_USE kr_err kr_store_save_registration(kr_store *s, const char *device,
					      const kr_registration *r, const char *old_asp);
KR_MUST_USE kr_err kr_store_drop_registration(kr_store *s, const char *device, const char *asp);
/* The device row and its registrations go; its certificates and the log stay. */
KR_MUST_USE kr_err kr_store_purge_device(kr_store *s, const char *device);
/* Revokes (reason, at when) the device's other valid certificates of asp's
 * profiles: all but keep's (keep NULL: all). *n: how many. */
KR_MUST_USE kr_err kr_store_supersede(kr_store *s, const char *device, const char *asp,
				      int64_t keep_ca, const uint8_t *keep, size_t keep_len,
				      int reason, int64_t when, long *n);
/* The ASP a registry profile's certificate was issued for. */
KR_MUST_USE kr_err kr_store_set_cert_asp(kr_store *s, int64_t ca, const uint8_t *serial, size_t len,
					 const char *asp);

/* The registry in numbers (the console's dashboard): registrations per
 * state ("listed" a device with none, "pendingDelete" a deleted one's, and
 * "hold", "pendingTransfer" beside them), and registry certificates issued
 * and revoked per day (YYYY-MM-DD, UTC). */
typedef KR_MUST_USE kr_err (*kr_reg_stat_cb)(const char *series, const char *key, long n,
					     void *arg);
KR_MUST_USE kr_err kr_store_registry_stats(kr_store *s, kr_reg_stat_cb cb, void *arg);

/* An audit entry 'registry': who did what to which device, from which
 * state to which (registry/rules.h spells them). */
typedef struct kr_reg_event {
	const char *device, *op, *account, *asp;
	const char *from, *to; /* states: from->to; one alone: the state it stays in */
	int64_t profile_id;    /* 0: none */
	const char *note;      /* a refusal's reason (a wrong auth code), or NULL */
} kr_reg_event;
KR_MUST_USE kr_err kr_store_log_registry(kr_store *s, const kr_reg_event *ev);

#endif
