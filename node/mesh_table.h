/* The routing mesh's table as the managers compute it: node subnets, routes, published ports. */
#ifndef SHOAL_NODE_MESH_TABLE_H
#define SHOAL_NODE_MESH_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/store.h"
#include "runtime/mesh.h"
#include "runtime/netw.h"

/* Subnets: the leader hands each node a /24 of MESH_POOL ("10.89.K.0/24",
 * K = 1..254, the lowest free), written into its Node record (Subnet). A
 * node's task containers take their addresses from it, and every other node
 * routes it through the node's address (Status.Addr).
 *
 * A node's table, sent with its assignment set: its own subnet, the routes to
 * the others', and for every service publishing a TCP port in ingress mode
 * the port and its endpoints: the address and target port of each task of
 * the service that has the live color, is desired running and runs (the agent
 * reports running only once its health check passed, if it has one), in
 * task id order. The same for every node but the subnet and routes. */

#define MESH_POOL_PREFIX "10.89."
#define MESH_POOL_MAX	 254u /* subnets, so nodes with one */

struct mesh_table {
	char subnet[20]; /* "10.89.3.0/24", "" when the node has none yet */
	struct netw_route *routes;
	size_t n_routes;
	struct mesh_port *ports; /* each port's eps a heap array owned by the table */
	size_t n_ports;
};

/* Leader: the Node records that need a subnet get one (PUTs expecting their
 * version) appended to @out. Nodes beyond MESH_POOL_MAX get none (logged by
 * the caller from the return: the number left without). Returns >= 0 or
 * SHOAL_ENOMEM. */
int mesh_subnets_run(const struct store *s, struct command *out, struct shoal_err *err);

/* @node's table from the store. Returns 0 or SHOAL_ENOMEM. */
int mesh_table_build(const struct store *s, const char *node, struct mesh_table *out,
		     struct shoal_err *err);
/* FNV-1a over the parts every node shares (ports and endpoints) and over
 * every node's subnet and address: it changes when any node's table does. */
uint64_t mesh_table_fp(const struct store *s);

void mesh_table_free(struct mesh_table *t);
int mesh_table_copy(struct mesh_table *dst, const struct mesh_table *src, struct shoal_err *err);
bool mesh_table_equal(const struct mesh_table *a, const struct mesh_table *b);

/* Wire and disk form: [subnet, [[subnet, via]...], [[published, [[addr, port]...]]...]]
 * with addr the IPv4 address as a big-endian u32. unpack checks every type,
 * bound and string length (SHOAL_EPROTO). */
int mesh_table_pack(const struct mesh_table *t, msgpack_packer *pk);
int mesh_table_unpack(const msgpack_object *o, struct mesh_table *out, struct shoal_err *err);

/* "10.89.3.0/24" -> "10.89.3.1/24", the bridge's gateway/prefix. SHOAL_EINVAL
 * for anything else than a.b.c.d/len. */
int mesh_subnet_gateway(const char *subnet, char out[20], struct shoal_err *err);

#endif
