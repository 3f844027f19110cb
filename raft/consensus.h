/* Consensus glue over canonical/raft with its libuv I/O: start (bootstrapping a
 * one-voter cluster or resuming from disk), propose commands, learn the leader,
 * close. Knows nothing of services; the state machine is a struct consensus_fsm. */
#ifndef SHOAL_RAFT_CONSENSUS_H
#define SHOAL_RAFT_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "raft/fsm.h"
#include "raft/transport.h"

struct consensus;

/* The largest command consensus_propose() takes. */
#define CONSENSUS_MAX_COMMAND (16u << 20)

struct consensus_config {
	uint64_t id;		      /* this server's Raft id, non-zero */
	const char *address;	      /* advertised "IPv4:port", stored in the Raft configuration */
	const char *dir;	      /* data directory, created 0700 if missing */
	unsigned election_timeout_ms; /* 0: 500 (a LAN: failover within 2 s) */
	unsigned heartbeat_timeout_ms; /* 0: 50 */
	unsigned snapshot_threshold;   /* entries between snapshots; 0: 1024 */
	unsigned snapshot_trailing;    /* entries kept after a snapshot; 0: 256 */
	struct consensus_fsm fsm;      /* the state machine; must outlive the consensus */
	/* Raft rides secure streams: the node's listener hands incoming
	 * STREAM_RAFT streams to consensus_accept(). Required. */
	const struct secure_transport_config *secure;
};

/* How to treat the data directory when starting. */
enum consensus_mode {
	CONSENSUS_RESUME,    /* use the state on disk as it is */
	CONSENSUS_BOOTSTRAP, /* an empty directory gets this server as the only voter;
				one with state is resumed */
	CONSENSUS_RECOVER,   /* force a new configuration of this server as the only
				voter onto the existing log (losing quorum recovery) */
};

/* Open the log in @cfg->dir and start serving. The FSM sees every entry
 * already on disk replayed before the first new one. */
int consensus_start(struct consensus **out, uv_loop_t *loop, const struct consensus_config *cfg,
		    enum consensus_mode mode, struct shoal_err *err);

/* Called once per proposal with 0 and the FSM's result once committed and
 * applied here, or with SHOAL_ENOTLEADER (leadership lost before commit; the
 * entry may or may not be committed later), SHOAL_ESHUTDOWN, or SHOAL_EIO. */
typedef void (*consensus_apply_cb)(void *arg, int status, void *result);

/* Propose the command @data (copied) to the log. Fails at once with
 * SHOAL_ENOTLEADER if this server is not the leader. */
int consensus_propose(struct consensus *c, const void *data, size_t len, consensus_apply_cb cb,
		      void *arg, struct shoal_err *err);

/* Called once every entry committed before the barrier is applied to the FSM,
 * with 0 or an error as for proposals. */
typedef void (*consensus_barrier_cb)(void *arg, int status);

/* Append a barrier (a no-op entry); only on the leader. */
int consensus_barrier(struct consensus *c, consensus_barrier_cb cb, void *arg,
		      struct shoal_err *err);

/* Membership changes, on the leader only. @cb fires once the configuration
 * change is committed, with 0 or an error as for proposals.
 * consensus_add_voter: raft_add (as a spare) then raft_assign(RAFT_VOTER), so
 * the new server catches up before it counts towards quorum. */
typedef void (*consensus_change_cb)(void *arg, int status);
int consensus_add_voter(struct consensus *c, uint64_t id, const char *address,
			consensus_change_cb cb, void *arg, struct shoal_err *err);
/* Make voter @id a spare (demotion keeps it replicating nothing). */
int consensus_demote(struct consensus *c, uint64_t id, consensus_change_cb cb, void *arg,
		     struct shoal_err *err);
int consensus_remove(struct consensus *c, uint64_t id, consensus_change_cb cb, void *arg,
		     struct shoal_err *err);
/* The servers of the current configuration (at most @max); returns how many. */
struct consensus_server {
	uint64_t id;
	bool voter; /* false: a spare or standby still catching up */
};
size_t consensus_servers(struct consensus *c, struct consensus_server *out, size_t max);
/* Hand leadership to voter @id (0: the most up-to-date one); @cb fires when
 * the transfer ended, whether or not it succeeded. Leader only. */
int consensus_transfer(struct consensus *c, uint64_t id, consensus_change_cb cb, void *arg,
		       struct shoal_err *err);
/* Number of voters in the current configuration. */
unsigned consensus_voters(struct consensus *c);

bool consensus_is_leader(struct consensus *c);

/* The current leader's id and address as this server knows them; id 0 and
 * address NULL when unknown. The address is valid until the next loop turn. */
void consensus_leader(struct consensus *c, uint64_t *id, const char **address);

/* "leader", "follower", "candidate" or "unavailable". */
const char *consensus_state(struct consensus *c);

/* An incoming STREAM_RAFT stream for this server; closed if it is closing. */
void consensus_accept(struct consensus *c, struct stream *s);

/* Index of the last entry applied to the FSM. */
uint64_t consensus_applied_index(struct consensus *c);
/* Index of the last entry known committed (the leader's is authoritative). */
uint64_t consensus_commit_index(struct consensus *c);

/* Stop Raft and free everything, then call @cb (may be NULL). Pending
 * proposals fail with SHOAL_ESHUTDOWN. Must not be called from inside a
 * consensus or FSM callback. */
void consensus_close(struct consensus *c, void (*cb)(void *arg), void *arg);

#endif
