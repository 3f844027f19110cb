/* Unit tests of node/agent.c: tasks to containers (process driver), reports, restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "node/agent.h"
#include "node/agent_task.h"
#include "runtime/image_load.h"

#define NODE	 "node1"
#define IMAGE	 "shoal-demo:latest"
#define WAIT_MS	 10000u
#define MAX_REPS 512u

struct rep {
	uint64_t batch;
	struct agent_report r;
};

struct fx {
	char dir[PATH_MAX];
	uv_loop_t loop;
	struct image_store *images;
	struct containers *cs;
	struct agent *agent;
	struct agent_config cfg;
	char agent_dir[PATH_MAX + 16];
	bool auto_ack;
	struct rep reps[MAX_REPS];
	size_t n_reps;
	bool closed;
};

static struct fx *F;

/* ---- the fixture ---- */

static void on_report(void *arg, uint64_t batch, const struct agent_report *reports, size_t n)
{
	struct fx *f = arg;

	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(f->n_reps < MAX_REPS);
		f->reps[f->n_reps].batch = batch;
		f->reps[f->n_reps].r = reports[i];
		f->n_reps++;
	}
	if (f->auto_ack)
		agent_reports_acked(f->agent, batch);
}

static void on_event(void *arg, const struct container *c, enum ctr_event ev)
{
	struct fx *f = arg;

	if (f->agent != NULL)
		agent_container_event(f->agent, c, ev);
}

static void demo_image_path(char out[PATH_MAX])
{
	const char *env = getenv("SHOAL_DEMO_IMAGE");
	char exe[PATH_MAX];
	ssize_t n;

	if (env != NULL && env[0] != '\0') {
		snprintf(out, PATH_MAX, "%s", env);
		return;
	}
	/* BUILD/tests/unit/test_agent -> BUILD/shoal-demo.tar */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(out, PATH_MAX, "%s/../../shoal-demo.tar", dirname(exe));
}

static void wake(uv_timer_t *h)
{
	*(bool *)h->data = true;
}

/* Run the loop until @cond holds, at most @ms. Returns whether it held. */
static bool run_until(bool (*cond)(void *arg), void *arg, unsigned ms)
{
	uv_timer_t timer;
	bool expired = false, ok;

	uv_timer_init(&F->loop, &timer);
	timer.data = &expired;
	uv_timer_start(&timer, wake, ms, 0);
	while (!(ok = cond(arg)) && !expired)
		uv_run(&F->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&F->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

static void agent_start(void)
{
	struct shoal_err err;

	assert_int_equal(agent_open(&F->cfg, &F->agent, &err), 0);
}

static void agent_closed(void *arg)
{
	*(bool *)arg = true;
}

static bool flag_set(void *arg)
{
	return *(bool *)arg;
}

static void agent_stop(void)
{
	bool done = false;

	agent_close(F->agent, agent_closed, &done);
	assert_true(run_until(flag_set, &done, WAIT_MS));
	F->agent = NULL;
}

static int setup(void **state)
{
	char image[PATH_MAX], root[PATH_MAX + 16];
	struct image_load_result lr;
	struct ctr_config cc;
	struct shoal_err err;

	demo_image_path(image);
	if (!fs_exists(image)) {
		fprintf(stderr,
			"# the demo image %s is missing: build it with `make demo-image` in the "
			"build directory, or set SHOAL_DEMO_IMAGE\n",
			image);
		return -1;
	}
	F = calloc(1, sizeof(*F));
	assert_non_null(F);
	snprintf(F->dir, sizeof(F->dir), "/tmp/shoal-agent.XXXXXX");
	assert_non_null(mkdtemp(F->dir));
	assert_int_equal(uv_loop_init(&F->loop), 0);

	snprintf(root, sizeof(root), "%s/images", F->dir);
	assert_int_equal(image_store_open(root, &F->images, &err), 0);
	memset(&lr, 0, sizeof(lr));
	if (image_load_file(F->images, image, &lr, &err) != 0)
		fail_msg("loading %s: %s", image, err.msg);
	image_load_result_free(&lr);

	memset(&cc, 0, sizeof(cc));
	snprintf(root, sizeof(root), "%s/containers", F->dir);
	cc.loop = &F->loop;
	cc.root = root;
	cc.driver = CTR_DRIVER_PROCESS;
	cc.images = F->images;
	cc.on_event = on_event;
	cc.arg = F;
	if (ctr_open(&cc, &F->cs, &err) != 0)
		fail_msg("ctr_open: %s", err.msg);

	snprintf(F->agent_dir, sizeof(F->agent_dir), "%s/agent", F->dir);
	F->cfg.loop = &F->loop;
	F->cfg.state_dir = F->agent_dir;
	F->cfg.node_id = NODE;
	F->cfg.containers = F->cs;
	F->cfg.images = F->images;
	F->cfg.report = on_report;
	F->cfg.arg = F;
	F->auto_ack = true;
	agent_start();
	*state = F;
	return 0;
}

static void removed(void *arg, int status, const char *msg)
{
	(void)status;
	(void)msg;
	(*(int *)arg)--;
}

static bool int_zero(void *arg)
{
	return *(int *)arg == 0;
}

static void ctr_closed(void *arg)
{
	*(bool *)arg = true;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int pending = 0;
	bool done = false;

	if (f->agent != NULL)
		agent_stop();
	/* Containers outlive their daemon: end them here. */
	while (ctr_count(f->cs) > 0) {
		pending = 1;
		ctr_remove(f->cs, ctr_at(f->cs, 0)->id, true, removed, &pending);
		assert_true(run_until(int_zero, &pending, WAIT_MS));
	}
	ctr_close(f->cs, ctr_closed, &done);
	assert_true(run_until(flag_set, &done, WAIT_MS));
	image_store_close(f->images);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	fs_rm_rf(f->dir, NULL);
	free(f);
	F = NULL;
	return 0;
}

/* ---- tasks ---- */

static struct task_rec *task_make(const char *id, uint64_t slot, const char *shell)
{
	struct task_rec *t = calloc(1, sizeof(*t));
	struct shoal_err err;

	assert_non_null(t);
	assert_int_equal(task_rec_defaults(t, &err), 0);
	t->meta.id = strdup(id);
	t->service_id = strdup("svc0000000000000000000001");
	t->node_id = strdup(NODE);
	t->slot = slot;
	t->status.state = TASK_ASSIGNED;
	t->status.message = strdup("scheduler assigned task to node");
	t->desired_state = TASK_RUNNING;
	assert_int_equal(schema_map_set(&t->labels, AGENT_LABEL_SERVICE_NAME, "web", &err), 0);
	t->spec.container_spec.image = strdup(IMAGE);
	assert_int_equal(schema_strlist_append(&t->spec.container_spec.command, "sh", &err), 0);
	assert_int_equal(schema_strlist_append(&t->spec.container_spec.args, "-c", &err), 0);
	assert_int_equal(schema_strlist_append(&t->spec.container_spec.args, shell, &err), 0);
	t->spec.container_spec.stop_grace_period = 2000000000LL;
	return t;
}

static void tasks_free(struct task_rec **tasks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		task_rec_free(tasks[i]);
		free(tasks[i]);
	}
}

static int assign(uint64_t version, struct task_rec **tasks, size_t n, struct shoal_err *err)
{
	return agent_assign(F->agent, version, (const struct task_rec *const *)tasks, n, err);
}

static void assign_ok(uint64_t version, struct task_rec **tasks, size_t n)
{
	struct shoal_err err;

	if (assign(version, tasks, n, &err) != 0)
		fail_msg("agent_assign: %s", err.msg);
}

/* The newest report received for task @id, or NULL. */
static const struct agent_report *last_report(const char *id)
{
	for (size_t i = F->n_reps; i-- > 0;)
		if (strcmp(F->reps[i].r.task_id, id) == 0)
			return &F->reps[i].r;
	return NULL;
}

static size_t count_reports(const char *id, enum task_state state)
{
	size_t n = 0;

	for (size_t i = 0; i < F->n_reps; i++)
		if (strcmp(F->reps[i].r.task_id, id) == 0 && F->reps[i].r.state == state)
			n++;
	return n;
}

struct want {
	const char *id;
	enum task_state state;
};

static bool reached(void *arg)
{
	const struct want *w = arg;
	const struct agent_report *r = last_report(w->id);

	return r != NULL && r->state == w->state;
}

static void wait_state(const char *id, enum task_state state)
{
	struct want w = {id, state};
	const struct agent_report *r;

	if (!run_until(reached, &w, WAIT_MS)) {
		r = last_report(id);
		fail_msg("task %s never reported %s (last: %s, err \"%s\")", id,
			 schema_enum_name(task_state_names, (int)state),
			 r != NULL ? schema_enum_name(task_state_names, (int)r->state) : "none",
			 r != NULL ? r->err : "");
	}
}

static const struct container *ctr_of(const char *id)
{
	for (size_t i = 0; i < ctr_count(F->cs); i++) {
		const struct container *c = ctr_at(F->cs, i);
		const char *tid = agent_ctr_task_id(c);
		if (tid != NULL && strcmp(tid, id) == 0)
			return c;
	}
	return NULL;
}

static bool ctr_gone(void *arg)
{
	return ctr_of(arg) == NULL;
}

static bool ctr_not_running(void *arg)
{
	const struct container *c = ctr_of(arg);

	return c != NULL && c->state != CTR_RUNNING;
}

/* Every report of @id is newer than the one before, and within @lo..@hi. */
static void assert_forward(const char *id, enum task_state lo, enum task_state hi)
{
	int prev = -1;

	for (size_t i = 0; i < F->n_reps; i++) {
		const struct agent_report *r = &F->reps[i].r;
		if (strcmp(r->task_id, id) != 0)
			continue;
		assert_true((int)r->state > prev);
		assert_true(r->state >= lo && r->state <= hi);
		prev = (int)r->state;
	}
	assert_true(prev >= 0);
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* ---- tests ---- */

static void two_tasks_run(void **state)
{
	struct task_rec *tasks[2] = {task_make("taska", 1, "sleep 1000"),
				     task_make("taskb", 2, "sleep 1000")};
	const struct container *c;
	const struct agent_report *r;
	const char *ids[2] = {"taska", "taskb"};

	(void)state;
	assign_ok(7, tasks, 2);
	assert_int_equal(agent_version(F->agent), 7);
	for (size_t i = 0; i < 2; i++) {
		wait_state(ids[i], TASK_RUNNING);
		assert_forward(ids[i], TASK_ACCEPTED, TASK_RUNNING);
		r = last_report(ids[i]);
		assert_string_equal(r->message, "started");
		assert_true(is_hex64(r->container_id));
		assert_true(r->pid > 0);
		assert_true(r->timestamp > 0);
		c = ctr_of(ids[i]);
		assert_non_null(c);
		assert_string_equal(c->id, r->container_id);
		assert_int_equal(c->state, CTR_RUNNING);
	}
	assert_int_equal(ctr_count(F->cs), 2);
	c = ctr_of("taska");
	assert_string_equal(c->name, "web.1.taska");
	assert_int_equal(c->spec.stop_timeout, 2);
	tasks_free(tasks, 2);
}

static void labels_and_global_name(void **state)
{
	struct task_rec *t = task_make("taskg", 0, "sleep 1000");
	const struct container *c;
	char want[128];
	struct {
		const char *k, *v;
	} labels[] = {
	    {AGENT_LABEL_TASK_ID, "taskg"},
	    {AGENT_LABEL_SERVICE_ID, "svc0000000000000000000001"},
	    {AGENT_LABEL_SERVICE_NAME, "web"},
	    {AGENT_LABEL_NODE_ID, NODE},
	    {AGENT_LABEL_TASK_NAME, "web." NODE ".taskg"},
	    {"tier", "front"},
	};
	struct shoal_err err;

	(void)state;
	assert_int_equal(schema_map_set(&t->spec.container_spec.labels, "tier", "front", &err), 0);
	assign_ok(1, &t, 1);
	wait_state("taskg", TASK_RUNNING);
	c = ctr_of("taskg");
	assert_non_null(c);
	snprintf(want, sizeof(want), "web.%s.taskg", NODE);
	assert_string_equal(c->name, want);
	for (size_t i = 0; i < ARRAY_SIZE(labels); i++) {
		bool found = false;
		for (size_t j = 0; j < c->spec.n_labels; j++)
			if (strcmp(c->spec.labels[j].key, labels[i].k) == 0) {
				assert_string_equal(c->spec.labels[j].value, labels[i].v);
				found = true;
			}
		assert_true(found);
	}
	tasks_free(&t, 1);
}

static void exit_3_fails(void **state)
{
	struct task_rec *t = task_make("taskx", 1, "exit 3");
	const struct agent_report *r;

	(void)state;
	assign_ok(1, &t, 1);
	wait_state("taskx", TASK_FAILED);
	assert_forward("taskx", TASK_ACCEPTED, TASK_FAILED);
	r = last_report("taskx");
	assert_string_equal(r->err, "task: non-zero exit (3)");
	assert_int_equal(r->exit_code, 3);
	assert_true(is_hex64(r->container_id));
	/* The agent never restarts it; the container stays until shutdown. */
	assert_non_null(ctr_of("taskx"));
	assert_int_equal(ctr_of("taskx")->state, CTR_EXITED);
	assert_int_equal(ctr_of("taskx")->restart_count, 0);
	tasks_free(&t, 1);
}

static void exit_0_completes(void **state)
{
	struct task_rec *t = task_make("taskz", 1, "exit 0");
	const struct agent_report *r;

	(void)state;
	assign_ok(1, &t, 1);
	wait_state("taskz", TASK_COMPLETE);
	r = last_report("taskz");
	assert_string_equal(r->message, "finished");
	assert_string_equal(r->err, "");
	assert_int_equal(r->exit_code, 0);
	tasks_free(&t, 1);
}

static void desired_shutdown_stops_and_removes(void **state)
{
	struct task_rec *t = task_make("tasks", 1, "sleep 1000");
	char ctr_id[65];
	const struct agent_report *r;

	(void)state;
	assign_ok(1, &t, 1);
	wait_state("tasks", TASK_RUNNING);
	snprintf(ctr_id, sizeof(ctr_id), "%s", last_report("tasks")->container_id);
	t->desired_state = TASK_SHUTDOWN;
	assign_ok(2, &t, 1);
	wait_state("tasks", TASK_SHUTDOWN);
	r = last_report("tasks");
	assert_string_equal(r->message, "shutdown");
	assert_string_equal(r->container_id, ctr_id);
	assert_null(ctr_of("tasks"));
	assert_int_equal(ctr_count(F->cs), 0);
	tasks_free(&t, 1);
}

static void older_version_ignored(void **state)
{
	struct task_rec *a = task_make("taska", 1, "sleep 1000");
	struct task_rec *b = task_make("taskb", 2, "sleep 1000");
	struct task_rec *both[2] = {a, b};
	char ctr_id[65];
	struct shoal_err err;

	(void)state;
	assign_ok(5, &a, 1);
	wait_state("taska", TASK_RUNNING);
	snprintf(ctr_id, sizeof(ctr_id), "%s", ctr_of("taska")->id);
	/* Older and equal versions: nothing changes, not even the saved set. */
	assert_int_equal(assign(3, NULL, 0, &err), 0);
	assert_int_equal(assign(5, NULL, 0, &err), 0);
	assert_int_equal(agent_version(F->agent), 5);
	/* A newer set adds b; a was never touched by the empty ones. */
	assign_ok(6, both, 2);
	wait_state("taskb", TASK_RUNNING);
	assert_non_null(ctr_of("taska"));
	assert_string_equal(ctr_of("taska")->id, ctr_id);
	assert_int_equal(ctr_of("taska")->state, CTR_RUNNING);
	assert_int_equal(count_reports("taska", TASK_SHUTDOWN), 0);
	tasks_free(both, 2);
}

static void task_left_out_is_removed(void **state)
{
	struct task_rec *tasks[2] = {task_make("taska", 1, "sleep 1000"),
				     task_make("taskb", 2, "sleep 1000")};
	size_t before;

	(void)state;
	assign_ok(1, tasks, 2);
	wait_state("taska", TASK_RUNNING);
	wait_state("taskb", TASK_RUNNING);
	before = count_reports("taska", TASK_RUNNING);
	assign_ok(2, &tasks[1], 1);
	assert_true(run_until(ctr_gone, (void *)"taska", WAIT_MS));
	assert_int_equal(ctr_count(F->cs), 1);
	assert_int_equal(ctr_of("taskb")->state, CTR_RUNNING);
	/* No report for a task that is not ours any more. */
	assert_int_equal(count_reports("taska", TASK_RUNNING), before);
	assert_int_equal(count_reports("taska", TASK_SHUTDOWN), 0);
	tasks_free(tasks, 2);
}

struct at_least {
	const char *id;
	enum task_state state;
	size_t n;
};

static bool reports_at_least(void *arg)
{
	const struct at_least *w = arg;

	return count_reports(w->id, w->state) >= w->n;
}

static void reports_resent_until_acked(void **state)
{
	struct task_rec *t = task_make("taskr", 1, "sleep 1000");
	struct at_least w = {"taskr", TASK_RUNNING, 2};
	uint64_t first = 0, last = 0;
	size_t n;

	(void)state;
	F->auto_ack = false;
	assign_ok(1, &t, 1);
	wait_state("taskr", TASK_RUNNING);
	assert_true(run_until(reports_at_least, &w, WAIT_MS));
	for (size_t i = 0; i < F->n_reps; i++) {
		if (F->reps[i].r.state != TASK_RUNNING)
			continue;
		if (first == 0)
			first = F->reps[i].batch;
		last = F->reps[i].batch;
	}
	assert_true(last > first); /* the same report, sent again in a new batch */
	/* An ack of an older batch does not stop the re-sending. */
	agent_reports_acked(F->agent, first);
	w.n = count_reports("taskr", TASK_RUNNING) + 1;
	assert_true(run_until(reports_at_least, &w, WAIT_MS));
	assert_string_equal(last_report("taskr")->message, "started");
	/* Acked: silence for several re-send periods. */
	for (size_t i = 0; i < F->n_reps; i++)
		last = F->reps[i].batch;
	agent_reports_acked(F->agent, last);
	n = F->n_reps;
	assert_false(run_until(never, NULL, 3 * AGENT_RESEND_MS));
	assert_int_equal(F->n_reps, n);
	tasks_free(&t, 1);
}

static bool all_reported_running(void *arg)
{
	(void)arg;
	return last_report("taska") != NULL && last_report("taska")->state == TASK_RUNNING &&
	       last_report("taskb") != NULL && last_report("taskb")->state == TASK_RUNNING;
}

static void reopen_readopts(void **state)
{
	struct task_rec *tasks[2] = {task_make("taska", 1, "sleep 1000"),
				     task_make("taskb", 2, "sleep 1000")};
	char ids[2][65];

	(void)state;
	assign_ok(9, tasks, 2);
	wait_state("taska", TASK_RUNNING);
	wait_state("taskb", TASK_RUNNING);
	snprintf(ids[0], sizeof(ids[0]), "%s", ctr_of("taska")->id);
	snprintf(ids[1], sizeof(ids[1]), "%s", ctr_of("taskb")->id);
	agent_stop();
	/* The containers run on with no agent. */
	assert_int_equal(ctr_count(F->cs), 2);
	F->n_reps = 0;
	agent_start();
	assert_int_equal(agent_version(F->agent), 9);
	assert_true(run_until(all_reported_running, NULL, WAIT_MS));
	assert_string_equal(last_report("taska")->container_id, ids[0]);
	assert_string_equal(last_report("taskb")->container_id, ids[1]);
	assert_int_equal(ctr_count(F->cs), 2);
	assert_string_equal(ctr_of("taska")->id, ids[0]);
	assert_string_equal(ctr_of("taskb")->id, ids[1]);
	assert_int_equal(ctr_of("taska")->state, CTR_RUNNING);
	assert_int_equal(ctr_of("taskb")->state, CTR_RUNNING);
	/* And the reloaded set is applied like any: b leaves, its container goes. */
	assign_ok(10, tasks, 1);
	assert_true(run_until(ctr_gone, (void *)"taskb", WAIT_MS));
	assert_int_equal(ctr_count(F->cs), 1);
	tasks_free(tasks, 2);
}

static void started(void *arg, int status, const char *msg)
{
	(void)msg;
	assert_int_equal(status, 0);
	*(bool *)arg = true;
}

static void reopen_removes_containers_of_other_tasks(void **state)
{
	struct task_rec *tasks[2] = {task_make("taska", 1, "sleep 1000"),
				     task_make("taskold", 2, "sleep 1000")};
	const struct container *c;
	struct shoal_err err;
	struct ctr_spec spec;
	bool done = false;

	(void)state;
	assign_ok(1, tasks, 1);
	wait_state("taska", TASK_RUNNING);
	agent_stop();
	/* A container of a task this node no longer has (replaced while the
	 * node was cut off), running when the agent comes back. */
	assert_int_equal(agent_task_spec(tasks[1], NODE, &spec, &err), 0);
	assert_int_equal(ctr_create(F->cs, &spec, &c, &err), 0);
	ctr_spec_free(&spec);
	ctr_start(F->cs, c->id, started, &done);
	assert_true(run_until(flag_set, &done, WAIT_MS));
	assert_int_equal(ctr_count(F->cs), 2);
	agent_start();
	assert_true(run_until(ctr_gone, (void *)"taskold", WAIT_MS));
	assert_non_null(ctr_of("taska"));
	assert_int_equal(ctr_of("taska")->state, CTR_RUNNING);
	assert_int_equal(count_reports("taskold", TASK_SHUTDOWN), 0);
	tasks_free(tasks, 2);
}

static void unhealthy_fails(void **state)
{
	struct task_rec *t = task_make("taskh", 1, "sleep 1000");
	struct shoal_err err;
	const struct agent_report *r;

	(void)state;
	assert_int_equal(
	    schema_strlist_append(&t->spec.container_spec.healthcheck.test, "CMD-SHELL", &err), 0);
	assert_int_equal(
	    schema_strlist_append(&t->spec.container_spec.healthcheck.test, "exit 1", &err), 0);
	t->spec.container_spec.healthcheck.interval = 100000000LL;
	t->spec.container_spec.healthcheck.timeout = 2000000000LL;
	t->spec.container_spec.healthcheck.retries = 1;
	assign_ok(1, &t, 1);
	wait_state("taskh", TASK_FAILED);
	r = last_report("taskh");
	assert_string_equal(r->err, "task: unhealthy container");
	/* Stopped, kept until the task is shut down. */
	assert_true(run_until(ctr_not_running, (void *)"taskh", WAIT_MS));
	assert_non_null(ctr_of("taskh"));
	tasks_free(&t, 1);
}

static void sets_during_start(void **state)
{
	struct task_rec *t = task_make("taskc", 1, "sleep 1000");
	struct task_rec *u = task_make("taskd", 2, "sleep 1000");

	(void)state;
	/* The same task in two sets before anything ran: one container. */
	assign_ok(1, &t, 1);
	assign_ok(2, &t, 1);
	wait_state("taskc", TASK_RUNNING);
	assert_int_equal(ctr_count(F->cs), 1);
	/* Desired shutdown in the set right after the one that starts it. */
	assign_ok(3, (struct task_rec *[]){t, u}, 2);
	u->desired_state = TASK_SHUTDOWN;
	assign_ok(4, (struct task_rec *[]){t, u}, 2);
	wait_state("taskd", TASK_SHUTDOWN);
	assert_null(ctr_of("taskd"));
	assert_int_equal(ctr_count(F->cs), 1);
	assert_forward("taskd", TASK_ACCEPTED, TASK_SHUTDOWN);
	tasks_free(&t, 1);
	tasks_free(&u, 1);
}

static void sets_during_stop(void **state)
{
	/* Ignores SIGTERM: the stop takes the whole grace period (1 s). */
	struct task_rec *t = task_make("taskt", 1, "trap '' TERM; sleep 1000; true");
	struct task_rec *u = task_make("tasku", 2, "sleep 1000");
	const struct container *c;

	(void)state;
	t->spec.container_spec.stop_grace_period = 1000000000LL;
	assign_ok(1, &t, 1);
	wait_state("taskt", TASK_RUNNING);
	t->desired_state = TASK_SHUTDOWN;
	assign_ok(2, &t, 1);
	/* Sets while it is being stopped: no second stop, no early remove. */
	assign_ok(3, (struct task_rec *[]){t, u}, 2);
	c = ctr_of("taskt");
	assert_non_null(c);
	assert_int_equal(c->state, CTR_RUNNING);
	wait_state("tasku", TASK_RUNNING);
	assign_ok(4, (struct task_rec *[]){t, u}, 2);
	wait_state("taskt", TASK_SHUTDOWN);
	assert_null(ctr_of("taskt"));
	assert_int_equal(count_reports("taskt", TASK_SHUTDOWN), 1);
	assert_int_equal(last_report("taskt")->exit_code, 137); /* SIGKILL after the grace */
	assert_int_equal(ctr_count(F->cs), 1);
	tasks_free(&t, 1);
	tasks_free(&u, 1);
}

/* ---- starts in flight ---- */

#define N_BOUNDED (2 * AGENT_MAX_STARTS + 1)

/* Starts the agent asked for, held until the test lets them go. */
struct held {
	char id[65];
	ctr_cb cb;
	void *arg;
};
static struct held held[N_BOUNDED * 2];
static size_t n_held, n_let_go, max_in_flight;

static size_t in_flight(void)
{
	return n_held - n_let_go;
}

static void held_start(struct containers *cs, const char *id, ctr_cb cb, void *arg)
{
	(void)cs;
	assert_true(n_held < ARRAY_SIZE(held));
	/* At most one start per container (so per task) at a time. */
	for (size_t i = n_let_go; i < n_held; i++)
		assert_string_not_equal(held[i].id, id);
	snprintf(held[n_held].id, sizeof(held[n_held].id), "%s", id);
	held[n_held].cb = cb;
	held[n_held].arg = arg;
	n_held++;
	if (in_flight() > max_in_flight)
		max_in_flight = in_flight();
	assert_true(in_flight() <= AGENT_MAX_STARTS);
}

/* Let the oldest held start go: the real one (the process driver answers
 * at once). */
static void let_go(void)
{
	struct held *h = &held[n_let_go++];

	ctr_start(F->cs, h->id, h->cb, h->arg);
}

static bool slots_full_or_all_asked(void *arg)
{
	(void)arg;
	return in_flight() == AGENT_MAX_STARTS || n_held == N_BOUNDED;
}

static bool task_has_report(void *arg)
{
	return last_report(arg) != NULL;
}

static void starts_bounded(void **state)
{
	struct task_rec *tasks[N_BOUNDED];
	char ids[N_BOUNDED][16];
	char *waiting = NULL;

	(void)state;
	agent_stop();
	n_held = n_let_go = max_in_flight = 0;
	F->cfg.start = held_start;
	agent_start();
	for (size_t i = 0; i < N_BOUNDED; i++) {
		snprintf(ids[i], sizeof(ids[i]), "taskn%zu", i);
		tasks[i] = task_make(ids[i], i + 1, "sleep 1000");
	}
	assign_ok(1, tasks, N_BOUNDED);
	/* Starts begin on the next turns of the loop, one per turn, until every
	 * slot is taken; the other tasks wait without a container, reported
	 * preparing. */
	assert_int_equal(in_flight(), 0);
	assert_true(run_until(slots_full_or_all_asked, NULL, WAIT_MS));
	assert_int_equal(in_flight(), AGENT_MAX_STARTS);
	assert_int_equal(ctr_count(F->cs), AGENT_MAX_STARTS);
	for (size_t i = 0; i < N_BOUNDED && waiting == NULL; i++)
		if (ctr_of(ids[i]) == NULL)
			waiting = ids[i];
	assert_non_null(waiting);
	assert_true(run_until(task_has_report, waiting, WAIT_MS));
	assert_int_equal(last_report(waiting)->state, TASK_PREPARING);
	/* Each start that ends lets one waiting task start, never more. */
	while (in_flight() > 0) {
		let_go();
		if (n_held < N_BOUNDED)
			assert_true(run_until(slots_full_or_all_asked, NULL, WAIT_MS));
		assert_true(in_flight() <= AGENT_MAX_STARTS);
	}
	assert_int_equal(n_held, N_BOUNDED);
	assert_int_equal(max_in_flight, AGENT_MAX_STARTS);
	for (size_t i = 0; i < N_BOUNDED; i++) {
		wait_state(ids[i], TASK_RUNNING);
		assert_forward(ids[i], TASK_ACCEPTED, TASK_RUNNING);
	}
	assert_int_equal(ctr_count(F->cs), N_BOUNDED);
	tasks_free(tasks, N_BOUNDED);
}

static bool some_report(void *arg)
{
	(void)arg;
	return F->n_reps > 0;
}

static bool one_in_flight(void *arg)
{
	(void)arg;
	return in_flight() == 1;
}

static void one_batch_in_flight(void **state)
{
	struct task_rec *t = task_make("taskf", 1, "sleep 1000");
	uint64_t first, sent_by;
	size_t n;

	(void)state;
	agent_stop();
	n_held = n_let_go = max_in_flight = 0;
	F->cfg.start = held_start;
	F->auto_ack = false;
	agent_start();
	assign_ok(1, &t, 1);
	assert_true(run_until(some_report, NULL, WAIT_MS));
	sent_by = clock_mono_ms();
	first = F->reps[F->n_reps - 1].batch;
	n = F->n_reps;
	assert_true(last_report("taskf")->state < TASK_RUNNING);
	/* Running now, but the batch sent has no answer: nothing more goes. */
	assert_true(run_until(one_in_flight, NULL, WAIT_MS));
	let_go();
	assert_false(run_until(never, NULL, 3 * AGENT_REPORT_MS));
	assert_int_equal(F->n_reps, n);
	/* Refused (out of sequence): sent again at once, newest state, in a new
	 * batch, well before the re-send of an unanswered batch. */
	agent_reports_refused(F->agent, first);
	wait_state("taskf", TASK_RUNNING);
	assert_true(clock_mono_ms() - sent_by < AGENT_RESEND_MS);
	assert_true(F->reps[F->n_reps - 1].batch > first);
	agent_reports_acked(F->agent, F->reps[F->n_reps - 1].batch);
	tasks_free(&t, 1);
}

static void missing_image_rejected(void **state)
{
	struct task_rec *t = task_make("taskm", 1, "sleep 1000");
	const struct agent_report *r;

	(void)state;
	free(t->spec.container_spec.image);
	t->spec.container_spec.image = strdup("nosuch:latest");
	assign_ok(1, &t, 1);
	wait_state("taskm", TASK_REJECTED);
	r = last_report("taskm");
	assert_non_null(strstr(r->err, "No such image: nosuch:latest"));
	assert_int_equal(ctr_count(F->cs), 0);
	assert_forward("taskm", TASK_ACCEPTED, TASK_REJECTED);
	tasks_free(&t, 1);
}

static void bad_sets_refused(void **state)
{
	struct task_rec *a = task_make("taska", 1, "sleep 1000");
	struct task_rec *a2 = task_make("taska", 2, "sleep 1000");
	struct task_rec *other = task_make("tasko", 3, "sleep 1000");
	struct task_rec *noid = task_make("taskn", 4, "sleep 1000");
	struct shoal_err err;

	(void)state;
	assert_int_equal(assign(1, (struct task_rec *[]){a, a2}, 2, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
	free(other->node_id);
	other->node_id = strdup("node2");
	assert_int_equal(assign(1, &other, 1, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "node2"));
	free(noid->meta.id);
	noid->meta.id = NULL;
	assert_int_equal(assign(1, &noid, 1, &err), SHOAL_EINVAL);
	assert_int_equal(agent_version(F->agent), 0);
	assert_int_equal(ctr_count(F->cs), 0);
	assert_int_equal(F->n_reps, 0);
	tasks_free(&a, 1);
	tasks_free(&a2, 1);
	tasks_free(&other, 1);
	tasks_free(&noid, 1);
}

static void task_spec_mapping(void **state)
{
	struct task_rec *t = task_make("taskq", 3, "true");
	struct ctr_spec s;
	struct shoal_err err;
	struct svc_mount *m;

	(void)state;
	t->spec.container_spec.dir = strdup("/tmp");
	t->spec.container_spec.user = strdup("1000:1000");
	t->spec.container_spec.stop_signal = strdup("SIGINT");
	t->spec.container_spec.read_only = true;
	t->spec.resources.limits.memory_bytes = 64 << 20;
	t->spec.resources.limits.nano_cpus = 500000000;
	t->spec.resources.limits.pids = 50;
	assert_int_equal(schema_strlist_append(&t->spec.container_spec.env, "A=1", &err), 0);
	assert_int_equal(agent_task_spec(t, NODE, &s, &err), 0);
	assert_string_equal(s.name, "web.3.taskq");
	assert_string_equal(s.image, IMAGE);
	assert_true(s.entrypoint_set);
	assert_string_equal(s.entrypoint.items[0], "sh");
	assert_int_equal(s.cmd.n, 2);
	assert_string_equal(s.env.items[0], "A=1");
	assert_string_equal(s.workdir, "/tmp");
	assert_string_equal(s.user, "1000:1000");
	assert_string_equal(s.stop_signal, "SIGINT");
	assert_int_equal(s.stop_timeout, 2);
	assert_true(s.readonly_rootfs);
	assert_int_equal(s.memory, 64 << 20);
	assert_int_equal(s.nano_cpus, 500000000);
	assert_int_equal(s.pids_limit, 50);
	for (size_t i = 1; i < s.n_labels; i++)
		assert_true(strcmp(s.labels[i - 1].key, s.labels[i].key) < 0);
	ctr_spec_free(&s);

	/* A volume mount is refused with a sentence. */
	t->spec.container_spec.mounts.items = calloc(1, sizeof(struct svc_mount));
	t->spec.container_spec.mounts.n = 1;
	m = t->spec.container_spec.mounts.items;
	m->type = strdup("volume");
	m->source = strdup("data");
	m->target = strdup("/data");
	assert_int_equal(agent_task_spec(t, NODE, &s, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "volume"));
	tasks_free(&t, 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(two_tasks_run),
	    T(labels_and_global_name),
	    T(exit_3_fails),
	    T(exit_0_completes),
	    T(desired_shutdown_stops_and_removes),
	    T(older_version_ignored),
	    T(task_left_out_is_removed),
	    T(reports_resent_until_acked),
	    T(reopen_readopts),
	    T(reopen_removes_containers_of_other_tasks),
	    T(unhealthy_fails),
	    T(sets_during_start),
	    T(sets_during_stop),
	    T(starts_bounded),
	    T(one_batch_in_flight),
	    T(missing_image_rejected),
	    T(bad_sets_refused),
	    T(task_spec_mapping),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
