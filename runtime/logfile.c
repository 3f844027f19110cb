/* Container logs in Docker's json-file format: a writer with size-based rotation, a reader. */
#include "runtime/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fsutil.h"

/* A line of a log file longer than this is skipped, never loaded whole. The
 * longest line the writer makes is about 6 * LOGFILE_MAX_LINE + 100 bytes. */
#define READ_LINE_MAX (1u << 20)
/* How many rotated files a reader looks for (PATH.1 ... PATH.<n>). */
#define READ_MAX_FILES 1024
/* Room for PATH plus ".<n>". */
#define PATH_EXTRA 16

struct held {
	char data[LOGFILE_MAX_LINE];
	size_t len;
};

struct logfile {
	char *path;
	int fd;
	uint64_t size; /* of the current file, as written */
	uint64_t max_size;
	int max_file;
	struct held held[2]; /* partial lines of stdout, stderr */
	struct buf line;     /* the entry being encoded, reused */
	void (*notify)(void *arg);
	void *notify_arg;
};

/* ---- encoding ---- */

static const char hexdigits[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at @s (at most @len bytes), or 0 when the
 * first byte does not start one (Go's utf8.DecodeRune: overlongs, surrogates
 * and code points past U+10FFFF are invalid). Sets *@cp. */
static size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0fu;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07u;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	v = (v << 6) | (s[1] & 0x3fu);
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
		v = (v << 6) | (s[i] & 0x3fu);
	}
	*cp = v;
	return n;
}

/* Append @len bytes as the body of a JSON string, escaped as Go's encoding/json
 * does (HTML-safe, U+2028/U+2029 escaped, invalid UTF-8 as \ufffd). */
static int json_escape(struct buf *b, const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;
	size_t i = 0, run = 0; /* bytes [run, i) are copied as they are */
	int rv = 0;

	while (i < len && rv == 0) {
		unsigned char c = s[i];
		char esc[8];
		size_t elen = 0, skip = 1;
		uint32_t cp;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' &&
		    c != '&') {
			i++;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			elen = 2;
		} else if (c < 0x80) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hexdigits[c >> 4];
			esc[5] = hexdigits[c & 0xf];
			elen = 6;
		} else {
			skip = utf8_seq(s + i, len - i, &cp);
			if (skip == 0) {
				memcpy(esc, "\\ufffd", 6);
				elen = 6;
				skip = 1;
			} else if (cp == 0x2028 || cp == 0x2029) {
				memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
				elen = 6;
			} else {
				i += skip;
				continue;
			}
		}
		rv = buf_append(b, s + run, i - run);
		if (rv == 0)
			rv = buf_append(b, esc, elen);
		i += skip;
		run = i;
	}
	if (rv == 0)
		rv = buf_append(b, s + run, i - run);
	return rv;
}

/* Go's time.RFC3339Nano in UTC: the fraction without trailing zeros, none if 0. */
static void format_time(uint64_t ns, char *out, size_t len)
{
	size_t n;

	clock_format_rfc3339((int64_t)ns, out, len);
	n = strlen(out);
	PRE(n > 11 && out[n - 1] == 'Z' && out[n - 11] == '.');
	n--; /* at the 'Z' */
	while (out[n - 1] == '0')
		n--;
	if (out[n - 1] == '.')
		n--;
	out[n] = 'Z';
	out[n + 1] = '\0';
}

static int encode_entry(struct buf *b, enum logfile_stream stream, const char *text, size_t len,
			uint64_t now_ns)
{
	char ts[64];
	int rv;

	b->len = 0;
	format_time(now_ns, ts, sizeof(ts));
	rv = buf_append(b, "{\"log\":\"", 8);
	if (rv == 0)
		rv = json_escape(b, text, len);
	if (rv == 0)
		rv = buf_appendf(b, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
				 stream == LOGFILE_STDOUT ? "stdout" : "stderr", ts);
	return rv;
}

/* ---- writing ---- */

static char *path_n(const char *path, int n)
{
	size_t len = strlen(path) + PATH_EXTRA;
	char *p = malloc(len);

	if (p != NULL)
		snprintf(p, len, "%s.%d", path, n);
	return p;
}

/* Shift PATH.(n-1) -> PATH.n ... PATH -> PATH.1 and start an empty PATH; with
 * max_file 1, truncate PATH. */
static int rotate(struct logfile *lf, struct shoal_err *err)
{
	int fd;

	if (lf->max_file <= 1) {
		if (ftruncate(lf->fd, 0) != 0)
			return shoal_errf(err, SHOAL_EIO, "truncate log %s: %s", lf->path,
					  strerror(errno));
		lf->size = 0;
		return 0;
	}
	for (int i = lf->max_file - 1; i >= 1; i--) {
		_cleanup_free_ char *to = path_n(lf->path, i);
		_cleanup_free_ char *from = i == 1 ? strdup(lf->path) : path_n(lf->path, i - 1);

		if (to == NULL || from == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		if (rename(from, to) != 0 && errno != ENOENT)
			return shoal_errf(err, SHOAL_EIO, "rotate log %s to %s: %s", from, to,
					  strerror(errno));
	}
	fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return shoal_errf(err, SHOAL_EIO, "open log %s after rotation: %s", lf->path,
				  strerror(errno));
	close(lf->fd);
	lf->fd = fd;
	lf->size = 0;
	return 0;
}

/* Write one entry with one write(2), rotating first when it would not fit. */
static int emit(struct logfile *lf, enum logfile_stream stream, const char *text, size_t len,
		uint64_t now_ns, struct shoal_err *err)
{
	ssize_t n;
	int rv;

	rv = encode_entry(&lf->line, stream, text, len, now_ns);
	if (rv != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (lf->size > 0 && lf->size + lf->line.len > lf->max_size) {
		rv = rotate(lf, err);
		if (rv != 0)
			return rv;
	}
	do
		n = write(lf->fd, lf->line.data, lf->line.len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return shoal_errf(err, SHOAL_EIO, "write log %s: %s", lf->path, strerror(errno));
	lf->size += (uint64_t)n;
	if ((size_t)n < lf->line.len) {
		/* End the torn entry so the next one starts on its own line. */
		if (write(lf->fd, "\n", 1) == 1)
			lf->size++;
		return shoal_errf(err, SHOAL_EIO, "write log %s: short write (disk full?)",
				  lf->path);
	}
	if (lf->notify != NULL)
		lf->notify(lf->notify_arg);
	return 0;
}

int logfile_open(const char *path, uint64_t max_size, int max_file, struct logfile **out,
		 struct shoal_err *err)
{
	struct logfile *lf;
	struct stat st;
	char last;

	if (path == NULL || *path == '\0' || strlen(path) > PATH_MAX - PATH_EXTRA)
		return shoal_errf(err, SHOAL_EINVAL, "log path is empty or too long");
	if (max_size == 0)
		return shoal_errf(err, SHOAL_EINVAL, "log max-size must be greater than 0");
	if (max_file < 1 || max_file > READ_MAX_FILES)
		return shoal_errf(err, SHOAL_EINVAL,
				  "log max-file must be between 1 and %d, not %d", READ_MAX_FILES,
				  max_file);
	lf = calloc(1, sizeof(*lf));
	if (lf == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	buf_init(&lf->line);
	lf->max_size = max_size;
	lf->max_file = max_file;
	lf->path = strdup(path);
	if (lf->path == NULL) {
		free(lf);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	lf->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (lf->fd < 0) {
		int e = errno;
		free(lf->path);
		free(lf);
		return shoal_errf(err, SHOAL_EIO, "open log %s: %s", path, strerror(e));
	}
	if (fstat(lf->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(lf->fd);
		free(lf->path);
		free(lf);
		return shoal_errf(err, SHOAL_EIO, "open log %s: not a regular file", path);
	}
	lf->size = (uint64_t)st.st_size;
	/* A crash may have left a torn last entry: end it so ours start a line. */
	if (lf->size > 0 && pread(lf->fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
	    write(lf->fd, "\n", 1) == 1)
		lf->size++;
	*out = lf;
	return 0;
}

void logfile_set_notify(struct logfile *lf, void (*cb)(void *arg), void *arg)
{
	lf->notify = cb;
	lf->notify_arg = arg;
}

int logfile_write(struct logfile *lf, enum logfile_stream stream, const void *data, size_t len,
		  uint64_t now_ns, struct shoal_err *err)
{
	const char *p = data;
	struct held *h;
	int rv = 0;

	if (stream != LOGFILE_STDOUT && stream != LOGFILE_STDERR)
		return shoal_errf(err, SHOAL_EINVAL, "log stream must be stdout or stderr");
	h = &lf->held[stream - 1];
	while (len > 0) {
		size_t room = LOGFILE_MAX_LINE - h->len;
		size_t take = len < room ? len : room;
		const char *nl = memchr(p, '\n', take);
		int r = 0;

		if (nl != NULL)
			take = (size_t)(nl - p) + 1;
		memcpy(h->data + h->len, p, take);
		h->len += take;
		p += take;
		len -= take;
		if (nl != NULL || h->len == LOGFILE_MAX_LINE) {
			r = emit(lf, stream, h->data, h->len, now_ns, rv == 0 ? err : NULL);
			h->len = 0;
		}
		if (rv == 0)
			rv = r;
	}
	return rv;
}

int logfile_flush(struct logfile *lf, uint64_t now_ns, struct shoal_err *err)
{
	int rv = 0;

	for (int i = 0; i < 2; i++) {
		struct held *h = &lf->held[i];
		int r;

		if (h->len == 0)
			continue;
		r = emit(lf, (enum logfile_stream)(i + 1), h->data, h->len, now_ns,
			 rv == 0 ? err : NULL);
		h->len = 0;
		if (rv == 0)
			rv = r;
	}
	return rv;
}

void logfile_close(struct logfile *lf)
{
	if (lf == NULL)
		return;
	logfile_flush(lf, (uint64_t)clock_now_ns(), NULL);
	close(lf->fd);
	buf_free(&lf->line);
	free(lf->path);
	free(lf);
}

/* ---- reading ---- */

int logfile_parse_line(const char *line, size_t len, struct buf *scratch, struct logfile_entry *e,
		       struct shoal_err *err)
{
	json_error_t jerr;
	json_t *root;
	const json_t *log, *stream, *tm;
	int64_t ns;
	int rv = SHOAL_EPROTO;

	if (len > READ_LINE_MAX)
		return shoal_errf(err, SHOAL_EPROTO, "log line of %zu bytes is too long", len);
	root = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return shoal_errf(err, SHOAL_EPROTO, "log line is not JSON: %s", jerr.text);
	log = json_object_get(root, "log");
	stream = json_object_get(root, "stream");
	tm = json_object_get(root, "time");
	if (!json_is_string(log) || !json_is_string(stream) || !json_is_string(tm)) {
		shoal_errf(err, rv, "log line lacks a string log, stream or time");
		goto out;
	}
	if (strcmp(json_string_value(stream), "stdout") == 0) {
		e->stream = LOGFILE_STDOUT;
	} else if (strcmp(json_string_value(stream), "stderr") == 0) {
		e->stream = LOGFILE_STDERR;
	} else {
		shoal_errf(err, rv, "log line has stream '%.20s', not stdout or stderr",
			   json_string_value(stream));
		goto out;
	}
	if (clock_parse_rfc3339(json_string_value(tm), &ns) != 0 || ns < 0) {
		shoal_errf(err, rv, "log line has a bad time '%.40s'", json_string_value(tm));
		goto out;
	}
	e->time_ns = (uint64_t)ns;
	scratch->len = 0;
	if (buf_append(scratch, json_string_value(log), json_string_length(log)) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	e->text = scratch->data;
	e->len = scratch->len;
	rv = 0;
out:
	json_decref(root);
	return rv;
}

/* Reads whole lines of one file from an offset up to a limit, never holding
 * more than READ_LINE_MAX bytes of one line: a longer line is passed over. */
struct line_reader {
	int fd;
	uint64_t pos;	/* file offset of data[start] */
	uint64_t limit; /* stop here (UINT64_MAX: the end of the file) */
	char *data;
	size_t start, len, cap;
	size_t scan; /* data[start, scan) holds no newline */
	bool skipping;
};

/* Next whole line (without its newline) into *@line and *@len, valid until the
 * next call. *@end is moved past each whole line gone through, skipped ones
 * included. Returns 1, 0 at the end (an unfinished last line is not
 * returned), or a negative error. */
static int next_line(struct line_reader *r, const char **line, size_t *len, uint64_t *end,
		     struct shoal_err *err)
{
	for (;;) {
		char *nl =
		    r->scan < r->len ? memchr(r->data + r->scan, '\n', r->len - r->scan) : NULL;
		size_t want;
		ssize_t n;

		if (nl != NULL) {
			size_t l = (size_t)(nl - (r->data + r->start));
			bool skipped = r->skipping;

			*line = r->data + r->start;
			*len = l;
			r->start += l + 1;
			r->pos += l + 1;
			r->scan = r->start;
			r->skipping = false;
			*end = r->pos;
			if (skipped)
				continue;
			return 1;
		}
		r->scan = r->len;
		if (r->len - r->start >= READ_LINE_MAX) {
			r->pos += r->len - r->start;
			r->start = r->len = r->scan = 0;
			r->skipping = true;
		}
		if (r->start > 0) {
			memmove(r->data, r->data + r->start, r->len - r->start);
			r->len -= r->start;
			r->scan -= r->start;
			r->start = 0;
		}
		if (r->pos + r->len >= r->limit)
			return 0;
		want = 64u << 10;
		if (r->limit - (r->pos + r->len) < want)
			want = (size_t)(r->limit - (r->pos + r->len));
		if (r->cap < r->len + want) {
			size_t cap = r->cap ? r->cap : 64u << 10;
			char *p;

			while (cap < r->len + want)
				cap *= 2;
			p = realloc(r->data, cap);
			if (p == NULL)
				return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			r->data = p;
			r->cap = cap;
		}
		do
			n = pread(r->fd, r->data + r->len, want, (off_t)(r->pos + r->len));
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return shoal_errf(err, SHOAL_EIO, "read log: %s", strerror(errno));
		if (n == 0)
			return 0;
		r->len += (size_t)n;
	}
}

static bool matches(const struct logfile_query *q, const struct logfile_entry *e)
{
	if (e->stream == LOGFILE_STDOUT && !q->stdout_)
		return false;
	if (e->stream == LOGFILE_STDERR && !q->stderr_)
		return false;
	if (q->since_ns != 0 && e->time_ns < q->since_ns)
		return false;
	if (q->until_ns != 0 && e->time_ns > q->until_ns)
		return false;
	return true;
}

/* Go through the lines of @fd from @from to @limit. Matching entries are
 * counted in *@count; from the (@skip+1)th on, they go to @cb (when not NULL).
 * *@end gets the offset after the last whole line. Returns 0, 1 when @cb
 * stopped, or an error. */
static int scan_file(int fd, const struct logfile_query *q, uint64_t from, uint64_t limit,
		     uint64_t skip, uint64_t *count,
		     int (*cb)(void *arg, const struct logfile_entry *e), void *arg, uint64_t *end,
		     struct shoal_err *err)
{
	struct line_reader r = {.fd = fd, .pos = from, .limit = limit};
	struct buf scratch;
	int rv;

	buf_init(&scratch);
	*end = from;
	for (;;) {
		struct logfile_entry e;
		const char *line = NULL;
		size_t len = 0;

		rv = next_line(&r, &line, &len, end, err);
		if (rv <= 0)
			break;
		if (logfile_parse_line(line, len, &scratch, &e, NULL) != 0 || !matches(q, &e))
			continue;
		if ((*count)++ < skip || cb == NULL)
			continue;
		if (cb(arg, &e) != 0) {
			rv = 1;
			break;
		}
	}
	free(r.data);
	buf_free(&scratch);
	return rv;
}

static int check_query(const struct logfile_query *q, struct shoal_err *err)
{
	if (!q->stdout_ && !q->stderr_)
		return shoal_errf(err, SHOAL_EINVAL, "choose at least one of stdout and stderr");
	if (q->until_ns != 0 && q->until_ns < q->since_ns)
		return shoal_errf(err, SHOAL_EINVAL, "logs: until is before since");
	return 0;
}

struct open_file {
	int fd;
	uint64_t ino;
	uint64_t end; /* offset after the last whole line seen by the first pass */
};

/* Open PATH, then PATH.1, PATH.2 ... (newest first, so a rotation meanwhile
 * shows up as an inode already seen, which is skipped). files[0] is PATH. */
static int open_files(const char *path, struct open_file *files, size_t *n, struct shoal_err *err)
{
	*n = 0;
	for (int i = 0; i <= READ_MAX_FILES; i++) {
		_cleanup_free_ char *p = i == 0 ? strdup(path) : path_n(path, i);
		struct stat st;
		bool seen = false;
		int fd;

		if (p == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && i > 0)
			return 0;
		if (fd < 0)
			return shoal_errf(err, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO,
					  "open log %s: %s", p, strerror(errno));
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return shoal_errf(err, SHOAL_EIO, "open log %s: not a regular file", p);
		}
		for (size_t k = 0; k < *n; k++)
			seen = seen || files[k].ino == (uint64_t)st.st_ino;
		if (seen) {
			close(fd);
			continue;
		}
		files[*n].fd = fd;
		files[*n].ino = (uint64_t)st.st_ino;
		files[*n].end = UINT64_MAX;
		(*n)++;
	}
	return 0;
}

int logfile_read(const char *path, const struct logfile_query *q,
		 int (*cb)(void *arg, const struct logfile_entry *e), void *arg,
		 struct logfile_pos *pos, struct shoal_err *err)
{
	struct open_file *files;
	uint64_t count = 0, skip = 0;
	size_t n = 0;
	int rv;

	rv = check_query(q, err);
	if (rv != 0)
		return rv;
	files = calloc(READ_MAX_FILES + 1, sizeof(*files));
	if (files == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = open_files(path, files, &n, err);
	if (rv == 0 && q->tail >= 0) {
		/* First pass: count the matches, fixing where each file ends. */
		for (size_t i = n; i-- > 0 && rv == 0;)
			rv = scan_file(files[i].fd, q, 0, UINT64_MAX, 0, &count, NULL, NULL,
				       &files[i].end, err);
		skip = count > (uint64_t)q->tail ? count - (uint64_t)q->tail : 0;
		count = 0;
	}
	for (size_t i = n; i-- > 0 && rv == 0;) {
		uint64_t end;
		if (q->tail == 0)
			break;
		rv = scan_file(files[i].fd, q, 0, files[i].end, skip, &count, cb, arg, &end, err);
		files[i].end = end;
		if (rv == 1 && pos != NULL) {
			pos->ino = files[i].ino;
			pos->offset = end;
		}
	}
	if (rv == 0 && pos != NULL) {
		pos->ino = files[0].ino;
		pos->offset = files[0].end != UINT64_MAX ? files[0].end : 0;
	}
	for (size_t i = 0; i < n; i++)
		close(files[i].fd);
	free(files);
	return rv < 0 ? rv : 0;
}

int logfile_read_from(const char *path, const struct logfile_query *q, struct logfile_pos *pos,
		      int (*cb)(void *arg, const struct logfile_entry *e), void *arg,
		      struct shoal_err *err)
{
	struct open_file *files;
	uint64_t count = 0;
	size_t n = 0, from;
	int rv;

	rv = check_query(q, err);
	if (rv != 0)
		return rv;
	files = calloc(READ_MAX_FILES + 1, sizeof(*files));
	if (files == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = open_files(path, files, &n, err);
	/* The file the position is in, else the oldest there is (the one we
	 * were in has been rotated away). */
	for (from = 0; rv == 0 && from < n && files[from].ino != pos->ino; from++)
		;
	if (rv == 0 && from == n) {
		from = n - 1;
		pos->ino = files[from].ino;
		pos->offset = 0;
	}
	for (size_t i = from + 1; rv == 0 && i-- > 0;) {
		struct stat st;
		uint64_t off = i == from ? pos->offset : 0;
		char before = '\n';

		/* Smaller than where we were: truncated (max-file 1). A position
		 * is always just after a newline; if it is not, the inode is a
		 * new file's (the old one rotated away): start it over. */
		if (fstat(files[i].fd, &st) == 0 && (uint64_t)st.st_size < off)
			off = 0;
		if (off > 0 &&
		    (pread(files[i].fd, &before, 1, (off_t)off - 1) != 1 || before != '\n'))
			off = 0;
		pos->ino = files[i].ino;
		pos->offset = off;
		rv = scan_file(files[i].fd, q, off, UINT64_MAX, 0, &count, cb, arg, &pos->offset,
			       err);
	}
	for (size_t i = 0; i < n; i++)
		close(files[i].fd);
	free(files);
	return rv < 0 ? rv : 0;
}

int logfile_frame(struct buf *out, const struct logfile_entry *e, bool timestamps,
		  const char *prefix)
{
	char ts[64] = "";
	size_t tlen = 0, plen = prefix != NULL ? strlen(prefix) : 0, total;
	unsigned char hdr[8];
	int rv;

	if (timestamps) {
		clock_format_rfc3339((int64_t)e->time_ns, ts, sizeof(ts) - 1);
		tlen = strlen(ts);
		ts[tlen++] = ' ';
	}
	total = tlen + plen + e->len;
	if (total > UINT32_MAX)
		return SHOAL_ETOOBIG;
	hdr[0] = (unsigned char)e->stream;
	hdr[1] = hdr[2] = hdr[3] = 0;
	hdr[4] = (unsigned char)(total >> 24);
	hdr[5] = (unsigned char)(total >> 16);
	hdr[6] = (unsigned char)(total >> 8);
	hdr[7] = (unsigned char)total;
	rv = buf_append(out, hdr, sizeof(hdr));
	if (rv == 0)
		rv = buf_append(out, ts, tlen);
	if (rv == 0)
		rv = buf_append(out, prefix, plen);
	if (rv == 0)
		rv = buf_append(out, e->text, e->len);
	return rv;
}
