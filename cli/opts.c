/* The command line of every command: the shared options, --help, the
 * command's own options through its callback, and the count of operands. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { O_CONFIG = 256, O_MODULE, O_PIN_FILE, O_PIN_ENV, O_JSON, O_HELP };

static const struct {
	struct option opt;
	unsigned group;
} shared[] = {
	{{"config", required_argument, NULL, O_CONFIG}, KR_OPT_CONFIG},
	{{"module", required_argument, NULL, O_MODULE}, KR_OPT_HSM},
	{{"pin-file", required_argument, NULL, O_PIN_FILE}, KR_OPT_HSM},
	{{"pin-env", required_argument, NULL, O_PIN_ENV}, KR_OPT_HSM},
	{{"json", no_argument, NULL, O_JSON}, KR_OPT_JSON},
};
#define NSHARED (sizeof shared / sizeof *shared)
#define MAX_OPTS 48

static void vmisuse(const kr_cli_spec *spec, const char *fmt, va_list ap)
{
	fputs("keyrite: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fputs(spec->usage, stderr);
}

int kr_cli_misuse(const kr_cli_spec *spec, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmisuse(spec, fmt, ap);
	va_end(ap);
	return KR_EUSAGE;
}

KR_MUST_USE kr_err kr_cli_number(const char *opt, const char *arg, long min, long max, long *out)
{
	char *end = NULL;
	long v = strtol(arg, &end, 0);
	KR_ENSURE(*arg && !*end && v >= min && v <= max, KR_EUSAGE,
		  "%s %s: expected a whole number from %ld to %ld", opt, arg, min, max);
	*out = v;
	return kr_ok();
}

/* The command's getopt_long table: the shared options it takes, its own,
 * --help. */
static int table(const kr_cli_spec *spec, struct option *t)
{
	int n = 0;
	for (size_t i = 0; i < NSHARED; i++)
		if (spec->shared & shared[i].group)
			t[n++] = shared[i].opt;
	for (const struct option *p = spec->own; p && p->name && n < MAX_OPTS - 2; p++)
		t[n++] = *p;
	t[n++] = (struct option){"help", no_argument, NULL, O_HELP};
	t[n] = (struct option){0};
	return n;
}

static KR_MUST_USE kr_err take_shared(int c, const char *arg, kr_cli_opts *o)
{
	switch (c) {
	case O_CONFIG:
		o->config = arg;
		break;
	case O_MODULE:
		o->hsm.module = arg;
		break;
	case O_PIN_FILE:
		o->hsm.pin.file = arg;
		break;
	case O_PIN_ENV:
		o->hsm.pin.env = arg;
		break;
	case O_JSON:
		o->json = 1;
		break;
	default:
		return kr_errf(KR_EINTERNAL, "option %d has no handler", c);
	}
	return kr_ok();
}

int kr_cli_parse(const kr_cli_spec *spec, int argc, char **argv, kr_cli_opts *o, int *first)
{
	struct option t[MAX_OPTS];
	table(spec, t);
	*o = (kr_cli_opts){0};
	optind = 0; /* GNU getopt: start afresh (a subcommand parses after its command) */
	opterr = 0; /* the errors below say which command, in keyrite's form */
	int c;
	while ((c = getopt_long(argc, argv, ":", t, NULL)) != -1) {
		kr_err e = kr_ok();
		if (c == O_HELP) {
			fputs(spec->usage, stdout);
			return 0;
		} else if (c == '?') {
			e = kr_errf(KR_EUSAGE, "%s: unrecognized option '%s'", argv[0],
				    argv[optind - 1]);
		} else if (c == ':') {
			e = kr_errf(KR_EUSAGE, "%s: option '%s' needs a value", argv[0],
				    argv[optind - 1]);
		} else if (c >= O_CONFIG) {
			e = take_shared(c, optarg, o);
		} else {
			e = spec->take ? spec->take(c, optarg, spec->ctx)
				       : kr_errf(KR_EINTERNAL, "option %d has no handler", c);
			kr_err_prefix(&e, "%s", argv[0]);
		}
		if (kr_failed(&e))
			return kr_cli_misuse(spec, "%s", e.msg);
	}
	int n = argc - optind;
	if (n < spec->min_args || (spec->max_args >= 0 && n > spec->max_args))
		return kr_cli_misuse(spec, "%s: %s", argv[0],
				     n < spec->min_args ? "too few operands" : "too many operands");
	*first = optind;
	return -1;
}

int kr_cli_dispatch(const char *usage, const kr_cli_sub *subs, size_t n, int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; argc >= 2 && i < n; i++)
		if (!strcmp(argv[1], subs[i].name)) {
			/* The subcommand's messages name the whole command. */
			static char name[96];
			snprintf(name, sizeof name, "%s %s", argv[0], argv[1]);
			argv[1] = name;
			return subs[i].fn(argc - 1, argv + 1);
		}
	if (argc < 2)
		fprintf(stderr, "keyrite: %s: which one?\n", argv[0]);
	else
		fprintf(stderr, "keyrite: %s: unknown subcommand '%s'\n", argv[0], argv[1]);
	fputs(usage, stderr);
	return KR_EUSAGE;
}
