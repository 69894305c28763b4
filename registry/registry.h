/* registry: the device registry's lifecycle (docs/registry.md). Devices are
 * imported, registered with an ASP, activated (a profile id and a
 * certificate from the device's CSR, relayed by its MNO), transferred to
 * another ASP with the owner's auth code, held, deactivated, deleted and
 * purged; every command acts as one account and is decided by
 * registry/rules.h. The CLI and the online service parse, call this and
 * print; nothing here prints.
 *
 * Bulk commands take device ids, files of them, or CSV files, and work in
 * chunks of one transaction each: a device's change (its store rows, its
 * certificate issued or revoked, its audit entry) is kept whole or undone
 * whole, a refused device leaves nothing, and each committed chunk ends
 * with a checkpoint signed by the CA key. A run killed at any instant and
 * run again completes: what was committed reports "unchanged". */
#ifndef KR_REGISTRY_REGISTRY_H
#define KR_REGISTRY_REGISTRY_H

#include "rules.h"
#include "../hsm/hsm.h"
#include "../policy/config.h"
#include "../store/registry.h"

#include <stdio.h>

typedef struct kr_registry kr_registry;

/* as: the acting account (NULL: the operator). Opens the registry's CA and
 * logs in to its token (every command records and checkpoints). */
KR_MUST_USE kr_err kr_registry_open(kr_config *cfg, kr_store *store, const char *as,
				    const kr_hsm_opts *hsm, kr_registry **out);
void kr_registry_close(kr_registry *r);

/* What a command says besides its devices. */
typedef struct kr_reg_args {
	kr_reg_cmd cmd;
	const char *asp;   /* register: the ASP; an owner or operator acting on one of a
			    * device's registrations; transfer request: the losing ASP
			    * when a device has more than one */
	const char *mno;   /* switch-mno: the new MNO; import: for rows without one */
	const char *owner; /* import: for rows without one (the operator importing) */
	unsigned lock;     /* lock, unlock: KR_LOCK_* bits */
	char *const *csrs; /* activate: MNO manifests (device_id,model,version,csr) */
	int ncsrs;
	const char *out_dir; /* payload: where DEVICE.p7m files go */
	int chunk;           /* devices per transaction; 0: 1000 */
	int progress;        /* a progress line on stderr */
} kr_reg_args;

/* One device's outcome. */
typedef struct kr_reg_outcome {
	const char *where;  /* "file.csv:12", or the argument */
	const char *device; /* "" when the row had none */
	const char *result; /* what was done ("imported", "registered", "activated",
			     * "transferred", ...), "unchanged", or "refused" */
	const char *reason; /* refused or unchanged: why; else NULL */
	kr_code code;       /* refused: KR_EINPUT, KR_EDENIED, KR_EAUTH, ... */
	const char *from, *to;
	int64_t profile_id;
	const char *secret; /* authcode: the new code, shown this once */
} kr_reg_outcome;
typedef void (*kr_reg_outcome_cb)(const kr_reg_outcome *o, void *arg);

typedef struct kr_reg_summary {
	long done, unchanged, refused;
	kr_code first_refusal; /* the code of the first refused device */
} kr_reg_summary;

/* Runs a.cmd over items: device ids, or files (one device per line, or CSV
 * with a header: import's "Device ID,Model,Version[,MNO][,Owner]", transfer
 * request's "device,code"). Every item gets one outcome. An error returned
 * is the run's own (the store, the token): devices committed before it
 * stay done. */
KR_MUST_USE kr_err kr_registry_run(kr_registry *r, const kr_reg_args *a, char *const *items,
				   int nitems, kr_reg_outcome_cb cb, void *arg,
				   kr_reg_summary *sum);

/* show: the device as the acting account may see it, and its history (the
 * audit entries that name it, oldest first). */
KR_MUST_USE kr_err kr_registry_show(kr_registry *r, const char *device, kr_reg_record *rec,
				    kr_audit_cb history, void *arg);

/* One row of a listing: a device and one of its registrations (NULL when
 * it has none). */
typedef KR_MUST_USE kr_err (*kr_reg_row_cb)(const kr_reg_device *d, const kr_registration *g,
					    void *arg);

/* list: the devices the acting account may see (an ASP: those it sponsors
 * or is gaining, and of them only its own registration; an owner or MNO:
 * its own), filtered further by f and by state (KR_NSTATES: any). */
KR_MUST_USE kr_err kr_registry_list(kr_registry *r, const kr_reg_filter *f, kr_reg_state state,
				    kr_reg_row_cb cb, void *arg);
/* show's rows: a record as the acting account may see it. */
KR_MUST_USE kr_err kr_registry_rows(kr_registry *r, const kr_reg_record *rec, kr_reg_row_cb cb,
				    void *arg);

/* payload verify: opens a registry payload as its device would (its key
 * and certificate, PEM files) and checks the registry's signature up to
 * root; gives the JSON (malloc'd) and the signer's subject. */
KR_MUST_USE kr_err kr_payload_verify(const char *path, const char *key_path, const char *cert_path,
				     const char *root_path, char **json, size_t *len, char *signer,
				     size_t signersz);

/* A registration's state and flags for display. */
kr_reg_state kr_registry_state_of(const kr_reg_device *d, const kr_registration *g);
unsigned kr_registry_flags_of(const kr_reg_device *d, const kr_registration *g);

#endif
