/* The swarm's insides, shared by its three files:
 *   swarm.c        the local state machine, files, init, join, leave, close
 *   swarm_rpc.c    RPC served on the cluster port (join, heartbeat, renew,
 *                  propose) and proposals, forwarded to the leader if need be
 *   swarm_roles.c  what keeps roles true: the leader's reconciler (Raft
 *                  voters = manager nodes), a manager's own demotion, a
 *                  worker's heartbeats and promotion, certificate renewal,
 *                  gossip membership and its key ring
 * Nothing outside node/swarm*.c includes this. */
#ifndef SHOAL_NODE_SWARM_PRIV_H
#define SHOAL_NODE_SWARM_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "net/cert.h"
#include "net/identity.h"
#include "net/rpc.h"
#include "net/stream.h"
#include "node/cluster_msg.h"
#include "node/records.h"
#include "node/swarm.h"
#include "raft/consensus.h"

#define SWARM_DEFAULT_PORT 4377
#define SWARM_ADDR_LEN	   64

/* Docker's default NodeCertExpiry; a certificate is renewed once less than a
 * third of its life is left. Validity starts a minute early to absorb clock
 * skew between nodes. */
#define SWARM_CERT_TTL_NS      (90LL * 24 * 3600 * 1000000000)
#define SWARM_CERT_BACKDATE_NS (60LL * 1000000000)
#define SWARM_MIN_CERT_TTL_NS  (10LL * 1000000000)

#define SWARM_HEARTBEAT_MS    5000 /* a worker asks a manager for news this often */
#define SWARM_RPC_TIMEOUT_MS  3000 /* heartbeats and renewals */
#define SWARM_JOIN_TIMEOUT_MS 20000
#define SWARM_ROLE_TICK_MS    250  /* the reconciler's and demotion's poll */
#define SWARM_DEMOTE_GRACE_MS 5000 /* a demoted manager waits this long to be removed from Raft */

#define MSG_WORKER                                                                                \
	"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster " \
	"state. Please run this command on a manager node or promote the current node to a "      \
	"manager."
#define MSG_NO_LEADER_TEXT                                                                   \
	"The swarm does not have a leader. It's possible that too few managers are online. " \
	"Make sure more than half of the managers are online."
#define MSG_BAD_TOKEN "A valid join token is necessary to join this cluster"

struct membership;
struct store;

struct swarm {
	uv_loop_t *loop;
	struct swarm_hooks hooks;
	struct rpc_method member_methods[16 + SWARM_MAX_EXT_METHODS]; /* ours, then the hooks' */
	enum swarm_state state;
	char *state_dir;
	char *swarm_dir;
	char *hostname;
	char *cfg_listen;
	char *cfg_advertise;
	unsigned election_ms;
	unsigned heartbeat_ms;
	unsigned snapshot_interval;

	/* This node, from state.json. */
	char node_id[ID_LEN + 1];
	uint64_t raft_id;  /* 0 for a worker never promoted */
	bool bootstrapped; /* this node created the cluster: bootstrap Raft if its log is empty */
	char listen_addr[SWARM_ADDR_LEN];
	char advertise_addr[SWARM_ADDR_LEN];
	struct identity node_key;
	struct cert cert;	    /* this node's certificate (node.crt); its role is ours */
	struct stream_identity sid; /* key + certificate for every stream */
	struct secure_transport_config tcfg;
	struct stream_listener *listener; /* the cluster port, while a member */
	/* The managers' cluster addresses (state.json), for a worker's heartbeats. */
	char managers[CLUSTER_MAX_MANAGERS][SWARM_ADDR_LEN];
	size_t n_managers;
	/* The gossip key ring (swarm/gossip.keys): primary, then previous. */
	unsigned char gossip_keys[2 * CLUSTER_KEY_LEN];
	size_t gossip_keys_len;
	struct membership *members;
	unsigned members_closing;	  /* gossip instances still closing */
	void (*after_members)(void *arg); /* run once they are closed */

	/* Manager: Raft and the store it drives. */
	struct store *store;
	struct consensus *consensus;
	uv_timer_t settle_timer;
	uint64_t settle_deadline;
	bool settling;		/* a barrier or the initial proposal is in flight */
	bool consensus_closing; /* leave, demotion or force-new-cluster is stopping Raft */
	uv_timer_t stop_timer;	/* defers raft_close out of whatever callback asked for it */
	void (*after_stop)(void *arg);
	uv_timer_t role_timer;	   /* reconciler, demotion, renewal */
	bool change_inflight;	   /* a Raft membership change the reconciler asked for */
	bool store_changed;	   /* a node or the cluster record changed since the last tick */
	bool recovering;	   /* force-new-cluster: demote the other managers once settled */
	uint64_t demoted_since_ms; /* when this manager saw its record say worker; 0: not */
	uint64_t leaderless_since_ms;  /* when this manager lost sight of a leader; 0: has one */
	bool told_demoted;	       /* another manager says our record is a worker's */
	struct rpc_client *leader_rpc; /* forwards proposals to the leader */
	struct rpc_server *rpc_server; /* connections served on the cluster port */
	struct sync_wait *syncs;       /* reads waiting for this replica to catch up */
	uv_timer_t sync_timer;	       /* polls the applied index while any wait */

	/* Worker: heartbeats to a manager. */
	uv_timer_t heartbeat_timer;
	struct rpc_client *heartbeat_rpc;
	size_t heartbeat_next; /* index into managers of the one asked */
	bool heartbeat_inflight;

	/* A join in progress. */
	struct rpc_client *join_rpc;
	struct stream_identity join_sid;
	char join_fingerprint[FINGERPRINT_LEN + 1];

	unsigned open_timers;	   /* handles still to close on swarm_close */
	char error[SHOAL_ERR_LEN]; /* why the node is in SWARM_ERROR */

	/* The one init/join/leave operation in progress. */
	swarm_done_cb op_cb;
	void *op_arg;

	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

/* swarm.c */
void swarm_set_state(struct swarm *s, enum swarm_state to);
void swarm_op_finish(struct swarm *s, int status, const struct shoal_err *err);
void swarm_enter_error(struct swarm *s, const struct shoal_err *err);
int swarm_save_state(struct swarm *s, struct shoal_err *err);
int swarm_save_cert(struct swarm *s, struct shoal_err *err);
int swarm_save_keys(struct swarm *s, struct shoal_err *err);
int swarm_start_consensus(struct swarm *s, enum consensus_mode mode, struct shoal_err *err);
void swarm_stop_consensus(struct swarm *s, void (*next)(void *arg));
void swarm_maybe_free(struct swarm *s);
/* Raft is closed and the swarm is closing: release the rest. */
void swarm_closed_consensus(void *arg);
char *swarm_path(const char *a, const char *b);
bool swarm_manager_role(const struct swarm *s);

/* swarm_rpc.c */
/* A stream arrived on the cluster port for RPC or a join: serve it. */
void swarm_serve_rpc(struct swarm *s, struct stream *st);
/* The grant for node record @n: role, raft id, a certificate if @with_cert,
 * the key ring and the managers. Returns 0 or an error. */
struct node_rec;
int swarm_grant(struct swarm *s, const struct node_rec *n, bool with_cert, struct grant *g,
		struct shoal_err *err);
/* Issue a certificate for @node_id/@role/@node_pk with the cluster's
 * NodeCertExpiry (Docker's 90 days unless `swarm update` set it; at least
 * SWARM_MIN_CERT_TTL_NS), backdated a little for clock skew. Managers only. */
int swarm_issue_cert(struct swarm *s, struct cert *out, const char *node_id, enum cert_role role,
		     const unsigned char *node_pk, struct shoal_err *err);
/* Is certificate @c due for renewal: less than a third of its life left, or
 * longer-lived than the cluster's NodeCertExpiry now allows? */
bool swarm_cert_due(struct swarm *s, const struct cert *c);
/* Load the root key from the cluster record (managers only). */
int swarm_root_key(struct swarm *s, struct identity *root, struct shoal_err *err);
/* Run every waiting read now (the swarm is closing). */
void swarm_flush_syncs(struct swarm *s);
/* Close the client that forwards proposals (leader changed, leaving). */
void swarm_close_leader_rpc(struct swarm *s);

/* swarm_roles.c */
/* Start what every member runs besides Raft: gossip, and for a worker its
 * heartbeats; for a manager the role timer. */
int swarm_start_member(struct swarm *s, struct shoal_err *err);
/* Stop gossip (announcing a leave if @leave), heartbeats and role timer. */
void swarm_stop_member(struct swarm *s, bool leave);
/* A store change: keep the key ring and managers in step, nudge workers. */
void swarm_on_store_change(void *arg, enum record_table table, const char *id, uint64_t index);
/* Managers' list and key ring from the store, into @s (and its files). */
void swarm_refresh_from_store(struct swarm *s);

#endif
