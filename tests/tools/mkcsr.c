/* mkcsr: makes certification requests for keyrite's tests and benchmark,
 * including deliberately defective ones that `openssl req` will not make.
 *
 *   mkcsr [options]                       one CSR (PEM, or DER with --der)
 *   mkcsr --manifest N [--start ID]       a CSV manifest of N P-256 CSRs
 *   mkcsr --stream N [--start ID]         N PEM CSRs, one after another
 *
 * Options: --key ec-p256|ec-p384|ec-p521|secp256k1|ec-explicit|rsa-1024|
 * rsa-2048|rsa-e3|ed25519  --md sha256|sha384|sha1  --cn CN  --dns NAME...
 * --ip ADDR --email ADDR --ca --keycertsign --critical-unknown --version N
 * --corrupt-sig --trailing --truncate N --der --out FILE */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
	fprintf(stderr, "mkcsr: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static EVP_PKEY *make_key(const char *type)
{
	EVP_PKEY *k = NULL;
	if (!strcmp(type, "ec-p256"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (!strcmp(type, "ec-p384"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (!strcmp(type, "ec-p521"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	else if (!strcmp(type, "secp256k1"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	else if (!strcmp(type, "ed25519"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (!strcmp(type, "rsa-1024"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	else if (!strcmp(type, "rsa-2048"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (!strcmp(type, "rsa-e3") || !strcmp(type, "ec-explicit")) {
		int rsa = !strcmp(type, "rsa-e3");
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", NULL);
		if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0)
			die("keygen");
		if (rsa) {
			BIGNUM *e = BN_new();
			BN_set_word(e, 3);
			EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048);
			EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e);
			BN_free(e);
		} else {
			OSSL_PARAM p[] = {
				OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
								 "P-256", 0),
				OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
								 OSSL_PKEY_EC_ENCODING_EXPLICIT, 0),
				OSSL_PARAM_construct_end()};
			EVP_PKEY_CTX_set_params(ctx, p);
		}
		EVP_PKEY_keygen(ctx, &k);
		EVP_PKEY_CTX_free(ctx);
	} else
		die("unknown key type");
	if (!k)
		die("keygen failed");
	return k;
}

typedef struct opts {
	const char *key, *md, *cn, *ip, *email, *out;
	const char *dns[8];
	int ndns, ca, kcs, crit, version, corrupt, trailing, truncate, der;
} opts;

static void add_ext(STACK_OF(X509_EXTENSION) * exts, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
	if (!e)
		die("extension");
	sk_X509_EXTENSION_push(exts, e);
}

static X509_REQ *make_req(const opts *o, EVP_PKEY *k)
{
	X509_REQ *req = X509_REQ_new();
	X509_REQ_set_version(req, o->version);
	X509_NAME *name = X509_REQ_get_subject_name(req);
	/* A plain string type skips OpenSSL's length bounds: tests need a CN
	 * longer than RFC 5280 allows. */
	if (o->cn)
		X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_UTF8STRING,
					   (const unsigned char *)o->cn, -1, -1, 0);
	X509_REQ_set_pubkey(req, k);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	char san[1024] = "";
	for (int i = 0; i < o->ndns; i++)
		snprintf(san + strlen(san), sizeof san - strlen(san), "%sDNS:%s", i ? "," : "",
			 o->dns[i]);
	if (o->ip)
		snprintf(san + strlen(san), sizeof san - strlen(san), "%sIP:%s", san[0] ? "," : "",
			 o->ip);
	if (o->email)
		snprintf(san + strlen(san), sizeof san - strlen(san), "%semail:%s",
			 san[0] ? "," : "", o->email);
	if (san[0])
		add_ext(exts, NID_subject_alt_name, san);
	if (o->ca)
		add_ext(exts, NID_basic_constraints, "critical,CA:TRUE");
	if (o->kcs)
		add_ext(exts, NID_key_usage, "critical,keyCertSign,digitalSignature");
	if (o->crit) {
		ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
		sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v));
		ASN1_OBJECT_free(obj);
		ASN1_OCTET_STRING_free(v);
	}
	if (sk_X509_EXTENSION_num(exts) > 0)
		X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	const EVP_MD *md =
		EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_get_digestbyname(o->md);
	if (!X509_REQ_sign(req, k, md))
		die("signing");
	return req;
}

static void emit(const opts *o, X509_REQ *req)
{
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);
	if (n <= 0)
		die("encoding");
	if (o->corrupt)
		der[n - 1] ^= 0x01; /* the signature's last byte */
	unsigned char *buf = malloc((size_t)n + 16);
	memcpy(buf, der, (size_t)n);
	if (o->trailing) {
		memcpy(buf + n, "\x00\x00garbage", 9);
		n += 9;
	}
	if (o->truncate)
		n -= o->truncate;
	FILE *f = o->out ? fopen(o->out, "wb") : stdout;
	if (!f)
		die("cannot open output");
	if (o->der)
		fwrite(buf, 1, (size_t)n, f);
	else
		PEM_write(f, "CERTIFICATE REQUEST", "", buf, n);
	if (o->out)
		fclose(f);
	free(buf);
	OPENSSL_free(der);
}

/* Bulk CSRs for batches: a few keys reused with distinct subjects, so that
 * a million requests take seconds, not hours. */
static void bulk(long n, long long start, int manifest)
{
	enum { KEYS = 16 };
	X509_REQ *reqs[KEYS];
	EVP_PKEY *keys[KEYS];
	for (int i = 0; i < KEYS; i++) {
		keys[i] = make_key("ec-p256");
		reqs[i] = X509_REQ_new();
		X509_REQ_set_pubkey(reqs[i], keys[i]);
	}
	if (manifest)
		puts("device_id,model,version,csr");
	for (long i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof id, "%lld", start + i);
		X509_REQ *req = reqs[i % KEYS];
		X509_NAME *name = X509_NAME_new();
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (unsigned char *)id, -1, -1,
					   0);
		X509_REQ_set_subject_name(req, name);
		X509_NAME_free(name);
		if (!X509_REQ_sign(req, keys[i % KEYS], EVP_sha256()))
			die("signing");
		unsigned char *der = NULL;
		int len = i2d_X509_REQ(req, &der);
		if (manifest) {
			unsigned char b64[1024];
			EVP_EncodeBlock(b64, der, len);
			printf("%s,SParkometer,1.1,%s\n", id, b64);
		} else {
			PEM_write(stdout, "CERTIFICATE REQUEST", "", der, len);
		}
		OPENSSL_free(der);
	}
}

int main(int argc, char **argv)
{
	opts o = {.key = "ec-p256", .md = "sha256"};
	long bulk_n = -1;
	int manifest = 0;
	long long start = 1000000000000001LL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && ++i)
		if (ARG("--key"))
			o.key = v;
		else if (ARG("--md"))
			o.md = v;
		else if (ARG("--cn"))
			o.cn = v;
		else if (ARG("--dns") && o.ndns < 8)
			o.dns[o.ndns++] = v;
		else if (ARG("--ip"))
			o.ip = v;
		else if (ARG("--email"))
			o.email = v;
		else if (ARG("--version"))
			o.version = atoi(v);
		else if (ARG("--truncate"))
			o.truncate = atoi(v);
		else if (ARG("--out"))
			o.out = v;
		else if (ARG("--manifest"))
			bulk_n = atol(v), manifest = 1;
		else if (ARG("--stream"))
			bulk_n = atol(v);
		else if (ARG("--start"))
			start = atoll(v);
		else if (!strcmp(a, "--ca"))
			o.ca = 1;
		else if (!strcmp(a, "--keycertsign"))
			o.kcs = 1;
		else if (!strcmp(a, "--critical-unknown"))
			o.crit = 1;
		else if (!strcmp(a, "--corrupt-sig"))
			o.corrupt = 1;
		else if (!strcmp(a, "--trailing"))
			o.trailing = 1;
		else if (!strcmp(a, "--der"))
			o.der = 1;
		else
			die("bad arguments (see the comment at the top of mkcsr.c)");
	}
	if (bulk_n >= 0) {
		bulk(bulk_n, start, manifest);
		return 0;
	}
	EVP_PKEY *k = make_key(o.key);
	X509_REQ *req = make_req(&o, k);
	emit(&o, req);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return 0;
}
