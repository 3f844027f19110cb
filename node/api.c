/* The Docker Engine API v1.41 (swarm subset) on top of the HTTP core.
 *
 * A request: strip and check the "/vX.Y" prefix -> find the route (405 if the
 * path exists for another method, 404 if not at all) -> parse the JSON body if
 * the route takes one -> handler. Handlers answer at once (reads) or after the
 * swarm finishes (init, leave, Raft proposals); either way through
 * call_reply_*(), which finishes the HTTP response and frees the call. */
#include "node/api.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/id.h"
#include "lib/log.h"
#include "net/identity.h"
#include "node/api_containers.h"
#include "node/api_ctr_logs.h"
#include "node/api_images.h"
#include "node/api_json.h"
#include "node/api_services.h"
#include "node/api_svc_logs.h"
#include "node/command.h"
#include "node/records.h"
#include "node/schema.h"
#include "node/store.h"
#include "node/swarm.h"

#define MSG_NOT_MANAGER                                                                            \
	"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to " \
	"connect this node to swarm and try again."
#define MSG_WORKER                                                                                \
	"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster " \
	"state. Please run this command on a manager node or promote the current node to a "      \
	"manager."
#define MSG_NO_LEADER                                                                        \
	"The swarm does not have a leader. It's possible that too few managers are online. " \
	"Make sure more than half of the managers are online."

struct api {
	struct api_context ctx;
};

/* One request in flight. */
struct call {
	struct api *api;
	struct http_request *req;
	struct http_response *res;
	char *param;  /* the "*" segment of the route, if any */
	char *new_id; /* POST /services/create: the id its reply names */
	json_t *body;
	void (*fn)(struct call *c); /* the handler, run once the replica caught up */
};

typedef void (*handler_fn)(struct call *c);

struct route {
	const char *method;
	const char *pattern; /* "*" matches one path segment, a final "**" the rest */
	handler_fn fn;
	bool json_body; /* parse the body as JSON (an empty body reads as {}) */
	bool sync;	/* reads the cluster state: on a follower, catch up first */
};

int api_status_for(int code)
{
	switch (code) {
	case SHOAL_EINVAL:
	case SHOAL_EPROTO:
		return 400;
	case SHOAL_ENOTFOUND:
		return 404;
	case SHOAL_ECONFLICT:
	case SHOAL_EBUSY:
		return 409;
	case SHOAL_ETOOBIG:
		return 413;
	case SHOAL_ESTATE:
	case SHOAL_ENOTLEADER:
	case SHOAL_EUNAVAIL:
	case SHOAL_ESHUTDOWN:
	case SHOAL_ETIMEDOUT:
		return 503;
	default:
		return 500;
	}
}

/* --- replies ---------------------------------------------------------------- */

static void call_free(struct call *c)
{
	json_decref(c->body);
	free(c->param);
	free(c->new_id);
	free(c);
}

void api_reply_status(struct http_request *req, struct http_response *res, int status,
		      const char *message)
{
	struct buf body;

	if (status >= 500)
		log_warn("api", "%s %s: %d %s", req->method, req->path, status, message);
	else
		log_debug("api", "%s %s: %d %s", req->method, req->path, status, message);
	/* http_error_body() copes with messages that are not UTF-8 (a user's
	 * input cut at the error holder's length, say). */
	buf_init(&body);
	if (http_error_body(&body, message) != 0 || buf_append(&body, "\n", 1) != 0) {
		static const char oom[] = "{\"message\":\"out of memory\"}\n";
		http_respond(res, 500, "application/json", oom, sizeof(oom) - 1);
	} else {
		http_respond(res, status, "application/json", body.data, body.len);
	}
	buf_free(&body);
}

void api_reply_error(struct http_request *req, struct http_response *res, int code,
		     const char *message)
{
	api_reply_status(req, res, api_status_for(code), message);
}

void api_reply_json(struct http_request *req, struct http_response *res, int status, json_t *json)
{
	char *text = json != NULL ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	struct buf body;

	json_decref(json);
	buf_init(&body);
	/* Go's encoder ends every document with a newline; docker's tools expect it. */
	if (text == NULL || buf_appendf(&body, "%s\n", text) != 0)
		api_reply_status(req, res, 500, "out of memory");
	else
		http_respond(res, status, "application/json", body.data, body.len);
	free(text);
	buf_free(&body);
}

static void call_reply_json(struct call *c, int status, json_t *json)
{
	api_reply_json(c->req, c->res, status, json);
	call_free(c);
}

static void call_reply_error(struct call *c, int code, const char *message)
{
	api_reply_error(c->req, c->res, code, message);
	call_free(c);
}

static void call_reply_errorf(struct call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void call_reply_errorf(struct call *c, int code, const char *fmt, ...)
{
	char msg[SHOAL_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_reply_error(c, code, msg);
}

static void call_reply_empty(struct call *c, int status)
{
	http_respond(c->res, status, NULL, NULL, 0);
	call_free(c);
}

/* The swarm's store if this node is a manager able to answer reads; else
 * replies with Docker's error and returns NULL. */
static const struct store *manager_store(struct call *c)
{
	const struct store *st = swarm_store(c->api->ctx.swarm);

	if (st == NULL || store_cluster(st) == NULL) {
		if (swarm_state(c->api->ctx.swarm) == SWARM_PENDING)
			call_reply_error(c, SHOAL_EUNAVAIL, MSG_NO_LEADER);
		else if (swarm_state(c->api->ctx.swarm) == SWARM_ACTIVE)
			call_reply_error(c, SHOAL_ESTATE, MSG_WORKER);
		else
			call_reply_error(c, SHOAL_ESTATE, MSG_NOT_MANAGER);
		return NULL;
	}
	return st;
}

bool api_query_bool(struct http_request *req, const char *key)
{
	static const char *const falsy[] = {"", "0", "no", "false", "none"};
	char v[64], *p = v, *end;

	if (!http_query_get(req, key, v, sizeof(v)))
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(falsy); i++)
		if (strcasecmp(p, falsy[i]) == 0)
			return false;
	return true;
}

/* --- system ----------------------------------------------------------------- */

static void h_ping(struct call *c)
{
	struct swarm *s = c->api->ctx.swarm;
	const char *swarm_hdr = "inactive";

	switch (swarm_state(s)) {
	case SWARM_ACTIVE:
		swarm_hdr = "active/manager";
		break;
	case SWARM_PENDING:
		swarm_hdr = "pending";
		break;
	case SWARM_ERROR:
		swarm_hdr = "error";
		break;
	default:
		break;
	}
	http_response_header(c->res, "Swarm", swarm_hdr);
	http_response_header(c->res, "Cache-Control", "no-cache, no-store, must-revalidate");
	http_response_header(c->res, "Pragma", "no-cache");
	http_respond(c->res, 200, "text/plain; charset=utf-8", "OK", 2);
	call_free(c);
}

static void h_version(struct call *c)
{
	call_reply_json(c, 200, api_json_version(&c->api->ctx));
}

static void h_info(struct call *c)
{
	call_reply_json(c, 200, api_json_info(&c->api->ctx));
}

/* The answer of a write the swarm finishes later: 200 and no body, or the error. */
static void reply_empty_when_done(void *arg, int status, const struct shoal_err *err)
{
	struct call *c = arg;

	if (status != 0) {
		call_reply_error(c, status, err->msg);
		return;
	}
	call_reply_empty(c, 200);
}

/* --- swarm ------------------------------------------------------------------ */

static void h_swarm_inspect(struct call *c)
{
	const struct store *st = manager_store(c);

	if (st == NULL)
		return;
	call_reply_json(c, 200, api_json_swarm(store_cluster(st), true));
}

/* Read an optional string member of the body, with Go's type error. */
static int body_string(struct call *c, const char *type, const char *key, const char **out)
{
	json_t *v = json_object_get(c->body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		call_reply_errorf(
		    c, SHOAL_EINVAL,
		    "json: cannot unmarshal %s into Go struct field %s.%s of type string",
		    schema_json_kind(v), type, key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static int body_bool(struct call *c, const char *type, const char *key, bool *out)
{
	json_t *v = json_object_get(c->body, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		call_reply_errorf(
		    c, SHOAL_EINVAL,
		    "json: cannot unmarshal %s into Go struct field %s.%s of type bool",
		    schema_json_kind(v), type, key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static void swarm_init_done(void *arg, int status, const struct shoal_err *err)
{
	struct call *c = arg;

	if (status != 0) {
		call_reply_error(c, status, err->msg);
		return;
	}
	call_reply_json(c, 200, json_string(swarm_node_id(c->api->ctx.swarm)));
}

static void h_swarm_init(struct call *c)
{
	struct swarm_init_req req;
	struct shoal_err err;
	int rv;

	memset(&req, 0, sizeof req);
	if (body_string(c, "InitRequest", "ListenAddr", &req.listen_addr) != 0 ||
	    body_string(c, "InitRequest", "AdvertiseAddr", &req.advertise_addr) != 0 ||
	    body_bool(c, "InitRequest", "ForceNewCluster", &req.force_new_cluster) != 0)
		return;
	rv = swarm_init(c->api->ctx.swarm, &req, swarm_init_done, c, &err);
	if (rv != 0)
		call_reply_error(c, rv, err.msg);
}

static void h_swarm_join(struct call *c)
{
	struct swarm_join_req req;
	const char *avail = NULL;
	json_t *remotes = json_object_get(c->body, "RemoteAddrs");
	struct shoal_err err;
	int rv;

	memset(&req, 0, sizeof req);
	if (body_string(c, "JoinRequest", "ListenAddr", &req.listen_addr) != 0 ||
	    body_string(c, "JoinRequest", "AdvertiseAddr", &req.advertise_addr) != 0 ||
	    body_string(c, "JoinRequest", "JoinToken", &req.token) != 0 ||
	    body_string(c, "JoinRequest", "Availability", &avail) != 0)
		return;
	if (remotes != NULL && !json_is_null(remotes) && !json_is_array(remotes)) {
		call_reply_errorf(c, SHOAL_EINVAL,
				  "json: cannot unmarshal %s into Go struct field "
				  "JoinRequest.RemoteAddrs of type []string",
				  schema_json_kind(remotes));
		return;
	}
	if (json_array_size(remotes) == 0 || !json_is_string(json_array_get(remotes, 0))) {
		call_reply_error(c, SHOAL_EINVAL,
				 "invalid JoinRequest: RemoteAddrs must name a manager address");
		return;
	}
	req.remote_addr = json_string_value(json_array_get(remotes, 0));
	req.availability = NODE_AVAILABILITY_ACTIVE;
	if (avail != NULL && avail[0] != '\0') {
		int v;
		if (schema_enum_value(node_availability_names, avail, &v) != 0) {
			call_reply_errorf(c, SHOAL_EINVAL, "invalid Availability: \"%.64s\"",
					  avail);
			return;
		}
		req.availability = v;
	}
	if (req.token == NULL || req.token[0] == '\0') {
		call_reply_error(c, SHOAL_EINVAL,
				 "A valid join token is necessary to join this cluster");
		return;
	}
	rv = swarm_join(c->api->ctx.swarm, &req, reply_empty_when_done, c, &err);
	if (rv != 0)
		call_reply_error(c, rv, err.msg);
}

/* The ?version= of an update of a @kind record: digits only (strtoull alone
 * would take " -1" and wrap it). No record is ever at the version that means
 * "any" to a command: that one is a conflict. */
static int parse_version(const char *kind, const char *text, uint64_t *out, struct shoal_err *err)
{
	unsigned long long v;
	char *end;

	if (text == NULL)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid %s version '': the version parameter is required", kind);
	errno = 0;
	v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0)
		return shoal_errf(err, SHOAL_EINVAL, "invalid %s version '%.64s': not a number",
				  kind, text);
	if ((uint64_t)v == COMMAND_EXPECT_ANY)
		return shoal_errf(err, SHOAL_ECONFLICT, "update out of sequence");
	*out = v;
	return 0;
}

int api_swarm_update_command(const struct store *st, const char *version_text, bool rotate_worker,
			     bool rotate_manager, json_t *body, int64_t now, struct command *cmd,
			     struct shoal_err *err)
{
	const struct cluster_rec *cur = store_cluster(st);
	struct cluster_rec next;
	char fp[FINGERPRINT_LEN + 1], secret[TOKEN_SECRET_LEN + 1], token[TOKEN_LEN + 1];
	uint64_t version;
	int rv;

	rv = parse_version("swarm", version_text, &version, err);
	if (rv != 0)
		return rv;
	if (version != cur->meta.version)
		return shoal_errf(err, SHOAL_ECONFLICT, "update out of sequence");
	rv = schema_copy(&cluster_schema, &next, cur, err);
	if (rv != 0)
		return rv;
	rv = schema_from_json(&cluster_schema, &next, body, "Spec", "Spec", err);
	if (rv == 0 && (next.spec.name == NULL || strcmp(next.spec.name, "default") != 0))
		rv = shoal_errf(err, SHOAL_EINVAL,
				"invalid Name \"%.64s\": swarm spec must be named \"default\"",
				next.spec.name != NULL ? next.spec.name : "");
	/* Docker's floor is an hour; shoal takes 10 s so renewal can be seen
	 * working (tests/integration/t_cluster.sh). */
	if (rv == 0 && next.spec.ca_config.node_cert_expiry < 10LL * 1000000000)
		rv = shoal_errf(err, SHOAL_EINVAL, "minimum certificate expiry time is 10s");
	if (rv == 0 && join_token_parse(cur->join_tokens.worker, fp, secret, err) != 0)
		rv = shoal_errf(err, SHOAL_EIO, "the stored worker join token is damaged");
	for (int i = 0; rv == 0 && i < 2; i++) {
		char **slot = i == 0 ? &next.join_tokens.worker : &next.join_tokens.manager;
		if (!(i == 0 ? rotate_worker : rotate_manager))
			continue;
		join_token_new(fp, token);
		free(*slot);
		*slot = strdup(token);
		if (*slot == NULL)
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	sodium_memzero(secret, sizeof secret);
	sodium_memzero(token, sizeof token);
	next.meta.updated_at = now;
	if (rv == 0)
		rv = command_put(cmd, RECORD_CLUSTER, version, &next, err);
	schema_free(&cluster_schema, &next);
	return rv;
}

static void h_swarm_update(struct call *c)
{
	const struct store *st = manager_store(c);
	struct command cmd;
	struct shoal_err err;
	char vtext[32];
	int rv;

	if (st == NULL)
		return;
	command_init(&cmd);
	rv = api_swarm_update_command(
	    st, http_query_get(c->req, "version", vtext, sizeof(vtext)) ? vtext : NULL,
	    api_query_bool(c->req, "rotateWorkerToken"),
	    api_query_bool(c->req, "rotateManagerToken"), c->body, clock_now_ns(), &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, reply_empty_when_done, c, &err);
	command_free(&cmd);
	if (rv != 0)
		call_reply_error(c, rv, err.msg);
}

static void h_swarm_leave(struct call *c)
{
	struct shoal_err err;
	int rv;

	rv = swarm_leave(c->api->ctx.swarm, api_query_bool(c->req, "force"), reply_empty_when_done,
			 c, &err);
	if (rv != 0)
		call_reply_error(c, rv, err.msg);
}

/* --- nodes ------------------------------------------------------------------ */

/* Resolve @ref ("self", an id, a unique id prefix or a hostname). Replies and
 * returns NULL if there is no such node. */
static const struct node_rec *find_node(struct call *c, const struct store *st, const char *ref)
{
	const struct node_rec *n = NULL;
	struct shoal_err err;
	int rv;

	if (strcmp(ref, "self") == 0)
		ref = swarm_node_id(c->api->ctx.swarm);
	rv = store_node_find(st, ref, &n, &err);
	if (rv != 0) {
		call_reply_error(c, rv, err.msg);
		return NULL;
	}
	return n;
}

/* The whole query's "filters" value ("" if none) in a new string, or NULL
 * after replying (out of memory). */
static char *query_filters(struct call *c)
{
	/* A decoded value is never longer than the raw query. */
	char *text = malloc(strlen(c->req->query) + 1);

	if (text == NULL) {
		call_reply_error(c, SHOAL_ENOMEM, "out of memory");
		return NULL;
	}
	if (!http_query_get(c->req, "filters", text, strlen(c->req->query) + 1))
		text[0] = '\0';
	return text;
}

/* Answer a read: 200 with @json (taken), or the error @rv. */
static void reply_read(struct call *c, int rv, const struct shoal_err *err, json_t *json)
{
	if (rv != 0)
		call_reply_error(c, rv, err->msg);
	else
		call_reply_json(c, 200, json);
}

/* A list read with the query's filters: @list_fn makes the list. */
typedef int (*list_fn)(struct call *c, const struct store *st, const char *filters, json_t **out,
		       struct shoal_err *err);

static void reply_list(struct call *c, list_fn fn)
{
	const struct store *st = manager_store(c);
	struct shoal_err err;
	json_t *list = NULL;
	char *text;
	int rv;

	if (st == NULL || (text = query_filters(c)) == NULL)
		return; /* answered, and @c is gone */
	rv = fn(c, st, text, &list, &err);
	free(text);
	reply_read(c, rv, &err, list);
}

static void h_node_inspect(struct call *c)
{
	const struct store *st = manager_store(c);
	const struct node_rec *n;

	if (st == NULL)
		return;
	n = find_node(c, st, c->param);
	if (n != NULL)
		call_reply_json(c, 200, api_json_node(&c->api->ctx, n));
}

static int nodes_list(struct call *c, const struct store *st, const char *filters, json_t **out,
		      struct shoal_err *err)
{
	struct api_node_filter filter;

	if (api_node_filter_parse(&filter, filters, err) != 0)
		return SHOAL_EINVAL;
	*out = json_array();
	for (size_t i = 0; *out != NULL && i < store_node_count(st); i++) {
		const struct node_rec *n = store_node_at(st, i);
		if (api_node_filter_match(&filter, &c->api->ctx, n))
			json_array_append_new(*out, api_json_node(&c->api->ctx, n));
	}
	api_node_filter_free(&filter);
	return 0;
}

static void h_nodes_list(struct call *c)
{
	reply_list(c, nodes_list);
}

static unsigned count_managers(const struct store *st)
{
	unsigned n = 0;

	for (size_t i = 0; i < store_node_count(st); i++)
		if (store_node_at(st, i)->spec.role == NODE_ROLE_MANAGER)
			n++;
	return n;
}

/* Empty the parts of a NodeSpec a client may leave out (name, labels). */
static void clear_node_spec(struct node_rec *n)
{
	free(n->spec.name);
	n->spec.name = NULL;
	for (size_t i = 0; i < n->spec.labels.n; i++) {
		free(n->spec.labels.items[i].key);
		free(n->spec.labels.items[i].value);
	}
	free(n->spec.labels.items);
	n->spec.labels.items = NULL;
	n->spec.labels.n = 0;
}

int api_node_update_command(const struct store *st, const char *self_id, const char *ref,
			    const char *version_text, json_t *body, int64_t now,
			    struct command *cmd, struct shoal_err *err)
{
	const struct node_rec *cur = NULL;
	struct node_rec next;
	uint64_t version;
	int rv;

	rv = parse_version("node", version_text, &version, err);
	if (rv != 0)
		return rv;
	rv = store_node_find(st, strcmp(ref, "self") == 0 ? self_id : ref, &cur, err);
	if (rv != 0)
		return rv;
	/* Docker's NodeSpec must name a valid role and availability. */
	for (const char *const *k = (const char *const[]){"Role", "Availability", NULL}; *k; k++) {
		json_t *v = json_object_get(body, *k);
		if (v == NULL || (json_is_string(v) && json_string_length(v) == 0))
			return shoal_errf(err, SHOAL_EINVAL, "invalid %s: \"\"", *k);
	}
	rv = schema_copy(&node_schema, &next, cur, err);
	if (rv != 0)
		return rv;
	/* The body replaces the whole spec, as in Docker. */
	clear_node_spec(&next);
	rv = schema_from_json(&node_schema, &next, body, "Spec", "NodeSpec", err);
	if (rv != 0)
		goto out;
	if (cur->spec.role == NODE_ROLE_MANAGER && next.spec.role != NODE_ROLE_MANAGER &&
	    count_managers(st) <= 1) {
		rv = shoal_errf(err, SHOAL_EINVAL,
				"attempting to demote the last manager of the swarm");
		goto out;
	}
	if (next.spec.role == NODE_ROLE_MANAGER && cur->spec.role != NODE_ROLE_MANAGER) {
		/* Promotion: the leader adds the node's Raft server; it learns
		 * its new role from its next heartbeat. */
		if (cur->cluster_addr == NULL) {
			rv = shoal_errf(err, SHOAL_EINVAL, "node %s has no cluster address",
					cur->meta.id);
			goto out;
		}
		if (count_managers(st) >= API_MAX_MANAGERS) {
			rv = shoal_errf(err, SHOAL_EINVAL,
					"the swarm has %d managers already, the most it takes",
					API_MAX_MANAGERS);
			goto out;
		}
		/* Always a fresh Raft id: the node's log from an earlier term
		 * as manager is gone, so it must not come back as that server. */
		next.raft_id = swarm_new_raft_id();
		free(next.manager_status.addr);
		next.manager_status.addr = strdup(cur->cluster_addr);
		if (next.manager_status.addr == NULL) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto out;
		}
	} else if (next.spec.role != NODE_ROLE_MANAGER && cur->spec.role == NODE_ROLE_MANAGER) {
		/* Demotion: the leader removes its Raft server; the node
		 * stops Raft and carries on as a worker. */
		free(next.manager_status.addr);
		next.manager_status.addr = NULL;
	}
	next.meta.updated_at = now;
	rv = command_put(cmd, RECORD_NODES, version, &next, err);
out:
	schema_free(&node_schema, &next);
	return rv;
}

int api_node_remove_command(const struct store *st, const char *self_id, const char *ref,
			    bool force, bool down, struct command *cmd, struct shoal_err *err)
{
	const struct node_rec *n = NULL;
	const struct cluster_rec *c = store_cluster(st);
	struct cluster_rec next;
	unsigned char keys[64];
	int rv;

	rv = store_node_find(st, strcmp(ref, "self") == 0 ? self_id : ref, &n, err);
	if (rv != 0)
		return rv;
	if (n->spec.role == NODE_ROLE_MANAGER)
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "node %s is a cluster manager and is a member of the raft cluster. "
		    "It must be demoted to worker before removal",
		    n->meta.id);
	if (!force && !down)
		return shoal_errf(err, SHOAL_EINVAL, "node %s is not down and can't be removed",
				  n->meta.id);
	rv = command_delete(cmd, RECORD_NODES, n->meta.version, n->meta.id, err);
	if (rv != 0)
		return rv;
	/* A new gossip key, so the removed node reads nothing from now on;
	 * the old one stays as "previous" while the new one spreads. */
	rv = schema_copy(&cluster_schema, &next, c, err);
	if (rv != 0)
		return rv;
	randombytes_buf(keys, 32);
	memcpy(keys + 32, c->gossip_keys.data, c->gossip_keys.len >= 32 ? 32 : 0);
	free(next.gossip_keys.data);
	next.gossip_keys.data = malloc(64);
	if (next.gossip_keys.data == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	} else {
		memcpy(next.gossip_keys.data, keys, c->gossip_keys.len >= 32 ? 64 : 32);
		next.gossip_keys.len = c->gossip_keys.len >= 32 ? 64 : 32;
		rv = command_put(cmd, RECORD_CLUSTER, c->meta.version, &next, err);
	}
	sodium_memzero(keys, sizeof keys);
	schema_free(&cluster_schema, &next);
	return rv;
}

static void h_node_remove(struct call *c)
{
	const struct store *st = manager_store(c);
	const struct node_rec *n;
	struct command cmd;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	n = find_node(c, st, c->param);
	if (n == NULL)
		return;
	command_init(&cmd);
	rv = api_node_remove_command(
	    st, swarm_node_id(c->api->ctx.swarm), n->meta.id, api_query_bool(c->req, "force"),
	    swarm_node_state(c->api->ctx.swarm, n) == NODE_STATE_DOWN, &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, reply_empty_when_done, c, &err);
	command_free(&cmd);
	if (rv != 0)
		call_reply_error(c, rv, err.msg);
}

static void h_node_update(struct call *c)
{
	const struct store *st = manager_store(c);
	struct command cmd;
	struct shoal_err err;
	char vtext[32];
	int rv;

	if (st == NULL)
		return;
	command_init(&cmd);
	rv = api_node_update_command(st, swarm_node_id(c->api->ctx.swarm), c->param,
				     http_query_get(c->req, "version", vtext, sizeof(vtext)) ? vtext
											     : NULL,
				     c->body, clock_now_ns(), &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, reply_empty_when_done, c, &err);
	command_free(&cmd);
	if (rv != 0)
		call_reply_error(c, rv == SHOAL_ENOTLEADER ? SHOAL_EUNAVAIL : rv,
				 rv == SHOAL_ENOTLEADER ? MSG_NO_LEADER : err.msg);
}

/* --- services and tasks ----------------------------------------------------- */

/* A write that could not be proposed: no leader known reads as Docker's. */
static void reply_write_error(struct call *c, int rv, const struct shoal_err *err)
{
	call_reply_error(c, rv == SHOAL_ENOTLEADER ? SHOAL_EUNAVAIL : rv,
			 rv == SHOAL_ENOTLEADER ? MSG_NO_LEADER : err->msg);
}

static void service_created(void *arg, int status, const struct shoal_err *err)
{
	struct call *c = arg;

	if (status != 0) {
		call_reply_error(c, status, err->msg);
		return;
	}
	call_reply_json(c, 201, json_pack("{s:s, s:[]}", "ID", c->new_id, "Warnings"));
}

static void service_updated(void *arg, int status, const struct shoal_err *err)
{
	struct call *c = arg;

	if (status != 0) {
		call_reply_error(c, status, err->msg);
		return;
	}
	call_reply_json(c, 200, json_pack("{s:[]}", "Warnings"));
}

static void h_service_create(struct call *c)
{
	const struct store *st = manager_store(c);
	char id[ID_LEN + 1];
	struct command cmd;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	id_new(id);
	c->new_id = strdup(id);
	if (c->new_id == NULL) {
		call_reply_error(c, SHOAL_ENOMEM, "out of memory");
		return;
	}
	command_init(&cmd);
	rv = api_service_create_command(st, c->body, id, clock_now_ns(), &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, service_created, c, &err);
	command_free(&cmd);
	if (rv != 0)
		reply_write_error(c, rv, &err);
}

static int services_list(struct call *c, const struct store *st, const char *filters, json_t **out,
			 struct shoal_err *err)
{
	return api_services_list(st, filters, api_query_bool(c->req, "status"), out, err);
}

static void h_services_list(struct call *c)
{
	reply_list(c, services_list);
}

static void h_service_inspect(struct call *c)
{
	const struct store *st = manager_store(c);
	const struct service_rec *s = NULL;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	rv = api_service_find(st, c->param, &s, &err);
	reply_read(c, rv, &err, rv == 0 ? api_json_service(st, s, false) : NULL);
}

static void h_service_update(struct call *c)
{
	const struct store *st = manager_store(c);
	char vtext[32], rollback[32];
	struct command cmd;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	if (!http_query_get(c->req, "rollback", rollback, sizeof(rollback)))
		rollback[0] = '\0';
	command_init(&cmd);
	rv = api_service_update_command(
	    st, c->param, http_query_get(c->req, "version", vtext, sizeof(vtext)) ? vtext : NULL,
	    rollback, c->body, clock_now_ns(), &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, service_updated, c, &err);
	command_free(&cmd);
	if (rv != 0)
		reply_write_error(c, rv, &err);
}

/* POST /services/{id}/promote (shoal extension): a write, proposed (and
 * forwarded to the leader) as an update is. */
static void h_service_promote(struct call *c)
{
	const struct store *st = manager_store(c);
	struct command cmd;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	command_init(&cmd);
	rv = api_service_promote_command(st, c->param, clock_now_ns(), &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, service_updated, c, &err);
	command_free(&cmd);
	if (rv != 0)
		reply_write_error(c, rv, &err);
}

static void h_service_remove(struct call *c)
{
	const struct store *st = manager_store(c);
	struct command cmd;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	command_init(&cmd);
	rv = api_service_remove_command(st, c->param, &cmd, &err);
	if (rv == 0)
		rv = swarm_propose(c->api->ctx.swarm, &cmd, reply_empty_when_done, c, &err);
	command_free(&cmd);
	if (rv != 0)
		reply_write_error(c, rv, &err);
}

static int tasks_list(struct call *c, const struct store *st, const char *filters, json_t **out,
		      struct shoal_err *err)
{
	return api_tasks_list(st, swarm_node_id(c->api->ctx.swarm), filters, out, err);
}

static void h_tasks_list(struct call *c)
{
	reply_list(c, tasks_list);
}

static void h_task_inspect(struct call *c)
{
	const struct store *st = manager_store(c);
	const struct task_rec *t = NULL;
	struct shoal_err err;
	int rv;

	if (st == NULL)
		return;
	rv = api_task_find(st, c->param, &t, &err);
	reply_read(c, rv, &err, rv == 0 ? api_json_task(st, t) : NULL);
}

/* GET /services/{id}/logs, GET /tasks/{id}/logs: gathered from the tasks' nodes. */
static void logs_of(struct call *c, bool task)
{
	const struct store *st = manager_store(c);

	if (st == NULL)
		return;
	svc_logs_serve(c->api->ctx.svc_logs, st, c->param, task, c->req, c->res);
	call_free(c);
}

static void h_service_logs(struct call *c)
{
	logs_of(c, false);
}

static void h_task_logs(struct call *c)
{
	logs_of(c, true);
}

/* --- images ---------------------------------------------------------------- */

static void h_images_load(struct call *c)
{
	api_images_load(c->api->ctx.images, c->req, c->res);
	call_free(c);
}

static void h_images_create(struct call *c)
{
	api_images_pull(c->api->ctx.images, c->req, c->res);
	call_free(c);
}

static void h_images_list(struct call *c)
{
	api_images_list(c->api->ctx.images, c->req, c->res);
	call_free(c);
}

static void h_image_delete(struct call *c)
{
	api_images_delete(c->api->ctx.images, c->api->ctx.containers, c->param, c->req, c->res);
	call_free(c);
}

/* --- containers (local to the node) ----------------------------------------- */

/* Each finishes the response now or from the runtime's callback: the call
 * itself is not needed after that, so it is freed at once. */
static void h_ctr_create(struct call *c)
{
	api_containers_create(c->api->ctx.containers, c->body, c->req, c->res);
	call_free(c);
}

static void h_ctr_list(struct call *c)
{
	api_containers_list(c->api->ctx.containers, c->req, c->res);
	call_free(c);
}

#define CTR_HANDLER(name, fn)                                         \
	static void name(struct call *c)                              \
	{                                                             \
		fn(c->api->ctx.containers, c->param, c->req, c->res); \
		call_free(c);                                         \
	}
CTR_HANDLER(h_ctr_inspect, api_containers_inspect)
CTR_HANDLER(h_ctr_start, api_containers_start)
CTR_HANDLER(h_ctr_stop, api_containers_stop)
CTR_HANDLER(h_ctr_restart, api_containers_restart)
CTR_HANDLER(h_ctr_kill, api_containers_kill)
CTR_HANDLER(h_ctr_wait, api_containers_wait)
CTR_HANDLER(h_ctr_remove, api_containers_remove)
CTR_HANDLER(h_ctr_logs, api_containers_logs)
#undef CTR_HANDLER

/* --- routing ---------------------------------------------------------------- */

static const struct route routes[] = {
    {"GET", "/_ping", h_ping, false, false},
    {"GET", "/version", h_version, false, false},
    {"GET", "/info", h_info, false, false},
    {"GET", "/swarm", h_swarm_inspect, false, true},
    {"POST", "/swarm/init", h_swarm_init, true, false},
    {"POST", "/swarm/leave", h_swarm_leave, false, false},
    {"POST", "/swarm/join", h_swarm_join, true, false},
    {"POST", "/swarm/update", h_swarm_update, true, true},
    {"DELETE", "/nodes/*", h_node_remove, false, true},
    {"GET", "/nodes", h_nodes_list, false, true},
    {"GET", "/nodes/*", h_node_inspect, false, true},
    {"POST", "/nodes/*/update", h_node_update, true, true},
    {"POST", "/services/create", h_service_create, true, true},
    {"GET", "/services", h_services_list, false, true},
    {"GET", "/services/*", h_service_inspect, false, true},
    {"POST", "/services/*/update", h_service_update, true, true},
    {"POST", "/services/*/promote", h_service_promote, false, true},
    {"DELETE", "/services/*", h_service_remove, false, true},
    {"GET", "/tasks", h_tasks_list, false, true},
    {"GET", "/tasks/*", h_task_inspect, false, true},
    {"GET", "/services/*/logs", h_service_logs, false, true},
    {"GET", "/tasks/*/logs", h_task_logs, false, true},
    {"POST", "/images/load", h_images_load, false, false},
    {"POST", "/images/create", h_images_create, false, false},
    {"GET", "/images/json", h_images_list, false, false},
    {"DELETE", "/images/**", h_image_delete, false, false},
    {"POST", "/containers/create", h_ctr_create, true, false},
    {"GET", "/containers/json", h_ctr_list, false, false},
    {"GET", "/containers/*/json", h_ctr_inspect, false, false},
    {"POST", "/containers/*/start", h_ctr_start, false, false},
    {"POST", "/containers/*/stop", h_ctr_stop, false, false},
    {"POST", "/containers/*/restart", h_ctr_restart, false, false},
    {"POST", "/containers/*/kill", h_ctr_kill, false, false},
    {"POST", "/containers/*/wait", h_ctr_wait, false, false},
    {"GET", "/containers/*/logs", h_ctr_logs, false, false},
    {"DELETE", "/containers/*", h_ctr_remove, false, false},
};

static void run_synced(void *arg)
{
	struct call *c = arg;

	c->fn(c);
}

/* Match @path against @pattern; on a match with a "*", *@param gets a copy. */
static bool route_match(const char *pattern, const char *path, char **param)
{
	const char *p = pattern, *q = path;

	*param = NULL;
	while (*p != '\0') {
		if (p[0] == '*' && p[1] == '*' && p[2] == '\0') {
			/* "**" at the end: the rest of the path, slashes included
			 * (image names such as "user/app:v1"). */
			if (*q == '\0')
				goto no;
			*param = strdup(q);
			return *param != NULL;
		}
		if (*p == '*') {
			const char *seg_end = strchr(q, '/');
			size_t n = seg_end != NULL ? (size_t)(seg_end - q) : strlen(q);
			if (n == 0)
				goto no;
			free(*param);
			*param = strndup(q, n);
			p++;
			q += n;
			continue;
		}
		if (*p != *q)
			goto no;
		p++;
		q++;
	}
	if (*q == '\0')
		return true;
no:
	free(*param);
	*param = NULL;
	return false;
}

/* Parse "1.41" into a comparable number (major * 1000 + minor). Returns -1 if
 * malformed or if either part has more than three digits. */
static long version_number(const char *s, size_t n)
{
	long part[2] = {0, 0};
	size_t i = 0;

	for (int k = 0; k < 2; k++) {
		size_t digits = 0;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			if (++digits > 3)
				return -1;
			part[k] = part[k] * 10 + (s[i] - '0');
		}
		if (digits == 0)
			return -1;
		if (k == 0 && i < n && s[i] == '.')
			i++;
		else
			break;
	}
	return i == n ? part[0] * 1000 + part[1] : -1;
}

bool api_body_to_file(const char *method, const char *path)
{
	const char *slash;

	if (strcmp(method, "POST") != 0)
		return false;
	if (strncmp(path, "/v", 2) == 0 && path[2] >= '0' && path[2] <= '9' &&
	    (slash = strchr(path + 1, '/')) != NULL &&
	    version_number(path + 2, (size_t)(slash - (path + 2))) >= 0)
		path = slash;
	return strcmp(path, "/images/load") == 0;
}

/* Strip a "/vX.Y" prefix. Returns the rest of the path, or NULL after replying. */
static const char *strip_version(struct call *c, const char *path)
{
	const char *slash;
	long v;

	if (strncmp(path, "/v", 2) != 0 || path[2] < '0' || path[2] > '9')
		return path;
	slash = strchr(path + 1, '/');
	if (slash == NULL)
		return path;
	v = version_number(path + 2, (size_t)(slash - (path + 2)));
	if (v < 0)
		return path; /* not a version: route it as it is (and 404) */
	if (v > version_number(API_VERSION, strlen(API_VERSION))) {
		call_reply_errorf(
		    c, SHOAL_EINVAL,
		    "client version %.*s is too new. Maximum supported API version is "
		    "%s",
		    (int)(slash - (path + 2)), path + 2, API_VERSION);
		return NULL;
	}
	if (v < version_number(API_MIN_VERSION, strlen(API_MIN_VERSION))) {
		call_reply_errorf(
		    c, SHOAL_EINVAL,
		    "client version %.*s is too old. Minimum supported API version is "
		    "%s, please upgrade your client to a newer version",
		    (int)(slash - (path + 2)), path + 2, API_MIN_VERSION);
		return NULL;
	}
	return slash;
}

static int parse_body(struct call *c)
{
	const char *ctype = http_request_header(c->req, "Content-Type");
	json_error_t jerr;

	if (c->req->body_len == 0) {
		c->body = json_object();
		return c->body != NULL ? 0 : -1;
	}
	/* Docker: a body must be declared JSON. */
	if (ctype == NULL || strncmp(ctype, "application/json", 16) != 0) {
		call_reply_errorf(
		    c, SHOAL_EINVAL,
		    "unsupported Content-Type header (%s): must be 'application/json'",
		    ctype != NULL ? ctype : "");
		return -1;
	}
	c->body = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (c->body == NULL) {
		call_reply_errorf(c, SHOAL_EINVAL, "invalid JSON at line %d, column %d: %s",
				  jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(c->body)) {
		call_reply_errorf(c, SHOAL_EINVAL,
				  "json: cannot unmarshal %s into Go value of type object",
				  schema_json_kind(c->body));
		return -1;
	}
	return 0;
}

void api_handle(void *arg, struct http_request *req, struct http_response *res)
{
	struct api *api = arg;
	struct call *c = calloc(1, sizeof *c);
	const char *path, *method;

	if (c == NULL) {
		static const char oom[] = "{\"message\":\"out of memory\"}\n";
		http_respond(res, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	c->api = api;
	c->req = req;
	c->res = res;
	log_debug("api", "%s %s", req->method, req->path);
	path = strip_version(c, req->path);
	if (path == NULL)
		return;
	method = req->head ? "GET" : req->method;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		char *param;
		if (!route_match(routes[i].pattern, path, &param))
			continue;
		if (strcmp(routes[i].method, method) != 0) {
			free(param);
			continue;
		}
		c->param = param;
		if (routes[i].json_body && parse_body(c) != 0)
			return;
		if (routes[i].sync) {
			c->fn = routes[i].fn;
			swarm_sync(c->api->ctx.swarm, run_synced, c);
			return;
		}
		routes[i].fn(c);
		return;
	}
	/* Docker's router answers a known path with another method as it
	 * answers an unknown one. */
	api_reply_status(c->req, c->res, 404, "page not found");
	call_free(c);
}

int api_new(struct api **out, const struct api_context *ctx, struct shoal_err *err)
{
	struct api *api = calloc(1, sizeof *api);

	if (api == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	api->ctx = *ctx;
	*out = api;
	return 0;
}

void api_free(struct api *api)
{
	if (api != NULL)
		api_containers_close(api->ctx.containers);
	free(api);
}
