/* keyrite hsm tokens | keys URI | keygen URI --type T | csr URI --cn NAME --out FILE |
 * init-token --label L */
#include "cli.h"
#include "../ca/sign.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/text.h"

#include <openssl/pem.h>

#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"usage: keyrite hsm tokens [--module PATH]\n"
	"       keyrite hsm keys URI [--module PATH] [--pin-file FILE | --pin-env VAR]\n"
	"       keyrite hsm keygen URI --type TYPE [--backup] [--public-key FILE] [--module PATH]\n"
	"                          [--pin-file FILE | --pin-env VAR]\n"
	"       keyrite hsm csr URI --cn NAME [--dns NAME] --out FILE [--module PATH]\n"
	"                          [--pin-file FILE | --pin-env VAR]\n"
	"       keyrite hsm init-token --label LABEL [--module PATH]\n"
	"                          [--so-pin-file FILE | --so-pin-env VAR]\n"
	"                          [--pin-file FILE | --pin-env VAR]\n";

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

static const kr_cli_spec usage_only = {.usage = usage_text};

typedef struct args {
	const char *type, *pubout, *cn, *dns, *out, *label;
	int backup;
	kr_pin_source so;
} args;

static KR_MUST_USE kr_err take(int opt, const char *arg, void *ctx)
{
	args *a = ctx;
	switch (opt) {
	case 't':
		a->type = arg;
		break;
	case 'b':
		a->backup = 1;
		break;
	case 'k':
		a->pubout = arg;
		break;
	case 'n':
		a->cn = arg;
		break;
	case 'd':
		a->dns = arg;
		break;
	case 'o':
		a->out = arg;
		break;
	case 'l':
		a->label = arg;
		break;
	case 'S':
		a->so.file = arg;
		break;
	default:
		a->so.env = arg;
	}
	return kr_ok();
}

/* Parses a subcommand's command line into co and a; -1 to run it. */
static int parse(int argc, char **argv, const struct option *own, int nargs, kr_cli_opts *co,
		 args *a, int *first)
{
	kr_cli_spec spec = {usage_text, KR_OPT_HSM, own, take, a, nargs, nargs};
	return kr_cli_parse(&spec, argc, argv, co, first);
}

static int cmd_tokens(int argc, char **argv)
{
	args a = {0};
	kr_cli_opts co;
	int first, rc = parse(argc, argv, NULL, 0, &co, &a, &first);
	if (rc >= 0)
		return rc;
	kr_err e = kr_hsm_tokens(co.hsm.module, print_token, NULL);
	return kr_cli_report(&e);
}

static int cmd_keys(int argc, char **argv)
{
	args a = {0};
	kr_cli_opts co;
	int first, rc = parse(argc, argv, NULL, 1, &co, &a, &first);
	if (rc >= 0)
		return rc;
	KR_AUTO(kr_hsm) h = NULL;
	kr_err e = kr_hsm_open(argv[first], &co.hsm, &h);
	if (!kr_failed(&e))
		e = kr_hsm_keys(h, print_key, NULL);
	return kr_cli_report(&e);
}

static KR_MUST_USE kr_err secret_keygen(const char *uri, const kr_hsm_opts *opts,
					const char *pubout)
{
	KR_ENSURE(!pubout, KR_EUSAGE, "an AES key has no public key (--public-key)");
	KR_AUTO(kr_hsm) h = NULL;
	KR_TRY(kr_hsm_open(uri, opts, &h));
	uint8_t id[16];
	KR_TRY(kr_hsm_secret_keygen(h, uri, id));
	char hex[33];
	kr_hex(id, sizeof id, hex);
	printf("%s aes-256 id %s CKA_SENSITIVE=true CKA_EXTRACTABLE=false\n", uri, hex);
	return kr_ok();
}

static KR_MUST_USE kr_err keygen(const char *uri, const kr_hsm_opts *opts, const char *type,
				 const char *pubout, int backup)
{
	kr_key_type kt = KR_KEY_EC_P256;
	KR_AUTO(kr_hsm) h = NULL;
	KR_AUTO(kr_hsm_key) k = NULL;
	if (!strcmp(type, "aes-256")) { /* a secret key: the registry's enrollment key */
		KR_ENSURE(!backup, KR_EUSAGE, "an enrollment key is derived from, not backed up");
		return secret_keygen(uri, opts, pubout);
	}
	KR_TRY(kr_key_type_parse(type, &kt));
	if (pubout)
		KR_TRY(kr_fs_must_not_exist(pubout));
	KR_TRY(kr_hsm_open(uri, opts, &h));
	KR_TRY(backup ? kr_hsm_keygen_backup(h, uri, kt, &k) : kr_hsm_keygen(h, uri, kt, &k));
	print_key(h, k, NULL);
	return pubout ? write_public_key(kr_hsm_key_public(k), pubout) : kr_ok();
}

static int cmd_keygen(int argc, char **argv)
{
	static const struct option own[] = {{"type", required_argument, NULL, 't'},
					    {"public-key", required_argument, NULL, 'k'},
					    {"backup", no_argument, NULL, 'b'},
					    {0}};
	args a = {0};
	kr_cli_opts co;
	int first, rc = parse(argc, argv, own, 1, &co, &a, &first);
	if (rc >= 0)
		return rc;
	if (!a.type)
		return kr_cli_misuse(&usage_only, "hsm keygen: --type is needed");
	kr_err e = keygen(argv[first], &co.hsm, a.type, a.pubout, a.backup);
	return kr_cli_report(&e);
}

/* A CSR for a key on the token (a firmware signer's, for instance), for
 * keyrite issue: its proof of possession is a token signature. */
static KR_MUST_USE kr_err make_csr(const char *uri, const kr_hsm_opts *opts, const char *cn,
				   const char *dns, const char *out)
{
	KR_AUTO(kr_hsm) h = NULL;
	KR_AUTO(kr_hsm_key) k = NULL;
	KR_SIGNING(s);
	KR_AUTO(uint8_t) der = NULL;
	int len = 0;
	KR_TRY(kr_fs_must_not_exist(out));
	KR_TRY(kr_hsm_open(uri, opts, &h));
	KR_TRY(kr_hsm_key_find(h, uri, &k));
	KR_TRY(kr_signing_init(&s, h, k, 0));
	KR_TRY(kr_sign_csr(&s, cn, dns, &der, &len));
	KR_AUTO(BIO) mem = BIO_new(BIO_s_mem());
	KR_OSSL(mem && PEM_write_bio(mem, PEM_STRING_X509_REQ, "", der, len) > 0, KR_EINTERNAL,
		"encoding the CSR");
	char *data = NULL;
	long n = BIO_get_mem_data(mem, &data);
	return kr_fs_write_new(out, data, (size_t)n, 0644);
}

static int cmd_csr(int argc, char **argv)
{
	static const struct option own[] = {{"cn", required_argument, NULL, 'n'},
					    {"dns", required_argument, NULL, 'd'},
					    {"out", required_argument, NULL, 'o'},
					    {0}};
	args a = {0};
	kr_cli_opts co;
	int first, rc = parse(argc, argv, own, 1, &co, &a, &first);
	if (rc >= 0)
		return rc;
	if (!a.cn || !a.out)
		return kr_cli_misuse(&usage_only, "hsm csr: --cn and --out are needed");
	kr_err e = make_csr(argv[first], &co.hsm, a.cn, a.dns, a.out);
	if (!kr_failed(&e))
		printf("wrote %s\n", a.out);
	return kr_cli_report(&e);
}

static int cmd_init_token(int argc, char **argv)
{
	static const struct option own[] = {{"label", required_argument, NULL, 'l'},
					    {"so-pin-file", required_argument, NULL, 'S'},
					    {"so-pin-env", required_argument, NULL, 's'},
					    {0}};
	args a = {0};
	kr_cli_opts co;
	int first, rc = parse(argc, argv, own, 0, &co, &a, &first);
	if (rc >= 0)
		return rc;
	if (!a.label)
		return kr_cli_misuse(&usage_only, "hsm init-token: --label is needed");
	kr_err e = kr_hsm_init_token(co.hsm.module, a.label, &a.so, &co.hsm.pin);
	if (!kr_failed(&e))
		printf("initialized token '%s'\n", a.label);
	return kr_cli_report(&e);
}

int kr_cmd_hsm(int argc, char **argv)
{
	static const kr_cli_sub subs[] = {{"tokens", cmd_tokens},
					  {"keys", cmd_keys},
					  {"keygen", cmd_keygen},
					  {"csr", cmd_csr},
					  {"init-token", cmd_init_token}};
	return kr_cli_dispatch(usage_text, subs, sizeof subs / sizeof *subs, argc, argv);
}
