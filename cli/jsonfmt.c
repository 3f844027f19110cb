/* Re-indenting, compacting and reading the daemon's JSON. */
#include "cli/jsonfmt.h"

#include <string.h>

static int newline(struct buf *out, const char *indent, size_t depth)
{
	int rv = buf_append(out, "\n", 1);
	size_t i, n = strlen(indent);

	for (i = 0; i < depth && rv == 0; i++)
		rv = buf_append(out, indent, n);
	return rv;
}

/* Go's appendIndent() when @indent is set, appendCompact() when it is NULL. */
static int reformat(const char *src, size_t len, const char *indent, struct buf *out,
		    struct shoal_err *err)
{
	char stack[JSONFMT_MAX_DEPTH];
	size_t sp = 0, depth = 0, i, start = out->len;
	int in_string = 0, escape = 0, need_indent = 0, done = 0, rv = 0;

	for (i = 0; i < len && rv == 0; i++) {
		char c = src[i];

		if (in_string) {
			rv = buf_append(out, &c, 1);
			if (escape)
				escape = 0;
			else if (c == '\\')
				escape = 1;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (done)
			goto bad;
		if (indent != NULL && need_indent && c != '}' && c != ']') {
			need_indent = 0;
			depth++;
			rv = newline(out, indent, depth);
			if (rv != 0)
				break;
		}
		switch (c) {
		case '{':
		case '[':
			if (sp == sizeof(stack))
				return shoal_errf(
				    err, SHOAL_EPROTO,
				    "the daemon sent JSON nested deeper than %d levels",
				    JSONFMT_MAX_DEPTH);
			stack[sp++] = c == '{' ? '}' : ']';
			need_indent = 1;
			rv = buf_append(out, &c, 1);
			break;
		case '}':
		case ']':
			if (sp == 0 || stack[sp - 1] != c)
				goto bad;
			sp--;
			if (need_indent) {
				need_indent = 0; /* empty: {} or [] */
			} else if (indent != NULL) {
				depth--;
				rv = newline(out, indent, depth);
			}
			if (rv == 0)
				rv = buf_append(out, &c, 1);
			done = sp == 0;
			break;
		case ',':
			if (sp == 0)
				goto bad;
			rv = buf_append(out, ",", 1);
			if (rv == 0 && indent != NULL)
				rv = newline(out, indent, depth);
			break;
		case ':':
			if (sp == 0)
				goto bad;
			rv = buf_append(out, ": ", indent != NULL ? 2 : 1);
			break;
		case '"':
			in_string = 1;
			rv = buf_append(out, &c, 1);
			break;
		default:
			rv = buf_append(out, &c, 1);
			break;
		}
	}
	if (rv != 0)
		return shoal_errf(err, rv, "out of memory formatting JSON");
	if (in_string || sp != 0 || out->len == start)
		goto bad;
	return 0;
bad:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return shoal_errf(err, SHOAL_EPROTO, "the daemon sent malformed JSON");
}

int jsonfmt_indent(const char *src, size_t len, const char *indent, struct buf *out,
		   struct shoal_err *err)
{
	return reformat(src, len, indent, out, err);
}

int jsonfmt_compact(const char *src, size_t len, struct buf *out, struct shoal_err *err)
{
	return reformat(src, len, NULL, out, err);
}

json_t *jsonfmt_get(const json_t *root, const char *path)
{
	const json_t *obj = root;
	json_t *cur = NULL;
	char key[128];

	do {
		const char *dot = strchr(path, '.');
		size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);

		if (!json_is_object(obj) || n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		cur = json_object_get(obj, key);
		obj = cur;
		path += n + (dot != NULL ? 1 : 0);
	} while (cur != NULL && *path != '\0');
	return cur;
}

const char *jsonfmt_str(const json_t *root, const char *path)
{
	const char *s = json_string_value(jsonfmt_get(root, path));

	return s != NULL ? s : "";
}

long long jsonfmt_int(const json_t *root, const char *path, long long def)
{
	json_t *v = jsonfmt_get(root, path);

	return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

bool jsonfmt_bool(const json_t *root, const char *path)
{
	return json_is_true(jsonfmt_get(root, path));
}
