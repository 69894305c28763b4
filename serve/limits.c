/* Per-account rate limits: a token bucket each (rate tokens a second, at
 * most burst), so one account's load cannot starve the others'. */
#include "internal.h"
#include "../util/text.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ACCOUNTS (KR_MAX_LIST + 1)

struct kr_limits {
	pthread_mutex_t mu;
	double rate, burst;
	struct {
		char name[64];
		double tokens, at;
	} b[MAX_ACCOUNTS];
	int n;
};

KR_MUST_USE kr_err kr_limits_open(long rate, long burst, struct kr_limits **out)
{
	struct kr_limits *l = calloc(1, sizeof *l);
	KR_ENSURE(l, KR_EINTERNAL, "out of memory");
	pthread_mutex_init(&l->mu, NULL);
	l->rate = (double)rate;
	l->burst = (double)burst;
	*out = l;
	return kr_ok();
}

void kr_limits_close(struct kr_limits *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int kr_limits_take(struct kr_limits *l, const char *account)
{
	double t = now();
	int ok = 0;
	pthread_mutex_lock(&l->mu);
	int i = 0;
	while (i < l->n && strcmp(l->b[i].name, account) != 0)
		i++;
	if (i == l->n && l->n < MAX_ACCOUNTS) { /* accounts come from the configuration */
		kr_copy(l->b[i].name, sizeof l->b[i].name, account);
		l->b[i].tokens = l->burst;
		l->b[i].at = t;
		l->n++;
	}
	if (i < l->n) {
		double tokens = l->b[i].tokens + (t - l->b[i].at) * l->rate;
		l->b[i].tokens = tokens > l->burst ? l->burst : tokens;
		l->b[i].at = t;
		ok = l->b[i].tokens >= 1;
		if (ok)
			l->b[i].tokens -= 1;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}
