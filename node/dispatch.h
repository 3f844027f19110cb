/* The services layer's wiring: the leader's loops, assignment sets through gossip and RPC, status
 * reports. */
#ifndef SHOAL_NODE_DISPATCH_H
#define SHOAL_NODE_DISPATCH_H

#include <stdint.h>

#include <uv.h>

#include "lib/err.h"
#include "node/agent.h"
#include "node/node_mesh.h"
#include "node/swarm.h"
#include "node/task_logs.h"

/* DESIGN §3, as built:
 *
 * - The leader, every DISPATCH_TICK_MS while the store moved (or a restart
 *   delay ended): orchestrator_run(); if it has writes, propose them and wait
 *   for the commit; else scheduler_run(), likewise. One proposal at a time, so
 *   each pass sees the previous one applied; once it is, the next pass runs
 *   at once, not at the next tick.
 * - Assignment sets: a node's set is its tasks (NodeID = it) at a version, the
 *   highest Raft index among them. When a node's version moves, the leader
 *   spreads the gossip nudge "a.<node id>" at that version.
 * - A manager's agent takes its set from the local store as soon as the store
 *   holds the nudged version. A worker's agent asks a manager (RPC
 *   "assignments") when a nudge for it is newer than what it applied, and
 *   every DISPATCH_POLL_MS anyway (a missed nudge costs at most that).
 * - Status reports: a manager proposes them itself (forwarded to the leader
 *   by the swarm); a worker sends them to a manager (RPC "task_status"),
 *   which proposes them and answers once committed. A report only moves a
 *   task forward and only for the node the task is assigned to; the agent
 *   re-sends until acked, and at once a batch refused as out of sequence
 *   (agent_reports_refused()). */

#define DISPATCH_TICK_MS 50
#define DISPATCH_POLL_MS 2000

struct dispatch;

struct dispatch_config {
	uv_loop_t *loop;
	struct swarm *swarm;
	struct agent *agent;	/* this node's */
	struct task_logs *logs; /* this node's task logs, served to managers (RPC "task_logs") */
	struct node_mesh *mesh; /* this node's routing mesh: the table of each set goes there */
};

/* Install the swarm hooks (RPC methods, nudges) and start the tick. */
int dispatch_start(struct dispatch **out, const struct dispatch_config *cfg, struct shoal_err *err);
/* The agent, once it exists (it reports through dispatch_agent_report). */
void dispatch_set_agent(struct dispatch *d, struct agent *a);

/* Stop; @cb once pending proposals and calls have finished (may be NULL). */
void dispatch_close(struct dispatch *d, void (*cb)(void *arg), void *arg);

/* The agent's report callback (struct agent_config.report) with @arg = the dispatch. */
void dispatch_agent_report(void *arg, uint64_t batch, const struct agent_report *reports, size_t n);

#endif
