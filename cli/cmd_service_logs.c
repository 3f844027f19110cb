/* "shoal service logs": a service's or a task's logs, as docker service logs
 * prints them.
 *
 * The target is a service, else a task (Docker's order: "no such task or
 * service: X" when it is neither). The daemon is asked for details (unless
 * --raw): each entry then starts with "[TIME ]node=..,service=..,task=.. ",
 * from which the line's prefix "web.1.abc123def456@host    | " is made, the
 * names looked up once per task (--no-resolve keeps the ids, --no-task-ids
 * drops the task id, --no-trunc keeps it whole). Padding aligns slots up to
 * the service's replica count, as Docker pads them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "cli/jsonfmt.h"
#include "lib/buf.h"
#include "lib/clock.h"

#define MAX_CACHED 1024

struct prefix {
	char key[200]; /* node id, service id, task id */
	char *text;    /* "web.1.abc@host" and its padding */
};

struct logs_run {
	struct cli_ctx *ctx;
	struct client *client;
	struct client *lookups; /* names, asked while the log streams on client */
	bool raw, timestamps, details, no_resolve, no_trunc, no_task_ids;
	int padding; /* digits of the largest slot */
	struct prefix *cache;
	size_t n_cache;
	struct buf line;
};

static int digits(long long v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static int get_json(struct client *client, const char *prefix, const char *id,
		    struct client_resp *r, struct shoal_err *err)
{
	struct buf path;
	int rv;

	buf_init(&path);
	rv = buf_appendf(&path, "%s", prefix) != 0 || client_escape(&path, id, false) != 0
		 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
		 : client_request(client, "GET", path.data, NULL, r, err);
	buf_free(&path);
	return rv;
}

/* The name Docker's idresolver gives: a node's Spec.Name, else its
 * hostname; a service's name; the id itself with --no-resolve or when the
 * object is gone. */
static char *resolve(struct logs_run *lr, const char *prefix, const char *id)
{
	struct client_resp r = {0};
	struct shoal_err err;
	const char *name = id;
	char *copy;

	if (!lr->no_resolve && get_json(lr->lookups, prefix, id, &r, &err) == 0) {
		name = jsonfmt_str(r.json, "Spec.Name");
		if (name[0] == '\0')
			name = jsonfmt_str(r.json, "Description.Hostname");
		if (name[0] == '\0')
			name = id;
	}
	copy = strdup(name);
	client_resp_free(&r);
	return copy;
}

/* "web.1.abc123def456@host" plus padding for the task, cached. */
static const char *prefix_for(struct logs_run *lr, const char *node, const char *service,
			      const char *task, struct shoal_err *err)
{
	struct client_resp r = {0};
	struct prefix *p;
	char key[200];
	char *node_name = NULL, *svc_name = NULL;
	long long slot;
	struct buf text;
	int pad;

	snprintf(key, sizeof(key), "%s/%s/%s", node, service, task);
	for (size_t i = 0; i < lr->n_cache; i++)
		if (strcmp(lr->cache[i].key, key) == 0)
			return lr->cache[i].text;
	if (get_json(lr->lookups, "/tasks/", task, &r, err) != 0)
		return NULL;
	slot = jsonfmt_int(r.json, "Slot", 0);
	client_resp_free(&r);
	node_name = resolve(lr, "/nodes/", node);
	svc_name = resolve(lr, "/services/", service);
	buf_init(&text);
	if (node_name == NULL || svc_name == NULL ||
	    buf_appendf(&text, "%s.%lld", svc_name, slot) != 0 ||
	    (!lr->no_task_ids &&
	     buf_appendf(&text, ".%.*s", lr->no_trunc ? (int)strlen(task) : 12, task) != 0) ||
	    buf_appendf(&text, "@%s", node_name) != 0)
		goto oom;
	for (pad = lr->padding - digits(slot); pad > 0; pad--)
		if (buf_append(&text, " ", 1) != 0)
			goto oom;
	if (lr->n_cache == MAX_CACHED) {
		free(lr->cache[0].text);
		memmove(lr->cache, lr->cache + 1, (MAX_CACHED - 1) * sizeof(*lr->cache));
		lr->n_cache--;
	}
	p = &lr->cache[lr->n_cache++];
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->text = buf_steal(&text, NULL);
	free(node_name);
	free(svc_name);
	return p->text;
oom:
	buf_free(&text);
	free(node_name);
	free(svc_name);
	shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return NULL;
}

/* Split the details "k=v,k=v" into the context and the rest, which
 * --details prints as it came (shoal's daemon sends the context alone). */
static int parse_details(const char *d, size_t n, char *node, char *service, char *task, size_t cap,
			 struct buf *rest, struct shoal_err *err)
{
	size_t start = 0;

	node[0] = service[0] = task[0] = '\0';
	while (start < n) {
		const char *p = d + start;
		const char *comma = memchr(p, ',', n - start);
		size_t len = comma != NULL ? (size_t)(comma - p) : n - start;
		const char *eq = memchr(p, '=', len);
		char *dst = NULL;
		size_t klen;

		if (eq == NULL)
			return shoal_errf(err, SHOAL_EPROTO, "invalid details format");
		klen = (size_t)(eq - p);
		if (klen == 24 && memcmp(p, "com.docker.swarm.node.id", klen) == 0)
			dst = node;
		else if (klen == 27 && memcmp(p, "com.docker.swarm.service.id", klen) == 0)
			dst = service;
		else if (klen == 24 && memcmp(p, "com.docker.swarm.task.id", klen) == 0)
			dst = task;
		if (dst != NULL)
			snprintf(dst, cap, "%.*s", (int)(len - klen - 1), eq + 1);
		else if ((rest->len > 0 && buf_append(rest, ",", 1) != 0) ||
			 buf_append(rest, p, len))
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		start += len + 1;
	}
	if (node[0] == '\0' || service[0] == '\0' || task[0] == '\0')
		return shoal_errf(err, SHOAL_EPROTO, "missing %s id in details: %.*s",
				  node[0] == '\0'      ? "node"
				  : service[0] == '\0' ? "service"
						       : "task",
				  (int)n, d);
	return 0;
}

static int on_frame(void *arg, int stream, const char *data, size_t len, struct shoal_err *err)
{
	struct logs_run *lr = arg;
	FILE *to = stream == 2 ? lr->ctx->err : lr->ctx->out;
	const char *p = data, *end = data + len, *ts = NULL, *sp;
	size_t ts_len = 0;
	char node[96], service[96], task[96];
	const char *prefix;
	struct buf rest;
	int rv;

	if (lr->raw) {
		if (fwrite(data, 1, len, to) != len)
			return shoal_errf(err, SHOAL_EIO, "write the logs: short write");
		return 0;
	}
	if (lr->timestamps) {
		sp = memchr(p, ' ', (size_t)(end - p));
		if (sp == NULL)
			goto bad;
		ts = p;
		ts_len = (size_t)(sp - p);
		p = sp + 1;
	}
	sp = memchr(p, ' ', (size_t)(end - p));
	if (sp == NULL)
		goto bad;
	buf_init(&rest);
	rv = parse_details(p, (size_t)(sp - p), node, service, task, sizeof(node), &rest, err);
	prefix = rv == 0 ? prefix_for(lr, node, service, task, err) : NULL;
	if (prefix == NULL) {
		buf_free(&rest);
		return rv != 0 ? rv : SHOAL_EIO;
	}
	buf_consume(&lr->line, lr->line.len);
	rv = 0;
	if (ts != NULL)
		rv = buf_append(&lr->line, ts, ts_len) || buf_append(&lr->line, " ", 1);
	rv = rv || buf_appendf(&lr->line, "%s    | ", prefix);
	if (lr->details)
		rv = rv || buf_append(&lr->line, rest.data, rest.len) ||
		     buf_append(&lr->line, " ", 1);
	rv = rv || buf_append(&lr->line, sp + 1, (size_t)(end - sp - 1));
	buf_free(&rest);
	if (rv != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (fwrite(lr->line.data, 1, lr->line.len, to) != lr->line.len)
		return shoal_errf(err, SHOAL_EIO, "write the logs: short write");
	fflush(to);
	return 0;
bad:
	return shoal_errf(err, SHOAL_EPROTO, "invalid context in log message: %.*s", (int)len,
			  data);
}

/* Docker's --since: a time the daemon reads (Unix seconds, RFC 3339), or a
 * duration back from now ("42m", "1h30m", "10s"). */
static int since_value(const char *v, struct buf *out, struct shoal_err *err)
{
	const char *p = v;
	double total = 0;

	if (v[0] == '\0')
		return 0;
	while (*p != '\0') {
		char *end;
		double n = strtod(p, &end);
		double unit;

		if (end == p || !isdigit((unsigned char)*p))
			break;
		p = end;
		if (strncmp(p, "ms", 2) == 0) {
			unit = 0.001;
			p += 2;
		} else if (*p == 's' || *p == 'm' || *p == 'h') {
			unit = *p == 's' ? 1 : *p == 'm' ? 60 : 3600;
			p++;
		} else {
			break;
		}
		total += n * unit;
		if (*p == '\0') {
			double at = (double)clock_now_ns() / 1e9 - total;
			return buf_appendf(out, "%.9f", at > 0 ? at : 0) != 0
				   ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
				   : 0;
		}
	}
	return client_escape(out, v, true) != 0 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
						: 0;
}

/* Docker's --tail: a number of lines, or "all" for anything else. */
static const char *tail_value(const char *v)
{
	const char *p = v;

	if (*p == '\0')
		return "all";
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return "all";
	return v;
}

static int run_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	struct logs_run lr = {.ctx = ctx};
	bool follow = false;
	const char *since = "", *tail = "all";
	const struct flag_spec specs[] = {
	    {"details", 0, FLAG_BOOL, NULL, "Show extra details provided to logs", NULL,
	     &lr.details},
	    {"follow", 'f', FLAG_BOOL, NULL, "Follow log output", NULL, &follow},
	    {"no-resolve", 0, FLAG_BOOL, NULL, "Do not map IDs to Names in output", NULL,
	     &lr.no_resolve},
	    {"no-task-ids", 0, FLAG_BOOL, NULL, "Do not include task IDs in output", NULL,
	     &lr.no_task_ids},
	    {"no-trunc", 0, FLAG_BOOL, NULL, "Do not truncate output", NULL, &lr.no_trunc},
	    {"raw", 0, FLAG_BOOL, NULL, "Do not neatly format logs", NULL, &lr.raw},
	    {"since", 0, FLAG_STRING, "string",
	     "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative\n(e.g. "
	     "\"42m\" for 42 minutes)",
	     NULL, &since},
	    {"tail", 'n', FLAG_STRING, "string", "Number of lines to show from the end of the logs",
	     "\"all\"", &tail},
	    {"timestamps", 't', FLAG_BOOL, NULL, "Show timestamps", NULL, &lr.timestamps},
	};
	struct flags_result res;
	struct client_resp r = {0};
	struct shoal_err err;
	struct buf path;
	const char *kind = "/services/";
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	buf_init(&path);
	buf_init(&lr.line);
	lr.cache = calloc(MAX_CACHED, sizeof(*lr.cache));
	rv = lr.cache == NULL ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
			      : cli_client(ctx, &lr.client, &err);
	if (rv == 0)
		rv = client_open(&lr.lookups, ctx->host, &err);
	if (rv != 0)
		goto out;
	/* A service, else a task. */
	rv = get_json(lr.client, "/services/", res.args[0], &r, &err);
	if (rv == 0) {
		lr.padding = digits(jsonfmt_int(r.json, "Spec.Mode.Replicated.Replicas", 1));
	} else if (rv == SHOAL_ENOTFOUND) {
		kind = "/tasks/";
		rv = get_json(lr.client, "/tasks/", res.args[0], &r, &err);
		if (rv == 0)
			lr.padding = digits(jsonfmt_int(r.json, "Slot", 0));
		else if (rv == SHOAL_ENOTFOUND)
			shoal_errf(&err, rv, "no such task or service: %s", res.args[0]);
	}
	client_resp_free(&r);
	if (rv != 0)
		goto out;
	if (buf_appendf(&path, "%s", kind) != 0 || client_escape(&path, res.args[0], false) != 0 ||
	    buf_appendf(&path, "/logs?stdout=1&stderr=1&follow=%d&timestamps=%d&details=%d&tail=",
			follow, lr.timestamps, lr.details || !lr.raw) != 0 ||
	    client_escape(&path, tail_value(tail), true) != 0 || buf_appendf(&path, "&since=")) {
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	rv = since_value(since, &path, &err);
	if (rv == 0)
		rv = client_request_frames(lr.client, "GET", path.data, on_frame, &lr, &err);
out:
	fflush(ctx->out);
	for (size_t i = 0; lr.cache != NULL && i < lr.n_cache; i++)
		free(lr.cache[i].text);
	free(lr.cache);
	client_close(lr.lookups);
	buf_free(&lr.line);
	buf_free(&path);
	flags_result_free(&res);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_service_logs = {
    .name = "logs",
    .use = "[OPTIONS] SERVICE|TASK",
    .short_help = "Fetch the logs of a service or task",
    .run = run_logs,
};
