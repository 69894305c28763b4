/* keyrite publish --zone ZONE --out DIR [--soa] [--sign] [--changes FILE]
 * keyrite publish check --zone FILE | --server ADDR[:PORT] --zone ZONE */
#include "cli.h"
#include "../publish/publish.h"

#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite publish [--config FILE] --zone ZONE --out DIR [--soa] [--sign]\n"
	"                       [--changes FILE] [--module PATH] [--pin-file FILE | --pin-env "
	"VAR]\n"
	"       keyrite publish check [--config FILE] --zone FILE\n"
	"       keyrite publish check [--config FILE] --server ADDR[:PORT] --zone ZONE\n";

/* The configuration, the store and the zone's section, opened together. */
typedef struct zone_ctx {
	kr_cli_store s;
	const kr_zone_conf *z;
} zone_ctx;

static KR_MUST_USE kr_err open_zone(const char *config, const char *apex, zone_ctx *zc)
{
	*zc = (zone_ctx){0};
	KR_TRY(kr_cli_open(config, 0, &zc->s));
	return kr_config_zone(zc->s.cfg, apex, &zc->z);
}

static void close_zone(zone_ctx *zc) { kr_cli_store_close(&zc->s); }

typedef struct args {
	const char *zone;
	kr_check_opts check;
	kr_publish_opts pub;
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	switch (opt) {
	case 'z':
		a->zone = arg;
		break;
	case 's':
		a->check.server = arg;
		break;
	case 'o':
		a->pub.out_dir = arg;
		break;
	case 'S':
		a->pub.soa = 1;
		break;
	case 'g':
		a->pub.sign = 1;
		break;
	default:
		a->pub.changes = arg;
	}
	return kr_ok();
}

static int cmd_check(int argc, char **argv)
{
	static const struct option own[] = {{"zone", required_argument, NULL, 'z'},
					    {"server", required_argument, NULL, 's'},
					    {0}};
	args a = {0};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG, own, take, &a, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.zone)
		return kr_cli_misuse(&spec, "publish check: --zone is needed");
	kr_check_opts o = a.check;
	/* Without --server, --zone is the zone file, named ZONE.zone as publish
	 * writes it. */
	char apex[256];
	const char *zone = a.zone, *base = strrchr(zone, '/') ? strrchr(zone, '/') + 1 : zone;
	size_t n = strlen(base);
	if (!o.server) {
		o.zone_file = zone;
		if (n <= 5 || strcmp(base + n - 5, ".zone") != 0) {
			fprintf(stderr, "keyrite: %s: expected a file named ZONE.zone\n", zone);
			return KR_EUSAGE;
		}
		n -= 5;
	}
	snprintf(apex, sizeof apex, "%.*s", (int)n, o.server ? zone : base);
	zone_ctx zc;
	kr_check_summary sum = {0};
	kr_err e = open_zone(co.config, apex, &zc);
	if (!kr_failed(&e))
		e = kr_publish_check(zc.s.cfg, zc.s.store, zc.z, &o, stdout, &sum);
	close_zone(&zc);
	fflush(stdout);
	return kr_cli_report(&e);
}

static int cmd_publish(int argc, char **argv)
{
	static const struct option own[] = {
		{"zone", required_argument, NULL, 'z'},    {"out", required_argument, NULL, 'o'},
		{"soa", no_argument, NULL, 'S'},           {"sign", no_argument, NULL, 'g'},
		{"changes", required_argument, NULL, 'C'}, {0}};
	args a = {0};
	kr_cli_spec spec = {usage_text, KR_OPT_CONFIG | KR_OPT_HSM, own, take, &a, 0, 0};
	kr_cli_opts co;
	int first, rc = kr_cli_parse(&spec, argc, argv, &co, &first);
	if (rc >= 0)
		return rc;
	if (!a.zone || !a.pub.out_dir)
		return kr_cli_misuse(&spec, "publish: --zone and --out are needed");
	kr_publish_opts o = a.pub;
	o.hsm = co.hsm;
	zone_ctx zc;
	kr_publish_summary sum = {0};
	kr_err e = open_zone(co.config, a.zone, &zc);
	if (!kr_failed(&e))
		e = kr_publish(zc.s.cfg, zc.s.store, zc.z, &o, &sum);
	if (!kr_failed(&e)) {
		printf("zone %s: %ld records (%ld devices, %ld CERT, %ld servers, %ld roots) in "
		       "%s\n",
		       zc.z->apex, sum.records, sum.devices, sum.certs, sum.servers, sum.roots,
		       sum.zone_file);
		printf("%ld CA certificates in %s/.well-known/ca\n", sum.ca_files, o.out_dir);
		printf("since the last publication: %ld added, %ld removed", sum.added,
		       sum.removed);
		if (o.changes)
			printf("; nsupdate script of %ld message(s) in %s", sum.messages,
			       o.changes);
		putchar('\n');
		for (int i = 0; i < 2 && sum.ds[i][0]; i++)
			printf("DS for the parent: %s\n", sum.ds[i]);
	}
	close_zone(&zc);
	return kr_cli_report(&e);
}

int kr_cmd_publish(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	return cmd_publish(argc, argv);
}
