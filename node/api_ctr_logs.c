/* Container logs over HTTP: read the json-file log, frame each entry as
 * Docker does, and follow it while the container runs.
 *
 * A follow: read everything asked for -> watch the log (ctr_log_watch) and
 * wait for the container to stop (ctr_wait) -> on each watch call, read the
 * new entries -> on the wait's callback, read what is left, end the stream,
 * drop the watch and free. Ways out early: the container is removed (the
 * watch's last call, gone = true), until has passed, the client went away
 * (seen at the next watch call; the HTTP core gives no word of it sooner).
 * The follower lives until the wait's callback has run, since a wait cannot
 * be cancelled; the watch is dropped from that callback only, never from
 * the watch's own. */
#include "node/api_ctr_logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "node/api.h"
#include "node/api_containers.h"
#include "runtime/logfile.h"

#define FLUSH_BYTES (64u << 10) /* frames are sent in chunks of about this much */

struct follower {
	struct containers *cs;
	struct http_request *req;
	struct http_response *res;
	struct logfile_query q;
	bool timestamps;
	char id[65];
	char path[4096];
	struct logfile_pos pos; /* where the last read ended */
	uint64_t token;		/* the log watch; 0 when there is none */
	bool wait_pending;	/* ctr_wait's callback has not run yet */
	bool ended;		/* the response is finished */
	bool write_failed;
	struct buf out; /* frames not yet sent */
};

static int flush(struct follower *f)
{
	int rv = 0;

	if (f->out.len > 0 && !f->write_failed) {
		rv = http_stream_write(f->res, f->out.data, f->out.len);
		if (rv != 0)
			f->write_failed = true;
	}
	buf_consume(&f->out, f->out.len);
	return rv;
}

static int on_entry(void *arg, const struct logfile_entry *e)
{
	struct follower *f = arg;

	if (f->write_failed)
		return 1;
	if (logfile_frame(&f->out, e, f->timestamps, NULL) != 0) {
		f->write_failed = true;
		return 1;
	}
	if (f->out.len >= FLUSH_BYTES && flush(f) != 0)
		return 1;
	return 0;
}

/* Read the entries appended since the last read and send them. */
static void drain(struct follower *f)
{
	struct shoal_err err;

	if (f->ended || f->write_failed)
		return;
	if (logfile_read_from(f->path, &f->q, &f->pos, on_entry, f, &err) != 0)
		log_debug("api", "logs of %.12s: %s", f->id, err.msg);
	flush(f);
}

static void end_stream(struct follower *f)
{
	if (f->ended)
		return;
	flush(f);
	http_stream_end(f->res);
	f->ended = true;
}

static void follower_free(struct follower *f)
{
	buf_free(&f->out);
	free(f);
}

static void on_append(void *arg, bool gone)
{
	struct follower *f = arg;

	if (gone) {
		/* Removed: the watch is over, and so is the log. */
		f->token = 0;
		end_stream(f);
		if (!f->wait_pending)
			follower_free(f);
		return;
	}
	if (f->ended)
		return; /* waiting for the wait's callback to drop the watch */
	if (http_response_gone(f->res) || f->write_failed) {
		end_stream(f);
		return;
	}
	drain(f);
	if (f->write_failed || (f->q.until_ns != 0 && (uint64_t)clock_now_ns() >= f->q.until_ns))
		end_stream(f);
}

static void on_exit_(void *arg, int status, const char *err)
{
	struct follower *f = arg;

	(void)status;
	(void)err;
	f->wait_pending = false;
	drain(f); /* what the container wrote last */
	end_stream(f);
	if (f->token != 0)
		ctr_log_unwatch(f->cs, f->token);
	f->token = 0;
	follower_free(f);
}

/* Docker's since/until: Unix seconds with an optional fraction of up to nine
 * digits, or RFC 3339. Empty or "0" is no bound (0). */
static int parse_time(const char *key, const char *v, uint64_t *out, struct shoal_err *err)
{
	uint64_t sec = 0, frac = 0;
	int64_t ns;
	const char *p = v;
	int digits = 0;

	*out = 0;
	if (v == NULL || v[0] == '\0')
		return 0;
	if (clock_parse_rfc3339(v, &ns) == 0 && ns >= 0) {
		*out = (uint64_t)ns;
		return 0;
	}
	for (; *p >= '0' && *p <= '9' && digits < 12; p++, digits++)
		sec = sec * 10 + (uint64_t)(*p - '0');
	if (digits == 0 || (*p >= '0' && *p <= '9'))
		goto bad;
	if (*p == '.') {
		int fd = 0;
		for (p++; *p >= '0' && *p <= '9' && fd < 9; p++, fd++)
			frac = frac * 10 + (uint64_t)(*p - '0');
		if (fd == 0)
			goto bad;
		for (; fd < 9; fd++)
			frac *= 10;
	}
	if (*p != '\0')
		goto bad;
	*out = sec * 1000000000u + frac;
	return 0;
bad:
	return shoal_errf(err, SHOAL_EINVAL,
			  "invalid %s '%.64s': want Unix seconds (1700000000 or "
			  "1700000000.5) or an RFC 3339 time",
			  key, v);
}

int api_logs_query(struct http_request *req, struct logfile_query *q, bool *timestamps,
		   bool *follow, struct shoal_err *err)
{
	size_t cap = strlen(req->query) + 1;
	_cleanup_free_ char *v = malloc(cap);
	int rv;

	if (v == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	q->stdout_ = api_query_bool(req, "stdout");
	q->stderr_ = api_query_bool(req, "stderr");
	if (!q->stdout_ && !q->stderr_)
		return shoal_errf(err, SHOAL_EINVAL, "You must choose at least one stream");
	*timestamps = api_query_bool(req, "timestamps");
	*follow = api_query_bool(req, "follow");
	q->tail = -1;
	if (http_query_get(req, "tail", v, cap) && v[0] != '\0' && strcmp(v, "all") != 0) {
		char *end;
		long long n;
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*end != '\0' || errno != 0 || n < 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid tail '%.32s': want a number of lines or \"all\"",
					  v);
		q->tail = n;
	}
	rv =
	    parse_time("since", http_query_get(req, "since", v, cap) ? v : NULL, &q->since_ns, err);
	if (rv == 0)
		rv = parse_time("until", http_query_get(req, "until", v, cap) ? v : NULL,
				&q->until_ns, err);
	return rv;
}

void api_containers_logs(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	struct follower *f;
	struct shoal_err err;
	bool follow = false;
	int rv;

	if (c == NULL)
		return;
	f = calloc(1, sizeof *f);
	if (f == NULL) {
		api_reply_status(req, res, 500, "out of memory");
		return;
	}
	f->cs = cs;
	f->req = req;
	f->res = res;
	buf_init(&f->out);
	snprintf(f->id, sizeof(f->id), "%s", c->id);
	snprintf(f->path, sizeof(f->path), "%s", c->log_path);
	rv = api_logs_query(req, &f->q, &f->timestamps, &follow, &err);
	if (rv != 0) {
		api_reply_error(req, res, rv, err.msg);
		follower_free(f);
		return;
	}
	http_stream_start(res, 200, "application/vnd.docker.raw-stream");
	rv = logfile_read(f->path, &f->q, on_entry, f, &f->pos, &err);
	if (rv != 0 && rv != SHOAL_ENOTFOUND)
		log_warn("api", "logs of %.12s: %s", f->id, err.msg);
	flush(f);
	if (!follow || c->state != CTR_RUNNING || f->write_failed ||
	    (f->q.until_ns != 0 && (uint64_t)clock_now_ns() >= f->q.until_ns)) {
		end_stream(f);
		follower_free(f);
		return;
	}
	/* From here on: every new entry, and no tail. */
	f->q.tail = -1;
	f->token = ctr_log_watch(cs, f->id, on_append, f);
	if (f->token == 0) {
		end_stream(f);
		follower_free(f);
		return;
	}
	f->wait_pending = true;
	ctr_wait(cs, f->id, on_exit_, f);
}
