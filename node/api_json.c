/* Docker Engine API JSON documents built from the daemon's state. */
#include "node/api_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/clock.h"
#include "node/store.h"
#include "node/swarm.h"

#define GIT_COMMIT "shoal"

/* "PRETTY_NAME" of /etc/os-release, or "Linux". */
static void os_name(char *out, size_t len)
{
	FILE *f = fopen("/etc/os-release", "r");
	char line[256];

	snprintf(out, len, "Linux");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "PRETTY_NAME=", 12) != 0)
			continue;
		char *v = line + 12;
		size_t n = strcspn(v, "\n");
		v[n] = '\0';
		if (v[0] == '"' && n >= 2 && v[n - 1] == '"') {
			v[n - 1] = '\0';
			v++;
		}
		n = strlen(v) < len - 1 ? strlen(v) : len - 1;
		memcpy(out, v, n);
		out[n] = '\0';
		break;
	}
	fclose(f);
}

static const char *go_arch(const char *machine)
{
	if (strcmp(machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(machine, "aarch64") == 0)
		return "arm64";
	return machine;
}

/* The build time from __DATE__ ("Nov 25 2026") and __TIME__, as RFC 3339. */
static void build_time(char *out, size_t len)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *date = __DATE__;
	char mon[4] = {date[0], date[1], date[2], '\0'};
	const char *m = strstr(months, mon);
	int day = atoi(date + 4), year = atoi(date + 7);

	snprintf(out, len, "%04d-%02d-%02dT%sZ", year, m != NULL ? (int)(m - months) / 3 + 1 : 1,
		 day, __TIME__);
}

json_t *api_json_version(const struct api_context *ctx)
{
	struct utsname u;
	char built[64];

	(void)ctx;
	if (uname(&u) != 0)
		memset(&u, 0, sizeof u);
	build_time(built, sizeof(built));
	return json_pack(
	    "{s:{s:s}, s:[{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}],"
	    " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "Platform", "Name", "shoal", "Components", "Name", "Engine", "Version", PACKAGE_VERSION,
	    "Details", "ApiVersion", API_VERSION, "MinAPIVersion", API_MIN_VERSION, "GitCommit",
	    GIT_COMMIT, "Os", "linux", "Arch", go_arch(u.machine), "KernelVersion", u.release,
	    "BuildTime", built, "Version", PACKAGE_VERSION, "ApiVersion", API_VERSION,
	    "MinAPIVersion", API_MIN_VERSION, "GitCommit", GIT_COMMIT, "GoVersion", "n/a (C)", "Os",
	    "linux", "Arch", go_arch(u.machine), "KernelVersion", u.release, "BuildTime", built);
}

static json_t *info_swarm(const struct api_context *ctx)
{
	struct swarm *s = ctx->swarm;
	enum swarm_state st = swarm_state(s);
	const struct store *store = swarm_store(s);
	const struct cluster_rec *cluster = store != NULL ? store_cluster(store) : NULL;
	char node_addr[64] = "";
	json_t *o, *remotes;
	size_t managers = 0, nodes = 0;

	snprintf(node_addr, sizeof(node_addr), "%s", swarm_advertise_addr(s));
	node_addr[strcspn(node_addr, ":")] = '\0';
	o = json_pack("{s:s, s:s, s:s, s:b, s:s}", "NodeID", swarm_node_id(s), "NodeAddr",
		      node_addr, "LocalNodeState",
		      st == SWARM_CLOSED || st == SWARM_LEAVING ? "inactive" : swarm_state_name(st),
		      "ControlAvailable", cluster != NULL, "Error", swarm_error(s));
	if (o != NULL && cluster == NULL && st == SWARM_ACTIVE) {
		/* A worker: the managers it knows, without their ids. */
		const char *addrs[8];
		size_t n = swarm_remote_managers(s, addrs, ARRAY_SIZE(addrs));
		remotes = json_array();
		for (size_t i = 0; remotes != NULL && i < n; i++)
			json_array_append_new(
			    remotes, json_pack("{s:s, s:s}", "NodeID", "", "Addr", addrs[i]));
		json_object_set_new(o, "RemoteManagers", remotes);
	}
	if (o == NULL || cluster == NULL)
		return o;
	remotes = json_array();
	for (size_t i = 0; i < store_node_count(store); i++) {
		const struct node_rec *n = store_node_at(store, i);
		nodes++;
		if (n->manager_status.addr == NULL)
			continue;
		managers++;
		json_array_append_new(remotes, json_pack("{s:s, s:s}", "NodeID", n->meta.id, "Addr",
							 n->manager_status.addr));
	}
	json_object_set_new(o, "RemoteManagers", remotes);
	json_object_set_new(o, "Nodes", json_integer((json_int_t)nodes));
	json_object_set_new(o, "Managers", json_integer((json_int_t)managers));
	json_object_set_new(o, "Cluster", api_json_swarm(cluster, false));
	return o;
}

json_t *api_json_info(const struct api_context *ctx)
{
	struct utsname u;
	struct sysinfo si;
	char os[128], now[64];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	json_t *o;

	if (uname(&u) != 0)
		memset(&u, 0, sizeof u);
	if (sysinfo(&si) != 0)
		memset(&si, 0, sizeof si);
	os_name(os, sizeof(os));
	clock_format_rfc3339(clock_now_ns(), now, sizeof(now));
	o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:[], s:b, s:b, s:b, s:b, s:b, s:b,"
		      " s:b, s:b, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s,"
		      " s:s, s:[], s:b, s:s, s:s, s:s, s:b, s:[], s:[]}",
		      "ID", swarm_node_id(ctx->swarm), "Containers", 0, "ContainersRunning", 0,
		      "ContainersPaused", 0, "ContainersStopped", 0, "Images", 0, "Driver",
		      "overlay", "DriverStatus", "MemoryLimit", 1, "SwapLimit", 0, "CpuCfsPeriod",
		      1, "CpuCfsQuota", 1, "CPUShares", 1, "CPUSet", 1, "PidsLimit", 1,
		      "IPv4Forwarding", 1, "NGoroutines", 0, "SystemTime", now, "LoggingDriver",
		      "json-file", "CgroupDriver", "cgroupfs", "KernelVersion", u.release,
		      "OperatingSystem", os, "OSType", "linux", "Architecture", u.machine,
		      "IndexServerAddress", "", "NCPU", (int)(cpus > 0 ? cpus : 1), "MemTotal",
		      (json_int_t)si.totalram * (json_int_t)si.mem_unit, "DockerRootDir",
		      ctx->state_dir, "Name", ctx->hostname, "Labels", "ExperimentalBuild", 0,
		      "ServerVersion", PACKAGE_VERSION, "DefaultRuntime", ctx->runtime, "Isolation",
		      "", "LiveRestoreEnabled", 1, "SecurityOptions", "Warnings");
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "Plugins",
			    json_pack("{s:[], s:[], s:n, s:[s]}", "Volume", "Network",
				      "Authorization", "Log", "json-file"));
	json_object_set_new(
	    o, "RegistryConfig",
	    json_pack("{s:[], s:[], s:[s], s:{}, s:[]}", "AllowNondistributableArtifactsCIDRs",
		      "AllowNondistributableArtifactsHostnames", "InsecureRegistryCIDRs",
		      "127.0.0.0/8", "IndexConfigs", "Mirrors"));
	json_object_set_new(
	    o, "Runtimes",
	    json_pack("{s:{s:s}, s:{s:s}}", "runc", "path", "runc", "process", "path", "shoal"));
	json_object_set_new(o, "Swarm", info_swarm(ctx));
	return o;
}

json_t *api_json_swarm(const struct cluster_rec *c, bool with_tokens)
{
	json_t *o = NULL;

	if (schema_to_json(&cluster_schema, c, &o, NULL) != 0)
		return NULL;
	if (!with_tokens)
		json_object_del(o, "JoinTokens");
	return o;
}

/* A node's liveness comes from gossip (this node is always up). */
json_t *api_json_node(const struct api_context *ctx, const struct node_rec *n)
{
	json_t *o = NULL, *status, *ms;
	uint64_t leader = 0;
	int state = swarm_node_state(ctx->swarm, n);
	const char *reach = state == NODE_STATE_READY  ? "reachable"
			    : state == NODE_STATE_DOWN ? "unreachable"
						       : "unknown";

	if (schema_to_json(&node_schema, n, &o, NULL) != 0)
		return NULL;
	status = json_object_get(o, "Status");
	if (status != NULL)
		json_object_set_new(status, "State",
				    json_string(schema_enum_name(node_state_names, state)));
	if (n->manager_status.addr == NULL) {
		json_object_del(o, "ManagerStatus");
		return o;
	}
	swarm_is_leader(ctx->swarm, &leader);
	ms = json_pack("{s:b, s:s, s:s}", "Leader", leader != 0 && leader == n->raft_id,
		       "Reachability", reach, "Addr", n->manager_status.addr);
	if (ms == NULL || !json_is_true(json_object_get(ms, "Leader")))
		json_object_del(ms, "Leader"); /* Go omits a false Leader */
	json_object_set_new(o, "ManagerStatus", ms);
	return o;
}

/* --- filters ---------------------------------------------------------------- */

static const char *const filter_keys[] = {"id", "name", "role", "membership", "node.label"};

int api_node_filter_parse(struct api_node_filter *f, const char *text, struct shoal_err *err)
{
	json_error_t jerr;
	const char *key;
	json_t *v;

	f->terms = NULL;
	if (text[0] == '\0')
		return 0;
	json_t *in = json_loads(text, 0, &jerr);
	if (in == NULL || !json_is_object(in)) {
		json_decref(in);
		return shoal_errf(err, SHOAL_EINVAL, "invalid filter '%s'", text);
	}
	f->terms = json_object();
	json_object_foreach(in, key, v)
	{
		bool known = false;
		json_t *vals = json_array();
		for (size_t i = 0; i < ARRAY_SIZE(filter_keys); i++)
			known = known || strcmp(key, filter_keys[i]) == 0;
		if (!known) {
			int rv = shoal_errf(err, SHOAL_EINVAL, "invalid filter '%s'", key);
			json_decref(vals);
			json_decref(in);
			api_node_filter_free(f);
			return rv;
		}
		if (json_is_object(v)) { /* {"value": true} */
			const char *val;
			json_t *flag;
			json_object_foreach(v, val, flag)
			    json_array_append_new(vals, json_string(val));
		} else if (json_is_array(v)) { /* ["value"] */
			size_t i;
			json_t *item;
			json_array_foreach(v, i, item)
			{
				if (json_is_string(item))
					json_array_append(vals, item);
			}
		} else {
			int rv = shoal_errf(
			    err, SHOAL_EINVAL,
			    "invalid filter '%s': want an object or a list of values", key);
			json_decref(vals);
			json_decref(in);
			api_node_filter_free(f);
			return rv;
		}
		json_object_set_new(f->terms, key, vals);
	}
	json_decref(in);
	return 0;
}

static bool match_one(const char *key, const char *val, const struct node_rec *n)
{
	if (strcmp(key, "id") == 0)
		return strncmp(n->meta.id, val, strlen(val)) == 0;
	if (strcmp(key, "name") == 0)
		return (n->spec.name != NULL && strncmp(n->spec.name, val, strlen(val)) == 0) ||
		       (n->description.hostname != NULL &&
			strncmp(n->description.hostname, val, strlen(val)) == 0);
	if (strcmp(key, "role") == 0)
		return strcmp(val, schema_enum_name(node_role_names, (int)n->spec.role)) == 0;
	if (strcmp(key, "membership") == 0)
		return strcmp(val, "accepted") == 0;
	if (strcmp(key, "node.label") == 0) {
		const char *eq = strchr(val, '=');
		char k[256];
		size_t kn = eq != NULL ? (size_t)(eq - val) : strlen(val);
		if (kn >= sizeof(k))
			return false;
		memcpy(k, val, kn);
		k[kn] = '\0';
		const char *have = schema_map_get(&n->spec.labels, k);
		return have != NULL && (eq == NULL || strcmp(have, eq + 1) == 0);
	}
	return false;
}

bool api_node_filter_match(const struct api_node_filter *f, const struct api_context *ctx,
			   const struct node_rec *n)
{
	const char *key;
	json_t *vals;

	(void)ctx;
	if (f->terms == NULL)
		return true;
	/* Values of one key are alternatives; different keys must all match. */
	json_object_foreach(f->terms, key, vals)
	{
		size_t i;
		json_t *v;
		bool any = json_array_size(vals) == 0;
		json_array_foreach(vals, i, v) any = any || match_one(key, json_string_value(v), n);
		if (!any)
			return false;
	}
	return true;
}

void api_node_filter_free(struct api_node_filter *f)
{
	json_decref(f->terms);
	f->terms = NULL;
}
