/* Policy, transcript and files. */
#include "../../ceremony/transcript.h"
#include "../../policy/policy.h"
#include "../../util/fs.h"
#include "../../util/parallel.h"
#include "../../serve/internal.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(misc, .fini = kr_test_cleanup);

Test(misc, policy_defaults_and_file)
{
	kr_policy *p = NULL;
	KR_ASSERT_OK(kr_policy_load(NULL, &p));
	KR_ASSERT_OK(kr_policy_check_days(p, KR_ROLE_ROOT, 9132));
	KR_ASSERT_ERR(kr_policy_check_days(p, KR_ROLE_ROOT, 9133), KR_EPOLICY, "policy cap");
	KR_ASSERT_ERR(kr_policy_check_ca_key(p, KR_KEY_RSA_2048), KR_EPOLICY, "rsa-2048");
	kr_policy_free(p);
	char *f =
		kr_test_file("p.cnf", "[ceremony]\nsub_ca_max_days = 30\nca_key_types = ec-p256\n");
	KR_ASSERT_OK(kr_policy_load(f, &p));
	KR_ASSERT_ERR(kr_policy_check_days(p, KR_ROLE_SUB_CA, 31), KR_EPOLICY, "cap of 30 days");
	KR_ASSERT_ERR(kr_policy_check_ca_key(p, KR_KEY_EC_P384), KR_EPOLICY, "ec-p384");
	KR_ASSERT_OK(kr_policy_check_ca_key(p, KR_KEY_EC_P256));
	kr_policy_free(p);
	f = kr_test_file("q.cnf", "[ceremony]\nca_key_types = ec-p256, rot13\n");
	KR_ASSERT_ERR(kr_policy_load(f, &p), KR_EINPUT, "q.cnf:2: [ceremony] ca_key_types");
}

Test(misc, transcript_is_lazy_exclusive_and_self_hashed)
{
	char path[512];
	snprintf(path, sizeof path, "%s/t.txt", kr_test_dir());
	kr_transcript *t = NULL;
	KR_ASSERT_OK(kr_transcript_new(path, NULL, &t));
	kr_transcript_line(t, "first %d", 1);
	kr_transcript_line(t, "forged\nrecord");
	cr_assert(access(path, F_OK) != 0, "nothing on disk before commit");
	kr_transcript_free(t);
	cr_assert(access(path, F_OK) != 0, "a refused ceremony leaves no transcript");

	KR_ASSERT_OK(kr_transcript_new(path, NULL, &t));
	kr_transcript_line(t, "a");
	KR_ASSERT_OK(kr_transcript_commit(t));
	kr_transcript_line(t, "b\nc");
	uint8_t hash[32];
	KR_ASSERT_OK(kr_transcript_finish(t, hash));
	kr_transcript_free(t);
	uint8_t *text = NULL;
	size_t len = 0;
	KR_ASSERT_OK(kr_fs_read(path, 4096, &text, &len));
	cr_assert(strncmp((char *)text, "a\nb c\ntranscript-sha256 ", 24) == 0, "%s", text);
	uint8_t md[32];
	EVP_Digest(text, 6, md, NULL, EVP_sha256(), NULL);
	cr_assert(memcmp(md, hash, 32) == 0);
	free(text);

	KR_ASSERT_OK(kr_transcript_new(path, NULL, &t));
	KR_ASSERT_ERR(kr_transcript_commit(t), KR_EEXIST, "cannot create");
	kr_transcript_free(t);
}

Test(misc, write_new_is_exclusive_and_atomic)
{
	char path[512];
	snprintf(path, sizeof path, "%s/out.pem", kr_test_dir());
	KR_ASSERT_OK(kr_fs_write_new(path, "one", 3, 0644));
	KR_ASSERT_ERR(kr_fs_write_new(path, "two", 3, 0644), KR_EEXIST, "already exists");
	uint8_t *text = NULL;
	size_t len = 0;
	KR_ASSERT_OK(kr_fs_read(path, 100, &text, &len));
	cr_assert_str_eq((char *)text, "one");
	free(text);
	struct stat st;
	cr_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	snprintf(path, sizeof path, "%s/no-such-dir/x", kr_test_dir());
	KR_ASSERT_ERR(kr_fs_write_new(path, "x", 1, 0644), KR_EIO, "cannot create");
	KR_ASSERT_ERR(kr_fs_read("/nonexistent", 10, &text, &len), KR_EIO, "cannot open");
}

typedef struct visits {
	int count[1000];
	int worker_seen[KR_PARALLEL_MAX];
	pthread_t thread_of[KR_PARALLEL_MAX];
} visits;

static void visit(void *arg, int i, int worker)
{
	visits *v = arg;
	__atomic_fetch_add(&v->count[i], 1, __ATOMIC_RELAXED);
	v->worker_seen[worker] = 1;
	v->thread_of[worker] = pthread_self(); /* each worker is one thread */
}

Test(misc, parallel_for_visits_every_item_once)
{
	const int cases[][2] = {{1000, 2}, {1000, 1}, {3, 8}, {0, 2}, {1000, 999}, {7, -1}};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		visits *v = calloc(1, sizeof *v);
		cr_assert(v);
		int n = cases[c][0];
		kr_parallel_for(n, cases[c][1], visit, v);
		for (int i = 0; i < 1000; i++)
			cr_assert_eq(v->count[i], i < n,
				     "n %d, %d workers: item %d visited %d times", n, cases[c][1],
				     i, v->count[i]);
		cr_assert(!v->worker_seen[0] || pthread_equal(v->thread_of[0], pthread_self()),
			  "worker 0 is this thread");
		int want = cases[c][1] < 1 ? 1 : cases[c][1];
		want = want > KR_PARALLEL_MAX ? KR_PARALLEL_MAX : want;
		int most = want < n ? want : n;
		for (int w = most; w < KR_PARALLEL_MAX; w++)
			cr_assert(!v->worker_seen[w], "n %d, %d workers: worker %d ran", n,
				  cases[c][1], w);
		free(v);
	}
}

Test(misc, openssl_errors_keep_their_detail)
{
	ERR_raise_data(ERR_LIB_EC, ERR_R_EC_LIB, "token said %d", 42);
	kr_err e = kr_err_ossl(KR_EHSM, "signing");
	cr_assert_eq(e.code, KR_EHSM);
	cr_assert(strstr(e.msg, "signing: ") == e.msg, "%s", e.msg);
	cr_assert(strstr(e.msg, "EC lib (token said 42)"), "%s", e.msg);
	e = kr_err_ossl(KR_EINTERNAL, "nothing queued");
	cr_assert(strstr(e.msg, "(OpenSSL gave no reason)"), "%s", e.msg);
}

/* keyrite-ca(5)'s promise for [serve] console: a directory without
 * index.html is refused, with its name; one with it opens, files of other
 * types and dot files beside it are left alone. */
Test(misc, console_directory_needs_its_index)
{
	char dir[600];
	snprintf(dir, sizeof dir, "%s", kr_test_file("placeholder", ""));
	*strrchr(dir, '/') = '\0';
	strncat(dir, "/console", sizeof dir - strlen(dir) - 1);
	cr_assert(mkdir(dir, 0700) == 0);
	kr_console *c = NULL;
	KR_ASSERT_ERR(kr_console_open(dir, &c), KR_EINPUT, "no index.html");
	(void)kr_test_file("console/notes.txt", "x");
	(void)kr_test_file("console/.secret.js", "x");
	KR_ASSERT_ERR(kr_console_open(dir, &c), KR_EINPUT, "no index.html");
	(void)kr_test_file("console/index.html", "<!doctype html>");
	KR_ASSERT_OK(kr_console_open(dir, &c));
	kr_console_close(c);
	KR_ASSERT_ERR(kr_console_open("/nonexistent/console", &c), KR_EINPUT,
		      "[serve] console = /nonexistent/console");
}
