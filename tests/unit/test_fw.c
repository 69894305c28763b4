/* Firmware helpers: MCUboot versions, streamed outputs, store format 2. */
#include "../../fw/fw.h"
#include "../../util/fs.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

TestSuite(fw, .fini = kr_test_cleanup);

Test(fw, mcuboot_versions)
{
	kr_mcuboot_version v;
	KR_ASSERT_OK(kr_mcuboot_version_parse("1.2.3+4", &v));
	cr_assert(v.major == 1 && v.minor == 2 && v.revision == 3 && v.build == 4);
	KR_ASSERT_OK(kr_mcuboot_version_parse("255.255.65535+4294967295", &v));
	cr_assert(v.major == 255 && v.revision == 65535 && v.build == 4294967295U);
	KR_ASSERT_OK(kr_mcuboot_version_parse("2.0", &v));
	cr_assert(v.major == 2 && v.minor == 0 && v.revision == 0 && v.build == 0);
	KR_ASSERT_OK(kr_mcuboot_version_parse("3", &v)); /* as imgtool reads it: 3.0.0+0 */
	cr_assert(v.major == 3 && v.minor == 0 && v.revision == 0 && v.build == 0);
	static const char *const bad[] = {"",     "1.",        "1.2.", "256.0",  "1.2.3.4",
					  "1+2",  "1.2.65536", "a.b",  "1.2.3+", "1.2.3+4294967296",
					  "-1.2", "1.2 "};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		KR_ASSERT_ERR(kr_mcuboot_version_parse(bad[i], &v), KR_EUSAGE, "MAJOR[.MINOR");
}

static int entries(const char *dir)
{
	int n = 0;
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.' || strstr(e->d_name, KR_FS_TEMP) != NULL;
	if (d)
		closedir(d);
	return n;
}

Test(fw, streamed_output_is_exclusive_and_leaves_nothing_on_abort)
{
	char path[512];
	snprintf(path, sizeof path, "%s/image.p7s", kr_test_dir());
	kr_fs_out o;
	KR_ASSERT_OK(kr_fs_out_open(&o, path, 0644));
	KR_ASSERT_OK(kr_fs_out_write(&o, "hello world", 11));
	KR_ASSERT_OK(kr_fs_out_pwrite(&o, "J", 1, 6));
	cr_assert_eq(entries(kr_test_dir()), 0, "visible before commit");
	kr_fs_out_abort(&o);
	cr_assert_eq(entries(kr_test_dir()), 0, "left behind by abort");

	KR_ASSERT_OK(kr_fs_out_open(&o, path, 0644));
	KR_ASSERT_OK(kr_fs_out_write(&o, "hello world", 11));
	KR_ASSERT_OK(kr_fs_out_pwrite(&o, "J", 1, 6));
	KR_ASSERT_OK(kr_fs_out_commit(&o, 1));
	uint8_t *text = NULL;
	size_t len = 0;
	KR_ASSERT_OK(kr_fs_read(path, 100, &text, &len));
	cr_assert_str_eq((char *)text, "hello Jorld");
	free(text);
	KR_ASSERT_ERR(kr_fs_out_open(&o, path, 0644), KR_EEXIST, "already exists");
}

/* A format-1 store (no firmware, publication or lookup columns) is taken
 * through formats 2 and 3 when it is opened. */
Test(fw, format_1_store_migrates_to_the_current_format)
{
	char path[512];
	snprintf(path, sizeof path, "%s/old.db", kr_test_dir());
	kr_store *s = NULL;
	KR_ASSERT_OK(kr_store_open(path, 1, 0, &s));
	kr_store_close(s);
	sqlite3 *db = NULL;
	cr_assert(sqlite3_open(path, &db) == SQLITE_OK);
	cr_assert(sqlite3_exec(
			  db,
			  "drop table api_client; drop table poll; drop table cmp_seen; "
			  "drop table registration; drop index cert_profile_id; "
			  "alter table cert drop column asp; drop index cert_request; "
			  "create unique index cert_request on cert (ca_id, profile, csr_sha256) "
			  "where status <> 'abandoned'; "
			  "alter table device drop column owner; "
			  "alter table device drop column mno; "
			  "alter table device drop column listed; "
			  "alter table device drop column deleted; "
			  "alter table device drop column purge_after; "
			  "alter table device drop column locks; "
			  "alter table device drop column code_salt; "
			  "alter table device drop column code_hash; "
			  "alter table device drop column code_expires; "
			  "alter table device drop column code_failures; "
			  "alter table device drop column csr; "
			  "alter table device drop column updated; "
			  "alter table device drop column enroll_gen; "
			  "alter table cert drop column node; "
			  "drop index audit_node; alter table audit drop column node; "
			  "alter table audit drop column node_seq; "
			  "alter table checkpoint drop column node; "
			  "DROP TABLE firmware; DROP TABLE published;"
			  " ALTER TABLE checkpoint DROP COLUMN signer;"
			  " DROP INDEX audit_serial; DROP INDEX audit_device;"
			  " ALTER TABLE audit DROP COLUMN ca; ALTER TABLE audit DROP COLUMN serial;"
			  " ALTER TABLE audit DROP COLUMN device;"
			  " PRAGMA user_version = 1",
			  NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	KR_ASSERT_OK(kr_store_open(path, 0, 0, &s));
	uint8_t h[32] = {1};
	kr_fw_row r = {"fw", "image.bin", "cms", "image.bin.p7s", NULL, h, h, 10};
	KR_TXN(t);
	KR_ASSERT_OK(kr_txn_begin(&t, s));
	KR_ASSERT_OK(kr_store_add_firmware(s, &r));
	KR_ASSERT_OK(kr_txn_commit(&t));
	kr_store_close(s);

	cr_assert(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	cr_assert(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
	cr_assert(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 9);
	sqlite3_finalize(st);
	cr_assert(sqlite3_prepare_v2(db, "SELECT signer FROM checkpoint", -1, &st, NULL) ==
		  SQLITE_OK);
	sqlite3_finalize(st);
	cr_assert(sqlite3_prepare_v2(db, "SELECT ca, serial, device FROM audit", -1, &st, NULL) ==
		  SQLITE_OK);
	sqlite3_finalize(st);
	cr_assert(sqlite3_prepare_v2(db, "SELECT zone FROM published", -1, &st, NULL) == SQLITE_OK);
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* a newer format is refused untouched */
	cr_assert(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	KR_ASSERT_ERR(kr_store_open(path, 0, 0, &s), KR_EINPUT, "store format 99");
}

static X509 *self_signed(const char *cn)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	cr_assert(k && x && X509_set_pubkey(x, k) &&
		  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					     (const unsigned char *)cn, -1, -1, 0) &&
		  X509_set_issuer_name(x, X509_get_subject_name(x)) &&
		  X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

Test(fw, a_ca_name_stays_bound_to_its_certificate)
{
	char path[512];
	snprintf(path, sizeof path, "%s/cas.db", kr_test_dir());
	kr_store *s = NULL;
	KR_ASSERT_OK(kr_store_open(path, 1, 0, &s));
	X509 *a = self_signed("a"), *b = self_signed("b");
	int64_t id1 = 0, id2 = 0, id3 = 0;
	KR_ASSERT_OK(kr_store_register_ca(s, "devices", a, &id1));
	KR_ASSERT_OK(kr_store_register_ca(s, "devices", a, &id2));
	cr_assert(id1 > 0 && id1 == id2);
	KR_ASSERT_ERR(kr_store_register_ca(s, "devices", b, &id3), KR_EINPUT,
		      "recorded with a different certificate");
	KR_ASSERT_OK(kr_store_register_ca(s, "other", b, &id3));
	cr_assert(id3 > 0 && id3 != id1);
	X509_free(a);
	X509_free(b);
	kr_store_close(s);
}
