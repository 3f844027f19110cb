/* "shoal swarm init", "join", "join-token" and "leave". */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli/addr.h"
#include "cli/cmd.h"
#include "cli/jsonfmt.h"

/* Docker's printJoinCommand(): how to join as a worker and/or a manager,
 * through this node (@node_id) when it is a manager; nothing otherwise. */
static int print_join_commands(struct cli_ctx *ctx, struct client *client, const char *node_id,
			       bool worker, bool manager, struct shoal_err *err)
{
	struct client_resp node = {0}, swarm = {0};
	struct buf path, out;
	json_t *ms;
	int rv;

	buf_init(&path);
	buf_init(&out);
	rv = buf_appendf(&path, "/nodes/");
	if (rv == 0)
		rv = client_escape(&path, node_id, false);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	rv = client_request(client, "GET", path.data, NULL, &node, err);
	if (rv == 0)
		rv = client_request(client, "GET", "/swarm", NULL, &swarm, err);
	if (rv != 0)
		goto out;
	ms = json_object_get(node.json, "ManagerStatus");
	if (!json_is_object(ms))
		goto out;
	if (worker)
		rv = buf_appendf(&out,
				 "To add a worker to this swarm, run the following command:\n\n"
				 "    %s swarm join --token %s %s\n\n",
				 CLI_NAME, jsonfmt_str(swarm.json, "JoinTokens.Worker"),
				 jsonfmt_str(ms, "Addr"));
	if (rv == 0 && manager)
		rv = buf_appendf(&out,
				 "To add a manager to this swarm, run the following command:\n\n"
				 "    %s swarm join --token %s %s\n\n",
				 CLI_NAME, jsonfmt_str(swarm.json, "JoinTokens.Manager"),
				 jsonfmt_str(ms, "Addr"));
	if (rv != 0)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	else
		rv = cli_write(ctx, out.data, out.len, err);
out:
	client_resp_free(&node);
	client_resp_free(&swarm);
	buf_free(&path);
	buf_free(&out);
	return rv;
}

static int run_init(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *advertise = NULL, *listen = NULL;
	bool force_new = false;
	const struct flag_spec specs[] = {
	    {"advertise-addr", 0, FLAG_STRING, "string",
	     "Advertised address (format: \"<ip|interface>[:port]\")", NULL, &advertise},
	    {"force-new-cluster", 0, FLAG_BOOL, NULL,
	     "Force create a new cluster from current state", NULL, &force_new},
	    {"listen-addr", 0, FLAG_STRING, "node-addr",
	     "Listen address (format: \"<ip|interface>[:port]\", port " ADDR_DEFAULT_PORT
	     " when left out); the daemon's --listen-addr when not given",
	     NULL, &listen},
	};
	char listen_addr[ADDR_MAX];
	struct client_resp resp = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	const char *node_id;
	json_t *body;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	flags_result_free(&res);
	/* Unlike Docker's CLI, no default is sent: an empty ListenAddr lets the
	 * daemon use its own --listen-addr. */
	listen_addr[0] = '\0';
	if (listen != NULL &&
	    addr_parse_listen(listen, listen_addr, sizeof(listen_addr), &err) != 0)
		return cli_flag_error(ctx, "invalid argument \"%s\" for \"--listen-addr\" flag: %s",
				      listen, err.msg);

	body = json_pack("{s:s, s:s, s:b}", "ListenAddr", listen_addr, "AdvertiseAddr",
			 advertise != NULL ? advertise : "", "ForceNewCluster", force_new);
	if (body == NULL) {
		shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		return cli_fail(ctx, &err);
	}
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "POST", "/swarm/init", body, &resp, &err);
	json_decref(body);
	if (rv != 0) {
		/* Docker's hint when the daemon cannot pick an address itself. */
		fflush(ctx->out);
		if (strstr(err.msg, "could not choose an IP address to advertise") != NULL ||
		    strstr(err.msg, "could not find the system's IP address") != NULL)
			fprintf(ctx->err, "%s - specify one with --advertise-addr\n", err.msg);
		else
			fprintf(ctx->err, "%s\n", err.msg);
		return CLI_EXIT_ERROR;
	}
	node_id = json_string_value(resp.json);
	if (node_id == NULL) {
		client_resp_free(&resp);
		shoal_errf(&err, SHOAL_EPROTO,
			   "the daemon's answer to POST /swarm/init is not the node ID");
		return cli_fail(ctx, &err);
	}
	fprintf(ctx->out, "Swarm initialized: current node (%s) is now a manager.\n\n", node_id);
	rv = print_join_commands(ctx, client, node_id, true, false, &err);
	client_resp_free(&resp);
	if (rv != 0)
		return cli_fail(ctx, &err);
	fprintf(ctx->out,
		"To add a manager to this swarm, run '%s swarm join-token manager' and follow the "
		"instructions.\n",
		CLI_NAME);
	return CLI_EXIT_OK;
}

/* @s quoted the way Go's %q quotes plain text. */
static void print_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static int run_join(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char *const avails[] = {"active", "pause", "drain"};
	const char *advertise = NULL, *listen = NULL, *token = NULL, *avail = NULL;
	const struct flag_spec specs[] = {
	    {"advertise-addr", 0, FLAG_STRING, "string",
	     "Advertised address (format: \"<ip|interface>[:port]\")", NULL, &advertise},
	    {"availability", 0, FLAG_STRING, "string",
	     "Availability of the node (\"active\", \"pause\", \"drain\")", "active", &avail},
	    {"listen-addr", 0, FLAG_STRING, "node-addr",
	     "Listen address (format: \"<ip|interface>[:port]\", port " ADDR_DEFAULT_PORT
	     " when left out); the daemon's --listen-addr when not given",
	     NULL, &listen},
	    {"token", 0, FLAG_STRING, "string", "Token for entry into the swarm", NULL, &token},
	};
	char listen_addr[ADDR_MAX], avail_lc[16] = "";
	struct client_resp resp = {0}, info = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	json_t *body;
	size_t i;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	listen_addr[0] = '\0';
	if (listen != NULL &&
	    addr_parse_listen(listen, listen_addr, sizeof(listen_addr), &err) != 0) {
		flags_result_free(&res);
		return cli_flag_error(ctx, "invalid argument \"%s\" for \"--listen-addr\" flag: %s",
				      listen, err.msg);
	}
	/* Like Docker: checked after parsing (exit 1, not a flag error), and
	 * sent only when given. */
	if (avail != NULL) {
		for (i = 0; avail[i] != '\0' && i + 1 < sizeof(avail_lc); i++)
			avail_lc[i] = (char)tolower((unsigned char)avail[i]);
		avail_lc[i] = '\0';
		for (i = 0; i < ARRAY_SIZE(avails) && strcmp(avail_lc, avails[i]) != 0; i++)
			;
		if (i == ARRAY_SIZE(avails) || strlen(avail) >= sizeof(avail_lc)) {
			flags_result_free(&res);
			fflush(ctx->out);
			fputs("invalid availability ", ctx->err);
			print_quoted(ctx->err, avail);
			fputs(", only active, pause and drain are supported\n", ctx->err);
			return CLI_EXIT_ERROR;
		}
	}

	/* Docker's JoinRequest, every field present. As for init, an empty
	 * ListenAddr lets the daemon use its own --listen-addr. */
	body = json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "ListenAddr", listen_addr,
			 "AdvertiseAddr", advertise != NULL ? advertise : "", "DataPathAddr", "",
			 "RemoteAddrs", res.args[0], "JoinToken", token != NULL ? token : "",
			 "Availability", avail_lc);
	flags_result_free(&res);
	if (body == NULL) {
		shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		return cli_fail(ctx, &err);
	}
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "POST", "/swarm/join", body, &resp, &err);
	json_decref(body);
	client_resp_free(&resp);
	if (rv == 0)
		rv = client_request(client, "GET", "/info", NULL, &info, &err);
	if (rv != 0)
		return cli_fail(ctx, &err);
	fprintf(ctx->out, "This node joined a swarm as a %s.\n",
		jsonfmt_bool(info.json, "Swarm.ControlAvailable") ? "manager" : "worker");
	client_resp_free(&info);
	return CLI_EXIT_OK;
}

/* POST /swarm/update with the current spec, rotating one join token. */
static int rotate_token(struct client *client, bool worker, struct shoal_err *err)
{
	struct client_resp swarm = {0}, resp = {0};
	long long version;
	json_t *spec;
	char path[192];
	int rv;

	rv = client_request(client, "GET", "/swarm", NULL, &swarm, err);
	if (rv != 0)
		return rv;
	version = jsonfmt_int(swarm.json, "Version.Index", -1);
	spec = json_object_get(swarm.json, "Spec");
	if (version < 0 || !json_is_object(spec)) {
		client_resp_free(&swarm);
		return shoal_errf(err, SHOAL_EPROTO,
				  "the daemon's answer to GET /swarm has no Version.Index or Spec");
	}
	/* Docker's client sends every flag, in url.Values' sorted order. */
	snprintf(path, sizeof(path),
		 "/swarm/update?rotateManagerToken=%s&rotateManagerUnlockKey=false"
		 "&rotateWorkerToken=%s&version=%lld",
		 worker ? "false" : "true", worker ? "true" : "false", version);
	rv = client_request(client, "POST", path, spec, &resp, err);
	client_resp_free(&resp);
	client_resp_free(&swarm);
	return rv;
}

static int run_join_token(struct cli_ctx *ctx, int argc, char **argv)
{
	bool quiet = false, rotate = false;
	const struct flag_spec specs[] = {
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only display token", NULL, &quiet},
	    {"rotate", 0, FLAG_BOOL, NULL, "Rotate join token", NULL, &rotate},
	};
	struct client_resp swarm = {0}, info = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	bool worker;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	worker = strcmp(res.args[0], "worker") == 0;
	if (!worker && strcmp(res.args[0], "manager") != 0) {
		shoal_errf(&err, SHOAL_EINVAL, "unknown role %s", res.args[0]);
		flags_result_free(&res);
		return cli_fail(ctx, &err);
	}
	flags_result_free(&res);

	rv = cli_client(ctx, &client, &err);
	if (rv == 0 && rotate) {
		rv = rotate_token(client, worker, &err);
		if (rv == 0 && !quiet)
			fprintf(ctx->out, "Successfully rotated %s join token.\n\n",
				worker ? "worker" : "manager");
	}
	/* Read again: a rotation changed the tokens. */
	if (rv == 0)
		rv = client_request(client, "GET", "/swarm", NULL, &swarm, &err);
	if (rv == 0 && quiet)
		fprintf(
		    ctx->out, "%s\n",
		    jsonfmt_str(swarm.json, worker ? "JoinTokens.Worker" : "JoinTokens.Manager"));
	else if (rv == 0)
		rv = client_request(client, "GET", "/info", NULL, &info, &err);
	if (rv == 0 && !quiet)
		rv = print_join_commands(ctx, client, jsonfmt_str(info.json, "Swarm.NodeID"),
					 worker, !worker, &err);
	client_resp_free(&swarm);
	client_resp_free(&info);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

static int run_leave(struct cli_ctx *ctx, int argc, char **argv)
{
	bool force = false;
	const struct flag_spec specs[] = {
	    {"force", 'f', FLAG_BOOL, NULL, "Force this node to leave the swarm, ignoring warnings",
	     NULL, &force},
	};
	struct client_resp resp = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	flags_result_free(&res);
	rv = cli_client(ctx, &client, &err);
	/* Like Docker's client: force=1 when forced, no parameter otherwise. */
	if (rv == 0)
		rv = client_request(client, "POST", force ? "/swarm/leave?force=1" : "/swarm/leave",
				    NULL, &resp, &err);
	client_resp_free(&resp);
	if (rv != 0)
		return cli_fail(ctx, &err);
	fprintf(ctx->out, "Node left the swarm.\n");
	return CLI_EXIT_OK;
}

static const struct cli_cmd cmd_init = {
    .name = "init",
    .use = "[OPTIONS]",
    .short_help = "Initialize a swarm",
    .run = run_init,
};

static const struct cli_cmd cmd_join = {
    .name = "join",
    .use = "[OPTIONS] HOST:PORT",
    .short_help = "Join a swarm as a node and/or manager",
    .run = run_join,
};

static const struct cli_cmd cmd_join_token = {
    .name = "join-token",
    .use = "[OPTIONS] (worker|manager)",
    .short_help = "Manage join tokens",
    .run = run_join_token,
};

static const struct cli_cmd cmd_leave = {
    .name = "leave",
    .use = "[OPTIONS]",
    .short_help = "Leave the swarm",
    .run = run_leave,
};

static const struct cli_cmd *const swarm_cmds[] = {&cmd_init, &cmd_join, &cmd_join_token,
						   &cmd_leave};

const struct cli_cmd cli_cmd_swarm = {
    .name = "swarm",
    .short_help = "Manage Swarm",
    .group = CLI_GROUP_SWARM,
    .subs = swarm_cmds,
    .nsubs = ARRAY_SIZE(swarm_cmds),
};
