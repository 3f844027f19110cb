/* Consensus glue over canonical/raft with its libuv I/O. */
#include "raft/consensus.h"

#include <errno.h>
#include <fcntl.h>
#include <raft.h>
#include <raft/uv.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "raft/fsm_adapter.h"

/* Raft's open segments, each preallocated whole, a couple ahead of need. */
#define SEGMENT_SIZE (1024 * 1024)
/* Free space a write of raft needs in the log's file system besides its own
 * bytes: room for the next two segments. With less, a leader refuses changes
 * with an error that says why (raft_uv's own failure reads "I/O error"), and
 * every server holds raft's writes back until space returns: raft_uv 0.15
 * does not recover from failing to create a segment (a follower stays
 * behind until restarted). */
#define SPACE_RESERVE (2 * SEGMENT_SIZE)
/* A leader short of space hands leadership over at most this often. */
#define HANDOVER_INTERVAL_MS 5000
/* How often held writes look for space again. */
#define HOLD_RETRY_MS 200
/* A file kept in the log's directory while there is space and given up when
 * raft must write its metadata (term, vote) or start on a full disk: raft
 * 0.15 turns a failed metadata write into a state it never leaves
 * (unavailable; seen on a leader stepping down), and raft_uv cannot start
 * without a few KiB to probe the file system, then creates its first open
 * segments. raft_uv ignores files it does not know. */
#define RESERVE_NAME "shoal.reserve"
#define RESERVE_SIZE (3 * SEGMENT_SIZE + 256 * 1024)
/* Below this, the reserve goes before a metadata write. */
#define METADATA_ROOM (64 * 1024)

/* A write of raft held back while the log's disk is short of space: an
 * append (raft on a follower cannot refuse one), and the truncations and
 * snapshots raft asks for behind it, kept in raft's order. */
struct held {
	enum { HELD_APPEND, HELD_TRUNCATE, HELD_SNAPSHOT } kind;
	struct raft_io_append *append;
	const struct raft_entry *entries;
	unsigned n;
	raft_io_append_cb append_cb;
	raft_index index;
	unsigned trailing;
	struct raft_io_snapshot_put *put;
	const struct raft_snapshot *snapshot;
	raft_io_snapshot_put_cb put_cb;
	struct held *next;
};

struct consensus {
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct fsm_adapter adapter;
	uv_loop_t *loop;
	char *dir;
	/* raft_uv's own writers, wrapped by io_append() and friends. */
	int (*uv_append)(struct raft_io *io, struct raft_io_append *req,
			 const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
	int (*uv_truncate)(struct raft_io *io, raft_index index);
	int (*uv_snapshot_put)(struct raft_io *io, unsigned trailing,
			       struct raft_io_snapshot_put *req,
			       const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb);
	void (*uv_close)(struct raft_io *io, raft_io_close_cb cb);
	raft_io_close_cb io_close_cb; /* raft's, until it fired */
	int (*uv_set_term)(struct raft_io *io, raft_term term);
	int (*uv_set_vote)(struct raft_io *io, raft_id server_id);
	struct held *held, **held_tail; /* FIFO; held_tail points at the last next */
	char *reserve;			/* RESERVE_NAME in dir */
	bool has_reserve;
	uv_timer_t hold_timer; /* initialised once raft_init succeeded */
	uint64_t handover_ms;  /* when a leader short of space last handed over */
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

/* Free bytes in the log's file system, or ~0 if it cannot tell. */
static unsigned long long space_free(const struct consensus *c)
{
	struct statvfs st;

	if (statvfs(c->dir, &st) != 0)
		return ~0ULL;
	if (st.f_favail < 2)
		return 0;
	return (unsigned long long)st.f_bavail * st.f_frsize;
}

static struct consensus *io_owner(struct raft_io *io)
{
	return (struct consensus *)(void *)((char *)io - offsetof(struct consensus, io));
}

static size_t bufs_size(const struct raft_buffer bufs[], unsigned n)
{
	size_t size = 0;

	for (unsigned i = 0; i < n; i++)
		size += bufs[i].len;
	return size;
}

static size_t entries_size(const struct raft_entry entries[], unsigned n)
{
	size_t size = 0;

	for (unsigned i = 0; i < n; i++)
		size += entries[i].buf.len;
	return size;
}

/* Is there room for held write @h (truncations take none)? */
static bool held_fits(const struct consensus *c, const struct held *h)
{
	size_t len = 0;

	if (h->kind == HELD_APPEND)
		len = entries_size(h->entries, h->n);
	else if (h->kind == HELD_SNAPSHOT)
		len = bufs_size(h->snapshot->bufs, h->snapshot->n_bufs);
	else
		return true;
	return space_free(c) >= SPACE_RESERVE + len;
}

/* Keep RESERVE_SIZE bytes aside if there is room for them and more. */
static void reserve_take(struct consensus *c)
{
	int fd;

	if (c->has_reserve || space_free(c) < SPACE_RESERVE + RESERVE_SIZE)
		return;
	fd = open(c->reserve, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (posix_fallocate(fd, 0, RESERVE_SIZE) == 0 && fsync(fd) == 0)
		c->has_reserve = true;
	close(fd);
	if (!c->has_reserve)
		unlink(c->reserve);
}

static void reserve_release(struct consensus *c)
{
	if (unlink(c->reserve) == 0 || errno == ENOENT)
		c->has_reserve = false;
}

static int io_set_term(struct raft_io *io, raft_term term)
{
	struct consensus *c = io_owner(io);

	if (space_free(c) < METADATA_ROOM)
		reserve_release(c);
	return c->uv_set_term(io, term);
}

static int io_set_vote(struct raft_io *io, raft_id server_id)
{
	struct consensus *c = io_owner(io);

	if (space_free(c) < METADATA_ROOM)
		reserve_release(c);
	return c->uv_set_vote(io, server_id);
}

static void hold_retry(uv_timer_t *t);

static int hold(struct consensus *c, const struct held *h)
{
	struct held *copy = malloc(sizeof *copy);

	if (copy == NULL)
		return RAFT_NOMEM;
	*copy = *h;
	copy->next = NULL;
	*c->held_tail = copy;
	c->held_tail = &copy->next;
	if (!uv_is_active((uv_handle_t *)&c->hold_timer))
		uv_timer_start(&c->hold_timer, hold_retry, HOLD_RETRY_MS, HOLD_RETRY_MS);
	return 0;
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
		     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
	struct consensus *c = io_owner(io);
	struct held h = {
	    .kind = HELD_APPEND, .append = req, .entries = entries, .n = n, .append_cb = cb};

	if (c->held == NULL && held_fits(c, &h))
		return c->uv_append(io, req, entries, n, cb);
	return hold(c, &h);
}

static int io_truncate(struct raft_io *io, raft_index index)
{
	struct consensus *c = io_owner(io);

	if (c->held == NULL)
		return c->uv_truncate(io, index);
	return hold(c, &(struct held){.kind = HELD_TRUNCATE, .index = index});
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			   const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
	struct consensus *c = io_owner(io);
	struct held h = {.kind = HELD_SNAPSHOT,
			 .trailing = trailing,
			 .put = req,
			 .snapshot = snapshot,
			 .put_cb = cb};

	if (c->held == NULL && held_fits(c, &h))
		return c->uv_snapshot_put(io, trailing, req, snapshot, cb);
	return hold(c, &h);
}

/* Hand the held writes to raft_uv, in order, while there is space. */
static void hold_retry(uv_timer_t *t)
{
	struct consensus *c = t->data;
	struct held *h;
	int rv;

	while ((h = c->held) != NULL) {
		if (!held_fits(c, h))
			return;
		c->held = h->next;
		if (c->held == NULL)
			c->held_tail = &c->held;
		switch (h->kind) {
		case HELD_APPEND:
			rv = c->uv_append(&c->io, h->append, h->entries, h->n, h->append_cb);
			if (rv != 0)
				h->append_cb(h->append, rv);
			break;
		case HELD_TRUNCATE:
			/* raft_uv refuses one only when out of memory. */
			(void)c->uv_truncate(&c->io, h->index);
			break;
		case HELD_SNAPSHOT:
			rv =
			    c->uv_snapshot_put(&c->io, h->trailing, h->put, h->snapshot, h->put_cb);
			if (rv != 0)
				h->put_cb(h->put, rv);
			break;
		}
		free(h);
	}
	uv_timer_stop(&c->hold_timer);
	reserve_take(c);
}

/* raft_uv 0.15 may fire its close callback twice (seen with the log on
 * tmpfs: raft then frees its state twice): pass the first call on. */
static void io_closed(struct raft_io *io)
{
	struct consensus *c = io_owner(io);
	raft_io_close_cb cb = c->io_close_cb;

	c->io_close_cb = NULL;
	if (cb != NULL)
		cb(io);
}

/* raft is closing its I/O: what is held will never be written. */
static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct consensus *c = io_owner(io);
	struct held *h;

	uv_timer_stop(&c->hold_timer);
	while ((h = c->held) != NULL) {
		c->held = h->next;
		if (h->kind == HELD_APPEND)
			h->append_cb(h->append, RAFT_CANCELED);
		else if (h->kind == HELD_SNAPSHOT)
			h->put_cb(h->put, RAFT_CANCELED);
		free(h);
	}
	c->held_tail = &c->held;
	c->io_close_cb = cb;
	c->uv_close(io, io_closed);
}

int consensus_start(struct consensus **out, uv_loop_t *loop, const struct consensus_config *cfg,
		    enum consensus_mode mode, struct shoal_err *err)
{
	struct consensus *c;
	struct stat st;
	int rv;

	PRE(cfg->id != 0);
	rv = fs_mkdir_p(cfg->dir, 0700, err);
	if (rv != 0)
		return rv;
	c = calloc(1, sizeof *c);
	if (c != NULL) {
		c->dir = strdup(cfg->dir);
		c->reserve = malloc(strlen(cfg->dir) + sizeof("/" RESERVE_NAME));
	}
	if (c == NULL || c->dir == NULL || c->reserve == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory starting raft");
		goto err_alloc;
	}
	c->loop = loop;
	sprintf(c->reserve, "%s/%s", cfg->dir, RESERVE_NAME);
	c->has_reserve = stat(c->reserve, &st) == 0 && st.st_size == RESERVE_SIZE;
	/* Short of space: raft needs a little to start. */
	if (space_free(c) < SPACE_RESERVE)
		reserve_release(c);
	else
		reserve_take(c);

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
	raft_uv_set_segment_size(&c->io, SEGMENT_SIZE);
	c->uv_append = c->io.append;
	c->uv_truncate = c->io.truncate;
	c->uv_snapshot_put = c->io.snapshot_put;
	c->uv_close = c->io.close;
	c->uv_set_term = c->io.set_term;
	c->uv_set_vote = c->io.set_vote;
	c->io.set_term = io_set_term;
	c->io.set_vote = io_set_vote;
	c->io.append = io_append;
	c->io.truncate = io_truncate;
	c->io.snapshot_put = io_snapshot_put;
	c->io.close = io_close;
	c->held_tail = &c->held;
	raft_uv_set_connect_retry_delay(&c->io, 250);

	fsm_adapter_init(&c->adapter, &cfg->fsm);
	rv = raft_init(&c->raft, &c->io, &c->adapter.fsm, cfg->id, cfg->address);
	if (rv != 0) {
		rv = shoal_errf(err, status_from_raft(rv), "raft init: %s", raft_errmsg(&c->raft));
		goto err_io;
	}
	c->adapter.raft = &c->raft;
	c->raft.data = c;
	uv_timer_init(loop, &c->hold_timer);
	c->hold_timer.data = c;
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
	if (c != NULL) {
		free(c->reserve);
		free(c->dir);
	}
	free(c);
	return rv;
}

static void handed_over(void *arg, int status)
{
	(void)arg;
	(void)status;
}

/* This leader cannot take changes for lack of space: let a voter that may
 * have some lead (raft picks the most up to date one), at most every
 * HANDOVER_INTERVAL_MS so that a cluster short of space everywhere does not
 * churn. */
static void hand_over(struct consensus *c)
{
	uint64_t now = uv_now(c->loop);

	if (consensus_voters(c) < 2 || c->raft.transfer != NULL ||
	    (c->handover_ms != 0 && now - c->handover_ms < HANDOVER_INTERVAL_MS))
		return;
	c->handover_ms = now;
	consensus_transfer(c, 0, handed_over, c, NULL);
}

/* Refuse a new entry of @len bytes if the log's file system is too full to
 * take it safely (see SPACE_RESERVE). */
static int check_space(struct consensus *c, size_t len, struct shoal_err *err)
{
	unsigned long long avail = space_free(c), need = SPACE_RESERVE + len;

	if (avail >= need) {
		reserve_take(c);
		return 0;
	}
	hand_over(c);
	return shoal_errf(err, SHOAL_EIO,
			  "no space left on device for the raft log in %s: %llu KiB free, a change "
			  "needs %llu KiB (and an inode); free some space there",
			  c->dir, avail / 1024, (need + 1023) / 1024);
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
	rv = check_space(c, fsm_frame_size(len), err);
	if (rv != 0)
		return rv;
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
	rv = check_space(c, 0, err);
	if (rv != 0)
		return rv;
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
	*rv = check_space(c, 0, err);
	if (*rv != 0)
		return NULL;
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

static void hold_timer_closed(uv_handle_t *h)
{
	struct consensus *c = h->data;
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;

	free(c->reserve);
	free(c->dir);
	free(c);
	if (cb != NULL)
		cb(arg);
}

static void free_io(uv_timer_t *t)
{
	struct consensus *c = t->data;

	raft_uv_close(&c->io);
	close_transport(c);
	uv_close((uv_handle_t *)t, hold_timer_closed);
}

/* raft_uv may call io_closed() again after raft's close callback fired (see
 * there): free it, and this, on a later loop iteration. */
static void raft_closed(struct raft *r)
{
	struct consensus *c = r->data;

	uv_timer_start(&c->hold_timer, free_io, 0, 0);
}

void consensus_close(struct consensus *c, void (*cb)(void *arg), void *arg)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	raft_close(&c->raft, raft_closed);
}
