/* Feldman VSS (crypto/vss.h): any M shares rebuild the secret, fewer are
 * refused and cannot be eked out with a forged one, and every one-bit
 * change in a share, or a share of another backup, is detected. */
#include "../../crypto/backup.h"
#include "../../crypto/keys.h"
#include "../../crypto/share.h"
#include "../../crypto/vss.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <openssl/rand.h>
#include <string.h>

static kr_code code_of(kr_err e) { return e.code; }

static void scalar(uint8_t b[32])
{
	do
		cr_assert(RAND_bytes(b, 32) == 1);
	while (!kr_vss_scalar_ok(b));
}

static void split(int m, int n, uint8_t secret[32], kr_vss_share *sh, kr_vss_verifier *v)
{
	uint8_t coeffs[(KR_VSS_MAX - 1) * 32];
	scalar(secret);
	for (int j = 0; j < m - 1; j++)
		scalar(coeffs + 32 * j);
	KR_ASSERT_OK(kr_vss_split(secret, m, n, coeffs, (size_t)(m - 1) * 32, sh, v));
}

Test(vss, any_m_of_n_rebuild_the_secret)
{
	uint8_t secret[32], got[32];
	kr_vss_share sh[5], pick[5];
	kr_vss_verifier v;
	split(3, 5, secret, sh, &v);
	int combos = 0;
	for (int a = 0; a < 5; a++)
		for (int b = a + 1; b < 5; b++)
			for (int c = b + 1; c < 5; c++) {
				pick[0] = sh[c], pick[1] = sh[a], pick[2] = sh[b]; /* any order */
				memset(got, 0, sizeof got);
				KR_ASSERT_OK(kr_vss_combine(&v, pick, 3, got));
				cr_assert(!memcmp(got, secret, 32), "shares %d %d %d", a, b, c);
				combos++;
			}
	cr_assert_eq(combos, 10);
	KR_ASSERT_OK(kr_vss_combine(&v, sh, 5, got)); /* more than M: the first M */
	cr_assert(!memcmp(got, secret, 32));
	/* 16 of 16, and 2 of 2 */
	kr_vss_share big[KR_VSS_MAX];
	kr_vss_verifier vb;
	split(KR_VSS_MAX, KR_VSS_MAX, secret, big, &vb);
	KR_ASSERT_OK(kr_vss_combine(&vb, big, KR_VSS_MAX, got));
	cr_assert(!memcmp(got, secret, 32));
	split(2, 2, secret, big, &vb);
	KR_ASSERT_OK(kr_vss_combine(&vb, big, 2, got));
	cr_assert(!memcmp(got, secret, 32));
}

Test(vss, fewer_than_m_or_a_forged_or_repeated_share_is_refused)
{
	uint8_t secret[32], got[32];
	kr_vss_share sh[5];
	kr_vss_verifier v;
	split(3, 5, secret, sh, &v);
	KR_ASSERT_ERR(kr_vss_combine(&v, sh, 2, got), KR_EINPUT, "3 are needed");
	/* M-1 good shares and a made-up third: the made-up one does not check */
	kr_vss_share three[3] = {sh[0], sh[1], {.index = 5}};
	cr_assert(RAND_bytes(three[2].value, 32) == 1);
	KR_ASSERT_ERR(kr_vss_combine(&v, three, 3, got), KR_EVERIFY, "share 5 does not match");
	kr_vss_share twice[3] = {sh[0], sh[1], sh[1]};
	KR_ASSERT_ERR(kr_vss_combine(&v, twice, 3, got), KR_EINPUT, "share 2 given twice");
}

Test(vss, every_one_bit_change_in_a_share_is_detected)
{
	uint8_t secret[32];
	kr_vss_share sh[5];
	kr_vss_verifier v;
	split(3, 5, secret, sh, &v);
	for (int s = 0; s < 5; s++) {
		KR_ASSERT_OK(kr_vss_check(&v, &sh[s]));
		for (int bit = 0; bit < 256; bit++) {
			kr_vss_share t = sh[s];
			t.value[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
			cr_assert(code_of(kr_vss_check(&v, &t)) == KR_EVERIFY, "share %d bit %d",
				  s + 1, bit);
		}
		for (int bit = 0; bit < 8; bit++) { /* its index */
			kr_vss_share t = sh[s];
			t.index ^= 1 << bit;
			cr_assert(code_of(kr_vss_check(&v, &t)) == KR_EVERIFY,
				  "share %d index bit %d", s + 1, bit);
		}
	}
}

Test(vss, a_share_of_another_backup_is_refused)
{
	uint8_t s1[32], s2[32];
	kr_vss_share a[5], b[5];
	kr_vss_verifier va, vb;
	split(3, 5, s1, a, &va);
	split(3, 5, s2, b, &vb);
	KR_ASSERT_ERR(kr_vss_check(&va, &b[0]), KR_EVERIFY, "of another backup");
}

Test(vss, verifier_encodes_and_refuses_what_is_not_one)
{
	uint8_t secret[32], buf[1 + KR_VSS_MAX * KR_VSS_POINT];
	kr_vss_share sh[5];
	kr_vss_verifier v, back;
	split(3, 5, secret, sh, &v);
	size_t len = 0;
	KR_ASSERT_OK(kr_vss_verifier_encode(&v, buf, sizeof buf, &len));
	cr_assert_eq(len, 1 + 3 * 33); /* 100 bytes */
	KR_ASSERT_OK(kr_vss_verifier_decode(buf, len, &back));
	cr_assert(back.m == 3 && !memcmp(back.c, v.c, 3 * 33));
	KR_ASSERT_OK(kr_vss_check(&back, &sh[4]));
	KR_ASSERT_ERR(kr_vss_verifier_decode(buf, len - 1, &back), KR_EINPUT, "not a verifier");
	buf[1] = 0x05; /* not a compressed point's prefix */
	KR_ASSERT_ERR(kr_vss_verifier_decode(buf, len, &back), KR_EINPUT, "not on P-256");
}

Test(vss, a_secret_not_below_the_order_or_bad_counts_are_refused)
{
	uint8_t ff[32], coeffs[64];
	memset(ff, 0xff, sizeof ff);
	memset(coeffs, 1, sizeof coeffs);
	kr_vss_share sh[5];
	kr_vss_verifier v;
	KR_ASSERT_ERR(kr_vss_split(ff, 3, 5, coeffs, 64, sh, &v), KR_EINPUT, "draw it again");
	memset(ff, 0, sizeof ff);
	KR_ASSERT_ERR(kr_vss_split(ff, 3, 5, coeffs, 64, sh, &v), KR_EINPUT, "zero");
	ff[31] = 1;
	KR_ASSERT_ERR(kr_vss_split(ff, 1, 5, coeffs, 0, sh, &v), KR_EINPUT, "2 <= M <= N");
	KR_ASSERT_ERR(kr_vss_split(ff, 6, 5, coeffs, 64, sh, &v), KR_EINPUT, "2 <= M <= N");
	KR_ASSERT_ERR(kr_vss_split(ff, 3, 5, coeffs, 32, sh, &v), KR_EINPUT, "random bytes");
}

/* A share on paper: five lines typed back, in any case and spacing, give
 * the share; a typo is named by its line, and so is a line typed in the
 * wrong place. */
Test(vss, a_share_on_paper_is_typed_back_and_typos_are_named)
{
	uint8_t secret[32];
	kr_vss_share sh[5];
	kr_vss_verifier v;
	split(3, 5, secret, sh, &v);
	char lines[KR_SHARE_LINES][KR_SHARE_LINE_MAX];
	for (int i = 1; i <= KR_SHARE_LINES; i++)
		kr_share_line(&sh[3], i, lines[i - 1]);
	cr_assert(!strncmp(lines[0], "1: 04", 5), "%s", lines[0]); /* the index first */
	cr_assert_eq(strlen(lines[0]), strlen("1: 04a1 3f5c 9e00 7b12  c4d1"), "%s", lines[0]);
	kr_vss_share back = {0};
	for (int i = 1; i <= KR_SHARE_LINES; i++)
		KR_ASSERT_OK(kr_share_read_line(lines[i - 1], i, &back));
	cr_assert(back.index == 4 && !memcmp(back.value, sh[3].value, 32));
	KR_ASSERT_OK(kr_vss_check(&v, &back));
	/* as a person may type it: upper case, no spaces, no number */
	char loose[KR_SHARE_LINE_MAX];
	size_t n = 0;
	for (const char *p = strchr(lines[2], ':') + 1; *p; p++)
		if (*p != ' ')
			loose[n++] = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	loose[n] = '\0';
	KR_ASSERT_OK(kr_share_read_line(loose, 3, &back));
	/* one digit wrong: its line says so */
	char typo[KR_SHARE_LINE_MAX];
	strcpy(typo, lines[2]);
	char *d = typo + 4;
	*d = *d == '0' ? '1' : '0';
	KR_ASSERT_ERR(kr_share_read_line(typo, 3, &back), KR_EINPUT, "line 3: its checksum");
	/* line 2's text typed as line 3 */
	KR_ASSERT_ERR(kr_share_read_line(strchr(lines[1], ':') + 1, 3, &back), KR_EINPUT,
		      "line 3: its checksum");
	KR_ASSERT_ERR(kr_share_read_line(lines[1], 3, &back), KR_EINPUT, "numbered 2");
	KR_ASSERT_ERR(kr_share_read_line("1: 02a1 zz", 1, &back), KR_EINPUT, "not a hex digit");
	KR_ASSERT_ERR(kr_share_read_line("1: 02a1", 1, &back), KR_EINPUT, "line 1: 4 digits");
	char words[256];
	KR_ASSERT_OK(kr_share_verifier_words(&v, words, sizeof words));
	int spaces = 0;
	for (const char *p = words; *p; p++)
		spaces += *p == ' ';
	cr_assert_eq(spaces, 7, "%s", words);
}

/* crypto/backup: a backup file and a verifier file read back as written,
 * and one not keyrite's, another PEM, a bad field or trailing bytes refused. */
Test(vss, backup_and_verifier_files_round_trip_and_refuse_others)
{
	uint8_t secret[32];
	kr_vss_share sh[5];
	kr_vss_verifier v, back;
	split(3, 5, secret, sh, &v);
	char *pem = NULL;
	size_t len = 0;
	KR_ASSERT_OK(kr_backup_verifier_encode(&v, &pem, &len));
	KR_ASSERT_OK(kr_backup_verifier_decode((uint8_t *)pem, len, &back));
	cr_assert_eq(memcmp(&v, &back, sizeof v), 0);
	kr_backup_file f = {.label = "root-2026", .id = {1, 2, 3}, .id_len = 3, .wrapped_len = 40};
	KR_ASSERT_ERR(kr_backup_file_decode((uint8_t *)pem, len, &f), KR_EINPUT,
		      "a PEM KEYRITE VSS VERIFIER, not a KEYRITE WRAPPED KEY");
	OPENSSL_free(pem);

	kr_backup_file w = {.label = "root-2026", .id = {1, 2, 3}, .id_len = 3, .wrapped_len = 40};
	memset(w.wrapped, 0xa5, w.wrapped_len);
	KR_ASSERT_OK(kr_backup_verifier_sha256(&v, w.verifier_sha256));
	KR_ASSERT_OK(kr_throwaway_key(KR_KEY_EC_P256, &w.pub));
	KR_ASSERT_OK(kr_backup_file_encode(&w, &pem, &len));
	kr_backup_file r;
	KR_ASSERT_OK(kr_backup_file_decode((uint8_t *)pem, len, &r));
	cr_assert_str_eq(r.label, "root-2026");
	cr_assert(r.id_len == 3 && r.id[2] == 3 && r.wrapped_len == 40 && r.wrapped[39] == 0xa5);
	cr_assert_eq(memcmp(r.verifier_sha256, w.verifier_sha256, 32), 0);
	cr_assert_eq(EVP_PKEY_eq(r.pub, w.pub), 1);
	kr_backup_file_clear(&r);
	KR_ASSERT_ERR(kr_backup_verifier_decode((uint8_t *)pem, len, &back), KR_EINPUT,
		      "not a KEYRITE VSS VERIFIER");
	OPENSSL_free(pem);
	KR_ASSERT_ERR(kr_backup_file_decode((const uint8_t *)"hello", 5, &r), KR_EINPUT,
		      "not a PEM KEYRITE WRAPPED KEY");
	w.wrapped_len = 8; /* shorter than any RFC 5649 wrap */
	KR_ASSERT_OK(kr_backup_file_encode(&w, &pem, &len));
	KR_ASSERT_ERR(kr_backup_file_decode((uint8_t *)pem, len, &r), KR_EINPUT,
		      "the wrapped key is 8 bytes");
	OPENSSL_free(pem);
	EVP_PKEY_free(w.pub);
}
