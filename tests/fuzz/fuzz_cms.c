/* The CMS firmware verifier (ca/fw_cms.c, ca/fw_attrs.c): SignedData,
 * detached or encapsulated, over a firmware package or an encrypted one,
 * the chain to a real root, and RFC 4108's signed attributes, which are
 * also decoded directly (a random input rarely carries a good signature). */
#include "fuzz.h"
#include "../../fw/internal.h"

#include <limits.h>
#include <openssl/cms.h>
#include <openssl/err.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void verify(const char *path, int detached)
{
	char root[PATH_MAX], content[PATH_MAX], summary[1024];
	kr_fuzz_repo_file("tests/fuzz/fixtures/root.pem", root);
	kr_fuzz_repo_file("tests/fuzz/fixtures/fw.bin", content);
	kr_fw_verify_opts o = {.format = KR_FW_CMS,
			       .root = root,
			       .content = detached ? content : NULL,
			       .expect_version = "7",
			       .hardware = "1.3.6.1.4.1.32473.2.1"};
	kr_err e = kr_fw_verify(&o, path, summary, sizeof summary);
	(void)kr_failed(&e);
}

static void attributes(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)size);
	STACK_OF(CMS_SignerInfo) *sis = cms ? CMS_get0_SignerInfos(cms) : NULL;
	kr_fw_verify_opts o = {.format = KR_FW_CMS, .package = "1.3.6.1.4.1.32473.1.1"};
	for (int i = 0; i < sk_CMS_SignerInfo_num(sis); i++) {
		char desc[512] = "";
		kr_err e = kr_fw_attrs_check("fuzz", sk_CMS_SignerInfo_value(sis, i), &o, i & 1,
					     desc, sizeof desc);
		(void)kr_failed(&e);
	}
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[PATH_MAX];
	kr_fuzz_file("fw.p7", data, size, path);
	verify(path, 0);
	verify(path, 1);
	attributes(data, size);
	return 0;
}
