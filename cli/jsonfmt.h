/* The daemon's JSON as the CLI prints and reads it: re-indented or compacted
 * byte for byte like Go's json.Indent/json.Compact (key order, numbers and
 * string escapes kept), and nested fields looked up by dotted paths. */
#ifndef SHOAL_CLI_JSONFMT_H
#define SHOAL_CLI_JSONFMT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

/* Append @src re-indented: one element per line, @indent per level, ": "
 * after keys, empty objects and arrays as {} and []. No newline at the end.
 * Only the structure is checked (the client has parsed the text already):
 * returns 0, SHOAL_ENOMEM, or SHOAL_EPROTO for unbalanced brackets or
 * strings, text after the value, or nesting deeper than JSONFMT_MAX_DEPTH. */
#define JSONFMT_MAX_DEPTH 512

int jsonfmt_indent(const char *src, size_t len, const char *indent, struct buf *out,
		   struct shoal_err *err);

/* Append @src with every space outside strings removed. Same returns. */
int jsonfmt_compact(const char *src, size_t len, struct buf *out, struct shoal_err *err);

/* The value at @path below @root: object keys separated by dots
 * ("Swarm.Cluster.ID"), at least one. NULL if a step is missing or not an
 * object. The value is borrowed from @root. */
json_t *jsonfmt_get(const json_t *root, const char *path);

/* The string at @path, or "" if missing or not a string. */
const char *jsonfmt_str(const json_t *root, const char *path);

/* The integer at @path, or @def if missing or not an integer. */
long long jsonfmt_int(const json_t *root, const char *path, long long def);

/* The boolean at @path, or false if missing or not a boolean. */
bool jsonfmt_bool(const json_t *root, const char *path);

#endif
