/* The ceremony script checker (ceremony/run.c): everything keyrite checks
 * before the HSM acts. The HSM is out of reach (a module that does not
 * exist, and SoftHSM, should a URI name it, without tokens), so a script
 * that passes every check stops at the token and nothing is written. */
#include "fuzz.h"
#include "../../ceremony/ceremony.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	char conf[PATH_MAX], text[PATH_MAX + 64];
	snprintf(text, sizeof text, "directories.tokendir = %s\nobjectstore.backend = file\n",
		 kr_fuzz_dir());
	kr_fuzz_file("softhsm2.conf", (const uint8_t *)text, strlen(text), conf);
	setenv("SOFTHSM2_CONF", conf, 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[PATH_MAX];
	kr_fuzz_file("ceremony.cnf", data, size, path);
	kr_ceremony_opts o = {.dir = kr_fuzz_dir(), .hsm = {.module = "/nonexistent/pkcs11.so"}};
	kr_err e = kr_ceremony_run(path, &o);
	(void)kr_failed(&e);
	return 0;
}
