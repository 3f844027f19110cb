/* The CLI's HTTP client: Docker Engine API v1.41 requests to the daemon's unix socket. */
#ifndef SHOAL_CLI_CLIENT_H
#define SHOAL_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/buf.h"
#include "lib/err.h"

#define CLIENT_DEFAULT_HOST "unix:///run/shoal/shoal.sock"
#define CLIENT_API_VERSION  "1.41"
/* Larger responses are refused (SHOAL_ETOOBIG). */
#define CLIENT_MAX_BODY ((size_t)64 << 20)

struct client;

/* A successful (2xx) response. */
struct client_resp {
	long status;
	char *body; /* the raw body, NUL-terminated, owned; "" when empty */
	size_t len;
	json_t *json; /* the parsed body (any JSON value), owned; NULL when empty */
};

/* Prepare a client for @host, which must read "unix://PATH". No connection is
 * made yet. Returns 0, SHOAL_ENOMEM, or SHOAL_EINVAL for another kind of host.
 * Free with client_close(). */
int client_open(struct client **out, const char *host, struct shoal_err *err);

/* Close the connection and free @c. Accepts NULL. */
void client_close(struct client *c);

/* The host @c talks to, as given to client_open(). */
const char *client_host(const struct client *c);

/* Send @method ("GET", "POST", "DELETE") to /v1.41@path (@path starts with
 * '/' and is already escaped), with @body as JSON (NULL for none), and read
 * the whole response. On a 2xx answer returns 0 and fills @resp, which the
 * caller frees with client_resp_free(). Otherwise @resp is left empty and:
 * - the daemon's error ({"message": "X"}) gives "Error response from daemon: X"
 *   and a code from the status: 400 SHOAL_EINVAL, 404 SHOAL_ENOTFOUND,
 *   409 SHOAL_ECONFLICT, 503 SHOAL_ESTATE, others SHOAL_EIO;
 * - an unreachable socket gives SHOAL_EUNAVAIL, "Cannot connect to the shoal
 *   daemon at unix:///PATH. Is the daemon running?";
 * - a broken connection SHOAL_EIO, a body that is not JSON SHOAL_EPROTO, one
 *   over CLIENT_MAX_BODY SHOAL_ETOOBIG. */
int client_request(struct client *c, const char *method, const char *path, const json_t *body,
		   struct client_resp *resp, struct shoal_err *err);

/* Like client_request(), with the bytes read from @in to its end as the body
 * (sent chunked, with Content-Type @content_type; @in stays the caller's).
 * The 2xx body is not parsed: resp->json is NULL, resp->body holds it (a
 * JSON stream, say). A read error on @in gives SHOAL_EIO. */
int client_request_file(struct client *c, const char *method, const char *path, FILE *in,
			const char *content_type, struct client_resp *resp, struct shoal_err *err);

/* Called for each line of a streamed 2xx body (without its newline; the
 * last one may have none). Return 0 to go on, or a SHOAL_E* code with @err
 * set to stop: client_request_lines() then returns it. */
typedef int (*client_line_fn)(void *arg, const char *line, size_t len, struct shoal_err *err);

/* Like client_request(), for answers that stream (JSON lines such as a pull's
 * progress, logs): each line goes to @on_line as it arrives. Errors as for
 * client_request(). */
int client_request_lines(struct client *c, const char *method, const char *path, const json_t *body,
			 client_line_fn on_line, void *arg, struct shoal_err *err);

/* Called for each frame of Docker's multiplexed stream (container and
 * service logs): @stream 1 stdout, 2 stderr, @data its payload. Return as
 * client_line_fn does. */
typedef int (*client_frame_fn)(void *arg, int stream, const char *data, size_t len,
			       struct shoal_err *err);

/* Like client_request_lines() (no body), for a multiplexed stream; bytes
 * left at the end that are not a whole frame are SHOAL_EPROTO. */
int client_request_frames(struct client *c, const char *method, const char *path,
			  client_frame_fn on_frame, void *arg, struct shoal_err *err);

/* Free what @resp owns. Accepts a zeroed or already freed response. */
void client_resp_free(struct client_resp *resp);

/* Append @s percent-encoded as Go's url.QueryEscape (@query: spaces become
 * '+') or url.PathEscape does for one path segment. Returns 0 or SHOAL_ENOMEM. */
int client_escape(struct buf *out, const char *s, bool query);

#endif
