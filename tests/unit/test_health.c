/* Unit tests of runtime/health: Docker's HEALTHCHECK state machine on a real uv loop, fake probes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/err.h"
#include "runtime/health.h"
#include "runtime/oci.h"

/* ---- a scripted probe runner ---- */

enum step_kind {
	STEP_ASYNC, /* done(code) after delay_ms, from a uv timer */
	STEP_SYNC,  /* done(code) from inside run() */
	STEP_HANG,  /* runs until killed: at timeout_ms, or on cancel, done(-1) */
};

struct step {
	enum step_kind kind;
	int code;
	uint64_t delay_ms;
	size_t out_len; /* 0: "out <n>" */
};

#define MAX_RUNS 64

struct fake {
	uv_loop_t *loop;
	uv_timer_t timer;
	const struct step *script;
	size_t n_script;
	bool sync_cancel; /* cancel calls done from inside */
	/* what happened */
	int runs;
	int running;
	int max_running;
	int cancels;
	int completed;
	uint64_t run_at[MAX_RUNS]; /* loop time of each run() */
	char argv[4][64];
	size_t argc;
	/* the running probe */
	void (*done)(void *done_arg, int exit_code, const char *output, size_t len);
	void *done_arg;
	int code;
	size_t out_len;
};

struct fx {
	uv_loop_t loop;
	struct fake fake;
	struct health_exec_ops ops;
	struct health *h;
	enum health_status changes[MAX_RUNS];
	int change_runs[MAX_RUNS]; /* fake.runs when each change came */
	uint64_t change_at[MAX_RUNS];
	int n_changes;
	enum health_status stop_on; /* health_stop() from on_change at this status */
	bool stopped;
	uint64_t start_at;
};

static void fake_finish(struct fake *f, int code)
{
	char out[5000];
	size_t len;

	assert_int_equal(f->running, 1);
	f->running = 0;
	f->completed++;
	if (f->out_len > 0) {
		len = f->out_len;
		memset(out, 'o', len);
	} else {
		len = (size_t)snprintf(out, sizeof(out), "out %d", f->runs);
	}
	f->done(f->done_arg, code, out, len);
}

static void fake_timer_cb(uv_timer_t *t)
{
	struct fake *f = t->data;

	fake_finish(f, f->code);
}

static void fake_run(void *arg, const char *const *argv, uint64_t timeout_ms,
		     void (*done)(void *done_arg, int exit_code, const char *output, size_t len),
		     void *done_arg)
{
	struct fake *f = arg;
	const struct step *s;

	assert_true(f->runs < MAX_RUNS);
	s = &f->script[(size_t)f->runs < f->n_script ? (size_t)f->runs : f->n_script - 1];
	f->run_at[f->runs++] = uv_now(f->loop);
	f->running++;
	if (f->running > f->max_running)
		f->max_running = f->running;
	for (f->argc = 0; argv[f->argc] != NULL; f->argc++) {
		assert_true(f->argc < 4);
		snprintf(f->argv[f->argc], sizeof(f->argv[0]), "%s", argv[f->argc]);
	}
	f->done = done;
	f->done_arg = done_arg;
	f->out_len = s->out_len;
	switch (s->kind) {
	case STEP_SYNC:
		fake_finish(f, s->code);
		break;
	case STEP_ASYNC:
		f->code = s->code;
		uv_timer_start(&f->timer, fake_timer_cb, s->delay_ms, 0);
		break;
	case STEP_HANG:
		f->code = -1;
		uv_timer_start(&f->timer, fake_timer_cb, timeout_ms, 0);
		break;
	}
}

static void fake_cancel(void *arg)
{
	struct fake *f = arg;

	f->cancels++;
	if (f->running == 0)
		return;
	f->code = -1;
	if (f->sync_cancel) {
		uv_timer_stop(&f->timer);
		fake_finish(f, -1);
	} else {
		uv_timer_start(&f->timer, fake_timer_cb, 1, 0); /* killed: reaped soon */
	}
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	assert_int_equal(uv_loop_init(&x->loop), 0);
	x->fake.loop = &x->loop;
	assert_int_equal(uv_timer_init(&x->loop, &x->fake.timer), 0);
	x->fake.timer.data = &x->fake;
	x->ops.run = fake_run;
	x->ops.cancel = fake_cancel;
	x->ops.arg = &x->fake;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	if (!x->stopped)
		health_stop(x->h);
	/* A runner owes a done for its running probe: let it come. */
	while (x->fake.running > 0)
		uv_run(&x->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&x->fake.timer, NULL);
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&x->loop), 0);
	free(x);
	return 0;
}

static void on_change(void *arg, enum health_status status)
{
	struct fx *x = arg;

	assert_false(x->stopped); /* no callback after health_stop() */
	assert_true(x->n_changes < MAX_RUNS);
	x->changes[x->n_changes] = status;
	x->change_runs[x->n_changes] = x->fake.runs;
	x->change_at[x->n_changes] = uv_now(&x->loop);
	x->n_changes++;
	if (status == x->stop_on) {
		health_stop(x->h);
		x->stopped = true;
	}
}

static struct oci_healthcheck check_of(const char *kind, const char *cmd, int64_t interval_ms,
				       int64_t timeout_ms, int retries)
{
	static char *items[2];
	struct oci_healthcheck c;

	memset(&c, 0, sizeof(c));

	items[0] = (char *)(uintptr_t)kind;
	items[1] = (char *)(uintptr_t)cmd;
	c.test.items = items;
	c.test.n = 2;
	c.interval_ns = interval_ms * 1000000;
	c.timeout_ns = timeout_ms * 1000000;
	c.retries = retries;
	return c;
}

static void start(struct fx *x, const struct oci_healthcheck *c, const struct step *script,
		  size_t n)
{
	struct shoal_err err = {{0}};

	x->fake.script = script;
	x->fake.n_script = n;
	uv_update_time(&x->loop);
	x->start_at = uv_now(&x->loop);
	assert_int_equal(health_start(&x->loop, c, &x->ops, on_change, x, &x->h, &err), 0);
	assert_int_equal(health_status(x->h), HEALTH_STARTING);
}

/* Run the loop until @pred holds; fail after 5 s of loop time. */
static void run_until(struct fx *x, bool (*pred)(const struct fx *x))
{
	uint64_t deadline = uv_now(&x->loop) + 5000;

	while (!pred(x)) {
		assert_true(uv_now(&x->loop) < deadline);
		uv_run(&x->loop, UV_RUN_ONCE);
	}
}

static bool changed_once(const struct fx *x)
{
	return x->n_changes >= 1;
}

static bool changed_twice(const struct fx *x)
{
	return x->n_changes >= 2;
}

static bool ran_3(const struct fx *x)
{
	return x->fake.completed >= 3;
}

static bool ran_5(const struct fx *x)
{
	return x->fake.completed >= 5;
}

static bool ran_7(const struct fx *x)
{
	return x->fake.completed >= 7;
}

static bool probe_running(const struct fx *x)
{
	return x->fake.running == 1;
}

/* ---- the state machine ---- */

static void test_starting_to_healthy(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD-SHELL", "curl -f localhost", 20, 1000, 3);
	static const struct step script[] = {{STEP_ASYNC, 0, 5, 0}};
	const struct health_result *log;
	size_t n;

	start(x, &c, script, 1);
	run_until(x, changed_once);
	assert_int_equal(x->changes[0], HEALTH_HEALTHY);
	assert_int_equal(health_status(x->h), HEALTH_HEALTHY);
	assert_string_equal(health_status_name(health_status(x->h)), "healthy");
	assert_int_equal(x->fake.runs, 1);
	assert_true(x->fake.run_at[0] >= x->start_at + 20); /* one interval after start */
	assert_int_equal(x->fake.argc, 3);
	assert_string_equal(x->fake.argv[0], "/bin/sh");
	assert_string_equal(x->fake.argv[1], "-c");
	assert_string_equal(x->fake.argv[2], "curl -f localhost");
	log = health_log(x->h, &n);
	assert_int_equal(n, 1);
	assert_int_equal(log[0].exit_code, 0);
	assert_string_equal(log[0].output, "out 1");
	assert_true(log[0].start_ns > 0 && log[0].start_ns <= log[0].end_ns);
	assert_int_equal(health_failing_streak(x->h), 0);
}

static void test_unhealthy_after_retries(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 3);
	static const struct step script[] = {
	    {STEP_ASYNC, 0, 1, 0}, {STEP_ASYNC, 1, 1, 0}, {STEP_ASYNC, 2, 1, 0},
	    {STEP_ASYNC, 1, 1, 0}, {STEP_ASYNC, 0, 1, 0},
	};

	start(x, &c, script, ARRAY_SIZE(script));
	run_until(x, changed_twice);
	assert_int_equal(x->changes[0], HEALTH_HEALTHY);
	assert_int_equal(x->change_runs[0], 1);
	assert_int_equal(x->changes[1], HEALTH_UNHEALTHY);
	assert_int_equal(x->change_runs[1], 4); /* exactly 3 failures after the success */
	assert_int_equal(health_failing_streak(x->h), 3);
	assert_int_equal(x->fake.argc, 1);
	assert_string_equal(x->fake.argv[0], "/bin/check");
	/* One success makes it healthy again and resets the streak. */
	run_until(x, ran_5);
	assert_int_equal(x->n_changes, 3);
	assert_int_equal(x->changes[2], HEALTH_HEALTHY);
	assert_int_equal(health_failing_streak(x->h), 0);
}

static void test_start_period_ignores_failures(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 1);
	static const struct step script[] = {{STEP_ASYNC, 1, 1, 0}};

	c.start_period_ns = 300 * 1000000LL;
	c.start_interval_ns = 20 * 1000000LL;
	start(x, &c, script, 1);
	run_until(x, ran_3);
	if (x->fake.run_at[2] < x->start_at + 300) {
		/* Three failures inside the start period: nothing counted. */
		assert_int_equal(x->n_changes, 0);
		assert_int_equal(health_status(x->h), HEALTH_STARTING);
		assert_int_equal(health_failing_streak(x->h), 0);
	}
	/* Once it is over, the first failure counts (retries 1). */
	run_until(x, changed_once);
	assert_int_equal(x->changes[0], HEALTH_UNHEALTHY);
	assert_true(x->change_at[0] >= x->start_at + 300);
	assert_int_equal(health_failing_streak(x->h), 1);
}

static void test_start_period_ended_by_success(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 1);
	static const struct step script[] = {
	    {STEP_ASYNC, 1, 1, 0}, {STEP_ASYNC, 1, 1, 0}, {STEP_ASYNC, 0, 1, 0},
	    {STEP_ASYNC, 1, 1, 0}, {STEP_ASYNC, 0, 1, 0},
	};

	c.start_period_ns = 4000 * 1000000LL; /* far longer than the test */
	c.start_interval_ns = 20 * 1000000LL;
	start(x, &c, script, ARRAY_SIZE(script));
	run_until(x, changed_twice);
	assert_int_equal(x->changes[0], HEALTH_HEALTHY);
	assert_int_equal(x->change_runs[0], 3); /* the two failures did not count */
	/* Healthy ends the start period: the next failure counts at once. */
	assert_int_equal(x->changes[1], HEALTH_UNHEALTHY);
	assert_int_equal(x->change_runs[1], 4);
	assert_true(x->change_at[1] < x->start_at + 4000);
}

static void test_timeouts_count(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/slow", 20, 30, 2);
	static const struct step script[] = {{STEP_HANG, 0, 0, 0}};
	const struct health_result *log;
	size_t n;

	start(x, &c, script, 1);
	run_until(x, changed_once);
	assert_int_equal(x->changes[0], HEALTH_UNHEALTHY);
	assert_int_equal(x->change_runs[0], 2);
	assert_int_equal(health_failing_streak(x->h), 2);
	assert_true(x->fake.cancels >= 1);
	log = health_log(x->h, &n);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(log[i].exit_code, -1);
		assert_string_equal(log[i].output, "Health check exceeded timeout (30ms)");
	}
	/* The second probe waited for the first one's end, then one interval. */
	assert_true(x->fake.run_at[1] >= x->fake.run_at[0] + 30 + 20);
	assert_int_equal(x->fake.max_running, 1);
}

static void test_timeout_sync_cancel(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/slow", 20, 25, 3);
	static const struct step script[] = {{STEP_HANG, 0, 0, 0}};
	const struct health_result *log;
	size_t n;

	x->fake.sync_cancel = true;
	start(x, &c, script, 1);
	run_until(x, ran_3);
	assert_int_equal(x->fake.cancels, 3);
	log = health_log(x->h, &n);
	assert_int_equal(n, 3);
	assert_string_equal(log[2].output, "Health check exceeded timeout (25ms)");
	run_until(x, changed_once);
	assert_int_equal(x->changes[0], HEALTH_UNHEALTHY);
	assert_int_equal(x->change_runs[0], 3);
}

static void test_one_probe_at_a_time(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 3);
	static const struct step script[] = {{STEP_ASYNC, 0, 50, 0}};

	start(x, &c, script, 1);
	run_until(x, ran_5);
	assert_int_equal(x->fake.max_running, 1);
	for (int i = 1; i < 5; i++)
		assert_true(x->fake.run_at[i] >= x->fake.run_at[i - 1] + 50 + 20);
}

static void test_log_keeps_five(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 100);
	static const struct step script[] = {
	    {STEP_SYNC, 1, 0, 0},    {STEP_SYNC, 2, 0, 0}, {STEP_SYNC, 3, 0, 0},
	    {STEP_SYNC, 4, 0, 0},    {STEP_SYNC, 5, 0, 0}, {STEP_SYNC, 6, 0, 0},
	    {STEP_SYNC, 7, 0, 5000},
	};
	const struct health_result *log;
	size_t n;

	start(x, &c, script, ARRAY_SIZE(script));
	run_until(x, ran_7);
	log = health_log(x->h, &n);
	assert_int_equal(n, HEALTH_LOG_ENTRIES);
	for (size_t i = 0; i < 4; i++) {
		char want[16];
		snprintf(want, sizeof(want), "out %zu", i + 3);
		assert_int_equal(log[i].exit_code, (int)i + 3);
		assert_string_equal(log[i].output, want);
		assert_true(log[i].end_ns <= log[i + 1].start_ns);
	}
	assert_int_equal(log[4].exit_code, 7);
	assert_int_equal(strlen(log[4].output), HEALTH_OUTPUT_MAX); /* 5000 bytes cut */
	assert_int_equal(health_failing_streak(x->h), 7);
	assert_int_equal(health_status(x->h), HEALTH_STARTING); /* 7 < 100 retries */
}

/* ---- stopping ---- */

static void test_stop_during_probe(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 1);
	static const struct step script[] = {{STEP_ASYNC, 1, 100, 0}};

	start(x, &c, script, 1);
	run_until(x, probe_running);
	health_stop(x->h);
	x->stopped = true;
	assert_int_equal(x->fake.cancels, 1);
	/* The killed probe reports later; the checker swallows it and frees
	 * itself (teardown runs the loop to the end and closes it). */
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(x->fake.completed, 1);
	assert_int_equal(x->n_changes, 0);
}

static void test_stop_ignores_late_done(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 1);
	static const struct step script[] = {{STEP_ASYNC, 1, 60, 0}};

	x->ops.cancel = NULL; /* a runner that cannot kill: done comes at its time */
	start(x, &c, script, 1);
	run_until(x, probe_running);
	health_stop(x->h);
	x->stopped = true;
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(x->fake.completed, 1);
	assert_int_equal(x->n_changes, 0); /* the failure after stop changed nothing */
}

static void test_stop_while_waiting(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20000, 1000, 1);
	static const struct step script[] = {{STEP_ASYNC, 0, 1, 0}};

	start(x, &c, script, 1);
	uv_run(&x->loop, UV_RUN_NOWAIT);
	health_stop(x->h);
	x->stopped = true;
	assert_int_equal(x->fake.runs, 0);
	assert_int_equal(x->fake.cancels, 0);
}

static void test_stop_from_on_change(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/check", 20, 1000, 2);
	static const struct step script[] = {{STEP_SYNC, 1, 0, 0}};

	x->stop_on = HEALTH_UNHEALTHY;
	start(x, &c, script, 1);
	run_until(x, changed_once);
	assert_true(x->stopped);
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(x->fake.runs, 2); /* no probe after the stop */
}

static void test_stop_from_on_change_at_timeout(void **state)
{
	struct fx *x = *state;
	struct oci_healthcheck c = check_of("CMD", "/bin/slow", 20, 25, 1);
	static const struct step script[] = {{STEP_HANG, 0, 0, 0}};

	x->stop_on = HEALTH_UNHEALTHY;
	start(x, &c, script, 1);
	run_until(x, changed_once);
	assert_true(x->stopped);
	assert_int_equal(x->fake.cancels, 1); /* the timed-out probe is still killed */
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(x->fake.completed, 1);
	assert_int_equal(x->fake.runs, 1);
}

/* ---- starting and resolving ---- */

static void test_start_rejects(void **state)
{
	struct fx *x = *state;
	struct shoal_err err = {{0}};
	struct oci_healthcheck c = check_of("NONE", "x", 20, 1000, 1);
	char *one[] = {(char *)(uintptr_t) "CMD"};

	assert_int_equal(health_start(&x->loop, &c, &x->ops, on_change, x, &x->h, &err),
			 SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "CMD"));
	c = check_of("CMD", "x", 20, 1000, 1);
	c.test.items = one;
	c.test.n = 1;
	assert_int_equal(health_start(&x->loop, &c, &x->ops, on_change, x, &x->h, &err),
			 SHOAL_EINVAL);
	c = check_of("CMD", "x", 20, 1000, -1);
	assert_int_equal(health_start(&x->loop, &c, &x->ops, on_change, x, &x->h, &err),
			 SHOAL_EINVAL);
	c = check_of("CMD", "x", 20, 1000, 1);
	c.interval_ns = 5000; /* 5 us */
	assert_int_equal(health_start(&x->loop, &c, &x->ops, on_change, x, &x->h, &err),
			 SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "interval"));
	assert_null(x->h);
	x->stopped = true;
}

static void test_resolve(void **state)
{
	char *img_test[] = {(char *)(uintptr_t) "CMD-SHELL", (char *)(uintptr_t) "true"};
	char *spec_test[] = {(char *)(uintptr_t) "CMD", (char *)(uintptr_t) "/ok",
			     (char *)(uintptr_t) "-v"};
	char *none[] = {(char *)(uintptr_t) "NONE"};
	char *bad[] = {(char *)(uintptr_t) "EXEC", (char *)(uintptr_t) "x"};
	struct oci_healthcheck image = {.test = {img_test, 2},
					.interval_ns = 10000000000LL,
					.timeout_ns = 2000000000LL,
					.retries = 5};
	struct oci_healthcheck spec;
	struct oci_healthcheck out;
	struct oci_strlist argv;
	struct shoal_err err = {{0}};

	(void)state;
	memset(&spec, 0, sizeof(spec));
	/* Nothing in the spec: the image's check. */
	assert_int_equal(health_resolve(&spec, &image, &out, &argv, &err), 1);
	assert_int_equal(out.test.n, 2);
	assert_string_equal(out.test.items[1], "true");
	assert_true(out.test.items != img_test);
	assert_int_equal(out.interval_ns, 10000000000LL);
	assert_int_equal(out.retries, 5);
	assert_int_equal(argv.n, 3);
	assert_string_equal(argv.items[0], "/bin/sh");
	assert_string_equal(argv.items[2], "true");
	health_resolve_free(&out, &argv);
	assert_null(out.test.items);

	/* The spec's test wins; its zero durations inherit the image's. */
	spec.test.items = spec_test;
	spec.test.n = 3;
	spec.timeout_ns = 3000000000LL;
	assert_int_equal(health_resolve(&spec, &image, &out, &argv, &err), 1);
	assert_int_equal(argv.n, 2);
	assert_string_equal(argv.items[0], "/ok");
	assert_string_equal(argv.items[1], "-v");
	assert_int_equal(out.interval_ns, 10000000000LL);
	assert_int_equal(out.timeout_ns, 3000000000LL);
	assert_int_equal(out.retries, 5);
	health_resolve_free(&out, &argv);

	/* NONE in the spec turns the image's off; no check anywhere is 0 too. */
	spec.test.items = none;
	spec.test.n = 1;
	assert_int_equal(health_resolve(&spec, &image, &out, &argv, &err), 0);
	assert_int_equal(out.test.n, 0);
	assert_int_equal(argv.n, 0);
	assert_int_equal(health_resolve(NULL, NULL, &out, NULL, &err), 0);

	/* An unknown first word is an error, with nothing handed out. */
	spec.test.items = bad;
	spec.test.n = 2;
	assert_int_equal(health_resolve(&spec, &image, &out, &argv, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "EXEC"));
	assert_null(out.test.items);
	assert_null(argv.items);

	/* CMD-SHELL takes one string. */
	spec.test.items = spec_test;
	spec.test.n = 3;
	spec.test.items[0] = (char *)(uintptr_t) "CMD-SHELL";
	assert_int_equal(health_resolve(&spec, NULL, &out, &argv, &err), SHOAL_EINVAL);
	health_resolve_free(NULL, NULL);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(health_status_name(HEALTH_NONE), "none");
	assert_string_equal(health_status_name(HEALTH_STARTING), "starting");
	assert_string_equal(health_status_name(HEALTH_HEALTHY), "healthy");
	assert_string_equal(health_status_name(HEALTH_UNHEALTHY), "unhealthy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_starting_to_healthy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unhealthy_after_retries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_period_ignores_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_period_ended_by_success, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_sync_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_probe_at_a_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_keeps_five, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_during_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_ignores_late_done, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_while_waiting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_from_on_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_from_on_change_at_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_rejects, setup, teardown),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
