/* The gossip core on a libuv UDP socket, timed by one uv_timer. */
#include "net/gossip.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Datagrams queued in the kernel's path beyond this are dropped: gossip
 * tolerates loss, an unbounded queue is worse. */
#define MAX_QUEUED_BYTES ((size_t)4 * 1024 * 1024)

/* One socket and one timer around a core.
 *
 * Happy path: received datagrams go to the core, whose sends are copied into
 * uv_udp_send requests (freed in their callback); after every receive, timer
 * and gossip_kick() the timer is re-armed with the core's next deadline.
 * gossip_close() closes both handles; the last close callback frees the core
 * and calls the user. Failures: a send that cannot be queued is dropped
 * (gossip tolerates loss); a receive error is ignored. */
struct gossip {
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_timer_t timer;
	struct gossip_core *core;
	bool closing;
	unsigned open_handles;
	void (*close_cb)(void *arg);
	void *close_arg;
	/* One byte more than a packet may have, so the core sees (and counts)
	 * an oversized datagram rather than a truncated one. */
	char recv_buf[GOSSIP_MAX_PACKET + 1];
};

struct send_req {
	uv_udp_send_t req;
	char data[];
};

/* "IP:port" or "[v6]:port" into @ss. */
static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	char host[GOSSIP_ADDR_LEN];
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hlen;
	char *end;
	unsigned long port;

	if (colon == NULL || colon[1] == '\0')
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port > 65535 || colon[1] < '0' || colon[1] > '9')
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		h = s + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (h != s)
		return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

/* @sa as "IP:port" or "[v6]:port". */
static int format_addr(const struct sockaddr *sa, char out[GOSSIP_ADDR_LEN])
{
	char host[64];
	int n;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		if (uv_ip4_name(in, host, sizeof(host)) != 0)
			return -1;
		n = snprintf(out, GOSSIP_ADDR_LEN, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		if (uv_ip6_name(in6, host, sizeof(host)) != 0)
			return -1;
		n = snprintf(out, GOSSIP_ADDR_LEN, "[%s]:%u", host,
			     (unsigned)ntohs(in6->sin6_port));
	} else {
		return -1;
	}
	return n > 0 && n < GOSSIP_ADDR_LEN ? 0 : -1;
}

static void timer_cb(uv_timer_t *t);

/* Sleep until the core's next deadline (running what is due now). */
static void arm(struct gossip *g)
{
	uint64_t now = uv_now(g->loop);
	uint64_t next = gossip_core_tick(g->core, now);

	if (g->closing)
		return; /* a callback of the tick closed us */
	uv_timer_start(&g->timer, timer_cb, next > now ? next - now : 0, 0);
}

static void timer_cb(uv_timer_t *t)
{
	struct gossip *g = t->data;

	if (g->closing)
		return;
	arm(g);
}

static void send_cb(uv_udp_send_t *req, int status)
{
	(void)status; /* a lost datagram is like any other loss */
	free(req);
}

static void io_send(void *arg, const char *addr, const void *data, size_t len)
{
	struct gossip *g = arg;
	struct sockaddr_storage ss;
	struct send_req *r;
	uv_buf_t buf;

	if (g->closing || parse_addr(addr, &ss) != 0)
		return;
	if (uv_udp_get_send_queue_size(&g->udp) > MAX_QUEUED_BYTES)
		return;
	r = malloc(sizeof(*r) + len);
	if (r == NULL)
		return;
	memcpy(r->data, data, len);
	buf = uv_buf_init(r->data, (unsigned)len);
	if (uv_udp_send(&r->req, &g->udp, &buf, 1, (const struct sockaddr *)&ss, send_cb) != 0)
		free(r);
}

static uint32_t io_random(void *arg, uint32_t n)
{
	(void)arg;
	return randombytes_uniform(n);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct gossip *g = h->data;

	(void)suggested;
	*buf = uv_buf_init(g->recv_buf, sizeof(g->recv_buf));
}

static void recv_cb(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *sa,
		    unsigned flags)
{
	struct gossip *g = udp->data;
	char from[GOSSIP_ADDR_LEN];
	size_t len;

	if (g->closing || nread <= 0 || sa == NULL || format_addr(sa, from) != 0)
		return;
	len = (size_t)nread;
	if (flags & UV_UDP_PARTIAL)
		len = sizeof(g->recv_buf); /* more than a packet may be: rejected */
	gossip_core_receive(g->core, from, buf->base, len, uv_now(g->loop));
	if (!g->closing)
		arm(g);
}

static void handle_close_cb(uv_handle_t *h)
{
	struct gossip *g = h->data;

	if (--g->open_handles > 0)
		return;
	gossip_core_free(g->core);
	if (g->close_cb != NULL)
		g->close_cb(g->close_arg);
	free(g);
}

static void close_handles(struct gossip *g)
{
	g->closing = true;
	uv_close((uv_handle_t *)&g->udp, handle_close_cb);
	uv_close((uv_handle_t *)&g->timer, handle_close_cb);
}

int gossip_start(struct gossip **out, uv_loop_t *loop, const char *bind,
		 const struct gossip_config *cfg, const struct gossip_keyring *keys,
		 struct shoal_err *err)
{
	struct gossip_core_io io = {.send = io_send, .random = io_random};
	struct gossip_config c;
	char bound[GOSSIP_ADDR_LEN];
	struct sockaddr_storage ss;
	int namelen = sizeof(ss);
	struct gossip *g;
	int rv;

	if (cfg == NULL || keys == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "gossip needs a configuration and a key ring");
	c = *cfg;
	if (bind == NULL || parse_addr(bind, &ss) != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "gossip bind address \"%s\" must be IP:port or [IPv6]:port",
				  bind != NULL ? bind : "");
	if (sodium_init() < 0)
		return shoal_errf(err, SHOAL_EIO, "libsodium failed to initialise");
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	g->loop = loop;
	uv_udp_init(loop, &g->udp);
	uv_timer_init(loop, &g->timer);
	g->udp.data = g;
	g->timer.data = g;
	g->open_handles = 2;

	rv = uv_udp_bind(&g->udp, (const struct sockaddr *)&ss, 0);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "bind gossip socket %s: %s", bind, uv_strerror(rv));
		goto err_close;
	}
	rv = uv_udp_getsockname(&g->udp, (struct sockaddr *)&ss, &namelen);
	if (rv != 0 || format_addr((const struct sockaddr *)&ss, bound) != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "read the address of gossip socket %s", bind);
		goto err_close;
	}
	if (c.advertise == NULL) {
		if (strncmp(bound, "0.0.0.0:", 8) == 0 || strncmp(bound, "[::]:", 5) == 0) {
			rv = shoal_errf(err, SHOAL_EINVAL,
					"gossip is bound to the wildcard address %s: give an "
					"address to advertise",
					bound);
			goto err_close;
		}
		c.advertise = bound;
	}
	io.arg = g;
	rv = gossip_core_new(&g->core, &c, keys, &io, uv_now(loop), err);
	if (rv != 0)
		goto err_close;
	rv = uv_udp_recv_start(&g->udp, alloc_cb, recv_cb);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "receive on gossip socket %s: %s", bind,
				uv_strerror(rv));
		goto err_close;
	}
	arm(g);
	*out = g;
	return 0;

err_close:
	/* The memory goes in the close callbacks, once the loop runs. */
	close_handles(g);
	return rv;
}

struct gossip_core *gossip_core(struct gossip *g)
{
	return g->core;
}

void gossip_kick(struct gossip *g)
{
	/* Tick from the loop, not from here: the caller may be inside one of
	 * our callbacks. */
	if (!g->closing)
		uv_timer_start(&g->timer, timer_cb, 0, 0);
}

void gossip_close(struct gossip *g, void (*cb)(void *arg), void *arg)
{
	PRE(!g->closing);
	g->close_cb = cb;
	g->close_arg = arg;
	uv_udp_recv_stop(&g->udp);
	uv_timer_stop(&g->timer);
	close_handles(g);
}
