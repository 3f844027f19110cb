/* The services layer's wiring: the leader's loops, assignment sets through gossip and RPC, status
 * reports. */
#include "node/dispatch.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "node/command.h"
#include "node/mesh_table.h"
#include "node/node_mesh.h"
#include "node/orchestrator.h"
#include "node/records_svc.h"
#include "node/scheduler.h"
#include "node/store.h"
#include "node/updater.h"

#define NUDGE_PREFIX	"a."
#define CALL_TIMEOUT_MS 5000
#define MAX_NODES_SEEN	4096

/* A node's set as last nudged: its fingerprint, and the version given. */
struct node_version {
	char id[ID_LEN + 1];
	uint64_t fp;
	uint64_t version;
};

struct dispatch {
	uv_loop_t *loop;
	struct swarm *swarm;
	struct agent *agent;
	struct task_logs *logs;
	struct node_mesh *mesh;
	bool mesh_applied; /* a swarm's table was applied: undo it on leaving */
	uv_timer_t tick;
	bool closing;
	int pending; /* proposals and calls in flight, and the timer until closed */
	void (*close_cb)(void *arg);
	void *close_arg;

	/* Leader. */
	const struct store *store_seen; /* the store the indexes below are of */
	uint64_t reconciled_index;	/* the store's index when both loops found nothing */
	uint64_t liveness;		/* which nodes gossip says are up, hashed */
	int64_t next_ns;		/* a restart delay ends: run again then */
	bool proposing;
	bool was_leader;
	bool leader_ready; /* the barrier of this term applied: the store is complete */
	bool barrier_pending;
	struct node_version *versions;
	size_t n_versions;
	uint64_t nudged_index;

	/* This node's agent. */
	uint64_t wanted_version;	 /* the newest nudge for us */
	uint64_t fetched_version;	 /* the newest set a manager answered */
	uint64_t applied_fp;		 /* fingerprint of the set last handed to the agent */
	uint64_t local_index;		 /* the store index assign_local() last looked at */
	uint64_t mesh_fp, mesh_fp_index; /* mesh_table_fp() of the store at that index */
	uint64_t last_poll_ms;
	bool fetching;
};

/* ---- helpers ---- */

static void hold(struct dispatch *d)
{
	d->pending++;
}

static void maybe_free(struct dispatch *d)
{
	if (!d->closing || d->pending > 0)
		return;
	free(d->versions);
	if (d->close_cb != NULL)
		d->close_cb(d->close_arg);
	free(d);
}

static void release(struct dispatch *d)
{
	d->pending--;
	maybe_free(d);
}

static bool node_up(void *arg, const char *node_id)
{
	struct dispatch *d = arg;
	const struct store *st = swarm_store(d->swarm);
	const struct node_rec *n = st != NULL ? store_node_get(st, node_id) : NULL;

	/* swarm_node_state gives gossip's view (Ready/Down) of any member. */
	return n != NULL && swarm_node_state(d->swarm, n) == NODE_STATE_READY;
}

static void new_id(void *arg, char out[ID_LEN + 1])
{
	(void)arg;
	id_new(out);
}

/* ---- the leader's loops ---- */

#define RETRY_NS (1000LL * 1000000) /* after a failed proposal */

static void tick(uv_timer_t *t);

static void proposed(void *arg, int status, const struct shoal_err *err)
{
	struct dispatch *d = arg;

	d->proposing = false;
	if (status == 0 && !d->closing) {
		/* Applied: the next pass (the scheduler after the orchestrator,
		 * this node's own set) need not wait for the tick. */
		uv_timer_start(&d->tick, tick, 0, DISPATCH_TICK_MS);
	}
	if (status != 0 && !d->closing) {
		/* A conflict (a write raced ours) or no leader: try again soon,
		 * not every tick. */
		log_debug("dispatch", "reconcile proposal: %s", err != NULL ? err->msg : "failed");
		d->next_ns = clock_now_ns() + RETRY_NS;
		d->reconciled_index = 0;
	}
	release(d);
}

/* 1: proposed; 0: nothing to propose; -1: it failed (retry later). */
static int propose(struct dispatch *d, struct command *cmd)
{
	struct shoal_err err;

	if (cmd->n_ops == 0)
		return 0;
	if (swarm_propose(d->swarm, cmd, proposed, d, &err) != 0) {
		log_debug("dispatch", "reconcile proposal: %s", err.msg);
		d->next_ns = clock_now_ns() + RETRY_NS;
		return -1;
	}
	hold(d);
	d->proposing = true;
	return 1;
}

/* FNV-1a over the ids of the nodes gossip says are up. */
static uint64_t liveness(struct dispatch *d, const struct store *st)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < store_count(st, RECORD_NODES); i++) {
		const struct node_rec *n = store_at(st, RECORD_NODES, i);

		if (swarm_node_state(d->swarm, n) != NODE_STATE_READY)
			continue;
		for (const char *p = n->meta.id; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static void reconcile(struct dispatch *d, const struct store *st)
{
	struct orch_env oenv;
	struct sched_env senv;
	struct sched_stats stats;
	const struct cluster_rec *cl = store_cluster(st);
	struct command cmd;
	struct shoal_err err;
	int64_t now = clock_now_ns(), next = 0;
	uint64_t index = store_last_index(st);
	int rv;

	uint64_t live = liveness(d, st);

	if (d->proposing)
		return;
	/* Run when the store moved, a restart delay ended, or a node came up or
	 * went down (gossip changes no record). */
	if (index == d->reconciled_index && live == d->liveness &&
	    (d->next_ns == 0 || now < d->next_ns))
		return;
	d->liveness = live;
	command_init(&cmd);
	rv = mesh_subnets_run(st, &cmd, &err);
	if (rv < 0) {
		log_warn("dispatch", "subnets: %s", err.msg);
	} else if (rv > 0 && cmd.n_ops == 0) {
		log_warn("dispatch", "%d node(s) without a container subnet: all %u are taken", rv,
			 MESH_POOL_MAX);
	}
	rv = propose(d, &cmd);
	command_free(&cmd);
	if (rv != 0)
		return;
	memset(&oenv, 0, sizeof(oenv));
	oenv.now_ns = now;
	oenv.node_up = node_up;
	oenv.new_id = new_id;
	oenv.arg = d;
	oenv.history_limit = cl != NULL ? cl->spec.orchestration.task_history_retention_limit : 5;
	command_init(&cmd);
	if (updater_run(st, &oenv, &cmd, &next, &err) != 0) {
		log_warn("dispatch", "updater: %s", err.msg);
		command_free(&cmd);
		return;
	}
	d->next_ns = next;
	rv = propose(d, &cmd);
	command_free(&cmd);
	if (rv != 0)
		return; /* proposed, or failed: the orchestrator waits for the next pass */
	command_init(&cmd);
	if (orchestrator_run(st, &oenv, &cmd, &next, &err) != 0) {
		log_warn("dispatch", "orchestrator: %s", err.msg);
		command_free(&cmd);
		return;
	}
	if (next != 0 && (d->next_ns == 0 || next < d->next_ns))
		d->next_ns = next;
	rv = propose(d, &cmd);
	command_free(&cmd);
	if (rv != 0)
		return; /* proposed, or failed: the scheduler waits for the next pass */
	memset(&senv, 0, sizeof(senv));
	senv.now_ns = now;
	senv.node_up = node_up;
	senv.arg = d;
	command_init(&cmd);
	if (scheduler_run(st, &senv, &cmd, &stats, &err) != 0) {
		log_warn("dispatch", "scheduler: %s", err.msg);
		command_free(&cmd);
		return;
	}
	if (propose(d, &cmd) == 0)
		d->reconciled_index = index; /* nothing to do at this index */
	command_free(&cmd);
}

/* ---- assignment versions ---- */

/* A fingerprint of @node's set: FNV-1a over its tasks' ids and versions
 * (the store keeps them sorted by id), from @mesh_fp (mesh_table_fp(): the
 * routing mesh's table comes with every set). It changes when a task of the
 * node is written or deleted, or the mesh changes. A set's version is the
 * store's index when its fingerprint last changed, so versions only go up,
 * deletions included. */
static uint64_t set_fp(const struct store *st, const char *node, uint64_t mesh_fp)
{
	uint64_t h = mesh_fp;

	for (size_t i = 0; i < store_count(st, RECORD_TASKS); i++) {
		const struct task_rec *t = store_at(st, RECORD_TASKS, i);

		if (t->node_id == NULL || strcmp(t->node_id, node) != 0)
			continue;
		for (const char *p = t->meta.id; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		for (int b = 0; b < 64; b += 8)
			h = (h ^ ((t->meta.version >> b) & 0xff)) * 1099511628211ULL;
	}
	return h;
}

static struct node_version *version_slot(struct dispatch *d, const char *node)
{
	struct node_version *v;

	for (size_t i = 0; i < d->n_versions; i++)
		if (strcmp(d->versions[i].id, node) == 0)
			return &d->versions[i];
	if (d->n_versions == MAX_NODES_SEEN)
		return NULL;
	v = realloc(d->versions, (d->n_versions + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	d->versions = v;
	v = &d->versions[d->n_versions++];
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", node);
	return v;
}

/* mesh_table_fp() of @st, computed once per store index (the leader's nudges
 * and its own agent's set both need it). */
static uint64_t mesh_fp_at(struct dispatch *d, const struct store *st)
{
	uint64_t index = store_last_index(st);

	if (d->mesh_fp_index != index || index == 0) {
		d->mesh_fp = mesh_table_fp(st);
		d->mesh_fp_index = index;
	}
	return d->mesh_fp;
}

/* Leader: nudge every node whose set changed, at the store's index. */
static void nudge_sets(struct dispatch *d, const struct store *st)
{
	uint64_t index = store_last_index(st);
	char key[ID_LEN + 8];

	uint64_t mesh_fp;

	if (index == d->nudged_index)
		return;
	d->nudged_index = index;
	mesh_fp = mesh_fp_at(d, st);
	for (size_t i = 0; i < store_count(st, RECORD_NODES); i++) {
		const struct node_rec *n = store_at(st, RECORD_NODES, i);
		uint64_t fp = set_fp(st, n->meta.id, mesh_fp);
		struct node_version *nv = version_slot(d, n->meta.id);

		if (nv == NULL || (nv->version != 0 && fp == nv->fp))
			continue;
		nv->fp = fp;
		nv->version = index;
		snprintf(key, sizeof(key), NUDGE_PREFIX "%s", n->meta.id);
		swarm_nudge(d->swarm, key, index);
	}
}

/* The tasks of @node in @st, into a heap array of pointers into the store. */
static const struct task_rec **node_tasks(const struct store *st, const char *node, size_t *n)
{
	size_t total = store_count(st, RECORD_TASKS), k = 0;
	const struct task_rec **v = calloc(total + 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < total; i++) {
		const struct task_rec *t = store_at(st, RECORD_TASKS, i);

		if (t->node_id != NULL && strcmp(t->node_id, node) == 0)
			v[k++] = t;
	}
	*n = k;
	return v;
}

/* The routing mesh's table that came with a set, applied before the set. */
static void apply_mesh(struct dispatch *d, const struct mesh_table *t)
{
	struct shoal_err err;

	if (d->mesh == NULL)
		return;
	d->mesh_applied = true;
	node_mesh_apply(d->mesh, t, &err); /* it logs what failed */
}

/* A manager's own agent reads its set from the local store. */
static void assign_local(struct dispatch *d, const struct store *st)
{
	const char *self = swarm_node_id(d->swarm);
	const struct task_rec **tasks;
	struct mesh_table table;
	struct shoal_err err;
	uint64_t v = store_last_index(st), fp;
	size_t n = 0;

	if (d->agent == NULL || v <= agent_version(d->agent) || v == d->local_index)
		return;
	d->local_index = v; /* the fingerprints are computed once per index */
	fp = set_fp(st, self, mesh_fp_at(d, st));
	if (fp == d->applied_fp && agent_version(d->agent) != 0)
		return;
	d->applied_fp = fp;
	if (mesh_table_build(st, self, &table, &err) == 0) {
		apply_mesh(d, &table);
		mesh_table_free(&table);
	}
	tasks = node_tasks(st, self, &n);
	if (tasks == NULL)
		return;
	if (agent_assign(d->agent, v, tasks, n, &err) != 0)
		log_warn("dispatch", "assign %zu task(s): %s", n, err.msg);
	free(tasks);
}

/* ---- the wire: assignment sets and reports ---- */

/* [version, [task...], mesh table] */
static int encode_set(const struct store *st, const char *node, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	const struct task_rec **tasks;
	struct mesh_table table;
	size_t n = 0;
	int rv = 0;

	if (mesh_table_build(st, node, &table, NULL) != 0)
		return SHOAL_ENOMEM;
	tasks = node_tasks(st, node, &n);
	if (tasks == NULL) {
		mesh_table_free(&table);
		return SHOAL_ENOMEM;
	}
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 3) != 0 ||
	    msgpack_pack_uint64(&pk, store_last_index(st)) != 0 ||
	    msgpack_pack_array(&pk, (uint32_t)n) != 0)
		rv = SHOAL_ENOMEM;
	for (size_t i = 0; rv == 0 && i < n; i++)
		rv = schema_pack(&task_schema, tasks[i], &pk);
	if (rv == 0)
		rv = mesh_table_pack(&table, &pk);
	free(tasks);
	mesh_table_free(&table);
	return rv;
}

static void free_tasks(struct task_rec **tasks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		task_rec_free(tasks[i]);
		free(tasks[i]);
	}
	free(tasks);
}

static int decode_set(const void *body, size_t len, uint64_t *version, struct task_rec ***out,
		      size_t *n_out, struct mesh_table *mesh, struct shoal_err *err)
{
	msgpack_unpacked up;
	const msgpack_object *o, *list;
	struct task_rec **tasks = NULL;
	size_t n = 0;
	int rv;

	memset(mesh, 0, sizeof(*mesh));
	msgpack_unpacked_init(&up);
	rv = schema_msgpack_parse(body, len, &up, err);
	if (rv != 0)
		goto out;
	o = &up.data;
	/* [version, [task...]] from a shoal before the mesh: no table. */
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 || o->via.array.size > 3 ||
	    o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY) {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"an assignment set is [version, [task...], mesh table]");
		goto out;
	}
	if (o->via.array.size == 3) {
		rv = mesh_table_unpack(&o->via.array.ptr[2], mesh, err);
		if (rv != 0)
			goto out;
	}
	*version = o->via.array.ptr[0].via.u64;
	list = &o->via.array.ptr[1];
	tasks = calloc(list->via.array.size + 1, sizeof(*tasks));
	if (tasks == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	for (n = 0; n < list->via.array.size; n++) {
		tasks[n] = calloc(1, sizeof(**tasks));
		if (tasks[n] == NULL) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto out;
		}
		if (task_rec_defaults(tasks[n], err) != 0) {
			n++; /* free_tasks() releases what the defaults allocated */
			rv = SHOAL_ENOMEM;
			goto out;
		}
		rv = schema_unpack(&task_schema, tasks[n], &list->via.array.ptr[n], err);
		if (rv != 0) {
			n++;
			goto out;
		}
	}
	*out = tasks;
	*n_out = n;
	tasks = NULL;
	n = 0;
out:
	if (tasks != NULL)
		free_tasks(tasks, n);
	if (rv != 0)
		mesh_table_free(mesh);
	msgpack_unpacked_destroy(&up);
	return rv;
}

/* Reports: [[id, state, message, err, container id, pid, exit code, ts, addr]...] */
static int encode_reports(const struct agent_report *r, size_t n, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	int rv;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	rv = msgpack_pack_array(&pk, (uint32_t)n);
	for (size_t i = 0; rv == 0 && i < n; i++) {
		const char *s[4] = {r[i].task_id, r[i].message, r[i].err, r[i].container_id};

		rv = msgpack_pack_array(&pk, 9);
		for (int k = 0; rv == 0 && k < 4; k++) {
			size_t len = strlen(s[k]);

			rv = msgpack_pack_str(&pk, len) | msgpack_pack_str_body(&pk, s[k], len);
			if (k == 0 && rv == 0)
				rv = msgpack_pack_int(&pk, (int)r[i].state);
		}
		if (rv == 0)
			rv = msgpack_pack_int64(&pk, r[i].pid) |
			     msgpack_pack_int64(&pk, r[i].exit_code) |
			     msgpack_pack_int64(&pk, r[i].timestamp);
		if (rv == 0) {
			size_t len = strlen(r[i].addr);

			rv =
			    msgpack_pack_str(&pk, len) | msgpack_pack_str_body(&pk, r[i].addr, len);
		}
	}
	return rv == 0 ? 0 : SHOAL_ENOMEM;
}

static int copy_str(const msgpack_object *o, char *out, size_t len)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= len)
		return -1;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
	return 0;
}

static int decode_reports(const void *body, size_t len, struct agent_report **out, size_t *n_out,
			  struct shoal_err *err)
{
	msgpack_unpacked up;
	struct agent_report *r = NULL;
	size_t n = 0;
	int rv;

	msgpack_unpacked_init(&up);
	rv = schema_msgpack_parse(body, len, &up, err);
	if (rv == 0 && (up.data.type != MSGPACK_OBJECT_ARRAY || up.data.via.array.size > 10000))
		rv = shoal_errf(err, SHOAL_EPROTO, "task reports are a list of at most 10000");
	if (rv == 0) {
		n = up.data.via.array.size;
		r = calloc(n + 1, sizeof(*r));
		if (r == NULL)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rv == 0 && i < n; i++) {
		const msgpack_object *e = &up.data.via.array.ptr[i];
		const msgpack_object *f;

		/* 8 fields: from a shoal before the mesh, no address. */
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 8 ||
		    e->via.array.size > 9) {
			rv = shoal_errf(err, SHOAL_EPROTO, "a task report has 8 or 9 fields");
			break;
		}
		f = e->via.array.ptr;
		if (copy_str(&f[0], r[i].task_id, sizeof(r[i].task_id)) != 0 ||
		    f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[1].via.u64 > TASK_ORPHANED ||
		    copy_str(&f[2], r[i].message, sizeof(r[i].message)) != 0 ||
		    copy_str(&f[3], r[i].err, sizeof(r[i].err)) != 0 ||
		    copy_str(&f[4], r[i].container_id, sizeof(r[i].container_id)) != 0 ||
		    (f[5].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
		     f[5].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
		    (f[6].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
		     f[6].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
		    (f[7].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
		     f[7].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
		    (e->via.array.size == 9 &&
		     copy_str(&f[8], r[i].addr, sizeof(r[i].addr)) != 0) ||
		    (r[i].addr[0] != '\0' &&
		     inet_pton(AF_INET, r[i].addr, &(struct in_addr){0}) != 1)) {
			rv = shoal_errf(err, SHOAL_EPROTO, "a task report's fields are malformed");
			break;
		}
		r[i].state = (enum task_state)f[1].via.u64;
		r[i].pid = f[5].via.i64;
		r[i].exit_code = f[6].via.i64;
		r[i].timestamp = f[7].via.i64;
	}
	msgpack_unpacked_destroy(&up);
	if (rv != 0) {
		free(r);
		return rv;
	}
	*out = r;
	*n_out = n;
	return 0;
}

/* Whether @addr lies in @node's container subnet: a node only announces
 * endpoints on its own subnet (or the mesh would send traffic anywhere it
 * says). A node without a subnet yet announces none. */
static bool in_subnet(const struct store *st, const char *node, const char *addr)
{
	const struct node_rec *n = store_node_get(st, node);
	unsigned a, b, c, d, len;
	struct in_addr ip, net;
	char end;

	if (n == NULL || n->subnet == NULL ||
	    sscanf(n->subnet, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &end) != 5 || len < 8 ||
	    len > 30 || a > 255 || b > 255 || c > 255 || d > 255 ||
	    inet_pton(AF_INET, addr, &ip) != 1)
		return false;
	net.s_addr = htonl(a << 24 | b << 16 | c << 8 | d);
	return ((ntohl(ip.s_addr) ^ ntohl(net.s_addr)) >> (32 - len)) == 0;
}

/* The writes for @reports from node @node: a task only moves forward, and
 * only its own node reports it. */
static int reports_command(const struct store *st, const char *node,
			   const struct agent_report *reports, size_t n, struct command *cmd,
			   struct shoal_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct agent_report *r = &reports[i];
		const struct task_rec *t = store_get(st, RECORD_TASKS, r->task_id);
		struct task_rec copy;
		int rv;

		if (t == NULL || t->node_id == NULL || strcmp(t->node_id, node) != 0)
			continue; /* gone, or not this node's: nothing to report */
		if (r->state < t->status.state ||
		    (r->state == t->status.state && r->timestamp <= t->status.timestamp))
			continue;
		rv = schema_copy(&task_schema, &copy, t, err);
		if (rv != 0)
			return rv;
		copy.status.state = r->state;
		copy.status.timestamp = r->timestamp;
		free(copy.status.message);
		free(copy.status.err);
		free(copy.status.container_status.container_id);
		copy.status.message = strdup(r->message);
		copy.status.err = r->err[0] != '\0' ? strdup(r->err) : NULL;
		copy.status.container_status.container_id =
		    r->container_id[0] != '\0' ? strdup(r->container_id) : NULL;
		copy.status.container_status.pid = r->pid;
		copy.status.container_status.exit_code = r->exit_code;
		if (r->state == TASK_RUNNING && r->addr[0] != '\0' &&
		    in_subnet(st, node, r->addr)) {
			free(copy.addr);
			copy.addr = strdup(r->addr);
		}
		copy.meta.updated_at = r->timestamp;
		rv = copy.status.message == NULL
			 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
			 : command_put(cmd, RECORD_TASKS, t->meta.version, &copy, err);
		task_rec_free(&copy);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* ---- RPC served by managers ---- */

/* The calling node, if its certificate is good and it is still a member
 * (a removed node's certificate stays valid until it expires). */
static const char *caller_node(struct rpc_call *call, const struct store *st)
{
	const struct stream_peer *p = rpc_call_peer(call);

	if (p == NULL || !p->authenticated || store_node_get(st, p->cert.node_id) == NULL)
		return NULL;
	return p->cert.node_id;
}

/* Refuse a call: not a manager here, or not a member there. */
static void refuse(struct rpc_call *call, const struct store *st)
{
	struct shoal_err err;

	if (st == NULL)
		shoal_errf(&err, SHOAL_ESTATE, "not a manager");
	else
		shoal_errf(&err, SHOAL_ESTATE, "the calling node is not a member of this swarm");
	rpc_reply(call, SHOAL_ESTATE, &err, NULL, 0);
}

static void m_assignments(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	const struct store *st = swarm_store(s);
	const char *node = st != NULL ? caller_node(call, st) : NULL;
	msgpack_sbuffer sb;
	struct shoal_err err;

	(void)body;
	(void)len;
	if (node == NULL) {
		refuse(call, st);
		return;
	}
	msgpack_sbuffer_init(&sb);
	if (encode_set(st, node, &sb) != 0)
		rpc_reply(call, shoal_errf(&err, SHOAL_ENOMEM, "out of memory"), &err, NULL, 0);
	else
		rpc_reply(call, 0, NULL, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

static void status_committed(void *arg, int status, const struct shoal_err *err)
{
	struct rpc_call *call = arg;

	rpc_reply(call, status, err, NULL, 0);
}

static void m_task_status(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct swarm *s = arg;
	const struct store *st = swarm_store(s);
	const char *node = st != NULL ? caller_node(call, st) : NULL;
	struct agent_report *reports = NULL;
	struct command cmd;
	struct shoal_err err;
	size_t n = 0;
	int rv;

	if (node == NULL) {
		refuse(call, st);
		return;
	}
	rv = decode_reports(body, len, &reports, &n, &err);
	command_init(&cmd);
	if (rv == 0)
		rv = reports_command(st, node, reports, n, &cmd, &err);
	free(reports);
	if (rv == 0 && cmd.n_ops == 0) {
		rpc_reply(call, 0, NULL, NULL, 0);
	} else if (rv == 0) {
		rv = swarm_propose(s, &cmd, status_committed, call, &err);
		if (rv != 0)
			rpc_reply(call, rv, &err, NULL, 0);
	} else {
		rpc_reply(call, rv, &err, NULL, 0);
	}
	command_free(&cmd);
}

/* A manager reads this node's task logs (node/task_logs.h). */
static void m_task_logs(void *arg, struct rpc_call *call, const void *body, size_t len)
{
	struct dispatch *d = swarm_hooks_arg(arg);

	task_logs_rpc(d != NULL ? d->logs : NULL, call, body, len);
}

/* ---- this node's agent ---- */

struct report_req {
	struct dispatch *d;
	uint64_t batch;
};

static void report_done(void *arg, int status, const struct shoal_err *err)
{
	struct report_req *rq = arg;
	struct dispatch *d = rq->d;

	if (status == 0 && !d->closing && d->agent != NULL)
		agent_reports_acked(d->agent, rq->batch);
	else if (status != 0)
		log_debug("dispatch", "task reports: %s", err != NULL ? err->msg : "failed");
	/* Out of sequence: built on a store that had not applied a write yet
	 * (this node a follower behind the leader, or the leader's loops wrote
	 * the task); the next batch is built afresh. Other failures wait for
	 * the agent's re-send. */
	if (status == SHOAL_ECONFLICT && !d->closing && d->agent != NULL)
		agent_reports_refused(d->agent, rq->batch);
	free(rq);
	release(d);
}

static void report_answered(void *arg, int status, const struct shoal_err *err, const void *body,
			    size_t len)
{
	(void)body;
	(void)len;
	report_done(arg, status, err);
}

void dispatch_agent_report(void *arg, uint64_t batch, const struct agent_report *reports, size_t n)
{
	struct dispatch *d = arg;
	const struct store *st = swarm_store(d->swarm);
	struct report_req *rq;
	struct command cmd;
	struct shoal_err err;
	msgpack_sbuffer sb;
	int rv;

	if (d->closing || n == 0)
		return;
	rq = calloc(1, sizeof(*rq));
	if (rq == NULL)
		return; /* the agent sends again */
	rq->d = d;
	rq->batch = batch;
	if (st != NULL) {
		command_init(&cmd);
		rv = reports_command(st, swarm_node_id(d->swarm), reports, n, &cmd, &err);
		if (rv == 0 && cmd.n_ops == 0) {
			command_free(&cmd);
			agent_reports_acked(d->agent, batch);
			free(rq);
			return;
		}
		if (rv == 0)
			rv = swarm_propose(d->swarm, &cmd, report_done, rq, &err);
		command_free(&cmd);
	} else {
		msgpack_sbuffer_init(&sb);
		rv = encode_reports(reports, n, &sb);
		if (rv == 0)
			rv = swarm_call_manager(d->swarm, "task_status", sb.data, sb.size,
						CALL_TIMEOUT_MS, report_answered, rq, &err);
		msgpack_sbuffer_destroy(&sb);
	}
	if (rv != 0) {
		log_debug("dispatch", "task reports: %s", err.msg);
		free(rq);
		return;
	}
	hold(d);
}

/* set_fp() of a received set. */
static uint64_t tasks_fp(const struct task_rec *const *tasks, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		for (const char *p = tasks[i]->meta.id; p != NULL && *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		for (int b = 0; b < 64; b += 8)
			h = (h ^ ((tasks[i]->meta.version >> b) & 0xff)) * 1099511628211ULL;
	}
	return h;
}

static void set_answered(void *arg, int status, const struct shoal_err *rerr, const void *body,
			 size_t len)
{
	struct dispatch *d = arg;
	struct task_rec **tasks = NULL;
	struct mesh_table mesh;
	struct shoal_err err;
	uint64_t version = 0;
	size_t n = 0;

	d->fetching = false;
	if (d->closing || d->agent == NULL) {
		release(d);
		return;
	}
	if (status != 0) {
		log_debug("dispatch", "assignments: %s", rerr->msg);
	} else if (decode_set(body, len, &version, &tasks, &n, &mesh, &err) != 0) {
		log_warn("dispatch", "assignments from the manager: %s", err.msg);
	} else {
		uint64_t fp = tasks_fp((const struct task_rec *const *)tasks, n);

		/* Stop chasing a nudge this manager has not caught up with: the
		 * next poll asks again. */
		if (d->wanted_version > version)
			d->wanted_version = version;
		if (version > d->fetched_version)
			d->fetched_version = version;
		if (version >= agent_version(d->agent))
			apply_mesh(d, &mesh);
		mesh_table_free(&mesh);
		if (version > agent_version(d->agent) &&
		    (fp != d->applied_fp || agent_version(d->agent) == 0)) {
			d->applied_fp = fp;
			if (agent_assign(d->agent, version, (const struct task_rec *const *)tasks,
					 n, &err) != 0)
				log_warn("dispatch", "assign %zu task(s): %s", n, err.msg);
		}
		free_tasks(tasks, n);
	}
	release(d);
}

/* A worker asks a manager for its set. */
static void fetch_set(struct dispatch *d)
{
	struct shoal_err err;

	if (d->fetching || d->agent == NULL)
		return;
	d->last_poll_ms = uv_now(d->loop);
	if (swarm_call_manager(d->swarm, "assignments", NULL, 0, CALL_TIMEOUT_MS, set_answered, d,
			       &err) != 0)
		return;
	d->fetching = true;
	hold(d);
}

static void on_nudge(void *arg, const char *key, uint64_t version)
{
	struct dispatch *d = arg;
	const char *self = swarm_node_id(d->swarm);

	if (d->closing || strncmp(key, NUDGE_PREFIX, strlen(NUDGE_PREFIX)) != 0 ||
	    strcmp(key + strlen(NUDGE_PREFIX), self) != 0)
		return;
	if (version > d->wanted_version)
		d->wanted_version = version;
	if (swarm_store(d->swarm) == NULL && d->agent != NULL && version > agent_version(d->agent))
		fetch_set(d);
}

/* ---- the tick ---- */

static void barrier_applied(void *arg, int status)
{
	struct dispatch *d = arg;

	d->barrier_pending = false;
	if (status == 0 && !d->closing)
		d->leader_ready = true;
	release(d);
}

static void leader_barrier(struct dispatch *d)
{
	struct shoal_err err;

	if (swarm_barrier(d->swarm, barrier_applied, d, &err) != 0) {
		log_debug("dispatch", "leader barrier: %s", err.msg);
		return; /* the next tick tries again */
	}
	d->barrier_pending = true;
	hold(d);
}

static void tick(uv_timer_t *t)
{
	struct dispatch *d = t->data;
	const struct store *st;

	if (d->closing)
		return;
	if (swarm_state(d->swarm) == SWARM_INACTIVE) {
		/* Not in a swarm: no tasks here, and nothing of the last one's
		 * versions applies to the next. */
		d->wanted_version = 0;
		d->fetched_version = 0;
		d->applied_fp = 0;
		if (d->agent != NULL && agent_version(d->agent) > 0)
			agent_leave(d->agent);
		if (d->mesh != NULL && d->mesh_applied) {
			d->mesh_applied = false;
			node_mesh_leave(d->mesh);
		}
		return;
	}
	if (swarm_state(d->swarm) != SWARM_ACTIVE)
		return;
	st = swarm_store(d->swarm);
	if (st != d->store_seen) {
		/* A new store (promoted, restarted Raft): start over. */
		d->store_seen = st;
		d->mesh_fp_index = 0;
		d->local_index = 0;
		d->reconciled_index = 0;
		d->nudged_index = 0;
		d->n_versions = 0;
	}
	if (st != NULL) {
		bool leader = swarm_is_leader(d->swarm, NULL);

		if (leader && !d->was_leader) {
			/* A new term: act only once the store holds every entry
			 * the last leader committed, or we would redo its work. */
			d->leader_ready = false;
			d->reconciled_index = 0;
			d->nudged_index = 0;
		}
		d->was_leader = leader;
		if (leader && !d->leader_ready && !d->barrier_pending)
			leader_barrier(d);
		if (leader && d->leader_ready) {
			reconcile(d, st);
			nudge_sets(d, st);
		}
		assign_local(d, st);
	} else if (uv_now(d->loop) - d->last_poll_ms >= DISPATCH_POLL_MS ||
		   (d->agent != NULL && d->wanted_version > agent_version(d->agent) &&
		    d->wanted_version > d->fetched_version)) {
		fetch_set(d);
	}
}

int dispatch_start(struct dispatch **out, const struct dispatch_config *cfg, struct shoal_err *err)
{
	struct swarm_hooks hooks;
	struct dispatch *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	d->loop = cfg->loop;
	d->swarm = cfg->swarm;
	d->agent = cfg->agent;
	d->logs = cfg->logs;
	d->mesh = cfg->mesh;
	memset(&hooks, 0, sizeof(hooks));
	hooks.methods[0] = (struct rpc_method){"assignments", m_assignments};
	hooks.methods[1] = (struct rpc_method){"task_status", m_task_status};
	hooks.methods[2] = (struct rpc_method){"task_logs", m_task_logs};
	hooks.nudge = on_nudge;
	hooks.arg = d;
	swarm_set_hooks(d->swarm, &hooks);
	uv_timer_init(d->loop, &d->tick);
	d->tick.data = d;
	hold(d); /* the timer, until closed */
	uv_timer_start(&d->tick, tick, DISPATCH_TICK_MS, DISPATCH_TICK_MS);
	*out = d;
	return 0;
}

void dispatch_set_agent(struct dispatch *d, struct agent *a)
{
	d->agent = a;
}

static void tick_closed(uv_handle_t *h)
{
	release(h->data);
}

void dispatch_close(struct dispatch *d, void (*cb)(void *arg), void *arg)
{
	struct swarm_hooks none;

	if (d == NULL) {
		if (cb != NULL)
			cb(arg);
		return;
	}
	d->closing = true;
	d->close_cb = cb;
	d->close_arg = arg;
	memset(&none, 0, sizeof(none));
	swarm_set_hooks(d->swarm, &none);
	uv_timer_stop(&d->tick);
	uv_close((uv_handle_t *)&d->tick, tick_closed);
}
