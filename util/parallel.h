/* A parallel for over the items of a batch: the one way keyrite spreads
 * work over threads (each worker keeps its own HSM session). */
#ifndef KR_PARALLEL_H
#define KR_PARALLEL_H

#define KR_PARALLEL_MAX 64 /* workers, at most */

/* Calls fn(arg, i, worker) once for every i in [0, n), on nworkers threads
 * (this one is worker 0). Items are taken in order from a shared counter,
 * so a slow item does not hold up the others; the work of a thread that
 * could not be started is done by the rest. */
void kr_parallel_for(int n, int nworkers, void (*fn)(void *arg, int i, int worker), void *arg);

#endif
