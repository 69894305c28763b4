/* keyrite publish: the zone file, the .well-known CA files, the record of
 * what was published and, on request, the changes since last time. */
#include "internal.h"
#include "../util/cleanup.h"
#include "../util/fs.h"
#include "../util/text.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct pub {
	const kr_zone_conf *z;
	const kr_publish_opts *o;
	kr_store *store;
	kr_publish_summary *sum;
	FILE *zone;           /* unsigned: records go straight to the file */
	ldns_dnssec_zone *dz; /* signed: collected, then signed */
	FILE *changes;
	size_t msg_octets, msg_updates; /* of the DNS UPDATE message being written */
} pub;

static KR_MUST_USE kr_err add_to_zone(pub *p, ldns_rr *rr);

/* Records the record as published and puts it in the zone. The SOA is not
 * recorded: its serial changes every time, and a server that takes
 * dynamic updates maintains its own. */
static KR_MUST_USE kr_err put(pub *p, ldns_rr *rr)
{
	if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
		return add_to_zone(p, rr);
	char *owner = ldns_rdf2str(ldns_rr_owner(rr)), *rdata = kr_rr_rdata(rr);
	char *type = ldns_rr_type2str(ldns_rr_get_type(rr));
	kr_err e = owner && rdata && type ? kr_store_publish_add(p->store, owner, type, rdata)
					  : kr_errf(KR_EINTERNAL, "out of memory");
	free(owner);
	free(rdata);
	free(type);
	KR_TRY(e);
	return add_to_zone(p, rr);
}

static KR_MUST_USE kr_err add_to_zone(pub *p, ldns_rr *rr)
{
	p->sum->records++;
	if (!p->dz) {
		ldns_rr_print(p->zone, rr);
		return kr_ok();
	}
	ldns_rr *copy = ldns_rr_clone(rr);
	ldns_status st = copy ? ldns_dnssec_zone_add_rr(p->dz, copy) : LDNS_STATUS_MEM_ERR;
	if (st != LDNS_STATUS_OK)
		ldns_rr_free(copy);
	return st == LDNS_STATUS_OK ? kr_ok() : kr_ldns_err(st, KR_EINPUT, "adding", NULL);
}

static KR_MUST_USE kr_err record(const kr_rec *r, void *arg)
{
	pub *p = arg;
	if (!r->live)
		return kr_ok();
	long *count[] = {&p->sum->devices, &p->sum->certs, &p->sum->servers, &p->sum->roots};
	(*count[r->kind])++;
	return put(p, r->rr);
}

static KR_MUST_USE kr_err text_rr(pub *p, const char *text)
{
	ldns_rr *rr = NULL;
	ldns_status st = ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL);
	KR_ENSURE(st == LDNS_STATUS_OK, KR_EINPUT, "zone %s: '%s': %s", p->z->apex, text,
		  ldns_get_errorstr_by_id(st));
	kr_err e = put(p, rr);
	ldns_rr_free(rr);
	return e;
}

/* SOA and NS from the configuration; the serial is the time of publication,
 * so it grows from one publication to the next. */
static KR_MUST_USE kr_err apex(pub *p)
{
	const kr_zone_conf *z = p->z;
	char text[1024];
	snprintf(text, sizeof text, "%s. %ld IN SOA %s. %s. %lld 7200 3600 1209600 %ld", z->apex,
		 z->ttl, z->soa_mname, z->soa_rname, (long long)time(NULL), z->ttl);
	KR_TRY(text_rr(p, text));
	for (int i = 0; i < z->nns; i++) {
		snprintf(text, sizeof text, "%s. %ld IN NS %s.", z->apex, z->ttl, z->ns[i]);
		KR_TRY(text_rr(p, text));
		if (!z->ns_addr[i][0])
			continue;
		snprintf(text, sizeof text, "%s. %ld IN %s %s", z->ns[i], z->ttl,
			 strchr(z->ns_addr[i], ':') ? "AAAA" : "A", z->ns_addr[i]);
		KR_TRY(text_rr(p, text));
	}
	return kr_ok();
}

/* ---- .well-known/ca/<SKI>.pem (draft-wilson-dane-pkix-cd) ---------------------- */

static KR_MUST_USE kr_err mkdirs(const char *base)
{
	char path[4096];
	const char *parts[] = {".well-known", ".well-known/ca"};
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", base, parts[i]);
		KR_ENSURE(mkdir(path, 0755) == 0 || errno == EEXIST, KR_EIO, "%s: %s", path,
			  strerror(errno));
	}
	return kr_ok();
}

/* One CA certificate, named by its subjectKeyIdentifier, which is what its
 * children's authorityKeyIdentifier names: lowercase hex, '-' between bytes. */
static KR_MUST_USE kr_err ca_file(pub *p, X509 *x)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	if (!ski || ASN1_STRING_length(ski) < 1 || ASN1_STRING_length(ski) > 64) {
		char subject[256];
		X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
		return kr_errf(KR_EINPUT,
			       "CA certificate %s: no usable subjectKeyIdentifier, so it cannot be "
			       "published under .well-known/ca",
			       subject);
	}
	char name[200], path[4096];
	const uint8_t *id = ASN1_STRING_get0_data(ski);
	size_t at = 0;
	for (int i = 0; i < ASN1_STRING_length(ski); i++)
		at += (size_t)snprintf(name + at, sizeof name - at, "%s%02x", i ? "-" : "", id[i]);
	snprintf(path, sizeof path, "%s/.well-known/ca/%s.pem", p->o->out_dir, name);
	KR_AUTO(BIO) mem = BIO_new(BIO_s_mem());
	KR_OSSL(mem && PEM_write_bio_X509(mem, x), KR_EINTERNAL, "encoding a CA certificate");
	char *data = NULL;
	long n = BIO_get_mem_data(mem, &data);
	int same = 0;
	if (access(path, F_OK) == 0)
		KR_TRY(kr_fs_same(path, data, (size_t)n, &same));
	p->sum->ca_files++;
	if (same)
		return kr_ok();
	kr_fs_out out;
	KR_TRY(kr_fs_out_open_replace(&out, path, 0644));
	kr_err e = kr_fs_out_write(&out, data, (size_t)n);
	if (kr_failed(&e)) {
		kr_fs_out_abort(&out);
		return e;
	}
	return kr_fs_out_commit_replace(&out);
}

static KR_MUST_USE kr_err well_known(pub *p, const kr_config *cfg)
{
	KR_TRY(mkdirs(p->o->out_dir));
	STACK_OF(X509) *cas = NULL;
	KR_TRY(kr_publish_ca_certs(cfg, &cas));
	kr_err e = kr_ok();
	for (int i = 0; !kr_failed(&e) && i < sk_X509_num(cas); i++)
		e = ca_file(p, sk_X509_value(cas, i));
	sk_X509_pop_free(cas, X509_free);
	return e;
}

/* ---- changes, in nsupdate(1) syntax ---------------------------------------------- */

/* A DNS message holds at most 65,535 octets (RFC 1035 section 4.2.2: TCP's
 * two-octet length), and nsupdate(1) sends one message per "send", however
 * many updates it holds: 1000 devices moved are 4000 updates, 1.36 MB. So
 * the changes are cut into messages whose updates take at most this many
 * octets on the wire (room left for the header, the zone section and a TSIG
 * record) and that hold at most this many updates. */
#define UPDATE_MAX_OCTETS 60000
#define UPDATE_MAX_RRS 500

/* The record's length on the wire, uncompressed, as ldns encodes it. */
static KR_MUST_USE kr_err wire_size(const pub *p, const char *owner, const char *type,
				    const char *rdata, size_t *n)
{
	char *text = NULL;
	KR_ENSURE(asprintf(&text, "%s %ld IN %s %s", owner, p->z->ttl, type, rdata) > 0,
		  KR_EINTERNAL, "out of memory");
	ldns_rr *rr = NULL;
	ldns_status st = ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL);
	free(text);
	KR_ENSURE(st == LDNS_STATUS_OK, KR_EINTERNAL, "a published record of %s: %s", owner,
		  ldns_get_errorstr_by_id(st));
	*n = ldns_rr_uncompressed_size(rr);
	ldns_rr_free(rr);
	return kr_ok();
}

/* One "update add" or "update delete" line, after a "send" and the zone
 * again when the message would outgrow its bounds. */
static KR_MUST_USE kr_err update(pub *p, const char *verb, const char *owner, const char *type,
				 const char *rdata)
{
	size_t n = 0;
	KR_TRY(wire_size(p, owner, type, rdata, &n));
	if (p->msg_updates > 0 &&
	    (p->msg_octets + n > UPDATE_MAX_OCTETS || p->msg_updates == UPDATE_MAX_RRS)) {
		fprintf(p->changes, "send\nzone %s.\n", p->z->apex);
		p->msg_octets = p->msg_updates = 0;
		p->sum->messages++;
	}
	if (!strcmp(verb, "add"))
		fprintf(p->changes, "update add %s %ld %s %s\n", owner, p->z->ttl, type, rdata);
	else
		fprintf(p->changes, "update delete %s %s %s\n", owner, type, rdata);
	p->msg_octets += n;
	p->msg_updates++;
	return kr_ok();
}

static KR_MUST_USE kr_err gone(const char *owner, const char *type, const char *rdata, void *arg)
{
	pub *p = arg;
	p->sum->removed++;
	return p->changes ? update(p, "delete", owner, type, rdata) : kr_ok();
}

static KR_MUST_USE kr_err added(const char *owner, const char *type, const char *rdata, void *arg)
{
	pub *p = arg;
	p->sum->added++;
	return p->changes ? update(p, "add", owner, type, rdata) : kr_ok();
}

/* Closes f, which must have taken every write: stdio keeps a failed
 * write's error in the stream, and a later flush may well succeed. */
static KR_MUST_USE kr_err close_written(FILE *f, const char *path)
{
	int failed = ferror(f);
	if (fclose(f) != 0)
		return kr_errf(KR_EIO, "%s: write failed: %s", path, strerror(errno));
	KR_ENSURE(!failed, KR_EIO, "%s: write failed", path);
	return kr_ok();
}

static KR_MUST_USE kr_err changes(pub *p)
{
	if (!p->o->changes)
		return kr_store_publish_diff(p->store, p->z->apex, gone, added, p);
	kr_fs_out out;
	KR_TRY(kr_fs_out_open(&out, p->o->changes, 0644));
	int fd = dup(out.fd);
	p->changes = fd >= 0 ? fdopen(fd, "w") : NULL;
	kr_err e = p->changes ? kr_ok() : kr_errf(KR_EIO, "%s: %s", out.path, strerror(errno));
	if (!kr_failed(&e)) {
		fprintf(p->changes, "zone %s.\n", p->z->apex);
		e = kr_store_publish_diff(p->store, p->z->apex, gone, added, p);
		fputs("send\n", p->changes);
		p->sum->messages++;
	}
	kr_err closed = p->changes ? close_written(p->changes, out.path) : kr_ok();
	if (!kr_failed(&e))
		e = closed;
	p->changes = NULL;
	if (kr_failed(&e)) {
		kr_fs_out_abort(&out);
		return e;
	}
	return kr_fs_out_commit(&out, 1);
}

/* ---- the flow ---------------------------------------------------------------------- */

static KR_MUST_USE kr_err write_zone(pub *p, const kr_config *cfg, kr_fs_out *out)
{
	const kr_zone_conf *z = p->z;
	int fd = dup(out->fd);
	p->zone = fd >= 0 ? fdopen(fd, "w") : NULL;
	KR_ENSURE(p->zone, KR_EIO, "%s: %s", out->path, strerror(errno));
	char now[21];
	kr_utc_now(now);
	fprintf(p->zone, "; zone %s, published by keyrite %s\n", z->apex, now);
	kr_err e = kr_ok();
	if (p->o->sign) {
		p->dz = ldns_dnssec_zone_new();
		e = p->dz ? kr_ok() : kr_errf(KR_EINTERNAL, "out of memory");
	}
	if (!kr_failed(&e) && (p->o->soa || p->o->sign))
		e = apex(p);
	if (!kr_failed(&e))
		e = kr_publish_records(cfg, p->store, z, record, p);
	if (!kr_failed(&e) && p->dz)
		e = kr_publish_sign(z, &p->o->hsm, p->dz, p->sum);
	if (!kr_failed(&e) && p->dz)
		e = kr_publish_print(p->zone, p->dz);
	if (p->dz)
		ldns_dnssec_zone_deep_free(p->dz);
	p->dz = NULL;
	kr_err closed = close_written(p->zone, out->path);
	if (!kr_failed(&e))
		e = closed;
	p->zone = NULL;
	return e;
}

static KR_MUST_USE kr_err run(pub *p, const kr_config *cfg)
{
	kr_fs_out out;
	KR_TXN(t);
	KR_TRY(kr_fs_out_open_replace(&out, p->sum->zone_file, 0644));
	/* one snapshot for the zone, its files and its changes, whichever node
	 * publishes and whatever the others issue meanwhile */
	kr_err e = kr_txn_begin_snapshot(&t, p->store);
	if (!kr_failed(&e))
		e = kr_store_publish_begin(p->store);
	if (!kr_failed(&e))
		e = write_zone(p, cfg, &out);
	if (!kr_failed(&e))
		e = well_known(p, cfg);
	if (!kr_failed(&e))
		e = changes(p);
	if (kr_failed(&e)) {
		kr_fs_out_abort(&out);
		return e;
	}
	/* The zone file is in place before the store says it was published. */
	KR_TRY(kr_fs_out_commit_replace(&out));
	KR_TRY(kr_store_publish_commit(p->store, p->z->apex));
	return kr_txn_commit(&t);
}

KR_MUST_USE kr_err kr_publish(const kr_config *cfg, kr_store *store, const kr_zone_conf *z,
			      const kr_publish_opts *o, kr_publish_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	long cas = 0;
	KR_TRY(kr_store_ca_count(store, &cas));
	KR_ENSURE(cas > 0, KR_EINPUT, "the store has no CA yet: nothing to publish");
	KR_ENSURE(!o->sign || (z->ksk_uri[0] && z->zsk_uri[0]), KR_EUSAGE,
		  "zone %s: --sign needs ksk_uri and zsk_uri in [zone_%s]", z->apex, z->name);
	KR_ENSURE(!(o->soa || o->sign) || (z->soa_mname[0] && z->soa_rname[0] && z->nns > 0),
		  KR_EUSAGE,
		  "zone %s: a complete zone (--soa, --sign) needs soa_mname, soa_rname and ns in "
		  "[zone_%s]",
		  z->apex, z->name);
	KR_ENSURE(mkdir(o->out_dir, 0755) == 0 || errno == EEXIST, KR_EIO, "%s: cannot create: %s",
		  o->out_dir, strerror(errno));
	int n = snprintf(sum->zone_file, sizeof sum->zone_file, "%s/%s.zone", o->out_dir, z->apex);
	KR_ENSURE(n > 0 && (size_t)n < sizeof sum->zone_file, KR_EUSAGE, "%s: path too long",
		  o->out_dir);
	pub p = {z, o, store, sum, NULL, NULL, NULL};
	return run(&p, cfg);
}
