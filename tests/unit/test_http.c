/* Unit tests for the HTTP connection core and the unix-socket server. */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "node/http.h"
#include "node/http_server.h"

/* ---- A connection driven by byte buffers -------------------------------- */

#define MAX_SEEN 8
#define MAX_HELD 4

/* What the handler saw of one request (copied: the request dies with its response). */
struct seen {
	char method[16];
	char path[256];
	char query[256];
	char host[64];
	char *body;
	size_t body_len;
	bool keep_alive;
	bool head;
	unsigned n_headers;
};

enum mode {
	MODE_ECHO, /* answer at once: 200 with the path as text */
	MODE_HOLD, /* keep the response for the test to finish */
};

struct fix {
	struct http_conn *c;
	struct buf out;
	int closes;
	int write_rv; /* what the transport's write() returns */
	enum mode mode;
	struct seen seen[MAX_SEEN];
	unsigned n_seen;
	struct http_response *held[MAX_HELD];
	unsigned n_held;
	int respond_rv; /* what the last http_respond() of MODE_ECHO returned */
};

static int fix_write(void *arg, const void *data, size_t len)
{
	struct fix *f = arg;

	if (f->write_rv != 0)
		return f->write_rv;
	assert_int_equal(f->closes, 0); /* nothing is written after close() */
	return buf_append(&f->out, data, len);
}

static void fix_close(void *arg)
{
	struct fix *f = arg;

	f->closes++;
}

static void fix_handler(void *arg, struct http_request *req, struct http_response *res)
{
	struct fix *f = arg;
	struct seen *s;
	const char *host = http_request_header(req, "host");

	assert_true(f->n_seen < MAX_SEEN);
	s = &f->seen[f->n_seen++];
	snprintf(s->method, sizeof(s->method), "%s", req->method);
	snprintf(s->path, sizeof(s->path), "%s", req->path);
	snprintf(s->query, sizeof(s->query), "%s", req->query);
	snprintf(s->host, sizeof(s->host), "%s", host != NULL ? host : "");
	assert_int_equal(req->body[req->body_len], '\0');
	s->body = malloc(req->body_len + 1);
	assert_non_null(s->body);
	memcpy(s->body, req->body, req->body_len + 1);
	s->body_len = req->body_len;
	s->keep_alive = req->keep_alive;
	s->head = req->head;
	s->n_headers = req->n_headers;
	if (f->mode == MODE_HOLD) {
		assert_true(f->n_held < MAX_HELD);
		f->held[f->n_held++] = res;
		return;
	}
	f->respond_rv = http_respond(res, 200, "text/plain", req->path, strlen(req->path));
}

static struct fix *fix_new(enum mode mode, const struct http_limits *limits)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct http_transport t = {.write = fix_write, .close = fix_close};

	assert_non_null(f);
	buf_init(&f->out);
	f->mode = mode;
	t.arg = f;
	f->c = http_conn_new(limits, &t, fix_handler, f);
	assert_non_null(f->c);
	return f;
}

static void fix_free(struct fix *f)
{
	unsigned i;

	http_conn_free(f->c);
	for (i = 0; i < f->n_seen; i++)
		free(f->seen[i].body);
	buf_free(&f->out);
	free(f);
}

static void feed(struct fix *f, const char *s)
{
	http_conn_feed(f->c, s, strlen(s));
}

/* ---- Reading responses back with http_parser ----------------------------- */

#define MAX_RESP	 8
#define MAX_RESP_HEADERS 24

struct resp {
	int status;
	char names[MAX_RESP_HEADERS][64];
	char values[MAX_RESP_HEADERS][256];
	unsigned n_headers;
	bool in_value;
	struct buf body;
	bool complete;
};

struct resp_set {
	struct resp r[MAX_RESP];
	unsigned n;
	bool head; /* responses to HEAD carry no body */
};

static struct resp *cur_resp(http_parser *p)
{
	struct resp_set *set = p->data;

	return &set->r[set->n - 1];
}

static void append_str(char *dst, size_t cap, const char *at, size_t len)
{
	size_t have = strlen(dst);

	assert_true(have + len < cap);
	memcpy(dst + have, at, len);
	dst[have + len] = '\0';
}

static int r_begin(http_parser *p)
{
	struct resp_set *set = p->data;

	assert_true(set->n < MAX_RESP);
	set->n++;
	buf_init(&cur_resp(p)->body);
	return 0;
}

static int r_field(http_parser *p, const char *at, size_t len)
{
	struct resp *r = cur_resp(p);

	if (r->in_value || r->n_headers == 0) {
		assert_true(r->n_headers < MAX_RESP_HEADERS);
		r->n_headers++;
		r->in_value = false;
	}
	append_str(r->names[r->n_headers - 1], sizeof(r->names[0]), at, len);
	return 0;
}

static int r_value(http_parser *p, const char *at, size_t len)
{
	struct resp *r = cur_resp(p);

	r->in_value = true;
	append_str(r->values[r->n_headers - 1], sizeof(r->values[0]), at, len);
	return 0;
}

static int r_headers_complete(http_parser *p)
{
	struct resp_set *set = p->data;

	cur_resp(p)->status = (int)p->status_code;
	return set->head ? 1 : 0;
}

static int r_body(http_parser *p, const char *at, size_t len)
{
	assert_int_equal(buf_append(&cur_resp(p)->body, at, len), 0);
	return 0;
}

static int r_complete(http_parser *p)
{
	cur_resp(p)->complete = true;
	return 0;
}

/* Parse everything written so far as responses; @eof if the transport closed. */
static void parse_responses(const struct buf *out, bool head, bool eof, struct resp_set *set)
{
	static const http_parser_settings settings = {
	    .on_message_begin = r_begin,
	    .on_header_field = r_field,
	    .on_header_value = r_value,
	    .on_headers_complete = r_headers_complete,
	    .on_body = r_body,
	    .on_message_complete = r_complete,
	};
	http_parser p;
	size_t n;

	memset(set, 0, sizeof(*set));
	set->head = head;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = set;
	n = http_parser_execute(&p, &settings, out->data, out->len);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
	assert_int_equal(n, out->len);
	if (eof)
		http_parser_execute(&p, &settings, NULL, 0);
}

static void resp_set_free(struct resp_set *set)
{
	unsigned i;

	for (i = 0; i < set->n; i++)
		buf_free(&set->r[i].body);
}

static const char *resp_header(const struct resp *r, const char *name)
{
	unsigned i;

	for (i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->names[i], name) == 0)
			return r->values[i];
	}
	return NULL;
}

/* The message of a Docker-style error body. */
static void assert_error_body(const struct resp *r, const char *message)
{
	json_error_t jerr;
	json_t *obj = json_loadb(r->body.data, r->body.len, 0, &jerr);
	const char *got;

	assert_non_null(obj);
	assert_string_equal(resp_header(r, "Content-Type"), "application/json");
	got = json_string_value(json_object_get(obj, "message"));
	assert_non_null(got);
	assert_string_equal(got, message);
	assert_int_equal(json_object_size(obj), 1);
	json_decref(obj);
}

/* Feed @request to a fresh connection and expect one error answer and a close. */
static void expect_error(const struct http_limits *limits, const char *request, int status,
			 const char *message)
{
	struct fix *f = fix_new(MODE_ECHO, limits);
	struct resp_set set;

	feed(f, request);
	assert_int_equal(f->n_seen, 0);
	assert_int_equal(f->closes, 1);
	parse_responses(&f->out, false, true, &set);
	assert_int_equal(set.n, 1);
	assert_true(set.r[0].complete);
	assert_int_equal(set.r[0].status, status);
	assert_string_equal(resp_header(&set.r[0], "Connection"), "close");
	assert_error_body(&set.r[0], message);
	/* Later bytes are ignored. */
	feed(f, "GET /again HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_seen, 0);
	assert_int_equal(f->closes, 1);
	resp_set_free(&set);
	fix_free(f);
}

/* ---- Requests and plain responses ---------------------------------------- */

static void test_get_simple(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);
	struct resp_set set;
	const struct resp *r;
	const char *date;
	char day[64];

	(void)state;
	feed(f, "GET /v1.41/info HTTP/1.1\r\nHost: shoal\r\nUser-Agent: test\r\n\r\n");
	assert_int_equal(f->n_seen, 1);
	assert_string_equal(f->seen[0].method, "GET");
	assert_string_equal(f->seen[0].path, "/v1.41/info");
	assert_string_equal(f->seen[0].query, "");
	assert_string_equal(f->seen[0].host, "shoal");
	assert_int_equal(f->seen[0].n_headers, 2);
	assert_int_equal(f->seen[0].body_len, 0);
	assert_true(f->seen[0].keep_alive);
	assert_false(f->seen[0].head);
	assert_int_equal(f->closes, 0);

	assert_true(strncmp(f->out.data, "HTTP/1.1 200 OK\r\n", 17) == 0);
	parse_responses(&f->out, false, false, &set);
	assert_int_equal(set.n, 1);
	r = &set.r[0];
	assert_true(r->complete);
	assert_int_equal(r->status, 200);
	assert_string_equal(resp_header(r, "Content-Type"), "text/plain");
	assert_string_equal(resp_header(r, "Content-Length"), "11");
	assert_string_equal(resp_header(r, "Server"), "shoal/0.1.0");
	assert_string_equal(resp_header(r, "Api-Version"), "1.41");
	assert_string_equal(resp_header(r, "Docker-Experimental"), "false");
	assert_string_equal(resp_header(r, "Ostype"), "linux");
	assert_null(resp_header(r, "Connection"));
	date = resp_header(r, "Date");
	assert_non_null(date);
	snprintf(day, sizeof(day), "%s", date != NULL ? date : "");
	assert_int_equal(strlen(day), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
	assert_string_equal(day + 25, " GMT");
	assert_int_equal(day[3], ',');
	assert_int_equal(r->body.len, 11);
	assert_memory_equal(r->body.data, "/v1.41/info", 11);
	resp_set_free(&set);
	fix_free(f);
}

static void test_head_no_body(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	struct resp_set set;
	static const char body[] = "{\"Name\":\"abc\"}";

	(void)state;
	feed(f, "HEAD /v1.41/nodes/abc HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_held, 1);
	assert_string_equal(f->seen[0].method, "HEAD");
	assert_true(f->seen[0].head);
	assert_int_equal(http_respond(f->held[0], 200, "application/json", body, strlen(body)), 0);
	/* The head ends the output: no body bytes follow. */
	assert_true(f->out.len > 4);
	assert_string_equal(f->out.data + f->out.len - 4, "\r\n\r\n");
	assert_null(strstr(f->out.data, "Name"));
	parse_responses(&f->out, true, false, &set);
	assert_int_equal(set.n, 1);
	assert_int_equal(set.r[0].status, 200);
	assert_string_equal(resp_header(&set.r[0], "Content-Length"), "14");
	assert_string_equal(resp_header(&set.r[0], "Content-Type"), "application/json");
	assert_int_equal(set.r[0].body.len, 0);
	assert_int_equal(f->closes, 0);
	resp_set_free(&set);
	fix_free(f);
}

static void test_post_content_length(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);

	(void)state;
	feed(f, "POST /v1.41/swarm/init HTTP/1.1\r\nContent-Type: application/json\r\n"
		"Content-Length: 26\r\n\r\n{\"ListenAddr\":");
	assert_int_equal(f->n_seen, 0); /* the body is not complete yet */
	feed(f, "\"0.0.0.0\"}\r\n");
	assert_int_equal(f->n_seen, 1);
	assert_string_equal(f->seen[0].method, "POST");
	assert_int_equal(f->seen[0].body_len, 26);
	assert_string_equal(f->seen[0].body, "{\"ListenAddr\":\"0.0.0.0\"}\r\n");
	fix_free(f);
}

static void test_post_chunked_byte_by_byte(void **state)
{
	static const char req[] = "POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
				  "GET /after HTTP/1.1\r\n\r\n";
	struct fix *f = fix_new(MODE_ECHO, NULL);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(req) - 1; i++)
		http_conn_feed(f->c, req + i, 1);
	assert_int_equal(f->n_seen, 2);
	assert_int_equal(f->seen[0].body_len, 11);
	assert_string_equal(f->seen[0].body, "hello world");
	assert_int_equal(f->seen[0].n_headers, 1); /* the trailer is not a header */
	assert_string_equal(f->seen[1].path, "/after");
	assert_int_equal(f->seen[1].body_len, 0);
	assert_int_equal(f->closes, 0);
	fix_free(f);
}

static void test_pipelined_in_order(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);
	struct resp_set set;

	(void)state;
	feed(f, "GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_seen, 2);
	assert_string_equal(f->seen[0].path, "/first");
	assert_string_equal(f->seen[1].path, "/second");
	parse_responses(&f->out, false, false, &set);
	assert_int_equal(set.n, 2);
	assert_memory_equal(set.r[0].body.data, "/first", 6);
	assert_memory_equal(set.r[1].body.data, "/second", 7);
	assert_int_equal(f->closes, 0);
	resp_set_free(&set);
	fix_free(f);
}

static void test_pipelined_async(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	struct resp_set set;

	(void)state;
	feed(f, "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nx");
	assert_int_equal(f->n_seen, 1); /* /b waits for /a's response */
	feed(f, "yzGET /c HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_seen, 1);
	assert_int_equal(f->out.len, 0);

	assert_int_equal(http_respond(f->held[0], 200, "text/plain", "A", 1), 0);
	assert_int_equal(f->n_seen, 2);
	assert_string_equal(f->seen[1].path, "/b");
	assert_string_equal(f->seen[1].body, "xyz");
	assert_int_equal(http_respond(f->held[1], 201, "text/plain", "B", 1), 0);
	assert_int_equal(f->n_seen, 3);
	assert_string_equal(f->seen[2].path, "/c");
	feed(f, "GET /d HTTP/1.1\r\n\r\n"); /* buffered behind /c */
	assert_int_equal(f->n_seen, 3);
	assert_int_equal(http_respond(f->held[2], 202, "text/plain", "C", 1), 0);
	assert_int_equal(f->n_seen, 4);
	assert_int_equal(http_respond(f->held[3], 203, "text/plain", "D", 1), 0);

	parse_responses(&f->out, false, false, &set);
	assert_int_equal(set.n, 4);
	assert_int_equal(set.r[0].status, 200);
	assert_int_equal(set.r[1].status, 201);
	assert_int_equal(set.r[2].status, 202);
	assert_int_equal(set.r[3].status, 203);
	assert_memory_equal(set.r[3].body.data, "D", 1);
	assert_int_equal(f->closes, 0);
	resp_set_free(&set);
	fix_free(f);
}

static void test_connection_close(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	struct resp_set set;

	(void)state;
	feed(f, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_seen, 1);
	assert_false(f->seen[0].keep_alive);
	feed(f, "GET /ignored HTTP/1.1\r\n\r\n");
	assert_int_equal(f->closes, 0);
	assert_int_equal(http_respond(f->held[0], 200, NULL, "ok", 2), 0);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->n_seen, 1);
	parse_responses(&f->out, false, true, &set);
	assert_int_equal(set.n, 1);
	assert_string_equal(resp_header(&set.r[0], "Connection"), "close");
	assert_null(resp_header(&set.r[0], "Content-Type"));
	resp_set_free(&set);
	fix_free(f);
}

static void test_http10(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);
	struct resp_set set;

	(void)state;
	feed(f, "GET /old HTTP/1.0\r\n\r\n");
	assert_int_equal(f->n_seen, 1);
	assert_false(f->seen[0].keep_alive);
	assert_int_equal(f->closes, 1);
	parse_responses(&f->out, false, true, &set);
	assert_string_equal(resp_header(&set.r[0], "Connection"), "close");
	resp_set_free(&set);
	fix_free(f);

	/* An HTTP/1.0 client asking for keep-alive gets it, and is told so. */
	f = fix_new(MODE_ECHO, NULL);
	feed(f, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_true(f->seen[0].keep_alive);
	assert_int_equal(f->closes, 0);
	parse_responses(&f->out, false, false, &set);
	assert_string_equal(resp_header(&set.r[0], "Connection"), "keep-alive");
	resp_set_free(&set);
	fix_free(f);
}

static void test_no_content(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	struct resp_set set;

	(void)state;
	feed(f, "DELETE /v1.41/services/web HTTP/1.1\r\n\r\n");
	assert_string_equal(f->seen[0].method, "DELETE");
	assert_int_equal(http_respond(f->held[0], 204, NULL, NULL, 0), 0);
	parse_responses(&f->out, false, false, &set);
	assert_int_equal(set.r[0].status, 204);
	assert_true(set.r[0].complete);
	assert_null(resp_header(&set.r[0], "Content-Length"));
	assert_null(strstr(f->out.data, "Content-Length"));
	resp_set_free(&set);
	fix_free(f);
}

static void test_response_header(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	struct resp_set set;

	(void)state;
	feed(f, "GET /x HTTP/1.1\r\n\r\n");
	assert_int_equal(http_response_header(f->held[0], "Location", "/v1.41/nodes/abc"), 0);
	assert_int_equal(http_response_header(f->held[0], "X-Bad", "a\r\nInjected: yes"),
			 SHOAL_EINVAL);
	assert_int_equal(http_response_header(f->held[0], "X:Bad", "v"), SHOAL_EINVAL);
	assert_int_equal(http_respond(f->held[0], 201, NULL, NULL, 0), 0);
	parse_responses(&f->out, false, false, &set);
	assert_int_equal(set.r[0].status, 201);
	assert_string_equal(resp_header(&set.r[0], "Location"), "/v1.41/nodes/abc");
	assert_string_equal(resp_header(&set.r[0], "Content-Length"), "0");
	assert_null(resp_header(&set.r[0], "Injected"));
	resp_set_free(&set);
	fix_free(f);
}

static void test_expect_continue(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	(void)state;
	feed(f, "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
	assert_string_equal(f->out.data, cont);
	feed(f, "hi");
	assert_int_equal(f->n_seen, 1);
	assert_string_equal(f->seen[0].body, "hi");
	assert_true(strncmp(f->out.data + strlen(cont), "HTTP/1.1 200 OK\r\n", 17) == 0);
	fix_free(f);
}

/* ---- Errors --------------------------------------------------------------- */

static void test_malformed(void **state)
{
	(void)state;
	expect_error(NULL, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400,
		     "malformed HTTP request: invalid character in header");
	expect_error(NULL, "G@T / HTTP/1.1\r\n\r\n", 400,
		     "malformed HTTP request: invalid HTTP method");
	expect_error(NULL, "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
		     "malformed HTTP request: unexpected content-length header");
}

static void test_body_too_large(void **state)
{
	struct http_limits limits = {.max_header_bytes = 1024, .max_body_bytes = 16};

	(void)state;
	expect_error(&limits, "POST /x HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413,
		     "request body is larger than 16 bytes");
	expect_error(&limits,
		     "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "a\r\n0123456789\r\n7\r\n0123456\r\n",
		     413, "request body is larger than 16 bytes");
	/* The default limit is 4 MiB. */
	expect_error(NULL, "POST /x HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n", 413,
		     "request body is larger than 4194304 bytes");
}

static void test_headers_too_large(void **state)
{
	struct http_limits limits = {.max_header_bytes = 128, .max_body_bytes = 1024};
	char req[4096];
	size_t n;
	int i;

	(void)state;
	n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
	memset(req + n, 'a', 200);
	snprintf(req + n + 200, sizeof(req) - n - 200, "\r\n\r\n");
	expect_error(&limits, req, 431, "request headers are larger than 128 bytes");

	n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
	for (i = 0; i <= HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: v\r\n", i);
	snprintf(req + n, sizeof(req) - n, "\r\n");
	expect_error(NULL, req, 431, "request has more than 64 headers");
}

static void test_unsupported(void **state)
{
	(void)state;
	expect_error(NULL, "GET / HTTP/2.0\r\n\r\n", 505,
		     "HTTP version 2.0 is not supported: use HTTP/1.1");
	expect_error(NULL, "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		     400, "protocol upgrades and CONNECT are not supported");
	expect_error(NULL, "CONNECT example.com:443 HTTP/1.1\r\n\r\n", 400,
		     "protocol upgrades and CONNECT are not supported");
}

/* ---- URLs ------------------------------------------------------------------ */

static void test_path_decoded(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);

	(void)state;
	feed(f, "GET /v1.41/containers/a%2Fb%20c+d?all=1 HTTP/1.1\r\n\r\n");
	assert_string_equal(f->seen[0].path, "/v1.41/containers/a/b c+d");
	assert_string_equal(f->seen[0].query, "all=1");
	feed(f, "GET http://shoal/v1.41/info?x#frag HTTP/1.1\r\n\r\n");
	assert_string_equal(f->seen[1].path, "/v1.41/info");
	assert_string_equal(f->seen[1].query, "x");
	fix_free(f);

	expect_error(NULL, "GET /a%00b HTTP/1.1\r\n\r\n", 400,
		     "request path has an invalid or NUL percent-escape");
	expect_error(NULL, "GET /a%zzb HTTP/1.1\r\n\r\n", 400,
		     "request path has an invalid or NUL percent-escape");
	expect_error(NULL, "GET /a%4 HTTP/1.1\r\n\r\n", 400,
		     "request path has an invalid or NUL percent-escape");
}

static void test_query_get(void **state)
{
	struct http_request req = {.query =
				       "name=a%20b+c&empty=&flag&k%3Dey=v&bad=%zz&"
				       "nul=%00&filters=%7B%22label%22%3A%5B%5D%7D&dup=1&dup=2"};
	char out[64];
	char small[4];

	(void)state;
	assert_true(http_query_get(&req, "name", out, sizeof(out)));
	assert_string_equal(out, "a b c");
	assert_true(http_query_get(&req, "empty", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(http_query_get(&req, "flag", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(http_query_get(&req, "k=ey", out, sizeof(out)));
	assert_string_equal(out, "v");
	assert_true(http_query_get(&req, "filters", out, sizeof(out)));
	assert_string_equal(out, "{\"label\":[]}");
	assert_true(http_query_get(&req, "dup", out, sizeof(out)));
	assert_string_equal(out, "1");
	assert_false(http_query_get(&req, "bad", out, sizeof(out)));
	assert_false(http_query_get(&req, "nul", out, sizeof(out)));
	assert_false(http_query_get(&req, "missing", out, sizeof(out)));
	assert_false(http_query_get(&req, "nam", out, sizeof(out)));
	assert_false(http_query_get(&req, "name", small, sizeof(small)));
	assert_true(http_query_get(&req, "dup", small, sizeof(small)));
	assert_string_equal(small, "1");
}

/* ---- Streaming --------------------------------------------------------------- */

static void test_stream_chunked(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	struct resp_set set;
	const char *body;

	(void)state;
	feed(f, "GET /logs HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
	assert_int_equal(http_stream_start(f->held[0], 200, "application/octet-stream"), 0);
	assert_int_equal(http_stream_write(f->held[0], "hello", 5), 0);
	assert_int_equal(http_stream_write(f->held[0], "", 0), 0);
	assert_int_equal(http_stream_write(f->held[0], "0123456789abcdefg", 17), 0);
	assert_int_equal(f->n_seen, 1);
	assert_int_equal(http_stream_end(f->held[0]), 0);
	assert_int_equal(f->n_seen, 2);

	body = strstr(f->out.data, "\r\n\r\n");
	assert_non_null(body);
	assert_string_equal(body + 4, "5\r\nhello\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n");
	parse_responses(&f->out, false, false, &set);
	assert_int_equal(set.n, 1);
	assert_true(set.r[0].complete);
	assert_string_equal(resp_header(&set.r[0], "Transfer-Encoding"), "chunked");
	assert_null(resp_header(&set.r[0], "Content-Length"));
	assert_int_equal(set.r[0].body.len, 22);
	assert_memory_equal(set.r[0].body.data, "hello0123456789abcdefg", 22);
	resp_set_free(&set);
	assert_int_equal(http_respond(f->held[1], 200, NULL, NULL, 0), 0);
	fix_free(f);
}

static void test_stream_head_and_http10(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);

	(void)state;
	feed(f, "HEAD /logs HTTP/1.1\r\n\r\n");
	assert_int_equal(http_stream_start(f->held[0], 200, "text/plain"), 0);
	assert_int_equal(http_stream_write(f->held[0], "data", 4), 0);
	assert_int_equal(http_stream_end(f->held[0]), 0);
	assert_string_equal(f->out.data + f->out.len - 4, "\r\n\r\n");
	assert_non_null(strstr(f->out.data, "Transfer-Encoding: chunked\r\n"));
	assert_null(strstr(f->out.data, "data"));
	fix_free(f);

	/* HTTP/1.0 knows no chunks: the body ends when the connection does. */
	f = fix_new(MODE_HOLD, NULL);
	feed(f, "GET /logs HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_int_equal(http_stream_start(f->held[0], 200, "text/plain"), 0);
	assert_int_equal(http_stream_write(f->held[0], "data", 4), 0);
	assert_int_equal(http_stream_end(f->held[0]), 0);
	assert_int_equal(f->closes, 1);
	assert_null(strstr(f->out.data, "Transfer-Encoding"));
	assert_non_null(strstr(f->out.data, "Connection: close\r\n"));
	assert_string_equal(f->out.data + f->out.len - 8, "\r\n\r\ndata");
	fix_free(f);
}

/* ---- Clients that go away -------------------------------------------------------- */

static void test_client_gone(void **state)
{
	struct fix *f = fix_new(MODE_HOLD, NULL);
	size_t written;

	(void)state;
	feed(f, "GET /slow HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_held, 1);
	assert_false(http_response_gone(f->held[0]));
	http_conn_eof(f->c);
	assert_int_equal(f->closes, 1);
	assert_true(http_response_gone(f->held[0]));
	written = f->out.len;
	assert_int_equal(http_stream_start(f->held[0], 200, NULL), 0);
	assert_int_equal(http_stream_write(f->held[0], "x", 1), 0);
	assert_int_equal(http_stream_end(f->held[0]), 0);
	assert_int_equal(f->out.len, written);
	assert_int_equal(f->n_seen, 1);
	fix_free(f);

	/* The connection is released first: the response still has to be finished. */
	f = fix_new(MODE_HOLD, NULL);
	feed(f, "POST /slow HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
	http_conn_eof(f->c);
	http_conn_free(f->c);
	f->c = NULL;
	assert_true(http_response_gone(f->held[0]));
	assert_int_equal(http_response_header(f->held[0], "X-A", "b"), 0);
	assert_int_equal(http_respond(f->held[0], 200, NULL, "late", 4), 0);
	assert_int_equal(f->out.len, 0);
	fix_free(f);
}

static void test_write_failure(void **state)
{
	struct fix *f = fix_new(MODE_ECHO, NULL);

	(void)state;
	f->write_rv = SHOAL_EIO;
	feed(f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_seen, 1);
	assert_int_equal(f->respond_rv, SHOAL_EIO);
	assert_int_equal(f->closes, 1);
	fix_free(f);
}

static void test_buffered_input_bounded(void **state)
{
	struct http_limits limits = {.max_header_bytes = 64, .max_body_bytes = 64};
	struct fix *f = fix_new(MODE_HOLD, &limits);
	char junk[200];

	(void)state;
	feed(f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
	assert_int_equal(f->n_seen, 1);
	memset(junk, 'x', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	feed(f, junk); /* past 128 bytes buffered: cut off after /a */
	assert_int_equal(f->closes, 0);
	assert_int_equal(http_respond(f->held[0], 200, NULL, NULL, 0), 0);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->n_seen, 1);
	fix_free(f);
}

/* ---- Helpers ------------------------------------------------------------------- */

static void test_error_body(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(http_error_body(&b, "no such node: \"abc\""), 0);
	assert_string_equal(b.data, "{\"message\":\"no such node: \\\"abc\\\"\"}");
	buf_free(&b);
	/* Bytes that are not UTF-8 still give valid JSON. */
	assert_int_equal(http_error_body(&b, "bad \xff name"), 0);
	assert_string_equal(b.data, "{\"message\":\"bad ? name\"}");
	buf_free(&b);
}

static void test_reason(void **state)
{
	(void)state;
	assert_string_equal(http_reason(200), "OK");
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(413), "Payload Too Large");
	assert_string_equal(http_reason(503), "Service Unavailable");
	assert_string_equal(http_reason(599), "Unknown");
	assert_string_equal(http_reason(42), "Unknown");
}

/* ---- The server on a real unix socket -------------------------------------------- */

struct srv_fix {
	uv_loop_t loop;
	char dir[64];
	char path[128];
	struct http_server *s;
	const char *request;
	uv_pipe_t client;
	uv_connect_t connect;
	uv_write_t write;
	struct buf in;
	bool client_closed;
	bool server_closed;
	unsigned conns_in_handler;
	bool gone_after_close;
	struct http_response *held;
};

static void srv_handler(void *arg, struct http_request *req, struct http_response *res)
{
	struct srv_fix *f = arg;

	f->conns_in_handler = http_server_conns(f->s);
	if (strcmp(req->path, "/hold") == 0) {
		/* Shut the server down with this response still pending. */
		f->held = res;
		http_server_close(f->s, NULL, NULL);
		f->gone_after_close = http_response_gone(res);
		return;
	}
	http_respond(res, 200, "text/plain", "pong", 4);
}

static void srv_closed_cb(void *arg)
{
	struct srv_fix *f = arg;

	f->server_closed = true;
}

static void srv_fix_init(struct srv_fix *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/shoal-test-http-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/shoal.sock", f->dir);
	buf_init(&f->in);
}

static void srv_fix_done(struct srv_fix *f)
{
	assert_int_equal(uv_loop_close(&f->loop), 0);
	buf_free(&f->in);
	unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);
}

static void client_close_cb(uv_handle_t *h)
{
	struct srv_fix *f = h->data;

	f->client_closed = true;
	if (f->held == NULL)
		http_server_close(f->s, srv_closed_cb, f);
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char mem[4096];

	(void)h;
	(void)suggested;
	*buf = uv_buf_init(mem, sizeof(mem));
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct srv_fix *f = stream->data;

	if (nread > 0)
		assert_int_equal(buf_append(&f->in, buf->base, (size_t)nread), 0);
	else if (nread < 0)
		uv_close((uv_handle_t *)stream, client_close_cb);
}

static void client_write_cb(uv_write_t *req, int status)
{
	(void)req;
	assert_int_equal(status, 0);
}

static void client_connect_cb(uv_connect_t *req, int status)
{
	struct srv_fix *f = req->data;
	uv_buf_t buf = uv_buf_init((char *)(uintptr_t)f->request, (unsigned)strlen(f->request));

	assert_int_equal(status, 0);
	assert_int_equal(uv_write(&f->write, (uv_stream_t *)&f->client, &buf, 1, client_write_cb),
			 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&f->client, client_alloc_cb, client_read_cb),
			 0);
}

static void client_start(struct srv_fix *f, const char *request)
{
	f->request = request;
	assert_int_equal(uv_pipe_init(&f->loop, &f->client, 0), 0);
	f->client.data = f;
	f->connect.data = f;
	uv_pipe_connect(&f->connect, &f->client, f->path, client_connect_cb);
}

static void test_server_unix_socket(void **state)
{
	struct srv_fix f;
	struct shoal_err err = {{0}};
	struct resp_set set;
	struct stat st;

	(void)state;
	srv_fix_init(&f);
	assert_int_equal(
	    http_server_start(&f.s, &f.loop, f.path, 0660, NULL, srv_handler, &f, &err), 0);
	assert_int_equal(stat(f.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(http_server_conns(f.s), 0);

	client_start(&f, "GET /ping HTTP/1.1\r\nHost: shoal\r\n\r\n"
			 "GET /ping HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n");
	assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
	assert_true(f.client_closed);
	assert_true(f.server_closed);
	assert_int_equal(f.conns_in_handler, 1);

	parse_responses(&f.in, false, true, &set);
	assert_int_equal(set.n, 2);
	assert_int_equal(set.r[0].status, 200);
	assert_memory_equal(set.r[0].body.data, "pong", 4);
	assert_null(resp_header(&set.r[0], "Connection"));
	assert_int_equal(set.r[1].status, 200);
	assert_string_equal(resp_header(&set.r[1], "Connection"), "close");
	resp_set_free(&set);

	assert_int_equal(stat(f.path, &st), -1);
	assert_int_equal(errno, ENOENT);
	srv_fix_done(&f);
}

static void test_server_stale_and_busy(void **state)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct shoal_err err = {{0}};
	struct http_server *other = NULL;
	struct srv_fix f;
	char file[160];
	int fd;

	(void)state;
	srv_fix_init(&f);
	/* A socket file left behind by a daemon that died. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_true(strlen(f.path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, f.path, strlen(f.path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_int_equal(
	    http_server_start(&f.s, &f.loop, f.path, 0600, NULL, srv_handler, &f, &err), 0);

	/* A live server is not replaced. */
	assert_int_equal(
	    http_server_start(&other, &f.loop, f.path, 0600, NULL, srv_handler, &f, &err),
	    SHOAL_EBUSY);
	assert_null(other);
	assert_non_null(strstr(err.msg, "another process is serving"));
	assert_non_null(strstr(err.msg, f.path));

	/* Nor is a file that is not a socket. */
	snprintf(file, sizeof(file), "%s/plain", f.dir);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(
	    http_server_start(&other, &f.loop, file, 0600, NULL, srv_handler, &f, &err),
	    SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "is not a socket"));
	assert_int_equal(unlink(file), 0);

	http_server_close(f.s, srv_closed_cb, &f);
	assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
	assert_true(f.server_closed);
	assert_int_equal(access(f.path, F_OK), -1);
	srv_fix_done(&f);
}

static void test_server_close_with_pending_response(void **state)
{
	struct shoal_err err = {{0}};
	struct srv_fix f;

	(void)state;
	srv_fix_init(&f);
	assert_int_equal(
	    http_server_start(&f.s, &f.loop, f.path, 0660, NULL, srv_handler, &f, &err), 0);
	client_start(&f, "GET /hold HTTP/1.1\r\n\r\n");
	assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
	assert_non_null(f.held);
	assert_true(f.gone_after_close);
	assert_true(f.client_closed);
	assert_int_equal(f.in.len, 0); /* the client saw the connection end */
	/* Finishing the orphaned response releases it. */
	assert_true(http_response_gone(f.held));
	assert_int_equal(http_respond(f.held, 200, NULL, "late", 4), 0);
	assert_int_equal(access(f.path, F_OK), -1);
	srv_fix_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_simple),
	    cmocka_unit_test(test_head_no_body),
	    cmocka_unit_test(test_post_content_length),
	    cmocka_unit_test(test_post_chunked_byte_by_byte),
	    cmocka_unit_test(test_pipelined_in_order),
	    cmocka_unit_test(test_pipelined_async),
	    cmocka_unit_test(test_connection_close),
	    cmocka_unit_test(test_http10),
	    cmocka_unit_test(test_no_content),
	    cmocka_unit_test(test_response_header),
	    cmocka_unit_test(test_expect_continue),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_body_too_large),
	    cmocka_unit_test(test_headers_too_large),
	    cmocka_unit_test(test_unsupported),
	    cmocka_unit_test(test_path_decoded),
	    cmocka_unit_test(test_query_get),
	    cmocka_unit_test(test_stream_chunked),
	    cmocka_unit_test(test_stream_head_and_http10),
	    cmocka_unit_test(test_client_gone),
	    cmocka_unit_test(test_write_failure),
	    cmocka_unit_test(test_buffered_input_bounded),
	    cmocka_unit_test(test_error_body),
	    cmocka_unit_test(test_reason),
	    cmocka_unit_test(test_server_unix_socket),
	    cmocka_unit_test(test_server_stale_and_busy),
	    cmocka_unit_test(test_server_close_with_pending_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
