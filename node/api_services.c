/* Docker's service and task endpoints: spec validation, commands, lookups, filters, JSON. */
#include "node/api_services.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/scheduler.h"
#include "node/updater.h"
#include "runtime/registry.h"

#define RPC_INVALID "rpc error: code = InvalidArgument desc = "

/* --- lookups ----------------------------------------------------------------- */

static const char *service_name(const struct store *st, const void *rec, char *buf, size_t len)
{
	(void)st;
	(void)buf;
	(void)len;
	return ((const struct service_rec *)rec)->spec.name;
}

int api_service_find(const struct store *st, const char *ref, const struct service_rec **out,
		     struct shoal_err *err)
{
	const void *rec = NULL;
	int rv = store_find(st, RECORD_SERVICES, ref, service_name, &rec, err);

	if (rv == 0)
		*out = rec;
	return rv;
}

/* The task's name as swarmkit's naming.Task() writes it. */
static const char *task_name(const struct store *st, const void *rec, char *out, size_t len)
{
	const struct task_rec *t = rec;
	const struct service_rec *s =
	    t->service_id != NULL ? store_get(st, RECORD_SERVICES, t->service_id) : NULL;
	const char *svc = s != NULL && s->spec.name != NULL ? s->spec.name : "";

	if (t->slot != 0)
		snprintf(out, len, "%s.%llu.%s", svc, (unsigned long long)t->slot, t->meta.id);
	else
		snprintf(out, len, "%s.%s.%s", svc, t->node_id != NULL ? t->node_id : "",
			 t->meta.id);
	return out;
}

int api_task_find(const struct store *st, const char *ref, const struct task_rec **out,
		  struct shoal_err *err)
{
	const void *rec = NULL;
	int rv = store_find(st, RECORD_TASKS, ref, task_name, &rec, err);

	if (rv == 0)
		*out = rec;
	return rv;
}

/* --- reading a ServiceSpec ------------------------------------------------------ */

/* Docker's Mode union into @spec. */
static int read_mode(json_t *body, struct svc_spec *spec, struct shoal_err *err)
{
	json_t *mode = json_object_get(body, "Mode"), *rep, *glob, *r;
	int kinds = 0;

	spec->mode = SVC_MODE_REPLICATED;
	spec->replicas = 1;
	if (mode == NULL || json_is_null(mode))
		return 0;
	if (!json_is_object(mode))
		return shoal_errf(err, SHOAL_EINVAL,
				  "json: cannot unmarshal %s into Go struct field ServiceSpec.Mode "
				  "of type swarm.ServiceMode",
				  schema_json_kind(mode));
	rep = json_object_get(mode, "Replicated");
	glob = json_object_get(mode, "Global");
	kinds += rep != NULL && !json_is_null(rep);
	kinds += glob != NULL && !json_is_null(glob);
	for (const char *const *k = (const char *const[]){"ReplicatedJob", "GlobalJob", NULL}; *k;
	     k++) {
		json_t *j = json_object_get(mode, *k);
		if (j != NULL && !json_is_null(j))
			return shoal_errf(err, SHOAL_EINVAL,
					  "shoal does not run jobs: the %s mode is not supported",
					  *k);
	}
	if (kinds > 1)
		return shoal_errf(err, SHOAL_EINVAL, "must specify only one service mode");
	if (glob != NULL && !json_is_null(glob)) {
		if (!json_is_object(glob))
			return shoal_errf(err, SHOAL_EINVAL,
					  "json: cannot unmarshal %s into Go struct field "
					  "ServiceMode.Mode.Global of type swarm.GlobalService",
					  schema_json_kind(glob));
		spec->mode = SVC_MODE_GLOBAL;
		spec->replicas = 0;
		return 0;
	}
	if (rep == NULL || json_is_null(rep))
		return 0;
	if (!json_is_object(rep))
		return shoal_errf(err, SHOAL_EINVAL,
				  "json: cannot unmarshal %s into Go struct field "
				  "ServiceMode.Mode.Replicated of type swarm.ReplicatedService",
				  schema_json_kind(rep));
	r = json_object_get(rep, "Replicas");
	if (r == NULL || json_is_null(r))
		return 0;
	if (!json_is_integer(r) || json_integer_value(r) < 0) {
		char num[64] = "";
		if (json_is_number(r))
			snprintf(num, sizeof(num), " %g", json_number_value(r));
		return shoal_errf(err, SHOAL_EINVAL,
				  "json: cannot unmarshal %s%s into Go struct field "
				  "ReplicatedService.Mode.Replicated.Replicas of type uint64",
				  schema_json_kind(r), num);
	}
	spec->replicas = (uint64_t)json_integer_value(r);
	return 0;
}

/* Read the ServiceSpec @body over Docker's defaults into @spec (which the
 * caller frees with schema_free(&svc_spec_schema, ...) on success). */
static int read_spec(json_t *body, struct svc_spec *spec, struct shoal_err *err)
{
	struct service_rec tmp;
	int rv;

	rv = service_rec_defaults(&tmp, err);
	if (rv != 0)
		return rv;
	rv = schema_from_json(&service_schema, &tmp, body, "Spec", "ServiceSpec", err);
	if (rv == 0)
		rv = read_mode(body, &tmp.spec, err);
	if (rv != 0) {
		service_rec_free(&tmp);
		return rv;
	}
	*spec = tmp.spec;
	memset(&tmp.spec, 0, sizeof tmp.spec);
	service_rec_free(&tmp);
	return 0;
}

/* --- validation ------------------------------------------------------------------ */

/* swarmkit's isValidDNSName: ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$ */
static bool dns_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && ((c != '-' && c != '_') || i == 0 || i == n - 1))
			return false;
	}
	return true;
}

static bool one_of(const char *v, const char *const *allowed)
{
	for (; *allowed != NULL; allowed++)
		if (v != NULL && strcmp(v, *allowed) == 0)
			return true;
	return false;
}

static int check_resources(const char *what, int64_t cpus, int64_t mem, struct shoal_err *err)
{
	if (cpus != 0 && cpus < 1000000)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "invalid cpu value %g: Must be at least %g",
				  (double)cpus / 1e9, 1e6 / 1e9);
	if (mem != 0 && mem < 4 * 1024 * 1024)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "invalid memory value %lld: Must be at least 4MiB",
				  (long long)mem);
	(void)what;
	return 0;
}

static int check_update_config(const struct svc_update_config *u, const char *flag,
			       struct shoal_err *err)
{
	static const char *const actions[] = {"pause", "continue", "rollback", NULL};
	static const char *const orders[] = {"stop-first", "start-first", NULL};

	if (u->delay < 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "TaskSpec: %s-delay cannot be negative", flag);
	if (u->monitor < 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "TaskSpec: %s-monitor cannot be negative", flag);
	if (u->max_failure_ratio < 0 || u->max_failure_ratio > 1)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "TaskSpec: %s-maxfailureratio cannot be less than 0 "
					      "or bigger than 1",
				  flag);
	if (u->failure_action != NULL && u->failure_action[0] != '\0' &&
	    !one_of(u->failure_action, actions))
		return shoal_errf(err, SHOAL_EINVAL,
				  "unrecognized %s failure action %.64s (want pause, continue or "
				  "rollback)",
				  flag, u->failure_action);
	if (u->order != NULL && u->order[0] != '\0' && !one_of(u->order, orders))
		return shoal_errf(err, SHOAL_EINVAL,
				  "unrecognized %s order %.64s (want stop-first or start-first)",
				  flag, u->order);
	return 0;
}

static bool is_bluegreen(const struct svc_spec *spec)
{
	return spec->update_strategy != NULL && strcmp(spec->update_strategy, "blue-green") == 0;
}

/* BlueGreen (shoal extension): Promote and Grace, and the replicated services it needs. */
static int check_bluegreen(const struct svc_spec *spec, struct shoal_err *err)
{
	static const char *const promotes[] = {"auto", "manual", NULL};

	if (spec->bluegreen.promote != NULL && spec->bluegreen.promote[0] != '\0' &&
	    !one_of(spec->bluegreen.promote, promotes))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid BlueGreen.Promote \"%.32s\" (want auto or manual)",
				  spec->bluegreen.promote);
	if (spec->bluegreen.grace < 0)
		return shoal_errf(err, SHOAL_EINVAL, "BlueGreen.Grace cannot be negative");
	if (is_bluegreen(spec) && spec->mode == SVC_MODE_GLOBAL)
		return shoal_errf(err, SHOAL_EINVAL,
				  "blue-green deployments need a replicated service");
	return 0;
}

static int check_health(const struct svc_task_spec *t, struct shoal_err *err)
{
	const char *names[] = {"Interval", "Timeout", "StartPeriod"};
	const int64_t vals[] = {t->container_spec.healthcheck.interval,
				t->container_spec.healthcheck.timeout,
				t->container_spec.healthcheck.start_period};

	for (size_t i = 0; i < ARRAY_SIZE(vals); i++)
		if (vals[i] != 0 && vals[i] < 1000000)
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    RPC_INVALID "ContainerSpec: %s in HealthConfig cannot be less than 1ms",
			    names[i]);
	return 0;
}

static int check_mounts(const struct svc_task_spec *t, struct shoal_err *err)
{
	const struct svc_mount *m = t->container_spec.mounts.items;
	size_t n = t->container_spec.mounts.n;

	for (size_t i = 0; i < n; i++) {
		const char *type = m[i].type != NULL && m[i].type[0] != '\0' ? m[i].type : "volume";
		if (strcmp(type, "bind") != 0)
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "invalid mount type \"%.32s\": shoal supports bind mounts "
			    "only",
			    type);
		if (m[i].source == NULL || m[i].source[0] != '/')
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid mount config for type \"bind\": invalid mount "
					  "path: '%.200s' mount path must be absolute",
					  m[i].source != NULL ? m[i].source : "");
		if (m[i].target == NULL || m[i].target[0] != '/')
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid mount config for type \"bind\": invalid mount "
					  "path: '%.200s' mount path must be absolute",
					  m[i].target != NULL ? m[i].target : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(m[j].target, m[i].target) == 0)
				return shoal_errf(err, SHOAL_EINVAL,
						  RPC_INVALID
						  "ContainerSpec: duplicate mount point: "
						  "%.200s",
						  m[i].target);
	}
	return 0;
}

static const char *port_protocol(const struct svc_port *p)
{
	return p->protocol != NULL && p->protocol[0] != '\0' ? p->protocol : "tcp";
}

/* EndpointSpec, and published ports against other services (swarmkit's
 * checkPortConflicts, which ignores the service being updated). */
static int check_endpoint(const struct store *st, const struct svc_spec *spec, const char *self_id,
			  struct shoal_err *err)
{
	static const char *const protocols[] = {"tcp", "udp", "sctp", NULL};
	static const char *const modes[] = {"ingress", "host", NULL};
	static const char *const ep_modes[] = {"vip", "dnsrr", NULL};
	const struct svc_port *p = spec->endpoint_spec.ports.items;
	size_t n = spec->endpoint_spec.ports.n;

	if (spec->endpoint_spec.mode != NULL && spec->endpoint_spec.mode[0] != '\0' &&
	    !one_of(spec->endpoint_spec.mode, ep_modes))
		return shoal_errf(err, SHOAL_EINVAL, "invalid EndpointSpec Mode \"%.32s\"",
				  spec->endpoint_spec.mode);
	for (size_t i = 0; i < n; i++) {
		if (!one_of(port_protocol(&p[i]), protocols))
			return shoal_errf(err, SHOAL_EINVAL, "invalid port protocol \"%.32s\"",
					  p[i].protocol);
		if (p[i].publish_mode != NULL && p[i].publish_mode[0] != '\0' &&
		    !one_of(p[i].publish_mode, modes))
			return shoal_errf(err, SHOAL_EINVAL, "invalid port PublishMode \"%.32s\"",
					  p[i].publish_mode);
		if (p[i].target_port == 0 || p[i].target_port > 65535)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid target port %llu: must be 1 to 65535",
					  (unsigned long long)p[i].target_port);
		if (p[i].published_port > 65535)
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid published port %llu: must be 0 to 65535",
					  (unsigned long long)p[i].published_port);
		if (p[i].published_port == 0)
			continue;
		for (size_t j = 0; j < i; j++)
			if (p[j].published_port == p[i].published_port &&
			    strcmp(port_protocol(&p[j]), port_protocol(&p[i])) == 0)
				return shoal_errf(err, SHOAL_EINVAL,
						  RPC_INVALID "EndpointSpec: duplicate published "
							      "ports provided");
		for (size_t k = 0; k < store_count(st, RECORD_SERVICES); k++) {
			const struct service_rec *o = store_at(st, RECORD_SERVICES, k);
			const struct svc_port *op = o->spec.endpoint_spec.ports.items;
			if (self_id != NULL && strcmp(o->meta.id, self_id) == 0)
				continue;
			for (size_t j = 0; j < o->spec.endpoint_spec.ports.n; j++)
				if (op[j].published_port == p[i].published_port &&
				    strcmp(port_protocol(&op[j]), port_protocol(&p[i])) == 0)
					return shoal_errf(
					    err, SHOAL_EINVAL,
					    RPC_INVALID "port '%llu' is already in use by service "
							"'%.64s' (%s) as an ingress port",
					    (unsigned long long)p[i].published_port,
					    o->spec.name != NULL ? o->spec.name : "", o->meta.id);
		}
	}
	return 0;
}

/* Everything swarmkit's validateServiceSpec() and Docker's conversion check,
 * in their order, but the name (checked by the callers). */
static int check_spec(const struct store *st, const struct svc_spec *spec, const char *self_id,
		      struct shoal_err *err)
{
	static const char *const conditions[] = {"none", "on-failure", "any", NULL};
	static const char *const strategies[] = {"rolling", "blue-green", NULL};
	const struct svc_task_spec *t = &spec->task_template;
	struct registry_ref *ref;
	struct shoal_err perr;
	int rv;

	rv = check_resources("limits", t->resources.limits.nano_cpus,
			     t->resources.limits.memory_bytes, err);
	if (rv == 0)
		rv = check_resources("reservations", t->resources.reservations.nano_cpus,
				     t->resources.reservations.memory_bytes, err);
	if (rv != 0)
		return rv;
	if (t->resources.limits.pids < 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid pids limit %lld: must not be negative",
				  (long long)t->resources.limits.pids);
	if (t->restart_policy.delay < 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "TaskSpec: restart-delay cannot be negative");
	if (t->restart_policy.window < 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "TaskSpec: restart-window cannot be negative");
	if (t->restart_policy.condition != NULL && t->restart_policy.condition[0] != '\0' &&
	    !one_of(t->restart_policy.condition, conditions))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid RestartCondition: \"%.32s\" (want none, on-failure or "
				  "any)",
				  t->restart_policy.condition);
	rv = sched_constraints_check(&t->placement.constraints, &perr);
	if (rv == SHOAL_EINVAL)
		return shoal_errf(err, rv, RPC_INVALID "%s", perr.msg);
	if (rv != 0)
		return shoal_errf(err, rv, "%s", perr.msg);
	if (t->container_spec.image == NULL || t->container_spec.image[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "ContainerSpec: image reference must be provided");
	ref = malloc(sizeof(*ref));
	if (ref == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = registry_ref_parse(t->container_spec.image, ref, &perr);
	free(ref);
	if (rv == SHOAL_ENOMEM)
		return shoal_errf(err, rv, "out of memory");
	if (rv != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "ContainerSpec: \"%.200s\" is not a valid "
					      "repository/tag",
				  t->container_spec.image);
	rv = check_mounts(t, err);
	if (rv == 0)
		rv = check_health(t, err);
	if (rv != 0)
		return rv;
	if (spec->mode == SVC_MODE_REPLICATED && (int64_t)spec->replicas < 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "Number of replicas must be non-negative");
	rv = check_update_config(&spec->update_config, "update", err);
	if (rv == 0)
		rv = check_update_config(&spec->rollback_config, "rollback", err);
	if (rv != 0)
		return rv;
	if (spec->update_strategy != NULL && spec->update_strategy[0] != '\0' &&
	    !one_of(spec->update_strategy, strategies))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid UpdateStrategy \"%.32s\" (want rolling or blue-green)",
				  spec->update_strategy);
	rv = check_bluegreen(spec, err);
	if (rv != 0)
		return rv;
	return check_endpoint(st, spec, self_id, err);
}

static int check_name(const char *name, struct shoal_err *err)
{
	if (name == NULL || name[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL, RPC_INVALID "meta: name must be provided");
	if (!dns_name_valid(name))
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "name must be valid as a DNS name component");
	if (strlen(name) > 63)
		return shoal_errf(err, SHOAL_EINVAL,
				  RPC_INVALID "name must be 63 characters or fewer");
	return 0;
}

/* swarmkit's store: names are unique, compared without case. */
static const struct service_rec *service_named(const struct store *st, const char *name)
{
	for (size_t i = 0; i < store_count(st, RECORD_SERVICES); i++) {
		const struct service_rec *s = store_at(st, RECORD_SERVICES, i);
		if (s->spec.name != NULL && strcasecmp(s->spec.name, name) == 0)
			return s;
	}
	return NULL;
}

/* A name in Docker's "adjective_surname" style when the spec has none. */
static char *random_name(const struct store *st)
{
	static const char *const adjectives[] = {
	    "brave",  "calm",	"clever", "eager",  "gentle", "happy",	"jolly",  "keen",
	    "lucid",  "mellow", "nimble", "proud",  "quiet",  "quirky", "serene", "sharp",
	    "steady", "sunny",	"swift",  "tender", "vivid",  "wise",	"witty",  "zen",
	};
	static const char *const names[] = {
	    "babbage", "bohr",	  "curie",   "darwin",	"dijkstra", "einstein",
	    "euler",   "faraday", "feynman", "galois",	"gauss",    "hopper",
	    "hypatia", "kepler",  "knuth",   "lamarr",	"lovelace", "meitner",
	    "noether", "pascal",  "ritchie", "shannon", "thompson", "turing",
	};
	char name[64];

	for (int attempt = 0; attempt < 16; attempt++) {
		uint32_t a = randombytes_uniform((uint32_t)ARRAY_SIZE(adjectives));
		uint32_t b = randombytes_uniform((uint32_t)ARRAY_SIZE(names));
		if (attempt < 8)
			snprintf(name, sizeof(name), "%s_%s", adjectives[a], names[b]);
		else
			snprintf(name, sizeof(name), "%s_%s%u", adjectives[a], names[b],
				 (unsigned)randombytes_uniform(10));
		if (service_named(st, name) == NULL)
			break;
	}
	return strdup(name);
}

/* Endpoint (what is published) follows EndpointSpec: ports with Docker's
 * defaults filled in. */
static int set_endpoint(struct service_rec *s, struct shoal_err *err)
{
	struct svc_port *old = s->endpoint.ports.items, *ports = NULL;
	const struct svc_port *want = s->spec.endpoint_spec.ports.items;
	size_t n = s->spec.endpoint_spec.ports.n;

	for (size_t i = 0; i < s->endpoint.ports.n; i++)
		schema_free(&svc_port_schema, &old[i]);
	free(old);
	free(s->endpoint.spec_mode);
	s->endpoint.ports.items = NULL;
	s->endpoint.ports.n = 0;
	s->endpoint.spec_mode = NULL;
	if (n == 0)
		return 0;
	ports = calloc(n, sizeof(*ports));
	s->endpoint.spec_mode =
	    strdup(s->spec.endpoint_spec.mode != NULL && s->spec.endpoint_spec.mode[0] != '\0'
		       ? s->spec.endpoint_spec.mode
		       : "vip");
	if (ports == NULL || s->endpoint.spec_mode == NULL) {
		free(ports);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	s->endpoint.ports.items = ports;
	for (size_t i = 0; i < n; i++) {
		int rv = schema_copy(&svc_port_schema, &ports[i], &want[i], err);
		if (rv != 0)
			return rv;
		s->endpoint.ports.n++;
		if (ports[i].protocol == NULL || ports[i].protocol[0] == '\0') {
			free(ports[i].protocol);
			ports[i].protocol = strdup("tcp");
		}
		if (ports[i].publish_mode == NULL || ports[i].publish_mode[0] == '\0') {
			free(ports[i].publish_mode);
			ports[i].publish_mode = strdup("ingress");
		}
		if (ports[i].protocol == NULL || ports[i].publish_mode == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return 0;
}

/* --- commands -------------------------------------------------------------------- */

int api_service_create_command(const struct store *st, json_t *body, const char *id, int64_t now,
			       struct command *cmd, struct shoal_err *err)
{
	struct service_rec s;
	int rv;

	rv = service_rec_defaults(&s, err);
	if (rv != 0)
		return rv;
	schema_free(&svc_spec_schema, &s.spec);
	rv = read_spec(body, &s.spec, err);
	if (rv != 0) {
		memset(&s.spec, 0, sizeof s.spec);
		goto out;
	}
	if (s.spec.name == NULL || s.spec.name[0] == '\0') {
		free(s.spec.name);
		s.spec.name = random_name(st);
		if (s.spec.name == NULL) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto out;
		}
	}
	rv = check_name(s.spec.name, err);
	if (rv == 0)
		rv = check_spec(st, &s.spec, NULL, err);
	if (rv != 0)
		goto out;
	if (service_named(st, s.spec.name) != NULL) {
		rv = shoal_errf(err, SHOAL_ECONFLICT,
				"rpc error: code = AlreadyExists desc = name conflicts with an "
				"existing object: service %s already exists",
				s.spec.name);
		goto out;
	}
	s.meta.id = strdup(id);
	if (s.meta.id == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	s.meta.created_at = now;
	s.meta.updated_at = now;
	rv = set_endpoint(&s, err);
	if (rv == 0)
		rv = command_put(cmd, RECORD_SERVICES, COMMAND_EXPECT_NEW, &s, err);
out:
	service_rec_free(&s);
	return rv;
}

/* The ?version= of an update: digits only, as for nodes. */
static int parse_version(const char *text, uint64_t *out, struct shoal_err *err)
{
	unsigned long long v;
	char *end;

	if (text == NULL || text[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid service version '': the version parameter is required");
	errno = 0;
	v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid service version '%.64s': not a number", text);
	if ((uint64_t)v == COMMAND_EXPECT_ANY || (uint64_t)v == COMMAND_EXPECT_NEW)
		return shoal_errf(err, SHOAL_ECONFLICT, "update out of sequence");
	*out = v;
	return 0;
}

static void clear_update_status(struct service_rec *s)
{
	free(s->update_status.state);
	free(s->update_status.message);
	memset(&s->update_status, 0, sizeof s->update_status);
}

/* Replace @s's UpdateStatus. Returns 0 or -1 (out of memory). */
static int set_update_status(struct service_rec *s, const char *state, const char *message,
			     int64_t started_at, int64_t completed_at)
{
	clear_update_status(s);
	s->update_status.state = strdup(state);
	s->update_status.message = strdup(message);
	s->update_status.started_at = started_at;
	s->update_status.completed_at = completed_at;
	return s->update_status.state != NULL && s->update_status.message != NULL ? 0 : -1;
}

/* Blue/green colors: the live one ("blue" when unset) and the other. */
static const char *live_color(const struct service_rec *s)
{
	return s->deployment.live_color != NULL && s->deployment.live_color[0] != '\0'
		   ? s->deployment.live_color
		   : "blue";
}

static const char *other_color(const char *color)
{
	return strcmp(color, "blue") == 0 ? "green" : "blue";
}

static bool deployment_in(const struct service_rec *s, const char *const *states)
{
	return s->deployment.state != NULL && one_of(s->deployment.state, states);
}

/* A rollback of @cur ends its blue/green deployment at once: the old color
 * still runs (its tasks are kept until the grace period ends). */
static bool bluegreen_rollback(const struct service_rec *cur)
{
	static const char *const active[] = {"deploying", "ready", "promoted", NULL};

	return is_bluegreen(&cur->spec) && deployment_in(cur, active);
}

/* Replace @s's Deployment fields; NULL leaves one as it is. Returns 0 or -1. */
static int set_deployment(struct service_rec *s, const char *live, const char *state,
			  const char *message)
{
	const char *in[] = {live, state, message};
	char **field[] = {&s->deployment.live_color, &s->deployment.state, &s->deployment.message};

	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		char *copy;
		if (in[i] == NULL)
			continue;
		copy = strdup(in[i]);
		if (copy == NULL)
			return -1;
		free(*field[i]);
		*field[i] = copy;
	}
	return 0;
}

/* The rollback of a blue/green deployment (@s's specs already swapped): the
 * color that served before the deployment serves again, no container starts. */
static int set_bluegreen_rollback(struct service_rec *s, int64_t now, struct shoal_err *err)
{
	const char *live = live_color(s);
	char message[96];

	if (strcmp(s->deployment.state, "promoted") == 0)
		live = other_color(live);
	snprintf(message, sizeof(message), "rolled back by request: %s serves", live);
	if (set_deployment(s, live, "rolled_back", message) != 0 ||
	    set_update_status(s, "rollback_completed", "manually requested rollback", now, now) !=
		0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

int api_service_update_command(const struct store *st, const char *ref, const char *version_text,
			       const char *rollback, json_t *body, int64_t now, struct command *cmd,
			       struct shoal_err *err)
{
	const struct service_rec *cur = NULL;
	struct service_rec next;
	struct svc_spec spec;
	uint64_t version = 0;
	int rv;

	rv = parse_version(version_text, &version, err);
	if (rv != 0)
		return rv;
	rv = api_service_find(st, ref, &cur, err);
	if (rv != 0)
		return rv;
	if (rollback != NULL && rollback[0] != '\0' && strcmp(rollback, "previous") != 0)
		return shoal_errf(err, SHOAL_EINVAL, "unrecognized rollback option %.64s",
				  rollback);
	if (version != cur->meta.version)
		return shoal_errf(err, SHOAL_ECONFLICT, "update out of sequence");
	rv = schema_copy(&service_schema, &next, cur, err);
	if (rv != 0)
		return rv;
	if (rollback != NULL && rollback[0] != '\0') {
		if (!cur->has_previous_spec) {
			rv = shoal_errf(err, SHOAL_EINVAL,
					"rpc error: code = FailedPrecondition desc = service %s "
					"does not have a previous spec",
					cur->meta.id);
			goto out;
		}
		spec = next.spec;
		next.spec = next.previous_spec;
		next.previous_spec = spec;
		if (bluegreen_rollback(cur)) {
			rv = set_bluegreen_rollback(&next, now, err);
			if (rv != 0)
				goto out;
		} else if (set_update_status(&next, "rollback_started",
					     "manually requested rollback", now, 0) != 0) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto out;
		}
	} else {
		rv = read_spec(body, &spec, err);
		if (rv != 0)
			goto out;
		rv = check_name(spec.name, err);
		if (rv == 0)
			rv = check_spec(st, &spec, cur->meta.id, err);
		if (rv == 0 && spec.mode != cur->spec.mode)
			rv = shoal_errf(err, SHOAL_EINVAL,
					"rpc error: code = Unimplemented desc = service mode "
					"change is not allowed");
		if (rv == 0 && strcmp(spec.name, cur->spec.name != NULL ? cur->spec.name : "") != 0)
			rv = shoal_errf(err, SHOAL_EINVAL,
					"rpc error: code = Unimplemented desc = renaming services "
					"is not supported");
		if (rv != 0) {
			schema_free(&svc_spec_schema, &spec);
			goto out;
		}
		/* The same spec again resumes a paused update (the status is
		 * cleared) and keeps the spec to roll back to. */
		if (schema_equal(&svc_spec_schema, &spec, &cur->spec)) {
			schema_free(&svc_spec_schema, &next.spec);
		} else {
			schema_free(&svc_spec_schema, &next.previous_spec);
			next.previous_spec = next.spec;
			next.has_previous_spec = true;
			/* A new spec while a set of the other color starts (or
			 * waits for promotion): that set is dropped, the next
			 * deployment starts from the live color. */
			if (next.deployment.state != NULL &&
			    (strcmp(next.deployment.state, "deploying") == 0 ||
			     strcmp(next.deployment.state, "ready") == 0)) {
				free(next.deployment.state);
				free(next.deployment.message);
				next.deployment.state = NULL;
				next.deployment.message = NULL;
			}
		}
		next.spec = spec;
		clear_update_status(&next);
	}
	next.meta.updated_at = now;
	rv = set_endpoint(&next, err);
	if (rv == 0)
		rv = command_put(cmd, RECORD_SERVICES, version, &next, err);
out:
	service_rec_free(&next);
	return rv;
}

int api_service_promote_command(const struct store *st, const char *ref, int64_t now,
				struct command *cmd, struct shoal_err *err)
{
	static const char *const ready[] = {"ready", NULL};
	const struct service_rec *cur = NULL;
	struct service_rec next;
	const char *to;
	char message[96];
	int rv;

	rv = api_service_find(st, ref, &cur, err);
	if (rv != 0)
		return rv;
	to = other_color(live_color(cur));
	if (!deployment_in(cur, ready))
		return shoal_errf(err, SHOAL_EINVAL,
				  "service %s has no %s set ready to promote (deployment: %.32s)",
				  cur->spec.name, to,
				  cur->deployment.state != NULL ? cur->deployment.state : "none");
	rv = schema_copy(&service_schema, &next, cur, err);
	if (rv != 0)
		return rv;
	snprintf(message, sizeof(message), "traffic switched to %s by request", to);
	if (set_deployment(&next, to, "promoted", message) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	next.deployment.switched_at = now;
	rv = command_put(cmd, RECORD_SERVICES, cur->meta.version, &next, err);
out:
	service_rec_free(&next);
	return rv;
}

int api_service_remove_command(const struct store *st, const char *ref, struct command *cmd,
			       struct shoal_err *err)
{
	const struct service_rec *s = NULL;
	int rv = api_service_find(st, ref, &s, err);

	if (rv != 0)
		return rv;
	return command_delete(cmd, RECORD_SERVICES, s->meta.version, s->meta.id, err);
}

/* --- JSON ------------------------------------------------------------------------- */

/* @o[@key] as an object, created when missing; NULL when out of memory. */
static json_t *object_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_object(v))
		return v;
	v = json_object();
	if (v == NULL || json_object_set_new(o, key, v) != 0)
		return NULL;
	return v;
}

/* The empty objects Docker's TaskSpec always shows. */
static int fill_task_spec(json_t *spec)
{
	json_t *res = object_at(spec, "Resources");

	if (res == NULL || object_at(res, "Limits") == NULL ||
	    object_at(res, "Reservations") == NULL || object_at(spec, "Placement") == NULL ||
	    object_at(spec, "ContainerSpec") == NULL)
		return -1;
	return json_object_set_new(spec, "Runtime", json_string("container"));
}

/* Render @spec's Mode union and fill the TaskTemplate. */
static int fill_spec(json_t *o, const struct svc_spec *spec)
{
	json_t *mode =
	    spec->mode == SVC_MODE_GLOBAL
		? json_pack("{s:{}}", "Global")
		: json_pack("{s:{s:I}}", "Replicated", "Replicas", (json_int_t)spec->replicas);
	json_t *tt = object_at(o, "TaskTemplate");

	if (mode == NULL || tt == NULL || json_object_set_new(o, "Mode", mode) != 0)
		return -1;
	if (object_at(o, "Labels") == NULL)
		return -1;
	return fill_task_spec(tt);
}

static void count_status(const struct store *st, const struct service_rec *s, json_int_t *running,
			 json_int_t *desired, json_int_t *completed)
{
	*running = *desired = *completed = 0;
	for (size_t i = 0; i < store_count(st, RECORD_TASKS); i++) {
		const struct task_rec *t = store_at(st, RECORD_TASKS, i);
		if (t->service_id == NULL || strcmp(t->service_id, s->meta.id) != 0)
			continue;
		if (t->status.state == TASK_RUNNING && t->desired_state == TASK_RUNNING)
			(*running)++;
		if (t->status.state == TASK_COMPLETE)
			(*completed)++;
		if (s->spec.mode == SVC_MODE_GLOBAL && t->desired_state == TASK_RUNNING)
			(*desired)++;
	}
	if (s->spec.mode == SVC_MODE_REPLICATED)
		*desired = (json_int_t)s->spec.replicas;
}

json_t *api_json_service(const struct store *st, const struct service_rec *s, bool with_status)
{
	json_t *o = NULL, *ep;

	if (schema_to_json(&service_schema, s, &o, NULL) != 0)
		return NULL;
	if (fill_spec(object_at(o, "Spec"), &s->spec) != 0)
		goto oom;
	if (s->has_previous_spec && fill_spec(object_at(o, "PreviousSpec"), &s->previous_spec) != 0)
		goto oom;
	ep = object_at(o, "Endpoint");
	if (ep == NULL || object_at(ep, "Spec") == NULL)
		goto oom;
	if (with_status) {
		json_int_t running, desired, completed;
		count_status(st, s, &running, &desired, &completed);
		if (json_object_set_new(o, "ServiceStatus",
					json_pack("{s:I, s:I, s:I}", "RunningTasks", running,
						  "DesiredTasks", desired, "CompletedTasks",
						  completed)) != 0)
			goto oom;
	}
	return o;
oom:
	json_decref(o);
	return NULL;
}

json_t *api_json_task(const struct store *st, const struct task_rec *t)
{
	json_t *o = NULL;

	(void)st;
	if (schema_to_json(&task_schema, t, &o, NULL) != 0)
		return NULL;
	if (fill_task_spec(object_at(o, "Spec")) != 0 || object_at(o, "Labels") == NULL) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* --- filters ---------------------------------------------------------------------- */

/* Docker's filters JSON: key -> {"value": true} or ["value"], keys from
 * @known. *@out maps each key to an array of strings; NULL when @text is "". */
static int filters_parse(const char *text, const char *const *known, json_t **out,
			 struct shoal_err *err)
{
	json_error_t jerr;
	const char *key;
	json_t *in, *v, *terms;

	*out = NULL;
	if (text == NULL || text[0] == '\0')
		return 0;
	in = json_loads(text, 0, &jerr);
	if (in == NULL || !json_is_object(in)) {
		json_decref(in);
		return shoal_errf(err, SHOAL_EINVAL, "invalid filter '%.200s'", text);
	}
	terms = json_object();
	if (terms == NULL) {
		json_decref(in);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	json_object_foreach(in, key, v)
	{
		json_t *vals = json_array();
		int rv = 0;
		if (!one_of(key, known))
			rv = shoal_errf(err, SHOAL_EINVAL, "invalid filter '%.200s'", key);
		else if (vals == NULL)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		else if (json_is_object(v)) {
			const char *val;
			json_t *flag;
			json_object_foreach(v, val, flag)
			    json_array_append_new(vals, json_string(val));
		} else if (json_is_array(v)) {
			size_t i;
			json_t *item;
			json_array_foreach(v, i, item)
			{
				if (json_is_string(item))
					json_array_append(vals, item);
			}
		} else {
			rv = shoal_errf(err, SHOAL_EINVAL,
					"invalid filter '%.200s': want an object or a list of "
					"values",
					key);
		}
		if (rv != 0) {
			json_decref(vals);
			json_decref(terms);
			json_decref(in);
			return rv;
		}
		json_object_set_new(terms, key, vals);
	}
	json_decref(in);
	*out = terms;
	return 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "key" or "key=value" against a label map (Docker's filterMatchLabels). */
static bool label_match(const struct schema_map *m, const char *want)
{
	const char *eq = strchr(want, '=');
	char key[256];
	size_t kn = eq != NULL ? (size_t)(eq - want) : strlen(want);
	const char *have;

	if (kn >= sizeof(key))
		return false;
	memcpy(key, want, kn);
	key[kn] = '\0';
	have = schema_map_get(m, key);
	return have != NULL && (eq == NULL || strcmp(have, eq + 1) == 0);
}

typedef bool (*match_fn)(const struct store *st, const char *key, const char *val, const void *rec);

/* Values of one key are alternatives; different keys must all match. */
static bool filters_match(const struct store *st, json_t *terms, match_fn fn, const void *rec)
{
	const char *key;
	json_t *vals;

	json_object_foreach(terms, key, vals)
	{
		size_t i;
		json_t *v;
		bool any = json_array_size(vals) == 0;
		json_array_foreach(vals, i, v) any = any || fn(st, key, json_string_value(v), rec);
		if (!any)
			return false;
	}
	return true;
}

static bool service_match(const struct store *st, const char *key, const char *val, const void *rec)
{
	const struct service_rec *s = rec;

	(void)st;
	if (strcmp(key, "id") == 0)
		return has_prefix(s->meta.id, val);
	if (strcmp(key, "name") == 0)
		return has_prefix(s->spec.name, val);
	if (strcmp(key, "label") == 0)
		return label_match(&s->spec.labels, val);
	if (strcmp(key, "mode") == 0)
		return strcmp(val, schema_enum_name(svc_mode_names, (int)s->spec.mode)) == 0;
	return false;
}

int api_services_list(const struct store *st, const char *filters, bool with_status, json_t **out,
		      struct shoal_err *err)
{
	static const char *const known[] = {"id", "name", "label", "mode", NULL};
	json_t *terms = NULL, *list, *vals;
	int rv;

	rv = filters_parse(filters, known, &terms, err);
	if (rv != 0)
		return rv;
	vals = json_object_get(terms, "mode");
	for (size_t i = 0; i < json_array_size(vals); i++) {
		const char *m = json_string_value(json_array_get(vals, i));
		if (strcmp(m, "replicated") != 0 && strcmp(m, "global") != 0) {
			rv = shoal_errf(err, SHOAL_EINVAL, "Invalid filter: 'mode'='%.64s'", m);
			json_decref(terms);
			return rv;
		}
	}
	list = json_array();
	for (size_t i = 0; list != NULL && i < store_count(st, RECORD_SERVICES); i++) {
		const struct service_rec *s = store_at(st, RECORD_SERVICES, i);
		json_t *j;
		if (terms != NULL && !filters_match(st, terms, service_match, s))
			continue;
		j = api_json_service(st, s, with_status);
		if (j == NULL || json_array_append_new(list, j) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	json_decref(terms);
	if (list == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	*out = list;
	return 0;
}

static bool task_match(const struct store *st, const char *key, const char *val, const void *rec)
{
	const struct task_rec *t = rec;

	if (strcmp(key, "id") == 0)
		return has_prefix(t->meta.id, val);
	if (strcmp(key, "name") == 0) {
		char name[256];
		task_name(st, t, name, sizeof(name));
		return has_prefix(name, val);
	}
	if (strcmp(key, "label") == 0)
		return label_match(&t->labels, val);
	/* service and node were resolved to ids beforehand. */
	if (strcmp(key, "service") == 0)
		return t->service_id != NULL && strcmp(t->service_id, val) == 0;
	if (strcmp(key, "node") == 0)
		return t->node_id != NULL && strcmp(t->node_id, val) == 0;
	if (strcmp(key, "desired-state") == 0)
		return strcmp(val, schema_enum_name(task_state_names, (int)t->desired_state)) == 0;
	/* The docker CLI's progress display (as Docker's daemon, only its
	 * presence counts): tasks made from the service's current spec. */
	if (strcmp(key, "_up-to-date") == 0) {
		const struct service_rec *s =
		    t->service_id != NULL ? store_get(st, RECORD_SERVICES, t->service_id) : NULL;

		return s != NULL && updater_task_clean(s, t);
	}
	return false;
}

/* Replace the values of @key in @terms by the ids they name. */
static int resolve_refs(const struct store *st, const char *self_id, json_t *terms, const char *key,
			struct shoal_err *err)
{
	json_t *vals = json_object_get(terms, key), *ids;
	size_t i;
	json_t *v;

	if (vals == NULL)
		return 0;
	ids = json_array();
	if (ids == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	json_array_foreach(vals, i, v)
	{
		const char *ref = json_string_value(v), *id;
		int rv;
		if (strcmp(key, "service") == 0) {
			const struct service_rec *s = NULL;
			rv = api_service_find(st, ref, &s, err);
			id = rv == 0 ? s->meta.id : NULL;
		} else {
			const struct node_rec *n = NULL;
			rv = store_node_find(st, strcmp(ref, "self") == 0 ? self_id : ref, &n, err);
			id = rv == 0 ? n->meta.id : NULL;
		}
		if (rv != 0) {
			json_decref(ids);
			return rv;
		}
		json_array_append_new(ids, json_string(id));
	}
	json_object_set_new(terms, key, ids);
	return 0;
}

int api_tasks_list(const struct store *st, const char *self_id, const char *filters, json_t **out,
		   struct shoal_err *err)
{
	static const char *const known[] = {"id",   "name",	     "label",	    "service",
					    "node", "desired-state", "_up-to-date", NULL};
	static const char *const desired[] = {"running", "shutdown", "accepted", NULL};
	json_t *terms = NULL, *list, *vals;
	int rv;

	rv = filters_parse(filters, known, &terms, err);
	if (rv == 0)
		rv = resolve_refs(st, self_id, terms, "service", err);
	if (rv == 0)
		rv = resolve_refs(st, self_id, terms, "node", err);
	vals = json_object_get(terms, "desired-state");
	for (size_t i = 0; rv == 0 && i < json_array_size(vals); i++) {
		const char *d = json_string_value(json_array_get(vals, i));
		if (!one_of(d, desired))
			rv = shoal_errf(err, SHOAL_EINVAL,
					"Invalid desired-state filter: '%.64s' (want running, "
					"shutdown or accepted)",
					d);
	}
	if (rv != 0) {
		json_decref(terms);
		return rv;
	}
	list = json_array();
	for (size_t i = 0; list != NULL && i < store_count(st, RECORD_TASKS); i++) {
		const struct task_rec *t = store_at(st, RECORD_TASKS, i);
		json_t *j;
		if (terms != NULL && !filters_match(st, terms, task_match, t))
			continue;
		j = api_json_task(st, t);
		if (j == NULL || json_array_append_new(list, j) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	json_decref(terms);
	if (list == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	*out = list;
	return 0;
}
