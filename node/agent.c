/* The agent of a node: makes its containers match its assigned tasks, reports their status. */
#include "node/agent.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "node/agent_task.h"
#include "node/node_mesh.h"

#define SAVED_FILE	"assignments.msgpack"
#define SAVED_MAX	(256u << 20) /* bytes of the saved set */
#define TASK_ID_MAX	63u	     /* bytes of a task id (struct agent_report) */
#define STARTS_PER_TURN 1u	     /* starts begun in one turn of the loop */

/* ---- the task state machine ---- */

#define B(s)  (1u << (s))
#define ENDED (B(TASK_COMPLETE) | B(TASK_SHUTDOWN) | B(TASK_FAILED) | B(TASK_REJECTED))
/* The observed states a task may move to from each state. The normal path is
 * assigned -> accepted -> preparing -> starting -> running -> complete or
 * failed; preparing ends in rejected when the image or the container cannot
 * be had; any live state ends in shutdown when the task is no longer wanted.
 * Adoption after a restart may jump from any live state to running,
 * complete or failed (the container got there while the agent was away).
 * Ended states (complete, shutdown, failed, rejected, remove, orphaned) are
 * final. */
static const uint32_t moves[] = {
    [TASK_ASSIGNED] = B(TASK_ACCEPTED) | B(TASK_RUNNING) | ENDED,
    [TASK_ACCEPTED] = B(TASK_PREPARING) | B(TASK_RUNNING) | ENDED,
    [TASK_PREPARING] = B(TASK_STARTING) | B(TASK_RUNNING) | ENDED,
    [TASK_READY] = B(TASK_STARTING) | B(TASK_RUNNING) | ENDED,
    [TASK_STARTING] = B(TASK_RUNNING) | B(TASK_COMPLETE) | B(TASK_FAILED) | B(TASK_SHUTDOWN),
    [TASK_RUNNING] = B(TASK_COMPLETE) | B(TASK_FAILED) | B(TASK_SHUTDOWN),
};

static bool ended(enum task_state s)
{
	return s >= TASK_COMPLETE;
}

/* The container operation a task waits for: at most one at a time. */
enum task_op { OP_NONE, OP_PULL, OP_START, OP_STOP, OP_REMOVE };

struct op_req;
struct pull_req;

/* One task of the set, or one that left it and still has a container. */
struct atask {
	struct atask *prev, *next;
	struct agent *a;
	struct task_rec rec; /* as assigned */
	bool in_set;
	/* observed, as reported */
	enum task_state state;
	char message[128];
	char err[512];
	char ctr_id[65];    /* "" when it has none */
	char shown_ctr[65]; /* the last one it had, for reports */
	int64_t pid;
	int64_t exit_code;
	int64_t timestamp;
	char addr[16];		 /* its container's address, "" when none */
	uint64_t drain_until_ms; /* desired shut down while in the mesh: stop then */
	/* what is in flight */
	enum task_op op;
	struct op_req *req;    /* OP_START, OP_STOP, OP_REMOVE */
	struct pull_req *pull; /* OP_PULL */
	bool in_reconcile, again;
	bool start_wait; /* waits for a start slot (AGENT_MAX_STARTS in flight) */
	/* its report */
	bool dirty;   /* a newer state than the last sent */
	bool unacked; /* sent in batch @sent_batch, no ack yet */
	uint64_t sent_batch;
	uint64_t sent_ms;
};

/* A container operation of a task (start, stop or remove): the happy path is
 * ctr_* then op_done() on its callback. @t is NULL once the agent closed:
 * the callback only frees the request. */
struct op_req {
	struct atask *t;
};

/* A pull of an image for the tasks whose @pull points here. The loop:
 * image_pull_new(), uv_queue_work(). The pool: image_pull_fetch(). The loop
 * again: image_pull_finish(), then each waiting task goes on (or is rejected
 * with the pull's error). @a is NULL once the agent closed (the pull was
 * cancelled): after_work only cleans up. */
struct pull_req {
	struct pull_req *prev, *next;
	struct agent *a;
	uv_work_t work;
	struct image_pull *pull;
	char *ref;
	int rv;
	struct shoal_err err;
};

/* A container of a task not in the set: stop, then remove. @a NULL once the
 * agent closed. */
struct orphan {
	struct orphan *prev, *next;
	struct agent *a;
	char id[65];
};

struct agent {
	uv_loop_t *loop;
	char *state_dir;
	const char *node_id; /* the config's: may change in place (swarm_node_id after a join) */
	struct containers *cs;
	struct image_store *images;
	const struct image_pull_opts *pull_opts;
	void (*report)(void *arg, uint64_t batch, const struct agent_report *reports, size_t n);
	void *arg;

	uint64_t version;
	struct atask *tasks;
	struct pull_req *pulls;
	struct orphan *orphans;
	unsigned starting; /* OP_START in flight, at most AGENT_MAX_STARTS */
	unsigned budget;   /* starts starts_resume() may still begin now */
	uv_timer_t resume; /* starts_resume() on the next turn of the loop */
	uv_timer_t drain;  /* stops the tasks whose drain ended */
	int handles;	   /* of the three timers, not yet closed */
	struct node_mesh *mesh;
	/* For tests: ctr_start, or the config's stand-in. */
	void (*start)(struct containers *cs, const char *id, ctr_cb cb, void *arg);

	uv_timer_t timer; /* reports */
	bool timer_on;
	uint64_t batch;
	uint64_t last_send_ms;
	bool in_flight; /* batch @batch is sent, not yet answered */

	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void reconcile(struct atask *t);
static void starts_resume_soon(struct agent *a);
static void drain_done(uv_timer_t *h);
static void now_running(struct atask *t, const struct container *c);

/* ---- reports ---- */

static void report_tick(uv_timer_t *h);

static void report_schedule(struct agent *a)
{
	uint64_t now = clock_mono_ms(), delay = 0;

	if (a->closing || a->timer_on)
		return;
	if (a->last_send_ms != 0 && now < a->last_send_ms + AGENT_REPORT_MS)
		delay = a->last_send_ms + AGENT_REPORT_MS - now;
	a->timer_on = true;
	uv_timer_start(&a->timer, report_tick, delay, AGENT_REPORT_MS);
}

/* The batch in flight was answered: the next may go (paced as usual). */
static void report_answered(struct agent *a, uint64_t batch)
{
	if (!a->in_flight || batch != a->batch)
		return;
	a->in_flight = false;
	a->timer_on = false; /* restarted with the pacing delay */
	report_schedule(a);
}

static void report_fill(const struct atask *t, struct agent_report *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->task_id, sizeof(r->task_id), "%s", t->rec.meta.id);
	r->state = t->state;
	snprintf(r->message, sizeof(r->message), "%s", t->message);
	snprintf(r->err, sizeof(r->err), "%s", t->err);
	snprintf(r->container_id, sizeof(r->container_id), "%s", t->shown_ctr);
	r->pid = t->pid;
	r->exit_code = t->exit_code;
	r->timestamp = t->timestamp;
	snprintf(r->addr, sizeof(r->addr), "%s", t->addr);
}

static bool report_due(const struct atask *t, uint64_t now)
{
	return t->in_set &&
	       (t->dirty || (t->unacked && now >= t->sent_ms + (uint64_t)AGENT_RESEND_MS));
}

static void report_tick(uv_timer_t *h)
{
	struct agent *a = h->data;
	struct agent_report *reports;
	uint64_t now = clock_mono_ms();
	size_t n = 0, i = 0;
	bool waiting = false;
	struct atask *t;

	if (a->closing)
		return;
	/* One batch in flight: the next is built once the store has the last
	 * (else its task versions are stale and the leader refuses it). An
	 * answer that never comes is waited for AGENT_RESEND_MS. */
	if (a->in_flight && now < a->last_send_ms + (uint64_t)AGENT_RESEND_MS)
		return;
	a->in_flight = false;
	for (t = a->tasks; t != NULL; t = t->next) {
		if (report_due(t, now))
			n++;
		else if (t->in_set && t->unacked)
			waiting = true;
	}
	if (n == 0) {
		if (!waiting) {
			uv_timer_stop(&a->timer);
			a->timer_on = false;
		}
		return;
	}
	reports = calloc(n, sizeof(*reports));
	if (reports == NULL) {
		log_warn("agent", "reports delayed: out of memory");
		return; /* the timer tries again */
	}
	a->batch++;
	for (t = a->tasks; t != NULL && i < n; t = t->next) {
		if (!report_due(t, now))
			continue;
		report_fill(t, &reports[i++]);
		t->dirty = false;
		t->unacked = true;
		t->sent_batch = a->batch;
		t->sent_ms = now;
	}
	a->last_send_ms = now;
	a->in_flight = true;
	a->report(a->arg, a->batch, reports, n); /* may answer at once */
	free(reports);
}

void agent_reports_acked(struct agent *a, uint64_t batch)
{
	if (a->closing)
		return;
	for (struct atask *t = a->tasks; t != NULL; t = t->next)
		if (t->unacked && t->sent_batch == batch)
			t->unacked = false;
	report_answered(a, batch);
}

void agent_reports_refused(struct agent *a, uint64_t batch)
{
	if (a->closing)
		return;
	for (struct atask *t = a->tasks; t != NULL; t = t->next) {
		if (t->unacked && t->sent_batch == batch) {
			t->unacked = false;
			t->dirty = true;
		}
	}
	report_answered(a, batch);
}

/* Move @t to @state, checked against the table and traced; @message NULL
 * keeps the current one. Reported in the next batch. */
static void move(struct atask *t, enum task_state state, const char *message, const char *err)
{
	bool ok = (size_t)t->state < ARRAY_SIZE(moves) && (moves[t->state] & B(state)) != 0;

	if (!ok) {
		log_error("agent", "task %s: refused move %s -> %s", t->rec.meta.id,
			  schema_enum_name(task_state_names, (int)t->state),
			  schema_enum_name(task_state_names, (int)state));
		PRE(ok);
		return;
	}
	log_debug("agent", "task %s: %s -> %s%s%s", t->rec.meta.id,
		  schema_enum_name(task_state_names, (int)t->state),
		  schema_enum_name(task_state_names, (int)state), err != NULL ? ": " : "",
		  err != NULL ? err : "");
	t->state = state;
	if (message != NULL)
		snprintf(t->message, sizeof(t->message), "%s", message);
	snprintf(t->err, sizeof(t->err), "%s", err != NULL ? err : "");
	t->timestamp = clock_now_ns();
	if (t->in_set) {
		t->dirty = true;
		report_schedule(t->a);
	}
}

/* ---- tasks ---- */

static struct atask *task_find(const struct agent *a, const char *id)
{
	for (struct atask *t = a->tasks; t != NULL; t = t->next)
		if (strcmp(t->rec.meta.id, id) == 0)
			return t;
	return NULL;
}

static void task_free(struct atask *t)
{
	task_rec_free(&t->rec);
	free(t);
}

static void task_unlink(struct agent *a, struct atask *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		a->tasks = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
}

/* A new task from the set's copy @rec (moved in). */
static struct atask *task_new(struct agent *a, struct task_rec *rec)
{
	struct atask *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->a = a;
	t->rec = *rec;
	memset(rec, 0, sizeof(*rec));
	t->in_set = true;
	/* The leader's view is where the agent starts from. */
	t->state = t->rec.status.state < TASK_ASSIGNED ? TASK_ASSIGNED : t->rec.status.state;
	snprintf(t->message, sizeof(t->message), "%s",
		 t->rec.status.message != NULL ? t->rec.status.message : "");
	snprintf(t->err, sizeof(t->err), "%s", t->rec.status.err != NULL ? t->rec.status.err : "");
	t->exit_code = t->rec.status.container_status.exit_code;
	t->timestamp = t->rec.status.timestamp;
	t->next = a->tasks;
	if (a->tasks != NULL)
		a->tasks->prev = t;
	a->tasks = t;
	return t;
}

static bool wants_running(const struct atask *t)
{
	return t->in_set && t->rec.desired_state < TASK_SHUTDOWN;
}

/* @t's container, or NULL (forgotten when it is gone). */
static const struct container *task_ctr(struct atask *t)
{
	const struct container *c;

	if (t->ctr_id[0] == '\0')
		return NULL;
	if (ctr_lookup(t->a->cs, t->ctr_id, &c, NULL) != 0 || strcmp(c->id, t->ctr_id) != 0) {
		t->ctr_id[0] = '\0';
		t->pid = 0;
		return NULL;
	}
	return c;
}

/* The container of @t exited (it is not running): complete or failed. */
static void task_exited(struct atask *t, const struct container *c)
{
	char err[64];

	t->exit_code = c->exit_code;
	t->pid = 0;
	if (c->started_ns == 0 && c->error[0] != '\0') {
		char msg[sizeof(c->error) + 32];
		snprintf(msg, sizeof(msg), "starting container failed: %s", c->error);
		move(t, TASK_FAILED, NULL, msg);
		return;
	}
	if (c->exit_code == 0) {
		move(t, TASK_COMPLETE, "finished", NULL);
		return;
	}
	snprintf(err, sizeof(err), "task: non-zero exit (%d)", c->exit_code);
	move(t, TASK_FAILED, NULL, err);
}

/* ---- container operations ---- */

static void op_done(void *arg, int status, const char *msg)
{
	struct op_req *r = arg;
	struct atask *t = r->t;
	enum task_op op;
	const struct container *c;

	free(r);
	if (t == NULL)
		return; /* the agent closed */
	op = t->op;
	t->req = NULL;
	t->op = OP_NONE;
	if (op == OP_START)
		t->a->starting--;
	c = task_ctr(t);
	switch (op) {
	case OP_START:
		if (status == 0 && c != NULL && c->state == CTR_RUNNING) {
			now_running(t, c);
		} else if (status == 0 && c != NULL) {
			task_exited(t, c); /* it already ended */
		} else {
			char err[SHOAL_ERR_LEN + 32];
			snprintf(err, sizeof(err), "starting container failed: %s",
				 msg != NULL ? msg : "unknown error");
			if (c != NULL)
				t->exit_code = c->exit_code;
			if (t->state == TASK_STARTING)
				move(t, TASK_FAILED, NULL, err);
		}
		break;
	case OP_STOP:
		if (c != NULL && c->state != CTR_RUNNING)
			t->exit_code = c->exit_code;
		if (status != 0 && status != SHOAL_ESTATE)
			log_warn("agent", "task %s: stopping container %.12s failed: %s",
				 t->rec.meta.id, t->ctr_id, msg != NULL ? msg : "");
		break;
	case OP_REMOVE:
		if (status != 0 && c != NULL) {
			/* Forget it: the orphan sweep of the next set retries. */
			log_warn("agent", "task %s: removing container %.12s failed: %s",
				 t->rec.meta.id, t->ctr_id, msg != NULL ? msg : "");
			t->ctr_id[0] = '\0';
		}
		t->pid = 0;
		break;
	default:
		PRE(false);
	}
	if (op == OP_START)
		starts_resume_soon(t->a);
	reconcile(t);
}

/* Begin @op on @t's container. */
static void op_begin(struct atask *t, enum task_op op)
{
	struct op_req *r = calloc(1, sizeof(*r));
	char id[65];

	if (r == NULL) {
		log_warn("agent", "task %s: out of memory: retried with the next set",
			 t->rec.meta.id);
		return;
	}
	r->t = t;
	t->req = r;
	t->op = op;
	snprintf(id, sizeof(id), "%s", t->ctr_id);
	switch (op) {
	case OP_START:
		t->a->starting++;
		t->a->start(t->a->cs, id, op_done, r);
		break;
	case OP_STOP:
		ctr_stop(t->a->cs, id, -1, op_done, r);
		break;
	case OP_REMOVE:
		ctr_remove(t->a->cs, id, true, op_done, r);
		break;
	default:
		PRE(false);
	}
}

/* ---- pulls ---- */

static void pull_work(uv_work_t *w)
{
	struct pull_req *p = w->data;

	p->rv = image_pull_fetch(p->pull, &p->err);
}

static void pull_after_work(uv_work_t *w, int status)
{
	struct pull_req *p = w->data;
	struct agent *a = p->a;
	struct atask *t, *next;
	int rv = p->rv;

	if (status == UV_ECANCELED && rv == 0)
		rv = shoal_errf(&p->err, SHOAL_ESHUTDOWN, "the pull was cancelled");
	rv = image_pull_finish(p->pull, rv, &p->err);
	image_pull_free(p->pull);
	if (a != NULL) {
		if (p->prev != NULL)
			p->prev->next = p->next;
		else
			a->pulls = p->next;
		if (p->next != NULL)
			p->next->prev = p->prev;
		if (rv == 0)
			log_info("agent", "pulled %s", p->ref);
		else
			log_warn("agent", "pulling %s failed: %s", p->ref, p->err.msg);
		for (t = a->tasks; t != NULL; t = next) {
			next = t->next;
			if (t->pull != p)
				continue;
			t->pull = NULL;
			t->op = OP_NONE;
			if (rv != 0 && wants_running(t) && !ended(t->state))
				move(t, t->state == TASK_STARTING ? TASK_FAILED : TASK_REJECTED,
				     NULL, p->err.msg);
		}
		/* Those that go on may free themselves: walk again from the top. */
		for (t = a->tasks; t != NULL; t = next) {
			next = t->next;
			if (t->op == OP_NONE && !t->in_reconcile)
				reconcile(t);
		}
	}
	free(p->ref);
	free(p);
}

/* Make @t wait for @ref, pulling it unless a pull of it is in flight.
 * Returns 0, or an error for the task's rejection. */
static int pull_begin(struct atask *t, const char *ref, struct shoal_err *err)
{
	struct agent *a = t->a;
	struct pull_req *p;
	int rv;

	for (p = a->pulls; p != NULL; p = p->next)
		if (strcmp(p->ref, ref) == 0)
			break;
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL || (p->ref = strdup(ref)) == NULL) {
			free(p);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		}
		rv = image_pull_new(a->images, ref, a->pull_opts, NULL, NULL, &p->pull, err);
		if (rv != 0) {
			free(p->ref);
			free(p);
			return rv;
		}
		p->a = a;
		p->work.data = p;
		rv = uv_queue_work(a->loop, &p->work, pull_work, pull_after_work);
		if (rv != 0) {
			image_pull_finish(p->pull, SHOAL_ESHUTDOWN, NULL);
			image_pull_free(p->pull);
			free(p->ref);
			free(p);
			return shoal_errf(err, SHOAL_EIO, "cannot queue the pull of %s: %s", ref,
					  uv_strerror(rv));
		}
		log_info("agent", "pulling %s", ref);
		p->next = a->pulls;
		if (a->pulls != NULL)
			a->pulls->prev = p;
		a->pulls = p;
	}
	t->pull = p;
	t->op = OP_PULL;
	return 0;
}

/* ---- orphans ---- */

static void orphan_free(struct orphan *o)
{
	struct agent *a = o->a;

	if (a != NULL) {
		if (o->prev != NULL)
			o->prev->next = o->next;
		else
			a->orphans = o->next;
		if (o->next != NULL)
			o->next->prev = o->prev;
	}
	free(o);
}

static void orphan_removed(void *arg, int status, const char *msg)
{
	struct orphan *o = arg;

	if (o->a != NULL) {
		if (status != 0)
			log_warn("agent", "removing container %.12s of an old task failed: %s",
				 o->id, msg != NULL ? msg : "");
		else
			log_info("agent", "removed container %.12s of an old task", o->id);
	}
	orphan_free(o);
}

static void orphan_stopped(void *arg, int status, const char *msg)
{
	struct orphan *o = arg;

	(void)status;
	(void)msg;
	if (o->a == NULL) {
		orphan_free(o);
		return;
	}
	ctr_remove(o->a->cs, o->id, true, orphan_removed, o);
}

static void orphan_begin(struct agent *a, const struct container *c)
{
	struct orphan *o;

	for (o = a->orphans; o != NULL; o = o->next)
		if (strcmp(o->id, c->id) == 0)
			return; /* already on its way out */
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		log_warn("agent", "container %.12s of an old task kept: out of memory", c->id);
		return;
	}
	o->a = a;
	snprintf(o->id, sizeof(o->id), "%s", c->id);
	o->next = a->orphans;
	if (a->orphans != NULL)
		a->orphans->prev = o;
	a->orphans = o;
	log_info("agent", "stopping container %.12s of task %s, not assigned here", o->id,
		 agent_ctr_task_id(c));
	ctr_stop(a->cs, o->id, -1, orphan_stopped, o);
}

/* Match the containers labelled with a task id with the tasks: a task without
 * a container adopts the first it finds, the rest are removed. */
static void sweep(struct agent *a)
{
	size_t n = ctr_count(a->cs);
	const struct container **orphans = calloc(n > 0 ? n : 1, sizeof(*orphans));
	size_t n_orphans = 0;

	if (orphans == NULL) {
		log_warn("agent", "containers not matched with tasks: out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct container *c = ctr_at(a->cs, i);
		const char *id = agent_ctr_task_id(c);
		struct atask *t;

		if (id == NULL || c->state == CTR_REMOVING)
			continue;
		t = task_find(a, id);
		if (t != NULL && t->ctr_id[0] == '\0' && t->op == OP_NONE) {
			snprintf(t->ctr_id, sizeof(t->ctr_id), "%s", c->id);
			snprintf(t->shown_ctr, sizeof(t->shown_ctr), "%s", c->id);
			log_info("agent", "task %s: adopted container %.12s", id, c->id);
		} else if (t == NULL || strcmp(t->ctr_id, c->id) != 0) {
			orphans[n_orphans++] = c;
		}
	}
	/* ctr_stop may answer at once: collect first, act after the walk. */
	for (size_t i = 0; i < n_orphans; i++)
		orphan_begin(a, orphans[i]);
	free(orphans);
}

/* ---- reconciling one task ---- */

/* @c runs: @t is running once its health check, if it has one, passed (as
 * swarmkit waits for it), so the routing mesh only sends to healthy tasks. */
static void now_running(struct atask *t, const struct container *c)
{
	if (c->has_health && c->health != HEALTH_HEALTHY && t->state == TASK_STARTING)
		return; /* a health event brings it back here */
	t->pid = c->pid;
	t->exit_code = 0;
	t->addr[0] = '\0';
	if (c->has_endpoint)
		inet_ntop(AF_INET, &c->endpoint.addr, t->addr, sizeof(t->addr));
	move(t, TASK_RUNNING, "started", NULL);
}

/* Whether @t, desired shut down, must still serve the connections the mesh
 * may send it (node/node_mesh.h): then the drain timer comes back for it. */
static bool draining(struct atask *t, const struct container *c)
{
	struct agent *a = t->a;
	uint64_t now = clock_mono_ms();

	if (t->drain_until_ms == 0) {
		if (!c->has_endpoint || !node_mesh_serving(a->mesh, c->endpoint.addr))
			return false;
		t->drain_until_ms = now + NODE_MESH_DRAIN_MS;
		log_debug("agent", "task %s: draining for %d ms before it stops", t->rec.meta.id,
			  NODE_MESH_DRAIN_MS);
	}
	if (now >= t->drain_until_ms)
		return false;
	if (!uv_is_active((uv_handle_t *)&a->drain) ||
	    uv_timer_get_due_in(&a->drain) > t->drain_until_ms - now)
		uv_timer_start(&a->drain, drain_done, t->drain_until_ms - now, 0);
	return true;
}

/* Create @t's container. Returns 0 (the container is @t's), 1 (waiting for a
 * pull), or an error in @err. */
static int task_create(struct atask *t, struct shoal_err *err)
{
	struct agent *a = t->a;
	const struct image *img;
	const struct container *c;
	struct ctr_spec spec;
	int rv;

	rv = agent_task_spec(&t->rec, a->node_id, &spec, err);
	if (rv != 0)
		return rv;
	rv = image_store_lookup(a->images, spec.image, &img, err);
	if (rv == SHOAL_ENOTFOUND && a->pull_opts != NULL) {
		rv = pull_begin(t, spec.image, err);
		ctr_spec_free(&spec);
		return rv == 0 ? 1 : rv;
	}
	if (rv == 0)
		rv = ctr_create(a->cs, &spec, &c, err);
	ctr_spec_free(&spec);
	if (rv != 0)
		return rv;
	snprintf(t->ctr_id, sizeof(t->ctr_id), "%s", c->id);
	snprintf(t->shown_ctr, sizeof(t->shown_ctr), "%s", c->id);
	log_info("agent", "task %s: created container %.12s (%s)", t->rec.meta.id, c->id, c->name);
	return 0;
}

/* ---- the bound on starts ---- */

/* Whether @t must wait for its start. Starts begin only from
 * starts_resume(), one per turn of the loop, while fewer than
 * AGENT_MAX_STARTS are in flight: each does synchronous work on the loop (the
 * runc driver: rootfs, bundle, records), and one at a time lets the loop serve
 * Raft, the API and reports between them. A task that must wait is marked. */
static bool start_slot(struct atask *t)
{
	struct agent *a = t->a;

	if (a->budget > 0 && a->starting < AGENT_MAX_STARTS) {
		a->budget--;
		return false;
	}
	t->start_wait = true;
	if (a->starting < AGENT_MAX_STARTS)
		starts_resume_soon(a);
	return true;
}

/* The next waiting task starts (or is rejected, or pulls). From a timer, not
 * from a start's answer: that answer comes from the loop's child reaping,
 * which goes on as long as children keep exiting, so starts begun there would
 * keep timers (reports, Raft) from running until the last one. Only tasks
 * that want to run wait, and reconcile() never frees those, so the walk
 * holds. */
static void starts_resume(uv_timer_t *h)
{
	struct agent *a = h->data;
	struct atask *t;

	if (a->closing)
		return;
	a->budget = STARTS_PER_TURN;
	for (t = a->tasks; t != NULL && a->budget > 0 && a->starting < AGENT_MAX_STARTS;
	     t = t->next)
		if (t->start_wait && wants_running(t) && t->op == OP_NONE && !t->in_reconcile)
			reconcile(t);
	a->budget = 0;
	if (t != NULL && a->starting < AGENT_MAX_STARTS)
		starts_resume_soon(a); /* more may wait */
}

static void starts_resume_soon(struct agent *a)
{
	if (!a->closing && !uv_is_active((uv_handle_t *)&a->resume))
		uv_timer_start(&a->resume, starts_resume, 0, 0);
}

/* One step towards what @t should be; sets t->again when another may follow. */
static void step(struct atask *t)
{
	const struct container *c;
	struct shoal_err err;
	int rv;

	if (t->op != OP_NONE || t->a->closing)
		return;
	t->start_wait = false;
	c = task_ctr(t);
	if (!wants_running(t)) {
		if (c != NULL && c->state == CTR_RUNNING) {
			if (t->in_set && draining(t, c))
				return;
			op_begin(t, OP_STOP);
		} else if (c != NULL) {
			if (c->state != CTR_DEAD && c->state != CTR_REMOVING)
				t->exit_code = c->exit_code;
			op_begin(t, OP_REMOVE);
		} else if (t->in_set && !ended(t->state)) {
			t->pid = 0;
			move(t, TASK_SHUTDOWN, "shutdown", NULL);
		}
		return;
	}
	switch (t->state) {
	case TASK_ASSIGNED:
		if (c != NULL && c->state != CTR_CREATED)
			break; /* adopted: followed below */
		move(t, TASK_ACCEPTED, "accepted", NULL);
		__attribute__((fallthrough));
	case TASK_ACCEPTED:
		if (c != NULL && c->state != CTR_CREATED)
			break;
		move(t, TASK_PREPARING, "preparing", NULL);
		__attribute__((fallthrough));
	case TASK_PREPARING:
	case TASK_READY:
		if ((c == NULL || c->state == CTR_CREATED) && start_slot(t))
			return; /* preparing until a start slot frees */
		if (c == NULL) {
			rv = task_create(t, &err);
			if (rv == 1)
				return; /* pulling */
			if (rv != 0) {
				move(t, TASK_REJECTED, NULL, err.msg);
				return;
			}
			c = task_ctr(t);
			if (c == NULL)
				return;
		}
		if (c->state == CTR_CREATED) {
			move(t, TASK_STARTING, "starting", NULL);
			op_begin(t, OP_START);
			return;
		}
		break;
	case TASK_STARTING:
		if ((c == NULL || c->state == CTR_CREATED) && start_slot(t))
			return;
		if (c == NULL) {
			/* The leader saw it starting, its container is gone
			 * (or was never made): make it again. */
			rv = task_create(t, &err);
			if (rv == 1)
				return;
			if (rv != 0) {
				move(t, TASK_FAILED, NULL, err.msg);
				return;
			}
			c = task_ctr(t);
			if (c == NULL)
				return;
		}
		if (c->state == CTR_CREATED) {
			op_begin(t, OP_START);
			return;
		}
		break;
	case TASK_RUNNING:
		if (c == NULL) {
			t->pid = 0;
			move(t, TASK_FAILED, NULL, "task: the container is gone");
			return;
		}
		break;
	default:
		/* Ended: a container still running (an unhealthy one) is stopped,
		 * and stays until the task is shut down. */
		if (c != NULL && c->state == CTR_RUNNING)
			op_begin(t, OP_STOP);
		return;
	}
	if (c == NULL)
		return;
	/* The container exists and the task has not ended: follow it. */
	if (c->state == CTR_RUNNING) {
		if (t->state != TASK_RUNNING)
			now_running(t, c);
		if (c->has_health && c->health == HEALTH_UNHEALTHY) {
			move(t, TASK_FAILED, NULL, "task: unhealthy container");
			t->again = true;
		}
	} else if (c->state == CTR_EXITED || c->state == CTR_DEAD) {
		task_exited(t, c);
	}
}

static void reconcile(struct atask *t)
{
	struct agent *a = t->a;

	if (t->in_reconcile) {
		t->again = true;
		return;
	}
	t->in_reconcile = true;
	do {
		t->again = false;
		step(t);
	} while (t->again);
	t->in_reconcile = false;
	if (!t->in_set && t->op == OP_NONE && t->ctr_id[0] == '\0' && !a->closing) {
		task_unlink(a, t);
		task_free(t);
	}
}

static void reconcile_all(struct agent *a)
{
	struct atask *t, *next;

	for (t = a->tasks; t != NULL; t = next) {
		next = t->next;
		reconcile(t);
	}
}

/* The drain of some tasks ended: every draining task is looked at again;
 * those whose drain ended stop, draining() re-arms the timer for the others
 * (the loop's clock, which the timer follows, may lag clock_mono_ms()). */
static void drain_done(uv_timer_t *h)
{
	struct agent *a = h->data;
	struct atask *t, *next;

	if (a->closing)
		return;
	for (t = a->tasks; t != NULL; t = next) {
		next = t->next;
		if (t->drain_until_ms != 0 && t->op == OP_NONE)
			reconcile(t);
	}
}

void agent_container_event(struct agent *a, const struct container *c, enum ctr_event ev)
{
	const char *id;
	struct atask *t;

	if (a->closing || (id = agent_ctr_task_id(c)) == NULL)
		return;
	t = task_find(a, id);
	if (t == NULL || strcmp(t->ctr_id, c->id) != 0)
		return;
	switch (ev) {
	case CTR_EV_START:
		return; /* op_done() follows a start of ours */
	case CTR_EV_EXIT:
	case CTR_EV_HEALTH:
		if (t->op != OP_NONE)
			return; /* op_done() follows */
		break;
	case CTR_EV_REMOVE:
		if (t->op != OP_NONE)
			return;
		/* Removed by someone else: the task has no container now. */
		t->ctr_id[0] = '\0';
		t->pid = 0;
		break;
	}
	reconcile(t);
}

/* ---- the saved set ---- */

static void saved_path(const struct agent *a, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%s", a->state_dir, SAVED_FILE);
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0 ? -1 : 0;
}

static int save(const struct agent *a, uint64_t version, const struct task_rec *const *tasks,
		size_t n, struct shoal_err *err)
{
	char path[PATH_MAX];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 2) != 0 || pack_str(&pk, "Version") != 0 ||
	    msgpack_pack_uint64(&pk, version) != 0 || pack_str(&pk, "Tasks") != 0 ||
	    msgpack_pack_array(&pk, n) != 0)
		rv = SHOAL_ENOMEM;
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = schema_pack(&task_schema, tasks[i], &pk);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	} else if (sb.size > SAVED_MAX) {
		rv = shoal_errf(err, SHOAL_ETOOBIG, "the assignment set is larger than %u bytes",
				SAVED_MAX);
	} else {
		saved_path(a, path);
		rv = fs_write_atomic(path, sb.data, sb.size, 0600, err);
		if (rv != 0)
			shoal_err_wrap(err, "saving the assignment set");
	}
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
	       memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

/* Decode the saved set into *@recs (an array of *@n records). */
static int load_decode(const char *buf, size_t len, uint64_t *version, struct task_rec **recs,
		       size_t *n, struct shoal_err *err)
{
	const msgpack_object *ver = NULL, *list = NULL;
	struct task_rec *out = NULL;
	msgpack_unpacked u;
	size_t done = 0;
	int rv;

	msgpack_unpacked_init(&u);
	rv = schema_msgpack_parse(buf, len, &u, err);
	if (rv != 0)
		goto out;
	if (u.data.type != MSGPACK_OBJECT_MAP) {
		rv = shoal_errf(err, SHOAL_EPROTO, "not a map");
		goto out;
	}
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
		if (key_is(&kv->key, "Version"))
			ver = &kv->val;
		else if (key_is(&kv->key, "Tasks"))
			list = &kv->val;
	}
	if (ver == NULL || ver->type != MSGPACK_OBJECT_POSITIVE_INTEGER || list == NULL ||
	    list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > AGENT_MAX_TASKS) {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"Version or Tasks is missing, of the wrong type or too large");
		goto out;
	}
	out = calloc(list->via.array.size > 0 ? list->via.array.size : 1, sizeof(*out));
	if (out == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	for (; done < list->via.array.size; done++) {
		task_rec_defaults(&out[done], NULL);
		rv = schema_unpack(&task_schema, &out[done], &list->via.array.ptr[done], err);
		if (rv == 0 && (out[done].meta.id == NULL || out[done].meta.id[0] == '\0' ||
				strlen(out[done].meta.id) > TASK_ID_MAX))
			rv = shoal_errf(err, SHOAL_EPROTO, "task %zu has no valid id", done);
		if (rv != 0) {
			task_rec_free(&out[done]);
			goto out;
		}
	}
	*version = ver->via.u64;
	*recs = out;
	*n = done;
	out = NULL;
out:
	if (out != NULL) {
		for (size_t i = 0; i < done; i++)
			task_rec_free(&out[i]);
		free(out);
	}
	msgpack_unpacked_destroy(&u);
	return rv;
}

static int load(struct agent *a, struct shoal_err *err)
{
	char path[PATH_MAX];
	struct task_rec *recs = NULL;
	size_t len, n = 0;
	uint64_t version = 0;
	char *buf;
	int rv;

	saved_path(a, path);
	rv = fs_read_all(path, SAVED_MAX, &buf, &len, err);
	if (rv == SHOAL_ENOTFOUND)
		return 0; /* no set applied yet */
	if (rv != 0) {
		shoal_err_wrap(err, "reading %s", path);
		return rv;
	}
	rv = load_decode(buf, len, &version, &recs, &n, err);
	free(buf);
	if (rv != 0) {
		shoal_err_wrap(err, "%s is damaged (remove it: the leader sends the set again)",
			       path);
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		if (task_find(a, recs[i].meta.id) == NULL && task_new(a, &recs[i]) == NULL) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		task_rec_free(&recs[i]);
	free(recs);
	if (rv == 0)
		a->version = version;
	return rv;
}

/* ---- the agent ---- */

static void agent_free(struct agent *a)
{
	struct atask *t, *next;

	for (t = a->tasks; t != NULL; t = next) {
		next = t->next;
		task_free(t);
	}
	free(a->state_dir);
	free(a);
}

int agent_open(const struct agent_config *cfg, struct agent **out, struct shoal_err *err)
{
	struct agent *a;
	int rv;

	if (cfg->loop == NULL || cfg->state_dir == NULL || cfg->node_id == NULL ||
	    cfg->containers == NULL || cfg->images == NULL || cfg->report == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "agent: incomplete configuration");
	if (strlen(cfg->state_dir) > PATH_MAX - sizeof(SAVED_FILE) - 2)
		return shoal_errf(err, SHOAL_EINVAL, "agent: the state directory path is too long");
	rv = fs_mkdir_p(cfg->state_dir, 0700, err);
	if (rv != 0)
		return rv;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	a->loop = cfg->loop;
	a->cs = cfg->containers;
	a->images = cfg->images;
	a->pull_opts = cfg->pull;
	a->mesh = cfg->mesh;
	a->report = cfg->report;
	a->arg = cfg->arg;
	a->start = cfg->start != NULL ? cfg->start : ctr_start;
	if ((a->state_dir = strdup(cfg->state_dir)) == NULL ||
	    (a->node_id = cfg->node_id) == NULL) {
		agent_free(a);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	rv = load(a, err);
	if (rv != 0) {
		agent_free(a);
		return rv;
	}
	uv_timer_init(a->loop, &a->timer); /* does not fail on a valid loop */
	a->timer.data = a;
	uv_timer_init(a->loop, &a->resume);
	a->resume.data = a;
	uv_timer_init(a->loop, &a->drain);
	a->drain.data = a;
	a->handles = 3;
	if (a->version > 0) {
		log_info("agent", "assignment set at version %" PRIu64 " reloaded", a->version);
		sweep(a);
		reconcile_all(a);
	}
	*out = a;
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct agent *a = h->data;
	void (*cb)(void *arg) = a->close_cb;
	void *arg = a->close_arg;

	if (--a->handles > 0)
		return;
	agent_free(a);
	if (cb != NULL)
		cb(arg);
}

void agent_close(struct agent *a, void (*cb)(void *arg), void *arg)
{
	struct pull_req *p, *pn;
	struct orphan *o, *on;

	PRE(!a->closing);
	a->closing = true;
	a->close_cb = cb;
	a->close_arg = arg;
	for (struct atask *t = a->tasks; t != NULL; t = t->next) {
		if (t->req != NULL)
			t->req->t = NULL;
		t->req = NULL;
		t->pull = NULL;
	}
	for (p = a->pulls; p != NULL; p = pn) {
		pn = p->next;
		p->a = NULL;
		p->prev = p->next = NULL;
		image_pull_cancel(p->pull);
	}
	a->pulls = NULL;
	for (o = a->orphans; o != NULL; o = on) {
		on = o->next;
		o->a = NULL;
		o->prev = o->next = NULL;
	}
	a->orphans = NULL;
	uv_close((uv_handle_t *)&a->timer, timer_closed);
	uv_close((uv_handle_t *)&a->resume, timer_closed);
	uv_close((uv_handle_t *)&a->drain, timer_closed);
}

uint64_t agent_version(const struct agent *a)
{
	return a->version;
}

static int check_set(const struct agent *a, const struct task_rec *const *tasks, size_t n,
		     struct shoal_err *err)
{
	if (n > AGENT_MAX_TASKS)
		return shoal_errf(err, SHOAL_EINVAL, "an assignment set of %zu tasks (at most %u)",
				  n, AGENT_MAX_TASKS);
	for (size_t i = 0; i < n; i++) {
		const char *id = tasks[i]->meta.id;
		if (id == NULL || id[0] == '\0' || strlen(id) > TASK_ID_MAX)
			return shoal_errf(err, SHOAL_EINVAL,
					  "task %zu of the assignment set has no id or one longer "
					  "than %u bytes",
					  i, TASK_ID_MAX);
		if (tasks[i]->node_id != NULL && strcmp(tasks[i]->node_id, a->node_id) != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "task %s is assigned to node %s, not to this node %s", id,
					  tasks[i]->node_id, a->node_id);
		for (size_t j = 0; j < i; j++)
			if (strcmp(tasks[j]->meta.id, id) == 0)
				return shoal_errf(err, SHOAL_EINVAL,
						  "task %s is twice in the assignment set", id);
	}
	return 0;
}

void agent_leave(struct agent *a)
{
	struct shoal_err err;
	struct atask *t;

	if (a->closing || (a->version == 0 && a->tasks == NULL))
		return;
	log_info("agent", "not in a swarm: removing the containers of its tasks");
	if (save(a, 0, NULL, 0, &err) != 0)
		log_warn("agent", "%s", err.msg);
	a->version = 0;
	for (t = a->tasks; t != NULL; t = t->next)
		t->in_set = false;
	sweep(a);
	reconcile_all(a);
}

int agent_assign(struct agent *a, uint64_t version, const struct task_rec *const *tasks, size_t n,
		 struct shoal_err *err)
{
	struct task_rec *copies;
	struct atask *t;
	size_t done = 0;
	int rv;

	if (a->closing)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the agent is closing");
	if (version <= a->version) {
		log_debug("agent", "assignment set %" PRIu64 " ignored: at %" PRIu64 " already",
			  version, a->version);
		return 0;
	}
	rv = check_set(a, tasks, n, err);
	if (rv != 0)
		return rv;
	/* Copy everything first, so that a failure changes nothing. */
	copies = calloc(n > 0 ? n : 1, sizeof(*copies));
	if (copies == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (; done < n; done++) {
		rv = schema_copy(&task_schema, &copies[done], tasks[done], err);
		if (rv != 0)
			goto out;
	}
	rv = save(a, version, tasks, n, err);
	if (rv != 0)
		goto out;
	a->version = version;
	log_debug("agent", "assignment set %" PRIu64 ": %zu tasks", version, n);
	for (t = a->tasks; t != NULL; t = t->next)
		t->in_set = false;
	for (size_t i = 0; i < n; i++) {
		t = task_find(a, copies[i].meta.id);
		if (t != NULL) {
			/* Known: the leader's record is newer (desired state),
			 * the agent's observed state stays. */
			task_rec_free(&t->rec);
			t->rec = copies[i];
			memset(&copies[i], 0, sizeof(copies[i]));
			t->in_set = true;
			continue;
		}
		t = task_new(a, &copies[i]);
		if (t == NULL) {
			/* Saved: the next set or a restart picks it up. */
			log_warn("agent", "task %s not started: out of memory", copies[i].meta.id);
		}
	}
	sweep(a);
	reconcile_all(a);
out:
	for (size_t i = 0; i < done; i++)
		task_rec_free(&copies[i]);
	free(copies);
	return rv;
}
