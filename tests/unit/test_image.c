/* Unit tests of runtime/ images: digests, OCI parsers, layer unpacking, the store, image load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "runtime/digest.h"
#include "runtime/image_load.h"
#include "runtime/image_store.h"
#include "runtime/layer.h"
#include "runtime/oci.h"

/* snprintf into an array, failing the test if it does not fit. */
#define PATHF(buf, ...) assert_true((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) < sizeof(buf))

/* ---- building tarballs with libarchive's writer ---- */

/* One entry: 'f' file, 'd' directory, 'l' symlink, 'h' hardlink. */
struct tent {
	char type;
	char path[320];
	const void *data; /* file content */
	size_t len;	  /* 0: strlen(data) */
	char link[320];	  /* symlink or hardlink target */
	unsigned mode;	  /* permission bits; 0: 0644 or 0755 */
	int uid;
	const char *xattr; /* "name=value" or NULL */
};

struct tlist {
	struct tent *v;
	size_t n;
	size_t cap;
};

static struct tent *tl_add(struct tlist *tl, char type, const char *path)
{
	if (tl->n == tl->cap) {
		tl->cap = tl->cap ? 2 * tl->cap : 16;
		tl->v = realloc(tl->v, tl->cap * sizeof(*tl->v));
		assert_non_null(tl->v);
	}
	memset(&tl->v[tl->n], 0, sizeof(tl->v[0]));
	tl->v[tl->n].type = type;
	PATHF(tl->v[tl->n].path, "%s", path);
	return &tl->v[tl->n++];
}

static void tl_file(struct tlist *tl, const char *path, const void *data, size_t len)
{
	struct tent *e = tl_add(tl, 'f', path);

	e->data = data;
	e->len = len;
}

static void tl_link(struct tlist *tl, char type, const char *path, const char *target)
{
	struct tent *e = tl_add(tl, type, path);

	PATHF(e->link, "%s", target);
}

static bool tl_has(const struct tlist *tl, const char *path)
{
	for (size_t i = 0; i < tl->n; i++)
		if (strcmp(tl->v[i].path, path) == 0)
			return true;
	return false;
}

static la_ssize_t to_buf(struct archive *a, void *arg, const void *data, size_t len)
{
	(void)a;
	assert_int_equal(buf_append(arg, data, len), 0);
	return (la_ssize_t)len;
}

static void tar_build(const struct tent *ents, size_t n, struct buf *out)
{
	struct archive *a = archive_write_new();

	buf_init(out);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	/* End right after the end-of-archive blocks, so truncation cuts content. */
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open(a, out, NULL, to_buf, NULL), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		const struct tent *t = &ents[i];
		struct archive_entry *e = archive_entry_new();
		size_t len = t->data == NULL ? 0 : t->len ? t->len : strlen(t->data);
		unsigned mode = t->mode;

		archive_entry_set_pathname(e, t->path);
		archive_entry_set_mtime(e, 1700000000, 0);
		archive_entry_set_uid(e, (la_int64_t)t->uid);
		archive_entry_set_gid(e, (la_int64_t)t->uid);
		switch (t->type) {
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			mode = mode ? mode : 0755;
			len = 0;
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, t->link);
			mode = 0777;
			len = 0;
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, t->link);
			mode = mode ? mode : 0644;
			break;
		default:
			archive_entry_set_filetype(e, AE_IFREG);
			mode = mode ? mode : 0644;
			break;
		}
		archive_entry_set_perm(e, (mode_t)mode);
		archive_entry_set_size(e, (la_int64_t)len);
		if (t->xattr != NULL) {
			const char *eq = strchr(t->xattr, '=');
			char name[128];
			PATHF(name, "%.*s", (int)(eq - t->xattr), t->xattr);
			archive_entry_xattr_add_entry(e, name, eq + 1, strlen(eq + 1));
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (len > 0 && t->type == 'h')
			archive_write_data(a, t->data, len); /* pax may drop a link's data */
		else if (len > 0)
			assert_int_equal(archive_write_data(a, t->data, len), (la_ssize_t)len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static void gzip_buf(const struct buf *in, struct buf *out)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	buf_init(out);
	assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	/* The gzip stream alone, not padded to a 10 KiB block. */
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open(a, out, NULL, to_buf, NULL), ARCHIVE_OK);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_pathname(e, "data");
	archive_entry_set_size(e, (la_int64_t)in->len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, in->data, in->len), (la_ssize_t)in->len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Write the archive made of @tl to @path, gzip-compressed or not. */
static void archive_to(const char *path, const struct tlist *tl, bool gzip)
{
	struct buf tar, gz;

	tar_build(tl->v, tl->n, &tar);
	if (gzip) {
		gzip_buf(&tar, &gz);
		write_file(path, gz.data, gz.len);
		buf_free(&gz);
	} else {
		write_file(path, tar.data, tar.len);
	}
	buf_free(&tar);
}

/* ---- test images ---- */

struct tlayer {
	struct buf tar;
	struct buf blob;
	struct digest diff_id;
	struct digest digest;
	bool gzip;
};

static void tlayer_make(struct tlayer *l, const struct tent *ents, size_t n, bool gzip)
{
	tar_build(ents, n, &l->tar);
	digest_buf(l->tar.data, l->tar.len, &l->diff_id);
	l->gzip = gzip;
	if (gzip) {
		gzip_buf(&l->tar, &l->blob);
	} else {
		buf_init(&l->blob);
		assert_int_equal(buf_append(&l->blob, l->tar.data, l->tar.len), 0);
	}
	digest_buf(l->blob.data, l->blob.len, &l->digest);
}

static void tlayer_free(struct tlayer *l)
{
	buf_free(&l->tar);
	buf_free(&l->blob);
}

struct timg {
	struct tlayer **layers;
	size_t n;
	struct buf config;
	struct digest config_d;
	struct buf manifest;
	struct digest manifest_d;
};

/* The config of @t: @label makes it (so the image id) unique. */
static void timg_config(struct timg *t, const char *label)
{
	buf_free(&t->config);
	buf_init(&t->config);
	buf_appendf(&t->config,
		    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":"
		    "\"2024-01-02T03:04:05Z\",\"config\":{\"Cmd\":[\"sh\"],\"Env\":"
		    "[\"PATH=/usr/bin:/bin\"],\"Labels\":{\"test\":\"%s\"},\"WorkingDir\":\"/\"},"
		    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
		    label);
	for (size_t i = 0; i < t->n; i++)
		buf_appendf(&t->config, "%s\"%s\"", i ? "," : "", t->layers[i]->diff_id.str);
	buf_appendf(&t->config, "]}}");
	digest_buf(t->config.data, t->config.len, &t->config_d);
}

/* The manifest of @t (after its config): OCI media types, or Docker's. */
static void timg_manifest(struct timg *t, bool oci)
{
	buf_free(&t->manifest);
	buf_init(&t->manifest);
	buf_appendf(&t->manifest,
		    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
		    "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
		    oci ? "application/vnd.oci.image.manifest.v1+json"
			: "application/vnd.docker.distribution.manifest.v2+json",
		    oci ? "application/vnd.oci.image.config.v1+json"
			: "application/vnd.docker.container.image.v1+json",
		    t->config_d.str, t->config.len);
	for (size_t i = 0; i < t->n; i++) {
		const struct tlayer *l = t->layers[i];
		const char *mt =
		    oci ? (l->gzip ? "application/vnd.oci.image.layer.v1.tar+gzip"
				   : "application/vnd.oci.image.layer.v1.tar")
			: (l->gzip ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
				   : "application/vnd.docker.image.rootfs.diff.tar");
		buf_appendf(&t->manifest, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
			    i ? "," : "", mt, l->digest.str, l->blob.len);
	}
	buf_appendf(&t->manifest, "]}");
	digest_buf(t->manifest.data, t->manifest.len, &t->manifest_d);
}

/* Replace the manifest of @t by @text. */
static void timg_set_manifest(struct timg *t, const char *text)
{
	buf_free(&t->manifest);
	buf_init(&t->manifest);
	buf_appendf(&t->manifest, "%s", text);
	digest_buf(t->manifest.data, t->manifest.len, &t->manifest_d);
}

/* An image of @n layers (kept by pointer). */
static void timg_make(struct timg *t, struct tlayer **layers, size_t n, const char *label, bool oci)
{
	memset(t, 0, sizeof(*t));
	t->layers = layers;
	t->n = n;
	timg_config(t, label);
	timg_manifest(t, oci);
}

static void timg_free(struct timg *t)
{
	buf_free(&t->config);
	buf_free(&t->manifest);
}

static void add_blob(struct tlist *tl, const struct digest *d, const struct buf *b)
{
	char path[128];

	PATHF(path, "blobs/sha256/%s", digest_hex(d));
	if (!tl_has(tl, path))
		tl_file(tl, path, b->data, b->len);
}

/* The blobs of @t into an OCI layout being built. */
static void oci_add_blobs(struct tlist *tl, const struct timg *t)
{
	add_blob(tl, &t->config_d, &t->config);
	add_blob(tl, &t->manifest_d, &t->manifest);
	for (size_t i = 0; i < t->n; i++)
		add_blob(tl, &t->layers[i]->digest, &t->layers[i]->blob);
}

/* oci-layout and index.json listing @n images named @names (NULL: none); the
 * index.json text is kept in @index, which must outlive the archive. */
static void oci_finish(struct tlist *tl, const struct timg *const *imgs, const char *const *names,
		       size_t n, struct buf *index)
{
	buf_init(index);
	buf_appendf(index, "{\"schemaVersion\":2,\"manifests\":[");
	for (size_t i = 0; i < n; i++) {
		buf_appendf(index, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu",
			    i ? "," : "", "application/vnd.oci.image.manifest.v1+json",
			    imgs[i]->manifest_d.str, imgs[i]->manifest.len);
		if (names != NULL && names[i] != NULL)
			buf_appendf(index,
				    ",\"annotations\":{\"io.containerd.image.name\":\"%s\","
				    "\"org.opencontainers.image.ref.name\":\"latest\"}",
				    names[i]);
		buf_appendf(index, "}");
	}
	buf_appendf(index, "]}");
	tl_file(tl, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 0);
	tl_file(tl, "index.json", index->data, index->len);
}

/* docker save: <hex>.json, <id>/layer.tar (a symlink when an earlier image of
 * the archive wrote that layer, as docker does), its manifest.json entry into
 * @mj; @tags is the JSON of RepoTags. */
static void docker_add_image(struct tlist *tl, const struct timg *t, const char *tags,
			     struct buf *mj)
{
	char path[160];

	PATHF(path, "%s.json", digest_hex(&t->config_d));
	if (!tl_has(tl, path))
		tl_file(tl, path, t->config.data, t->config.len);
	buf_appendf(mj, "%s{\"Config\":\"%s\",\"RepoTags\":%s,\"Layers\":[", mj->len > 1 ? "," : "",
		    path, tags != NULL ? tags : "null");
	for (size_t i = 0; i < t->n; i++) {
		PATHF(path, "%.60s/layer.tar", digest_hex(&t->layers[i]->diff_id));
		if (tl_has(tl, path)) {
			char target[170];
			PATHF(target, "../%s", path);
			PATHF(path, "%.60s%zu/layer.tar", digest_hex(&t->layers[i]->diff_id),
			      tl->n);
			tl_link(tl, 'l', path, target);
		} else {
			tl_file(tl, path, t->layers[i]->tar.data, t->layers[i]->tar.len);
		}
		buf_appendf(mj, "%s\"%s\"", i ? "," : "", path);
	}
	buf_appendf(mj, "]}");
}

/* An image archive being built: its entries and the JSON they point at. */
struct tarch {
	struct tlist tl;
	struct buf meta;
};

static void tarch_free(struct tarch *a)
{
	free(a->tl.v);
	buf_free(&a->meta);
	memset(a, 0, sizeof(*a));
}

static struct tent *tarch_find(struct tarch *a, const char *path)
{
	for (size_t i = 0; i < a->tl.n; i++)
		if (strcmp(a->tl.v[i].path, path) == 0)
			return &a->tl.v[i];
	fail_msg("no entry %s", path);
	abort();
}

/* A docker save archive of @n images; tags[i] is the JSON of RepoTags (NULL: null). */
static void docker_build(struct tarch *a, const struct timg *const *imgs, const char *const *tags,
			 size_t n)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->meta);
	buf_appendf(&a->meta, "[");
	for (size_t i = 0; i < n; i++)
		docker_add_image(&a->tl, imgs[i], tags[i], &a->meta);
	buf_appendf(&a->meta, "]");
	/* What docker save writes besides, which a loader skips. */
	tl_add(&a->tl, 'd', "0123abcd");
	tl_file(&a->tl, "0123abcd/json", "{\"id\":\"0123abcd\"}", 0);
	tl_file(&a->tl, "0123abcd/VERSION", "1.0", 0);
	tl_file(&a->tl, "repositories", "{}", 0);
	tl_file(&a->tl, "manifest.json", a->meta.data, a->meta.len);
}

/* An OCI layout archive of @n images; names[i] may be NULL. */
static void oci_build(struct tarch *a, const struct timg *const *imgs, const char *const *names,
		      size_t n)
{
	memset(a, 0, sizeof(*a));
	for (size_t i = 0; i < n; i++)
		oci_add_blobs(&a->tl, imgs[i]);
	oci_finish(&a->tl, imgs, names, n, &a->meta);
}

/* ---- fixture ---- */

struct fix {
	char dir[64];
	char root[96];
	char outside[96];
	char archive[96];
	char mnt[96];
	bool mounted;
	struct image_store *s;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct shoal_err err;

	assert_non_null(f);
	PATHF(f->dir, "/tmp/shoal-test-image-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	PATHF(f->root, "%s/store", f->dir);
	PATHF(f->outside, "%s/outside", f->dir);
	PATHF(f->archive, "%s/archive.tar", f->dir);
	PATHF(f->mnt, "%s/mnt", f->dir);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	assert_int_equal(mkdir(f->mnt, 0755), 0);
	assert_int_equal(image_store_open(f->root, &f->s, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	if (f->mounted)
		umount2(f->mnt, MNT_DETACH);
	image_store_close(f->s);
	fs_rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static size_t count_dir(const char *root, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	PATHF(path, "%s/%s", root, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* Nothing half-written: tmp/ is empty and blobs/layers hold only what images
 * reference. */
static void assert_store_clean(const struct fix *f, size_t blobs, size_t layers)
{
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "blobs/sha256"), blobs);
	assert_int_equal(count_dir(f->root, "layers"), layers);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	print_message("# skipped: unpacking layers needs root (mknod, trusted.* xattrs)\n");
	return false;
}

static void layer_dir(const struct fix *f, const struct tlayer *l, char *out, size_t len)
{
	assert_true((size_t)snprintf(out, len, "%s/layers/%s", f->root, digest_hex(&l->diff_id)) <
		    len);
}

static void read_text(const char *path, char *out, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	n = fread(out, 1, len - 1, fp);
	out[n] = '\0';
	fclose(fp);
}

/* ---- digests ---- */

static void digest_known_vectors(void **state)
{
	struct digest d, e;
	struct digest_ctx c;
	struct shoal_err err;
	char path[] = "/tmp/shoal-test-digest-XXXXXX";
	uint64_t size;
	int fd;

	(void)state;
	digest_buf("", 0, &d);
	assert_string_equal(d.str,
			    "sha256:"
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	digest_buf("abc", 3, &d);
	assert_string_equal(d.str,
			    "sha256:"
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	digest_init(&c);
	digest_update(&c, "a", 1);
	digest_update(&c, "", 0);
	digest_update(&c, "bc", 2);
	digest_final(&c, &e);
	assert_true(digest_equal(&d, &e));
	assert_string_equal(digest_hex(&d), d.str + 7);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(digest_file(path, &e, &size, &err), 0);
	assert_int_equal(size, 3);
	assert_true(digest_equal(&d, &e));
	unlink(path);
	assert_int_equal(digest_file(path, &e, &size, &err), SHOAL_ENOTFOUND);
}

static void digest_parse_accepts_only_sha256(void **state)
{
	static const char hex[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const struct {
		const char *s;
		const char *msg;
	} bad[] = {
	    {"", "no algorithm"},
	    {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "no algorithm"},
	    {"sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	     "unsupported algorithm"},
	    {"md5:900150983cd24fb0d6963f7d28e17f72", "unsupported algorithm"},
	    {"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a", "malformed"},
	    {"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
	     "malformed"},
	    {"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
	     "malformed"},
	    {"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a ",
	     "malformed"},
	    {"sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	     "malformed"},
	    {"SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	     "unsupported algorithm"},
	};
	struct shoal_err err;
	struct digest d;
	char good[80];

	(void)state;
	PATHF(good, "sha256:%s", hex);
	assert_int_equal(digest_parse(good, &d, &err), 0);
	assert_string_equal(d.str, good);
	assert_true(digest_is_valid(good));
	assert_int_equal(digest_from_hex(hex, &d, &err), 0);
	assert_string_equal(d.str, good);
	assert_int_equal(digest_from_hex("abc", &d, &err), SHOAL_EINVAL);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_false(digest_is_valid(bad[i].s));
		assert_int_equal(digest_parse(bad[i].s, &d, &err), SHOAL_EINVAL);
		assert_contains(err.msg, bad[i].msg);
	}
	assert_false(digest_is_valid(NULL));
}

/* ---- OCI documents ---- */

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void oci_parses_manifests(void **state)
{
	static const char oci[] =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
	    "\"" D1 "\",\"size\":7023},\"layers\":[{\"mediaType\":"
	    "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":32654,"
	    "\"annotations\":{\"x\":\"y\"}},{\"mediaType\":"
	    "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3 "\",\"size\":0}],"
	    "\"annotations\":{\"a\":\"b\"}}";
	static const char docker[] =
	    "{\"schemaVersion\":2,\"mediaType\":"
	    "\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
	    "\"application/vnd.docker.container.image.v1+json\",\"size\":1,\"digest\":\"" D1 "\"},"
	    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
	    "\"size\":5,\"digest\":\"" D2 "\"}]}";
	static const char no_type[] =
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
	    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1},"
	    "\"layers\":[]}";
	struct oci_manifest m, m2;
	struct shoal_err err;
	char *json;
	size_t len;

	(void)state;
	assert_int_equal(oci_manifest_parse(oci, sizeof(oci) - 1, &m, &err), 0);
	assert_int_equal(m.media_type, OCI_MT_OCI_MANIFEST);
	assert_int_equal(m.config.media_type, OCI_MT_OCI_CONFIG);
	assert_string_equal(m.config.digest.str, D1);
	assert_int_equal(m.config.size, 7023);
	assert_int_equal(m.n_layers, 2);
	assert_int_equal(m.layers[0].media_type, OCI_MT_OCI_LAYER_GZIP);
	assert_int_equal(m.layers[0].size, 32654);
	assert_int_equal(m.layers[1].media_type, OCI_MT_OCI_LAYER_ZSTD);
	assert_string_equal(m.layers[1].digest.str, D3);
	/* Encoding is canonical: it parses back to the same thing, byte-stable. */
	assert_int_equal(oci_manifest_encode(&m, &json, &len, &err), 0);
	assert_int_equal(oci_manifest_parse(json, len, &m2, &err), 0);
	assert_int_equal(m2.n_layers, 2);
	assert_string_equal(m2.layers[1].digest.str, D3);
	assert_int_equal(m2.layers[0].size, 32654);
	free(json);
	oci_manifest_free(&m2);
	oci_manifest_free(&m);

	assert_int_equal(oci_manifest_parse(docker, sizeof(docker) - 1, &m, &err), 0);
	assert_int_equal(m.media_type, OCI_MT_DOCKER_MANIFEST);
	assert_int_equal(m.config.media_type, OCI_MT_DOCKER_CONFIG);
	assert_int_equal(m.layers[0].media_type, OCI_MT_DOCKER_LAYER_GZIP);
	oci_manifest_free(&m);

	assert_int_equal(oci_manifest_parse(no_type, sizeof(no_type) - 1, &m, &err), 0);
	assert_int_equal(m.media_type, OCI_MT_OCI_MANIFEST);
	assert_int_equal(m.n_layers, 0);
	oci_manifest_free(&m);
	oci_manifest_free(&m); /* twice is harmless */
}

static void oci_rejects_bad_manifests(void **state)
{
#define CFG                                                                            \
	"{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 \
	"\",\"size\":1}"
#define LAY                                                                          \
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2 \
	"\",\"size\":1}"
	static const struct {
		const char *json;
		int code;
		const char *msg;
	} cases[] = {
	    {"", SHOAL_EPROTO, "not valid JSON"},
	    {"{\"schemaVersion\":2,", SHOAL_EPROTO, "not valid JSON"},
	    {"[]", SHOAL_EPROTO, "must be a JSON object"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[]} x", SHOAL_EPROTO,
	     "not valid JSON"},
	    {"{\"schemaVersion\":1,\"config\":" CFG ",\"layers\":[]}", SHOAL_EPROTO,
	     "schemaVersion must be 2"},
	    {"{\"config\":" CFG ",\"layers\":[]}", SHOAL_EPROTO, "schemaVersion is missing"},
	    {"{\"schemaVersion\":2,\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[]}",
	     SHOAL_EPROTO, "duplicate"},
	    {"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	     "\"config\":" CFG ",\"layers\":[]}",
	     SHOAL_EPROTO, "unsupported media type"},
	    {"{\"schemaVersion\":2,\"config\":" CFG "}", SHOAL_EPROTO, "layers is missing"},
	    {"{\"schemaVersion\":2,\"layers\":[]}", SHOAL_EPROTO, "config"},
	    {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/x-foo\",\"digest\":"
	     "\"" D1 "\",\"size\":1},\"layers\":[]}",
	     SHOAL_EPROTO, "unsupported media type 'application/x-foo'"},
	    {"{\"schemaVersion\":2,\"config\":{\"mediaType\":"
	     "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D1 "\",\"size\":1},"
	     "\"layers\":[]}",
	     SHOAL_EPROTO, "not a container image"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[{\"mediaType\":"
	     "\"application/vnd.example.unknown\",\"digest\":\"" D2 "\",\"size\":1}]}",
	     SHOAL_EPROTO, "layers[0]: unsupported media type"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[" CFG "]}", SHOAL_EPROTO,
	     "not a layer"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[{\"mediaType\":"
	     "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:12\",\"size\":1}]}",
	     SHOAL_EPROTO, "layers[0]: digest"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[{\"mediaType\":"
	     "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2 "\",\"size\":\"1\"}]}",
	     SHOAL_EPROTO, "size must be a non-negative integer"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[{\"mediaType\":"
	     "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2 "\",\"size\":-1}]}",
	     SHOAL_EPROTO, "size must be a non-negative integer"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[{\"mediaType\":"
	     "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2 "\"}]}",
	     SHOAL_EPROTO, "size is missing"},
	    {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":{}}", SHOAL_EPROTO,
	     "must be an array"},
	};
	struct oci_manifest m;
	struct shoal_err err;
	struct buf big;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rv = oci_manifest_parse(cases[i].json, strlen(cases[i].json), &m, &err);
		if (rv != cases[i].code || strstr(err.msg, cases[i].msg) == NULL)
			fail_msg("case %zu: got %d '%s', want %d '%s'", i, rv, err.msg,
				 cases[i].code, cases[i].msg);
		assert_int_equal(m.n_layers, 0);
		assert_null(m.layers);
	}
	/* More layers than overlayfs stacks. */
	buf_init(&big);
	buf_appendf(&big, "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[");
	for (unsigned i = 0; i <= OCI_MAX_LAYERS; i++)
		buf_appendf(&big, "%s" LAY, i ? "," : "");
	buf_appendf(&big, "]}");
	assert_int_equal(oci_manifest_parse(big.data, big.len, &m, &err), SHOAL_ETOOBIG);
	assert_contains(err.msg, "more than 128");
	buf_free(&big);
	/* A document over the size limit is refused before parsing. */
	assert_int_equal(oci_manifest_parse("{}", OCI_MAX_MANIFEST + 1, &m, &err), SHOAL_ETOOBIG);
#undef CFG
#undef LAY
}

static void oci_index_selects_linux_amd64(void **state)
{
	static const char idx[] =
	    "{\"schemaVersion\":2,\"mediaType\":"
	    "\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":["
	    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":"
	    "\"" D1 "\",\"size\":10,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\","
	    "\"variant\":\"v8\"}},"
	    "{\"mediaType\":\"application/vnd.dev.cosign.signature\",\"digest\":\"" D3 "\","
	    "\"size\":3,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":"
	    "\"" D2 "\",\"size\":11,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}";
	static const char arm_only[] =
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":1,"
	    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},{\"mediaType\":"
	    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\",\"size\":1,"
	    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\"}}]}";
	static const char bad_platform[] =
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":1,"
	    "\"platform\":{\"os\":\"linux\"}}]}";
	const struct oci_descriptor *d;
	struct oci_index x;
	struct shoal_err err;

	(void)state;
	assert_int_equal(oci_index_parse(idx, sizeof(idx) - 1, &x, &err), 0);
	assert_int_equal(x.media_type, OCI_MT_DOCKER_LIST);
	assert_int_equal(x.n_manifests, 3);
	assert_string_equal(x.manifests[0].platform.variant, "v8");
	assert_int_equal(x.manifests[1].media_type, OCI_MT_UNKNOWN);
	assert_int_equal(oci_index_select(&x, "linux", "amd64", &d, &err), 0);
	assert_string_equal(d->digest.str, D2);
	assert_int_equal(d->size, 11);
	oci_index_free(&x);

	assert_int_equal(oci_index_parse(arm_only, sizeof(arm_only) - 1, &x, &err), 0);
	assert_int_equal(x.media_type, OCI_MT_OCI_INDEX);
	assert_int_equal(oci_index_select(&x, "linux", "amd64", &d, &err), SHOAL_ENOTFOUND);
	assert_contains(err.msg, "no image for linux/amd64");
	assert_contains(err.msg, "linux/arm64, windows/amd64");
	oci_index_free(&x);

	assert_int_equal(oci_index_parse(bad_platform, sizeof(bad_platform) - 1, &x, &err),
			 SHOAL_EPROTO);
	assert_contains(err.msg, "platform: architecture is missing");
	assert_int_equal(oci_index_parse("{\"schemaVersion\":2}", 19, &x, &err), SHOAL_EPROTO);
	assert_contains(err.msg, "manifests is missing");
}

static void oci_config_fields(void **state)
{
	static const char cfg[] =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-02T03:04:05Z\","
	    "\"config\":{\"User\":\"1000:1000\",\"ExposedPorts\":{\"8080\":{},\"53/udp\":{},"
	    "\"80/tcp\":{},\"8080/tcp\":{}},\"Env\":[\"PATH=/bin\",\"A=b\"],\"Entrypoint\":"
	    "[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"WorkingDir\":\"/srv\",\"Labels\":{"
	    "\"z\":\"last\",\"a\":\"first\"},\"StopSignal\":\"SIGQUIT\",\"Healthcheck\":{\"Test\":"
	    "[\"CMD-SHELL\",\"true\"],\"Interval\":30000000000,\"Timeout\":5000000000,"
	    "\"StartPeriod\":1000000000,\"Retries\":3},\"Volumes\":null,\"OnBuild\":null},"
	    "\"container_config\":{\"Cmd\":[\"ignored\"]},\"history\":[{}],"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
	static const char nulls[] =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":null,"
	    "\"Cmd\":null,\"Env\":null,\"Labels\":null,\"ExposedPorts\":null,\"Healthcheck\":null,"
	    "\"User\":\"\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	static const struct {
		const char *json;
		const char *msg;
	} bad[] = {
	    {"{\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"}}", "architecture is missing"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\"}", "rootfs is missing"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"x\"}}",
	     "type must be \"layers\""},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
	     "\"diff_ids\":[\"sha256:zz\"]}}",
	     "diff_ids[0] must be a sha256 digest"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"Cmd\":\"sh\"}}",
	     "Cmd must be an array of strings"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"Env\":[1]}}",
	     "Env[0] must be a string"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"ExposedPorts\":{\"http\":{}}}}",
	     "'http' is not a port"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"ExposedPorts\":{\"70000/tcp\":{}}}}",
	     "is not a port"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"Labels\":{\"a\":1}}}",
	     "the value of 'a' must be a string"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"Healthcheck\":{\"Test\":[\"RUN\"]}}}",
	     "Test must start with NONE, CMD or CMD-SHELL"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"Healthcheck\":{\"Interval\":-1}}}",
	     "Interval must be a non-negative integer"},
	    {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"},"
	     "\"config\":{\"User\":7}}",
	     "User must be a string"},
	};
	struct oci_config c;
	struct shoal_err err;

	(void)state;
	assert_int_equal(oci_config_parse(cfg, sizeof(cfg) - 1, &c, &err), 0);
	assert_string_equal(c.architecture, "amd64");
	assert_string_equal(c.os, "linux");
	assert_null(c.variant);
	assert_string_equal(c.created, "2024-01-02T03:04:05Z");
	assert_string_equal(c.user, "1000:1000");
	assert_string_equal(c.working_dir, "/srv");
	assert_string_equal(c.stop_signal, "SIGQUIT");
	assert_int_equal(c.entrypoint.n, 2);
	assert_string_equal(c.entrypoint.items[1], "-c");
	assert_int_equal(c.cmd.n, 1);
	assert_string_equal(c.cmd.items[0], "echo hi");
	assert_int_equal(c.env.n, 2);
	assert_string_equal(c.env.items[1], "A=b");
	/* "8080" and "8080/tcp" are one port; sorted. */
	assert_int_equal(c.exposed_ports.n, 3);
	assert_string_equal(c.exposed_ports.items[0], "53/udp");
	assert_string_equal(c.exposed_ports.items[1], "80/tcp");
	assert_string_equal(c.exposed_ports.items[2], "8080/tcp");
	assert_int_equal(c.n_labels, 2);
	assert_string_equal(c.labels[0].key, "a");
	assert_string_equal(c.labels[1].value, "last");
	assert_int_equal(c.healthcheck.test.n, 2);
	assert_string_equal(c.healthcheck.test.items[0], "CMD-SHELL");
	assert_int_equal(c.healthcheck.interval_ns, 30000000000LL);
	assert_int_equal(c.healthcheck.timeout_ns, 5000000000LL);
	assert_int_equal(c.healthcheck.start_period_ns, 1000000000LL);
	assert_int_equal(c.healthcheck.retries, 3);
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1].str, D2);
	oci_config_free(&c);

	assert_int_equal(oci_config_parse(nulls, sizeof(nulls) - 1, &c, &err), 0);
	assert_int_equal(c.cmd.n, 0);
	assert_int_equal(c.n_labels, 0);
	assert_int_equal(c.n_diff_ids, 0);
	assert_string_equal(c.user, "");
	oci_config_free(&c);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rv = oci_config_parse(bad[i].json, strlen(bad[i].json), &c, &err);
		if (rv != SHOAL_EPROTO || strstr(err.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: got %d '%s', want '%s'", i, rv, err.msg, bad[i].msg);
		assert_null(c.architecture);
	}
}

static void oci_docker_save_manifest(void **state)
{
	static const char ok[] =
	    "[{\"Config\":\"abc.json\",\"RepoTags\":[\"busybox:latest\",\"b:1\"],\"Layers\":["
	    "\"l1/layer.tar\",\"./l2/layer.tar\"]},{\"Config\":\"blobs/sha256/00\",\"RepoTags\":"
	    "null,\"Layers\":[],\"LayerSources\":{}}]";
	static const struct {
		const char *json;
		const char *msg;
	} bad[] = {
	    {"{}", "must be a JSON array"},
	    {"[{\"RepoTags\":[],\"Layers\":[]}]", "Config is missing"},
	    {"[{\"Config\":\"a.json\",\"RepoTags\":[]}]", "Layers is missing"},
	    {"[{\"Config\":\"../a.json\",\"Layers\":[]}]", "is not a path inside the archive"},
	    {"[{\"Config\":\"/etc/a.json\",\"Layers\":[]}]", "is not a path inside the archive"},
	    {"[{\"Config\":\"a.json\",\"Layers\":[\"x/../../layer.tar\"]}]",
	     "Layers[0] 'x/../../layer.tar' is not a path inside the archive"},
	    {"[{\"Config\":\"a.json\",\"Layers\":\"l/layer.tar\"}]", "must be an array"},
	};
	struct oci_docker_save ds;
	struct shoal_err err;

	(void)state;
	assert_int_equal(oci_docker_save_parse(ok, sizeof(ok) - 1, &ds, &err), 0);
	assert_int_equal(ds.n_images, 2);
	assert_string_equal(ds.images[0].config, "abc.json");
	assert_int_equal(ds.images[0].tags.n, 2);
	assert_string_equal(ds.images[0].tags.items[1], "b:1");
	assert_int_equal(ds.images[0].layers.n, 2);
	assert_int_equal(ds.images[1].tags.n, 0);
	oci_docker_save_free(&ds);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rv = oci_docker_save_parse(bad[i].json, strlen(bad[i].json), &ds, &err);
		if (rv != SHOAL_EPROTO || strstr(err.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: got %d '%s', want '%s'", i, rv, err.msg, bad[i].msg);
		assert_int_equal(ds.n_images, 0);
	}
	assert_int_equal(oci_layout_check("{\"imageLayoutVersion\":\"1.0.0\"}", 30, &err), 0);
	assert_int_equal(oci_layout_check("{\"imageLayoutVersion\":\"2.0.0\"}", 30, &err),
			 SHOAL_EPROTO);
	assert_contains(err.msg, "2.0.0 is not supported");
}

static void media_types_round_trip(void **state)
{
	(void)state;
	for (int t = OCI_MT_OCI_INDEX; t <= OCI_MT_DOCKER_FOREIGN; t++) {
		const char *name = oci_media_type_name((enum oci_media_type)t);
		assert_non_null(name);
		assert_int_equal(oci_media_type_parse(name), t);
		/* Each type is exactly one kind. */
		assert_int_equal(oci_media_type_is_index((enum oci_media_type)t) +
				     oci_media_type_is_manifest((enum oci_media_type)t) +
				     oci_media_type_is_config((enum oci_media_type)t) +
				     oci_media_type_is_layer((enum oci_media_type)t),
				 1);
	}
	assert_int_equal(oci_media_type_parse("application/json"), OCI_MT_UNKNOWN);
	assert_int_equal(oci_media_type_parse(NULL), OCI_MT_UNKNOWN);
	assert_null(oci_media_type_name(OCI_MT_UNKNOWN));
}

static void image_names_normalize(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} ok[] = {
	    {"busybox", "busybox:latest"},
	    {"busybox:1.36", "busybox:1.36"},
	    {"library/busybox", "busybox:latest"},
	    {"docker.io/library/busybox:latest", "busybox:latest"},
	    {"index.docker.io/library/busybox", "busybox:latest"},
	    {"docker.io/user/app:v2", "user/app:v2"},
	    {"localhost:5000/app", "localhost:5000/app:latest"},
	    {"localhost/app:x", "localhost/app:x"},
	    {"registry.example.com/a/b/c:Tag_1.0-rc", "registry.example.com/a/b/c:Tag_1.0-rc"},
	    {"[::1]:5000/app", "[::1]:5000/app:latest"},
	    {"my-app__x-y/sub.z", "my-app__x-y/sub.z:latest"},
	    {"my.registry/x", "my.registry/x:latest"},
	    {"localhost:5000", "localhost:5000"},
	    /* Dropping docker.io here would turn "docker.io" into a host. */
	    {"docker.io/docker.io/x", "docker.io/docker.io/x:latest"},
	    {"docker.io/library/x.y", "x.y:latest"},
	};
	static const char *const bad[] = {
	    "",
	    "Busybox",
	    "busybox:",
	    "busybox:-x",
	    "bu sybox",
	    "busybox@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "library/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "a//b",
	    "-a",
	    "a-",
	    "a..b",
	    "a___b",
	    "exa_mple.com:99999/x",
	    "host:port/x",
	    "my_app.io/x",
	};
	char out[IMAGE_REF_MAX], tag[200];
	struct shoal_err err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		if (image_name_normalize(ok[i].in, out, sizeof(out), &err) != 0)
			fail_msg("'%s' refused: %s", ok[i].in, err.msg);
		assert_string_equal(out, ok[i].out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (image_name_normalize(bad[i], out, sizeof(out), &err) != SHOAL_EINVAL)
			fail_msg("'%s' accepted as '%s'", bad[i], out);
	memset(tag, 'a', sizeof(tag));
	memcpy(tag, "app:", 4);
	tag[4 + 129] = '\0';
	assert_int_equal(image_name_normalize(tag, out, sizeof(out), &err), SHOAL_EINVAL);
	tag[4 + 128] = '\0';
	assert_int_equal(image_name_normalize(tag, out, sizeof(out), &err), 0);
}

/* ---- layers ---- */

static const struct tent base_layer[] = {
    {.type = 'd', .path = "etc"},
    {.type = 'f', .path = "etc/passwd", .data = "root:x:0:0:root:/root:/bin/sh\n"},
    {.type = 'h', .path = "etc/passwd.hard", .link = "etc/passwd"},
    {.type = 'd', .path = "usr/bin"},
    {.type = 'f', .path = "usr/bin/busybox", .data = "#!fake\n", .mode = 04755},
    {.type = 'l', .path = "usr/bin/sh", .link = "busybox"},
    {.type = 'l', .path = "bin", .link = "usr/bin"},
    {.type = 'd', .path = "a"},
    {.type = 'f', .path = "a/keep", .data = "keep"},
    {.type = 'f', .path = "a/gone", .data = "gone"},
    {.type = 'd', .path = "data", .xattr = "trusted.overlay.opaque=y"},
    {.type = 'f', .path = "data/old1", .data = "old1", .xattr = "user.note=hello"},
    {.type = 'f', .path = "data/old2", .data = "old2"},
    {.type = 'f', .path = "./home/user/secret", .data = "s", .mode = 0600, .uid = 1000},
};

static const struct tent middle_layer[] = {
    {.type = 'f', .path = "a/.wh.gone"},
    {.type = 'd', .path = "data"},
    {.type = 'f', .path = "data/.wh..wh..opq"},
    {.type = 'f', .path = "data/new", .data = "new"},
    {.type = 'f', .path = "etc/passwd", .data = "root:x:0:0:root:/root:/bin/ash\n"},
    {.type = 'f', .path = "b/.wh.ghost"},
};

static const struct tent top_layer[] = {
    {.type = 'f', .path = ".wh.data"},
    {.type = 'f', .path = "opt/x", .data = "x"},
    {.type = 'f', .path = ".wh..wh.plnk"},
};

static void assert_whiteout(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	PATHF(path, "%s/%s", dir, rel);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
}

static bool has_opaque(const char *dir, const char *rel)
{
	char path[PATH_MAX], v[8];
	ssize_t n;

	PATHF(path, "%s/%s", dir, rel);
	n = lgetxattr(path, LAYER_OPAQUE_XATTR, v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static void assert_missing(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	PATHF(path, "%s/%s", dir, rel);
	if (lstat(path, &st) == 0 || errno != ENOENT)
		fail_msg("%s exists", path);
}

static void assert_file(const char *dir, const char *rel, const char *content)
{
	char path[PATH_MAX], text[256];

	PATHF(path, "%s/%s", dir, rel);
	read_text(path, text, sizeof(text));
	assert_string_equal(text, content);
}

/* Mount @n layer directories (top first) read-only at f->mnt. */
static bool overlay_mount(struct fix *f, char **dirs, size_t n)
{
	char opts[4096] = "lowerdir=";

	for (size_t i = 0; i < n; i++) {
		strncat(opts, dirs[i], sizeof(opts) - strlen(opts) - 2);
		if (i + 1 < n)
			strcat(opts, ":");
	}
	if (mount("overlay", f->mnt, "overlay", MS_RDONLY, opts) != 0) {
		print_message("# overlayfs not mountable here (%s): merged view not checked\n",
			      strerror(errno));
		return false;
	}
	f->mounted = true;
	return true;
}

static void overlay_umount(struct fix *f)
{
	assert_int_equal(umount(f->mnt), 0);
	f->mounted = false;
}

static void load_stacks_layers_with_whiteouts(void **state)
{
	struct fix *f = *state;
	struct tlayer l1, l2, l3;
	struct tlayer *ls[] = {&l1, &l2, &l3};
	const struct timg *imgs[1];
	const char *names[] = {"stack:1"};
	const struct image *img;
	struct tlist tl = {0};
	struct shoal_err err;
	struct buf index;
	struct timg t;
	struct stat st, st2;
	char d1[PATH_MAX], d2[PATH_MAX], d3[PATH_MAX], path[PATH_MAX], v[16], **dirs, *top[3];
	size_t n;

	if (!need_root())
		skip();
	tlayer_make(&l1, base_layer, ARRAY_SIZE(base_layer), true);
	tlayer_make(&l2, middle_layer, ARRAY_SIZE(middle_layer), false);
	tlayer_make(&l3, top_layer, ARRAY_SIZE(top_layer), true);
	timg_make(&t, ls, 3, "stack", true);
	oci_add_blobs(&tl, &t);
	imgs[0] = &t;
	oci_finish(&tl, imgs, names, 1, &index);
	archive_to(f->archive, &tl, false);
	assert_int_equal(image_load_file(f->s, f->archive, NULL, &err), 0);
	assert_int_equal(image_store_lookup(f->s, "stack:1", &img, &err), 0);
	assert_int_equal(image_store_layer_dirs(f->s, img, &dirs, &n, &err), 0);
	assert_int_equal(n, 3);
	layer_dir(f, &l1, d1, sizeof(d1));
	layer_dir(f, &l2, d2, sizeof(d2));
	layer_dir(f, &l3, d3, sizeof(d3));
	assert_string_equal(dirs[0], d1);
	assert_string_equal(dirs[2], d3);

	/* Base layer: modes, owners, links and xattrs as in the tarball. */
	assert_file(d1, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
	PATHF(path, "%s/etc/passwd", d1);
	assert_int_equal(lstat(path, &st), 0);
	PATHF(path, "%s/etc/passwd.hard", d1);
	assert_int_equal(lstat(path, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	PATHF(path, "%s/usr/bin/busybox", d1);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	PATHF(path, "%s/usr/bin/sh", d1);
	assert_int_equal(readlink(path, v, sizeof(v)), 7);
	assert_memory_equal(v, "busybox", 7);
	PATHF(path, "%s/home/user/secret", d1);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_mode & 07777, 0600);
	PATHF(path, "%s/data/old1", d1);
	assert_int_equal(lgetxattr(path, "user.note", v, sizeof(v)), 5);
	assert_memory_equal(v, "hello", 5);
	/* A tarball cannot forge overlayfs metadata. */
	assert_false(has_opaque(d1, "data"));

	/* Whiteouts in overlayfs form. */
	assert_whiteout(d2, "a/gone");
	assert_missing(d2, "a/.wh.gone");
	assert_true(has_opaque(d2, "data"));
	assert_missing(d2, "data/.wh..wh..opq");
	assert_file(d2, "data/new", "new");
	assert_whiteout(d2, "b/ghost");
	PATHF(path, "%s/b", d2);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_whiteout(d3, "data");
	assert_missing(d3, ".wh..wh.plnk");
	assert_false(has_opaque(d3, ""));

	/* Stacked, overlayfs shows what the image means. */
	top[0] = dirs[2];
	top[1] = dirs[1];
	top[2] = dirs[0];
	if (overlay_mount(f, top, 3)) {
		assert_file(f->mnt, "a/keep", "keep");
		assert_missing(f->mnt, "a/gone");
		assert_missing(f->mnt, "data");
		assert_missing(f->mnt, "b/ghost");
		assert_file(f->mnt, "etc/passwd", "root:x:0:0:root:/root:/bin/ash\n");
		assert_file(f->mnt, "opt/x", "x");
		assert_file(f->mnt, "bin/sh", "#!fake\n");
		overlay_umount(f);
		assert_true(overlay_mount(f, top + 1, 2));
		assert_missing(f->mnt, "data/old1");
		assert_missing(f->mnt, "data/old2");
		assert_file(f->mnt, "data/new", "new");
		assert_file(f->mnt, "a/keep", "keep");
		overlay_umount(f);
	}
	image_store_dirs_free(dirs, n);
	assert_store_clean(f, 5, 3);
	buf_free(&index);
	free(tl.v);
	timg_free(&t);
	tlayer_free(&l1);
	tlayer_free(&l2);
	tlayer_free(&l3);
}

/* Write @tl as a layer blob at DIR/blob; its diff_id into *@diff_id. */
static void blob_of(const struct fix *f, const struct tent *ents, size_t n, bool gzip, char *path,
		    struct digest *diff_id)
{
	struct tlayer l;

	tlayer_make(&l, ents, n, gzip);
	assert_true((size_t)snprintf(path, PATH_MAX, "%s/blob", f->dir) < PATH_MAX);
	write_file(path, l.blob.data, l.blob.len);
	*diff_id = l.diff_id;
	tlayer_free(&l);
}

static void layer_unpacks_once_per_digest(void **state)
{
	struct fix *f = *state;
	struct layer_stats st;
	struct digest diff_id, other;
	char blob[PATH_MAX], layers[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	struct shoal_err err;
	struct stat s1, s2;
	bool created;

	if (!need_root())
		skip();
	PATHF(layers, "%s/layers", f->root);
	PATHF(tmp, "%s/tmp", f->root);
	blob_of(f, base_layer, ARRAY_SIZE(base_layer), true, blob, &diff_id);
	assert_int_equal(layer_unpack(blob, &diff_id, layers, tmp, &created, &st, &err), 0);
	assert_true(created);
	assert_int_equal(st.entries, ARRAY_SIZE(base_layer));
	assert_true(st.bytes > 0);
	assert_int_equal(layer_path(layers, &diff_id, dir, sizeof(dir), &err), 0);
	assert_int_equal(stat(dir, &s1), 0);
	assert_int_equal(layer_unpack(blob, &diff_id, layers, tmp, &created, &st, &err), 0);
	assert_false(created);
	assert_int_equal(st.entries, 0);
	assert_int_equal(stat(dir, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(count_dir(f->root, "tmp"), 0);

	/* Content that is not what the config says is refused. */
	blob_of(f, middle_layer, ARRAY_SIZE(middle_layer), false, blob, &other);
	assert_int_equal(layer_unpack(blob, &diff_id, layers, tmp, &created, NULL, &err), 0);
	assert_false(created); /* the directory for diff_id exists: not even opened */
	digest_buf("x", 1, &other);
	assert_int_equal(layer_unpack(blob, &other, layers, tmp, &created, NULL, &err),
			 SHOAL_EPROTO);
	assert_contains(err.msg, "not the diff_id");
	assert_int_equal(count_dir(f->root, "tmp"), 0);
	assert_int_equal(count_dir(f->root, "layers"), 1);
	/* A missing blob. */
	unlink(blob);
	assert_int_equal(layer_unpack(blob, &other, layers, tmp, &created, NULL, &err),
			 SHOAL_ENOTFOUND);
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

struct escape {
	const char *name;
	struct tent ents[3];
	size_t n;
	const char *msg;
};

static void layer_rejects_path_escapes(void **state)
{
	struct fix *f = *state;
	struct escape cases[] = {
	    {"dotdot", {{.type = 'f', .path = "../escape", .data = "x"}}, 1, "contains '..'"},
	    {"dotdot inside",
	     {{.type = 'd', .path = "a"}, {.type = 'f', .path = "a/../../escape", .data = "x"}},
	     2,
	     "contains '..'"},
	    {"absolute", {{.type = 'f', .path = "", .data = "x"}}, 1, "is an absolute path"},
	    {"through symlink",
	     {{.type = 'l', .path = "ln", .link = ""},
	      {.type = 'f', .path = "ln/pwned", .data = "x"}},
	     2,
	     "goes through the symlink ln"},
	    {"through relative symlink",
	     {{.type = 'l', .path = "up", .link = "../outside"},
	      {.type = 'f', .path = "up/pwned", .data = "x"}},
	     2,
	     "goes through the symlink up"},
	    {"dir through symlink",
	     {{.type = 'l', .path = "ln", .link = "/"}, {.type = 'd', .path = "ln/shoal-pwned"}},
	     2,
	     "goes through the symlink"},
	    {"nested through symlink",
	     {{.type = 'd', .path = "d"},
	      {.type = 'l', .path = "d/ln", .link = "../.."},
	      {.type = 'f', .path = "d/ln/pwned", .data = "x"}},
	     3,
	     "goes through the symlink d/ln"},
	    {"hardlink dotdot",
	     {{.type = 'h', .path = "hl", .link = "../outside/victim"}},
	     1,
	     "contains '..'"},
	    {"hardlink absolute",
	     {{.type = 'h', .path = "hl", .link = ""}},
	     1,
	     "is an absolute path"},
	    {"hardlink through symlink",
	     {{.type = 'l', .path = "ln", .link = ""},
	      {.type = 'h', .path = "hl", .link = "ln/victim"}},
	     2,
	     "goes through the symlink ln"},
	    {"hardlink to nothing",
	     {{.type = 'h', .path = "hl", .link = "missing"}},
	     1,
	     "which is not in the layer"},
	    {"whiteout through symlink",
	     {{.type = 'l', .path = "ln", .link = ""}, {.type = 'f', .path = "ln/.wh.victim"}},
	     2,
	     "goes through the symlink ln"},
	    {"opaque through symlink",
	     {{.type = 'l', .path = "ln", .link = ""}, {.type = 'f', .path = "ln/.wh..wh..opq"}},
	     2,
	     "goes through the symlink ln"},
	    {"bad whiteout", {{.type = 'f', .path = "a/.wh.."}}, 1, "not a valid whiteout"},
	    {"file as parent",
	     {{.type = 'f', .path = "file", .data = "x"},
	      {.type = 'f', .path = "file/x", .data = "y"}},
	     2,
	     "file is not a directory"},
	    {"file replaces dir",
	     {{.type = 'd', .path = "dir"}, {.type = 'f', .path = "dir", .data = "x"}},
	     2,
	     "would replace a directory"},
	};
	char layers[PATH_MAX], tmp[PATH_MAX], blob[PATH_MAX], victim[PATH_MAX], abs[PATH_MAX];
	struct shoal_err err;
	struct digest diff_id;

	if (!need_root())
		skip();
	PATHF(layers, "%s/layers", f->root);
	PATHF(tmp, "%s/tmp", f->root);
	PATHF(victim, "%s/victim", f->outside);
	PATHF(abs, "%s/abs", f->outside);
	write_file(victim, "safe", 4);
	/* Paths that need the fixture's directory. */
	PATHF(cases[2].ents[0].path, "%s", abs);
	PATHF(cases[3].ents[0].link, "%s", f->outside);
	PATHF(cases[8].ents[0].link, "%s", victim);
	PATHF(cases[9].ents[0].link, "%s", f->outside);
	PATHF(cases[11].ents[0].link, "%s", f->outside);
	PATHF(cases[12].ents[0].link, "%s", f->outside);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[16];
		struct stat st;
		int rv;

		blob_of(f, cases[i].ents, cases[i].n, i % 2 == 0, blob, &diff_id);
		rv = layer_unpack(blob, &diff_id, layers, tmp, NULL, NULL, &err);
		if (rv != SHOAL_EPROTO || strstr(err.msg, cases[i].msg) == NULL)
			fail_msg("%s: got %d '%s', want '%s'", cases[i].name, rv, err.msg,
				 cases[i].msg);
		assert_contains(err.msg, "unpack layer sha256:");
		/* Nothing outside, nothing half-written inside. */
		assert_int_equal(count_dir(f->outside, ""), 1);
		read_text(victim, text, sizeof(text));
		assert_string_equal(text, "safe");
		assert_int_equal(lstat(victim, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(lgetxattr(f->outside, LAYER_OPAQUE_XATTR, text, sizeof(text)), -1);
		assert_int_equal(lstat("/shoal-pwned", &st), -1);
		assert_store_clean(f, 0, 0);
	}
}

/* A hardlink may name a symlink, but can never write through it. */
static void layer_hardlink_data_never_written(void **state)
{
	struct fix *f = *state;
	struct tent ents[] = {
	    {.type = 'l', .path = "s", .link = ""},
	    {.type = 'h', .path = "hl", .link = "s", .data = "pwned"},
	};
	char layers[PATH_MAX], tmp[PATH_MAX], blob[PATH_MAX], victim[PATH_MAX], text[16];
	struct shoal_err err;
	struct digest diff_id;

	if (!need_root())
		skip();
	PATHF(layers, "%s/layers", f->root);
	PATHF(tmp, "%s/tmp", f->root);
	PATHF(victim, "%s/victim", f->outside);
	write_file(victim, "safe", 4);
	PATHF(ents[0].link, "%s", victim);
	blob_of(f, ents, ARRAY_SIZE(ents), false, blob, &diff_id);
	layer_unpack(blob, &diff_id, layers, tmp, NULL, NULL, &err);
	read_text(victim, text, sizeof(text));
	assert_string_equal(text, "safe");
	assert_int_equal(count_dir(f->root, "tmp"), 0);
}

static void layer_rejects_corrupt_streams(void **state)
{
	struct fix *f = *state;
	char layers[PATH_MAX], tmp[PATH_MAX], blob[PATH_MAX];
	struct shoal_err err;
	struct digest diff_id;
	struct tlayer l;
	char junk[3000];

	if (!need_root())
		skip();
	PATHF(layers, "%s/layers", f->root);
	PATHF(tmp, "%s/tmp", f->root);
	PATHF(blob, "%s/blob", f->dir);

	/* Not a tar at all. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)('a' + i % 26);
	write_file(blob, junk, sizeof(junk));
	digest_buf(junk, sizeof(junk), &diff_id);
	assert_int_equal(layer_unpack(blob, &diff_id, layers, tmp, NULL, NULL, &err), SHOAL_EPROTO);
	assert_contains(err.msg, "not a tar archive");
	assert_store_clean(f, 0, 0);

	/* Truncated gzip. */
	tlayer_make(&l, base_layer, ARRAY_SIZE(base_layer), true);
	write_file(blob, l.blob.data, l.blob.len / 2);
	assert_int_equal(layer_unpack(blob, &l.diff_id, layers, tmp, NULL, NULL, &err),
			 SHOAL_EPROTO);
	assert_store_clean(f, 0, 0);

	/* Truncated tar: cut inside the entries. */
	write_file(blob, l.tar.data, 1536);
	assert_int_equal(layer_unpack(blob, &l.diff_id, layers, tmp, NULL, NULL, &err),
			 SHOAL_EPROTO);
	assert_store_clean(f, 0, 0);

	/* A corrupt header checksum. */
	memcpy(junk, l.tar.data, 1024);
	junk[150] ^= 0x11;
	write_file(blob, junk, 1024);
	assert_int_equal(layer_unpack(blob, &l.diff_id, layers, tmp, NULL, NULL, &err),
			 SHOAL_EPROTO);
	assert_store_clean(f, 0, 0);

	/* An empty stream is an empty layer. */
	write_file(blob, "", 0);
	digest_buf("", 0, &diff_id);
	assert_int_equal(layer_unpack(blob, &diff_id, layers, tmp, NULL, NULL, &err), 0);
	assert_int_equal(count_dir(f->root, "layers"), 1);
	tlayer_free(&l);
}

/* ---- image load ---- */

static const struct tent small_base[] = {
    {.type = 'd', .path = "etc"},
    {.type = 'f', .path = "etc/os-release", .data = "ID=test\n"},
    {.type = 'l', .path = "bin", .link = "usr/bin"},
};
static const struct tent la_ents[] = {{.type = 'f', .path = "a.txt", .data = "a"}};
static const struct tent lb_ents[] = {{.type = 'f', .path = "b.txt", .data = "b"}};
static const struct tent lc_ents[] = {{.type = 'f', .path = "c.txt", .data = "c"}};

/* Three layers and two docker images sharing the first: alpha = base+a,
 * beta = base+b. */
struct two {
	struct tlayer base, la, lb;
	struct tlayer *pa[2], *pb[2];
	struct timg a, b;
};

static void two_make(struct two *w, bool gzip, bool oci)
{
	tlayer_make(&w->base, small_base, ARRAY_SIZE(small_base), gzip);
	tlayer_make(&w->la, la_ents, ARRAY_SIZE(la_ents), gzip);
	tlayer_make(&w->lb, lb_ents, ARRAY_SIZE(lb_ents), gzip);
	w->pa[0] = &w->base;
	w->pa[1] = &w->la;
	w->pb[0] = &w->base;
	w->pb[1] = &w->lb;
	timg_make(&w->a, w->pa, 2, "alpha", oci);
	timg_make(&w->b, w->pb, 2, "beta", oci);
}

static void two_free(struct two *w)
{
	timg_free(&w->a);
	timg_free(&w->b);
	tlayer_free(&w->base);
	tlayer_free(&w->la);
	tlayer_free(&w->lb);
}

/* Load a docker save archive of alpha and beta, tagged @ta and @tb. */
static void load_two(struct fix *f, struct two *w, const char *ta, const char *tb)
{
	const struct timg *imgs[] = {&w->a, &w->b};
	const char *tags[] = {ta, tb};
	struct shoal_err err;
	struct tarch ar;

	docker_build(&ar, imgs, tags, 2);
	archive_to(f->archive, &ar.tl, false);
	if (image_load_file(f->s, f->archive, NULL, &err) != 0)
		fail_msg("load: %s", err.msg);
	tarch_free(&ar);
}

static void load_docker_save_archive(void **state)
{
	struct fix *f = *state;
	const struct timg *imgs[2];
	const char *tags[] = {"[\"alpha:1\"]", "[\"docker.io/library/beta\"]"};
	struct image_load_result res;
	const struct image *img;
	struct shoal_err err;
	struct tarch ar;
	struct two w;
	char **dirs;
	size_t n;

	if (!need_root())
		skip();
	two_make(&w, false, false);
	imgs[0] = &w.a;
	imgs[1] = &w.b;
	docker_build(&ar, imgs, tags, 2);
	archive_to(f->archive, &ar.tl, false);
	assert_int_equal(image_load_file(f->s, f->archive, &res, &err), 0);
	assert_int_equal(res.names.n, 2);
	assert_string_equal(res.names.items[0], "alpha:1");
	assert_string_equal(res.names.items[1], "beta:latest");
	assert_int_equal(res.n_ids, 2);
	assert_true(digest_equal(&res.ids[0], &w.a.config_d));
	assert_true(digest_equal(&res.ids[1], &w.b.config_d));
	image_load_result_free(&res);

	assert_int_equal(image_store_count(f->s), 2);
	assert_int_equal(image_store_lookup(f->s, "alpha:1", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.a.config_d));
	assert_int_equal(img->names.n, 1);
	assert_int_equal(img->manifest.media_type, OCI_MT_DOCKER_MANIFEST);
	assert_int_equal(img->manifest.n_layers, 2);
	/* Uncompressed docker layers keep their digest: the diff_id. */
	assert_int_equal(img->manifest.layers[0].media_type, OCI_MT_DOCKER_LAYER);
	assert_true(digest_equal(&img->manifest.layers[0].digest, &w.base.diff_id));
	assert_string_equal(img->config.cmd.items[0], "sh");
	assert_string_equal(img->config.labels[0].value, "alpha");
	assert_int_equal(img->size, w.a.config.len + w.base.tar.len + w.la.tar.len);

	assert_int_equal(image_store_lookup(f->s, "beta", &img, &err), 0);
	assert_int_equal(image_store_layer_dirs(f->s, img, &dirs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_file(dirs[0], "etc/os-release", "ID=test\n");
	assert_file(dirs[1], "b.txt", "b");
	image_store_dirs_free(dirs, n);
	/* Two manifests, two configs, three layers; nothing else. */
	assert_store_clean(f, 7, 3);
	tarch_free(&ar);
	two_free(&w);
}

static void load_oci_archive_with_index(void **state)
{
	struct fix *f = *state;
	static const struct tent ld_ents[] = {{.type = 'f', .path = "d.txt", .data = "d"}};
	struct tlayer base, lc, ld;
	struct tlayer *pc[] = {&base, &lc}, *pd[] = {&ld};
	struct timg c, d, darm;
	struct image_load_result res;
	const struct image *img;
	struct tlist tl = {0};
	struct buf nested, index;
	struct digest nested_d;
	struct shoal_err err;
	char path[128];

	if (!need_root())
		skip();
	tlayer_make(&base, small_base, ARRAY_SIZE(small_base), true);
	tlayer_make(&lc, lc_ents, ARRAY_SIZE(lc_ents), true);
	tlayer_make(&ld, ld_ents, ARRAY_SIZE(ld_ents), true);
	timg_make(&c, pc, 2, "c", true);
	timg_make(&d, pd, 1, "d", true);
	timg_make(&darm, pd, 1, "d-arm64", true);
	/* d is a multi-platform image: an index of arm64 and amd64 manifests,
	 * with only the amd64 one's blobs in the archive. */
	buf_init(&nested);
	buf_appendf(
	    &nested,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	    "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"arm64\",\"os\":"
	    "\"linux\"}},{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"amd64\",\"os\":"
	    "\"linux\"}}]}",
	    darm.manifest_d.str, darm.manifest.len, d.manifest_d.str, d.manifest.len);
	digest_buf(nested.data, nested.len, &nested_d);
	buf_init(&index);
	buf_appendf(
	    &index,
	    "{\"schemaVersion\":2,\"manifests\":["
	    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
	    "\"size\":%zu,\"annotations\":{\"io.containerd.image.name\":"
	    "\"registry.example.com/team/c:2\"}},"
	    "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"%s\","
	    "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"d:latest\"}},"
	    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
	    "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}",
	    c.manifest_d.str, c.manifest.len, nested_d.str, nested.len, c.manifest_d.str,
	    c.manifest.len);
	oci_add_blobs(&tl, &c);
	oci_add_blobs(&tl, &d);
	PATHF(path, "blobs/sha256/%s", digest_hex(&nested_d));
	tl_file(&tl, path, nested.data, nested.len);
	tl_add(&tl, 'd', "blobs");
	tl_file(&tl, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 0);
	tl_file(&tl, "index.json", index.data, index.len);
	archive_to(f->archive, &tl, true);

	assert_int_equal(image_load_file(f->s, f->archive, &res, &err), 0);
	assert_int_equal(res.names.n, 2);
	assert_string_equal(res.names.items[0], "registry.example.com/team/c:2");
	assert_string_equal(res.names.items[1], "d:latest");
	assert_int_equal(res.n_ids, 2);
	image_load_result_free(&res);
	assert_int_equal(image_store_count(f->s), 2);
	assert_int_equal(image_store_lookup(f->s, "registry.example.com/team/c:2", &img, &err), 0);
	assert_true(digest_equal(&img->manifest_digest, &c.manifest_d));
	assert_int_equal(img->names.n, 1); /* a bare ref.name ("v1") names nothing */
	assert_int_equal(img->manifest.layers[1].media_type, OCI_MT_OCI_LAYER_GZIP);
	assert_int_equal(image_store_lookup(f->s, "d", &img, &err), 0);
	assert_true(digest_equal(&img->id, &d.config_d));
	/* The index blob is not kept: the store keeps images, not indexes. */
	assert_store_clean(f, 7, 3);

	buf_free(&nested);
	buf_free(&index);
	free(tl.v);
	timg_free(&c);
	timg_free(&d);
	timg_free(&darm);
	tlayer_free(&base);
	tlayer_free(&lc);
	tlayer_free(&ld);
}

static void load_unpacks_shared_layer_once(void **state)
{
	struct fix *f = *state;
	struct tlayer lc;
	struct tlayer *pe[2];
	struct timg e;
	const struct timg *imgs[1];
	const char *tags[] = {"[\"echo:1\"]"};
	struct shoal_err err;
	struct tarch ar;
	struct stat s1, s2;
	char dir[PATH_MAX];
	struct two w;

	if (!need_root())
		skip();
	two_make(&w, false, false);
	load_two(f, &w, "[\"alpha:1\"]", NULL);
	layer_dir(f, &w.base, dir, sizeof(dir));
	assert_int_equal(stat(dir, &s1), 0);

	/* A second archive, another image on the same base layer. */
	tlayer_make(&lc, lc_ents, ARRAY_SIZE(lc_ents), false);
	pe[0] = &w.base;
	pe[1] = &lc;
	timg_make(&e, pe, 2, "echo", false);
	imgs[0] = &e;
	docker_build(&ar, imgs, tags, 1);
	archive_to(f->archive, &ar.tl, true);
	assert_int_equal(image_load_file(f->s, f->archive, NULL, &err), 0);
	assert_int_equal(stat(dir, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(s1.st_ctim.tv_nsec, s2.st_ctim.tv_nsec);
	assert_int_equal(image_store_count(f->s), 3);
	/* base, a, b, c. */
	assert_store_clean(f, 10, 4);

	/* Loading the same archive again changes nothing. */
	assert_int_equal(image_load_file(f->s, f->archive, NULL, &err), 0);
	assert_int_equal(image_store_count(f->s), 3);
	assert_int_equal(stat(dir, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_store_clean(f, 10, 4);
	tarch_free(&ar);
	timg_free(&e);
	tlayer_free(&lc);
	two_free(&w);
}

/* Load f->archive expecting @code with @msg in the message; the store must be
 * as clean as before (nothing registered, nothing left behind). */
static void expect_rejected(struct fix *f, int code, const char *msg)
{
	struct image_load_result res;
	struct shoal_err err;
	int rv = image_load_file(f->s, f->archive, &res, &err);

	if (rv != code || strstr(err.msg, msg) == NULL)
		fail_msg("got %d '%s', want %d '%s'", rv, rv ? err.msg : "", code, msg);
	assert_int_equal(res.names.n, 0);
	assert_int_equal(res.n_ids, 0);
	assert_int_equal(image_store_count(f->s), 0);
	assert_store_clean(f, 0, 0);
}

static void load_rejects_digest_mismatch(void **state)
{
	struct fix *f = *state;
	const char *tags[] = {"[\"x:1\"]"};
	const struct timg *imgs[1];
	const char *names[] = {"x:1"};
	struct tlayer wrong;
	struct tarch ar;
	struct tent *e;
	struct two w;
	char path[160];

	if (!need_root())
		skip();
	two_make(&w, true, true);
	imgs[0] = &w.a;

	/* OCI: a blob whose content is not what its name says. */
	oci_build(&ar, imgs, names, 1);
	PATHF(path, "blobs/sha256/%s", digest_hex(&w.a.config_d));
	e = tarch_find(&ar, path);
	e->data = w.b.config.data;
	e->len = w.b.config.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "digest mismatch");
	tarch_free(&ar);

	/* OCI: a layer whose content is not its diff_id. */
	tlayer_make(&wrong, lc_ents, ARRAY_SIZE(lc_ents), true);
	w.la.diff_id = wrong.diff_id;
	timg_config(&w.a, "alpha");
	timg_manifest(&w.a, true);
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, true);
	expect_rejected(f, SHOAL_EPROTO, "not the diff_id");
	tarch_free(&ar);
	tlayer_free(&wrong);
	two_free(&w);

	/* OCI: index.json gives the manifest a wrong size. */
	two_make(&w, true, true);
	imgs[0] = &w.a;
	oci_build(&ar, imgs, names, 1);
	buf_free(&ar.meta);
	buf_init(&ar.meta);
	buf_appendf(
	    &ar.meta,
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu}]}",
	    w.a.manifest_d.str, w.a.manifest.len + 1);
	e = tarch_find(&ar, "index.json");
	e->data = ar.meta.data;
	e->len = ar.meta.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "bytes, not");
	tarch_free(&ar);
	two_free(&w);

	/* docker save: "<hex>.json" whose content has another digest. */
	two_make(&w, false, false);
	imgs[0] = &w.a;
	docker_build(&ar, imgs, tags, 1);
	PATHF(path, "%s.json", digest_hex(&w.a.config_d));
	e = tarch_find(&ar, path);
	e->data = w.b.config.data;
	e->len = w.b.config.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "digest mismatch");
	tarch_free(&ar);

	/* docker save: a layer.tar that is not the layer the config names. */
	docker_build(&ar, imgs, tags, 1);
	PATHF(path, "%.60s/layer.tar", digest_hex(&w.la.diff_id));
	e = tarch_find(&ar, path);
	e->data = w.lb.tar.data;
	e->len = w.lb.tar.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "but the config says its diff_id is");
	tarch_free(&ar);
	two_free(&w);
}

static void load_rejects_corrupt_archives(void **state)
{
	struct fix *f = *state;
	const struct timg *imgs[1];
	const char *names[] = {"x:1"};
	struct tlist tl = {0};
	struct buf tar, gz;
	struct tarch ar;
	struct tlayer *pl[1];
	struct tlayer bad;
	struct timg t;
	struct two w;
	char junk[4096];

	if (!need_root())
		skip();
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	write_file(f->archive, junk, sizeof(junk));
	expect_rejected(f, SHOAL_EPROTO, "not an image archive");
	write_file(f->archive, "", 0);
	expect_rejected(f, SHOAL_EPROTO, "the archive is empty");
	tl_file(&tl, "hello.txt", "hello", 0);
	archive_to(f->archive, &tl, false);
	expect_rejected(f, SHOAL_EPROTO, "neither manifest.json");
	free(tl.v);

	two_make(&w, true, true);
	imgs[0] = &w.a;
	oci_build(&ar, imgs, names, 1);
	tar_build(ar.tl.v, ar.tl.n, &tar);
	/* Truncated gzip around the archive. */
	gzip_buf(&tar, &gz);
	write_file(f->archive, gz.data, gz.len / 2);
	expect_rejected(f, SHOAL_EPROTO, "");
	/* Truncated tar: cut inside the last entries. */
	write_file(f->archive, tar.data, tar.len - 1600);
	expect_rejected(f, SHOAL_EPROTO, "");
	/* A corrupt header in the middle. */
	{
		char *copy = malloc(tar.len);
		assert_non_null(copy);
		memcpy(copy, tar.data, tar.len);
		copy[1024 + 148] ^= 0x5a; /* the checksum of the second header */
		write_file(f->archive, copy, tar.len);
		free(copy);
	}
	expect_rejected(f, SHOAL_EPROTO, "corrupt");
	buf_free(&gz);
	buf_free(&tar);
	tarch_free(&ar);

	/* A layer blob that is a truncated gzip (its digest is right). */
	tlayer_make(&bad, base_layer, ARRAY_SIZE(base_layer), true);
	bad.blob.len /= 2;
	digest_buf(bad.blob.data, bad.blob.len, &bad.digest);
	pl[0] = &bad;
	timg_make(&t, pl, 1, "bad", true);
	imgs[0] = &t;
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "truncated gzip input");
	tarch_free(&ar);
	timg_free(&t);
	tlayer_free(&bad);

	/* A layer blob that is no tar at all. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	buf_init(&bad.tar);
	buf_init(&bad.blob);
	buf_append(&bad.tar, junk, 2048);
	buf_append(&bad.blob, junk, 2048);
	digest_buf(junk, 2048, &bad.diff_id);
	bad.digest = bad.diff_id;
	bad.gzip = false;
	timg_make(&t, pl, 1, "bad", true);
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "not a tar archive");
	tarch_free(&ar);
	timg_free(&t);
	tlayer_free(&bad);
	two_free(&w);
}

static void load_rejects_bad_documents(void **state)
{
	struct fix *f = *state;
	const struct timg *imgs[1];
	const char *names[] = {"x:1"};
	const char *tags[] = {"[\"x:1\"]"};
	struct tarch ar;
	struct tent *e;
	struct two w;
	struct buf text;
	char *p;

	if (!need_root())
		skip();
	two_make(&w, false, false);
	imgs[0] = &w.a;

	/* docker save: manifest.json that does not parse. */
	docker_build(&ar, imgs, tags, 1);
	e = tarch_find(&ar, "manifest.json");
	e->data = "[{\"Config\": ";
	e->len = 0;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "manifest.json is not valid JSON");
	tarch_free(&ar);

	/* docker save: a bad name. */
	tags[0] = "[\"UPPER:case\"]";
	docker_build(&ar, imgs, tags, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EINVAL, "invalid reference format");
	tarch_free(&ar);
	tags[0] = "[\"x:1\"]";

	/* docker save: more diff_ids than layers. */
	docker_build(&ar, imgs, tags, 1);
	buf_free(&ar.meta);
	buf_init(&ar.meta);
	buf_appendf(&ar.meta,
		    "[{\"Config\":\"%s.json\",\"RepoTags\":null,\"Layers\":[\"%.60s/layer.tar\"]}]",
		    digest_hex(&w.a.config_d), digest_hex(&w.base.diff_id));
	e = tarch_find(&ar, "manifest.json");
	e->data = ar.meta.data;
	e->len = ar.meta.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "lists 1 layers but the config");
	/* ... and a layer the archive does not have. */
	buf_free(&ar.meta);
	buf_init(&ar.meta);
	buf_appendf(&ar.meta,
		    "[{\"Config\":\"%s.json\",\"RepoTags\":null,\"Layers\":[\"%.60s/"
		    "layer.tar\",\"nope/layer.tar\"]}]",
		    digest_hex(&w.a.config_d), digest_hex(&w.base.diff_id));
	e->data = ar.meta.data;
	e->len = ar.meta.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_ENOTFOUND, "layer 'nope/layer.tar' is not in the archive");
	tarch_free(&ar);
	two_free(&w);

	/* OCI: a layer of an unknown media type. */
	two_make(&w, false, true);
	imgs[0] = &w.a;
	buf_init(&text);
	buf_appendf(&text, "%s", w.a.manifest.data);
	p = strstr(text.data, "application/vnd.oci.image.layer.v1.tar");
	assert_non_null(p);
	memcpy(p, "application/vnd.example.layer.v1.tar", 36);
	memmove(p + 36, p + 38, strlen(p + 38) + 1);
	timg_set_manifest(&w.a, text.data);
	buf_free(&text);
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "unsupported media type 'application/vnd.example.layer");
	tarch_free(&ar);

	/* OCI: a manifest of the wrong schema version. */
	timg_set_manifest(&w.a, "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}");
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "schemaVersion must be 2");
	tarch_free(&ar);

	/* OCI: a config that is not JSON. */
	buf_free(&w.a.config);
	buf_init(&w.a.config);
	buf_appendf(&w.a.config, "not json");
	digest_buf(w.a.config.data, w.a.config.len, &w.a.config_d);
	timg_manifest(&w.a, true);
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "image config is not valid JSON");
	tarch_free(&ar);

	/* OCI: a Windows image. */
	buf_free(&w.a.config);
	buf_init(&w.a.config);
	buf_appendf(
	    &w.a.config,
	    "{\"architecture\":\"amd64\",\"os\":\"windows\",\"rootfs\":{\"type\":\"layers\","
	    "\"diff_ids\":[\"%s\",\"%s\"]}}",
	    w.base.diff_id.str, w.la.diff_id.str);
	digest_buf(w.a.config.data, w.a.config.len, &w.a.config_d);
	timg_manifest(&w.a, true);
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EINVAL, "the image is for windows, not linux");
	tarch_free(&ar);

	/* OCI: index.json lists something that is not an image. */
	timg_config(&w.a, "alpha");
	timg_manifest(&w.a, true);
	oci_build(&ar, imgs, names, 1);
	p = strstr(ar.meta.data, "application/vnd.oci.image.manifest.v1+json");
	assert_non_null(p);
	memcpy(p, "application/vnd.oci.image.unknown.v1+json!", 42);
	tarch_find(&ar, "index.json")->len = ar.meta.len;
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "index.json");
	tarch_free(&ar);

	/* OCI: an unknown layout version. */
	oci_build(&ar, imgs, names, 1);
	tarch_find(&ar, "oci-layout")->data = "{\"imageLayoutVersion\":\"2.0.0\"}";
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "image layout version 2.0.0 is not supported");
	tarch_free(&ar);
	two_free(&w);
}

static void load_rejects_path_escapes(void **state)
{
	struct fix *f = *state;
	struct tent escape_ents[] = {
	    {.type = 'l', .path = "ln", .link = ""},
	    {.type = 'f', .path = "ln/pwned", .data = "x"},
	};
	static const struct tent dotdot_ents[] = {{.type = 'f', .path = "../x", .data = "x"}};
	const struct timg *imgs[1];
	const char *names[] = {"x:1"};
	const char *tags[] = {"[\"x:1\"]"};
	struct tlayer l;
	struct tlayer *pl[] = {&l};
	struct tarch ar;
	struct timg t;
	struct two w;

	if (!need_root())
		skip();
	PATHF(escape_ents[0].link, "%s", f->outside);
	imgs[0] = &t;

	/* A layer writing through a symlink. */
	tlayer_make(&l, escape_ents, ARRAY_SIZE(escape_ents), true);
	timg_make(&t, pl, 1, "escape", true);
	oci_build(&ar, imgs, names, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "goes through the symlink ln");
	assert_int_equal(count_dir(f->outside, ""), 0);
	tarch_free(&ar);
	timg_free(&t);
	tlayer_free(&l);

	/* A layer with "..". */
	tlayer_make(&l, dotdot_ents, ARRAY_SIZE(dotdot_ents), false);
	timg_make(&t, pl, 1, "dotdot", false);
	docker_build(&ar, imgs, tags, 1);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "contains '..'");
	tarch_free(&ar);
	timg_free(&t);
	tlayer_free(&l);

	/* The archive itself: an entry leaving it, a link leading out of it. */
	two_make(&w, false, false);
	imgs[0] = &w.a;
	docker_build(&ar, imgs, tags, 1);
	tl_file(&ar.tl, "../evil", "x", 0);
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "archive entry '../evil' is absolute, too long or leaves");
	tarch_free(&ar);
	docker_build(&ar, imgs, tags, 1);
	tl_link(&ar.tl, 'l', "evil/layer.tar", "../../etc/passwd");
	archive_to(f->archive, &ar.tl, false);
	expect_rejected(f, SHOAL_EPROTO, "links outside the archive");
	tarch_free(&ar);
	two_free(&w);
	assert_int_equal(count_dir(f->outside, ""), 0);
}

/* ---- the store: ls, rm, gc, tags, reopen ---- */

static void store_rm_keeps_shared_layers(void **state)
{
	struct fix *f = *state;
	struct image_remove_report rep;
	const struct image *img;
	struct shoal_err err;
	char dir[PATH_MAX], ref[32];
	struct stat st;
	struct two w;

	if (!need_root())
		skip();
	two_make(&w, true, false);
	load_two(f, &w, "[\"alpha:1\"]", "[\"beta:1\"]");
	assert_store_clean(f, 7, 3);
	assert_int_equal(image_store_count(f->s), 2);
	/* In id order. */
	assert_true(strcmp(image_store_at(f->s, 0)->id.str, image_store_at(f->s, 1)->id.str) < 0);

	assert_int_equal(image_store_remove(f->s, "alpha:1", false, &rep, &err), 0);
	assert_true(rep.deleted);
	assert_true(digest_equal(&rep.id, &w.a.config_d));
	assert_int_equal(rep.untagged.n, 1);
	assert_string_equal(rep.untagged.items[0], "alpha:1");
	image_remove_report_free(&rep);
	assert_int_equal(image_store_count(f->s), 1);
	/* beta's manifest, config and two layers; the shared base layer stays. */
	assert_store_clean(f, 4, 2);
	layer_dir(f, &w.base, dir, sizeof(dir));
	assert_int_equal(stat(dir, &st), 0);
	layer_dir(f, &w.la, dir, sizeof(dir));
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(image_store_lookup(f->s, "alpha:1", &img, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "No such image: alpha:1");
	assert_int_equal(image_store_remove(f->s, "nope", false, NULL, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "No such image: nope");

	PATHF(ref, "%.12s", digest_hex(&w.b.config_d));
	assert_int_equal(image_store_remove(f->s, ref, false, &rep, &err), 0);
	assert_true(rep.deleted);
	assert_int_equal(rep.untagged.n, 1);
	assert_string_equal(rep.untagged.items[0], "beta:1");
	image_remove_report_free(&rep);
	assert_int_equal(image_store_count(f->s), 0);
	assert_store_clean(f, 0, 0);
	two_free(&w);
}

static void store_tags_lookup_and_reopen(void **state)
{
	struct fix *f = *state;
	struct image_remove_report rep;
	const struct image *img;
	struct shoal_err err;
	char ref[80], path[PATH_MAX];
	struct two w;

	if (!need_root())
		skip();
	two_make(&w, false, false);
	load_two(f, &w, "[\"app:1\",\"app:latest\"]", NULL);
	assert_int_equal(image_store_lookup(f->s, "app", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.a.config_d));
	assert_int_equal(img->names.n, 2);
	assert_int_equal(image_store_lookup(f->s, "docker.io/library/app:1", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.a.config_d));
	PATHF(ref, "sha256:%.10s", digest_hex(&w.a.config_d));
	assert_int_equal(image_store_lookup(f->s, ref, &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.a.config_d));
	assert_int_equal(image_store_lookup(f->s, w.b.config_d.str, &img, &err), 0);
	assert_int_equal(img->names.n, 0);
	assert_int_equal(image_store_lookup(f->s, "app:2", &img, &err), SHOAL_ENOTFOUND);

	/* An id with two names is removed only when forced. */
	PATHF(ref, "%.12s", digest_hex(&w.a.config_d));
	assert_int_equal(image_store_remove(f->s, ref, false, NULL, &err), SHOAL_ECONFLICT);
	assert_contains(err.msg, "must be forced");
	assert_int_equal(image_store_count(f->s), 2);

	/* A name moves to the image loaded last; the old image stays. */
	load_two(f, &w, NULL, "[\"app:1\"]");
	assert_int_equal(image_store_lookup(f->s, "app:1", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.b.config_d));
	assert_int_equal(image_store_lookup(f->s, "app:latest", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.a.config_d));
	assert_int_equal(img->names.n, 1);

	/* Everything survives a reopen. */
	image_store_close(f->s);
	f->s = NULL;
	assert_int_equal(image_store_open(f->root, &f->s, &err), 0);
	assert_int_equal(image_store_count(f->s), 2);
	assert_int_equal(image_store_lookup(f->s, "app:1", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.b.config_d));
	assert_int_equal(image_store_lookup(f->s, "app", &img, &err), 0);
	assert_true(digest_equal(&img->id, &w.a.config_d));
	assert_store_clean(f, 7, 3);

	assert_int_equal(image_store_remove(f->s, ref, true, &rep, &err), 0);
	assert_true(rep.deleted);
	assert_int_equal(rep.untagged.n, 1);
	image_remove_report_free(&rep);
	assert_store_clean(f, 4, 2);

	/* A corrupt blob is found when the store opens. */
	image_store_close(f->s);
	f->s = NULL;
	PATHF(path, "%s/blobs/sha256/%s", f->root, digest_hex(&w.b.config_d));
	write_file(path, "{}", 2);
	assert_int_equal(image_store_open(f->root, &f->s, &err), SHOAL_EPROTO);
	assert_contains(err.msg, "is corrupt");
	assert_null(f->s);
	two_free(&w);
}

static void store_lookup_ambiguous_prefix(void **state)
{
	struct fix *f = *state;
	struct timg imgs[17];
	const struct timg *ptr[17];
	const char *tags[17] = {0};
	const struct image *img;
	struct shoal_err err;
	struct tarch ar;
	char label[16], prefix[2] = {0};

	/* Seventeen images without layers: two ids share a first hex digit. */
	for (size_t i = 0; i < 17; i++) {
		PATHF(label, "z%zu", i);
		timg_make(&imgs[i], NULL, 0, label, false);
		ptr[i] = &imgs[i];
	}
	docker_build(&ar, ptr, tags, 17);
	archive_to(f->archive, &ar.tl, false);
	assert_int_equal(image_load_file(f->s, f->archive, NULL, &err), 0);
	assert_int_equal(image_store_count(f->s), 17);
	for (size_t i = 1; i < 17 && prefix[0] == 0; i++)
		if (digest_hex(&image_store_at(f->s, i)->id)[0] ==
		    digest_hex(&image_store_at(f->s, i - 1)->id)[0])
			prefix[0] = digest_hex(&image_store_at(f->s, i)->id)[0];
	assert_true(prefix[0] != 0);
	assert_int_equal(image_store_lookup(f->s, prefix, &img, &err), SHOAL_ECONFLICT);
	assert_contains(err.msg, "is ambiguous");
	assert_int_equal(image_store_lookup(f->s, imgs[3].config_d.str, &img, &err), 0);
	assert_true(digest_equal(&img->id, &imgs[3].config_d));
	assert_int_equal(img->manifest.n_layers, 0);
	assert_store_clean(f, 34, 0);
	tarch_free(&ar);
	for (size_t i = 0; i < 17; i++)
		timg_free(&imgs[i]);
}

/* ---- a real image: busybox-static as a one-layer image ---- */

static void busybox_one_layer_image(void **state)
{
	struct fix *f = *state;
	struct tlist tl = {0};
	struct tlayer l;
	struct tlayer *pl[] = {&l};
	struct timg t;
	const struct timg *imgs[] = {&t};
	const char *tags[] = {"[\"shoal-demo:busybox\"]"};
	const struct image *img;
	struct shoal_err err;
	struct digest want, got;
	struct tarch ar;
	struct stat st;
	char *bin, **dirs, cmd[PATH_MAX + 64], out[64], path[PATH_MAX];
	size_t len, n;
	FILE *p;

	if (!need_root())
		skip();
	if (access("/bin/busybox", X_OK) != 0) {
		print_message("# skipped: /bin/busybox missing (apt-get install busybox-static)\n");
		skip();
	}
	assert_int_equal(fs_read_all("/bin/busybox", 16u << 20, &bin, &len, &err), 0);
	tl_add(&tl, 'd', "bin");
	tl_file(&tl, "bin/busybox", bin, len);
	tl.v[1].mode = 0755;
	tl_link(&tl, 'l', "bin/sh", "busybox");
	tl_add(&tl, 'd', "etc");
	tl_file(&tl, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0);
	tl_add(&tl, 'd', "tmp")->mode = 01777;
	tlayer_make(&l, tl.v, tl.n, false);
	timg_make(&t, pl, 1, "busybox", false);
	docker_build(&ar, imgs, tags, 1);
	archive_to(f->archive, &ar.tl, true);
	assert_int_equal(image_load_file(f->s, f->archive, NULL, &err), 0);
	assert_int_equal(image_store_lookup(f->s, "shoal-demo:busybox", &img, &err), 0);
	assert_string_equal(img->config.cmd.items[0], "sh");
	assert_int_equal(image_store_layer_dirs(f->s, img, &dirs, &n, &err), 0);
	assert_int_equal(n, 1);

	PATHF(path, "%s/bin/busybox", dirs[0]);
	assert_int_equal(digest_file("/bin/busybox", &want, NULL, &err), 0);
	assert_int_equal(digest_file(path, &got, NULL, &err), 0);
	assert_true(digest_equal(&want, &got));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	PATHF(path, "%s/tmp", dirs[0]);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01777);
	/* The unpacked binary runs, and so does its sh applet via the symlink. */
	PATHF(cmd, "'%s/bin/sh' -c 'echo $((6 * 7))'", dirs[0]);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, sizeof(out), p));
	assert_int_equal(pclose(p), 0);
	assert_string_equal(out, "42\n");
	image_store_dirs_free(dirs, n);
	assert_store_clean(f, 3, 1);
	tarch_free(&ar);
	timg_free(&t);
	tlayer_free(&l);
	free(tl.v);
	free(bin);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(digest_known_vectors),
	    cmocka_unit_test(digest_parse_accepts_only_sha256),
	    cmocka_unit_test(oci_parses_manifests),
	    cmocka_unit_test(oci_rejects_bad_manifests),
	    cmocka_unit_test(oci_index_selects_linux_amd64),
	    cmocka_unit_test(oci_config_fields),
	    cmocka_unit_test(oci_docker_save_manifest),
	    cmocka_unit_test(media_types_round_trip),
	    cmocka_unit_test(image_names_normalize),
	    T(load_stacks_layers_with_whiteouts),
	    T(layer_unpacks_once_per_digest),
	    T(layer_rejects_path_escapes),
	    T(layer_hardlink_data_never_written),
	    T(layer_rejects_corrupt_streams),
	    T(load_docker_save_archive),
	    T(load_oci_archive_with_index),
	    T(load_unpacks_shared_layer_once),
	    T(load_rejects_digest_mismatch),
	    T(load_rejects_corrupt_archives),
	    T(load_rejects_bad_documents),
	    T(load_rejects_path_escapes),
	    T(store_rm_keeps_shared_layers),
	    T(store_tags_lookup_and_reopen),
	    T(store_lookup_ambiguous_prefix),
	    T(busybox_one_layer_image),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
