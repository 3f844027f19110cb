/* libFuzzer target: arbitrary bytes into one HTTP connection core, fed in
 * pieces, with requests routed into the Docker API (node/api.c) of a node that
 * is not in a swarm. Requests that would start Raft or erase state (swarm
 * init and leave) and the "/async" and "/stream" test paths are answered here. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "node/api.h"
#include "node/http.h"
#include "node/swarm.h"

#include <stdio.h>
#include <uv.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct swarm *swarm;
static struct api *api;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/shoal-fuzz-http.XXXXXX";
	struct swarm_config scfg = {.hostname = "fuzz"};
	struct api_context actx = {.hostname = "fuzz", .runtime = "runc"};

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL || uv_loop_init(&loop) != 0)
		abort();
	scfg.state_dir = dir;
	actx.state_dir = dir;
	if (swarm_open(&swarm, &loop, &scfg, NULL) != 0)
		abort();
	actx.swarm = swarm;
	if (api_new(&api, &actx, NULL) != 0)
		abort();
	return 0;
}

struct fuzz_state {
	struct buf out;
	bool closed;
	struct http_response *held; /* answered at the end of the input */
};

static int fuzz_write(void *arg, const void *data, size_t len)
{
	struct fuzz_state *st = arg;

	if (st->closed)
		abort(); /* nothing may be written after close() */
	return buf_append(&st->out, data, len);
}

static void fuzz_close(void *arg)
{
	struct fuzz_state *st = arg;

	if (st->closed)
		abort(); /* close() is asked for once */
	st->closed = true;
}

/* Answer every request: "/async..." at the end of the input, "/stream..." in
 * chunks, anything else with a JSON echo. */
static void fuzz_handler(void *arg, struct http_request *req, struct http_response *res)
{
	struct fuzz_state *st = arg;
	const char *ctype = http_request_header(req, "Content-Type");
	char q[32];
	json_t *obj;
	char *text;

	if (strncmp(req->path, "/async", 6) != 0 && strncmp(req->path, "/stream", 7) != 0 &&
	    strstr(req->path, "/swarm/") == NULL) {
		api_handle(api, req, res);
		return;
	}
	if (strncmp(req->path, "/async", 6) == 0 && st->held == NULL) {
		st->held = res;
		return;
	}
	if (strncmp(req->path, "/stream", 7) == 0) {
		http_stream_start(res, 200, "application/octet-stream");
		http_stream_write(res, req->body, req->body_len / 2);
		http_stream_write(res, req->body + req->body_len / 2,
				  req->body_len - req->body_len / 2);
		http_stream_end(res);
		return;
	}
	http_response_header(res, "X-Query", http_query_get(req, "q", q, sizeof(q)) ? q : "-");
	obj = json_pack("{s:s, s:s, s:I, s:b}", "method", req->method, "path", req->path,
			"body_len", (json_int_t)req->body_len, "typed", ctype != NULL);
	text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (text == NULL) {
		struct buf err;

		buf_init(&err);
		http_error_body(&err, "the path is not UTF-8");
		http_respond(res, 400, "application/json", err.data, err.len);
		buf_free(&err);
		return;
	}
	http_respond(res, 200, "application/json", text, strlen(text));
	free(text);
}

/* Finish the held response; that may deliver (and hold) the next one. */
static void answer_held(struct fuzz_state *st)
{
	struct http_response *res;

	while (st->held != NULL) {
		res = st->held;
		st->held = NULL;
		http_respond(res, 202, "text/plain", "late", 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits limits = {.max_header_bytes = 1024, .max_body_bytes = 4096};
	struct http_transport t = {.write = fuzz_write, .close = fuzz_close};
	struct fuzz_state st = {.closed = false, .held = NULL};
	struct http_conn *c;
	size_t a = 0, b = 0;

	buf_init(&st.out);
	t.arg = &st;
	c = http_conn_new(&limits, &t, fuzz_handler, &st);
	if (c == NULL)
		return 0;
	/* Two split points taken from the data, to exercise incremental parsing. */
	if (size > 0) {
		a = (size_t)data[0] * size / 256;
		b = a + (size_t)data[size - 1] * (size - a) / 256;
	}
	http_conn_feed(c, data, a);
	http_conn_feed(c, data + a, b - a);
	http_conn_feed(c, data + b, size - b);

	switch (size % 3) {
	case 0: /* the client waits for its answers, then leaves */
		answer_held(&st);
		http_conn_eof(c);
		http_conn_free(c);
		break;
	case 1: /* the client leaves first */
		http_conn_eof(c);
		answer_held(&st);
		http_conn_free(c);
		break;
	default: /* the server drops the connection first */
		http_conn_free(c);
		answer_held(&st);
		break;
	}
	if (st.out.len > 0 && strncmp(st.out.data, "HTTP/1.1 ", 9) != 0)
		abort(); /* every answer starts with a status line */
	buf_free(&st.out);
	return 0;
}
