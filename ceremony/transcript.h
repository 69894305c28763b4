/* The ceremony transcript: one record a line, keyword first, every line
 * echoed to the terminal for the witnesses, the last line the SHA-256 of all
 * before it. Until the first irreversible act (a key generated, an output
 * written) it is held in memory, so a ceremony refused beforehand leaves no
 * file behind; from then on each line is on disk (fsync) before the next act. */
#ifndef KR_TRANSCRIPT_H
#define KR_TRANSCRIPT_H

#include "../util/err.h"

#include <stdint.h>
#include <stdio.h>

typedef struct kr_transcript kr_transcript;

KR_MUST_USE kr_err kr_transcript_new(const char *path, FILE *echo, kr_transcript **out);
void kr_transcript_free(kr_transcript *t);

void kr_transcript_line(kr_transcript *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "step <utc time> <name> <detail>" */
void kr_transcript_step(kr_transcript *t, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Creates the file exclusively and writes what is buffered; once the file
 * exists, returns the first failure to write (or fsync) a line since. Call
 * it before every act on the HSM or the disk: a line that is not on disk
 * stops the ceremony before the next act. */
KR_MUST_USE kr_err kr_transcript_commit(kr_transcript *t);
int kr_transcript_committed(const kr_transcript *t);

/* Appends "transcript-sha256 <hex>" and closes; hash receives the digest. */
KR_MUST_USE kr_err kr_transcript_finish(kr_transcript *t, uint8_t hash[32]);

#define KR_TRANSCRIPT_MAGIC "keyrite-transcript 1"

/* A finished transcript as read (len bytes of text): KR_EINPUT if it is
 * not a transcript, KR_EVERIFY if it is truncated or altered; else its
 * body, every line before "transcript-sha256", checked against that hash
 * and NUL-terminated in place. The bytes checked are the bytes the caller
 * hashed or parses: the file is read once. */
KR_MUST_USE kr_err kr_transcript_check(const char *path, uint8_t *text, size_t len, size_t *body);

/* The most a transcript may hold. */
#define KR_TRANSCRIPT_MAX (8 << 20)

/* 1 and the rest of the line in out if the body has an nth line (from 0)
 * that starts with keyword and a space. */
int kr_transcript_find(const char *body, const char *keyword, size_t nth, char *out, size_t outsz);

#endif
