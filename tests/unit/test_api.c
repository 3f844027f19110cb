/* Unit tests of node/api: routing, version prefixes, Docker's errors and JSON
 * checks, driven through the HTTP core with byte buffers and a swarm that is
 * not initialised (the swarm paths with Raft are integration tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "node/api.h"
#include "node/api_json.h"
#include "node/http.h"
#include "node/swarm.h"

struct fixture {
	uv_loop_t loop;
	char dir[64];
	struct swarm *swarm;
	struct api *api;
	struct buf out;
};

static int out_write(void *arg, const void *data, size_t len)
{
	return buf_append(arg, data, len);
}

static void out_close(void *arg)
{
	(void)arg;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct swarm_config scfg = {0};
	struct api_context actx = {0};
	struct shoal_err err;

	uv_loop_init(&f->loop);
	snprintf(f->dir, sizeof(f->dir), "/tmp/shoal-test-api.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	scfg.state_dir = f->dir;
	scfg.hostname = "unit";
	if (swarm_open(&f->swarm, &f->loop, &scfg, &err) != 0)
		return -1;
	actx.swarm = f->swarm;
	actx.hostname = "unit";
	actx.state_dir = f->dir;
	actx.runtime = "runc";
	if (api_new(&f->api, &actx, &err) != 0)
		return -1;
	buf_init(&f->out);
	*state = f;
	return 0;
}

static void swarm_closed(void *arg)
{
	(void)arg;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	api_free(f->api);
	swarm_close(f->swarm, swarm_closed, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_loop_close(&f->loop);
	fs_rm_rf(f->dir, NULL);
	buf_free(&f->out);
	free(f);
	return 0;
}

/* Send one raw request; return the status and the body (a pointer into f->out). */
static int request(struct fixture *f, const char *raw, const char **body)
{
	struct http_transport t = {.arg = &f->out, .write = out_write, .close = out_close};
	struct http_conn *c = http_conn_new(NULL, &t, api_handle, f->api);
	int status = 0;

	f->out.len = 0;
	http_conn_feed(c, raw, strlen(raw));
	http_conn_eof(c);
	http_conn_free(c);
	assert_non_null(f->out.data);
	assert_int_equal(sscanf(f->out.data, "HTTP/1.1 %d", &status), 1);
	const char *sep = strstr(f->out.data, "\r\n\r\n");
	assert_non_null(sep);
	*body = sep + 4;
	return status;
}

static json_t *json_body(const char *body)
{
	json_error_t jerr;
	json_t *o = json_loads(body, 0, &jerr);

	if (o == NULL)
		fail_msg("not JSON: %s (%s)", body, jerr.text);
	return o;
}

static const char *message(json_t *o)
{
	return json_string_value(json_object_get(o, "message"));
}

static void version_prefixes(void **state)
{
	struct fixture *f = *state;
	const char *body;
	json_t *o;

	assert_int_equal(request(f, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 200);
	assert_int_equal(request(f, "GET /v1.41/version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 200);
	o = json_body(body);
	assert_string_equal(json_string_value(json_object_get(o, "ApiVersion")), "1.41");
	assert_string_equal(json_string_value(json_object_get(o, "MinAPIVersion")), "1.24");
	json_decref(o);
	assert_int_equal(request(f, "GET /v1.30/version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 200);
	assert_int_equal(request(f, "GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 400);

	assert_int_equal(request(f, "GET /v1.42/version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 400);
	o = json_body(body);
	assert_string_equal(
	    message(o), "client version 1.42 is too new. Maximum supported API version is 1.41");
	json_decref(o);
	assert_int_equal(request(f, "GET /v1.23/version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 400);
	o = json_body(body);
	assert_non_null(strstr(message(o), "client version 1.23 is too old"));
	json_decref(o);
	/* Not a version: routed as it is, and unknown. */
	assert_int_equal(request(f, "GET /v1.x/version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 404);
}

static void unknown_paths_and_methods(void **state)
{
	struct fixture *f = *state;
	const char *body;
	json_t *o;

	assert_int_equal(request(f, "GET /plugins HTTP/1.1\r\nHost: x\r\n\r\n", &body), 404);
	o = json_body(body);
	assert_string_equal(message(o), "page not found");
	json_decref(o);
	/* A known path with another method: Docker's router answers 404 too. */
	assert_int_equal(request(f, "POST /version HTTP/1.1\r\nHost: x\r\n\r\n", &body), 404);
	o = json_body(body);
	assert_string_equal(message(o), "page not found");
	json_decref(o);
	assert_int_equal(request(f, "GET /nodes/ HTTP/1.1\r\nHost: x\r\n\r\n", &body), 404);
	assert_int_equal(request(f, "GET /nodes/a/b HTTP/1.1\r\nHost: x\r\n\r\n", &body), 404);
}

static void ping_speaks_docker(void **state)
{
	struct fixture *f = *state;
	const char *body;

	assert_int_equal(request(f, "HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n", &body), 200);
	assert_string_equal(body, "");
	assert_non_null(strstr(f->out.data, "\r\nSwarm: inactive\r\n"));
	assert_non_null(strstr(f->out.data, "\r\nApi-Version: 1.41\r\n"));
	assert_int_equal(request(f, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n", &body), 200);
	assert_string_equal(body, "OK");
}

static void info_of_an_inactive_node(void **state)
{
	struct fixture *f = *state;
	const char *body;
	json_t *o, *swarm;

	assert_int_equal(request(f, "GET /info HTTP/1.1\r\nHost: x\r\n\r\n", &body), 200);
	o = json_body(body);
	swarm = json_object_get(o, "Swarm");
	assert_string_equal(json_string_value(json_object_get(swarm, "LocalNodeState")),
			    "inactive");
	assert_false(json_is_true(json_object_get(swarm, "ControlAvailable")));
	assert_null(json_object_get(swarm, "Cluster"));
	assert_string_equal(json_string_value(json_object_get(o, "Name")), "unit");
	assert_string_equal(json_string_value(json_object_get(o, "DefaultRuntime")), "runc");
	assert_string_equal(json_string_value(json_object_get(o, "ServerVersion")), "0.1.0");
	json_decref(o);
}

static void manager_paths_outside_a_swarm(void **state)
{
	struct fixture *f = *state;
	static const char *const paths[] = {
	    "GET /swarm HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /nodes HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /v1.41/nodes/self HTTP/1.1\r\nHost: x\r\n\r\n",
	    "POST /nodes/abc/update?version=1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\n\r\n{}",
	};
	const char *body;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(request(f, paths[i], &body), 503);
		json_t *o = json_body(body);
		assert_string_equal(
		    message(o), "This node is not a swarm manager. Use \"docker swarm init\" or "
				"\"docker swarm join\" to connect this node to swarm and try "
				"again.");
		json_decref(o);
	}
	assert_int_equal(request(f, "POST /swarm/leave HTTP/1.1\r\nHost: x\r\n\r\n", &body), 503);
	json_t *o = json_body(body);
	assert_string_equal(message(o), "This node is not part of a swarm");
	json_decref(o);
}

static void post(struct fixture *f, const char *path, const char *ctype, const char *json,
		 int want_status, const char *want_in_message)
{
	char raw[2048];
	const char *body;

	snprintf(raw, sizeof(raw),
		 "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
		 path, ctype, strlen(json), json);
	assert_int_equal(request(f, raw, &body), want_status);
	json_t *o = json_body(body);
	if (strstr(message(o), want_in_message) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", message(o), want_in_message);
	json_decref(o);
}

static void swarm_init_bad_bodies(void **state)
{
	struct fixture *f = *state;

	post(f, "/swarm/init", "application/json", "{\"ListenAddr\": ", 400, "invalid JSON");
	post(f, "/swarm/init", "application/json", "[1, 2]", 400,
	     "json: cannot unmarshal array into Go value of type object");
	post(f, "/swarm/init", "application/json", "{\"ListenAddr\": 7}", 400,
	     "json: cannot unmarshal number into Go struct field InitRequest.ListenAddr of type "
	     "string");
	post(f, "/swarm/init", "application/json", "{\"ForceNewCluster\": \"yes\"}", 400,
	     "InitRequest.ForceNewCluster of type bool");
	post(f, "/swarm/init", "text/plain", "{}", 400,
	     "unsupported Content-Type header (text/plain): must be 'application/json'");
	post(f, "/swarm/init", "application/json", "{\"ListenAddr\": \"1.2.3.4:0\"}", 400,
	     "invalid port");
	post(f, "/swarm/init", "application/json", "{\"AdvertiseAddr\": \"no-such-if0\"}", 400,
	     "invalid advertise address");
	post(f, "/swarm/init", "application/json", "{\"ListenAddr\": \"127.0.0.1:99999\"}", 400,
	     "invalid port");
	post(f, "/swarm/init", "application/json", "{\"AdvertiseAddr\": \"0.0.0.0\"}", 400,
	     "advertise address must be a non-zero IP address");
	/* None of that touched the node. */
	assert_int_equal(swarm_state(f->swarm), SWARM_INACTIVE);
	char path[128];
	snprintf(path, sizeof(path), "%s/swarm", f->dir);
	assert_false(fs_exists(path));
}

static void status_mapping(void **state)
{
	(void)state;
	assert_int_equal(api_status_for(SHOAL_EINVAL), 400);
	assert_int_equal(api_status_for(SHOAL_EPROTO), 400);
	assert_int_equal(api_status_for(SHOAL_ENOTFOUND), 404);
	assert_int_equal(api_status_for(SHOAL_ECONFLICT), 409);
	assert_int_equal(api_status_for(SHOAL_ETOOBIG), 413);
	assert_int_equal(api_status_for(SHOAL_ESTATE), 503);
	assert_int_equal(api_status_for(SHOAL_ENOTLEADER), 503);
	assert_int_equal(api_status_for(SHOAL_EIO), 500);
}

static void node_filters(void **state)
{
	struct fixture *f = *state;
	struct api_node_filter flt;
	struct api_context ctx = {.swarm = f->swarm};
	struct node_rec n;
	struct shoal_err err;

	assert_int_equal(node_rec_defaults(&n, &err), 0);
	n.meta.id = strdup("abcdef0123456789abcdef012");
	n.description.hostname = strdup("host-a");
	n.spec.role = NODE_ROLE_MANAGER;
	assert_int_equal(schema_map_set(&n.spec.labels, "zone", "eu", &err), 0);

	assert_int_equal(api_node_filter_parse(&flt, "", &err), 0);
	assert_true(api_node_filter_match(&flt, &ctx, &n));
	api_node_filter_free(&flt);

	assert_int_equal(api_node_filter_parse(&flt, "{\"role\":{\"manager\":true}}", &err), 0);
	assert_true(api_node_filter_match(&flt, &ctx, &n));
	api_node_filter_free(&flt);
	assert_int_equal(api_node_filter_parse(&flt, "{\"role\":[\"worker\"]}", &err), 0);
	assert_false(api_node_filter_match(&flt, &ctx, &n));
	api_node_filter_free(&flt);
	assert_int_equal(
	    api_node_filter_parse(&flt, "{\"id\":{\"abc\":true},\"name\":{\"host\":true}}", &err),
	    0);
	assert_true(api_node_filter_match(&flt, &ctx, &n));
	api_node_filter_free(&flt);
	assert_int_equal(api_node_filter_parse(&flt, "{\"node.label\":{\"zone=eu\":true}}", &err),
			 0);
	assert_true(api_node_filter_match(&flt, &ctx, &n));
	api_node_filter_free(&flt);
	assert_int_equal(api_node_filter_parse(&flt, "{\"node.label\":{\"zone=us\":true}}", &err),
			 0);
	assert_false(api_node_filter_match(&flt, &ctx, &n));
	api_node_filter_free(&flt);

	assert_int_equal(api_node_filter_parse(&flt, "{\"colour\":{\"red\":true}}", &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "invalid filter 'colour'");
	assert_int_equal(api_node_filter_parse(&flt, "not json", &err), SHOAL_EINVAL);
	node_rec_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(version_prefixes),
	    cmocka_unit_test(unknown_paths_and_methods),
	    cmocka_unit_test(ping_speaks_docker),
	    cmocka_unit_test(info_of_an_inactive_node),
	    cmocka_unit_test(manager_paths_outside_a_swarm),
	    cmocka_unit_test(swarm_init_bad_bodies),
	    cmocka_unit_test(status_mapping),
	    cmocka_unit_test(node_filters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
