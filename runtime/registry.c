/* Registry HTTP API v2 client (libcurl): references, bearer challenges and tokens, manifests,
 * blobs. */
#include "runtime/registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/buf.h"

#define TOKEN_MAX	 (16u << 10) /* bytes of a bearer token */
#define TOKEN_BODY_MAX	 (1u << 20)  /* bytes of a token server's answer */
#define ERROR_BODY_MAX	 (64u << 10) /* bytes of an error body kept for its message */
#define HEADER_VALUE_MAX 4096u	     /* bytes of a header value we keep */
#define CONNECT_TIMEOUT	 15L
#define LOW_SPEED_LIMIT	 1024L /* bytes per second ... */
#define LOW_SPEED_TIME	 30L   /* ... for this many seconds, else the transfer fails */
#define MAX_REDIRECTS	 10L

static const char accept_manifests[] = "Accept: application/vnd.oci.image.index.v1+json, "
				       "application/vnd.oci.image.manifest.v1+json, "
				       "application/vnd.docker.distribution.manifest.list.v2+json, "
				       "application/vnd.docker.distribution.manifest.v2+json";

/* ---- references ---- */

static bool is_domain(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '.' || s[i] == ':' || (s[i] >= 'A' && s[i] <= 'Z'))
			return true;
	return n == 9 && memcmp(s, "localhost", 9) == 0;
}

int registry_ref_parse(const char *s, struct registry_ref *out, struct shoal_err *err)
{
	char name[IMAGE_REF_MAX], norm[IMAGE_REF_MAX];
	const char *at = strchr(s, '@'), *slash, *colon;
	size_t n = at != NULL ? (size_t)(at - s) : strlen(s);
	int rv;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(name))
		return shoal_errf(err, SHOAL_EINVAL, "invalid reference format: '%.80s'", s);
	memcpy(name, s, n);
	name[n] = '\0';
	if (at != NULL) {
		if (strncmp(at + 1, "sha256:", 7) != 0 ||
		    digest_parse(at + 1, &out->digest, NULL) != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid reference format: '%.200s': a digest is "
					  "sha256:<64 lowercase hex digits>",
					  s);
		out->has_digest = true;
	}
	rv = image_name_normalize(name, norm, sizeof(norm), err);
	if (rv != 0)
		return rv;
	/* The familiar repository: the normalised name without its tag. */
	slash = strrchr(norm, '/');
	colon = strrchr(slash != NULL ? slash : norm, ':');
	if (colon == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "invalid reference format: '%.200s'", s);
	memcpy(out->family, norm, (size_t)(colon - norm));
	out->family[colon - norm] = '\0';
	/* "name@digest" without a tag pulls the digest only, as Docker does. */
	const char *last = strrchr(name, '/');
	if (at == NULL || strchr(last != NULL ? last : name, ':') != NULL) {
		snprintf(out->tag, sizeof(out->tag), "%s", colon + 1);
		snprintf(out->name, sizeof(out->name), "%s", norm);
	}
	slash = strchr(out->family, '/');
	if (slash != NULL && is_domain(out->family, (size_t)(slash - out->family))) {
		size_t dn = (size_t)(slash - out->family);
		if (dn >= sizeof(out->domain))
			return shoal_errf(err, SHOAL_EINVAL, "invalid reference format: '%.200s'",
					  s);
		memcpy(out->domain, out->family, dn);
		out->domain[dn] = '\0';
		snprintf(out->repo, sizeof(out->repo), "%s", slash + 1);
	} else {
		snprintf(out->domain, sizeof(out->domain), "docker.io");
		if (snprintf(out->repo, sizeof(out->repo), "%s%s", slash == NULL ? "library/" : "",
			     out->family) >= (int)sizeof(out->repo))
			return shoal_errf(err, SHOAL_EINVAL, "invalid reference format: '%.200s'",
					  s);
	}
	snprintf(out->host, sizeof(out->host), "%s",
		 strcmp(out->domain, "docker.io") == 0 ? "registry-1.docker.io" : out->domain);
	return 0;
}

/* ---- WWW-Authenticate ---- */

static bool tchar(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static size_t skip_ows(const char *p, size_t i, size_t len)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i;
}

int registry_challenge_parse(const char *hdr, size_t len, struct registry_challenge *out,
			     struct shoal_err *err)
{
	bool seen[3] = {false, false, false};
	size_t i = skip_ows(hdr, 0, len), start;

	memset(out, 0, sizeof(*out));
	start = i;
	while (i < len && tchar(hdr[i]))
		i++;
	if (i - start != 6 || strncasecmp(hdr + start, "Bearer", 6) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "the registry asks for authentication scheme '%.*s': only "
				  "anonymous Bearer tokens are supported",
				  (int)(i - start > 32 ? 32 : i - start), hdr + start);
	if (i >= len || (hdr[i] != ' ' && hdr[i] != '\t'))
		return shoal_errf(err, SHOAL_EPROTO, "a Bearer challenge without parameters");
	for (;;) {
		char *dst = NULL;
		size_t cap = 0, o = 0, klen, kstart;

		while (i < len && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ','))
			i++;
		if (i >= len)
			break;
		kstart = i;
		while (i < len && tchar(hdr[i]))
			i++;
		klen = i - kstart;
		i = skip_ows(hdr, i, len);
		if (klen == 0 || i >= len || hdr[i] != '=')
			return shoal_errf(err, SHOAL_EPROTO,
					  "a malformed Bearer challenge parameter at byte %zu",
					  kstart);
		i = skip_ows(hdr, i + 1, len);
		static const char *const keys[3] = {"realm", "service", "scope"};
		for (int k = 0; k < 3; k++) {
			if (klen != strlen(keys[k]) ||
			    strncasecmp(hdr + kstart, keys[k], klen) != 0)
				continue;
			if (seen[k])
				return shoal_errf(err, SHOAL_EPROTO,
						  "the Bearer challenge gives %s twice", keys[k]);
			seen[k] = true;
			dst = k == 0 ? out->realm : k == 1 ? out->service : out->scope;
			cap = k == 0 ? sizeof(out->realm) : sizeof(out->service);
		}
		if (i < len && hdr[i] == '"') {
			for (i++;; i++) {
				if (i >= len)
					return shoal_errf(err, SHOAL_EPROTO,
							  "an unterminated quoted string in the "
							  "Bearer challenge");
				if (hdr[i] == '"')
					break;
				if (hdr[i] == '\\') {
					if (++i >= len)
						return shoal_errf(err, SHOAL_EPROTO,
								  "an unterminated quoted "
								  "string in the Bearer "
								  "challenge");
				}
				if ((unsigned char)hdr[i] < 0x20 && hdr[i] != '\t')
					return shoal_errf(err, SHOAL_EPROTO,
							  "a control character in the Bearer "
							  "challenge");
				if (dst != NULL) {
					if (o + 1 >= cap)
						return shoal_errf(err, SHOAL_ETOOBIG,
								  "a Bearer challenge "
								  "parameter is longer than "
								  "%zu bytes",
								  cap - 1);
					dst[o++] = hdr[i];
				}
			}
			i++;
		} else {
			/* token68-ish values (base64 padding) are tchars plus '/' '='. */
			size_t vstart = i;
			while (i < len &&
			       (tchar(hdr[i]) || hdr[i] == '/' || hdr[i] == '=' || hdr[i] == ':'))
				i++;
			if (i == vstart)
				return shoal_errf(err, SHOAL_EPROTO,
						  "an empty Bearer challenge parameter at byte %zu",
						  kstart);
			if (dst != NULL) {
				if (i - vstart >= cap)
					return shoal_errf(err, SHOAL_ETOOBIG,
							  "a Bearer challenge parameter is longer "
							  "than %zu bytes",
							  cap - 1);
				memcpy(dst, hdr + vstart, i - vstart);
				o = i - vstart;
			}
		}
		if (dst != NULL)
			dst[o] = '\0';
		i = skip_ows(hdr, i, len);
		if (i < len && hdr[i] != ',')
			return shoal_errf(err, SHOAL_EPROTO,
					  "a malformed Bearer challenge at byte %zu: expected ','",
					  i);
	}
	if (!seen[0] || out->realm[0] == '\0')
		return shoal_errf(err, SHOAL_EPROTO, "the Bearer challenge has no realm");
	if (strncasecmp(out->realm, "https://", 8) != 0 &&
	    strncasecmp(out->realm, "http://", 7) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "the Bearer challenge's realm '%.200s' is not an http(s) URL",
				  out->realm);
	return 0;
}

/* ---- the client ---- */

struct registry_client {
	CURL *curl;
	struct registry_ref ref;
	struct registry_opts opts;
	bool insecure;
	char cafile[PATH_MAX]; /* certs.d's ca.crt for this registry, or "" */
	char *auth;	       /* "Authorization: Bearer ..." once a token was fetched */
};

/* One response being received. Headers are those of the last response
 * (redirects reset them). */
struct xfer {
	struct registry_client *c;
	long status;
	char content_type[256];
	char docker_digest[128];
	char www_auth[HEADER_VALUE_MAX];
	struct buf body; /* a 2xx body (memory sink) or an error body */
	size_t max;	 /* bound on a 2xx body in memory */
	bool too_big;
	/* blob sink */
	struct image_store *s;
	struct image_blob_writer *w;
	uint64_t expect; /* bytes the blob must have */
	uint64_t got;
	bool overrun;
	int write_rv;
	struct shoal_err *err;
	registry_progress_fn progress;
	void *progress_arg;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int registry_client_new(const struct registry_ref *ref, const struct registry_opts *opts,
			struct registry_client **out, struct shoal_err *err)
{
	struct registry_client *c;
	struct stat st;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return shoal_errf(err, SHOAL_ENOMEM, "cannot initialise libcurl: %s",
				  curl_easy_strerror(curl_init_rc));
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		free(c);
		return shoal_errf(err, SHOAL_ENOMEM, "cannot create a libcurl handle");
	}
	c->ref = *ref;
	c->opts = *opts;
	for (size_t i = 0; i < opts->n_insecure; i++)
		if (strcmp(opts->insecure[i], ref->domain) == 0 ||
		    strcmp(opts->insecure[i], ref->host) == 0)
			c->insecure = true;
	if (opts->certs_dir != NULL &&
	    (size_t)snprintf(c->cafile, sizeof(c->cafile), "%s/%s/ca.crt", opts->certs_dir,
			     ref->domain) < sizeof(c->cafile) &&
	    stat(c->cafile, &st) == 0 && S_ISREG(st.st_mode)) {
		/* keep it */
	} else {
		c->cafile[0] = '\0';
	}
	*out = c;
	return 0;
}

void registry_client_free(struct registry_client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	free(c->auth);
	free(c);
}

static bool cancelled(const struct registry_client *c)
{
	return c->opts.cancel != NULL && atomic_load(c->opts.cancel);
}

static bool status_ok(long status)
{
	return status >= 200 && status < 300;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, k, vlen;
	const char *v;
	char *dst = NULL;
	size_t cap = 0;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or a 100): forget the last one's. */
		x->content_type[0] = x->docker_digest[0] = x->www_auth[0] = '\0';
		return len;
	}
	v = memchr(data, ':', len);
	if (v == NULL)
		return len;
	k = (size_t)(v - data);
	v++;
	while (v < data + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(data + len - v);
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	if (k == 12 && strncasecmp(data, "Content-Type", k) == 0) {
		dst = x->content_type;
		cap = sizeof(x->content_type);
	} else if (k == 21 && strncasecmp(data, "Docker-Content-Digest", k) == 0) {
		dst = x->docker_digest;
		cap = sizeof(x->docker_digest);
	} else if (k == 16 && strncasecmp(data, "WWW-Authenticate", k) == 0 &&
		   x->www_auth[0] == '\0') {
		dst = x->www_auth;
		cap = sizeof(x->www_auth);
	}
	if (dst != NULL) {
		if (vlen >= cap)
			vlen = cap - 1; /* truncated: parsing it then fails cleanly */
		memcpy(dst, v, vlen);
		dst[vlen] = '\0';
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &x->status);
	if (!status_ok(x->status)) {
		if (x->body.len + len <= ERROR_BODY_MAX && buf_append(&x->body, data, len) != 0)
			return 0;
		return len;
	}
	if (x->w != NULL) {
		if (len > x->expect - x->got) {
			x->overrun = true;
			return 0;
		}
		x->write_rv = image_store_blob_write(x->w, data, len, x->err);
		if (x->write_rv != 0)
			return 0;
		x->got += len;
		return len;
	}
	if (len > x->max - x->body.len) {
		x->too_big = true;
		return 0;
	}
	return buf_append(&x->body, data, len) == 0 ? len : 0;
}

static int on_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (cancelled(x->c))
		return 1;
	if (x->w != NULL && x->progress != NULL && status_ok(x->status))
		x->progress(x->progress_arg, x->got, x->expect);
	return 0;
}

/* "manifest unknown: manifest unknown" from the registry's JSON error body, as
 * Docker prints errcode errors, or "" if the body holds none. */
static void registry_error_text(const struct buf *body, char *out, size_t len)
{
	json_t *j, *errs, *e;
	const char *code, *msg;
	size_t o = 0;

	out[0] = '\0';
	if (body->len == 0)
		return;
	j = json_loadb(body->data, body->len, 0, NULL);
	errs = json_object_get(j, "errors");
	e = json_array_get(errs, 0);
	code = json_string_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	if (code != NULL) {
		for (; code[o] != '\0' && o + 1 < len && o < 64; o++)
			out[o] = code[o] == '_' ? ' ' : (char)tolower((unsigned char)code[o]);
		out[o] = '\0';
		if (msg != NULL)
			snprintf(out + o, len - o, ": %.200s", msg);
		for (size_t i = 0; out[i] != '\0'; i++)
			if ((unsigned char)out[i] < 0x20)
				out[i] = ' ';
	}
	json_decref(j);
}

static int set_common(struct registry_client *c, struct xfer *x, const char *url,
		      struct curl_slist *headers, char *errbuf)
{
	CURL *h = c->curl;

	curl_easy_reset(h);
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK)
		return -1;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_LIMIT);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "shoal/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (c->cafile[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
	if (headers != NULL)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	return 0;
}

/* One GET of @url into @x. Returns 0 once a response arrived (any status), or
 * an error for a transfer that failed. */
static int perform(struct registry_client *c, struct xfer *x, const char *url, const char *accept,
		   const char *auth, struct shoal_err *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *t;
	CURLcode rc;
	int rv = 0;

	if (accept != NULL) {
		t = curl_slist_append(headers, accept);
		if (t == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		headers = t;
	}
	if (auth != NULL) {
		t = curl_slist_append(headers, auth);
		if (t == NULL) {
			curl_slist_free_all(headers);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		}
		headers = t;
	}
	if (set_common(c, x, url, headers, errbuf) != 0) {
		curl_slist_free_all(headers);
		return shoal_errf(err, SHOAL_EIO, "libcurl lacks http(s) support");
	}
	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &x->status);
	curl_slist_free_all(headers);
	if (rc == CURLE_OK)
		return 0;
	if (cancelled(c))
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the pull was cancelled");
	if (x->write_rv != 0)
		return x->write_rv;
	if (x->overrun)
		return shoal_errf(err, SHOAL_EPROTO,
				  "the registry sent more than the %llu bytes the manifest gives",
				  (unsigned long long)x->expect);
	if (x->too_big)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "Get \"%s\": the answer is larger than %zu bytes", url, x->max);
	rv = shoal_errf(err, SHOAL_EIO, "Get \"%s\": %s%s%s", url, curl_easy_strerror(rc),
			errbuf[0] != '\0' ? ": " : "", errbuf);
	if (!c->insecure && strncmp(url, "https:", 6) == 0 &&
	    (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
	     rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_RECV_ERROR)) {
		char why[SHOAL_ERR_LEN];
		snprintf(why, sizeof(why), "%s", err->msg);
		shoal_errf(err, rv,
			   "%s (the registry %s is reached over HTTPS: give it a CA in "
			   "certs.d/%s/ca.crt under the daemon's state directory, or, for a "
			   "plain-HTTP registry, start the daemon with --insecure-registry %s)",
			   why, c->ref.domain, c->ref.domain, c->ref.domain);
	}
	return rv;
}

/* An anonymous token for @ch (scope defaulting to pull of our repository). */
static int fetch_token(struct registry_client *c, const struct registry_challenge *ch,
		       struct shoal_err *err)
{
	char scope[REGISTRY_PARAM_MAX + 64];
	struct buf url;
	struct xfer x;
	char *e;
	json_t *j = NULL;
	const char *tok;
	int rv;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.max = TOKEN_BODY_MAX;
	x.err = err;
	buf_init(&url);
	buf_init(&x.body);
	if (ch->scope[0] != '\0')
		snprintf(scope, sizeof(scope), "%s", ch->scope);
	else
		snprintf(scope, sizeof(scope), "repository:%s:pull", c->ref.repo);
	rv = buf_appendf(&url, "%s%s", ch->realm, strchr(ch->realm, '?') != NULL ? "&" : "?");
	if (rv == 0 && ch->service[0] != '\0') {
		e = curl_easy_escape(c->curl, ch->service, 0);
		rv = e != NULL ? buf_appendf(&url, "service=%s&", e) : SHOAL_ENOMEM;
		curl_free(e);
	}
	if (rv == 0) {
		e = curl_easy_escape(c->curl, scope, 0);
		rv = e != NULL ? buf_appendf(&url, "scope=%s", e) : SHOAL_ENOMEM;
		curl_free(e);
	}
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	rv = perform(c, &x, url.data, NULL, NULL, err);
	if (rv != 0)
		goto out;
	if (!status_ok(x.status)) {
		rv = shoal_errf(err, SHOAL_EIO, "the token server %.200s answered %ld", ch->realm,
				x.status);
		goto out;
	}
	j = json_loadb(x.body.data != NULL ? x.body.data : "", x.body.len, 0, NULL);
	tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL || tok[0] == '\0')
		tok = json_string_value(json_object_get(j, "access_token"));
	if (tok == NULL || tok[0] == '\0') {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"the token server %.200s gave no token (no \"token\" or "
				"\"access_token\" field)",
				ch->realm);
		goto out;
	}
	if (strlen(tok) > TOKEN_MAX) {
		rv = shoal_errf(err, SHOAL_ETOOBIG, "the token from %.200s is longer than %u bytes",
				ch->realm, TOKEN_MAX);
		goto out;
	}
	for (const char *p = tok; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			rv = shoal_errf(err, SHOAL_EPROTO,
					"the token from %.200s holds a character a header cannot "
					"carry",
					ch->realm);
			goto out;
		}
	free(c->auth);
	c->auth = malloc(strlen(tok) + sizeof("Authorization: Bearer "));
	if (c->auth == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	sprintf(c->auth, "Authorization: Bearer %s", tok);
out:
	json_decref(j);
	buf_free(&url);
	buf_free(&x.body);
	return rv;
}

/* GET @path of the registry into @x, fetching a token on a 401 and trying
 * again once. Returns 0 with a 2xx in x->status, or an error. @what names the
 * object for messages. */
static int get(struct registry_client *c, struct xfer *x, const char *path, const char *accept,
	       const char *what, struct shoal_err *err)
{
	char url[REGISTRY_HOST_MAX + REGISTRY_REPO_MAX + 256], text[400];
	int rv;

	snprintf(url, sizeof(url), "%s://%s%s", c->insecure ? "http" : "https", c->ref.host, path);
	for (int attempt = 0;; attempt++) {
		struct registry_challenge ch;

		buf_free(&x->body);
		buf_init(&x->body);
		x->status = 0;
		rv = perform(c, x, url, accept, c->auth, err);
		if (rv != 0)
			return rv;
		if (x->status != 401 || attempt > 0)
			break;
		if (x->www_auth[0] == '\0')
			break;
		rv = registry_challenge_parse(x->www_auth, strlen(x->www_auth), &ch, err);
		if (rv == 0)
			rv = fetch_token(c, &ch, err);
		if (rv != 0) {
			shoal_err_wrap(err, "authenticate to %s", c->ref.domain);
			return rv;
		}
		/* A 401's body went to x->body (on_body), never into a blob. */
	}
	if (status_ok(x->status))
		return 0;
	registry_error_text(&x->body, text, sizeof(text));
	if (x->status == 404)
		return shoal_errf(err, SHOAL_ENOTFOUND, "%s not found: %s", what,
				  text[0] != '\0' ? text : "404 Not Found");
	if (x->status == 401 || x->status == 403)
		return shoal_errf(err, SHOAL_EIO,
				  "pull access denied for %s, repository does not exist or may "
				  "require authorization: %s",
				  c->ref.family, text[0] != '\0' ? text : "access denied");
	return shoal_errf(err, SHOAL_EIO, "Get \"%s\": the registry answered %ld%s%s", url,
			  x->status, text[0] != '\0' ? ": " : "", text);
}

int registry_get_manifest(struct registry_client *c, const char *reference, char **body,
			  size_t *len, enum oci_media_type *type, struct digest *digest,
			  struct shoal_err *err)
{
	char path[REGISTRY_REPO_MAX + 256], what[IMAGE_REF_MAX + 128], ct[256];
	struct digest want;
	struct xfer x;
	bool by_digest = strncmp(reference, "sha256:", 7) == 0;
	int rv;

	*body = NULL;
	*len = 0;
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.max = OCI_MAX_MANIFEST;
	x.err = err;
	buf_init(&x.body);
	snprintf(path, sizeof(path), "/v2/%s/manifests/%s", c->ref.repo, reference);
	snprintf(what, sizeof(what), "manifest for %s%s%s", c->ref.family, by_digest ? "@" : ":",
		 reference);
	rv = get(c, &x, path, accept_manifests, what, err);
	if (rv != 0)
		goto out;
	if (x.body.len == 0) {
		rv = shoal_errf(err, SHOAL_EPROTO, "%s: the registry sent an empty manifest", what);
		goto out;
	}
	digest_buf(x.body.data, x.body.len, digest);
	if (by_digest &&
	    (digest_parse(reference, &want, NULL) != 0 || !digest_equal(&want, digest))) {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"%s: digest mismatch: the registry sent content with digest %s",
				what, digest->str);
		goto out;
	}
	if (x.docker_digest[0] != '\0' && strncmp(x.docker_digest, "sha256:", 7) == 0 &&
	    strcmp(x.docker_digest, digest->str) != 0) {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"%s: digest mismatch: the registry says %.80s, the content has %s",
				what, x.docker_digest, digest->str);
		goto out;
	}
	snprintf(ct, sizeof(ct), "%s", x.content_type);
	ct[strcspn(ct, "; ")] = '\0';
	*type = oci_media_type_parse(ct);
	if (*type == OCI_MT_UNKNOWN && (ct[0] == '\0' || strcmp(ct, "application/json") == 0 ||
					strcmp(ct, "text/plain") == 0)) {
		/* No useful Content-Type: the document's own mediaType decides. */
		json_t *j = json_loadb(x.body.data, x.body.len, 0, NULL);
		const char *mt = json_string_value(json_object_get(j, "mediaType"));
		*type = mt != NULL ? oci_media_type_parse(mt) : OCI_MT_UNKNOWN;
		if (mt == NULL && json_object_get(j, "manifests") != NULL)
			*type = OCI_MT_OCI_INDEX;
		else if (mt == NULL && json_object_get(j, "layers") != NULL)
			*type = OCI_MT_OCI_MANIFEST;
		json_decref(j);
	}
	if (!oci_media_type_is_index(*type) && !oci_media_type_is_manifest(*type)) {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"%s: unsupported manifest media type '%.100s': want an OCI index "
				"or manifest or a Docker manifest list or v2 manifest",
				what, ct[0] != '\0' ? ct : "(none)");
		goto out;
	}
	*body = x.body.data;
	*len = x.body.len;
	x.body.data = NULL;
out:
	buf_free(&x.body);
	return rv;
}

int registry_get_blob(struct registry_client *c, struct image_store *s, const struct digest *d,
		      uint64_t size, registry_progress_fn progress, void *arg,
		      struct shoal_err *err)
{
	char path[REGISTRY_REPO_MAX + 128], what[DIGEST_LEN + 16];
	struct image_blob_writer w;
	struct xfer x;
	int rv;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.err = err;
	x.s = s;
	x.w = &w;
	x.expect = size;
	x.progress = progress;
	x.progress_arg = arg;
	buf_init(&x.body);
	snprintf(path, sizeof(path), "/v2/%s/blobs/%s", c->ref.repo, d->str);
	snprintf(what, sizeof(what), "blob %s", d->str);
	rv = image_store_blob_begin(s, &w, err);
	if (rv != 0)
		goto out;
	rv = get(c, &x, path, NULL, what, err);
	if (rv == 0 && x.got != size)
		rv = shoal_errf(err, SHOAL_EPROTO,
				"blob %s: the registry sent %llu bytes, the manifest gives %llu",
				d->str, (unsigned long long)x.got, (unsigned long long)size);
	if (rv == 0) {
		struct digest got;
		rv = image_store_blob_commit(s, &w, d, &got, NULL, err);
		if (rv != 0)
			shoal_err_wrap(err, "blob %s", d->str);
	}
	if (rv == 0 && progress != NULL)
		progress(arg, size, size);
	image_store_blob_abort(&w);
out:
	buf_free(&x.body);
	return rv;
}
