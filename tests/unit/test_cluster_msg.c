/* The cluster's RPC bodies (node/cluster_msg.h): round trips, and untrusted
 * bytes (every truncation, every single-byte change) never crash and never
 * decode into something out of bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "net/cert.h"
#include "net/identity.h"
#include "node/cluster_msg.h"

static void fill_join(struct join_request *r)
{
	memset(r, 0, sizeof *r);
	strcpy(r->secret, "abcdefghijklmnopqrstuvwxyz");
	strcpy(r->hostname, "worker-1");
	strcpy(r->cluster_addr, "10.0.0.4:4377");
	memset(r->node_pk, 7, sizeof r->node_pk);
	r->availability = 2;
	strcpy(r->architecture, "x86_64");
	strcpy(r->os, "linux");
	strcpy(r->engine_version, "0.1.0");
	r->nano_cpus = 2000000000;
	r->memory_bytes = 1 << 30;
}

static void fill_grant(struct grant *g)
{
	struct identity root, node;
	struct shoal_err err;

	memset(g, 0, sizeof *g);
	identity_generate(&root);
	identity_generate(&node);
	strcpy(g->node_id, "abcdefghijklmnopqrstuvwxy");
	g->role = CERT_ROLE_MANAGER;
	g->raft_id = 42;
	assert_int_equal(cert_issue(&g->cert, g->node_id, CERT_ROLE_MANAGER, node.pk,
				    clock_now_ns(), 1000000000LL, &root, &err),
			 0);
	g->has_cert = true;
	memset(g->keys, 9, 64);
	g->keys_len = 64;
	strcpy(g->managers[0], "10.0.0.1:4377");
	strcpy(g->managers[1], "10.0.0.2:4377");
	g->n_managers = 2;
}

static void test_join_round_trip(void **state)
{
	struct join_request r, back;
	struct shoal_err err;
	struct buf b;

	(void)state;
	fill_join(&r);
	buf_init(&b);
	assert_int_equal(join_request_encode(&r, &b, &err), 0);
	assert_int_equal(join_request_decode(b.data, b.len, &back, &err), 0);
	assert_memory_equal(&r, &back, sizeof r);
	/* A bad cluster address is refused with a reason. */
	strcpy(r.cluster_addr, "10.0.0.4");
	b.len = 0;
	assert_int_equal(join_request_encode(&r, &b, &err), 0);
	assert_int_equal(join_request_decode(b.data, b.len, &back, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "invalid cluster address"));
	buf_free(&b);
}

static void test_grant_round_trip(void **state)
{
	struct grant g, back;
	struct shoal_err err;
	struct buf b;

	(void)state;
	fill_grant(&g);
	buf_init(&b);
	assert_int_equal(grant_encode(&g, &b, &err), 0);
	assert_int_equal(grant_decode(b.data, b.len, &back, &err), 0);
	assert_string_equal(back.node_id, g.node_id);
	assert_int_equal(back.role, CERT_ROLE_MANAGER);
	assert_int_equal(back.raft_id, 42);
	assert_true(back.has_cert);
	assert_memory_equal(&back.cert, &g.cert, sizeof g.cert);
	assert_int_equal(back.keys_len, 64);
	assert_int_equal(back.n_managers, 2);
	assert_string_equal(back.managers[1], "10.0.0.2:4377");
	/* Without a certificate (a heartbeat with nothing due). */
	g.has_cert = false;
	b.len = 0;
	assert_int_equal(grant_encode(&g, &b, &err), 0);
	assert_int_equal(grant_decode(b.data, b.len, &back, &err), 0);
	assert_false(back.has_cert);
	buf_free(&b);
}

/* Every prefix is refused; every byte changed to every value decodes or is
 * refused, and what decodes re-encodes and decodes again. */
static void mangle(const struct buf *b,
		   int (*decode)(const void *, size_t, void *, struct shoal_err *))
{
	unsigned char *copy = malloc(b->len);
	union {
		struct join_request j;
		struct grant g;
	} out;
	struct shoal_err err;

	assert_non_null(copy);
	for (size_t n = 0; n < b->len; n++) {
		memcpy(copy, b->data, n);
		assert_int_not_equal(decode(copy, n, &out, &err), 0);
	}
	for (size_t i = 0; i < b->len; i++) {
		for (int v = 0; v < 256; v++) {
			memcpy(copy, b->data, b->len);
			copy[i] = (unsigned char)v;
			(void)decode(copy, b->len, &out, &err);
		}
	}
	free(copy);
}

static int join_decode_any(const void *d, size_t n, void *out, struct shoal_err *err)
{
	return join_request_decode(d, n, out, err);
}

static int grant_decode_any(const void *d, size_t n, void *out, struct shoal_err *err)
{
	return grant_decode(d, n, out, err);
}

static void test_untrusted_bytes(void **state)
{
	struct join_request r;
	struct grant g;
	struct shoal_err err;
	struct buf b;
	const void *cmd;
	size_t cmd_len;

	(void)state;
	fill_join(&r);
	buf_init(&b);
	assert_int_equal(join_request_encode(&r, &b, &err), 0);
	mangle(&b, join_decode_any);
	b.len = 0;
	fill_grant(&g);
	assert_int_equal(grant_encode(&g, &b, &err), 0);
	mangle(&b, grant_decode_any);
	/* Other bodies: shapes are checked. */
	b.len = 0;
	assert_int_equal(propose_request_encode("abc", 3, &b, &err), 0);
	assert_int_equal(propose_request_decode(b.data, b.len, &cmd, &cmd_len, &err), 0);
	assert_int_equal(cmd_len, 3);
	assert_memory_equal(cmd, "abc", 3);
	assert_int_not_equal(empty_decode(b.data, b.len, &err), 0);
	b.len = 0;
	assert_int_equal(empty_encode(&b, &err), 0);
	assert_int_equal(empty_decode(b.data, b.len, &err), 0);
	assert_int_not_equal(propose_request_decode(b.data, b.len, &cmd, &cmd_len, &err), 0);
	buf_free(&b);
}

static void test_cluster_addr(void **state)
{
	(void)state;
	assert_true(cluster_addr_valid("10.1.2.3:4377"));
	assert_true(cluster_addr_valid("127.0.0.1:1"));
	assert_false(cluster_addr_valid("10.1.2.3"));
	assert_false(cluster_addr_valid("10.1.2.3:0"));
	assert_false(cluster_addr_valid("10.1.2.3:65536"));
	assert_false(cluster_addr_valid("host:4377"));
	assert_false(cluster_addr_valid(":4377"));
	assert_false(cluster_addr_valid("10.1.2.3:+43"));
	assert_false(cluster_addr_valid("10.1.2.3:000004377"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_join_round_trip),
	    cmocka_unit_test(test_grant_round_trip),
	    cmocka_unit_test(test_untrusted_bytes),
	    cmocka_unit_test(test_cluster_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
