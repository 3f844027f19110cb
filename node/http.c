/* HTTP/1.1 connection core: incremental request parsing, pipelining, responses. */
#include "node/http.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"

#define DEFAULT_MAX_HEADER_BYTES    (64 * 1024)
#define DEFAULT_MAX_BODY_BYTES	    (4 * 1024 * 1024)
#define DEFAULT_MAX_FILE_BODY_BYTES ((size_t)512 * 1024 * 1024)
/* Framing counted per header line against max_header_bytes: ": " and CRLF. */
#define HEADER_LINE_OVERHEAD 4
#define FAIL_MSG_LEN	     160

/* A connection's lifecycle. Moves are checked by set_state():
 *
 *   READING -> BUSY     a keep-alive request was delivered
 *   READING -> LAST     a request asking to close (or an error) was delivered
 *   BUSY    -> READING  its response finished: parse what was buffered
 *   BUSY    -> LAST     buffered input hit its bound: close after the response
 *   LAST    -> CLOSED   its response finished
 *   any     -> CLOSED   end of input, a failed write, or a protocol error
 */
enum conn_state {
	CONN_READING, /* no response pending: input is parsed as it arrives */
	CONN_BUSY,    /* a response is pending: input is buffered for later */
	CONN_LAST,    /* the pending response is the last one: input is dropped */
	CONN_CLOSED,  /* the transport was asked to close: nothing goes in or out */
	CONN_N_STATES,
};

/* Read only by PRE(), which release builds compile out. */
__attribute__((unused)) static const bool conn_moves[CONN_N_STATES][CONN_N_STATES] = {
    [CONN_READING] = {[CONN_BUSY] = true, [CONN_LAST] = true, [CONN_CLOSED] = true},
    [CONN_BUSY] = {[CONN_READING] = true, [CONN_LAST] = true, [CONN_CLOSED] = true},
    [CONN_LAST] = {[CONN_CLOSED] = true},
};

enum res_state {
	RES_PARSING,   /* the request is still being received */
	RES_PENDING,   /* with the handler, nothing written yet */
	RES_STREAMING, /* chunked body under way */
};

/* How a response's body is delimited. */
enum framing {
	FRAME_LENGTH,  /* Content-Length */
	FRAME_NONE,    /* 1xx, 204, 304: no body at all */
	FRAME_CHUNKED, /* Transfer-Encoding: chunked */
	FRAME_EOF,     /* HTTP/1.0 stream: the body ends when the connection closes */
};

/* Where the parser is inside the header block. */
enum header_pos { HDR_NONE, HDR_FIELD, HDR_VALUE };

struct http_response {
	struct http_conn *conn; /* NULL once the connection is released */
	enum res_state state;
	struct http_request req;
	bool http10;	 /* HTTP/1.0 client: no chunked framing */
	bool frame_eof;	 /* streaming without framing: close ends the body */
	struct buf url;	 /* raw request target */
	struct buf hdrs; /* header names and values, each NUL-terminated */
	size_t hdr_off[HTTP_MAX_HEADERS][2];
	struct buf body;
	int body_fd;	   /* -1, or the temp file the body goes to */
	size_t body_limit; /* max_body_bytes, or max_file_body_bytes for body_fd */
	size_t file_len;   /* bytes written to body_fd */
	char *strs;	   /* decoded path, NUL, raw query, NUL */
	struct buf extra;  /* header lines from http_response_header() */
};

struct http_conn {
	http_parser parser;
	struct http_limits limits;
	struct http_transport t;
	http_handler_fn handler;
	void *handler_arg;
	enum conn_state state;
	bool parsing;		   /* inside parse(): finishing must not re-enter it */
	struct buf in;		   /* input received while a response was pending */
	size_t in_off;		   /* bytes of @in already parsed */
	struct http_response *cur; /* the request being received */
	struct http_response *res; /* the request delivered and not yet answered */
	enum header_pos hpos;
	bool trailers;	  /* header callbacks now carry chunked trailers */
	size_t hdr_bytes; /* counted against max_header_bytes */
	int fail_status;  /* set by a parser callback that gives up */
	char fail_msg[FAIL_MSG_LEN];
};

static void set_state(struct http_conn *c, enum conn_state to)
{
	PRE(conn_moves[c->state][to]);
	c->state = to;
}

/* Ask the transport to close; pending responses are gone from now on. */
static void conn_close(struct http_conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	set_state(c, CONN_CLOSED);
	c->t.close(c->t.arg);
}

/* ---- Requests ---------------------------------------------------------- */

const char *http_request_header(const struct http_request *req, const char *name)
{
	unsigned i;

	for (i = 0; i < req->n_headers; i++) {
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	}
	return NULL;
}

static int unhex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode the character at *@p (advancing it): "%41" is 'A', and '+' is a
 * space when @plus. Returns the byte, or -1 for a bad escape or "%00". */
static int decode_char(const char **p, const char *end, bool plus)
{
	const char *s = *p;
	int hi, lo;

	if (*s == '+' && plus) {
		*p = s + 1;
		return ' ';
	}
	if (*s != '%') {
		*p = s + 1;
		return (unsigned char)*s;
	}
	if (end - s < 3)
		return -1;
	hi = unhex(s[1]);
	lo = unhex(s[2]);
	if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
		return -1;
	*p = s + 3;
	return hi * 16 + lo;
}

/* Decode @s..@end into @out (room for @cap bytes, NUL included).
 * Returns 0, -1 for a bad escape, -2 if it does not fit. */
static int decode(const char *s, const char *end, bool plus, char *out, size_t cap)
{
	size_t n = 0;
	int ch;

	while (s < end) {
		ch = decode_char(&s, end, plus);
		if (ch < 0)
			return -1;
		if (n + 1 >= cap)
			return -2;
		out[n++] = (char)ch;
	}
	if (cap == 0)
		return -2;
	out[n] = '\0';
	return 0;
}

/* True if @s..@end decodes to exactly @key. */
static bool decoded_equals(const char *s, const char *end, const char *key)
{
	int ch;

	while (s < end) {
		ch = decode_char(&s, end, true);
		if (ch < 0 || *key == '\0' || ch != (unsigned char)*key)
			return false;
		key++;
	}
	return *key == '\0';
}

bool http_query_get(const struct http_request *req, const char *key, char *out, size_t len)
{
	const char *p = req->query;
	const char *amp, *eq, *end;

	while (*p != '\0') {
		amp = strchr(p, '&');
		end = amp != NULL ? amp : p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (decoded_equals(p, eq != NULL ? eq : end, key)) {
			/* A malformed value hides the parameter, as in Go's ParseQuery. */
			if (eq == NULL)
				return decode(end, end, true, out, len) == 0;
			if (decode(eq + 1, end, true, out, len) == 0)
				return true;
		}
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return false;
}

/* ---- Responses ---------------------------------------------------------- */

static struct http_response *res_new(struct http_conn *c)
{
	struct http_response *res = calloc(1, sizeof(*res));

	if (res == NULL)
		return NULL;
	res->conn = c;
	res->state = RES_PARSING;
	buf_init(&res->url);
	buf_init(&res->hdrs);
	buf_init(&res->body);
	buf_init(&res->extra);
	res->req.method = "";
	res->req.body_fd = -1;
	res->body_fd = -1;
	return res;
}

static void res_free(struct http_response *res)
{
	if (res == NULL)
		return;
	buf_free(&res->url);
	buf_free(&res->hdrs);
	buf_free(&res->body);
	buf_free(&res->extra);
	if (res->body_fd >= 0)
		close(res->body_fd);
	free(res->strs);
	free(res);
}

bool http_response_gone(const struct http_response *res)
{
	return res->conn == NULL || res->conn->state == CONN_CLOSED;
}

size_t http_response_queued(const struct http_response *res)
{
	if (http_response_gone(res) || res->conn->t.queued == NULL)
		return 0;
	return res->conn->t.queued(res->conn->t.arg);
}

const char *http_reason(int status)
{
	const char *s;

	if (status < 100 || status > 599)
		return "Unknown";
	s = http_status_str((enum http_status)status);
	return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}

int http_error_body(struct buf *out, const char *message)
{
	json_t *obj = json_pack("{s:s}", "message", message);
	char *clean = NULL;
	char *text;
	size_t i;
	int rv;

	if (obj == NULL) {
		/* Not UTF-8: keep the ASCII and mark every other byte. */
		clean = strdup(message);
		if (clean == NULL)
			return SHOAL_ENOMEM;
		for (i = 0; clean[i] != '\0'; i++) {
			if ((unsigned char)clean[i] >= 0x80)
				clean[i] = '?';
		}
		obj = json_pack("{s:s}", "message", clean);
		free(clean);
		if (obj == NULL)
			return SHOAL_ENOMEM;
	}
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (text == NULL)
		return SHOAL_ENOMEM;
	rv = buf_append(out, text, strlen(text));
	free(text);
	return rv;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT", locale-independent. */
static void format_date(char *out, size_t len)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11) {
		snprintf(out, len, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int http_response_header(struct http_response *res, const char *name, const char *value)
{
	PRE(res->state == RES_PENDING);
	if (name[0] == '\0' || strpbrk(name, ":\r\n") != NULL || strpbrk(value, "\r\n") != NULL)
		return SHOAL_EINVAL;
	return buf_appendf(&res->extra, "%s: %s\r\n", name, value);
}

/* Status line and headers into @b. */
static int format_head(struct http_response *res, struct buf *b, int status,
		       const char *content_type, enum framing framing, size_t len)
{
	struct http_conn *c = res->conn;
	char date[64];
	int rv;

	/* An unframed stream ends with the connection. */
	if (framing == FRAME_EOF && c->state == CONN_BUSY)
		set_state(c, CONN_LAST);
	format_date(date, sizeof(date));
	rv = buf_appendf(b, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
	if (rv == 0 && content_type != NULL)
		rv = buf_appendf(b, "Content-Type: %s\r\n", content_type);
	if (rv == 0 && framing == FRAME_LENGTH)
		rv = buf_appendf(b, "Content-Length: %zu\r\n", len);
	if (rv == 0 && framing == FRAME_CHUNKED)
		rv = buf_appendf(b, "Transfer-Encoding: chunked\r\n");
	if (rv == 0)
		rv = buf_appendf(b,
				 "Date: %s\r\n"
				 "Server: shoal/%s\r\n"
				 "Api-Version: 1.41\r\n"
				 "Docker-Experimental: false\r\n"
				 "Ostype: linux\r\n",
				 date, PACKAGE_VERSION);
	if (rv == 0 && res->extra.len > 0)
		rv = buf_append(b, res->extra.data, res->extra.len);
	/* BUSY means the connection carries on after this response. */
	if (rv == 0 && c->state != CONN_BUSY)
		rv = buf_appendf(b, "Connection: close\r\n");
	else if (rv == 0 && res->http10)
		rv = buf_appendf(b, "Connection: keep-alive\r\n");
	if (rv == 0)
		rv = buf_append(b, "\r\n", 2);
	return rv;
}

/* Queue bytes for the client; a failure closes the connection. */
static int res_write(struct http_response *res, const void *data, size_t len)
{
	struct http_conn *c = res->conn;
	int rv;

	if (http_response_gone(res))
		return 0;
	rv = c->t.write(c->t.arg, data, len);
	if (rv != 0)
		conn_close(c);
	return rv;
}

/* A response that could not be produced leaves the client nothing to wait for. */
static int res_fail(struct http_response *res, int rv)
{
	if (!http_response_gone(res))
		conn_close(res->conn);
	return rv;
}

static void resume(struct http_conn *c);

/* Release @res and let its connection move on to the next request. */
static void finish(struct http_response *res)
{
	struct http_conn *c = res->conn;

	res_free(res);
	if (c == NULL)
		return;
	PRE(c->res == res);
	c->res = NULL;
	switch (c->state) {
	case CONN_BUSY:
		set_state(c, CONN_READING);
		if (!c->parsing)
			resume(c);
		break;
	case CONN_LAST:
		conn_close(c);
		break;
	default:
		break;
	}
}

int http_respond(struct http_response *res, int status, const char *content_type, const void *body,
		 size_t len)
{
	bool no_body = status < 200 || status == 204 || status == 304;
	struct buf b;
	int rv;

	PRE(res->state == RES_PENDING);
	if (http_response_gone(res)) {
		finish(res);
		return 0;
	}
	buf_init(&b);
	rv = format_head(res, &b, status, content_type, no_body ? FRAME_NONE : FRAME_LENGTH, len);
	if (rv == 0 && !no_body && !res->req.head && len > 0)
		rv = buf_append(&b, body, len);
	if (rv == 0)
		rv = res_write(res, b.data, b.len);
	else
		rv = res_fail(res, rv);
	buf_free(&b);
	finish(res);
	return rv;
}

int http_stream_start(struct http_response *res, int status, const char *content_type)
{
	struct buf b;
	int rv;

	PRE(res->state == RES_PENDING);
	res->state = RES_STREAMING;
	if (http_response_gone(res))
		return 0;
	res->frame_eof = res->http10;
	buf_init(&b);
	rv = format_head(res, &b, status, content_type, res->frame_eof ? FRAME_EOF : FRAME_CHUNKED,
			 0);
	if (rv == 0)
		rv = res_write(res, b.data, b.len);
	else
		rv = res_fail(res, rv);
	buf_free(&b);
	return rv;
}

int http_stream_write(struct http_response *res, const void *data, size_t len)
{
	struct buf b;
	int rv;

	PRE(res->state == RES_STREAMING);
	if (len == 0 || res->req.head || http_response_gone(res))
		return 0;
	if (res->frame_eof)
		return res_write(res, data, len);
	buf_init(&b);
	rv = buf_appendf(&b, "%zx\r\n", len);
	if (rv == 0)
		rv = buf_append(&b, data, len);
	if (rv == 0)
		rv = buf_append(&b, "\r\n", 2);
	if (rv == 0)
		rv = res_write(res, b.data, b.len);
	else
		rv = res_fail(res, rv);
	buf_free(&b);
	return rv;
}

int http_stream_end(struct http_response *res)
{
	int rv = 0;

	PRE(res->state == RES_STREAMING);
	if (!res->req.head && !res->frame_eof)
		rv = res_write(res, "0\r\n\r\n", 5);
	finish(res);
	return rv;
}

/* ---- Parsing ------------------------------------------------------------ */

/* Give up on the request being received: parse() answers @status. */
static int cb_fail(struct http_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cb_fail(struct http_conn *c, int status, const char *fmt, ...)
{
	va_list ap;

	c->fail_status = status;
	va_start(ap, fmt);
	vsnprintf(c->fail_msg, sizeof(c->fail_msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int cb_oom(struct http_conn *c)
{
	return cb_fail(c, 500, "the daemon is out of memory");
}

static int count_header_bytes(struct http_conn *c, size_t len)
{
	c->hdr_bytes += len;
	if (c->hdr_bytes > c->limits.max_header_bytes)
		return cb_fail(c, 431, "request headers are larger than %zu bytes",
			       c->limits.max_header_bytes);
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	PRE(c->cur == NULL);
	c->cur = res_new(c);
	if (c->cur == NULL)
		return cb_oom(c);
	c->hpos = HDR_NONE;
	c->trailers = false;
	c->hdr_bytes = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (count_header_bytes(c, len) != 0)
		return -1;
	if (buf_append(&c->cur->url, at, len) != 0)
		return cb_oom(c);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_response *res = c->cur;

	if (count_header_bytes(c, len) != 0)
		return -1;
	if (c->trailers)
		return 0; /* counted, not kept */
	if (c->hpos != HDR_FIELD) {
		if (res->req.n_headers == HTTP_MAX_HEADERS)
			return cb_fail(c, 431, "request has more than %d headers",
				       HTTP_MAX_HEADERS);
		if (count_header_bytes(c, HEADER_LINE_OVERHEAD) != 0)
			return -1;
		if (c->hpos == HDR_VALUE && buf_append(&res->hdrs, "", 1) != 0)
			return cb_oom(c);
		res->hdr_off[res->req.n_headers][0] = res->hdrs.len;
		res->req.n_headers++;
		c->hpos = HDR_FIELD;
	}
	if (buf_append(&res->hdrs, at, len) != 0)
		return cb_oom(c);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_response *res = c->cur;

	if (count_header_bytes(c, len) != 0)
		return -1;
	if (c->trailers)
		return 0;
	if (c->hpos == HDR_FIELD) {
		if (buf_append(&res->hdrs, "", 1) != 0)
			return cb_oom(c);
		res->hdr_off[res->req.n_headers - 1][1] = res->hdrs.len;
		c->hpos = HDR_VALUE;
	}
	if (buf_append(&res->hdrs, at, len) != 0)
		return cb_oom(c);
	return 0;
}

/* Terminate the last header and point the request at the stored strings. */
static int seal_headers(struct http_conn *c)
{
	struct http_response *res = c->cur;
	struct http_header *h;
	size_t n;
	unsigned i;

	if (c->hpos == HDR_FIELD) {
		/* A name without a value: give it an empty one. */
		if (buf_append(&res->hdrs, "", 1) != 0)
			return -1;
		res->hdr_off[res->req.n_headers - 1][1] = res->hdrs.len;
	}
	if (buf_append(&res->hdrs, "", 1) != 0)
		return -1;
	for (i = 0; i < res->req.n_headers; i++) {
		h = &res->req.headers[i];
		h->name = res->hdrs.data + res->hdr_off[i][0];
		h->value = res->hdrs.data + res->hdr_off[i][1];
		n = strlen(h->value);
		while (n > 0 && (h->value[n - 1] == ' ' || h->value[n - 1] == '\t'))
			h->value[--n] = '\0';
	}
	return 0;
}

/* Split the request target into a decoded path and a raw query. */
static int parse_target(struct http_conn *c)
{
	struct http_response *res = c->cur;
	struct http_parser_url u;
	const char *url = res->url.data != NULL ? res->url.data : "";
	const char *path = "/";
	const char *query = "";
	size_t path_len = 1;
	size_t query_len = 0;
	int rv;

	if (res->url.len > UINT16_MAX)
		return cb_fail(c, 414, "request URL is longer than %d bytes", UINT16_MAX);
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, res->url.len, 0, &u) != 0)
		return cb_fail(c, 400, "malformed request URL");
	if ((u.field_set & (1 << UF_PATH)) != 0) {
		path = url + u.field_data[UF_PATH].off;
		path_len = u.field_data[UF_PATH].len;
	}
	if ((u.field_set & (1 << UF_QUERY)) != 0) {
		query = url + u.field_data[UF_QUERY].off;
		query_len = u.field_data[UF_QUERY].len;
	}
	res->strs = malloc(path_len + 1 + query_len + 1);
	if (res->strs == NULL)
		return cb_oom(c);
	rv = decode(path, path + path_len, false, res->strs, path_len + 1);
	if (rv != 0)
		return cb_fail(c, 400, "request path has an invalid or NUL percent-escape");
	res->req.path = res->strs;
	res->req.query = res->strs + path_len + 1;
	memcpy(res->req.query, query, query_len);
	res->req.query[query_len] = '\0';
	return 0;
}

/* "Expect: 100-continue" asks for a go-ahead before the body is sent. */
static void answer_expect(struct http_conn *c)
{
	const struct http_parser *p = &c->parser;
	const char *expect = http_request_header(&c->cur->req, "Expect");
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	bool has_body = (p->flags & F_CHUNKED) != 0 ||
			((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > 0);

	if (expect == NULL || strcasecmp(expect, "100-continue") != 0 || p->http_minor == 0 ||
	    !has_body)
		return;
	if (c->t.write(c->t.arg, cont, sizeof(cont) - 1) != 0)
		conn_close(c);
}

/* An unlinked temp file in file_body_dir for the current request's body. */
static int open_body_file(struct http_conn *c)
{
	struct http_response *res = c->cur;
	struct buf path;
	int fd;

	buf_init(&path);
	if (buf_appendf(&path, "%s/.http-body-XXXXXX", c->limits.file_body_dir) != 0)
		return cb_oom(c);
	fd = mkostemp(path.data, O_CLOEXEC);
	if (fd < 0) {
		buf_free(&path);
		return cb_fail(c, 500, "cannot store the request body: %s", strerror(errno));
	}
	unlink(path.data);
	buf_free(&path);
	res->body_fd = fd;
	return 0;
}

static int write_body_file(struct http_conn *c, const char *at, size_t len)
{
	struct http_response *res = c->cur;

	while (len > 0) {
		ssize_t n = write(res->body_fd, at, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cb_fail(c, 500, "cannot store the request body: %s",
				       strerror(errno));
		at += n;
		len -= (size_t)n;
		res->file_len += (size_t)n;
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_response *res = c->cur;
	bool to_file;

	if (seal_headers(c) != 0)
		return cb_oom(c);
	c->trailers = true;
	if (p->http_major != 1)
		return cb_fail(c, 505, "HTTP version %u.%u is not supported: use HTTP/1.1",
			       (unsigned)p->http_major, (unsigned)p->http_minor);
	if (p->upgrade)
		return cb_fail(c, 400, "protocol upgrades and CONNECT are not supported");
	if (parse_target(c) != 0)
		return -1;
	res->req.method = http_method_str((enum http_method)p->method);
	to_file =
	    c->limits.file_body != NULL && c->limits.file_body(res->req.method, res->req.path);
	res->body_limit = to_file ? c->limits.max_file_body_bytes : c->limits.max_body_bytes;
	if ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > res->body_limit)
		return cb_fail(c, 413, "request body is larger than %zu bytes", res->body_limit);
	if (to_file && open_body_file(c) != 0)
		return -1;
	res->req.head = p->method == HTTP_HEAD;
	res->req.keep_alive = http_should_keep_alive(p) != 0;
	res->http10 = p->http_minor == 0;
	answer_expect(c);
	return c->state == CONN_CLOSED ? -1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_response *res = c->cur;
	struct buf *body = &res->body;
	size_t have = res->body_fd >= 0 ? res->file_len : body->len;

	if (len > res->body_limit - have)
		return cb_fail(c, 413, "request body is larger than %zu bytes", res->body_limit);
	if (res->body_fd >= 0)
		return write_body_file(c, at, len);
	if (buf_append(body, at, len) != 0)
		return cb_oom(c);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_response *res = c->cur;

	/* An empty body is "" rather than NULL. */
	if (buf_append(&res->body, "", 0) != 0)
		return cb_oom(c);
	res->req.body = res->body.data;
	res->req.body_len = res->body.len;
	if (res->body_fd >= 0) {
		if (lseek(res->body_fd, 0, SEEK_SET) != 0)
			return cb_fail(c, 500, "cannot read the stored request body: %s",
				       strerror(errno));
		res->req.body_fd = res->body_fd;
		res->req.body_len = res->file_len;
	}
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Answer the request being received with a JSON error, then close. */
static void fail(struct http_conn *c, int status, const char *message)
{
	struct http_response *res = c->cur;
	struct buf body;

	c->cur = NULL;
	if (res == NULL)
		res = res_new(c);
	if (res == NULL) {
		conn_close(c);
		return;
	}
	res->state = RES_PENDING;
	res->req.head = false;
	res->req.keep_alive = false;
	c->res = res;
	set_state(c, CONN_LAST);
	buf_init(&body);
	if (http_error_body(&body, message) != 0)
		res_fail(res, SHOAL_ENOMEM);
	http_respond(res, status, "application/json", body.data, body.len);
	buf_free(&body);
}

static void parse_failed(struct http_conn *c, enum http_errno e)
{
	char msg[FAIL_MSG_LEN];

	if (c->fail_status != 0) {
		fail(c, c->fail_status, c->fail_msg);
		return;
	}
	if (e == HPE_HEADER_OVERFLOW) {
		snprintf(msg, sizeof(msg), "request headers are larger than %zu bytes",
			 c->limits.max_header_bytes < HTTP_MAX_HEADER_SIZE
			     ? c->limits.max_header_bytes
			     : (size_t)HTTP_MAX_HEADER_SIZE);
		fail(c, 431, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(e));
	fail(c, 400, msg);
}

/* Hand the complete request to the handler. */
static void dispatch(struct http_conn *c)
{
	struct http_response *res = c->cur;

	c->cur = NULL;
	res->state = RES_PENDING;
	c->res = res;
	set_state(c, res->req.keep_alive ? CONN_BUSY : CONN_LAST);
	c->handler(c->handler_arg, &res->req, res);
}

/* Parse until the bytes run out, a request waits for its response, or the
 * connection closes. Returns the number of bytes consumed. */
static size_t parse(struct http_conn *c, const char *data, size_t len)
{
	enum http_errno e;
	size_t off = 0;
	size_t n;

	PRE(!c->parsing);
	c->parsing = true;
	while (off < len && c->state == CONN_READING) {
		n = http_parser_execute(&c->parser, &parser_settings, data + off, len - off);
		off += n;
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (c->state != CONN_READING)
			break; /* closed underneath: a write failed */
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			dispatch(c);
		} else if (e != HPE_OK) {
			parse_failed(c, e);
		} else if (off < len) {
			/* The parser stops early only for a protocol switch. */
			fail(c, 400, "protocol upgrades and CONNECT are not supported");
		}
	}
	c->parsing = false;
	return off;
}

/* Parse input buffered while the previous response was pending. */
static void resume(struct http_conn *c)
{
	if (c->in.len > c->in_off)
		c->in_off += parse(c, c->in.data + c->in_off, c->in.len - c->in_off);
	if (c->state != CONN_BUSY || c->in_off == c->in.len) {
		buf_free(&c->in);
		c->in_off = 0;
	}
}

/* Keep input for after the pending response, within the limits. */
static void buffer_input(struct http_conn *c, const char *data, size_t len)
{
	size_t bound = c->limits.max_header_bytes + c->limits.max_body_bytes;

	if (c->state != CONN_BUSY)
		return;
	if (len > bound - (c->in.len - c->in_off)) {
		/* Cut the client off after the pending response. */
		set_state(c, CONN_LAST);
		buf_free(&c->in);
		c->in_off = 0;
		return;
	}
	if (c->in_off > 0) {
		buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
	if (buf_append(&c->in, data, len) != 0)
		conn_close(c);
}

/* ---- Connections -------------------------------------------------------- */

struct http_conn *http_conn_new(const struct http_limits *limits, const struct http_transport *t,
				http_handler_fn handler, void *handler_arg)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->limits.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
	c->limits.max_body_bytes = DEFAULT_MAX_BODY_BYTES;
	if (limits != NULL && limits->max_header_bytes > 0)
		c->limits.max_header_bytes = limits->max_header_bytes;
	if (limits != NULL && limits->max_body_bytes > 0)
		c->limits.max_body_bytes = limits->max_body_bytes;
	c->limits.max_file_body_bytes = DEFAULT_MAX_FILE_BODY_BYTES;
	if (limits != NULL && limits->max_file_body_bytes > 0)
		c->limits.max_file_body_bytes = limits->max_file_body_bytes;
	if (limits != NULL && limits->file_body != NULL && limits->file_body_dir != NULL) {
		c->limits.file_body = limits->file_body;
		c->limits.file_body_dir = limits->file_body_dir;
	}
	c->t = *t;
	c->handler = handler;
	c->handler_arg = handler_arg;
	c->state = CONN_READING;
	buf_init(&c->in);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	return c;
}

void http_conn_feed(struct http_conn *c, const void *data, size_t len)
{
	const char *p = data;
	size_t n;

	PRE(!c->parsing);
	if (c->state == CONN_READING) {
		PRE(c->in.len == 0);
		n = parse(c, p, len);
		p += n;
		len -= n;
	}
	if (len > 0)
		buffer_input(c, p, len);
}

void http_conn_eof(struct http_conn *c)
{
	conn_close(c);
	if (!c->parsing) {
		buf_free(&c->in);
		c->in_off = 0;
	}
}

void http_conn_free(struct http_conn *c)
{
	if (c == NULL)
		return;
	PRE(!c->parsing);
	if (c->res != NULL)
		c->res->conn = NULL;
	res_free(c->cur);
	buf_free(&c->in);
	free(c);
}
