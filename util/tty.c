/* The controlling terminal (util/tty.h). */
#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct kr_tty {
	int fd;
};

KR_MUST_USE kr_err kr_tty_open(const char *why, kr_tty **out)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	KR_ENSURE(fd >= 0, KR_EINPUT, "%s: no terminal (%s)", why, strerror(errno));
	kr_tty *t = malloc(sizeof *t);
	if (!t) {
		close(fd);
		return kr_errf(KR_EINTERNAL, "out of memory");
	}
	t->fd = fd;
	*out = t;
	return kr_ok();
}

void kr_tty_close(kr_tty *t)
{
	if (!t)
		return;
	close(t->fd);
	free(t);
}

void kr_tty_printf(kr_tty *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdprintf(t->fd, fmt, ap);
	va_end(ap);
}

/* Reads up to a newline byte by byte: a terminal in canonical mode gives a
 * line per read, a pipe behind script(1) need not. */
static KR_MUST_USE kr_err read_line(int fd, char *buf, size_t sz)
{
	size_t n = 0;
	int too_long = 0;
	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			KR_ENSURE(n > 0, KR_EIO, "the terminal's input ended%s%s",
				  r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			break;
		}
		if (ch == '\n')
			break;
		if (n + 1 < sz)
			buf[n++] = ch;
		else
			too_long = 1;
	}
	while (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	KR_ENSURE(!too_long, KR_EINPUT, "a line longer than %zu characters", sz - 1);
	return kr_ok();
}

KR_MUST_USE kr_err kr_tty_ask(kr_tty *t, int echo, char *buf, size_t sz, const char *fmt, ...)
{
	struct termios old, quiet;
	if (!echo) {
		KR_ENSURE(tcgetattr(t->fd, &old) == 0, KR_EINPUT,
			  "cannot switch off the terminal's echo");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		/* TCSAFLUSH: what was typed before the prompt is not taken */
		tcsetattr(t->fd, TCSAFLUSH, &quiet);
	}
	va_list ap;
	va_start(ap, fmt);
	vdprintf(t->fd, fmt, ap);
	va_end(ap);
	kr_err e = read_line(t->fd, buf, sz);
	if (!echo) {
		tcsetattr(t->fd, TCSANOW, &old);
		dprintf(t->fd, "\n");
	}
	return e;
}

void kr_tty_clear(kr_tty *t)
{
	/* ECMA-48: cursor home, erase the display; xterm's ED 3 erases the
	 * scrollback too. */
	dprintf(t->fd, "\033[H\033[2J\033[3J");
}
