/* Unit tests of node/orchestrator: slots, global nodes, restarts and history on stores built from
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

static void new_id(void *arg, char out[ORCH_ID_LEN + 1])
{
	struct fx *f = arg;

	snprintf(out, ORCH_ID_LEN + 1, "new%02lu", f->ids++);
}

/* A service; @global for global mode; @cond the restart condition. */
static void add_service(struct fx *f, const char *id, bool global, uint64_t replicas,
			const char *cond, uint64_t max_attempts, const char *constraint,
			int64_t updated)
{
	struct command cmd;
	struct service_rec s;

	command_init(&cmd);
	assert_int_equal(service_rec_defaults(&s, NULL), 0);
	s.meta.id = fx_strdup(id);
	s.meta.updated_at = updated;
	s.spec.name = fx_strdup(id);
	s.spec.mode = global ? SVC_MODE_GLOBAL : SVC_MODE_REPLICATED;
	s.spec.replicas = replicas;
	s.spec.task_template.container_spec.image = fx_strdup("shoal-demo:latest");
	free(s.spec.task_template.restart_policy.condition);
	s.spec.task_template.restart_policy.condition = fx_strdup(cond);
	s.spec.task_template.restart_policy.max_attempts = max_attempts;
	if (constraint != NULL)
		assert_int_equal(schema_strlist_append(&s.spec.task_template.placement.constraints,
						       constraint, NULL),
				 0);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_ANY, &s, NULL), 0);
	service_rec_free(&s);
	fx_apply(f, &cmd);
}

static int orch(struct fx *f, int64_t now, struct command *cmd, int64_t *next)
{
	struct orch_env env = {
	    .now_ns = now, .node_up = fx_node_up, .new_id = new_id, .arg = f, .history_limit = 5};

	command_init(cmd);
	return orchestrator_run(f->s, &env, cmd, next, NULL);
}

static size_t count_kind(const struct command *cmd, enum command_op_kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < cmd->n_ops; i++)
		n += cmd->ops[i].kind == k;
	return n;
}

static void tweak_on_failure(struct task_rec *t)
{
	free(t->spec.restart_policy.condition);
	t->spec.restart_policy.condition = fx_strdup("on-failure");
}

static void tweak_on_failure_failed(struct task_rec *t)
{
	tweak_on_failure(t);
	t->status.container_status.exit_code = 1;
}

static void tweak_none(struct task_rec *t)
{
	free(t->spec.restart_policy.condition);
	t->spec.restart_policy.condition = fx_strdup("none");
	t->status.container_status.exit_code = 1;
}

static void replicated_fills_and_scales(void **state)
{
	struct fx *f = fx_new();
	struct command a, b;
	const struct task_rec *t;
	int64_t next;

	(void)state;
	add_service(f, "web", false, 3, "any", 0, NULL, 1);
	assert_int_equal(orch(f, 10 * SEC, &a, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(a.n_ops, 3);
	for (size_t i = 0; i < 3; i++) {
		t = a.ops[i].record;
		assert_int_equal(a.ops[i].expect_version, COMMAND_EXPECT_NEW);
		assert_int_equal(t->slot, i + 1);
		assert_string_equal(t->service_id, "web");
		assert_int_equal(t->status.state, TASK_NEW);
		assert_int_equal(t->desired_state, TASK_RUNNING);
		assert_string_equal(t->status.message, "created");
		assert_int_equal(t->status.timestamp, 10 * SEC);
		assert_string_equal(t->spec.container_spec.image, "shoal-demo:latest");
		assert_int_equal(t->spec_version, store_get(f->s, RECORD_SERVICES, "web") != NULL
						      ? ((const struct service_rec *)store_get(
							     f->s, RECORD_SERVICES, "web"))
							    ->meta.version
						      : 0);
		assert_null(t->node_id);
	}
	/* Deterministic: same store and env, same bytes. */
	f->ids = 0;
	assert_int_equal(orch(f, 10 * SEC, &b, &next), 0);
	fx_assert_same_bytes(&a, &b);
	command_free(&b);
	fx_apply(f, &a);
	assert_int_equal(orch(f, 11 * SEC, &a, &next), 0);
	assert_int_equal(a.n_ops, 0);

	/* Scale 3 -> 1: the highest slots go (desired remove), unscheduled ones at once. */
	add_service(f, "web", false, 1, "any", 0, NULL, 20 * SEC);
	assert_int_equal(orch(f, 21 * SEC, &a, &next), 0);
	assert_int_equal(a.n_ops, 2);
	assert_int_equal(count_kind(&a, COMMAND_DELETE), 2);
	assert_null(fx_op_for(&a, "new00"));
	command_free(&a);
	fx_free(f);
}

static void scale_down_waits_for_running_tasks(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service(f, "web", false, 1, "any", 0, NULL, 1);
	fx_add_task(f, "t1", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "t2", "web", 2, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(fx_put_for(&cmd, "t2")->desired_state, TASK_REMOVE);
	assert_int_equal(fx_op_for(&cmd, "t2")->expect_version, fx_task(f, "t2")->meta.version);
	fx_apply(f, &cmd);
	/* Once it stopped, it is deleted. */
	fx_add_task(f, "t2", "web", 2, "n1", TASK_SHUTDOWN, TASK_REMOVE, 2, NULL);
	assert_int_equal(orch(f, 11 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(fx_op_for(&cmd, "t2")->kind, COMMAND_DELETE);
	command_free(&cmd);
	fx_free(f);
}

static void restart_policy_any_waits_for_delay(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	const struct task_rec *n;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service(f, "web", false, 1, "any", 0, NULL, 1);
	fx_add_task(f, "t1", "web", 1, "n1", TASK_COMPLETE, TASK_RUNNING, 10 * SEC, NULL);
	/* Delay (5 s) not over: nothing yet, come back at 15 s. */
	assert_int_equal(orch(f, 12 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 0);
	assert_int_equal(next, 15 * SEC);
	assert_int_equal(orch(f, 15 * SEC, &cmd, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(cmd.n_ops, 2);
	assert_int_equal(fx_put_for(&cmd, "t1")->desired_state, TASK_SHUTDOWN);
	n = fx_put_for(&cmd, "new00");
	assert_int_equal(n->slot, 1);
	assert_int_equal(n->desired_state, TASK_RUNNING);
	fx_apply(f, &cmd);
	assert_int_equal(orch(f, 16 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 0);
	fx_free(f);
}

static void restart_conditions(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service(f, "of", false, 2, "on-failure", 0, NULL, 1);
	fx_add_task(f, "ok", "of", 1, "n1", TASK_COMPLETE, TASK_RUNNING, 2, tweak_on_failure);
	fx_add_task(f, "bad", "of", 2, "n1", TASK_FAILED, TASK_RUNNING, 2, tweak_on_failure_failed);
	add_service(f, "no", false, 1, "none", 0, NULL, 1);
	fx_add_task(f, "nope", "no", 1, "n1", TASK_FAILED, TASK_RUNNING, 2, tweak_none);
	assert_int_equal(orch(f, 100 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 4);
	assert_int_equal(fx_put_for(&cmd, "ok")->desired_state, TASK_SHUTDOWN);
	assert_int_equal(fx_put_for(&cmd, "bad")->desired_state, TASK_SHUTDOWN);
	assert_int_equal(fx_put_for(&cmd, "nope")->desired_state, TASK_SHUTDOWN);
	assert_string_equal(fx_put_for(&cmd, "new00")->service_id, "of");
	assert_int_equal(fx_put_for(&cmd, "new00")->slot, 2);
	fx_apply(f, &cmd);
	/* Slots left empty stay empty until the service changes. */
	assert_int_equal(orch(f, 200 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 0);
	add_service(f, "no", false, 1, "none", 0, NULL, 300 * SEC);
	assert_int_equal(orch(f, 301 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_string_equal(fx_put_for(&cmd, "new01")->service_id, "no");
	command_free(&cmd);
	fx_free(f);
}

static void tweak_window(struct task_rec *t)
{
	t->spec.restart_policy.max_attempts = 2;
	t->spec.restart_policy.window = 60 * SEC;
	t->status.container_status.exit_code = 1;
}

static void max_attempts_within_window(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service(f, "web", false, 1, "any", 2, NULL, 1);
	fx_add_task(f, "a", "web", 1, "n1", TASK_FAILED, TASK_SHUTDOWN, 10 * SEC, tweak_window);
	fx_add_task(f, "b", "web", 1, "n1", TASK_FAILED, TASK_SHUTDOWN, 20 * SEC, tweak_window);
	fx_add_task(f, "c", "web", 1, "n1", TASK_FAILED, TASK_RUNNING, 30 * SEC, tweak_window);
	/* Two restarts (b, c) within the window: no more. */
	assert_int_equal(orch(f, 40 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(fx_put_for(&cmd, "c")->desired_state, TASK_SHUTDOWN);
	command_free(&cmd);
	/* Later, b is out of the window: one more restart; the slot keeps
	 * MaxAttempts + 1 tasks, so the oldest goes. */
	assert_int_equal(orch(f, 85 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 3);
	assert_int_equal(fx_op_for(&cmd, "a")->kind, COMMAND_DELETE);
	assert_int_equal(fx_put_for(&cmd, "new00")->slot, 1);
	command_free(&cmd);
	fx_free(f);
}

static void lost_nodes_are_replaced(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "n2", NODE_AVAILABILITY_DRAIN, NULL);
	fx_add_node(f, "n3", NODE_AVAILABILITY_PAUSE, NULL);
	add_service(f, "web", false, 4, "none", 0, NULL, 1);
	fx_add_task(f, "t1", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "t2", "web", 2, "n2", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "t3", "web", 3, "n3", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "t4", "web", 4, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	f->down[0] = "n1";
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 6);
	assert_int_equal(fx_put_for(&cmd, "t1")->desired_state, TASK_SHUTDOWN);
	assert_int_equal(fx_put_for(&cmd, "t1")->status.state, TASK_RUNNING);
	assert_int_equal(fx_put_for(&cmd, "t2")->desired_state, TASK_SHUTDOWN);
	assert_null(fx_op_for(&cmd, "t3")); /* paused keeps its task */
	assert_int_equal(fx_put_for(&cmd, "t4")->desired_state, TASK_SHUTDOWN);
	assert_int_equal(fx_put_for(&cmd, "new00")->slot, 1);
	assert_int_equal(fx_put_for(&cmd, "new01")->slot, 2);
	assert_int_equal(fx_put_for(&cmd, "new02")->slot, 4);
	command_free(&cmd);
	fx_free(f);
}

static void global_follows_eligible_nodes(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, "zone=east");
	fx_add_node(f, "n2", NODE_AVAILABILITY_DRAIN, "zone=east");
	fx_add_node(f, "n3", NODE_AVAILABILITY_PAUSE, "zone=east");
	fx_add_node(f, "n4", NODE_AVAILABILITY_ACTIVE, "zone=west");
	fx_add_node(f, "n5", NODE_AVAILABILITY_ACTIVE, "zone=east");
	fx_add_node(f, "n6", NODE_AVAILABILITY_ACTIVE, "zone=east");
	add_service(f, "mon", true, 0, "any", 0, "node.labels.zone==east", 1);
	fx_add_task(f, "g2", "mon", 0, "n2", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "g3", "mon", 0, "n3", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "g4", "mon", 0, "n4", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "g6", "mon", 0, "n6", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	f->down[0] = "n6";
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 5);
	assert_string_equal(fx_put_for(&cmd, "new00")->node_id, "n1");
	assert_int_equal(fx_put_for(&cmd, "new00")->slot, 0);
	assert_string_equal(fx_put_for(&cmd, "new01")->node_id, "n5");
	assert_int_equal(fx_put_for(&cmd, "g2")->desired_state, TASK_SHUTDOWN);
	assert_null(fx_op_for(&cmd, "g3"));
	assert_int_equal(fx_put_for(&cmd, "g4")->desired_state, TASK_SHUTDOWN);
	assert_int_equal(fx_put_for(&cmd, "g6")->desired_state, TASK_SHUTDOWN);
	command_free(&cmd);
	fx_free(f);
}

static void removed_service_tasks_go(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_task(f, "r1", "gone", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "r2", "gone", 2, "n1", TASK_FAILED, TASK_SHUTDOWN, 2, NULL);
	fx_add_task(f, "r3", "gone", 3, NULL, TASK_PENDING, TASK_RUNNING, 2, NULL);
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 3);
	assert_int_equal(fx_put_for(&cmd, "r1")->desired_state, TASK_REMOVE);
	assert_int_equal(fx_op_for(&cmd, "r2")->kind, COMMAND_DELETE);
	assert_int_equal(fx_op_for(&cmd, "r3")->kind, COMMAND_DELETE);
	fx_apply(f, &cmd);
	/* Its node goes down: deleted. */
	f->down[0] = "n1";
	assert_int_equal(orch(f, 11 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(fx_op_for(&cmd, "r1")->kind, COMMAND_DELETE);
	command_free(&cmd);
	fx_free(f);
}

static void history_is_capped_per_slot(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;
	char id[8];

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service(f, "web", false, 1, "any", 0, NULL, 1);
	for (int i = 0; i < 7; i++) {
		snprintf(id, sizeof(id), "h%d", i);
		fx_add_task(f, id, "web", 1, "n1", TASK_FAILED, TASK_SHUTDOWN, 10 + i, NULL);
	}
	fx_add_task(f, "live", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 100, NULL);
	/* 8 tasks, 5 kept: the 3 oldest ended ones go. */
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 3);
	assert_int_equal(fx_op_for(&cmd, "h0")->kind, COMMAND_DELETE);
	assert_int_equal(fx_op_for(&cmd, "h1")->kind, COMMAND_DELETE);
	assert_int_equal(fx_op_for(&cmd, "h2")->kind, COMMAND_DELETE);
	fx_apply(f, &cmd);
	assert_int_equal(orch(f, 11 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 0);
	fx_free(f);
}

/* A replicated service of @replicas; @tweak, if not NULL, edits it first. */
static void add_service_with(struct fx *f, const char *id, uint64_t replicas,
			     void (*tweak)(struct service_rec *))
{
	struct command cmd;
	struct service_rec s;

	command_init(&cmd);
	assert_int_equal(service_rec_defaults(&s, NULL), 0);
	s.meta.id = fx_strdup(id);
	s.meta.updated_at = 1;
	s.spec.name = fx_strdup(id);
	s.spec.replicas = replicas;
	s.spec.task_template.container_spec.image = fx_strdup("shoal-demo:latest");
	if (tweak != NULL)
		tweak(&s);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_ANY, &s, NULL), 0);
	service_rec_free(&s);
	fx_apply(f, &cmd);
}

static void tweak_green(struct task_rec *t)
{
	t->color = fx_strdup("green");
}

static void other_colors_are_left_alone(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;
	char id[8];

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service_with(f, "web", 2, NULL);
	fx_add_task(f, "b1", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "g1", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 3, tweak_green);
	fx_add_task(f, "g2", "web", 2, "n1", TASK_FAILED, TASK_RUNNING, 3, tweak_green);
	fx_add_task(f, "g3", "web", 3, "n1", TASK_RUNNING, TASK_RUNNING, 3, tweak_green);
	for (int i = 0; i < 7; i++) {
		snprintf(id, sizeof(id), "h%d", i);
		fx_add_task(f, id, "web", 1, "n1", TASK_FAILED, TASK_SHUTDOWN, 10 + i, tweak_green);
	}
	/* Green tasks are neither kept, restarted, counted nor scaled down: slot
	 * 2 has no blue task, so it gets one (uncolored: no blue/green here). The
	 * green history of slot 1 is reaped on its own: 5 of its 8 kept. */
	assert_int_equal(orch(f, 100 * SEC, &cmd, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(cmd.n_ops, 4);
	assert_int_equal(fx_put_for(&cmd, "new00")->slot, 2);
	assert_null(fx_put_for(&cmd, "new00")->color);
	assert_int_equal(fx_op_for(&cmd, "h0")->kind, COMMAND_DELETE);
	assert_int_equal(fx_op_for(&cmd, "h1")->kind, COMMAND_DELETE);
	assert_int_equal(fx_op_for(&cmd, "h2")->kind, COMMAND_DELETE);
	fx_apply(f, &cmd);
	assert_int_equal(orch(f, 101 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 0);
	/* The service goes: so do its tasks of every color. */
	command_init(&cmd);
	assert_int_equal(command_delete(&cmd, RECORD_SERVICES, COMMAND_EXPECT_ANY, "web", NULL), 0);
	fx_apply(f, &cmd);
	assert_int_equal(orch(f, 102 * SEC, &cmd, &next), 0);
	assert_int_equal(fx_put_for(&cmd, "g1")->desired_state, TASK_REMOVE);
	assert_int_equal(fx_put_for(&cmd, "g3")->desired_state, TASK_REMOVE);
	assert_int_equal(fx_op_for(&cmd, "g2")->kind, COMMAND_DELETE);
	assert_int_equal(fx_op_for(&cmd, "h6")->kind, COMMAND_DELETE);
	command_free(&cmd);
	fx_free(f);
}

static void tweak_bluegreen(struct service_rec *s)
{
	s->spec.update_strategy = fx_strdup("blue-green");
}

static void tweak_live_green(struct service_rec *s)
{
	s->deployment.live_color = fx_strdup("green");
}

static void new_tasks_get_the_live_color(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	add_service_with(f, "a", 1, NULL);
	add_service_with(f, "b", 1, tweak_bluegreen);
	add_service_with(f, "c", 1, tweak_live_green);
	fx_add_task(f, "cb", "c", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 3);
	assert_string_equal(fx_put_for(&cmd, "new00")->service_id, "a");
	assert_null(fx_put_for(&cmd, "new00")->color);
	assert_string_equal(fx_put_for(&cmd, "new01")->service_id, "b");
	assert_string_equal(fx_put_for(&cmd, "new01")->color, "blue");
	/* c's blue task is not live: green gets its own. */
	assert_string_equal(fx_put_for(&cmd, "new02")->service_id, "c");
	assert_string_equal(fx_put_for(&cmd, "new02")->color, "green");
	assert_null(fx_op_for(&cmd, "cb"));
	command_free(&cmd);
	fx_free(f);
}

/* @t's spec becomes add_service_with()'s TaskTemplate: a clean task. */
static void tweak_clean(struct task_rec *t)
{
	fx_task_spec_default(t, "shoal-demo:latest");
}

static void start_first_spares_the_new_task(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service_with(f, "web", 3, NULL);
	fx_add_task(f, "old", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "new", "web", 1, NULL, TASK_NEW, TASK_RUNNING, 5, tweak_clean);
	/* Without a running task beside it, the less advanced one still goes. */
	fx_add_task(f, "p1", "web", 2, "n1", TASK_PREPARING, TASK_RUNNING, 2, NULL);
	fx_add_task(f, "p2", "web", 2, NULL, TASK_NEW, TASK_RUNNING, 5, tweak_clean);
	/* A newer dirty one (a rollback made it so) is not spared. */
	fx_add_task(f, "r1", "web", 3, "n1", TASK_RUNNING, TASK_RUNNING, 2, tweak_clean);
	fx_add_task(f, "r2", "web", 3, NULL, TASK_NEW, TASK_RUNNING, 5, NULL);
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 2);
	assert_int_equal(fx_put_for(&cmd, "p2")->desired_state, TASK_SHUTDOWN);
	assert_int_equal(fx_put_for(&cmd, "r2")->desired_state, TASK_SHUTDOWN);
	fx_apply(f, &cmd);
	/* The new one runs: the old one goes. */
	fx_add_task(f, "new", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 5, tweak_clean);
	assert_int_equal(orch(f, 11 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(fx_put_for(&cmd, "old")->desired_state, TASK_SHUTDOWN);
	command_free(&cmd);
	fx_free(f);
}

static void stop_first_waits_for_the_stopping_task(void **state)
{
	struct fx *f = fx_new();
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(f, "n2", NODE_AVAILABILITY_ACTIVE, NULL);
	add_service_with(f, "web", 3, NULL);
	fx_add_task(f, "s1", "web", 1, "n1", TASK_RUNNING, TASK_SHUTDOWN, 2, NULL);
	fx_add_task(f, "s2", "web", 2, "n2", TASK_RUNNING, TASK_SHUTDOWN, 2, NULL);
	/* Never reached a node: nothing to wait for. */
	fx_add_task(f, "s3", "web", 3, NULL, TASK_PENDING, TASK_SHUTDOWN, 2, NULL);
	f->down[0] = "n2";
	assert_int_equal(orch(f, 10 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 2);
	assert_int_equal(fx_put_for(&cmd, "new00")->slot, 2);
	assert_int_equal(fx_put_for(&cmd, "new01")->slot, 3);
	fx_apply(f, &cmd);
	assert_int_equal(orch(f, 11 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 0);
	/* Once stopped, slot 1 gets its new task. */
	fx_add_task(f, "s1", "web", 1, "n1", TASK_SHUTDOWN, TASK_SHUTDOWN, 2, NULL);
	assert_int_equal(orch(f, 12 * SEC, &cmd, &next), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(fx_put_for(&cmd, "new02")->slot, 1);
	assert_int_equal(fx_put_for(&cmd, "new02")->desired_state, TASK_RUNNING);
	command_free(&cmd);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(replicated_fills_and_scales),
	    cmocka_unit_test(scale_down_waits_for_running_tasks),
	    cmocka_unit_test(restart_policy_any_waits_for_delay),
	    cmocka_unit_test(restart_conditions),
	    cmocka_unit_test(max_attempts_within_window),
	    cmocka_unit_test(lost_nodes_are_replaced),
	    cmocka_unit_test(global_follows_eligible_nodes),
	    cmocka_unit_test(removed_service_tasks_go),
	    cmocka_unit_test(history_is_capped_per_slot),
	    cmocka_unit_test(other_colors_are_left_alone),
	    cmocka_unit_test(new_tasks_get_the_live_color),
	    cmocka_unit_test(start_first_spares_the_new_task),
	    cmocka_unit_test(stop_first_waits_for_the_stopping_task),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
