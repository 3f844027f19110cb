/* The API's HTTP server on a unix socket, over libuv. */
#ifndef SHOAL_NODE_HTTP_SERVER_H
#define SHOAL_NODE_HTTP_SERVER_H

#include <uv.h>

#include "lib/err.h"
#include "node/http.h"

struct http_server;

/* Listen on the unix socket @path (a stale socket file is replaced; mode @mode,
 * e.g. 0660) and serve every request with @handler. Returns 0, SHOAL_EBUSY if
 * another server is listening on @path, SHOAL_EINVAL if @path is too long or
 * is not a socket, SHOAL_ENOMEM or SHOAL_EIO; the reason is in @err. After a
 * failure, run the loop once more to release what was allocated. */
int http_server_start(struct http_server **out, uv_loop_t *loop, const char *path, unsigned mode,
		      const struct http_limits *limits, http_handler_fn handler, void *arg,
		      struct shoal_err *err);

/* Stop accepting, close every connection, remove the socket file, then call
 * @cb (may be NULL) once every handle is closed and memory freed. Responses
 * still pending in handlers are marked gone and freed when finished. */
void http_server_close(struct http_server *s, void (*cb)(void *arg), void *arg);

/* Number of open connections (for tests and metrics). */
unsigned http_server_conns(const struct http_server *s);

#endif
