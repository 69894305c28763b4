/* The restore and share-check ceremonies (keyrite-ceremony(5)): custodians
 * type their shares back, each checked against the verifier of the backup
 * transcript as it is entered. A restore rebuilds the backup key from M of
 * them and unwraps the backup files onto a new token; a share-check only
 * checks, and rebuilds nothing. Everything a restore reads is checked
 * against the backup transcript before anyone types a share. */
#include "internal.h"
#include "../ca/sign.h"
#include "../util/cleanup.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kr_field restore_fields[] = {
	{"backup_transcript", KR_F_STRING, 1},
	{"verifier", KR_F_STRING, 1},
	{"keys", KR_F_STRING, 1},
	{"for_backup", KR_F_BOOL, 0},
};
static const kr_field key_fields[] = {
	{"backup", KR_F_STRING, 1},     {"certificate", KR_F_STRING, 1},
	{"uri", KR_F_STRING, 1},        {"pin_file", KR_F_STRING, 0},
	{"pin_env", KR_F_STRING, 0},    {"so_pin_file", KR_F_STRING, 0},
	{"so_pin_env", KR_F_STRING, 0},
};
static const kr_field check_fields[] = {
	{"backup_transcript", KR_F_STRING, 1},
	{"verifier", KR_F_STRING, 1},
};

/* ---- what the backup transcript says ---------------------------------------------- */

static int unhex32(const char *hex, uint8_t out[32])
{
	size_t n = 0;
	return strlen(hex) == 64 && OPENSSL_hexstr2buf_ex(out, 32, &n, hex, '\0') == 1 && n == 32;
}

/* "threshold M of N", 2 <= M <= N <= KR_VSS_MAX. */
static int threshold_of(const char *v, backup_part *b)
{
	static const char head[] = "threshold ", of[] = " of ";
	char *end = NULL;
	if (strncmp(v, head, sizeof head - 1) != 0)
		return 0;
	long m = strtol(v + sizeof head - 1, &end, 10);
	if (strncmp(end, of, sizeof of - 1) != 0)
		return 0;
	long n = strtol(end + sizeof of - 1, &end, 10);
	if (*end || m < 2 || m > n || n > KR_VSS_MAX)
		return 0;
	b->m = (int)m;
	b->n = (int)n;
	return 1;
}

/* "1 'Alice', 3 'Carol'": whose shares these are. */
static void whose(const backup_part *b, const kr_vss_share *got, int n, char *out, size_t sz)
{
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		size_t at = strlen(out);
		snprintf(out + at, sz - at, "%s%d '%s'", i ? ", " : "", got[i].index,
			 b->custodian[got[i].index - 1]);
	}
}

/* "backup threshold M of N", "custodian I NAME" and "verifier-sha256 HEX",
 * from a backup transcript that completed. */
static KR_MUST_USE kr_err read_backup_facts(const ceremony *c, const char *path, const char *body,
					    backup_part *b)
{
	char v[512];
	KR_ENSURE(kr_transcript_find(body, "ceremony", 0, v, sizeof v) && !strcmp(v, "backup"),
		  KR_EINPUT, "%s: not the transcript of a backup ceremony", path);
	/* A rehearsal takes only the shares of a backup rehearsed in the same
	 * run: real shares would rebuild the real backup key and put the CA
	 * keys on a throwaway token. */
	int rehearsed = kr_transcript_find(body, "rehearsal", 0, v, sizeof v);
	KR_ENSURE(rehearsed || !c->o->hsm.rehearsal, KR_EINPUT,
		  "%s: a real backup: a rehearsal takes only the shares of a backup rehearsed "
		  "in the same run (real shares would rebuild the real backup key in it)",
		  path);
	KR_ENSURE(!rehearsed || c->o->hsm.rehearsal, KR_EINPUT,
		  "%s: the transcript of a rehearsal: its shares protect nothing", path);
	KR_ENSURE(kr_transcript_find(body, "end", 0, v, sizeof v) &&
			  !kr_transcript_find(body, "abort", 0, v, sizeof v),
		  KR_EINPUT, "%s: that backup did not complete", path);
	KR_ENSURE(kr_transcript_find(body, "backup", 0, v, sizeof v) && threshold_of(v, b),
		  KR_EVERIFY, "%s: no 'backup threshold M of N' line", path);
	for (int i = 0; i < b->n; i++) {
		char want[8];
		int len = snprintf(want, sizeof want, "%d ", i + 1);
		KR_ENSURE(kr_transcript_find(body, "custodian", (size_t)i, v, sizeof v) &&
				  !strncmp(v, want, (size_t)len),
			  KR_EVERIFY, "%s: no line for custodian %d", path, i + 1);
		snprintf(b->custodian[i], sizeof b->custodian[0], "%s", v + len);
	}
	KR_ENSURE(kr_transcript_find(body, "verifier-sha256", 0, v, sizeof v) &&
			  unhex32(v, b->verifier_sha256),
		  KR_EVERIFY, "%s: no verifier-sha256 line", path);
	return kr_ok();
}

/* The "backed-up FILE sha256 H spki-sha256 S label L" line for the file
 * whose SHA-256 is md; its SPKI hash into spki. */
static KR_MUST_USE kr_err backed_up_line(const char *body, const char *tpath, const char *file,
					 const uint8_t md[32], const char *label, uint8_t spki[32])
{
	char v[1024], hex[65];
	kr_hex(md, 32, hex);
	for (size_t i = 0; kr_transcript_find(body, "backed-up", i, v, sizeof v); i++) {
		char name[PATH_MAX], h[65], s[65];
		int at = 0;
		if (sscanf(v, "%4095s sha256 %64s spki-sha256 %64s label %n", name, h, s, &at) !=
			    3 ||
		    at == 0 || strcmp(h, hex) != 0)
			continue;
		KR_ENSURE(!strcmp(v + at, label), KR_EVERIFY,
			  "%s: holds key '%s', the backup transcript says '%s'", file, label,
			  v + at);
		KR_ENSURE(unhex32(s, spki), KR_EVERIFY, "%s: a malformed backed-up line", tpath);
		return kr_ok();
	}
	return kr_errf(KR_EVERIFY,
		       "%s: the backup transcript %s names no backup file with its SHA-256 (%s): "
		       "altered, or of another backup",
		       file, tpath, hex);
}

/* ---- the script --------------------------------------------------------------------- */

/* The backup transcript and the verifier file it names. */
static KR_MUST_USE kr_err read_backup_and_verifier(ceremony *c, const char *section, backup_part *b,
						   uint8_t **body)
{
	char tpath[PATH_MAX];
	size_t len = 0, blen = 0;
	/* the bytes hashed into this transcript are the bytes checked and read */
	KR_TRY(kr_ceremony_input(c, section, "backup_transcript", "backup-transcript", tpath, body,
				 &len));
	kr_err e = kr_transcript_check(tpath, *body, len, &blen);
	if (!kr_failed(&e))
		e = read_backup_facts(c, tpath, (const char *)*body, b);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, "backup_transcript", "%s", e.msg);
	KR_AUTO(uint8_t) vdata = NULL;
	KR_TRY(kr_ceremony_input(c, section, "verifier", "verifier", b->verifier_path, &vdata,
				 &len));
	e = kr_backup_verifier_decode(vdata, len, &b->verifier);
	uint8_t md[32];
	if (!kr_failed(&e))
		e = kr_backup_verifier_sha256(&b->verifier, md);
	if (!kr_failed(&e) && memcmp(md, b->verifier_sha256, 32) != 0)
		e = kr_errf(KR_EVERIFY, "not the verifier of the backup transcript %s", tpath);
	if (!kr_failed(&e) && b->verifier.m != b->m)
		e = kr_errf(KR_EVERIFY, "a threshold of %d, the backup transcript says %d",
			    b->verifier.m, b->m);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, section, "verifier", "%s: %s",
				    b->verifier_path, e.msg);
	char hex[65];
	kr_hex(b->verifier_sha256, 32, hex);
	kr_transcript_line(c->t, "backup threshold %d of %d", b->m, b->n);
	for (int i = 0; i < b->n; i++)
		kr_transcript_line(c->t, "custodian %d %s", i + 1, b->custodian[i]);
	kr_transcript_line(c->t, "verifier-sha256 %s", hex);
	return kr_ok();
}

/* A key's backup file, checked against the backup transcript and its CA
 * certificate, and its target token URI. */
static KR_MUST_USE kr_err read_key(ceremony *c, const char *body, const char *tpath, backup_key *k)
{
	KR_AUTO(uint8_t) data = NULL;
	size_t len = 0;
	KR_TRY(kr_ceremony_input(c, k->section, "backup", "backup", k->file, &data, &len));
	kr_err e = kr_backup_file_decode(data, len, &k->backup);
	uint8_t md[32], spki[32], cert_spki[32];
	if (!kr_failed(&e))
		e = kr_sha256(data, len, md);
	if (!kr_failed(&e))
		e = backed_up_line(body, tpath, k->file, md, k->backup.label, spki);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, k->section, "backup", "%s: %s", k->file,
				    e.msg);
	KR_TRY(kr_ceremony_read_cert(c, k->section, "certificate", &k->cert, k->cert_path));
	KR_TRY(kr_spki_sha256(X509_get0_pubkey(k->cert), cert_spki));
	if (memcmp(spki, cert_spki, 32) != 0 ||
	    EVP_PKEY_eq(k->backup.pub, X509_get0_pubkey(k->cert)) != 1)
		return kr_nconf_err(c->conf, KR_EVERIFY, k->section, "certificate",
				    "%s: certifies another key than '%s' of %s", k->cert_path,
				    k->backup.label, k->file);
	e = kr_hsm_uri_token_only(k->uri);
	if (kr_failed(&e))
		return kr_nconf_err(c->conf, e.code, k->section, "uri", "%s", e.msg);
	return kr_ok();
}

KR_MUST_USE kr_err kr_restore_read(ceremony *c, script *s)
{
	backup_part *b = &s->backup;
	KR_TRY(kr_nconf_check(c->conf, "restore", restore_fields,
			      sizeof restore_fields / sizeof *restore_fields));
	KR_TRY(kr_backup_key_sections(c, "restore", key_fields,
				      sizeof key_fields / sizeof *key_fields, b));
	KR_TRY(kr_nconf_check_unused(c->conf));
	b->for_backup = kr_nconf_get_bool(c->conf, "restore", "for_backup", 0) == 1;
	KR_AUTO(uint8_t) body = NULL;
	KR_TRY(read_backup_and_verifier(c, "restore", b, &body));
	char tpath[PATH_MAX];
	KR_TRY(kr_ceremony_in_path(c, kr_ceremony_get(c, "restore", "backup_transcript"), tpath));
	for (size_t i = 0; i < b->nkeys; i++) {
		KR_TRY(read_key(c, (const char *)body, tpath, &b->keys[i]));
		for (size_t j = 0; j < i; j++)
			KR_ENSURE(strcmp(b->keys[j].backup.label, b->keys[i].backup.label) != 0,
				  KR_EINPUT, "%s: [%s] and [%s] restore the same key '%s'",
				  kr_nconf_path(c->conf), b->keys[j].section, b->keys[i].section,
				  b->keys[i].backup.label);
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_share_check_read(ceremony *c, script *s)
{
	KR_TRY(kr_nconf_check(c->conf, "share-check", check_fields,
			      sizeof check_fields / sizeof *check_fields));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_AUTO(uint8_t) body = NULL;
	return read_backup_and_verifier(c, "share-check", &s->backup, &body);
}

/* ---- the acts ------------------------------------------------------------------------- */

/* Each target token open, and each label free on it, before anyone types. */
static KR_MUST_USE kr_err check_targets(ceremony *c, backup_part *b)
{
	for (size_t i = 0; i < b->nkeys; i++) {
		backup_key *k = &b->keys[i];
		KR_TRY(kr_ceremony_token(c, k->section, k->uri, &k->hsm, &k->token));
		kr_err e = kr_hsm_label_unused(c->tokens[k->token], k->backup.label);
		kr_err_prefix(&e, "[%s] uri", k->section);
		KR_TRY(e);
	}
	return kr_ok();
}

/* The backup key from m good shares; the transcript says whose. */
static KR_MUST_USE kr_err rebuild(ceremony *c, backup_part *b, uint8_t key[32])
{
	kr_tty *t = NULL;
	kr_vss_share got[KR_VSS_MAX];
	int n = 0;
	KR_TRY(kr_tty_open("the custodians' shares", &t));
	kr_err e = kr_custodian_collect(c, t, b, 1, got, &n);
	kr_tty_close(t);
	if (!kr_failed(&e))
		e = kr_vss_combine(&b->verifier, got, n, key);
	char used[KR_VSS_MAX * 140];
	whose(b, got, n, used, sizeof used);
	OPENSSL_cleanse(got, sizeof got);
	KR_TRY(e);
	kr_transcript_step(c->t, "backup-key-rebuilt", "from %d shares, checked against C_0", n);
	kr_transcript_line(c->t, "shares-used %s", used);
	return kr_ok();
}

/* The restored key signs; its signature verifies under the certificate's
 * key: the token holds the CA's key and can use it. */
static KR_MUST_USE kr_err test_signature(ceremony *c, kr_hsm *h, const kr_hsm_key *key,
					 const backup_key *k)
{
	uint8_t msg[64], sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	KR_ENSURE(RAND_bytes(msg, sizeof msg) == 1, KR_EINTERNAL, "RAND_bytes failed");
	KR_SIGNING(s);
	KR_TRY(kr_signing_init(&s, h, key, 0));
	KR_TRY(kr_signing_sign(&s, kr_hsm_main_session(h), msg, sizeof msg, sig, &siglen));
	KR_ENSURE(kr_sig_verify(X509_get0_pubkey(k->cert), msg, sizeof msg, sig, siglen) == 1,
		  KR_EVERIFY, "[%s] the restored key's signature does not verify under %s",
		  k->section, kr_ceremony_rel(c, k->cert_path));
	kr_transcript_step(c->t, "signature-tested",
			   "label='%s': a signature of 64 random bytes verifies under %s",
			   k->backup.label, kr_ceremony_rel(c, k->cert_path));
	return kr_ok();
}

static KR_MUST_USE kr_err unwrap_one(ceremony *c, backup_part *b, size_t i, kr_hsm *h,
				     kr_hsm_backup_key *bk)
{
	backup_key *k = &b->keys[i];
	kr_hsm_key *key = NULL;
	kr_err e = kr_hsm_backup_unwrap(bk, k->backup.wrapped, k->backup.wrapped_len,
					k->backup.label, k->backup.id, k->backup.id_len,
					X509_get0_pubkey(k->cert), b->for_backup, &key);
	kr_err_prefix(&e, "[%s] %s", k->section, kr_ceremony_rel(c, k->file));
	KR_TRY(e);
	c->restored_hsm[c->nrestored] = h;
	c->restored[c->nrestored++] = key;
	KR_TRY(kr_ceremony_record_key(c, h, key, "key-restored"));
	uint8_t got[32], want[32];
	KR_TRY(kr_hsm_key_spki_sha256(key, got));
	KR_TRY(kr_spki_sha256(k->backup.pub, want));
	KR_ENSURE(memcmp(got, want, 32) == 0, KR_EVERIFY,
		  "[%s] the restored key is not the backed-up key", k->section);
	kr_transcript_step(c->t, "key-compared",
			   "label='%s': its SPKI SHA-256 is the backup transcript's",
			   k->backup.label);
	return test_signature(c, h, key, k);
}

KR_MUST_USE kr_err kr_restore_act(ceremony *c, script *s)
{
	backup_part *b = &s->backup;
	uint8_t key[32];
	KR_TRY(check_targets(c, b));
	KR_TRY(rebuild(c, b, key));
	kr_err e = kr_transcript_commit(c->t);
	if (!kr_failed(&e))
		e = kr_backup_on_tokens(c, b, key, unwrap_one);
	OPENSSL_cleanse(key, sizeof key);
	KR_TRY(e);
	kr_transcript_step(c->t, "backup-key-wiped", "from memory");
	for (size_t i = 0; i < b->nkeys; i++) {
		uint8_t md[32];
		char hex[65];
		KR_TRY(kr_spki_sha256(b->keys[i].backup.pub, md));
		kr_hex(md, 32, hex);
		kr_transcript_line(c->t, "restored %s spki-sha256 %s label %s",
				   kr_ceremony_rel(c, b->keys[i].file), hex,
				   b->keys[i].backup.label);
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_share_check_act(ceremony *c, script *s)
{
	backup_part *b = &s->backup;
	kr_tty *t = NULL;
	kr_vss_share got[KR_VSS_MAX];
	int n = 0;
	KR_TRY(kr_tty_open("the custodians' shares", &t));
	kr_err e = kr_custodian_collect(c, t, b, 0, got, &n);
	char line[KR_VSS_MAX * 140];
	whose(b, got, n, line, sizeof line);
	OPENSSL_cleanse(got, sizeof got);
	if (!kr_failed(&e))
		kr_tty_printf(t, "\n%d of the %d shares checked good; %d rebuild the key.\n", n,
			      b->n, b->m);
	kr_tty_close(t);
	KR_TRY(e);
	kr_transcript_line(c->t, "shares-checked %s", line);
	kr_transcript_step(
		c->t, "share-check", "%d of %d shares match the verifier; %d are needed%s", n, b->n,
		b->m, n < b->m ? ": FEWER THAN NEEDED, re-split (docs/ceremony-guide.md)" : "");
	return kr_ok();
}
