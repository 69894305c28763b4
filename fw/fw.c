/* Firmware signing: the signer, the batch (each image checked, signed,
 * recorded), and verification. The formats are in cms.c and mcuboot.c;
 * what they share, below them, in image.c. */
#include "internal.h"
#include "../ca/authority.h"
#include "../util/mem.h"
#include "../util/parallel.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the signer -------------------------------------------------------------- */

typedef struct status_arg {
	char status[16];
} status_arg;

static KR_MUST_USE kr_err status_of(const kr_cert_info *c, void *arg)
{
	snprintf(((status_arg *)arg)->status, sizeof((status_arg *)arg)->status, "%s", c->status);
	return kr_ok();
}

/* The certificate as keyrite issued it, and what has happened to it since. */
static KR_MUST_USE kr_err check_cert(kr_fw_signer *s, const kr_signer_conf *sc, X509 *ca,
				     kr_store *store)
{
	KR_ENSURE(X509_check_issued(ca, s->cert) == X509_V_OK &&
			  X509_verify(s->cert, X509_get0_pubkey(ca)) == 1,
		  KR_EVERIFY, "signer '%s': %s is not issued by CA '%s'", s->name, sc->certificate,
		  sc->ca);
	KR_ENSURE(X509_cmp_current_time(X509_get0_notBefore(s->cert)) < 0, KR_EVERIFY,
		  "signer '%s': %s is not valid yet", s->name, sc->certificate);
	KR_ENSURE(X509_cmp_current_time(X509_get0_notAfter(s->cert)) > 0, KR_EVERIFY,
		  "signer '%s': %s has expired", s->name, sc->certificate);
	KR_ENSURE(kr_fw_code_signing(s->cert), KR_EVERIFY,
		  "signer '%s': %s does not allow codeSigning", s->name, sc->certificate);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(s->cert);
	kr_cert_filter f = {.ca = sc->ca,
			    .serial = ASN1_STRING_get0_data(sn),
			    .serial_len = (size_t)ASN1_STRING_length(sn)};
	status_arg st = {""};
	KR_TRY(kr_store_certs(store, &f, status_of, &st));
	KR_ENSURE(st.status[0], KR_EVERIFY, "signer '%s': %s is not in the store of CA '%s'",
		  s->name, sc->certificate, sc->ca);
	KR_ENSURE(strcmp(st.status, "valid") == 0, KR_EVERIFY, "signer '%s': %s is %s", s->name,
		  sc->certificate, st.status);
	unsigned n = 0;
	KR_OSSL(X509_digest(s->cert, EVP_sha256(), s->fingerprint, &n), KR_EINTERNAL,
		"fingerprint");
	return kr_ok();
}

static KR_MUST_USE kr_err open_key(kr_fw_signer *s, const kr_signer_conf *sc,
				   const kr_hsm_opts *opts)
{
	char who[PATH_MAX + 80];
	snprintf(who, sizeof who, "signer '%s' (%s)", s->name, sc->certificate);
	KR_TRY(kr_authority_key_open(sc->uri, sc->pin_file, sc->pin_env, opts, s->cert, who,
				     &s->hsm, &s->key));
	s->type = kr_hsm_key_type(s->key);
	s->workers = sc->workers;
	snprintf(s->package, sizeof s->package, "%s", sc->package);
	for (int i = 0; i < sc->nhardware && i < KR_FW_MAX_HARDWARE; i++)
		snprintf(s->hardware[s->nhardware++], sizeof s->hardware[0], "%s", sc->hardware[i]);
	return kr_ok();
}

static KR_MUST_USE kr_err load(kr_fw_signer *s, const kr_config *cfg, const char *name,
			       kr_store *store, const kr_hsm_opts *opts)
{
	const kr_signer_conf *sc = NULL;
	const kr_ca_conf *cc = NULL;
	KR_TRY(kr_config_signer(cfg, name, &sc));
	KR_TRY(kr_config_ca(cfg, sc->ca, &cc));
	snprintf(s->name, sizeof s->name, "%s", name);
	kr_authority ca;
	KR_TRY(kr_authority_open(cc, store, NULL, 0, &ca));
	s->ca_id = ca.id;
	s->chain = ca.chain;
	ca.chain = NULL;
	kr_err e = sk_X509_insert(s->chain, ca.cert, 0) > 0
			   ? kr_ok()
			   : kr_err_ossl(KR_EINTERNAL, "out of memory");
	if (!kr_failed(&e))
		ca.cert = NULL;
	kr_authority_close(&ca);
	KR_TRY(e);
	KR_TRY(kr_cert_read(sc->certificate, &s->cert));
	KR_TRY(check_cert(s, sc, sk_X509_value(s->chain, 0), store));
	return open_key(s, sc, opts);
}

KR_MUST_USE kr_err kr_fw_signer_open(const kr_config *cfg, const char *name, kr_store *store,
				     const kr_hsm_opts *opts, kr_fw_signer **out)
{
	kr_fw_signer *s = calloc(1, sizeof *s);
	KR_ENSURE(s, KR_EINTERNAL, "out of memory");
	kr_err e = load(s, cfg, name, store, opts);
	if (kr_failed(&e)) {
		kr_fw_signer_close(s);
		return e;
	}
	*out = s;
	return kr_ok();
}

void kr_fw_signer_close(kr_fw_signer *s)
{
	if (!s)
		return;
	kr_hsm_key_free(s->key);
	kr_hsm_close(s->hsm);
	X509_free(s->cert);
	sk_X509_pop_free(s->chain, X509_free);
	free(s);
}

const uint8_t *kr_fw_signer_fingerprint(const kr_fw_signer *s) { return s->fingerprint; }

static void recipients_text(const kr_fw_opts *o, char *out, size_t outsz)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < o->nrecipients && used < outsz; i++)
		used += (size_t)snprintf(out + used, outsz - used, "%s%s", used ? "," : "",
					 o->recipients[i].name);
	for (int i = 0; i < o->nkeks && used < outsz; i++)
		used += (size_t)snprintf(out + used, outsz - used, "%skek:%s", used ? "," : "",
					 o->keks[i]);
}

/* ---- the batch ------------------------------------------------------------------- */

/* Images are signed a chunk at a time, the chunk's images side by side on
 * the workers; then, in input order, the chunk is recorded, synced, named
 * and reported. */
struct kr_fw_batch {
	kr_fw_signer *s;
	kr_store *store;
	kr_fw_opts opts; /* the caller's, with the signer's defaults filled in */
	const kr_fw_opts *o;
	kr_fw_report_cb cb;
	void *arg;
	kr_hsm_pool *sessions; /* one per lane */
	kr_fw_lane lanes[KR_PARALLEL_MAX];
	int nlanes;
	int chunk; /* images per chunk: fewer when each has many outputs */
	kr_fw_job jobs[KR_FW_CHUNK];
	int njobs;
	int stop_at; /* the chunk's first image whose failure ends the run, or INT_MAX */
	long recorded;
};

/* At most this many outputs open at once (file descriptors). */
#define KR_FW_MAX_OPEN 256

static int chunk_size(const kr_fw_opts *o)
{
	int per = o->nrecipients || o->nkeks ? 2 + o->nrecipients : 1;
	int n = KR_FW_MAX_OPEN / per;
	return n < 1 ? 1 : n > KR_FW_CHUNK ? KR_FW_CHUNK : n;
}

static KR_MUST_USE kr_err open_lanes(kr_fw_batch *b)
{
	kr_fw_signer *s = b->s;
	KR_TRY(kr_hsm_pool_open(s->hsm, s->workers, &b->sessions));
	while (b->nlanes < kr_hsm_pool_size(b->sessions)) {
		kr_fw_lane *l = &b->lanes[b->nlanes]; /* freed with the batch, even half made */
		l->session = kr_hsm_pool_session(b->sessions, b->nlanes++);
		l->buf = malloc(KR_FW_BUF);
		KR_ENSURE(l->buf, KR_EINTERNAL, "out of memory");
		if (s->type != KR_KEY_ED25519)
			KR_TRY(kr_hsm_key_evp(s->hsm, s->key, &l->evp));
	}
	return kr_ok();
}

/* What an RFC 4108 package says it is (section 2.2.3, 2.2.4): the
 * package's OID and version, and the hardware types it is for, from the
 * command line or else the signer's configuration. */
static KR_MUST_USE kr_err package_identity(const kr_fw_signer *s, kr_fw_opts *o)
{
	if (!o->package && s->package[0])
		o->package = s->package;
	for (int i = 0; o->nhardware == 0 && i < s->nhardware; i++)
		o->hardware[i] = s->hardware[i];
	if (o->nhardware == 0)
		o->nhardware = s->nhardware;
	KR_ENSURE(o->package, KR_EUSAGE,
		  "signer '%s': a CMS firmware package names itself (RFC 4108 2.2.3): set "
		  "package = OID in [signer_%s], or give --package OID",
		  s->name, s->name);
	KR_ENSURE(o->has_version && o->package_version >= 0, KR_EUSAGE,
		  "a CMS firmware package carries its version (RFC 4108 2.2.3): give "
		  "--package-version N");
	KR_ENSURE(o->nhardware > 0, KR_EUSAGE,
		  "signer '%s': a CMS firmware package names the hardware it is for (RFC 4108 "
		  "2.2.4): set hardware = OID... in [signer_%s], or give --hardware OID",
		  s->name, s->name);
	KR_TRY(kr_fw_oid_check("package", o->package));
	for (int i = 0; i < o->nhardware; i++)
		KR_TRY(kr_fw_oid_check("hardware", o->hardware[i]));
	return kr_ok();
}

/* The encryption forms: RFC 4108's EncryptedData is under one key, shared
 * with the devices, and names no recipient; recipients of their own are
 * the AuthEnvelopedData form's. */
static KR_MUST_USE kr_err encryption_form(const kr_fw_opts *o)
{
	if (o->format != KR_FW_CMS)
		return kr_ok();
	KR_ENSURE(!o->authenveloped || o->nrecipients || o->nkeks, KR_EUSAGE,
		  "--authenveloped is a form of encryption: name its recipients");
	KR_ENSURE(o->authenveloped || o->nrecipients == 0, KR_EUSAGE,
		  "an RFC 4108 encrypted package (EncryptedData) is encrypted under one "
		  "firmware-decryption key, --encrypt-kek LABEL; to encrypt to device "
		  "certificates give --authenveloped (RFC 5083, not RFC 4108)");
	KR_ENSURE(o->authenveloped || o->nkeks <= 1, KR_EUSAGE,
		  "an RFC 4108 encrypted package (EncryptedData) is encrypted under one "
		  "firmware-decryption key; for several give --authenveloped (RFC 5083, not RFC "
		  "4108), or sign once per key");
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_batch_new(kr_fw_signer *s, kr_store *store, const kr_fw_opts *o,
				   kr_fw_report_cb cb, void *arg, kr_fw_batch **out)
{
	kr_fw_batch *b = calloc(1, sizeof *b);
	KR_ENSURE(b, KR_EINTERNAL, "out of memory");
	b->s = s, b->store = store, b->opts = *o, b->o = &b->opts, b->cb = cb, b->arg = arg;
	b->chunk = chunk_size(o);
	kr_err e = encryption_form(o);
	if (!kr_failed(&e) && o->format == KR_FW_CMS)
		e = package_identity(s, &b->opts);
	if (!kr_failed(&e))
		e = open_lanes(b);
	if (kr_failed(&e)) {
		kr_fw_batch_free(b);
		return e;
	}
	*out = b;
	return kr_ok();
}

static void abort_outs(kr_fw_job *j)
{
	for (int i = 0; i < j->nouts; i++)
		kr_fs_out_abort(&j->outs[i]);
	j->nouts = 0;
}

/* Emptied for the next chunk, keeping its outputs' array: a new one for
 * every image (8 KiB an output) was faulted in page by page. */
static void clear_job(kr_fw_job *j)
{
	abort_outs(j);
	free(j->image);
	*j = (kr_fw_job){.outs = j->outs, .cap = j->cap};
}

/* The token, or keyrite itself, failing ends the run; an image's own
 * problem fails that image alone. */
static int fatal(const kr_err *e) { return e->code == KR_EHSM || e->code == KR_EINTERNAL; }

static KR_MUST_USE kr_err sign_one(kr_fw_job *j)
{
	kr_fw_image img = {.path = j->image, .fd = -1, .buf = j->lane->buf};
	kr_sig_alg alg = {0};
	kr_err e = kr_fw_image_open(j->image, &img);
	if (!kr_failed(&e))
		e = kr_sig_alg_for(j->s->type, 0, &alg);
	/* One pass gives the record's SHA-256 and, for CMS, the digest to sign. */
	if (!kr_failed(&e))
		e = kr_fw_digest(&img, alg.md ? alg.md : EVP_sha256(), img.digest, j->r.sha256);
	j->r.size = img.size;
	if (!kr_failed(&e))
		e = j->o->format == KR_FW_CMS ? kr_fw_cms_sign(j, &img)
					      : kr_fw_mcuboot_sign(j, &img);
	if (img.fd >= 0)
		close(img.fd);
	return e;
}

/* Lowers *at to i (atomically) unless it is lower already. */
static void stop_at(int *at, int i)
{
	int cur = __atomic_load_n(at, __ATOMIC_RELAXED);
	while (i < cur &&
	       !__atomic_compare_exchange_n(at, &cur, i, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* A worker's part: images are taken in turn until none is left. Once an
 * image has failed in a way that ends the run, the images after it are not
 * signed; those before it still are, so that the run's report ends with
 * that image and its own reason. */
static void sign_job(void *arg, int i, int worker)
{
	kr_fw_batch *b = arg;
	kr_fw_job *j = &b->jobs[i];
	if (i > __atomic_load_n(&b->stop_at, __ATOMIC_RELAXED)) {
		j->e = kr_errf(KR_EINTERNAL, "%s: not signed, the run stopped before it", j->image);
		return;
	}
	j->lane = &b->lanes[worker];
	j->e = sign_one(j);
	if (kr_failed(&j->e)) {
		abort_outs(j);
		if (fatal(&j->e))
			stop_at(&b->stop_at, i);
	}
}

/* 1 if an image before jobs[i] has an output named path. */
static int claimed(const kr_fw_job *jobs, int i, const char *path)
{
	for (int p = 0; p < i; p++)
		for (int q = 0; q < jobs[p].nouts; q++)
			if (strcmp(jobs[p].outs[q].path, path) == 0)
				return 1;
	return 0;
}

/* Two images of one run must not claim the same output name: the later
 * one fails (as it would have, one at a time, before the earlier was named). */
static void refuse_duplicates(kr_fw_batch *b, int n)
{
	for (int i = 1; i < n; i++) {
		kr_fw_job *j = &b->jobs[i];
		for (int k = 0; k < j->nouts; k++)
			if (claimed(b->jobs, i, j->outs[k].path)) {
				j->e = kr_errf(
					KR_EEXIST,
					"%s: another image of this run has the same output name",
					j->outs[k].path);
				abort_outs(j);
				break;
			}
	}
}

/* The chunk's signed images, in one transaction (none: nothing to do). */
static KR_MUST_USE kr_err record(kr_fw_batch *b, int n)
{
	const kr_fw_opts *o = b->o;
	int i = 0;
	while (i < n && kr_failed(&b->jobs[i].e))
		i++;
	if (i == n)
		return kr_ok();
	char to[2048];
	recipients_text(o, to, sizeof to);
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, b->store));
	long count = 0;
	for (; i < n; i++) {
		const kr_fw_job *j = &b->jobs[i];
		if (kr_failed(&j->e))
			continue;
		kr_fw_row row = {
			.signer = b->s->name,
			.file = j->image,
			.format = o->format == KR_FW_MCUBOOT ? "mcuboot"
				  : o->embed                 ? "cms-embedded"
							     : "cms",
			.output = j->r.outputs,
			.recipients = to[0] ? to : NULL,
			.signer_sha256 = b->s->fingerprint,
			.image_sha256 = j->r.sha256,
			.size = (int64_t)j->r.size,
			.package = o->format == KR_FW_CMS ? o->package : NULL,
			.package_version = o->package_version,
		};
		KR_TRY(kr_store_add_firmware(b->store, &row));
		count++;
	}
	KR_TRY(kr_txn_commit(&t));
	b->recorded += count;
	return kr_ok();
}

/* Once the chunk is recorded and committed: the outputs' data synced, then
 * named image by image, then their directory synced. A name taken meanwhile
 * fails that image alone (its record stays, as for a certificate whose file
 * could not be written); any other failure (a full disk, an I/O error) is
 * not the image's and ends the run there. *tried: the images whose naming
 * was tried are [0, *tried); *told: the failure returned is the last of
 * those images' own. */
static KR_MUST_USE kr_err publish(kr_fw_batch *b, int n, int *tried, int *told)
{
	int outputs = 0;
	for (int i = 0; i < n; i++)
		if (!kr_failed(&b->jobs[i].e))
			outputs += b->jobs[i].nouts;
	const char *dir = b->o->out_dir ? b->o->out_dir : ".";
	*tried = *told = 0;
	KR_TRY(outputs ? kr_fs_sync(dir) : kr_ok());
	while (*tried < n) {
		kr_fw_job *j = &b->jobs[(*tried)++];
		for (int k = 0; k < j->nouts && !kr_failed(&j->e) && !kr_failed(&j->named); k++)
			j->named = kr_fs_out_commit(&j->outs[k], 0);
		if (kr_failed(&j->named) && j->named.code != KR_EEXIST) {
			*told = 1;
			return j->named;
		}
	}
	return outputs ? kr_fs_sync(dir) : kr_ok();
}

static void clear_jobs(kr_fw_batch *b)
{
	for (int i = 0; i < b->njobs; i++)
		clear_job(&b->jobs[i]);
	b->njobs = 0;
}

/* Signs the chunk, then records, publishes and reports its images in input
 * order up to the first whose own failure ends the run; those after it are
 * abandoned unreported, as if the run had stopped there. A failure that is
 * not an image's (the store, syncing, a full disk while naming) ends the run
 * with its own report; the images it left unnamed are not reported. */
static KR_MUST_USE kr_err flush(kr_fw_batch *b)
{
	b->stop_at = INT_MAX;
	kr_parallel_for(b->njobs, b->nlanes, sign_job, b);
	int n = 0, tried = 0, told = 0;
	while (n < b->njobs && !(kr_failed(&b->jobs[n].e) && fatal(&b->jobs[n].e)))
		n++;
	refuse_duplicates(b, n);
	kr_err e = record(b, n);
	if (!kr_failed(&e))
		e = publish(b, n, &tried, &told);
	for (int i = 0; i < n; i++) {
		const kr_fw_job *j = &b->jobs[i];
		if (kr_failed(&j->e))
			b->cb(j->image, &j->r, &j->e, b->arg);
		else if (i < tried)
			b->cb(j->image, &j->r, kr_failed(&j->named) ? &j->named : NULL, b->arg);
	}
	if (kr_failed(&e) && !told)
		b->cb(NULL, NULL, &e, b->arg);
	if (n < b->njobs) {
		b->cb(b->jobs[n].image, &b->jobs[n].r, &b->jobs[n].e, b->arg);
		if (!kr_failed(&e))
			e = b->jobs[n].e;
	}
	clear_jobs(b);
	return e;
}

KR_MUST_USE kr_err kr_fw_batch_add(kr_fw_batch *b, const char *image)
{
	kr_fw_job *j = &b->jobs[b->njobs];
	*j = (kr_fw_job){
		.s = b->s, .o = b->o, .outs = j->outs, .cap = j->cap, .image = strdup(image)};
	KR_ENSURE(j->image, KR_EINTERNAL, "out of memory");
	b->njobs++;
	return b->njobs == b->chunk ? flush(b) : kr_ok();
}

/* At the end of a run, the signer signs the audit chain's head, as a CA
 * does after a batch (the checkpoint carries its certificate, which
 * keyrite audit verify checks against the CA). */
static KR_MUST_USE kr_err checkpoint(kr_fw_batch *b)
{
	if (b->recorded == 0)
		return kr_ok();
	kr_fw_signer *s = b->s;
	kr_signing signer = {.hsm = s->hsm, .key = s->key}; /* no drafts: no throwaway key */
	KR_TRY(kr_sig_alg_for(s->type, 0, &signer.alg));
	KR_TXN(t);
	KR_TRY(kr_txn_begin(&t, b->store));
	KR_TRY(kr_checkpoint_sign(b->store, &signer, s->ca_id, s->cert));
	return kr_txn_commit(&t);
}

KR_MUST_USE kr_err kr_fw_batch_finish(kr_fw_batch *b)
{
	KR_TRY(b->njobs ? flush(b) : kr_ok());
	return checkpoint(b);
}

void kr_fw_batch_free(kr_fw_batch *b)
{
	if (!b)
		return;
	for (int i = 0; i < KR_FW_CHUNK; i++) {
		clear_job(&b->jobs[i]);
		free(b->jobs[i].outs);
	}
	for (int w = 0; w < b->nlanes; w++) {
		EVP_PKEY_free(b->lanes[w].evp);
		free(b->lanes[w].buf);
	}
	kr_hsm_pool_close(b->sessions);
	free(b);
}

/* ---- verification ------------------------------------------------------------ */

KR_MUST_USE kr_err kr_fw_verify(const kr_fw_verify_opts *o, const char *file, char *summary,
				size_t sumsz)
{
	return o->format == KR_FW_CMS ? kr_fw_cms_verify(o, file, summary, sumsz)
				      : kr_fw_mcuboot_verify(o, file, summary, sumsz);
}
