/* bench/mesh_bench: the routing mesh's cost against a direct connection, on loopback.
 *
 * Usage: mesh_bench [REQUESTS [BULK_MIB [CONNECTIONS]]] (default 20000 1024 5000)
 * One thread runs a uv loop with two backends (echo, and a source that sends
 * BULK_MIB MiB then closes) and a mesh publishing both; the main thread is a
 * blocking client. Each measure runs direct (backend port) and through the
 * mesh (published port):
 *   latency      REQUESTS sequential 100 B requests, 100 B replies, one connection: p50, p99
 *   throughput   BULK_MIB MiB from the source to the client: MiB/s
 *   connections  CONNECTIONS times connect, 100 B request, 100 B reply, close: per second
 * Prints one table with the mesh/direct ratio; the raw figures also go to
 * stderr as "= KEY DIRECT MESH" lines. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "lib/err.h"
#include "runtime/mesh.h"

#define MSG	     100
#define SRC_CHUNK    (256 * 1024)
#define SRC_INFLIGHT 4

static uint64_t bulk_bytes;
static char src_buf[SRC_CHUNK];

static void die(const char *what, const char *why)
{
	fprintf(stderr, "mesh_bench: %s: %s\n", what, why);
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- the server side (loop thread) ---- */

struct conn {
	uv_tcp_t tcp;
	uint64_t sent;
	int inflight;
	bool done;
};

struct wreq {
	uv_write_t req;
	char *base;
};

static void conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void close_conn(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(hint);
	buf->len = buf->base != NULL ? hint : 0;
}

static void echo_written(uv_write_t *req, int status)
{
	struct wreq *w = req->data;

	(void)status;
	free(w->base);
	free(w);
}

static void echo_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	if (nread > 0) {
		struct wreq *w = malloc(sizeof(*w));
		uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);

		if (w == NULL)
			die("echo", "out of memory");
		w->base = buf->base;
		w->req.data = w;
		if (uv_write(&w->req, s, &b, 1, echo_written) != 0) {
			free(w);
			free(buf->base);
			close_conn(s->data);
		}
		return;
	}
	free(buf->base);
	if (nread < 0)
		close_conn(s->data);
}

static void src_pump(struct conn *c);

static void src_shut(uv_shutdown_t *req, int status)
{
	(void)status;
	close_conn(req->data);
	free(req);
}

static void src_written(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	free(req);
	c->inflight--;
	if (status < 0) {
		close_conn(c);
		return;
	}
	src_pump(c);
}

static void src_pump(struct conn *c)
{
	while (!c->done && c->inflight < SRC_INFLIGHT && c->sent < bulk_bytes) {
		uint64_t left = bulk_bytes - c->sent;
		uv_write_t *req = malloc(sizeof(*req));
		uv_buf_t b = uv_buf_init(src_buf, (unsigned)(left < SRC_CHUNK ? left : SRC_CHUNK));

		if (req == NULL)
			die("source", "out of memory");
		req->data = c;
		if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, src_written) != 0) {
			free(req);
			close_conn(c);
			c->done = true;
			return;
		}
		c->inflight++;
		c->sent += b.len;
	}
	if (!c->done && c->sent == bulk_bytes && c->inflight == 0) {
		uv_shutdown_t *req = malloc(sizeof(*req));

		c->done = true;
		if (req == NULL)
			die("source", "out of memory");
		req->data = c;
		if (uv_shutdown(req, (uv_stream_t *)&c->tcp, src_shut) != 0) {
			free(req);
			close_conn(c);
		}
	}
}

static void on_conn(uv_stream_t *server, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		die("accept", "out of memory");
	uv_tcp_init(server->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		close_conn(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (server->data != NULL) /* the source */
		src_pump(c);
	else
		uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, echo_read);
}

static uint16_t listen_any(uv_loop_t *loop, uv_tcp_t *t, bool source)
{
	struct sockaddr_in sa;
	int len = sizeof(sa);

	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(loop, t);
	t->data = source ? t : NULL;
	if (uv_tcp_bind(t, (struct sockaddr *)&sa, 0) != 0 ||
	    uv_listen((uv_stream_t *)t, SOMAXCONN, on_conn) != 0 ||
	    uv_tcp_getsockname(t, (struct sockaddr *)&sa, &len) != 0)
		die("backend", "cannot listen on 127.0.0.1");
	return ntohs(sa.sin_port);
}

static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		die("free port", strerror(errno));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void stop_cb(uv_async_t *a)
{
	uv_stop(a->loop);
}

static void *loop_main(void *arg)
{
	uv_run(arg, UV_RUN_DEFAULT);
	return NULL;
}

/* ---- the client side (main thread, blocking sockets) ---- */

static int dial(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void roundtrip(int fd)
{
	char req[MSG], rep[MSG];
	size_t got = 0;

	memset(req, 'q', sizeof(req));
	if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req))
		die("write", strerror(errno));
	while (got < sizeof(rep)) {
		ssize_t n = read(fd, rep + got, sizeof(rep) - got);

		if (n <= 0)
			die("read", n == 0 ? "EOF" : strerror(errno));
		got += (size_t)n;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void latency(uint16_t port, int n, double *p50, double *p99)
{
	double *t = malloc((size_t)n * sizeof(*t));
	int fd = dial(port);

	if (t == NULL)
		die("latency", "out of memory");
	for (int i = 0; i < n / 20; i++) /* warm up */
		roundtrip(fd);
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		roundtrip(fd);
		t[i] = now_us() - t0;
	}
	close(fd);
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	*p50 = t[n / 2];
	*p99 = t[(size_t)n * 99 / 100];
	free(t);
}

static double throughput(uint16_t port)
{
	static char buf[1 << 20];
	int fd = dial(port);
	uint64_t got = 0;
	double t0 = now_us();
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (uint64_t)n;
	if (n < 0 || got != bulk_bytes)
		die("throughput", n < 0 ? strerror(errno) : "short stream");
	close(fd);
	return (double)got / (1024.0 * 1024.0) / ((now_us() - t0) / 1e6);
}

static double conn_rate(uint16_t port, int n)
{
	double t0 = now_us();

	for (int i = 0; i < n; i++) {
		int fd = dial(port);

		roundtrip(fd);
		close(fd);
	}
	return n / ((now_us() - t0) / 1e6);
}

/* One table row, and a line "= KEY DIRECT MESH" for bench/mesh.sh. */
static void row(const char *key, const char *what, const char *unit, double direct, double mesh)
{
	printf("%-30s %12.1f %12.1f %-6s %8.2f\n", what, direct, mesh, unit, mesh / direct);
	fprintf(stderr, "= %s %.1f %.1f\n", key, direct, mesh);
}

int main(int argc, char **argv)
{
	int requests = argc > 1 ? atoi(argv[1]) : 20000;
	int mib = argc > 2 ? atoi(argv[2]) : 1024;
	int conns = argc > 3 ? atoi(argv[3]) : 5000;
	uv_loop_t loop;
	uv_tcp_t echo, source;
	uv_async_t stop;
	pthread_t th;
	struct mesh *mesh;
	struct shoal_err err;
	struct mesh_endpoint e_echo, e_src;
	struct mesh_port ports[2];
	struct mesh_stats st;
	double d50, d99, m50, m99, dt, mt, dc, mc;

	if (requests < 100 || mib < 1 || conns < 1)
		die("usage", "mesh_bench [REQUESTS>=100 [BULK_MIB>=1 [CONNECTIONS>=1]]]");
	bulk_bytes = (uint64_t)mib * 1024 * 1024;
	memset(src_buf, 's', sizeof(src_buf));
	uv_loop_init(&loop);
	uv_async_init(&loop, &stop, stop_cb);
	e_echo.port = listen_any(&loop, &echo, false);
	e_src.port = listen_any(&loop, &source, true);
	e_echo.addr.s_addr = htonl(INADDR_LOOPBACK);
	e_src.addr.s_addr = htonl(INADDR_LOOPBACK);
	if (mesh_open(&loop, "127.0.0.1", &mesh, &err) != 0)
		die("mesh_open", err.msg);
	ports[0] = (struct mesh_port){free_port(), &e_echo, 1};
	ports[1] = (struct mesh_port){free_port(), &e_src, 1};
	if (mesh_set(mesh, ports, 2, &err) != 0)
		die("mesh_set", err.msg);
	if (pthread_create(&th, NULL, loop_main, &loop) != 0)
		die("thread", "cannot start the loop thread");

	latency(e_echo.port, requests, &d50, &d99);
	latency(ports[0].published, requests, &m50, &m99);
	dt = throughput(e_src.port);
	mt = throughput(ports[1].published);
	dc = conn_rate(e_echo.port, conns);
	mc = conn_rate(ports[0].published, conns);

	uv_async_send(&stop);
	pthread_join(th, NULL);
	mesh_get_stats(mesh, &st);

	printf("\nshoal routing mesh vs direct connection (loopback, one loop thread for "
	       "backends and mesh)\n\n");
	printf("%-30s %12s %12s %-6s %8s\n", "measure", "direct", "mesh", "unit", "mesh/dir");
	row("p50", "latency p50 (100 B req/rep)", "us", d50, m50);
	row("p99", "latency p99 (100 B req/rep)", "us", d99, m99);
	row("mibs", "throughput", "MiB/s", dt, mt);
	row("conns", "connections (req/rep, close)", "conn/s", dc, mc);
	printf("\n%d requests, %d MiB streamed, %d connections; mesh: %llu accepted, %llu "
	       "forwarded, %llu refused\n",
	       requests, mib, conns, (unsigned long long)st.accepted,
	       (unsigned long long)st.forwarded, (unsigned long long)st.refused);
	return 0;
}
