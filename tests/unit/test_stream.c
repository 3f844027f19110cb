/* Unit tests of net/stream: session pairs wired back to back in memory (the
 * handshake, its refusals, tampering, framing limits, what the wire shows),
 * then the libuv layer on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "net/cert.h"
#include "net/stream.h"

#define SEC	 1000000000LL
#define HOUR	 (3600 * SEC)
#define ABYTES	 crypto_secretstream_xchacha20poly1305_ABYTES
#define HDRBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES

/* ---- Nodes ---------------------------------------------------------------- */

struct node {
	struct identity key;
	struct cert cert;
	struct stream_identity sid;
};

static struct identity root, other_root;
static char root_fp[FINGERPRINT_LEN + 1], other_fp[FINGERPRINT_LEN + 1];
static struct node manager, worker, joiner;
/* The sessions' clock; certificates are valid around it. */
static int64_t now;

static void node_init(struct node *n, const char *id, enum cert_role role,
		      const struct identity *by, int64_t from, int64_t ttl)
{
	memset(n, 0, sizeof(*n));
	identity_generate(&n->key);
	n->sid.key = &n->key;
	if (id == NULL)
		return;
	assert_int_equal(cert_issue(&n->cert, id, role, n->key.pk, from, ttl, by, NULL), 0);
	n->sid.cert = &n->cert;
	memcpy(n->sid.root_pk, by->pk, IDENTITY_PK_LEN);
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	now = clock_now_ns();
	identity_generate(&root);
	identity_generate(&other_root);
	identity_fingerprint(root.pk, root_fp);
	identity_fingerprint(other_root.pk, other_fp);
	node_init(&manager, "managernode0", CERT_ROLE_MANAGER, &root, now - 60 * SEC, HOUR);
	node_init(&worker, "workernode0", CERT_ROLE_WORKER, &root, now - 60 * SEC, HOUR);
	node_init(&joiner, NULL, 0, NULL, 0, 0);
	joiner.sid.pinned_root_fingerprint = root_fp;
	return 0;
}

/* ---- Session pairs in memory --------------------------------------------- */

/* One side: what its session wrote, and what it told its owner. */
struct end {
	struct stream_session *s;
	struct buf out;	 /* written, not yet delivered to the other side */
	struct buf wire; /* everything written, if recording */
	bool record;
	int write_rv; /* what write() returns */
	bool established;
	int failed; /* the code, 0 while alive */
	struct shoal_err why;
	unsigned n_msgs;
	struct buf msgs; /* every message as [u32 length][bytes] */
};

struct pair {
	struct end d, l;
};

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int end_write(void *arg, const void *data, size_t len)
{
	struct end *e = arg;

	if (e->write_rv != 0)
		return e->write_rv;
	assert_int_equal(buf_append(&e->out, data, len), 0);
	if (e->record)
		assert_int_equal(buf_append(&e->wire, data, len), 0);
	return 0;
}

static void end_established(void *arg)
{
	struct end *e = arg;

	assert_int_equal(e->failed, 0);
	assert_false(e->established);
	assert_non_null(stream_session_peer(e->s));
	e->established = true;
}

static void end_message(void *arg, const void *data, size_t len)
{
	struct end *e = arg;
	unsigned char n[4];

	assert_int_equal(e->failed, 0);
	assert_true(e->established);
	put_be32(n, (uint32_t)len);
	assert_int_equal(buf_append(&e->msgs, n, 4), 0);
	assert_int_equal(buf_append(&e->msgs, data, len), 0);
	e->n_msgs++;
}

static void end_failed(void *arg, int code, const struct shoal_err *err)
{
	struct end *e = arg;

	assert_int_equal(e->failed, 0); /* once, and nothing after it */
	assert_int_not_equal(code, 0);
	assert_non_null(err);
	assert_true(strlen(err->msg) > 0);
	e->failed = code;
	e->why = *err;
}

static int end_open(struct end *e, bool dialer, enum stream_purpose purpose,
		    const struct stream_identity *id, int64_t at, struct shoal_err *err)
{
	struct stream_session_ops ops = {.arg = e,
					 .write = end_write,
					 .established = end_established,
					 .message = end_message,
					 .failed = end_failed};

	memset(e, 0, sizeof(*e));
	buf_init(&e->out);
	buf_init(&e->wire);
	buf_init(&e->msgs);
	return stream_session_new(&e->s, dialer, purpose, id, at, &ops, err);
}

static void end_free(struct end *e)
{
	stream_session_free(e->s);
	buf_free(&e->out);
	buf_free(&e->wire);
	buf_free(&e->msgs);
}

/* A listener for @lid and a dialer for @did asking for @purpose. Nothing is
 * delivered yet: the dialer's HELLO waits in p->d.out. */
static void pair_new_at(struct pair *p, const struct node *did, enum stream_purpose purpose,
			const struct node *lid, int64_t at)
{
	struct shoal_err err;

	if (end_open(&p->l, false, 0, &lid->sid, at, &err) != 0)
		fail_msg("listener: %s", err.msg);
	if (end_open(&p->d, true, purpose, &did->sid, at, &err) != 0)
		fail_msg("dialer: %s", err.msg);
	assert_true(p->d.out.len > 0);
	assert_int_equal(p->l.out.len, 0);
}

static void pair_new(struct pair *p, const struct node *did, enum stream_purpose purpose,
		     const struct node *lid)
{
	pair_new_at(p, did, purpose, lid, now);
}

static void pair_free(struct pair *p)
{
	end_free(&p->d);
	end_free(&p->l);
}

/* Take what @from wrote. */
static void take(struct end *from, struct buf *out)
{
	*out = from->out;
	buf_init(&from->out);
}

static void feed(struct end *to, const void *data, size_t len, size_t chunk)
{
	const char *p = data;

	for (size_t off = 0; off < len;) {
		size_t n = chunk == 0 || chunk > len - off ? len - off : chunk;

		stream_session_feed(to->s, p + off, n);
		off += n;
	}
}

/* Move what @from wrote into @to, @chunk bytes at a time (0: all at once). */
static bool deliver(struct end *from, struct end *to, size_t chunk)
{
	struct buf b;

	take(from, &b);
	if (b.len == 0) {
		buf_free(&b);
		return false;
	}
	feed(to, b.data, b.len, chunk);
	buf_free(&b);
	return true;
}

/* Deliver both ways until nobody writes. */
static void pump(struct pair *p, size_t chunk)
{
	bool moved = true;

	while (moved) {
		moved = deliver(&p->d, &p->l, chunk);
		moved = deliver(&p->l, &p->d, chunk) || moved;
	}
}

/* The @i-th message @e received. */
static const char *msg_at(const struct end *e, unsigned i, size_t *len)
{
	size_t off = 0;

	assert_true(i < e->n_msgs);
	for (;;) {
		uint32_t n = get_be32(e->msgs.data + off);

		if (i-- == 0) {
			*len = n;
			return e->msgs.data + off + 4;
		}
		off += 4 + n;
	}
}

static void send_ok(struct end *e, const void *data, size_t len)
{
	struct shoal_err err;

	if (stream_session_send(e->s, data, len, &err) != 0)
		fail_msg("send: %s", err.msg);
}

static void expect_msg(const struct end *e, unsigned i, const void *data, size_t len)
{
	size_t n;
	const char *m = msg_at(e, i, &n);

	assert_int_equal(n, len);
	assert_memory_equal(m, data, len);
}

/* ---- The handshake ---------------------------------------------------------- */

static void mutual_handshake_authenticates_both_sides(void **state)
{
	const struct stream_peer *dp, *lp;
	struct pair p;

	(void)state;
	pair_new(&p, &worker, STREAM_RAFT, &manager);
	assert_null(stream_session_peer(p.d.s));
	assert_null(stream_session_peer(p.l.s));
	pump(&p, 0);
	assert_true(p.d.established && p.l.established);
	assert_int_equal(p.d.failed, 0);
	assert_int_equal(p.l.failed, 0);

	dp = stream_session_peer(p.d.s);
	assert_non_null(dp);
	assert_true(dp->authenticated);
	assert_string_equal(dp->cert.node_id, "managernode0");
	assert_int_equal(dp->cert.role, CERT_ROLE_MANAGER);
	assert_memory_equal(dp->cert.node_pk, manager.key.pk, IDENTITY_PK_LEN);
	assert_int_equal(dp->purpose, STREAM_RAFT);

	lp = stream_session_peer(p.l.s);
	assert_non_null(lp);
	assert_true(lp->authenticated);
	assert_string_equal(lp->cert.node_id, "workernode0");
	assert_int_equal(lp->cert.role, CERT_ROLE_WORKER);
	assert_memory_equal(lp->cert.node_pk, worker.key.pk, IDENTITY_PK_LEN);
	assert_int_equal(lp->purpose, STREAM_RAFT);
	pair_free(&p);
}

static void messages_flow_both_ways(void **state)
{
	struct shoal_err err;
	struct pair p;
	char *big;

	(void)state;
	big = malloc(STREAM_MAX_MESSAGE + 1);
	assert_non_null(big);
	for (size_t i = 0; i < STREAM_MAX_MESSAGE + 1; i++)
		big[i] = (char)(i * 131 + (i >> 16));
	pair_new(&p, &worker, STREAM_RPC, &manager);
	pump(&p, 0);

	/* Not before the handshake is done: tested on a fresh pair below. */
	send_ok(&p.d, "first", 5);
	send_ok(&p.d, "", 0);
	send_ok(&p.l, "reply", 5);
	send_ok(&p.d, big, STREAM_MAX_MESSAGE);
	send_ok(&p.l, big + 1, STREAM_MAX_MESSAGE);
	assert_int_equal(stream_session_send(p.d.s, big, STREAM_MAX_MESSAGE + 1, &err),
			 SHOAL_ETOOBIG);
	assert_non_null(strstr(err.msg, "exceeds the limit"));
	send_ok(&p.d, "last", 4); /* an oversized send leaves the stream usable */
	pump(&p, 0);

	assert_int_equal(p.l.n_msgs, 4);
	expect_msg(&p.l, 0, "first", 5);
	expect_msg(&p.l, 1, "", 0);
	expect_msg(&p.l, 2, big, STREAM_MAX_MESSAGE);
	expect_msg(&p.l, 3, "last", 4);
	assert_int_equal(p.d.n_msgs, 2);
	expect_msg(&p.d, 0, "reply", 5);
	expect_msg(&p.d, 1, big + 1, STREAM_MAX_MESSAGE);
	assert_int_equal(p.d.failed + p.l.failed, 0);
	pair_free(&p);

	/* Sending before the handshake finished is refused. */
	pair_new(&p, &worker, STREAM_RPC, &manager);
	assert_int_equal(stream_session_send(p.d.s, "x", 1, &err), SHOAL_ESTATE);
	assert_int_equal(stream_session_send(p.l.s, "x", 1, &err), SHOAL_ESTATE);
	assert_int_equal(stream_session_end(p.d.s, &err), SHOAL_ESTATE);
	pump(&p, 0);
	assert_true(p.d.established && p.l.established);
	pair_free(&p);
	free(big);
}

static void bytes_fed_one_at_a_time(void **state)
{
	struct pair p;

	(void)state;
	pair_new(&p, &worker, STREAM_RPC, &manager);
	pump(&p, 1);
	assert_true(p.d.established && p.l.established);
	send_ok(&p.d, "one byte at a time", 18);
	send_ok(&p.l, "", 0);
	send_ok(&p.l, "back", 4);
	pump(&p, 1);
	assert_int_equal(p.l.n_msgs, 1);
	expect_msg(&p.l, 0, "one byte at a time", 18);
	assert_int_equal(p.d.n_msgs, 2);
	expect_msg(&p.d, 0, "", 0);
	expect_msg(&p.d, 1, "back", 4);
	assert_int_equal(p.d.failed + p.l.failed, 0);
	pair_free(&p);
}

static void joiner_with_the_pinned_fingerprint_joins(void **state)
{
	const struct stream_peer *dp, *lp;
	struct pair p;

	(void)state;
	pair_new(&p, &joiner, STREAM_JOIN, &manager);
	pump(&p, 0);
	assert_true(p.d.established && p.l.established);
	dp = stream_session_peer(p.d.s);
	assert_true(dp->authenticated);
	assert_string_equal(dp->cert.node_id, "managernode0");
	assert_memory_equal(dp->cert.root_pk, root.pk, IDENTITY_PK_LEN);
	assert_int_equal(dp->purpose, STREAM_JOIN);
	lp = stream_session_peer(p.l.s);
	assert_false(lp->authenticated);
	assert_int_equal(lp->purpose, STREAM_JOIN);

	send_ok(&p.d, "token please", 12);
	send_ok(&p.l, "certificate", 11);
	pump(&p, 0);
	expect_msg(&p.l, 0, "token please", 12);
	expect_msg(&p.d, 0, "certificate", 11);
	pair_free(&p);
}

static void joiner_with_a_wrong_fingerprint_fails(void **state)
{
	struct node j = joiner;
	struct pair p;

	(void)state;
	j.sid.pinned_root_fingerprint = other_fp;
	pair_new(&p, &j, STREAM_JOIN, &manager);
	pump(&p, 0);
	assert_false(p.d.established);
	assert_int_equal(p.d.failed, SHOAL_EPROTO);
	assert_string_equal(p.d.why.msg,
			    "the manager's root key fingerprint does not match the join token");
	/* The listener hears why. */
	assert_false(p.l.established);
	assert_int_equal(p.l.failed, SHOAL_ESHUTDOWN);
	assert_string_equal(p.l.why.msg, "the peer ended the stream: the manager's root key "
					 "fingerprint does not match the join token");
	pair_free(&p);
}

/* Play a dialer by hand: HELLO, header, then CERT [5, @purpose, nil]. */
static void hand_dialer_cert(struct end *l, unsigned char purpose)
{
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char pk[32], sk[32], rx[32], tx[32];
	unsigned char hello[4 + 37], hdr[4 + HDRBYTES], frame[4 + 4 + ABYTES];
	const unsigned char body[4] = {0x93, 0x05, purpose, 0xc0};
	const unsigned char *reply;

	crypto_kx_keypair(pk, sk);
	put_be32(hello, 37);
	memcpy(hello + 4, "\x93\x01\x01\xc4\x20", 5);
	memcpy(hello + 9, pk, 32);
	stream_session_feed(l->s, hello, sizeof(hello));
	reply = (const unsigned char *)l->out.data;
	assert_true(l->out.len > 41);
	assert_int_equal(get_be32(reply), 37);
	assert_memory_equal(reply + 4, "\x93\x02\x01\xc4\x20", 5);
	assert_int_equal(crypto_kx_client_session_keys(rx, tx, pk, sk, reply + 9), 0);
	put_be32(hdr, HDRBYTES);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + 4, tx);
	stream_session_feed(l->s, hdr, sizeof(hdr));
	put_be32(frame, 4 + ABYTES);
	crypto_secretstream_xchacha20poly1305_push(
	    &st, frame + 4, NULL, body, sizeof(body), NULL, 0,
	    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	stream_session_feed(l->s, frame, sizeof(frame));
}

static void joiner_may_only_ask_to_join(void **state)
{
	struct shoal_err err;
	struct end e;

	(void)state;
	/* The dialer refuses itself. */
	assert_int_equal(end_open(&e, true, STREAM_RPC, &joiner.sid, now, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "this node has no certificate: it can dial only to join a "
				     "swarm, not for RPC");
	end_free(&e);
	assert_int_equal(end_open(&e, true, STREAM_RAFT, &joiner.sid, now, &err), SHOAL_EINVAL);
	end_free(&e);

	/* A listener refuses a dialer without certificate asking for more. */
	assert_int_equal(end_open(&e, false, 0, &manager.sid, now, &err), 0);
	hand_dialer_cert(&e, STREAM_RPC);
	assert_false(e.established);
	assert_int_equal(e.failed, SHOAL_EPROTO);
	assert_string_equal(e.why.msg,
			    "a node without a certificate asked for RPC: it may only join");
	end_free(&e);

	/* The same dialer asking to join is let in: the hand dialer is sound. */
	assert_int_equal(end_open(&e, false, 0, &manager.sid, now, &err), 0);
	hand_dialer_cert(&e, STREAM_JOIN);
	assert_true(e.established);
	assert_int_equal(e.failed, 0);
	end_free(&e);

	/* An unknown purpose. */
	assert_int_equal(end_open(&e, false, 0, &manager.sid, now, &err), 0);
	hand_dialer_cert(&e, 9);
	assert_int_equal(e.failed, SHOAL_EPROTO);
	assert_string_equal(e.why.msg, "the peer asked for unknown purpose 9");
	end_free(&e);
}

static void identities_are_checked_before_dialing(void **state)
{
	struct node n = worker;
	struct shoal_err err;
	struct end e;

	(void)state;
	n.sid.cert = &manager.cert; /* another node's certificate */
	assert_int_equal(end_open(&e, true, STREAM_RPC, &n.sid, now, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "is for another identity key"));
	end_free(&e);
	n = worker;
	memcpy(n.sid.root_pk, other_root.pk, IDENTITY_PK_LEN);
	assert_int_equal(end_open(&e, true, STREAM_RPC, &n.sid, now, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "was issued by another cluster's root key"));
	end_free(&e);
	n = joiner;
	n.sid.pinned_root_fingerprint = NULL;
	assert_int_equal(end_open(&e, true, STREAM_JOIN, &n.sid, now, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "fingerprint of the join token"));
	end_free(&e);
	assert_int_equal(end_open(&e, false, 0, &joiner.sid, now, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "accepts streams only once it has joined"));
	end_free(&e);
	assert_int_equal(end_open(&e, true, (enum stream_purpose)7, &worker.sid, now, &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "unknown stream purpose 7");
	end_free(&e);
}

static void certificates_of_another_root_are_refused(void **state)
{
	struct node stranger, forged;
	struct pair p;

	(void)state;
	/* The dialer refuses a listener of another cluster. */
	node_init(&stranger, "strangernode", CERT_ROLE_MANAGER, &other_root, now - SEC, HOUR);
	pair_new(&p, &worker, STREAM_RPC, &stranger);
	pump(&p, 0);
	assert_false(p.d.established || p.l.established);
	assert_int_equal(p.d.failed, SHOAL_EPROTO);
	assert_string_equal(
	    p.d.why.msg,
	    "certificate of node strangernode is not signed by this cluster's root key");
	assert_int_equal(p.l.failed, SHOAL_ESHUTDOWN);
	pair_free(&p);

	/* The listener refuses a dialer whose certificate claims our root but
	 * was signed by another; the dialer learns why. */
	node_init(&forged, "forgednode", CERT_ROLE_WORKER, &other_root, now - SEC, HOUR);
	memcpy(forged.cert.root_pk, root.pk, IDENTITY_PK_LEN);
	memcpy(forged.sid.root_pk, root.pk, IDENTITY_PK_LEN);
	pair_new(&p, &forged, STREAM_RPC, &manager);
	pump(&p, 0);
	assert_false(p.l.established);
	assert_int_equal(p.l.failed, SHOAL_EPROTO);
	assert_string_equal(
	    p.l.why.msg, "certificate of node forgednode is not signed by this cluster's root key");
	assert_true(p.d.established); /* its half of the handshake was fine */
	assert_int_equal(p.d.failed, SHOAL_ESHUTDOWN);
	assert_string_equal(p.d.why.msg, "the peer ended the stream: certificate of node "
					 "forgednode is not signed by this cluster's root key");
	pair_free(&p);
}

static void expired_and_future_certificates_are_refused(void **state)
{
	struct node old, early;
	struct pair p;

	(void)state;
	/* Expired dialer: the listener refuses. */
	node_init(&old, "oldnode", CERT_ROLE_WORKER, &root, now - 2 * HOUR, HOUR);
	pair_new(&p, &old, STREAM_RPC, &manager);
	pump(&p, 0);
	assert_false(p.l.established);
	assert_int_equal(p.l.failed, SHOAL_EPROTO);
	assert_non_null(strstr(p.l.why.msg, "certificate of node oldnode expired at "));
	assert_int_equal(p.d.failed, SHOAL_ESHUTDOWN);
	assert_non_null(strstr(p.d.why.msg, "certificate of node oldnode expired at "));
	pair_free(&p);

	/* Not yet valid listener: the dialer refuses. */
	node_init(&early, "earlynode", CERT_ROLE_MANAGER, &root, now + HOUR, HOUR);
	pair_new(&p, &worker, STREAM_RPC, &early);
	pump(&p, 0);
	assert_false(p.d.established || p.l.established);
	assert_int_equal(p.d.failed, SHOAL_EPROTO);
	assert_non_null(strstr(p.d.why.msg, "certificate of node earlynode is not valid before"));
	pair_free(&p);

	/* The sessions' clock decides: the same pair an hour later. */
	pair_new_at(&p, &worker, STREAM_RPC, &manager, now + HOUR);
	pump(&p, 0);
	assert_false(p.d.established || p.l.established);
	assert_non_null(strstr(p.d.why.msg, "certificate of node managernode0 expired at"));
	pair_free(&p);
}

/* A node whose certificate names one key but which signs with another. */
static void signing_key_must_match_the_certificate(void **state)
{
	struct node impostor;
	struct pair p;

	(void)state;
	node_init(&impostor, "impostor", CERT_ROLE_MANAGER, &root, now - SEC, HOUR);
	pair_new(&p, &worker, STREAM_RPC, &impostor);
	identity_generate(&impostor.key); /* after the identity check */
	pump(&p, 0);
	assert_false(p.d.established || p.l.established);
	assert_int_equal(p.d.failed, SHOAL_EPROTO);
	assert_string_equal(p.d.why.msg, "node impostor did not prove that it holds the key its "
					 "certificate names");
	pair_free(&p);

	node_init(&impostor, "impostor", CERT_ROLE_WORKER, &root, now - SEC, HOUR);
	pair_new(&p, &impostor, STREAM_RPC, &manager);
	identity_generate(&impostor.key);
	pump(&p, 0);
	assert_false(p.l.established);
	assert_int_equal(p.l.failed, SHOAL_EPROTO);
	assert_string_equal(p.l.why.msg, "node impostor did not prove that it holds the key its "
					 "certificate names");
	assert_int_equal(p.d.failed, SHOAL_ESHUTDOWN);
	pair_free(&p);
}

/* A flipped byte in a length prefix that makes the frame longer leaves the
 * receiver waiting for bytes that never come (the handshake timeout of the
 * libuv layer ends that); every other flip must fail the receiver. */
static bool may_stall(const struct buf *flight, size_t i, unsigned char mask)
{
	size_t pos = 0;

	while (pos + 4 <= flight->len) {
		uint32_t len = get_be32(flight->data + pos);

		if (i >= pos && i < pos + 4) {
			unsigned char b[4];

			memcpy(b, flight->data + pos, 4);
			b[i - pos] ^= mask;
			return get_be32(b) > len;
		}
		pos += 4 + len;
	}
	return false;
}

/* Run a handshake with byte @i of flight @k (0: dialer's HELLO; 1: the
 * listener's HELLO, header, CERT, VERIFY; 2: the dialer's header, CERT,
 * VERIFY) xor @mask. Returns whether the receiver failed. */
static bool tampered_handshake(size_t k, size_t i, unsigned char mask, size_t *flight_len)
{
	struct buf f;
	struct pair p;
	struct end *receiver;
	bool failed = false;

	pair_new(&p, &worker, STREAM_RPC, &manager);
	for (size_t j = 0; j <= k; j++) {
		struct end *from = j == 1 ? &p.l : &p.d, *to = j == 1 ? &p.d : &p.l;

		take(from, &f);
		if (j == k) {
			*flight_len = f.len;
			if (i >= f.len) {
				buf_free(&f);
				pair_free(&p);
				return false;
			}
			f.data[i] = (char)(f.data[i] ^ mask);
		}
		feed(to, f.data, f.len, 0);
		if (j == k) {
			f.data[i] = (char)(f.data[i] ^ mask);
			receiver = to;
			pump(&p, 0);
			assert_false(receiver->established);
			failed = receiver->failed != 0;
			if (!failed && !may_stall(&f, i, mask))
				fail_msg(
				    "flight %zu byte %zu ^ 0x%02x: the receiver neither failed "
				    "nor waits for a longer frame",
				    k, i, mask);
			/* Only the dialer, when its last flight is tampered, may
			 * have finished: its half was fine. */
			if (k != 2)
				assert_false(p.d.established || p.l.established);
		}
		buf_free(&f);
	}
	pair_free(&p);
	return failed;
}

static void tampered_handshake_messages_fail(void **state)
{
	static const unsigned char masks[] = {0x01, 0x80, 0xff};
	unsigned failures = 0, runs = 0;

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		size_t len = 1;

		for (size_t i = 0; i < len; i++) {
			for (size_t m = 0; m < ARRAY_SIZE(masks); m++) {
				failures += tampered_handshake(k, i, masks[m], &len);
				runs++;
			}
		}
		assert_true(len > 40);
	}
	/* Nearly every flip fails at once; a few only stall. */
	assert_true(failures > runs * 9 / 10);
}

/* ---- Frames ------------------------------------------------------------------ */

static void established_pair(struct pair *p)
{
	pair_new(p, &worker, STREAM_RPC, &manager);
	pump(p, 0);
	assert_true(p->d.established && p->l.established);
}

static void expect_mac_failure(const struct end *e)
{
	assert_int_equal(e->failed, SHOAL_EPROTO);
	assert_string_equal(e->why.msg, "a frame from the peer failed authentication: the "
					"connection is corrupted or tampered with");
}

static void tampered_frames_fail(void **state)
{
	struct buf f;
	struct pair p;

	(void)state;
	/* Every byte of a frame's ciphertext is covered by its MAC. */
	for (size_t i = 4; i < 4 + 5 + ABYTES; i++) {
		established_pair(&p);
		send_ok(&p.d, "hello", 5);
		take(&p.d, &f);
		f.data[i] = (char)(f.data[i] ^ 0x20);
		feed(&p.l, f.data, f.len, 0);
		assert_int_equal(p.l.n_msgs, 0);
		expect_mac_failure(&p.l);
		buf_free(&f);
		/* The failing side told the dialer, encrypted. */
		pump(&p, 0);
		assert_int_equal(p.d.failed, SHOAL_ESHUTDOWN);
		assert_non_null(strstr(p.d.why.msg, "failed authentication"));
		pair_free(&p);
	}
}

static void replayed_frames_fail(void **state)
{
	struct buf f;
	struct pair p;

	(void)state;
	established_pair(&p);
	send_ok(&p.d, "pay 10", 6);
	take(&p.d, &f);
	feed(&p.l, f.data, f.len, 0);
	assert_int_equal(p.l.n_msgs, 1);
	feed(&p.l, f.data, f.len, 0);
	assert_int_equal(p.l.n_msgs, 1);
	expect_mac_failure(&p.l);
	buf_free(&f);
	pair_free(&p);
}

static void reordered_and_dropped_frames_fail(void **state)
{
	struct buf a, b;
	struct pair p;

	(void)state;
	established_pair(&p);
	send_ok(&p.d, "first", 5);
	take(&p.d, &a);
	send_ok(&p.d, "second", 6);
	take(&p.d, &b);
	feed(&p.l, b.data, b.len, 0);
	assert_int_equal(p.l.n_msgs, 0);
	expect_mac_failure(&p.l);
	pair_free(&p);
	buf_free(&a);
	buf_free(&b);

	/* A dropped frame: the next one does not authenticate either. */
	established_pair(&p);
	send_ok(&p.d, "first", 5);
	take(&p.d, &a);
	send_ok(&p.d, "second", 6);
	take(&p.d, &b);
	feed(&p.l, b.data, b.len, 0);
	expect_mac_failure(&p.l);
	pair_free(&p);
	buf_free(&a);
	buf_free(&b);
}

static void truncated_frames_fail(void **state)
{
	struct buf f;
	struct pair p;

	(void)state;
	/* Shortened by one byte, with a length prefix that agrees. */
	established_pair(&p);
	send_ok(&p.d, "truncate me", 11);
	take(&p.d, &f);
	put_be32((unsigned char *)f.data, (uint32_t)(f.len - 5));
	feed(&p.l, f.data, f.len - 1, 0);
	expect_mac_failure(&p.l);
	buf_free(&f);
	pair_free(&p);

	/* A partial frame waits for the rest, then authenticates. */
	established_pair(&p);
	send_ok(&p.d, "in two parts", 12);
	take(&p.d, &f);
	feed(&p.l, f.data, f.len - 3, 0);
	assert_int_equal(p.l.n_msgs, 0);
	assert_int_equal(p.l.failed, 0);
	feed(&p.l, f.data + f.len - 3, 3, 0);
	expect_msg(&p.l, 0, "in two parts", 12);
	buf_free(&f);
	pair_free(&p);
}

static void final_frame_ends_the_session(void **state)
{
	struct shoal_err err;
	struct pair p;

	(void)state;
	established_pair(&p);
	send_ok(&p.d, "bye", 3);
	assert_int_equal(stream_session_end(p.d.s, &err), 0);
	assert_int_equal(stream_session_send(p.d.s, "more", 4, &err), SHOAL_ESTATE);
	assert_int_equal(stream_session_end(p.d.s, &err), SHOAL_ESTATE);
	/* The other direction still works until the listener sees the end. */
	send_ok(&p.l, "still here", 10);
	pump(&p, 0);
	expect_msg(&p.l, 0, "bye", 3);
	assert_int_equal(p.l.failed, SHOAL_ESHUTDOWN);
	assert_string_equal(p.l.why.msg, "the peer ended the stream");
	assert_int_equal(p.d.failed, 0);
	expect_msg(&p.d, 0, "still here", 10);
	/* Bytes after the end are ignored. */
	assert_int_equal(stream_session_send(p.l.s, "x", 1, &err), SHOAL_ESTATE);
	pair_free(&p);
}

static void write_failures_break_the_session(void **state)
{
	struct shoal_err err;
	struct pair p;

	(void)state;
	established_pair(&p);
	p.d.write_rv = SHOAL_EIO;
	assert_int_equal(stream_session_send(p.d.s, "lost", 4, &err), SHOAL_EIO);
	p.d.write_rv = 0;
	/* The tx state moved on without the bytes: no more sends. */
	assert_int_equal(stream_session_send(p.d.s, "next", 4, &err), SHOAL_ESTATE);
	assert_int_equal(p.d.failed, 0); /* the caller was told by the return code */
	pair_free(&p);

	/* A dialer whose HELLO cannot be written is not created. */
	{
		struct stream_session_ops ops = {.write = end_write,
						 .established = end_established,
						 .message = end_message,
						 .failed = end_failed};
		struct stream_session *s = NULL;
		struct end e = {.write_rv = SHOAL_ESHUTDOWN};

		ops.arg = &e;
		assert_int_equal(
		    stream_session_new(&s, true, STREAM_RPC, &worker.sid, now, &ops, &err),
		    SHOAL_ESHUTDOWN);
		assert_null(s);
	}
}

/* Feed @prefix to @e and expect it to fail with @code after those 4 bytes. */
static void expect_refused_len(struct end *e, uint32_t len, int code)
{
	unsigned char b[4];

	put_be32(b, len);
	stream_session_feed(e->s, b, 4);
	assert_int_equal(e->failed, code);
}

static void oversized_lengths_are_refused_before_allocation(void **state)
{
	struct pair p;
	unsigned char b[4];

	(void)state;
	/* HELLO, on either side. */
	pair_new(&p, &worker, STREAM_RPC, &manager);
	expect_refused_len(&p.l, STREAM_MAX_HANDSHAKE + 1, SHOAL_ETOOBIG);
	assert_string_equal(p.l.why.msg,
			    "the peer announced a frame of 4097 bytes, over the limit of 4096");
	expect_refused_len(&p.d, 0xffffffffu, SHOAL_ETOOBIG);
	pair_free(&p);
	pair_new(&p, &worker, STREAM_RPC, &manager);
	expect_refused_len(&p.l, 0, SHOAL_EPROTO);
	pair_free(&p);

	/* The secretstream header is exactly 24 bytes. */
	pair_new(&p, &worker, STREAM_RPC, &manager);
	deliver(&p.d, &p.l, 0);
	expect_refused_len(&p.l, HDRBYTES + 1, SHOAL_ETOOBIG);
	pair_free(&p);
	pair_new(&p, &worker, STREAM_RPC, &manager);
	deliver(&p.d, &p.l, 0);
	expect_refused_len(&p.l, HDRBYTES - 1, SHOAL_EPROTO);
	pair_free(&p);

	/* Encrypted handshake messages. */
	pair_new(&p, &worker, STREAM_RPC, &manager);
	deliver(&p.d, &p.l, 0);
	{
		struct buf f;

		take(&p.l, &f);
		/* The listener's HELLO and header, then a huge CERT. */
		feed(&p.d, f.data, 4 + get_be32(f.data) + 4 + HDRBYTES, 0);
		buf_free(&f);
	}
	assert_int_equal(p.d.failed, 0);
	expect_refused_len(&p.d, STREAM_MAX_HANDSHAKE + ABYTES + 1, SHOAL_ETOOBIG);
	pair_free(&p);

	/* Messages: the largest allowed length waits for its bytes ... */
	established_pair(&p);
	put_be32(b, STREAM_MAX_MESSAGE + ABYTES);
	stream_session_feed(p.l.s, b, 4);
	stream_session_feed(p.l.s, "partial", 7);
	assert_int_equal(p.l.failed, 0);
	pair_free(&p);
	/* ... one more is refused, as is one too short for a MAC. */
	established_pair(&p);
	expect_refused_len(&p.l, STREAM_MAX_MESSAGE + ABYTES + 1, SHOAL_ETOOBIG);
	assert_int_equal(p.d.n_msgs, 0);
	pair_free(&p);
	established_pair(&p);
	expect_refused_len(&p.l, ABYTES - 1, SHOAL_EPROTO);
	pair_free(&p);
}

static void malformed_hellos_are_refused(void **state)
{
	unsigned char hello[4 + 37];
	struct end e;

	(void)state;
	put_be32(hello, 37);
	memcpy(hello + 4, "\x93\x01\x02\xc4\x20", 5);
	memset(hello + 9, 7, 32);
	assert_int_equal(end_open(&e, false, 0, &manager.sid, now, NULL), 0);
	stream_session_feed(e.s, hello, sizeof(hello));
	assert_int_equal(e.failed, SHOAL_EPROTO);
	assert_string_equal(e.why.msg, "the peer speaks stream protocol version 2 and this node "
				       "speaks 1: run the same shoal release on both");
	assert_int_equal(e.out.len, 0);
	end_free(&e);

	/* A listener's HELLO sent to a listener. */
	hello[5] = 0x02;
	hello[6] = 0x01;
	assert_int_equal(end_open(&e, false, 0, &manager.sid, now, NULL), 0);
	stream_session_feed(e.s, hello, sizeof(hello));
	assert_int_equal(e.failed, SHOAL_EPROTO);
	assert_string_equal(e.why.msg, "malformed HELLO message from the peer");
	end_free(&e);

	/* An all-zero ephemeral key (a low-order point) gives no session key. */
	hello[5] = 0x01;
	memset(hello + 9, 0, 32);
	assert_int_equal(end_open(&e, false, 0, &manager.sid, now, NULL), 0);
	stream_session_feed(e.s, hello, sizeof(hello));
	assert_int_equal(e.failed, SHOAL_EPROTO);
	assert_string_equal(e.why.msg, "the peer's ephemeral key is invalid");
	end_free(&e);
}

/* A capture of the wire shows neither messages nor who talks. */
static void the_wire_shows_no_plaintext(void **state)
{
	static const char marker[] = "cluster-secret-MARKER-5f0e2a";
	struct pair p;
	char msg[256];
	int n;

	(void)state;
	pair_new(&p, &worker, STREAM_RAFT, &manager);
	p.d.record = true;
	p.l.record = true;
	/* The HELLO was written before recording began: keep it too. */
	assert_int_equal(buf_append(&p.d.wire, p.d.out.data, p.d.out.len), 0);
	pump(&p, 0);
	n = snprintf(msg, sizeof(msg), "env SECRET=%s", marker);
	for (int i = 0; i < 3; i++) {
		send_ok(&p.d, msg, (size_t)n);
		send_ok(&p.l, msg, (size_t)n);
	}
	pump(&p, 0);
	/* The messages arrived ... */
	assert_int_equal(p.l.n_msgs, 3);
	assert_int_equal(p.d.n_msgs, 3);
	expect_msg(&p.l, 2, msg, (size_t)n);
	assert_non_null(memmem(p.l.msgs.data, p.l.msgs.len, marker, strlen(marker)));
	/* ... and the wire holds none of it, nor the certificates' contents. */
	assert_true(p.d.wire.len > 200 && p.l.wire.len > 200);
	for (int side = 0; side < 2; side++) {
		const struct buf *w = side == 0 ? &p.d.wire : &p.l.wire;

		assert_null(memmem(w->data, w->len, marker, strlen(marker)));
		assert_null(memmem(w->data, w->len, "SECRET", 6));
		assert_null(memmem(w->data, w->len, "managernode0", 12));
		assert_null(memmem(w->data, w->len, "workernode0", 11));
		assert_null(memmem(w->data, w->len, worker.key.pk, IDENTITY_PK_LEN));
		assert_null(memmem(w->data, w->len, manager.key.pk, IDENTITY_PK_LEN));
		assert_null(memmem(w->data, w->len, root.pk, IDENTITY_PK_LEN));
	}
	pair_free(&p);
}

/* ---- The libuv layer on 127.0.0.1 ---------------------------------------- */

static uv_loop_t loop;
static uv_timer_t guard;
static bool guard_fired;
static char big[1 << 20];

static void guard_cb(uv_timer_t *t)
{
	(void)t;
	guard_fired = true;
	uv_stop(&loop);
}

/* Each test runs the loop until every handle is closed (a guard ends a hung
 * test), then checks that nothing is left open. */
static int loop_setup(void **state)
{
	(void)state;
	if (uv_loop_init(&loop) != 0)
		return -1;
	guard_fired = false;
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, guard_cb, 20000, 0);
	uv_unref((uv_handle_t *)&guard);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i % 251);
	return 0;
}

static void run_loop(void)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_false(guard_fired);
}

/* Report an open handle and close it, leaking its owner's memory. */
static void walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h != (uv_handle_t *)&guard)
		print_error("a %s handle is left open\n", uv_handle_type_name(h->type));
	uv_close(h, NULL);
}

/* Give what a failed test left behind a few seconds, then force it closed
 * so the next test runs. Fails if anything was left. */
static int loop_teardown(void **state)
{
	bool clean = !guard_fired;

	(void)state;
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, 5000, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	clean = clean && !guard_fired;
	uv_walk(&loop, walk_cb, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	return clean && uv_loop_close(&loop) == 0 ? 0 : -1;
}

struct tcp_side {
	struct stream *s;
	unsigned n_msgs;
	struct buf msgs; /* [u32 length][bytes] each */
	bool closed;
	int closed_code;
	char closed_msg[SHOAL_ERR_LEN];
};

/* One test's world: a listener, a dialer, and what each side does. */
struct tcp_test {
	struct stream_listener *l;
	bool listener_closed;
	char addr[64];
	struct tcp_side cli, srv;
	unsigned accepted;
	bool dialed;
	int dial_status;
	char dial_msg[SHOAL_ERR_LEN];
	bool joining;	       /* cli sends "join me" before starting, else three messages */
	bool echo;	       /* srv sends every message back */
	bool srv_closes;       /* srv closes after its first message */
	bool srv_never_starts; /* srv leaves the accepted stream alone */
	unsigned cli_expect;   /* cli closes after this many messages */
	uint64_t started_ms;
	uv_timer_t poll; /* waits for the listener to count a failure */
	unsigned failures;
	struct shoal_err last_failure;
	unsigned hooked; /* calls of the listener's failure hook */
	int hooked_code;
	struct shoal_err hooked_why;
};

static struct tcp_test *T;

static void listener_closed_cb(void *arg)
{
	struct tcp_test *t = arg;

	assert_false(t->listener_closed);
	t->listener_closed = true;
}

static void close_listener(struct tcp_test *t)
{
	if (t->l == NULL)
		return;
	stream_listener_close(t->l, listener_closed_cb, t);
	t->l = NULL;
}

static void side_message(struct stream *s, const void *data, size_t len, void *arg)
{
	struct tcp_side *side = arg;
	unsigned char n[4];

	assert_ptr_equal(s, side->s);
	assert_false(side->closed);
	put_be32(n, (uint32_t)len);
	assert_int_equal(buf_append(&side->msgs, n, 4), 0);
	assert_int_equal(buf_append(&side->msgs, data, len), 0);
	side->n_msgs++;
	if (side == &T->srv && T->echo)
		assert_int_equal(stream_send(s, data, len, NULL), 0);
	if (side == &T->srv && T->srv_closes)
		stream_close(s);
	if (side == &T->cli && side->n_msgs == T->cli_expect)
		stream_close(s);
}

/* Record the close; once both sides closed, close the listener. */
static void side_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	struct tcp_side *side = arg;

	assert_ptr_equal(s, side->s);
	assert_false(side->closed);
	side->closed = true;
	side->closed_code = code;
	if (code != 0) {
		assert_non_null(err);
		snprintf(side->closed_msg, sizeof(side->closed_msg), "%s", err->msg);
	} else {
		assert_null(err);
	}
	if (T->cli.closed && (T->srv.closed || T->srv.s == NULL || T->srv_never_starts)) {
		if (T->srv_never_starts && T->srv.s != NULL)
			stream_close(T->srv.s); /* its owner closes it, unstarted */
		close_listener(T);
	}
}

static void on_accept(struct stream_listener *l, struct stream *s, void *arg)
{
	struct tcp_test *t = arg;

	assert_ptr_equal(l, t->l);
	assert_non_null(strstr(stream_remote_addr(s), "127.0.0.1:"));
	t->accepted++;
	t->srv.s = s;
	if (!t->srv_never_starts)
		stream_start(s, side_message, side_closed, &t->srv);
}

static void tcp_test_init(struct tcp_test *t, const struct node *server)
{
	struct shoal_err err;

	memset(t, 0, sizeof(*t));
	buf_init(&t->cli.msgs);
	buf_init(&t->srv.msgs);
	t->dial_status = 1;
	T = t;
	if (server != NULL) {
		if (stream_listen(&t->l, &loop, "127.0.0.1:0", &server->sid, on_accept, t, &err) !=
		    0)
			fail_msg("listen: %s", err.msg);
		assert_true(stream_listener_port(t->l) > 0);
		snprintf(t->addr, sizeof(t->addr), "127.0.0.1:%u", stream_listener_port(t->l));
	}
	t->started_ms = clock_mono_ms();
}

static void tcp_test_free(struct tcp_test *t)
{
	buf_free(&t->cli.msgs);
	buf_free(&t->srv.msgs);
}

static void tcp_expect_msg(const struct tcp_side *side, unsigned i, const void *data, size_t len)
{
	size_t off = 0;

	assert_true(i < side->n_msgs);
	while (i-- > 0)
		off += 4 + get_be32(side->msgs.data + off);
	assert_int_equal(get_be32(side->msgs.data + off), len);
	assert_memory_equal(side->msgs.data + off + 4, data, len);
}

/* A dial that must succeed: check the listener, start, send what is asked. */
static void dial_ok(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct tcp_test *t = arg;

	if (status != 0)
		fail_msg("dial: %s", err->msg);
	assert_false(t->dialed);
	t->dialed = true;
	t->dial_status = status;
	t->cli.s = s;
	assert_true(stream_peer(s)->authenticated);
	assert_string_equal(stream_peer(s)->cert.node_id, "managernode0");
	assert_string_equal(stream_remote_addr(s), t->addr);
	if (t->joining) {
		/* Before the stream is started: allowed. */
		assert_int_equal(stream_send(s, "join me", 7, NULL), 0);
		stream_start(s, side_message, side_closed, &t->cli);
		return;
	}
	assert_int_equal(stream_send(s, "hello", 5, NULL), 0);
	assert_int_equal(stream_send(s, "", 0, NULL), 0);
	stream_start(s, side_message, side_closed, &t->cli);
	assert_int_equal(stream_send(s, big, sizeof(big), NULL), 0);
}

static void tcp_dial_listen_and_exchange(void **state)
{
	struct shoal_err err;
	struct tcp_test t;

	(void)state;
	tcp_test_init(&t, &manager);
	t.echo = true;
	t.cli_expect = 3;
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_RPC, &worker.sid, dial_ok, &t, &err), 0);
	run_loop();
	assert_int_equal(t.dial_status, 0);
	assert_int_equal(t.accepted, 1);
	assert_int_equal(t.srv.n_msgs, 3);
	tcp_expect_msg(&t.srv, 0, "hello", 5);
	tcp_expect_msg(&t.srv, 1, "", 0);
	tcp_expect_msg(&t.srv, 2, big, sizeof(big));
	assert_int_equal(t.cli.n_msgs, 3);
	tcp_expect_msg(&t.cli, 0, "hello", 5);
	tcp_expect_msg(&t.cli, 2, big, sizeof(big));
	/* The dialer closed: code 0; the listener's side heard its final frame. */
	assert_true(t.cli.closed && t.srv.closed);
	assert_int_equal(t.cli.closed_code, 0);
	assert_int_equal(t.srv.closed_code, SHOAL_ESHUTDOWN);
	assert_true(strstr(t.srv.closed_msg, "stream with 127.0.0.1:") == t.srv.closed_msg);
	assert_non_null(strstr(t.srv.closed_msg, ": the peer ended the stream"));
	assert_true(t.listener_closed);
	tcp_test_free(&t);
}

/* A dial outlives its asker's identity (the swarm freed while a connect was
 * pending, found by the chaos suite): the stream works from its own copy. */
static void tcp_dial_outlives_the_identity(void **state)
{
	struct shoal_err err;
	struct tcp_test t;
	struct node *n = malloc(sizeof(*n));

	(void)state;
	assert_non_null(n);
	*n = worker;
	n->sid.key = &n->key;
	n->sid.cert = &n->cert;
	tcp_test_init(&t, &manager);
	t.echo = true;
	t.cli_expect = 3;
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_RPC, &n->sid, dial_ok, &t, &err), 0);
	memset(n, 0xa5, sizeof(*n)); /* what a reuse of the memory would leave */
	free(n);
	run_loop();
	assert_int_equal(t.dial_status, 0);
	assert_int_equal(t.accepted, 1);
	assert_int_equal(t.srv.n_msgs, 3);
	tcp_test_free(&t);
}

static void accept_joiner(struct stream_listener *l, struct stream *s, void *arg)
{
	const struct stream_peer *peer = stream_peer(s);

	assert_false(peer->authenticated);
	assert_int_equal(peer->purpose, STREAM_JOIN);
	on_accept(l, s, arg);
}

static void tcp_joiner_joins_and_the_listener_side_closes(void **state)
{
	struct shoal_err err;
	struct tcp_test t;

	(void)state;
	tcp_test_init(&t, NULL);
	assert_int_equal(
	    stream_listen(&t.l, &loop, "127.0.0.1:0", &manager.sid, accept_joiner, &t, &err), 0);
	snprintf(t.addr, sizeof(t.addr), "127.0.0.1:%u", stream_listener_port(t.l));
	t.srv_closes = true;
	t.joining = true;
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_JOIN, &joiner.sid, dial_ok, &t, &err),
			 0);
	run_loop();
	assert_int_equal(t.accepted, 1);
	assert_int_equal(t.srv.n_msgs, 1);
	tcp_expect_msg(&t.srv, 0, "join me", 7);
	/* The listener's owner closed its side: the joiner is told. */
	assert_int_equal(t.srv.closed_code, 0);
	assert_int_equal(t.cli.closed_code, SHOAL_ESHUTDOWN);
	assert_non_null(strstr(t.cli.closed_msg, "the peer ended the stream"));
	assert_true(t.listener_closed);
	tcp_test_free(&t);
}

/* Wait for the listener to count the failed handshake, then close it. */
static void poll_failures(uv_timer_t *timer)
{
	struct tcp_test *t = timer->data;

	t->failures = stream_listener_failures(t->l, &t->last_failure);
	if (t->failures == 0)
		return;
	uv_close((uv_handle_t *)timer, NULL);
	close_listener(t);
}

static void forged_closed(struct stream *s, int code, const struct shoal_err *err, void *arg)
{
	struct tcp_test *t = arg;

	assert_ptr_equal(s, t->cli.s);
	t->cli.closed = true;
	t->cli.closed_code = code;
	snprintf(t->cli.closed_msg, sizeof(t->cli.closed_msg), "%s", err != NULL ? err->msg : "");
	uv_timer_init(&loop, &t->poll);
	t->poll.data = t;
	uv_timer_start(&t->poll, poll_failures, 0, 5);
}

static void dial_forged(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct tcp_test *t = arg;

	(void)err;
	/* The dialer's half succeeds; the listener's refusal comes after. */
	assert_int_equal(status, 0);
	t->cli.s = s;
	stream_start(s, side_message, forged_closed, t);
}

static void on_failure(void *arg, int code, const struct shoal_err *why)
{
	struct tcp_test *t = arg;

	t->hooked++;
	t->hooked_code = code;
	t->hooked_why = *why;
}

static void tcp_refused_certificate_is_counted_and_explained(void **state)
{
	struct shoal_err err, last;
	struct tcp_test t;
	struct node forged;

	(void)state;
	node_init(&forged, "forgednode", CERT_ROLE_WORKER, &other_root, now - SEC, HOUR);
	memcpy(forged.cert.root_pk, root.pk, IDENTITY_PK_LEN);
	memcpy(forged.sid.root_pk, root.pk, IDENTITY_PK_LEN);
	tcp_test_init(&t, &manager);
	assert_int_equal(stream_listener_failures(t.l, &last), 0);
	stream_listener_on_failure(t.l, on_failure, &t);
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_RPC, &forged.sid, dial_forged, &t, &err),
			 0);
	run_loop();
	assert_int_equal(t.accepted, 0);
	assert_int_equal(t.failures, 1);
	/* The hook told of the same failure, with its reason. */
	assert_int_equal(t.hooked, 1);
	assert_int_equal(t.hooked_code, SHOAL_EPROTO);
	assert_string_equal(t.hooked_why.msg, t.last_failure.msg);
	assert_true(strstr(t.last_failure.msg, "handshake with 127.0.0.1:") == t.last_failure.msg);
	assert_non_null(strstr(t.last_failure.msg, ": certificate of node forgednode is not "
						   "signed by this cluster's root key"));
	assert_int_equal(t.cli.closed_code, SHOAL_ESHUTDOWN);
	assert_non_null(strstr(t.cli.closed_msg,
			       "the peer ended the stream: certificate of node forgednode is not "
			       "signed by this cluster's root key"));
	assert_true(t.listener_closed);
	tcp_test_free(&t);
}

/* The listener's owner starts its stream only later: what arrived meanwhile
 * (in the same read as the end of the handshake, or after) is delivered
 * in order once started. */
static void start_later(uv_timer_t *timer)
{
	struct tcp_test *t = timer->data;

	uv_close((uv_handle_t *)timer, NULL);
	stream_start(t->srv.s, side_message, side_closed, &t->srv);
}

static void accept_start_later(struct stream_listener *l, struct stream *s, void *arg)
{
	struct tcp_test *t = arg;

	t->srv_never_starts = true;
	on_accept(l, s, arg);
	t->srv_never_starts = false;
	uv_timer_init(&loop, &t->poll);
	t->poll.data = t;
	uv_timer_start(&t->poll, start_later, 50, 0);
}

static void dial_send_three(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct tcp_test *t = arg;

	(void)err;
	assert_int_equal(status, 0);
	t->cli.s = s;
	stream_start(s, side_message, side_closed, &t->cli);
	assert_int_equal(stream_send(s, "one", 3, NULL), 0);
	assert_int_equal(stream_send(s, "two", 3, NULL), 0);
	assert_int_equal(stream_send(s, big, sizeof(big), NULL), 0);
	assert_int_equal(stream_send(s, "four", 4, NULL), 0);
}

static void tcp_messages_wait_until_the_stream_is_started(void **state)
{
	struct shoal_err err;
	struct tcp_test t;

	(void)state;
	tcp_test_init(&t, NULL);
	assert_int_equal(
	    stream_listen(&t.l, &loop, "127.0.0.1:0", &manager.sid, accept_start_later, &t, &err),
	    0);
	snprintf(t.addr, sizeof(t.addr), "127.0.0.1:%u", stream_listener_port(t.l));
	t.echo = true;
	t.cli_expect = 4;
	assert_int_equal(
	    stream_dial(&loop, t.addr, STREAM_RAFT, &worker.sid, dial_send_three, &t, &err), 0);
	run_loop();
	assert_int_equal(t.srv.n_msgs, 4);
	tcp_expect_msg(&t.srv, 0, "one", 3);
	tcp_expect_msg(&t.srv, 1, "two", 3);
	tcp_expect_msg(&t.srv, 2, big, sizeof(big));
	tcp_expect_msg(&t.srv, 3, "four", 4);
	assert_int_equal(t.cli.n_msgs, 4);
	tcp_expect_msg(&t.cli, 3, "four", 4);
	assert_true(t.cli.closed && t.srv.closed && t.listener_closed);
	tcp_test_free(&t);
}

/* A TCP server that accepts and reads, but never answers. */
struct mute {
	uv_tcp_t server;
	uv_tcp_t conn;
	bool open;
	bool accepted;
	char buf[256];
};

static struct mute mute;

static void mute_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	(void)h;
	(void)n;
	*b = uv_buf_init(mute.buf, sizeof(mute.buf));
}

static void mute_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b)
{
	(void)h;
	(void)n;
	(void)b;
}

static void mute_connection(uv_stream_t *server, int status)
{
	assert_int_equal(status, 0);
	assert_false(mute.accepted);
	uv_tcp_init(&loop, &mute.conn);
	assert_int_equal(uv_accept(server, (uv_stream_t *)&mute.conn), 0);
	mute.accepted = true;
	uv_read_start((uv_stream_t *)&mute.conn, mute_alloc, mute_read);
}

static unsigned mute_listen(void)
{
	struct sockaddr_storage got;
	int len = sizeof(got);
	struct sockaddr_in a;

	memset(&mute, 0, sizeof(mute));
	uv_tcp_init(&loop, &mute.server);
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_bind(&mute.server, (const struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&mute.server, 8, mute_connection), 0);
	assert_int_equal(uv_tcp_getsockname(&mute.server, (struct sockaddr *)&got, &len), 0);
	mute.open = true;
	return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void mute_close(void)
{
	if (!mute.open)
		return;
	mute.open = false;
	uv_close((uv_handle_t *)&mute.server, NULL);
	if (mute.accepted)
		uv_close((uv_handle_t *)&mute.conn, NULL);
}

static void dial_fails(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct tcp_test *t = arg;

	assert_null(s);
	assert_false(t->dialed);
	t->dialed = true;
	t->dial_status = status;
	snprintf(t->dial_msg, sizeof(t->dial_msg), "%s", err->msg);
	mute_close();
}

static void tcp_handshake_times_out(void **state)
{
	struct node w = worker;
	struct shoal_err err;
	struct tcp_test t;
	uint64_t took;

	(void)state;
	tcp_test_init(&t, NULL);
	snprintf(t.addr, sizeof(t.addr), "127.0.0.1:%u", mute_listen());
	w.sid.handshake_timeout_ms = 300;
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_RPC, &w.sid, dial_fails, &t, &err), 0);
	run_loop();
	took = clock_mono_ms() - t.started_ms;
	assert_true(mute.accepted);
	assert_int_equal(t.dial_status, SHOAL_ETIMEDOUT);
	assert_true(strstr(t.dial_msg, "dial 127.0.0.1:") == t.dial_msg);
	assert_non_null(strstr(t.dial_msg, ": the handshake did not finish within 300 ms"));
	assert_true(took >= 290 && took < 5000);
	tcp_test_free(&t);
}

static void tcp_connection_refused(void **state)
{
	struct shoal_err err;
	struct tcp_test t;
	unsigned port;

	(void)state;
	tcp_test_init(&t, NULL);
	/* A port nobody listens on: bound a moment ago, then released. */
	port = mute_listen();
	mute_close();
	uv_run(&loop, UV_RUN_DEFAULT);
	snprintf(t.addr, sizeof(t.addr), "127.0.0.1:%u", port);
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_RPC, &worker.sid, dial_fails, &t, &err),
			 0);
	run_loop();
	assert_true(t.dialed);
	assert_int_equal(t.dial_status, SHOAL_EIO);
	assert_non_null(strstr(t.dial_msg, "connect: connection refused"));
	tcp_test_free(&t);
}

static void tcp_bad_arguments_fail_at_once(void **state)
{
	static const char *const bad[] = {
	    "localhost:4377", "10.0.0.1",      "10.0.0.1:",	 "10.0.0.1:0",
	    "10.0.0.1:65536", "10.0.0.1:43a7", "::1:4377",	 "[::1]4377",
	    "[]:4377",	      ":4377",	       "10.0.0.1:123456"};
	struct stream_listener *l = NULL;
	struct shoal_err err;
	struct tcp_test t;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		assert_int_equal(
		    stream_dial(&loop, bad[i], STREAM_RPC, &worker.sid, dial_fails, NULL, &err),
		    SHOAL_EINVAL);
		assert_non_null(strstr(err.msg, "expected IP:port"));
	}
	assert_int_equal(
	    stream_dial(&loop, "127.0.0.1:4377", STREAM_RPC, &joiner.sid, dial_fails, NULL, &err),
	    SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "can dial only to join"));
	assert_int_equal(
	    stream_listen(&l, &loop, "127.0.0.1:0", &joiner.sid, on_accept, NULL, &err),
	    SHOAL_EINVAL);
	assert_int_equal(stream_listen(&l, &loop, "127.0.0.1", &manager.sid, on_accept, NULL, &err),
			 SHOAL_EINVAL);

	/* An address in use; the failed listener is released by the loop. */
	tcp_test_init(&t, &manager);
	assert_int_equal(stream_listen(&l, &loop, t.addr, &manager.sid, on_accept, NULL, &err),
			 SHOAL_EIO);
	assert_non_null(strstr(err.msg, "address already in use"));
	close_listener(&t);
	run_loop();
	assert_true(t.listener_closed);
	tcp_test_free(&t);
}

/* A raw client sends a valid HELLO and sees the listener's answer, so the
 * handshake is pending there; then the listener closes. */
struct raw {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	struct end hello; /* a dialer session that wrote the HELLO */
	bool answered;
	bool ended;
	char buf[4096];
};

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	struct raw *r = h->data;

	(void)n;
	*b = uv_buf_init(r->buf, sizeof(r->buf));
}

static void raw_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b)
{
	struct raw *r = h->data;

	(void)b;
	if (n > 0 && !r->answered) {
		r->answered = true;
		close_listener(T);
	} else if (n < 0) {
		r->ended = true;
		uv_close((uv_handle_t *)&r->tcp, NULL);
	}
}

static void raw_connected(uv_connect_t *req, int status)
{
	struct raw *r = req->data;
	uv_buf_t b = uv_buf_init(r->hello.out.data, (unsigned)r->hello.out.len);

	assert_int_equal(status, 0);
	assert_int_equal(uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, NULL), 0);
	uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

static void tcp_listener_close_ends_pending_handshakes(void **state)
{
	struct sockaddr_in a;
	struct tcp_test t;
	struct raw r;

	(void)state;
	tcp_test_init(&t, &manager);
	stream_listener_on_failure(t.l, on_failure, &t);
	memset(&r, 0, sizeof(r));
	assert_int_equal(end_open(&r.hello, true, STREAM_RPC, &worker.sid, now, NULL), 0);
	uv_tcp_init(&loop, &r.tcp);
	r.tcp.data = &r;
	r.connect.data = &r;
	uv_ip4_addr("127.0.0.1", (int)stream_listener_port(t.l), &a);
	assert_int_equal(
	    uv_tcp_connect(&r.connect, &r.tcp, (const struct sockaddr *)&a, raw_connected), 0);
	run_loop();
	assert_true(r.answered);
	assert_true(r.ended); /* the pending connection was closed */
	assert_true(t.listener_closed);
	assert_int_equal(t.accepted, 0);
	assert_int_equal(t.hooked, 0); /* cancelled by the close: not a refusal */
	end_free(&r.hello);
	tcp_test_free(&t);
}

/* The listener's side is never started, so never read: once it is handed
 * out, the dialer queues 64 MiB messages until the cap cuts it off. */
static void flood(struct stream *s)
{
	struct shoal_err e;
	unsigned sent = 0;
	char *huge;
	int rv = 0;

	huge = calloc(1, STREAM_MAX_MESSAGE);
	assert_non_null(huge);
	while (rv == 0 && sent < 16) {
		rv = stream_send(s, huge, STREAM_MAX_MESSAGE, &e);
		sent += rv == 0;
	}
	free(huge);
	assert_int_equal(rv, SHOAL_ETOOBIG);
	assert_non_null(strstr(e.msg, "the peer does not read"));
	assert_true(sent >= 3 && sent <= 5);
	assert_int_equal(stream_send(s, "x", 1, &e), SHOAL_ESHUTDOWN);
}

static void accept_and_flood(struct stream_listener *l, struct stream *s, void *arg)
{
	struct tcp_test *t = arg;

	on_accept(l, s, arg);
	assert_non_null(t->cli.s);
	flood(t->cli.s);
}

static void dial_start(struct stream *s, int status, const struct shoal_err *err, void *arg)
{
	struct tcp_test *t = arg;

	(void)err;
	assert_int_equal(status, 0);
	t->cli.s = s;
	stream_start(s, side_message, side_closed, &t->cli);
}

static void tcp_peer_that_does_not_read_is_cut_off(void **state)
{
	struct shoal_err err;
	struct tcp_test t;

	(void)state;
	tcp_test_init(&t, NULL);
	assert_int_equal(
	    stream_listen(&t.l, &loop, "127.0.0.1:0", &manager.sid, accept_and_flood, &t, &err), 0);
	snprintf(t.addr, sizeof(t.addr), "127.0.0.1:%u", stream_listener_port(t.l));
	t.srv_never_starts = true;
	assert_int_equal(stream_dial(&loop, t.addr, STREAM_RPC, &worker.sid, dial_start, &t, &err),
			 0);
	run_loop();
	assert_int_equal(t.accepted, 1);
	assert_true(t.cli.closed);
	assert_int_equal(t.cli.closed_code, SHOAL_ETOOBIG);
	assert_true(strstr(t.cli.closed_msg, "stream with 127.0.0.1:") == t.cli.closed_msg);
	assert_non_null(strstr(t.cli.closed_msg, "the peer does not read: more than 256 MiB"));
	assert_true(t.listener_closed);
	tcp_test_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mutual_handshake_authenticates_both_sides),
	    cmocka_unit_test(messages_flow_both_ways),
	    cmocka_unit_test(bytes_fed_one_at_a_time),
	    cmocka_unit_test(joiner_with_the_pinned_fingerprint_joins),
	    cmocka_unit_test(joiner_with_a_wrong_fingerprint_fails),
	    cmocka_unit_test(joiner_may_only_ask_to_join),
	    cmocka_unit_test(identities_are_checked_before_dialing),
	    cmocka_unit_test(certificates_of_another_root_are_refused),
	    cmocka_unit_test(expired_and_future_certificates_are_refused),
	    cmocka_unit_test(signing_key_must_match_the_certificate),
	    cmocka_unit_test(tampered_handshake_messages_fail),
	    cmocka_unit_test(tampered_frames_fail),
	    cmocka_unit_test(replayed_frames_fail),
	    cmocka_unit_test(reordered_and_dropped_frames_fail),
	    cmocka_unit_test(truncated_frames_fail),
	    cmocka_unit_test(final_frame_ends_the_session),
	    cmocka_unit_test(write_failures_break_the_session),
	    cmocka_unit_test(oversized_lengths_are_refused_before_allocation),
	    cmocka_unit_test(malformed_hellos_are_refused),
	    cmocka_unit_test(the_wire_shows_no_plaintext),
#define TCP_TEST(f) cmocka_unit_test_setup_teardown(f, loop_setup, loop_teardown)
	    TCP_TEST(tcp_dial_listen_and_exchange),
	    TCP_TEST(tcp_dial_outlives_the_identity),
	    TCP_TEST(tcp_joiner_joins_and_the_listener_side_closes),
	    TCP_TEST(tcp_refused_certificate_is_counted_and_explained),
	    TCP_TEST(tcp_messages_wait_until_the_stream_is_started),
	    TCP_TEST(tcp_handshake_times_out),
	    TCP_TEST(tcp_connection_refused),
	    TCP_TEST(tcp_bad_arguments_fail_at_once),
	    TCP_TEST(tcp_listener_close_ends_pending_handshakes),
	    TCP_TEST(tcp_peer_that_does_not_read_is_cut_off),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
