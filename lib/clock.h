/* Wall-clock timestamps in nanoseconds and Docker's RFC 3339 rendering. */
#ifndef SHOAL_LIB_CLOCK_H
#define SHOAL_LIB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_now_ns(void);
/* Milliseconds of CLOCK_MONOTONIC, for durations. */
uint64_t clock_mono_ms(void);

/* Render @ns as "2016-06-07T20:31:11.853781916Z" (Docker's format) into @out. */
void clock_format_rfc3339(int64_t ns, char *out, size_t len);
/* Parse that format (fraction optional, 'Z' only). Returns 0 or -1. */
int clock_parse_rfc3339(const char *s, int64_t *ns);

/* Docker's units.HumanDuration: "Less than a second", "5 seconds", "About a
 * minute", "3 months", ... for @ns nanoseconds. */
void clock_human_duration(int64_t ns, char *out, size_t len);

#endif
