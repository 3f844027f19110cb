/* The leader's orchestrator: services vs tasks, restarts and task history, as one pure function.
 *
 * Each service's tasks are taken slot by slot (node by node for global
 * services). A slot is in one of these states:
 *   RUNNING  a task desired running has not ended (the best one is kept);
 *   WAITING  its newest task ended and will be restarted once Delay passed;
 *   REFILL   it needs a new task now (restart due, or its node was lost);
 *   STOPPING nothing runs there but a task told to shut down is still stopping
 *            on a node that is fine: the slot is refilled once it stopped
 *            (an update's stop-first order);
 *   DEAD     its newest task ended after the service's last change and the
 *            restart policy said no: left alone until the service changes;
 *   EMPTY    nothing wants to run there.
 * Slots RUNNING, WAITING, REFILL, STOPPING and DEAD are occupied; a replicated
 * service drops DEAD slots, then the highest, down to Replicas, and fills the
 * lowest free slot numbers up to it. Scale-down sets desired state remove (as
 * swarmkit does), so a task is deleted once stopped and its slot is free.
 *
 * Only tasks of the service's live color are taken this way; the others
 * belong to the updater's blue/green deployment (node/updater.c) and are only
 * reaped here. */
#include "node/orchestrator.h"

#include <stdlib.h>
#include <string.h>

#include "node/records_svc.h"
#include "node/scheduler.h"
#include "node/updater.h"

enum slot_kind { SLOT_EMPTY, SLOT_RUNNING, SLOT_WAITING, SLOT_REFILL, SLOT_STOPPING, SLOT_DEAD };

/* One existing task and what this pass makes of it. */
struct ent {
	const struct task_rec *t;
	enum task_state desired; /* planned */
	bool del;
};

struct new_task {
	const struct service_rec *svc;
	uint64_t slot;
	char *node_id; /* borrowed from the node record; NULL for replicated */
};

/* One slot's (or global node's) tasks, oldest first, and what it needs. */
struct slot {
	uint64_t num;
	struct ent **g;
	size_t n;
	enum slot_kind kind;
	struct ent *keeper; /* RUNNING: the task kept */
	struct ent *fresh;  /* WAITING/REFILL: the task that ended, if any */
	bool created;
};

struct orch {
	const struct store *s;
	const struct orch_env *env;
	struct ent *ents; /* store (id) order */
	struct ent **sorted;
	struct ent **live, **other; /* one service's tasks of its live color, of others */
	size_t n;
	struct new_task *news;
	size_t n_news, cap_news;
	struct slot *slots;
	size_t n_slots, cap_slots;
	int64_t next_ns;
};

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static bool ended(enum task_state s)
{
	return s > TASK_RUNNING;
}

static bool runnable(const struct ent *e)
{
	return e->desired <= TASK_RUNNING && !ended(e->t->status.state);
}

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = *(struct ent *const *)a, *y = *(struct ent *const *)b;
	int c = strcmp(or_empty(x->t->service_id), or_empty(y->t->service_id));

	if (c != 0)
		return c;
	if (x->t->slot != y->t->slot)
		return x->t->slot < y->t->slot ? -1 : 1;
	c = strcmp(or_empty(x->t->node_id), or_empty(y->t->node_id));
	if (c != 0)
		return c;
	if (x->t->meta.created_at != y->t->meta.created_at)
		return x->t->meta.created_at < y->t->meta.created_at ? -1 : 1;
	return strcmp(x->t->meta.id, y->t->meta.id);
}

static void wake_at(struct orch *o, int64_t t)
{
	if (o->next_ns == 0 || t < o->next_ns)
		o->next_ns = t;
}

/* A node that can keep running tasks: known, up and not drained. */
static bool node_ok(const struct orch *o, const char *id)
{
	const struct node_rec *n = id != NULL ? store_node_get(o->s, id) : NULL;

	return n != NULL && n->spec.availability != NODE_AVAILABILITY_DRAIN &&
	       o->env->node_up(o->env->arg, id);
}

static bool is_cond(const struct task_rec *t, const char *c)
{
	const char *cond = t->spec.restart_policy.condition;

	if (cond == NULL || cond[0] == '\0')
		cond = "any";
	return strcmp(cond, c) == 0;
}

/* Docker's restart supervisor: condition, then MaxAttempts within Window for
 * the same spec version (the oldest task of that version is the original). */
static bool restart_allowed(const struct orch *o, const struct slot *sl, const struct ent *fresh)
{
	const struct task_rec *t = fresh->t;
	uint64_t max = t->spec.restart_policy.max_attempts, restarts = 0;
	int64_t window = t->spec.restart_policy.window;
	bool original = true;

	if (is_cond(t, "none"))
		return false;
	if (is_cond(t, "on-failure") && t->status.state == TASK_COMPLETE &&
	    t->status.container_status.exit_code == 0)
		return false;
	if (max == 0)
		return true;
	for (size_t i = 0; i < sl->n; i++) {
		const struct task_rec *x = sl->g[i]->t;

		if (x->spec_version != t->spec_version)
			continue;
		if (original) {
			original = false;
			continue;
		}
		if (window <= 0 || x->meta.created_at >= o->env->now_ns - window)
			restarts++;
	}
	return restarts < max;
}

/* A slot left empty on purpose: its newest task ended by itself after the
 * service last changed, and was not restarted. */
static bool dead(const struct service_rec *svc, const struct ent *last)
{
	enum task_state st = last->t->status.state;

	return last->desired == TASK_SHUTDOWN && st != TASK_SHUTDOWN && st != TASK_REMOVE &&
	       ended(st) && last->t->status.timestamp >= svc->meta.updated_at;
}

static bool newer(const struct ent *a, const struct ent *b)
{
	if (a->t->meta.created_at != b->t->meta.created_at)
		return a->t->meta.created_at > b->t->meta.created_at;
	return strcmp(a->t->meta.id, b->t->meta.id) > 0;
}

/* A task of @sl told to shut down is still stopping on a node that is fine. */
static bool stopping(const struct orch *o, const struct slot *sl)
{
	for (size_t i = 0; i < sl->n; i++) {
		const struct ent *e = sl->g[i];
		enum task_state st = e->t->status.state;

		if (e->desired == TASK_SHUTDOWN && !ended(st) && st >= TASK_ASSIGNED &&
		    node_ok(o, e->t->node_id))
			return true;
	}
	return false;
}

/* Decide what slot @sl needs. @can_run: its node may keep tasks (always for
 * replicated, whose lost nodes are checked per task); @can_create: it may get
 * a new one; @replicated: a task on a lost node is replaced. */
static void tend(struct orch *o, const struct service_rec *svc, struct slot *sl, bool can_run,
		 bool can_create, bool replicated)
{
	bool lost = false;

	sl->kind = SLOT_EMPTY;
	for (size_t i = 0; i < sl->n; i++) {
		struct ent *e = sl->g[i];

		if (!runnable(e))
			continue;
		if (!can_run) {
			e->desired = TASK_SHUTDOWN;
		} else if (replicated && e->t->node_id != NULL && !node_ok(o, e->t->node_id)) {
			e->desired = TASK_SHUTDOWN;
			lost = true;
		}
	}
	/* Keep the most advanced running task, the newest among equals. A newer
	 * clean one still starting beside a running dirty keeper is spared (an
	 * update's start-first order): once it runs too, it is kept and the old
	 * one goes. A dirty one is not (a rollback made it so). */
	for (size_t i = 0; i < sl->n; i++) {
		struct ent *e = sl->g[i], *k = sl->keeper;

		if (runnable(e) && (k == NULL || e->t->status.state > k->t->status.state ||
				    (e->t->status.state == k->t->status.state && newer(e, k))))
			sl->keeper = e;
	}
	for (size_t i = 0; i < sl->n; i++) {
		struct ent *e = sl->g[i], *k = sl->keeper;

		if (!runnable(e) || e == k)
			continue;
		if (k->t->status.state == TASK_RUNNING && e->t->status.state < TASK_RUNNING &&
		    newer(e, k) && updater_task_clean(svc, e->t) && !updater_task_clean(svc, k->t))
			continue;
		e->desired = TASK_SHUTDOWN;
	}
	for (size_t i = 0; i < sl->n; i++) {
		struct ent *e = sl->g[i];

		if (e->desired > TASK_RUNNING || !ended(e->t->status.state))
			continue;
		if (sl->fresh != NULL)
			sl->fresh->desired = TASK_SHUTDOWN;
		sl->fresh = e;
	}

	if (sl->keeper != NULL) {
		sl->kind = SLOT_RUNNING;
	} else if (stopping(o, sl)) {
		sl->kind = SLOT_STOPPING; /* refilled once that task stopped */
	} else if (lost) {
		sl->kind = SLOT_REFILL;
	} else if (sl->fresh != NULL) {
		if (!can_create) {
			sl->kind = SLOT_EMPTY;
		} else if (restart_allowed(o, sl, sl->fresh)) {
			int64_t delay = sl->fresh->t->spec.restart_policy.delay;
			int64_t due = sl->fresh->t->status.timestamp + (delay > 0 ? delay : 0);

			if (o->env->now_ns >= due) {
				sl->kind = SLOT_REFILL;
			} else {
				sl->kind = SLOT_WAITING;
				wake_at(o, due);
				return; /* the ended task stays desired running until then */
			}
		} else {
			sl->fresh->desired = TASK_SHUTDOWN;
			sl->kind = SLOT_DEAD;
			return;
		}
	} else if (sl->n > 0 && dead(svc, sl->g[sl->n - 1])) {
		sl->kind = SLOT_DEAD;
	}
	if (sl->fresh != NULL)
		sl->fresh->desired = TASK_SHUTDOWN;
}

static int add_new(struct orch *o, const struct service_rec *svc, uint64_t slot, char *node_id,
		   struct shoal_err *err)
{
	if (o->n_news == o->cap_news) {
		size_t cap = o->cap_news > 0 ? 2 * o->cap_news : 16;
		struct new_task *p = realloc(o->news, cap * sizeof(*p));

		if (p == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		o->news = p;
		o->cap_news = cap;
	}
	o->news[o->n_news++] = (struct new_task){svc, slot, node_id};
	return 0;
}

/* Split @g[0..n) (one service's tasks, sorted) into slots: by slot number for
 * replicated services, by node for global ones. */
static int split(struct orch *o, struct ent **g, size_t n, bool by_node, struct shoal_err *err)
{
	o->n_slots = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && g[j]->t->slot == g[i]->t->slot &&
		       (!by_node ||
			strcmp(or_empty(g[j]->t->node_id), or_empty(g[i]->t->node_id)) == 0))
			j++;
		if (o->n_slots == o->cap_slots) {
			size_t cap = o->cap_slots > 0 ? 2 * o->cap_slots : 16;
			struct slot *p = realloc(o->slots, cap * sizeof(*p));

			if (p == NULL)
				return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			o->slots = p;
			o->cap_slots = cap;
		}
		o->slots[o->n_slots++] =
		    (struct slot){.num = g[i]->t->slot, .g = g + i, .n = j - i};
		i = j;
	}
	return 0;
}

/* Docker's task reaper for one slot: keep at most @keep tasks, deleting the
 * oldest that ended (or were stopped before reaching a node). */
static void reap(struct slot *sl, int64_t keep)
{
	size_t count = sl->created ? 1 : 0;

	if (keep < 0)
		return;
	for (size_t i = 0; i < sl->n; i++)
		count += !sl->g[i]->del;
	for (size_t i = 0; i < sl->n && count > (uint64_t)keep; i++) {
		struct ent *e = sl->g[i];
		enum task_state st = e->t->status.state;

		if (e->del || e->desired <= TASK_RUNNING || (!ended(st) && st >= TASK_ASSIGNED))
			continue;
		e->del = true;
		count--;
	}
}

static int64_t history_keep(const struct orch *o, const struct service_rec *svc)
{
	uint64_t max = svc->spec.task_template.restart_policy.max_attempts;

	if (max > 0 && max < (uint64_t)INT64_MAX)
		return (int64_t)max + 1;
	return o->env->history_limit;
}

static bool occupied(enum slot_kind k)
{
	return k != SLOT_EMPTY;
}

static int replicated(struct orch *o, const struct service_rec *svc, struct ent **g, size_t n,
		      struct shoal_err *err)
{
	uint64_t want = svc->spec.replicas, have = 0, next = 1;
	int rv = split(o, g, n, false, err);

	if (rv != 0)
		return rv;
	for (size_t i = 0; i < o->n_slots; i++) {
		struct slot *sl = &o->slots[i];

		tend(o, svc, sl, true, sl->num > 0, true);
		if (sl->num == 0) {
			/* Not a slot: nothing may run there. */
			if (sl->keeper != NULL)
				sl->keeper->desired = TASK_REMOVE;
			sl->kind = SLOT_EMPTY;
		}
		have += occupied(sl->kind);
	}
	/* Too many: drop dead slots first, then the highest. */
	for (int pass = 0; pass < 2 && have > want; pass++)
		for (size_t i = o->n_slots; i-- > 0 && have > want;) {
			struct slot *sl = &o->slots[i];

			if (!occupied(sl->kind) || (pass == 0) != (sl->kind == SLOT_DEAD))
				continue;
			/* The whole slot goes, its history too, as swarmkit does. */
			for (size_t e = 0; e < sl->n; e++)
				sl->g[e]->desired = TASK_REMOVE;
			sl->kind = SLOT_EMPTY;
			have--;
		}
	for (size_t i = 0; i < o->n_slots; i++) {
		struct slot *sl = &o->slots[i];

		if (sl->kind != SLOT_REFILL)
			continue;
		rv = add_new(o, svc, sl->num, NULL, err);
		if (rv != 0)
			return rv;
		sl->created = true;
	}
	/* Too few: the lowest free slot numbers. */
	for (size_t i = 0; have < want; next++) {
		while (i < o->n_slots && o->slots[i].num < next)
			i++;
		if (i < o->n_slots && o->slots[i].num == next) {
			if (occupied(o->slots[i].kind))
				continue;
			o->slots[i].created = true;
		}
		rv = add_new(o, svc, next, NULL, err);
		if (rv != 0)
			return rv;
		have++;
	}
	for (size_t i = 0; i < o->n_slots; i++)
		reap(&o->slots[i], history_keep(o, svc));
	return 0;
}

static int global(struct orch *o, const struct service_rec *svc, struct ent **g, size_t n,
		  struct shoal_err *err)
{
	struct sched_constraints cons;
	size_t n_nodes = store_node_count(o->s), k = 0;
	int rv;

	rv = sched_constraints_parse(&svc->spec.task_template.placement.constraints, &cons, err);
	if (rv != 0)
		return rv;
	rv = split(o, g, n, true, err);
	if (rv != 0)
		goto out;
	/* Walk nodes and node groups together, both in id order. */
	for (size_t i = 0; i < n_nodes || k < o->n_slots;) {
		const struct node_rec *node = i < n_nodes ? store_node_at(o->s, i) : NULL;
		struct slot none = {0}, *sl = &none;
		int c;
		bool keep = false, create = false;

		if (k < o->n_slots && o->slots[k].num != 0) {
			/* A global task with a slot number is not ours to keep. */
			tend(o, svc, &o->slots[k++], false, false, false);
			continue;
		}
		if (k >= o->n_slots)
			c = -1;
		else if (node == NULL)
			c = 1;
		else
			c = strcmp(node->meta.id, or_empty(o->slots[k].g[0]->t->node_id));
		if (c >= 0)
			sl = &o->slots[k++];
		if (c <= 0)
			i++;
		if (c <= 0) {
			keep = node->spec.availability != NODE_AVAILABILITY_DRAIN &&
			       o->env->node_up(o->env->arg, node->meta.id) &&
			       sched_constraints_match(&cons, node);
			create = keep && node->spec.availability == NODE_AVAILABILITY_ACTIVE;
		}
		tend(o, svc, sl, keep, create, false);
		if (create && (sl->kind == SLOT_REFILL || sl->kind == SLOT_EMPTY)) {
			rv = add_new(o, svc, 0, node->meta.id, err);
			if (rv != 0)
				goto out;
			sl->created = true;
		}
		if (sl != &none)
			reap(sl, history_keep(o, svc));
	}
out:
	sched_constraints_free(&cons);
	return rv;
}

/* One service's tasks @g[0..n): those of its live color are kept, the others
 * (a blue/green deployment's, the updater's) only have their history reaped. */
static int service(struct orch *o, const struct service_rec *svc, struct ent **g, size_t n,
		   struct shoal_err *err)
{
	const char *live = updater_live_color(svc);
	size_t n_live = 0, n_other = 0;
	bool by_node = svc->spec.mode == SVC_MODE_GLOBAL;
	int rv;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(updater_task_color(g[i]->t), live) == 0)
			o->live[n_live++] = g[i];
		else
			o->other[n_other++] = g[i];
	}
	if (by_node)
		rv = global(o, svc, o->live, n_live, err);
	else
		rv = replicated(o, svc, o->live, n_live, err);
	if (rv != 0)
		return rv;
	rv = split(o, o->other, n_other, by_node, err);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < o->n_slots; i++)
		reap(&o->slots[i], history_keep(o, svc));
	return 0;
}

/* Tasks desired remove go once nothing runs them any more. */
static void remove_gone(struct orch *o)
{
	for (size_t i = 0; i < o->n; i++) {
		struct ent *e = &o->ents[i];
		const struct task_rec *t = e->t;

		if (e->desired != TASK_REMOVE || e->del)
			continue;
		if (ended(t->status.state) || t->status.state < TASK_ASSIGNED ||
		    t->node_id == NULL || store_node_get(o->s, t->node_id) == NULL ||
		    !o->env->node_up(o->env->arg, t->node_id))
			e->del = true;
	}
}

const char *orchestrator_task_color(const struct service_rec *svc)
{
	const char *strategy = svc->spec.update_strategy;

	if (svc->deployment.live_color != NULL ||
	    (strategy != NULL && strcmp(strategy, "blue-green") == 0))
		return updater_live_color(svc);
	return NULL;
}

/* Records handed to command_put are copied, never written: borrow const strings. */
static char *unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

int orchestrator_put_task(const struct orch_env *env, const struct service_rec *svc, uint64_t slot,
			  const char *node_id, const char *color, struct command *out,
			  struct shoal_err *err)
{
	char id[ORCH_ID_LEN + 1] = {0};
	char msg[] = "created";
	struct task_rec t;

	env->new_id(env->arg, id);
	if (!command_id_valid(id))
		return shoal_errf(err, SHOAL_EINVAL, "the task id generator gave '%s', not an id",
				  id);
	memset(&t, 0, sizeof(t));
	t.meta.id = id;
	t.meta.created_at = env->now_ns;
	t.meta.updated_at = env->now_ns;
	t.spec = svc->spec.task_template;
	t.service_id = svc->meta.id;
	t.slot = slot;
	t.node_id = unconst(node_id);
	t.color = unconst(color);
	t.status.timestamp = env->now_ns;
	t.status.state = TASK_NEW;
	t.status.message = msg;
	t.desired_state = TASK_RUNNING;
	t.spec_version = svc->meta.version;
	/* The agent names containers "<service>.<slot>.<task id>" from it. */
	struct schema_kv name = {"com.docker.swarm.service.name", svc->spec.name};
	if (svc->spec.name != NULL) {
		t.labels.items = &name;
		t.labels.n = 1;
	}
	return command_put(out, RECORD_TASKS, COMMAND_EXPECT_NEW, &t, err);
}

/* New tasks first: if the command fills up, an ended task is never stopped
 * without its replacement, and the next run finishes the rest. */
static int emit(struct orch *o, struct command *out, struct shoal_err *err)
{
	int rv;

	for (size_t i = 0; i < o->n_news; i++) {
		if (out->n_ops >= COMMAND_MAX_OPS)
			goto full;
		rv = orchestrator_put_task(o->env, o->news[i].svc, o->news[i].slot,
					   o->news[i].node_id,
					   orchestrator_task_color(o->news[i].svc), out, err);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < o->n; i++) {
		const struct ent *e = &o->ents[i];

		if (!e->del && e->desired == e->t->desired_state)
			continue;
		if (out->n_ops >= COMMAND_MAX_OPS)
			goto full;
		if (e->del) {
			rv = command_delete(out, RECORD_TASKS, e->t->meta.version, e->t->meta.id,
					    err);
		} else {
			struct task_rec c = *e->t;

			c.desired_state = e->desired;
			c.meta.updated_at = o->env->now_ns;
			rv = command_put(out, RECORD_TASKS, e->t->meta.version, &c, err);
		}
		if (rv != 0)
			return rv;
	}
	return 0;
full:
	o->next_ns = o->env->now_ns;
	return 0;
}

static int run(struct orch *o, struct command *out, struct shoal_err *err)
{
	size_t n_svcs = store_count(o->s, RECORD_SERVICES), k = 0;
	int rv;

	o->n = store_count(o->s, RECORD_TASKS);
	o->ents = calloc(o->n > 0 ? o->n : 1, sizeof(*o->ents));
	o->sorted = calloc(o->n > 0 ? o->n : 1, sizeof(*o->sorted));
	o->live = calloc(o->n > 0 ? o->n : 1, sizeof(*o->live));
	o->other = calloc(o->n > 0 ? o->n : 1, sizeof(*o->other));
	if (o->ents == NULL || o->sorted == NULL || o->live == NULL || o->other == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < o->n; i++) {
		o->ents[i].t = store_at(o->s, RECORD_TASKS, i);
		o->ents[i].desired = o->ents[i].t->desired_state;
		o->sorted[i] = &o->ents[i];
	}
	qsort(o->sorted, o->n, sizeof(*o->sorted), cmp_ent);

	/* Services and task groups, both in service id order. */
	for (size_t i = 0; i < n_svcs || k < o->n;) {
		const struct service_rec *svc =
		    i < n_svcs ? store_at(o->s, RECORD_SERVICES, i) : NULL;
		const char *task_svc = k < o->n ? or_empty(o->sorted[k]->t->service_id) : NULL;
		int c = task_svc == NULL ? -1 : svc == NULL ? 1 : strcmp(svc->meta.id, task_svc);
		size_t j = k;

		if (c >= 0)
			while (j < o->n &&
			       strcmp(or_empty(o->sorted[j]->t->service_id), task_svc) == 0)
				j++;
		if (c > 0) {
			/* The service is gone: its tasks go too. */
			for (; k < j; k++)
				if (o->sorted[k]->desired != TASK_REMOVE)
					o->sorted[k]->desired = TASK_REMOVE;
			continue;
		}
		rv = service(o, svc, o->sorted + k, j - k, err);
		if (rv != 0)
			return rv;
		k = j;
		i++;
	}
	remove_gone(o);
	return emit(o, out, err);
}

int orchestrator_run(const struct store *s, const struct orch_env *env, struct command *out,
		     int64_t *next_ns, struct shoal_err *err)
{
	struct orch o = {.s = s, .env = env};
	int rv;

	PRE(out->n_ops == 0);
	rv = run(&o, out, err);
	if (rv != 0)
		command_free(out);
	*next_ns = rv == 0 ? o.next_ns : 0;
	free(o.slots);
	free(o.news);
	free(o.other);
	free(o.live);
	free(o.sorted);
	free(o.ents);
	return rv;
}
