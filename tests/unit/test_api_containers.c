/* Unit tests of node/api_containers.c's JSON: Docker's humanised Status,
 * the ContainerSummary and the ContainerInspect of a container record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "node/api_containers.h"

#define SEC 1000000000ULL
#define T0  (1700000000ULL * SEC)

static char a0[] = "sh", a1[] = "-c", a2[] = "echo hello world";
static char *argv_sh[] = {a0, a1, a2};
static char k_tier[] = "tier", v_web[] = "web", image[] = "shoal-demo:latest";
static struct oci_label label_tier = {k_tier, v_web};

/* A container record as the runtime keeps it: running since T0. */
static void fill(struct container *c)
{
	memset(c, 0, sizeof *c);
	memset(c->id, 'a', 64);
	strcpy(c->name, "web");
	c->spec.image = image;
	c->spec.labels = &label_tier;
	c->spec.n_labels = 1;
	c->spec.stop_timeout = -1;
	strcpy(c->image_id.str, "sha256:"
				"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	strcpy(c->image_name, "shoal-demo:latest");
	c->args.items = argv_sh;
	c->args.n = 3;
	c->state = CTR_RUNNING;
	c->driver = CTR_DRIVER_RUNC;
	c->pid = 4242;
	c->created_ns = T0 - 10 * SEC;
	c->started_ns = T0;
	strcpy(c->log_path, "/var/lib/shoal/containers/aaaa/aaaa-json.log");
}

static void status(const struct container *c, int64_t now, const char *want)
{
	char out[128];

	api_container_status_text(c, now, out, sizeof(out));
	assert_string_equal(out, want);
}

static void status_text_is_dockers(void **state)
{
	struct container c;

	(void)state;
	fill(&c);
	status(&c, (int64_t)(T0 + SEC / 2), "Up Less than a second");
	status(&c, (int64_t)(T0 + 3 * SEC), "Up 3 seconds");
	status(&c, (int64_t)(T0 + 90 * SEC), "Up About a minute");
	c.has_health = true;
	c.health = HEALTH_STARTING;
	status(&c, (int64_t)(T0 + 3 * SEC), "Up 3 seconds (health: starting)");
	c.health = HEALTH_UNHEALTHY;
	status(&c, (int64_t)(T0 + 3 * SEC), "Up 3 seconds (unhealthy)");
	c.health = HEALTH_HEALTHY;
	status(&c, (int64_t)(T0 + 1 * SEC), "Up 1 second (healthy)");
	c.state = CTR_EXITED;
	c.exit_code = 3;
	c.finished_ns = T0 + 5 * SEC;
	status(&c, (int64_t)(T0 + 7 * SEC), "Exited (3) 2 seconds ago");
	c.started_ns = 0; /* failed to start: Docker says Created */
	status(&c, (int64_t)(T0 + 7 * SEC), "Created");
	c.state = CTR_CREATED;
	status(&c, (int64_t)T0, "Created");
	c.state = CTR_REMOVING;
	status(&c, (int64_t)T0, "Removal In Progress");
	c.state = CTR_DEAD;
	status(&c, (int64_t)T0, "Dead");
}

static void summary_fields(void **state)
{
	struct container c;
	json_t *j, *net;

	(void)state;
	fill(&c);
	c.has_endpoint = true;
	inet_pton(AF_INET, "10.88.0.2", &c.endpoint.addr);
	inet_pton(AF_INET, "10.88.0.1", &c.endpoint.gateway);
	c.endpoint.prefix = 16;
	memcpy(c.endpoint.mac, "\x02\x42\x0a\x58\x00\x02", 6);
	j = api_container_summary(&c, (int64_t)(T0 + 3 * SEC));
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "Id")), c.id);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Names"), 0)),
			    "/web");
	/* Args holding a space are quoted, as Docker's Command shows them. */
	assert_string_equal(json_string_value(json_object_get(j, "Command")),
			    "sh -c 'echo hello world'");
	assert_int_equal(json_integer_value(json_object_get(j, "Created")), 1699999990);
	assert_string_equal(json_string_value(json_object_get(j, "State")), "running");
	assert_string_equal(json_string_value(json_object_get(j, "Status")), "Up 3 seconds");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "Labels"), "tier")), "web");
	assert_int_equal(json_array_size(json_object_get(j, "Ports")), 0);
	net = json_object_get(json_object_get(json_object_get(j, "NetworkSettings"), "Networks"),
			      "bridge");
	assert_non_null(net);
	assert_string_equal(json_string_value(json_object_get(net, "IPAddress")), "10.88.0.2");
	assert_string_equal(json_string_value(json_object_get(net, "Gateway")), "10.88.0.1");
	assert_string_equal(json_string_value(json_object_get(net, "MacAddress")),
			    "02:42:0a:58:00:02");
	assert_int_equal(json_integer_value(json_object_get(net, "IPPrefixLen")), 16);
	json_decref(j);
}

static void inspect_fields(void **state)
{
	struct container c;
	json_t *j, *st;

	(void)state;
	fill(&c);
	c.state = CTR_CREATED;
	c.started_ns = 0;
	/* An error cut mid-character must not break the document. */
	strcpy(c.error, "bad \xc3");
	j = api_container_inspect(&c);
	assert_non_null(j);
	st = json_object_get(j, "State");
	assert_string_equal(json_string_value(json_object_get(st, "Status")), "created");
	assert_true(json_is_false(json_object_get(st, "Running")));
	assert_int_equal(json_integer_value(json_object_get(st, "Pid")), 0);
	assert_string_equal(json_string_value(json_object_get(st, "StartedAt")),
			    "0001-01-01T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(st, "FinishedAt")),
			    "0001-01-01T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(st, "Error")), "bad ?");
	assert_null(json_object_get(st, "Health"));
	assert_string_equal(json_string_value(json_object_get(j, "Created")),
			    "2023-11-14T22:13:10.000000000Z");
	assert_string_equal(json_string_value(json_object_get(j, "Path")), "sh");
	assert_int_equal(json_array_size(json_object_get(j, "Args")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "Name")), "/web");
	assert_string_equal(json_string_value(json_object_get(j, "Driver")), "overlay2");
	assert_string_equal(json_string_value(json_object_get(j, "Image")), c.image_id.str);
	assert_string_equal(json_string_value(json_object_get(j, "HostsPath")),
			    "/var/lib/shoal/containers/aaaa/hosts");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "Config"), "Image")),
	    "shoal-demo:latest");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "Config"), "Hostname")),
	    "aaaaaaaaaaaa");
	assert_non_null(json_object_get(json_object_get(j, "HostConfig"), "NetworkMode"));
	json_decref(j);

	/* With a check: Health with its log. */
	c.state = CTR_RUNNING;
	c.started_ns = T0;
	c.has_health = true;
	c.health = HEALTH_UNHEALTHY;
	c.health_failing_streak = 2;
	c.n_health_log = 1;
	c.health_log[0].start_ns = T0 + SEC;
	c.health_log[0].end_ns = T0 + SEC + 5;
	c.health_log[0].exit_code = 1;
	strcpy(c.health_log[0].output, "no\n");
	j = api_container_inspect(&c);
	assert_non_null(j);
	st = json_object_get(json_object_get(j, "State"), "Health");
	assert_string_equal(json_string_value(json_object_get(st, "Status")), "unhealthy");
	assert_int_equal(json_integer_value(json_object_get(st, "FailingStreak")), 2);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(st, "Log"), 0), "ExitCode")),
			 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "State"), "Pid")),
			 4242);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(status_text_is_dockers),
	    cmocka_unit_test(summary_fields),
	    cmocka_unit_test(inspect_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
