/* GET /services/{id}/logs and GET /tasks/{id}/logs: a manager gathers the
 * logs of a service's tasks from the nodes they ran on. */
#ifndef SHOAL_NODE_API_SVC_LOGS_H
#define SHOAL_NODE_API_SVC_LOGS_H

#include <uv.h>

#include "lib/err.h"
#include "node/http.h"
#include "node/store.h"
#include "node/swarm.h"
#include "node/task_logs.h"

/* One stream per request, Docker's multiplexed frames (as container logs),
 * each entry prefixed, as Docker does, with the time when timestamps are
 * asked for, then with details=true its context
 * "com.docker.swarm.node.id=N,com.docker.swarm.service.id=S,com.docker.swarm.task.id=T "
 * (the docker CLI asks for details and builds its "web.1.abc@node | "
 * prefix from them).
 *
 * Every task of the service that was given a node is a source, read a page
 * at a time (node/task_logs.h): from this node's containers directly, from
 * another node over RPC "task_logs" to its cluster address. The sources are
 * read side by side; a source is done once its page is not "more" (without
 * follow) or once its container has ended (with follow: pages are long
 * polls of SVC_LOGS_WAIT_MS). A task with no container, or on a node that
 * cannot be reached, gives nothing (logged at debug level). Without follow
 * the stream ends when every source is done. With follow it also takes in
 * tasks that start later (checked every SVC_LOGS_TICK_MS), and ends when the
 * service is gone and its sources are done, or when the client goes away
 * (seen at the next page or tick). */

#define SVC_LOGS_WAIT_MS 5000
#define SVC_LOGS_TICK_MS 1000

struct svc_logs;

/* @swarm and @local (this node's task logs) must outlive it. */
int svc_logs_new(struct svc_logs **out, uv_loop_t *loop, struct swarm *swarm,
		 struct task_logs *local, struct shoal_err *err);
/* End every stream (close their RPC clients); no new ones. The memory goes
 * once the last stream's calls have come back. Accepts NULL. */
void svc_logs_close(struct svc_logs *sl);

/* Serve the logs of the service (@task false) or task (@task true) @ref of
 * the manager's store @st. 404 for an unknown one, 400 for a bad query;
 * otherwise 200 and the stream. Finishes @res exactly once, now or later. */
void svc_logs_serve(struct svc_logs *sl, const struct store *st, const char *ref, bool task,
		    struct http_request *req, struct http_response *res);

#endif
