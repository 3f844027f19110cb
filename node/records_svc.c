/* Service and Task records: field tables with Docker's JSON names, task state names, defaults. */
#include "node/records_svc.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(offsetof(struct service_rec, meta) == 0, "records start with their meta");
_Static_assert(offsetof(struct task_rec, meta) == 0, "records start with their meta");

#define RO	 SCHEMA_READONLY
#define OMIT	 SCHEMA_OMITEMPTY
#define INTERNAL SCHEMA_INTERNAL

#define NS_PER_S 1000000000LL

/* Flags follow the `json:",omitempty"` tags of Docker's Go types
 * (api/types/swarm, api/types/mount, api/types/container). */

#define M struct svc_mount
static const struct schema_field mount_fields[] = {
    SCHEMA_STRING_FIELD(M, type, "Type", OMIT),
    SCHEMA_STRING_FIELD(M, source, "Source", OMIT),
    SCHEMA_STRING_FIELD(M, target, "Target", OMIT),
    SCHEMA_BOOL_FIELD(M, read_only, "ReadOnly", OMIT),
};
#undef M

const struct schema svc_mount_schema = {
    .name = "Mount",
    .size = sizeof(struct svc_mount),
    .fields = mount_fields,
    .n_fields = ARRAY_SIZE(mount_fields),
};

#define P struct svc_port
static const struct schema_field port_fields[] = {
    SCHEMA_STRING_FIELD(P, name, "Name", OMIT),
    SCHEMA_STRING_FIELD(P, protocol, "Protocol", OMIT),
    SCHEMA_U64_FIELD(P, target_port, "TargetPort", OMIT),
    SCHEMA_U64_FIELD(P, published_port, "PublishedPort", OMIT),
    SCHEMA_STRING_FIELD(P, publish_mode, "PublishMode", OMIT),
};
#undef P

const struct schema svc_port_schema = {
    .name = "PortConfig",
    .size = sizeof(struct svc_port),
    .fields = port_fields,
    .n_fields = ARRAY_SIZE(port_fields),
};

#define T struct svc_task_spec
static const struct schema_field task_spec_fields[] = {
    SCHEMA_STRING_FIELD(T, container_spec.image, "ContainerSpec.Image", OMIT),
    SCHEMA_MAP_FIELD(T, container_spec.labels, "ContainerSpec.Labels", OMIT),
    SCHEMA_STRLIST_FIELD(T, container_spec.command, "ContainerSpec.Command", OMIT),
    SCHEMA_STRLIST_FIELD(T, container_spec.args, "ContainerSpec.Args", OMIT),
    SCHEMA_STRING_FIELD(T, container_spec.hostname, "ContainerSpec.Hostname", OMIT),
    SCHEMA_STRLIST_FIELD(T, container_spec.env, "ContainerSpec.Env", OMIT),
    SCHEMA_STRING_FIELD(T, container_spec.dir, "ContainerSpec.Dir", OMIT),
    SCHEMA_STRING_FIELD(T, container_spec.user, "ContainerSpec.User", OMIT),
    SCHEMA_STRING_FIELD(T, container_spec.stop_signal, "ContainerSpec.StopSignal", OMIT),
    SCHEMA_BOOL_FIELD(T, container_spec.read_only, "ContainerSpec.ReadOnly", OMIT),
    SCHEMA_LIST_FIELD(T, container_spec.mounts, "ContainerSpec.Mounts", OMIT, &svc_mount_schema),
    SCHEMA_I64_FIELD(T, container_spec.stop_grace_period, "ContainerSpec.StopGracePeriod", OMIT),
    SCHEMA_STRLIST_FIELD(T, container_spec.healthcheck.test, "ContainerSpec.Healthcheck.Test",
			 OMIT),
    SCHEMA_I64_FIELD(T, container_spec.healthcheck.interval, "ContainerSpec.Healthcheck.Interval",
		     OMIT),
    SCHEMA_I64_FIELD(T, container_spec.healthcheck.timeout, "ContainerSpec.Healthcheck.Timeout",
		     OMIT),
    SCHEMA_I64_FIELD(T, container_spec.healthcheck.start_period,
		     "ContainerSpec.Healthcheck.StartPeriod", OMIT),
    SCHEMA_U64_FIELD(T, container_spec.healthcheck.retries, "ContainerSpec.Healthcheck.Retries",
		     OMIT),
    SCHEMA_I64_FIELD(T, resources.limits.nano_cpus, "Resources.Limits.NanoCPUs", OMIT),
    SCHEMA_I64_FIELD(T, resources.limits.memory_bytes, "Resources.Limits.MemoryBytes", OMIT),
    SCHEMA_I64_FIELD(T, resources.limits.pids, "Resources.Limits.Pids", OMIT),
    SCHEMA_I64_FIELD(T, resources.reservations.nano_cpus, "Resources.Reservations.NanoCPUs", OMIT),
    SCHEMA_I64_FIELD(T, resources.reservations.memory_bytes, "Resources.Reservations.MemoryBytes",
		     OMIT),
    SCHEMA_STRING_FIELD(T, restart_policy.condition, "RestartPolicy.Condition", OMIT),
    SCHEMA_I64_FIELD(T, restart_policy.delay, "RestartPolicy.Delay", 0),
    SCHEMA_U64_FIELD(T, restart_policy.max_attempts, "RestartPolicy.MaxAttempts", 0),
    SCHEMA_I64_FIELD(T, restart_policy.window, "RestartPolicy.Window", OMIT),
    SCHEMA_STRLIST_FIELD(T, placement.constraints, "Placement.Constraints", OMIT),
    SCHEMA_U64_FIELD(T, placement.max_replicas, "Placement.MaxReplicas", OMIT),
    SCHEMA_U64_FIELD(T, force_update, "ForceUpdate", 0),
};
#undef T

const struct schema svc_task_spec_schema = {
    .name = "TaskSpec",
    .size = sizeof(struct svc_task_spec),
    .fields = task_spec_fields,
    .n_fields = ARRAY_SIZE(task_spec_fields),
};

#define U struct svc_update_config
static const struct schema_field update_config_fields[] = {
    SCHEMA_U64_FIELD(U, parallelism, "Parallelism", 0),
    SCHEMA_I64_FIELD(U, delay, "Delay", OMIT),
    SCHEMA_STRING_FIELD(U, failure_action, "FailureAction", OMIT),
    SCHEMA_I64_FIELD(U, monitor, "Monitor", OMIT),
    SCHEMA_F64_FIELD(U, max_failure_ratio, "MaxFailureRatio", 0),
    SCHEMA_STRING_FIELD(U, order, "Order", 0),
};
#undef U

const struct schema svc_update_config_schema = {
    .name = "UpdateConfig",
    .size = sizeof(struct svc_update_config),
    .fields = update_config_fields,
    .n_fields = ARRAY_SIZE(update_config_fields),
};

const struct schema_enum svc_mode_names[] = {
    {SVC_MODE_REPLICATED, "replicated"},
    {SVC_MODE_GLOBAL, "global"},
    {0, NULL},
};

/* Mode is Docker's union {"Replicated": {"Replicas": N}} or {"Global": {}}:
 * the API reads and renders it from these internal fields. */
#define S struct svc_spec
static const struct schema_field spec_fields[] = {
    SCHEMA_STRING_FIELD(S, name, "Name", OMIT),
    SCHEMA_MAP_FIELD(S, labels, "Labels", 0),
    SCHEMA_STRUCT_FIELD(S, task_template, "TaskTemplate", 0, struct svc_task_spec,
			&svc_task_spec_schema),
    SCHEMA_ENUM_FIELD(S, mode, "Mode.Kind", INTERNAL, svc_mode_names),
    SCHEMA_U64_FIELD(S, replicas, "Mode.Replicated.Replicas", INTERNAL),
    SCHEMA_STRUCT_FIELD(S, update_config, "UpdateConfig", 0, struct svc_update_config,
			&svc_update_config_schema),
    SCHEMA_STRUCT_FIELD(S, rollback_config, "RollbackConfig", 0, struct svc_update_config,
			&svc_update_config_schema),
    SCHEMA_STRING_FIELD(S, endpoint_spec.mode, "EndpointSpec.Mode", OMIT),
    SCHEMA_LIST_FIELD(S, endpoint_spec.ports, "EndpointSpec.Ports", OMIT, &svc_port_schema),
    SCHEMA_STRING_FIELD(S, update_strategy, "UpdateStrategy", OMIT),
    SCHEMA_STRING_FIELD(S, bluegreen.promote, "BlueGreen.Promote", OMIT),
    SCHEMA_I64_FIELD(S, bluegreen.grace, "BlueGreen.Grace", OMIT),
};
#undef S

const struct schema svc_spec_schema = {
    .name = "ServiceSpec",
    .size = sizeof(struct svc_spec),
    .fields = spec_fields,
    .n_fields = ARRAY_SIZE(spec_fields),
};

#define V struct service_rec
static const struct schema_field service_fields[] = {
    RECORD_META_FIELDS(V),
    SCHEMA_STRUCT_FIELD(V, spec, "Spec", 0, struct svc_spec, &svc_spec_schema),
    SCHEMA_BOOL_FIELD(V, has_previous_spec, "HasPreviousSpec", INTERNAL),
    /* Zero while there is none, so OMITEMPTY leaves it out like Docker's nil pointer. */
    SCHEMA_STRUCT_FIELD(V, previous_spec, "PreviousSpec", RO | OMIT, struct svc_spec,
			&svc_spec_schema),
    SCHEMA_STRING_FIELD(V, endpoint.spec_mode, "Endpoint.Spec.Mode", RO | OMIT),
    SCHEMA_LIST_FIELD(V, endpoint.ports, "Endpoint.Ports", RO | OMIT, &svc_port_schema),
    SCHEMA_STRING_FIELD(V, update_status.state, "UpdateStatus.State", RO | OMIT),
    SCHEMA_TIME_FIELD(V, update_status.started_at, "UpdateStatus.StartedAt", RO | OMIT),
    SCHEMA_TIME_FIELD(V, update_status.completed_at, "UpdateStatus.CompletedAt", RO | OMIT),
    SCHEMA_STRING_FIELD(V, update_status.message, "UpdateStatus.Message", RO | OMIT),
    SCHEMA_STRING_FIELD(V, deployment.live_color, "Deployment.LiveColor", RO | OMIT),
    SCHEMA_STRING_FIELD(V, deployment.state, "Deployment.State", RO | OMIT),
    SCHEMA_TIME_FIELD(V, deployment.switched_at, "Deployment.SwitchedAt", RO | OMIT),
    SCHEMA_STRING_FIELD(V, deployment.message, "Deployment.Message", RO | OMIT),
};
#undef V

const struct schema service_schema = {
    .name = "Service",
    .size = sizeof(struct service_rec),
    .fields = service_fields,
    .n_fields = ARRAY_SIZE(service_fields),
};

const struct schema_enum task_state_names[] = {
    {TASK_NEW, "new"},		 {TASK_ALLOCATED, "allocated"},
    {TASK_PENDING, "pending"},	 {TASK_ASSIGNED, "assigned"},
    {TASK_ACCEPTED, "accepted"}, {TASK_PREPARING, "preparing"},
    {TASK_READY, "ready"},	 {TASK_STARTING, "starting"},
    {TASK_RUNNING, "running"},	 {TASK_COMPLETE, "complete"},
    {TASK_SHUTDOWN, "shutdown"}, {TASK_FAILED, "failed"},
    {TASK_REJECTED, "rejected"}, {TASK_REMOVE, "remove"},
    {TASK_ORPHANED, "orphaned"}, {0, NULL},
};

/* Tasks are written by the orchestrator only: everything but the spec is read-only. */
#define K struct task_rec
static const struct schema_field task_fields[] = {
    RECORD_META_FIELDS(K),
    SCHEMA_MAP_FIELD(K, labels, "Labels", RO),
    SCHEMA_STRUCT_FIELD(K, spec, "Spec", 0, struct svc_task_spec, &svc_task_spec_schema),
    SCHEMA_STRING_FIELD(K, service_id, "ServiceID", RO | OMIT),
    SCHEMA_U64_FIELD(K, slot, "Slot", RO | OMIT),
    SCHEMA_STRING_FIELD(K, node_id, "NodeID", RO | OMIT),
    SCHEMA_TIME_FIELD(K, status.timestamp, "Status.Timestamp", RO),
    SCHEMA_ENUM_FIELD(K, status.state, "Status.State", RO, task_state_names),
    SCHEMA_STRING_FIELD(K, status.message, "Status.Message", RO | OMIT),
    SCHEMA_STRING_FIELD(K, status.err, "Status.Err", RO | OMIT),
    SCHEMA_STRING_FIELD(K, status.container_status.container_id,
			"Status.ContainerStatus.ContainerID", RO | OMIT),
    SCHEMA_I64_FIELD(K, status.container_status.pid, "Status.ContainerStatus.PID", RO | OMIT),
    SCHEMA_I64_FIELD(K, status.container_status.exit_code, "Status.ContainerStatus.ExitCode",
		     RO | OMIT),
    SCHEMA_ENUM_FIELD(K, desired_state, "DesiredState", RO, task_state_names),
    SCHEMA_U64_FIELD(K, spec_version, "SpecVersion", INTERNAL),
    SCHEMA_STRING_FIELD(K, color, "Color", RO | OMIT),
    SCHEMA_STRING_FIELD(K, addr, "Address", RO | OMIT),
};
#undef K

const struct schema task_schema = {
    .name = "Task",
    .size = sizeof(struct task_rec),
    .fields = task_fields,
    .n_fields = ARRAY_SIZE(task_fields),
};

static int update_config_defaults(struct svc_update_config *u)
{
	u->parallelism = 1;
	u->monitor = 5 * NS_PER_S;
	u->max_failure_ratio = 0;
	if ((u->failure_action = strdup("pause")) == NULL ||
	    (u->order = strdup("stop-first")) == NULL)
		return SHOAL_ENOMEM;
	return 0;
}

int service_rec_defaults(struct service_rec *s, struct shoal_err *err)
{
	struct svc_spec *spec = &s->spec;

	memset(s, 0, sizeof(*s));
	spec->mode = SVC_MODE_REPLICATED;
	spec->replicas = 1;
	spec->task_template.restart_policy.delay = 5 * NS_PER_S;
	if ((spec->task_template.restart_policy.condition = strdup("any")) == NULL ||
	    update_config_defaults(&spec->update_config) != 0 ||
	    update_config_defaults(&spec->rollback_config) != 0 ||
	    (spec->endpoint_spec.mode = strdup("vip")) == NULL) {
		service_rec_free(s);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return 0;
}

void service_rec_free(struct service_rec *s)
{
	schema_free(&service_schema, s);
}

int task_rec_defaults(struct task_rec *t, struct shoal_err *err)
{
	(void)err;
	memset(t, 0, sizeof(*t));
	t->status.state = TASK_NEW;
	t->desired_state = TASK_RUNNING;
	return 0;
}

void task_rec_free(struct task_rec *t)
{
	schema_free(&task_schema, t);
}
