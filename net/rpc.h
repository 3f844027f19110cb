/* Request/response RPC over secure streams (net/stream.h): the join, the
 * forwarding of proposals to the Raft leader, certificate renewal and worker
 * heartbeats all ride it. Knows no methods: node/ registers them.
 *
 * Messages (each one stream message, a msgpack array):
 *   REQUEST  [1, version, id, method, timeout_ms, body (bin)]
 *   RESPONSE [2, id, status, message, body (bin)]
 *   CANCEL   [3, id]
 * version is RPC_VERSION; id a non-zero u64 unique per connection and
 * direction; status 0 or a negative SHOAL_E* code; message the reason for a
 * non-zero status ("" otherwise, at most SHOAL_ERR_LEN - 1 bytes); method
 * 1..RPC_MAX_METHOD printable ASCII characters. A request of an unknown
 * method is answered SHOAL_ENOTFOUND "unknown method M"; one of another
 * version SHOAL_EPROTO "unsupported RPC version N". Anything else that does
 * not decode (wrong type, extra elements, a response to an id not asked, a
 * status that is not a SHOAL_E* code) closes the connection with SHOAL_EPROTO.
 *
 * Either end of a connection may call and serve; in shoal the dialer calls
 * and the listener serves. */
#ifndef SHOAL_NET_RPC_H
#define SHOAL_NET_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "net/stream.h"

#define RPC_VERSION    1
#define RPC_MAX_METHOD 64
/* The largest request or response body; the stream's own limit is larger. */
#define RPC_MAX_BODY (16u << 20)
/* Requests served at once on one connection; more are answered SHOAL_EBUSY. */
#define RPC_MAX_INFLIGHT 256
/* A served connection from an unauthenticated peer (a joiner: anyone who
 * completes the handshake without a certificate) is closed once it has had no
 * request in flight for this long. A joiner needs one call; connections that
 * make none must not pile up. */
#define RPC_JOINER_IDLE_MS 10000

/* --- message codec (socket-free; the fuzz target drives it) ------------- */

enum rpc_kind { RPC_REQUEST = 1, RPC_RESPONSE = 2, RPC_CANCEL = 3 };

struct rpc_message {
	enum rpc_kind kind;
	uint64_t version; /* REQUEST only */
	uint64_t id;
	char method[RPC_MAX_METHOD + 1]; /* REQUEST only */
	uint32_t timeout_ms;		 /* REQUEST only: how long the caller waits */
	int status;			 /* RESPONSE only */
	char message[SHOAL_ERR_LEN];	 /* RESPONSE only */
	const void *body;		 /* REQUEST/RESPONSE: points into the input */
	size_t body_len;
};

/* Decode one message from untrusted bytes. Returns 0, or SHOAL_EPROTO with
 * the reason (any type or bound violated, trailing bytes). A REQUEST of
 * another version decodes (so it can be answered) with its version set. */
int rpc_decode(const void *data, size_t len, struct rpc_message *out, struct shoal_err *err);
/* Append the encoding of @m to @out. Returns 0, SHOAL_EINVAL (a field out of
 * bounds) or SHOAL_ENOMEM. */
int rpc_encode(const struct rpc_message *m, struct buf *out, struct shoal_err *err);

/* --- serving ------------------------------------------------------------ */

struct rpc_call; /* one request being served */

/* A method's handler: answer with rpc_reply() exactly once, now or later.
 * @body is valid during the call only. */
typedef void (*rpc_method_fn)(void *arg, struct rpc_call *call, const void *body, size_t len);

struct rpc_method {
	const char *name;
	rpc_method_fn fn;
};

/* Who asked (the stream's peer: purpose, certificate); valid until rpc_reply(). */
const struct stream_peer *rpc_call_peer(const struct rpc_call *call);
/* The peer's "IP:port". */
const char *rpc_call_remote(const struct rpc_call *call);
/* True once the caller cancelled, the caller's timeout passed or the
 * connection closed: the reply will be dropped; a handler may give up early
 * (it must still call rpc_reply()). */
bool rpc_call_abandoned(const struct rpc_call *call);
/* Answer: @status 0 with @body, or a negative SHOAL_E* code with @err's
 * message (@err may be NULL for status 0). Frees @call. Silently drops the
 * answer if the call was abandoned. */
void rpc_reply(struct rpc_call *call, int status, const struct shoal_err *err, const void *body,
	       size_t len);

/* Serve requests on @s (a stream handed out by a listener, not yet started;
 * ownership passes to the RPC layer): each request runs the method of
 * @methods (an array ending with a NULL name, which must outlive the
 * connection) of the same name with @arg. The connection closes when the peer
 * closes it or sends bad bytes, or, for an unauthenticated peer, after
 * RPC_JOINER_IDLE_MS without a request in flight; calls in flight are then
 * abandoned. Returns 0 or SHOAL_ENOMEM (then @s is closed). */
int rpc_serve(struct stream *s, const struct rpc_method *methods, void *arg, struct shoal_err *err);

/* A set of served connections with one owner, who can close them all: no
 * handler runs after rpc_server_close() (requests still arriving are
 * dropped); calls in flight are abandoned but must still get their
 * rpc_reply(). */
struct rpc_server;
int rpc_server_new(struct rpc_server **out, void *arg, struct shoal_err *err);
/* How long a joiner's connection served from now on may stay idle (no
 * request in flight) before it is closed; 1 to 600000 ms, RPC_JOINER_IDLE_MS
 * until set (and always for rpc_serve()). Returns 0 or SHOAL_EINVAL. */
int rpc_server_set_joiner_idle(struct rpc_server *srv, unsigned ms, struct shoal_err *err);
/* As rpc_serve(), with the server's @arg; SHOAL_ESHUTDOWN once it is closing
 * (@s is closed then). */
int rpc_server_serve(struct rpc_server *srv, struct stream *s, const struct rpc_method *methods,
		     struct shoal_err *err);
/* Close every connection; the memory goes once their streams have closed. */
void rpc_server_close(struct rpc_server *srv);

/* --- calling ------------------------------------------------------------ */

/* A client of one peer address: dials lazily when a call is made, with
 * @purpose and @id; keeps the connection open for later calls; when it
 * breaks, the next call dials again, no sooner than a backoff (100 ms after
 * the first failure, doubling to 5 s, reset by a successful handshake) after
 * the last failed dial. Calls wait for the connection within their own
 * timeout. */
struct rpc_client;

int rpc_client_new(struct rpc_client **out, uv_loop_t *loop, const char *addr,
		   enum stream_purpose purpose, const struct stream_identity *id,
		   struct shoal_err *err);
/* The address given to rpc_client_new(). */
const char *rpc_client_addr(const struct rpc_client *c);

/* The result of a call, exactly once, from the loop (never from inside
 * rpc_client_call()). @status 0 with the response's body (valid during the
 * callback), or: the handler's status and message; SHOAL_ETIMEDOUT (no
 * answer within the timeout: "no answer from ADDR within N ms"); SHOAL_EUNAVAIL
 * (could not connect, or the connection broke while the call was in flight:
 * the request may or may not have been served); SHOAL_ESHUTDOWN "cancelled"
 * after rpc_client_cancel(), and SHOAL_ESHUTDOWN when the client closes. */
typedef void (*rpc_result_cb)(void *arg, int status, const struct shoal_err *err, const void *body,
			      size_t len);

/* Call @method with @body (copied) and wait at most @timeout_ms (1 to
 * 600000) for the answer. Returns the call's id (non-zero) through @id if not
 * NULL, for rpc_client_cancel(). Returns 0, SHOAL_EINVAL (bad method,
 * timeout, or a body over RPC_MAX_BODY), SHOAL_ENOMEM or SHOAL_ESHUTDOWN (the
 * client is closing); @cb never fires then. */
int rpc_client_call(struct rpc_client *c, const char *method, const void *body, size_t len,
		    unsigned timeout_ms, rpc_result_cb cb, void *arg, uint64_t *id,
		    struct shoal_err *err);
/* Cancel call @id: its callback fires (from the loop) with SHOAL_ESHUTDOWN
 * "cancelled", and the server is told (CANCEL) if the request went out. An
 * id that finished already is ignored. */
void rpc_client_cancel(struct rpc_client *c, uint64_t id);
/* Fail every pending call with SHOAL_ESHUTDOWN, close the connection, free
 * everything, then call @cb (may be NULL) from the loop. May be called from a
 * result callback. */
void rpc_client_close(struct rpc_client *c, void (*cb)(void *arg), void *arg);

#endif
