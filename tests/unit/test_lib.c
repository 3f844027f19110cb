/* Unit tests of lib/: errors, buffers, time, ids, base32, files and locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/id.h"
#include "lib/sorted.h"

static void err_wrap_prepends_context(void **state)
{
	struct shoal_err err;

	(void)state;
	assert_int_equal(shoal_errf(&err, SHOAL_EINVAL, "token %s", "rejected"), SHOAL_EINVAL);
	shoal_err_wrap(&err, "join %s", "10.0.0.1:4377");
	assert_string_equal(err.msg, "join 10.0.0.1:4377: token rejected");
	assert_int_equal(shoal_errf(NULL, SHOAL_EIO, "ignored"), SHOAL_EIO);
}

static void err_wrap_truncates_safely(void **state)
{
	struct shoal_err err;
	char big[2 * SHOAL_ERR_LEN];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	shoal_errf(&err, SHOAL_EIO, "%s", big);
	shoal_err_wrap(&err, "%s", big);
	assert_int_equal(strlen(err.msg), SHOAL_ERR_LEN - 1);
	shoal_errf(&err, SHOAL_EIO, "inner");
	shoal_err_wrap(&err, "%s", big);
	assert_true(strlen(err.msg) < SHOAL_ERR_LEN);
	assert_memory_equal(err.msg + strlen(err.msg) - 2, ": ", 2);
}

static void buf_grows_and_consumes(void **state)
{
	struct buf b;
	size_t len;

	(void)state;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_appendf(&b, "%03d", i % 1000), 0);
	assert_int_equal(b.len, 3000);
	assert_memory_equal(b.data, "000001002", 9);
	buf_consume(&b, 2997);
	assert_string_equal(b.data, "999");
	buf_consume(&b, 10);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "ab", 2), 0);
	char *p = buf_steal(&b, &len);
	assert_int_equal(len, 2);
	assert_string_equal(p, "ab");
	assert_null(b.data);
	free(p);
	buf_free(&b);
}

static void clock_round_trips_rfc3339(void **state)
{
	char text[64];
	int64_t ns;

	(void)state;
	clock_format_rfc3339(1465331471853781916LL, text, sizeof(text));
	assert_string_equal(text, "2016-06-07T20:31:11.853781916Z");
	assert_int_equal(clock_parse_rfc3339(text, &ns), 0);
	assert_true(ns == 1465331471853781916LL);
	assert_int_equal(clock_parse_rfc3339("2016-06-07T20:31:11Z", &ns), 0);
	assert_true(ns == 1465331471000000000LL);
	assert_int_equal(clock_parse_rfc3339("2016-06-07T20:31:11.5Z", &ns), 0);
	assert_true(ns == 1465331471500000000LL);
	clock_format_rfc3339(0, text, sizeof(text));
	assert_string_equal(text, "1970-01-01T00:00:00.000000000Z");
	assert_int_equal(clock_parse_rfc3339("2016-13-07T20:31:11Z", &ns), -1);
	assert_int_equal(clock_parse_rfc3339("4052-11-25T10:00:00Z", &ns), -1);
	assert_int_equal(clock_parse_rfc3339("0001-01-01T00:00:00Z", &ns), -1);
	assert_int_equal(clock_parse_rfc3339("2261-12-31T23:59:59.999999999Z", &ns), 0);
	assert_int_equal(clock_parse_rfc3339("2016-06-07T20:31:11+01:00", &ns), -1);
	assert_int_equal(clock_parse_rfc3339("2016-06-07T20:31:11.Z", &ns), -1);
	assert_int_equal(clock_parse_rfc3339("yesterday", &ns), -1);
}

static void ids_are_docker_shaped_and_distinct(void **state)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];

	(void)state;
	id_new(a);
	id_new(b);
	assert_int_equal(strlen(a), 25);
	assert_true(id_is_valid_prefix(a));
	assert_string_not_equal(a, b);
	assert_false(id_is_valid_prefix(""));
	assert_false(id_is_valid_prefix("ABC"));
	assert_false(id_is_valid_prefix("abc/def"));
	assert_true(id_is_valid_prefix("abc"));
}

static void base32_matches_rfc4648(void **state)
{
	char out[32];

	(void)state;
	/* RFC 4648 test vectors, lower case, no padding. */
	assert_int_equal(base32_encode((const unsigned char *)"foobar", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "mzxw6ytboi");
	assert_int_equal(base32_encode((const unsigned char *)"f", 1, out, sizeof(out)), 0);
	assert_string_equal(out, "my");
	assert_int_equal(base32_encode((const unsigned char *)"foobar", 6, out, 10), -1);
}

static const char *str_at(const void *items, size_t i)
{
	return ((const char *const *)items)[i];
}

static void sorted_find_hits_and_insertion_points(void **state)
{
	static const char *const keys[] = {"b", "d", "f", "h"};
	static const struct {
		const char *key;
		size_t pos;
		bool found;
	} cases[] = {{"a", 0, false}, {"b", 0, true}, {"c", 1, false}, {"d", 1, true},
		     {"g", 3, false}, {"h", 3, true}, {"z", 4, false}};
	bool found;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(sorted_find(keys, 4, str_at, cases[i].key, &found), cases[i].pos);
		assert_int_equal(found, cases[i].found);
	}
	assert_int_equal(sorted_find(keys, 0, str_at, "b", &found), 0);
	assert_false(found);
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shoal-test-lib.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
	(void)state;
	return fs_rm_rf(tmpdir, NULL);
}

static void fs_atomic_write_and_bounded_read(void **state)
{
	char path[128], *data = NULL;
	size_t len = 0;
	struct stat st;
	struct shoal_err err;

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b/file", tmpdir);
	snprintf(path + strlen(tmpdir), sizeof(path) - strlen(tmpdir), "/a/b");
	assert_int_equal(fs_mkdir_p(path, 0700, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	strcat(path, "/file");
	assert_int_equal(fs_write_atomic(path, "hello", 5, 0600, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fs_read_all(path, 100, &data, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	free(data);
	assert_int_equal(fs_read_all(path, 4, &data, &len, &err), SHOAL_ETOOBIG);
	strcat(path, ".missing");
	assert_int_equal(fs_read_all(path, 4, &data, &len, &err), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "does not exist"));
}

static void fs_lock_is_exclusive(void **state)
{
	char path[128];
	int fd1 = -1, fd2 = -1;
	struct shoal_err err;

	(void)state;
	snprintf(path, sizeof(path), "%s/lock", tmpdir);
	assert_int_equal(fs_lock(path, &fd1, &err), 0);
	assert_int_equal(fs_lock(path, &fd2, &err), SHOAL_EBUSY);
	assert_non_null(strstr(err.msg, "locked by another process"));
	close(fd1);
	assert_int_equal(fs_lock(path, &fd2, &err), 0);
	close(fd2);
}

static void fs_rm_rf_removes_trees(void **state)
{
	char path[128];
	struct shoal_err err;

	(void)state;
	snprintf(path, sizeof(path), "%s/tree/x/y", tmpdir);
	assert_int_equal(fs_mkdir_p(path, 0755, &err), 0);
	snprintf(path, sizeof(path), "%s/tree/x/file", tmpdir);
	assert_int_equal(fs_write_atomic(path, "z", 1, 0644, &err), 0);
	snprintf(path, sizeof(path), "%s/tree", tmpdir);
	assert_int_equal(fs_rm_rf(path, &err), 0);
	assert_false(fs_exists(path));
	assert_int_equal(fs_rm_rf(path, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(err_wrap_prepends_context),
	    cmocka_unit_test(err_wrap_truncates_safely),
	    cmocka_unit_test(buf_grows_and_consumes),
	    cmocka_unit_test(clock_round_trips_rfc3339),
	    cmocka_unit_test(ids_are_docker_shaped_and_distinct),
	    cmocka_unit_test(base32_matches_rfc4648),
	    cmocka_unit_test(sorted_find_hits_and_insertion_points),
	    cmocka_unit_test(fs_atomic_write_and_bounded_read),
	    cmocka_unit_test(fs_lock_is_exclusive),
	    cmocka_unit_test(fs_rm_rf_removes_trees),
	};
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
