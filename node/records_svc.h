/* Service and Task records (Docker's Service and Task objects), declared once with their schemas.
 */
#ifndef SHOAL_NODE_RECORDS_SVC_H
#define SHOAL_NODE_RECORDS_SVC_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/records.h"
#include "node/schema.h"

/* Durations are int64 nanoseconds, as Docker's JSON has them. */

/* TaskSpec.ContainerSpec.Mounts[] (Type "bind" only for now; "volume" and
 * "tmpfs" are refused by the API). */
struct svc_mount {
	char *type;
	char *source;
	char *target;
	bool read_only;
};

/* EndpointSpec.Ports[] and Endpoint.Ports[]. */
struct svc_port {
	char *name;
	char *protocol; /* "tcp" (default), "udp" */
	uint64_t target_port;
	uint64_t published_port;
	char *publish_mode; /* "ingress" (default), "host" */
};

/* Docker's TaskSpec, shared by ServiceSpec.TaskTemplate and Task.Spec. */
struct svc_task_spec {
	struct {
		char *image;
		struct schema_map labels;
		struct schema_strlist command; /* Command: replaces the image's Entrypoint */
		struct schema_strlist args;    /* Args: replaces the image's Cmd */
		char *hostname;
		struct schema_strlist env;
		char *dir;
		char *user;
		char *stop_signal;
		int64_t stop_grace_period; /* ns; 0: 10 s */
		struct {
			struct schema_strlist test;
			int64_t interval, timeout, start_period;
			uint64_t retries;
		} healthcheck;
		struct schema_list mounts; /* struct svc_mount */
		bool read_only;
	} container_spec;
	struct {
		struct {
			int64_t nano_cpus;
			int64_t memory_bytes;
			int64_t pids;
		} limits;
		struct {
			int64_t nano_cpus;
			int64_t memory_bytes;
		} reservations;
	} resources;
	struct {
		char *condition;       /* "none", "on-failure", "any" (default) */
		int64_t delay;	       /* ns; default 5 s */
		uint64_t max_attempts; /* 0: unlimited */
		int64_t window;	       /* ns; 0: unbounded */
	} restart_policy;
	struct {
		struct schema_strlist constraints; /* "node.labels.zone==east", ... */
		uint64_t max_replicas;		   /* per node; 0: unlimited */
	} placement;
	uint64_t force_update;
};

/* UpdateConfig and RollbackConfig. */
struct svc_update_config {
	uint64_t parallelism;	  /* default 1; 0: all at once */
	int64_t delay;		  /* ns */
	char *failure_action;	  /* "pause" (default), "continue", "rollback" */
	int64_t monitor;	  /* ns; default 5 s */
	double max_failure_ratio; /* 0..1 */
	char *order;		  /* "stop-first" (default), "start-first" */
};

enum svc_mode { SVC_MODE_REPLICATED, SVC_MODE_GLOBAL };

extern const struct schema_enum svc_mode_names[]; /* "replicated", "global" */

/* Docker's ServiceSpec. Mode is a union in Docker's JSON ({"Replicated":
 * {"Replicas": N}} or {"Global": {}}): @mode says which, and the API renders
 * and reads it (schema field Mode.* is internal). */
struct svc_spec {
	char *name;
	struct schema_map labels;
	struct svc_task_spec task_template;
	enum svc_mode mode;
	uint64_t replicas;
	struct svc_update_config update_config;
	struct svc_update_config rollback_config;
	struct {
		char *mode;		  /* "vip" */
		struct schema_list ports; /* struct svc_port */
	} endpoint_spec;
	/* shoal extensions (ignored by docker): blue/green. */
	char *update_strategy; /* NULL or "rolling" (default), "blue-green" */
	struct {
		char *promote; /* NULL or "auto" (default), "manual" */
		int64_t grace; /* ns blue is kept after the switch; 0: SVC_BLUEGREEN_GRACE */
	} bluegreen;
};

/* Blue/green: how long the old color is kept after the switch by default. */
#define SVC_BLUEGREEN_GRACE (60 * (int64_t)1000000000)

/* Docker's Service object. */
struct service_rec {
	struct record_meta meta;
	struct svc_spec spec;
	bool has_previous_spec;
	struct svc_spec previous_spec; /* all zero (and not rendered) while !has_previous_spec */
	struct {
		char *spec_mode;	  /* Endpoint.Spec.Mode */
		struct schema_list ports; /* struct svc_port, as published */
	} endpoint;
	struct {
		char *state; /* "updating", "paused", "completed", "rollback_started", ... ; NULL:
				none */
		int64_t started_at;
		int64_t completed_at;
		char *message;
	} update_status;
	/* Blue/green (shoal extension, "Deployment" in JSON). */
	struct {
		char *live_color; /* the color the routing mesh sends to; NULL: "blue" */
		/* NULL: none; "deploying" (the other color's set is starting),
		 * "ready" (it is healthy, waiting for `service promote`),
		 * "promoted" (traffic switched; the old color kept until
		 * switched_at + grace), "completed", "rolled_back", "failed". */
		char *state;
		int64_t switched_at;
		char *message;
	} deployment;
};

/* Docker's task states, in order: a task only moves forward. */
enum task_state {
	TASK_NEW,
	TASK_ALLOCATED,
	TASK_PENDING,
	TASK_ASSIGNED,
	TASK_ACCEPTED,
	TASK_PREPARING,
	TASK_READY,
	TASK_STARTING,
	TASK_RUNNING,
	TASK_COMPLETE,
	TASK_SHUTDOWN,
	TASK_FAILED,
	TASK_REJECTED,
	TASK_REMOVE,
	TASK_ORPHANED,
};

extern const struct schema_enum task_state_names[]; /* "new", "allocated", ... */

/* Docker's Task object. */
struct task_rec {
	struct record_meta meta;
	struct schema_map labels;
	struct svc_task_spec spec;
	char *service_id;
	uint64_t slot; /* replicated: 1..N; global: 0 */
	char *node_id; /* NULL until scheduled */
	struct {
		int64_t timestamp;
		enum task_state state;
		char *message; /* "created", "running", "no suitable node (...)" */
		char *err;
		struct {
			char *container_id;
			int64_t pid;
			int64_t exit_code;
		} container_status;
	} status;
	enum task_state desired_state; /* running, shutdown or remove */
	uint64_t spec_version; /* the service's Version.Index the spec came from (internal) */
	char *color;	       /* blue/green: "blue", "green" or NULL (shoal extension) */
	char *addr; /* the container's IPv4 address, as the agent reported it (shoal extension) */
};

extern const struct schema svc_mount_schema;	     /* Mount */
extern const struct schema svc_port_schema;	     /* PortConfig */
extern const struct schema svc_task_spec_schema;     /* TaskSpec */
extern const struct schema svc_update_config_schema; /* UpdateConfig */
extern const struct schema svc_spec_schema;	     /* ServiceSpec (Mode.* internal) */
extern const struct schema service_schema;
extern const struct schema task_schema;

/* Docker's defaults for a new service: replicated with 1 replica, restart
 * condition any, delay 5 s, UpdateConfig parallelism 1 / failure action
 * pause / monitor 5 s / order stop-first (RollbackConfig the same), endpoint
 * mode vip. Returns 0 or SHOAL_ENOMEM. Release with service_rec_free(). */
int service_rec_defaults(struct service_rec *s, struct shoal_err *err);
void service_rec_free(struct service_rec *s);

/* A new task: state new, desired state running, no node. Returns 0. Release
 * with task_rec_free(). */
int task_rec_defaults(struct task_rec *t, struct shoal_err *err);
void task_rec_free(struct task_rec *t);

#endif
