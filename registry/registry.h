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

#include "authcode.h"
#include "rules.h"
#include "../hsm/hsm.h"
#include "../policy/config.h"
#include "../store/registry.h"
#include "../store/service.h"

#include <openssl/x509.h>
#include <stdio.h>

typedef struct kr_registry kr_registry;

/* as: the acting account (NULL: the operator). Opens the registry's CA and
 * logs in to its token (every command records and checkpoints). */
KR_MUST_USE kr_err kr_registry_open(kr_config *cfg, kr_store *store, const char *as,
				    const kr_hsm_opts *hsm, kr_registry **out);
void kr_registry_close(kr_registry *r);
/* The account the next commands act as (the service's authenticated
 * client); KR_EINPUT if the configuration has no such account. */
KR_MUST_USE kr_err kr_registry_act_as(kr_registry *r, const char *account);
/* The registry's CA: its certificate and chain (the service's trust). */
const struct kr_authority *kr_registry_authority(const kr_registry *r);
/* Signs a checkpoint over the audit log's entries that none covers yet
 * (a run killed between its commit and its checkpoint left them). */
KR_MUST_USE kr_err kr_registry_checkpoint(kr_registry *r);

/* A device named in memory (the online service's requests): never a file
 * name. csr: activate's request for it (DER), or NULL for the CSR on
 * record. */
typedef struct kr_reg_row {
	const char *device, *model, *version, *mno, *owner, *code;
	const uint8_t *csr;
	size_t csr_len;
	int proven; /* csr may be a CRMF template whose proof of possession the
		     * caller checked (the CMP server: ca/csr.h) */
} kr_reg_row;

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
	const kr_reg_row *rows; /* instead of items: the devices, in memory */
	int nrows;
	const char *out_dir; /* payload: where DEVICE.p7m files go */
	int confirm_later;   /* rekey: the certificate replaced stays valid until
			      * kr_registry_supersede (a CMP kur awaiting certConf) */
	int chunk;           /* devices per transaction; 0: 1000 */
	int preview;         /* import only: every row's outcome, then nothing kept (each
			      * chunk rolled back: the console's preview of a CSV) */
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
	const char *secret;  /* authcode, secret: the new auth code or enrollment
			      * secret, shown this once */
	const uint8_t *cert; /* activated: the certificate issued (DER) */
	size_t cert_len;
} kr_reg_outcome;
typedef void (*kr_reg_outcome_cb)(const kr_reg_outcome *o, void *arg);

/* What an outcome's secret is, by its command: "auth_code" (authcode),
 * "enrollment_secret" (secret). */
const char *kr_reg_secret_name(const kr_reg_outcome *o);

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
 * its own), filtered further by f and by state (KR_NSTATES: any). A page
 * (f->limit) gives in next the id to continue after ("" at the end, or
 * NULL not to be told). */
KR_MUST_USE kr_err kr_registry_list(kr_registry *r, const kr_reg_filter *f, kr_reg_state state,
				    kr_reg_row_cb cb, void *arg, char next[80]);
/* show's rows: a record as the acting account may see it. */
KR_MUST_USE kr_err kr_registry_rows(kr_registry *r, const kr_reg_record *rec, kr_reg_row_cb cb,
				    void *arg);

/* The certificate of the device's current profile, as the acting account
 * may see it (its own registration's, for an ASP): DER, malloc'd;
 * KR_EINPUT when the device has no valid one. */
KR_MUST_USE kr_err kr_registry_current_cert(kr_registry *r, const char *device, uint8_t **der,
					    size_t *len);

/* A rekey run with confirm_later confirmed: the device's certificates
 * other than its current one (whose serial is given) revoked as
 * superseded, as the acting account, if it may rekey the device; *n: how
 * many (0: confirmed before). */
KR_MUST_USE kr_err kr_registry_supersede(kr_registry *r, const char *device, const uint8_t *serial,
					 size_t len, long *n);

/* The registry in numbers, for the operator only (store/registry.h's
 * kr_store_registry_stats); KR_EDENIED for any other account. */
KR_MUST_USE kr_err kr_registry_stats(kr_registry *r, kr_reg_stat_cb cb, void *arg);

/* The certificate of each registration of the device the acting account
 * may see (its profile's, valid or revoked). */
typedef KR_MUST_USE kr_err (*kr_reg_cert_cb)(const kr_registration *g, const kr_cert_info *c,
					     void *arg);
KR_MUST_USE kr_err kr_registry_certs(kr_registry *r, const char *device, kr_reg_cert_cb cb,
				     void *arg);

/* An ASP's service, as the registry payload tells devices to know it: the
 * TLSA owner name (_PORT._tcp.ENDPOINT., RFC 6698 section 3) and rdata
 * (3 1 1 and its server certificate's key hash); KR_EINPUT if its account
 * names no endpoint and server_certificate. */
KR_MUST_USE kr_err kr_registry_service_tlsa(kr_registry *r, const char *asp, char owner[300],
					    char rdata[8 + 65]);

/* The acting account: its name and kind ("operator", "owner", "asp",
 * "mno"). */
void kr_registry_account(const kr_registry *r, const char **name, const char **kind);

/* The device an online request (a CSR, a CRMF template) names: its
 * subject's serialNumber, else its common name; KR_EINPUT if neither. */
KR_MUST_USE kr_err kr_registry_device_of(const X509_NAME *subject, char *out, size_t outsz);

/* The device a certificate of the registry's CA was issued to (its
 * serial); KR_EINPUT if there is none. */
KR_MUST_USE kr_err kr_registry_device_of_cert(kr_registry *r, const uint8_t *serial, size_t len,
					      char *device, size_t n);

/* The device a valid certificate (DER) of the registry's CA was issued
 * to: its current one, or one a rekey left valid awaiting confirmation;
 * KR_EAUTH if it is none. */
KR_MUST_USE kr_err kr_registry_device_of_valid(kr_registry *r, const uint8_t *der, size_t len,
					       char *device, size_t n);

/* A device's enrollment secret (CMP PBM), derived again, for its MNO
 * account or the operator; KR_EAUTH (for any reason: a client learns
 * nothing) if the device has none that account may use. */
KR_MUST_USE kr_err kr_registry_enrollment_secret(kr_registry *r, const char *device,
						 char text[KR_CODE_TEXT + 1]);

/* Issues a client certificate for the online service (keyrite serve)
 * under [registry] client_profile from a DER CSR and binds it to account;
 * the operator only. Gives the certificate (DER, malloc'd). */
KR_MUST_USE kr_err kr_registry_issue_client(kr_registry *r, const char *account, const uint8_t *csr,
					    size_t csr_len, uint8_t **der, size_t *len);
/* The account a client certificate (its issuer's certificate and its
 * serial) is bound to: KR_EAUTH, with the reason, when it is unknown,
 * revoked, not bound or its account is gone. */
KR_MUST_USE kr_err kr_registry_client_account(kr_registry *r, X509 *cert, char account[64]);

/* The poll queue (RFC 5730 section 2.9.2.3): what happened to the acting
 * account's devices that another account did, oldest first. */
typedef KR_MUST_USE kr_err (*kr_reg_poll_cb)(const kr_poll_msg *m, long count, void *arg);
KR_MUST_USE kr_err kr_registry_poll(kr_registry *r, kr_reg_poll_cb cb, void *arg, long *count);
/* KR_EINPUT if the account has no message of that id. */
KR_MUST_USE kr_err kr_registry_poll_ack(kr_registry *r, int64_t id);

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
