/* "inspect" for nodes and services: flags, the JSON array or pretty views, Docker's errors. */
#include "cli/inspect.h"

#include <stdio.h>
#include <string.h>

#include "cli/jsonfmt.h"

#define INSPECT_FORMAT_USAGE                       \
	"Format output using a custom template:\n" \
	"'json':             Print in JSON format"

enum inspect_mode { INSPECT_INDENT, INSPECT_JSON, INSPECT_PRETTY };

int cli_inspect(struct cli_ctx *ctx, int argc, char **argv, const struct cli_inspect_kind *kind,
		void *arg)
{
	const char *format = NULL;
	bool pretty = false;
	const struct flag_spec specs[] = {
	    {"format", 'f', FLAG_STRING, "string", INSPECT_FORMAT_USAGE, NULL, &format},
	    {"pretty", 0, FLAG_BOOL, NULL, "Print the information in a human friendly format", NULL,
	     &pretty},
	};
	enum inspect_mode mode = INSPECT_INDENT;
	struct buf raw, out, errors;
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	size_t i, found = 0;
	int rv, failed = 0;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	if (pretty || (format != NULL && strcmp(format, "pretty") == 0)) {
		mode = INSPECT_PRETTY;
	} else if (format != NULL && strcmp(format, "json") == 0) {
		mode = INSPECT_JSON;
	} else if (format != NULL && format[0] != '\0') {
		flags_result_free(&res);
		return cli_flag_error(ctx,
				      "invalid argument \"%s\" for \"-f, --format\" flag: shoal "
				      "supports only the \"json\" and \"pretty\" formats",
				      format);
	}
	rv = cli_client(ctx, &client, &err);
	if (rv != 0) {
		flags_result_free(&res);
		return cli_fail(ctx, &err);
	}

	buf_init(&raw);
	buf_init(&out);
	buf_init(&errors);
	rv = buf_append(&raw, "[", 1);
	for (i = 0; i < res.nargs && rv == 0; i++) {
		struct client_resp obj = {0};
		int got = kind->get(client, res.args[i], arg, &obj, &err);

		if (got != 0) {
			failed = 1;
			if (got == SHOAL_ENOTFOUND && kind->not_found != NULL)
				rv = buf_appendf(&errors, "%sno such %s: %s",
						 errors.len > 0 ? "\n" : "", kind->not_found,
						 res.args[i]);
			else
				rv = buf_appendf(&errors, "%s%s", errors.len > 0 ? "\n" : "",
						 err.msg);
			if (mode == INSPECT_PRETTY && kind->pretty_stops_at_failure) {
				out.len = 0;
				break;
			}
			continue;
		}
		if (mode == INSPECT_PRETTY) {
			rv = kind->pretty(obj.json, &out);
		} else {
			rv = buf_appendf(&raw, "%s", found > 0 ? "," : "");
			if (rv == 0)
				rv = buf_append(&raw, obj.body, obj.len);
		}
		found++;
		client_resp_free(&obj);
	}
	if (rv == 0)
		rv = buf_append(&raw, "]", 1);
	if (rv != 0)
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
	else if (mode == INSPECT_INDENT)
		rv = jsonfmt_indent(raw.data, raw.len, "    ", &out, &err);
	else if (mode == INSPECT_JSON)
		rv = jsonfmt_compact(raw.data, raw.len, &out, &err);
	if (rv == 0 && mode != INSPECT_PRETTY)
		rv = buf_append(&out, "\n", 1);
	if (rv == 0)
		rv = cli_write(ctx, out.data, out.len, &err);
	if (rv != 0)
		cli_fail(ctx, &err);
	if (failed) {
		fflush(ctx->out);
		fprintf(ctx->err, "%s\n", errors.data != NULL ? errors.data : "");
	}
	buf_free(&raw);
	buf_free(&out);
	buf_free(&errors);
	flags_result_free(&res);
	return rv != 0 || failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
