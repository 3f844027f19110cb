/* Node listings and the pretty view, following Docker's node formatter. */
#include "cli/node_format.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/humanize.h"
#include "cli/jsonfmt.h"
#include "cli/table.h"
#include "lib/err.h"

static const char *const tls_fields[] = {"TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey"};

static bool tls_empty(json_t *tls)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tls_fields); i++) {
		if (jsonfmt_str(tls, tls_fields[i])[0] != '\0')
			return false;
	}
	return true;
}

static bool tls_equal(json_t *a, json_t *b)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tls_fields); i++) {
		if (strcmp(jsonfmt_str(a, tls_fields[i]), jsonfmt_str(b, tls_fields[i])) != 0)
			return false;
	}
	return true;
}

static const char *tls_status(json_t *node, json_t *info)
{
	json_t *cluster = jsonfmt_get(info, "Swarm.Cluster");
	json_t *ctls = json_object_get(cluster, "TLSInfo");
	json_t *ntls = jsonfmt_get(node, "Description.TLSInfo");

	if (!json_is_object(cluster) || tls_empty(ctls) || tls_empty(ntls))
		return "Unknown";
	return tls_equal(ctls, ntls) ? "Ready" : "Needs Rotation";
}

/* Docker's PrettyPrint(@s) into a new JSON string. */
static json_t *pretty_string(const char *s)
{
	struct buf b;
	json_t *j = NULL;

	buf_init(&b);
	if (human_capitalize(&b, s) == 0)
		j = json_string(b.data != NULL ? b.data : "");
	buf_free(&b);
	return j;
}

json_t *node_list_fields(json_t *node, json_t *info)
{
	const char *id = jsonfmt_str(node, "ID");
	const char *self = jsonfmt_str(info, "Swarm.NodeID");
	json_t *ms = json_object_get(node, "ManagerStatus");
	const char *mstatus = "";

	if (json_is_object(ms))
		mstatus = jsonfmt_bool(ms, "Leader") ? "Leader" : jsonfmt_str(ms, "Reachability");
	return json_pack("{s:o, s:s, s:s, s:s, s:o, s:b, s:o, s:s}", "Availability",
			 pretty_string(jsonfmt_str(node, "Spec.Availability")), "EngineVersion",
			 jsonfmt_str(node, "Description.Engine.EngineVersion"), "Hostname",
			 jsonfmt_str(node, "Description.Hostname"), "ID", id, "ManagerStatus",
			 pretty_string(mstatus), "Self", self[0] != '\0' && strcmp(id, self) == 0,
			 "Status", pretty_string(jsonfmt_str(node, "Status.State")), "TLSStatus",
			 tls_status(node, info));
}

static int by_hostname(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	const char *hx = jsonfmt_str(x, "Description.Hostname");
	const char *hy = jsonfmt_str(y, "Description.Hostname");

	if (human_natural_less(hx, hy))
		return -1;
	if (human_natural_less(hy, hx))
		return 1;
	return strcmp(jsonfmt_str(x, "ID"), jsonfmt_str(y, "ID"));
}

static int list_row(struct table *t, json_t *f)
{
	struct buf id;
	const char *cells[6];
	int rv;

	buf_init(&id);
	/* "{{.ID}} {{if .Self}}*{{else}} {{ end }}" */
	rv = buf_appendf(&id, "%s %s", jsonfmt_str(f, "ID"), jsonfmt_bool(f, "Self") ? "*" : " ");
	if (rv == 0) {
		cells[0] = id.data;
		cells[1] = jsonfmt_str(f, "Hostname");
		cells[2] = jsonfmt_str(f, "Status");
		cells[3] = jsonfmt_str(f, "Availability");
		cells[4] = jsonfmt_str(f, "ManagerStatus");
		cells[5] = jsonfmt_str(f, "EngineVersion");
		rv = table_row(t, cells, ARRAY_SIZE(cells));
	}
	buf_free(&id);
	return rv;
}

int node_format_list(json_t *nodes, json_t *info, enum node_list_format fmt, struct buf *out)
{
	static const char *const header[] = {"ID",	     "HOSTNAME",       "STATUS",
					     "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"};
	size_t n = json_array_size(nodes), i;
	json_t **sorted = NULL;
	struct table t;
	int rv = 0;

	table_init(&t, TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING);
	if (n > 0) {
		sorted = calloc(n, sizeof(*sorted));
		if (sorted == NULL)
			return SHOAL_ENOMEM;
		for (i = 0; i < n; i++)
			sorted[i] = json_array_get(nodes, i);
		qsort(sorted, n, sizeof(*sorted), by_hostname);
	}
	if (fmt == NODE_LIST_TABLE)
		rv = table_row(&t, header, ARRAY_SIZE(header));
	for (i = 0; i < n && rv == 0; i++) {
		json_t *f;
		char *line;

		if (fmt == NODE_LIST_QUIET) {
			rv = buf_appendf(out, "%s\n", jsonfmt_str(sorted[i], "ID"));
			continue;
		}
		f = node_list_fields(sorted[i], info);
		if (f == NULL) {
			rv = SHOAL_ENOMEM;
			break;
		}
		if (fmt == NODE_LIST_TABLE) {
			rv = list_row(&t, f);
		} else {
			line = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
			rv = line != NULL ? buf_appendf(out, "%s\n", line) : SHOAL_ENOMEM;
			free(line);
		}
		json_decref(f);
	}
	if (rv == 0 && fmt == NODE_LIST_TABLE)
		rv = table_flush(&t, out);
	table_free(&t);
	free(sorted);
	return rv;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* " - key=value" lines of a labels object, by key; "=value" left out when empty. */
static int labels(struct buf *b, json_t *obj)
{
	const char **keys, *key;
	size_t n = json_object_size(obj), i = 0;
	json_t *v;
	int rv = 0;

	if (n == 0)
		return 0;
	keys = calloc(n, sizeof(*keys));
	if (keys == NULL)
		return SHOAL_ENOMEM;
	json_object_foreach(obj, key, v)
	{
		(void)v;
		keys[i++] = key;
	}
	qsort(keys, n, sizeof(*keys), by_str);
	for (i = 0; i < n && rv == 0; i++) {
		const char *val = jsonfmt_str(obj, keys[i]);

		rv = buf_appendf(b, "\n - %s%s%s", keys[i], val[0] != '\0' ? "=" : "", val);
	}
	free(keys);
	return rv;
}

/* Docker's EnginePlugins(): names by type, types in order, names as listed. */
static int plugins(struct buf *b, json_t *list)
{
	const char **types;
	size_t n = json_array_size(list), ntypes = 0, i, j;
	json_t *p;
	int rv = 0;

	if (n == 0)
		return 0;
	types = calloc(n, sizeof(*types));
	if (types == NULL)
		return SHOAL_ENOMEM;
	json_array_foreach(list, i, p)
	{
		const char *type = jsonfmt_str(p, "Type");

		for (j = 0; j < ntypes && strcmp(types[j], type) != 0; j++)
			;
		if (j == ntypes) {
			/* Insert in sorted position. */
			for (j = ntypes; j > 0 && strcmp(types[j - 1], type) > 0; j--)
				types[j] = types[j - 1];
			types[j] = type;
			ntypes++;
		}
	}
	rv = buf_appendf(b, "\nPlugins:");
	for (i = 0; i < ntypes && rv == 0; i++) {
		bool first = true;

		rv = buf_appendf(b, "\n %s:", types[i]);
		json_array_foreach(list, j, p)
		{
			if (rv != 0 || strcmp(jsonfmt_str(p, "Type"), types[i]) != 0)
				continue;
			rv = buf_appendf(b, "%s%s", first ? "\t\t" : ", ", jsonfmt_str(p, "Name"));
			first = false;
		}
	}
	free(types);
	return rv;
}

static int joined_at(struct buf *b, const char *created)
{
	struct human_time t;
	struct buf tmp;
	int rv;

	if (created[0] == '\0')
		created = "0001-01-01T00:00:00Z";
	if (human_time_parse(created, &t) != 0)
		return buf_appendf(b, "%s", created);
	buf_init(&tmp);
	rv = human_time_go_string(&tmp, &t);
	if (rv == 0)
		rv = human_capitalize(b, tmp.data);
	buf_free(&tmp);
	return rv;
}

int node_format_pretty(json_t *node, struct buf *out)
{
	json_t *spec = json_object_get(node, "Spec");
	json_t *desc = json_object_get(node, "Description");
	json_t *status = json_object_get(node, "Status");
	json_t *ms = json_object_get(node, "ManagerStatus");
	json_t *tls = json_object_get(desc, "TLSInfo");
	const char *name = jsonfmt_str(spec, "Name");
	char mem[32];
	int rv;

	rv = buf_appendf(out, "ID:\t\t\t%s", jsonfmt_str(node, "ID"));
	if (rv == 0 && name[0] != '\0')
		rv = buf_appendf(out, "\nName:\t\t\t%s", name);
	if (rv == 0 && json_object_size(json_object_get(spec, "Labels")) > 0) {
		rv = buf_appendf(out, "\nLabels:");
		if (rv == 0)
			rv = labels(out, json_object_get(spec, "Labels"));
	}
	if (rv == 0)
		rv = buf_appendf(out, "\nHostname:              \t%s\nJoined at:             \t",
				 jsonfmt_str(desc, "Hostname"));
	if (rv == 0)
		rv = joined_at(out, jsonfmt_str(node, "CreatedAt"));
	if (rv == 0)
		rv = buf_appendf(out, "\nStatus:\n State:\t\t\t");
	if (rv == 0)
		rv = human_capitalize(out, jsonfmt_str(status, "State"));
	if (rv == 0 && jsonfmt_str(status, "Message")[0] != '\0') {
		rv = buf_appendf(out, "\n Message:              \t");
		if (rv == 0)
			rv = human_capitalize(out, jsonfmt_str(status, "Message"));
	}
	if (rv == 0)
		rv = buf_appendf(out, "\n Availability:         \t");
	if (rv == 0)
		rv = human_capitalize(out, jsonfmt_str(spec, "Availability"));
	if (rv == 0 && jsonfmt_str(status, "Addr")[0] != '\0')
		rv = buf_appendf(out, "\n Address:\t\t%s", jsonfmt_str(status, "Addr"));
	if (rv == 0 && json_is_object(ms)) {
		rv = buf_appendf(out, "\nManager Status:\n Address:\t\t%s\n Raft Status:\t\t",
				 jsonfmt_str(ms, "Addr"));
		if (rv == 0)
			rv = human_capitalize(out, jsonfmt_str(ms, "Reachability"));
		if (rv == 0)
			rv = buf_appendf(out, "\n Leader:\t\t%s",
					 jsonfmt_bool(ms, "Leader") ? "Yes" : "No");
	}
	human_bytes((double)jsonfmt_int(desc, "Resources.MemoryBytes", 0), mem, sizeof(mem));
	if (rv == 0)
		rv = buf_appendf(out,
				 "\nPlatform:\n Operating System:\t%s\n Architecture:\t\t%s\n"
				 "Resources:\n CPUs:\t\t\t%lld\n Memory:\t\t%s",
				 jsonfmt_str(desc, "Platform.OS"),
				 jsonfmt_str(desc, "Platform.Architecture"),
				 jsonfmt_int(desc, "Resources.NanoCPUs", 0) / 1000000000, mem);
	if (rv == 0)
		rv = plugins(out, jsonfmt_get(desc, "Engine.Plugins"));
	if (rv == 0)
		rv = buf_appendf(out, "\nEngine Version:\t\t%s",
				 jsonfmt_str(desc, "Engine.EngineVersion"));
	if (rv == 0 && json_object_size(jsonfmt_get(desc, "Engine.Labels")) > 0) {
		rv = buf_appendf(out, "\nEngine Labels:");
		if (rv == 0)
			rv = labels(out, jsonfmt_get(desc, "Engine.Labels"));
	}
	if (rv == 0 && !tls_empty(tls))
		rv = buf_appendf(out,
				 "\nTLS Info:\n TrustRoot:\n%s\n Issuer Subject:\t%s\n"
				 " Issuer Public Key:\t%s",
				 jsonfmt_str(tls, "TrustRoot"),
				 jsonfmt_str(tls, "CertIssuerSubject"),
				 jsonfmt_str(tls, "CertIssuerPublicKey"));
	if (rv == 0)
		rv = buf_append(out, "\n", 1);
	return rv;
}
