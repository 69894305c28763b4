/* PIN sources. A PIN lives only in a caller's buffer, which the caller wipes
 * after C_Login; it is never logged, stored, or put in an error message. */
#include "internal.h"
#include "../util/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static KR_MUST_USE kr_err read_pin_file(const char *path, char *buf, size_t bufsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	KR_ENSURE(fd >= 0, KR_EHSM, "PIN file %s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kr_errf(KR_EHSM, "PIN file %s: not a regular file", path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return kr_errf(KR_EHSM,
			       "PIN file %s: group or others may read it (mode %04o); "
			       "run chmod 600 on it",
			       path, (unsigned)(st.st_mode & 07777));
	}
	ssize_t n = read(fd, buf, bufsz - 1);
	close(fd);
	KR_ENSURE(n >= 0, KR_EHSM, "PIN file %s: read failed: %s", path, strerror(errno));
	buf[n] = '\0';
	chomp(buf);
	KR_ENSURE(buf[0] != '\0', KR_EHSM, "PIN file %s: empty", path);
	return kr_ok();
}

static KR_MUST_USE kr_err prompt_pin(const char *what, char *buf, size_t bufsz)
{
	kr_tty *t = NULL;
	kr_err e = kr_tty_open(what, &t);
	if (kr_failed(&e))
		return kr_errf(KR_EHSM,
			       "%s: no PIN source (pin-source=file:... in the URI, --pin-file or "
			       "--pin-env) and no terminal to prompt on",
			       what);
	e = kr_tty_ask(t, 0, buf, bufsz, "PIN for %s: ", what);
	kr_tty_close(t);
	if (kr_failed(&e))
		return kr_errf(KR_EHSM, "%s: no PIN entered (%s)", what, e.msg);
	KR_ENSURE(buf[0], KR_EHSM, "%s: no PIN entered", what);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_pin_read(const char *uri_source, const kr_pin_source *src,
				   const char *what, char *buf, size_t bufsz)
{
	if (uri_source) {
		/* RFC 7512 section 2.4: pin-source is a URI; keyrite takes file: ones
		 * and bare absolute paths. */
		const char *path = uri_source;
		if (strncmp(path, "file:", 5) == 0)
			path += 5;
		KR_ENSURE(path[0] == '/', KR_EHSM,
			  "pin-source '%s': keyrite reads a PIN from file:/absolute/path only",
			  uri_source);
		return read_pin_file(path, buf, bufsz);
	}
	if (src && src->file)
		return read_pin_file(src->file, buf, bufsz);
	if (src && src->env) {
		const char *v = getenv(src->env);
		KR_ENSURE(v && v[0], KR_EHSM, "%s: environment variable %s is not set", what,
			  src->env);
		KR_ENSURE(strlen(v) < bufsz, KR_EHSM, "%s: PIN in %s is too long", what, src->env);
		snprintf(buf, bufsz, "%s", v);
		return kr_ok();
	}
	return prompt_pin(what, buf, bufsz);
}

kr_hsm_opts kr_hsm_opts_pin(const kr_hsm_opts *opts, const char *pin_file, const char *pin_env)
{
	kr_hsm_opts o = opts ? *opts : (kr_hsm_opts){0};
	if ((pin_file && pin_file[0]) || (pin_env && pin_env[0])) {
		o.pin.file = pin_file && pin_file[0] ? pin_file : NULL;
		o.pin.env = pin_env && pin_env[0] ? pin_env : NULL;
	}
	return o;
}
