/* Unit tests of node/scheduler: Docker's filters, spread and messages on stores built from
 * commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/orchestrator.h"
#include "node/records_svc.h"
#include "node/scheduler.h"
#include "node/store.h"
#include "raft/fsm.h"

#define SEC 1000000000ll

struct fx {
	struct store *s;
	uint64_t index;
	const char *down[8]; /* nodes node_up() calls down */
	unsigned long ids;
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(store_new(&f->s, NULL), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	store_free(f->s);
	free(f);
}

/* Encode @cmd, free it and apply it; the store must accept it. */
static void apply(struct fx *f, struct command *cmd)
{
	struct consensus_fsm fsm;
	void *buf, *result;
	size_t len;

	assert_int_equal(command_encode(cmd, &buf, &len, NULL), 0);
	command_free(cmd);
	store_fsm(f->s, &fsm);
	assert_int_equal(fsm.apply(fsm.arg, ++f->index, buf, len, &result), 0);
	assert_int_equal(store_result_code(result), 0);
	free(buf);
}

static bool up(void *arg, const char *id)
{
	struct fx *f = arg;

	for (size_t i = 0; i < 8 && f->down[i] != NULL; i++)
		if (strcmp(f->down[i], id) == 0)
			return false;
	return true;
}

/* A ready, active worker with 2 CPUs and 1 GiB; labels "k=v,k2=v2". */
static void add_node(struct fx *f, const char *id, enum node_availability av, const char *labels)
{
	struct command cmd;
	struct node_rec n;
	char buf[128], *save = NULL;

	command_init(&cmd);
	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.meta.id = xstrdup(id);
	n.description.hostname = xstrdup(id);
	n.description.platform.os = xstrdup("linux");
	n.description.platform.architecture = xstrdup("x86_64");
	n.description.resources.nano_cpus = 2 * SEC;
	n.description.resources.memory_bytes = 1ll << 30;
	n.status.state = NODE_STATE_READY;
	n.spec.availability = av;
	snprintf(buf, sizeof(buf), "%s", labels != NULL ? labels : "");
	for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		*eq = '\0';
		assert_int_equal(schema_map_set(&n.spec.labels, kv, eq + 1, NULL), 0);
	}
	assert_int_equal(command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, &n, NULL), 0);
	node_rec_free(&n);
	apply(f, &cmd);
}

static const struct task_rec *task(struct fx *f, const char *id)
{
	const struct task_rec *t = store_get(f->s, RECORD_TASKS, id);

	assert_non_null(t);
	return t;
}

/* Write a task; @tweak edits it first. */
static void add_task(struct fx *f, const char *id, const char *svc, uint64_t slot, const char *node,
		     enum task_state st, enum task_state desired, int64_t created,
		     void (*tweak)(struct task_rec *))
{
	struct command cmd;
	struct task_rec t;

	command_init(&cmd);
	assert_int_equal(task_rec_defaults(&t, NULL), 0);
	t.meta.id = xstrdup(id);
	t.meta.created_at = created;
	t.service_id = xstrdup(svc);
	t.slot = slot;
	t.node_id = node != NULL ? xstrdup(node) : NULL;
	t.status.state = st;
	t.status.timestamp = created;
	t.desired_state = desired;
	t.spec.restart_policy.condition = xstrdup("any");
	t.spec.restart_policy.delay = 5 * SEC;
	if (tweak != NULL)
		tweak(&t);
	assert_int_equal(command_put(&cmd, RECORD_TASKS, COMMAND_EXPECT_ANY, &t, NULL), 0);
	task_rec_free(&t);
	apply(f, &cmd);
}

static const struct command_op *op_for(const struct command *cmd, const char *id)
{
	for (size_t i = 0; i < cmd->n_ops; i++)
		if (strcmp(cmd->ops[i].id, id) == 0)
			return &cmd->ops[i];
	return NULL;
}

static const struct task_rec *put_for(const struct command *cmd, const char *id)
{
	const struct command_op *op = op_for(cmd, id);

	assert_non_null(op);
	assert_int_equal(op->kind, COMMAND_PUT);
	assert_int_equal(op->table, RECORD_TASKS);
	return op->record;
}

/* Encode @cmd into a malloc'd buffer, for byte comparisons. */
static void *encoded(const struct command *cmd, size_t *len)
{
	void *buf;

	assert_int_equal(command_encode(cmd, &buf, len, NULL), 0);
	return buf;
}

static void tweak_zone(struct task_rec *t)
{
	assert_int_equal(schema_strlist_append(&t->spec.placement.constraints,
					       " node.labels.zone == east ", NULL),
			 0);
}

static void tweak_cpu(struct task_rec *t)
{
	t->spec.resources.reservations.nano_cpus = 1200000000; /* 1.2 of 2 CPUs: one per node */
}

static void tweak_max1(struct task_rec *t)
{
	t->spec.placement.max_replicas = 1;
}

static int sched(struct fx *f, struct command *cmd, struct sched_stats *st)
{
	struct sched_env env = {.now_ns = 100 * SEC, .node_up = up, .arg = f};

	command_init(cmd);
	return scheduler_run(f->s, &env, cmd, st, NULL);
}

static void spreads_evenly_and_deterministically(void **state)
{
	struct fx *f = fx_new();
	struct command a, b;
	struct sched_stats st;
	size_t alen, blen, per[3] = {0};
	void *x, *y;
	char id[8];

	(void)state;
	add_node(f, "nb", NODE_AVAILABILITY_ACTIVE, NULL);
	add_node(f, "na", NODE_AVAILABILITY_ACTIVE, NULL);
	add_node(f, "nc", NODE_AVAILABILITY_ACTIVE, NULL);
	/* na already runs one task of the service and one of another. */
	add_task(f, "old1", "svc", 9, "na", TASK_RUNNING, TASK_RUNNING, 1, NULL);
	add_task(f, "old2", "other", 1, "na", TASK_RUNNING, TASK_RUNNING, 1, NULL);
	add_task(f, "old3", "other", 2, "nb", TASK_RUNNING, TASK_RUNNING, 1, NULL);
	for (int i = 1; i <= 5; i++) {
		snprintf(id, sizeof(id), "t%d", i);
		add_task(f, id, "svc", (uint64_t)i, NULL, i == 5 ? TASK_PENDING : TASK_NEW,
			 TASK_RUNNING, 10 + i, NULL);
	}
	assert_int_equal(sched(f, &a, &st), 0);
	assert_int_equal(st.considered, 5);
	assert_int_equal(st.placed, 5);
	assert_int_equal(st.pending, 0);
	assert_int_equal(a.n_ops, 5);
	/* Fewest of the service, then fewest overall, then lowest id. */
	assert_string_equal(put_for(&a, "t1")->node_id, "nc");
	assert_string_equal(put_for(&a, "t2")->node_id, "nb");
	assert_string_equal(put_for(&a, "t3")->node_id, "nc");
	assert_string_equal(put_for(&a, "t4")->node_id, "na");
	assert_string_equal(put_for(&a, "t5")->node_id, "nb");
	for (int i = 1; i <= 5; i++) {
		const struct task_rec *t;

		snprintf(id, sizeof(id), "t%d", i);
		t = put_for(&a, id);
		assert_int_equal(t->status.state, TASK_ASSIGNED);
		assert_string_equal(t->status.message, "scheduler assigned task to node");
		assert_int_equal(t->status.timestamp, 100 * SEC);
		assert_int_equal(op_for(&a, id)->expect_version, task(f, id)->meta.version);
		per[t->node_id[1] - 'a']++;
	}
	assert_int_equal(per[0] + 1, 2);
	assert_int_equal(per[1], 2);
	assert_int_equal(per[2], 2);
	/* Same store, same bytes. */
	assert_int_equal(sched(f, &b, NULL), 0);
	x = encoded(&a, &alen);
	y = encoded(&b, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(x, y, alen);
	free(x);
	free(y);
	command_free(&b);
	apply(f, &a);
	/* Placed tasks are left alone. */
	assert_int_equal(sched(f, &a, &st), 0);
	assert_int_equal(a.n_ops, 0);
	assert_int_equal(st.considered, 0);
	fx_free(f);
}

static void constraints_parse_like_docker(void **state)
{
	struct sched_constraint c;
	struct shoal_err err;
	struct schema_strlist l = {0};

	(void)state;
	assert_int_equal(sched_constraint_parse("  node.labels.Zone  !=  East ", &c, NULL), 0);
	assert_false(c.equal);
	assert_int_equal(c.kind, SCHED_KEY_NODE_LABEL);
	assert_string_equal(c.key, "node.labels.Zone");
	assert_string_equal(c.label, "Zone");
	assert_string_equal(c.value, "East");
	sched_constraint_free(&c);
	assert_int_equal(sched_constraint_parse("NODE.ROLE==manager", &c, NULL), 0);
	assert_int_equal(c.kind, SCHED_KEY_ROLE);
	assert_true(c.equal);
	sched_constraint_free(&c);
	assert_int_equal(sched_constraint_parse("node.role=manager", &c, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "constraint expected one operator from ==, !=");
	assert_int_equal(sched_constraint_parse("node role==x", &c, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "key 'node role' is invalid");
	assert_int_equal(sched_constraint_parse("node.id==", &c, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "value '' is invalid");
	assert_int_equal(sched_constraint_parse("node.id==a>b", &c, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "value 'a>b' is invalid");
	assert_int_equal(sched_constraint_parse("a==b", &c, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "key 'a' is invalid");
	assert_int_equal(schema_strlist_append(&l, "node.hostname==x", NULL), 0);
	assert_int_equal(sched_constraints_check(&l, NULL), 0);
	assert_int_equal(schema_strlist_append(&l, "node.hostname", NULL), 0);
	assert_int_equal(sched_constraints_check(&l, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "constraint expected one operator from ==, !=");
	for (size_t i = 0; i < l.n; i++)
		free(l.items[i]);
	free(l.items);
}

static bool matches(const char *expr, const struct node_rec *n)
{
	struct sched_constraint c;
	bool m;

	assert_int_equal(sched_constraint_parse(expr, &c, NULL), 0);
	m = sched_constraint_match(&c, n);
	sched_constraint_free(&c);
	return m;
}

static void constraints_match_node_fields(void **state)
{
	struct fx *f = fx_new();
	const struct node_rec *n;

	(void)state;
	add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, "zone=east");
	n = store_node_get(f->s, "n1");
	assert_true(matches("node.id==n1", n));
	assert_true(matches("node.id!=n2", n));
	assert_true(matches("node.hostname==N1", n)); /* values are case-insensitive */
	assert_true(matches("node.role==worker", n));
	assert_false(matches("node.role==manager", n));
	assert_true(matches("node.platform.os==linux", n));
	assert_true(matches("node.platform.arch==x86_64", n));
	assert_true(matches("node.platform.arch==amd64", n));
	assert_true(matches("node.labels.zone==east", n));
	assert_false(matches("node.labels.Zone==east", n)); /* label keys are case-sensitive */
	assert_true(matches("node.labels.rack!=r1", n));    /* absent: != holds */
	assert_false(matches("node.labels.rack==r1", n));
	assert_false(matches("engine.labels.x==y", n));
	assert_true(matches("engine.labels.x!=y", n));
	assert_false(matches("node.colour==red", n)); /* unknown keys match nothing */
	assert_false(matches("node.colour!=red", n));
	fx_free(f);
}

static void unplaceable_tasks_get_dockers_reasons(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	struct sched_stats st;
	const struct task_rec *t;

	(void)state;
	add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, "zone=west");
	add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, "zone=west");
	add_node(f, "n3", NODE_AVAILABILITY_DRAIN, "zone=east");
	add_task(f, "t1", "svc", 1, NULL, TASK_NEW, TASK_RUNNING, 1, tweak_zone);
	add_task(f, "t2", "svc", 2, NULL, TASK_NEW, TASK_RUNNING, 2, tweak_zone);
	add_task(f, "t3", "svc", 3, NULL, TASK_NEW, TASK_SHUTDOWN, 3, tweak_zone);
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(st.considered, 2);
	assert_int_equal(st.pending, 2);
	assert_int_equal(cmd.n_ops, 2);
	t = put_for(&cmd, "t1");
	assert_int_equal(t->status.state, TASK_PENDING);
	assert_null(t->node_id);
	assert_string_equal(t->status.message, "pending task scheduling");
	assert_string_equal(t->status.err, "no suitable node (scheduling constraints not satisfied "
					   "on 2 nodes; 1 node not available for new tasks)");
	apply(f, &cmd);
	/* Nothing changed: nothing written. */
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(cmd.n_ops, 0);
	assert_int_equal(st.pending, 2);
	/* The reason changes: written again; a node coming up takes them. */
	f->down[0] = "n1";
	assert_int_equal(sched(f, &cmd, NULL), 0);
	assert_int_equal(cmd.n_ops, 2);
	assert_string_equal(put_for(&cmd, "t2")->status.err,
			    "no suitable node (2 nodes not available for new tasks; scheduling "
			    "constraints not satisfied on 1 node)");
	command_free(&cmd);
	f->down[0] = NULL;
	add_node(f, "n3", NODE_AVAILABILITY_ACTIVE, "zone=east");
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(st.placed, 2);
	t = put_for(&cmd, "t2");
	assert_string_equal(t->node_id, "n3");
	assert_null(t->status.err);
	command_free(&cmd);
	fx_free(f);
}

static void resources_and_max_replicas_limit_nodes(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	struct sched_stats st;

	(void)state;
	add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, NULL);
	add_node(f, "n3", NODE_AVAILABILITY_ACTIVE, NULL);
	/* n3 is full already: a running task holds 1.2 CPUs. */
	add_task(f, "r0", "big", 1, "n3", TASK_RUNNING, TASK_RUNNING, 1, tweak_cpu);
	add_task(f, "r1", "big", 2, NULL, TASK_NEW, TASK_RUNNING, 2, tweak_cpu);
	add_task(f, "r2", "big", 3, NULL, TASK_NEW, TASK_RUNNING, 3, tweak_cpu);
	add_task(f, "r3", "big", 4, NULL, TASK_NEW, TASK_RUNNING, 4, tweak_cpu);
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(st.placed, 2);
	assert_int_equal(st.pending, 1);
	assert_string_equal(put_for(&cmd, "r1")->node_id, "n1");
	assert_string_equal(put_for(&cmd, "r2")->node_id, "n2");
	assert_string_equal(put_for(&cmd, "r3")->status.err,
			    "no suitable node (insufficient resources on 3 nodes)");
	command_free(&cmd);

	add_task(f, "m1", "one", 1, NULL, TASK_NEW, TASK_RUNNING, 5, tweak_max1);
	add_task(f, "m2", "one", 2, NULL, TASK_NEW, TASK_RUNNING, 6, tweak_max1);
	add_task(f, "m3", "one", 3, NULL, TASK_NEW, TASK_RUNNING, 7, tweak_max1);
	add_task(f, "m4", "one", 4, NULL, TASK_NEW, TASK_RUNNING, 8, tweak_max1);
	f->down[0] = "n1";
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_string_equal(put_for(&cmd, "m1")->node_id, "n2");
	assert_string_equal(put_for(&cmd, "m2")->node_id, "n3");
	assert_string_equal(put_for(&cmd, "m3")->status.err,
			    "no suitable node (max replicas per node limit exceed; 1 node not "
			    "available for new tasks)");
	assert_string_equal(put_for(&cmd, "m4")->status.err, put_for(&cmd, "m3")->status.err);
	command_free(&cmd);
	fx_free(f);
}

static void preassigned_tasks_are_checked_on_their_node(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;

	(void)state;
	add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, NULL);
	add_task(f, "g1", "glob", 0, "n1", TASK_NEW, TASK_RUNNING, 1, NULL);
	add_task(f, "g2", "glob", 0, "n2", TASK_NEW, TASK_RUNNING, 1, NULL);
	add_task(f, "g3", "glob", 0, "gone", TASK_NEW, TASK_RUNNING, 1, NULL);
	f->down[0] = "n2";
	assert_int_equal(sched(f, &cmd, NULL), 0);
	assert_int_equal(cmd.n_ops, 3);
	assert_string_equal(put_for(&cmd, "g1")->node_id, "n1");
	assert_int_equal(put_for(&cmd, "g1")->status.state, TASK_ASSIGNED);
	assert_int_equal(put_for(&cmd, "g2")->status.state, TASK_PENDING);
	assert_string_equal(put_for(&cmd, "g2")->node_id, "n2");
	assert_string_equal(put_for(&cmd, "g2")->status.err,
			    "no suitable node (1 node not available for new tasks)");
	assert_string_equal(put_for(&cmd, "g3")->status.err,
			    "no suitable node (1 node not available for new tasks)");
	command_free(&cmd);
	fx_free(f);
}

static void no_nodes_at_all(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;

	(void)state;
	add_task(f, "t1", "svc", 1, NULL, TASK_NEW, TASK_RUNNING, 1, NULL);
	assert_int_equal(sched(f, &cmd, NULL), 0);
	assert_string_equal(put_for(&cmd, "t1")->status.err, "no suitable node");
	command_free(&cmd);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(spreads_evenly_and_deterministically),
	    cmocka_unit_test(constraints_parse_like_docker),
	    cmocka_unit_test(constraints_match_node_fields),
	    cmocka_unit_test(unplaceable_tasks_get_dockers_reasons),
	    cmocka_unit_test(resources_and_max_replicas_limit_nodes),
	    cmocka_unit_test(preassigned_tasks_are_checked_on_their_node),
	    cmocka_unit_test(no_nodes_at_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
