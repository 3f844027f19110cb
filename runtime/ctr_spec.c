/* Container specs: Docker's container-create body, type-checked and bounded, and back to JSON. */
#include "runtime/ctr_spec.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 96 /* "HostConfig.Mounts[1023].Target" and the like */

/* Docker's json-file limits we accept. */
#define LOG_MAX_SIZE (1ll << 40)
#define LOG_MAX_FILE 1000
/* Docker refuses a memory limit under 6 MiB. */
#define MEMORY_MIN (6ll << 20)
/* NanoCpus from 0.01 CPU (a 1 ms quota per 100 ms period) to 1024 CPUs. */
#define NANO_CPUS_MIN 10000000ll
#define NANO_CPUS_MAX (1024ll * 1000000000ll)

static int nomem(struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
}

/* ---- signals ---- */

static const struct {
	const char *name;
	int num;
} signals[] = {
    {"HUP", 1},	  {"INT", 2},	{"QUIT", 3},	{"ILL", 4},    {"TRAP", 5},    {"ABRT", 6},
    {"IOT", 6},	  {"BUS", 7},	{"FPE", 8},	{"KILL", 9},   {"USR1", 10},   {"SEGV", 11},
    {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},	{"TERM", 15},  {"STKFLT", 16}, {"CHLD", 17},
    {"CONT", 18}, {"STOP", 19}, {"TSTP", 20},	{"TTIN", 21},  {"TTOU", 22},   {"URG", 23},
    {"XCPU", 24}, {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27},  {"WINCH", 28},  {"IO", 29},
    {"POLL", 29}, {"PWR", 30},	{"SYS", 31},	{"RTMIN", 34}, {"RTMAX", 64},
};

/* Digits only, at most @max_digits of them, into *@out. */
static bool parse_small_uint(const char *s, size_t max_digits, int *out)
{
	size_t n = strlen(s);
	int v = 0;

	if (n == 0 || n > max_digits)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int ctr_signal_parse(const char *s)
{
	char up[16];
	const char *name;
	size_t n;
	int num;

	if (s == NULL)
		return -1;
	if (parse_small_uint(s, 2, &num))
		return num >= 1 && num <= 64 ? num : -1;
	n = strlen(s);
	if (n == 0 || n >= sizeof(up))
		return -1;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)s[i]);
	name = strncmp(up, "SIG", 3) == 0 ? up + 3 : up;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (strcmp(name, signals[i].name) == 0)
			return signals[i].num;
	/* RTMIN+n and RTMAX-n, as Docker's signal map has them. */
	if (strncmp(name, "RTMIN+", 6) == 0 && parse_small_uint(name + 6, 2, &num) && num >= 1 &&
	    num <= 15)
		return 34 + num;
	if (strncmp(name, "RTMAX-", 6) == 0 && parse_small_uint(name + 6, 2, &num) && num >= 1 &&
	    num <= 14)
		return 64 - num;
	return -1;
}

/* ---- capabilities and rlimits ---- */

static const char *const cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    NULL,
};

const char *const *ctr_cap_all(void)
{
	return cap_names;
}

static const struct {
	const char *docker; /* Docker's ulimit name */
	const char *oci;
} rlimit_names[] = {
    {"as", "RLIMIT_AS"},
    {"core", "RLIMIT_CORE"},
    {"cpu", "RLIMIT_CPU"},
    {"data", "RLIMIT_DATA"},
    {"fsize", "RLIMIT_FSIZE"},
    {"locks", "RLIMIT_LOCKS"},
    {"memlock", "RLIMIT_MEMLOCK"},
    {"msgqueue", "RLIMIT_MSGQUEUE"},
    {"nice", "RLIMIT_NICE"},
    {"nofile", "RLIMIT_NOFILE"},
    {"nproc", "RLIMIT_NPROC"},
    {"rss", "RLIMIT_RSS"},
    {"rtprio", "RLIMIT_RTPRIO"},
    {"rttime", "RLIMIT_RTTIME"},
    {"sigpending", "RLIMIT_SIGPENDING"},
    {"stack", "RLIMIT_STACK"},
};

/* ---- JSON access: every helper names the field in its error ---- */

/* The value at @key of @obj; NULL when absent or JSON null. */
static const json_t *field(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/* A string value into heap *@out (bounded, no NUL inside). */
static int take_string(const json_t *v, const char *name, char **out, struct shoal_err *err)
{
	size_t n;

	*out = NULL;
	if (!json_is_string(v))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be a string", name);
	n = json_string_length(v);
	if (n > CTR_SPEC_MAX_STRING)
		return shoal_errf(err, SHOAL_ETOOBIG, "invalid %s: longer than %u bytes", name,
				  CTR_SPEC_MAX_STRING);
	if (strlen(json_string_value(v)) != n)
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must not contain a NUL character",
				  name);
	*out = strdup(json_string_value(v));
	return *out == NULL ? nomem(err) : 0;
}

/* An optional string: absent, null or "" gives NULL. */
static int get_string(const json_t *obj, const char *key, const char *name, char **out,
		      struct shoal_err *err)
{
	const json_t *v = field(obj, key);
	int rv;

	*out = NULL;
	if (v == NULL)
		return 0;
	rv = take_string(v, name, out, err);
	if (rv == 0 && (*out)[0] == '\0') {
		free(*out);
		*out = NULL;
	}
	return rv;
}

static int get_bool(const json_t *obj, const char *key, const char *name, bool *out,
		    struct shoal_err *err)
{
	const json_t *v = field(obj, key);

	*out = false;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be true or false", name);
	*out = json_is_true(v);
	return 0;
}

/* An integer in [@min, @max]; absent or null gives @def. */
static int get_int(const json_t *obj, const char *key, const char *name, int64_t min, int64_t max,
		   int64_t def, int64_t *out, struct shoal_err *err)
{
	const json_t *v = field(obj, key);
	json_int_t i;

	*out = def;
	if (v == NULL)
		return 0;
	i = json_is_integer(v) ? json_integer_value(v) : 0;
	if (!json_is_integer(v) || i < min || i > max) {
		if (min == 0 && max == INT64_MAX)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid %s: must be a non-negative integer", name);
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid %s: must be an integer from %" PRId64 " to %" PRId64,
				  name, min, max);
	}
	*out = (int64_t)i;
	return 0;
}

/* A list given as an array of strings, or as one string (Docker's StrSlice).
 * *@given tells whether it was there at all (not absent, not null). */
static int get_strslice(const json_t *obj, const char *key, const char *name,
			struct oci_strlist *out, bool *given, struct shoal_err *err)
{
	const json_t *v = field(obj, key);
	char item[NAME_LEN];
	size_t n;
	int rv;

	out->items = NULL;
	out->n = 0;
	if (given != NULL)
		*given = v != NULL;
	if (v == NULL)
		return 0;
	if (json_is_string(v)) {
		out->items = calloc(1, sizeof(*out->items));
		if (out->items == NULL)
			return nomem(err);
		rv = take_string(v, name, &out->items[0], err);
		if (rv != 0) {
			oci_strlist_free(out);
			return rv;
		}
		out->n = 1;
		return 0;
	}
	if (!json_is_array(v))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be an array of strings",
				  name);
	n = json_array_size(v);
	if (n > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG, "invalid %s: more than %u entries", name,
				  CTR_SPEC_MAX_ITEMS);
	if (n == 0)
		return 0;
	out->items = calloc(n, sizeof(*out->items));
	if (out->items == NULL)
		return nomem(err);
	for (size_t i = 0; i < n; i++) {
		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		rv = take_string(json_array_get(v, i), item, &out->items[i], err);
		if (rv != 0) {
			oci_strlist_free(out);
			return rv;
		}
		out->n = i + 1;
	}
	return 0;
}

/* An array of at most CTR_SPEC_MAX_ITEMS at @key; NULL when absent or null. */
static int get_array(const json_t *obj, const char *key, const char *name, const json_t **out,
		     struct shoal_err *err)
{
	const json_t *v = field(obj, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be an array", name);
	if (json_array_size(v) > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG, "invalid %s: more than %u entries", name,
				  CTR_SPEC_MAX_ITEMS);
	*out = v;
	return 0;
}

/* An object at @key; NULL when absent or null. */
static int get_object(const json_t *obj, const char *key, const char *name, json_t **out,
		      struct shoal_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be an object", name);
	if (json_object_size(v) > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG, "invalid %s: more than %u entries", name,
				  CTR_SPEC_MAX_ITEMS);
	*out = v;
	return 0;
}

/* null, false, 0, "", [] or {}: what the docker CLI sends for a feature left alone. */
static bool is_unset(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return true;
	case JSON_INTEGER:
		return json_integer_value(v) == 0;
	case JSON_REAL:
		return json_real_value(v) == 0;
	case JSON_STRING:
		return json_string_length(v) == 0;
	case JSON_ARRAY:
		return json_array_size(v) == 0;
	case JSON_OBJECT:
		return json_object_size(v) == 0;
	default:
		return false;
	}
}

/* ---- paths ---- */

/* Absolute, and no ".." component. */
static bool path_ok(const char *p)
{
	const char *c = p;

	if (p[0] != '/')
		return false;
	while ((c = strstr(c, "..")) != NULL) {
		if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0'))
			return false;
		c += 2;
	}
	return true;
}

static int check_mount_paths(const char *name, const char *source, const char *target,
			     struct shoal_err *err)
{
	if (source[0] != '/')
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid %s: source '%.200s' must be an absolute host path "
				  "(shoal does not support named volumes)",
				  name, source);
	if (!path_ok(target))
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "invalid %s: target '%.200s' must be an absolute path without '..'", name,
		    target);
	if (strspn(target, "/") == strlen(target))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: target can't be '/'", name);
	return 0;
}

/* ---- the body ---- */

/* Features that change what a container may do or what it is; refused when set. */
static const char *const unsupported_config[] = {"Tty", "OpenStdin", "StdinOnce", "Volumes"};
static const char *const unsupported_host[] = {
    "Privileged",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "SecurityOpt",
    "PidMode",
    "UTSMode",
    "UsernsMode",
    "Cgroup",
    "CgroupParent",
    "VolumesFrom",
    "VolumeDriver",
    "Links",
    "PortBindings",
    "PublishAllPorts",
    "GroupAdd",
    "Sysctls",
    "OomKillDisable",
    "OomScoreAdj",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "ExtraHosts",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "Tmpfs",
    "StorageOpt",
    "Init",
    "MaskedPaths",
    "ReadonlyPaths",
    "AutoRemove",
    "Capabilities",
};

/* @key of @obj, when present, must be one of @allowed (NULL-terminated; "" = unset). */
static int check_mode(const json_t *obj, const char *key, const char *const *allowed,
		      struct shoal_err *err)
{
	const json_t *v = field(obj, key);
	const char *s;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return shoal_errf(err, SHOAL_EINVAL, "invalid HostConfig.%s: must be a string",
				  key);
	s = json_string_value(v);
	for (size_t i = 0; allowed[i] != NULL; i++)
		if (strcmp(s, allowed[i]) == 0)
			return 0;
	return shoal_errf(err, SHOAL_EINVAL, "shoal does not support HostConfig.%s '%.64s'", key,
			  s);
}

static int check_unsupported(const json_t *body, const json_t *hc, struct shoal_err *err)
{
	static const char *const ipc[] = {"", "private", "shareable", NULL};
	static const char *const cgroupns[] = {"", "host", NULL};
	static const char *const isolation[] = {"", "default", NULL};
	static const char *const runtime[] = {"", "runc", NULL};
	const json_t *v;
	int64_t n;
	int rv;

	for (size_t i = 0; i < ARRAY_SIZE(unsupported_config); i++) {
		v = json_object_get(body, unsupported_config[i]);
		if (v != NULL && !is_unset(v))
			return shoal_errf(err, SHOAL_EINVAL, "shoal does not support %s",
					  unsupported_config[i]);
	}
	if (hc == NULL)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(unsupported_host); i++) {
		v = json_object_get(hc, unsupported_host[i]);
		if (v != NULL && !is_unset(v))
			return shoal_errf(err, SHOAL_EINVAL, "shoal does not support HostConfig.%s",
					  unsupported_host[i]);
	}
	rv = check_mode(hc, "IpcMode", ipc, err);
	if (rv == 0)
		rv = check_mode(hc, "CgroupnsMode", cgroupns, err);
	if (rv == 0)
		rv = check_mode(hc, "Isolation", isolation, err);
	if (rv == 0)
		rv = check_mode(hc, "Runtime", runtime, err);
	if (rv != 0)
		return rv;
	/* Docker's /dev/shm is 64 MiB; another size is not honoured. */
	rv = get_int(hc, "ShmSize", "HostConfig.ShmSize", 0, INT64_MAX, 0, &n, err);
	if (rv != 0)
		return rv;
	if (n != 0 && n != (64 << 20))
		return shoal_errf(err, SHOAL_EINVAL,
				  "shoal does not support HostConfig.ShmSize other than 64 MiB");
	v = field(hc, "RestartPolicy");
	if (v != NULL) {
		const json_t *name;
		if (!json_is_object(v))
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid HostConfig.RestartPolicy: must be an object");
		name = field(v, "Name");
		if (name != NULL && !json_is_string(name))
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "invalid HostConfig.RestartPolicy.Name: must be a string");
		if (name != NULL && json_string_length(name) > 0 &&
		    strcmp(json_string_value(name), "no") != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "shoal does not support HostConfig.RestartPolicy '%.32s' "
					  "on a container (a service restarts its tasks)",
					  json_string_value(name));
	}
	return 0;
}

static int parse_entry_cmd(const json_t *body, struct ctr_spec *s, struct shoal_err *err)
{
	int rv =
	    get_strslice(body, "Entrypoint", "Entrypoint", &s->entrypoint, &s->entrypoint_set, err);

	if (rv != 0)
		return rv;
	/* --entrypoint "" arrives as [""]: set, and empty. */
	if (s->entrypoint.n == 1 && s->entrypoint.items[0][0] == '\0')
		oci_strlist_free(&s->entrypoint);
	rv = get_strslice(body, "Cmd", "Cmd", &s->cmd, NULL, err);
	if (rv != 0)
		return rv;
	if (s->entrypoint.n + s->cmd.n > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "invalid Cmd: Entrypoint and Cmd have more than %u arguments",
				  CTR_SPEC_MAX_ITEMS);
	return 0;
}

static int parse_env(const json_t *body, struct ctr_spec *s, struct shoal_err *err)
{
	int rv = get_strslice(body, "Env", "Env", &s->env, NULL, err);

	if (rv != 0)
		return rv;
	for (size_t i = 0; i < s->env.n; i++) {
		const char *e = s->env.items[i];
		const char *eq = strchr(e, '=');
		if (eq == NULL || eq == e)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid Env[%zu]: '%.64s' must be KEY=value", i, e);
	}
	return 0;
}

static bool hostname_ok(const char *h)
{
	size_t n = strlen(h);

	if (n > 64 || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.')
			return false;
	return true;
}

/* "name", "uid", "name:group", "uid:gid": no empty part, no control character. */
static bool user_ok(const char *u)
{
	const char *colon = strchr(u, ':');

	if (colon != NULL && (colon == u || colon[1] == '\0' || strchr(colon + 1, ':') != NULL))
		return false;
	if (strlen(u) > 256)
		return false;
	for (const char *c = u; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '/')
			return false;
	return true;
}

static int parse_labels(const json_t *body, struct ctr_spec *s, struct shoal_err *err)
{
	json_t *obj, *v;
	const char *key;
	char name[NAME_LEN];
	int rv = get_object(body, "Labels", "Labels", &obj, err);

	if (rv != 0 || obj == NULL || json_object_size(obj) == 0)
		return rv;
	s->labels = calloc(json_object_size(obj), sizeof(*s->labels));
	if (s->labels == NULL)
		return nomem(err);
	json_object_foreach(obj, key, v)
	{
		struct oci_label *l = &s->labels[s->n_labels];
		snprintf(name, sizeof(name), "Labels.%.64s", key);
		if (key[0] == '\0')
			return shoal_errf(err, SHOAL_EINVAL, "invalid Labels: a key is empty");
		if (strlen(key) > CTR_SPEC_MAX_STRING)
			return shoal_errf(err, SHOAL_ETOOBIG,
					  "invalid Labels: a key is longer "
					  "than %u bytes",
					  CTR_SPEC_MAX_STRING);
		rv = take_string(v, name, &l->value, err);
		if (rv != 0)
			return rv;
		l->key = strdup(key);
		s->n_labels++;
		if (l->key == NULL)
			return nomem(err);
	}
	qsort(s->labels, s->n_labels, sizeof(*s->labels), oci_label_cmp);
	return 0;
}

/* A duration in ns: 0, or at least 1 ms as Docker requires. */
static int get_hc_duration(const json_t *hc, const char *key, int64_t *out, struct shoal_err *err)
{
	char name[NAME_LEN];
	int rv;

	snprintf(name, sizeof(name), "Healthcheck.%s", key);
	rv = get_int(hc, key, name, 0, INT64_MAX, 0, out, err);
	if (rv == 0 && *out != 0 && *out < 1000000)
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid %s: must be 0 (the default) or at least 1ms (1000000 ns)",
				name);
	return rv;
}

static int parse_healthcheck(const json_t *body, struct oci_healthcheck *h, struct shoal_err *err)
{
	json_t *hc;
	const char *t;
	int rv = get_object(body, "Healthcheck", "Healthcheck", &hc, err);

	if (rv != 0 || hc == NULL)
		return rv;
	rv = get_strslice(hc, "Test", "Healthcheck.Test", &h->test, NULL, err);
	if (rv != 0)
		return rv;
	if (h->test.n > 0) {
		t = h->test.items[0];
		if (strcmp(t, "NONE") == 0) {
			if (h->test.n != 1)
				return shoal_errf(
				    err, SHOAL_EINVAL,
				    "invalid Healthcheck.Test: NONE takes no argument");
		} else if (strcmp(t, "CMD") == 0) {
			if (h->test.n < 2 || h->test.items[1][0] == '\0')
				return shoal_errf(err, SHOAL_EINVAL,
						  "invalid Healthcheck.Test: CMD needs a command");
		} else if (strcmp(t, "CMD-SHELL") == 0) {
			if (h->test.n != 2 || h->test.items[1][0] == '\0')
				return shoal_errf(
				    err, SHOAL_EINVAL,
				    "invalid Healthcheck.Test: CMD-SHELL takes exactly "
				    "one command string");
		} else {
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid Healthcheck.Test: must start with NONE, CMD or "
					  "CMD-SHELL, not '%.40s'",
					  t);
		}
	}
	rv = get_hc_duration(hc, "Interval", &h->interval_ns, err);
	if (rv == 0)
		rv = get_hc_duration(hc, "Timeout", &h->timeout_ns, err);
	if (rv == 0)
		rv = get_hc_duration(hc, "StartPeriod", &h->start_period_ns, err);
	if (rv == 0)
		rv = get_hc_duration(hc, "StartInterval", &h->start_interval_ns, err);
	if (rv == 0)
		rv = get_int(hc, "Retries", "Healthcheck.Retries", 0, INT32_MAX, 0, &h->retries,
			     err);
	return rv;
}

static int add_mount(struct ctr_spec *s, const char *name, char **source, char **target,
		     bool readonly, struct shoal_err *err)
{
	int rv = check_mount_paths(name, *source, *target, err);

	if (rv != 0)
		return rv;
	for (size_t i = 0; i < s->n_mounts; i++)
		if (strcmp(s->mounts[i].target, *target) == 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid %s: duplicate mount point %.200s", name,
					  *target);
	s->mounts[s->n_mounts].source = *source;
	s->mounts[s->n_mounts].target = *target;
	s->mounts[s->n_mounts].readonly = readonly;
	s->n_mounts++;
	*source = NULL;
	*target = NULL;
	return 0;
}

/* "src:dst[:ro|rw]" */
static int parse_bind(struct ctr_spec *s, const char *name, const char *b, struct shoal_err *err)
{
	const char *c1 = strchr(b, ':');
	const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
	char *source = NULL, *target = NULL;
	bool ro = false;
	int rv;

	if (c1 == NULL)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid %s: '%.200s' must be source:target[:ro|rw]", name, b);
	if (c2 != NULL) {
		if (strcmp(c2 + 1, "ro") == 0)
			ro = true;
		else if (strcmp(c2 + 1, "rw") != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid %s: mode '%.32s' must be ro or rw", name,
					  c2 + 1);
	}
	source = strndup(b, (size_t)(c1 - b));
	target = c2 != NULL ? strndup(c1 + 1, (size_t)(c2 - c1 - 1)) : strdup(c1 + 1);
	if (source == NULL || target == NULL)
		rv = nomem(err);
	else
		rv = add_mount(s, name, &source, &target, ro, err);
	free(source);
	free(target);
	return rv;
}

static int parse_mount_obj(struct ctr_spec *s, const char *name, const json_t *m,
			   struct shoal_err *err)
{
	char fname[NAME_LEN + 16];
	char *type = NULL, *source = NULL, *target = NULL;
	bool ro = false;
	int rv;

	if (!json_is_object(m))
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be an object", name);
	snprintf(fname, sizeof(fname), "%s.Type", name);
	rv = get_string(m, "Type", fname, &type, err);
	if (rv == 0 && (type == NULL || strcmp(type, "bind") != 0))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"shoal does not support %s.Type '%.32s': only bind mounts", name,
				type != NULL ? type : "");
	free(type);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < 3; i++) {
		static const char *const opts[] = {"BindOptions", "VolumeOptions", "TmpfsOptions"};
		const json_t *v = json_object_get(m, opts[i]);
		if (v != NULL && !is_unset(v))
			return shoal_errf(err, SHOAL_EINVAL, "shoal does not support %s.%s", name,
					  opts[i]);
	}
	snprintf(fname, sizeof(fname), "%s.Source", name);
	rv = get_string(m, "Source", fname, &source, err);
	if (rv == 0 && source == NULL)
		rv = shoal_errf(err, SHOAL_EINVAL, "invalid %s: Source is required", name);
	snprintf(fname, sizeof(fname), "%s.Target", name);
	if (rv == 0)
		rv = get_string(m, "Target", fname, &target, err);
	if (rv == 0 && target == NULL)
		rv = shoal_errf(err, SHOAL_EINVAL, "invalid %s: Target is required", name);
	snprintf(fname, sizeof(fname), "%s.ReadOnly", name);
	if (rv == 0)
		rv = get_bool(m, "ReadOnly", fname, &ro, err);
	if (rv == 0)
		rv = add_mount(s, name, &source, &target, ro, err);
	free(source);
	free(target);
	return rv;
}

static int parse_mounts(const json_t *hc, struct ctr_spec *s, struct shoal_err *err)
{
	const json_t *binds, *mounts;
	char name[NAME_LEN];
	size_t n;
	int rv = get_array(hc, "Binds", "HostConfig.Binds", &binds, err);

	if (rv == 0)
		rv = get_array(hc, "Mounts", "HostConfig.Mounts", &mounts, err);
	if (rv != 0)
		return rv;
	n = json_array_size(binds) + json_array_size(mounts);
	if (n > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "invalid HostConfig.Mounts: more than %u mounts with Binds",
				  CTR_SPEC_MAX_ITEMS);
	if (n == 0)
		return 0;
	s->mounts = calloc(n, sizeof(*s->mounts));
	if (s->mounts == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(binds); i++) {
		char *b;
		snprintf(name, sizeof(name), "HostConfig.Binds[%zu]", i);
		rv = take_string(json_array_get(binds, i), name, &b, err);
		if (rv == 0)
			rv = parse_bind(s, name, b, err);
		free(b);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < json_array_size(mounts); i++) {
		snprintf(name, sizeof(name), "HostConfig.Mounts[%zu]", i);
		rv = parse_mount_obj(s, name, json_array_get(mounts, i), err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* An rlimit value: a non-negative integer, or -1 for unlimited. */
static int get_rlimit_value(const json_t *u, const char *key, const char *name, uint64_t *out,
			    struct shoal_err *err)
{
	int64_t v;
	int rv = get_int(u, key, name, -1, INT64_MAX, 0, &v, err);

	if (rv == 0 && field(u, key) == NULL)
		rv = shoal_errf(err, SHOAL_EINVAL, "invalid %s: is required", name);
	*out = v < 0 ? UINT64_MAX : (uint64_t)v;
	return rv;
}

static int parse_ulimits(const json_t *hc, struct ctr_spec *s, struct shoal_err *err)
{
	const json_t *arr;
	char name[NAME_LEN], fname[NAME_LEN + 16];
	int rv = get_array(hc, "Ulimits", "HostConfig.Ulimits", &arr, err);

	if (rv != 0 || json_array_size(arr) == 0)
		return rv;
	s->rlimits = calloc(json_array_size(arr), sizeof(*s->rlimits));
	if (s->rlimits == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *u = json_array_get(arr, i);
		struct ctr_rlimit *r = &s->rlimits[s->n_rlimits];
		const char *oci = NULL;
		char *lname = NULL;

		snprintf(name, sizeof(name), "HostConfig.Ulimits[%zu]", i);
		if (!json_is_object(u))
			return shoal_errf(err, SHOAL_EINVAL, "invalid %s: must be an object", name);
		snprintf(fname, sizeof(fname), "%s.Name", name);
		rv = get_string(u, "Name", fname, &lname, err);
		if (rv != 0)
			return rv;
		for (size_t j = 0; lname != NULL && j < ARRAY_SIZE(rlimit_names); j++)
			if (strcmp(lname, rlimit_names[j].docker) == 0)
				oci = rlimit_names[j].oci;
		if (oci == NULL) {
			rv = shoal_errf(err, SHOAL_EINVAL, "invalid %s: unknown ulimit '%.32s'",
					fname, lname != NULL ? lname : "");
			free(lname);
			return rv;
		}
		free(lname);
		for (size_t j = 0; j < s->n_rlimits; j++)
			if (strcmp(s->rlimits[j].type, oci) == 0)
				return shoal_errf(err, SHOAL_EINVAL,
						  "invalid %s: ulimit %s given twice", name, oci);
		snprintf(fname, sizeof(fname), "%s.Soft", name);
		rv = get_rlimit_value(u, "Soft", fname, &r->soft, err);
		snprintf(fname, sizeof(fname), "%s.Hard", name);
		if (rv == 0)
			rv = get_rlimit_value(u, "Hard", fname, &r->hard, err);
		if (rv == 0 && r->soft > r->hard)
			rv = shoal_errf(err, SHOAL_EINVAL,
					"invalid %s: soft limit %" PRIu64
					" is greater than hard limit %" PRIu64,
					name, r->soft, r->hard);
		if (rv != 0)
			return rv;
		r->type = strdup(oci);
		if (r->type == NULL)
			return nomem(err);
		s->n_rlimits++;
	}
	return 0;
}

/* Upper-case, "CAP_" prefixed (unless "ALL"), known to Linux. */
static int parse_caps(const json_t *hc, const char *key, struct oci_strlist *out,
		      struct shoal_err *err)
{
	char name[NAME_LEN];
	int rv;

	snprintf(name, sizeof(name), "HostConfig.%s", key);
	rv = get_strslice(hc, key, name, out, NULL, err);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < out->n; i++) {
		char *c = out->items[i], *norm;
		size_t n = strlen(c);
		bool known = false;

		if (n > 64)
			return shoal_errf(err, SHOAL_EINVAL, "invalid %s[%zu]: unknown capability",
					  name, i);
		norm = malloc(n + 5);
		if (norm == NULL)
			return nomem(err);
		for (size_t j = 0; j <= n; j++)
			c[j] = (char)toupper((unsigned char)c[j]);
		if (strcmp(c, "ALL") == 0 || strncmp(c, "CAP_", 4) == 0)
			memcpy(norm, c, n + 1);
		else
			snprintf(norm, n + 5, "CAP_%s", c);
		known = strcmp(norm, "ALL") == 0;
		for (size_t j = 0; !known && cap_names[j] != NULL; j++)
			known = strcmp(norm, cap_names[j]) == 0;
		if (!known) {
			rv = shoal_errf(err, SHOAL_EINVAL,
					"invalid %s[%zu]: unknown capability '%.64s'", name, i,
					norm);
			free(norm);
			return rv;
		}
		free(c);
		out->items[i] = norm;
	}
	return 0;
}

/* Docker's units: a positive integer with an optional k, m or g (binary, with
 * an optional trailing b). */
static bool parse_size(const char *s, int64_t *out)
{
	int64_t v = 0, mult = 1;
	const char *c = s;

	if (*c < '0' || *c > '9')
		return false;
	for (; *c >= '0' && *c <= '9'; c++) {
		if (v > LOG_MAX_SIZE)
			return false;
		v = v * 10 + (*c - '0');
	}
	switch (tolower((unsigned char)*c)) {
	case '\0':
		break;
	case 'b':
		c++;
		break;
	case 'k':
		mult = 1ll << 10;
		c++;
		break;
	case 'm':
		mult = 1ll << 20;
		c++;
		break;
	case 'g':
		mult = 1ll << 30;
		c++;
		break;
	default:
		return false;
	}
	if (mult > 1 && tolower((unsigned char)*c) == 'b')
		c++;
	if (*c != '\0' || v == 0 || v > LOG_MAX_SIZE / mult)
		return false;
	*out = v * mult;
	return true;
}

static int parse_log(const json_t *hc, struct ctr_spec *s, struct shoal_err *err)
{
	json_t *lc, *cfg, *v;
	const char *key;
	char *type = NULL;
	int rv = get_object(hc, "LogConfig", "HostConfig.LogConfig", &lc, err);

	if (rv != 0 || lc == NULL)
		return rv;
	rv = get_string(lc, "Type", "HostConfig.LogConfig.Type", &type, err);
	if (rv == 0 && type != NULL && strcmp(type, "json-file") != 0)
		rv = shoal_errf(err, SHOAL_EINVAL,
				"shoal does not support HostConfig.LogConfig.Type '%.32s': only "
				"json-file",
				type);
	free(type);
	if (rv == 0)
		rv = get_object(lc, "Config", "HostConfig.LogConfig.Config", &cfg, err);
	if (rv != 0 || cfg == NULL)
		return rv;
	json_object_foreach(cfg, key, v)
	{
		const char *val = json_is_string(v) ? json_string_value(v) : NULL;
		int num;

		if (val == NULL)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid HostConfig.LogConfig.Config.%.32s: must be a "
					  "string",
					  key);
		if (strcmp(key, "max-size") == 0) {
			if (!parse_size(val, &s->log_max_size))
				return shoal_errf(
				    err, SHOAL_EINVAL,
				    "invalid HostConfig.LogConfig.Config.max-size: "
				    "'%.32s' must be a positive size like 10m, 1k or 100",
				    val);
		} else if (strcmp(key, "max-file") == 0) {
			if (!parse_small_uint(val, 4, &num) || num < 1 || num > LOG_MAX_FILE)
				return shoal_errf(err, SHOAL_EINVAL,
						  "invalid HostConfig.LogConfig.Config.max-file: "
						  "'%.32s' must be a number from 1 to %d",
						  val, LOG_MAX_FILE);
			s->log_max_file = num;
		} else {
			return shoal_errf(err, SHOAL_EINVAL,
					  "shoal does not support log option '%.32s' (json-file "
					  "takes max-size and max-file)",
					  key);
		}
	}
	return 0;
}

static int parse_host_config(const json_t *hc, struct ctr_spec *s, struct shoal_err *err)
{
	static const char *const netmodes[] = {"", "default", "bridge", "none", NULL};
	int64_t swap;
	const json_t *nm;
	int rv;

	rv = parse_mounts(hc, s, err);
	if (rv == 0)
		rv = get_bool(hc, "ReadonlyRootfs", "HostConfig.ReadonlyRootfs",
			      &s->readonly_rootfs, err);
	if (rv == 0)
		rv = get_int(hc, "Memory", "HostConfig.Memory", 0, INT64_MAX, 0, &s->memory, err);
	if (rv == 0 && s->memory != 0 && s->memory < MEMORY_MIN)
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid HostConfig.Memory: Minimum memory limit allowed is 6MB");
	if (rv == 0)
		rv = get_int(hc, "MemorySwap", "HostConfig.MemorySwap", -1, INT64_MAX, 0, &swap,
			     err);
	if (rv == 0 && swap != 0 && swap != s->memory)
		rv = shoal_errf(err, SHOAL_EINVAL,
				"shoal does not support HostConfig.MemorySwap other than 0 or "
				"equal to Memory (no swap)");
	if (rv == 0)
		rv = get_int(hc, "NanoCpus", "HostConfig.NanoCpus", 0, INT64_MAX, 0, &s->nano_cpus,
			     err);
	if (rv == 0 && s->nano_cpus != 0 &&
	    (s->nano_cpus < NANO_CPUS_MIN || s->nano_cpus > NANO_CPUS_MAX))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid HostConfig.NanoCpus: range of CPUs is from 0.01 to 1024");
	if (rv == 0)
		rv = get_int(hc, "CpuShares", "HostConfig.CpuShares", 0, INT64_MAX, 0,
			     &s->cpu_shares, err);
	if (rv == 0 && s->cpu_shares != 0 && (s->cpu_shares < 2 || s->cpu_shares > 262144))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid HostConfig.CpuShares: must be 0 (the default) or from 2 "
				"to 262144");
	if (rv == 0)
		rv = get_int(hc, "PidsLimit", "HostConfig.PidsLimit", -1, INT64_MAX, 0,
			     &s->pids_limit, err);
	if (rv == 0)
		rv = parse_ulimits(hc, s, err);
	if (rv == 0)
		rv = parse_caps(hc, "CapAdd", &s->cap_add, err);
	if (rv == 0)
		rv = parse_caps(hc, "CapDrop", &s->cap_drop, err);
	if (rv == 0)
		rv = check_mode(hc, "NetworkMode", netmodes, err);
	if (rv != 0)
		return rv;
	nm = field(hc, "NetworkMode");
	if (nm != NULL && strcmp(json_string_value(nm), "none") == 0)
		s->network_none = true;
	return parse_log(hc, s, err);
}

static int parse_body(const json_t *body, struct ctr_spec *s, struct shoal_err *err)
{
	json_t *hc;
	bool disabled = false;
	int rv;

	rv = get_object(body, "HostConfig", "HostConfig", &hc, err);
	if (rv == 0)
		rv = check_unsupported(body, hc, err);
	if (rv == 0)
		rv = get_string(body, "Image", "Image", &s->image, err);
	if (rv == 0 && s->image == NULL)
		rv = shoal_errf(err, SHOAL_EINVAL, "invalid Image: an image is required");
	if (rv == 0)
		rv = parse_entry_cmd(body, s, err);
	if (rv == 0)
		rv = parse_env(body, s, err);
	if (rv == 0)
		rv = get_string(body, "WorkingDir", "WorkingDir", &s->workdir, err);
	if (rv == 0 && s->workdir != NULL && s->workdir[0] != '/')
		rv =
		    shoal_errf(err, SHOAL_EINVAL,
			       "invalid WorkingDir: '%.200s' must be an absolute path", s->workdir);
	if (rv == 0)
		rv = get_string(body, "User", "User", &s->user, err);
	if (rv == 0 && s->user != NULL && !user_ok(s->user))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid User: '%.64s' must be name, uid, name:group or uid:gid",
				s->user);
	if (rv == 0)
		rv = get_string(body, "Hostname", "Hostname", &s->hostname, err);
	if (rv == 0 && s->hostname != NULL && !hostname_ok(s->hostname))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid Hostname: '%.64s' must be at most 64 letters, digits, "
				"'-' and '.'",
				s->hostname);
	if (rv == 0)
		rv = parse_labels(body, s, err);
	if (rv == 0)
		rv = get_string(body, "StopSignal", "StopSignal", &s->stop_signal, err);
	if (rv == 0 && s->stop_signal != NULL && ctr_signal_parse(s->stop_signal) < 0)
		rv = shoal_errf(err, SHOAL_EINVAL, "invalid StopSignal: unknown signal '%.32s'",
				s->stop_signal);
	if (rv == 0)
		rv = get_int(body, "StopTimeout", "StopTimeout", 0, INT32_MAX, -1, &s->stop_timeout,
			     err);
	if (rv == 0)
		rv = parse_healthcheck(body, &s->health, err);
	if (rv == 0)
		rv = get_bool(body, "NetworkDisabled", "NetworkDisabled", &disabled, err);
	if (rv == 0 && hc != NULL)
		rv = parse_host_config(hc, s, err);
	if (disabled)
		s->network_none = true;
	return rv;
}

int ctr_spec_parse(const json_t *body, struct ctr_spec *out, struct shoal_err *err)
{
	size_t size;
	int rv;

	memset(out, 0, sizeof(*out));
	out->stop_timeout = -1;
	if (!json_is_object(body))
		return shoal_errf(err, SHOAL_EINVAL, "invalid body: must be a JSON object");
	size = json_dumpb(body, NULL, 0, JSON_COMPACT);
	if (size > CTR_SPEC_MAX_BODY)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "invalid body: %zu bytes, more than the limit of %u", size,
				  CTR_SPEC_MAX_BODY);
	rv = parse_body(body, out, err);
	if (rv != 0) {
		ctr_spec_free(out);
		out->stop_timeout = -1;
	}
	return rv;
}

/* ---- back to JSON ---- */

/* json_object_set_new that remembers a failure in *@ok. */
static void put(json_t *obj, const char *key, json_t *v, bool *ok)
{
	if (obj == NULL || v == NULL || json_object_set_new(obj, key, v) != 0) {
		json_decref(v);
		*ok = false;
	}
}

static json_t *opt_string(const char *s)
{
	return json_string(s != NULL ? s : "");
}

static json_t *rlimit_value(uint64_t v)
{
	return json_integer(v == UINT64_MAX ? -1 : (json_int_t)v);
}

static json_t *host_config_json(const struct ctr_spec *s, bool *ok)
{
	json_t *hc = json_object(), *mounts = json_array(), *ul = json_array();
	json_t *log = json_object(), *logcfg = json_object();
	char num[32];

	for (size_t i = 0; i < s->n_mounts; i++) {
		json_t *m = json_object();
		put(m, "Type", json_string("bind"), ok);
		put(m, "Source", json_string(s->mounts[i].source), ok);
		put(m, "Target", json_string(s->mounts[i].target), ok);
		put(m, "ReadOnly", json_boolean(s->mounts[i].readonly), ok);
		if (m == NULL || mounts == NULL || json_array_append_new(mounts, m) != 0)
			*ok = false;
	}
	put(hc, "Mounts", mounts, ok);
	put(hc, "ReadonlyRootfs", json_boolean(s->readonly_rootfs), ok);
	put(hc, "Memory", json_integer(s->memory), ok);
	put(hc, "NanoCpus", json_integer(s->nano_cpus), ok);
	put(hc, "CpuShares", json_integer(s->cpu_shares), ok);
	put(hc, "PidsLimit", json_integer(s->pids_limit), ok);
	for (size_t i = 0; i < s->n_rlimits; i++) {
		json_t *u = json_object();
		const char *name = NULL;
		for (size_t j = 0; j < ARRAY_SIZE(rlimit_names); j++)
			if (strcmp(s->rlimits[i].type, rlimit_names[j].oci) == 0)
				name = rlimit_names[j].docker;
		put(u, "Name", name != NULL ? json_string(name) : NULL, ok);
		put(u, "Soft", rlimit_value(s->rlimits[i].soft), ok);
		put(u, "Hard", rlimit_value(s->rlimits[i].hard), ok);
		if (u == NULL || ul == NULL || json_array_append_new(ul, u) != 0)
			*ok = false;
	}
	put(hc, "Ulimits", ul, ok);
	put(hc, "CapAdd", oci_strlist_to_json(&s->cap_add), ok);
	put(hc, "CapDrop", oci_strlist_to_json(&s->cap_drop), ok);
	put(hc, "NetworkMode", json_string(s->network_none ? "none" : "default"), ok);
	put(log, "Type", json_string("json-file"), ok);
	if (s->log_max_size > 0) {
		snprintf(num, sizeof(num), "%" PRId64, s->log_max_size);
		put(logcfg, "max-size", json_string(num), ok);
	}
	if (s->log_max_file > 0) {
		snprintf(num, sizeof(num), "%d", s->log_max_file);
		put(logcfg, "max-file", json_string(num), ok);
	}
	put(log, "Config", logcfg, ok);
	put(hc, "LogConfig", log, ok);
	return hc;
}

json_t *ctr_spec_to_json(const struct ctr_spec *s)
{
	json_t *o = json_object(), *labels = json_object();
	const struct oci_healthcheck *h = &s->health;
	bool ok = true;

	put(o, "Image", json_string(s->image), &ok);
	put(o, "Entrypoint", s->entrypoint_set ? oci_strlist_to_json(&s->entrypoint) : json_null(),
	    &ok);
	put(o, "Cmd", s->cmd.n > 0 ? oci_strlist_to_json(&s->cmd) : json_null(), &ok);
	put(o, "Env", oci_strlist_to_json(&s->env), &ok);
	put(o, "WorkingDir", opt_string(s->workdir), &ok);
	put(o, "User", opt_string(s->user), &ok);
	put(o, "Hostname", opt_string(s->hostname), &ok);
	for (size_t i = 0; i < s->n_labels; i++)
		put(labels, s->labels[i].key, json_string(s->labels[i].value), &ok);
	put(o, "Labels", labels, &ok);
	put(o, "StopSignal", opt_string(s->stop_signal), &ok);
	put(o, "StopTimeout", s->stop_timeout >= 0 ? json_integer(s->stop_timeout) : json_null(),
	    &ok);
	if (h->test.n > 0 || h->interval_ns != 0 || h->timeout_ns != 0 || h->start_period_ns != 0 ||
	    h->start_interval_ns != 0 || h->retries != 0) {
		json_t *hc = json_object();
		put(hc, "Test", oci_strlist_to_json(&h->test), &ok);
		put(hc, "Interval", json_integer(h->interval_ns), &ok);
		put(hc, "Timeout", json_integer(h->timeout_ns), &ok);
		put(hc, "StartPeriod", json_integer(h->start_period_ns), &ok);
		put(hc, "StartInterval", json_integer(h->start_interval_ns), &ok);
		put(hc, "Retries", json_integer(h->retries), &ok);
		put(o, "Healthcheck", hc, &ok);
	}
	put(o, "HostConfig", host_config_json(s, &ok), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- copy and free ---- */

static int dup_str(const char *src, char **dst)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = strdup(src);
	return *dst == NULL ? -1 : 0;
}

static int copy_fields(const struct ctr_spec *src, struct ctr_spec *d)
{
	if (dup_str(src->name, &d->name) || dup_str(src->image, &d->image) ||
	    oci_strlist_copy(&src->entrypoint, &d->entrypoint) ||
	    oci_strlist_copy(&src->cmd, &d->cmd) || oci_strlist_copy(&src->env, &d->env) ||
	    dup_str(src->workdir, &d->workdir) || dup_str(src->user, &d->user) ||
	    dup_str(src->hostname, &d->hostname) || dup_str(src->stop_signal, &d->stop_signal) ||
	    oci_strlist_copy(&src->health.test, &d->health.test) ||
	    oci_strlist_copy(&src->cap_add, &d->cap_add) ||
	    oci_strlist_copy(&src->cap_drop, &d->cap_drop))
		return -1;
	if (src->n_labels > 0) {
		d->labels = calloc(src->n_labels, sizeof(*d->labels));
		if (d->labels == NULL)
			return -1;
		for (size_t i = 0; i < src->n_labels; i++, d->n_labels++)
			if (dup_str(src->labels[i].key, &d->labels[i].key) ||
			    dup_str(src->labels[i].value, &d->labels[i].value))
				return -1;
	}
	if (src->n_mounts > 0) {
		d->mounts = calloc(src->n_mounts, sizeof(*d->mounts));
		if (d->mounts == NULL)
			return -1;
		for (size_t i = 0; i < src->n_mounts; i++, d->n_mounts++) {
			d->mounts[i].readonly = src->mounts[i].readonly;
			if (dup_str(src->mounts[i].source, &d->mounts[i].source) ||
			    dup_str(src->mounts[i].target, &d->mounts[i].target))
				return -1;
		}
	}
	if (src->n_rlimits > 0) {
		d->rlimits = calloc(src->n_rlimits, sizeof(*d->rlimits));
		if (d->rlimits == NULL)
			return -1;
		for (size_t i = 0; i < src->n_rlimits; i++, d->n_rlimits++) {
			d->rlimits[i].soft = src->rlimits[i].soft;
			d->rlimits[i].hard = src->rlimits[i].hard;
			if (dup_str(src->rlimits[i].type, &d->rlimits[i].type))
				return -1;
		}
	}
	return 0;
}

int ctr_spec_copy(const struct ctr_spec *src, struct ctr_spec *dst, struct shoal_err *err)
{
	/* Scalars first; every pointer is replaced by copy_fields(). */
	*dst = *src;
	dst->name = dst->image = dst->workdir = dst->user = dst->hostname = NULL;
	dst->stop_signal = NULL;
	dst->entrypoint = dst->cmd = dst->env = dst->cap_add = dst->cap_drop =
	    (struct oci_strlist){0};
	dst->health.test = (struct oci_strlist){0};
	dst->labels = NULL;
	dst->n_labels = 0;
	dst->mounts = NULL;
	dst->n_mounts = 0;
	dst->rlimits = NULL;
	dst->n_rlimits = 0;
	if (copy_fields(src, dst) != 0) {
		ctr_spec_free(dst);
		return nomem(err);
	}
	return 0;
}

void ctr_spec_free(struct ctr_spec *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->image);
	oci_strlist_free(&s->entrypoint);
	oci_strlist_free(&s->cmd);
	oci_strlist_free(&s->env);
	free(s->workdir);
	free(s->user);
	free(s->hostname);
	for (size_t i = 0; i < s->n_labels; i++) {
		free(s->labels[i].key);
		free(s->labels[i].value);
	}
	free(s->labels);
	free(s->stop_signal);
	oci_strlist_free(&s->health.test);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].source);
		free(s->mounts[i].target);
	}
	free(s->mounts);
	for (size_t i = 0; i < s->n_rlimits; i++)
		free(s->rlimits[i].type);
	free(s->rlimits);
	oci_strlist_free(&s->cap_add);
	oci_strlist_free(&s->cap_drop);
	memset(s, 0, sizeof(*s));
}
