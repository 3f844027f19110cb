/* Leveled logging to stderr, as text or JSON lines. */
#include "lib/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static enum log_format out_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"debug", "info", "warning", "error", "fatal"};

int log_level_parse(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {{"debug", LOG_DEBUG},  {"info", LOG_INFO},	  {"warn", LOG_WARN},
		     {"warning", LOG_WARN}, {"error", LOG_ERROR}, {"fatal", LOG_FATAL}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

void log_setup(enum log_level level, enum log_format format)
{
	min_level = level;
	out_format = format;
}

int log_enabled(enum log_level level)
{
	return level >= min_level;
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
	char msg[2048];
	char stamp[64];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages quote what clients sent: no control character may forge a
	 * line or a terminal sequence. */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%06ldZ", ts.tv_nsec / 1000);

	if (out_format == LOG_FORMAT_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", stamp, "level",
				      level_names[level], "module", module, "msg", msg);
		if (o == NULL) {
			/* Not UTF-8 (a client's bytes): keep the line, lose those bytes. */
			for (char *p = msg; *p != '\0'; p++)
				if ((unsigned char)*p >= 0x80)
					*p = '?';
			o = json_pack("{s:s, s:s, s:s, s:s}", "time", stamp, "level",
				      level_names[level], "module", module, "msg", msg);
		}
		char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line != NULL)
			fprintf(stderr, "%s\n", line);
		free(line);
		json_decref(o);
	} else {
		fprintf(stderr, "%s %-7s %-8s %s\n", stamp, level_names[level], module, msg);
	}
}
