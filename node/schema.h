/* Record descriptors: a C struct's fields declared once, msgpack and JSON codecs derived. */
#ifndef SHOAL_NODE_SCHEMA_H
#define SHOAL_NODE_SCHEMA_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Bounds on anything decoded from msgpack or JSON. */
#define SCHEMA_MAX_STRING  (64u * 1024u)   /* bytes in one string, map key or value */
#define SCHEMA_MAX_BYTES   (1024u * 1024u) /* bytes in one bytes field */
#define SCHEMA_MAX_ITEMS   10000u	   /* entries in one list or map */
#define SCHEMA_MAX_DEPTH   8u		   /* nesting of lists of structs and embedded structs */
#define SCHEMA_MAX_MSGPACK (256u << 20)	   /* bytes given to schema_msgpack_parse() */

/* The C side of each field type. Heap memory belongs to the record and is
 * released by schema_free(). */
enum schema_type {
	SCHEMA_STRING,	/* char *, heap, NULL = absent (JSON: "" unless omitted) */
	SCHEMA_U64,	/* uint64_t */
	SCHEMA_I64,	/* int64_t */
	SCHEMA_BOOL,	/* bool */
	SCHEMA_TIME,	/* int64_t ns since the epoch; JSON: RFC 3339 with ns */
	SCHEMA_ENUM,	/* an enum (int-sized); msgpack and JSON: the value's name */
	SCHEMA_MAP,	/* struct schema_map: string -> string, e.g. labels */
	SCHEMA_STRLIST, /* struct schema_strlist */
	SCHEMA_BYTES,	/* struct schema_bytes; JSON: standard base64 */
	SCHEMA_LIST,	/* struct schema_list of structs described by field->elem */
	SCHEMA_F64,	/* double, finite; msgpack float64 (integers accepted); JSON number */
	SCHEMA_STRUCT,	/* a struct embedded at the offset, described by field->elem: a
			 * nested JSON object at the field's path, a nested msgpack map.
			 * Decoding merges into it: keys absent keep their value. */
};

/* Field flags. */
enum {
	SCHEMA_OMITEMPTY = 1u << 0, /* JSON: leave out NULL/""/0/false/empty (not enums) */
	SCHEMA_INTERNAL = 1u << 1,  /* msgpack only: never in JSON output nor read from it */
	SCHEMA_READONLY = 1u << 2,  /* JSON output only: ignored by schema_from_json() */
};

/* One key/value of a map. */
struct schema_kv {
	char *key;
	char *value;
};

/* A string map kept sorted by key, keys unique. */
struct schema_map {
	struct schema_kv *items;
	size_t n;
};

struct schema_strlist {
	char **items;
	size_t n;
};

struct schema_bytes {
	unsigned char *data;
	size_t len;
};

/* @n structs of the element schema's size; cast @items to the element type. */
struct schema_list {
	void *items;
	size_t n;
};

/* One name of an enum; tables end with { 0, NULL }. */
struct schema_enum {
	int value;
	const char *name;
};

struct schema;

struct schema_field {
	const char *path; /* JSON path and msgpack key; dots nest JSON objects */
	enum schema_type type;
	size_t offset;
	unsigned flags;
	const struct schema_enum *enums; /* SCHEMA_ENUM */
	const struct schema *elem;	 /* SCHEMA_LIST, SCHEMA_STRUCT */
};

struct schema {
	const char *name; /* the Docker (Go) type name, for messages: "Node" */
	size_t size;	  /* sizeof the struct */
	const struct schema_field *fields;
	size_t n_fields;
};

/* Field declarations. Each checks at compile time that @m has the C type the
 * schema type needs (a mismatch is a "distinct pointer types" warning). */
#define SCHEMA_AT_(T, m, ctype) (offsetof(T, m) + 0 * sizeof((ctype *)0 == &((T *)0)->m))
#define SCHEMA_ENUM_AT_(T, m) \
	(offsetof(T, m) + 0 * sizeof(char[sizeof(((T *)0)->m) == sizeof(int) ? 1 : -1]))
#define SCHEMA_FIELD_(p, t, off, fl)                                     \
	{                                                                \
		.path = (p), .type = (t), .offset = (off), .flags = (fl) \
	}
#define SCHEMA_STRING_FIELD(T, m, p, fl) \
	SCHEMA_FIELD_(p, SCHEMA_STRING, SCHEMA_AT_(T, m, char *), fl)
#define SCHEMA_U64_FIELD(T, m, p, fl)  SCHEMA_FIELD_(p, SCHEMA_U64, SCHEMA_AT_(T, m, uint64_t), fl)
#define SCHEMA_I64_FIELD(T, m, p, fl)  SCHEMA_FIELD_(p, SCHEMA_I64, SCHEMA_AT_(T, m, int64_t), fl)
#define SCHEMA_BOOL_FIELD(T, m, p, fl) SCHEMA_FIELD_(p, SCHEMA_BOOL, SCHEMA_AT_(T, m, bool), fl)
#define SCHEMA_TIME_FIELD(T, m, p, fl) SCHEMA_FIELD_(p, SCHEMA_TIME, SCHEMA_AT_(T, m, int64_t), fl)
#define SCHEMA_MAP_FIELD(T, m, p, fl) \
	SCHEMA_FIELD_(p, SCHEMA_MAP, SCHEMA_AT_(T, m, struct schema_map), fl)
#define SCHEMA_STRLIST_FIELD(T, m, p, fl) \
	SCHEMA_FIELD_(p, SCHEMA_STRLIST, SCHEMA_AT_(T, m, struct schema_strlist), fl)
#define SCHEMA_BYTES_FIELD(T, m, p, fl) \
	SCHEMA_FIELD_(p, SCHEMA_BYTES, SCHEMA_AT_(T, m, struct schema_bytes), fl)
#define SCHEMA_F64_FIELD(T, m, p, fl) SCHEMA_FIELD_(p, SCHEMA_F64, SCHEMA_AT_(T, m, double), fl)
#define SCHEMA_ENUM_FIELD(T, m, p, fl, table)                                                     \
	{                                                                                         \
		.path = (p), .type = SCHEMA_ENUM, .offset = SCHEMA_ENUM_AT_(T, m), .flags = (fl), \
		.enums = (table)                                                                  \
	}
#define SCHEMA_LIST_FIELD(T, m, p, fl, elem_schema)                                               \
	{                                                                                         \
		.path = (p), .type = SCHEMA_LIST, .offset = SCHEMA_AT_(T, m, struct schema_list), \
		.flags = (fl), .elem = (elem_schema)                                              \
	}

/* @m is a struct of type @ctype, which @elem_schema must describe. OMITEMPTY
 * leaves it out of JSON when every field it would render is empty. */
#define SCHEMA_STRUCT_FIELD(T, m, p, fl, ctype, elem_schema)                           \
	{                                                                              \
		.path = (p), .type = SCHEMA_STRUCT, .offset = SCHEMA_AT_(T, m, ctype), \
		.flags = (fl), .elem = (elem_schema)                                   \
	}

/* Release every heap member of @rec and zero them; @rec itself is the caller's.
 * Scalars are left as they are. */
void schema_free(const struct schema *s, void *rec);

/* Make @dst (uninitialised) a deep copy of @src. Returns 0 or SHOAL_ENOMEM, in
 * which case @dst holds nothing to free. */
int schema_copy(const struct schema *s, void *dst, const void *src, struct shoal_err *err);

/* True if every field of @a and @b holds the same value (NULL and "" differ). */
bool schema_equal(const struct schema *s, const void *a, const void *b);

/* Pack @rec as a msgpack map keyed by field path; every field is written (an
 * absent string as nil). Returns 0 or SHOAL_ENOMEM. */
int schema_pack(const struct schema *s, const void *rec, msgpack_packer *pk);

/* Read the map @obj into @rec, which must hold an initialised record (zeroed or
 * defaults): keys present replace the field, missing keys keep it, unknown keys
 * are skipped. Types, lengths, counts, UTF-8 and enum names are checked. Returns
 * 0, or SHOAL_EPROTO / SHOAL_ENOMEM with the reason in @err; then @rec is unchanged. */
int schema_unpack(const struct schema *s, void *rec, const msgpack_object *obj,
		  struct shoal_err *err);

/* Parse @len bytes of untrusted msgpack holding exactly one object into @out,
 * which the caller initialised with msgpack_unpacked_init() and always destroys
 * with msgpack_unpacked_destroy(); strings in it point into @buf. Declared
 * lengths and counts are checked against the bytes present before msgpack-c
 * allocates for them. Returns 0 or SHOAL_EPROTO / SHOAL_ETOOBIG. */
int schema_msgpack_parse(const void *buf, size_t len, msgpack_unpacked *out, struct shoal_err *err);

/* Render @rec as Docker's JSON: fields nested by path, INTERNAL fields left out,
 * OMITEMPTY honoured. On success *@out is a new reference. Returns 0, SHOAL_ENOMEM,
 * or SHOAL_EINVAL if a string is not UTF-8 (records from the store always are). */
int schema_to_json(const struct schema *s, const void *rec, json_t **out, struct shoal_err *err);

/* Set the fields of @rec that a client may write from the JSON object @json,
 * the way Go's encoding/json would: keys match case-insensitively, unknown keys
 * and nulls are ignored, maps and lists present replace the old value. Only
 * fields under @prefix (e.g. "Spec"; NULL for all) that are neither READONLY nor
 * INTERNAL are read, with paths taken relative to it (@prefix may also name a
 * SCHEMA_STRUCT field or a path inside one: "Spec.TaskTemplate"; structs are
 * read in place, keys absent keeping their value); @type_name names the Go
 * type of @json in messages ("NodeSpec"). Returns 0, or SHOAL_EINVAL with e.g.
 * "json: cannot unmarshal number into Go struct field NodeSpec.Role of type
 * string" / SHOAL_ENOMEM; then @rec is unchanged. */
int schema_from_json(const struct schema *s, void *rec, json_t *json, const char *prefix,
		     const char *type_name, struct shoal_err *err);

/* Go's name of a JSON value's type, as in its unmarshal errors: "object",
 * "array", "string", "number", "bool" or "null". */
const char *schema_json_kind(const json_t *j);

/* The name of @value in @table, or NULL. */
const char *schema_enum_name(const struct schema_enum *table, int value);
/* Find @name in @table. Returns 0, or -1 if it is not there. */
int schema_enum_value(const struct schema_enum *table, const char *name, int *value);

/* The value of @key in @m, or NULL. */
const char *schema_map_get(const struct schema_map *m, const char *key);
/* Set @key to @value (both copied), keeping @m sorted. Returns 0, SHOAL_ENOMEM,
 * or SHOAL_ETOOBIG if @m already holds SCHEMA_MAX_ITEMS entries. */
int schema_map_set(struct schema_map *m, const char *key, const char *value, struct shoal_err *err);
/* Remove @key. Returns true if it was there. */
bool schema_map_remove(struct schema_map *m, const char *key);

/* Append a copy of @str. Returns 0, SHOAL_ENOMEM or SHOAL_ETOOBIG. */
int schema_strlist_append(struct schema_strlist *l, const char *str, struct shoal_err *err);

#endif
