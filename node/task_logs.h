/* A node serves the logs of its tasks' containers a page at a time, to the
 * managers that gather a service's logs (node/api_svc_logs.h). */
#ifndef SHOAL_NODE_TASK_LOGS_H
#define SHOAL_NODE_TASK_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "net/rpc.h"
#include "runtime/container.h"
#include "runtime/logfile.h"

/* A page is stateless on the serving node: the asker keeps the position.
 *
 * - The first page (no position) reads the container's log as
 *   GET /containers/{id}/logs does (streams, tail, since, until); later
 *   pages go on from the position the last one ended at (logfile_read_from,
 *   which survives rotations), ignoring tail.
 * - A page holds at most TASK_LOGS_PAGE_BYTES of text; "more" says it
 *   stopped there, so the asker asks again at once.
 * - With @wait_ms, a page that would be empty while the container runs waits
 *   up to that long for new entries (a long poll), so following costs one
 *   round trip per burst of output, not a poll per interval.
 * - "ended" says the container is not running (or is gone) and everything it
 *   wrote up to the position has been read: nothing more will come.
 *
 * The container is the one labelled com.docker.swarm.task.id=<task id>; a
 * task with none here (never started, or removed) is SHOAL_ENOTFOUND.
 *
 * On the wire (RPC method "task_logs", served to managers only), msgpack:
 *   request  [task id, stdout, stderr, tail, since ns, until ns,
 *             has position, position inode, position offset, wait ms]
 *   response [position inode, position offset, more, ended,
 *             [[stream (1|2), time ns, text (bin)], ...]] */

#define TASK_LOGS_PAGE_BYTES  (256u << 10)
#define TASK_LOGS_MAX_WAIT_MS 30000u

struct task_logs_req {
	char task_id[64];
	struct logfile_query q;
	bool has_pos;
	struct logfile_pos pos;
	uint32_t wait_ms; /* 0 ... TASK_LOGS_MAX_WAIT_MS */
};

/* One page: @entries is the response's encoded entry array (see above),
 * decoded with task_logs_next_entry(). */
struct task_logs_page {
	struct logfile_pos pos;
	bool more;
	bool ended;
	const void *entries; /* valid during the callback only */
	size_t entries_len;
};

int task_logs_req_encode(const struct task_logs_req *r, struct buf *out, struct shoal_err *err);
/* Decode untrusted bytes; SHOAL_EPROTO with the reason. */
int task_logs_req_decode(const void *data, size_t len, struct task_logs_req *r,
			 struct shoal_err *err);
/* Decode a response (untrusted bytes); @p->entries points into @data. */
int task_logs_page_decode(const void *data, size_t len, struct task_logs_page *p,
			  struct shoal_err *err);
/* Walk @p's entries: *@off starts at 0; returns 1 with *@e filled (text
 * pointing into the page), 0 at the end, SHOAL_EPROTO on bad bytes. */
int task_logs_next_entry(const struct task_logs_page *p, size_t *off, struct logfile_entry *e,
			 struct shoal_err *err);

struct task_logs;

/* @cs must outlive the object. */
int task_logs_new(struct task_logs **out, uv_loop_t *loop, struct containers *cs,
		  struct shoal_err *err);
/* Answer every waiting page now and refuse new ones (SHOAL_ESHUTDOWN); the
 * memory goes once the waits' timers have closed. Accepts NULL. */
void task_logs_close(struct task_logs *tl);

/* Serve @r: @cb once, from the loop or from inside this call, with status 0
 * and the page, or an error (SHOAL_ENOTFOUND: no container for the task;
 * SHOAL_EINVAL; SHOAL_EIO; SHOAL_ESHUTDOWN). */
typedef void (*task_logs_cb)(void *arg, int status, const struct shoal_err *err,
			     const struct task_logs_page *page);
void task_logs_serve(struct task_logs *tl, const struct task_logs_req *r, task_logs_cb cb,
		     void *arg);

/* The RPC method "task_logs" (struct rpc_method's fn, @arg unused): @tl is
 * passed through task_logs_rpc_method()'s closure. Only a manager's
 * certificate may call it. */
void task_logs_rpc(struct task_logs *tl, struct rpc_call *call, const void *body, size_t len);

#endif
