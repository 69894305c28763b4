/* keyrite hsm tokens | keys URI | keygen URI --type T | csr URI --cn NAME --out FILE |
 * init-token --label L */
#include "cli.h"
#include "../ca/sign.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/text.h"

#include <openssl/pem.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite hsm tokens [--module PATH]\n"
	"       keyrite hsm keys URI [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"       keyrite hsm keygen URI --type TYPE [--public-key FILE] [--module PATH]\n"
	"                          [--pin-file FILE | --pin-env VAR]\n"
	"       keyrite hsm csr URI --cn NAME --out FILE [--module PATH]\n"
	"                          [--pin-file FILE | --pin-env VAR]\n"
	"       keyrite hsm init-token --label LABEL [--module PATH]\n"
	"                          [--so-pin-file FILE | --so-pin-env VAR]\n"
	"                          [--pin-file FILE | --pin-env VAR]\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return KR_EUSAGE;
}

static void print_token(const kr_hsm_token_info *t, void *arg)
{
	(void)arg;
	if (!t->initialized) {
		printf("slot %lu: (uninitialized token)\n", t->slot);
		return;
	}
	printf("slot %lu: token '%s' serial %s model '%s' manufacturer '%s'\n", t->slot, t->label,
	       t->serial, t->model, t->manufacturer);
	printf("  uri: pkcs11:token=%s;serial=%s\n", t->label, t->serial);
}

static void print_key(kr_hsm *h, kr_hsm_key *k, void *arg)
{
	(void)arg;
	size_t idlen;
	const uint8_t *id = kr_hsm_key_id(k, &idlen);
	char idhex[129], spki[65], attrs[512];
	kr_hex(id, idlen < 64 ? idlen : 64, idhex);
	uint8_t md[32];
	kr_err e = kr_hsm_key_spki_sha256(k, md);
	if (kr_failed(&e))
		snprintf(spki, sizeof spki, "unavailable");
	else
		kr_hex(md, 32, spki);
	kr_key_attrs a;
	kr_hsm_key_attrs(h, k, &a);
	kr_key_attrs_format(&a, attrs, sizeof attrs);
	printf("key '%s'\n  type: %s\n  id: %s\n  spki-sha256: %s\n  attributes: %s\n",
	       kr_hsm_key_label(k), kr_key_type_name(kr_hsm_key_type(k)), idhex, spki, attrs);
}

static KR_MUST_USE kr_err write_public_key(EVP_PKEY *pub, const char *path)
{
	KR_AUTO(BIO) mem = BIO_new(BIO_s_mem());
	KR_OSSL(mem && PEM_write_bio_PUBKEY(mem, pub), KR_EINTERNAL, "encoding public key");
	char *data = NULL;
	long n = BIO_get_mem_data(mem, &data);
	return kr_fs_write_new(path, data, (size_t)n, 0644);
}

static int cmd_tokens(int argc, char **argv)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS, {0}};
	kr_hsm_opts o = {0};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (!kr_cli_hsm_opt(&o, c, optarg))
			return usage();
	kr_err e = kr_hsm_tokens(o.module, print_token, NULL);
	return kr_cli_report(&e);
}

static int cmd_keys_or_keygen(int argc, char **argv, int gen)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS,
					     {"type", required_argument, NULL, 't'},
					     {"public-key", required_argument, NULL, 'o'},
					     {0}};
	kr_hsm_opts o = {0};
	const char *type = NULL, *pubout = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't' && gen)
			type = optarg;
		else if (c == 'o' && gen)
			pubout = optarg;
		else if (!kr_cli_hsm_opt(&o, c, optarg))
			return usage();
	}
	if (optind != argc - 1 || (gen && !type))
		return usage();
	const char *uri = argv[optind];
	kr_key_type kt = KR_KEY_EC_P256;
	kr_err e = gen ? kr_key_type_parse(type, &kt) : kr_ok();
	if (!kr_failed(&e) && pubout)
		e = kr_fs_must_not_exist(pubout);
	kr_hsm *h = NULL;
	if (!kr_failed(&e))
		e = kr_hsm_open(uri, &o, &h);
	if (!kr_failed(&e) && !gen)
		e = kr_hsm_keys(h, print_key, NULL);
	kr_hsm_key *k = NULL;
	if (!kr_failed(&e) && gen)
		e = kr_hsm_keygen(h, uri, kt, &k);
	if (!kr_failed(&e) && gen) {
		print_key(h, k, NULL);
		if (pubout)
			e = write_public_key(kr_hsm_key_public(k), pubout);
	}
	kr_hsm_key_free(k);
	kr_hsm_close(h);
	return kr_cli_report(&e);
}

/* A CSR for a key on the token (a firmware signer's, for instance), for
 * keyrite issue: its proof of possession is a token signature. */
static KR_MUST_USE kr_err make_csr(kr_hsm *h, const char *uri, const char *cn, const char *out)
{
	kr_hsm_key *k = NULL;
	KR_TRY(kr_fs_must_not_exist(out));
	KR_TRY(kr_hsm_key_find(h, uri, &k));
	kr_signer s;
	kr_err e = kr_signer_init(&s, h, k, 0);
	KR_AUTO(uint8_t) der = NULL;
	int len = 0;
	if (!kr_failed(&e))
		e = kr_sign_csr(&s, cn, &der, &len);
	kr_signer_clear(&s);
	kr_hsm_key_free(k);
	KR_TRY(e);
	KR_AUTO(BIO) mem = BIO_new(BIO_s_mem());
	KR_OSSL(mem && PEM_write_bio(mem, PEM_STRING_X509_REQ, "", der, len) > 0, KR_EINTERNAL,
		"encoding the CSR");
	char *data = NULL;
	long n = BIO_get_mem_data(mem, &data);
	return kr_fs_write_new(out, data, (size_t)n, 0644);
}

static int cmd_csr(int argc, char **argv)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS,
					     {"cn", required_argument, NULL, 'n'},
					     {"out", required_argument, NULL, 'o'},
					     {0}};
	kr_hsm_opts o = {0};
	const char *cn = NULL, *out = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			cn = optarg;
		else if (c == 'o')
			out = optarg;
		else if (!kr_cli_hsm_opt(&o, c, optarg))
			return usage();
	}
	if (!cn || !out || optind != argc - 1)
		return usage();
	kr_hsm *h = NULL;
	kr_err e = kr_hsm_open(argv[optind], &o, &h);
	if (!kr_failed(&e))
		e = make_csr(h, argv[optind], cn, out);
	kr_hsm_close(h);
	if (!kr_failed(&e))
		printf("wrote %s\n", out);
	return kr_cli_report(&e);
}

static int cmd_init_token(int argc, char **argv)
{
	static const struct option opts[] = {KR_CLI_HSM_LONGOPTS,
					     {"label", required_argument, NULL, 'l'},
					     {"so-pin-file", required_argument, NULL, 'S'},
					     {"so-pin-env", required_argument, NULL, 's'},
					     {0}};
	kr_hsm_opts o = {0};
	kr_pin_source so = {0};
	const char *label = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'l')
			label = optarg;
		else if (c == 'S')
			so.file = optarg;
		else if (c == 's')
			so.env = optarg;
		else if (!kr_cli_hsm_opt(&o, c, optarg))
			return usage();
	}
	if (!label || optind != argc)
		return usage();
	kr_err e = kr_hsm_init_token(o.module, label, &so, &o.pin);
	if (!kr_failed(&e))
		printf("initialized token '%s'\n", label);
	return kr_cli_report(&e);
}

int kr_cmd_hsm(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "tokens"))
		return cmd_tokens(argc - 1, argv + 1);
	if (!strcmp(argv[1], "keys"))
		return cmd_keys_or_keygen(argc - 1, argv + 1, 0);
	if (!strcmp(argv[1], "keygen"))
		return cmd_keys_or_keygen(argc - 1, argv + 1, 1);
	if (!strcmp(argv[1], "csr"))
		return cmd_csr(argc - 1, argv + 1);
	if (!strcmp(argv[1], "init-token"))
		return cmd_init_token(argc - 1, argv + 1);
	return usage();
}
