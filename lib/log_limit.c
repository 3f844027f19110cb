/* Log lines per kind per window, with a fixed table of kinds: see log_limit.h. */
#include "lib/log_limit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"

static uint64_t mono_ms(void *arg)
{
	(void)arg;
	return clock_mono_ms();
}

void log_limit_init(struct log_limit *l, uint64_t window_ms, unsigned burst, unsigned total,
		    uint64_t (*now_ms)(void *arg), void *clock_arg)
{
	PRE(window_ms > 0 && burst > 0 && total > 0);
	memset(l, 0, sizeof(*l));
	l->window_ms = window_ms;
	l->burst = burst;
	l->total = total;
	l->now_ms = now_ms != NULL ? now_ms : mono_ms;
	l->clock_arg = clock_arg;
	l->window_start = l->now_ms(l->clock_arg);
}

void log_limit_key(const char *msg, char *key, size_t len)
{
	size_t n = 0;

	PRE(len > 0);
	while (*msg != '\0') {
		const char *w = msg;
		bool digit = false;

		if (isspace((unsigned char)*msg)) {
			if (n + 1 < len)
				key[n++] = *msg;
			msg++;
			continue;
		}
		while (*msg != '\0' && !isspace((unsigned char)*msg)) {
			digit = digit || isdigit((unsigned char)*msg);
			msg++;
		}
		if (digit) {
			if (n + 1 < len)
				key[n++] = '#';
			continue;
		}
		for (; w < msg; w++)
			if (n + 1 < len)
				key[n++] = *w;
	}
	key[n] = '\0';
}

/* The slot of @key: the one holding it, a free one, or the least recently
 * seen one, replaced. */
static struct log_limit_slot *slot_for(struct log_limit *l, const char *key, uint64_t now)
{
	struct log_limit_slot *s, *victim = NULL;

	for (size_t i = 0; i < LOG_LIMIT_SLOTS; i++) {
		s = &l->slots[i];
		if (s->used && strcmp(s->key, key) == 0)
			return s;
		if (victim == NULL ||
		    (victim->used && (!s->used || s->last_seen < victim->last_seen)))
			victim = s;
	}
	if (victim->used)
		l->forgotten += victim->suppressed;
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->window_start = now;
	return victim;
}

static void suppress(struct log_limit_slot *s, uint64_t now)
{
	if (s->suppressed++ == 0)
		s->first_suppressed = now;
}

bool log_limit_pass(struct log_limit *l, const char *msg, char *note, size_t len)
{
	char key[LOG_LIMIT_KEY_LEN];
	struct log_limit_slot *s;
	uint64_t now = l->now_ms(l->clock_arg);
	size_t n = 0;
	int w;

	PRE(len > 0);
	note[0] = '\0';
	log_limit_key(msg, key, sizeof(key));
	s = slot_for(l, key, now);
	s->last_seen = now;
	if (now - s->window_start >= l->window_ms) {
		s->window_start = now;
		s->logged = 0;
	}
	if (now - l->window_start >= l->window_ms) {
		l->window_start = now;
		l->logged = 0;
	}
	/* Repeats stop at the total; the first line of a kind in the window
	 * has LOG_LIMIT_SLOTS more, so repeats never hide a new kind. */
	if (s->logged >= l->burst ||
	    l->logged >= l->total + (s->logged == 0 ? LOG_LIMIT_SLOTS : 0)) {
		suppress(s, now);
		return false;
	}
	s->logged++;
	l->logged++;
	if (s->suppressed > 0) {
		uint64_t secs = (now - s->first_suppressed + 999) / 1000;

		w = snprintf(note, len, " (and %llu more like it in the last %llu s)",
			     (unsigned long long)s->suppressed,
			     (unsigned long long)(secs > 0 ? secs : 1));
		n = w > 0 ? (size_t)w : 0;
		if (n >= len)
			n = len - 1;
		s->suppressed = 0;
	}
	if (l->forgotten > 0) {
		snprintf(note + n, len - n, " (and %llu more of other kinds)",
			 (unsigned long long)l->forgotten);
		l->forgotten = 0;
	}
	return true;
}

void log_limited(struct log_limit *l, enum log_level level, const char *module, const char *fmt,
		 ...)
{
	char msg[1024], note[128];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_limit_pass(l, msg, note, sizeof(note)))
		log_write(level, module, "%s%s", msg, note);
}
