/* What every CLI command shares: the command tree, argument checks, help and
 * error output with Docker's wording and exit codes. Internal to cli/. */
#ifndef SHOAL_CLI_CMD_H
#define SHOAL_CLI_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "cli/client.h"
#include "cli/flags.h"
#include "lib/err.h"

#define CLI_NAME "shoal"

/* Exit codes, as Docker's CLI uses them. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_ERROR 1   /* the command failed, or bad arguments */
#define CLI_EXIT_USAGE 125 /* a flag could not be parsed */

/* Returned by cli_parse() when the command should go on. */
#define CLI_CONTINUE (-1)

/* Where a command is listed in "shoal --help". */
enum cli_group { CLI_GROUP_COMMON, CLI_GROUP_SWARM, CLI_GROUP_OTHER };

/* How many positional arguments a command takes (Docker's cli.NoArgs, ...). */
enum cli_args { CLI_ARGS_NONE, CLI_ARGS_EXACT, CLI_ARGS_MIN };

struct cli_ctx;

struct cli_cmd {
	const char *name;
	const char *alias;	/* another name, or NULL ("list" for "ls") */
	const char *use;	/* what follows the command path in "Usage:" */
	const char *short_help; /* one line */
	enum cli_group group;
	/* A group ("node", "swarm") has sub-commands and no run. */
	const struct cli_cmd *const *subs;
	size_t nsubs;
	/* Run with the arguments after the command's name; returns the exit code. */
	int (*run)(struct cli_ctx *ctx, int argc, char **argv);
};

/* One invocation: global options, the command being run, the connection. */
struct cli_ctx {
	const char *host;	   /* "unix:///PATH" */
	const struct cli_cmd *cmd; /* the command running */
	char path[128];		   /* its path: "shoal node ls" */
	struct client *client;	   /* opened by cli_client() on first use */
	FILE *out;
	FILE *err;
};

/* The command groups and commands, defined in cmd_*.c. */
extern const struct cli_cmd cli_cmd_version;
extern const struct cli_cmd cli_cmd_info;
extern const struct cli_cmd cli_cmd_swarm;
extern const struct cli_cmd cli_cmd_node;
extern const struct cli_cmd cli_cmd_image;
/* "service logs", in its own file (cmd_service_logs.c). */
extern const struct cli_cmd cli_cmd_service_logs;

/* Parse a command's flags and check its argument count (@nargs with @rule).
 * Returns CLI_CONTINUE with @res filled (free with flags_result_free()), or
 * an exit code after printing: the help for --help (0), a flag error (125) or
 * an argument-count error (1), each in Docker's words. */
int cli_parse(struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs, enum cli_args rule,
	      size_t nargs, int argc, char **argv, struct flags_result *res);
/* DELETE @prefix<arg>@query (each arg escaped as a path segment) for every
 * one of @args, the way Docker's rm commands do: remove every one it can,
 * printing each name removed, then print every failure on stderr. Frees
 * nothing of the caller's. Returns the command's exit code. */
int cli_delete_each(struct cli_ctx *ctx, struct client *client, const char *prefix,
		    const char *query, char *const *args, size_t n);

/* As cli_parse(), but flags end at the first positional argument (Docker's
 * SetInterspersed(false)): for IMAGE [COMMAND [ARG...]], whose ARGs may look
 * like flags. */
int cli_parse_until_arg(struct cli_ctx *ctx, const struct flag_spec *specs, size_t nspecs,
			enum cli_args rule, size_t nargs, int argc, char **argv,
			struct flags_result *res);

/* Print "@msg\n\nUsage:  ...\n\nRun '... --help' for more information" as a
 * bad flag value does, and return CLI_EXIT_USAGE. */
int cli_flag_error(struct cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print @err's message on stderr and return CLI_EXIT_ERROR. */
int cli_fail(struct cli_ctx *ctx, const struct shoal_err *err);

/* The client for ctx->host, connected on first use; owned by @ctx. */
int cli_client(struct cli_ctx *ctx, struct client **out, struct shoal_err *err);

/* Write @len bytes of @data to ctx->out. Returns 0, or SHOAL_EIO with the reason. */
int cli_write(struct cli_ctx *ctx, const char *data, size_t len, struct shoal_err *err);

#endif
