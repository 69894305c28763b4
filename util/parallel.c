#include "parallel.h"

#include <pthread.h>

typedef struct worker {
	void (*fn)(void *arg, int i, int worker);
	void *arg;
	int n, id;
	int *next; /* shared: the next item to take */
} worker;

static void *run(void *arg)
{
	worker *w = arg;
	int i;
	while ((i = __atomic_fetch_add(w->next, 1, __ATOMIC_RELAXED)) < w->n)
		w->fn(w->arg, i, w->id);
	return NULL;
}

void kr_parallel_for(int n, int nworkers, void (*fn)(void *arg, int i, int worker), void *arg)
{
	worker ws[KR_PARALLEL_MAX];
	pthread_t t[KR_PARALLEL_MAX];
	int started[KR_PARALLEL_MAX] = {0};
	int next = 0;
	nworkers = nworkers < 1 ? 1 : nworkers > KR_PARALLEL_MAX ? KR_PARALLEL_MAX : nworkers;
	if (nworkers > n)
		nworkers = n > 0 ? n : 1;
	for (int w = 0; w < nworkers; w++)
		ws[w] = (worker){fn, arg, n, w, &next};
	for (int w = 1; w < nworkers; w++)
		started[w] = pthread_create(&t[w], NULL, run, &ws[w]) == 0;
	run(&ws[0]);
	for (int w = 1; w < nworkers; w++)
		if (started[w])
			pthread_join(t[w], NULL);
}
