/* libFuzzer target for the HTTP request path, in two modes chosen by the
 * first byte:
 * - HTTP: arbitrary bytes into one HTTP connection core, fed in pieces, with
 *   requests routed into the Docker API (node/api.c) of a node that is not in
 *   a swarm. Requests that would start Raft or erase state (swarm init and
 *   leave) and the "/async" and "/stream" test paths are answered here.
 * - NODE UPDATE (first byte 0xff): "REF\nVERSION\nJSON BODY" through the
 *   node update path of an active manager (lookup, version, NodeSpec
 *   decoding, command building and encoding) against a store holding a
 *   cluster and three nodes. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "node/api.h"
#include "node/command.h"
#include "node/http.h"
#include "node/records.h"
#include "node/store.h"
#include "node/swarm.h"
#include "raft/fsm.h"

#include <stdio.h>
#include <uv.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct swarm *swarm;
static struct api *api;
static struct store *store;
static char dir[] = "/tmp/shoal-fuzz-http.XXXXXX";
static const char *const node_ids[] = {"aaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaab",
				       "bbbbbbbbbbbbbbbbbbbbbbbbb"};

static void remove_dir(void)
{
	fs_rm_rf(dir, NULL);
}

/* A store with a cluster and three nodes, applied as Raft would. */
static void fill_store(void)
{
	struct consensus_fsm fsm;
	struct cluster_rec c;
	struct command cmd;
	void *buf, *result;
	size_t len;

	if (store_new(&store, NULL) != 0 || cluster_rec_defaults(&c, NULL) != 0)
		abort();
	store_fsm(store, &fsm);
	command_init(&cmd);
	c.meta.id = strdup("ccccccccccccccccccccccccc");
	if (command_put(&cmd, RECORD_CLUSTER, COMMAND_EXPECT_NEW, &c, NULL) != 0)
		abort();
	cluster_rec_free(&c);
	for (size_t i = 0; i < 3; i++) {
		struct node_rec n;
		if (node_rec_defaults(&n, NULL) != 0)
			abort();
		n.meta.id = strdup(node_ids[i]);
		n.description.hostname = strdup(i == 2 ? "worker" : "manager");
		n.spec.role = i == 2 ? NODE_ROLE_WORKER : NODE_ROLE_MANAGER;
		if (command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_NEW, &n, NULL) != 0)
			abort();
		node_rec_free(&n);
	}
	if (command_encode(&cmd, &buf, &len, NULL) != 0 ||
	    fsm.apply(fsm.arg, 1, buf, len, &result) != 0 || store_result_code(result) != 0)
		abort();
	free(buf);
	command_free(&cmd);
}

static void fuzz_node_update(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *ref, *version, *body;
	struct command cmd;
	json_t *json;
	void *buf;
	size_t len;

	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	ref = text;
	version = strchr(ref, '\n');
	body = version != NULL ? strchr(version + 1, '\n') : NULL;
	if (body != NULL) {
		*version++ = '\0';
		*body++ = '\0';
		json = json_loads(body, 0, NULL);
		command_init(&cmd);
		if (json_is_object(json) &&
		    api_node_update_command(store, node_ids[0], ref, version, json, 1, &cmd,
					    NULL) == 0 &&
		    command_encode(&cmd, &buf, &len, NULL) == 0)
			free(buf);
		command_free(&cmd);
		json_decref(json);
	}
	free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct swarm_config scfg = {.hostname = "fuzz"};
	struct api_context actx = {.hostname = "fuzz", .runtime = "runc"};

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL || uv_loop_init(&loop) != 0)
		abort();
	atexit(remove_dir);
	fill_store();
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

	if (size > 0 && data[0] == 0xff) {
		fuzz_node_update(data + 1, size - 1);
		return 0;
	}
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
