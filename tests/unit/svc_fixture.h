/* Test fixture shared by the orchestrator and scheduler tests: a store built from real commands,
 * with nodes and tasks written the way the Raft log would write them. Every helper fails the
 * running cmocka test on an error. */
#ifndef SHOAL_TESTS_UNIT_SVC_FIXTURE_H
#define SHOAL_TESTS_UNIT_SVC_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/command.h"
#include "node/records_svc.h"
#include "node/store.h"

#define SEC 1000000000ll

struct fx {
	struct store *s;
	uint64_t index;	     /* of the last command applied */
	const char *down[8]; /* nodes fx_node_up() calls down */
	unsigned long ids;   /* for tests that hand out task ids */
};

/* strdup() that cannot return NULL. */
char *fx_strdup(const char *s);

/* An empty store; free with fx_free(). */
struct fx *fx_new(void);
void fx_free(struct fx *f);

/* Encode @cmd, free it and apply it; the store must accept it. */
void fx_apply(struct fx *f, struct command *cmd);

/* A node_up callback (@arg is the struct fx): every node but those in f->down is up. */
bool fx_node_up(void *arg, const char *id);

/* A ready, active worker with 2 CPUs and 1 GiB; labels "k=v,k2=v2" or NULL. */
void fx_add_node(struct fx *f, const char *id, enum node_availability av, const char *labels);

/* @t's Spec becomes the TaskTemplate of service_rec_defaults() with @image:
 * a task clean for a service made that way (a tweak for fx_add_task). */
void fx_task_spec_default(struct task_rec *t, const char *image);

/* Write a task (restart condition "any", delay 5 s); @tweak, if not NULL, edits it first. */
void fx_add_task(struct fx *f, const char *id, const char *svc, uint64_t slot, const char *node,
		 enum task_state st, enum task_state desired, int64_t created,
		 void (*tweak)(struct task_rec *));

/* The stored task @id, which must exist. */
const struct task_rec *fx_task(struct fx *f, const char *id);

/* The op of @cmd on record @id, or NULL. */
const struct command_op *fx_op_for(const struct command *cmd, const char *id);

/* The task @cmd puts as @id; the op must exist and be a put of a task. */
const struct task_rec *fx_put_for(const struct command *cmd, const char *id);

/* Fail the test unless @a and @b encode to the same bytes. */
void fx_assert_same_bytes(const struct command *a, const struct command *b);

#endif
