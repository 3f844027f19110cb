/* Container networking on one node: a bridge, an address per container, a veth into its netns, NAT.
 */
#ifndef SHOAL_RUNTIME_NETW_H
#define SHOAL_RUNTIME_NETW_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* One node's container network (Docker's default bridge, shoal's names):
 *
 * - a Linux bridge (default "shoal0") holding the gateway address, the first
 *   host of the subnet (default 10.88.0.1/16, Docker's --bip form);
 * - per container: a veth pair, host end "vsh<first 8 hex of id>" on the
 *   bridge, the other end moved into the container's network namespace and
 *   named eth0, with the container's address and a default route through the
 *   gateway; lo up;
 * - addresses handed out from the subnet (gateway and broadcast excluded),
 *   lowest free first, persisted in STATE_DIR (the root given to netw_open)
 *   as one small file per allocation so a daemon restart keeps them;
 * - outbound NAT: an nftables table "ip shoal" (created/replaced atomically
 *   by netw_open) masquerading the subnet's traffic leaving through any other
 *   interface, and net.ipv4.ip_forward=1 in the daemon's namespace;
 * - a forward chain in that table (policy accept) accepting traffic from and
 *   to the bridge. It does not depend on other tables, but nftables runs
 *   every base chain of a hook: a drop in another table (e.g. a FORWARD
 *   policy DROP set by a Docker Engine) still drops.
 *
 * Everything is done in the network namespace the daemon runs in. Commands
 * are spawned synchronously (ip -batch, nft -f), a few per call; runtime
 * callers call these from the loop thread. Not thread-safe. */

#define NETW_DEFAULT_BRIDGE "shoal0"
#define NETW_DEFAULT_BIP    "10.88.0.1/16"
#define NETW_IFNAME_MAX	    16

struct netw;

struct netw_config {
	const char *state_dir; /* allocations live here (created 0700) */
	const char *bridge;    /* NULL: NETW_DEFAULT_BRIDGE */
	const char *bip;       /* gateway/prefix, NULL: NETW_DEFAULT_BIP; prefix 8..30 */
};

/* Create (or adopt, if it exists with that address) the bridge, set it up,
 * install the NAT table, enable forwarding, and load the allocations.
 * SHOAL_EINVAL for a bad bip or bridge name (nothing is changed);
 * SHOAL_ECONFLICT if the bridge exists with another IPv4 address or is not a
 * bridge, or an allocation lies outside the subnet; SHOAL_EPROTO for a
 * corrupt allocation file; SHOAL_ENOTFOUND if ip or nft is not installed;
 * SHOAL_EIO with the command's output when a command fails (e.g. not root). */
int netw_open(const struct netw_config *cfg, struct netw **out, struct shoal_err *err);
/* As netw_open(), but a bridge that exists with another address is given
 * cfg->bip when no allocation is held (the node's subnet changed while no
 * container used it); with allocations it is SHOAL_ECONFLICT as above. */
int netw_open_readdress(const struct netw_config *cfg, struct netw **out, struct shoal_err *err);
/* Free @n. The bridge, NAT table and allocations stay (containers outlive the
 * daemon). Accepts NULL. */
void netw_close(struct netw *n);

/* Remove the bridge and the NAT table (when no allocation is left; else
 * SHOAL_EBUSY). Idempotent. @n stays open: free it with netw_close(). For
 * tests and `swarm leave`-like teardown. */
int netw_destroy(struct netw *n, struct shoal_err *err);

struct netw_endpoint {
	struct in_addr addr;
	uint8_t prefix;
	struct in_addr gateway;
	char host_ifname[NETW_IFNAME_MAX]; /* "vsh0123abcd" */
	uint8_t mac[6]; /* derived from the address, as Docker does: 02:42:a.b.c.d */
};

/* Allocate an address for container @id (64 lowercase hex) and wire it into
 * the network namespace at @netns_path (e.g. "/proc/PID/ns/net"). The
 * allocation is on disk before the veth exists. Idempotent for an id that
 * already has an allocation (same address; the veth is recreated if missing
 * or if it belongs to another namespace, e.g. after a container restart).
 * On failure nothing new stays behind (no allocation, no veth; an
 * allocation made by an earlier attach is kept). Two spawns of ip (three on
 * an attach again). Returns 0, SHOAL_EINVAL (bad id, not a network
 * namespace), SHOAL_ENOTFOUND (no such namespace path), SHOAL_EBUSY (the
 * subnet is full), SHOAL_ECONFLICT (another id has the same first 8 hex
 * digits, so the same host interface name) or SHOAL_EIO. */
int netw_attach(struct netw *n, const char *id, const char *netns_path, struct netw_endpoint *out,
		struct shoal_err *err);

/* The endpoint of @id, if it has an allocation. Returns 0 or SHOAL_ENOTFOUND. */
int netw_lookup(const struct netw *n, const char *id, struct netw_endpoint *out);

/* Delete @id's host veth (if still there: it disappears with the namespace)
 * and release its address. Idempotent: an unknown id is success. */
int netw_detach(struct netw *n, const char *id, struct shoal_err *err);

/* Ids that hold an allocation, for reconciliation after a restart. Calls @cb
 * for each. */
void netw_foreach(const struct netw *n, void (*cb)(void *arg, const char *id), void *arg);

/* The number of allocations held. */
size_t netw_count(const struct netw *n);
/* The gateway/prefix @n was opened with ("10.88.0.1/16"). */
const char *netw_bip(const struct netw *n);

/* Routes to the other nodes' container subnets (the routing mesh reaches
 * their tasks through them), in the daemon's network namespace, marked with
 * routing protocol NETW_ROUTE_PROTO so they are ours to replace:
 * netw_routes_set() makes the routes of that protocol exactly @routes (ip
 * route replace for each, ip route del for ours no longer wanted; one spawn
 * of `ip -batch` plus one `ip route show proto N`). A route being replaced
 * never disappears meanwhile. n == 0 removes ours. Independent of any bridge.
 * Returns 0, SHOAL_EINVAL (a subnet that is not a.b.c.d/len with the host
 * bits clear, a subnet listed twice, a bad gateway; nothing changed) or
 * SHOAL_EIO with ip's output (e.g. a gateway not reachable: ip runs with
 * -force, so the other routes are still set and removed). */
#define NETW_ROUTE_PROTO 147
struct netw_route {
	char subnet[20]; /* "10.89.2.0/24" */
	char via[16];	 /* "10.77.0.2": that node's address */
};
int netw_routes_set(const struct netw_route *routes, size_t n, struct shoal_err *err);

#endif
