/* Unit tests of gossip: the core in a deterministic simulated network (virtual
 * time, loss, delay, partitions, a fixed PRNG seed), its decoder against
 * hostile packets, push-pull, and the libuv wrapper on real sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "net/gossip.h"

/* ---- the simulated network ---------------------------------------------- */

#define MAX_NODES  100
#define LATENCY_MS 1
#define NEVER	   UINT64_MAX
#define T0	   1000 /* virtual time starts here, so 0 can mean "not seen" */

struct sim;

struct delivery {
	char key[32];
	uint64_t version;
	unsigned count;
};

struct node {
	struct sim *sim;
	unsigned idx;
	char id[ID_LEN + 1];
	char addr[GOSSIP_ADDR_LEN];
	struct gossip_core *core;
	bool up; /* false: stopped, its timers do not run and packets to it are lost */
	uint64_t next_tick;
	unsigned group;	   /* packets cross no group boundary (partitions) */
	unsigned loss_pct; /* loss of the packets it sends and receives */
	unsigned delay_ms; /* extra latency of the packets it sends */
	/* What its callbacks saw. */
	uint64_t dead_seen[MAX_NODES]; /* virtual time member i was first seen DEAD */
	unsigned n_suspect, n_dead, n_left;
	struct delivery deliveries[8];
	unsigned n_deliveries;
};

struct packet {
	uint64_t at, seq;
	unsigned to;
	char from[GOSSIP_ADDR_LEN];
	size_t len;
	unsigned char data[GOSSIP_MAX_PACKET];
};

struct sim {
	uint64_t now, rng, pkt_seq;
	unsigned n;
	unsigned loss_pct; /* on every link */
	struct node nodes[MAX_NODES];
	struct packet **heap;
	size_t nheap, capheap;
	struct gossip_keyring keys;
	struct gossip_config cfg; /* timers for every node */
	uint64_t sent, dropped;
	size_t max_packet;
};

/* splitmix64: the only randomness of a simulation. */
static uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static bool pkt_before(const struct packet *a, const struct packet *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(struct sim *s, struct packet *p)
{
	size_t i;

	if (s->nheap == s->capheap) {
		s->capheap = s->capheap == 0 ? 256 : s->capheap * 2;
		s->heap = realloc(s->heap, s->capheap * sizeof(*s->heap));
		assert_non_null(s->heap);
	}
	i = s->nheap++;
	s->heap[i] = p;
	while (i > 0 && pkt_before(s->heap[i], s->heap[(i - 1) / 2])) {
		struct packet *t = s->heap[i];

		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct packet *heap_pop(struct sim *s)
{
	struct packet *top = s->heap[0];
	size_t i = 0;

	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct packet *t;

		if (l < s->nheap && pkt_before(s->heap[l], s->heap[m]))
			m = l;
		if (r < s->nheap && pkt_before(s->heap[r], s->heap[m]))
			m = r;
		if (m == i)
			break;
		t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return top;
}

static struct node *sim_lookup(struct sim *s, const char *addr)
{
	unsigned o, port;

	if (sscanf(addr, "10.0.0.%u:%u", &o, &port) != 2 || port != 7946 || o < 1 || o > s->n)
		return NULL;
	return &s->nodes[o - 1];
}

static void io_send(void *arg, const char *addr, const void *data, size_t len)
{
	struct node *src = arg;
	struct sim *s = src->sim;
	struct node *dst = sim_lookup(s, addr);
	unsigned loss = s->loss_pct;
	struct packet *p;

	assert_true(len <= GOSSIP_MAX_PACKET);
	if (len > s->max_packet)
		s->max_packet = len;
	s->sent++;
	if (dst == NULL || !src->up || src->group != dst->group) {
		s->dropped++;
		return;
	}
	if (src->loss_pct > loss)
		loss = src->loss_pct;
	if (dst->loss_pct > loss)
		loss = dst->loss_pct;
	if (loss > 0 && sim_rand(s) % 100 < loss) {
		s->dropped++;
		return;
	}
	p = malloc(sizeof(*p));
	assert_non_null(p);
	p->at = s->now + LATENCY_MS + src->delay_ms;
	p->seq = ++s->pkt_seq;
	p->to = dst->idx;
	memcpy(p->from, src->addr, sizeof(p->from));
	memcpy(p->data, data, len);
	p->len = len;
	heap_push(s, p);
}

static uint32_t io_random(void *arg, uint32_t n)
{
	struct node *nd = arg;

	return (uint32_t)(sim_rand(nd->sim) % n);
}

static void on_member(void *arg, const struct gossip_member *m)
{
	struct node *nd = arg;
	unsigned j;

	if (sscanf(m->id, "n%3u", &j) != 1 || j >= MAX_NODES)
		return;
	switch (m->state) {
	case GOSSIP_SUSPECT:
		nd->n_suspect++;
		break;
	case GOSSIP_DEAD:
		nd->n_dead++;
		if (nd->dead_seen[j] == 0)
			nd->dead_seen[j] = nd->sim->now;
		break;
	case GOSSIP_LEFT:
		nd->n_left++;
		break;
	case GOSSIP_ALIVE:
		break;
	}
}

static struct delivery *delivery(struct node *nd, const char *key, uint64_t version)
{
	for (unsigned i = 0; i < nd->n_deliveries; i++)
		if (strcmp(nd->deliveries[i].key, key) == 0 && nd->deliveries[i].version == version)
			return &nd->deliveries[i];
	return NULL;
}

static void on_user(void *arg, const char *key, uint64_t version, const void *data, size_t len)
{
	struct node *nd = arg;
	struct delivery *d = delivery(nd, key, version);

	(void)data;
	(void)len;
	if (d == NULL) {
		assert_true(nd->n_deliveries < ARRAY_SIZE(nd->deliveries));
		assert_true(strlen(key) < sizeof(d->key));
		d = &nd->deliveries[nd->n_deliveries++];
		strcpy(d->key, key);
		d->version = version;
	}
	d->count++;
}

static void fill_key(unsigned char key[GOSSIP_KEY_LEN], unsigned char v)
{
	memset(key, v, GOSSIP_KEY_LEN);
}

static struct sim *sim_new(unsigned n, uint64_t seed)
{
	struct sim *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_true(n <= MAX_NODES);
	s->n = n;
	s->rng = seed;
	s->now = T0;
	fill_key(s->keys.primary, 0x11);
	for (unsigned i = 0; i < n; i++) {
		struct node *nd = &s->nodes[i];

		nd->sim = s;
		nd->idx = i;
		snprintf(nd->id, sizeof(nd->id), "n%03u", i);
		snprintf(nd->addr, sizeof(nd->addr), "10.0.0.%u:7946", i + 1);
	}
	return s;
}

static void sim_free(struct sim *s)
{
	for (unsigned i = 0; i < s->n; i++)
		gossip_core_free(s->nodes[i].core);
	for (size_t i = 0; i < s->nheap; i++)
		free(s->heap[i]);
	free(s->heap);
	free(s);
}

static void node_kick(struct node *nd)
{
	nd->next_tick = gossip_core_tick(nd->core, nd->sim->now);
}

static void node_start(struct sim *s, unsigned i)
{
	struct node *nd = &s->nodes[i];
	struct gossip_core_io io = {.arg = nd, .send = io_send, .random = io_random};
	struct gossip_config cfg = s->cfg;
	struct shoal_err err;

	cfg.node_id = nd->id;
	cfg.advertise = nd->addr;
	cfg.arg = nd;
	cfg.member_changed = on_member;
	cfg.user_message = on_user;
	gossip_core_free(nd->core);
	nd->core = NULL;
	assert_int_equal(gossip_core_new(&nd->core, &cfg, &s->keys, &io, s->now, &err), 0);
	nd->up = true;
	node_kick(nd);
}

static void node_join(struct sim *s, unsigned i, unsigned seed)
{
	const char *addr = s->nodes[seed].addr;
	struct shoal_err err;

	assert_int_equal(gossip_core_join(s->nodes[i].core, &addr, 1, s->now, &err), 0);
	node_kick(&s->nodes[i]);
}

/* Run every event up to @until. */
static void sim_run(struct sim *s, uint64_t until)
{
	for (;;) {
		uint64_t tn = NEVER, tp = s->nheap > 0 ? s->heap[0]->at : NEVER;
		unsigned who = 0;

		for (unsigned i = 0; i < s->n; i++) {
			if (s->nodes[i].up && s->nodes[i].next_tick < tn) {
				tn = s->nodes[i].next_tick;
				who = i;
			}
		}
		if (tn > until && tp > until)
			break;
		if (tp <= tn) {
			struct packet *p = heap_pop(s);
			struct node *dst = &s->nodes[p->to];

			s->now = tp;
			if (dst->up) {
				gossip_core_receive(dst->core, p->from, p->data, p->len, s->now);
				node_kick(dst);
			}
			free(p);
		} else {
			s->now = tn;
			node_kick(&s->nodes[who]);
		}
	}
	s->now = until;
}

typedef bool (*sim_pred)(struct sim *s, const void *arg);

/* Run until @pred holds (checked every 10 ms) or @limit ms have passed.
 * Returns the virtual ms it took, or NEVER. */
static uint64_t sim_run_until(struct sim *s, sim_pred pred, const void *arg, uint64_t limit)
{
	uint64_t start = s->now;

	for (;;) {
		if (pred(s, arg))
			return s->now - start;
		if (s->now - start >= limit)
			return NEVER;
		sim_run(s, s->now + 10);
	}
}

static enum gossip_state seen_as(struct sim *s, unsigned observer, unsigned i)
{
	const struct gossip_member *m = gossip_core_member(s->nodes[observer].core, s->nodes[i].id);

	return m == NULL ? (enum gossip_state) - 1 : m->state;
}

/* Every running node sees every running node ALIVE. */
static bool all_alive(struct sim *s, const void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < s->n; i++) {
		if (!s->nodes[i].up)
			continue;
		for (unsigned j = 0; j < s->n; j++)
			if (s->nodes[j].up && seen_as(s, i, j) != GOSSIP_ALIVE)
				return false;
	}
	return true;
}

/* Every running node sees every running node ALIVE or SUSPECT. */
static bool all_known(struct sim *s, const void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < s->n; i++) {
		if (!s->nodes[i].up)
			continue;
		for (unsigned j = 0; j < s->n; j++) {
			enum gossip_state st = seen_as(s, i, j);

			if (s->nodes[j].up && st != GOSSIP_ALIVE && st != GOSSIP_SUSPECT)
				return false;
		}
	}
	return true;
}

struct seen {
	unsigned who;
	enum gossip_state state;
};

/* Every running node other than @who sees it in @state. */
static bool all_see(struct sim *s, const void *arg)
{
	const struct seen *w = arg;

	for (unsigned i = 0; i < s->n; i++)
		if (i != w->who && s->nodes[i].up && seen_as(s, i, w->who) != w->state)
			return false;
	return true;
}

/* Start @n nodes that join through node 0 all at once; returns the virtual
 * ms until every one sees every one alive. */
static uint64_t sim_form(struct sim *s, unsigned first, unsigned n, uint64_t limit)
{
	node_start(s, first);
	for (unsigned i = first + 1; i < first + n; i++) {
		node_start(s, i);
		node_join(s, i, first);
	}
	return sim_run_until(s, all_alive, NULL, limit);
}

static size_t count_state(struct gossip_core *g, enum gossip_state st)
{
	const struct gossip_member *m;
	size_t n = gossip_core_members(g, &m), c = 0;

	for (size_t i = 0; i < n; i++)
		if (m[i].state == st)
			c++;
	return c;
}

/* ---- membership ---------------------------------------------------------- */

/* An application message that every member but its sender should get. */
struct want {
	const char *key;
	uint64_t version;
	unsigned sender;
};

static bool all_delivered(struct sim *s, const void *arg);

/* Among n members (the test's state: n + 1000 * loss percent): joins through
 * one seed (one every 10 ms), then one application message from the last to
 * join, then the death of one. */
static void converge(void **state)
{
	unsigned n = (unsigned)(uintptr_t)*state % 1000;
	unsigned loss = (unsigned)(uintptr_t)*state / 1000;
	struct sim *s = sim_new(n, 42 + n);
	struct want msg = {"hello", 1, n - 1};
	struct seen dead = {.who = n / 2, .state = GOSSIP_DEAD};
	struct shoal_err err;
	uint64_t t_join, t_msg, t_dead, sent;

	s->loss_pct = loss;
	node_start(s, 0);
	for (unsigned i = 1; i < n; i++) {
		sim_run(s, s->now + 10);
		node_start(s, i);
		node_join(s, i, 0);
	}
	/* Under loss some member is suspected somewhere most of the time. */
	t_join = sim_run_until(s, loss == 0 ? all_alive : all_known, NULL, 60000);
	assert_int_not_equal(t_join, NEVER);
	for (unsigned i = 0; i < n && loss == 0; i++) {
		assert_int_equal(count_state(s->nodes[i].core, GOSSIP_ALIVE), n);
		assert_int_equal(s->nodes[i].n_dead, 0);
	}
	sim_run(s, s->now + 2000);

	sent = s->sent;
	assert_int_equal(gossip_core_broadcast(s->nodes[n - 1].core, "hello", 1, "x", 1, &err), 0);
	node_kick(&s->nodes[n - 1]);
	t_msg = sim_run_until(s, all_delivered, &msg, 10000);
	assert_int_not_equal(t_msg, NEVER);
	sent = s->sent - sent;
	sim_run(s, s->now + 2000);

	s->nodes[n / 2].up = false;
	t_dead = sim_run_until(s, all_see, &dead, 20000);
	assert_int_not_equal(t_dead, NEVER);
	printf("# %u members, %u%% loss: all %s everywhere %llu virtual ms after the last "
	       "join (joins 10 ms apart); a broadcast reached all in %llu ms (%llu packets "
	       "meanwhile); a dead member was DEAD everywhere after %llu ms; largest packet %zu "
	       "bytes\n",
	       n, loss, loss == 0 ? "alive" : "known", (unsigned long long)t_join,
	       (unsigned long long)t_msg, (unsigned long long)sent, (unsigned long long)t_dead,
	       s->max_packet);
	if (loss == 0) {
		/* Bounds well above what is measured, to catch regressions. */
		assert_true(t_join <= 1000);
		assert_true(t_msg <= 1000);
		assert_true(t_dead <= 4000);
		for (unsigned i = 0; i < n; i++)
			if (i != n / 2)
				assert_int_equal(s->nodes[i].n_dead, 1);
	}
	sim_free(s);
}

/* Kill one of 5 members; returns the virtual ms until every other one sees
 * it DEAD. */
static uint64_t detect_once(uint64_t seed, unsigned victim)
{
	struct sim *s = sim_new(5, seed);
	struct seen dead = {.who = victim, .state = GOSSIP_DEAD};
	uint64_t killed, worst = 0;

	assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
	sim_run(s, s->now + 2000 + sim_rand(s) % 1000);
	killed = s->now;
	s->nodes[victim].up = false;
	assert_int_not_equal(sim_run_until(s, all_see, &dead, 10000), NEVER);
	for (unsigned i = 0; i < 5; i++) {
		if (i == victim)
			continue;
		assert_int_not_equal(s->nodes[i].dead_seen[victim], 0);
		if (s->nodes[i].dead_seen[victim] - killed > worst)
			worst = s->nodes[i].dead_seen[victim] - killed;
		/* Nobody else was declared dead, and the victim not as left. */
		assert_int_equal(s->nodes[i].n_dead, 1);
		assert_int_equal(s->nodes[i].n_left, 0);
	}
	sim_free(s);
	return worst;
}

static void dead_detected_within_3s(void **state)
{
	uint64_t worst = 0, sum = 0;

	(void)state;
	for (unsigned trial = 0; trial < 8; trial++) {
		uint64_t t = detect_once(1000 + trial, 1 + trial % 4);

		printf("# trial %u: member killed, all 4 others saw it DEAD after %llu virtual "
		       "ms\n",
		       trial, (unsigned long long)t);
		assert_true(t < 3000);
		sum += t;
		if (t > worst)
			worst = t;
	}
	printf("# dead detection with default timers, 5 members: mean %llu ms, worst %llu ms\n",
	       (unsigned long long)(sum / 8), (unsigned long long)worst);
}

/* Among 5, member 4 answers late (its packets take 100 ms longer) and
 * loses a fifth of what it sends and receives, for 200 virtual s; over a few
 * seeds. It is suspected now and then, and refutes each time. */
static void slow_member_not_declared_dead(void **state)
{
	unsigned suspicions = 0;
	uint64_t refutations = 0;

	(void)state;
	for (uint64_t seed = 7; seed < 12; seed++) {
		struct sim *s = sim_new(5, seed);

		assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
		s->nodes[4].loss_pct = 20;
		s->nodes[4].delay_ms = 100;
		sim_run(s, s->now + 200000);
		/* It may be suspect right now: let that be refuted too. */
		s->nodes[4].loss_pct = 0;
		s->nodes[4].delay_ms = 0;
		assert_int_not_equal(sim_run_until(s, all_alive, NULL, 3000), NEVER);
		for (unsigned i = 0; i < 5; i++) {
			assert_int_equal(s->nodes[i].n_dead, 0);
			if (i != 4)
				suspicions += s->nodes[i].n_suspect;
		}
		refutations += gossip_core_member(s->nodes[0].core, "n004")->incarnation;
		sim_free(s);
	}
	printf("# a slow lossy member, 5 runs of 200 virtual s: suspected %u times (summed over "
	       "observers), refuted %llu times, never declared dead\n",
	       suspicions, (unsigned long long)refutations);
	assert_true(suspicions > 0);
	assert_true(refutations > 0);
}

static void leave_is_left_not_dead(void **state)
{
	struct sim *s = sim_new(5, 11);
	struct seen left = {.who = 3, .state = GOSSIP_LEFT};
	struct seen back = {.who = 3, .state = GOSSIP_ALIVE};
	uint64_t inc;

	(void)state;
	assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
	gossip_core_leave(s->nodes[3].core, s->now);
	node_kick(&s->nodes[3]);
	assert_int_not_equal(sim_run_until(s, all_see, &left, 3000), NEVER);
	/* It stops a bit later; nobody calls it dead. */
	sim_run(s, s->now + 1000);
	s->nodes[3].up = false;
	sim_run(s, s->now + 20000);
	for (unsigned i = 0; i < 5; i++) {
		if (i == 3)
			continue;
		assert_int_equal(seen_as(s, i, 3), GOSSIP_LEFT);
		assert_int_equal(s->nodes[i].n_dead, 0);
		assert_int_equal(s->nodes[i].dead_seen[3], 0);
	}
	inc = gossip_core_member(s->nodes[0].core, "n003")->incarnation;

	/* The same id restarted (incarnation 0 again) comes back by refuting. */
	node_start(s, 3);
	node_join(s, 3, 0);
	assert_int_not_equal(sim_run_until(s, all_see, &back, 5000), NEVER);
	assert_true(gossip_core_member(s->nodes[1].core, "n003")->incarnation > inc);
	assert_int_not_equal(sim_run_until(s, all_alive, NULL, 5000), NEVER);
	sim_free(s);
}

/* A sealed packet whose body is @nmsg messages packed by @pack. */
static size_t seal(const unsigned char key[GOSSIP_KEY_LEN], unsigned char version, const void *body,
		   size_t len, unsigned char *out)
{
	unsigned long long clen = 0;

	out[0] = version;
	randombytes_buf(out + 1, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 25, &clen, body, len, out, 1, NULL,
						   out + 1, key);
	return 25 + (size_t)clen;
}

static void pack_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* [[4, id, inc, addr, meta]] */
static void pack_alive(msgpack_sbuffer *sb, const char *id, uint64_t inc, const char *addr)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 5);
	msgpack_pack_uint8(&pk, 4);
	pack_s(&pk, id);
	msgpack_pack_uint64(&pk, inc);
	pack_s(&pk, addr);
	msgpack_pack_bin(&pk, 0);
}

static void deliver_body(struct sim *s, unsigned to, const char *from, const msgpack_sbuffer *sb)
{
	unsigned char pkt[GOSSIP_MAX_PACKET];
	size_t n = seal(s->keys.primary, GOSSIP_WIRE_VERSION, sb->data, sb->size, pkt);

	gossip_core_receive(s->nodes[to].core, from, pkt, n, s->now);
	node_kick(&s->nodes[to]);
}

static void remove_not_undone_by_stale_alive(void **state)
{
	struct sim *s = sim_new(5, 13);
	struct seen left = {.who = 4, .state = GOSSIP_LEFT};
	msgpack_sbuffer sb;
	uint64_t inc;

	(void)state;
	assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
	inc = gossip_core_member(s->nodes[0].core, "n004")->incarnation;
	gossip_core_remove(s->nodes[0].core, "n004", s->now);
	gossip_core_remove(s->nodes[0].core, "n099", s->now); /* unknown: a tombstone */
	node_kick(&s->nodes[0]);
	assert_int_not_equal(sim_run_until(s, all_see, &left, 3000), NEVER);
	sim_run(s, s->now + 3000);
	/* The removed member heard it and went quiet, without refuting. */
	assert_int_equal(seen_as(s, 4, 4), GOSSIP_LEFT);
	assert_int_equal(gossip_core_member(s->nodes[4].core, "n004")->incarnation, inc);
	assert_true(s->nodes[4].n_left >= 1);

	/* A stale ALIVE (replayed, or late) revives neither. */
	msgpack_sbuffer_init(&sb);
	pack_alive(&sb, "n004", inc, s->nodes[4].addr);
	for (unsigned i = 0; i < 4; i++)
		deliver_body(s, i, s->nodes[4].addr, &sb);
	msgpack_sbuffer_clear(&sb);
	pack_alive(&sb, "n099", 0, "10.0.0.99:7946");
	for (unsigned i = 0; i < 4; i++)
		deliver_body(s, i, s->nodes[4].addr, &sb);
	msgpack_sbuffer_destroy(&sb);
	sim_run(s, s->now + 5000);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(seen_as(s, i, 4), GOSSIP_LEFT);
		assert_non_null(gossip_core_member(s->nodes[i].core, "n099"));
		assert_int_equal(gossip_core_member(s->nodes[i].core, "n099")->state, GOSSIP_LEFT);
		assert_int_equal(s->nodes[i].n_dead, 0);
	}
	sim_free(s);
}

/* Member 1 hears of member 0 from gossip (a plain ALIVE), member 0 knows
 * nothing of 1: the first probe 1 sends makes 0 ask for its state. */
static void unknown_prober_is_learned(void **state)
{
	struct sim *s = sim_new(2, 37);
	struct seen known = {.who = 1, .state = GOSSIP_ALIVE};
	msgpack_sbuffer sb;
	uint64_t t;

	(void)state;
	node_start(s, 0);
	node_start(s, 1);
	msgpack_sbuffer_init(&sb);
	pack_alive(&sb, "n000", 0, s->nodes[0].addr);
	deliver_body(s, 1, "10.0.0.9:7946", &sb);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(seen_as(s, 1, 0), GOSSIP_ALIVE);
	assert_int_equal(seen_as(s, 0, 1), (enum gossip_state) - 1);
	t = sim_run_until(s, all_see, &known, 1000);
	assert_int_not_equal(t, NEVER);
	sim_free(s);
}

static void partition_heals(void **state)
{
	struct sim *s = sim_new(5, 17);
	struct seen dead = {.who = 4, .state = GOSSIP_DEAD};
	uint64_t t;

	(void)state;
	assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
	s->nodes[4].group = 1;
	assert_int_not_equal(sim_run_until(s, all_see, &dead, 10000), NEVER);
	sim_run(s, s->now + 10000);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(seen_as(s, 4, i), GOSSIP_DEAD);
	s->nodes[4].group = 0;
	t = sim_run_until(s, all_alive, NULL, 15000);
	printf("# partition of 1 from 4 for 10+ virtual s healed in %llu virtual ms\n",
	       (unsigned long long)t);
	assert_int_not_equal(t, NEVER);
	/* Both sides refuted their death. */
	assert_true(gossip_core_member(s->nodes[0].core, "n004")->incarnation > 0);
	assert_true(gossip_core_member(s->nodes[4].core, "n000")->incarnation > 0);
	sim_free(s);
}

static bool all_have_meta(struct sim *s, const void *arg)
{
	const char *want = arg;

	for (unsigned i = 0; i < s->n; i++) {
		const struct gossip_member *m = gossip_core_member(s->nodes[i].core, "n002");

		if (m == NULL || m->meta_len != strlen(want) ||
		    memcmp(m->meta, want, m->meta_len) != 0)
			return false;
	}
	return true;
}

static void meta_change_propagates(void **state)
{
	struct sim *s = sim_new(20, 19);
	char big[GOSSIP_MAX_META + 1];
	struct shoal_err err;
	uint64_t t;

	(void)state;
	assert_int_not_equal(sim_form(s, 0, 20, 10000), NEVER);
	assert_int_equal(gossip_core_set_meta(s->nodes[2].core, "role=manager", 12, s->now, &err),
			 0);
	node_kick(&s->nodes[2]);
	t = sim_run_until(s, all_have_meta, "role=manager", 5000);
	printf("# metadata change reached 20 members in %llu virtual ms\n", (unsigned long long)t);
	assert_int_not_equal(t, NEVER);
	memset(big, 'x', sizeof(big));
	assert_int_equal(gossip_core_set_meta(s->nodes[2].core, big, sizeof(big), s->now, &err),
			 SHOAL_ETOOBIG);
	assert_non_null(strstr(err.msg, "512"));
	sim_free(s);
}

/* ---- application messages ------------------------------------------------- */

/* Every running node in group 0 but the sender got the message. */
static bool all_delivered(struct sim *s, const void *arg)
{
	const struct want *w = arg;

	for (unsigned i = 0; i < s->n; i++) {
		if (i == w->sender || !s->nodes[i].up || s->nodes[i].group != 0)
			continue;
		if (delivery(&s->nodes[i], w->key, w->version) == NULL)
			return false;
	}
	return true;
}

static void push_pull(struct sim *s, unsigned a, unsigned b)
{
	struct shoal_err err;
	struct buf x, y;

	buf_init(&x);
	buf_init(&y);
	assert_int_equal(gossip_core_export(s->nodes[a].core, &x), 0);
	assert_int_equal(gossip_core_export(s->nodes[b].core, &y), 0);
	assert_int_equal(gossip_core_merge(s->nodes[b].core, x.data, x.len, s->now, &err), 0);
	assert_int_equal(gossip_core_merge(s->nodes[a].core, y.data, y.len, s->now, &err), 0);
	node_kick(&s->nodes[a]);
	node_kick(&s->nodes[b]);
	buf_free(&x);
	buf_free(&y);
}

static void user_messages_newest_wins_once(void **state)
{
	struct sim *s = sim_new(5, 23);
	struct want v1 = {"assign/n001", 1, 0}, v3 = {"assign/n001", 3, 1};
	struct shoal_err err;
	uint64_t t;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	(void)state;
	assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
	assert_int_equal(gossip_core_broadcast(s->nodes[0].core, "assign/n001", 1, "a", 1, &err),
			 0);
	node_kick(&s->nodes[0]);
	assert_int_not_equal(sim_run_until(s, all_delivered, &v1, 3000), NEVER);

	/* Member 4 is cut off while version 3 spreads, and sends version 2. */
	s->nodes[4].group = 1;
	assert_int_equal(gossip_core_broadcast(s->nodes[1].core, "assign/n001", 3, "c", 1, &err),
			 0);
	node_kick(&s->nodes[1]);
	assert_int_not_equal(sim_run_until(s, all_delivered, &v3, 3000), NEVER);
	assert_int_equal(gossip_core_broadcast(s->nodes[4].core, "assign/n001", 2, "b", 1, &err),
			 0);
	node_kick(&s->nodes[4]);
	assert_int_equal(gossip_core_broadcast(s->nodes[2].core, "assign/n001", 2, "b", 1, &err),
			 SHOAL_ECONFLICT);
	assert_non_null(strstr(err.msg, "version 3"));
	assert_int_equal(gossip_core_broadcast(s->nodes[2].core, "assign/n001", 3, "c", 1, &err),
			 SHOAL_ECONFLICT);
	assert_int_equal(gossip_core_broadcast(s->nodes[2].core, "bad key", 1, "c", 1, &err),
			 SHOAL_EINVAL);
	sim_run(s, s->now + 3000);

	/* Healed: version 2 still in 4's queue is ignored; the periodic
	 * push-pull (every 100 probe intervals, with a random member) brings
	 * 4 the newest. A stale copy of version 1 injected later is ignored
	 * too. */
	s->nodes[4].group = 0;
	assert_int_not_equal(sim_run_until(s, all_alive, NULL, 10000), NEVER);
	t = sim_run_until(s, all_delivered, &v3, 70000);
	printf("# a message missed during a partition arrived by push-pull after %llu virtual "
	       "ms\n",
	       (unsigned long long)t);
	assert_int_not_equal(t, NEVER);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 8);
	pack_s(&pk, "assign/n001");
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_bin(&pk, 1);
	msgpack_pack_bin_body(&pk, "a", 1);
	for (unsigned i = 0; i < 5; i++)
		deliver_body(s, i, s->nodes[0].addr, &sb);
	msgpack_sbuffer_destroy(&sb);
	sim_run(s, s->now + 5000);

	for (unsigned i = 0; i < 5; i++) {
		struct node *nd = &s->nodes[i];
		struct delivery *d1 = delivery(nd, "assign/n001", 1);
		struct delivery *d2 = delivery(nd, "assign/n001", 2);
		struct delivery *d3 = delivery(nd, "assign/n001", 3);

		/* Each version at most once, the newest everywhere. */
		assert_true(i == 0 || (d1 != NULL && d1->count == 1));
		assert_true(i == 1 || (d3 != NULL && d3->count == 1));
		assert_null(d2);
		assert_true(nd->n_deliveries <= 2);
	}
	sim_free(s);
}

/* ---- keys ------------------------------------------------------------------ */

static void set_keys(struct sim *s, unsigned i, unsigned char primary, int previous)
{
	struct gossip_keyring k;

	memset(&k, 0, sizeof(k));
	fill_key(k.primary, primary);
	if (previous >= 0) {
		fill_key(k.previous, (unsigned char)previous);
		k.has_previous = true;
	}
	gossip_core_set_keyring(s->nodes[i].core, &k);
}

static bool all_dead_to(struct sim *s, const void *arg)
{
	unsigned who = *(const unsigned *)arg;

	for (unsigned i = 0; i < s->n; i++) {
		if (i == who)
			continue;
		if (seen_as(s, who, i) != GOSSIP_DEAD || seen_as(s, i, who) != GOSSIP_DEAD)
			return false;
	}
	return true;
}

static void key_rotation_and_cut_off(void **state)
{
	struct sim *s = sim_new(5, 29);
	struct gossip_stats st;
	uint64_t before, t;
	unsigned cut = 4;

	(void)state;
	assert_int_not_equal(sim_form(s, 0, 5, 10000), NEVER);
	/* Rotate 0x11 -> 0x22 one member at a time: add the new key as
	 * previous (readable), then make it primary, then drop the old one. */
	for (unsigned phase = 0; phase < 3; phase++) {
		for (unsigned i = 0; i < 5; i++) {
			if (phase == 0)
				set_keys(s, i, 0x11, 0x22);
			else if (phase == 1)
				set_keys(s, i, 0x22, 0x11);
			else
				set_keys(s, i, 0x22, -1);
			sim_run(s, s->now + 400);
		}
	}
	sim_run(s, s->now + 5000);
	assert_true(all_alive(s, NULL));
	for (unsigned i = 0; i < 5; i++) {
		gossip_core_stats(s->nodes[i].core, &st);
		assert_int_equal(st.rejected_seal, 0);
		assert_int_equal(st.rejected_decode, 0);
		assert_int_equal(s->nodes[i].n_dead, 0);
	}

	/* The others move on to 0x33 without member 4: it reads nothing more
	 * and, in the end, sees everyone dead (as they see it). */
	gossip_core_stats(s->nodes[cut].core, &st);
	before = st.rejected_seal;
	for (unsigned i = 0; i < 4; i++)
		set_keys(s, i, 0x33, 0x22);
	sim_run(s, s->now + 1000);
	for (unsigned i = 0; i < 4; i++)
		set_keys(s, i, 0x33, -1);
	t = sim_run_until(s, all_dead_to, &cut, 20000);
	assert_int_not_equal(t, NEVER);
	gossip_core_stats(s->nodes[cut].core, &st);
	printf("# member left on the old key: %llu packets rejected, all dead to it within "
	       "%llu virtual ms\n",
	       (unsigned long long)(st.rejected_seal - before), (unsigned long long)t);
	assert_true(st.rejected_seal > before + 10);
	assert_int_equal(count_state(s->nodes[cut].core, GOSSIP_ALIVE), 1);
	sim_free(s);
}

/* ---- hostile packets ------------------------------------------------------- */

/* One core alone, whose packets are captured; optionally every PING it sends
 * is answered (as if by its target) so its own probes never fail. */
struct lone {
	struct gossip_core *core;
	uint64_t rng, now;
	unsigned sends;
	unsigned char last[GOSSIP_MAX_PACKET];
	size_t last_len;
	bool answer;
	unsigned char key[GOSSIP_KEY_LEN];
	unsigned char replies[16][GOSSIP_MAX_PACKET];
	size_t reply_len[16];
	unsigned nreplies;
	const char *watch; /* a member whose death time is kept */
	uint64_t dead_at;
	unsigned rejects; /* datagrams reported dropped; the last one's sender and why */
	char rejected_from[GOSSIP_ADDR_LEN];
	char rejected_why[256];
};

/* Queue an ACK for every PING in the sealed packet @data. */
static void lone_answer(struct lone *l, const unsigned char *data, size_t len)
{
	unsigned char plain[GOSSIP_MAX_PACKET];
	unsigned long long plen = 0;
	msgpack_unpacked u;
	const msgpack_object *v;

	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
			     plain, &plen, NULL, data + 25, len - 25, data, 1, data + 1, l->key),
			 0);
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, (const char *)plain, (size_t)plen, NULL),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
	v = u.data.via.array.ptr;
	for (uint32_t i = 0; i < u.data.via.array.size; i++) {
		const msgpack_object *f = v[i].via.array.ptr;
		msgpack_sbuffer sb;
		msgpack_packer pk;

		if (v[i].via.array.size < 4 || f[0].via.u64 != 1)
			continue;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 1);
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, 3);
		msgpack_pack_uint64(&pk, f[1].via.u64);
		msgpack_pack_str(&pk, f[2].via.str.size);
		msgpack_pack_str_body(&pk, f[2].via.str.ptr, f[2].via.str.size);
		assert_true(l->nreplies < ARRAY_SIZE(l->replies));
		l->reply_len[l->nreplies] =
		    seal(l->key, GOSSIP_WIRE_VERSION, sb.data, sb.size, l->replies[l->nreplies]);
		l->nreplies++;
		msgpack_sbuffer_destroy(&sb);
	}
	msgpack_unpacked_destroy(&u);
}

static void lone_send(void *arg, const char *addr, const void *data, size_t len)
{
	struct lone *l = arg;

	(void)addr;
	l->sends++;
	memcpy(l->last, data, len);
	l->last_len = len;
	if (l->answer)
		lone_answer(l, data, len);
}

static uint32_t lone_random(void *arg, uint32_t n)
{
	struct lone *l = arg;

	l->rng = l->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((l->rng >> 33) % n);
}

static void lone_member(void *arg, const struct gossip_member *m)
{
	struct lone *l = arg;

	if (l->watch != NULL && strcmp(m->id, l->watch) == 0 && m->state == GOSSIP_DEAD &&
	    l->dead_at == 0)
		l->dead_at = l->now;
}

static void lone_rejected(void *arg, const char *from, const char *why)
{
	struct lone *l = arg;

	l->rejects++;
	snprintf(l->rejected_from, sizeof(l->rejected_from), "%s", from);
	snprintf(l->rejected_why, sizeof(l->rejected_why), "%s", why);
}

static void lone_new(struct lone *l, const char *id, const unsigned char *key)
{
	struct gossip_core_io io = {.arg = l, .send = lone_send, .random = lone_random};
	struct gossip_config cfg = {.node_id = id, .advertise = "10.0.0.1:7946"};
	struct gossip_keyring k;

	memset(l, 0, sizeof(*l));
	memset(&k, 0, sizeof(k));
	memcpy(k.primary, key, GOSSIP_KEY_LEN);
	memcpy(l->key, key, GOSSIP_KEY_LEN);
	l->now = T0;
	cfg.arg = l;
	cfg.member_changed = lone_member;
	cfg.rejected = lone_rejected;
	assert_int_equal(gossip_core_new(&l->core, &cfg, &k, &io, T0, NULL), 0);
}

/* Run the lone core's timers until @until, answering its pings at once. */
static void lone_run(struct lone *l, uint64_t until)
{
	while (l->now <= until) {
		uint64_t next = gossip_core_tick(l->core, l->now);

		while (l->nreplies > 0) {
			l->nreplies--;
			gossip_core_receive(l->core, "10.0.0.2:7946", l->replies[l->nreplies],
					    l->reply_len[l->nreplies], l->now);
			next = gossip_core_tick(l->core, l->now);
		}
		if (next > until)
			break;
		l->now = next;
	}
	l->now = until;
}

static void expect_counts(struct gossip_core *g, uint64_t seal, uint64_t decode)
{
	struct gossip_stats st;

	gossip_core_stats(g, &st);
	assert_int_equal(st.rejected_seal, seal);
	assert_int_equal(st.rejected_decode, decode);
}

/* Pack messages for the decoder tests. */
typedef void (*body_fn)(msgpack_packer *pk);

static void b_not_array(msgpack_packer *pk)
{
	msgpack_pack_uint8(pk, 7);
}
static void b_empty(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 0);
}
static void b_msg_not_array(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	pack_s(pk, "ping");
}
static void b_type_str(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 1);
	pack_s(pk, "1");
}
static void b_ping_int_id(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 5);
	pack_s(pk, "abc");
}
static void b_ping_short(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 1);
	pack_s(pk, "n000");
}
static void alive_with(msgpack_packer *pk, const char *id, const char *addr, size_t meta)
{
	static const char zeros[GOSSIP_MAX_META + 1];

	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 5);
	msgpack_pack_uint8(pk, 4);
	pack_s(pk, id);
	msgpack_pack_uint8(pk, 1);
	pack_s(pk, addr);
	msgpack_pack_bin(pk, meta);
	if (meta > 0)
		msgpack_pack_bin_body(pk, zeros, meta);
}
static void b_id_long(msgpack_packer *pk)
{
	alive_with(pk, "abcdefghijklmnopqrstuvwxyz", "1.2.3.4:5", 0);
}
static void b_id_upper(msgpack_packer *pk)
{
	alive_with(pk, "Abc", "1.2.3.4:5", 0);
}
static void b_addr_long(msgpack_packer *pk)
{
	alive_with(pk, "abc", "1111111111222222222233333333334444444444:5555555", 0);
}
static void b_addr_empty(msgpack_packer *pk)
{
	alive_with(pk, "abc", "", 0);
}
static void b_addr_space(msgpack_packer *pk)
{
	alive_with(pk, "abc", "1.2.3.4 :5", 0);
}
static void b_meta_big(msgpack_packer *pk)
{
	alive_with(pk, "abc", "1.2.3.4:5", GOSSIP_MAX_META + 1);
}
static void b_user_big(msgpack_packer *pk)
{
	static const char zeros[GOSSIP_MAX_USER + 1];

	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 8);
	pack_s(pk, "k");
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_bin(pk, sizeof(zeros));
	msgpack_pack_bin_body(pk, zeros, sizeof(zeros));
}
static void b_key_long(msgpack_packer *pk)
{
	char key[GOSSIP_MAX_KEY + 2];

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 8);
	pack_s(pk, key);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_bin(pk, 0);
}
static void b_left_not_bool(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 7);
	pack_s(pk, "abc");
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 1);
}
static void b_state_bad(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint8(pk, 11);
	pack_s(pk, "abc");
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 5);
	pack_s(pk, "1.2.3.4:5");
	msgpack_pack_bin(pk, 0);
}
static void b_seq_big(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, 3);
	msgpack_pack_uint64(pk, (uint64_t)1 << 40);
	pack_s(pk, "abc");
}
static void b_negative(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, 6);
	pack_s(pk, "abc");
	msgpack_pack_int8(pk, -1);
}
static void b_too_many(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 256);
	for (unsigned i = 0; i < 256; i++) {
		msgpack_pack_array(pk, 1);
		msgpack_pack_uint8(pk, 10);
	}
}
static void b_deep(msgpack_packer *pk)
{
	for (unsigned i = 0; i < 40; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_uint8(pk, 1);
}
static void b_good_then_bad(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_array(pk, 5);
	msgpack_pack_uint8(pk, 4);
	pack_s(pk, "abc");
	msgpack_pack_uint8(pk, 1);
	pack_s(pk, "1.2.3.4:5");
	msgpack_pack_bin(pk, 0);
	msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
}

static void seal_and_receive(struct lone *l, const unsigned char *key, unsigned char version,
			     const void *body, size_t len)
{
	unsigned char pkt[GOSSIP_MAX_PACKET + 64];
	size_t n = seal(key, version, body, len, pkt);

	gossip_core_receive(l->core, "10.0.0.9:7946", pkt, n, T0);
}

static void hostile_packets_rejected_and_counted(void **state)
{
	static const body_fn bad_bodies[] = {
	    b_not_array, b_empty,    b_msg_not_array, b_type_str,   b_ping_int_id, b_ping_short,
	    b_id_long,	 b_id_upper, b_addr_long,     b_addr_empty, b_addr_space,  b_meta_big,
	    b_user_big,	 b_key_long, b_left_not_bool, b_state_bad,  b_seq_big,	   b_negative,
	    b_too_many,	 b_deep,     b_good_then_bad,
	};
	static const unsigned char raw_bad[][8] = {
	    {0xc1},			    /* never valid msgpack */
	    {0x91, 0x91, 0x01, 0x00},	    /* a byte after the object */
	    {0xdd, 0xff, 0xff, 0xff, 0xff}, /* 4 billion items declared */
	    {0x91, 0x94, 0x01, 0xce},	    /* ends inside a number */
	};
	unsigned char key[GOSSIP_KEY_LEN], wrong[GOSSIP_KEY_LEN], pkt[GOSSIP_MAX_PACKET + 8];
	unsigned char ping[GOSSIP_MAX_PACKET];
	uint64_t seal_n = 0, decode_n = 0;
	size_t ping_len;
	struct lone l, peer;
	uint64_t rng = 99;

	(void)state;
	fill_key(key, 0x11);
	fill_key(wrong, 0x12);
	lone_new(&l, "n000", key);

	/* Not sealed with our key: empty, short, random, oversized. */
	gossip_core_receive(l.core, "10.0.0.9:7946", "", 0, T0);
	gossip_core_receive(l.core, "10.0.0.9:7946", "\x01", 1, T0);
	seal_n += 2;
	assert_int_equal(l.rejects, 2);
	assert_string_equal(l.rejected_from, "10.0.0.9:7946");
	assert_string_equal(l.rejected_why, "it is 1 bytes, too short to be sealed (41 at least)");
	for (size_t len = 40; len <= GOSSIP_MAX_PACKET + 1; len += 97) {
		for (size_t i = 0; i < len; i++) {
			rng = rng * 6364136223846793005ULL + 1;
			pkt[i] = (unsigned char)(rng >> 56);
		}
		pkt[0] = GOSSIP_WIRE_VERSION;
		gossip_core_receive(l.core, "10.0.0.9:7946", pkt, len, T0);
		seal_n++;
		if (len == 40) {
			assert_string_equal(l.rejected_why,
					    "it is 40 bytes, too short to be sealed (41 at least)");
			continue;
		}
		assert_string_equal(
		    l.rejected_why,
		    "it does not unseal with any key of the ring (not of this swarm, "
		    "or sealed with a key rotated out since)");
	}
	gossip_core_receive(l.core, "10.0.0.8:7946", pkt, GOSSIP_MAX_PACKET + 1, T0);
	seal_n++;
	assert_string_equal(l.rejected_from, "10.0.0.8:7946");
	assert_string_equal(l.rejected_why, "it is larger than the limit of 1400 bytes");
	expect_counts(l.core, seal_n, decode_n);
	assert_int_equal(l.rejects, seal_n + decode_n);

	/* A real packet (a join) from another core: truncated or with any one
	 * bit flipped, it does not open; whole, it does. */
	lone_new(&peer, "n001", key);
	assert_int_equal(
	    gossip_core_join(peer.core, (const char *[]){"10.0.0.1:7946"}, 1, T0, NULL), 0);
	assert_int_equal(peer.sends, 1);
	ping_len = peer.last_len;
	memcpy(ping, peer.last, ping_len);
	gossip_core_free(peer.core);
	for (size_t cut = 0; cut < ping_len; cut += 7) {
		gossip_core_receive(l.core, "10.0.0.2:7946", ping, cut, T0);
		seal_n++;
	}
	for (size_t bit = 0; bit < ping_len * 8; bit += 13) {
		memcpy(pkt, ping, ping_len);
		pkt[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		gossip_core_receive(l.core, "10.0.0.2:7946", pkt, ping_len, T0);
		seal_n++;
	}
	expect_counts(l.core, seal_n, decode_n);
	assert_null(gossip_core_member(l.core, "n001"));
	gossip_core_receive(l.core, "10.0.0.2:7946", ping, ping_len, T0);
	expect_counts(l.core, seal_n, decode_n);
	assert_non_null(gossip_core_member(l.core, "n001"));

	/* Good body, wrong key or wrong version byte. */
	{
		msgpack_sbuffer sb;

		msgpack_sbuffer_init(&sb);
		pack_alive(&sb, "abc", 1, "1.2.3.4:5");
		seal_and_receive(&l, wrong, GOSSIP_WIRE_VERSION, sb.data, sb.size);
		assert_non_null(strstr(l.rejected_why, "does not unseal with any key of the ring"));
		seal_and_receive(&l, key, GOSSIP_WIRE_VERSION + 1, sb.data, sb.size);
		assert_string_equal(l.rejected_why, "its version byte is 2, not 1");
		seal_n += 2;
		expect_counts(l.core, seal_n, decode_n);
		assert_null(gossip_core_member(l.core, "abc"));
		msgpack_sbuffer_destroy(&sb);
	}

	/* Sealed right, but not a valid body: nothing of it is applied. */
	for (size_t i = 0; i < ARRAY_SIZE(bad_bodies); i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		bad_bodies[i](&pk);
		assert_true(sb.size <= GOSSIP_MAX_PACKET - 41);
		seal_and_receive(&l, key, GOSSIP_WIRE_VERSION, sb.data, sb.size);
		decode_n++;
		expect_counts(l.core, seal_n, decode_n);
		assert_string_equal(l.rejected_why, "it unsealed but does not decode");
		msgpack_sbuffer_destroy(&sb);
	}
	for (size_t i = 0; i < ARRAY_SIZE(raw_bad); i++) {
		size_t len = i == 0 ? 1 : i == 1 ? 4 : i == 2 ? 5 : 4;

		seal_and_receive(&l, key, GOSSIP_WIRE_VERSION, raw_bad[i], len);
		decode_n++;
		expect_counts(l.core, seal_n, decode_n);
	}
	assert_null(gossip_core_member(l.core, "abc"));
	assert_int_equal(gossip_core_members(l.core, &(const struct gossip_member *){NULL}), 2);

	/* A message type from a later version is skipped, not an error; the
	 * rest of its packet applies. */
	{
		msgpack_sbuffer sb;
		msgpack_packer pk;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint8(&pk, 99);
		pack_s(&pk, "future");
		msgpack_pack_array(&pk, 5);
		msgpack_pack_uint8(&pk, 4);
		pack_s(&pk, "abc");
		msgpack_pack_uint8(&pk, 1);
		pack_s(&pk, "1.2.3.4:5");
		msgpack_pack_bin(&pk, 0);
		seal_and_receive(&l, key, GOSSIP_WIRE_VERSION, sb.data, sb.size);
		expect_counts(l.core, seal_n, decode_n);
		assert_non_null(gossip_core_member(l.core, "abc"));
		msgpack_sbuffer_destroy(&sb);
	}
	/* Every drop was reported, and nothing else. */
	assert_int_equal(l.rejects, seal_n + decode_n);
	gossip_core_free(l.core);
}

/* ---- Lifeguard suspicion --------------------------------------------------- */

static void lone_inject(struct lone *l, const msgpack_sbuffer *sb)
{
	unsigned char pkt[GOSSIP_MAX_PACKET];
	size_t n = seal(l->key, GOSSIP_WIRE_VERSION, sb->data, sb->size, pkt);

	gossip_core_receive(l->core, "10.0.0.3:7946", pkt, n, l->now);
}

static void inject_suspect(struct lone *l, const char *id, const char *from)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 5);
	pack_s(&pk, id);
	msgpack_pack_uint8(&pk, 0);
	pack_s(&pk, from);
	lone_inject(l, &sb);
	msgpack_sbuffer_destroy(&sb);
}

/* A member that knows 5 others (whose probes all succeed) hears m2 suspect
 * m1, then, 100 ms later, @confirmers suspect it too. Returns how long after
 * the first suspicion it declares m1 dead. */
static uint64_t suspicion_lasts(const char *const *confirmers, size_t n)
{
	unsigned char key[GOSSIP_KEY_LEN];
	struct shoal_err err;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct lone l;
	uint64_t t;

	fill_key(key, 0x11);
	lone_new(&l, "n000", key);
	l.answer = true;
	l.watch = "m1";
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 5);
	for (unsigned i = 1; i <= 5; i++) {
		char id[8], addr[32];

		snprintf(id, sizeof(id), "m%u", i);
		snprintf(addr, sizeof(addr), "10.0.0.%u:7946", i + 1);
		msgpack_pack_array(&pk, 6);
		msgpack_pack_uint8(&pk, 11);
		pack_s(&pk, id);
		msgpack_pack_uint8(&pk, 0);
		msgpack_pack_uint8(&pk, 0);
		pack_s(&pk, addr);
		msgpack_pack_bin(&pk, 0);
	}
	assert_int_equal(gossip_core_merge(l.core, sb.data, sb.size, l.now, &err), 0);
	msgpack_sbuffer_destroy(&sb);
	lone_run(&l, T0 + 3000);
	assert_int_equal(count_state(l.core, GOSSIP_ALIVE), 6);

	t = l.now;
	inject_suspect(&l, "m1", "m2");
	assert_int_equal(gossip_core_member(l.core, "m1")->state, GOSSIP_SUSPECT);
	lone_run(&l, t + 100);
	for (size_t i = 0; i < n; i++)
		inject_suspect(&l, "m1", confirmers[i]);
	lone_run(&l, t + 5000);
	assert_int_not_equal(l.dead_at, 0);
	assert_int_equal(count_state(l.core, GOSSIP_ALIVE), 5);
	gossip_core_free(l.core);
	return l.dead_at - t;
}

static void suspicion_shrinks_with_confirmations(void **state)
{
	static const char *const one[] = {"m3"};
	static const char *const same[] = {"m3", "m3", "m2", "n000"};
	static const char *const two[] = {"m3", "m4"};
	static const char *const more[] = {"m3", "m4", "m5"};
	uint64_t t0 = suspicion_lasts(NULL, 0), t1 = suspicion_lasts(one, 1);
	uint64_t t1b = suspicion_lasts(same, ARRAY_SIZE(same)), t2 = suspicion_lasts(two, 2);
	uint64_t t3 = suspicion_lasts(more, 3);

	(void)state;
	printf("# suspicion among 6 (timeout 4 x 300 ms, 2 confirmations expected): %llu ms "
	       "alone, %llu ms with 1 confirmation, %llu ms with 2, %llu ms with 3\n",
	       (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)t2,
	       (unsigned long long)t3);
	/* Starts at 4 x 300 ms, shrinks by log(c + 1) / log(k + 1) of the
	 * way to a third of that: 1200, ~695, 400 ms. */
	assert_true(t0 >= 1195 && t0 <= 1205);
	assert_true(t1 >= 650 && t1 <= 750);
	assert_int_equal(t1b, t1); /* the same member, the originator, or us: no news */
	assert_true(t2 >= 395 && t2 <= 405);
	assert_int_equal(t3, t2);
}

/* ---- push-pull --------------------------------------------------------------- */

static void export_merge_joins_two_clusters(void **state)
{
	struct sim *s = sim_new(10, 31);
	struct want ka = {"ka", 1, 0}, kb = {"kb", 1, 5};
	struct shoal_err err;
	struct buf x;
	uint64_t t;

	(void)state;
	/* Two clusters of 5 that know nothing of each other. */
	node_start(s, 0);
	node_start(s, 5);
	for (unsigned i = 1; i < 10; i++) {
		if (i == 5)
			continue;
		node_start(s, i);
		node_join(s, i, i < 5 ? 0 : 5);
	}
	sim_run(s, s->now + 5000);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(count_state(s->nodes[i].core, GOSSIP_ALIVE), 5);
	assert_int_equal(gossip_core_broadcast(s->nodes[0].core, "ka", 1, "A", 1, &err), 0);
	assert_int_equal(gossip_core_broadcast(s->nodes[5].core, "kb", 1, "B", 1, &err), 0);
	sim_run(s, s->now + 3000);

	push_pull(s, 0, 5);
	t = sim_run_until(s, all_alive, NULL, 10000);
	printf("# two clusters of 5 merged by one push-pull in %llu virtual ms\n",
	       (unsigned long long)t);
	assert_int_not_equal(t, NEVER);
	assert_int_not_equal(sim_run_until(s, all_delivered, &ka, 5000), NEVER);
	assert_int_not_equal(sim_run_until(s, all_delivered, &kb, 5000), NEVER);

	/* What does not decode is refused whole, with a reason. */
	buf_init(&x);
	assert_int_equal(gossip_core_export(s->nodes[0].core, &x), 0);
	assert_int_equal(gossip_core_merge(s->nodes[0].core, x.data, x.len - 1, s->now, &err),
			 SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "msgpack"));
	assert_int_equal((unsigned char)x.data[2], 11); /* the first record's type: STATE */
	x.data[2] = 99;
	assert_int_equal(gossip_core_merge(s->nodes[0].core, x.data, x.len, s->now, &err),
			 SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "record"));
	assert_int_equal(
	    gossip_core_merge(s->nodes[0].core, x.data, GOSSIP_MAX_STATE + 1, s->now, &err),
	    SHOAL_ETOOBIG);
	buf_free(&x);
	{
		/* A packet's body is no state. */
		static const unsigned char ping[] = {0x91, 0x94, 0x01, 0x01, 0xa1, 'a', 0xa1, 'b'};

		assert_int_equal(
		    gossip_core_merge(s->nodes[0].core, ping, sizeof(ping), s->now, &err),
		    SHOAL_EPROTO);
	}
	sim_free(s);
}

static void config_errors_say_why(void **state)
{
	struct lone l;
	struct gossip_core_io io = {.arg = &l, .send = lone_send, .random = lone_random};
	struct gossip_keyring k;
	struct gossip_config cfg;
	struct gossip_core *g = NULL;
	struct shoal_err err;

	(void)state;
	memset(&l, 0, sizeof(l));
	memset(&k, 0, sizeof(k));
	memset(&cfg, 0, sizeof(cfg));
	cfg.node_id = "Bad-Id";
	cfg.advertise = "10.0.0.1:7946";
	assert_int_equal(gossip_core_new(&g, &cfg, &k, &io, 0, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "Bad-Id"));
	cfg.node_id = "n000";
	cfg.advertise = "";
	assert_int_equal(gossip_core_new(&g, &cfg, &k, &io, 0, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "advertise"));
	cfg.advertise = "10.0.0.1:7946";
	cfg.probe_interval_ms = 100;
	cfg.probe_timeout_ms = 100;
	assert_int_equal(gossip_core_new(&g, &cfg, &k, &io, 0, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "probe timeout"));
	cfg.probe_timeout_ms = 0;
	cfg.suspicion_mult = 11;
	assert_int_equal(gossip_core_new(&g, &cfg, &k, &io, 0, &err), SHOAL_EINVAL);
	cfg.suspicion_mult = 0;
	cfg.meta = "x";
	cfg.meta_len = GOSSIP_MAX_META + 1;
	assert_int_equal(gossip_core_new(&g, &cfg, &k, &io, 0, &err), SHOAL_ETOOBIG);
	cfg.meta_len = 1;
	assert_int_equal(gossip_core_new(&g, &cfg, &k, &io, 0, &err), 0);
	assert_int_equal(gossip_core_join(g, NULL, 0, 0, &err), SHOAL_EINVAL);
	assert_int_equal(gossip_core_join(g, (const char *[]){"no port here"}, 1, 0, &err),
			 SHOAL_EINVAL);
	gossip_core_leave(g, 0);
	assert_int_equal(gossip_core_join(g, (const char *[]){"10.0.0.2:1"}, 1, 0, &err),
			 SHOAL_ESTATE);
	assert_int_equal(gossip_core_broadcast(g, "k", 1, "v", 1, &err), SHOAL_ESTATE);
	gossip_core_free(g);
	gossip_core_free(NULL);
}

/* ---- the libuv wrapper on real sockets --------------------------------------- */

#define UV_NODES 3

struct uv_test {
	uv_loop_t loop;
	struct gossip *g[UV_NODES];
	char id[UV_NODES][8];
	bool closed[UV_NODES];
	uv_timer_t poll;
	int phase; /* 0 forming, 1 waiting for the dead, 2 done, -1 timed out */
	uint64_t start, t_converged, t_dead;
};

static bool uvt_sees(struct uv_test *u, unsigned obs, unsigned who, enum gossip_state st)
{
	const struct gossip_member *m = gossip_core_member(gossip_core(u->g[obs]), u->id[who]);

	return m != NULL && m->state == st;
}

static void uvt_closed(void *arg)
{
	*(bool *)arg = true;
}

static void uvt_finish(struct uv_test *u, int phase)
{
	u->phase = phase;
	for (unsigned i = 0; i < UV_NODES; i++)
		if (u->g[i] != NULL && !(i == 2 && phase == 2))
			gossip_close(u->g[i], uvt_closed, &u->closed[i]);
	uv_close((uv_handle_t *)&u->poll, NULL);
}

static void poll_cb(uv_timer_t *t)
{
	struct uv_test *u = t->data;
	uint64_t now = uv_now(&u->loop);
	bool ok = true;

	if (now - u->start > 15000) {
		if (u->phase == 1)
			u->g[2] = NULL; /* closed already */
		uvt_finish(u, -1);
		return;
	}
	if (u->phase == 0) {
		for (unsigned i = 0; i < UV_NODES; i++)
			for (unsigned j = 0; j < UV_NODES; j++)
				ok = ok && uvt_sees(u, i, j, GOSSIP_ALIVE);
		if (!ok)
			return;
		u->t_converged = now - u->start;
		u->phase = 1;
		u->start = now;
		gossip_close(u->g[2], uvt_closed, &u->closed[2]);
	} else if (u->phase == 1) {
		if (!uvt_sees(u, 0, 2, GOSSIP_DEAD) || !uvt_sees(u, 1, 2, GOSSIP_DEAD))
			return;
		u->t_dead = now - u->start;
		uvt_finish(u, 2);
	}
}

static void udp_wrapper_three_members(void **state)
{
	struct uv_test *u = calloc(1, sizeof(*u));
	struct gossip_keyring k;
	struct shoal_err err;
	const char *seed;

	(void)state;
	assert_non_null(u);
	memset(&k, 0, sizeof(k));
	fill_key(k.primary, 0x44);
	assert_int_equal(uv_loop_init(&u->loop), 0);
	for (unsigned i = 0; i < UV_NODES; i++) {
		struct gossip_config cfg = {.node_id = u->id[i]};

		snprintf(u->id[i], sizeof(u->id[i]), "u%u", i);
		assert_int_equal(gossip_start(&u->g[i], &u->loop, "127.0.0.1:0", &cfg, &k, &err),
				 0);
	}
	seed = gossip_core_member(gossip_core(u->g[0]), "u0")->addr;
	assert_true(strncmp(seed, "127.0.0.1:", 10) == 0);
	for (unsigned i = 1; i < UV_NODES; i++) {
		struct gossip_core *c = gossip_core(u->g[i]);

		assert_int_equal(gossip_core_join(c, &seed, 1, uv_now(&u->loop), &err), 0);
		gossip_kick(u->g[i]);
	}
	/* A bad bind fails with a reason (its handles close as the loop runs). */
	{
		struct gossip_config cfg = {.node_id = "bad"};
		struct gossip *bad = NULL;

		assert_int_equal(gossip_start(&bad, &u->loop, "127.0.0.1", &cfg, &k, &err),
				 SHOAL_EINVAL);
		assert_non_null(strstr(err.msg, "127.0.0.1"));
		assert_int_equal(gossip_start(&bad, &u->loop, "0.0.0.0:0", &cfg, &k, &err),
				 SHOAL_EINVAL);
		assert_non_null(strstr(err.msg, "advertise"));
	}
	uv_timer_init(&u->loop, &u->poll);
	u->poll.data = u;
	u->start = uv_now(&u->loop);
	uv_timer_start(&u->poll, poll_cb, 20, 20);
	assert_int_equal(uv_run(&u->loop, UV_RUN_DEFAULT), 0);
	printf("# 3 members on 127.0.0.1 converged in %llu ms; a closed one was seen dead "
	       "after %llu ms\n",
	       (unsigned long long)u->t_converged, (unsigned long long)u->t_dead);
	assert_int_equal(u->phase, 2);
	for (unsigned i = 0; i < UV_NODES; i++)
		assert_true(u->closed[i]);
	assert_int_equal(uv_loop_close(&u->loop), 0);
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate(converge, (void *)(uintptr_t)5),
	    cmocka_unit_test_prestate(converge, (void *)(uintptr_t)20),
	    cmocka_unit_test_prestate(converge, (void *)(uintptr_t)50),
	    cmocka_unit_test_prestate(converge, (void *)(uintptr_t)100),
	    cmocka_unit_test_prestate(converge, (void *)(uintptr_t)(10 * 1000 + 20)),
	    cmocka_unit_test_prestate(converge, (void *)(uintptr_t)(10 * 1000 + 100)),
	    cmocka_unit_test(dead_detected_within_3s),
	    cmocka_unit_test(suspicion_shrinks_with_confirmations),
	    cmocka_unit_test(slow_member_not_declared_dead),
	    cmocka_unit_test(leave_is_left_not_dead),
	    cmocka_unit_test(remove_not_undone_by_stale_alive),
	    cmocka_unit_test(unknown_prober_is_learned),
	    cmocka_unit_test(partition_heals),
	    cmocka_unit_test(meta_change_propagates),
	    cmocka_unit_test(user_messages_newest_wins_once),
	    cmocka_unit_test(key_rotation_and_cut_off),
	    cmocka_unit_test(hostile_packets_rejected_and_counted),
	    cmocka_unit_test(export_merge_joins_two_clusters),
	    cmocka_unit_test(config_errors_say_why),
	    cmocka_unit_test(udp_wrapper_three_members),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
