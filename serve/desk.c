/* The desk: the one thread that holds the registry (and so the store and
 * the CA's token session). Connection threads hand it jobs and wait; it
 * takes every job waiting at once, so that enrollments arriving together
 * are issued together: one activation, its transactions and checkpoint
 * for all of them, each answered after the commit (group commit). */
#include "internal.h"
#include "../store/service.h"
#include "../util/text.h"

#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

enum job_kind { J_CALL, J_ENROLL, J_SEEN };

typedef struct job {
	enum job_kind kind;
	const char *account;
	kr_desk_fn fn; /* J_CALL */
	void *arg;
	kr_reg_row row; /* J_ENROLL */
	kr_reg_cmd cmd;
	int confirm_later;
	kr_enrolled *enrolled;
	kr_seen seen; /* J_SEEN, and a CMP enrollment's */
	int fresh;
	kr_err e;
	int handled;    /* the desk's own mark */
	sem_t answered; /* posted by the desk: the waiter may go */
	struct job *next;
} job;

struct kr_desk {
	kr_registry *r;
	kr_store *store;
	int batch;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work;
	job *head, **tail;
	int stopping;
};

/* ---- on the desk ---------------------------------------------------------------- */

static void on_outcome(const kr_reg_outcome *o, void *arg)
{
	job **jobs = arg;
	/* outcomes come in the order of the rows */
	job *j = NULL;
	for (int i = 0; jobs[i] && !j; i++)
		if (!jobs[i]->handled)
			j = jobs[i];
	if (!j)
		return; /* more outcomes than rows: not the registry's way */
	kr_enrolled *out = j->enrolled;
	kr_copy(out->result, sizeof out->result, o->result);
	kr_copy(out->reason, sizeof out->reason, o->reason ? o->reason : "");
	out->code = o->code;
	out->profile_id = o->profile_id;
	if (o->cert && (out->cert = malloc(o->cert_len))) {
		memcpy(out->cert, o->cert, o->cert_len);
		out->cert_len = o->cert_len;
	}
	j->handled = 1;
}

/* An enrollment that met its device active already gets the certificate
 * it has (a retry gets the same certificate, never a second). */
static KR_MUST_USE kr_err current(kr_registry *r, job *j)
{
	kr_enrolled *out = j->enrolled;
	if (strcmp(out->result, "unchanged") != 0 || out->cert)
		return kr_ok();
	kr_err e = kr_registry_current_cert(r, j->row.device, &out->cert, &out->cert_len);
	if (kr_failed(&e)) {
		kr_copy(out->result, sizeof out->result, "refused");
		kr_copy(out->reason, sizeof out->reason, e.msg);
		out->code = e.code;
	}
	return kr_ok();
}

/* The enrollments like jobs[0]'s (its account, its command) among n
 * jobs, as one activation or rekey. */
static void enroll(kr_desk *d, job **all, int n)
{
	const char *account = all[0]->account;
	int k = 0;
	job **mine = calloc((size_t)n + 1, sizeof(job *));
	kr_reg_row *rows = calloc((size_t)n, sizeof *rows);
	kr_err e = mine && rows ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	for (int i = 0; !kr_failed(&e) && i < n; i++) {
		job *j = all[i];
		if (j->kind != J_ENROLL || j->handled || strcmp(account, j->account) != 0 ||
		    j->cmd != all[0]->cmd || j->confirm_later != all[0]->confirm_later)
			continue;
		mine[k] = j;
		rows[k++] = j->row;
	}
	if (!kr_failed(&e))
		e = kr_registry_act_as(d->r, account);
	kr_reg_args a = {.cmd = all[0]->cmd,
			 .rows = rows,
			 .nrows = k,
			 .chunk = d->batch,
			 .confirm_later = all[0]->confirm_later};
	kr_reg_summary sum;
	if (!kr_failed(&e))
		e = kr_registry_run(d->r, &a, NULL, 0, on_outcome, mine, &sum);
	for (int i = 0; i < k; i++) {
		job *j = mine[i];
		if (!kr_failed(&e) && !j->handled)
			j->e = kr_errf(KR_EINTERNAL, "%s: no outcome", j->row.device);
		else if (!kr_failed(&e))
			j->e = current(d->r, j);
		else
			j->e = e;
		j->handled = 1;
	}
	free(mine);
	free(rows);
}

/* Every replay check waiting, a CMP enrollment's too, in one transaction;
 * a replayed enrollment is answered here. */
static void seen(kr_desk *d, job **all, int n)
{
	kr_store *s = d->store;
	int any = 0;
	for (int i = 0; i < n; i++) {
		all[i]->fresh = 1;
		any |= all[i]->seen.tid != NULL;
	}
	if (!any)
		return; /* no transaction for a cycle without CMP messages */
	KR_TXN(t);
	kr_err e = kr_txn_begin(&t, s);
	for (int i = 0; !kr_failed(&e) && i < n; i++) {
		job *j = all[i];
		if (j->seen.tid)
			e = kr_store_cmp_seen(s, j->seen.tid, j->seen.tid_len, j->seen.nonce,
					      j->seen.nonce_len, &j->fresh);
	}
	if (!kr_failed(&e))
		e = kr_txn_commit(&t);
	for (int i = 0; i < n; i++) {
		job *j = all[i];
		if (j->kind == J_SEEN || (j->seen.tid && (kr_failed(&e) || !j->fresh))) {
			j->e = e;
			j->handled = 1;
		}
		if (j->kind == J_ENROLL && !kr_failed(&e) && !j->fresh) {
			j->enrolled->replayed = 1;
			kr_copy(j->enrolled->result, sizeof j->enrolled->result, "refused");
		}
	}
}

static void run(kr_desk *d, job **all, int n)
{
	seen(d, all, n);
	for (int i = 0; i < n; i++) {
		job *j = all[i];
		if (j->handled)
			continue;
		if (j->kind == J_ENROLL) {
			enroll(d, all + i, n - i);
			continue;
		}
		j->e = j->account ? kr_registry_act_as(d->r, j->account) : kr_ok();
		if (!kr_failed(&j->e))
			j->e = j->fn(d->r, j->arg);
		j->handled = 1;
	}
}

static void *desk_main(void *arg)
{
	kr_desk *d = arg;
	job **all = NULL;
	size_t cap = 0;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->head && !d->stopping)
			pthread_cond_wait(&d->work, &d->mu);
		if (!d->head)
			break;
		job *list = d->head;
		d->head = NULL;
		d->tail = &d->head;
		pthread_mutex_unlock(&d->mu);
		size_t n = 0;
		int short_of_memory = 0;
		for (job *j = list; j && !short_of_memory; j = j->next) {
			if (n == cap) {
				job **grown = realloc(all, (cap ? 2 * cap : 64) * sizeof(job *));
				short_of_memory = !grown;
				all = grown ? grown : all;
				cap = grown ? (cap ? 2 * cap : 64) : cap;
			}
			if (!short_of_memory)
				all[n++] = j;
		}
		if (short_of_memory) { /* every job answered, none run */
			for (job *j = list; j; j = j->next)
				j->e = kr_errf(KR_EINTERNAL, "out of memory");
			for (job *j = list, *next; j; j = next) {
				next = j->next;
				sem_post(&j->answered);
			}
			pthread_mutex_lock(&d->mu);
			continue;
		}
		run(d, all, (int)n);
		for (size_t i = 0; i < n; i++)
			sem_post(&all[i]->answered);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	free(all);
	return NULL;
}

/* ---- from the connection threads ---------------------------------------------------- */

static KR_MUST_USE kr_err hand_in(kr_desk *d, job *j)
{
	pthread_mutex_lock(&d->mu);
	if (d->stopping) {
		pthread_mutex_unlock(&d->mu);
		return kr_errf(KR_EINTERNAL, "the service is stopping");
	}
	sem_init(&j->answered, 0, 0);
	*d->tail = j;
	d->tail = &j->next;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->mu);
	while (sem_wait(&j->answered) != 0)
		; /* EINTR */
	sem_destroy(&j->answered);
	return j->e;
}

KR_MUST_USE kr_err kr_desk_call(kr_desk *d, const char *account, kr_desk_fn fn, void *arg)
{
	job j = {.kind = J_CALL, .account = account, .fn = fn, .arg = arg};
	return hand_in(d, &j);
}

KR_MUST_USE kr_err kr_desk_enroll(kr_desk *d, const kr_enroll *req, const kr_seen *seen,
				  kr_enrolled *out)
{
	memset(out, 0, sizeof *out);
	job j = {.kind = J_ENROLL,
		 .account = req->account,
		 .cmd = req->cmd,
		 .confirm_later = req->confirm_later,
		 .enrolled = out};
	if (seen)
		j.seen = *seen;
	j.row = (kr_reg_row){.device = req->device,
			     .csr = req->csr,
			     .csr_len = req->csr_len,
			     .proven = req->proven};
	return hand_in(d, &j);
}

KR_MUST_USE kr_err kr_desk_seen(kr_desk *d, const kr_seen *seen, int *fresh)
{
	job j = {.kind = J_SEEN, .seen = *seen};
	KR_TRY(hand_in(d, &j));
	*fresh = j.fresh;
	return kr_ok();
}

KR_MUST_USE kr_err kr_desk_open(kr_registry *r, kr_store *store, int batch, kr_desk **out)
{
	kr_desk *d = calloc(1, sizeof *d);
	KR_ENSURE(d, KR_EINTERNAL, "out of memory");
	d->r = r;
	d->store = store;
	d->batch = batch;
	d->tail = &d->head;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->work, NULL);
	if (pthread_create(&d->thread, NULL, desk_main, d) != 0) {
		free(d);
		return kr_errf(KR_EINTERNAL, "cannot start the desk thread");
	}
	*out = d;
	return kr_ok();
}

void kr_desk_close(kr_desk *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->work);
	free(d);
}
