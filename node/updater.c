/* The leader's updater: rolling updates, rollbacks and blue/green deployments, as one pure
 * function.
 *
 * Each service is taken on its own; what it gets depends on its strategy and
 * state (node/updater.h has the rules):
 *
 *   rolling     its live tasks are grouped by slot (by node for global
 *               services) and each group is WAITING, BUSY, DONE, FAILED or none
 *               of them; the update starts WAITING groups while fewer than
 *               Parallelism are BUSY or cooling down, and ends when none is
 *               WAITING or BUSY;
 *   blue/green  the other color's set is started beside the live one, traffic
 *               is switched to it once every slot runs, and the old set is
 *               removed after the grace period.
 *
 * A change of a service's status is the only write for that service in a
 * pass: the next pass sees it applied (StartedAt above all, which tells the
 * tasks this update made from older ones). */
#include "node/updater.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/scheduler.h"
#include "node/schema.h"

enum group_kind { GROUP_NONE, GROUP_WAITING, GROUP_BUSY, GROUP_DONE, GROUP_FAILED };

/* One task of the service at hand. */
struct ent {
	const struct task_rec *t;
	bool clean;
	bool live;
};

/* A slot's (a global node's) live tasks, oldest first, and what it is to the update. */
struct group {
	struct ent **g;
	size_t n;
	uint64_t slot;
	const char *node_id; /* global services: the node; else NULL */
	enum group_kind kind;
	bool cooling; /* DONE less than Delay ago */
	bool beyond;  /* a slot above Replicas (a scale-down left it): never refilled */
};

struct upd {
	const struct store *s;
	const struct orch_env *env;
	struct command *out;
	struct shoal_err *err;
	const struct task_rec **sorted; /* every task: service, slot, node, age */
	size_t n;
	struct ent *ents; /* the service at hand's tasks, in that order */
	struct ent **live;
	size_t n_ents, n_live;
	struct group *groups;
	size_t n_groups, cap_groups;
	msgpack_sbuffer tpl, buf; /* the service's TaskTemplate packed; a task's Spec */
	int64_t next_ns;
	bool full;
};

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static bool is(const char *s, const char *v)
{
	return s != NULL && strcmp(s, v) == 0;
}

static bool ended(enum task_state s)
{
	return s > TASK_RUNNING;
}

static bool runnable(const struct task_rec *t)
{
	return t->desired_state <= TASK_RUNNING && !ended(t->status.state);
}

static bool failed(const struct task_rec *t)
{
	return t->status.state == TASK_FAILED || t->status.state == TASK_REJECTED;
}

/* @a + @b, negative @b as 0, saturating. */
static int64_t after(int64_t a, int64_t b)
{
	if (b <= 0)
		return a;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Records handed to command_put are copied, never written: borrow const strings. */
static char *unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

static void wake_at(struct upd *u, int64_t t)
{
	if (t > u->env->now_ns && (u->next_ns == 0 || t < u->next_ns))
		u->next_ns = t;
}

const char *updater_task_color(const struct task_rec *t)
{
	return t->color != NULL ? t->color : "blue";
}

const char *updater_live_color(const struct service_rec *svc)
{
	return svc->deployment.live_color != NULL ? svc->deployment.live_color : "blue";
}

static const char *other_color(const char *c)
{
	return strcmp(c, "blue") == 0 ? "green" : "blue";
}

static int pack_spec(msgpack_sbuffer *sb, const struct svc_task_spec *spec, struct shoal_err *err)
{
	msgpack_packer pk;

	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (schema_pack(&svc_task_spec_schema, spec, &pk) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

static bool same(const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
	return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

bool updater_task_clean(const struct service_rec *svc, const struct task_rec *t)
{
	msgpack_sbuffer a, b;
	bool clean;

	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	clean = pack_spec(&a, &svc->spec.task_template, NULL) == 0 &&
		pack_spec(&b, &t->spec, NULL) == 0 && same(&a, &b);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	return clean;
}

static int cmp_task(const void *a, const void *b)
{
	const struct task_rec *x = *(const struct task_rec *const *)a;
	const struct task_rec *y = *(const struct task_rec *const *)b;
	int c = strcmp(or_empty(x->service_id), or_empty(y->service_id));

	if (c != 0)
		return c;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	c = strcmp(or_empty(x->node_id), or_empty(y->node_id));
	if (c != 0)
		return c;
	if (x->meta.created_at != y->meta.created_at)
		return x->meta.created_at < y->meta.created_at ? -1 : 1;
	return strcmp(x->meta.id, y->meta.id);
}

/* A node that can keep running tasks: known, up and not drained. */
static bool node_ok(const struct upd *u, const char *id)
{
	const struct node_rec *n = id != NULL ? store_node_get(u->s, id) : NULL;

	return n != NULL && n->spec.availability != NODE_AVAILABILITY_DRAIN &&
	       u->env->node_up(u->env->arg, id);
}

/* Room for one more write; else the pass ends here and the next one goes on. */
static bool room(struct upd *u)
{
	if (u->out->n_ops < COMMAND_MAX_OPS)
		return true;
	u->full = true;
	return false;
}

/* Write @t with desired state @desired. */
static int set_desired(struct upd *u, const struct task_rec *t, enum task_state desired)
{
	struct task_rec c = *t;

	if (t->desired_state == desired || !room(u))
		return 0;
	c.desired_state = desired;
	c.meta.updated_at = u->env->now_ns;
	return command_put(u->out, RECORD_TASKS, t->meta.version, &c, u->err);
}

static int new_task(struct upd *u, const struct service_rec *svc, uint64_t slot,
		    const char *node_id, const char *color)
{
	if (!room(u))
		return 0;
	return orchestrator_put_task(u->env, svc, slot, node_id, color, u->out, u->err);
}

/* Write @c, a changed copy of @svc: the only write for that service this pass. */
static int put_service(struct upd *u, const struct service_rec *svc, const struct service_rec *c)
{
	if (!room(u))
		return 0;
	return command_put(u->out, RECORD_SERVICES, svc->meta.version, c, u->err);
}

static void set_status(struct service_rec *c, const char *state, int64_t started_at,
		       int64_t completed_at, const char *message)
{
	c->update_status.state = unconst(state);
	c->update_status.started_at = started_at;
	c->update_status.completed_at = completed_at;
	c->update_status.message = unconst(message);
}

/* Spec and PreviousSpec trade places, as `service rollback` does. */
static void swap_specs(struct service_rec *c, const struct service_rec *svc, int64_t now)
{
	c->spec = svc->previous_spec;
	c->previous_spec = svc->spec;
	c->meta.updated_at = now;
}

/* Tasks of another color than the live one that still want to run are
 * stopped (left over from a blue/green deployment, or its failed set). */
static int stop_others(struct upd *u)
{
	for (size_t i = 0; i < u->n_ents; i++) {
		const struct ent *e = &u->ents[i];
		int rv;

		if (e->live || e->t->desired_state > TASK_RUNNING)
			continue;
		rv = set_desired(u, e->t, TASK_SHUTDOWN);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* Fill u->ents with @svc's tasks @ts[0..n): clean or dirty, live or not. */
static int load(struct upd *u, const struct service_rec *svc, const struct task_rec **ts, size_t n)
{
	const char *live = updater_live_color(svc);
	int rv = pack_spec(&u->tpl, &svc->spec.task_template, u->err);

	if (rv != 0)
		return rv;
	u->n_ents = 0;
	u->n_live = 0;
	for (size_t i = 0; i < n; i++) {
		struct ent *e = &u->ents[u->n_ents++];

		rv = pack_spec(&u->buf, &ts[i]->spec, u->err);
		if (rv != 0)
			return rv;
		e->t = ts[i];
		e->clean = same(&u->tpl, &u->buf);
		e->live = strcmp(updater_task_color(ts[i]), live) == 0;
		if (e->live)
			u->live[u->n_live++] = e;
	}
	return 0;
}

static int add_group(struct upd *u, struct ent **g, size_t n)
{
	if (u->n_groups == u->cap_groups) {
		size_t cap = u->cap_groups > 0 ? 2 * u->cap_groups : 16;
		struct group *p = realloc(u->groups, cap * sizeof(*p));

		if (p == NULL)
			return shoal_errf(u->err, SHOAL_ENOMEM, "out of memory");
		u->groups = p;
		u->cap_groups = cap;
	}
	u->groups[u->n_groups++] = (struct group){.g = g, .n = n, .slot = g[0]->t->slot};
	return 0;
}

/* Group the live tasks: their slots, or for a global service the
 * nodes that may run it (active, up, matching the constraints); tasks
 * elsewhere are the orchestrator's to stop. */
static int make_groups(struct upd *u, const struct service_rec *svc)
{
	bool global = svc->spec.mode == SVC_MODE_GLOBAL;
	struct sched_constraints cons;
	int rv = 0;

	u->n_groups = 0;
	if (global) {
		rv = sched_constraints_parse(&svc->spec.task_template.placement.constraints, &cons,
					     u->err);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < u->n_live;) {
		const struct task_rec *t = u->live[i]->t;
		size_t j = i + 1;

		while (j < u->n_live && u->live[j]->t->slot == t->slot &&
		       (!global ||
			strcmp(or_empty(u->live[j]->t->node_id), or_empty(t->node_id)) == 0))
			j++;
		if (global) {
			const struct node_rec *node = t->slot == 0 && t->node_id != NULL
							  ? store_node_get(u->s, t->node_id)
							  : NULL;

			if (node != NULL && node->spec.availability == NODE_AVAILABILITY_ACTIVE &&
			    u->env->node_up(u->env->arg, t->node_id) &&
			    sched_constraints_match(&cons, node)) {
				rv = add_group(u, u->live + i, j - i);
				if (rv != 0)
					break;
				u->groups[u->n_groups - 1].node_id = t->node_id;
			}
		} else if (t->slot >= 1) {
			/* A scale-down may leave a slot above Replicas (it drops
			 * dead slots first): updated like the others, but once
			 * stopped the orchestrator refills the lowest free slot. */
			rv = add_group(u, u->live + i, j - i);
			if (rv != 0)
				break;
			u->groups[u->n_groups - 1].beyond = t->slot > svc->spec.replicas;
		}
		i = j;
	}
	if (global)
		sched_constraints_free(&cons);
	return rv;
}

static bool any_dirty_runnable(const struct upd *u)
{
	for (size_t i = 0; i < u->n_groups; i++)
		for (size_t k = 0; k < u->groups[i].n; k++)
			if (!u->groups[i].g[k]->clean && runnable(u->groups[i].g[k]->t))
				return true;
	return false;
}

/* What group @gr is to an update that started at @started with @cfg. */
static void classify(struct upd *u, struct group *gr, const struct svc_update_config *cfg,
		     int64_t started)
{
	int64_t now = u->env->now_ns, done_at = 0;
	bool clean_run = false, pending = false, done = false, dirty_run = false;
	bool stopping = false, fail = false, refilling;
	const struct ent *newest = gr->g[0];

	for (size_t i = 0; i < gr->n; i++) {
		const struct ent *e = gr->g[i];
		const struct task_rec *t = e->t;
		enum task_state st = t->status.state;

		if (t->meta.created_at > newest->t->meta.created_at ||
		    (t->meta.created_at == newest->t->meta.created_at &&
		     strcmp(t->meta.id, newest->t->meta.id) > 0))
			newest = e;

		if (runnable(t) && e->clean) {
			int64_t at = after(t->status.timestamp, cfg->monitor);

			clean_run = true;
			if (st == TASK_RUNNING && at <= now) {
				done = true;
				if (t->meta.created_at >= started && at > done_at)
					done_at = at;
			} else {
				pending = true;
				if (st == TASK_RUNNING)
					wake_at(u, at);
			}
		} else if (runnable(t)) {
			dirty_run = true;
		} else if (!e->clean && t->desired_state == TASK_SHUTDOWN && !ended(st) &&
			   st >= TASK_ASSIGNED && node_ok(u, t->node_id)) {
			stopping = true;
		}
		if (e->clean && t->meta.created_at >= started && failed(t))
			fail = true;
	}
	/* Its dirty task stopped (or never reached a node) and nothing else wants
	 * to run: the orchestrator makes the new one in its next pass. */
	refilling =
	    !gr->beyond && !clean_run && !dirty_run && !newest->clean &&
	    newest->t->desired_state == TASK_SHUTDOWN &&
	    (newest->t->status.state == TASK_SHUTDOWN || newest->t->status.state < TASK_ASSIGNED);

	gr->cooling = false;
	/* stop-first waits for the dirty task to stop; start-first does not
	 * (a clean one runs already: the old one only drains and stops). */
	if (pending || (stopping && !clean_run) || refilling || (clean_run && dirty_run)) {
		gr->kind = GROUP_BUSY;
	} else if (done) {
		gr->kind = GROUP_DONE;
		if (done_at > 0 && now < after(done_at, cfg->delay)) {
			gr->cooling = true;
			wake_at(u, after(done_at, cfg->delay));
		}
	} else if (fail) {
		gr->kind = GROUP_FAILED;
	} else if (dirty_run) {
		gr->kind = GROUP_WAITING;
	} else {
		gr->kind = GROUP_NONE;
	}
}

/* Start updating group @gr: stop its dirty task, or with start-first (when
 * that task runs) add a clean one beside it. */
static int start(struct upd *u, const struct service_rec *svc, const struct group *gr,
		 bool start_first)
{
	bool running = false;
	int rv;

	for (size_t i = 0; i < gr->n; i++)
		running |= !gr->g[i]->clean && runnable(gr->g[i]->t) &&
			   gr->g[i]->t->status.state == TASK_RUNNING;
	if (start_first && running)
		return new_task(u, svc, gr->slot, gr->node_id, orchestrator_task_color(svc));
	for (size_t i = 0; i < gr->n; i++) {
		if (gr->g[i]->clean || !runnable(gr->g[i]->t))
			continue;
		rv = set_desired(u, gr->g[i]->t, TASK_SHUTDOWN);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* Failures past MaxFailureRatio: pause, roll back or go on, per FailureAction.
 * Sets *@wrote when it wrote the service. */
static int on_failure(struct upd *u, const struct service_rec *svc,
		      const struct svc_update_config *cfg, bool rollback, bool *wrote)
{
	const struct task_rec *first = NULL;
	size_t failures = 0;
	struct service_rec c = *svc;
	char msg[160];
	int64_t now = u->env->now_ns;

	*wrote = false;
	for (size_t i = 0; i < u->n_groups; i++)
		for (size_t k = 0; k < u->groups[i].n; k++) {
			const struct ent *e = u->groups[i].g[k];

			if (e->clean && e->t->meta.created_at >= svc->update_status.started_at &&
			    failed(e->t)) {
				failures++;
				if (first == NULL)
					first = e->t;
			}
		}
	if (failures == 0 ||
	    (u->n_groups > 0 && (double)failures / (double)u->n_groups <= cfg->max_failure_ratio))
		return 0;
	if (is(cfg->failure_action, "continue"))
		return 0;
	if (is(cfg->failure_action, "rollback") && !rollback && svc->has_previous_spec) {
		snprintf(msg, sizeof(msg),
			 "update rolled back due to failure or early termination of task %s",
			 first->meta.id);
		swap_specs(&c, svc, now);
		set_status(&c, "rollback_started", now, 0, msg);
	} else {
		snprintf(msg, sizeof(msg),
			 "%s paused due to failure or early termination of task %s",
			 rollback ? "rollback" : "update", first->meta.id);
		set_status(&c, rollback ? "rollback_paused" : "paused",
			   svc->update_status.started_at, 0, msg);
	}
	*wrote = true;
	return put_service(u, svc, &c);
}

static int rolling(struct upd *u, const struct service_rec *svc)
{
	const char *state = svc->update_status.state;
	bool rollback = is(state, "rollback_started"), wrote;
	const struct svc_update_config *cfg =
	    rollback ? &svc->spec.rollback_config : &svc->spec.update_config;
	struct service_rec c = *svc;
	int64_t now = u->env->now_ns;
	uint64_t in_flight = 0, budget;
	size_t waiting = 0, busy = 0;
	int rv = make_groups(u, svc);

	if (rv != 0)
		return rv;
	if (state == NULL || is(state, "completed") || is(state, "rollback_completed")) {
		/* Only a new spec starts an update (the API clears the status):
		 * a group that failed and kept its old task is not retried. */
		if (state != NULL || !any_dirty_runnable(u))
			return stop_others(u);
		set_status(&c, "updating", now, 0, "update in progress");
		return put_service(u, svc, &c);
	}
	if (!is(state, "updating") && !rollback)
		return stop_others(u); /* paused, or a state that is not ours */

	for (size_t i = 0; i < u->n_groups; i++) {
		struct group *gr = &u->groups[i];

		classify(u, gr, cfg, svc->update_status.started_at);
		waiting += gr->kind == GROUP_WAITING;
		busy += gr->kind == GROUP_BUSY;
		in_flight += gr->kind == GROUP_BUSY || gr->cooling;
	}
	rv = on_failure(u, svc, cfg, rollback, &wrote);
	if (rv != 0 || wrote)
		return rv;
	if (waiting == 0 && busy == 0) {
		set_status(&c, rollback ? "rollback_completed" : "completed",
			   svc->update_status.started_at, now,
			   rollback ? "rollback completed" : "update completed");
		return put_service(u, svc, &c);
	}
	rv = stop_others(u);
	if (rv != 0)
		return rv;
	if (cfg->parallelism == 0)
		budget = UINT64_MAX;
	else
		budget = cfg->parallelism > in_flight ? cfg->parallelism - in_flight : 0;
	for (size_t i = 0; i < u->n_groups && budget > 0; i++) {
		if (u->groups[i].kind != GROUP_WAITING)
			continue;
		rv = start(u, svc, &u->groups[i], is(cfg->order, "start-first"));
		if (rv != 0)
			return rv;
		budget--;
	}
	return 0;
}

/* Blue/green, "deploying" or "ready": the other color's set @o is started;
 * a failure in it ends the deployment, a complete set is promoted. */
static int deploying(struct upd *u, const struct service_rec *svc, const char *live, const char *o)
{
	struct service_rec c = *svc;
	int64_t now = u->env->now_ns, started = svc->update_status.started_at;
	uint64_t replicas = svc->spec.replicas, n_running = 0;
	size_t writes = u->out->n_ops, i = 0;
	char msg[512], status_msg[160];
	int rv = 0;

	for (; i < u->n_ents; i++) {
		const struct task_rec *t = u->ents[i].t;

		if (u->ents[i].live || !is(t->color, o) || t->meta.created_at < started ||
		    !failed(t))
			continue;
		snprintf(msg, sizeof(msg), "%s task %s failed: %s; %s keeps serving", o, t->meta.id,
			 t->status.err != NULL && t->status.err[0] != '\0' ? t->status.err
			 : t->status.message != NULL			   ? t->status.message
									   : "rejected",
			 live);
		snprintf(status_msg, sizeof(status_msg),
			 "update rolled back due to failure or early termination of task %s",
			 t->meta.id);
		if (svc->has_previous_spec)
			swap_specs(&c, svc, now);
		c.deployment.state = unconst("failed");
		c.deployment.message = msg;
		set_status(&c, "rollback_completed", started, now, status_msg);
		return put_service(u, svc, &c);
	}

	/* Per slot 1..Replicas (the tasks are sorted by slot), the most advanced
	 * clean task of color @o on a fine node is kept, or one is made; every
	 * other task not of the live color that still wants to run is stopped. */
	i = 0;
	for (uint64_t slot = 1; slot <= replicas; slot++) {
		const struct task_rec *keep = NULL;

		for (; i < u->n_ents && u->ents[i].t->slot <= slot; i++) {
			const struct ent *e = &u->ents[i];
			const struct task_rec *t = e->t;

			if (e->live || t->desired_state > TASK_RUNNING)
				continue;
			if (e->clean && is(t->color, o) && t->slot == slot && runnable(t) &&
			    (t->node_id == NULL || node_ok(u, t->node_id))) {
				if (keep != NULL && t->status.state < keep->status.state) {
					rv = set_desired(u, t, TASK_SHUTDOWN);
				} else {
					if (keep != NULL)
						rv = set_desired(u, keep, TASK_SHUTDOWN);
					keep = t;
				}
			} else {
				rv = set_desired(u, t, TASK_SHUTDOWN);
			}
			if (rv != 0)
				return rv;
		}
		if (keep == NULL)
			rv = new_task(u, svc, slot, NULL, o);
		else
			n_running += keep->status.state == TASK_RUNNING;
		if (rv != 0)
			return rv;
	}
	for (; i < u->n_ents; i++) {
		if (u->ents[i].live || u->ents[i].t->desired_state > TASK_RUNNING)
			continue;
		rv = set_desired(u, u->ents[i].t, TASK_SHUTDOWN);
		if (rv != 0)
			return rv;
	}
	if (u->out->n_ops != writes || u->full || n_running < replicas)
		return 0;
	if (is(svc->spec.bluegreen.promote, "manual")) {
		if (is(svc->deployment.state, "ready"))
			return 0;
		snprintf(msg, sizeof(msg), "%s is healthy: run `shoal service promote %s`", o,
			 or_empty(svc->spec.name));
		c.deployment.state = unconst("ready");
		c.deployment.message = msg;
		return put_service(u, svc, &c);
	}
	snprintf(msg, sizeof(msg), "traffic switched to %s", o);
	c.deployment.live_color = unconst(o);
	c.deployment.state = unconst("promoted");
	c.deployment.switched_at = now;
	c.deployment.message = msg;
	return put_service(u, svc, &c);
}

static int bluegreen(struct upd *u, const struct service_rec *svc)
{
	const char *live = updater_live_color(svc), *o = other_color(live);
	const char *state = svc->deployment.state;
	struct service_rec c = *svc;
	int64_t now = u->env->now_ns;
	char msg[64];
	int rv;

	if (state == NULL || is(state, "completed") || is(state, "rolled_back") ||
	    is(state, "failed")) {
		rv = make_groups(u, svc);
		if (rv != 0)
			return rv;
		/* Only a new spec starts a deployment (the API clears UpdateStatus). */
		if (svc->update_status.state != NULL || !any_dirty_runnable(u))
			return stop_others(u);
		snprintf(msg, sizeof(msg), "starting the %s set", o);
		c.deployment.state = unconst("deploying");
		c.deployment.message = msg;
		set_status(&c, "updating", now, 0, "update in progress");
		return put_service(u, svc, &c);
	}
	if (is(state, "deploying") || is(state, "ready"))
		return deploying(u, svc, live, o);
	if (is(state, "promoted")) {
		int64_t grace =
		    svc->spec.bluegreen.grace > 0 ? svc->spec.bluegreen.grace : SVC_BLUEGREEN_GRACE;
		int64_t due = after(svc->deployment.switched_at, grace);

		if (now < due) {
			wake_at(u, due);
			return 0;
		}
		snprintf(msg, sizeof(msg), "%s removed", o);
		c.deployment.state = unconst("completed");
		c.deployment.message = msg;
		set_status(&c, "completed", svc->update_status.started_at, now, "update completed");
		return put_service(u, svc, &c);
	}
	return 0; /* a state that is not ours */
}

static int service(struct upd *u, const struct service_rec *svc, const struct task_rec **ts,
		   size_t n)
{
	int rv = load(u, svc, ts, n);

	if (rv != 0)
		return rv;
	if (svc->spec.mode == SVC_MODE_REPLICATED && is(svc->spec.update_strategy, "blue-green"))
		return bluegreen(u, svc);
	return rolling(u, svc);
}

static int run(struct upd *u)
{
	size_t n_svcs = store_count(u->s, RECORD_SERVICES), k = 0;
	int rv;

	u->n = store_count(u->s, RECORD_TASKS);
	u->sorted = calloc(u->n > 0 ? u->n : 1, sizeof(*u->sorted));
	u->ents = calloc(u->n > 0 ? u->n : 1, sizeof(*u->ents));
	u->live = calloc(u->n > 0 ? u->n : 1, sizeof(*u->live));
	if (u->sorted == NULL || u->ents == NULL || u->live == NULL)
		return shoal_errf(u->err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < u->n; i++)
		u->sorted[i] = store_at(u->s, RECORD_TASKS, i);
	qsort(u->sorted, u->n, sizeof(*u->sorted), cmp_task);

	/* Services and their tasks, both in service id order. */
	for (size_t i = 0; i < n_svcs && !u->full; i++) {
		const struct service_rec *svc = store_at(u->s, RECORD_SERVICES, i);
		size_t j;

		while (k < u->n && strcmp(or_empty(u->sorted[k]->service_id), svc->meta.id) < 0)
			k++;
		for (j = k;
		     j < u->n && strcmp(or_empty(u->sorted[j]->service_id), svc->meta.id) == 0; j++)
			;
		rv = service(u, svc, u->sorted + k, j - k);
		if (rv != 0)
			return rv;
		k = j;
	}
	if (u->full)
		u->next_ns = u->env->now_ns;
	return 0;
}

int updater_run(const struct store *s, const struct orch_env *env, struct command *out,
		int64_t *next_ns, struct shoal_err *err)
{
	struct upd u = {.s = s, .env = env, .out = out, .err = err};
	int rv;

	PRE(out->n_ops == 0);
	msgpack_sbuffer_init(&u.tpl);
	msgpack_sbuffer_init(&u.buf);
	rv = run(&u);
	if (rv != 0)
		command_free(out);
	*next_ns = rv == 0 ? u.next_ns : 0;
	msgpack_sbuffer_destroy(&u.tpl);
	msgpack_sbuffer_destroy(&u.buf);
	free(u.groups);
	free(u.live);
	free(u.ents);
	free(u.sorted);
	return rv;
}
