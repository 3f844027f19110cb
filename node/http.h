/* HTTP/1.1 connection core: request parsing (http_parser) and response
 * writing, independent of any socket. node/http_server.c puts it on a libuv
 * unix socket; tests and fuzz targets drive it with plain byte buffers. */
#ifndef SHOAL_NODE_HTTP_H
#define SHOAL_NODE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define HTTP_MAX_HEADERS 64

struct http_header {
	char *name; /* as received; compare case-insensitively */
	char *value;
};

/* One complete request. Strings are NUL-terminated and owned by the connection;
 * they stay valid until the response is finished. */
struct http_request {
	const char *method; /* "GET", "HEAD", "POST", ... */
	char *path;	    /* percent-decoded path, no query: "/v1.41/nodes/abc" */
	char *query;	    /* raw query string without '?', "" if none */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned n_headers;
	char *body; /* NUL-terminated (the NUL is not counted); "" when in body_fd */
	size_t body_len;
	/* -1, or (see http_limits.file_body) an unlinked temp file holding the
	 * body_len bytes of the body, positioned at its start. Owned by the
	 * connection, which closes it when the response is finished. */
	int body_fd;
	bool keep_alive; /* false once the client asked to close (or HTTP/1.0 without keep-alive) */
	bool head;	 /* a HEAD request: the response carries headers only */
};

/* Case-insensitive header lookup; NULL if absent. */
const char *http_request_header(const struct http_request *req, const char *name);

/* Look up query parameter @key, percent- and '+'-decoded into @out (NUL-terminated).
 * Returns true if present (possibly empty); false if absent or longer than @len-1. */
bool http_query_get(const struct http_request *req, const char *key, char *out, size_t len);

struct http_conn;

/* The reply side of one request. A handler receives it and must finish it
 * exactly once, now or later (after a Raft commit, say), with http_respond()
 * or http_stream_start() + http_stream_write()* + http_stream_end(). It stays
 * valid until finished, even if the client has gone away meanwhile: writes
 * then go nowhere and finishing releases it. */
struct http_response;

/* True if the client is gone; an async handler may skip work for it. */
bool http_response_gone(const struct http_response *res);
/* Bytes of this connection written and not yet sent to the client: a
 * streaming handler waits for them to drain before producing more. */
size_t http_response_queued(const struct http_response *res);

/* Add a response header, before the status line is written. Returns 0,
 * SHOAL_ENOMEM, or SHOAL_EINVAL for an empty name or one holding ':', CR or
 * LF, or a value holding CR or LF (no header injection). */
int http_response_header(struct http_response *res, const char *name, const char *value);

/* Finish with a complete response: status line, headers (Content-Type unless
 * NULL, Content-Length, Date, Server, Api-Version, keep-alive), then @body
 * unless the request was HEAD. Statuses 1xx, 204 and 304 carry neither
 * Content-Length nor body. Returns 0 or a negative code (the response is
 * finished either way). */
int http_respond(struct http_response *res, int status, const char *content_type, const void *body,
		 size_t len);

/* Start a chunked response (Transfer-Encoding: chunked). An HTTP/1.0 client
 * gets the bytes unframed and the connection closes after the last one. */
int http_stream_start(struct http_response *res, int status, const char *content_type);
/* Send one chunk; zero-length writes are ignored. */
int http_stream_write(struct http_response *res, const void *data, size_t len);
/* Send the last chunk and finish the response. */
int http_stream_end(struct http_response *res);

/* Called for each complete request, one at a time per connection: the next
 * pipelined request is not delivered until this one is finished. */
typedef void (*http_handler_fn)(void *arg, struct http_request *req, struct http_response *res);

/* A zero field takes its default. */
struct http_limits {
	size_t max_header_bytes; /* request line + headers; default 64 KiB; more gets 431 */
	size_t max_body_bytes;	 /* default 4 MiB; more gets 413 */
	/* Large uploads: a request for which file_body (may be NULL) returns
	 * true, given its method and percent-decoded path, has its body written
	 * to an unlinked temp file in file_body_dir as it arrives (never held in
	 * memory), up to max_file_body_bytes (default 512 MiB; more gets 413),
	 * and handed over as http_request.body_fd. file_body_dir must outlive
	 * the connection. */
	bool (*file_body)(const char *method, const char *path);
	const char *file_body_dir;
	size_t max_file_body_bytes;
};

/* Byte sinks for a connection. write() queues @len bytes (the callee copies
 * them) and returns 0 or a negative code, which closes the connection;
 * close() asks the transport to close once queued bytes are out. It is called
 * at most once, from inside the core: it must not free the connection then
 * and there (free it later, e.g. from the handle's close callback). */
struct http_transport {
	void *arg;
	int (*write)(void *arg, const void *data, size_t len);
	void (*close)(void *arg);
	/* Bytes written and not yet sent (may be NULL: nothing is ever held). */
	size_t (*queued)(void *arg);
};

/* Create a connection core. @limits may be NULL for the defaults. */
struct http_conn *http_conn_new(const struct http_limits *limits, const struct http_transport *t,
				http_handler_fn handler, void *handler_arg);

/* Feed bytes received from the client. Malformed input is answered with a
 * Docker-style JSON error (400, 413, 414, 431, 505) and the transport closed.
 * Input that arrives while a response is pending is kept for later, up to
 * max_header_bytes + max_body_bytes; a client that sends more is cut off
 * once that response is finished. */
void http_conn_feed(struct http_conn *c, const void *data, size_t len);

/* The client's end is closed: no more input. Responses still pending are
 * marked gone. */
void http_conn_eof(struct http_conn *c);

/* Release the connection (accepts NULL; never calls the transport); memory
 * held by an unfinished response is released when that response is finished.
 * Not from inside the connection's own handler or transport calls. */
void http_conn_free(struct http_conn *c);

/* Append a Docker error body {"message":"..."} to @out. If @message is not
 * valid UTF-8, its non-ASCII bytes become '?'. Returns 0 or SHOAL_ENOMEM. */
int http_error_body(struct buf *out, const char *message);

/* The standard reason phrase for @status ("OK", "Not Found", ...). */
const char *http_reason(int status);

#endif
