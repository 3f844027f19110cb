/* Container logs in Docker's json-file format: a writer with size-based rotation, a reader. */
#ifndef SHOAL_RUNTIME_LOGFILE_H
#define SHOAL_RUNTIME_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

/* One file per container, PATH, rotated to PATH.1 ... PATH.<max_file-1> (PATH.1
 * newest) when a write would take it past max_size, as Docker's json-file
 * driver does. Each line of output is one JSON object on its own line:
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-11-25T10:00:00.123456789Z"}
 *
 * The "log" text is the container's bytes up to and including a newline,
 * JSON-escaped (invalid UTF-8 replaced by U+FFFD as Docker does); a line longer
 * than LOGFILE_MAX_LINE is cut into several entries (the last one ends with
 * the newline). Partial lines are held until their newline, a flush, or the
 * cap. */

#define LOGFILE_MAX_LINE	 (16u << 10) /* Docker's 16 KiB chunk */
#define LOGFILE_DEFAULT_MAX_SIZE (10u << 20)
#define LOGFILE_DEFAULT_MAX_FILE 3

enum logfile_stream { LOGFILE_STDOUT = 1, LOGFILE_STDERR = 2 };

struct logfile;

/* Open (append to) the log at @path (created 0640). @max_size in bytes (> 0),
 * @max_file 1 ... 1024 (1: the file is truncated instead of rotated). A torn
 * last line left by a crash is ended with a newline. An entry larger than
 * @max_size is still written, alone in its file. */
int logfile_open(const char *path, uint64_t max_size, int max_file, struct logfile **out,
		 struct shoal_err *err);
/* Flush held partial lines (without a newline) and close; accepts NULL. */
void logfile_close(struct logfile *lf);

/* Append @len bytes the container wrote to @stream, stamped with @now_ns
 * (CLOCK_REALTIME nanoseconds). Each complete entry is written with one
 * write(2); a failed write is reported (SHOAL_EIO) but the logfile stays
 * usable (the entry is lost, as Docker loses it). */
int logfile_write(struct logfile *lf, enum logfile_stream stream, const void *data, size_t len,
		  uint64_t now_ns, struct shoal_err *err);
/* Write out held partial lines now (each stream separately). */
int logfile_flush(struct logfile *lf, uint64_t now_ns, struct shoal_err *err);

/* Called after each entry written, e.g. to wake followers (may be NULL). */
void logfile_set_notify(struct logfile *lf, void (*cb)(void *arg), void *arg);

/* ---- reading ---- */

/* One decoded entry. @text points into the reader's memory, valid until the
 * next call. */
struct logfile_entry {
	enum logfile_stream stream;
	uint64_t time_ns;
	const char *text;
	size_t len;
};

/* What a reader wants, as GET /containers/{id}/logs takes it. */
/* At least one of stdout_/stderr_ must be set (else SHOAL_EINVAL). since and
 * until are inclusive. tail counts the entries that pass the other filters
 * (Docker takes the tail before its stream filter; we count what is shown). */
struct logfile_query {
	bool stdout_;
	bool stderr_;
	int64_t tail;	   /* last N entries over all files; -1 = all */
	uint64_t since_ns; /* 0 = from the start */
	uint64_t until_ns; /* 0 = no end */
};

/* A place in a log: just after a whole line of one of its files (PATH or a
 * rotated PATH.N), known by the file's inode, so it survives rotations. */
struct logfile_pos {
	uint64_t ino;
	uint64_t offset;
};

/* Read the entries of @path and its rotated files (oldest first) matching
 * @q, in order, calling @cb for each; @cb returns nonzero to stop (the call
 * then returns 0). Lines that do not decode are skipped (a torn last line
 * after a crash), and so are lines longer than 1 MiB, without being loaded.
 * *@pos (may be NULL) is set to where logfile_read_from() goes on: right
 * after the entry on which @cb stopped, else the end of @path's whole lines
 * as read. SHOAL_ENOTFOUND if @path does not exist. */
int logfile_read(const char *path, const struct logfile_query *q,
		 int (*cb)(void *arg, const struct logfile_entry *e), void *arg,
		 struct logfile_pos *pos, struct shoal_err *err);
/* Go on from *@pos (@q->tail is ignored): the rest of the file it is in,
 * then each newer file from its start, up to the last whole line of @path;
 * *@pos moves past each line gone through (to right after the entry on
 * which @cb stopped, if it stops). A file smaller than the offset was
 * truncated (max-file 1) and is read from 0. If the position's file has
 * been rotated away (or *@pos is zero), reading starts at the oldest file. */
int logfile_read_from(const char *path, const struct logfile_query *q, struct logfile_pos *pos,
		      int (*cb)(void *arg, const struct logfile_entry *e), void *arg,
		      struct shoal_err *err);

/* Append to @out Docker's multiplexed stream frame for @e: 8-byte header
 * (stream byte 1 or 2, three zero bytes, big-endian uint32 length) then the
 * payload; with @timestamps the payload starts with the time as
 * "2026-11-25T10:00:00.123456789Z" (always 9 digits, as docker logs -t) and a
 * space, then @prefix if not NULL (a service log's details). Returns 0,
 * SHOAL_ETOOBIG or SHOAL_ENOMEM. */
int logfile_frame(struct buf *out, const struct logfile_entry *e, bool timestamps,
		  const char *prefix);

/* Parse one json-file line (without its newline) into @e (text points into
 * a heap copy held in @scratch). Returns 0 or SHOAL_EPROTO. */
int logfile_parse_line(const char *line, size_t len, struct buf *scratch, struct logfile_entry *e,
		       struct shoal_err *err);

#endif
