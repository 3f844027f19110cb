/* Rate limiting for log lines that outsiders can provoke (refused connections,
 * datagrams that do not unseal): each kind of line is logged a few times per
 * window, the rest counted and reported with the next line of that kind. */
#ifndef SHOAL_LIB_LOG_LIMIT_H
#define SHOAL_LIB_LOG_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

#define LOG_LIMIT_SLOTS	  32  /* kinds of line tracked at once (least recently seen replaced) */
#define LOG_LIMIT_KEY_LEN 128 /* bytes of a kind's key kept (longer keys are cut) */

struct log_limit_slot {
	bool used;
	char key[LOG_LIMIT_KEY_LEN];
	uint64_t window_start;	   /* ms, when this kind's current window began */
	unsigned logged;	   /* lines logged in the current window */
	uint64_t suppressed;	   /* lines not logged since the last one logged */
	uint64_t first_suppressed; /* ms, the first of those */
	uint64_t last_seen;	   /* ms, for replacement */
};

/* A limiter; the caller owns it (embed it, no allocation). Memory is fixed:
 * LOG_LIMIT_SLOTS kinds. */
struct log_limit {
	uint64_t window_ms;
	unsigned burst;		       /* lines of one kind per window */
	unsigned total;		       /* lines of all kinds per window (with many kinds) */
	uint64_t (*now_ms)(void *arg); /* a monotonic clock in ms */
	void *clock_arg;
	uint64_t window_start; /* of the all-kinds window */
	unsigned logged;       /* lines of all kinds logged in it */
	uint64_t forgotten;    /* suppressed lines of kinds whose slot was replaced */
	struct log_limit_slot slots[LOG_LIMIT_SLOTS];
};

/* Set @l up: at most @burst lines of a kind per @window_ms, and at most
 * @total lines of all kinds per @window_ms (so a flood of ever different
 * lines stays bounded too), except that the first line of a kind in its
 * window may go LOG_LIMIT_SLOTS lines over @total: a flood of one kind never
 * hides another. @now_ms (NULL: clock_mono_ms()) is called with
 * @clock_arg; tests inject their own. */
void log_limit_init(struct log_limit *l, uint64_t window_ms, unsigned burst, unsigned total,
		    uint64_t (*now_ms)(void *arg), void *clock_arg);

/* The kind of @msg into @key (@len bytes, at least 1): @msg with every word
 * (run of non-blanks) that holds a digit replaced by "#", so lines that
 * differ only in addresses, ports, sizes or durations are of one kind. */
void log_limit_key(const char *msg, char *key, size_t len);

/* Whether the line @msg may be logged now. If so, returns true and writes to
 * @note (@len bytes) what to append to it: "" or, when lines like it were
 * suppressed, " (and N more like it in the last S s)", followed by
 * " (and N more of other kinds)" when lines of kinds forgotten since were
 * suppressed. If not, counts it and returns false. */
bool log_limit_pass(struct log_limit *l, const char *msg, char *note, size_t len);

/* log_write() the formatted line, if log_limit_pass() lets it, with its note. */
void log_limited(struct log_limit *l, enum log_level level, const char *module, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));

#endif
