/* Gossip membership for the daemon: see membership.h. */
#include "node/membership.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/log_limit.h"

enum key_phase {
	KEYS_STEADY,	/* primary seals, previous (if any) is dropped soon */
	KEYS_ACCEPTING, /* the new key opens packets; the old one still seals */
};

struct membership {
	uv_loop_t *loop;
	struct gossip *gossip;
	struct membership_config cfg;
	char node_id[ID_LEN + 1];
	struct gossip_keyring ring;	    /* what the gossip uses now */
	unsigned char next[GOSSIP_KEY_LEN]; /* KEYS_ACCEPTING: the key to switch to */
	enum key_phase phase;
	uv_timer_t key_timer;
	uv_timer_t linger_timer;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	unsigned handles;	  /* timers still open while closing */
	struct log_limit rejects; /* datagrams dropped, logged a few per kind */
};

static struct gossip_core *core(struct membership *m)
{
	return gossip_core(m->gossip);
}

static void member_changed(void *arg, const struct gossip_member *gm)
{
	struct membership *m = arg;

	if (strcmp(gm->id, m->node_id) == 0) {
		if (gm->state == GOSSIP_LEFT && m->cfg.removed != NULL && !m->closing)
			m->cfg.removed(m->cfg.arg);
		return;
	}
	log_debug("gossip", "member %s at %s is %s", gm->id, gm->addr,
		  gm->state == GOSSIP_ALIVE	? "alive"
		  : gm->state == GOSSIP_SUSPECT ? "suspect"
		  : gm->state == GOSSIP_DEAD	? "dead"
						: "left");
}

static void user_message(void *arg, const char *key, uint64_t version, const void *data, size_t len)
{
	struct membership *m = arg;

	(void)data;
	(void)len;
	if (m->cfg.nudge != NULL && !m->closing)
		m->cfg.nudge(m->cfg.arg, key, version);
}

/* Anyone can send to the gossip port: log each kind of drop a few times per
 * window, the sender named. */
static void rejected(void *arg, const char *from, const char *why)
{
	struct membership *m = arg;

	log_limited(&m->rejects, LOG_WARN, "gossip", "rejected a datagram from %s: %s", from, why);
}

static void apply_ring(struct membership *m)
{
	gossip_core_set_keyring(core(m), &m->ring);
	gossip_kick(m->gossip);
}

static void key_timer_fired(uv_timer_t *t)
{
	struct membership *m = t->data;

	if (m->phase == KEYS_ACCEPTING) {
		/* Everyone had time to get the new key: seal with it. */
		memcpy(m->ring.previous, m->ring.primary, GOSSIP_KEY_LEN);
		memcpy(m->ring.primary, m->next, GOSSIP_KEY_LEN);
		m->ring.has_previous = true;
		m->phase = KEYS_STEADY;
		sodium_memzero(m->next, sizeof m->next);
		apply_ring(m);
		log_info("gossip", "sealing with the new gossip key");
		uv_timer_start(&m->key_timer, key_timer_fired, MEMBERSHIP_KEY_DROP_MS, 0);
		return;
	}
	if (m->ring.has_previous) {
		sodium_memzero(m->ring.previous, sizeof m->ring.previous);
		m->ring.has_previous = false;
		apply_ring(m);
		log_info("gossip", "dropped the previous gossip key");
	}
}

int membership_start(struct membership **out, uv_loop_t *loop, const struct membership_config *cfg,
		     const unsigned char *primary, const unsigned char *previous,
		     struct shoal_err *err)
{
	struct membership *m = calloc(1, sizeof *m);
	struct gossip_config gc;
	int rv;

	if (m == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	m->loop = loop;
	m->cfg = *cfg;
	snprintf(m->node_id, sizeof m->node_id, "%s", cfg->node_id);
	memcpy(m->ring.primary, primary, GOSSIP_KEY_LEN);
	if (previous != NULL) {
		memcpy(m->ring.previous, previous, GOSSIP_KEY_LEN);
		m->ring.has_previous = true;
	}
	memset(&gc, 0, sizeof gc);
	gc.node_id = cfg->node_id;
	gc.advertise = cfg->advertise;
	gc.arg = m;
	gc.member_changed = member_changed;
	gc.user_message = user_message;
	gc.rejected = rejected;
	log_limit_init(&m->rejects, MEMBERSHIP_LOG_WINDOW_MS, MEMBERSHIP_LOG_BURST,
		       MEMBERSHIP_LOG_TOTAL, NULL, NULL);
	rv = gossip_start(&m->gossip, loop, cfg->bind, &gc, &m->ring, err);
	if (rv != 0) {
		sodium_memzero(m, sizeof *m);
		free(m);
		shoal_err_wrap(err, "start gossip on udp %s", cfg->bind);
		return rv;
	}
	uv_timer_init(loop, &m->key_timer);
	m->key_timer.data = m;
	uv_timer_init(loop, &m->linger_timer);
	m->linger_timer.data = m;
	if (m->ring.has_previous)
		uv_timer_start(&m->key_timer, key_timer_fired, MEMBERSHIP_KEY_DROP_MS, 0);
	*out = m;
	return 0;
}

int membership_join(struct membership *m, const char *const *seeds, size_t n, struct shoal_err *err)
{
	int rv;

	if (n > GOSSIP_MAX_SEEDS)
		n = GOSSIP_MAX_SEEDS;
	if (n == 0)
		return 0;
	rv = gossip_core_join(core(m), seeds, n, uv_now(m->loop), err);
	gossip_kick(m->gossip);
	return rv;
}

enum membership_status membership_status(struct membership *m, const char *node_id)
{
	const struct gossip_member *gm;

	if (strcmp(node_id, m->node_id) == 0)
		return MEMBERSHIP_UP;
	gm = gossip_core_member(core(m), node_id);
	if (gm == NULL)
		return MEMBERSHIP_UNKNOWN;
	return gm->state == GOSSIP_ALIVE || gm->state == GOSSIP_SUSPECT ? MEMBERSHIP_UP
									: MEMBERSHIP_DOWN;
}

void membership_set_keys(struct membership *m, const unsigned char *primary,
			 const unsigned char *previous)
{
	(void)previous;
	if (sodium_memcmp(primary, m->ring.primary, GOSSIP_KEY_LEN) == 0)
		return; /* the key we seal with already */
	if (m->phase == KEYS_ACCEPTING && sodium_memcmp(primary, m->next, GOSSIP_KEY_LEN) == 0)
		return; /* switching to it already */
	if (m->phase == KEYS_ACCEPTING) {
		/* A second rotation before the first finished: seal with the
		 * key we were switching to, accept the newest. */
		memcpy(m->ring.primary, m->next, GOSSIP_KEY_LEN);
	}
	memcpy(m->next, primary, GOSSIP_KEY_LEN);
	memcpy(m->ring.previous, primary, GOSSIP_KEY_LEN);
	m->ring.has_previous = true;
	m->phase = KEYS_ACCEPTING;
	apply_ring(m);
	log_info("gossip", "new gossip key: accepting it now, sealing with it in %u ms",
		 MEMBERSHIP_KEY_SWITCH_MS);
	uv_timer_start(&m->key_timer, key_timer_fired, MEMBERSHIP_KEY_SWITCH_MS, 0);
}

void membership_remove(struct membership *m, const char *node_id)
{
	gossip_core_remove(core(m), node_id, uv_now(m->loop));
	gossip_kick(m->gossip);
}

void membership_nudge(struct membership *m, const char *key, uint64_t version)
{
	struct shoal_err err;
	int rv = gossip_core_broadcast(core(m), key, version, NULL, 0, &err);

	if (rv != 0 && rv != SHOAL_ECONFLICT)
		log_warn("gossip", "spreading %s: %s", key, err.msg);
	gossip_kick(m->gossip);
}

uint64_t membership_rejected(struct membership *m)
{
	struct gossip_stats st;

	gossip_core_stats(core(m), &st);
	return st.rejected_seal;
}

static void timer_closed(uv_handle_t *h)
{
	struct membership *m = h->data;
	void (*cb)(void *) = m->close_cb;
	void *arg = m->close_arg;

	if (--m->handles > 0)
		return;
	sodium_memzero(m, sizeof *m);
	free(m);
	if (cb != NULL)
		cb(arg);
}

static void gossip_closed(void *arg)
{
	struct membership *m = arg;

	m->handles = 2;
	uv_close((uv_handle_t *)&m->key_timer, timer_closed);
	uv_close((uv_handle_t *)&m->linger_timer, timer_closed);
}

static void linger_done(uv_timer_t *t)
{
	struct membership *m = t->data;

	gossip_close(m->gossip, gossip_closed, m);
}

void membership_close(struct membership *m, bool leave, unsigned linger_ms, void (*cb)(void *arg),
		      void *arg)
{
	m->closing = true;
	m->close_cb = cb;
	m->close_arg = arg;
	uv_timer_stop(&m->key_timer);
	if (leave) {
		gossip_core_leave(core(m), uv_now(m->loop));
		gossip_kick(m->gossip);
	}
	uv_timer_start(&m->linger_timer, linger_done, leave ? linger_ms : 0, 0);
}
