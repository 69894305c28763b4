/* keyrite fw sign --signer NAME [--format cms|mcuboot] ... IMAGE...
 * keyrite fw verify --root FILE [...] FILE */
#include "cli.h"
#include "../fw/fw.h"
#include "../util/json.h"
#include "../util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite fw sign [--config FILE] --signer NAME [--out DIR] [--json]\n"
	"                       [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"         CMS:          [--format cms] --package-version N [--package OID]\n"
	"                       [--hardware OID]... [--embed] [--encrypt-kek LABEL]\n"
	"                       [--authenveloped [--encrypt-to CERT]... [--encrypt-to-device "
	"ID]...\n"
	"                        [--encrypt-kek LABEL]...]\n"
	"         MCUboot:      --format mcuboot [--encrypt-to KEY]...\n"
	"                       [--header-size N --version V [--load-addr ADDR]\n"
	"                        [--pad-header [--erased-val 0|0xff]]]\n"
	"                       IMAGE...\n"
	"       keyrite fw verify [--format cms|mcuboot] --root FILE [--expect-version V]\n"
	"                       [--content IMAGE] [--package OID] [--hardware OID]\n"
	"                       [--cert FILE] FILE\n"
	"       keyrite fw list [--config FILE] [--json]\n";

static KR_MUST_USE kr_err parse_format(const char *v, kr_fw_format *f)
{
	if (strcmp(v, "cms") == 0)
		*f = KR_FW_CMS;
	else if (strcmp(v, "mcuboot") == 0)
		*f = KR_FW_MCUBOOT;
	else
		return kr_errf(KR_EUSAGE, "--format %s: expected cms or mcuboot", v);
	return kr_ok();
}

static KR_MUST_USE kr_err parse_u32(const char *opt, const char *v, unsigned long max,
				    unsigned long *out)
{
	char *end = NULL;
	*out = strtoul(v, &end, 0);
	KR_ENSURE(*v && !*end && *out <= max, KR_EUSAGE, "%s %s: expected a number up to %lu", opt,
		  v, max);
	return kr_ok();
}

/* ---- sign ------------------------------------------------------------------------------ */

typedef struct tally {
	FILE *json;
	const kr_fw_signer *s;
	int signed_n, failed;
	kr_err last;
} tally;

static void report(const char *image, const kr_fw_result *r, const kr_err *e, void *arg)
{
	tally *t = arg;
	if (!image) { /* the store failed: no image of its chunk is reported */
		fprintf(stderr, "keyrite: %s\n", e->msg);
		return;
	}
	e ? t->failed++ : t->signed_n++;
	t->last = e ? *e : kr_ok();
	if (e)
		fprintf(stderr, "keyrite: %s\n", e->msg);
	if (!t->json)
		return;
	fputs("{\"file\":", t->json);
	kr_json_str(t->json, image);
	if (e) {
		fputs(",\"status\":\"failed\",\"reason\":", t->json);
		kr_json_str(t->json, e->msg);
		fputs("}\n", t->json);
		return;
	}
	char sha[65], fp[65];
	kr_hex(r->sha256, 32, sha);
	kr_hex(kr_fw_signer_fingerprint(t->s), 32, fp);
	fprintf(t->json,
		",\"status\":\"signed\",\"size\":%llu,\"sha256\":\"%s\",\"signer\":\"%s\""
		",\"outputs\":[",
		(unsigned long long)r->size, sha, fp);
	char copy[sizeof r->outputs], *save = NULL;
	snprintf(copy, sizeof copy, "%s", r->outputs);
	int first = 1;
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save), first = 0) {
		fputs(first ? "" : ",", t->json);
		kr_json_str(t->json, p);
	}
	fputs("]}\n", t->json);
}

typedef struct sign_args {
	kr_fw_opts *o;
	const char *config, *signer, *format, *load_addr, *header_size, *version, *erased_val;
	const char *package_version;
	const char *files[KR_FW_MAX_RECIPIENTS], *devices[KR_FW_MAX_RECIPIENTS];
	int nfiles, ndevices;
	FILE *json;
	kr_hsm_opts h;
} sign_args;

/* A raw binary: the header keyrite writes, as imgtool's options say it. */
static KR_MUST_USE kr_err mcuboot_options(const sign_args *a, kr_fw_opts *o)
{
	KR_ENSURE(!o->embed && !o->authenveloped && !o->package && !a->package_version &&
			  !o->nhardware,
		  KR_EUSAGE,
		  "--embed, --authenveloped, --package, --package-version and --hardware are "
		  "for --format cms");
	o->raw = a->header_size || a->load_addr || a->version || o->pad_header;
	KR_ENSURE(!o->raw || (a->header_size && a->version), KR_EUSAGE,
		  "a raw binary needs --header-size and --version (and --load-addr for a "
		  "RAM-loading image)");
	KR_ENSURE(!a->erased_val || o->pad_header, KR_EUSAGE,
		  "--erased-val is the fill of the header --pad-header puts in front");
	if (!o->raw)
		return kr_ok();
	unsigned long v = 0;
	KR_TRY(parse_u32("--header-size", a->header_size, 65535, &v));
	o->header_size = (uint16_t)v;
	v = 0;
	if (a->load_addr)
		KR_TRY(parse_u32("--load-addr", a->load_addr, 0xffffffffUL, &v));
	o->load_addr = (uint32_t)v;
	o->erased_val = 0xff; /* imgtool's default: erased flash */
	if (a->erased_val) {
		KR_TRY(parse_u32("--erased-val", a->erased_val, 0xff, &v));
		KR_ENSURE(v == 0 || v == 0xff, KR_EUSAGE, "--erased-val %s: 0 or 0xff",
			  a->erased_val);
		o->erased_val = (uint8_t)v;
	}
	return kr_mcuboot_version_parse(a->version, &o->version);
}

static KR_MUST_USE kr_err cms_options(const sign_args *a, kr_fw_opts *o)
{
	KR_ENSURE(!a->header_size && !a->load_addr && !a->version && !o->pad_header &&
			  !a->erased_val,
		  KR_EUSAGE,
		  "--header-size, --load-addr, --version, --pad-header and --erased-val are for "
		  "--format mcuboot (a CMS package's version is --package-version)");
	if (!a->package_version)
		return kr_ok(); /* the batch says what is missing, with the signer's defaults */
	char *end = NULL;
	long long v = strtoll(a->package_version, &end, 10);
	KR_ENSURE(*a->package_version && !*end && v >= 0, KR_EUSAGE,
		  "--package-version %s: a number from 0 up (RFC 4108 verNum)", a->package_version);
	o->package_version = v;
	o->has_version = 1;
	return kr_ok();
}

static KR_MUST_USE kr_err prepare(sign_args *a, kr_store *store, kr_fw_opts *o)
{
	if (a->format)
		KR_TRY(parse_format(a->format, &o->format));
	KR_TRY(o->format == KR_FW_MCUBOOT ? mcuboot_options(a, o) : cms_options(a, o));
	for (int i = 0; i < a->nfiles; i++)
		KR_TRY(kr_fw_recipient_file(o, a->files[i]));
	for (int i = 0; i < a->ndevices; i++)
		KR_TRY(kr_fw_recipient_device(o, store, a->devices[i]));
	return kr_ok();
}

static KR_MUST_USE kr_err run(kr_fw_signer *s, kr_store *store, const kr_fw_opts *o, char **images,
			      int n, tally *t)
{
	kr_fw_batch *b = NULL;
	kr_err e = kr_fw_batch_new(s, store, o, report, t, &b);
	if (kr_failed(&e)) {
		report(NULL, NULL, &e, t); /* the run's own failure, before any image */
		return e;
	}
	for (int i = 0; i < n && !kr_failed(&e); i++)
		e = kr_fw_batch_add(b, images[i]);
	if (!kr_failed(&e))
		e = kr_fw_batch_finish(b);
	kr_fw_batch_free(b);
	return e;
}

static int sign_all(sign_args *a, kr_fw_opts *o, char **images, int n)
{
	KR_CLI_STORE(cs);
	kr_fw_signer *s = NULL;
	tally t = {.json = a->json};
	kr_err e = kr_cli_open(a->config, 0, &cs);
	if (!kr_failed(&e))
		e = prepare(a, cs.store, o);
	if (!kr_failed(&e))
		e = kr_fw_signer_open(cs.cfg, a->signer, cs.store, &a->h, &s);
	int started = !kr_failed(&e);
	t.s = s;
	if (started)
		e = run(s, cs.store, o, images, n, &t);
	kr_fw_signer_close(s);
	kr_fw_recipients_free(o);
	kr_cli_store_close(&cs);
	if (started && n > 1)
		fprintf(stderr, "keyrite: %d signed, %d failed\n", t.signed_n, t.failed);
	if (!started)
		return kr_cli_report(&e);
	if (kr_failed(&e))
		return (int)e.code; /* already reported, with its image or the store's */
	if (n == 1)
		return (int)t.last.code; /* one image: its own status */
	return kr_cli_batch_status(t.signed_n, t.failed);
}

static KR_MUST_USE kr_err take_sign(int opt, const char *arg, void *ctx)
{
	sign_args *a = ctx;
	kr_fw_opts *o = a->o;
	int full = (opt == 't' && a->nfiles == KR_FW_MAX_RECIPIENTS) ||
		   (opt == 'd' && a->ndevices == KR_FW_MAX_RECIPIENTS) ||
		   (opt == 'k' && o->nkeks == KR_FW_MAX_RECIPIENTS);
	KR_ENSURE(!full, KR_EUSAGE, "at most %d of each recipient option", KR_FW_MAX_RECIPIENTS);
	KR_ENSURE(opt != 'w' || o->nhardware < KR_FW_MAX_HARDWARE, KR_EUSAGE,
		  "at most %d --hardware", KR_FW_MAX_HARDWARE);
	switch (opt) {
	case 's':
		a->signer = arg;
		break;
	case 'f':
		a->format = arg;
		break;
	case 'e':
		o->embed = 1;
		break;
	case 'o':
		o->out_dir = arg;
		break;
	case 't':
		a->files[a->nfiles++] = arg;
		break;
	case 'd':
		a->devices[a->ndevices++] = arg;
		break;
	case 'k':
		o->keks[o->nkeks++] = arg;
		break;
	case 'H':
		a->header_size = arg;
		break;
	case 'L':
		a->load_addr = arg;
		break;
	case 'P':
		o->pad_header = 1;
		break;
	case 'E':
		a->erased_val = arg;
		break;
	case 'p':
		o->package = arg;
		break;
	case 'n':
		a->package_version = arg;
		break;
	case 'w':
		o->hardware[o->nhardware++] = arg;
		break;
	case 'A':
		o->authenveloped = 1;
		break;
	default:
		a->version = arg;
	}
	return kr_ok();
}

static int cmd_sign(int argc, char **argv)
{
	static const struct option own[] = {{"signer", required_argument, NULL, 's'},
					    {"format", required_argument, NULL, 'f'},
					    {"embed", no_argument, NULL, 'e'},
					    {"out", required_argument, NULL, 'o'},
					    {"encrypt-to", required_argument, NULL, 't'},
					    {"encrypt-to-device", required_argument, NULL, 'd'},
					    {"encrypt-kek", required_argument, NULL, 'k'},
					    {"header-size", required_argument, NULL, 'H'},
					    {"load-addr", required_argument, NULL, 'L'},
					    {"version", required_argument, NULL, 'V'},
					    {"pad-header", no_argument, NULL, 'P'},
					    {"erased-val", required_argument, NULL, 'E'},
					    {"package", required_argument, NULL, 'p'},
					    {"package-version", required_argument, NULL, 'n'},
					    {"hardware", required_argument, NULL, 'w'},
					    {"authenveloped", no_argument, NULL, 'A'},
					    {0}};
	kr_fw_opts o = {0};
	sign_args a = {.o = &o};
	kr_cli_spec spec = {
		usage_text, KR_OPT_CONFIG | KR_OPT_HSM | KR_OPT_JSON, own, take_sign, &a, 1, -1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.signer)
		return kr_cli_misuse(&spec, "fw sign: --signer is needed");
	a.config = co.config;
	a.h = co.hsm;
	a.json = co.json ? stdout : NULL;
	return sign_all(&a, &o, argv + first, argc - first);
}

/* ---- verify ------------------------------------------------------------------------------ */

typedef struct verify_args {
	kr_fw_verify_opts o;
	const char *format;
} verify_args;

static KR_MUST_USE kr_err take_verify(int opt, const char *arg, void *ctx)
{
	verify_args *a = ctx;
	switch (opt) {
	case 'f':
		a->format = arg;
		break;
	case 'r':
		a->o.root = arg;
		break;
	case 'C':
		a->o.content = arg;
		break;
	case 'x':
		a->o.cert = arg;
		break;
	case 'p':
		a->o.package = arg;
		break;
	case 'w':
		a->o.hardware = arg;
		break;
	default:
		a->o.expect_version = arg;
	}
	return kr_ok();
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option own[] = {{"format", required_argument, NULL, 'f'},
					    {"root", required_argument, NULL, 'r'},
					    {"content", required_argument, NULL, 'C'},
					    {"cert", required_argument, NULL, 'x'},
					    {"expect-version", required_argument, NULL, 'V'},
					    {"package", required_argument, NULL, 'p'},
					    {"hardware", required_argument, NULL, 'w'},
					    {0}};
	verify_args a = {.o = {.format = KR_FW_CMS}};
	kr_cli_spec spec = {usage_text, 0, own, take_verify, &a, 1, 1};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.o.root)
		return kr_cli_misuse(&spec, "fw verify: --root is needed");
	kr_err e = a.format ? parse_format(a.format, &a.o.format) : kr_ok();
	if (!kr_failed(&e) && a.o.format == KR_FW_MCUBOOT && (a.o.package || a.o.hardware))
		e = kr_errf(KR_EUSAGE, "--package and --hardware are for CMS packages");
	if (!kr_failed(&e) && a.o.format == KR_FW_CMS && a.o.cert)
		e = kr_errf(KR_EUSAGE, "--cert is for MCUboot images (a CMS package carries its "
				       "certificates)");
	char summary[1024] = "";
	if (!kr_failed(&e))
		e = kr_fw_verify(&a.o, argv[first], summary, sizeof summary);
	if (!kr_failed(&e))
		printf("%s\n", summary);
	return kr_cli_report(&e);
}

/* ---- list -------------------------------------------------------------------------------- */

/* The outputs, comma-separated in the record, as a JSON array. */
static void json_outputs(const char *outputs)
{
	fputc('[', stdout);
	for (const char *p = outputs; *p;) {
		size_t n = strcspn(p, ",");
		char one[4096];
		snprintf(one, sizeof one, "%.*s", (int)n, p);
		fputs(p == outputs ? "" : ",", stdout);
		kr_json_str(stdout, one);
		p += n + (p[n] == ',');
	}
	fputc(']', stdout);
}

static KR_MUST_USE kr_err list_one(const kr_fw_row *r, void *arg)
{
	int json = *(int *)arg;
	char sha[65], fp[65];
	kr_hex(r->image_sha256, 32, sha);
	kr_hex(r->signer_sha256, 32, fp);
	if (!json) {
		printf("%s %s %-12s %10lld %s %s -> %s\n", r->time, r->signer, r->format,
		       (long long)r->size, sha, r->file, r->output);
		return kr_ok();
	}
	fputs("{\"time\":", stdout);
	kr_json_str(stdout, r->time);
	fputs(",\"signer\":", stdout);
	kr_json_str(stdout, r->signer);
	printf(",\"signer_sha256\":\"%s\",\"file\":", fp);
	kr_json_str(stdout, r->file);
	printf(",\"size\":%lld,\"sha256\":\"%s\",\"format\":", (long long)r->size, sha);
	kr_json_str(stdout, r->format);
	fputs(",\"outputs\":", stdout);
	json_outputs(r->output);
	fputs(",\"recipients\":", stdout);
	kr_json_str(stdout, r->recipients);
	fputs("}\n", stdout);
	return kr_ok();
}

static int cmd_list(int argc, char **argv)
{
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_JSON, NULL, NULL, NULL, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	KR_CLI_STORE(s);
	kr_err e = kr_cli_open(co.config, 0, &s);
	if (!kr_failed(&e))
		e = kr_store_firmware(s.store, list_one, &co.json);
	return kr_cli_report(&e);
}

int kr_cmd_fw(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {
		{"sign", cmd_sign}, {"verify", cmd_verify}, {"list", cmd_list}};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}
