/* The inputs of a batch, read one request at a time (memory does not grow
 * with the batch): CSR files (PEM or DER), directories of them, CSV
 * manifests (device_id,model,version,csr), and "-", a stream of PEM CSRs on
 * standard input. A bad item becomes a request with an error, named by its
 * place ("file", "manifest.csv:12", "-:3"); it never stops the batch. */
#ifndef KR_CA_REQUESTS_H
#define KR_CA_REQUESTS_H

#include "../util/err.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define KR_CSR_MAX_SIZE ((size_t)64 * 1024)

typedef struct kr_input {
	char where[PATH_MAX + 32];
	uint8_t *der; /* malloc'd; NULL when error is set */
	size_t der_len;
	char error[KR_ERR_MSG];
	kr_code error_code; /* its kind, when a caller's source knows it; else bad input */
	int proven;         /* der may be a CRMF template its source proved (kr_csr_parse_proven) */
	int from_manifest;
	char device_id[80], model[80], version[40];
} kr_input;

void kr_input_clear(kr_input *in);

typedef struct kr_reader kr_reader;

/* Refuses (nothing done) an input that does not exist or cannot be read. */
KR_MUST_USE kr_err kr_reader_open(char *const *paths, int n, kr_reader **out);
void kr_reader_close(kr_reader *r);
/* Requests from the caller (the registry's CSRs on record): fn fills *in
 * (cleared) and sets *more as kr_reader_next does. */
typedef KR_MUST_USE kr_err (*kr_source_fn)(void *arg, kr_input *in, int *more);
KR_MUST_USE kr_err kr_reader_open_source(kr_source_fn fn, void *arg, kr_reader **out);
/* 1: *in holds the next request; 0: no more. *in is cleared first, so it
 * is zeroed before its first use and may be passed again. A read error of
 * an input as a whole (stdin failing) is returned as an error. */
KR_MUST_USE kr_err kr_reader_next(kr_reader *r, kr_input *in, int *more);

#endif
