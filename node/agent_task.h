/* A task's container: its name, labels and spec, built from the task's ContainerSpec. */
#ifndef SHOAL_NODE_AGENT_TASK_H
#define SHOAL_NODE_AGENT_TASK_H

#include <stddef.h>

#include "lib/err.h"
#include "node/records_svc.h"
#include "runtime/container.h"
#include "runtime/ctr_spec.h"

/* The labels Docker puts on a task's container. */
#define AGENT_LABEL_TASK_ID	 "com.docker.swarm.task.id"
#define AGENT_LABEL_TASK_NAME	 "com.docker.swarm.task.name"
#define AGENT_LABEL_SERVICE_ID	 "com.docker.swarm.service.id"
#define AGENT_LABEL_SERVICE_NAME "com.docker.swarm.service.name"
#define AGENT_LABEL_NODE_ID	 "com.docker.swarm.node.id"

/* The service name of @t: its label com.docker.swarm.service.name (the
 * leader sets it on the tasks it makes), else its service id. */
const char *agent_task_service_name(const struct task_rec *t);

/* Docker's task (and container) name: "<service name>.<slot>.<task id>" for a
 * replicated task (slot > 0), "<service name>.<node id>.<task id>" for a
 * global one. Returns 0, or SHOAL_EINVAL when the task has no id or the name
 * would not fit in @len bytes. */
int agent_task_name(const struct task_rec *t, const char *node_id, char *out, size_t len,
		    struct shoal_err *err);

/* Fill @out (overwritten, not freed) with the container spec of @t on node
 * @node_id: name, image, Command -> Entrypoint, Args -> Cmd, Env, Dir, User,
 * Hostname, the ContainerSpec's labels plus Docker's swarm labels, bind
 * Mounts, ReadOnly, StopSignal, StopGracePeriod (rounded up to seconds),
 * Healthcheck, Limits. Returns 0, SHOAL_EINVAL with a sentence (no image, a
 * mount that is not a bind mount or has relative paths, too many items) or
 * SHOAL_ENOMEM; on failure @out holds nothing to free. */
int agent_task_spec(const struct task_rec *t, const char *node_id, struct ctr_spec *out,
		    struct shoal_err *err);

/* The task id container @c was made for (its label com.docker.swarm.task.id),
 * or NULL when it is not a task's container. */
const char *agent_ctr_task_id(const struct container *c);

#endif
