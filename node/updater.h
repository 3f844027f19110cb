/* The leader's updater: rolling updates, rollbacks and blue/green deployments, as one pure
 * function. */
#ifndef SHOAL_NODE_UPDATER_H
#define SHOAL_NODE_UPDATER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/orchestrator.h"
#include "node/records_svc.h"
#include "node/store.h"

/* Runs on the leader before the orchestrator, in the same pass (dispatch.c):
 * when it writes, the orchestrator waits for the next pass, so each sees the
 * other's writes applied. It moves services' UpdateStatus and Deployment and
 * tasks' desired states, and makes the new tasks an update needs beside a
 * running one (start-first, blue/green); the orchestrator refills emptied
 * slots from the service's TaskTemplate as always.
 *
 * Words:
 * - a task is *clean* when its Spec equals the service's TaskTemplate
 *   (msgpack encodings compared; ForceUpdate is part of it, so --force dirties
 *   every task), else *dirty*;
 * - *runnable*: desired state <= running and not ended (state <= running);
 * - colors: a task's color is Color, "blue" when NULL; the service's live
 *   color is Deployment.LiveColor, "blue" when NULL. Live tasks have the live
 *   color; the orchestrator keeps only those (restarts, scaling) and leaves
 *   the others to the updater; the routing mesh sends only to live tasks.
 * - a task is *updated* once running (the agent reports running only once a
 *   health check, if any, passed) and still running Monitor later
 *   (Status.Timestamp + Monitor <= now).
 *
 * Rolling (UpdateStrategy rolling or unset; global services always):
 * - Idle (UpdateStatus.State unset, "completed" or "rollback_completed") and
 *   a live runnable dirty task exists: State "updating", StartedAt now,
 *   CompletedAt unset, Message "update in progress".
 * - "paused" / "rollback_paused": nothing (`service update` clears the state
 *   and so resumes; `service rollback` rolls back).
 * - "updating" (UpdateConfig) / "rollback_started" (RollbackConfig), per
 *   group (a slot 1..Replicas; a node for global services) of live tasks:
 *   WAITING (a runnable dirty task, no runnable clean one), BUSY (a clean one
 *   not yet updated; a runnable clean one beside a runnable dirty one; a
 *   dirty one still stopping: desired shutdown, state assigned..running, on
 *   a node up and not drained; or nothing runnable and the newest task is a
 *   dirty one desired shutdown that stopped or never reached a node: the
 *   orchestrator is refilling the slot), DONE (a clean one updated and no
 *   runnable dirty one), FAILED (a clean task created since StartedAt failed
 *   or was rejected, and no clean one runs: not retried). Groups that have
 *   none of these (the orchestrator is restarting or refilling them) are none
 *   of them. A global service's groups are the nodes that are active, up and
 *   match its constraints; its tasks elsewhere are the orchestrator's to stop.
 *   - failures: clean tasks created since StartedAt that failed or were
 *     rejected (ID: the first, lowest slot first); when failures > 0 and
 *     failures / groups > MaxFailureRatio:
 *     FailureAction "pause": State "paused" ("rollback_paused"), Message
 *     "update paused due to failure or early termination of task ID"
 *     ("rollback paused due to ..."); "rollback" (only while updating, with
 *     a previous spec, else as pause): Spec and PreviousSpec swap, State
 *     "rollback_started", StartedAt now, Message "update rolled back due to
 *     failure or early termination of task ID"; "continue": go on.
 *   - at most Parallelism groups (0: all) are BUSY or cooling (DONE by a
 *     clean task created since StartedAt, less than Delay ago, DONE counted
 *     from its Status.Timestamp + Monitor); more WAITING groups start, lowest
 *     slot (node id) first: stop-first sets the dirty task desired shutdown
 *     (the orchestrator makes the new one once it stopped), start-first adds
 *     a clean task (the color orchestrator_task_color() gives) to the slot
 *     (on the node, for global) beside the running one (the orchestrator stops
 *     the old once the new runs); start-first on a dirty task that is not
 *     running yet stops it as stop-first does.
 *   - no WAITING and no BUSY group: State "completed" ("rollback_completed"),
 *     Message "update completed" ("rollback completed"), CompletedAt now.
 * - In every state, when the service's status does not change: tasks not of
 *   the live color still desired running (left from a blue/green
 *   deployment) get desired shutdown.
 * Blue/green (UpdateStrategy "blue-green", replicated; L = live color, O = the
 * other), by Deployment.State:
 * - unset, "completed", "rolled_back", "failed": O tasks still desired
 *   running (runnable or ended) get desired shutdown. When a live runnable dirty task exists: State
 *   "deploying", Message "starting the green set" (O's name), one new clean
 *   task colored O per slot 1..Replicas; UpdateStatus "updating" as above.
 * - "deploying" / "ready": an O task created since StartedAt that failed or
 *   was rejected: the O tasks get desired shutdown, Spec and PreviousSpec
 *   swap, Deployment.State "failed" with Message "green task ID failed: ERR;
 *   blue keeps serving", UpdateStatus "rollback_completed" with Docker's
 *   "update rolled back due to failure or early termination of task ID".
 *   (Without a PreviousSpec the specs stay.) Else every non-live task still
 *   desired running but one runnable clean O task per slot 1..Replicas (on
 *   an unassigned or fine node; the most advanced, the newest among equals)
 *   gets desired shutdown, and a slot without one gets a new one. When that
 *   wrote nothing and every slot 1..Replicas has a clean O task running:
 *   Promote "manual": State "ready" (once), Message "green is
 *   healthy: run `shoal service promote NAME`"; else (auto, and "ready" once
 *   the API set it to "promoted" it is not ours): LiveColor O, State
 *   "promoted", SwitchedAt now, Message "traffic switched to green".
 * - "promoted": once now >= SwitchedAt + Grace (SVC_BLUEGREEN_GRACE when 0),
 *   the non-live tasks get desired shutdown, State "completed", Message
 *   "blue removed", UpdateStatus "completed"/"update completed"/CompletedAt.
 *   (The API's rollback during the grace period flips LiveColor back, sets
 *   "rolled_back" and swaps the specs: no container starts.)
 *
 * Appends to @out (empty) at most COMMAND_MAX_OPS writes, each expecting the
 * record's current version (new tasks expect NEW); a service's status change
 * is written alone for that service in a pass (the next pass acts on it).
 * Service writes keep Meta.UpdatedAt (the orchestrator reads it as the time
 * of the last spec change) unless they swap the specs. *@next_ns: @env->now_ns when
 * the command filled up, else the earliest time a Monitor, Delay or Grace
 * ends, else 0. Returns 0, or SHOAL_ENOMEM / SHOAL_EINVAL (new_id gave a bad
 * id) with @out empty. Same input, same output. */
int updater_run(const struct store *s, const struct orch_env *env, struct command *out,
		int64_t *next_ns, struct shoal_err *err);

/* The color a task of @svc has, and the service's live one ("blue" when unset). */
const char *updater_task_color(const struct task_rec *t);
const char *updater_live_color(const struct service_rec *svc);
/* True when @t's Spec equals @svc's TaskTemplate. */
bool updater_task_clean(const struct service_rec *svc, const struct task_rec *t);

#endif
