/* `image pull`: an image from a registry into the image store, network work off the owner's thread.
 */
#ifndef SHOAL_RUNTIME_IMAGE_PULL_H
#define SHOAL_RUNTIME_IMAGE_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "runtime/image_store.h"

/* One progress message, as Docker's JSON stream has them: {"status": S,
 * "id": ID, "progressDetail": {"current": C, "total": T}}. Strings are valid
 * during the callback only. */
struct image_pull_progress {
	const char *status; /* "Pulling fs layer", "Downloading", "Digest: sha256:...", ... */
	const char *id;	    /* the tag, a layer's 12-hex short id, or NULL */
	bool has_detail;    /* "Downloading": current and total are set */
	uint64_t current;
	uint64_t total;
};

/* Called from image_pull_fetch()'s thread and from image_pull_finish()'s. */
typedef void (*image_pull_progress_fn)(void *arg, const struct image_pull_progress *p);

/* Where registries are and how to reach them. Strings must outlive the pull. */
struct image_pull_opts {
	const char *const *insecure; /* registries ("host:port") served over plain HTTP */
	size_t n_insecure;
	const char *certs_dir; /* STATE_DIR/certs.d: <host:port>/ca.crt trusted for that host */
};

struct image_pull;

/* Start pulling @ref ([DOMAIN/]NAME[:TAG][@sha256:...]) into @s: parse it and
 * pin the store (image_store_pin()). On the store owner's thread. On success
 * *@out is the pull; run image_pull_fetch() (any one thread), then
 * image_pull_finish() and image_pull_free() (owner's thread). SHOAL_EINVAL for
 * a bad reference. */
int image_pull_new(struct image_store *s, const char *ref, const struct image_pull_opts *opts,
		   image_pull_progress_fn progress, void *arg, struct image_pull **out,
		   struct shoal_err *err);

/* The network part, safe off the owner's thread: resolve the manifest (an
 * index gives its linux/amd64 manifest), then fetch the config and the layer
 * blobs the store lacks, each checked against its digest and size while it
 * streams to the store's tmp/. Registers nothing. Returns 0 or an error
 * (SHOAL_ENOTFOUND for an unknown tag or repository, SHOAL_EPROTO for a
 * digest mismatch or a document that does not parse or has an unknown media
 * type, SHOAL_EIO, SHOAL_ESHUTDOWN once cancelled). */
int image_pull_fetch(struct image_pull *p, struct shoal_err *err);

/* Make a running image_pull_fetch() stop soon with SHOAL_ESHUTDOWN. Any thread. */
void image_pull_cancel(struct image_pull *p);

/* On the owner's thread once fetch returned @fetch_rv: when 0 (and the store
 * is not closing), register the image under its name with image_store_add()
 * (unpacking its layers; all or nothing) and report "Pull complete" per layer,
 * "Digest: ..." and "Status: ..."; else only clean up. Either way unpin the
 * store, and after a failure collect what the pull wrote. Returns 0, or the
 * error (@fetch_rv's is expected in @err already). */
int image_pull_finish(struct image_pull *p, int fetch_rv, struct shoal_err *err);

/* Free @p (accepts NULL); unpins the store if image_pull_finish() did not run. */
void image_pull_free(struct image_pull *p);

/* The name the image got ("busybox:latest"; for a pull by digest
 * "NAME@sha256:..."), valid until image_pull_free(). */
const char *image_pull_name(const struct image_pull *p);

#endif
