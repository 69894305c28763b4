/* keyrite ceremony verify: what an auditor runs on the transcript and the
 * outputs, long after the ceremony. Times are not checked: an expired
 * certificate was still made correctly. */
#include "ceremony.h"
#include "transcript.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <limits.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TRANSCRIPT (8 << 20)

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

/* The last line is "transcript-sha256 <hex>" over every byte before it. */
static KR_MUST_USE kr_err check_self_hash(const uint8_t *text, size_t len, size_t *body)
{
	KR_ENSURE(len > 0 && text[len - 1] == '\n', KR_EVERIFY, "transcript is truncated");
	size_t start = len - 1;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	static const char key[] = "transcript-sha256 ";
	KR_ENSURE(len - start == sizeof key - 1 + 64 + 1 &&
			  memcmp(text + start, key, sizeof key - 1) == 0,
		  KR_EVERIFY, "transcript does not end with its transcript-sha256 line");
	uint8_t md[32];
	char hex[65];
	KR_TRY(kr_sha256(text, start, md));
	kr_hex(md, 32, hex);
	KR_ENSURE(memcmp(hex, text + start + sizeof key - 1, 64) == 0, KR_EVERIFY,
		  "transcript has been altered: its SHA-256 is %s", hex);
	*body = start;
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
	KR_TRY(kr_fs_read(transcript, MAX_TRANSCRIPT, &text, &len));
	KR_ENSURE(len > strlen(KR_TRANSCRIPT_MAGIC) &&
			  !memcmp(text, KR_TRANSCRIPT_MAGIC, strlen(KR_TRANSCRIPT_MAGIC)),
		  KR_EINPUT, "%s: not a keyrite transcript", transcript);
	kr_err e = check_self_hash(text, len, &body);
	result(&k, &e, "transcript SHA-256");
	if (kr_failed(&e))
		return e; /* nothing in an altered transcript can be trusted */

	int ended = 0, aborted = 0;
	char *save = NULL;
	text[body] = '\0';
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
