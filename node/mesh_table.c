/* The routing mesh's table as the managers compute it: node subnets, routes, published ports. */
#include "node/mesh_table.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/records.h"
#include "node/records_svc.h"
#include "node/updater.h"

/* ---- subnets ---- */

/* A decimal number 0..@max at *@p, without sign, space or leading zero (as
 * inet_pton() wants them); moves *@p past it. */
static bool dec(const char **p, unsigned max, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	*p = s;
	return true;
}

/* "a.b.c.d/len" and nothing else into @q and @len. */
static bool parse_cidr(const char *s, unsigned q[4], unsigned *len)
{
	for (int i = 0; i < 4; i++)
		if (!dec(&s, 255, &q[i]) || *s++ != (i < 3 ? '.' : '/'))
			return false;
	return dec(&s, 32, len) && *s == '\0';
}

/* K of "10.89.K.0/24" written exactly so, or 0. */
static unsigned subnet_index(const char *subnet)
{
	unsigned q[4], len;

	if (subnet == NULL || !parse_cidr(subnet, q, &len) || q[0] != 10 || q[1] != 89 ||
	    q[3] != 0 || len != 24 || q[2] == 0 || q[2] > MESH_POOL_MAX)
		return 0;
	return q[2];
}

int mesh_subnets_run(const struct store *s, struct command *out, struct shoal_err *err)
{
	bool used[MESH_POOL_MAX + 1] = {false};
	size_t n = store_node_count(s);
	unsigned next = 1;
	int left = 0;

	for (size_t i = 0; i < n; i++)
		used[subnet_index(store_node_at(s, i)->subnet)] = true;
	for (size_t i = 0; i < n; i++) {
		const struct node_rec *node = store_node_at(s, i);
		char subnet[20];
		struct node_rec copy;
		int rv;

		if (subnet_index(node->subnet) != 0)
			continue;
		while (next <= MESH_POOL_MAX && used[next])
			next++;
		if (next > MESH_POOL_MAX || out->n_ops >= COMMAND_MAX_OPS) {
			left++;
			continue;
		}
		used[next] = true;
		snprintf(subnet, sizeof(subnet), MESH_POOL_PREFIX "%u.0/24", next);
		copy = *node;
		copy.subnet = subnet;
		rv = command_put(out, RECORD_NODES, node->meta.version, &copy, err);
		if (rv != 0)
			return rv;
	}
	return left;
}

int mesh_subnet_gateway(const char *subnet, char out[20], struct shoal_err *err)
{
	unsigned q[4], len;

	if (subnet == NULL || !parse_cidr(subnet, q, &len) || q[3] > 254 || len < 8 || len > 30)
		return shoal_errf(err, SHOAL_EINVAL, "'%.32s' is not a subnet a.b.c.d/len",
				  subnet != NULL ? subnet : "");
	snprintf(out, 20, "%u.%u.%u.%u/%u", q[0], q[1], q[2], q[3] + 1, len);
	return 0;
}

/* ---- the table ---- */

void mesh_table_free(struct mesh_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n_ports; i++)
		free((void *)(uintptr_t)t->ports[i].eps); /* the table's own copy */
	free(t->ports);
	free(t->routes);
	memset(t, 0, sizeof(*t));
}

static bool is_tcp_ingress(const struct svc_port *p)
{
	return (p->protocol == NULL || strcmp(p->protocol, "tcp") == 0) &&
	       (p->publish_mode == NULL || strcmp(p->publish_mode, "ingress") == 0) &&
	       p->published_port > 0 && p->published_port <= 65535 && p->target_port > 0 &&
	       p->target_port <= 65535;
}

/* Whether @t is one of @svc's endpoints now. */
static bool serves(const struct service_rec *svc, const struct task_rec *t, struct in_addr *addr)
{
	return t->service_id != NULL && strcmp(t->service_id, svc->meta.id) == 0 &&
	       t->desired_state == TASK_RUNNING && t->status.state == TASK_RUNNING &&
	       t->addr != NULL && inet_pton(AF_INET, t->addr, addr) == 1 &&
	       strcmp(updater_task_color(t), updater_live_color(svc)) == 0;
}

/* The ports of @svc, with their endpoints, appended to @out. */
static int add_ports(const struct store *s, const struct service_rec *svc, struct mesh_table *out)
{
	const struct schema_list *ports = &svc->spec.endpoint_spec.ports;
	size_t n_tasks = store_count(s, RECORD_TASKS);

	for (size_t i = 0; i < ports->n; i++) {
		const struct svc_port *p = (const struct svc_port *)ports->items + i;
		struct mesh_endpoint *eps;
		struct mesh_port *grown;
		size_t k = 0;

		if (!is_tcp_ingress(p))
			continue;
		if (out->n_ports >= MESH_MAX_PORTS)
			break; /* what a node's proxy takes (mesh_set()) */
		eps = calloc(n_tasks > 0 ? n_tasks : 1, sizeof(*eps));
		grown = realloc(out->ports, (out->n_ports + 1) * sizeof(*grown));
		if (eps == NULL || grown == NULL) {
			free(eps);
			if (grown != NULL)
				out->ports = grown;
			return SHOAL_ENOMEM;
		}
		out->ports = grown;
		for (size_t j = 0; j < n_tasks && k < MESH_MAX_ENDPOINTS; j++) {
			const struct task_rec *t = store_at(s, RECORD_TASKS, j);
			struct in_addr addr;

			if (!serves(svc, t, &addr))
				continue;
			eps[k].addr = addr;
			eps[k].port = (uint16_t)p->target_port;
			k++;
		}
		out->ports[out->n_ports++] = (struct mesh_port){
		    .published = (uint16_t)p->published_port, .eps = eps, .n_eps = k};
	}
	return 0;
}

int mesh_table_build(const struct store *s, const char *node, struct mesh_table *out,
		     struct shoal_err *err)
{
	size_t n_nodes = store_node_count(s), n_svcs = store_count(s, RECORD_SERVICES);
	int rv = 0;

	memset(out, 0, sizeof(*out));
	out->routes = calloc(n_nodes > 0 ? n_nodes : 1, sizeof(*out->routes));
	if (out->routes == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n_nodes; i++) {
		const struct node_rec *n = store_node_at(s, i);
		struct netw_route *r = &out->routes[out->n_routes];
		struct in_addr via;

		if (subnet_index(n->subnet) == 0)
			continue;
		if (strcmp(n->meta.id, node) == 0) {
			snprintf(out->subnet, sizeof(out->subnet), "%s", n->subnet);
			continue;
		}
		if (n->status.addr == NULL || inet_pton(AF_INET, n->status.addr, &via) != 1)
			continue; /* no address to route through (yet) */
		snprintf(r->subnet, sizeof(r->subnet), "%s", n->subnet);
		snprintf(r->via, sizeof(r->via), "%s", n->status.addr);
		out->n_routes++;
	}
	for (size_t i = 0; i < n_svcs && rv == 0 && out->n_ports < MESH_MAX_PORTS; i++)
		rv = add_ports(s, store_at(s, RECORD_SERVICES, i), out);
	if (rv != 0) {
		mesh_table_free(out);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s != NULL ? s : "", s != NULL ? strlen(s) + 1 : 1);
}

uint64_t mesh_table_fp(const struct store *s)
{
	uint64_t h = 1469598103934665603ULL;
	size_t n_svcs = store_count(s, RECORD_SERVICES);

	for (size_t i = 0; i < store_node_count(s); i++) {
		const struct node_rec *n = store_node_at(s, i);

		h = fnv_str(fnv_str(fnv_str(h, n->meta.id), n->subnet), n->status.addr);
	}
	for (size_t i = 0; i < n_svcs; i++) {
		struct mesh_table t = {0};

		if (add_ports(s, store_at(s, RECORD_SERVICES, i), &t) != 0) {
			mesh_table_free(&t);
			return h ^ (uint64_t)i; /* out of memory: any change is safe */
		}
		for (size_t p = 0; p < t.n_ports; p++) {
			h = fnv(h, &t.ports[p].published, sizeof(t.ports[p].published));
			for (size_t e = 0; e < t.ports[p].n_eps; e++)
				h = fnv(fnv(h, &t.ports[p].eps[e].addr, 4), &t.ports[p].eps[e].port,
					2);
			h = fnv(h, "|", 1);
		}
		mesh_table_free(&t);
	}
	return h;
}

int mesh_table_copy(struct mesh_table *dst, const struct mesh_table *src, struct shoal_err *err)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->subnet, src->subnet, sizeof(dst->subnet));
	dst->routes = calloc(src->n_routes > 0 ? src->n_routes : 1, sizeof(*dst->routes));
	dst->ports = calloc(src->n_ports > 0 ? src->n_ports : 1, sizeof(*dst->ports));
	if (dst->routes == NULL || dst->ports == NULL)
		goto nomem;
	if (src->n_routes > 0) /* an empty table may have no arrays: memcpy(NULL) is UB */
		memcpy(dst->routes, src->routes, src->n_routes * sizeof(*dst->routes));
	dst->n_routes = src->n_routes;
	for (size_t i = 0; i < src->n_ports; i++) {
		const struct mesh_port *p = &src->ports[i];
		struct mesh_endpoint *eps = calloc(p->n_eps > 0 ? p->n_eps : 1, sizeof(*eps));

		if (eps == NULL)
			goto nomem;
		if (p->n_eps > 0)
			memcpy(eps, p->eps, p->n_eps * sizeof(*eps));
		dst->ports[i] =
		    (struct mesh_port){.published = p->published, .eps = eps, .n_eps = p->n_eps};
		dst->n_ports++;
	}
	return 0;
nomem:
	mesh_table_free(dst);
	return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
}

bool mesh_table_equal(const struct mesh_table *a, const struct mesh_table *b)
{
	if (strcmp(a->subnet, b->subnet) != 0 || a->n_routes != b->n_routes ||
	    a->n_ports != b->n_ports)
		return false;
	for (size_t i = 0; i < a->n_routes; i++)
		if (strcmp(a->routes[i].subnet, b->routes[i].subnet) != 0 ||
		    strcmp(a->routes[i].via, b->routes[i].via) != 0)
			return false;
	for (size_t i = 0; i < a->n_ports; i++) {
		const struct mesh_port *p = &a->ports[i], *q = &b->ports[i];

		if (p->published != q->published || p->n_eps != q->n_eps)
			return false;
		for (size_t e = 0; e < p->n_eps; e++)
			if (p->eps[e].addr.s_addr != q->eps[e].addr.s_addr ||
			    p->eps[e].port != q->eps[e].port)
				return false;
	}
	return true;
}

/* ---- msgpack ---- */

static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0 ? -1 : 0;
}

int mesh_table_pack(const struct mesh_table *t, msgpack_packer *pk)
{
	if (msgpack_pack_array(pk, 3) != 0 || pack_str(pk, t->subnet) != 0 ||
	    msgpack_pack_array(pk, (uint32_t)t->n_routes) != 0)
		return SHOAL_ENOMEM;
	for (size_t i = 0; i < t->n_routes; i++)
		if (msgpack_pack_array(pk, 2) != 0 || pack_str(pk, t->routes[i].subnet) != 0 ||
		    pack_str(pk, t->routes[i].via) != 0)
			return SHOAL_ENOMEM;
	if (msgpack_pack_array(pk, (uint32_t)t->n_ports) != 0)
		return SHOAL_ENOMEM;
	for (size_t i = 0; i < t->n_ports; i++) {
		const struct mesh_port *p = &t->ports[i];

		if (msgpack_pack_array(pk, 2) != 0 || msgpack_pack_uint16(pk, p->published) != 0 ||
		    msgpack_pack_array(pk, (uint32_t)p->n_eps) != 0)
			return SHOAL_ENOMEM;
		for (size_t e = 0; e < p->n_eps; e++)
			if (msgpack_pack_array(pk, 2) != 0 ||
			    msgpack_pack_uint32(pk, ntohl(p->eps[e].addr.s_addr)) != 0 ||
			    msgpack_pack_uint16(pk, p->eps[e].port) != 0)
				return SHOAL_ENOMEM;
	}
	return 0;
}

static bool is_array(const msgpack_object *o, uint32_t size)
{
	return o->type == MSGPACK_OBJECT_ARRAY && (size == 0 || o->via.array.size == size);
}

static bool is_uint(const msgpack_object *o, uint64_t max)
{
	return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= max;
}

static bool is_port(const msgpack_object *o)
{
	return is_uint(o, 65535) && o->via.u64 != 0;
}

/* A string of at most @len - 1 bytes without NUL into @out. */
static bool get_str(const msgpack_object *o, char *out, size_t len)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= len ||
	    (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL))
		return false;
	if (o->via.str.size > 0)
		memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
	return true;
}

int mesh_table_unpack(const msgpack_object *o, struct mesh_table *out, struct shoal_err *err)
{
	const msgpack_object *routes, *ports;

	memset(out, 0, sizeof(*out));
	if (!is_array(o, 3) || !get_str(&o->via.array.ptr[0], out->subnet, sizeof(out->subnet)) ||
	    !is_array(&o->via.array.ptr[1], 0) || !is_array(&o->via.array.ptr[2], 0))
		goto bad;
	routes = &o->via.array.ptr[1];
	ports = &o->via.array.ptr[2];
	if (routes->via.array.size > MESH_POOL_MAX || ports->via.array.size > MESH_MAX_PORTS)
		goto bad;
	out->routes = calloc(routes->via.array.size + 1, sizeof(*out->routes));
	out->ports = calloc(ports->via.array.size + 1, sizeof(*out->ports));
	if (out->routes == NULL || out->ports == NULL) {
		mesh_table_free(out);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < routes->via.array.size; i++) {
		const msgpack_object *r = &routes->via.array.ptr[i];
		struct netw_route *dst = &out->routes[i];

		if (!is_array(r, 2) ||
		    !get_str(&r->via.array.ptr[0], dst->subnet, sizeof(dst->subnet)) ||
		    !get_str(&r->via.array.ptr[1], dst->via, sizeof(dst->via)))
			goto bad;
		out->n_routes++;
	}
	for (uint32_t i = 0; i < ports->via.array.size; i++) {
		const msgpack_object *p = &ports->via.array.ptr[i], *list;
		struct mesh_endpoint *eps;

		if (!is_array(p, 2) || !is_port(&p->via.array.ptr[0]) ||
		    !is_array(&p->via.array.ptr[1], 0) ||
		    p->via.array.ptr[1].via.array.size > MESH_MAX_ENDPOINTS)
			goto bad;
		list = &p->via.array.ptr[1];
		eps = calloc(list->via.array.size + 1, sizeof(*eps));
		if (eps == NULL) {
			mesh_table_free(out);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		}
		out->ports[out->n_ports++] = (struct mesh_port){
		    .published = (uint16_t)p->via.array.ptr[0].via.u64, .eps = eps, .n_eps = 0};
		for (uint32_t e = 0; e < list->via.array.size; e++) {
			const msgpack_object *ep = &list->via.array.ptr[e];

			if (!is_array(ep, 2) || !is_uint(&ep->via.array.ptr[0], UINT32_MAX) ||
			    !is_port(&ep->via.array.ptr[1]))
				goto bad;
			eps[e].addr.s_addr = htonl((uint32_t)ep->via.array.ptr[0].via.u64);
			eps[e].port = (uint16_t)ep->via.array.ptr[1].via.u64;
			out->ports[out->n_ports - 1].n_eps++;
		}
	}
	return 0;
bad:
	mesh_table_free(out);
	return shoal_errf(
	    err, SHOAL_EPROTO,
	    "a mesh table is [subnet, [[subnet, via]...], [[port, [[addr, port]...]]...]]");
}
