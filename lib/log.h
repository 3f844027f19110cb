/* Leveled logging to stderr, as text or JSON lines. Only node/ and cli/ log. */
#ifndef SHOAL_LIB_LOG_H
#define SHOAL_LIB_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Parse "debug", "info", "warn"/"warning", "error", "fatal". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
/* Parse "text" or "json". Returns 0 or -1. */
int log_format_parse(const char *s, enum log_format *out);

void log_setup(enum log_level level, enum log_format format);
int log_enabled(enum log_level level);

/* Log one line from @module ("api", "raft", ...). */
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) log_write(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_write(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)

#endif
