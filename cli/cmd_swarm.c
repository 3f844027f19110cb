/* "shoal swarm init" and "shoal swarm leave". */
#include <stdlib.h>
#include <string.h>

#include "cli/addr.h"
#include "cli/cmd.h"
#include "cli/jsonfmt.h"

/* Docker's printJoinCommand() for a worker, after "swarm init". */
static int print_join_command(struct cli_ctx *ctx, struct client *client, const char *node_id,
			      struct shoal_err *err)
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
	if (json_is_object(ms)) {
		rv = buf_appendf(&out,
				 "To add a worker to this swarm, run the following command:\n\n"
				 "    %s swarm join --token %s %s\n\n",
				 CLI_NAME, jsonfmt_str(swarm.json, "JoinTokens.Worker"),
				 jsonfmt_str(ms, "Addr"));
		if (rv != 0)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		else
			rv = cli_write(ctx, out.data, out.len, err);
	}
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
	rv = print_join_command(ctx, client, node_id, &err);
	client_resp_free(&resp);
	if (rv != 0)
		return cli_fail(ctx, &err);
	fprintf(ctx->out,
		"To add a manager to this swarm, run '%s swarm join-token manager' and follow the "
		"instructions.\n",
		CLI_NAME);
	return CLI_EXIT_OK;
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

static const struct cli_cmd cmd_leave = {
    .name = "leave",
    .use = "[OPTIONS]",
    .short_help = "Leave the swarm",
    .run = run_leave,
};

static const struct cli_cmd *const swarm_cmds[] = {&cmd_init, &cmd_leave};

const struct cli_cmd cli_cmd_swarm = {
    .name = "swarm",
    .short_help = "Manage Swarm",
    .group = CLI_GROUP_SWARM,
    .subs = swarm_cmds,
    .nsubs = ARRAY_SIZE(swarm_cmds),
};
