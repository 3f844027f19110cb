/* A manager gathers a service's logs from the nodes its tasks ran on.
 *
 * A session (one request) holds its sources (one per task) and one RPC
 * client per other node. It is referenced by itself until it ends, by each
 * page asked and not yet answered, by its timers until closed, and by each
 * RPC client until closed; the last release frees it.
 *
 * Pages are asked for by the pump (a timer), never from a page's callback:
 * so a long log read from this node's containers does not recurse or hold
 * the loop, and no page is asked for while more than HIGH_WATER bytes wait
 * to be sent to the client (a slow reader slows the reading, instead of
 * filling memory until the connection is cut). */
#include "node/api_svc_logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "node/api.h"
#include "node/api_ctr_logs.h"
#include "node/api_services.h"
#include "node/records.h"
#include "node/records_svc.h"

#define FLUSH_BYTES (64u << 10)
#define HIGH_WATER  (1u << 20)
/* Backpressure: how often the pump looks at the client's queue again. */
#define DRAIN_POLL_MS 10
/* After a page that brought nothing and did not move (a long poll that
 * timed out, or a node answering at once with nothing): wait this long. */
#define EMPTY_PAUSE_MS 1000
/* A page over RPC may take its long poll plus this much. */
#define RPC_MARGIN_MS 10000

struct peer {
	char node_id[64];
	struct rpc_client *rpc;
};

struct session;

struct source {
	struct session *ss;
	char task_id[64];
	char node_id[64];
	struct peer *peer; /* NULL: this node */
	struct logfile_pos pos;
	bool has_pos;
	bool busy;	     /* a page is being asked for */
	bool ready;	     /* the pump asks for its next page, no sooner than not_before */
	uint64_t not_before; /* uv_now() */
	bool idle;	     /* follow: no container yet; asked again at the next tick */
	bool done;
};

struct session {
	struct svc_logs *sl;
	struct http_request *req;
	struct http_response *res;
	struct logfile_query q;
	bool timestamps, follow, details;
	char service_id[64];
	char task_only[64]; /* GET /tasks/{id}/logs: that task alone */
	struct source **src;
	size_t n_src;
	struct peer **peers;
	size_t n_peers;
	uv_timer_t tick; /* follow: new tasks, idle sources, the client's presence */
	bool tick_open;
	uv_timer_t pump; /* asks for the ready sources' pages */
	bool pump_open;
	unsigned refs;
	bool ended;
	struct buf out;
	struct session *next;
};

struct svc_logs {
	uv_loop_t *loop;
	struct swarm *swarm;
	struct task_logs *local;
	struct session *sessions;
	bool closing;
	bool in_close; /* svc_logs_close() frees it, not the last session */
};

static void schedule(struct session *ss);

/* ---- lifetime ---- */

static void session_free(struct session *ss)
{
	struct svc_logs *sl = ss->sl;
	struct session **pp = &sl->sessions;

	while (*pp != ss)
		pp = &(*pp)->next;
	*pp = ss->next;
	for (size_t i = 0; i < ss->n_src; i++)
		free(ss->src[i]);
	free(ss->src);
	for (size_t i = 0; i < ss->n_peers; i++)
		free(ss->peers[i]);
	free(ss->peers);
	buf_free(&ss->out);
	free(ss);
	if (sl->closing && !sl->in_close && sl->sessions == NULL)
		free(sl);
}

static void release(struct session *ss)
{
	if (--ss->refs == 0)
		session_free(ss);
}

static void timer_closed(uv_handle_t *h)
{
	release(h->data);
}

static void peer_closed(void *arg)
{
	release(arg);
}

static void flush(struct session *ss)
{
	if (ss->out.len > 0 && !ss->ended && http_stream_write(ss->res, ss->out.data, ss->out.len))
		log_debug("api", "service logs: the client went away");
	buf_consume(&ss->out, ss->out.len);
}

/* Finish the response and let go of everything; pages still out come back
 * to an ended session and only release it. */
static void session_end(struct session *ss)
{
	if (ss->ended)
		return;
	flush(ss);
	ss->ended = true;
	http_stream_end(ss->res);
	if (ss->tick_open) {
		ss->tick_open = false;
		uv_timer_stop(&ss->tick);
		uv_close((uv_handle_t *)&ss->tick, timer_closed);
	}
	if (ss->pump_open) {
		ss->pump_open = false;
		uv_timer_stop(&ss->pump);
		uv_close((uv_handle_t *)&ss->pump, timer_closed);
	}
	for (size_t i = 0; i < ss->n_peers; i++) {
		if (ss->peers[i]->rpc == NULL)
			continue;
		ss->refs++;
		rpc_client_close(ss->peers[i]->rpc, peer_closed, ss);
		ss->peers[i]->rpc = NULL;
	}
	release(ss); /* its own */
}

/* ---- sources ---- */

static struct peer *peer_for(struct session *ss, const struct node_rec *n)
{
	struct peer *p, **grown;
	struct shoal_err err;

	for (size_t i = 0; i < ss->n_peers; i++)
		if (strcmp(ss->peers[i]->node_id, n->meta.id) == 0)
			return ss->peers[i]->rpc != NULL ? ss->peers[i] : NULL;
	grown = realloc(ss->peers, (ss->n_peers + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	ss->peers = grown;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	snprintf(p->node_id, sizeof(p->node_id), "%s", n->meta.id);
	ss->peers[ss->n_peers++] = p;
	if (n->cluster_addr == NULL || n->cluster_addr[0] == '\0' ||
	    swarm_member_client(ss->sl->swarm, n->cluster_addr, &p->rpc, &err) != 0) {
		p->rpc = NULL;
		log_debug("api", "service logs: node %.12s cannot be reached", n->meta.id);
	}
	return p->rpc != NULL ? p : NULL;
}

static bool has_source(const struct session *ss, const char *task_id)
{
	for (size_t i = 0; i < ss->n_src; i++)
		if (strcmp(ss->src[i]->task_id, task_id) == 0)
			return true;
	return false;
}

/* Add the tasks of @st that belong to the session and are not sources yet;
 * ask each new one for its first page. */
static void add_sources(struct session *ss, const struct store *st)
{
	const char *self = swarm_node_id(ss->sl->swarm);
	size_t first = ss->n_src;

	for (size_t i = 0; i < store_count(st, RECORD_TASKS); i++) {
		const struct task_rec *t = store_at(st, RECORD_TASKS, i);
		const struct node_rec *n;
		struct source *src, **grown;

		if (t->node_id == NULL || t->service_id == NULL ||
		    strcmp(t->service_id, ss->service_id) != 0 ||
		    (ss->task_only[0] != '\0' && strcmp(t->meta.id, ss->task_only) != 0) ||
		    has_source(ss, t->meta.id))
			continue;
		grown = realloc(ss->src, (ss->n_src + 1) * sizeof(*grown));
		if (grown == NULL)
			break;
		ss->src = grown;
		src = calloc(1, sizeof(*src));
		if (src == NULL)
			break;
		src->ss = ss;
		snprintf(src->task_id, sizeof(src->task_id), "%s", t->meta.id);
		snprintf(src->node_id, sizeof(src->node_id), "%s", t->node_id);
		ss->src[ss->n_src++] = src;
		if (self != NULL && strcmp(t->node_id, self) == 0)
			continue;
		n = store_node_get(st, t->node_id);
		src->peer = n != NULL ? peer_for(ss, n) : NULL;
		if (src->peer == NULL)
			src->done = true; /* a node gone or unreachable: nothing to read */
	}
	for (size_t i = first; i < ss->n_src; i++)
		ss->src[i]->ready = !ss->src[i]->done;
	if (ss->n_src > first)
		schedule(ss);
}

/* Without follow: over once every source is. With follow: once the service
 * (or the task) is gone too. */
static void check_finished(struct session *ss)
{
	const struct store *st;

	if (ss->ended)
		return;
	for (size_t i = 0; i < ss->n_src; i++)
		if (!ss->src[i]->done || ss->src[i]->busy || ss->src[i]->idle)
			return;
	st = swarm_store(ss->sl->swarm);
	if (!ss->follow || st == NULL)
		session_end(ss);
	else if (ss->task_only[0] != '\0'
		     ? ss->n_src > 0 || store_get(st, RECORD_TASKS, ss->task_only) == NULL
		     : store_get(st, RECORD_SERVICES, ss->service_id) == NULL)
		session_end(ss); /* the task has been read to its end, or is gone */
}

/* ---- pages ---- */

/* Follow: a task with no container yet that may still get one. */
static bool task_may_start(const struct session *ss, const struct source *src)
{
	const struct store *st = swarm_store(ss->sl->swarm);
	const struct task_rec *t = st != NULL ? store_get(st, RECORD_TASKS, src->task_id) : NULL;

	return t != NULL && t->desired_state <= TASK_RUNNING && t->status.state < TASK_RUNNING;
}

static void write_entry(struct session *ss, const struct source *src, const struct logfile_entry *e)
{
	char details[3 * 64 + 96]; /* three ids of under 64 bytes and the keys */

	if (ss->details)
		snprintf(details, sizeof(details),
			 "com.docker.swarm.node.id=%s,com.docker.swarm.service.id=%s,"
			 "com.docker.swarm.task.id=%s ",
			 src->node_id, ss->service_id, src->task_id);
	if (logfile_frame(&ss->out, e, ss->timestamps, ss->details ? details : NULL) != 0)
		log_warn("api", "service logs: out of memory, entries dropped");
	if (ss->out.len >= FLUSH_BYTES)
		flush(ss);
}

static void on_page(void *arg, int status, const struct shoal_err *err,
		    const struct task_logs_page *page)
{
	struct source *src = arg;
	struct session *ss = src->ss;
	struct shoal_err perr;
	struct logfile_entry e;
	size_t off = 0, n = 0;
	bool moved;
	int rv;

	src->busy = false;
	if (ss->ended) {
		release(ss);
		return;
	}
	if (http_response_gone(ss->res)) {
		session_end(ss);
		release(ss);
		return;
	}
	if (status == SHOAL_ENOTFOUND && ss->follow && task_may_start(ss, src)) {
		src->idle = true;
	} else if (status != 0) {
		log_debug("api", "logs of task %.25s on node %.12s: %s", src->task_id, src->node_id,
			  err != NULL ? err->msg : "failed");
		src->done = true;
	} else {
		while ((rv = task_logs_next_entry(page, &off, &e, &perr)) == 1) {
			write_entry(ss, src, &e);
			n++;
		}
		if (rv < 0)
			log_warn("api", "logs of task %.25s: %s", src->task_id, perr.msg);
		flush(ss);
		moved = n > 0 || !src->has_pos || page->pos.ino != src->pos.ino ||
			page->pos.offset != src->pos.offset;
		src->pos = page->pos;
		src->has_pos = true;
		if (page->ended || (!ss->follow && !(page->more && n > 0))) {
			src->done = true;
		} else {
			/* More now, or (follow) whatever comes next. */
			src->ready = true;
			src->not_before = uv_now(ss->sl->loop) + (moved ? 0 : EMPTY_PAUSE_MS);
			schedule(ss);
		}
	}
	check_finished(ss);
	release(ss);
}

static void on_rpc_page(void *arg, int status, const struct shoal_err *err, const void *body,
			size_t len)
{
	struct task_logs_page page;
	struct shoal_err derr;
	int rv;

	if (status == 0 && (rv = task_logs_page_decode(body, len, &page, &derr)) != 0) {
		on_page(arg, rv, &derr, NULL);
		return;
	}
	on_page(arg, status, err, status == 0 ? &page : NULL);
}

static void request_page(struct source *src)
{
	struct session *ss = src->ss;
	struct task_logs_req r;
	struct shoal_err err;
	struct buf body;
	int rv;

	memset(&r, 0, sizeof(r));
	snprintf(r.task_id, sizeof(r.task_id), "%s", src->task_id);
	r.q = ss->q;
	r.has_pos = src->has_pos;
	r.pos = src->pos;
	r.wait_ms = ss->follow ? SVC_LOGS_WAIT_MS : 0;
	src->busy = true;
	ss->refs++;
	if (src->peer == NULL) {
		task_logs_serve(ss->sl->local, &r, on_page, src);
		return;
	}
	buf_init(&body);
	rv = task_logs_req_encode(&r, &body, &err);
	if (rv == 0)
		rv = rpc_client_call(src->peer->rpc, "task_logs", body.data, body.len,
				     r.wait_ms + RPC_MARGIN_MS, on_rpc_page, src, NULL, &err);
	buf_free(&body);
	if (rv != 0) {
		/* No callback will come: answer for it. */
		src->busy = false;
		src->done = true;
		log_debug("api", "logs of task %.25s: %s", src->task_id, err.msg);
		ss->refs--;
	}
}

/* Ask for the pages of the ready sources that are due, while the client's
 * queue is below HIGH_WATER; come back for the others. A page answered from
 * inside request_page() makes its source ready again for the next run. */
static void on_pump(uv_timer_t *t)
{
	struct session *ss = t->data;
	uint64_t now = uv_now(ss->sl->loop), next = UINT64_MAX;

	if (ss->ended)
		return;
	ss->refs++; /* a page answered at once may end it */
	for (size_t i = 0, n = ss->n_src; i < n && !ss->ended; i++) {
		struct source *src = ss->src[i];

		if (!src->ready || src->busy || src->not_before > now)
			continue;
		if (http_response_queued(ss->res) >= HIGH_WATER)
			break;
		src->ready = false;
		request_page(src);
	}
	/* When the next ready source is due (those made ready meanwhile at once). */
	for (size_t i = 0; i < ss->n_src && !ss->ended; i++) {
		const struct source *src = ss->src[i];
		uint64_t due = src->not_before > now ? src->not_before - now : 0;

		if (src->ready && !src->busy && due < next)
			next = due;
	}
	if (next == 0 && http_response_queued(ss->res) >= HIGH_WATER)
		next = DRAIN_POLL_MS;
	if (!ss->ended && next != UINT64_MAX)
		uv_timer_start(&ss->pump, on_pump, next, 0);
	release(ss);
}

static void schedule(struct session *ss)
{
	if (!ss->ended && ss->pump_open &&
	    (!uv_is_active((uv_handle_t *)&ss->pump) || uv_timer_get_due_in(&ss->pump) > 0))
		uv_timer_start(&ss->pump, on_pump, 0, 0);
}

/* Follow: the client still there? New tasks? Over? */
static void on_tick(uv_timer_t *t)
{
	struct session *ss = t->data;
	const struct store *st = swarm_store(ss->sl->swarm);

	if (ss->ended)
		return;
	if (http_response_gone(ss->res) || st == NULL) {
		session_end(ss);
		return;
	}
	ss->refs++; /* add_sources may end it */
	for (size_t i = 0; i < ss->n_src && !ss->ended; i++) {
		struct source *src = ss->src[i];

		if (!src->idle)
			continue;
		src->idle = false;
		if (task_may_start(ss, src))
			src->ready = true;
		else
			src->done = true;
	}
	schedule(ss);
	add_sources(ss, st);
	check_finished(ss);
	release(ss);
}

/* ---- serving ---- */

int svc_logs_new(struct svc_logs **out, uv_loop_t *loop, struct swarm *swarm,
		 struct task_logs *local, struct shoal_err *err)
{
	struct svc_logs *sl = calloc(1, sizeof(*sl));

	if (sl == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	sl->loop = loop;
	sl->swarm = swarm;
	sl->local = local;
	*out = sl;
	return 0;
}

void svc_logs_close(struct svc_logs *sl)
{
	if (sl == NULL)
		return;
	sl->closing = true;
	sl->in_close = true;
	for (struct session *ss = sl->sessions, *next; ss != NULL; ss = next) {
		ss->refs++; /* alive until its successor is known */
		session_end(ss);
		next = ss->next;
		release(ss);
	}
	sl->in_close = false;
	if (sl->sessions == NULL)
		free(sl);
}

void svc_logs_serve(struct svc_logs *sl, const struct store *st, const char *ref, bool task,
		    struct http_request *req, struct http_response *res)
{
	struct session *ss;
	struct shoal_err err;
	int rv;

	if (sl->closing) {
		api_reply_error(req, res, SHOAL_ESHUTDOWN, "the daemon is shutting down");
		return;
	}
	ss = calloc(1, sizeof(*ss));
	if (ss == NULL) {
		api_reply_status(req, res, 500, "out of memory");
		return;
	}
	ss->sl = sl;
	ss->req = req;
	ss->res = res;
	buf_init(&ss->out);
	rv = api_logs_query(req, &ss->q, &ss->timestamps, &ss->follow, &err);
	ss->details = api_query_bool(req, "details");
	if (rv == 0 && task) {
		const struct task_rec *t;

		rv = api_task_find(st, ref, &t, &err);
		if (rv == 0) {
			snprintf(ss->task_only, sizeof(ss->task_only), "%s", t->meta.id);
			snprintf(ss->service_id, sizeof(ss->service_id), "%s",
				 t->service_id != NULL ? t->service_id : "");
		}
	} else if (rv == 0) {
		const struct service_rec *s;

		rv = api_service_find(st, ref, &s, &err);
		if (rv == 0)
			snprintf(ss->service_id, sizeof(ss->service_id), "%s", s->meta.id);
	}
	if (rv != 0) {
		api_reply_error(req, res, rv, err.msg);
		buf_free(&ss->out);
		free(ss);
		return;
	}
	ss->refs = 1;
	ss->next = sl->sessions;
	sl->sessions = ss;
	http_stream_start(res, 200, "application/vnd.docker.raw-stream");
	uv_timer_init(sl->loop, &ss->pump);
	ss->pump.data = ss;
	ss->pump_open = true;
	ss->refs++; /* the pump's, until closed */
	if (ss->follow) {
		uv_timer_init(sl->loop, &ss->tick);
		ss->tick.data = ss;
		ss->tick_open = true;
		ss->refs++; /* the timer's, until closed */
		uv_timer_start(&ss->tick, on_tick, SVC_LOGS_TICK_MS, SVC_LOGS_TICK_MS);
	}
	ss->refs++;
	add_sources(ss, st);
	check_finished(ss);
	release(ss);
}
