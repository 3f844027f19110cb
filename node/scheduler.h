/* The leader's scheduler: places unassigned tasks on nodes, Docker swarmkit's way, in one pass. */
#ifndef SHOAL_NODE_SCHEDULER_H
#define SHOAL_NODE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/records.h"
#include "node/records_svc.h"
#include "node/store.h"

/* What a constraint's key names. Keys Docker does not know parse (Docker's
 * parser accepts any well-formed key) but no node satisfies them. */
enum sched_key {
	SCHED_KEY_NODE_ID,	/* node.id */
	SCHED_KEY_HOSTNAME,	/* node.hostname */
	SCHED_KEY_ROLE,		/* node.role: "worker" or "manager" */
	SCHED_KEY_OS,		/* node.platform.os */
	SCHED_KEY_ARCH,		/* node.platform.arch (x86_64 also matches amd64, ...) */
	SCHED_KEY_NODE_LABEL,	/* node.labels.KEY: the node's Spec.Labels */
	SCHED_KEY_ENGINE_LABEL, /* engine.labels.KEY: shoal has none, always absent */
	SCHED_KEY_UNKNOWN,
};

/* One placement constraint, "key==value" or "key!=value". */
struct sched_constraint {
	enum sched_key kind;
	bool equal;  /* "==" (else "!=") */
	char *key;   /* trimmed, as written */
	char *label; /* NODE_LABEL / ENGINE_LABEL: the part after the prefix, case-sensitive */
	char *value; /* trimmed; compared case-insensitively, like Docker */
};

/* Parse @expr with Docker's syntax: the first of "==", "!=" found splits it,
 * both sides are trimmed, the key must match [A-Za-z_][A-Za-z0-9-_.]+ and the
 * value [A-Za-z0-9:-_.*()?+[]\^$|/ ]+. On success *@out owns its strings: free
 * with sched_constraint_free(). Returns 0, SHOAL_ENOMEM, or SHOAL_EINVAL with
 * Docker's message ("constraint expected one operator from ==, !=", "key 'x y'
 * is invalid", "value '' is invalid"); then @out holds nothing. */
int sched_constraint_parse(const char *expr, struct sched_constraint *out, struct shoal_err *err);
/* Release what @c holds; accepts a zeroed constraint. */
void sched_constraint_free(struct sched_constraint *c);

/* Check every constraint of @l (the API's validation of Placement.Constraints).
 * Returns 0, SHOAL_ENOMEM, or SHOAL_EINVAL with Docker's message. */
int sched_constraints_check(const struct schema_strlist *l, struct shoal_err *err);

/* True if node @n satisfies constraint @c (Docker's NodeMatches for one). */
bool sched_constraint_match(const struct sched_constraint *c, const struct node_rec *n);

/* Parsed constraints of one task spec. */
struct sched_constraints {
	struct sched_constraint *items;
	size_t n;
	bool invalid; /* one did not parse: like Docker, the filter is then disabled */
};

/* Parse @l into @out (which then owns them: sched_constraints_free()). A
 * constraint that does not parse sets @out->invalid and leaves @out empty,
 * as Docker ignores the constraints of such a task. Returns 0 or SHOAL_ENOMEM. */
int sched_constraints_parse(const struct schema_strlist *l, struct sched_constraints *out,
			    struct shoal_err *err);
void sched_constraints_free(struct sched_constraints *c);
/* True if @n satisfies all of @c (true when @c is empty or invalid). */
bool sched_constraints_match(const struct sched_constraints *c, const struct node_rec *n);

/* Everything from outside the store; scheduler_run() reads no clock itself. */
struct sched_env {
	int64_t now_ns; /* Status.Timestamp and UpdatedAt of written tasks */
	/* Gossip liveness of @node_id: false when the node is down. */
	bool (*node_up)(void *arg, const char *node_id);
	void *arg;
};

struct sched_stats {
	size_t considered; /* tasks that wanted a node */
	size_t placed;	   /* tasks assigned to a node */
	size_t pending;	   /* tasks left pending: no node fits */
};

/* Place every task whose desired state is running and whose state is new,
 * allocated or pending, in one pass, appending its PUT to @out, which must be
 * empty (each PUT expects the task's current version, so a concurrent change
 * conflicts). Tasks without a node get one; tasks that came with one (global
 * services) are checked against it, as Docker does with preassigned tasks.
 *
 * Filters, in Docker's order: the node is ready (node_up, Status.State ready)
 * and active; the task's reservations fit what the node has left (its
 * Description.Resources minus the reservations of tasks assigned to it and not
 * yet ended); its constraints hold; fewer than Placement.MaxReplicas of the
 * service's active tasks run there. Among nodes that pass: fewest tasks of
 * the service, then fewest tasks, then lowest id; counts follow the pass.
 *
 * A placed task gets NodeID, state assigned, "scheduler assigned task to
 * node". One that fits nowhere goes to state pending ("pending task
 * scheduling") with Docker's Status.Err, e.g. "no suitable node (scheduling
 * constraints not satisfied on 3 nodes; 1 node not available for new
 * tasks)", filters with most rejections first; it is written only when that
 * changes. At most COMMAND_MAX_OPS tasks are handled; @stats (may be NULL)
 * says how many wanted a node. Output is a function of the store and @env.
 * Returns 0, or SHOAL_ENOMEM (then @out is empty). */
int scheduler_run(const struct store *s, const struct sched_env *env, struct command *out,
		  struct sched_stats *stats, struct shoal_err *err);

#endif
