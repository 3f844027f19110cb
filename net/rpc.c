/* Request/response RPC over secure streams: the codec, serving and calling. */
#include "net/rpc.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "net/wire.h"

#define MAX_TIMEOUT_MS 600000u
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define ADDR_LEN       64

/* --- codec ---------------------------------------------------------------- */

static bool method_ok(const char *m, size_t n)
{
	if (n == 0 || n > RPC_MAX_METHOD)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 0x20 || m[i] > 0x7e)
			return false;
	return true;
}

static bool status_ok(int64_t status)
{
	return status == 0 || (status >= SHOAL_ETIMEDOUT && status <= SHOAL_ENOMEM);
}

static int bad(struct shoal_err *err, const char *what)
{
	return shoal_errf(err, SHOAL_EPROTO, "malformed RPC message: %s", what);
}

int rpc_decode(const void *data, size_t len, struct rpc_message *out, struct shoal_err *err)
{
	struct wire_reader r;
	const unsigned char *p;
	uint64_t n, kind, v;
	int64_t status;
	size_t plen;

	memset(out, 0, sizeof(*out));
	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &n) || !wire_rd_uint(&r, &kind))
		return bad(err, "not an array starting with a message type");
	if (kind == RPC_REQUEST && n == 6) {
		out->kind = RPC_REQUEST;
		if (!wire_rd_uint(&r, &out->version))
			return bad(err, "bad version");
	} else if ((kind == RPC_RESPONSE && n == 5) || (kind == RPC_CANCEL && n == 2)) {
		out->kind = (enum rpc_kind)kind;
	} else {
		return bad(err, "unknown message type or wrong number of elements");
	}
	if (!wire_rd_uint(&r, &out->id) || out->id == 0)
		return bad(err, "bad id");
	switch (out->kind) {
	case RPC_REQUEST:
		if (!wire_rd_str(&r, RPC_MAX_METHOD, &p, &plen) ||
		    !method_ok((const char *)p, plen))
			return bad(err, "bad method name");
		memcpy(out->method, p, plen);
		out->method[plen] = '\0';
		if (!wire_rd_uint(&r, &v) || v == 0 || v > MAX_TIMEOUT_MS)
			return bad(err, "bad timeout");
		out->timeout_ms = (uint32_t)v;
		break;
	case RPC_RESPONSE:
		if (!wire_rd_int(&r, &status) || !status_ok(status))
			return bad(err, "bad status");
		out->status = (int)status;
		if (!wire_rd_str(&r, SHOAL_ERR_LEN - 1, &p, &plen) ||
		    memchr(p, '\0', plen) != NULL || (status == 0 && plen != 0))
			return bad(err, "bad message");
		memcpy(out->message, p, plen);
		out->message[plen] = '\0';
		break;
	case RPC_CANCEL:
		break;
	}
	if (out->kind != RPC_CANCEL) {
		if (!wire_rd_bin(&r, RPC_MAX_BODY, &p, &plen))
			return bad(err, "bad body");
		out->body = p;
		out->body_len = plen;
	}
	if (!wire_rd_done(&r))
		return bad(err, "trailing bytes");
	return 0;
}

static int buf_write(void *arg, const char *p, size_t n)
{
	return buf_append(arg, p, n) == 0 ? 0 : -1;
}

int rpc_encode(const struct rpc_message *m, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;
	size_t mlen = 0;
	int rv = 0;

	if (m->id == 0)
		return shoal_errf(err, SHOAL_EINVAL, "RPC message id 0");
	if (m->kind != RPC_CANCEL && m->body_len > RPC_MAX_BODY)
		return shoal_errf(err, SHOAL_EINVAL, "RPC body of %zu bytes is over the %u limit",
				  m->body_len, RPC_MAX_BODY);
	msgpack_packer_init(&pk, out, buf_write);
	switch (m->kind) {
	case RPC_REQUEST:
		mlen = strnlen(m->method, sizeof(m->method));
		if (!method_ok(m->method, mlen) || m->timeout_ms == 0 ||
		    m->timeout_ms > MAX_TIMEOUT_MS)
			return shoal_errf(err, SHOAL_EINVAL, "bad RPC method name or timeout");
		rv = msgpack_pack_array(&pk, 6) | msgpack_pack_uint8(&pk, RPC_REQUEST) |
		     msgpack_pack_uint64(&pk, m->version) | msgpack_pack_uint64(&pk, m->id) |
		     msgpack_pack_str_with_body(&pk, m->method, mlen) |
		     msgpack_pack_uint32(&pk, m->timeout_ms);
		break;
	case RPC_RESPONSE:
		mlen = strnlen(m->message, sizeof(m->message));
		if (!status_ok(m->status) || mlen >= sizeof(m->message) ||
		    (m->status == 0 && mlen != 0))
			return shoal_errf(err, SHOAL_EINVAL, "bad RPC status or message");
		rv = msgpack_pack_array(&pk, 5) | msgpack_pack_uint8(&pk, RPC_RESPONSE) |
		     msgpack_pack_uint64(&pk, m->id) | msgpack_pack_int(&pk, m->status) |
		     msgpack_pack_str_with_body(&pk, m->message, mlen);
		break;
	case RPC_CANCEL:
		rv = msgpack_pack_array(&pk, 2) | msgpack_pack_uint8(&pk, RPC_CANCEL) |
		     msgpack_pack_uint64(&pk, m->id);
		break;
	default:
		return shoal_errf(err, SHOAL_EINVAL, "unknown RPC message kind %d", (int)m->kind);
	}
	if (rv == 0 && m->kind != RPC_CANCEL)
		rv = msgpack_pack_bin_with_body(&pk, m->body, m->body_len);
	if (rv != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* Encode @m and send it as one stream message. */
static int send_msg(struct stream *s, const struct rpc_message *m, struct shoal_err *err)
{
	struct buf b;
	int rv;

	buf_init(&b);
	rv = rpc_encode(m, &b, err);
	if (rv == 0)
		rv = stream_send(s, b.data, b.len, err);
	buf_free(&b);
	return rv;
}

/* --- serving -------------------------------------------------------------- */

/* One served connection. Referenced by its stream (until the closed
 * callback), by each call not yet answered and, for a joiner, by its idle
 * timer (until that handle's close callback); freed when all are gone. A
 * joiner's connection is closed by the timer once it has had no call in
 * flight for idle_ms. */
struct conn {
	struct stream *s;	    /* NULL once closed */
	struct rpc_server *srv;	    /* NULL for rpc_serve() */
	struct conn *sprev, *snext; /* in srv's list while the stream is open */
	const struct rpc_method *methods;
	void *arg;
	unsigned refs;
	unsigned inflight;
	bool failed; /* bad bytes: closing, nothing more is read */
	struct rpc_call *calls;
	struct stream_peer peer;
	char remote[ADDR_LEN];
	bool has_idle;	  /* a joiner's: the idle timer below runs */
	unsigned idle_ms; /* how long it waits with no call in flight */
	uv_timer_t idle;
};

/* One request being served: dispatched -> the handler's rpc_reply(). It is
 * abandoned by the caller's CANCEL, its deadline, or the connection closing;
 * the reply is then dropped. */
struct rpc_call {
	struct conn *conn;
	struct rpc_call *prev, *next;
	uint64_t id;
	uint64_t deadline_ms; /* clock_mono_ms() */
	bool cancelled;
};

/* The connections served for one owner, so it can close them all. Freed
 * once closed by its owner and every connection's stream closed. */
struct rpc_server {
	void *arg;
	unsigned joiner_idle_ms;
	struct conn *conns;
	unsigned refs; /* the owner's, until rpc_server_close(), plus one per conn */
	bool closing;
};

static void server_unref(struct rpc_server *srv)
{
	if (--srv->refs == 0)
		free(srv);
}

static void conn_unref(struct conn *c)
{
	PRE(c->refs > 0);
	if (--c->refs == 0)
		free(c);
}

const struct stream_peer *rpc_call_peer(const struct rpc_call *call)
{
	return &call->conn->peer;
}

const char *rpc_call_remote(const struct rpc_call *call)
{
	return call->conn->remote;
}

bool rpc_call_abandoned(const struct rpc_call *call)
{
	/* The deadline is checked when asked: nothing needs waking then. */
	return call->cancelled || call->conn->s == NULL || call->conn->failed ||
	       clock_mono_ms() >= call->deadline_ms;
}

static void respond(struct conn *c, uint64_t id, int status, const char *message, const void *body,
		    size_t len)
{
	struct rpc_message m = {.kind = RPC_RESPONSE, .id = id, .status = status};

	if (c->s == NULL || c->failed)
		return;
	if (status != 0)
		snprintf(m.message, sizeof(m.message), "%s", message);
	m.body = body;
	m.body_len = len;
	/* A failed send closes the stream, which tells us. */
	(void)send_msg(c->s, &m, NULL);
}

/* A joiner made no call for idle_ms: close its connection. */
static void idle_cb(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->s != NULL && c->inflight == 0)
		stream_close(c->s);
}

static void idle_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

void rpc_reply(struct rpc_call *call, int status, const struct shoal_err *err, const void *body,
	       size_t len)
{
	struct conn *c = call->conn;
	char msg[SHOAL_ERR_LEN];

	if (!rpc_call_abandoned(call)) {
		if (!status_ok(status)) {
			PRE(status_ok(status));
			status = SHOAL_EINVAL;
			snprintf(msg, sizeof(msg), "the handler answered with an invalid status");
		} else if (status == 0 && len > RPC_MAX_BODY) {
			status = SHOAL_ETOOBIG;
			snprintf(msg, sizeof(msg), "the response of %zu bytes is over the limit",
				 len);
		} else if (status != 0) {
			snprintf(msg, sizeof(msg), "%s",
				 err != NULL && err->msg[0] != '\0' ? err->msg
								    : shoal_strerror(status));
		}
		if (status != 0)
			respond(c, call->id, status, msg, NULL, 0);
		else
			respond(c, call->id, 0, "", body, len);
	}
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	c->inflight--;
	if (c->inflight == 0 && c->has_idle && c->s != NULL)
		uv_timer_start(&c->idle, idle_cb, c->idle_ms, 0);
	free(call);
	conn_unref(c);
}

static void serve_request(struct conn *c, const struct rpc_message *m)
{
	const struct rpc_method *method = NULL;
	struct rpc_call *call;
	char msg[SHOAL_ERR_LEN];

	if (m->version != RPC_VERSION) {
		snprintf(msg, sizeof(msg), "unsupported RPC version %llu",
			 (unsigned long long)m->version);
		respond(c, m->id, SHOAL_EPROTO, msg, NULL, 0);
		return;
	}
	for (const struct rpc_method *it = c->methods; it->name != NULL; it++)
		if (strcmp(it->name, m->method) == 0) {
			method = it;
			break;
		}
	if (method == NULL) {
		snprintf(msg, sizeof(msg), "unknown method %s", m->method);
		respond(c, m->id, SHOAL_ENOTFOUND, msg, NULL, 0);
		return;
	}
	if (c->inflight >= RPC_MAX_INFLIGHT) {
		snprintf(msg, sizeof(msg), "too many requests in flight (%u)", RPC_MAX_INFLIGHT);
		respond(c, m->id, SHOAL_EBUSY, msg, NULL, 0);
		return;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		respond(c, m->id, SHOAL_ENOMEM, "out of memory", NULL, 0);
		return;
	}
	call->conn = c;
	call->id = m->id;
	call->deadline_ms = clock_mono_ms() + m->timeout_ms;
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	c->inflight++;
	c->refs++;
	if (c->has_idle)
		uv_timer_stop(&c->idle);
	method->fn(c->arg, call, m->body, m->body_len);
}

static void serve_message(struct stream *s, const void *data, size_t len, void *arg)
{
	struct conn *c = arg;
	struct rpc_message m;

	(void)s;
	if (c->failed || (c->srv != NULL && c->srv->closing))
		return;
	if (rpc_decode(data, len, &m, NULL) != 0 || m.kind == RPC_RESPONSE) {
		/* Nothing was asked on this connection: any response is bad. */
		c->failed = true;
		stream_close(c->s);
		return;
	}
	if (m.kind == RPC_CANCEL) {
		for (struct rpc_call *call = c->calls; call != NULL; call = call->next)
			if (call->id == m.id)
				call->cancelled = true;
		return;
	}
	serve_request(c, &m);
}

static void serve_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	struct conn *c = arg;

	(void)s;
	(void)code;
	(void)err;
	c->s = NULL; /* every call in flight is now abandoned */
	if (c->has_idle)
		uv_close((uv_handle_t *)&c->idle, idle_closed);
	if (c->srv != NULL) {
		struct rpc_server *srv = c->srv;
		if (c->sprev != NULL)
			c->sprev->snext = c->snext;
		else
			srv->conns = c->snext;
		if (c->snext != NULL)
			c->snext->sprev = c->sprev;
		c->srv = NULL;
		server_unref(srv);
	}
	conn_unref(c);
}

static int serve(struct rpc_server *srv, struct stream *s, const struct rpc_method *methods,
		 void *arg, unsigned idle_ms, struct shoal_err *err)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		stream_close(s);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	c->s = s;
	c->methods = methods;
	c->arg = arg;
	c->refs = 1;
	c->peer = *stream_peer(s);
	snprintf(c->remote, sizeof(c->remote), "%s", stream_remote_addr(s));
	if (!c->peer.authenticated) {
		uv_timer_init(stream_loop(s), &c->idle);
		c->idle.data = c;
		c->has_idle = true;
		c->idle_ms = idle_ms;
		c->refs++;
		uv_timer_start(&c->idle, idle_cb, idle_ms, 0);
	}
	if (srv != NULL) {
		c->srv = srv;
		srv->refs++;
		c->snext = srv->conns;
		if (srv->conns != NULL)
			srv->conns->sprev = c;
		srv->conns = c;
	}
	stream_start(s, serve_message, serve_closed, c);
	return 0;
}

int rpc_serve(struct stream *s, const struct rpc_method *methods, void *arg, struct shoal_err *err)
{
	return serve(NULL, s, methods, arg, RPC_JOINER_IDLE_MS, err);
}

int rpc_server_new(struct rpc_server **out, void *arg, struct shoal_err *err)
{
	struct rpc_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	srv->arg = arg;
	srv->joiner_idle_ms = RPC_JOINER_IDLE_MS;
	srv->refs = 1;
	*out = srv;
	return 0;
}

int rpc_server_serve(struct rpc_server *srv, struct stream *s, const struct rpc_method *methods,
		     struct shoal_err *err)
{
	if (srv->closing) {
		stream_close(s);
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the RPC server is closing");
	}
	return serve(srv, s, methods, srv->arg, srv->joiner_idle_ms, err);
}

int rpc_server_set_joiner_idle(struct rpc_server *srv, unsigned ms, struct shoal_err *err)
{
	if (ms == 0 || ms > MAX_TIMEOUT_MS)
		return shoal_errf(err, SHOAL_EINVAL, "invalid joiner idle time %u ms: 1 to %u", ms,
				  MAX_TIMEOUT_MS);
	srv->joiner_idle_ms = ms;
	return 0;
}

void rpc_server_close(struct rpc_server *srv)
{
	PRE(!srv->closing);
	srv->closing = true;
	for (struct conn *c = srv->conns; c != NULL; c = c->snext)
		if (c->s != NULL)
			stream_close(c->s);
	server_unref(srv);
}

/* --- calling -------------------------------------------------------------- */

/* One call: queued (no connection yet) -> sent -> the response. It fails on
 * its timer (SHOAL_ETIMEDOUT if sent, else SHOAL_EUNAVAIL), a failed dial or
 * broken connection (SHOAL_EUNAVAIL), cancel or close (SHOAL_ESHUTDOWN).
 * Failures found outside the loop's own callbacks are stored and delivered
 * by firing the timer at once; finish() runs the callback exactly once. */
struct ccall {
	struct rpc_client *c;
	struct ccall *prev, *next; /* in c->calls until finished */
	uint64_t id;
	uint64_t deadline_ms;
	unsigned timeout_ms;
	bool sent;
	bool deferred; /* a result is stored, waiting for the timer */
	int status;
	struct shoal_err err;
	uv_timer_t timer;
	rpc_result_cb cb;
	void *arg;
	char method[RPC_MAX_METHOD + 1];
	size_t len;
	unsigned char body[];
};

/* The client's connection, checked on every move:
 *
 *   IDLE --call--> DIALING (maybe after the backoff) --dialed--> CONNECTED
 *   DIALING --dial failed--> IDLE          CONNECTED --broke--> IDLE
 *   any --rpc_client_close()--> CLOSING
 */
enum cst { C_IDLE, C_DIALING, C_CONNECTED, C_CLOSING, C_COUNT };

struct rpc_client {
	uv_loop_t *loop;
	char addr[ADDR_LEN];
	enum stream_purpose purpose;
	const struct stream_identity *id;
	enum cst state;
	struct stream *s;     /* CONNECTED, or closing after CONNECTED */
	bool dialing;	      /* a stream_dial() is outstanding */
	bool backoff_waiting; /* the backoff timer will dial */
	uv_timer_t backoff;
	bool backoff_closed;
	unsigned backoff_ms;   /* 0 after a successful handshake */
	uint64_t next_dial_ms; /* no dial before this */
	struct shoal_err last; /* why the last dial failed or the stream broke */
	bool bad_bytes;	       /* we closed the stream for a malformed message */
	struct ccall *calls;   /* not finished */
	unsigned open_calls;   /* including finished ones whose timer is closing */
	uint64_t next_id;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void set_cstate(struct rpc_client *c, enum cst to)
{
	static const bool allowed[C_COUNT][C_COUNT] = {
	    [C_IDLE] = {[C_DIALING] = true, [C_CLOSING] = true},
	    [C_DIALING] = {[C_IDLE] = true, [C_CONNECTED] = true, [C_CLOSING] = true},
	    [C_CONNECTED] = {[C_IDLE] = true, [C_CLOSING] = true},
	};

	PRE(allowed[c->state][to]);
	(void)allowed;
	c->state = to;
}

static void maybe_free(struct rpc_client *c)
{
	if (c->state != C_CLOSING || !c->backoff_closed || c->s != NULL || c->dialing ||
	    c->open_calls > 0)
		return;
	if (c->close_cb != NULL)
		c->close_cb(c->close_arg);
	free(c);
}

static void call_closed(uv_handle_t *h)
{
	struct ccall *call = h->data;
	struct rpc_client *c = call->c;

	free(call);
	c->open_calls--;
	maybe_free(c);
}

/* Deliver the result once, from the loop. */
static void finish(struct ccall *call, int status, const struct shoal_err *err, const void *body,
		   size_t len)
{
	struct rpc_client *c = call->c;

	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	uv_timer_stop(&call->timer);
	call->cb(call->arg, status, status != 0 ? err : NULL, body, len);
	uv_close((uv_handle_t *)&call->timer, call_closed);
}

static void call_timer_cb(uv_timer_t *t);

/* Store a result and deliver it from the loop soon. */
static void defer(struct ccall *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void defer(struct ccall *call, int status, const char *fmt, ...)
{
	va_list ap;

	if (call->deferred)
		return;
	call->deferred = true;
	call->status = status;
	va_start(ap, fmt);
	vsnprintf(call->err.msg, sizeof(call->err.msg), fmt, ap);
	va_end(ap);
	uv_timer_start(&call->timer, call_timer_cb, 0, 0);
}

static void send_cancel(struct rpc_client *c, const struct ccall *call)
{
	struct rpc_message m = {.kind = RPC_CANCEL, .id = call->id};

	if (call->sent && c->state == C_CONNECTED)
		(void)send_msg(c->s, &m, NULL);
}

static void call_timer_cb(uv_timer_t *t)
{
	struct ccall *call = t->data;
	struct rpc_client *c = call->c;
	struct shoal_err err;
	int status;

	if (call->deferred) {
		finish(call, call->status, &call->err, NULL, 0);
		return;
	}
	if (call->sent) {
		send_cancel(c, call);
		status = shoal_errf(&err, SHOAL_ETIMEDOUT, "no answer from %s within %u ms",
				    c->addr, call->timeout_ms);
	} else if (c->last.msg[0] != '\0') {
		status = shoal_errf(&err, SHOAL_EUNAVAIL, "no connection to %s within %u ms: %s",
				    c->addr, call->timeout_ms, c->last.msg);
	} else {
		status = shoal_errf(&err, SHOAL_EUNAVAIL, "no connection to %s within %u ms",
				    c->addr, call->timeout_ms);
	}
	finish(call, status, &err, NULL, 0);
}

static void send_request(struct rpc_client *c, struct ccall *call)
{
	struct rpc_message m = {.kind = RPC_REQUEST, .version = RPC_VERSION, .id = call->id};
	uint64_t now = clock_mono_ms();
	struct shoal_err err;
	int rv;

	memcpy(m.method, call->method, sizeof(m.method));
	m.timeout_ms = call->deadline_ms > now ? (uint32_t)(call->deadline_ms - now) : 1;
	m.body = call->body;
	m.body_len = call->len;
	call->sent = true;
	rv = send_msg(c->s, &m, &err);
	/* A failed send closes the stream, which fails the call as sent; only
	 * a failure to encode is the call's own. */
	if (rv == SHOAL_ENOMEM || rv == SHOAL_EINVAL)
		defer(call, rv, "call %s on %s: %s", call->method, c->addr, err.msg);
}

static void dial(struct rpc_client *c);

static void backoff_cb(uv_timer_t *t)
{
	struct rpc_client *c = t->data;

	c->backoff_waiting = false;
	if (c->state == C_DIALING && !c->dialing)
		dial(c);
}

/* A dial failed: every call waiting for it fails; the next waits a while. */
static void dial_failed(struct rpc_client *c)
{
	c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS : c->backoff_ms * 2;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
	c->next_dial_ms = clock_mono_ms() + c->backoff_ms;
	set_cstate(c, C_IDLE);
	for (struct ccall *call = c->calls; call != NULL; call = call->next)
		if (!call->sent)
			defer(call, SHOAL_EUNAVAIL, "%s", c->last.msg);
}

static void client_message(struct stream *s, const void *data, size_t len, void *arg);
static void client_closed(struct stream *s, int code, const struct shoal_err *err, void *arg);

static void dial_cb(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct rpc_client *c = arg;

	c->dialing = false;
	if (c->state == C_CLOSING) {
		if (s != NULL)
			stream_close(s);
		maybe_free(c);
		return;
	}
	PRE(c->state == C_DIALING);
	if (status != 0) {
		c->last = *err;
		shoal_err_wrap(&c->last, "could not connect");
		dial_failed(c);
		return;
	}
	c->s = s;
	c->backoff_ms = 0;
	c->next_dial_ms = 0;
	c->last.msg[0] = '\0';
	c->bad_bytes = false;
	set_cstate(c, C_CONNECTED);
	stream_start(s, client_message, client_closed, c);
	for (struct ccall *call = c->calls; call != NULL; call = call->next)
		if (!call->sent && !call->deferred)
			send_request(c, call);
}

static void dial(struct rpc_client *c)
{
	struct shoal_err err;
	int rv;

	PRE(c->state == C_DIALING && !c->dialing);
	rv = stream_dial(c->loop, c->addr, c->purpose, c->id, dial_cb, c, &err);
	if (rv != 0) {
		c->last = err;
		shoal_err_wrap(&c->last, "could not connect");
		dial_failed(c);
		return;
	}
	c->dialing = true;
}

/* A call waits: dial now, or when the backoff ends. */
static void want_connection(struct rpc_client *c)
{
	uint64_t now = clock_mono_ms();

	if (c->state != C_IDLE)
		return;
	set_cstate(c, C_DIALING);
	if (now >= c->next_dial_ms) {
		dial(c);
	} else if (!c->backoff_waiting) {
		c->backoff_waiting = true;
		uv_timer_start(&c->backoff, backoff_cb, c->next_dial_ms - now, 0);
	}
}

static struct ccall *find_call(struct rpc_client *c, uint64_t id)
{
	for (struct ccall *call = c->calls; call != NULL; call = call->next)
		if (call->id == id)
			return call;
	return NULL;
}

static void client_message(struct stream *s, const void *data, size_t len, void *arg)
{
	struct rpc_client *c = arg;
	struct rpc_message m;
	struct shoal_err err;
	struct ccall *call;

	if (c->state != C_CONNECTED || c->s != s)
		return;
	if (rpc_decode(data, len, &m, &err) != 0)
		goto bad;
	if (m.kind == RPC_REQUEST) {
		/* A client serves nothing. */
		struct rpc_message r = {
		    .kind = RPC_RESPONSE, .id = m.id, .status = SHOAL_ENOTFOUND};

		snprintf(r.message, sizeof(r.message), "unknown method %s", m.method);
		(void)send_msg(s, &r, NULL);
		return;
	}
	if (m.kind == RPC_CANCEL)
		return;
	if (m.id >= c->next_id) {
		shoal_errf(&err, SHOAL_EPROTO, "a response to call %llu, which was not made",
			   (unsigned long long)m.id);
		goto bad;
	}
	call = find_call(c, m.id);
	/* A call that finished already (timed out, cancelled) is ignored. */
	if (call == NULL || call->deferred || !call->sent)
		return;
	if (m.status != 0) {
		snprintf(err.msg, sizeof(err.msg), "%s", m.message);
		finish(call, m.status, &err, NULL, 0);
	} else
		finish(call, 0, NULL, m.body, m.body_len);
	return;
bad:
	c->last = err;
	shoal_err_wrap(&c->last, "%s sent a bad message", c->addr);
	c->bad_bytes = true;
	stream_close(s);
}

static void client_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	struct rpc_client *c = arg;

	(void)s;
	c->s = NULL;
	if (c->state == C_CLOSING) {
		maybe_free(c);
		return;
	}
	if (!c->bad_bytes) {
		if (code != 0)
			c->last = *err;
		else
			snprintf(c->last.msg, sizeof(c->last.msg), "closed");
		shoal_err_wrap(&c->last, "the connection to %s broke", c->addr);
	}
	set_cstate(c, C_IDLE);
	for (struct ccall *call = c->calls; call != NULL; call = call->next)
		if (call->sent)
			defer(call, SHOAL_EUNAVAIL, "%s", c->last.msg);
	for (struct ccall *call = c->calls; call != NULL; call = call->next)
		if (!call->deferred) {
			want_connection(c);
			break;
		}
}

int rpc_client_new(struct rpc_client **out, uv_loop_t *loop, const char *addr,
		   enum stream_purpose purpose, const struct stream_identity *id,
		   struct shoal_err *err)
{
	struct rpc_client *c;
	int rv;

	if (strlen(addr) >= ADDR_LEN)
		return shoal_errf(err, SHOAL_EINVAL, "address \"%.100s\" is too long", addr);
	rv = stream_identity_check(id, true, purpose, err);
	if (rv != 0)
		return rv;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	c->loop = loop;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->purpose = purpose;
	c->id = id;
	c->state = C_IDLE;
	c->next_id = 1;
	uv_timer_init(loop, &c->backoff);
	c->backoff.data = c;
	*out = c;
	return 0;
}

const char *rpc_client_addr(const struct rpc_client *c)
{
	return c->addr;
}

int rpc_client_call(struct rpc_client *c, const char *method, const void *body, size_t len,
		    unsigned timeout_ms, rpc_result_cb cb, void *arg, uint64_t *id,
		    struct shoal_err *err)
{
	size_t mlen = strnlen(method, RPC_MAX_METHOD + 1);
	struct ccall *call;

	if (c->state == C_CLOSING)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the RPC client for %s is closing",
				  c->addr);
	if (!method_ok(method, mlen))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid method name: 1 to %d printable ASCII characters",
				  RPC_MAX_METHOD);
	if (timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS)
		return shoal_errf(err, SHOAL_EINVAL, "invalid timeout %u ms: 1 to %u", timeout_ms,
				  MAX_TIMEOUT_MS);
	if (len > RPC_MAX_BODY)
		return shoal_errf(err, SHOAL_EINVAL,
				  "a request body of %zu bytes is over the %u limit", len,
				  RPC_MAX_BODY);
	call = calloc(1, sizeof(*call) + len);
	if (call == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	call->c = c;
	call->id = c->next_id++;
	call->timeout_ms = timeout_ms;
	call->deadline_ms = clock_mono_ms() + timeout_ms;
	call->cb = cb;
	call->arg = arg;
	memcpy(call->method, method, mlen);
	if (len > 0)
		memcpy(call->body, body, len);
	call->len = len;
	uv_timer_init(c->loop, &call->timer);
	call->timer.data = call;
	uv_timer_start(&call->timer, call_timer_cb, timeout_ms, 0);
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	c->open_calls++;
	if (id != NULL)
		*id = call->id;
	if (c->state == C_CONNECTED)
		send_request(c, call);
	else
		want_connection(c);
	return 0;
}

void rpc_client_cancel(struct rpc_client *c, uint64_t id)
{
	struct ccall *call = find_call(c, id);

	if (call == NULL || call->deferred)
		return;
	send_cancel(c, call);
	defer(call, SHOAL_ESHUTDOWN, "cancelled");
}

static void backoff_closed(uv_handle_t *h)
{
	struct rpc_client *c = h->data;

	c->backoff_closed = true;
	maybe_free(c);
}

void rpc_client_close(struct rpc_client *c, void (*cb)(void *arg), void *arg)
{
	if (c->state == C_CLOSING)
		return;
	set_cstate(c, C_CLOSING);
	c->close_cb = cb;
	c->close_arg = arg;
	for (struct ccall *call = c->calls; call != NULL; call = call->next)
		defer(call, SHOAL_ESHUTDOWN, "the RPC client for %s is closing", c->addr);
	if (c->s != NULL)
		stream_close(c->s);
	/* Its close callback comes from the loop: @cb never fires from here. */
	uv_close((uv_handle_t *)&c->backoff, backoff_closed);
}
