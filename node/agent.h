/* The agent of a node: makes its containers match its assigned tasks, reports their status. */
#ifndef SHOAL_NODE_AGENT_H
#define SHOAL_NODE_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/err.h"
#include "node/records_svc.h"
#include "runtime/container.h"
#include "runtime/image_pull.h"

struct node_mesh;

/* The agent knows nothing of Raft or RPC: the dispatcher glue (node/dispatch.c)
 * hands it the node's assignment set and sends its status reports on.
 *
 * An assignment set is the list of this node's tasks (struct task_rec, as the
 * leader committed them) at a version (the Raft index of the newest change
 * among them). The agent keeps the last set it applied in
 * STATE_DIR/agent/assignments.msgpack (written atomically; msgpack through
 * task_schema, because the JSON codec leaves out the read-only and internal
 * fields: ServiceID, Slot, Status, DesiredState...), so after a restart it
 * keeps running its tasks with no manager reachable, and re-adopts their
 * containers (runtime/container.h re-adopts the processes; the agent finds
 * each task's container by the label com.docker.swarm.task.id).
 *
 * For each task:
 * - desired running, no container yet: create one (name
 *   "<service name>.<slot>.<task id>" for replicated tasks, "<service
 *   name>.<node id>.<task id>" for global; labels com.docker.swarm.task.id,
 *   com.docker.swarm.service.id, com.docker.swarm.service.name,
 *   com.docker.swarm.node.id, com.docker.swarm.task.name) from the task's
 *   ContainerSpec and Resources (Command -> Entrypoint, Args -> Cmd, Env, Dir,
 *   User, Hostname, Mounts, ReadOnly, StopSignal, StopGracePeriod,
 *   Healthcheck, Limits.MemoryBytes/NanoCPUs/Pids), and start it. Reports go
 *   accepted -> preparing -> starting -> running as it happens (Docker's
 *   states and messages: "accepted", "preparing", "starting", "started").
 *   An image that is not in the store: pulled first (image_pull), "preparing"
 *   meanwhile, one pull per image however many tasks wait for it (without
 *   cfg->pull: rejected "No such image: X"); a failed pull or create is state
 *   rejected with the error, a failed start is failed ("starting container
 *   failed: ..."). The service name is the task's label
 *   com.docker.swarm.service.name (the leader sets it), else the service id.
 *   A task whose desired state is below shutdown is run.
 * - the container exits: complete (exit 0) or failed ("task: non-zero exit
 *   (N)") with ContainerStatus.ExitCode. A task whose container has a health
 *   check stays starting until the check passes, then runs (as swarmkit
 *   does: the routing mesh sends only to running tasks); its running report
 *   carries the container's address. A health check that turns unhealthy
 *   fails the task too ("task: unhealthy container"), and the container is
 *   stopped.
 * - desired shutdown or remove: the container is stopped (its stop signal and
 *   grace period) and removed; state shutdown ("shutdown"). A task that is
 *   an endpoint of the routing mesh is stopped NODE_MESH_DRAIN_MS later.
 * - a container labelled with a task id that is not in the set (replaced
 *   while the node was cut off): stopped and removed, so no slot runs twice.
 *   Tasks that leave the set lose their container the same way (no report).
 * - after a restart, a task whose container is found running is reported
 *   running ("started"); one whose container exited is complete or failed as
 *   above; a task the leader had seen running whose container is gone fails
 *   ("task: the container is gone").
 *
 * At most one container operation (pull, start, stop, remove) is in flight
 * per task: a new set while a task starts does not start it twice, and a task
 * whose desired state became shutdown meanwhile is stopped once started.
 * The agent never restarts a container: the leader makes new tasks.
 *
 * The node's tasks start in parallel, at most AGENT_MAX_STARTS at a time (a
 * slot is held from the container's creation to the end of its start; a pull
 * holds none), and at most one start begins per turn of the loop: each does
 * synchronous work there (the runc driver: the rootfs mount, the bundle,
 * records written with fsync; ~25 ms on the 2-core bench machine) while runc
 * runs beside it, and the loop serves Raft, the API and the reports between
 * two. A task waiting for its start stays preparing, without a container.
 * Measured there with 100 replicas on one node (bench/services.sh): the time
 * to all running is the same within noise for 4, 8 or no bound (2: ~1.3x,
 * 1: ~2x longer), but the daemon's longest stall (an API ping answered late;
 * Raft heartbeats and reports wait as long) is ~0.1-0.2 s with 4, ~0.6 s with
 * 8 and ~3 s with no bound, the loop then doing the 100 starts' work in a
 * row (Raft's election timeout is 500 ms). Hence 4.
 *
 * Each task's observed state only moves forward, along the table in agent.c
 * (accepted -> preparing -> starting -> running -> complete/failed; rejected,
 * shutdown; adoption after a restart may skip steps).
 * Reports are coalesced per task (only the newest state is sent, so a
 * consumer sees a task's states in order but maybe not all of them) and handed
 * to @report in batches, at most every AGENT_REPORT_MS, one batch in flight at
 * a time: the next waits for the answer to the last (acked or refused), or
 * AGENT_RESEND_MS when none comes. So a batch is always built on the state the
 * last one left, and does not race it to the store (it would be refused as
 * out of sequence). A refused batch is sent again at the next tick; a report
 * not acked is sent again AGENT_RESEND_MS after it was sent, until acked or
 * superseded. */

#define AGENT_MAX_STARTS 4u
#define AGENT_REPORT_MS	 100
#define AGENT_RESEND_MS	 1000

/* The most tasks in one assignment set. */
#define AGENT_MAX_TASKS 10000u

/* A status report for one task. */
struct agent_report {
	char task_id[64];
	enum task_state state;
	char message[128];
	char err[512];
	char container_id[65];
	int64_t pid;
	int64_t exit_code;
	int64_t timestamp; /* ns */
	char addr[16];	   /* the container's IPv4 address once running; "" when none */
};

struct agent_config {
	uv_loop_t *loop;
	const char *state_dir; /* STATE_DIR/agent */
	const char *node_id;   /* kept, not copied: it may change in place (swarm_node_id()) */
	struct containers *containers;
	struct image_store *images;
	/* How to reach registries when a task's image is missing (copied
	 * pointers: must outlive the agent); NULL: no pulls, such tasks are
	 * rejected "No such image: X". */
	const struct image_pull_opts *pull;
	/* Send @n reports; call agent_reports_acked() with the same @batch
	 * token once the leader committed them (or never: they are re-sent). */
	void (*report)(void *arg, uint64_t batch, const struct agent_report *reports, size_t n);
	void *arg;
	/* Called instead of ctr_start(), with its contract (tests hold the
	 * answer to see the starts in flight); NULL: ctr_start(). */
	void (*start)(struct containers *cs, const char *id, ctr_cb cb, void *arg);
	/* The node's routing mesh: a task that is one of its endpoints is
	 * stopped NODE_MESH_DRAIN_MS after its desired state went to shutdown
	 * (node/node_mesh.h). NULL: no draining. */
	struct node_mesh *mesh;
};

struct agent;

/* Load the last applied assignment set (if any) and apply it: re-adopt the
 * tasks' containers, remove those of tasks not in it. Strings and objects of
 * @cfg must outlive the agent (the strings are copied). Returns 0, or
 * SHOAL_EIO / SHOAL_EPROTO (the saved set cannot be read: remove the file) /
 * SHOAL_ENOMEM with nothing done. */
int agent_open(const struct agent_config *cfg, struct agent **out, struct shoal_err *err);
/* Stop acting; containers keep running. Operations in flight finish on their
 * own without the agent (a pull is cancelled). @cb when done (may be NULL),
 * from the loop; no @report call after agent_close(). Call before
 * ctr_close() and image_store_close(). */
void agent_close(struct agent *a, void (*cb)(void *arg), void *arg);

/* The version of the set last applied (0: none). */
uint64_t agent_version(const struct agent *a);

/* Apply a new assignment set (@tasks copied) at @version; an older or equal
 * version than the one applied is ignored (returns 0). Saved to disk before
 * acting. SHOAL_EINVAL for a bad set (a task without an id or with an id of
 * 64 bytes or more, an id twice, a task of another node, more than
 * AGENT_MAX_TASKS), SHOAL_EIO when it cannot be saved, SHOAL_ENOMEM: then
 * nothing changed. */
int agent_assign(struct agent *a, uint64_t version, const struct task_rec *const *tasks, size_t n,
		 struct shoal_err *err);

/* This node is not in a swarm (it left): stop and remove every task's
 * container, as Docker does, and forget the set, whose versions were that
 * swarm's (the next swarm's start over). */
void agent_leave(struct agent *a);

/* The leader committed batch @batch: those reports need no re-send. */
void agent_reports_acked(struct agent *a, uint64_t batch);
/* Batch @batch was refused (a write raced it: out of sequence): its reports
 * go again with the next batch, AGENT_REPORT_MS after the last was sent. */
void agent_reports_refused(struct agent *a, uint64_t batch);

/* Containers are the agent's to watch: the daemon routes ctr_config.on_event here. */
void agent_container_event(struct agent *a, const struct container *c, enum ctr_event ev);

#endif
