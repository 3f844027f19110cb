/* This node's membership of a swarm: the local state machine (inactive ->
 * pending -> active -> leaving -> inactive), its files in STATE_DIR/swarm, the
 * Raft consensus and the store it drives, and proposals to it. */
#ifndef SHOAL_NODE_SWARM_H
#define SHOAL_NODE_SWARM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/id.h"
#include "net/rpc.h"

struct store;
struct command;
struct node_rec;

/* Docker's LocalNodeState names, in the order a node moves through them. */
enum swarm_state {
	SWARM_INACTIVE, /* not part of a swarm */
	SWARM_PENDING,	/* Raft is starting or the initial records are not committed yet */
	SWARM_ACTIVE,	/* a manager serving the cluster state */
	SWARM_LEAVING,	/* Raft is shutting down; state is wiped next */
	SWARM_ERROR,	/* swarm state on disk, but Raft could not start: see swarm_error() */
	SWARM_CLOSED,	/* swarm_close() was called */
};

/* "inactive", "pending", "active", "leaving", "error", "closed". */
const char *swarm_state_name(enum swarm_state st);

struct swarm_config {
	const char *state_dir;	    /* the daemon's --state-dir */
	const char *hostname;	    /* reported as Description.Hostname */
	const char *listen_addr;    /* daemon --listen-addr, or NULL */
	const char *advertise_addr; /* daemon --advertise-addr, or NULL */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_interval; /* Raft entries between snapshots; 0: 10000 (Docker's) */
};

struct swarm;

/* Create the swarm object. If STATE_DIR/swarm holds a node's state, resume it:
 * same node id, same cluster, Raft replays its log. If Raft cannot start (its
 * port is taken, say) the node is in SWARM_ERROR and this still returns 0. */
int swarm_open(struct swarm **out, uv_loop_t *loop, const struct swarm_config *cfg,
	       struct shoal_err *err);

/* Stop Raft (if running) and free everything, then call @cb (may be NULL). */
void swarm_close(struct swarm *s, void (*cb)(void *arg), void *arg);

enum swarm_state swarm_state(const struct swarm *s);

/* Why the node is in SWARM_ERROR; "" otherwise. */
const char *swarm_error(const struct swarm *s);

/* The store: NULL unless the node is pending or active. */
const struct store *swarm_store(const struct swarm *s);

/* This node's ids and addresses; "" when inactive. */
const char *swarm_node_id(const struct swarm *s);
const char *swarm_advertise_addr(const struct swarm *s); /* "IP:port" */
const char *swarm_listen_addr(const struct swarm *s);
const char *swarm_hostname(const struct swarm *s);

/* True if this node is the Raft leader; *@leader_raft_id is the leader's Raft id, 0 if unknown. */
bool swarm_is_leader(const struct swarm *s, uint64_t *leader_raft_id);
uint64_t swarm_raft_id(const struct swarm *s);

/* Async completion: status 0 or a negative code, with the reason in @err. */
typedef void (*swarm_done_cb)(void *arg, int status, const struct shoal_err *err);

struct swarm_init_req {
	const char *listen_addr;    /* "HOST:PORT", "HOST" or NULL for 0.0.0.0:4377 */
	const char *advertise_addr; /* "IP[:PORT]" or NULL to pick this host's address */
	bool force_new_cluster;
};

/* Create a new swarm with this node as its only manager, or with
 * @force_new_cluster on an active node, make it the only voter of its cluster
 * keeping all the state. @cb fires once the cluster and node records are
 * committed. Errors found at once are returned (and @cb is not called):
 * SHOAL_ESTATE if already part of a swarm, SHOAL_EINVAL for bad addresses. */
int swarm_init(struct swarm *s, const struct swarm_init_req *req, swarm_done_cb cb, void *arg,
	       struct shoal_err *err);

struct swarm_join_req {
	const char *remote_addr;    /* a manager's "HOST:PORT" */
	const char *token;	    /* SHOAL-1-<root fingerprint>-<secret> */
	const char *listen_addr;    /* as for init */
	const char *advertise_addr; /* as for init */
	int availability;	    /* enum node_availability */
};

/* Join the swarm a manager at @req->remote_addr belongs to, as the token
 * says: worker or manager. @cb fires once this node is an active worker, or
 * a manager whose store holds its own node record. Errors found at once are
 * returned (SHOAL_ESTATE if already in a swarm, SHOAL_EINVAL for a malformed
 * token or address); the manager's refusal (a wrong or rotated token:
 * SHOAL_EINVAL) comes through @cb, with nothing changed here. */
int swarm_join(struct swarm *s, const struct swarm_join_req *req, swarm_done_cb cb, void *arg,
	       struct shoal_err *err);

/* A fresh Raft server id: random, non-zero, positive as an int64. */
uint64_t swarm_new_raft_id(void);

/* True if this node is a manager (Raft member serving the cluster state). */
bool swarm_is_manager(const struct swarm *s);

/* Docker's Status.State of node @n, as this manager sees it through gossip:
 * NODE_STATE_READY, NODE_STATE_DOWN or NODE_STATE_UNKNOWN (an int: enum node_state). */
int swarm_node_state(struct swarm *s, const struct node_rec *n);

/* The managers' cluster addresses this node knows ("IP:port"), for
 * Swarm.RemoteManagers; returns how many (at most @max). */
size_t swarm_remote_managers(const struct swarm *s, const char **out, size_t max);

/* Before a read on a follower manager: ask the leader for its commit index
 * and wait (at most SWARM_SYNC_TIMEOUT_MS) until this replica has applied
 * it, so a read sees every write acknowledged before it started, wherever it
 * was made. Then @cb runs (from the loop, or at once on the leader, a
 * worker, or with no leader known; after a timeout the read is served from
 * what is here). */
#define SWARM_SYNC_TIMEOUT_MS 2000
void swarm_sync(struct swarm *s, void (*cb)(void *arg), void *arg);

/* Leave the swarm: stop Raft and erase this node's swarm state. A manager
 * needs @force (Docker's rule). @cb fires once done. */
int swarm_leave(struct swarm *s, bool force, swarm_done_cb cb, void *arg, struct shoal_err *err);

/* Propose @cmd to Raft; @cb fires once it is committed and applied, with the
 * store's result (e.g. SHOAL_ECONFLICT), or an error. A follower forwards it
 * to the leader. SHOAL_ESTATE if not a manager; SHOAL_EUNAVAIL with Docker's
 * "The swarm does not have a leader" when no leader is known; through @cb
 * SHOAL_ETIMEDOUT when nothing answered within SWARM_PROPOSE_TIMEOUT_MS. */
#define SWARM_PROPOSE_TIMEOUT_MS 5000
int swarm_propose(struct swarm *s, const struct command *cmd, swarm_done_cb cb, void *arg,
		  struct shoal_err *err);

/* ---- Hooks for the services layer (node/dispatch.c) ---- */

#define SWARM_MAX_EXT_METHODS 8

/* What the services layer adds to the swarm. Methods are served to members
 * (certificate holders) on the cluster port beside the swarm's own; their
 * handlers get the swarm as their first argument (swarm_hooks_arg() gives
 * @arg back). @nudge hears every gossip nudge
 * the swarm does not use itself (may be NULL). */
struct swarm_hooks {
	struct rpc_method methods[SWARM_MAX_EXT_METHODS + 1]; /* ends with {NULL, NULL} */
	void (*nudge)(void *arg, const char *key, uint64_t version);
	void *arg;
};

/* Install @h (copied); set once, before members connect. */
void swarm_set_hooks(struct swarm *s, const struct swarm_hooks *h);
void *swarm_hooks_arg(struct swarm *s);

/* On the leader: append a barrier; @cb(arg, 0) once every entry committed
 * before it is applied (a new leader's store is then complete), or with an
 * error (lost leadership, closing). SHOAL_ESTATE when not the leader. */
int swarm_barrier(struct swarm *s, void (*cb)(void *arg, int status), void *arg,
		  struct shoal_err *err);

/* Spread a gossip nudge (@key printable, no spaces) if gossip runs. */
void swarm_nudge(struct swarm *s, const char *key, uint64_t version);

/* A worker calls @method on a manager over its manager connection (the one
 * its heartbeats use). Managers serve themselves and do not call this:
 * SHOAL_ESTATE on a manager, when not active, or when no manager is known. */
int swarm_call_manager(struct swarm *s, const char *method, const void *body, size_t len,
		       uint64_t timeout_ms, rpc_result_cb cb, void *arg, struct shoal_err *err);

/* A client calling another member at @addr (its cluster address, "IP:port")
 * with this node's certificate, e.g. a manager asking a node for its tasks'
 * logs. The caller closes it, before swarm_close(). SHOAL_ESTATE when this
 * node is not an active member. */
int swarm_member_client(struct swarm *s, const char *addr, struct rpc_client **out,
			struct shoal_err *err);

#endif
