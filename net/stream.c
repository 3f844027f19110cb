/* Secure streams on libuv TCP handles: dialing, listening, the handshake
 * timeout and write back-pressure around the socket-free core. */
#include "net/stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lib/clock.h"

#define READ_BUF_SIZE	   (64 * 1024)
#define DEFAULT_TIMEOUT_MS 5000
#define ADDR_LEN	   64
#define LISTEN_BACKLOG	   128
/* Without memory for a new connection, try again this much later. */
#define ACCEPT_RETRY_MS 100

/* A stream's life, checked on every move:
 *
 *   CONNECTING --connected--> HANDSHAKE --established--> READY --start--> STARTED
 *   READY, STARTED --stream_close()--> FLUSHING --queue out, or timeout--> CLOSED
 *   HANDSHAKE, STARTED --session failed--> FLUSHING (its final frame says why)
 *   any but READY --timeout, socket error, end of file--> CLOSED
 *
 * An accepted connection starts at CONNECTING too and moves on at once. A
 * READY stream belongs to its owner, who has not started it: a failure then
 * is recorded and acted on by stream_start() or stream_close(). CLOSED means
 * uv_close() was called; memory goes once both handles' close callbacks ran. */
enum st { ST_CONNECTING, ST_HANDSHAKE, ST_READY, ST_STARTED, ST_FLUSHING, ST_CLOSED, ST_COUNT };

/* A message received before the owner started the stream. */
struct pending {
	struct pending *next;
	size_t len;
	unsigned char data[];
};

/* One connection.
 *
 * Dial: resolve nothing (IP:port only) -> connect -> session writes HELLO ->
 * handshake -> dial callback with the stream. Fails on a bad address (at
 * once), connect error, handshake failure or timeout (dial callback with
 * NULL). Accepted: accept -> handshake -> listener's callback; a failure is
 * counted by the listener. Handed out: owner starts it; messages flow until
 * either side closes or a frame fails; the closed callback ends it. */
struct stream {
	uv_tcp_t tcp;
	uv_timer_t timer; /* handshake timeout, then pending delivery, then flush timeout */
	uv_connect_t connect;
	uv_shutdown_t shutdown;
	uv_loop_t *loop;
	enum st state;
	unsigned open_handles; /* until both close callbacks ran */
	unsigned timeout_ms;
	struct stream_session *session;
	const struct stream_identity *id; /* &own_id */
	/* The stream's own copy of the identity it was made with: a dial may
	 * outlive the one that asked (a connect to an unreachable host takes
	 * its time; the RPC client or raft transport waits for its callback,
	 * but the identity's owner, the swarm, may be gone by then: found by
	 * the chaos suite). Wiped when the stream is freed. */
	struct stream_identity own_id;
	struct identity own_key;
	struct cert own_cert;
	char own_pin[FINGERPRINT_LEN + 1];
	enum stream_purpose purpose;
	/* Before it is handed out: a dial's callback, or the listener. */
	stream_dial_cb dial_cb;
	void *dial_arg;
	struct stream_listener *listener;
	struct stream *prev, *next; /* in listener->handshaking */
	bool cancelled;		    /* closed by the listener's close */
	/* Once handed out: the owner. */
	bool handed_out;
	stream_message_cb on_message;
	stream_closed_cb on_closed;
	void *arg;
	struct pending *pending_head, *pending_tail;
	/* Why it closes, with context; code 0 and no error after stream_close(). */
	bool has_error;
	int code;
	struct shoal_err err;
	char remote[ADDR_LEN];
	char read_buf[READ_BUF_SIZE];
};

struct stream_listener {
	uv_tcp_t tcp;
	uv_timer_t retry; /* accepting again after running out of memory */
	unsigned open_handles;
	uv_loop_t *loop;
	const struct stream_identity *id;
	stream_accept_cb cb;
	void *arg;
	struct stream *handshaking;
	unsigned failures;
	struct shoal_err last;
	void (*on_failure)(void *arg, int code, const struct shoal_err *why);
	void *failure_arg;
	unsigned port;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

struct write_req {
	uv_write_t req;
	struct stream *s;
	char data[];
};

static void set_state(struct stream *s, enum st to)
{
	static const bool allowed[ST_COUNT][ST_COUNT] = {
	    [ST_CONNECTING] = {[ST_HANDSHAKE] = true, [ST_CLOSED] = true},
	    [ST_HANDSHAKE] = {[ST_READY] = true, [ST_FLUSHING] = true, [ST_CLOSED] = true},
	    [ST_READY] = {[ST_STARTED] = true, [ST_FLUSHING] = true},
	    [ST_STARTED] = {[ST_FLUSHING] = true, [ST_CLOSED] = true},
	    [ST_FLUSHING] = {[ST_CLOSED] = true},
	};

	PRE(allowed[s->state][to]);
	(void)allowed;
	s->state = to;
}

static unsigned timeout_of(const struct stream_identity *id)
{
	return id->handshake_timeout_ms != 0 ? id->handshake_timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* --- addresses ----------------------------------------------------------- */

/* Parse "IP:port" or "[IPv6]:port". */
static int parse_addr(const char *addr, bool port_zero_ok, struct sockaddr_storage *out,
		      struct shoal_err *err)
{
	const char *colon = strrchr(addr, ':');
	const char *host = addr, *host_end = colon;
	char ip[ADDR_LEN];
	unsigned long port = 0;
	size_t n;
	int rv;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
		goto bad;
	for (const char *p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535 || (port == 0 && !port_zero_ok))
		goto bad;
	if (addr[0] == '[') {
		if (colon == addr || colon[-1] != ']')
			goto bad;
		host = addr + 1;
		host_end = colon - 1;
	}
	n = (size_t)(host_end - host);
	if (n == 0 || n >= sizeof(ip))
		goto bad;
	memcpy(ip, host, n);
	ip[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (addr[0] == '[')
		rv = uv_ip6_addr(ip, (int)port, (struct sockaddr_in6 *)out);
	else
		rv = uv_ip4_addr(ip, (int)port, (struct sockaddr_in *)out);
	if (rv != 0)
		goto bad;
	return 0;
bad:
	return shoal_errf(err, SHOAL_EINVAL,
			  "invalid address \"%.100s\": expected IP:port, or [IPv6]:port (host "
			  "names are not resolved)",
			  addr);
}

static void format_addr(const struct sockaddr_storage *sa, char out[ADDR_LEN])
{
	char ip[ADDR_LEN] = "?";

	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		uv_ip6_name(a, ip, sizeof(ip));
		snprintf(out, ADDR_LEN, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		uv_ip4_name(a, ip, sizeof(ip));
		snprintf(out, ADDR_LEN, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
	}
}

static void remember_peer(struct stream *s)
{
	struct sockaddr_storage sa;
	int len = sizeof(sa);

	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&sa, &len) == 0)
		format_addr(&sa, s->remote);
}

/* --- closing ------------------------------------------------------------- */

static void maybe_listener_closed(struct stream_listener *l)
{
	if (!l->closing || l->open_handles > 0 || l->handshaking != NULL)
		return;
	if (l->close_cb != NULL)
		l->close_cb(l->close_arg);
	free(l);
}

static void listener_unlink(struct stream *s)
{
	struct stream_listener *l = s->listener;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		l->handshaking = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->listener = NULL;
}

/* Both handles are closed: tell whoever waits, then free. */
static void finish(struct stream *s)
{
	struct stream_listener *l = s->listener;
	struct pending *p;

	if (s->handed_out) {
		if (s->on_closed != NULL)
			s->on_closed(s, s->code, s->code != 0 ? &s->err : NULL, s->arg);
	} else if (s->dial_cb != NULL) {
		POST(s->has_error && s->code != 0);
		s->dial_cb(NULL, s->code, &s->err, s->dial_arg);
	}
	while ((p = s->pending_head) != NULL) {
		s->pending_head = p->next;
		free(p);
	}
	stream_session_free(s->session);
	if (l != NULL) {
		listener_unlink(s);
		if (!s->cancelled) {
			l->failures++;
			l->last = s->err;
			if (l->on_failure != NULL && !l->closing)
				l->on_failure(l->failure_arg, s->code, &s->err);
		}
	}
	sodium_memzero(&s->own_key, sizeof(s->own_key));
	free(s);
	if (l != NULL)
		maybe_listener_closed(l);
}

static void handle_closed(uv_handle_t *h)
{
	struct stream *s = h->data;

	PRE(s->open_handles > 0);
	if (--s->open_handles == 0)
		finish(s);
}

static void close_now(struct stream *s)
{
	if (s->state == ST_CLOSED)
		return;
	set_state(s, ST_CLOSED);
	uv_close((uv_handle_t *)&s->tcp, handle_closed);
	uv_close((uv_handle_t *)&s->timer, handle_closed);
}

static void timer_cb(uv_timer_t *t);

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct stream *s = req->data;

	(void)status;
	if (s->state == ST_FLUSHING)
		close_now(s);
}

/* Let queued bytes out (for at most the timeout), then close. */
static void close_flush(struct stream *s)
{
	set_state(s, ST_FLUSHING);
	uv_read_stop((uv_stream_t *)&s->tcp);
	uv_timer_stop(&s->timer);
	uv_timer_start(&s->timer, timer_cb, s->timeout_ms, 0);
	s->shutdown.data = s;
	if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, shutdown_cb) != 0)
		close_now(s);
}

/* Record why @s ends (the first reason wins) and close it, after its queued
 * bytes if @flush. A stream its owner has not started waits for the owner. */
static void stream_fail(struct stream *s, int code, const struct shoal_err *why, bool flush)
{
	if (s->state == ST_FLUSHING || s->state == ST_CLOSED)
		return;
	if (!s->has_error) {
		s->has_error = true;
		s->code = code;
		s->err = *why;
		if (s->handed_out)
			shoal_err_wrap(&s->err, "stream with %s", s->remote);
		else if (s->dial_cb != NULL)
			shoal_err_wrap(&s->err, "dial %s", s->remote);
		else
			shoal_err_wrap(&s->err, "handshake with %s", s->remote);
	}
	if (s->state == ST_READY)
		return;
	if (flush)
		close_flush(s);
	else
		close_now(s);
}

static void fail_fmt(struct stream *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_fmt(struct stream *s, int code, const char *fmt, ...)
{
	struct shoal_err why;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why.msg, sizeof(why.msg), fmt, ap);
	va_end(ap);
	stream_fail(s, code, &why, false);
}

/* --- the session's transport ------------------------------------------------ */

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct stream *s = w->s;

	free(w);
	if (status == 0 || s->state == ST_CLOSED)
		return;
	if (s->state == ST_FLUSHING)
		close_now(s);
	else
		fail_fmt(s, SHOAL_EIO, "write: %s", uv_strerror(status));
}

static int transport_write(void *arg, const void *data, size_t len)
{
	struct stream *s = arg;
	uv_stream_t *tcp = (uv_stream_t *)&s->tcp;
	struct write_req *w;
	uv_buf_t buf;
	int rv;

	if (s->state == ST_FLUSHING || s->state == ST_CLOSED)
		return SHOAL_ESHUTDOWN;
	if (len > STREAM_MAX_QUEUED - uv_stream_get_write_queue_size(tcp)) {
		fail_fmt(s, SHOAL_ETOOBIG,
			 "the peer does not read: more than %zu MiB are queued for it",
			 STREAM_MAX_QUEUED >> 20);
		return SHOAL_ETOOBIG;
	}
	w = malloc(sizeof(*w) + len);
	if (w == NULL) {
		fail_fmt(s, SHOAL_ENOMEM, "out of memory");
		return SHOAL_ENOMEM;
	}
	w->s = s;
	memcpy(w->data, data, len);
	buf = uv_buf_init(w->data, (unsigned)len);
	rv = uv_write(&w->req, tcp, &buf, 1, write_cb);
	if (rv != 0) {
		free(w);
		fail_fmt(s, SHOAL_EIO, "write: %s", uv_strerror(rv));
		return SHOAL_EIO;
	}
	return 0;
}

static void session_established(void *arg)
{
	struct stream *s = arg;
	struct stream_listener *l = s->listener;
	stream_dial_cb cb = s->dial_cb;

	if (s->state != ST_HANDSHAKE)
		return;
	set_state(s, ST_READY);
	uv_timer_stop(&s->timer);
	/* Nothing more is read until the owner starts the stream; what this
	 * read still holds waits in the pending list. */
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->handed_out = true;
	if (l != NULL) {
		listener_unlink(s);
		l->cb(l, s, l->arg);
	} else {
		s->dial_cb = NULL;
		cb(s, 0, NULL, s->dial_arg);
	}
}

static void session_message(void *arg, const void *data, size_t len)
{
	struct stream *s = arg;
	struct pending *p;

	if (s->state == ST_STARTED && s->pending_head == NULL) {
		s->on_message(s, data, len, s->arg);
		return;
	}
	if (s->state != ST_READY && s->state != ST_STARTED)
		return;
	p = malloc(sizeof(*p) + len);
	if (p == NULL) {
		fail_fmt(s, SHOAL_ENOMEM, "out of memory");
		return;
	}
	p->next = NULL;
	p->len = len;
	memcpy(p->data, data, len);
	if (s->pending_tail != NULL)
		s->pending_tail->next = p;
	else
		s->pending_head = p;
	s->pending_tail = p;
}

static void session_failed(void *arg, int code, const struct shoal_err *err)
{
	struct stream *s = arg;

	/* Flush: the session's final frame tells the peer why. */
	stream_fail(s, code, err, true);
}

/* Deliver what arrived before stream_start(), in order. */
static void deliver_pending(struct stream *s)
{
	struct pending *p;

	while (s->state == ST_STARTED && (p = s->pending_head) != NULL) {
		s->pending_head = p->next;
		if (s->pending_head == NULL)
			s->pending_tail = NULL;
		s->on_message(s, p->data, p->len, s->arg);
		free(p);
	}
}

static void timer_cb(uv_timer_t *t)
{
	struct stream *s = t->data;

	switch (s->state) {
	case ST_CONNECTING:
	case ST_HANDSHAKE:
		fail_fmt(s, SHOAL_ETIMEDOUT, "the handshake did not finish within %u ms",
			 s->timeout_ms);
		break;
	case ST_STARTED:
		deliver_pending(s);
		break;
	case ST_FLUSHING:
		close_now(s);
		break;
	default:
		break;
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct stream *s = h->data;

	(void)suggested;
	*buf = uv_buf_init(s->read_buf, sizeof(s->read_buf));
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct stream *s = h->data;

	if (s->state != ST_HANDSHAKE && s->state != ST_STARTED)
		return;
	if (nread > 0)
		stream_session_feed(s->session, buf->base, (size_t)nread);
	else if (nread == UV_EOF)
		fail_fmt(s, SHOAL_ESHUTDOWN, "the peer closed the connection%s",
			 s->state == ST_HANDSHAKE ? " during the handshake" : "");
	else if (nread < 0)
		fail_fmt(s, SHOAL_EIO, "read: %s", uv_strerror((int)nread));
}

/* The socket is connected (dialed or accepted): run the handshake. */
static void begin_handshake(struct stream *s, bool dialer)
{
	struct stream_session_ops ops = {.arg = s,
					 .write = transport_write,
					 .established = session_established,
					 .message = session_message,
					 .failed = session_failed};
	struct shoal_err err;
	int rv;

	set_state(s, ST_HANDSHAKE);
	uv_tcp_nodelay(&s->tcp, 1);
	remember_peer(s);
	rv = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
	if (rv != 0) {
		fail_fmt(s, SHOAL_EIO, "read: %s", uv_strerror(rv));
		return;
	}
	rv = stream_session_new(&s->session, dialer, s->purpose, s->id, clock_now_ns(), &ops, &err);
	if (rv != 0)
		stream_fail(s, rv, &err, false);
}

/* --- dialing --------------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status)
{
	struct stream *s = req->data;

	if (s->state != ST_CONNECTING)
		return;
	if (status != 0) {
		fail_fmt(s, SHOAL_EIO, "connect: %s", uv_strerror(status));
		return;
	}
	begin_handshake(s, true);
}

/* A stream with both handles initialised and its timer running. */
static struct stream *stream_new(uv_loop_t *loop, const struct stream_identity *id)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (uv_tcp_init(loop, &s->tcp) != 0) {
		free(s);
		return NULL;
	}
	uv_timer_init(loop, &s->timer);
	s->tcp.data = s;
	s->timer.data = s;
	s->open_handles = 2;
	s->loop = loop;
	s->own_id = *id;
	if (id->key != NULL) {
		s->own_key = *id->key;
		s->own_id.key = &s->own_key;
	}
	if (id->cert != NULL) {
		s->own_cert = *id->cert;
		s->own_id.cert = &s->own_cert;
	}
	if (id->pinned_root_fingerprint != NULL) {
		snprintf(s->own_pin, sizeof(s->own_pin), "%s", id->pinned_root_fingerprint);
		s->own_id.pinned_root_fingerprint = s->own_pin;
	}
	s->id = &s->own_id;
	s->state = ST_CONNECTING;
	s->timeout_ms = timeout_of(id);
	uv_timer_start(&s->timer, timer_cb, s->timeout_ms, 0);
	return s;
}

int stream_dial(uv_loop_t *loop, const char *addr, enum stream_purpose purpose,
		const struct stream_identity *id, stream_dial_cb cb, void *arg,
		struct shoal_err *err)
{
	struct sockaddr_storage sa;
	struct stream *s;
	int rv;

	rv = stream_identity_check(id, true, purpose, err);
	if (rv == 0)
		rv = parse_addr(addr, false, &sa, err);
	if (rv != 0)
		return rv;
	s = stream_new(loop, id);
	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "dial %s: out of memory", addr);
	s->purpose = purpose;
	format_addr(&sa, s->remote);
	s->connect.data = s;
	rv = uv_tcp_connect(&s->connect, &s->tcp, (const struct sockaddr *)&sa, connect_cb);
	if (rv != 0) {
		/* The callback never fires; the memory goes in the close callbacks. */
		close_now(s);
		return shoal_errf(err, SHOAL_EIO, "dial %s: %s", addr, uv_strerror(rv));
	}
	s->dial_cb = cb;
	s->dial_arg = arg;
	return 0;
}

/* --- the owner's side ------------------------------------------------------- */

void stream_start(struct stream *s, stream_message_cb on_message, stream_closed_cb on_closed,
		  void *arg)
{
	int rv;

	PRE(s->state == ST_READY && s->handed_out);
	s->on_message = on_message;
	s->on_closed = on_closed;
	s->arg = arg;
	set_state(s, ST_STARTED);
	if (s->has_error) {
		close_now(s);
		return;
	}
	rv = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
	if (rv != 0) {
		fail_fmt(s, SHOAL_EIO, "read: %s", uv_strerror(rv));
		return;
	}
	if (s->pending_head != NULL)
		uv_timer_start(&s->timer, timer_cb, 0, 0);
}

int stream_send(struct stream *s, const void *data, size_t len, struct shoal_err *err)
{
	int rv;

	if ((s->state != ST_READY && s->state != ST_STARTED) || s->has_error)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "stream with %s: the stream is closing",
				  s->remote);
	rv = stream_session_send(s->session, data, len, err);
	if (rv != 0 && s->has_error && err != NULL)
		*err = s->err;
	return rv;
}

const struct stream_peer *stream_peer(const struct stream *s)
{
	return stream_session_peer(s->session);
}

const char *stream_remote_addr(const struct stream *s)
{
	return s->remote;
}

uv_loop_t *stream_loop(const struct stream *s)
{
	return s->loop;
}

void stream_close(struct stream *s)
{
	if (s->state != ST_READY && s->state != ST_STARTED)
		return;
	/* A stream that failed before it was started has nothing to say. */
	if (!s->has_error)
		stream_session_end(s->session, NULL);
	close_flush(s);
}

/* --- listening ------------------------------------------------------------ */

static void listener_handle_closed(uv_handle_t *h)
{
	struct stream_listener *l = h->data;

	PRE(l->open_handles > 0);
	l->open_handles--;
	maybe_listener_closed(l);
}

static void listener_close_handles(struct stream_listener *l)
{
	l->closing = true;
	uv_close((uv_handle_t *)&l->tcp, listener_handle_closed);
	uv_close((uv_handle_t *)&l->retry, listener_handle_closed);
}

/* Take the connection libuv holds; false if there is no memory for it yet. */
static bool accept_one(struct stream_listener *l)
{
	struct stream *s = stream_new(l->loop, l->id);
	int rv;

	if (s == NULL)
		return false;
	s->listener = l;
	s->next = l->handshaking;
	if (l->handshaking != NULL)
		l->handshaking->prev = s;
	l->handshaking = s;
	snprintf(s->remote, sizeof(s->remote), "an unknown peer");
	rv = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&s->tcp);
	if (rv != 0)
		fail_fmt(s, SHOAL_EIO, "accept: %s", uv_strerror(rv));
	else
		begin_handshake(s, false);
	return true;
}

static void retry_cb(uv_timer_t *t)
{
	struct stream_listener *l = t->data;

	if (!l->closing && !accept_one(l))
		uv_timer_start(&l->retry, retry_cb, ACCEPT_RETRY_MS, 0);
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct stream_listener *l = server->data;

	if (l->closing || status != 0)
		return;
	/* Without memory the connection waits, and libuv accepts no other,
	 * until a retry finds memory for it. */
	if (!accept_one(l))
		uv_timer_start(&l->retry, retry_cb, ACCEPT_RETRY_MS, 0);
}

int stream_listen(struct stream_listener **out, uv_loop_t *loop, const char *bind,
		  const struct stream_identity *id, stream_accept_cb cb, void *arg,
		  struct shoal_err *err)
{
	struct sockaddr_storage sa;
	struct stream_listener *l;
	int len = sizeof(sa);
	int rv;

	rv = stream_identity_check(id, false, STREAM_RPC, err);
	if (rv == 0)
		rv = parse_addr(bind, true, &sa, err);
	if (rv != 0)
		return rv;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "listen on %s: out of memory", bind);
	if (uv_tcp_init(loop, &l->tcp) != 0) {
		free(l);
		return shoal_errf(err, SHOAL_EIO, "listen on %s: cannot create a socket", bind);
	}
	uv_timer_init(loop, &l->retry);
	l->open_handles = 2;
	l->tcp.data = l;
	l->retry.data = l;
	l->loop = loop;
	l->id = id;
	l->cb = cb;
	l->arg = arg;
	rv = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, connection_cb);
	if (rv == 0)
		rv = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&sa, &len);
	if (rv != 0) {
		listener_close_handles(l);
		return shoal_errf(err, SHOAL_EIO, "listen on %s: %s", bind, uv_strerror(rv));
	}
	l->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
						 : ((struct sockaddr_in *)&sa)->sin_port);
	*out = l;
	return 0;
}

unsigned stream_listener_port(const struct stream_listener *l)
{
	return l->port;
}

unsigned stream_listener_failures(const struct stream_listener *l, struct shoal_err *last)
{
	if (last != NULL && l->failures > 0)
		*last = l->last;
	return l->failures;
}

void stream_listener_on_failure(struct stream_listener *l,
				void (*cb)(void *arg, int code, const struct shoal_err *why),
				void *arg)
{
	l->on_failure = cb;
	l->failure_arg = arg;
}

void stream_listener_close(struct stream_listener *l, void (*cb)(void *arg), void *arg)
{
	struct shoal_err why;

	PRE(!l->closing);
	l->close_cb = cb;
	l->close_arg = arg;
	listener_close_handles(l);
	shoal_errf(&why, SHOAL_ESHUTDOWN, "the listener is closing");
	for (struct stream *s = l->handshaking; s != NULL; s = s->next) {
		/* One already failing stays counted, but need not finish its flush. */
		if (s->state == ST_FLUSHING) {
			close_now(s);
			continue;
		}
		s->cancelled = s->state != ST_CLOSED;
		stream_fail(s, SHOAL_ESHUTDOWN, &why, false);
	}
}
