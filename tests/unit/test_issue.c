/* Batch issuance parts: names and profiles, CSR parsing, the fast
 * certificate builder (checked against the full lint), the store. */
#include "../../ca/csr.h"
#include "../../ca/issue.h"
#include "../../ca/leaf.h"
#include "../../ca/lint.h"
#include "../../ca/revoke.h"
#include "../../store/store.h"
#include "../../policy/config.h"
#include "../../util/cleanup.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <openssl/crmf.h>
#include <openssl/x509v3.h>
#include <string.h>

TestSuite(issue, .fini = kr_test_cleanup);

Test(issue, dns_names_and_device_ids)
{
	KR_ASSERT_OK(kr_dns_name_check("11.302220601105021._device.iotregistry.ca"));
	KR_ASSERT_OK(kr_dns_name_check("a-b.example"));
	KR_ASSERT_ERR(kr_dns_name_check("a..b"), KR_EPOLICY, "label of 0 octets");
	KR_ASSERT_ERR(kr_dns_name_check("-a.example"), KR_EPOLICY, "begins or ends with '-'");
	KR_ASSERT_ERR(kr_dns_name_check("a_b.example"), KR_EPOLICY, "character '_'");
	char long_label[80];
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".ca");
	KR_ASSERT_ERR(kr_dns_name_check(long_label), KR_EPOLICY, "label of 64 octets");
	KR_ASSERT_OK(kr_device_id_check("302220601105021"));
	KR_ASSERT_ERR(kr_device_id_check(""), KR_EPOLICY, "1 to 63");
	KR_ASSERT_ERR(kr_device_id_check("a.b"), KR_EPOLICY, "letters, digits and hyphens");
	KR_ASSERT_ERR(kr_device_id_check("-1"), KR_EPOLICY, "hyphen");
}

Test(issue, profile_names)
{
	kr_profile p = {.identity = KR_ID_DEVICE,
			.name_template = "{profile_id}.{device_id}._device.{zone}",
			.zone = "iotregistry.ca"};
	char name[256];
	KR_ASSERT_OK(kr_profile_device_name(&p, "302220601105021", 15, name, sizeof name));
	cr_assert_str_eq(name, "15.302220601105021._device.iotregistry.ca");
	KR_ASSERT_ERR(kr_profile_device_name(&p, "302220601105021", 15, name, 20), KR_EPOLICY,
		      "too long");
	kr_profile s = {.identity = KR_ID_DNS, .npermitted = 1, .permitted = {"parkoserv.ca"}};
	KR_ASSERT_OK(kr_profile_permits(&s, "parkoserv.ca"));
	KR_ASSERT_OK(kr_profile_permits(&s, "API.ParkoServ.ca"));
	KR_ASSERT_ERR(kr_profile_permits(&s, "evilparkoserv.ca"), KR_EPOLICY, "not within");
	KR_ASSERT_ERR(kr_profile_permits(&s, "*.parkoserv.ca"), KR_EPOLICY, "wildcards");
}

static const char base_config[] =
	"[keyrite]\nstore = s.db\ncas = d\n"
	"[ca_d]\ncertificate = ca.pem\nuri = pkcs11:token=t;object=k\n"
	"crl_next_update_days = 7\nprofiles = dev\n"
	"[profile_dev]\nidentity = device\nname = {profile_id}.{device_id}.{zone}\n"
	"zone = example.ca\nkey_types = ec-p256\nvalidity_days = 30\nextensions = ext\n";

Test(issue, config_checks)
{
	kr_config *c = NULL;
	char text[2048];
	snprintf(text, sizeof text, "%s[ext]\nkeyUsage = critical, digitalSignature\n",
		 base_config);
	KR_ASSERT_OK(kr_config_load(kr_test_file("ok.cnf", text), &c));
	const kr_ca_conf *ca = NULL;
	const kr_profile *p = NULL;
	KR_ASSERT_OK(kr_config_ca(c, "d", &ca));
	KR_ASSERT_OK(kr_config_profile(c, ca, "dev", &p));
	cr_assert_eq(p->identity, KR_ID_DEVICE);
	cr_assert_eq(ca->workers, 2);
	KR_ASSERT_ERR(kr_config_profile(c, ca, "other", &p), KR_EUSAGE, "does not issue");
	KR_ASSERT_ERR(kr_config_ca(c, "nope", &ca), KR_EUSAGE, "no CA named");
	kr_config_free(c);
	snprintf(text, sizeof text, "%s[ext]\nsubjectAltName = DNS:x.example.ca\n", base_config);
	KR_ASSERT_ERR(kr_config_load(kr_test_file("san.cnf", text), &c), KR_EINPUT,
		      "keyrite sets this extension itself");
	snprintf(text, sizeof text, "%s[ext]\nkeyUsage = sparkle\n", base_config);
	KR_ASSERT_ERR(kr_config_load(kr_test_file("ku.cnf", text), &c), KR_EINPUT,
		      "[ext] keyUsage");
	snprintf(text, sizeof text,
		 "%shonour = subjectAltName\n[ext]\nkeyUsage = critical, "
		 "digitalSignature\n",
		 base_config);
	KR_ASSERT_ERR(kr_config_load(kr_test_file("h.cnf", text), &c), KR_EINPUT,
		      "only ask for keyUsage or extendedKeyUsage");
}

/* ---- requests ------------------------------------------------------------------ */

static uint8_t *make_csr(EVP_PKEY *k, const char *cn, const char *san, const char *bc, int ver,
			 int *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_REQ_set_version(req, ver);
	if (cn)
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_pubkey(req, k);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	if (san)
		sk_X509_EXTENSION_push(exts,
				       X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
	if (bc)
		sk_X509_EXTENSION_push(exts,
				       X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, bc));
	if (sk_X509_EXTENSION_num(exts))
		X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_sign(req, k, EVP_sha256());
	uint8_t *der = NULL;
	*len = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	return der;
}

Test(issue, csr_parse_extracts_what_policy_needs)
{
	KR_AUTO(EVP_PKEY) k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	int len = 0;
	KR_AUTO(uint8_t)
	der = make_csr(k, "302220601105021", "DNS:a.example,DNS:b.example", NULL, 0, &len);
	kr_csr c;
	KR_ASSERT_OK(kr_csr_parse(NULL, der, (size_t)len, &c));
	cr_assert_eq(c.key_type, KR_KEY_EC_P256);
	cr_assert_str_eq(c.cn, "302220601105021");
	cr_assert_eq(c.ndns, 2);
	cr_assert_str_eq(c.dns[1], "b.example");
	/* The SPKI is the key's, byte for byte; the SKI is method 1. */
	KR_AUTO(uint8_t) spki = NULL;
	int n = i2d_PUBKEY(k, &spki);
	cr_assert(n == c.spki_len && memcmp(spki, c.spki, (size_t)n) == 0);
	KR_AUTO(X509) x = X509_new();
	X509_set_pubkey(x, k);
	unsigned char sha1[20];
	unsigned sl = 0;
	X509_pubkey_digest(x, EVP_sha1(), sha1, &sl);
	cr_assert(memcmp(sha1, c.key_sha1, 20) == 0);
	kr_csr_clear(&c);

	der[len - 1] ^= 1;
	KR_ASSERT_ERR(kr_csr_parse(NULL, der, (size_t)len, &c), KR_EVERIFY, "bad signature");
	KR_ASSERT_ERR(kr_csr_parse(NULL, der, (size_t)len - 3, &c), KR_EINPUT, "malformed DER");
	OPENSSL_free(der);
	der = make_csr(k, "x", NULL, "critical,CA:TRUE", 0, &len);
	KR_ASSERT_ERR(kr_csr_parse(NULL, der, (size_t)len, &c), KR_EPOLICY, "CA:TRUE requested");
	OPENSSL_free(der);
	der = make_csr(k, "x", NULL, NULL, 2, &len);
	KR_ASSERT_ERR(kr_csr_parse(NULL, der, (size_t)len, &c), KR_EINPUT, "version");
}

Test(issue, serial_parse)
{
	uint8_t s[20];
	size_t n = 0;
	KR_ASSERT_OK(kr_serial_parse("0A:1b:FF", s, &n));
	cr_assert(n == 3 && s[0] == 0x0a && s[1] == 0x1b && s[2] == 0xff);
	KR_ASSERT_ERR(kr_serial_parse("xyz", s, &n), KR_EUSAGE, "hexadecimal");
	KR_ASSERT_ERR(kr_serial_parse("00", s, &n), KR_EUSAGE, "not a serial");
}

/* ---- the builder: fast-path certificates pass the full lint --------------------- */

static X509 *test_ca(EVP_PKEY *key)
{
	X509 *ca = X509_new();
	X509_set_version(ca, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(ca), 7);
	X509_NAME *n = X509_get_subject_name(ca);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"Test CA", -1, -1,
				   0);
	X509_set_issuer_name(ca, n);
	X509_gmtime_adj(X509_getm_notBefore(ca), 0);
	X509_gmtime_adj(X509_getm_notAfter(ca), 86400L * 365);
	X509_set_pubkey(ca, key);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
	const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE,pathlen:0"},
				 {"keyUsage", "critical,keyCertSign,cRLSign"},
				 {"subjectKeyIdentifier", "hash"},
				 {"nameConstraints", "critical,permitted;DNS:example.ca"}};
	for (size_t i = 0; i < 4; i++) {
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
		X509_add_ext(ca, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(ca, key, EVP_sha256());
	return ca;
}

Test(issue, leaf_certificates_pass_the_full_lint)
{
	kr_config *c = NULL;
	char text[2048];
	snprintf(text, sizeof text,
		 "%s[ext]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, "
		 "digitalSignature\nextendedKeyUsage = clientAuth\n",
		 base_config);
	KR_ASSERT_OK(kr_config_load(kr_test_file("leaf.cnf", text), &c));
	const kr_ca_conf *cac = NULL;
	const kr_profile *p = NULL;
	KR_ASSERT_OK(kr_config_ca(c, "d", &cac));
	KR_ASSERT_OK(kr_config_profile(c, cac, "dev", &p));
	kr_signing s;
	KR_ASSERT_OK(kr_signing_init_draft(&s, KR_KEY_EC_P256, 0));
	KR_AUTO(X509) ca = test_ca(s.throwaway);
	kr_leaf *l = NULL;
	KR_ASSERT_OK(kr_leaf_new(p, kr_config_nconf(c), ca, &s, &l));

	KR_AUTO(EVP_PKEY) k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	int len = 0;
	KR_AUTO(uint8_t) der = make_csr(k, "42", NULL, NULL, 0, &len);
	kr_csr csr;
	KR_ASSERT_OK(kr_csr_parse(NULL, der, (size_t)len, &csr));
	char name[256];
	KR_ASSERT_OK(kr_profile_device_name(p, "42", 11, name, sizeof name));
	KR_ASSERT_OK(kr_leaf_check_name(l, name));
	KR_ASSERT_ERR(kr_leaf_check_name(l, "x.other.ca"), KR_EPOLICY, "name constraints");
	const char *dns[] = {name};
	KR_AUTO(ASN1_INTEGER) serial = ASN1_INTEGER_new();
	ASN1_INTEGER_set(serial, 0x0102030405060708L);
	KR_VALIDITY *v = NULL;
	KR_ASSERT_OK(kr_leaf_validity(l, time(NULL), &v));
	kr_leaf_req r = {&csr, name, dns, 1, serial, v};
	KR_AUTO(uint8_t) tbs = NULL;
	KR_AUTO(uint8_t) cert = NULL;
	int tbslen = 0, certlen = 0;
	uint8_t sig[KR_HSM_MAX_SIG];
	size_t siglen = 0;
	KR_ASSERT_OK(kr_leaf_tbs(l, &r, &tbs, &tbslen));
	KR_ASSERT_OK(kr_signing_sign_draft(&s, tbs, (size_t)tbslen, sig, &siglen));
	KR_ASSERT_OK(kr_leaf_finish(l, tbs, tbslen, sig, siglen, &cert, &certlen));
	const unsigned char *q = cert;
	KR_AUTO(X509) x = d2i_X509(NULL, &q, certlen);
	cr_assert(x && X509_verify(x, s.throwaway) == 1, "the certificate verifies");
	KR_ASSERT_OK(kr_lint_cert(x, ca, KR_ROLE_LEAF, 1));
	cr_assert(EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1, "the request's key");
	cr_assert(X509_check_host(x, name, 0, 0, NULL) == 1, "the SAN");
	ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(KR_VALIDITY));
	kr_csr_clear(&csr);
	kr_leaf_free(l);
	kr_signing_clear(&s);
	kr_config_free(c);
}

/* ---- the store ------------------------------------------------------------------- */

static kr_cert_row row(int64_t ca, int64_t batch, const uint8_t *serial, uint8_t csr_byte)
{
	kr_cert_row r = {.ca = ca,
			 .batch = batch,
			 .serial = serial,
			 .serial_len = 16,
			 .profile = "dev",
			 .input = "in"};
	memset(r.csr_sha256, csr_byte, 32);
	return r;
}

static KR_MUST_USE kr_err count_entry(const kr_audit_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return kr_ok();
}

Test(issue, store_reserves_records_and_refuses_reuse)
{
	char path[512];
	snprintf(path, sizeof path, "%s/s.db", kr_test_dir());
	kr_store *s = NULL;
	KR_ASSERT_OK(kr_store_open(path, 1, 0, &s));
	KR_AUTO(EVP_PKEY) key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	KR_AUTO(X509) ca = test_ca(key);
	int64_t caid = 0, batch = 0;
	KR_ASSERT_OK(kr_store_register_ca(s, "d", ca, &caid));
	KR_ASSERT_OK(kr_store_start_batch(s, caid, "dev", &batch));
	uint8_t serial[16] = {0x11, 2, 3};
	kr_cert_row r = row(caid, batch, serial, 0xaa);
	KR_TXN(t);
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_reserve(s, &r, 1));
	KR_ASSERT_OK(kr_txn_commit(&t));
	/* No serial twice; no CSR twice under a profile. */
	kr_cert_row again = row(caid, batch, serial, 0xbb);
	KR_ASSERT_ERR(kr_store_reserve(s, &again, 1), KR_EIO, "UNIQUE");
	uint8_t other[16] = {0x22};
	kr_cert_row dup = row(caid, batch, other, 0xaa);
	KR_ASSERT_ERR(kr_store_reserve(s, &dup, 1), KR_EIO, "UNIQUE");
	/* A killed run's reservation is retired, with an audit entry. */
	long n = 0;
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_abandon_pending(s, caid, &n));
	KR_ASSERT_OK(kr_txn_commit(&t));
	cr_assert_eq(n, 1);
	kr_prior prior;
	KR_ASSERT_OK(
		kr_store_priors(s, caid, "dev", (const uint8_t(*)[32]) & r.csr_sha256, 1, &prior));
	cr_assert_eq(prior.found, 0, "an abandoned request may be issued again");
	/* Issue properly, then find it. */
	uint8_t serial2[16] = {0x33};
	kr_cert_row r2 = row(caid, batch, serial2, 0xaa);
	r2.der = (const uint8_t *)"DER";
	r2.der_len = 3;
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_reserve(s, &r2, 1));
	KR_ASSERT_OK(kr_store_complete(s, &r2, 1));
	KR_ASSERT_OK(kr_txn_commit(&t));
	KR_ASSERT_OK(
		kr_store_priors(s, caid, "dev", (const uint8_t(*)[32]) & r2.csr_sha256, 1, &prior));
	cr_assert(prior.found && !strcmp(prior.status, "valid") && prior.der_len == 3);
	kr_prior_clear(&prior);
	/* Revocation is recorded once. */
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_revoke(s, caid, serial2, 16, 1, 1000));
	KR_ASSERT_ERR(kr_store_revoke(s, caid, serial2, 16, 1, 1000), KR_EINPUT,
		      "no valid certificate");
	KR_ASSERT_OK(kr_txn_commit(&t));
	kr_audit_head head;
	KR_ASSERT_OK(kr_store_audit_head(s, &head));
	cr_assert_eq(head.seq, 3, "abandon, issue, revoke");
	cr_assert_eq(head.node_seq, 3, "one node's chain: its numbers are the store's");
	/* A serial's history is its own, not that of one it begins. */
	int entries = 0;
	KR_ASSERT_OK(kr_store_history(s, serial2, 16, count_entry, &entries));
	cr_assert_eq(entries, 2, "issue and revoke");
	entries = 0;
	KR_ASSERT_OK(kr_store_history(s, serial2, 15, count_entry, &entries));
	cr_assert_eq(entries, 0, "a 15-octet prefix of the serial has no history");
	KR_ASSERT_OK(kr_store_check(s));
	kr_store_close(s);
}

Test(issue, store_profile_ids_count_per_transaction)
{
	char path[512];
	snprintf(path, sizeof path, "%s/ids.db", kr_test_dir());
	kr_store *s = NULL;
	KR_ASSERT_OK(kr_store_open(path, 1, 0, &s));
	int64_t a = 0, b = 0, c = 0;
	KR_TXN(t);
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_take_profile_id(s, &a));
	KR_ASSERT_OK(kr_store_take_profile_id(s, &b));
	KR_ASSERT_OK(kr_txn_commit(&t));
	cr_assert_eq(a, 11, "the registry's ids start at 11");
	cr_assert_eq(b, 12);
	/* A rolled-back transaction's ids were never used: they come again. */
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_take_profile_id(s, &c));
	kr_txn_end(&t);
	cr_assert_eq(c, 13);
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_take_profile_id(s, &c));
	KR_ASSERT_OK(kr_txn_commit(&t));
	cr_assert_eq(c, 13);
	/* What was committed is in the file. */
	kr_store_close(s);
	KR_ASSERT_OK(kr_store_open(path, 0, 0, &s));
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_take_profile_id(s, &c));
	KR_ASSERT_OK(kr_txn_commit(&t));
	cr_assert_eq(c, 14);
	kr_store_close(s);
}

Test(issue, store_refuses_foreign_files)
{
	char *f = kr_test_file("notes.db", "these are not the rows you are looking for\n");
	kr_store *s = NULL;
	KR_ASSERT_ERR(kr_store_open(f, 1, 0, &s), KR_EINPUT, "notes.db");
	KR_ASSERT_ERR(kr_store_open("/nonexistent/x.db", 0, 0, &s), KR_EINPUT, "no such store");
}

Test(issue, summary_groups_reasons_and_caps_their_number)
{
	kr_issue_summary s = {0};
	kr_issue_summary_add(&s, "bad signature: proof of possession fails");
	kr_issue_summary_add(&s, "bad signature: proof of possession fails");
	kr_issue_summary_add(&s, "key too weak: RSA 1024 bits (at least 2048)");
	cr_assert_eq(s.nreasons, 2);
	cr_assert_str_eq(s.reasons[0].reason, "bad signature");
	cr_assert_eq(s.reasons[0].n, 2);
	cr_assert_str_eq(s.reasons[1].reason, "key too weak");
	for (int i = 0; i < 50; i++) {
		char r[32];
		snprintf(r, sizeof r, "reason %d", i);
		kr_issue_summary_add(&s, r);
	}
	kr_issue_summary_add(&s, "bad signature: again");
	cr_assert_eq(s.nreasons, KR_MAX_REASONS);
	cr_assert_str_eq(s.reasons[KR_MAX_REASONS - 1].reason, "other reasons");
	long total = 0;
	for (int i = 0; i < s.nreasons; i++)
		total += s.reasons[i].n;
	cr_assert_eq(total, 54, "every rejection counted once");
	cr_assert_eq(s.reasons[0].n, 3, "a known reason still counts under its own name");
}

Test(issue, profile_identity_decisions)
{
	kr_profile dev = {
		.name = "device", .identity = KR_ID_DEVICE, .key_types = 1u << KR_KEY_EC_P256};
	char id[80] = "", name[256] = "";
	kr_request_names bare = {"302220601105021", NULL, 0, NULL, 0, NULL};
	KR_ASSERT_OK(kr_profile_identity(&dev, &bare, id, sizeof id, name, sizeof name));
	cr_assert_str_eq(id, "302220601105021");
	kr_request_names mismatch = {"111", NULL, 0, NULL, 0, "222"};
	KR_ASSERT_ERR(kr_profile_identity(&dev, &mismatch, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "identity mismatch");
	kr_request_names none = {"", NULL, 0, NULL, 0, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&dev, &none, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "no device id");
	KR_ASSERT_OK(kr_profile_key_check(&dev, KR_KEY_EC_P256));
	KR_ASSERT_ERR(kr_profile_key_check(&dev, KR_KEY_RSA_2048), KR_EPOLICY,
		      "rsa-2048 is not allowed by profile device");

	kr_profile srv = {.name = "server",
			  .identity = KR_ID_DNS,
			  .max_names = 1,
			  .npermitted = 1,
			  .permitted = {"parkoserv.ca"}};
	char *two[] = {"a.parkoserv.ca", "b.parkoserv.ca"};
	kr_request_names one = {"", two, 1, NULL, 0, NULL};
	KR_ASSERT_OK(kr_profile_identity(&srv, &one, id, sizeof id, name, sizeof name));
	cr_assert_str_eq(name, "a.parkoserv.ca");
	kr_request_names both = {"", two, 2, NULL, 0, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&srv, &both, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "too many names");
	kr_profile cn = {.identity = KR_ID_CN};
	KR_ASSERT_ERR(kr_profile_identity(&cn, &none, id, sizeof id, name, sizeof name), KR_EPOLICY,
		      "no common name");

	/* Every requested name is issued as asked or the request is refused;
	 * none is dropped (a device CSR asking for www.bank.example was issued
	 * without it). */
	char *bank[] = {"www.bank.example"};
	char *ip[] = {"IP Address:192.0.2.1"};
	kr_request_names dev_san = {"302220601105021", bank, 1, NULL, 0, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&dev, &dev_san, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "SAN not permitted: DNS:www.bank.example (profile device names");
	kr_request_names cn_san = {"firmware", bank, 1, NULL, 0, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&cn, &cn_san, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "SAN not permitted: DNS:www.bank.example");
	kr_request_names srv_out = {"", bank, 1, NULL, 0, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&srv, &srv_out, id, sizeof id, name, sizeof name),
		      KR_EPOLICY,
		      "SAN not permitted: DNS:www.bank.example (not within profile server's");
	kr_request_names srv_ip = {"", two, 1, ip, 1, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&srv, &srv_ip, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "SAN not permitted: IP Address:192.0.2.1");
	kr_request_names dev_ip = {"302220601105021", NULL, 0, ip, 1, NULL};
	KR_ASSERT_ERR(kr_profile_identity(&dev, &dev_ip, id, sizeof id, name, sizeof name),
		      KR_EPOLICY, "SAN not permitted: IP Address:192.0.2.1");
}

/* A CRMF template (RFC 4211 5), as a CMP ir carries it: only a proven
 * source may hand one in (its proof of possession checked elsewhere); its
 * key is checked as a CSR's. */
static int template_der(EVP_PKEY *key, const char *cn, unsigned char **der)
{
	OSSL_CRMF_CERTTEMPLATE *t = OSSL_CRMF_CERTTEMPLATE_new();
	X509_NAME *name = X509_NAME_new();
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	int len = t && OSSL_CRMF_CERTTEMPLATE_fill(t, key, name, NULL, NULL)
			  ? i2d_OSSL_CRMF_CERTTEMPLATE(t, der)
			  : -1;
	X509_NAME_free(name);
	OSSL_CRMF_CERTTEMPLATE_free(t);
	return len;
}

Test(issue, crmf_template_only_from_a_proven_source)
{
	KR_AUTO(EVP_PKEY) ec = EVP_EC_gen("P-256");
	unsigned char *der = NULL;
	int len = template_der(ec, "1000000000000002", &der);
	cr_assert(len > 0);
	kr_csr c;
	KR_ASSERT_ERR(kr_csr_parse(NULL, der, (size_t)len, &c), KR_EINPUT, "malformed DER");
	KR_ASSERT_OK(kr_csr_parse_proven(NULL, der, (size_t)len, &c));
	cr_assert_eq(c.key_type, KR_KEY_EC_P256);
	cr_assert_str_eq(c.cn, "1000000000000002");
	cr_assert_eq(c.ndns, 0);
	kr_csr_clear(&c);
	OPENSSL_free(der);
	/* the key is judged as in a CSR */
	KR_AUTO(EVP_PKEY) weak = EVP_RSA_gen(1024);
	der = NULL;
	len = template_der(weak, "1000000000000002", &der);
	KR_ASSERT_ERR(kr_csr_parse_proven(NULL, der, (size_t)len, &c), KR_EPOLICY, "key too weak");
	OPENSSL_free(der);
	/* neither form: the CSR's error */
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	KR_ASSERT_ERR(kr_csr_parse_proven(NULL, junk, sizeof junk, &c), KR_EINPUT, "malformed");
}
