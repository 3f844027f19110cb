/* The Docker Engine API's image endpoints over the image store: POST
 * /images/load, GET /images/json, DELETE /images/{name}. They do not need a
 * swarm, as in Docker. */
#ifndef SHOAL_NODE_API_IMAGES_H
#define SHOAL_NODE_API_IMAGES_H

#include <jansson.h>
#include <uv.h>

#include "node/http.h"
#include "runtime/container.h"
#include "runtime/image_store.h"

/* Each handler below finishes @res exactly once before it returns. @s is the
 * daemon's store; calls are serialised by the daemon's single loop. */

/* POST /images/load?quiet=: the request body is the archive (a tar, gzip or
 * zstd allowed), read from req->body_fd when the HTTP core stored it in a
 * file, else from memory (through a memfd), and loaded in one go; on success a chunked 200 of JSON
 * lines {"stream":"Loaded image: NAME\n"} (or "Loaded image ID: sha256:...\n" for an image without
 * a name). A corrupt archive gets 400 with the loader's message, and nothing is stored. */
void api_images_load(struct image_store *s, struct http_request *req, struct http_response *res);

/* GET /images/json: Docker's ImageSummary list, newest first. The filters
 * query parameter is refused (400) unless empty. */
void api_images_list(struct image_store *s, struct http_request *req, struct http_response *res);

/* DELETE /images/@name?force=&noprune=: [{"Untagged": "NAME"}..., {"Deleted":
 * "sha256:..."}]; 404 "No such image: NAME"; 409 for an id with several
 * names and no force. noprune is accepted: there are no parent images. 409
 * too while a container of @cs (may be NULL) uses the image (Docker's
 * "conflict: unable to ..."), unless force only untags one of its names. */
void api_images_delete(struct image_store *s, const struct containers *cs, const char *name,
		       struct http_request *req, struct http_response *res);

/* Pulls: the daemon's loop, where registries are, and STATE_DIR (whose
 * certs.d/<host:port>/ca.crt are trusted for that registry). @insecure lists
 * registries ("host:port") reached over plain HTTP. Everything must outlive
 * every pull. Call once, before serving. */
void api_images_pull_setup(uv_loop_t *loop, const char *state_dir, const char *const *insecure,
			   size_t n_insecure);

/* POST /images/create?fromImage=NAME&tag=TAG (Docker's pull; fromSrc imports
 * are refused). The network work runs on libuv's thread pool; its progress
 * comes back through a uv_async and streams as Docker's JSON messages in a
 * chunked 200 that starts with the first message. An error before any
 * message gets a plain error status (404 for an unknown tag); after, an
 * in-stream {"errorDetail":{"message":M},"error":M}. A client that goes away
 * (or a daemon shutting down, which closes every connection) cancels the
 * pull. Registration runs on the loop's thread, all or nothing. */
void api_images_pull(struct image_store *s, struct http_request *req, struct http_response *res);

/* Docker's ImageSummary of @img (API v1.41: an image without a name lists
 * "<none>:<none>" and "<none>@<none>"). Returns a new reference, or NULL when
 * out of memory. */
json_t *api_image_summary(const struct image *img);

#endif
