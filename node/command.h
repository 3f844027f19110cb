/* Raft commands: a batch of record writes that the store applies all or not at all. */
#ifndef SHOAL_NODE_COMMAND_H
#define SHOAL_NODE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "node/records.h"

#define COMMAND_VERSION	   1		 /* the encoding written and the only one read */
#define COMMAND_MAX_OPS	   10000u	 /* operations in one command */
#define COMMAND_MAX_SIZE   (16u << 20)	 /* bytes of one encoded command */
#define COMMAND_MAX_ID	   64u		 /* bytes of a record id */
#define COMMAND_EXPECT_ANY UINT64_MAX	 /* expect_version: write unconditionally */
#define COMMAND_EXPECT_NEW ((uint64_t)0) /* expect_version: the record must not exist */

enum command_op_kind { COMMAND_PUT = 1, COMMAND_DELETE = 2 };

/* One write. @expect_version is COMMAND_EXPECT_ANY, COMMAND_EXPECT_NEW, or the
 * version the record must have now (the API's ?version=, optimistic concurrency).
 * A PUT replaces the whole record; the store sets its Version.Index and keeps
 * its CreatedAt if it exists. A DELETE needs the record to exist. */
struct command_op {
	enum command_op_kind kind;
	enum record_table table;
	uint64_t expect_version;
	char *id;     /* owned */
	void *record; /* PUT: owned record of the table's type, meta.id == id; DELETE: NULL */
};

/* Ops touch distinct records; between 1 and COMMAND_MAX_OPS of them. */
struct command {
	struct command_op *ops;
	size_t n_ops;
	size_t cap; /* room in @ops */
};

/* Start an empty command. */
void command_init(struct command *cmd);

/* Release what @cmd holds and make it empty; accepts an empty command. */
void command_free(struct command *cmd);

/* Append a PUT of a deep copy of @rec (a record of table @t) under its meta.id.
 * Returns 0, SHOAL_EINVAL (bad id, or too many ops) or SHOAL_ENOMEM. */
int command_put(struct command *cmd, enum record_table t, uint64_t expect_version, const void *rec,
		struct shoal_err *err);

/* Append a DELETE of record @id of table @t. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM. */
int command_delete(struct command *cmd, enum record_table t, uint64_t expect_version,
		   const char *id, struct shoal_err *err);

/* True if @id can key a record: 1 to COMMAND_MAX_ID characters of [0-9a-z]. */
bool command_id_valid(const char *id);

/* Encode @cmd into a malloc'd buffer *@buf of *@len bytes (copy it into a
 * raft_malloc'd one to propose it). Returns 0, SHOAL_EINVAL if @cmd breaks a
 * rule above, SHOAL_ETOOBIG past COMMAND_MAX_SIZE, or SHOAL_ENOMEM. */
int command_encode(const struct command *cmd, void **buf, size_t *len, struct shoal_err *err);

/* Decode untrusted bytes into @cmd, which then owns everything in it: free
 * with command_free(). Returns 0, SHOAL_EPROTO (or SHOAL_ETOOBIG) with the
 * reason in @err, or SHOAL_ENOMEM; on error @cmd is empty. */
int command_decode(const void *buf, size_t len, struct command *cmd, struct shoal_err *err);

#endif
