/* Unit tests of node/task_logs: the "task_logs" request and page codec, and
 * its refusals of malformed bytes. (Serving pages from real containers is
 * exercised by tests/integration/t_services.sh and t_services_cluster.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "node/task_logs.h"

static struct task_logs_req sample(void)
{
	struct task_logs_req r;

	memset(&r, 0, sizeof(r));
	snprintf(r.task_id, sizeof(r.task_id), "%s", "x7a0m0f2kq1l5v0z8m3n2b1c4");
	r.q.stdout_ = true;
	r.q.tail = -1;
	r.q.since_ns = 1700000000000000000ull;
	r.has_pos = true;
	r.pos.ino = 12345;
	r.pos.offset = 1u << 20;
	r.wait_ms = 5000;
	return r;
}

static void test_request_round_trip(void **state)
{
	struct task_logs_req r = sample(), back;
	struct shoal_err err;
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(task_logs_req_encode(&r, &b, &err), 0);
	assert_int_equal(task_logs_req_decode(b.data, b.len, &back, &err), 0);
	assert_memory_equal(&r, &back, sizeof(r));
	buf_free(&b);
}

/* Encode @r, then check that decoding it fails with @code. */
static void expect_refused(const struct task_logs_req *r, int code)
{
	struct task_logs_req back;
	struct shoal_err err;
	struct buf b;

	buf_init(&b);
	assert_int_equal(task_logs_req_encode(r, &b, &err), 0);
	assert_int_equal(task_logs_req_decode(b.data, b.len, &back, &err), code);
	assert_true(err.msg[0] != '\0');
	buf_free(&b);
}

static void test_request_refusals(void **state)
{
	struct task_logs_req r;
	struct shoal_err err;
	struct buf b;

	(void)state;
	r = sample();
	r.q.stdout_ = false;
	expect_refused(&r, SHOAL_EINVAL); /* no stream */
	r = sample();
	r.q.tail = -2;
	expect_refused(&r, SHOAL_EPROTO);
	r = sample();
	r.wait_ms = TASK_LOGS_MAX_WAIT_MS + 1;
	expect_refused(&r, SHOAL_EPROTO);
	r = sample();
	r.task_id[0] = '\0';
	expect_refused(&r, SHOAL_EPROTO);
	r = sample();
	r.task_id[3] = ' ';
	expect_refused(&r, SHOAL_EPROTO);

	/* Truncated, trailing bytes, a flag of 2, the wrong field count. */
	r = sample();
	buf_init(&b);
	assert_int_equal(task_logs_req_encode(&r, &b, &err), 0);
	assert_int_equal(task_logs_req_decode(b.data, b.len - 1, &r, &err), SHOAL_EPROTO);
	assert_int_equal(buf_append(&b, "\xc0", 1), 0);
	assert_int_equal(task_logs_req_decode(b.data, b.len, &r, &err), SHOAL_EPROTO);
	buf_free(&b);
	assert_int_equal(
	    task_logs_req_decode("\x9a\xa2t1\x02\x01\xff\x00\x00\x00\x00\x00\x00", 13, &r, &err),
	    SHOAL_EPROTO);
	assert_int_equal(
	    task_logs_req_decode("\x99\xa2t1\x01\x01\xff\x00\x00\x00\x00\x00", 12, &r, &err),
	    SHOAL_EPROTO);
	assert_int_equal(
	    task_logs_req_decode("\x9a\xa2t1\x01\x01\xff\x00\x00\x00\x00\x00\x00", 13, &r, &err),
	    0);
	assert_string_equal(r.task_id, "t1");
}

static void test_page_entries(void **state)
{
	/* [ino 7, offset 32, more 0, ended 1, bin[[1, 5, "hi"], [2, 6, ""]]] */
	static const char page[] = "\x95\x07\x20\x00\x01\xc4\x0c"
				   "\x93\x01\x05\xc4\x02hi"
				   "\x93\x02\x06\xc4\x00";
	struct task_logs_page p;
	struct logfile_entry e;
	struct shoal_err err;
	size_t off = 0;

	(void)state;
	assert_int_equal(task_logs_page_decode(page, sizeof(page) - 1, &p, &err), 0);
	assert_int_equal(p.pos.ino, 7);
	assert_int_equal(p.pos.offset, 32);
	assert_false(p.more);
	assert_true(p.ended);
	assert_int_equal(task_logs_next_entry(&p, &off, &e, &err), 1);
	assert_int_equal(e.stream, LOGFILE_STDOUT);
	assert_int_equal(e.time_ns, 5);
	assert_int_equal(e.len, 2);
	assert_memory_equal(e.text, "hi", 2);
	assert_int_equal(task_logs_next_entry(&p, &off, &e, &err), 1);
	assert_int_equal(e.stream, LOGFILE_STDERR);
	assert_int_equal(e.len, 0);
	assert_int_equal(task_logs_next_entry(&p, &off, &e, &err), 0);

	/* A stream byte of 3, and an entry cut short, are refused. */
	p.entries = "\x93\x03\x05\xc4\x00";
	p.entries_len = 5;
	off = 0;
	assert_int_equal(task_logs_next_entry(&p, &off, &e, &err), SHOAL_EPROTO);
	p.entries = "\x93\x01\x05\xc4\x05hi";
	p.entries_len = 7;
	assert_int_equal(task_logs_next_entry(&p, &off, &e, &err), SHOAL_EPROTO);
	/* A page with a flag of 2 or extra fields. */
	assert_int_equal(task_logs_page_decode("\x95\x07\x20\x02\x01\xc4\x00", 7, &p, &err),
			 SHOAL_EPROTO);
	assert_int_equal(task_logs_page_decode("\x96\x07\x20\x00\x01\xc4\x00\x00", 8, &p, &err),
			 SHOAL_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_round_trip),
	    cmocka_unit_test(test_request_refusals),
	    cmocka_unit_test(test_page_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
