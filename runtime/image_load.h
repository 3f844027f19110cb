/* `image load`: docker save archives and OCI image-layout archives into the image store. */
#ifndef SHOAL_RUNTIME_IMAGE_LOAD_H
#define SHOAL_RUNTIME_IMAGE_LOAD_H

#include <stddef.h>

#include "lib/err.h"
#include "runtime/digest.h"
#include "runtime/image_store.h"
#include "runtime/oci.h"

#define IMAGE_LOAD_MAX_ENTRIES 100000u /* entries of one archive */
#define IMAGE_LOAD_MAX_LINKS   8u      /* symlinks followed to reach one file */

/* What a load registered. Owned by the caller: free with
 * image_load_result_free(). */
struct image_load_result {
	struct oci_strlist names; /* normalised names, in archive order */
	struct digest *ids;	  /* image ids, in archive order, each once */
	size_t n_ids;
};

/* Load the archive read from @fd (a tar, optionally gzip- or zstd-compressed;
 * a pipe is fine: it is read once, front to back) into @s. Two kinds:
 *
 * - an OCI image layout (oci-layout, index.json, blobs/sha256/...), as written
 *   by skopeo, buildah, `docker save` since 25, ...: every image index.json
 *   lists is loaded; a nested index (multi-platform image) gives its
 *   linux/amd64 manifest. Names come from the annotation
 *   io.containerd.image.name, else org.opencontainers.image.ref.name when it
 *   is a full "repo:tag" (a bare tag names nothing);
 * - a docker save archive (manifest.json, <config>.json, <id>/layer.tar): a
 *   Docker v2 manifest is written for each image (uncompressed layers keep
 *   their digest, which must equal the config's diff_id); names are RepoTags.
 *   When both kinds are present, the OCI layout is used.
 *
 * Every file that becomes a blob is hashed as it streams into the store and
 * checked against the digest its name claims (blobs/sha256/<hex>,
 * <hex>.json). Sizes must match their descriptors, manifests and configs must
 * parse with known media types, and every layer is unpacked and checked
 * against its diff_id before any name is registered; all images of the
 * archive are registered at once. On any failure nothing is registered and
 * garbage collection removes what the load wrote: SHOAL_EPROTO (corrupt or
 * malformed archive, digest mismatch), SHOAL_ETOOBIG, SHOAL_ENOTFOUND (a blob
 * the archive names is missing), SHOAL_EINVAL (bad image name, not Linux),
 * SHOAL_EIO. @res may be NULL. */
int image_load_fd(struct image_store *s, int fd, struct image_load_result *res,
		  struct shoal_err *err);

/* The same for the file at @path. */
int image_load_file(struct image_store *s, const char *path, struct image_load_result *res,
		    struct shoal_err *err);

void image_load_result_free(struct image_load_result *res);

#endif
