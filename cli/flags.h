/* Command-line flags parsed the way Docker's CLI (spf13/pflag) parses them. */
#ifndef SHOAL_CLI_FLAGS_H
#define SHOAL_CLI_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

enum flag_type {
	FLAG_BOOL,   /* dest is a bool *: "--force", "--force=false" */
	FLAG_STRING, /* dest is a const char **: the last value wins */
	FLAG_LIST,   /* dest is a struct flag_list *: every value, in order */
};

/* The values of a repeatable flag. The strings point into argv; the array is
 * the list's own: free it with flag_list_free(). */
struct flag_list {
	const char **items;
	size_t n;
};

struct flag_spec {
	const char *name;	/* long name, without dashes */
	char shorthand;		/* one letter, or 0 */
	enum flag_type type;	/* what @dest points to */
	const char *value_name; /* shown after the name in the usage ("string", "list") */
	const char *usage;	/* help text; '\n' starts an aligned continuation line */
	const char *def;	/* the default shown in the usage, or NULL */
	void *dest;
};

struct flags_result {
	char **args; /* positional arguments, pointing into argv; the array is owned */
	size_t nargs;
	bool help; /* -h or --help was given */
};

/* Parse @argc arguments of @argv (the command name excluded) against @specs.
 * Flags and positional arguments may be mixed unless @stop_at_arg, in which
 * case the first positional argument and everything after it are returned as
 * arguments (for global options before a command). "--" ends the flags.
 * -h/--help is always known. A string flag not given leaves its @dest as is.
 * Returns 0, SHOAL_ENOMEM, or SHOAL_EINVAL with pflag's message in @err
 * ("unknown flag: --bogus"). On success free @res with flags_result_free(). */
int flags_parse(const struct flag_spec *specs, size_t nspecs, int argc, char **argv,
		bool stop_at_arg, struct flags_result *res, struct shoal_err *err);

void flags_result_free(struct flags_result *res);
void flag_list_free(struct flag_list *l);

/* The name flag errors show: "-f, --filter" or "--format". */
void flag_display_name(const struct flag_spec *spec, char *out, size_t len);

/* Help text is wrapped to this many columns, as Docker wraps it when its
 * output is not a terminal. */
#define FLAGS_USAGE_WIDTH 79

/* Append the options block of a command's help like pflag's
 * FlagUsagesWrapped(): one flag per line sorted by name, usages aligned three
 * spaces after the longest flag and word-wrapped to FLAGS_USAGE_WIDTH, a
 * '\n' in a usage starting an aligned line. Returns 0 or SHOAL_ENOMEM. */
int flags_usage(const struct flag_spec *specs, size_t nspecs, struct buf *out);

/* Go's strconv.ParseBool. Returns 0, or -1 if @s is not a boolean. */
int flag_parse_bool(const char *s, bool *out);

#endif
