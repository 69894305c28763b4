/* The HSM layer against a real SoftHSM token in a private directory. */
#include "../../ca/sign.h"
#include "../../hsm/hsm.h"
#include "../../util/cleanup.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(hsm, .fini = kr_test_cleanup);

static kr_hsm *open_token(const char *label)
{
	kr_hsm_opts o = {.pin = kr_test_token(label)};
	kr_hsm *h = NULL;
	char uri[128];
	snprintf(uri, sizeof uri, "pkcs11:token=%s", label);
	KR_ASSERT_OK(kr_hsm_open(uri, &o, &h));
	return h;
}

/* Signs "hello" on the token and verifies it with OpenSSL in software. */
static void sign_and_verify(kr_hsm *h, kr_key_type t, int pss)
{
	char uri[128];
	snprintf(uri, sizeof uri, "pkcs11:token=t;object=%s%s", kr_key_type_name(t),
		 pss ? "-pss" : "");
	kr_hsm_key *k = NULL;
	KR_ASSERT_OK(kr_hsm_keygen(h, uri, t, &k));
	kr_signing s;
	KR_ASSERT_OK(kr_signing_init(&s, h, k, pss));
	const uint8_t msg[] = "hello";
	uint8_t sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	KR_ASSERT_OK(kr_signing_sign(&s, NULL, msg, sizeof msg, sig, &siglen));

	KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	cr_assert(EVP_DigestVerifyInit(ctx, &pctx, s.alg.md, NULL, kr_hsm_key_public(k)) > 0);
	if (pss) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
	}
	cr_assert_eq(EVP_DigestVerify(ctx, sig, siglen, msg, sizeof msg), 1, "%s%s",
		     kr_key_type_name(t), pss ? " PSS" : "");
	/* A changed message must not verify. */
	KR_AUTO(EVP_MD_CTX) ctx2 = EVP_MD_CTX_new();
	cr_assert(EVP_DigestVerifyInit(ctx2, &pctx, s.alg.md, NULL, kr_hsm_key_public(k)) > 0);
	if (pss)
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
	cr_assert_neq(EVP_DigestVerify(ctx2, sig, siglen, (const uint8_t *)"hellO", 6), 1);
	kr_signing_clear(&s);
	kr_hsm_key_free(k);
}

Test(hsm, every_scheme_signs_and_verifies_in_software)
{
	kr_hsm *h = open_token("t");
	sign_and_verify(h, KR_KEY_EC_P256, 0);
	sign_and_verify(h, KR_KEY_EC_P384, 0);
	sign_and_verify(h, KR_KEY_RSA_2048, 0);
	sign_and_verify(h, KR_KEY_RSA_2048, 1);
	sign_and_verify(h, KR_KEY_ED25519, 0);
	kr_hsm_close(h);
}

Test(hsm, generated_key_attributes)
{
	kr_hsm *h = open_token("t");
	kr_hsm_key *k = NULL;
	KR_ASSERT_OK(kr_hsm_keygen(h, "pkcs11:token=t;object=a", KR_KEY_EC_P256, &k));
	kr_key_attrs a;
	kr_hsm_key_attrs(h, k, &a);
	cr_assert(a.sensitive == 1 && a.extractable == 0 && a.always_sensitive == 1 &&
		  a.never_extractable == 1 && a.local == 1 && a.sign == 1 && a.decrypt == 0 &&
		  a.unwrap == 0 && a.derive == 0 && a.private_ == 1 && a.token == 1 &&
		  a.wrap_with_trusted == 0);
	/* one to back up: extractable, and only under a trusted key */
	kr_hsm_key *b = NULL;
	KR_ASSERT_OK(kr_hsm_keygen_backup(h, "pkcs11:token=t;object=b", KR_KEY_EC_P256, &b));
	kr_key_attrs ba;
	kr_hsm_key_attrs(h, b, &ba);
	cr_assert(ba.sensitive == 1 && ba.extractable == 1 && ba.wrap_with_trusted == 1 &&
		  ba.never_extractable == 0 && ba.always_sensitive == 1 && ba.local == 1);
	char text[512];
	kr_key_attrs_format(&ba, text, sizeof text);
	cr_assert(strstr(text, "CKA_EXTRACTABLE=true") &&
			  strstr(text, "CKA_WRAP_WITH_TRUSTED=true"),
		  "%s", text);
	kr_hsm_key_free(b);
	size_t idlen;
	kr_hsm_key_id(k, &idlen);
	cr_assert_eq(idlen, 16);
	/* Found again by label and by id. */
	kr_hsm_key *again = NULL;
	KR_ASSERT_OK(kr_hsm_key_find(h, "pkcs11:token=t;object=a", &again));
	cr_assert(EVP_PKEY_eq(kr_hsm_key_public(k), kr_hsm_key_public(again)) == 1);
	kr_hsm_key_free(again);
	KR_ASSERT_ERR(kr_hsm_keygen(h, "pkcs11:token=t;object=a", KR_KEY_EC_P256, &again),
		      KR_EEXIST, "already holds an object labelled 'a'");
	KR_ASSERT_OK(kr_hsm_key_destroy(h, k));
	KR_ASSERT_ERR(kr_hsm_key_find(h, "pkcs11:token=t;object=a", &again), KR_EHSM,
		      "no such private key");
	kr_hsm_key_free(k);
	kr_hsm_close(h);
}

/* k copied to a session object, which signs: verified in software. */
static void copy_and_sign(kr_hsm *h, kr_hsm_key *k)
{
	int copied = 0;
	KR_ASSERT_OK(kr_hsm_key_session_copy(h, k, &copied));
	cr_assert_eq(copied, 1, "SoftHSM copies keys to session objects");
	uint8_t digest[32] = {1, 2, 3}, sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	KR_ASSERT_OK(kr_hsm_sign(kr_hsm_main_session(h), k, KR_SIG_ECDSA, EVP_sha256(), digest,
				 sizeof digest, sig, &siglen));
	KR_AUTO(EVP_PKEY_CTX) vctx = EVP_PKEY_CTX_new(kr_hsm_key_public(k), NULL);
	cr_assert(EVP_PKEY_verify_init(vctx) == 1);
	cr_assert_eq(EVP_PKEY_verify(vctx, sig, siglen, digest, sizeof digest), 1);
}

/* A key made for backup signs through a session copy too, and the copy is
 * not extractable, even under a trusted key. */
Test(hsm, session_copy_of_a_backup_key_is_unextractable)
{
	kr_hsm_opts o = {.pin = kr_test_token("t")};
	kr_hsm *h = NULL;
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=t", &o, &h));
	kr_hsm_key *k = NULL;
	KR_ASSERT_OK(kr_hsm_keygen_backup(h, "pkcs11:token=t;object=b", KR_KEY_EC_P256, &k));
	copy_and_sign(h, k);
	kr_hsm_key_free(k);
	kr_hsm_close(h);
}

/* The copy signs (verified in software), is as sensitive and unextractable
 * as the token object, does not make the key ambiguous, and is gone with
 * the session. */
Test(hsm, session_copy_signs_and_stays_on_the_token)
{
	kr_hsm_opts o = {.pin = kr_test_token("t")};
	kr_hsm *h = NULL;
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=t", &o, &h));
	kr_hsm_key *k = NULL;
	KR_ASSERT_OK(kr_hsm_keygen(h, "pkcs11:token=t;object=c", KR_KEY_EC_P256, &k));
	copy_and_sign(h, k);
	uint8_t digest[32] = {1, 2, 3}, raw[KR_HSM_MAX_SIG];
	size_t rawlen = 0;
	KR_ASSERT_OK(kr_hsm_sign(kr_hsm_main_session(h), k, KR_SIG_ECDSA_RAW, EVP_sha256(), digest,
				 sizeof digest, raw, &rawlen));
	cr_assert_eq(rawlen, 64, "r || s for P-256");

	kr_hsm_key *again = NULL;
	KR_ASSERT_OK(kr_hsm_key_find(h, "pkcs11:token=t;object=c", &again));
	kr_key_attrs a;
	kr_hsm_key_attrs(h, again, &a);
	cr_assert(a.token == 1 && a.sensitive == 1 && a.extractable == 0);
	kr_hsm_key_free(again);
	kr_hsm_key_free(k);
	kr_hsm_close(h);

	/* Only the token object outlives the session (counted by pkcs11-tool,
	 * its PIN passed in the environment). */
	char pin[64] = "", cmd[512];
	FILE *pf = fopen(o.pin.file, "r");
	cr_assert(pf && fgets(pin, sizeof pin, pf));
	fclose(pf);
	pin[strcspn(pin, "\n")] = '\0';
	setenv("KR_UNIT_PIN", pin, 1);
	snprintf(cmd, sizeof cmd,
		 "pkcs11-tool --module %s --token-label t --login --pin env:KR_UNIT_PIN "
		 "--list-objects --type privkey 2>/dev/null | grep -c 'label: *c$'",
		 KR_HSM_DEFAULT_MODULE);
	FILE *p = popen(cmd, "r");
	int count = -1;
	cr_assert(p && fscanf(p, "%d", &count) == 1);
	pclose(p);
	cr_assert_eq(count, 1);
}

Test(hsm, uri_and_token_refusals)
{
	kr_hsm_opts o = {.pin = kr_test_token("t")};
	kr_hsm *h = NULL;
	KR_ASSERT_ERR(kr_hsm_open("pkcs11:token=t;colour=red", &o, &h), KR_EINPUT,
		      "unknown URI attribute 'colour'");
	KR_ASSERT_ERR(kr_hsm_open("pkcs11:token=t?pin-value=x", &o, &h), KR_EINPUT,
		      "pin-value is refused");
	KR_ASSERT_ERR(kr_hsm_open("pkcs11:token=missing", &o, &h), KR_EHSM, "no token matches");
	KR_ASSERT_ERR(kr_hsm_open("pkcs11:token=t?module-path=/no/such.so", &o, &h), KR_EHSM,
		      "not found or not readable");
	KR_ASSERT_ERR(kr_hsm_open("file:///etc", &o, &h), KR_EINPUT, "not a PKCS#11 URI");
	char label[33];
	KR_ASSERT_OK(kr_hsm_uri_token_label("pkcs11:token=My%20Token;object=x", label));
	cr_assert_str_eq(label, "My Token");
}

Test(hsm, pin_sources)
{
	kr_hsm_opts o = {.pin = kr_test_token("t")};
	kr_hsm *h = NULL;
	chmod(o.pin.file, 0640);
	KR_ASSERT_ERR(kr_hsm_open("pkcs11:token=t", &o, &h), KR_EHSM, "mode 0640");
	chmod(o.pin.file, 0600);
	char uri[600];
	snprintf(uri, sizeof uri, "pkcs11:token=t?pin-source=file:%s", o.pin.file);
	kr_hsm_opts none = {0};
	KR_ASSERT_OK(kr_hsm_open(uri, &none, &h));
	kr_hsm_close(h);
	kr_hsm_opts env = {.pin = {.env = "KR_UNIT_PIN"}};
	setenv("KR_UNIT_PIN", "wrong", 1);
	KR_ASSERT_ERR(kr_hsm_open("pkcs11:token=t", &env, &h), KR_EHSM, "wrong PIN");
	setenv("KR_UNIT_PIN", "unit-test-pin", 1);
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=t", &env, &h));
	kr_hsm_close(h);
}

Test(hsm, random_serials_are_positive_and_distinct)
{
	kr_hsm *h = open_token("t");
	uint8_t a[32], b[32];
	KR_ASSERT_OK(kr_hsm_random(h, a, sizeof a));
	KR_ASSERT_OK(kr_hsm_random(h, b, sizeof b));
	cr_assert(memcmp(a, b, sizeof a) != 0);
	kr_hsm_close(h);
}

/* OpenSSL signs by itself through the bridged key: a CRL and a certificate
 * with X509_CRL_sign and X509_sign, checked with the public key. */
static void bridge_signs(kr_hsm *h, kr_key_type t)
{
	char uri[64];
	snprintf(uri, sizeof uri, "pkcs11:token=t;object=evp-%s", kr_key_type_name(t));
	kr_hsm_key *k = NULL;
	KR_ASSERT_OK(kr_hsm_keygen(h, uri, t, &k));
	EVP_PKEY *pk = NULL;
	KR_ASSERT_OK(kr_hsm_key_evp(h, k, &pk));
	cr_assert(EVP_PKEY_eq(pk, kr_hsm_key_public(k)) == 1, "same public key");

	KR_AUTO(X509_CRL) crl = X509_CRL_new();
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	cr_assert(X509_CRL_sign(crl, pk, EVP_sha256()) > 0, "X509_CRL_sign");
	cr_assert_eq(X509_CRL_verify(crl, kr_hsm_key_public(k)), 1);

	KR_AUTO(X509) x = X509_new();
	X509_set_pubkey(x, kr_hsm_key_public(k));
	cr_assert(X509_sign(x, pk, EVP_sha384()) > 0, "X509_sign");
	cr_assert_eq(X509_verify(x, kr_hsm_key_public(k)), 1);
	EVP_PKEY_free(pk);
	kr_hsm_key_free(k);
}

Test(hsm, evp_bridge_for_openssl)
{
	kr_hsm *h = open_token("t");
	bridge_signs(h, KR_KEY_EC_P256);
	bridge_signs(h, KR_KEY_EC_P384);
	bridge_signs(h, KR_KEY_RSA_2048);
	kr_hsm_key *k = NULL;
	KR_ASSERT_OK(kr_hsm_keygen(h, "pkcs11:token=t;object=ed", KR_KEY_ED25519, &k));
	EVP_PKEY *pk = NULL;
	KR_ASSERT_ERR(kr_hsm_key_evp(h, k, &pk), KR_EINTERNAL, "no hook");
	kr_hsm_key_free(k);
	kr_hsm_close(h);
}

/* Each batch worker bridges the same token key: the bridges must not share
 * state (each signs on its own session), and the public key stays as it was. */
typedef struct bridge_run {
	EVP_PKEY *pk, *pub;
	int good;
} bridge_run;

static void *sign_many(void *arg)
{
	bridge_run *r = arg;
	for (int i = 0; i < 200; i++) {
		KR_AUTO(X509_CRL) crl = X509_CRL_new();
		if (crl && X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
		    X509_CRL_sign(crl, r->pk, EVP_sha256()) > 0 &&
		    X509_CRL_verify(crl, r->pub) == 1)
			r->good++;
	}
	return NULL;
}

Test(hsm, bridges_of_one_key_sign_side_by_side)
{
	kr_hsm *h = open_token("t");
	const kr_key_type types[] = {KR_KEY_EC_P256, KR_KEY_RSA_2048};
	for (size_t t = 0; t < 2; t++) {
		char uri[64];
		snprintf(uri, sizeof uri, "pkcs11:token=t;object=side-%s",
			 kr_key_type_name(types[t]));
		kr_hsm_key *k = NULL;
		KR_ASSERT_OK(kr_hsm_keygen(h, uri, types[t], &k));
		bridge_run r[2] = {{.pub = kr_hsm_key_public(k)}, {.pub = kr_hsm_key_public(k)}};
		KR_ASSERT_OK(kr_hsm_key_evp(h, k, &r[0].pk));
		KR_ASSERT_OK(kr_hsm_key_evp(h, k, &r[1].pk));
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, sign_many, &r[1]), 0);
		sign_many(&r[0]);
		pthread_join(th, NULL);
		cr_assert_eq(r[0].good, 200, "%s: first bridge", kr_key_type_name(types[t]));
		cr_assert_eq(r[1].good, 200, "%s: second bridge", kr_key_type_name(types[t]));
		/* one freed, the other still signs */
		EVP_PKEY_free(r[0].pk);
		r[1].good = 0;
		sign_many(&r[1]);
		cr_assert_eq(r[1].good, 200);
		EVP_PKEY_free(r[1].pk);
		kr_hsm_key_free(k);
	}
	kr_hsm_close(h);
}

/* The backup ceremony's wrapping key: the SO puts it on the token as a
 * trusted key; it wraps a key made for backup (RFC 5649, unwrapped here
 * by OpenSSL in software to the same key) and refuses a plain one; the
 * user is logged in again afterwards. */
Test(hsm, backup_key_wraps_only_keys_made_for_backup)
{
	kr_pin_source pin = kr_test_token("bk");
	kr_hsm_opts o = {.pin = pin};
	kr_hsm *h = NULL;
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=bk", &o, &h));
	kr_hsm_key *b = NULL, *plain = NULL, *after = NULL;
	KR_ASSERT_OK(kr_hsm_keygen_backup(h, "pkcs11:token=bk;object=ca", KR_KEY_EC_P256, &b));
	KR_ASSERT_OK(kr_hsm_keygen(h, "pkcs11:token=bk;object=plain", KR_KEY_EC_P256, &plain));
	uint8_t key[32];
	cr_assert(RAND_bytes(key, sizeof key) == 1);
	kr_hsm_backup_key *w = NULL;
	KR_ASSERT_OK(kr_hsm_backup_key_new(h, &pin, &pin, key, &w));
	uint8_t blob[512], p8[512];
	size_t len = sizeof blob;
	KR_ASSERT_OK(kr_hsm_backup_wrap(w, b, blob, &len));
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	int n = 0, m = 0;
	cr_assert(EVP_DecryptInit_ex(c, EVP_aes_256_wrap_pad(), NULL, key, NULL) == 1);
	cr_assert(EVP_DecryptUpdate(c, p8, &n, blob, (int)len) == 1, "the wrap does not open");
	cr_assert(EVP_DecryptFinal_ex(c, p8 + n, &m) == 1);
	EVP_CIPHER_CTX_free(c);
	const unsigned char *p = p8; /* SoftHSM pads the PKCS#8 with zeros (reference 9) */
	PKCS8_PRIV_KEY_INFO *inf = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, n + m);
	EVP_PKEY *priv = inf ? EVP_PKCS82PKEY(inf) : NULL;
	cr_assert(priv && EVP_PKEY_eq(priv, kr_hsm_key_public(b)) == 1, "not the token's key");
	EVP_PKEY_free(priv);
	PKCS8_PRIV_KEY_INFO_free(inf);
	len = sizeof blob;
	KR_ASSERT_ERR(kr_hsm_backup_wrap(w, plain, blob, &len), KR_EINPUT, "not made for backup");
	kr_hsm_backup_key_destroy(w);
	/* the user's session goes on */
	KR_ASSERT_OK(kr_hsm_keygen(h, "pkcs11:token=bk;object=after", KR_KEY_EC_P256, &after));
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(p8, sizeof p8);
	kr_hsm_key_free(b);
	kr_hsm_key_free(plain);
	kr_hsm_key_free(after);
	kr_hsm_close(h);
}

/* A restore: the key wrapped on one token, unwrapped onto a fresh one
 * under the same (rebuilt) backup key, signs there, and the signature
 * verifies with the original public key. An altered backup, another
 * backup key and a label already taken are refused, leaving nothing. */
Test(hsm, backup_restored_onto_a_fresh_token_signs_as_the_original)
{
	kr_pin_source pin = kr_test_token("old");
	(void)kr_test_token("new");
	kr_hsm_opts o = {.pin = pin};
	kr_hsm *a = NULL, *b = NULL;
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=old", &o, &a));
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=new", &o, &b));
	for (int t = 0; t < 3; t++) {
		const kr_key_type types[] = {KR_KEY_EC_P256, KR_KEY_EC_P384, KR_KEY_RSA_2048};
		char uri[96], label[32];
		snprintf(label, sizeof label, "ca-%s", kr_key_type_name(types[t]));
		snprintf(uri, sizeof uri, "pkcs11:token=old;object=%s", label);
		kr_hsm_key *k = NULL, *r = NULL, *dup = NULL;
		KR_ASSERT_OK(kr_hsm_keygen_backup(a, uri, types[t], &k));
		uint8_t key[32], other[32], blob[4096];
		cr_assert(RAND_bytes(key, 32) == 1 && RAND_bytes(other, 32) == 1);
		kr_hsm_backup_key *wa = NULL, *wb = NULL, *wx = NULL;
		KR_ASSERT_OK(kr_hsm_backup_key_new(a, &pin, &pin, key, &wa));
		size_t len = sizeof blob;
		KR_ASSERT_OK(kr_hsm_backup_wrap(wa, k, blob, &len));
		kr_hsm_backup_key_destroy(wa);
		size_t idlen = 0;
		const uint8_t *id = kr_hsm_key_id(k, &idlen);
		KR_ASSERT_OK(kr_hsm_backup_key_new(b, &pin, &pin, other, &wx));
		KR_ASSERT_ERR(kr_hsm_backup_unwrap(wx, blob, len, label, id, idlen,
						   kr_hsm_key_public(k), 0, &r),
			      KR_EVERIFY, "does not open");
		kr_hsm_backup_key_destroy(wx);
		KR_ASSERT_OK(kr_hsm_backup_key_new(b, &pin, &pin, key, &wb));
		blob[len / 2] ^= 1;
		KR_ASSERT_ERR(kr_hsm_backup_unwrap(wb, blob, len, label, id, idlen,
						   kr_hsm_key_public(k), 0, &r),
			      KR_EVERIFY, "altered");
		blob[len / 2] ^= 1;
		KR_ASSERT_OK(kr_hsm_backup_unwrap(wb, blob, len, label, id, idlen,
						  kr_hsm_key_public(k), 0, &r));
		KR_ASSERT_ERR(kr_hsm_backup_unwrap(wb, blob, len, label, id, idlen,
						   kr_hsm_key_public(k), 0, &dup),
			      KR_EEXIST, "already holds");
		kr_hsm_backup_key_destroy(wb);
		kr_key_attrs at;
		kr_hsm_key_attrs(b, r, &at);
		cr_assert(at.sensitive == 1 && at.extractable == 0 && at.sign == 1 &&
				  at.decrypt == 0 && at.private_ == 1 && at.token == 1,
			  "%s", label);
		/* it signs on the new token as the original */
		kr_signing s;
		KR_ASSERT_OK(kr_signing_init(&s, b, r, 0));
		const uint8_t msg[] = "restored";
		uint8_t sig[KR_HSM_MAX_SIG];
		size_t siglen = 0;
		KR_ASSERT_OK(kr_signing_sign(&s, NULL, msg, sizeof msg, sig, &siglen));
		KR_AUTO(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
		cr_assert(EVP_DigestVerifyInit(ctx, NULL, s.alg.md, NULL, kr_hsm_key_public(k)) >
			  0);
		cr_assert_eq(EVP_DigestVerify(ctx, sig, siglen, msg, sizeof msg), 1, "%s", label);
		kr_signing_clear(&s);
		kr_hsm_key_free(k);
		kr_hsm_key_free(r);
	}
	/* SoftHSM wraps no Ed25519 key: said as that, not as a key not made for backup */
	kr_hsm_key *ed = NULL;
	KR_ASSERT_OK(kr_hsm_keygen_backup(a, "pkcs11:token=old;object=ed", KR_KEY_ED25519, &ed));
	uint8_t key[32] = {1}, blob[512];
	kr_hsm_backup_key *w = NULL;
	KR_ASSERT_OK(kr_hsm_backup_key_new(a, &pin, &pin, key, &w));
	size_t len = sizeof blob;
	KR_ASSERT_ERR(kr_hsm_backup_wrap(w, ed, blob, &len), KR_EHSM, "cannot wrap key 'ed'");
	kr_hsm_backup_key_destroy(w);
	kr_hsm_key_free(ed);
	kr_hsm_close(a);
	kr_hsm_close(b);
}
