/* File-system helpers: directories, atomic writes, bounded reads, locks. */
#ifndef SHOAL_LIB_FSUTIL_H
#define SHOAL_LIB_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

/* cleanup helpers in the style of crun/systemd. */
void cleanup_freep(void *p);
void cleanup_closep(int *fd);
#define _cleanup_free_	__attribute__((cleanup(cleanup_freep)))
#define _cleanup_close_ __attribute__((cleanup(cleanup_closep)))

/* Create @path and missing parents with @mode; an existing directory gets @mode. */
int fs_mkdir_p(const char *path, mode_t mode, struct shoal_err *err);

/* Write @len bytes to @path atomically and durably: a temp file in the same
 * directory, fsync, rename, fsync of the directory. The file gets @mode. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		    struct shoal_err *err);

/* Read the whole of @path, at most @max bytes, into a NUL-terminated heap
 * buffer the caller frees. Returns 0, SHOAL_ENOTFOUND, SHOAL_ETOOBIG or SHOAL_EIO. */
int fs_read_all(const char *path, size_t max, char **out, size_t *len, struct shoal_err *err);

/* Take an exclusive advisory lock on @path (created 0600), non-blocking. On
 * success *@fd holds the lock until closed. SHOAL_EBUSY if another holds it. */
int fs_lock(const char *path, int *fd, struct shoal_err *err);

/* Unlink the file @path and fsync its directory, so the removal survives a
 * power loss. A missing file is not an error. */
int fs_unlink_durable(const char *path, struct shoal_err *err);

/* Remove @path and everything below it. A missing path is not an error. */
int fs_rm_rf(const char *path, struct shoal_err *err);

/* True if @path exists. */
int fs_exists(const char *path);

#endif
