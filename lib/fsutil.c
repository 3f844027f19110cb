/* File-system helpers: directories, atomic writes, bounded reads, locks. */
#include "lib/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void cleanup_freep(void *p)
{
	free(*(void **)p);
}

void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static int fsync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : (size_t)(slash - path);
	int fd, rv;

	if (slash == NULL)
		memcpy(dir, ".", 2);
	else if (n == 0)
		memcpy(dir, "/", 2);
	else if (n < sizeof(dir)) {
		memcpy(dir, path, n);
		dir[n] = '\0';
	} else
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

int fs_mkdir_p(const char *path, mode_t mode, struct shoal_err *err)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return shoal_errf(err, SHOAL_EINVAL, "path too long or empty: '%s'", path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return shoal_errf(err, SHOAL_EIO, "create directory %s: %s", tmp,
					  strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) == 0) {
		/* Make the new entry durable in its parent. */
		if (fsync_dir_of(tmp) != 0)
			return shoal_errf(err, SHOAL_EIO, "fsync directory of %s: %s", tmp,
					  strerror(errno));
	} else if (errno != EEXIST) {
		return shoal_errf(err, SHOAL_EIO, "create directory %s: %s", tmp, strerror(errno));
	}
	if (chmod(tmp, mode) != 0)
		return shoal_errf(err, SHOAL_EIO, "chmod %s: %s", tmp, strerror(errno));
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		    struct shoal_err *err)
{
	char tmp[4200];
	const char *p = data;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return shoal_errf(err, SHOAL_EINVAL, "path too long: %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return shoal_errf(err, SHOAL_EIO, "create %s: %s", tmp, strerror(errno));
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto err_write;
		p += w;
		len -= (size_t)w;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto err_write;
	if (close(fd) != 0) {
		fd = -1;
		goto err_write;
	}
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return shoal_errf(err, SHOAL_EIO, "rename %s: %s", path, strerror(e));
	}
	if (fsync_dir_of(path) != 0)
		return shoal_errf(err, SHOAL_EIO, "fsync directory of %s: %s", path,
				  strerror(errno));
	return 0;

err_write : {
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return shoal_errf(err, SHOAL_EIO, "write %s: %s", path, strerror(e));
}
}

int fs_read_all(const char *path, size_t max, char **out, size_t *len, struct shoal_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *data = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return shoal_errf(err, SHOAL_ENOTFOUND, "%s does not exist", path);
		return shoal_errf(err, SHOAL_EIO, "open %s: %s", path, strerror(errno));
	}
	for (;;) {
		if (cap - n < 4096) {
			if (cap > max + 1) {
				free(data);
				return shoal_errf(err, SHOAL_ETOOBIG, "%s is larger than %zu bytes",
						  path, max);
			}
			cap = cap ? cap * 2 : 8192;
			char *p = realloc(data, cap + 1);
			if (p == NULL) {
				free(data);
				return shoal_errf(err, SHOAL_ENOMEM, "out of memory reading %s",
						  path);
			}
			data = p;
		}
		ssize_t r = read(fd, data + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(data);
			return shoal_errf(err, SHOAL_EIO, "read %s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(data);
		return shoal_errf(err, SHOAL_ETOOBIG, "%s is larger than %zu bytes", path, max);
	}
	data[n] = '\0';
	*out = data;
	if (len != NULL)
		*len = n;
	return 0;
}

int fs_lock(const char *path, int *fd, struct shoal_err *err)
{
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (f < 0)
		return shoal_errf(err, SHOAL_EIO, "open %s: %s", path, strerror(errno));
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(f);
		if (e == EWOULDBLOCK)
			return shoal_errf(err, SHOAL_EBUSY, "%s is locked by another process",
					  path);
		return shoal_errf(err, SHOAL_EIO, "lock %s: %s", path, strerror(e));
	}
	*fd = f;
	return 0;
}

int fs_unlink_durable(const char *path, struct shoal_err *err)
{
	if (unlink(path) != 0 && errno != ENOENT)
		return shoal_errf(err, SHOAL_EIO, "remove %s: %s", path, strerror(errno));
	if (fsync_dir_of(path) != 0 && errno != ENOENT)
		return shoal_errf(err, SHOAL_EIO, "fsync directory of %s: %s", path,
				  strerror(errno));
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int fs_rm_rf(const char *path, struct shoal_err *err)
{
	if (!fs_exists(path))
		return 0;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return shoal_errf(err, SHOAL_EIO, "remove %s: %s", path, strerror(errno));
	return 0;
}

int fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}
