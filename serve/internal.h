/* Inside serve/: the desk (the one thread that holds the registry and the
 * store), the connections' accounts, and what the handlers share. */
#ifndef KR_SERVE_INTERNAL_H
#define KR_SERVE_INTERNAL_H

#include "serve.h"
#include "../registry/registry.h"

#include <event2/http.h>
#include <jansson.h>
#include <openssl/cmp.h>
#include <openssl/ssl.h>
#include <pthread.h>

/* ---- desk.c: the registry's thread ---------------------------------------------- *
 * SQLite and the registry are one writer: every request's registry work is
 * a job handed to the desk, which takes all waiting jobs at once. Enrollments
 * of one account that wait together are issued in one activation (one
 * reservation and one recording transaction, one checkpoint: group commit),
 * and each is answered only after that commit. */

typedef struct kr_desk kr_desk;

KR_MUST_USE kr_err kr_desk_open(kr_registry *r, kr_store *store, int batch, kr_desk **out);
/* Finishes the jobs handed in, then stops the thread. */
void kr_desk_close(kr_desk *d);

/* fn runs on the desk as account (NULL: no account, before one is known). */
typedef KR_MUST_USE kr_err (*kr_desk_fn)(kr_registry *r, void *arg);
KR_MUST_USE kr_err kr_desk_call(kr_desk *d, const char *account, kr_desk_fn fn, void *arg);

/* One enrollment: device's CSR (DER) issued as account's activation. A
 * CMP message's transactionID and senderNonce (or NULL) are recorded in
 * the same cycle, before it: a replay is refused ("replayed"), and an
 * answer is sent only once its nonce is durable. */
typedef struct kr_seen {
	const uint8_t *tid, *nonce;
	size_t tid_len, nonce_len;
} kr_seen;

typedef struct kr_enrolled {
	int replayed;    /* its message was seen before: nothing done */
	char result[32]; /* "activated", "unchanged" (already active), "refused" */
	char reason[KR_ERR_MSG];
	kr_code code;
	int64_t profile_id;
	uint8_t *cert; /* malloc'd DER: the new certificate, or the current one */
	size_t cert_len;
} kr_enrolled;
/* What is asked: device's CSR (DER) issued as account's activation, or
 * as its rekey (the certificate it replaces revoked in the same
 * transaction, or with confirm_later at kr_registry_supersede). */
typedef struct kr_enroll {
	const char *account, *device;
	const uint8_t *csr; /* a PKCS#10, or with proven a CRMF template the CMP
			     * library checked */
	size_t csr_len;
	int proven;
	kr_reg_cmd cmd; /* KR_CMD_ACTIVATE or KR_CMD_REKEY */
	int confirm_later;
} kr_enroll;
KR_MUST_USE kr_err kr_desk_enroll(kr_desk *d, const kr_enroll *req, const kr_seen *seen,
				  kr_enrolled *out);

/* Records a CMP message's transactionID and senderNonce (with the others
 * waiting, in one transaction); *fresh 0 for a replay. */
KR_MUST_USE kr_err kr_desk_seen(kr_desk *d, const kr_seen *seen, int *fresh);

/* ---- the server ---------------------------------------------------------------- */

typedef struct kr_server {
	kr_config *cfg;
	const kr_registry_conf *conf;
	const kr_serve_conf *sc;
	kr_desk *desk;
	X509 *ca;                   /* the registry's CA: clients' and devices' issuer */
	STACK_OF(X509) * chain;     /* above it, up to the root */
	struct kr_cmp *cmp;         /* cmp.c's transactions */
	struct kr_limits *rates;    /* limits.c */
	struct kr_console *console; /* console.c; NULL without one */
} kr_server;

/* The account of the connection a request came on: its client
 * certificate's, looked up once per connection (a revoked or unknown one is
 * refused here, the reason logged). NULL: refused, answered already. */
const char *kr_serve_account(kr_server *s, struct evhttp_request *req);
/* The account a client certificate is bound to (on the desk): KR_EAUTH
 * with the reason when none is. */
KR_MUST_USE kr_err kr_serve_client_account(kr_server *s, X509 *cert, char account[64]);
/* The connection's client certificate (the TLS library's). */
X509 *kr_serve_peer(struct evhttp_request *req);

/* This connection thread's server certificate and key (the key may be on a
 * token, with a session per thread): what protects CMP responses. */
void kr_serve_signer(X509 **cert, EVP_PKEY **key);

/* Answers and logs: status, content type, body. */
void kr_serve_reply(struct evhttp_request *req, int status, const char *type, const void *body,
		    size_t len);
/* A JSON answer (o is taken), and {"error": why}. */
void kr_serve_json(struct evhttp_request *req, int status, json_t *o);
void kr_serve_error(struct evhttp_request *req, int status, const char *why);
/* A request's body, at most max octets (NULL, *len 0 when empty). */
const uint8_t *kr_serve_body(struct evhttp_request *req, size_t *len);
/* One structured log line (JSON, stderr): event, then key/value string
 * pairs (a NULL value logs null). Never a PIN, a code or a key. */
#define kr_serve_log(event, ...) kr_serve_log_((event), __VA_ARGS__, (const char *)NULL)
void kr_serve_log_(const char *event, ...) __attribute__((sentinel));

/* ---- what the handlers parse, apart from the network (and the fuzz target's) ---- */

/* api.c: a command's JSON body read into the registry's arguments. */
typedef struct kr_api_call kr_api_call;
KR_MUST_USE kr_err kr_api_read_call(const uint8_t *body, size_t len, int cmd, kr_api_call **out);
void kr_api_call_free(kr_api_call *c);

/* cmp.c: what keyrite reads of a DER PKIMessage before the library
 * processes it (OpenSSL 3.0 has no getters for them). */
typedef struct kr_cmp_peek {
	int body; /* the PKIBody choice */
	uint8_t tid[64], nonce[64];
	size_t tid_len, nonce_len;
	const uint8_t *protector; /* extraCerts[0]'s DER, within the message; or NULL */
	size_t protector_len;
	int implicit_confirm; /* the header asks for it */
	int pbm;              /* protected by PasswordBasedMac (RFC 4210 5.1.3.1) */
	char kid[80];         /* the header's senderKID, as text when it is one */
} kr_cmp_peek;
KR_MUST_USE kr_err kr_cmp_read(const uint8_t *der, size_t len, OSSL_CMP_MSG **msg,
			       kr_cmp_peek *peek);

/* est.c: an EST body (base64 PKCS#10, RFC 8951) to its DER and device. */
KR_MUST_USE kr_err kr_est_read_csr(const uint8_t *body, size_t n, uint8_t **der, size_t *len,
				   char *device, size_t devsz);

/* views.c: what the console reads besides the commands: GET account,
 * stats, devices/ID/history, devices/ID/certificates, devices/ID/records
 * (each checked at [serve] dns, asked on the connection's thread). */
void kr_view(kr_server *s, struct evhttp_request *req, const char *account, const char *what);
void kr_view_device(kr_server *s, struct evhttp_request *req, const char *account,
		    const char *path);

/* The handlers. */
void kr_api_handle(kr_server *s, struct evhttp_request *req, const char *account, const char *path);
void kr_cmp_handle(kr_server *s, struct evhttp_request *req, const char *account,
		   const char *profile);
void kr_est_handle(kr_server *s, struct evhttp_request *req, const char *account, const char *op);

/* cmp.c's transactions. */
KR_MUST_USE kr_err kr_cmp_open(kr_server *s, struct kr_cmp **out);
void kr_cmp_close(struct kr_cmp *c);
/* CMP transactions open (answered, their certConf awaited) or in hand. */
int kr_cmp_pending(struct kr_cmp *c);

/* console.c: the web console's files, read at the start, served from
 * memory (GET /console/NAME; "" is index.html). */
typedef struct kr_console kr_console;
KR_MUST_USE kr_err kr_console_open(const char *dir, kr_console **out);
void kr_console_close(kr_console *c);
void kr_console_handle(const kr_console *c, struct evhttp_request *req, const char *name);

/* limits.c: a token bucket per account (rate a second, burst); 0: over. */
KR_MUST_USE kr_err kr_limits_open(long rate, long burst, struct kr_limits **out);
void kr_limits_close(struct kr_limits *l);
int kr_limits_take(struct kr_limits *l, const char *account);

#endif
