/* libFuzzer target: untrusted bytes into the RPC message decoder
 * (net/rpc.h). Whatever it accepts must be a valid message that encodes and
 * decodes to the same fields. The same bytes also go to the decoders of the
 * cluster's RPC bodies (node/cluster_msg.h): join requests and grants, which
 * must re-encode to what they decoded; and to the task logs request and page
 * (node/task_logs.h): a request re-encodes to what it decoded, a page's
 * entries are walked to their end or a clean refusal. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "net/rpc.h"
#include "node/cluster_msg.h"
#include "node/task_logs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct rpc_message *a, const struct rpc_message *b)
{
	if (a->kind != b->kind || a->id != b->id)
		return false;
	if (a->kind == RPC_REQUEST &&
	    (a->version != b->version || strcmp(a->method, b->method) != 0 ||
	     a->timeout_ms != b->timeout_ms))
		return false;
	if (a->kind == RPC_RESPONSE &&
	    (a->status != b->status || strcmp(a->message, b->message) != 0))
		return false;
	if (a->kind != RPC_CANCEL &&
	    (a->body_len != b->body_len ||
	     (a->body_len > 0 && memcmp(a->body, b->body, a->body_len) != 0)))
		return false;
	return true;
}

static void cluster_bodies(const uint8_t *data, size_t size)
{
	struct join_request jr, jr2;
	struct grant g, g2;
	struct shoal_err err;
	const void *cmd;
	size_t cmd_len;
	struct buf b;

	if (join_request_decode(data, size, &jr, &err) == 0) {
		buf_init(&b);
		if (join_request_encode(&jr, &b, &err) != 0 ||
		    join_request_decode(b.data, b.len, &jr2, &err) != 0 ||
		    memcmp(&jr, &jr2, sizeof jr) != 0)
			abort();
		buf_free(&b);
	}
	if (grant_decode(data, size, &g, &err) == 0) {
		buf_init(&b);
		if (grant_encode(&g, &b, &err) != 0 ||
		    grant_decode(b.data, b.len, &g2, &err) != 0 ||
		    strcmp(g.node_id, g2.node_id) != 0 || g.keys_len != g2.keys_len ||
		    g.n_managers != g2.n_managers || g.has_cert != g2.has_cert)
			abort();
		buf_free(&b);
	}
	if (propose_request_decode(data, size, &cmd, &cmd_len, &err) == 0 &&
	    ((const uint8_t *)cmd < data || (const uint8_t *)cmd + cmd_len > data + size))
		abort();
	(void)empty_decode(data, size, &err);
}

static void task_logs_bodies(const uint8_t *data, size_t size)
{
	struct task_logs_req r, r2;
	struct task_logs_page p;
	struct logfile_entry e;
	struct shoal_err err;
	struct buf b;
	size_t off = 0;
	int rv;

	if (task_logs_req_decode(data, size, &r, &err) == 0) {
		buf_init(&b);
		if (task_logs_req_encode(&r, &b, &err) != 0 ||
		    task_logs_req_decode(b.data, b.len, &r2, &err) != 0 ||
		    memcmp(&r, &r2, sizeof r) != 0 || b.len > size)
			abort();
		buf_free(&b);
	}
	if (task_logs_page_decode(data, size, &p, &err) != 0)
		return;
	while ((rv = task_logs_next_entry(&p, &off, &e, &err)) == 1)
		if (off > p.entries_len || e.text < (const char *)p.entries ||
		    e.text + e.len > (const char *)p.entries + p.entries_len)
			abort();
	if (rv != 0 && err.msg[0] == '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_message m, again;
	struct shoal_err err;
	struct buf b;

	cluster_bodies(data, size);
	task_logs_bodies(data, size);
	if (rpc_decode(data, size, &m, &err) != 0) {
		if (err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (m.id == 0 || (m.kind != RPC_CANCEL && m.body_len > RPC_MAX_BODY) ||
	    (m.kind != RPC_CANCEL &&
	     (m.body_len > size ||
	      (m.body_len > 0 && ((const uint8_t *)m.body < data ||
				  (const uint8_t *)m.body + m.body_len > data + size)))))
		abort();
	buf_init(&b);
	if (rpc_encode(&m, &b, &err) != 0 || b.len > size ||
	    rpc_decode(b.data, b.len, &again, &err) != 0 || !same(&m, &again))
		abort();
	buf_free(&b);
	return 0;
}
