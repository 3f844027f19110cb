/* A node serves the logs of its tasks' containers a page at a time.
 *
 * A page that finds nothing new while the container runs becomes a wait: it
 * watches the log (ctr_log_watch) and arms a timer for the asker's wait.
 * Either wakes it (the watch through the timer set to 0, since a watch may
 * not be dropped from its own callback); it then reads again and answers, or
 * waits on if it still has nothing and time is left. */
#include "node/task_logs.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "net/cert.h"
#include "net/wire.h"

#define REQ_FIELDS     10
#define PAGE_FIELDS    5
#define ENTRY_TEXT_MAX (1u << 20)

struct wait {
	struct task_logs *tl;
	struct task_logs_req req;
	char ctr_id[65];
	uint64_t token;	   /* the log watch; 0 once dropped or gone */
	bool gone;	   /* the container was removed */
	uint64_t deadline; /* uv_now() */
	task_logs_cb cb;
	void *arg;
	uv_timer_t timer;
	struct wait *next;
};

struct task_logs {
	uv_loop_t *loop;
	struct containers *cs;
	struct wait *waits;
	size_t n_timers; /* open, for the memory's release */
	bool closing;
};

/* ---- codec ---- */

static int buf_pack(void *arg, const char *p, size_t n)
{
	return buf_append(arg, p, n) == 0 ? 0 : -1;
}

static int oom(struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
}

int task_logs_req_encode(const struct task_logs_req *r, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;
	size_t n = strlen(r->task_id);

	msgpack_packer_init(&pk, out, buf_pack);
	if (msgpack_pack_array(&pk, REQ_FIELDS) != 0 || msgpack_pack_str(&pk, n) != 0 ||
	    msgpack_pack_str_body(&pk, r->task_id, n) != 0 ||
	    msgpack_pack_uint8(&pk, r->q.stdout_) != 0 ||
	    msgpack_pack_uint8(&pk, r->q.stderr_) != 0 || msgpack_pack_int64(&pk, r->q.tail) != 0 ||
	    msgpack_pack_uint64(&pk, r->q.since_ns) != 0 ||
	    msgpack_pack_uint64(&pk, r->q.until_ns) != 0 ||
	    msgpack_pack_uint8(&pk, r->has_pos) != 0 || msgpack_pack_uint64(&pk, r->pos.ino) != 0 ||
	    msgpack_pack_uint64(&pk, r->pos.offset) != 0 ||
	    msgpack_pack_uint32(&pk, r->wait_ms) != 0)
		return oom(err);
	return 0;
}

static bool rd_flag(struct wire_reader *r, bool *out)
{
	uint64_t v;

	if (!wire_rd_uint(r, &v) || v > 1)
		return false;
	*out = v == 1;
	return true;
}

int task_logs_req_decode(const void *data, size_t len, struct task_logs_req *r,
			 struct shoal_err *err)
{
	struct wire_reader rd;
	const unsigned char *id;
	size_t id_len;
	uint64_t n, wait;

	memset(r, 0, sizeof(*r));
	wire_rd_init(&rd, data, len);
	if (!wire_rd_array(&rd, &n) || n != REQ_FIELDS ||
	    !wire_rd_str(&rd, sizeof(r->task_id) - 1, &id, &id_len) || id_len == 0 ||
	    !rd_flag(&rd, &r->q.stdout_) || !rd_flag(&rd, &r->q.stderr_) ||
	    !wire_rd_int(&rd, &r->q.tail) || r->q.tail < -1 || !wire_rd_uint(&rd, &r->q.since_ns) ||
	    !wire_rd_uint(&rd, &r->q.until_ns) || !rd_flag(&rd, &r->has_pos) ||
	    !wire_rd_uint(&rd, &r->pos.ino) || !wire_rd_uint(&rd, &r->pos.offset) ||
	    !wire_rd_uint(&rd, &wait) || wait > TASK_LOGS_MAX_WAIT_MS || !wire_rd_done(&rd))
		return shoal_errf(err, SHOAL_EPROTO, "malformed task logs request");
	for (size_t i = 0; i < id_len; i++)
		if (id[i] < 0x21 || id[i] > 0x7e)
			return shoal_errf(err, SHOAL_EPROTO, "malformed task logs request");
	memcpy(r->task_id, id, id_len);
	r->wait_ms = (uint32_t)wait;
	if (!r->q.stdout_ && !r->q.stderr_)
		return shoal_errf(err, SHOAL_EINVAL, "You must choose at least one stream");
	return 0;
}

static int page_encode(const struct task_logs_page *p, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, buf_pack);
	if (msgpack_pack_array(&pk, PAGE_FIELDS) != 0 ||
	    msgpack_pack_uint64(&pk, p->pos.ino) != 0 ||
	    msgpack_pack_uint64(&pk, p->pos.offset) != 0 || msgpack_pack_uint8(&pk, p->more) != 0 ||
	    msgpack_pack_uint8(&pk, p->ended) != 0 || msgpack_pack_bin(&pk, p->entries_len) != 0 ||
	    msgpack_pack_bin_body(&pk, p->entries, p->entries_len) != 0)
		return oom(err);
	return 0;
}

int task_logs_page_decode(const void *data, size_t len, struct task_logs_page *p,
			  struct shoal_err *err)
{
	struct wire_reader rd;
	const unsigned char *entries;
	uint64_t n;

	memset(p, 0, sizeof(*p));
	wire_rd_init(&rd, data, len);
	if (!wire_rd_array(&rd, &n) || n != PAGE_FIELDS || !wire_rd_uint(&rd, &p->pos.ino) ||
	    !wire_rd_uint(&rd, &p->pos.offset) || !rd_flag(&rd, &p->more) ||
	    !rd_flag(&rd, &p->ended) ||
	    !wire_rd_bin(&rd, RPC_MAX_BODY, &entries, &p->entries_len) || !wire_rd_done(&rd))
		return shoal_errf(err, SHOAL_EPROTO, "malformed task logs page");
	p->entries = entries;
	return 0;
}

int task_logs_next_entry(const struct task_logs_page *p, size_t *off, struct logfile_entry *e,
			 struct shoal_err *err)
{
	struct wire_reader rd;
	const unsigned char *text;
	uint64_t n, stream;

	if (*off >= p->entries_len)
		return 0;
	wire_rd_init(&rd, (const unsigned char *)p->entries + *off, p->entries_len - *off);
	if (!wire_rd_array(&rd, &n) || n != 3 || !wire_rd_uint(&rd, &stream) ||
	    (stream != LOGFILE_STDOUT && stream != LOGFILE_STDERR) ||
	    !wire_rd_uint(&rd, &e->time_ns) || !wire_rd_bin(&rd, ENTRY_TEXT_MAX, &text, &e->len))
		return shoal_errf(err, SHOAL_EPROTO, "malformed log entry in a task logs page");
	e->stream = (enum logfile_stream)stream;
	e->text = (const char *)text;
	*off += rd.pos;
	return 1;
}

/* ---- reading a page ---- */

struct collect {
	struct buf entries;
	size_t n;
	bool more;
	bool failed;
};

static int collect_entry(void *arg, const struct logfile_entry *e)
{
	struct collect *c = arg;
	msgpack_packer pk;

	msgpack_packer_init(&pk, &c->entries, buf_pack);
	if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_uint8(&pk, (uint8_t)e->stream) != 0 ||
	    msgpack_pack_uint64(&pk, e->time_ns) != 0 || msgpack_pack_bin(&pk, e->len) != 0 ||
	    msgpack_pack_bin_body(&pk, e->text, e->len) != 0) {
		c->failed = true;
		return 1;
	}
	c->n++;
	if (c->entries.len >= TASK_LOGS_PAGE_BYTES) {
		c->more = true;
		return 1;
	}
	return 0;
}

static const struct container *find_task_container(struct containers *cs, const char *task_id)
{
	for (size_t i = 0; i < ctr_count(cs); i++) {
		const struct container *c = ctr_at(cs, i);

		for (size_t k = 0; k < c->spec.n_labels; k++)
			if (strcmp(c->spec.labels[k].key, "com.docker.swarm.task.id") == 0 &&
			    strcmp(c->spec.labels[k].value, task_id) == 0)
				return c;
	}
	return NULL;
}

/* Still writing, or about to: later pages may find more. */
static bool live(const struct container *c)
{
	return c->state == CTR_CREATED || c->state == CTR_RUNNING;
}

/* Read the next page of @r from @c into @col; *@pos where it ended. */
static int read_page(const struct container *c, const struct task_logs_req *r, struct collect *col,
		     struct logfile_pos *pos, struct shoal_err *err)
{
	int rv;

	*pos = r->pos;
	if (r->has_pos)
		rv = logfile_read_from(c->log_path, &r->q, pos, collect_entry, col, err);
	else
		rv = logfile_read(c->log_path, &r->q, collect_entry, col, pos, err);
	if (rv == SHOAL_ENOTFOUND) {
		/* Nothing written yet: start at the beginning of the file to come. */
		memset(pos, 0, sizeof(*pos));
		rv = 0;
	}
	if (rv == 0 && col->failed)
		rv = oom(err);
	return rv;
}

/* Answer @r from @c's log with what there is now. */
static void answer(const struct container *c, const struct task_logs_req *r, bool gone,
		   task_logs_cb cb, void *arg)
{
	struct collect col;
	struct task_logs_page page;
	struct shoal_err err;
	int rv = 0;

	memset(&col, 0, sizeof(col));
	buf_init(&col.entries);
	memset(&page, 0, sizeof(page));
	page.pos = r->pos;
	if (!gone)
		rv = read_page(c, r, &col, &page.pos, &err);
	if (rv != 0) {
		cb(arg, rv, &err, NULL);
	} else {
		page.more = col.more;
		page.ended = gone || (!col.more && !live(c));
		page.entries = col.entries.data;
		page.entries_len = col.entries.len;
		cb(arg, 0, NULL, &page);
	}
	buf_free(&col.entries);
}

/* ---- waits ---- */

static void wait_closed(uv_handle_t *h)
{
	struct wait *w = h->data;
	struct task_logs *tl = w->tl;

	free(w);
	if (--tl->n_timers == 0 && tl->closing)
		free(tl);
}

static void wait_unlink(struct wait *w)
{
	struct wait **pp = &w->tl->waits;

	while (*pp != w)
		pp = &(*pp)->next;
	*pp = w->next;
}

/* Answer @w with what there is (or nothing, when closing) and free it. */
static void wait_finish(struct wait *w)
{
	struct task_logs *tl = w->tl;
	const struct container *c = NULL;
	struct shoal_err err;

	wait_unlink(w);
	if (w->token != 0)
		ctr_log_unwatch(tl->cs, w->token);
	w->token = 0;
	uv_timer_stop(&w->timer);
	if (!tl->closing && ctr_lookup(tl->cs, w->ctr_id, &c, NULL) != 0)
		c = NULL;
	if (c != NULL) {
		answer(c, &w->req, w->gone, w->cb, w->arg);
	} else if (tl->closing) {
		w->cb(w->arg, shoal_errf(&err, SHOAL_ESHUTDOWN, "the node is shutting down"), &err,
		      NULL);
	} else {
		struct task_logs_page page;

		memset(&page, 0, sizeof(page));
		page.pos = w->req.pos;
		page.ended = true;
		w->cb(w->arg, 0, NULL, &page);
	}
	uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void on_wait_timer(uv_timer_t *t)
{
	struct wait *w = t->data;
	struct task_logs *tl = w->tl;
	const struct container *c = NULL;
	struct collect col;
	struct logfile_pos pos;
	struct shoal_err err;
	uint64_t now = uv_now(tl->loop);
	bool keep;

	if (!w->gone && now < w->deadline && ctr_lookup(tl->cs, w->ctr_id, &c, NULL) == 0 &&
	    live(c)) {
		/* Woken by the watch: is there anything for this asker? */
		memset(&col, 0, sizeof(col));
		buf_init(&col.entries);
		keep = read_page(c, &w->req, &col, &pos, &err) == 0 && col.n == 0;
		buf_free(&col.entries);
		if (keep) {
			w->req.pos = pos; /* past what the query filtered out */
			uv_timer_start(&w->timer, on_wait_timer, w->deadline - now, 0);
			return;
		}
	}
	wait_finish(w);
}

static void on_append(void *arg, bool gone)
{
	struct wait *w = arg;

	if (gone) {
		w->token = 0; /* no more calls; the watch is over */
		w->gone = true;
	}
	uv_timer_start(&w->timer, on_wait_timer, 0, 0);
}

/* ---- serving ---- */

int task_logs_new(struct task_logs **out, uv_loop_t *loop, struct containers *cs,
		  struct shoal_err *err)
{
	struct task_logs *tl = calloc(1, sizeof(*tl));

	if (tl == NULL)
		return oom(err);
	tl->loop = loop;
	tl->cs = cs;
	*out = tl;
	return 0;
}

void task_logs_close(struct task_logs *tl)
{
	if (tl == NULL)
		return;
	tl->closing = true;
	while (tl->waits != NULL)
		wait_finish(tl->waits);
	if (tl->n_timers == 0)
		free(tl);
}

void task_logs_serve(struct task_logs *tl, const struct task_logs_req *r, task_logs_cb cb,
		     void *arg)
{
	const struct container *c;
	struct collect col;
	struct logfile_pos pos;
	struct shoal_err err;
	struct wait *w;
	int rv;

	if (tl->closing) {
		cb(arg, shoal_errf(&err, SHOAL_ESHUTDOWN, "the node is shutting down"), &err, NULL);
		return;
	}
	c = find_task_container(tl->cs, r->task_id);
	if (c == NULL) {
		cb(arg,
		   shoal_errf(&err, SHOAL_ENOTFOUND, "task %.64s has no container on this node",
			      r->task_id),
		   &err, NULL);
		return;
	}
	if (r->wait_ms == 0 || !live(c)) {
		answer(c, r, false, cb, arg);
		return;
	}
	/* Follow: answer now if there is something, else wait for it. */
	memset(&col, 0, sizeof(col));
	buf_init(&col.entries);
	rv = read_page(c, r, &col, &pos, &err);
	buf_free(&col.entries);
	if (rv != 0 || col.n > 0 || (w = calloc(1, sizeof(*w))) == NULL) {
		answer(c, r, false, cb, arg);
		return;
	}
	w->tl = tl;
	w->req = *r;
	w->req.has_pos = true;
	w->req.pos = pos; /* past entries the query filtered out */
	snprintf(w->ctr_id, sizeof(w->ctr_id), "%s", c->id);
	w->deadline = uv_now(tl->loop) + r->wait_ms;
	w->cb = cb;
	w->arg = arg;
	uv_timer_init(tl->loop, &w->timer);
	w->timer.data = w;
	tl->n_timers++;
	w->next = tl->waits;
	tl->waits = w;
	w->token = ctr_log_watch(tl->cs, c->id, on_append, w);
	uv_timer_start(&w->timer, on_wait_timer, r->wait_ms, 0);
}

/* ---- RPC ---- */

static void rpc_answer(void *arg, int status, const struct shoal_err *err,
		       const struct task_logs_page *page)
{
	struct rpc_call *call = arg;
	struct shoal_err e2;
	struct buf out;

	if (status != 0) {
		rpc_reply(call, status, err, NULL, 0);
		return;
	}
	buf_init(&out);
	if (page_encode(page, &out, &e2) != 0)
		rpc_reply(call, SHOAL_ENOMEM, &e2, NULL, 0);
	else
		rpc_reply(call, 0, NULL, out.data, out.len);
	buf_free(&out);
}

void task_logs_rpc(struct task_logs *tl, struct rpc_call *call, const void *body, size_t len)
{
	const struct stream_peer *p = rpc_call_peer(call);
	struct task_logs_req r;
	struct shoal_err err;
	int rv;

	if (p == NULL || !p->authenticated || p->cert.role != CERT_ROLE_MANAGER) {
		rpc_reply(call, shoal_errf(&err, SHOAL_ESTATE, "only managers read task logs"),
			  &err, NULL, 0);
		return;
	}
	if (tl == NULL) {
		rpc_reply(call, shoal_errf(&err, SHOAL_ESHUTDOWN, "the node is shutting down"),
			  &err, NULL, 0);
		return;
	}
	rv = task_logs_req_decode(body, len, &r, &err);
	if (rv != 0) {
		rpc_reply(call, rv, &err, NULL, 0);
		return;
	}
	task_logs_serve(tl, &r, rpc_answer, call);
}
