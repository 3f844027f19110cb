/* The Docker Engine API v1.41 (swarm subset) on top of the HTTP core: routes,
 * version prefixes, request parsing, status codes and Docker's error bodies. */
#ifndef SHOAL_NODE_API_H
#define SHOAL_NODE_API_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "node/http.h"

#define API_VERSION	"1.41"
#define API_MIN_VERSION "1.24"

struct swarm;
struct store;
struct image_store;
struct containers;
struct command;
struct svc_logs;

/* What the API reads from the rest of the daemon. Pointers must outlive the api. */
struct api_context {
	struct swarm *swarm;
	struct image_store *images;    /* the daemon's, STATE_DIR/images */
	struct containers *containers; /* the node's, STATE_DIR/containers */
	struct svc_logs *svc_logs;     /* service and task logs (node/api_svc_logs.h) */
	const char *hostname;
	const char *state_dir;
	const char *runtime;
	int64_t started_ns;
};

struct api;

int api_new(struct api **out, const struct api_context *ctx, struct shoal_err *err);

/* Free the api; NULL is fine. Requests still waiting on the swarm must have
 * finished (the daemon closes the swarm first, which fails them). */
void api_free(struct api *api);

/* The http_handler_fn serving every request; @arg is the struct api. */
void api_handle(void *arg, struct http_request *req, struct http_response *res);

/* POST /nodes/{ref}/update?version=@version_text with NodeSpec @body: check
 * everything against @st and append the change to @cmd, stamped @now. Returns
 * 0, or an error code with Docker's message (400 for bad input, 404 for an
 * unknown node, 409 for a version no record can have). */
int api_node_update_command(const struct store *st, const char *self_id, const char *ref,
			    const char *version_text, json_t *body, int64_t now,
			    struct command *cmd, struct shoal_err *err);

/* DELETE /nodes/{ref}: remove worker @ref (a manager must be demoted first;
 * one not @down only with @force) and rotate the gossip key in the same
 * command. Returns 0 or an error with Docker's message. */
int api_node_remove_command(const struct store *st, const char *self_id, const char *ref,
			    bool force, bool down, struct command *cmd, struct shoal_err *err);

/* POST /swarm/update?version=V: the new Spec from @body, join tokens rotated
 * as asked. */
int api_swarm_update_command(const struct store *st, const char *version_text, bool rotate_worker,
			     bool rotate_manager, json_t *body, int64_t now, struct command *cmd,
			     struct shoal_err *err);

#define API_MAX_MANAGERS 7

/* The largest image archive POST /images/load takes (413 above). */
#define API_MAX_IMAGE_ARCHIVE ((size_t)512 << 20)

/* True for requests whose body should stream to a temp file rather than
 * memory (POST /images/load, with or without a version prefix): the
 * http_limits.file_body predicate. */
bool api_body_to_file(const char *method, const char *path);

/* A boolean query parameter read as Docker's BoolValue: anything but "",
 * "0", "no", "false" and "none" (any case, spaces trimmed) is true; absent
 * is false. */
bool api_query_bool(struct http_request *req, const char *key);

/* The HTTP status for a shoal error code (400, 404, 409, 503, ...). */
int api_status_for(int code);

/* Replies shared by every endpoint; each finishes @res once. */

/* Docker's error body {"message": @message} with HTTP @status, logged as a
 * warning from 500 up (else at debug). @message need not be UTF-8. */
void api_reply_status(struct http_request *req, struct http_response *res, int status,
		      const char *message);

/* The same with the status for shoal error @code (api_status_for()). */
void api_reply_error(struct http_request *req, struct http_response *res, int code,
		     const char *message);

/* @json with HTTP @status (a reference is stolen; NULL means out of memory:
 * a 500), ended by a newline as Go's encoder does. */
void api_reply_json(struct http_request *req, struct http_response *res, int status, json_t *json);

#endif
