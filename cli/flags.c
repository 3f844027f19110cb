/* Command-line flags with spf13/pflag's syntax, errors and usage layout. */
#include "cli/flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct flag_spec help_spec = {
    .name = "help",
    .shorthand = 'h',
    .type = FLAG_BOOL,
    .usage = "Print usage",
};

void flag_list_free(struct flag_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void flags_result_free(struct flags_result *res)
{
	free(res->args);
	res->args = NULL;
	res->nargs = 0;
}

void flag_display_name(const struct flag_spec *spec, char *out, size_t len)
{
	if (spec->shorthand != 0)
		snprintf(out, len, "-%c, --%s", spec->shorthand, spec->name);
	else
		snprintf(out, len, "--%s", spec->name);
}

int flag_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* @s quoted the way Go's %q quotes it, for the common cases. */
static void quote(const char *s, char *out, size_t len)
{
	size_t o = 0;

	if (len < 3) {
		if (len > 0)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (; *s != '\0' && o + 6 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c == '\t') {
			out[o++] = '\\';
			out[o++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

static int append_arg(struct flags_result *res, char *arg)
{
	char **p = realloc(res->args, (res->nargs + 1) * sizeof(*p));

	if (p == NULL)
		return SHOAL_ENOMEM;
	res->args = p;
	res->args[res->nargs++] = arg;
	return 0;
}

static int set_value(const struct flag_spec *spec, const char *value, struct flags_result *res,
		     struct shoal_err *err)
{
	char name[80], q[256];
	struct flag_list *l;
	const char **items;
	bool b;

	if (spec == &help_spec) {
		if (flag_parse_bool(value, &b) != 0)
			goto bad_bool;
		res->help = b;
		return 0;
	}
	switch (spec->type) {
	case FLAG_BOOL:
		if (flag_parse_bool(value, &b) != 0)
			goto bad_bool;
		*(bool *)spec->dest = b;
		return 0;
	case FLAG_STRING:
		*(const char **)spec->dest = value;
		return 0;
	case FLAG_LIST:
		l = spec->dest;
		items = realloc(l->items, (l->n + 1) * sizeof(*items));
		if (items == NULL)
			return SHOAL_ENOMEM;
		l->items = items;
		l->items[l->n++] = value;
		return 0;
	}
	return SHOAL_EINVAL;
bad_bool:
	flag_display_name(spec, name, sizeof(name));
	quote(value, q, sizeof(q));
	return shoal_errf(err, SHOAL_EINVAL,
			  "invalid argument %s for \"%s\" flag: strconv.ParseBool: parsing %s: "
			  "invalid syntax",
			  q, name, q);
}

static const struct flag_spec *find_long(const struct flag_spec *specs, size_t n, const char *name,
					 size_t len)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0)
			return &specs[i];
	}
	if (len == 4 && strncmp(name, "help", 4) == 0)
		return &help_spec;
	return NULL;
}

static const struct flag_spec *find_short(const struct flag_spec *specs, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (specs[i].shorthand == c)
			return &specs[i];
	}
	return c == 'h' ? &help_spec : NULL;
}

/* "--name", "--name=value" or "--name value". Advances *@i past what it used. */
static int parse_long(const struct flag_spec *specs, size_t n, int argc, char **argv, int *i,
		      struct flags_result *res, struct shoal_err *err)
{
	const char *s = argv[*i];
	const char *name = s + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	const struct flag_spec *spec;
	const char *value;

	if (name[0] == '\0' || name[0] == '-' || name[0] == '=')
		return shoal_errf(err, SHOAL_EINVAL, "bad flag syntax: %s", s);
	spec = find_long(specs, n, name, len);
	if (spec == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "unknown flag: --%.*s", (int)len, name);
	if (eq != NULL)
		value = eq + 1;
	else if (spec->type == FLAG_BOOL)
		value = "true";
	else if (*i + 1 < argc)
		value = argv[++*i];
	else
		return shoal_errf(err, SHOAL_EINVAL, "flag needs an argument: %s", s);
	return set_value(spec, value, res, err);
}

/* "-q", "-qf value", "-fvalue", "-f=value", "-f value". */
static int parse_short(const struct flag_spec *specs, size_t n, int argc, char **argv, int *i,
		       struct flags_result *res, struct shoal_err *err)
{
	const char *shorts = argv[*i] + 1;
	const struct flag_spec *spec;
	const char *value;
	int rv;

	while (*shorts != '\0') {
		spec = find_short(specs, n, shorts[0]);
		if (spec == NULL)
			return shoal_errf(err, SHOAL_EINVAL, "unknown shorthand flag: '%c' in -%s",
					  shorts[0], shorts);
		if (shorts[1] == '=' && shorts[2] != '\0') {
			value = shorts + 2;
			shorts += strlen(shorts);
		} else if (spec->type == FLAG_BOOL || spec == &help_spec) {
			value = "true";
			shorts++;
		} else if (shorts[1] != '\0') {
			value = shorts + 1;
			shorts += strlen(shorts);
		} else if (*i + 1 < argc) {
			value = argv[++*i];
			shorts++;
		} else {
			return shoal_errf(err, SHOAL_EINVAL, "flag needs an argument: '%c' in -%s",
					  shorts[0], shorts);
		}
		rv = set_value(spec, value, res, err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int flags_parse(const struct flag_spec *specs, size_t nspecs, int argc, char **argv,
		bool stop_at_arg, struct flags_result *res, struct shoal_err *err)
{
	int i, rv = 0;

	res->args = NULL;
	res->nargs = 0;
	res->help = false;
	for (i = 0; i < argc && rv == 0; i++) {
		const char *s = argv[i];

		if (s[0] != '-' || s[1] == '\0') {
			if (!stop_at_arg) {
				rv = append_arg(res, argv[i]);
				continue;
			}
			for (; i < argc && rv == 0; i++)
				rv = append_arg(res, argv[i]);
			break;
		}
		if (strcmp(s, "--") == 0) {
			for (i++; i < argc && rv == 0; i++)
				rv = append_arg(res, argv[i]);
			break;
		}
		if (s[1] == '-')
			rv = parse_long(specs, nspecs, argc, argv, &i, res, err);
		else
			rv = parse_short(specs, nspecs, argc, argv, &i, res, err);
	}
	if (rv != 0) {
		if (rv == SHOAL_ENOMEM)
			shoal_errf(err, rv, "out of memory parsing the command line");
		flags_result_free(res);
	}
	return rv;
}

static int by_name(const void *a, const void *b)
{
	const struct flag_spec *const *x = a;
	const struct flag_spec *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* "  -f, --filter filter" or "      --format string". */
static int flag_head(const struct flag_spec *spec, char *out, size_t len)
{
	int n;

	if (spec->shorthand != 0)
		n = snprintf(out, len, "  -%c, --%s", spec->shorthand, spec->name);
	else
		n = snprintf(out, len, "      --%s", spec->name);
	if (n >= 0 && spec->value_name != NULL && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, " %s", spec->value_name);
	return n;
}

/* pflag's wrapN(): split @s at the last blank before @i bytes, unless all
 * of it fits within @i + @slop. Sets *@first to the length of the first
 * part and returns where the rest starts. */
static size_t wrap_n(const char *s, size_t len, size_t i, size_t slop, size_t *first)
{
	size_t w, nl = 0;
	bool found = false, found_nl = false;

	if (i + slop > len) {
		*first = len;
		return len;
	}
	for (w = i; w > 0; w--) {
		if (s[w - 1] == ' ' || s[w - 1] == '\t' || s[w - 1] == '\n') {
			found = true;
			break;
		}
	}
	/* w - 1 is Go's LastIndexAny; it must be > 0. */
	if (!found || w - 1 == 0) {
		*first = len;
		return len;
	}
	w--;
	for (nl = i; nl > 0; nl--) {
		if (s[nl - 1] == '\n') {
			found_nl = true;
			break;
		}
	}
	if (found_nl && nl - 1 > 0 && nl - 1 < w) {
		*first = nl - 1;
		return nl;
	}
	*first = w;
	return w + 1;
}

/* Append @len bytes of @s with every newline followed by @indent spaces. */
static int append_indented(struct buf *out, const char *s, size_t len, size_t indent)
{
	size_t i, start = 0;
	int rv = 0;

	for (i = 0; i < len && rv == 0; i++) {
		if (s[i] != '\n')
			continue;
		rv = buf_appendf(out, "%.*s\n%*s", (int)(i - start), s + start, (int)indent, "");
		start = i + 1;
	}
	if (rv == 0)
		rv = buf_append(out, s + start, len - start);
	return rv;
}

/* pflag's wrap(): @s wrapped to @width columns, continuation lines indented
 * by @indent (the first line's indent is the caller's). */
static int wrap(struct buf *out, size_t indent, size_t width, const char *s)
{
	size_t len = strlen(s), room, first, next, slop = 5;
	int rv = 0;

	room = width > indent ? width - indent : 0;
	if (room < 24) {
		/* Not enough room: a block on the next line. */
		indent = 16;
		room = width > indent ? width - indent : 0;
		rv = buf_appendf(out, "\n%*s", (int)indent, "");
		if (rv == 0 && room < 24)
			return append_indented(out, s, len, indent);
	}
	room -= slop;
	next = wrap_n(s, len, room, slop, &first);
	if (rv == 0)
		rv = append_indented(out, s, first, indent);
	s += next;
	len -= next;
	while (rv == 0 && len > 0) {
		next = wrap_n(s, len, room, slop, &first);
		rv = buf_appendf(out, "\n%*s", (int)indent, "");
		if (rv == 0)
			rv = append_indented(out, s, first, indent);
		s += next;
		len -= next;
	}
	return rv;
}

int flags_usage(const struct flag_spec *specs, size_t nspecs, struct buf *out)
{
	const struct flag_spec **sorted;
	struct buf text;
	char head[128];
	size_t i, maxlen = 0;
	int rv = 0;

	if (nspecs == 0)
		return 0;
	sorted = calloc(nspecs, sizeof(*sorted));
	if (sorted == NULL)
		return SHOAL_ENOMEM;
	for (i = 0; i < nspecs; i++) {
		int n = flag_head(&specs[i], head, sizeof(head));

		sorted[i] = &specs[i];
		if (n > 0 && (size_t)n > maxlen)
			maxlen = (size_t)n;
	}
	qsort(sorted, nspecs, sizeof(*sorted), by_name);
	buf_init(&text);
	for (i = 0; i < nspecs && rv == 0; i++) {
		const struct flag_spec *spec = sorted[i];
		int n = flag_head(spec, head, sizeof(head));
		size_t hl = n > 0 ? (size_t)n : 0;

		text.len = 0;
		rv = buf_appendf(&text, "%s", spec->usage != NULL ? spec->usage : "");
		if (rv == 0 && spec->def != NULL) {
			if (spec->value_name != NULL && strcmp(spec->value_name, "string") == 0)
				rv = buf_appendf(&text, " (default \"%s\")", spec->def);
			else
				rv = buf_appendf(&text, " (default %s)", spec->def);
		}
		if (rv == 0)
			rv = buf_appendf(out, "%s%*s", head, (int)(maxlen - hl + 3), "");
		if (rv == 0)
			rv = wrap(out, maxlen + 3, FLAGS_USAGE_WIDTH, text.data);
		if (rv == 0)
			rv = buf_append(out, "\n", 1);
	}
	buf_free(&text);
	free(sorted);
	return rv;
}
