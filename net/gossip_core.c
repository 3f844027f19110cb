/* The gossip core: SWIM membership with Lifeguard suspicion and piggybacked
 * dissemination, sealed packets, all on virtual time (no socket, no clock). */
#include "net/gossip.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sorted.h"

#define NONCE_LEN	  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN		  crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_OVERHEAD	  (1 + NONCE_LEN + TAG_LEN)
#define BODY_MAX	  (GOSSIP_MAX_PACKET - SEAL_OVERHEAD) /* plaintext of a packet */
#define ARRAY_HDR	  3				      /* msgpack array16 header */
#define PKT_MSGS_MAX	  (BODY_MAX - ARRAY_HDR)	      /* bytes of messages in a packet */
#define PKT_MAX_MSGS	  255				      /* messages in a packet */
#define STATE_MAX_RECORDS (GOSSIP_MAX_MEMBERS + GOSSIP_MAX_KEYS)

#define DEF_PROBE_INTERVAL  300
#define DEF_PROBE_TIMEOUT   150
#define DEF_INDIRECT	    3
#define DEF_SUSPICION_MULT  4
#define DEF_RETRANSMIT_MULT 4
#define DEF_GOSSIP_INTERVAL 100
#define DEF_FANOUT	    3
#define MAX_INTERVAL	    60000
#define MAX_SUSPICION_MULT  10
#define MAX_SMALL_KNOB	    16

/* A suspicion shrinks from its start value to this fraction of it. */
#define SUSPICION_SHRINK 3
/* Members that confirm a suspicion at most (suspicion_mult - 2), plus its
 * originator. */
#define MAX_SUSPECTERS (MAX_SUSPICION_MULT - 1)
/* Every this many probe rounds, ping one DEAD member with the news that it is
 * dead: if it is alive after all (a healed partition, a restart) it refutes. */
#define RECONNECT_EVERY 5
/* Push-pull with a random member every this many probe intervals. */
#define SYNC_EVERY    100
#define JOIN_RETRY_MS 1000
#define JOIN_ATTEMPTS 5
/* Suspect members pinged in one gossip round, at most. */
#define MAX_SUSPECT_PINGS 4
/* Indirect probes run for others at once. */
#define MAX_FORWARDS 64

enum msg_type {
	MSG_PING = 1,
	MSG_PING_REQ = 2,
	MSG_ACK = 3,
	MSG_ALIVE = 4,
	MSG_SUSPECT = 5,
	MSG_DEAD = 6,
	MSG_LEFT = 7,
	MSG_USER = 8,
	MSG_SYNC_REQ = 9,
	MSG_SYNC = 10,
	MSG_STATE = 11,
};

/* STATE's state field: the public states plus "removed". */
enum { WIRE_ALIVE, WIRE_SUSPECT, WIRE_DEAD, WIRE_LEFT, WIRE_REMOVED };

/* One decoded message. Strings are copied and checked; @data points into the
 * decoded packet. */
struct msg {
	unsigned type;
	uint32_t seq;
	uint64_t num; /* incarnation or version */
	unsigned state;
	bool removed;
	char id[ID_LEN + 1]; /* the member it is about, or the probe target */
	char from[ID_LEN + 1];
	char addr[GOSSIP_ADDR_LEN];
	char key[GOSSIP_MAX_KEY + 1];
	const unsigned char *data;
	size_t len;
};

/* What the public record does not show: parallel to gossip_core.pub. */
struct member_ext {
	unsigned char *meta; /* owned; pub.meta points here */
	bool removed;	     /* LEFT by node rm rather than by leaving */
	uint64_t changed_ms; /* last change of state, to evict the oldest tombstone */
	/* Suspicion (state SUSPECT): started at @susp_start, lasting from
	 * @susp_max down to @susp_min as @susp_n of @susp_k confirmations come. */
	uint64_t susp_start, susp_min, susp_max, susp_deadline;
	unsigned susp_k, susp_n;
	char susp_ids[MAX_SUSPECTERS][ID_LEN + 1]; /* originator and confirmers */
	unsigned susp_nids;
};

/* One message waiting to be piggybacked, at most one per member or key. */
struct bcast {
	bool user;
	char key[GOSSIP_MAX_KEY + 1]; /* member id or application key */
	unsigned transmits;
	uint64_t seq; /* newer first among equal transmits */
	size_t len;
	unsigned char *msg;
};

struct user_entry {
	char key[GOSSIP_MAX_KEY + 1];
	uint64_t version;
	unsigned char *data;
	size_t len;
};

/* The probe of this round. */
struct probe {
	bool active, acked, indirect;
	char target[ID_LEN + 1];
	uint32_t seq;
	uint64_t start;
};

/* An indirect probe run for another member: our PING @seq to @target, whose
 * ACK goes back to @origin as ACK @origin_seq. */
struct forward {
	bool used;
	uint32_t seq, origin_seq;
	char target[ID_LEN + 1];
	char origin[GOSSIP_ADDR_LEN];
	uint64_t expires;
};

struct gossip_core {
	char self_id[ID_LEN + 1];
	unsigned probe_interval, probe_timeout, indirect_checks, suspicion_mult;
	unsigned retransmit_mult, gossip_interval, gossip_fanout;
	void *cb_arg;
	void (*member_changed)(void *arg, const struct gossip_member *m);
	void (*user_message)(void *arg, const char *key, uint64_t version, const void *data,
			     size_t len);
	void (*rejected)(void *arg, const char *from, const char *why);
	struct gossip_keyring keys;
	struct gossip_core_io io;
	bool left; /* this member left or was removed: it probes no more */

	/* Members sorted by id, this one included; the other arrays have the
	 * same capacity. */
	struct gossip_member *pub;
	struct member_ext *ext;
	size_t n, cap;
	uint32_t *scratch;
	char (*probe_list)[ID_LEN + 1]; /* shuffled round-robin order */
	size_t probe_n, probe_idx;

	struct probe probe;
	unsigned probe_rounds;
	uint64_t next_probe, next_gossip, next_sync;
	uint32_t seq;
	struct forward fwd[MAX_FORWARDS];

	struct bcast *q;
	size_t nq, capq;
	uint64_t bseq;

	struct user_entry *users; /* sorted by key */
	size_t nusers, capusers;

	char seeds[GOSSIP_MAX_SEEDS][GOSSIP_ADDR_LEN];
	size_t nseeds;
	bool joining;
	unsigned join_attempts;
	uint64_t join_retry;

	struct gossip_stats stats;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint32_t rnd(struct gossip_core *g, uint32_t n)
{
	uint32_t r;

	if (n <= 1)
		return 0;
	r = g->io.random(g->io.arg, n);
	return r < n ? r : r % n;
}

/* 1 to @max characters of printable ASCII without space. */
static bool printable(const char *s, size_t min, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static bool valid_addr(const char *s)
{
	return s != NULL && printable(s, 1, GOSSIP_ADDR_LEN - 1);
}

static bool valid_key(const char *s)
{
	return s != NULL && printable(s, 1, GOSSIP_MAX_KEY);
}

/* log2(@x) * 1024 for 1 <= @x < 2^40, to the last bit. */
static uint64_t log2_q10(uint64_t x)
{
	uint64_t m, frac = 0;
	unsigned b = 0;

	PRE(x >= 1 && x < ((uint64_t)1 << 40));
	while ((x >> b) > 1)
		b++;
	m = (x << 16) >> b; /* x / 2^b in [1, 2), 16 fraction bits */
	for (unsigned i = 0; i < 10; i++) {
		m = (m * m) >> 16;
		frac <<= 1;
		if (m >= (uint64_t)2 << 16) {
			m >>= 1;
			frac |= 1;
		}
	}
	return ((uint64_t)b << 10) | frac;
}

/* ceil(log10(@n + 1)), as memberlist scales retransmits. */
static unsigned log10_ceil(size_t n)
{
	unsigned d = 0;

	for (size_t p = 1; p < n + 1; p *= 10)
		d++;
	return d;
}

/* ---- members ------------------------------------------------------------ */

static const char *member_id_at(const void *items, size_t i)
{
	return ((const struct gossip_member *)items)[i].id;
}

/* True if @id is known, with its index in *@pos; else *@pos is where it goes. */
static bool find(const struct gossip_core *g, const char *id, size_t *pos)
{
	bool found;

	*pos = sorted_find(g->pub, g->n, member_id_at, id, &found);
	return found;
}

static bool is_self(const struct gossip_core *g, const char *id)
{
	return strcmp(id, g->self_id) == 0;
}

static size_t self_index(const struct gossip_core *g)
{
	size_t i = 0;
	bool found = find(g, g->self_id, &i);

	PRE(found);
	(void)found;
	return i;
}

static bool live(enum gossip_state s)
{
	return s == GOSSIP_ALIVE || s == GOSSIP_SUSPECT;
}

/* Members alive or suspect, this one included. */
static size_t live_count(const struct gossip_core *g)
{
	size_t c = 0;

	for (size_t i = 0; i < g->n; i++)
		if (live(g->pub[i].state))
			c++;
	return c;
}

static void notify(struct gossip_core *g, size_t i)
{
	if (g->member_changed != NULL)
		g->member_changed(g->cb_arg, &g->pub[i]);
}

static int grow_members(struct gossip_core *g)
{
	size_t cap = g->cap == 0 ? 16 : g->cap * 2;
	struct gossip_member *pub;
	struct member_ext *ext;
	uint32_t *scratch;
	char(*list)[ID_LEN + 1];

	if (cap > GOSSIP_MAX_MEMBERS)
		cap = GOSSIP_MAX_MEMBERS;
	pub = realloc(g->pub, cap * sizeof(*pub));
	if (pub == NULL)
		return SHOAL_ENOMEM;
	g->pub = pub;
	ext = realloc(g->ext, cap * sizeof(*ext));
	if (ext == NULL)
		return SHOAL_ENOMEM;
	g->ext = ext;
	scratch = realloc(g->scratch, cap * sizeof(*scratch));
	if (scratch == NULL)
		return SHOAL_ENOMEM;
	g->scratch = scratch;
	list = realloc(g->probe_list, cap * sizeof(*list));
	if (list == NULL)
		return SHOAL_ENOMEM;
	g->probe_list = list;
	g->cap = cap;
	return 0;
}

/* Replace member @i's metadata with a copy of @meta. */
static int set_member_meta(struct gossip_core *g, size_t i, const void *meta, size_t len)
{
	unsigned char *copy = NULL;

	PRE(len <= GOSSIP_MAX_META);
	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return SHOAL_ENOMEM;
		memcpy(copy, meta, len);
	}
	free(g->ext[i].meta);
	g->ext[i].meta = copy;
	g->pub[i].meta = copy;
	g->pub[i].meta_len = len;
	return 0;
}

static bool same_meta(const struct gossip_member *m, const unsigned char *meta, size_t len)
{
	return m->meta_len == len && (len == 0 || memcmp(m->meta, meta, len) == 0);
}

static void queue_drop(struct gossip_core *g, bool user, const char *key);

static void member_erase(struct gossip_core *g, size_t i)
{
	free(g->ext[i].meta);
	memmove(&g->pub[i], &g->pub[i + 1], (g->n - i - 1) * sizeof(*g->pub));
	memmove(&g->ext[i], &g->ext[i + 1], (g->n - i - 1) * sizeof(*g->ext));
	g->n--;
}

/* Make room by forgetting the oldest DEAD or LEFT member. */
static bool evict_tombstone(struct gossip_core *g)
{
	size_t best = SIZE_MAX;

	for (size_t i = 0; i < g->n; i++) {
		if (live(g->pub[i].state) || is_self(g, g->pub[i].id))
			continue;
		if (best == SIZE_MAX || g->ext[i].changed_ms < g->ext[best].changed_ms)
			best = i;
	}
	if (best == SIZE_MAX)
		return false;
	queue_drop(g, false, g->pub[best].id);
	member_erase(g, best);
	return true;
}

/* Put @id into the rest of this probe round at a random place. */
static void probe_list_add(struct gossip_core *g, const char *id)
{
	size_t pos;

	if (is_self(g, id) || g->probe_n >= g->cap)
		return;
	pos = g->probe_idx + rnd(g, (uint32_t)(g->probe_n - g->probe_idx + 1));
	if (pos < g->probe_n)
		memcpy(g->probe_list[g->probe_n], g->probe_list[pos], ID_LEN + 1);
	memcpy(g->probe_list[pos], id, strlen(id) + 1);
	g->probe_n++;
}

/* Add a member unknown so far. Returns its index, or -1 if there is no room. */
static long member_insert(struct gossip_core *g, const char *id, uint64_t inc,
			  enum gossip_state state, const char *addr, const unsigned char *meta,
			  size_t meta_len, bool removed, uint64_t now)
{
	struct gossip_member *m;
	struct member_ext *e;
	size_t pos;
	bool found;

	PRE(id_is_valid_prefix(id) && strlen(addr) < GOSSIP_ADDR_LEN);
	if (g->n == GOSSIP_MAX_MEMBERS && !evict_tombstone(g))
		return -1;
	if (g->n == g->cap && grow_members(g) != 0)
		return -1;
	found = find(g, id, &pos);
	PRE(!found);
	(void)found;
	memmove(&g->pub[pos + 1], &g->pub[pos], (g->n - pos) * sizeof(*g->pub));
	memmove(&g->ext[pos + 1], &g->ext[pos], (g->n - pos) * sizeof(*g->ext));
	g->n++;
	m = &g->pub[pos];
	e = &g->ext[pos];
	memset(m, 0, sizeof(*m));
	memset(e, 0, sizeof(*e));
	memcpy(m->id, id, strlen(id) + 1);
	memcpy(m->addr, addr, strlen(addr) + 1);
	m->state = state;
	m->incarnation = inc;
	e->removed = removed;
	e->changed_ms = now;
	if (set_member_meta(g, pos, meta, meta_len) != 0) {
		member_erase(g, pos);
		return -1;
	}
	if (live(state))
		probe_list_add(g, id);
	return (long)pos;
}

/* ---- suspicion (Lifeguard) ---------------------------------------------- */

/* suspicion_mult * max(1, log10(@n)) * probe_interval. */
static uint64_t suspicion_max(const struct gossip_core *g, size_t n)
{
	uint64_t scale = 1000;

	if (n > 10)
		scale = log2_q10(n) * 1000 / log2_q10(10);
	return (uint64_t)g->suspicion_mult * scale * g->probe_interval / 1000;
}

/* max - (max - min) * log(c + 1) / log(k + 1), at least min. */
static uint64_t suspicion_timeout(const struct member_ext *e)
{
	uint64_t span = e->susp_max - e->susp_min;

	if (e->susp_n >= e->susp_k)
		return e->susp_min;
	return e->susp_max - span * log2_q10(e->susp_n + 1) / log2_q10(e->susp_k + 1);
}

static void suspicion_start(struct gossip_core *g, size_t i, const char *from, uint64_t now)
{
	struct member_ext *e = &g->ext[i];
	size_t n = live_count(g);
	unsigned k = g->suspicion_mult > 2 ? g->suspicion_mult - 2 : 0;

	/* Without enough members to confirm, waiting for them is pointless. */
	if (n < 2 || n - 2 < k)
		k = 0;
	e->susp_start = now;
	e->susp_max = suspicion_max(g, n);
	e->susp_min = e->susp_max / SUSPICION_SHRINK;
	e->susp_k = k;
	e->susp_n = 0;
	e->susp_nids = 0;
	if (from[0] != '\0') {
		memcpy(e->susp_ids[0], from, strlen(from) + 1);
		e->susp_nids = 1;
	}
	e->susp_deadline = now + suspicion_timeout(e);
}

/* A member other than those counted so far suspects @i too. */
static bool suspicion_confirm(struct gossip_core *g, size_t i, const char *from)
{
	struct member_ext *e = &g->ext[i];

	if (from[0] == '\0' || e->susp_n >= e->susp_k || e->susp_nids == MAX_SUSPECTERS)
		return false;
	for (unsigned j = 0; j < e->susp_nids; j++)
		if (strcmp(e->susp_ids[j], from) == 0)
			return false;
	memcpy(e->susp_ids[e->susp_nids++], from, strlen(from) + 1);
	e->susp_n++;
	e->susp_deadline = e->susp_start + suspicion_timeout(e);
	return true;
}

/* ---- msgpack encoding --------------------------------------------------- */

/* A bounded output for msgpack_packer. */
struct wbuf {
	unsigned char *p;
	size_t len, cap;
	bool overflow;
};

static int wbuf_write(void *data, const char *buf, size_t len)
{
	struct wbuf *w = data;

	if (w->overflow || len > w->cap - w->len) {
		w->overflow = true;
		return -1;
	}
	if (len > 0)
		memcpy(w->p + w->len, buf, len);
	w->len += len;
	return 0;
}

static void wbuf_init(struct wbuf *w, msgpack_packer *pk, unsigned char *p, size_t cap)
{
	w->p = p;
	w->len = 0;
	w->cap = cap;
	w->overflow = false;
	msgpack_packer_init(pk, w, wbuf_write);
}

/* A growing output for msgpack_packer. */
struct bufw {
	struct buf *b;
	bool failed;
};

static int bufw_write(void *data, const char *buf, size_t len)
{
	struct bufw *w = data;

	if (w->failed || buf_append(w->b, buf, len) != 0) {
		w->failed = true;
		return -1;
	}
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	if (n > 0)
		msgpack_pack_str_body(pk, s, n);
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	if (n > 0)
		msgpack_pack_bin_body(pk, p, n);
}

static void enc_ping(msgpack_packer *pk, uint32_t seq, const char *target, const char *from)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, MSG_PING);
	msgpack_pack_uint32(pk, seq);
	pack_str(pk, target);
	pack_str(pk, from);
}

static void enc_ping_req(msgpack_packer *pk, uint32_t seq, const char *target, const char *addr)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, MSG_PING_REQ);
	msgpack_pack_uint32(pk, seq);
	pack_str(pk, target);
	pack_str(pk, addr);
}

static void enc_ack(msgpack_packer *pk, uint32_t seq, const char *id)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, MSG_ACK);
	msgpack_pack_uint32(pk, seq);
	pack_str(pk, id);
}

static void enc_marker(msgpack_packer *pk, unsigned type)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_uint8(pk, (uint8_t)type);
}

/* What we know of member @i as the message that spreads it; @from is the
 * suspecting member for SUSPECT. */
static void enc_member(const struct gossip_core *g, msgpack_packer *pk, size_t i, const char *from)
{
	const struct gossip_member *m = &g->pub[i];

	switch (m->state) {
	case GOSSIP_ALIVE:
		msgpack_pack_array(pk, 5);
		msgpack_pack_uint8(pk, MSG_ALIVE);
		pack_str(pk, m->id);
		msgpack_pack_uint64(pk, m->incarnation);
		pack_str(pk, m->addr);
		pack_bin(pk, m->meta, m->meta_len);
		break;
	case GOSSIP_SUSPECT:
		msgpack_pack_array(pk, 4);
		msgpack_pack_uint8(pk, MSG_SUSPECT);
		pack_str(pk, m->id);
		msgpack_pack_uint64(pk, m->incarnation);
		pack_str(pk, from != NULL && from[0] != '\0' ? from : g->self_id);
		break;
	case GOSSIP_DEAD:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, MSG_DEAD);
		pack_str(pk, m->id);
		msgpack_pack_uint64(pk, m->incarnation);
		break;
	case GOSSIP_LEFT:
		msgpack_pack_array(pk, 4);
		msgpack_pack_uint8(pk, MSG_LEFT);
		pack_str(pk, m->id);
		msgpack_pack_uint64(pk, m->incarnation);
		if (g->ext[i].removed)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	}
}

static void enc_state(const struct gossip_core *g, msgpack_packer *pk, size_t i)
{
	const struct gossip_member *m = &g->pub[i];
	unsigned state = (unsigned)m->state;

	if (m->state == GOSSIP_LEFT && g->ext[i].removed)
		state = WIRE_REMOVED;
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint8(pk, MSG_STATE);
	pack_str(pk, m->id);
	msgpack_pack_uint64(pk, m->incarnation);
	msgpack_pack_uint8(pk, (uint8_t)state);
	pack_str(pk, m->addr);
	pack_bin(pk, m->meta, m->meta_len);
}

static void enc_user(msgpack_packer *pk, const struct user_entry *u)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, MSG_USER);
	pack_str(pk, u->key);
	msgpack_pack_uint64(pk, u->version);
	pack_bin(pk, u->data, u->len);
}

/* ---- the broadcast queue ------------------------------------------------ */

static void queue_drop(struct gossip_core *g, bool user, const char *key)
{
	for (size_t i = 0; i < g->nq; i++) {
		if (g->q[i].user == user && strcmp(g->q[i].key, key) == 0) {
			free(g->q[i].msg);
			g->q[i] = g->q[--g->nq];
			return;
		}
	}
}

/* Queue @msg about @key, replacing what was queued about it. Without memory
 * the news is not spread by us; others still spread it. */
static void queue_put(struct gossip_core *g, bool user, const char *key, const unsigned char *msg,
		      size_t len)
{
	unsigned char *copy = malloc(len);
	struct bcast *b;

	if (copy == NULL)
		return;
	memcpy(copy, msg, len);
	queue_drop(g, user, key);
	if (g->nq == g->capq) {
		size_t cap = g->capq == 0 ? 16 : g->capq * 2;
		struct bcast *q = realloc(g->q, cap * sizeof(*q));

		if (q == NULL) {
			free(copy);
			return;
		}
		g->q = q;
		g->capq = cap;
	}
	b = &g->q[g->nq++];
	b->user = user;
	memcpy(b->key, key, strlen(key) + 1);
	b->transmits = 0;
	b->seq = ++g->bseq;
	b->len = len;
	b->msg = copy;
}

static void bcast_member(struct gossip_core *g, size_t i, const char *from)
{
	unsigned char tmp[PKT_MSGS_MAX];
	msgpack_packer pk;
	struct wbuf w;

	wbuf_init(&w, &pk, tmp, sizeof(tmp));
	enc_member(g, &pk, i, from);
	PRE(!w.overflow);
	if (!w.overflow)
		queue_put(g, false, g->pub[i].id, tmp, w.len);
}

static void bcast_user(struct gossip_core *g, const struct user_entry *u)
{
	unsigned char tmp[PKT_MSGS_MAX];
	msgpack_packer pk;
	struct wbuf w;

	wbuf_init(&w, &pk, tmp, sizeof(tmp));
	enc_user(&pk, u);
	PRE(!w.overflow);
	if (!w.overflow)
		queue_put(g, true, u->key, tmp, w.len);
}

static int bcast_cmp(const void *a, const void *b)
{
	const struct bcast *x = a, *y = b;

	if (x->transmits != y->transmits)
		return x->transmits < y->transmits ? -1 : 1;
	return x->seq > y->seq ? -1 : x->seq < y->seq ? 1 : 0;
}

/* ---- packets ------------------------------------------------------------ */

struct pkt {
	unsigned char buf[ARRAY_HDR + PKT_MSGS_MAX]; /* header room, then messages */
	size_t len;				     /* bytes of messages */
	unsigned count;
};

static void pkt_init(struct pkt *p)
{
	p->len = 0;
	p->count = 0;
}

static void pkt_begin(struct pkt *p, struct wbuf *w, msgpack_packer *pk)
{
	wbuf_init(w, pk, p->buf + ARRAY_HDR + p->len, PKT_MSGS_MAX - p->len);
}

/* Keep the message just encoded if it fit. */
static bool pkt_end(struct pkt *p, const struct wbuf *w)
{
	if (w->overflow || p->count == PKT_MAX_MSGS)
		return false;
	p->len += w->len;
	p->count++;
	return true;
}

static bool pkt_add(struct pkt *p, const unsigned char *msg, size_t len)
{
	if (p->count == PKT_MAX_MSGS || len > PKT_MSGS_MAX - p->len)
		return false;
	memcpy(p->buf + ARRAY_HDR + p->len, msg, len);
	p->len += len;
	p->count++;
	return true;
}

static void pkt_ping(struct pkt *p, uint32_t seq, const char *target, const char *from)
{
	msgpack_packer pk;
	struct wbuf w;

	pkt_begin(p, &w, &pk);
	enc_ping(&pk, seq, target, from);
	pkt_end(p, &w);
}

static void pkt_ack(struct pkt *p, uint32_t seq, const char *id)
{
	msgpack_packer pk;
	struct wbuf w;

	pkt_begin(p, &w, &pk);
	enc_ack(&pk, seq, id);
	pkt_end(p, &w);
}

static bool pkt_marker(struct pkt *p, unsigned type)
{
	msgpack_packer pk;
	struct wbuf w;

	pkt_begin(p, &w, &pk);
	enc_marker(&pk, type);
	return pkt_end(p, &w);
}

/* If we believe member @id is not alive, say so first: a live member that
 * hears it is suspect or dead refutes at once (Lifeguard's "buddy system"),
 * one that was removed learns it and goes quiet. */
static void pkt_buddy(struct gossip_core *g, struct pkt *p, const char *id)
{
	msgpack_packer pk;
	struct wbuf w;
	size_t i;

	if (!find(g, id, &i) || is_self(g, id) || g->pub[i].state == GOSSIP_ALIVE)
		return;
	pkt_begin(p, &w, &pk);
	enc_member(g, &pk, i, g->self_id);
	pkt_end(p, &w);
}

static size_t retransmit_limit(const struct gossip_core *g)
{
	size_t n = live_count(g);

	return (size_t)g->retransmit_mult * log10_ceil(n > 0 ? n : 1);
}

/* Fill the rest of @p with queued broadcasts, least sent and newest first;
 * those sent often enough leave the queue. */
static void pkt_fill(struct gossip_core *g, struct pkt *p)
{
	size_t limit, j = 0;

	if (g->nq == 0)
		return;
	limit = retransmit_limit(g);
	qsort(g->q, g->nq, sizeof(*g->q), bcast_cmp);
	for (size_t i = 0; i < g->nq; i++) {
		if (pkt_add(p, g->q[i].msg, g->q[i].len))
			g->q[i].transmits++;
	}
	for (size_t i = 0; i < g->nq; i++) {
		if (g->q[i].transmits >= limit)
			free(g->q[i].msg);
		else
			g->q[j++] = g->q[i];
	}
	g->nq = j;
}

/* Seal @p under the primary key and send it to @addr. */
static void pkt_send(struct gossip_core *g, struct pkt *p, const char *addr)
{
	unsigned char out[GOSSIP_MAX_PACKET];
	unsigned char *body;
	unsigned long long clen = 0;
	size_t blen;

	if (p->count == 0 || addr[0] == '\0')
		return;
	if (p->count < 16) {
		body = p->buf + ARRAY_HDR - 1;
		body[0] = (unsigned char)(0x90 | p->count);
		blen = 1 + p->len;
	} else {
		body = p->buf;
		body[0] = 0xdc;
		body[1] = (unsigned char)(p->count >> 8);
		body[2] = (unsigned char)(p->count & 0xff);
		blen = ARRAY_HDR + p->len;
	}
	PRE(blen <= BODY_MAX);
	out[0] = GOSSIP_WIRE_VERSION;
	randombytes_buf(out + 1, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + NONCE_LEN, &clen, body, blen, out, 1,
						   NULL, out + 1, g->keys.primary);
	g->io.send(g->io.arg, addr, out, 1 + NONCE_LEN + (size_t)clen);
	g->stats.sent++;
}

/* ---- msgpack decoding --------------------------------------------------- */

static size_t be_uint(const unsigned char *p, size_t n)
{
	size_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Walk msgpack bytes without allocating: every length must fit in what is
 * left and every declared array or map item needs at least a byte, so
 * msgpack-c, which allocates by declared counts, allocates at most a small
 * multiple of @len. The bytes must hold exactly one object. (msgpack-c itself
 * refuses nesting deeper than 32.) */
static bool prescan(const unsigned char *p, size_t len)
{
	size_t pos = 0, pending = 1;

	while (pending > 0) {
		size_t hdr = 0, body = 0, items = 0, extra = 0;
		unsigned char b;

		if (pos >= len)
			return false;
		b = p[pos++];
		pending--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, false, true */
		} else if (b <= 0x8f) {
			items = 2 * (size_t)(b & 0x0f);
		} else if (b <= 0x9f) {
			items = b & 0x0f;
		} else if (b <= 0xbf) {
			body = b & 0x1f;
		} else if (b >= 0xc4 && b <= 0xc6) { /* bin 8/16/32 */
			hdr = (size_t)1 << (b - 0xc4);
		} else if (b >= 0xc7 && b <= 0xc9) { /* ext 8/16/32, then a type byte */
			hdr = (size_t)1 << (b - 0xc7);
			extra = 1;
		} else if (b >= 0xca && b <= 0xd3) { /* float, uint, int */
			static const unsigned char sizes[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};

			body = sizes[b - 0xca];
		} else if (b >= 0xd4 && b <= 0xd8) { /* fixext */
			body = 1 + ((size_t)1 << (b - 0xd4));
		} else if (b >= 0xd9 && b <= 0xdb) { /* str 8/16/32 */
			hdr = (size_t)1 << (b - 0xd9);
		} else if (b >= 0xdc) { /* array/map 16/32 */
			hdr = (b == 0xdc || b == 0xde) ? 2 : 4;
		} else {
			return false; /* 0xc1 */
		}
		if (hdr > 0) {
			if (hdr > len - pos)
				return false;
			if (b >= 0xdc)
				items = be_uint(p + pos, hdr) * (b >= 0xde ? 2 : 1);
			else
				body = be_uint(p + pos, hdr) + extra;
			pos += hdr;
		}
		if (body > len - pos)
			return false;
		pos += body;
		if (items > len - pos || pending + items > len - pos)
			return false;
		pending += items;
	}
	return pos == len;
}

static bool get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return false;
	*out = o->via.u64;
	return true;
}

/* A string of @min to @max printable characters (no space), copied to @out
 * (@max + 1 bytes). */
static bool get_str(const msgpack_object *o, size_t min, size_t max, char *out)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size < min || o->via.str.size > max)
		return false;
	for (uint32_t i = 0; i < o->via.str.size; i++) {
		char c = o->via.str.ptr[i];

		if (c <= ' ' || c > '~')
			return false;
		out[i] = c;
	}
	out[o->via.str.size] = '\0';
	return true;
}

static bool get_id(const msgpack_object *o, char out[ID_LEN + 1])
{
	return get_str(o, 1, ID_LEN, out) && id_is_valid_prefix(out);
}

static bool get_addr(const msgpack_object *o, bool may_be_empty, char out[GOSSIP_ADDR_LEN])
{
	return get_str(o, may_be_empty ? 0 : 1, GOSSIP_ADDR_LEN - 1, out);
}

static bool get_bin(const msgpack_object *o, size_t max, const unsigned char **p, size_t *len)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max)
		return false;
	*p = (const unsigned char *)o->via.bin.ptr;
	*len = o->via.bin.size;
	return true;
}

static bool get_seq(const msgpack_object *o, uint32_t *out)
{
	uint64_t v;

	if (!get_uint(o, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Decode one message. Returns 1 if decoded, 0 for a type this version does
 * not know (skipped), -1 if malformed. */
static int decode_msg(const msgpack_object *o, struct msg *m)
{
	const msgpack_object *f;
	uint32_t n;
	uint64_t v;
	bool ok;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
		return -1;
	f = o->via.array.ptr;
	n = o->via.array.size;
	if (!get_uint(&f[0], UINT32_MAX, &v))
		return -1;
	memset(m, 0, sizeof(*m));
	m->type = (unsigned)v;
	switch (m->type) {
	case MSG_PING:
		ok = n >= 4 && get_seq(&f[1], &m->seq) && get_id(&f[2], m->id) &&
		     get_id(&f[3], m->from);
		break;
	case MSG_PING_REQ:
		ok = n >= 4 && get_seq(&f[1], &m->seq) && get_id(&f[2], m->id) &&
		     get_addr(&f[3], false, m->addr);
		break;
	case MSG_ACK:
		ok = n >= 3 && get_seq(&f[1], &m->seq) && get_id(&f[2], m->id);
		break;
	case MSG_ALIVE:
		ok = n >= 5 && get_id(&f[1], m->id) && get_uint(&f[2], UINT64_MAX, &m->num) &&
		     get_addr(&f[3], false, m->addr) &&
		     get_bin(&f[4], GOSSIP_MAX_META, &m->data, &m->len);
		break;
	case MSG_SUSPECT:
		ok = n >= 4 && get_id(&f[1], m->id) && get_uint(&f[2], UINT64_MAX, &m->num) &&
		     get_id(&f[3], m->from);
		break;
	case MSG_DEAD:
		ok = n >= 3 && get_id(&f[1], m->id) && get_uint(&f[2], UINT64_MAX, &m->num);
		break;
	case MSG_LEFT:
		ok = n >= 4 && get_id(&f[1], m->id) && get_uint(&f[2], UINT64_MAX, &m->num) &&
		     f[3].type == MSGPACK_OBJECT_BOOLEAN;
		if (ok)
			m->removed = f[3].via.boolean;
		break;
	case MSG_USER:
		ok = n >= 4 && get_str(&f[1], 1, GOSSIP_MAX_KEY, m->key) &&
		     get_uint(&f[2], UINT64_MAX, &m->num) &&
		     get_bin(&f[3], GOSSIP_MAX_USER, &m->data, &m->len);
		break;
	case MSG_SYNC_REQ:
	case MSG_SYNC:
		ok = true;
		break;
	case MSG_STATE:
		ok = n >= 6 && get_id(&f[1], m->id) && get_uint(&f[2], UINT64_MAX, &m->num) &&
		     get_uint(&f[3], WIRE_REMOVED, &v);
		if (ok) {
			m->state = (unsigned)v;
			ok = get_addr(&f[4], v == WIRE_LEFT || v == WIRE_REMOVED, m->addr) &&
			     get_bin(&f[5], GOSSIP_MAX_META, &m->data, &m->len);
		}
		break;
	default:
		return 0;
	}
	return ok ? 1 : -1;
}

/* Parse @len bytes as one msgpack array of 1 to @max messages. */
static bool parse_body(const unsigned char *p, size_t len, size_t max, msgpack_unpacked *u)
{
	size_t off = 0;

	if (!prescan(p, len))
		return false;
	if (msgpack_unpack_next(u, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len)
		return false;
	return u->data.type == MSGPACK_OBJECT_ARRAY && u->data.via.array.size >= 1 &&
	       u->data.via.array.size <= max;
}

/* ---- applying what others say ------------------------------------------- */

/* Someone says we are suspect, dead or not what we are at incarnation @inc:
 * answer with a greater one. If ours is greater already, the news of it has
 * not reached them: spread our ALIVE again. */
static void refute(struct gossip_core *g, uint64_t inc)
{
	size_t i = self_index(g);

	if (g->left || inc == UINT64_MAX)
		return;
	if (g->pub[i].incarnation <= inc)
		g->pub[i].incarnation = inc + 1;
	bcast_member(g, i, NULL);
}

static void apply_alive(struct gossip_core *g, const struct msg *m, bool spread, uint64_t now)
{
	struct gossip_member *p;
	bool changed;
	long ins;
	size_t i;

	if (is_self(g, m->id)) {
		p = &g->pub[self_index(g)];
		if (g->left)
			return;
		if (m->num > p->incarnation ||
		    (m->num == p->incarnation &&
		     (strcmp(m->addr, p->addr) != 0 || !same_meta(p, m->data, m->len))))
			refute(g, m->num);
		return;
	}
	if (!find(g, m->id, &i)) {
		ins = member_insert(g, m->id, m->num, GOSSIP_ALIVE, m->addr, m->data, m->len, false,
				    now);
		if (ins < 0)
			return;
		if (spread)
			bcast_member(g, (size_t)ins, NULL);
		notify(g, (size_t)ins);
		return;
	}
	p = &g->pub[i];
	if (m->num <= p->incarnation)
		return;
	changed = p->state != GOSSIP_ALIVE || strcmp(p->addr, m->addr) != 0 ||
		  !same_meta(p, m->data, m->len);
	if (!same_meta(p, m->data, m->len) && set_member_meta(g, i, m->data, m->len) != 0)
		return;
	if (!live(p->state))
		probe_list_add(g, p->id);
	if (p->state != GOSSIP_ALIVE)
		g->ext[i].changed_ms = now;
	p->state = GOSSIP_ALIVE;
	p->incarnation = m->num;
	memcpy(p->addr, m->addr, strlen(m->addr) + 1);
	g->ext[i].removed = false;
	if (spread)
		bcast_member(g, i, NULL);
	if (changed)
		notify(g, i);
}

/* @from: the suspecting member, "" if unknown (state merged from a peer). */
static void apply_suspect(struct gossip_core *g, const char *id, uint64_t inc, const char *from,
			  bool spread, uint64_t now)
{
	struct gossip_member *p;
	size_t i;

	if (is_self(g, id)) {
		refute(g, inc);
		return;
	}
	if (!find(g, id, &i))
		return;
	p = &g->pub[i];
	if (inc < p->incarnation || !live(p->state))
		return;
	if (p->state == GOSSIP_SUSPECT) {
		p->incarnation = inc;
		if (suspicion_confirm(g, i, from) && spread)
			bcast_member(g, i, from);
		return;
	}
	p->state = GOSSIP_SUSPECT;
	p->incarnation = inc;
	g->ext[i].changed_ms = now;
	suspicion_start(g, i, from, now);
	if (spread)
		bcast_member(g, i, from);
	notify(g, i);
}

static void apply_dead(struct gossip_core *g, const char *id, uint64_t inc, bool spread,
		       uint64_t now)
{
	struct gossip_member *p;
	size_t i;

	if (is_self(g, id)) {
		refute(g, inc);
		return;
	}
	if (!find(g, id, &i))
		return;
	p = &g->pub[i];
	if (inc < p->incarnation || !live(p->state))
		return;
	p->state = GOSSIP_DEAD;
	p->incarnation = inc;
	g->ext[i].changed_ms = now;
	if (spread)
		bcast_member(g, i, NULL);
	notify(g, i);
}

static void apply_left(struct gossip_core *g, const char *id, uint64_t inc, bool removed,
		       bool spread, uint64_t now)
{
	struct gossip_member *p;
	long ins;
	size_t i;

	if (is_self(g, id)) {
		i = self_index(g);
		if (!removed) {
			/* We left in an earlier life and are back. */
			refute(g, inc);
			return;
		}
		if (g->left || inc < g->pub[i].incarnation)
			return;
		g->left = true;
		g->probe.active = false;
		g->joining = false;
		g->pub[i].state = GOSSIP_LEFT;
		g->pub[i].incarnation = inc;
		g->ext[i].removed = true;
		g->ext[i].changed_ms = now;
		notify(g, i);
		return;
	}
	if (!find(g, id, &i)) {
		/* Remember it, so a stale ALIVE cannot bring it back. */
		ins = member_insert(g, id, inc, GOSSIP_LEFT, "", NULL, 0, removed, now);
		if (ins < 0)
			return;
		if (spread)
			bcast_member(g, (size_t)ins, NULL);
		notify(g, (size_t)ins);
		return;
	}
	p = &g->pub[i];
	if (inc < p->incarnation)
		return;
	if (p->state == GOSSIP_LEFT) {
		if (inc > p->incarnation || (removed && !g->ext[i].removed)) {
			p->incarnation = inc;
			g->ext[i].removed = g->ext[i].removed || removed;
			if (spread)
				bcast_member(g, i, NULL);
		}
		return;
	}
	p->state = GOSSIP_LEFT;
	p->incarnation = inc;
	g->ext[i].removed = removed;
	g->ext[i].changed_ms = now;
	if (spread)
		bcast_member(g, i, NULL);
	notify(g, i);
}

/* Our ALIVE, straight to a member we just learned of from a state transfer:
 * it most likely does not know us either (we are joining, or one of us was
 * missed by the epidemic). */
static void send_hello(struct gossip_core *g, const char *addr)
{
	msgpack_packer pk;
	struct wbuf w;
	struct pkt p;

	if (g->left)
		return;
	pkt_init(&p);
	pkt_begin(&p, &w, &pk);
	enc_member(g, &pk, self_index(g), NULL);
	pkt_end(&p, &w);
	pkt_send(g, &p, addr);
}

/* A full record (STATE), from a join's answer or a merge. */
static void apply_record(struct gossip_core *g, const struct msg *m, bool spread, uint64_t now)
{
	size_t i;
	long ins;

	if (m->state == WIRE_LEFT || m->state == WIRE_REMOVED) {
		apply_left(g, m->id, m->num, m->state == WIRE_REMOVED, spread, now);
		return;
	}
	if (!is_self(g, m->id) && !find(g, m->id, &i)) {
		enum gossip_state st = m->state == WIRE_ALIVE	  ? GOSSIP_ALIVE
				       : m->state == WIRE_SUSPECT ? GOSSIP_SUSPECT
								  : GOSSIP_DEAD;

		ins = member_insert(g, m->id, m->num, st, m->addr, m->data, m->len, false, now);
		if (ins < 0)
			return;
		if (st == GOSSIP_SUSPECT)
			suspicion_start(g, (size_t)ins, "", now);
		if (spread || st == GOSSIP_SUSPECT)
			bcast_member(g, (size_t)ins, NULL);
		if (live(st))
			send_hello(g, g->pub[ins].addr);
		notify(g, (size_t)ins);
		return;
	}
	if (m->state == WIRE_ALIVE)
		apply_alive(g, m, spread, now);
	else /* dead or suspect elsewhere: suspect here, and say so, so it can refute */
		apply_suspect(g, m->id, m->num, "", true, now);
}

static const char *user_key_at(const void *items, size_t i)
{
	return ((const struct user_entry *)items)[i].key;
}

static bool user_find(const struct gossip_core *g, const char *key, size_t *pos)
{
	bool found;

	*pos = sorted_find(g->users, g->nusers, user_key_at, key, &found);
	return found;
}

/* Keep @version of @key. Returns the entry, or NULL without memory or room. */
static struct user_entry *user_store(struct gossip_core *g, const char *key, uint64_t version,
				     const void *data, size_t len)
{
	unsigned char *copy = NULL;
	struct user_entry *u;
	bool created = false;
	size_t i;

	if (!user_find(g, key, &i)) {
		if (g->nusers == GOSSIP_MAX_KEYS)
			return NULL;
		if (g->nusers == g->capusers) {
			size_t cap = g->capusers == 0 ? 16 : g->capusers * 2;
			struct user_entry *v = realloc(g->users, cap * sizeof(*v));

			if (v == NULL)
				return NULL;
			g->users = v;
			g->capusers = cap;
		}
		memmove(&g->users[i + 1], &g->users[i], (g->nusers - i) * sizeof(*g->users));
		g->nusers++;
		u = &g->users[i];
		memset(u, 0, sizeof(*u));
		memcpy(u->key, key, strlen(key) + 1);
		created = true;
	}
	u = &g->users[i];
	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL) {
			if (created) {
				/* Take back the entry just made. */
				memmove(&g->users[i], &g->users[i + 1],
					(g->nusers - i - 1) * sizeof(*g->users));
				g->nusers--;
			}
			return NULL;
		}
		memcpy(copy, data, len);
	}
	free(u->data);
	u->data = copy;
	u->len = len;
	u->version = version;
	return u;
}

static void apply_user(struct gossip_core *g, const struct msg *m, bool spread)
{
	struct user_entry *u;
	size_t i;

	if (user_find(g, m->key, &i) && m->num <= g->users[i].version)
		return;
	u = user_store(g, m->key, m->num, m->data, m->len);
	if (u == NULL)
		return;
	if (spread)
		bcast_user(g, u);
	if (g->user_message != NULL)
		g->user_message(g->cb_arg, m->key, m->num, m->data, m->len);
}

static void apply_news(struct gossip_core *g, const struct msg *m, bool spread, uint64_t now)
{
	switch (m->type) {
	case MSG_ALIVE:
		apply_alive(g, m, spread, now);
		break;
	case MSG_SUSPECT:
		/* Only our own failed probes count as our confirmation. */
		apply_suspect(g, m->id, m->num, is_self(g, m->from) ? "" : m->from, spread, now);
		break;
	case MSG_DEAD:
		apply_dead(g, m->id, m->num, spread, now);
		break;
	case MSG_LEFT:
		apply_left(g, m->id, m->num, m->removed, spread, now);
		break;
	case MSG_USER:
		apply_user(g, m, spread);
		break;
	case MSG_STATE:
		apply_record(g, m, spread, now);
		break;
	default:
		break;
	}
}

/* ---- probes and answers ------------------------------------------------- */

/* Up to @want random members other than this one and @except whose state is
 * in @mask (bit per state), as indexes at the start of g->scratch. */
static size_t pick_random(struct gossip_core *g, size_t want, unsigned mask, const char *except)
{
	size_t c = 0;

	for (size_t i = 0; i < g->n; i++) {
		const struct gossip_member *m = &g->pub[i];

		if (!(mask & (1u << m->state)) || is_self(g, m->id) || m->addr[0] == '\0' ||
		    (except != NULL && strcmp(m->id, except) == 0))
			continue;
		g->scratch[c++] = (uint32_t)i;
	}
	if (want > c)
		want = c;
	for (size_t i = 0; i < want; i++) {
		size_t j = i + rnd(g, (uint32_t)(c - i));
		uint32_t t = g->scratch[i];

		g->scratch[i] = g->scratch[j];
		g->scratch[j] = t;
	}
	return want;
}

#define MASK_LIVE ((1u << GOSSIP_ALIVE) | (1u << GOSSIP_SUSPECT))

static void send_ping(struct gossip_core *g, size_t i, uint32_t seq)
{
	struct pkt p;

	pkt_init(&p);
	pkt_buddy(g, &p, g->pub[i].id);
	pkt_ping(&p, seq, g->pub[i].id, g->self_id);
	pkt_fill(g, &p);
	pkt_send(g, &p, g->pub[i].addr);
}

/* The next live member of the shuffled round, reshuffling at its end. */
static long next_probe_target(struct gossip_core *g)
{
	for (int pass = 0; pass < 2; pass++) {
		while (g->probe_idx < g->probe_n) {
			const char *id = g->probe_list[g->probe_idx++];
			size_t i;

			if (find(g, id, &i) && live(g->pub[i].state) && !is_self(g, id) &&
			    g->pub[i].addr[0] != '\0')
				return (long)i;
		}
		g->probe_n = 0;
		g->probe_idx = 0;
		for (size_t i = 0; i < g->n; i++) {
			if (!live(g->pub[i].state) || is_self(g, g->pub[i].id))
				continue;
			memcpy(g->probe_list[g->probe_n++], g->pub[i].id, ID_LEN + 1);
		}
		for (size_t i = g->probe_n; i > 1; i--) {
			size_t j = rnd(g, (uint32_t)i);
			char t[ID_LEN + 1];

			memcpy(t, g->probe_list[i - 1], sizeof(t));
			memcpy(g->probe_list[i - 1], g->probe_list[j], sizeof(t));
			memcpy(g->probe_list[j], t, sizeof(t));
		}
	}
	return -1;
}

static void probe_start(struct gossip_core *g, uint64_t now)
{
	long i = next_probe_target(g);

	if (i < 0)
		return;
	g->probe.active = true;
	g->probe.acked = false;
	g->probe.indirect = false;
	g->probe.seq = ++g->seq;
	g->probe.start = now;
	memcpy(g->probe.target, g->pub[i].id, ID_LEN + 1);
	send_ping(g, (size_t)i, g->probe.seq);
}

/* No ACK within the probe timeout: ask others to probe the target. */
static void probe_indirect(struct gossip_core *g)
{
	char addr[GOSSIP_ADDR_LEN];
	size_t i, k;

	if (!find(g, g->probe.target, &i))
		return;
	memcpy(addr, g->pub[i].addr, sizeof(addr));
	k = pick_random(g, g->indirect_checks, 1u << GOSSIP_ALIVE, g->probe.target);
	for (size_t j = 0; j < k; j++) {
		size_t via = g->scratch[j];
		msgpack_packer pk;
		struct wbuf w;
		struct pkt p;

		pkt_init(&p);
		pkt_begin(&p, &w, &pk);
		enc_ping_req(&pk, g->probe.seq, g->probe.target, addr);
		pkt_end(&p, &w);
		pkt_fill(g, &p);
		pkt_send(g, &p, g->pub[via].addr);
	}
}

/* Ping one DEAD member, telling it so: if it is alive it refutes. */
static void reconnect(struct gossip_core *g)
{
	if (pick_random(g, 1, 1u << GOSSIP_DEAD, NULL) == 1)
		send_ping(g, g->scratch[0], ++g->seq);
}

static void probe_step(struct gossip_core *g, uint64_t now)
{
	struct probe *pr = &g->probe;

	if (pr->active && !pr->acked && !pr->indirect && now >= pr->start + g->probe_timeout) {
		pr->indirect = true;
		probe_indirect(g);
	}
	if (now < g->next_probe)
		return;
	g->next_probe = g->next_probe + g->probe_interval > now ? g->next_probe + g->probe_interval
								: now + g->probe_interval;
	if (pr->active && !pr->acked) {
		size_t i;

		pr->active = false;
		if (find(g, pr->target, &i) && live(g->pub[i].state))
			apply_suspect(g, pr->target, g->pub[i].incarnation, g->self_id, true, now);
	}
	pr->active = false;
	if (g->left)
		return;
	if (++g->probe_rounds % RECONNECT_EVERY == 0)
		reconnect(g);
	probe_start(g, now);
}

/* While we suspect a member, ping it every gossip round with the suspicion
 * up front: if it is alive, its answer carries its refutation. Refutations
 * then reach every member holding the suspicion, not only those the epidemic
 * happens to pick, before their timers run out. */
static void ping_suspects(struct gossip_core *g)
{
	size_t k = pick_random(g, MAX_SUSPECT_PINGS, 1u << GOSSIP_SUSPECT, NULL);

	for (size_t j = 0; j < k; j++)
		send_ping(g, g->scratch[j], ++g->seq);
}

static void gossip_step(struct gossip_core *g, uint64_t now)
{
	size_t k;

	if (now < g->next_gossip)
		return;
	g->next_gossip = g->next_gossip + g->gossip_interval > now
			     ? g->next_gossip + g->gossip_interval
			     : now + g->gossip_interval;
	ping_suspects(g);
	if (g->nq == 0)
		return;
	k = pick_random(g, g->gossip_fanout, MASK_LIVE, NULL);
	for (size_t j = 0; j < k && g->nq > 0; j++) {
		size_t i = g->scratch[j];
		struct pkt p;

		pkt_init(&p);
		pkt_buddy(g, &p, g->pub[i].id);
		pkt_fill(g, &p);
		pkt_send(g, &p, g->pub[i].addr);
	}
}

static void expire_suspicions(struct gossip_core *g, uint64_t now)
{
	for (;;) {
		size_t i;

		for (i = 0; i < g->n; i++)
			if (g->pub[i].state == GOSSIP_SUSPECT && g->ext[i].susp_deadline <= now)
				break;
		if (i == g->n)
			return;
		g->pub[i].state = GOSSIP_DEAD;
		g->ext[i].changed_ms = now;
		bcast_member(g, i, NULL);
		notify(g, i);
	}
}

/* Join: ALIVE about us, and a request for the seed's state. */
static void send_join(struct gossip_core *g, const char *addr)
{
	msgpack_packer pk;
	struct wbuf w;
	struct pkt p;

	pkt_init(&p);
	pkt_marker(&p, MSG_SYNC_REQ);
	pkt_begin(&p, &w, &pk);
	enc_member(g, &pk, self_index(g), NULL);
	pkt_end(&p, &w);
	pkt_send(g, &p, addr);
}

static void join_step(struct gossip_core *g, uint64_t now)
{
	if (!g->joining || now < g->join_retry)
		return;
	if (g->join_attempts >= JOIN_ATTEMPTS) {
		g->joining = false;
		return;
	}
	g->join_attempts++;
	g->join_retry = now + JOIN_RETRY_MS;
	for (size_t i = 0; i < g->nseeds; i++)
		send_join(g, g->seeds[i]);
}

/* Our full state (this member's record first), in as many packets as it
 * takes, asking for the peer's state in return if @request. */
static void send_state(struct gossip_core *g, const char *addr, bool request)
{
	size_t self = self_index(g), total = g->n + g->nusers;
	msgpack_packer pk;
	struct wbuf w;
	struct pkt p;

	pkt_init(&p);
	pkt_marker(&p, MSG_SYNC);
	if (request)
		pkt_marker(&p, MSG_SYNC_REQ);
	for (size_t k = 0; k < total; k++) {
		/* Records in the order self, the others, the messages. */
		size_t r = k == 0 ? self : k <= self ? k - 1 : k;

		for (int attempt = 0; attempt < 2; attempt++) {
			pkt_begin(&p, &w, &pk);
			if (r < g->n)
				enc_state(g, &pk, r);
			else
				enc_user(&pk, &g->users[r - g->n]);
			if (pkt_end(&p, &w))
				break;
			pkt_send(g, &p, addr);
			pkt_init(&p);
			pkt_marker(&p, MSG_SYNC);
		}
	}
	pkt_send(g, &p, addr);
}

/* Push-pull with one random member now and then: what the epidemic missed
 * (lost packets, partitions) converges anyway. */
static void sync_step(struct gossip_core *g, uint64_t now)
{
	uint64_t every = (uint64_t)SYNC_EVERY * g->probe_interval;

	if (now < g->next_sync)
		return;
	g->next_sync = g->next_sync + every > now ? g->next_sync + every : now + every;
	if (!g->left && pick_random(g, 1, MASK_LIVE, NULL) == 1)
		send_state(g, g->pub[g->scratch[0]].addr, true);
}

static struct forward *forward_slot(struct gossip_core *g, uint64_t now)
{
	for (size_t i = 0; i < MAX_FORWARDS; i++)
		if (!g->fwd[i].used || g->fwd[i].expires <= now)
			return &g->fwd[i];
	return NULL;
}

static void on_ping_req(struct gossip_core *g, const char *from, const struct msg *m, uint64_t now)
{
	struct forward *f;
	struct pkt p;

	if (is_self(g, m->id))
		return;
	f = forward_slot(g, now);
	if (f == NULL)
		return;
	f->used = true;
	f->seq = ++g->seq;
	f->origin_seq = m->seq;
	f->expires = now + g->probe_interval;
	memcpy(f->target, m->id, sizeof(f->target));
	memcpy(f->origin, from, strlen(from) + 1);
	pkt_init(&p);
	pkt_buddy(g, &p, m->id);
	pkt_ping(&p, f->seq, m->id, g->self_id);
	pkt_fill(g, &p);
	pkt_send(g, &p, m->addr);
}

static void on_ack(struct gossip_core *g, const struct msg *m, uint64_t now)
{
	struct probe *pr = &g->probe;

	if (pr->active && m->seq == pr->seq && strcmp(m->id, pr->target) == 0) {
		pr->acked = true;
		return;
	}
	for (size_t i = 0; i < MAX_FORWARDS; i++) {
		struct forward *f = &g->fwd[i];
		struct pkt p;

		if (!f->used || f->seq != m->seq || strcmp(f->target, m->id) != 0 ||
		    f->expires <= now)
			continue;
		f->used = false;
		pkt_init(&p);
		pkt_ack(&p, f->origin_seq, m->id);
		pkt_fill(g, &p);
		pkt_send(g, &p, f->origin);
		return;
	}
}

static void on_control(struct gossip_core *g, const char *from, const struct msg *m, uint64_t now)
{
	struct pkt p;
	size_t i;

	switch (m->type) {
	case MSG_PING:
		if (!is_self(g, m->id))
			return; /* meant for whoever had this address before */
		pkt_init(&p);
		pkt_buddy(g, &p, m->from);
		pkt_ack(&p, m->seq, g->self_id);
		/* A member we never heard of probes us: ask for its state. */
		if (!find(g, m->from, &i))
			pkt_marker(&p, MSG_SYNC_REQ);
		pkt_fill(g, &p);
		pkt_send(g, &p, from);
		break;
	case MSG_PING_REQ:
		on_ping_req(g, from, m, now);
		break;
	case MSG_ACK:
		on_ack(g, m, now);
		break;
	case MSG_SYNC_REQ:
		send_state(g, from, false);
		break;
	case MSG_SYNC:
		g->joining = false;
		break;
	default:
		break;
	}
}

static bool is_news(unsigned type)
{
	return type == MSG_ALIVE || type == MSG_SUSPECT || type == MSG_DEAD || type == MSG_LEFT ||
	       type == MSG_USER || type == MSG_STATE;
}

/* Check every message, then apply the news (not spread again if the packet
 * answers a join), then answer the requests. */
static bool handle_body(struct gossip_core *g, const char *from, const unsigned char *body,
			size_t len, uint64_t now)
{
	const msgpack_object *v;
	msgpack_unpacked u;
	bool sync = false;
	struct msg m;
	uint32_t n;

	msgpack_unpacked_init(&u);
	if (!parse_body(body, len, PKT_MAX_MSGS, &u)) {
		msgpack_unpacked_destroy(&u);
		return false;
	}
	v = u.data.via.array.ptr;
	n = u.data.via.array.size;
	for (uint32_t i = 0; i < n; i++) {
		int rv = decode_msg(&v[i], &m);

		if (rv < 0) {
			msgpack_unpacked_destroy(&u);
			return false;
		}
		if (rv == 1 && m.type == MSG_SYNC)
			sync = true;
	}
	for (uint32_t i = 0; i < n; i++)
		if (decode_msg(&v[i], &m) == 1 && is_news(m.type))
			apply_news(g, &m, !sync, now);
	for (uint32_t i = 0; i < n; i++)
		if (decode_msg(&v[i], &m) == 1 && !is_news(m.type))
			on_control(g, from, &m, now);
	msgpack_unpacked_destroy(&u);
	return true;
}

/* Open a sealed packet into @out (at least BODY_MAX bytes); false if it does
 * not open, with the reason in @why. */
static bool unseal(const struct gossip_core *g, const unsigned char *in, size_t len,
		   unsigned char *out, size_t *out_len, char *why, size_t why_len)
{
	unsigned long long n = 0;
	const unsigned char *nonce = in + 1;
	const unsigned char *c = in + 1 + NONCE_LEN;
	size_t clen;

	if (len > GOSSIP_MAX_PACKET) {
		snprintf(why, why_len, "it is larger than the limit of %u bytes",
			 (unsigned)GOSSIP_MAX_PACKET);
		return false;
	}
	if (len < SEAL_OVERHEAD) {
		snprintf(why, why_len, "it is %zu bytes, too short to be sealed (%zu at least)",
			 len, (size_t)SEAL_OVERHEAD);
		return false;
	}
	if (in[0] != GOSSIP_WIRE_VERSION) {
		snprintf(why, why_len, "its version byte is %u, not %u", (unsigned)in[0],
			 (unsigned)GOSSIP_WIRE_VERSION);
		return false;
	}
	clen = len - 1 - NONCE_LEN;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, NULL, c, clen, in, 1, nonce,
						       g->keys.primary) != 0 &&
	    (!g->keys.has_previous ||
	     crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, NULL, c, clen, in, 1, nonce,
							g->keys.previous) != 0)) {
		snprintf(why, why_len,
			 "it does not unseal with any key of the ring (not of this swarm, or "
			 "sealed with a key rotated out since)");
		return false;
	}
	*out_len = (size_t)n;
	return true;
}

/* ---- the public interface ----------------------------------------------- */

static int check_knob(unsigned *v, unsigned def, unsigned min, unsigned max, const char *name,
		      struct shoal_err *err)
{
	if (*v == 0)
		*v = def;
	if (*v < min || *v > max)
		return shoal_errf(err, SHOAL_EINVAL, "gossip %s must be between %u and %u, not %u",
				  name, min, max, *v);
	return 0;
}

int gossip_core_new(struct gossip_core **out, const struct gossip_config *cfg,
		    const struct gossip_keyring *keys, const struct gossip_core_io *io,
		    uint64_t now_ms, struct shoal_err *err)
{
	struct gossip_config c;
	struct gossip_core *g;
	int rv;

	if (cfg == NULL || keys == NULL || io == NULL || io->send == NULL || io->random == NULL)
		return shoal_errf(err, SHOAL_EINVAL,
				  "gossip needs a configuration, a key ring, send and random");
	c = *cfg;
	if (c.node_id == NULL || !id_is_valid_prefix(c.node_id))
		return shoal_errf(err, SHOAL_EINVAL,
				  "gossip node id \"%s\" must be 1 to %d characters of [0-9a-z]",
				  c.node_id != NULL ? c.node_id : "", ID_LEN);
	if (!valid_addr(c.advertise))
		return shoal_errf(err, SHOAL_EINVAL,
				  "gossip advertise address \"%s\" must be IP:port, at most %d "
				  "characters without spaces",
				  c.advertise != NULL ? c.advertise : "", GOSSIP_ADDR_LEN - 1);
	if (c.meta_len > GOSSIP_MAX_META)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "gossip metadata of %zu bytes exceeds the limit of %d bytes",
				  c.meta_len, GOSSIP_MAX_META);
	if (c.meta_len > 0 && c.meta == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "gossip metadata length without data");
	rv = check_knob(&c.probe_interval_ms, DEF_PROBE_INTERVAL, 1, MAX_INTERVAL,
			"probe interval (ms)", err);
	if (rv == 0)
		rv = check_knob(
		    &c.probe_timeout_ms,
		    c.probe_interval_ms > DEF_PROBE_TIMEOUT ? DEF_PROBE_TIMEOUT
							    : c.probe_interval_ms / 2 + 1,
		    1, c.probe_interval_ms - (c.probe_interval_ms > 1), "probe timeout (ms)", err);
	if (rv == 0)
		rv = check_knob(&c.indirect_checks, DEF_INDIRECT, 1, MAX_SMALL_KNOB,
				"indirect checks", err);
	if (rv == 0)
		rv = check_knob(&c.suspicion_mult, DEF_SUSPICION_MULT, 1, MAX_SUSPICION_MULT,
				"suspicion multiplier", err);
	if (rv == 0)
		rv = check_knob(&c.retransmit_mult, DEF_RETRANSMIT_MULT, 1, MAX_SMALL_KNOB,
				"retransmit multiplier", err);
	if (rv == 0)
		rv = check_knob(&c.gossip_interval_ms, DEF_GOSSIP_INTERVAL, 1, MAX_INTERVAL,
				"gossip interval (ms)", err);
	if (rv == 0)
		rv = check_knob(&c.gossip_fanout, DEF_FANOUT, 1, MAX_SMALL_KNOB, "gossip fanout",
				err);
	if (rv != 0)
		return rv;
	if (sodium_init() < 0)
		return shoal_errf(err, SHOAL_EIO, "libsodium failed to initialise");

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	memcpy(g->self_id, c.node_id, strlen(c.node_id) + 1);
	g->probe_interval = c.probe_interval_ms;
	g->probe_timeout = c.probe_timeout_ms;
	g->indirect_checks = c.indirect_checks;
	g->suspicion_mult = c.suspicion_mult;
	g->retransmit_mult = c.retransmit_mult;
	g->gossip_interval = c.gossip_interval_ms;
	g->gossip_fanout = c.gossip_fanout;
	g->cb_arg = c.arg;
	g->member_changed = c.member_changed;
	g->user_message = c.user_message;
	g->rejected = c.rejected;
	g->keys = *keys;
	g->io = *io;
	if (member_insert(g, c.node_id, 0, GOSSIP_ALIVE, c.advertise, c.meta, c.meta_len, false,
			  now_ms) < 0) {
		gossip_core_free(g);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	/* Start at a random phase, so members started together do not probe in step. */
	g->next_probe = now_ms + 1 + rnd(g, g->probe_interval);
	g->next_gossip = now_ms + 1 + rnd(g, g->gossip_interval);
	g->next_sync = now_ms + 1 + rnd(g, SYNC_EVERY * g->probe_interval);
	*out = g;
	return 0;
}

void gossip_core_free(struct gossip_core *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->ext[i].meta);
	for (size_t i = 0; i < g->nq; i++)
		free(g->q[i].msg);
	for (size_t i = 0; i < g->nusers; i++)
		free(g->users[i].data);
	free(g->pub);
	free(g->ext);
	free(g->scratch);
	free(g->probe_list);
	free(g->q);
	free(g->users);
	sodium_memzero(&g->keys, sizeof(g->keys));
	free(g);
}

void gossip_core_receive(struct gossip_core *g, const char *from, const void *data, size_t len,
			 uint64_t now_ms)
{
	unsigned char body[GOSSIP_MAX_PACKET];
	char why[160];
	size_t blen = 0;

	PRE(from != NULL);
	g->stats.received++;
	if (data == NULL) {
		snprintf(why, sizeof(why), "it is empty");
		len = 0;
	}
	if (data == NULL || !unseal(g, data, len, body, &blen, why, sizeof(why))) {
		g->stats.rejected_seal++;
		if (g->rejected != NULL)
			g->rejected(g->cb_arg, from, why);
		return;
	}
	if (!valid_addr(from) || !handle_body(g, from, body, blen, now_ms)) {
		g->stats.rejected_decode++;
		if (g->rejected != NULL)
			g->rejected(g->cb_arg, from,
				    valid_addr(from) ? "it unsealed but does not decode"
						     : "the sender's address is not IP:port");
	}
}

uint64_t gossip_core_tick(struct gossip_core *g, uint64_t now_ms)
{
	const struct probe *pr = &g->probe;
	uint64_t t;

	expire_suspicions(g, now_ms);
	probe_step(g, now_ms);
	gossip_step(g, now_ms);
	join_step(g, now_ms);
	sync_step(g, now_ms);
	for (size_t i = 0; i < MAX_FORWARDS; i++)
		if (g->fwd[i].used && g->fwd[i].expires <= now_ms)
			g->fwd[i].used = false;

	t = g->next_gossip;
	if (!g->left)
		t = min_u64(min_u64(t, g->next_probe), g->next_sync);
	if (pr->active && !pr->acked && !pr->indirect)
		t = min_u64(t, pr->start + g->probe_timeout);
	for (size_t i = 0; i < g->n; i++)
		if (g->pub[i].state == GOSSIP_SUSPECT)
			t = min_u64(t, g->ext[i].susp_deadline);
	if (g->joining)
		t = min_u64(t, g->join_retry);
	return t > now_ms ? t : now_ms + 1;
}

int gossip_core_join(struct gossip_core *g, const char *const *addrs, size_t n, uint64_t now_ms,
		     struct shoal_err *err)
{
	if (g->left)
		return shoal_errf(err, SHOAL_ESTATE,
				  "this member has left the cluster: start a new one to join");
	if (n == 0 || n > GOSSIP_MAX_SEEDS)
		return shoal_errf(err, SHOAL_EINVAL, "join needs 1 to %d seed addresses, not %zu",
				  GOSSIP_MAX_SEEDS, n);
	for (size_t i = 0; i < n; i++)
		if (!valid_addr(addrs[i]))
			return shoal_errf(err, SHOAL_EINVAL,
					  "seed address \"%s\" must be IP:port, at most %d "
					  "characters without spaces",
					  addrs[i] != NULL ? addrs[i] : "", GOSSIP_ADDR_LEN - 1);
	for (size_t i = 0; i < n; i++)
		memcpy(g->seeds[i], addrs[i], strlen(addrs[i]) + 1);
	g->nseeds = n;
	g->joining = true;
	g->join_attempts = 1;
	g->join_retry = now_ms + JOIN_RETRY_MS;
	for (size_t i = 0; i < n; i++)
		send_join(g, g->seeds[i]);
	return 0;
}

void gossip_core_leave(struct gossip_core *g, uint64_t now_ms)
{
	size_t i = self_index(g);

	if (g->left)
		return;
	g->left = true;
	g->probe.active = false;
	g->joining = false;
	g->pub[i].state = GOSSIP_LEFT;
	g->ext[i].changed_ms = now_ms;
	bcast_member(g, i, NULL);
}

void gossip_core_remove(struct gossip_core *g, const char *id, uint64_t now_ms)
{
	struct gossip_member *p;
	size_t i;
	long ins;

	if (id == NULL || !id_is_valid_prefix(id))
		return;
	if (is_self(g, id)) {
		gossip_core_leave(g, now_ms);
		return;
	}
	if (!find(g, id, &i)) {
		ins = member_insert(g, id, 0, GOSSIP_LEFT, "", NULL, 0, true, now_ms);
		if (ins >= 0)
			bcast_member(g, (size_t)ins, NULL);
		return;
	}
	p = &g->pub[i];
	if (p->state == GOSSIP_LEFT && g->ext[i].removed)
		return;
	p->state = GOSSIP_LEFT;
	g->ext[i].removed = true;
	g->ext[i].changed_ms = now_ms;
	bcast_member(g, i, NULL);
}

void gossip_core_set_keyring(struct gossip_core *g, const struct gossip_keyring *keys)
{
	g->keys = *keys;
}

int gossip_core_set_meta(struct gossip_core *g, const void *meta, size_t len, uint64_t now_ms,
			 struct shoal_err *err)
{
	size_t i = self_index(g);
	int rv;

	(void)now_ms;
	if (len > GOSSIP_MAX_META)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "gossip metadata of %zu bytes exceeds the limit of %d bytes", len,
				  GOSSIP_MAX_META);
	if (len > 0 && meta == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "gossip metadata length without data");
	if (g->left)
		return shoal_errf(err, SHOAL_ESTATE, "this member has left the cluster");
	if (g->pub[i].incarnation == UINT64_MAX)
		return shoal_errf(err, SHOAL_ESTATE, "this member's incarnation is exhausted");
	rv = set_member_meta(g, i, meta, len);
	if (rv != 0)
		return shoal_errf(err, rv, "out of memory");
	g->pub[i].incarnation++;
	bcast_member(g, i, NULL);
	return 0;
}

int gossip_core_broadcast(struct gossip_core *g, const char *key, uint64_t version,
			  const void *data, size_t len, struct shoal_err *err)
{
	struct user_entry *u;
	size_t i;

	if (!valid_key(key))
		return shoal_errf(err, SHOAL_EINVAL,
				  "gossip message key must be 1 to %d printable characters "
				  "without spaces",
				  GOSSIP_MAX_KEY);
	if (len > GOSSIP_MAX_USER)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "gossip message of %zu bytes exceeds the limit of %d bytes", len,
				  GOSSIP_MAX_USER);
	if (len > 0 && data == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "gossip message length without data");
	if (g->left)
		return shoal_errf(err, SHOAL_ESTATE, "this member has left the cluster");
	if (user_find(g, key, &i) && version <= g->users[i].version)
		return shoal_errf(err, SHOAL_ECONFLICT,
				  "gossip message %s is at version %llu already: send a newer one",
				  key, (unsigned long long)g->users[i].version);
	if (!user_find(g, key, &i) && g->nusers == GOSSIP_MAX_KEYS)
		return shoal_errf(err, SHOAL_ETOOBIG, "gossip already holds %d message keys",
				  GOSSIP_MAX_KEYS);
	u = user_store(g, key, version, data, len);
	if (u == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	bcast_user(g, u);
	return 0;
}

size_t gossip_core_members(struct gossip_core *g, const struct gossip_member **out)
{
	*out = g->pub;
	return g->n;
}

const struct gossip_member *gossip_core_member(struct gossip_core *g, const char *id)
{
	size_t i;

	if (id == NULL || !find(g, id, &i))
		return NULL;
	return &g->pub[i];
}

int gossip_core_export(struct gossip_core *g, struct buf *out)
{
	struct bufw w = {.b = out, .failed = false};
	msgpack_packer pk;

	msgpack_packer_init(&pk, &w, bufw_write);
	msgpack_pack_array(&pk, g->n + g->nusers);
	for (size_t i = 0; i < g->n; i++)
		enc_state(g, &pk, i);
	for (size_t i = 0; i < g->nusers; i++)
		enc_user(&pk, &g->users[i]);
	return w.failed ? SHOAL_ENOMEM : 0;
}

int gossip_core_merge(struct gossip_core *g, const void *data, size_t len, uint64_t now_ms,
		      struct shoal_err *err)
{
	const msgpack_object *v;
	msgpack_unpacked u;
	struct msg m;
	uint32_t n;

	if (len > GOSSIP_MAX_STATE)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "gossip state of %zu bytes exceeds the limit of %d bytes", len,
				  GOSSIP_MAX_STATE);
	msgpack_unpacked_init(&u);
	if (data == NULL || !parse_body(data, len, STATE_MAX_RECORDS, &u)) {
		msgpack_unpacked_destroy(&u);
		return shoal_errf(err, SHOAL_EPROTO,
				  "gossip state is not a msgpack array of 1 to %d records",
				  STATE_MAX_RECORDS);
	}
	v = u.data.via.array.ptr;
	n = u.data.via.array.size;
	for (uint32_t i = 0; i < n; i++) {
		if (decode_msg(&v[i], &m) != 1 || (m.type != MSG_STATE && m.type != MSG_USER)) {
			msgpack_unpacked_destroy(&u);
			return shoal_errf(err, SHOAL_EPROTO,
					  "gossip state record %u is not a valid member or "
					  "message record",
					  i);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		decode_msg(&v[i], &m);
		apply_news(g, &m, true, now_ms);
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}

void gossip_core_stats(const struct gossip_core *g, struct gossip_stats *out)
{
	*out = g->stats;
}
