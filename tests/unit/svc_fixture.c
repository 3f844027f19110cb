/* The store fixture of tests/unit/svc_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/fsm.h"
#include "tests/unit/svc_fixture.h"

char *fx_strdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(store_new(&f->s, NULL), 0);
	return f;
}

void fx_free(struct fx *f)
{
	store_free(f->s);
	free(f);
}

void fx_apply(struct fx *f, struct command *cmd)
{
	struct consensus_fsm fsm;
	void *buf, *result;
	size_t len;

	assert_int_equal(command_encode(cmd, &buf, &len, NULL), 0);
	command_free(cmd);
	store_fsm(f->s, &fsm);
	assert_int_equal(fsm.apply(fsm.arg, ++f->index, buf, len, &result), 0);
	assert_int_equal(store_result_code(result), 0);
	free(buf);
}

bool fx_node_up(void *arg, const char *id)
{
	struct fx *f = arg;

	for (size_t i = 0; i < 8 && f->down[i] != NULL; i++)
		if (strcmp(f->down[i], id) == 0)
			return false;
	return true;
}

void fx_add_node(struct fx *f, const char *id, enum node_availability av, const char *labels)
{
	struct command cmd;
	struct node_rec n;
	char buf[128], *save = NULL;

	command_init(&cmd);
	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.meta.id = fx_strdup(id);
	n.description.hostname = fx_strdup(id);
	n.description.platform.os = fx_strdup("linux");
	n.description.platform.architecture = fx_strdup("x86_64");
	n.description.resources.nano_cpus = 2 * SEC;
	n.description.resources.memory_bytes = 1ll << 30;
	n.status.state = NODE_STATE_READY;
	n.spec.availability = av;
	snprintf(buf, sizeof(buf), "%s", labels != NULL ? labels : "");
	for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		*eq = '\0';
		assert_int_equal(schema_map_set(&n.spec.labels, kv, eq + 1, NULL), 0);
	}
	assert_int_equal(command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, &n, NULL), 0);
	node_rec_free(&n);
	fx_apply(f, &cmd);
}

const struct task_rec *fx_task(struct fx *f, const char *id)
{
	const struct task_rec *t = store_get(f->s, RECORD_TASKS, id);

	assert_non_null(t);
	return t;
}

void fx_task_spec_default(struct task_rec *t, const char *image)
{
	struct service_rec s;

	assert_int_equal(service_rec_defaults(&s, NULL), 0);
	s.spec.task_template.container_spec.image = fx_strdup(image);
	schema_free(&svc_task_spec_schema, &t->spec);
	assert_int_equal(schema_copy(&svc_task_spec_schema, &t->spec, &s.spec.task_template, NULL),
			 0);
	service_rec_free(&s);
}

void fx_add_task(struct fx *f, const char *id, const char *svc, uint64_t slot, const char *node,
		 enum task_state st, enum task_state desired, int64_t created,
		 void (*tweak)(struct task_rec *))
{
	struct command cmd;
	struct task_rec t;

	command_init(&cmd);
	assert_int_equal(task_rec_defaults(&t, NULL), 0);
	t.meta.id = fx_strdup(id);
	t.meta.created_at = created;
	t.service_id = fx_strdup(svc);
	t.slot = slot;
	t.node_id = node != NULL ? fx_strdup(node) : NULL;
	t.status.state = st;
	t.status.timestamp = created;
	t.desired_state = desired;
	t.spec.restart_policy.condition = fx_strdup("any");
	t.spec.restart_policy.delay = 5 * SEC;
	if (tweak != NULL)
		tweak(&t);
	assert_int_equal(command_put(&cmd, RECORD_TASKS, COMMAND_EXPECT_ANY, &t, NULL), 0);
	task_rec_free(&t);
	fx_apply(f, &cmd);
}

const struct command_op *fx_op_for(const struct command *cmd, const char *id)
{
	for (size_t i = 0; i < cmd->n_ops; i++)
		if (strcmp(cmd->ops[i].id, id) == 0)
			return &cmd->ops[i];
	return NULL;
}

const struct task_rec *fx_put_for(const struct command *cmd, const char *id)
{
	const struct command_op *op = fx_op_for(cmd, id);

	assert_non_null(op);
	assert_int_equal(op->kind, COMMAND_PUT);
	assert_int_equal(op->table, RECORD_TASKS);
	return op->record;
}

void fx_assert_same_bytes(const struct command *a, const struct command *b)
{
	void *x, *y;
	size_t xlen, ylen;

	assert_int_equal(command_encode(a, &x, &xlen, NULL), 0);
	assert_int_equal(command_encode(b, &y, &ylen, NULL), 0);
	assert_int_equal(xlen, ylen);
	assert_memory_equal(x, y, xlen);
	free(x);
	free(y);
}
