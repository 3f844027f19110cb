/* "shoal version" and "shoal info". */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/system_format.h"
#include "lib/log.h"

#define FORMAT_USAGE                               \
	"Format output using a custom template:\n" \
	"'json':             Print in JSON format"

/* Only "json" (and nothing) are formats; anything else is refused as a flag error. */
static int check_format(struct cli_ctx *ctx, const char *format)
{
	if (format == NULL || format[0] == '\0' || strcmp(format, "json") == 0)
		return CLI_CONTINUE;
	return cli_flag_error(ctx,
			      "invalid argument \"%s\" for \"-f, --format\" flag: shoal supports "
			      "only the \"json\" format",
			      format);
}

static int print_json(struct cli_ctx *ctx, json_t *j, struct shoal_err *err)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int rv;

	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = cli_write(ctx, s, strlen(s), err);
	if (rv == 0)
		rv = cli_write(ctx, "\n", 1, err);
	free(s);
	return rv;
}

static int run_version(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	const struct flag_spec specs[] = {
	    {"format", 'f', FLAG_STRING, "string", FORMAT_USAGE, NULL, &format},
	};
	struct client_resp resp = {0};
	struct shoal_err err, werr;
	struct flags_result res;
	struct client *client;
	json_t *server = NULL, *j;
	struct buf out;
	int rv, wrv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	flags_result_free(&res);
	rv = check_format(ctx, format);
	if (rv != CLI_CONTINUE)
		return rv;

	/* The client's part is printed even when the daemon is unreachable. */
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "GET", "/version", NULL, &resp, &err);
	if (rv == 0 && json_is_object(resp.json))
		server = resp.json;
	else if (rv == 0)
		rv = shoal_errf(&err, SHOAL_EPROTO,
				"the daemon's answer to GET /version is not an object");

	buf_init(&out);
	if (format != NULL && strcmp(format, "json") == 0) {
		j = system_version_json(server);
		wrv = j != NULL ? print_json(ctx, j, &werr)
				: shoal_errf(&werr, SHOAL_ENOMEM, "out of memory");
		json_decref(j);
	} else {
		wrv = system_format_version(server, &out);
		if (wrv != 0)
			shoal_errf(&werr, wrv, "out of memory");
		else
			wrv = cli_write(ctx, out.data, out.len, &werr);
	}
	buf_free(&out);
	client_resp_free(&resp);
	if (wrv != 0)
		return cli_fail(ctx, &werr);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

static int info_json(struct cli_ctx *ctx, json_t *info, struct shoal_err *err)
{
	json_t *client =
	    json_pack("{s:b, s:s, s:s, s:s, s:s}", "Debug", log_enabled(LOG_DEBUG), "Version",
		      PACKAGE_VERSION, "DefaultAPIVersion", CLIENT_API_VERSION, "Os",
		      system_client_os(), "Arch", system_client_arch());

	if (client == NULL || json_object_set_new(info, "ClientInfo", client) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return print_json(ctx, info, err);
}

/* Docker prints the daemon's warnings on stderr after the information. */
static void info_warnings(struct cli_ctx *ctx, json_t *info)
{
	json_t *w;
	size_t i;

	json_array_foreach(json_object_get(info, "Warnings"), i, w)
	{
		if (json_is_string(w))
			fprintf(ctx->err, "%s\n", json_string_value(w));
	}
}

static int run_info(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	const struct flag_spec specs[] = {
	    {"format", 'f', FLAG_STRING, "string", FORMAT_USAGE, NULL, &format},
	};
	bool debug = log_enabled(LOG_DEBUG);
	struct client_resp resp = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf out;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	flags_result_free(&res);
	rv = check_format(ctx, format);
	if (rv != CLI_CONTINUE)
		return rv;

	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "GET", "/info", NULL, &resp, &err);
	if (rv == 0 && !json_is_object(resp.json))
		rv = shoal_errf(&err, SHOAL_EPROTO,
				"the daemon's answer to GET /info is not an object");
	if (format != NULL && strcmp(format, "json") == 0) {
		if (rv == 0)
			rv = info_json(ctx, resp.json, &err);
		client_resp_free(&resp);
		return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
	}

	buf_init(&out);
	/* As Docker does, the client's part and the server's header come first. */
	if (system_format_info_client(debug, &out) != 0 || buf_appendf(&out, "\nServer:\n") != 0 ||
	    (rv == 0 && system_format_info_server(resp.json, debug, &out) != 0)) {
		buf_free(&out);
		client_resp_free(&resp);
		shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		return cli_fail(ctx, &err);
	}
	if (cli_write(ctx, out.data, out.len, rv == 0 ? &err : NULL) != 0)
		rv = SHOAL_EIO;
	if (rv == 0)
		info_warnings(ctx, resp.json);
	buf_free(&out);
	client_resp_free(&resp);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_version = {
    .name = "version",
    .use = "[OPTIONS]",
    .short_help = "Show the shoal version information",
    .group = CLI_GROUP_COMMON,
    .run = run_version,
};

const struct cli_cmd cli_cmd_info = {
    .name = "info",
    .use = "[OPTIONS]",
    .short_help = "Display system-wide information",
    .group = CLI_GROUP_COMMON,
    .run = run_info,
};
