/* The ceremonies' acts on the HSM and the disk, from their checked scripts
 * (script.c): root, sub-ca, cross-sign, crl, key. Every act is in the
 * transcript, on disk, before the next; an abort undoes what it made. */
#include "internal.h"
#include "../ca/lint.h"
#include "../ca/serial.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- outputs ------------------------------------------------------------------ */

KR_MUST_USE kr_err kr_ceremony_write(ceremony *c, const char *kind, const char *path,
				     const void *data, size_t len)
{
	uint8_t md[32];
	char hex[65];
	KR_ENSURE(c->nmade < MAX_OUTPUTS, KR_EINTERNAL, "too many outputs");
	KR_TRY(kr_transcript_commit(c->t));
	KR_TRY(kr_fs_write_new(path, data, len, 0644));
	snprintf(c->made[c->nmade++], PATH_MAX, "%s", path);
	KR_TRY(kr_sha256(data, len, md));
	kr_hex(md, 32, hex);
	kr_transcript_line(c->t, "output %s %s sha256 %s", kind, kr_ceremony_rel(c, path), hex);
	return kr_ok();
}

/* Writes PEM text exclusively and records it, with the fingerprint the
 * witnesses read aloud: the SHA-256 of der, the object it encodes. */
static KR_MUST_USE kr_err write_output(ceremony *c, const char *kind, const char *path, BIO *pem,
				       const uint8_t *der, size_t derlen)
{
	char *data = NULL;
	long n = BIO_get_mem_data(pem, &data);
	KR_TRY(kr_ceremony_write(c, kind, path, data, (size_t)n));
	uint8_t md[32];
	char groups[96], words[512];
	path = kr_ceremony_rel(c, path);
	KR_TRY(kr_sha256(der, derlen, md));
	kr_hex_groups(md, 32, groups);
	kr_pgp_words(md, 32, words, sizeof words);
	kr_transcript_line(c->t, "fingerprint %s sha256 %s", path, groups);
	kr_transcript_line(c->t, "words %s %s", path, words);
	return kr_ok();
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

/* ---- the token ------------------------------------------------------------------ */

KR_MUST_USE kr_err kr_ceremony_open_token(ceremony *c, const char *section, const char *uri,
					  const kr_hsm_opts *o, kr_hsm **out)
{
	kr_err e = kr_hsm_open(uri, o, out);
	kr_err_prefix(&e, "[%s] uri", section);
	KR_TRY(e);
	const kr_hsm_token_info *t = kr_hsm_token(*out);
	kr_transcript_step(c->t, "token-opened",
			   "label='%s' serial=%s model='%s' manufacturer='%s'", t->label, t->serial,
			   t->model, t->manufacturer);
	return kr_ok();
}

KR_MUST_USE kr_err kr_ceremony_token(ceremony *c, const char *section, const char *uri,
				     const kr_hsm_opts *o, size_t *index)
{
	char label[33];
	KR_TRY(kr_hsm_uri_token_label(uri, label));
	for (size_t i = 0; i < c->ntokens; i++)
		if (label[0] && !strcmp(c->token_label[i], label)) {
			*index = i;
			return kr_ok();
		}
	KR_ENSURE(c->ntokens < MAX_BACKUP_KEYS, KR_EINPUT, "[%s] too many tokens", section);
	KR_TRY(kr_ceremony_open_token(c, section, uri, o, &c->tokens[c->ntokens]));
	snprintf(c->token_label[c->ntokens], sizeof c->token_label[0], "%s",
		 kr_hsm_token(c->tokens[c->ntokens])->label);
	*index = c->ntokens++;
	return kr_ok();
}

KR_MUST_USE kr_err kr_ceremony_record_key(ceremony *c, kr_hsm *h, const kr_hsm_key *k,
					  const char *what)
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

static KR_MUST_USE kr_err generate_key(ceremony *c, const key_part *k)
{
	KR_TRY(kr_ceremony_open_token(c, "key", k->uri, &k->hsm, &c->key_hsm));
	kr_err e = kr_hsm_keygen_check(c->key_hsm, k->uri);
	kr_err_prefix(&e, "[key] uri");
	KR_TRY(e);
	/* From here on the token changes: the record must already be on disk. */
	KR_TRY(kr_transcript_commit(c->t));
	e = k->for_backup ? kr_hsm_keygen_backup(c->key_hsm, k->uri, k->type, &c->new_key)
			  : kr_hsm_keygen(c->key_hsm, k->uri, k->type, &c->new_key);
	kr_err_prefix(&e, "[key] uri");
	KR_TRY(e);
	c->key_is_new = 1;
	return kr_ceremony_record_key(c, c->key_hsm, c->new_key, "key-generated");
}

static KR_MUST_USE kr_err open_issuer(ceremony *c, const issuer_part *i)
{
	KR_TRY(kr_ceremony_open_token(c, "issuer", i->uri, &i->hsm, &c->issuer_hsm));
	kr_err e = kr_hsm_key_find(c->issuer_hsm, i->uri, &c->issuer_key);
	kr_err_prefix(&e, "[issuer] uri");
	KR_TRY(e);
	/* The key that signs must be the key the issuer certificate certifies. */
	KR_ENSURE(EVP_PKEY_eq(kr_hsm_key_public(c->issuer_key), X509_get0_pubkey(i->cert)) == 1,
		  KR_EVERIFY, "[issuer] the key '%s' on the token is not the key of %s",
		  kr_hsm_key_label(c->issuer_key), i->path);
	return kr_ceremony_record_key(c, c->issuer_hsm, c->issuer_key, "issuer-key-found");
}

/* Draft, throwaway signature, lint, HSM signature, checks; then the
 * certificate is written to its output and its chain recorded for verify.
 * The signing key is key on h; issuer_path NULL means self-signed. */
static KR_MUST_USE kr_err issue(ceremony *c, kr_hsm *h, const kr_hsm_key *key, int pss,
				const cert_part *p, int check_ski, const char *issuer_path)
{
	KR_SIGNING(s);
	KR_TRY(kr_signing_init(&s, h, key, pss));
	const kr_cert_spec *spec = &p->spec;
	EVP_PKEY *issuer_pub = spec->issuer ? X509_get0_pubkey(spec->issuer) : spec->subject_key;
	KR_AUTO(X509) draft = NULL;
	KR_AUTO(X509) cert = NULL;
	KR_TRY(kr_cert_draft(spec, &draft));
	KR_TRY(kr_sign_draft_cert(&s, draft));
	KR_TRY(kr_lint_cert(draft, spec->issuer, p->role, check_ski));
	kr_transcript_step(c->t, "lint-passed", "%s certificate, signed with a throwaway %s key",
			   kr_role_name(p->role), kr_key_type_name(kr_hsm_key_type(key)));
	KR_TRY(kr_transcript_commit(c->t));
	KR_TRY(kr_sign_cert(&s, draft, issuer_pub, &cert));

	KR_AUTO(BIGNUM) bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *serial = bn ? BN_bn2hex(bn) : NULL;
	kr_transcript_step(c->t, "hsm-signed",
			   "serial=%s; signature verified with the issuer's public key; "
			   "to-be-signed bytes identical to the linted draft",
			   serial ? serial : "?");
	OPENSSL_free(serial);
	KR_TRY(write_cert(c, p->output, cert));
	kr_transcript_line(c->t, "chain certificate %s %s", kr_ceremony_rel(c, p->output),
			   issuer_path ? kr_ceremony_rel(c, issuer_path) : "self");
	return kr_ok();
}

/* The new CA's key, and its serial from the token that signs. */
static KR_MUST_USE kr_err make_key(ceremony *c, script *s, kr_hsm *serial_from,
				   ASN1_INTEGER **serial)
{
	KR_TRY(generate_key(c, &s->key));
	KR_TRY(kr_serial_random(serial_from ? serial_from : c->key_hsm, serial));
	s->cert.spec.serial = *serial;
	s->cert.spec.subject_key = kr_hsm_key_public(c->new_key);
	return kr_ok();
}

static KR_MUST_USE kr_err act_root(ceremony *c, script *s)
{
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(make_key(c, s, NULL, &serial));
	KR_TRY(issue(c, c->key_hsm, c->new_key, s->key.pss, &s->cert, 1, NULL));
	return s->key.public_key[0] ? write_pubkey(c, s->key.public_key, s->cert.spec.subject_key)
				    : kr_ok();
}

static KR_MUST_USE kr_err act_sub_ca(ceremony *c, script *s)
{
	KR_TRY(open_issuer(c, &s->issuer));
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(make_key(c, s, c->issuer_hsm, &serial));
	KR_TRY(issue(c, c->issuer_hsm, c->issuer_key, s->issuer.pss, &s->cert, 1, s->issuer.path));
	return s->key.public_key[0] ? write_pubkey(c, s->key.public_key, s->cert.spec.subject_key)
				    : kr_ok();
}

static KR_MUST_USE kr_err act_cross_sign(ceremony *c, script *s)
{
	KR_TRY(open_issuer(c, &s->issuer));
	KR_AUTO(ASN1_INTEGER) serial = NULL;
	KR_TRY(kr_serial_random(c->issuer_hsm, &serial));
	s->cert.spec.serial = serial;
	return issue(c, c->issuer_hsm, c->issuer_key, s->issuer.pss, &s->cert, 0, s->issuer.path);
}

static KR_MUST_USE kr_err act_crl(ceremony *c, script *s)
{
	crl_part *p = &s->crl;
	KR_AUTO(X509_CRL) crl = NULL;
	KR_TRY(open_issuer(c, &s->issuer));
	p->signing.hsm = c->issuer_hsm;
	p->signing.key = c->issuer_key;
	KR_TRY(kr_sign_crl(&p->signing, p->draft, X509_get0_pubkey(s->issuer.cert), &crl));
	kr_transcript_step(c->t, "hsm-signed",
			   "CRL signature verified with the issuer's public key; "
			   "to-be-signed bytes identical to the linted draft");
	KR_TRY(write_object(c, "crl", PEM_STRING_X509_CRL, (i2d_of_void *)i2d_X509_CRL, crl,
			    p->output));
	kr_transcript_line(c->t, "chain crl %s %s", kr_ceremony_rel(c, p->output),
			   kr_ceremony_rel(c, s->issuer.path));
	return kr_ok();
}

static KR_MUST_USE kr_err act_key(ceremony *c, script *s)
{
	KR_TRY(generate_key(c, &s->key));
	return write_pubkey(c, s->key.public_key, kr_hsm_key_public(c->new_key));
}

static KR_MUST_USE kr_err act(ceremony *c, script *s)
{
	static const struct {
		const char *type;
		kr_err (*act)(ceremony *c, script *s);
	} acts[] = {
		{"root", act_root},
		{"sub-ca", act_sub_ca},
		{"cross-sign", act_cross_sign},
		{"crl", act_crl},
		{"key", act_key},
		{"backup", kr_backup_act},
		{"restore", kr_restore_act},
		{"share-check", kr_share_check_act},
	};
	for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
		if (strcmp(acts[i].type, s->type) == 0)
			return acts[i].act(c, s);
	return kr_errf(KR_EINTERNAL, "no acts for ceremony type '%s'", s->type);
}

/* ---- the frame --------------------------------------------------------------- */

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
	for (size_t i = 0; i < c->nrestored; i++) {
		kr_err e = kr_hsm_key_destroy(c->restored_hsm[i], c->restored[i]);
		kr_transcript_step(c->t, "key-destroyed", "label='%s' %s",
				   kr_hsm_key_label(c->restored[i]), kr_failed(&e) ? e.msg : "ok");
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
	for (size_t i = 0; i < c->nrestored; i++)
		kr_hsm_key_free(c->restored[i]);
	kr_hsm_key_free(c->new_key);
	kr_hsm_key_free(c->issuer_key);
	kr_hsm_close(c->key_hsm);
	kr_hsm_close(c->issuer_hsm);
	for (size_t i = 0; i < c->ntokens; i++)
		kr_hsm_close(c->tokens[i]);
	kr_transcript_free(c->t);
	kr_policy_free(c->policy);
	kr_nconf_free(c->conf);
}

KR_MUST_USE kr_err kr_ceremony_run(const char *path, const kr_ceremony_opts *o)
{
	ceremony c = {.o = o, .dir = o->dir ? o->dir : "."};
	script s = {0};
	kr_err e = kr_script_read(&c, path, &s);
	if (!kr_failed(&e))
		e = act(&c, &s);
	uint8_t hash[32];
	if (!kr_failed(&e)) {
		char now[21];
		kr_utc_now(now);
		c.key_is_new = 0;
		for (size_t i = 0; i < c.nrestored; i++)
			kr_hsm_key_free(c.restored[i]);
		c.nrestored = 0;
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
	kr_script_clear(&s);
	release(&c);
	return e;
}
