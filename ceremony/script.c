/* Ceremony scripts (keyrite-ceremony(5)) read into typed values and checked,
 * each type by one function, before anything runs: the script's sections and
 * keys, key types and the policy's caps, times, the subject, every output
 * path free, the input certificates (recorded in the transcript), and the
 * profile linted on throwaway keys, so a bad script never costs a key. */
#include "internal.h"
#include "../ca/lint.h"
#include "../ca/revoke.h"
#include "../ca/serial.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const kr_field ceremony_fields[] = {
	{"type", KR_F_STRING, 1},        {"operator", KR_F_STRING, 1},
	{"witnesses", KR_F_STRING, 1},   {"transcript", KR_F_STRING, 1},
	{"description", KR_F_STRING, 0},
};
static const kr_field key_fields[] = {
	{"uri", KR_F_STRING, 1},      {"type", KR_F_STRING, 1},    {"public_key", KR_F_STRING, 0},
	{"pin_file", KR_F_STRING, 0}, {"pin_env", KR_F_STRING, 0}, {"rsa_pss", KR_F_BOOL, 0},
	{"backup", KR_F_BOOL, 0},
};
static const kr_field keyonly_fields[] = {
	{"uri", KR_F_STRING, 1},      {"type", KR_F_STRING, 1},    {"public_key", KR_F_STRING, 1},
	{"pin_file", KR_F_STRING, 0}, {"pin_env", KR_F_STRING, 0}, {"backup", KR_F_BOOL, 0},
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

const char *kr_ceremony_get(const ceremony *c, const char *section, const char *key)
{
	return kr_nconf_get(c->conf, section, key);
}

static const char *get(const ceremony *c, const char *section, const char *key)
{
	return kr_ceremony_get(c, section, key);
}

/* ---- paths and files ----------------------------------------------------- */

/* Relative to the output directory, where the transcript itself lives, so
 * the set can be moved and verified as one. */
const char *kr_ceremony_rel(const ceremony *c, const char *path)
{
	size_t n = strlen(c->dir);
	if (strncmp(path, c->dir, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

KR_MUST_USE kr_err kr_ceremony_out_path(ceremony *c, const char *section, const char *key,
					char *out)
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
KR_MUST_USE kr_err kr_ceremony_in_path(ceremony *c, const char *rel, char *out)
{
	KR_TRY(kr_fs_join(c->dir, rel, out, PATH_MAX));
	if (access(out, F_OK) != 0 && c->o->input_dir)
		KR_TRY(kr_fs_join(c->o->input_dir, rel, out, PATH_MAX));
	return kr_ok();
}

KR_MUST_USE kr_err kr_ceremony_input(ceremony *c, const char *section, const char *key,
				     const char *kind, char *path, uint8_t **data, size_t *len)
{
	KR_TRY(kr_ceremony_in_path(c, get(c, section, key), path));
	kr_err e = kr_fs_read(path, 8 << 20, data, len);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, key, "%s", e.msg);
	uint8_t md[32];
	char hex[65];
	KR_TRY(kr_sha256(*data, *len, md));
	kr_hex(md, 32, hex);
	kr_transcript_line(c->t, "input %s %s sha256 %s", kind, kr_ceremony_rel(c, path), hex);
	return kr_ok();
}

KR_MUST_USE kr_err kr_ceremony_read_cert(ceremony *c, const char *section, const char *key,
					 X509 **out, char *path)
{
	KR_AUTO(uint8_t) data = NULL;
	size_t len = 0;
	KR_TRY(kr_ceremony_input(c, section, key, "certificate", path, &data, &len));
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
	return kr_ok();
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

/* The module and PIN for a section's token: the section's own PIN source,
 * unless a rehearsal's throwaway tokens have theirs. */
kr_hsm_opts kr_ceremony_hsm_opts(ceremony *c, const char *section)
{
	kr_hsm_opts o = c->o->hsm;
	if (!o.rehearsal && (get(c, section, "pin_file") || get(c, section, "pin_env"))) {
		o.pin.file = get(c, section, "pin_file");
		o.pin.env = get(c, section, "pin_env");
	}
	return o;
}

static int pss(ceremony *c, const char *section)
{
	return kr_nconf_get_bool(c->conf, section, "rsa_pss", 0) == 1;
}

/* ---- the parts ------------------------------------------------------------- */

/* [key]; a CA's key type is one the policy allows. */
static KR_MUST_USE kr_err read_key(ceremony *c, int for_ca, key_part *k)
{
	KR_TRY(key_type(c, "key", &k->type));
	if (for_ca)
		KR_TRY(kr_policy_check_ca_key(c->policy, k->type));
	k->uri = get(c, "key", "uri");
	k->pss = pss(c, "key");
	k->for_backup = kr_nconf_get_bool(c->conf, "key", "backup", 0) == 1;
	k->hsm = kr_ceremony_hsm_opts(c, "key");
	return kr_ok();
}

static KR_MUST_USE kr_err read_public_key_out(ceremony *c, key_part *k)
{
	return get(c, "key", "public_key")
		       ? kr_ceremony_out_path(c, "key", "public_key", k->public_key)
		       : kr_ok();
}

static KR_MUST_USE kr_err read_issuer(ceremony *c, issuer_part *i)
{
	KR_TRY(kr_ceremony_read_cert(c, "issuer", "certificate", &i->cert, i->path));
	kr_err e = kr_key_type_of(X509_get0_pubkey(i->cert), &i->type);
	kr_err_prefix(&e, "%s", i->path);
	KR_TRY(e);
	i->uri = get(c, "issuer", "uri");
	i->pss = pss(c, "issuer");
	i->hsm = kr_ceremony_hsm_opts(c, "issuer");
	return kr_ok();
}

/* [certificate]'s validity and extensions, for a certificate in role. */
static KR_MUST_USE kr_err read_validity(ceremony *c, kr_cert_role role, cert_part *p)
{
	long ndays = 0;
	p->role = role;
	KR_TRY(days(c, "certificate", "validity_days", role, &ndays));
	KR_TRY(when(c, "certificate", "not_before", &p->spec.not_before));
	p->spec.days = ndays;
	p->spec.conf = kr_nconf_nconf(c->conf);
	p->spec.ext_section = get(c, "certificate", "extensions");
	return kr_ok();
}

/* A new CA's [certificate]: validity, subject, output. */
static KR_MUST_USE kr_err read_new_ca(ceremony *c, kr_cert_role role, cert_part *p)
{
	KR_TRY(read_validity(c, role, p));
	KR_TRY(subject_name(c, &p->subject));
	p->spec.subject = p->subject;
	return kr_ceremony_out_path(c, "certificate", "output", p->output);
}

/* Lints the profile with throwaway keys before the HSM is touched, so a bad
 * profile never costs a key. */
static KR_MUST_USE kr_err rehearse_profile(ceremony *c, kr_cert_spec spec, kr_key_type subject_type,
					   kr_key_type signer_type, int rsa_pss, kr_cert_role role)
{
	KR_AUTO(EVP_PKEY) subject_key = NULL;
	if (!spec.subject_key) {
		KR_TRY(kr_throwaway_key(subject_type, &subject_key));
		spec.subject_key = subject_key;
	}
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(kr_serial_throwaway(&serial));
	spec.serial = serial;
	KR_SIGNING(s);
	KR_AUTO(X509) draft = NULL;
	KR_TRY(kr_signing_init_draft(&s, signer_type, rsa_pss));
	kr_err e = kr_cert_draft(&spec, &draft);
	if (!kr_failed(&e))
		e = kr_sign_draft_cert(&s, draft);
	if (!kr_failed(&e))
		e = kr_lint_cert(draft, spec.issuer, role, spec.ski == NULL);
	kr_err_prefix(&e, "%s", kr_nconf_path(c->conf));
	KR_TRY(e);
	kr_transcript_step(c->t, "profile-linted", "%s profile passes the lint on throwaway keys",
			   kr_role_name(role));
	return kr_ok();
}

/* [revoked]: "<hex serial> = <reason>" (RFC 5280 5.3.1 names). */
static KR_MUST_USE kr_err read_revoked(ceremony *c, crl_part *p)
{
	const char *section = get(c, "crl", "revoked");
	STACK_OF(CONF_VALUE) *vals =
		section ? NCONF_get_section(kr_nconf_nconf(c->conf), section) : NULL;
	size_t n = vals ? (size_t)sk_CONF_VALUE_num(vals) : 0;
	p->entries = calloc(n ? n : 1, sizeof *p->entries);
	p->serials = sk_ASN1_INTEGER_new_null();
	KR_ENSURE(p->entries && p->serials, KR_EINTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, (int)i);
		/* The same rule as keyrite revoke: hexadecimal, 1 to 20 octets. */
		uint8_t raw[20];
		size_t len = 0;
		kr_err se = kr_serial_parse(v->name, raw, &len);
		if (kr_failed(&se))
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name, "%s", se.msg);
		ASN1_INTEGER *ai = NULL;
		KR_TRY(kr_serial_asn1(raw, len, &ai));
		if (!sk_ASN1_INTEGER_push(p->serials, ai)) {
			ASN1_INTEGER_free(ai);
			return kr_errf(KR_EINTERNAL, "out of memory");
		}
		kr_err e = kr_crl_reason_parse(v->value, &p->entries[i].reason);
		if (kr_failed(&e))
			return kr_nconf_err(c->conf, e.code, section, v->name, "%s", e.msg);
		p->entries[i].serial = ai;
		p->entries[i].when = p->spec.this_update;
	}
	p->spec.revoked = p->entries;
	p->spec.nrevoked = n;
	return kr_ok();
}

/* ---- one function per type --------------------------------------------------- */

static KR_MUST_USE kr_err read_root(ceremony *c, script *s)
{
	KR_TRY(CHECK(c, "key", key_fields));
	KR_TRY(CHECK(c, "certificate", cert_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_TRY(read_key(c, 1, &s->key));
	KR_TRY(read_new_ca(c, KR_ROLE_ROOT, &s->cert));
	KR_TRY(read_public_key_out(c, &s->key));
	return rehearse_profile(c, s->cert.spec, s->key.type, s->key.type, s->key.pss,
				KR_ROLE_ROOT);
}

static KR_MUST_USE kr_err read_sub_ca(ceremony *c, script *s)
{
	KR_TRY(CHECK(c, "key", key_fields));
	KR_TRY(CHECK(c, "issuer", issuer_fields));
	KR_TRY(CHECK(c, "certificate", cert_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_TRY(read_key(c, 1, &s->key));
	KR_TRY(read_new_ca(c, KR_ROLE_SUB_CA, &s->cert));
	KR_TRY(read_public_key_out(c, &s->key));
	KR_TRY(read_issuer(c, &s->issuer));
	s->cert.spec.issuer = s->issuer.cert;
	return rehearse_profile(c, s->cert.spec, s->key.type, s->issuer.type, s->issuer.pss,
				KR_ROLE_SUB_CA);
}

/* A new certificate for an existing CA's name and key, signed by the issuer:
 * subject, key and subject key identifier come from from_certificate. */
static KR_MUST_USE kr_err read_cross_sign(ceremony *c, script *s)
{
	KR_TRY(CHECK(c, "issuer", issuer_fields));
	KR_TRY(CHECK(c, "certificate", cross_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	cert_part *p = &s->cert;
	char from_path[PATH_MAX];
	kr_key_type st;
	KR_TRY(read_validity(c, KR_ROLE_CROSS, p));
	KR_TRY(kr_ceremony_read_cert(c, "certificate", "from_certificate", &p->from, from_path));
	KR_TRY(read_issuer(c, &s->issuer));
	KR_TRY(kr_key_type_of(X509_get0_pubkey(p->from), &st));
	p->spec.subject = X509_get_subject_name(p->from);
	p->spec.subject_key = X509_get0_pubkey(p->from);
	p->spec.ski = X509_get0_subject_key_id(p->from);
	p->spec.issuer = s->issuer.cert;
	KR_ENSURE(p->spec.ski, KR_EPOLICY, "%s: has no subjectKeyIdentifier to carry over",
		  from_path);
	KR_TRY(kr_ceremony_out_path(c, "certificate", "output", p->output));
	return rehearse_profile(c, p->spec, st, s->issuer.type, s->issuer.pss, KR_ROLE_CROSS);
}

static KR_MUST_USE kr_err read_crl(ceremony *c, script *s)
{
	KR_TRY(CHECK(c, "issuer", issuer_fields));
	KR_TRY(CHECK(c, "crl", crl_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	kr_crl_spec *spec = &s->crl.spec;
	KR_TRY(kr_nconf_get_long(c->conf, "crl", "number", 0, 0x7fffffffL, &spec->number));
	KR_TRY(days(c, "crl", "next_update_days", KR_ROLE_CRL, &spec->next_update_days));
	KR_TRY(when(c, "crl", "this_update", &spec->this_update));
	KR_TRY(read_issuer(c, &s->issuer));
	spec->issuer = s->issuer.cert;
	KR_TRY(kr_ceremony_out_path(c, "crl", "output", s->crl.output));
	KR_TRY(read_revoked(c, &s->crl));
	KR_TRY(kr_signing_init_draft(&s->crl.signing, s->issuer.type, s->issuer.pss));
	KR_TRY(kr_crl_draft(spec, &s->crl.draft));
	KR_TRY(kr_sign_draft_crl(&s->crl.signing, s->crl.draft));
	KR_TRY(kr_lint_crl(s->crl.draft, s->issuer.cert));
	kr_transcript_step(c->t, "lint-passed", "CRL number %ld with %zu entries", spec->number,
			   spec->nrevoked);
	return kr_ok();
}

static KR_MUST_USE kr_err read_key_only(ceremony *c, script *s)
{
	KR_TRY(CHECK(c, "key", keyonly_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_TRY(read_key(c, 0, &s->key));
	return kr_ceremony_out_path(c, "key", "public_key", s->key.public_key);
}

static const struct {
	const char *name;
	kr_err (*read)(ceremony *c, script *s);
} types[] = {
	{"root", read_root},
	{"sub-ca", read_sub_ca},
	{"cross-sign", read_cross_sign},
	{"crl", read_crl},
	{"key", read_key_only},
	{"backup", kr_backup_read},
	{"restore", kr_restore_read},
	{"share-check", kr_share_check_read},
};

/* ---- the frame --------------------------------------------------------------- */

static void header(ceremony *c, const char *path, const char *type)
{
	char hex[65], now[21];
	kr_hex(kr_nconf_sha256(c->conf), 32, hex);
	kr_utc_now(now);
	kr_transcript_line(c->t, KR_TRANSCRIPT_MAGIC);
	kr_transcript_line(c->t, "ceremony %s", type);
	kr_transcript_line(c->t, "script %s sha256 %s", path, hex);
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

KR_MUST_USE kr_err kr_script_read(ceremony *c, const char *path, script *s)
{
	KR_TRY(kr_nconf_load(path, &c->conf));
	KR_TRY(CHECK(c, "ceremony", ceremony_fields));
	const char *type = get(c, "ceremony", "type");
	kr_err (*read)(ceremony *, script *) = NULL;
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strcmp(types[i].name, type) == 0)
			read = types[i].read, s->type = types[i].name;
	if (!read)
		return kr_nconf_err(
			c->conf, KR_EINPUT, "ceremony", "type",
			"unknown ceremony type '%s' (root, sub-ca, cross-sign, crl, key, backup, "
			"restore, share-check)",
			type);
	if (strchr(get(c, "ceremony", "transcript"), '/'))
		return kr_nconf_err(
			c->conf, KR_EINPUT, "ceremony", "transcript",
			"give a file name: the transcript lives in the output directory "
			"beside the files it records");
	char tpath[PATH_MAX];
	KR_TRY(kr_ceremony_out_path(c, "ceremony", "transcript", tpath));
	KR_TRY(kr_policy_load(c->o->policy, &c->policy));
	KR_TRY(kr_transcript_new(tpath, c->o->echo, &c->t));
	header(c, path, type);
	return read(c, s);
}

void kr_script_clear(script *s)
{
	X509_free(s->issuer.cert);
	X509_NAME_free(s->cert.subject);
	X509_free(s->cert.from);
	sk_ASN1_INTEGER_pop_free(s->crl.serials, ASN1_INTEGER_free);
	free(s->crl.entries);
	kr_signing_clear(&s->crl.signing);
	X509_CRL_free(s->crl.draft);
	for (size_t i = 0; i < s->backup.nkeys; i++) {
		kr_backup_file_clear(&s->backup.keys[i].backup);
		X509_free(s->backup.keys[i].cert);
	}
	OPENSSL_cleanse(&s->backup, sizeof s->backup);
	memset(s, 0, sizeof *s);
}
