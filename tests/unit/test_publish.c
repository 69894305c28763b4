/* The zone printer against ldns's own, on a zone of several rounds of
 * slices (names and NSEC3 records, the apex with more than its SOA). */
#include "../../publish/internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(ldns_dnssec_zone *z, const char *text)
{
	ldns_rr *rr = NULL;
	cr_assert_eq(ldns_rr_new_frm_str(&rr, text, 3600, NULL, NULL), LDNS_STATUS_OK, "%s", text);
	cr_assert_eq(ldns_dnssec_zone_add_rr(z, rr), LDNS_STATUS_OK, "%s", text);
}

Test(publish, zone_printed_on_every_core_as_ldns_prints_it)
{
	ldns_dnssec_zone *z = ldns_dnssec_zone_new();
	cr_assert(z);
	add(z, "example. 3600 IN SOA ns1.example. h.example. 1 7200 3600 1209600 3600");
	add(z, "example. 3600 IN NS ns1.example.");
	add(z, "ns1.example. 3600 IN A 192.0.2.1");
	add(z, "example. 0 IN NSEC3PARAM 1 0 0 -");
	char text[200];
	for (int i = 0; i < 20000; i++) {
		snprintf(text, sizeof text,
			 "%d.%d._device.example. 3600 IN TLSA 3 1 1 "
			 "%064x",
			 i % 7, i, i);
		add(z, text);
	}
	ldns_rr_list *added = ldns_rr_list_new();
	cr_assert_eq(ldns_dnssec_zone_add_empty_nonterminals(z), LDNS_STATUS_OK);
	cr_assert_eq(ldns_dnssec_zone_create_nsec3s(z, added, LDNS_SHA1, 0, 0, 0, NULL),
		     LDNS_STATUS_OK);

	char *ours = NULL, *theirs = NULL;
	size_t ours_len = 0, theirs_len = 0;
	FILE *f = open_memstream(&ours, &ours_len);
	kr_err e = kr_publish_print(f, z);
	cr_assert(!kr_failed(&e), "%s", e.msg);
	fclose(f);
	f = open_memstream(&theirs, &theirs_len);
	ldns_dnssec_zone_print(f, z);
	fclose(f);
	cr_assert_gt(theirs_len, 20000 * 100, "the zone spans several rounds");
	cr_assert_eq(ours_len, theirs_len);
	cr_assert(memcmp(ours, theirs, ours_len) == 0, "same text as ldns");
	free(ours);
	free(theirs);
	ldns_rr_list_free(added);
	ldns_dnssec_zone_deep_free(z);
}
