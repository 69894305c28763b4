/* csign: the token's raw signing rate, the ceiling for batch work.
 *
 *   csign URI SESSIONS SECONDS     (PIN from $KEYRITE_BENCH_PIN_FILE)
 *
 * SESSIONS threads, each with its own session, call C_Sign on SHA-256
 * digests for SECONDS seconds, first with the token object, then with the
 * session copy keyrite signs with (kr_hsm_key_session_copy); prints both
 * rates in signatures per second, the second 0 if the token refuses the
 * copy. */
#include "../hsm/hsm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct worker {
	kr_hsm *h;
	kr_hsm_key *k;
	kr_hsm_session *s;
	double until;
	long count;
} worker;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	worker *w = arg;
	uint8_t digest[32] = {1, 2, 3}, sig[KR_HSM_MAX_SIG];
	size_t len;
	kr_sig_scheme scheme =
		kr_hsm_key_type(w->k) == KR_KEY_ED25519 ? KR_SIG_EDDSA : KR_SIG_ECDSA;
	while (now() < w->until) {
		kr_err e = kr_hsm_sign(w->s, w->k, scheme, EVP_sha256(), digest, sizeof digest, sig,
				       &len);
		if (kr_failed(&e)) {
			fprintf(stderr, "csign: %s\n", e.msg);
			exit(1);
		}
		digest[0]++;
		w->count++;
	}
	return NULL;
}

static double measure(kr_hsm *h, kr_hsm_key *k, int n, double secs)
{
	worker w[64];
	pthread_t t[64];
	kr_hsm_pool *pool = NULL;
	kr_err e = kr_hsm_pool_open(h, n, &pool);
	if (kr_failed(&e)) {
		fprintf(stderr, "csign: %s\n", e.msg);
		exit(1);
	}
	double until = now() + secs, start = now();
	for (int i = 0; i < n; i++) {
		w[i] = (worker){h, k, kr_hsm_pool_session(pool, i), until, 0};
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	long total = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		total += w[i].count;
	}
	kr_hsm_pool_close(pool);
	return (double)total / (now() - start);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: csign URI SESSIONS SECONDS\n");
		return 2;
	}
	int n = atoi(argv[2]);
	double secs = atof(argv[3]);
	kr_hsm_opts o = {.pin = {.file = getenv("KEYRITE_BENCH_PIN_FILE")}};
	kr_hsm *h = NULL;
	kr_hsm_key *k = NULL;
	kr_err e = kr_hsm_open(argv[1], &o, &h);
	if (!kr_failed(&e))
		e = kr_hsm_key_find(h, argv[1], &k);
	if (kr_failed(&e) || n < 1 || n > 64) {
		fprintf(stderr, "csign: %s\n", kr_failed(&e) ? e.msg : "1 to 64 sessions");
		return 1;
	}
	double token = measure(h, k, n, secs), copy = 0;
	int copied = 0;
	e = kr_hsm_key_session_copy(h, k, &copied);
	if (kr_failed(&e))
		return fprintf(stderr, "csign: %s\n", e.msg), 1;
	if (copied)
		copy = measure(h, k, n, secs);
	printf("%.0f %.0f\n", token, copy);
	kr_hsm_key_free(k);
	kr_hsm_close(h);
	return 0;
}
