/* The registry payload (seed 000, "Registry Payload"): what the MNO pushes
 * to an active device's eSIM so it can reach its ASP with zero touch.
 *
 * Format (docs/registry.md): a JSON object (RFC 8259), format
 * "keyrite-registry-payload/1", in a CMS SignedData (RFC 5652 section 5,
 * eContentType id-data, the signer's certificate and chain included)
 * signed by the registry's payload key on the token, inside a CMS
 * EnvelopedData (RFC 5652 section 6) encrypted to the device's certificate
 * (ECDH key agreement, RFC 5753, AES-256-CBC): only the device can read
 * it, and it knows the registry sent it. openssl cms -decrypt, then
 * openssl cms -verify, open it. */
#include "internal.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/text.h"

#include <jansson.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KR_DEFINE_FREE(CMS_ContentInfo, CMS_ContentInfo_free)

struct kr_payload_key {
	X509 *cert;
	STACK_OF(X509) * chain;
	kr_hsm *hsm;
	kr_hsm_key *key;
	EVP_PKEY *evp;
};

void kr_payload_key_close(kr_payload_key *k);

KR_MUST_USE kr_err kr_payload_key_open(kr_registry *r, const kr_hsm_opts *hsm, kr_payload_key **out)
{
	const kr_registry_conf *c = r->conf;
	KR_ENSURE(c->payload_uri[0], KR_EINPUT,
		  "the registry has no payload key ([registry] payload_uri, payload_certificate)");
	kr_payload_key *k = calloc(1, sizeof *k);
	KR_ENSURE(k, KR_EINTERNAL, "out of memory");
	kr_err e = kr_certs_read(c->payload_certificate, &k->chain);
	if (!kr_failed(&e)) {
		k->cert = sk_X509_shift(k->chain);
		e = kr_authority_key_open(c->payload_uri, c->pin_file, c->pin_env, hsm, k->cert,
					  "the registry payload key", &k->hsm, &k->key);
	}
	if (!kr_failed(&e))
		e = kr_hsm_key_evp(k->hsm, k->key, &k->evp);
	if (kr_failed(&e)) {
		kr_payload_key_close(k);
		return e;
	}
	*out = k;
	return kr_ok();
}

void kr_payload_key_close(kr_payload_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->evp);
	kr_hsm_key_free(k->key);
	kr_hsm_close(k->hsm);
	X509_free(k->cert);
	sk_X509_pop_free(k->chain, X509_free);
	free(k);
}

static json_t *pem_of(X509 *x)
{
	KR_AUTO(BIO) b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n = b && PEM_write_bio_X509(b, x) ? BIO_get_mem_data(b, &data) : 0;
	return n > 0 ? json_stringn(data, (size_t)n) : NULL;
}

/* DANE-EE 3 1 1 of a certificate (RFC 6698 section 2.1): the SHA-256 of
 * its SubjectPublicKeyInfo, for the ASP's server. */
static KR_MUST_USE kr_err tlsa_311(X509 *x, char out[8 + 65])
{
	uint8_t *spki = NULL, d[32];
	int len = i2d_PUBKEY(X509_get0_pubkey(x), &spki);
	KR_OSSL(len > 0, KR_EINTERNAL, "encoding a public key");
	kr_err e = kr_sha256(spki, (size_t)len, d);
	OPENSSL_free(spki);
	KR_TRY(e);
	char hex[65];
	kr_hex(d, 32, hex);
	snprintf(out, 8 + 65, "3 1 1 %s", hex);
	return kr_ok();
}

KR_MUST_USE kr_err kr_registry_service_tlsa(kr_registry *r, const char *asp, char owner[300],
					    char rdata[8 + 65])
{
	const kr_account_conf *a = NULL;
	KR_TRY(kr_config_account(r->conf, asp, &a));
	KR_ENSURE(a->kind == KR_ACCOUNT_ASP && a->endpoint[0] && a->server_certificate[0],
		  KR_EINPUT, "%s names no service with a server certificate", asp);
	KR_AUTO(X509) srv = NULL;
	KR_TRY(kr_cert_read(a->server_certificate, &srv));
	KR_TRY(tlsa_311(srv, rdata));
	/* RFC 6698 section 3: _port._tcp.host */
	snprintf(owner, 300, "_%ld._tcp.%s.", a->port, a->endpoint);
	return kr_ok();
}

/* The registry's chain: the issuing CA, then up to the root. */
static json_t *chain_of(const kr_authority *ca)
{
	json_t *a = json_array();
	if (a && json_array_append_new(a, pem_of(ca->cert)) != 0)
		a = (json_decref(a), NULL);
	for (int i = 0; a && i < sk_X509_num(ca->chain); i++)
		if (json_array_append_new(a, pem_of(sk_X509_value(ca->chain, i))) != 0)
			a = (json_decref(a), NULL);
	return a;
}

/* The zone's DNSSEC trust anchor, its DS records, when the registry names them. */
static json_t *dnssec_of(const kr_registry *r)
{
	const kr_registry_conf *c = r->conf;
	if (c->ntrust_anchors == 0)
		return NULL;
	json_t *ds = json_array();
	for (int i = 0; ds && i < c->ntrust_anchors; i++)
		if (json_array_append_new(ds, json_string(c->trust_anchors[i])) != 0)
			ds = (json_decref(ds), NULL);
	return ds ? json_pack("{s:s,s:o}", "zone", r->profile->zone, "ds", ds) : NULL;
}

/* The payload's JSON: the device's identity and certificate, where its
 * ASP is and how to know its server, the registry's chain up to the root,
 * the zone's trust anchor. */
static KR_MUST_USE kr_err content(kr_registry *r, const kr_payload_dev *p, char **out, size_t *len)
{
	const kr_account_conf *asp = NULL;
	KR_TRY(kr_config_account(r->conf, p->asp, &asp));
	char tlsa[8 + 65] = "";
	if (asp->server_certificate[0]) {
		KR_AUTO(X509) srv = NULL;
		KR_TRY(kr_cert_read(asp->server_certificate, &srv));
		KR_TRY(tlsa_311(srv, tlsa));
	}
	char now[21];
	kr_utc_now(now);
	json_t *dnssec = dnssec_of(r);
	json_t *o = json_pack(
		"{s:s,s:s,s:s,s:I,s:s,s:o,s:{s:s,s:s?,s:i,s:s,s:s?},s:o,s:o?}", "format",
		"keyrite-registry-payload/1", "issued", now, "device", p->device, "profile_id",
		(json_int_t)p->profile_id, "identity", p->identity, "certificate", pem_of(p->cert),
		"asp", "name", asp->name, "endpoint", asp->endpoint[0] ? asp->endpoint : NULL,
		"port", (int)asp->port, "protocol", asp->protocol, "server_tlsa",
		tlsa[0] ? tlsa : NULL, "ca_chain", chain_of(&r->ca), "dnssec", dnssec);
	*out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	KR_ENSURE(*out, KR_EINTERNAL, "device %s: building its payload", p->device);
	*len = strlen(*out);
	return kr_ok();
}

typedef struct found_cert {
	X509 *x;
	char name[256];
} found_cert;

static KR_MUST_USE kr_err keep_cert(const kr_cert_info *c, void *arg)
{
	found_cert *f = arg;
	const unsigned char *p = c->der;
	X509_free(f->x);
	f->x = d2i_X509(NULL, &p, (long)c->der_len);
	KR_OSSL(f->x, KR_EINTERNAL, "a certificate in the store does not parse");
	kr_copy(f->name, sizeof f->name, c->subject ? c->subject : "");
	return kr_ok();
}

KR_MUST_USE kr_err kr_payload_for(kr_registry *r, kr_payload_key *k, const char *device,
				  const kr_registration *g, const char *path)
{
	found_cert f = {0};
	kr_cert_filter filter = {
		.serial = g->serial, .serial_len = g->serial_len, .status = "valid"};
	kr_err e = kr_store_certs(r->store, &filter, keep_cert, &f);
	if (!kr_failed(&e) && !f.x)
		e = kr_errf(KR_EINTERNAL, "device %s: its profile has no valid certificate",
			    device);
	kr_payload_dev p = {device, g->asp, f.name, g->profile_id, f.x};
	if (!kr_failed(&e))
		e = kr_payload_write(r, k, &p, path);
	X509_free(f.x);
	return e;
}

KR_MUST_USE kr_err kr_payload_write(kr_registry *r, kr_payload_key *k, const kr_payload_dev *p,
				    const char *path)
{
	KR_TRY(kr_fs_must_not_exist(path));
	char *json = NULL;
	size_t jlen = 0;
	KR_TRY(content(r, p, &json, &jlen));
	KR_AUTO(BIO) in = BIO_new_mem_buf(json, (int)jlen);
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP;
	KR_AUTO(CMS_ContentInfo)
	signed_ = in ? CMS_sign(k->cert, k->evp, k->chain, in, flags) : NULL;
	KR_AUTO(BIO) inner = BIO_new(BIO_s_mem());
	int ok = signed_ && inner && i2d_CMS_bio(inner, signed_) == 1;
	free(json); /* json_dumps's, with malloc */
	KR_OSSL(ok, KR_EHSM, "signing the payload of device %s", p->device);
	STACK_OF(X509) *to = sk_X509_new_null();
	CMS_ContentInfo *enc = to && sk_X509_push(to, p->cert)
				       ? CMS_encrypt(to, inner, EVP_aes_256_cbc(), CMS_BINARY)
				       : NULL;
	sk_X509_free(to);
	KR_AUTO(CMS_ContentInfo) env = enc;
	KR_AUTO(BIO) der = BIO_new(BIO_s_mem());
	KR_OSSL(env && der && i2d_CMS_bio(der, env) == 1, KR_EINTERNAL,
		"encrypting the payload to device %s", p->device);
	char *data = NULL;
	long n = BIO_get_mem_data(der, &data);
	return kr_fs_write_new(path, data, (size_t)n, 0644);
}

/* A payload read as JSON: this format, and for this device: its
 * certificate is the one it carries. */
static KR_MUST_USE kr_err names_this_device(const char *path, const char *data, size_t n,
					    X509 *cert)
{
	json_error_t err;
	json_t *o = json_loadb(data, n, 0, &err);
	const char *format = NULL, *pem = NULL, *device = NULL;
	int parsed = o && json_unpack(o, "{s:s,s:s,s:s}", "format", &format, "device", &device,
				      "certificate", &pem) == 0;
	kr_err e = kr_ok();
	if (!parsed)
		e = kr_errf(KR_EVERIFY, "%s: not a registry payload: %s", path,
			    o ? "a field missing" : err.text);
	else if (strcmp(format, "keyrite-registry-payload/1") != 0)
		e = kr_errf(KR_EVERIFY, "%s: format '%.60s', not keyrite-registry-payload/1", path,
			    format);
	if (!kr_failed(&e)) {
		KR_AUTO(BIO) b = BIO_new_mem_buf(pem, -1);
		KR_AUTO(X509) x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		if (!x || X509_cmp(x, cert) != 0)
			e = kr_errf(KR_EVERIFY,
				    "%s: the payload is for device %.40s's certificate, "
				    "not this one",
				    path, device);
	}
	json_decref(o);
	return e;
}

KR_MUST_USE kr_err kr_payload_verify(const char *path, const char *key_path, const char *cert_path,
				     const char *root_path, char **json, size_t *len, char *signer,
				     size_t signersz)
{
	KR_AUTO(X509) cert = NULL;
	KR_AUTO(X509) root = NULL;
	KR_TRY(kr_cert_read(cert_path, &cert));
	KR_TRY(kr_cert_read(root_path, &root));
	KR_AUTO(BIO) kb = BIO_new_file(key_path, "r");
	KR_AUTO(EVP_PKEY) key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	KR_OSSL(key, KR_EINPUT, "%s: not a PEM private key", key_path);
	KR_AUTO(BIO) in = BIO_new_file(path, "rb");
	KR_OSSL(in, KR_EIO, "%s: cannot read", path);
	KR_AUTO(CMS_ContentInfo) env = d2i_CMS_bio(in, NULL);
	KR_OSSL(env && OBJ_obj2nid(CMS_get0_type(env)) == NID_pkcs7_enveloped, KR_EINPUT,
		"%s: not a CMS EnvelopedData", path);
	KR_AUTO(BIO) inner = BIO_new(BIO_s_mem());
	KR_OSSL(inner && CMS_decrypt(env, key, cert, NULL, inner, CMS_BINARY) == 1, KR_EVERIFY,
		"%s: the device's key does not open it", path);
	KR_AUTO(CMS_ContentInfo) sd = d2i_CMS_bio(inner, NULL);
	KR_OSSL(sd && OBJ_obj2nid(CMS_get0_type(sd)) == NID_pkcs7_signed, KR_EVERIFY,
		"%s: no CMS SignedData inside", path);
	KR_AUTO(X509_STORE) store = X509_STORE_new();
	KR_OSSL(store && X509_STORE_add_cert(store, root), KR_EINTERNAL, "out of memory");
	/* the payload key's certificate need not be for S/MIME */
	X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
	KR_AUTO(BIO) out = BIO_new(BIO_s_mem());
	KR_OSSL(out && CMS_verify(sd, NULL, store, NULL, out, CMS_BINARY) == 1, KR_EVERIFY,
		"%s: the registry's signature does not verify", path);
	STACK_OF(X509) *signers = CMS_get0_signers(sd);
	X509 *s = signers && sk_X509_num(signers) ? sk_X509_value(signers, 0) : NULL;
	if (s)
		X509_NAME_oneline(X509_get_subject_name(s), signer, (int)signersz);
	else
		kr_copy(signer, signersz, "?");
	sk_X509_free(signers);
	char *data = NULL;
	long n = BIO_get_mem_data(out, &data);
	KR_TRY(names_this_device(path, data, (size_t)n, cert));
	*json = malloc((size_t)n + 1);
	KR_ENSURE(*json, KR_EINTERNAL, "out of memory");
	memcpy(*json, data, (size_t)n);
	(*json)[n] = '\0';
	*len = (size_t)n;
	return kr_ok();
}
