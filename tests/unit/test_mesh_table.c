/* Unit tests of node/mesh_table: subnet assignment, the table built from a store, its
 * fingerprint, and its msgpack form against hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/mesh_table.h"
#include "node/records.h"
#include "node/records_svc.h"
#include "node/schema.h"
#include "node/store.h"
#include "tests/unit/svc_fixture.h"

/* ---- store helpers ---- */

static void node_fill(struct node_rec *n, const char *id, const char *subnet, const char *addr)
{
	assert_int_equal(node_rec_defaults(n, NULL), 0);
	n->meta.id = fx_strdup(id);
	n->description.hostname = fx_strdup(id);
	n->status.state = NODE_STATE_READY;
	n->subnet = subnet != NULL ? fx_strdup(subnet) : NULL;
	n->status.addr = addr != NULL ? fx_strdup(addr) : NULL;
}

/* A ready node with @subnet and Status.Addr @addr (either NULL). */
static void add_node(struct fx *f, const char *id, const char *subnet, const char *addr)
{
	struct command cmd;
	struct node_rec n;

	command_init(&cmd);
	node_fill(&n, id, subnet, addr);
	assert_int_equal(command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, &n, NULL), 0);
	node_rec_free(&n);
	fx_apply(f, &cmd);
}

/* Node @id with its subnet set to @subnet. */
static void set_subnet(struct fx *f, const char *id, const char *subnet)
{
	const struct node_rec *cur = store_node_get(f->s, id);
	char *dup = subnet != NULL ? fx_strdup(subnet) : NULL;
	struct node_rec copy;
	struct command cmd;

	assert_non_null(cur);
	copy = *cur;
	copy.subnet = dup;
	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_NODES, cur->meta.version, &copy, NULL), 0);
	free(dup);
	fx_apply(f, &cmd);
}

struct port_def {
	const char *protocol, *mode;
	uint64_t published, target;
};

/* Service @id with @n ports and Deployment.LiveColor @live (NULL: none). */
static void add_service(struct fx *f, const char *id, const struct port_def *ports, size_t n,
			const char *live)
{
	struct svc_port *p = calloc(n > 0 ? n : 1, sizeof(*p));
	struct service_rec s;
	struct command cmd;

	assert_non_null(p);
	command_init(&cmd);
	assert_int_equal(service_rec_defaults(&s, NULL), 0);
	s.meta.id = fx_strdup(id);
	s.spec.name = fx_strdup(id);
	s.spec.replicas = 1;
	s.spec.task_template.container_spec.image = fx_strdup("shoal-demo:latest");
	for (size_t i = 0; i < n; i++) {
		p[i].protocol = ports[i].protocol != NULL ? fx_strdup(ports[i].protocol) : NULL;
		p[i].publish_mode = ports[i].mode != NULL ? fx_strdup(ports[i].mode) : NULL;
		p[i].published_port = ports[i].published;
		p[i].target_port = ports[i].target;
	}
	s.spec.endpoint_spec.ports.items = p;
	s.spec.endpoint_spec.ports.n = n;
	s.deployment.live_color = live != NULL ? fx_strdup(live) : NULL;
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_ANY, &s, NULL), 0);
	service_rec_free(&s);
	fx_apply(f, &cmd);
}

/* fx_add_task() tweaks take no argument: what the next task gets. */
static const char *next_addr, *next_color;

static void tweak(struct task_rec *t)
{
	t->addr = next_addr != NULL ? fx_strdup(next_addr) : NULL;
	t->color = next_color != NULL ? fx_strdup(next_color) : NULL;
}

static void add_task(struct fx *f, const char *id, const char *svc, enum task_state st,
		     enum task_state desired, const char *addr, const char *color)
{
	next_addr = addr;
	next_color = color;
	fx_add_task(f, id, svc, 1, "n1", st, desired, 1, tweak);
}

/* Task @id put again with @edit applied. */
static void edit_task(struct fx *f, const char *id, void (*edit)(struct task_rec *))
{
	const struct task_rec *cur = fx_task(f, id);
	struct command cmd;

	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_TASKS, cur->meta.version, cur, NULL), 0);
	edit(cmd.ops[0].record);
	fx_apply(f, &cmd);
}

static const char *subnet_of(struct fx *f, const char *id)
{
	const struct node_rec *n = store_node_get(f->s, id);

	assert_non_null(n);
	return n->subnet;
}

static int run_subnets(struct fx *f, struct command *cmd)
{
	command_init(cmd);
	return mesh_subnets_run(f->s, cmd, NULL);
}

/* ---- subnets ---- */

static void test_subnets_lowest_free(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;

	(void)state;
	add_node(f, "a", NULL, "10.77.0.1");
	add_node(f, "b", "10.89.1.0/24", "10.77.0.2");
	add_node(f, "c", "10.89.3.0/24", NULL);
	add_node(f, "d", NULL, NULL);
	add_node(f, "e", NULL, NULL);
	assert_int_equal(run_subnets(f, &cmd), 0);
	assert_int_equal(cmd.n_ops, 3);
	for (size_t i = 0; i < cmd.n_ops; i++) {
		assert_int_equal(cmd.ops[i].kind, COMMAND_PUT);
		assert_int_equal(cmd.ops[i].table, RECORD_NODES);
		assert_int_equal(cmd.ops[i].expect_version,
				 store_node_get(f->s, cmd.ops[i].id)->meta.version);
	}
	fx_apply(f, &cmd);
	assert_string_equal(subnet_of(f, "a"), "10.89.2.0/24");
	assert_string_equal(subnet_of(f, "b"), "10.89.1.0/24");
	assert_string_equal(subnet_of(f, "c"), "10.89.3.0/24");
	assert_string_equal(subnet_of(f, "d"), "10.89.4.0/24");
	assert_string_equal(subnet_of(f, "e"), "10.89.5.0/24");
	/* The rest of the record is kept. */
	assert_string_equal(store_node_get(f->s, "a")->status.addr, "10.77.0.1");

	/* Nothing left to do. */
	assert_int_equal(run_subnets(f, &cmd), 0);
	assert_int_equal(cmd.n_ops, 0);
	command_free(&cmd);

	/* A freed subnet is the lowest free again. */
	set_subnet(f, "a", NULL);
	set_subnet(f, "d", NULL);
	assert_int_equal(run_subnets(f, &cmd), 0);
	fx_apply(f, &cmd);
	assert_string_equal(subnet_of(f, "a"), "10.89.2.0/24");
	assert_string_equal(subnet_of(f, "d"), "10.89.4.0/24");
	fx_free(f);
}

static void test_subnets_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "10.89.0.0/24",
	    "10.89.255.0/24",
	    "10.89.7.0/16",
	    "10.88.7.0/24",
	    "10.89.7.1/24",
	    "10.89.07.0/24",
	    " 10.89.7.0/24",
	    "10.89.7.0/24 ",
	    "10.89.7.0/24 x",
	    "10.89.+7.0/24",
	    "10.89.-7.0/24",
	    "10.89.7.0",
	    "10.89.7.0/24/8",
	    "10.89. 7.0/24",
	    "10.89.4294967303.0/24",
	    "garbage",
	};
	struct fx *f = fx_new();
	struct command cmd;
	char id[16], want[20];

	(void)state;
	add_node(f, "aa", "10.89.1.0/24", NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(id, sizeof(id), "n%02zu", i);
		add_node(f, id, bad[i], NULL);
	}
	assert_int_equal(run_subnets(f, &cmd), 0);
	assert_int_equal(cmd.n_ops, sizeof(bad) / sizeof(bad[0]));
	fx_apply(f, &cmd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(id, sizeof(id), "n%02zu", i);
		snprintf(want, sizeof(want), "10.89.%zu.0/24", i + 2);
		assert_string_equal(subnet_of(f, id), want);
	}
	fx_free(f);
}

static void test_subnets_pool_full(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	char id[16], subnet[20];

	(void)state;
	command_init(&cmd);
	for (unsigned k = 1; k <= MESH_POOL_MAX; k++) {
		struct node_rec n;

		snprintf(id, sizeof(id), "n%03u", k);
		snprintf(subnet, sizeof(subnet), "10.89.%u.0/24", k);
		node_fill(&n, id, subnet, NULL);
		assert_int_equal(command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, &n, NULL), 0);
		node_rec_free(&n);
	}
	fx_apply(f, &cmd);
	add_node(f, "x1", NULL, NULL);
	add_node(f, "x2", "10.89.0.0/24", NULL);
	assert_int_equal(run_subnets(f, &cmd), 2);
	assert_int_equal(cmd.n_ops, 0);
	command_free(&cmd);

	/* One frees up: one of the two gets it, the other is still left. */
	set_subnet(f, "n100", NULL);
	assert_int_equal(run_subnets(f, &cmd), 2);
	assert_int_equal(cmd.n_ops, 1);
	assert_string_equal(cmd.ops[0].id, "n100");
	fx_apply(f, &cmd);
	assert_string_equal(subnet_of(f, "n100"), "10.89.100.0/24");
	fx_free(f);
}

/* ---- the table ---- */

/* Nodes n1..n6, services "api" (live green) and "web" (live unset: blue), their tasks. */
static struct fx *world(void)
{
	static const struct port_def web_ports[] = {
	    {NULL, NULL, 8080, 80},	    /* tcp ingress by default */
	    {"udp", "ingress", 5353, 53},   /* not TCP */
	    {"tcp", "host", 9000, 90},	    /* not ingress */
	    {"tcp", "ingress", 0, 81},	    /* not published */
	    {"tcp", "ingress", 8081, 8000}, /* a second one */
	};
	static const struct port_def api_ports[] = {{"tcp", "ingress", 8443, 443}};
	static const struct port_def db_ports[] = {{"tcp", "host", 5432, 5432}};
	struct fx *f = fx_new();

	add_node(f, "n1", "10.89.1.0/24", "10.77.0.1");
	add_node(f, "n2", "10.89.2.0/24", "10.77.0.2");
	add_node(f, "n3", "10.89.3.0/24", NULL);	  /* no address */
	add_node(f, "n4", NULL, "10.77.0.4");		  /* no subnet */
	add_node(f, "n5", "10.89.5.0/24", "");		  /* empty address */
	add_node(f, "n6", "10.89.6.0/24 x", "10.77.0.6"); /* malformed subnet */
	add_service(f, "web", web_ports, sizeof(web_ports) / sizeof(web_ports[0]), NULL);
	add_service(f, "api", api_ports, 1, "green");
	add_service(f, "db", db_ports, 1, NULL);
	add_task(f, "t1", "web", TASK_RUNNING, TASK_RUNNING, "10.89.2.5", NULL);
	add_task(f, "t2", "web", TASK_RUNNING, TASK_RUNNING, "10.89.1.5", "blue");
	add_task(f, "t3", "web", TASK_RUNNING, TASK_SHUTDOWN, "10.89.1.6", NULL);
	add_task(f, "t4", "web", TASK_STARTING, TASK_RUNNING, "10.89.1.7", NULL);
	add_task(f, "t5", "web", TASK_RUNNING, TASK_RUNNING, NULL, NULL);
	add_task(f, "t6", "web", TASK_RUNNING, TASK_RUNNING, "10.89.1.8", "green");
	add_task(f, "t7", "web", TASK_RUNNING, TASK_RUNNING, "not-an-ip", NULL);
	add_task(f, "a1", "api", TASK_RUNNING, TASK_RUNNING, "10.89.1.9", "green");
	add_task(f, "a2", "api", TASK_RUNNING, TASK_RUNNING, "10.89.1.10", NULL);
	add_task(f, "d1", "db", TASK_RUNNING, TASK_RUNNING, "10.89.1.11", NULL);
	return f;
}

static void assert_ep(const struct mesh_endpoint *e, const char *addr, uint16_t port)
{
	char buf[INET_ADDRSTRLEN];

	assert_non_null(inet_ntop(AF_INET, &e->addr, buf, sizeof(buf)));
	assert_string_equal(buf, addr);
	assert_int_equal(e->port, port);
}

static void test_build(void **state)
{
	struct fx *f = world();
	struct mesh_table t;

	(void)state;
	assert_int_equal(mesh_table_build(f->s, "n1", &t, NULL), 0);
	assert_string_equal(t.subnet, "10.89.1.0/24");
	assert_int_equal(t.n_routes, 1);
	assert_string_equal(t.routes[0].subnet, "10.89.2.0/24");
	assert_string_equal(t.routes[0].via, "10.77.0.2");

	/* Services in id order: api, db (nothing), web; tasks in id order. */
	assert_int_equal(t.n_ports, 3);
	assert_int_equal(t.ports[0].published, 8443);
	assert_int_equal(t.ports[0].n_eps, 1);
	assert_ep(&t.ports[0].eps[0], "10.89.1.9", 443);
	assert_int_equal(t.ports[1].published, 8080);
	assert_int_equal(t.ports[1].n_eps, 2);
	assert_ep(&t.ports[1].eps[0], "10.89.2.5", 80);
	assert_ep(&t.ports[1].eps[1], "10.89.1.5", 80);
	assert_int_equal(t.ports[2].published, 8081);
	assert_int_equal(t.ports[2].n_eps, 2);
	assert_ep(&t.ports[2].eps[0], "10.89.2.5", 8000);
	assert_ep(&t.ports[2].eps[1], "10.89.1.5", 8000);
	mesh_table_free(&t);
	assert_int_equal(t.n_ports, 0);
	mesh_table_free(&t); /* twice is fine */

	/* A node without a subnet routes to every node that has one and an address. */
	assert_int_equal(mesh_table_build(f->s, "n4", &t, NULL), 0);
	assert_string_equal(t.subnet, "");
	assert_int_equal(t.n_routes, 2);
	assert_string_equal(t.routes[0].subnet, "10.89.1.0/24");
	assert_string_equal(t.routes[0].via, "10.77.0.1");
	assert_string_equal(t.routes[1].subnet, "10.89.2.0/24");
	assert_string_equal(t.routes[1].via, "10.77.0.2");
	assert_int_equal(t.n_ports, 3);
	mesh_table_free(&t);

	/* A node without an address still has its subnet; unknown node: no subnet. */
	assert_int_equal(mesh_table_build(f->s, "n3", &t, NULL), 0);
	assert_string_equal(t.subnet, "10.89.3.0/24");
	assert_int_equal(t.n_routes, 2);
	mesh_table_free(&t);
	assert_int_equal(mesh_table_build(f->s, "nope", &t, NULL), 0);
	assert_string_equal(t.subnet, "");
	assert_int_equal(t.n_routes, 2);
	mesh_table_free(&t);
	fx_free(f);
}

static void test_build_empty(void **state)
{
	struct fx *f = fx_new();
	struct mesh_table t;

	(void)state;
	assert_int_equal(mesh_table_build(f->s, "n1", &t, NULL), 0);
	assert_string_equal(t.subnet, "");
	assert_int_equal(t.n_routes, 0);
	assert_int_equal(t.n_ports, 0);
	mesh_table_free(&t);
	fx_free(f);
}

static void promote_green(struct fx *f)
{
	const struct service_rec *cur = store_get(f->s, RECORD_SERVICES, "web");
	struct command cmd;
	struct service_rec *s;

	assert_non_null(cur);
	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, cur->meta.version, cur, NULL), 0);
	s = cmd.ops[0].record;
	free(s->deployment.live_color);
	s->deployment.live_color = fx_strdup("green");
	fx_apply(f, &cmd);
}

static void test_build_live_color(void **state)
{
	struct fx *f = world();
	struct mesh_table t;

	(void)state;
	promote_green(f);
	assert_int_equal(mesh_table_build(f->s, "n1", &t, NULL), 0);
	assert_int_equal(t.ports[1].published, 8080);
	assert_int_equal(t.ports[1].n_eps, 1);
	assert_ep(&t.ports[1].eps[0], "10.89.1.8", 80);
	mesh_table_free(&t);
	fx_free(f);
}

static void msg_edit(struct task_rec *t)
{
	free(t->status.message);
	t->status.message = fx_strdup("still running");
}

static void addr_edit(struct task_rec *t)
{
	free(t->addr);
	t->addr = fx_strdup("10.89.2.6");
}

static void stop_edit(struct task_rec *t)
{
	t->status.state = TASK_SHUTDOWN;
}

static void run_edit(struct task_rec *t)
{
	t->status.state = TASK_RUNNING;
}

static void test_fp(void **state)
{
	struct fx *f = world();
	uint64_t fp = mesh_table_fp(f->s), next;

	(void)state;
	assert_int_equal(mesh_table_fp(f->s), fp);

	/* What no table shows: the same. */
	edit_task(f, "t1", msg_edit);
	assert_int_equal(mesh_table_fp(f->s), fp);
	edit_task(f, "t3", addr_edit); /* not desired running */
	assert_int_equal(mesh_table_fp(f->s), fp);
	edit_task(f, "t6", stop_edit); /* not the live color */
	assert_int_equal(mesh_table_fp(f->s), fp);
	edit_task(f, "d1", addr_edit); /* a host-mode port */
	assert_int_equal(mesh_table_fp(f->s), fp);
	add_task(f, "t8", "web", TASK_STARTING, TASK_RUNNING, "10.89.1.20", NULL);
	assert_int_equal(mesh_table_fp(f->s), fp);

	/* An endpoint's address, an endpoint coming or going. */
	edit_task(f, "t1", addr_edit);
	next = mesh_table_fp(f->s);
	assert_true(next != fp);
	fp = next;
	edit_task(f, "t8", run_edit);
	next = mesh_table_fp(f->s);
	assert_true(next != fp);
	fp = next;
	edit_task(f, "t2", stop_edit);
	next = mesh_table_fp(f->s);
	assert_true(next != fp);
	fp = next;

	/* A node's subnet, or one getting its first. */
	set_subnet(f, "n2", "10.89.9.0/24");
	next = mesh_table_fp(f->s);
	assert_true(next != fp);
	fp = next;
	set_subnet(f, "n4", "10.89.4.0/24");
	next = mesh_table_fp(f->s);
	assert_true(next != fp);
	fp = next;

	/* The live color switching moves the endpoints. */
	promote_green(f);
	assert_true(mesh_table_fp(f->s) != fp);
	fx_free(f);
}

/* ---- msgpack ---- */

static void pack(const struct mesh_table *t, msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	assert_int_equal(mesh_table_pack(t, &pk), 0);
}

/* mesh_table_unpack() of @len bytes; the result is freed unless @out. */
static int unpack_bytes(const void *buf, size_t len, struct mesh_table *out)
{
	struct shoal_err err = {0};
	struct mesh_table t;
	msgpack_unpacked u;
	int rv;

	msgpack_unpacked_init(&u);
	assert_int_equal(schema_msgpack_parse(buf, len, &u, NULL), 0);
	memset(&t, 0xa5, sizeof(t));
	rv = mesh_table_unpack(&u.data, &t, &err);
	msgpack_unpacked_destroy(&u);
	if (rv != 0) {
		assert_true(err.msg[0] != '\0');
		/* Nothing left behind for the caller to free. */
		assert_null(t.routes);
		assert_null(t.ports);
		assert_int_equal(t.n_routes, 0);
		assert_int_equal(t.n_ports, 0);
	} else if (out != NULL) {
		*out = t;
	} else {
		mesh_table_free(&t);
	}
	return rv;
}

static void test_round_trip(void **state)
{
	struct fx *f = world();
	struct mesh_table t, back, copy, empty = {0}, empty_back;
	msgpack_sbuffer sb;

	(void)state;
	assert_int_equal(mesh_table_build(f->s, "n4", &t, NULL), 0);
	pack(&t, &sb);
	assert_int_equal(unpack_bytes(sb.data, sb.size, &back), 0);
	msgpack_sbuffer_destroy(&sb);
	assert_true(mesh_table_equal(&t, &back));
	assert_int_equal(mesh_table_copy(&copy, &t, NULL), 0);
	assert_true(mesh_table_equal(&copy, &t));
	assert_true(copy.ports[1].eps != t.ports[1].eps); /* its own */

	/* Any difference shows. */
	copy.routes[1].via[8] = '9';
	assert_false(mesh_table_equal(&copy, &t));
	copy.routes[1].via[8] = t.routes[1].via[8];
	((struct mesh_endpoint *)(uintptr_t)copy.ports[2].eps)[1].port++;
	assert_false(mesh_table_equal(&copy, &t));
	((struct mesh_endpoint *)(uintptr_t)copy.ports[2].eps)[1].port--;
	assert_true(mesh_table_equal(&copy, &t));
	copy.n_ports--;
	assert_false(mesh_table_equal(&copy, &t));
	copy.n_ports++;
	copy.subnet[0] = 'x';
	assert_false(mesh_table_equal(&copy, &t));
	mesh_table_free(&copy);
	mesh_table_free(&back);
	mesh_table_free(&t);

	/* The empty table, and its copy. */
	pack(&empty, &sb);
	assert_int_equal(unpack_bytes(sb.data, sb.size, &empty_back), 0);
	msgpack_sbuffer_destroy(&sb);
	assert_true(mesh_table_equal(&empty, &empty_back));
	mesh_table_free(&empty_back);
	assert_int_equal(mesh_table_copy(&copy, &empty, NULL), 0);
	assert_true(mesh_table_equal(&copy, &empty));
	mesh_table_free(&copy);
	fx_free(f);
}

/* Hand-made input: the packer and buffer, started as [subnet, routes, ports] by @start. */
struct raw {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void raw_init(struct raw *r)
{
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}

static void raw_str(struct raw *r, const char *s, size_t n)
{
	msgpack_pack_str(&r->pk, n);
	msgpack_pack_str_body(&r->pk, s, n);
}

static int raw_unpack(struct raw *r)
{
	int rv = unpack_bytes(r->sb.data, r->sb.size, NULL);

	msgpack_sbuffer_destroy(&r->sb);
	return rv;
}

/* [subnet, [], [[port, [[addr, ep_port]]]]]: one port with one endpoint. */
static int one_port(const char *subnet, int64_t port, int64_t addr, int64_t ep_port)
{
	struct raw r;

	raw_init(&r);
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, subnet, strlen(subnet));
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 2); /* a good port first: a refusal must free it */
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint16(&r.pk, 1);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint32(&r.pk, 0x0a590105);
	msgpack_pack_uint16(&r.pk, 80);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_int64(&r.pk, port);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_array(&r.pk, 2); /* a good endpoint first */
	msgpack_pack_uint32(&r.pk, 0x0a590106);
	msgpack_pack_uint16(&r.pk, 80);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_int64(&r.pk, addr);
	msgpack_pack_int64(&r.pk, ep_port);
	return raw_unpack(&r);
}

/* [subnet, [[rsubnet, via]], []] with the strings' lengths given (NULs allowed). */
static int one_route(const char *subnet, size_t sn, const char *rsub, size_t rn, const char *via,
		     size_t vn)
{
	struct raw r;

	raw_init(&r);
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, subnet, sn);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_array(&r.pk, 2);
	raw_str(&r, "10.89.1.0/24", 12);
	raw_str(&r, "10.77.0.1", 9);
	msgpack_pack_array(&r.pk, 2);
	raw_str(&r, rsub, rn);
	raw_str(&r, via, vn);
	msgpack_pack_array(&r.pk, 0);
	return raw_unpack(&r);
}

/* The longest strings a table holds: subnets 19 bytes, a via 15. */
#define S19 "10.89.100.0/24 wxyz"
#define V15 "255.255.255.255"

static void test_unpack_good_edges(void **state)
{
	struct mesh_table t;
	struct raw r;

	(void)state;
	assert_int_equal(one_port("", 65535, UINT32_MAX, 65535), 0);
	assert_int_equal(one_port("10.89.1.0/24", 1, 0, 1), 0);
	assert_int_equal(one_route("", 0, "", 0, "", 0), 0);
	assert_int_equal(one_route(S19, strlen(S19), S19, strlen(S19), V15, strlen(V15)), 0);

	/* Values land where they belong. */
	raw_init(&r);
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "10.89.7.0/24", 12);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint16(&r.pk, 8080);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint32(&r.pk, 0x0a590105);
	msgpack_pack_uint16(&r.pk, 80);
	assert_int_equal(unpack_bytes(r.sb.data, r.sb.size, &t), 0);
	msgpack_sbuffer_destroy(&r.sb);
	assert_string_equal(t.subnet, "10.89.7.0/24");
	assert_int_equal(t.n_ports, 1);
	assert_int_equal(t.ports[0].published, 8080);
	assert_int_equal(t.ports[0].n_eps, 1);
	assert_ep(&t.ports[0].eps[0], "10.89.1.5", 80);
	mesh_table_free(&t);
}

static void test_unpack_refuses(void **state)
{
	static const char nul_sub[] = "10.89.1.0\0/24";
	static const char nul_via[] = "10.77\0.0.1";
	struct raw r;

	(void)state;
	/* Numbers out of bounds, after good entries that must be freed. */
	assert_int_equal(one_port("", 65536, 1, 80), SHOAL_EPROTO);
	assert_int_equal(one_port("", 0, 1, 80), SHOAL_EPROTO);
	assert_int_equal(one_port("", -1, 1, 80), SHOAL_EPROTO);
	assert_int_equal(one_port("", 80, 1, 65536), SHOAL_EPROTO);
	assert_int_equal(one_port("", 80, 1, 0), SHOAL_EPROTO);
	assert_int_equal(one_port("", 80, 1, -80), SHOAL_EPROTO);
	assert_int_equal(one_port("", 80, (int64_t)UINT32_MAX + 1, 80), SHOAL_EPROTO);
	assert_int_equal(one_port("", 80, -1, 80), SHOAL_EPROTO);

	/* Strings: too long, with a NUL. */
	assert_int_equal(one_route(S19 "0", strlen(S19) + 1, "", 0, "", 0), SHOAL_EPROTO);
	assert_int_equal(one_route("", 0, S19 "0", strlen(S19) + 1, "", 0), SHOAL_EPROTO);
	assert_int_equal(one_route("", 0, "", 0, V15 "0", strlen(V15) + 1), SHOAL_EPROTO);
	assert_int_equal(one_route(nul_sub, sizeof(nul_sub) - 1, "", 0, "", 0), SHOAL_EPROTO);
	assert_int_equal(one_route("", 0, nul_sub, sizeof(nul_sub) - 1, "", 0), SHOAL_EPROTO);
	assert_int_equal(one_route("", 0, "", 0, nul_via, sizeof(nul_via) - 1), SHOAL_EPROTO);

	/* Not an array, wrong arity, wrong types. */
	raw_init(&r);
	msgpack_pack_map(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	for (uint32_t n = 0; n < 6; n++) {
		if (n == 3)
			continue;
		raw_init(&r);
		msgpack_pack_array(&r.pk, n);
		for (uint32_t i = 0; i < n; i++)
			if (i == 0)
				raw_str(&r, "", 0);
			else
				msgpack_pack_array(&r.pk, 0);
		assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	}
	raw_init(&r); /* subnet a number */
	msgpack_pack_array(&r.pk, 3);
	msgpack_pack_uint8(&r.pk, 1);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* subnet bin, not str */
	msgpack_pack_array(&r.pk, 3);
	msgpack_pack_bin(&r.pk, 1);
	msgpack_pack_bin_body(&r.pk, "x", 1);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* routes a map */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_map(&r.pk, 0);
	msgpack_pack_array(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* ports nil */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_nil(&r.pk);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* a route of three */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	raw_str(&r, "", 0);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* a route's via a number */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	raw_str(&r, "", 0);
	msgpack_pack_uint8(&r.pk, 1);
	msgpack_pack_array(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* a port of one, then a port's endpoints a string */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_uint16(&r.pk, 80);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r);
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint16(&r.pk, 80);
	raw_str(&r, "x", 1);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* an endpoint of three */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint16(&r.pk, 80);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 3);
	msgpack_pack_uint8(&r.pk, 1);
	msgpack_pack_uint8(&r.pk, 1);
	msgpack_pack_uint8(&r.pk, 1);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
	raw_init(&r); /* a port number a float */
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, 0);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_double(&r.pk, 80.0);
	msgpack_pack_array(&r.pk, 0);
	assert_int_equal(raw_unpack(&r), SHOAL_EPROTO);
}

/* [""; [] or @n_routes routes; @n_ports ports, the first with @n_eps endpoints]. */
static int many(uint32_t n_routes, uint32_t n_ports, uint32_t n_eps)
{
	struct raw r;

	raw_init(&r);
	msgpack_pack_array(&r.pk, 3);
	raw_str(&r, "", 0);
	msgpack_pack_array(&r.pk, n_routes);
	for (uint32_t i = 0; i < n_routes; i++) {
		msgpack_pack_array(&r.pk, 2);
		raw_str(&r, "10.89.1.0/24", 12);
		raw_str(&r, "10.77.0.1", 9);
	}
	msgpack_pack_array(&r.pk, n_ports);
	for (uint32_t i = 0; i < n_ports; i++) {
		uint32_t n = i == 0 ? n_eps : 0;

		msgpack_pack_array(&r.pk, 2);
		msgpack_pack_uint16(&r.pk, (uint16_t)(i + 1));
		msgpack_pack_array(&r.pk, n);
		for (uint32_t e = 0; e < n; e++) {
			msgpack_pack_array(&r.pk, 2);
			msgpack_pack_uint32(&r.pk, 0x0a590100 + e);
			msgpack_pack_uint16(&r.pk, 80);
		}
	}
	return raw_unpack(&r);
}

static void test_unpack_counts(void **state)
{
	(void)state;
	assert_int_equal(many(MESH_POOL_MAX, MESH_MAX_PORTS, MESH_MAX_ENDPOINTS), 0);
	assert_int_equal(many(MESH_POOL_MAX + 1, 1, 1), SHOAL_EPROTO);
	assert_int_equal(many(1, MESH_MAX_PORTS + 1, 1), SHOAL_EPROTO);
	assert_int_equal(many(1, 2, MESH_MAX_ENDPOINTS + 1), SHOAL_EPROTO);
}

static void test_gateway(void **state)
{
	static const char *const bad[] = {
	    "",
	    "10.89.1.0",
	    "10.89.1.255/24",
	    "10.89.1.0/7",
	    "10.89.1.0/31",
	    "10.89.1.0/33",
	    "256.0.0.0/24",
	    "10.89.1/24",
	    "10.89.1.0.0/24",
	    "10.89.1.0/24 ",
	    " 10.89.1.0/24",
	    "10.89.-1.0/24",
	    "10.89.+1.0/24",
	    "10.89.01.0/24",
	    "a.b.c.d/24",
	    "10.89.1.0/24x",
	    "4294967306.89.1.0/24",
	    "10.89.1.0/",
	    "10.89.1.0//24",
	};
	struct shoal_err err;
	char out[20];

	(void)state;
	assert_int_equal(mesh_subnet_gateway("10.89.3.0/24", out, NULL), 0);
	assert_string_equal(out, "10.89.3.1/24");
	assert_int_equal(mesh_subnet_gateway("0.0.0.0/8", out, NULL), 0);
	assert_string_equal(out, "0.0.0.1/8");
	assert_int_equal(mesh_subnet_gateway("255.255.255.254/30", out, NULL), 0);
	assert_string_equal(out, "255.255.255.255/30");
	assert_int_equal(mesh_subnet_gateway("172.16.0.0/12", out, NULL), 0);
	assert_string_equal(out, "172.16.0.1/12");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'z', sizeof(out));
		err.msg[0] = '\0';
		assert_int_equal(mesh_subnet_gateway(bad[i], out, &err), SHOAL_EINVAL);
		assert_true(strstr(err.msg, "is not a subnet") != NULL);
		assert_int_equal(out[0], 'z');
	}
	assert_int_equal(mesh_subnet_gateway(NULL, out, &err), SHOAL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subnets_lowest_free),
	    cmocka_unit_test(test_subnets_malformed),
	    cmocka_unit_test(test_subnets_pool_full),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_build_empty),
	    cmocka_unit_test(test_build_live_color),
	    cmocka_unit_test(test_fp),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_unpack_good_edges),
	    cmocka_unit_test(test_unpack_refuses),
	    cmocka_unit_test(test_unpack_counts),
	    cmocka_unit_test(test_gateway),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
