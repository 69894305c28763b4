/* Shared by the ceremony/ sources only: a ceremony in progress, and its
 * script as typed, checked values (after Boulder's ceremony tool: one
 * strictly checked configuration per ceremony type, refused before the HSM
 * is touched). script.c reads and checks; run.c acts from what it read. */
#ifndef KR_CEREMONY_INTERNAL_H
#define KR_CEREMONY_INTERNAL_H

#include "ceremony.h"
#include "transcript.h"
#include "../ca/build.h"
#include "../ca/sign.h"
#include "../policy/policy.h"
#include "../util/nconf.h"

#include <limits.h>
#include <openssl/x509.h>
#include <time.h>

#define MAX_OUTPUTS 4

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
} ceremony;

/* [key]: the key a ceremony generates. */
typedef struct key_part {
	const char *uri;
	kr_key_type type;
	int pss;
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

/* A script, read and checked: the parts its type uses are filled. */
typedef struct script {
	const char *type;
	key_part key;
	issuer_part issuer;
	cert_part cert;
	crl_part crl;
} script;

/* Reads the [ceremony] section and opens the transcript (in memory until
 * the first act), then the type's sections: every value checked, every
 * output path free, inputs read and recorded, the profile linted on
 * throwaway keys. Nothing touches the HSM or writes a file. */
KR_MUST_USE kr_err kr_script_read(ceremony *c, const char *path, script *s);
void kr_script_clear(script *s);

/* How the transcript names a file: relative to the output directory. */
const char *kr_ceremony_rel(const ceremony *c, const char *path);

#endif
