/* The routing mesh on one node: a TCP proxy per published port, forwarding to the service's
 * endpoints. */
#ifndef SHOAL_RUNTIME_MESH_H
#define SHOAL_RUNTIME_MESH_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/err.h"

/* Every node accepts on every published port and forwards each connection to
 * one endpoint (a task's address and target port) of that port's current set:
 *
 * - mesh_set() replaces the whole table at once. A port that stays keeps its
 *   listening socket; its new endpoint set takes effect for the next accepted
 *   connection (one pointer swap, on the loop thread: no connection ever sees
 *   half a set). Connections in flight keep their endpoint and finish.
 *   A port that leaves the table stops listening; its connections in flight
 *   finish. A port with no endpoint keeps listening and closes (RST) what it
 *   accepts, so clients see a refusal, not a hang.
 * - Load balancing: round robin per port over its endpoints.
 * - A connect that fails (refused, unreachable, or no answer within
 *   MESH_CONNECT_MS) is retried on the next endpoint, each endpoint at most
 *   once per connection; the client's bytes wait meanwhile (nothing was sent
 *   upstream, so a retry is safe). When every endpoint failed, the client
 *   connection is reset.
 * - Bytes flow both ways with back pressure: a side stops reading while more
 *   than MESH_HIGH_WATER bytes wait to be written to the other. A half close
 *   (EOF) on one side is passed on as shutdown(SHUT_WR) to the other; the
 *   pair closes once both directions ended or either side failed.
 * - Listening sockets are bound to @bind (0.0.0.0 when NULL) with SO_REUSEADDR,
 *   in the network namespace the daemon runs in.
 *
 * Single-threaded: every call from the loop thread. */

#define MESH_CONNECT_MS	   1000
#define MESH_HIGH_WATER	   (256 * 1024)
#define MESH_MAX_PORTS	   1024
#define MESH_MAX_ENDPOINTS 4096 /* per port */

struct mesh;

struct mesh_endpoint {
	struct in_addr addr;
	uint16_t port;
};

/* One published port (TCP) and its endpoints. */
struct mesh_port {
	uint16_t published;
	const struct mesh_endpoint *eps;
	size_t n_eps;
};

struct mesh_stats {
	uint64_t accepted;  /* client connections accepted */
	uint64_t forwarded; /* connected to an endpoint */
	uint64_t retried;   /* connects retried on another endpoint */
	uint64_t refused;   /* reset: no endpoint, or every endpoint failed */
	uint64_t active;    /* pairs open now */
};

/* A mesh with no ports. @bind: the address to listen on ("0.0.0.0" when NULL),
 * copied. Returns 0, SHOAL_EINVAL (bad address) or SHOAL_ENOMEM. */
int mesh_open(uv_loop_t *loop, const char *bind, struct mesh **out, struct shoal_err *err);

/* Make the table @ports[0..n) (copied; port numbers unique, 1..65535). All or
 * nothing for what can be checked first (SHOAL_EINVAL: a duplicate or zero
 * port, too many ports or endpoints; nothing changed). A new port whose
 * socket cannot be bound (in use) does not stop the others: the table is
 * applied, the port is retried at the next mesh_set(), and SHOAL_EBUSY names
 * it. Returns 0, SHOAL_EINVAL, SHOAL_EBUSY or SHOAL_ENOMEM. */
int mesh_set(struct mesh *m, const struct mesh_port *ports, size_t n, struct shoal_err *err);

/* The ports now listening, for tests and `shoal` diagnostics. */
size_t mesh_listening(const struct mesh *m);
void mesh_get_stats(const struct mesh *m, struct mesh_stats *out);

/* Stop listening and close every connection (with RST); @cb (may be NULL)
 * once all handles are closed, then @m is freed. When nothing is open, @cb
 * runs before mesh_close() returns. */
void mesh_close(struct mesh *m, void (*cb)(void *arg), void *arg);

#endif
