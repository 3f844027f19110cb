/* The leader's orchestrator: reconciles services with their tasks (Docker swarmkit's rules). */
#ifndef SHOAL_NODE_ORCHESTRATOR_H
#define SHOAL_NODE_ORCHESTRATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/store.h"

struct service_rec;

#define ORCH_ID_LEN 25 /* ids from new_id: 25 characters of [0-9a-z], like lib/id.h */

/* Everything from outside the store; orchestrator_run() reads no clock and
 * draws no random numbers itself. */
struct orch_env {
	int64_t now_ns; /* CreatedAt/UpdatedAt and Status.Timestamp of what it writes */
	/* Gossip liveness of @node_id: false when the node is down. */
	bool (*node_up)(void *arg, const char *node_id);
	/* Write a fresh task id (ORCH_ID_LEN characters and a NUL) into @out. */
	void (*new_id)(void *arg, char out[ORCH_ID_LEN + 1]);
	void *arg;
	/* The cluster's TaskHistoryRetentionLimit (Docker's default 5); negative:
	 * keep every task. */
	int64_t history_limit;
};

/* Compare services with tasks and append to @out (which must be empty) the
 * task PUTs and DELETEs that reconcile them; @out stays empty when nothing is
 * to do. Each PUT of an existing task expects its current version, so a
 * concurrent change conflicts instead of being lost; new tasks expect NEW.
 * The output is a function of the store and @env: same input, same command.
 *
 * - Only a service's live tasks are kept: those whose Color ("blue" when
 *   NULL) is its Deployment.LiveColor ("blue" when NULL). The others belong
 *   to a blue/green deployment (node/updater.h): never restarted, scaled or
 *   counted here; they get desired remove when their service is gone, and
 *   their history is reaped per slot (per node) apart from the live tasks'.
 * - Replicated services keep slots 1..Replicas filled with a task desired
 *   running and not ended; a missing slot gets a new task (state new, desired
 *   running, the service's TaskTemplate and version, "created", the color
 *   orchestrator_task_color() gives). When more slots are filled than
 *   Replicas, the highest go (desired remove).
 * - Per slot the most advanced task is kept, the newest among equals, and the
 *   others get desired shutdown; but a newer task not yet running beside a
 *   running one is left alone (an update's start-first order): once it runs,
 *   the old one goes.
 * - A slot with no task kept but one desired shutdown still stopping (not
 *   ended, assigned or later) on a node that is up and not drained is
 *   occupied: its new task is made once that one stopped (stop-first).
 * - Global services keep one such task per node that is active, up and
 *   satisfies the placement constraints; a paused node keeps its task but gets
 *   none; tasks on other nodes get desired shutdown.
 * - A task that ended (complete, failed, rejected, shutdown, orphaned while
 *   desired running) is replaced per its restart policy: condition "any"
 *   always, "on-failure" unless it completed with exit code 0, "none" never;
 *   at most MaxAttempts replacements in the slot (within Window if set) for
 *   the same spec version. The replacement is made once Delay has passed
 *   since the task's Status.Timestamp, and the ended task's desired state
 *   becomes shutdown then (or at once when it is not replaced). A slot left
 *   empty that way is refilled only after the service changes (as Docker does
 *   on its next reconcile).
 * - A task desired running on a node that is down, drained or gone gets
 *   desired shutdown and its slot a new task at once.
 * - Tasks of a service that is gone get desired remove; tasks desired remove
 *   are deleted once ended, never scheduled, or their node is down or gone.
 * - Per slot (per node for global services) at most history_limit tasks are
 *   kept (MaxAttempts + 1 when MaxAttempts is set, as Docker does): the
 *   oldest ended ones are deleted.
 *
 * At most COMMAND_MAX_OPS operations are written; *@next_ns is then @now_ns,
 * else the earliest time a restart delay ends, else 0 (nothing to wait for).
 * Returns 0, or SHOAL_ENOMEM / SHOAL_EINVAL (new_id gave a bad id) with @out
 * empty. */
int orchestrator_run(const struct store *s, const struct orch_env *env, struct command *out,
		     int64_t *next_ns, struct shoal_err *err);

/* The color new tasks of @svc get: its live color once it deploys blue/green
 * (UpdateStrategy "blue-green") or has switched colors (LiveColor set), else
 * NULL. */
const char *orchestrator_task_color(const struct service_rec *svc);

/* Append to @out a PUT of a new task of @svc (expecting NEW): a fresh id from
 * @env->new_id, state new at @env->now_ns with "created", desired running,
 * the service's TaskTemplate and version, Slot @slot, NodeID @node_id (NULL:
 * for the scheduler), Color @color (may be NULL), the service name label.
 * Returns 0, SHOAL_EINVAL (new_id gave a bad id, or @out is full) or
 * SHOAL_ENOMEM. */
int orchestrator_put_task(const struct orch_env *env, const struct service_rec *svc, uint64_t slot,
			  const char *node_id, const char *color, struct command *out,
			  struct shoal_err *err);

#endif
