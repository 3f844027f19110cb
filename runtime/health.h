/* Docker HEALTHCHECK semantics for one container: probes on a timer, starting/healthy/unhealthy. */
#ifndef SHOAL_RUNTIME_HEALTH_H
#define SHOAL_RUNTIME_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/err.h"
#include "runtime/oci.h"

/* Docker's rules (daemon/health.go):
 * - status starts "starting"; the first probe runs one interval after start
 *   (during the start period, while "starting", the wait is start_interval
 *   instead, default 5 s);
 * - a probe that exits 0 makes the container "healthy" and resets the
 *   failing streak;
 * - a probe that exits non-zero, or exceeds the timeout (it is then killed;
 *   its output is "Health check exceeded timeout (30s)", Go's duration
 *   format, and its exit code -1),
 *   increments the failing streak; once the streak reaches `retries` the
 *   container is "unhealthy";
 * - during the start period, failures do not count (the streak stays 0 and
 *   the status stays "starting"), but one success ends the start period;
 * - at most one probe runs at a time; the next is scheduled one interval
 *   after the previous one ended;
 * - the last 5 results are kept (Start, End, ExitCode, Output up to 4096
 *   bytes) for inspect.
 */

#define HEALTH_DEFAULT_INTERVAL_NS (30LL * 1000000000LL)
#define HEALTH_DEFAULT_TIMEOUT_NS  (30LL * 1000000000LL)
#define HEALTH_DEFAULT_RETRIES	   3
#define HEALTH_LOG_ENTRIES	   5
#define HEALTH_OUTPUT_MAX	   4096u

enum health_status { HEALTH_NONE = 0, HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };

/* "none", "starting", "healthy", "unhealthy" (Docker's State.Health.Status). */
const char *health_status_name(enum health_status s);

struct health_result {
	uint64_t start_ns; /* CLOCK_REALTIME */
	uint64_t end_ns;
	int exit_code; /* -1 for a timeout or a probe that could not run */
	char output[HEALTH_OUTPUT_MAX + 1];
};

/* The probe runner the owner provides. At most one probe runs at a time.
 * @run: run @argv (NULL-terminated, already resolved: CMD-SHELL becomes
 * {"/bin/sh","-c",cmd}; valid until @done is called) inside the container,
 * kill it after @timeout_ms, then call @done exactly once (possibly
 * synchronously, e.g. on failure to start) with the exit code (-1 on
 * timeout/failure) and up to HEALTH_OUTPUT_MAX bytes of combined output (more
 * is cut). The checker also times the probe on the loop: when @timeout_ms
 * passes first it records the timeout itself ("Health check exceeded timeout
 * (30s)", exit -1), calls @cancel, and ignores the output of the late @done;
 * the next probe is scheduled one interval after that @done. */
struct health_exec_ops {
	void (*run)(void *arg, const char *const *argv, uint64_t timeout_ms,
		    void (*done)(void *done_arg, int exit_code, const char *output, size_t len),
		    void *done_arg);
	/* Kill the running probe (after a timeout or on health_stop()); may be
	 * NULL. Its @done must still be called, now (from inside @cancel) or
	 * later; the checker ignores it once stopped and frees itself after it. */
	void (*cancel)(void *arg);
	void *arg;
};

struct health;

/* Start checking with @check (as resolved by health_resolve(): durations 0 =
 * defaults, non-zero at least 1 ms; test {"CMD", arg...} or {"CMD-SHELL",
 * cmd}; NONE or empty is SHOAL_EINVAL: no checker then). Call it when the
 * container starts: the start period counts from here (loop time). @check is
 * copied. The status starts "starting" (no callback for that); @on_change is
 * called each time it changes afterwards, and may call health_stop(). */
int health_start(uv_loop_t *loop, const struct oci_healthcheck *check,
		 const struct health_exec_ops *ops,
		 void (*on_change)(void *arg, enum health_status status), void *arg,
		 struct health **out, struct shoal_err *err);

/* Stop probing: cancels a running probe, closes the timer; @h is freed once
 * the timer is closed and any running probe's done has come (so the loop can
 * close once the runner's own handles are closed). No on_change is made after
 * this returns, and @h must not be used. Accepts NULL; not twice. */
void health_stop(struct health *h);

enum health_status health_status(const struct health *h);
int health_failing_streak(const struct health *h);
/* The last results, oldest first; *@n <= HEALTH_LOG_ENTRIES. */
const struct health_result *health_log(const struct health *h, size_t *n);

/* Resolve a check: the spec's test overrides the image's when non-empty;
 * durations/retries left 0 in the spec inherit the image's (Docker's merge).
 * @spec and @image may be NULL. Returns 1 when there is a check: *@out gets
 * the merged check (its test on the heap) and, when @argv is not NULL, *@argv
 * the probe's command line (heap); free both with health_resolve_free().
 * Returns 0 when there is none (no test, or {"NONE"}), and SHOAL_EINVAL (with
 * @err) for an invalid one: unknown first word, CMD without a command,
 * CMD-SHELL without exactly one string, a duration below 1 ms or negative
 * retries; SHOAL_ENOMEM. Except on 1, *@out and *@argv are left empty. */
int health_resolve(const struct oci_healthcheck *spec, const struct oci_healthcheck *image,
		   struct oci_healthcheck *out, struct oci_strlist *argv, struct shoal_err *err);
/* Free what health_resolve() gave; either may be NULL; safe on empty ones. */
void health_resolve_free(struct oci_healthcheck *out, struct oci_strlist *argv);

#endif
