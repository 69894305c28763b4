#include "authority.h"
#include "leaf.h"
#include "../store/log.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

KR_MUST_USE kr_err kr_certs_read(const char *path, STACK_OF(X509) * *out)
{
	KR_AUTO(BIO) bio = BIO_new_file(path, "r");
	KR_OSSL(bio, KR_EIO, "%s: cannot open", path);
	STACK_OF(X509) *sk = sk_X509_new_null();
	KR_OSSL(sk, KR_EINTERNAL, "out of memory");
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error(); /* the end of the file */
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return kr_errf(KR_EINPUT, "%s: holds no PEM certificate", path);
	}
	*out = sk;
	return kr_ok();
}

KR_MUST_USE kr_err kr_authority_key_open(const char *uri, const char *pin_file, const char *pin_env,
					 const kr_hsm_opts *opts, X509 *cert, const char *who,
					 kr_hsm **h, kr_hsm_key **k)
{
	kr_hsm_opts o = kr_hsm_opts_pin(opts, pin_file, pin_env);
	KR_TRY(kr_hsm_open(uri, &o, h));
	KR_TRY(kr_hsm_key_find(*h, uri, k));
	KR_ENSURE(EVP_PKEY_eq(kr_hsm_key_public(*k), X509_get0_pubkey(cert)) == 1, KR_EVERIFY,
		  "%s: the key on the token is not the key of its certificate", who);
	int copied; /* either way it signs on the token */
	return kr_hsm_key_session_copy(*h, *k, &copied);
}

static KR_MUST_USE kr_err open_key(kr_authority *a, const kr_hsm_opts *opts)
{
	char who[PATH_MAX + 80];
	snprintf(who, sizeof who, "CA '%s' (%s)", a->conf->name, a->conf->certificate);
	KR_TRY(kr_authority_key_open(a->conf->uri, a->conf->pin_file, a->conf->pin_env, opts,
				     a->cert, who, &a->hsm, &a->key));
	return kr_signing_init(&a->signing, a->hsm, a->key, a->conf->rsa_pss);
}

KR_MUST_USE kr_err kr_authority_open(const kr_ca_conf *conf, kr_store *store,
				     const kr_hsm_opts *opts, int with_key, kr_authority *a)
{
	memset(a, 0, sizeof *a);
	a->conf = conf;
	STACK_OF(X509) *certs = NULL;
	KR_TRY(kr_certs_read(conf->certificate, &certs));
	KR_ENSURE(sk_X509_num(certs) == 1, KR_EINPUT,
		  "%s: holds %d certificates; put the CA's own here and the rest in chain =",
		  conf->certificate, sk_X509_num(certs));
	a->cert = sk_X509_pop(certs);
	sk_X509_free(certs);
	if (conf->chain[0])
		KR_TRY(kr_certs_read(conf->chain, &a->chain));
	else
		a->chain = sk_X509_new_null();
	KR_TRY(kr_store_register_ca(store, conf->name, a->cert, &a->id));
	return with_key ? open_key(a, opts) : kr_ok();
}

KR_MUST_USE kr_err kr_authority_leaf(kr_authority *a, const kr_profile *p, CONF *conf,
				     const kr_leaf **out)
{
	for (int i = 0; i < a->nleaves; i++)
		if (a->leaves[i].p == p) {
			*out = a->leaves[i].leaf;
			return kr_ok();
		}
	KR_ENSURE(a->nleaves < KR_MAX_LIST, KR_EINTERNAL, "more profiles than a CA has");
	kr_leaf *l = NULL;
	KR_TRY(kr_leaf_new(p, conf, a->cert, &a->signing, &l));
	a->leaves[a->nleaves].p = p;
	a->leaves[a->nleaves++].leaf = l;
	*out = l;
	return kr_ok();
}

void kr_authority_close(kr_authority *a)
{
	for (int i = 0; i < a->nleaves; i++)
		kr_leaf_free(a->leaves[i].leaf);
	kr_signing_clear(&a->signing);
	kr_hsm_key_free(a->key);
	kr_hsm_close(a->hsm);
	X509_free(a->cert);
	sk_X509_pop_free(a->chain, X509_free);
	memset(a, 0, sizeof *a);
}

KR_MUST_USE kr_err kr_checkpoint_sign(kr_store *store, const kr_signing *signer, int64_t ca_id,
				      X509 *cert)
{
	kr_audit_head h;
	uint8_t msg[KR_CHECKPOINT_MSG_MAX], sig[KR_HSM_MAX_SIG];
	size_t len = 0, siglen = 0;
	KR_TRY(kr_store_audit_head(store, &h));
	int done = 0;
	KR_TRY(kr_store_has_checkpoint(store, h.seq, &done));
	if (done || h.seq == 0)
		return kr_ok(); /* nothing new to cover in this node's chain */
	kr_checkpoint_message(kr_store_node(store), h.node_seq, h.hash, msg, &len);
	KR_TRY(kr_signing_sign(signer, NULL, msg, len, sig, &siglen));
	KR_AUTO(uint8_t) der = NULL;
	int derlen = cert ? i2d_X509(cert, &der) : 0;
	KR_OSSL(derlen >= 0, KR_EINTERNAL, "encoding the signer certificate");
	return kr_store_add_checkpoint(store, ca_id, &h, sig, siglen, der, (size_t)derlen);
}

KR_MUST_USE kr_err kr_authority_checkpoint(kr_authority *a, kr_store *store)
{
	return kr_checkpoint_sign(store, &a->signing, a->id, NULL);
}

/* The PEM of certs (NULL-terminated), malloc'd and NUL-terminated. */
static KR_MUST_USE kr_err pem_of(X509 *const *certs, const STACK_OF(X509) * more, char **pem,
				 size_t *len)
{
	KR_AUTO(BIO) mem = BIO_new(BIO_s_mem());
	int ok = mem != NULL;
	for (int i = 0; ok && certs[i]; i++)
		ok = PEM_write_bio_X509(mem, certs[i]);
	for (int i = 0; ok && i < sk_X509_num(more); i++)
		ok = PEM_write_bio_X509(mem, sk_X509_value(more, i));
	KR_OSSL(ok, KR_EINTERNAL, "encoding certificates");
	char *data = NULL;
	long n = BIO_get_mem_data(mem, &data);
	*pem = malloc((size_t)n + 1);
	KR_ENSURE(*pem, KR_EINTERNAL, "out of memory");
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	*len = (size_t)n;
	return kr_ok();
}

KR_MUST_USE kr_err kr_authority_chain_pem(const kr_authority *a, char **pem, size_t *len)
{
	X509 *const certs[] = {a->cert, NULL};
	return pem_of(certs, a->chain, pem, len);
}

KR_MUST_USE kr_err kr_cert_der_pem(const uint8_t *der, size_t der_len, char **pem, size_t *len)
{
	const unsigned char *p = der;
	KR_AUTO(X509) x = d2i_X509(NULL, &p, (long)der_len);
	KR_OSSL(x, KR_EINPUT, "not a DER certificate");
	X509 *const certs[] = {x, NULL};
	return pem_of(certs, NULL, pem, len);
}

KR_MUST_USE kr_err kr_cert_read(const char *path, X509 **out)
{
	STACK_OF(X509) *certs = NULL;
	KR_TRY(kr_certs_read(path, &certs));
	*out = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
	return kr_ok();
}
