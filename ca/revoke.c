#include "revoke.h"
#include "../store/audit.h"
#include "../util/mem.h"
#include "build.h"
#include "serial.h"
#include "lint.h"
#include "../util/cleanup.h"
#include "../util/fs.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static KR_MUST_USE kr_err valid_one(const kr_cert_info *c, void *arg)
{
	return strcmp(c->status, "valid") ? kr_ok() : kr_serials_add(arg, c->serial, c->serial_len);
}

KR_MUST_USE kr_err kr_ca_device_serials(kr_store *store, const kr_authority *ca, const char *device,
					kr_serials *out)
{
	kr_cert_filter f = {.ca = ca->conf->name, .device_id = device, .status = "valid"};
	KR_TRY(kr_store_certs(store, &f, valid_one, out));
	KR_ENSURE(out->n > 0, KR_EINPUT, "device %s has no valid certificate from CA %s", device,
		  ca->conf->name);
	return kr_ok();
}

KR_MUST_USE kr_err kr_ca_revoke(kr_store *store, kr_authority *ca, const kr_serials *s, int reason)
{
	int64_t now = (int64_t)time(NULL);
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, store));
	for (size_t i = 0; i < s->n; i++)
		KR_TRY(kr_store_revoke(store, ca->id, s->v[i].v, s->v[i].len, reason, now));
	KR_TRY(kr_authority_checkpoint(ca, store));
	return kr_txn_commit(&t);
}

typedef struct revoked {
	kr_crl_entry *v;
	ASN1_INTEGER **serials;
	size_t n, cap, serials_cap;
} revoked;

static void revoked_clear(revoked *r)
{
	for (size_t i = 0; i < r->n; i++)
		ASN1_INTEGER_free(r->serials[i]);
	free(r->serials);
	free(r->v);
}

static KR_MUST_USE kr_err collect(const uint8_t *serial, size_t len, int64_t when, int reason,
				  void *arg)
{
	revoked *r = arg;
	KR_TRY(kr_grow((void **)&r->v, &r->cap, r->n + 1, sizeof *r->v));
	KR_TRY(kr_grow((void **)&r->serials, &r->serials_cap, r->n + 1, sizeof(ASN1_INTEGER *)));
	ASN1_INTEGER *ai = NULL;
	KR_TRY(kr_serial_asn1(serial, len, &ai));
	r->serials[r->n] = ai;
	r->v[r->n++] = (kr_crl_entry){ai, (time_t)when, reason};
	return kr_ok();
}

static KR_MUST_USE kr_err sign_crl(kr_authority *ca, const kr_crl_spec *spec, X509_CRL **out)
{
	KR_AUTO(X509_CRL) draft = NULL;
	KR_TRY(kr_crl_draft(spec, &draft));
	KR_TRY(kr_sign_draft_crl(&ca->signing, draft));
	KR_TRY(kr_lint_crl(draft, ca->cert));
	return kr_sign_crl(&ca->signing, draft, X509_get0_pubkey(ca->cert), out);
}

/* A CRL says what the store says is revoked: that must be what the log
 * says too. An undone revocation (the row set back to valid, its entry
 * still in the log) would otherwise drop out of the CRL without a word.
 * Entries no checkpoint covers yet are no disagreement: this CRL's own
 * checkpoint covers them. */
static KR_MUST_USE kr_err state_agrees(kr_store *store)
{
	long problems = 0;
	kr_err e = kr_audit_verify(store, NULL, KR_AUDIT_TAIL_OK, &problems);
	if (e.code == KR_EVERIFY)
		return kr_errf(
			KR_EVERIFY,
			"the store's state and its audit log disagree (%ld problem(s); keyrite "
			"audit verify lists them): refusing to issue a CRL from it",
			problems);
	return e;
}

KR_MUST_USE kr_err kr_ca_crl(kr_store *store, kr_authority *ca, const char *out, int64_t *number)
{
	if (out)
		KR_TRY(kr_fs_must_not_exist(out));
	__attribute__((cleanup(revoked_clear))) revoked r = {0};
	time_t now = time(NULL);
	kr_crl_spec spec = {
		.issuer = ca->cert, .this_update = now, .next_update_days = ca->conf->crl_days};
	KR_AUTO(X509_CRL) crl = NULL;
	KR_AUTO(uint8_t) der = NULL;
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, store));
	KR_TRY(state_agrees(store));
	KR_TRY(kr_store_next_crl_number(store, ca->id, number));
	KR_TRY(kr_store_revocations(store, ca->id, collect, &r));
	spec.number = (long)*number;
	spec.revoked = r.v;
	spec.nrevoked = r.n;
	KR_TRY(sign_crl(ca, &spec, &crl));
	int len = i2d_X509_CRL(crl, &der);
	KR_OSSL(len > 0, KR_EINTERNAL, "encoding the CRL");
	KR_TRY(kr_store_add_crl(store, ca->id, *number, (int64_t)now,
				(int64_t)now + ca->conf->crl_days * 86400, (long)r.n, der,
				(size_t)len));
	KR_TRY(kr_authority_checkpoint(ca, store));
	/* The CRL is recorded before it is written: a file never holds a CRL the
	 * store does not know. */
	KR_TRY(kr_txn_commit(&t));
	if (!out)
		return kr_ok();
	KR_AUTO(BIO) pem = BIO_new(BIO_s_mem());
	KR_OSSL(pem && PEM_write_bio_X509_CRL(pem, crl), KR_EINTERNAL, "encoding the CRL");
	char *data = NULL;
	long n = BIO_get_mem_data(pem, &data);
	return kr_fs_write_new(out, data, (size_t)n, 0644);
}
