/* Scope-bound resources: `KR_AUTO(X509) cert = NULL;` frees cert when it goes
 * out of scope, so early returns through the guard macros never leak. */
#ifndef KR_CLEANUP_H
#define KR_CLEANUP_H

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#define KR_AUTO(type) __attribute__((cleanup(kr_free_##type))) type *

#define KR_DEFINE_FREE(type, fn)                                                                   \
	static inline void kr_free_##type(type **p)                                                \
	{                                                                                          \
		if (*p)                                                                            \
			fn(*p);                                                                    \
	}

KR_DEFINE_FREE(X509, X509_free)
KR_DEFINE_FREE(X509_CRL, X509_CRL_free)
KR_DEFINE_FREE(X509_REQ, X509_REQ_free)
KR_DEFINE_FREE(X509_NAME, X509_NAME_free)
KR_DEFINE_FREE(X509_EXTENSION, X509_EXTENSION_free)
KR_DEFINE_FREE(X509_STORE, X509_STORE_free)
KR_DEFINE_FREE(X509_STORE_CTX, X509_STORE_CTX_free)
KR_DEFINE_FREE(EVP_PKEY, EVP_PKEY_free)
KR_DEFINE_FREE(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
KR_DEFINE_FREE(EVP_MD_CTX, EVP_MD_CTX_free)
KR_DEFINE_FREE(BIO, BIO_free_all)
KR_DEFINE_FREE(BIGNUM, BN_free)
KR_DEFINE_FREE(ASN1_INTEGER, ASN1_INTEGER_free)
KR_DEFINE_FREE(ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
KR_DEFINE_FREE(ASN1_OBJECT, ASN1_OBJECT_free)
KR_DEFINE_FREE(ASN1_TIME, ASN1_TIME_free)
KR_DEFINE_FREE(AUTHORITY_KEYID, AUTHORITY_KEYID_free)

/* Buffers from OpenSSL (i2d_*, OPENSSL_malloc). */
static inline void kr_free_uint8_t(unsigned char **p) { OPENSSL_free(*p); }

#endif
