/* The cluster state: sorted tables of records, and the Raft FSM that changes them.
 *
 * Each table is an array of record pointers sorted by id: binary search for
 * lookups and id prefixes, deterministic iteration for snapshots, and a
 * memmove of pointers per insert, cheap at the ~10k records a table holds.
 *
 * Snapshot encoding: {"format": 1, "index": N, "tables": {"cluster": [record,
 * ...], "nodes": [...]}} with each table's records in id order. */
#include "node/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sorted.h"
#include "node/command.h"

struct table {
	void **recs; /* sorted by meta.id */
	size_t n;
	size_t cap;
};

struct watcher {
	store_watch_fn fn;
	void *arg;
};

struct store {
	struct table tables[RECORD_TABLE_COUNT];
	uint64_t last_index;
	struct watcher *watchers;
	size_t n_watchers;
};

static const char *rec_id(const void *rec)
{
	return record_meta(rec)->id;
}

static const char *rec_id_at(const void *items, size_t i)
{
	return rec_id(((void *const *)items)[i]);
}

/* Position of @id in @t, or where it would be inserted; *@found tells which. */
static size_t search(const struct table *t, const char *id, bool *found)
{
	return sorted_find(t->recs, t->n, rec_id_at, id, found);
}

static int reserve(struct table *t, size_t n)
{
	void **recs;
	size_t cap;

	if (n <= t->cap)
		return 0;
	cap = t->cap > 0 ? t->cap : 16;
	while (cap < n)
		cap *= 2;
	recs = realloc(t->recs, cap * sizeof(*recs));
	if (recs == NULL)
		return SHOAL_ENOMEM;
	t->recs = recs;
	t->cap = cap;
	return 0;
}

static void table_clear(struct table *t, enum record_table which)
{
	for (size_t i = 0; i < t->n; i++)
		record_delete(which, t->recs[i]);
	free(t->recs);
	memset(t, 0, sizeof(*t));
}

static void tables_clear(struct table tables[RECORD_TABLE_COUNT])
{
	for (size_t i = 0; i < RECORD_TABLE_COUNT; i++)
		table_clear(&tables[i], (enum record_table)i);
}

int store_new(struct store **out, struct shoal_err *err)
{
	struct store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	if (s == NULL)
		return;
	tables_clear(s->tables);
	free(s->watchers);
	free(s);
}

int store_result_code(void *result)
{
	return (int)(intptr_t)result;
}

uint64_t store_last_index(const struct store *s)
{
	return s->last_index;
}

/* ---- apply ---- */

/* Check every op against the state before the command (ops touch distinct
 * records, so this is also the state each op meets) and make room for the
 * inserts, so that applying cannot fail half-way. */
static int prepare(struct store *s, const struct command *cmd)
{
	size_t creates[RECORD_TABLE_COUNT] = {0}, deletes[RECORD_TABLE_COUNT] = {0};

	for (size_t i = 0; i < cmd->n_ops; i++) {
		const struct command_op *op = &cmd->ops[i];
		const struct table *t = &s->tables[op->table];
		const struct record_meta *cur;
		bool found;
		size_t pos = search(t, op->id, &found);

		cur = found ? record_meta(t->recs[pos]) : NULL;
		if (op->expect_version == COMMAND_EXPECT_NEW) {
			if (cur != NULL)
				return SHOAL_ECONFLICT;
		} else if (op->expect_version != COMMAND_EXPECT_ANY) {
			if (cur == NULL)
				return SHOAL_ENOTFOUND;
			if (cur->version != op->expect_version)
				return SHOAL_ECONFLICT;
		}
		if (op->kind == COMMAND_DELETE) {
			if (cur == NULL)
				return SHOAL_ENOTFOUND;
			deletes[op->table]++;
		} else if (cur == NULL) {
			creates[op->table]++;
		}
	}
	for (size_t i = 0; i < RECORD_TABLE_COUNT; i++) {
		struct table *t = &s->tables[i];
		if (record_tables[i].singleton && t->n + creates[i] - deletes[i] > 1)
			return SHOAL_ECONFLICT;
		if (reserve(t, t->n + creates[i]) != 0)
			return SHOAL_ENOMEM;
	}
	return 0;
}

/* Apply one prepared op at @index, taking the op's record. */
static void apply_op(struct store *s, struct command_op *op, uint64_t index)
{
	struct table *t = &s->tables[op->table];
	bool found;
	size_t pos = search(t, op->id, &found);

	if (op->kind == COMMAND_DELETE) {
		PRE(found);
		record_delete(op->table, t->recs[pos]);
		memmove(&t->recs[pos], &t->recs[pos + 1], (t->n - pos - 1) * sizeof(*t->recs));
		t->n--;
		return;
	}
	struct record_meta *meta = op->record;
	meta->version = index;
	if (found) {
		meta->created_at = record_meta(t->recs[pos])->created_at;
		record_delete(op->table, t->recs[pos]);
	} else {
		PRE(t->n < t->cap);
		memmove(&t->recs[pos + 1], &t->recs[pos], (t->n - pos) * sizeof(*t->recs));
		t->n++;
	}
	t->recs[pos] = op->record;
	op->record = NULL;
}

static void notify(const struct store *s, enum record_table table, const char *id, uint64_t index)
{
	for (size_t i = 0; i < s->n_watchers; i++)
		s->watchers[i].fn(s->watchers[i].arg, table, id, index);
}

static int fsm_apply(void *arg, uint64_t index, const void *data, size_t len, void **result)
{
	struct store *s = arg;
	struct command cmd;
	int rv;

	PRE(index > s->last_index);
	rv = command_decode(data, len, &cmd, NULL);
	if (rv == 0)
		rv = prepare(s, &cmd);
	if (rv == SHOAL_ENOMEM) {
		command_free(&cmd);
		return rv; /* nothing changed: raft stops or retries this entry */
	}
	if (rv == 0)
		for (size_t i = 0; i < cmd.n_ops; i++)
			apply_op(s, &cmd.ops[i], index);
	s->last_index = index;
	if (rv == 0)
		for (size_t i = 0; i < cmd.n_ops; i++)
			notify(s, cmd.ops[i].table, cmd.ops[i].id, index);
	command_free(&cmd);
	*result = (void *)(intptr_t)rv;
	return 0;
}

/* ---- snapshot and restore ---- */

static int pack_str(msgpack_packer *pk, const char *str)
{
	size_t n = strlen(str);

	return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, str, n) != 0 ? -1 : 0;
}

static int fsm_snapshot(void *arg, void **out, size_t *len)
{
	const struct store *s = arg;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 3) != 0 || pack_str(&pk, "format") != 0 ||
	    msgpack_pack_uint64(&pk, STORE_SNAPSHOT_FORMAT) != 0 || pack_str(&pk, "index") != 0 ||
	    msgpack_pack_uint64(&pk, s->last_index) != 0 || pack_str(&pk, "tables") != 0 ||
	    msgpack_pack_map(&pk, RECORD_TABLE_COUNT) != 0)
		goto nomem;
	for (size_t i = 0; i < RECORD_TABLE_COUNT; i++) {
		const struct table *t = &s->tables[i];
		if (pack_str(&pk, record_tables[i].name) != 0 || msgpack_pack_array(&pk, t->n) != 0)
			goto nomem;
		for (size_t j = 0; j < t->n; j++)
			if (schema_pack(record_tables[i].schema, t->recs[j], &pk) != 0)
				goto nomem;
	}
	*len = sb.size;
	*out = msgpack_sbuffer_release(&sb);
	return 0;

nomem:
	msgpack_sbuffer_destroy(&sb);
	return SHOAL_ENOMEM;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
	       memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

/* Decode one table's array of records into the empty @t. */
static int restore_table(struct table *t, enum record_table which, const msgpack_object *o)
{
	int rv;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > STORE_MAX_RECORDS)
		return SHOAL_EPROTO;
	if (reserve(t, o->via.array.size) != 0)
		return SHOAL_ENOMEM;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		void *rec;
		rv = record_new(which, &rec, NULL);
		if (rv != 0)
			return rv;
		t->recs[t->n++] = rec;
		rv = schema_unpack(record_tables[which].schema, rec, &o->via.array.ptr[i], NULL);
		if (rv != 0)
			return rv;
		/* Ids are valid, unique and in order, as fsm_snapshot() writes them. */
		if (!command_id_valid(rec_id(rec)) ||
		    (i > 0 && strcmp(rec_id(t->recs[i - 1]), rec_id(rec)) >= 0))
			return SHOAL_EPROTO;
	}
	if (record_tables[which].singleton && t->n > 1)
		return SHOAL_EPROTO;
	return 0;
}

static int restore(struct store *s, const void *data, size_t len)
{
	struct table tables[RECORD_TABLE_COUNT];
	bool seen[RECORD_TABLE_COUNT] = {false};
	const msgpack_object *format = NULL, *index = NULL, *tabs = NULL;
	msgpack_unpacked u;
	int rv;

	memset(tables, 0, sizeof(tables));
	msgpack_unpacked_init(&u);
	rv = schema_msgpack_parse(data, len, &u, NULL);
	if (rv != 0)
		goto out;
	rv = SHOAL_EPROTO;
	if (u.data.type != MSGPACK_OBJECT_MAP)
		goto out;
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object *k = &u.data.via.map.ptr[i].key,
				     *v = &u.data.via.map.ptr[i].val;
		if (key_is(k, "format"))
			format = v;
		else if (key_is(k, "index"))
			index = v;
		else if (key_is(k, "tables"))
			tabs = v;
	}
	if (format == NULL || format->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    format->via.u64 != STORE_SNAPSHOT_FORMAT || index == NULL ||
	    index->type != MSGPACK_OBJECT_POSITIVE_INTEGER || tabs == NULL ||
	    tabs->type != MSGPACK_OBJECT_MAP)
		goto out;
	for (uint32_t i = 0; i < tabs->via.map.size; i++) {
		const msgpack_object *k = &tabs->via.map.ptr[i].key;
		enum record_table which;

		/* A table this node does not know would be lost: refuse. */
		if (k->type != MSGPACK_OBJECT_STR ||
		    record_table_by_name(k->via.str.ptr, k->via.str.size, &which) != 0 ||
		    seen[which])
			goto out;
		seen[which] = true;
		rv = restore_table(&tables[which], which, &tabs->via.map.ptr[i].val);
		if (rv != 0)
			goto out;
		rv = SHOAL_EPROTO;
	}
	tables_clear(s->tables);
	memcpy(s->tables, tables, sizeof(tables));
	memset(tables, 0, sizeof(tables));
	s->last_index = index->via.u64;
	rv = 0;

out:
	tables_clear(tables);
	msgpack_unpacked_destroy(&u);
	return rv;
}

static int fsm_restore(void *arg, const void *data, size_t len)
{
	struct store *s = arg;
	int rv = restore(s, data, len);

	if (rv == 0)
		for (size_t i = 0; i < RECORD_TABLE_COUNT; i++)
			notify(s, (enum record_table)i, NULL, s->last_index);
	return rv;
}

void store_fsm(struct store *s, struct consensus_fsm *fsm)
{
	fsm->arg = s;
	fsm->apply = fsm_apply;
	fsm->snapshot = fsm_snapshot;
	fsm->restore = fsm_restore;
}

/* ---- reads ---- */

size_t store_count(const struct store *s, enum record_table t)
{
	PRE(t < RECORD_TABLE_COUNT);
	return s->tables[t].n;
}

const void *store_at(const struct store *s, enum record_table t, size_t i)
{
	PRE(t < RECORD_TABLE_COUNT && i < s->tables[t].n);
	return s->tables[t].recs[i];
}

const void *store_get(const struct store *s, enum record_table t, const char *id)
{
	bool found;
	size_t pos;

	PRE(t < RECORD_TABLE_COUNT);
	pos = search(&s->tables[t], id, &found);
	return found ? s->tables[t].recs[pos] : NULL;
}

const struct cluster_rec *store_cluster(const struct store *s)
{
	return s->tables[RECORD_CLUSTER].n > 0 ? s->tables[RECORD_CLUSTER].recs[0] : NULL;
}

const struct node_rec *store_node_get(const struct store *s, const char *id)
{
	return store_get(s, RECORD_NODES, id);
}

size_t store_node_count(const struct store *s)
{
	return store_count(s, RECORD_NODES);
}

const struct node_rec *store_node_at(const struct store *s, size_t i)
{
	return store_at(s, RECORD_NODES, i);
}

/* The name Docker matches a node by: Spec.Name, else the hostname. */
static const char *node_name(const struct store *s, const void *rec, char *buf, size_t len)
{
	const struct node_rec *n = rec;

	(void)s;
	(void)buf;
	(void)len;

	if (n->spec.name != NULL && n->spec.name[0] != '\0')
		return n->spec.name;
	return n->description.hostname;
}

int store_find(const struct store *s, enum record_table which, const char *ref,
	       store_name_fn name_of, const void **out, struct shoal_err *err)
{
	char buf[STORE_NAME_MAX];
	const struct table *t = &s->tables[which];
	const char *kind = record_tables[which].kind;
	const void *match = NULL;
	size_t matches = 0, ref_len = strlen(ref), pos;
	bool found;

	if (ref_len == 0)
		return shoal_errf(err, SHOAL_ENOTFOUND, "%s %s not found", kind, ref);
	pos = search(t, ref, &found);
	if (found) {
		*out = t->recs[pos];
		return 0;
	}
	for (size_t i = 0; i < t->n; i++) {
		const char *name = name_of(s, t->recs[i], buf, sizeof(buf));
		if (name != NULL && strcmp(name, ref) == 0) {
			match = t->recs[i];
			matches++;
		}
	}
	/* Ids sharing the prefix sort right where @ref would go. */
	if (matches == 0) {
		for (size_t i = pos; i < t->n && strncmp(rec_id(t->recs[i]), ref, ref_len) == 0;
		     i++) {
			match = t->recs[i];
			matches++;
		}
	}
	if (matches == 0)
		return shoal_errf(err, SHOAL_ENOTFOUND, "%s %s not found", kind, ref);
	if (matches > 1)
		return shoal_errf(err, SHOAL_EINVAL, "%s %s is ambiguous (%zu matches found)", kind,
				  ref, matches);
	*out = match;
	return 0;
}

int store_node_find(const struct store *s, const char *ref, const struct node_rec **out,
		    struct shoal_err *err)
{
	const void *rec = NULL;
	int rv = store_find(s, RECORD_NODES, ref, node_name, &rec, err);

	if (rv == 0)
		*out = rec;
	return rv;
}

/* ---- watchers ---- */

int store_watch(struct store *s, store_watch_fn fn, void *arg, struct shoal_err *err)
{
	struct watcher *w = realloc(s->watchers, (s->n_watchers + 1) * sizeof(*w));

	if (w == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	s->watchers = w;
	w[s->n_watchers++] = (struct watcher){fn, arg};
	return 0;
}

void store_unwatch(struct store *s, store_watch_fn fn, void *arg)
{
	for (size_t i = 0; i < s->n_watchers; i++) {
		if (s->watchers[i].fn == fn && s->watchers[i].arg == arg) {
			memmove(&s->watchers[i], &s->watchers[i + 1],
				(s->n_watchers - i - 1) * sizeof(*s->watchers));
			s->n_watchers--;
			return;
		}
	}
}
