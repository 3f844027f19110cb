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
#include "tests/unit/svc_fixture.h"

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
	struct sched_env env = {.now_ns = 100 * SEC, .node_up = fx_node_up, .arg = f};

	command_init(cmd);
	return scheduler_run(f->s, &env, cmd, st, NULL);
}

static void spreads_evenly_and_deterministically(void **state)
{
	struct fx *f = fx_new();
	struct command a, b;
	struct sched_stats st;
	size_t per[3] = {0};
	char id[8];

	(void)state;
	fx_add_node(f, "nb", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "na", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "nc", NODE_AVAILABILITY_ACTIVE, NULL);
	/* na already runs one task of the service and one of another. */
	fx_add_task(f, "old1", "svc", 9, "na", TASK_RUNNING, TASK_RUNNING, 1, NULL);
	fx_add_task(f, "old2", "other", 1, "na", TASK_RUNNING, TASK_RUNNING, 1, NULL);
	fx_add_task(f, "old3", "other", 2, "nb", TASK_RUNNING, TASK_RUNNING, 1, NULL);
	for (int i = 1; i <= 5; i++) {
		snprintf(id, sizeof(id), "t%d", i);
		fx_add_task(f, id, "svc", (uint64_t)i, NULL, i == 5 ? TASK_PENDING : TASK_NEW,
			    TASK_RUNNING, 10 + i, NULL);
	}
	assert_int_equal(sched(f, &a, &st), 0);
	assert_int_equal(st.considered, 5);
	assert_int_equal(st.placed, 5);
	assert_int_equal(st.pending, 0);
	assert_int_equal(a.n_ops, 5);
	/* Fewest of the service, then fewest overall, then lowest id. */
	assert_string_equal(fx_put_for(&a, "t1")->node_id, "nc");
	assert_string_equal(fx_put_for(&a, "t2")->node_id, "nb");
	assert_string_equal(fx_put_for(&a, "t3")->node_id, "nc");
	assert_string_equal(fx_put_for(&a, "t4")->node_id, "na");
	assert_string_equal(fx_put_for(&a, "t5")->node_id, "nb");
	for (int i = 1; i <= 5; i++) {
		const struct task_rec *t;

		snprintf(id, sizeof(id), "t%d", i);
		t = fx_put_for(&a, id);
		assert_int_equal(t->status.state, TASK_ASSIGNED);
		assert_string_equal(t->status.message, "scheduler assigned task to node");
		assert_int_equal(t->status.timestamp, 100 * SEC);
		assert_int_equal(fx_op_for(&a, id)->expect_version, fx_task(f, id)->meta.version);
		per[t->node_id[1] - 'a']++;
	}
	assert_int_equal(per[0] + 1, 2);
	assert_int_equal(per[1], 2);
	assert_int_equal(per[2], 2);
	/* Same store, same bytes. */
	assert_int_equal(sched(f, &b, NULL), 0);
	fx_assert_same_bytes(&a, &b);
	command_free(&b);
	fx_apply(f, &a);
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
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, "zone=east");
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
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, "zone=west");
	fx_add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, "zone=west");
	fx_add_node(f, "n3", NODE_AVAILABILITY_DRAIN, "zone=east");
	fx_add_task(f, "t1", "svc", 1, NULL, TASK_NEW, TASK_RUNNING, 1, tweak_zone);
	fx_add_task(f, "t2", "svc", 2, NULL, TASK_NEW, TASK_RUNNING, 2, tweak_zone);
	fx_add_task(f, "t3", "svc", 3, NULL, TASK_NEW, TASK_SHUTDOWN, 3, tweak_zone);
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(st.considered, 2);
	assert_int_equal(st.pending, 2);
	assert_int_equal(cmd.n_ops, 2);
	t = fx_put_for(&cmd, "t1");
	assert_int_equal(t->status.state, TASK_PENDING);
	assert_null(t->node_id);
	assert_string_equal(t->status.message, "pending task scheduling");
	assert_string_equal(t->status.err, "no suitable node (scheduling constraints not satisfied "
					   "on 2 nodes; 1 node not available for new tasks)");
	fx_apply(f, &cmd);
	/* Nothing changed: nothing written. */
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(cmd.n_ops, 0);
	assert_int_equal(st.pending, 2);
	/* The reason changes: written again; a node coming up takes them. */
	f->down[0] = "n1";
	assert_int_equal(sched(f, &cmd, NULL), 0);
	assert_int_equal(cmd.n_ops, 2);
	assert_string_equal(fx_put_for(&cmd, "t2")->status.err,
			    "no suitable node (2 nodes not available for new tasks; scheduling "
			    "constraints not satisfied on 1 node)");
	command_free(&cmd);
	f->down[0] = NULL;
	fx_add_node(f, "n3", NODE_AVAILABILITY_ACTIVE, "zone=east");
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(st.placed, 2);
	t = fx_put_for(&cmd, "t2");
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
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "n3", NODE_AVAILABILITY_ACTIVE, NULL);
	/* n3 is full already: a running task holds 1.2 CPUs. */
	fx_add_task(f, "r0", "big", 1, "n3", TASK_RUNNING, TASK_RUNNING, 1, tweak_cpu);
	fx_add_task(f, "r1", "big", 2, NULL, TASK_NEW, TASK_RUNNING, 2, tweak_cpu);
	fx_add_task(f, "r2", "big", 3, NULL, TASK_NEW, TASK_RUNNING, 3, tweak_cpu);
	fx_add_task(f, "r3", "big", 4, NULL, TASK_NEW, TASK_RUNNING, 4, tweak_cpu);
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_int_equal(st.placed, 2);
	assert_int_equal(st.pending, 1);
	assert_string_equal(fx_put_for(&cmd, "r1")->node_id, "n1");
	assert_string_equal(fx_put_for(&cmd, "r2")->node_id, "n2");
	assert_string_equal(fx_put_for(&cmd, "r3")->status.err,
			    "no suitable node (insufficient resources on 3 nodes)");
	command_free(&cmd);

	fx_add_task(f, "m1", "one", 1, NULL, TASK_NEW, TASK_RUNNING, 5, tweak_max1);
	fx_add_task(f, "m2", "one", 2, NULL, TASK_NEW, TASK_RUNNING, 6, tweak_max1);
	fx_add_task(f, "m3", "one", 3, NULL, TASK_NEW, TASK_RUNNING, 7, tweak_max1);
	fx_add_task(f, "m4", "one", 4, NULL, TASK_NEW, TASK_RUNNING, 8, tweak_max1);
	f->down[0] = "n1";
	assert_int_equal(sched(f, &cmd, &st), 0);
	assert_string_equal(fx_put_for(&cmd, "m1")->node_id, "n2");
	assert_string_equal(fx_put_for(&cmd, "m2")->node_id, "n3");
	assert_string_equal(fx_put_for(&cmd, "m3")->status.err,
			    "no suitable node (max replicas per node limit exceed; 1 node not "
			    "available for new tasks)");
	assert_string_equal(fx_put_for(&cmd, "m4")->status.err, fx_put_for(&cmd, "m3")->status.err);
	command_free(&cmd);
	fx_free(f);
}

static void preassigned_tasks_are_checked_on_their_node(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_task(f, "g1", "glob", 0, "n1", TASK_NEW, TASK_RUNNING, 1, NULL);
	fx_add_task(f, "g2", "glob", 0, "n2", TASK_NEW, TASK_RUNNING, 1, NULL);
	fx_add_task(f, "g3", "glob", 0, "gone", TASK_NEW, TASK_RUNNING, 1, NULL);
	f->down[0] = "n2";
	assert_int_equal(sched(f, &cmd, NULL), 0);
	assert_int_equal(cmd.n_ops, 3);
	assert_string_equal(fx_put_for(&cmd, "g1")->node_id, "n1");
	assert_int_equal(fx_put_for(&cmd, "g1")->status.state, TASK_ASSIGNED);
	assert_int_equal(fx_put_for(&cmd, "g2")->status.state, TASK_PENDING);
	assert_string_equal(fx_put_for(&cmd, "g2")->node_id, "n2");
	assert_string_equal(fx_put_for(&cmd, "g2")->status.err,
			    "no suitable node (1 node not available for new tasks)");
	assert_string_equal(fx_put_for(&cmd, "g3")->status.err,
			    "no suitable node (1 node not available for new tasks)");
	command_free(&cmd);
	fx_free(f);
}

static void no_nodes_at_all(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;

	(void)state;
	fx_add_task(f, "t1", "svc", 1, NULL, TASK_NEW, TASK_RUNNING, 1, NULL);
	assert_int_equal(sched(f, &cmd, NULL), 0);
	assert_string_equal(fx_put_for(&cmd, "t1")->status.err, "no suitable node");
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
