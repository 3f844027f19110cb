/* "shoal <kind> inspect": one GET per argument, printed as Docker prints it. Internal to cli/. */
#ifndef SHOAL_CLI_INSPECT_H
#define SHOAL_CLI_INSPECT_H

#include <jansson.h>
#include <stdbool.h>

#include "cli/cmd.h"
#include "lib/buf.h"

/* What differs between the kinds of object "inspect" shows. */
struct cli_inspect_kind {
	/* GET the object @ref names into *@resp, a JSON object; @arg is the one given to
	 * cli_inspect(). Returns 0, or a negative code with the line to print in @err. */
	int (*get)(struct client *client, const char *ref, void *arg, struct client_resp *resp,
		   struct shoal_err *err);
	/* Append the "--pretty" view of @obj to @out. Returns 0 or SHOAL_ENOMEM. */
	int (*pretty)(json_t *obj, struct buf *out);
	/* When get() returns SHOAL_ENOTFOUND, print "no such <not_found>: <ref>" in place of its
	 * message; NULL: its message. */
	const char *not_found;
	/* In the pretty view, print nothing but the first failure (Docker's "node inspect");
	 * otherwise every failure is printed after everything that was found. */
	bool pretty_stops_at_failure;
};

/* Run "inspect [--format json|pretty] [--pretty] REF [REF...]" with the arguments after
 * "inspect": GET each REF with @kind->get(), print those found as one JSON array (indented, or
 * compact for "--format json") or their pretty views, then the failures on stderr, one a line.
 * Returns the exit code: 0, 1 when anything failed, or what cli_parse() returns for bad flags,
 * --help or no REF. */
int cli_inspect(struct cli_ctx *ctx, int argc, char **argv, const struct cli_inspect_kind *kind,
		void *arg);

#endif
