/* A raft_uv_transport whose connections are secure streams (net/stream.h):
 * authenticated with node certificates and encrypted, so no Raft message
 * crosses the network in clear text.
 *
 * raft_uv reads and writes its own protocol on a uv_stream_t. Each Raft
 * connection gets one end of a socketpair as that stream; a pump copies bytes
 * between the other end and the secure stream's messages. The dialer starts
 * its stream with a preamble (its Raft id and address), which is what raft's
 * own TCP transport sends too. */
#ifndef SHOAL_RAFT_TRANSPORT_H
#define SHOAL_RAFT_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "net/stream.h"

struct raft_uv_transport;

struct secure_transport_config {
	uv_loop_t *loop;
	const struct stream_identity *id; /* must outlive the transport */
	/* May the authenticated @peer speak Raft as server @raft_id? (Its
	 * certificate must be a manager's and @raft_id must be its node's.) */
	bool (*authorize)(void *arg, const struct stream_peer *peer, uint64_t raft_id);
	void *arg;
};

/* Fill @t (a struct raft_uv_transport) with the secure implementation. Hand
 * it to consensus; raft calls init/listen/connect/close. */
int secure_transport_init(struct raft_uv_transport *t, const struct secure_transport_config *cfg,
			  struct shoal_err *err);

/* The node's listener received a STREAM_RAFT stream (not yet started): hand
 * it over. The transport reads the preamble, authorizes, and passes the
 * connection to raft, or closes the stream. */
void secure_transport_accept(struct raft_uv_transport *t, struct stream *s);

/* As above; with @t NULL (no secure transport, or it is closing), close @s. */
void secure_transport_accept_or_close(struct raft_uv_transport *t, struct stream *s);

/* Release what secure_transport_init() allocated, after raft closed the
 * transport (its close callback fired). */
void secure_transport_free(struct raft_uv_transport *t);

#endif
