/* The ceremony types: root, sub-ca, cross-sign, crl, key. */
#include "ceremony.h"
#include "transcript.h"
#include "../ca/build.h"
#include "../ca/lint.h"
#include "../ca/revoke.h"
#include "../ca/serial.h"
#include "../ca/sign.h"
#include "../policy/policy.h"
#include "../util/cleanup.h"
#include "../util/nconf.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <errno.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_OUTPUTS 4

typedef struct ceremony {
	kr_nconf *conf;
	const kr_ceremony_opts *o;
	kr_policy *policy;
	kr_transcript *t;
	const char *dir;
	kr_hsm *issuer_hsm, *key_hsm;
	kr_hsm_key *issuer_key, *new_key;
	int key_is_new; /* destroy new_key if the ceremony aborts */
	X509 *issuer_cert;
	char issuer_path[PATH_MAX];
	char made[MAX_OUTPUTS][PATH_MAX]; /* removed if the ceremony aborts */
	size_t nmade;
} ceremony;

/* ---- the script's sections ---------------------------------------------- */

static const kr_field ceremony_fields[] = {
	{"type", KR_F_STRING, 1},        {"operator", KR_F_STRING, 1},
	{"witnesses", KR_F_STRING, 1},   {"transcript", KR_F_STRING, 1},
	{"description", KR_F_STRING, 0},
};
static const kr_field key_fields[] = {
	{"uri", KR_F_STRING, 1},      {"type", KR_F_STRING, 1},    {"public_key", KR_F_STRING, 0},
	{"pin_file", KR_F_STRING, 0}, {"pin_env", KR_F_STRING, 0}, {"rsa_pss", KR_F_BOOL, 0},
};
static const kr_field keyonly_fields[] = {
	{"uri", KR_F_STRING, 1},      {"type", KR_F_STRING, 1},    {"public_key", KR_F_STRING, 1},
	{"pin_file", KR_F_STRING, 0}, {"pin_env", KR_F_STRING, 0},
};
static const kr_field issuer_fields[] = {
	{"certificate", KR_F_STRING, 1}, {"uri", KR_F_STRING, 1},   {"pin_file", KR_F_STRING, 0},
	{"pin_env", KR_F_STRING, 0},     {"rsa_pss", KR_F_BOOL, 0},
};
static const kr_field cert_fields[] = {
	{"subject", KR_F_SECTION, 1},   {"not_before", KR_F_STRING, 0},
	{"validity_days", KR_F_INT, 1}, {"extensions", KR_F_SECTION, 1},
	{"output", KR_F_STRING, 1},
};
static const kr_field cross_fields[] = {
	{"from_certificate", KR_F_STRING, 1}, {"not_before", KR_F_STRING, 0},
	{"validity_days", KR_F_INT, 1},       {"extensions", KR_F_SECTION, 1},
	{"output", KR_F_STRING, 1},
};
static const kr_field crl_fields[] = {
	{"number", KR_F_INT, 1},           {"this_update", KR_F_STRING, 0},
	{"next_update_days", KR_F_INT, 1}, {"revoked", KR_F_SECTION, 0},
	{"output", KR_F_STRING, 1},
};
#define CHECK(c, sec, fields) kr_nconf_check((c)->conf, sec, fields, sizeof fields / sizeof *fields)

static const char *get(ceremony *c, const char *section, const char *key)
{
	return kr_nconf_get(c->conf, section, key);
}

/* ---- paths and files ----------------------------------------------------- */

/* How the transcript names a file: relative to the output directory, where
 * the transcript itself lives, so the set can be moved and verified as one. */
static const char *rel(const ceremony *c, const char *path)
{
	size_t n = strlen(c->dir);
	if (strncmp(path, c->dir, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

static KR_MUST_USE kr_err out_path(ceremony *c, const char *section, const char *key, char *out)
{
	const char *v = get(c, section, key);
	kr_err e = kr_fs_join(c->dir, v, out, PATH_MAX);
	if (!kr_failed(&e))
		e = kr_fs_must_not_exist(out);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, key, "%s", e.msg);
	return kr_ok();
}

/* Inputs resolve against the output directory; a rehearsal falls back to
 * the real one for inputs an earlier rehearsed script did not make. */
static KR_MUST_USE kr_err in_path(ceremony *c, const char *rel, char *out)
{
	KR_TRY(kr_fs_join(c->dir, rel, out, PATH_MAX));
	if (access(out, F_OK) != 0 && c->o->input_dir)
		KR_TRY(kr_fs_join(c->o->input_dir, rel, out, PATH_MAX));
	return kr_ok();
}

static KR_MUST_USE kr_err read_cert(ceremony *c, const char *section, const char *key, X509 **out,
				    char *path)
{
	KR_TRY(in_path(c, get(c, section, key), path));
	KR_AUTO(uint8_t) data = NULL;
	size_t len = 0;
	kr_err e = kr_fs_read(path, 1 << 20, &data, &len);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, key, "%s", e.msg);
	KR_AUTO(BIO) bio = BIO_new_mem_buf(data, (int)len);
	*out = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (!*out) {
		const unsigned char *p = data;
		ERR_clear_error();
		*out = d2i_X509(NULL, &p, (long)len);
	}
	if (!*out)
		return kr_nconf_err(c->conf, KR_EINPUT, section, key,
				    "%s: not a PEM or DER certificate", path);
	uint8_t md[32];
	char hex[65];
	KR_TRY(kr_sha256(data, len, md));
	kr_hex(md, 32, hex);
	kr_transcript_line(c->t, "input certificate %s sha256 %s", rel(c, path), hex);
	return kr_ok();
}

static KR_MUST_USE kr_err record_output(ceremony *c, const char *kind, const char *path,
					const uint8_t *data, size_t len, const uint8_t *der,
					size_t derlen)
{
	uint8_t md[32];
	char hex[65], groups[96], words[512];
	KR_TRY(kr_sha256(data, len, md));
	kr_hex(md, 32, hex);
	path = rel(c, path);
	kr_transcript_line(c->t, "output %s %s sha256 %s", kind, path, hex);
	/* What the witnesses read aloud: the SHA-256 of the DER object. */
	KR_TRY(kr_sha256(der, derlen, md));
	kr_hex_groups(md, 32, groups);
	kr_pgp_words(md, 32, words, sizeof words);
	kr_transcript_line(c->t, "fingerprint %s sha256 %s", path, groups);
	kr_transcript_line(c->t, "words %s %s", path, words);
	return kr_ok();
}

/* Writes PEM text exclusively and records it; der is what it encodes. */
static KR_MUST_USE kr_err write_output(ceremony *c, const char *kind, const char *path, BIO *pem,
				       const uint8_t *der, size_t derlen)
{
	char *data = NULL;
	long n = BIO_get_mem_data(pem, &data);
	KR_ENSURE(c->nmade < MAX_OUTPUTS, KR_EINTERNAL, "too many outputs");
	KR_TRY(kr_transcript_commit(c->t));
	KR_TRY(kr_fs_write_new(path, data, (size_t)n, 0644));
	snprintf(c->made[c->nmade++], PATH_MAX, "%s", path);
	return record_output(c, kind, path, (const uint8_t *)data, (size_t)n, der, derlen);
}

/* Writes obj as PEM under pem_name, e.g. write_object(c, "certificate",
 * PEM_STRING_X509, (i2d_of_void *)i2d_X509, cert, path). */
static KR_MUST_USE kr_err write_object(ceremony *c, const char *kind, const char *pem_name,
				       i2d_of_void *i2d, const void *obj, const char *path)
{
	KR_AUTO(uint8_t) der = NULL;
	int derlen = i2d((void *)obj, &der);
	KR_AUTO(BIO) pem = BIO_new(BIO_s_mem());
	KR_OSSL(pem && derlen > 0 && PEM_write_bio(pem, pem_name, "", der, derlen) > 0,
		KR_EINTERNAL, "encoding the %s", kind);
	return write_output(c, kind, path, pem, der, (size_t)derlen);
}

static KR_MUST_USE kr_err write_cert(ceremony *c, const char *path, X509 *cert)
{
	return write_object(c, "certificate", PEM_STRING_X509, (i2d_of_void *)i2d_X509, cert, path);
}

static KR_MUST_USE kr_err write_pubkey(ceremony *c, const char *path, EVP_PKEY *pub)
{
	return write_object(c, "public-key", PEM_STRING_PUBLIC, (i2d_of_void *)i2d_PUBKEY, pub,
			    path);
}

/* ---- values ---------------------------------------------------------------- */

static KR_MUST_USE kr_err key_type(ceremony *c, const char *section, kr_key_type *out)
{
	kr_err e = kr_key_type_parse(get(c, section, "type"), out);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, "type", "%s", e.msg);
	return kr_ok();
}

static KR_MUST_USE kr_err days(ceremony *c, const char *section, const char *key, kr_cert_role role,
			       long *out)
{
	KR_TRY(kr_nconf_get_long(c->conf, section, key, 1, 0x7fffffffL, out));
	kr_err e = kr_policy_check_days(c->policy, role, *out);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, key, "%s", e.msg);
	return kr_ok();
}

static KR_MUST_USE kr_err when(ceremony *c, const char *section, const char *key, time_t *out)
{
	const char *v = get(c, section, key);
	if (!v || strcmp(v, "now") == 0) {
		*out = time(NULL);
		return kr_ok();
	}
	KR_AUTO(ASN1_TIME) t = ASN1_TIME_new();
	struct tm tm;
	if (!t || !ASN1_TIME_set_string_X509(t, v) || !ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return kr_nconf_err(c->conf, KR_EINPUT, section, key,
				    "expected 'now' or a time as YYYYMMDDHHMMSSZ, got '%s'", v);
	}
	*out = timegm(&tm);
	return kr_ok();
}

/* A DN section in req(1) style: one attribute per line, in order; "1.OU"
 * style prefixes allow an attribute twice. */
static KR_MUST_USE kr_err subject_name(ceremony *c, X509_NAME **out)
{
	const char *section = get(c, "certificate", "subject");
	STACK_OF(CONF_VALUE) *vals = NCONF_get_section(kr_nconf_nconf(c->conf), section);
	KR_AUTO(X509_NAME) name = X509_NAME_new();
	KR_OSSL(name, KR_EINTERNAL, "out of memory");
	for (int i = 0; vals && i < sk_CONF_VALUE_num(vals); i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
		const char *field = v->name, *dot = strchr(field, '.');
		if (dot && strspn(field, "0123456789") == (size_t)(dot - field))
			field = dot + 1;
		if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
						(const unsigned char *)v->value, -1, -1, 0)) {
			kr_err e = kr_err_ossl(KR_EINPUT, "bad attribute");
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name, "%s", e.msg);
		}
	}
	KR_ENSURE(X509_NAME_entry_count(name) > 0, KR_EINPUT, "%s: [%s] names no attribute",
		  kr_nconf_path(c->conf), section);
	*out = name;
	name = NULL;
	return kr_ok();
}

static kr_hsm_opts hsm_opts(ceremony *c, const char *section)
{
	kr_hsm_opts o = c->o->hsm;
	if (!o.rehearsal && (get(c, section, "pin_file") || get(c, section, "pin_env"))) {
		o.pin.file = get(c, section, "pin_file");
		o.pin.env = get(c, section, "pin_env");
	}
	return o;
}

static KR_MUST_USE kr_err open_token(ceremony *c, const char *section, kr_hsm **out)
{
	kr_hsm_opts o = hsm_opts(c, section);
	kr_err e = kr_hsm_open(get(c, section, "uri"), &o, out);
	kr_err_prefix(&e, "[%s] uri", section);
	KR_TRY(e);
	const kr_hsm_token_info *t = kr_hsm_token(*out);
	kr_transcript_step(c->t, "token-opened",
			   "label='%s' serial=%s model='%s' manufacturer='%s'", t->label, t->serial,
			   t->model, t->manufacturer);
	return kr_ok();
}

static KR_MUST_USE kr_err record_key(ceremony *c, kr_hsm *h, const kr_hsm_key *k, const char *what)
{
	size_t idlen;
	const uint8_t *id = kr_hsm_key_id(k, &idlen);
	char idhex[129], attrs[512], spki[65], words[512];
	kr_hex(id, idlen < 64 ? idlen : 64, idhex);
	kr_key_attrs a;
	kr_hsm_key_attrs(h, k, &a);
	kr_key_attrs_format(&a, attrs, sizeof attrs);
	uint8_t md[32];
	KR_TRY(kr_hsm_key_spki_sha256(k, md));
	kr_hex(md, 32, spki);
	kr_pgp_words(md, 32, words, sizeof words);
	kr_transcript_step(c->t, what, "label='%s' id=%s type=%s", kr_hsm_key_label(k), idhex,
			   kr_key_type_name(kr_hsm_key_type(k)));
	kr_transcript_line(c->t, "key-attributes %s", attrs);
	kr_transcript_line(c->t, "key-spki-sha256 %s", spki);
	kr_transcript_line(c->t, "key-spki-words %s", words);
	return kr_ok();
}

/* ---- the acts ---------------------------------------------------------------- */

static KR_MUST_USE kr_err generate_key(ceremony *c, kr_hsm *h, kr_key_type t)
{
	kr_err e = kr_hsm_keygen_check(h, get(c, "key", "uri"));
	kr_err_prefix(&e, "[key] uri");
	KR_TRY(e);
	/* From here on the token changes: the record must already be on disk. */
	KR_TRY(kr_transcript_commit(c->t));
	e = kr_hsm_keygen(h, get(c, "key", "uri"), t, &c->new_key);
	kr_err_prefix(&e, "[key] uri");
	KR_TRY(e);
	c->key_is_new = 1;
	return record_key(c, h, c->new_key, "key-generated");
}

static KR_MUST_USE kr_err open_issuer(ceremony *c)
{
	KR_TRY(open_token(c, "issuer", &c->issuer_hsm));
	kr_err e = kr_hsm_key_find(c->issuer_hsm, get(c, "issuer", "uri"), &c->issuer_key);
	kr_err_prefix(&e, "[issuer] uri");
	KR_TRY(e);
	/* The key that signs must be the key the issuer certificate certifies. */
	KR_ENSURE(EVP_PKEY_eq(kr_hsm_key_public(c->issuer_key), X509_get0_pubkey(c->issuer_cert)) ==
			  1,
		  KR_EVERIFY, "[issuer] the key '%s' on the token is not the key of %s",
		  kr_hsm_key_label(c->issuer_key), c->issuer_path);
	return record_key(c, c->issuer_hsm, c->issuer_key, "issuer-key-found");
}

static KR_MUST_USE kr_err issuer_type(ceremony *c, kr_key_type *out)
{
	kr_err e = kr_key_type_of(X509_get0_pubkey(c->issuer_cert), out);
	kr_err_prefix(&e, "%s", c->issuer_path);
	return e;
}

/* Draft, throwaway signature, lint, HSM signature, checks; then the
 * certificate is written to out and its chain recorded for verify. The
 * signer is key on h; issuer_path NULL means self-signed. */
static KR_MUST_USE kr_err issue(ceremony *c, kr_hsm *h, const kr_hsm_key *key, int pss,
				const kr_cert_spec *spec, kr_cert_role role, int check_ski,
				const char *out, const char *issuer_path)
{
	kr_signing s;
	KR_TRY(kr_signing_init(&s, h, key, pss));
	EVP_PKEY *issuer_pub = spec->issuer ? X509_get0_pubkey(spec->issuer) : spec->subject_key;
	KR_AUTO(X509) draft = NULL;
	KR_AUTO(X509) cert = NULL;
	kr_err e = kr_cert_draft(spec, &draft);
	if (!kr_failed(&e))
		e = kr_sign_draft_cert(&s, draft);
	if (!kr_failed(&e))
		e = kr_lint_cert(draft, spec->issuer, role, check_ski);
	if (!kr_failed(&e)) {
		kr_transcript_step(c->t, "lint-passed",
				   "%s certificate, signed with a throwaway %s key",
				   kr_role_name(role), kr_key_type_name(kr_hsm_key_type(key)));
		e = kr_transcript_commit(c->t);
	}
	if (!kr_failed(&e))
		e = kr_sign_cert(&s, draft, issuer_pub, &cert);
	kr_signing_clear(&s);
	KR_TRY(e);

	KR_AUTO(BIGNUM) bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *serial = bn ? BN_bn2hex(bn) : NULL;
	kr_transcript_step(c->t, "hsm-signed",
			   "serial=%s; signature verified with the issuer's public key; "
			   "to-be-signed bytes identical to the linted draft",
			   serial ? serial : "?");
	OPENSSL_free(serial);
	KR_TRY(write_cert(c, out, cert));
	kr_transcript_line(c->t, "chain certificate %s %s", rel(c, out),
			   issuer_path ? rel(c, issuer_path) : "self");
	return kr_ok();
}

/* Lints the profile with throwaway keys before the HSM is touched, so a bad
 * profile never costs a key. */
static KR_MUST_USE kr_err rehearse_profile(ceremony *c, kr_cert_spec spec, kr_key_type subject_type,
					   kr_key_type signer_type, int pss, kr_cert_role role)
{
	KR_AUTO(EVP_PKEY) subject_key = NULL;
	if (!spec.subject_key) {
		KR_TRY(kr_throwaway_key(subject_type, &subject_key));
		spec.subject_key = subject_key;
	}
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(kr_serial_throwaway(&serial));
	spec.serial = serial;

	kr_signing s;
	KR_TRY(kr_signing_init_draft(&s, signer_type, pss));
	KR_AUTO(X509) draft = NULL;
	kr_err e = kr_cert_draft(&spec, &draft);
	if (!kr_failed(&e))
		e = kr_sign_draft_cert(&s, draft);
	if (!kr_failed(&e))
		e = kr_lint_cert(draft, spec.issuer, role, spec.ski == NULL);
	kr_signing_clear(&s);
	kr_err_prefix(&e, "%s", kr_nconf_path(c->conf));
	KR_TRY(e);
	kr_transcript_step(c->t, "profile-linted", "%s profile passes the lint on throwaway keys",
			   kr_role_name(role));
	return kr_ok();
}

static KR_MUST_USE kr_err cert_spec(ceremony *c, kr_cert_role role, kr_cert_spec *spec, long *ndays)
{
	KR_TRY(days(c, "certificate", "validity_days", role, ndays));
	KR_TRY(when(c, "certificate", "not_before", &spec->not_before));
	spec->days = *ndays;
	spec->conf = kr_nconf_nconf(c->conf);
	spec->ext_section = get(c, "certificate", "extensions");
	return kr_ok();
}

static int pss(ceremony *c, const char *section)
{
	return kr_nconf_get_bool(c->conf, section, "rsa_pss", 0) == 1;
}

/* What root and sub-CA ceremonies share before the HSM acts: the new key's
 * type (allowed for a CA by policy), the certificate's subject and validity,
 * and the output paths. */
typedef struct new_ca {
	kr_key_type type;
	kr_cert_spec spec;
	X509_NAME *subject;
	char cert_out[PATH_MAX], pub_out[PATH_MAX];
} new_ca;

static void new_ca_clear(new_ca *n) { X509_NAME_free(n->subject); }

static KR_MUST_USE kr_err prepare_new_ca(ceremony *c, kr_cert_role role, new_ca *n)
{
	long ndays;
	KR_TRY(key_type(c, "key", &n->type));
	KR_TRY(kr_policy_check_ca_key(c->policy, n->type));
	KR_TRY(cert_spec(c, role, &n->spec, &ndays));
	KR_TRY(subject_name(c, &n->subject));
	n->spec.subject = n->subject;
	KR_TRY(out_path(c, "certificate", "output", n->cert_out));
	if (get(c, "key", "public_key"))
		KR_TRY(out_path(c, "key", "public_key", n->pub_out));
	return kr_ok();
}

/* The HSM part: generate the key, draw the serial from the signing token. */
static KR_MUST_USE kr_err make_key(ceremony *c, new_ca *n, kr_hsm *serial_from,
				   ASN1_INTEGER **serial)
{
	KR_TRY(open_token(c, "key", &c->key_hsm));
	KR_TRY(generate_key(c, c->key_hsm, n->type));
	KR_TRY(kr_serial_random(serial_from ? serial_from : c->key_hsm, serial));
	n->spec.serial = *serial;
	n->spec.subject_key = kr_hsm_key_public(c->new_key);
	return kr_ok();
}

static KR_MUST_USE kr_err root(ceremony *c, new_ca *n)
{
	KR_TRY(CHECK(c, "key", key_fields));
	KR_TRY(CHECK(c, "certificate", cert_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_TRY(prepare_new_ca(c, KR_ROLE_ROOT, n));
	KR_TRY(rehearse_profile(c, n->spec, n->type, n->type, pss(c, "key"), KR_ROLE_ROOT));

	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(make_key(c, n, NULL, &serial));
	KR_TRY(issue(c, c->key_hsm, c->new_key, pss(c, "key"), &n->spec, KR_ROLE_ROOT, 1,
		     n->cert_out, NULL));
	if (n->pub_out[0])
		KR_TRY(write_pubkey(c, n->pub_out, n->spec.subject_key));
	return kr_ok();
}

static KR_MUST_USE kr_err sub_ca(ceremony *c, new_ca *n)
{
	KR_TRY(CHECK(c, "key", key_fields));
	KR_TRY(CHECK(c, "issuer", issuer_fields));
	KR_TRY(CHECK(c, "certificate", cert_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_TRY(prepare_new_ca(c, KR_ROLE_SUB_CA, n));
	kr_key_type it;
	KR_TRY(read_cert(c, "issuer", "certificate", &c->issuer_cert, c->issuer_path));
	KR_TRY(issuer_type(c, &it));
	n->spec.issuer = c->issuer_cert;
	KR_TRY(rehearse_profile(c, n->spec, n->type, it, pss(c, "issuer"), KR_ROLE_SUB_CA));

	KR_TRY(open_issuer(c));
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(make_key(c, n, c->issuer_hsm, &serial));
	KR_TRY(issue(c, c->issuer_hsm, c->issuer_key, pss(c, "issuer"), &n->spec, KR_ROLE_SUB_CA, 1,
		     n->cert_out, c->issuer_path));
	if (n->pub_out[0])
		KR_TRY(write_pubkey(c, n->pub_out, n->spec.subject_key));
	return kr_ok();
}

static KR_MUST_USE kr_err run_root(ceremony *c)
{
	new_ca n = {0};
	kr_err e = root(c, &n);
	new_ca_clear(&n);
	return e;
}

static KR_MUST_USE kr_err run_sub_ca(ceremony *c)
{
	new_ca n = {0};
	kr_err e = sub_ca(c, &n);
	new_ca_clear(&n);
	return e;
}

/* A new certificate for an existing CA's name and key, signed by the issuer:
 * subject, key and subject key identifier come from from_certificate. */
static KR_MUST_USE kr_err run_cross_sign(ceremony *c)
{
	KR_TRY(CHECK(c, "issuer", issuer_fields));
	KR_TRY(CHECK(c, "certificate", cross_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	kr_key_type it, st;
	long ndays;
	kr_cert_spec spec = {0};
	char cert_out[PATH_MAX], from_path[PATH_MAX];
	KR_AUTO(X509) from = NULL;
	KR_TRY(cert_spec(c, KR_ROLE_CROSS, &spec, &ndays));
	KR_TRY(read_cert(c, "certificate", "from_certificate", &from, from_path));
	KR_TRY(read_cert(c, "issuer", "certificate", &c->issuer_cert, c->issuer_path));
	KR_TRY(issuer_type(c, &it));
	KR_TRY(kr_key_type_of(X509_get0_pubkey(from), &st));
	spec.subject = X509_get_subject_name(from);
	spec.subject_key = X509_get0_pubkey(from);
	spec.ski = X509_get0_subject_key_id(from);
	spec.issuer = c->issuer_cert;
	KR_ENSURE(spec.ski, KR_EPOLICY, "%s: has no subjectKeyIdentifier to carry over", from_path);
	KR_TRY(out_path(c, "certificate", "output", cert_out));
	KR_TRY(rehearse_profile(c, spec, st, it, pss(c, "issuer"), KR_ROLE_CROSS));

	KR_TRY(open_issuer(c));
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(kr_serial_random(c->issuer_hsm, &serial));
	spec.serial = serial;
	return issue(c, c->issuer_hsm, c->issuer_key, pss(c, "issuer"), &spec, KR_ROLE_CROSS, 0,
		     cert_out, c->issuer_path);
}

/* [revoked]: "<hex serial> = <reason>" (RFC 5280 5.3.1 names). */
static KR_MUST_USE kr_err revoked_entries(ceremony *c, time_t at, kr_crl_entry **out, size_t *n,
					  STACK_OF(ASN1_INTEGER) * *serials)
{
	const char *section = get(c, "crl", "revoked");
	STACK_OF(CONF_VALUE) *vals =
		section ? NCONF_get_section(kr_nconf_nconf(c->conf), section) : NULL;
	*n = vals ? (size_t)sk_CONF_VALUE_num(vals) : 0;
	*out = calloc(*n ? *n : 1, sizeof **out);
	*serials = sk_ASN1_INTEGER_new_null();
	KR_ENSURE(*out && *serials, KR_EINTERNAL, "out of memory");
	for (size_t i = 0; i < *n; i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, (int)i);
		/* The same rule as keyrite revoke: hexadecimal, 1 to 20 octets. */
		uint8_t raw[20];
		size_t len = 0;
		kr_err se = kr_serial_parse(v->name, raw, &len);
		if (kr_failed(&se))
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name, "%s", se.msg);
		ASN1_INTEGER *ai = NULL;
		KR_TRY(kr_serial_asn1(raw, len, &ai));
		if (!sk_ASN1_INTEGER_push(*serials, ai)) {
			ASN1_INTEGER_free(ai);
			return kr_errf(KR_EINTERNAL, "out of memory");
		}
		kr_err e = kr_crl_reason_parse(v->value, &(*out)[i].reason);
		if (kr_failed(&e))
			return kr_nconf_err(c->conf, e.code, section, v->name, "%s", e.msg);
		(*out)[i].serial = ai;
		(*out)[i].when = at;
	}
	return kr_ok();
}

static KR_MUST_USE kr_err run_crl(ceremony *c)
{
	KR_TRY(CHECK(c, "issuer", issuer_fields));
	KR_TRY(CHECK(c, "crl", crl_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	kr_key_type it;
	kr_crl_spec spec = {0};
	char crl_out[PATH_MAX];
	KR_TRY(kr_nconf_get_long(c->conf, "crl", "number", 0, 0x7fffffffL, &spec.number));
	KR_TRY(days(c, "crl", "next_update_days", KR_ROLE_CRL, &spec.next_update_days));
	KR_TRY(when(c, "crl", "this_update", &spec.this_update));
	KR_TRY(read_cert(c, "issuer", "certificate", &c->issuer_cert, c->issuer_path));
	KR_TRY(issuer_type(c, &it));
	spec.issuer = c->issuer_cert;
	KR_TRY(out_path(c, "crl", "output", crl_out));
	kr_crl_entry *entries = NULL;
	STACK_OF(ASN1_INTEGER) *serials = NULL;
	kr_err e = revoked_entries(c, spec.this_update, &entries, &spec.nrevoked, &serials);
	spec.revoked = entries;

	kr_signing s = {0};
	KR_AUTO(X509_CRL) draft = NULL;
	KR_AUTO(X509_CRL) crl = NULL;
	if (!kr_failed(&e))
		e = kr_signing_init_draft(&s, it, pss(c, "issuer"));
	if (!kr_failed(&e))
		e = kr_crl_draft(&spec, &draft);
	if (!kr_failed(&e))
		e = kr_sign_draft_crl(&s, draft);
	if (!kr_failed(&e))
		e = kr_lint_crl(draft, c->issuer_cert);
	if (!kr_failed(&e))
		kr_transcript_step(c->t, "lint-passed", "CRL number %ld with %zu entries",
				   spec.number, spec.nrevoked);
	if (!kr_failed(&e))
		e = open_issuer(c);
	if (!kr_failed(&e)) {
		s.hsm = c->issuer_hsm;
		s.key = c->issuer_key;
		e = kr_sign_crl(&s, draft, X509_get0_pubkey(c->issuer_cert), &crl);
	}
	if (!kr_failed(&e))
		kr_transcript_step(c->t, "hsm-signed",
				   "CRL signature verified with the issuer's public key; "
				   "to-be-signed bytes identical to the linted draft");
	if (!kr_failed(&e))
		e = write_object(c, "crl", PEM_STRING_X509_CRL, (i2d_of_void *)i2d_X509_CRL, crl,
				 crl_out);
	if (!kr_failed(&e))
		kr_transcript_line(c->t, "chain crl %s %s", rel(c, crl_out),
				   rel(c, c->issuer_path));
	kr_signing_clear(&s);
	sk_ASN1_INTEGER_pop_free(serials, ASN1_INTEGER_free);
	free(entries);
	return e;
}

static KR_MUST_USE kr_err run_key(ceremony *c)
{
	KR_TRY(CHECK(c, "key", keyonly_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	kr_key_type kt;
	char pub_out[PATH_MAX];
	KR_TRY(key_type(c, "key", &kt));
	KR_TRY(out_path(c, "key", "public_key", pub_out));
	KR_TRY(open_token(c, "key", &c->key_hsm));
	KR_TRY(generate_key(c, c->key_hsm, kt));
	return write_pubkey(c, pub_out, kr_hsm_key_public(c->new_key));
}

/* ---- the frame --------------------------------------------------------------- */

static const struct {
	const char *name;
	kr_err (*run)(ceremony *c);
} types[] = {
	{"root", run_root}, {"sub-ca", run_sub_ca}, {"cross-sign", run_cross_sign},
	{"crl", run_crl},   {"key", run_key},
};

static void header(ceremony *c, const char *script, const char *type)
{
	char hex[65], now[21];
	kr_hex(kr_nconf_sha256(c->conf), 32, hex);
	kr_utc_now(now);
	kr_transcript_line(c->t, KR_TRANSCRIPT_MAGIC);
	kr_transcript_line(c->t, "ceremony %s", type);
	kr_transcript_line(c->t, "script %s sha256 %s", script, hex);
	kr_transcript_line(c->t,
			   "policy %s root_max_days=%ld sub_ca_max_days=%ld "
			   "cross_max_days=%ld crl_max_days=%ld",
			   c->o->policy ? c->o->policy : "built-in",
			   kr_policy_max_days(c->policy, KR_ROLE_ROOT),
			   kr_policy_max_days(c->policy, KR_ROLE_SUB_CA),
			   kr_policy_max_days(c->policy, KR_ROLE_CROSS),
			   kr_policy_max_days(c->policy, KR_ROLE_CRL));
	if (c->o->hsm.rehearsal)
		kr_transcript_line(c->t, "rehearsal throwaway SoftHSM tokens; not a real ceremony");
	if (get(c, "ceremony", "description"))
		kr_transcript_line(c->t, "description %s", get(c, "ceremony", "description"));
	kr_transcript_line(c->t, "operator %s", get(c, "ceremony", "operator"));
	char *list = strdup(get(c, "ceremony", "witnesses")), *save = NULL;
	for (char *w = list ? strtok_r(list, ",", &save) : NULL; w;
	     w = strtok_r(NULL, ",", &save)) {
		w += strspn(w, " \t");
		size_t n = strlen(w);
		while (n > 0 && (w[n - 1] == ' ' || w[n - 1] == '\t'))
			w[--n] = '\0';
		if (n)
			kr_transcript_line(c->t, "witness %s", w);
	}
	free(list);
	kr_transcript_line(c->t, "start %s", now);
}

/* Undoes what an aborted ceremony made, and says so in the transcript. */
static void roll_back(ceremony *c, const kr_err *why)
{
	char now[21];
	kr_utc_now(now);
	kr_transcript_line(c->t, "abort %s %s", now, why->msg);
	if (c->key_is_new) {
		kr_err e = kr_hsm_key_destroy(c->key_hsm, c->new_key);
		kr_transcript_step(c->t, "key-destroyed", "label='%s' %s",
				   kr_hsm_key_label(c->new_key), kr_failed(&e) ? e.msg : "ok");
	}
	for (size_t i = 0; i < c->nmade; i++) {
		if (unlink(c->made[i]) == 0 || errno == ENOENT)
			kr_transcript_step(c->t, "output-removed", "%s", c->made[i]);
		else
			kr_transcript_step(c->t, "output-not-removed", "%s: %s", c->made[i],
					   strerror(errno));
	}
}

static void release(ceremony *c)
{
	kr_hsm_key_free(c->new_key);
	kr_hsm_key_free(c->issuer_key);
	kr_hsm_close(c->key_hsm);
	kr_hsm_close(c->issuer_hsm);
	X509_free(c->issuer_cert);
	kr_transcript_free(c->t);
	kr_policy_free(c->policy);
	kr_nconf_free(c->conf);
}

static KR_MUST_USE kr_err prepare(ceremony *c, const char *script, kr_err (**run)(ceremony *))
{
	KR_TRY(kr_nconf_load(script, &c->conf));
	KR_TRY(CHECK(c, "ceremony", ceremony_fields));
	const char *type = get(c, "ceremony", "type");
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strcmp(types[i].name, type) == 0)
			*run = types[i].run;
	if (!*run)
		return kr_nconf_err(
			c->conf, KR_EINPUT, "ceremony", "type",
			"unknown ceremony type '%s' (root, sub-ca, cross-sign, crl, key)", type);
	const char *tpath = get(c, "ceremony", "transcript");
	if (strchr(tpath, '/'))
		return kr_nconf_err(
			c->conf, KR_EINPUT, "ceremony", "transcript",
			"give a file name: the transcript lives in the output directory "
			"beside the files it records");
	char path[PATH_MAX];
	KR_TRY(out_path(c, "ceremony", "transcript", path));
	KR_TRY(kr_policy_load(c->o->policy, &c->policy));
	KR_TRY(kr_transcript_new(path, c->o->echo, &c->t));
	header(c, script, type);
	return kr_ok();
}

KR_MUST_USE kr_err kr_ceremony_run(const char *script, const kr_ceremony_opts *o)
{
	ceremony c = {.o = o, .dir = o->dir ? o->dir : "."};
	kr_err (*run)(ceremony *) = NULL;
	kr_err e = prepare(&c, script, &run);
	if (!kr_failed(&e))
		e = run(&c);
	uint8_t hash[32];
	if (!kr_failed(&e)) {
		char now[21];
		kr_utc_now(now);
		c.key_is_new = 0;
		kr_transcript_line(c.t, "end %s", now);
		e = kr_transcript_finish(c.t, hash);
	} else if (c.t && kr_transcript_committed(c.t)) {
		/* Something irreversible had happened: keep the record of it. */
		roll_back(&c, &e);
		kr_err f = kr_transcript_finish(c.t, hash);
		if (kr_failed(&f) && strcmp(f.msg, e.msg) != 0) { /* not the failure itself */
			kr_err_prefix(&f, "the transcript of the abort could not be completed");
			kr_err_also(&e, &f);
		}
	}
	if (!kr_failed(&e) && o->echo) {
		char groups[96], words[512];
		kr_hex_groups(hash, 32, groups);
		kr_pgp_words(hash, 32, words, sizeof words);
		fprintf(o->echo, "\nFor the paper log, the transcript's SHA-256:\n  %s\n  %s\n",
			groups, words);
	}
	release(&c);
	return e;
}
