/* The text of "shoal version" and "shoal info", following Docker's templates. */
#include "cli/system_format.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cli/client.h"
#include "cli/humanize.h"
#include "cli/jsonfmt.h"
#include "cli/table.h"
#include "lib/err.h"

const char *system_client_os(void)
{
	return "linux";
}

const char *system_client_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__arm__)
	return "arm";
#elif defined(__i386__)
	return "386";
#elif defined(__s390x__)
	return "s390x";
#else
	static struct utsname u;

	if (u.machine[0] == '\0' && uname(&u) != 0)
		return "unknown";
	return u.machine;
#endif
}

/* The string @v, or "" if it is not a string. */
static const char *sv(json_t *v)
{
	const char *s = json_string_value(v);

	return s != NULL ? s : "";
}

/* A JSON scalar the way Go's fmt prints the field it decodes into. */
static int scalar(struct buf *b, json_t *v)
{
	if (json_is_string(v))
		return buf_append(b, json_string_value(v), json_string_length(v));
	if (json_is_integer(v))
		return buf_appendf(b, "%lld", (long long)json_integer_value(v));
	if (json_is_real(v))
		return buf_appendf(b, "%g", json_real_value(v));
	if (json_is_boolean(v))
		return buf_appendf(b, "%s", json_is_true(v) ? "true" : "false");
	return 0;
}

/* "@label @value\n" (Go's Println), or nothing when @obj has no @key, or
 * when @nonempty and the value is "". */
static int line(struct buf *b, const char *label, json_t *obj, const char *key, bool nonempty)
{
	json_t *v = json_object_get(obj, key);
	int rv;

	if (v == NULL || (nonempty && json_is_string(v) && json_string_length(v) == 0))
		return 0;
	rv = buf_appendf(b, "%s ", label);
	if (rv == 0)
		rv = scalar(b, v);
	if (rv == 0)
		rv = buf_append(b, "\n", 1);
	return rv;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of @obj, sorted (Go's templates range over maps in key order).
 * Returns a heap array of @*n borrowed keys, or NULL (with *@n 0 if empty). */
static const char **sorted_keys(json_t *obj, size_t *n)
{
	const char **keys, *key;
	json_t *v;
	size_t i = 0;

	*n = json_object_size(obj);
	if (*n == 0)
		return NULL;
	keys = calloc(*n, sizeof(*keys));
	if (keys == NULL)
		return NULL;
	json_object_foreach(obj, key, v)
	{
		(void)v;
		keys[i++] = key;
	}
	qsort(keys, *n, sizeof(*keys), by_str);
	return keys;
}

/* A Details value of "shoal version", with BuildTime in Go's ANSIC layout. */
static int detail(struct buf *b, json_t *details, const char *key)
{
	const char *v = jsonfmt_str(details, key);
	struct human_time t;

	if (strcmp(key, "BuildTime") == 0 && human_time_parse(v, &t) == 0)
		return human_time_ansic(b, &t);
	return buf_appendf(b, "%s", v);
}

static int engine_component(struct buf *b, json_t *c)
{
	json_t *d = json_object_get(c, "Details");
	static const struct {
		const char *label, *key;
	} optional[] = {
	    {"Go version", "GoVersion"},
	    {"Git commit", "GitCommit"},
	    {"Built", "BuildTime"},
	};
	size_t i;
	int rv;

	rv = buf_appendf(b, "  Version:\t%s\n  API version:\t%s (minimum version %s)\n",
			 jsonfmt_str(c, "Version"), jsonfmt_str(d, "ApiVersion"),
			 jsonfmt_str(d, "MinAPIVersion"));
	for (i = 0; i < ARRAY_SIZE(optional) && rv == 0; i++) {
		if (json_object_get(d, optional[i].key) == NULL)
			continue;
		rv = buf_appendf(b, "  %s:\t", optional[i].label);
		if (rv == 0)
			rv = detail(b, d, optional[i].key);
		if (rv == 0)
			rv = buf_append(b, "\n", 1);
	}
	if (rv == 0 && json_object_get(d, "Os") != NULL)
		rv = buf_appendf(b, "  OS/Arch:\t%s/%s\n", jsonfmt_str(d, "Os"),
				 jsonfmt_str(d, "Arch"));
	if (rv == 0 && json_object_get(d, "Experimental") != NULL)
		rv = buf_appendf(b, "  Experimental:\t%s\n", jsonfmt_str(d, "Experimental"));
	return rv;
}

static int other_component(struct buf *b, json_t *c)
{
	json_t *d = json_object_get(c, "Details");
	size_t n = 0, i;
	const char **keys = sorted_keys(d, &n);
	int rv;

	if (keys == NULL && n > 0)
		return SHOAL_ENOMEM;
	rv = buf_appendf(b, "  Version:\t%s\n", jsonfmt_str(c, "Version"));
	for (i = 0; i < n && rv == 0; i++) {
		rv = buf_appendf(b, "  %s:\t", keys[i]);
		if (rv == 0)
			rv = detail(b, d, keys[i]);
		if (rv == 0)
			rv = buf_append(b, "\n", 1);
	}
	free(keys);
	return rv;
}

/* A daemon that lists no Components: its top-level fields make the Engine. */
static json_t *engine_from_top_level(json_t *server)
{
	static const char *const keys[] = {"ApiVersion", "MinAPIVersion", "GitCommit", "GoVersion",
					   "Os",	 "Arch",	  "BuildTime"};
	json_t *c = json_object(), *d = json_object(), *v;
	size_t i;
	int rv;

	if (c == NULL || d == NULL)
		goto oom;
	rv = json_object_set_new(c, "Name", json_string("Engine"));
	rv |= json_object_set_new(c, "Version", json_string(jsonfmt_str(server, "Version")));
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		v = json_object_get(server, keys[i]);
		if (json_is_string(v))
			rv |= json_object_set(d, keys[i], v);
	}
	v = json_object_get(server, "Experimental");
	if (json_is_boolean(v))
		rv |= json_object_set_new(d, "Experimental",
					  json_string(json_is_true(v) ? "true" : "false"));
	rv |= json_object_set(c, "Details", d);
	json_decref(d);
	if (rv != 0) {
		json_decref(c);
		return NULL;
	}
	return c;
oom:
	json_decref(c);
	json_decref(d);
	return NULL;
}

static int server_version(struct buf *b, json_t *server)
{
	json_t *comps = json_object_get(server, "Components");
	const char *platform = jsonfmt_str(server, "Platform.Name");
	json_t *c, *engine = NULL;
	size_t i;
	int rv;

	rv = buf_appendf(b, "\nServer:%s%s\n", platform[0] != '\0' ? " " : "", platform);
	if (rv != 0)
		return rv;
	if (json_array_size(comps) == 0) {
		engine = engine_from_top_level(server);
		if (engine == NULL)
			return SHOAL_ENOMEM;
		rv = buf_appendf(b, " Engine:\n");
		if (rv == 0)
			rv = engine_component(b, engine);
		json_decref(engine);
		return rv;
	}
	json_array_foreach(comps, i, c)
	{
		const char *name = jsonfmt_str(c, "Name");

		rv = buf_appendf(b, " %s:\n", name);
		if (rv == 0)
			rv = strcmp(name, "Engine") == 0 ? engine_component(b, c)
							 : other_component(b, c);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int system_format_version(json_t *server, struct buf *out)
{
	struct table t;
	int rv;

	table_init(&t, TABLE_VERSION_MINWIDTH, TABLE_VERSION_PADDING);
	rv = buf_appendf(&t.text, "Client:\n Version:\t%s\n API version:\t%s\n OS/Arch:\t%s/%s\n",
			 PACKAGE_VERSION, CLIENT_API_VERSION, system_client_os(),
			 system_client_arch());
	if (rv == 0 && server != NULL)
		rv = server_version(&t.text, server);
	if (rv == 0)
		rv = table_flush(&t, out);
	table_free(&t);
	return rv;
}

json_t *system_version_json(json_t *server)
{
	json_t *client =
	    json_pack("{s:s, s:s, s:s, s:s, s:s}", "Version", PACKAGE_VERSION, "ApiVersion",
		      CLIENT_API_VERSION, "DefaultAPIVersion", CLIENT_API_VERSION, "Os",
		      system_client_os(), "Arch", system_client_arch());

	if (client == NULL)
		return NULL;
	return json_pack("{s:o, s:O}", "Client", client, "Server",
			 server != NULL ? server : json_null());
}

int system_format_info_client(bool debug, struct buf *out)
{
	return buf_appendf(out, "Client:\n Version:    %s\n Debug Mode: %s\n", PACKAGE_VERSION,
			   debug ? "true" : "false");
}

/* Strings of an array joined by @sep. */
static int join(struct buf *b, json_t *arr, const char *sep)
{
	json_t *v;
	size_t i;
	int rv = 0;

	json_array_foreach(arr, i, v)
	{
		if (rv == 0 && i > 0)
			rv = buf_appendf(b, "%s", sep);
		if (rv == 0)
			rv = scalar(b, v);
	}
	return rv;
}

static int info_plugins(struct buf *b, json_t *plugins)
{
	json_t *authz = json_object_get(plugins, "Authorization");
	int rv;

	rv = buf_appendf(b, " Plugins:\n  Volume: ");
	if (rv == 0)
		rv = join(b, json_object_get(plugins, "Volume"), " ");
	if (rv == 0)
		rv = buf_appendf(b, "\n  Network: ");
	if (rv == 0)
		rv = join(b, json_object_get(plugins, "Network"), " ");
	if (rv == 0 && json_array_size(authz) > 0) {
		rv = buf_appendf(b, "\n  Authorization: ");
		if (rv == 0)
			rv = join(b, authz, " ");
	}
	if (rv == 0)
		rv = buf_appendf(b, "\n  Log: ");
	if (rv == 0)
		rv = join(b, json_object_get(plugins, "Log"), " ");
	if (rv == 0)
		rv = buf_append(b, "\n", 1);
	return rv;
}

/* Docker's printSwarmInfo(). */
static int info_swarm(struct buf *b, json_t *sw)
{
	const char *state = jsonfmt_str(sw, "LocalNodeState");
	const char *swerr = jsonfmt_str(sw, "Error");
	json_t *cl = json_object_get(sw, "Cluster");
	json_t *spec = json_object_get(cl, "Spec");
	json_t *pool, *cas, *v, *mgrs;
	char dur[64];
	size_t i, n;
	int rv;

	rv = buf_appendf(b, " Swarm: %s\n", state);
	if (rv != 0 || strcmp(state, "inactive") == 0 || strcmp(state, "locked") == 0)
		return rv;
	rv = buf_appendf(b, "  NodeID: %s\n", jsonfmt_str(sw, "NodeID"));
	if (rv == 0 && swerr[0] != '\0')
		rv = buf_appendf(b, "  Error: %s\n", swerr);
	if (rv == 0)
		rv = buf_appendf(b, "  Is Manager: %s\n",
				 jsonfmt_bool(sw, "ControlAvailable") ? "true" : "false");
	if (rv == 0 && json_is_object(cl) && jsonfmt_bool(sw, "ControlAvailable") &&
	    swerr[0] == '\0' && strcmp(state, "error") != 0) {
		rv = buf_appendf(b, "  ClusterID: %s\n  Managers: %lld\n  Nodes: %lld\n",
				 jsonfmt_str(cl, "ID"), jsonfmt_int(sw, "Managers", 0),
				 jsonfmt_int(sw, "Nodes", 0));
		pool = json_object_get(cl, "DefaultAddrPool");
		if (rv == 0 && json_is_array(pool)) {
			rv = buf_appendf(b, "  Default Address Pool: ");
			json_array_foreach(pool, i, v)
			{
				if (rv == 0)
					rv = buf_appendf(b, "%s  ", sv(v));
			}
			if (rv == 0)
				rv = buf_appendf(b, "\n  SubnetSize: %lld\n",
						 jsonfmt_int(cl, "SubnetSize", 0));
		}
		if (rv == 0 && jsonfmt_int(cl, "DataPathPort", 0) > 0)
			rv = buf_appendf(b, "  Data Path Port: %lld\n",
					 jsonfmt_int(cl, "DataPathPort", 0));
		if (rv == 0)
			rv = buf_appendf(
			    b,
			    "  Orchestration:\n   Task History Retention Limit: %lld\n"
			    "  Raft:\n   Snapshot Interval: %lld\n",
			    jsonfmt_int(spec, "Orchestration.TaskHistoryRetentionLimit", 0),
			    jsonfmt_int(spec, "Raft.SnapshotInterval", 0));
		if (rv == 0 && jsonfmt_get(spec, "Raft.KeepOldSnapshots") != NULL)
			rv = buf_appendf(b, "   Number of Old Snapshots to Retain: %lld\n",
					 jsonfmt_int(spec, "Raft.KeepOldSnapshots", 0));
		clock_human_duration(jsonfmt_int(spec, "Dispatcher.HeartbeatPeriod", 0), dur,
				     sizeof(dur));
		if (rv == 0)
			rv = buf_appendf(b,
					 "   Heartbeat Tick: %lld\n   Election Tick: %lld\n"
					 "  Dispatcher:\n   Heartbeat Period: %s\n",
					 jsonfmt_int(spec, "Raft.HeartbeatTick", 0),
					 jsonfmt_int(spec, "Raft.ElectionTick", 0), dur);
		clock_human_duration(jsonfmt_int(spec, "CAConfig.NodeCertExpiry", 0), dur,
				     sizeof(dur));
		if (rv == 0)
			rv = buf_appendf(b,
					 "  CA Configuration:\n   Expiry Duration: %s\n"
					 "   Force Rotate: %lld\n",
					 dur, jsonfmt_int(spec, "CAConfig.ForceRotate", 0));
		if (rv == 0) {
			const char *ca = jsonfmt_str(spec, "CAConfig.SigningCACert");
			size_t s = 0, e = strlen(ca);

			while (s < e && strchr(" \t\r\n", ca[s]) != NULL)
				s++;
			while (e > s && strchr(" \t\r\n", ca[e - 1]) != NULL)
				e--;
			if (e > s)
				rv = buf_appendf(b, "   Signing CA Certificate: \n%.*s\n\n",
						 (int)(e - s), ca + s);
		}
		cas = jsonfmt_get(spec, "CAConfig.ExternalCAs");
		if (rv == 0 && json_array_size(cas) > 0) {
			rv = buf_appendf(b, "   External CAs:\n");
			json_array_foreach(cas, i, v)
			{
				if (rv == 0)
					rv = buf_appendf(b, "     %s: %s\n",
							 jsonfmt_str(v, "Protocol"),
							 jsonfmt_str(v, "URL"));
			}
		}
		if (rv == 0)
			rv = buf_appendf(
			    b, "  Autolock Managers: %s\n  Root Rotation In Progress: %s\n",
			    jsonfmt_bool(spec, "EncryptionConfig.AutoLockManagers") ? "true"
										    : "false",
			    jsonfmt_bool(cl, "RootRotationInProgress") ? "true" : "false");
	}
	if (rv == 0)
		rv = buf_appendf(b, "  Node Address: %s\n", jsonfmt_str(sw, "NodeAddr"));
	mgrs = json_object_get(sw, "RemoteManagers");
	n = json_array_size(mgrs);
	if (rv == 0 && n > 0) {
		const char **addrs = calloc(n, sizeof(*addrs));

		if (addrs == NULL)
			return SHOAL_ENOMEM;
		json_array_foreach(mgrs, i, v) addrs[i] = jsonfmt_str(v, "Addr");
		qsort(addrs, n, sizeof(*addrs), by_str);
		rv = buf_appendf(b, "  Manager Addresses:\n");
		for (i = 0; i < n && rv == 0; i++)
			rv = buf_appendf(b, "   %s\n", addrs[i]);
		free(addrs);
	}
	return rv;
}

/* "name=seccomp,profile=builtin" -> "  seccomp\n   Profile: builtin\n". */
static int security_options(struct buf *b, json_t *opts)
{
	json_t *v;
	size_t i;
	int rv = buf_appendf(b, " Security Options:\n");

	json_array_foreach(opts, i, v)
	{
		const char *s = sv(v);

		while (rv == 0 && *s != '\0') {
			size_t n = strcspn(s, ",");

			if (strncmp(s, "name=", 5) == 0)
				rv = buf_appendf(b, "  %.*s\n", (int)(n - 5), s + 5);
			else if (strncmp(s, "profile=", 8) == 0)
				rv = buf_appendf(b, "   Profile: %.*s\n", (int)(n - 8), s + 8);
			s += n + (s[n] == ',' ? 1 : 0);
		}
	}
	return rv;
}

static int info_runtimes(struct buf *b, json_t *info)
{
	json_t *rt = json_object_get(info, "Runtimes");
	size_t n = 0, i;
	const char **names = sorted_keys(rt, &n);
	int rv;

	if (n == 0)
		return 0;
	if (names == NULL)
		return SHOAL_ENOMEM;
	rv = buf_appendf(b, " Runtimes:");
	for (i = 0; i < n && rv == 0; i++)
		rv = buf_appendf(b, " %s", names[i]);
	free(names);
	if (rv == 0)
		rv =
		    buf_appendf(b, "\n Default Runtime: %s\n", jsonfmt_str(info, "DefaultRuntime"));
	return rv;
}

static int info_linux(struct buf *b, json_t *info)
{
	static const struct {
		const char *name, *key;
	} commits[] = {
	    {"containerd", "ContainerdCommit"},
	    {"runc", "RuncCommit"},
	    {"init", "InitCommit"},
	};
	size_t i;
	int rv;

	rv = line(b, " Init Binary:", info, "InitBinary", false);
	for (i = 0; i < ARRAY_SIZE(commits) && rv == 0; i++) {
		json_t *c = json_object_get(info, commits[i].key);

		if (c != NULL)
			rv = buf_appendf(b, " %s version: %s\n", commits[i].name,
					 jsonfmt_str(c, "ID"));
	}
	if (rv == 0 && json_array_size(json_object_get(info, "SecurityOptions")) > 0)
		rv = security_options(b, json_object_get(info, "SecurityOptions"));
	return rv;
}

int system_format_info_server(json_t *info, bool debug, struct buf *out)
{
	json_t *v, *a;
	char mem[32];
	size_t i;
	int rv = 0;

	if (json_object_get(info, "Containers") != NULL)
		rv = buf_appendf(out,
				 " Containers: %lld\n  Running: %lld\n  Paused: %lld\n"
				 "  Stopped: %lld\n",
				 jsonfmt_int(info, "Containers", 0),
				 jsonfmt_int(info, "ContainersRunning", 0),
				 jsonfmt_int(info, "ContainersPaused", 0),
				 jsonfmt_int(info, "ContainersStopped", 0));
	if (rv == 0)
		rv = line(out, " Images:", info, "Images", false);
	if (rv == 0)
		rv = line(out, " Server Version:", info, "ServerVersion", true);
	if (rv == 0)
		rv = line(out, " Storage Driver:", info, "Driver", true);
	json_array_foreach(json_object_get(info, "DriverStatus"), i, v)
	{
		if (rv == 0)
			rv = buf_appendf(out, "  %s: %s\n", sv(json_array_get(v, 0)),
					 sv(json_array_get(v, 1)));
	}
	json_array_foreach(json_object_get(info, "SystemStatus"), i, v)
	{
		if (rv == 0)
			rv = buf_appendf(out, " %s: %s\n", sv(json_array_get(v, 0)),
					 sv(json_array_get(v, 1)));
	}
	if (rv == 0)
		rv = line(out, " Logging Driver:", info, "LoggingDriver", true);
	if (rv == 0)
		rv = line(out, " Cgroup Driver:", info, "CgroupDriver", true);
	if (rv == 0)
		rv = line(out, " Cgroup Version:", info, "CgroupVersion", true);
	if (rv == 0 && json_is_object(json_object_get(info, "Plugins")))
		rv = info_plugins(out, json_object_get(info, "Plugins"));
	if (rv == 0)
		rv = info_swarm(out, json_object_get(info, "Swarm"));
	if (rv == 0)
		rv = info_runtimes(out, info);
	if (rv == 0 && strcmp(jsonfmt_str(info, "OSType"), "linux") == 0)
		rv = info_linux(out, info);
	if (rv == 0)
		rv = line(out, " Kernel Version:", info, "KernelVersion", true);
	if (rv == 0)
		rv = line(out, " Operating System:", info, "OperatingSystem", true);
	if (rv == 0)
		rv = line(out, " OSType:", info, "OSType", true);
	if (rv == 0)
		rv = line(out, " Architecture:", info, "Architecture", true);
	if (rv == 0)
		rv = line(out, " CPUs:", info, "NCPU", false);
	if (rv == 0 && json_object_get(info, "MemTotal") != NULL) {
		human_bytes((double)jsonfmt_int(info, "MemTotal", 0), mem, sizeof(mem));
		rv = buf_appendf(out, " Total Memory: %s\n", mem);
	}
	if (rv == 0)
		rv = line(out, " Name:", info, "Name", true);
	if (rv == 0)
		rv = line(out, " ID:", info, "ID", true);
	if (rv == 0)
		rv = line(out, " Shoal Root Dir:", info, "DockerRootDir", false);
	if (rv == 0)
		rv = line(out, " Debug Mode:", info, "Debug", false);
	if (rv == 0 && (debug || jsonfmt_bool(info, "Debug"))) {
		rv = line(out, "  File Descriptors:", info, "NFd", false);
		if (rv == 0)
			rv = line(out, "  Goroutines:", info, "NGoroutines", false);
		if (rv == 0)
			rv = line(out, "  System Time:", info, "SystemTime", false);
		if (rv == 0)
			rv = line(out, "  EventsListeners:", info, "NEventsListener", false);
	}
	if (rv == 0)
		rv = line(out, " HTTP Proxy:", info, "HttpProxy", true);
	if (rv == 0)
		rv = line(out, " HTTPS Proxy:", info, "HttpsProxy", true);
	if (rv == 0)
		rv = line(out, " No Proxy:", info, "NoProxy", true);
	a = json_object_get(info, "Labels");
	if (rv == 0 && json_array_size(a) > 0) {
		rv = buf_appendf(out, " Labels:\n");
		json_array_foreach(a, i, v)
		{
			if (rv == 0)
				rv = buf_appendf(out, "  %s\n", sv(v));
		}
	}
	if (rv == 0)
		rv = line(out, " Experimental:", info, "ExperimentalBuild", false);
	if (rv == 0)
		rv = line(out, " Live Restore Enabled:", info, "LiveRestoreEnabled", false);
	if (rv == 0)
		rv = line(out, " Product License:", info, "ProductLicense", true);
	a = json_object_get(info, "DefaultAddressPools");
	if (rv == 0 && json_array_size(a) > 0) {
		rv = buf_appendf(out, " Default Address Pools:\n");
		json_array_foreach(a, i, v)
		{
			if (rv == 0)
				rv = buf_appendf(out, "   Base: %s, Size: %lld\n",
						 jsonfmt_str(v, "Base"), jsonfmt_int(v, "Size", 0));
		}
	}
	if (rv == 0)
		rv = buf_append(out, "\n", 1);
	return rv;
}
