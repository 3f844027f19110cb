/* Unit tests of runtime/logfile: json-file bytes, rotation, reading, following, frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "runtime/logfile.h"

#define PATHF(buf, ...) assert_true((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) < sizeof(buf))

struct fx {
	char dir[64];
	char path[128];
	uint64_t t0; /* 2026-11-25T10:00:00Z */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int64_t t0;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/shoal-logfile-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	PATHF(f->path, "%s/ctr-json.log", f->dir);
	assert_int_equal(clock_parse_rfc3339("2026-11-25T10:00:00Z", &t0), 0);
	f->t0 = (uint64_t)t0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fs_rm_rf(f->dir, NULL), 0);
	free(f);
	return 0;
}

/* The whole of @path as a NUL-terminated heap string. */
static char *slurp(const char *path, size_t *len)
{
	char *data = NULL;
	size_t n = 0;

	assert_int_equal(fs_read_all(path, 64u << 20, &data, &n, NULL), 0);
	if (len != NULL)
		*len = n;
	return data != NULL ? data : strdup("");
}

static void expect_file(const char *path, const char *want)
{
	char *got = slurp(path, NULL);

	assert_string_equal(got, want);
	free(got);
}

static struct logfile *open_log(const struct fx *f, uint64_t max_size, int max_file)
{
	struct logfile *lf = NULL;
	struct shoal_err err = {{0}};

	assert_int_equal(logfile_open(f->path, max_size, max_file, &lf, &err), 0);
	return lf;
}

static void put(struct logfile *lf, enum logfile_stream s, const char *data, size_t len,
		uint64_t ns)
{
	struct shoal_err err = {{0}};

	assert_int_equal(logfile_write(lf, s, data, len, ns, &err), 0);
}

#define PUTS(lf, s, str, ns) put(lf, s, str, strlen(str), ns)

/* ---- exact bytes ---- */

static void test_escapes(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 1u << 20, 1);
	const char in[] = "a\"b\\c\t<x>&y\x01\x1f\x7f/\n";

	put(lf, LOGFILE_STDOUT, in, sizeof(in) - 1, f->t0 + 123456789);
	PUTS(lf, LOGFILE_STDERR, "cr\r\n", f->t0 + 120000000);
	PUTS(lf, LOGFILE_STDOUT, "zero\n", f->t0);
	logfile_close(lf);
	expect_file(
	    f->path,
	    "{\"log\":\"a\\\"b\\\\c\\t\\u003cx\\u003e\\u0026y\\u0001\\u001f\x7f/\\n\","
	    "\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:00.123456789Z\"}\n"
	    "{\"log\":\"cr\\r\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-25T10:00:00.12Z\"}\n"
	    "{\"log\":\"zero\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:00Z\"}\n");
}

static void test_utf8_repair(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 1u << 20, 1);
	/* valid: é € 😀; invalid: lone 0xff, truncated 0xc3 before '(', a UTF-16
	 * surrogate, an overlong '/', a sequence cut at the end; U+2028. */
	const char in[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xff|\xc3(|\xed\xa0\x80|\xc0\xaf|"
			  "\xe2\x80\xa8|\xe2\x82\n";

	put(lf, LOGFILE_STDOUT, in, sizeof(in) - 1, f->t0 + 1000);
	logfile_close(lf);
	expect_file(f->path, "{\"log\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\\ufffd|\\ufffd(|"
			     "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\\u2028|\\ufffd\\ufffd\\n\","
			     "\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:00.000001Z\"}\n");
}

static void test_partial_and_flush(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 1u << 20, 1);
	struct shoal_err err = {{0}};

	PUTS(lf, LOGFILE_STDOUT, "ab", f->t0 + 1);
	PUTS(lf, LOGFILE_STDERR, "err", f->t0 + 2);
	expect_file(f->path, ""); /* nothing whole yet */
	PUTS(lf, LOGFILE_STDOUT, "c\nd", f->t0 + 3);
	assert_int_equal(logfile_flush(lf, f->t0 + 4, &err), 0);
	assert_int_equal(logfile_flush(lf, f->t0 + 5, &err), 0); /* nothing held: no-op */
	PUTS(lf, LOGFILE_STDOUT, "tail", f->t0 + 6);
	logfile_close(lf); /* flushes "tail" */
	char *got = slurp(f->path, NULL);
	const char *want =
	    "{\"log\":\"abc\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:00.000000003Z\"}"
	    "\n"
	    "{\"log\":\"d\",\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:00.000000004Z\"}\n"
	    "{\"log\":\"err\",\"stream\":\"stderr\",\"time\":\"2026-11-25T10:00:00.000000004Z\"}\n";
	assert_memory_equal(got, want, strlen(want));
	assert_non_null(strstr(got + strlen(want), "{\"log\":\"tail\",\"stream\":\"stdout\""));
	free(got);
}

struct collected {
	size_t n;
	char *text[64];
	size_t len[64];
	enum logfile_stream stream[64];
	uint64_t time[64];
	size_t stop_after; /* 0: never */
};

static int collect(void *arg, const struct logfile_entry *e)
{
	struct collected *c = arg;

	assert_true(c->n < ARRAY_SIZE(c->text));
	c->text[c->n] = malloc(e->len + 1);
	assert_non_null(c->text[c->n]);
	memcpy(c->text[c->n], e->text, e->len);
	c->text[c->n][e->len] = '\0';
	c->len[c->n] = e->len;
	c->stream[c->n] = e->stream;
	c->time[c->n] = e->time_ns;
	c->n++;
	return c->stop_after != 0 && c->n == c->stop_after;
}

static void collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->text[i]);
	memset(c, 0, sizeof(*c));
}

static const struct logfile_query q_all = {.stdout_ = true, .stderr_ = true, .tail = -1};

static void test_long_line_cut(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 1u << 20, 1);
	size_t n = 2 * LOGFILE_MAX_LINE + 100;
	char *line = malloc(n + 1);
	struct collected c = {0};

	assert_non_null(line);
	for (size_t i = 0; i < n; i++)
		line[i] = (char)('a' + i % 26);
	line[n] = '\n';
	/* In two writes, split inside the first chunk. */
	put(lf, LOGFILE_STDOUT, line, 1000, f->t0);
	put(lf, LOGFILE_STDOUT, line + 1000, n + 1 - 1000, f->t0);
	logfile_close(lf);
	assert_int_equal(logfile_read(f->path, &q_all, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.len[0], LOGFILE_MAX_LINE);
	assert_int_equal(c.len[1], LOGFILE_MAX_LINE);
	assert_int_equal(c.len[2], 101);
	assert_memory_equal(c.text[0], line, LOGFILE_MAX_LINE);
	assert_memory_equal(c.text[1], line + LOGFILE_MAX_LINE, LOGFILE_MAX_LINE);
	assert_memory_equal(c.text[2], line + 2 * LOGFILE_MAX_LINE, 101);
	assert_int_equal(c.text[2][100], '\n');
	collected_free(&c);
	free(line);
}

/* ---- rotation ---- */

static uint64_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return UINT64_MAX;
	return (uint64_t)st.st_size;
}

/* One entry is 68 bytes: {"log":"line NN\n","stream":"stdout","time":"2026-11-25T10:00:NNZ"}\n */
#define ENTRY_LEN 68u

static void write_numbered(struct fx *f, struct logfile *lf, int from, int to)
{
	for (int i = from; i < to; i++) {
		char s[32];
		snprintf(s, sizeof(s), "line %02d\n", i);
		/* Alternate streams; one second apart. */
		put(lf, i % 2 ? LOGFILE_STDERR : LOGFILE_STDOUT, s, strlen(s),
		    f->t0 + (uint64_t)i * 1000000000u);
	}
}

static void test_entry_len(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 1u << 20, 1);

	write_numbered(f, lf, 10, 11);
	logfile_close(lf);
	expect_file(f->path, "{\"log\":\"line 10\\n\",\"stream\":\"stdout\","
			     "\"time\":\"2026-11-25T10:00:10Z\"}\n");
	assert_int_equal(file_size(f->path), ENTRY_LEN);
}

static void test_rotate_three(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 3 * ENTRY_LEN, 3); /* exactly 3 entries per file */
	char p1[160], p2[160], p3[160];
	struct collected c = {0};

	PATHF(p1, "%s.1", f->path);
	PATHF(p2, "%s.2", f->path);
	PATHF(p3, "%s.3", f->path);
	write_numbered(f, lf, 0, 3);
	assert_int_equal(file_size(f->path), 3 * ENTRY_LEN);
	assert_int_equal(file_size(p1), UINT64_MAX);
	write_numbered(f, lf, 3, 4); /* 4th does not fit: rotate */
	assert_int_equal(file_size(f->path), ENTRY_LEN);
	assert_int_equal(file_size(p1), 3 * ENTRY_LEN);
	write_numbered(f, lf, 4, 11);
	logfile_close(lf);
	/* PATH: 9 10; PATH.1: 6 7 8; PATH.2: 3 4 5; 0 1 2 dropped. */
	assert_int_equal(file_size(f->path), 2 * ENTRY_LEN);
	assert_int_equal(file_size(p1), 3 * ENTRY_LEN);
	assert_int_equal(file_size(p2), 3 * ENTRY_LEN);
	assert_int_equal(file_size(p3), UINT64_MAX);
	assert_int_equal(logfile_read(f->path, &q_all, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 8);
	for (size_t i = 0; i < c.n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "line %02zu\n", i + 3);
		assert_string_equal(c.text[i], want);
		assert_int_equal(c.stream[i], (i + 3) % 2 ? LOGFILE_STDERR : LOGFILE_STDOUT);
		assert_int_equal(c.time[i], f->t0 + (i + 3) * 1000000000u);
	}
	collected_free(&c);
}

static void test_rotate_one(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 2 * ENTRY_LEN + 10, 1);
	char p1[160];
	struct collected c = {0};

	PATHF(p1, "%s.1", f->path);
	write_numbered(f, lf, 0, 5); /* 0 1 | 2 3 | 4 */
	logfile_close(lf);
	assert_int_equal(file_size(f->path), ENTRY_LEN);
	assert_int_equal(file_size(p1), UINT64_MAX);
	assert_int_equal(logfile_read(f->path, &q_all, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.text[0], "line 04\n");
	collected_free(&c);
}

static void test_big_entry_alone(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 50, 2); /* smaller than any entry */
	char p1[160];

	PATHF(p1, "%s.1", f->path);
	write_numbered(f, lf, 0, 1);
	assert_int_equal(file_size(f->path), ENTRY_LEN); /* empty file: no rotation */
	write_numbered(f, lf, 1, 2);
	logfile_close(lf);
	assert_int_equal(file_size(f->path), ENTRY_LEN);
	assert_int_equal(file_size(p1), ENTRY_LEN);
}

static void test_reopen_appends(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 3 * ENTRY_LEN, 3);
	char p1[160];

	PATHF(p1, "%s.1", f->path);
	write_numbered(f, lf, 0, 2);
	logfile_close(lf);
	lf = open_log(f, 3 * ENTRY_LEN, 3);
	write_numbered(f, lf, 2, 4); /* the size carried over: 3 fit, then rotate */
	logfile_close(lf);
	assert_int_equal(file_size(f->path), ENTRY_LEN);
	assert_int_equal(file_size(p1), 3 * ENTRY_LEN);
}

/* ---- reading ---- */

static void test_read_filters(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 4 * ENTRY_LEN, 4);
	struct collected c = {0};
	struct logfile_query q = q_all;
	struct logfile_pos pos = {0, 0};

	write_numbered(f, lf, 0, 12); /* 0-3 in .2, 4-7 in .1, 8-11 in PATH */
	logfile_close(lf);

	q.tail = 3;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, &pos, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[0], "line 09\n");
	assert_string_equal(c.text[2], "line 11\n");
	assert_int_equal(pos.offset, 4 * ENTRY_LEN);
	collected_free(&c);

	/* tail over file boundaries, stdout only: 6 8 10 */
	q.stderr_ = false;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[0], "line 06\n");
	assert_string_equal(c.text[1], "line 08\n");
	assert_string_equal(c.text[2], "line 10\n");
	collected_free(&c);

	/* stderr, since 3 s until 7 s (inclusive): 3 5 7 */
	q = q_all;
	q.stdout_ = false;
	q.since_ns = f->t0 + 3000000000u;
	q.until_ns = f->t0 + 7000000000u;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[0], "line 03\n");
	assert_string_equal(c.text[2], "line 07\n");
	collected_free(&c);

	/* tail 0: nothing, but the offset for following */
	q = q_all;
	q.tail = 0;
	pos.offset = 1;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, &pos, NULL), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(pos.offset, 4 * ENTRY_LEN);

	/* tail larger than everything; the callback stops after 2 */
	q.tail = 100;
	c.stop_after = 2;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.text[0], "line 00\n");
	collected_free(&c);
}

static void test_read_bad_input(void **state)
{
	struct fx *f = *state;
	struct logfile_query q = q_all;
	struct shoal_err err = {{0}};
	struct collected c = {0};
	struct logfile *lf = NULL;

	assert_int_equal(logfile_read(f->path, &q, collect, &c, NULL, &err), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "ctr-json.log"));
	q.stdout_ = q.stderr_ = false;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, NULL, &err), SHOAL_EINVAL);
	assert_int_equal(logfile_open(f->path, 0, 3, &lf, &err), SHOAL_EINVAL);
	assert_int_equal(logfile_open(f->path, 100, 0, &lf, &err), SHOAL_EINVAL);
	assert_null(lf);
	assert_int_equal(file_size(f->path), UINT64_MAX); /* nothing created */
}

static void write_raw(const char *path, const char *data, size_t len, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0640);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_torn_and_garbage(void **state)
{
	struct fx *f = *state;
	const char good1[] =
	    "{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:01Z\"}\n";
	const char good2[] =
	    "{\"log\":\"two\\u0000\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-25T10:00:02.5Z\","
	    "\"attrs\":{\"a\":\"b\"}}\n";
	const char bad[] =
	    "not json\n{\"log\":1,\"stream\":\"stdout\",\"time\":\"x\"}\n"
	    "{\"log\":\"x\",\"stream\":\"stdin\",\"time\":\"2026-11-25T10:00:01Z\"}\n";
	const char torn[] = "{\"log\":\"thr";
	size_t huge = (2u << 20) + 5;
	char *big = malloc(huge);
	struct collected c = {0};
	struct logfile *lf;
	struct logfile_pos pos = {0, 0};

	assert_non_null(big);
	memset(big, 'a', huge);
	big[huge - 1] = '\n';
	write_raw(f->path, good1, strlen(good1), O_TRUNC);
	write_raw(f->path, big, huge, O_APPEND); /* a 2 MiB line: skipped, never loaded */
	write_raw(f->path, bad, strlen(bad), O_APPEND);
	write_raw(f->path, good2, strlen(good2), O_APPEND);
	write_raw(f->path, torn, strlen(torn), O_APPEND);
	free(big);
	assert_int_equal(logfile_read(f->path, &q_all, collect, &c, &pos, NULL), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.text[0], "one\n");
	assert_int_equal(c.len[1], 5);
	assert_memory_equal(c.text[1], "two\0\n", 5);
	assert_int_equal(c.stream[1], LOGFILE_STDERR);
	assert_int_equal(c.time[1], f->t0 + 2500000000u);
	/* the offset stops before the torn line */
	assert_int_equal(pos.offset, strlen(good1) + huge + strlen(bad) + strlen(good2));
	collected_free(&c);

	/* Reopening ends the torn line, so new entries read fine. */
	lf = open_log(f, 10u << 20, 1);
	PUTS(lf, LOGFILE_STDOUT, "four\n", f->t0 + 4000000000u);
	logfile_close(lf);
	assert_int_equal(logfile_read(f->path, &q_all, collect, &c, NULL, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[2], "four\n");
	collected_free(&c);
}

static void test_parse_line(void **state)
{
	struct buf scratch;
	struct logfile_entry e;
	struct shoal_err err = {{0}};
	const char ok[] = "{\"log\":\"\\u003cb\\u003e\\ufffd\",\"stream\":\"stderr\","
			  "\"time\":\"2026-11-25T10:00:00.000000001Z\"}";
	const char dup[] = "{\"log\":\"a\",\"log\":\"b\",\"stream\":\"stderr\","
			   "\"time\":\"2026-11-25T10:00:00Z\"}";
	const char notime[] = "{\"log\":\"a\",\"stream\":\"stderr\"}";

	(void)state;
	buf_init(&scratch);
	assert_int_equal(logfile_parse_line(ok, strlen(ok), &scratch, &e, &err), 0);
	assert_int_equal(e.len, 6);
	assert_memory_equal(e.text, "<b>\xef\xbf\xbd", 6);
	assert_int_equal(e.stream, LOGFILE_STDERR);
	assert_int_equal(e.time_ns % 1000000000u, 1);
	assert_int_equal(logfile_parse_line(dup, strlen(dup), &scratch, &e, &err), SHOAL_EPROTO);
	assert_int_equal(logfile_parse_line(notime, strlen(notime), &scratch, &e, &err),
			 SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "time"));
	buf_free(&scratch);
}

/* ---- following ---- */

static void test_follow_rotation(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 3 * ENTRY_LEN, 3);
	struct collected c = {0};
	struct logfile_pos pos = {0, 0};
	const char rest[] = "ne\",\"stream\":\"stdout\",\"time\":\"2026-11-25T10:00:05Z\"}\n";
	char half[32];

	write_numbered(f, lf, 0, 2);
	assert_int_equal(logfile_read(f->path, &q_all, collect, &c, &pos, NULL), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(pos.offset, 2 * ENTRY_LEN);
	collected_free(&c);

	/* Nothing new. */
	assert_int_equal(logfile_read_from(f->path, &q_all, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 0);
	assert_int_not_equal(pos.ino, 0);

	/* 2 fills PATH, 3 4 rotate it to PATH.1: 2 must not be lost. */
	write_numbered(f, lf, 2, 5);
	assert_int_equal(logfile_read_from(f->path, &q_all, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[0], "line 02\n");
	assert_string_equal(c.text[1], "line 03\n");
	assert_string_equal(c.text[2], "line 04\n");
	assert_int_equal(pos.offset, 2 * ENTRY_LEN);
	collected_free(&c);

	/* A line being written (half of it on disk) is not passed yet. */
	snprintf(half, sizeof(half), "{\"log\":\"li");
	write_raw(f->path, half, strlen(half), O_APPEND);
	assert_int_equal(logfile_read_from(f->path, &q_all, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(pos.offset, 2 * ENTRY_LEN);
	write_raw(f->path, rest, strlen(rest), O_APPEND);
	assert_int_equal(logfile_read_from(f->path, &q_all, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.text[0], "line");
	collected_free(&c);
	logfile_close(lf);
}

/* A reader that stops every 3 entries and goes on from where it stopped
 * sees every entry once, in order, across rotations in between. */
static void test_read_in_pages(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 4 * ENTRY_LEN, 4);
	struct collected c = {0};
	struct logfile_pos pos = {0, 0};
	struct logfile_query q = q_all;

	write_numbered(f, lf, 0, 10); /* 0-3 in .2, 4-7 in .1, 8-9 in PATH */
	q.tail = 9;
	c.stop_after = 3;
	assert_int_equal(logfile_read(f->path, &q, collect, &c, &pos, NULL), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.text[0], "line 01\n");
	assert_string_equal(c.text[2], "line 03\n");
	c.stop_after = 6;
	assert_int_equal(logfile_read_from(f->path, &q, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 6);
	assert_string_equal(c.text[3], "line 04\n");
	assert_string_equal(c.text[5], "line 06\n");
	/* 10 11 fill PATH, 12 13 rotate: 0-3 to .3, 4-7 (the reader's) to .2. */
	write_numbered(f, lf, 10, 14);
	c.stop_after = 0;
	assert_int_equal(logfile_read_from(f->path, &q, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 13);
	for (size_t i = 0; i < c.n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "line %02zu\n", i + 1);
		assert_string_equal(c.text[i], want);
	}
	collected_free(&c);
	/* Nothing new: nothing read, the position stays at the end. */
	assert_int_equal(logfile_read_from(f->path, &q, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(pos.offset, 2 * ENTRY_LEN);
	/* A position whose file is gone starts at the oldest file. */
	pos.ino = 1;
	assert_int_equal(logfile_read_from(f->path, &q, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 14);
	assert_string_equal(c.text[0], "line 00\n");
	collected_free(&c);
	logfile_close(lf);
}

static void test_follow_truncate(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 2 * ENTRY_LEN, 1);
	struct collected c = {0};
	struct logfile_pos pos = {0, 0};
	struct logfile_query q = q_all;

	write_numbered(f, lf, 0, 2);
	assert_int_equal(logfile_read(f->path, &q, collect, &c, &pos, NULL), 0);
	collected_free(&c);
	write_numbered(f, lf, 2, 3); /* truncates, then 2 */
	q.stdout_ = false;	     /* 2 is stdout: filtered, but the offset moves */
	assert_int_equal(logfile_read_from(f->path, &q, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(pos.offset, ENTRY_LEN);
	write_numbered(f, lf, 3, 4);
	assert_int_equal(logfile_read_from(f->path, &q, &pos, collect, &c, NULL), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.text[0], "line 03\n");
	collected_free(&c);
	logfile_close(lf);
}

struct notified {
	int n;
};

static void on_notify(void *arg)
{
	((struct notified *)arg)->n++;
}

static void test_notify(void **state)
{
	struct fx *f = *state;
	struct logfile *lf = open_log(f, 1u << 20, 1);
	struct notified n = {0};

	logfile_set_notify(lf, on_notify, &n);
	PUTS(lf, LOGFILE_STDOUT, "a\nb\nc", f->t0);
	assert_int_equal(n.n, 2);
	logfile_close(lf);
	assert_int_equal(n.n, 3);
}

/* ---- frames ---- */

static void test_frame(void **state)
{
	struct fx *f = *state;
	struct logfile_entry e = {
	    .stream = LOGFILE_STDERR, .time_ns = f->t0 + 5, .text = "hi\n", .len = 3};
	struct buf b;
	const char want_ts[] = "2026-11-25T10:00:00.000000005Z k=v hi\n";
	char *big;

	buf_init(&b);
	assert_int_equal(logfile_frame(&b, &e, false, NULL), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "\x02\x00\x00\x00\x00\x00\x00\x03hi\n", 11);
	b.len = 0;
	e.stream = LOGFILE_STDOUT;
	assert_int_equal(logfile_frame(&b, &e, true, "k=v "), 0);
	assert_int_equal(b.len, 8 + strlen(want_ts));
	assert_memory_equal(b.data, "\x01\x00\x00\x00\x00\x00\x00\x26", 8);
	assert_memory_equal(b.data + 8, want_ts, strlen(want_ts));
	/* a big payload: the length spans several bytes */
	b.len = 0;
	e.len = 0x10203;
	big = calloc(1, e.len);
	assert_non_null(big);
	e.text = big;
	assert_int_equal(logfile_frame(&b, &e, false, NULL), 0);
	assert_memory_equal(b.data, "\x01\x00\x00\x00\x00\x01\x02\x03", 8);
	free(big);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_utf8_repair, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partial_and_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_line_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entry_len, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotate_three, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotate_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_entry_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_appends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_and_garbage, setup, teardown),
	    cmocka_unit_test(test_parse_line),
	    cmocka_unit_test_setup_teardown(test_follow_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_in_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_follow_truncate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_frame, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
