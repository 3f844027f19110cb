/* This node's part of the routing mesh: its subnet, routes to the others, the published ports. */
#ifndef SHOAL_NODE_NODE_MESH_H
#define SHOAL_NODE_NODE_MESH_H

#include <netinet/in.h>
#include <stdbool.h>

#include <uv.h>

#include "lib/err.h"
#include "node/mesh_table.h"
#include "runtime/container.h"

/* The dispatcher hands node_mesh_apply() the table that comes with each
 * assignment set (node/mesh_table.h), before the set itself, so a task's
 * container gets its address from the node's subnet. Applying:
 * - the subnet: the container network's gateway/prefix (ctr_net_set_bip);
 * - the routes: netw_routes_set(), when they changed;
 * - the ports: mesh_set(), every port at once;
 * and the table is kept in STATE_DIR/mesh.msgpack (written atomically) so a
 * restarted daemon serves the ports before any manager answers.
 *
 * Draining: a task leaving the mesh (its service's update, scale-down) is
 * still an endpoint on nodes that have not yet applied the table without it.
 * The agent therefore stops a task whose address is an endpoint in the
 * current or the previous table only NODE_MESH_DRAIN_MS after it was told to
 * (node_mesh_serving()): every node up gets a new table within a few tens of
 * milliseconds of its commit (a gossip nudge, then one RPC), so connections
 * are no longer sent there, and those in flight finish. */

#define NODE_MESH_DRAIN_MS 1000

struct node_mesh;

/* Load the saved table, if any, and apply it; published ports listen on
 * @bind (NULL: 0.0.0.0). @cs may be NULL (no container
 * networking: only the ports). Failures to apply are logged, not fatal: the
 * next table tries again. Returns 0, SHOAL_ENOMEM, or SHOAL_EIO / SHOAL_EPROTO
 * for a saved table that cannot be read (remove it). */
int node_mesh_open(uv_loop_t *loop, struct containers *cs, const char *state_dir, const char *bind,
		   struct node_mesh **out, struct shoal_err *err);
/* Stop serving the ports (routes stay: containers outlive the daemon); @cb
 * once closed (may be NULL). */
void node_mesh_close(struct node_mesh *m, void (*cb)(void *arg), void *arg);

/* Apply @t (copied) unless it equals the current table. Returns 0, or the
 * error of the part that failed (the others are applied, and the whole table
 * again with the next one). */
int node_mesh_apply(struct node_mesh *m, const struct mesh_table *t, struct shoal_err *err);
/* The node left its swarm: no ports, no routes, nothing saved. */
void node_mesh_leave(struct node_mesh *m);

/* Whether @addr is an endpoint of the current or the previous table. */
bool node_mesh_serving(const struct node_mesh *m, struct in_addr addr);

#endif
