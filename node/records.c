/* The cluster state's record types: field tables, enum names and defaults. */
#include "node/records.h"

#include <stdlib.h>
#include <string.h>

#include "node/records_svc.h"

_Static_assert(offsetof(struct cluster_rec, meta) == 0, "records start with their meta");
_Static_assert(offsetof(struct node_rec, meta) == 0, "records start with their meta");

#define RO	 SCHEMA_READONLY
#define OMIT	 SCHEMA_OMITEMPTY
#define INTERNAL SCHEMA_INTERNAL

#define C struct cluster_rec
static const struct schema_field cluster_fields[] = {
    RECORD_META_FIELDS(C),
    SCHEMA_STRING_FIELD(C, spec.name, "Spec.Name", 0),
    SCHEMA_MAP_FIELD(C, spec.labels, "Spec.Labels", 0),
    SCHEMA_I64_FIELD(C, spec.orchestration.task_history_retention_limit,
		     "Spec.Orchestration.TaskHistoryRetentionLimit", 0),
    SCHEMA_U64_FIELD(C, spec.raft.snapshot_interval, "Spec.Raft.SnapshotInterval", 0),
    SCHEMA_U64_FIELD(C, spec.raft.keep_old_snapshots, "Spec.Raft.KeepOldSnapshots", 0),
    SCHEMA_U64_FIELD(C, spec.raft.log_entries_for_slow_followers,
		     "Spec.Raft.LogEntriesForSlowFollowers", 0),
    SCHEMA_I64_FIELD(C, spec.raft.election_tick, "Spec.Raft.ElectionTick", 0),
    SCHEMA_I64_FIELD(C, spec.raft.heartbeat_tick, "Spec.Raft.HeartbeatTick", 0),
    SCHEMA_I64_FIELD(C, spec.dispatcher.heartbeat_period, "Spec.Dispatcher.HeartbeatPeriod", 0),
    SCHEMA_I64_FIELD(C, spec.ca_config.node_cert_expiry, "Spec.CAConfig.NodeCertExpiry", 0),
    SCHEMA_BOOL_FIELD(C, spec.encryption_config.auto_lock_managers,
		      "Spec.EncryptionConfig.AutoLockManagers", 0),
    SCHEMA_STRING_FIELD(C, tls_info.trust_root, "TLSInfo.TrustRoot", RO | OMIT),
    SCHEMA_STRING_FIELD(C, tls_info.cert_issuer_subject, "TLSInfo.CertIssuerSubject", RO | OMIT),
    SCHEMA_STRING_FIELD(C, tls_info.cert_issuer_public_key, "TLSInfo.CertIssuerPublicKey",
			RO | OMIT),
    SCHEMA_BOOL_FIELD(C, root_rotation_in_progress, "RootRotationInProgress", RO),
    SCHEMA_STRLIST_FIELD(C, default_addr_pool, "DefaultAddrPool", RO),
    SCHEMA_U64_FIELD(C, subnet_size, "SubnetSize", RO),
    SCHEMA_U64_FIELD(C, data_path_port, "DataPathPort", RO),
    SCHEMA_STRING_FIELD(C, join_tokens.worker, "JoinTokens.Worker", RO),
    SCHEMA_STRING_FIELD(C, join_tokens.manager, "JoinTokens.Manager", RO),
    SCHEMA_BYTES_FIELD(C, root_public_key, "RootPublicKey", INTERNAL),
    SCHEMA_BYTES_FIELD(C, root_secret_key, "RootSecretKey", INTERNAL),
    SCHEMA_BYTES_FIELD(C, gossip_keys, "GossipKeys", INTERNAL),
};
#undef C

const struct schema cluster_schema = {
    .name = "Swarm",
    .size = sizeof(struct cluster_rec),
    .fields = cluster_fields,
    .n_fields = ARRAY_SIZE(cluster_fields),
};

const struct schema_enum node_role_names[] = {
    {NODE_ROLE_WORKER, "worker"},
    {NODE_ROLE_MANAGER, "manager"},
    {0, NULL},
};

const struct schema_enum node_availability_names[] = {
    {NODE_AVAILABILITY_ACTIVE, "active"},
    {NODE_AVAILABILITY_PAUSE, "pause"},
    {NODE_AVAILABILITY_DRAIN, "drain"},
    {0, NULL},
};

const struct schema_enum node_state_names[] = {
    {NODE_STATE_UNKNOWN, "unknown"},
    {NODE_STATE_DOWN, "down"},
    {NODE_STATE_READY, "ready"},
    {NODE_STATE_DISCONNECTED, "disconnected"},
    {0, NULL},
};

#define N struct node_rec
static const struct schema_field node_fields[] = {
    RECORD_META_FIELDS(N),
    SCHEMA_STRING_FIELD(N, spec.name, "Spec.Name", OMIT),
    SCHEMA_MAP_FIELD(N, spec.labels, "Spec.Labels", 0),
    SCHEMA_ENUM_FIELD(N, spec.role, "Spec.Role", 0, node_role_names),
    SCHEMA_ENUM_FIELD(N, spec.availability, "Spec.Availability", 0, node_availability_names),
    SCHEMA_STRING_FIELD(N, description.hostname, "Description.Hostname", RO | OMIT),
    SCHEMA_STRING_FIELD(N, description.platform.architecture, "Description.Platform.Architecture",
			RO | OMIT),
    SCHEMA_STRING_FIELD(N, description.platform.os, "Description.Platform.OS", RO | OMIT),
    SCHEMA_I64_FIELD(N, description.resources.nano_cpus, "Description.Resources.NanoCPUs",
		     RO | OMIT),
    SCHEMA_I64_FIELD(N, description.resources.memory_bytes, "Description.Resources.MemoryBytes",
		     RO | OMIT),
    SCHEMA_STRING_FIELD(N, description.engine.engine_version, "Description.Engine.EngineVersion",
			RO | OMIT),
    SCHEMA_ENUM_FIELD(N, status.state, "Status.State", RO, node_state_names),
    SCHEMA_STRING_FIELD(N, status.message, "Status.Message", RO | OMIT),
    SCHEMA_STRING_FIELD(N, status.addr, "Status.Addr", RO | OMIT),
    SCHEMA_STRING_FIELD(N, manager_status.addr, "ManagerStatus.Addr", RO | OMIT),
    SCHEMA_U64_FIELD(N, raft_id, "RaftID", INTERNAL),
    SCHEMA_STRING_FIELD(N, cluster_addr, "ClusterAddr", INTERNAL),
    SCHEMA_STRING_FIELD(N, subnet, "Subnet", RO | OMIT),
    SCHEMA_BYTES_FIELD(N, public_key, "PublicKey", INTERNAL),
};
#undef N

const struct schema node_schema = {
    .name = "Node",
    .size = sizeof(struct node_rec),
    .fields = node_fields,
    .n_fields = ARRAY_SIZE(node_fields),
};

int cluster_rec_defaults(struct cluster_rec *c, struct shoal_err *err)
{
	memset(c, 0, sizeof(*c));
	c->spec.orchestration.task_history_retention_limit = 5;
	c->spec.raft.snapshot_interval = 10000;
	c->spec.raft.keep_old_snapshots = 0;
	c->spec.raft.log_entries_for_slow_followers = 500;
	c->spec.raft.election_tick = 10;
	c->spec.raft.heartbeat_tick = 1;
	c->spec.dispatcher.heartbeat_period = 5000000000;
	c->spec.ca_config.node_cert_expiry = 7776000000000000; /* 90 days */
	c->subnet_size = 24;
	c->data_path_port = 4789;
	if ((c->spec.name = strdup("default")) == NULL ||
	    schema_strlist_append(&c->default_addr_pool, "10.0.0.0/8", err) != 0) {
		cluster_rec_free(c);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return 0;
}

void cluster_rec_free(struct cluster_rec *c)
{
	schema_free(&cluster_schema, c);
}

int node_rec_defaults(struct node_rec *n, struct shoal_err *err)
{
	(void)err;
	memset(n, 0, sizeof(*n));
	n->spec.role = NODE_ROLE_WORKER;
	n->spec.availability = NODE_AVAILABILITY_ACTIVE;
	n->status.state = NODE_STATE_UNKNOWN;
	return 0;
}

void node_rec_free(struct node_rec *n)
{
	schema_free(&node_schema, n);
}

static int cluster_defaults(void *rec, struct shoal_err *err)
{
	return cluster_rec_defaults(rec, err);
}

static int node_defaults(void *rec, struct shoal_err *err)
{
	return node_rec_defaults(rec, err);
}

static int service_defaults(void *rec, struct shoal_err *err)
{
	return service_rec_defaults(rec, err);
}

static int task_defaults(void *rec, struct shoal_err *err)
{
	return task_rec_defaults(rec, err);
}

const struct record_table_info record_tables[RECORD_TABLE_COUNT] = {
    [RECORD_CLUSTER] = {"cluster", "swarm", &cluster_schema, true, cluster_defaults},
    [RECORD_NODES] = {"nodes", "node", &node_schema, false, node_defaults},
    [RECORD_SERVICES] = {"services", "service", &service_schema, false, service_defaults},
    [RECORD_TASKS] = {"tasks", "task", &task_schema, false, task_defaults},
};

int record_table_by_name(const char *name, size_t len, enum record_table *out)
{
	for (size_t i = 0; i < RECORD_TABLE_COUNT; i++) {
		if (strlen(record_tables[i].name) == len &&
		    memcmp(record_tables[i].name, name, len) == 0) {
			*out = (enum record_table)i;
			return 0;
		}
	}
	return -1;
}

int record_new(enum record_table t, void **out, struct shoal_err *err)
{
	const struct record_table_info *ti;
	void *rec;
	int rv;

	PRE(t < RECORD_TABLE_COUNT);
	ti = &record_tables[t];
	rec = malloc(ti->schema->size);
	if (rec == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = ti->defaults(rec, err);
	if (rv != 0) {
		free(rec);
		return rv;
	}
	*out = rec;
	return 0;
}

void record_delete(enum record_table t, void *rec)
{
	PRE(t < RECORD_TABLE_COUNT);
	if (rec == NULL)
		return;
	schema_free(record_tables[t].schema, rec);
	free(rec);
}
