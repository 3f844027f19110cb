/* Unit tests of node/store: the FSM's semantics directly, then on raft's deterministic fixture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/store.h"
#include "raft/fsm_adapter.h"

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static struct store *new_store(void)
{
	struct store *s = NULL;

	assert_int_equal(store_new(&s, NULL), 0);
	return s;
}

static void put_node(struct command *cmd, const char *id, const char *host, uint64_t expect,
		     int64_t created_at)
{
	struct node_rec n;

	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.meta.id = xstrdup(id);
	n.meta.created_at = created_at;
	n.meta.updated_at = created_at + 1;
	n.description.hostname = xstrdup(host);
	assert_int_equal(command_put(cmd, RECORD_NODES, expect, &n, NULL), 0);
	node_rec_free(&n);
}

static void put_named_node(struct command *cmd, const char *id, const char *host, const char *name)
{
	struct node_rec n;

	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.meta.id = xstrdup(id);
	n.description.hostname = xstrdup(host);
	n.spec.name = name != NULL ? xstrdup(name) : NULL;
	assert_int_equal(command_put(cmd, RECORD_NODES, COMMAND_EXPECT_NEW, &n, NULL), 0);
	node_rec_free(&n);
}

static void put_cluster(struct command *cmd, const char *id, uint64_t expect)
{
	struct cluster_rec c;

	assert_int_equal(cluster_rec_defaults(&c, NULL), 0);
	c.meta.id = xstrdup(id);
	assert_int_equal(command_put(cmd, RECORD_CLUSTER, expect, &c, NULL), 0);
	cluster_rec_free(&c);
}

static void del(struct command *cmd, enum record_table t, const char *id, uint64_t expect)
{
	assert_int_equal(command_delete(cmd, t, expect, id, NULL), 0);
}

/* Apply raw bytes at @index; the FSM itself must never fail on them. */
static int apply_raw(struct store *s, uint64_t index, const void *data, size_t len)
{
	struct consensus_fsm fsm;
	void *result = (void *)(intptr_t)12345;

	store_fsm(s, &fsm);
	assert_int_equal(fsm.apply(fsm.arg, index, data, len, &result), 0);
	assert_int_not_equal((intptr_t)result, 12345);
	assert_int_equal(store_last_index(s), index);
	return store_result_code(result);
}

/* Encode @cmd, free it, and apply it at @index. Returns the result code. */
static int apply(struct store *s, uint64_t index, struct command *cmd)
{
	void *buf;
	size_t len;
	int rv;

	assert_int_equal(command_encode(cmd, &buf, &len, NULL), 0);
	command_free(cmd);
	rv = apply_raw(s, index, buf, len);
	free(buf);
	return rv;
}

static void *snapshot(struct store *s, size_t *len)
{
	struct consensus_fsm fsm;
	void *buf = NULL;

	store_fsm(s, &fsm);
	assert_int_equal(fsm.snapshot(fsm.arg, &buf, len), 0);
	assert_non_null(buf);
	return buf;
}

static int restore(struct store *s, const void *buf, size_t len)
{
	struct consensus_fsm fsm;

	store_fsm(s, &fsm);
	return fsm.restore(fsm.arg, buf, len);
}

static void assert_same_state(struct store *a, struct store *b)
{
	size_t alen, blen;
	void *x = snapshot(a, &alen), *y = snapshot(b, &blen);

	assert_int_equal(alen, blen);
	assert_memory_equal(x, y, alen);
	free(x);
	free(y);
}

static void versions_follow_the_raft_index(void **state)
{
	struct store *s = new_store();
	struct command cmd;
	const struct node_rec *n;

	(void)state;
	assert_null(store_cluster(s));
	command_init(&cmd);
	put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
	put_node(&cmd, "n1", "host-1", COMMAND_EXPECT_NEW, 1000);
	assert_int_equal(apply(s, 5, &cmd), 0);
	assert_int_equal(store_last_index(s), 5);
	assert_non_null(store_cluster(s));
	assert_string_equal(store_cluster(s)->meta.id, "c1");
	assert_int_equal(store_cluster(s)->meta.version, 5);
	n = store_node_get(s, "n1");
	assert_non_null(n);
	assert_int_equal(n->meta.version, 5);
	assert_int_equal(n->meta.created_at, 1000);

	/* An update at version 5 lands at index 7, keeping CreatedAt. */
	command_init(&cmd);
	put_node(&cmd, "n1", "host-1b", 5, 5000);
	assert_int_equal(apply(s, 7, &cmd), 0);
	n = store_node_get(s, "n1");
	assert_int_equal(n->meta.version, 7);
	assert_int_equal(n->meta.created_at, 1000);
	assert_int_equal(n->meta.updated_at, 5001);
	assert_string_equal(n->description.hostname, "host-1b");
	assert_int_equal(store_cluster(s)->meta.version, 5);
	store_free(s);
}

static void expectations_are_enforced(void **state)
{
	struct store *s = new_store();
	struct command cmd;

	(void)state;
	command_init(&cmd);
	put_node(&cmd, "n1", "h", COMMAND_EXPECT_NEW, 1);
	assert_int_equal(apply(s, 1, &cmd), 0);

	command_init(&cmd);
	put_node(&cmd, "n1", "h", COMMAND_EXPECT_NEW, 1);
	assert_int_equal(apply(s, 2, &cmd), SHOAL_ECONFLICT);
	command_init(&cmd);
	put_node(&cmd, "n1", "h", 2, 1); /* stale: it is at 1 */
	assert_int_equal(apply(s, 3, &cmd), SHOAL_ECONFLICT);
	command_init(&cmd);
	put_node(&cmd, "n2", "h", 1, 1); /* update of a missing record */
	assert_int_equal(apply(s, 4, &cmd), SHOAL_ENOTFOUND);
	command_init(&cmd);
	del(&cmd, RECORD_NODES, "n2", COMMAND_EXPECT_ANY);
	assert_int_equal(apply(s, 5, &cmd), SHOAL_ENOTFOUND);
	command_init(&cmd);
	del(&cmd, RECORD_NODES, "n1", 4);
	assert_int_equal(apply(s, 6, &cmd), SHOAL_ECONFLICT);
	assert_int_equal(store_node_get(s, "n1")->meta.version, 1);

	/* EXPECT_ANY writes whether or not the record exists. */
	command_init(&cmd);
	put_node(&cmd, "n1", "h2", COMMAND_EXPECT_ANY, 1);
	put_node(&cmd, "n3", "h3", COMMAND_EXPECT_ANY, 1);
	assert_int_equal(apply(s, 8, &cmd), 0);
	assert_int_equal(store_node_get(s, "n1")->meta.version, 8);
	assert_int_equal(store_node_get(s, "n3")->meta.version, 8);

	command_init(&cmd);
	del(&cmd, RECORD_NODES, "n1", 8);
	assert_int_equal(apply(s, 9, &cmd), 0);
	assert_null(store_node_get(s, "n1"));
	assert_int_equal(store_node_count(s), 1);
	store_free(s);
}

static void batches_apply_all_or_nothing(void **state)
{
	struct store *a = new_store(), *b = new_store();
	struct command cmd;
	static const char garbage[] = "\x81\xa1v\x07";

	(void)state;
	for (int i = 0; i < 2; i++) {
		command_init(&cmd);
		put_node(&cmd, "n1", "h", COMMAND_EXPECT_NEW, 1);
		put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
		assert_int_equal(apply(i == 0 ? a : b, 3, &cmd), 0);
	}
	/* Two creates and a delete, then a stale update: nothing happens. */
	command_init(&cmd);
	put_node(&cmd, "n2", "h", COMMAND_EXPECT_NEW, 1);
	put_node(&cmd, "n3", "h", COMMAND_EXPECT_NEW, 1);
	del(&cmd, RECORD_CLUSTER, "c1", 3);
	put_node(&cmd, "n1", "h", 2, 1);
	assert_int_equal(apply(a, 4, &cmd), SHOAL_ECONFLICT);
	assert_null(store_node_get(a, "n2"));
	assert_non_null(store_cluster(a));
	/* Same state as a store that saw an undecodable entry at that index. */
	assert_int_equal(apply_raw(b, 4, garbage, sizeof(garbage) - 1), SHOAL_EPROTO);
	assert_same_state(a, b);

	/* The singleton table takes a second record only if the first goes. */
	command_init(&cmd);
	put_cluster(&cmd, "c2", COMMAND_EXPECT_NEW);
	assert_int_equal(apply(a, 5, &cmd), SHOAL_ECONFLICT);
	command_init(&cmd);
	put_cluster(&cmd, "c2", COMMAND_EXPECT_NEW);
	del(&cmd, RECORD_CLUSTER, "c1", COMMAND_EXPECT_ANY);
	assert_int_equal(apply(a, 6, &cmd), 0);
	assert_string_equal(store_cluster(a)->meta.id, "c2");
	assert_int_equal(store_count(a, RECORD_CLUSTER), 1);
	store_free(a);
	store_free(b);
}

static void undecodable_entries_are_noops(void **state)
{
	struct store *a = new_store(), *b = new_store();
	struct command cmd;
	unsigned char noise[256];

	(void)state;
	for (int i = 0; i < 2; i++) {
		command_init(&cmd);
		put_node(&cmd, "n1", "h", COMMAND_EXPECT_NEW, 1);
		assert_int_equal(apply(i == 0 ? a : b, 1, &cmd), 0);
	}
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (unsigned char)(i * 37 + 11);
	for (uint64_t i = 0; i < 50; i++)
		assert_int_not_equal(apply_raw(a, 2 + i, noise, (size_t)i * 5), 0);
	assert_int_equal(apply_raw(a, 52, NULL, 0), SHOAL_EPROTO);
	/* Only the last index moved: same as one no-op at 52. */
	assert_int_equal(apply_raw(b, 52, noise, 1), SHOAL_EPROTO);
	assert_same_state(a, b);
	assert_int_equal(store_node_get(a, "n1")->meta.version, 1);
	store_free(a);
	store_free(b);
}

static void find_resolves_like_docker(void **state)
{
	struct store *s = new_store();
	struct command cmd;
	const struct node_rec *n = NULL;
	struct shoal_err err;

	(void)state;
	command_init(&cmd);
	put_named_node(&cmd, "abc111", "alpha", NULL);
	put_named_node(&cmd, "abc222", "beta", "bee");
	put_named_node(&cmd, "def333", "gamma", NULL);
	put_named_node(&cmd, "def444", "gamma", NULL);
	put_named_node(&cmd, "bee", "delta", NULL);
	assert_int_equal(apply(s, 1, &cmd), 0);

	assert_int_equal(store_node_find(s, "abc222", &n, &err), 0);
	assert_string_equal(n->meta.id, "abc222");
	/* An exact id wins over a name... */
	assert_int_equal(store_node_find(s, "bee", &n, &err), 0);
	assert_string_equal(n->meta.id, "bee");
	/* ...a name over a prefix; Spec.Name hides the hostname. */
	assert_int_equal(store_node_find(s, "alpha", &n, &err), 0);
	assert_string_equal(n->meta.id, "abc111");
	assert_int_equal(store_node_find(s, "beta", &n, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "node beta not found");
	assert_int_equal(store_node_find(s, "abc1", &n, &err), 0);
	assert_string_equal(n->meta.id, "abc111");
	assert_int_equal(store_node_find(s, "abc", &n, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "node abc is ambiguous (2 matches found)");
	assert_int_equal(store_node_find(s, "gamma", &n, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "node gamma is ambiguous (2 matches found)");
	assert_int_equal(store_node_find(s, "zzz", &n, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "node zzz not found");
	assert_int_equal(store_node_find(s, "", &n, &err), SHOAL_ENOTFOUND);
	store_free(s);
}

static void iteration_is_in_id_order(void **state)
{
	struct store *s = new_store();
	struct command cmd;
	uint32_t x = 12345;
	char id[16];

	(void)state;
	command_init(&cmd);
	for (unsigned i = 0; i < 500; i++) {
		x = x * 1103515245u + 12345u;
		snprintf(id, sizeof(id), "n%08x", x);
		put_node(&cmd, id, "h", COMMAND_EXPECT_NEW, 1);
		if (cmd.n_ops == 97)
			assert_int_equal(apply(s, store_last_index(s) + 1, &cmd), 0);
	}
	assert_int_equal(apply(s, store_last_index(s) + 1, &cmd), 0);
	assert_int_equal(store_node_count(s), 500);
	for (size_t i = 1; i < store_node_count(s); i++)
		assert_true(strcmp(store_node_at(s, i - 1)->meta.id, store_node_at(s, i)->meta.id) <
			    0);
	/* Delete every other one in one batch. */
	command_init(&cmd);
	for (size_t i = 0; i < store_node_count(s); i += 2)
		del(&cmd, RECORD_NODES, store_node_at(s, i)->meta.id, COMMAND_EXPECT_ANY);
	assert_int_equal(apply(s, store_last_index(s) + 1, &cmd), 0);
	assert_int_equal(store_node_count(s), 250);
	for (size_t i = 1; i < store_node_count(s); i++)
		assert_true(strcmp(store_node_at(s, i - 1)->meta.id, store_node_at(s, i)->meta.id) <
			    0);
	store_free(s);
}

static struct store *populated_store(void)
{
	struct store *s = new_store();
	struct command cmd;
	char id[16];

	command_init(&cmd);
	put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
	assert_int_equal(apply(s, 1, &cmd), 0);
	command_init(&cmd);
	for (unsigned i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "node%02u", (i * 7) % 40);
		put_node(&cmd, id, "host", COMMAND_EXPECT_NEW, i);
	}
	assert_int_equal(apply(s, 3, &cmd), 0);
	command_init(&cmd);
	put_node(&cmd, "node07", "renamed", 3, 1);
	assert_int_equal(apply(s, 4, &cmd), 0);
	return s;
}

static void snapshot_restore_round_trip(void **state)
{
	struct store *a = populated_store(), *b = new_store();
	struct command cmd;
	void *buf;
	size_t len;

	(void)state;
	/* b holds something else first: restore replaces it entirely. */
	command_init(&cmd);
	put_node(&cmd, "zzz", "other", COMMAND_EXPECT_NEW, 1);
	assert_int_equal(apply(b, 99, &cmd), 0);
	buf = snapshot(a, &len);
	assert_int_equal(restore(b, buf, len), 0);
	assert_same_state(a, b);
	assert_null(store_node_get(b, "zzz"));
	assert_int_equal(store_last_index(b), 4);
	assert_int_equal(store_node_count(b), 40);
	for (size_t i = 0; i < store_node_count(a); i++)
		assert_true(schema_equal(&node_schema, store_node_at(a, i), store_node_at(b, i)));
	assert_int_equal(store_node_get(b, "node07")->meta.version, 4);
	assert_string_equal(store_node_get(b, "node07")->description.hostname, "renamed");
	assert_true(schema_equal(&cluster_schema, store_cluster(a), store_cluster(b)));
	/* Applies continue from there. */
	command_init(&cmd);
	del(&cmd, RECORD_NODES, "node07", 4);
	assert_int_equal(apply(b, 5, &cmd), 0);
	assert_int_equal(store_node_count(b), 39);
	free(buf);
	store_free(a);
	store_free(b);
}

/* Restore @bad into @s and check it is refused with the state unchanged. */
static void assert_refused(struct store *s, const void *bad, size_t len)
{
	void *before, *after;
	size_t blen, alen;

	before = snapshot(s, &blen);
	assert_int_not_equal(restore(s, bad, len), 0);
	after = snapshot(s, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, alen);
	free(before);
	free(after);
}

/* A hand-made snapshot: @n_nodes node records with these ids, and a cluster table. */
static void *craft(uint64_t format, const char *table, const char *const *ids, size_t n_ids,
		   size_t n_clusters, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "format", 6);
	msgpack_pack_uint64(&pk, format);
	msgpack_pack_str_with_body(&pk, "index", 5);
	msgpack_pack_uint64(&pk, 77);
	msgpack_pack_str_with_body(&pk, "tables", 6);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "cluster", 7);
	msgpack_pack_array(&pk, n_clusters);
	for (size_t i = 0; i < n_clusters; i++) {
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, "ID", 2);
		msgpack_pack_str_with_body(&pk, i == 0 ? "c1" : "c2", 2);
	}
	msgpack_pack_str_with_body(&pk, table, strlen(table));
	msgpack_pack_array(&pk, n_ids);
	for (size_t i = 0; i < n_ids; i++) {
		msgpack_pack_map(&pk, ids[i] != NULL ? 2 : 1);
		msgpack_pack_str_with_body(&pk, "Spec.Role", 9);
		msgpack_pack_str_with_body(&pk, "manager", 7);
		if (ids[i] != NULL) {
			msgpack_pack_str_with_body(&pk, "ID", 2);
			msgpack_pack_str_with_body(&pk, ids[i], strlen(ids[i]));
		}
	}
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

static void corrupt_snapshots_leave_state_unchanged(void **state)
{
	struct store *s = populated_store(), *t = new_store();
	static const char *const sorted[] = {"a1", "b2"}, *const unsorted[] = {"b2", "a1"},
				 *const dup[] = {"a1", "a1"}, *const badid[] = {"A1"},
				 *const noid[] = {NULL};
	void *good, *bad;
	size_t len, blen;

	(void)state;
	good = snapshot(s, &len);
	for (size_t cut = 0; cut < len; cut++)
		assert_refused(s, good, cut);

	/* The crafted shape works when well-formed... */
	bad = craft(STORE_SNAPSHOT_FORMAT, "nodes", sorted, 2, 1, &blen);
	assert_int_equal(restore(t, bad, blen), 0);
	assert_int_equal(store_last_index(t), 77);
	assert_int_equal(store_node_get(t, "b2")->spec.role, NODE_ROLE_MANAGER);
	free(bad);
	/* ...and each flaw is refused. */
	bad = craft(2, "nodes", sorted, 2, 1, &blen);
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "secrets", sorted, 2, 1, &blen); /* unknown table */
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "nodes", unsorted, 2, 1, &blen);
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "nodes", dup, 2, 1, &blen);
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "nodes", badid, 1, 1, &blen);
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "nodes", noid, 1, 1, &blen);
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "nodes", sorted, 2, 2, &blen);
	assert_refused(s, bad, blen);
	free(bad);
	bad = craft(STORE_SNAPSHOT_FORMAT, "cluster", sorted, 0, 0, &blen); /* table twice */
	assert_refused(s, bad, blen);
	free(bad);

	/* Any single corrupted byte: refused, or a state that round-trips. */
	bad = malloc(len);
	assert_non_null(bad);
	for (size_t pos = 0; pos < len; pos += 3) {
		memcpy(bad, good, len);
		((unsigned char *)bad)[pos] ^= 0x5a;
		if (restore(t, bad, len) == 0) {
			void *again;
			size_t alen;
			struct store *u = new_store();

			again = snapshot(t, &alen);
			assert_int_equal(restore(u, again, alen), 0);
			assert_same_state(t, u);
			free(again);
			store_free(u);
		}
	}
	free(bad);
	free(good);
	store_free(s);
	store_free(t);
}

struct seen {
	unsigned calls;
	enum record_table table[8];
	char id[8][16];
	bool null_id[8];
	uint64_t index[8];
};

static void watch_cb(void *arg, enum record_table table, const char *id, uint64_t index)
{
	struct seen *w = arg;

	if (w->calls < 8) {
		w->table[w->calls] = table;
		w->null_id[w->calls] = id == NULL;
		snprintf(w->id[w->calls], sizeof(w->id[0]), "%s", id != NULL ? id : "");
		w->index[w->calls] = index;
	}
	w->calls++;
}

static void watchers_hear_each_change(void **state)
{
	struct store *s = new_store(), *src = populated_store();
	struct seen w = {0}, other = {0};
	struct command cmd;
	void *buf;
	size_t len;

	(void)state;
	assert_int_equal(store_watch(s, watch_cb, &w, NULL), 0);
	assert_int_equal(store_watch(s, watch_cb, &other, NULL), 0);
	command_init(&cmd);
	put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
	put_node(&cmd, "n1", "h", COMMAND_EXPECT_NEW, 1);
	assert_int_equal(apply(s, 3, &cmd), 0);
	assert_int_equal(w.calls, 2);
	assert_int_equal(w.table[0], RECORD_CLUSTER);
	assert_string_equal(w.id[0], "c1");
	assert_int_equal(w.table[1], RECORD_NODES);
	assert_string_equal(w.id[1], "n1");
	assert_int_equal(w.index[1], 3);
	assert_int_equal(other.calls, 2);

	/* A failed apply changes nothing and tells nobody. */
	command_init(&cmd);
	put_node(&cmd, "n1", "h", COMMAND_EXPECT_NEW, 1);
	assert_int_equal(apply(s, 4, &cmd), SHOAL_ECONFLICT);
	assert_int_equal(w.calls, 2);

	store_unwatch(s, watch_cb, &other);
	command_init(&cmd);
	del(&cmd, RECORD_NODES, "n1", 3);
	assert_int_equal(apply(s, 5, &cmd), 0);
	assert_int_equal(w.calls, 3);
	assert_string_equal(w.id[2], "n1");
	assert_int_equal(w.index[2], 5);
	assert_int_equal(other.calls, 2);

	/* A restore replaces whole tables: one call per table without an id. */
	buf = snapshot(src, &len);
	assert_int_equal(restore(s, buf, len), 0);
	assert_int_equal(w.calls, 3 + RECORD_TABLE_COUNT);
	assert_true(w.null_id[3]);
	assert_true(w.null_id[4]);
	assert_int_equal(w.index[4], 4);
	free(buf);
	store_free(s);
	store_free(src);
}

/* ---- on raft's deterministic fixture ---- */

#define N_SERVERS 3

struct server {
	struct store *store;
	struct consensus_fsm inner;
	struct fsm_adapter adapter;
	unsigned restores;
};

struct fx {
	struct raft_fixture f;
	struct server servers[N_SERVERS];
};

static int wrap_apply(void *arg, uint64_t index, const void *data, size_t len, void **result)
{
	struct server *sv = arg;

	return sv->inner.apply(sv->inner.arg, index, data, len, result);
}

static int wrap_snapshot(void *arg, void **out, size_t *len)
{
	struct server *sv = arg;

	return sv->inner.snapshot(sv->inner.arg, out, len);
}

static int wrap_restore(void *arg, const void *data, size_t len)
{
	struct server *sv = arg;

	sv->restores++;
	return sv->inner.restore(sv->inner.arg, data, len);
}

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct raft_configuration conf;

	assert_non_null(fx);
	assert_int_equal(raft_fixture_initialize(&fx->f), 0);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		struct server *sv = &fx->servers[i];
		struct consensus_fsm ops = {sv, wrap_apply, wrap_snapshot, wrap_restore};

		sv->store = new_store();
		store_fsm(sv->store, &sv->inner);
		fsm_adapter_init(&sv->adapter, &ops);
		assert_int_equal(raft_fixture_grow(&fx->f, &sv->adapter.fsm), 0);
		sv->adapter.raft = raft_fixture_get(&fx->f, i);
	}
	assert_int_equal(raft_fixture_configuration(&fx->f, N_SERVERS, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(&fx->f, &conf), 0);
	raft_configuration_close(&conf);
	assert_int_equal(raft_fixture_start(&fx->f), 0);
	assert_true(raft_fixture_step_until_has_leader(&fx->f, 10000));
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	raft_fixture_close(&fx->f);
	for (unsigned i = 0; i < N_SERVERS; i++)
		store_free(fx->servers[i].store);
	free(fx);
	return 0;
}

struct proposal {
	struct raft_apply req;
	raft_index index;
	bool done;
	int status;
	int code;
};

static void proposal_cb(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;

	p->done = true;
	p->status = status;
	p->code = status == 0 ? store_result_code(result) : 0;
}

static bool proposal_done(struct raft_fixture *f, void *arg)
{
	(void)f;
	return ((struct proposal *)arg)->done;
}

/* Propose @cmd (freed) on server @i without waiting. */
static void propose(struct fx *fx, unsigned i, struct command *cmd, struct proposal *p)
{
	struct raft *r = raft_fixture_get(&fx->f, i);
	struct raft_buffer buf;
	void *data;
	size_t len;

	assert_int_equal(command_encode(cmd, &data, &len, NULL), 0);
	command_free(cmd);
	/* Entries carry the command in the adapter's frame. */
	buf.len = fsm_frame_size(len);
	buf.base = raft_malloc(buf.len);
	assert_non_null(buf.base);
	fsm_frame_write(buf.base, data, len);
	free(data);
	memset(p, 0, sizeof(*p));
	p->req.data = p;
	assert_int_equal(raft_apply(r, &p->req, &buf, 1, proposal_cb), 0);
	p->index = raft_last_index(r);
}

/* Propose on server @i and wait until it applied the entry; return the result code. */
static int commit(struct fx *fx, unsigned i, struct command *cmd, raft_index *index)
{
	struct proposal p;

	propose(fx, i, cmd, &p);
	assert_true(raft_fixture_step_until(&fx->f, proposal_done, &p, 10000));
	assert_int_equal(p.status, 0);
	if (index != NULL)
		*index = p.index;
	return p.code;
}

static void wait_applied(struct fx *fx, unsigned i, raft_index index)
{
	assert_true(raft_fixture_step_until_applied(&fx->f, i, index, 20000));
}

struct other_leader {
	unsigned not ;
	unsigned found;
};

static bool has_other_leader(struct raft_fixture *f, void *arg)
{
	struct other_leader *o = arg;

	for (unsigned i = 0; i < N_SERVERS; i++) {
		if (i != o->not &&raft_state(raft_fixture_get(f, i)) == RAFT_LEADER) {
			o->found = i;
			return true;
		}
	}
	return false;
}

static void raft_replicates_to_every_store(void **state)
{
	struct fx *fx = *state;
	unsigned leader = raft_fixture_leader_index(&fx->f);
	struct command cmd;
	raft_index index;
	char id[16];

	command_init(&cmd);
	put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
	put_node(&cmd, "n0", "host-0", COMMAND_EXPECT_NEW, 10);
	assert_int_equal(commit(fx, leader, &cmd, &index), 0);
	assert_int_equal(store_node_get(fx->servers[leader].store, "n0")->meta.version, index);
	for (unsigned i = 1; i < 10; i++) {
		command_init(&cmd);
		snprintf(id, sizeof(id), "n%u", i);
		put_node(&cmd, id, "host", COMMAND_EXPECT_NEW, 10);
		assert_int_equal(commit(fx, leader, &cmd, NULL), 0);
	}
	/* A stale write is committed, applied nowhere, and its proposer told why. */
	command_init(&cmd);
	put_node(&cmd, "n0", "host-0", index + 100, 10);
	assert_int_equal(commit(fx, leader, &cmd, &index), SHOAL_ECONFLICT);
	wait_applied(fx, N_SERVERS, index);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		assert_int_equal(store_node_count(fx->servers[i].store), 10);
		assert_int_equal(store_last_index(fx->servers[i].store), index);
		if (i > 0)
			assert_same_state(fx->servers[0].store, fx->servers[i].store);
	}
}

static void raft_failover_keeps_committed_writes(void **state)
{
	struct fx *fx = *state;
	unsigned old = raft_fixture_leader_index(&fx->f), survivor = 0;
	struct other_leader o = {old, N_SERVERS};
	struct proposal lost;
	struct command cmd;
	raft_index index;

	command_init(&cmd);
	put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
	put_node(&cmd, "n1", "host-1", COMMAND_EXPECT_NEW, 10);
	assert_int_equal(commit(fx, old, &cmd, &index), 0);
	wait_applied(fx, N_SERVERS, index);

	/* Cut the leader off in both directions; what it accepts now is lost. */
	for (unsigned j = 0; j < N_SERVERS; j++) {
		if (j != old) {
			raft_fixture_saturate(&fx->f, old, j);
			raft_fixture_saturate(&fx->f, j, old);
		}
	}
	command_init(&cmd);
	put_node(&cmd, "lost", "host-x", COMMAND_EXPECT_NEW, 10);
	propose(fx, old, &cmd, &lost);
	assert_true(raft_fixture_step_until(&fx->f, has_other_leader, &o, 30000));
	for (unsigned j = 0; j < N_SERVERS; j++)
		if (j != old && j != o.found)
			survivor = j;

	/* The new leader takes writes; the survivor agrees. */
	command_init(&cmd);
	put_node(&cmd, "n2", "host-2", COMMAND_EXPECT_NEW, 20);
	put_node(&cmd, "n1", "host-1b", index, 20);
	assert_int_equal(commit(fx, o.found, &cmd, NULL), 0);
	command_init(&cmd);
	del(&cmd, RECORD_NODES, "n2", COMMAND_EXPECT_ANY);
	put_node(&cmd, "n3", "host-3", COMMAND_EXPECT_NEW, 30);
	assert_int_equal(commit(fx, o.found, &cmd, &index), 0);
	wait_applied(fx, survivor, index);
	assert_same_state(fx->servers[o.found].store, fx->servers[survivor].store);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		struct store *s = fx->servers[i].store;
		if (i == old) {
			assert_string_equal(store_node_get(s, "n1")->description.hostname,
					    "host-1");
			assert_null(store_node_get(s, "n3"));
		} else {
			assert_string_equal(store_node_get(s, "n1")->description.hostname,
					    "host-1b");
			assert_int_equal(store_node_get(s, "n3")->meta.version, index);
			assert_null(store_node_get(s, "n2"));
		}
		assert_null(store_node_get(s, "lost"));
	}

	/* Heal: the old leader catches up and drops its uncommitted entry. */
	for (unsigned j = 0; j < N_SERVERS; j++) {
		if (j != old) {
			raft_fixture_desaturate(&fx->f, old, j);
			raft_fixture_desaturate(&fx->f, j, old);
		}
	}
	wait_applied(fx, old, index);
	assert_true(raft_fixture_step_until(&fx->f, proposal_done, &lost, 10000));
	assert_int_not_equal(lost.status, 0);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		assert_null(store_node_get(fx->servers[i].store, "lost"));
		assert_same_state(fx->servers[o.found].store, fx->servers[i].store);
	}
}

static void raft_snapshot_catches_up_a_lagging_server(void **state)
{
	struct fx *fx = *state;
	unsigned leader = raft_fixture_leader_index(&fx->f), lag = (leader + 1) % N_SERVERS;
	struct command cmd;
	raft_index index = 0;
	char id[16];

	for (unsigned i = 0; i < N_SERVERS; i++) {
		raft_set_snapshot_threshold(raft_fixture_get(&fx->f, i), 4);
		raft_set_snapshot_trailing(raft_fixture_get(&fx->f, i), 2);
	}
	command_init(&cmd);
	put_cluster(&cmd, "c1", COMMAND_EXPECT_NEW);
	assert_int_equal(commit(fx, leader, &cmd, &index), 0);
	wait_applied(fx, N_SERVERS, index);

	raft_fixture_kill(&fx->f, lag);
	for (unsigned i = 0; i < 20; i++) {
		command_init(&cmd);
		snprintf(id, sizeof(id), "n%02u", i);
		put_node(&cmd, id, "host", COMMAND_EXPECT_NEW, i);
		if (i >= 2) {
			snprintf(id, sizeof(id), "n%02u", i - 2);
			del(&cmd, RECORD_NODES, id, COMMAND_EXPECT_ANY);
		}
		assert_int_equal(commit(fx, leader, &cmd, &index), 0);
	}
	assert_int_equal(store_node_count(fx->servers[lag].store), 0);
	assert_int_equal(fx->servers[lag].restores, 0);

	raft_fixture_revive(&fx->f, lag);
	wait_applied(fx, lag, index);
	/* The leader's log was compacted past what the lagging server had. */
	assert_true(fx->servers[lag].restores >= 1);
	wait_applied(fx, N_SERVERS, index);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		assert_int_equal(store_node_count(fx->servers[i].store), 2);
		assert_non_null(store_node_get(fx->servers[i].store, "n19"));
		assert_same_state(fx->servers[leader].store, fx->servers[i].store);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(versions_follow_the_raft_index),
	    cmocka_unit_test(expectations_are_enforced),
	    cmocka_unit_test(batches_apply_all_or_nothing),
	    cmocka_unit_test(undecodable_entries_are_noops),
	    cmocka_unit_test(find_resolves_like_docker),
	    cmocka_unit_test(iteration_is_in_id_order),
	    cmocka_unit_test(snapshot_restore_round_trip),
	    cmocka_unit_test(corrupt_snapshots_leave_state_unchanged),
	    cmocka_unit_test(watchers_hear_each_change),
	    cmocka_unit_test_setup_teardown(raft_replicates_to_every_store, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(raft_failover_keeps_committed_writes, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(raft_snapshot_catches_up_a_lagging_server, fx_setup,
					    fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
