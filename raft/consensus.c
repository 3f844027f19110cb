/* Consensus glue over canonical/raft with its libuv I/O. */
#include "raft/consensus.h"

#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "raft/fsm_adapter.h"

struct consensus {
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct fsm_adapter adapter;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

/* One proposal: raft_apply -> committed and applied -> cb(0, result),
 * or leadership lost / shutdown -> cb(error). */
struct proposal {
	struct raft_apply req;
	consensus_apply_cb cb;
	void *arg;
};

static void close_transport(struct consensus *c)
{
	secure_transport_free(&c->transport);
}

static int status_from_raft(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return SHOAL_ENOTLEADER;
	case RAFT_SHUTDOWN:
	case RAFT_CANCELED:
		return SHOAL_ESHUTDOWN;
	case RAFT_NOMEM:
		return SHOAL_ENOMEM;
	case RAFT_NOSPACE:
	case RAFT_IOERR:
		return SHOAL_EIO;
	case RAFT_TOOBIG:
		return SHOAL_ETOOBIG;
	default:
		return SHOAL_EIO;
	}
}

/* True if raft_uv has written its metadata in @dir. */
static bool has_state(const char *dir)
{
	char path[4096];

	for (int i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/metadata%d", dir, i);
		if (fs_exists(path))
			return true;
	}
	return false;
}

int consensus_start(struct consensus **out, uv_loop_t *loop, const struct consensus_config *cfg,
		    enum consensus_mode mode, struct shoal_err *err)
{
	struct consensus *c;
	int rv;

	PRE(cfg->id != 0);
	rv = fs_mkdir_p(cfg->dir, 0700, err);
	if (rv != 0)
		return rv;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory starting raft");

	if (cfg->secure == NULL) {
		rv = shoal_errf(err, SHOAL_EINVAL, "raft needs the secure transport");
		goto err_alloc;
	}
	rv = secure_transport_init(&c->transport, cfg->secure, err);
	if (rv != 0)
		goto err_alloc;
	rv = raft_uv_init(&c->io, loop, cfg->dir, &c->transport);
	if (rv != 0) {
		rv = shoal_errf(err, status_from_raft(rv), "raft log in %s: %s", cfg->dir,
				c->io.errmsg);
		goto err_transport;
	}
	/* 8 MiB segments times three are wasteful for a cluster table. */
	raft_uv_set_segment_size(&c->io, 1024 * 1024);
	raft_uv_set_connect_retry_delay(&c->io, 250);

	fsm_adapter_init(&c->adapter, &cfg->fsm);
	rv = raft_init(&c->raft, &c->io, &c->adapter.fsm, cfg->id, cfg->address);
	if (rv != 0) {
		rv = shoal_errf(err, status_from_raft(rv), "raft init: %s", raft_errmsg(&c->raft));
		goto err_io;
	}
	c->adapter.raft = &c->raft;
	c->raft.data = c;
	raft_set_election_timeout(&c->raft,
				  cfg->election_timeout_ms ? cfg->election_timeout_ms : 500);
	raft_set_heartbeat_timeout(&c->raft,
				   cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 50);
	raft_set_snapshot_threshold(&c->raft,
				    cfg->snapshot_threshold ? cfg->snapshot_threshold : 1024);
	raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 256);
	raft_set_pre_vote(&c->raft, true);

	/* raft_bootstrap on a log with state fails (and leaks its encoded
	 * configuration in 0.15): only bootstrap an empty directory. */
	if (mode == CONSENSUS_BOOTSTRAP && has_state(cfg->dir))
		mode = CONSENSUS_RESUME;
	if (mode != CONSENSUS_RESUME) {
		struct raft_configuration conf;
		raft_configuration_init(&conf);
		rv = raft_configuration_add(&conf, cfg->id, cfg->address, RAFT_VOTER);
		if (rv == 0 && mode == CONSENSUS_BOOTSTRAP)
			rv = raft_bootstrap(&c->raft, &conf);
		else if (rv == 0)
			rv = raft_recover(&c->raft, &conf);
		raft_configuration_close(&conf);
		/* A directory with state already cannot be bootstrapped: resume it. */
		if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
			rv = shoal_errf(err, status_from_raft(rv), "raft %s: %s",
					mode == CONSENSUS_BOOTSTRAP ? "bootstrap" : "recover",
					raft_errmsg(&c->raft));
			goto err_raft;
		}
	}
	rv = raft_start(&c->raft);
	if (rv != 0) {
		const char *why = raft_errmsg(&c->raft);
		if (why == NULL || why[0] == '\0')
			why = c->io.errmsg[0] != '\0' ? c->io.errmsg : raft_strerror(rv);
		rv =
		    shoal_errf(err, status_from_raft(rv), "raft start (%s): %s", cfg->address, why);
		goto err_raft;
	}
	*out = c;
	return 0;

err_raft:
	/* raft_init succeeded: raft_close owns the teardown of io and transport. */
	c->closing = true;
	consensus_close(c, NULL, NULL);
	return rv;
err_io:
	raft_uv_close(&c->io);
err_transport:
	close_transport(c);
err_alloc:
	free(c);
	return rv;
}

static void proposal_done(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;

	p->cb(p->arg, status_from_raft(status), status == 0 ? result : NULL);
	free(p);
}

int consensus_propose(struct consensus *c, const void *data, size_t len, consensus_apply_cb cb,
		      void *arg, struct shoal_err *err)
{
	struct raft_buffer buf;
	struct proposal *p;
	int rv;

	if (len > CONSENSUS_MAX_COMMAND)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "a change of %zu bytes is larger than %u bytes", len,
				  CONSENSUS_MAX_COMMAND);

	if (c->closing)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the node is shutting down");
	if (raft_state(&c->raft) != RAFT_LEADER)
		return shoal_errf(err, SHOAL_ENOTLEADER, "this manager is not the raft leader");
	p = malloc(sizeof *p);
	buf.len = fsm_frame_size(len);
	buf.base = raft_malloc(buf.len);
	if (p == NULL || buf.base == NULL) {
		free(p);
		raft_free(buf.base);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory proposing a change");
	}
	fsm_frame_write(buf.base, data, len);
	p->req.data = p;
	p->cb = cb;
	p->arg = arg;
	rv = raft_apply(&c->raft, &p->req, &buf, 1, proposal_done);
	if (rv != 0) {
		raft_free(buf.base);
		free(p);
		return shoal_errf(err, status_from_raft(rv), "raft: %s", raft_strerror(rv));
	}
	return 0;
}

/* One barrier: raft_barrier -> every earlier entry applied -> cb(0). */
struct barrier {
	struct raft_barrier req;
	consensus_barrier_cb cb;
	void *arg;
};

static void barrier_done(struct raft_barrier *req, int status)
{
	struct barrier *b = req->data;

	b->cb(b->arg, status_from_raft(status));
	free(b);
}

int consensus_barrier(struct consensus *c, consensus_barrier_cb cb, void *arg,
		      struct shoal_err *err)
{
	struct barrier *b;
	int rv;

	if (c->closing)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the node is shutting down");
	b = malloc(sizeof *b);
	if (b == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	b->req.data = b;
	b->cb = cb;
	b->arg = arg;
	rv = raft_barrier(&c->raft, &b->req, barrier_done);
	if (rv != 0) {
		free(b);
		return shoal_errf(err, status_from_raft(rv), "raft barrier: %s", raft_strerror(rv));
	}
	return 0;
}

/* A membership change: raft_add -> committed -> raft_assign(VOTER) ->
 * committed -> cb(0); or raft_assign/raft_remove alone. Any failure -> cb(error). */
struct change {
	struct raft_change req;
	struct consensus *c;
	uint64_t id;
	bool then_assign_voter;
	consensus_change_cb cb;
	void *arg;
};

static void change_done(struct raft_change *req, int status)
{
	struct change *ch = req->data;
	int rv;

	if (status == 0 && ch->then_assign_voter && !ch->c->closing) {
		ch->then_assign_voter = false;
		rv = raft_assign(&ch->c->raft, &ch->req, ch->id, RAFT_VOTER, change_done);
		if (rv == 0)
			return;
		status = rv;
	}
	ch->cb(ch->arg, status_from_raft(status));
	free(ch);
}

/* A new change request, or NULL with the reason in *@rv and @err. */
static struct change *change_new(struct consensus *c, uint64_t id, consensus_change_cb cb,
				 void *arg, int *rv, struct shoal_err *err)
{
	struct change *ch;

	if (c->closing) {
		*rv = shoal_errf(err, SHOAL_ESHUTDOWN, "the node is shutting down");
		return NULL;
	}
	if (raft_state(&c->raft) != RAFT_LEADER) {
		*rv = shoal_errf(err, SHOAL_ENOTLEADER, "this manager is not the raft leader");
		return NULL;
	}
	ch = calloc(1, sizeof *ch);
	if (ch == NULL) {
		*rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		return NULL;
	}
	ch->req.data = ch;
	ch->c = c;
	ch->id = id;
	ch->cb = cb;
	ch->arg = arg;
	return ch;
}

static int change_failed(struct change *ch, int rv, const char *what, struct shoal_err *err)
{
	free(ch);
	return shoal_errf(err, rv == RAFT_CANTCHANGE ? SHOAL_EBUSY : status_from_raft(rv),
			  "raft %s: %s", what, raft_strerror(rv));
}

static bool in_configuration(struct consensus *c, uint64_t id)
{
	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		if (c->raft.configuration.servers[i].id == id)
			return true;
	return false;
}

int consensus_add_voter(struct consensus *c, uint64_t id, const char *address,
			consensus_change_cb cb, void *arg, struct shoal_err *err)
{
	int rv = 0;
	struct change *ch = change_new(c, id, cb, arg, &rv, err);

	if (ch == NULL)
		return rv;
	/* A server added earlier (a change cut short by a leader change) only
	 * needs the promotion. */
	if (in_configuration(c, id)) {
		rv = raft_assign(&c->raft, &ch->req, id, RAFT_VOTER, change_done);
		return rv == 0 ? 0 : change_failed(ch, rv, "assign", err);
	}
	ch->then_assign_voter = true;
	rv = raft_add(&c->raft, &ch->req, id, address, change_done);
	return rv == 0 ? 0 : change_failed(ch, rv, "add", err);
}

int consensus_demote(struct consensus *c, uint64_t id, consensus_change_cb cb, void *arg,
		     struct shoal_err *err)
{
	int rv = 0;
	struct change *ch = change_new(c, id, cb, arg, &rv, err);

	if (ch == NULL)
		return rv;
	rv = raft_assign(&c->raft, &ch->req, id, RAFT_SPARE, change_done);
	return rv == 0 ? 0 : change_failed(ch, rv, "assign", err);
}

int consensus_remove(struct consensus *c, uint64_t id, consensus_change_cb cb, void *arg,
		     struct shoal_err *err)
{
	int rv = 0;
	struct change *ch = change_new(c, id, cb, arg, &rv, err);

	if (ch == NULL)
		return rv;
	rv = raft_remove(&c->raft, &ch->req, id, change_done);
	return rv == 0 ? 0 : change_failed(ch, rv, "remove", err);
}

size_t consensus_servers(struct consensus *c, struct consensus_server *out, size_t max)
{
	size_t n = 0;

	for (unsigned i = 0; i < c->raft.configuration.n && n < max; i++) {
		const struct raft_server *srv = &c->raft.configuration.servers[i];
		out[n].id = srv->id;
		out[n].voter = srv->role == RAFT_VOTER;
		n++;
	}
	return n;
}

struct transfer {
	struct raft_transfer req;
	consensus_change_cb cb;
	void *arg;
};

static void transfer_done(struct raft_transfer *req)
{
	struct transfer *t = req->data;

	t->cb(t->arg, 0);
	free(t);
}

int consensus_transfer(struct consensus *c, uint64_t id, consensus_change_cb cb, void *arg,
		       struct shoal_err *err)
{
	struct transfer *t;
	int rv;

	if (c->closing)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the node is shutting down");
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	t->req.data = t;
	t->cb = cb;
	t->arg = arg;
	rv = raft_transfer(&c->raft, &t->req, id, transfer_done);
	if (rv != 0) {
		free(t);
		return shoal_errf(err, rv == RAFT_NOTLEADER ? SHOAL_ENOTLEADER : SHOAL_EBUSY,
				  "raft transfer: %s", raft_strerror(rv));
	}
	return 0;
}

unsigned consensus_voters(struct consensus *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		if (c->raft.configuration.servers[i].role == RAFT_VOTER)
			n++;
	return n;
}

bool consensus_is_leader(struct consensus *c)
{
	return !c->closing && raft_state(&c->raft) == RAFT_LEADER;
}

void consensus_leader(struct consensus *c, uint64_t *id, const char **address)
{
	raft_id lid = 0;
	const char *addr = NULL;

	if (!c->closing)
		raft_leader(&c->raft, &lid, &addr);
	*id = lid;
	*address = addr;
}

const char *consensus_state(struct consensus *c)
{
	if (c->closing)
		return "unavailable";
	switch (raft_state(&c->raft)) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	default:
		return "unavailable";
	}
}

uint64_t consensus_applied_index(struct consensus *c)
{
	return raft_last_applied(&c->raft);
}

uint64_t consensus_commit_index(struct consensus *c)
{
	return c->raft.commit_index;
}

void consensus_accept(struct consensus *c, struct stream *s)
{
	secure_transport_accept_or_close(!c->closing ? &c->transport : NULL, s);
}

static void raft_closed(struct raft *r)
{
	struct consensus *c = r->data;
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;

	raft_uv_close(&c->io);
	close_transport(c);
	free(c);
	if (cb != NULL)
		cb(arg);
}

void consensus_close(struct consensus *c, void (*cb)(void *arg), void *arg)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	raft_close(&c->raft, raft_closed);
}
