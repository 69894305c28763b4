/* Shared by the unit tests: temporary files and a private SoftHSM token. */
#ifndef KR_TEST_HELPERS_H
#define KR_TEST_HELPERS_H

#include "../../hsm/hsm.h"

/* A new temporary directory (removed by kr_test_cleanup). */
const char *kr_test_dir(void);
/* Writes text to dir/name and returns the path (static buffer per call site). */
char *kr_test_file(const char *name, const char *text);
/* Creates a SoftHSM token labelled label in a private token directory and a
 * 0600 PIN file; returns the PIN source. */
kr_pin_source kr_test_token(const char *label);
void kr_test_cleanup(void);

#define KR_ASSERT_OK(expr)                                                                         \
	do {                                                                                       \
		kr_err kr_t_e_ = (expr);                                                           \
		cr_assert(kr_t_e_.code == KR_OK, "%s: %s", #expr, kr_t_e_.msg);                    \
	} while (0)

#define KR_ASSERT_ERR(expr, want_code, substring)                                                  \
	do {                                                                                       \
		kr_err kr_t_e_ = (expr);                                                           \
		cr_assert(kr_t_e_.code == (want_code), "%s: code %d, want %d (%s)", #expr,         \
			  kr_t_e_.code, (want_code), kr_t_e_.msg);                                 \
		cr_assert(strstr(kr_t_e_.msg, (substring)) != NULL, "'%s' lacks '%s'",             \
			  kr_t_e_.msg, (substring));                                               \
	} while (0)

#endif
