/* The token key as an OpenSSL EVP_PKEY, through OpenSSL's EC_KEY_METHOD and
 * RSA_METHOD hooks (as libp11 does). These hooks are deprecated in OpenSSL
 * 3.0 but are the only ones Debian 12 offers short of a provider. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "internal.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL's method tables and ex_data index are process-wide by design: the
 * one piece of global state keyrite keeps, set once. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static EC_KEY_METHOD *ec_method;
static RSA_METHOD *rsa_method;
static int ec_index = -1, rsa_index = -1;

/* What a bridged key signs with: its own session and a copy of the key. */
typedef struct bridge {
	kr_hsm_session *session;
	kr_hsm_key key;
} bridge;

static void bridge_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	bridge *b = ptr;
	if (!b)
		return;
	kr_hsm_session_close(b->session);
	free(b);
}

static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
			      const BIGNUM *r, EC_KEY *eckey)
{
	(void)kinv, (void)r;
	bridge *b = EC_KEY_get_ex_data(eckey, ec_index);
	uint8_t der[KR_HSM_MAX_SIG];
	size_t len = 0;
	kr_err e = b ? kr_hsm_sign(b->session, &b->key, KR_SIG_ECDSA, NULL, dgst, (size_t)dlen, der,
				   &len)
		     : kr_errf(KR_EINTERNAL, "EC key is not bridged to a token");
	if (kr_failed(&e)) {
		ERR_raise_data(ERR_LIB_EC, ERR_R_EC_LIB, "%s", e.msg);
		return NULL;
	}
	const unsigned char *p = der;
	return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

static int ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
		   unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	(void)type;
	ECDSA_SIG *s = ec_sign_sig(dgst, dlen, kinv, r, eckey);
	if (!s)
		return 0;
	unsigned char *p = sig;
	int n = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return 0;
	*siglen = (unsigned)n;
	return 1;
}

/* RSA_sign's hook: PKCS#1 v1.5 over the digest m of algorithm type. */
static int rsa_sign(int type, const unsigned char *m, unsigned int mlen, unsigned char *sigret,
		    unsigned int *siglen, const RSA *rsa)
{
	bridge *b = RSA_get_ex_data(rsa, rsa_index);
	const EVP_MD *md = EVP_get_digestbynid(type);
	uint8_t sig[KR_HSM_MAX_SIG];
	size_t len = 0;
	kr_err e =
		b && md ? kr_hsm_sign(b->session, &b->key, KR_SIG_RSA_PKCS1, md, m, mlen, sig, &len)
			: kr_errf(KR_EINTERNAL, "RSA key is not bridged, or unknown digest");
	if (kr_failed(&e) || len > (size_t)RSA_size(rsa)) {
		ERR_raise_data(ERR_LIB_RSA, ERR_R_RSA_LIB, "%s", e.msg);
		return 0;
	}
	memcpy(sigret, sig, len);
	*siglen = (unsigned)len;
	return 1;
}

static int rsa_refuse_raw(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
			  int padding)
{
	(void)flen, (void)from, (void)to, (void)rsa, (void)padding;
	ERR_raise_data(ERR_LIB_RSA, ERR_R_RSA_LIB,
		       "raw RSA on the token is not offered (RSA-PSS signs through kr_hsm_sign)");
	return -1;
}

static void init_methods(void)
{
	ec_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, bridge_free);
	rsa_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, bridge_free);
	ec_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
	if (ec_method)
		EC_KEY_METHOD_set_sign(ec_method, ec_sign, NULL, ec_sign_sig);
	rsa_method = RSA_meth_dup(RSA_PKCS1_OpenSSL());
	if (rsa_method) {
		RSA_meth_set1_name(rsa_method, "keyrite PKCS#11 RSA");
		RSA_meth_set_sign(rsa_method, rsa_sign);
		RSA_meth_set_priv_enc(rsa_method, rsa_refuse_raw);
		RSA_meth_set_priv_dec(rsa_method, rsa_refuse_raw);
	}
}

static KR_MUST_USE kr_err new_bridge(kr_hsm *h, const kr_hsm_key *k, bridge **out)
{
	bridge *b = calloc(1, sizeof *b);
	KR_ENSURE(b, KR_EINTERNAL, "out of memory");
	b->key = *k;
	b->key.pubkey = NULL; /* owned by k; the bridge signs by handle only */
	kr_err e = kr_hsm_session_open(h, &b->session);
	if (kr_failed(&e)) {
		free(b);
		return e;
	}
	*out = b;
	return kr_ok();
}

/* A bridged key gets an EC_KEY or RSA of its own, made from the public
 * parts: EVP_PKEY_get1_EC_KEY and _RSA hand out the public EVP_PKEY's one
 * cached legacy key, which every bridge of that key would then share (and
 * re-point at its own session). */
static EC_KEY *ec_public_copy(EVP_PKEY *pub)
{
	const EC_KEY *src = EVP_PKEY_get0_EC_KEY(pub);
	EC_KEY *ec = src ? EC_KEY_new_by_curve_name(EC_GROUP_get_curve_name(EC_KEY_get0_group(src)))
			 : NULL;
	if (ec && !EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src))) {
		EC_KEY_free(ec);
		ec = NULL;
	}
	return ec;
}

static RSA *rsa_public_copy(EVP_PKEY *pub)
{
	const RSA *src = EVP_PKEY_get0_RSA(pub);
	RSA *rsa = src ? RSA_new() : NULL;
	BIGNUM *n = rsa ? BN_dup(RSA_get0_n(src)) : NULL, *e = rsa ? BN_dup(RSA_get0_e(src)) : NULL;
	if (rsa && (!n || !e || !RSA_set0_key(rsa, n, e, NULL))) {
		BN_free(n);
		BN_free(e);
		RSA_free(rsa);
		rsa = NULL;
	}
	return rsa;
}

static KR_MUST_USE kr_err ec_evp(bridge *b, EVP_PKEY *pub, EVP_PKEY **out)
{
	EC_KEY *ec = ec_public_copy(pub);
	if (!ec || !EC_KEY_set_method(ec, ec_method) || !EC_KEY_set_ex_data(ec, ec_index, b)) {
		EC_KEY_free(ec);
		bridge_free(NULL, b, NULL, 0, 0, NULL);
		return kr_err_ossl(KR_EINTERNAL, "bridging the EC key");
	}
	EVP_PKEY *pk = EVP_PKEY_new();
	if (!pk || !EVP_PKEY_assign_EC_KEY(pk, ec)) {
		EVP_PKEY_free(pk);
		EC_KEY_free(ec); /* frees b through ex_data */
		return kr_err_ossl(KR_EINTERNAL, "bridging the EC key");
	}
	*out = pk;
	return kr_ok();
}

static KR_MUST_USE kr_err rsa_evp(bridge *b, EVP_PKEY *pub, EVP_PKEY **out)
{
	RSA *rsa = rsa_public_copy(pub);
	if (!rsa || !RSA_set_method(rsa, rsa_method) || !RSA_set_ex_data(rsa, rsa_index, b)) {
		RSA_free(rsa);
		bridge_free(NULL, b, NULL, 0, 0, NULL);
		return kr_err_ossl(KR_EINTERNAL, "bridging the RSA key");
	}
	EVP_PKEY *pk = EVP_PKEY_new();
	if (!pk || !EVP_PKEY_assign_RSA(pk, rsa)) {
		EVP_PKEY_free(pk);
		RSA_free(rsa);
		return kr_err_ossl(KR_EINTERNAL, "bridging the RSA key");
	}
	*out = pk;
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_key_evp(kr_hsm *h, const kr_hsm_key *k, EVP_PKEY **out)
{
	pthread_once(&once, init_methods);
	KR_ENSURE(ec_method && rsa_method && ec_index >= 0 && rsa_index >= 0, KR_EINTERNAL,
		  "OpenSSL key methods unavailable");
	KR_ENSURE(k->type != KR_KEY_ED25519, KR_EINTERNAL,
		  "key '%s': OpenSSL 3.0 offers no hook to sign with an Ed25519 token key; "
		  "keyrite signs those through kr_hsm_sign",
		  k->label);
	bridge *b = NULL;
	KR_TRY(new_bridge(h, k, &b));
	if (k->type == KR_KEY_EC_P256 || k->type == KR_KEY_EC_P384)
		return ec_evp(b, k->pubkey, out);
	return rsa_evp(b, k->pubkey, out);
}
