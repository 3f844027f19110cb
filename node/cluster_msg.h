/* The bodies of the cluster's RPC methods (net/rpc.h), each a msgpack array:
 *
 *   "join"      (STREAM_JOIN, joiner -> any manager)
 *     request  [secret, hostname, cluster addr, node key (bin 32), availability,
 *               architecture, os, engine version, nano cpus, memory bytes]
 *     response GRANT
 *   "heartbeat" (STREAM_RPC, worker -> any manager, every few seconds)
 *     request  []
 *     response GRANT (the certificate only when it is due for renewal or
 *              the node's role changed)
 *   "propose"   (STREAM_RPC, manager -> leader)
 *     request  [command (bin)]        response []
 *   "read_index" (STREAM_RPC, manager -> leader, before a read on a follower)
 *     request  []                     response [commit index]
 *   "renew"     (STREAM_RPC, any node -> any manager)
 *     request  []                     response GRANT with a fresh certificate
 *
 *   GRANT [node id, role (1 worker, 2 manager), raft id, certificate (bin) or
 *          nil, gossip keys (bin 32 or 64: primary, then previous), [manager
 *          cluster addrs]]
 *
 * Decoders take untrusted bytes: types, lengths and counts are checked,
 * trailing bytes refused. */
#ifndef SHOAL_NODE_CLUSTER_MSG_H
#define SHOAL_NODE_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/id.h"
#include "net/cert.h"
#include "net/identity.h"

#define CLUSTER_ADDR_LEN     64 /* "IP:port" and its NUL */
#define CLUSTER_MAX_MANAGERS 7
#define CLUSTER_MAX_TEXT     255 /* hostname, platform strings */
#define CLUSTER_KEY_LEN	     32	 /* one gossip key */

struct join_request {
	char secret[TOKEN_SECRET_LEN + 1];
	char hostname[CLUSTER_MAX_TEXT + 1];
	char cluster_addr[CLUSTER_ADDR_LEN];
	unsigned char node_pk[IDENTITY_PK_LEN];
	int availability; /* enum node_availability */
	char architecture[CLUSTER_MAX_TEXT + 1];
	char os[CLUSTER_MAX_TEXT + 1];
	char engine_version[CLUSTER_MAX_TEXT + 1];
	int64_t nano_cpus;
	int64_t memory_bytes;
};

struct grant {
	char node_id[ID_LEN + 1];
	enum cert_role role;
	uint64_t raft_id;
	bool has_cert;
	struct cert cert;
	unsigned char keys[2 * CLUSTER_KEY_LEN];
	size_t keys_len; /* 32 or 64 */
	char managers[CLUSTER_MAX_MANAGERS][CLUSTER_ADDR_LEN];
	size_t n_managers;
};

int join_request_encode(const struct join_request *r, struct buf *out, struct shoal_err *err);
int join_request_decode(const void *data, size_t len, struct join_request *out,
			struct shoal_err *err);

int grant_encode(const struct grant *g, struct buf *out, struct shoal_err *err);
int grant_decode(const void *data, size_t len, struct grant *out, struct shoal_err *err);

/* "propose": the command's bytes. *@cmd points into @data. */
int propose_request_encode(const void *cmd, size_t len, struct buf *out, struct shoal_err *err);
int propose_request_decode(const void *data, size_t len, const void **cmd, size_t *cmd_len,
			   struct shoal_err *err);

/* "read_index" response: [the leader's commit index]. */
int index_encode(uint64_t index, struct buf *out, struct shoal_err *err);
int index_decode(const void *data, size_t len, uint64_t *index, struct shoal_err *err);

/* An empty array: the "heartbeat" and "renew" requests, the "propose" response. */
int empty_encode(struct buf *out, struct shoal_err *err);
int empty_decode(const void *data, size_t len, struct shoal_err *err);

/* True if @addr is "IPv4:port" with a port in 1..65535. */
bool cluster_addr_valid(const char *addr);

#endif
