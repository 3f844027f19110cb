/* OCI and Docker image documents: media types, bounded and type-checked parsers. */
#ifndef SHOAL_RUNTIME_OCI_H
#define SHOAL_RUNTIME_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "runtime/digest.h"

/* Bounds on anything parsed here. A document over its size limit, a list over
 * OCI_MAX_ITEMS or a string over OCI_MAX_STRING is refused with SHOAL_ETOOBIG. */
#define OCI_MAX_MANIFEST (4u << 20)  /* bytes of a manifest, index or manifest.json */
#define OCI_MAX_CONFIG	 (8u << 20)  /* bytes of an image config */
#define OCI_MAX_LAYERS	 128u	     /* layers of one image (overlayfs stacks this many) */
#define OCI_MAX_ITEMS	 10000u	     /* entries of any other list or map */
#define OCI_MAX_STRING	 (64u << 10) /* bytes of one string */
#define OCI_MAX_PATH	 4096u	     /* bytes of a path inside a docker-save archive */

/* Every media type we know. Documents, configs and layers of other types are
 * refused; an index may list other things (signatures, attestations): those
 * entries parse as OCI_MT_UNKNOWN and are never selected. */
enum oci_media_type {
	OCI_MT_UNKNOWN = 0,
	OCI_MT_OCI_INDEX,	  /* application/vnd.oci.image.index.v1+json */
	OCI_MT_OCI_MANIFEST,	  /* application/vnd.oci.image.manifest.v1+json */
	OCI_MT_OCI_CONFIG,	  /* application/vnd.oci.image.config.v1+json */
	OCI_MT_OCI_LAYER,	  /* application/vnd.oci.image.layer.v1.tar */
	OCI_MT_OCI_LAYER_GZIP,	  /* ...layer.v1.tar+gzip */
	OCI_MT_OCI_LAYER_ZSTD,	  /* ...layer.v1.tar+zstd */
	OCI_MT_OCI_LAYER_ND,	  /* ...layer.nondistributable.v1.tar (deprecated) */
	OCI_MT_OCI_LAYER_ND_GZIP, /* ...layer.nondistributable.v1.tar+gzip (deprecated) */
	OCI_MT_DOCKER_LIST,	  /* application/vnd.docker.distribution.manifest.list.v2+json */
	OCI_MT_DOCKER_MANIFEST,	  /* application/vnd.docker.distribution.manifest.v2+json */
	OCI_MT_DOCKER_CONFIG,	  /* application/vnd.docker.container.image.v1+json */
	OCI_MT_DOCKER_LAYER,	  /* application/vnd.docker.image.rootfs.diff.tar */
	OCI_MT_DOCKER_LAYER_GZIP, /* application/vnd.docker.image.rootfs.diff.tar.gzip */
	OCI_MT_DOCKER_FOREIGN,	  /* application/vnd.docker.image.rootfs.foreign.diff.tar.gzip */
};

/* The type named by @s, or OCI_MT_UNKNOWN. */
enum oci_media_type oci_media_type_parse(const char *s);
/* The string of @t (NULL for OCI_MT_UNKNOWN). */
const char *oci_media_type_name(enum oci_media_type t);
bool oci_media_type_is_index(enum oci_media_type t);
bool oci_media_type_is_manifest(enum oci_media_type t);
bool oci_media_type_is_config(enum oci_media_type t);
bool oci_media_type_is_layer(enum oci_media_type t);

/* A list of heap strings, owned by the structure holding it. */
struct oci_strlist {
	char **items;
	size_t n;
};

/* One label; both strings on the heap. */
struct oci_label {
	char *key;
	char *value;
};

/* String lists. Those made by oci_strlist_push(), oci_strlist_push_all(),
 * oci_strlist_copy() and oci_strlist_from_json() keep items NULL-terminated
 * (items[n] == NULL whenever items is not NULL), so args and env can go to
 * exec as they are. An empty list may have items NULL. */

/* Free @l's strings and array and leave it empty; @l may be NULL. */
void oci_strlist_free(struct oci_strlist *l);

/* Append a copy of @s. Returns 0, or SHOAL_ENOMEM with @l unchanged. */
int oci_strlist_push(struct oci_strlist *l, const char *s);

/* Append copies of every string of @src, in order. Returns 0, or
 * SHOAL_ENOMEM with only some of them appended (free @l). */
int oci_strlist_push_all(struct oci_strlist *l, const struct oci_strlist *src);

/* Fill *@dst, which is overwritten (not freed), with copies of @src's
 * strings; items is allocated even for an empty @src. Returns 0, or
 * SHOAL_ENOMEM with *@dst empty. */
int oci_strlist_copy(const struct oci_strlist *src, struct oci_strlist *dst);

/* @v, a JSON array of at most @max strings of at most OCI_MAX_STRING bytes
 * each, into *@out, which is overwritten (not freed); NULL or JSON null gives
 * an empty list. Returns 0, or SHOAL_EPROTO, SHOAL_ETOOBIG or SHOAL_ENOMEM
 * with *@out empty and a message starting with @what, the name of the list
 * ("image config: config.Cmd must be an array of strings"). */
int oci_strlist_from_json(const json_t *v, size_t max, const char *what, struct oci_strlist *out,
			  struct shoal_err *err);

/* A new JSON array of @l's strings, or NULL when out of memory. */
json_t *oci_strlist_to_json(const struct oci_strlist *l);

/* A qsort() comparator ordering struct oci_label by key. */
int oci_label_cmp(const void *a, const void *b);

struct oci_platform {
	char *os;	    /* "linux" */
	char *architecture; /* "amd64" */
	char *variant;	    /* NULL when absent */
};

/* A content descriptor. Strings are heap-owned; NULL when absent. */
struct oci_descriptor {
	enum oci_media_type media_type; /* OCI_MT_UNKNOWN only for index entries */
	struct digest digest;
	uint64_t size;
	bool has_platform;
	struct oci_platform platform;
	char *ref_name;	  /* annotation org.opencontainers.image.ref.name */
	char *image_name; /* annotation io.containerd.image.name */
};

/* An OCI image index or a Docker manifest list. */
struct oci_index {
	enum oci_media_type media_type; /* OCI_MT_OCI_INDEX or OCI_MT_DOCKER_LIST */
	struct oci_descriptor *manifests;
	size_t n_manifests;
};

/* An OCI image manifest or a Docker v2 schema 2 manifest. */
struct oci_manifest {
	enum oci_media_type media_type; /* OCI_MT_OCI_MANIFEST or OCI_MT_DOCKER_MANIFEST */
	struct oci_descriptor config;	/* a config media type */
	struct oci_descriptor *layers;	/* base layer first; layer media types */
	size_t n_layers;
};

/* Docker HEALTHCHECK as stored in an image config. Durations in ns; 0 = the
 * default. test.n == 0 means the image sets none; test.items[0] is "NONE",
 * "CMD" or "CMD-SHELL". */
struct oci_healthcheck {
	struct oci_strlist test;
	int64_t interval_ns;
	int64_t timeout_ns;
	int64_t start_period_ns;
	int64_t start_interval_ns;
	int64_t retries;
};

/* The parts of an OCI/Docker image config a runtime needs. Heap-owned; strings
 * are NULL when absent. */
struct oci_config {
	char *architecture; /* "amd64" */
	char *os;	    /* "linux" */
	char *variant;
	char *created; /* RFC 3339, as written by the builder */
	char *user;
	char *working_dir;
	char *stop_signal;
	struct oci_strlist entrypoint;
	struct oci_strlist cmd;
	struct oci_strlist env;		  /* "KEY=value" */
	struct oci_strlist exposed_ports; /* "80/tcp", sorted, duplicates removed */
	struct oci_label *labels;	  /* sorted by key */
	size_t n_labels;
	struct oci_healthcheck healthcheck;
	struct digest *diff_ids; /* rootfs.diff_ids, base layer first */
	size_t n_diff_ids;
};

/* One image of a docker-save manifest.json. Paths are relative to the
 * archive's root, checked to stay inside it. */
struct oci_docker_save_image {
	char *config;		 /* "<hex>.json" or "blobs/sha256/<hex>" */
	struct oci_strlist tags; /* RepoTags as written: "busybox:latest" */
	struct oci_strlist layers;
};

struct oci_docker_save {
	struct oci_docker_save_image *images;
	size_t n_images;
};

/* Parsers. Each reads @len bytes of JSON at @json (no NUL needed), checks types
 * and bounds, and on success fills *@out, which owns its memory: release it
 * with the matching *_free(). On failure *@out is left empty (safe to free) and
 * the result is SHOAL_EPROTO (or SHOAL_ETOOBIG, SHOAL_ENOMEM) with a message
 * naming the offending field. Duplicate keys are refused. */

/* An OCI image index or Docker manifest list (mediaType, when present, must be
 * one of those two; absent means OCI). */
int oci_index_parse(const char *json, size_t len, struct oci_index *out, struct shoal_err *err);
void oci_index_free(struct oci_index *idx);

/* An OCI image manifest or Docker v2 schema 2 manifest (absent mediaType means
 * OCI). The config and every layer must have a known media type of its kind,
 * and there are at most OCI_MAX_LAYERS layers. */
int oci_manifest_parse(const char *json, size_t len, struct oci_manifest *out,
		       struct shoal_err *err);
void oci_manifest_free(struct oci_manifest *m);

/* Serialise @m (config and layers; no annotations or platforms) as compact
 * JSON in a canonical field order, into a heap buffer the caller frees. The
 * same manifest always gives the same bytes, so the same digest. */
int oci_manifest_encode(const struct oci_manifest *m, char **json, size_t *len,
			struct shoal_err *err);

/* An OCI image config or Docker image config. architecture, os and
 * rootfs (type "layers") are required; the rest is optional. */
int oci_config_parse(const char *json, size_t len, struct oci_config *out, struct shoal_err *err);
void oci_config_free(struct oci_config *c);

/* docker save's manifest.json. */
int oci_docker_save_parse(const char *json, size_t len, struct oci_docker_save *out,
			  struct shoal_err *err);
void oci_docker_save_free(struct oci_docker_save *s);

/* An OCI layout's oci-layout file: imageLayoutVersion must be "1.0.0". */
int oci_layout_check(const char *json, size_t len, struct shoal_err *err);

/* The first manifest of @idx for @os/@arch (e.g. "linux", "amd64"; variants
 * are not compared). Returns 0 with *@out pointing into @idx, or
 * SHOAL_ENOTFOUND listing the platforms the index offers. */
int oci_index_select(const struct oci_index *idx, const char *os, const char *arch,
		     const struct oci_descriptor **out, struct shoal_err *err);

#endif
