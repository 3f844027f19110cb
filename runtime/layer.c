/* Layer tarballs unpacked into directories, whiteouts in overlayfs form, once per digest. */
#include "runtime/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/fsutil.h"

#define READ_BLOCK (64 * 1024)

/* libarchive's own guards come on top of ours: ".." and writing through a
 * symlink are refused twice. Absolute paths are refused by clean_path() before
 * an entry is re-rooted below the destination (libarchive resolves paths
 * against the process's working directory, which a daemon must not change,
 * so every entry reaches it as an absolute path under the destination; that
 * is why ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS cannot be set here). Parent
 * directories are made by open_dir(), never by libarchive. */
#define EXTRACT_FLAGS                                                          \
	(ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME | \
	 ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_NODOTDOT |             \
	 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_NO_AUTODIR)

/* The uncompressed stream, pulled by the tar reader from the outer archive
 * (raw format behind the gzip and zstd filters), hashed and counted on the way. */
struct stream {
	struct archive *outer;
	bool eof;
	struct digest_ctx dc;
	uint64_t bytes;
	int code; /* first failure, 0 if none */
	char msg[256];
	unsigned char buf[READ_BLOCK];
};

struct extract {
	struct stream *s;
	struct archive *tar;
	struct archive *disk;
	int rootfd;
	char root[PATH_MAX]; /* real path of the destination */
	size_t root_len;
	char shown[256]; /* the current entry's name, for messages */
	struct layer_stats st;
	struct shoal_err *err;
};

static la_ssize_t stream_read(struct archive *a, void *arg, const void **out)
{
	struct stream *s = arg;
	la_ssize_t n;

	(void)a;
	if (s->code != 0)
		return ARCHIVE_FATAL;
	if (s->eof)
		return 0;
	n = archive_read_data(s->outer, s->buf, sizeof(s->buf));
	if (n < 0) {
		const char *m = archive_error_string(s->outer);
		s->code = SHOAL_EPROTO;
		snprintf(s->msg, sizeof(s->msg), "the layer cannot be read: %s",
			 m != NULL ? m : "read error");
		return ARCHIVE_FATAL;
	}
	if (n == 0) {
		s->eof = true;
		return 0;
	}
	if ((uint64_t)n > LAYER_MAX_BYTES - s->bytes) {
		s->code = SHOAL_ETOOBIG;
		snprintf(s->msg, sizeof(s->msg), "the layer is larger than %llu bytes uncompressed",
			 (unsigned long long)LAYER_MAX_BYTES);
		return ARCHIVE_FATAL;
	}
	s->bytes += (uint64_t)n;
	digest_update(&s->dc, s->buf, (size_t)n);
	*out = s->buf;
	return n;
}

/* An error from libarchive @a (or from the stream beneath it, which explains
 * it better). */
static int fail_archive(struct extract *x, struct archive *a)
{
	const char *m;

	if (x->s->code != 0)
		return shoal_errf(x->err, x->s->code, "layer entry '%s': %s", x->shown, x->s->msg);
	m = archive_error_string(a);
	return shoal_errf(x->err, SHOAL_EPROTO, "layer entry '%s': %s", x->shown,
			  m != NULL ? m : "unknown error");
}

/* Clean @raw into @out (@len bytes): components joined by '/', without empty
 * or "." ones. Absolute paths and ".." are refused; @what names @raw. */
static int clean_path(struct extract *x, const char *raw, const char *what, char *out, size_t len)
{
	const char *p = raw;
	size_t o = 0;

	if (raw[0] == '/')
		return shoal_errf(x->err, SHOAL_EPROTO,
				  "%s '%.200s' is an absolute path: refused, layers hold relative "
				  "paths only",
				  what, raw);
	while (*p != '\0') {
		size_t k = strcspn(p, "/");
		if (k == 2 && p[0] == '.' && p[1] == '.')
			return shoal_errf(x->err, SHOAL_EPROTO,
					  "%s '%.200s' contains '..': refused, it could leave the "
					  "layer",
					  what, raw);
		if (k > 0 && !(k == 1 && p[0] == '.')) {
			if (o + k + 2 > len)
				return shoal_errf(x->err, SHOAL_EPROTO,
						  "%s '%.200s...' is too long", what, raw);
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, k);
			o += k;
		}
		p += k;
		if (*p == '/')
			p++;
	}
	out[o] = '\0';
	return 0;
}

/* Split clean @rel into its parent (the first *@parent_len bytes) and its last
 * component (returned). */
static const char *split(const char *rel, size_t *parent_len)
{
	const char *slash = strrchr(rel, '/');

	*parent_len = slash == NULL ? 0 : (size_t)(slash - rel);
	return slash == NULL ? rel : slash + 1;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static int make_opaque(struct extract *x, int fd, const char *what)
{
	if (fsetxattr(fd, LAYER_OPAQUE_XATTR, "y", 1, 0) != 0)
		return shoal_errf(
		    x->err, SHOAL_EIO,
		    "layer entry '%s': mark %s opaque: %s (unpacking layers needs root "
		    "and a filesystem with trusted.* extended attributes)",
		    x->shown, what, strerror(errno));
	return 0;
}

/* mkdir @name in @dirfd (0755 whatever the umask) and open it. Returns an fd
 * or a negative error code. */
static int make_dir(struct extract *x, int dirfd, const char *name)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
		return shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': create directory %s: %s",
				  x->shown, name, strerror(errno));
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': open directory %s: %s",
				  x->shown, name, strerror(errno));
	if (fchmod(fd, 0755) != 0) {
		int e = errno;
		close(fd);
		return shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': chmod %s: %s", x->shown,
				  name, strerror(e));
	}
	return fd;
}

/* Replace the whiteout @name in @dirfd by an opaque directory: an entry of the
 * layer re-creates, as a directory, something the same layer deleted below. */
static int whiteout_to_dir(struct extract *x, int dirfd, const char *name)
{
	int fd, rv;

	if (unlinkat(dirfd, name, 0) != 0)
		return shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': remove whiteout %s: %s",
				  x->shown, name, strerror(errno));
	fd = make_dir(x, dirfd, name);
	if (fd < 0)
		return fd;
	rv = make_opaque(x, fd, name);
	if (rv != 0) {
		close(fd);
		return rv;
	}
	return fd;
}

/* Open the next directory @name below @dirfd without following a symlink.
 * With @create a missing directory is made and a whiteout in the way becomes
 * an opaque directory. @path is the path so far, for messages. Returns an fd
 * or a negative error code. */
static int step(struct extract *x, int dirfd, const char *name, const char *path, bool create)
{
	struct stat st;
	int fd, e;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	e = errno;
	if (e == ENOENT && create)
		return make_dir(x, dirfd, name);
	if (e == ENOENT)
		return shoal_errf(x->err, SHOAL_EPROTO, "layer entry '%s': %s does not exist",
				  x->shown, path);
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': open %s: %s", x->shown,
				  path, strerror(e));
	if (S_ISLNK(st.st_mode))
		return shoal_errf(x->err, SHOAL_EPROTO,
				  "layer entry '%s' goes through the symlink %s: refused, it could "
				  "write outside the layer",
				  x->shown, path);
	if (create && is_whiteout(&st))
		return whiteout_to_dir(x, dirfd, name);
	if (!S_ISDIR(st.st_mode))
		return shoal_errf(x->err, SHOAL_EPROTO, "layer entry '%s': %s is not a directory",
				  x->shown, path);
	return shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': open %s: %s", x->shown, path,
			  strerror(e));
}

/* Open the directory made of the first @n bytes of clean @rel, beneath the
 * root, one component at a time. Into *@out: an fd the caller closes. */
static int open_dir(struct extract *x, const char *rel, size_t n, bool create, int *out)
{
	char path[PATH_MAX];
	int fd = openat(x->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t i = 0;

	PRE(n < sizeof(path));
	if (fd < 0)
		return shoal_errf(x->err, SHOAL_EIO, "open %s: %s", x->root, strerror(errno));
	while (i < n) {
		size_t k = 0;
		int nfd;

		while (i + k < n && rel[i + k] != '/')
			k++;
		if (k > NAME_MAX) {
			close(fd);
			return shoal_errf(x->err, SHOAL_EPROTO,
					  "layer entry '%s': a name is longer than %d bytes",
					  x->shown, NAME_MAX);
		}
		memcpy(path, rel, i + k);
		path[i + k] = '\0';
		nfd = step(x, fd, path + i, path, create);
		close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
		i += k + 1;
	}
	*out = fd;
	return 0;
}

static int apply_whiteout(struct extract *x, const char *rel, const char *base, size_t parent_len)
{
	const char *name = base + strlen(LAYER_WHITEOUT_PREFIX);
	struct stat st;
	int pfd, rv = 0;

	if (strcmp(base, LAYER_OPAQUE_MARKER) == 0) {
		rv = open_dir(x, rel, parent_len, true, &pfd);
		if (rv != 0)
			return rv;
		rv = make_opaque(x, pfd, parent_len > 0 ? "its directory" : "the layer's root");
		close(pfd);
		x->st.opaques += rv == 0;
		return rv;
	}
	if (strncmp(base, ".wh..wh.", 8) == 0)
		return 0; /* AUFS bookkeeping, meaningless here */
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return shoal_errf(x->err, SHOAL_EPROTO, "layer entry '%s' is not a valid whiteout",
				  x->shown);
	rv = open_dir(x, rel, parent_len, true, &pfd);
	if (rv != 0)
		return rv;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* The same layer has NAME: it stays; a directory hides the lower ones. */
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			rv = fd < 0 ? shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': open %s: %s",
						 x->shown, name, strerror(errno))
				    : make_opaque(x, fd, name);
			if (fd >= 0)
				close(fd);
		}
	} else if (errno != ENOENT) {
		rv = shoal_errf(x->err, SHOAL_EIO, "layer entry '%s': stat %s: %s", x->shown, name,
				strerror(errno));
	} else if (mknodat(pfd, name, S_IFCHR, makedev(0, 0)) != 0) {
		rv = shoal_errf(x->err, SHOAL_EIO,
				"layer entry '%s': create the whiteout device %s: %s (unpacking "
				"layers needs root)",
				x->shown, name, strerror(errno));
	}
	close(pfd);
	x->st.whiteouts += rv == 0;
	return rv;
}

/* Drop trusted.* extended attributes: a layer must not forge overlayfs's own
 * metadata (opaque, redirect, origin, metacopy). */
static int filter_xattrs(struct extract *x, struct archive_entry *e)
{
	struct {
		char *name;
		void *value;
		size_t size;
	} kept[LAYER_MAX_XATTRS];
	const char *name;
	const void *value;
	size_t size, k = 0;
	bool drop = false;
	int n = archive_entry_xattr_reset(e), rv = 0;

	if (n > (int)LAYER_MAX_XATTRS)
		return shoal_errf(x->err, SHOAL_EPROTO,
				  "layer entry '%s' has %d extended attributes, more than %u",
				  x->shown, n, LAYER_MAX_XATTRS);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
		if (strncmp(name, "trusted.", 8) == 0)
			drop = true;
	if (!drop)
		return 0;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (strncmp(name, "trusted.", 8) == 0)
			continue;
		kept[k].name = strdup(name);
		kept[k].value = malloc(size > 0 ? size : 1);
		kept[k].size = size;
		if (kept[k].name == NULL || kept[k].value == NULL) {
			free(kept[k].name);
			free(kept[k].value);
			rv = shoal_errf(x->err, SHOAL_ENOMEM, "out of memory");
			break;
		}
		memcpy(kept[k].value, value, size);
		k++;
	}
	archive_entry_xattr_clear(e);
	for (size_t i = 0; i < k; i++) {
		if (rv == 0)
			archive_entry_xattr_add_entry(e, kept[i].name, kept[i].value, kept[i].size);
		free(kept[i].name);
		free(kept[i].value);
	}
	return rv;
}

/* Check a hardlink's target and re-root it. */
static int prepare_hardlink(struct extract *x, struct archive_entry *e, const char *target)
{
	char rel[PATH_MAX], abs[PATH_MAX];
	const char *base;
	size_t parent_len;
	struct stat st;
	int pfd, rv;

	rv = clean_path(x, target, "hardlink target", rel, sizeof(rel) - x->root_len - 1);
	if (rv != 0)
		return rv;
	if (rel[0] == '\0')
		return shoal_errf(x->err, SHOAL_EPROTO,
				  "layer entry '%s' is a hardlink to the layer's root", x->shown);
	base = split(rel, &parent_len);
	rv = open_dir(x, rel, parent_len, false, &pfd);
	if (rv != 0)
		return rv;
	rv = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW);
	close(pfd);
	if (rv != 0)
		return shoal_errf(x->err, SHOAL_EPROTO,
				  "layer entry '%s' is a hardlink to '%.200s', which is not in the "
				  "layer",
				  x->shown, target);
	if (S_ISDIR(st.st_mode))
		return shoal_errf(x->err, SHOAL_EPROTO,
				  "layer entry '%s' is a hardlink to the directory '%.200s'",
				  x->shown, target);
	if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", x->root, rel) >= sizeof(abs))
		return shoal_errf(x->err, SHOAL_EPROTO, "layer entry '%s': path too long",
				  x->shown);
	archive_entry_copy_hardlink(e, abs);
	/* A link never carries data, so it cannot be written through. */
	archive_entry_set_size(e, 0);
	return 0;
}

static int copy_data(struct extract *x)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(x->tar, &buf, &size, &off);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return fail_archive(x, x->tar);
		if (archive_write_data_block(x->disk, buf, size, off) != ARCHIVE_OK)
			return fail_archive(x, x->disk);
	}
}

static int apply_entry(struct extract *x, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	char rel[PATH_MAX], abs[PATH_MAX];
	const char *base, *hard;
	size_t parent_len;
	struct stat st;
	bool is_dir;
	int pfd, rv;

	if (raw == NULL || raw[0] == '\0')
		return shoal_errf(x->err, SHOAL_EPROTO, "the layer has an entry without a name");
	snprintf(x->shown, sizeof(x->shown), "%s", raw);
	rv = clean_path(x, raw, "layer entry", rel, sizeof(rel) - x->root_len - 1);
	if (rv != 0)
		return rv;
	base = split(rel, &parent_len);
	if (strncmp(base, LAYER_WHITEOUT_PREFIX, strlen(LAYER_WHITEOUT_PREFIX)) == 0)
		return apply_whiteout(x, rel, base, parent_len);

	hard = archive_entry_hardlink(e);
	is_dir = hard == NULL && archive_entry_filetype(e) == AE_IFDIR;
	if (rel[0] == '\0') {
		if (!is_dir)
			return shoal_errf(x->err, SHOAL_EPROTO,
					  "layer entry '%s' names the layer's root but is not a "
					  "directory",
					  x->shown);
		snprintf(abs, sizeof(abs), "%s", x->root);
	} else {
		rv = open_dir(x, rel, parent_len, true, &pfd);
		if (rv != 0)
			return rv;
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode) && !is_dir) {
				rv = shoal_errf(x->err, SHOAL_EPROTO,
						"layer entry '%s' would replace a directory of the "
						"same layer",
						x->shown);
			} else if (is_whiteout(&st) && is_dir) {
				int fd = whiteout_to_dir(x, pfd, base);
				rv = fd < 0 ? fd : close(fd);
			} else if (S_ISLNK(st.st_mode) && unlinkat(pfd, base, 0) != 0) {
				/* A later entry replaces a symlink; nothing is ever
				 * written, chmod'ed or chown'ed through one. */
				rv = shoal_errf(x->err, SHOAL_EIO,
						"layer entry '%s': remove the symlink it replaces: "
						"%s",
						x->shown, strerror(errno));
			}
		}
		close(pfd);
		if (rv != 0)
			return rv;
		if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", x->root, rel) >= sizeof(abs))
			return shoal_errf(x->err, SHOAL_EPROTO, "layer entry '%s': path too long",
					  x->shown);
	}
	if (hard != NULL) {
		rv = prepare_hardlink(x, e, hard);
		if (rv != 0)
			return rv;
	}
	rv = filter_xattrs(x, e);
	if (rv != 0)
		return rv;
	archive_entry_copy_pathname(e, abs);
	if (archive_write_header(x->disk, e) != ARCHIVE_OK)
		return fail_archive(x, x->disk);
	if (hard == NULL && archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
		rv = copy_data(x);
		if (rv != 0)
			return rv;
	}
	if (archive_write_finish_entry(x->disk) != ARCHIVE_OK)
		return fail_archive(x, x->disk);
	return 0;
}

static int extract_entries(struct extract *x)
{
	struct archive_entry *e;
	int r, rv;

	r = archive_read_open(x->tar, x->s, NULL, stream_read, NULL);
	for (;;) {
		if (r == ARCHIVE_OK)
			r = archive_read_next_header(x->tar, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			const char *m = archive_error_string(x->tar);
			if (x->s->code != 0)
				return shoal_errf(x->err, x->s->code, "%s", x->s->msg);
			if (x->st.entries == 0)
				return shoal_errf(x->err, SHOAL_EPROTO,
						  "the layer is not a tar archive (or uses an "
						  "unsupported compression): %s",
						  m != NULL ? m : "unknown error");
			return shoal_errf(x->err, SHOAL_EPROTO,
					  "the layer is corrupt after entry '%s': %s", x->shown,
					  m != NULL ? m : "unknown error");
		}
		if (++x->st.entries > LAYER_MAX_ENTRIES)
			return shoal_errf(x->err, SHOAL_ETOOBIG,
					  "the layer has more than %u entries", LAYER_MAX_ENTRIES);
		rv = apply_entry(x, e);
		if (rv != 0)
			return rv;
		r = ARCHIVE_OK;
	}
	snprintf(x->shown, sizeof(x->shown), "(end)");
	/* Directory modes and times are fixed up now. */
	if (archive_write_close(x->disk) != ARCHIVE_OK)
		return fail_archive(x, x->disk);
	/* The digest covers every byte, padding after the end-of-archive too. */
	for (;;) {
		const void *p;
		la_ssize_t n = stream_read(NULL, x->s, &p);
		if (n < 0)
			return fail_archive(x, x->tar);
		if (n == 0)
			return 0;
	}
}

/* Extract the stream behind the opened @outer into @dest. */
static int extract(struct archive *outer, const char *dest, struct digest *diff_id,
		   struct layer_stats *stats, struct shoal_err *err)
{
	struct archive_entry *e;
	struct extract *x;
	int r, rv;

	x = calloc(1, sizeof(*x));
	if (x == NULL || (x->s = calloc(1, sizeof(*x->s))) == NULL) {
		free(x);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	x->err = err;
	x->rootfd = -1;
	x->s->outer = outer;
	digest_init(&x->s->dc);
	if (realpath(dest, x->root) == NULL) {
		rv = shoal_errf(err, SHOAL_EIO, "resolve %s: %s", dest, strerror(errno));
		goto out;
	}
	x->root_len = strlen(x->root);
	x->rootfd = open(x->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (x->rootfd < 0) {
		rv = shoal_errf(err, SHOAL_EIO, "open %s: %s", x->root, strerror(errno));
		goto out;
	}
	r = archive_read_next_header(outer, &e);
	if (r == ARCHIVE_EOF) {
		x->s->eof = true;
	} else if (r != ARCHIVE_OK) {
		rv = shoal_errf(err, SHOAL_EPROTO, "the layer cannot be read: %s",
				archive_error_string(outer));
		goto out;
	}
	x->tar = archive_read_new();
	x->disk = archive_write_disk_new();
	if (x->tar == NULL || x->disk == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	archive_read_support_format_tar(x->tar);
	archive_read_support_format_empty(x->tar);
	archive_write_disk_set_options(x->disk, EXTRACT_FLAGS);
	rv = extract_entries(x);
	if (rv == 0) {
		digest_final(&x->s->dc, diff_id);
		x->st.bytes = x->s->bytes;
		if (stats != NULL)
			*stats = x->st;
	}
out:
	if (x->disk != NULL)
		archive_write_free(x->disk);
	if (x->tar != NULL)
		archive_read_free(x->tar);
	if (x->rootfd >= 0)
		close(x->rootfd);
	free(x->s);
	free(x);
	return rv;
}

static struct archive *outer_new(struct shoal_err *err)
{
	struct archive *a = archive_read_new();

	if (a == NULL) {
		shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		return NULL;
	}
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    archive_read_support_format_raw(a) != ARCHIVE_OK ||
	    archive_read_support_format_empty(a) != ARCHIVE_OK) {
		shoal_errf(err, SHOAL_EIO, "libarchive cannot read gzip or zstd: %s",
			   archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int layer_extract_fd(int fd, const char *dest, struct digest *diff_id, struct layer_stats *stats,
		     struct shoal_err *err)
{
	struct archive *a = outer_new(err);
	int rv;

	if (a == NULL)
		return SHOAL_ENOMEM;
	if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK)
		rv = shoal_errf(err, SHOAL_EPROTO, "the layer cannot be read: %s",
				archive_error_string(a));
	else
		rv = extract(a, dest, diff_id, stats, err);
	archive_read_free(a);
	return rv;
}

int layer_extract_mem(const void *data, size_t len, const char *dest, struct digest *diff_id,
		      struct layer_stats *stats, struct shoal_err *err)
{
	struct archive *a = outer_new(err);
	int rv;

	if (a == NULL)
		return SHOAL_ENOMEM;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
		rv = shoal_errf(err, SHOAL_EPROTO, "the layer cannot be read: %s",
				archive_error_string(a));
	else
		rv = extract(a, dest, diff_id, stats, err);
	archive_read_free(a);
	return rv;
}

int layer_path(const char *layers_dir, const struct digest *diff_id, char *out, size_t len,
	       struct shoal_err *err)
{
	if ((size_t)snprintf(out, len, "%s/%s", layers_dir, digest_hex(diff_id)) >= len)
		return shoal_errf(err, SHOAL_EINVAL, "path too long: %s", layers_dir);
	return 0;
}

/* Flush the unpacked tree before it is renamed into place, so a crash never
 * leaves a layer that looks complete but is not. */
static int sync_tree(const char *dir, struct shoal_err *err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || syncfs(fd) != 0)
		return shoal_errf(err, SHOAL_EIO, "sync %s: %s", dir, strerror(errno));
	return 0;
}

int layer_unpack(const char *blob_path, const struct digest *diff_id, const char *layers_dir,
		 const char *tmp_dir, bool *created, struct layer_stats *stats,
		 struct shoal_err *err)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	struct layer_stats st = {0};
	struct digest got;
	struct stat sb;
	int fd, rv;

	if (created != NULL)
		*created = false;
	if (stats != NULL)
		*stats = st;
	rv = layer_path(layers_dir, diff_id, final, sizeof(final), err);
	if (rv != 0)
		return rv;
	if (lstat(final, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/layer-%.12s-XXXXXX", tmp_dir,
			     digest_hex(diff_id)) >= sizeof(tmp))
		return shoal_errf(err, SHOAL_EINVAL, "path too long: %s", tmp_dir);
	if (mkdtemp(tmp) == NULL)
		return shoal_errf(err, SHOAL_EIO, "create a directory in %s: %s", tmp_dir,
				  strerror(errno));
	if (chmod(tmp, 0755) != 0) {
		rv = shoal_errf(err, SHOAL_EIO, "chmod %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = open(blob_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = shoal_errf(err, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO, "open %s: %s",
				blob_path, strerror(errno));
		goto fail;
	}
	rv = layer_extract_fd(fd, tmp, &got, &st, err);
	close(fd);
	if (rv == 0 && !digest_equal(&got, diff_id))
		rv = shoal_errf(err, SHOAL_EPROTO,
				"its content has digest %s, not the diff_id the image config "
				"names",
				got.str);
	if (rv == 0)
		rv = sync_tree(tmp, err);
	if (rv != 0)
		goto fail;
	if (rename(tmp, final) != 0) {
		/* Someone else unpacked it meanwhile: theirs is as good. */
		if ((errno == EEXIST || errno == ENOTEMPTY) && lstat(final, &sb) == 0 &&
		    S_ISDIR(sb.st_mode)) {
			fs_rm_rf(tmp, NULL);
			return 0;
		}
		rv = shoal_errf(err, SHOAL_EIO, "rename %s to %s: %s", tmp, final, strerror(errno));
		goto fail;
	}
	if (created != NULL)
		*created = true;
	if (stats != NULL)
		*stats = st;
	return 0;
fail:
	shoal_err_wrap(err, "unpack layer %s", diff_id->str);
	fs_rm_rf(tmp, NULL);
	return rv;
}
