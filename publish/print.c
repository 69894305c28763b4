/* The signed zone in presentation form, printed by ldns on every core.
 * ldns_dnssec_zone_print walks the names in canonical order on one thread
 * (about 2 s for 100,000 devices' signed records); here the names are cut
 * into slices, each slice printed into memory by a worker with ldns's own
 * per-name printer, and the slices written in order, a round at a time so
 * memory stays bounded. The output is the same text ldns would print: the
 * SOA first, then every name, the apex without its SOA. */
#include "internal.h"
#include "../util/mem.h"
#include "../util/parallel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLICE 2048 /* names per slice */
#define MAX_PRINTERS 8

typedef struct slice {
	const ldns_dnssec_name **names;
	size_t n;
	const ldns_dnssec_name *apex;
	char *text;
	size_t len;
} slice;

/* The apex as ldns prints it after the SOA: its other RRsets, its NSEC. */
static void print_apex(FILE *out, const ldns_dnssec_name *apex)
{
	const ldns_output_format *fmt = ldns_output_format_default;
	for (const ldns_dnssec_rrsets *s = apex->rrsets; s; s = s->next)
		if (s->type != LDNS_RR_TYPE_SOA)
			ldns_dnssec_rrsets_print_fmt(out, fmt, s, false);
	if (apex->nsec)
		ldns_rr_print_fmt(out, fmt, apex->nsec);
	if (apex->nsec_signatures)
		ldns_dnssec_rrs_print_fmt(out, fmt, apex->nsec_signatures);
}

static void print_slice(void *arg, int at, int worker)
{
	(void)worker;
	slice *sl = (slice *)arg + at;
	FILE *out = open_memstream(&sl->text, &sl->len);
	if (!out)
		return;
	for (size_t i = 0; i < sl->n; i++) {
		if (sl->names[i] == sl->apex)
			print_apex(out, sl->apex);
		else
			ldns_dnssec_name_print_fmt(out, ldns_output_format_default, sl->names[i]);
	}
	if (fclose(out) != 0) {
		free(sl->text);
		sl->text = NULL;
	}
}

/* One round: up to n slices printed at once, then written in order. */
static KR_MUST_USE kr_err print_round(FILE *out, slice *sl, int n)
{
	kr_parallel_for(n, n, print_slice, sl);
	kr_err e = kr_ok();
	for (int i = 0; i < n; i++) {
		if (!kr_failed(&e) && !sl[i].text)
			e = kr_errf(KR_EINTERNAL, "out of memory printing the zone");
		if (!kr_failed(&e) && fwrite(sl[i].text, 1, sl[i].len, out) != sl[i].len)
			e = kr_errf(KR_EIO, "writing the zone: %s", strerror(errno));
		free(sl[i].text);
		sl[i].text = NULL;
	}
	return e;
}

KR_MUST_USE kr_err kr_publish_print(FILE *out, const ldns_dnssec_zone *zone)
{
	ldns_dnssec_rrsets *soa =
		zone->soa ? ldns_dnssec_name_find_rrset(zone->soa, LDNS_RR_TYPE_SOA) : NULL;
	KR_ENSURE(soa, KR_EINTERNAL, "the zone has no SOA");
	ldns_dnssec_rrsets_print_fmt(out, ldns_output_format_default, soa, false);

	const ldns_dnssec_name **names = NULL;
	size_t n = 0, cap = 0;
	kr_err e = kr_ok();
	for (ldns_rbnode_t *node = ldns_rbtree_first(zone->names);
	     node != LDNS_RBTREE_NULL && !kr_failed(&e); node = ldns_rbtree_next(node)) {
		e = kr_grow((void **)&names, &cap, n + 1, sizeof(const ldns_dnssec_name *));
		if (!kr_failed(&e))
			names[n++] = node->data;
	}
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int printers = cores < 1 ? 1 : cores > MAX_PRINTERS ? MAX_PRINTERS : (int)cores;
	for (size_t at = 0; at < n && !kr_failed(&e);) {
		slice sl[MAX_PRINTERS];
		int k = 0;
		for (; k < printers && at < n; k++) {
			size_t take = n - at < SLICE ? n - at : SLICE;
			sl[k] = (slice){names + at, take, zone->soa, NULL, 0};
			at += take;
		}
		e = print_round(out, sl, k);
	}
	free(names);
	return e;
}
