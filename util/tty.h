/* The controlling terminal, for what must reach a person and never a file:
 * PIN prompts, and a ceremony's share pages and typed shares. Output goes to
 * /dev/tty, not stdout, so redirecting keyrite's output never captures a
 * secret. */
#ifndef KR_TTY_H
#define KR_TTY_H

#include "err.h"

#include <stddef.h>

typedef struct kr_tty kr_tty;

/* KR_EINPUT "<why>: no terminal" without a controlling terminal. */
KR_MUST_USE kr_err kr_tty_open(const char *why, kr_tty **out);
void kr_tty_close(kr_tty *t);

void kr_tty_printf(kr_tty *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the prompt, then reads one line, without its newline; echo 0 for
 * a secret (echo goes off before the prompt shows, so nothing typed after
 * it is lost to the flush of what was typed before). KR_EIO at the end of
 * input (or a failed read), KR_EINPUT for a line longer than sz - 1 (the
 * rest of it is dropped). */
KR_MUST_USE kr_err kr_tty_ask(kr_tty *t, int echo, char *buf, size_t sz, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Clears the screen and its scrollback (a share page once copied). */
void kr_tty_clear(kr_tty *t);

#endif
