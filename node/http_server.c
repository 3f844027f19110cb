/* The API's HTTP server: a libuv unix-socket listener feeding http_conn cores. */
#include "node/http_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_BUF_SIZE (64 * 1024)
/* Bytes queued for a client that does not read before it is cut off. */
#define MAX_QUEUED_BYTES ((size_t)64 * 1024 * 1024)

/* One accepted client.
 *
 * Happy path: reads feed @http; responses are queued with uv_write; when the
 * core asks to close, uv_shutdown lets the queued bytes out, then uv_close.
 * Failure paths: a read error or a failed write closes the pipe at once; the
 * server closing does the same for every client. Memory goes in close_cb. */
struct client {
	struct http_server *server;
	uv_pipe_t pipe;
	uv_shutdown_t shutdown;
	bool shutting_down;
	struct http_conn *http;
	struct client *prev, *next;
};

struct write_req {
	uv_write_t req;
	struct client *client;
	char data[];
};

struct http_server {
	uv_loop_t *loop;
	uv_pipe_t pipe;
	char *path;
	struct http_limits limits;
	bool has_limits;
	http_handler_fn handler;
	void *handler_arg;
	struct client *clients;
	unsigned n_clients;
	bool closing;
	bool listener_closed;
	void (*close_cb)(void *arg);
	void *close_arg;
	char read_buf[READ_BUF_SIZE]; /* shared: each read is consumed at once */
};

static bool client_closing(const struct client *cl)
{
	return uv_is_closing((const uv_handle_t *)&cl->pipe) != 0;
}

static void maybe_closed(struct http_server *s)
{
	if (!s->closing || !s->listener_closed || s->n_clients > 0)
		return;
	if (s->close_cb != NULL)
		s->close_cb(s->close_arg);
	free(s->path);
	free(s);
}

static void client_close_cb(uv_handle_t *h)
{
	struct client *cl = h->data;
	struct http_server *s = cl->server;

	http_conn_free(cl->http);
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		s->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	s->n_clients--;
	free(cl);
	maybe_closed(s);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct client *cl = req->data;

	(void)status;
	if (!client_closing(cl))
		uv_close((uv_handle_t *)&cl->pipe, client_close_cb);
}

/* Close @cl, after its queued writes if @flush. */
static void client_close(struct client *cl, bool flush)
{
	uv_stream_t *stream = (uv_stream_t *)&cl->pipe;

	if (client_closing(cl))
		return;
	if (flush) {
		if (cl->shutting_down)
			return;
		uv_read_stop(stream);
		cl->shutdown.data = cl;
		if (uv_shutdown(&cl->shutdown, stream, shutdown_cb) == 0) {
			cl->shutting_down = true;
			return;
		}
	}
	uv_close((uv_handle_t *)&cl->pipe, client_close_cb);
}

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct client *cl = w->client;

	free(w);
	if (status == 0 || client_closing(cl))
		return;
	/* The client is gone: stop serving it. */
	http_conn_eof(cl->http);
	client_close(cl, false);
}

static int transport_write(void *arg, const void *data, size_t len)
{
	struct client *cl = arg;
	uv_stream_t *stream = (uv_stream_t *)&cl->pipe;
	struct write_req *w;
	uv_buf_t buf;

	if (client_closing(cl) || cl->shutting_down)
		return SHOAL_ESHUTDOWN;
	if (len > MAX_QUEUED_BYTES - uv_stream_get_write_queue_size(stream))
		return SHOAL_ETOOBIG;
	w = malloc(sizeof(*w) + len);
	if (w == NULL)
		return SHOAL_ENOMEM;
	w->client = cl;
	memcpy(w->data, data, len);
	buf = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, stream, &buf, 1, write_cb) != 0) {
		free(w);
		return SHOAL_EIO;
	}
	return 0;
}

static size_t transport_queued(void *arg)
{
	struct client *cl = arg;

	return uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe);
}

static void transport_close(void *arg)
{
	struct client *cl = arg;

	/* Flush what the core queued, unless the whole server is going away. */
	client_close(cl, !cl->server->closing);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)suggested;
	*buf = uv_buf_init(cl->server->read_buf, sizeof(cl->server->read_buf));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct client *cl = stream->data;

	if (cl->server->closing || client_closing(cl) || cl->shutting_down)
		return;
	if (nread > 0) {
		http_conn_feed(cl->http, buf->base, (size_t)nread);
	} else if (nread < 0) {
		http_conn_eof(cl->http);
		if (nread != UV_EOF)
			client_close(cl, false);
	}
}

static void connection_cb(uv_stream_t *listener, int status)
{
	struct http_server *s = listener->data;
	struct http_transport t = {
	    .write = transport_write, .close = transport_close, .queued = transport_queued};
	struct client *cl;

	if (s->closing || status != 0)
		return;
	/* Without memory the client waits in the backlog until there is some. */
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return;
	cl->server = s;
	uv_pipe_init(s->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	cl->next = s->clients;
	if (s->clients != NULL)
		s->clients->prev = cl;
	s->clients = cl;
	s->n_clients++;
	t.arg = cl;
	cl->http = http_conn_new(s->has_limits ? &s->limits : NULL, &t, s->handler, s->handler_arg);
	if (uv_accept(listener, (uv_stream_t *)&cl->pipe) != 0 || cl->http == NULL ||
	    uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, read_cb) != 0)
		client_close(cl, false);
}

/* Remove a socket file nobody listens on; refuse if somebody does. */
static int clear_stale(const char *path, struct shoal_err *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rv;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return shoal_errf(err, SHOAL_EIO, "inspect %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return shoal_errf(err, SHOAL_EINVAL,
				  "%s exists and is not a socket: remove it or choose another path",
				  path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return shoal_errf(err, SHOAL_EIO, "create socket: %s", strerror(errno));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	rv = connect(fd, (const struct sockaddr *)&addr, sizeof(addr));
	close(fd);
	if (rv == 0)
		return shoal_errf(err, SHOAL_EBUSY,
				  "another process is serving %s: stop it or choose another socket",
				  path);
	if (unlink(path) != 0 && errno != ENOENT)
		return shoal_errf(err, SHOAL_EIO, "remove stale socket %s: %s", path,
				  strerror(errno));
	return 0;
}

static void listener_close_cb(uv_handle_t *h)
{
	struct http_server *s = h->data;

	s->listener_closed = true;
	maybe_closed(s);
}

int http_server_start(struct http_server **out, uv_loop_t *loop, const char *path, unsigned mode,
		      const struct http_limits *limits, http_handler_fn handler, void *arg,
		      struct shoal_err *err)
{
	struct sockaddr_un addr;
	struct http_server *s;
	int rv;

	if (strlen(path) >= sizeof(addr.sun_path))
		return shoal_errf(err, SHOAL_EINVAL, "socket path %s is longer than %zu bytes",
				  path, sizeof(addr.sun_path) - 1);
	rv = clear_stale(path, err);
	if (rv != 0)
		return rv;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	s->path = strdup(path);
	if (s->path == NULL) {
		free(s);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	s->loop = loop;
	if (limits != NULL) {
		s->limits = *limits;
		s->has_limits = true;
	}
	s->handler = handler;
	s->handler_arg = arg;
	uv_pipe_init(loop, &s->pipe, 0);
	s->pipe.data = s;

	rv = uv_pipe_bind(&s->pipe, path);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "bind %s: %s", path, uv_strerror(rv));
		goto err_close;
	}
	/* Before listen(), so nobody connects while the mode is still the umask's. */
	if (chmod(path, (mode_t)mode) != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "chmod %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	rv = uv_listen((uv_stream_t *)&s->pipe, 128, connection_cb);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "listen on %s: %s", path, uv_strerror(rv));
		goto err_unlink;
	}
	*out = s;
	return 0;

err_unlink:
	unlink(path);
err_close:
	/* The handle's memory goes in its close callback, once the loop runs. */
	s->closing = true;
	uv_close((uv_handle_t *)&s->pipe, listener_close_cb);
	return rv;
}

void http_server_close(struct http_server *s, void (*cb)(void *arg), void *arg)
{
	struct client *cl;

	PRE(!s->closing);
	s->closing = true;
	s->close_cb = cb;
	s->close_arg = arg;
	unlink(s->path);
	uv_close((uv_handle_t *)&s->pipe, listener_close_cb);
	for (cl = s->clients; cl != NULL; cl = cl->next) {
		if (cl->http != NULL)
			http_conn_eof(cl->http);
		client_close(cl, false);
	}
}

unsigned http_server_conns(const struct http_server *s)
{
	return s->n_clients;
}
