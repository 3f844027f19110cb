/* "shoal service create", "ls", "ps", "inspect", "scale", "update", "rollback", "promote" and
 * "rm" ("logs" is in cmd_service_logs.c). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cmd.h"
#include "cli/inspect.h"
#include "cli/jsonfmt.h"
#include "cli/service_format.h"
#include "lib/clock.h"

extern const struct cli_cmd cli_cmd_service;

/* How long create/update/rollback/scale wait for the tasks to run, and
 * update/rollback for the update to end (Docker waits without end);
 * SHOAL_CONVERGE_TIMEOUT (seconds) overrides it. */
#define CONVERGE_TIMEOUT_S 60
#define CONVERGE_POLL_NS   (100 * 1000000L)

#define LS_FORMAT_USAGE                                                                    \
	"Format output using a custom template:\n"                                         \
	"'table':            Print output in table format with column headers (default)\n" \
	"'json':             Print in JSON format"

/* --- flag values ------------------------------------------------------------------ */

enum value_kind {
	V_STR,	 /* a string as given */
	V_UINT,	 /* strconv.ParseUint */
	V_INT,	 /* strconv.ParseInt */
	V_DUR,	 /* time.ParseDuration, into ns */
	V_BYTES, /* units.RAMInBytes */
	V_CPU,	 /* a decimal number of CPUs, into NanoCPUs */
	V_FLOAT, /* strconv.ParseFloat */
};

/* The flags that set one field of the spec. */
struct scalar {
	const char *name;
	enum value_kind kind;
	const char *path; /* in the ServiceSpec */
	const char *usage;
	bool update_only;
};

static const struct scalar scalars[] = {
    {"image", V_STR, "TaskTemplate.ContainerSpec.Image", "Service image tag", true},
    {"workdir", V_STR, "TaskTemplate.ContainerSpec.Dir", "Working directory inside the container",
     false},
    {"user", V_STR, "TaskTemplate.ContainerSpec.User",
     "Username or UID (format: <name|uid>[:<group|gid>])", false},
    {"hostname", V_STR, "TaskTemplate.ContainerSpec.Hostname", "Container hostname", false},
    {"stop-signal", V_STR, "TaskTemplate.ContainerSpec.StopSignal", "Signal to stop the container",
     false},
    {"stop-grace-period", V_DUR, "TaskTemplate.ContainerSpec.StopGracePeriod",
     "Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s)", false},
    {"health-interval", V_DUR, "TaskTemplate.ContainerSpec.Healthcheck.Interval",
     "Time between running the check (ms|s|m|h)", false},
    {"health-timeout", V_DUR, "TaskTemplate.ContainerSpec.Healthcheck.Timeout",
     "Maximum time to allow one check to run (ms|s|m|h)", false},
    {"health-start-period", V_DUR, "TaskTemplate.ContainerSpec.Healthcheck.StartPeriod",
     "Start period for the container to initialize before counting retries towards unstable "
     "(ms|s|m|h)",
     false},
    {"health-retries", V_UINT, "TaskTemplate.ContainerSpec.Healthcheck.Retries",
     "Consecutive failures needed to report unhealthy", false},
    {"limit-cpu", V_CPU, "TaskTemplate.Resources.Limits.NanoCPUs", "Limit CPUs", false},
    {"limit-memory", V_BYTES, "TaskTemplate.Resources.Limits.MemoryBytes", "Limit Memory", false},
    {"limit-pids", V_INT, "TaskTemplate.Resources.Limits.Pids",
     "Limit maximum number of processes (default 0 = unlimited)", false},
    {"reserve-cpu", V_CPU, "TaskTemplate.Resources.Reservations.NanoCPUs", "Reserve CPUs", false},
    {"reserve-memory", V_BYTES, "TaskTemplate.Resources.Reservations.MemoryBytes", "Reserve Memory",
     false},
    {"restart-condition", V_STR, "TaskTemplate.RestartPolicy.Condition",
     "Restart when condition is met (\"none\", \"on-failure\", \"any\") (default \"any\")", false},
    {"restart-delay", V_DUR, "TaskTemplate.RestartPolicy.Delay",
     "Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)", false},
    {"restart-max-attempts", V_UINT, "TaskTemplate.RestartPolicy.MaxAttempts",
     "Maximum number of restarts before giving up", false},
    {"restart-window", V_DUR, "TaskTemplate.RestartPolicy.Window",
     "Window used to evaluate the restart policy (ns|us|ms|s|m|h)", false},
    {"replicas-max-per-node", V_UINT, "TaskTemplate.Placement.MaxReplicas",
     "Maximum number of tasks per node (default 0 = unlimited)", false},
    {"update-parallelism", V_UINT, "UpdateConfig.Parallelism",
     "Maximum number of tasks updated simultaneously (0 to update all at once) (default 1)", false},
    {"update-delay", V_DUR, "UpdateConfig.Delay", "Delay between updates (ns|us|ms|s|m|h)", false},
    {"update-monitor", V_DUR, "UpdateConfig.Monitor",
     "Duration after each task update to monitor for failure (ns|us|ms|s|m|h) (default 5s)", false},
    {"update-failure-action", V_STR, "UpdateConfig.FailureAction",
     "Action on update failure (\"pause\", \"continue\", \"rollback\") (default \"pause\")", false},
    {"update-max-failure-ratio", V_FLOAT, "UpdateConfig.MaxFailureRatio",
     "Failure rate to tolerate during an update", false},
    {"update-order", V_STR, "UpdateConfig.Order",
     "Update order (\"start-first\", \"stop-first\") (default \"stop-first\")", false},
    {"update-strategy", V_STR, "UpdateStrategy",
     "Update strategy (\"rolling\", \"blue-green\") (default \"rolling\")", false},
    {"bluegreen-promote", V_STR, "BlueGreen.Promote",
     "Switch traffic to the new set once healthy (\"auto\") or on \"service promote\" "
     "(\"manual\") (default \"auto\")",
     false},
    {"bluegreen-grace", V_DUR, "BlueGreen.Grace",
     "Time the old set is kept after the switch (ns|us|ms|s|m|h) (default 1m)", false},
    {"rollback-parallelism", V_UINT, "RollbackConfig.Parallelism",
     "Maximum number of tasks rolled back simultaneously (0 to roll back all at once) (default "
     "1)",
     false},
    {"rollback-delay", V_DUR, "RollbackConfig.Delay",
     "Delay between task rollbacks (ns|us|ms|s|m|h)", false},
    {"rollback-monitor", V_DUR, "RollbackConfig.Monitor",
     "Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h) (default 5s)",
     false},
    {"rollback-failure-action", V_STR, "RollbackConfig.FailureAction",
     "Action on rollback failure (\"pause\", \"continue\") (default \"pause\")", false},
    {"rollback-max-failure-ratio", V_FLOAT, "RollbackConfig.MaxFailureRatio",
     "Failure rate to tolerate during a rollback", false},
    {"rollback-order", V_STR, "RollbackConfig.Order",
     "Rollback order (\"start-first\", \"stop-first\") (default \"stop-first\")", false},
};

static const char *value_name(enum value_kind k)
{
	static const char *const names[] = {"string", "uint",	 "int",	 "duration",
					    "bytes",  "decimal", "float"};
	return names[k];
}

/* Go's time.ParseDuration. Returns 0 or -1. */
static int parse_duration(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {{"ns", 1},	  {"us", 1e3}, {"µs", 1e3}, {"μs", 1e3},
		     {"ms", 1e6}, {"s", 1e9},  {"m", 60e9}, {"h", 3600e9}};
	const char *p = s;
	double total = 0;
	bool neg = false;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*p == '\0')
		return -1;
	while (*p != '\0') {
		char *end;
		double v;
		size_t best = 0, i, k = ARRAY_SIZE(units);

		if (!isdigit((unsigned char)*p) && *p != '.')
			return -1;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno != 0)
			return -1;
		p = end;
		for (i = 0; i < ARRAY_SIZE(units); i++) {
			size_t n = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, n) == 0 && n > best) {
				best = n;
				k = i;
			}
		}
		if (k == ARRAY_SIZE(units))
			return -1;
		total += v * units[k].ns;
		p += best;
	}
	if (total > 9.2e18)
		return -1;
	*out = (int64_t)(neg ? -total : total);
	return 0;
}

/* docker/go-units RAMInBytes: "512m", "1g", "1.5GiB", "100". */
static int parse_bytes(const char *s, int64_t *out)
{
	char *end;
	double v;
	double mult = 1;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || v < 0 || !isdigit((unsigned char)s[0]))
		return -1;
	while (*end == ' ')
		end++;
	switch (tolower((unsigned char)*end)) {
	case 'k':
		mult = 1024.0, end++;
		break;
	case 'm':
		mult = 1024.0 * 1024, end++;
		break;
	case 'g':
		mult = 1024.0 * 1024 * 1024, end++;
		break;
	case 't':
		mult = 1024.0 * 1024 * 1024 * 1024, end++;
		break;
	case 'p':
		mult = 1024.0 * 1024 * 1024 * 1024 * 1024, end++;
		break;
	default:
		break;
	}
	if (mult > 1 && tolower((unsigned char)*end) == 'i')
		end++;
	if (tolower((unsigned char)*end) == 'b')
		end++;
	if (*end != '\0' || v * mult > 9.2e18)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

/* Parse @text for flag @name as @kind into a new JSON value. Returns it, or
 * NULL after printing pflag's error (*@code is then the exit code). */
static json_t *flag_value(struct cli_ctx *ctx, const char *name, enum value_kind kind,
			  const char *text, int *code)
{
	char *end;
	int64_t ns;
	double d;

	errno = 0;
	switch (kind) {
	case V_STR:
		return json_string(text);
	case V_UINT: {
		unsigned long long v = strtoull(text, &end, 10);
		if (isdigit((unsigned char)text[0]) && *end == '\0' && errno == 0 && v <= INT64_MAX)
			return json_integer((json_int_t)v);
		*code = cli_flag_error(ctx,
				       "invalid argument \"%s\" for \"--%s\" flag: "
				       "strconv.ParseUint: parsing \"%s\": invalid syntax",
				       text, name, text);
		return NULL;
	}
	case V_INT: {
		long long v = strtoll(text, &end, 10);
		if (text[0] != '\0' && *end == '\0' && errno == 0)
			return json_integer((json_int_t)v);
		*code = cli_flag_error(ctx,
				       "invalid argument \"%s\" for \"--%s\" flag: "
				       "strconv.ParseInt: parsing \"%s\": invalid syntax",
				       text, name, text);
		return NULL;
	}
	case V_DUR:
		if (parse_duration(text, &ns) == 0)
			return json_integer((json_int_t)ns);
		*code = cli_flag_error(ctx,
				       "invalid argument \"%s\" for \"--%s\" flag: time: invalid "
				       "duration \"%s\"",
				       text, name, text);
		return NULL;
	case V_BYTES:
		if (parse_bytes(text, &ns) == 0)
			return json_integer((json_int_t)ns);
		*code = cli_flag_error(
		    ctx, "invalid argument \"%s\" for \"--%s\" flag: invalid size: '%s'", text,
		    name, text);
		return NULL;
	case V_CPU:
		d = strtod(text, &end);
		if (text[0] != '\0' && *end == '\0' && errno == 0 && isfinite(d) && d >= 0 &&
		    d < 1e9)
			return json_integer((json_int_t)(d * 1e9 + 0.5));
		*code = cli_flag_error(ctx,
				       "invalid argument \"%s\" for \"--%s\" flag: failed to parse "
				       "%s as a rational number",
				       text, name, text);
		return NULL;
	case V_FLOAT:
		d = strtod(text, &end);
		if (text[0] != '\0' && *end == '\0' && errno == 0 && isfinite(d))
			return json_real(d);
		*code = cli_flag_error(ctx,
				       "invalid argument \"%s\" for \"--%s\" flag: "
				       "strconv.ParseFloat: parsing \"%s\": invalid syntax",
				       text, name, text);
		return NULL;
	}
	return NULL;
}

/* The object at dotted @path below @root, created as needed; NULL when out of memory. */
static json_t *object_path(json_t *root, const char *path)
{
	char part[128];
	json_t *o = root;

	while (*path != '\0') {
		size_t n = strcspn(path, ".");
		json_t *next;

		snprintf(part, sizeof(part), "%.*s", (int)n, path);
		next = json_object_get(o, part);
		if (!json_is_object(next)) {
			next = json_object();
			if (next == NULL || json_object_set_new(o, part, next) != 0)
				return NULL;
		}
		o = next;
		path += n + (path[n] == '.');
	}
	return o;
}

/* Set the value at dotted @path (stealing @v). Returns 0 or SHOAL_ENOMEM. */
static int set_path(json_t *root, const char *path, json_t *v)
{
	const char *dot = strrchr(path, '.');
	char parent[256];
	json_t *o = root;

	if (v == NULL)
		return SHOAL_ENOMEM;
	if (dot != NULL) {
		snprintf(parent, sizeof(parent), "%.*s", (int)(dot - path), path);
		o = object_path(root, parent);
	}
	if (o == NULL || json_object_set_new(o, dot != NULL ? dot + 1 : path, v) != 0) {
		json_decref(o == NULL ? v : NULL);
		return SHOAL_ENOMEM;
	}
	return 0;
}

/* "-p 8080:80", "-p 80", "-p 8080:80/udp" or "-p published=8080,target=80,protocol=udp,mode=host".
 */
static json_t *parse_port(const char *s)
{
	unsigned long pub = 0, target = 0;
	char proto[16] = "tcp", mode[16] = "ingress", buf[256], *save = NULL;
	char *end;

	if (strlen(s) >= sizeof(buf))
		return NULL;
	snprintf(buf, sizeof(buf), "%s", s);
	if (strchr(buf, '=') != NULL) {
		for (char *kv = strtok_r(buf, ",", &save); kv != NULL;
		     kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');
			if (eq == NULL)
				return NULL;
			*eq++ = '\0';
			if (strcmp(kv, "published") == 0)
				pub = strtoul(eq, &end, 10);
			else if (strcmp(kv, "target") == 0)
				target = strtoul(eq, &end, 10);
			else if (strcmp(kv, "protocol") == 0 && strlen(eq) < sizeof(proto))
				snprintf(proto, sizeof(proto), "%s", eq), end = eq + strlen(eq);
			else if (strcmp(kv, "mode") == 0 && strlen(eq) < sizeof(mode))
				snprintf(mode, sizeof(mode), "%s", eq), end = eq + strlen(eq);
			else
				return NULL;
			if (*end != '\0')
				return NULL;
		}
	} else {
		char *slash = strchr(buf, '/'), *colon;
		if (slash != NULL) {
			*slash++ = '\0';
			if (strlen(slash) == 0 || strlen(slash) >= sizeof(proto))
				return NULL;
			snprintf(proto, sizeof(proto), "%s", slash);
		}
		colon = strchr(buf, ':');
		if (colon != NULL) {
			*colon++ = '\0';
			pub = strtoul(buf, &end, 10);
			if (*end != '\0' || buf[0] == '\0')
				return NULL;
			target = strtoul(colon, &end, 10);
		} else {
			target = strtoul(buf, &end, 10);
		}
		if (*end != '\0')
			return NULL;
	}
	if (target == 0 || target > 65535 || pub > 65535)
		return NULL;
	return json_pack("{s:s, s:I, s:I, s:s}", "Protocol", proto, "TargetPort",
			 (json_int_t)target, "PublishedPort", (json_int_t)pub, "PublishMode", mode);
}

/* --- options shared by create and update ----------------------------------------------- */

struct svc_opts {
	const char *vals[ARRAY_SIZE(scalars)];
	const char *name, *mode, *replicas, *health_cmd, *entrypoint;
	bool no_healthcheck, detach, quiet, force, read_only, no_resolve;
	/* create */
	struct flag_list env, labels, ctr_labels, constraints, publish;
	/* update */
	struct flag_list env_add, env_rm, label_add, label_rm, constraint_add, constraint_rm,
	    publish_add, publish_rm;
};

static void opts_free(struct svc_opts *o)
{
	struct flag_list *lists[] = {
	    &o->env,	       &o->labels,	&o->ctr_labels, &o->constraints, &o->publish,
	    &o->env_add,       &o->env_rm,	&o->label_add,	&o->label_rm,	 &o->constraint_add,
	    &o->constraint_rm, &o->publish_add, &o->publish_rm};

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		flag_list_free(lists[i]);
}

#define MAX_SPECS (ARRAY_SIZE(scalars) + 32)

/* The flags of create (@update false) or update into @specs; returns how many. */
static size_t opts_specs(struct svc_opts *o, bool update, struct flag_spec *specs)
{
	size_t n = 0;

#define ADD(...)                        \
	specs[n++] = (struct flag_spec) \
	{                               \
		__VA_ARGS__             \
	}
	for (size_t i = 0; i < ARRAY_SIZE(scalars); i++) {
		if (scalars[i].update_only && !update)
			continue;
		ADD(scalars[i].name, 0, FLAG_STRING, value_name(scalars[i].kind), scalars[i].usage,
		    NULL, &o->vals[i]);
	}
	ADD("detach", 'd', FLAG_BOOL, NULL,
	    "Exit immediately instead of waiting for the service to converge", NULL, &o->detach);
	ADD("quiet", 'q', FLAG_BOOL, NULL, "Suppress progress output", NULL, &o->quiet);
	ADD("replicas", 0, FLAG_STRING, "uint", "Number of tasks", NULL, &o->replicas);
	ADD("health-cmd", 0, FLAG_STRING, "string", "Command to run to check health", NULL,
	    &o->health_cmd);
	ADD("no-healthcheck", 0, FLAG_BOOL, NULL, "Disable any container-specified HEALTHCHECK",
	    NULL, &o->no_healthcheck);
	ADD("entrypoint", 0, FLAG_STRING, "command",
	    "Overwrite the default ENTRYPOINT of the image", NULL, &o->entrypoint);
	ADD("read-only", 0, FLAG_BOOL, NULL, "Mount the container's root filesystem as read only",
	    NULL, &o->read_only);
	ADD("no-resolve-image", 0, FLAG_BOOL, NULL,
	    "Do not query the registry to resolve image digest and supported platforms", NULL,
	    &o->no_resolve);
	if (!update) {
		ADD("name", 0, FLAG_STRING, "string", "Service name", NULL, &o->name);
		ADD("mode", 0, FLAG_STRING, "string", "Service mode (\"replicated\", \"global\")",
		    "replicated", &o->mode);
		ADD("env", 'e', FLAG_LIST, "list", "Set environment variables", NULL, &o->env);
		ADD("label", 'l', FLAG_LIST, "list", "Service labels", NULL, &o->labels);
		ADD("container-label", 0, FLAG_LIST, "list", "Container labels", NULL,
		    &o->ctr_labels);
		ADD("constraint", 0, FLAG_LIST, "list", "Placement constraints", NULL,
		    &o->constraints);
		ADD("publish", 'p', FLAG_LIST, "port", "Publish a port as a node port", NULL,
		    &o->publish);
	} else {
		ADD("force", 0, FLAG_BOOL, NULL, "Force update even if no changes require it", NULL,
		    &o->force);
		ADD("env-add", 0, FLAG_LIST, "list", "Add or update an environment variable", NULL,
		    &o->env_add);
		ADD("env-rm", 0, FLAG_LIST, "list", "Remove an environment variable", NULL,
		    &o->env_rm);
		ADD("label-add", 0, FLAG_LIST, "list", "Add or update a service label", NULL,
		    &o->label_add);
		ADD("label-rm", 0, FLAG_LIST, "list", "Remove a label by its key", NULL,
		    &o->label_rm);
		ADD("constraint-add", 0, FLAG_LIST, "list", "Add or update a placement constraint",
		    NULL, &o->constraint_add);
		ADD("constraint-rm", 0, FLAG_LIST, "list", "Remove a constraint", NULL,
		    &o->constraint_rm);
		ADD("publish-add", 0, FLAG_LIST, "port", "Add or update a published port", NULL,
		    &o->publish_add);
		ADD("publish-rm", 0, FLAG_LIST, "port",
		    "Remove a published port by its target port", NULL, &o->publish_rm);
	}
#undef ADD
	return n;
}

/* "K=V" strings into the object @obj (labels). */
static int add_kv(json_t *obj, const struct flag_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *eq = strchr(l->items[i], '=');
		size_t kn = eq != NULL ? (size_t)(eq - l->items[i]) : strlen(l->items[i]);
		if (json_object_setn_new(obj, l->items[i], kn,
					 json_string(eq != NULL ? eq + 1 : "")) != 0)
			return SHOAL_ENOMEM;
	}
	return 0;
}

/* The key of an "K=V" environment entry: the part before '='. */
static bool env_key_equal(const char *a, const char *b)
{
	size_t na = strcspn(a, "="), nb = strcspn(b, "=");

	return na == nb && strncmp(a, b, na) == 0;
}

/* Append @add to the string array @arr, replacing entries with the same
 * key when @by_key (env), else skipping exact duplicates. */
static int list_add(json_t *arr, const struct flag_list *add, bool by_key)
{
	for (size_t i = 0; i < add->n; i++) {
		size_t j;
		json_t *v;
		bool done = false;
		json_array_foreach(arr, j, v)
		{
			const char *s = json_string_value(v);
			if (s == NULL || done)
				continue;
			if (by_key ? env_key_equal(s, add->items[i])
				   : strcmp(s, add->items[i]) == 0) {
				json_array_set_new(arr, j, json_string(add->items[i]));
				done = true;
			}
		}
		if (!done && json_array_append_new(arr, json_string(add->items[i])) != 0)
			return SHOAL_ENOMEM;
	}
	return 0;
}

static void list_rm(json_t *arr, const struct flag_list *rm, bool by_key)
{
	for (size_t i = 0; i < rm->n; i++) {
		for (size_t j = json_array_size(arr); j-- > 0;) {
			const char *s = json_string_value(json_array_get(arr, j));
			if (s != NULL && (by_key ? env_key_equal(s, rm->items[i])
						 : strcmp(s, rm->items[i]) == 0))
				json_array_remove(arr, j);
		}
	}
}

/* The array at @path of @spec, created empty when missing. */
static json_t *array_path(json_t *spec, const char *path)
{
	const char *dot = strrchr(path, '.');
	char parent[256];
	json_t *o, *a;

	snprintf(parent, sizeof(parent), "%.*s", (int)(dot - path), path);
	o = object_path(spec, parent);
	if (o == NULL)
		return NULL;
	a = json_object_get(o, dot + 1);
	if (!json_is_array(a)) {
		a = json_array();
		if (a == NULL || json_object_set_new(o, dot + 1, a) != 0)
			return NULL;
	}
	return a;
}

/* Apply the flags given in @o to @spec. Returns 0, or an exit code after
 * printing (a bad value), or CLI_EXIT_ERROR with @err set. */
static int opts_apply(struct cli_ctx *ctx, const struct svc_opts *o, bool update, json_t *spec,
		      struct shoal_err *err)
{
	int code = 0, rv = 0;
	json_t *a;

	for (size_t i = 0; i < ARRAY_SIZE(scalars); i++) {
		json_t *v;
		if (o->vals[i] == NULL)
			continue;
		v = flag_value(ctx, scalars[i].name, scalars[i].kind, o->vals[i], &code);
		if (v == NULL)
			return code != 0 ? code : cli_flag_error(ctx, "out of memory");
		if (set_path(spec, scalars[i].path, v) != 0)
			goto oom;
	}
	if (o->replicas != NULL) {
		json_t *v = flag_value(ctx, "replicas", V_UINT, o->replicas, &code);
		if (v == NULL)
			return code;
		if (json_object_get(json_object_get(spec, "Mode"), "Global") != NULL) {
			json_decref(v);
			shoal_errf(err, SHOAL_EINVAL,
				   "replicas can only be used with replicated or replicated-job "
				   "mode");
			return cli_fail(ctx, err);
		}
		if (set_path(spec, "Mode.Replicated.Replicas", v) != 0)
			goto oom;
	}
	bool health = o->health_cmd != NULL;
	for (size_t i = 0; i < ARRAY_SIZE(scalars); i++)
		health =
		    health || (o->vals[i] != NULL && strncmp(scalars[i].name, "health-", 7) == 0);
	if (o->no_healthcheck && health) {
		shoal_errf(err, SHOAL_EINVAL, "--no-healthcheck conflicts with --health-* options");
		return cli_fail(ctx, err);
	}
	if (o->health_cmd != NULL && set_path(spec, "TaskTemplate.ContainerSpec.Healthcheck.Test",
					      json_pack("[s, s]", "CMD-SHELL", o->health_cmd)) != 0)
		goto oom;
	if (o->no_healthcheck && set_path(spec, "TaskTemplate.ContainerSpec.Healthcheck.Test",
					  json_pack("[s]", "NONE")) != 0)
		goto oom;
	if (o->entrypoint != NULL && set_path(spec, "TaskTemplate.ContainerSpec.Command",
					      json_pack("[s]", o->entrypoint)) != 0)
		goto oom;
	if (o->read_only && set_path(spec, "TaskTemplate.ContainerSpec.ReadOnly", json_true()) != 0)
		goto oom;
	/* Lists: create sets them, update adds and removes. */
	{
		const struct flag_list *add[] = {update ? &o->env_add : &o->env,
						 update ? &o->constraint_add : &o->constraints};
		const struct flag_list *rm[] = {&o->env_rm, &o->constraint_rm};
		const char *paths[] = {"TaskTemplate.ContainerSpec.Env",
				       "TaskTemplate.Placement.Constraints"};
		for (size_t i = 0; i < 2; i++) {
			if (add[i]->n == 0 && (!update || rm[i]->n == 0))
				continue;
			a = array_path(spec, paths[i]);
			if (a == NULL)
				goto oom;
			if (update)
				list_rm(a, rm[i], i == 0);
			if (list_add(a, add[i], i == 0) != 0)
				goto oom;
		}
	}
	if (o->labels.n > 0 || o->label_add.n > 0 || o->label_rm.n > 0) {
		json_t *l = object_path(spec, "Labels");
		if (l == NULL || add_kv(l, update ? &o->label_add : &o->labels) != 0)
			goto oom;
		for (size_t i = 0; i < o->label_rm.n; i++)
			json_object_del(l, o->label_rm.items[i]);
	}
	if (o->ctr_labels.n > 0) {
		json_t *l = object_path(spec, "TaskTemplate.ContainerSpec.Labels");
		if (l == NULL || add_kv(l, &o->ctr_labels) != 0)
			goto oom;
	}
	{
		const struct flag_list *pub = update ? &o->publish_add : &o->publish;
		if (pub->n > 0 || o->publish_rm.n > 0) {
			a = array_path(spec, "EndpointSpec.Ports");
			if (a == NULL)
				goto oom;
			for (size_t i = 0; i < o->publish_rm.n; i++) {
				unsigned long target = strtoul(o->publish_rm.items[i], NULL, 10);
				for (size_t j = json_array_size(a); j-- > 0;)
					if (jsonfmt_int(json_array_get(a, j), "TargetPort", -1) ==
					    (long long)target)
						json_array_remove(a, j);
			}
			for (size_t i = 0; i < pub->n; i++) {
				json_t *p = parse_port(pub->items[i]);
				if (p == NULL)
					return cli_flag_error(ctx,
							      "invalid argument \"%s\" for \"-p, "
							      "--publish\" flag: invalid port "
							      "specification",
							      pub->items[i]);
				for (size_t j = json_array_size(a); j-- > 0;)
					if (jsonfmt_int(json_array_get(a, j), "PublishedPort",
							-1) ==
						jsonfmt_int(p, "PublishedPort", -2) &&
					    jsonfmt_int(p, "PublishedPort", 0) != 0)
						json_array_remove(a, j);
				if (json_array_append_new(a, p) != 0)
					goto oom;
			}
		}
	}
	if (o->force) {
		long long f = jsonfmt_int(spec, "TaskTemplate.ForceUpdate", 0);
		if (set_path(spec, "TaskTemplate.ForceUpdate", json_integer(f + 1)) != 0)
			goto oom;
	}
	return rv;
oom:
	shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return cli_fail(ctx, err);
}

/* --- waiting for convergence ----------------------------------------------------------- */

/* Does node @n satisfy the constraint "key==value" / "key!=value" @c, as
 * the scheduler reads it (values compared without case)? */
static bool node_satisfies(json_t *n, const char *c)
{
	const char *op = strstr(c, "==");
	const char *ne = strstr(c, "!=");
	bool equal = true;
	char key[256], val[256];
	const char *have = NULL;
	size_t kn;

	if (op == NULL || (ne != NULL && ne < op)) {
		op = ne;
		equal = false;
	}
	if (op == NULL)
		return false;
	kn = (size_t)(op - c);
	while (kn > 0 && isspace((unsigned char)c[kn - 1]))
		kn--;
	while (isspace((unsigned char)*c) && kn > 0)
		c++, kn--;
	snprintf(key, sizeof(key), "%.*s", (int)kn, c);
	op += 2;
	while (isspace((unsigned char)*op))
		op++;
	snprintf(val, sizeof(val), "%s", op);
	for (size_t k = strlen(val); k > 0 && isspace((unsigned char)val[k - 1]); k--)
		val[k - 1] = '\0';
	if (strcmp(key, "node.id") == 0)
		have = jsonfmt_str(n, "ID");
	else if (strcmp(key, "node.hostname") == 0)
		have = jsonfmt_str(n, "Description.Hostname");
	else if (strcmp(key, "node.role") == 0)
		have = jsonfmt_str(n, "Spec.Role");
	else if (strcmp(key, "node.platform.os") == 0)
		have = jsonfmt_str(n, "Description.Platform.OS");
	else if (strcmp(key, "node.platform.arch") == 0)
		have = jsonfmt_str(n, "Description.Platform.Architecture");
	else if (strncmp(key, "node.labels.", 12) == 0) {
		json_t *v = json_object_get(jsonfmt_get(n, "Spec.Labels"), key + 12);
		have = json_is_string(v) ? json_string_value(v) : NULL;
	}
	if (have == NULL)
		return !equal;
	return (strcasecmp(have, val) == 0) == equal;
}

struct progress {
	long long running, desired;
	bool stale;	   /* an old or extra task still runs */
	struct buf errors; /* distinct errors of tasks that should run and do not, "; " */
	size_t nerrors;
};

/* Count what runs of service @svc among @tasks (@nodes for global services). */
static int progress_count(json_t *svc, json_t *tasks, json_t *nodes, struct progress *p)
{
	json_t *tmpl = jsonfmt_get(svc, "Spec.TaskTemplate");
	json_t *constraints = jsonfmt_get(tmpl, "Placement.Constraints");
	bool global = jsonfmt_get(svc, "Spec.Mode.Global") != NULL;
	size_t i, j;
	json_t *t, *n;
	int rv = 0;

	p->running = p->desired = 0;
	p->stale = false;
	p->errors.len = 0;
	if (p->errors.data != NULL)
		p->errors.data[0] = '\0'; /* strstr() below reads it */
	p->nerrors = 0;
	if (!global)
		p->desired = jsonfmt_int(svc, "Spec.Mode.Replicated.Replicas", 0);
	json_array_foreach(nodes, i, n)
	{
		bool ok = global && strcmp(jsonfmt_str(n, "Status.State"), "ready") == 0 &&
			  strcmp(jsonfmt_str(n, "Spec.Availability"), "active") == 0;
		json_t *c;
		json_array_foreach(constraints, j, c)
		{
			if (json_is_string(c))
				ok = ok && node_satisfies(n, json_string_value(c));
		}
		p->desired += ok;
	}
	json_array_foreach(tasks, i, t)
	{
		bool current = json_equal(json_object_get(t, "Spec"), tmpl);
		bool want = strcmp(jsonfmt_str(t, "DesiredState"), "running") == 0;
		bool runs = strcmp(jsonfmt_str(t, "Status.State"), "running") == 0;
		long long slot = jsonfmt_int(t, "Slot", 0);
		const char *e = jsonfmt_str(t, "Status.Err");

		if (runs && (!want || !current || (!global && slot > p->desired)))
			p->stale = true;
		else if (runs)
			p->running++;
		if (want && current && !runs && e[0] != '\0' &&
		    (p->errors.data == NULL || strstr(p->errors.data, e) == NULL)) {
			rv = buf_appendf(&p->errors, "%s%s", p->nerrors > 0 ? "; " : "", e);
			p->nerrors++;
		}
	}
	if (p->running > p->desired) {
		p->stale = true;
		p->running = p->desired;
	}
	return rv;
}

/* What a wait is for: the tasks (create, scale), or an update or rollback's end. */
enum wait_kind { WAIT_CONVERGE, WAIT_UPDATE, WAIT_ROLLBACK };

/* Where an update stands, from the service's UpdateStatus and Deployment. */
enum update_stage {
	STAGE_NONE,	/* no UpdateStatus: nothing to update, or not started yet */
	STAGE_GOING,	/* in progress */
	STAGE_CONVERGE, /* over: done once the tasks converged */
	STAGE_DONE,	/* over now (blue/green: ready, promoted) */
	STAGE_FAILED,	/* over, with @err set */
};

static bool str_is(const char *s, const char *a, const char *b)
{
	return strcmp(s, a) == 0 || (b != NULL && strcmp(s, b) == 0);
}

/* The stage of the update a wait of @kind follows. Docker's CLI (API 1.41)
 * ends "service update" with an error on an automatic rollback ("service
 * rolled back: ..."), a pause ("service update paused: ..."); the API
 * clears UpdateStatus on every update, so any status seen is this update's. */
static enum update_stage update_stage(json_t *svc, enum wait_kind kind, struct shoal_err *err)
{
	const char *state = jsonfmt_str(svc, "UpdateStatus.State");
	const char *msg = jsonfmt_str(svc, "UpdateStatus.Message");
	const char *dep = jsonfmt_str(svc, "Deployment.State");
	const char *dmsg = jsonfmt_str(svc, "Deployment.Message");

	if (state[0] == '\0')
		return STAGE_NONE;
	if (strcmp(state, "paused") == 0) {
		shoal_errf(err, SHOAL_ESTATE, "service update paused: %s", msg);
		return STAGE_FAILED;
	}
	if (strcmp(state, "rollback_paused") == 0) {
		shoal_errf(err, SHOAL_ESTATE, "service rollback paused: %s", msg);
		return STAGE_FAILED;
	}
	if (strcmp(dep, "failed") == 0) {
		shoal_errf(err, SHOAL_ESTATE, "service rolled back: %s",
			   dmsg[0] != '\0' ? dmsg : msg);
		return STAGE_FAILED;
	}
	if (str_is(dep, "ready", "promoted"))
		return STAGE_DONE;
	if (str_is(dep, "completed", "rolled_back") &&
	    str_is(state, "completed", "rollback_completed"))
		return STAGE_CONVERGE;
	if (strcmp(state, "completed") == 0)
		return STAGE_CONVERGE;
	if (strcmp(state, "rollback_completed") == 0) {
		if (kind == WAIT_ROLLBACK)
			return STAGE_CONVERGE;
		shoal_errf(err, SHOAL_ESTATE, "service rolled back: %s", msg);
		return STAGE_FAILED;
	}
	return STAGE_GOING;
}

/* Docker's progress lines for a change of UpdateStatus or Deployment:
 * "rollback: MSG" once a rollback starts, "deployment: MSG" (shoal's
 * blue/green) as the deployment moves. */
static void update_progress(struct cli_ctx *ctx, json_t *svc, bool *rollback, struct buf *last_dep)
{
	const char *state = jsonfmt_str(svc, "UpdateStatus.State");
	const char *dmsg = jsonfmt_str(svc, "Deployment.Message");

	if (str_is(state, "rollback_started", "rollback_completed")) {
		if (!*rollback && jsonfmt_str(svc, "UpdateStatus.Message")[0] != '\0')
			fprintf(ctx->out, "rollback: %s\n",
				jsonfmt_str(svc, "UpdateStatus.Message"));
		*rollback = true;
	} else if (state[0] != '\0') {
		*rollback = false;
	}
	if (state[0] != '\0' && dmsg[0] != '\0' &&
	    (last_dep->data == NULL || strcmp(last_dep->data, dmsg) != 0)) {
		fprintf(ctx->out, "deployment: %s\n", dmsg);
		last_dep->len = 0;
		if (buf_appendf(last_dep, "%s", dmsg) != 0)
			last_dep->len = 0;
	}
}

/* Poll until service @id runs what its spec asks (Docker's non-tty
 * progress lines unless @quiet), or CONVERGE_TIMEOUT_S passes. For
 * WAIT_UPDATE / WAIT_ROLLBACK, until the update or rollback is over too
 * (update_stage()); one that left no UpdateStatus ends as a create does. */
static int wait_service(struct cli_ctx *ctx, struct client *client, const char *id,
			enum wait_kind kind, bool quiet, struct shoal_err *err)
{
	const char *env = getenv("SHOAL_CONVERGE_TIMEOUT");
	long timeout_s = env != NULL && atol(env) > 0 ? atol(env) : CONVERGE_TIMEOUT_S;
	uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_s * 1000;
	struct progress p = {.running = -1};
	long long last_running = -1, last_desired = -1;
	bool rollback = false;
	struct buf path, tpath, last_dep;
	json_t *filters;
	char *enc;
	int rv = 0;

	buf_init(&path);
	buf_init(&tpath);
	buf_init(&last_dep);
	buf_init(&p.errors);
	filters = json_pack("{s:{s:b}}", "service", id, 1);
	enc = filters != NULL ? json_dumps(filters, JSON_COMPACT) : NULL;
	if (enc == NULL || buf_appendf(&path, "/services/") != 0 ||
	    client_escape(&path, id, false) != 0 || buf_appendf(&tpath, "/tasks?filters=") != 0 ||
	    client_escape(&tpath, enc, true) != 0)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (;;) {
		struct client_resp svc = {0}, tasks = {0}, nodes = {0};
		enum update_stage stage = STAGE_NONE;
		bool global, converged;

		if (rv == 0)
			rv = client_request(client, "GET", path.data, NULL, &svc, err);
		if (rv == SHOAL_ENOTFOUND)
			rv = shoal_errf(err, rv, "service %s was removed while waiting for it", id);
		global = rv == 0 && jsonfmt_get(svc.json, "Spec.Mode.Global") != NULL;
		if (rv == 0)
			rv = client_request(client, "GET", tpath.data, NULL, &tasks, err);
		if (rv == 0 && global)
			rv = client_request(client, "GET", "/nodes", NULL, &nodes, err);
		if (rv == 0 && progress_count(svc.json, tasks.json, nodes.json, &p) != 0)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		if (rv == 0 && kind != WAIT_CONVERGE) {
			if (!quiet)
				update_progress(ctx, svc.json, &rollback, &last_dep);
			stage = update_stage(svc.json, kind, err);
			if (stage == STAGE_FAILED)
				rv = SHOAL_ESTATE;
		}
		if (rv == 0 && !quiet && (p.running != last_running || p.desired != last_desired))
			fprintf(ctx->out, "overall progress: %s%lld out of %lld tasks\n",
				rollback ? "rolling back update: " : "", p.running, p.desired);
		last_running = p.running;
		last_desired = p.desired;
		fflush(ctx->out);
		converged = p.running == p.desired && !p.stale;
		if (rv == 0 && (stage == STAGE_DONE ||
				(converged && (stage == STAGE_NONE || stage == STAGE_CONVERGE)))) {
			if (!quiet && stage != STAGE_DONE)
				fprintf(ctx->out, "verify: Service converged\n");
		} else if (rv == 0 && clock_mono_ms() >= deadline && converged) {
			rv = shoal_errf(err, SHOAL_ETIMEDOUT,
					"service %s: the update is still %s after %lds: %s",
					jsonfmt_str(svc.json, "Spec.Name"),
					jsonfmt_str(svc.json, "UpdateStatus.State"), timeout_s,
					jsonfmt_str(svc.json, "UpdateStatus.Message"));
		} else if (rv == 0 && clock_mono_ms() >= deadline) {
			const char *name = jsonfmt_str(svc.json, "Spec.Name");
			if (p.nerrors > 0)
				rv = shoal_errf(err, SHOAL_ETIMEDOUT,
						"service %s: %lld tasks could not start: %s", name,
						p.desired - p.running, p.errors.data);
			else
				rv = shoal_errf(err, SHOAL_ETIMEDOUT,
						"service %s: %lld out of %lld tasks running after "
						"%lds",
						name, p.running, p.desired, timeout_s);
		} else if (rv == 0) {
			struct timespec ts = {0, CONVERGE_POLL_NS};
			nanosleep(&ts, NULL);
			client_resp_free(&svc);
			client_resp_free(&tasks);
			client_resp_free(&nodes);
			continue;
		}
		client_resp_free(&svc);
		client_resp_free(&tasks);
		client_resp_free(&nodes);
		break;
	}
	json_decref(filters);
	free(enc);
	buf_free(&path);
	buf_free(&tpath);
	buf_free(&last_dep);
	buf_free(&p.errors);
	return rv;
}

static int wait_converged(struct cli_ctx *ctx, struct client *client, const char *id, bool quiet,
			  struct shoal_err *err)
{
	return wait_service(ctx, client, id, WAIT_CONVERGE, quiet, err);
}

/* --- create ---------------------------------------------------------------------------- */

/* The spec Docker's CLI sends for a new service, before flags. */
static json_t *update_defaults(void)
{
	return json_pack("{s:i, s:s, s:I, s:f, s:s}", "Parallelism", 1, "FailureAction", "pause",
			 "Monitor", (json_int_t)5000000000LL, "MaxFailureRatio", 0.0, "Order",
			 "stop-first");
}

static json_t *base_spec(const char *image, char **args, size_t nargs)
{
	json_t *spec = json_pack(
	    "{s:{}, s:{s:{s:s}, s:{s:{}, s:{}}, s:{s:s, s:I, s:i}, s:{}, s:i}, s:{s:{s:i}},"
	    " s:o, s:o, s:{s:s}}",
	    "Labels", "TaskTemplate", "ContainerSpec", "Image", image, "Resources", "Limits",
	    "Reservations", "RestartPolicy", "Condition", "any", "Delay", (json_int_t)5000000000LL,
	    "MaxAttempts", 0, "Placement", "ForceUpdate", 0, "Mode", "Replicated", "Replicas", 1,
	    "UpdateConfig", update_defaults(), "RollbackConfig", update_defaults(), "EndpointSpec",
	    "Mode", "vip");

	if (spec != NULL && nargs > 0) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < nargs; i++)
			json_array_append_new(a, json_string(args[i]));
		if (a == NULL || set_path(spec, "TaskTemplate.ContainerSpec.Args", a) != 0) {
			json_decref(spec);
			return NULL;
		}
	}
	return spec;
}

static int run_create(struct cli_ctx *ctx, int argc, char **argv)
{
	struct svc_opts o = {0};
	struct flag_spec specs[MAX_SPECS];
	size_t nspecs = opts_specs(&o, false, specs);
	struct client_resp resp = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	json_t *spec = NULL;
	int rv;

	rv = cli_parse_until_arg(ctx, specs, nspecs, CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		goto out_opts;
	if (o.mode != NULL && strcmp(o.mode, "replicated") != 0 && strcmp(o.mode, "global") != 0) {
		rv = cli_flag_error(ctx,
				    "invalid argument \"%s\" for \"--mode\" flag: shoal supports "
				    "\"replicated\" and \"global\"",
				    o.mode);
		goto out;
	}
	spec = base_spec(res.args[0], res.args + 1, res.nargs - 1);
	if (spec == NULL) {
		shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		rv = cli_fail(ctx, &err);
		goto out;
	}
	if (o.mode != NULL && strcmp(o.mode, "global") == 0) {
		if (o.replicas != NULL) {
			shoal_errf(&err, SHOAL_EINVAL,
				   "replicas can only be used with replicated or replicated-job "
				   "mode");
			rv = cli_fail(ctx, &err);
			goto out;
		}
		json_object_set_new(spec, "Mode", json_pack("{s:{}}", "Global"));
	}
	if (o.name != NULL)
		json_object_set_new(spec, "Name", json_string(o.name));
	rv = opts_apply(ctx, &o, false, spec, &err);
	if (rv != 0)
		goto out;
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "POST", "/services/create", spec, &resp, &err);
	if (rv == 0 && jsonfmt_str(resp.json, "ID")[0] == '\0')
		rv = shoal_errf(&err, SHOAL_EPROTO, "the daemon's answer names no service ID");
	if (rv == 0) {
		fprintf(ctx->out, "%s\n", jsonfmt_str(resp.json, "ID"));
		if (!o.detach)
			rv = wait_converged(ctx, client, jsonfmt_str(resp.json, "ID"), o.quiet,
					    &err);
	}
	rv = rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
out:
	json_decref(spec);
	client_resp_free(&resp);
	flags_result_free(&res);
out_opts:
	opts_free(&o);
	return rv;
}

/* --- update and scale --------------------------------------------------------------------- */

/* GET service @ref; on success *@svc holds it. */
static int get_service(struct client *client, const char *ref, struct client_resp *svc,
		       struct shoal_err *err)
{
	struct buf path;
	int rv;

	buf_init(&path);
	rv = buf_appendf(&path, "/services/") != 0 || client_escape(&path, ref, false) != 0
		 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
		 : client_request(client, "GET", path.data, NULL, svc, err);
	if (rv == 0 && (jsonfmt_str(svc->json, "ID")[0] == '\0' ||
			jsonfmt_int(svc->json, "Version.Index", -1) < 0)) {
		client_resp_free(svc);
		rv = shoal_errf(err, SHOAL_EPROTO, "the daemon's service %s has no ID or version",
				ref);
	}
	buf_free(&path);
	return rv;
}

/* POST @spec as the new spec of @svc, at the version read (@query, e.g.
 * "&rollback=previous", appended). */
static int post_update_query(struct client *client, json_t *svc, json_t *spec, const char *query,
			     struct shoal_err *err)
{
	struct client_resp resp = {0};
	struct buf path;
	int rv;

	buf_init(&path);
	rv = buf_appendf(&path, "/services/") != 0 ||
		     client_escape(&path, jsonfmt_str(svc, "ID"), false) != 0 ||
		     buf_appendf(&path, "/update?version=%lld%s",
				 jsonfmt_int(svc, "Version.Index", 0), query) != 0
		 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
		 : client_request(client, "POST", path.data, spec, &resp, err);
	client_resp_free(&resp);
	buf_free(&path);
	return rv;
}

static int post_update(struct client *client, json_t *svc, json_t *spec, struct shoal_err *err)
{
	return post_update_query(client, svc, spec, "", err);
}

static int run_update(struct cli_ctx *ctx, int argc, char **argv)
{
	struct svc_opts o = {0};
	struct flag_spec specs[MAX_SPECS];
	size_t nspecs = opts_specs(&o, true, specs);
	struct client_resp svc = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	json_t *spec = NULL;
	int rv;

	rv = cli_parse(ctx, specs, nspecs, CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		goto out_opts;
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = get_service(client, res.args[0], &svc, &err);
	if (rv != 0) {
		rv = cli_fail(ctx, &err);
		goto out;
	}
	spec = json_deep_copy(json_object_get(svc.json, "Spec"));
	if (spec == NULL) {
		shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		rv = cli_fail(ctx, &err);
		goto out;
	}
	rv = opts_apply(ctx, &o, true, spec, &err);
	if (rv != 0)
		goto out;
	rv = post_update(client, svc.json, spec, &err);
	if (rv == 0) {
		fprintf(ctx->out, "%s\n", res.args[0]);
		if (!o.detach)
			rv = wait_service(ctx, client, jsonfmt_str(svc.json, "ID"), WAIT_UPDATE,
					  o.quiet, &err);
	}
	rv = rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
out:
	json_decref(spec);
	client_resp_free(&svc);
	flags_result_free(&res);
out_opts:
	opts_free(&o);
	return rv;
}

/* Docker's "service rollback": an update with ?rollback=previous at the
 * version read (the daemon swaps Spec and PreviousSpec), then the wait. */
static int run_rollback(struct cli_ctx *ctx, int argc, char **argv)
{
	bool detach = false, quiet = false;
	const struct flag_spec specs[] = {
	    {"detach", 'd', FLAG_BOOL, NULL,
	     "Exit immediately instead of waiting for the service to converge", NULL, &detach},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Suppress progress output", NULL, &quiet},
	};
	struct client_resp svc = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = get_service(client, res.args[0], &svc, &err);
	if (rv == 0)
		rv = post_update_query(client, svc.json, json_object_get(svc.json, "Spec"),
				       "&rollback=previous", &err);
	if (rv == 0) {
		fprintf(ctx->out, "%s\n", res.args[0]);
		if (!detach)
			rv = wait_service(ctx, client, jsonfmt_str(svc.json, "ID"), WAIT_ROLLBACK,
					  quiet, &err);
	}
	rv = rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
	client_resp_free(&svc);
	flags_result_free(&res);
	return rv;
}

/* "service promote" (shoal): switch a blue/green service's traffic to its
 * new set once it is ready (Promote "manual"). */
static int run_promote(struct cli_ctx *ctx, int argc, char **argv)
{
	struct client_resp svc = {0}, resp = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf path;
	int rv;

	rv = cli_parse(ctx, NULL, 0, CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	buf_init(&path);
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = get_service(client, res.args[0], &svc, &err);
	if (rv == 0 && (buf_appendf(&path, "/services/") != 0 ||
			client_escape(&path, jsonfmt_str(svc.json, "ID"), false) != 0 ||
			buf_appendf(&path, "/promote") != 0))
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
	if (rv == 0)
		rv = client_request(client, "POST", path.data, NULL, &resp, &err);
	if (rv == 0)
		fprintf(ctx->out, "%s\n", res.args[0]);
	rv = rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
	client_resp_free(&resp);
	client_resp_free(&svc);
	buf_free(&path);
	flags_result_free(&res);
	return rv;
}

static int run_scale(struct cli_ctx *ctx, int argc, char **argv)
{
	bool detach = false;
	const struct flag_spec specs[] = {
	    {"detach", 'd', FLAG_BOOL, NULL,
	     "Exit immediately instead of waiting for the service to converge", NULL, &detach},
	};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	char **ids;
	size_t i, nids = 0;
	int rv, failed = 0;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	/* Docker checks every argument before scaling anything. */
	for (i = 0; i < res.nargs; i++) {
		const char *eq = strchr(res.args[i], '=');
		bool digits = eq != NULL && eq[1] != '\0';
		for (const char *d = eq != NULL ? eq + 1 : ""; digits && *d != '\0'; d++)
			digits = *d >= '0' && *d <= '9';
		if (eq == NULL || eq == res.args[i] || !digits || strlen(eq + 1) > 18) {
			fprintf(ctx->err,
				"Invalid scale specifier '%s'.\nSee '%s --help'.\n\nUsage:  %s "
				"SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\n%s\n",
				res.args[i], ctx->path, ctx->path, ctx->cmd->short_help);
			flags_result_free(&res);
			return CLI_EXIT_ERROR;
		}
	}
	ids = calloc(res.nargs, sizeof(*ids));
	rv = ids == NULL ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
			 : cli_client(ctx, &client, &err);
	if (rv != 0) {
		free(ids);
		flags_result_free(&res);
		return cli_fail(ctx, &err);
	}
	for (i = 0; i < res.nargs; i++) {
		char *name = strndup(res.args[i], (size_t)(strchr(res.args[i], '=') - res.args[i]));
		const char *n = strchr(res.args[i], '=') + 1;
		struct client_resp svc = {0};
		json_t *spec = NULL;

		rv = name == NULL ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
				  : get_service(client, name, &svc, &err);
		if (rv == 0 && jsonfmt_get(svc.json, "Spec.Mode.Replicated") == NULL)
			rv = shoal_errf(&err, SHOAL_EINVAL,
					"scale can only be used with replicated or replicated-job "
					"mode");
		if (rv == 0) {
			spec = json_deep_copy(json_object_get(svc.json, "Spec"));
			rv = spec == NULL || set_path(spec, "Mode.Replicated.Replicas",
						      json_integer(strtoll(n, NULL, 10))) != 0
				 ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
				 : post_update(client, svc.json, spec, &err);
		}
		if (rv == 0) {
			fprintf(ctx->out, "%s scaled to %s\n", name, n);
			ids[nids] = strdup(jsonfmt_str(svc.json, "ID"));
			nids += ids[nids] != NULL;
		} else {
			failed = 1;
			fflush(ctx->out);
			fprintf(ctx->err, "%s\n", err.msg);
		}
		json_decref(spec);
		client_resp_free(&svc);
		free(name);
	}
	for (i = 0; i < nids; i++) {
		if (!detach && wait_converged(ctx, client, ids[i], false, &err) != 0) {
			failed = 1;
			fflush(ctx->out);
			fprintf(ctx->err, "%s\n", err.msg);
		}
		free(ids[i]);
	}
	free(ids);
	flags_result_free(&res);
	return failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* --- ls, ps, inspect, rm ---------------------------------------------------------------------- */

/* One "-f name=value": filters[name][value] = true, as Docker's filters.Args. */
static int add_filter(json_t *filters, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char name[128];
	json_t *set;

	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	for (char *p = name; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	set = json_object_get(filters, name);
	if (set == NULL) {
		set = json_object();
		if (set == NULL || json_object_set_new(filters, name, set) != 0)
			return SHOAL_ENOMEM;
	}
	return json_object_set_new(set, eq + 1, json_true()) != 0 ? SHOAL_ENOMEM : 0;
}

/* --format and -q into @fmt; the -f values checked. Returns CLI_CONTINUE or an exit code. */
static int list_format(struct cli_ctx *ctx, const char *format, bool quiet,
		       const struct flag_list *filters, enum svc_list_format *fmt)
{
	*fmt = SVC_LIST_TABLE;
	if (format != NULL && strcmp(format, "json") == 0)
		*fmt = SVC_LIST_JSON;
	else if (format != NULL && format[0] != '\0' && strcmp(format, "table") != 0)
		return cli_flag_error(ctx,
				      "invalid argument \"%s\" for \"--format\" flag: shoal "
				      "supports only the \"table\" and \"json\" formats",
				      format);
	else if (quiet)
		*fmt = SVC_LIST_QUIET;
	for (size_t i = 0; i < filters->n; i++)
		if (strchr(filters->items[i], '=') == NULL)
			return cli_flag_error(ctx,
					      "invalid argument \"%s\" for \"-f, --filter\" flag: "
					      "bad format of filter (expected name=value)",
					      filters->items[i]);
	return CLI_CONTINUE;
}

static int run_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	struct flag_list filters = {0};
	bool quiet = false;
	const struct flag_spec specs[] = {
	    {"filter", 'f', FLAG_LIST, "filter", "Filter output based on conditions provided", NULL,
	     &filters},
	    {"format", 0, FLAG_STRING, "string", LS_FORMAT_USAGE, NULL, &format},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only display IDs", NULL, &quiet},
	};
	struct client_resp services = {0};
	enum svc_list_format fmt;
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf path, out;
	json_t *f = NULL;
	char *enc = NULL;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		goto out_flags;
	flags_result_free(&res);
	rv = list_format(ctx, format, quiet, &filters, &fmt);
	if (rv != CLI_CONTINUE)
		goto out_flags;
	buf_init(&path);
	buf_init(&out);
	f = json_object();
	rv = f != NULL ? buf_appendf(&path, "/services?status=true") : SHOAL_ENOMEM;
	for (size_t i = 0; rv == 0 && i < filters.n; i++)
		rv = add_filter(f, filters.items[i]);
	if (rv == 0 && json_object_size(f) > 0) {
		enc = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
		rv = enc != NULL ? buf_appendf(&path, "&filters=") : SHOAL_ENOMEM;
		if (rv == 0)
			rv = client_escape(&path, enc, true);
	}
	if (rv != 0)
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
	if (rv == 0)
		rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "GET", path.data, NULL, &services, &err);
	if (rv == 0 && !json_is_array(services.json))
		rv = shoal_errf(&err, SHOAL_EPROTO,
				"the daemon's answer to GET /services is not a list");
	if (rv == 0 && service_format_list(services.json, fmt, &out) != 0)
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
	if (rv == 0)
		rv = cli_write(ctx, out.data, out.len, &err);
	client_resp_free(&services);
	buf_free(&path);
	buf_free(&out);
	json_decref(f);
	free(enc);
	flag_list_free(&filters);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
out_flags:
	flag_list_free(&filters);
	return rv;
}

/* "service ps" and "node ps": the tasks whose @key ("service" or "node") is
 * one of @refs (resolved to ids by @resolve), with -f filters added. */
typedef int (*resolve_fn)(struct client *client, const char *ref, char **id, struct shoal_err *err);

static int tasks_ps(struct cli_ctx *ctx, int argc, char **argv, const char *key, resolve_fn resolve,
		    const char *def_ref)
{
	const char *format = NULL;
	struct flag_list filters = {0};
	bool quiet = false, no_trunc = false, no_resolve = false;
	const struct flag_spec specs[] = {
	    {"filter", 'f', FLAG_LIST, "filter", "Filter output based on conditions provided", NULL,
	     &filters},
	    {"format", 0, FLAG_STRING, "string", LS_FORMAT_USAGE, NULL, &format},
	    {"no-resolve", 0, FLAG_BOOL, NULL, "Do not map IDs to Names", NULL, &no_resolve},
	    {"no-trunc", 0, FLAG_BOOL, NULL, "Do not truncate output", NULL, &no_trunc},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only display task IDs", NULL, &quiet},
	};
	struct task_list_opts o = {.now_ns = clock_now_ns()};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf out;
	json_t *f = NULL, *set;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_MIN, def_ref != NULL ? 0 : 1, argc,
		       argv, &res);
	if (rv != CLI_CONTINUE)
		goto out_flags;
	rv = list_format(ctx, format, quiet, &filters, &o.fmt);
	if (rv != CLI_CONTINUE) {
		flags_result_free(&res);
		goto out_flags;
	}
	o.no_trunc = no_trunc;
	buf_init(&out);
	f = json_object();
	set = json_object();
	rv = f == NULL || set == NULL || json_object_set(f, key, set) != 0
		 ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
		 : cli_client(ctx, &client, &err);
	for (size_t i = 0; rv == 0 && i < (res.nargs > 0 ? res.nargs : 1); i++) {
		char *id = NULL;
		rv = resolve(client, res.nargs > 0 ? res.args[i] : def_ref, &id, &err);
		if (rv == 0 && json_object_set_new(set, id, json_true()) != 0)
			rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		free(id);
	}
	for (size_t i = 0; rv == 0 && i < filters.n; i++)
		if (add_filter(f, filters.items[i]) != 0)
			rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
	if (rv == 0)
		rv = task_fetch_and_format(client, f, &o, &out, &err);
	if (rv == 0)
		rv = cli_write(ctx, out.data, out.len, &err);
	json_decref(set);
	json_decref(f);
	buf_free(&out);
	flags_result_free(&res);
	flag_list_free(&filters);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
out_flags:
	flag_list_free(&filters);
	return rv;
}

/* Docker's CLI resolves the service itself and says "no such service". */
static int resolve_service(struct client *client, const char *ref, char **id, struct shoal_err *err)
{
	struct client_resp svc = {0};
	int rv = get_service(client, ref, &svc, err);

	if (rv == SHOAL_ENOTFOUND)
		return shoal_errf(err, rv, "no such service: %s", ref);
	if (rv == 0) {
		*id = strdup(jsonfmt_str(svc.json, "ID"));
		if (*id == NULL)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	client_resp_free(&svc);
	return rv;
}

static int run_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	return tasks_ps(ctx, argc, argv, "service", resolve_service, NULL);
}

/* The node's id: "self" from GET /info, others through GET /nodes/{ref}. */
static int resolve_node(struct client *client, const char *ref, char **id, struct shoal_err *err)
{
	struct client_resp r = {0};
	struct buf path;
	const char *got;
	int rv;

	buf_init(&path);
	if (strcmp(ref, "self") == 0)
		rv = client_request(client, "GET", "/info", NULL, &r, err);
	else
		rv = buf_appendf(&path, "/nodes/") != 0 || client_escape(&path, ref, false) != 0
			 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
			 : client_request(client, "GET", path.data, NULL, &r, err);
	got = strcmp(ref, "self") == 0 ? jsonfmt_str(r.json, "Swarm.NodeID")
				       : jsonfmt_str(r.json, "ID");
	if (rv == 0 && got[0] == '\0')
		rv = shoal_errf(err, SHOAL_ESTATE,
				"This node is not a swarm manager. Use \"docker swarm init\" or "
				"\"docker swarm join\" to connect this node to swarm and try "
				"again.");
	if (rv == 0 && (*id = strdup(got)) == NULL)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	client_resp_free(&r);
	buf_free(&path);
	return rv;
}

int cli_node_ps(struct cli_ctx *ctx, int argc, char **argv);

int cli_node_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	return tasks_ps(ctx, argc, argv, "node", resolve_node, "self");
}

static int inspect_one(struct client *client, const char *ref, void *arg, struct client_resp *resp,
		       struct shoal_err *err)
{
	(void)arg;
	return get_service(client, ref, resp, err);
}

static const struct cli_inspect_kind service_inspect = {
    .get = inspect_one,
    .pretty = service_format_pretty,
    .not_found = "service",
};

static int run_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_inspect(ctx, argc, argv, &service_inspect, NULL);
}

static int run_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	int rv;

	rv = cli_parse(ctx, NULL, 0, CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	rv = cli_client(ctx, &client, &err);
	if (rv != 0) {
		flags_result_free(&res);
		return cli_fail(ctx, &err);
	}
	rv = cli_delete_each(ctx, client, "/services/", NULL, res.args, res.nargs);
	flags_result_free(&res);
	return rv;
}

static const struct cli_cmd cmd_create = {
    .name = "create",
    .use = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    .short_help = "Create a new service",
    .run = run_create,
};

static const struct cli_cmd cmd_inspect = {
    .name = "inspect",
    .use = "[OPTIONS] SERVICE [SERVICE...]",
    .short_help = "Display detailed information on one or more services",
    .run = run_inspect,
};

static const struct cli_cmd cmd_ls = {
    .name = "ls",
    .alias = "list",
    .use = "[OPTIONS]",
    .short_help = "List services",
    .run = run_ls,
};

static const struct cli_cmd cmd_ps = {
    .name = "ps",
    .use = "[OPTIONS] SERVICE [SERVICE...]",
    .short_help = "List the tasks of one or more services",
    .run = run_ps,
};

static const struct cli_cmd cmd_rm = {
    .name = "rm",
    .alias = "remove",
    .use = "SERVICE [SERVICE...]",
    .short_help = "Remove one or more services",
    .run = run_rm,
};

static const struct cli_cmd cmd_promote = {
    .name = "promote",
    .use = "SERVICE",
    .short_help = "Switch a blue-green service's traffic to its new tasks (shoal)",
    .run = run_promote,
};

static const struct cli_cmd cmd_rollback = {
    .name = "rollback",
    .use = "[OPTIONS] SERVICE",
    .short_help = "Revert changes to a service's configuration",
    .run = run_rollback,
};

static const struct cli_cmd cmd_scale = {
    .name = "scale",
    .use = "SERVICE=REPLICAS [SERVICE=REPLICAS...]",
    .short_help = "Scale one or multiple replicated services",
    .run = run_scale,
};

static const struct cli_cmd cmd_update = {
    .name = "update",
    .use = "[OPTIONS] SERVICE",
    .short_help = "Update a service",
    .run = run_update,
};

/* In Docker's (alphabetical) order. */
static const struct cli_cmd *const service_cmds[] = {
    &cmd_create, &cmd_inspect, &cli_cmd_service_logs, &cmd_ls,	  &cmd_promote,
    &cmd_ps,	 &cmd_rm,      &cmd_rollback,	      &cmd_scale, &cmd_update};

const struct cli_cmd cli_cmd_service = {
    .name = "service",
    .short_help = "Manage Swarm services",
    .group = CLI_GROUP_SWARM,
    .subs = service_cmds,
    .nsubs = ARRAY_SIZE(service_cmds),
};
