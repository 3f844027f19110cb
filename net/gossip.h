/* Gossip: SWIM membership over UDP (direct and indirect probes, suspicion with
 * Lifeguard-style timeouts, piggybacked dissemination with bounded
 * retransmits) plus last-writer-wins dissemination of small application
 * messages ("node X is at assignment version V"). Every packet is sealed with
 * XChaCha20-Poly1305 under the cluster gossip key; a key ring (primary +
 * previous) lets the key rotate. Push-pull anti-entropy runs over UDP by
 * itself and is also exported as state to exchange (node/ may carry it over
 * a secure stream, at join for instance).
 *
 * The protocol lives in a socket-free core driven with virtual time (struct
 * gossip_core) so it can be tested deterministically with many members and a
 * lossy, partitioned network; gossip.c puts it on a libuv UDP socket.
 *
 * Wire format of a datagram (at most GOSSIP_MAX_PACKET bytes):
 *   [1 byte version = 1][24-byte random nonce][ciphertext + 16-byte tag]
 * the AEAD being crypto_aead_xchacha20poly1305_ietf with the version byte as
 * associated data. The plaintext is one msgpack array of messages, each an
 * array [type, fields...]:
 *   1 PING     [1, seq, target id, sender id]   answered by ACK if target is us
 *   2 PING_REQ [2, seq, target id, target addr] probe target for the sender
 *   3 ACK      [3, seq, id of the member that answers]
 *   4 ALIVE    [4, id, incarnation, addr, meta (bin)]
 *   5 SUSPECT  [5, id, incarnation, id of the suspecting member]
 *   6 DEAD     [6, id, incarnation]
 *   7 LEFT     [7, id, incarnation, removed (bool)]   leave, or node rm
 *   8 USER     [8, key, version, data (bin)]
 *   9 SYNC_REQ [9]            answer with our full state (in SYNC packets)
 *  10 SYNC     [10]           this packet carries (part of) a full state
 *  11 STATE    [11, id, incarnation, state, addr, meta]   one full record
 * (STATE's state: 0 alive, 1 suspect, 2 dead, 3 left, 4 removed). Messages of
 * a type this version does not know are skipped, so later versions can add
 * some; anything else that does not decode drops the whole packet.
 *
 * Rounds: every probe interval a member probes the next member of a shuffled
 * round-robin list (PING; after the probe timeout, PING_REQ through
 * indirect_checks random members; no ACK by the end of the interval: SUSPECT)
 * and, every 5th round, pings one DEAD member to tell it so. Every gossip
 * interval it sends queued news to gossip_fanout random members and pings
 * every member it suspects (up to 4), so a live one refutes to each member
 * holding the suspicion. Every 100 probe intervals it pushes its full state
 * to one random member and pulls that member's (SYNC_REQ). News rides on
 * every packet, fewest transmissions and newest first, up to the packet size.
 * A packet to a member we believe suspect, dead or left starts with that
 * belief, so the member refutes (or learns it was removed) at once.
 *
 * Joining: the joiner sends SYNC_REQ + its ALIVE to the seeds; a seed spreads
 * the ALIVE and answers with its state; the joiner sends its ALIVE straight to
 * every live member it learns from a state transfer. A member probed by one
 * it does not know asks that one for its state.
 *
 * Precedence (per member, as in SWIM): ALIVE applies only with an incarnation
 * greater than the one known (or for an unknown member); SUSPECT and DEAD
 * apply with an incarnation at least the one known and never undo DEAD or
 * LEFT; LEFT applies with an incarnation at least the one known. A member that
 * hears it is suspected or dead (or left, in an earlier life) refutes by
 * announcing ALIVE with a greater incarnation (or, if the news is older than
 * its incarnation, by announcing its ALIVE again). A member that hears it was
 * removed does not refute: it stops probing and reports itself LEFT. News
 * learned from a state transfer is applied without being spread again, except
 * a suspicion, which is spread so its subject can refute. */
#ifndef SHOAL_NET_GOSSIP_H
#define SHOAL_NET_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/id.h"

#define GOSSIP_KEY_LEN	    32
#define GOSSIP_ADDR_LEN	    48		      /* "IP:port" and its NUL */
#define GOSSIP_MAX_META	    512		      /* bytes of a member's metadata */
#define GOSSIP_MAX_USER	    1024	      /* bytes of one application message */
#define GOSSIP_MAX_KEY	    128		      /* bytes of an application message's key */
#define GOSSIP_MAX_PACKET   1400	      /* bytes of one UDP datagram, sealed */
#define GOSSIP_MAX_MEMBERS  4096	      /* members known, this one and tombstones included */
#define GOSSIP_MAX_KEYS	    4096	      /* application message keys kept */
#define GOSSIP_MAX_SEEDS    16		      /* addresses given to one join */
#define GOSSIP_MAX_STATE    (8 * 1024 * 1024) /* bytes of exported state */
#define GOSSIP_WIRE_VERSION 1		      /* first byte of every datagram */

enum gossip_state { GOSSIP_ALIVE, GOSSIP_SUSPECT, GOSSIP_DEAD, GOSSIP_LEFT };

struct gossip_member {
	char id[ID_LEN + 1];
	char addr[GOSSIP_ADDR_LEN]; /* "IP:port" of its gossip socket; "" if only
				       known as LEFT */
	enum gossip_state state;
	uint64_t incarnation;
	const unsigned char *meta; /* valid until the next call into the gossip */
	size_t meta_len;
};

struct gossip_keyring {
	unsigned char primary[GOSSIP_KEY_LEN]; /* seals every packet sent */
	unsigned char previous[GOSSIP_KEY_LEN];
	bool has_previous; /* packets sealed with it are still opened */
};

struct gossip_config {
	const char *node_id;   /* this member's id: 1 to ID_LEN characters of [0-9a-z] */
	const char *advertise; /* "IP:port" others send to ("[v6]:port" for IPv6);
				  gossip_start() takes the bound address if NULL */
	const void *meta;      /* initial metadata, may be NULL */
	size_t meta_len;       /* at most GOSSIP_MAX_META */
	/* Timers, 0 for the defaults tuned for a LAN (a dead member of 5 is
	 * declared dead well within 3 s): probe every 300 ms, probe timeout
	 * 150 ms, 3 indirect probes, suspicion multiplier 4, retransmit
	 * multiplier 4, gossip every 100 ms to 3 members. Bounds: intervals
	 * 1 ms to 60 s, the probe timeout below the probe interval, at most 16
	 * indirect probes, fanout 16 and retransmit multiplier 16, suspicion
	 * multiplier 1 to 10.
	 *
	 * A suspicion lasts suspicion_mult * max(1, log10(n)) * probe_interval
	 * (n: members alive or suspect), shrinking (Lifeguard) towards a third
	 * of that as up to suspicion_mult - 2 other members confirm it. A
	 * broadcast is piggybacked retransmit_mult * ceil(log10(n + 1)) times. */
	unsigned probe_interval_ms;
	unsigned probe_timeout_ms;
	unsigned indirect_checks;
	unsigned suspicion_mult;
	unsigned retransmit_mult;
	unsigned gossip_interval_ms;
	unsigned gossip_fanout;
	/* Callbacks (may be NULL), on the loop thread, from inside
	 * gossip_core_receive(), _tick() and _merge(). They may call the
	 * operations below (and gossip_close()), not gossip_core_free(). */
	void *arg;
	/* Another member appeared, changed state, address or metadata; this
	 * member itself only when it learns that it was removed. */
	void (*member_changed)(void *arg, const struct gossip_member *m);
	/* An application message newer (by version) than any seen for @key,
	 * received from the cluster (not for this member's own broadcasts). */
	void (*user_message)(void *arg, const char *key, uint64_t version, const void *data,
			     size_t len);
	/* A datagram from @from was dropped (and counted, gossip_core_stats());
	 * @why says why, for the log: "it does not unseal with any key of the
	 * ring ...", "it is N bytes, too short to be sealed", "it unsealed but
	 * does not decode", ... Called for every one: the caller limits what it
	 * logs. */
	void (*rejected)(void *arg, const char *from, const char *why);
};

/* --- socket-free core, virtual time ------------------------------------ */

struct gossip_core;

struct gossip_core_io {
	void *arg;
	/* Send one sealed datagram to @addr (copy it: @data is the caller's). */
	void (*send)(void *arg, const char *addr, const void *data, size_t len);
	/* A uniformly random number in [0, n), n > 0. Every random choice of
	 * the protocol comes from here; nonces come from libsodium's CSPRNG. */
	uint32_t (*random)(void *arg, uint32_t n);
};

/* Create a core for one member; @cfg's strings and metadata are copied, the
 * callbacks and io kept. The core never reads a clock: @now_ms here and in
 * every call below is the caller's time in milliseconds, never decreasing.
 * Returns 0, SHOAL_EINVAL/SHOAL_ETOOBIG for a bad configuration, SHOAL_ENOMEM
 * or SHOAL_EIO (libsodium failed to initialise), with the reason in @err. */
int gossip_core_new(struct gossip_core **out, const struct gossip_config *cfg,
		    const struct gossip_keyring *keys, const struct gossip_core_io *io,
		    uint64_t now_ms, struct shoal_err *err);
/* Free everything; accepts NULL. Keys are wiped. */
void gossip_core_free(struct gossip_core *g);

/* A datagram arrived from @from ("IP:port", as for io->send). Anything that
 * does not open with a key of the ring or does not decode is dropped, counted
 * (gossip_core_stats()) and reported to cfg->rejected. */
void gossip_core_receive(struct gossip_core *g, const char *from, const void *data, size_t len,
			 uint64_t now_ms);
/* Run timers due at @now_ms; returns the time of the next one. Calling it
 * early is harmless: after any operation or receive, calling it gives the
 * deadline to sleep until. */
uint64_t gossip_core_tick(struct gossip_core *g, uint64_t now_ms);

/* --- operations (on the core; the libuv wrapper forwards) --------------- */

/* Contact seed members at "IP:port" addresses (1 to GOSSIP_MAX_SEEDS): each
 * answers with its full state, and membership spreads from them. Retried a
 * few times (once a second) until some seed answers. Returns 0, SHOAL_EINVAL
 * for a bad address or count, or SHOAL_ESTATE if this member left. */
int gossip_core_join(struct gossip_core *g, const char *const *addrs, size_t n, uint64_t now_ms,
		     struct shoal_err *err);
/* Announce that this member leaves; others mark it LEFT, not DEAD. It stops
 * probing but keeps answering and gossiping until the announcement is out
 * (the caller waits a second or two, then frees or closes). */
void gossip_core_leave(struct gossip_core *g, uint64_t now_ms);
/* Declare @id removed from the cluster (node rm): LEFT everywhere, never revived
 * by a stale ALIVE with an incarnation not greater than the one known now. An
 * unknown @id is remembered as LEFT at incarnation 0. @id being this member
 * is the same as gossip_core_leave(); an invalid @id is ignored. The removed
 * member, if it hears of it, stops probing and does not refute; rotating the
 * key ring is what cuts it off for good. */
void gossip_core_remove(struct gossip_core *g, const char *id, uint64_t now_ms);
/* Replace the key ring (copied). Rotation: give every member the new key as
 * primary with the old one as previous, then drop the previous. */
void gossip_core_set_keyring(struct gossip_core *g, const struct gossip_keyring *keys);
/* New metadata for this member: bumps its incarnation and spreads it.
 * Returns 0, SHOAL_ETOOBIG, SHOAL_ENOMEM or SHOAL_ESTATE if this member left. */
int gossip_core_set_meta(struct gossip_core *g, const void *meta, size_t len, uint64_t now_ms,
			 struct shoal_err *err);
/* Spread an application message; kept per @key (1 to GOSSIP_MAX_KEY printable
 * ASCII characters, no space), newest @version wins. Returns 0, SHOAL_EINVAL,
 * SHOAL_ETOOBIG (data over GOSSIP_MAX_USER, or GOSSIP_MAX_KEYS keys known),
 * SHOAL_ECONFLICT if @key is already at @version or newer, SHOAL_ENOMEM or
 * SHOAL_ESTATE if this member left. */
int gossip_core_broadcast(struct gossip_core *g, const char *key, uint64_t version,
			  const void *data, size_t len, struct shoal_err *err);

/* Members known (this one and tombstones of LEFT members included), in id
 * order. *@out is valid until the next call into the core. */
size_t gossip_core_members(struct gossip_core *g, const struct gossip_member **out);
/* A member by id, or NULL. Valid until the next call into the core. */
const struct gossip_member *gossip_core_member(struct gossip_core *g, const char *id);

/* Push-pull anti-entropy: the full membership (and application messages) as
 * bytes to send to a peer (a msgpack array of STATE and USER messages,
 * unsealed: carry it over a secure stream), appended to @out; and merging
 * what a peer sent, with the precedence rules above (a record saying DEAD
 * only makes a known live member SUSPECT, so it can refute). What the merge
 * changes is spread to the cluster, and members it adds get our ALIVE. Export returns 0 or
 * SHOAL_ENOMEM; merge returns 0, SHOAL_ETOOBIG (over GOSSIP_MAX_STATE) or SHOAL_EPROTO with the
 * reason in @err, applying nothing if any record is malformed. */
int gossip_core_export(struct gossip_core *g, struct buf *out);
int gossip_core_merge(struct gossip_core *g, const void *data, size_t len, uint64_t now_ms,
		      struct shoal_err *err);

struct gossip_stats {
	uint64_t sent, received, rejected_seal, rejected_decode;
};
void gossip_core_stats(const struct gossip_core *g, struct gossip_stats *out);

/* --- on a libuv UDP socket --------------------------------------------- */

struct gossip;

/* Bind UDP @bind ("IP:port" or "[v6]:port"; port 0 picks one) and run the
 * core on the loop's clock (uv_now()). With cfg->advertise NULL the bound
 * address is advertised (it must then not be a wildcard address). @cfg's
 * strings are copied. Returns 0 or a negative code with the reason in @err;
 * on failure the loop must still run for the handles to be released. */
int gossip_start(struct gossip **out, uv_loop_t *loop, const char *bind,
		 const struct gossip_config *cfg, const struct gossip_keyring *keys,
		 struct shoal_err *err);
/* The core, for the operations above (pass uv_now() as now_ms), then call
 * gossip_kick() so the timer follows the new deadlines (without it they are
 * only honoured at the next timer, at most gossip_interval_ms later). */
struct gossip_core *gossip_core(struct gossip *g);
void gossip_kick(struct gossip *g);
/* Stop, close the socket, free everything, then call @cb (may be NULL) from
 * the loop. No leave is announced (call gossip_core_leave() first and give
 * it time). May be called from inside a gossip callback, once. */
void gossip_close(struct gossip *g, void (*cb)(void *arg), void *arg);

#endif
