/* The registry's parts that need no store: auth codes and device ids. The
 * state machine is checked end to end, every command x account x state,
 * by tests/e2e/t_registry.sh against docs/registry.md's table. */
#include "../../registry/authcode.h"
#include "../../registry/internal.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

TestSuite(registry, .fini = kr_test_cleanup);

Test(registry, auth_codes_are_128_bits_salted_and_read_loosely)
{
	kr_hsm_opts o = {.pin = kr_test_token("codes")};
	kr_hsm *h = NULL;
	KR_ASSERT_OK(kr_hsm_open("pkcs11:token=codes", &o, &h));
	char a[KR_CODE_TEXT + 1], b[KR_CODE_TEXT + 1];
	uint8_t salt_a[16], hash_a[32], salt_b[16], hash_b[32];
	KR_ASSERT_OK(kr_authcode_new(h, "1000000000000001", a, salt_a, hash_a));
	KR_ASSERT_OK(kr_authcode_new(h, "1000000000000001", b, salt_b, hash_b));
	kr_hsm_close(h);
	cr_assert_eq(strlen(a), 35);
	cr_assert(a[8] == '-' && a[17] == '-' && a[26] == '-', "%s", a);
	cr_assert(strcmp(a, b) != 0 && memcmp(salt_a, salt_b, 16) != 0, "two codes alike");
	int yes = 0;
	KR_ASSERT_OK(kr_authcode_matches(a, "1000000000000001", salt_a, hash_a, &yes));
	cr_assert(yes);
	/* as an owner may hand it over: upper case, no hyphens, spaces */
	char loose[64];
	size_t n = 0;
	for (const char *p = a; *p; p++)
		if (*p != '-')
			loose[n++] = (char)toupper((unsigned char)*p);
	loose[n] = '\0';
	KR_ASSERT_OK(kr_authcode_matches(loose, "1000000000000001", salt_a, hash_a, &yes));
	cr_assert(yes, "%s", loose);
	/* the same code for another device, another code, a short or long one */
	KR_ASSERT_OK(kr_authcode_matches(a, "1000000000000002", salt_a, hash_a, &yes));
	cr_assert(!yes);
	KR_ASSERT_OK(kr_authcode_matches(b, "1000000000000001", salt_a, hash_a, &yes));
	cr_assert(!yes);
	char shorter[KR_CODE_TEXT + 1];
	memcpy(shorter, a, KR_CODE_TEXT - 1);
	shorter[KR_CODE_TEXT - 1] = '\0';
	KR_ASSERT_OK(kr_authcode_matches(shorter, "1000000000000001", salt_a, hash_a, &yes));
	cr_assert(!yes);
	char longer[KR_CODE_TEXT + 3];
	snprintf(longer, sizeof longer, "%s0", a);
	KR_ASSERT_OK(kr_authcode_matches(longer, "1000000000000001", salt_a, hash_a, &yes));
	cr_assert(!yes);
	KR_ASSERT_OK(kr_authcode_matches("g0000000-00000000-00000000-00000000", "1000000000000001",
					 salt_a, hash_a, &yes));
	cr_assert(!yes);
}

Test(registry, device_ids_are_eids_or_iccid_length)
{
	KR_ASSERT_OK(kr_reg_device_id_check("302220601105021"));
	KR_ASSERT_OK(kr_reg_device_id_check("1000000000000001"));
	KR_ASSERT_OK(kr_reg_device_id_check("89049032000000000000000000000066"));
	KR_ASSERT_ERR(kr_reg_device_id_check("89049032000000000000000000000067"), KR_EINPUT,
		      "check digits");
	KR_ASSERT_ERR(kr_reg_device_id_check("12345"), KR_EINPUT, "not an eID");
	KR_ASSERT_ERR(kr_reg_device_id_check("1000000000000001a"), KR_EINPUT, "not an eID");
	KR_ASSERT_ERR(kr_reg_device_id_check(""), KR_EINPUT, "not an eID");
	KR_ASSERT_ERR(kr_reg_device_id_check("123456789012345678901"), KR_EINPUT, "not an eID");
}

Test(registry, rules_name_what_refuses)
{
	kr_reg_verdict v = kr_reg_decide(KR_CMD_ACTIVATE, KR_ROLE_SPONSOR, KR_ST_REGISTERED, 0);
	cr_assert(v.allowed && v.to == KR_ST_ACTIVE);
	v = kr_reg_decide(KR_CMD_ACTIVATE, KR_ROLE_SPONSOR, KR_ST_REGISTERED, KR_FL_HOLD);
	cr_assert(!v.allowed && strstr(v.reason, "on hold"));
	v = kr_reg_decide(KR_CMD_TRANSFER_APPROVE, KR_ROLE_SPONSOR, KR_ST_ACTIVE,
			  KR_FL_PENDING_TRANSFER);
	cr_assert(v.allowed && v.to == KR_ST_REGISTERED && v.revoke_reason == 3);
	v = kr_reg_decide(KR_CMD_DELETE, KR_ROLE_MNO, KR_ST_ACTIVE, 0);
	cr_assert(!v.allowed && strstr(v.reason, "MNO"));
	/* a rekey: the MNO's, of an active device; the old certificate superseded */
	v = kr_reg_decide(KR_CMD_REKEY, KR_ROLE_MNO, KR_ST_ACTIVE, 0);
	cr_assert(v.allowed && v.to == KR_ST_ACTIVE && v.revoke_reason == 4);
	v = kr_reg_decide(KR_CMD_REKEY, KR_ROLE_MNO, KR_ST_REGISTERED, 0);
	cr_assert(!v.allowed && strstr(v.reason, "not active"));
	v = kr_reg_decide(KR_CMD_REKEY, KR_ROLE_OTHER_ASP, KR_ST_ACTIVE, 0);
	cr_assert(!v.allowed);
	/* an enrollment secret is the owner's to make, as an auth code */
	v = kr_reg_decide(KR_CMD_SECRET, KR_ROLE_OWNER, KR_ST_LISTED, 0);
	cr_assert(v.allowed && v.to == KR_ST_LISTED && v.revoke_reason == -1);
	v = kr_reg_decide(KR_CMD_SECRET, KR_ROLE_MNO, KR_ST_ACTIVE, 0);
	cr_assert(!v.allowed && strstr(v.reason, "MNO"));
	v = kr_reg_decide((kr_reg_cmd)99, KR_ROLE_OPERATOR, KR_ST_ACTIVE, 0);
	cr_assert(!v.allowed);
	cr_assert_eq(kr_reg_lock_named("transferProhibited"), KR_LOCK_TRANSFER);
	cr_assert_eq(kr_reg_lock_named("update"), KR_LOCK_UPDATE);
	cr_assert_eq(kr_reg_lock_named("everything"), 0);
}
