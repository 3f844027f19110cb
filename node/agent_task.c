/* A task's container: its name, labels and spec, built from the task's ContainerSpec. */
#include "node/agent_task.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

const char *agent_task_service_name(const struct task_rec *t)
{
	const char *name = schema_map_get(&t->labels, AGENT_LABEL_SERVICE_NAME);

	if (name != NULL && name[0] != '\0')
		return name;
	return t->service_id != NULL ? t->service_id : "";
}

int agent_task_name(const struct task_rec *t, const char *node_id, char *out, size_t len,
		    struct shoal_err *err)
{
	const char *svc = agent_task_service_name(t);
	int n;

	if (t->meta.id == NULL || t->meta.id[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL, "the task has no id");
	if (t->slot > 0)
		n = snprintf(out, len, "%s.%" PRIu64 ".%s", svc, t->slot, t->meta.id);
	else
		n = snprintf(out, len, "%s.%s.%s", svc, node_id != NULL ? node_id : "", t->meta.id);
	if (n < 0 || (size_t)n >= len)
		return shoal_errf(err, SHOAL_EINVAL,
				  "the name of task %s is longer than %zu bytes: shorten the "
				  "service name",
				  t->meta.id, len - 1);
	return 0;
}

static int dup_str(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL || s[0] == '\0')
		return 0;
	*out = strdup(s);
	return *out == NULL ? SHOAL_ENOMEM : 0;
}

static int push_list(const struct schema_strlist *src, struct oci_strlist *dst)
{
	for (size_t i = 0; i < src->n; i++)
		if (oci_strlist_push(dst, src->items[i]) != 0)
			return SHOAL_ENOMEM;
	return 0;
}

/* One label into @s->labels (room for it was allocated); a key already there
 * gets the new value. */
static int label_set(struct ctr_spec *s, const char *key, const char *value)
{
	char *v;

	if (value == NULL)
		value = "";
	for (size_t i = 0; i < s->n_labels; i++) {
		if (strcmp(s->labels[i].key, key) != 0)
			continue;
		if ((v = strdup(value)) == NULL)
			return SHOAL_ENOMEM;
		free(s->labels[i].value);
		s->labels[i].value = v;
		return 0;
	}
	s->labels[s->n_labels].key = strdup(key);
	s->labels[s->n_labels].value = strdup(value);
	s->n_labels++; /* counted even when NULL: ctr_spec_free() frees both */
	if (s->labels[s->n_labels - 1].key == NULL || s->labels[s->n_labels - 1].value == NULL)
		return SHOAL_ENOMEM;
	return 0;
}

static int labels_build(const struct task_rec *t, const char *node_id, const char *name,
			struct ctr_spec *s)
{
	const struct schema_map *user = &t->spec.container_spec.labels;
	int rv = 0;

	s->labels = calloc(user->n + 5, sizeof(*s->labels));
	if (s->labels == NULL)
		return SHOAL_ENOMEM;
	for (size_t i = 0; i < user->n && rv == 0; i++)
		rv = label_set(s, user->items[i].key, user->items[i].value);
	if (rv == 0)
		rv = label_set(s, AGENT_LABEL_TASK_ID, t->meta.id);
	if (rv == 0)
		rv = label_set(s, AGENT_LABEL_TASK_NAME, name);
	if (rv == 0)
		rv = label_set(s, AGENT_LABEL_SERVICE_ID, t->service_id);
	if (rv == 0)
		rv = label_set(s, AGENT_LABEL_SERVICE_NAME, agent_task_service_name(t));
	if (rv == 0)
		rv = label_set(s, AGENT_LABEL_NODE_ID, node_id);
	if (rv == 0)
		qsort(s->labels, s->n_labels, sizeof(*s->labels), oci_label_cmp);
	return rv;
}

static int mounts_build(const struct task_rec *t, struct ctr_spec *s, struct shoal_err *err)
{
	const struct schema_list *l = &t->spec.container_spec.mounts;
	const struct svc_mount *m = l->items;

	if (l->n == 0)
		return 0;
	if (l->n > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_EINVAL, "the task has more than %u mounts",
				  CTR_SPEC_MAX_ITEMS);
	s->mounts = calloc(l->n, sizeof(*s->mounts));
	if (s->mounts == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		if (m[i].type != NULL && m[i].type[0] != '\0' && strcmp(m[i].type, "bind") != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "mount type \"%s\" is not supported by shoal: only bind",
					  m[i].type);
		if (m[i].source == NULL || m[i].source[0] != '/' || m[i].target == NULL ||
		    m[i].target[0] != '/')
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid mount config: a bind mount needs an absolute "
					  "source and target");
		s->mounts[i].readonly = m[i].read_only;
		s->n_mounts++;
		if ((s->mounts[i].source = strdup(m[i].source)) == NULL ||
		    (s->mounts[i].target = strdup(m[i].target)) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return 0;
}

int agent_task_spec(const struct task_rec *t, const char *node_id, struct ctr_spec *out,
		    struct shoal_err *err)
{
	const __typeof__(t->spec.container_spec) *cs = &t->spec.container_spec;
	char name[CTR_NAME_MAX + 1];
	int rv;

	memset(out, 0, sizeof(*out));
	out->stop_timeout = -1;
	if (cs->image == NULL || cs->image[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL, "the task's ContainerSpec has no Image");
	if (cs->command.n > CTR_SPEC_MAX_ITEMS || cs->args.n > CTR_SPEC_MAX_ITEMS ||
	    cs->env.n > CTR_SPEC_MAX_ITEMS || cs->labels.n > CTR_SPEC_MAX_ITEMS - 5 ||
	    cs->healthcheck.test.n > CTR_SPEC_MAX_ITEMS)
		return shoal_errf(err, SHOAL_EINVAL,
				  "the task's ContainerSpec has a list of more than %u items",
				  CTR_SPEC_MAX_ITEMS);
	rv = agent_task_name(t, node_id, name, sizeof(name), err);
	if (rv != 0)
		return rv;
	rv = mounts_build(t, out, err);
	if (rv != 0)
		goto err;
	if (dup_str(name, &out->name) != 0 || dup_str(cs->image, &out->image) != 0 ||
	    dup_str(cs->dir, &out->workdir) != 0 || dup_str(cs->user, &out->user) != 0 ||
	    dup_str(cs->hostname, &out->hostname) != 0 ||
	    dup_str(cs->stop_signal, &out->stop_signal) != 0 ||
	    push_list(&cs->command, &out->entrypoint) != 0 ||
	    push_list(&cs->args, &out->cmd) != 0 || push_list(&cs->env, &out->env) != 0 ||
	    push_list(&cs->healthcheck.test, &out->health.test) != 0 ||
	    labels_build(t, node_id, name, out) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	out->entrypoint_set = cs->command.n > 0;
	if (cs->stop_grace_period > 0)
		out->stop_timeout = (cs->stop_grace_period + NS_PER_S - 1) / NS_PER_S;
	out->health.interval_ns = cs->healthcheck.interval;
	out->health.timeout_ns = cs->healthcheck.timeout;
	out->health.start_period_ns = cs->healthcheck.start_period;
	out->health.retries =
	    cs->healthcheck.retries > INT32_MAX ? INT32_MAX : (int64_t)cs->healthcheck.retries;
	out->readonly_rootfs = cs->read_only;
	out->memory = t->spec.resources.limits.memory_bytes;
	out->nano_cpus = t->spec.resources.limits.nano_cpus;
	out->pids_limit = t->spec.resources.limits.pids;
	return 0;

err:
	ctr_spec_free(out);
	memset(out, 0, sizeof(*out));
	return rv;
}

const char *agent_ctr_task_id(const struct container *c)
{
	for (size_t i = 0; i < c->spec.n_labels; i++)
		if (strcmp(c->spec.labels[i].key, AGENT_LABEL_TASK_ID) == 0)
			return c->spec.labels[i].value;
	return NULL;
}
