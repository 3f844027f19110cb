/* OCI and Docker image documents: media types, bounded and type-checked parsers. */
#include "runtime/oci.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

static const struct {
	enum oci_media_type type;
	const char *name;
} media_types[] = {
    {OCI_MT_OCI_INDEX, "application/vnd.oci.image.index.v1+json"},
    {OCI_MT_OCI_MANIFEST, "application/vnd.oci.image.manifest.v1+json"},
    {OCI_MT_OCI_CONFIG, "application/vnd.oci.image.config.v1+json"},
    {OCI_MT_OCI_LAYER, "application/vnd.oci.image.layer.v1.tar"},
    {OCI_MT_OCI_LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"},
    {OCI_MT_OCI_LAYER_ZSTD, "application/vnd.oci.image.layer.v1.tar+zstd"},
    {OCI_MT_OCI_LAYER_ND, "application/vnd.oci.image.layer.nondistributable.v1.tar"},
    {OCI_MT_OCI_LAYER_ND_GZIP, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
    {OCI_MT_DOCKER_LIST, "application/vnd.docker.distribution.manifest.list.v2+json"},
    {OCI_MT_DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"},
    {OCI_MT_DOCKER_CONFIG, "application/vnd.docker.container.image.v1+json"},
    {OCI_MT_DOCKER_LAYER, "application/vnd.docker.image.rootfs.diff.tar"},
    {OCI_MT_DOCKER_LAYER_GZIP, "application/vnd.docker.image.rootfs.diff.tar.gzip"},
    {OCI_MT_DOCKER_FOREIGN, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"},
};

enum oci_media_type oci_media_type_parse(const char *s)
{
	if (s == NULL)
		return OCI_MT_UNKNOWN;
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if (strcmp(s, media_types[i].name) == 0)
			return media_types[i].type;
	return OCI_MT_UNKNOWN;
}

const char *oci_media_type_name(enum oci_media_type t)
{
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if (media_types[i].type == t)
			return media_types[i].name;
	return NULL;
}

bool oci_media_type_is_index(enum oci_media_type t)
{
	return t == OCI_MT_OCI_INDEX || t == OCI_MT_DOCKER_LIST;
}

bool oci_media_type_is_manifest(enum oci_media_type t)
{
	return t == OCI_MT_OCI_MANIFEST || t == OCI_MT_DOCKER_MANIFEST;
}

bool oci_media_type_is_config(enum oci_media_type t)
{
	return t == OCI_MT_OCI_CONFIG || t == OCI_MT_DOCKER_CONFIG;
}

bool oci_media_type_is_layer(enum oci_media_type t)
{
	switch (t) {
	case OCI_MT_OCI_LAYER:
	case OCI_MT_OCI_LAYER_GZIP:
	case OCI_MT_OCI_LAYER_ZSTD:
	case OCI_MT_OCI_LAYER_ND:
	case OCI_MT_OCI_LAYER_ND_GZIP:
	case OCI_MT_DOCKER_LAYER:
	case OCI_MT_DOCKER_LAYER_GZIP:
	case OCI_MT_DOCKER_FOREIGN:
		return true;
	default:
		return false;
	}
}

/* ---- JSON access: every helper names the field in its error. ---- */

static int load_json(const char *json, size_t len, size_t max, const char *what, json_t **out,
		     struct shoal_err *err)
{
	json_error_t jerr;

	if (len > max)
		return shoal_errf(err, SHOAL_ETOOBIG, "%s is %zu bytes, more than the limit of %zu",
				  what, len, max);
	*out = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL)
		return shoal_errf(err, SHOAL_EPROTO,
				  "%s is not valid JSON: %s (line %d, column %d)", what, jerr.text,
				  jerr.line, jerr.column);
	return 0;
}

static int expect_object(const json_t *v, const char *what, struct shoal_err *err)
{
	if (!json_is_object(v))
		return shoal_errf(err, SHOAL_EPROTO, "%s must be a JSON object", what);
	return 0;
}

/* The string at @key of @obj into heap *@out; absent or null gives NULL, which
 * is an error when @required. */
static int get_string(const json_t *obj, const char *key, bool required, const char *what,
		      char **out, struct shoal_err *err)
{
	const json_t *v = json_object_get(obj, key);
	size_t n;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return shoal_errf(err, SHOAL_EPROTO, "%s: %s is missing", what, key);
		return 0;
	}
	if (!json_is_string(v))
		return shoal_errf(err, SHOAL_EPROTO, "%s: %s must be a string", what, key);
	n = json_string_length(v);
	if (n > OCI_MAX_STRING)
		return shoal_errf(err, SHOAL_ETOOBIG, "%s: %s is longer than %u bytes", what, key,
				  OCI_MAX_STRING);
	if (required && n == 0)
		return shoal_errf(err, SHOAL_EPROTO, "%s: %s is empty", what, key);
	*out = strdup(json_string_value(v));
	if (*out == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* A non-negative integer at @key; absent or null gives 0 unless @required. */
static int get_uint(const json_t *obj, const char *key, bool required, const char *what,
		    uint64_t *out, struct shoal_err *err)
{
	const json_t *v = json_object_get(obj, key);

	*out = 0;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return shoal_errf(err, SHOAL_EPROTO, "%s: %s is missing", what, key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return shoal_errf(err, SHOAL_EPROTO, "%s: %s must be a non-negative integer", what,
				  key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

void oci_strlist_free(struct oci_strlist *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int oci_strlist_push(struct oci_strlist *l, const char *s)
{
	char **items;
	char *d = strdup(s);

	if (d == NULL)
		return SHOAL_ENOMEM;
	items = realloc(l->items, (l->n + 2) * sizeof(*items));
	if (items == NULL) {
		free(d);
		return SHOAL_ENOMEM;
	}
	l->items = items;
	l->items[l->n++] = d;
	l->items[l->n] = NULL;
	return 0;
}

int oci_strlist_push_all(struct oci_strlist *l, const struct oci_strlist *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (oci_strlist_push(l, src->items[i]) != 0)
			return SHOAL_ENOMEM;
	return 0;
}

int oci_strlist_copy(const struct oci_strlist *src, struct oci_strlist *dst)
{
	dst->n = 0;
	dst->items = calloc(src->n + 1, sizeof(*dst->items));
	if (dst->items == NULL)
		return SHOAL_ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->items[i] = strdup(src->items[i]);
		if (dst->items[i] == NULL) {
			oci_strlist_free(dst);
			return SHOAL_ENOMEM;
		}
		dst->n = i + 1;
	}
	return 0;
}

int oci_strlist_from_json(const json_t *v, size_t max, const char *what, struct oci_strlist *out,
			  struct shoal_err *err)
{
	size_t n;

	out->items = NULL;
	out->n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return shoal_errf(err, SHOAL_EPROTO, "%s must be an array of strings", what);
	n = json_array_size(v);
	if (n > max)
		return shoal_errf(err, SHOAL_ETOOBIG, "%s has %zu entries, more than %zu", what, n,
				  max);
	out->items = calloc(n + 1, sizeof(*out->items));
	if (out->items == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);
		if (!json_is_string(e) || json_string_length(e) > OCI_MAX_STRING) {
			oci_strlist_free(out);
			return shoal_errf(err, SHOAL_EPROTO,
					  "%s[%zu] must be a string of at most %u bytes", what, i,
					  OCI_MAX_STRING);
		}
		out->items[i] = strdup(json_string_value(e));
		if (out->items[i] == NULL) {
			oci_strlist_free(out);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		}
		out->n = i + 1;
	}
	return 0;
}

json_t *oci_strlist_to_json(const struct oci_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < l->n; i++)
		if (json_array_append_new(a, json_string(l->items[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* An array of at most @max strings at @key; absent or null gives an empty list. */
static int get_strlist(const json_t *obj, const char *key, size_t max, const char *what,
		       struct oci_strlist *out, struct shoal_err *err)
{
	char name[256];

	snprintf(name, sizeof(name), "%s: %s", what, key);
	return oci_strlist_from_json(json_object_get(obj, key), max, name, out, err);
}

/* "schemaVersion": 2, required. */
static int check_schema_version(const json_t *root, const char *what, struct shoal_err *err)
{
	const json_t *v = json_object_get(root, "schemaVersion");

	if (v == NULL)
		return shoal_errf(err, SHOAL_EPROTO, "%s: schemaVersion is missing", what);
	if (!json_is_integer(v) || json_integer_value(v) != 2)
		return shoal_errf(err, SHOAL_EPROTO, "%s: schemaVersion must be 2", what);
	return 0;
}

/* The document's own mediaType: absent gives @dflt; present must be one of @a, @b. */
static int get_doc_type(const json_t *root, enum oci_media_type a, enum oci_media_type b,
			enum oci_media_type dflt, const char *what, enum oci_media_type *out,
			struct shoal_err *err)
{
	const json_t *v = json_object_get(root, "mediaType");
	enum oci_media_type t;

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	if (!json_is_string(v))
		return shoal_errf(err, SHOAL_EPROTO, "%s: mediaType must be a string", what);
	t = oci_media_type_parse(json_string_value(v));
	if (t != a && t != b)
		return shoal_errf(err, SHOAL_EPROTO, "%s: unsupported media type '%.200s'", what,
				  json_string_value(v));
	*out = t;
	return 0;
}

static void platform_free(struct oci_platform *p)
{
	free(p->os);
	free(p->architecture);
	free(p->variant);
	memset(p, 0, sizeof(*p));
}

static void descriptor_free(struct oci_descriptor *d)
{
	platform_free(&d->platform);
	free(d->ref_name);
	free(d->image_name);
	memset(d, 0, sizeof(*d));
}

static int parse_platform(const json_t *v, const char *what, struct oci_platform *p,
			  struct shoal_err *err)
{
	char ctx[128];
	int rv;

	snprintf(ctx, sizeof(ctx), "%s.platform", what);
	rv = expect_object(v, ctx, err);
	if (rv == 0)
		rv = get_string(v, "os", true, ctx, &p->os, err);
	if (rv == 0)
		rv = get_string(v, "architecture", true, ctx, &p->architecture, err);
	if (rv == 0)
		rv = get_string(v, "variant", false, ctx, &p->variant, err);
	return rv;
}

/* A descriptor. With @allow_unknown (index entries) an unknown media type is
 * kept as OCI_MT_UNKNOWN; otherwise it is an error. */
static int parse_descriptor(const json_t *v, const char *what, bool allow_unknown,
			    struct oci_descriptor *d, struct shoal_err *err)
{
	const json_t *ann, *plat;
	char *s = NULL;
	int rv;

	memset(d, 0, sizeof(*d));
	rv = expect_object(v, what, err);
	if (rv != 0)
		return rv;
	rv = get_string(v, "mediaType", true, what, &s, err);
	if (rv != 0)
		return rv;
	d->media_type = oci_media_type_parse(s);
	if (d->media_type == OCI_MT_UNKNOWN && !allow_unknown) {
		rv = shoal_errf(err, SHOAL_EPROTO, "%s: unsupported media type '%.200s'", what, s);
		free(s);
		return rv;
	}
	free(s);
	rv = get_string(v, "digest", true, what, &s, err);
	if (rv != 0)
		return rv;
	rv = digest_parse(s, &d->digest, err);
	free(s);
	if (rv != 0) {
		shoal_err_wrap(err, "%s: digest", what);
		return SHOAL_EPROTO;
	}
	rv = get_uint(v, "size", true, what, &d->size, err);
	if (rv != 0)
		return rv;
	plat = json_object_get(v, "platform");
	if (plat != NULL && !json_is_null(plat)) {
		d->has_platform = true;
		rv = parse_platform(plat, what, &d->platform, err);
		if (rv != 0)
			goto err;
	}
	ann = json_object_get(v, "annotations");
	if (ann != NULL && !json_is_null(ann)) {
		char ctx[128];
		snprintf(ctx, sizeof(ctx), "%s.annotations", what);
		rv = expect_object(ann, ctx, err);
		if (rv == 0 && json_object_size(ann) > OCI_MAX_ITEMS)
			rv = shoal_errf(err, SHOAL_ETOOBIG, "%s has more than %u entries", ctx,
					OCI_MAX_ITEMS);
		if (rv == 0)
			rv = get_string(ann, "org.opencontainers.image.ref.name", false, ctx,
					&d->ref_name, err);
		if (rv == 0)
			rv = get_string(ann, "io.containerd.image.name", false, ctx, &d->image_name,
					err);
		if (rv != 0)
			goto err;
	}
	return 0;
err:
	descriptor_free(d);
	return rv;
}

/* The array of descriptors at @key: at most @max, required unless @optional. */
static int parse_descriptors(const json_t *root, const char *key, size_t max, bool optional,
			     bool allow_unknown, const char *what, struct oci_descriptor **out,
			     size_t *n_out, struct shoal_err *err)
{
	const json_t *arr = json_object_get(root, key);
	struct oci_descriptor *ds;
	size_t n;
	int rv;

	*out = NULL;
	*n_out = 0;
	if (arr == NULL || json_is_null(arr)) {
		if (optional)
			return 0;
		return shoal_errf(err, SHOAL_EPROTO, "%s: %s is missing", what, key);
	}
	if (!json_is_array(arr))
		return shoal_errf(err, SHOAL_EPROTO, "%s: %s must be an array", what, key);
	n = json_array_size(arr);
	if (n > max)
		return shoal_errf(err, SHOAL_ETOOBIG, "%s: %s has %zu entries, more than %zu", what,
				  key, n, max);
	if (n == 0)
		return 0;
	ds = calloc(n, sizeof(*ds));
	if (ds == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char ctx[96];
		snprintf(ctx, sizeof(ctx), "%s: %s[%zu]", what, key, i);
		rv = parse_descriptor(json_array_get(arr, i), ctx, allow_unknown, &ds[i], err);
		if (rv != 0) {
			for (size_t j = 0; j < i; j++)
				descriptor_free(&ds[j]);
			free(ds);
			return rv;
		}
	}
	*out = ds;
	*n_out = n;
	return 0;
}

/* ---- index ---- */

void oci_index_free(struct oci_index *idx)
{
	if (idx == NULL)
		return;
	for (size_t i = 0; i < idx->n_manifests; i++)
		descriptor_free(&idx->manifests[i]);
	free(idx->manifests);
	memset(idx, 0, sizeof(*idx));
}

int oci_index_parse(const char *json, size_t len, struct oci_index *out, struct shoal_err *err)
{
	const char *what = "image index";
	json_t *root = NULL;
	int rv;

	memset(out, 0, sizeof(*out));
	rv = load_json(json, len, OCI_MAX_MANIFEST, what, &root, err);
	if (rv == 0)
		rv = expect_object(root, what, err);
	if (rv == 0)
		rv = check_schema_version(root, what, err);
	if (rv == 0)
		rv = get_doc_type(root, OCI_MT_OCI_INDEX, OCI_MT_DOCKER_LIST, OCI_MT_OCI_INDEX,
				  what, &out->media_type, err);
	if (rv == 0)
		rv = parse_descriptors(root, "manifests", OCI_MAX_ITEMS, false, true, what,
				       &out->manifests, &out->n_manifests, err);
	json_decref(root);
	if (rv != 0)
		oci_index_free(out);
	return rv;
}

int oci_index_select(const struct oci_index *idx, const char *os, const char *arch,
		     const struct oci_descriptor **out, struct shoal_err *err)
{
	struct buf seen;
	int rv;

	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct oci_descriptor *d = &idx->manifests[i];
		if (!oci_media_type_is_manifest(d->media_type) || !d->has_platform)
			continue;
		if (strcmp(d->platform.os, os) == 0 &&
		    strcmp(d->platform.architecture, arch) == 0) {
			*out = d;
			return 0;
		}
	}
	buf_init(&seen);
	for (size_t i = 0; i < idx->n_manifests && seen.len < 200; i++) {
		const struct oci_descriptor *d = &idx->manifests[i];
		if (!oci_media_type_is_manifest(d->media_type) || !d->has_platform)
			continue;
		buf_appendf(&seen, "%s%.40s/%.40s", seen.len > 0 ? ", " : "", d->platform.os,
			    d->platform.architecture);
	}
	rv = shoal_errf(err, SHOAL_ENOTFOUND, "no image for %s/%s in the index (it has: %s)", os,
			arch, seen.len > 0 ? seen.data : "no platform-specific images");
	buf_free(&seen);
	return rv;
}

/* ---- manifest ---- */

void oci_manifest_free(struct oci_manifest *m)
{
	if (m == NULL)
		return;
	descriptor_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_free(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

int oci_manifest_parse(const char *json, size_t len, struct oci_manifest *out,
		       struct shoal_err *err)
{
	const char *what = "image manifest";
	json_t *root = NULL;
	int rv;

	memset(out, 0, sizeof(*out));
	rv = load_json(json, len, OCI_MAX_MANIFEST, what, &root, err);
	if (rv == 0)
		rv = expect_object(root, what, err);
	if (rv == 0)
		rv = check_schema_version(root, what, err);
	if (rv == 0)
		rv = get_doc_type(root, OCI_MT_OCI_MANIFEST, OCI_MT_DOCKER_MANIFEST,
				  OCI_MT_OCI_MANIFEST, what, &out->media_type, err);
	if (rv == 0)
		rv = parse_descriptor(json_object_get(root, "config"), "image manifest: config",
				      false, &out->config, err);
	if (rv == 0 && !oci_media_type_is_config(out->config.media_type))
		rv = shoal_errf(err, SHOAL_EPROTO,
				"image manifest: config has media type %s, not an image config: "
				"this is not a container image",
				oci_media_type_name(out->config.media_type));
	if (rv == 0)
		rv = parse_descriptors(root, "layers", OCI_MAX_LAYERS, false, false, what,
				       &out->layers, &out->n_layers, err);
	for (size_t i = 0; rv == 0 && i < out->n_layers; i++)
		if (!oci_media_type_is_layer(out->layers[i].media_type))
			rv =
			    shoal_errf(err, SHOAL_EPROTO,
				       "image manifest: layers[%zu] has media type %s, not a layer",
				       i, oci_media_type_name(out->layers[i].media_type));
	json_decref(root);
	if (rv != 0)
		oci_manifest_free(out);
	return rv;
}

static json_t *descriptor_json(const struct oci_descriptor *d)
{
	return json_pack("{s:s, s:I, s:s}", "mediaType", oci_media_type_name(d->media_type), "size",
			 (json_int_t)d->size, "digest", d->digest.str);
}

int oci_manifest_encode(const struct oci_manifest *m, char **json, size_t *len,
			struct shoal_err *err)
{
	json_t *root, *layers;
	char *s;

	PRE(oci_media_type_is_manifest(m->media_type));
	PRE(oci_media_type_is_config(m->config.media_type));
	layers = json_array();
	root = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
			 oci_media_type_name(m->media_type), "config", descriptor_json(&m->config),
			 "layers", layers);
	if (root == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory encoding a manifest");
	for (size_t i = 0; i < m->n_layers; i++) {
		PRE(oci_media_type_is_layer(m->layers[i].media_type));
		if (json_array_append_new(layers, descriptor_json(&m->layers[i])) != 0) {
			json_decref(root);
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory encoding a manifest");
		}
	}
	s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory encoding a manifest");
	*json = s;
	*len = strlen(s);
	return 0;
}

/* ---- config ---- */

void oci_config_free(struct oci_config *c)
{
	if (c == NULL)
		return;
	free(c->architecture);
	free(c->os);
	free(c->variant);
	free(c->created);
	free(c->user);
	free(c->working_dir);
	free(c->stop_signal);
	oci_strlist_free(&c->entrypoint);
	oci_strlist_free(&c->cmd);
	oci_strlist_free(&c->env);
	oci_strlist_free(&c->exposed_ports);
	for (size_t i = 0; i < c->n_labels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	oci_strlist_free(&c->healthcheck.test);
	free(c->diff_ids);
	memset(c, 0, sizeof(*c));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int oci_label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct oci_label *)a)->key, ((const struct oci_label *)b)->key);
}

/* "80", "80/tcp", "8000-8010/udp": Docker's port syntax. Writes the form with
 * the protocol ("80/tcp") into @out. */
static bool port_normalize(const char *s, char *out, size_t len)
{
	unsigned long lo, hi;
	const char *proto = "tcp";
	const char *slash = strchr(s, '/');
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	lo = strtoul(s, &end, 10);
	hi = lo;
	if (*end == '-') {
		if (end[1] < '0' || end[1] > '9')
			return false;
		hi = strtoul(end + 1, &end, 10);
	}
	if (end != (slash != NULL ? slash : s + strlen(s)))
		return false;
	if (lo == 0 || lo > 65535 || hi < lo || hi > 65535)
		return false;
	if (slash != NULL) {
		proto = slash + 1;
		if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 &&
		    strcmp(proto, "sctp") != 0)
			return false;
	}
	if (hi != lo)
		snprintf(out, len, "%lu-%lu/%s", lo, hi, proto);
	else
		snprintf(out, len, "%lu/%s", lo, proto);
	return true;
}

static int parse_exposed_ports(const json_t *cfg, struct oci_strlist *out, struct shoal_err *err)
{
	json_t *ports = json_object_get(cfg, "ExposedPorts");
	const char *key;
	json_t *v;
	size_t n = 0;

	if (ports == NULL || json_is_null(ports))
		return 0;
	if (!json_is_object(ports))
		return shoal_errf(err, SHOAL_EPROTO,
				  "image config: config.ExposedPorts must be an object");
	if (json_object_size(ports) > OCI_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "image config: config.ExposedPorts has more than %u entries",
				  OCI_MAX_ITEMS);
	if (json_object_size(ports) == 0)
		return 0;
	out->items = calloc(json_object_size(ports), sizeof(*out->items));
	if (out->items == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	json_object_foreach(ports, key, v)
	{
		char norm[64];
		if (!port_normalize(key, norm, sizeof(norm)))
			return shoal_errf(
			    err, SHOAL_EPROTO,
			    "image config: config.ExposedPorts: '%.40s' is not a port "
			    "(expected PORT[/tcp|udp|sctp])",
			    key);
		out->items[n] = strdup(norm);
		if (out->items[n] == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		out->n = ++n;
	}
	qsort(out->items, out->n, sizeof(*out->items), cmp_str);
	/* "80" and "80/tcp" are the same port. */
	n = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (n > 0 && strcmp(out->items[n - 1], out->items[i]) == 0) {
			free(out->items[i]);
			continue;
		}
		out->items[n++] = out->items[i];
	}
	out->n = n;
	return 0;
}

static int parse_labels(const json_t *cfg, struct oci_config *c, struct shoal_err *err)
{
	json_t *labels = json_object_get(cfg, "Labels");
	const char *key;
	json_t *v;

	if (labels == NULL || json_is_null(labels))
		return 0;
	if (!json_is_object(labels))
		return shoal_errf(err, SHOAL_EPROTO,
				  "image config: config.Labels must be an object");
	if (json_object_size(labels) > OCI_MAX_ITEMS)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "image config: config.Labels has more than %u entries",
				  OCI_MAX_ITEMS);
	if (json_object_size(labels) == 0)
		return 0;
	c->labels = calloc(json_object_size(labels), sizeof(*c->labels));
	if (c->labels == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	json_object_foreach(labels, key, v)
	{
		struct oci_label *l = &c->labels[c->n_labels];
		if (!json_is_string(v) || json_string_length(v) > OCI_MAX_STRING ||
		    strlen(key) > OCI_MAX_STRING)
			return shoal_errf(
			    err, SHOAL_EPROTO,
			    "image config: config.Labels: the value of '%.80s' must be "
			    "a string of at most %u bytes",
			    key, OCI_MAX_STRING);
		l->key = strdup(key);
		l->value = strdup(json_string_value(v));
		c->n_labels++;
		if (l->key == NULL || l->value == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	qsort(c->labels, c->n_labels, sizeof(*c->labels), oci_label_cmp);
	return 0;
}

/* A Go time.Duration in ns: a non-negative integer; absent or null is 0. */
static int get_duration(const json_t *hc, const char *key, int64_t *out, struct shoal_err *err)
{
	const json_t *v = json_object_get(hc, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "image config: config.Healthcheck.%s must be a non-negative "
				  "integer (nanoseconds)",
				  key);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int parse_healthcheck(const json_t *cfg, struct oci_healthcheck *h, struct shoal_err *err)
{
	const char *what = "image config: config.Healthcheck";
	const json_t *hc = json_object_get(cfg, "Healthcheck");
	uint64_t retries = 0;
	int rv;

	if (hc == NULL || json_is_null(hc))
		return 0;
	rv = expect_object(hc, what, err);
	if (rv == 0)
		rv = get_strlist(hc, "Test", OCI_MAX_ITEMS, what, &h->test, err);
	if (rv == 0 && h->test.n > 0 && strcmp(h->test.items[0], "NONE") != 0 &&
	    strcmp(h->test.items[0], "CMD") != 0 && strcmp(h->test.items[0], "CMD-SHELL") != 0)
		rv = shoal_errf(err, SHOAL_EPROTO,
				"%s: Test must start with NONE, CMD or CMD-SHELL, not '%.40s'",
				what, h->test.items[0]);
	if (rv == 0)
		rv = get_duration(hc, "Interval", &h->interval_ns, err);
	if (rv == 0)
		rv = get_duration(hc, "Timeout", &h->timeout_ns, err);
	if (rv == 0)
		rv = get_duration(hc, "StartPeriod", &h->start_period_ns, err);
	if (rv == 0)
		rv = get_duration(hc, "StartInterval", &h->start_interval_ns, err);
	if (rv == 0)
		rv = get_uint(hc, "Retries", false, what, &retries, err);
	if (rv == 0 && retries > INT32_MAX)
		rv = shoal_errf(err, SHOAL_EPROTO, "%s: Retries is too large", what);
	h->retries = (int64_t)retries;
	return rv;
}

static int parse_rootfs(const json_t *root, struct oci_config *c, struct shoal_err *err)
{
	const char *what = "image config: rootfs";
	const json_t *rootfs = json_object_get(root, "rootfs");
	const json_t *type, *ids;
	size_t n;

	if (rootfs == NULL)
		return shoal_errf(err, SHOAL_EPROTO, "image config: rootfs is missing");
	if (!json_is_object(rootfs))
		return shoal_errf(err, SHOAL_EPROTO, "%s must be an object", what);
	type = json_object_get(rootfs, "type");
	if (!json_is_string(type) || strcmp(json_string_value(type), "layers") != 0)
		return shoal_errf(err, SHOAL_EPROTO, "%s: type must be \"layers\"", what);
	ids = json_object_get(rootfs, "diff_ids");
	if (ids == NULL || json_is_null(ids))
		return 0;
	if (!json_is_array(ids))
		return shoal_errf(err, SHOAL_EPROTO, "%s: diff_ids must be an array", what);
	n = json_array_size(ids);
	if (n > OCI_MAX_LAYERS)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "%s: the image has %zu layers, more than the limit of %u", what,
				  n, OCI_MAX_LAYERS);
	if (n == 0)
		return 0;
	c->diff_ids = calloc(n, sizeof(*c->diff_ids));
	if (c->diff_ids == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(ids, i);
		if (!json_is_string(e) || digest_parse(json_string_value(e), &c->diff_ids[i], err))
			return shoal_errf(err, SHOAL_EPROTO,
					  "%s: diff_ids[%zu] must be a sha256 digest", what, i);
	}
	c->n_diff_ids = n;
	return 0;
}

int oci_config_parse(const char *json, size_t len, struct oci_config *out, struct shoal_err *err)
{
	const char *what = "image config";
	const char *cwhat = "image config: config";
	const json_t *cfg;
	json_t *root = NULL;
	int rv;

	memset(out, 0, sizeof(*out));
	rv = load_json(json, len, OCI_MAX_CONFIG, what, &root, err);
	if (rv == 0)
		rv = expect_object(root, what, err);
	if (rv == 0)
		rv = get_string(root, "architecture", true, what, &out->architecture, err);
	if (rv == 0)
		rv = get_string(root, "os", true, what, &out->os, err);
	if (rv == 0)
		rv = get_string(root, "variant", false, what, &out->variant, err);
	if (rv == 0)
		rv = get_string(root, "created", false, what, &out->created, err);
	if (rv == 0)
		rv = parse_rootfs(root, out, err);
	if (rv != 0)
		goto out;
	cfg = json_object_get(root, "config");
	if (cfg == NULL || json_is_null(cfg))
		goto out;
	rv = expect_object(cfg, cwhat, err);
	if (rv == 0)
		rv = get_string(cfg, "User", false, cwhat, &out->user, err);
	if (rv == 0)
		rv = get_string(cfg, "WorkingDir", false, cwhat, &out->working_dir, err);
	if (rv == 0)
		rv = get_string(cfg, "StopSignal", false, cwhat, &out->stop_signal, err);
	if (rv == 0)
		rv = get_strlist(cfg, "Entrypoint", OCI_MAX_ITEMS, cwhat, &out->entrypoint, err);
	if (rv == 0)
		rv = get_strlist(cfg, "Cmd", OCI_MAX_ITEMS, cwhat, &out->cmd, err);
	if (rv == 0)
		rv = get_strlist(cfg, "Env", OCI_MAX_ITEMS, cwhat, &out->env, err);
	if (rv == 0)
		rv = parse_exposed_ports(cfg, &out->exposed_ports, err);
	if (rv == 0)
		rv = parse_labels(cfg, out, err);
	if (rv == 0)
		rv = parse_healthcheck(cfg, &out->healthcheck, err);
out:
	json_decref(root);
	if (rv != 0)
		oci_config_free(out);
	return rv;
}

/* ---- docker save manifest.json ---- */

void oci_docker_save_free(struct oci_docker_save *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_images; i++) {
		free(s->images[i].config);
		oci_strlist_free(&s->images[i].tags);
		oci_strlist_free(&s->images[i].layers);
	}
	free(s->images);
	memset(s, 0, sizeof(*s));
}

/* A relative path that stays inside the archive: no leading '/', no ".."
 * component, not empty, bounded. */
static bool archive_path_ok(const char *p)
{
	size_t n = strlen(p);
	const char *c = p;

	if (n == 0 || n > OCI_MAX_PATH || p[0] == '/')
		return false;
	while (*c != '\0') {
		size_t k = strcspn(c, "/");
		if (k == 2 && c[0] == '.' && c[1] == '.')
			return false;
		c += k;
		if (*c == '/')
			c++;
	}
	return true;
}

int oci_docker_save_parse(const char *json, size_t len, struct oci_docker_save *out,
			  struct shoal_err *err)
{
	const char *what = "manifest.json";
	json_t *root = NULL;
	size_t n;
	int rv;

	memset(out, 0, sizeof(*out));
	rv = load_json(json, len, OCI_MAX_MANIFEST, what, &root, err);
	if (rv != 0)
		return rv;
	if (!json_is_array(root)) {
		rv = shoal_errf(err, SHOAL_EPROTO, "%s must be a JSON array", what);
		goto out;
	}
	n = json_array_size(root);
	if (n > OCI_MAX_ITEMS) {
		rv = shoal_errf(err, SHOAL_ETOOBIG, "%s lists %zu images, more than %u", what, n,
				OCI_MAX_ITEMS);
		goto out;
	}
	if (n > 0) {
		out->images = calloc(n, sizeof(*out->images));
		if (out->images == NULL) {
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < n && rv == 0; i++) {
		const json_t *e = json_array_get(root, i);
		struct oci_docker_save_image *img = &out->images[i];
		char ctx[64];

		out->n_images = i + 1;
		snprintf(ctx, sizeof(ctx), "%s: [%zu]", what, i);
		rv = expect_object(e, ctx, err);
		if (rv == 0)
			rv = get_string(e, "Config", true, ctx, &img->config, err);
		if (rv == 0)
			rv = get_strlist(e, "RepoTags", OCI_MAX_ITEMS, ctx, &img->tags, err);
		if (rv == 0 && json_object_get(e, "Layers") == NULL)
			rv = shoal_errf(err, SHOAL_EPROTO, "%s: Layers is missing", ctx);
		if (rv == 0)
			rv = get_strlist(e, "Layers", OCI_MAX_LAYERS, ctx, &img->layers, err);
		if (rv == 0 && !archive_path_ok(img->config))
			rv = shoal_errf(err, SHOAL_EPROTO,
					"%s: Config '%.200s' is not a path inside the archive", ctx,
					img->config);
		for (size_t j = 0; rv == 0 && j < img->layers.n; j++)
			if (!archive_path_ok(img->layers.items[j]))
				rv = shoal_errf(err, SHOAL_EPROTO,
						"%s: Layers[%zu] '%.200s' is not a path inside the "
						"archive",
						ctx, j, img->layers.items[j]);
	}
out:
	json_decref(root);
	if (rv != 0)
		oci_docker_save_free(out);
	return rv;
}

int oci_layout_check(const char *json, size_t len, struct shoal_err *err)
{
	const json_t *v;
	json_t *root = NULL;
	int rv;

	rv = load_json(json, len, 64u << 10, "oci-layout", &root, err);
	if (rv != 0)
		return rv;
	v = json_is_object(root) ? json_object_get(root, "imageLayoutVersion") : NULL;
	if (!json_is_string(v))
		rv = shoal_errf(err, SHOAL_EPROTO, "oci-layout: imageLayoutVersion is missing");
	else if (strcmp(json_string_value(v), "1.0.0") != 0)
		rv = shoal_errf(err, SHOAL_EPROTO,
				"oci-layout: image layout version %.40s is not supported (only "
				"1.0.0)",
				json_string_value(v));
	json_decref(root);
	return rv;
}
