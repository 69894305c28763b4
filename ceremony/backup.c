/* The backup ceremony (keyrite-ceremony(5), docs/ceremony-guide.md): a
 * backup key drawn from the token's RNG and split M-of-N with Feldman VSS,
 * the CA keys the script names wrapped out under it as a trusted key, one
 * page per custodian. Everything that can fail on a token (the SO's login,
 * a key that cannot be wrapped) fails before any share is given out, and
 * the backup files are on disk before the first page. */
#include "internal.h"
#include "../crypto/share.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>

static const kr_field backup_fields[] = {
	{"threshold", KR_F_INT, 1},   {"custodians", KR_F_SECTION, 1}, {"keys", KR_F_STRING, 1},
	{"verifier", KR_F_STRING, 1}, {"shares_dir", KR_F_STRING, 0},
};
static const kr_field key_fields[] = {
	{"uri", KR_F_STRING, 1},         {"output", KR_F_STRING, 1},
	{"pin_file", KR_F_STRING, 0},    {"pin_env", KR_F_STRING, 0},
	{"so_pin_file", KR_F_STRING, 0}, {"so_pin_env", KR_F_STRING, 0},
};

/* ---- shared with restore.c ---------------------------------------------------- */

typedef struct key_sections {
	ceremony *c;
	const char *section;
	const kr_field *fields;
	size_t nfields;
	backup_part *b;
} key_sections;

static KR_MUST_USE kr_err add_key_section(const char *name, void *arg)
{
	const key_sections *x = arg;
	ceremony *c = x->c;
	backup_part *b = x->b;
	const char *section = x->section;
	KR_ENSURE(b->nkeys < MAX_BACKUP_KEYS, KR_EINPUT, "%s: [%s] keys: more than %d",
		  kr_nconf_path(c->conf), section, MAX_BACKUP_KEYS);
	KR_ENSURE(strlen(name) < sizeof b->keys[0].section, KR_EINPUT,
		  "%s: [%s] keys: '%s' is too long a section name", kr_nconf_path(c->conf), section,
		  name);
	KR_ENSURE(NCONF_get_section(kr_nconf_nconf(c->conf), name), KR_EINPUT,
		  "%s: [%s] keys: no section [%s]", kr_nconf_path(c->conf), section, name);
	for (size_t i = 0; i < b->nkeys; i++)
		KR_ENSURE(strcmp(b->keys[i].section, name) != 0, KR_EINPUT,
			  "%s: [%s] keys: [%s] is named twice", kr_nconf_path(c->conf), section,
			  name);
	KR_TRY(kr_nconf_check(c->conf, name, x->fields, x->nfields));
	backup_key *k = &b->keys[b->nkeys++];
	snprintf(k->section, sizeof k->section, "%s", name);
	k->uri = kr_ceremony_get(c, name, "uri");
	k->hsm = kr_ceremony_hsm_opts(c, name);
	/* a rehearsal's throwaway tokens have one PIN for the user and the SO */
	k->so = c->o->hsm.rehearsal ? c->o->hsm.pin
				    : (kr_pin_source){kr_ceremony_get(c, name, "so_pin_file"),
						      kr_ceremony_get(c, name, "so_pin_env")};
	return kr_ok();
}

KR_MUST_USE kr_err kr_backup_key_sections(ceremony *c, const char *section, const kr_field *fields,
					  size_t nfields, backup_part *b)
{
	key_sections x = {c, section, fields, nfields, b};
	KR_TRY(kr_nconf_each_name(kr_ceremony_get(c, section, "keys"), add_key_section, &x));
	KR_ENSURE(b->nkeys > 0, KR_EINPUT, "%s: [%s] keys names no section", kr_nconf_path(c->conf),
		  section);
	return kr_ok();
}

KR_MUST_USE kr_err kr_backup_on_tokens(ceremony *c, backup_part *b, const uint8_t key[32],
				       kr_backup_with_key with_key)
{
	for (size_t t = 0; t < c->ntokens; t++) {
		const backup_key *first = NULL;
		for (size_t i = 0; i < b->nkeys && !first; i++)
			if (b->keys[i].token == t)
				first = &b->keys[i];
		if (!first)
			continue;
		kr_hsm_backup_key *bk = NULL;
		kr_err e =
			kr_hsm_backup_key_new(c->tokens[t], &first->so, &first->hsm.pin, key, &bk);
		kr_err_prefix(&e, "[%s] token '%s'", first->section, c->token_label[t]);
		KR_TRY(e);
		kr_transcript_step(c->t, "trusted-key-made",
				   "token='%s' by its SO: AES-256, CKA_TRUSTED, a session object",
				   c->token_label[t]);
		for (size_t i = 0; i < b->nkeys && !kr_failed(&e); i++)
			if (b->keys[i].token == t)
				e = with_key(c, b, i, c->tokens[t], bk);
		kr_hsm_backup_key_destroy(bk);
		kr_transcript_step(c->t, "backup-key-destroyed", "token='%s'", c->token_label[t]);
		KR_TRY(e);
	}
	return kr_ok();
}

/* ---- the script ------------------------------------------------------------------ */

/* [custodians]: "1 = name" to "N = name", in order, one per share. */
static KR_MUST_USE kr_err read_custodians(ceremony *c, backup_part *b)
{
	const char *section = kr_ceremony_get(c, "backup", "custodians");
	STACK_OF(CONF_VALUE) *vals = NCONF_get_section(kr_nconf_nconf(c->conf), section);
	int n = vals ? sk_CONF_VALUE_num(vals) : 0;
	KR_ENSURE(n >= 2 && n <= KR_VSS_MAX, KR_EINPUT,
		  "%s: [%s] names %d custodian(s); a backup has 2 to %d, one per share",
		  kr_nconf_path(c->conf), section, n, KR_VSS_MAX);
	for (int i = 0; i < n; i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
		char want[8];
		snprintf(want, sizeof want, "%d", i + 1);
		if (strcmp(v->name, want) != 0)
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name,
					    "custodians are numbered 1 to N in order; want %s",
					    want);
		if (!v->value[0] || strlen(v->value) >= sizeof b->custodian[0] ||
		    strpbrk(v->value, "'\n"))
			return kr_nconf_err(c->conf, KR_EINPUT, section, v->name,
					    "a custodian's name: 1 to %zu characters, no quote",
					    sizeof b->custodian[0] - 1);
		snprintf(b->custodian[i], sizeof b->custodian[0], "%s", v->value);
	}
	b->n = n;
	return kr_ok();
}

/* Where the pages go if not to the terminal: a directory that exists, and
 * each page's file free. A rehearsal keeps its throwaway pages in its
 * scratch directory. */
static KR_MUST_USE kr_err read_shares_dir(ceremony *c, backup_part *b)
{
	const char *dir = kr_ceremony_get(c, "backup", "shares_dir");
	if (!dir)
		return kr_ok();
	if (c->o->hsm.rehearsal)
		dir = c->dir;
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return kr_nconf_err(c->conf, KR_EINPUT, "backup", "shares_dir",
				    "%s: not a directory", dir);
	snprintf(b->shares_dir, sizeof b->shares_dir, "%s", dir);
	for (int i = 1; i <= b->n; i++) {
		char name[64], path[PATH_MAX];
		snprintf(name, sizeof name, "share-%d-of-%d.txt", i, b->n);
		KR_TRY(kr_fs_join(dir, name, path, sizeof path));
		kr_err e = kr_fs_must_not_exist(path);
		if (kr_failed(&e))
			return kr_nconf_err(c->conf, e.code, "backup", "shares_dir", "%s", e.msg);
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_backup_read(ceremony *c, script *s)
{
	backup_part *b = &s->backup;
	KR_TRY(kr_nconf_check(c->conf, "backup", backup_fields,
			      sizeof backup_fields / sizeof *backup_fields));
	KR_TRY(kr_backup_key_sections(c, "backup", key_fields,
				      sizeof key_fields / sizeof *key_fields, b));
	KR_TRY(kr_nconf_check_unused(c->conf));
	KR_TRY(read_custodians(c, b));
	long m = 0;
	KR_TRY(kr_nconf_get_long(c->conf, "backup", "threshold", 2, b->n, &m));
	b->m = (int)m;
	KR_TRY(kr_ceremony_out_path(c, "backup", "verifier", b->verifier_path));
	for (size_t i = 0; i < b->nkeys; i++) {
		kr_err e = kr_ceremony_out_path(c, b->keys[i].section, "output", b->keys[i].file);
		for (size_t j = 0; j < i && !kr_failed(&e); j++)
			if (!strcmp(b->keys[j].file, b->keys[i].file))
				e = kr_nconf_err(c->conf, KR_EINPUT, b->keys[i].section, "output",
						 "[%s] writes there too", b->keys[j].section);
		KR_TRY(e);
	}
	KR_TRY(read_shares_dir(c, b));
	kr_transcript_line(c->t, "backup threshold %d of %d", b->m, b->n);
	for (int i = 0; i < b->n; i++)
		kr_transcript_line(c->t, "custodian %d %s", i + 1, b->custodian[i]);
	return kr_ok();
}

/* ---- the acts ---------------------------------------------------------------------- */

/* Each key, found on its token: refused unless it was made for backup. */
static KR_MUST_USE kr_err find_keys(ceremony *c, backup_part *b)
{
	for (size_t i = 0; i < b->nkeys; i++) {
		backup_key *k = &b->keys[i];
		KR_TRY(kr_ceremony_token(c, k->section, k->uri, &k->hsm, &k->token));
		kr_hsm *h = c->tokens[k->token];
		kr_err e = kr_hsm_key_find(h, k->uri, &k->key);
		kr_err_prefix(&e, "[%s] uri", k->section);
		KR_TRY(e);
		KR_TRY(kr_ceremony_record_key(c, h, k->key, "key-found"));
		kr_key_attrs a;
		kr_hsm_key_attrs(h, k->key, &a);
		KR_ENSURE(a.extractable == 1 && a.wrap_with_trusted == 1, KR_EINPUT,
			  "[%s] key '%s' was not made for backup (CKA_EXTRACTABLE=%s, "
			  "CKA_WRAP_WITH_TRUSTED=%s): only a key generated with backup = true "
			  "or keyrite hsm keygen --backup can be backed up",
			  k->section, kr_hsm_key_label(k->key),
			  a.extractable == 1 ? "true" : "false",
			  a.wrap_with_trusted == 1 ? "true" : "false");
		size_t idlen = 0;
		const uint8_t *id = kr_hsm_key_id(k->key, &idlen);
		KR_ENSURE(idlen <= KR_BACKUP_ID_MAX, KR_EINPUT, "[%s] key '%s': an id of %zu bytes",
			  k->section, kr_hsm_key_label(k->key), idlen);
		snprintf(k->backup.label, sizeof k->backup.label, "%s", kr_hsm_key_label(k->key));
		memcpy(k->backup.id, id, idlen);
		k->backup.id_len = idlen;
	}
	return kr_ok();
}

/* 32 bytes from the first token's RNG, drawn again until they are a scalar
 * below P-256's order (all but about 2^-32 of draws are). */
static KR_MUST_USE kr_err draw_scalar(ceremony *c, uint8_t out[32])
{
	for (int tries = 0; tries < 16; tries++) {
		KR_TRY(kr_hsm_random(c->tokens[0], out, 32));
		if (kr_vss_scalar_ok(out))
			return kr_ok();
	}
	return kr_errf(KR_EHSM, "token '%s': its RNG gave 16 draws above the group order",
		       c->token_label[0]);
}

/* The backup key and the polynomial's coefficients from the token, split,
 * and every share checked against the verifier (kr_vss_split does). */
static KR_MUST_USE kr_err split(ceremony *c, backup_part *b, uint8_t key[32], kr_vss_share *shares)
{
	uint8_t coeffs[(KR_VSS_MAX - 1) * 32];
	KR_TRY(draw_scalar(c, key));
	kr_err e = kr_ok();
	for (int j = 0; j < b->m - 1 && !kr_failed(&e); j++)
		e = draw_scalar(c, coeffs + (size_t)j * 32);
	if (!kr_failed(&e))
		e = kr_vss_split(key, b->m, b->n, coeffs, (size_t)(b->m - 1) * 32, shares,
				 &b->verifier);
	OPENSSL_cleanse(coeffs, sizeof coeffs);
	KR_TRY(e);
	kr_transcript_step(c->t, "backup-key-drawn",
			   "AES-256 key from token '%s''s RNG, in memory only; split %d of %d "
			   "(Feldman VSS, P-256), every share checked against the verifier",
			   c->token_label[0], b->m, b->n);
	uint8_t enc[1 + KR_VSS_MAX * KR_VSS_POINT];
	char hex[2 * sizeof enc + 1], words[256];
	size_t len = 0;
	KR_TRY(kr_vss_verifier_encode(&b->verifier, enc, sizeof enc, &len));
	kr_hex(enc, len, hex);
	KR_TRY(kr_backup_verifier_sha256(&b->verifier, b->verifier_sha256));
	KR_TRY(kr_share_verifier_words(&b->verifier, words, sizeof words));
	kr_transcript_line(c->t, "verifier %s", hex);
	kr_hex(b->verifier_sha256, 32, hex);
	kr_transcript_line(c->t, "verifier-sha256 %s", hex);
	kr_transcript_line(c->t, "verifier-words %s", words);
	return kr_ok();
}

static KR_MUST_USE kr_err wrap_one(ceremony *c, backup_part *b, size_t i, kr_hsm *h,
				   kr_hsm_backup_key *bk)
{
	(void)h;
	backup_key *k = &b->keys[i];
	k->backup.wrapped_len = sizeof k->backup.wrapped;
	kr_err e = kr_hsm_backup_wrap(bk, k->key, k->backup.wrapped, &k->backup.wrapped_len);
	kr_err_prefix(&e, "[%s]", k->section);
	KR_TRY(e);
	kr_transcript_step(c->t, "key-wrapped",
			   "label='%s' CKM_AES_KEY_WRAP_PAD (RFC 5649), %zu bytes", k->backup.label,
			   k->backup.wrapped_len);
	return kr_ok();
}

/* The verifier file, then each backup file with the line that ties it to
 * its key (ceremony verify checks both). */
static KR_MUST_USE kr_err write_files(ceremony *c, backup_part *b)
{
	char *pem = NULL;
	size_t len = 0;
	KR_TRY(kr_backup_verifier_encode(&b->verifier, &pem, &len));
	kr_err e = kr_ceremony_write(c, "verifier", b->verifier_path, pem, len);
	OPENSSL_free(pem);
	KR_TRY(e);
	for (size_t i = 0; i < b->nkeys; i++) {
		backup_key *k = &b->keys[i];
		uint8_t spki[32], md[32];
		char spki_hex[65], hex[65];
		k->backup.pub = kr_hsm_key_public(k->key);
		memcpy(k->backup.verifier_sha256, b->verifier_sha256, 32);
		e = kr_backup_file_encode(&k->backup, &pem, &len);
		k->backup.pub = NULL; /* borrowed from the key */
		KR_TRY(e);
		e = kr_ceremony_write(c, "backup", k->file, pem, len);
		if (!kr_failed(&e))
			e = kr_sha256((const uint8_t *)pem, len, md);
		OPENSSL_free(pem);
		KR_TRY(e);
		KR_TRY(kr_hsm_key_spki_sha256(k->key, spki));
		kr_hex(spki, 32, spki_hex);
		kr_hex(md, 32, hex);
		kr_transcript_line(c->t, "backed-up %s sha256 %s spki-sha256 %s label %s",
				   kr_ceremony_rel(c, k->file), hex, spki_hex, k->backup.label);
	}
	return kr_ok();
}

/* A page into shares_dir (mode 0600), for an abort to remove. */
static KR_MUST_USE kr_err page_to_file(ceremony *c, kr_tty *t, const backup_part *b,
				       const kr_vss_share *s, const char *page)
{
	char name[64], path[PATH_MAX];
	snprintf(name, sizeof name, "share-%d-of-%d.txt", s->index, b->n);
	KR_ENSURE(c->nmade < MAX_OUTPUTS, KR_EINTERNAL, "too many outputs");
	KR_TRY(kr_fs_join(b->shares_dir, name, path, sizeof path));
	KR_TRY(kr_transcript_commit(c->t));
	KR_TRY(kr_fs_write_new(path, page, strlen(page), 0600));
	snprintf(c->made[c->nmade++], PATH_MAX, "%s", path);
	kr_tty_printf(t, "Share %d is in %s.\n", s->index, path);
	kr_transcript_step(c->t, "share-given", "index=%d custodian='%s' file=%s", s->index,
			   b->custodian[s->index - 1], path);
	return kr_ok();
}

/* A page on the screen alone, cleared with its scrollback once copied. */
static KR_MUST_USE kr_err page_to_screen(ceremony *c, kr_tty *t, const backup_part *b,
					 const kr_vss_share *s, const char *page)
{
	const char *who = b->custodian[s->index - 1];
	char enter[8];
	kr_tty_clear(t);
	kr_err e = kr_tty_ask(t, 1, enter, sizeof enter,
			      "%s\nPress Enter once %s has copied the page and checked it "
			      "(the screen is then cleared): ",
			      page, who);
	kr_tty_clear(t);
	KR_TRY(e);
	kr_transcript_step(c->t, "share-given", "index=%d custodian='%s' on the terminal", s->index,
			   who);
	return kr_ok();
}

/* Share s's page, to its custodian once the operator confirms them. */
static KR_MUST_USE kr_err give_page(ceremony *c, kr_tty *t, const backup_part *b,
				    const kr_vss_share *s, const char *words)
{
	char page[8192]; /* eight keys' labels of 255 bytes, and the share */
	KR_TRY(kr_custodian_confirm(t, b, s->index));
	kr_err e = kr_custodian_page(b, kr_ceremony_get(c, "ceremony", "transcript"), s, words,
				     page, sizeof page);
	if (!kr_failed(&e))
		e = b->shares_dir[0] ? page_to_file(c, t, b, s, page)
				     : page_to_screen(c, t, b, s, page);
	OPENSSL_cleanse(page, sizeof page);
	return e;
}

static KR_MUST_USE kr_err give_pages(ceremony *c, const backup_part *b, const kr_vss_share *shares)
{
	kr_tty *t = NULL;
	char words[256];
	KR_TRY(kr_share_verifier_words(&b->verifier, words, sizeof words));
	KR_TRY(kr_tty_open("the custodians' pages", &t));
	kr_err e = kr_ok();
	for (int i = 0; i < b->n && !kr_failed(&e); i++)
		e = give_page(c, t, b, &shares[i], words);
	kr_tty_close(t);
	return e;
}

static KR_MUST_USE kr_err backup(ceremony *c, backup_part *b, kr_vss_share *shares)
{
	uint8_t key[32];
	KR_TRY(find_keys(c, b));
	/* the custodians' terminal before anything is drawn: without it no
	 * share could be given */
	kr_tty *t = NULL;
	KR_TRY(kr_tty_open("the custodians' pages", &t));
	kr_tty_close(t);
	kr_err e = split(c, b, key, shares);
	if (!kr_failed(&e))
		e = kr_transcript_commit(c->t);
	if (!kr_failed(&e))
		e = kr_backup_on_tokens(c, b, key, wrap_one);
	OPENSSL_cleanse(key, sizeof key);
	KR_TRY(e);
	kr_transcript_step(c->t, "backup-key-wiped", "from memory; only the shares hold it");
	KR_TRY(write_files(c, b));
	return give_pages(c, b, shares);
}

KR_MUST_USE kr_err kr_backup_act(ceremony *c, script *s)
{
	backup_part *b = &s->backup;
	kr_vss_share shares[KR_VSS_MAX];
	kr_err e = backup(c, b, shares);
	OPENSSL_cleanse(shares, sizeof shares);
	for (size_t i = 0; i < b->nkeys; i++) {
		kr_hsm_key_free(b->keys[i].key);
		b->keys[i].key = NULL;
	}
	return e;
}
