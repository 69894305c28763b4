/* Inside registry/: the opened registry, the items a command reads, and
 * what activate.c and registry.c share. */
#ifndef KR_REGISTRY_INTERNAL_H
#define KR_REGISTRY_INTERNAL_H

#include "registry.h"
#include "../ca/authority.h"

#include <limits.h>

typedef struct kr_payload_key kr_payload_key;

struct kr_registry {
	kr_config *cfg;
	kr_store *store;
	const kr_registry_conf *conf;
	const kr_account_conf *as;
	const kr_profile *profile;
	kr_authority ca;
	kr_hsm_opts hsm;
	kr_payload_key *payload; /* opened at the first payload */
};

/* ---- items.c: the devices a command names ---- */

typedef struct kr_reg_item {
	char where[PATH_MAX + 32];
	char device[80], model[80], version[40], mno[64], owner[64], code[96];
	char error[KR_ERR_MSG]; /* a row that could not be read */
} kr_reg_item;

typedef struct kr_items kr_items;
/* Refuses (nothing done) a file that does not exist or cannot be read. */
KR_MUST_USE kr_err kr_items_open(char *const *args, int n, kr_items **out);
/* The same over rows in memory (no file is ever opened). */
KR_MUST_USE kr_err kr_items_open_rows(const kr_reg_row *rows, int n, kr_items **out);
/* The items of a command: a's rows, or items. */
KR_MUST_USE kr_err kr_items_of(const kr_reg_args *a, char *const *items, int n, kr_items **out);
KR_MUST_USE kr_err kr_items_next(kr_items *it, kr_reg_item *item, int *more);
void kr_items_close(kr_items *it);

/* An eID: 32 digits whose check digits hold (GSMA SGP.29: the number mod 97
 * is 1, as ISO 7064 MOD 97-10), or 15 to 20 digits, the ICCID-length ids
 * of the source documents' devices. */
KR_MUST_USE kr_err kr_reg_device_id_check(const char *id);

/* ---- the decision for one device, shared by registry.c and activate.c ---- */

typedef struct kr_reg_view {
	kr_reg_record rec;
	int found;
	int gi; /* the registration acted on, or -1 */
	kr_reg_role role;
	kr_reg_state state;
	unsigned flags;
	kr_reg_verdict v;
} kr_reg_view;

/* Reads the device and decides cmd for the acting account (asp: the
 * registration named on the command line, or NULL). *why holds a refusal's
 * text, *code its kind. */
KR_MUST_USE kr_err kr_reg_view_decide(kr_registry *r, kr_reg_cmd cmd, const char *device,
				      const char *asp, kr_reg_view *v, char *why, size_t whysz,
				      kr_code *code);

/* Approves the device's pending transfers that waited past
 * transfer_auto_approve_days (*settled: 1 if any), inside the caller's
 * transaction: what a command decides next meets the device as
 * transferred. */
KR_MUST_USE kr_err kr_reg_settle(kr_registry *r, const char *device, int *settled);

/* Records a registry event as the acting account. */
KR_MUST_USE kr_err kr_reg_log(kr_registry *r, const char *device, kr_reg_cmd cmd, const char *asp,
			      kr_reg_state from, kr_reg_state to, int64_t profile_id,
			      const char *note);

/* online.c: queues the change for the accounts it concerns (poll), besides
 * also (a transfer's losing ASP), but not the acting account. */
KR_MUST_USE kr_err kr_reg_notify(kr_registry *r, const char *device, kr_reg_cmd cmd,
				 const char *also, const char *detail);

/* ---- payload.c: the registry payload ---- */

typedef struct kr_payload_dev {
	const char *device, *asp, *identity;
	int64_t profile_id;
	X509 *cert;
} kr_payload_dev;

KR_MUST_USE kr_err kr_payload_key_open(kr_registry *r, const kr_hsm_opts *hsm,
				       kr_payload_key **out);
void kr_payload_key_close(kr_payload_key *k);
/* Builds, signs and encrypts the payload, written to path (created
 * exclusively). */
KR_MUST_USE kr_err kr_payload_write(kr_registry *r, kr_payload_key *k, const kr_payload_dev *p,
				    const char *path);
/* The same for a registration's current profile. */
KR_MUST_USE kr_err kr_payload_for(kr_registry *r, kr_payload_key *k, const char *device,
				  const kr_registration *g, const char *path);

/* activate.c: activate and reactivate, through batch issuance. */
KR_MUST_USE kr_err kr_reg_activate(kr_registry *r, const kr_reg_args *a, char *const *items,
				   int nitems, kr_reg_outcome_cb cb, void *arg,
				   kr_reg_summary *sum);

#endif
