/* EST (RFC 7030, with RFC 8951's base64 bodies): cacerts, simpleenroll and
 * simplereenroll for the clients that speak it, authenticated by the same client
 * certificates as the rest of the service. An MNO account enrolls its
 * device's PKCS#10 as the registry's activation, as by CMP. */
#include "internal.h"

#include "../util/base64.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <stdlib.h>
#include <string.h>

/* A certs-only PKCS#7 (RFC 7030 section 4.1.3, 4.2.3), base64. */
static char *certs_only(const kr_server *s, X509 *leaf, size_t *len)
{
	PKCS7 *p7 = PKCS7_new();
	int ok = p7 && PKCS7_set_type(p7, NID_pkcs7_signed) == 1 &&
		 PKCS7_content_new(p7, NID_pkcs7_data) == 1;
	if (ok && leaf)
		ok = PKCS7_add_certificate(p7, leaf) == 1;
	for (int i = -1; ok && !leaf && i < sk_X509_num(s->chain); i++)
		ok = PKCS7_add_certificate(p7, i < 0 ? s->ca : sk_X509_value(s->chain, i)) == 1;
	unsigned char *der = NULL;
	int n = ok ? i2d_PKCS7(p7, &der) : 0;
	PKCS7_free(p7);
	char *b64 = NULL;
	kr_err e = n > 0 ? kr_base64_encode(der, (size_t)n, &b64, len)
			 : kr_errf(KR_EINTERNAL, "encoding the PKCS#7");
	OPENSSL_free(der);
	return kr_failed(&e) ? NULL : b64;
}

static void reply_text(struct evhttp_request *req, int status, const char *text)
{
	kr_serve_reply(req, status, "text/plain", text, strlen(text));
}

static void reply_certs(kr_server *s, struct evhttp_request *req, X509 *leaf)
{
	size_t len = 0;
	char *b64 = certs_only(s, leaf, &len);
	if (!b64) {
		reply_text(req, 500, "cannot encode the certificates\n");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Transfer-Encoding",
			  "base64");
	kr_serve_reply(req, 200,
		       leaf ? "application/pkcs7-mime; smime-type=certs-only"
			    : "application/pkcs7-mime",
		       b64, len);
	free(b64);
}

static int status_of(kr_code code)
{
	return code == KR_EDENIED || code == KR_EAUTH ? 403 : code == KR_EINTERNAL ? 500 : 400;
}

KR_MUST_USE kr_err kr_est_read_csr(const uint8_t *body, size_t n, uint8_t **der, size_t *len,
				   char *device, size_t devsz)
{
	kr_err e = kr_base64_decode((const char *)body, n, der, len);
	const unsigned char *p = *der;
	X509_REQ *csr = kr_failed(&e) ? NULL : d2i_X509_REQ(NULL, &p, (long)*len);
	if (csr && p == *der + *len)
		e = kr_registry_device_of(X509_REQ_get_subject_name(csr), device, devsz);
	else
		e = kr_errf(KR_EINPUT, "the body is not a base64 PKCS#10 request");
	X509_REQ_free(csr);
	ERR_clear_error();
	if (kr_failed(&e)) {
		free(*der);
		*der = NULL;
	}
	return e;
}

/* simpleenroll: the device's activation; simplereenroll (RFC 7030 section
 * 4.2.2): its rekey, the certificate it replaces revoked at once (EST has
 * no confirmation). */
static void enroll(kr_server *s, struct evhttp_request *req, const char *account, kr_reg_cmd cmd)
{
	size_t n = 0, len = 0;
	const uint8_t *body = kr_serve_body(req, &n);
	uint8_t *der = NULL;
	char device[80] = "";
	kr_err e = kr_est_read_csr(body, n, &der, &len, device, sizeof device);
	kr_enrolled out = {0};
	if (!kr_failed(&e))
		e = kr_desk_enroll(s->desk,
				   &(kr_enroll){.account = account,
						.device = device,
						.csr = der,
						.csr_len = len,
						.cmd = cmd},
				   NULL, &out);
	free(der);
	if (!kr_failed(&e) && !out.cert)
		e = kr_errf(out.code ? out.code : KR_EINPUT, "%s",
			    out.reason[0] ? out.reason : out.result);
	const unsigned char *c = out.cert;
	X509 *cert = kr_failed(&e) ? NULL : d2i_X509(NULL, &c, (long)out.cert_len);
	free(out.cert);
	if (kr_failed(&e) || !cert) {
		kr_serve_log("est-refused", "account", account, "device", device, "reason", e.msg);
		char text[KR_ERR_MSG + 2];
		snprintf(text, sizeof text, "%s\n", kr_failed(&e) ? e.msg : "no certificate");
		reply_text(req, kr_failed(&e) ? status_of(e.code) : 500, text);
		return;
	}
	kr_serve_log("est-enrolled", "device", device, "result", out.result);
	reply_certs(s, req, cert);
	X509_free(cert);
}

void kr_est_handle(kr_server *s, struct evhttp_request *req, const char *account, const char *op)
{
	int get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
	if (!strcmp(op, "cacerts") && get)
		reply_certs(s, req, NULL);
	else if (!strcmp(op, "simpleenroll") && !get)
		enroll(s, req, account, KR_CMD_ACTIVATE);
	else if (!strcmp(op, "simplereenroll") && !get)
		enroll(s, req, account, KR_CMD_REKEY);
	else
		reply_text(req, 404,
			   "no such EST operation (cacerts, simpleenroll, simplereenroll)\n");
}
