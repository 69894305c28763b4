/* bench/cmpload: the load for bench/serve.sh (not part of keyrite).
 *
 *   cmpload cmp URL CLIENT.pem CLIENT.key ROOT.pem CHAIN.pem MANIFEST THREADS [new]
 *     p10cr enrollments of the manifest's CSRs (device_id,model,version,
 *     base64 DER CSR), THREADS at a time, each over one kept-alive
 *     connection (or a new one per request with "new"): messages built by
 *     OpenSSL's CMP client beforehand (implicit confirmation: one round
 *     trip each), posted by libcurl, each answer decoded.
 *   cmpload json URL CLIENT.pem CLIENT.key ROOT.pem PATHFILE THREADS SECONDS
 *     GET of the paths in PATHFILE (one a line), round robin, for SECONDS.
 *   cmpload floor CLIENT.pem CLIENT.key ROOT.pem CHAIN.pem MANIFEST THREADS
 *     the library's floor: the same p10cr messages decoded, processed and
 *     encoded by OSSL_CMP_SRV_process_request with an in-memory P-256 CA
 *     key and no store, THREADS at a time.
 *
 * Prints requests/s, p50 and p99 latency (ms) and the CPU seconds the
 * process used (so that the load is seen not to be the bottleneck). */
#include <curl/curl.h>
#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "cmpload: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!x)
		die(path);
	return x;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!k)
		die(path);
	return k;
}

/* The manifest's CSRs. */
static X509_REQ **csrs;
static int ncsrs;

static void read_manifest(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(path);
	char line[8192];
	int cap = 0;
	while (fgets(line, sizeof line, f)) {
		char *b64 = strrchr(line, ',');
		if (!b64 || !strncmp(line, "device_id", 9))
			continue;
		b64++;
		b64[strcspn(b64, "\r\n")] = 0;
		unsigned char der[4096];
		size_t len = strlen(b64), pad = 0;
		while (pad < 2 && len > pad && b64[len - 1 - pad] == '=')
			pad++;
		/* EVP_DecodeBlock counts the padding as octets */
		int n = EVP_DecodeBlock(der, (unsigned char *)b64, (int)len) - (int)pad;
		const unsigned char *p = der;
		X509_REQ *r = n > 0 ? d2i_X509_REQ(NULL, &p, n) : NULL;
		if (!r)
			die("a CSR of the manifest");
		if (ncsrs == cap) {
			cap = cap ? 2 * cap : 1024;
			csrs = realloc(csrs, (size_t)cap * sizeof *csrs);
		}
		csrs[ncsrs++] = r;
	}
	fclose(f);
}

/* ---- the work, shared by the threads --------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int next_item, failures;
static double *lat;
static int nlat;
static double until; /* json: the end */

static int take(void)
{
	pthread_mutex_lock(&mu);
	int i = next_item < ncsrs ? next_item++ : -1;
	pthread_mutex_unlock(&mu);
	return i;
}

static void record(double ms, int ok)
{
	pthread_mutex_lock(&mu);
	if (ok)
		lat[nlat++] = ms;
	else
		failures++;
	pthread_mutex_unlock(&mu);
}

static const char *url, *client_cert, *client_key, *root, *chain;
static int fresh; /* a new connection per request */

typedef struct buf {
	unsigned char *p;
	size_t n;
} buf;

static size_t on_data(char *d, size_t size, size_t n, void *arg)
{
	buf *b = arg;
	unsigned char *grown = realloc(b->p, b->n + size * n);
	if (!grown)
		return 0;
	b->p = grown;
	memcpy(b->p + b->n, d, size * n);
	b->n += size * n;
	return size * n;
}

static CURL *new_handle(void)
{
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_SSLCERT, client_cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, client_key);
	curl_easy_setopt(c, CURLOPT_CAINFO, root);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L); /* loopback: the name is the service's */
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	if (fresh) {
		curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	}
	return c;
}

static X509 *cert_x;
static EVP_PKEY *key_x;
static STACK_OF(X509) * extra;
static X509_STORE *trust;

static OSSL_CMP_CTX *client_ctx(void)
{
	OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
	X509_STORE_up_ref(trust);
	if (!ctx || !OSSL_CMP_CTX_set1_cert(ctx, cert_x) || !OSSL_CMP_CTX_set1_pkey(ctx, key_x) ||
	    !OSSL_CMP_CTX_set1_extraCertsOut(ctx, extra) ||
	    !OSSL_CMP_CTX_set0_trustedStore(ctx, trust) ||
	    !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 1) ||
	    !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_LOG_VERBOSITY, OSSL_CMP_LOG_ERR))
		die("a CMP client context");
	return ctx;
}

static unsigned char **msgs;
static int *msg_len;
static char warm_url[1024];
static pthread_barrier_t ready;

/* A prebuilt p10cr (implicit confirmation) posted as it is: the load's own
 * CPU is curl's TLS, not the CMP client's signing and checking. The answer
 * must be a CP (body 3) PKIMessage; the store says the rest. */
static void *cmp_worker(void *arg)
{
	(void)arg;
	CURL *c = new_handle();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/pkixcmp");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (!fresh) { /* the connection made before the clock starts */
		buf w = {0};
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_URL, warm_url);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
		if (curl_easy_perform(c) != CURLE_OK)
			die("warming a connection");
		free(w.p);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
	}
	pthread_barrier_wait(&ready);
	for (int i; (i = take()) >= 0;) {
		buf b = {0};
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, msgs[i]);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)msg_len[i]);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		double t = now();
		CURLcode rc = curl_easy_perform(c);
		const unsigned char *p = b.p;
		OSSL_CMP_MSG *resp = rc == CURLE_OK ? d2i_OSSL_CMP_MSG(NULL, &p, (long)b.n) : NULL;
		record((now() - t) * 1000, resp && OSSL_CMP_MSG_get_bodytype(resp) == 3);
		OSSL_CMP_MSG_free(resp);
		free(b.p);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static char **paths;
static int npaths;

static void *json_worker(void *arg)
{
	int k = (int)(long)arg;
	CURL *c = new_handle();
	char u[2048];
	while (now() < until) {
		buf b = {0};
		snprintf(u, sizeof u, "%s%s", url, paths[k++ % npaths]);
		curl_easy_setopt(c, CURLOPT_URL, u);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		double t = now();
		long code = 0;
		CURLcode rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		record((now() - t) * 1000, rc == CURLE_OK && code == 200);
		free(b.p);
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* ---- the floor: the server side alone, in memory ------------------------------------ */

static X509 *ca_x;
static EVP_PKEY *ca_key;

static OSSL_CMP_MSG *capture(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req)
{
	int *i = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
	msg_len[*i] = i2d_OSSL_CMP_MSG(req, &msgs[*i]);
	return NULL; /* no server: the request is all we want */
}

static OSSL_CMP_PKISI *floor_cert(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int id,
				  const OSSL_CRMF_MSG *crm, const X509_REQ *p10, X509 **out,
				  STACK_OF(X509) * *chain_out, STACK_OF(X509) * *ca_pubs)
{
	(void)srv, (void)req, (void)id, (void)crm, (void)ca_pubs;
	X509 *x = X509_new();
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)rand());
	X509_set_issuer_name(x, X509_get_subject_name(ca_x));
	X509_set_subject_name(x, X509_REQ_get_subject_name(p10));
	X509_set_pubkey(x, X509_REQ_get0_pubkey((X509_REQ *)p10));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_sign(x, ca_key, EVP_sha256());
	*out = x;
	*chain_out = sk_X509_new_null();
	X509_up_ref(ca_x);
	sk_X509_push(*chain_out, ca_x);
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

static void *floor_worker(void *arg)
{
	(void)arg;
	for (int i; (i = take()) >= 0;) {
		double t = now();
		const unsigned char *p = msgs[i];
		OSSL_CMP_MSG *req = d2i_OSSL_CMP_MSG(NULL, &p, msg_len[i]);
		OSSL_CMP_SRV_CTX *srv = OSSL_CMP_SRV_CTX_new(NULL, NULL);
		OSSL_CMP_CTX *ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(srv);
		X509_STORE_up_ref(trust);
		OSSL_CMP_CTX_set0_trustedStore(ctx, trust);
		OSSL_CMP_CTX_set1_cert(ctx, ca_x);
		OSSL_CMP_CTX_set1_pkey(ctx, ca_key);
		OSSL_CMP_SRV_CTX_init(srv, NULL, floor_cert, NULL, NULL, NULL, NULL, NULL);
		OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(srv, 1);
		OSSL_CMP_MSG *resp = req ? OSSL_CMP_SRV_process_request(srv, req) : NULL;
		unsigned char *der = NULL;
		int ok = resp && i2d_OSSL_CMP_MSG(resp, &der) > 0;
		OPENSSL_free(der);
		OSSL_CMP_MSG_free(resp);
		OSSL_CMP_MSG_free(req);
		OSSL_CMP_SRV_CTX_free(srv);
		record((now() - t) * 1000, ok);
	}
	return NULL;
}

/* The p10cr messages of the manifest's CSRs, each its own transaction,
 * protected by the client's key, to recipient. */
static void build_messages(const X509_NAME *recipient)
{
	msgs = calloc((size_t)ncsrs, sizeof *msgs);
	msg_len = calloc((size_t)ncsrs, sizeof *msg_len);
	for (int i = 0; i < ncsrs; i++) {
		OSSL_CMP_CTX *ctx = client_ctx();
		OSSL_CMP_CTX_set_transfer_cb(ctx, capture);
		OSSL_CMP_CTX_set_transfer_cb_arg(ctx, &i);
		OSSL_CMP_CTX_set1_p10CSR(ctx, csrs[i]);
		OSSL_CMP_CTX_set1_recipient(ctx, recipient);
		(void)OSSL_CMP_exec_P10CR_ses(ctx);
		OSSL_CMP_CTX_free(ctx);
		ERR_clear_error();
		if (msg_len[i] <= 0)
			die("building the p10cr messages");
	}
}

/* ---- the figures --------------------------------------------------------------------- */

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void run(void *(*fn)(void *), int threads, int expect)
{
	lat = calloc((size_t)(expect > 0 ? expect : 10000000), sizeof *lat);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	struct rusage ru0;
	getrusage(RUSAGE_SELF, &ru0);
	pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
	for (long i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, fn, (void *)i);
	if (fn == cmp_worker)
		pthread_barrier_wait(&ready); /* the connections are made */
	getrusage(RUSAGE_SELF, &ru0);
	double start = now();
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double secs = now() - start;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	/* the run's alone, not the messages built before it */
	double cpu = (double)(ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		     (double)(ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		     (double)(ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru.ru_stime.tv_usec -
			      ru0.ru_stime.tv_usec) /
			     1e6;
	qsort(lat, (size_t)nlat, sizeof *lat, by_value);
	printf("requests %d failed %d seconds %.2f rate %.0f p50_ms %.1f p99_ms %.1f cpu_s %.2f\n",
	       nlat, failures, secs, nlat / secs, nlat ? lat[nlat / 2] : 0.0,
	       nlat ? lat[(int)(nlat * 0.99)] : 0.0, cpu);
}

static void setup_client(const char *cert, const char *key, const char *rootf, const char *chainf)
{
	cert_x = read_cert(cert);
	key_x = read_key(key);
	extra = sk_X509_new_null();
	if (chainf)
		sk_X509_push(extra, read_cert(chainf));
	trust = X509_STORE_new();
	X509_STORE_add_cert(trust, read_cert(rootf));
	if (chainf)
		X509_STORE_add_cert(trust, read_cert(chainf));
}

int main(int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc >= 9 && !strcmp(argv[1], "cmp")) {
		url = argv[2], client_cert = argv[3], client_key = argv[4], root = argv[5],
		chain = argv[6];
		fresh = argc > 9 && !strcmp(argv[9], "new");
		setup_client(client_cert, client_key, root, chain);
		read_manifest(argv[7]);
		X509 *ca = read_cert(chain);
		build_messages(X509_get_subject_name(ca));
		/* the EST CA certificates: a request that only opens the connection */
		snprintf(warm_url, sizeof warm_url, "%.*s/.well-known/est/cacerts",
			 (int)(strstr(url, "/.well-known") ? strstr(url, "/.well-known") - url
							   : (long)strlen(url)),
			 url);
		run(cmp_worker, atoi(argv[8]), ncsrs);
	} else if (argc == 9 && !strcmp(argv[1], "json")) {
		url = argv[2], client_cert = argv[3], client_key = argv[4], root = argv[5];
		FILE *f = fopen(argv[6], "r");
		char line[1024];
		while (f && fgets(line, sizeof line, f)) {
			line[strcspn(line, "\n")] = 0;
			paths = realloc(paths, (size_t)(npaths + 1) * sizeof *paths);
			paths[npaths++] = strdup(line);
		}
		if (!npaths)
			die("no paths");
		until = now() + atof(argv[8]);
		run(json_worker, atoi(argv[7]), 0);
	} else if (argc == 8 && !strcmp(argv[1], "floor")) {
		setup_client(argv[2], argv[3], argv[4], argv[5]);
		ca_key = EVP_EC_gen("P-256");
		ca_x = X509_new();
		X509_NAME *n = X509_NAME_new();
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"floor",
					   -1, -1, 0);
		X509_set_subject_name(ca_x, n);
		X509_set_issuer_name(ca_x, n);
		X509_NAME_free(n);
		X509_set_pubkey(ca_x, ca_key);
		X509_gmtime_adj(X509_getm_notBefore(ca_x), 0);
		X509_gmtime_adj(X509_getm_notAfter(ca_x), 86400);
		if (!ca_key || !X509_sign(ca_x, ca_key, EVP_sha256()))
			die("the floor's CA");
		read_manifest(argv[6]);
		build_messages(X509_get_subject_name(ca_x));
		next_item = 0;
		run(floor_worker, atoi(argv[7]), ncsrs);
	} else {
		fprintf(stderr, "usage: see bench/cmpload.c\n");
		return 2;
	}
	return failures ? 1 : 0;
}
