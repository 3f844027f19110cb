/* Unit tests of runtime/mesh: the TCP proxy on loopback, backends and clients on the same uv loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/err.h"
#include "runtime/mesh.h"

#define MAX_BACKENDS 4
#define MAX_CLIENTS  8
#define MAX_CONNS    16
#define BIG	     (8u * 1024 * 1024)

struct fx;

/* A backend. NAME: reads to EOF, then answers "<name>:<bytes read>" and
 * closes. ECHO: writes back what it reads; shuts down after EOF. */
enum bmode { B_NAME, B_ECHO };

struct backend {
	struct fx *x;
	uv_tcp_t tcp;
	bool open;
	uint16_t port;
	char name[8];
	enum bmode mode;
	int accepted;
	size_t received;  /* over every connection */
	size_t max_queue; /* largest write queue seen (ECHO) */
};

struct bconn {
	struct backend *b;
	uv_tcp_t tcp;
	bool used, closing;
	size_t received;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	char reply[32];
};

struct echo_write {
	uv_write_t req;
	char *base;
};

struct client {
	struct fx *x;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	uv_timer_t slow; /* restarts reading (slow reader) */
	bool used, closing;
	int connect_status; /* 1 while pending */
	bool connected, wrote, eof;
	int read_err;
	bool hold_read; /* do not read until writes are done */
	bool slow_read; /* stop after each read, restart from a timer */
	bool shut;	/* shutdown after the write */
	const char *send;
	size_t send_len;
	char *rx;
	size_t rx_len, rx_cap;
};

struct fx {
	uv_loop_t loop;
	uv_timer_t deadline;
	bool timed_out;
	struct mesh *mesh;
	bool mesh_closed;
	uint16_t port; /* published */
	struct backend b[MAX_BACKENDS];
	struct bconn conns[MAX_CONNS];
	struct client c[MAX_CLIENTS];
	char *big; /* freed by teardown */
};

/* ---- helpers ---- */

static void deadline_cb(uv_timer_t *t)
{
	struct fx *x = t->data;

	x->timed_out = true;
}

#define RUN_UNTIL(x, cond, ms)                                               \
	do {                                                                 \
		(x)->timed_out = false;                                      \
		uv_timer_start(&(x)->deadline, deadline_cb, (ms), 0);        \
		while (!(cond)) {                                            \
			if ((x)->timed_out)                                  \
				fail_msg("timed out waiting for %s", #cond); \
			uv_run(&(x)->loop, UV_RUN_ONCE);                     \
		}                                                            \
		uv_timer_stop(&(x)->deadline);                               \
	} while (0)

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sa;

	uv_ip4_addr("127.0.0.1", port, &sa);
	return sa;
}

/* A port nothing listens on now: bind 0, read it, close. */
static uint16_t free_port(struct fx *x)
{
	uv_tcp_t t;
	struct sockaddr_in sa = loopback(0);
	int len = sizeof(sa);

	assert_int_equal(uv_tcp_init(&x->loop, &t), 0);
	assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&sa, &len), 0);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&x->loop, UV_RUN_NOWAIT);
	return ntohs(sa.sin_port);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(hint);
	buf->len = buf->base != NULL ? hint : 0;
}

/* ---- backends ---- */

static void bconn_closed(uv_handle_t *h)
{
	struct bconn *bc = h->data;

	bc->used = false;
}

static void bconn_close(struct bconn *bc)
{
	if (bc->closing)
		return;
	bc->closing = true;
	uv_close((uv_handle_t *)&bc->tcp, bconn_closed);
}

static void name_written(uv_write_t *req, int status)
{
	(void)status;
	bconn_close(req->data);
}

static void echo_written(uv_write_t *req, int status)
{
	struct echo_write *w = req->data;

	(void)status;
	free(w->base);
	free(w);
}

static void echo_shut(uv_shutdown_t *req, int status)
{
	(void)status;
	bconn_close(req->data);
}

static void bconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct bconn *bc = s->data;
	struct backend *b = bc->b;

	if (nread > 0) {
		bc->received += (size_t)nread;
		b->received += (size_t)nread;
		if (b->mode == B_ECHO) {
			struct echo_write *w = malloc(sizeof(*w));
			uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
			size_t q;

			assert_non_null(w);
			w->base = buf->base;
			w->req.data = w;
			assert_int_equal(uv_write(&w->req, s, &out, 1, echo_written), 0);
			q = uv_stream_get_write_queue_size(s);
			if (q > b->max_queue)
				b->max_queue = q;
			return;
		}
	}
	free(buf->base);
	if (nread >= 0)
		return;
	if (nread != UV_EOF || bc->closing) {
		bconn_close(bc);
		return;
	}
	uv_read_stop(s);
	if (b->mode == B_ECHO) {
		bc->sreq.data = bc;
		assert_int_equal(uv_shutdown(&bc->sreq, s, echo_shut), 0);
		return;
	}
	snprintf(bc->reply, sizeof(bc->reply), "%s:%zu", b->name, bc->received);
	{
		uv_buf_t out = uv_buf_init(bc->reply, (unsigned)strlen(bc->reply));

		bc->wreq.data = bc;
		assert_int_equal(uv_write(&bc->wreq, s, &out, 1, name_written), 0);
	}
}

static void backend_conn(uv_stream_t *server, int status)
{
	struct backend *b = server->data;
	struct fx *x = b->x;
	struct bconn *bc = NULL;

	assert_int_equal(status, 0);
	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (!x->conns[i].used) {
			bc = &x->conns[i];
			break;
		}
	}
	assert_non_null(bc);
	memset(bc, 0, sizeof(*bc));
	bc->used = true;
	bc->b = b;
	assert_int_equal(uv_tcp_init(&x->loop, &bc->tcp), 0);
	bc->tcp.data = bc;
	assert_int_equal(uv_accept(server, (uv_stream_t *)&bc->tcp), 0);
	b->accepted++;
	assert_int_equal(uv_read_start((uv_stream_t *)&bc->tcp, alloc_cb, bconn_read), 0);
}

static struct backend *backend_start(struct fx *x, int i, const char *name, enum bmode mode)
{
	struct backend *b = &x->b[i];
	struct sockaddr_in sa = loopback(0);
	int len = sizeof(sa);

	memset(b, 0, sizeof(*b));
	b->x = x;
	b->mode = mode;
	snprintf(b->name, sizeof(b->name), "%s", name);
	assert_int_equal(uv_tcp_init(&x->loop, &b->tcp), 0);
	b->tcp.data = b;
	assert_int_equal(uv_tcp_bind(&b->tcp, (struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&b->tcp, 64, backend_conn), 0);
	assert_int_equal(uv_tcp_getsockname(&b->tcp, (struct sockaddr *)&sa, &len), 0);
	b->port = ntohs(sa.sin_port);
	b->open = true;
	return b;
}

static struct mesh_endpoint ep(uint16_t port)
{
	struct mesh_endpoint e = {.port = port};

	inet_pton(AF_INET, "127.0.0.1", &e.addr);
	return e;
}

/* ---- clients ---- */

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;

	c->used = false;
}

static void client_close(struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->slow);
	uv_close((uv_handle_t *)&c->slow, NULL);
	uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void slow_cb(uv_timer_t *t)
{
	struct client *c = t->data;

	if (!c->closing && !c->eof && c->read_err == 0)
		assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, client_read), 0);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;

	if (nread > 0) {
		if (c->rx_len + (size_t)nread > c->rx_cap) {
			c->rx_cap = (c->rx_len + (size_t)nread) * 2;
			c->rx = realloc(c->rx, c->rx_cap);
			assert_non_null(c->rx);
		}
		memcpy(c->rx + c->rx_len, buf->base, (size_t)nread);
		c->rx_len += (size_t)nread;
		if (c->slow_read) {
			uv_read_stop(s);
			uv_timer_start(&c->slow, slow_cb, 1, 0);
		}
	}
	free(buf->base);
	if (nread == UV_EOF)
		c->eof = true;
	else if (nread < 0)
		c->read_err = (int)nread;
	if (nread < 0)
		uv_read_stop(s);
}

static void client_shut(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status;
}

static void client_wrote(uv_write_t *req, int status)
{
	struct client *c = req->data;

	if (status != 0)
		return;
	c->wrote = true;
	if (c->hold_read)
		assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, client_read), 0);
}

static void client_send(struct client *c, const char *data, size_t len, bool shut)
{
	uv_buf_t b;

	memcpy(&b.base, &data, sizeof(b.base)); /* libuv only reads it */
	b.len = len;

	c->wreq.data = c;
	assert_int_equal(uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, client_wrote), 0);
	if (shut)
		assert_int_equal(uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, client_shut), 0);
}

static void client_connected(uv_connect_t *req, int status)
{
	struct client *c = req->data;

	c->connect_status = status;
	if (status != 0)
		return;
	c->connected = true;
	if (!c->hold_read)
		assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, client_read), 0);
	if (c->send != NULL)
		client_send(c, c->send, c->send_len, c->shut);
}

/* Connect to the published port; on connect send @data (may be NULL), then
 * shut down the write side when @shut. */
static struct client *client_start(struct fx *x, int i, uint16_t port, const char *data, size_t len,
				   bool shut)
{
	struct client *c = &x->c[i];
	struct sockaddr_in sa = loopback(port);

	assert_false(c->used);
	free(c->rx);
	memset(c, 0, sizeof(*c));
	c->x = x;
	c->used = true;
	c->connect_status = 1;
	c->send = data;
	c->send_len = len;
	c->shut = shut;
	assert_int_equal(uv_tcp_init(&x->loop, &c->tcp), 0);
	assert_int_equal(uv_timer_init(&x->loop, &c->slow), 0);
	c->tcp.data = c;
	c->slow.data = c;
	c->creq.data = c;
	assert_int_equal(
	    uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&sa, client_connected), 0);
	return c;
}

/* Run one client to the end: connect, send, EOF. Returns the reply. */
static const char *ask(struct fx *x, const char *msg)
{
	static char reply[64];
	struct client *c = client_start(x, MAX_CLIENTS - 1, x->port, msg, strlen(msg), true);

	RUN_UNTIL(x, c->eof || c->read_err != 0 || c->connect_status < 0, 5000);
	assert_int_equal(c->connect_status, 0);
	assert_int_equal(c->read_err, 0);
	assert_true(c->rx_len < sizeof(reply));
	if (c->rx_len > 0)
		memcpy(reply, c->rx, c->rx_len);
	reply[c->rx_len] = '\0';
	client_close(c);
	RUN_UNTIL(x, !c->used, 5000);
	return reply;
}

static struct mesh_stats stats(struct fx *x)
{
	struct mesh_stats s;

	mesh_get_stats(x->mesh, &s);
	return s;
}

static void set1(struct fx *x, const struct mesh_endpoint *eps, size_t n)
{
	struct mesh_port p = {.published = x->port, .eps = eps, .n_eps = n};
	struct shoal_err err = {{0}};

	assert_int_equal(mesh_set(x->mesh, &p, 1, &err), 0);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct shoal_err err;

	assert_non_null(x);
	assert_int_equal(uv_loop_init(&x->loop), 0);
	assert_int_equal(uv_timer_init(&x->loop, &x->deadline), 0);
	x->deadline.data = x;
	assert_int_equal(mesh_open(&x->loop, "127.0.0.1", &x->mesh, &err), 0);
	x->port = free_port(x);
	*state = x;
	return 0;
}

static void mesh_closed(void *arg)
{
	struct fx *x = arg;

	x->mesh_closed = true;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	if (!x->mesh_closed) {
		mesh_close(x->mesh, mesh_closed, x);
		RUN_UNTIL(x, x->mesh_closed, 5000);
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (x->c[i].used)
			client_close(&x->c[i]);
	for (int i = 0; i < MAX_CONNS; i++)
		if (x->conns[i].used)
			bconn_close(&x->conns[i]);
	for (int i = 0; i < MAX_BACKENDS; i++)
		if (x->b[i].open)
			uv_close((uv_handle_t *)&x->b[i].tcp, NULL);
	uv_close((uv_handle_t *)&x->deadline, NULL);
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&x->loop), 0);
	for (int i = 0; i < MAX_CLIENTS; i++)
		free(x->c[i].rx);
	free(x->big);
	free(x);
	return 0;
}

/* ---- tests ---- */

static void test_open_bad_address(void **state)
{
	struct fx *x = *state;
	struct mesh *m = NULL;
	struct shoal_err err = {{0}};

	assert_int_equal(mesh_open(&x->loop, "10.0.0", &m, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "10.0.0"));
	assert_null(m);
}

static void test_round_robin(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint eps[3];
	const char *want[] = {"a:2", "b:2", "c:2", "a:2", "b:2", "c:2"};

	eps[0] = ep(backend_start(x, 0, "a", B_NAME)->port);
	eps[1] = ep(backend_start(x, 1, "b", B_NAME)->port);
	eps[2] = ep(backend_start(x, 2, "c", B_NAME)->port);
	set1(x, eps, 3);
	assert_int_equal(mesh_listening(x->mesh), 1);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		assert_string_equal(ask(x, "hi"), want[i]);
	RUN_UNTIL(x, stats(x).active == 0, 5000);
	assert_int_equal(stats(x).accepted, 6);
	assert_int_equal(stats(x).forwarded, 6);
	assert_int_equal(stats(x).retried, 0);
	assert_int_equal(stats(x).refused, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(x->b[i].accepted, 2);
}

static void test_half_close(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint e = ep(backend_start(x, 0, "a", B_NAME)->port);
	struct client *c;

	set1(x, &e, 1);
	/* Without the shutdown the backend never answers: it waits for EOF. */
	c = client_start(x, 0, x->port, "hello", 5, false);
	RUN_UNTIL(x, x->b[0].received == 5, 5000);
	assert_int_equal(c->rx_len, 0);
	assert_int_equal(uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, client_shut), 0);
	RUN_UNTIL(x, c->eof || c->read_err != 0, 5000);
	assert_int_equal(c->read_err, 0);
	assert_int_equal(c->rx_len, 3);
	assert_memory_equal(c->rx, "a:5", 3);
	RUN_UNTIL(x, stats(x).active == 0, 5000);
}

static void test_swap_in_flight(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint a = ep(backend_start(x, 0, "a", B_NAME)->port);
	struct mesh_endpoint b = ep(backend_start(x, 1, "b", B_NAME)->port);
	struct client *c1;

	set1(x, &a, 1);
	c1 = client_start(x, 0, x->port, "one", 3, false);
	RUN_UNTIL(x, x->b[0].received == 3, 5000);
	set1(x, &b, 1);
	assert_int_equal(mesh_listening(x->mesh), 1);
	assert_string_equal(ask(x, "two!"), "b:4");
	assert_int_equal(stats(x).active, 1);
	/* The first connection still talks to a. */
	assert_int_equal(uv_shutdown(&c1->sreq, (uv_stream_t *)&c1->tcp, client_shut), 0);
	RUN_UNTIL(x, c1->eof || c1->read_err != 0, 5000);
	assert_int_equal(c1->rx_len, 3);
	assert_memory_equal(c1->rx, "a:3", 3);
	assert_int_equal(x->b[0].accepted, 1);
	assert_int_equal(x->b[1].accepted, 1);
	RUN_UNTIL(x, stats(x).active == 0, 5000);
}

static void test_dead_endpoint(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint eps[2];
	struct client *c;

	eps[0] = ep(free_port(x)); /* refused */
	eps[1] = ep(backend_start(x, 0, "a", B_NAME)->port);
	set1(x, eps, 2);
	assert_string_equal(ask(x, "x"), "a:1"); /* dead first, retried on a */
	assert_int_equal(stats(x).retried, 1);
	assert_string_equal(ask(x, "x"), "a:1"); /* a first */
	assert_int_equal(stats(x).retried, 1);
	assert_string_equal(ask(x, "x"), "a:1");
	assert_int_equal(stats(x).retried, 2);
	assert_int_equal(stats(x).forwarded, 3);
	assert_int_equal(stats(x).refused, 0);

	/* Only the dead one: the client is reset, no data. */
	set1(x, eps, 1);
	c = client_start(x, 0, x->port, "x", 1, false);
	RUN_UNTIL(x, c->eof || c->read_err != 0 || c->connect_status < 0, 5000);
	assert_int_equal(c->rx_len, 0);
	assert_int_equal(stats(x).refused, 1);
	assert_int_equal(stats(x).forwarded, 3);
	RUN_UNTIL(x, stats(x).active == 0, 5000);
}

static void test_no_endpoints(void **state)
{
	struct fx *x = *state;
	struct client *c;

	set1(x, NULL, 0);
	assert_int_equal(mesh_listening(x->mesh), 1);
	c = client_start(x, 0, x->port, "x", 1, false);
	RUN_UNTIL(x, c->eof || c->read_err != 0 || c->connect_status < 0, 5000);
	assert_int_equal(c->rx_len, 0);
	assert_true(c->eof || c->read_err == UV_ECONNRESET || c->connect_status < 0);
	assert_int_equal(stats(x).accepted, 1);
	assert_int_equal(stats(x).refused, 1);
	assert_int_equal(stats(x).active, 0);
}

static void test_port_removed(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint a = ep(backend_start(x, 0, "a", B_NAME)->port);
	struct shoal_err err = {{0}};
	struct client *c1, *c2;

	set1(x, &a, 1);
	c1 = client_start(x, 0, x->port, "abc", 3, false);
	RUN_UNTIL(x, x->b[0].received == 3, 5000);
	assert_int_equal(mesh_set(x->mesh, NULL, 0, &err), 0);
	assert_int_equal(mesh_listening(x->mesh), 0);
	c2 = client_start(x, 1, x->port, NULL, 0, false);
	RUN_UNTIL(x, c2->connect_status != 1, 5000);
	assert_int_equal(c2->connect_status, UV_ECONNREFUSED);
	assert_int_equal(uv_shutdown(&c1->sreq, (uv_stream_t *)&c1->tcp, client_shut), 0);
	RUN_UNTIL(x, c1->eof || c1->read_err != 0, 5000);
	assert_int_equal(c1->rx_len, 3);
	assert_memory_equal(c1->rx, "a:3", 3);
	RUN_UNTIL(x, stats(x).active == 0, 5000);
}

static void test_large_transfer(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint e = ep(backend_start(x, 0, "e", B_ECHO)->port);
	char *data = x->big = malloc(BIG);
	struct client *c;

	assert_non_null(data);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)(i * 7 + i / 4096);
	set1(x, &e, 1);
	c = client_start(x, 0, x->port, data, BIG, true);
	c->hold_read = true;
	c->slow_read = true;
	RUN_UNTIL(x, c->wrote || c->read_err != 0 || c->connect_status < 0, 30000);
	assert_int_equal(c->connect_status, 0);
	/* 8 MiB went up while the client read nothing: the echo's replies
	 * piled up (the mesh's queue towards the client hit high water).
	 * This exercises back pressure; it does not prove the mesh stopped
	 * reading, kernel buffers on loopback hide that. */
	RUN_UNTIL(x, x->b[0].received == BIG, 30000);
	assert_true(x->b[0].max_queue > 2u * 1024 * 1024);
	RUN_UNTIL(x, c->eof || c->read_err != 0, 60000);
	assert_int_equal(c->read_err, 0);
	assert_int_equal(c->rx_len, BIG);
	assert_memory_equal(c->rx, data, BIG);
	RUN_UNTIL(x, stats(x).active == 0, 5000);
	client_close(c);
}

static void test_bad_input(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint a = ep(backend_start(x, 0, "a", B_NAME)->port);
	struct mesh_endpoint zero = {.port = 0};
	uint16_t other = free_port(x);
	struct mesh_port dup[2] = {{x->port, &a, 1}, {x->port, &a, 1}};
	struct mesh_port p0[2] = {{other, &a, 1}, {0, &a, 1}};
	struct mesh_port epz[2] = {{other, &a, 1}, {x->port, &zero, 1}};
	struct mesh_port many = {x->port, &a, MESH_MAX_ENDPOINTS + 1};
	struct mesh_port noeps = {x->port, NULL, 2};
	struct shoal_err err = {{0}};
	struct client *c;

	set1(x, &a, 1);
	assert_int_equal(mesh_set(x->mesh, dup, 2, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
	assert_int_equal(mesh_set(x->mesh, p0, 2, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "port 0"));
	assert_int_equal(mesh_set(x->mesh, epz, 2, &err), SHOAL_EINVAL);
	assert_int_equal(mesh_set(x->mesh, &many, 1, &err), SHOAL_EINVAL);
	assert_int_equal(mesh_set(x->mesh, &noeps, 1, &err), SHOAL_EINVAL);
	assert_int_equal(mesh_set(x->mesh, dup, MESH_MAX_PORTS + 1, &err), SHOAL_EINVAL);
	/* Nothing changed: one port, still to a; the other port not opened. */
	assert_int_equal(mesh_listening(x->mesh), 1);
	assert_string_equal(ask(x, "x"), "a:1");
	c = client_start(x, 0, other, NULL, 0, false);
	RUN_UNTIL(x, c->connect_status != 1, 5000);
	assert_int_equal(c->connect_status, UV_ECONNREFUSED);
}

static void test_port_busy(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint a = ep(backend_start(x, 0, "a", B_NAME)->port);
	uint16_t taken = backend_start(x, 1, "t", B_NAME)->port;
	struct mesh_port tab[2] = {{x->port, &a, 1}, {taken, &a, 1}};
	struct shoal_err err = {{0}};
	char num[8];

	assert_int_equal(mesh_set(x->mesh, tab, 2, &err), SHOAL_EBUSY);
	snprintf(num, sizeof(num), "%u", taken);
	assert_non_null(strstr(err.msg, num));
	assert_int_equal(mesh_listening(x->mesh), 1);
	assert_string_equal(ask(x, "x"), "a:1"); /* the table was applied */
	/* Freed: the next mesh_set listens there. */
	uv_close((uv_handle_t *)&x->b[1].tcp, NULL);
	x->b[1].open = false;
	uv_run(&x->loop, UV_RUN_NOWAIT);
	assert_int_equal(mesh_set(x->mesh, tab, 2, &err), 0);
	assert_int_equal(mesh_listening(x->mesh), 2);
	x->port = taken;
	assert_string_equal(ask(x, "xy"), "a:2");
}

static void test_close_live(void **state)
{
	struct fx *x = *state;
	struct mesh_endpoint e = ep(backend_start(x, 0, "e", B_ECHO)->port);
	struct client *c1, *c2;

	set1(x, &e, 1);
	c1 = client_start(x, 0, x->port, "live", 4, false);
	c2 = client_start(x, 1, x->port, "also", 4, false);
	RUN_UNTIL(x, c1->rx_len == 4 && c2->rx_len == 4, 5000);
	assert_int_equal(stats(x).active, 2);
	mesh_close(x->mesh, mesh_closed, x);
	RUN_UNTIL(x, x->mesh_closed, 5000);
	RUN_UNTIL(x, (c1->eof || c1->read_err != 0) && (c2->eof || c2->read_err != 0), 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_bad_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_robin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_swap_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_endpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_endpoints, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_port_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_transfer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_port_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_live, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN); /* as the daemon: a peer's reset is an EPIPE, not a kill */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
