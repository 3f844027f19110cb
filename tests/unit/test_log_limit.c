/* Unit tests of lib/log_limit.c on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/log_limit.h"

static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* log_limit_pass() of a line about @addr of kind @what, the note in @note. */
static bool pass(struct log_limit *l, const char *addr, const char *what, char *note, size_t len)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "handshake with %s: %s", addr, what);
	return log_limit_pass(l, msg, note, len);
}

static void key_strips_words_with_digits(void **state)
{
	char key[LOG_LIMIT_KEY_LEN], small[8];

	(void)state;
	log_limit_key("handshake with 10.1.0.4:40122: the peer announced a frame of 8388608 "
		      "bytes, over the limit of 4124",
		      key, sizeof(key));
	assert_string_equal(key, "handshake with # the peer announced a frame of # bytes, over "
				 "the limit of #");
	log_limit_key("from [fe80::1]:4377: x", key, sizeof(key));
	assert_string_equal(key, "from # x");
	log_limit_key("no numbers here", key, sizeof(key));
	assert_string_equal(key, "no numbers here");
	log_limit_key("a rather long line", small, sizeof(small));
	assert_string_equal(small, "a rathe");
}

static void burst_per_kind_then_counted(void **state)
{
	struct log_limit l;
	char note[128];

	(void)state;
	fake_now = 1000;
	log_limit_init(&l, 10000, 3, 100, fake_clock, NULL);
	for (int i = 0; i < 3; i++) {
		assert_true(pass(&l, "10.0.0.4:1000", "timed out", note, sizeof(note)));
		assert_string_equal(note, "");
	}
	/* Another address, same kind: suppressed. */
	fake_now = 2500;
	assert_false(pass(&l, "10.0.0.5:2000", "timed out", note, sizeof(note)));
	assert_false(pass(&l, "10.0.0.4:1001", "timed out", note, sizeof(note)));
	/* Another kind is logged at once. */
	assert_true(pass(&l, "10.0.0.4:1002", "malformed HELLO", note, sizeof(note)));
	assert_string_equal(note, "");
	/* Just before the window ends: still suppressed. */
	fake_now = 10999;
	assert_false(pass(&l, "10.0.0.4:1003", "timed out", note, sizeof(note)));
	/* A new window: logged, with the count since the first suppressed. */
	fake_now = 11000;
	assert_true(pass(&l, "10.0.0.4:1004", "timed out", note, sizeof(note)));
	assert_string_equal(note, " (and 3 more like it in the last 9 s)");
	assert_true(pass(&l, "10.0.0.4:1005", "timed out", note, sizeof(note)));
	assert_string_equal(note, "");
}

static void total_bounds_many_kinds(void **state)
{
	struct log_limit l;
	char note[128], what[32];
	unsigned logged = 0;

	(void)state;
	fake_now = 0;
	log_limit_init(&l, 1000, 5, 4, fake_clock, NULL);
	/* Three kinds, five lines each: repeats stop at the total of 4, but
	 * the first line of each kind is logged. */
	for (int i = 0; i < 5; i++)
		logged += pass(&l, "10.0.0.4:1", "kind a", note, sizeof(note));
	assert_int_equal(logged, 4);
	logged += pass(&l, "10.0.0.4:1", "kind b", note, sizeof(note));
	logged += pass(&l, "10.0.0.4:1", "kind b", note, sizeof(note));
	assert_int_equal(logged, 5);
	for (int i = 0; i < 5; i++)
		logged += pass(&l, "10.0.0.4:1", "kind c", note, sizeof(note));
	assert_int_equal(logged, 6);
	/* Ever new kinds: LOG_LIMIT_SLOTS over the total, no more. */
	for (int i = 0; i < 3 * LOG_LIMIT_SLOTS; i++) {
		fake_now = 1 + (uint64_t)i;
		snprintf(what, sizeof(what), "kind %c%c", 'a' + i % 26, 'b' + i / 26);
		logged += pass(&l, "10.0.0.4:1", what, note, sizeof(note));
	}
	assert_int_equal(logged, 4 + LOG_LIMIT_SLOTS);
	/* The slots went, least recently seen first, to the new kinds: a (1
	 * suppressed, told by the last new kind logged), b and c (1 + 4), the
	 * new kinds logged, then the suppressed ones up to the 64th (34). A new
	 * kind in the next window replaces the 65th (1) and tells of 40. */
	fake_now = 1000;
	assert_true(pass(&l, "10.0.0.4:1", "kind z", note, sizeof(note)));
	assert_string_equal(note, " (and 40 more of other kinds)");
	/* Kind b was forgotten: logged again as a new kind, with no count of
	 * its own, replacing the 66th (1). */
	assert_true(pass(&l, "10.0.0.4:1", "kind b", note, sizeof(note)));
	assert_string_equal(note, " (and 1 more of other kinds)");
}

static void slots_replace_least_recent(void **state)
{
	struct log_limit l;
	char note[128], what[32];

	(void)state;
	fake_now = 0;
	log_limit_init(&l, 100000, 1, 1000, fake_clock, NULL);
	/* Kind "old": logged once, then suppressed twice. */
	assert_true(pass(&l, "10.0.0.4:1", "old", note, sizeof(note)));
	assert_false(pass(&l, "10.0.0.4:1", "old", note, sizeof(note)));
	assert_false(pass(&l, "10.0.0.4:1", "old", note, sizeof(note)));
	/* Fill every other slot, more recently seen: "old" is the one replaced
	 * by the last, and its count carried as "other kinds". */
	for (int i = 0; i < LOG_LIMIT_SLOTS - 1; i++) {
		fake_now++;
		snprintf(what, sizeof(what), "kind %c%c", 'a' + i % 26, 'a' + i / 26);
		assert_true(pass(&l, "10.0.0.4:1", what, note, sizeof(note)));
		assert_string_equal(note, "");
	}
	fake_now++;
	assert_true(pass(&l, "10.0.0.4:1", "new", note, sizeof(note)));
	assert_string_equal(note, " (and 2 more of other kinds)");
	/* "old" is forgotten: logged again at once, within the window. */
	fake_now++;
	assert_true(pass(&l, "10.0.0.4:1", "old", note, sizeof(note)));
	assert_string_equal(note, "");
	/* That replaced the least recent, kind "aa": "new" is still limited. */
	assert_false(pass(&l, "10.0.0.4:1", "new", note, sizeof(note)));
}

static void log_limited_writes_at_most_burst(void **state)
{
	struct log_limit l;

	(void)state;
	fake_now = 0;
	log_limit_init(&l, 1000, 2, 10, fake_clock, NULL);
	log_setup(LOG_WARN, LOG_FORMAT_TEXT);
	for (int i = 0; i < 5; i++)
		log_limited(&l, LOG_WARN, "test", "refused %d.0.0.1:1: timed out", i);
	/* Two logged, three counted in the slot of that kind. */
	assert_int_equal(l.logged, 2);
	for (size_t i = 0; i < LOG_LIMIT_SLOTS; i++)
		if (l.slots[i].used)
			assert_int_equal(l.slots[i].suppressed, 3);
	/* Below the level: nothing counted at all. */
	log_limited(&l, LOG_DEBUG, "test", "refused 9.0.0.1:1: timed out");
	assert_int_equal(l.logged, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_strips_words_with_digits),
	    cmocka_unit_test(burst_per_kind_then_counted),
	    cmocka_unit_test(total_bounds_many_kinds),
	    cmocka_unit_test(slots_replace_least_recent),
	    cmocka_unit_test(log_limited_writes_at_most_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
