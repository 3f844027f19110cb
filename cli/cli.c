/* The CLI's entry: global options, dispatch to commands, help and usage errors. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "lib/buf.h"
#include "lib/log.h"

static int run_daemon_misplaced(struct cli_ctx *ctx, int argc, char **argv);

/* Listed in the help only: main() runs "shoal daemon" before the CLI. */
static const struct cli_cmd cmd_daemon = {
    .name = "daemon",
    .use = "[OPTIONS]",
    .short_help = "Run a shoal node in the foreground",
    .group = CLI_GROUP_OTHER,
    .run = run_daemon_misplaced,
};

/* Defined in cmd_service.c. */
extern const struct cli_cmd cli_cmd_service;

static const struct cli_cmd *const root_cmds[] = {
    &cli_cmd_version, &cli_cmd_info,  &cli_cmd_image, &cli_cmd_node,
    &cli_cmd_service, &cli_cmd_swarm, &cmd_daemon,
};

static const struct cli_cmd root_cmd = {
    .name = CLI_NAME,
    .short_help = "A peer-to-peer container orchestrator in the style of Docker Swarm mode",
    .subs = root_cmds,
    .nsubs = ARRAY_SIZE(root_cmds),
};

static int run_daemon_misplaced(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(ctx->err,
		"%s: the daemon takes its options after its name: %s daemon [OPTIONS]\n\n"
		"Run '%s daemon --help' for more information\n",
		CLI_NAME, CLI_NAME, CLI_NAME);
	return CLI_EXIT_ERROR;
}

int cli_fail(struct cli_ctx *ctx, const struct shoal_err *err)
{
	/* What was printed comes before the error, as it would unbuffered. */
	fflush(ctx->out);
	fprintf(ctx->err, "%s\n", err->msg);
	return CLI_EXIT_ERROR;
}

int cli_write(struct cli_ctx *ctx, const char *data, size_t len, struct shoal_err *err)
{
	if (len > 0 && fwrite(data, 1, len, ctx->out) != len)
		return shoal_errf(err, SHOAL_EIO, "cannot write the output");
	return 0;
}

int cli_client(struct cli_ctx *ctx, struct client **out, struct shoal_err *err)
{
	int rv;

	if (ctx->client == NULL) {
		rv = client_open(&ctx->client, ctx->host, err);
		if (rv != 0)
			return rv;
	}
	*out = ctx->client;
	return 0;
}

/* "shoal node ls [OPTIONS]"; a group's is just its path. */
static void use_line(const struct cli_ctx *ctx, char *out, size_t len)
{
	if (ctx->cmd->use != NULL)
		snprintf(out, len, "%s %s", ctx->path, ctx->cmd->use);
	else
		snprintf(out, len, "%s", ctx->path);
}

int cli_flag_error(struct cli_ctx *ctx, const char *fmt, ...)
{
	char use[256];
	va_list ap;

	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	use_line(ctx, use, sizeof(use));
	fprintf(ctx->err, "\n\nUsage:  %s\n\nRun '%s --help' for more information\n", use,
		ctx->path);
	return CLI_EXIT_USAGE;
}

static int list_commands(struct buf *b, const struct cli_cmd *cmd, int group, const char *title)
{
	size_t i;
	int rv = 0, any = 0;

	for (i = 0; i < cmd->nsubs && rv == 0; i++) {
		const struct cli_cmd *s = cmd->subs[i];

		if (group >= 0 && s->group != (enum cli_group)group)
			continue;
		if (!any)
			rv = buf_appendf(b, "\n%s:\n", title);
		any = 1;
		if (rv == 0)
			rv = buf_appendf(b, "  %-11s %s\n", s->name, s->short_help);
	}
	return rv;
}

/* Cobra's help layout, as Docker prints it. */
static int help_text(const struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs,
		     struct buf *b)
{
	const struct cli_cmd *cmd = ctx->cmd;
	char use[256];
	int rv;

	if (cmd == &root_cmd)
		snprintf(use, sizeof(use), "%s [OPTIONS] COMMAND", CLI_NAME);
	else if (cmd->subs != NULL)
		snprintf(use, sizeof(use), "%s COMMAND", ctx->path);
	else
		use_line(ctx, use, sizeof(use));
	rv = buf_appendf(b, "Usage:  %s\n\n%s\n", use, cmd->short_help);
	if (rv == 0 && cmd->alias != NULL) {
		size_t plen = strlen(ctx->path) - strlen(cmd->name);

		rv = buf_appendf(b, "\nAliases:\n  %s, %.*s%s\n", ctx->path, (int)plen, ctx->path,
				 cmd->alias);
	}
	if (rv == 0 && cmd == &root_cmd) {
		rv = list_commands(b, cmd, CLI_GROUP_COMMON, "Common Commands");
		if (rv == 0)
			rv = list_commands(b, cmd, CLI_GROUP_SWARM, "Swarm Commands");
		if (rv == 0)
			rv = list_commands(b, cmd, CLI_GROUP_OTHER, "Commands");
	} else if (rv == 0 && cmd->subs != NULL) {
		rv = list_commands(b, cmd, -1, "Commands");
	}
	if (rv == 0 && nspecs > 0) {
		rv = buf_appendf(b, "\n%s:\n", cmd == &root_cmd ? "Global Options" : "Options");
		if (rv == 0)
			rv = flags_usage(specs, nspecs, b);
	}
	if (rv == 0 && cmd->subs != NULL)
		rv = buf_appendf(
		    b, "\nRun '%s COMMAND --help' for more information on a command.\n", ctx->path);
	return rv;
}

static int print_help(const struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs,
		      FILE *to)
{
	struct buf b;
	int rv;

	buf_init(&b);
	rv = help_text(ctx, specs, nspecs, &b);
	if (rv == 0)
		fwrite(b.data, 1, b.len, to);
	else
		fprintf(ctx->err, "out of memory\n");
	buf_free(&b);
	return rv == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static int args_error(struct cli_ctx *ctx, const char *what, size_t n, const char *see)
{
	char use[256];

	use_line(ctx, use, sizeof(use));
	fprintf(ctx->err, "%s: '%s' %s", CLI_NAME, ctx->path, what);
	if (n > 0)
		fprintf(ctx->err, " %zu argument%s", n, n == 1 ? "" : "s");
	fprintf(ctx->err, "\n\nUsage:  %s\n\n%s '%s --help' for more information\n", use, see,
		ctx->path);
	return CLI_EXIT_ERROR;
}

static int parse_args(struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs,
		      enum cli_args rule, size_t nargs, int argc, char **argv,
		      struct flags_result *res, bool stop_at_arg)
{
	struct shoal_err err;
	int rv;

	rv = flags_parse(specs, nspecs, argc, argv, stop_at_arg, res, &err);
	if (rv == SHOAL_ENOMEM)
		return cli_fail(ctx, &err);
	if (rv != 0)
		return cli_flag_error(ctx, "%s", err.msg);
	if (res->help) {
		flags_result_free(res);
		return print_help(ctx, specs, nspecs, ctx->out);
	}
	rv = CLI_CONTINUE;
	if (rule == CLI_ARGS_NONE && res->nargs > 0)
		rv = args_error(ctx, "accepts no arguments", 0, "Run");
	else if (rule == CLI_ARGS_EXACT && res->nargs != nargs)
		rv = args_error(ctx, "requires", nargs, "Run");
	else if (rule == CLI_ARGS_MIN && res->nargs < nargs)
		rv = args_error(ctx, "requires at least", nargs, "See");
	if (rv != CLI_CONTINUE)
		flags_result_free(res);
	return rv;
}

int cli_parse(struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs, enum cli_args rule,
	      size_t nargs, int argc, char **argv, struct flags_result *res)
{
	return parse_args(ctx, specs, nspecs, rule, nargs, argc, argv, res, false);
}

int cli_parse_until_arg(struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs,
			enum cli_args rule, size_t nargs, int argc, char **argv,
			struct flags_result *res)
{
	return parse_args(ctx, specs, nspecs, rule, nargs, argc, argv, res, true);
}

static const struct cli_cmd *find_cmd(const struct cli_cmd *group, const char *name)
{
	size_t i;

	for (i = 0; i < group->nsubs; i++) {
		const struct cli_cmd *c = group->subs[i];

		if (strcmp(c->name, name) == 0 || (c->alias != NULL && strcmp(c->alias, name) == 0))
			return c;
	}
	return NULL;
}

/* ctx->cmd is a group and ctx->path its path: find and run the sub-command. */
static int dispatch(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct cli_cmd *group = ctx->cmd, *cmd;
	struct flags_result res;
	struct shoal_err err;
	size_t plen;
	int rv;

	/* Only --help goes between a group and its command. */
	rv = flags_parse(NULL, 0, argc, argv, true, &res, &err);
	if (rv == SHOAL_ENOMEM)
		return cli_fail(ctx, &err);
	if (rv != 0)
		return cli_flag_error(ctx, "%s", err.msg);
	if (res.help) {
		flags_result_free(&res);
		return print_help(ctx, NULL, 0, ctx->out);
	}
	if (res.nargs == 0) {
		flags_result_free(&res);
		return print_help(ctx, NULL, 0, ctx->err);
	}
	cmd = find_cmd(group, res.args[0]);
	if (cmd == NULL) {
		fprintf(ctx->err, "%s: unknown command: %s %s\n\n", CLI_NAME, ctx->path,
			res.args[0]);
		if (group != &root_cmd)
			fprintf(ctx->err, "Usage:  %s\n\n", ctx->path);
		fprintf(ctx->err, "Run '%s --help' for more information\n", ctx->path);
		flags_result_free(&res);
		return CLI_EXIT_ERROR;
	}
	plen = strlen(ctx->path);
	snprintf(ctx->path + plen, sizeof(ctx->path) - plen, " %s", cmd->name);
	ctx->cmd = cmd;
	/* The arguments after the command's name, as argv pointers. */
	argc = (int)res.nargs - 1;
	argv = res.args + 1;
	if (cmd->subs != NULL)
		rv = dispatch(ctx, argc, argv);
	else
		rv = cmd->run(ctx, argc, argv);
	flags_result_free(&res);
	return rv;
}

int cli_main(int argc, char **argv)
{
	const char *host = NULL, *level = NULL;
	bool version = false;
	const struct flag_spec specs[] = {
	    {"host", 'H', FLAG_STRING, "string",
	     "Daemon socket to connect to (overrides SHOAL_HOST)", CLIENT_DEFAULT_HOST, &host},
	    {"log-level", 'l', FLAG_STRING, "string",
	     "Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")", "info",
	     &level},
	    {"version", 'v', FLAG_BOOL, NULL, "Print version information and quit", NULL, &version},
	};
	struct cli_ctx ctx = {.out = stdout, .err = stderr, .cmd = &root_cmd};
	enum log_level lvl = LOG_INFO;
	struct flags_result res;
	struct shoal_err err;
	int rv;

	snprintf(ctx.path, sizeof(ctx.path), "%s", CLI_NAME);
	rv = flags_parse(specs, ARRAY_SIZE(specs), argc - 1, argv + 1, true, &res, &err);
	if (rv == SHOAL_ENOMEM)
		return cli_fail(&ctx, &err);
	if (rv != 0) {
		fprintf(ctx.err,
			"%s\n\nUsage:  %s [OPTIONS] COMMAND [ARG...]\n\nRun '%s --help' for more "
			"information\n",
			err.msg, CLI_NAME, CLI_NAME);
		return CLI_EXIT_USAGE;
	}
	if (res.help || version) {
		if (version)
			fprintf(ctx.out, "%s version %s\n", CLI_NAME, PACKAGE_VERSION);
		else
			rv = print_help(&ctx, specs, ARRAY_SIZE(specs), ctx.out);
		flags_result_free(&res);
		return rv;
	}
	if (level != NULL && log_level_parse(level, &lvl) != 0) {
		fprintf(ctx.err, "Unable to parse logging level: %s\n", level);
		flags_result_free(&res);
		return CLI_EXIT_ERROR;
	}
	log_setup(lvl, LOG_FORMAT_TEXT);
	if (host == NULL) {
		host = getenv("SHOAL_HOST");
		if (host == NULL || host[0] == '\0')
			host = CLIENT_DEFAULT_HOST;
	}
	ctx.host = host;
	if (res.nargs == 0) {
		rv = print_help(&ctx, specs, ARRAY_SIZE(specs), ctx.err);
		flags_result_free(&res);
		return rv;
	}
	rv = dispatch(&ctx, (int)res.nargs, res.args);
	flags_result_free(&res);
	client_close(ctx.client);
	if (fflush(ctx.out) != 0 || ferror(ctx.out)) {
		fprintf(ctx.err, "%s: cannot write the output\n", CLI_NAME);
		if (rv == CLI_EXIT_OK)
			rv = CLI_EXIT_ERROR;
	}
	return rv;
}

int cli_delete_each(struct cli_ctx *ctx, struct client *client, const char *prefix,
		    const char *query, char *const *args, size_t n)
{
	struct shoal_err err;
	struct buf path, errors;
	int rv = 0, failed = 0;

	buf_init(&path);
	buf_init(&errors);
	for (size_t i = 0; i < n && rv == 0; i++) {
		struct client_resp resp = {0};

		path.len = 0;
		rv = buf_appendf(&path, "%s", prefix);
		if (rv == 0)
			rv = client_escape(&path, args[i], false);
		if (rv == 0 && query != NULL)
			rv = buf_appendf(&path, "%s", query);
		if (rv != 0)
			break;
		if (client_request(client, "DELETE", path.data, NULL, &resp, &err) == 0) {
			fprintf(ctx->out, "%s\n", args[i]);
		} else {
			failed = 1;
			rv = buf_appendf(&errors, "%s%s", errors.len > 0 ? "\n" : "", err.msg);
		}
		client_resp_free(&resp);
	}
	if (rv != 0) {
		shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		cli_fail(ctx, &err);
	} else if (failed) {
		fflush(ctx->out);
		fprintf(ctx->err, "%s\n", errors.data);
	}
	buf_free(&path);
	buf_free(&errors);
	return rv != 0 || failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
