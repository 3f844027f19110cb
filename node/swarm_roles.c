/* What keeps every node's role true to the store:
 *
 *   leader     Raft voters = nodes whose record says manager: adds the
 *              missing ones (raft_add, then raft_assign voter once caught
 *              up), removes the others, one change at a time; hands
 *              leadership over before removing itself.
 *   manager    its own record says worker: waits until the leader removed
 *              it from Raft (or SWARM_DEMOTE_GRACE_MS), then stops Raft and
 *              carries on as a worker. Renews its own certificate.
 *   worker     heartbeats to a manager every SWARM_HEARTBEAT_MS, or at once
 *              when gossip says the cluster changed: the answer carries the
 *              key ring, the managers, a certificate when one is due, and
 *              the role; a manager role starts Raft here (promotion).
 *   everyone   gossip membership, whose key ring follows the cluster record. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "node/command.h"
#include "node/membership.h"
#include "node/records.h"
#include "node/store.h"
#include "node/swarm_priv.h"

#define MAX_SERVERS 32

static void heartbeat_now(struct swarm *s);
static void role_tick(uv_timer_t *t);
static void heartbeat_tick(uv_timer_t *t);

/* Drop the connection to the manager asked (heartbeats, role checks); with
 * @rotate, ask the next manager next time. */
static void close_manager_rpc(struct swarm *s, bool rotate)
{
	if (s->heartbeat_rpc != NULL)
		rpc_client_close(s->heartbeat_rpc, NULL, NULL);
	s->heartbeat_rpc = NULL;
	if (rotate)
		s->heartbeat_next++;
}

/* --- gossip ----------------------------------------------------------------- */

/* Cut off: this node's record is gone (node rm). It stops taking part and
 * says so; `swarm leave` clears it. */
static void removed(struct swarm *s, const char *why)
{
	struct shoal_err err;

	if (s->closing || s->state != SWARM_ACTIVE || swarm_manager_role(s))
		return;
	swarm_stop_member(s, false);
	shoal_errf(&err, SHOAL_ESTATE,
		   "this node was removed from the swarm (%s); run `swarm leave`, then join again",
		   why);
	swarm_enter_error(s, &err);
}

static void on_nudge(void *arg, const char *key, uint64_t version)
{
	struct swarm *s = arg;

	if (strcmp(key, "cluster") == 0) {
		if (!swarm_manager_role(s) && s->state == SWARM_ACTIVE)
			heartbeat_now(s);
		return;
	}
	if (s->hooks.nudge != NULL)
		s->hooks.nudge(s->hooks.arg, key, version);
}

void swarm_nudge(struct swarm *s, const char *key, uint64_t version)
{
	if (s->members != NULL)
		membership_nudge(s->members, key, version);
}

int swarm_call_manager(struct swarm *s, const char *method, const void *body, size_t len,
		       uint64_t timeout_ms, rpc_result_cb cb, void *arg, struct shoal_err *err)
{
	if (s->closing || s->state != SWARM_ACTIVE || swarm_manager_role(s))
		return shoal_errf(err, SHOAL_ESTATE, "not an active worker");
	if (s->n_managers == 0)
		return shoal_errf(err, SHOAL_ESTATE, "no manager is known");
	if (s->heartbeat_rpc == NULL) {
		const char *addr = s->managers[s->heartbeat_next % s->n_managers];
		int rv = rpc_client_new(&s->heartbeat_rpc, s->loop, addr, STREAM_RPC, &s->sid, err);

		if (rv != 0) {
			s->heartbeat_next++;
			return rv;
		}
	}
	return rpc_client_call(s->heartbeat_rpc, method, body, len, (unsigned)timeout_ms, cb, arg,
			       NULL, err);
}

int swarm_member_client(struct swarm *s, const char *addr, struct rpc_client **out,
			struct shoal_err *err)
{
	if (s->closing || s->state != SWARM_ACTIVE)
		return shoal_errf(err, SHOAL_ESTATE, "this node is not an active swarm member");
	return rpc_client_new(out, s->loop, addr, STREAM_RPC, &s->sid, err);
}

static void on_removed(void *arg)
{
	struct swarm *s = arg;

	/* Ask a manager: the heartbeat's answer is the authority. */
	if (!swarm_manager_role(s) && s->state == SWARM_ACTIVE)
		heartbeat_now(s);
}

static int start_gossip(struct swarm *s, struct shoal_err *err)
{
	struct membership_config cfg = {
	    .node_id = s->node_id,
	    .bind = s->listen_addr,
	    .advertise = s->advertise_addr,
	    .nudge = on_nudge,
	    .removed = on_removed,
	    .arg = s,
	};
	const char *seeds[CLUSTER_MAX_MANAGERS];
	size_t n = 0;
	int rv;

	if (s->gossip_keys_len < CLUSTER_KEY_LEN)
		return shoal_errf(err, SHOAL_EPROTO, "no gossip key: %s/gossip.keys is missing",
				  s->swarm_dir);
	rv = membership_start(
	    &s->members, s->loop, &cfg, s->gossip_keys,
	    s->gossip_keys_len == 2 * CLUSTER_KEY_LEN ? s->gossip_keys + CLUSTER_KEY_LEN : NULL,
	    err);
	if (rv != 0) {
		s->members = NULL;
		return rv;
	}
	for (size_t i = 0; i < s->n_managers; i++)
		if (strcmp(s->managers[i], s->advertise_addr) != 0)
			seeds[n++] = s->managers[i];
	if (membership_join(s->members, seeds, n, err) != 0)
		log_warn("swarm", "gossip join: %s", err->msg);
	return 0;
}

int swarm_start_member(struct swarm *s, struct shoal_err *err)
{
	int rv = start_gossip(s, err);

	if (rv != 0)
		return rv;
	if (swarm_manager_role(s))
		uv_timer_start(&s->role_timer, role_tick, SWARM_ROLE_TICK_MS, SWARM_ROLE_TICK_MS);
	else
		uv_timer_start(&s->heartbeat_timer, heartbeat_tick, 0, SWARM_HEARTBEAT_MS);
	return 0;
}

static void members_closed(void *arg)
{
	struct swarm *s = arg;
	void (*next)(void *) = s->after_members;

	s->members_closing--;
	if (s->members_closing == 0 && next != NULL) {
		s->after_members = NULL;
		next(s);
	}
	swarm_maybe_free(s);
}

void swarm_stop_member(struct swarm *s, bool leave)
{
	uv_timer_stop(&s->role_timer);
	uv_timer_stop(&s->heartbeat_timer);
	close_manager_rpc(s, false);
	swarm_close_leader_rpc(s);
	if (s->members != NULL) {
		s->members_closing++;
		membership_close(s->members, leave, leave ? 500 : 0, members_closed, s);
	}
	s->members = NULL;
}

int swarm_node_state(struct swarm *s, const struct node_rec *n)
{
	if (strcmp(n->meta.id, s->node_id) == 0)
		return NODE_STATE_READY;
	if (s->members == NULL)
		return n->status.state;
	switch (membership_status(s->members, n->meta.id)) {
	case MEMBERSHIP_UP:
		return NODE_STATE_READY;
	case MEMBERSHIP_DOWN:
		return NODE_STATE_DOWN;
	default:
		return NODE_STATE_UNKNOWN;
	}
}

/* --- keys and managers ------------------------------------------------------ */

static void set_keys(struct swarm *s, const unsigned char *keys, size_t len)
{
	struct shoal_err err;

	if (len == s->gossip_keys_len && sodium_memcmp(keys, s->gossip_keys, len) == 0)
		return;
	memcpy(s->gossip_keys, keys, len);
	s->gossip_keys_len = len;
	if (swarm_save_keys(s, &err) != 0)
		log_error("swarm", "saving the gossip key ring: %s", err.msg);
	if (s->members != NULL)
		membership_set_keys(s->members, keys,
				    len == 2 * CLUSTER_KEY_LEN ? keys + CLUSTER_KEY_LEN : NULL);
}

static void set_managers(struct swarm *s, char list[][CLUSTER_ADDR_LEN], size_t n)
{
	struct shoal_err err;
	bool same = n == s->n_managers;

	for (size_t i = 0; same && i < n; i++)
		same = strcmp(list[i], s->managers[i]) == 0;
	if (same || n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		snprintf(s->managers[i], SWARM_ADDR_LEN, "%s", list[i]);
	s->n_managers = n;
	s->heartbeat_next = 0;
	if (swarm_save_state(s, &err) != 0)
		log_error("swarm", "saving the managers' addresses: %s", err.msg);
}

void swarm_refresh_from_store(struct swarm *s)
{
	const struct cluster_rec *c = s->store != NULL ? store_cluster(s->store) : NULL;
	char list[CLUSTER_MAX_MANAGERS][CLUSTER_ADDR_LEN];
	size_t n = 0;

	if (c == NULL)
		return;
	if (c->gossip_keys.len == CLUSTER_KEY_LEN || c->gossip_keys.len == 2 * CLUSTER_KEY_LEN)
		set_keys(s, c->gossip_keys.data, c->gossip_keys.len);
	for (size_t i = 0; i < store_node_count(s->store) && n < CLUSTER_MAX_MANAGERS; i++) {
		const struct node_rec *m = store_node_at(s->store, i);
		if (m->spec.role == NODE_ROLE_MANAGER && m->cluster_addr != NULL)
			snprintf(list[n++], CLUSTER_ADDR_LEN, "%s", m->cluster_addr);
	}
	set_managers(s, list, n);
}

/* Inside Raft's apply: note the change for the role timer; tell gossip of
 * removed nodes at once. */
void swarm_on_store_change(void *arg, enum record_table table, const char *id, uint64_t index)
{
	struct swarm *s = arg;

	(void)index;
	s->store_changed = true;
	if (table == RECORD_NODES && id != NULL && s->members != NULL &&
	    store_node_get(s->store, id) == NULL && strcmp(id, s->node_id) != 0)
		membership_remove(s->members, id);
}

/* --- worker: heartbeats and promotion --------------------------------------- */

static void promoted(struct swarm *s, uint64_t raft_id)
{
	_cleanup_free_ char *raft_dir = swarm_path(s->state_dir, "raft");
	struct shoal_err err;
	int rv;

	log_info("swarm", "promoted to manager; starting raft as server %llu",
		 (unsigned long long)raft_id);
	uv_timer_stop(&s->heartbeat_timer);
	close_manager_rpc(s, false);
	s->raft_id = raft_id;
	rv = raft_dir == NULL
		 ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
		 : fs_rm_rf(raft_dir, &err); /* a log from an earlier term as manager */
	if (rv == 0)
		rv = swarm_save_state(s, &err);
	if (rv == 0)
		rv = swarm_start_consensus(s, CONSENSUS_RESUME, &err);
	if (rv != 0) {
		shoal_err_wrap(&err, "promotion");
		swarm_enter_error(s, &err);
		return;
	}
	uv_timer_start(&s->role_timer, role_tick, SWARM_ROLE_TICK_MS, SWARM_ROLE_TICK_MS);
}

/* Take a certificate a manager issued us, after checking it. */
static int take_cert(struct swarm *s, const struct cert *c, struct shoal_err *err)
{
	int rv = cert_verify(c, s->cert.root_pk, clock_now_ns(), err);

	if (rv != 0)
		return rv;
	if (memcmp(c->root_pk, s->cert.root_pk, IDENTITY_PK_LEN) != 0 ||
	    strcmp(c->node_id, s->node_id) != 0 ||
	    memcmp(c->node_pk, s->node_key.pk, IDENTITY_PK_LEN) != 0)
		return shoal_errf(err, SHOAL_EPROTO, "the certificate is not this node's");
	s->cert = *c;
	return swarm_save_cert(s, err);
}

static void apply_grant(struct swarm *s, const struct grant *g)
{
	struct shoal_err err;

	set_keys(s, g->keys, g->keys_len);
	set_managers(s, (char(*)[CLUSTER_ADDR_LEN])g->managers, g->n_managers);
	if (g->has_cert) {
		if (take_cert(s, &g->cert, &err) != 0) {
			log_warn("swarm", "refusing the certificate a manager sent: %s", err.msg);
			return;
		}
		log_info("swarm", "new %s certificate, valid until %lld s",
			 cert_role_name(s->cert.role), (long long)(s->cert.not_after / 1000000000));
		/* Managers judge renewal by the certificate of the handshake:
		 * dial again with the new one. */
		close_manager_rpc(s, false);
	}
	if (g->role == CERT_ROLE_MANAGER && s->cert.role == CERT_ROLE_MANAGER && g->raft_id != 0)
		promoted(s, g->raft_id);
}

static void heartbeat_answered(void *arg, int status, const struct shoal_err *rerr,
			       const void *body, size_t len)
{
	struct swarm *s = arg;
	struct shoal_err err;
	struct grant g;

	s->heartbeat_inflight = false;
	if (s->closing || swarm_manager_role(s) || s->state != SWARM_ACTIVE)
		return;
	if (status == SHOAL_ENOTFOUND) {
		removed(s, rerr->msg);
		return;
	}
	if (status != 0) {
		/* Try the next manager next time. */
		log_debug("swarm", "heartbeat to %s: %s",
			  s->heartbeat_rpc != NULL ? rpc_client_addr(s->heartbeat_rpc) : "?",
			  rerr->msg);
		close_manager_rpc(s, true);
		return;
	}
	if (grant_decode(body, len, &g, &err) != 0) {
		log_warn("swarm", "heartbeat answer: %s", err.msg);
		return;
	}
	apply_grant(s, &g);
	sodium_memzero(&g, sizeof g);
}

/* A manager that has seen no leader for a while asks another manager what
 * its record says: a manager removed from Raft right after its demotion was
 * committed may never have received that entry. */
static void manager_check_answered(void *arg, int status, const struct shoal_err *rerr,
				   const void *body, size_t len)
{
	struct swarm *s = arg;
	struct shoal_err err;
	struct grant g;

	s->heartbeat_inflight = false;
	if (s->closing || !swarm_manager_role(s) || s->consensus == NULL)
		return;
	if (status != 0) {
		log_debug("swarm", "asking another manager for our role: %s", rerr->msg);
		close_manager_rpc(s, true);
		return;
	}
	if (grant_decode(body, len, &g, &err) == 0 && g.role == CERT_ROLE_WORKER) {
		log_info("swarm", "another manager says this node was demoted");
		s->told_demoted = true;
	}
	sodium_memzero(&g, sizeof g);
}

static void call_manager(struct swarm *s, rpc_result_cb cb)
{
	struct shoal_err err;
	struct buf body;
	int rv;

	if (s->heartbeat_inflight || s->n_managers == 0 || s->closing)
		return;
	if (s->heartbeat_rpc == NULL) {
		const char *addr = s->managers[s->heartbeat_next % s->n_managers];
		if (strcmp(addr, s->advertise_addr) == 0 && s->n_managers > 1)
			addr = s->managers[++s->heartbeat_next % s->n_managers];
		rv = rpc_client_new(&s->heartbeat_rpc, s->loop, addr, STREAM_RPC, &s->sid, &err);
		if (rv != 0) {
			log_warn("swarm", "heartbeat to %s: %s", addr, err.msg);
			s->heartbeat_next++;
			return;
		}
	}
	buf_init(&body);
	rv = empty_encode(&body, &err);
	if (rv == 0)
		rv = rpc_client_call(s->heartbeat_rpc, "heartbeat", body.data, body.len,
				     SWARM_RPC_TIMEOUT_MS, cb, s, NULL, &err);
	buf_free(&body);
	if (rv == 0)
		s->heartbeat_inflight = true;
	else
		log_warn("swarm", "heartbeat: %s", err.msg);
}

static void heartbeat_now(struct swarm *s)
{
	call_manager(s, heartbeat_answered);
}

static void heartbeat_tick(uv_timer_t *t)
{
	heartbeat_now(t->data);
}

/* --- manager: demotion, renewal --------------------------------------------- */

static bool is_voter(struct swarm *s, uint64_t id)
{
	struct consensus_server servers[MAX_SERVERS];
	size_t n = consensus_servers(s->consensus, servers, MAX_SERVERS);

	for (size_t i = 0; i < n; i++)
		if (servers[i].id == id)
			return servers[i].voter;
	return false;
}

static void demoted_stopped(void *arg)
{
	struct swarm *s = arg;
	_cleanup_free_ char *raft_dir = swarm_path(s->state_dir, "raft");
	struct shoal_err err;

	s->consensus = NULL;
	s->consensus_closing = false;
	store_free(s->store);
	s->store = NULL;
	if (s->closing) {
		swarm_closed_consensus(s);
		return;
	}
	if (raft_dir != NULL && fs_rm_rf(raft_dir, &err) != 0)
		log_warn("swarm", "removing the old raft log: %s", err.msg);
	if (swarm_save_state(s, &err) != 0)
		log_error("swarm", "saving state: %s", err.msg);
	if (s->state != SWARM_ACTIVE)
		return; /* leaving meanwhile */
	log_info("swarm", "demoted: carrying on as a worker");
	uv_timer_start(&s->heartbeat_timer, heartbeat_tick, 0, SWARM_HEARTBEAT_MS);
}

/* This manager's record says worker. */
static void demote_tick(struct swarm *s)
{
	const struct node_rec *self = store_node_get(s->store, s->node_id);
	uint64_t now = uv_now(s->loop);
	struct cert c;
	struct shoal_err err;
	int rv;

	if (s->demoted_since_ms == 0)
		s->demoted_since_ms = now;
	if (consensus_is_leader(s->consensus))
		return; /* the reconciler hands leadership over first */
	if (!s->told_demoted && is_voter(s, s->raft_id) &&
	    now - s->demoted_since_ms < SWARM_DEMOTE_GRACE_MS)
		return;
	s->told_demoted = false;
	rv = swarm_issue_cert(s, &c, s->node_id, CERT_ROLE_WORKER, s->node_key.pk, &err);
	if (rv != 0) {
		log_warn("swarm", "demotion: %s", err.msg);
		return;
	}
	(void)self;
	swarm_refresh_from_store(s);
	s->cert = c;
	if (swarm_save_cert(s, &err) != 0)
		log_error("swarm", "saving the worker certificate: %s", err.msg);
	s->demoted_since_ms = 0;
	uv_timer_stop(&s->role_timer);
	swarm_close_leader_rpc(s);
	swarm_stop_consensus(s, demoted_stopped);
}

static void renew_self(struct swarm *s)
{
	struct cert c;
	struct shoal_err err;
	int rv = swarm_issue_cert(s, &c, s->node_id, s->cert.role, s->node_key.pk, &err);

	if (rv == 0) {
		s->cert = c;
		rv = swarm_save_cert(s, &err);
	}
	if (rv != 0)
		log_warn("swarm", "renewing this manager's certificate: %s", err.msg);
	else
		log_info("swarm", "renewed this manager's certificate");
}

/* --- leader: the reconciler -------------------------------------------------- */

static void change_done(void *arg, int status)
{
	struct swarm *s = arg;

	s->change_inflight = false;
	if (status != 0 && status != SHOAL_ESHUTDOWN)
		log_warn("swarm", "raft membership change: %s", shoal_strerror(status));
}

static const struct node_rec *manager_by_raft_id(const struct store *st, uint64_t id)
{
	for (size_t i = 0; i < store_node_count(st); i++) {
		const struct node_rec *n = store_node_at(st, i);
		if (n->raft_id == id && n->spec.role == NODE_ROLE_MANAGER)
			return n;
	}
	return NULL;
}

static void reconcile(struct swarm *s)
{
	struct consensus_server servers[MAX_SERVERS];
	size_t n = consensus_servers(s->consensus, servers, MAX_SERVERS);
	struct shoal_err err;
	int rv;

	if (s->change_inflight)
		return;
	for (size_t i = 0; i < store_node_count(s->store); i++) {
		const struct node_rec *m = store_node_at(s->store, i);
		bool voter = false;
		if (m->spec.role != NODE_ROLE_MANAGER || m->raft_id == 0 || m->cluster_addr == NULL)
			continue;
		for (size_t k = 0; k < n; k++)
			if (servers[k].id == m->raft_id)
				voter = servers[k].voter;
		if (voter)
			continue;
		log_info("swarm", "adding manager %s (%s) to raft", m->meta.id, m->cluster_addr);
		rv = consensus_add_voter(s->consensus, m->raft_id, m->cluster_addr, change_done, s,
					 &err);
		if (rv == 0)
			s->change_inflight = true;
		else if (rv != SHOAL_EBUSY)
			log_warn("swarm", "adding manager %s: %s", m->meta.id, err.msg);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		if (manager_by_raft_id(s->store, servers[k].id) != NULL)
			continue;
		if (servers[k].id == s->raft_id) {
			log_info("swarm", "demoted: handing raft leadership over");
			rv = consensus_transfer(s->consensus, 0, change_done, s, &err);
		} else {
			log_info("swarm", "removing raft server %llu: no manager has it",
				 (unsigned long long)servers[k].id);
			rv = consensus_remove(s->consensus, servers[k].id, change_done, s, &err);
		}
		if (rv == 0)
			s->change_inflight = true;
		else if (rv != SHOAL_EBUSY)
			log_warn("swarm", "raft membership: %s", err.msg);
		return;
	}
}

static bool consensus_leader_known(struct swarm *s)
{
	uint64_t id;
	const char *addr;

	consensus_leader(s->consensus, &id, &addr);
	return id != 0;
}

static void role_tick(uv_timer_t *t)
{
	struct swarm *s = t->data;
	const struct node_rec *self;

	if (s->closing || s->consensus == NULL || s->consensus_closing ||
	    s->state != SWARM_ACTIVE || store_cluster(s->store) == NULL)
		return;
	if (s->store_changed) {
		s->store_changed = false;
		swarm_refresh_from_store(s);
		if (consensus_is_leader(s->consensus) && s->members != NULL)
			membership_nudge(s->members, "cluster", store_last_index(s->store));
	}
	if (consensus_leader_known(s)) {
		s->leaderless_since_ms = 0;
	} else if (s->leaderless_since_ms == 0) {
		s->leaderless_since_ms = uv_now(s->loop);
	} else if (uv_now(s->loop) - s->leaderless_since_ms > 3000) {
		call_manager(s, manager_check_answered);
	}
	self = store_node_get(s->store, s->node_id);
	if (self == NULL)
		return;
	if (self->spec.role == NODE_ROLE_WORKER || s->told_demoted) {
		demote_tick(s);
		if (s->consensus == NULL || s->consensus_closing)
			return;
	} else {
		s->demoted_since_ms = 0;
	}
	if (swarm_cert_due(s, &s->cert))
		renew_self(s);
	if (consensus_is_leader(s->consensus))
		reconcile(s);
}
