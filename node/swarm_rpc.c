/* RPC served on the cluster port (join, heartbeat, renew, propose) and
 * proposals to Raft, forwarded to the leader when this manager follows.
 *
 * Who may call what:
 *   join       a joiner (STREAM_JOIN, no certificate) with a valid token
 *   heartbeat  any node whose record exists (a removed node is refused)
 *   renew      the same
 *   propose    a manager (certificate and record), to the leader only */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "node/command.h"
#include "node/records.h"
#include "node/store.h"
#include "node/swarm_priv.h"

/* --- proposals ------------------------------------------------------------- */

struct proposal {
	struct swarm *s;
	swarm_done_cb cb;
	void *arg;
	uv_timer_t timer;
	bool answered;
};

static void proposal_freed(uv_handle_t *h)
{
	free(h->data);
}

static void proposal_answer(struct proposal *p, int status, const struct shoal_err *err)
{
	if (p->answered)
		return;
	p->answered = true;
	p->cb(p->arg, status, status != 0 ? err : NULL);
}

static void proposal_done(void *arg, int status, void *result)
{
	struct proposal *p = arg;
	struct shoal_err err;

	if (status == 0)
		status = store_result_code(result);
	switch (status) {
	case 0:
		break;
	case SHOAL_ECONFLICT:
		shoal_errf(&err, status, "update out of sequence");
		break;
	case SHOAL_ENOTFOUND:
		shoal_errf(&err, status, "the object was removed meanwhile");
		break;
	case SHOAL_ENOTLEADER:
		shoal_errf(&err, status,
			   "leadership changed before the change was committed; retry");
		break;
	case SHOAL_ESHUTDOWN:
		shoal_errf(&err, status, "the node is shutting down");
		break;
	case SHOAL_EIO:
		shoal_errf(&err, status,
			   "raft could not write the change to its log in %s/raft: is that "
			   "disk full or failing?",
			   p->s->state_dir);
		break;
	default:
		shoal_errf(&err, status, "raft: %s", shoal_strerror(status));
		break;
	}
	proposal_answer(p, status, &err);
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, proposal_freed);
}

static void proposal_timeout(uv_timer_t *t)
{
	struct proposal *p = t->data;
	struct shoal_err err;

	/* Raft answers later (or when it closes); only the caller stops waiting. */
	shoal_errf(&err, SHOAL_ETIMEDOUT, "the change was not committed within %u ms. %s",
		   SWARM_PROPOSE_TIMEOUT_MS, MSG_NO_LEADER_TEXT);
	proposal_answer(p, SHOAL_ETIMEDOUT, &err);
}

/* Propose encoded command bytes to Raft here, on the leader. */
static int propose_local(struct swarm *s, const void *data, size_t len, swarm_done_cb cb, void *arg,
			 struct shoal_err *err)
{
	struct proposal *p = calloc(1, sizeof *p);
	int rv;

	if (p == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	p->s = s;
	p->cb = cb;
	p->arg = arg;
	rv = consensus_propose(s->consensus, data, len, proposal_done, p, err);
	if (rv != 0) {
		free(p);
		return rv;
	}
	uv_timer_init(s->loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, proposal_timeout, SWARM_PROPOSE_TIMEOUT_MS, 0);
	return 0;
}

struct forward {
	swarm_done_cb cb;
	void *arg;
};

static void forward_done(void *arg, int status, const struct shoal_err *rerr, const void *body,
			 size_t len)
{
	struct forward *f = arg;
	struct shoal_err err;

	(void)body;
	(void)len;
	if (status == SHOAL_EUNAVAIL || status == SHOAL_ETIMEDOUT) {
		shoal_errf(&err, status, "%s (the leader: %s)", MSG_NO_LEADER_TEXT, rerr->msg);
		rerr = &err;
	}
	f->cb(f->arg, status, status != 0 ? rerr : NULL);
	free(f);
}

void swarm_close_leader_rpc(struct swarm *s)
{
	if (s->leader_rpc != NULL)
		rpc_client_close(s->leader_rpc, NULL, NULL);
	s->leader_rpc = NULL;
}

/* The RPC client to the leader at @addr (a new one if the leader moved). */
static int leader_client(struct swarm *s, const char *addr, struct shoal_err *err)
{
	if (s->leader_rpc != NULL && strcmp(rpc_client_addr(s->leader_rpc), addr) != 0)
		swarm_close_leader_rpc(s);
	if (s->leader_rpc == NULL)
		return rpc_client_new(&s->leader_rpc, s->loop, addr, STREAM_RPC, &s->sid, err);
	return 0;
}

/* Send encoded command bytes to the leader at @addr. */
static int propose_forward(struct swarm *s, const char *addr, const void *data, size_t len,
			   swarm_done_cb cb, void *arg, struct shoal_err *err)
{
	struct forward *f;
	struct buf body;
	int rv;

	rv = leader_client(s, addr, err);
	if (rv != 0)
		return rv;
	f = malloc(sizeof *f);
	if (f == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	f->cb = cb;
	f->arg = arg;
	buf_init(&body);
	rv = propose_request_encode(data, len, &body, err);
	if (rv == 0)
		rv = rpc_client_call(s->leader_rpc, "propose", body.data, body.len,
				     SWARM_PROPOSE_TIMEOUT_MS, forward_done, f, NULL, err);
	buf_free(&body);
	if (rv != 0)
		free(f);
	return rv;
}

int swarm_propose(struct swarm *s, const struct command *cmd, swarm_done_cb cb, void *arg,
		  struct shoal_err *err)
{
	void *data = NULL;
	size_t len = 0;
	uint64_t leader = 0;
	const char *addr = NULL;
	int rv;

	if ((s->state != SWARM_ACTIVE && s->state != SWARM_PENDING) || !swarm_manager_role(s))
		return shoal_errf(err, SHOAL_ESTATE, "%s",
				  s->state == SWARM_ACTIVE ? MSG_WORKER
							   : "This node is not a swarm manager.");
	if (s->consensus == NULL || s->consensus_closing)
		return shoal_errf(err, SHOAL_EUNAVAIL, "raft is restarting; retry");
	consensus_leader(s->consensus, &leader, &addr);
	if (leader == 0 || addr == NULL)
		return shoal_errf(err, SHOAL_EUNAVAIL, "%s", MSG_NO_LEADER_TEXT);
	rv = command_encode(cmd, &data, &len, err);
	if (rv != 0)
		return rv;
	if (leader == s->raft_id)
		rv = propose_local(s, data, len, cb, arg, err);
	else
		rv = propose_forward(s, addr, data, len, cb, arg, err);
	free(data);
	return rv;
}

/* --- reads on followers ------------------------------------------------------ */

static const struct node_rec *caller_record(struct swarm *s, struct rpc_call *call);

/* One read waiting: for the leader's commit index (the RPC), then for this
 * replica to apply it (the sync timer), or for its deadline. Freed once its
 * read has run and its RPC has answered. */
struct sync_wait {
	struct swarm *s;
	void (*cb)(void *arg);
	void *arg;
	uint64_t target;
	uint64_t deadline_ms;
	bool rpc_done, fired;
	struct sync_wait *next;
};

static void sync_fire(struct swarm *s, struct sync_wait *w)
{
	struct sync_wait **p = &s->syncs;

	while (*p != NULL && *p != w)
		p = &(*p)->next;
	if (*p == w)
		*p = w->next;
	w->fired = true;
	w->cb(w->arg);
	if (w->rpc_done)
		free(w);
}

static void sync_tick(uv_timer_t *t)
{
	struct swarm *s = t->data;
	uint64_t now = uv_now(s->loop);
	uint64_t applied = s->consensus != NULL ? consensus_applied_index(s->consensus) : 0;
	struct sync_wait *w = s->syncs, *next;

	for (; w != NULL; w = next) {
		next = w->next;
		if ((w->rpc_done && applied >= w->target) || now >= w->deadline_ms ||
		    s->consensus == NULL)
			sync_fire(s, w);
	}
	if (s->syncs == NULL)
		uv_timer_stop(&s->sync_timer);
}

static void sync_answered(void *arg, int status, const struct shoal_err *err, const void *body,
			  size_t len)
{
	struct sync_wait *w = arg;
	struct shoal_err e;

	(void)err;
	w->rpc_done = true;
	if (w->fired) {
		free(w);
		return;
	}
	if (status != 0 || index_decode(body, len, &w->target, &e) != 0)
		w->target = 0; /* serve what is here */
	sync_tick(&w->s->sync_timer);
}

void swarm_sync(struct swarm *s, void (*cb)(void *arg), void *arg)
{
	struct sync_wait *w;
	struct shoal_err err;
	struct buf body;
	uint64_t leader = 0;
	const char *addr = NULL;
	int rv;

	if (!swarm_is_manager(s) || s->consensus == NULL || s->consensus_closing || s->closing ||
	    consensus_is_leader(s->consensus)) {
		cb(arg);
		return;
	}
	consensus_leader(s->consensus, &leader, &addr);
	w = calloc(1, sizeof *w);
	if (leader == 0 || addr == NULL || w == NULL || leader_client(s, addr, &err) != 0) {
		free(w);
		cb(arg);
		return;
	}
	w->s = s;
	w->cb = cb;
	w->arg = arg;
	w->deadline_ms = uv_now(s->loop) + SWARM_SYNC_TIMEOUT_MS;
	buf_init(&body);
	rv = empty_encode(&body, &err);
	if (rv == 0)
		rv = rpc_client_call(s->leader_rpc, "read_index", body.data, body.len,
				     SWARM_SYNC_TIMEOUT_MS, sync_answered, w, NULL, &err);
	buf_free(&body);
	if (rv != 0) {
		free(w);
		cb(arg);
		return;
	}
	w->next = s->syncs;
	s->syncs = w;
	if (!uv_is_active((uv_handle_t *)&s->sync_timer))
		uv_timer_start(&s->sync_timer, sync_tick, 2, 2);
}

void swarm_flush_syncs(struct swarm *s)
{
	while (s->syncs != NULL)
		sync_fire(s, s->syncs);
	uv_timer_stop(&s->sync_timer);
}

static void m_read_index(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	struct shoal_err err;
	struct buf out;
	int rv;

	if (empty_decode(body, len, &err) != 0) {
		rpc_reply(call, SHOAL_EPROTO, &err, NULL, 0);
		return;
	}
	if (caller_record(s, call) == NULL)
		return;
	if (!consensus_is_leader(s->consensus)) {
		rpc_reply(call, shoal_errf(&err, SHOAL_ENOTLEADER, "not the leader"), &err, NULL,
			  0);
		return;
	}
	buf_init(&out);
	rv = index_encode(consensus_commit_index(s->consensus), &out, &err);
	rpc_reply(call, rv, &err, out.data, out.len);
	buf_free(&out);
}

/* --- grants ---------------------------------------------------------------- */

int swarm_root_key(struct swarm *s, struct identity *root, struct shoal_err *err)
{
	const struct cluster_rec *c = s->store != NULL ? store_cluster(s->store) : NULL;

	if (c == NULL || c->root_secret_key.len != IDENTITY_SK_LEN ||
	    c->root_public_key.len != IDENTITY_PK_LEN)
		return shoal_errf(err, SHOAL_ESTATE,
				  "this manager does not hold the swarm's root key yet");
	memcpy(root->pk, c->root_public_key.data, IDENTITY_PK_LEN);
	memcpy(root->sk, c->root_secret_key.data, IDENTITY_SK_LEN);
	return 0;
}

static int64_t cert_ttl(struct swarm *s)
{
	const struct cluster_rec *c = s->store != NULL ? store_cluster(s->store) : NULL;
	int64_t ttl = c != NULL ? c->spec.ca_config.node_cert_expiry : 0;

	return ttl >= SWARM_MIN_CERT_TTL_NS ? ttl : SWARM_CERT_TTL_NS;
}

int swarm_issue_cert(struct swarm *s, struct cert *out, const char *node_id, enum cert_role role,
		     const unsigned char *node_pk, struct shoal_err *err)
{
	int64_t ttl = cert_ttl(s);
	int64_t backdate = ttl / 10 < SWARM_CERT_BACKDATE_NS ? ttl / 10 : SWARM_CERT_BACKDATE_NS;
	struct identity root;
	int rv = swarm_root_key(s, &root, err);

	if (rv == 0)
		rv = cert_issue(out, node_id, role, node_pk, clock_now_ns() - backdate, ttl, &root,
				err);
	sodium_memzero(&root, sizeof root);
	return rv;
}

bool swarm_cert_due(struct swarm *s, const struct cert *c)
{
	int64_t life = c->not_after - c->not_before;

	int64_t margin = life / 3;

	/* At least three heartbeats ahead, so one lost heartbeat never lets a
	 * short-lived certificate expire. */
	if (margin < 3LL * SWARM_HEARTBEAT_MS * 1000000)
		margin = 3LL * SWARM_HEARTBEAT_MS * 1000000;
	return c->not_after - clock_now_ns() < margin ||
	       life > cert_ttl(s) + 2 * SWARM_CERT_BACKDATE_NS;
}

int swarm_grant(struct swarm *s, const struct node_rec *n, bool with_cert, struct grant *g,
		struct shoal_err *err)
{
	const struct cluster_rec *c = store_cluster(s->store);
	int rv;

	memset(g, 0, sizeof *g);
	snprintf(g->node_id, sizeof g->node_id, "%s", n->meta.id);
	g->role = n->spec.role == NODE_ROLE_MANAGER ? CERT_ROLE_MANAGER : CERT_ROLE_WORKER;
	g->raft_id = g->role == CERT_ROLE_MANAGER ? n->raft_id : 0;
	if (c == NULL ||
	    (c->gossip_keys.len != CLUSTER_KEY_LEN && c->gossip_keys.len != 2 * CLUSTER_KEY_LEN))
		return shoal_errf(err, SHOAL_ESTATE, "the swarm has no gossip key yet");
	memcpy(g->keys, c->gossip_keys.data, c->gossip_keys.len);
	g->keys_len = c->gossip_keys.len;
	for (size_t i = 0; i < store_node_count(s->store); i++) {
		const struct node_rec *m = store_node_at(s->store, i);
		if (m->spec.role != NODE_ROLE_MANAGER || m->cluster_addr == NULL ||
		    g->n_managers == CLUSTER_MAX_MANAGERS)
			continue;
		snprintf(g->managers[g->n_managers++], CLUSTER_ADDR_LEN, "%s", m->cluster_addr);
	}
	/* A new manager's record may not be here yet (the leader committed it). */
	if (g->role == CERT_ROLE_MANAGER && n->cluster_addr != NULL &&
	    g->n_managers < CLUSTER_MAX_MANAGERS) {
		bool listed = false;
		for (size_t i = 0; i < g->n_managers; i++)
			listed = listed || strcmp(g->managers[i], n->cluster_addr) == 0;
		if (!listed)
			snprintf(g->managers[g->n_managers++], CLUSTER_ADDR_LEN, "%s",
				 n->cluster_addr);
	}
	if (!with_cert)
		return 0;
	if (n->public_key.len != IDENTITY_PK_LEN)
		return shoal_errf(err, SHOAL_EPROTO, "node %s has no public key", n->meta.id);
	rv = swarm_issue_cert(s, &g->cert, n->meta.id, g->role, n->public_key.data, err);
	g->has_cert = rv == 0;
	return rv;
}

static void reply_grant(struct rpc_call *call, struct swarm *s, const struct node_rec *n,
			bool with_cert)
{
	struct shoal_err err;
	struct grant g;
	struct buf body;
	int rv;

	buf_init(&body);
	rv = swarm_grant(s, n, with_cert, &g, &err);
	if (rv == 0)
		rv = grant_encode(&g, &body, &err);
	rpc_reply(call, rv, &err, body.data, body.len);
	sodium_memzero(&g, sizeof g);
	if (body.data != NULL)
		sodium_memzero(body.data, body.len);
	buf_free(&body);
}

/* --- join ------------------------------------------------------------------ */

struct pending_join {
	struct swarm *s;
	struct rpc_call *call;
	struct node_rec n;
};

static void join_committed(void *arg, int status, const struct shoal_err *err)
{
	struct pending_join *j = arg;

	if (status != 0) {
		rpc_reply(j->call, status, err, NULL, 0);
	} else {
		log_info("swarm", "node %s (%s) joined as a %s", j->n.meta.id,
			 j->n.description.hostname,
			 j->n.spec.role == NODE_ROLE_MANAGER ? "manager" : "worker");
		reply_grant(j->call, j->s, &j->n, true);
	}
	node_rec_free(&j->n);
	free(j);
}

static char *dup_text(const char *t)
{
	return strdup(t != NULL ? t : "");
}

/* The record of a node joining with @r as @role. */
static int joiner_record(const struct join_request *r, enum node_role role, struct node_rec *n,
			 struct shoal_err *err)
{
	char id[ID_LEN + 1], ip[CLUSTER_ADDR_LEN];
	int64_t now = clock_now_ns();
	int rv;

	rv = node_rec_defaults(n, err);
	if (rv != 0)
		return rv;
	id_new(id);
	snprintf(ip, sizeof ip, "%s", r->cluster_addr);
	ip[strcspn(ip, ":")] = '\0';
	n->meta.id = strdup(id);
	n->meta.created_at = n->meta.updated_at = now;
	n->spec.role = role;
	n->spec.availability = (enum node_availability)r->availability;
	n->description.hostname = dup_text(r->hostname);
	n->description.platform.architecture = dup_text(r->architecture);
	n->description.platform.os = dup_text(r->os);
	n->description.resources.nano_cpus = r->nano_cpus;
	n->description.resources.memory_bytes = r->memory_bytes;
	n->description.engine.engine_version = dup_text(r->engine_version);
	n->status.state = NODE_STATE_READY;
	n->status.addr = strdup(ip);
	n->cluster_addr = strdup(r->cluster_addr);
	if (role == NODE_ROLE_MANAGER) {
		n->raft_id = swarm_new_raft_id();
		n->manager_status.addr = strdup(r->cluster_addr);
	}
	n->public_key.data = malloc(IDENTITY_PK_LEN);
	if (n->public_key.data != NULL) {
		memcpy(n->public_key.data, r->node_pk, IDENTITY_PK_LEN);
		n->public_key.len = IDENTITY_PK_LEN;
	}
	if (n->meta.id == NULL || n->description.hostname == NULL ||
	    n->description.platform.architecture == NULL || n->description.platform.os == NULL ||
	    n->description.engine.engine_version == NULL || n->status.addr == NULL ||
	    n->cluster_addr == NULL || n->public_key.data == NULL ||
	    (role == NODE_ROLE_MANAGER && n->manager_status.addr == NULL))
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* Which role does @secret grant? -1: none. Both comparisons always run. */
static int token_role(const struct cluster_rec *c, const char *secret)
{
	char fp[FINGERPRINT_LEN + 1], worker[TOKEN_SECRET_LEN + 1], manager[TOKEN_SECRET_LEN + 1];
	bool w, m;

	if (c->join_tokens.worker == NULL || c->join_tokens.manager == NULL ||
	    join_token_parse(c->join_tokens.worker, fp, worker, NULL) != 0 ||
	    join_token_parse(c->join_tokens.manager, fp, manager, NULL) != 0)
		return -1;
	w = join_token_secret_equal(secret, worker);
	m = join_token_secret_equal(secret, manager);
	sodium_memzero(worker, sizeof worker);
	sodium_memzero(manager, sizeof manager);
	return m ? NODE_ROLE_MANAGER : w ? NODE_ROLE_WORKER : -1;
}

static unsigned manager_count(const struct store *st)
{
	unsigned n = 0;

	for (size_t i = 0; i < store_node_count(st); i++)
		n += store_node_at(st, i)->spec.role == NODE_ROLE_MANAGER;
	return n;
}

static void m_join(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	struct pending_join *j = NULL;
	struct join_request r;
	struct command cmd;
	struct shoal_err err;
	int role, rv;

	command_init(&cmd);
	if (rpc_call_peer(call)->purpose != STREAM_JOIN) {
		rv = shoal_errf(&err, SHOAL_EINVAL, "join is only served to joiners");
		goto out;
	}
	if (!swarm_is_manager(s) || store_cluster(s->store) == NULL) {
		rv = shoal_errf(&err, SHOAL_ESTATE,
				"this node is not an active manager of the swarm; join through "
				"another manager");
		goto out;
	}
	rv = join_request_decode(body, len, &r, &err);
	if (rv != 0)
		goto out;
	role = token_role(store_cluster(s->store), r.secret);
	sodium_memzero(r.secret, sizeof r.secret);
	if (role < 0) {
		log_warn("swarm", "join from %s refused: wrong or rotated token",
			 rpc_call_remote(call));
		rv = shoal_errf(&err, SHOAL_EINVAL, "%s", MSG_BAD_TOKEN);
		goto out;
	}
	if (role == NODE_ROLE_MANAGER && manager_count(s->store) >= CLUSTER_MAX_MANAGERS) {
		rv = shoal_errf(&err, SHOAL_EINVAL,
				"the swarm has %d managers already, the most it takes; join as a "
				"worker",
				CLUSTER_MAX_MANAGERS);
		goto out;
	}
	j = calloc(1, sizeof *j);
	if (j == NULL) {
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	j->s = s;
	j->call = call;
	rv = joiner_record(&r, (enum node_role)role, &j->n, &err);
	if (rv == 0)
		rv = command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_NEW, &j->n, &err);
	if (rv == 0)
		rv = swarm_propose(s, &cmd, join_committed, j, &err);
	if (rv == 0) {
		command_free(&cmd);
		return;
	}
	node_rec_free(&j->n);
	free(j);
out:
	command_free(&cmd);
	rpc_reply(call, rv, &err, NULL, 0);
}

/* --- heartbeat, renew ------------------------------------------------------ */

/* The caller's node record, or NULL with the reply sent. */
static const struct node_rec *caller_record(struct swarm *s, struct rpc_call *call)
{
	const struct stream_peer *peer = rpc_call_peer(call);
	const struct node_rec *n;
	struct shoal_err err;

	if (!peer->authenticated || peer->purpose != STREAM_RPC) {
		rpc_reply(call, shoal_errf(&err, SHOAL_EINVAL, "not allowed to a joiner"), &err,
			  NULL, 0);
		return NULL;
	}
	if (!swarm_is_manager(s) || store_cluster(s->store) == NULL) {
		rpc_reply(call, shoal_errf(&err, SHOAL_ESTATE, "this node is not a manager"), &err,
			  NULL, 0);
		return NULL;
	}
	n = store_node_get(s->store, peer->cert.node_id);
	if (n == NULL && !consensus_is_leader(s->consensus)) {
		/* Only the leader knows every committed record: a follower may
		 * not have applied a fresh join yet. */
		rpc_reply(call,
			  shoal_errf(&err, SHOAL_EUNAVAIL,
				     "node %s is not known to this manager yet",
				     peer->cert.node_id),
			  &err, NULL, 0);
		return NULL;
	}
	if (n == NULL) {
		rpc_reply(call,
			  shoal_errf(&err, SHOAL_ENOTFOUND, "node %s was removed from the swarm",
				     peer->cert.node_id),
			  &err, NULL, 0);
		return NULL;
	}
	if (n->public_key.len != IDENTITY_PK_LEN ||
	    memcmp(n->public_key.data, peer->cert.node_pk, IDENTITY_PK_LEN) != 0) {
		rpc_reply(
		    call,
		    shoal_errf(&err, SHOAL_EINVAL, "node %s holds another key", peer->cert.node_id),
		    &err, NULL, 0);
		return NULL;
	}
	return n;
}

static void m_heartbeat(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	const struct node_rec *n;
	const struct cert *c;
	struct shoal_err err;
	enum cert_role role;
	bool due;

	if (empty_decode(body, len, &err) != 0) {
		rpc_reply(call, SHOAL_EPROTO, &err, NULL, 0);
		return;
	}
	n = caller_record(s, call);
	if (n == NULL)
		return;
	c = &rpc_call_peer(call)->cert;
	role = n->spec.role == NODE_ROLE_MANAGER ? CERT_ROLE_MANAGER : CERT_ROLE_WORKER;
	/* Only the leader tells a manager its role: a lagging follower may
	 * still hold an old record (see manager_check_answered()). */
	if (c->role == CERT_ROLE_MANAGER && !consensus_is_leader(s->consensus)) {
		rpc_reply(call, shoal_errf(&err, SHOAL_EUNAVAIL, "ask the leader"), &err, NULL, 0);
		return;
	}
	due = c->role != role || swarm_cert_due(s, c);
	reply_grant(call, s, n, due);
}

static void m_renew(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	const struct node_rec *n;
	struct shoal_err err;

	if (empty_decode(body, len, &err) != 0) {
		rpc_reply(call, SHOAL_EPROTO, &err, NULL, 0);
		return;
	}
	n = caller_record(s, call);
	if (n != NULL)
		reply_grant(call, s, n, true);
}

/* --- propose --------------------------------------------------------------- */

static void forwarded_committed(void *arg, int status, const struct shoal_err *err)
{
	rpc_reply(arg, status, err, NULL, 0);
}

static void m_propose(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	const struct node_rec *n;
	const void *cmd;
	size_t cmd_len;
	struct shoal_err err;
	int rv;

	n = caller_record(s, call);
	if (n == NULL)
		return;
	if (n->spec.role != NODE_ROLE_MANAGER ||
	    rpc_call_peer(call)->cert.role != CERT_ROLE_MANAGER) {
		rpc_reply(call, shoal_errf(&err, SHOAL_EINVAL, "only managers propose changes"),
			  &err, NULL, 0);
		return;
	}
	rv = propose_request_decode(body, len, &cmd, &cmd_len, &err);
	if (rv == 0 && !consensus_is_leader(s->consensus))
		rv = shoal_errf(&err, SHOAL_ENOTLEADER,
				"leadership changed before the change was committed; retry");
	if (rv == 0)
		rv = propose_local(s, cmd, cmd_len, forwarded_committed, call, &err);
	if (rv != 0)
		rpc_reply(call, rv, &err, NULL, 0);
}

/* --- serving --------------------------------------------------------------- */

static const struct rpc_method join_methods[] = {
    {"join", m_join},
    {NULL, NULL},
};

static const struct rpc_method member_methods[] = {
    {"heartbeat", m_heartbeat},	  {"renew", m_renew}, {"propose", m_propose},
    {"read_index", m_read_index}, {NULL, NULL},
};

void swarm_set_hooks(struct swarm *s, const struct swarm_hooks *h)
{
	size_t n = 0, i;

	s->hooks = *h;
	for (i = 0; member_methods[i].name != NULL; i++)
		s->member_methods[n++] = member_methods[i];
	for (i = 0; i < SWARM_MAX_EXT_METHODS && h->methods[i].name != NULL; i++)
		s->member_methods[n++] = h->methods[i];
	s->member_methods[n] = (struct rpc_method){NULL, NULL};
}

void *swarm_hooks_arg(struct swarm *s)
{
	return s->hooks.arg;
}

void swarm_serve_rpc(struct swarm *s, struct stream *st)
{
	struct shoal_err err;
	const struct rpc_method *methods =
	    stream_peer(st)->purpose == STREAM_JOIN
		? join_methods
		: (s->member_methods[0].name != NULL ? s->member_methods : member_methods);

	if (rpc_server_serve(s->rpc_server, st, methods, &err) != 0)
		log_warn("swarm", "serving RPC to %s: %s", stream_remote_addr(st), err.msg);
}
