/* The secure stream protocol without sockets: handshake state machine,
 * session keys and encrypted framing (the protocol is in net/stream.h). */
#include "net/stream.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "net/wire.h"

#define LEN_BYTES    4
#define HEADER_BYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ABYTES	     crypto_secretstream_xchacha20poly1305_ABYTES
#define EPH_BYTES    crypto_kx_PUBLICKEYBYTES
#define HASH_BYTES   crypto_generichash_BYTES
#define SIG_BYTES    crypto_sign_BYTES
/* A receive buffer up to this size is kept for the next frame. */
#define RX_KEEP (64u * 1024)
/* At most this much of a failure's reason goes into the final frame. */
#define REASON_MAX 256

#define TRANSCRIPT_LABEL "shoal stream v1"
#define LISTENER_CONTEXT "shoal stream v1 listener"
#define DIALER_CONTEXT	 "shoal stream v1 dialer"

enum msg_type {
	MSG_DIALER_HELLO = 1,
	MSG_LISTENER_HELLO = 2,
	MSG_LISTENER_CERT = 3,
	MSG_LISTENER_VERIFY = 4,
	MSG_DIALER_CERT = 5,
	MSG_DIALER_VERIFY = 6,
};

/* What the session expects next from the peer. A dialer walks
 * HELLO -> HEADER -> CERT -> VERIFY -> OPEN; a listener the same, except that
 * a joiner's CERT (no certificate) leads straight to OPEN. */
enum state {
	S_HELLO,  /* the peer's HELLO, in clear */
	S_HEADER, /* the peer's secretstream header */
	S_CERT,	  /* the peer's CERT, encrypted */
	S_VERIFY, /* the peer's VERIFY, encrypted */
	S_OPEN,	  /* application messages */
	S_FAILED, /* terminal: no more callbacks or sends */
	S_COUNT,
};

struct stream_session {
	crypto_generichash_state transcript; /* 64-byte aligned: the struct is too */
	crypto_secretstream_xchacha20poly1305_state tx;
	crypto_secretstream_xchacha20poly1305_state rx;
	enum state state;
	bool dialer;
	bool has_keys;		     /* rx_key/tx_key derived */
	bool tx_started;	     /* our secretstream header is written */
	bool tx_ended;		     /* our final frame is written */
	bool write_failed;	     /* the transport refused bytes: the stream is broken */
	bool established;	     /* the handshake finished; peer is valid */
	enum stream_purpose purpose; /* the dialer's */
	const struct identity *key;
	struct cert cert; /* ours, if has_cert */
	bool has_cert;
	unsigned char root_pk[IDENTITY_PK_LEN];
	char pinned[FINGERPRINT_LEN + 1]; /* joiner: the root fingerprint from the token */
	int64_t now_ns;
	struct stream_session_ops ops;
	unsigned char eph_pk[EPH_BYTES];
	unsigned char eph_sk[crypto_kx_SECRETKEYBYTES];
	unsigned char rx_key[crypto_kx_SESSIONKEYBYTES];
	unsigned char tx_key[crypto_kx_SESSIONKEYBYTES];
	struct stream_peer peer;
	/* Receiving: the length prefix, then the frame it announced. */
	unsigned char len_buf[LEN_BYTES];
	size_t len_have;
	unsigned char *frame;
	size_t frame_len;
	size_t frame_have;
	size_t frame_cap;
};

static void set_state(struct stream_session *s, enum state to)
{
	static const bool allowed[S_COUNT][S_COUNT] = {
	    [S_HELLO] = {[S_HEADER] = true, [S_FAILED] = true},
	    [S_HEADER] = {[S_CERT] = true, [S_FAILED] = true},
	    [S_CERT] = {[S_VERIFY] = true, [S_OPEN] = true, [S_FAILED] = true},
	    [S_VERIFY] = {[S_OPEN] = true, [S_FAILED] = true},
	    [S_OPEN] = {[S_FAILED] = true},
	};

	PRE(allowed[s->state][to]);
	(void)allowed;
	s->state = to;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *purpose_name(uint64_t purpose)
{
	switch (purpose) {
	case STREAM_RPC:
		return "RPC";
	case STREAM_RAFT:
		return "Raft";
	case STREAM_JOIN:
		return "joining";
	default:
		return "an unknown purpose";
	}
}

static bool purpose_valid(uint64_t purpose)
{
	return purpose == STREAM_RPC || purpose == STREAM_RAFT || purpose == STREAM_JOIN;
}

int stream_identity_check(const struct stream_identity *id, bool dialer,
			  enum stream_purpose purpose, struct shoal_err *err)
{
	const char *pin = id->pinned_root_fingerprint;

	PRE(id->key != NULL);
	if (dialer && !purpose_valid((uint64_t)purpose))
		return shoal_errf(err, SHOAL_EINVAL, "unknown stream purpose %d", (int)purpose);
	if (id->cert == NULL) {
		if (!dialer)
			return shoal_errf(err, SHOAL_EINVAL,
					  "this node has no certificate: it accepts streams only "
					  "once it has joined a swarm");
		if (purpose != STREAM_JOIN)
			return shoal_errf(err, SHOAL_EINVAL,
					  "this node has no certificate: it can dial only to join "
					  "a swarm, not for %s",
					  purpose_name((uint64_t)purpose));
		if (pin == NULL || strlen(pin) != FINGERPRINT_LEN)
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "joining needs the root key fingerprint of the join token");
		return 0;
	}
	if (memcmp(id->cert->node_pk, id->key->pk, IDENTITY_PK_LEN) != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "the certificate of node %s is for another identity key: this "
				  "node needs a new certificate",
				  id->cert->node_id);
	if (memcmp(id->cert->root_pk, id->root_pk, IDENTITY_PK_LEN) != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "the certificate of node %s was issued by another cluster's root "
				  "key",
				  id->cert->node_id);
	return 0;
}

/* --- transcript ------------------------------------------------------------ */

static void absorb(struct stream_session *s, const void *msg, size_t len)
{
	unsigned char n[LEN_BYTES];

	put_be32(n, (uint32_t)len);
	crypto_generichash_update(&s->transcript, n, sizeof(n));
	crypto_generichash_update(&s->transcript, msg, len);
}

/* @context followed by the transcript hash so far: what a VERIFY signs. */
static size_t to_sign(const struct stream_session *s, const char *context,
		      unsigned char out[sizeof(LISTENER_CONTEXT) + HASH_BYTES])
{
	crypto_generichash_state copy = s->transcript;
	size_t n = strlen(context);

	PRE(n < sizeof(LISTENER_CONTEXT));
	memcpy(out, context, n);
	crypto_generichash_final(&copy, out + n, HASH_BYTES);
	return n + HASH_BYTES;
}

static void wipe(struct stream_session *s)
{
	sodium_memzero(&s->transcript, sizeof(s->transcript));
	sodium_memzero(&s->tx, sizeof(s->tx));
	sodium_memzero(&s->rx, sizeof(s->rx));
	sodium_memzero(s->eph_sk, sizeof(s->eph_sk));
	sodium_memzero(s->rx_key, sizeof(s->rx_key));
	sodium_memzero(s->tx_key, sizeof(s->tx_key));
}

/* --- writing --------------------------------------------------------------- */

static int do_write(struct stream_session *s, const void *data, size_t len, struct shoal_err *err)
{
	int rv = s->ops.write(s->ops.arg, data, len);

	if (rv == 0)
		return 0;
	s->write_failed = true;
	return shoal_errf(err, rv, "the connection failed while writing to the peer");
}

/* Encrypt @m into one frame with @tag and write it. */
static int seal(struct stream_session *s, unsigned char tag, const void *m, size_t len,
		struct shoal_err *err)
{
	size_t clen = len + ABYTES;
	unsigned char *f;
	int rv;

	PRE(s->tx_started && !s->tx_ended);
	PRE(len <= STREAM_MAX_MESSAGE);
	f = malloc(LEN_BYTES + clen);
	if (f == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	put_be32(f, (uint32_t)clen);
	crypto_secretstream_xchacha20poly1305_push(
	    &s->tx, f + LEN_BYTES, NULL, len > 0 ? m : (const void *)"", len, NULL, 0, tag);
	rv = do_write(s, f, LEN_BYTES + clen, err);
	free(f);
	return rv;
}

/* Our secretstream header, the first encrypted frame of our direction. */
static int start_tx(struct stream_session *s, struct shoal_err *err)
{
	unsigned char f[LEN_BYTES + HEADER_BYTES];

	PRE(s->has_keys && !s->tx_started);
	put_be32(f, HEADER_BYTES);
	crypto_secretstream_xchacha20poly1305_init_push(&s->tx, f + LEN_BYTES, s->tx_key);
	s->tx_started = true;
	return do_write(s, f, sizeof(f), err);
}

static int buf_write(void *arg, const char *p, size_t n)
{
	return buf_append(arg, p, n) == 0 ? 0 : -1;
}

/* Our HELLO: [type, version, ephemeral key], in clear. */
static int write_hello(struct stream_session *s, enum msg_type type, struct shoal_err *err)
{
	struct buf b;
	msgpack_packer pk;
	int rv;

	buf_init(&b);
	msgpack_packer_init(&pk, &b, buf_write);
	if (buf_append(&b, "\0\0\0\0", LEN_BYTES) != 0 || msgpack_pack_array(&pk, 3) != 0 ||
	    msgpack_pack_uint8(&pk, (uint8_t)type) != 0 ||
	    msgpack_pack_uint8(&pk, STREAM_PROTOCOL_VERSION) != 0 ||
	    msgpack_pack_bin(&pk, EPH_BYTES) != 0 ||
	    msgpack_pack_bin_body(&pk, s->eph_pk, EPH_BYTES) != 0) {
		buf_free(&b);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	put_be32((unsigned char *)b.data, (uint32_t)(b.len - LEN_BYTES));
	absorb(s, b.data + LEN_BYTES, b.len - LEN_BYTES);
	rv = do_write(s, b.data, b.len, err);
	buf_free(&b);
	return rv;
}

/* Absorb and send one encrypted handshake message held in @b (freed). */
static int send_handshake(struct stream_session *s, struct buf *b, bool packed,
			  struct shoal_err *err)
{
	int rv;

	if (!packed) {
		buf_free(b);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	absorb(s, b->data, b->len);
	rv = seal(s, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, b->data, b->len, err);
	buf_free(b);
	return rv;
}

/* Our CERT: the listener's [3, cert], the dialer's [5, purpose, cert or nil]. */
static int send_cert(struct stream_session *s, struct shoal_err *err)
{
	struct buf b, c;
	msgpack_packer pk;
	bool ok;

	buf_init(&b);
	buf_init(&c);
	msgpack_packer_init(&pk, &b, buf_write);
	ok = !s->has_cert || cert_encode(&s->cert, &c) == 0;
	if (s->dialer)
		ok = ok && msgpack_pack_array(&pk, 3) == 0 &&
		     msgpack_pack_uint8(&pk, MSG_DIALER_CERT) == 0 &&
		     msgpack_pack_uint8(&pk, (uint8_t)s->purpose) == 0;
	else
		ok = ok && msgpack_pack_array(&pk, 2) == 0 &&
		     msgpack_pack_uint8(&pk, MSG_LISTENER_CERT) == 0;
	if (s->has_cert)
		ok = ok && msgpack_pack_bin(&pk, c.len) == 0 &&
		     msgpack_pack_bin_body(&pk, c.data, c.len) == 0;
	else
		ok = ok && msgpack_pack_nil(&pk) == 0;
	buf_free(&c);
	return send_handshake(s, &b, ok, err);
}

/* Our VERIFY: [type, signature over the transcript through our CERT]. */
static int send_verify(struct stream_session *s, struct shoal_err *err)
{
	unsigned char m[sizeof(LISTENER_CONTEXT) + HASH_BYTES], sig[SIG_BYTES];
	size_t n = to_sign(s, s->dialer ? DIALER_CONTEXT : LISTENER_CONTEXT, m);
	enum msg_type type = s->dialer ? MSG_DIALER_VERIFY : MSG_LISTENER_VERIFY;
	struct buf b;
	msgpack_packer pk;
	bool ok;

	crypto_sign_detached(sig, NULL, m, n, s->key->sk);
	buf_init(&b);
	msgpack_packer_init(&pk, &b, buf_write);
	ok = msgpack_pack_array(&pk, 2) == 0 && msgpack_pack_uint8(&pk, (uint8_t)type) == 0 &&
	     msgpack_pack_bin(&pk, SIG_BYTES) == 0 &&
	     msgpack_pack_bin_body(&pk, sig, SIG_BYTES) == 0;
	return send_handshake(s, &b, ok, err);
}

/* --- failing ----------------------------------------------------------------- */

/* Fail the session: tell the peer why if it can read us, then the owner. */
static void fail(struct stream_session *s, int code, const struct shoal_err *err)
{
	size_t n;

	if (s->state == S_FAILED)
		return;
	set_state(s, S_FAILED);
	/* Not after the peer's own final frame, nor on a broken transport. */
	if (s->has_keys && !s->tx_ended && !s->write_failed && code != SHOAL_ESHUTDOWN &&
	    (s->tx_started || start_tx(s, NULL) == 0)) {
		n = strnlen(err->msg, REASON_MAX);
		seal(s, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err->msg, n, NULL);
		s->tx_ended = true;
	}
	wipe(s);
	s->ops.failed(s->ops.arg, code, err);
}

/* The peer's final frame: its reason, made printable. */
static int peer_ended(const unsigned char *reason, size_t len, struct shoal_err *err)
{
	char text[REASON_MAX + 1];
	size_t n = len < REASON_MAX ? len : REASON_MAX;

	if (n == 0)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the peer ended the stream");
	for (size_t i = 0; i < n; i++)
		text[i] = reason[i] >= 0x20 && reason[i] < 0x7f ? (char)reason[i] : '?';
	text[n] = '\0';
	return shoal_errf(err, SHOAL_ESHUTDOWN, "the peer ended the stream: %s", text);
}

/* --- reading handshake messages (net/wire.h) --------------------------------- */

static int malformed(const char *what, struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_EPROTO, "malformed %s message from the peer", what);
}

/* Read a message's array header and type; @fields gets the array's length. */
static bool rd_head(struct wire_reader *r, enum msg_type want, uint64_t *fields)
{
	uint64_t type;

	return wire_rd_array(r, fields) && wire_rd_uint(r, &type) && type == (uint64_t)want;
}

/* --- the handshake ----------------------------------------------------------- */

static void establish(struct stream_session *s)
{
	set_state(s, S_OPEN);
	s->established = true;
	s->ops.established(s->ops.arg);
}

/* Either HELLO: [type, version, ephemeral key]. Derives the session keys. */
static int on_hello(struct stream_session *s, const unsigned char *msg, size_t len,
		    struct shoal_err *err)
{
	struct wire_reader r;
	const unsigned char *eph;
	uint64_t fields, version;
	size_t n;
	int rv;

	wire_rd_init(&r, msg, len);
	if (!rd_head(&r, s->dialer ? MSG_LISTENER_HELLO : MSG_DIALER_HELLO, &fields) ||
	    !wire_rd_uint(&r, &version))
		return malformed("HELLO", err);
	if (version != STREAM_PROTOCOL_VERSION)
		return shoal_errf(err, SHOAL_EPROTO,
				  "the peer speaks stream protocol version %llu and this node "
				  "speaks %d: run the same shoal release on both",
				  (unsigned long long)version, STREAM_PROTOCOL_VERSION);
	if (fields != 3 || !wire_rd_bin(&r, EPH_BYTES, &eph, &n) || n != EPH_BYTES ||
	    !wire_rd_done(&r))
		return malformed("HELLO", err);
	absorb(s, msg, len);
	if (s->dialer)
		rv = crypto_kx_client_session_keys(s->rx_key, s->tx_key, s->eph_pk, s->eph_sk, eph);
	else
		rv = crypto_kx_server_session_keys(s->rx_key, s->tx_key, s->eph_pk, s->eph_sk, eph);
	sodium_memzero(s->eph_sk, sizeof(s->eph_sk));
	if (rv != 0)
		return shoal_errf(err, SHOAL_EPROTO, "the peer's ephemeral key is invalid");
	s->has_keys = true;
	if (!s->dialer) {
		/* Our whole flight: HELLO, header, CERT, VERIFY. */
		rv = write_hello(s, MSG_LISTENER_HELLO, err);
		if (rv == 0)
			rv = start_tx(s, err);
		if (rv == 0)
			rv = send_cert(s, err);
		if (rv == 0)
			rv = send_verify(s, err);
		if (rv != 0)
			return rv;
	}
	set_state(s, S_HEADER);
	return 0;
}

static int on_header(struct stream_session *s, struct shoal_err *err)
{
	if (crypto_secretstream_xchacha20poly1305_init_pull(&s->rx, s->frame, s->rx_key) != 0)
		return shoal_errf(err, SHOAL_EPROTO, "the peer's stream header is invalid");
	set_state(s, S_CERT);
	return 0;
}

/* The listener's CERT: [3, cert]. Checked against our root key, or for a
 * joiner against the fingerprint of its join token. */
static int on_listener_cert(struct stream_session *s, const unsigned char *msg, size_t len,
			    struct shoal_err *err)
{
	struct wire_reader r;
	char fp[FINGERPRINT_LEN + 1];
	const unsigned char *c;
	uint64_t fields;
	size_t n;
	int rv;

	wire_rd_init(&r, msg, len);
	if (!rd_head(&r, MSG_LISTENER_CERT, &fields) || fields != 2 ||
	    !wire_rd_bin(&r, CERT_MAX_ENCODED, &c, &n) || !wire_rd_done(&r))
		return malformed("CERT", err);
	absorb(s, msg, len);
	rv = cert_decode(c, n, &s->peer.cert, err);
	if (rv != 0)
		return rv;
	if (!s->has_cert) {
		identity_fingerprint(s->peer.cert.root_pk, fp);
		if (strcmp(fp, s->pinned) != 0)
			return shoal_errf(err, SHOAL_EPROTO,
					  "the manager's root key fingerprint does not match the "
					  "join token");
		rv = cert_verify(&s->peer.cert, s->peer.cert.root_pk, s->now_ns, err);
	} else {
		rv = cert_verify(&s->peer.cert, s->root_pk, s->now_ns, err);
	}
	if (rv != 0)
		return rv;
	set_state(s, S_VERIFY);
	return 0;
}

/* Either VERIFY: [type, signature] by the key of the peer's certificate. */
static int check_verify(struct stream_session *s, const unsigned char *msg, size_t len,
			struct shoal_err *err)
{
	struct wire_reader r;
	unsigned char m[sizeof(LISTENER_CONTEXT) + HASH_BYTES];
	const unsigned char *sig;
	uint64_t fields;
	size_t n;

	wire_rd_init(&r, msg, len);
	if (!rd_head(&r, s->dialer ? MSG_LISTENER_VERIFY : MSG_DIALER_VERIFY, &fields) ||
	    fields != 2 || !wire_rd_bin(&r, SIG_BYTES, &sig, &n) || n != SIG_BYTES ||
	    !wire_rd_done(&r))
		return malformed("VERIFY", err);
	n = to_sign(s, s->dialer ? LISTENER_CONTEXT : DIALER_CONTEXT, m);
	if (crypto_sign_verify_detached(sig, m, n, s->peer.cert.node_pk) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "node %s did not prove that it holds the key its certificate "
				  "names",
				  s->peer.cert.node_id);
	absorb(s, msg, len);
	return 0;
}

/* The listener proved who it is: send our flight and open. */
static int on_listener_verify(struct stream_session *s, const unsigned char *msg, size_t len,
			      struct shoal_err *err)
{
	int rv = check_verify(s, msg, len, err);

	if (rv == 0)
		rv = start_tx(s, err);
	if (rv == 0)
		rv = send_cert(s, err);
	if (rv == 0 && s->has_cert)
		rv = send_verify(s, err);
	if (rv != 0)
		return rv;
	s->peer.authenticated = true;
	s->peer.purpose = s->purpose;
	establish(s);
	return 0;
}

/* The dialer's CERT: [5, purpose, cert or nil]. */
static int on_dialer_cert(struct stream_session *s, const unsigned char *msg, size_t len,
			  struct shoal_err *err)
{
	struct wire_reader r;
	const unsigned char *c = NULL;
	uint64_t fields, purpose;
	size_t n = 0;
	bool joiner;
	int rv;

	wire_rd_init(&r, msg, len);
	if (!rd_head(&r, MSG_DIALER_CERT, &fields) || fields != 3 || !wire_rd_uint(&r, &purpose))
		return malformed("CERT", err);
	joiner = wire_rd_nil(&r);
	if ((!joiner && !wire_rd_bin(&r, CERT_MAX_ENCODED, &c, &n)) || !wire_rd_done(&r))
		return malformed("CERT", err);
	absorb(s, msg, len);
	if (!purpose_valid(purpose))
		return shoal_errf(err, SHOAL_EPROTO, "the peer asked for unknown purpose %llu",
				  (unsigned long long)purpose);
	s->peer.purpose = (enum stream_purpose)purpose;
	if (joiner) {
		if (purpose != STREAM_JOIN)
			return shoal_errf(err, SHOAL_EPROTO,
					  "a node without a certificate asked for %s: it may "
					  "only join",
					  purpose_name(purpose));
		s->peer.authenticated = false;
		establish(s);
		return 0;
	}
	rv = cert_decode(c, n, &s->peer.cert, err);
	if (rv == 0)
		rv = cert_verify(&s->peer.cert, s->root_pk, s->now_ns, err);
	if (rv != 0)
		return rv;
	set_state(s, S_VERIFY);
	return 0;
}

static int on_dialer_verify(struct stream_session *s, const unsigned char *msg, size_t len,
			    struct shoal_err *err)
{
	int rv = check_verify(s, msg, len, err);

	if (rv != 0)
		return rv;
	s->peer.authenticated = true;
	establish(s);
	return 0;
}

/* --- receiving frames -------------------------------------------------------- */

/* Check a frame's announced length against what the state allows. */
static int check_len(const struct stream_session *s, uint32_t len, struct shoal_err *err)
{
	uint32_t min = ABYTES, max;

	switch (s->state) {
	case S_HELLO:
		min = 1;
		max = STREAM_MAX_HANDSHAKE;
		break;
	case S_HEADER:
		min = HEADER_BYTES;
		max = HEADER_BYTES;
		break;
	case S_CERT:
	case S_VERIFY:
		max = STREAM_MAX_HANDSHAKE + ABYTES;
		break;
	default:
		PRE(s->state == S_OPEN);
		max = STREAM_MAX_MESSAGE + ABYTES;
		break;
	}
	if (len > max)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "the peer announced a frame of %lu bytes, over the limit of %lu",
				  (unsigned long)len, (unsigned long)max);
	if (len < min)
		return shoal_errf(
		    err, SHOAL_EPROTO,
		    "the peer announced a frame of %lu bytes, under the minimum of %lu",
		    (unsigned long)len, (unsigned long)min);
	return 0;
}

/* Decrypt the frame into *@out (malloc'd, also for an empty message). */
static int open_frame(struct stream_session *s, unsigned char **out, size_t *out_len,
		      struct shoal_err *err)
{
	unsigned long long mlen = 0;
	unsigned char tag = 0;
	unsigned char *m = malloc(s->frame_len - ABYTES + 1);
	int rv;

	if (m == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (crypto_secretstream_xchacha20poly1305_pull(&s->rx, m, &mlen, &tag, s->frame,
						       s->frame_len, NULL, 0) != 0) {
		free(m);
		return shoal_errf(err, SHOAL_EPROTO,
				  "a frame from the peer failed authentication: the connection "
				  "is corrupted or tampered with");
	}
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
		*out = m;
		*out_len = (size_t)mlen;
		return 0;
	}
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
		rv = peer_ended(m, (size_t)mlen, err);
	else
		rv = shoal_errf(err, SHOAL_EPROTO, "the peer sent a frame with tag %u",
				(unsigned)tag);
	free(m);
	return rv;
}

static void process_frame(struct stream_session *s)
{
	struct shoal_err err;
	unsigned char *m = NULL;
	size_t n = 0;
	int rv;

	switch (s->state) {
	case S_HELLO:
		rv = on_hello(s, s->frame, s->frame_len, &err);
		break;
	case S_HEADER:
		rv = on_header(s, &err);
		break;
	default:
		rv = open_frame(s, &m, &n, &err);
		if (rv != 0)
			break;
		if (s->state == S_OPEN)
			s->ops.message(s->ops.arg, m, n);
		else if (s->state == S_CERT)
			rv = s->dialer ? on_listener_cert(s, m, n, &err)
				       : on_dialer_cert(s, m, n, &err);
		else
			rv = s->dialer ? on_listener_verify(s, m, n, &err)
				       : on_dialer_verify(s, m, n, &err);
		break;
	}
	if (m != NULL) {
		sodium_memzero(m, n);
		free(m);
	}
	if (rv != 0)
		fail(s, rv, &err);
}

/* Room for @need bytes of the current frame: grows with what arrived, so an
 * announced length costs nothing until its bytes come. */
static int rx_reserve(struct stream_session *s, size_t need)
{
	size_t cap = s->frame_cap > 0 ? s->frame_cap : 4096;
	unsigned char *p;

	if (need <= s->frame_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > s->frame_len)
		cap = s->frame_len;
	p = realloc(s->frame, cap);
	if (p == NULL)
		return SHOAL_ENOMEM;
	s->frame = p;
	s->frame_cap = cap;
	return 0;
}

void stream_session_feed(struct stream_session *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	struct shoal_err err;
	size_t n;
	int rv;

	while (len > 0 && s->state != S_FAILED) {
		if (s->len_have < LEN_BYTES) {
			n = LEN_BYTES - s->len_have < len ? LEN_BYTES - s->len_have : len;
			memcpy(s->len_buf + s->len_have, p, n);
			s->len_have += n;
			p += n;
			len -= n;
			if (s->len_have < LEN_BYTES)
				break;
			s->frame_len = get_be32(s->len_buf);
			s->frame_have = 0;
			rv = check_len(s, (uint32_t)s->frame_len, &err);
			if (rv != 0) {
				fail(s, rv, &err);
				break;
			}
			continue;
		}
		n = s->frame_len - s->frame_have < len ? s->frame_len - s->frame_have : len;
		if (rx_reserve(s, s->frame_have + n) != 0) {
			fail(s, shoal_errf(&err, SHOAL_ENOMEM, "out of memory"), &err);
			break;
		}
		memcpy(s->frame + s->frame_have, p, n);
		s->frame_have += n;
		p += n;
		len -= n;
		if (s->frame_have < s->frame_len)
			break;
		s->len_have = 0;
		process_frame(s);
		if (s->frame_cap > RX_KEEP) {
			free(s->frame);
			s->frame = NULL;
			s->frame_cap = 0;
		}
	}
}

/* --- the API ----------------------------------------------------------------- */

int stream_session_new(struct stream_session **out, bool dialer, enum stream_purpose purpose,
		       const struct stream_identity *id, int64_t now_ns,
		       const struct stream_session_ops *ops, struct shoal_err *err)
{
	struct stream_session *s;
	int rv;

	rv = stream_identity_check(id, dialer, purpose, err);
	if (rv != 0)
		return rv;
	s = aligned_alloc(alignof(struct stream_session), sizeof(*s));
	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	memset(s, 0, sizeof(*s));
	s->state = S_HELLO;
	s->dialer = dialer;
	s->purpose = dialer ? purpose : 0;
	s->key = id->key;
	s->ops = *ops;
	s->now_ns = now_ns;
	if (id->cert != NULL) {
		s->cert = *id->cert;
		s->has_cert = true;
		memcpy(s->root_pk, id->root_pk, IDENTITY_PK_LEN);
	} else {
		memcpy(s->pinned, id->pinned_root_fingerprint, FINGERPRINT_LEN + 1);
	}
	crypto_kx_keypair(s->eph_pk, s->eph_sk);
	crypto_generichash_init(&s->transcript, NULL, 0, HASH_BYTES);
	crypto_generichash_update(&s->transcript, (const unsigned char *)TRANSCRIPT_LABEL,
				  sizeof(TRANSCRIPT_LABEL) - 1);
	if (dialer) {
		rv = write_hello(s, MSG_DIALER_HELLO, err);
		if (rv != 0) {
			stream_session_free(s);
			return rv;
		}
	}
	*out = s;
	return 0;
}

int stream_session_send(struct stream_session *s, const void *data, size_t len,
			struct shoal_err *err)
{
	int rv;

	if (len > STREAM_MAX_MESSAGE)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "a message of %zu bytes exceeds the limit of %u bytes", len,
				  STREAM_MAX_MESSAGE);
	if (s->state != S_OPEN || s->tx_ended)
		return shoal_errf(err, SHOAL_ESTATE, "the stream is not open");
	rv = seal(s, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, data, len, err);
	if (rv != 0 && s->write_failed) {
		set_state(s, S_FAILED);
		wipe(s);
	}
	return rv;
}

int stream_session_end(struct stream_session *s, struct shoal_err *err)
{
	int rv;

	if (s->state != S_OPEN || s->tx_ended)
		return shoal_errf(err, SHOAL_ESTATE, "the stream is not open");
	rv = seal(s, crypto_secretstream_xchacha20poly1305_TAG_FINAL, "", 0, err);
	if (rv == 0) {
		s->tx_ended = true;
	} else if (s->write_failed) {
		set_state(s, S_FAILED);
		wipe(s);
	}
	return rv;
}

const struct stream_peer *stream_session_peer(const struct stream_session *s)
{
	return s->established ? &s->peer : NULL;
}

void stream_session_free(struct stream_session *s)
{
	if (s == NULL)
		return;
	wipe(s);
	free(s->frame);
	free(s);
}
