/* This node's gossip membership (net/gossip.h) as the daemon uses it: who is
 * up (node ls STATUS, manager reachability), nudges ("the cluster changed,
 * ask a manager"), and key ring rotation in phases so no member is cut off
 * while the new key spreads.
 *
 * Gossip runs on UDP at the node's cluster address (the same IP and port as
 * its stream listener, which is TCP). Members are named by node id. */
#ifndef SHOAL_NODE_MEMBERSHIP_H
#define SHOAL_NODE_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "net/gossip.h"

enum membership_status {
	MEMBERSHIP_UNKNOWN, /* never heard of */
	MEMBERSHIP_UP,	    /* alive or suspected (Docker: ready / reachable) */
	MEMBERSHIP_DOWN,    /* declared dead, left or removed */
};

struct membership_config {
	const char *node_id;
	const char *bind;      /* "IP:port" for the UDP socket */
	const char *advertise; /* "IP:port" others send to */
	/* A nudge arrived (@key, @version newer than any before); may be NULL. */
	void (*nudge)(void *arg, const char *key, uint64_t version);
	/* This node learnt that the cluster removed it; may be NULL. */
	void (*removed)(void *arg);
	void *arg;
};

struct membership;

/* Start gossip with key ring @primary (32 bytes) and @previous (32 bytes or
 * NULL). Returns 0 or an error (the UDP port taken, say) with the reason. */
int membership_start(struct membership **out, uv_loop_t *loop, const struct membership_config *cfg,
		     const unsigned char *primary, const unsigned char *previous,
		     struct shoal_err *err);

/* Contact these members ("IP:port", at most GOSSIP_MAX_SEEDS; others are
 * ignored) to learn the membership. */
int membership_join(struct membership *m, const char *const *seeds, size_t n,
		    struct shoal_err *err);

enum membership_status membership_status(struct membership *m, const char *node_id);

/* Install key ring @primary/@previous (the cluster record's; @previous may be
 * NULL). A primary not seen before is rotated in three phases: accepted at
 * once but not yet used to seal (the old one still seals, so members that
 * have not got it yet hear us), used to seal after MEMBERSHIP_KEY_SWITCH_MS,
 * and the old key dropped after MEMBERSHIP_KEY_DROP_MS, after which a member
 * holding only the old key reads nothing. */
#define MEMBERSHIP_KEY_SWITCH_MS 2000
#define MEMBERSHIP_KEY_DROP_MS	 30000
void membership_set_keys(struct membership *m, const unsigned char *primary,
			 const unsigned char *previous);

/* Tell every member that node @id is removed (node rm). */
void membership_remove(struct membership *m, const char *node_id);

/* Spread a nudge: @key (printable, no spaces) at @version; an older or equal
 * version than one already spread is ignored. */
void membership_nudge(struct membership *m, const char *key, uint64_t version);

/* Datagrams dropped (not sealed with a key of the ring, or not decoding) are
 * logged as warnings naming the sender and why, at most
 * MEMBERSHIP_LOG_BURST of a kind per MEMBERSHIP_LOG_WINDOW_MS, and
 * MEMBERSHIP_LOG_TOTAL in all besides the first of each kind
 * (lib/log_limit.h); the others are counted in the next line of their kind. */
#define MEMBERSHIP_LOG_WINDOW_MS 10000
#define MEMBERSHIP_LOG_BURST	 5
#define MEMBERSHIP_LOG_TOTAL	 20

/* Datagrams that no key of the ring opened, since start. */
uint64_t membership_rejected(struct membership *m);

/* Announce leaving (if @leave), give the announcement @linger_ms to spread,
 * then close everything and call @cb (may be NULL). */
void membership_close(struct membership *m, bool leave, unsigned linger_ms, void (*cb)(void *arg),
		      void *arg);

#endif
