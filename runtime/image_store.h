/* The content-addressed image store: OCI layout blobs, unpacked layers, named images. */
#ifndef SHOAL_RUNTIME_IMAGE_STORE_H
#define SHOAL_RUNTIME_IMAGE_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "runtime/digest.h"
#include "runtime/oci.h"

/* Layout under the root directory the caller gives (STATE_DIR/images):
 *
 *   oci-layout            {"imageLayoutVersion":"1.0.0"}: ROOT is an OCI image layout
 *   index.json            an OCI index, written atomically: one manifest
 *                         descriptor per image name, the name ("repo:tag") in
 *                         annotation org.opencontainers.image.ref.name; an
 *                         image without a name has one descriptor without it
 *   blobs/sha256/<hex>    manifests, configs and layer blobs (read-only files)
 *   layers/<hex>/         each layer unpacked once, named by its diff_id, with
 *                         overlayfs whiteouts (runtime/layer.h)
 *   tmp/                  work in progress; emptied by open and by gc
 *
 * A blob is written to tmp/, hashed while written, fsynced and renamed into
 * blobs/ only if its digest is the expected one. Small blobs (manifests,
 * configs) are hashed again whenever they are read; layer blobs are verified
 * again by their diff_id when unpacked. An image's id is its config digest
 * (Docker's image ID).
 *
 * One process owns ROOT (the daemon holds the state-dir lock) and calls on one
 * store must be serialised, except for pulls (image_store_pin()). Garbage
 * collection removes every blob and layer no image references: do not run it
 * while a load is in progress. */

#define IMAGE_REF_MAX	    512u /* bytes of a normalised "repo:tag" with its NUL */
#define IMAGE_MAX_IMAGES    10000u
#define IMAGE_MAX_NAMES	    1000u /* names given to image_store_add() at once */
#define IMAGE_DEFAULT_TAG   "latest"
#define IMAGE_PLATFORM_OS   "linux"
#define IMAGE_PLATFORM_ARCH "amd64"

struct image_store;

/* One image. Owned by the store: valid until the next call that changes the
 * store (add, remove, gc, close); never modify it. */
struct image {
	struct digest id; /* config digest: Docker's image ID */
	struct digest manifest_digest;
	uint64_t manifest_size;
	struct oci_manifest manifest; /* config and layer blobs, base layer first */
	struct oci_config config;     /* Entrypoint, Cmd, Env, ... for containers */
	struct oci_strlist names;     /* "repo:tag", sorted; may be empty */
	uint64_t size;		      /* bytes of the config and layer blobs */
};

/* Open (creating it if needed) the store at @root, load index.json and verify
 * every image's manifest and config, then collect garbage left by an
 * interrupted load. On success *@out owns the store: close it with
 * image_store_close(). SHOAL_EIO, or SHOAL_EPROTO if the store is corrupt. */
int image_store_open(const char *root, struct image_store **out, struct shoal_err *err);
/* Free @s; accepts NULL. Nothing on disk changes. While pinned (below) the
 * store is only marked closing, and the last image_store_unpin() frees it. */
void image_store_close(struct image_store *s);

/* Pulls in flight. A pull's worker thread may call image_store_blob_begin,
 * _write, _commit, _abort, _stat and _path (they only read the root's paths,
 * create files in tmp/ and rename them into blobs/) while the owner's thread
 * keeps using the store, provided the owner pinned it first: while pinned, gc
 * (and so remove) leaves tmp/ and blobs/ alone (unreferenced blobs wait for a
 * later gc) and close is deferred to the last unpin. Pin and unpin on the
 * owner's thread, which also does everything else. */
void image_store_pin(struct image_store *s);
void image_store_unpin(struct image_store *s);
/* True once image_store_close() was called on a pinned store: register nothing more. */
bool image_store_closing(const struct image_store *s);

const char *image_store_root(const struct image_store *s);

/* Images in id order. */
size_t image_store_count(const struct image_store *s);
const struct image *image_store_at(const struct image_store *s, size_t i);

/* Normalise an image name as Docker does into @out (IMAGE_REF_MAX bytes):
 * "busybox" -> "busybox:latest", "docker.io/library/busybox:1" -> "busybox:1",
 * "docker.io/user/app" -> "user/app:latest", "registry:5000/app:v2" stays.
 * Names are checked against the distribution reference grammar (lowercase
 * path components, tags of up to 128 [A-Za-z0-9_.-]); digest references and
 * 64-hex names are refused. Returns 0 or SHOAL_EINVAL. */
int image_name_normalize(const char *name, char *out, size_t len, struct shoal_err *err);

/* Find @ref like Docker: a name ("busybox", "busybox:1"), else an id or a
 * unique id prefix, with or without "sha256:". Returns 0 with *@out set,
 * SHOAL_ENOTFOUND ("No such image: ..."), or SHOAL_ECONFLICT when a prefix
 * matches several images. */
int image_store_lookup(const struct image_store *s, const char *ref, const struct image **out,
		       struct shoal_err *err);

/* ---- blobs ---- */

/* A blob being written. Plain value owned by the caller; finish it with
 * image_store_blob_commit() or image_store_blob_abort(). */
struct image_blob_writer {
	int fd;
	char path[PATH_MAX];
	struct digest_ctx dc;
	uint64_t size;
};

/* Start a blob: a temp file in tmp/. Returns 0 or SHOAL_EIO. */
int image_store_blob_begin(struct image_store *s, struct image_blob_writer *w,
			   struct shoal_err *err);
/* Append @len bytes. On error the blob is aborted. */
int image_store_blob_write(struct image_blob_writer *w, const void *data, size_t len,
			   struct shoal_err *err);
/* Finish: the digest of what was written goes to *@out (and the size to *@size,
 * which may be NULL). With @expected (may be NULL) they must match, else
 * SHOAL_EPROTO. The file is fsynced and renamed to blobs/sha256/<hex> (kept
 * as is if that blob exists). The temp file never outlives this call. */
int image_store_blob_commit(struct image_store *s, struct image_blob_writer *w,
			    const struct digest *expected, struct digest *out, uint64_t *size,
			    struct shoal_err *err);
/* Drop an unfinished blob; safe to call twice. */
void image_store_blob_abort(struct image_blob_writer *w);

/* Store @len bytes at @data as a blob; its digest into *@out. */
int image_store_blob_put(struct image_store *s, const void *data, size_t len, struct digest *out,
			 struct shoal_err *err);

/* The path of blob @d (which may not exist) into @out (PATH_MAX bytes). */
void image_store_blob_path(const struct image_store *s, const struct digest *d, char out[PATH_MAX]);

/* Size of blob @d into *@size. Returns 0 or SHOAL_ENOTFOUND. */
int image_store_blob_stat(const struct image_store *s, const struct digest *d, uint64_t *size,
			  struct shoal_err *err);

/* Read blob @d, at most @max bytes, into a NUL-terminated heap buffer the
 * caller frees, checking its digest. Returns 0, SHOAL_ENOTFOUND, SHOAL_ETOOBIG,
 * SHOAL_EPROTO (the content does not match) or SHOAL_EIO. */
int image_store_blob_read(const struct image_store *s, const struct digest *d, size_t max,
			  char **data, size_t *len, struct shoal_err *err);

/* ---- images ---- */

/* One image to register: the digest of its manifest blob and its names (any
 * spelling image_name_normalize() takes; may be none). */
struct image_add {
	struct digest manifest;
	const char *const *names;
	size_t n_names;
};

/* Register @n images, all or nothing. For each: the manifest blob must be in
 * the store and parse (OCI or Docker v2 manifest), its config and every layer
 * blob must be present with the sizes the manifest gives, the config must be
 * for Linux with as many diff_ids as layers, and every layer is unpacked
 * (once per diff_id, verified against it). Then the names are attached: a
 * name that belonged to another image moves (that image stays, perhaps with
 * no name); an image already in the store (same id) keeps its manifest and
 * gains the names. index.json is written once. The ids go to @ids (n slots,
 * may be NULL). Blobs and layers left unreferenced on failure stay until the
 * next gc (image_load() runs it). */
int image_store_add(struct image_store *s, const struct image_add *reqs, size_t n,
		    struct digest *ids, struct shoal_err *err);

/* What image_store_remove() did. Owned by the caller: free with
 * image_remove_report_free(). */
struct image_remove_report {
	struct oci_strlist untagged; /* names removed */
	bool deleted;		     /* the image itself is gone */
	struct digest id;
};

/* Remove @ref like `docker rmi`: a name is untagged, and the image deleted
 * when that was its last name; an id deletes the image with all its names,
 * which needs @force when it has more than one (else SHOAL_ECONFLICT). Blobs
 * and layers nothing references any more are then collected. @rep may be
 * NULL. Whether a container still uses the image is the caller's concern. */
int image_store_remove(struct image_store *s, const char *ref, bool force,
		       struct image_remove_report *rep, struct shoal_err *err);
void image_remove_report_free(struct image_remove_report *rep);

struct image_gc_stats {
	uint64_t blobs_removed;
	uint64_t layers_removed;
	uint64_t tmp_removed; /* leftovers of interrupted work */
};

/* Remove every blob and unpacked layer no image references, and everything
 * in tmp/. @stats may be NULL. */
int image_store_gc(struct image_store *s, struct image_gc_stats *stats, struct shoal_err *err);

/* The unpacked layer directories of @img, base layer first (overlayfs's
 * lowerdir= wants them in the reverse order, top first), unpacking any that
 * is missing. On success *@dirs is a heap array of *@n heap strings: free
 * with image_store_dirs_free(). */
int image_store_layer_dirs(struct image_store *s, const struct image *img, char ***dirs, size_t *n,
			   struct shoal_err *err);
void image_store_dirs_free(char **dirs, size_t n);

#endif
