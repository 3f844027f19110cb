/* Unit tests of runtime/ctr_spec.c and runtime/bundle.c: create bodies, process, users,
 * config.json, runc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fsutil.h"
#include "runtime/bundle.h"
#include "runtime/ctr_spec.h"
#include "runtime/oci.h"

#define PATHF(buf, ...) assert_true((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) < sizeof(buf))

static json_t *load(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);

	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	return j;
}

/* Parse @body; expect @code and, when failing, @msg inside the error. */
static void expect_parse(const char *body, int code, const char *msg)
{
	struct ctr_spec s;
	struct shoal_err err = {{0}};
	json_t *j = load(body);
	int rv = ctr_spec_parse(j, &s, &err);

	if (rv != code || (msg != NULL && strstr(err.msg, msg) == NULL))
		fail_msg("body %s: got %d '%s', want %d '%s'", body, rv, err.msg, code,
			 msg != NULL ? msg : "");
	if (rv == 0)
		ctr_spec_free(&s);
	else
		assert_null(s.image);
	json_decref(j);
}

/* A body as `docker run -d --name x ...` sends it, nulls included. */
static const char *cli_body =
    "{\"Hostname\":\"web1\",\"Domainname\":\"\",\"User\":\"app:staff\",\"AttachStdin\":false,"
    "\"AttachStdout\":false,\"AttachStderr\":false,\"ExposedPorts\":{\"80/tcp\":{}},"
    "\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":[\"A=1\",\"B=x=y\"],"
    "\"Cmd\":[\"sh\",\"-c\",\"echo hi\"],\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],"
    "\"Interval\":5000000000,\"Timeout\":1000000000,\"StartPeriod\":0,\"Retries\":2},"
    "\"Image\":\"busybox:latest\",\"Volumes\":{},\"WorkingDir\":\"/srv\",\"Entrypoint\":null,"
    "\"OnBuild\":null,\"Labels\":{\"z\":\"1\",\"a\":\"2\"},\"StopSignal\":\"SIGQUIT\","
    "\"StopTimeout\":20,\"HostConfig\":{\"Binds\":[\"/data:/data:ro\",\"/logs:/var/log\"],"
    "\"ContainerIDFile\":\"\",\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
    "\"10m\",\"max-file\":\"3\"}},\"NetworkMode\":\"default\",\"PortBindings\":{},"
    "\"RestartPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":false,"
    "\"VolumeDriver\":\"\",\"VolumesFrom\":null,\"CapAdd\":[\"net_admin\"],\"CapDrop\":"
    "[\"CAP_MKNOD\"],\"CgroupnsMode\":\"\",\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],"
    "\"ExtraHosts\":null,\"GroupAdd\":null,\"IpcMode\":\"\",\"Cgroup\":\"\",\"Links\":null,"
    "\"OomScoreAdj\":0,\"PidMode\":\"\",\"Privileged\":false,\"PublishAllPorts\":false,"
    "\"ReadonlyRootfs\":true,\"SecurityOpt\":null,\"UTSMode\":\"\",\"UsernsMode\":\"\","
    "\"ShmSize\":0,\"ConsoleSize\":[0,0],\"Isolation\":\"\",\"CpuShares\":512,"
    "\"Memory\":67108864,\"NanoCpus\":1500000000,\"CgroupParent\":\"\",\"BlkioWeight\":0,"
    "\"BlkioWeightDevice\":[],\"CpuPeriod\":0,\"CpuQuota\":0,\"CpusetCpus\":\"\","
    "\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceRequests\":null,\"MemorySwap\":0,"
    "\"MemorySwappiness\":null,\"OomKillDisable\":false,\"PidsLimit\":100,"
    "\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1024,\"Hard\":2048}],\"Mounts\":[{\"Type\":"
    "\"bind\",\"Source\":\"/etc/ssl\",\"Target\":\"/etc/ssl\",\"ReadOnly\":true}],"
    "\"MaskedPaths\":null,\"ReadonlyPaths\":null,\"Init\":null},"
    "\"NetworkingConfig\":{\"EndpointsConfig\":{}}}";

static void test_parse_cli_body(void **state)
{
	struct ctr_spec s;
	struct shoal_err err = {{0}};
	json_t *j = load(cli_body);

	(void)state;
	assert_int_equal(ctr_spec_parse(j, &s, &err), 0);
	assert_null(s.name);
	assert_string_equal(s.image, "busybox:latest");
	assert_false(s.entrypoint_set);
	assert_int_equal(s.cmd.n, 3);
	assert_string_equal(s.cmd.items[2], "echo hi");
	assert_int_equal(s.env.n, 2);
	assert_string_equal(s.env.items[1], "B=x=y");
	assert_string_equal(s.workdir, "/srv");
	assert_string_equal(s.user, "app:staff");
	assert_string_equal(s.hostname, "web1");
	assert_int_equal(s.n_labels, 2);
	assert_string_equal(s.labels[0].key, "a"); /* sorted */
	assert_string_equal(s.stop_signal, "SIGQUIT");
	assert_int_equal(s.stop_timeout, 20);
	assert_int_equal(s.health.test.n, 2);
	assert_int_equal(s.health.interval_ns, 5000000000);
	assert_int_equal(s.health.retries, 2);
	assert_int_equal(s.n_mounts, 3);
	assert_string_equal(s.mounts[0].source, "/data");
	assert_true(s.mounts[0].readonly);
	assert_string_equal(s.mounts[1].target, "/var/log");
	assert_false(s.mounts[1].readonly);
	assert_string_equal(s.mounts[2].target, "/etc/ssl");
	assert_true(s.mounts[2].readonly);
	assert_true(s.readonly_rootfs);
	assert_int_equal(s.memory, 64 << 20);
	assert_int_equal(s.nano_cpus, 1500000000);
	assert_int_equal(s.cpu_shares, 512);
	assert_int_equal(s.pids_limit, 100);
	assert_int_equal(s.n_rlimits, 1);
	assert_string_equal(s.rlimits[0].type, "RLIMIT_NOFILE");
	assert_int_equal(s.rlimits[0].soft, 1024);
	assert_int_equal(s.rlimits[0].hard, 2048);
	assert_string_equal(s.cap_add.items[0], "CAP_NET_ADMIN");
	assert_string_equal(s.cap_drop.items[0], "CAP_MKNOD");
	assert_false(s.network_none);
	assert_int_equal(s.log_max_size, 10 << 20);
	assert_int_equal(s.log_max_file, 3);
	ctr_spec_free(&s);
	json_decref(j);
}

static void test_parse_minimal_and_forms(void **state)
{
	struct ctr_spec s;
	json_t *j;

	(void)state;
	j = load("{\"Image\":\"x\",\"Entrypoint\":\"/bin/sh\",\"Cmd\":\"ls\","
		 "\"HostConfig\":{\"NetworkMode\":\"none\",\"LogConfig\":{\"Type\":\"\","
		 "\"Config\":{\"max-size\":\"100\"}},\"Ulimits\":[{\"Name\":\"core\",\"Soft\":-1,"
		 "\"Hard\":-1}],\"CapAdd\":[\"ALL\"]}}");
	assert_int_equal(ctr_spec_parse(j, &s, NULL), 0);
	json_decref(j);
	assert_true(s.entrypoint_set);
	assert_int_equal(s.entrypoint.n, 1);
	assert_string_equal(s.entrypoint.items[0], "/bin/sh");
	assert_string_equal(s.cmd.items[0], "ls");
	assert_true(s.network_none);
	assert_int_equal(s.log_max_size, 100);
	assert_int_equal(s.stop_timeout, -1);
	assert_int_equal(s.rlimits[0].soft, UINT64_MAX);
	assert_string_equal(s.cap_add.items[0], "ALL");
	assert_null(s.workdir);
	ctr_spec_free(&s);

	/* --entrypoint "" */
	j = load("{\"Image\":\"x\",\"Entrypoint\":[\"\"],\"HostConfig\":{\"LogConfig\":"
		 "{\"Config\":{\"max-size\":\"1k\"}}}}");
	assert_int_equal(ctr_spec_parse(j, &s, NULL), 0);
	json_decref(j);
	assert_true(s.entrypoint_set);
	assert_int_equal(s.entrypoint.n, 0);
	assert_int_equal(s.log_max_size, 1024);
	ctr_spec_free(&s);

	expect_parse("{\"Image\":\"x\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-size\":"
		     "\"2g\"}}}}",
		     0, NULL);
	expect_parse("{\"Image\":\"x\",\"HostConfig\":{\"Memory\":6291456,\"PidsLimit\":-1}}", 0,
		     NULL);
	expect_parse("{\"Image\":\"x\",\"StopSignal\":\"term\"}", 0, NULL);
	expect_parse("{\"Image\":\"x\",\"StopSignal\":\"9\"}", 0, NULL);
	expect_parse("{\"Image\":\"x\",\"HostConfig\":null,\"Cmd\":null,\"Labels\":null}", 0, NULL);
}

static void test_parse_refusals(void **state)
{
	static const struct {
		const char *body, *msg;
		int code;
	} cases[] = {
	    {"[]", "must be a JSON object", SHOAL_EINVAL},
	    {"{}", "invalid Image", SHOAL_EINVAL},
	    {"{\"Image\":\"\"}", "invalid Image", SHOAL_EINVAL},
	    {"{\"Image\":5}", "invalid Image: must be a string", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Cmd\":[1]}", "invalid Cmd[0]: must be a string", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Cmd\":{}}", "invalid Cmd: must be an array", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Entrypoint\":7}", "invalid Entrypoint", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Env\":[\"NOEQ\"]}", "invalid Env[0]", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Env\":[\"=v\"]}", "invalid Env[0]", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"WorkingDir\":\"rel\"}", "invalid WorkingDir", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"User\":\"a:\"}", "invalid User", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"User\":7}", "invalid User: must be a string", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Hostname\":\"a b\"}", "invalid Hostname", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Labels\":[]}", "invalid Labels: must be an object", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Labels\":{\"k\":1}}", "invalid Labels.k", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"StopSignal\":\"SIGFOO\"}", "invalid StopSignal", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"StopSignal\":\"65\"}", "invalid StopSignal", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"StopTimeout\":-5}", "invalid StopTimeout", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"StopTimeout\":\"5\"}", "invalid StopTimeout", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Healthcheck\":{\"Test\":[\"BOGUS\"]}}", "invalid Healthcheck.Test",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Healthcheck\":{\"Test\":[\"CMD-SHELL\"]}}",
	     "invalid Healthcheck.Test", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Healthcheck\":{\"Interval\":5}}", "invalid Healthcheck.Interval",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Healthcheck\":{\"Retries\":-1}}", "invalid Healthcheck.Retries",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Tty\":true}", "shoal does not support Tty", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"Volumes\":{\"/v\":{}}}", "shoal does not support Volumes",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":[]}", "invalid HostConfig: must be an object",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Privileged\":true}}",
	     "shoal does not support HostConfig.Privileged", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Devices\":[{\"PathOnHost\":\"/dev/sda\"}]}}",
	     "shoal does not support HostConfig.Devices", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"PidMode\":\"host\"}}",
	     "shoal does not support HostConfig.PidMode", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"SecurityOpt\":[\"seccomp=unconfined\"]}}",
	     "shoal does not support HostConfig.SecurityOpt", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"IpcMode\":\"host\"}}",
	     "shoal does not support HostConfig.IpcMode 'host'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"NetworkMode\":\"host\"}}",
	     "shoal does not support HostConfig.NetworkMode 'host'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\"}}}",
	     "shoal does not support HostConfig.RestartPolicy 'always'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"ShmSize\":1024}}",
	     "shoal does not support HostConfig.ShmSize", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Memory\":-1}}",
	     "invalid HostConfig.Memory: must be a non-negative integer", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Memory\":\"1g\"}}",
	     "invalid HostConfig.Memory: must be a non-negative integer", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Memory\":1048576}}",
	     "Minimum memory limit allowed is 6MB", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Memory\":67108864,\"MemorySwap\":-1}}",
	     "shoal does not support HostConfig.MemorySwap", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"NanoCpus\":1000}}", "invalid HostConfig.NanoCpus",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"NanoCpus\":1.5}}", "invalid HostConfig.NanoCpus",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"CpuShares\":1}}", "invalid HostConfig.CpuShares",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"PidsLimit\":-2}}", "invalid HostConfig.PidsLimit",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"/a\"]}}", "invalid HostConfig.Binds[0]",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"vol:/a\"]}}",
	     "invalid HostConfig.Binds[0]: source 'vol' must be an absolute host path",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"/a:rel\"]}}",
	     "invalid HostConfig.Binds[0]: target", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"/a:/\"]}}", "target can't be '/'",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"/a:/b/../c\"]}}", "without '..'",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"/a:/b:z\"]}}", "must be ro or rw",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Binds\":[\"/a:/b\",\"/c:/b\"]}}",
	     "duplicate mount point /b", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\",\"Source\":\"v\","
	     "\"Target\":\"/v\"}]}}",
	     "shoal does not support HostConfig.Mounts[0].Type 'volume'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Target\":\"/"
	     "v\"}]}}",
	     "invalid HostConfig.Mounts[0]: Source is required", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/s\","
	     "\"Target\":\"/v\",\"ReadOnly\":1}]}}",
	     "invalid HostConfig.Mounts[0].ReadOnly", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":10,"
	     "\"Hard\":5}]}}",
	     "soft limit 10 is greater than hard limit 5", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"bogus\",\"Soft\":1,"
	     "\"Hard\":1}]}}",
	     "unknown ulimit 'bogus'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1}]}}",
	     "HostConfig.Ulimits[0].Hard", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"CapAdd\":[\"CAP_FOO\"]}}",
	     "invalid HostConfig.CapAdd[0]: unknown capability 'CAP_FOO'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"CapDrop\":[5]}}", "invalid HostConfig.CapDrop[0]",
	     SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"LogConfig\":{\"Type\":\"syslog\"}}}",
	     "shoal does not support HostConfig.LogConfig.Type 'syslog'", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-size\":\"10x\"}}}}",
	     "invalid HostConfig.LogConfig.Config.max-size", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-size\":\"0\"}}}}",
	     "invalid HostConfig.LogConfig.Config.max-size", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-file\":\"0\"}}}}",
	     "invalid HostConfig.LogConfig.Config.max-file", SHOAL_EINVAL},
	    {"{\"Image\":\"x\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"compress\":\"true\"}}}"
	     "}",
	     "shoal does not support log option 'compress'", SHOAL_EINVAL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_parse(cases[i].body, cases[i].code, cases[i].msg);
}

static void test_parse_limits(void **state)
{
	struct ctr_spec s;
	struct shoal_err err;
	json_t *j = load("{\"Image\":\"x\"}"), *env = json_array();
	char *big = malloc(CTR_SPEC_MAX_STRING + 2);
	int rv;

	(void)state;
	for (unsigned i = 0; i <= CTR_SPEC_MAX_ITEMS; i++)
		json_array_append_new(env, json_string("K=V"));
	json_object_set_new(j, "Env", env);
	assert_int_equal(ctr_spec_parse(j, &s, &err), SHOAL_ETOOBIG);
	assert_non_null(strstr(err.msg, "invalid Env"));
	json_array_remove(env, 0);
	assert_int_equal(ctr_spec_parse(j, &s, &err), 0);
	ctr_spec_free(&s);

	memset(big, 'a', CTR_SPEC_MAX_STRING + 1);
	big[CTR_SPEC_MAX_STRING + 1] = '\0';
	json_object_set_new(j, "User", json_string(big));
	rv = ctr_spec_parse(j, &s, &err);
	assert_int_equal(rv, SHOAL_ETOOBIG);
	assert_non_null(strstr(err.msg, "invalid User"));
	json_object_del(j, "User");

	/* A whole body over 1 MiB. */
	big[CTR_SPEC_MAX_STRING] = '\0';
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof(k), "X%d", i);
		json_object_set_new(j, k, json_string(big));
	}
	assert_int_equal(ctr_spec_parse(j, &s, &err), SHOAL_ETOOBIG);
	assert_non_null(strstr(err.msg, "invalid body"));
	free(big);
	json_decref(j);

	/* An embedded NUL. */
	j = json_object();
	json_object_set_new(j, "Image", json_stringn("a\0b", 3));
	assert_int_equal(ctr_spec_parse(j, &s, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
	json_decref(j);
}

static void assert_specs_equal(const struct ctr_spec *a, const struct ctr_spec *b)
{
	json_t *ja = ctr_spec_to_json(a), *jb = ctr_spec_to_json(b);

	assert_non_null(ja);
	assert_true(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
}

static void test_round_trip(void **state)
{
	const char *bodies[] = {
	    cli_body,
	    "{\"Image\":\"x\"}",
	    "{\"Image\":\"x\",\"Entrypoint\":[\"\"],\"Cmd\":[\"a\",\"\"],\"HostConfig\":"
	    "{\"NetworkMode\":\"none\",\"Ulimits\":[{\"Name\":\"core\",\"Soft\":-1,\"Hard\":-1},"
	    "{\"Name\":\"nproc\",\"Soft\":0,\"Hard\":7}],\"PidsLimit\":-1,\"CapDrop\":[\"ALL\"],"
	    "\"CapAdd\":[\"chown\"]},\"Healthcheck\":{\"Test\":[\"NONE\"]},\"StopTimeout\":0}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct ctr_spec s1, s2, s3;
		json_t *j = load(bodies[i]), *back;
		char *dump;

		assert_int_equal(ctr_spec_parse(j, &s1, NULL), 0);
		back = ctr_spec_to_json(&s1);
		assert_non_null(back);
		assert_int_equal(ctr_spec_parse(back, &s2, NULL), 0);
		/* Field by field where it matters, then the whole through JSON. */
		assert_int_equal(s1.n_mounts, s2.n_mounts);
		for (size_t k = 0; k < s1.n_mounts; k++) {
			assert_string_equal(s1.mounts[k].source, s2.mounts[k].source);
			assert_string_equal(s1.mounts[k].target, s2.mounts[k].target);
			assert_int_equal(s1.mounts[k].readonly, s2.mounts[k].readonly);
		}
		assert_int_equal(s1.entrypoint_set, s2.entrypoint_set);
		assert_int_equal(s1.entrypoint.n, s2.entrypoint.n);
		assert_int_equal(s1.cmd.n, s2.cmd.n);
		assert_int_equal(s1.stop_timeout, s2.stop_timeout);
		assert_int_equal(s1.network_none, s2.network_none);
		assert_int_equal(s1.log_max_size, s2.log_max_size);
		assert_int_equal(s1.log_max_file, s2.log_max_file);
		assert_int_equal(s1.pids_limit, s2.pids_limit);
		assert_int_equal(s1.n_rlimits, s2.n_rlimits);
		for (size_t k = 0; k < s1.n_rlimits; k++) {
			assert_int_equal(s1.rlimits[k].soft, s2.rlimits[k].soft);
			assert_int_equal(s1.rlimits[k].hard, s2.rlimits[k].hard);
		}
		assert_specs_equal(&s1, &s2);
		/* Copy, name included. */
		s1.name = strdup("web");
		assert_int_equal(ctr_spec_copy(&s1, &s3, NULL), 0);
		assert_string_equal(s3.name, "web");
		assert_specs_equal(&s1, &s3);
		dump = json_dumps(back, JSON_SORT_KEYS);
		assert_non_null(dump);
		free(dump);
		ctr_spec_free(&s1);
		ctr_spec_free(&s2);
		ctr_spec_free(&s3);
		json_decref(back);
		json_decref(j);
	}
}

static void test_signal_parse(void **state)
{
	(void)state;
	assert_int_equal(ctr_signal_parse("SIGTERM"), 15);
	assert_int_equal(ctr_signal_parse("TERM"), 15);
	assert_int_equal(ctr_signal_parse("sigkill"), 9);
	assert_int_equal(ctr_signal_parse("15"), 15);
	assert_int_equal(ctr_signal_parse("64"), 64);
	assert_int_equal(ctr_signal_parse("SIGRTMIN+3"), 37);
	assert_int_equal(ctr_signal_parse("RTMAX"), 64);
	assert_int_equal(ctr_signal_parse("0"), -1);
	assert_int_equal(ctr_signal_parse("65"), -1);
	assert_int_equal(ctr_signal_parse("-1"), -1);
	assert_int_equal(ctr_signal_parse(""), -1);
	assert_int_equal(ctr_signal_parse("SIG"), -1);
	assert_int_equal(ctr_signal_parse("FOO"), -1);
	assert_int_equal(ctr_signal_parse(NULL), -1);
}

/* ---- process resolution ---- */

static void set_list(struct oci_strlist *l, const char *const *items, size_t n)
{
	l->items = calloc(n + 1, sizeof(char *));
	l->n = n;
	for (size_t i = 0; i < n; i++)
		l->items[i] = strdup(items[i]);
}

#define SET_LIST(l, ...)                                     \
	do {                                                 \
		const char *const v_[] = {__VA_ARGS__};      \
		set_list(l, v_, sizeof(v_) / sizeof(v_[0])); \
	} while (0)

static void args_are(const struct bundle_process *p, const char *joined)
{
	char buf[512] = "";

	for (size_t i = 0; i < p->args.n; i++) {
		if (i > 0)
			strcat(buf, " ");
		strcat(buf, p->args.items[i]);
	}
	assert_string_equal(buf, joined);
}

static void test_process_resolve(void **state)
{
	struct oci_config img = {0};
	struct ctr_spec s = {0};
	struct bundle_process p;
	struct shoal_err err;

	(void)state;
	SET_LIST(&img.entrypoint, "/entry");
	SET_LIST(&img.cmd, "icmd", "iarg");
	SET_LIST(&img.env, "PATH=/img/bin", "A=img", "B=img");
	img.working_dir = strdup("app");
	img.user = strdup("nobody");
	s.stop_timeout = -1;

	/* Nothing in the spec: the image's. */
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), 0);
	args_are(&p, "/entry icmd iarg");
	assert_string_equal(p.cwd, "/app");
	assert_string_equal(p.user, "nobody");
	assert_int_equal(p.env.n, 3);
	assert_string_equal(p.env.items[0], "PATH=/img/bin");
	bundle_process_free(&p);

	/* Spec Cmd alone replaces the image's Cmd, the Entrypoint stays. */
	SET_LIST(&s.cmd, "scmd");
	SET_LIST(&s.env, "B=spec", "C=spec");
	s.hostname = strdup("h1");
	s.workdir = strdup("/w");
	s.user = strdup("1000:1000");
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), 0);
	args_are(&p, "/entry scmd");
	assert_string_equal(p.cwd, "/w");
	assert_string_equal(p.user, "1000:1000");
	assert_int_equal(p.env.n, 5);
	assert_string_equal(p.env.items[0], "HOSTNAME=h1");
	assert_string_equal(p.env.items[1], "PATH=/img/bin");
	assert_string_equal(p.env.items[2], "A=img");
	assert_string_equal(p.env.items[3], "B=spec");
	assert_string_equal(p.env.items[4], "C=spec");
	bundle_process_free(&p);

	/* Spec Entrypoint with Cmd: both the spec's. */
	SET_LIST(&s.entrypoint, "/sentry");
	s.entrypoint_set = true;
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), 0);
	args_are(&p, "/sentry scmd");
	bundle_process_free(&p);

	/* Spec Entrypoint alone drops the image's Cmd. */
	ctr_spec_free(&s);
	memset(&s, 0, sizeof(s));
	SET_LIST(&s.entrypoint, "/sentry");
	s.entrypoint_set = true;
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), 0);
	args_are(&p, "/sentry");
	bundle_process_free(&p);

	/* Empty Entrypoint ("" given) with Cmd: just the Cmd. */
	ctr_spec_free(&s);
	memset(&s, 0, sizeof(s));
	s.entrypoint_set = true;
	SET_LIST(&s.cmd, "/bin/true");
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), 0);
	args_are(&p, "/bin/true");
	bundle_process_free(&p);

	/* Empty Entrypoint, no Cmd: nothing to run. */
	ctr_spec_free(&s);
	memset(&s, 0, sizeof(s));
	s.entrypoint_set = true;
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "no command specified"));

	/* An image with nothing: PATH default, cwd /, user "". */
	oci_config_free(&img);
	memset(&img, 0, sizeof(img));
	ctr_spec_free(&s);
	memset(&s, 0, sizeof(s));
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), SHOAL_EINVAL);
	SET_LIST(&s.cmd, "x");
	assert_int_equal(bundle_process_resolve(&s, &img, &p, &err), 0);
	assert_string_equal(p.cwd, "/");
	assert_string_equal(p.user, "");
	assert_int_equal(p.env.n, 1);
	assert_string_equal(p.env.items[0],
			    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	bundle_process_free(&p);
	ctr_spec_free(&s);
}

/* ---- users ---- */

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/shoal-test-bundle-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void test_user_resolve(void **state)
{
	char *dir = make_tmpdir();
	char root[256], p[320];
	uint32_t uid, gid, *extra;
	size_t n;
	struct shoal_err err;

	(void)state;
	PATHF(root, "%s/rootfs", dir);
	PATHF(p, "%s/etc", root);
	assert_int_equal(fs_mkdir_p(p, 0755, NULL), 0);
	PATHF(p, "%s/etc/passwd", root);
	write_file(p, "# comment\nroot:x:0:0:root:/root:/bin/sh\nbroken line\n"
		      "app:x:1000:1001::/home/app:/bin/sh\nweb:x:33:33::/:/bin/false");
	PATHF(p, "%s/etc/group", root);
	write_file(p, "root:x:0:\nstaff:x:50:app,web\napp:x:1001:\naudio:x:29:web,app\n"
		      "nobody:x:65534:\n");

	assert_int_equal(bundle_user_resolve(root, "", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_int_equal(n, 0);
	free(extra);

	assert_int_equal(bundle_user_resolve(root, "app", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 1000);
	assert_int_equal(gid, 1001);
	assert_int_equal(n, 2);
	assert_int_equal(extra[0], 50);
	assert_int_equal(extra[1], 29);
	free(extra);

	/* A numeric uid in passwd gets its group. */
	assert_int_equal(bundle_user_resolve(root, "1000", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(gid, 1001);
	free(extra);
	/* Not in passwd: gid 0. */
	assert_int_equal(bundle_user_resolve(root, "4242", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 4242);
	assert_int_equal(gid, 0);
	assert_int_equal(n, 0);
	free(extra);
	/* Explicit group: by name, by number; no supplementary groups then. */
	assert_int_equal(bundle_user_resolve(root, "app:staff", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 1000);
	assert_int_equal(gid, 50);
	assert_int_equal(n, 0);
	free(extra);
	assert_int_equal(bundle_user_resolve(root, "web:777", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 33);
	assert_int_equal(gid, 777);
	free(extra);

	assert_int_equal(bundle_user_resolve(root, "ghost", &uid, &gid, &extra, &n, &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg,
			    "unable to find user ghost: no matching entries in passwd file");
	assert_int_equal(bundle_user_resolve(root, "app:ghosts", &uid, &gid, &extra, &n, &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg,
			    "unable to find group ghosts: no matching entries in group file");
	assert_int_equal(bundle_user_resolve(root, "99999999999", &uid, &gid, &extra, &n, &err),
			 SHOAL_EINVAL);

	/* /etc/passwd a symlink out of the rootfs: resolved inside it, never outside. */
	PATHF(p, "%s/outside", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	PATHF(p, "%s/outside/passwd", dir);
	write_file(p, "evil:x:666:666::/:/bin/sh\n");
	PATHF(p, "%s/etc/passwd", root);
	assert_int_equal(unlink(p), 0);
	{
		char target[320];
		PATHF(target, "%s/outside/passwd", dir);
		assert_int_equal(symlink(target, p), 0);
	}
	assert_int_equal(bundle_user_resolve(root, "evil", &uid, &gid, &extra, &n, &err),
			 SHOAL_EINVAL);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../../outside/passwd", p), 0);
	assert_int_equal(bundle_user_resolve(root, "evil", &uid, &gid, &extra, &n, &err),
			 SHOAL_EINVAL);
	/* A symlink that stays inside is followed, inside. */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc/real-passwd", p), 0);
	PATHF(p, "%s/etc/real-passwd", root);
	write_file(p, "inside:x:5:6::/:/bin/sh\n");
	assert_int_equal(bundle_user_resolve(root, "inside", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 5);
	assert_int_equal(gid, 6);
	free(extra);
	/* No /etc at all: numbers only. */
	PATHF(p, "%s/etc", root);
	assert_int_equal(fs_rm_rf(p, NULL), 0);
	assert_int_equal(bundle_user_resolve(root, "12:34", &uid, &gid, &extra, &n, &err), 0);
	assert_int_equal(uid, 12);
	assert_int_equal(gid, 34);
	free(extra);
	assert_int_equal(bundle_user_resolve(root, "app", &uid, &gid, &extra, &n, &err),
			 SHOAL_EINVAL);

	assert_int_equal(fs_rm_rf(dir, NULL), 0);
	free(dir);
}

/* ---- config.json ---- */

static bool array_has(const json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) if (json_is_string(v) &&
					strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

static const json_t *mount_at(const json_t *cfg, const char *dest)
{
	size_t i;
	json_t *m;

	json_array_foreach(json_object_get(cfg, "mounts"), i,
			   m) if (strcmp(json_string_value(json_object_get(m, "destination")),
					 dest) == 0) return m;
	return NULL;
}

static json_t *config_for(const char *body, const char *rootfs, const char *netns)
{
	struct ctr_spec s;
	struct oci_config img = {0};
	struct bundle_params params = {
	    .id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    .rootfs = rootfs,
	    .cgroups_path = "/shoal/0123456789ab",
	    .netns_path = netns,
	    .resolv_conf = "/tmp/resolv.conf",
	};
	struct shoal_err err = {{0}};
	json_t *j = load(body), *cfg = NULL;

	SET_LIST(&img.cmd, "/bin/sh");
	SET_LIST(&img.env, "IMG=1");
	assert_int_equal(ctr_spec_parse(j, &s, &err), 0);
	if (bundle_config(&s, &img, &params, &cfg, &err) != 0)
		fail_msg("bundle_config: %s", err.msg);
	ctr_spec_free(&s);
	oci_config_free(&img);
	json_decref(j);
	return cfg;
}

static void test_config_defaults(void **state)
{
	char *dir = make_tmpdir();
	json_t *cfg = config_for("{\"Image\":\"x\"}", dir, NULL);
	const json_t *proc = json_object_get(cfg, "process");
	const json_t *caps = json_object_get(proc, "capabilities");
	const json_t *lin = json_object_get(cfg, "linux");
	const json_t *res = json_object_get(lin, "resources");
	const json_t *m, *rl, *ns;

	(void)state;
	assert_string_equal(json_string_value(json_object_get(cfg, "ociVersion")), "1.0.2");
	assert_string_equal(json_string_value(json_object_get(cfg, "hostname")), "0123456789ab");
	assert_true(array_has(json_object_get(proc, "env"), "HOSTNAME=0123456789ab"));
	assert_true(array_has(json_object_get(proc, "env"), "IMG=1"));
	assert_true(array_has(json_object_get(proc, "env"),
			      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")),
			 0);
	assert_true(json_is_false(json_object_get(proc, "terminal")));
	assert_true(json_is_false(json_object_get(proc, "noNewPrivileges")));
	for (size_t i = 0; bundle_default_caps[i] != NULL; i++) {
		assert_true(array_has(json_object_get(caps, "bounding"), bundle_default_caps[i]));
		assert_true(array_has(json_object_get(caps, "effective"), bundle_default_caps[i]));
		assert_true(array_has(json_object_get(caps, "permitted"), bundle_default_caps[i]));
	}
	assert_int_equal(json_array_size(json_object_get(caps, "bounding")), 14);
	assert_null(json_object_get(caps, "inheritable"));
	assert_null(json_object_get(caps, "ambient"));
	rl = json_array_get(json_object_get(proc, "rlimits"), 0);
	assert_string_equal(json_string_value(json_object_get(rl, "type")), "RLIMIT_NOFILE");
	assert_int_equal(json_integer_value(json_object_get(rl, "soft")),
			 json_integer_value(json_object_get(rl, "hard")));
	assert_true(json_integer_value(json_object_get(rl, "soft")) <= 1048576);
	assert_true(json_integer_value(json_object_get(rl, "soft")) >= 1024);
	assert_true(json_is_false(json_object_get(json_object_get(cfg, "root"), "readonly")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(cfg, "root"), "path")), dir);

	m = mount_at(cfg, "/sys/fs/cgroup");
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "type")), "cgroup");
	assert_true(array_has(json_object_get(m, "options"), "ro"));
	m = mount_at(cfg, "/dev/shm");
	assert_true(array_has(json_object_get(m, "options"), "size=67108864"));
	assert_true(array_has(json_object_get(mount_at(cfg, "/sys"), "options"), "ro"));
	assert_non_null(mount_at(cfg, "/proc"));
	assert_non_null(mount_at(cfg, "/dev/pts"));
	assert_non_null(mount_at(cfg, "/dev/mqueue"));
	m = mount_at(cfg, "/etc/resolv.conf");
	assert_string_equal(json_string_value(json_object_get(m, "source")), "/tmp/resolv.conf");
	assert_true(array_has(json_object_get(m, "options"), "ro"));
	assert_null(mount_at(cfg, "/etc/hosts"));

	ns = json_object_get(lin, "namespaces");
	assert_int_equal(json_array_size(ns), 5);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ns, 4), "type")),
			    "network");
	assert_null(json_object_get(json_array_get(ns, 4), "path"));
	assert_string_equal(json_string_value(json_object_get(lin, "cgroupsPath")),
			    "/shoal/0123456789ab");
	assert_true(array_has(json_object_get(lin, "maskedPaths"), "/proc/kcore"));
	assert_true(array_has(json_object_get(lin, "maskedPaths"), "/sys/firmware"));
	assert_int_equal(json_array_size(json_object_get(lin, "maskedPaths")), 10);
	assert_true(array_has(json_object_get(lin, "readonlyPaths"), "/proc/sysrq-trigger"));
	assert_int_equal(json_array_size(json_object_get(lin, "readonlyPaths")), 5);
	assert_null(json_object_get(lin, "devices"));
	assert_int_equal(json_array_size(json_object_get(res, "devices")), 13);
	assert_true(json_is_false(
	    json_object_get(json_array_get(json_object_get(res, "devices"), 0), "allow")));
	assert_null(json_object_get(res, "memory"));
	assert_null(json_object_get(res, "cpu"));
	assert_null(json_object_get(res, "pids"));
	json_decref(cfg);
	rmdir(dir);
	free(dir);
}

static void test_config_from_spec(void **state)
{
	char *dir = make_tmpdir();
	char p[320];
	json_t *cfg;
	const json_t *proc, *caps, *res, *m, *rl, *ns, *user;

	(void)state;
	PATHF(p, "%s/etc", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	PATHF(p, "%s/etc/passwd", dir);
	write_file(p, "app:x:1000:1001::/:/bin/sh\n");
	PATHF(p, "%s/etc/group", dir);
	write_file(p, "extra:x:77:app\n");
	cfg = config_for("{\"Image\":\"x\",\"User\":\"app\",\"Hostname\":\"h\",\"HostConfig\":{"
			 "\"CapAdd\":[\"NET_ADMIN\",\"sys_time\"],\"CapDrop\":[\"net_raw\"],"
			 "\"ReadonlyRootfs\":true,\"Memory\":6291456,\"NanoCpus\":500000000,"
			 "\"CpuShares\":256,\"PidsLimit\":50,\"Ulimits\":[{\"Name\":\"nproc\","
			 "\"Soft\":10,\"Hard\":20}],\"Binds\":[\"/a/b:/x/y:ro\",\"/c:/x\","
			 "\"/my/shm:/dev/shm\"]}}",
			 dir, "/run/netns/n1");
	proc = json_object_get(cfg, "process");
	caps = json_object_get(json_object_get(proc, "capabilities"), "bounding");
	assert_true(array_has(caps, "CAP_NET_ADMIN"));
	assert_true(array_has(caps, "CAP_SYS_TIME"));
	assert_false(array_has(caps, "CAP_NET_RAW"));
	assert_true(array_has(caps, "CAP_CHOWN"));
	assert_int_equal(json_array_size(caps), 15);
	user = json_object_get(proc, "user");
	assert_int_equal(json_integer_value(json_object_get(user, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(user, "gid")), 1001);
	assert_int_equal(
	    json_integer_value(json_array_get(json_object_get(user, "additionalGids"), 0)), 77);
	assert_string_equal(json_string_value(json_object_get(cfg, "hostname")), "h");
	assert_true(array_has(json_object_get(proc, "env"), "HOSTNAME=h"));
	/* The spec's rlimit, plus the default NOFILE. */
	assert_int_equal(json_array_size(json_object_get(proc, "rlimits")), 2);
	rl = json_array_get(json_object_get(proc, "rlimits"), 0);
	assert_string_equal(json_string_value(json_object_get(rl, "type")), "RLIMIT_NPROC");
	assert_int_equal(json_integer_value(json_object_get(rl, "soft")), 10);
	assert_int_equal(json_integer_value(json_object_get(rl, "hard")), 20);
	assert_true(json_is_true(json_object_get(json_object_get(cfg, "root"), "readonly")));

	res = json_object_get(json_object_get(cfg, "linux"), "resources");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(res, "memory"), "limit")), 6291456);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(res, "memory"), "swap")), 6291456);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "quota")),
			 50000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "period")),
			 100000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "shares")),
			 256);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "pids"), "limit")),
			 50);
	ns = json_array_get(json_object_get(json_object_get(cfg, "linux"), "namespaces"), 4);
	assert_string_equal(json_string_value(json_object_get(ns, "path")), "/run/netns/n1");

	/* Binds: rbind, ro when asked, parents first; /dev/shm replaces the default. */
	m = mount_at(cfg, "/x/y");
	assert_string_equal(json_string_value(json_object_get(m, "source")), "/a/b");
	assert_string_equal(json_string_value(json_object_get(m, "type")), "bind");
	assert_true(array_has(json_object_get(m, "options"), "rbind"));
	assert_true(array_has(json_object_get(m, "options"), "ro"));
	assert_false(array_has(json_object_get(mount_at(cfg, "/x"), "options"), "ro"));
	{
		const json_t *mounts = json_object_get(cfg, "mounts");
		size_t ix = 0, ixy = 0, i, shm = 0;
		json_t *v;
		json_array_foreach(mounts, i, v)
		{
			const char *d = json_string_value(json_object_get(v, "destination"));
			if (strcmp(d, "/x") == 0)
				ix = i;
			if (strcmp(d, "/x/y") == 0)
				ixy = i;
			if (strcmp(d, "/dev/shm") == 0)
				shm++;
		}
		assert_true(ix < ixy);
		assert_int_equal(shm, 1);
		assert_string_equal(
		    json_string_value(json_object_get(mount_at(cfg, "/dev/shm"), "source")),
		    "/my/shm");
	}
	json_decref(cfg);

	/* CapDrop ALL keeps only CapAdd; CapAdd ALL gives all but CapDrop. */
	cfg = config_for("{\"Image\":\"x\",\"HostConfig\":{\"CapDrop\":[\"ALL\"],\"CapAdd\":"
			 "[\"chown\"]}}",
			 dir, NULL);
	caps = json_object_get(json_object_get(json_object_get(cfg, "process"), "capabilities"),
			       "effective");
	assert_int_equal(json_array_size(caps), 1);
	assert_true(array_has(caps, "CAP_CHOWN"));
	json_decref(cfg);
	cfg = config_for("{\"Image\":\"x\",\"HostConfig\":{\"CapAdd\":[\"all\"],\"CapDrop\":"
			 "[\"SYS_ADMIN\"]}}",
			 dir, NULL);
	caps = json_object_get(json_object_get(json_object_get(cfg, "process"), "capabilities"),
			       "permitted");
	assert_true(array_has(caps, "CAP_SYS_MODULE"));
	assert_false(array_has(caps, "CAP_SYS_ADMIN"));
	json_decref(cfg);

	/* An unknown user is refused with Docker's words. */
	{
		struct ctr_spec s;
		struct oci_config img = {0};
		struct bundle_params params = {.id = "abc", .rootfs = dir, .cgroups_path = "/s"};
		struct shoal_err err;
		json_t *j = load("{\"Image\":\"x\",\"Cmd\":[\"x\"],\"User\":\"nobody\"}");
		assert_int_equal(ctr_spec_parse(j, &s, NULL), 0);
		assert_int_equal(bundle_config(&s, &img, &params, &cfg, &err), SHOAL_EINVAL);
		assert_string_equal(
		    err.msg, "unable to find user nobody: no matching entries in passwd file");
		assert_null(cfg);
		ctr_spec_free(&s);
		json_decref(j);
	}
	assert_int_equal(fs_rm_rf(dir, NULL), 0);
	free(dir);
}

/* ---- runc end to end, when runc is installed ---- */

#define RUNC	"/usr/sbin/runc"
#define BUSYBOX "/bin/busybox"

struct runc_fix {
	char *dir;
	char id[64];
};

/* Run a container from @body in a bundle with busybox; returns its exit status. */
static int runc_run(struct runc_fix *f, const char *body)
{
	char rootfs[256], p[320], cmd[1024];
	struct ctr_spec s;
	struct oci_config img = {0};
	struct bundle_params params = {.id = f->id, .cgroups_path = NULL};
	char cg[128];
	struct shoal_err err;
	json_t *j = load(body), *cfg;
	int st;

	PATHF(rootfs, "%s/rootfs", f->dir);
	PATHF(cg, "/shoal-test/%s", f->id);
	params.rootfs = rootfs;
	params.cgroups_path = cg;
	assert_int_equal(ctr_spec_parse(j, &s, &err), 0);
	assert_int_equal(bundle_config(&s, &img, &params, &cfg, &err), 0);
	PATHF(p, "%s/config.json", f->dir);
	assert_int_equal(json_dump_file(cfg, p, JSON_INDENT(1)), 0);
	json_decref(cfg);
	ctr_spec_free(&s);
	json_decref(j);
	PATHF(cmd, RUNC " run --bundle %s %s </dev/null >%s/out.log 2>&1", f->dir, f->id, f->dir);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static int runc_setup(void **state)
{
	struct runc_fix *f = calloc(1, sizeof(*f));
	char p[320], cmd[640];
	static int seq;

	if (access(RUNC, X_OK) != 0 || access(BUSYBOX, X_OK) != 0) {
		free(f);
		*state = NULL;
		return 0;
	}
	f->dir = make_tmpdir();
	snprintf(f->id, sizeof(f->id), "shoal-test-%d-%d", (int)getpid(), seq++);
	PATHF(p, "%s/rootfs/bin", f->dir);
	assert_int_equal(fs_mkdir_p(p, 0755, NULL), 0);
	PATHF(cmd, "cp " BUSYBOX " %s/rootfs/bin/busybox", f->dir);
	assert_int_equal(system(cmd), 0);
	*state = f;
	return 0;
}

static int runc_teardown(void **state)
{
	struct runc_fix *f = *state;
	char cmd[256];

	if (f == NULL)
		return 0;
	PATHF(cmd, RUNC " delete -f %s >/dev/null 2>&1", f->id);
	(void)system(cmd);
	/* runc leaves the empty parent cgroups; rmdir fails while others use them. */
	(void)system("rmdir /sys/fs/cgroup/*/shoal-test /sys/fs/cgroup/shoal-test 2>/dev/null");
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f);
	return 0;
}

static void show_log(struct runc_fix *f)
{
	char p[320], *log = NULL;
	size_t len;

	PATHF(p, "%s/out.log", f->dir);
	if (fs_read_all(p, 1 << 16, &log, &len, NULL) == 0)
		print_message("runc output: %s\n", log);
	free(log);
}

static void test_runc_true(void **state)
{
	struct runc_fix *f = *state;
	int rc;

	if (f == NULL)
		skip();
	rc = runc_run(f, "{\"Image\":\"x\",\"Cmd\":[\"/bin/busybox\",\"true\"],\"HostConfig\":{"
			 "\"ReadonlyRootfs\":true,\"PidsLimit\":20,\"NanoCpus\":500000000,"
			 "\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":100,\"Hard\":200}]}}");
	if (rc != 0)
		show_log(f);
	assert_int_equal(rc, 0);
}

static void test_runc_oom(void **state)
{
	struct runc_fix *f = *state;
	int rc;

	if (f == NULL)
		skip();
	rc = runc_run(f, "{\"Image\":\"x\",\"Cmd\":[\"/bin/busybox\",\"sh\",\"-c\","
			 "\"a=$(/bin/busybox head -c 64000000 /dev/zero | /bin/busybox tr "
			 "'\\\\0' x)\"],\"HostConfig\":{\"Memory\":6291456}}");
	if (rc != 137)
		show_log(f);
	assert_int_equal(rc, 137);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_cli_body),
	    cmocka_unit_test(test_parse_minimal_and_forms),
	    cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_signal_parse),
	    cmocka_unit_test(test_process_resolve),
	    cmocka_unit_test(test_user_resolve),
	    cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_config_from_spec),
	    cmocka_unit_test_setup_teardown(test_runc_true, runc_setup, runc_teardown),
	    cmocka_unit_test_setup_teardown(test_runc_oom, runc_setup, runc_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
