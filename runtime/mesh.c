/* The routing mesh: one TCP listener per published port, each connection proxied to an endpoint. */
#include "runtime/mesh.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define READ_CHUNK (64 * 1024)
#define BUSY_LIST  8 /* ports named in a SHOAL_EBUSY message */

/* A port's endpoints: immutable once built, shared by the port and by every
 * pair that may still try one of them. Freed when the last holder lets go. */
struct epset {
	unsigned refs;
	size_t n;
	struct mesh_endpoint eps[];
};

struct lport;

/* One listening socket. Its own allocation, so a port can drop it (or retry a
 * failed bind) while its close is still pending. Freed in its close callback. */
struct lsock {
	uv_tcp_t tcp;
	struct mesh *m;
	struct lport *port; /* NULL once closing */
};

/* One published port of the table. */
struct lport {
	uint16_t published;
	struct epset *set;  /* NULL: no endpoint */
	size_t cursor;	    /* round robin: the next connection's first endpoint */
	struct lsock *sock; /* NULL: not listening (bind failed) */
};

/* One proxied connection: the client side (accepted) and the upstream side.
 *   ACCEPTED    client accepted; nothing else open yet
 *   CONNECTING  upstream handle open, connect pending, timer running
 *   RETRY       the failed upstream handle is closing; its close callback
 *               tries the next endpoint, or resets the client when none is left
 *   OPEN        connected: bytes flow both ways
 *   CLOSING     every handle closed or closing; freed after the last close */
enum pstate { P_ACCEPTED, P_CONNECTING, P_RETRY, P_OPEN, P_CLOSING, P_NSTATES };

static const bool allowed[P_NSTATES][P_NSTATES] __attribute__((unused)) = {
    [P_ACCEPTED] = {[P_CONNECTING] = true, [P_CLOSING] = true},
    [P_CONNECTING] = {[P_RETRY] = true, [P_OPEN] = true, [P_CLOSING] = true},
    [P_RETRY] = {[P_CONNECTING] = true, [P_CLOSING] = true},
    [P_OPEN] = {[P_CLOSING] = true},
};

enum { CLIENT = 0, UP = 1 };

struct side {
	uv_tcp_t tcp;
	bool live;   /* initialised and uv_close() not yet called */
	bool paused; /* reading stopped: the other side's queue is above high water */
	bool eof;    /* EOF read */
	bool shut;   /* shutdown(SHUT_WR) of this side done */
	uv_shutdown_t shutdown;
};

struct pair {
	struct mesh *m;
	struct pair *prev, *next;
	enum pstate state;
	struct side s[2];
	uv_timer_t timer; /* connect timeout */
	bool timer_live;
	uv_connect_t connect;
	struct epset *set; /* a reference */
	size_t first;	   /* the first endpoint tried */
	size_t tried;	   /* endpoints tried so far */
	unsigned n_open;   /* handles whose close callback has not run */
};

/* A read buffer that becomes the write request forwarding it. */
struct chunk {
	uv_write_t req;
	struct pair *p;
	int to; /* CLIENT or UP */
	char data[READ_CHUNK];
};

struct mesh {
	uv_loop_t *loop;
	struct in_addr bind;
	char bind_str[INET_ADDRSTRLEN];
	struct lport **ports; /* sorted by published */
	size_t n_ports;
	size_t n_listening;
	struct pair *pairs; /* every pair not yet freed */
	size_t n_pairs;
	size_t n_socks; /* lsocks not yet freed */
	struct mesh_stats stats;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

/* ---- endpoint sets ---- */

static struct epset *epset_new(const struct mesh_port *p)
{
	struct epset *s;

	if (p->n_eps == 0)
		return NULL;
	s = malloc(sizeof(*s) + p->n_eps * sizeof(s->eps[0]));
	if (s == NULL)
		return NULL;
	s->refs = 1;
	s->n = p->n_eps;
	memcpy(s->eps, p->eps, p->n_eps * sizeof(s->eps[0]));
	return s;
}

static struct epset *epset_ref(struct epset *s)
{
	if (s != NULL)
		s->refs++;
	return s;
}

static void epset_unref(struct epset *s)
{
	if (s != NULL && --s->refs == 0)
		free(s);
}

/* ---- closing ---- */

static void maybe_done(struct mesh *m)
{
	void (*cb)(void *arg);
	void *arg;

	if (!m->closing || m->n_pairs > 0 || m->n_socks > 0)
		return;
	cb = m->close_cb;
	arg = m->close_arg;
	free(m);
	if (cb != NULL)
		cb(arg);
}

static void move(struct pair *p, enum pstate to)
{
	PRE(allowed[p->state][to]);
	p->state = to;
}

static void pair_handle_closed(uv_handle_t *h)
{
	struct pair *p = h->data;
	struct mesh *m = p->m;

	PRE(p->n_open > 0);
	if (--p->n_open > 0 || p->state != P_CLOSING)
		return;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		m->pairs = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	epset_unref(p->set);
	free(p);
	m->n_pairs--;
	maybe_done(m);
}

/* Close @s, with an RST when @reset (falls back to a plain close when the
 * socket cannot be set to linger 0, e.g. while a shutdown is pending). */
static void side_close(struct side *s, bool reset)
{
	if (!s->live)
		return;
	s->live = false;
	if (reset && uv_tcp_close_reset(&s->tcp, pair_handle_closed) == 0)
		return;
	uv_close((uv_handle_t *)&s->tcp, pair_handle_closed);
}

/* Close the pair: @reset for an abort (error, refusal, mesh closing), plain
 * close once both directions ended. */
static void pair_close(struct pair *p, bool reset)
{
	if (p->state == P_CLOSING)
		return;
	if (p->state != P_ACCEPTED)
		p->m->stats.active--;
	move(p, P_CLOSING);
	if (p->timer_live) {
		p->timer_live = false;
		uv_close((uv_handle_t *)&p->timer, pair_handle_closed);
	}
	side_close(&p->s[CLIENT], reset);
	side_close(&p->s[UP], reset);
}

/* ---- bytes both ways ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct chunk *c = malloc(sizeof(*c));

	(void)h;
	(void)hint;
	*buf = uv_buf_init(c != NULL ? c->data : NULL, c != NULL ? READ_CHUNK : 0);
}

static struct chunk *chunk_of(const uv_buf_t *buf)
{
	if (buf->base == NULL)
		return NULL;
	return (struct chunk *)(void *)(buf->base - offsetof(struct chunk, data));
}

static int side_of(struct pair *p, const uv_stream_t *stream)
{
	return stream == (uv_stream_t *)&p->s[CLIENT].tcp ? CLIENT : UP;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
	struct chunk *c = req->data;
	struct pair *p = c->p;
	int to = c->to, from = 1 - to;

	free(c);
	if (p->state != P_OPEN)
		return;
	if (status < 0) {
		pair_close(p, true);
		return;
	}
	if (p->s[from].paused &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&p->s[to].tcp) <= MESH_HIGH_WATER / 2) {
		p->s[from].paused = false;
		if (uv_read_start((uv_stream_t *)&p->s[from].tcp, alloc_cb, read_cb) != 0)
			pair_close(p, true);
	}
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct pair *p = req->data;
	int to = req == &p->s[CLIENT].shutdown ? CLIENT : UP;

	if (p->state != P_OPEN)
		return;
	if (status < 0) {
		pair_close(p, true);
		return;
	}
	p->s[to].shut = true;
	if (p->s[CLIENT].shut && p->s[UP].shut)
		pair_close(p, false);
}

static void forward(struct pair *p, int from, struct chunk *c, size_t len)
{
	int to = 1 - from;
	uv_stream_t *dst = (uv_stream_t *)&p->s[to].tcp;
	uv_buf_t b = uv_buf_init(c->data, (unsigned)len);

	c->req.data = c;
	c->p = p;
	c->to = to;
	if (uv_write(&c->req, dst, &b, 1, write_cb) != 0) {
		free(c);
		pair_close(p, true);
		return;
	}
	if (uv_stream_get_write_queue_size(dst) > MESH_HIGH_WATER) {
		uv_read_stop((uv_stream_t *)&p->s[from].tcp);
		p->s[from].paused = true;
	}
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct pair *p = stream->data;
	struct chunk *c = chunk_of(buf);
	int from = side_of(p, stream), to = 1 - from;

	if (nread > 0 && p->state == P_OPEN) {
		forward(p, from, c, (size_t)nread);
		return;
	}
	free(c);
	if (nread == 0 || p->state != P_OPEN)
		return;
	if (nread != UV_EOF) {
		pair_close(p, true);
		return;
	}
	p->s[from].eof = true;
	uv_read_stop(stream);
	p->s[to].shutdown.data = p;
	if (uv_shutdown(&p->s[to].shutdown, (uv_stream_t *)&p->s[to].tcp, shutdown_cb) != 0)
		pair_close(p, true);
}

/* ---- connecting upstream ---- */

static void attempt(struct pair *p);

static void up_closed(uv_handle_t *h)
{
	struct pair *p = h->data;

	if (p->state != P_RETRY) {
		pair_handle_closed(h);
		return;
	}
	p->n_open--;
	if (p->tried < p->set->n) {
		p->m->stats.retried++;
		attempt(p);
		return;
	}
	p->m->stats.refused++;
	pair_close(p, true);
}

/* The current attempt failed: close its handle, then try the next one. */
static void attempt_failed(struct pair *p)
{
	move(p, P_RETRY);
	uv_timer_stop(&p->timer);
	p->s[UP].live = false;
	uv_close((uv_handle_t *)&p->s[UP].tcp, up_closed);
}

static void timeout_cb(uv_timer_t *t)
{
	struct pair *p = t->data;

	if (p->state == P_CONNECTING)
		attempt_failed(p);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct pair *p = req->data;

	/* UV_ECANCELED: the handle was closed (timeout, or the pair closing). */
	if (status == UV_ECANCELED || p->state != P_CONNECTING)
		return;
	if (status < 0) {
		attempt_failed(p);
		return;
	}
	uv_timer_stop(&p->timer);
	move(p, P_OPEN);
	p->m->stats.forwarded++;
	uv_tcp_nodelay(&p->s[CLIENT].tcp, 1);
	uv_tcp_nodelay(&p->s[UP].tcp, 1);
	if (uv_read_start((uv_stream_t *)&p->s[CLIENT].tcp, alloc_cb, read_cb) != 0 ||
	    uv_read_start((uv_stream_t *)&p->s[UP].tcp, alloc_cb, read_cb) != 0)
		pair_close(p, true);
}

/* Connect to the next endpoint not yet tried. The client is not read until
 * the upstream connected: its bytes wait in the kernel, nothing is buffered
 * here, and a retry never has to replay anything. */
static void attempt(struct pair *p)
{
	const struct mesh_endpoint *ep;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct side *up = &p->s[UP];

	PRE(p->tried < p->set->n);
	ep = &p->set->eps[(p->first + p->tried) % p->set->n];
	p->tried++;
	sa.sin_addr = ep->addr;
	sa.sin_port = htons(ep->port);
	move(p, P_CONNECTING);
	if (uv_tcp_init(p->m->loop, &up->tcp) != 0) {
		p->m->stats.refused++;
		pair_close(p, true);
		return;
	}
	up->tcp.data = p;
	up->live = true;
	p->n_open++;
	p->connect.data = p;
	if (uv_tcp_connect(&p->connect, &up->tcp, (const struct sockaddr *)&sa, connect_cb) != 0) {
		attempt_failed(p);
		return;
	}
	uv_timer_start(&p->timer, timeout_cb, MESH_CONNECT_MS, 0);
}

/* ---- accepting ---- */

static void connection_cb(uv_stream_t *server, int status)
{
	struct lsock *ls = server->data;
	struct mesh *m = ls->m;
	struct lport *port = ls->port;
	struct pair *p;

	if (m->closing || port == NULL || status < 0)
		return;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return; /* libuv stops accepting until the next poll; the kernel queues */
	p->m = m;
	p->state = P_ACCEPTED;
	uv_tcp_init(m->loop, &p->s[CLIENT].tcp);
	p->s[CLIENT].tcp.data = p;
	p->s[CLIENT].live = true;
	p->n_open = 1;
	p->next = m->pairs;
	if (m->pairs != NULL)
		m->pairs->prev = p;
	m->pairs = p;
	m->n_pairs++;
	if (uv_accept(server, (uv_stream_t *)&p->s[CLIENT].tcp) != 0) {
		pair_close(p, false);
		return;
	}
	m->stats.accepted++;
	if (port->set == NULL) {
		m->stats.refused++;
		pair_close(p, true);
		return;
	}
	p->set = epset_ref(port->set);
	p->first = port->cursor % p->set->n;
	port->cursor = (p->first + 1) % p->set->n;
	uv_timer_init(m->loop, &p->timer);
	p->timer.data = p;
	p->timer_live = true;
	p->n_open++;
	m->stats.active++;
	attempt(p);
}

static void lsock_closed(uv_handle_t *h)
{
	struct lsock *ls = h->data;
	struct mesh *m = ls->m;

	free(ls);
	m->n_socks--;
	maybe_done(m);
}

static void lsock_close(struct lsock *ls)
{
	ls->port = NULL;
	uv_close((uv_handle_t *)&ls->tcp, lsock_closed);
}

/* Listen on @port's number. Returns 0 or a libuv error code. */
static int port_listen(struct mesh *m, struct lport *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct lsock *ls;
	int rv;

	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return UV_ENOMEM;
	rv = uv_tcp_init_ex(m->loop, &ls->tcp, AF_INET);
	if (rv != 0) {
		free(ls);
		return rv;
	}
	ls->m = m;
	ls->port = port;
	ls->tcp.data = ls;
	m->n_socks++;
	sa.sin_addr = m->bind;
	sa.sin_port = htons(port->published);
	/* libuv sets SO_REUSEADDR; EADDRINUSE shows at listen. */
	rv = uv_tcp_bind(&ls->tcp, (const struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&ls->tcp, SOMAXCONN, connection_cb);
	if (rv != 0) {
		lsock_close(ls);
		return rv;
	}
	port->sock = ls;
	m->n_listening++;
	return 0;
}

static void port_free(struct mesh *m, struct lport *port)
{
	if (port == NULL)
		return;
	if (port->sock != NULL) {
		lsock_close(port->sock);
		m->n_listening--;
	}
	epset_unref(port->set);
	free(port);
}

/* ---- the API ---- */

int mesh_open(uv_loop_t *loop, const char *bind, struct mesh **out, struct shoal_err *err)
{
	struct mesh *m;
	struct in_addr a;

	PRE(loop != NULL && out != NULL);
	if (bind == NULL)
		bind = "0.0.0.0";
	if (inet_pton(AF_INET, bind, &a) != 1)
		return shoal_errf(err, SHOAL_EINVAL,
				  "routing mesh: listen address '%.64s' is not an IPv4 address",
				  bind);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "routing mesh: out of memory");
	m->loop = loop;
	m->bind = a;
	inet_ntop(AF_INET, &a, m->bind_str, sizeof(m->bind_str));
	*out = m;
	return 0;
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static int check_table(const struct mesh_port *ports, size_t n, struct shoal_err *err)
{
	uint16_t *nums;

	if (n > MESH_MAX_PORTS)
		return shoal_errf(err, SHOAL_EINVAL,
				  "routing mesh: %zu published ports, at most %d are allowed", n,
				  MESH_MAX_PORTS);
	if (n > 0 && ports == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "routing mesh: no port table given");
	for (size_t i = 0; i < n; i++) {
		const struct mesh_port *p = &ports[i];

		if (p->published == 0)
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "routing mesh: published port 0 is not a port; use 1-65535");
		if (p->n_eps > MESH_MAX_ENDPOINTS)
			return shoal_errf(err, SHOAL_EINVAL,
					  "routing mesh: published port %u has %zu endpoints, at "
					  "most %d are allowed",
					  p->published, p->n_eps, MESH_MAX_ENDPOINTS);
		if (p->n_eps > 0 && p->eps == NULL)
			return shoal_errf(err, SHOAL_EINVAL,
					  "routing mesh: published port %u: endpoint list missing",
					  p->published);
		for (size_t j = 0; j < p->n_eps; j++)
			if (p->eps[j].port == 0)
				return shoal_errf(err, SHOAL_EINVAL,
						  "routing mesh: published port %u: endpoint %zu "
						  "has target port 0",
						  p->published, j);
	}
	if (n < 2)
		return 0;
	nums = malloc(n * sizeof(*nums));
	if (nums == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "routing mesh: out of memory");
	for (size_t i = 0; i < n; i++)
		nums[i] = ports[i].published;
	qsort(nums, n, sizeof(*nums), cmp_u16);
	for (size_t i = 1; i < n; i++) {
		if (nums[i] == nums[i - 1]) {
			unsigned dup = nums[i];

			free(nums);
			return shoal_errf(err, SHOAL_EINVAL,
					  "routing mesh: port %u is published twice", dup);
		}
	}
	free(nums);
	return 0;
}

static int cmp_port(const void *a, const void *b)
{
	const struct lport *x = *(struct lport *const *)a, *y = *(struct lport *const *)b;

	return (int)x->published - (int)y->published;
}

static struct lport *find_port(struct lport **ports, size_t n, uint16_t published)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ports[mid]->published == published)
			return ports[mid];
		if (ports[mid]->published < published)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int mesh_set(struct mesh *m, const struct mesh_port *ports, size_t n, struct shoal_err *err)
{
	struct lport **next = NULL;
	struct epset **sets = NULL;
	char busy[SHOAL_ERR_LEN] = "";
	size_t n_busy = 0, len = 0;
	int rv, first_err = 0;

	PRE(m != NULL && !m->closing);
	rv = check_table(ports, n, err);
	if (rv != 0)
		return rv;

	/* Everything that can fail for lack of memory, before anything changes. */
	next = calloc(n > 0 ? n : 1, sizeof(*next));
	sets = calloc(n > 0 ? n : 1, sizeof(*sets));
	if (next == NULL || sets == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct lport *old = find_port(m->ports, m->n_ports, ports[i].published);

		sets[i] = epset_new(&ports[i]);
		if (ports[i].n_eps > 0 && sets[i] == NULL)
			goto nomem;
		if (old != NULL) {
			next[i] = old;
			continue;
		}
		next[i] = calloc(1, sizeof(*next[i]));
		if (next[i] == NULL)
			goto nomem;
		next[i]->published = ports[i].published;
	}

	/* Commit: swap the sets, drop the ports that left. */
	for (size_t i = 0; i < n; i++) {
		epset_unref(next[i]->set);
		next[i]->set = sets[i];
	}
	free(sets);
	qsort(next, n, sizeof(*next), cmp_port);
	for (size_t i = 0; i < m->n_ports; i++)
		if (find_port(next, n, m->ports[i]->published) == NULL)
			port_free(m, m->ports[i]);
	free(m->ports);
	m->ports = next;
	m->n_ports = n;

	/* Listen where not listening yet (new ports, and earlier failures). */
	for (size_t i = 0; i < n; i++) {
		struct lport *port = next[i];

		if (port->sock != NULL)
			continue;
		rv = port_listen(m, port);
		if (rv == 0)
			continue;
		if (first_err == 0)
			first_err = rv;
		if (n_busy < BUSY_LIST)
			len += (size_t)snprintf(busy + len, sizeof(busy) - len, "%s%u",
						n_busy > 0 ? ", " : "", port->published);
		else if (n_busy == BUSY_LIST)
			len += (size_t)snprintf(busy + len, sizeof(busy) - len, ", ...");
		n_busy++;
	}
	if (n_busy == 0)
		return 0;
	if (first_err == UV_ENOMEM)
		return shoal_errf(err, SHOAL_ENOMEM,
				  "routing mesh: out of memory opening published port %s", busy);
	return shoal_errf(err, SHOAL_EBUSY,
			  "routing mesh: cannot listen on %s port%s %s (%s); the other ports are "
			  "published and %s retried at the next update",
			  m->bind_str, n_busy > 1 ? "s" : "", busy, uv_strerror(first_err),
			  n_busy > 1 ? "these are" : "this one is");

nomem:
	for (size_t i = 0; next != NULL && i < n; i++)
		if (next[i] != NULL && find_port(m->ports, m->n_ports, next[i]->published) == NULL)
			free(next[i]);
	for (size_t i = 0; sets != NULL && i < n; i++)
		epset_unref(sets[i]);
	free(next);
	free(sets);
	return shoal_errf(err, SHOAL_ENOMEM, "routing mesh: out of memory");
}

size_t mesh_listening(const struct mesh *m)
{
	return m->n_listening;
}

void mesh_get_stats(const struct mesh *m, struct mesh_stats *out)
{
	*out = m->stats;
}

void mesh_close(struct mesh *m, void (*cb)(void *arg), void *arg)
{
	PRE(m != NULL && !m->closing);
	m->closing = true;
	m->close_cb = cb;
	m->close_arg = arg;
	for (size_t i = 0; i < m->n_ports; i++)
		port_free(m, m->ports[i]);
	free(m->ports);
	m->ports = NULL;
	m->n_ports = 0;
	for (struct pair *p = m->pairs; p != NULL; p = p->next)
		pair_close(p, true);
	maybe_done(m);
}
