/* Unit tests of net/wire: the bounded msgpack reader must read every format
 * it supports, reject every truncation and every other type, and consume
 * nothing when it fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "net/wire.h"

/* What the last read produced. */
static unsigned char got_byte;
static uint64_t got_u;
static int64_t got_i;
static const unsigned char *got_p;
static size_t got_n;
/* The limit rd_str() and rd_bin() pass on. */
static size_t max_len;

typedef bool (*read_fn)(struct wire_reader *r);

static bool rd_byte(struct wire_reader *r)
{
	return wire_rd_byte(r, &got_byte);
}

static bool rd_array(struct wire_reader *r)
{
	return wire_rd_array(r, &got_u);
}

static bool rd_uint(struct wire_reader *r)
{
	return wire_rd_uint(r, &got_u);
}

static bool rd_int(struct wire_reader *r)
{
	return wire_rd_int(r, &got_i);
}

static bool rd_str(struct wire_reader *r)
{
	return wire_rd_str(r, max_len, &got_p, &got_n);
}

static bool rd_bin(struct wire_reader *r)
{
	return wire_rd_bin(r, max_len, &got_p, &got_n);
}

static bool rd_nil(struct wire_reader *r)
{
	return wire_rd_nil(r);
}

/* @read accepts exactly the @len bytes at @in and rejects, consuming
 * nothing, every shorter prefix of them. */
static void accepts(read_fn read, const unsigned char *in, size_t len)
{
	struct wire_reader r;

	for (size_t n = 0; n < len; n++) {
		wire_rd_init(&r, in, n);
		assert_false(read(&r));
		assert_int_equal(r.pos, 0);
	}
	wire_rd_init(&r, in, len);
	assert_false(wire_rd_done(&r));
	assert_true(read(&r));
	assert_int_equal(r.pos, len);
	assert_true(wire_rd_done(&r));
}

/* @read rejects the @len bytes at @in and consumes nothing. */
static void rejects(read_fn read, const unsigned char *in, size_t len)
{
	struct wire_reader r;

	wire_rd_init(&r, in, len);
	assert_false(read(&r));
	assert_int_equal(r.pos, 0);
}

#define ACCEPTS(read, ...)                                        \
	do {                                                      \
		static const unsigned char in_[] = {__VA_ARGS__}; \
		accepts(read, in_, sizeof(in_));                  \
	} while (0)

#define REJECTS(read, ...)                                        \
	do {                                                      \
		static const unsigned char in_[] = {__VA_ARGS__}; \
		rejects(read, in_, sizeof(in_));                  \
	} while (0)

static void empty_input_is_done_and_reads_nothing(void **state)
{
	struct wire_reader r;

	(void)state;
	wire_rd_init(&r, NULL, 0);
	assert_true(wire_rd_done(&r));
	assert_false(rd_byte(&r));
	assert_false(wire_rd_be(&r, 1, &got_u));
	assert_false(rd_array(&r));
	assert_false(rd_uint(&r));
	assert_false(rd_int(&r));
	max_len = SIZE_MAX;
	assert_false(rd_str(&r));
	assert_false(rd_bin(&r));
	assert_false(rd_nil(&r));
	assert_int_equal(r.pos, 0);
}

static void bytes_and_big_endian_integers(void **state)
{
	static const unsigned char in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
	static const uint64_t want[] = {
	    0, 0x01, 0x0102, 0, 0x01020304, 0, 0, 0, 0x0102030405060708};
	struct wire_reader r;

	(void)state;
	ACCEPTS(rd_byte, 0xc1);
	assert_int_equal(got_byte, 0xc1);

	for (size_t n = 1; n <= 8; n *= 2) {
		for (size_t k = 0; k < n; k++) {
			wire_rd_init(&r, in, k);
			assert_false(wire_rd_be(&r, n, &got_u));
			assert_int_equal(r.pos, 0);
		}
		wire_rd_init(&r, in, sizeof(in));
		assert_true(wire_rd_be(&r, n, &got_u));
		assert_true(got_u == want[n]);
		assert_int_equal(r.pos, n);
	}
	wire_rd_init(&r, (const unsigned char[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		     8);
	assert_true(wire_rd_be(&r, 8, &got_u));
	assert_true(got_u == UINT64_MAX);
}

static void array_headers(void **state)
{
	(void)state;
	ACCEPTS(rd_array, 0x90);
	assert_true(got_u == 0);
	ACCEPTS(rd_array, 0x9f);
	assert_true(got_u == 15);
	ACCEPTS(rd_array, 0xdc, 0x01, 0x02);
	assert_true(got_u == 0x0102);
	ACCEPTS(rd_array, 0xdd, 0xff, 0xff, 0xff, 0xff);
	assert_true(got_u == 0xffffffff);

	REJECTS(rd_array, 0x80);       /* fixmap */
	REJECTS(rd_array, 0xde, 0, 1); /* map 16 */
	REJECTS(rd_array, 0xc0);
	REJECTS(rd_array, 0x01);
	REJECTS(rd_array, 0xa1, 'x');
}

static void unsigned_integers(void **state)
{
	(void)state;
	ACCEPTS(rd_uint, 0x00);
	assert_true(got_u == 0);
	ACCEPTS(rd_uint, 0x7f);
	assert_true(got_u == 127);
	ACCEPTS(rd_uint, 0xcc, 0xff);
	assert_true(got_u == 255);
	ACCEPTS(rd_uint, 0xcd, 0x01, 0x00);
	assert_true(got_u == 256);
	ACCEPTS(rd_uint, 0xce, 0x01, 0x00, 0x00, 0x00);
	assert_true(got_u == 0x01000000);
	ACCEPTS(rd_uint, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	assert_true(got_u == UINT64_MAX);

	/* Signed formats, even of non-negative values, and other types. */
	REJECTS(rd_uint, 0xff);
	REJECTS(rd_uint, 0xe0);
	REJECTS(rd_uint, 0xd0, 0x01);
	REJECTS(rd_uint, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1);
	REJECTS(rd_uint, 0xca, 0, 0, 0, 0); /* float 32 */
	REJECTS(rd_uint, 0xc0);
	REJECTS(rd_uint, 0xc3); /* true */
	REJECTS(rd_uint, 0x90);
}

static void signed_integers(void **state)
{
	(void)state;
	ACCEPTS(rd_int, 0x00);
	assert_true(got_i == 0);
	ACCEPTS(rd_int, 0x7f);
	assert_true(got_i == 127);
	ACCEPTS(rd_int, 0xff);
	assert_true(got_i == -1);
	ACCEPTS(rd_int, 0xe0);
	assert_true(got_i == -32);
	ACCEPTS(rd_int, 0xd0, 0x80);
	assert_true(got_i == -128);
	ACCEPTS(rd_int, 0xd0, 0x7f);
	assert_true(got_i == 127);
	ACCEPTS(rd_int, 0xd1, 0x80, 0x00);
	assert_true(got_i == INT16_MIN);
	ACCEPTS(rd_int, 0xd2, 0x80, 0x00, 0x00, 0x00);
	assert_true(got_i == INT32_MIN);
	ACCEPTS(rd_int, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
	assert_true(got_i == INT64_MIN);
	ACCEPTS(rd_int, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe);
	assert_true(got_i == -2);
	ACCEPTS(rd_int, 0xcc, 0xff);
	assert_true(got_i == 255);
	ACCEPTS(rd_int, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	assert_true(got_i == INT64_MAX);

	/* Past INT64_MAX, and other types. */
	REJECTS(rd_int, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0);
	REJECTS(rd_int, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	REJECTS(rd_int, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0); /* float 64 */
	REJECTS(rd_int, 0xc0);
	REJECTS(rd_int, 0xc2); /* false */
	REJECTS(rd_int, 0xa1, '1');
	REJECTS(rd_int, 0x91, 0x01);
}

static void strings(void **state)
{
	static const unsigned char str32[] = {0xdb, 0, 0, 0, 3, 'a', 'b', 'c'};
	struct wire_reader r;

	(void)state;
	max_len = 3;
	ACCEPTS(rd_str, 0xa0);
	assert_int_equal(got_n, 0);
	ACCEPTS(rd_str, 0xa3, 'a', 'b', 'c');
	assert_int_equal(got_n, 3);
	assert_memory_equal(got_p, "abc", 3);
	ACCEPTS(rd_str, 0xd9, 3, 'a', 'b', 'c');
	assert_memory_equal(got_p, "abc", 3);
	ACCEPTS(rd_str, 0xda, 0, 3, 'a', 'b', 'c');
	assert_memory_equal(got_p, "abc", 3);
	accepts(rd_str, str32, sizeof(str32));
	/* A pointer into the buffer, not a copy. */
	assert_ptr_equal(got_p, str32 + 5);
	assert_int_equal(got_n, 3);

	/* Longer than the limit, in every length form. */
	max_len = 2;
	REJECTS(rd_str, 0xa3, 'a', 'b', 'c');
	REJECTS(rd_str, 0xd9, 3, 'a', 'b', 'c');
	REJECTS(rd_str, 0xda, 0, 3, 'a', 'b', 'c');
	REJECTS(rd_str, 0xdb, 0, 0, 0, 3, 'a', 'b', 'c');
	max_len = 0;
	ACCEPTS(rd_str, 0xa0);
	REJECTS(rd_str, 0xa1, 'a');

	/* A declared length past the end, even with no limit. */
	max_len = SIZE_MAX;
	REJECTS(rd_str, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a');
	REJECTS(rd_str, 0xbf, 'a');

	/* Other types. */
	REJECTS(rd_str, 0xc4, 1, 'a'); /* bin 8 */
	REJECTS(rd_str, 0xc0);
	REJECTS(rd_str, 0x01);
	REJECTS(rd_str, 0x91, 0xa0);

	/* The cursor moves past the body only. */
	wire_rd_init(&r, (const unsigned char[]){0xa1, 'x', 0xc0}, 3);
	assert_true(rd_str(&r));
	assert_int_equal(r.pos, 2);
	assert_true(rd_nil(&r));
	assert_true(wire_rd_done(&r));
}

static void binaries(void **state)
{
	static const unsigned char bin8[] = {0xc4, 3, 1, 2, 3};

	(void)state;
	max_len = 3;
	ACCEPTS(rd_bin, 0xc4, 0);
	assert_int_equal(got_n, 0);
	accepts(rd_bin, bin8, sizeof(bin8));
	assert_ptr_equal(got_p, bin8 + 2);
	assert_int_equal(got_n, 3);
	ACCEPTS(rd_bin, 0xc5, 0, 3, 1, 2, 3);
	assert_memory_equal(got_p, bin8 + 2, 3);
	ACCEPTS(rd_bin, 0xc6, 0, 0, 0, 3, 1, 2, 3);
	assert_memory_equal(got_p, bin8 + 2, 3);

	max_len = 2;
	REJECTS(rd_bin, 0xc4, 3, 1, 2, 3);
	REJECTS(rd_bin, 0xc5, 0, 3, 1, 2, 3);
	REJECTS(rd_bin, 0xc6, 0, 0, 0, 3, 1, 2, 3);

	max_len = SIZE_MAX;
	REJECTS(rd_bin, 0xc6, 0xff, 0xff, 0xff, 0xff, 1);
	REJECTS(rd_bin, 0xc5, 0x01, 0x00, 1, 2, 3);

	/* str is not bin. */
	REJECTS(rd_bin, 0xa1, 'a');
	REJECTS(rd_bin, 0xd9, 1, 'a');
	REJECTS(rd_bin, 0xc7, 1, 0, 'a'); /* ext 8 */
	REJECTS(rd_bin, 0xc0);
}

static void nil_and_a_whole_message(void **state)
{
	static const unsigned char msg[] = {0x93, 0x05, 0xc0, 0xc4, 0x01, 0xaa};
	struct wire_reader r;

	(void)state;
	ACCEPTS(rd_nil, 0xc0);
	REJECTS(rd_nil, 0xc2);
	REJECTS(rd_nil, 0x00);
	REJECTS(rd_nil, 0x90);

	/* [5, nil, bin] read in order; a failed read leaves the cursor where
	 * the next attempt can read the value as another type. */
	max_len = 1;
	wire_rd_init(&r, msg, sizeof(msg));
	assert_true(rd_array(&r) && got_u == 3);
	assert_false(rd_nil(&r));
	assert_true(rd_uint(&r) && got_u == 5);
	assert_false(rd_bin(&r));
	assert_true(rd_nil(&r));
	assert_false(rd_nil(&r));
	assert_false(wire_rd_done(&r));
	assert_true(rd_bin(&r));
	assert_ptr_equal(got_p, msg + 5);
	assert_true(wire_rd_done(&r));
	assert_false(rd_byte(&r));
	assert_int_equal(r.pos, sizeof(msg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_input_is_done_and_reads_nothing),
	    cmocka_unit_test(bytes_and_big_endian_integers),
	    cmocka_unit_test(array_headers),
	    cmocka_unit_test(unsigned_integers),
	    cmocka_unit_test(signed_integers),
	    cmocka_unit_test(strings),
	    cmocka_unit_test(binaries),
	    cmocka_unit_test(nil_and_a_whole_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
