/* Unit tests of node/api_services: ServiceSpec validation with Docker's
 * messages, create/update/remove commands applied to a real store, lookups,
 * filters, the JSON Docker shows; and the routes outside a swarm. */
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
#include "node/api_services.h"
#include "node/command.h"
#include "node/http.h"
#include "node/records_svc.h"
#include "node/store.h"
#include "node/swarm.h"
#include "raft/fsm.h"

#define NOW 1700000000000000000LL

struct fx {
	struct store *s;
	uint64_t index;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(store_new(&f->s, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->s);
	free(f);
	return 0;
}

/* Encode @cmd, free it and apply it; returns the store's result code. */
static int apply(struct fx *f, struct command *cmd)
{
	struct consensus_fsm fsm;
	void *buf, *result;
	size_t len;

	assert_int_equal(command_encode(cmd, &buf, &len, NULL), 0);
	command_free(cmd);
	store_fsm(f->s, &fsm);
	assert_int_equal(fsm.apply(fsm.arg, ++f->index, buf, len, &result), 0);
	free(buf);
	return store_result_code(result);
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *o = json_loads(text, 0, &jerr);

	if (o == NULL)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return o;
}

/* Create a service from @body with id @id; returns the API's code, and on
 * success applies the command. @msg gets the error. */
static int create(struct fx *f, const char *id, const char *body, struct shoal_err *err)
{
	struct command cmd;
	json_t *j = parse(body);
	int rv;

	command_init(&cmd);
	rv = api_service_create_command(f->s, j, id, NOW, &cmd, err);
	json_decref(j);
	if (rv != 0) {
		assert_int_equal(cmd.n_ops, 0);
		command_free(&cmd);
		return rv;
	}
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(apply(f, &cmd), 0);
	return 0;
}

static void expect_create_error(struct fx *f, const char *body, int code, const char *msg)
{
	struct shoal_err err;
	size_t before = store_count(f->s, RECORD_SERVICES);

	assert_int_equal(create(f, "zzz", body, &err), code);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("body %s: got \"%s\", want \"%s\"", body, err.msg, msg);
	assert_int_equal(store_count(f->s, RECORD_SERVICES), before);
}

#define IMG "\"TaskTemplate\": {\"ContainerSpec\": {\"Image\": \"busybox:latest\"}}"

static const struct service_rec *svc(struct fx *f, const char *id)
{
	const struct service_rec *s = store_get(f->s, RECORD_SERVICES, id);

	assert_non_null(s);
	return s;
}

static void create_reads_spec_with_defaults(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	const struct service_rec *s;

	assert_int_equal(create(f, "aaa111",
				"{\"Name\": \"web\", \"Labels\": {\"tier\": \"front\"}, " IMG
				", \"Mode\": {\"Replicated\": {\"Replicas\": 3}}}",
				&err),
			 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->spec.name, "web");
	assert_int_equal(s->spec.mode, SVC_MODE_REPLICATED);
	assert_int_equal(s->spec.replicas, 3);
	assert_string_equal(s->spec.task_template.container_spec.image, "busybox:latest");
	assert_string_equal(s->spec.task_template.restart_policy.condition, "any");
	assert_int_equal(s->spec.task_template.restart_policy.delay, 5000000000LL);
	assert_int_equal(s->spec.update_config.parallelism, 1);
	assert_string_equal(s->spec.update_config.order, "stop-first");
	assert_false(s->has_previous_spec);
	assert_int_equal(s->meta.created_at, NOW);

	assert_int_equal(
	    create(f, "bbb222", "{\"Name\": \"all\", " IMG ", \"Mode\": {\"Global\": {}}}", &err),
	    0);
	assert_int_equal(svc(f, "bbb222")->spec.mode, SVC_MODE_GLOBAL);
	/* No Mode: one replica, as Docker. */
	assert_int_equal(create(f, "ccc333", "{\"Name\": \"one\", " IMG "}", &err), 0);
	assert_int_equal(svc(f, "ccc333")->spec.replicas, 1);
}

static void create_names_a_nameless_service(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	const char *name;

	assert_int_equal(create(f, "ddd444", "{" IMG "}", &err), 0);
	name = svc(f, "ddd444")->spec.name;
	assert_non_null(name);
	assert_non_null(strchr(name, '_'));
	for (const char *p = name; *p != '\0'; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
}

static void create_refuses_bad_specs(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;

	expect_create_error(f, "{\"Name\": \"web\"}", SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = ContainerSpec: image "
			    "reference must be provided");
	expect_create_error(f,
			    "{\"Name\": \"web\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": "
			    "\"Bad Image\"}}}",
			    SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = ContainerSpec: \"Bad Image\" "
			    "is not a valid repository/tag");
	expect_create_error(f,
			    "{\"Name\": \"web\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": "
			    "\"busybox\"}, \"Placement\": {\"Constraints\": [\"node.role\"]}}}",
			    SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = constraint expected one "
			    "operator from ==, !=");
	expect_create_error(f,
			    "{\"Name\": \"web\", " IMG
			    ", \"Mode\": {\"Global\": {}, \"Replicated\": {\"Replicas\": 2}}}",
			    SHOAL_EINVAL, "must specify only one service mode");
	expect_create_error(
	    f, "{\"Name\": \"web\", " IMG ", \"Mode\": {\"Replicated\": {\"Replicas\": -1}}}",
	    SHOAL_EINVAL,
	    "json: cannot unmarshal number -1 into Go struct field "
	    "ReplicatedService.Mode.Replicated.Replicas of type uint64");
	expect_create_error(f, "{\"Name\": \"web.1\", " IMG "}", SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = name must be valid as a DNS "
			    "name component");
	expect_create_error(f, "{\"Name\": \"web-\", " IMG "}", SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = name must be valid as a DNS "
			    "name component");
	expect_create_error(
	    f,
	    "{\"Name\": "
	    "\"a234567890123456789012345678901234567890123456789012345678901234\", " IMG "}",
	    SHOAL_EINVAL,
	    "rpc error: code = InvalidArgument desc = name must be 63 characters "
	    "or fewer");
	expect_create_error(
	    f,
	    "{\"Name\": \"web\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": "
	    "\"busybox\"}, \"Resources\": {\"Limits\": {\"NanoCPUs\": 10}}}}",
	    SHOAL_EINVAL,
	    "rpc error: code = InvalidArgument desc = invalid cpu value 1e-08: Must "
	    "be at least 0.001");
	expect_create_error(f,
			    "{\"Name\": \"web\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": "
			    "\"busybox\"}, \"RestartPolicy\": {\"Delay\": -1}}}",
			    SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = TaskSpec: restart-delay "
			    "cannot be negative");
	expect_create_error(
	    f, "{\"Name\": \"web\", " IMG ", \"UpdateConfig\": {\"MaxFailureRatio\": 2}}",
	    SHOAL_EINVAL,
	    "rpc error: code = InvalidArgument desc = TaskSpec: "
	    "update-maxfailureratio cannot be less than 0 or bigger than 1");
	expect_create_error(f, "{\"Name\": 7, " IMG "}", SHOAL_EINVAL,
			    "json: cannot unmarshal number into Go struct field ServiceSpec.Name "
			    "of type string");
	expect_create_error(f, "{\"Name\": \"web\", " IMG ", \"Mode\": {\"ReplicatedJob\": {}}}",
			    SHOAL_EINVAL,
			    "shoal does not run jobs: the ReplicatedJob mode is not supported");
	expect_create_error(f,
			    "{\"Name\": \"web\", " IMG
			    ", \"EndpointSpec\": {\"Ports\": [{\"TargetPort\": 80, "
			    "\"PublishedPort\": 8080}, {\"TargetPort\": 81, \"PublishedPort\": "
			    "8080}]}}",
			    SHOAL_EINVAL,
			    "rpc error: code = InvalidArgument desc = EndpointSpec: duplicate "
			    "published ports provided");

	/* Names are unique, compared without case; ports too, across services. */
	assert_int_equal(create(f, "eee555",
				"{\"Name\": \"web\", " IMG
				", \"EndpointSpec\": {\"Ports\": [{\"TargetPort\": 80, "
				"\"PublishedPort\": 8080}]}}",
				&err),
			 0);
	expect_create_error(f, "{\"Name\": \"WEB\", " IMG "}", SHOAL_ECONFLICT,
			    "rpc error: code = AlreadyExists desc = name conflicts with an "
			    "existing object: service WEB already exists");
	expect_create_error(
	    f,
	    "{\"Name\": \"api\", " IMG ", \"EndpointSpec\": {\"Ports\": [{\"TargetPort\": 90, "
	    "\"PublishedPort\": 8080}]}}",
	    SHOAL_EINVAL,
	    "rpc error: code = InvalidArgument desc = port '8080' is already in use "
	    "by service 'web' (eee555) as an ingress port");
}

static int update(struct fx *f, const char *ref, const char *version, const char *rollback,
		  const char *body, struct shoal_err *err)
{
	struct command cmd;
	json_t *j = parse(body);
	int rv;

	command_init(&cmd);
	rv = api_service_update_command(f->s, ref, version, rollback, j, NOW + 1, &cmd, err);
	json_decref(j);
	if (rv != 0) {
		assert_int_equal(cmd.n_ops, 0);
		command_free(&cmd);
		return rv;
	}
	return apply(f, &cmd);
}

static void update_replaces_spec_and_keeps_previous(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	char v[32];
	const struct service_rec *s;

	assert_int_equal(create(f, "aaa111", "{\"Name\": \"web\", " IMG "}", &err), 0);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)svc(f, "aaa111")->meta.version);

	assert_int_equal(update(f, "web", "999", NULL, "{\"Name\": \"web\", " IMG "}", &err),
			 SHOAL_ECONFLICT);
	assert_string_equal(err.msg, "update out of sequence");
	assert_int_equal(update(f, "web", "x1", NULL, "{}", &err), SHOAL_EINVAL);
	assert_int_equal(update(f, "web", NULL, NULL, "{}", &err), SHOAL_EINVAL);
	assert_int_equal(update(f, "nope", v, NULL, "{}", &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "service nope not found");
	assert_int_equal(update(f, "web", v, NULL, "{\"Name\": \"web2\", " IMG "}", &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "rpc error: code = Unimplemented desc = renaming services is "
				     "not supported");
	assert_int_equal(update(f, "web", v, NULL,
				"{\"Name\": \"web\", " IMG ", \"Mode\": {\"Global\": {}}}", &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "rpc error: code = Unimplemented desc = service mode change "
				     "is not allowed");
	assert_int_equal(update(f, "web", v, "previous", "{}", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "rpc error: code = FailedPrecondition desc = service aaa111 "
				     "does not have a previous spec");
	assert_int_equal(update(f, "web", v, "sideways", "{}", &err), SHOAL_EINVAL);
	assert_int_equal(svc(f, "aaa111")->meta.version, strtoull(v, NULL, 10));

	assert_int_equal(update(f, "aaa", v, NULL,
				"{\"Name\": \"web\", \"TaskTemplate\": {\"ContainerSpec\": "
				"{\"Image\": \"busybox:1.36\"}}, \"Mode\": {\"Replicated\": "
				"{\"Replicas\": 4}}}",
				&err),
			 0);
	s = svc(f, "aaa111");
	assert_true(s->has_previous_spec);
	assert_string_equal(s->spec.task_template.container_spec.image, "busybox:1.36");
	assert_int_equal(s->spec.replicas, 4);
	assert_string_equal(s->previous_spec.task_template.container_spec.image, "busybox:latest");
	assert_int_equal(s->previous_spec.replicas, 1);
	assert_int_equal(s->meta.created_at, NOW);
	assert_int_equal(s->meta.updated_at, NOW + 1);

	/* Docker's server-side rollback swaps the two. */
	snprintf(v, sizeof(v), "%llu", (unsigned long long)s->meta.version);
	assert_int_equal(update(f, "web", v, "previous", "{\"ignored\": 1}", &err), 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->spec.task_template.container_spec.image, "busybox:latest");
	assert_string_equal(s->previous_spec.task_template.container_spec.image, "busybox:1.36");
	assert_string_equal(s->update_status.state, "rollback_started");
}

/* --- blue/green: validation, rollback, promote --------------------------------------------- */

#define BG "\"UpdateStrategy\": \"blue-green\""

static void create_checks_bluegreen(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	const struct service_rec *s;
	char v[32];

	expect_create_error(
	    f, "{\"Name\": \"web\", " IMG ", " BG ", \"BlueGreen\": {\"Promote\": \"later\"}}",
	    SHOAL_EINVAL, "invalid BlueGreen.Promote \"later\" (want auto or manual)");
	expect_create_error(f,
			    "{\"Name\": \"web\", " IMG ", " BG
			    ", \"BlueGreen\": {\"Promote\": \"manual\", \"Grace\": -1}}",
			    SHOAL_EINVAL, "BlueGreen.Grace cannot be negative");
	expect_create_error(f, "{\"Name\": \"web\", " IMG ", " BG ", \"Mode\": {\"Global\": {}}}",
			    SHOAL_EINVAL, "blue-green deployments need a replicated service");
	/* A global service may carry BlueGreen settings it does not use. */
	assert_int_equal(create(f, "ggg777",
				"{\"Name\": \"all\", " IMG
				", \"Mode\": {\"Global\": {}}, \"BlueGreen\": {\"Promote\": "
				"\"auto\"}}",
				&err),
			 0);

	assert_int_equal(create(f, "aaa111",
				"{\"Name\": \"web\", " IMG ", " BG
				", \"BlueGreen\": {\"Promote\": \"manual\", \"Grace\": "
				"30000000000}}",
				&err),
			 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->spec.update_strategy, "blue-green");
	assert_string_equal(s->spec.bluegreen.promote, "manual");
	assert_int_equal(s->spec.bluegreen.grace, 30000000000LL);

	/* An update is checked the same way and changes nothing when refused. */
	snprintf(v, sizeof(v), "%llu", (unsigned long long)s->meta.version);
	assert_int_equal(update(f, "web", v, NULL,
				"{\"Name\": \"web\", " IMG ", " BG
				", \"BlueGreen\": {\"Promote\": \"Manual\"}}",
				&err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "invalid BlueGreen.Promote \"Manual\" (want auto or manual)");
	assert_int_equal(svc(f, "aaa111")->meta.version, strtoull(v, NULL, 10));
	assert_false(svc(f, "aaa111")->has_previous_spec);
}

/* Write @id's Deployment as the updater would (@live and @state may be
 * NULL), with UpdateStatus "updating". */
static void put_deployment(struct fx *f, const char *id, const char *live, const char *state)
{
	struct service_rec s;
	struct command cmd;

	assert_int_equal(schema_copy(&service_schema, &s, svc(f, id), NULL), 0);
	free(s.deployment.live_color);
	free(s.deployment.state);
	free(s.deployment.message);
	s.deployment.live_color = live != NULL ? strdup(live) : NULL;
	s.deployment.state = state != NULL ? strdup(state) : NULL;
	s.deployment.message = strdup("set by the test");
	s.deployment.switched_at = NOW - 5;
	free(s.update_status.state);
	free(s.update_status.message);
	s.update_status.state = strdup("updating");
	s.update_status.message = strdup("update in progress");
	s.update_status.started_at = NOW - 10;
	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, s.meta.version, &s, NULL), 0);
	service_rec_free(&s);
	assert_int_equal(apply(f, &cmd), 0);
}

static const char *version_of(struct fx *f, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long)svc(f, id)->meta.version);
	return buf;
}

/* A service "web" (id aaa111) with UpdateStrategy @strategy, 2 replicas,
 * updated once from busybox:latest to busybox:1.36. */
static void updated_service(struct fx *f, const char *strategy)
{
	static const char fmt[] =
	    "{\"Name\": \"web\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": "
	    "\"busybox:%s\"}}, \"UpdateStrategy\": \"%s\", \"Mode\": {\"Replicated\": "
	    "{\"Replicas\": 2}}}";
	char body[512], v[32];
	struct shoal_err err;

	snprintf(body, sizeof(body), fmt, "latest", strategy);
	assert_int_equal(create(f, "aaa111", body, &err), 0);
	snprintf(body, sizeof(body), fmt, "1.36", strategy);
	assert_int_equal(update(f, "web", version_of(f, "aaa111", v, sizeof(v)), NULL, body, &err),
			 0);
	assert_null(svc(f, "aaa111")->update_status.state);
}

/* A manual rollback of a blue/green deployment: no new task, the color that
 * served before serves again at once. */
static void expect_bluegreen_rollback(struct fx *f, const char *live, const char *state,
				      const char *want_live, const char *want_message)
{
	const struct service_rec *s;
	struct shoal_err err;
	char v[32];

	put_deployment(f, "aaa111", live, state);
	assert_int_equal(
	    update(f, "web", version_of(f, "aaa111", v, sizeof(v)), "previous", "{}", &err), 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->spec.task_template.container_spec.image, "busybox:latest");
	assert_string_equal(s->previous_spec.task_template.container_spec.image, "busybox:1.36");
	assert_string_equal(s->deployment.live_color, want_live);
	assert_string_equal(s->deployment.state, "rolled_back");
	assert_string_equal(s->deployment.message, want_message);
	assert_int_equal(s->deployment.switched_at, NOW - 5);
	assert_string_equal(s->update_status.state, "rollback_completed");
	assert_string_equal(s->update_status.message, "manually requested rollback");
	assert_int_equal(s->update_status.started_at, NOW + 1);
	assert_int_equal(s->update_status.completed_at, NOW + 1);
	assert_int_equal(store_count(f->s, RECORD_TASKS), 0);
}

static void rollback_of_promoted_bluegreen_flips_back(void **state)
{
	updated_service(*state, "blue-green");
	expect_bluegreen_rollback(*state, "green", "promoted", "blue",
				  "rolled back by request: blue serves");
}

static void rollback_of_ready_bluegreen_keeps_blue(void **state)
{
	updated_service(*state, "blue-green");
	expect_bluegreen_rollback(*state, NULL, "ready", "blue",
				  "rolled back by request: blue serves");
}

static void rollback_of_deploying_bluegreen_keeps_live(void **state)
{
	/* A second deployment: green serves, blue is starting. */
	updated_service(*state, "blue-green");
	expect_bluegreen_rollback(*state, "green", "deploying", "green",
				  "rolled back by request: green serves");
}

/* Outside a deployment, and for rolling services, the updater rolls back. */
static void rollback_outside_a_deployment_is_docker_s(void **state)
{
	struct fx *f = *state;
	const struct service_rec *s;
	struct shoal_err err;
	char v[32];

	updated_service(f, "blue-green");
	put_deployment(f, "aaa111", "green", "completed");
	assert_int_equal(
	    update(f, "web", version_of(f, "aaa111", v, sizeof(v)), "previous", "{}", &err), 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->spec.task_template.container_spec.image, "busybox:latest");
	assert_string_equal(s->update_status.state, "rollback_started");
	assert_string_equal(s->update_status.message, "manually requested rollback");
	assert_int_equal(s->update_status.started_at, NOW + 1);
	assert_int_equal(s->update_status.completed_at, 0);
	assert_string_equal(s->deployment.live_color, "green");
	assert_string_equal(s->deployment.state, "completed");
}

static void rollback_of_rolling_service_ignores_deployment(void **state)
{
	struct fx *f = *state;
	const struct service_rec *s;
	struct shoal_err err;
	char v[32];

	updated_service(f, "rolling");
	put_deployment(f, "aaa111", NULL, "ready");
	assert_int_equal(
	    update(f, "web", version_of(f, "aaa111", v, sizeof(v)), "previous", "{}", &err), 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->update_status.state, "rollback_started");
	assert_string_equal(s->deployment.state, "ready");
	assert_null(s->deployment.live_color);
}

static int promote(struct fx *f, const char *ref, struct shoal_err *err)
{
	struct command cmd;
	int rv;

	command_init(&cmd);
	rv = api_service_promote_command(f->s, ref, NOW + 2, &cmd, err);
	if (rv != 0) {
		assert_int_equal(cmd.n_ops, 0);
		command_free(&cmd);
		return rv;
	}
	assert_int_equal(cmd.n_ops, 1);
	return apply(f, &cmd);
}

static void promote_refuses_without_a_ready_set(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	uint64_t version;

	assert_int_equal(promote(f, "web", &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "service web not found");
	updated_service(f, "blue-green");
	assert_int_equal(promote(f, "web", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg,
			    "service web has no green set ready to promote (deployment: none)");
	put_deployment(f, "aaa111", NULL, "deploying");
	assert_int_equal(promote(f, "web", &err), SHOAL_EINVAL);
	assert_string_equal(
	    err.msg, "service web has no green set ready to promote (deployment: deploying)");
	put_deployment(f, "aaa111", "green", "promoted");
	version = svc(f, "aaa111")->meta.version;
	assert_int_equal(promote(f, "aaa", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg,
			    "service web has no blue set ready to promote (deployment: promoted)");
	assert_int_equal(svc(f, "aaa111")->meta.version, version);
	assert_string_equal(svc(f, "aaa111")->deployment.live_color, "green");
}

static void promote_switches_a_ready_set(void **state)
{
	struct fx *f = *state;
	const struct service_rec *s;
	struct shoal_err err;

	updated_service(f, "blue-green");
	put_deployment(f, "aaa111", NULL, "ready");
	assert_int_equal(promote(f, "web", &err), 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->deployment.live_color, "green");
	assert_string_equal(s->deployment.state, "promoted");
	assert_string_equal(s->deployment.message, "traffic switched to green by request");
	assert_int_equal(s->deployment.switched_at, NOW + 2);
	/* The update goes on: the updater completes it after the grace period. */
	assert_string_equal(s->update_status.state, "updating");
	assert_string_equal(s->spec.task_template.container_spec.image, "busybox:1.36");

	/* Green serving, blue ready: blue takes over. */
	put_deployment(f, "aaa111", "green", "ready");
	assert_int_equal(promote(f, "web", &err), 0);
	s = svc(f, "aaa111");
	assert_string_equal(s->deployment.live_color, "blue");
	assert_string_equal(s->deployment.message, "traffic switched to blue by request");
}

static void promote_expects_the_version_it_read(void **state)
{
	struct fx *f = *state;
	struct command cmd;
	struct shoal_err err;

	updated_service(f, "blue-green");
	put_deployment(f, "aaa111", NULL, "ready");
	command_init(&cmd);
	assert_int_equal(api_service_promote_command(f->s, "web", NOW + 2, &cmd, &err), 0);
	/* The updater writes first: the promote is refused, nothing changes. */
	put_deployment(f, "aaa111", NULL, "failed");
	assert_int_not_equal(apply(f, &cmd), 0);
	assert_string_equal(svc(f, "aaa111")->deployment.state, "failed");
	assert_null(svc(f, "aaa111")->deployment.live_color);
}

static void find_by_id_name_and_prefix(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	const struct service_rec *s = NULL;
	struct command cmd;

	assert_int_equal(create(f, "abc111", "{\"Name\": \"web\", " IMG "}", &err), 0);
	assert_int_equal(create(f, "abc222", "{\"Name\": \"api\", " IMG "}", &err), 0);
	assert_int_equal(api_service_find(f->s, "abc111", &s, &err), 0);
	assert_string_equal(s->spec.name, "web");
	assert_int_equal(api_service_find(f->s, "api", &s, &err), 0);
	assert_string_equal(s->meta.id, "abc222");
	assert_int_equal(api_service_find(f->s, "abc2", &s, &err), 0);
	assert_string_equal(s->meta.id, "abc222");
	assert_int_equal(api_service_find(f->s, "abc", &s, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "service abc is ambiguous (2 matches found)");
	assert_int_equal(api_service_find(f->s, "zzz", &s, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "service zzz not found");

	command_init(&cmd);
	assert_int_equal(api_service_remove_command(f->s, "nope", &cmd, &err), SHOAL_ENOTFOUND);
	assert_int_equal(api_service_remove_command(f->s, "web", &cmd, &err), 0);
	assert_int_equal(cmd.n_ops, 1);
	assert_int_equal(cmd.ops[0].kind, COMMAND_DELETE);
	assert_int_equal(apply(f, &cmd), 0);
	assert_null(store_get(f->s, RECORD_SERVICES, "abc111"));
}

static json_t *one_service_json(struct fx *f, const char *id, bool status)
{
	return api_json_service(f->s, svc(f, id), status);
}

static void add_task(struct fx *f, const char *id, const char *svc_id, uint64_t slot,
		     const char *node, enum task_state st, enum task_state desired)
{
	struct command cmd;
	struct task_rec t;

	command_init(&cmd);
	assert_int_equal(task_rec_defaults(&t, NULL), 0);
	t.meta.id = strdup(id);
	t.service_id = strdup(svc_id);
	t.slot = slot;
	t.node_id = node != NULL ? strdup(node) : NULL;
	t.status.state = st;
	t.desired_state = desired;
	t.spec.container_spec.image = strdup("busybox:latest");
	assert_int_equal(command_put(&cmd, RECORD_TASKS, COMMAND_EXPECT_ANY, &t, NULL), 0);
	task_rec_free(&t);
	assert_int_equal(apply(f, &cmd), 0);
}

static void add_node(struct fx *f, const char *id, const char *hostname)
{
	struct command cmd;
	struct node_rec n;

	command_init(&cmd);
	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.meta.id = strdup(id);
	n.description.hostname = strdup(hostname);
	assert_int_equal(command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_ANY, &n, NULL), 0);
	node_rec_free(&n);
	assert_int_equal(apply(f, &cmd), 0);
}

static void json_looks_like_docker(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	json_t *o, *tt;

	assert_int_equal(create(f, "aaa111",
				"{\"Name\": \"web\", " IMG
				", \"Mode\": {\"Replicated\": {\"Replicas\": 2}}, "
				"\"EndpointSpec\": {\"Ports\": [{\"TargetPort\": 80, "
				"\"PublishedPort\": 8080}]}}",
				&err),
			 0);
	assert_int_equal(
	    create(f, "bbb222", "{\"Name\": \"all\", " IMG ", \"Mode\": {\"Global\": {}}}", &err),
	    0);
	o = one_service_json(f, "aaa111", false);
	assert_non_null(o);
	assert_int_equal(
	    json_integer_value(json_object_get(
		json_object_get(json_object_get(json_object_get(o, "Spec"), "Mode"), "Replicated"),
		"Replicas")),
	    2);
	tt = json_object_get(json_object_get(o, "Spec"), "TaskTemplate");
	assert_true(json_is_object(json_object_get(json_object_get(tt, "Resources"), "Limits")));
	assert_true(
	    json_is_object(json_object_get(json_object_get(tt, "Resources"), "Reservations")));
	assert_true(json_is_object(json_object_get(tt, "Placement")));
	assert_true(json_is_object(json_object_get(json_object_get(o, "Endpoint"), "Spec")));
	/* What is published follows the spec, with Docker's defaults. */
	json_t *port = json_array_get(json_object_get(json_object_get(o, "Endpoint"), "Ports"), 0);
	assert_string_equal(json_string_value(json_object_get(port, "Protocol")), "tcp");
	assert_string_equal(json_string_value(json_object_get(port, "PublishMode")), "ingress");
	assert_null(json_object_get(o, "PreviousSpec"));
	assert_null(json_object_get(o, "ServiceStatus"));
	json_decref(o);
	o = one_service_json(f, "bbb222", false);
	assert_true(json_is_object(
	    json_object_get(json_object_get(json_object_get(o, "Spec"), "Mode"), "Global")));
	json_decref(o);

	/* ServiceStatus counts the tasks. */
	add_task(f, "t1", "aaa111", 1, "n1", TASK_RUNNING, TASK_RUNNING);
	add_task(f, "t2", "aaa111", 2, NULL, TASK_PENDING, TASK_RUNNING);
	add_task(f, "t3", "aaa111", 2, "n1", TASK_FAILED, TASK_SHUTDOWN);
	add_task(f, "t4", "bbb222", 0, "n1", TASK_RUNNING, TASK_RUNNING);
	o = one_service_json(f, "aaa111", true);
	json_t *st = json_object_get(o, "ServiceStatus");
	assert_int_equal(json_integer_value(json_object_get(st, "RunningTasks")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "DesiredTasks")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "CompletedTasks")), 0);
	json_decref(o);
	o = one_service_json(f, "bbb222", true);
	st = json_object_get(o, "ServiceStatus");
	assert_int_equal(json_integer_value(json_object_get(st, "RunningTasks")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "DesiredTasks")), 1);
	json_decref(o);
}

/* The ids of the list @l, space-separated, in order. */
static void ids_of(json_t *l, char *out, size_t len)
{
	size_t i;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(l, i, v)
	{
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%s%s", n > 0 ? " " : "",
			 json_string_value(json_object_get(v, "ID")));
	}
}

static void expect_services(struct fx *f, const char *filters, const char *want)
{
	struct shoal_err err;
	json_t *l = NULL;
	char got[256];

	assert_int_equal(api_services_list(f->s, filters, false, &l, &err), 0);
	ids_of(l, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("filters %s: got [%s], want [%s]", filters, got, want);
	json_decref(l);
}

static void expect_tasks(struct fx *f, const char *filters, const char *want)
{
	struct shoal_err err;
	json_t *l = NULL;
	char got[256];
	int rv = api_tasks_list(f->s, "n1", filters, &l, &err);

	if (rv != 0)
		fail_msg("filters %s: %s", filters, err.msg);
	ids_of(l, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("filters %s: got [%s], want [%s]", filters, got, want);
	json_decref(l);
}

static void list_filters(void **state)
{
	struct fx *f = *state;
	struct shoal_err err;
	json_t *l = NULL;

	assert_int_equal(create(f, "aaa111",
				"{\"Name\": \"web\", \"Labels\": {\"tier\": \"front\"}, " IMG "}",
				&err),
			 0);
	assert_int_equal(create(f, "bbb222",
				"{\"Name\": \"webapi\", " IMG ", \"Mode\": {\"Global\": {}}}",
				&err),
			 0);
	expect_services(f, "", "aaa111 bbb222");
	expect_services(f, "{\"name\":{\"web\":true}}", "aaa111 bbb222");
	expect_services(f, "{\"name\":[\"webapi\"]}", "bbb222");
	expect_services(f, "{\"id\":{\"aa\":true}}", "aaa111");
	expect_services(f, "{\"label\":{\"tier\":true}}", "aaa111");
	expect_services(f, "{\"label\":{\"tier=back\":true}}", "");
	expect_services(f, "{\"mode\":{\"global\":true}}", "bbb222");
	assert_int_equal(api_services_list(f->s, "{\"mode\":{\"jobs\":true}}", false, &l, &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "Invalid filter: 'mode'='jobs'");
	assert_int_equal(api_services_list(f->s, "{\"colour\":{\"red\":true}}", false, &l, &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "invalid filter 'colour'");
	assert_int_equal(api_services_list(f->s, "nope", false, &l, &err), SHOAL_EINVAL);

	add_node(f, "n1", "host-1");
	add_node(f, "n2", "host-2");
	add_task(f, "t1", "aaa111", 1, "n1", TASK_RUNNING, TASK_RUNNING);
	add_task(f, "t2", "aaa111", 1, "n2", TASK_FAILED, TASK_SHUTDOWN);
	add_task(f, "t3", "bbb222", 0, "n2", TASK_RUNNING, TASK_RUNNING);
	expect_tasks(f, "", "t1 t2 t3");
	expect_tasks(f, "{\"service\":{\"web\":true}}", "t1 t2");
	expect_tasks(f, "{\"service\":{\"bbb222\":true}}", "t3");
	expect_tasks(f, "{\"node\":{\"host-2\":true}}", "t2 t3");
	expect_tasks(f, "{\"node\":{\"self\":true}}", "t1");
	expect_tasks(f, "{\"desired-state\":{\"running\":true}}", "t1 t3");
	expect_tasks(f, "{\"desired-state\":{\"shutdown\":true},\"service\":{\"web\":true}}", "t2");
	expect_tasks(f, "{\"name\":{\"web.1\":true}}", "t1 t2");
	expect_tasks(f, "{\"id\":{\"t3\":true}}", "t3");
	assert_int_equal(api_tasks_list(f->s, "n1", "{\"service\":{\"nope\":true}}", &l, &err),
			 SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "service nope not found");
	assert_int_equal(
	    api_tasks_list(f->s, "n1", "{\"desired-state\":{\"dancing\":true}}", &l, &err),
	    SHOAL_EINVAL);

	const struct task_rec *t = NULL;
	assert_int_equal(api_task_find(f->s, "t2", &t, &err), 0);
	assert_int_equal(api_task_find(f->s, "web.1.t1", &t, &err), 0);
	assert_string_equal(t->meta.id, "t1");
	assert_int_equal(api_task_find(f->s, "t", &t, &err), SHOAL_EINVAL);
	assert_int_equal(api_task_find(f->s, "x", &t, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "task x not found");
	json_t *o = api_json_task(f->s, t = store_get(f->s, RECORD_TASKS, "t1"));
	assert_string_equal(json_string_value(json_object_get(o, "ServiceID")), "aaa111");
	assert_string_equal(json_string_value(json_object_get(o, "DesiredState")), "running");
	assert_true(json_is_object(
	    json_object_get(json_object_get(json_object_get(o, "Spec"), "Resources"), "Limits")));
	json_decref(o);
}

/* --- routes, through the HTTP core, outside a swarm -------------------------------------- */

static int out_write(void *arg, const void *data, size_t len)
{
	return buf_append(arg, data, len);
}

static void out_close(void *arg)
{
	(void)arg;
}

static void swarm_closed(void *arg)
{
	(void)arg;
}

static void routes_need_a_manager(void **state)
{
	static const char *const reqs[] = {
	    "GET /services HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /v1.41/services/web HTTP/1.1\r\nHost: x\r\n\r\n",
	    "DELETE /services/web HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /tasks/abc HTTP/1.1\r\nHost: x\r\n\r\n",
	    "POST /services/create HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\n\r\n{}",
	    "POST /services/web/update?version=3 HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\n\r\n{}",
	    "POST /services/web/promote HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	    "POST /v1.41/services/web/promote HTTP/1.1\r\nHost: x\r\nContent-Length: "
	    "0\r\n\r\n",
	};
	struct swarm_config scfg = {0};
	struct api_context actx = {0};
	struct shoal_err err;
	struct swarm *swarm;
	struct api *api;
	uv_loop_t loop;
	char dir[64];
	struct buf out;

	(void)state;
	uv_loop_init(&loop);
	snprintf(dir, sizeof(dir), "/tmp/shoal-test-apisvc.XXXXXX");
	assert_non_null(mkdtemp(dir));
	scfg.state_dir = dir;
	scfg.hostname = "unit";
	assert_int_equal(swarm_open(&swarm, &loop, &scfg, &err), 0);
	actx.swarm = swarm;
	actx.hostname = "unit";
	actx.state_dir = dir;
	actx.runtime = "runc";
	assert_int_equal(api_new(&api, &actx, &err), 0);
	buf_init(&out);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct http_transport t = {.arg = &out, .write = out_write, .close = out_close};
		struct http_conn *c = http_conn_new(NULL, &t, api_handle, api);
		int status = 0;

		out.len = 0;
		http_conn_feed(c, reqs[i], strlen(reqs[i]));
		http_conn_eof(c);
		http_conn_free(c);
		assert_int_equal(buf_append(&out, "", 1), 0);
		assert_int_equal(sscanf(out.data, "HTTP/1.1 %d", &status), 1);
		assert_int_equal(status, 503);
		assert_non_null(strstr(out.data, "This node is not a swarm manager."));
	}
	buf_free(&out);
	api_free(api);
	swarm_close(swarm, swarm_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(create_reads_spec_with_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(create_names_a_nameless_service, setup, teardown),
	    cmocka_unit_test_setup_teardown(create_refuses_bad_specs, setup, teardown),
	    cmocka_unit_test_setup_teardown(update_replaces_spec_and_keeps_previous, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(create_checks_bluegreen, setup, teardown),
	    cmocka_unit_test_setup_teardown(rollback_of_promoted_bluegreen_flips_back, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(rollback_of_ready_bluegreen_keeps_blue, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(rollback_of_deploying_bluegreen_keeps_live, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(rollback_outside_a_deployment_is_docker_s, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(rollback_of_rolling_service_ignores_deployment, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(promote_refuses_without_a_ready_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(promote_switches_a_ready_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(promote_expects_the_version_it_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(find_by_id_name_and_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(json_looks_like_docker, setup, teardown),
	    cmocka_unit_test_setup_teardown(list_filters, setup, teardown),
	    cmocka_unit_test(routes_need_a_manager),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
