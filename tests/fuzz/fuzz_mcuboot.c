/* MCUboot images: what keyrite reads of an image before it signs (its
 * header, layout and unsigned TLV area, or a raw binary's reserved header
 * area, in every way of giving one: ca/fw_mcuboot.c), and the header and TLV
 * area keyrite fw verify walks, with a real signer certificate and root.
 * The first input byte picks the options, the rest is the image. */
#include "fuzz.h"
#include "../../fw/internal.h"

#include <limits.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inspect(uint8_t how, const char *path)
{
	kr_fw_opts o = {
		.format = KR_FW_MCUBOOT,
		.raw = how & 1,
		.pad_header = (how >> 1) & 1,
		.erased_val = how & 4 ? 0 : 0xff,
		.nrecipients = (how >> 3) & 1, /* padding for encryption */
		.header_size = (uint16_t)(32u << ((how >> 4) & 3)),
		.load_addr = how & 64 ? 0x20000000u : 0,
	};
	kr_fw_image img = {.fd = -1};
	kr_err e = kr_fw_image_open(path, &img);
	if (!kr_failed(&e))
		e = kr_fw_mcuboot_inspect(&o, &img);
	(void)kr_failed(&e);
	if (img.fd >= 0)
		close(img.fd);
}

static void verify(uint8_t how, const char *path)
{
	char root[PATH_MAX], cert[PATH_MAX], summary[1024];
	kr_fuzz_repo_file("tests/fuzz/fixtures/root.pem", root);
	kr_fuzz_repo_file("tests/fuzz/fixtures/firmware-chain.pem", cert);
	kr_fw_verify_opts o = {.format = KR_FW_MCUBOOT,
			       .root = root,
			       .cert = cert,
			       .expect_version = how & 128 ? "1.2.3+4" : NULL};
	kr_err e = kr_fw_verify(&o, path, summary, sizeof summary);
	(void)kr_failed(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char path[PATH_MAX];
	kr_fuzz_file("image.bin", data + 1, size - 1, path);
	inspect(data[0], path);
	verify(data[0], path);
	return 0;
}
