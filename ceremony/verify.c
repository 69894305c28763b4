/* keyrite ceremony verify: what an auditor runs on the transcript and the
 * outputs, long after the ceremony. Times are not checked: an expired
 * certificate was still made correctly. */
#include "ceremony.h"
#include "transcript.h"
#include "../crypto/backup.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <limits.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct checker {
	FILE *report;
	char dir[PATH_MAX];
	const char *text; /* the transcript's body, whole */
	int failures;
	kr_err first;
} checker;

static void result(checker *k, const kr_err *e, const char *what)
{
	if (!kr_failed(e)) {
		fprintf(k->report, "ok      %s\n", what);
		return;
	}
	fprintf(k->report, "FAILED  %s: %s\n", what, e->msg);
	if (k->failures++ == 0)
		k->first = *e;
}

static KR_MUST_USE kr_err check_hash(checker *k, const char *path, const char *want)
{
	char full[PATH_MAX], hex[65];
	uint8_t md[32];
	KR_TRY(kr_fs_join(k->dir, path, full, sizeof full));
	KR_TRY(kr_fs_sha256(full, md));
	kr_hex(md, 32, hex);
	KR_ENSURE(strcmp(hex, want) == 0, KR_EVERIFY, "%s: SHA-256 is %s, the transcript says %s",
		  path, hex, want);
	return kr_ok();
}

static KR_MUST_USE kr_err load_pem(checker *k, const char *path, X509 **cert, X509_CRL **crl)
{
	char full[PATH_MAX];
	KR_TRY(kr_fs_join(k->dir, path, full, sizeof full));
	KR_AUTO(BIO) bio = BIO_new_file(full, "r");
	KR_OSSL(bio, KR_EIO, "%s: cannot open", path);
	if (crl)
		*crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	else
		*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	KR_OSSL(crl ? *crl != NULL : *cert != NULL, KR_EVERIFY, "%s: cannot parse", path);
	return kr_ok();
}

/* A certificate chains to its issuer (the issuer as trust anchor, X.509
 * strict checks) or, for "self", verifies under its own key; a CRL verifies
 * under its issuer's key. */
static KR_MUST_USE kr_err check_chain(checker *k, const char *path, const char *issuer_path,
				      int is_crl)
{
	KR_AUTO(X509) issuer = NULL;
	KR_AUTO(X509) cert = NULL;
	KR_AUTO(X509_CRL) crl = NULL;
	int self = strcmp(issuer_path, "self") == 0;
	KR_TRY(load_pem(k, self ? path : issuer_path, &issuer, NULL));
	if (is_crl) {
		KR_TRY(load_pem(k, path, NULL, &crl));
		KR_OSSL(X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1, KR_EVERIFY,
			"%s: signature does not verify under %s", path, issuer_path);
		return kr_ok();
	}
	KR_TRY(load_pem(k, path, &cert, NULL));
	KR_AUTO(X509_STORE) store = X509_STORE_new();
	KR_AUTO(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	KR_OSSL(store && ctx && X509_STORE_add_cert(store, issuer) &&
			X509_STORE_CTX_init(ctx, store, cert, NULL),
		KR_EINTERNAL, "setting up verification");
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT | X509_V_FLAG_NO_CHECK_TIME |
					      X509_V_FLAG_CHECK_SS_SIGNATURE |
					      X509_V_FLAG_PARTIAL_CHAIN);
	int ok = X509_verify_cert(ctx);
	KR_ENSURE(ok == 1, KR_EVERIFY, "%s: does not verify against %s: %s", path, issuer_path,
		  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	return kr_ok();
}

/* The PATH of a line "step TIME output-removed PATH", else NULL (the
 * words inside another line, a description say, do not count). */
static const char *removal(const char *line, const char *eol)
{
	static const char step[] = "step ", key[] = "output-removed ";
	if ((size_t)(eol - line) < sizeof step || strncmp(line, step, sizeof step - 1) != 0)
		return NULL;
	const char *after_time =
		memchr(line + sizeof step - 1, ' ', (size_t)(eol - line) - (sizeof step - 1));
	if (!after_time || strncmp(after_time + 1, key, sizeof key - 1) != 0)
		return NULL;
	return after_time + sizeof key;
}

/* 1 if the transcript records that the ceremony, aborted, removed the
 * output path (it names it under the ceremony's output directory). */
static int was_removed(const checker *k, const char *path)
{
	size_t n = strlen(path);
	for (const char *line = k->text; *line;) {
		const char *eol = strchrnul(line, '\n'), *name = removal(line, eol);
		size_t len = name ? (size_t)(eol - name) : 0;
		if (name && len >= n && !memcmp(eol - n, path, n) &&
		    (len == n || eol[-(long)n - 1] == '/'))
			return 1;
		line = *eol ? eol + 1 : eol;
	}
	return 0;
}

/* An output the aborted ceremony removed must be gone. */
static KR_MUST_USE kr_err check_removed(checker *k, const char *path)
{
	char full[PATH_MAX];
	KR_TRY(kr_fs_join(k->dir, path, full, sizeof full));
	KR_ENSURE(access(full, F_OK) != 0, KR_EVERIFY,
		  "%s: exists, but the transcript records its removal", path);
	return kr_ok();
}

/* "verifier HEX" (the commitments) against "verifier-sha256 HEX". */
static KR_MUST_USE kr_err check_verifier(const checker *k, const char *hex)
{
	uint8_t b[1 + KR_VSS_MAX * KR_VSS_POINT], md[32];
	size_t n = 0;
	char want[65], got[65];
	kr_vss_verifier v;
	KR_ENSURE(strlen(hex) <= 2 * sizeof b && OPENSSL_hexstr2buf_ex(b, sizeof b, &n, hex, '\0'),
		  KR_EVERIFY, "the verifier line is not hex");
	KR_TRY(kr_vss_verifier_decode(b, n, &v));
	KR_TRY(kr_backup_verifier_sha256(&v, md));
	kr_hex(md, 32, got);
	KR_ENSURE(kr_transcript_find(k->text, "verifier-sha256", 0, want, sizeof want) &&
			  !strcmp(want, got),
		  KR_EVERIFY,
		  "the verifier's SHA-256 is %s, its verifier-sha256 line says otherwise", got);
	return kr_ok();
}

/* "backed-up FILE sha256 H spki-sha256 S label L", "restored FILE
 * spki-sha256 S label L": the file holds key L, whose public key hashes to
 * S, of the backup whose verifier the transcript names. */
static KR_MUST_USE kr_err check_backup_file(const checker *k, const char *rest)
{
	char path[PATH_MAX], spki[65], vhex[65], full[PATH_MAX];
	int at = 0;
	const char *after = strstr(rest, " spki-sha256 ");
	KR_ENSURE(after && sscanf(rest, "%4095s", path) == 1 &&
			  sscanf(after, " spki-sha256 %64s label %n", spki, &at) == 1 && at > 0,
		  KR_EVERIFY, "malformed line");
	const char *label = after + at;
	KR_TRY(kr_fs_join(k->dir, path, full, sizeof full));
	KR_AUTO(uint8_t) data = NULL;
	size_t len = 0;
	KR_TRY(kr_fs_read(full, 1 << 20, &data, &len));
	kr_backup_file f;
	kr_err e = kr_backup_file_decode(data, len, &f);
	kr_err_prefix(&e, "%s", path);
	KR_TRY(e);
	uint8_t md[32];
	char got[65], fv[65];
	e = kr_spki_sha256(f.pub, md);
	kr_hex(md, 32, got);
	kr_hex(f.verifier_sha256, 32, fv);
	int same_label = !strcmp(f.label, label);
	kr_backup_file_clear(&f);
	KR_TRY(e);
	KR_ENSURE(same_label, KR_EVERIFY, "%s: does not hold key '%s'", path, label);
	KR_ENSURE(!strcmp(got, spki), KR_EVERIFY, "%s: its public key's SHA-256 is %s", path, got);
	KR_ENSURE(kr_transcript_find(k->text, "verifier-sha256", 0, vhex, sizeof vhex) &&
			  !strcmp(vhex, fv),
		  KR_EVERIFY, "%s: belongs to another backup (verifier %s)", path, fv);
	return kr_ok();
}

static void check_line(checker *k, char *line, int *ended, int *aborted)
{
	char *save = NULL, what[PATH_MAX + 64];
	const char *kw = strtok_r(line, " ", &save);
	if (!kw)
		return;
	if (!strcmp(kw, "end"))
		*ended = 1;
	if (!strcmp(kw, "abort"))
		*aborted = 1;
	if (!strcmp(kw, "input") || !strcmp(kw, "output")) {
		const char *kind = strtok_r(NULL, " ", &save);
		const char *path = strtok_r(NULL, " ", &save);
		const char *alg = strtok_r(NULL, " ", &save);
		const char *hex = strtok_r(NULL, " ", &save);
		int gone = !strcmp(kw, "output") && path && was_removed(k, path);
		kr_err e = !(kind && path && alg && hex && !strcmp(alg, "sha256"))
				   ? kr_errf(KR_EVERIFY, "malformed %s line", kw)
			   : gone ? check_removed(k, path)
				  : check_hash(k, path, hex);
		snprintf(what, sizeof what, "%s %s %s %s", kw, kind ? kind : "?", path ? path : "?",
			 gone ? "removed after the abort" : "hash");
		result(k, &e, what);
	} else if (!strcmp(kw, "verifier") || !strcmp(kw, "backed-up") || !strcmp(kw, "restored")) {
		const char *rest = line + strlen(kw) + 1;
		int verifier = !strcmp(kw, "verifier");
		kr_err e = verifier ? check_verifier(k, rest) : check_backup_file(k, rest);
		if (verifier)
			snprintf(what, sizeof what, "verifier commitments match verifier-sha256");
		else
			snprintf(what, sizeof what, "backup file %.*s holds the key it names",
				 (int)strcspn(rest, " "), rest);
		result(k, &e, what);
	} else if (!strcmp(kw, "chain")) {
		/* "chain certificate|crl PATH ISSUER|self": the transcript says
		 * what the file is; its name does not. */
		const char *kind = strtok_r(NULL, " ", &save);
		const char *path = strtok_r(NULL, " ", &save);
		const char *issuer = strtok_r(NULL, " ", &save);
		int is_crl = kind && !strcmp(kind, "crl");
		int known = kind && (is_crl || !strcmp(kind, "certificate"));
		if (known && path && was_removed(k, path))
			return; /* its output line says it is gone */
		kr_err e = (known && path && issuer) ? check_chain(k, path, issuer, is_crl)
						     : kr_errf(KR_EVERIFY, "malformed chain line");
		snprintf(what, sizeof what, "%s %s signed by %s", is_crl ? "CRL" : "certificate",
			 path ? path : "?", issuer ? issuer : "?");
		result(k, &e, what);
	}
}

KR_MUST_USE kr_err kr_ceremony_verify(const char *transcript, FILE *report)
{
	checker k = {.report = report, .first = kr_ok()};
	kr_fs_dirname(transcript, k.dir, sizeof k.dir);
	KR_AUTO(uint8_t) text = NULL;
	size_t len = 0, body = 0;
	KR_TRY(kr_fs_read(transcript, KR_TRANSCRIPT_MAX, &text, &len));
	kr_err e = kr_transcript_check(transcript, text, len, &body);
	if (e.code == KR_EVERIFY)
		result(&k, &e, "transcript SHA-256");
	KR_TRY(e); /* nothing in an altered transcript can be trusted */
	result(&k, &e, "transcript SHA-256");

	int ended = 0, aborted = 0;
	char *save = NULL;
	k.text = (const char *)text;
	KR_AUTO(uint8_t) lines = OPENSSL_memdup(text, body + 1); /* cut up below */
	KR_ENSURE(lines, KR_EINTERNAL, "out of memory");
	for (char *line = strtok_r((char *)lines, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		check_line(&k, line, &ended, &aborted);
	kr_err done = ended && !aborted ? kr_ok()
					: kr_errf(KR_EVERIFY, "the ceremony did not complete%s",
						  aborted ? " (it was aborted)" : "");
	result(&k, &done, "ceremony completed");
	fprintf(report, "%s: %d check(s) failed\n", transcript, k.failures);
	return k.failures ? k.first : kr_ok();
}
