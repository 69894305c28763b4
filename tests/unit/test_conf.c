#include "../../util/nconf.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

static const kr_field fields[] = {
	{"name", KR_F_STRING, 1},
	{"count", KR_F_INT, 0},
	{"enabled", KR_F_BOOL, 0},
	{"more", KR_F_SECTION, 0},
};
#define NFIELDS (sizeof fields / sizeof *fields)

TestSuite(conf, .fini = kr_test_cleanup);

Test(conf, accepts_a_good_section)
{
	kr_nconf *c = NULL;
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("a.cnf", "[s]\nname = x\ncount = 7\nenabled = yes\n"
							 "more = extra\n[extra]\nk = v\n"),
				   &c));
	KR_ASSERT_OK(kr_nconf_check(c, "s", fields, NFIELDS));
	KR_ASSERT_OK(kr_nconf_check_unused(c));
	long n = 0;
	KR_ASSERT_OK(kr_nconf_get_long(c, "s", "count", 1, 10, &n));
	cr_assert_eq(n, 7);
	cr_assert_eq(kr_nconf_get_bool(c, "s", "enabled", 0), 1);
	kr_nconf_free(c);
}

Test(conf, unknown_key_is_located)
{
	kr_nconf *c = NULL;
	KR_ASSERT_OK(kr_nconf_load(
		kr_test_file("b.cnf", "# comment\n[s]\nname = x\n\ncolour = red\n"), &c));
	KR_ASSERT_ERR(kr_nconf_check(c, "s", fields, NFIELDS), KR_EINPUT,
		      "b.cnf:5: [s] colour: unknown key");
	kr_nconf_free(c);
}

Test(conf, missing_wrong_and_duplicate)
{
	kr_nconf *c = NULL;
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("c.cnf", "[s]\ncount = 3\n"), &c));
	KR_ASSERT_ERR(kr_nconf_check(c, "s", fields, NFIELDS), KR_EINPUT,
		      "missing required key 'name'");
	kr_nconf_free(c);
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("d.cnf", "[s]\nname = x\ncount = -3\n"), &c));
	KR_ASSERT_ERR(kr_nconf_check(c, "s", fields, NFIELDS), KR_EINPUT, "d.cnf:3: [s] count");
	kr_nconf_free(c);
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("e.cnf", "[s]\nname = x\nenabled = maybe\n"), &c));
	KR_ASSERT_ERR(kr_nconf_check(c, "s", fields, NFIELDS), KR_EINPUT, "expected yes or no");
	kr_nconf_free(c);
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("f.cnf", "[s]\nname = x\nname = y\n"), &c));
	KR_ASSERT_ERR(kr_nconf_check(c, "s", fields, NFIELDS), KR_EINPUT, "key given twice");
	kr_nconf_free(c);
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("g.cnf", "[s]\nname = x\nmore = nowhere\n"), &c));
	KR_ASSERT_ERR(kr_nconf_check(c, "s", fields, NFIELDS), KR_EINPUT,
		      "names section [nowhere]");
	kr_nconf_free(c);
}

Test(conf, unused_section_and_stray_key)
{
	kr_nconf *c = NULL;
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("h.cnf", "[s]\nname = x\n[ghost]\na = b\n"), &c));
	KR_ASSERT_OK(kr_nconf_check(c, "s", fields, NFIELDS));
	KR_ASSERT_ERR(kr_nconf_check_unused(c), KR_EINPUT, "h.cnf:3: [ghost]: section is not used");
	kr_nconf_free(c);
	KR_ASSERT_OK(kr_nconf_load(kr_test_file("i.cnf", "stray = 1\n[s]\nname = x\n"), &c));
	KR_ASSERT_OK(kr_nconf_check(c, "s", fields, NFIELDS));
	KR_ASSERT_ERR(kr_nconf_check_unused(c), KR_EINPUT, "i.cnf:1: [default] stray");
	kr_nconf_free(c);
}

Test(conf, syntax_error_and_missing_file)
{
	kr_nconf *c = NULL;
	KR_ASSERT_ERR(kr_nconf_load(kr_test_file("j.cnf", "[s]\nname = x\n[broken\n"), &c),
		      KR_EINPUT, "j.cnf:3: syntax error");
	KR_ASSERT_ERR(kr_nconf_load("/nonexistent/k.cnf", &c), KR_EIO, "cannot open");
}
