/* Unit tests of node/updater: rolling updates, failure actions, rollbacks and blue/green
 * deployments, driven with the orchestrator and a fake agent on a virtual clock. */
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
#include "node/schema.h"
#include "node/store.h"
#include "node/updater.h"
#include "tests/unit/svc_fixture.h"

#define MAX_STATES 16

/* The store, the clock, and what the fake agent does. */
struct world {
	struct fx *f;
	const char *fail_image; /* tasks of this image fail when started... */
	uint64_t fail_slot;	/* ...in this slot (0: any) */
	uint64_t min_serving;	/* slots (nodes) of "web" running at every step */
	/* UpdateStatus.State and Deployment.State of "web" as they changed. */
	char *states[MAX_STATES], *deploys[MAX_STATES];
	size_t n_states, n_deploys;
};

static void new_id(void *arg, char out[ORCH_ID_LEN + 1])
{
	struct fx *f = arg;

	snprintf(out, ORCH_ID_LEN + 1, "t%03lu", f->ids++);
}

static struct orch_env env_at(struct world *w, int64_t now)
{
	return (struct orch_env){.now_ns = now,
				 .node_up = fx_node_up,
				 .new_id = new_id,
				 .arg = w->f,
				 .history_limit = 5};
}

static void upd(struct world *w, int64_t now, struct command *cmd, int64_t *next)
{
	struct orch_env env = env_at(w, now);

	command_init(cmd);
	assert_int_equal(updater_run(w->f->s, &env, cmd, next, NULL), 0);
}

static void orch(struct world *w, int64_t now, struct command *cmd, int64_t *next)
{
	struct orch_env env = env_at(w, now);

	command_init(cmd);
	assert_int_equal(orchestrator_run(w->f->s, &env, cmd, next, NULL), 0);
}

static const struct service_rec *web(struct world *w)
{
	const struct service_rec *s = store_get(w->f->s, RECORD_SERVICES, "web");

	assert_non_null(s);
	return s;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void note(char **list, size_t *n, const char *s)
{
	if (*n > 0 && same_str(list[*n - 1], s))
		return;
	assert_true(*n < MAX_STATES);
	list[(*n)++] = s != NULL ? fx_strdup(s) : NULL;
}

/* Slots (for a global service: nodes) of "web" with a task running and desired running. */
static uint64_t serving(struct world *w)
{
	const struct service_rec *svc = web(w);
	uint64_t n = 0;
	size_t count = store_count(w->f->s, RECORD_TASKS);

	/* Tasks are in id order: count distinct keys the slow way. */
	for (size_t i = 0; i < count; i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);
		bool seen = false;

		if (t->status.state != TASK_RUNNING || t->desired_state != TASK_RUNNING ||
		    strcmp(t->service_id, "web") != 0 ||
		    strcmp(updater_task_color(t), updater_live_color(svc)) != 0)
			continue;
		for (size_t k = 0; k < i && !seen; k++) {
			const struct task_rec *o = store_at(w->f->s, RECORD_TASKS, k);

			seen = o->status.state == TASK_RUNNING &&
			       o->desired_state == TASK_RUNNING &&
			       strcmp(o->service_id, "web") == 0 &&
			       strcmp(updater_task_color(o), updater_live_color(svc)) == 0 &&
			       (svc->spec.mode == SVC_MODE_GLOBAL ? same_str(o->node_id, t->node_id)
								  : o->slot == t->slot);
		}
		n += !seen;
	}
	return n;
}

/* Apply @cmd, then check what must hold at every step. */
static void apply(struct world *w, struct command *cmd)
{
	fx_apply(w->f, cmd);
	if (store_get(w->f->s, RECORD_SERVICES, "web") == NULL)
		return;
	note(w->states, &w->n_states, web(w)->update_status.state);
	note(w->deploys, &w->n_deploys, web(w)->deployment.state);
	assert_true(serving(w) >= w->min_serving);
}

static bool fails(const struct world *w, const struct task_rec *t)
{
	return w->fail_image != NULL && same_str(t->spec.container_spec.image, w->fail_image) &&
	       (w->fail_slot == 0 || t->slot == w->fail_slot);
}

/* The fake agent: tasks desired running start (on n1 unless placed) or fail
 * at once; tasks told to stop stop. Returns false when nothing moved. */
static bool agent(struct world *w, int64_t now)
{
	struct command cmd;
	size_t n = store_count(w->f->s, RECORD_TASKS);

	command_init(&cmd);
	for (size_t i = 0; i < n; i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);
		struct task_rec *c;
		bool start = t->desired_state <= TASK_RUNNING && t->status.state < TASK_RUNNING;
		bool stop = t->desired_state > TASK_RUNNING && t->status.state <= TASK_RUNNING &&
			    t->node_id != NULL;

		if (!start && !stop)
			continue;
		assert_int_equal(command_put(&cmd, RECORD_TASKS, t->meta.version, t, NULL), 0);
		c = cmd.ops[cmd.n_ops - 1].record;
		c->status.timestamp = now;
		if (stop) {
			c->status.state = TASK_SHUTDOWN;
			continue;
		}
		if (c->node_id == NULL)
			c->node_id = fx_strdup("n1");
		if (fails(w, c)) {
			c->status.state = TASK_FAILED;
			c->status.err = fx_strdup("task: non-zero exit (1)");
			c->status.container_status.exit_code = 1;
		} else {
			c->status.state = TASK_RUNNING;
		}
	}
	if (cmd.n_ops == 0)
		return false;
	apply(w, &cmd);
	return true;
}

static int64_t earliest(int64_t a, int64_t b)
{
	return a == 0 ? b : b == 0 || a < b ? a : b;
}

/* Run updater, orchestrator and agent at @now until none of them moves.
 * Returns when something is next due (0: nothing). */
static int64_t settle(struct world *w, int64_t now)
{
	struct command cmd;
	int64_t un, on;

	for (int i = 0; i < 200; i++) {
		upd(w, now, &cmd, &un);
		if (cmd.n_ops > 0) {
			apply(w, &cmd);
			continue;
		}
		command_free(&cmd);
		orch(w, now, &cmd, &on);
		if (cmd.n_ops > 0) {
			apply(w, &cmd);
			continue;
		}
		command_free(&cmd);
		if (agent(w, now))
			continue;
		return earliest(un, on);
	}
	fail_msg("no quiet state at %lld", (long long)now);
	return 0;
}

/* Settle at @now, then at each time something is due until @end. Returns the last time. */
static int64_t run_until(struct world *w, int64_t now, int64_t end)
{
	for (;;) {
		int64_t next = settle(w, now);

		if (next == 0 || next > end)
			return now;
		assert_true(next > now);
		now = next;
	}
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->f = fx_new();
	fx_add_node(w->f, "n1", NODE_AVAILABILITY_ACTIVE, NULL);
	return w;
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->n_states; i++)
		free(w->states[i]);
	for (size_t i = 0; i < w->n_deploys; i++)
		free(w->deploys[i]);
	fx_free(w->f);
	free(w);
}

/* Service "web" with image v1 and @replicas (0 with @global); @tweak edits it first. */
static void add_web(struct world *w, bool global, uint64_t replicas,
		    void (*tweak)(struct service_rec *))
{
	struct command cmd;
	struct service_rec s;

	command_init(&cmd);
	assert_int_equal(service_rec_defaults(&s, NULL), 0);
	s.meta.id = fx_strdup("web");
	s.meta.updated_at = 1;
	s.spec.name = fx_strdup("web");
	s.spec.mode = global ? SVC_MODE_GLOBAL : SVC_MODE_REPLICATED;
	s.spec.replicas = replicas;
	s.spec.task_template.container_spec.image = fx_strdup("v1");
	if (tweak != NULL)
		tweak(&s);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_ANY, &s, NULL), 0);
	service_rec_free(&s);
	apply(w, &cmd);
}

/* `service update` at @now as the API does it: PreviousSpec the old spec,
 * @edit changes the spec, UpdateStatus cleared. */
static void update_web(struct world *w, int64_t now, void (*edit)(struct svc_spec *))
{
	const struct service_rec *cur = web(w);
	struct command cmd;
	struct service_rec *s;

	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, cur->meta.version, cur, NULL), 0);
	s = cmd.ops[0].record;
	schema_free(&svc_spec_schema, &s->previous_spec);
	assert_int_equal(schema_copy(&svc_spec_schema, &s->previous_spec, &s->spec, NULL), 0);
	s->has_previous_spec = true;
	edit(&s->spec);
	free(s->update_status.state);
	s->update_status.state = NULL;
	free(s->update_status.message);
	s->update_status.message = NULL;
	s->meta.updated_at = now;
	apply(w, &cmd);
}

static void image_v2(struct svc_spec *s)
{
	free(s->task_template.container_spec.image);
	s->task_template.container_spec.image = fx_strdup("v2");
}

static void force(struct svc_spec *s)
{
	s->task_template.force_update++;
}

/* The tasks of "web" desired running, by slot (or node); @image NULL: any. */
static size_t count_tasks(struct world *w, const char *image, enum task_state st, const char *color)
{
	size_t n = 0, count = store_count(w->f->s, RECORD_TASKS);

	for (size_t i = 0; i < count; i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);

		n += t->desired_state == TASK_RUNNING && t->status.state == st &&
		     (image == NULL || same_str(t->spec.container_spec.image, image)) &&
		     (color == NULL || strcmp(updater_task_color(t), color) == 0);
	}
	return n;
}

/* The image of the task running in slot @slot (desired running); fails if none or several. */
static const char *slot_image(struct world *w, uint64_t slot)
{
	const char *image = NULL;
	size_t count = store_count(w->f->s, RECORD_TASKS);

	for (size_t i = 0; i < count; i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);

		if (t->slot != slot || t->desired_state != TASK_RUNNING ||
		    t->status.state != TASK_RUNNING)
			continue;
		assert_null(image);
		image = t->spec.container_spec.image;
	}
	assert_non_null(image);
	return image;
}

/* The id of the only failed task of @image. */
static const char *failed_task(struct world *w, const char *image)
{
	const char *id = NULL;
	size_t count = store_count(w->f->s, RECORD_TASKS);

	for (size_t i = 0; i < count; i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);

		if (t->status.state == TASK_FAILED &&
		    same_str(t->spec.container_spec.image, image)) {
			assert_null(id);
			id = t->meta.id;
		}
	}
	assert_non_null(id);
	return id;
}

static void assert_quiet(struct world *w, int64_t now)
{
	struct command cmd;
	int64_t next;

	upd(w, now, &cmd, &next);
	assert_int_equal(cmd.n_ops, 0);
	orch(w, now, &cmd, &next);
	assert_int_equal(cmd.n_ops, 0);
}

static void assert_states(struct world *w, const char *const *want, size_t n)
{
	assert_int_equal(w->n_states, n);
	for (size_t i = 0; i < n; i++)
		assert_true(same_str(w->states[i], want[i]));
}

static void tweak_par2(struct service_rec *s)
{
	s->spec.update_config.parallelism = 2;
	s->spec.update_config.monitor = 10 * SEC;
	s->spec.update_config.delay = 5 * SEC;
}

static void idle_service_writes_nothing(void **state)
{
	struct world *w = world_new();
	struct command cmd;
	int64_t next;

	(void)state;
	add_web(w, false, 3, NULL);
	assert_int_equal(run_until(w, 10 * SEC, 1000 * SEC), 10 * SEC);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 3);
	for (int i = 0; i < 2; i++) {
		upd(w, (20 + i) * SEC, &cmd, &next);
		assert_int_equal(cmd.n_ops, 0);
		assert_int_equal(next, 0);
	}
	assert_null(web(w)->update_status.state);
	world_free(w);
}

static void rolling_stop_first_in_batches(void **state)
{
	static const char *const want[] = {NULL, "updating", "completed"};
	struct world *w = world_new();
	const struct service_rec *svc;
	struct command cmd;
	int64_t next;

	(void)state;
	add_web(w, false, 5, tweak_par2);
	run_until(w, 10 * SEC, 1000 * SEC);
	w->min_serving = 3;
	update_web(w, 100 * SEC, image_v2);

	/* The update starts: the status alone. */
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(cmd.ops[0].table, RECORD_SERVICES);
	assert_int_equal(cmd.ops[0].expect_version, web(w)->meta.version);
	svc = cmd.ops[0].record;
	assert_string_equal(svc->update_status.state, "updating");
	assert_int_equal(svc->update_status.started_at, 100 * SEC);
	assert_int_equal(svc->update_status.completed_at, 0);
	assert_string_equal(svc->update_status.message, "update in progress");
	apply(w, &cmd);

	/* Two slots, the lowest, stop first and are replaced. */
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 2);
	assert_int_equal(((const struct task_rec *)cmd.ops[0].record)->desired_state,
			 TASK_SHUTDOWN);
	assert_int_equal(((const struct task_rec *)cmd.ops[0].record)->slot, 1);
	assert_int_equal(((const struct task_rec *)cmd.ops[1].record)->slot, 2);
	apply(w, &cmd);
	assert_int_equal(settle(w, 100 * SEC), 110 * SEC); /* Monitor ends */
	assert_string_equal(slot_image(w, 1), "v2");
	assert_string_equal(slot_image(w, 2), "v2");
	assert_string_equal(slot_image(w, 3), "v1");
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, NULL), 2);

	/* Not before Monitor, then Delay, ended. */
	assert_int_equal(settle(w, 109 * SEC), 110 * SEC);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, NULL), 2);
	assert_int_equal(settle(w, 110 * SEC), 115 * SEC);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, NULL), 2);
	assert_int_equal(settle(w, 115 * SEC), 125 * SEC);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, NULL), 4);
	assert_string_equal(slot_image(w, 3), "v2");
	assert_string_equal(slot_image(w, 4), "v2");
	assert_string_equal(slot_image(w, 5), "v1");
	assert_string_equal(web(w)->update_status.state, "updating");

	assert_int_equal(run_until(w, 125 * SEC, 1000 * SEC), 140 * SEC);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, NULL), 5);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 0);
	svc = web(w);
	assert_string_equal(svc->update_status.state, "completed");
	assert_string_equal(svc->update_status.message, "update completed");
	assert_int_equal(svc->update_status.started_at, 100 * SEC);
	assert_int_equal(svc->update_status.completed_at, 140 * SEC);
	assert_states(w, want, 3);
	assert_quiet(w, 141 * SEC);
	assert_quiet(w, 142 * SEC);
	world_free(w);
}

static void tweak_start_first(struct service_rec *s)
{
	free(s->spec.update_config.order);
	s->spec.update_config.order = fx_strdup("start-first");
}

static void rolling_start_first(void **state)
{
	struct world *w = world_new();
	const struct task_rec *t;
	struct command cmd;
	int64_t next;

	(void)state;
	add_web(w, false, 2, tweak_start_first);
	run_until(w, 10 * SEC, 1000 * SEC);
	w->min_serving = 2; /* never fewer: the new one starts beside the old */
	update_web(w, 100 * SEC, image_v2);
	upd(w, 100 * SEC, &cmd, &next);
	apply(w, &cmd);

	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 1);
	t = cmd.ops[0].record;
	assert_int_equal(cmd.ops[0].expect_version, COMMAND_EXPECT_NEW);
	assert_int_equal(t->slot, 1);
	assert_string_equal(t->spec.container_spec.image, "v2");
	assert_int_equal(t->desired_state, TASK_RUNNING);
	assert_int_equal(t->status.state, TASK_NEW);
	apply(w, &cmd);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 2);

	/* The orchestrator leaves both until the new one runs. */
	orch(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 0);
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 0);
	assert_true(agent(w, 100 * SEC));
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 0);
	assert_int_equal(next, 105 * SEC);
	orch(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 1);
	t = cmd.ops[0].record;
	assert_int_equal(t->slot, 1);
	assert_string_equal(t->spec.container_spec.image, "v1");
	assert_int_equal(t->desired_state, TASK_SHUTDOWN);
	apply(w, &cmd);

	assert_int_equal(run_until(w, 100 * SEC, 1000 * SEC), 110 * SEC);
	assert_string_equal(slot_image(w, 1), "v2");
	assert_string_equal(slot_image(w, 2), "v2");
	assert_string_equal(web(w)->update_status.state, "completed");
	assert_int_equal(web(w)->update_status.completed_at, 110 * SEC);
	assert_quiet(w, 111 * SEC);
	world_free(w);
}

static void tweak_monitor10(struct service_rec *s)
{
	s->spec.update_config.monitor = 10 * SEC;
	s->spec.rollback_config.monitor = 10 * SEC;
}

static void failure_pauses(void **state)
{
	static const char *const want[] = {NULL, "updating", "paused"};
	struct world *w = world_new();
	char msg[128];

	(void)state;
	add_web(w, false, 3, tweak_monitor10);
	run_until(w, 10 * SEC, 1000 * SEC);
	w->fail_image = "v2";
	update_web(w, 100 * SEC, image_v2);
	settle(w, 100 * SEC);
	assert_string_equal(web(w)->update_status.state, "paused");
	snprintf(msg, sizeof(msg), "update paused due to failure or early termination of task %s",
		 failed_task(w, "v2"));
	assert_string_equal(web(w)->update_status.message, msg);

	/* No further progress, whatever time passes (the orchestrator keeps
	 * restarting slot 1 as its policy says). */
	run_until(w, 100 * SEC, 300 * SEC);
	assert_string_equal(web(w)->update_status.state, "paused");
	assert_string_equal(slot_image(w, 2), "v1");
	assert_string_equal(slot_image(w, 3), "v1");
	assert_states(w, want, 3);
	world_free(w);
}

static void tweak_rollback(struct service_rec *s)
{
	tweak_monitor10(s);
	free(s->spec.update_config.failure_action);
	s->spec.update_config.failure_action = fx_strdup("rollback");
	free(s->spec.rollback_config.order);
	s->spec.rollback_config.order = fx_strdup("start-first");
}

static void failure_rolls_back(void **state)
{
	static const char *const want[] = {NULL, "updating", "rollback_started",
					   "rollback_completed"};
	struct world *w = world_new();
	const struct service_rec *svc;
	char msg[128];

	(void)state;
	add_web(w, false, 3, tweak_rollback);
	run_until(w, 10 * SEC, 1000 * SEC);
	w->fail_image = "v2";
	w->fail_slot = 2;
	update_web(w, 100 * SEC, image_v2);
	/* Slot 1 updates; slot 2's new task fails at 110 s: back to v1. */
	settle(w, 100 * SEC);
	assert_string_equal(slot_image(w, 1), "v2");
	settle(w, 110 * SEC);
	svc = web(w);
	assert_string_equal(svc->update_status.state, "rollback_started");
	assert_int_equal(svc->update_status.started_at, 110 * SEC);
	snprintf(msg, sizeof(msg),
		 "update rolled back due to failure or early termination of task %s",
		 failed_task(w, "v2"));
	assert_string_equal(svc->update_status.message, msg);
	assert_string_equal(svc->spec.task_template.container_spec.image, "v1");
	assert_true(svc->has_previous_spec);
	assert_string_equal(svc->previous_spec.task_template.container_spec.image, "v2");
	/* RollbackConfig is start-first: slot 1 keeps serving v2 beside the new v1. */
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 2);

	run_until(w, 110 * SEC, 1000 * SEC);
	svc = web(w);
	assert_string_equal(svc->update_status.state, "rollback_completed");
	assert_string_equal(svc->update_status.message, "rollback completed");
	assert_true(svc->update_status.completed_at >= 120 * SEC);
	for (uint64_t slot = 1; slot <= 3; slot++)
		assert_string_equal(slot_image(w, slot), "v1");
	assert_states(w, want, 4);
	assert_quiet(w, 2000 * SEC);
	world_free(w);
}

static void tweak_continue(struct service_rec *s)
{
	tweak_monitor10(s);
	free(s->spec.update_config.failure_action);
	s->spec.update_config.failure_action = fx_strdup("continue");
}

static void failure_continue(void **state)
{
	struct world *w = world_new();

	(void)state;
	add_web(w, false, 4, tweak_continue);
	run_until(w, 10 * SEC, 1000 * SEC);
	w->fail_image = "v2";
	w->fail_slot = 2;
	update_web(w, 100 * SEC, image_v2);
	run_until(w, 100 * SEC, 200 * SEC);
	assert_string_equal(web(w)->update_status.state, "completed");
	assert_string_equal(slot_image(w, 1), "v2");
	assert_string_equal(slot_image(w, 3), "v2");
	assert_string_equal(slot_image(w, 4), "v2");
	world_free(w);
}

static void tweak_ratio(struct service_rec *s)
{
	tweak_monitor10(s);
	s->spec.update_config.max_failure_ratio = 0.3;
}

static void failure_ratio_tolerates(void **state)
{
	static const char *const want[] = {NULL, "updating", "paused"};
	struct world *w = world_new();

	(void)state;
	add_web(w, false, 4, tweak_ratio);
	run_until(w, 10 * SEC, 1000 * SEC);
	w->fail_image = "v2";
	w->fail_slot = 2;
	update_web(w, 100 * SEC, image_v2);
	/* 110 s: slot 2 fails, 1 of 4 is within 0.3: slot 3 goes on. */
	settle(w, 100 * SEC);
	settle(w, 110 * SEC);
	assert_string_equal(web(w)->update_status.state, "updating");
	assert_string_equal(slot_image(w, 3), "v2");
	/* 115 s: slot 2's restart fails too: 2 of 4 is too many. */
	settle(w, 115 * SEC);
	assert_string_equal(web(w)->update_status.state, "paused");
	run_until(w, 115 * SEC, 300 * SEC);
	assert_string_equal(slot_image(w, 4), "v1");
	assert_states(w, want, 3);
	world_free(w);
}

static void force_update_dirties_all(void **state)
{
	struct world *w = world_new();
	struct command cmd;
	int64_t next;

	(void)state;
	add_web(w, false, 2, NULL);
	run_until(w, 10 * SEC, 1000 * SEC);
	for (size_t i = 0; i < store_count(w->f->s, RECORD_TASKS); i++)
		assert_true(updater_task_clean(web(w), store_at(w->f->s, RECORD_TASKS, i)));
	update_web(w, 100 * SEC, force);
	for (size_t i = 0; i < store_count(w->f->s, RECORD_TASKS); i++)
		assert_false(updater_task_clean(web(w), store_at(w->f->s, RECORD_TASKS, i)));
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 1);
	assert_string_equal(((const struct service_rec *)cmd.ops[0].record)->update_status.state,
			    "updating");
	apply(w, &cmd);
	run_until(w, 100 * SEC, 1000 * SEC);
	assert_string_equal(web(w)->update_status.state, "completed");
	for (size_t i = 0; i < store_count(w->f->s, RECORD_TASKS); i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);

		if (t->desired_state == TASK_RUNNING)
			assert_int_equal(t->spec.force_update, 1);
	}
	assert_int_equal(count_tasks(w, NULL, TASK_RUNNING, NULL), 2);
	world_free(w);
}

/* @t's spec becomes add_web()'s v1 TaskTemplate. */
static void tweak_v1(struct task_rec *t)
{
	fx_task_spec_default(t, "v1");
}

/* A scale-down that dropped a middle slot leaves slots 1 and 3 of 2
 * replicas: both are updated (found by the chaos suite). */
static void slots_above_replicas_are_updated(void **state)
{
	struct world *w = world_new();

	(void)state;
	add_web(w, false, 2, NULL);
	fx_add_task(w->f, "t1", "web", 1, "n1", TASK_RUNNING, TASK_RUNNING, 2, tweak_v1);
	fx_add_task(w->f, "t3", "web", 3, "n1", TASK_RUNNING, TASK_RUNNING, 2, tweak_v1);
	run_until(w, 10 * SEC, 1000 * SEC);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 2);
	update_web(w, 100 * SEC, image_v2);
	run_until(w, 100 * SEC, 1000 * SEC);
	assert_string_equal(web(w)->update_status.state, "completed");
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 0);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, NULL), 2);
	world_free(w);
}

static void global_updates_node_by_node(void **state)
{
	struct world *w = world_new();
	const char *nodes[] = {"n1", "n2", "n3"};
	struct command cmd;
	int64_t next;

	(void)state;
	fx_add_node(w->f, "n2", NODE_AVAILABILITY_ACTIVE, NULL);
	fx_add_node(w->f, "n3", NODE_AVAILABILITY_ACTIVE, NULL);
	add_web(w, true, 0, NULL);
	run_until(w, 10 * SEC, 1000 * SEC);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, NULL), 3);
	w->min_serving = 2;
	update_web(w, 100 * SEC, image_v2);
	upd(w, 100 * SEC, &cmd, &next);
	apply(w, &cmd);
	/* n1 first. */
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 1);
	assert_string_equal(((const struct task_rec *)cmd.ops[0].record)->node_id, "n1");
	assert_int_equal(((const struct task_rec *)cmd.ops[0].record)->desired_state,
			 TASK_SHUTDOWN);
	apply(w, &cmd);
	assert_int_equal(run_until(w, 100 * SEC, 1000 * SEC), 115 * SEC);
	assert_string_equal(web(w)->update_status.state, "completed");
	for (size_t k = 0; k < 3; k++) {
		size_t n = 0;

		for (size_t i = 0; i < store_count(w->f->s, RECORD_TASKS); i++) {
			const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);

			if (t->desired_state == TASK_RUNNING && t->status.state == TASK_RUNNING &&
			    strcmp(t->node_id, nodes[k]) == 0) {
				assert_string_equal(t->spec.container_spec.image, "v2");
				n++;
			}
		}
		assert_int_equal(n, 1);
	}
	assert_quiet(w, 111 * SEC);
	world_free(w);
}

static void tweak_bluegreen(struct service_rec *s)
{
	s->spec.update_strategy = fx_strdup("blue-green");
	s->spec.bluegreen.grace = 30 * SEC;
}

static void tweak_bluegreen_manual(struct service_rec *s)
{
	tweak_bluegreen(s);
	s->spec.bluegreen.promote = fx_strdup("manual");
}

/* Blue/green "web" of 3 replicas, running blue v1; then updated to v2 at 100 s
 * and the deployment started: its status written. */
static struct world *bluegreen_deploying(void (*tweak)(struct service_rec *))
{
	struct world *w = world_new();
	const struct service_rec *svc;
	struct command cmd;
	int64_t next;

	add_web(w, false, 3, tweak);
	run_until(w, 10 * SEC, 1000 * SEC);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, "blue"), 3);
	assert_int_equal(count_tasks(w, NULL, TASK_RUNNING, "green"), 0);
	w->min_serving = 3;
	update_web(w, 100 * SEC, image_v2);
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 1);
	svc = cmd.ops[0].record;
	assert_string_equal(svc->deployment.state, "deploying");
	assert_string_equal(svc->deployment.message, "starting the green set");
	assert_string_equal(svc->update_status.state, "updating");
	assert_int_equal(svc->update_status.started_at, 100 * SEC);
	apply(w, &cmd);

	/* One green task per slot, beside blue. */
	upd(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct task_rec *t = cmd.ops[i].record;

		assert_int_equal(cmd.ops[i].expect_version, COMMAND_EXPECT_NEW);
		assert_string_equal(t->color, "green");
		assert_int_equal(t->slot, i + 1);
		assert_string_equal(t->spec.container_spec.image, "v2");
	}
	apply(w, &cmd);
	orch(w, 100 * SEC, &cmd, &next);
	assert_int_equal(cmd.n_ops, 0);
	return w;
}

static void bluegreen_auto_promotes_then_removes_blue(void **state)
{
	struct world *w = bluegreen_deploying(tweak_bluegreen);
	const struct service_rec *svc;

	(void)state;
	assert_int_equal(settle(w, 100 * SEC), 130 * SEC);
	svc = web(w);
	assert_string_equal(svc->deployment.live_color, "green");
	assert_string_equal(svc->deployment.state, "promoted");
	assert_string_equal(svc->deployment.message, "traffic switched to green");
	assert_int_equal(svc->deployment.switched_at, 100 * SEC);
	assert_string_equal(svc->update_status.state, "updating");
	/* Blue is kept through the grace period. */
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, "green"), 3);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, "blue"), 3);
	assert_int_equal(settle(w, 129 * SEC), 130 * SEC);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, "blue"), 3);

	assert_int_equal(settle(w, 130 * SEC), 0);
	svc = web(w);
	assert_string_equal(svc->deployment.state, "completed");
	assert_string_equal(svc->deployment.message, "blue removed");
	assert_string_equal(svc->update_status.state, "completed");
	assert_string_equal(svc->update_status.message, "update completed");
	assert_int_equal(svc->update_status.completed_at, 130 * SEC);
	assert_int_equal(count_tasks(w, NULL, TASK_RUNNING, "blue"), 0);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, "green"), 3);
	assert_quiet(w, 131 * SEC);
	assert_quiet(w, 132 * SEC);
	world_free(w);
}

static void bluegreen_manual_waits_ready(void **state)
{
	struct world *w = bluegreen_deploying(tweak_bluegreen_manual);
	const struct service_rec *svc;

	(void)state;
	assert_int_equal(settle(w, 100 * SEC), 0);
	svc = web(w);
	assert_string_equal(svc->deployment.state, "ready");
	assert_string_equal(svc->deployment.message,
			    "green is healthy: run `shoal service promote web`");
	assert_null(svc->deployment.live_color);
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, "blue"), 3);
	assert_int_equal(count_tasks(w, "v2", TASK_RUNNING, "green"), 3);
	assert_quiet(w, 500 * SEC);
	world_free(w);
}

static void bluegreen_green_failure_keeps_blue(void **state)
{
	struct world *w = bluegreen_deploying(tweak_bluegreen);
	const struct service_rec *svc;
	char msg[160];
	size_t count;

	(void)state;
	w->fail_image = "v2";
	w->fail_slot = 2;
	assert_int_equal(settle(w, 100 * SEC), 0);
	svc = web(w);
	assert_string_equal(svc->deployment.state, "failed");
	snprintf(msg, sizeof(msg),
		 "green task %s failed: task: non-zero exit (1); blue keeps serving",
		 failed_task(w, "v2"));
	assert_string_equal(svc->deployment.message, msg);
	snprintf(msg, sizeof(msg),
		 "update rolled back due to failure or early termination of task %s",
		 failed_task(w, "v2"));
	assert_string_equal(svc->update_status.state, "rollback_completed");
	assert_string_equal(svc->update_status.message, msg);
	assert_string_equal(svc->spec.task_template.container_spec.image, "v1");
	assert_string_equal(svc->previous_spec.task_template.container_spec.image, "v2");
	assert_null(svc->deployment.live_color);
	/* Green is stopped, blue never touched. */
	assert_int_equal(count_tasks(w, NULL, TASK_RUNNING, "green"), 0);
	assert_int_equal(count_tasks(w, NULL, TASK_FAILED, "green"), 0);
	count = store_count(w->f->s, RECORD_TASKS);
	for (size_t i = 0; i < count; i++) {
		const struct task_rec *t = store_at(w->f->s, RECORD_TASKS, i);

		if (strcmp(updater_task_color(t), "blue") == 0) {
			assert_int_equal(t->status.state, TASK_RUNNING);
			assert_int_equal(t->desired_state, TASK_RUNNING);
			assert_int_equal(t->status.timestamp, 10 * SEC);
		}
	}
	assert_int_equal(count_tasks(w, "v1", TASK_RUNNING, "blue"), 3);
	assert_quiet(w, 500 * SEC);
	world_free(w);
}

static void bad_id(void *arg, char out[ORCH_ID_LEN + 1])
{
	(void)arg;
	snprintf(out, ORCH_ID_LEN + 1, "Not-An-Id");
}

static void bad_task_id_fails_cleanly(void **state)
{
	struct world *w = world_new();
	struct command cmd;
	struct shoal_err err;
	struct orch_env env;
	int64_t next = 1;

	(void)state;
	add_web(w, false, 2, tweak_start_first);
	run_until(w, 10 * SEC, 1000 * SEC);
	update_web(w, 100 * SEC, image_v2);
	upd(w, 100 * SEC, &cmd, &next);
	apply(w, &cmd); /* "updating": next, start-first needs a new task */
	env = env_at(w, 100 * SEC);
	env.new_id = bad_id;
	command_init(&cmd);
	assert_int_equal(updater_run(w->f->s, &env, &cmd, &next, &err), SHOAL_EINVAL);
	assert_int_equal(cmd.n_ops, 0);
	assert_int_equal(next, 0);
	assert_non_null(strstr(err.msg, "Not-An-Id"));
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(idle_service_writes_nothing),
	    cmocka_unit_test(rolling_stop_first_in_batches),
	    cmocka_unit_test(rolling_start_first),
	    cmocka_unit_test(failure_pauses),
	    cmocka_unit_test(failure_rolls_back),
	    cmocka_unit_test(failure_continue),
	    cmocka_unit_test(failure_ratio_tolerates),
	    cmocka_unit_test(force_update_dirties_all),
	    cmocka_unit_test(slots_above_replicas_are_updated),
	    cmocka_unit_test(global_updates_node_by_node),
	    cmocka_unit_test(bluegreen_auto_promotes_then_removes_blue),
	    cmocka_unit_test(bluegreen_manual_waits_ready),
	    cmocka_unit_test(bluegreen_green_failure_keeps_blue),
	    cmocka_unit_test(bad_task_id_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
