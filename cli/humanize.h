/* Values rendered for people exactly as Docker's CLI renders them: sizes and
 * durations (docker/go-units), times (Go's time package), capitalised states
 * and the natural sort order of names (fvbommel/sortorder). */
#ifndef SHOAL_CLI_HUMANIZE_H
#define SHOAL_CLI_HUMANIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/clock.h" /* clock_human_duration() */

/* units.BytesSize: binary units with four significant digits, "7.704GiB". */
void human_bytes(double bytes, char *out, size_t len);

/* Docker's PrettyPrint of an enum value: first letter upper-case, the rest
 * lower-case ("ready" -> "Ready", "UTC" -> "Utc"), a single letter lower-case.
 * Only ASCII letters change. Returns 0 or SHOAL_ENOMEM. */
int human_capitalize(struct buf *out, const char *s);

/* sortorder.NaturalLess: runs of digits compare as numbers ("node-2" < "node-10"). */
bool human_natural_less(const char *a, const char *b);

/* A timestamp as the daemon sends it (RFC 3339, nanoseconds optional). */
struct human_time {
	int year, month, day, hour, min, sec;
	long nsec;
	int offset_min; /* east of UTC */
	bool utc;	/* written with 'Z' */
};

/* Parse "2016-08-18T10:44:24.496525531Z" or "...+02:00". Returns 0 or -1. */
int human_time_parse(const char *s, struct human_time *t);

/* Go's Time.String(): "2016-08-18 10:44:24.496525531 +0000 UTC". */
int human_time_go_string(struct buf *out, const struct human_time *t);

/* Go's time.ANSIC layout: "Wed Jan  1 00:00:00 2025". */
int human_time_ansic(struct buf *out, const struct human_time *t);

#endif
