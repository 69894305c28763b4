/* Shared by the ceremony/ sources only: a ceremony in progress, and its
 * script as typed, checked values (after Boulder's ceremony tool: one
 * strictly checked configuration per ceremony type, refused before the HSM
 * is touched). script.c reads and checks; run.c acts from what it read. */
#ifndef KR_CEREMONY_INTERNAL_H
#define KR_CEREMONY_INTERNAL_H

#include "ceremony.h"
#include "transcript.h"
#include "../ca/build.h"
#include "../crypto/backup.h"
#include "../ca/sign.h"
#include "../policy/policy.h"
#include "../util/nconf.h"
#include "../util/tty.h"

#include <limits.h>
#include <openssl/x509.h>
#include <time.h>

#define MAX_OUTPUTS (2 + MAX_BACKUP_KEYS + KR_VSS_MAX) /* a backup's */
#define MAX_BACKUP_KEYS 8

typedef struct ceremony {
	kr_nconf *conf;
	const kr_ceremony_opts *o;
	kr_policy *policy;
	kr_transcript *t;
	const char *dir;
	kr_hsm *issuer_hsm, *key_hsm;
	kr_hsm_key *issuer_key, *new_key;
	int key_is_new;                   /* destroy new_key if the ceremony aborts */
	char made[MAX_OUTPUTS][PATH_MAX]; /* removed if the ceremony aborts */
	size_t nmade;
	kr_hsm *tokens[MAX_BACKUP_KEYS]; /* backup, restore: each token once */
	char token_label[MAX_BACKUP_KEYS][33];
	size_t ntokens;
	kr_hsm *restored_hsm[MAX_BACKUP_KEYS]; /* restore: destroyed if it aborts */
	kr_hsm_key *restored[MAX_BACKUP_KEYS];
	size_t nrestored;
} ceremony;

/* [key]: the key a ceremony generates. */
typedef struct key_part {
	const char *uri;
	kr_key_type type;
	int pss;
	int for_backup; /* backup = true: CKA_WRAP_WITH_TRUSTED (a backup ceremony's) */
	kr_hsm_opts hsm;
	char public_key[PATH_MAX]; /* where its public key goes, or "" */
} key_part;

/* [issuer]: the CA that signs, its certificate read and its key found later. */
typedef struct issuer_part {
	const char *uri;
	int pss;
	kr_hsm_opts hsm;
	char path[PATH_MAX];
	X509 *cert;
	kr_key_type type;
} issuer_part;

/* [certificate]: what is certified; serial and key come from the token. */
typedef struct cert_part {
	kr_cert_spec spec;
	kr_cert_role role;
	X509_NAME *subject; /* root and sub-CA: from the script */
	X509 *from;         /* cross-sign: the certificate whose name and key it certifies */
	char output[PATH_MAX];
} cert_part;

/* [crl]: the CRL drafted, signed with the issuer's throwaway twin and
 * linted, waiting for the token's signature. */
typedef struct crl_part {
	kr_crl_spec spec;
	kr_crl_entry *entries;
	STACK_OF(ASN1_INTEGER) * serials;
	kr_signing signing;
	X509_CRL *draft;
	char output[PATH_MAX];
} crl_part;

/* One key of a backup or restore, from its own section. */
typedef struct backup_key {
	char section[64];
	const char *uri; /* backup: the key; restore: the token it goes onto */
	size_t token;    /* its token: c->tokens[token] */
	kr_hsm_key *key; /* backup: the key found; freed by the act */
	kr_hsm_opts hsm;
	kr_pin_source so;    /* the token's SO, who alone makes a trusted key */
	char file[PATH_MAX]; /* backup: written; restore: read */
	/* restore: the file's contents, the CA certificate its key must match,
	 * and the key's SPKI hash in the backup transcript */
	kr_backup_file backup;
	char cert_path[PATH_MAX];
	X509 *cert;
} backup_key;

/* [backup], [restore], [share-check]: the M-of-N backup (backup.c,
 * restore.c). */
typedef struct backup_part {
	int m, n;
	char custodian[KR_VSS_MAX][128]; /* of share i + 1 */
	backup_key keys[MAX_BACKUP_KEYS];
	size_t nkeys;
	char verifier_path[PATH_MAX];
	kr_vss_verifier verifier;    /* restore, share-check: read */
	uint8_t verifier_sha256[32]; /* restore, share-check: the transcript's */
	char shares_dir[PATH_MAX];   /* backup: pages written there, or "" */
	int for_backup;              /* restore: extractable under a trusted key again */
} backup_part;

/* A script, read and checked: the parts its type uses are filled. */
typedef struct script {
	const char *type;
	key_part key;
	issuer_part issuer;
	cert_part cert;
	crl_part crl;
	backup_part backup;
} script;

/* The M-of-N types: checked scripts (as script.c's types) and their acts
 * (as run.c's). */
KR_MUST_USE kr_err kr_backup_read(ceremony *c, script *s);
KR_MUST_USE kr_err kr_backup_act(ceremony *c, script *s);
KR_MUST_USE kr_err kr_restore_read(ceremony *c, script *s);
KR_MUST_USE kr_err kr_restore_act(ceremony *c, script *s);
KR_MUST_USE kr_err kr_share_check_read(ceremony *c, script *s);
KR_MUST_USE kr_err kr_share_check_act(ceremony *c, script *s);

/* The custodians at the terminal (custodian.c). The operator confirms
 * custodian i (1..n) before their page is produced: KR_EINPUT if not. */
KR_MUST_USE kr_err kr_custodian_confirm(kr_tty *t, const backup_part *b, int i);
/* The page of share s, as printed or written for its custodian. */
KR_MUST_USE kr_err kr_custodian_page(const backup_part *b, const char *name, const kr_vss_share *s,
				     const char *words, char *out, size_t sz);
/* Shares typed one at a time into got, each refused one (not the
 * verifier's, a duplicate) named and in the transcript; an empty first
 * line ends the entry. rebuild (a restore): until m good ones, KR_EINPUT
 * if the entry ends before. Else (a share-check): until all n, or the
 * end of the entry after at least one. */
KR_MUST_USE kr_err kr_custodian_collect(ceremony *c, kr_tty *t, const backup_part *b, int rebuild,
					kr_vss_share *got, int *ngot);

/* backup.c, shared with restore.c: the keys' sections a [section]'s keys
 * list names, each checked against fields; and the backup key put on each
 * token in turn, with_key called for each key on it, then destroyed. */
KR_MUST_USE kr_err kr_backup_key_sections(ceremony *c, const char *section, const kr_field *fields,
					  size_t nfields, backup_part *b);
typedef kr_err (*kr_backup_with_key)(ceremony *c, backup_part *b, size_t i, kr_hsm *h,
				     kr_hsm_backup_key *bk);
KR_MUST_USE kr_err kr_backup_on_tokens(ceremony *c, backup_part *b, const uint8_t key[32],
				       kr_backup_with_key with_key);

/* Shared by the types (script.c, run.c). */
const char *kr_ceremony_get(const ceremony *c, const char *section, const char *key);
KR_MUST_USE kr_err kr_ceremony_out_path(ceremony *c, const char *section, const char *key,
					char *out);
KR_MUST_USE kr_err kr_ceremony_in_path(ceremony *c, const char *rel, char *out);
/* An input file read whole and recorded ("input KIND PATH sha256 HEX"). */
KR_MUST_USE kr_err kr_ceremony_input(ceremony *c, const char *section, const char *key,
				     const char *kind, char *path, uint8_t **data, size_t *len);
/* A certificate, PEM or DER, read as an input. */
KR_MUST_USE kr_err kr_ceremony_read_cert(ceremony *c, const char *section, const char *key,
					 X509 **out, char *path);
kr_hsm_opts kr_ceremony_hsm_opts(ceremony *c, const char *section);
KR_MUST_USE kr_err kr_ceremony_open_token(ceremony *c, const char *section, const char *uri,
					  const kr_hsm_opts *o, kr_hsm **out);
/* The ceremony's handle on the token uri names, c->tokens[*index]: opened
 * once, however many keys of the script are on it, closed with the ceremony. */
KR_MUST_USE kr_err kr_ceremony_token(ceremony *c, const char *section, const char *uri,
				     const kr_hsm_opts *o, size_t *index);
KR_MUST_USE kr_err kr_ceremony_record_key(ceremony *c, kr_hsm *h, const kr_hsm_key *k,
					  const char *what);
/* Writes data exclusively (mode 0644), remembered for an abort to remove,
 * and records "output KIND PATH sha256 HEX". */
KR_MUST_USE kr_err kr_ceremony_write(ceremony *c, const char *kind, const char *path,
				     const void *data, size_t len);

/* Reads the [ceremony] section and opens the transcript (in memory until
 * the first act), then the type's sections: every value checked, every
 * output path free, inputs read and recorded, the profile linted on
 * throwaway keys. Nothing touches the HSM or writes a file. */
KR_MUST_USE kr_err kr_script_read(ceremony *c, const char *path, script *s);
void kr_script_clear(script *s);

/* How the transcript names a file: relative to the output directory. */
const char *kr_ceremony_rel(const ceremony *c, const char *path);

#endif
