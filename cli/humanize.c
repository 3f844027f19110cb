/* Sizes, durations, times, states and name order rendered the way Docker's CLI does. */
#include "cli/humanize.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

void human_bytes(double bytes, char *out, size_t len)
{
	static const char *const units[] = {"B",   "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB", "ZiB", "YiB"};
	size_t i = 0;

	while (bytes >= 1024.0 && i < ARRAY_SIZE(units) - 1) {
		bytes /= 1024.0;
		i++;
	}
	snprintf(out, len, "%.4g%s", bytes, units[i]);
}

int human_capitalize(struct buf *out, const char *s)
{
	size_t start = out->len, i;
	int rv = buf_append(out, s, strlen(s));

	if (rv != 0)
		return rv;
	for (i = start; i < out->len; i++) {
		unsigned char c = (unsigned char)out->data[i];

		if (c >= 0x80)
			continue;
		/* Go's capitalizeFirst() lower-cases a one-byte string. */
		out->data[i] = (char)(i == start && out->len - start > 1 ? toupper(c) : tolower(c));
	}
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool human_natural_less(const char *a, const char *b)
{
	size_t i = 0, j = 0, la = strlen(a), lb = strlen(b);

	while (i < la && j < lb) {
		bool da = is_digit(a[i]), db = is_digit(b[j]);
		size_t nz_a, nz_b, n;
		int c;

		if (da != db)
			return da; /* digits sort before other characters */
		if (!da) {
			if (a[i] != b[j])
				return (unsigned char)a[i] < (unsigned char)b[j];
			i++;
			j++;
			continue;
		}
		/* Two numbers: skip leading zeros, then the shorter is less,
		 * then the digits decide, then the one with fewer zeros. */
		while (i < la && a[i] == '0')
			i++;
		while (j < lb && b[j] == '0')
			j++;
		nz_a = i;
		nz_b = j;
		while (i < la && is_digit(a[i]))
			i++;
		while (j < lb && is_digit(b[j]))
			j++;
		if (i - nz_a != j - nz_b)
			return i - nz_a < j - nz_b;
		n = i - nz_a;
		c = memcmp(a + nz_a, b + nz_b, n);
		if (c != 0)
			return c < 0;
		if (nz_a != nz_b)
			return nz_a < nz_b;
	}
	return la < lb;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!is_digit((*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int human_time_parse(const char *s, struct human_time *t)
{
	const char *p = s;
	int oh, om;

	memset(t, 0, sizeof(*t));
	if (digits(&p, 4, &t->year) != 0 || expect(&p, '-') != 0 || digits(&p, 2, &t->month) != 0 ||
	    expect(&p, '-') != 0 || digits(&p, 2, &t->day) != 0 || expect(&p, 'T') != 0 ||
	    digits(&p, 2, &t->hour) != 0 || expect(&p, ':') != 0 || digits(&p, 2, &t->min) != 0 ||
	    expect(&p, ':') != 0 || digits(&p, 2, &t->sec) != 0)
		return -1;
	if (t->month < 1 || t->month > 12 || t->day < 1 ||
	    t->day > days_in_month(t->year, t->month) || t->hour > 23 || t->min > 59 || t->sec > 59)
		return -1;
	if (*p == '.') {
		long scale = 100000000;

		p++;
		if (!is_digit(*p))
			return -1;
		for (; is_digit(*p); p++) {
			t->nsec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z') {
		t->utc = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;

		p++;
		if (digits(&p, 2, &oh) != 0 || expect(&p, ':') != 0 || digits(&p, 2, &om) != 0 ||
		    oh > 23 || om > 59)
			return -1;
		t->offset_min = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	return *p == '\0' ? 0 : -1;
}

int human_time_go_string(struct buf *out, const struct human_time *t)
{
	int off = t->offset_min < 0 ? -t->offset_min : t->offset_min;
	char sign = t->offset_min < 0 ? '-' : '+';
	char frac[24] = "";
	int rv;

	if (t->nsec > 0) {
		size_t n;

		snprintf(frac, sizeof(frac), ".%09ld", t->nsec);
		n = strlen(frac);
		while (frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	rv = buf_appendf(out, "%04d-%02d-%02d %02d:%02d:%02d%s %c%02d%02d ", t->year, t->month,
			 t->day, t->hour, t->min, t->sec, frac, sign, off / 60, off % 60);
	if (rv != 0)
		return rv;
	if (t->utc || t->offset_min == 0)
		return buf_appendf(out, "UTC");
	return buf_appendf(out, "%c%02d%02d", sign, off / 60, off % 60);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long long days_from_civil(int y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int human_time_ansic(struct buf *out, const struct human_time *t)
{
	static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	long long days = days_from_civil(t->year, t->month, t->day);
	/* 1970-01-01 was a Thursday. */
	long long wd = ((days % 7) + 7 + 4) % 7;

	return buf_appendf(out, "%s %s %2d %02d:%02d:%02d %d", wdays[wd], months[t->month - 1],
			   t->day, t->hour, t->min, t->sec, t->year);
}
