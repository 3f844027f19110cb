/* `image load`: docker save archives and OCI image-layout archives into the image store. */
#include "runtime/image_load.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fsutil.h"

#define READ_BLOCK (64 * 1024)

/* A file of the archive that became a blob, or a link to another file. */
struct file {
	char *path; /* clean, relative to the archive's root */
	char *link; /* clean target path for symlinks and hardlinks, else NULL */
	struct digest digest;
	uint64_t size;
};

/* An image to register: its manifest blob and the names the archive gives it. */
struct pending {
	struct digest manifest;
	struct oci_strlist names;
};

/* A small JSON file kept in memory. */
struct meta {
	struct buf text;
	bool seen;
};

struct load {
	struct image_store *s;
	struct archive *a;
	struct file *files; /* sorted by path once the archive is read */
	size_t n_files;
	size_t cap_files;
	struct meta manifest_json; /* docker save */
	struct meta index_json;	   /* OCI layout */
	struct meta layout;	   /* OCI layout */
	struct pending *pending;   /* images to register, in archive order */
	size_t n_pending;
	unsigned char buf[READ_BLOCK];
	struct shoal_err *err;
};

/* Normalise @rel (relative to directory @base, may be NULL) into @out:
 * components joined by '/', without empty or "." ones. ".." pops a component
 * when @dotdot, else is refused; so is leaving the root and an absolute @rel.
 * Returns 0 or -1. */
static int norm(const char *base, const char *rel, bool dotdot, char *out, size_t len)
{
	const char *parts[2] = {base != NULL ? base : "", rel};
	size_t o = 0;

	if (rel[0] == '/')
		return -1;
	for (size_t i = 0; i < 2; i++) {
		const char *p = parts[i];
		while (*p != '\0') {
			size_t k = strcspn(p, "/");
			if (k == 2 && p[0] == '.' && p[1] == '.') {
				if (!dotdot || o == 0)
					return -1;
				while (o > 0 && out[o - 1] != '/')
					o--;
				if (o > 0)
					o--;
			} else if (k > 0 && !(k == 1 && p[0] == '.')) {
				if (o + k + 2 > len)
					return -1;
				if (o > 0)
					out[o++] = '/';
				memcpy(out + o, p, k);
				o += k;
			}
			p += k;
			if (*p == '/')
				p++;
		}
	}
	out[o] = '\0';
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->path, ((const struct file *)b)->path);
}

static int cmp_path_file(const void *key, const void *elem)
{
	return strcmp(key, ((const struct file *)elem)->path);
}

static const struct file *find_file(const struct load *l, const char *path)
{
	if (l->n_files == 0)
		return NULL;
	return bsearch(path, l->files, l->n_files, sizeof(*l->files), cmp_path_file);
}

static struct file *new_file(struct load *l, const char *path)
{
	struct file *f;

	if (l->n_files == l->cap_files) {
		size_t cap = l->cap_files ? 2 * l->cap_files : 16;
		f = realloc(l->files, cap * sizeof(*f));
		if (f == NULL)
			return NULL;
		l->files = f;
		l->cap_files = cap;
	}
	f = &l->files[l->n_files];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (f->path == NULL)
		return NULL;
	l->n_files++;
	return f;
}

static int read_meta(struct load *l, struct archive_entry *e, const char *path, struct meta *m)
{
	const size_t max = OCI_MAX_MANIFEST;

	if (m->seen)
		return shoal_errf(l->err, SHOAL_EPROTO, "the archive holds %s twice", path);
	m->seen = true;
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > (la_int64_t)max)
		return shoal_errf(l->err, SHOAL_ETOOBIG, "%s is larger than %zu bytes", path, max);
	for (;;) {
		la_ssize_t n = archive_read_data(l->a, l->buf, sizeof(l->buf));
		if (n < 0)
			return shoal_errf(l->err, SHOAL_EPROTO, "the archive is corrupt at %s: %s",
					  path, archive_error_string(l->a));
		if (n == 0)
			return 0;
		if ((size_t)n > max - m->text.len)
			return shoal_errf(l->err, SHOAL_ETOOBIG, "%s is larger than %zu bytes",
					  path, max);
		if (buf_append(&m->text, l->buf, (size_t)n) != 0)
			return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
	}
}

/* Stream the current entry into a blob; @expected (may be NULL) is the digest
 * its name claims. */
static int read_blob(struct load *l, const char *path, const struct digest *expected)
{
	struct image_blob_writer w;
	struct file *f;
	struct digest d;
	uint64_t size;
	int rv;

	rv = image_store_blob_begin(l->s, &w, l->err);
	if (rv != 0)
		return rv;
	for (;;) {
		la_ssize_t n = archive_read_data(l->a, l->buf, sizeof(l->buf));
		if (n < 0) {
			image_store_blob_abort(&w);
			return shoal_errf(l->err, SHOAL_EPROTO, "the archive is corrupt at %s: %s",
					  path, archive_error_string(l->a));
		}
		if (n == 0)
			break;
		rv = image_store_blob_write(&w, l->buf, (size_t)n, l->err);
		if (rv != 0)
			return rv;
	}
	rv = image_store_blob_commit(l->s, &w, expected, &d, &size, l->err);
	if (rv != 0) {
		shoal_err_wrap(l->err, "archive entry '%s'", path);
		return rv;
	}
	f = new_file(l, path);
	if (f == NULL)
		return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
	f->digest = d;
	f->size = size;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A regular file: metadata to keep, docker save's v1 leftovers to skip
 * (repositories, <id>/json, <id>/VERSION), or a blob; a blob named by a
 * digest (blobs/sha256/<hex>, docker save's <hex>.json) must have it. */
static int read_file(struct load *l, struct archive_entry *e, const char *path)
{
	static const char blobs[] = "blobs/sha256/";
	const char *base = strrchr(path, '/');
	struct digest expected;
	char hex[DIGEST_HEX_LEN + 1];

	if (strcmp(path, "manifest.json") == 0)
		return read_meta(l, e, path, &l->manifest_json);
	if (strcmp(path, "index.json") == 0)
		return read_meta(l, e, path, &l->index_json);
	if (strcmp(path, "oci-layout") == 0)
		return read_meta(l, e, path, &l->layout);
	if (strcmp(path, "repositories") == 0 ||
	    (base != NULL && (strcmp(base, "/json") == 0 || strcmp(base, "/VERSION") == 0)))
		return 0;
	if (strncmp(path, "blobs/", 6) == 0) {
		if (strncmp(path, blobs, sizeof(blobs) - 1) != 0)
			return shoal_errf(l->err, SHOAL_EPROTO,
					  "archive entry '%.200s': only sha256 blobs are supported",
					  path);
		if (digest_from_hex(path + sizeof(blobs) - 1, &expected, NULL) != 0)
			return shoal_errf(l->err, SHOAL_EPROTO,
					  "archive entry '%.200s' is not named by a sha256 digest",
					  path);
		return read_blob(l, path, &expected);
	}
	if (base == NULL && strlen(path) == DIGEST_HEX_LEN + 5 && ends_with(path, ".json")) {
		memcpy(hex, path, DIGEST_HEX_LEN);
		hex[DIGEST_HEX_LEN] = '\0';
		if (digest_from_hex(hex, &expected, NULL) == 0)
			return read_blob(l, path, &expected);
	}
	return read_blob(l, path, NULL);
}

static int read_archive(struct load *l)
{
	struct archive_entry *e;
	char path[PATH_MAX], prev[256] = "";
	uint64_t entries = 0;
	int r, rv;

	for (;;) {
		const char *raw, *target;
		char dir[PATH_MAX], tpath[PATH_MAX], *slash;
		struct file *f;

		r = archive_read_next_header(l->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			if (entries == 0)
				return shoal_errf(l->err, SHOAL_EPROTO,
						  "not an image archive (a tar file, optionally "
						  "gzip-compressed): %s",
						  archive_error_string(l->a));
			return shoal_errf(l->err, SHOAL_EPROTO,
					  "the archive is corrupt after '%s': %s", prev,
					  archive_error_string(l->a));
		}
		if (++entries > IMAGE_LOAD_MAX_ENTRIES)
			return shoal_errf(l->err, SHOAL_ETOOBIG,
					  "the archive has more than %u entries",
					  IMAGE_LOAD_MAX_ENTRIES);
		raw = archive_entry_pathname(e);
		if (raw == NULL)
			return shoal_errf(l->err, SHOAL_EPROTO,
					  "the archive has an entry without a name");
		snprintf(prev, sizeof(prev), "%s", raw);
		if (norm(NULL, raw, false, path, sizeof(path)) != 0)
			return shoal_errf(
			    l->err, SHOAL_EPROTO,
			    "archive entry '%.200s' is absolute, too long or leaves the "
			    "archive",
			    raw);
		if (path[0] == '\0')
			continue;
		if (archive_entry_hardlink(e) != NULL || archive_entry_filetype(e) == AE_IFLNK) {
			/* docker save links a layer it already wrote; hardlink targets
			 * are relative to the root, symlink targets to their directory. */
			bool hard = archive_entry_hardlink(e) != NULL;
			target = hard ? archive_entry_hardlink(e) : archive_entry_symlink(e);
			snprintf(dir, sizeof(dir), "%s", path);
			slash = strrchr(dir, '/');
			if (slash == NULL)
				slash = dir;
			*slash = '\0';
			if (target == NULL ||
			    norm(hard ? NULL : dir, target, !hard, tpath, sizeof(tpath)) != 0)
				return shoal_errf(
				    l->err, SHOAL_EPROTO,
				    "archive entry '%.200s' links outside the archive", raw);
			f = new_file(l, path);
			if (f == NULL || (f->link = strdup(tpath)) == NULL)
				return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
			continue;
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		rv = read_file(l, e, path);
		if (rv != 0)
			return rv;
	}
	if (entries == 0)
		return shoal_errf(l->err, SHOAL_EPROTO, "the archive is empty");
	if (l->n_files > 0)
		qsort(l->files, l->n_files, sizeof(*l->files), cmp_file);
	for (size_t i = 1; i < l->n_files; i++)
		if (strcmp(l->files[i - 1].path, l->files[i].path) == 0)
			return shoal_errf(l->err, SHOAL_EPROTO, "the archive holds '%.200s' twice",
					  l->files[i].path);
	return 0;
}

/* The blob a path names, following links. */
static int resolve(const struct load *l, const char *path, const char *what,
		   const struct file **out)
{
	const char *p = path;

	for (unsigned hops = 0; hops <= IMAGE_LOAD_MAX_LINKS; hops++) {
		const struct file *f = find_file(l, p);
		if (f == NULL)
			return shoal_errf(l->err, SHOAL_ENOTFOUND,
					  "%s '%.200s' is not in the archive", what, path);
		if (f->link == NULL) {
			*out = f;
			return 0;
		}
		p = f->link;
	}
	return shoal_errf(l->err, SHOAL_EPROTO, "%s '%.200s': too many links", what, path);
}

/* Queue an image; @names (n of them) are copied. */
static int add_image(struct load *l, const struct digest *manifest, const char *const *names,
		     size_t n)
{
	struct pending *p = realloc(l->pending, (l->n_pending + 1) * sizeof(*p));

	if (p == NULL)
		return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
	l->pending = p;
	p = &p[l->n_pending++];
	memset(p, 0, sizeof(*p));
	p->manifest = *manifest;
	if (n == 0)
		return 0;
	p->names.items = calloc(n, sizeof(char *));
	if (p->names.items == NULL)
		return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		p->names.items[i] = strdup(names[i]);
		if (p->names.items[i] == NULL)
			return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
		p->names.n++;
	}
	return 0;
}

static int check_size(const struct load *l, const struct oci_descriptor *d, const char *what)
{
	uint64_t size;
	int rv = image_store_blob_stat(l->s, &d->digest, &size, l->err);

	if (rv != 0) {
		shoal_errf(l->err, rv, "%s %s is not in the archive", what, d->digest.str);
		return rv;
	}
	if (size != d->size)
		return shoal_errf(l->err, SHOAL_EPROTO, "%s %s has %llu bytes, not %llu", what,
				  d->digest.str, (unsigned long long)size,
				  (unsigned long long)d->size);
	return 0;
}

/* One entry of index.json: a manifest, or an index to pick linux/amd64 from. */
static int queue_oci(struct load *l, const struct oci_descriptor *d, size_t i)
{
	const struct oci_descriptor *m = d;
	struct oci_index nested = {0};
	const char *name = d->image_name;
	char *data = NULL;
	size_t len;
	int rv = 0;

	if (name == NULL && d->ref_name != NULL && strchr(d->ref_name, ':') != NULL)
		name = d->ref_name;
	if (oci_media_type_is_index(d->media_type)) {
		rv = check_size(l, d, "index");
		if (rv == 0)
			rv = image_store_blob_read(l->s, &d->digest, OCI_MAX_MANIFEST, &data, &len,
						   l->err);
		if (rv == 0)
			rv = oci_index_parse(data, len, &nested, l->err);
		free(data);
		if (rv == 0)
			rv = oci_index_select(&nested, IMAGE_PLATFORM_OS, IMAGE_PLATFORM_ARCH, &m,
					      l->err);
	} else if (!oci_media_type_is_manifest(d->media_type)) {
		rv = shoal_errf(l->err, SHOAL_EPROTO, "it has an unsupported media type");
	}
	if (rv == 0)
		rv = check_size(l, m, "manifest");
	if (rv == 0)
		rv = add_image(l, &m->digest, &name, name != NULL);
	oci_index_free(&nested);
	if (rv != 0)
		shoal_err_wrap(l->err, "index.json: manifests[%zu]", i);
	return rv;
}

static int load_oci(struct load *l)
{
	struct oci_index idx;
	int rv;

	if (!l->layout.seen)
		return shoal_errf(l->err, SHOAL_EPROTO,
				  "the archive has index.json but no oci-layout file: not an OCI "
				  "image layout");
	rv = oci_layout_check(l->layout.text.data, l->layout.text.len, l->err);
	if (rv != 0)
		return rv;
	rv = oci_index_parse(l->index_json.text.data, l->index_json.text.len, &idx, l->err);
	if (rv != 0) {
		shoal_err_wrap(l->err, "index.json");
		return rv;
	}
	if (idx.n_manifests == 0)
		rv = shoal_errf(l->err, SHOAL_EPROTO, "index.json lists no images");
	for (size_t i = 0; i < idx.n_manifests && rv == 0; i++)
		rv = queue_oci(l, &idx.manifests[i], i);
	oci_index_free(&idx);
	return rv;
}

/* The layer media type of a blob, from its first bytes. */
static int sniff_layer(const struct load *l, const struct digest *d, enum oci_media_type *out)
{
	unsigned char magic[4] = {0};
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	image_store_blob_path(l->s, d, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shoal_errf(l->err, SHOAL_EIO, "open %s: %s", path, strerror(errno));
	n = read(fd, magic, sizeof(magic));
	if (n < 0)
		return shoal_errf(l->err, SHOAL_EIO, "read %s: %s", path, strerror(errno));
	if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
		*out = OCI_MT_DOCKER_LAYER_GZIP;
	else if (n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
		 magic[3] == 0xfd)
		*out = OCI_MT_OCI_LAYER_ZSTD;
	else
		*out = OCI_MT_DOCKER_LAYER;
	return 0;
}

/* One image of manifest.json: write a Docker v2 manifest for it and queue it. */
static int queue_docker(struct load *l, const struct oci_docker_save_image *img)
{
	struct oci_manifest m = {.media_type = OCI_MT_DOCKER_MANIFEST};
	struct oci_config cfg = {0};
	const struct file *f;
	struct digest md;
	char *data = NULL, *json = NULL;
	size_t len;
	int rv;

	rv = resolve(l, img->config, "Config", &f);
	if (rv != 0)
		return rv;
	m.config.media_type = OCI_MT_DOCKER_CONFIG;
	m.config.digest = f->digest;
	m.config.size = f->size;
	rv = image_store_blob_read(l->s, &f->digest, OCI_MAX_CONFIG, &data, &len, l->err);
	if (rv == 0)
		rv = oci_config_parse(data, len, &cfg, l->err);
	free(data);
	if (rv != 0) {
		shoal_err_wrap(l->err, "%.200s", img->config);
		return rv;
	}
	if (cfg.n_diff_ids != img->layers.n) {
		rv = shoal_errf(l->err, SHOAL_EPROTO,
				"manifest.json lists %zu layers but the config %.200s has %zu "
				"diff_ids",
				img->layers.n, img->config, cfg.n_diff_ids);
		goto out;
	}
	if (img->layers.n > 0) {
		m.layers = calloc(img->layers.n, sizeof(*m.layers));
		if (m.layers == NULL) {
			rv = shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
			goto out;
		}
	}
	m.n_layers = img->layers.n;
	for (size_t i = 0; i < img->layers.n && rv == 0; i++) {
		struct oci_descriptor *d = &m.layers[i];
		rv = resolve(l, img->layers.items[i], "layer", &f);
		if (rv == 0)
			rv = sniff_layer(l, &f->digest, &d->media_type);
		if (rv != 0)
			break;
		d->digest = f->digest;
		d->size = f->size;
		/* An uncompressed layer's digest is its diff_id. */
		if (d->media_type == OCI_MT_DOCKER_LAYER &&
		    !digest_equal(&d->digest, &cfg.diff_ids[i]))
			rv =
			    shoal_errf(l->err, SHOAL_EPROTO,
				       "layer %zu (%.200s) has digest %s but the config says its "
				       "diff_id is %s",
				       i, img->layers.items[i], d->digest.str, cfg.diff_ids[i].str);
	}
	if (rv == 0)
		rv = oci_manifest_encode(&m, &json, &len, l->err);
	if (rv == 0)
		rv = image_store_blob_put(l->s, json, len, &md, l->err);
	if (rv == 0)
		rv = add_image(l, &md, (const char *const *)img->tags.items, img->tags.n);
out:
	free(json);
	oci_config_free(&cfg);
	oci_manifest_free(&m);
	return rv;
}

static int load_docker(struct load *l)
{
	struct oci_docker_save ds;
	int rv;

	rv = oci_docker_save_parse(l->manifest_json.text.data, l->manifest_json.text.len, &ds,
				   l->err);
	if (rv != 0)
		return rv;
	if (ds.n_images == 0)
		rv = shoal_errf(l->err, SHOAL_EPROTO, "manifest.json lists no images");
	for (size_t i = 0; i < ds.n_images && rv == 0; i++) {
		rv = queue_docker(l, &ds.images[i]);
		if (rv != 0)
			shoal_err_wrap(l->err, "manifest.json: image %zu", i);
	}
	oci_docker_save_free(&ds);
	return rv;
}

static int fill_result(struct load *l, const struct digest *ids, struct image_load_result *res)
{
	memset(res, 0, sizeof(*res));
	res->ids = calloc(l->n_pending > 0 ? l->n_pending : 1, sizeof(*res->ids));
	if (res->ids == NULL)
		return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n_pending; i++) {
		bool dup = false;
		for (size_t j = 0; j < res->n_ids; j++)
			dup |= digest_equal(&res->ids[j], &ids[i]);
		if (!dup)
			res->ids[res->n_ids++] = ids[i];
		for (size_t j = 0; j < l->pending[i].names.n; j++) {
			char name[IMAGE_REF_MAX], **p;
			if (image_name_normalize(l->pending[i].names.items[j], name, sizeof(name),
						 l->err) != 0)
				return SHOAL_EINVAL;
			p = realloc(res->names.items, (res->names.n + 1) * sizeof(*p));
			if (p == NULL)
				return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
			res->names.items = p;
			p[res->names.n] = strdup(name);
			if (p[res->names.n] == NULL)
				return shoal_errf(l->err, SHOAL_ENOMEM, "out of memory");
			res->names.n++;
		}
	}
	return 0;
}

void image_load_result_free(struct image_load_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->names.n; i++)
		free(res->names.items[i]);
	free(res->names.items);
	free(res->ids);
	memset(res, 0, sizeof(*res));
}

int image_load_fd(struct image_store *s, int fd, struct image_load_result *res,
		  struct shoal_err *err)
{
	struct image_add *adds = NULL;
	struct digest *ids = NULL;
	struct load *l;
	int rv;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	l->s = s;
	l->err = err;
	l->a = archive_read_new();
	if (l->a == NULL || archive_read_support_filter_gzip(l->a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(l->a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(l->a) != ARCHIVE_OK ||
	    archive_read_support_format_empty(l->a) != ARCHIVE_OK) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "cannot set up libarchive");
		goto out;
	}
	if (archive_read_open_fd(l->a, fd, READ_BLOCK) != ARCHIVE_OK) {
		rv = shoal_errf(err, SHOAL_EPROTO, "not an image archive: %s",
				archive_error_string(l->a));
		goto out;
	}
	rv = read_archive(l);
	if (rv != 0)
		goto out;
	if (l->index_json.seen)
		rv = load_oci(l);
	else if (l->manifest_json.seen)
		rv = load_docker(l);
	else
		rv = shoal_errf(err, SHOAL_EPROTO,
				"not an image archive: it has neither manifest.json (docker save) "
				"nor index.json (OCI image layout)");
	if (rv != 0)
		goto out;
	ids = calloc(l->n_pending, sizeof(*ids));
	adds = calloc(l->n_pending, sizeof(*adds));
	if (ids == NULL || adds == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < l->n_pending; i++) {
		adds[i].manifest = l->pending[i].manifest;
		adds[i].names = (const char *const *)l->pending[i].names.items;
		adds[i].n_names = l->pending[i].names.n;
	}
	rv = image_store_add(s, adds, l->n_pending, ids, err);
	if (rv == 0 && res != NULL) {
		rv = fill_result(l, ids, res);
		if (rv != 0)
			image_load_result_free(res);
	}
out:
	/* Whatever this load wrote and no image references goes away. */
	image_store_gc(s, NULL, NULL);
	free(ids);
	free(adds);
	if (l->a != NULL)
		archive_read_free(l->a);
	for (size_t i = 0; i < l->n_files; i++) {
		free(l->files[i].path);
		free(l->files[i].link);
	}
	free(l->files);
	buf_free(&l->manifest_json.text);
	buf_free(&l->index_json.text);
	buf_free(&l->layout.text);
	for (size_t i = 0; i < l->n_pending; i++) {
		for (size_t j = 0; j < l->pending[i].names.n; j++)
			free(l->pending[i].names.items[j]);
		free(l->pending[i].names.items);
	}
	free(l->pending);
	free(l);
	return rv;
}

int image_load_file(struct image_store *s, const char *path, struct image_load_result *res,
		    struct shoal_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (fd < 0)
		return shoal_errf(err, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO, "open %s: %s",
				  path, strerror(errno));
	return image_load_fd(s, fd, res, err);
}
