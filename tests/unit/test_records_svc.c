/* Unit tests of node/records_svc: Service and Task records, their JSON, msgpack and store tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "node/command.h"
#include "node/records_svc.h"
#include "node/store.h"

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static int64_t t_of(const char *s)
{
	int64_t ns;

	assert_int_equal(clock_parse_rfc3339(s, &ns), 0);
	return ns;
}

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (j == NULL)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static char *dump(const json_t *j)
{
	char *out = json_dumps(j, JSON_COMPACT);

	assert_non_null(out);
	return out;
}

static json_t *to_json(const struct schema *s, const void *rec)
{
	json_t *j = NULL;

	assert_int_equal(schema_to_json(s, rec, &j, NULL), 0);
	return j;
}

/* Assert that @j (taken) renders exactly as @want. */
static void assert_json(json_t *j, const char *want)
{
	char *out = dump(j);

	assert_string_equal(out, want);
	free(out);
	json_decref(j);
}

static size_t pack(const struct schema *s, const void *rec, char **out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t len;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(schema_pack(s, rec, &pk), 0);
	len = sb.size;
	*out = msgpack_sbuffer_release(&sb);
	return len;
}

static int unpack(const struct schema *s, void *rec, const char *buf, size_t len,
		  struct shoal_err *err)
{
	msgpack_unpacked u;
	int rv;

	msgpack_unpacked_init(&u);
	rv = schema_msgpack_parse(buf, len, &u, err);
	if (rv == 0)
		rv = schema_unpack(s, rec, &u.data, err);
	msgpack_unpacked_destroy(&u);
	return rv;
}

/* What `docker service create --name web --replicas 3 -p 8080:80 ...` sends,
 * less what shoal does not keep (Mode is read by the API, not the schema). */
static const char create_body[] =
    "{\"Name\":\"web\",\"Labels\":{\"com.example\":\"yes\"},"
    "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:1.25\","
    "\"Labels\":{\"tier\":\"front\"},\"Command\":[\"nginx\"],"
    "\"Args\":[\"-g\",\"daemon off;\"],\"Hostname\":\"web-{{.Task.Slot}}\","
    "\"Env\":[\"A=1\",\"B=2\"],\"Dir\":\"/srv\",\"User\":\"www\","
    "\"StopSignal\":\"SIGQUIT\",\"ReadOnly\":true,"
    "\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/data\",\"Target\":\"/data\","
    "\"ReadOnly\":true}],\"StopGracePeriod\":20000000000,"
    "\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"],\"Interval\":1000000000,"
    "\"Timeout\":2000000000,\"StartPeriod\":3000000000,\"Retries\":4}},"
    "\"Resources\":{\"Limits\":{\"NanoCPUs\":500000000,\"MemoryBytes\":268435456,"
    "\"Pids\":100},\"Reservations\":{\"NanoCPUs\":100000000,\"MemoryBytes\":67108864}},"
    "\"RestartPolicy\":{\"Condition\":\"on-failure\",\"Delay\":7000000000,"
    "\"MaxAttempts\":3,\"Window\":60000000000},"
    "\"Placement\":{\"Constraints\":[\"node.labels.zone==east\"],\"MaxReplicas\":2},"
    "\"ForceUpdate\":1},"
    "\"UpdateConfig\":{\"Parallelism\":2,\"Delay\":10000000000,"
    "\"FailureAction\":\"rollback\",\"Monitor\":15000000000,\"MaxFailureRatio\":0.25,"
    "\"Order\":\"start-first\"},"
    "\"RollbackConfig\":{\"Parallelism\":1,\"FailureAction\":\"pause\","
    "\"Monitor\":5000000000,\"MaxFailureRatio\":0,\"Order\":\"stop-first\"},"
    "\"EndpointSpec\":{\"Mode\":\"vip\",\"Ports\":[{\"Name\":\"http\",\"Protocol\":\"tcp\","
    "\"TargetPort\":80,\"PublishedPort\":8080,\"PublishMode\":\"ingress\"}]}}";

static void fill_service(struct service_rec *s, const char *id)
{
	json_t *j = load(create_body);

	assert_int_equal(service_rec_defaults(s, NULL), 0);
	s->meta.id = xstrdup(id);
	s->meta.created_at = t_of("2024-05-01T10:00:00.123Z");
	s->meta.updated_at = t_of("2024-05-01T10:00:01Z");
	assert_int_equal(schema_from_json(&service_schema, s, j, "Spec", "ServiceSpec", NULL), 0);
	json_decref(j);
	s->spec.replicas = 3;
}

static void fill_task(struct task_rec *t, const struct service_rec *s, const char *id,
		      uint64_t slot)
{
	assert_int_equal(task_rec_defaults(t, NULL), 0);
	t->meta.id = xstrdup(id);
	schema_free(&svc_task_spec_schema, &t->spec);
	assert_int_equal(schema_copy(&svc_task_spec_schema, &t->spec, &s->spec.task_template, NULL),
			 0);
	t->service_id = xstrdup(s->meta.id);
	t->slot = slot;
	t->node_id = xstrdup("node1");
	t->status.timestamp = t_of("2024-05-01T10:00:02.5Z");
	t->status.state = TASK_RUNNING;
	t->status.message = xstrdup("started");
	t->status.container_status.container_id = xstrdup("c0ffee");
	t->status.container_status.pid = 4242;
	t->spec_version = s->meta.version;
	assert_int_equal(schema_map_set(&t->labels, "com.docker.swarm.service.name", "web", NULL),
			 0);
}

static void service_defaults_match_docker(void **state)
{
	struct service_rec s;
	struct task_rec t;

	(void)state;
	assert_int_equal(service_rec_defaults(&s, NULL), 0);
	assert_int_equal(s.spec.mode, SVC_MODE_REPLICATED);
	assert_int_equal(s.spec.replicas, 1);
	assert_false(s.has_previous_spec);
	assert_null(s.spec.update_strategy);
	s.meta.id = xstrdup("svc1");
	/* What `docker service inspect` shows of a fresh service, less the Mode
	 * union that the API adds. */
	assert_json(to_json(&service_schema, &s),
		    "{\"ID\":\"svc1\",\"Version\":{\"Index\":0},"
		    "\"CreatedAt\":\"1970-01-01T00:00:00Z\",\"UpdatedAt\":\"1970-01-01T00:00:00Z\","
		    "\"Spec\":{\"Labels\":{},\"TaskTemplate\":{\"RestartPolicy\":{\"Condition\":"
		    "\"any\",\"Delay\":5000000000,\"MaxAttempts\":0},\"ForceUpdate\":0},"
		    "\"UpdateConfig\":{\"Parallelism\":1,\"FailureAction\":\"pause\","
		    "\"Monitor\":5000000000,\"MaxFailureRatio\":0,\"Order\":\"stop-first\"},"
		    "\"RollbackConfig\":{\"Parallelism\":1,\"FailureAction\":\"pause\","
		    "\"Monitor\":5000000000,\"MaxFailureRatio\":0,\"Order\":\"stop-first\"},"
		    "\"EndpointSpec\":{\"Mode\":\"vip\"}}}");
	service_rec_free(&s);

	assert_int_equal(task_rec_defaults(&t, NULL), 0);
	assert_int_equal(t.status.state, TASK_NEW);
	assert_int_equal(t.desired_state, TASK_RUNNING);
	t.meta.id = xstrdup("t1");
	assert_json(to_json(&task_schema, &t),
		    "{\"ID\":\"t1\",\"Version\":{\"Index\":0},"
		    "\"CreatedAt\":\"1970-01-01T00:00:00Z\",\"UpdatedAt\":\"1970-01-01T00:00:00Z\","
		    "\"Labels\":{},\"Spec\":{\"RestartPolicy\":{\"Delay\":0,\"MaxAttempts\":0},"
		    "\"ForceUpdate\":0},\"Status\":{\"Timestamp\":\"1970-01-01T00:00:00Z\","
		    "\"State\":\"new\"},\"DesiredState\":\"running\"}");
	task_rec_free(&t);
}

static void create_body_reads_and_renders_back(void **state)
{
	struct service_rec s;
	json_t *in, *out;
	const struct svc_task_spec *ts;

	(void)state;
	fill_service(&s, "svc1");
	ts = &s.spec.task_template;
	assert_string_equal(s.spec.name, "web");
	assert_string_equal(ts->container_spec.image, "nginx:1.25");
	assert_int_equal(ts->container_spec.command.n, 1);
	assert_string_equal(ts->container_spec.args.items[1], "daemon off;");
	assert_int_equal(ts->container_spec.stop_grace_period, 20000000000);
	assert_int_equal(ts->container_spec.healthcheck.retries, 4);
	assert_int_equal(ts->container_spec.mounts.n, 1);
	assert_true(((struct svc_mount *)ts->container_spec.mounts.items)[0].read_only);
	assert_int_equal(ts->resources.limits.nano_cpus, 500000000);
	assert_int_equal(ts->resources.limits.pids, 100);
	assert_string_equal(ts->restart_policy.condition, "on-failure");
	assert_int_equal(ts->restart_policy.max_attempts, 3);
	assert_string_equal(ts->placement.constraints.items[0], "node.labels.zone==east");
	assert_int_equal(ts->placement.max_replicas, 2);
	assert_int_equal(ts->force_update, 1);
	assert_int_equal(s.spec.update_config.parallelism, 2);
	assert_true(s.spec.update_config.max_failure_ratio == 0.25);
	assert_string_equal(s.spec.update_config.order, "start-first");
	assert_int_equal(s.spec.endpoint_spec.ports.n, 1);
	assert_int_equal(((struct svc_port *)s.spec.endpoint_spec.ports.items)[0].published_port,
			 8080);
	/* Mode is the API's: the schema neither reads nor renders it. */
	assert_int_equal(s.spec.mode, SVC_MODE_REPLICATED);

	in = load(create_body);
	out = to_json(&service_schema, &s);
	assert_true(json_equal(json_object_get(out, "Spec"), in));
	assert_null(json_object_get(out, "PreviousSpec"));
	assert_null(json_object_get(json_object_get(out, "Spec"), "Mode"));
	json_decref(out);

	/* Keys absent keep their value, in nested structs too, as Go's decoder
	 * does; a prefix can reach into a struct. */
	json_decref(in);
	in = load("{\"ContainerSpec\":{\"Image\":\"nginx:1.26\"},\"forceupdate\":2}");
	assert_int_equal(
	    schema_from_json(&service_schema, &s, in, "Spec.TaskTemplate", "TaskSpec", NULL), 0);
	json_decref(in);
	assert_string_equal(ts->container_spec.image, "nginx:1.26");
	assert_int_equal(ts->force_update, 2);
	assert_string_equal(ts->container_spec.user, "www");
	assert_string_equal(s.spec.update_config.order, "start-first");

	/* Shoal's extensions show only when set. */
	s.has_previous_spec = true;
	assert_int_equal(schema_copy(&svc_spec_schema, &s.previous_spec, &s.spec, NULL), 0);
	s.spec.update_strategy = xstrdup("blue-green");
	out = to_json(&service_schema, &s);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(out, "Spec"), "UpdateStrategy")),
	    "blue-green");
	assert_true(
	    json_equal(json_object_get(json_object_get(out, "PreviousSpec"), "TaskTemplate"),
		       json_object_get(json_object_get(out, "Spec"), "TaskTemplate")));
	assert_null(json_object_get(out, "HasPreviousSpec"));
	json_decref(out);
	service_rec_free(&s);
}

static void bad_spec_json_names_the_field(void **state)
{
	static const struct {
		const char *body;
		const char *msg;
	} cases[] = {
	    {"{\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":5}}}",
	     "json: cannot unmarshal number into Go struct field "
	     "ServiceSpec.TaskTemplate.ContainerSpec.Image of type string"},
	    {"{\"TaskTemplate\":[]}",
	     "json: cannot unmarshal array into Go struct field ServiceSpec.TaskTemplate of type "
	     "TaskSpec"},
	    {"{\"UpdateConfig\":{\"MaxFailureRatio\":\"x\"}}",
	     "json: cannot unmarshal string into Go struct field "
	     "ServiceSpec.UpdateConfig.MaxFailureRatio of type float64"},
	    {"{\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":-1}]}}",
	     "json: cannot unmarshal number -1 into Go struct field "
	     "ServiceSpec.EndpointSpec.Ports.TargetPort of type uint64"},
	    {"{\"Name\":\"changed\",\"TaskTemplate\":{\"ContainerSpec\":{\"Mounts\":[{"
	     "\"ReadOnly\":\"yes\"}]}}}",
	     "json: cannot unmarshal string into Go struct field "
	     "ServiceSpec.TaskTemplate.ContainerSpec.Mounts.ReadOnly of type bool"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct service_rec s, before;
		struct shoal_err err = {{0}};
		json_t *j = load(cases[i].body);

		fill_service(&s, "svc1");
		assert_int_equal(schema_copy(&service_schema, &before, &s, NULL), 0);
		assert_int_equal(
		    schema_from_json(&service_schema, &s, j, "Spec", "ServiceSpec", &err),
		    SHOAL_EINVAL);
		assert_string_equal(err.msg, cases[i].msg);
		assert_true(schema_equal(&service_schema, &s, &before));
		json_decref(j);
		service_rec_free(&s);
		service_rec_free(&before);
	}
}

static void msgpack_round_trips(void **state)
{
	struct service_rec s, s2;
	struct task_rec t, t2;
	char *a, *b;
	size_t alen, blen;

	(void)state;
	fill_service(&s, "svc1");
	s.meta.version = 12;
	s.has_previous_spec = true;
	assert_int_equal(schema_copy(&svc_spec_schema, &s.previous_spec, &s.spec, NULL), 0);
	s.spec.mode = SVC_MODE_GLOBAL;
	s.spec.update_config.max_failure_ratio = 0.125;
	s.update_status.state = xstrdup("updating");
	s.update_status.started_at = t_of("2024-05-01T10:00:03Z");
	fill_task(&t, &s, "task1", 2);
	t.color = xstrdup("green");

	alen = pack(&service_schema, &s, &a);
	assert_int_equal(service_rec_defaults(&s2, NULL), 0);
	assert_int_equal(unpack(&service_schema, &s2, a, alen, NULL), 0);
	assert_true(schema_equal(&service_schema, &s, &s2));
	assert_int_equal(s2.spec.mode, SVC_MODE_GLOBAL);
	assert_true(s2.previous_spec.update_config.max_failure_ratio == 0.25);
	blen = pack(&service_schema, &s2, &b);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);

	alen = pack(&task_schema, &t, &a);
	assert_int_equal(task_rec_defaults(&t2, NULL), 0);
	assert_int_equal(unpack(&task_schema, &t2, a, alen, NULL), 0);
	assert_true(schema_equal(&task_schema, &t, &t2));
	assert_int_equal(t2.spec_version, 12);
	free(a);

	/* Every cut is refused and leaves nothing behind (ASan). */
	alen = pack(&task_schema, &t, &a);
	for (size_t cut = 0; cut < alen; cut += 7) {
		struct task_rec x;
		char *copy = malloc(cut + 1);

		assert_non_null(copy);
		memcpy(copy, a, cut);
		assert_int_equal(task_rec_defaults(&x, NULL), 0);
		assert_int_equal(unpack(&task_schema, &x, copy, cut, NULL), SHOAL_EPROTO);
		task_rec_free(&x);
		free(copy);
	}
	free(a);
	service_rec_free(&s);
	service_rec_free(&s2);
	task_rec_free(&t);
	task_rec_free(&t2);
}

static void task_json_shows_status(void **state)
{
	struct service_rec s;
	struct task_rec t;
	json_t *j, *st;

	(void)state;
	fill_service(&s, "svc1");
	fill_task(&t, &s, "task1", 3);
	t.status.container_status.exit_code = 137;
	j = to_json(&task_schema, &t);
	assert_string_equal(json_string_value(json_object_get(j, "ServiceID")), "svc1");
	assert_int_equal(json_integer_value(json_object_get(j, "Slot")), 3);
	assert_string_equal(json_string_value(json_object_get(j, "NodeID")), "node1");
	assert_string_equal(json_string_value(json_object_get(j, "DesiredState")), "running");
	assert_null(json_object_get(j, "SpecVersion"));
	assert_null(json_object_get(j, "Color"));
	st = json_object_get(j, "Status");
	assert_json(json_incref(st),
		    "{\"Timestamp\":\"2024-05-01T10:00:02.5Z\",\"State\":\"running\","
		    "\"Message\":\"started\",\"ContainerStatus\":{\"ContainerID\":\"c0ffee\","
		    "\"PID\":4242,\"ExitCode\":137}}");
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(j, "Spec"), "ContainerSpec"), "Image")),
	    "nginx:1.25");
	json_decref(j);

	t.color = xstrdup("blue");
	t.status.state = TASK_ORPHANED;
	j = to_json(&task_schema, &t);
	assert_string_equal(json_string_value(json_object_get(j, "Color")), "blue");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "Status"), "State")), "orphaned");
	json_decref(j);
	assert_string_equal(schema_enum_name(task_state_names, TASK_SHUTDOWN), "shutdown");
	assert_string_equal(schema_enum_name(task_state_names, TASK_NEW), "new");
	task_rec_free(&t);
	service_rec_free(&s);
}

static int apply(struct store *st, uint64_t index, struct command *cmd)
{
	struct consensus_fsm fsm;
	void *buf, *result = NULL;
	size_t len;

	assert_int_equal(command_encode(cmd, &buf, &len, NULL), 0);
	command_free(cmd);
	store_fsm(st, &fsm);
	assert_int_equal(fsm.apply(fsm.arg, index, buf, len, &result), 0);
	free(buf);
	return store_result_code(result);
}

/* A hand-made snapshot of a store from before services: cluster and nodes only. */
static void *old_snapshot(size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "format", 6);
	msgpack_pack_uint64(&pk, STORE_SNAPSHOT_FORMAT);
	msgpack_pack_str_with_body(&pk, "index", 5);
	msgpack_pack_uint64(&pk, 3);
	msgpack_pack_str_with_body(&pk, "tables", 6);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "cluster", 7);
	msgpack_pack_array(&pk, 0);
	msgpack_pack_str_with_body(&pk, "nodes", 5);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "ID", 2);
	msgpack_pack_str_with_body(&pk, "n1", 2);
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

static void store_keeps_services_and_tasks(void **state)
{
	struct store *a = NULL, *b = NULL;
	struct consensus_fsm fa, fb;
	struct service_rec s;
	struct command cmd;
	const struct service_rec *got;
	void *snap, *snap2;
	size_t len, len2;

	(void)state;
	assert_int_equal(store_new(&a, NULL), 0);
	assert_int_equal(store_new(&b, NULL), 0);
	fill_service(&s, "svc1");
	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_NEW, &s, NULL), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		struct task_rec t;
		char id[16];

		snprintf(id, sizeof(id), "task%llu", (unsigned long long)i);
		fill_task(&t, &s, id, i);
		assert_int_equal(command_put(&cmd, RECORD_TASKS, COMMAND_EXPECT_NEW, &t, NULL), 0);
		task_rec_free(&t);
	}
	assert_int_equal(apply(a, 5, &cmd), 0);
	assert_int_equal(store_count(a, RECORD_SERVICES), 1);
	assert_int_equal(store_count(a, RECORD_TASKS), 3);
	got = store_get(a, RECORD_SERVICES, "svc1");
	assert_non_null(got);
	assert_int_equal(got->meta.version, 5);
	assert_string_equal(got->spec.task_template.container_spec.image, "nginx:1.25");
	assert_int_equal(((const struct task_rec *)store_at(a, RECORD_TASKS, 2))->slot, 3);
	assert_string_equal(record_tables[RECORD_TASKS].kind, "task");

	/* A second service under the same id is a conflict, as for nodes. */
	command_init(&cmd);
	assert_int_equal(command_put(&cmd, RECORD_SERVICES, COMMAND_EXPECT_NEW, &s, NULL), 0);
	assert_int_equal(apply(a, 6, &cmd), SHOAL_ECONFLICT);

	store_fsm(a, &fa);
	store_fsm(b, &fb);
	assert_int_equal(fa.snapshot(fa.arg, &snap, &len), 0);
	assert_int_equal(fb.restore(fb.arg, snap, len), 0);
	for (size_t t = 0; t < RECORD_TABLE_COUNT; t++) {
		assert_int_equal(store_count(a, t), store_count(b, t));
		for (size_t i = 0; i < store_count(a, t); i++)
			assert_true(schema_equal(record_tables[t].schema, store_at(a, t, i),
						 store_at(b, t, i)));
	}
	assert_int_equal(fb.snapshot(fb.arg, &snap2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(snap, snap2, len);
	free(snap);
	free(snap2);

	/* A snapshot from before services restores, with empty service tables. */
	snap = old_snapshot(&len);
	assert_int_equal(fb.restore(fb.arg, snap, len), 0);
	assert_int_equal(store_count(b, RECORD_SERVICES), 0);
	assert_int_equal(store_count(b, RECORD_TASKS), 0);
	assert_int_equal(store_node_count(b), 1);
	free(snap);

	service_rec_free(&s);
	store_free(a);
	store_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(service_defaults_match_docker),
	    cmocka_unit_test(create_body_reads_and_renders_back),
	    cmocka_unit_test(bad_spec_json_names_the_field),
	    cmocka_unit_test(msgpack_round_trips),
	    cmocka_unit_test(task_json_shows_status),
	    cmocka_unit_test(store_keeps_services_and_tasks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
