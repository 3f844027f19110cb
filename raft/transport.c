/* A raft_uv_transport whose connections are secure streams.
 *
 * Dialing (raft's connect):  stream_dial(STREAM_RAFT) -> handshake done ->
 *   send preamble {raft id, address} -> socketpair -> raft gets one end.
 * Accepting (the node's listener hands us a STREAM_RAFT stream):
 *   first message is the preamble -> authorize(peer cert, raft id) ->
 *   socketpair -> raft's accept callback gets one end.
 * Either way a pump then copies raft's bytes into stream messages and stream
 * messages back into raft's end. Closing either side closes the other.
 *
 * Failures: a dial that fails reports RAFT_NOCONNECTION to raft; a bad or
 * unauthorized preamble closes the stream; transport close cancels pending
 * dials (RAFT_CANCELED) and closes every pump, then calls raft back. */
#include "raft/transport.h"

#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PREAMBLE_MAX_ADDR 255
#define PUMP_READ_SIZE	  (64 * 1024)

struct pump;
struct dial;

struct secure_transport {
	struct secure_transport_config cfg;
	struct raft_uv_transport *t;
	raft_id id;
	char address[PREAMBLE_MAX_ADDR + 1];
	raft_uv_accept_cb accept_cb;
	struct pump *pumps; /* every live pump, a doubly linked list */
	struct dial *dials; /* dials in flight */
	bool closing;
	raft_uv_transport_close_cb close_cb;
};

/* One raft connection's pump: the secure stream and our end of the socketpair. */
struct pump {
	struct secure_transport *st;
	struct stream *stream; /* NULL once its closed callback fired */
	uv_pipe_t pipe;	       /* our end */
	enum { PIPE_NONE, PIPE_OPEN, PIPE_CLOSING, PIPE_CLOSED } pipe_state;
	bool running; /* preamble done, raft has its end */
	struct pump *prev, *next;
};

/* A connect request of raft in flight. */
struct dial {
	struct secure_transport *st; /* NULL once cancelled by transport close */
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	raft_id peer;
	struct dial *prev, *next;
};

#define LIST_ADD(head, x)                   \
	do {                                \
		(x)->prev = NULL;           \
		(x)->next = (head);         \
		if ((head) != NULL)         \
			(head)->prev = (x); \
		(head) = (x);               \
	} while (0)
#define LIST_DEL(head, x)                            \
	do {                                         \
		if ((x)->prev != NULL)               \
			(x)->prev->next = (x)->next; \
		else                                 \
			(head) = (x)->next;          \
		if ((x)->next != NULL)               \
			(x)->next->prev = (x)->prev; \
		(x)->prev = (x)->next = NULL;        \
	} while (0)

static void maybe_closed(struct secure_transport *st)
{
	raft_uv_transport_close_cb cb;

	if (!st->closing || st->pumps != NULL || st->close_cb == NULL)
		return;
	cb = st->close_cb;
	st->close_cb = NULL;
	cb(st->t);
}

/* --- pumps ---------------------------------------------------------------- */

static void pump_maybe_free(struct pump *p)
{
	struct secure_transport *st = p->st;

	if (p->stream != NULL || p->pipe_state == PIPE_OPEN || p->pipe_state == PIPE_CLOSING)
		return;
	LIST_DEL(st->pumps, p);
	free(p);
	maybe_closed(st);
}

static void pipe_closed(uv_handle_t *h)
{
	struct pump *p = h->data;

	p->pipe_state = PIPE_CLOSED;
	pump_maybe_free(p);
}

static void pipe_close(struct pump *p)
{
	if (p->pipe_state != PIPE_OPEN)
		return;
	p->pipe_state = PIPE_CLOSING;
	uv_close((uv_handle_t *)&p->pipe, pipe_closed);
}

/* Close both ends; memory goes once both callbacks fired. */
static void pump_close(struct pump *p)
{
	pipe_close(p);
	if (p->stream != NULL)
		stream_close(p->stream);
}

static void pipe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	buf->base = malloc(PUMP_READ_SIZE);
	buf->len = buf->base != NULL ? PUMP_READ_SIZE : 0;
}

/* Raft wrote bytes: send them as one stream message. */
static void pipe_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
	struct pump *p = h->data;

	if (n > 0 && p->stream != NULL && stream_send(p->stream, buf->base, (size_t)n, NULL) != 0)
		n = UV_EPIPE;
	free(buf->base);
	if (n < 0)
		pump_close(p);
}

struct pipe_write {
	uv_write_t req;
	char data[];
};

static void pipe_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error too */
	free(req);
}

/* A stream message for raft: write it into its end. */
static void pump_to_raft(struct pump *p, const void *data, size_t len)
{
	struct pipe_write *w;
	uv_buf_t buf;

	if (p->pipe_state != PIPE_OPEN || len == 0)
		return;
	w = malloc(sizeof *w + len);
	if (w == NULL) {
		pump_close(p);
		return;
	}
	memcpy(w->data, data, len);
	buf = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&p->pipe, &buf, 1, pipe_written) != 0) {
		free(w);
		pump_close(p);
	}
}

static void raft_handle_closed(uv_handle_t *h)
{
	raft_free(h);
}

/* Make the socketpair: our end into @p->pipe, raft's end into a uv_pipe_t
 * allocated with raft_malloc (raft closes and frees it). On failure the
 * caller closes the pump, which closes our end if it was initialised. */
static uv_stream_t *pump_open(struct pump *p)
{
	uv_loop_t *loop = p->st->cfg.loop;
	uv_pipe_t *theirs;
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
		return NULL;
	theirs = raft_malloc(sizeof *theirs);
	if (theirs == NULL || uv_pipe_init(loop, theirs, 0) != 0) {
		raft_free(theirs);
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (uv_pipe_init(loop, &p->pipe, 0) != 0) {
		close(fds[0]);
		close(fds[1]);
		uv_close((uv_handle_t *)theirs, raft_handle_closed);
		return NULL;
	}
	p->pipe.data = p;
	p->pipe_state = PIPE_OPEN;
	if (uv_pipe_open(theirs, fds[0]) != 0) {
		close(fds[0]);
		close(fds[1]);
		uv_close((uv_handle_t *)theirs, raft_handle_closed);
		return NULL;
	}
	if (uv_pipe_open(&p->pipe, fds[1]) != 0) {
		close(fds[1]);
		uv_close((uv_handle_t *)theirs, raft_handle_closed);
		return NULL;
	}
	if (uv_read_start((uv_stream_t *)&p->pipe, pipe_alloc, pipe_read) != 0) {
		uv_close((uv_handle_t *)theirs, raft_handle_closed);
		return NULL;
	}
	p->running = true;
	return (uv_stream_t *)theirs;
}

/* Preamble: [u64 big-endian raft id][u8 length][address]. */
static size_t preamble_encode(unsigned char *out, raft_id id, const char *address)
{
	size_t n = strlen(address);

	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(id >> (56 - 8 * i));
	out[8] = (unsigned char)n;
	memcpy(out + 9, address, n);
	return 9 + n;
}

static int preamble_decode(const unsigned char *in, size_t len, raft_id *id,
			   char address[PREAMBLE_MAX_ADDR + 1])
{
	raft_id v = 0;

	if (len < 9 || len != 9 + (size_t)in[8])
		return -1;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	if (v == 0)
		return -1;
	for (size_t i = 0; i < in[8]; i++)
		if (in[9 + i] < 0x20 || in[9 + i] > 0x7e)
			return -1;
	memcpy(address, in + 9, in[8]);
	address[in[8]] = '\0';
	*id = v;
	return 0;
}

static void on_message(struct stream *s, const void *data, size_t len, void *arg)
{
	struct pump *p = arg;
	struct secure_transport *st = p->st;
	char address[PREAMBLE_MAX_ADDR + 1];
	uv_stream_t *theirs;
	raft_id id;

	(void)s;
	if (p->running) {
		pump_to_raft(p, data, len);
		return;
	}
	/* The accepted side's first message: who is this Raft server? */
	if (st->closing || st->accept_cb == NULL || preamble_decode(data, len, &id, address) != 0 ||
	    !st->cfg.authorize(st->cfg.arg, stream_peer(p->stream), id)) {
		pump_close(p);
		return;
	}
	theirs = pump_open(p);
	if (theirs == NULL) {
		pump_close(p);
		return;
	}
	st->accept_cb(st->t, id, address, theirs);
}

static void on_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	struct pump *p = arg;

	(void)s;
	(void)code;
	(void)err;
	p->stream = NULL;
	/* Raft sees EOF on its end and drops the connection. */
	pipe_close(p);
	pump_maybe_free(p);
}

static struct pump *pump_new(struct secure_transport *st, struct stream *s)
{
	struct pump *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->st = st;
	p->stream = s;
	LIST_ADD(st->pumps, p);
	stream_start(s, on_message, on_closed, p);
	return p;
}

/* Close a stream we will not use; it was not started yet. */
/* A stream nobody serves: close it (a stream not started may be). */
static void discard(struct stream *s)
{
	stream_close(s);
}

void secure_transport_accept(struct raft_uv_transport *t, struct stream *s)
{
	struct secure_transport *st = t->impl;

	if (st->closing || st->accept_cb == NULL || pump_new(st, s) == NULL)
		discard(s);
}

void secure_transport_accept_or_close(struct raft_uv_transport *t, struct stream *s)
{
	if (t == NULL)
		discard(s);
	else
		secure_transport_accept(t, s);
}

/* --- raft_uv_transport ------------------------------------------------------- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct secure_transport *st = t->impl;

	if (strlen(address) > PREAMBLE_MAX_ADDR) {
		snprintf(t->errmsg, sizeof(t->errmsg), "address too long: %.64s...", address);
		return RAFT_INVALID;
	}
	st->id = id;
	memcpy(st->address, address, strlen(address) + 1);
	return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct secure_transport *st = t->impl;

	/* The node's listener accepts; it hands RAFT streams to us. */
	st->accept_cb = cb;
	return 0;
}

static void dial_done(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct dial *d = arg;
	struct secure_transport *st = d->st;
	unsigned char preamble[9 + PREAMBLE_MAX_ADDR];
	uv_stream_t *theirs = NULL;
	struct pump *p;

	(void)err;
	if (st == NULL) { /* cancelled: raft has been told already */
		if (s != NULL)
			discard(s);
		free(d);
		return;
	}
	LIST_DEL(st->dials, d);
	if (status == 0 && s != NULL) {
		p = pump_new(st, s);
		if (p != NULL &&
		    stream_send(s, preamble, preamble_encode(preamble, st->id, st->address),
				NULL) == 0)
			theirs = pump_open(p);
		if (theirs == NULL) {
			if (p != NULL)
				pump_close(p);
			else
				discard(s);
		}
	}
	d->cb(d->req, theirs, theirs != NULL ? 0 : RAFT_NOCONNECTION);
	free(d);
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
		     const char *address, raft_uv_connect_cb cb)
{
	struct secure_transport *st = t->impl;
	struct shoal_err err;
	struct dial *d;

	if (st->closing)
		return RAFT_CANCELED;
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return RAFT_NOMEM;
	d->st = st;
	d->req = req;
	d->cb = cb;
	d->peer = id;
	if (stream_dial(st->cfg.loop, address, STREAM_RAFT, st->cfg.id, dial_done, d, &err) != 0) {
		snprintf(t->errmsg, sizeof(t->errmsg), "%.200s", err.msg);
		free(d);
		return RAFT_NOCONNECTION;
	}
	LIST_ADD(st->dials, d);
	return 0;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct secure_transport *st = t->impl;

	st->closing = true;
	st->close_cb = cb;
	/* Pending dials finish later on their own; raft hears of them now. */
	while (st->dials != NULL) {
		struct dial *d = st->dials;
		LIST_DEL(st->dials, d);
		d->st = NULL;
		d->cb(d->req, NULL, RAFT_CANCELED);
	}
	for (struct pump *p = st->pumps; p != NULL; p = p->next)
		pump_close(p);
	maybe_closed(st);
}

int secure_transport_init(struct raft_uv_transport *t, const struct secure_transport_config *cfg,
			  struct shoal_err *err)
{
	struct secure_transport *st = calloc(1, sizeof *st);

	if (st == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	memset(t, 0, sizeof *t);
	st->cfg = *cfg;
	st->t = t;
	t->impl = st;
	t->init = t_init;
	t->listen = t_listen;
	t->connect = t_connect;
	t->close = t_close;
	return 0;
}

void secure_transport_free(struct raft_uv_transport *t)
{
	struct secure_transport *st = t != NULL ? t->impl : NULL;

	if (st == NULL)
		return;
	PRE(st->pumps == NULL);
	free(st);
	t->impl = NULL;
}
