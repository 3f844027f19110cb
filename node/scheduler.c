/* The leader's scheduler: Docker's filter pipeline, then spread, for every waiting task in one
 * pass.
 *
 * Tasks that want a node are grouped by service and placement requirements
 * (constraints, reservations, max replicas). Per group the static filters
 * (ready, constraints) run once per node; the nodes that pass go into a
 * min-heap keyed (tasks of the service, tasks, id). Each task takes the top;
 * a top that fails a dynamic filter (resources, max replicas) is dropped for
 * the rest of the group, since within a group a node only gets fuller. So a
 * pass costs O(tasks log nodes + groups * nodes). */
#include "node/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/sorted.h"

/* --- constraints ---------------------------------------------------------- */

static const char *const ops[] = {"==", "!="};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Docker's key pattern: [a-z_][a-z0-9\-_.]+, case-insensitive. */
static bool key_valid(const char *k, size_t len)
{
	if (len < 2 || !(is_alnum(k[0]) || k[0] == '_') || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(is_alnum(k[i]) || k[i] == '-' || k[i] == '_' || k[i] == '.'))
			return false;
	return true;
}

/* Docker's value pattern: [a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+ (RE2's \s). */
static bool value_valid(const char *v, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(v[i]) && strchr(":-_ \t\n\f\r.*()?+[]\\^$|/", v[i]) == NULL)
			return false;
	return true;
}

/* Trim ASCII whitespace around [*@p, *@p + *@len). */
static void trim(const char **p, size_t *len)
{
	while (*len > 0 && is_space(**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*p)[*len - 1]))
		(*len)--;
}

static enum sched_key classify(const char *key, const char **label)
{
	static const struct {
		const char *name;
		enum sched_key kind;
	} exact[] = {
	    {"node.id", SCHED_KEY_NODE_ID},	    {"node.hostname", SCHED_KEY_HOSTNAME},
	    {"node.role", SCHED_KEY_ROLE},	    {"node.platform.os", SCHED_KEY_OS},
	    {"node.platform.arch", SCHED_KEY_ARCH},
	};

	*label = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
		if (strcasecmp(key, exact[i].name) == 0)
			return exact[i].kind;
	/* Label prefixes are case-sensitive in Docker. */
	if (strncmp(key, "node.labels.", 12) == 0) {
		*label = key + 12;
		return SCHED_KEY_NODE_LABEL;
	}
	if (strncmp(key, "engine.labels.", 14) == 0) {
		*label = key + 14;
		return SCHED_KEY_ENGINE_LABEL;
	}
	return SCHED_KEY_UNKNOWN;
}

void sched_constraint_free(struct sched_constraint *c)
{
	free(c->key);
	free(c->label);
	free(c->value);
	c->key = c->label = c->value = NULL;
}

int sched_constraint_parse(const char *expr, struct sched_constraint *out, struct shoal_err *err)
{
	const char *label;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		const char *at = strstr(expr, ops[i]);
		const char *k = expr, *v;
		size_t klen, vlen;

		if (at == NULL)
			continue;
		klen = (size_t)(at - expr);
		v = at + 2;
		vlen = strlen(v);
		trim(&k, &klen);
		trim(&v, &vlen);
		if (!key_valid(k, klen))
			return shoal_errf(err, SHOAL_EINVAL, "key '%.*s' is invalid", (int)klen, k);
		if (!value_valid(v, vlen))
			return shoal_errf(err, SHOAL_EINVAL, "value '%.*s' is invalid", (int)vlen,
					  v);
		out->equal = i == 0;
		out->key = strndup(k, klen);
		out->value = strndup(v, vlen);
		if (out->key == NULL || out->value == NULL)
			goto oom;
		out->kind = classify(out->key, &label);
		if (label != NULL && (out->label = strdup(label)) == NULL)
			goto oom;
		return 0;
	}
	return shoal_errf(err, SHOAL_EINVAL, "constraint expected one operator from ==, !=");
oom:
	sched_constraint_free(out);
	return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
}

int sched_constraints_check(const struct schema_strlist *l, struct shoal_err *err)
{
	for (size_t i = 0; i < l->n; i++) {
		struct sched_constraint c;
		int rv = sched_constraint_parse(l->items[i], &c, err);

		if (rv != 0)
			return rv;
		sched_constraint_free(&c);
	}
	return 0;
}

/* Go's architecture name for what uname reports, so "amd64" matches "x86_64". */
static const char *normalize_arch(const char *arch)
{
	static const struct {
		const char *from, *to;
	} names[] = {
	    {"x86_64", "amd64"}, {"x86-64", "amd64"}, {"aarch64", "arm64"}, {"armv8", "arm64"},
	    {"i386", "386"},	 {"i686", "386"},     {"x86", "386"},	    {"armhf", "arm"},
	    {"armel", "arm"},	 {"armv7l", "arm"},   {"armv6l", "arm"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(arch, names[i].from) == 0)
			return names[i].to;
	return arch;
}

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

bool sched_constraint_match(const struct sched_constraint *c, const struct node_rec *n)
{
	const char *what = "", *alt = NULL;
	bool match;

	switch (c->kind) {
	case SCHED_KEY_NODE_ID:
		what = n->meta.id;
		break;
	case SCHED_KEY_HOSTNAME:
		what = n->description.hostname;
		break;
	case SCHED_KEY_ROLE:
		what = schema_enum_name(node_role_names, (int)n->spec.role);
		break;
	case SCHED_KEY_OS:
		what = n->description.platform.os;
		break;
	case SCHED_KEY_ARCH:
		what = or_empty(n->description.platform.architecture);
		alt = normalize_arch(what);
		break;
	case SCHED_KEY_NODE_LABEL:
		what = schema_map_get(&n->spec.labels, c->label);
		break;
	case SCHED_KEY_ENGINE_LABEL:
		break;
	case SCHED_KEY_UNKNOWN:
		return false;
	}
	match = strcasecmp(c->value, or_empty(what)) == 0 ||
		(alt != NULL && strcasecmp(c->value, alt) == 0);
	return c->equal ? match : !match;
}

void sched_constraints_free(struct sched_constraints *c)
{
	for (size_t i = 0; i < c->n; i++)
		sched_constraint_free(&c->items[i]);
	free(c->items);
	c->items = NULL;
	c->n = 0;
}

int sched_constraints_parse(const struct schema_strlist *l, struct sched_constraints *out,
			    struct shoal_err *err)
{
	memset(out, 0, sizeof(*out));
	if (l->n == 0)
		return 0;
	out->items = calloc(l->n, sizeof(*out->items));
	if (out->items == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		int rv = sched_constraint_parse(l->items[i], &out->items[i], err);

		if (rv == SHOAL_ENOMEM) {
			sched_constraints_free(out);
			return rv;
		}
		if (rv != 0) {
			sched_constraints_free(out);
			out->invalid = true;
			return 0;
		}
		out->n++;
	}
	return 0;
}

bool sched_constraints_match(const struct sched_constraints *c, const struct node_rec *n)
{
	for (size_t i = 0; i < c->n; i++)
		if (!sched_constraint_match(&c->items[i], n))
			return false;
	return true;
}

/* --- the pass --------------------------------------------------------------- */

enum filter { F_READY, F_RESOURCES, F_CONSTRAINTS, F_MAX_REPLICAS, F_COUNT };

struct node_info {
	const struct node_rec *n;
	bool ready;
	int64_t cpu, mem; /* left after the reservations of its tasks */
	uint64_t active;  /* tasks meant to run there */
	uint64_t svc;	  /* of them, of the service being placed (valid if svc_gen matches) */
	uint64_t svc_gen;
};

/* An active task of a service on a node, for per-service counts. */
struct svc_entry {
	const char *service_id;
	size_t node;
};

struct pass {
	const struct store *s;
	const struct sched_env *env;
	struct command *out;
	struct sched_stats *stats;
	struct node_info *nodes;
	size_t n_nodes;
	struct svc_entry *idx; /* sorted by service id */
	size_t n_idx;
	uint64_t gen; /* of the current service */
	const char *gen_service;
};

/* What one group of tasks needs from a node. */
struct needs {
	const char *service_id;
	const struct svc_task_spec *spec;
	struct sched_constraints cons;
};

static const char *sid(const struct task_rec *t)
{
	return or_empty(t->service_id);
}

static bool wants_node(const struct task_rec *t)
{
	return t->desired_state <= TASK_RUNNING && t->status.state <= TASK_PENDING;
}

/* A task holding resources on its node (Docker's NodeInfo tasks). */
static bool on_node(const struct task_rec *t)
{
	return t->node_id != NULL && t->status.state >= TASK_ASSIGNED &&
	       t->status.state <= TASK_RUNNING;
}

static const char *node_key(const void *items, size_t i)
{
	return ((const struct node_info *)items)[i].n->meta.id;
}

static bool find_node(const struct pass *p, const char *id, size_t *at)
{
	bool found;

	*at = sorted_find(p->nodes, p->n_nodes, node_key, id, &found);
	return found;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;
	int c = strcmp(x->service_id, y->service_id);

	if (c != 0)
		return c;
	return x->node < y->node ? -1 : x->node > y->node;
}

/* Make node_info.svc count the tasks of @service_id (once per service). */
static void count_service(struct pass *p, const char *service_id)
{
	size_t lo = 0, hi = p->n_idx;

	if (p->gen_service != NULL && strcmp(p->gen_service, service_id) == 0)
		return;
	p->gen++;
	p->gen_service = service_id;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(p->idx[mid].service_id, service_id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < p->n_idx && strcmp(p->idx[lo].service_id, service_id) == 0; lo++) {
		struct node_info *ni = &p->nodes[p->idx[lo].node];

		if (ni->svc_gen != p->gen) {
			ni->svc_gen = p->gen;
			ni->svc = 0;
		}
		ni->svc++;
	}
}

static uint64_t svc_count(const struct pass *p, const struct node_info *ni)
{
	return ni->svc_gen == p->gen ? ni->svc : 0;
}

static bool reserves(const struct svc_task_spec *spec)
{
	return spec->resources.reservations.nano_cpus != 0 ||
	       spec->resources.reservations.memory_bytes != 0;
}

static bool fits(const struct svc_task_spec *spec, const struct node_info *ni)
{
	return spec->resources.reservations.nano_cpus <= ni->cpu &&
	       spec->resources.reservations.memory_bytes <= ni->mem;
}

/* The first filter of Docker's pipeline that @ni fails, or F_COUNT. */
static enum filter first_failure(const struct pass *p, const struct needs *nd,
				 const struct node_info *ni)
{
	uint64_t max = nd->spec->placement.max_replicas;

	if (!ni->ready)
		return F_READY;
	if (reserves(nd->spec) && !fits(nd->spec, ni))
		return F_RESOURCES;
	if (!sched_constraints_match(&nd->cons, ni->n))
		return F_CONSTRAINTS;
	if (max > 0 && svc_count(p, ni) >= max)
		return F_MAX_REPLICAS;
	return F_COUNT;
}

/* Docker's "no suitable node (...)" from per-filter rejection counts. */
static void explain(const size_t counts[F_COUNT], char *buf, size_t len)
{
	enum filter order[F_COUNT] = {F_READY, F_RESOURCES, F_CONSTRAINTS, F_MAX_REPLICAS};
	size_t used;
	bool any = false;

	/* Most rejections first; ties keep the pipeline's order (Go's insertion sort). */
	for (size_t i = 1; i < F_COUNT; i++)
		for (size_t j = i; j > 0 && counts[order[j]] > counts[order[j - 1]]; j--) {
			enum filter tmp = order[j];

			order[j] = order[j - 1];
			order[j - 1] = tmp;
		}
	used = (size_t)snprintf(buf, len, "no suitable node");
	for (size_t i = 0; i < F_COUNT && used < len; i++) {
		size_t c = counts[order[i]];
		const char *sep = any ? "; " : " (";
		const char *s = c == 1 ? "" : "s";
		int w = 0;

		if (c == 0)
			continue;
		switch (order[i]) {
		case F_READY:
			w = snprintf(buf + used, len - used,
				     "%s%zu node%s not available for new tasks", sep, c, s);
			break;
		case F_RESOURCES:
			w = snprintf(buf + used, len - used,
				     "%sinsufficient resources on %zu node%s", sep, c, s);
			break;
		case F_CONSTRAINTS:
			w = snprintf(buf + used, len - used,
				     "%sscheduling constraints not satisfied on %zu node%s", sep, c,
				     s);
			break;
		case F_MAX_REPLICAS:
			w = snprintf(buf + used, len - used, "%smax replicas per node limit exceed",
				     sep);
			break;
		case F_COUNT:
			break;
		}
		used += (size_t)w;
		any = true;
	}
	if (any && used < len)
		snprintf(buf + used, len - used, ")");
}

static bool ops_full(const struct pass *p)
{
	return p->out->n_ops >= COMMAND_MAX_OPS;
}

static int put(struct pass *p, const struct task_rec *t, struct task_rec *c, struct shoal_err *err)
{
	c->meta.updated_at = p->env->now_ns;
	return command_put(p->out, RECORD_TASKS, t->meta.version, c, err);
}

static int place(struct pass *p, const struct task_rec *t, const struct needs *nd,
		 struct node_info *ni, struct shoal_err *err)
{
	struct task_rec c = *t;
	char msg[] = "scheduler assigned task to node";

	c.node_id = ni->n->meta.id;
	c.status.state = TASK_ASSIGNED;
	c.status.timestamp = p->env->now_ns;
	c.status.message = msg;
	c.status.err = NULL;
	ni->cpu -= nd->spec->resources.reservations.nano_cpus;
	ni->mem -= nd->spec->resources.reservations.memory_bytes;
	ni->active++;
	if (ni->svc_gen != p->gen) {
		ni->svc_gen = p->gen;
		ni->svc = 0;
	}
	ni->svc++;
	p->stats->placed++;
	return put(p, t, &c, err);
}

static int leave_pending(struct pass *p, const struct task_rec *t, char *why, struct shoal_err *err)
{
	struct task_rec c = *t;
	char msg[] = "pending task scheduling";

	p->stats->pending++;
	if (t->status.state == TASK_PENDING && t->status.err != NULL &&
	    strcmp(t->status.err, why) == 0)
		return 0;
	if (t->status.state != TASK_PENDING) {
		c.status.state = TASK_PENDING;
		c.status.timestamp = p->env->now_ns;
		c.status.message = msg;
	}
	c.status.err = why;
	return put(p, t, &c, err);
}

static int needs_init(struct needs *nd, const struct task_rec *t, struct shoal_err *err)
{
	nd->service_id = sid(t);
	nd->spec = &t->spec;
	return sched_constraints_parse(&t->spec.placement.constraints, &nd->cons, err);
}

/* A task whose node was chosen before it reached the scheduler (global services). */
static int preassigned(struct pass *p, const struct task_rec *t, struct shoal_err *err)
{
	struct needs nd;
	size_t at, counts[F_COUNT] = {0};
	char why[256];
	enum filter f = F_READY;
	int rv;

	rv = needs_init(&nd, t, err);
	if (rv != 0)
		return rv;
	count_service(p, nd.service_id);
	if (find_node(p, t->node_id, &at)) {
		f = first_failure(p, &nd, &p->nodes[at]);
		if (f == F_COUNT) {
			rv = place(p, t, &nd, &p->nodes[at], err);
			sched_constraints_free(&nd.cons);
			return rv;
		}
	}
	counts[f] = 1;
	explain(counts, why, sizeof(why));
	sched_constraints_free(&nd.cons);
	return leave_pending(p, t, why, err);
}

/* --- the heap of candidate nodes for one group ---------------------------- */

struct heap {
	size_t *items; /* node indices */
	size_t n;
};

static bool node_less(const struct pass *p, size_t a, size_t b)
{
	const struct node_info *x = &p->nodes[a], *y = &p->nodes[b];
	uint64_t sx = svc_count(p, x), sy = svc_count(p, y);

	if (sx != sy)
		return sx < sy;
	if (x->active != y->active)
		return x->active < y->active;
	return a < b; /* nodes are in id order */
}

static void sift_down(const struct pass *p, struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i, tmp;

		if (l < h->n && node_less(p, h->items[l], h->items[m]))
			m = l;
		if (r < h->n && node_less(p, h->items[r], h->items[m]))
			m = r;
		if (m == i)
			return;
		tmp = h->items[i];
		h->items[i] = h->items[m];
		h->items[m] = tmp;
		i = m;
	}
}

static void heap_pop(const struct pass *p, struct heap *h)
{
	h->items[0] = h->items[--h->n];
	sift_down(p, h, 0);
}

/* Place tasks[0..n) (same service and requirements) or leave them pending. */
static int place_group(struct pass *p, const struct task_rec *const *tasks, size_t n,
		       struct heap *h, struct shoal_err *err)
{
	struct needs nd;
	uint64_t max;
	size_t i = 0;
	int rv;

	rv = needs_init(&nd, tasks[0], err);
	if (rv != 0)
		return rv;
	max = nd.spec->placement.max_replicas;
	count_service(p, nd.service_id);
	h->n = 0;
	for (size_t k = 0; k < p->n_nodes; k++)
		if (p->nodes[k].ready && sched_constraints_match(&nd.cons, p->nodes[k].n))
			h->items[h->n++] = k;
	for (size_t k = h->n / 2; k-- > 0;)
		sift_down(p, h, k);

	for (; i < n && !ops_full(p); i++) {
		struct node_info *top = NULL;

		while (h->n > 0) {
			struct node_info *ni = &p->nodes[h->items[0]];

			if ((!reserves(nd.spec) || fits(nd.spec, ni)) &&
			    (max == 0 || svc_count(p, ni) < max)) {
				top = ni;
				break;
			}
			heap_pop(p, h);
		}
		if (top == NULL)
			break;
		rv = place(p, tasks[i], &nd, top, err);
		if (rv != 0)
			goto out;
		sift_down(p, h, 0);
	}
	if (i < n) {
		size_t counts[F_COUNT] = {0};
		char why[256];

		for (size_t k = 0; k < p->n_nodes; k++) {
			enum filter f = first_failure(p, &nd, &p->nodes[k]);

			if (f != F_COUNT)
				counts[f]++;
		}
		explain(counts, why, sizeof(why));
		for (; i < n && !ops_full(p); i++) {
			rv = leave_pending(p, tasks[i], why, err);
			if (rv != 0)
				goto out;
		}
	}
out:
	sched_constraints_free(&nd.cons);
	return rv;
}

static bool strlist_equal(const struct schema_strlist *a, const struct schema_strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->items[i], b->items[i]) != 0)
			return false;
	return true;
}

static bool same_needs(const struct task_rec *a, const struct task_rec *b)
{
	return strcmp(sid(a), sid(b)) == 0 &&
	       a->spec.resources.reservations.nano_cpus ==
		   b->spec.resources.reservations.nano_cpus &&
	       a->spec.resources.reservations.memory_bytes ==
		   b->spec.resources.reservations.memory_bytes &&
	       a->spec.placement.max_replicas == b->spec.placement.max_replicas &&
	       strlist_equal(&a->spec.placement.constraints, &b->spec.placement.constraints);
}

static int cmp_task(const void *a, const void *b)
{
	const struct task_rec *x = *(const struct task_rec *const *)a;
	const struct task_rec *y = *(const struct task_rec *const *)b;
	int c = strcmp(sid(x), sid(y));

	if (c != 0)
		return c;
	if (x->spec_version != y->spec_version)
		return x->spec_version < y->spec_version ? -1 : 1;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	if (x->meta.created_at != y->meta.created_at)
		return x->meta.created_at < y->meta.created_at ? -1 : 1;
	return strcmp(x->meta.id, y->meta.id);
}

static int load_nodes(struct pass *p, struct shoal_err *err)
{
	size_t n_tasks = store_count(p->s, RECORD_TASKS);

	p->n_nodes = store_node_count(p->s);
	p->nodes = calloc(p->n_nodes > 0 ? p->n_nodes : 1, sizeof(*p->nodes));
	p->idx = malloc((n_tasks > 0 ? n_tasks : 1) * sizeof(*p->idx));
	if (p->nodes == NULL || p->idx == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_nodes; i++) {
		struct node_info *ni = &p->nodes[i];

		ni->n = store_node_at(p->s, i);
		ni->ready = ni->n->status.state == NODE_STATE_READY &&
			    ni->n->spec.availability == NODE_AVAILABILITY_ACTIVE &&
			    p->env->node_up(p->env->arg, ni->n->meta.id);
		ni->cpu = ni->n->description.resources.nano_cpus;
		ni->mem = ni->n->description.resources.memory_bytes;
	}
	for (size_t i = 0; i < n_tasks; i++) {
		const struct task_rec *t = store_at(p->s, RECORD_TASKS, i);
		size_t at;

		if (!on_node(t) || !find_node(p, t->node_id, &at))
			continue;
		p->nodes[at].cpu -= t->spec.resources.reservations.nano_cpus;
		p->nodes[at].mem -= t->spec.resources.reservations.memory_bytes;
		if (t->desired_state <= TASK_RUNNING) {
			p->nodes[at].active++;
			p->idx[p->n_idx++] = (struct svc_entry){sid(t), at};
		}
	}
	qsort(p->idx, p->n_idx, sizeof(*p->idx), cmp_entry);
	return 0;
}

int scheduler_run(const struct store *s, const struct sched_env *env, struct command *out,
		  struct sched_stats *stats, struct shoal_err *err)
{
	struct sched_stats local;
	struct pass p = {.s = s, .env = env, .out = out, .stats = stats != NULL ? stats : &local};
	size_t n_tasks = store_count(s, RECORD_TASKS), n_free = 0;
	const struct task_rec **free_tasks = NULL;
	struct heap h = {0};
	int rv;

	PRE(out->n_ops == 0);
	memset(p.stats, 0, sizeof(*p.stats));
	rv = load_nodes(&p, err);
	if (rv != 0)
		goto out;
	free_tasks = malloc((n_tasks > 0 ? n_tasks : 1) * sizeof(*free_tasks));
	h.items = malloc((p.n_nodes > 0 ? p.n_nodes : 1) * sizeof(*h.items));
	if (free_tasks == NULL || h.items == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}

	/* Preassigned tasks first, as Docker does: they hold their node. */
	for (size_t i = 0; i < n_tasks; i++) {
		const struct task_rec *t = store_at(s, RECORD_TASKS, i);

		if (!wants_node(t))
			continue;
		p.stats->considered++;
		if (t->node_id == NULL) {
			free_tasks[n_free++] = t;
			continue;
		}
		if (ops_full(&p))
			continue;
		rv = preassigned(&p, t, err);
		if (rv != 0)
			goto out;
	}

	qsort(free_tasks, n_free, sizeof(*free_tasks), cmp_task);
	for (size_t i = 0; i < n_free && !ops_full(&p);) {
		size_t j = i + 1;

		while (j < n_free && same_needs(free_tasks[i], free_tasks[j]))
			j++;
		rv = place_group(&p, free_tasks + i, j - i, &h, err);
		if (rv != 0)
			goto out;
		i = j;
	}
out:
	if (rv != 0)
		command_free(out);
	free(h.items);
	free(free_tasks);
	free(p.idx);
	free(p.nodes);
	return rv;
}
