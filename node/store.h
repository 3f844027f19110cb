/* The cluster state: tables of records in memory, changed only as the Raft FSM. */
#ifndef SHOAL_NODE_STORE_H
#define SHOAL_NODE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/records.h"
#include "raft/fsm.h"

#define STORE_SNAPSHOT_FORMAT 1		 /* the snapshot encoding written and read */
#define STORE_MAX_RECORDS     (1u << 22) /* records of one table in a snapshot */

struct store;

/* Create an empty store into *@out. Returns 0 or SHOAL_ENOMEM. */
int store_new(struct store **out, struct shoal_err *err);
/* Free @s and every record in it; accepts NULL. */
void store_free(struct store *s);

/* Fill @fsm so raft drives @s (which must outlive raft):
 *
 * apply decodes a command (node/command.h) and, if every op's expect_version
 * holds against the current state, applies all of its ops; otherwise none.
 * Each written record gets Version.Index = the entry's index, and an updated
 * one keeps its CreatedAt. The result handed to the proposer is a status code
 * (read it with store_result_code()): 0, SHOAL_EPROTO or SHOAL_ETOOBIG (the
 * entry does not decode: a no-op), SHOAL_ECONFLICT (wrong version, record exists, or a second
 * record in a singleton table), SHOAL_ENOTFOUND (the record to update or delete
 * is missing). apply reads no clock and no randomness, so replicas agree; it
 * only fails raft on SHOAL_ENOMEM, leaving the state untouched for a retry.
 *
 * snapshot encodes every table (records in id order) and the last index; restore
 * decodes a whole snapshot before swapping it in, and on failure returns
 * non-zero leaving the state as it was. */
void store_fsm(struct store *s, struct consensus_fsm *fsm);

/* The status code carried by an apply result: 0 or a negative SHOAL_E* code. */
int store_result_code(void *result);

/* Index of the last applied entry (or of the restored snapshot); 0 when empty. */
uint64_t store_last_index(const struct store *s);

/* Records returned below are owned by the store and stay valid until the next
 * apply or restore; never change them. Iteration is in id order. */
size_t store_count(const struct store *s, enum record_table t);
const void *store_at(const struct store *s, enum record_table t, size_t i);
/* The record with exactly this id, or NULL. */
const void *store_get(const struct store *s, enum record_table t, const char *id);

/* The swarm, or NULL before `swarm init` was committed. */
const struct cluster_rec *store_cluster(const struct store *s);

const struct node_rec *store_node_get(const struct store *s, const char *id);
size_t store_node_count(const struct store *s);
const struct node_rec *store_node_at(const struct store *s, size_t i);

/* The name a record is found by (NULL: none); it may be built in @buf. */
#define STORE_NAME_MAX 256
typedef const char *(*store_name_fn)(const struct store *s, const void *rec, char *buf, size_t len);

/* Resolve @ref in @table like Docker: an exact id, else the record whose
 * @name_of is @ref, else a unique id prefix. Returns 0 with *@out set,
 * SHOAL_ENOTFOUND ("<kind> X not found") or SHOAL_EINVAL ("<kind> X is
 * ambiguous (2 matches found)"). */
int store_find(const struct store *s, enum record_table table, const char *ref,
	       store_name_fn name_of, const void **out, struct shoal_err *err);

/* Resolve @ref like Docker: an exact id, else a node named @ref (Spec.Name, or
 * the hostname when that is empty), else a unique id prefix. Returns 0 with
 * *@out set, SHOAL_ENOTFOUND ("node X not found") or SHOAL_EINVAL ("node X is
 * ambiguous (2 matches found)"). */
int store_node_find(const struct store *s, const char *ref, const struct node_rec **out,
		    struct shoal_err *err);

/* Called after each successful apply, once per op, with the op's table and id
 * and the entry's index; after a restore, once per table with @id NULL. It runs
 * inside raft's apply: read the store, do not block, do not (un)watch. */
typedef void (*store_watch_fn)(void *arg, enum record_table table, const char *id, uint64_t index);

/* Add a watcher. Returns 0 or SHOAL_ENOMEM. */
int store_watch(struct store *s, store_watch_fn fn, void *arg, struct shoal_err *err);
/* Remove the watcher added with this @fn and @arg, if any. */
void store_unwatch(struct store *s, store_watch_fn fn, void *arg);

#endif
