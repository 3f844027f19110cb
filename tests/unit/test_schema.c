/* Unit tests of node/schema and node/records: msgpack and JSON codecs derived from one table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "node/records.h"
#include "node/schema.h"

/* A record using the types the real records do not (yet): lists of structs,
 * nested through a schema that refers to itself, to reach the depth limit. */
enum proto { PROTO_TCP, PROTO_UDP };

static const struct schema_enum proto_names[] = {{PROTO_TCP, "tcp"}, {PROTO_UDP, "udp"}, {0, NULL}};

struct port {
	char *name;
	enum proto proto;
	uint64_t target;
	struct schema_strlist aliases;
	struct schema_list inner; /* of struct port */
};

struct svc {
	char *name;
	int64_t i;
	bool b;
	int64_t t;
	struct schema_map labels;
	struct schema_strlist env;
	struct schema_bytes key;
	struct schema_list ports; /* of struct port */
	uint64_t secret;
};

static const struct schema port_schema;

static const struct schema_field port_fields[] = {
    SCHEMA_STRING_FIELD(struct port, name, "Name", SCHEMA_OMITEMPTY),
    SCHEMA_ENUM_FIELD(struct port, proto, "Protocol", 0, proto_names),
    SCHEMA_U64_FIELD(struct port, target, "Target", 0),
    SCHEMA_STRLIST_FIELD(struct port, aliases, "Aliases", SCHEMA_OMITEMPTY),
    SCHEMA_LIST_FIELD(struct port, inner, "Inner", SCHEMA_OMITEMPTY, &port_schema),
};

static const struct schema port_schema = {"Port", sizeof(struct port), port_fields,
					  ARRAY_SIZE(port_fields)};

static const struct schema_field svc_fields[] = {
    SCHEMA_STRING_FIELD(struct svc, name, "Spec.Name", 0),
    SCHEMA_I64_FIELD(struct svc, i, "Spec.Count", 0),
    SCHEMA_BOOL_FIELD(struct svc, b, "Spec.On", 0),
    SCHEMA_TIME_FIELD(struct svc, t, "When", 0),
    SCHEMA_MAP_FIELD(struct svc, labels, "Spec.Labels", 0),
    SCHEMA_STRLIST_FIELD(struct svc, env, "Spec.Env", 0),
    SCHEMA_BYTES_FIELD(struct svc, key, "Spec.Key", SCHEMA_OMITEMPTY),
    SCHEMA_LIST_FIELD(struct svc, ports, "Spec.Ports", 0, &port_schema),
    SCHEMA_U64_FIELD(struct svc, secret, "Secret", SCHEMA_INTERNAL),
};

static const struct schema svc_schema = {"Svc", sizeof(struct svc), svc_fields,
					 ARRAY_SIZE(svc_fields)};

/* Embedded structs and doubles: a knob holds sets, each embedding a knob, so
 * nesting can reach the depth limit through SCHEMA_STRUCT too. */
struct knob {
	char *name;
	double ratio;
	struct schema_list sets; /* of struct knobset */
};

struct knobset {
	struct knob knob;
	uint64_t n;
};

struct box {
	char *name;
	double weight;
	struct knob spec;
	char *note;
	struct knob spare;
	struct knobset deep;
};

static const struct schema knob_schema, knobset_schema;

static const struct schema_field knob_fields[] = {
    SCHEMA_STRING_FIELD(struct knob, name, "Name", SCHEMA_OMITEMPTY),
    SCHEMA_F64_FIELD(struct knob, ratio, "Ratio", SCHEMA_OMITEMPTY),
    SCHEMA_LIST_FIELD(struct knob, sets, "Sets", SCHEMA_OMITEMPTY, &knobset_schema),
};

static const struct schema knob_schema = {"Knob", sizeof(struct knob), knob_fields,
					  ARRAY_SIZE(knob_fields)};

static const struct schema_field knobset_fields[] = {
    SCHEMA_STRUCT_FIELD(struct knobset, knob, "Knob", 0, struct knob, &knob_schema),
    SCHEMA_U64_FIELD(struct knobset, n, "N", 0),
};

static const struct schema knobset_schema = {"KnobSet", sizeof(struct knobset), knobset_fields,
					     ARRAY_SIZE(knobset_fields)};

/* "Spec" is a struct and "Spec.Note" a field beside it: JSON merges them. */
static const struct schema_field box_fields[] = {
    SCHEMA_STRING_FIELD(struct box, name, "Name", 0),
    SCHEMA_F64_FIELD(struct box, weight, "Weight", 0),
    SCHEMA_STRUCT_FIELD(struct box, spec, "Spec", 0, struct knob, &knob_schema),
    SCHEMA_STRING_FIELD(struct box, note, "Spec.Note", SCHEMA_OMITEMPTY),
    SCHEMA_STRUCT_FIELD(struct box, spare, "Spare", SCHEMA_OMITEMPTY, struct knob, &knob_schema),
    SCHEMA_STRUCT_FIELD(struct box, deep, "Deep", SCHEMA_OMITEMPTY, struct knobset,
			&knobset_schema),
};

static const struct schema box_schema = {"Box", sizeof(struct box), box_fields,
					 ARRAY_SIZE(box_fields)};

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

static void set_bytes(struct schema_bytes *b, size_t len)
{
	b->data = malloc(len);
	assert_non_null(b->data);
	for (size_t i = 0; i < len; i++)
		b->data[i] = (unsigned char)i;
	b->len = len;
}

static void fill_node(struct node_rec *n)
{
	assert_int_equal(node_rec_defaults(n, NULL), 0);
	n->meta.id = xstrdup("4v4i1iq7hq3h0ugcm3q6fdpxw");
	n->meta.version = 42;
	n->meta.created_at = t_of("2016-08-18T10:44:24.496525531Z");
	n->meta.updated_at = t_of("2017-08-09T07:09:37.632105588Z");
	n->spec.name = xstrdup("node-1");
	assert_int_equal(schema_map_set(&n->spec.labels, "zone", "eu", NULL), 0);
	assert_int_equal(schema_map_set(&n->spec.labels, "foo", "bar", NULL), 0);
	n->spec.role = NODE_ROLE_MANAGER;
	n->spec.availability = NODE_AVAILABILITY_DRAIN;
	n->description.hostname = xstrdup("bf3067039e47");
	n->description.platform.architecture = xstrdup("x86_64");
	n->description.platform.os = xstrdup("linux");
	n->description.resources.nano_cpus = 4000000000;
	n->description.resources.memory_bytes = 8272408576;
	n->description.engine.engine_version = xstrdup("17.06.0");
	n->status.state = NODE_STATE_READY;
	n->status.message = xstrdup("");
	n->status.addr = xstrdup("172.17.0.2");
	n->manager_status.addr = xstrdup("10.0.0.46:2377");
	n->raft_id = 7;
	set_bytes(&n->public_key, 32);
}

static void fill_cluster(struct cluster_rec *c)
{
	assert_int_equal(cluster_rec_defaults(c, NULL), 0);
	c->meta.id = xstrdup("abajmipo7b4xz5ip2nrla6b11");
	c->meta.version = 9;
	c->meta.created_at = t_of("2016-08-18T10:44:24.496525531Z");
	c->meta.updated_at = t_of("2016-08-18T10:44:24.5Z");
	assert_int_equal(
	    schema_map_set(&c->spec.labels, "com.example.corp.type", "production", NULL), 0);
	c->spec.orchestration.task_history_retention_limit = -1;
	c->spec.raft.keep_old_snapshots = 2;
	c->spec.encryption_config.auto_lock_managers = true;
	c->tls_info.trust_root = xstrdup("-----BEGIN CERTIFICATE-----\n");
	c->tls_info.cert_issuer_subject = xstrdup("MBMxETAPBgNVBAMTCHN3YXJtLWNh");
	c->tls_info.cert_issuer_public_key = xstrdup("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE");
	c->root_rotation_in_progress = true;
	assert_int_equal(schema_strlist_append(&c->default_addr_pool, "20.20.0.0/16", NULL), 0);
	c->join_tokens.worker = xstrdup("SHOAL-1-abc-worker");
	c->join_tokens.manager = xstrdup("SHOAL-1-abc-manager");
	set_bytes(&c->root_public_key, 32);
}

static void fill_port(struct port *p, const char *name, unsigned depth)
{
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(name);
	p->proto = PROTO_UDP;
	p->target = 8080 + depth;
	assert_int_equal(schema_strlist_append(&p->aliases, "web", NULL), 0);
	if (depth > 0) {
		p->inner.items = calloc(1, sizeof(struct port));
		assert_non_null(p->inner.items);
		p->inner.n = 1;
		fill_port(p->inner.items, "inner", depth - 1);
	}
}

static void fill_svc(struct svc *s)
{
	struct port *ports;

	memset(s, 0, sizeof(*s));
	s->name = xstrdup("web");
	s->i = -3;
	s->b = true;
	s->t = t_of("2020-01-02T03:04:05Z");
	assert_int_equal(schema_map_set(&s->labels, "a", "1", NULL), 0);
	assert_int_equal(schema_strlist_append(&s->env, "K=V", NULL), 0);
	assert_int_equal(schema_strlist_append(&s->env, "X=\xc3\xa9", NULL), 0);
	set_bytes(&s->key, 4);
	ports = calloc(2, sizeof(*ports));
	assert_non_null(ports);
	fill_port(&ports[0], "http", 2);
	fill_port(&ports[1], "dns", 0);
	s->ports.items = ports;
	s->ports.n = 2;
	s->secret = 99;
}

/* A knob with @depth levels of sets below it. */
static void fill_knob(struct knob *k, const char *name, double ratio, unsigned depth)
{
	memset(k, 0, sizeof(*k));
	k->name = xstrdup(name);
	k->ratio = ratio;
	if (depth > 0) {
		struct knobset *ks = calloc(1, sizeof(*ks));
		assert_non_null(ks);
		fill_knob(&ks->knob, "inner", ratio * 4, depth - 1);
		ks->n = depth;
		k->sets.items = ks;
		k->sets.n = 1;
	}
}

static void fill_box(struct box *b)
{
	memset(b, 0, sizeof(*b));
	b->name = xstrdup("b");
	b->weight = 0.5;
	fill_knob(&b->spec, "k", 0.375, 2);
	b->note = xstrdup("n");
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

/* Pack @rec, unpack it into a fresh record, compare, and pack again byte for byte. */
static void check_round_trip(const struct schema *s, const void *rec,
			     int (*init)(void *rec, struct shoal_err *err))
{
	char *a, *b;
	size_t alen, blen;
	void *back = calloc(1, s->size);

	assert_non_null(back);
	if (init != NULL)
		assert_int_equal(init(back, NULL), 0);
	alen = pack(s, rec, &a);
	assert_int_equal(unpack(s, back, a, alen, NULL), 0);
	assert_true(schema_equal(s, rec, back));
	blen = pack(s, back, &b);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	schema_free(s, back);
	free(back);
	free(a);
	free(b);
}

static int node_init(void *rec, struct shoal_err *err)
{
	return node_rec_defaults(rec, err);
}

static int cluster_init(void *rec, struct shoal_err *err)
{
	return cluster_rec_defaults(rec, err);
}

static void round_trip_every_field_type(void **state)
{
	struct node_rec n;
	struct cluster_rec c;
	struct svc s;

	(void)state;
	fill_node(&n);
	fill_cluster(&c);
	fill_svc(&s);
	check_round_trip(&node_schema, &n, node_init);
	check_round_trip(&cluster_schema, &c, cluster_init);
	check_round_trip(&svc_schema, &s, NULL);
	/* Absent strings stay absent, "" stays "". */
	free(n.spec.name);
	n.spec.name = NULL;
	check_round_trip(&node_schema, &n, node_init);
	node_rec_free(&n);
	cluster_rec_free(&c);
	schema_free(&svc_schema, &s);
}

static void defaults_match_docker(void **state)
{
	struct cluster_rec c;
	struct node_rec n;

	(void)state;
	assert_int_equal(cluster_rec_defaults(&c, NULL), 0);
	assert_string_equal(c.spec.name, "default");
	assert_int_equal(c.spec.orchestration.task_history_retention_limit, 5);
	assert_int_equal(c.spec.raft.snapshot_interval, 10000);
	assert_int_equal(c.spec.raft.log_entries_for_slow_followers, 500);
	assert_int_equal(c.spec.raft.election_tick, 10);
	assert_int_equal(c.spec.raft.heartbeat_tick, 1);
	assert_int_equal(c.spec.dispatcher.heartbeat_period, 5000000000);
	assert_int_equal(c.spec.ca_config.node_cert_expiry, 7776000000000000);
	assert_int_equal(c.default_addr_pool.n, 1);
	assert_string_equal(c.default_addr_pool.items[0], "10.0.0.0/8");
	assert_int_equal(c.subnet_size, 24);
	assert_int_equal(c.data_path_port, 4789);
	cluster_rec_free(&c);
	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	assert_int_equal(n.spec.role, NODE_ROLE_WORKER);
	assert_int_equal(n.spec.availability, NODE_AVAILABILITY_ACTIVE);
	assert_int_equal(n.status.state, NODE_STATE_UNKNOWN);
	node_rec_free(&n);
}

static char *dump(const struct schema *s, const void *rec)
{
	json_t *j = NULL;
	char *out;

	assert_int_equal(schema_to_json(s, rec, &j, NULL), 0);
	out = json_dumps(j, JSON_COMPACT);
	assert_non_null(out);
	json_decref(j);
	return out;
}

static void node_json_is_docker_shaped(void **state)
{
	struct node_rec n;
	char *out;

	(void)state;
	fill_node(&n);
	out = dump(&node_schema, &n);
	assert_string_equal(
	    out, "{\"ID\":\"4v4i1iq7hq3h0ugcm3q6fdpxw\",\"Version\":{\"Index\":42},"
		 "\"CreatedAt\":\"2016-08-18T10:44:24.496525531Z\","
		 "\"UpdatedAt\":\"2017-08-09T07:09:37.632105588Z\","
		 "\"Spec\":{\"Name\":\"node-1\",\"Labels\":{\"foo\":\"bar\",\"zone\":\"eu\"},"
		 "\"Role\":\"manager\",\"Availability\":\"drain\"},"
		 "\"Description\":{\"Hostname\":\"bf3067039e47\","
		 "\"Platform\":{\"Architecture\":\"x86_64\",\"OS\":\"linux\"},"
		 "\"Resources\":{\"NanoCPUs\":4000000000,\"MemoryBytes\":8272408576},"
		 "\"Engine\":{\"EngineVersion\":\"17.06.0\"}},"
		 "\"Status\":{\"State\":\"ready\",\"Addr\":\"172.17.0.2\"},"
		 "\"ManagerStatus\":{\"Addr\":\"10.0.0.46:2377\"}}");
	free(out);
	node_rec_free(&n);

	/* A fresh worker: empty labels still shown, no ManagerStatus, no Name. */
	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.meta.id = xstrdup("abc");
	out = dump(&node_schema, &n);
	assert_string_equal(
	    out, "{\"ID\":\"abc\",\"Version\":{\"Index\":0},"
		 "\"CreatedAt\":\"1970-01-01T00:00:00Z\","
		 "\"UpdatedAt\":\"1970-01-01T00:00:00Z\","
		 "\"Spec\":{\"Labels\":{},\"Role\":\"worker\",\"Availability\":\"active\"},"
		 "\"Status\":{\"State\":\"unknown\"}}");
	free(out);
	node_rec_free(&n);
}

static void cluster_json_is_docker_shaped(void **state)
{
	struct cluster_rec c;
	json_t *j = NULL;

	(void)state;
	fill_cluster(&c);
	assert_int_equal(schema_to_json(&cluster_schema, &c, &j, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(j, "ID")),
			    "abajmipo7b4xz5ip2nrla6b11");
	assert_string_equal(json_string_value(json_object_get(j, "UpdatedAt")),
			    "2016-08-18T10:44:24.5Z");
	json_t *spec = json_object_get(j, "Spec");
	assert_string_equal(json_string_value(json_object_get(spec, "Name")), "default");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(spec, "Raft"), "SnapshotInterval")),
	    10000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(spec, "Orchestration"),
							    "TaskHistoryRetentionLimit")),
			 -1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(spec, "Dispatcher"),
							    "HeartbeatPeriod")),
			 5000000000);
	assert_true(json_is_true(
	    json_object_get(json_object_get(spec, "EncryptionConfig"), "AutoLockManagers")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "TLSInfo"), "CertIssuerSubject")),
	    "MBMxETAPBgNVBAMTCHN3YXJtLWNh");
	assert_int_equal(json_array_size(json_object_get(j, "DefaultAddrPool")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "DataPathPort")), 4789);
	assert_int_equal(json_integer_value(json_object_get(j, "SubnetSize")), 24);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "JoinTokens"), "Worker")),
	    "SHOAL-1-abc-worker");
	/* Internal fields never reach the API. */
	assert_null(json_object_get(j, "RootPublicKey"));
	json_decref(j);
	cluster_rec_free(&c);
}

static void json_lists_bytes_and_times(void **state)
{
	struct svc s;
	char *out;

	(void)state;
	fill_svc(&s);
	s.t = t_of("2020-01-02T03:04:05.120Z");
	for (size_t i = 0; i < s.ports.n; i++)
		schema_free(&port_schema, &((struct port *)s.ports.items)[i]);
	free(s.ports.items);
	s.ports.items = NULL;
	s.ports.n = 0;
	out = dump(&svc_schema, &s);
	assert_string_equal(
	    out, "{\"Spec\":{\"Name\":\"web\",\"Count\":-3,\"On\":true,"
		 "\"Labels\":{\"a\":\"1\"},\"Env\":[\"K=V\",\"X=\xc3\xa9\"],"
		 "\"Key\":\"AAECAw==\",\"Ports\":[]},\"When\":\"2020-01-02T03:04:05.12Z\"}");
	free(out);
	schema_free(&svc_schema, &s);

	fill_svc(&s);
	json_t *j = NULL;
	assert_int_equal(schema_to_json(&svc_schema, &s, &j, NULL), 0);
	json_t *p0 = json_array_get(json_object_get(json_object_get(j, "Spec"), "Ports"), 0);
	assert_string_equal(json_string_value(json_object_get(p0, "Protocol")), "udp");
	json_t *inner = json_array_get(json_object_get(p0, "Inner"), 0);
	assert_int_equal(json_integer_value(json_object_get(inner, "Target")), 8081);
	json_decref(j);
	schema_free(&svc_schema, &s);
}

static void json_rejects_non_utf8(void **state)
{
	struct node_rec n;
	struct shoal_err err;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(node_rec_defaults(&n, NULL), 0);
	n.description.hostname = xstrdup("bad\xff");
	assert_int_equal(schema_to_json(&node_schema, &n, &j, &err), SHOAL_EINVAL);
	assert_null(j);
	assert_string_equal(err.msg, "field Description.Hostname: string is not UTF-8");
	node_rec_free(&n);
}

static json_t *load(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static void from_json_reads_node_spec(void **state)
{
	struct node_rec n;
	json_t *j;

	(void)state;
	fill_node(&n);
	/* Keys match case-insensitively, unknown ones are ignored, absent ones kept. */
	j = load("{\"name\":\"n2\",\"Labels\":{\"x\":\"y\"},\"Role\":\"worker\",\"Bogus\":1}");
	assert_int_equal(schema_from_json(&node_schema, &n, j, "Spec", "NodeSpec", NULL), 0);
	json_decref(j);
	assert_string_equal(n.spec.name, "n2");
	assert_int_equal(n.spec.labels.n, 1);
	assert_string_equal(schema_map_get(&n.spec.labels, "x"), "y");
	assert_int_equal(n.spec.role, NODE_ROLE_WORKER);
	assert_int_equal(n.spec.availability, NODE_AVAILABILITY_DRAIN);
	assert_string_equal(n.description.hostname, "bf3067039e47");

	/* Whole objects: read-only and internal fields are not the client's. */
	j = load("{\"ID\":\"zzz\",\"Version\":{\"Index\":1},\"RaftID\":5,"
		 "\"Description\":{\"Hostname\":\"evil\"},\"Spec\":{\"Availability\":\"Pause\"}}");
	assert_int_equal(schema_from_json(&node_schema, &n, j, NULL, "Node", NULL), 0);
	json_decref(j);
	assert_string_equal(n.meta.id, "4v4i1iq7hq3h0ugcm3q6fdpxw");
	assert_int_equal(n.meta.version, 42);
	assert_int_equal(n.raft_id, 7);
	assert_string_equal(n.description.hostname, "bf3067039e47");
	assert_int_equal(n.spec.availability, NODE_AVAILABILITY_PAUSE);
	node_rec_free(&n);
}

static void from_json_reads_lists_and_bytes(void **state)
{
	struct svc s;
	json_t *j;

	(void)state;
	memset(&s, 0, sizeof(s));
	j = load("{\"Spec\":{\"Env\":[\"A=1\"],\"Key\":\"AAECAw==\",\"On\":true,\"Count\":-7,"
		 "\"Ports\":[{\"Name\":\"a\",\"Protocol\":\"tcp\",\"Target\":80,"
		 "\"Inner\":[{\"Target\":81}]},null]},\"When\":\"2020-01-02T03:04:05Z\"}");
	assert_int_equal(schema_from_json(&svc_schema, &s, j, NULL, "Svc", NULL), 0);
	json_decref(j);
	assert_int_equal(s.env.n, 1);
	assert_string_equal(s.env.items[0], "A=1");
	assert_int_equal(s.key.len, 4);
	assert_memory_equal(s.key.data, "\x00\x01\x02\x03", 4);
	assert_true(s.b);
	assert_int_equal(s.i, -7);
	assert_int_equal(s.t, t_of("2020-01-02T03:04:05Z"));
	assert_int_equal(s.ports.n, 2);
	struct port *p = s.ports.items;
	assert_string_equal(p[0].name, "a");
	assert_int_equal(p[0].target, 80);
	assert_int_equal(p[0].inner.n, 1);
	assert_int_equal(((struct port *)p[0].inner.items)[0].target, 81);
	assert_null(p[1].name);
	schema_free(&svc_schema, &s);
}

struct json_case {
	const struct schema *schema;
	const char *prefix;
	const char *type;
	const char *body;
	const char *msg;
};

static void from_json_names_the_field(void **state)
{
	static const struct json_case cases[] = {
	    {&node_schema, "Spec", "NodeSpec", "{\"Role\":5}",
	     "json: cannot unmarshal number into Go struct field NodeSpec.Role of type string"},
	    {&node_schema, "Spec", "NodeSpec", "{\"Name\":true}",
	     "json: cannot unmarshal bool into Go struct field NodeSpec.Name of type string"},
	    {&node_schema, "Spec", "NodeSpec", "{\"Labels\":[]}",
	     "json: cannot unmarshal array into Go struct field NodeSpec.Labels of type "
	     "map[string]string"},
	    {&node_schema, "Spec", "NodeSpec", "{\"Labels\":{\"a\":1}}",
	     "json: cannot unmarshal number into Go struct field NodeSpec.Labels of type string"},
	    {&node_schema, "Spec", "NodeSpec", "{\"Role\":\"boss\"}",
	     "invalid Role: \"boss\" (must be one of worker, manager)"},
	    {&node_schema, "Spec", "NodeSpec", "[1]",
	     "json: cannot unmarshal array into Go value of type NodeSpec"},
	    {&cluster_schema, "Spec", "SwarmSpec", "{\"Raft\":{\"SnapshotInterval\":-1}}",
	     "json: cannot unmarshal number -1 into Go struct field "
	     "SwarmSpec.Raft.SnapshotInterval "
	     "of type uint64"},
	    {&cluster_schema, "Spec", "SwarmSpec", "{\"Raft\":{\"ElectionTick\":1.5}}",
	     "json: cannot unmarshal number into Go struct field SwarmSpec.Raft.ElectionTick of "
	     "type int64"},
	    {&cluster_schema, "Spec", "SwarmSpec", "{\"Raft\":\"x\"}",
	     "json: cannot unmarshal string into Go struct field SwarmSpec.Raft of type struct"},
	    {&cluster_schema, "Spec", "SwarmSpec",
	     "{\"EncryptionConfig\":{\"AutoLockManagers\":1}}",
	     "json: cannot unmarshal number into Go struct field "
	     "SwarmSpec.EncryptionConfig.AutoLockManagers of type bool"},
	    {&svc_schema, NULL, "Svc", "{\"Spec\":{\"Ports\":[{\"Target\":\"80\"}]}}",
	     "json: cannot unmarshal string into Go struct field Svc.Spec.Ports.Target of type "
	     "uint64"},
	    {&svc_schema, NULL, "Svc", "{\"Spec\":{\"Ports\":[7]}}",
	     "json: cannot unmarshal number into Go struct field Svc.Spec.Ports of type []Port"},
	    {&svc_schema, NULL, "Svc", "{\"Spec\":{\"Env\":[\"a\",2]}}",
	     "json: cannot unmarshal number into Go struct field Svc.Spec.Env of type string"},
	    {&svc_schema, NULL, "Svc", "{\"Spec\":{\"Key\":\"!!\"}}",
	     "Svc.Spec.Key: illegal base64 data"},
	    {&svc_schema, NULL, "Svc", "{\"When\":\"yesterday\"}",
	     "Svc.When: cannot parse \"yesterday\" as an RFC 3339 time like "
	     "2016-06-07T20:31:11.853781916Z"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct json_case *c = &cases[i];
		struct shoal_err err = {{0}};
		void *rec = calloc(1, c->schema->size), *before = calloc(1, c->schema->size);
		json_t *j = load(c->body);

		assert_non_null(rec);
		assert_non_null(before);
		if (c->schema == &node_schema)
			fill_node(rec);
		else if (c->schema == &cluster_schema)
			fill_cluster(rec);
		else
			fill_svc(rec);
		assert_int_equal(schema_copy(c->schema, before, rec, NULL), 0);
		assert_int_equal(schema_from_json(c->schema, rec, j, c->prefix, c->type, &err),
				 SHOAL_EINVAL);
		assert_string_equal(err.msg, c->msg);
		/* Nothing changed, not even the fields before the bad one. */
		assert_true(schema_equal(c->schema, rec, before));
		json_decref(j);
		schema_free(c->schema, rec);
		schema_free(c->schema, before);
		free(rec);
		free(before);
	}
}

static void from_json_bounds_sizes(void **state)
{
	struct svc s;
	struct shoal_err err;
	json_t *j = json_object(), *spec = json_object(), *env = json_array();
	char *big = malloc(SCHEMA_MAX_STRING + 2);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', SCHEMA_MAX_STRING + 1);
	big[SCHEMA_MAX_STRING + 1] = '\0';
	json_object_set_new(j, "Spec", spec);
	json_object_set_new(spec, "Name", json_string(big));
	memset(&s, 0, sizeof(s));
	assert_int_equal(schema_from_json(&svc_schema, &s, j, NULL, "Svc", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "Svc.Spec.Name: a string of 65537 bytes exceeds the limit of "
				     "65536");
	json_object_del(spec, "Name");
	for (unsigned i = 0; i <= SCHEMA_MAX_ITEMS; i++)
		json_array_append_new(env, json_string("x"));
	json_object_set_new(spec, "Env", env);
	assert_int_equal(schema_from_json(&svc_schema, &s, j, NULL, "Svc", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "Svc.Spec.Env: 10001 entries exceed the limit of 10000");
	json_array_remove(env, 0);
	assert_int_equal(schema_from_json(&svc_schema, &s, j, NULL, "Svc", &err), 0);
	assert_int_equal(s.env.n, SCHEMA_MAX_ITEMS);
	schema_free(&svc_schema, &s);
	json_decref(j);
	free(big);
}

/* Every cut of a valid encoding is rejected, and nothing leaks (ASan checks). */
static void truncation_at_every_length_is_rejected(void **state)
{
	struct node_rec n, target;
	struct cluster_rec c;
	struct svc s;
	struct box b;
	const struct {
		const struct schema *schema;
		const void *rec;
	} recs[] = {
	    {&node_schema, &n}, {&cluster_schema, &c}, {&svc_schema, &s}, {&box_schema, &b}};

	(void)state;
	fill_node(&n);
	fill_cluster(&c);
	fill_svc(&s);
	fill_box(&b);
	for (size_t r = 0; r < ARRAY_SIZE(recs); r++) {
		char *buf;
		size_t len = pack(recs[r].schema, recs[r].rec, &buf);

		for (size_t cut = 0; cut < len; cut++) {
			struct shoal_err err;
			void *into = calloc(1, recs[r].schema->size);
			char *copy = malloc(cut + 1); /* exact size, so ASan sees overreads */

			assert_non_null(into);
			assert_non_null(copy);
			memcpy(copy, buf, cut);
			assert_int_equal(unpack(recs[r].schema, into, copy, cut, &err),
					 SHOAL_EPROTO);
			schema_free(recs[r].schema, into);
			free(into);
			free(copy);
		}
		free(buf);
	}
	/* A decodable map that goes bad half-way leaves the target untouched. */
	fill_node(&target);
	{
		msgpack_sbuffer sb;
		msgpack_packer pk;
		struct shoal_err err;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 3);
		msgpack_pack_str_with_body(&pk, "Spec.Name", 9);
		msgpack_pack_str_with_body(&pk, "changed", 7);
		msgpack_pack_str_with_body(&pk, "Spec.Labels", 11);
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, "k", 1);
		msgpack_pack_str_with_body(&pk, "v", 1);
		msgpack_pack_str_with_body(&pk, "Spec.Role", 9);
		msgpack_pack_str_with_body(&pk, "boss", 4);
		assert_int_equal(unpack(&node_schema, &target, sb.data, sb.size, &err),
				 SHOAL_EPROTO);
		assert_string_equal(err.msg, "field Spec.Role: unknown value \"boss\"");
		assert_true(schema_equal(&node_schema, &target, &n));
		msgpack_sbuffer_destroy(&sb);
	}
	node_rec_free(&target);
	node_rec_free(&n);
	cluster_rec_free(&c);
	schema_free(&svc_schema, &s);
	schema_free(&box_schema, &b);
}

/* Write a value of the wrong type for @f (variant @v), or return false. */
static bool pack_wrong(msgpack_packer *pk, const struct schema_field *f, int v)
{
	switch (f->type) {
	case SCHEMA_STRING:
		if (v == 0)
			return msgpack_pack_int(pk, 5) == 0;
		if (v == 1)
			return msgpack_pack_str_with_body(pk, "a\0b", 3) == 0;
		if (v == 2)
			return msgpack_pack_str_with_body(pk, "\xc0\x80", 2) == 0;
		return false;
	case SCHEMA_U64:
		if (v == 0)
			return msgpack_pack_str_with_body(pk, "1", 1) == 0;
		if (v == 1)
			return msgpack_pack_int(pk, -1) == 0;
		if (v == 2)
			return msgpack_pack_double(pk, 1.0) == 0;
		return false;
	case SCHEMA_I64:
	case SCHEMA_TIME:
		if (v == 0)
			return msgpack_pack_true(pk) == 0;
		if (v == 1)
			return msgpack_pack_uint64(pk, UINT64_MAX) == 0;
		if (v == 2)
			return msgpack_pack_nil(pk) == 0;
		return false;
	case SCHEMA_BOOL:
		if (v == 0)
			return msgpack_pack_int(pk, 1) == 0;
		if (v == 1)
			return msgpack_pack_str_with_body(pk, "true", 4) == 0;
		return false;
	case SCHEMA_ENUM:
		if (v == 0)
			return msgpack_pack_int(pk, 1) == 0;
		if (v == 1)
			return msgpack_pack_str_with_body(pk, "bogus", 5) == 0;
		return false;
	case SCHEMA_MAP:
		if (v == 0)
			return msgpack_pack_array(pk, 0) == 0;
		if (v == 1)
			return msgpack_pack_map(pk, 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "k", 1) == 0 &&
			       msgpack_pack_int(pk, 1) == 0;
		if (v == 2)
			return msgpack_pack_map(pk, 2) == 0 &&
			       msgpack_pack_str_with_body(pk, "k", 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "v", 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "k", 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "w", 1) == 0;
		return false;
	case SCHEMA_STRLIST:
		if (v == 0)
			return msgpack_pack_map(pk, 0) == 0;
		if (v == 1)
			return msgpack_pack_array(pk, 2) == 0 &&
			       msgpack_pack_str_with_body(pk, "k", 1) == 0 &&
			       msgpack_pack_int(pk, 1) == 0;
		return false;
	case SCHEMA_BYTES:
		if (v == 0)
			return msgpack_pack_str_with_body(pk, "abc", 3) == 0;
		return false;
	case SCHEMA_LIST:
		if (v == 0)
			return msgpack_pack_str_with_body(pk, "abc", 3) == 0;
		if (v == 1)
			return msgpack_pack_array(pk, 1) == 0 && msgpack_pack_int(pk, 1) == 0;
		if (v == 2)
			return msgpack_pack_array(pk, 1) == 0 && msgpack_pack_map(pk, 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "Target", 6) == 0 &&
			       msgpack_pack_int(pk, -5) == 0;
		return false;
	case SCHEMA_F64:
		if (v == 0)
			return msgpack_pack_str_with_body(pk, "1", 1) == 0;
		if (v == 1)
			return msgpack_pack_nil(pk) == 0;
		if (v == 2)
			return msgpack_pack_true(pk) == 0;
		if (v == 3)
			return msgpack_pack_double(pk, INFINITY) == 0;
		return false;
	case SCHEMA_STRUCT:
		if (v == 0)
			return msgpack_pack_str_with_body(pk, "abc", 3) == 0;
		if (v == 1)
			return msgpack_pack_array(pk, 0) == 0;
		if (v == 2)
			return msgpack_pack_nil(pk) == 0;
		if (v == 3) /* the embedded struct's first field, wrong */
			return msgpack_pack_map(pk, 1) == 0 &&
			       msgpack_pack_str_with_body(pk, f->elem->fields[0].path,
							  strlen(f->elem->fields[0].path)) == 0 &&
			       pack_wrong(pk, &f->elem->fields[0], 0);
		if (v == 4 && f->elem != &knob_schema)
			return false;
		if (v == 4)
			return msgpack_pack_map(pk, 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "Sets", 4) == 0 &&
			       msgpack_pack_array(pk, 1) == 0 && msgpack_pack_map(pk, 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "Knob", 4) == 0 &&
			       msgpack_pack_map(pk, 1) == 0 &&
			       msgpack_pack_str_with_body(pk, "Ratio", 5) == 0 &&
			       msgpack_pack_str_with_body(pk, "x", 1) == 0;
		return false;
	}
	return false;
}

static void type_confusion_is_rejected(void **state)
{
	struct node_rec n;
	struct cluster_rec c;
	struct svc s;
	struct box b;
	const struct {
		const struct schema *schema;
		void *rec;
	} recs[] = {
	    {&node_schema, &n}, {&cluster_schema, &c}, {&svc_schema, &s}, {&box_schema, &b}};
	unsigned checked = 0;

	(void)state;
	fill_node(&n);
	fill_cluster(&c);
	fill_svc(&s);
	fill_box(&b);
	for (size_t r = 0; r < ARRAY_SIZE(recs); r++) {
		const struct schema *sch = recs[r].schema;
		void *before = calloc(1, sch->size);

		assert_non_null(before);
		assert_int_equal(schema_copy(sch, before, recs[r].rec, NULL), 0);
		for (size_t i = 0; i < sch->n_fields; i++) {
			const struct schema_field *f = &sch->fields[i];
			for (int v = 0;; v++) {
				msgpack_sbuffer sb;
				msgpack_packer pk;
				struct shoal_err err = {{0}};

				msgpack_sbuffer_init(&sb);
				msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
				msgpack_pack_map(&pk, 1);
				msgpack_pack_str_with_body(&pk, f->path, strlen(f->path));
				if (!pack_wrong(&pk, f, v)) {
					msgpack_sbuffer_destroy(&sb);
					break;
				}
				assert_int_equal(unpack(sch, recs[r].rec, sb.data, sb.size, &err),
						 SHOAL_EPROTO);
				assert_non_null(strstr(err.msg, f->path));
				assert_true(schema_equal(sch, recs[r].rec, before));
				msgpack_sbuffer_destroy(&sb);
				checked++;
			}
		}
		schema_free(sch, before);
		free(before);
	}
	assert_true(checked > 90);
	node_rec_free(&n);
	cluster_rec_free(&c);
	schema_free(&svc_schema, &s);
	schema_free(&box_schema, &b);
}

static void unknown_keys_skipped_missing_keep_defaults(void **state)
{
	struct cluster_rec c;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	(void)state;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "Future.Field", 12);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_str_with_body(&pk, "ID", 2);
	msgpack_pack_str_with_body(&pk, "c1", 2);
	msgpack_pack_str_with_body(&pk, "SubnetSize", 10);
	msgpack_pack_uint64(&pk, 26);
	assert_int_equal(cluster_rec_defaults(&c, NULL), 0);
	assert_int_equal(unpack(&cluster_schema, &c, sb.data, sb.size, NULL), 0);
	assert_string_equal(c.meta.id, "c1");
	assert_int_equal(c.subnet_size, 26);
	assert_string_equal(c.spec.name, "default");
	assert_int_equal(c.data_path_port, 4789);
	cluster_rec_free(&c);
	msgpack_sbuffer_destroy(&sb);
}

static int unpack_svc_field(const char *path, void (*write)(msgpack_packer *pk, size_t n), size_t n,
			    struct shoal_err *err)
{
	struct svc s;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv;

	memset(&s, 0, sizeof(s));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, path, strlen(path));
	write(&pk, n);
	rv = unpack(&svc_schema, &s, sb.data, sb.size, err);
	schema_free(&svc_schema, &s);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static void write_string(msgpack_packer *pk, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, 'x', n);
	msgpack_pack_str_with_body(pk, s, n);
	free(s);
}

static void write_strlist(msgpack_packer *pk, size_t n)
{
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_str_with_body(pk, "e", 1);
}

static void write_map(msgpack_packer *pk, size_t n)
{
	msgpack_pack_map(pk, n);
	for (size_t i = 0; i < n; i++) {
		char k[16];
		int len = snprintf(k, sizeof(k), "k%zu", i);
		msgpack_pack_str_with_body(pk, k, (size_t)len);
		msgpack_pack_str_with_body(pk, "v", 1);
	}
}

static void write_bytes(msgpack_packer *pk, size_t n)
{
	unsigned char *b = calloc(1, n + 1);

	assert_non_null(b);
	msgpack_pack_bin_with_body(pk, b, n);
	free(b);
}

/* Ports nested @n deep. */
static void write_nested(msgpack_packer *pk, size_t n)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "Inner", 5);
	if (n > 1)
		write_nested(pk, n - 1);
	else
		msgpack_pack_array(pk, 0);
}

static void oversize_values_are_rejected(void **state)
{
	struct shoal_err err;

	(void)state;
	assert_int_equal(unpack_svc_field("Spec.Name", write_string, SCHEMA_MAX_STRING, &err), 0);
	assert_int_equal(unpack_svc_field("Spec.Name", write_string, SCHEMA_MAX_STRING + 1, &err),
			 SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "field Spec.Name: string of 65537 bytes exceeds the limit of 65536");
	assert_int_equal(unpack_svc_field("Spec.Env", write_strlist, SCHEMA_MAX_ITEMS, &err), 0);
	assert_int_equal(unpack_svc_field("Spec.Env", write_strlist, SCHEMA_MAX_ITEMS + 1, &err),
			 SHOAL_EPROTO);
	assert_string_equal(err.msg, "field Spec.Env: 10001 entries exceed the limit of 10000");
	assert_int_equal(unpack_svc_field("Spec.Labels", write_map, SCHEMA_MAX_ITEMS, &err), 0);
	assert_int_equal(unpack_svc_field("Spec.Labels", write_map, SCHEMA_MAX_ITEMS + 1, &err),
			 SHOAL_EPROTO);
	assert_int_equal(unpack_svc_field("Spec.Key", write_bytes, SCHEMA_MAX_BYTES, &err), 0);
	assert_int_equal(unpack_svc_field("Spec.Key", write_bytes, SCHEMA_MAX_BYTES + 1, &err),
			 SHOAL_EPROTO);
	assert_int_equal(unpack_svc_field("Spec.Ports", write_nested, SCHEMA_MAX_DEPTH - 2, &err),
			 0);
	assert_int_equal(unpack_svc_field("Spec.Ports", write_nested, SCHEMA_MAX_DEPTH, &err),
			 SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "nested deeper than 8 levels"));
}

static void hostile_msgpack_headers_are_rejected(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *msg;
	} cases[] = {
	    {"\xdd\xff\xff\xff\xff", 5, "msgpack data declares more items than it holds"},
	    {"\xdf\x7f\xff\xff\xff\xc0", 6, "msgpack data declares more items than it holds"},
	    {"\xdb\xff\xff\xff\xf0"
	     "abc",
	     8, "msgpack data ends early"},
	    {"\xc6\x00\x00\x00\x04"
	     "abc",
	     8, "msgpack data ends early"},
	    {"\x91\xc1", 2, "msgpack data holds the invalid byte 0xc1"},
	    {"\x80\x80", 2, "1 bytes follow the msgpack data"},
	    {"", 0, "msgpack data ends early"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		msgpack_unpacked u;
		struct shoal_err err;

		msgpack_unpacked_init(&u);
		assert_int_equal(schema_msgpack_parse(cases[i].bytes, cases[i].len, &u, &err),
				 SHOAL_EPROTO);
		assert_string_equal(err.msg, cases[i].msg);
		msgpack_unpacked_destroy(&u);
	}
}

static void maps_lists_copy_and_enums(void **state)
{
	struct schema_map m = {0};
	struct svc a, b;
	int v;

	(void)state;
	assert_int_equal(schema_map_set(&m, "b", "2", NULL), 0);
	assert_int_equal(schema_map_set(&m, "a", "1", NULL), 0);
	assert_int_equal(schema_map_set(&m, "c", "3", NULL), 0);
	assert_int_equal(schema_map_set(&m, "b", "two", NULL), 0);
	assert_int_equal(m.n, 3);
	assert_string_equal(m.items[0].key, "a");
	assert_string_equal(m.items[1].value, "two");
	assert_string_equal(schema_map_get(&m, "c"), "3");
	assert_null(schema_map_get(&m, "d"));
	assert_true(schema_map_remove(&m, "a"));
	assert_false(schema_map_remove(&m, "a"));
	assert_string_equal(m.items[0].key, "b");
	assert_true(schema_map_remove(&m, "b"));
	assert_true(schema_map_remove(&m, "c"));
	assert_int_equal(m.n, 0);
	assert_null(m.items);

	fill_svc(&a);
	assert_int_equal(schema_copy(&svc_schema, &b, &a, NULL), 0);
	assert_true(schema_equal(&svc_schema, &a, &b));
	((struct port *)((struct port *)b.ports.items)[0].inner.items)[0].target++;
	assert_false(schema_equal(&svc_schema, &a, &b));
	schema_free(&svc_schema, &a);
	schema_free(&svc_schema, &b);

	assert_string_equal(schema_enum_name(node_state_names, NODE_STATE_DISCONNECTED),
			    "disconnected");
	assert_null(schema_enum_name(node_state_names, 42));
	assert_int_equal(schema_enum_value(node_availability_names, "drain", &v), 0);
	assert_int_equal(v, NODE_AVAILABILITY_DRAIN);
	assert_int_equal(schema_enum_value(node_availability_names, "gone", &v), -1);
}

static void f64_and_struct_round_trip(void **state)
{
	struct box a, b;
	struct knob *deep;

	(void)state;
	fill_box(&a);
	check_round_trip(&box_schema, &a, NULL);
	fill_knob(&a.spare, "spare", -1e300, 1);
	check_round_trip(&box_schema, &a, NULL);

	/* Copies are deep, equality looks inside embedded structs. */
	assert_int_equal(schema_copy(&box_schema, &b, &a, NULL), 0);
	assert_true(schema_equal(&box_schema, &a, &b));
	assert_ptr_not_equal(a.spec.name, b.spec.name);
	deep = &((struct knobset *)b.spec.sets.items)[0].knob;
	deep = &((struct knobset *)deep->sets.items)[0].knob;
	assert_string_equal(deep->name, "inner");
	deep->ratio += 0.5;
	assert_false(schema_equal(&box_schema, &a, &b));
	deep->ratio -= 0.5;
	assert_true(schema_equal(&box_schema, &a, &b));
	b.weight = 0.25;
	assert_false(schema_equal(&box_schema, &a, &b));
	schema_free(&box_schema, &b);
	assert_null(b.spec.name);
	assert_null(b.spec.sets.items);
	schema_free(&box_schema, &a);
}

static void msgpack_f64_accepts_integers_and_struct_merges(void **state)
{
	struct box b;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	(void)state;
	fill_box(&b);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "Weight", 6);
	msgpack_pack_int(&pk, -2);
	msgpack_pack_str_with_body(&pk, "Spec", 4);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "Ratio", 5);
	msgpack_pack_uint64(&pk, 3);
	assert_int_equal(unpack(&box_schema, &b, sb.data, sb.size, NULL), 0);
	assert_true(b.weight == -2.0);
	assert_true(b.spec.ratio == 3.0);
	/* Keys the embedded map lacks keep their value. */
	assert_string_equal(b.spec.name, "k");
	assert_int_equal(b.spec.sets.n, 1);
	msgpack_sbuffer_destroy(&sb);
	schema_free(&box_schema, &b);
}

static void struct_json_nests_and_merges(void **state)
{
	struct box b, back;
	json_t *j;
	char *out;

	(void)state;
	fill_box(&b);
	out = dump(&box_schema, &b);
	/* Whole doubles print like Go's (2, not 2.0); an empty OMITEMPTY struct
	 * is left out; "Spec.Note" lands inside the struct's object. */
	assert_string_equal(out, "{\"Name\":\"b\",\"Weight\":0.5,\"Spec\":{\"Name\":\"k\","
				 "\"Ratio\":0.375,\"Sets\":[{\"Knob\":{\"Name\":\"inner\","
				 "\"Ratio\":1.5,\"Sets\":[{\"Knob\":{\"Name\":\"inner\","
				 "\"Ratio\":6},\"N\":1}]},\"N\":2}],\"Note\":\"n\"}}");
	free(out);

	/* JSON back into a zeroed record gives the same record. */
	j = json_loads(out = dump(&box_schema, &b), 0, NULL);
	free(out);
	assert_non_null(j);
	memset(&back, 0, sizeof(back));
	assert_int_equal(schema_from_json(&box_schema, &back, j, NULL, "Box", NULL), 0);
	assert_true(schema_equal(&box_schema, &b, &back));
	json_decref(j);

	/* Integers are numbers too; absent keys keep their value, also inside
	 * the struct; a prefix naming the struct reads into it. */
	j = load("{\"weight\":3,\"Spec\":{\"Ratio\":0.75},\"Spare\":{\"Name\":\"s\"}}");
	assert_int_equal(schema_from_json(&box_schema, &back, j, NULL, "Box", NULL), 0);
	json_decref(j);
	assert_true(back.weight == 3.0);
	assert_true(back.spec.ratio == 0.75);
	assert_string_equal(back.spec.name, "k");
	assert_int_equal(back.spec.sets.n, 1);
	assert_string_equal(back.spare.name, "s");
	j = load("{\"Name\":\"k2\",\"Sets\":[]}");
	assert_int_equal(schema_from_json(&box_schema, &back, j, "Spec", "Knob", NULL), 0);
	json_decref(j);
	assert_string_equal(back.spec.name, "k2");
	assert_int_equal(back.spec.sets.n, 0);
	assert_true(back.spec.ratio == 0.75);
	assert_string_equal(back.name, "b");
	out = dump(&box_schema, &back);
	assert_string_equal(out, "{\"Name\":\"b\",\"Weight\":3,\"Spec\":{\"Name\":\"k2\","
				 "\"Ratio\":0.75,\"Note\":\"n\"},\"Spare\":{\"Name\":\"s\"}}");
	free(out);
	schema_free(&box_schema, &back);
	schema_free(&box_schema, &b);
}

static void struct_json_errors_name_the_field(void **state)
{
	static const struct {
		const char *prefix, *type, *body, *msg;
	} cases[] = {
	    {NULL, "Box", "{\"Weight\":\"x\"}",
	     "json: cannot unmarshal string into Go struct field Box.Weight of type float64"},
	    {NULL, "Box", "{\"Spec\":5}",
	     "json: cannot unmarshal number into Go struct field Box.Spec of type Knob"},
	    {NULL, "Box", "{\"Name\":\"x\",\"Spec\":{\"Ratio\":true}}",
	     "json: cannot unmarshal bool into Go struct field Box.Spec.Ratio of type float64"},
	    {NULL, "Box", "{\"Spec\":{\"Sets\":[{\"Knob\":{\"Name\":1}}]}}",
	     "json: cannot unmarshal number into Go struct field Box.Spec.Sets.Knob.Name of type "
	     "string"},
	    {"Spec", "Knob", "{\"Ratio\":[]}",
	     "json: cannot unmarshal array into Go struct field Knob.Ratio of type float64"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct box b, before;
		struct shoal_err err = {{0}};
		json_t *j = load(cases[i].body);

		fill_box(&b);
		assert_int_equal(schema_copy(&box_schema, &before, &b, NULL), 0);
		assert_int_equal(
		    schema_from_json(&box_schema, &b, j, cases[i].prefix, cases[i].type, &err),
		    SHOAL_EINVAL);
		assert_string_equal(err.msg, cases[i].msg);
		assert_true(schema_equal(&box_schema, &b, &before));
		json_decref(j);
		schema_free(&box_schema, &b);
		schema_free(&box_schema, &before);
	}
}

/* A knob map with @n levels of sets below it. */
static void write_knob(msgpack_packer *pk, size_t n)
{
	if (n == 0) {
		msgpack_pack_map(pk, 0);
		return;
	}
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "Sets", 4);
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "Knob", 4);
	write_knob(pk, n - 1);
}

/* A knobset map with @n knobs nested below it: here the struct, not the list,
 * is the level that crosses the limit. */
static void write_knobset(msgpack_packer *pk, size_t n)
{
	if (n == 0) {
		msgpack_pack_map(pk, 0);
		return;
	}
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "Knob", 4);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "Sets", 4);
	msgpack_pack_array(pk, 1);
	write_knobset(pk, n - 1);
}

static int unpack_deep_box(size_t levels, struct shoal_err *err)
{
	struct box b;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv;

	memset(&b, 0, sizeof(b));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	if (levels >= 100) {
		msgpack_pack_str_with_body(&pk, "Deep", 4);
		write_knobset(&pk, levels - 100);
	} else {
		msgpack_pack_str_with_body(&pk, "Spec", 4);
		write_knob(&pk, levels);
	}
	rv = unpack(&box_schema, &b, sb.data, sb.size, err);
	schema_free(&box_schema, &b);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static int from_json_deep_box(size_t levels, struct shoal_err *err)
{
	struct box b;
	json_t *root = json_object(), *k = json_object();
	int rv;

	assert_non_null(root);
	json_object_set_new(root, "Spec", k);
	for (size_t i = 0; i < levels; i++) {
		json_t *sets = json_array(), *set = json_object(), *inner = json_object();
		json_object_set_new(k, "Sets", sets);
		json_array_append_new(sets, set);
		json_object_set_new(set, "Knob", inner);
		k = inner;
	}
	memset(&b, 0, sizeof(b));
	rv = schema_from_json(&box_schema, &b, root, NULL, "Box", err);
	schema_free(&box_schema, &b);
	json_decref(root);
	return rv;
}

static void struct_nesting_is_bounded(void **state)
{
	struct shoal_err err;

	(void)state;
	/* Each level is a struct and a list: 3 levels stay within depth 8, 4 do not. */
	assert_int_equal(unpack_deep_box(3, &err), 0);
	assert_int_equal(unpack_deep_box(4, &err), SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "nested deeper than 8 levels"));
	assert_int_equal(from_json_deep_box(3, &err), 0);
	assert_int_equal(from_json_deep_box(4, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "nested deeper than 8 levels"));
	/* Starting one level lower, the struct is what goes too deep. */
	assert_int_equal(unpack_deep_box(100 + 3, &err), 0);
	assert_int_equal(unpack_deep_box(100 + 4, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "field Deep: field Knob: field Sets: item 0: field Knob: "
				     "field Sets: item 0: field Knob: field Sets: item 0: field "
				     "Knob: nested deeper than 8 levels");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip_every_field_type),
	    cmocka_unit_test(defaults_match_docker),
	    cmocka_unit_test(node_json_is_docker_shaped),
	    cmocka_unit_test(cluster_json_is_docker_shaped),
	    cmocka_unit_test(json_lists_bytes_and_times),
	    cmocka_unit_test(json_rejects_non_utf8),
	    cmocka_unit_test(from_json_reads_node_spec),
	    cmocka_unit_test(from_json_reads_lists_and_bytes),
	    cmocka_unit_test(from_json_names_the_field),
	    cmocka_unit_test(from_json_bounds_sizes),
	    cmocka_unit_test(truncation_at_every_length_is_rejected),
	    cmocka_unit_test(type_confusion_is_rejected),
	    cmocka_unit_test(unknown_keys_skipped_missing_keep_defaults),
	    cmocka_unit_test(oversize_values_are_rejected),
	    cmocka_unit_test(hostile_msgpack_headers_are_rejected),
	    cmocka_unit_test(maps_lists_copy_and_enums),
	    cmocka_unit_test(f64_and_struct_round_trip),
	    cmocka_unit_test(msgpack_f64_accepts_integers_and_struct_merges),
	    cmocka_unit_test(struct_json_nests_and_merges),
	    cmocka_unit_test(struct_json_errors_name_the_field),
	    cmocka_unit_test(struct_nesting_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
