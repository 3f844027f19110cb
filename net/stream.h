/* Secure streams: mutually authenticated, encrypted, framed message channels
 * over TCP (DESIGN §4). Everything cluster-internal that uses TCP rides them:
 * RPC, Raft (raft/transport.c), push-pull gossip, joins.
 *
 * Frames on the wire: [u32 big-endian length][payload]. Every length is
 * checked against what the session expects next before anything is allocated.
 *
 * Handshake (one round trip and a half; every message a msgpack array whose
 * first element is its type):
 *   dialer   -> HELLO  [1, version, ephemeral X25519 key]           in clear
 *   listener -> HELLO  [2, version, ephemeral X25519 key]           in clear
 *   listener -> its secretstream header, then encrypted:
 *               CERT   [3, certificate]
 *               VERIFY [4, signature]
 *   dialer   -> its secretstream header, then encrypted:
 *               CERT   [5, purpose, certificate or nil]
 *               VERIFY [6, signature]               (only with a certificate)
 * After the HELLOs both sides derive session keys with crypto_kx (dialer as
 * client, listener as server); each direction then runs
 * crypto_secretstream_xchacha20poly1305 under its key, its 24-byte header as
 * the direction's first encrypted frame. Certificates, purpose and every later
 * message travel encrypted: a capture shows two ephemeral keys and ciphertext.
 *
 * Transcript: BLAKE2b-256 (crypto_generichash) over "shoal stream v1", then
 * for each handshake message in order (both HELLOs, the listener's CERT and
 * VERIFY, the dialer's CERT) its u32 big-endian length and its msgpack bytes
 * (the plaintext for encrypted ones). Each VERIFY is an Ed25519 signature by
 * the sender's identity key over "shoal stream v1 listener" or "... dialer"
 * followed by the transcript hash up to and including the sender's CERT. The
 * receiver checks it with the node key of the sender's certificate, and that
 * certificate against the cluster root key and the clock. A joiner (a dialer
 * without certificate) instead checks that the root key named in the
 * listener's certificate has the fingerprint pinned from its join token; it
 * stays unauthenticated and may only ask for STREAM_JOIN.
 *
 * A session that fails after the key exchange tells the peer why in a final
 * frame (secretstream TAG_FINAL carrying the reason); the peer's session then
 * fails with SHOAL_ESHUTDOWN and "the peer ended the stream: <reason>". A
 * dialer whose certificate the listener refuses thus learns why, though its
 * own handshake had already completed.
 *
 * The protocol lives in a socket-free core (struct stream_session) so unit
 * tests and the fuzz target drive it with byte buffers; stream.c puts it on
 * libuv TCP handles. */
#ifndef SHOAL_NET_STREAM_H
#define SHOAL_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "net/cert.h"
#include "net/identity.h"

#define STREAM_PROTOCOL_VERSION 1
/* The largest message stream_send() takes (Raft snapshots are the big ones). */
#define STREAM_MAX_MESSAGE (64u << 20)
/* The largest handshake message accepted (plaintext msgpack bytes). */
#define STREAM_MAX_HANDSHAKE 4096
/* Bytes queued for a peer that does not read before its stream is cut off. */
#define STREAM_MAX_QUEUED ((size_t)256 << 20)

/* What a connection is for; the dialer says so in its CERT. */
enum stream_purpose { STREAM_RPC = 1, STREAM_RAFT = 2, STREAM_JOIN = 3 };

/* Who this node is, for handshakes. Owned by the caller; must outlive every
 * stream and listener made with it. The caller may replace @cert (renewal)
 * between handshakes: each handshake copies it when it starts. */
struct stream_identity {
	const struct identity *key; /* this node's identity key */
	const struct cert *cert;    /* NULL: a joiner, which can only dial STREAM_JOIN */
	unsigned char root_pk[IDENTITY_PK_LEN]; /* the cluster root key (ignored if cert NULL) */
	const char *pinned_root_fingerprint;	/* joiner only: from the join token */
	/* 0 for the default: 5000 ms to connect and finish the handshake. */
	unsigned handshake_timeout_ms;
};

/* Check that @id can dial for @purpose (@dialer) or accept streams
 * (!@dialer, @purpose ignored): a node without certificate may only dial
 * STREAM_JOIN and needs the pinned fingerprint; a node with one must hold the
 * key its certificate names and the root key that issued it. Returns 0 or
 * SHOAL_EINVAL with the reason. */
int stream_identity_check(const struct stream_identity *id, bool dialer,
			  enum stream_purpose purpose, struct shoal_err *err);

/* --- socket-free core -------------------------------------------------- */

struct stream_session;

/* What the core asks of its transport, and tells its owner. The callbacks
 * are called from inside stream_session_feed() only (write() also from
 * stream_session_new(), _send() and _end()). They may send, but must not
 * feed or free the session. */
struct stream_session_ops {
	void *arg;
	/* Queue bytes for the peer (copied). Non-zero: the transport failed. */
	int (*write)(void *arg, const void *data, size_t len);
	/* The handshake finished; stream_session_peer() tells who is there. */
	void (*established)(void *arg);
	/* One complete decrypted message; @data is valid during the call only. */
	void (*message)(void *arg, const void *data, size_t len);
	/* The session failed (bad handshake, bad frame, bad MAC, the peer's
	 * final frame, a failed write): no further callbacks. @err says why, for
	 * the log; @code is SHOAL_ESHUTDOWN for the peer's final frame,
	 * SHOAL_ETOOBIG for an oversized length, the transport's code for a
	 * failed write, SHOAL_ENOMEM, or SHOAL_EPROTO. */
	void (*failed)(void *arg, int code, const struct shoal_err *err);
};

/* Create a session; @dialer says which side of the handshake this is.
 * @purpose is the dialer's (ignored for a listener, which learns the
 * dialer's). The dialer's HELLO is written at once. @now_ns is used to check
 * certificates. Returns 0, SHOAL_EINVAL (see stream_identity_check()),
 * SHOAL_ENOMEM or the transport's failure; free with stream_session_free(). */
int stream_session_new(struct stream_session **out, bool dialer, enum stream_purpose purpose,
		       const struct stream_identity *id, int64_t now_ns,
		       const struct stream_session_ops *ops, struct shoal_err *err);

/* Feed bytes received from the peer. Bytes after a failure are ignored. */
void stream_session_feed(struct stream_session *s, const void *data, size_t len);

/* Encrypt and write one message; only once established. Returns 0,
 * SHOAL_ETOOBIG (over STREAM_MAX_MESSAGE), SHOAL_ESTATE (not established,
 * failed or ended), SHOAL_ENOMEM, or the transport's failure, after which the
 * session is failed (without a failed callback: the caller knows). */
int stream_session_send(struct stream_session *s, const void *data, size_t len,
			struct shoal_err *err);

/* Write the final frame: the peer's session fails with SHOAL_ESHUTDOWN ("the
 * peer ended the stream"). No message can be sent after it; messages from the
 * peer are still delivered. Returns as stream_session_send(). */
int stream_session_end(struct stream_session *s, struct shoal_err *err);

struct stream_peer {
	bool authenticated; /* false only for a joiner on the listener's side */
	struct cert cert;   /* valid if authenticated */
	enum stream_purpose purpose;
};

/* Who is on the other side: NULL until established, then valid until the
 * session is freed (also after it failed). */
const struct stream_peer *stream_session_peer(const struct stream_session *s);

/* Release the session (accepts NULL); its keys are wiped. */
void stream_session_free(struct stream_session *s);

/* --- on libuv TCP ------------------------------------------------------- */

struct stream;

typedef void (*stream_message_cb)(struct stream *s, const void *data, size_t len, void *arg);
/* The stream is closed and its memory freed after this returns. @code is 0
 * after stream_close(); otherwise why it closed: SHOAL_ESHUTDOWN when the
 * peer closed it (its final frame or end of file), SHOAL_ETOOBIG when the
 * peer stopped reading (STREAM_MAX_QUEUED), SHOAL_EIO for a socket error,
 * SHOAL_EPROTO for bad bytes. @err is NULL for code 0. */
typedef void (*stream_closed_cb)(struct stream *s, int code, const struct shoal_err *err,
				 void *arg);

/* Set the handlers and start delivering messages (from the loop, never from
 * inside this call). A stream handed out (by stream_dial() or a listener)
 * must be started (once, before any stream_close()) or closed by its owner.
 * Until it is started nothing is read and it does not close on its own: a
 * failure meanwhile (of stream_send(), say) is reported through @on_closed
 * once it is started. @on_closed fires exactly once for a started stream. */
void stream_start(struct stream *s, stream_message_cb on_message, stream_closed_cb on_closed,
		  void *arg);
/* Queue one message (copied). Returns 0 or a code with the reason in @err;
 * after a failure the stream closes. Allowed before stream_start(). */
int stream_send(struct stream *s, const void *data, size_t len, struct shoal_err *err);
/* Who is on the other side; valid until the closed callback returns. */
const struct stream_peer *stream_peer(const struct stream *s);
/* "IP:port" of the peer's end of the TCP connection. */
const char *stream_remote_addr(const struct stream *s);
/* The loop the stream runs on. */
uv_loop_t *stream_loop(const struct stream *s);
/* Close: send the final frame, let queued bytes out (for at most the
 * handshake timeout), then close the socket. The closed callback (if
 * started) fires once, from the loop. Calling it again, or for a stream
 * already closing, does nothing. */
void stream_close(struct stream *s);

/* Dial @addr ("IP:port", IPv6 as "[IP]:port") and complete the handshake.
 * Returns 0, after which @cb fires exactly once from the loop, with the
 * stream (not yet started) or NULL and the reason; or SHOAL_EINVAL (bad
 * address, see stream_identity_check()), SHOAL_ENOMEM or SHOAL_EIO, after
 * which it never fires. The connection and handshake together time out
 * after the handshake timeout (SHOAL_ETIMEDOUT). */
typedef void (*stream_dial_cb)(struct stream *s, int status, const struct shoal_err *err,
			       void *arg);
int stream_dial(uv_loop_t *loop, const char *addr, enum stream_purpose purpose,
		const struct stream_identity *id, stream_dial_cb cb, void *arg,
		struct shoal_err *err);

/* Accept connections on @bind ("IP:port"; port 0 picks a free port, see
 * stream_listener_port()); each one that completes its handshake within the
 * handshake timeout is handed to @cb (not yet started). Failed handshakes are
 * closed and counted, never handed out. @id must hold a certificate. Returns
 * 0, SHOAL_EINVAL, SHOAL_ENOMEM or SHOAL_EIO (e.g. the address is in use);
 * after a failure, run the loop once more to release what was allocated. */
struct stream_listener;
typedef void (*stream_accept_cb)(struct stream_listener *l, struct stream *s, void *arg);
int stream_listen(struct stream_listener **out, uv_loop_t *loop, const char *bind,
		  const struct stream_identity *id, stream_accept_cb cb, void *arg,
		  struct shoal_err *err);
/* The TCP port the listener is bound to. */
unsigned stream_listener_port(const struct stream_listener *l);
/* How many handshakes failed or timed out so far; the last reason ("handshake
 * with IP:port: ...") is copied into @last if not NULL and there was one. */
unsigned stream_listener_failures(const struct stream_listener *l, struct shoal_err *last);
/* Call @cb (NULL: none) with @arg for each failure counted above, once the
 * failed connection is closed: @code as for stream_closed_cb, @why the
 * reason ("handshake with IP:port: ..."), valid during the call. It is not
 * called once stream_listener_close() was called. @cb may call anything but
 * stream_listener_close(). */
void stream_listener_on_failure(struct stream_listener *l,
				void (*cb)(void *arg, int code, const struct shoal_err *why),
				void *arg);
/* Stop listening and close streams still in handshake, then call @cb (may be
 * NULL) once their memory is freed. Streams already handed out stay open
 * (their owners close them). */
void stream_listener_close(struct stream_listener *l, void (*cb)(void *arg), void *arg);

#endif
