/* Encryption recipients from the command line: a certificate or a bare
 * public key in a file, or a device's newest valid certificate in the
 * store. */
#include "fw.h"
#include "../util/cleanup.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static KR_MUST_USE kr_err add_slot(kr_fw_opts *o, kr_fw_recipient **r)
{
	KR_ENSURE(o->nrecipients < KR_FW_MAX_RECIPIENTS, KR_EUSAGE,
		  "at most %d encryption recipients", KR_FW_MAX_RECIPIENTS);
	*r = &o->recipients[o->nrecipients++];
	return kr_ok();
}

/* A certificate, or a bare public key (MCUboot's device-class key). */
KR_MUST_USE kr_err kr_fw_recipient_file(kr_fw_opts *o, const char *path)
{
	kr_fw_recipient *r = NULL;
	KR_TRY(add_slot(o, &r));
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	snprintf(r->name, sizeof r->name, "%s", base);
	static const char *const ext[] = {".pem", ".crt", ".pub"}; /* classa.pub.pem: classa */
	for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
		size_t n = strlen(r->name), e = strlen(ext[i]);
		if (n > e && strcmp(r->name + n - e, ext[i]) == 0)
			r->name[n - e] = '\0';
	}
	KR_AUTO(BIO) bio = BIO_new_file(path, "r");
	KR_OSSL(bio, KR_EIO, "--encrypt-to %s: cannot open", path);
	r->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!r->cert) {
		ERR_clear_error();
		BIO_reset(bio);
		r->key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	}
	KR_OSSL(r->cert || r->key, KR_EINPUT,
		"--encrypt-to %s: neither a PEM certificate nor a PEM public key", path);
	return kr_ok();
}

typedef struct newest {
	uint8_t *der;
	size_t len;
} newest;

static KR_MUST_USE kr_err keep_newest(const kr_cert_info *c, void *arg)
{
	newest *n = arg; /* rows come in issuance order */
	free(n->der);
	n->der = malloc(c->der_len);
	n->len = n->der ? c->der_len : 0;
	KR_ENSURE(n->der, KR_EINTERNAL, "out of memory");
	memcpy(n->der, c->der, c->der_len);
	return kr_ok();
}

/* The device's newest valid certificate in the store. */
KR_MUST_USE kr_err kr_fw_recipient_device(kr_fw_opts *o, kr_store *store, const char *id)
{
	kr_fw_recipient *r = NULL;
	KR_TRY(add_slot(o, &r));
	snprintf(r->name, sizeof r->name, "%s", id);
	newest n = {0};
	kr_cert_filter f = {.device_id = id, .status = "valid"};
	KR_TRY(kr_store_certs(store, &f, keep_newest, &n));
	KR_ENSURE(n.der, KR_EINPUT, "--encrypt-to-device %s: no valid certificate in the store",
		  id);
	const unsigned char *p = n.der;
	r->cert = d2i_X509(NULL, &p, (long)n.len);
	free(n.der);
	KR_OSSL(r->cert, KR_EINTERNAL, "--encrypt-to-device %s: stored certificate", id);
	return kr_ok();
}

void kr_fw_recipients_free(kr_fw_opts *o)
{
	for (int i = 0; i < o->nrecipients; i++) {
		X509_free(o->recipients[i].cert);
		EVP_PKEY_free(o->recipients[i].key);
	}
}
