/* Wall-clock timestamps in nanoseconds and Docker's RFC 3339 rendering. */
#include "lib/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void clock_format_rfc3339(int64_t ns, char *out, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000000000;
		sec -= 1;
	}
	gmtime_r(&sec, &tm);
	size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%09ldZ", frac);
}

static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date. */
	y -= m <= 2;
	const int era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

int clock_parse_rfc3339(const char *s, int64_t *ns)
{
	int y, mo, d, h, mi, sec, used = 0;
	int64_t frac = 0;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6)
		return -1;
	/* Nanoseconds in an int64 cover the years 1678 to 2261 only. */
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1678 ||
	    y > 2261 || h < 0 || mi < 0 || sec < 0)
		return -1;
	s += used;
	if (*s == '.') {
		int digits = 0;
		s++;
		while (*s >= '0' && *s <= '9') {
			if (digits < 9) {
				frac = frac * 10 + (*s - '0');
				digits++;
			}
			s++;
		}
		if (digits == 0)
			return -1;
		while (digits++ < 9)
			frac *= 10;
	}
	if (strcmp(s, "Z") != 0)
		return -1;
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	*ns = ((days * 86400) + h * 3600 + mi * 60 + sec) * 1000000000 + frac;
	return 0;
}

void clock_human_duration(int64_t ns, char *out, size_t len)
{
	int64_t seconds = ns / 1000000000;
	int64_t minutes = ns / (60 * (int64_t)1000000000);
	/* Go: int(d.Hours() + 0.5) */
	int64_t hours = (int64_t)((double)ns / 3.6e12 + 0.5);

	if (seconds < 1)
		snprintf(out, len, "Less than a second");
	else if (seconds == 1)
		snprintf(out, len, "1 second");
	else if (seconds < 60)
		snprintf(out, len, "%lld seconds", (long long)seconds);
	else if (minutes == 1)
		snprintf(out, len, "About a minute");
	else if (minutes < 60)
		snprintf(out, len, "%lld minutes", (long long)minutes);
	else if (hours == 1)
		snprintf(out, len, "About an hour");
	else if (hours < 48)
		snprintf(out, len, "%lld hours", (long long)hours);
	else if (hours < 24 * 7 * 2)
		snprintf(out, len, "%lld days", (long long)(hours / 24));
	else if (hours < 24 * 30 * 2)
		snprintf(out, len, "%lld weeks", (long long)(hours / 24 / 7));
	else if (hours < 24 * 365 * 2)
		snprintf(out, len, "%lld months", (long long)(hours / 24 / 30));
	else
		snprintf(out, len, "%lld years",
			 (long long)(ns / (int64_t)3600000000000 / 24 / 365));
}
