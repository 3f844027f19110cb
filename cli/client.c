/* HTTP/1.1 + JSON to the daemon's unix socket with libcurl. */
#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "lib/log.h"

#define UNIX_PREFIX "unix://"

struct client {
	CURL *curl;
	char *host;
	char *sock_path; /* points into host */
	char errbuf[CURL_ERROR_SIZE];
};

/* The response body as it arrives. */
struct sink {
	struct buf body;
	bool too_big;
	/* Streaming (client_request_lines, client_request_frames): lines or
	 * frames of a 2xx body go here as they come. */
	CURL *curl;
	client_line_fn on_line;
	client_frame_fn on_frame;
	void *arg;
	int line_rv; /* what on_line returned to stop the transfer */
	struct shoal_err *err;
};

/* Hand the complete lines held in @sink to its callback. With @all, the
 * last partial line too. Returns what the callback returned (0 to go on). */
static int deliver_lines(struct sink *sink, bool all)
{
	size_t start = 0;
	int rv = 0;

	while (rv == 0 && start < sink->body.len) {
		const char *p = sink->body.data + start;
		const char *nl = memchr(p, '\n', sink->body.len - start);
		size_t n;

		if (nl == NULL && !all)
			break;
		n = nl != NULL ? (size_t)(nl - p) : sink->body.len - start;
		rv = sink->on_line(sink->arg, p, n, sink->err);
		start += n + (nl != NULL ? 1 : 0);
	}
	buf_consume(&sink->body, start);
	return rv;
}

/* The same for Docker's multiplexed frames (8-byte header: stream byte,
 * three zero bytes, big-endian payload length). With @all, bytes left that
 * are not a whole frame are an error. */
static int deliver_frames(struct sink *sink, bool all)
{
	size_t start = 0;
	int rv = 0;

	while (rv == 0 && sink->body.len - start >= 8) {
		const unsigned char *h = (const unsigned char *)sink->body.data + start;
		size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];

		if (sink->body.len - start - 8 < n)
			break;
		rv = sink->on_frame(sink->arg, h[0], (const char *)h + 8, n, sink->err);
		start += 8 + n;
	}
	buf_consume(&sink->body, start);
	if (rv == 0 && all && sink->body.len > 0)
		rv = shoal_errf(sink->err, SHOAL_EPROTO, "the log stream ended inside a frame");
	return rv;
}

static int deliver(struct sink *sink, bool all)
{
	return sink->on_frame != NULL ? deliver_frames(sink, all) : deliver_lines(sink, all);
}

int client_open(struct client **out, const char *host, struct shoal_err *err)
{
	struct sockaddr_un sa;
	struct client *c;
	size_t plen;

	if (strncmp(host, UNIX_PREFIX, strlen(UNIX_PREFIX)) != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid host \"%s\": shoal connects only to unix sockets, "
				  "written unix:///PATH",
				  host);
	plen = strlen(host + strlen(UNIX_PREFIX));
	if (plen == 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid host \"%s\": the socket path is missing (unix:///PATH)",
				  host);
	if (plen >= sizeof(sa.sun_path))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid host \"%s\": a unix socket path has at most %zu bytes",
				  host, sizeof(sa.sun_path) - 1);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	c->host = strdup(host);
	if (c->host == NULL) {
		free(c);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	c->sock_path = c->host + strlen(UNIX_PREFIX);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(c->host);
		free(c);
		return shoal_errf(err, SHOAL_EIO, "cannot initialise libcurl");
	}
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		curl_global_cleanup();
		free(c->host);
		free(c);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory creating the HTTP client");
	}
	*out = c;
	return 0;
}

void client_close(struct client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	curl_global_cleanup();
	free(c->host);
	free(c);
}

const char *client_host(const struct client *c)
{
	return c->host;
}

void client_resp_free(struct client_resp *resp)
{
	free(resp->body);
	json_decref(resp->json);
	memset(resp, 0, sizeof(*resp));
}

int client_escape(struct buf *out, const char *s, bool query)
{
	static const char hex[] = "0123456789ABCDEF";
	int rv = 0;

	for (; *s != '\0' && rv == 0; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[3];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			rv = buf_append(out, s, 1);
		} else if (c == ' ' && query) {
			rv = buf_append(out, "+", 1);
		} else {
			esc[0] = '%';
			esc[1] = hex[c >> 4];
			esc[2] = hex[c & 15];
			rv = buf_append(out, esc, 3);
		}
	}
	return rv;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *sink = arg;
	size_t n = size * nmemb;
	long status = 0;

	if (sink->body.len + n > CLIENT_MAX_BODY) {
		sink->too_big = true;
		return 0;
	}
	if (buf_append(&sink->body, data, n) != 0)
		return 0;
	if (sink->on_line != NULL || sink->on_frame != NULL) {
		curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status <= 299) {
			sink->line_rv = deliver(sink, false);
			if (sink->line_rv != 0)
				return 0; /* stops the transfer */
		}
	}
	return n;
}

static const char *status_text(long status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 409:
		return "Conflict";
	case 413:
		return "Request Entity Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static int status_code(long status)
{
	switch (status) {
	case 400:
		return SHOAL_EINVAL;
	case 404:
		return SHOAL_ENOTFOUND;
	case 409:
		return SHOAL_ECONFLICT;
	case 503:
		return SHOAL_ESTATE;
	default:
		return SHOAL_EIO;
	}
}

/* Docker's checkResponseErr(): the daemon's message, else the body's text. */
static int daemon_error(long status, const char *url, struct buf *body, struct shoal_err *err)
{
	const char *msg = NULL;
	json_t *j = NULL;
	size_t start, end;
	int rv;

	if (body->len > 0)
		j = json_loadb(body->data, body->len, 0, NULL);
	if (json_is_object(j))
		msg = json_string_value(json_object_get(j, "message"));
	if (msg != NULL) {
		rv = shoal_errf(err, status_code(status), "Error response from daemon: %s", msg);
		json_decref(j);
		return rv;
	}
	json_decref(j);
	start = 0;
	end = body->len;
	while (start < end && strchr(" \t\r\n", body->data[start]) != NULL)
		start++;
	while (end > start && strchr(" \t\r\n", body->data[end - 1]) != NULL)
		end--;
	if (start == end)
		return shoal_errf(err, status_code(status),
				  "request returned %s for API route and version %s, check if the "
				  "server supports the requested API version",
				  status_text(status), url);
	return shoal_errf(err, status_code(status), "Error response from daemon: %.*s",
			  (int)(end - start), body->data + start);
}

static int transport_error(struct client *c, CURLcode cc, const char *method, const char *path,
			   bool too_big, struct shoal_err *err)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return shoal_errf(
		    err, SHOAL_EUNAVAIL,
		    "Cannot connect to the shoal daemon at %s. Is the daemon running?", c->host);
	case CURLE_OUT_OF_MEMORY:
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory talking to the daemon");
	case CURLE_WRITE_ERROR:
		if (too_big)
			return shoal_errf(err, SHOAL_ETOOBIG,
					  "the daemon's answer to %s %s is larger than %zu MiB",
					  method, path, CLIENT_MAX_BODY >> 20);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory reading the daemon's answer");
	default:
		return shoal_errf(err, SHOAL_EIO,
				  "error during connect to the shoal daemon at %s: %s %s: %s",
				  c->host, method, path,
				  c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(cc));
	}
}

static int add_header(struct curl_slist **list, const char *header)
{
	struct curl_slist *l = curl_slist_append(*list, header);

	if (l == NULL)
		return SHOAL_ENOMEM;
	*list = l;
	return 0;
}

/* A request body read from a file as curl asks for it. */
struct source {
	FILE *in;
	bool failed; /* a read error, not the end of the file */
	int errnum;  /* its errno */
};

static size_t on_read(char *data, size_t size, size_t nmemb, void *arg)
{
	struct source *src = arg;
	size_t n = fread(data, 1, size * nmemb, src->in);

	if (n == 0 && ferror(src->in)) {
		src->failed = true;
		src->errnum = errno;
		return CURL_READFUNC_ABORT;
	}
	return n;
}

/* One request. The body is @payload (JSON), or the bytes of @in (sent
 * chunked, as @ctype), or nothing. With @parse_json a 2xx body is parsed. */
static int perform(struct client *c, const char *method, const char *path, const json_t *body,
		   FILE *in, const char *ctype, bool parse_json, client_line_fn on_line,
		   client_frame_fn on_frame, void *line_arg, struct client_resp *resp,
		   struct shoal_err *err)
{
	struct curl_slist *headers = NULL;
	struct sink sink = {.too_big = false,
			    .on_line = on_line,
			    .on_frame = on_frame,
			    .arg = line_arg,
			    .err = err};
	struct source src = {.in = in, .failed = false, .errnum = 0};
	char *payload = NULL;
	struct buf url, ctype_hdr;
	long status = 0;
	json_error_t jerr;
	CURLcode cc;
	int rv;

	memset(resp, 0, sizeof(*resp));
	buf_init(&url);
	buf_init(&ctype_hdr);
	buf_init(&sink.body);
	if (buf_appendf(&url, "http://localhost/v%s%s", CLIENT_API_VERSION, path) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		if (payload == NULL) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory encoding the request");
			goto out;
		}
	}
	/* An empty "Expect:" stops curl from waiting for "100 Continue". */
	if (add_header(&headers, "Expect:") != 0 ||
	    add_header(&headers, "User-Agent: shoal-cli/" PACKAGE_VERSION) != 0 ||
	    (payload != NULL && add_header(&headers, "Content-Type: application/json") != 0) ||
	    (in != NULL && (buf_appendf(&ctype_hdr, "Content-Type: %s", ctype) != 0 ||
			    add_header(&headers, ctype_hdr.data) != 0))) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}

	curl_easy_reset(c->curl);
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->sock_path);
	curl_easy_setopt(c->curl, CURLOPT_URL, url.data);
	curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	if (in != NULL) {
		/* No size given: curl sends the body chunked. */
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c->curl, CURLOPT_READDATA, &src);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload != NULL ? payload : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE,
				 payload != NULL ? (long)strlen(payload) : 0L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
		if (payload != NULL) {
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
		}
	}

	sink.curl = c->curl;
	cc = curl_easy_perform(c->curl);
	if (sink.line_rv != 0) {
		rv = sink.line_rv; /* the callback stopped it and said why in @err */
		goto out;
	}
	if (cc != CURLE_OK && src.failed) {
		rv = shoal_errf(err, SHOAL_EIO, "read the request body: %s", strerror(src.errnum));
		goto out;
	}
	if (cc != CURLE_OK) {
		rv = transport_error(c, cc, method, url.data + strlen("http://localhost"),
				     sink.too_big, err);
		log_debug("cli", "%s %s: %s", method, url.data, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	log_debug("cli", "%s %s -> %ld (%zu bytes)", method, url.data, status, sink.body.len);
	if (status < 200 || status > 299) {
		rv = daemon_error(status, url.data, &sink.body, err);
		goto out;
	}
	if (on_line != NULL || on_frame != NULL) {
		rv = deliver(&sink, true);
		resp->status = status;
		goto out;
	}
	if (buf_append(&sink.body, "", 0) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	resp->status = status;
	if (parse_json && sink.body.len > 0) {
		resp->json = json_loadb(sink.body.data, sink.body.len, JSON_DECODE_ANY, &jerr);
		if (resp->json == NULL) {
			rv = shoal_errf(err, SHOAL_EPROTO,
					"the daemon's answer to %s %s is not JSON: %s (line %d)",
					method, path, jerr.text, jerr.line);
			goto out;
		}
	}
	resp->len = sink.body.len;
	resp->body = buf_steal(&sink.body, NULL);
	rv = 0;
out:
	if (rv != 0)
		client_resp_free(resp);
	curl_slist_free_all(headers);
	free(payload);
	buf_free(&sink.body);
	buf_free(&ctype_hdr);
	buf_free(&url);
	return rv;
}

int client_request(struct client *c, const char *method, const char *path, const json_t *body,
		   struct client_resp *resp, struct shoal_err *err)
{
	return perform(c, method, path, body, NULL, NULL, true, NULL, NULL, NULL, resp, err);
}

int client_request_lines(struct client *c, const char *method, const char *path, const json_t *body,
			 client_line_fn on_line, void *arg, struct shoal_err *err)
{
	struct client_resp resp;
	int rv = perform(c, method, path, body, NULL, NULL, false, on_line, NULL, arg, &resp, err);

	client_resp_free(&resp);
	return rv;
}

int client_request_frames(struct client *c, const char *method, const char *path,
			  client_frame_fn on_frame, void *arg, struct shoal_err *err)
{
	struct client_resp resp;
	int rv = perform(c, method, path, NULL, NULL, NULL, false, NULL, on_frame, arg, &resp, err);

	client_resp_free(&resp);
	return rv;
}

int client_request_file(struct client *c, const char *method, const char *path, FILE *in,
			const char *content_type, struct client_resp *resp, struct shoal_err *err)
{
	return perform(c, method, path, NULL, in, content_type, false, NULL, NULL, NULL, resp, err);
}
