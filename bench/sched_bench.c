/* bench/sched_bench: placements per second of the scheduler alone, on a synthetic store.
 *
 * Usage: sched_bench [NODES [SERVICES [REPLICAS]]] (default 1000 10 1000)
 * Builds a store through real commands: NODES ready nodes (4 CPUs, 8 GiB,
 * labels zone=z0..z3 and rack=r0..r24), SERVICES replicated services of
 * REPLICAS replicas (one in three constrained to node.labels.zone!=z0, one in
 * two reserving 0.1 CPU and 64 MiB), their tasks made by the orchestrator.
 * Then times scheduler_run() over all of them 5 times (the store is not
 * changed, so each run places the same tasks) and prints the median:
 * "scheduler: T tasks on N nodes: P placements/s (median of 5 runs, M ms)". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/orchestrator.h"
#include "node/records_svc.h"
#include "node/scheduler.h"
#include "node/store.h"
#include "raft/fsm.h"

#define RUNS 5

static uint64_t index_;

static void die(const char *what, const struct shoal_err *err)
{
	fprintf(stderr, "sched_bench: %s: %s\n", what, err != NULL ? err->msg : "failed");
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void apply(struct store *s, struct command *cmd)
{
	struct consensus_fsm fsm;
	struct shoal_err err;
	void *buf, *result;
	size_t len;

	if (command_encode(cmd, &buf, &len, &err) != 0)
		die("encode", &err);
	command_free(cmd);
	store_fsm(s, &fsm);
	if (fsm.apply(fsm.arg, ++index_, buf, len, &result) != 0 || store_result_code(result) != 0)
		die("apply", NULL);
	free(buf);
}

static char *xstrdup(const char *str)
{
	char *p = strdup(str);

	if (p == NULL)
		die("strdup", NULL);
	return p;
}

static bool up(void *arg, const char *id)
{
	(void)arg;
	(void)id;
	return true;
}

static void new_id(void *arg, char out[ORCH_ID_LEN + 1])
{
	unsigned long *n = arg;

	snprintf(out, ORCH_ID_LEN + 1, "t%024lu", (*n)++);
}

static void add_nodes(struct store *s, unsigned n)
{
	struct command cmd;
	struct shoal_err err;

	command_init(&cmd);
	for (unsigned i = 0; i < n; i++) {
		struct node_rec r;
		char id[32], v[32];

		if (node_rec_defaults(&r, &err) != 0)
			die("node", &err);
		snprintf(id, sizeof(id), "n%05u", i);
		r.meta.id = xstrdup(id);
		r.description.hostname = xstrdup(id);
		r.status.state = NODE_STATE_READY;
		r.description.resources.nano_cpus = 4000000000;
		r.description.resources.memory_bytes = 8ll << 30;
		snprintf(v, sizeof(v), "z%u", i % 4);
		if (schema_map_set(&r.spec.labels, "zone", v, &err) != 0)
			die("label", &err);
		snprintf(v, sizeof(v), "r%u", i % 25);
		if (schema_map_set(&r.spec.labels, "rack", v, &err) != 0)
			die("label", &err);
		if (command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_NEW, &r, &err) != 0)
			die("put node", &err);
		node_rec_free(&r);
	}
	apply(s, &cmd);
}

static void add_services(struct store *s, unsigned n, unsigned replicas)
{
	struct command cmd;
	struct shoal_err err;

	command_init(&cmd);
	for (unsigned i = 0; i < n; i++) {
		struct service_rec r;
		struct svc_task_spec *ts = &r.spec.task_template;
		char id[32];

		if (service_rec_defaults(&r, &err) != 0)
			die("service", &err);
		snprintf(id, sizeof(id), "s%04u", i);
		r.meta.id = xstrdup(id);
		r.spec.name = xstrdup(id);
		r.spec.replicas = replicas;
		ts->container_spec.image = xstrdup("shoal-demo:latest");
		if (i % 3 == 0 &&
		    schema_strlist_append(&ts->placement.constraints, "node.labels.zone!=z0", &err))
			die("constraint", &err);
		if (i % 2 == 0) {
			ts->resources.reservations.nano_cpus = 100000000;
			ts->resources.reservations.memory_bytes = 64ll << 20;
		}
		if (command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_NEW, &r, &err) != 0)
			die("put service", &err);
		service_rec_free(&r);
	}
	apply(s, &cmd);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned nodes = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	unsigned services = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
	unsigned replicas = argc > 3 ? (unsigned)atoi(argv[3]) : 1000;
	unsigned long ids = 0;
	struct orch_env oenv = {
	    .now_ns = 1, .node_up = up, .new_id = new_id, .arg = &ids, .history_limit = 5};
	struct sched_env senv = {.now_ns = 2, .node_up = up};
	struct sched_stats st = {0};
	struct shoal_err err;
	struct store *s;
	struct command cmd;
	double ms[RUNS];
	int64_t next;

	if (nodes == 0 || services == 0 || replicas == 0) {
		fprintf(stderr, "usage: sched_bench [NODES [SERVICES [REPLICAS]]]\n");
		return 2;
	}
	if (store_new(&s, &err) != 0)
		die("store", &err);
	add_nodes(s, nodes);
	add_services(s, services, replicas);
	/* The orchestrator makes the tasks, at most COMMAND_MAX_OPS a command. */
	do {
		command_init(&cmd);
		if (orchestrator_run(s, &oenv, &cmd, &next, &err) != 0)
			die("orchestrator", &err);
		if (cmd.n_ops > 0)
			apply(s, &cmd);
	} while (next != 0);

	for (int r = 0; r < RUNS; r++) {
		double t0;

		command_init(&cmd);
		t0 = now_ms();
		if (scheduler_run(s, &senv, &cmd, &st, &err) != 0)
			die("scheduler", &err);
		ms[r] = now_ms() - t0;
		command_free(&cmd);
	}
	qsort(ms, RUNS, sizeof(ms[0]), cmp_double);
	printf("scheduler: %zu tasks on %u nodes: %.0f placements/s (median of %d runs, %.1f ms; "
	       "%zu placed, %zu pending)\n",
	       st.considered, nodes, (double)st.placed / (ms[RUNS / 2] / 1e3), RUNS, ms[RUNS / 2],
	       st.placed, st.pending);
	store_free(s);
	return 0;
}
