/* The content-addressed image store: OCI layout blobs, unpacked layers, named images. */
#include "runtime/image_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/sorted.h"
#include "runtime/layer.h"

#define IMAGE_NAME_MAX 255u /* bytes of a repository name, as the distribution spec says */
#define TAG_MAX	       128u

/* The root is bounded so that every path below it fits in PATH_MAX. */
#define ROOT_MAX (PATH_MAX - 128)
#define DIR_MAX	 (PATH_MAX - 96)

struct image_store {
	char root[ROOT_MAX];
	char blobs[DIR_MAX];   /* ROOT/blobs/sha256 */
	char layers[DIR_MAX];  /* ROOT/layers */
	char tmp[DIR_MAX];     /* ROOT/tmp */
	char index[DIR_MAX];   /* ROOT/index.json */
	struct image **images; /* sorted by id */
	size_t n_images;
	unsigned pins; /* pulls writing blobs from other threads: gc keeps tmp/ and blobs/ */
	bool closing;  /* closed while pinned: freed by the last unpin */
};

/* ---- names ---- */

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
	return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]+ separated by ".", "_", "__" or runs of "-". */
static bool path_component_ok(const char *p, size_t n)
{
	size_t i = 0;

	if (n == 0 || !lower_alnum(p[0]) || !lower_alnum(p[n - 1]))
		return false;
	while (i < n) {
		size_t j = i + 1;

		if (lower_alnum(p[i])) {
			i++;
			continue;
		}
		if (p[i] == '_' && j < n && p[j] == '_')
			j++;
		else if (p[i] == '-')
			while (j < n && p[j] == '-')
				j++;
		else if (p[i] != '.' && p[i] != '_')
			return false;
		if (j >= n || !lower_alnum(p[j]))
			return false;
		i = j;
	}
	return true;
}

/* host[:port], host being dot-separated labels or a bracketed IPv6 address. */
static bool domain_ok(const char *p, size_t n)
{
	size_t i = 0, start;

	if (n > 0 && p[0] == '[') {
		for (i = 1; i < n && p[i] != ']'; i++)
			if (!(p[i] == ':' || (p[i] >= '0' && p[i] <= '9') ||
			      (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F')))
				return false;
		if (i >= n || i == 1)
			return false;
		i++;
	} else {
		for (;;) {
			start = i;
			while (i < n && (alnum(p[i]) || p[i] == '-'))
				i++;
			if (i == start || p[start] == '-' || p[i - 1] == '-')
				return false;
			if (i < n && p[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (i == n)
		return true;
	if (p[i] != ':' || n - i - 1 == 0 || n - i - 1 > 5)
		return false;
	for (i++; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > TAG_MAX || !(alnum(t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(alnum(t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

static bool lower_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* True if the first of several components of @path would be taken for a
 * registry host: it has a '.' or ':', is "localhost" or has upper case. */
static bool looks_like_domain(const char *path)
{
	const char *slash = strchr(path, '/');
	size_t n;

	if (slash == NULL)
		return false;
	n = (size_t)(slash - path);
	for (size_t i = 0; i < n; i++)
		if (path[i] == '.' || path[i] == ':' || (path[i] >= 'A' && path[i] <= 'Z'))
			return true;
	return n == 9 && memcmp(path, "localhost", 9) == 0;
}

int image_name_normalize(const char *name, char *out, size_t len, struct shoal_err *err)
{
	char buf[IMAGE_REF_MAX];
	const char *tag = IMAGE_DEFAULT_TAG, *domain = NULL;
	char *path = buf, *slash, *colon, *p;
	size_t n = strlen(name), dn;

	if (n == 0 || n >= sizeof(buf))
		return shoal_errf(err, SHOAL_EINVAL, "invalid reference format: '%.80s'", name);
	if (strchr(name, '@') != NULL)
		return shoal_errf(err, SHOAL_EINVAL,
				  "'%.200s': a reference by digest cannot name an image, use "
				  "NAME[:TAG]",
				  name);
	memcpy(buf, name, n + 1);
	slash = strrchr(buf, '/');
	colon = strrchr(slash != NULL ? slash : buf, ':');
	if (colon != NULL) {
		*colon = '\0';
		tag = colon + 1;
		if (!tag_ok(tag))
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid reference format: '%.200s': a tag is 1 to %u "
					  "letters, digits, '_', '.' or '-'",
					  name, TAG_MAX);
	}
	if (looks_like_domain(buf)) {
		slash = strchr(buf, '/');
		dn = (size_t)(slash - buf);
		if (!domain_ok(buf, dn))
			return shoal_errf(err, SHOAL_EINVAL,
					  "invalid reference format: '%.200s': bad registry host",
					  name);
		*slash = '\0';
		domain = buf;
		path = slash + 1;
	}
	if ((domain != NULL ? strlen(domain) + 1 : 0) + strlen(path) > IMAGE_NAME_MAX)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid reference format: '%.80s...': a repository name has at "
				  "most %u characters",
				  name, IMAGE_NAME_MAX);
	for (p = path;;) {
		size_t k = strcspn(p, "/");
		if (!path_component_ok(p, k))
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "invalid reference format: '%.200s': repository names are "
			    "lowercase letters and digits separated by '.', '_' or '-'",
			    name);
		if (p[k] == '\0')
			break;
		p += k + 1;
	}
	/* Docker's familiar form: Docker Hub's host and "library/" are implied,
	 * unless dropping the host would make the path's first part read as one. */
	if (domain != NULL &&
	    (strcmp(domain, "docker.io") == 0 || strcmp(domain, "index.docker.io") == 0) &&
	    !looks_like_domain(path)) {
		domain = NULL;
	}
	if (domain == NULL && strncmp(path, "library/", 8) == 0 && strchr(path + 8, '/') == NULL)
		path += 8;
	if (domain == NULL && strlen(path) == DIGEST_HEX_LEN && lower_hex(path, DIGEST_HEX_LEN))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid repository name '%.80s': a 64-character hexadecimal "
				  "string is an image id, not a name",
				  path);
	if ((size_t)snprintf(out, len, "%s%s%s:%s", domain != NULL ? domain : "",
			     domain != NULL ? "/" : "", path, tag) >= len)
		return shoal_errf(err, SHOAL_EINVAL, "image name '%.80s...' is too long", name);
	return 0;
}

/* ---- images in memory ---- */

static void image_free(struct image *img)
{
	if (img == NULL)
		return;
	oci_manifest_free(&img->manifest);
	oci_config_free(&img->config);
	for (size_t i = 0; i < img->names.n; i++)
		free(img->names.items[i]);
	free(img->names.items);
	free(img);
}

static void images_clear(struct image_store *s)
{
	for (size_t i = 0; i < s->n_images; i++)
		image_free(s->images[i]);
	free(s->images);
	s->images = NULL;
	s->n_images = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *image_id_at(const void *items, size_t i)
{
	return ((struct image *const *)items)[i]->id.str;
}

/* Position of @id in the sorted images, or where it would go. */
static size_t find_id(const struct image_store *s, const struct digest *id, bool *found)
{
	return sorted_find(s->images, s->n_images, image_id_at, id->str, found);
}

static int insert_image(struct image_store *s, struct image *img, struct shoal_err *err)
{
	struct image **p;
	bool found;
	size_t at = find_id(s, &img->id, &found);

	PRE(!found);
	if (s->n_images >= IMAGE_MAX_IMAGES)
		return shoal_errf(err, SHOAL_ETOOBIG, "the image store holds %u images already",
				  IMAGE_MAX_IMAGES);
	p = realloc(s->images, (s->n_images + 1) * sizeof(*p));
	if (p == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	s->images = p;
	memmove(&p[at + 1], &p[at], (s->n_images - at) * sizeof(*p));
	p[at] = img;
	s->n_images++;
	return 0;
}

static void remove_image_at(struct image_store *s, size_t at)
{
	image_free(s->images[at]);
	memmove(&s->images[at], &s->images[at + 1], (s->n_images - at - 1) * sizeof(*s->images));
	s->n_images--;
}

static ssize_t name_index(const struct image *img, const char *name)
{
	for (size_t i = 0; i < img->names.n; i++)
		if (strcmp(img->names.items[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

static void name_drop(struct image *img, size_t i)
{
	free(img->names.items[i]);
	memmove(&img->names.items[i], &img->names.items[i + 1],
		(img->names.n - i - 1) * sizeof(char *));
	img->names.n--;
}

static int name_add(struct image *img, const char *name, struct shoal_err *err)
{
	char **p, *copy;

	if (name_index(img, name) >= 0)
		return 0;
	copy = strdup(name);
	p = realloc(img->names.items, (img->names.n + 1) * sizeof(*p));
	if (copy == NULL || p == NULL) {
		free(copy);
		if (p != NULL)
			img->names.items = p;
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	img->names.items = p;
	p[img->names.n++] = copy;
	qsort(p, img->names.n, sizeof(*p), cmp_str);
	return 0;
}

/* ---- blobs ---- */

void image_store_blob_path(const struct image_store *s, const struct digest *d, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%s", s->blobs, digest_hex(d));
}

int image_store_blob_stat(const struct image_store *s, const struct digest *d, uint64_t *size,
			  struct shoal_err *err)
{
	char path[PATH_MAX];
	struct stat st;

	image_store_blob_path(s, d, path);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return shoal_errf(err, SHOAL_ENOTFOUND, "blob %s is missing", d->str);
	*size = (uint64_t)st.st_size;
	return 0;
}

int image_store_blob_read(const struct image_store *s, const struct digest *d, size_t max,
			  char **data, size_t *len, struct shoal_err *err)
{
	char path[PATH_MAX];
	struct digest got;
	size_t n;
	int rv;

	image_store_blob_path(s, d, path);
	rv = fs_read_all(path, max, data, &n, err);
	if (rv == SHOAL_ENOTFOUND)
		return shoal_errf(err, rv, "blob %s is missing", d->str);
	if (rv != 0)
		return rv;
	digest_buf(*data, n, &got);
	if (!digest_equal(&got, d)) {
		free(*data);
		*data = NULL;
		return shoal_errf(
		    err, SHOAL_EPROTO,
		    "blob %s is corrupt (its content has digest %s): remove the image "
		    "and load it again",
		    d->str, got.str);
	}
	if (len != NULL)
		*len = n;
	return 0;
}

int image_store_blob_begin(struct image_store *s, struct image_blob_writer *w,
			   struct shoal_err *err)
{
	w->size = 0;
	digest_init(&w->dc);
	if ((size_t)snprintf(w->path, sizeof(w->path), "%s/blob-XXXXXX", s->tmp) >= sizeof(w->path))
		return shoal_errf(err, SHOAL_EINVAL, "path too long: %s", s->tmp);
	w->fd = mkostemp(w->path, O_CLOEXEC);
	if (w->fd < 0) {
		w->path[0] = '\0';
		return shoal_errf(err, SHOAL_EIO, "create a file in %s: %s", s->tmp,
				  strerror(errno));
	}
	return 0;
}

void image_store_blob_abort(struct image_blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->path[0] != '\0')
		unlink(w->path);
	w->path[0] = '\0';
}

int image_store_blob_write(struct image_blob_writer *w, const void *data, size_t len,
			   struct shoal_err *err)
{
	const char *p = data;

	PRE(w->fd >= 0);
	digest_update(&w->dc, data, len);
	w->size += len;
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			image_store_blob_abort(w);
			return shoal_errf(err, SHOAL_EIO, "write a blob: %s", strerror(e));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir, struct shoal_err *err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0)
		return shoal_errf(err, SHOAL_EIO, "fsync %s: %s", dir, strerror(errno));
	return 0;
}

int image_store_blob_commit(struct image_store *s, struct image_blob_writer *w,
			    const struct digest *expected, struct digest *out, uint64_t *size,
			    struct shoal_err *err)
{
	char final[PATH_MAX];
	struct digest got;
	int rv;

	PRE(w->fd >= 0);
	digest_final(&w->dc, &got);
	if (expected != NULL && !digest_equal(&got, expected)) {
		image_store_blob_abort(w);
		return shoal_errf(err, SHOAL_EPROTO,
				  "digest mismatch: the content has digest %s, not %s", got.str,
				  expected->str);
	}
	if (fchmod(w->fd, 0444) != 0 || fsync(w->fd) != 0) {
		int e = errno;
		image_store_blob_abort(w);
		return shoal_errf(err, SHOAL_EIO, "write blob %s: %s", got.str, strerror(e));
	}
	close(w->fd);
	w->fd = -1;
	image_store_blob_path(s, &got, final);
	if (fs_exists(final)) {
		image_store_blob_abort(w);
	} else if (rename(w->path, final) != 0) {
		int e = errno;
		image_store_blob_abort(w);
		return shoal_errf(err, SHOAL_EIO, "rename a blob to %s: %s", final, strerror(e));
	} else {
		w->path[0] = '\0';
		rv = fsync_dir(s->blobs, err);
		if (rv != 0)
			return rv;
	}
	*out = got;
	if (size != NULL)
		*size = w->size;
	return 0;
}

int image_store_blob_put(struct image_store *s, const void *data, size_t len, struct digest *out,
			 struct shoal_err *err)
{
	struct image_blob_writer w;
	int rv;

	rv = image_store_blob_begin(s, &w, err);
	if (rv == 0)
		rv = image_store_blob_write(&w, data, len, err);
	if (rv == 0)
		rv = image_store_blob_commit(s, &w, NULL, out, NULL, err);
	return rv;
}

/* ---- loading an image's documents ---- */

/* Read and check the manifest @md and its config into a new image (no names). */
static int image_read(const struct image_store *s, const struct digest *md, struct image **out,
		      struct shoal_err *err)
{
	struct image *img = calloc(1, sizeof(*img));
	char *data = NULL;
	size_t len;
	uint64_t size;
	int rv;

	if (img == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	img->manifest_digest = *md;
	rv = image_store_blob_read(s, md, OCI_MAX_MANIFEST, &data, &len, err);
	if (rv == 0) {
		img->manifest_size = len;
		rv = oci_manifest_parse(data, len, &img->manifest, err);
		free(data);
		data = NULL;
	}
	if (rv != 0)
		goto fail;
	img->id = img->manifest.config.digest;
	rv = image_store_blob_read(s, &img->id, OCI_MAX_CONFIG, &data, &len, err);
	if (rv == 0 && len != img->manifest.config.size)
		rv = shoal_errf(err, SHOAL_EPROTO,
				"config %s has %zu bytes but the manifest says %llu", img->id.str,
				len, (unsigned long long)img->manifest.config.size);
	if (rv == 0)
		rv = oci_config_parse(data, len, &img->config, err);
	free(data);
	if (rv != 0)
		goto fail;
	if (strcmp(img->config.os, IMAGE_PLATFORM_OS) != 0) {
		rv = shoal_errf(err, SHOAL_EINVAL, "the image is for %.40s, not %s", img->config.os,
				IMAGE_PLATFORM_OS);
		goto fail;
	}
	if (img->config.n_diff_ids != img->manifest.n_layers) {
		rv = shoal_errf(err, SHOAL_EPROTO,
				"the manifest has %zu layers but the config lists %zu diff_ids",
				img->manifest.n_layers, img->config.n_diff_ids);
		goto fail;
	}
	img->size = img->manifest.config.size;
	for (size_t i = 0; i < img->manifest.n_layers; i++) {
		const struct oci_descriptor *l = &img->manifest.layers[i];
		rv = image_store_blob_stat(s, &l->digest, &size, err);
		if (rv == 0 && size != l->size)
			rv = shoal_errf(
			    err, SHOAL_EPROTO, "layer %s has %llu bytes but the manifest says %llu",
			    l->digest.str, (unsigned long long)size, (unsigned long long)l->size);
		if (rv != 0)
			goto fail;
		img->size += size;
	}
	*out = img;
	return 0;
fail:
	shoal_err_wrap(err, "image manifest %s", md->str);
	image_free(img);
	return rv;
}

/* ---- index.json ---- */

static json_t *index_entry(const struct image *img, const char *name)
{
	json_t *d =
	    json_pack("{s:s, s:s, s:I}", "mediaType", oci_media_type_name(img->manifest.media_type),
		      "digest", img->manifest_digest.str, "size", (json_int_t)img->manifest_size);

	if (d != NULL && name != NULL &&
	    json_object_set_new(d, "annotations",
				json_pack("{s:s}", "org.opencontainers.image.ref.name", name)) !=
		0) {
		json_decref(d);
		return NULL;
	}
	return d;
}

static int index_write(struct image_store *s, struct shoal_err *err)
{
	json_t *root, *list;
	char *text;
	int rv;

	list = json_array();
	root = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
			 oci_media_type_name(OCI_MT_OCI_INDEX), "manifests", list);
	if (root == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n_images; i++) {
		const struct image *img = s->images[i];
		size_t n = img->names.n > 0 ? img->names.n : 1;
		for (size_t j = 0; j < n; j++) {
			json_t *d = index_entry(img, img->names.n > 0 ? img->names.items[j] : NULL);
			if (d == NULL || json_array_append_new(list, d) != 0) {
				json_decref(root);
				return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			}
		}
	}
	/* Never write what index_load() would refuse to read. */
	if (json_array_size(list) > OCI_MAX_ITEMS) {
		json_decref(root);
		return shoal_errf(
		    err, SHOAL_ETOOBIG,
		    "the image store would hold more than %u image names: remove some "
		    "images first",
		    OCI_MAX_ITEMS);
	}
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (strlen(text) > OCI_MAX_MANIFEST) {
		free(text);
		return shoal_errf(
		    err, SHOAL_ETOOBIG,
		    "the image store's index would exceed %u bytes: remove some images "
		    "first",
		    OCI_MAX_MANIFEST);
	}
	rv = fs_write_atomic(s->index, text, strlen(text), 0644, err);
	free(text);
	return rv;
}

static struct image *find_manifest(const struct image_store *s, const struct digest *md)
{
	for (size_t i = 0; i < s->n_images; i++)
		if (digest_equal(&s->images[i]->manifest_digest, md))
			return s->images[i];
	return NULL;
}

/* Load index.json (if any) into the (empty) image list. */
static int index_load(struct image_store *s, struct shoal_err *err)
{
	struct oci_index idx;
	char *data = NULL;
	size_t len;
	int rv;

	PRE(s->n_images == 0);
	rv = fs_read_all(s->index, OCI_MAX_MANIFEST, &data, &len, err);
	if (rv == SHOAL_ENOTFOUND)
		return 0;
	if (rv != 0)
		return rv;
	rv = oci_index_parse(data, len, &idx, err);
	free(data);
	if (rv != 0) {
		shoal_err_wrap(err, "%s", s->index);
		return SHOAL_EPROTO;
	}
	for (size_t i = 0; i < idx.n_manifests && rv == 0; i++) {
		const struct oci_descriptor *d = &idx.manifests[i];
		struct image *img = find_manifest(s, &d->digest);
		char name[IMAGE_REF_MAX];
		bool found;

		if (!oci_media_type_is_manifest(d->media_type)) {
			rv = shoal_errf(err, SHOAL_EPROTO,
					"%s: manifests[%zu] is not an image manifest", s->index, i);
			break;
		}
		if (img == NULL) {
			rv = image_read(s, &d->digest, &img, err);
			if (rv != 0)
				break;
			find_id(s, &img->id, &found);
			if (found) {
				rv = shoal_errf(err, SHOAL_EPROTO,
						"%s: two manifests have the config %s", s->index,
						img->id.str);
				image_free(img);
				break;
			}
			rv = insert_image(s, img, err);
			if (rv != 0) {
				image_free(img);
				break;
			}
		}
		if (d->ref_name == NULL)
			continue;
		rv = image_name_normalize(d->ref_name, name, sizeof(name), err);
		if (rv == 0)
			rv = name_add(img, name, err);
	}
	oci_index_free(&idx);
	if (rv != 0) {
		shoal_err_wrap(err, "image store %s", s->root);
		images_clear(s);
	}
	return rv;
}

/* Bring memory back to what is on disk, after a failed index write. */
static void index_reload(struct image_store *s)
{
	images_clear(s);
	index_load(s, NULL);
}

/* ---- open / close ---- */

const char *image_store_root(const struct image_store *s)
{
	return s->root;
}

size_t image_store_count(const struct image_store *s)
{
	return s->n_images;
}

const struct image *image_store_at(const struct image_store *s, size_t i)
{
	PRE(i < s->n_images);
	return s->images[i];
}

static int set_path(char out[DIR_MAX], const char *root, const char *rel, struct shoal_err *err)
{
	if ((size_t)snprintf(out, DIR_MAX, "%s/%s", root, rel) >= DIR_MAX)
		return shoal_errf(err, SHOAL_EINVAL, "path too long: %s", root);
	return 0;
}

int image_store_open(const char *root, struct image_store **out, struct shoal_err *err)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	struct image_store *s = calloc(1, sizeof(*s));
	char path[DIR_MAX];
	int rv;

	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (strlen(root) >= sizeof(s->root)) {
		rv = shoal_errf(err, SHOAL_EINVAL, "path too long: %s", root);
		goto fail;
	}
	memcpy(s->root, root, strlen(root) + 1);
	rv = set_path(s->blobs, root, "blobs/sha256", err);
	if (rv == 0)
		rv = set_path(s->layers, root, "layers", err);
	if (rv == 0)
		rv = set_path(s->tmp, root, "tmp", err);
	if (rv == 0)
		rv = set_path(s->index, root, "index.json", err);
	if (rv == 0)
		rv = set_path(path, root, "oci-layout", err);
	if (rv == 0)
		rv = fs_mkdir_p(root, 0700, err);
	if (rv == 0)
		rv = fs_mkdir_p(s->blobs, 0755, err);
	if (rv == 0)
		rv = fs_mkdir_p(s->layers, 0755, err);
	if (rv == 0)
		rv = fs_mkdir_p(s->tmp, 0700, err);
	if (rv == 0 && !fs_exists(path))
		rv = fs_write_atomic(path, layout, sizeof(layout) - 1, 0644, err);
	if (rv == 0)
		rv = index_load(s, err);
	if (rv == 0)
		rv = image_store_gc(s, NULL, err);
	if (rv != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	image_store_close(s);
	return rv;
}

void image_store_close(struct image_store *s)
{
	if (s == NULL)
		return;
	if (s->pins > 0) {
		s->closing = true;
		return;
	}
	images_clear(s);
	free(s);
}

void image_store_pin(struct image_store *s)
{
	PRE(!s->closing);
	s->pins++;
}

void image_store_unpin(struct image_store *s)
{
	PRE(s->pins > 0);
	if (--s->pins == 0 && s->closing) {
		s->closing = false;
		image_store_close(s);
	}
}

bool image_store_closing(const struct image_store *s)
{
	return s->closing;
}

/* ---- lookup ---- */

/* Find @ref: by name (*@by_name true, the normalised name in @name), else by
 * id prefix. Returns the index in s->images via *@at. */
static int resolve(const struct image_store *s, const char *ref, size_t *at, bool *by_name,
		   char name[IMAGE_REF_MAX], struct shoal_err *err)
{
	const char *p = ref;
	size_t n, hits = 0;

	*by_name = false;
	if (image_name_normalize(ref, name, IMAGE_REF_MAX, NULL) == 0) {
		for (size_t i = 0; i < s->n_images; i++)
			if (name_index(s->images[i], name) >= 0) {
				*at = i;
				*by_name = true;
				return 0;
			}
	}
	if (strncmp(p, DIGEST_PREFIX, DIGEST_PREFIX_LEN) == 0)
		p += DIGEST_PREFIX_LEN;
	n = strlen(p);
	if (n > 0 && n <= DIGEST_HEX_LEN && lower_hex(p, n)) {
		for (size_t i = 0; i < s->n_images; i++)
			if (strncmp(digest_hex(&s->images[i]->id), p, n) == 0) {
				*at = i;
				hits++;
			}
		if (hits > 1)
			return shoal_errf(
			    err, SHOAL_ECONFLICT,
			    "image reference '%.80s' is ambiguous: it starts %zu image "
			    "ids, give more of the id",
			    ref, hits);
		if (hits == 1)
			return 0;
	}
	return shoal_errf(err, SHOAL_ENOTFOUND, "No such image: %.200s", ref);
}

int image_store_lookup(const struct image_store *s, const char *ref, const struct image **out,
		       struct shoal_err *err)
{
	char name[IMAGE_REF_MAX];
	bool by_name;
	size_t at;
	int rv = resolve(s, ref, &at, &by_name, name, err);

	if (rv == 0)
		*out = s->images[at];
	return rv;
}

/* ---- add ---- */

static int unpack_layers(struct image_store *s, const struct image *img, char **dirs,
			 struct shoal_err *err)
{
	for (size_t i = 0; i < img->manifest.n_layers; i++) {
		const struct digest *diff_id = &img->config.diff_ids[i];
		char blob[PATH_MAX];
		int rv;

		image_store_blob_path(s, &img->manifest.layers[i].digest, blob);
		rv = layer_unpack(blob, diff_id, s->layers, s->tmp, NULL, NULL, err);
		if (rv != 0) {
			shoal_err_wrap(err, "layer %zu of %zu", i + 1, img->manifest.n_layers);
			return rv;
		}
		if (dirs != NULL) {
			char path[PATH_MAX];
			rv = layer_path(s->layers, diff_id, path, sizeof(path), err);
			if (rv != 0)
				return rv;
			dirs[i] = strdup(path);
			if (dirs[i] == NULL)
				return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* Detach @name from every image. */
static void untag_everywhere(struct image_store *s, const char *name)
{
	for (size_t i = 0; i < s->n_images; i++) {
		ssize_t j = name_index(s->images[i], name);
		if (j >= 0)
			name_drop(s->images[i], (size_t)j);
	}
}

int image_store_add(struct image_store *s, const struct image_add *reqs, size_t n,
		    struct digest *ids, struct shoal_err *err)
{
	struct image **staged = NULL;
	char(*names)[IMAGE_REF_MAX] = NULL;
	size_t total = 0, k = 0;
	int rv = 0;

	for (size_t i = 0; i < n; i++) {
		if (reqs[i].n_names > IMAGE_MAX_NAMES)
			return shoal_errf(err, SHOAL_ETOOBIG, "more than %u names for one image",
					  IMAGE_MAX_NAMES);
		total += reqs[i].n_names;
	}
	if (n > IMAGE_MAX_IMAGES)
		return shoal_errf(err, SHOAL_ETOOBIG, "more than %u images at once",
				  IMAGE_MAX_IMAGES);
	staged = calloc(n > 0 ? n : 1, sizeof(*staged));
	names = calloc(total > 0 ? total : 1, sizeof(*names));
	if (staged == NULL || names == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	/* Check everything and unpack the layers before the index changes. */
	for (size_t i = 0; i < n && rv == 0; i++)
		for (size_t j = 0; j < reqs[i].n_names && rv == 0; j++)
			rv = image_name_normalize(reqs[i].names[j], names[k++], IMAGE_REF_MAX, err);
	for (size_t i = 0; i < n && rv == 0; i++) {
		rv = image_read(s, &reqs[i].manifest, &staged[i], err);
		if (rv != 0)
			break;
		rv = unpack_layers(s, staged[i], NULL, err);
		if (rv != 0)
			shoal_err_wrap(err, "image manifest %s", reqs[i].manifest.str);
	}
	if (rv != 0)
		goto out;
	/* Attach. */
	k = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		bool found;
		size_t at = find_id(s, &staged[i]->id, &found);
		struct image *img;

		if (!found) {
			rv = insert_image(s, staged[i], err);
			if (rv != 0)
				break;
			img = staged[i];
			staged[i] = NULL;
		} else {
			img = s->images[at];
		}
		if (ids != NULL)
			ids[i] = img->id;
		for (size_t j = 0; j < reqs[i].n_names && rv == 0; j++) {
			untag_everywhere(s, names[k]);
			rv = name_add(img, names[k++], err);
		}
	}
	if (rv == 0)
		rv = index_write(s, err);
	if (rv != 0)
		index_reload(s);
out:
	for (size_t i = 0; staged != NULL && i < n; i++)
		image_free(staged[i]);
	free(staged);
	free(names);
	return rv;
}

/* ---- remove and gc ---- */

void image_remove_report_free(struct image_remove_report *rep)
{
	if (rep == NULL)
		return;
	for (size_t i = 0; i < rep->untagged.n; i++)
		free(rep->untagged.items[i]);
	free(rep->untagged.items);
	memset(rep, 0, sizeof(*rep));
}

int image_store_remove(struct image_store *s, const char *ref, bool force,
		       struct image_remove_report *rep, struct shoal_err *err)
{
	struct image_remove_report r = {0};
	char name[IMAGE_REF_MAX];
	struct image *img;
	bool by_name;
	size_t at;
	int rv;

	if (rep != NULL)
		memset(rep, 0, sizeof(*rep));
	rv = resolve(s, ref, &at, &by_name, name, err);
	if (rv != 0)
		return rv;
	img = s->images[at];
	r.id = img->id;
	if (!by_name && img->names.n > 1 && !force)
		return shoal_errf(
		    err, SHOAL_ECONFLICT,
		    "unable to delete %.12s (must be forced) - image is referenced in "
		    "multiple repositories",
		    digest_hex(&img->id));
	if (by_name) {
		ssize_t j = name_index(img, name);
		PRE(j >= 0);
		r.untagged.items = calloc(1, sizeof(char *));
		if (r.untagged.items == NULL)
			return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		r.untagged.items[0] = img->names.items[j];
		r.untagged.n = 1;
		memmove(&img->names.items[j], &img->names.items[j + 1],
			(img->names.n - (size_t)j - 1) * sizeof(char *));
		img->names.n--;
	} else {
		r.untagged = img->names;
		img->names.items = NULL;
		img->names.n = 0;
	}
	if (img->names.n == 0) {
		remove_image_at(s, at);
		r.deleted = true;
	}
	rv = index_write(s, err);
	if (rv != 0) {
		index_reload(s);
		image_remove_report_free(&r);
		return rv;
	}
	if (rep != NULL)
		*rep = r;
	else
		image_remove_report_free(&r);
	if (r.deleted)
		return image_store_gc(s, NULL, err);
	return 0;
}

static int cmp_hex(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool referenced(const char **refs, size_t n, const char *name)
{
	return bsearch(&name, refs, n, sizeof(*refs), cmp_hex) != NULL;
}

/* Remove every entry of @dir not in @refs (sorted); with @refs NULL, all. */
static int sweep(const char *dir, const char **refs, size_t n, uint64_t *count,
		 struct shoal_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rv = 0;

	if (d == NULL)
		return shoal_errf(err, SHOAL_EIO, "open %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (refs != NULL && referenced(refs, n, e->d_name))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		rv = fs_rm_rf(path, err);
		if (rv != 0)
			break;
		if (count != NULL)
			(*count)++;
	}
	closedir(d);
	return rv;
}

int image_store_gc(struct image_store *s, struct image_gc_stats *stats, struct shoal_err *err)
{
	struct image_gc_stats st = {0};
	const char **blobs = NULL, **layers = NULL;
	size_t nb = 0, nl = 0, cap = 0;
	int rv;

	for (size_t i = 0; i < s->n_images; i++)
		cap += 2 + s->images[i]->manifest.n_layers;
	blobs = calloc(cap + 1, sizeof(*blobs));
	layers = calloc(cap + 1, sizeof(*layers));
	if (blobs == NULL || layers == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s->n_images; i++) {
		const struct image *img = s->images[i];
		blobs[nb++] = digest_hex(&img->manifest_digest);
		blobs[nb++] = digest_hex(&img->id);
		for (size_t j = 0; j < img->manifest.n_layers; j++) {
			blobs[nb++] = digest_hex(&img->manifest.layers[j].digest);
			layers[nl++] = digest_hex(&img->config.diff_ids[j]);
		}
	}
	qsort(blobs, nb, sizeof(*blobs), cmp_hex);
	qsort(layers, nl, sizeof(*layers), cmp_hex);
	/* A pull's thread may be writing to tmp/ and renaming into blobs/: with a
	 * pin held, only layers (made on the caller's thread) are swept. */
	rv = s->pins > 0 ? 0 : sweep(s->tmp, NULL, 0, &st.tmp_removed, err);
	if (rv == 0 && s->pins == 0)
		rv = sweep(s->blobs, blobs, nb, &st.blobs_removed, err);
	if (rv == 0)
		rv = sweep(s->layers, layers, nl, &st.layers_removed, err);
	if (rv == 0 && stats != NULL)
		*stats = st;
out:
	free(blobs);
	free(layers);
	if (rv != 0)
		shoal_err_wrap(err, "collect garbage in %s", s->root);
	return rv;
}

/* ---- layer directories ---- */

void image_store_dirs_free(char **dirs, size_t n)
{
	if (dirs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
}

int image_store_layer_dirs(struct image_store *s, const struct image *img, char ***dirs, size_t *n,
			   struct shoal_err *err)
{
	size_t count = img->manifest.n_layers;
	char **list = calloc(count > 0 ? count : 1, sizeof(*list));
	int rv;

	if (list == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = unpack_layers(s, img, list, err);
	if (rv != 0) {
		image_store_dirs_free(list, count);
		shoal_err_wrap(err, "image %.12s", digest_hex(&img->id));
		return rv;
	}
	*dirs = list;
	*n = count;
	return 0;
}
