/* Service and task listings and the pretty view, following Docker's service and task formatters. */
#include "cli/service_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/humanize.h"
#include "cli/jsonfmt.h"
#include "cli/table.h"
#include "lib/clock.h"
#include "lib/err.h"

#define SHORT_ID_LEN	12 /* stringid.TruncateID */
#define MAX_ERR_DISPLAY 30 /* Docker's maxErrLength */

void service_image_short(const char *image, char *out, size_t len)
{
	const char *at = strchr(image, '@');
	size_t n = at != NULL ? (size_t)(at - image) : strlen(image);

	snprintf(out, len, "%.*s", (int)n, image);
}

void service_replicas(json_t *service, char *out, size_t len)
{
	long long running = jsonfmt_int(service, "ServiceStatus.RunningTasks", 0);
	long long desired = jsonfmt_int(service, "ServiceStatus.DesiredTasks", 0);
	long long max = jsonfmt_int(service, "Spec.TaskTemplate.Placement.MaxReplicas", 0);

	if (jsonfmt_get(service, "Spec.Mode.Replicated") != NULL && max > 0)
		snprintf(out, len, "%lld/%lld (max %lld per node)", running, desired, max);
	else
		snprintf(out, len, "%lld/%lld", running, desired);
}

int service_ports(json_t *service, struct buf *out)
{
	json_t *ports = jsonfmt_get(service, "Endpoint.Ports"), *p;
	size_t i;
	int rv = 0, n = 0;

	json_array_foreach(ports, i, p)
	{
		const char *mode = jsonfmt_str(p, "PublishMode");
		if (rv != 0 || (mode[0] != '\0' && strcmp(mode, "ingress") != 0))
			continue;
		rv = buf_appendf(
		    out, "%s*:%lld->%lld/%s", n++ > 0 ? ", " : "",
		    jsonfmt_int(p, "PublishedPort", 0), jsonfmt_int(p, "TargetPort", 0),
		    jsonfmt_str(p, "Protocol")[0] != '\0' ? jsonfmt_str(p, "Protocol") : "tcp");
	}
	return rv;
}

static int by_name(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	const char *nx = jsonfmt_str(x, "Spec.Name"), *ny = jsonfmt_str(y, "Spec.Name");

	if (human_natural_less(nx, ny))
		return -1;
	if (human_natural_less(ny, nx))
		return 1;
	return strcmp(jsonfmt_str(x, "ID"), jsonfmt_str(y, "ID"));
}

/* One line of --format json: the object @f, compact, keys sorted. */
static int json_line(json_t *f, struct buf *out)
{
	char *line = f != NULL ? json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rv = line != NULL ? buf_appendf(out, "%s\n", line) : SHOAL_ENOMEM;

	free(line);
	json_decref(f);
	return rv;
}

static json_t **sorted_copy(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr);
	json_t **v = calloc(n > 0 ? n : 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp);
	return v;
}

int service_format_list(json_t *services, enum svc_list_format fmt, struct buf *out)
{
	static const char *const header[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"};
	size_t n = json_array_size(services);
	json_t **v = sorted_copy(services, by_name);
	struct table t;
	struct buf ports;
	int rv = 0;

	if (v == NULL)
		return SHOAL_ENOMEM;
	table_init(&t, TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING);
	buf_init(&ports);
	if (fmt == SVC_LIST_TABLE)
		rv = table_row(&t, header, ARRAY_SIZE(header));
	for (size_t i = 0; i < n && rv == 0; i++) {
		char id[SHORT_ID_LEN + 1], image[512], replicas[96];
		const char *mode =
		    jsonfmt_get(v[i], "Spec.Mode.Global") != NULL ? "global" : "replicated";

		if (fmt == SVC_LIST_QUIET) {
			rv = buf_appendf(out, "%s\n", jsonfmt_str(v[i], "ID"));
			continue;
		}
		snprintf(id, sizeof(id), "%s", jsonfmt_str(v[i], "ID"));
		service_image_short(jsonfmt_str(v[i], "Spec.TaskTemplate.ContainerSpec.Image"),
				    image, sizeof(image));
		service_replicas(v[i], replicas, sizeof(replicas));
		ports.len = 0;
		rv = service_ports(v[i], &ports) != 0 ? SHOAL_ENOMEM : buf_append(&ports, "", 0);
		if (rv != 0)
			break;
		if (fmt == SVC_LIST_JSON) {
			rv = json_line(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id, "Name",
						 jsonfmt_str(v[i], "Spec.Name"), "Mode", mode,
						 "Replicas", replicas, "Image", image, "Ports",
						 ports.data),
				       out);
		} else {
			const char *cells[] = {
			    id, jsonfmt_str(v[i], "Spec.Name"), mode, replicas, image, ports.data};
			rv = table_row(&t, cells, ARRAY_SIZE(cells));
		}
	}
	if (rv == 0 && fmt == SVC_LIST_TABLE)
		rv = table_flush(&t, out);
	table_free(&t);
	buf_free(&ports);
	free(v);
	return rv;
}

/* --- tasks ------------------------------------------------------------------------ */

struct task_row {
	json_t *task;
	char name[192]; /* "web.1" */
	int64_t created;
};

static int by_task_name(const void *a, const void *b)
{
	const struct task_row *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	/* The most recent first within a slot. */
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(jsonfmt_str(x->task, "ID"), jsonfmt_str(y->task, "ID"));
}

static json_t *find_by_id(json_t *arr, const char *id)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (strcmp(jsonfmt_str(v, "ID"), id) == 0)
			return v;
	}
	return NULL;
}

/* Docker's Ellipsis(): at most @max display characters, the last one "…". */
static int ellipsis(struct buf *out, const char *s, size_t max)
{
	size_t n = strlen(s), chars = 0, i = 0;

	for (size_t k = 0; k < n; k++)
		chars += ((unsigned char)s[k] & 0xc0) != 0x80;
	if (chars <= max)
		return buf_append(out, s, n);
	for (chars = 0; i < n; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars == max)
			break;
	}
	return buf_appendf(out, "%.*s…", (int)i, s);
}

static int task_fields(const struct task_row *r, bool history, bool color, json_t *nodes,
		       const struct task_list_opts *o, json_t **out)
{
	json_t *t = r->task, *node = find_by_id(nodes, jsonfmt_str(t, "NodeID"));
	const char *image_full = jsonfmt_str(t, "Spec.ContainerSpec.Image");
	const char *err = jsonfmt_str(t, "Status.Err");
	struct buf name, desired, current, error;
	char id[128], image[512], ago[64];
	int64_t ts = 0;
	int rv;

	snprintf(id, sizeof(id), "%.*s", o->no_trunc ? 127 : SHORT_ID_LEN, jsonfmt_str(t, "ID"));
	if (o->no_trunc)
		snprintf(image, sizeof(image), "%s", image_full);
	else
		service_image_short(image_full, image, sizeof(image));
	buf_init(&name);
	buf_init(&desired);
	buf_init(&current);
	buf_init(&error);
	rv = buf_appendf(&name, "%s%s", history ? " \\_ " : "", r->name);
	if (rv == 0 && o->no_trunc)
		rv = buf_appendf(&name, ".%s", jsonfmt_str(t, "ID"));
	if (rv == 0)
		rv = human_capitalize(&desired, jsonfmt_str(t, "DesiredState"));
	if (rv == 0)
		rv = human_capitalize(&current, jsonfmt_str(t, "Status.State"));
	if (clock_parse_rfc3339(jsonfmt_str(t, "Status.Timestamp"), &ts) != 0)
		ts = o->now_ns;
	clock_human_duration(o->now_ns - ts, ago, sizeof(ago));
	for (char *p = ago; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (rv == 0)
		rv = buf_appendf(&current, " %s ago", ago);
	if (rv == 0 && err[0] != '\0') {
		rv = buf_append(&error, "\"", 1);
		if (rv == 0)
			rv = o->no_trunc ? buf_append(&error, err, strlen(err))
					 : ellipsis(&error, err, MAX_ERR_DISPLAY);
		if (rv == 0)
			rv = buf_append(&error, "\"", 1);
	}
	if (rv == 0)
		rv = buf_append(&error, "", 0);
	if (rv == 0) {
		*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id, "Name",
				 name.data, "Image", image, "Node",
				 node != NULL ? jsonfmt_str(node, "Description.Hostname")
					      : jsonfmt_str(t, "NodeID"),
				 "DesiredState", desired.data, "CurrentState", current.data,
				 "Error", error.data, "Ports", "");
		rv = *out != NULL ? 0 : SHOAL_ENOMEM;
	}
	/* A task without a color (made before the service went blue/green) is
	 * blue, as the daemon counts it. */
	if (rv == 0 && color &&
	    json_object_set_new(*out, "Color",
				json_string(jsonfmt_str(t, "Color")[0] != '\0'
						? jsonfmt_str(t, "Color")
						: "blue")) != 0)
		rv = SHOAL_ENOMEM;
	buf_free(&name);
	buf_free(&desired);
	buf_free(&current);
	buf_free(&error);
	return rv;
}

/* Blue/green: is any of @tasks colored? */
static bool any_color(json_t *tasks)
{
	size_t i;
	json_t *t;

	json_array_foreach(tasks, i, t)
	{
		if (jsonfmt_str(t, "Color")[0] != '\0')
			return true;
	}
	return false;
}

int task_format_list(json_t *tasks, json_t *services, json_t *nodes, const struct task_list_opts *o,
		     struct buf *out)
{
	static const char *const header[] = {"ID",   "NAME",	      "COLOR",	       "IMAGE",
					     "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR",
					     "PORTS"};
	size_t n = json_array_size(tasks);
	struct task_row *rows = calloc(n > 0 ? n : 1, sizeof(*rows));
	bool color = any_color(tasks);
	struct table t;
	int rv = 0;

	if (rows == NULL)
		return SHOAL_ENOMEM;

	for (size_t i = 0; i < n; i++) {
		json_t *task = json_array_get(tasks, i);
		json_t *svc = find_by_id(services, jsonfmt_str(task, "ServiceID"));
		const char *sname =
		    svc != NULL ? jsonfmt_str(svc, "Spec.Name") : jsonfmt_str(task, "ServiceID");
		long long slot = jsonfmt_int(task, "Slot", 0);

		rows[i].task = task;
		if (slot != 0)
			snprintf(rows[i].name, sizeof(rows[i].name), "%s.%lld", sname, slot);
		else
			snprintf(rows[i].name, sizeof(rows[i].name), "%s.%s", sname,
				 jsonfmt_str(task, "NodeID"));
		if (clock_parse_rfc3339(jsonfmt_str(task, "CreatedAt"), &rows[i].created) != 0)
			rows[i].created = 0;
	}
	if (n > 0)
		qsort(rows, n, sizeof(*rows), by_task_name);
	table_init(&t, TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING);
	/* The COLOR column only when a task has one (a blue-green service's). */
	if (o->fmt == SVC_LIST_TABLE && color) {
		rv = table_row(&t, header, ARRAY_SIZE(header));
	} else if (o->fmt == SVC_LIST_TABLE) {
		const char *plain[ARRAY_SIZE(header) - 1] = {header[0], header[1]};
		memcpy(plain + 2, header + 3, sizeof(plain) - 2 * sizeof(plain[0]));
		rv = table_row(&t, plain, ARRAY_SIZE(plain));
	}
	for (size_t i = 0; i < n && rv == 0; i++) {
		bool history = i > 0 && strcmp(rows[i - 1].name, rows[i].name) == 0;
		json_t *f = NULL;

		if (o->fmt == SVC_LIST_QUIET) {
			rv = buf_appendf(out, "%s\n", jsonfmt_str(rows[i].task, "ID"));
			continue;
		}
		rv = task_fields(&rows[i], history, color, nodes, o, &f);
		if (rv != 0)
			break;
		if (o->fmt == SVC_LIST_JSON) {
			rv = json_line(f, out);
			continue;
		}
		const char *cells[] = {
		    jsonfmt_str(f, "ID"),	    jsonfmt_str(f, "Name"),
		    jsonfmt_str(f, "Color"),	    jsonfmt_str(f, "Image"),
		    jsonfmt_str(f, "Node"),	    jsonfmt_str(f, "DesiredState"),
		    jsonfmt_str(f, "CurrentState"), jsonfmt_str(f, "Error"),
		    jsonfmt_str(f, "Ports"),
		};
		if (!color)
			memmove(cells + 2, cells + 3, sizeof(cells) - 3 * sizeof(cells[0]));
		rv = table_row(&t, cells, ARRAY_SIZE(cells) - (color ? 0 : 1));
		json_decref(f);
	}
	if (rv == 0 && o->fmt == SVC_LIST_TABLE)
		rv = table_flush(&t, out);
	table_free(&t);
	free(rows);
	return rv;
}

int task_fetch_and_format(struct client *client, json_t *filters, const struct task_list_opts *opts,
			  struct buf *out, struct shoal_err *err)
{
	struct client_resp tasks = {0}, services = {0}, nodes = {0};
	char *enc = NULL;
	struct buf path;
	int rv = 0;

	buf_init(&path);
	if (json_object_size(filters) > 0) {
		enc = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
		if (enc == NULL || buf_appendf(&path, "/tasks?filters=") != 0 ||
		    client_escape(&path, enc, true) != 0)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	} else if (buf_appendf(&path, "/tasks") != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	if (rv == 0)
		rv = client_request(client, "GET", path.data, NULL, &tasks, err);
	if (rv == 0 && !json_is_array(tasks.json))
		rv = shoal_errf(err, SHOAL_EPROTO,
				"the daemon's answer to GET /tasks is not a list");
	if (rv == 0 && opts->fmt != SVC_LIST_QUIET && json_array_size(tasks.json) > 0) {
		rv = client_request(client, "GET", "/services", NULL, &services, err);
		if (rv == 0)
			rv = client_request(client, "GET", "/nodes", NULL, &nodes, err);
	}
	if (rv == 0 && task_format_list(tasks.json, services.json, nodes.json, opts, out) != 0)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	client_resp_free(&tasks);
	client_resp_free(&services);
	client_resp_free(&nodes);
	buf_free(&path);
	free(enc);
	return rv;
}

/* --- the pretty view ----------------------------------------------------------------- */

static bool str_in(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A duration in ns as Go's time.Duration.String() for whole units ("5s", "1m30s", "100ms"). */
static void go_duration(long long ns, char *out, size_t len)
{
	long long h, m, s;

	if (ns == 0) {
		snprintf(out, len, "0s");
		return;
	}
	if (ns < 1000000000LL) {
		if (ns % 1000000 == 0)
			snprintf(out, len, "%lldms", ns / 1000000);
		else
			snprintf(out, len, "%gms", (double)ns / 1e6);
		return;
	}
	h = ns / 3600000000000LL;
	m = ns / 60000000000LL % 60;
	s = ns % 60000000000LL;
	out[0] = '\0';
	if (h > 0)
		snprintf(out, len, "%lldh%lldm", h, m);
	else if (m > 0)
		snprintf(out, len, "%lldm", m);
	snprintf(out + strlen(out), len - strlen(out), s % 1000000000LL == 0 ? "%.0fs" : "%gs",
		 (double)s / 1e9);
}

static int str_list(struct buf *out, json_t *arr, const char *sep)
{
	size_t i;
	json_t *v;
	int rv = 0;

	json_array_foreach(arr, i, v)
	{
		if (rv == 0)
			rv = buf_appendf(out, "%s%s", i > 0 ? sep : "",
					 json_string_value(v) != NULL ? json_string_value(v) : "");
	}
	return rv;
}

static int update_config(struct buf *out, json_t *u, const char *title, const char *order_word)
{
	char delay[64], monitor[64];
	int rv;

	if (!json_is_object(u))
		return 0;
	go_duration(jsonfmt_int(u, "Delay", 0), delay, sizeof(delay));
	go_duration(jsonfmt_int(u, "Monitor", 0), monitor, sizeof(monitor));
	rv =
	    buf_appendf(out, "%s:\n Parallelism:\t%lld\n", title, jsonfmt_int(u, "Parallelism", 0));
	if (rv == 0 && jsonfmt_int(u, "Delay", 0) > 0)
		rv = buf_appendf(out, " Delay:\t\t%s\n", delay);
	if (rv == 0)
		rv = buf_appendf(out,
				 " On failure:\t%s\n Monitoring Period: %s\n Max failure ratio: "
				 "%g\n %s order:%s%s\n",
				 jsonfmt_str(u, "FailureAction"), monitor,
				 json_number_value(json_object_get(u, "MaxFailureRatio")),
				 order_word, strcmp(order_word, "Update") == 0 ? "      " : "    ",
				 jsonfmt_str(u, "Order"));
	return rv;
}

/* " Started:\t3 minutes ago" for the time at @path of @s, if set. */
static int time_ago(struct buf *out, json_t *s, const char *path, const char *label)
{
	int64_t ts = 0;
	char ago[64];

	if (clock_parse_rfc3339(jsonfmt_str(s, path), &ts) != 0 || ts <= 0)
		return 0;
	clock_human_duration(clock_now_ns() - ts, ago, sizeof(ago));
	return buf_appendf(out, " %s:\t%s ago\n", label, ago);
}

/* Docker's UpdateStatus block (State, Started, Completed, Message). */
static int update_status(struct buf *out, json_t *s)
{
	int rv;

	if (jsonfmt_str(s, "UpdateStatus.State")[0] == '\0')
		return 0;
	rv = buf_appendf(out, "UpdateStatus:\n State:\t\t%s\n",
			 jsonfmt_str(s, "UpdateStatus.State"));
	if (rv == 0)
		rv = time_ago(out, s, "UpdateStatus.StartedAt", "Started");
	if (rv == 0 && str_in(jsonfmt_str(s, "UpdateStatus.State"), "completed"))
		rv = time_ago(out, s, "UpdateStatus.CompletedAt", "Completed");
	if (rv == 0)
		rv = buf_appendf(out, " Message:\t%s\n", jsonfmt_str(s, "UpdateStatus.Message"));
	return rv;
}

/* shoal's blue/green Deployment: the live color, state and message. */
static int deployment(struct buf *out, json_t *s)
{
	const char *live = jsonfmt_str(s, "Deployment.LiveColor");
	int rv;

	if (jsonfmt_str(s, "Deployment.State")[0] == '\0' && live[0] == '\0')
		return 0;
	rv = buf_appendf(out, "Deployment:\n Live Color:\t%s\n State:\t\t%s\n",
			 live[0] != '\0' ? live : "blue", jsonfmt_str(s, "Deployment.State"));
	if (rv == 0)
		rv = time_ago(out, s, "Deployment.SwitchedAt", "Switched");
	if (rv == 0)
		rv = buf_appendf(out, " Message:\t%s\n", jsonfmt_str(s, "Deployment.Message"));
	return rv;
}

/* "Update Strategy:" and, for blue-green, its BlueGreen settings. */
static int update_strategy(struct buf *out, json_t *spec)
{
	const char *strategy = jsonfmt_str(spec, "UpdateStrategy");
	const char *promote = jsonfmt_str(spec, "BlueGreen.Promote");
	long long grace = jsonfmt_int(spec, "BlueGreen.Grace", 0);
	char g[64];
	int rv;

	rv = buf_appendf(out, "Update Strategy:\t%s\n", strategy[0] != '\0' ? strategy : "rolling");
	if (rv != 0 || strcmp(strategy, "blue-green") != 0)
		return rv;
	go_duration(grace > 0 ? grace : 60000000000LL, g, sizeof(g));
	return buf_appendf(out, " Promote:\t%s\n Grace:\t\t%s\n",
			   promote[0] != '\0' ? promote : "auto", g);
}

int service_format_pretty(json_t *s, struct buf *out)
{
	json_t *spec = json_object_get(s, "Spec"), *tt = json_object_get(spec, "TaskTemplate");
	json_t *cs = json_object_get(tt, "ContainerSpec"),
	       *labels = json_object_get(spec, "Labels");
	json_t *res = json_object_get(tt, "Resources"), *ports = jsonfmt_get(s, "Endpoint.Ports");
	json_t *v;
	const char *key;
	char delay[64];
	size_t i;
	int rv;

	rv = buf_appendf(out, "\nID:\t\t%s\nName:\t\t%s\n", jsonfmt_str(s, "ID"),
			 jsonfmt_str(spec, "Name"));
	if (rv == 0 && json_object_size(labels) > 0) {
		rv = buf_appendf(out, "Labels:\n");
		json_object_foreach(labels, key, v)
		{
			if (rv == 0)
				rv = buf_appendf(out, " %s=%s\n", key, json_string_value(v));
		}
	}
	if (rv == 0 && jsonfmt_get(spec, "Mode.Global") != NULL)
		rv = buf_appendf(out, "Service Mode:\tGlobal\n");
	else if (rv == 0)
		rv = buf_appendf(out, "Service Mode:\tReplicated\n Replicas:\t%lld\n",
				 jsonfmt_int(spec, "Mode.Replicated.Replicas", 0));
	if (rv == 0)
		rv = update_status(out, s);
	if (rv == 0)
		rv = deployment(out, s);
	if (rv == 0 && json_array_size(jsonfmt_get(tt, "Placement.Constraints")) > 0) {
		rv = buf_appendf(out, "Placement:\n Constraints:\t[");
		if (rv == 0)
			rv = str_list(out, jsonfmt_get(tt, "Placement.Constraints"), " ");
		if (rv == 0)
			rv = buf_appendf(out, "]\n");
	} else if (rv == 0) {
		rv = buf_appendf(out, "Placement:\n");
	}
	if (rv == 0 && jsonfmt_int(tt, "Placement.MaxReplicas", 0) > 0)
		rv = buf_appendf(out, " Max Replicas Per Node:\t%lld\n",
				 jsonfmt_int(tt, "Placement.MaxReplicas", 0));
	if (rv == 0)
		rv = update_strategy(out, spec);
	if (rv == 0)
		rv = update_config(out, json_object_get(spec, "UpdateConfig"), "UpdateConfig",
				   "Update");
	if (rv == 0)
		rv = update_config(out, json_object_get(spec, "RollbackConfig"), "RollbackConfig",
				   "Rollback");
	if (rv == 0)
		rv = buf_appendf(out, "ContainerSpec:\n Image:\t\t%s\n", jsonfmt_str(cs, "Image"));
	if (rv == 0 && json_array_size(json_object_get(cs, "Command")) > 0) {
		rv = buf_appendf(out, " Command:\t");
		if (rv == 0)
			rv = str_list(out, json_object_get(cs, "Command"), " ");
		if (rv == 0)
			rv = buf_appendf(out, "\n");
	}
	if (rv == 0 && json_array_size(json_object_get(cs, "Args")) > 0) {
		rv = buf_appendf(out, " Args:\t\t");
		if (rv == 0)
			rv = str_list(out, json_object_get(cs, "Args"), " ");
		if (rv == 0)
			rv = buf_appendf(out, "\n");
	}
	if (rv == 0 && json_array_size(json_object_get(cs, "Env")) > 0) {
		rv = buf_appendf(out, " Env:\t\t");
		if (rv == 0)
			rv = str_list(out, json_object_get(cs, "Env"), "\n\t\t");
		if (rv == 0)
			rv = buf_appendf(out, "\n");
	}
	go_duration(jsonfmt_int(tt, "RestartPolicy.Delay", 0), delay, sizeof(delay));
	if (rv == 0)
		rv = buf_appendf(out, "RestartPolicy:\n Condition:\t%s\n Delay:\t\t%s\n",
				 jsonfmt_str(tt, "RestartPolicy.Condition"), delay);
	if (rv == 0 && jsonfmt_int(tt, "RestartPolicy.MaxAttempts", 0) > 0)
		rv = buf_appendf(out, " Max attempts:\t%lld\n",
				 jsonfmt_int(tt, "RestartPolicy.MaxAttempts", 0));
	for (int k = 0; k < 2 && rv == 0; k++) {
		json_t *r = json_object_get(res, k == 0 ? "Reservations" : "Limits");
		long long cpus = jsonfmt_int(r, "NanoCPUs", 0),
			  mem = jsonfmt_int(r, "MemoryBytes", 0);
		char m[32];

		if (cpus == 0 && mem == 0)
			continue;
		if (rv == 0 && k == 0)
			rv = buf_appendf(out, "Resources:\n");
		rv = buf_appendf(out, " %s:\n", k == 0 ? "Reservations" : "Limits");
		if (rv == 0 && cpus > 0)
			rv = buf_appendf(out, "  CPU:\t\t%g\n", (double)cpus / 1e9);
		human_bytes((double)mem, m, sizeof(m));
		if (rv == 0 && mem > 0)
			rv = buf_appendf(out, "  Memory:\t%s\n", m);
	}
	if (rv == 0)
		rv = buf_appendf(out, "Endpoint Mode:\t%s\n",
				 jsonfmt_str(spec, "EndpointSpec.Mode")[0] != '\0'
				     ? jsonfmt_str(spec, "EndpointSpec.Mode")
				     : "vip");
	if (rv == 0 && json_array_size(ports) > 0)
		rv = buf_appendf(out, "Ports:\n");
	json_array_foreach(ports, i, v)
	{
		if (rv == 0)
			rv = buf_appendf(
			    out,
			    " PublishedPort = %lld\n  Protocol = %s\n  TargetPort = "
			    "%lld\n  PublishMode = %s\n",
			    jsonfmt_int(v, "PublishedPort", 0), jsonfmt_str(v, "Protocol"),
			    jsonfmt_int(v, "TargetPort", 0), jsonfmt_str(v, "PublishMode"));
	}
	return rv;
}
