/* The cluster state's record types, each declared once as a struct plus its schema. */
#ifndef SHOAL_NODE_RECORDS_H
#define SHOAL_NODE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/schema.h"

/* Every record starts with this, so the store can handle any of them. */
struct record_meta {
	char *id;	    /* ID: the table's key */
	uint64_t version;   /* Version.Index: Raft index of the last write, set by the store */
	int64_t created_at; /* CreatedAt, ns; set by the proposer, kept by the store on update */
	int64_t updated_at; /* UpdatedAt, ns; set by the proposer */
};

/* The schema fields of struct record_meta in record type @T, as Docker names them. */
#define RECORD_META_FIELDS(T)                                                    \
	SCHEMA_STRING_FIELD(T, meta.id, "ID", SCHEMA_READONLY),                  \
	    SCHEMA_U64_FIELD(T, meta.version, "Version.Index", SCHEMA_READONLY), \
	    SCHEMA_TIME_FIELD(T, meta.created_at, "CreatedAt", SCHEMA_READONLY), \
	    SCHEMA_TIME_FIELD(T, meta.updated_at, "UpdatedAt", SCHEMA_READONLY)

/* Docker's Swarm object (GET /swarm; /info shows it without JoinTokens). */
struct cluster_rec {
	struct record_meta meta;
	struct {
		char *name;
		struct schema_map labels;
		struct {
			int64_t task_history_retention_limit;
		} orchestration;
		struct {
			uint64_t snapshot_interval;
			uint64_t keep_old_snapshots;
			uint64_t log_entries_for_slow_followers;
			int64_t election_tick;
			int64_t heartbeat_tick;
		} raft;
		struct {
			int64_t heartbeat_period; /* ns */
		} dispatcher;
		struct {
			int64_t node_cert_expiry; /* ns */
		} ca_config;
		struct {
			bool auto_lock_managers;
		} encryption_config;
	} spec;
	struct {
		char *trust_root;
		char *cert_issuer_subject;
		char *cert_issuer_public_key;
	} tls_info;
	bool root_rotation_in_progress;
	struct schema_strlist default_addr_pool;
	uint64_t subnet_size;
	uint64_t data_path_port;
	struct {
		char *worker;
		char *manager;
	} join_tokens;
	struct schema_bytes root_public_key; /* internal: Ed25519 root key, 32 bytes */
	/* internal: the root's secret key (64 bytes), so every manager can
	 * issue certificates; Raft replicates it to managers only. */
	struct schema_bytes root_secret_key;
	/* internal: the gossip key ring, primary then previous (32 or 64 bytes) */
	struct schema_bytes gossip_keys;
};

enum node_role { NODE_ROLE_WORKER, NODE_ROLE_MANAGER };
enum node_availability {
	NODE_AVAILABILITY_ACTIVE,
	NODE_AVAILABILITY_PAUSE,
	NODE_AVAILABILITY_DRAIN
};
enum node_state { NODE_STATE_UNKNOWN, NODE_STATE_DOWN, NODE_STATE_READY, NODE_STATE_DISCONNECTED };

/* Docker's Node object. ManagerStatus.Leader and .Reachability are computed by
 * the API when it answers; only the manager's address is stored. */
struct node_rec {
	struct record_meta meta;
	struct {
		char *name;
		struct schema_map labels;
		enum node_role role;
		enum node_availability availability;
	} spec;
	struct {
		char *hostname;
		struct {
			char *architecture;
			char *os;
		} platform;
		struct {
			int64_t nano_cpus;
			int64_t memory_bytes;
		} resources;
		struct {
			char *engine_version;
		} engine;
	} description;
	struct {
		enum node_state state;
		char *message;
		char *addr;
	} status;
	struct {
		char *addr; /* NULL on workers: no ManagerStatus in JSON */
	} manager_status;
	uint64_t raft_id;   /* internal: the node's Raft server id (0: never a manager) */
	char *cluster_addr; /* internal: "IP:port" of its cluster port (streams, gossip) */
	/* Its task containers' subnet, "10.89.K.0/24", handed out by the leader
	 * (node_subnet_pick()); shoal extension "Subnet". */
	char *subnet;
	struct schema_bytes public_key; /* internal: Ed25519 identity key, 32 bytes */
};

extern const struct schema_enum node_role_names[];
extern const struct schema_enum node_availability_names[];
extern const struct schema_enum node_state_names[];

extern const struct schema cluster_schema;
extern const struct schema node_schema;

/* Fill @c (uninitialised) with Docker's defaults for a new swarm: Spec.Name
 * "default", TaskHistoryRetentionLimit 5, SnapshotInterval 10000, ...; ids,
 * times, tokens and keys are left empty. Returns 0 or SHOAL_ENOMEM (then @c
 * holds nothing to free). Release with cluster_rec_free(). */
int cluster_rec_defaults(struct cluster_rec *c, struct shoal_err *err);
/* Release what @c holds (@c itself is the caller's); accepts a zeroed record. */
void cluster_rec_free(struct cluster_rec *c);

/* Fill @n (uninitialised) with a new node's defaults: worker, active, state
 * unknown. Returns 0 or SHOAL_ENOMEM. Release with node_rec_free(). */
int node_rec_defaults(struct node_rec *n, struct shoal_err *err);
void node_rec_free(struct node_rec *n);

/* The tables of the store. Later record types add a row here and to record_tables. */
enum record_table {
	RECORD_CLUSTER,
	RECORD_NODES,
	RECORD_SERVICES, /* struct service_rec (node/records_svc.h) */
	RECORD_TASKS,	 /* struct task_rec */
	RECORD_TABLE_COUNT
};

struct record_table_info {
	const char *name; /* in commands and snapshots: "cluster", "nodes", "services", "tasks" */
	const char *kind; /* in messages: "swarm", "node", "service", "task" */
	const struct schema *schema;
	bool singleton; /* holds at most one record */
	int (*defaults)(void *rec, struct shoal_err *err);
};

extern const struct record_table_info record_tables[RECORD_TABLE_COUNT];

/* Find the table called @name (@len bytes). Returns 0, or -1 if there is none. */
int record_table_by_name(const char *name, size_t len, enum record_table *out);

/* Allocate a record of table @t filled with its defaults into *@out. Returns 0
 * or SHOAL_ENOMEM. Free with record_delete(). */
int record_new(enum record_table t, void **out, struct shoal_err *err);
/* Free @rec, a record of table @t from record_new(); accepts NULL. */
void record_delete(enum record_table t, void *rec);

static inline const struct record_meta *record_meta(const void *rec)
{
	return rec;
}

#endif
