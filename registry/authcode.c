#include "authcode.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Fetched once: a bulk transfer checks a code per device. */
static EVP_KDF *hkdf;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;
static void fetch_hkdf(void) { hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL); }

static KR_MUST_USE kr_err derive(const uint8_t code[KR_CODE_BYTES], const char *device,
				 const uint8_t salt[16], uint8_t out[32])
{
	char info[128];
	int n = snprintf(info, sizeof info, "keyrite auth code v1 %s", device);
	KR_ENSURE(n > 0 && (size_t)n < sizeof info, KR_EINPUT, "device id too long");
	pthread_once(&hkdf_once, fetch_hkdf);
	EVP_KDF_CTX *ctx = hkdf ? EVP_KDF_CTX_new(hkdf) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)code, KR_CODE_BYTES),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 16),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, (size_t)n),
		OSSL_PARAM_construct_end(),
	};
	int ok = ctx && EVP_KDF_derive(ctx, out, 32, params) == 1;
	EVP_KDF_CTX_free(ctx);
	KR_OSSL(ok, KR_EINTERNAL, "HKDF of an auth code");
	return kr_ok();
}

KR_MUST_USE kr_err kr_authcode_new(kr_hsm *h, const char *device, char text[KR_CODE_TEXT + 1],
				   uint8_t salt[16], uint8_t hash[32])
{
	uint8_t rnd[KR_CODE_BYTES + 16];
	KR_TRY(kr_hsm_random(h, rnd, sizeof rnd));
	memcpy(salt, rnd + KR_CODE_BYTES, 16);
	kr_err e = derive(rnd, device, salt, hash);
	char hex[2 * KR_CODE_BYTES + 1];
	kr_hex(rnd, KR_CODE_BYTES, hex);
	OPENSSL_cleanse(rnd, sizeof rnd);
	snprintf(text, KR_CODE_TEXT + 1, "%.8s-%.8s-%.8s-%.8s", hex, hex + 8, hex + 16, hex + 24);
	OPENSSL_cleanse(hex, sizeof hex);
	return e;
}

static int nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

KR_MUST_USE kr_err kr_authcode_matches(const char *code, const char *device, const uint8_t salt[16],
				       const uint8_t hash[32], int *yes)
{
	*yes = 0;
	uint8_t raw[KR_CODE_BYTES];
	size_t n = 0;
	for (const char *p = code; *p; p++) {
		if (*p == '-' || *p == ' ')
			continue;
		int v = nibble((unsigned char)*p);
		if (v < 0 || n == (size_t)2 * KR_CODE_BYTES)
			return kr_ok();
		if (n % 2 == 0)
			raw[n / 2] = (uint8_t)(v << 4);
		else
			raw[n / 2] |= (uint8_t)v;
		n++;
	}
	if (n != (size_t)2 * KR_CODE_BYTES)
		return kr_ok();
	uint8_t got[32];
	kr_err e = derive(raw, device, salt, got);
	OPENSSL_cleanse(raw, sizeof raw);
	KR_TRY(e);
	*yes = CRYPTO_memcmp(got, hash, 32) == 0;
	return kr_ok();
}

/* The CBC-MAC of the two blocks of SHA-256(device, generation) under the
 * token's AES key (CKM_AES_CBC_PAD from a zero IV: the second ciphertext
 * block). CBC-MAC is a pseudo-random function on messages of one fixed
 * length, which these are; the key never leaves the token. */
KR_MUST_USE kr_err kr_enrollment_secret(kr_hsm *h, const char *key_label, const char *device,
					int64_t gen, char text[KR_CODE_TEXT + 1])
{
	char what[160];
	int n = snprintf(what, sizeof what, "keyrite enrollment secret v1 %s %lld", device,
			 (long long)gen);
	KR_ENSURE(n > 0 && (size_t)n < sizeof what, KR_EINPUT, "device id too long");
	uint8_t msg[32], iv[16] = {0}, out[64];
	KR_OSSL(EVP_Digest(what, (size_t)n, msg, NULL, EVP_sha256(), NULL) == 1, KR_EINTERNAL,
		"SHA-256");
	kr_hsm_session *s = kr_hsm_main_session(h);
	size_t got = sizeof out, tail = 0;
	KR_TRY(kr_hsm_encrypt_begin(s, key_label, iv));
	kr_err e = kr_hsm_encrypt_update(s, msg, sizeof msg, out, &got);
	if (kr_failed(&e)) {
		kr_hsm_encrypt_cancel(s);
		return e;
	}
	tail = sizeof out - got;
	KR_TRY(kr_hsm_encrypt_end(s, out + got, &tail));
	KR_ENSURE(got + tail >= 32, KR_EHSM, "AES key '%s': %zu bytes of ciphertext", key_label,
		  got + tail);
	char hex[2 * KR_CODE_BYTES + 1];
	kr_hex(out + 16, KR_CODE_BYTES, hex);
	OPENSSL_cleanse(out, sizeof out);
	snprintf(text, KR_CODE_TEXT + 1, "%.8s-%.8s-%.8s-%.8s", hex, hex + 8, hex + 16, hex + 24);
	OPENSSL_cleanse(hex, sizeof hex);
	return kr_ok();
}
