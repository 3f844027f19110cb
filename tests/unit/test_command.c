/* Unit tests of node/command: building, encoding and decoding hostile bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "node/command.h"

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static void make_node(struct node_rec *n, const char *id, const char *host)
{
	assert_int_equal(node_rec_defaults(n, NULL), 0);
	n->meta.id = xstrdup(id);
	n->meta.created_at = 1000;
	n->meta.updated_at = 2000;
	n->description.hostname = xstrdup(host);
	n->spec.role = NODE_ROLE_MANAGER;
	assert_int_equal(schema_map_set(&n->spec.labels, "zone", "eu", NULL), 0);
	n->public_key.data = calloc(1, 32);
	assert_non_null(n->public_key.data);
	n->public_key.len = 32;
	n->raft_id = 3;
}

/* A command with every kind of op: PUT cluster (create), PUT node (update), DELETE node. */
static void make_command(struct command *cmd)
{
	struct cluster_rec c;
	struct node_rec n;

	command_init(cmd);
	assert_int_equal(cluster_rec_defaults(&c, NULL), 0);
	c.meta.id = xstrdup("abajmipo7b4xz5ip2nrla6b11");
	c.join_tokens.worker = xstrdup("SHOAL-1-x-y");
	assert_int_equal(command_put(cmd, RECORD_CLUSTER, COMMAND_EXPECT_NEW, &c, NULL), 0);
	cluster_rec_free(&c);
	make_node(&n, "node1", "host-1");
	assert_int_equal(command_put(cmd, RECORD_NODES, 17, &n, NULL), 0);
	node_rec_free(&n);
	assert_int_equal(command_delete(cmd, RECORD_NODES, COMMAND_EXPECT_ANY, "node2", NULL), 0);
}

static void assert_commands_equal(const struct command *a, const struct command *b)
{
	assert_int_equal(a->n_ops, b->n_ops);
	for (size_t i = 0; i < a->n_ops; i++) {
		const struct command_op *x = &a->ops[i], *y = &b->ops[i];
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->table, y->table);
		assert_int_equal(x->expect_version, y->expect_version);
		assert_string_equal(x->id, y->id);
		if (x->record == NULL) {
			assert_null(y->record);
			continue;
		}
		assert_non_null(y->record);
		assert_true(schema_equal(record_tables[x->table].schema, x->record, y->record));
	}
}

static void round_trip(void **state)
{
	struct command cmd, back;
	void *buf, *buf2;
	size_t len, len2;

	(void)state;
	make_command(&cmd);
	assert_int_equal(command_encode(&cmd, &buf, &len, NULL), 0);
	assert_int_equal(command_decode(buf, len, &back, NULL), 0);
	assert_commands_equal(&cmd, &back);
	assert_int_equal(back.ops[1].expect_version, 17);
	assert_int_equal(back.ops[2].kind, COMMAND_DELETE);
	assert_string_equal(((struct node_rec *)back.ops[1].record)->description.hostname,
			    "host-1");
	/* The encoding is canonical: decode and encode again gives the same bytes. */
	assert_int_equal(command_encode(&back, &buf2, &len2, NULL), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf);
	free(buf2);
	command_free(&cmd);
	command_free(&back);
	command_free(&back); /* an emptied command frees again safely */
}

static void truncation_at_every_length_is_rejected(void **state)
{
	struct command cmd;
	void *buf;
	size_t len;

	(void)state;
	make_command(&cmd);
	assert_int_equal(command_encode(&cmd, &buf, &len, NULL), 0);
	for (size_t cut = 0; cut < len; cut++) {
		struct command out;
		struct shoal_err err;
		char *copy = malloc(cut + 1);

		assert_non_null(copy);
		memcpy(copy, buf, cut);
		assert_int_equal(command_decode(copy, cut, &out, &err), SHOAL_EPROTO);
		assert_int_equal(strncmp(err.msg, "malformed command: ", 19), 0);
		assert_int_equal(out.n_ops, 0);
		assert_null(out.ops);
		free(copy);
	}
	free(buf);
	command_free(&cmd);
}

/* Every byte of a valid command set to every value: each result either fails
 * cleanly or decodes into a command that keeps the rules and encodes again. */
static void every_single_byte_corruption_is_safe(void **state)
{
	struct command cmd;
	unsigned char *buf, *copy;
	size_t len;
	unsigned decoded = 0, rejected = 0;

	(void)state;
	make_command(&cmd);
	assert_int_equal(command_encode(&cmd, (void **)&buf, &len, NULL), 0);
	copy = malloc(len);
	assert_non_null(copy);
	for (size_t pos = 0; pos < len; pos++) {
		for (unsigned v = 0; v < 256; v++) {
			struct command out;
			struct shoal_err err;
			void *again;
			size_t again_len;
			int rv;

			if (v == buf[pos])
				continue;
			memcpy(copy, buf, len);
			copy[pos] = (unsigned char)v;
			rv = command_decode(copy, len, &out, &err);
			if (rv != 0) {
				assert_int_equal(rv, SHOAL_EPROTO);
				assert_int_equal(out.n_ops, 0);
				rejected++;
				continue;
			}
			decoded++;
			assert_int_equal(command_encode(&out, &again, &again_len, &err), 0);
			free(again);
			command_free(&out);
		}
	}
	/* Both outcomes occur: string bytes change freely, structure bytes do not. */
	assert_true(decoded > 1000);
	assert_true(rejected > 1000);
	free(copy);
	free(buf);
	command_free(&cmd);
}

/* Pack a hand-made command: {"v": @version, "ops": [op...]} with ops written by @ops. */
static void *pack_raw(uint64_t version, size_t n_ops, void (*ops)(msgpack_packer *pk, size_t i),
		      size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "later", 5); /* unknown keys are skipped */
	msgpack_pack_array(&pk, 0);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_uint64(&pk, version);
	msgpack_pack_str_with_body(&pk, "ops", 3);
	msgpack_pack_array(&pk, n_ops);
	for (size_t i = 0; i < n_ops; i++)
		ops(&pk, i);
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

static void str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* A delete of node n<i>. */
static void op_delete_i(msgpack_packer *pk, size_t i)
{
	char id[32];

	snprintf(id, sizeof(id), "n%zu", i);
	msgpack_pack_map(pk, 4);
	str(pk, "op");
	str(pk, "delete");
	str(pk, "table");
	str(pk, "nodes");
	str(pk, "expect");
	msgpack_pack_uint64(pk, COMMAND_EXPECT_ANY);
	str(pk, "id");
	str(pk, id);
}

static const char *raw_kind, *raw_table, *raw_id, *raw_record_id;
static bool raw_with_record;

static void op_custom(msgpack_packer *pk, size_t i)
{
	(void)i;
	msgpack_pack_map(pk, raw_with_record ? 6 : 5);
	str(pk, "op");
	str(pk, raw_kind);
	str(pk, "table");
	str(pk, raw_table);
	str(pk, "expect");
	msgpack_pack_uint64(pk, 0);
	str(pk, "id");
	str(pk, raw_id);
	str(pk, "future");
	msgpack_pack_nil(pk);
	if (raw_with_record) {
		str(pk, "record");
		msgpack_pack_map(pk, 1);
		str(pk, "ID");
		str(pk, raw_record_id);
	}
}

static int decode_custom(const char *kind, const char *table, const char *id, bool with_record,
			 const char *record_id, size_t n_ops, struct shoal_err *err)
{
	struct command out;
	size_t len;
	void *buf;
	int rv;

	raw_kind = kind;
	raw_table = table;
	raw_id = id;
	raw_with_record = with_record;
	raw_record_id = record_id;
	buf = pack_raw(1, n_ops, op_custom, &len);
	rv = command_decode(buf, len, &out, err);
	if (rv == 0) {
		assert_int_equal(out.n_ops, n_ops);
		command_free(&out);
	}
	free(buf);
	return rv;
}

static void bad_fields_are_rejected_with_a_reason(void **state)
{
	struct shoal_err err;

	(void)state;
	assert_int_equal(decode_custom("put", "nodes", "n1", true, "n1", 1, &err), 0);
	assert_int_equal(decode_custom("delete", "cluster", "c1", false, NULL, 1, &err), 0);
	assert_int_equal(decode_custom("merge", "nodes", "n1", true, "n1", 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: op 0: unknown op (want put or delete)");
	assert_int_equal(decode_custom("put", "secrets", "n1", true, "n1", 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: op 0: unknown table");
	assert_int_equal(decode_custom("put", "nodes", "N1", true, "N1", 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: op 0: id is not 1 to 64 of [0-9a-z]");
	assert_int_equal(decode_custom("put", "nodes", "", true, "", 1, &err), SHOAL_EPROTO);
	assert_int_equal(decode_custom("put", "nodes", "n1", false, NULL, 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: op 0: a put needs a record");
	assert_int_equal(decode_custom("delete", "nodes", "n1", true, "n1", 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: op 0: a delete carries a record");
	assert_int_equal(decode_custom("put", "nodes", "n1", true, "n2", 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "malformed command: op 0: the record's ID differs from the op's");
	assert_int_equal(decode_custom("put", "nodes", "n1", true, "n1", 2, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: node n1 is written twice in one command");
	assert_int_equal(decode_custom("put", "nodes", "n1", true, "n1", 0, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "malformed command: a command holds 1 to 10000 operations, not 0");
}

static void versions_and_limits(void **state)
{
	struct command out, cmd;
	struct shoal_err err;
	size_t len;
	void *buf;
	char id[32];

	(void)state;
	buf = pack_raw(2, 1, op_delete_i, &len);
	assert_int_equal(command_decode(buf, len, &out, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "malformed command: unsupported version 2 (this node reads 1)");
	free(buf);

	buf = pack_raw(1, COMMAND_MAX_OPS, op_delete_i, &len);
	assert_int_equal(command_decode(buf, len, &out, &err), 0);
	assert_int_equal(out.n_ops, COMMAND_MAX_OPS);
	command_free(&out);
	free(buf);
	buf = pack_raw(1, COMMAND_MAX_OPS + 1, op_delete_i, &len);
	assert_int_equal(command_decode(buf, len, &out, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "malformed command: a command holds 1 to 10000 operations, not 10001");
	free(buf);

	buf = calloc(1, COMMAND_MAX_SIZE + 1);
	assert_non_null(buf);
	assert_int_equal(command_decode(buf, COMMAND_MAX_SIZE + 1, &out, &err), SHOAL_ETOOBIG);
	free(buf);

	/* The builder keeps the same rules. */
	command_init(&cmd);
	for (unsigned i = 0; i < COMMAND_MAX_OPS; i++) {
		snprintf(id, sizeof(id), "n%u", i);
		assert_int_equal(command_delete(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, id, NULL),
				 0);
	}
	assert_int_equal(command_delete(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, "x", &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "a command holds at most 10000 operations");
	command_free(&cmd);
	assert_int_equal(command_delete(&cmd, RECORD_NODES, 1, "Bad-Id", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "node id \"Bad-Id\" is not 1 to 64 of [0-9a-z]");
	assert_int_equal(command_encode(&cmd, &buf, &len, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "a command holds 1 to 10000 operations, not 0");
	assert_int_equal(command_delete(&cmd, RECORD_NODES, 1, "n1", NULL), 0);
	assert_int_equal(command_delete(&cmd, RECORD_NODES, 2, "n1", NULL), 0);
	assert_int_equal(command_encode(&cmd, &buf, &len, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "node n1 is written twice in one command");
	command_free(&cmd);

	assert_true(command_id_valid("4v4i1iq7hq3h0ugcm3q6fdpxw"));
	assert_false(command_id_valid(NULL));
	assert_false(command_id_valid(""));
	assert_false(command_id_valid("a b"));
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_true(command_id_valid(id));
}

static void record_errors_name_the_op_and_field(void **state)
{
	struct command out;
	struct shoal_err err;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	(void)state;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	str(&pk, "v");
	msgpack_pack_uint64(&pk, 1);
	str(&pk, "ops");
	msgpack_pack_array(&pk, 2);
	op_delete_i(&pk, 0);
	msgpack_pack_map(&pk, 5);
	str(&pk, "op");
	str(&pk, "put");
	str(&pk, "table");
	str(&pk, "nodes");
	str(&pk, "expect");
	msgpack_pack_uint64(&pk, 0);
	str(&pk, "id");
	str(&pk, "n9");
	str(&pk, "record");
	msgpack_pack_map(&pk, 2);
	str(&pk, "ID");
	str(&pk, "n9");
	str(&pk, "Spec.Availability");
	msgpack_pack_int(&pk, 2);
	assert_int_equal(command_decode(sb.data, sb.size, &out, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed command: op 1: field Spec.Availability: expected a "
				     "string, got an integer");
	assert_null(out.ops);
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(truncation_at_every_length_is_rejected),
	    cmocka_unit_test(every_single_byte_corruption_is_safe),
	    cmocka_unit_test(bad_fields_are_rejected_with_a_reason),
	    cmocka_unit_test(versions_and_limits),
	    cmocka_unit_test(record_errors_name_the_op_and_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
