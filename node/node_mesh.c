/* This node's part of the routing mesh: its subnet, routes to the others, the published ports. */
#include "node/node_mesh.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "node/schema.h"
#include "runtime/mesh.h"

#define SAVED_FILE "mesh.msgpack"
#define SAVED_MAX  (16u << 20)

struct node_mesh {
	struct containers *cs;
	char *path;
	struct mesh *proxy;
	struct mesh_table cur, prev;
	bool routes_set; /* cur's routes are in the kernel */
	bool applied_ok; /* every part of cur is applied */
	char last_err[SHOAL_ERR_LEN];
	void (*close_cb)(void *arg);
	void *close_arg;
};

static int save(const struct node_mesh *m, struct shoal_err *err)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rv = mesh_table_pack(&m->cur, &pk);
	if (rv != 0)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	else
		rv = fs_write_atomic(m->path, sb.data, sb.size, 0600, err);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static int load(struct node_mesh *m, struct mesh_table *out, struct shoal_err *err)
{
	msgpack_unpacked up;
	size_t len;
	char *buf;
	int rv;

	rv = fs_read_all(m->path, SAVED_MAX, &buf, &len, err);
	if (rv != 0)
		return rv;
	msgpack_unpacked_init(&up);
	rv = schema_msgpack_parse(buf, len, &up, err);
	if (rv == 0)
		rv = mesh_table_unpack(&up.data, out, err);
	msgpack_unpacked_destroy(&up);
	free(buf);
	if (rv != 0)
		shoal_err_wrap(err, "%s is damaged (remove it: the managers send it again)",
			       m->path);
	return rv;
}

/* Note the first failure of a part in @err (rv) and keep going. */
static void part_failed(int *rv, struct shoal_err *err, int r, const char *part,
			const struct shoal_err *e2)
{
	if (*rv == 0) {
		*rv = r;
		shoal_errf(err, r, "%s: %s", part, e2->msg);
	}
}

/* Make the kernel and the proxy match m->cur; a failure is logged once per
 * distinct message (tables keep coming: each tries again). */
static int enact(struct node_mesh *m, bool routes_changed, struct shoal_err *err)
{
	struct shoal_err e2;
	int rv = 0, r;

	if (m->cs != NULL && m->cur.subnet[0] != '\0') {
		char bip[20];

		r = mesh_subnet_gateway(m->cur.subnet, bip, &e2);
		if (r == 0)
			r = ctr_net_set_bip(m->cs, bip, &e2);
		if (r != 0)
			part_failed(&rv, err, r, "the container subnet", &e2);
	}
	if (routes_changed || !m->routes_set) {
		r = netw_routes_set(m->cur.routes, m->cur.n_routes, &e2);
		m->routes_set = r == 0;
		if (r != 0)
			part_failed(&rv, err, r, "routes to the other nodes", &e2);
	}
	r = mesh_set(m->proxy, m->cur.ports, m->cur.n_ports, &e2);
	if (r != 0)
		part_failed(&rv, err, r, "published ports", &e2);
	m->applied_ok = rv == 0;
	if (rv != 0 && strcmp(m->last_err, err->msg) != 0)
		log_warn("mesh", "%s", err->msg);
	snprintf(m->last_err, sizeof(m->last_err), "%s", rv != 0 ? err->msg : "");
	return rv;
}

static bool routes_equal(const struct mesh_table *a, const struct mesh_table *b)
{
	if (a->n_routes != b->n_routes)
		return false;
	for (size_t i = 0; i < a->n_routes; i++)
		if (strcmp(a->routes[i].subnet, b->routes[i].subnet) != 0 ||
		    strcmp(a->routes[i].via, b->routes[i].via) != 0)
			return false;
	return true;
}

int node_mesh_open(uv_loop_t *loop, struct containers *cs, const char *state_dir, const char *bind,
		   struct node_mesh **out, struct shoal_err *err)
{
	struct node_mesh *m = calloc(1, sizeof(*m));
	struct mesh_table saved;
	struct shoal_err e2;
	int rv;

	if (m == NULL || asprintf(&m->path, "%s/" SAVED_FILE, state_dir) < 0) {
		free(m);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	m->cs = cs;
	rv = fs_mkdir_p(state_dir, 0700, err);
	if (rv == 0)
		rv = mesh_open(loop, bind, &m->proxy, err);
	if (rv != 0) {
		free(m->path);
		free(m);
		return rv;
	}
	*out = m;
	rv = load(m, &saved, err);
	if (rv == SHOAL_ENOTFOUND)
		return 0;
	if (rv != 0) {
		node_mesh_close(m, NULL, NULL);
		*out = NULL;
		return rv;
	}
	m->cur = saved;
	(void)enact(m, true, &e2); /* logs what failed; the next table tries again */
	return 0;
}

static void proxy_closed(void *arg)
{
	struct node_mesh *m = arg;

	if (m->close_cb != NULL)
		m->close_cb(m->close_arg);
	mesh_table_free(&m->cur);
	mesh_table_free(&m->prev);
	free(m->path);
	free(m);
}

void node_mesh_close(struct node_mesh *m, void (*cb)(void *arg), void *arg)
{
	if (m == NULL) {
		if (cb != NULL)
			cb(arg);
		return;
	}
	m->close_cb = cb;
	m->close_arg = arg;
	mesh_close(m->proxy, proxy_closed, m);
}

int node_mesh_apply(struct node_mesh *m, const struct mesh_table *t, struct shoal_err *err)
{
	struct mesh_table copy;
	bool routes_changed;
	int rv;

	if (mesh_table_equal(&m->cur, t))
		return m->applied_ok ? 0 : enact(m, false, err);
	rv = mesh_table_copy(&copy, t, err);
	if (rv != 0)
		return rv;
	routes_changed = !routes_equal(&m->cur, t);
	mesh_table_free(&m->prev);
	m->prev = m->cur;
	m->cur = copy;
	rv = save(m, err);
	if (rv != 0)
		log_warn("mesh", "saving the table: %s", err->msg);
	return enact(m, routes_changed, err);
}

void node_mesh_leave(struct node_mesh *m)
{
	struct shoal_err err;

	mesh_table_free(&m->prev);
	mesh_table_free(&m->cur);
	if (mesh_set(m->proxy, NULL, 0, &err) != 0)
		log_warn("mesh", "closing the published ports: %s", err.msg);
	if (netw_routes_set(NULL, 0, &err) != 0)
		log_warn("mesh", "removing the routes to the swarm's nodes: %s", err.msg);
	m->routes_set = false;
	m->applied_ok = false;
	if (fs_unlink_durable(m->path, &err) != 0 && fs_exists(m->path))
		log_warn("mesh", "removing %s: %s", m->path, err.msg);
}

static bool in_table(const struct mesh_table *t, struct in_addr addr)
{
	for (size_t i = 0; i < t->n_ports; i++)
		for (size_t e = 0; e < t->ports[i].n_eps; e++)
			if (t->ports[i].eps[e].addr.s_addr == addr.s_addr)
				return true;
	return false;
}

bool node_mesh_serving(const struct node_mesh *m, struct in_addr addr)
{
	return m != NULL && (in_table(&m->cur, addr) || in_table(&m->prev, addr));
}
