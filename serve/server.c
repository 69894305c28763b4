/* keyrite serve: the listener, the connection threads (an event loop and an
 * evhttp each, over OpenSSL bufferevents: one TLS and X.509 stack), mutual
 * TLS, the accounts of connections, routing, and a stop that finishes what
 * is in flight. */
#include "internal.h"
#include "../ca/authority.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <event2/thread.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct worker {
	kr_server *s;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	SSL_CTX *ssl;
	kr_hsm *hsm; /* the server key on a token: a session per thread */
	kr_hsm_key *key;
	EVP_PKEY *evp; /* the server key, which also protects CMP responses */
	pthread_t thread;
	int started;
} worker;

/* ---- logs ---------------------------------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread const char *current_account; /* the request being handled */
static __thread worker *current_worker;      /* this connection thread's */

void kr_serve_signer(X509 **cert, EVP_PKEY **key)
{
	*cert = current_worker ? SSL_CTX_get0_certificate(current_worker->ssl) : NULL;
	*key = current_worker ? current_worker->evp : NULL;
}

void kr_serve_log_(const char *event, ...)
{
	json_t *o = json_object();
	if (!o)
		return;
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	json_object_set_new(o, "time", json_string(now));
	json_object_set_new(o, "event", json_string(event));
	va_list ap;
	va_start(ap, event);
	for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		json_object_set_new(o, k, v ? json_string(v) : json_null());
	}
	va_end(ap);
	char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!line)
		return;
	pthread_mutex_lock(&log_mu);
	fprintf(stderr, "%s\n", line);
	pthread_mutex_unlock(&log_mu);
	free(line);
}

/* ---- replies ------------------------------------------------------------------- */

void kr_serve_reply(struct evhttp_request *req, int status, const char *type, const void *body,
		    size_t len)
{
	char code[8];
	snprintf(code, sizeof code, "%d", status);
	const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "POST";
	kr_serve_log("request", "method", method, "path", evhttp_request_get_uri(req), "status",
		     code, "account", current_account);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (type)
		evhttp_add_header(h, "Content-Type", type);
	/* the console's pages load only the service's own scripts and styles,
	 * speak only to it, and are never framed (clickjacking); no answer is
	 * sniffed into another type */
	evhttp_add_header(
		h, "Content-Security-Policy",
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
		"connect-src 'self'; base-uri 'none'; form-action 'none'; "
		"frame-ancestors 'none'");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	if (!evhttp_find_header(h, "Cache-Control"))
		evhttp_add_header(h, "Cache-Control", "no-store");
	struct evbuffer *b = evbuffer_new();
	if (b && len)
		evbuffer_add(b, body, len);
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	int fd = bev ? (int)bufferevent_getfd(bev) : -1;
	/* without it each round trip of a kept-alive client waits for the
	 * delayed ACK (about 40 ms a request, reference section 8) */
	int one = 1;
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	evhttp_send_reply(req, status, NULL, b);
	if (b)
		evbuffer_free(b);
}

const uint8_t *kr_serve_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	*len = evbuffer_get_length(in);
	return *len ? evbuffer_pullup(in, -1) : NULL;
}

void kr_serve_json(struct evhttp_request *req, int status, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text) { /* jansson could not allocate: a fixed answer */
		static const char oom[] = "{\"error\":\"out of memory\"}";
		kr_serve_reply(req, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	kr_serve_reply(req, status, "application/json", text, strlen(text));
	free(text);
}

void kr_serve_error(struct evhttp_request *req, int status, const char *why)
{
	kr_serve_json(req, status, json_pack("{s:s}", "error", why));
}

/* ---- who is asking ------------------------------------------------------------ */

static int conn_index = -1;

typedef struct conn_account {
	char name[64];
} conn_account;

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

typedef struct lookup {
	X509 *cert;
	char *account;
} lookup;

static KR_MUST_USE kr_err look_up(kr_registry *r, void *arg)
{
	lookup *l = arg;
	return kr_registry_client_account(r, l->cert, l->account);
}

KR_MUST_USE kr_err kr_serve_client_account(kr_server *s, X509 *cert, char account[64])
{
	lookup l = {cert, account};
	return kr_desk_call(s->desk, NULL, look_up, &l);
}

static SSL *ssl_of(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

X509 *kr_serve_peer(struct evhttp_request *req)
{
	SSL *ssl = ssl_of(req);
	return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

static void subject_of(X509 *x, char *out, size_t n)
{
	X509_NAME_oneline(X509_get_subject_name(x), out, (int)n);
}

const char *kr_serve_account(kr_server *s, struct evhttp_request *req)
{
	SSL *ssl = ssl_of(req);
	conn_account *known = ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
	if (known)
		return known->name;
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	char subject[256] = "", account[64] = "";
	kr_err e = peer ? kr_serve_client_account(s, peer, account)
			: kr_errf(KR_EAUTH, "no client certificate");
	if (peer)
		subject_of(peer, subject, sizeof subject);
	known = kr_failed(&e) ? NULL : calloc(1, sizeof *known);
	if (known) {
		memcpy(known->name, account, sizeof known->name);
		if (SSL_set_ex_data(ssl, conn_index, known) != 1) {
			free(known);
			known = NULL;
			e = kr_errf(KR_EINTERNAL, "cannot keep the connection's account");
		}
	}
	if (!known) {
		kr_serve_log("client-refused", "subject", subject, "reason", e.msg);
		kr_serve_error(req, e.code == KR_EAUTH ? 403 : 500,
			       e.code == KR_EAUTH ? "forbidden" : "internal error");
		return NULL;
	}
	kr_serve_log("client", "subject", subject, "account", known->name);
	return known->name;
}

/* ---- routing ------------------------------------------------------------------- */

static int header_count(struct evhttp_request *req)
{
	int n = 0;
	struct evkeyval *h;
	TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next)
	n++;
	return n;
}

static void redirect(struct evhttp_request *req, const char *to)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", to);
	kr_serve_reply(req, 302, NULL, NULL, 0);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	worker *w = arg;
	kr_server *s = w->s;
	current_account = NULL;
	if (header_count(req) > s->sc->max_headers) {
		kr_serve_error(req, 431, "too many header fields");
		return;
	}
	const char *account = kr_serve_account(s, req);
	if (!account)
		return;
	current_account = account;
	if (!kr_limits_take(s->rates, account)) {
		kr_serve_error(req, 429, "too many requests");
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	static const char api[] = "/api/v1/", cmp[] = "/.well-known/cmp",
			  est[] = "/.well-known/est/", console[] = "/console/";
	if (!path)
		kr_serve_error(req, 400, "no path");
	else if (s->console && !strcmp(path, "/"))
		redirect(req, console);
	else if (s->console && !strncmp(path, console, sizeof console - 1))
		kr_console_handle(s->console, req, path + sizeof console - 1);
	else if (!strncmp(path, api, sizeof api - 1))
		kr_api_handle(s, req, account, path + sizeof api - 1);
	else if (!strcmp(path, cmp))
		kr_cmp_handle(s, req, account, NULL);
	else if (!strncmp(path, cmp, sizeof cmp - 1) && !strncmp(path + sizeof cmp - 1, "/p/", 3))
		kr_cmp_handle(s, req, account, path + sizeof cmp - 1 + 3);
	else if (!strncmp(path, est, sizeof est - 1))
		kr_est_handle(s, req, account, path + sizeof est - 1);
	else
		kr_serve_error(req, 404, "no such resource");
	current_account = NULL;
}

/* ---- TLS ------------------------------------------------------------------------ */

/* A handshake the server refuses never reaches a handler: its reason is
 * logged here, and never told to the client beyond TLS's alert. */
static int on_verify(int ok, X509_STORE_CTX *x)
{
	if (!ok) {
		char subject[256] = "";
		X509 *c = X509_STORE_CTX_get_current_cert(x);
		if (c)
			subject_of(c, subject, sizeof subject);
		kr_serve_log("handshake-refused", "subject", subject, "reason",
			     X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
	}
	return ok;
}

static void on_info(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE)) {
		char why[256] = "";
		unsigned long err = ERR_peek_last_error();
		if (err)
			ERR_error_string_n(err, why, sizeof why);
		kr_serve_log("handshake-alert", "alert", SSL_alert_desc_string_long(ret), "reason",
			     why[0] ? why : NULL);
	}
}

static KR_MUST_USE kr_err server_key(worker *w, const kr_hsm_opts *hsm, X509 *cert)
{
	const kr_serve_conf *sc = w->s->sc;
	if (sc->key[0]) {
		FILE *f = fopen(sc->key, "r");
		KR_ENSURE(f, KR_EIO, "%s: %s", sc->key, strerror(errno));
		w->evp = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		KR_OSSL(w->evp, KR_EINPUT, "%s: the server key", sc->key);
	} else {
		KR_TRY(kr_authority_key_open(sc->key_uri, sc->pin_file, sc->pin_env, hsm, cert,
					     "the service's TLS key", &w->hsm, &w->key));
		KR_TRY(kr_hsm_key_evp(w->hsm, w->key, &w->evp));
	}
	KR_OSSL(SSL_CTX_use_PrivateKey(w->ssl, w->evp) == 1, KR_EINPUT, "the server key");
	KR_OSSL(SSL_CTX_check_private_key(w->ssl) == 1, KR_EINPUT,
		"%s: the key is not the certificate's", sc->certificate);
	return kr_ok();
}

static KR_MUST_USE kr_err tls_context(worker *w, const kr_hsm_opts *hsm)
{
	const kr_serve_conf *sc = w->s->sc;
	w->ssl = SSL_CTX_new(TLS_server_method());
	KR_OSSL(w->ssl, KR_EINTERNAL, "SSL_CTX_new");
	KR_OSSL(SSL_CTX_set_min_proto_version(w->ssl, sc->tls12 ? TLS1_2_VERSION : TLS1_3_VERSION),
		KR_EINTERNAL, "the TLS version");
	KR_OSSL(SSL_CTX_use_certificate_chain_file(w->ssl, sc->certificate) == 1, KR_EINPUT,
		"%s: the server certificate", sc->certificate);
	KR_TRY(server_key(w, hsm, SSL_CTX_get0_certificate(w->ssl)));
	/* clients: certificates the registry's CA issued, verified up to its root */
	X509_STORE *trust = SSL_CTX_get_cert_store(w->ssl);
	int ok = X509_STORE_add_cert(trust, w->s->ca) == 1;
	for (int i = 0; ok && i < sk_X509_num(w->s->chain); i++)
		ok = X509_STORE_add_cert(trust, sk_X509_value(w->s->chain, i)) == 1;
	KR_OSSL(ok, KR_EINTERNAL, "the client trust store");
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	X509_NAME *ca = names ? X509_NAME_dup(X509_get_subject_name(w->s->ca)) : NULL;
	if (!ca || !sk_X509_NAME_push(names, ca)) {
		X509_NAME_free(ca);
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		return kr_err_ossl(KR_EINTERNAL, "the client CA list");
	}
	SSL_CTX_set_client_CA_list(w->ssl, names);
	SSL_CTX_set_verify(w->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, on_verify);
	/* a resumed session keeps its client certificate, whose account is
	 * looked up again on the new connection */
	static const unsigned char sid[] = "keyrite serve";
	KR_OSSL(SSL_CTX_set_session_id_context(w->ssl, sid, sizeof sid - 1) == 1, KR_EINTERNAL,
		"the session id context");
	SSL_CTX_set_info_callback(w->ssl, on_info);
	return kr_ok();
}

static struct bufferevent *on_connection(struct event_base *base, void *arg)
{
	worker *w = arg;
	SSL *ssl = SSL_new(w->ssl);
	return ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE)
		   : NULL;
}

/* ---- the threads ---------------------------------------------------------------- */

static KR_MUST_USE kr_err worker_open(worker *w, kr_server *s, int fd, const kr_hsm_opts *hsm)
{
	w->s = s;
	KR_TRY(tls_context(w, hsm));
	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	KR_ENSURE(w->http, KR_EINTERNAL, "cannot make an event loop");
	const kr_serve_conf *sc = s->sc;
	evhttp_set_bevcb(w->http, on_connection, w);
	evhttp_set_gencb(w->http, on_request, w);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)sc->max_body);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)sc->max_headers * 256);
	/* a slow client is dropped, not waited for */
	evhttp_set_timeout(w->http, (int)sc->timeout);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	int mine = dup(fd); /* each listener closes its own */
	KR_ENSURE(mine >= 0, KR_EIO, "dup: %s", strerror(errno));
	w->bound = evhttp_accept_socket_with_handle(w->http, mine);
	if (!w->bound)
		close(mine);
	KR_ENSURE(w->bound, KR_EIO, "cannot accept on the service's socket");
	return kr_ok();
}

static void worker_close(worker *w)
{
	if (w->http)
		evhttp_free(w->http);
	if (w->base)
		event_base_free(w->base);
	SSL_CTX_free(w->ssl);
	EVP_PKEY_free(w->evp);
	kr_hsm_key_free(w->key);
	kr_hsm_close(w->hsm);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	current_worker = w;
	event_base_dispatch(w->base);
	return NULL;
}

/* Stops accepting; the connections it has go on. */
static void on_stop_accepting(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	worker *w = arg;
	evhttp_del_accept_socket(w->http, w->bound);
	w->bound = NULL;
}

/* Ends the loop once what it has written is sent. */
static void on_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	worker *w = arg;
	struct timeval drain = {0, 300000};
	event_base_loopexit(w->base, &drain);
}

static KR_MUST_USE kr_err listen_on(const kr_serve_conf *sc, int *out, int *port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, sc->address, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)sc->port);
		len = sizeof *in4;
	} else {
		KR_ENSURE(inet_pton(AF_INET6, sc->address, &in6->sin6_addr) == 1, KR_EINPUT,
			  "%s: not an address", sc->address);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)sc->port);
		len = sizeof *in6;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	KR_ENSURE(fd >= 0, KR_EIO, "socket: %s", strerror(errno));
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
		int err = errno;
		close(fd);
		return kr_errf(KR_EIO, "%s port %ld: %s", sc->address, sc->port, strerror(err));
	}
	len = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	*out = fd;
	return kr_ok();
}

static KR_MUST_USE kr_err start(kr_server *s, worker *ws, int n, int fd, const kr_hsm_opts *hsm)
{
	for (int i = 0; i < n; i++)
		KR_TRY(worker_open(&ws[i], s, fd, hsm));
	for (int i = 0; i < n; i++) {
		KR_ENSURE(pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) == 0,
			  KR_EINTERNAL, "cannot start a connection thread");
		ws[i].started = 1;
	}
	return kr_ok();
}

/* A stop that finishes what is in flight: no new connection; the CMP
 * transactions answered but not yet confirmed get their certConf (on the
 * connections they have), for timeout seconds at most; then the loops end.
 * A handler running when its loop is told finishes first. */
static void stop(kr_server *s, worker *ws, int n)
{
	struct timeval now = {0, 0};
	for (int i = 0; i < n; i++)
		if (ws[i].started)
			event_base_once(ws[i].base, -1, EV_TIMEOUT, on_stop_accepting, &ws[i],
					&now);
	for (long waited = 0; kr_cmp_pending(s->cmp) && waited < s->sc->timeout * 1000;
	     waited += 20)
		usleep(20000);
	for (int i = 0; i < n; i++)
		if (ws[i].started)
			event_base_once(ws[i].base, -1, EV_TIMEOUT, on_end, &ws[i], &now);
	for (int i = 0; i < n; i++)
		if (ws[i].started)
			pthread_join(ws[i].thread, NULL);
	for (int i = 0; i < n; i++)
		worker_close(&ws[i]);
}

/* The signals that stop the service are taken by this thread alone. */
static int wait_for_stop(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int sig = 0;
	sigwait(&set, &sig);
	return sig;
}

static KR_MUST_USE kr_err serve(kr_server *s, const kr_hsm_opts *hsm, FILE *ready)
{
	int fd = -1, port = 0;
	KR_TRY(listen_on(s->sc, &fd, &port));
	int n = (int)s->sc->threads;
	worker *ws = calloc((size_t)n, sizeof *ws);
	kr_err e = ws ? start(s, ws, n, fd, hsm) : kr_errf(KR_EINTERNAL, "out of memory");
	close(fd);
	if (!kr_failed(&e)) {
		char where[96];
		snprintf(where, sizeof where, "%s:%d", s->sc->address, port);
		kr_serve_log("listening", "address", where);
		if (ready) {
			fprintf(ready, "keyrite: serving on %s\n", where);
			fflush(ready);
		}
		int sig = wait_for_stop();
		kr_serve_log("stopping", "signal", sig == SIGTERM ? "TERM" : "INT");
	}
	if (ws)
		stop(s, ws, n);
	free(ws);
	return e;
}

static KR_MUST_USE kr_err server_open(kr_server *s, kr_config *cfg, kr_registry *r)
{
	const kr_registry_conf *conf = NULL;
	KR_TRY(kr_config_registry(cfg, &conf));
	KR_ENSURE(conf->has_serve, KR_EINPUT,
		  "[registry] has no serve section (keyrite-ca(5): serve = SECTION)");
	const kr_authority *ca = kr_registry_authority(r);
	*s = (kr_server){
		.cfg = cfg, .conf = conf, .sc = &conf->serve, .ca = ca->cert, .chain = ca->chain};
	/* OpenSSL 3.0 decodes a certificate's extensions (its key ids, for
	 * X509_check_issued and chain building) at its first use, and its
	 * readers check without the lock: done here, before the threads share
	 * these (TSan saw a race in ASN1_STRING_cmp under load) */
	KR_OSSL(X509_check_purpose(s->ca, -1, 0) == 1, KR_EINTERNAL, "the CA certificate");
	for (int i = 0; i < sk_X509_num(s->chain); i++)
		KR_OSSL(X509_check_purpose(sk_X509_value(s->chain, i), -1, 0) == 1, KR_EINTERNAL,
			"a chain certificate");
	KR_TRY(kr_limits_open(s->sc->rate, s->sc->burst, &s->rates));
	if (s->sc->console[0])
		KR_TRY(kr_console_open(s->sc->console, &s->console));
	return kr_cmp_open(s, &s->cmp);
}

static void server_close(kr_server *s)
{
	kr_console_close(s->console);
	kr_cmp_close(s->cmp);
	kr_limits_close(s->rates);
}

KR_MUST_USE kr_err kr_serve_run(kr_config *cfg, kr_store *store, const kr_hsm_opts *hsm,
				FILE *ready)
{
	/* every thread started from here leaves SIGTERM and SIGINT to sigwait */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);
	KR_ENSURE(evthread_use_pthreads() == 0, KR_EINTERNAL, "libevent without threads");
	if (conn_index < 0)
		conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
	kr_registry *r = NULL;
	kr_server s = {0};
	kr_err e = kr_registry_open(cfg, store, NULL, hsm, &r);
	/* a service killed between a commit and its checkpoint starts by
	 * signing what it left uncovered */
	if (!kr_failed(&e))
		e = kr_registry_checkpoint(r);
	if (!kr_failed(&e))
		e = server_open(&s, cfg, r);
	if (!kr_failed(&e))
		e = kr_desk_open(r, store, (int)s.sc->batch, &s.desk);
	if (!kr_failed(&e))
		e = serve(&s, hsm, ready);
	kr_desk_close(s.desk);
	server_close(&s);
	kr_registry_close(r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}
