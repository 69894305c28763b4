#include "../../util/base64.h"
#include "helpers.h"
#include "../../util/text.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* The example from the PGP word list's publication (also on Wikipedia). */
Test(text, pgp_words_published_example)
{
	const uint8_t fp[] = {0xE5, 0x82, 0x94, 0xF2, 0xE9, 0xA2, 0x27, 0x48, 0x6E, 0x8B,
			      0x06, 0x1B, 0x31, 0xCC, 0x52, 0x8F, 0xD7, 0xFA, 0x3F, 0x19};
	char out[512];
	kr_pgp_words(fp, sizeof fp, out, sizeof out);
	cr_assert_str_eq(out, "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator "
			      "goldfish Medusa afflict bravado chatter revolver Dupont midsummer "
			      "stopwatch whimsical cowbell bottomless");
}

Test(text, pgp_words_truncate_safely)
{
	const uint8_t b[] = {0, 0, 0, 0};
	char out[16];
	kr_pgp_words(b, sizeof b, out, sizeof out);
	cr_assert_str_eq(out, "aardvark");
}

Test(text, hex_and_groups)
{
	const uint8_t b[] = {0x01, 0xab, 0xcd, 0xef, 0x10};
	char hex[11], groups[16];
	kr_hex(b, sizeof b, hex);
	kr_hex_groups(b, sizeof b, groups);
	cr_assert_str_eq(hex, "01abcdef10");
	cr_assert_str_eq(groups, "01AB CDEF 10");
}

Test(text, utc_now_is_rfc3339)
{
	char now[21];
	kr_utc_now(now);
	cr_assert_eq(strlen(now), 20);
	cr_assert_eq(now[10], 'T');
	cr_assert_eq(now[19], 'Z');
}

Test(text, base64_round_trip_breaks_and_refusals)
{
	static const uint8_t in[] = {0, 1, 2, 0xfe, 0xff};
	char *b64 = NULL;
	size_t n = 0;
	KR_ASSERT_OK(kr_base64_encode(in, sizeof in, &b64, &n));
	cr_assert_str_eq(b64, "AAEC/v8=");
	cr_assert_eq(n, 8);
	uint8_t *out = NULL;
	size_t len = 0;
	KR_ASSERT_OK(kr_base64_decode("AAEC\n/v8=\n", 10, &out, &len));
	cr_assert_eq(len, sizeof in);
	cr_assert(memcmp(out, in, len) == 0);
	free(out);
	KR_ASSERT_ERR(kr_base64_decode("AA*C", 4, &out, &len), KR_EINPUT, "not base64");
	cr_assert_null(out);
	KR_ASSERT_ERR(kr_base64_decode("AAE", 3, &out, &len), KR_EINPUT, "not base64");
	KR_ASSERT_ERR(kr_base64_decode("", 0, &out, &len), KR_EINPUT, "not base64");
	free(b64);
}
