/* Docker's service and task endpoints: ServiceSpec validation, the commands
 * that create, update and remove services, lookups, filters and JSON. */
#ifndef SHOAL_NODE_API_SERVICES_H
#define SHOAL_NODE_API_SERVICES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/records_svc.h"
#include "node/store.h"

/* Resolve @ref like Docker's getService(): an exact id, else a service whose
 * name is @ref, else a unique id prefix. Returns 0 with *@out set (owned by
 * the store), SHOAL_ENOTFOUND ("service X not found") or SHOAL_EINVAL
 * ("service X is ambiguous (2 matches found)"). */
int api_service_find(const struct store *st, const char *ref, const struct service_rec **out,
		     struct shoal_err *err);

/* The same for tasks (getTask()): exact id, then the task's name
 * ("web.1.<id>", "web.<node id>.<id>"), then a unique id prefix. */
int api_task_find(const struct store *st, const char *ref, const struct task_rec **out,
		  struct shoal_err *err);

/* POST /services/create: read the ServiceSpec @body over Docker's defaults,
 * validate it with Docker's messages (swarmkit's, "rpc error: code = ...
 * desc = ..."), name it when it has no name (Docker's "adjective_surname"
 * style), and append the PUT of service @id, stamped @now, to @cmd. Returns
 * 0, SHOAL_EINVAL (400), SHOAL_ECONFLICT (409: the name is taken) or
 * SHOAL_ENOMEM. Nothing is appended on error. */
int api_service_create_command(const struct store *st, json_t *body, const char *id, int64_t now,
			       struct command *cmd, struct shoal_err *err);

/* POST /services/{@ref}/update?version=@version_text[&rollback=@rollback]:
 * the body's spec replaces the service's (read over Docker's defaults, as a
 * create's), the old one becomes PreviousSpec. @rollback "previous" swaps
 * back to PreviousSpec instead and ignores @body (Docker's server-side
 * rollback); NULL or "" for a plain update. A blue-green service whose
 * Deployment.State is "deploying", "ready" or "promoted" rolls back at once:
 * the color that served before serves (LiveColor flips back when
 * "promoted"), Deployment.State "rolled_back", UpdateStatus
 * "rollback_completed"; the updater then stops the other color's tasks.
 * Mode kind and name cannot change. A version other than the service's current one is "update out
 * of sequence" (409), as for nodes. */
int api_service_update_command(const struct store *st, const char *ref, const char *version_text,
			       const char *rollback, json_t *body, int64_t now, struct command *cmd,
			       struct shoal_err *err);

/* POST /services/{@ref}/promote (shoal extension): a blue/green deployment
 * whose Deployment.State is "ready" (the new color's set runs, Promote
 * "manual") switches traffic at once: LiveColor becomes the other color,
 * State "promoted", SwitchedAt @now, Message "traffic switched to green by
 * request". Any other state is SHOAL_EINVAL (400): "service web has no green
 * set ready to promote (deployment: deploying)" ("none" when unset). The
 * PUT expects the service's current version. */
int api_service_promote_command(const struct store *st, const char *ref, int64_t now,
				struct command *cmd, struct shoal_err *err);

/* DELETE /services/{@ref}: the service's DELETE at its current version (its
 * tasks are the orchestrator's to remove). */
int api_service_remove_command(const struct store *st, const char *ref, struct command *cmd,
			       struct shoal_err *err);

/* Docker's Service object for @s: the Mode union, the empty objects Docker
 * always shows (Resources.Limits/Reservations, Placement, Endpoint.Spec),
 * and with @with_status ServiceStatus {RunningTasks, DesiredTasks,
 * CompletedTasks} counted from the store's tasks. NULL when out of memory. */
json_t *api_json_service(const struct store *st, const struct service_rec *s, bool with_status);

/* Docker's Task object. NULL when out of memory. */
json_t *api_json_task(const struct store *st, const struct task_rec *t);

/* GET /services?filters=@filters[&status=...]: a new JSON array into *@out.
 * Filters (Docker's JSON, {"name":{"web":true}} or {"name":["web"]}): id and
 * name (prefixes), label (key or key=value), mode (replicated, global).
 * Returns 0, SHOAL_EINVAL with Docker's message, or SHOAL_ENOMEM. */
int api_services_list(const struct store *st, const char *filters, bool with_status, json_t **out,
		      struct shoal_err *err);

/* GET /tasks?filters=@filters: id (prefix), name (prefix of the task's
 * name), label, service (id, name or id prefix: resolved like
 * api_service_find(), 404 if unknown), node (id or name, resolved like
 * store_node_find(); "self" is @self_id), desired-state (running, shutdown,
 * accepted: Docker's values). */
int api_tasks_list(const struct store *st, const char *self_id, const char *filters, json_t **out,
		   struct shoal_err *err);

#endif
