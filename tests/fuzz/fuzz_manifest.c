/* The batch's CSV manifest reader (ca/requests.c): RFC 4180 records of
 * device_id,model,version,csr, the csr column base64 DER or a file beside
 * the manifest (one is there), read row by row to the end. */
#include "fuzz.h"
#include "../../ca/requests.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	char from[PATH_MAX], to[PATH_MAX];
	kr_fuzz_repo_file("tests/fuzz/corpus/csr/ec-p256.der", from);
	FILE *f = fopen(from, "rb");
	uint8_t buf[4096];
	size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (!f || n == 0)
		abort();
	fclose(f);
	kr_fuzz_file("meter.csr", buf, n, to); /* what a row may name */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[PATH_MAX];
	kr_fuzz_file("manifest.csv", data, size, path);
	char *paths[] = {path};
	kr_reader *r = NULL;
	kr_input in = {0}; /* each call clears the one before */
	kr_err e = kr_reader_open(paths, 1, &r);
	for (int more = 1; !kr_failed(&e) && more;)
		e = kr_reader_next(r, &in, &more);
	kr_input_clear(&in);
	kr_reader_close(r);
	return 0;
}
