/* Shared by the libFuzzer targets (tests/fuzz/README.md). keyrite reads
 * most of its inputs from files, so an input is written to a scratch file
 * of this process first. */
#ifndef KR_FUZZ_H
#define KR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* This process's scratch directory: made on first use, removed at exit. */
const char *kr_fuzz_dir(void);

/* The input as the file NAME in the scratch directory; its path in path
 * (PATH_MAX bytes). */
void kr_fuzz_file(const char *name, const uint8_t *data, size_t size, char *path);

/* A file of the repository (KR_FUZZ_REPO, set by the Makefile), e.g.
 * "tests/fuzz/fixtures/root.pem", into path (PATH_MAX bytes). */
void kr_fuzz_repo_file(const char *name, char *path);

#endif
