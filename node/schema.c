/* Record descriptors: one table of fields per record drives msgpack, JSON, copy and free. */
#include "node/schema.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/clock.h"
#include "lib/sorted.h"

#define SEGMENT_MAX 64 /* longest component of a field path */
#define QUOTE_MAX   48 /* longest excerpt of bad input quoted in a message */

/* Room for any field's value, to decode into before replacing the old one. */
union field_value {
	char *str;
	uint64_t u64;
	int64_t i64;
	bool b;
	int e;
	double f64;
	struct schema_map map;
	struct schema_strlist strlist;
	struct schema_bytes bytes;
	struct schema_list list;
};

static size_t field_size(const struct schema_field *f)
{
	switch (f->type) {
	case SCHEMA_STRING:
		return sizeof(char *);
	case SCHEMA_U64:
		return sizeof(uint64_t);
	case SCHEMA_I64:
	case SCHEMA_TIME:
		return sizeof(int64_t);
	case SCHEMA_BOOL:
		return sizeof(bool);
	case SCHEMA_ENUM:
		return sizeof(int);
	case SCHEMA_MAP:
		return sizeof(struct schema_map);
	case SCHEMA_STRLIST:
		return sizeof(struct schema_strlist);
	case SCHEMA_BYTES:
		return sizeof(struct schema_bytes);
	case SCHEMA_LIST:
		return sizeof(struct schema_list);
	case SCHEMA_F64:
		return sizeof(double);
	case SCHEMA_STRUCT:
		return f->elem->size;
	}
	return 0;
}

static void *field_at(void *rec, const struct schema_field *f)
{
	return (char *)rec + f->offset;
}

static const void *field_cat(const void *rec, const struct schema_field *f)
{
	return (const char *)rec + f->offset;
}

static void *list_item(const struct schema *elem, const struct schema_list *l, size_t i)
{
	return (char *)l->items + i * elem->size;
}

/* Length of the valid UTF-8 sequence at @p (1 to 4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* True if @n bytes at @s are UTF-8 without NUL bytes: what a C string in a record holds. */
static bool text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t l = p[i] == 0 ? 0 : utf8_seq(p + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/* Copy up to QUOTE_MAX bytes of untrusted @s into @out as printable ASCII. */
static const char *quote(const char *s, size_t n, char out[QUOTE_MAX + 4])
{
	size_t i, o = 0;

	for (i = 0; i < n && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- free, copy, equal ---- */

static void map_clear(struct schema_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
	m->items = NULL;
	m->n = 0;
}

static void strlist_clear(struct schema_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static void list_clear(const struct schema *elem, struct schema_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		schema_free(elem, list_item(elem, l, i));
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static void field_free(const struct schema_field *f, void *p)
{
	switch (f->type) {
	case SCHEMA_STRING:
		free(*(char **)p);
		*(char **)p = NULL;
		break;
	case SCHEMA_MAP:
		map_clear(p);
		break;
	case SCHEMA_STRLIST:
		strlist_clear(p);
		break;
	case SCHEMA_BYTES: {
		struct schema_bytes *b = p;
		free(b->data);
		b->data = NULL;
		b->len = 0;
		break;
	}
	case SCHEMA_LIST:
		list_clear(f->elem, p);
		break;
	case SCHEMA_STRUCT:
		schema_free(f->elem, p);
		break;
	case SCHEMA_U64:
	case SCHEMA_I64:
	case SCHEMA_BOOL:
	case SCHEMA_TIME:
	case SCHEMA_ENUM:
	case SCHEMA_F64:
		break;
	}
}

void schema_free(const struct schema *s, void *rec)
{
	if (rec == NULL)
		return;
	for (size_t i = 0; i < s->n_fields; i++)
		field_free(&s->fields[i], field_at(rec, &s->fields[i]));
}

static bool field_owns_heap(const struct schema_field *f)
{
	return f->type == SCHEMA_STRING || f->type == SCHEMA_MAP || f->type == SCHEMA_STRLIST ||
	       f->type == SCHEMA_BYTES || f->type == SCHEMA_LIST || f->type == SCHEMA_STRUCT;
}

/* Deep-copy the heap members of @src into the detached @dst. On failure @dst
 * holds what was copied so far, for field_free(). */
static int field_copy(const struct schema_field *f, void *dst, const void *src)
{
	switch (f->type) {
	case SCHEMA_STRING: {
		const char *s = *(char *const *)src;
		if (s != NULL && (*(char **)dst = strdup(s)) == NULL)
			return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_MAP: {
		const struct schema_map *sm = src;
		struct schema_map *dm = dst;
		if (sm->n == 0)
			return 0;
		if ((dm->items = calloc(sm->n, sizeof(*dm->items))) == NULL)
			return SHOAL_ENOMEM;
		dm->n = sm->n;
		for (size_t i = 0; i < sm->n; i++) {
			dm->items[i].key = strdup(sm->items[i].key);
			dm->items[i].value = strdup(sm->items[i].value);
			if (dm->items[i].key == NULL || dm->items[i].value == NULL)
				return SHOAL_ENOMEM;
		}
		return 0;
	}
	case SCHEMA_STRLIST: {
		const struct schema_strlist *sl = src;
		struct schema_strlist *dl = dst;
		if (sl->n == 0)
			return 0;
		if ((dl->items = calloc(sl->n, sizeof(*dl->items))) == NULL)
			return SHOAL_ENOMEM;
		dl->n = sl->n;
		for (size_t i = 0; i < sl->n; i++)
			if ((dl->items[i] = strdup(sl->items[i])) == NULL)
				return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_BYTES: {
		const struct schema_bytes *sb = src;
		struct schema_bytes *db = dst;
		if (sb->len == 0)
			return 0;
		if ((db->data = malloc(sb->len)) == NULL)
			return SHOAL_ENOMEM;
		memcpy(db->data, sb->data, sb->len);
		db->len = sb->len;
		return 0;
	}
	case SCHEMA_LIST: {
		const struct schema_list *sl = src;
		struct schema_list *dl = dst;
		if (sl->n == 0)
			return 0;
		if ((dl->items = calloc(sl->n, f->elem->size)) == NULL)
			return SHOAL_ENOMEM;
		dl->n = sl->n;
		for (size_t i = 0; i < sl->n; i++)
			if (schema_copy(f->elem, list_item(f->elem, dl, i),
					list_item(f->elem, sl, i), NULL) != 0)
				return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_STRUCT:
		/* On failure schema_copy() leaves @dst with nothing to free. */
		return schema_copy(f->elem, dst, src, NULL) != 0 ? SHOAL_ENOMEM : 0;
	case SCHEMA_U64:
	case SCHEMA_I64:
	case SCHEMA_BOOL:
	case SCHEMA_TIME:
	case SCHEMA_ENUM:
	case SCHEMA_F64:
		return 0;
	}
	return 0;
}

int schema_copy(const struct schema *s, void *dst, const void *src, struct shoal_err *err)
{
	memcpy(dst, src, s->size);
	/* Forget the heap members shared with @src before copying them. */
	for (size_t i = 0; i < s->n_fields; i++)
		if (field_owns_heap(&s->fields[i]))
			memset(field_at(dst, &s->fields[i]), 0, field_size(&s->fields[i]));
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct schema_field *f = &s->fields[i];
		if (field_copy(f, field_at(dst, f), field_cat(src, f)) != 0) {
			schema_free(s, dst);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory copying a %s record",
					  s->name);
		}
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool field_equal(const struct schema_field *f, const void *a, const void *b)
{
	switch (f->type) {
	case SCHEMA_STRING:
		return str_eq(*(char *const *)a, *(char *const *)b);
	case SCHEMA_U64:
		return *(const uint64_t *)a == *(const uint64_t *)b;
	case SCHEMA_I64:
	case SCHEMA_TIME:
		return *(const int64_t *)a == *(const int64_t *)b;
	case SCHEMA_BOOL:
		return *(const bool *)a == *(const bool *)b;
	case SCHEMA_ENUM:
		return *(const int *)a == *(const int *)b;
	case SCHEMA_MAP: {
		const struct schema_map *x = a, *y = b;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (strcmp(x->items[i].key, y->items[i].key) != 0 ||
			    strcmp(x->items[i].value, y->items[i].value) != 0)
				return false;
		return true;
	}
	case SCHEMA_STRLIST: {
		const struct schema_strlist *x = a, *y = b;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (strcmp(x->items[i], y->items[i]) != 0)
				return false;
		return true;
	}
	case SCHEMA_BYTES: {
		const struct schema_bytes *x = a, *y = b;
		return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
	}
	case SCHEMA_LIST: {
		const struct schema_list *x = a, *y = b;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (!schema_equal(f->elem, list_item(f->elem, x, i),
					  list_item(f->elem, y, i)))
				return false;
		return true;
	}
	case SCHEMA_F64:
		return *(const double *)a == *(const double *)b;
	case SCHEMA_STRUCT:
		return schema_equal(f->elem, a, b);
	}
	return false;
}

bool schema_equal(const struct schema *s, const void *a, const void *b)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct schema_field *f = &s->fields[i];
		if (!field_equal(f, field_cat(a, f), field_cat(b, f)))
			return false;
	}
	return true;
}

/* ---- msgpack ---- */

static int pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0)
		return SHOAL_ENOMEM;
	return 0;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	return pack_strn(pk, s, strlen(s));
}

static int pack_rec(const struct schema *s, const void *rec, msgpack_packer *pk, unsigned depth);

static int pack_field(const struct schema_field *f, const void *p, msgpack_packer *pk,
		      unsigned depth)
{
	switch (f->type) {
	case SCHEMA_STRING: {
		const char *s = *(char *const *)p;
		if (s == NULL)
			return msgpack_pack_nil(pk) != 0 ? SHOAL_ENOMEM : 0;
		return pack_str(pk, s);
	}
	case SCHEMA_U64:
		return msgpack_pack_uint64(pk, *(const uint64_t *)p) != 0 ? SHOAL_ENOMEM : 0;
	case SCHEMA_I64:
	case SCHEMA_TIME:
		return msgpack_pack_int64(pk, *(const int64_t *)p) != 0 ? SHOAL_ENOMEM : 0;
	case SCHEMA_BOOL:
		if (*(const bool *)p)
			return msgpack_pack_true(pk) != 0 ? SHOAL_ENOMEM : 0;
		return msgpack_pack_false(pk) != 0 ? SHOAL_ENOMEM : 0;
	case SCHEMA_ENUM: {
		const char *name = schema_enum_name(f->enums, *(const int *)p);
		PRE(name != NULL);
		return pack_str(pk, name != NULL ? name : "");
	}
	case SCHEMA_MAP: {
		const struct schema_map *m = p;
		if (msgpack_pack_map(pk, m->n) != 0)
			return SHOAL_ENOMEM;
		for (size_t i = 0; i < m->n; i++)
			if (pack_str(pk, m->items[i].key) != 0 ||
			    pack_str(pk, m->items[i].value) != 0)
				return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_STRLIST: {
		const struct schema_strlist *l = p;
		if (msgpack_pack_array(pk, l->n) != 0)
			return SHOAL_ENOMEM;
		for (size_t i = 0; i < l->n; i++)
			if (pack_str(pk, l->items[i]) != 0)
				return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_BYTES: {
		const struct schema_bytes *b = p;
		if (msgpack_pack_bin(pk, b->len) != 0 ||
		    (b->len > 0 && msgpack_pack_bin_body(pk, b->data, b->len) != 0))
			return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_LIST: {
		const struct schema_list *l = p;
		if (msgpack_pack_array(pk, l->n) != 0)
			return SHOAL_ENOMEM;
		for (size_t i = 0; i < l->n; i++)
			if (pack_rec(f->elem, list_item(f->elem, l, i), pk, depth + 1) != 0)
				return SHOAL_ENOMEM;
		return 0;
	}
	case SCHEMA_F64:
		return msgpack_pack_double(pk, *(const double *)p) != 0 ? SHOAL_ENOMEM : 0;
	case SCHEMA_STRUCT:
		return pack_rec(f->elem, p, pk, depth + 1);
	}
	return 0;
}

static int pack_rec(const struct schema *s, const void *rec, msgpack_packer *pk, unsigned depth)
{
	PRE(depth < SCHEMA_MAX_DEPTH);
	if (msgpack_pack_map(pk, s->n_fields) != 0)
		return SHOAL_ENOMEM;
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct schema_field *f = &s->fields[i];
		if (pack_str(pk, f->path) != 0 || pack_field(f, field_cat(rec, f), pk, depth) != 0)
			return SHOAL_ENOMEM;
	}
	return 0;
}

int schema_pack(const struct schema *s, const void *rec, msgpack_packer *pk)
{
	return pack_rec(s, rec, pk, 0);
}

static const char *mp_type(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	case MSGPACK_OBJECT_BIN:
		return "binary data";
	case MSGPACK_OBJECT_EXT:
		return "an extension";
	}
	return "an unknown type";
}

static int mp_want(const msgpack_object *o, msgpack_object_type t, const char *what,
		   struct shoal_err *err)
{
	if (o->type == t)
		return 0;
	return shoal_errf(err, SHOAL_EPROTO, "expected %s, got %s", what, mp_type(o));
}

/* Check and copy a msgpack string into a new C string. */
static int mp_text(const msgpack_object *o, char **out, struct shoal_err *err)
{
	if (mp_want(o, MSGPACK_OBJECT_STR, "a string", err) != 0)
		return SHOAL_EPROTO;
	if (o->via.str.size > SCHEMA_MAX_STRING)
		return shoal_errf(err, SHOAL_EPROTO, "string of %u bytes exceeds the limit of %u",
				  o->via.str.size, SCHEMA_MAX_STRING);
	if (!text_ok(o->via.str.ptr, o->via.str.size))
		return shoal_errf(err, SHOAL_EPROTO, "string is not UTF-8 or holds a NUL byte");
	if ((*out = dup_n(o->via.str.ptr, o->via.str.size)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

static int mp_count(uint32_t n, struct shoal_err *err)
{
	if (n > SCHEMA_MAX_ITEMS)
		return shoal_errf(err, SHOAL_EPROTO, "%u entries exceed the limit of %u", n,
				  SCHEMA_MAX_ITEMS);
	return 0;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct schema_kv *)a)->key, ((const struct schema_kv *)b)->key);
}

/* Sort @m by key; duplicate keys are an error. */
static int map_sort(struct schema_map *m)
{
	if (m->n > 1)
		qsort(m->items, m->n, sizeof(*m->items), kv_cmp);
	for (size_t i = 1; i < m->n; i++)
		if (strcmp(m->items[i - 1].key, m->items[i].key) == 0)
			return -1;
	return 0;
}

static int unpack_rec(const struct schema *s, void *rec, const msgpack_object *obj, unsigned depth,
		      struct shoal_err *err);

/* Decode @o into a fresh value in @out (zeroed on entry, holds what to free on error). */
static int unpack_value(const struct schema_field *f, void *out, const msgpack_object *o,
			unsigned depth, struct shoal_err *err)
{
	int rv;

	switch (f->type) {
	case SCHEMA_STRING:
		if (o->type == MSGPACK_OBJECT_NIL)
			return 0;
		return mp_text(o, out, err);
	case SCHEMA_U64:
		if (mp_want(o, MSGPACK_OBJECT_POSITIVE_INTEGER, "an unsigned integer", err) != 0)
			return SHOAL_EPROTO;
		*(uint64_t *)out = o->via.u64;
		return 0;
	case SCHEMA_I64:
	case SCHEMA_TIME:
		if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			*(int64_t *)out = o->via.i64;
			return 0;
		}
		if (mp_want(o, MSGPACK_OBJECT_POSITIVE_INTEGER, "an integer", err) != 0)
			return SHOAL_EPROTO;
		if (o->via.u64 > INT64_MAX)
			return shoal_errf(err, SHOAL_EPROTO, "integer %llu is out of range",
					  (unsigned long long)o->via.u64);
		*(int64_t *)out = (int64_t)o->via.u64;
		return 0;
	case SCHEMA_BOOL:
		if (mp_want(o, MSGPACK_OBJECT_BOOLEAN, "a boolean", err) != 0)
			return SHOAL_EPROTO;
		*(bool *)out = o->via.boolean;
		return 0;
	case SCHEMA_ENUM: {
		char q[QUOTE_MAX + 4];
		if (mp_want(o, MSGPACK_OBJECT_STR, "a string", err) != 0)
			return SHOAL_EPROTO;
		for (const struct schema_enum *e = f->enums; e->name != NULL; e++) {
			if (strlen(e->name) == o->via.str.size &&
			    memcmp(e->name, o->via.str.ptr, o->via.str.size) == 0) {
				*(int *)out = e->value;
				return 0;
			}
		}
		return shoal_errf(err, SHOAL_EPROTO, "unknown value \"%s\"",
				  quote(o->via.str.ptr, o->via.str.size, q));
	}
	case SCHEMA_MAP: {
		struct schema_map *m = out;
		if (mp_want(o, MSGPACK_OBJECT_MAP, "a map", err) != 0 ||
		    mp_count(o->via.map.size, err) != 0)
			return SHOAL_EPROTO;
		if (o->via.map.size == 0)
			return 0;
		if ((m->items = calloc(o->via.map.size, sizeof(*m->items))) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			m->n = i + 1;
			if ((rv = mp_text(&o->via.map.ptr[i].key, &m->items[i].key, err)) != 0 ||
			    (rv = mp_text(&o->via.map.ptr[i].val, &m->items[i].value, err)) != 0)
				return rv;
		}
		if (map_sort(m) != 0)
			return shoal_errf(err, SHOAL_EPROTO, "a key appears twice");
		return 0;
	}
	case SCHEMA_STRLIST: {
		struct schema_strlist *l = out;
		if (mp_want(o, MSGPACK_OBJECT_ARRAY, "an array", err) != 0 ||
		    mp_count(o->via.array.size, err) != 0)
			return SHOAL_EPROTO;
		if (o->via.array.size == 0)
			return 0;
		if ((l->items = calloc(o->via.array.size, sizeof(*l->items))) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			l->n = i + 1;
			if ((rv = mp_text(&o->via.array.ptr[i], &l->items[i], err)) != 0)
				return rv;
		}
		return 0;
	}
	case SCHEMA_BYTES: {
		struct schema_bytes *b = out;
		if (mp_want(o, MSGPACK_OBJECT_BIN, "binary data", err) != 0)
			return SHOAL_EPROTO;
		if (o->via.bin.size > SCHEMA_MAX_BYTES)
			return shoal_errf(err, SHOAL_EPROTO, "%u bytes exceed the limit of %u",
					  o->via.bin.size, SCHEMA_MAX_BYTES);
		if (o->via.bin.size == 0)
			return 0;
		if ((b->data = malloc(o->via.bin.size)) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		memcpy(b->data, o->via.bin.ptr, o->via.bin.size);
		b->len = o->via.bin.size;
		return 0;
	}
	case SCHEMA_LIST: {
		struct schema_list *l = out;
		if (mp_want(o, MSGPACK_OBJECT_ARRAY, "an array", err) != 0 ||
		    mp_count(o->via.array.size, err) != 0)
			return SHOAL_EPROTO;
		if (depth + 1 >= SCHEMA_MAX_DEPTH)
			return shoal_errf(err, SHOAL_EPROTO, "nested deeper than %u levels",
					  SCHEMA_MAX_DEPTH);
		if (o->via.array.size == 0)
			return 0;
		if ((l->items = calloc(o->via.array.size, f->elem->size)) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			l->n = i + 1;
			rv = unpack_rec(f->elem, list_item(f->elem, l, i), &o->via.array.ptr[i],
					depth + 1, err);
			if (rv != 0) {
				shoal_err_wrap(err, "item %u", i);
				return rv;
			}
		}
		return 0;
	}
	case SCHEMA_F64: {
		double d;
		if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
			d = o->via.f64;
		else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			d = (double)o->via.u64;
		else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			d = (double)o->via.i64;
		else
			return mp_want(o, MSGPACK_OBJECT_FLOAT64, "a number", err);
		if (!isfinite(d))
			return shoal_errf(err, SHOAL_EPROTO, "expected a finite number");
		*(double *)out = d;
		return 0;
	}
	case SCHEMA_STRUCT:
		/* unpack_rec() decodes it in place, merging. */
		break;
	}
	return SHOAL_EPROTO;
}

static int unpack_struct(const struct schema_field *f, void *p, const msgpack_object *o,
			 unsigned depth, struct shoal_err *err)
{
	if (mp_want(o, MSGPACK_OBJECT_MAP, "a map", err) != 0)
		return SHOAL_EPROTO;
	if (depth + 1 >= SCHEMA_MAX_DEPTH)
		return shoal_errf(err, SHOAL_EPROTO, "nested deeper than %u levels",
				  SCHEMA_MAX_DEPTH);
	return unpack_rec(f->elem, p, o, depth + 1, err);
}

static const struct schema_field *field_by_key(const struct schema *s, const char *key, size_t len,
					       size_t hint)
{
	/* Keys usually come in declaration order: try the next field first. */
	if (hint < s->n_fields && strlen(s->fields[hint].path) == len &&
	    memcmp(s->fields[hint].path, key, len) == 0)
		return &s->fields[hint];
	for (size_t i = 0; i < s->n_fields; i++)
		if (strlen(s->fields[i].path) == len && memcmp(s->fields[i].path, key, len) == 0)
			return &s->fields[i];
	return NULL;
}

/* Decode the map @obj into @rec in place; on error @rec holds only what to free. */
static int unpack_rec(const struct schema *s, void *rec, const msgpack_object *obj, unsigned depth,
		      struct shoal_err *err)
{
	int rv;

	if (mp_want(obj, MSGPACK_OBJECT_MAP, "a map", err) != 0) {
		shoal_err_wrap(err, "%s record", s->name);
		return SHOAL_EPROTO;
	}
	for (uint32_t i = 0; i < obj->via.map.size; i++) {
		const msgpack_object *k = &obj->via.map.ptr[i].key;
		const struct schema_field *f;
		union field_value v;

		if (k->type != MSGPACK_OBJECT_STR)
			return shoal_errf(err, SHOAL_EPROTO, "%s record: a key is %s, not a string",
					  s->name, mp_type(k));
		f = field_by_key(s, k->via.str.ptr, k->via.str.size, i);
		if (f == NULL)
			continue; /* written by a newer version: skip */
		if (f->type == SCHEMA_STRUCT) {
			/* In place: keys it lacks keep their value, as at the top level. */
			rv = unpack_struct(f, field_at(rec, f), &obj->via.map.ptr[i].val, depth,
					   err);
			if (rv != 0) {
				shoal_err_wrap(err, "field %s", f->path);
				return rv;
			}
			continue;
		}
		memset(&v, 0, sizeof(v));
		rv = unpack_value(f, &v, &obj->via.map.ptr[i].val, depth, err);
		if (rv != 0) {
			field_free(f, &v);
			shoal_err_wrap(err, "field %s", f->path);
			return rv;
		}
		field_free(f, field_at(rec, f));
		memcpy(field_at(rec, f), &v, field_size(f));
	}
	return 0;
}

int schema_unpack(const struct schema *s, void *rec, const msgpack_object *obj,
		  struct shoal_err *err)
{
	void *tmp = malloc(s->size);
	int rv;

	if (tmp == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory decoding a %s record", s->name);
	rv = schema_copy(s, tmp, rec, err);
	if (rv == 0)
		rv = unpack_rec(s, tmp, obj, 0, err);
	if (rv == 0) {
		schema_free(s, rec);
		memcpy(rec, tmp, s->size);
	} else {
		schema_free(s, tmp);
	}
	free(tmp);
	return rv;
}

/* Read a big-endian length of @n bytes at @p. */
static size_t be_len(const unsigned char *p, size_t n)
{
	size_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Walk the encoding once without allocating. Every declared string, binary and
 * extension length must fit in the bytes left, and every pending object needs
 * at least one byte, so no count can make msgpack-c allocate more than a small
 * multiple of @len. */
static int msgpack_prescan(const unsigned char *p, size_t len, struct shoal_err *err)
{
	size_t pos = 0, pending = 1;

	while (pending > 0) {
		size_t hdr = 0, body = 0, items = 0;
		unsigned char b;

		if (pos >= len)
			return shoal_errf(err, SHOAL_EPROTO, "msgpack data ends early");
		b = p[pos++];
		pending--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b <= 0x8f) {
			items = 2 * (size_t)(b & 0x0f);
		} else if (b <= 0x9f) {
			items = b & 0x0f;
		} else if (b <= 0xbf) {
			body = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4:
			case 0xc5:
			case 0xc6: /* bin 8/16/32 */
			case 0xd9:
			case 0xda:
			case 0xdb: /* str 8/16/32 */
				hdr = (size_t)1 << ((b <= 0xc6 ? b - 0xc4 : b - 0xd9));
				break;
			case 0xc7:
			case 0xc8:
			case 0xc9: /* ext 8/16/32, then a type byte */
				hdr = (size_t)1 << (b - 0xc7);
				break;
			case 0xca:
			case 0xce:
			case 0xd2: /* float32, uint32, int32 */
				body = 4;
				break;
			case 0xcb:
			case 0xcf:
			case 0xd3:
				body = 8;
				break;
			case 0xcc:
			case 0xd0:
				body = 1;
				break;
			case 0xcd:
			case 0xd1:
				body = 2;
				break;
			case 0xd4:
			case 0xd5:
			case 0xd6:
			case 0xd7:
			case 0xd8: /* fixext */
				body = 1 + ((size_t)1 << (b - 0xd4));
				break;
			case 0xdc:
			case 0xdd:
			case 0xde:
			case 0xdf: /* array/map 16/32 */
				hdr = b == 0xdc || b == 0xde ? 2 : 4;
				break;
			default:
				return shoal_errf(err, SHOAL_EPROTO,
						  "msgpack data holds the invalid byte 0x%02x", b);
			}
			if (hdr > len - pos)
				return shoal_errf(err, SHOAL_EPROTO, "msgpack data ends early");
			if (b >= 0xdc)
				items = be_len(p + pos, hdr) * (b >= 0xde ? 2 : 1);
			else if (hdr > 0)
				body = be_len(p + pos, hdr) + (b >= 0xc7 && b <= 0xc9 ? 1 : 0);
			pos += hdr;
		}
		if (body > len - pos)
			return shoal_errf(err, SHOAL_EPROTO, "msgpack data ends early");
		pos += body;
		if (items > len - pos || pending + items > len - pos)
			return shoal_errf(err, SHOAL_EPROTO,
					  "msgpack data declares more items than it holds");
		pending += items;
	}
	if (pos != len)
		return shoal_errf(err, SHOAL_EPROTO, "%zu bytes follow the msgpack data",
				  len - pos);
	return 0;
}

int schema_msgpack_parse(const void *buf, size_t len, msgpack_unpacked *out, struct shoal_err *err)
{
	size_t off = 0;
	int rv;

	if (len > SCHEMA_MAX_MSGPACK)
		return shoal_errf(err, SHOAL_ETOOBIG, "msgpack data of %zu bytes exceeds %u", len,
				  SCHEMA_MAX_MSGPACK);
	rv = msgpack_prescan(buf, len, err);
	if (rv != 0)
		return rv;
	switch (msgpack_unpack_next(out, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return shoal_errf(err, SHOAL_EPROTO, "msgpack data is nested too deeply");
	default:
		return shoal_errf(err, SHOAL_EPROTO, "msgpack data is malformed");
	}
	if (off != len)
		return shoal_errf(err, SHOAL_EPROTO, "%zu bytes follow the msgpack data",
				  len - off);
	return 0;
}

/* ---- JSON ---- */

/* Go renders time.Time with RFC3339Nano: trailing zeros of the fraction dropped. */
static void format_time(int64_t ns, char out[64])
{
	size_t n;

	clock_format_rfc3339(ns, out, 64);
	n = strlen(out);
	if (n < 2 || out[n - 1] != 'Z' || strchr(out, '.') == NULL)
		return;
	n--;
	while (out[n - 1] == '0')
		n--;
	if (out[n - 1] == '.')
		n--;
	out[n] = 'Z';
	out[n + 1] = '\0';
}

static bool field_empty(const struct schema_field *f, const void *p)
{
	switch (f->type) {
	case SCHEMA_STRING:
		return *(char *const *)p == NULL || **(char *const *)p == '\0';
	case SCHEMA_U64:
		return *(const uint64_t *)p == 0;
	case SCHEMA_I64:
	case SCHEMA_TIME:
		return *(const int64_t *)p == 0;
	case SCHEMA_BOOL:
		return !*(const bool *)p;
	case SCHEMA_ENUM:
		return false;
	case SCHEMA_MAP:
		return ((const struct schema_map *)p)->n == 0;
	case SCHEMA_STRLIST:
		return ((const struct schema_strlist *)p)->n == 0;
	case SCHEMA_BYTES:
		return ((const struct schema_bytes *)p)->len == 0;
	case SCHEMA_LIST:
		return ((const struct schema_list *)p)->n == 0;
	case SCHEMA_F64:
		return *(const double *)p == 0;
	case SCHEMA_STRUCT:
		for (size_t i = 0; i < f->elem->n_fields; i++) {
			const struct schema_field *e = &f->elem->fields[i];
			if (!(e->flags & SCHEMA_INTERNAL) && !field_empty(e, field_cat(p, e)))
				return false;
		}
		return true;
	}
	return false;
}

static int json_text(const char *s, json_t **out, struct shoal_err *err)
{
	if (!text_ok(s, strlen(s)))
		return shoal_errf(err, SHOAL_EINVAL, "string is not UTF-8");
	if ((*out = json_string_nocheck(s)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

static int to_json_rec(const struct schema *s, const void *rec, json_t **out, unsigned depth,
		       struct shoal_err *err);

static int value_to_json(const struct schema_field *f, const void *p, json_t **out, unsigned depth,
			 struct shoal_err *err)
{
	json_t *v = NULL;
	int rv;

	switch (f->type) {
	case SCHEMA_STRING: {
		const char *s = *(char *const *)p;
		return json_text(s != NULL ? s : "", out, err);
	}
	case SCHEMA_U64: {
		uint64_t u = *(const uint64_t *)p;
		/* jansson's integers are signed 64-bit. */
		v = u <= INT64_MAX ? json_integer((json_int_t)u) : json_real((double)u);
		break;
	}
	case SCHEMA_I64:
		v = json_integer((json_int_t) * (const int64_t *)p);
		break;
	case SCHEMA_BOOL:
		v = json_boolean(*(const bool *)p);
		break;
	case SCHEMA_TIME: {
		char t[64];
		format_time(*(const int64_t *)p, t);
		v = json_string_nocheck(t);
		break;
	}
	case SCHEMA_ENUM: {
		const char *name = schema_enum_name(f->enums, *(const int *)p);
		PRE(name != NULL);
		v = json_string_nocheck(name != NULL ? name : "");
		break;
	}
	case SCHEMA_MAP: {
		const struct schema_map *m = p;
		if ((v = json_object()) == NULL)
			break;
		for (size_t i = 0; i < m->n; i++) {
			json_t *e;
			if (!text_ok(m->items[i].key, strlen(m->items[i].key))) {
				json_decref(v);
				return shoal_errf(err, SHOAL_EINVAL, "a key is not UTF-8");
			}
			if ((rv = json_text(m->items[i].value, &e, err)) != 0) {
				json_decref(v);
				return rv;
			}
			if (json_object_set_new_nocheck(v, m->items[i].key, e) != 0) {
				json_decref(v);
				v = NULL;
				break;
			}
		}
		break;
	}
	case SCHEMA_STRLIST: {
		const struct schema_strlist *l = p;
		if ((v = json_array()) == NULL)
			break;
		for (size_t i = 0; i < l->n; i++) {
			json_t *e;
			if ((rv = json_text(l->items[i], &e, err)) != 0) {
				json_decref(v);
				return rv;
			}
			if (json_array_append_new(v, e) != 0) {
				json_decref(v);
				v = NULL;
				break;
			}
		}
		break;
	}
	case SCHEMA_BYTES: {
		const struct schema_bytes *b = p;
		size_t n = sodium_base64_ENCODED_LEN(b->len, sodium_base64_VARIANT_ORIGINAL);
		char *t = malloc(n);
		if (t == NULL)
			break;
		sodium_bin2base64(t, n, b->data, b->len, sodium_base64_VARIANT_ORIGINAL);
		v = json_string_nocheck(t);
		free(t);
		break;
	}
	case SCHEMA_LIST: {
		const struct schema_list *l = p;
		if ((v = json_array()) == NULL)
			break;
		for (size_t i = 0; i < l->n; i++) {
			json_t *e;
			rv = to_json_rec(f->elem, list_item(f->elem, l, i), &e, depth + 1, err);
			if (rv != 0) {
				json_decref(v);
				return rv;
			}
			if (json_array_append_new(v, e) != 0) {
				json_decref(v);
				v = NULL;
				break;
			}
		}
		break;
	}
	case SCHEMA_F64: {
		double d = *(const double *)p;
		/* Go prints a whole float64 without a fraction: 0, not 0.0. */
		if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
		    (double)(json_int_t)d == d)
			v = json_integer((json_int_t)d);
		else
			v = json_real(d);
		break;
	}
	case SCHEMA_STRUCT:
		return to_json_rec(f->elem, p, out, depth + 1, err);
	}
	if (v == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	*out = v;
	return 0;
}

/* Copy the first dot-separated component of @path into @seg. Returns what
 * follows the dot, or NULL if @seg is the last component. */
static const char *path_next(const char *path, char seg[SEGMENT_MAX])
{
	const char *dot = strchr(path, '.');
	size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);

	PRE(len > 0 && len < SEGMENT_MAX);
	if (len >= SEGMENT_MAX)
		len = SEGMENT_MAX - 1;
	memcpy(seg, path, len);
	seg[len] = '\0';
	return dot != NULL ? dot + 1 : NULL;
}

static int to_json_rec(const struct schema *s, const void *rec, json_t **out, unsigned depth,
		       struct shoal_err *err)
{
	json_t *root = json_object();
	int rv;

	PRE(depth < SCHEMA_MAX_DEPTH);
	if (root == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct schema_field *f = &s->fields[i];
		const void *p = field_cat(rec, f);
		json_t *obj = root, *v;
		char seg[SEGMENT_MAX];
		const char *rest;

		if ((f->flags & SCHEMA_INTERNAL) ||
		    ((f->flags & SCHEMA_OMITEMPTY) && field_empty(f, p)))
			continue;
		rv = value_to_json(f, p, &v, depth, err);
		if (rv != 0) {
			json_decref(root);
			shoal_err_wrap(err, "field %s", f->path);
			return rv;
		}
		/* Walk to the parent object, creating the missing ones. */
		for (rest = path_next(f->path, seg); rest != NULL; rest = path_next(rest, seg)) {
			json_t *child = json_object_get(obj, seg);
			PRE(child == NULL || json_is_object(child));
			if (child == NULL) {
				child = json_object();
				if (child == NULL ||
				    json_object_set_new_nocheck(obj, seg, child) != 0)
					goto nomem;
			}
			obj = child;
		}
		PRE(json_is_object(obj));
		if (json_is_object(v) && json_is_object(json_object_get(obj, seg))) {
			/* A struct at a path other fields already opened: merge. */
			rv = json_object_update(json_object_get(obj, seg), v);
			json_decref(v);
		} else {
			rv = json_object_set_new_nocheck(obj, seg, v); /* takes @v on failure too */
		}
		v = NULL;
		if (rv != 0)
			goto nomem;
		continue;
	nomem:
		json_decref(v);
		json_decref(root);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	*out = root;
	return 0;
}

int schema_to_json(const struct schema *s, const void *rec, json_t **out, struct shoal_err *err)
{
	return to_json_rec(s, rec, out, 0, err);
}

const char *schema_json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	case JSON_NULL:
		return "null";
	}
	return "value";
}

/* The Go type a field has in Docker's API types, for messages. */
static const char *go_type(const struct schema_field *f, char buf[SEGMENT_MAX + 2])
{
	switch (f->type) {
	case SCHEMA_STRING:
	case SCHEMA_ENUM:
		return "string";
	case SCHEMA_U64:
		return "uint64";
	case SCHEMA_I64:
		return "int64";
	case SCHEMA_BOOL:
		return "bool";
	case SCHEMA_TIME:
		return "time.Time";
	case SCHEMA_MAP:
		return "map[string]string";
	case SCHEMA_STRLIST:
		return "[]string";
	case SCHEMA_BYTES:
		return "[]uint8";
	case SCHEMA_LIST:
		snprintf(buf, SEGMENT_MAX + 2, "[]%s", f->elem->name);
		return buf;
	case SCHEMA_F64:
		return "float64";
	case SCHEMA_STRUCT:
		return f->elem->name;
	}
	return "value";
}

/* Where a field sits, for messages: "NodeSpec" and "Role". */
struct json_where {
	const char *go;
	const char *rel;
};

static int type_error(const struct json_where *w, const char *kind, const char *type,
		      struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_EINVAL,
			  "json: cannot unmarshal %s into Go struct field %s.%s of type %s", kind,
			  w->go, w->rel, type);
}

static int field_type_error(const struct schema_field *f, const struct json_where *w,
			    const json_t *v, struct shoal_err *err)
{
	char buf[SEGMENT_MAX + 2];

	return type_error(w, schema_json_kind(v), go_type(f, buf), err);
}

static int json_str(const struct schema_field *f, const struct json_where *w, const json_t *v,
		    char **out, struct shoal_err *err)
{
	size_t len;

	if (!json_is_string(v))
		return f != NULL ? field_type_error(f, w, v, err)
				 : type_error(w, schema_json_kind(v), "string", err);
	len = json_string_length(v);
	if (len > SCHEMA_MAX_STRING)
		return shoal_errf(err, SHOAL_EINVAL,
				  "%s.%s: a string of %zu bytes exceeds the limit of %u", w->go,
				  w->rel, len, SCHEMA_MAX_STRING);
	if (memchr(json_string_value(v), '\0', len) != NULL)
		return shoal_errf(err, SHOAL_EINVAL, "%s.%s: a string holds a NUL character", w->go,
				  w->rel);
	if ((*out = dup_n(json_string_value(v), len)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

static int json_count(const struct json_where *w, size_t n, struct shoal_err *err)
{
	if (n > SCHEMA_MAX_ITEMS)
		return shoal_errf(err, SHOAL_EINVAL, "%s.%s: %zu entries exceed the limit of %u",
				  w->go, w->rel, n, SCHEMA_MAX_ITEMS);
	return 0;
}

/* Go's encoding/json matches keys exactly first, then case-insensitively. */
static json_t *json_get_ci(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *k;

	if (v != NULL)
		return v;
	json_object_foreach(obj, k, v)
	{
		if (strcasecmp(k, key) == 0)
			return v;
	}
	return NULL;
}

static int from_json_rec(const struct schema *s, void *rec, json_t *obj, const char *prefix,
			 const char *go, unsigned depth, struct shoal_err *err);

static int enum_from_json(const struct schema_field *f, const struct json_where *w, json_t *v,
			  int *out, struct shoal_err *err)
{
	const char *leaf = strrchr(w->rel, '.');
	char q[QUOTE_MAX + 4], names[256] = "";
	size_t n = 0;

	if (!json_is_string(v))
		return field_type_error(f, w, v, err);
	for (const struct schema_enum *e = f->enums; e->name != NULL; e++) {
		if (strcasecmp(e->name, json_string_value(v)) == 0 &&
		    strlen(e->name) == json_string_length(v)) {
			*out = e->value;
			return 0;
		}
		if (n < sizeof(names))
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
					      n > 0 ? ", " : "", e->name);
	}
	/* Docker's own wording: invalid Role: "boss". */
	return shoal_errf(err, SHOAL_EINVAL, "invalid %s: \"%s\" (must be one of %s)",
			  leaf != NULL ? leaf + 1 : w->rel,
			  quote(json_string_value(v), json_string_length(v), q), names);
}

/* Decode @v into a fresh value @out (zeroed on entry; holds what to free on error). */
static int value_from_json(const struct schema_field *f, const struct json_where *w, json_t *v,
			   void *out, unsigned depth, struct shoal_err *err)
{
	int rv;

	switch (f->type) {
	case SCHEMA_STRING:
		return json_str(f, w, v, out, err);
	case SCHEMA_U64:
		if (!json_is_integer(v))
			return field_type_error(f, w, v, err);
		if (json_integer_value(v) < 0) {
			char kind[40];
			snprintf(kind, sizeof(kind), "number %" JSON_INTEGER_FORMAT,
				 json_integer_value(v));
			return type_error(w, kind, "uint64", err);
		}
		*(uint64_t *)out = (uint64_t)json_integer_value(v);
		return 0;
	case SCHEMA_I64:
		if (!json_is_integer(v))
			return field_type_error(f, w, v, err);
		*(int64_t *)out = (int64_t)json_integer_value(v);
		return 0;
	case SCHEMA_BOOL:
		if (!json_is_boolean(v))
			return field_type_error(f, w, v, err);
		*(bool *)out = json_is_true(v);
		return 0;
	case SCHEMA_TIME: {
		char q[QUOTE_MAX + 4];
		if (!json_is_string(v))
			return field_type_error(f, w, v, err);
		if (clock_parse_rfc3339(json_string_value(v), out) != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "%s.%s: cannot parse \"%s\" as an RFC 3339 time like "
					  "2016-06-07T20:31:11.853781916Z",
					  w->go, w->rel,
					  quote(json_string_value(v), json_string_length(v), q));
		return 0;
	}
	case SCHEMA_ENUM:
		return enum_from_json(f, w, v, out, err);
	case SCHEMA_MAP: {
		struct schema_map *m = out;
		const char *k;
		json_t *e;
		if (!json_is_object(v))
			return field_type_error(f, w, v, err);
		if ((rv = json_count(w, json_object_size(v), err)) != 0)
			return rv;
		if (json_object_size(v) == 0)
			return 0;
		if ((m->items = calloc(json_object_size(v), sizeof(*m->items))) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		json_object_foreach(v, k, e)
		{
			struct schema_kv *kv = &m->items[m->n++];
			if (strlen(k) > SCHEMA_MAX_STRING)
				return shoal_errf(err, SHOAL_EINVAL,
						  "%s.%s: a key exceeds the limit of %u bytes",
						  w->go, w->rel, SCHEMA_MAX_STRING);
			if ((kv->key = strdup(k)) == NULL)
				return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			if ((rv = json_str(NULL, w, e, &kv->value, err)) != 0)
				return rv;
		}
		if (map_sort(m) != 0)
			return shoal_errf(err, SHOAL_EINVAL, "%s.%s: a key appears twice", w->go,
					  w->rel);
		return 0;
	}
	case SCHEMA_STRLIST: {
		struct schema_strlist *l = out;
		if (!json_is_array(v))
			return field_type_error(f, w, v, err);
		if ((rv = json_count(w, json_array_size(v), err)) != 0)
			return rv;
		if (json_array_size(v) == 0)
			return 0;
		if ((l->items = calloc(json_array_size(v), sizeof(*l->items))) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		for (size_t i = 0; i < json_array_size(v); i++) {
			l->n = i + 1;
			if ((rv = json_str(NULL, w, json_array_get(v, i), &l->items[i], err)) != 0)
				return rv;
		}
		return 0;
	}
	case SCHEMA_BYTES: {
		struct schema_bytes *b = out;
		size_t len, max;
		if (!json_is_string(v))
			return field_type_error(f, w, v, err);
		len = json_string_length(v);
		max = len / 4 * 3 + 3;
		if (max > SCHEMA_MAX_BYTES + 3)
			return shoal_errf(err, SHOAL_EINVAL,
					  "%s.%s: data exceeds the limit of %u bytes", w->go,
					  w->rel, SCHEMA_MAX_BYTES);
		if (len == 0)
			return 0;
		if ((b->data = malloc(max)) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		if (sodium_base642bin(b->data, max, json_string_value(v), len, NULL, &b->len, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0)
			return shoal_errf(err, SHOAL_EINVAL, "%s.%s: illegal base64 data", w->go,
					  w->rel);
		if (b->len > SCHEMA_MAX_BYTES)
			return shoal_errf(err, SHOAL_EINVAL,
					  "%s.%s: data exceeds the limit of %u bytes", w->go,
					  w->rel, SCHEMA_MAX_BYTES);
		return 0;
	}
	case SCHEMA_LIST: {
		struct schema_list *l = out;
		char go[256];
		if (!json_is_array(v))
			return field_type_error(f, w, v, err);
		if ((rv = json_count(w, json_array_size(v), err)) != 0)
			return rv;
		if (depth + 1 >= SCHEMA_MAX_DEPTH)
			return shoal_errf(err, SHOAL_EINVAL, "%s.%s: nested deeper than %u levels",
					  w->go, w->rel, SCHEMA_MAX_DEPTH);
		if (json_array_size(v) == 0)
			return 0;
		if ((l->items = calloc(json_array_size(v), f->elem->size)) == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		snprintf(go, sizeof(go), "%s.%s", w->go, w->rel);
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			l->n = i + 1;
			if (json_is_null(e))
				continue;
			if (!json_is_object(e))
				return field_type_error(f, w, e, err);
			rv = from_json_rec(f->elem, list_item(f->elem, l, i), e, NULL, go,
					   depth + 1, err);
			if (rv != 0)
				return rv;
		}
		return 0;
	}
	case SCHEMA_F64:
		if (!json_is_number(v))
			return field_type_error(f, w, v, err);
		*(double *)out = json_number_value(v);
		return 0;
	case SCHEMA_STRUCT:
		/* from_json_rec() reads it in place, merging. */
		break;
	}
	return SHOAL_EINVAL;
}

/* Read the struct field @f (at @p) from the object @v, in place, as Go does:
 * keys absent keep their value. @prefix is relative to the struct, or NULL;
 * @at_prefix says that @v is the caller's object, named by @w->go. */
static int struct_from_json(const struct schema_field *f, const struct json_where *w, void *p,
			    json_t *v, const char *prefix, bool at_prefix, unsigned depth,
			    struct shoal_err *err)
{
	char go[256];

	if (!json_is_object(v))
		return field_type_error(f, w, v, err);
	if (depth + 1 >= SCHEMA_MAX_DEPTH)
		return shoal_errf(err, SHOAL_EINVAL, "%s.%s: nested deeper than %u levels", w->go,
				  w->rel, SCHEMA_MAX_DEPTH);
	if (at_prefix)
		snprintf(go, sizeof(go), "%s", w->go);
	else
		snprintf(go, sizeof(go), "%s.%s", w->go, w->rel);
	return from_json_rec(f->elem, p, v, prefix, go, depth + 1, err);
}

/* Set the writable fields of @rec under @prefix from @obj, in place; on error
 * @rec holds only what to free. */
static int from_json_rec(const struct schema *s, void *rec, json_t *obj, const char *prefix,
			 const char *go, unsigned depth, struct shoal_err *err)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;

	for (size_t i = 0; i < s->n_fields; i++) {
		const struct schema_field *f = &s->fields[i];
		struct json_where w = {go, f->path};
		json_t *cur = obj;
		int rv;

		if (f->flags & (SCHEMA_INTERNAL | SCHEMA_READONLY))
			continue;
		if (prefix != NULL) {
			size_t flen = strlen(f->path);

			/* A struct at or above @prefix: @obj is (inside) it. */
			if (f->type == SCHEMA_STRUCT && flen <= plen &&
			    strncmp(f->path, prefix, flen) == 0 &&
			    (prefix[flen] == '\0' || prefix[flen] == '.')) {
				rv = struct_from_json(f, &w, field_at(rec, f), obj,
						      prefix[flen] == '\0' ? NULL
									   : prefix + flen + 1,
						      true, depth, err);
				if (rv != 0)
					return rv;
				continue;
			}
			if (strncmp(f->path, prefix, plen) != 0 || f->path[plen] != '.')
				continue;
			w.rel = f->path + plen + 1;
		}
		for (const char *p = w.rel;;) {
			char seg[SEGMENT_MAX];
			const char *rest = path_next(p, seg);
			json_t *v = json_get_ci(cur, seg);

			if (v == NULL || json_is_null(v))
				break; /* absent: keep the field */
			if (rest == NULL && f->type == SCHEMA_STRUCT) {
				rv = struct_from_json(f, &w, field_at(rec, f), v, NULL, false,
						      depth, err);
				if (rv != 0)
					return rv;
				break;
			}
			if (rest == NULL) {
				union field_value fv;

				memset(&fv, 0, sizeof(fv));
				rv = value_from_json(f, &w, v, &fv, depth, err);
				if (rv != 0) {
					field_free(f, &fv);
					return rv;
				}
				field_free(f, field_at(rec, f));
				memcpy(field_at(rec, f), &fv, field_size(f));
				break;
			}
			if (!json_is_object(v))
				return shoal_errf(err, SHOAL_EINVAL,
						  "json: cannot unmarshal %s into Go struct field "
						  "%s.%.*s of type struct",
						  schema_json_kind(v), go, (int)(rest - 1 - w.rel),
						  w.rel);
			cur = v;
			p = rest;
		}
	}
	return 0;
}

int schema_from_json(const struct schema *s, void *rec, json_t *json, const char *prefix,
		     const char *type_name, struct shoal_err *err)
{
	void *tmp;
	int rv;

	if (!json_is_object(json))
		return shoal_errf(err, SHOAL_EINVAL,
				  "json: cannot unmarshal %s into Go value of type %s",
				  schema_json_kind(json), type_name);
	if ((tmp = malloc(s->size)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = schema_copy(s, tmp, rec, err);
	if (rv == 0)
		rv = from_json_rec(s, tmp, json, prefix, type_name, 0, err);
	if (rv == 0) {
		schema_free(s, rec);
		memcpy(rec, tmp, s->size);
	} else {
		schema_free(s, tmp);
	}
	free(tmp);
	return rv;
}

/* ---- enums, maps, lists ---- */

const char *schema_enum_name(const struct schema_enum *table, int value)
{
	for (const struct schema_enum *e = table; e->name != NULL; e++)
		if (e->value == value)
			return e->name;
	return NULL;
}

int schema_enum_value(const struct schema_enum *table, const char *name, int *value)
{
	for (const struct schema_enum *e = table; e->name != NULL; e++) {
		if (strcmp(e->name, name) == 0) {
			*value = e->value;
			return 0;
		}
	}
	return -1;
}

static const char *map_key_at(const void *items, size_t i)
{
	return ((const struct schema_kv *)items)[i].key;
}

/* Index of @key in @m, or where it would go; *@found tells which. */
static size_t map_search(const struct schema_map *m, const char *key, bool *found)
{
	return sorted_find(m->items, m->n, map_key_at, key, found);
}

const char *schema_map_get(const struct schema_map *m, const char *key)
{
	bool found;
	size_t i = map_search(m, key, &found);

	return found ? m->items[i].value : NULL;
}

int schema_map_set(struct schema_map *m, const char *key, const char *value, struct shoal_err *err)
{
	bool found;
	size_t i = map_search(m, key, &found);
	char *v = strdup(value), *k = NULL;
	struct schema_kv *items;

	if (v == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (found) {
		free(m->items[i].value);
		m->items[i].value = v;
		return 0;
	}
	if (m->n >= SCHEMA_MAX_ITEMS) {
		free(v);
		return shoal_errf(err, SHOAL_ETOOBIG, "cannot hold more than %u entries",
				  SCHEMA_MAX_ITEMS);
	}
	items = realloc(m->items, (m->n + 1) * sizeof(*items));
	if (items == NULL || (k = strdup(key)) == NULL) {
		if (items != NULL)
			m->items = items;
		free(v);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	m->items = items;
	memmove(&items[i + 1], &items[i], (m->n - i) * sizeof(*items));
	items[i].key = k;
	items[i].value = v;
	m->n++;
	return 0;
}

bool schema_map_remove(struct schema_map *m, const char *key)
{
	bool found;
	size_t i = map_search(m, key, &found);

	if (!found)
		return false;
	free(m->items[i].key);
	free(m->items[i].value);
	memmove(&m->items[i], &m->items[i + 1], (m->n - i - 1) * sizeof(*m->items));
	if (--m->n == 0) {
		free(m->items);
		m->items = NULL;
	}
	return true;
}

int schema_strlist_append(struct schema_strlist *l, const char *str, struct shoal_err *err)
{
	char **items, *s;

	if (l->n >= SCHEMA_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG, "cannot hold more than %u entries",
				  SCHEMA_MAX_ITEMS);
	if ((s = strdup(str)) == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	items = realloc(l->items, (l->n + 1) * sizeof(*items));
	if (items == NULL) {
		free(s);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	items[l->n++] = s;
	l->items = items;
	return 0;
}
