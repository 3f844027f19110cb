/* The container endpoints of the Docker Engine API over runtime/container.h.
 *
 * Reads (list, inspect) and kill answer at once. Start, stop, restart and
 * remove hand an op to the runtime and answer from its callback; wait sends
 * its headers at once and its body from ctr_wait's callback, as Docker does.
 * An op copies the container's full id: the runtime's struct container may
 * be gone by the time the callback runs. A client that went away meanwhile
 * costs nothing: the HTTP core keeps the response until it is finished and
 * writes to a closed connection go nowhere. */
#include "node/api_containers.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "node/api.h"

#define MSG_NO_RUNTIME "this daemon runs no containers: it was started without a container runtime"
#define ZERO_TIME      "0001-01-01T00:00:00Z"

/* --- replies ---------------------------------------------------------------- */

static void reply_code(struct http_request *req, struct http_response *res, int code,
		       const char *message)
{
	api_reply_error(req, res, code,
			message != NULL && message[0] != '\0' ? message : shoal_strerror(code));
}

const struct container *api_ctr_find(struct containers *cs, const char *ref,
				     struct http_request *req, struct http_response *res)
{
	const struct container *c = NULL;
	struct shoal_err err;
	int rv;

	if (cs == NULL) {
		api_reply_status(req, res, 503, MSG_NO_RUNTIME);
		return NULL;
	}
	rv = ctr_lookup(cs, ref, &c, &err);
	if (rv != 0) {
		reply_code(req, res, rv, err.msg);
		return NULL;
	}
	return c;
}

/* --- JSON pieces ------------------------------------------------------------ */

/* A JSON string of @len bytes at @s; bytes that are not valid UTF-8 (a
 * message cut mid-character, a probe's binary output) become '?'. */
static json_t *text_json(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	char *copy;

	if (j != NULL)
		return j;
	copy = malloc(len + 1);
	if (copy == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		copy[i] = (unsigned char)s[i] >= 0x80 || s[i] == '\0' ? '?' : s[i];
	j = json_stringn(copy, len);
	free(copy);
	return j;
}

static json_t *str_json(const char *s)
{
	return s != NULL ? text_json(s, strlen(s)) : json_string("");
}

static json_t *time_json(uint64_t ns)
{
	char t[64];

	if (ns == 0)
		return json_string(ZERO_TIME);
	clock_format_rfc3339((int64_t)ns, t, sizeof(t));
	return json_string(t);
}

static json_t *strlist_json(const char *const *items, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++) {
		if (json_array_append_new(a, str_json(items[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *labels_json(const struct ctr_spec *s)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < s->n_labels; i++) {
		if (json_object_set_new(o, s->labels[i].key, str_json(s->labels[i].value)) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static const char *network_mode(const struct container *c)
{
	if (c->spec.network_none)
		return "none";
	return c->driver == CTR_DRIVER_PROCESS ? "host" : "bridge";
}

static const char *driver_name(const struct container *c)
{
	return c->driver == CTR_DRIVER_RUNC ? "overlay2" : "process";
}

static void format_ip(struct in_addr a, char *out, size_t len)
{
	const unsigned char *b = (const unsigned char *)&a.s_addr;

	snprintf(out, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

/* Address, gateway, MAC and prefix of @c's endpoint; empty without one. */
struct ep_text {
	char ip[16], gw[16], mac[18];
	int prefix;
};

static void endpoint_text(const struct container *c, struct ep_text *t)
{
	memset(t, 0, sizeof *t);
	if (!c->has_endpoint)
		return;
	format_ip(c->endpoint.addr, t->ip, sizeof(t->ip));
	format_ip(c->endpoint.gateway, t->gw, sizeof(t->gw));
	snprintf(t->mac, sizeof(t->mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->endpoint.mac[0],
		 c->endpoint.mac[1], c->endpoint.mac[2], c->endpoint.mac[3], c->endpoint.mac[4],
		 c->endpoint.mac[5]);
	t->prefix = c->endpoint.prefix;
}

/* {"<mode>": EndpointSettings}, as in NetworkSettings.Networks. */
static json_t *networks_json(const struct container *c)
{
	struct ep_text t;
	json_t *ep;

	endpoint_text(c, &t);
	ep = json_pack("{s:n, s:n, s:n, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:n}",
		       "IPAMConfig", "Links", "Aliases", "NetworkID", "", "EndpointID",
		       c->has_endpoint ? c->id : "", "Gateway", t.gw, "IPAddress", t.ip,
		       "IPPrefixLen", t.prefix, "IPv6Gateway", "", "GlobalIPv6Address", "",
		       "GlobalIPv6PrefixLen", 0, "MacAddress", t.mac, "DriverOpts");
	if (ep == NULL)
		return NULL;
	return json_pack("{s:o}", network_mode(c), ep);
}

static json_t *mounts_json(const struct container *c)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < c->spec.n_mounts; i++) {
		const struct ctr_mount *m = &c->spec.mounts[i];
		json_t *j = json_pack("{s:s, s:o, s:o, s:s, s:b, s:s}", "Type", "bind", "Source",
				      str_json(m->source), "Destination", str_json(m->target),
				      "Mode", m->readonly ? "ro" : "", "RW", !m->readonly,
				      "Propagation", "rprivate");
		if (json_array_append_new(a, j) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* Docker's Command of a summary: Path and Args, args holding a space quoted. */
static json_t *command_json(const struct container *c)
{
	struct buf b;
	json_t *j;
	int rv = 0;

	buf_init(&b);
	for (size_t i = 0; rv == 0 && i < c->args.n; i++) {
		const char *a = c->args.items[i];
		bool quote = i > 0 && strchr(a, ' ') != NULL;
		rv = buf_appendf(&b, "%s%s%s%s", i > 0 ? " " : "", quote ? "'" : "", a,
				 quote ? "'" : "");
	}
	j = rv == 0 ? text_json(b.data != NULL ? b.data : "", b.len) : NULL;
	buf_free(&b);
	return j;
}

void api_container_status_text(const struct container *c, int64_t now_ns, char *out, size_t len)
{
	char d[64];

	switch (c->state) {
	case CTR_RUNNING:
		clock_human_duration(now_ns - (int64_t)c->started_ns, d, sizeof(d));
		if (c->has_health && c->health != HEALTH_NONE)
			snprintf(out, len, "Up %s (%s%s)", d,
				 c->health == HEALTH_STARTING ? "health: " : "",
				 health_status_name(c->health));
		else
			snprintf(out, len, "Up %s", d);
		return;
	case CTR_REMOVING:
		snprintf(out, len, "Removal In Progress");
		return;
	case CTR_DEAD:
		snprintf(out, len, "Dead");
		return;
	case CTR_CREATED:
		snprintf(out, len, "Created");
		return;
	case CTR_EXITED:
		/* Docker: a container that never started reads "Created". */
		if (c->started_ns == 0) {
			snprintf(out, len, "Created");
		} else if (c->finished_ns == 0) {
			snprintf(out, len, "Exited (%d)", c->exit_code);
		} else {
			clock_human_duration(now_ns - (int64_t)c->finished_ns, d, sizeof(d));
			snprintf(out, len, "Exited (%d) %s ago", c->exit_code, d);
		}
		return;
	}
	snprintf(out, len, "%s", ctr_state_name(c->state));
}

json_t *api_container_summary(const struct container *c, int64_t now_ns)
{
	char status[128], name[CTR_NAME_MAX + 2];
	json_t *names, *host, *nets;

	api_container_status_text(c, now_ns, status, sizeof(status));
	snprintf(name, sizeof(name), "/%s", c->name);
	names = json_pack("[s]", name);
	host = json_pack("{s:s}", "NetworkMode", network_mode(c));
	nets = networks_json(c);
	return json_pack("{s:s, s:o, s:o, s:s, s:o, s:I, s:s, s:s, s:[], s:o, s:I, s:o, "
			 "s:{s:o}, s:o}",
			 "Id", c->id, "Names", names, "Image", str_json(c->spec.image), "ImageID",
			 c->image_id.str, "Command", command_json(c), "Created",
			 (json_int_t)(c->created_ns / 1000000000u), "State",
			 ctr_state_name(c->state), "Status", status, "Ports", "Labels",
			 labels_json(&c->spec), "SizeRw", (json_int_t)0, "HostConfig", host,
			 "NetworkSettings", "Networks", nets, "Mounts", mounts_json(c));
}

static json_t *health_json(const struct container *c)
{
	json_t *log = json_array();

	for (size_t i = 0; log != NULL && i < c->n_health_log; i++) {
		const struct health_result *r = &c->health_log[i];
		json_t *j = json_pack("{s:o, s:o, s:i, s:o}", "Start", time_json(r->start_ns),
				      "End", time_json(r->end_ns), "ExitCode", r->exit_code,
				      "Output", str_json(r->output));
		if (json_array_append_new(log, j) != 0) {
			json_decref(log);
			return NULL;
		}
	}
	if (log == NULL)
		return NULL;
	return json_pack("{s:s, s:i, s:o}", "Status", health_status_name(c->health),
			 "FailingStreak", c->health_failing_streak, "Log", log);
}

static json_t *state_json(const struct container *c)
{
	json_t *st = json_pack(
	    "{s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:o, s:o, s:o}", "Status",
	    ctr_state_name(c->state), "Running", c->state == CTR_RUNNING, "Paused", 0, "Restarting",
	    0, "OOMKilled", c->oom_killed, "Dead", c->state == CTR_DEAD, "RemovalInProgress",
	    c->state == CTR_REMOVING, "Pid", c->state == CTR_RUNNING ? c->pid : 0, "ExitCode",
	    c->exit_code, "Error", str_json(c->error), "StartedAt", time_json(c->started_ns),
	    "FinishedAt", time_json(c->finished_ns));

	if (st != NULL && c->has_health && c->health != HEALTH_NONE &&
	    json_object_set_new(st, "Health", health_json(c)) != 0) {
		json_decref(st);
		return NULL;
	}
	return st;
}

/* Set @key of @o to @v (stolen) unless @o has a value (not null) for it. */
static int set_default(json_t *o, const char *key, json_t *v)
{
	json_t *cur = json_object_get(o, key);

	if (cur != NULL && !json_is_null(cur)) {
		json_decref(v);
		return 0;
	}
	return json_object_set_new(o, key, v);
}

/* Config and HostConfig of inspect, from the spec as ctr_spec_to_json gives
 * it back (the create body: Config's fields with a HostConfig member). */
static int config_json(const struct container *c, json_t **config, json_t **hostconfig)
{
	json_t *body = ctr_spec_to_json(&c->spec), *host;
	char hostname[13];

	*config = *hostconfig = NULL;
	if (body == NULL)
		return -1;
	host = json_object_get(body, "HostConfig");
	host = json_is_object(host) ? json_incref(host) : json_object();
	json_object_del(body, "HostConfig");
	snprintf(hostname, sizeof(hostname), "%.12s", c->id);
	if (host == NULL || json_object_set_new(body, "Image", str_json(c->spec.image)) != 0 ||
	    /* Docker shows the short id when no hostname was asked for. */
	    (c->spec.hostname == NULL &&
	     json_object_set_new(body, "Hostname", json_string(hostname)) != 0) ||
	    set_default(body, "Tty", json_false()) != 0 ||
	    set_default(body, "OpenStdin", json_false()) != 0 ||
	    set_default(body, "AttachStdout", json_false()) != 0 ||
	    set_default(body, "AttachStderr", json_false()) != 0 ||
	    set_default(body, "Labels", labels_json(&c->spec)) != 0 ||
	    set_default(host, "NetworkMode", json_string(network_mode(c))) != 0 ||
	    set_default(host, "LogConfig",
			json_pack("{s:s, s:{}}", "Type", "json-file", "Config")) != 0) {
		json_decref(body);
		json_decref(host);
		return -1;
	}
	*config = body;
	*hostconfig = host;
	return 0;
}

/* PATH's directory + "/" + @name, or "" when the runtime writes no such
 * file (the process driver shares the host's). */
static json_t *ctr_file_json(const struct container *c, const char *name)
{
	const char *slash = strrchr(c->log_path, '/');
	struct buf b;
	json_t *j;

	if (c->driver != CTR_DRIVER_RUNC || slash == NULL)
		return json_string("");
	buf_init(&b);
	if (buf_appendf(&b, "%.*s/%s", (int)(slash - c->log_path), c->log_path, name) != 0) {
		buf_free(&b);
		return NULL;
	}
	j = text_json(b.data, b.len);
	buf_free(&b);
	return j;
}

json_t *api_container_inspect(const struct container *c)
{
	struct ep_text t;
	json_t *config, *host, *j;
	char name[CTR_NAME_MAX + 2];

	if (config_json(c, &config, &host) != 0)
		return NULL;
	endpoint_text(c, &t);
	snprintf(name, sizeof(name), "/%s", c->name);
	j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:s, s:i, s:s, "
		      "s:s, s:s, s:s, s:s, s:n, s:o, s:{s:s, s:n}, s:o, s:o}",
		      "Id", c->id, "Created", time_json(c->created_ns), "Path",
		      str_json(c->args.n > 0 ? c->args.items[0] : ""), "Args",
		      c->args.n > 0
			  ? strlist_json((const char *const *)c->args.items + 1, c->args.n - 1)
			  : json_array(),
		      "State", state_json(c), "Image", c->image_id.str, "ResolvConfPath",
		      ctr_file_json(c, "resolv.conf"), "HostnamePath", ctr_file_json(c, "hostname"),
		      "HostsPath", ctr_file_json(c, "hosts"), "LogPath", str_json(c->log_path),
		      "Name", name, "RestartCount", c->restart_count, "Driver", driver_name(c),
		      "Platform", "linux", "MountLabel", "", "ProcessLabel", "", "AppArmorProfile",
		      "", "ExecIDs", "HostConfig", host, "GraphDriver", "Name", driver_name(c),
		      "Data", "Mounts", mounts_json(c), "Config", config);
	if (j == NULL)
		return NULL;
	if (json_object_set_new(
		j, "NetworkSettings",
		json_pack("{s:s, s:s, s:b, s:s, s:i, s:{}, s:s, s:n, s:n, s:s, s:s, s:s, s:i, "
			  "s:s, s:i, s:s, s:s, s:o}",
			  "Bridge", "", "SandboxID", "", "HairpinMode", 0, "LinkLocalIPv6Address",
			  "", "LinkLocalIPv6PrefixLen", 0, "Ports", "SandboxKey", "",
			  "SecondaryIPAddresses", "SecondaryIPv6Addresses", "EndpointID",
			  c->has_endpoint ? c->id : "", "Gateway", t.gw, "GlobalIPv6Address", "",
			  "GlobalIPv6PrefixLen", 0, "IPAddress", t.ip, "IPPrefixLen", t.prefix,
			  "IPv6Gateway", "", "MacAddress", t.mac, "Networks", networks_json(c))) !=
	    0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* --- list ------------------------------------------------------------------- */

/* One filter key's values (OR'ed); keys are AND'ed. */
struct filter_key {
	const char *name;
	const char **values;
	size_t n;
};

struct list_filter {
	json_t *doc; /* owns the value strings */
	struct filter_key id, name, status, label;
};

static void list_filter_free(struct list_filter *f)
{
	free(f->id.values);
	free(f->name.values);
	free(f->status.values);
	free(f->label.values);
	json_decref(f->doc);
}

static bool status_known(const char *s)
{
	static const char *const known[] = {"created", "restarting", "running", "removing",
					    "paused",  "exited",     "dead"};

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (strcmp(s, known[i]) == 0)
			return true;
	return false;
}

/* Take the values of filter @key: {"k": {"v": true}} or the older {"k": ["v"]}. */
static int filter_values(struct filter_key *k, const char *key, json_t *v, struct shoal_err *err)
{
	size_t n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
	const char *name;
	json_t *x;
	size_t i;

	if (!json_is_object(v) && !json_is_array(v))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid filter '%s': want an object of values", key);
	k->name = key;
	k->values = calloc(n > 0 ? n : 1, sizeof(*k->values));
	if (k->values == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (json_is_object(v)) {
		json_object_foreach(v, name, x) k->values[k->n++] = name;
	} else {
		json_array_foreach(v, i, x)
		{
			if (!json_is_string(x))
				return shoal_errf(err, SHOAL_EINVAL,
						  "invalid filter '%s': values must be strings",
						  key);
			k->values[k->n++] = json_string_value(x);
		}
	}
	return 0;
}

static int list_filter_parse(struct list_filter *f, struct http_request *req, struct shoal_err *err)
{
	size_t cap = strlen(req->query) + 1;
	_cleanup_free_ char *text = malloc(cap);
	const char *key;
	json_t *v;
	int rv;

	memset(f, 0, sizeof *f);
	if (text == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (!http_query_get(req, "filters", text, cap) || text[0] == '\0')
		return 0;
	f->doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(f->doc))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid filters: want a JSON object such as "
				  "{\"name\":{\"web\":true}}");
	json_object_foreach(f->doc, key, v)
	{
		struct filter_key *k = strcmp(key, "id") == 0	    ? &f->id
				       : strcmp(key, "name") == 0   ? &f->name
				       : strcmp(key, "status") == 0 ? &f->status
				       : strcmp(key, "label") == 0  ? &f->label
								    : NULL;
		if (k == NULL)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid filter '%.64s': shoal filters containers by "
					  "id, name, status and label",
					  key);
		rv = filter_values(k, key, v, err);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < f->status.n; i++)
		if (!status_known(f->status.values[i]))
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "invalid filter 'status=%.64s': want created, restarting, "
			    "running, removing, paused, exited or dead",
			    f->status.values[i]);
	return 0;
}

/* Docker matches id and name filters as regular expressions against the id
 * and "/name". Returns 1 on a match, 0 if none, SHOAL_EINVAL for a bad one. */
static int regex_any(const struct filter_key *k, const char *subject, struct shoal_err *err)
{
	for (size_t i = 0; i < k->n; i++) {
		regex_t re;
		int m;
		if (regcomp(&re, k->values[i], REG_EXTENDED | REG_NOSUB) != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid filter '%s=%.64s': not a regular expression",
					  k->name, k->values[i]);
		m = regexec(&re, subject, 0, NULL, 0);
		regfree(&re);
		if (m == 0)
			return 1;
	}
	return 0;
}

static bool label_match(const struct ctr_spec *s, const char *want)
{
	const char *eq = strchr(want, '=');
	size_t klen = eq != NULL ? (size_t)(eq - want) : strlen(want);

	for (size_t i = 0; i < s->n_labels; i++) {
		if (strlen(s->labels[i].key) != klen || strncmp(s->labels[i].key, want, klen) != 0)
			continue;
		if (eq == NULL || strcmp(s->labels[i].value, eq + 1) == 0)
			return true;
	}
	return false;
}

/* 1 if @c passes @f, 0 if not, or an error code. */
static int filter_match(const struct list_filter *f, const struct container *c,
			struct shoal_err *err)
{
	char name[CTR_NAME_MAX + 2];
	int rv;

	if (f->id.n > 0 && (rv = regex_any(&f->id, c->id, err)) <= 0)
		return rv;
	snprintf(name, sizeof(name), "/%s", c->name);
	if (f->name.n > 0 && (rv = regex_any(&f->name, name, err)) <= 0)
		return rv;
	if (f->status.n > 0) {
		bool any = false;
		for (size_t i = 0; !any && i < f->status.n; i++)
			any = strcmp(f->status.values[i], ctr_state_name(c->state)) == 0;
		if (!any)
			return 0;
	}
	/* Every label filter must hold. */
	for (size_t i = 0; i < f->label.n; i++)
		if (!label_match(&c->spec, f->label.values[i]))
			return 0;
	return 1;
}

/* Query parameter @key, decoded, into *@out (heap; NULL when absent).
 * Returns 0 or SHOAL_ENOMEM. */
static int query_dup(struct http_request *req, const char *key, char **out)
{
	size_t cap = strlen(req->query) + 1; /* a decoded value is never longer */
	char *v = malloc(cap);

	*out = NULL;
	if (v == NULL)
		return SHOAL_ENOMEM;
	if (!http_query_get(req, key, v, cap)) {
		free(v);
		return 0;
	}
	*out = v;
	return 0;
}

/* An integer query parameter >= @min; @def when absent or empty. */
static int query_int(struct http_request *req, const char *key, long def, long min, long *out,
		     struct shoal_err *err)
{
	_cleanup_free_ char *v = NULL;
	char *end;
	long n;

	*out = def;
	if (query_dup(req, key, &v) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (v == NULL || v[0] == '\0')
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (*end != '\0' || errno != 0 || n < min || n > INT_MAX)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid %s '%.32s': want an integer from %ld up", key, v, min);
	*out = n;
	return 0;
}

void api_containers_list(struct containers *cs, struct http_request *req, struct http_response *res)
{
	struct list_filter f;
	struct shoal_err err;
	int64_t now = clock_now_ns();
	bool all = api_query_bool(req, "all");
	long limit;
	json_t *list;
	int rv;

	if (cs == NULL) {
		api_reply_status(req, res, 503, MSG_NO_RUNTIME);
		return;
	}
	rv = query_int(req, "limit", -1, -1, &limit, &err);
	if (rv == 0)
		rv = list_filter_parse(&f, req, &err);
	else
		memset(&f, 0, sizeof f);
	if (rv != 0) {
		list_filter_free(&f);
		reply_code(req, res, rv, err.msg);
		return;
	}
	/* As Docker: a limit or a status filter shows containers in any state. */
	if (limit > 0 || f.status.n > 0)
		all = true;
	list = json_array();
	for (size_t i = ctr_count(cs); list != NULL && i-- > 0;) {
		const struct container *c = ctr_at(cs, i);
		if (limit > 0 && (long)json_array_size(list) >= limit)
			break;
		if (!all && c->state != CTR_RUNNING)
			continue;
		rv = filter_match(&f, c, &err);
		if (rv < 0) {
			list_filter_free(&f);
			json_decref(list);
			reply_code(req, res, rv, err.msg);
			return;
		}
		if (rv == 1 && json_array_append_new(list, api_container_summary(c, now)) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	list_filter_free(&f);
	api_reply_json(req, res, 200, list);
}

void api_containers_inspect(struct containers *cs, const char *ref, struct http_request *req,
			    struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);

	if (c != NULL)
		api_reply_json(req, res, 200, api_container_inspect(c));
}

/* --- create and kill -------------------------------------------------------- */

/* Docker's container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+, a leading "/" allowed. */
static bool name_valid(const char *n)
{
	size_t len;

	if (n[0] == '/')
		n++;
	len = strlen(n);
	if (len < 2 || len > CTR_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

void api_containers_create(struct containers *cs, const json_t *body, struct http_request *req,
			   struct http_response *res)
{
	_cleanup_free_ char *name = NULL;
	const struct container *c;
	struct ctr_spec spec;
	struct shoal_err err;
	int rv;

	if (cs == NULL) {
		api_reply_status(req, res, 503, MSG_NO_RUNTIME);
		return;
	}
	if (req->body_len > CTR_SPEC_MAX_BODY) {
		api_reply_status(req, res, 413,
				 "the container create body is larger than 1 MiB, the most "
				 "shoal takes");
		return;
	}
	if (query_dup(req, "name", &name) != 0) {
		api_reply_status(req, res, 500, "out of memory");
		return;
	}
	if (name != NULL && name[0] == '\0') {
		free(name);
		name = NULL;
	}
	if (name != NULL && !name_valid(name)) {
		char msg[SHOAL_ERR_LEN];
		snprintf(msg, sizeof(msg),
			 "Invalid container name (%.200s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
			 "allowed",
			 name);
		api_reply_status(req, res, 400, msg);
		return;
	}
	rv = ctr_spec_parse(body, &spec, &err);
	if (rv != 0) {
		reply_code(req, res, rv, err.msg);
		return;
	}
	if (name != NULL) {
		free(spec.name);
		spec.name = strdup(name[0] == '/' ? name + 1 : name);
		if (spec.name == NULL) {
			ctr_spec_free(&spec);
			api_reply_status(req, res, 500, "out of memory");
			return;
		}
	}
	rv = ctr_create(cs, &spec, &c, &err);
	ctr_spec_free(&spec);
	if (rv != 0) {
		reply_code(req, res, rv, err.msg);
		return;
	}
	log_info("api", "created container %.12s (%s) from %s", c->id, c->name, c->image_name);
	api_reply_json(req, res, 201, json_pack("{s:s, s:[]}", "Id", c->id, "Warnings"));
}

void api_containers_kill(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	_cleanup_free_ char *sig = NULL;
	struct shoal_err err;
	int signo = SIGKILL, rv;

	if (c == NULL)
		return;
	if (query_dup(req, "signal", &sig) != 0) {
		api_reply_status(req, res, 500, "out of memory");
		return;
	}
	if (sig != NULL && sig[0] != '\0') {
		signo = ctr_signal_parse(sig);
		if (signo <= 0) {
			char msg[128];
			snprintf(msg, sizeof(msg), "Invalid signal: %.64s", sig);
			api_reply_status(req, res, 400, msg);
			return;
		}
	}
	rv = ctr_kill(cs, c->id, signo, &err);
	if (rv != 0) {
		/* Docker: killing a container that is not running is a conflict. */
		api_reply_status(req, res, rv == SHOAL_ESTATE ? 409 : api_status_for(rv), err.msg);
		return;
	}
	http_respond(res, 204, NULL, NULL, 0);
}

/* --- start, stop, restart, remove, wait ------------------------------------- */

/* One asynchronous request. Happy path: the runtime's callback -> 204 (or
 * wait's body). Failures: the runtime's status, mapped to Docker's codes
 * (SHOAL_ESTATE: 304 for start and stop). The op is freed once the reply is
 * finished. */
struct op {
	struct containers *cs;
	struct http_request *req;
	struct http_response *res;
	int timeout_s; /* stop and restart */
	char id[65];
	struct op *next; /* in pending_next_exit */
};

/* Waits for the next exit of containers that are not running: each becomes
 * a ctr_wait once the API has started its container (start, restart), and
 * is answered with an error if the container is removed first or the api
 * closes. (The docker CLI's `run` asks for one before it starts the
 * container.) The daemon has one loop, so one list serves it. */
static struct op *pending_next_exit;

static void wait_done(void *arg, int status, const char *err);

/* Hand @id's pending next-exit waits to the runtime: it runs now. */
static void arm_next_exit(struct containers *cs, const char *id)
{
	struct op **p = &pending_next_exit;

	while (*p != NULL) {
		struct op *w = *p;
		if (w->cs != cs || strcmp(w->id, id) != 0) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->next = NULL;
		ctr_wait(cs, w->id, wait_done, w);
	}
}

/* Answer the pending next-exit waits on @cs (on @id only, unless NULL). */
static void fail_next_exit(struct containers *cs, const char *id, int status, const char *msg)
{
	struct op **p = &pending_next_exit;

	while (*p != NULL) {
		struct op *w = *p;
		if (w->cs != cs || (id != NULL && strcmp(w->id, id) != 0)) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->next = NULL;
		wait_done(w, status, msg);
	}
}

void api_containers_close(struct containers *cs)
{
	fail_next_exit(cs, NULL, SHOAL_ESHUTDOWN, "the daemon is shutting down");
}

static struct op *op_new(struct containers *cs, const struct container *c, struct http_request *req,
			 struct http_response *res)
{
	struct op *op = calloc(1, sizeof *op);

	if (op == NULL) {
		api_reply_status(req, res, 500, "out of memory");
		return NULL;
	}
	op->cs = cs;
	op->req = req;
	op->res = res;
	op->timeout_s = -1;
	snprintf(op->id, sizeof(op->id), "%s", c->id);
	return op;
}

/* 204, 304 for SHOAL_ESTATE when @estate_304, else the error; frees @op. */
static void op_finish(struct op *op, int status, const char *err, bool estate_304)
{
	if (status == 0)
		http_respond(op->res, 204, NULL, NULL, 0);
	else if (status == SHOAL_ESTATE && estate_304)
		http_respond(op->res, 304, NULL, NULL, 0);
	else
		reply_code(op->req, op->res, status, err);
	free(op);
}

static void start_done(void *arg, int status, const char *err)
{
	struct op *op = arg;

	if (status == 0)
		arm_next_exit(op->cs, op->id);
	op_finish(op, status, err, true);
}

void api_containers_start(struct containers *cs, const char *ref, struct http_request *req,
			  struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	struct op *op;

	if (c == NULL || (op = op_new(cs, c, req, res)) == NULL)
		return;
	ctr_start(cs, op->id, start_done, op);
}

/* The ?t= of stop and restart: seconds, -1 (or absent) for the container's
 * own timeout. Replies 400, frees @op and returns false if it is bad. */
static bool stop_timeout(struct op *op)
{
	struct shoal_err err;
	char *sig = NULL;
	long t;

	if (query_dup(op->req, "signal", &sig) != 0 || sig != NULL) {
		free(sig);
		api_reply_status(op->req, op->res, 400,
				 "shoal stops a container with its StopSignal: the signal "
				 "parameter is not supported");
		free(op);
		return false;
	}
	if (query_int(op->req, "t", -1, -1, &t, &err) != 0) {
		api_reply_status(op->req, op->res, 400, err.msg);
		free(op);
		return false;
	}
	op->timeout_s = (int)t;
	return true;
}

static void stop_done(void *arg, int status, const char *err)
{
	op_finish(arg, status, err, true);
}

void api_containers_stop(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	struct op *op;

	if (c == NULL || (op = op_new(cs, c, req, res)) == NULL || !stop_timeout(op))
		return;
	ctr_stop(cs, op->id, op->timeout_s, stop_done, op);
}

static void restart_started(void *arg, int status, const char *err)
{
	struct op *op = arg;

	/* Started by someone else meanwhile: it runs, which is what was asked. */
	if (status == SHOAL_ESTATE)
		status = 0;
	if (status == 0)
		arm_next_exit(op->cs, op->id);
	op_finish(op, status, err, false);
}

static void restart_stopped(void *arg, int status, const char *err)
{
	struct op *op = arg;

	if (status != 0 && status != SHOAL_ESTATE) {
		op_finish(op, status, err, false);
		return;
	}
	ctr_start(op->cs, op->id, restart_started, op);
}

void api_containers_restart(struct containers *cs, const char *ref, struct http_request *req,
			    struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	struct op *op;

	if (c == NULL || (op = op_new(cs, c, req, res)) == NULL || !stop_timeout(op))
		return;
	ctr_stop(cs, op->id, op->timeout_s, restart_stopped, op);
}

static void remove_done(void *arg, int status, const char *err)
{
	struct op *op = arg;

	if (status == 0) {
		log_info("api", "removed container %.12s", op->id);
		fail_next_exit(op->cs, op->id, SHOAL_ENOTFOUND, "the container was removed");
	}
	op_finish(op, status, err, false);
}

void api_containers_remove(struct containers *cs, const char *ref, struct http_request *req,
			   struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	struct op *op;

	if (c == NULL || (op = op_new(cs, c, req, res)) == NULL)
		return;
	ctr_remove(cs, op->id, api_query_bool(req, "force"), remove_done, op);
}

/* The body of a wait, the stream's headers being out already. */
static void wait_done(void *arg, int status, const char *err)
{
	struct op *op = arg;
	const struct container *c = NULL;
	json_t *body;
	char *text;

	if (status == 0 && ctr_lookup(op->cs, op->id, &c, NULL) != 0)
		c = NULL;
	if (status == 0 && c != NULL)
		body = json_pack("{s:n, s:i}", "Error", "StatusCode", c->exit_code);
	else
		body = json_pack(
		    "{s:{s:o}, s:i}", "Error", "Message",
		    str_json(status != 0 && err != NULL ? err : "the container was removed"),
		    "StatusCode", -1);
	text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text != NULL) {
		http_stream_write(op->res, text, strlen(text));
		http_stream_write(op->res, "\n", 1);
	}
	free(text);
	http_stream_end(op->res);
	free(op);
}

void api_containers_wait(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res)
{
	const struct container *c = api_ctr_find(cs, ref, req, res);
	char cond[32];
	struct op *op;

	if (c == NULL)
		return;
	if (!http_query_get(req, "condition", cond, sizeof(cond)) || cond[0] == '\0')
		snprintf(cond, sizeof(cond), "not-running");
	if (strcmp(cond, "not-running") != 0 && strcmp(cond, "next-exit") != 0) {
		api_reply_status(req, res, 400,
				 "invalid condition: shoal waits for not-running or next-exit");
		return;
	}
	op = op_new(cs, c, req, res);
	if (op == NULL)
		return;
	/* Docker sends the headers at once, so a client knows the wait began. */
	http_stream_start(res, 200, "application/json");
	if (strcmp(cond, "next-exit") == 0 && c->state != CTR_RUNNING) {
		op->next = pending_next_exit;
		pending_next_exit = op;
		return;
	}
	ctr_wait(cs, op->id, wait_done, op);
}
