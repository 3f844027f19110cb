/* Raft commands: building, the msgpack encoding, and a decoder for untrusted bytes.
 *
 * Encoding: {"v": 1, "ops": [{"op": "put"|"delete", "table": "nodes", "expect": N,
 * "id": "...", "record": {record map}}, ...]}. Unknown keys are skipped, so
 * later versions may add some; the table's schema encodes the record. */
#include "node/command.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [COMMAND_PUT] = "put",
    [COMMAND_DELETE] = "delete",
};

void command_init(struct command *cmd)
{
	cmd->ops = NULL;
	cmd->n_ops = 0;
	cmd->cap = 0;
}

void command_free(struct command *cmd)
{
	for (size_t i = 0; i < cmd->n_ops; i++) {
		free(cmd->ops[i].id);
		record_delete(cmd->ops[i].table, cmd->ops[i].record);
	}
	free(cmd->ops);
	command_init(cmd);
}

static bool id_valid(const char *id, size_t len)
{
	if (len == 0 || len > COMMAND_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z')))
			return false;
	return true;
}

bool command_id_valid(const char *id)
{
	return id != NULL && id_valid(id, strnlen(id, COMMAND_MAX_ID + 1));
}

/* Append an op taking ownership of @id and @record (freed on error). */
static int append(struct command *cmd, enum command_op_kind kind, enum record_table t,
		  uint64_t expect, char *id, void *record, struct shoal_err *err)
{
	struct command_op *ops;

	if (cmd->n_ops >= COMMAND_MAX_OPS) {
		free(id);
		record_delete(t, record);
		return shoal_errf(err, SHOAL_EINVAL, "a command holds at most %u operations",
				  COMMAND_MAX_OPS);
	}
	if (cmd->n_ops == cmd->cap) {
		size_t cap = cmd->cap > 0 ? 2 * cmd->cap : 4;
		ops = realloc(cmd->ops, cap * sizeof(*ops));
		if (ops == NULL) {
			free(id);
			record_delete(t, record);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		}
		cmd->ops = ops;
		cmd->cap = cap;
	}
	cmd->ops[cmd->n_ops++] = (struct command_op){kind, t, expect, id, record};
	return 0;
}

int command_put(struct command *cmd, enum record_table t, uint64_t expect_version, const void *rec,
		struct shoal_err *err)
{
	const char *id = record_meta(rec)->id;
	const struct schema *s;
	void *copy;
	char *id_copy;

	PRE(t < RECORD_TABLE_COUNT);
	s = record_tables[t].schema;
	if (!command_id_valid(id))
		return shoal_errf(err, SHOAL_EINVAL, "%s id \"%.64s\" is not 1 to %u of [0-9a-z]",
				  record_tables[t].kind, id != NULL ? id : "", COMMAND_MAX_ID);
	if ((copy = malloc(s->size)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (schema_copy(s, copy, rec, err) != 0) {
		free(copy);
		return SHOAL_ENOMEM;
	}
	if ((id_copy = strdup(id)) == NULL) {
		record_delete(t, copy);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	return append(cmd, COMMAND_PUT, t, expect_version, id_copy, copy, err);
}

int command_delete(struct command *cmd, enum record_table t, uint64_t expect_version,
		   const char *id, struct shoal_err *err)
{
	char *id_copy;

	PRE(t < RECORD_TABLE_COUNT);
	if (!command_id_valid(id))
		return shoal_errf(err, SHOAL_EINVAL, "%s id \"%.64s\" is not 1 to %u of [0-9a-z]",
				  record_tables[t].kind, id != NULL ? id : "", COMMAND_MAX_ID);
	if ((id_copy = strdup(id)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return append(cmd, COMMAND_DELETE, t, expect_version, id_copy, NULL, err);
}

static int op_cmp(const void *a, const void *b)
{
	const struct command_op *x = *(const struct command_op *const *)a;
	const struct command_op *y = *(const struct command_op *const *)b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* The rules every command keeps: a sane number of ops touching distinct records,
 * and PUTs carrying a record under the op's id. Returns 0, @code, or SHOAL_ENOMEM. */
static int check(const struct command *cmd, int code, struct shoal_err *err)
{
	const struct command_op **sorted;
	int rv = 0;

	if (cmd->n_ops == 0 || cmd->n_ops > COMMAND_MAX_OPS)
		return shoal_errf(err, code, "a command holds 1 to %u operations, not %zu",
				  COMMAND_MAX_OPS, cmd->n_ops);
	for (size_t i = 0; i < cmd->n_ops; i++) {
		const struct command_op *op = &cmd->ops[i];
		bool put = op->kind == COMMAND_PUT;

		PRE(op->kind == COMMAND_PUT || op->kind == COMMAND_DELETE);
		PRE(op->table < RECORD_TABLE_COUNT);
		if (!command_id_valid(op->id))
			return shoal_errf(err, code, "op %zu: the id is not 1 to %u of [0-9a-z]", i,
					  COMMAND_MAX_ID);
		if (put != (op->record != NULL))
			return shoal_errf(err, code, "op %zu: a %s %s a record", i,
					  kind_names[op->kind], put ? "needs" : "carries");
		if (put && (record_meta(op->record)->id == NULL ||
			    strcmp(record_meta(op->record)->id, op->id) != 0))
			return shoal_errf(err, code,
					  "op %zu: the record's ID differs from the op's", i);
	}
	if (cmd->n_ops == 1)
		return 0;
	if ((sorted = malloc(cmd->n_ops * sizeof(*sorted))) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < cmd->n_ops; i++)
		sorted[i] = &cmd->ops[i];
	qsort(sorted, cmd->n_ops, sizeof(*sorted), op_cmp);
	for (size_t i = 1; i < cmd->n_ops && rv == 0; i++)
		if (op_cmp(&sorted[i - 1], &sorted[i]) == 0)
			rv = shoal_errf(err, code, "%s %s is written twice in one command",
					record_tables[sorted[i]->table].kind, sorted[i]->id);
	free(sorted);
	return rv;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0 ? -1 : 0;
}

static int pack_op(msgpack_packer *pk, const struct command_op *op)
{
	bool put = op->kind == COMMAND_PUT;

	if (msgpack_pack_map(pk, put ? 5 : 4) != 0 || pack_str(pk, "op") != 0 ||
	    pack_str(pk, kind_names[op->kind]) != 0 || pack_str(pk, "table") != 0 ||
	    pack_str(pk, record_tables[op->table].name) != 0 || pack_str(pk, "expect") != 0 ||
	    msgpack_pack_uint64(pk, op->expect_version) != 0 || pack_str(pk, "id") != 0 ||
	    pack_str(pk, op->id) != 0)
		return -1;
	if (put && (pack_str(pk, "record") != 0 ||
		    schema_pack(record_tables[op->table].schema, op->record, pk) != 0))
		return -1;
	return 0;
}

int command_encode(const struct command *cmd, void **buf, size_t *len, struct shoal_err *err)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv;

	rv = check(cmd, SHOAL_EINVAL, err);
	if (rv != 0)
		return rv;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 2) != 0 || pack_str(&pk, "v") != 0 ||
	    msgpack_pack_uint64(&pk, COMMAND_VERSION) != 0 || pack_str(&pk, "ops") != 0 ||
	    msgpack_pack_array(&pk, cmd->n_ops) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	for (size_t i = 0; i < cmd->n_ops; i++) {
		if (pack_op(&pk, &cmd->ops[i]) != 0) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto err;
		}
	}
	if (sb.size > COMMAND_MAX_SIZE) {
		rv =
		    shoal_errf(err, SHOAL_ETOOBIG, "a command of %zu bytes exceeds the limit of %u",
			       sb.size, COMMAND_MAX_SIZE);
		goto err;
	}
	*len = sb.size;
	*buf = msgpack_sbuffer_release(&sb);
	return 0;

err:
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
	       memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	return key_is(o, s);
}

static int decode_op(struct command_op *op, const msgpack_object *o, struct shoal_err *err)
{
	const msgpack_object *kind = NULL, *table = NULL, *expect = NULL, *id = NULL, *rec = NULL;
	int rv;

	if (o->type != MSGPACK_OBJECT_MAP)
		return shoal_errf(err, SHOAL_EPROTO, "not a map");
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
		if (key_is(k, "op"))
			kind = v;
		else if (key_is(k, "table"))
			table = v;
		else if (key_is(k, "expect"))
			expect = v;
		else if (key_is(k, "id"))
			id = v;
		else if (key_is(k, "record"))
			rec = v;
	}
	if (kind == NULL || table == NULL || expect == NULL || id == NULL)
		return shoal_errf(err, SHOAL_EPROTO, "op, table, expect or id is missing");
	if (str_is(kind, "put"))
		op->kind = COMMAND_PUT;
	else if (str_is(kind, "delete"))
		op->kind = COMMAND_DELETE;
	else
		return shoal_errf(err, SHOAL_EPROTO, "unknown op (want put or delete)");
	if (table->type != MSGPACK_OBJECT_STR ||
	    record_table_by_name(table->via.str.ptr, table->via.str.size, &op->table) != 0)
		return shoal_errf(err, SHOAL_EPROTO, "unknown table");
	if (expect->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return shoal_errf(err, SHOAL_EPROTO, "expect is not an unsigned integer");
	op->expect_version = expect->via.u64;
	if (id->type != MSGPACK_OBJECT_STR || !id_valid(id->via.str.ptr, id->via.str.size))
		return shoal_errf(err, SHOAL_EPROTO, "id is not 1 to %u of [0-9a-z]",
				  COMMAND_MAX_ID);
	if ((op->id = strndup(id->via.str.ptr, id->via.str.size)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (op->kind == COMMAND_DELETE) {
		if (rec != NULL)
			return shoal_errf(err, SHOAL_EPROTO, "a delete carries a record");
		return 0;
	}
	if (rec == NULL)
		return shoal_errf(err, SHOAL_EPROTO, "a put needs a record");
	rv = record_new(op->table, &op->record, err);
	if (rv == 0)
		rv = schema_unpack(record_tables[op->table].schema, op->record, rec, err);
	return rv;
}

int command_decode(const void *buf, size_t len, struct command *cmd, struct shoal_err *err)
{
	const msgpack_object *version = NULL, *ops = NULL;
	msgpack_unpacked u;
	int rv;

	command_init(cmd);
	if (len > COMMAND_MAX_SIZE)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "a command of %zu bytes exceeds the limit of %u", len,
				  COMMAND_MAX_SIZE);
	msgpack_unpacked_init(&u);
	rv = schema_msgpack_parse(buf, len, &u, err);
	if (rv != 0)
		goto err;
	rv = SHOAL_EPROTO;
	if (u.data.type != MSGPACK_OBJECT_MAP) {
		shoal_errf(err, rv, "not a map");
		goto err;
	}
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object *k = &u.data.via.map.ptr[i].key;
		if (key_is(k, "v"))
			version = &u.data.via.map.ptr[i].val;
		else if (key_is(k, "ops"))
			ops = &u.data.via.map.ptr[i].val;
	}
	if (version == NULL || version->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		shoal_errf(err, rv, "no version");
		goto err;
	}
	if (version->via.u64 != COMMAND_VERSION) {
		shoal_errf(err, rv, "unsupported version %llu (this node reads %d)",
			   (unsigned long long)version->via.u64, COMMAND_VERSION);
		goto err;
	}
	if (ops == NULL || ops->type != MSGPACK_OBJECT_ARRAY) {
		shoal_errf(err, rv, "no list of ops");
		goto err;
	}
	if (ops->via.array.size == 0 || ops->via.array.size > COMMAND_MAX_OPS) {
		shoal_errf(err, rv, "a command holds 1 to %u operations, not %u", COMMAND_MAX_OPS,
			   ops->via.array.size);
		goto err;
	}
	cmd->ops = calloc(ops->via.array.size, sizeof(*cmd->ops));
	if (cmd->ops == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	cmd->cap = ops->via.array.size;
	for (uint32_t i = 0; i < ops->via.array.size; i++) {
		cmd->n_ops = i + 1;
		rv = decode_op(&cmd->ops[i], &ops->via.array.ptr[i], err);
		if (rv != 0) {
			shoal_err_wrap(err, "op %u", i);
			goto err;
		}
	}
	rv = check(cmd, SHOAL_EPROTO, err);
	if (rv != 0)
		goto err;
	msgpack_unpacked_destroy(&u);
	return 0;

err:
	msgpack_unpacked_destroy(&u);
	command_free(cmd);
	if (rv != SHOAL_ENOMEM)
		shoal_err_wrap(err, "malformed command");
	return rv;
}
