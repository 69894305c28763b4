/* Files: read small inputs whole, hash big ones in a stream, and create
 * outputs exclusively and atomically (a reader never sees half a file and
 * an existing file is never replaced). */
#ifndef KR_FS_H
#define KR_FS_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads at most max bytes; a larger file is an error. *buf is NUL-terminated. */
KR_MUST_USE kr_err kr_fs_read(const char *path, size_t max, uint8_t **buf, size_t *len);

/* KR_EEXIST if path exists (or cannot be checked). */
KR_MUST_USE kr_err kr_fs_must_not_exist(const char *path);

/* Writes data to a temporary file beside path, fsyncs it and links it into
 * place; fails with KR_EEXIST if path exists. Nothing is left on failure. */
KR_MUST_USE kr_err kr_fs_write_new(const char *path, const void *data, size_t len, unsigned mode);

/* As kr_fs_write_new without the fsyncs, for many files at once; follow
 * with kr_fs_sync on their directory. */
KR_MUST_USE kr_err kr_fs_write_new_nosync(const char *path, const void *data, size_t len,
					  unsigned mode);
/* Flushes the file system holding dir (syncfs(2)). */
KR_MUST_USE kr_err kr_fs_sync(const char *dir);

/* A big output written in a stream, with kr_fs_write_new's guarantees:
 * open (KR_EEXIST if path exists), write, then commit (link into place,
 * fsync'd if sync) or abort (nothing is left). */
typedef struct kr_fs_out {
	int fd;
	unsigned mode;
	char path[4096], tmp[4096];
} kr_fs_out;
KR_MUST_USE kr_err kr_fs_out_open(kr_fs_out *o, const char *path, unsigned mode);
KR_MUST_USE kr_err kr_fs_out_write(kr_fs_out *o, const void *data, size_t len);
KR_MUST_USE kr_err kr_fs_out_pwrite(kr_fs_out *o, const void *data, size_t len, off_t at);
KR_MUST_USE kr_err kr_fs_out_commit(kr_fs_out *o, int sync);
void kr_fs_out_abort(kr_fs_out *o);
/* For outputs that are meant to be replaced (a zone file, published CA
 * certificates): written unnamed, then renamed over path atomically, so a
 * reader sees the old file or the new one, never half of one. */
KR_MUST_USE kr_err kr_fs_out_open_replace(kr_fs_out *o, const char *path, unsigned mode);
KR_MUST_USE kr_err kr_fs_out_commit_replace(kr_fs_out *o);

/* 1 if path holds exactly data, 0 if it differs, error if unreadable. */
KR_MUST_USE kr_err kr_fs_same(const char *path, const void *data, size_t len, int *same);

KR_MUST_USE kr_err kr_fs_sha256(const char *path, uint8_t out[32]);

#define KR_FS_TEMP ".keyrite-tmp."

/* Removes the temporary files a killed keyrite left in dir; *n counts them. */
KR_MUST_USE kr_err kr_fs_clean_temps(const char *dir, int *n);

/* dirname of path into out ("." when it has no slash). */
void kr_fs_dirname(const char *path, char *out, size_t outsz);

/* base + "/" + rel, or rel when it is absolute. */
KR_MUST_USE kr_err kr_fs_join(const char *base, const char *rel, char *out, size_t outsz);

#endif
