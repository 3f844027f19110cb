/* Layer tarballs unpacked into directories, whiteouts in overlayfs form, once per digest. */
#ifndef SHOAL_RUNTIME_LAYER_H
#define SHOAL_RUNTIME_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "runtime/digest.h"

/* Bounds on one layer. */
#define LAYER_MAX_ENTRIES (1u << 20)	/* tar entries */
#define LAYER_MAX_BYTES	  (64ull << 30) /* bytes of the uncompressed tar stream */
#define LAYER_MAX_XATTRS  64u		/* extended attributes of one entry */

/* How whiteouts are represented. The layers of an image are stacked as
 * overlayfs lower directories, so OCI whiteouts are turned into overlayfs's own
 * markers while unpacking (as Docker's overlay2 driver does):
 *   "DIR/.wh.NAME"     -> DIR/NAME, a character device 0:0 ("NAME was deleted")
 *   "DIR/.wh..wh..opq" -> xattr trusted.overlay.opaque="y" on DIR ("DIR hides
 *                         everything below it in lower layers")
 * Other ".wh..wh.*" names (AUFS bookkeeping) are skipped. A whiteout only hides
 * lower layers: when NAME also exists in the same layer, the layer's own entry
 * stays (a directory is then made opaque instead). This needs root (mknod and
 * trusted.* xattrs). Extended attributes named trusted.* that come inside a
 * tarball are dropped, so a layer cannot forge overlayfs metadata. */
#define LAYER_WHITEOUT_PREFIX ".wh."
#define LAYER_OPAQUE_MARKER   ".wh..wh..opq"
#define LAYER_OPAQUE_XATTR    "trusted.overlay.opaque"

struct layer_stats {
	uint64_t entries;   /* tar entries read */
	uint64_t bytes;	    /* bytes of the uncompressed tar stream */
	uint64_t whiteouts; /* .wh.NAME entries applied */
	uint64_t opaques;   /* .wh..wh..opq entries applied */
};

/* Extract a layer tarball (plain tar, gzip or zstd, told apart by content)
 * read from @fd to its end into @dest, an existing empty directory. Ownership,
 * modes, times and extended attributes are kept (numeric ids, as in images).
 *
 * Refused with SHOAL_EPROTO, naming the entry: absolute paths, ".."
 * components, entries whose path goes through a symlink or a non-directory,
 * hardlinks whose target is absolute, escapes, is missing or is a directory,
 * a non-directory replacing a directory, malformed whiteouts, more than the
 * limits above; a corrupt or truncated stream is SHOAL_EPROTO too.
 * Hardlink entries never carry data (pax allows it; it is ignored), so a link
 * to a symlink cannot be written through.
 *
 * On success *@diff_id is the digest of the uncompressed stream (every byte,
 * to the end of the input) and *@stats (may be NULL) what was done. On error
 * @dest may hold a partial tree: the caller removes it (layer_unpack() does). */
int layer_extract_fd(int fd, const char *dest, struct digest *diff_id, struct layer_stats *stats,
		     struct shoal_err *err);

/* The same for @len bytes at @data. */
int layer_extract_mem(const void *data, size_t len, const char *dest, struct digest *diff_id,
		      struct layer_stats *stats, struct shoal_err *err);

/* Write "@layers_dir/<hex of @diff_id>" into @out (@len bytes). Returns 0, or
 * SHOAL_EINVAL if it does not fit. */
int layer_path(const char *layers_dir, const struct digest *diff_id, char *out, size_t len,
	       struct shoal_err *err);

/* Make sure the layer @diff_id is unpacked at layer_path(@layers_dir, @diff_id),
 * from the blob file at @blob_path, once: if that directory exists nothing is
 * done and *@created is false. Otherwise the blob is extracted into a fresh
 * directory under @tmp_dir (same filesystem as @layers_dir), its uncompressed
 * digest must equal @diff_id (else SHOAL_EPROTO), the filesystem is synced and
 * the directory renamed into place (*@created true). On any error nothing is
 * left in @tmp_dir or @layers_dir. @created and @stats may be NULL. */
int layer_unpack(const char *blob_path, const struct digest *diff_id, const char *layers_dir,
		 const char *tmp_dir, bool *created, struct layer_stats *stats,
		 struct shoal_err *err);

#endif
