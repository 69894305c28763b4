/* The custodians of an M-of-N backup at the ceremony's terminal: each one
 * confirmed by the operator before their page is produced, and their shares
 * typed back one line at a time, each line checked as it is typed and each
 * share against the verifier (crypto/share.h, crypto/vss.h). Pages and
 * shares go to /dev/tty, never to stdout, where a log could keep them. */
#include "internal.h"
#include "../crypto/share.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

KR_MUST_USE kr_err kr_custodian_confirm(kr_tty *t, const backup_part *b, int i)
{
	const char *who = b->custodian[i - 1];
	char answer[16];
	kr_err e = kr_tty_ask(t, 1, answer, sizeof answer,
			      "\nShare %d of %d is for %s.\n"
			      "Type yes when %s is at the screen, and everyone else looks away: ",
			      i, b->n, who, who);
	KR_ENSURE(!kr_failed(&e) && !strcmp(answer, "yes"), KR_EINPUT,
		  "the operator did not confirm custodian %d (%s): no share was given", i, who);
	return kr_ok();
}

KR_MUST_USE kr_err kr_custodian_page(const backup_part *b, const char *name, const kr_vss_share *s,
				     const char *words, char *out, size_t sz)
{
	int n = snprintf(out, sz,
			 "==== keyrite key backup: share %d of %d ====\n"
			 "Custodian: %s\n"
			 "Ceremony:  %s\n"
			 "Rebuilds:  the backup key, with any %d of the %d shares\n"
			 "Keys:     ",
			 s->index, b->n, b->custodian[s->index - 1], name, b->m, b->n);
	for (size_t k = 0; k < b->nkeys && n > 0 && (size_t)n < sz; k++)
		n += snprintf(out + n, sz - (size_t)n, " %s", b->keys[k].backup.label);
	if (n > 0 && (size_t)n < sz)
		n += snprintf(out + n, sz - (size_t)n,
			      "\nVerifier:  %s\n"
			      "           (read it aloud: it must match the transcript)\n\n",
			      words);
	for (int line = 1; line <= KR_SHARE_LINES && n > 0 && (size_t)n < sz; line++) {
		char text[KR_SHARE_LINE_MAX];
		kr_share_line(s, line, text);
		n += snprintf(out + n, sz - (size_t)n, "  %s\n", text);
		OPENSSL_cleanse(text, sizeof text);
	}
	if (n > 0 && (size_t)n < sz)
		n += snprintf(out + n, sz - (size_t)n,
			      "\nKeep this page sealed. Type it back only at a restore or a\n"
			      "share-check ceremony; each line ends with its own checksum.\n");
	/* a page cut short would hand a custodian half a share */
	KR_ENSURE(n > 0 && (size_t)n < sz, KR_EINTERNAL, "share %d: the page does not fit",
		  s->index);
	return kr_ok();
}

/* One share typed line by line; a line that does not read is asked for
 * again, named by its number. An empty first line: *none. */
static KR_MUST_USE kr_err type_share(kr_tty *t, kr_vss_share *s, int *none)
{
	char text[KR_SHARE_LINE_MAX * 2];
	*none = 0;
	for (int line = 1; line <= KR_SHARE_LINES;) {
		kr_err e = kr_tty_ask(t, 0, text, sizeof text, "  line %d: ", line);
		if (!kr_failed(&e) && line == 1 && text[strspn(text, " \t")] == '\0') {
			*none = 1;
			return kr_ok();
		}
		if (!kr_failed(&e))
			e = kr_share_read_line(text, line, s);
		OPENSSL_cleanse(text, sizeof text);
		if (!kr_failed(&e)) {
			line++;
			continue;
		}
		if (e.code == KR_EIO) /* the input ended: nobody is left to type */
			return e;
		kr_tty_printf(t, "  refused: %s; type line %d again\n", e.msg, line);
	}
	return kr_ok();
}

/* Why a complete share is refused, or "" if it is good. */
static void judge(const backup_part *b, const kr_vss_share *got, int ngot, const kr_vss_share *s,
		  char *why, size_t sz)
{
	why[0] = '\0';
	if (s->index < 1 || s->index > b->n) {
		snprintf(why, sz, "share %d: this backup has shares 1 to %d", s->index, b->n);
		return;
	}
	for (int k = 0; k < ngot; k++)
		if (got[k].index == s->index) {
			snprintf(why, sz, "share %d (%s) was entered already", s->index,
				 b->custodian[s->index - 1]);
			return;
		}
	kr_err e = kr_vss_check(&b->verifier, s);
	if (kr_failed(&e))
		snprintf(why, sz,
			 "share %d does not match this backup's verifier: a share of another "
			 "backup, or one altered",
			 s->index);
}

KR_MUST_USE kr_err kr_custodian_collect(ceremony *c, kr_tty *t, const backup_part *b, int rebuild,
					kr_vss_share *got, int *ngot)
{
	int want = rebuild ? b->m : b->n;
	*ngot = 0;
	while (*ngot < want) {
		kr_vss_share s = {0};
		int none = 0;
		kr_tty_printf(t,
			      "\nShare %d%s: custodian, type the five lines of your page (they are "
			      "not shown).\nAn empty first line: no more shares.\n",
			      *ngot + 1, rebuild ? " of those needed" : "");
		kr_err e = type_share(t, &s, &none);
		if (kr_failed(&e) || none) {
			OPENSSL_cleanse(&s, sizeof s);
			if (rebuild)
				return kr_errf(
					KR_EINPUT,
					"%d good share(s) of the %d needed: nothing was rebuilt",
					*ngot, b->m);
			return *ngot > 0 ? kr_ok() : kr_errf(KR_EINPUT, "no share was checked");
		}
		char why[256];
		judge(b, got, *ngot, &s, why, sizeof why);
		if (why[0]) {
			kr_tty_printf(t, "  refused: %s\n", why);
			kr_transcript_step(c->t, "share-refused", "%s", why);
		} else {
			got[(*ngot)++] = s;
			kr_tty_printf(t, "  share %d (%s): matches the verifier\n", s.index,
				      b->custodian[s.index - 1]);
			kr_transcript_step(c->t, "share-accepted", "index=%d custodian='%s'",
					   s.index, b->custodian[s.index - 1]);
		}
		OPENSSL_cleanse(&s, sizeof s);
	}
	return kr_ok();
}
