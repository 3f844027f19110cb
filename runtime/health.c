/* Docker HEALTHCHECK semantics for one container: probes on a timer, starting/healthy/unhealthy. */
#include "runtime/health.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"

#define NS_PER_MS			 1000000LL
#define HEALTH_DEFAULT_START_INTERVAL_NS (5LL * 1000000000LL) /* Docker's default */

/* Where the checker is. The status (starting/healthy/unhealthy) is separate:
 * this is the life of the timer and the probe.
 *   WAITING    the timer counts down to the next probe
 *   PROBING    a probe runs; the timer counts down to its timeout
 *   TIMED_OUT  the probe's timeout was recorded; waiting for its late done
 *   STOPPED    health_stop() was called; waiting for the timer's close and
 *              any pending done, then freed */
enum hstate { H_WAITING, H_PROBING, H_TIMED_OUT, H_STOPPED, H_NSTATES };

static const bool allowed[H_NSTATES][H_NSTATES] __attribute__((unused)) = {
    [H_WAITING] = {[H_PROBING] = true, [H_STOPPED] = true},
    [H_PROBING] = {[H_WAITING] = true, [H_TIMED_OUT] = true, [H_STOPPED] = true},
    [H_TIMED_OUT] = {[H_WAITING] = true, [H_STOPPED] = true},
};

struct health {
	uv_loop_t *loop;
	uv_timer_t timer;
	enum hstate state;
	bool probe_pending; /* ops.run called, its done not yet */
	bool timer_closed;
	enum health_status status;
	int streak;
	int retries;
	uint64_t interval_ms, timeout_ms, start_period_ms, start_interval_ms;
	int64_t timeout_ns;
	char **argv; /* NULL-terminated */
	struct health_exec_ops ops;
	void (*on_change)(void *arg, enum health_status status);
	void *arg;
	uint64_t started_ms; /* loop time of health_start() */
	uint64_t probe_start_ms;
	uint64_t probe_start_ns;
	struct health_result log[HEALTH_LOG_ENTRIES]; /* oldest first */
	size_t n_log;
};

static void move(struct health *h, enum hstate to)
{
	PRE(allowed[h->state][to]);
	h->state = to;
}

const char *health_status_name(enum health_status s)
{
	switch (s) {
	case HEALTH_STARTING:
		return "starting";
	case HEALTH_HEALTHY:
		return "healthy";
	case HEALTH_UNHEALTHY:
		return "unhealthy";
	case HEALTH_NONE:
		break;
	}
	return "none";
}

/* ---- checks: validation, merging, argv ---- */

static int check_test(const struct oci_strlist *t, struct shoal_err *err)
{
	if (t->n == 0)
		return shoal_errf(err, SHOAL_EINVAL, "healthcheck test is empty");
	if (strcmp(t->items[0], "CMD") == 0) {
		if (t->n < 2)
			return shoal_errf(err, SHOAL_EINVAL,
					  "healthcheck test [\"CMD\", ...] needs a command");
		return 0;
	}
	if (strcmp(t->items[0], "CMD-SHELL") == 0) {
		if (t->n != 2)
			return shoal_errf(err, SHOAL_EINVAL,
					  "healthcheck test [\"CMD-SHELL\", command] takes exactly "
					  "one command string, not %zu",
					  t->n - 1);
		return 0;
	}
	return shoal_errf(err, SHOAL_EINVAL,
			  "healthcheck test must start with CMD or CMD-SHELL (or be NONE), "
			  "not '%.40s'",
			  t->items[0]);
}

static int check_duration(const char *name, int64_t ns, struct shoal_err *err)
{
	if (ns != 0 && ns < NS_PER_MS)
		return shoal_errf(err, SHOAL_EINVAL,
				  "healthcheck %s must be 0 (default) or at least 1ms, not %lld ns",
				  name, (long long)ns);
	return 0;
}

static int check_check(const struct oci_healthcheck *c, struct shoal_err *err)
{
	int rv = check_test(&c->test, err);

	if (rv == 0)
		rv = check_duration("interval", c->interval_ns, err);
	if (rv == 0)
		rv = check_duration("timeout", c->timeout_ns, err);
	if (rv == 0 && c->start_period_ns < 0)
		rv = shoal_errf(err, SHOAL_EINVAL, "healthcheck start period must not be negative");
	if (rv == 0)
		rv = check_duration("start interval", c->start_interval_ns, err);
	if (rv == 0 && (c->retries < 0 || c->retries > INT_MAX))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"healthcheck retries must be 0 (default) or a positive number");
	return rv;
}

/* The probe's argv for a checked test: CMD's arguments, or sh -c for
 * CMD-SHELL. Built by pushes, so NULL-terminated for exec. */
static int build_argv(const struct oci_strlist *t, struct oci_strlist *argv)
{
	int rv = 0;

	*argv = (struct oci_strlist){0};
	if (strcmp(t->items[0], "CMD-SHELL") == 0) {
		rv = oci_strlist_push(argv, "/bin/sh");
		if (rv == 0)
			rv = oci_strlist_push(argv, "-c");
		if (rv == 0)
			rv = oci_strlist_push(argv, t->items[1]);
	} else {
		for (size_t i = 1; rv == 0 && i < t->n; i++)
			rv = oci_strlist_push(argv, t->items[i]);
	}
	if (rv != 0)
		oci_strlist_free(argv);
	return rv;
}

static int64_t pick(int64_t spec, int64_t image)
{
	return spec != 0 ? spec : image;
}

int health_resolve(const struct oci_healthcheck *spec, const struct oci_healthcheck *image,
		   struct oci_healthcheck *out, struct oci_strlist *argv, struct shoal_err *err)
{
	static const struct oci_healthcheck none;
	struct oci_healthcheck m;
	int rv;

	memset(out, 0, sizeof(*out));
	if (argv != NULL)
		memset(argv, 0, sizeof(*argv));
	if (spec == NULL)
		spec = &none;
	if (image == NULL)
		image = &none;
	m.test = spec->test.n > 0 ? spec->test : image->test;
	if (m.test.n == 0 || strcmp(m.test.items[0], "NONE") == 0)
		return 0;
	m.interval_ns = pick(spec->interval_ns, image->interval_ns);
	m.timeout_ns = pick(spec->timeout_ns, image->timeout_ns);
	m.start_period_ns = pick(spec->start_period_ns, image->start_period_ns);
	m.start_interval_ns = pick(spec->start_interval_ns, image->start_interval_ns);
	m.retries = pick(spec->retries, image->retries);
	rv = check_check(&m, err);
	if (rv != 0)
		return rv;
	*out = m;
	if (oci_strlist_copy(&m.test, &out->test) != 0) {
		memset(out, 0, sizeof(*out));
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	if (argv != NULL && build_argv(&m.test, argv) != 0) {
		health_resolve_free(out, NULL);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return 1;
}

void health_resolve_free(struct oci_healthcheck *out, struct oci_strlist *argv)
{
	if (out != NULL)
		oci_strlist_free(&out->test);
	if (argv != NULL)
		oci_strlist_free(argv);
}

/* ---- the checker ---- */

/* Go's time.Duration.String() for the timeout message: "30s", "1.5s", "20ms", "1m30s". */
static void go_duration(int64_t ns, char *out, size_t len)
{
	static const struct {
		int64_t unit;
		int digits;
		const char *suffix;
	} small[] = {{1000LL, 3, "µs"}, {NS_PER_MS, 6, "ms"}};
	uint64_t d = (uint64_t)ns, unit = 1000000000u, whole, rem;
	const char *suffix = "s";
	int digits = 9, n = 0;
	char frac[16];

	if (d < 1000) {
		snprintf(out, len, "%lluns", (unsigned long long)d);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(small); i++) {
		if (d < (uint64_t)small[i].unit * 1000u) {
			unit = (uint64_t)small[i].unit;
			digits = small[i].digits;
			suffix = small[i].suffix;
			break;
		}
	}
	if (unit == 1000000000u) {
		uint64_t h = d / 3600000000000u, m = d / 60000000000u % 60;
		if (h > 0)
			n = snprintf(out, len, "%lluh%llum", (unsigned long long)h,
				     (unsigned long long)m);
		else if (m > 0)
			n = snprintf(out, len, "%llum", (unsigned long long)m);
		d %= 60000000000u;
		if (n < 0 || (size_t)n >= len)
			return;
	}
	whole = d / unit;
	rem = d % unit;
	frac[0] = '\0';
	if (rem != 0) {
		int k;
		snprintf(frac, sizeof(frac), ".%0*llu", digits, (unsigned long long)rem);
		k = (int)strlen(frac);
		while (frac[k - 1] == '0')
			frac[--k] = '\0';
	}
	snprintf(out + n, len - (size_t)n, "%llu%s%s", (unsigned long long)whole, frac, suffix);
}

static uint64_t ns_to_ms(int64_t ns)
{
	return (uint64_t)((ns + NS_PER_MS - 1) / NS_PER_MS);
}

static void maybe_free(struct health *h)
{
	if (!h->timer_closed || h->probe_pending)
		return;
	for (char **p = h->argv; p != NULL && *p != NULL; p++)
		free(*p);
	free(h->argv);
	free(h);
}

static void on_close(uv_handle_t *handle)
{
	struct health *h = handle->data;

	h->timer_closed = true;
	maybe_free(h);
}

/* Docker's interval choice: start_interval while starting within the start period. */
static uint64_t next_interval(const struct health *h)
{
	if (uv_now(h->loop) - h->started_ms < h->start_period_ms && h->status == HEALTH_STARTING)
		return h->start_interval_ms;
	return h->interval_ms;
}

static void on_timer(uv_timer_t *timer);

static void schedule(struct health *h)
{
	PRE(h->state == H_WAITING);
	uv_timer_start(&h->timer, on_timer, next_interval(h), 0);
}

/* Log one result and apply Docker's rules; may call on_change (which may stop @h). */
static void record(struct health *h, int exit_code, const char *output, size_t len)
{
	struct health_result *r;
	enum health_status before = h->status;

	if (h->n_log == HEALTH_LOG_ENTRIES) {
		memmove(&h->log[0], &h->log[1], (HEALTH_LOG_ENTRIES - 1) * sizeof(h->log[0]));
		h->n_log--;
	}
	r = &h->log[h->n_log++];
	r->start_ns = h->probe_start_ns;
	r->end_ns = (uint64_t)clock_now_ns();
	r->exit_code = exit_code;
	if (len > HEALTH_OUTPUT_MAX)
		len = HEALTH_OUTPUT_MAX;
	if (len > 0)
		memcpy(r->output, output, len);
	r->output[len] = '\0';

	if (exit_code == 0) {
		h->streak = 0;
		h->status = HEALTH_HEALTHY;
	} else if (h->status != HEALTH_STARTING ||
		   h->probe_start_ms - h->started_ms >= h->start_period_ms) {
		h->streak++;
		if (h->streak >= h->retries)
			h->status = HEALTH_UNHEALTHY;
	}
	if (h->status != before && h->on_change != NULL)
		h->on_change(h->arg, h->status);
}

static void on_done(void *arg, int exit_code, const char *output, size_t len)
{
	struct health *h = arg;

	PRE(h->probe_pending);
	h->probe_pending = false;
	switch (h->state) {
	case H_STOPPED:
		maybe_free(h);
		return;
	case H_TIMED_OUT:
		/* The timeout is already recorded: this is the killed probe. */
		move(h, H_WAITING);
		schedule(h);
		return;
	case H_PROBING:
		uv_timer_stop(&h->timer);
		move(h, H_WAITING);
		record(h, exit_code, output, output != NULL ? len : 0);
		if (h->state == H_WAITING)
			schedule(h);
		return;
	case H_WAITING:
	case H_NSTATES:
		break;
	}
	PRE(false);
}

static void start_probe(struct health *h)
{
	move(h, H_PROBING);
	h->probe_pending = true;
	h->probe_start_ms = uv_now(h->loop);
	h->probe_start_ns = (uint64_t)clock_now_ns();
	uv_timer_start(&h->timer, on_timer, h->timeout_ms, 0);
	h->ops.run(h->ops.arg, (const char *const *)h->argv, h->timeout_ms, on_done, h);
}

static void on_timeout(struct health *h)
{
	char msg[96], d[32];

	move(h, H_TIMED_OUT);
	go_duration(h->timeout_ns, d, sizeof(d));
	snprintf(msg, sizeof(msg), "Health check exceeded timeout (%s)", d);
	record(h, -1, msg, strlen(msg));
	/* Even if on_change stopped us (health_stop() only cancels a PROBING
	 * probe): the runner must kill it. Its done may come from inside. */
	if (h->ops.cancel != NULL)
		h->ops.cancel(h->ops.arg);
}

static void on_timer(uv_timer_t *timer)
{
	struct health *h = timer->data;

	if (h->state == H_WAITING)
		start_probe(h);
	else if (h->state == H_PROBING)
		on_timeout(h);
	else
		PRE(false);
}

int health_start(uv_loop_t *loop, const struct oci_healthcheck *check,
		 const struct health_exec_ops *ops,
		 void (*on_change)(void *arg, enum health_status status), void *arg,
		 struct health **out, struct shoal_err *err)
{
	struct oci_strlist argv = {0};
	struct health *h;
	int rv;

	PRE(loop != NULL && check != NULL && ops != NULL && out != NULL);
	if (ops->run == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "healthcheck: no probe runner given");
	rv = check_check(check, err);
	if (rv != 0)
		return rv;
	h = calloc(1, sizeof(*h));
	if (h == NULL || build_argv(&check->test, &argv) != 0) {
		free(h);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	h->loop = loop;
	h->argv = argv.items;
	h->ops = *ops;
	h->on_change = on_change;
	h->arg = arg;
	h->status = HEALTH_STARTING;
	h->state = H_WAITING;
	h->timeout_ns = check->timeout_ns != 0 ? check->timeout_ns : HEALTH_DEFAULT_TIMEOUT_NS;
	h->interval_ms =
	    ns_to_ms(check->interval_ns != 0 ? check->interval_ns : HEALTH_DEFAULT_INTERVAL_NS);
	h->timeout_ms = ns_to_ms(h->timeout_ns);
	h->start_period_ms = ns_to_ms(check->start_period_ns);
	h->start_interval_ms =
	    ns_to_ms(check->start_interval_ns != 0 ? check->start_interval_ns
						   : HEALTH_DEFAULT_START_INTERVAL_NS);
	h->retries = check->retries != 0 ? (int)check->retries : HEALTH_DEFAULT_RETRIES;
	rv = uv_timer_init(loop, &h->timer);
	if (rv != 0) {
		h->timer_closed = true;
		maybe_free(h);
		return shoal_errf(err, SHOAL_EIO, "healthcheck timer: %s", uv_strerror(rv));
	}
	h->timer.data = h;
	h->started_ms = uv_now(loop);
	schedule(h);
	*out = h;
	return 0;
}

void health_stop(struct health *h)
{
	enum hstate before;

	if (h == NULL)
		return;
	before = h->state;
	move(h, H_STOPPED);
	if (before == H_PROBING && h->ops.cancel != NULL)
		h->ops.cancel(h->ops.arg);
	uv_close((uv_handle_t *)&h->timer, on_close);
}

enum health_status health_status(const struct health *h)
{
	return h->status;
}

int health_failing_streak(const struct health *h)
{
	return h->streak;
}

const struct health_result *health_log(const struct health *h, size_t *n)
{
	*n = h->n_log;
	return h->log;
}
