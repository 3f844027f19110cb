/* Unit tests of net/rpc: the message codec against hostile bytes, then
 * clients and servers over real secure streams on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "net/cert.h"
#include "net/rpc.h"
#include "net/stream.h"

#define SEC  1000000000LL
#define HOUR (3600 * SEC)

/* ---- Nodes ---------------------------------------------------------------- */

struct node {
	struct identity key;
	struct cert cert;
	struct stream_identity sid;
};

static struct identity root;
static char root_fp[FINGERPRINT_LEN + 1];
static struct node manager, worker, joiner;

static void node_init(struct node *n, const char *id, enum cert_role role,
		      const struct identity *by, int64_t from)
{
	memset(n, 0, sizeof(*n));
	identity_generate(&n->key);
	n->sid.key = &n->key;
	if (id == NULL)
		return;
	assert_int_equal(cert_issue(&n->cert, id, role, n->key.pk, from, HOUR, by, NULL), 0);
	n->sid.cert = &n->cert;
	memcpy(n->sid.root_pk, by->pk, IDENTITY_PK_LEN);
}

static int setup(void **state)
{
	int64_t now;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return -1;
	now = clock_now_ns();
	identity_generate(&root);
	identity_fingerprint(root.pk, root_fp);
	node_init(&manager, "managernode0", CERT_ROLE_MANAGER, &root, now - 60 * SEC);
	node_init(&worker, "workernode0", CERT_ROLE_WORKER, &root, now - 60 * SEC);
	node_init(&joiner, NULL, 0, NULL, 0);
	joiner.sid.pinned_root_fingerprint = root_fp;
	return 0;
}

/* ---- The codec ----------------------------------------------------------- */

static void encode_ok(const struct rpc_message *m, struct buf *b)
{
	struct shoal_err err;

	buf_init(b);
	if (rpc_encode(m, b, &err) != 0)
		fail_msg("encode: %s", err.msg);
}

static void expect_same(const struct rpc_message *a, const struct rpc_message *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->id, b->id);
	if (a->kind == RPC_REQUEST) {
		assert_int_equal(a->version, b->version);
		assert_string_equal(a->method, b->method);
		assert_int_equal(a->timeout_ms, b->timeout_ms);
	}
	if (a->kind == RPC_RESPONSE) {
		assert_int_equal(a->status, b->status);
		assert_string_equal(a->message, b->message);
	}
	if (a->kind != RPC_CANCEL) {
		assert_int_equal(a->body_len, b->body_len);
		if (a->body_len > 0)
			assert_memory_equal(a->body, b->body, a->body_len);
	}
}

static struct rpc_message samples[4];

static void make_samples(void)
{
	memset(samples, 0, sizeof(samples));
	samples[0] = (struct rpc_message){.kind = RPC_REQUEST,
					  .version = RPC_VERSION,
					  .id = 7,
					  .timeout_ms = 5000,
					  .body = "\x01\x02\x03",
					  .body_len = 3};
	snprintf(samples[0].method, sizeof(samples[0].method), "node.join");
	samples[1] = (struct rpc_message){
	    .kind = RPC_RESPONSE, .id = 0x123456789ULL, .body = "ok body", .body_len = 7};
	samples[2] = (struct rpc_message){
	    .kind = RPC_RESPONSE, .id = 3, .status = SHOAL_ENOTLEADER, .body = "", .body_len = 0};
	snprintf(samples[2].message, sizeof(samples[2].message), "not the leader: ask 10.0.0.2");
	samples[3] = (struct rpc_message){.kind = RPC_CANCEL, .id = 1};
}

static void codec_round_trips(void **state)
{
	struct rpc_message out;
	struct shoal_err err;
	struct buf b;

	(void)state;
	make_samples();
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		encode_ok(&samples[i], &b);
		if (rpc_decode(b.data, b.len, &out, &err) != 0)
			fail_msg("decode %zu: %s", i, err.msg);
		expect_same(&samples[i], &out);
		/* The body points into the input. */
		if (out.kind != RPC_CANCEL)
			assert_true((const char *)out.body >= b.data &&
				    (const char *)out.body + out.body_len <= b.data + b.len);
		buf_free(&b);
	}
}

/* Hand-made msgpack: each must be refused. */
static void codec_refuses_what_breaks_the_rules(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
#define B(s) {s, sizeof(s) - 1}
	    B(""),
	    B("\x92\x03\x01\x00"),			   /* trailing byte */
	    B("\x93\x03\x01\x00"),			   /* extra element */
	    B("\x91\x03"),				   /* missing id */
	    B("\x92\x03\x00"),				   /* id 0 */
	    B("\x92\x04\x01"),				   /* unknown kind */
	    B("\x92\x03\xd0\x01"),			   /* signed id */
	    B("\x95\x02\x01\x05\xa0\xc4\x00"),		   /* status 5 */
	    B("\x95\x02\x01\xf3\xa1x\xc4\x00"),		   /* status -13 is ETIMEDOUT: ok */
	    B("\x95\x02\x01\xf2\xa1x\xc4\x00"),		   /* status -14 */
	    B("\x95\x02\x01\x00\xa1x\xc4\x00"),		   /* message with status 0 */
	    B("\x95\x02\x01\xff\xa2x\x00\xc4\x00"),	   /* NUL in the message */
	    B("\x95\x02\x01\x00\xa0\xa0"),		   /* body a str */
	    B("\x95\x02\x01\x00\xa0\xc0"),		   /* body nil */
	    B("\x96\x01\x01\x01\xa0\x01\xc4\x00"),	   /* empty method */
	    B("\x96\x01\x01\x01\xa2\x61\x0a\x01\xc4\x00"), /* control char */
	    B("\x96\x01\x01\x01\xa1\x61\x00\xc4\x00"),	   /* timeout 0 */
	    B("\x96\x01\x01\x01\xa1\x61\xce\x00\x09\x27\xc1\xc4\x00"), /* 600001 ms */
	    B("\x96\x01\x01\x01\xa1\x61\x01\xc4\x05\x00"),	       /* short body */
	    B("\x96\x01\x01\x01\xa1\x61\x01\xc6\x01\x00\x00\x01"),     /* body over the limit */
#undef B
	};
	struct rpc_message m;
	struct shoal_err err;
	char method[RPC_MAX_METHOD + 2];
	struct buf b;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rv = rpc_decode(bad[i].bytes, bad[i].len, &m, &err);

		if (i == 8) {
			assert_int_equal(rv, 0);
			assert_int_equal(m.status, SHOAL_ETIMEDOUT);
			continue;
		}
		if (rv != SHOAL_EPROTO)
			fail_msg("bad message %zu decoded", i);
		assert_non_null(strstr(err.msg, "malformed RPC message"));
	}
	/* A method of 65 characters. */
	memset(method, 'a', sizeof(method));
	buf_init(&b);
	assert_int_equal(buf_append(&b, "\x96\x01\x01\x01\xd9\x41", 6), 0);
	assert_int_equal(buf_append(&b, method, 65), 0);
	assert_int_equal(buf_append(&b, "\x01\xc4\x00", 3), 0);
	assert_int_equal(rpc_decode(b.data, b.len, &m, &err), SHOAL_EPROTO);
	buf_free(&b);
	/* Another version decodes, so it can be answered. */
	assert_int_equal(rpc_decode("\x96\x01\x02\x01\xa1\x61\x01\xc4\x00", 9, &m, &err), 0);
	assert_int_equal(m.version, 2);
	assert_string_equal(m.method, "a");

	/* The encoder refuses what the decoder would. */
	make_samples();
	buf_init(&b);
	m = samples[0];
	m.method[0] = '\0';
	assert_int_equal(rpc_encode(&m, &b, &err), SHOAL_EINVAL);
	m = samples[0];
	m.timeout_ms = 0;
	assert_int_equal(rpc_encode(&m, &b, &err), SHOAL_EINVAL);
	m = samples[0];
	m.body_len = RPC_MAX_BODY + 1;
	assert_int_equal(rpc_encode(&m, &b, &err), SHOAL_EINVAL);
	m = samples[2];
	m.status = 3;
	assert_int_equal(rpc_encode(&m, &b, &err), SHOAL_EINVAL);
	m = samples[1];
	snprintf(m.message, sizeof(m.message), "why");
	assert_int_equal(rpc_encode(&m, &b, &err), SHOAL_EINVAL);
	m = samples[3];
	m.id = 0;
	assert_int_equal(rpc_encode(&m, &b, &err), SHOAL_EINVAL);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* Whatever decodes must be a valid message that encodes and decodes the same. */
static void check_consistent(const void *data, size_t len)
{
	struct rpc_message m, again;
	struct shoal_err err;
	struct buf b;

	if (rpc_decode(data, len, &m, &err) != 0) {
		assert_true(strlen(err.msg) > 0);
		return;
	}
	assert_true(m.id != 0);
	assert_true(m.kind >= RPC_REQUEST && m.kind <= RPC_CANCEL);
	encode_ok(&m, &b);
	assert_int_equal(rpc_decode(b.data, b.len, &again, &err), 0);
	expect_same(&m, &again);
	buf_free(&b);
}

static void codec_survives_truncation_and_corruption(void **state)
{
	struct rpc_message m;
	struct buf b;

	(void)state;
	make_samples();
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		encode_ok(&samples[i], &b);
		for (size_t n = 0; n < b.len; n++) {
			/* A heap copy of exactly n bytes: ASan sees any over-read. */
			char *cut = malloc(n + 1);

			assert_non_null(cut);
			memcpy(cut, b.data, n);
			assert_int_equal(rpc_decode(n > 0 ? cut : NULL, n, &m, NULL), SHOAL_EPROTO);
			free(cut);
		}
		for (size_t pos = 0; pos < b.len; pos++) {
			char *copy = malloc(b.len);

			assert_non_null(copy);
			for (unsigned v = 0; v < 256; v++) {
				memcpy(copy, b.data, b.len);
				copy[pos] = (char)v;
				check_consistent(copy, b.len);
			}
			free(copy);
		}
		buf_free(&b);
	}
}

/* ---- Over streams on 127.0.0.1 ------------------------------------------- */

static uv_loop_t loop;
static uv_timer_t guard;
static bool guard_fired;
/* Set while the test is inside an rpc_client_*() call: no callback may fire. */
static bool in_api;

static void guard_cb(uv_timer_t *t)
{
	(void)t;
	guard_fired = true;
	uv_stop(&loop);
}

static int loop_setup(void **state)
{
	(void)state;
	if (uv_loop_init(&loop) != 0)
		return -1;
	guard_fired = false;
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, guard_cb, 30000, 0);
	uv_unref((uv_handle_t *)&guard);
	return 0;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
	bool *left = arg;

	if (uv_is_closing(h) || h == (uv_handle_t *)&guard)
		return;
	print_error("a %s handle is left open\n", uv_handle_type_name(h->type));
	*left = true;
	uv_close(h, NULL);
}

static int loop_teardown(void **state)
{
	bool left = false;

	(void)state;
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_walk(&loop, walk_cb, &left);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	return !left && !guard_fired && uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* Run the loop until *@flag (a bool or counter reaching @want). */
static void run_until_count(const unsigned *count, unsigned want)
{
	while (*count < want) {
		uv_run(&loop, UV_RUN_ONCE);
		if (guard_fired)
			fail_msg("the test hung");
	}
}

/* What a call answered. */
struct result {
	unsigned fired;
	int status;
	char msg[SHOAL_ERR_LEN];
	char body[256];
	size_t len;
	uint64_t at_ms;
	struct rpc_client *close_from_cb; /* close this client from the callback */
	unsigned *done;			  /* counted here too, if set */
};

static void result_cb(void *arg, int status, const struct shoal_err *err, const void *body,
		      size_t len)
{
	struct result *r = arg;

	assert_false(in_api);
	assert_int_equal(r->fired, 0); /* once */
	r->fired++;
	r->status = status;
	r->at_ms = clock_mono_ms();
	if (status != 0) {
		assert_non_null(err);
		snprintf(r->msg, sizeof(r->msg), "%s", err->msg);
		assert_int_equal(len, 0);
	} else {
		assert_true(len <= sizeof(r->body));
		if (len > 0)
			memcpy(r->body, body, len);
		r->len = len;
	}
	if (r->done != NULL)
		(*r->done)++;
	if (r->close_from_cb != NULL)
		rpc_client_close(r->close_from_cb, NULL, NULL);
}

/* The server side: a listener whose streams serve the methods below. */
struct server {
	struct stream_listener *l;
	char addr[64];
	unsigned port;
	bool raw; /* accept raw streams that close on the first message */
	struct rpc_call *held[RPC_MAX_INFLIGHT + 8];
	unsigned n_held;
	unsigned n_served;
	enum stream_purpose purpose;
	bool authenticated;
	char remote[64];
	unsigned listener_closed;
	struct rpc_server *rs; /* if set, serve through it */
};

static struct server srv;

static void m_echo(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct server *s = arg;
	const struct stream_peer *peer = rpc_call_peer(call);

	s->n_served++;
	s->purpose = peer->purpose;
	s->authenticated = peer->authenticated;
	snprintf(s->remote, sizeof(s->remote), "%s", rpc_call_remote(call));
	assert_false(rpc_call_abandoned(call));
	rpc_reply(call, 0, NULL, body, len);
}

static void m_fail(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct shoal_err err;

	(void)arg;
	(void)body;
	(void)len;
	rpc_reply(call, shoal_errf(&err, SHOAL_ECONFLICT, "service web exists"), &err, NULL, 0);
}

static void m_hold(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct server *s = arg;

	(void)body;
	(void)len;
	assert_true(s->n_held < ARRAY_SIZE(s->held));
	s->held[s->n_held++] = call;
}

struct later {
	uv_timer_t timer;
	struct rpc_call *call;
};

static void later_closed(uv_handle_t *h)
{
	free(h->data);
}

static void later_fire(uv_timer_t *t)
{
	struct later *l = t->data;

	rpc_reply(l->call, 0, NULL, "later", 5);
	uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void m_later(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct later *l = malloc(sizeof(*l));

	(void)arg;
	(void)body;
	(void)len;
	assert_non_null(l);
	l->call = call;
	uv_timer_init(&loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, later_fire, 50, 0);
}

static const struct rpc_method methods[] = {
    {"echo", m_echo}, {"fail", m_fail}, {"hold", m_hold}, {"later", m_later}, {NULL, NULL}};

static void raw_message(struct stream *s, const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	(void)arg;
	stream_close(s);
}

static void raw_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	(void)s;
	(void)code;
	(void)err;
	(void)arg;
}

static void on_accept(struct stream_listener *l, struct stream *s, void *arg)
{
	struct server *sv = arg;
	struct shoal_err err;

	(void)l;
	if (sv->raw) {
		stream_start(s, raw_message, raw_closed, NULL);
		return;
	}
	if (sv->rs != NULL ? rpc_server_serve(sv->rs, s, methods, &err) != 0
			   : rpc_serve(s, methods, sv, &err) != 0)
		fail_msg("serve: %s", err.msg);
}

static void server_listen(const char *bind)
{
	struct shoal_err err;

	if (stream_listen(&srv.l, &loop, bind, &manager.sid, on_accept, &srv, &err) != 0)
		fail_msg("listen: %s", err.msg);
	srv.port = stream_listener_port(srv.l);
	snprintf(srv.addr, sizeof(srv.addr), "127.0.0.1:%u", srv.port);
}

static void server_start(void)
{
	memset(&srv, 0, sizeof(srv));
	server_listen("127.0.0.1:0");
}

static void listener_closed(void *arg)
{
	(void)arg;
	srv.listener_closed++;
}

static void server_release_held(void)
{
	for (unsigned i = 0; i < srv.n_held; i++)
		rpc_reply(srv.held[i], 0, NULL, "held", 4);
	srv.n_held = 0;
}

static void server_stop(void)
{
	server_release_held();
	if (srv.l != NULL)
		stream_listener_close(srv.l, listener_closed, NULL);
	srv.l = NULL;
}

static struct rpc_client *client_new(const struct node *n, enum stream_purpose purpose)
{
	struct rpc_client *c;
	struct shoal_err err;

	if (rpc_client_new(&c, &loop, srv.addr, purpose, &n->sid, &err) != 0)
		fail_msg("client: %s", err.msg);
	assert_string_equal(rpc_client_addr(c), srv.addr);
	return c;
}

static uint64_t call(struct rpc_client *c, const char *method, const void *body, size_t len,
		     unsigned timeout_ms, struct result *r)
{
	struct shoal_err err;
	uint64_t id = 0;

	in_api = true;
	if (rpc_client_call(c, method, body, len, timeout_ms, result_cb, r, &id, &err) != 0)
		fail_msg("call: %s", err.msg);
	in_api = false;
	assert_true(id != 0);
	return id;
}

static void client_closed_cb(void *arg)
{
	unsigned *n = arg;

	assert_false(in_api);
	(*n)++;
}

static void client_close(struct rpc_client *c)
{
	unsigned closed = 0;

	in_api = true;
	rpc_client_close(c, client_closed_cb, &closed);
	in_api = false;
	run_until_count(&closed, 1);
}

static void tcp_echo_unknown_method_and_handler_errors(void **state)
{
	struct result a = {0}, b = {0}, c = {0}, d = {0};
	struct rpc_client *cli;

	(void)state;
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	call(cli, "echo", "hello", 5, 5000, &a);
	call(cli, "nope", "", 0, 5000, &b);
	call(cli, "fail", NULL, 0, 5000, &c);
	call(cli, "echo", NULL, 0, 5000, &d);
	run_until_count(&d.fired, 1);
	run_until_count(&c.fired, 1);
	run_until_count(&b.fired, 1);
	run_until_count(&a.fired, 1);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.len, 5);
	assert_memory_equal(a.body, "hello", 5);
	assert_int_equal(b.status, SHOAL_ENOTFOUND);
	assert_string_equal(b.msg, "unknown method nope");
	assert_int_equal(c.status, SHOAL_ECONFLICT);
	assert_string_equal(c.msg, "service web exists");
	assert_int_equal(d.status, 0);
	assert_int_equal(d.len, 0);
	assert_int_equal(srv.purpose, STREAM_RPC);
	assert_true(srv.authenticated);
	assert_non_null(strstr(srv.remote, "127.0.0.1:"));
	client_close(cli);
	server_stop();
}

static void tcp_many_concurrent_calls(void **state)
{
	enum { N = 1000 }; /* a quarter of them held by the server at once: under the bound */
	struct result *r = calloc(N, sizeof(*r));
	struct rpc_client *cli;
	unsigned done = 0;
	char body[32];

	(void)state;
	assert_non_null(r);
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	for (unsigned i = 0; i < N; i++) {
		r[i].done = &done;
		snprintf(body, sizeof(body), "call %u", i);
		call(cli, i % 4 != 0 ? "echo" : "later", body, strlen(body), 10000, &r[i]);
	}
	run_until_count(&done, N);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(r[i].status, 0);
		if (i % 4 == 0) {
			assert_int_equal(r[i].len, 5);
			assert_memory_equal(r[i].body, "later", 5);
		} else {
			snprintf(body, sizeof(body), "call %u", i);
			assert_int_equal(r[i].len, strlen(body));
			assert_memory_equal(r[i].body, body, r[i].len);
		}
	}
	/* One connection carried them all; a result callback may close. */
	{
		struct result last = {0};

		last.close_from_cb = cli;
		call(cli, "echo", "x", 1, 5000, &last);
		run_until_count(&last.fired, 1);
		assert_int_equal(last.status, 0);
	}
	free(r);
	server_stop();
}

static void tcp_async_reply_after_a_timer(void **state)
{
	struct result a = {0};
	struct rpc_client *cli;
	uint64_t t0;

	(void)state;
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	t0 = clock_mono_ms();
	call(cli, "later", "", 0, 5000, &a);
	run_until_count(&a.fired, 1);
	assert_int_equal(a.status, 0);
	assert_memory_equal(a.body, "later", 5);
	assert_true(a.at_ms - t0 >= 50);
	client_close(cli);
	server_stop();
}

static void tcp_timeout_when_the_server_never_answers(void **state)
{
	struct result a = {0}, b = {0};
	struct rpc_client *cli;
	char want[128];
	uint64_t t0, took;

	(void)state;
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	t0 = clock_mono_ms();
	call(cli, "hold", "", 0, 300, &a);
	run_until_count(&a.fired, 1);
	took = a.at_ms - t0;
	assert_int_equal(a.status, SHOAL_ETIMEDOUT);
	snprintf(want, sizeof(want), "no answer from %s within 300 ms", srv.addr);
	assert_string_equal(a.msg, want);
	assert_true(took >= 300 && took < 1500);
	/* The connection still serves, and the echo's answer proves the
	 * client's CANCEL reached the server before it: the server's handler
	 * sees the call abandoned and its late reply is dropped. */
	call(cli, "echo", "again", 5, 5000, &b);
	run_until_count(&b.fired, 1);
	assert_int_equal(b.status, 0);
	assert_int_equal(srv.n_held, 1);
	assert_true(rpc_call_abandoned(srv.held[0]));
	server_release_held();
	assert_int_equal(a.fired, 1);
	client_close(cli);
	server_stop();
}

static void tcp_cancel(void **state)
{
	struct result a = {0}, b = {0};
	struct rpc_client *cli;
	uint64_t id;

	(void)state;
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	id = call(cli, "hold", "", 0, 10000, &a);
	run_until_count(&srv.n_held, 1);
	assert_false(rpc_call_abandoned(srv.held[0]));
	in_api = true;
	rpc_client_cancel(cli, id);
	rpc_client_cancel(cli, id);
	rpc_client_cancel(cli, 999); /* never made: ignored */
	in_api = false;
	assert_int_equal(a.fired, 0);
	run_until_count(&a.fired, 1);
	assert_int_equal(a.status, SHOAL_ESHUTDOWN);
	assert_string_equal(a.msg, "cancelled");
	/* The server heard the CANCEL (an echo after it proves it arrived). */
	call(cli, "echo", "", 0, 5000, &b);
	run_until_count(&b.fired, 1);
	assert_true(rpc_call_abandoned(srv.held[0]));
	server_release_held();
	in_api = true;
	rpc_client_cancel(cli, id); /* finished: ignored */
	in_api = false;
	client_close(cli);
	assert_int_equal(a.fired, 1);
	server_stop();
}

static void tcp_server_closing_mid_call_is_unavailable(void **state)
{
	struct result a = {0};
	struct rpc_client *cli;

	(void)state;
	server_start();
	srv.raw = true;
	cli = client_new(&worker, STREAM_RPC);
	call(cli, "echo", "", 0, 5000, &a);
	run_until_count(&a.fired, 1);
	assert_int_equal(a.status, SHOAL_EUNAVAIL);
	assert_non_null(strstr(a.msg, "broke"));
	client_close(cli);
	server_stop();
}

static void tcp_dial_failure_then_the_server_starts(void **state)
{
	struct result a = {0}, b = {0};
	struct rpc_client *cli;
	unsigned port;
	uint64_t t0;
	char bind[64];

	(void)state;
	/* A port nobody listens on: bound a moment ago, then released. */
	server_start();
	port = srv.port;
	server_stop();
	run_until_count(&srv.listener_closed, 1);
	cli = client_new(&worker, STREAM_RPC);
	t0 = clock_mono_ms();
	call(cli, "echo", "", 0, 3000, &a);
	run_until_count(&a.fired, 1);
	assert_int_equal(a.status, SHOAL_EUNAVAIL);
	assert_true(a.at_ms - t0 < 3000);
	assert_non_null(strstr(a.msg, "could not connect"));

	snprintf(bind, sizeof(bind), "127.0.0.1:%u", port);
	server_listen(bind);
	t0 = clock_mono_ms();
	call(cli, "echo", "up", 2, 3000, &b);
	run_until_count(&b.fired, 1);
	assert_int_equal(b.status, 0);
	assert_memory_equal(b.body, "up", 2);
	/* It waited no longer than the first backoff (and a handshake). */
	assert_true(b.at_ms - t0 < 2000);
	client_close(cli);
	server_stop();
}

static void tcp_client_close_fails_pending_calls(void **state)
{
	struct result a = {0}, b = {0}, c = {0};
	struct rpc_client *cli;
	unsigned closed = 0;

	(void)state;
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	call(cli, "hold", "", 0, 10000, &a);
	call(cli, "hold", "", 0, 10000, &b);
	run_until_count(&srv.n_held, 2);
	call(cli, "hold", "", 0, 10000, &c);
	in_api = true;
	rpc_client_close(cli, client_closed_cb, &closed);
	in_api = false;
	assert_int_equal(a.fired + b.fired + c.fired + closed, 0);
	run_until_count(&closed, 1);
	assert_int_equal(a.status, SHOAL_ESHUTDOWN);
	assert_int_equal(b.status, SHOAL_ESHUTDOWN);
	assert_int_equal(c.status, SHOAL_ESHUTDOWN);
	assert_non_null(strstr(a.msg, "closing"));
	server_stop();
}

static void tcp_busy_past_max_inflight(void **state)
{
	struct result *r = calloc(RPC_MAX_INFLIGHT + 1, sizeof(*r));
	struct rpc_client *cli;
	unsigned done = 0;

	(void)state;
	assert_non_null(r);
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	for (unsigned i = 0; i < RPC_MAX_INFLIGHT; i++) {
		r[i].done = &done;
		call(cli, "hold", "", 0, 20000, &r[i]);
	}
	run_until_count(&srv.n_held, RPC_MAX_INFLIGHT);
	call(cli, "hold", "", 0, 20000, &r[RPC_MAX_INFLIGHT]);
	run_until_count(&r[RPC_MAX_INFLIGHT].fired, 1);
	assert_int_equal(r[RPC_MAX_INFLIGHT].status, SHOAL_EBUSY);
	assert_non_null(strstr(r[RPC_MAX_INFLIGHT].msg, "too many requests in flight"));
	assert_int_equal(done, 0);
	server_release_held();
	run_until_count(&done, RPC_MAX_INFLIGHT);
	for (unsigned i = 0; i < RPC_MAX_INFLIGHT; i++) {
		assert_int_equal(r[i].status, 0);
		assert_memory_equal(r[i].body, "held", 4);
	}
	client_close(cli);
	free(r);
	server_stop();
}

static void tcp_joiner_calls_without_certificate(void **state)
{
	struct result a = {0};
	struct rpc_client *cli;

	(void)state;
	server_start();
	cli = client_new(&joiner, STREAM_JOIN);
	call(cli, "echo", "join", 4, 5000, &a);
	run_until_count(&a.fired, 1);
	assert_int_equal(a.status, 0);
	assert_int_equal(srv.purpose, STREAM_JOIN);
	assert_false(srv.authenticated);
	client_close(cli);
	server_stop();
}

/* A raw stream speaking to a server: another version, then bad bytes. */
struct raw {
	struct stream *s;
	unsigned n_msgs;
	struct rpc_message m;
	char msg[SHOAL_ERR_LEN];
	unsigned closed;
	int closed_code;
};

static void rawc_message(struct stream *s, const void *data, size_t len, void *arg)
{
	struct raw *r = arg;

	(void)s;
	assert_int_equal(rpc_decode(data, len, &r->m, NULL), 0);
	r->m.body = NULL;
	r->n_msgs++;
}

static void rawc_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	struct raw *r = arg;

	(void)s;
	(void)err;
	r->closed_code = code;
	r->closed++;
}

static void rawc_dialed(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct raw *r = arg;

	if (status != 0)
		fail_msg("dial: %s", err->msg);
	r->s = s;
	stream_start(s, rawc_message, rawc_closed, r);
}

static void send_request(struct stream *s, uint64_t version, uint64_t id, const char *method)
{
	struct rpc_message m = {
	    .kind = RPC_REQUEST, .version = version, .id = id, .timeout_ms = 5000};
	struct buf b;

	snprintf(m.method, sizeof(m.method), "%s", method);
	m.body = "";
	encode_ok(&m, &b);
	assert_int_equal(stream_send(s, b.data, b.len, NULL), 0);
	buf_free(&b);
}

static void tcp_other_version_and_bad_bytes(void **state)
{
	struct raw r = {0};
	struct shoal_err err;

	(void)state;
	server_start();
	assert_int_equal(
	    stream_dial(&loop, srv.addr, STREAM_RPC, &worker.sid, rawc_dialed, &r, &err), 0);
	while (r.s == NULL) {
		uv_run(&loop, UV_RUN_ONCE);
		assert_false(guard_fired);
	}
	send_request(r.s, 2, 5, "echo");
	run_until_count(&r.n_msgs, 1);
	assert_int_equal(r.m.kind, RPC_RESPONSE);
	assert_int_equal(r.m.id, 5);
	assert_int_equal(r.m.status, SHOAL_EPROTO);
	assert_string_equal(r.m.message, "unsupported RPC version 2");
	/* A response nobody asked for closes the connection. */
	assert_int_equal(stream_send(r.s, "\x95\x02\x01\x00\xa0\xc4\x00", 7, NULL), 0);
	run_until_count(&r.closed, 1);
	assert_int_equal(r.closed_code, SHOAL_ESHUTDOWN);
	assert_int_equal(r.n_msgs, 1);
	server_stop();
}

/* Run the loop for @ms (to see that something does NOT happen meanwhile). */
static void ticked(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void run_for(unsigned ms)
{
	uv_timer_t t;
	bool done = false;

	uv_timer_init(&loop, &t);
	t.data = &done;
	uv_timer_start(&t, ticked, ms, 0);
	while (!done) {
		uv_run(&loop, UV_RUN_ONCE);
		if (guard_fired)
			fail_msg("the test hung");
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
}

static void raw_dial(struct raw *r, const struct node *n, enum stream_purpose purpose)
{
	struct shoal_err err;

	assert_int_equal(stream_dial(&loop, srv.addr, purpose, &n->sid, rawc_dialed, r, &err), 0);
	while (r->s == NULL) {
		uv_run(&loop, UV_RUN_ONCE);
		assert_false(guard_fired);
	}
}

/* Anyone can complete the handshake as a joiner: a joiner's connection that
 * makes no call is closed after the idle time, one with a call in flight is
 * not, and a member's connection never is. */
static void tcp_idle_joiner_is_closed(void **state)
{
	struct raw idle = {0}, busy = {0}, member = {0};
	struct shoal_err err;
	uint64_t t0, dt;

	(void)state;
	server_start();
	assert_int_equal(rpc_server_new(&srv.rs, &srv, &err), 0);
	assert_int_equal(rpc_server_set_joiner_idle(srv.rs, 0, &err), SHOAL_EINVAL);
	assert_int_equal(rpc_server_set_joiner_idle(srv.rs, 600001, &err), SHOAL_EINVAL);
	assert_int_equal(rpc_server_set_joiner_idle(srv.rs, 300, &err), 0);

	/* A joiner that makes one call, then nothing. */
	raw_dial(&idle, &joiner, STREAM_JOIN);
	send_request(idle.s, RPC_VERSION, 1, "echo");
	run_until_count(&idle.n_msgs, 1);
	assert_int_equal(idle.m.status, 0);
	t0 = clock_mono_ms();
	/* A joiner whose call is held, and a member that makes none. */
	raw_dial(&busy, &joiner, STREAM_JOIN);
	send_request(busy.s, RPC_VERSION, 1, "hold");
	raw_dial(&member, &worker, STREAM_RPC);
	run_until_count(&idle.closed, 1);
	dt = clock_mono_ms() - t0;
	assert_int_equal(idle.closed_code, SHOAL_ESHUTDOWN);
	assert_true(dt >= 200 && dt < 5000);
	assert_int_equal(srv.n_held, 1);
	run_for(900); /* three idle times */
	assert_int_equal(busy.closed, 0);
	assert_int_equal(member.closed, 0);
	/* Answered, the held joiner is idle: closed in turn. */
	server_release_held();
	run_until_count(&busy.n_msgs, 1);
	assert_int_equal(busy.m.status, 0);
	run_until_count(&busy.closed, 1);
	assert_int_equal(busy.closed_code, SHOAL_ESHUTDOWN);
	assert_int_equal(member.closed, 0);
	stream_close(member.s);
	run_until_count(&member.closed, 1);
	rpc_server_close(srv.rs);
	server_stop();
}

static void bad_calls_fail_at_once(void **state)
{
	struct rpc_client *cli;
	struct shoal_err err;
	struct result a = {0};
	char long_name[RPC_MAX_METHOD + 2];

	(void)state;
	server_start();
	cli = client_new(&worker, STREAM_RPC);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(rpc_client_call(cli, "", NULL, 0, 100, result_cb, &a, NULL, &err),
			 SHOAL_EINVAL);
	assert_int_equal(rpc_client_call(cli, long_name, NULL, 0, 100, result_cb, &a, NULL, &err),
			 SHOAL_EINVAL);
	assert_int_equal(rpc_client_call(cli, "a\tb", NULL, 0, 100, result_cb, &a, NULL, &err),
			 SHOAL_EINVAL);
	assert_int_equal(rpc_client_call(cli, "echo", NULL, 0, 0, result_cb, &a, NULL, &err),
			 SHOAL_EINVAL);
	assert_int_equal(rpc_client_call(cli, "echo", NULL, 0, 600001, result_cb, &a, NULL, &err),
			 SHOAL_EINVAL);
	assert_int_equal(
	    rpc_client_call(cli, "echo", "", RPC_MAX_BODY + 1, 100, result_cb, &a, NULL, &err),
	    SHOAL_EINVAL);
	rpc_client_close(cli, NULL, NULL);
	assert_int_equal(rpc_client_call(cli, "echo", NULL, 0, 100, result_cb, &a, NULL, &err),
			 SHOAL_ESHUTDOWN);
	server_stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(a.fired, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(codec_round_trips),
	    cmocka_unit_test(codec_refuses_what_breaks_the_rules),
	    cmocka_unit_test(codec_survives_truncation_and_corruption),
#define TCP_TEST(f) cmocka_unit_test_setup_teardown(f, loop_setup, loop_teardown)
	    TCP_TEST(tcp_echo_unknown_method_and_handler_errors),
	    TCP_TEST(tcp_many_concurrent_calls),
	    TCP_TEST(tcp_async_reply_after_a_timer),
	    TCP_TEST(tcp_timeout_when_the_server_never_answers),
	    TCP_TEST(tcp_cancel),
	    TCP_TEST(tcp_server_closing_mid_call_is_unavailable),
	    TCP_TEST(tcp_dial_failure_then_the_server_starts),
	    TCP_TEST(tcp_client_close_fails_pending_calls),
	    TCP_TEST(tcp_busy_past_max_inflight),
	    TCP_TEST(tcp_joiner_calls_without_certificate),
	    TCP_TEST(tcp_other_version_and_bad_bytes),
	    TCP_TEST(tcp_idle_joiner_is_closed),
	    TCP_TEST(bad_calls_fail_at_once),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
