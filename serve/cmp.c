/* CMP enrollment (RFC 9483, the lightweight CMP profile, over RFC 6712's
 * HTTP transfer) on OpenSSL's CMP server (OSSL_CMP_SRV_CTX). The library
 * checks a message's protection and proof of possession; keyrite decides
 * who may ask for what (the registry, for the account the TLS client
 * certificate and the message's protection both name) and refuses a
 * message whose transactionID and senderNonce it has seen: the library
 * would process a replay, and issue again.
 *
 * One server context holds one transaction (reference section 8): a table
 * keeps one per transactionID, from its first message to its certConf (or
 * a minute without one). */
#include "internal.h"
#include "../util/text.h"

#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* PKIBody choices (RFC 4210 section 5.1.2; OpenSSL 3.0 has no public names). */
enum { B_IR = 0, B_CR = 2, B_P10CR = 4, B_KUR = 7, B_RR = 11, B_GENM = 21, B_CERTCONF = 24 };

#define TXN_SECONDS 60
#define MAX_TXNS 4096

typedef struct cmp_req cmp_req;

typedef struct txn {
	uint8_t id[64];
	int id_len;
	OSSL_CMP_SRV_CTX *srv;
	time_t at;
	int busy;
	cmp_req *req; /* the message being processed */
	/* a kur answered, its certConf awaited: the device and its new
	 * certificate's serial (the old one is revoked at the confirmation) */
	char rekeyed[80];
	uint8_t serial[20];
	size_t serial_len;
	char pbm_device[80]; /* protected by this device's enrollment secret */
	struct txn *next;
} txn;

struct kr_cmp {
	kr_server *s;
	pthread_mutex_t mu;
	txn *head;
	int n;
};

/* What a message's callbacks need to know. */
struct cmp_req {
	kr_server *s;
	const char *account; /* the TLS client's */
	kr_seen seen;        /* an enrollment's: recorded with it */
	const char *refusal; /* set: every request of the message is refused with it */
	int fail_bit;
	int implicit_confirm;
	char kur_device[80];    /* a kur: the device whose certificate protects it */
	X509_NAME *kur_subject; /* and that certificate's subject */
	char pbm_device[80];    /* PBM: the device whose secret protects it */
};

/* ---- the message's DER (3.0 has no getters for these) ----------------------- */

/* The next TLV in [*p, end): its tag, class, content; 0 at the end or on
 * damage. */
static int next_tlv(const uint8_t **p, const uint8_t *end, int *tag, int *cls,
		    const uint8_t **content, long *len, const uint8_t **whole)
{
	if (*p >= end)
		return 0;
	const unsigned char *q = *p;
	int ret = ASN1_get_object(&q, len, tag, cls, end - *p);
	if (ret & 0x80 || *len > end - q)
		return 0;
	*whole = *p;
	*content = q;
	*p = q + *len;
	return 1;
}

/* The content of the header's EXPLICIT [tag] field (RFC 4210 5.1.1: after
 * pvno, sender and recipient come the tagged ones); 0 if it has none. */
static int header_field(const uint8_t *der, long len, int want, const uint8_t **field, long *flen)
{
	const uint8_t *p = der, *end = der + len, *c, *w;
	int tag, cls;
	long l;
	if (!next_tlv(&p, end, &tag, &cls, &c, &l, &w) ||
	    !next_tlv(&c, c + l, &tag, &cls, &p, &l, &w))
		return 0; /* PKIMessage, header */
	const uint8_t *h = p, *hend = p + l;
	for (int i = 0; next_tlv(&h, hend, &tag, &cls, &c, &l, &w); i++)
		if (i >= 3 && cls == V_ASN1_CONTEXT_SPECIFIC && tag == want) {
			*field = c;
			*flen = l;
			return 1;
		}
	return 0;
}

/* The inner TLV of an EXPLICIT field, if it has the universal tag want. */
static int inner(const uint8_t *field, long flen, int want, const uint8_t **content, long *len)
{
	const uint8_t *p = field, *w;
	int tag, cls;
	return next_tlv(&p, field + flen, &tag, &cls, content, len, &w) &&
	       cls == V_ASN1_UNIVERSAL && tag == want;
}

/* The header's senderNonce ([5] OCTET STRING). */
static int sender_nonce(const uint8_t *der, long len, const uint8_t **nonce, long *nlen)
{
	const uint8_t *f;
	long fl;
	return header_field(der, len, 5, &f, &fl) && inner(f, fl, V_ASN1_OCTET_STRING, nonce, nlen);
}

/* Whether the header's generalInfo ([8] SEQUENCE OF InfoTypeAndValue) asks
 * for implicit confirmation (id-it-implicitConfirm, RFC 4210 5.1.1.1). */
static int asks_implicit_confirm(const uint8_t *der, long len)
{
	const uint8_t *f, *seq, *c, *w;
	long fl, sl, l;
	int tag, cls;
	if (!header_field(der, len, 8, &f, &fl) || !inner(f, fl, V_ASN1_SEQUENCE, &seq, &sl))
		return 0;
	for (const uint8_t *it = seq; next_tlv(&it, seq + sl, &tag, &cls, &c, &l, &w);) {
		const unsigned char *o = c; /* InfoTypeAndValue: its OID first */
		ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &o, l);
		int yes = obj && OBJ_obj2nid(obj) == NID_id_it_implicitConfirm;
		ASN1_OBJECT_free(obj);
		if (yes)
			return 1;
	}
	return 0;
}

/* Whether the header's protectionAlg ([1] AlgorithmIdentifier) is
 * PasswordBasedMac. */
static int is_pbm(const uint8_t *der, long len)
{
	const uint8_t *f, *seq;
	long fl, sl;
	if (!header_field(der, len, 1, &f, &fl) || !inner(f, fl, V_ASN1_SEQUENCE, &seq, &sl))
		return 0;
	const unsigned char *o = seq;
	ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &o, sl);
	int yes = obj && OBJ_obj2nid(obj) == NID_id_PasswordBasedMAC;
	ASN1_OBJECT_free(obj);
	return yes;
}

/* The header's senderKID ([2] OCTET STRING), when it is printable text of
 * at most 79 octets (a PBM's reference: the device id). */
static void sender_kid(const uint8_t *der, long len, char out[80])
{
	const uint8_t *f, *kid;
	long fl, kl;
	out[0] = '\0';
	if (!header_field(der, len, 2, &f, &fl) || !inner(f, fl, V_ASN1_OCTET_STRING, &kid, &kl) ||
	    kl < 1 || kl > 79)
		return;
	for (long i = 0; i < kl; i++)
		if (kid[i] < 0x21 || kid[i] > 0x7e)
			return;
	memcpy(out, kid, (size_t)kl);
	out[kl] = '\0';
}

/* extraCerts[0] ([1] after the body and the protection, RFC 4210 5.1): the
 * protection certificate, RFC 9483 section 3.3; its DER within der. */
static int first_extra_cert(const uint8_t *der, long len, const uint8_t **cert, size_t *cert_len)
{
	const uint8_t *p = der, *end = der + len, *c, *w;
	int tag, cls;
	long l;
	if (!next_tlv(&p, end, &tag, &cls, &c, &l, &w))
		return 0;
	p = c;
	end = c + l;
	while (next_tlv(&p, end, &tag, &cls, &c, &l, &w)) {
		if (cls != V_ASN1_CONTEXT_SPECIFIC || tag != 1 || p != end)
			continue; /* header, body, protection */
		const uint8_t *q = c, *qc, *qw;
		if (!next_tlv(&q, c + l, &tag, &cls, &qc, &l, &qw) || tag != V_ASN1_SEQUENCE)
			return 0;
		const uint8_t *x = qc, *xc, *xw;
		if (!next_tlv(&x, qc + l, &tag, &cls, &xc, &l, &xw) || tag != V_ASN1_SEQUENCE)
			return 0;
		*cert = xw;
		*cert_len = (size_t)(x - xw);
		return 1;
	}
	return 0;
}

/* Whether the message's protection certificate is the connection's own:
 * its DER the same (no decoding: a certificate costs 0.2 ms to decode). */
static int is_peer(const kr_cmp_peek *m, X509 *peer)
{
	unsigned char *der = NULL;
	int n = peer && m->protector ? i2d_X509(peer, &der) : 0;
	int same = n > 0 && (size_t)n == m->protector_len && !memcmp(der, m->protector, (size_t)n);
	OPENSSL_free(der);
	return same;
}

/* ---- the callbacks ------------------------------------------------------------ */

static OSSL_CMP_PKISI *refused(int bit, const char *text)
{
	kr_serve_log("cmp-refused", "reason", text);
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection, 1 << bit, text);
}

static OSSL_CMP_PKISI *replayed(const cmp_req *q)
{
	kr_serve_log("cmp-replay", "account", q->account);
	return OSSL_CMP_STATUSINFO_new(
		OSSL_CMP_PKISTATUS_rejection, 1 << OSSL_CMP_PKIFAILUREINFO_badSenderNonce,
		"a replayed message: its transactionID and senderNonce were seen before");
}

static int fail_bit_of(kr_code code)
{
	switch (code) {
	case KR_EDENIED:
	case KR_EAUTH:
		return OSSL_CMP_PKIFAILUREINFO_notAuthorized;
	case KR_EPOLICY:
	case KR_EINPUT:
		return OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
	default:
		return OSSL_CMP_PKIFAILUREINFO_systemFailure;
	}
}

static cmp_req *req_of(OSSL_CMP_SRV_CTX *srv)
{
	txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv);
	return t->req;
}

static STACK_OF(X509) * ca_chain(const kr_server *s)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	if (chain && X509_add_cert(chain, s->ca, X509_ADD_FLAG_UP_REF) == 1 &&
	    X509_add_certs(chain, s->chain, X509_ADD_FLAG_UP_REF) == 1)
		return chain;
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

/* What the request asks to have certified, DER, and the device it names
 * ("" when it has no subject: a kur's template may leave it to the
 * certificate it updates, RFC 4211 section 5): a p10cr's PKCS#10, or an
 * ir's, cr's or kur's CRMF template (its proof of possession checked by
 * the library before this is called). */
static KR_MUST_USE kr_err request_of(const OSSL_CRMF_MSG *crm, const X509_REQ *p10cr,
				     unsigned char **der, int *len, char *device, size_t devsz)
{
	const OSSL_CRMF_CERTTEMPLATE *t = crm ? OSSL_CRMF_MSG_get0_tmpl(crm) : NULL;
	const X509_NAME *subject = p10cr ? X509_REQ_get_subject_name(p10cr)
				   : t   ? OSSL_CRMF_CERTTEMPLATE_get0_subject(t)
					 : NULL;
	device[0] = '\0';
	*der = NULL;
	*len = p10cr ? i2d_X509_REQ(p10cr, der) : t ? i2d_OSSL_CRMF_CERTTEMPLATE(t, der) : -1;
	KR_OSSL(*len > 0, KR_EINTERNAL, "encoding the request");
	if (!subject || X509_NAME_entry_count(subject) == 0)
		return kr_ok();
	return kr_registry_device_of(subject, device, devsz);
}

/* A kur's device is the one whose certificate protects it; its template
 * leaves the subject out or repeats that certificate's (RFC 4210 section
 * 5.3.5). What the registry is asked for is that key alone, for that
 * device: the profile makes the rest, as at activation (the template's
 * subject and names are the old certificate's, which the device profile
 * would refuse as a request's). */
static KR_MUST_USE kr_err kur_request(const cmp_req *q, const OSSL_CRMF_MSG *crm,
				      unsigned char **der, int *len, char *device, size_t devsz)
{
	const OSSL_CRMF_CERTTEMPLATE *t = crm ? OSSL_CRMF_MSG_get0_tmpl(crm) : NULL;
	const X509_NAME *subject = t ? OSSL_CRMF_CERTTEMPLATE_get0_subject(t) : NULL;
	KR_ENSURE(t, KR_EINPUT, "a kur without a certificate template");
	KR_ENSURE(!subject || X509_NAME_entry_count(subject) == 0 ||
			  X509_NAME_cmp(subject, q->kur_subject) == 0,
		  KR_EINPUT, "the kur's subject is not that of device %s's certificate",
		  q->kur_device);
	OSSL_CRMF_MSG *bare = OSSL_CRMF_MSG_dup(crm);
	X509_NAME *none = X509_NAME_new();
	OSSL_CRMF_CERTTEMPLATE *b = bare ? OSSL_CRMF_MSG_get0_tmpl(bare) : NULL;
	int ok = b && none && OSSL_CRMF_MSG_set0_extensions(bare, NULL) == 1 &&
		 OSSL_CRMF_CERTTEMPLATE_fill(b, NULL, none, NULL, NULL) == 1;
	OPENSSL_free(*der);
	*der = NULL;
	*len = ok ? i2d_OSSL_CRMF_CERTTEMPLATE(b, der) : -1;
	X509_NAME_free(none);
	OSSL_CRMF_MSG_free(bare);
	KR_OSSL(*len > 0, KR_EINTERNAL, "the kur's key as a request");
	snprintf(device, devsz, "%s", q->kur_device);
	return kr_ok();
}

/* The new certificate's serial, kept for the kur's certConf. */
static void await_confirmation(OSSL_CMP_SRV_CTX *srv, const char *device, const X509 *cert)
{
	txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	if (sn->length <= 0 || sn->length > 20)
		return;
	snprintf(t->rekeyed, sizeof t->rekeyed, "%s", device);
	memcpy(t->serial, sn->data, (size_t)sn->length);
	t->serial_len = (size_t)sn->length;
}

/* p10cr (the device's own PKCS#10, its signature the proof of possession),
 * ir and cr (a CRMF template): relayed by the device's MNO, the registry's
 * activation. kur (RFC 9483 section 4.1.3): the device's rekey, protected
 * by its current certificate; the one it replaces is revoked as
 * superseded when the new one is confirmed (at once with implicit
 * confirmation). */
static OSSL_CMP_PKISI *on_cert_request(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *msg,
				       int cert_req_id, const OSSL_CRMF_MSG *crm,
				       const X509_REQ *p10cr, X509 **cert_out,
				       STACK_OF(X509) * *chain_out, STACK_OF(X509) * *ca_pubs)
{
	(void)cert_req_id, (void)ca_pubs;
	cmp_req *q = req_of(srv);
	if (q->refusal)
		return refused(q->fail_bit, q->refusal);
	int kur = OSSL_CMP_MSG_get_bodytype(msg) == B_KUR;
	char device[80] = "";
	unsigned char *der = NULL;
	int len = 0;
	kr_err e = request_of(crm, p10cr, &der, &len, device, sizeof device);
	if (!kr_failed(&e) && kur)
		e = kur_request(q, crm, &der, &len, device, sizeof device);
	else if (!kr_failed(&e) && !device[0])
		e = kr_errf(KR_EINPUT, "the request names no subject");
	else if (!kr_failed(&e) && q->pbm_device[0] && strcmp(device, q->pbm_device) != 0)
		e = kr_errf(KR_EINPUT, "the request names device %s, its PBM is device %s's secret",
			    device, q->pbm_device);
	if (kr_failed(&e)) {
		OPENSSL_free(der);
		return refused(OSSL_CMP_PKIFAILUREINFO_badCertTemplate, e.msg);
	}
	kr_enrolled out;
	kr_enroll req = {.account = q->account,
			 .device = device,
			 .csr = der,
			 .csr_len = (size_t)len,
			 .proven = crm != NULL,
			 .cmd = kur ? KR_CMD_REKEY : KR_CMD_ACTIVATE,
			 .confirm_later = kur && !q->implicit_confirm};
	e = kr_desk_enroll(q->s->desk, &req, &q->seen, &out);
	OPENSSL_free(der);
	OSSL_CMP_PKISI *si = NULL;
	if (kr_failed(&e))
		si = refused(fail_bit_of(e.code), e.msg);
	else if (out.replayed)
		si = replayed(q);
	else if (!out.cert)
		si = refused(fail_bit_of(out.code), out.reason[0] ? out.reason : out.result);
	if (si) {
		free(out.cert);
		return si;
	}
	const unsigned char *p = out.cert;
	*cert_out = d2i_X509(NULL, &p, (long)out.cert_len);
	free(out.cert);
	*chain_out = ca_chain(q->s);
	if (!*cert_out)
		return refused(OSSL_CMP_PKIFAILUREINFO_systemFailure,
			       "cannot decode the certificate");
	if (req.confirm_later)
		await_confirmation(srv, device, *cert_out);
	kr_serve_log("cmp-enrolled", "device", device, "result", out.result);
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

typedef struct revoking {
	uint8_t serial[20];
	size_t len;
	kr_reg_summary sum;
	char result[32], reason[KR_ERR_MSG];
	kr_code code;
} revoking;

static void on_revoked(const kr_reg_outcome *o, void *arg)
{
	revoking *v = arg;
	snprintf(v->result, sizeof v->result, "%s", o->result);
	snprintf(v->reason, sizeof v->reason, "%s", o->reason ? o->reason : "");
	v->code = o->code;
}

/* rr: the device's certificate revoked, as the registry deactivates it. */
static KR_MUST_USE kr_err revoke(kr_registry *r, void *arg)
{
	revoking *v = arg;
	char device[80];
	KR_TRY(kr_registry_device_of_cert(r, v->serial, v->len, device, sizeof device));
	kr_reg_row row = {.device = device};
	kr_reg_args a = {.cmd = KR_CMD_DEACTIVATE, .rows = &row, .nrows = 1};
	return kr_registry_run(r, &a, NULL, 0, on_revoked, v, &v->sum);
}

static OSSL_CMP_PKISI *on_rr(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *msg,
			     const X509_NAME *issuer, const ASN1_INTEGER *serial)
{
	(void)msg;
	cmp_req *q = req_of(srv);
	if (q->refusal)
		return refused(q->fail_bit, q->refusal);
	if (!issuer || !serial || X509_NAME_cmp(issuer, X509_get_subject_name(q->s->ca)) != 0 ||
	    serial->length <= 0 || serial->length > 20)
		return refused(OSSL_CMP_PKIFAILUREINFO_badCertId,
			       "rr: not a certificate of the registry's CA");
	revoking v = {.len = (size_t)serial->length};
	memcpy(v.serial, serial->data, v.len);
	kr_err e = kr_desk_call(q->s->desk, q->account, revoke, &v);
	if (kr_failed(&e))
		return refused(e.code == KR_EINPUT ? OSSL_CMP_PKIFAILUREINFO_badCertId
						   : fail_bit_of(e.code),
			       e.msg);
	if (!strcmp(v.result, "refused"))
		return refused(fail_bit_of(v.code), v.reason);
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

/* genm caCerts (RFC 9483 section 4.3.1): the registry's CA and its chain. */
static int on_genm(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *msg,
		   const STACK_OF(OSSL_CMP_ITAV) * in, STACK_OF(OSSL_CMP_ITAV) * *out)
{
	(void)msg;
	cmp_req *q = req_of(srv);
	if (q->refusal)
		return 0;
	*out = sk_OSSL_CMP_ITAV_new_null();
	if (!*out)
		return 0;
	for (int i = 0; i < sk_OSSL_CMP_ITAV_num(in); i++) {
		ASN1_OBJECT *type = OSSL_CMP_ITAV_get0_type(sk_OSSL_CMP_ITAV_value(in, i));
		if (OBJ_obj2nid(type) != NID_id_it_caCerts)
			continue;
		STACK_OF(X509) *chain = ca_chain(q->s);
		ASN1_SEQUENCE_ANY *seq = sk_ASN1_TYPE_new_null();
		int ok = chain && seq;
		for (int k = 0; ok && k < sk_X509_num(chain); k++) {
			unsigned char *der = NULL;
			int len = i2d_X509(sk_X509_value(chain, k), &der);
			ASN1_STRING *str = len > 0 ? ASN1_STRING_new() : NULL;
			ASN1_TYPE *t = str ? ASN1_TYPE_new() : NULL;
			ok = t && ASN1_STRING_set(str, der, len) == 1;
			if (ok) {
				ASN1_TYPE_set(t, V_ASN1_SEQUENCE, str);
				str = NULL;
				ok = sk_ASN1_TYPE_push(seq, t) > 0;
				t = ok ? NULL : t;
			}
			ASN1_TYPE_free(t);
			ASN1_STRING_free(str);
			OPENSSL_free(der);
		}
		unsigned char *der = NULL;
		int len = ok ? i2d_ASN1_SEQUENCE_ANY(seq, &der) : 0;
		sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
		sk_X509_pop_free(chain, X509_free);
		ASN1_STRING *value = len > 0 ? ASN1_STRING_new() : NULL;
		ASN1_TYPE *v = value ? ASN1_TYPE_new() : NULL;
		OSSL_CMP_ITAV *itav = NULL;
		if (v && ASN1_STRING_set(value, der, len) == 1) {
			ASN1_TYPE_set(v, V_ASN1_SEQUENCE, value);
			value = NULL;
			itav = OSSL_CMP_ITAV_create(OBJ_nid2obj(NID_id_it_caCerts), v);
			v = itav ? NULL : v;
		}
		OPENSSL_free(der);
		ASN1_STRING_free(value);
		ASN1_TYPE_free(v);
		if (!itav || !OSSL_CMP_ITAV_push0_stack_item(out, itav)) {
			OSSL_CMP_ITAV_free(itav);
			return 0;
		}
	}
	return 1;
}

static void on_error(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *msg, const OSSL_CMP_PKISI *si,
		     const ASN1_INTEGER *code, const OSSL_CMP_PKIFREETEXT *details)
{
	(void)srv, (void)msg, (void)code, (void)details;
	char buf[OSSL_CMP_PKISI_BUFLEN];
	kr_serve_log("cmp-client-error", "status",
		     si ? OSSL_CMP_snprint_PKIStatusInfo(si, buf, sizeof buf) : NULL);
}

/* Whether a certConf's status accepts the certificate: none given, or
 * accepted or grantedWithMods (RFC 4210 section 5.3.18). */
static int accepts(const OSSL_CMP_PKISI *si)
{
	unsigned char *der = NULL;
	int n = si ? i2d_OSSL_CMP_PKISI(si, &der) : 0;
	if (!si || n <= 0)
		return !si;
	const uint8_t *p = der, *c, *w;
	int tag, cls;
	long len = 0, status = -1;
	if (next_tlv(&p, der + n, &tag, &cls, &c, &len, &w) && tag == V_ASN1_SEQUENCE) {
		const unsigned char *q = c; /* PKIStatusInfo: its status first */
		ASN1_INTEGER *st = d2i_ASN1_INTEGER(NULL, &q, len);
		status = st ? ASN1_INTEGER_get(st) : -1;
		ASN1_INTEGER_free(st);
	}
	OPENSSL_free(der);
	return status == OSSL_CMP_PKISTATUS_accepted ||
	       status == OSSL_CMP_PKISTATUS_grantedWithMods;
}

typedef struct confirming {
	const txn *t;
	long revoked;
} confirming;

static KR_MUST_USE kr_err confirm(kr_registry *r, void *arg)
{
	confirming *c = arg;
	return kr_registry_supersede(r, c->t->rekeyed, c->t->serial, c->t->serial_len, &c->revoked);
}

/* A kur's new certificate confirmed: the one it replaces is revoked. One
 * rejected, or never confirmed: both stay valid, the new one current, until
 * the device's next rekey, deactivation, reset, transfer or deletion
 * revokes them (docs/api.md). */
static int on_cert_conf(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *msg, int cert_req_id,
			const ASN1_OCTET_STRING *hash, const OSSL_CMP_PKISI *si)
{
	(void)msg, (void)cert_req_id, (void)hash;
	cmp_req *q = req_of(srv);
	txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv);
	if (q->refusal)
		return 0;
	if (!t->rekeyed[0])
		return 1;
	if (!accepts(si)) {
		kr_serve_log("cmp-cert-rejected", "device", t->rekeyed, "account", q->account);
		return 1;
	}
	confirming c = {t, 0};
	kr_err e = kr_desk_call(q->s->desk, q->account, confirm, &c);
	if (kr_failed(&e))
		kr_serve_log("cmp-supersede-failed", "device", t->rekeyed, "reason", e.msg);
	else
		kr_serve_log("cmp-rekey-confirmed", "device", t->rekeyed);
	return 1;
}

static int on_poll(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *msg, int cert_req_id,
		   OSSL_CMP_MSG **cert_req, int64_t *check_after)
{
	(void)srv, (void)msg, (void)cert_req_id, (void)check_after;
	*cert_req = NULL; /* every answer is given at once: nothing to poll for */
	return 0;
}

/* ---- transactions ------------------------------------------------------------- */

static void txn_free(txn *t)
{
	if (!t)
		return;
	OSSL_CMP_SRV_CTX_free(t->srv);
	free(t);
}

/* A new context for a transaction: its responses carry the CA chain; the
 * protection key and the trust are set for each message (trust_for). */
static KR_MUST_USE kr_err txn_new(kr_server *s, const ASN1_OCTET_STRING *id, txn **out)
{
	txn *t = calloc(1, sizeof *t);
	KR_ENSURE(t, KR_EINTERNAL, "out of memory");
	memcpy(t->id, id->data, (size_t)id->length);
	t->id_len = id->length;
	t->srv = OSSL_CMP_SRV_CTX_new(NULL, NULL);
	OSSL_CMP_CTX *ctx = t->srv ? OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->srv) : NULL;
	STACK_OF(X509) *chain = ctx ? ca_chain(s) : NULL;
	int ok = chain && OSSL_CMP_CTX_set1_extraCertsOut(ctx, chain) == 1;
	sk_X509_pop_free(chain, X509_free);
	ok = ok && OSSL_CMP_SRV_CTX_init(t->srv, t, on_cert_request, on_rr, on_genm, on_error,
					 on_cert_conf, on_poll) == 1;
	ok = ok && OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(t->srv, 1) == 1;
	ok = ok && OSSL_CMP_CTX_set_log_verbosity(ctx, OSSL_CMP_LOG_ERR) == 1;
	if (!ok) {
		txn_free(t);
		return kr_err_ossl(KR_EINTERNAL, "a CMP server context");
	}
	*out = t;
	return kr_ok();
}

/* The transaction of id, taken (busy) by this thread: found, or new for a
 * first message. Expired ones go. */
static KR_MUST_USE kr_err txn_take(struct kr_cmp *c, const ASN1_OCTET_STRING *id, int first,
				   txn **out)
{
	KR_ENSURE(id && id->length > 0 && id->length <= 64, KR_EINPUT,
		  "a transactionID of 1 to 64 octets");
	time_t now = time(NULL);
	*out = NULL;
	pthread_mutex_lock(&c->mu);
	txn **pp = &c->head, *found = NULL;
	while (*pp) {
		txn *t = *pp;
		if (!t->busy && now - t->at > TXN_SECONDS) {
			*pp = t->next;
			c->n--;
			txn_free(t);
			continue;
		}
		if (t->id_len == id->length && !memcmp(t->id, id->data, (size_t)id->length))
			found = t;
		pp = &t->next;
	}
	kr_err e = kr_ok();
	if (found && found->busy)
		e = kr_errf(KR_EINPUT, "transaction in use by another request");
	else if (!found && !first)
		e = kr_errf(KR_EINPUT, "no such transaction (or it expired)");
	else if (!found && c->n >= MAX_TXNS)
		e = kr_errf(KR_EINTERNAL, "too many open CMP transactions");
	else if (!found)
		e = txn_new(c->s, id, &found);
	if (!kr_failed(&e)) {
		int listed = 0;
		for (txn *t = c->head; t && !listed; t = t->next)
			listed = t == found;
		if (!listed) {
			found->next = c->head;
			c->head = found;
			c->n++;
		}
		found->busy = 1;
		found->at = now;
		*out = found;
	}
	pthread_mutex_unlock(&c->mu);
	return e;
}

/* Done with the message; a transaction whose last answer ends it goes. */
static void txn_give(struct kr_cmp *c, txn *t, int ended)
{
	pthread_mutex_lock(&c->mu);
	t->busy = 0;
	t->req = NULL;
	if (ended) {
		for (txn **pp = &c->head; *pp; pp = &(*pp)->next)
			if (*pp == t) {
				*pp = t->next;
				c->n--;
				break;
			}
		txn_free(t);
	}
	pthread_mutex_unlock(&c->mu);
}

int kr_cmp_pending(struct kr_cmp *c)
{
	time_t now = time(NULL);
	int n = 0;
	pthread_mutex_lock(&c->mu);
	for (txn *t = c->head; t; t = t->next)
		n += t->busy || now - t->at <= TXN_SECONDS;
	pthread_mutex_unlock(&c->mu);
	return n;
}

KR_MUST_USE kr_err kr_cmp_open(kr_server *s, struct kr_cmp **out)
{
	struct kr_cmp *c = calloc(1, sizeof *c);
	KR_ENSURE(c, KR_EINTERNAL, "out of memory");
	c->s = s;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return kr_ok();
}

void kr_cmp_close(struct kr_cmp *c)
{
	if (!c)
		return;
	while (c->head) {
		txn *t = c->head;
		c->head = t->next;
		txn_free(t);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- one message ---------------------------------------------------------------- */

typedef struct protector {
	const uint8_t *der;
	size_t len;
	char device[80];
} protector;

static KR_MUST_USE kr_err device_protecting(kr_registry *r, void *arg)
{
	protector *p = arg;
	return kr_registry_device_of_valid(r, p->der, p->len, p->device, sizeof p->device);
}

/* A kur is protected by the certificate it updates (RFC 9483 section
 * 4.1.3): a valid one of the device (its current one; or, for a retry
 * whose answer was lost, the one that kur replaces until it is confirmed),
 * relayed by an account the registry lets rekey it (its MNO). The library
 * verifies the protection up to the root. */
static void judge_kur(cmp_req *q, const kr_cmp_peek *m)
{
	protector p = {.der = m->protector, .len = m->protector_len};
	kr_err e = kr_desk_call(q->s->desk, q->account, device_protecting, &p);
	const unsigned char *d = m->protector;
	X509 *cert = kr_failed(&e) ? NULL : d2i_X509(NULL, &d, (long)m->protector_len);
	q->kur_subject = cert ? X509_NAME_dup(X509_get_subject_name(cert)) : NULL;
	X509_free(cert);
	if (q->kur_subject) {
		kr_copy(q->kur_device, sizeof q->kur_device, p.device);
		return;
	}
	kr_serve_log("cmp-protection-refused", "account", q->account, "reason", e.msg);
	q->refusal = "a kur must be protected by a valid certificate of its device";
	q->fail_bit = OSSL_CMP_PKIFAILUREINFO_notAuthorized;
}

typedef struct secret_of {
	const char *device;
	char text[KR_CODE_TEXT + 1];
} secret_of;

static KR_MUST_USE kr_err device_secret(kr_registry *r, void *arg)
{
	secret_of *s = arg;
	return kr_registry_enrollment_secret(r, s->device, s->text);
}

/* An initial enrollment (ir, cr, p10cr) and its certConf may be protected
 * instead by the device's enrollment secret (PBM, RFC 9483 section 4.1.5),
 * the device named by senderKID, relayed by an account that may use that
 * secret (the device's MNO). The library checks the MAC with the secret
 * derived again here, and protects its answers with it. */
static void judge_pbm(cmp_req *q, const kr_cmp_peek *m, txn *t)
{
	int ok = m->body == B_IR || m->body == B_CR || m->body == B_P10CR ||
		 (m->body == B_CERTCONF && t->pbm_device[0]);
	secret_of s = {.device = m->kid};
	kr_err e = kr_ok();
	if (!ok)
		e = kr_errf(KR_EINPUT, "PBM protects initial enrollments only");
	else if (!m->kid[0])
		e = kr_errf(KR_EINPUT, "PBM without a senderKID naming the device");
	else if (t->pbm_device[0] && strcmp(t->pbm_device, m->kid) != 0)
		e = kr_errf(KR_EAUTH, "another device's secret in this transaction");
	else
		e = kr_desk_call(q->s->desk, q->account, device_secret, &s);
	OSSL_CMP_CTX *ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->srv);
	if (!kr_failed(&e) &&
	    OSSL_CMP_CTX_set1_secretValue(ctx, (unsigned char *)s.text, (int)strlen(s.text)) != 1)
		e = kr_err_ossl(KR_EINTERNAL, "setting the enrollment secret");
	OPENSSL_cleanse(s.text, sizeof s.text);
	if (!kr_failed(&e)) {
		kr_copy(q->pbm_device, sizeof q->pbm_device, m->kid);
		kr_copy(t->pbm_device, sizeof t->pbm_device, m->kid);
		return;
	}
	kr_serve_log("cmp-protection-refused", "account", q->account, "reason", e.msg);
	q->refusal = "the message's PBM is not one this account may use";
	q->fail_bit = OSSL_CMP_PKIFAILUREINFO_notAuthorized;
}

/* Who protected the message must be who the TLS client is: the MNO acting
 * as an RA with its own certificate (RFC 9483 section 5.2); a kur and its
 * certConf, the device itself. The library verifies the protection. */
static void judge(cmp_req *q, const kr_cmp_peek *m, X509 *peer, txn *t)
{
	if (m->body == B_GENM)
		return; /* the CA certificates are for any client */
	if (!m->protector && m->pbm) {
		judge_pbm(q, m, t);
		return;
	}
	if (!m->protector) {
		q->refusal = "the message carries no protection certificate in extraCerts "
			     "(RFC 9483 section 3.3) and no PBM";
		q->fail_bit = OSSL_CMP_PKIFAILUREINFO_notAuthorized;
		return;
	}
	if (m->body == B_KUR || (m->body == B_CERTCONF && t->rekeyed[0])) {
		judge_kur(q, m);
		if (!q->refusal && m->body == B_CERTCONF &&
		    strcmp(q->kur_device, t->rekeyed) != 0) {
			q->refusal = "the certConf is protected by another device's certificate";
			q->fail_bit = OSSL_CMP_PKIFAILUREINFO_notAuthorized;
		}
		return;
	}
	if (is_peer(m, peer))
		return; /* the connection's own certificate: its account is known */
	const unsigned char *d = m->protector;
	X509 *cert = d2i_X509(NULL, &d, (long)m->protector_len);
	char account[64] = "";
	kr_err e = cert ? kr_serve_client_account(q->s, cert, account)
			: kr_errf(KR_EINPUT, "extraCerts[0] is not a certificate");
	X509_free(cert);
	if (kr_failed(&e) || strcmp(account, q->account) != 0) {
		kr_serve_log("cmp-protection-refused", "account", q->account, "reason",
			     kr_failed(&e) ? e.msg : "protected by another account's certificate");
		q->refusal = "the message is not protected by this client's own certificate";
		q->fail_bit = OSSL_CMP_PKIFAILUREINFO_notAuthorized;
	}
}

KR_MUST_USE kr_err kr_cmp_read(const uint8_t *der, size_t len, OSSL_CMP_MSG **msg,
			       kr_cmp_peek *peek)
{
	memset(peek, 0, sizeof *peek);
	const unsigned char *p = der;
	*msg = der && len ? d2i_OSSL_CMP_MSG(NULL, &p, (long)len) : NULL;
	if (!*msg || p != der + len) {
		ERR_clear_error();
		OSSL_CMP_MSG_free(*msg);
		*msg = NULL;
		return kr_errf(KR_EINPUT, "not a DER PKIMessage (RFC 4210)");
	}
	peek->body = OSSL_CMP_MSG_get_bodytype(*msg);
	const ASN1_OCTET_STRING *tid =
		OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(*msg));
	const uint8_t *nonce = NULL;
	long nlen = 0;
	kr_err e = kr_ok();
	if (!tid || tid->length < 1 || tid->length > 64 ||
	    !sender_nonce(der, (long)len, &nonce, &nlen) || nlen < 1 || nlen > 64)
		e = kr_errf(KR_EINPUT, "a transactionID and a senderNonce of 1 to 64 octets are "
				       "needed (RFC 9483 section 3.1)");
	if (kr_failed(&e)) {
		OSSL_CMP_MSG_free(*msg);
		*msg = NULL;
		return e;
	}
	memcpy(peek->tid, tid->data, (size_t)tid->length);
	peek->tid_len = (size_t)tid->length;
	memcpy(peek->nonce, nonce, (size_t)nlen);
	peek->nonce_len = (size_t)nlen;
	if (!first_extra_cert(der, (long)len, &peek->protector, &peek->protector_len))
		peek->protector = NULL;
	peek->implicit_confirm = asks_implicit_confirm(der, (long)len);
	peek->pbm = is_pbm(der, (long)len);
	sender_kid(der, (long)len, peek->kid);
	ERR_clear_error();
	return kr_ok();
}

/* What the library checks the message's protection against. Protected by
 * the connection's own client certificate, which TLS verified up to the
 * root at the handshake and the store holds as valid: that certificate
 * alone (a partial chain), so that the chain is not verified again for
 * every message (two signature checks, most of a message's cost). Anything
 * else: the registry's CA and its chain. */
static void trust_for(OSSL_CMP_CTX *ctx, const kr_cmp_peek *m, X509 *peer, cmp_req *q)
{
	X509_STORE *trust = X509_STORE_new();
	int ok = trust != NULL;
	if (ok && is_peer(m, peer)) {
		ok = X509_STORE_add_cert(trust, peer) == 1 &&
		     X509_STORE_set_flags(trust, X509_V_FLAG_PARTIAL_CHAIN) == 1;
	} else {
		STACK_OF(X509) *chain = ok ? ca_chain(q->s) : NULL;
		ok = chain != NULL;
		for (int i = 0; ok && i < sk_X509_num(chain); i++)
			ok = X509_STORE_add_cert(trust, sk_X509_value(chain, i)) == 1;
		sk_X509_pop_free(chain, X509_free);
	}
	if (ok && OSSL_CMP_CTX_set0_trustedStore(ctx, trust) == 1)
		return;
	X509_STORE_free(trust);
	q->refusal = "cannot set up the message's trust";
	q->fail_bit = OSSL_CMP_PKIFAILUREINFO_systemFailure;
}

static void reply_msg(struct evhttp_request *req, OSSL_CMP_MSG *resp)
{
	unsigned char *der = NULL;
	int len = resp ? i2d_OSSL_CMP_MSG(resp, &der) : -1;
	if (len <= 0) {
		kr_serve_reply(req, 500, "text/plain", "CMP processing failed\n", 22);
		return;
	}
	kr_serve_reply(req, 200, "application/pkixcmp", der, (size_t)len);
	OPENSSL_free(der);
}

static int ends_transaction(const kr_cmp_peek *m, const OSSL_CMP_MSG *resp)
{
	int out = OSSL_CMP_MSG_get_bodytype(resp);
	/* ip, cp, kup wait for a certConf, unless the client asked for
	 * implicit confirmation, which the service grants */
	return m->body == B_CERTCONF || m->body == B_RR || m->body == B_GENM ||
	       (out != 1 && out != 3 && out != 8) || m->implicit_confirm;
}

void kr_cmp_handle(kr_server *s, struct evhttp_request *req, const char *account,
		   const char *profile)
{
	if (profile && strcmp(profile, s->conf->profile) != 0) {
		kr_serve_reply(req, 404, "text/plain", "no such CMP profile\n", 20);
		return;
	}
	size_t len = 0;
	const uint8_t *body = kr_serve_body(req, &len);
	OSSL_CMP_MSG *msg = NULL;
	kr_cmp_peek m = {0};
	cmp_req q = {.s = s, .account = account};
	txn *t = NULL;
	int fresh = 1;
	kr_err e = evhttp_request_get_command(req) == EVHTTP_REQ_POST
			   ? kr_cmp_read(body, len, &msg, &m)
			   : kr_errf(KR_EINPUT, "CMP messages are POSTed (RFC 6712 section 3.3)");
	/* an enrollment's nonce is recorded with it (one trip to the desk);
	 * any other message's now */
	int enrolls = m.body == B_P10CR || m.body == B_IR || m.body == B_CR || m.body == B_KUR;
	q.implicit_confirm = m.implicit_confirm;
	q.seen = (kr_seen){m.tid, m.nonce, m.tid_len, m.nonce_len};
	if (!kr_failed(&e) && !enrolls)
		e = kr_desk_seen(s->desk, &q.seen, &fresh);
	if (!kr_failed(&e)) {
		ASN1_OCTET_STRING id = {.length = (int)m.tid_len, .data = m.tid};
		e = txn_take(s->cmp, &id, m.body != B_CERTCONF, &t);
	}
	if (kr_failed(&e)) {
		kr_serve_log("cmp-refused", "account", account, "reason", e.msg);
		OSSL_CMP_MSG_free(msg);
		char text[KR_ERR_MSG + 2];
		int n = snprintf(text, sizeof text, "%s\n", e.msg);
		kr_serve_reply(req, e.code == KR_EINTERNAL ? 503 : 400, "text/plain", text,
			       (size_t)n);
		return;
	}
	if (!fresh) {
		q.refusal =
			"a replayed message: its transactionID and senderNonce were seen before";
		q.fail_bit = OSSL_CMP_PKIFAILUREINFO_badSenderNonce;
		kr_serve_log("cmp-replay", "account", account);
	} else {
		judge(&q, &m, kr_serve_peer(req), t);
	}
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	kr_serve_signer(&cert, &key);
	OSSL_CMP_CTX *ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->srv);
	trust_for(ctx, &m, kr_serve_peer(req), &q);
	OSSL_CMP_MSG *resp = NULL;
	t->req = &q;
	if (OSSL_CMP_CTX_set1_cert(ctx, cert) == 1 && OSSL_CMP_CTX_set1_pkey(ctx, key) == 1)
		resp = OSSL_CMP_SRV_process_request(t->srv, msg);
	/* the key is this thread's (its own token session): the transaction's
	 * next message may come on another thread, and this one may stop */
	(void)OSSL_CMP_CTX_set1_pkey(ctx, NULL);
	if (!resp) {
		unsigned long err = ERR_peek_last_error();
		kr_serve_log("cmp-failed", "account", account, "reason",
			     err ? ERR_reason_error_string(err) : "unknown");
	}
	ERR_clear_error();
	txn_give(s->cmp, t, !resp || q.refusal || ends_transaction(&m, resp));
	reply_msg(req, resp);
	OSSL_CMP_MSG_free(resp);
	OSSL_CMP_MSG_free(msg);
	X509_NAME_free(q.kur_subject);
}
