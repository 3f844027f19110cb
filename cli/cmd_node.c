/* "shoal node ls", "inspect", "update", "promote", "demote", "rm" and "ps". */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/inspect.h"
#include "cli/jsonfmt.h"
#include "cli/node_format.h"

#define LS_FORMAT_USAGE                                                                    \
	"Format output using a custom template:\n"                                         \
	"'table':            Print output in table format with column headers (default)\n" \
	"'json':             Print in JSON format"

/* "/nodes/<ref>", @ref escaped. */
static int node_path(struct buf *path, const char *ref)
{
	int rv = buf_appendf(path, "/nodes/");

	if (rv == 0)
		rv = client_escape(path, ref, false);
	return rv;
}

/* Docker's node.Reference(): "self" is this node's ID from GET /info. */
static int resolve_self(struct client *client, char **id, struct shoal_err *err)
{
	struct client_resp info = {0}, nodes = {0};
	const char *self;
	int rv;

	rv = client_request(client, "GET", "/info", NULL, &info, err);
	if (rv != 0)
		return rv;
	self = jsonfmt_str(info.json, "Swarm.NodeID");
	if (self[0] == '\0') {
		/* Not a manager, probably: the node list explains why. */
		client_resp_free(&info);
		rv = client_request(client, "GET", "/nodes", NULL, &nodes, err);
		client_resp_free(&nodes);
		if (rv != 0)
			return rv;
		return shoal_errf(err, SHOAL_ENOTFOUND, "node ID not found in /info");
	}
	*id = strdup(self);
	client_resp_free(&info);
	if (*id == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* One "-f name=value": filters[name][value] = true, as Docker's filters.Args. */
static int add_filter(json_t *filters, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const char *v = eq + 1, *ve;
	char name[128];
	size_t s = 0, e, i;
	json_t *set;

	e = (size_t)(eq - arg);
	while (s < e && isspace((unsigned char)arg[s]))
		s++;
	while (e > s && isspace((unsigned char)arg[e - 1]))
		e--;
	if (e - s >= sizeof(name))
		e = s + sizeof(name) - 1;
	for (i = s; i < e; i++)
		name[i - s] = (char)tolower((unsigned char)arg[i]);
	name[e - s] = '\0';
	while (isspace((unsigned char)*v))
		v++;
	ve = v + strlen(v);
	while (ve > v && isspace((unsigned char)ve[-1]))
		ve--;
	set = json_object_get(filters, name);
	if (set == NULL) {
		set = json_object();
		if (set == NULL || json_object_set_new(filters, name, set) != 0)
			return SHOAL_ENOMEM;
	}
	return json_object_setn_new(set, v, (size_t)(ve - v), json_true()) != 0 ? SHOAL_ENOMEM : 0;
}

static int ls_path(const struct flag_list *filters, struct buf *path)
{
	json_t *f = json_object();
	char *enc = NULL;
	size_t i;
	int rv = f != NULL ? 0 : SHOAL_ENOMEM;

	for (i = 0; i < filters->n && rv == 0; i++)
		rv = add_filter(f, filters->items[i]);
	if (rv == 0)
		rv = buf_appendf(path, "/nodes");
	if (rv == 0 && json_object_size(f) > 0) {
		enc = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
		rv = enc != NULL ? buf_appendf(path, "?filters=") : SHOAL_ENOMEM;
		if (rv == 0)
			rv = client_escape(path, enc, true);
	}
	free(enc);
	json_decref(f);
	return rv;
}

static int run_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	struct flag_list filters = {0};
	bool quiet = false;
	const struct flag_spec specs[] = {
	    {"filter", 'f', FLAG_LIST, "filter", "Filter output based on conditions provided", NULL,
	     &filters},
	    {"format", 0, FLAG_STRING, "string", LS_FORMAT_USAGE, NULL, &format},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only display IDs", NULL, &quiet},
	};
	struct client_resp nodes = {0}, info = {0};
	enum node_list_format fmt = NODE_LIST_TABLE;
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf path, out;
	size_t i;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		goto out_flags;
	flags_result_free(&res);
	if (format != NULL && strcmp(format, "json") == 0) {
		fmt = NODE_LIST_JSON;
	} else if (format != NULL && format[0] != '\0' && strcmp(format, "table") != 0) {
		rv = cli_flag_error(ctx,
				    "invalid argument \"%s\" for \"--format\" flag: shoal supports "
				    "only the \"table\" and \"json\" formats",
				    format);
		goto out_flags;
	} else if (quiet) {
		fmt = NODE_LIST_QUIET;
	}
	for (i = 0; i < filters.n; i++) {
		if (strchr(filters.items[i], '=') == NULL) {
			rv =
			    cli_flag_error(ctx,
					   "invalid argument \"%s\" for \"-f, --filter\" flag: bad "
					   "format of filter (expected name=value)",
					   filters.items[i]);
			goto out_flags;
		}
	}

	buf_init(&path);
	buf_init(&out);
	rv = ls_path(&filters, &path);
	if (rv != 0) {
		rv = shoal_errf(&err, rv, "out of memory");
		goto out;
	}
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "GET", path.data, NULL, &nodes, &err);
	if (rv == 0 && !json_is_array(nodes.json))
		rv = shoal_errf(&err, SHOAL_EPROTO,
				"the daemon's answer to GET /nodes is not a list");
	/* Which node is this one: only needed to mark it. */
	if (rv == 0 && json_array_size(nodes.json) > 0 && fmt != NODE_LIST_QUIET)
		rv = client_request(client, "GET", "/info", NULL, &info, &err);
	if (rv != 0)
		goto out;
	rv = node_format_list(nodes.json, info.json, fmt, &out);
	if (rv != 0)
		rv = shoal_errf(&err, rv, "out of memory");
	else
		rv = cli_write(ctx, out.data, out.len, &err);
out:
	client_resp_free(&nodes);
	client_resp_free(&info);
	buf_free(&path);
	buf_free(&out);
	flag_list_free(&filters);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
out_flags:
	flag_list_free(&filters);
	return rv;
}

/* GET one node for inspect; @arg is a char ** for this node's ID, looked up once for "self". On
 * success *@resp holds it. */
static int inspect_one(struct client *client, const char *ref, void *arg, struct client_resp *resp,
		       struct shoal_err *err)
{
	char **self = arg;
	struct buf path;
	int rv;

	if (strcmp(ref, "self") == 0) {
		if (*self == NULL) {
			rv = resolve_self(client, self, err);
			if (rv != 0)
				return rv;
		}
		ref = *self;
	}
	buf_init(&path);
	rv = node_path(&path, ref);
	if (rv != 0)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	else
		rv = client_request(client, "GET", path.data, NULL, resp, err);
	if (rv == 0 && !json_is_object(resp->json)) {
		client_resp_free(resp);
		rv = shoal_errf(err, SHOAL_EPROTO, "the daemon's answer to GET %s is not an object",
				path.data);
	}
	buf_free(&path);
	return rv;
}

static const struct cli_inspect_kind node_inspect = {
    .get = inspect_one,
    .pretty = node_format_pretty,
    .pretty_stops_at_failure = true,
};

static int run_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	char *self = NULL;
	int rv = cli_inspect(ctx, argc, argv, &node_inspect, &self);

	free(self);
	return rv;
}

/* Docker's mergeNodeUpdate(): role, availability, then labels added and removed. */
static int merge_update(json_t *spec, const char *role, const char *avail,
			const struct flag_list *add, const struct flag_list *rm,
			struct shoal_err *err)
{
	json_t *labels;
	size_t i;

	if (role != NULL && json_object_set_new(spec, "Role", json_string(role)) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (avail != NULL && json_object_set_new(spec, "Availability", json_string(avail)) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	labels = json_object_get(spec, "Labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		if (labels == NULL || json_object_set_new(spec, "Labels", labels) != 0)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	for (i = 0; i < add->n; i++) {
		const char *kv = add->items[i], *eq = strchr(kv, '=');
		size_t klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
		char *key = strndup(kv, klen);
		int rv;

		if (key == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		rv = json_object_set_new(labels, key, json_string(eq != NULL ? eq + 1 : ""));
		free(key);
		if (rv != 0)
			return shoal_errf(err, SHOAL_EINVAL, "invalid label \"%s\": not UTF-8", kv);
	}
	for (i = 0; i < rm->n; i++) {
		if (json_object_del(labels, rm->items[i]) != 0)
			return shoal_errf(err, SHOAL_EINVAL,
					  "key %s doesn't exist in node's labels", rm->items[i]);
	}
	return 0;
}

/* Returned by a merge_fn when the node needs no update. */
#define NODE_UNCHANGED 1

/* Change the copy of @node's spec in @spec; returns 0, NODE_UNCHANGED or an error. */
typedef int (*merge_fn)(struct cli_ctx *ctx, const json_t *node, json_t *spec, const void *arg,
			struct shoal_err *err);

/* Docker's updateNodes() for one node: GET @ref, let @merge change a copy of
 * its spec, and POST that back at the version read. Returns 0, NODE_UNCHANGED
 * (nothing sent) or an error. */
static int update_node(struct cli_ctx *ctx, struct client *client, const char *ref, merge_fn merge,
		       const void *arg, struct shoal_err *err)
{
	struct client_resp node = {0}, resp = {0};
	json_t *spec = NULL;
	long long version;
	struct buf path;
	int rv;

	buf_init(&path);
	rv = node_path(&path, ref) != 0
		 ? shoal_errf(err, SHOAL_ENOMEM, "out of memory")
		 : client_request(client, "GET", path.data, NULL, &node, err);
	if (rv != 0)
		goto out;
	version = jsonfmt_int(node.json, "Version.Index", -1);
	if (version < 0 || jsonfmt_str(node.json, "ID")[0] == '\0') {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"the daemon's node %s has no ID or Version.Index", ref);
		goto out;
	}
	spec = json_is_object(json_object_get(node.json, "Spec"))
		   ? json_deep_copy(json_object_get(node.json, "Spec"))
		   : json_object();
	if (spec == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	rv = merge(ctx, node.json, spec, arg, err);
	if (rv != 0)
		goto out;
	path.len = 0;
	rv = node_path(&path, jsonfmt_str(node.json, "ID"));
	if (rv == 0)
		rv = buf_appendf(&path, "/update?version=%lld", version);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	rv = client_request(client, "POST", path.data, spec, &resp, err);
out:
	json_decref(spec);
	client_resp_free(&node);
	client_resp_free(&resp);
	buf_free(&path);
	return rv;
}

struct update_flags {
	const char *role, *avail;
	const struct flag_list *add, *rm;
};

static int merge_flags(struct cli_ctx *ctx, const json_t *node, json_t *spec, const void *arg,
		       struct shoal_err *err)
{
	const struct update_flags *f = arg;

	(void)ctx;
	(void)node;
	return merge_update(spec, f->role, f->avail, f->add, f->rm, err);
}

static int run_update(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *avail = NULL, *role = NULL;
	struct flag_list add = {0}, rm = {0};
	const struct flag_spec specs[] = {
	    {"availability", 0, FLAG_STRING, "string",
	     "Availability of the node (\"active\", \"pause\", \"drain\")", NULL, &avail},
	    {"label-add", 0, FLAG_LIST, "list", "Add or update a node label (\"key=value\")", NULL,
	     &add},
	    {"label-rm", 0, FLAG_LIST, "list", "Remove a node label if exists", NULL, &rm},
	    {"role", 0, FLAG_STRING, "string", "Role of the node (\"worker\", \"manager\")", NULL,
	     &role},
	};
	/* Like Docker, role and availability go to the daemon as given: it
	 * accepts any case and refuses other values (exit 1, not a flag error). */
	struct update_flags f = {.add = &add, .rm = &rm};
	struct flags_result res = {0};
	struct client *client;
	struct shoal_err err;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		goto out_flags;
	f.role = role;
	f.avail = avail;
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = update_node(ctx, client, res.args[0], merge_flags, &f, &err);
	if (rv == 0)
		fprintf(ctx->out, "%s\n", res.args[0]);
	else
		rv = cli_fail(ctx, &err);
	flags_result_free(&res);
out_flags:
	flag_list_free(&add);
	flag_list_free(&rm);
	return rv;
}

/* Docker's promote and demote: set the role, or say it is set already. */
static int merge_role(struct cli_ctx *ctx, const json_t *node, json_t *spec, const void *arg,
		      struct shoal_err *err)
{
	const char *role = arg;

	if (strcmp(jsonfmt_str(spec, "Role"), role) == 0) {
		fprintf(ctx->out, "Node %s is already a %s.\n", jsonfmt_str(node, "ID"), role);
		return NODE_UNCHANGED;
	}
	if (json_object_set_new(spec, "Role", json_string(role)) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* Like Docker's updateNodes(), the first failure ends the command. */
static int change_roles(struct cli_ctx *ctx, int argc, char **argv, const char *role)
{
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	size_t i;
	int rv;

	rv = cli_parse(ctx, NULL, 0, CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	rv = cli_client(ctx, &client, &err);
	for (i = 0; i < res.nargs && rv == 0; i++) {
		rv = update_node(ctx, client, res.args[i], merge_role, role, &err);
		if (rv == NODE_UNCHANGED)
			rv = 0;
		else if (rv == 0 && strcmp(role, "manager") == 0)
			fprintf(ctx->out, "Node %s promoted to a manager in the swarm.\n",
				res.args[i]);
		else if (rv == 0)
			fprintf(ctx->out, "Manager %s demoted in the swarm.\n", res.args[i]);
	}
	flags_result_free(&res);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

static int run_promote(struct cli_ctx *ctx, int argc, char **argv)
{
	return change_roles(ctx, argc, argv, "manager");
}

static int run_demote(struct cli_ctx *ctx, int argc, char **argv)
{
	return change_roles(ctx, argc, argv, "worker");
}

static int run_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	bool force = false;
	const struct flag_spec specs[] = {
	    {"force", 'f', FLAG_BOOL, NULL, "Force remove a node from the swarm", NULL, &force},
	};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	rv = cli_client(ctx, &client, &err);
	if (rv != 0) {
		flags_result_free(&res);
		return cli_fail(ctx, &err);
	}
	/* Like Docker's client: force=1 when forced, no parameter otherwise. */
	rv =
	    cli_delete_each(ctx, client, "/nodes/", force ? "?force=1" : NULL, res.args, res.nargs);
	flags_result_free(&res);
	return rv;
}

/* "node ps [NODE...]" (default self) shares "service ps"'s code in cmd_service.c. */
int cli_node_ps(struct cli_ctx *ctx, int argc, char **argv);

static const struct cli_cmd cmd_ps = {
    .name = "ps",
    .use = "[OPTIONS] [NODE...]",
    .short_help = "List tasks running on one or more nodes, defaults to current node",
    .run = cli_node_ps,
};

static const struct cli_cmd cmd_ls = {
    .name = "ls",
    .alias = "list",
    .use = "[OPTIONS]",
    .short_help = "List nodes in the swarm",
    .run = run_ls,
};

static const struct cli_cmd cmd_inspect = {
    .name = "inspect",
    .use = "[OPTIONS] self|NODE [NODE...]",
    .short_help = "Display detailed information on one or more nodes",
    .run = run_inspect,
};

static const struct cli_cmd cmd_update = {
    .name = "update",
    .use = "[OPTIONS] NODE",
    .short_help = "Update a node",
    .run = run_update,
};

static const struct cli_cmd cmd_promote = {
    .name = "promote",
    .use = "NODE [NODE...]",
    .short_help = "Promote one or more nodes to manager in the swarm",
    .run = run_promote,
};

static const struct cli_cmd cmd_demote = {
    .name = "demote",
    .use = "NODE [NODE...]",
    .short_help = "Demote one or more nodes from manager in the swarm",
    .run = run_demote,
};

static const struct cli_cmd cmd_rm = {
    .name = "rm",
    .alias = "remove",
    .use = "[OPTIONS] NODE [NODE...]",
    .short_help = "Remove one or more nodes from the swarm",
    .run = run_rm,
};

/* In Docker's (alphabetical) order. */
static const struct cli_cmd *const node_cmds[] = {
    &cmd_demote, &cmd_inspect, &cmd_ls, &cmd_promote, &cmd_ps, &cmd_rm, &cmd_update};

const struct cli_cmd cli_cmd_node = {
    .name = "node",
    .short_help = "Manage Swarm nodes",
    .group = CLI_GROUP_SWARM,
    .subs = node_cmds,
    .nsubs = ARRAY_SIZE(node_cmds),
};
