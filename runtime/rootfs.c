/* A container's root filesystem: an overlayfs over its image's unpacked layers. */
#include "runtime/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"

int rootfs_is_mounted(const char *path)
{
	struct stat st, parent;
	char up[4096];

	if (stat(path, &st) != 0)
		return 0;
	if (snprintf(up, sizeof(up), "%s/..", path) >= (int)sizeof(up) || stat(up, &parent) != 0)
		return 0;
	/* A mount point sits on another device than its parent (overlayfs has its own). */
	return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino;
}

/* The kernel's reason for a failed fs context, read back from the fd's log. */
static void fs_log(int fd, char *out, size_t len)
{
	ssize_t n;

	out[0] = '\0';
	n = read(fd, out, len - 1);
	if (n > 0)
		out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

int rootfs_mount(const char *const *layers, size_t n_layers, const char *upper, const char *work,
		 const char *target, struct shoal_err *err)
{
	_cleanup_close_ int fsfd = -1;
	_cleanup_close_ int mfd = -1;
	char why[256];
	size_t i;
	int rv;

	if (n_layers == 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "an image without layers has no root filesystem");
	rv = fs_mkdir_p(upper, 0755, err);
	if (rv == 0)
		rv = fs_mkdir_p(work, 0700, err);
	if (rv == 0)
		rv = fs_mkdir_p(target, 0755, err);
	if (rv != 0)
		return rv;
	if (rootfs_is_mounted(target))
		return 0;

	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return shoal_errf(err, SHOAL_EIO, "overlayfs is not available: %s",
				  strerror(errno));
	/* overlayfs stacks lowerdir+ entries top first: the last layer is the top. */
	for (i = n_layers; i-- > 0;) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", layers[i], 0) != 0) {
			fs_log(fsfd, why, sizeof(why));
			return shoal_errf(err, SHOAL_EIO, "overlay layer %s: %s", layers[i],
					  why[0] != '\0' ? why : strerror(errno));
		}
	}
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) != 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) != 0 ||
	    fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
		fs_log(fsfd, why, sizeof(why));
		return shoal_errf(err, SHOAL_EIO, "mount overlay on %s: %s", target,
				  why[0] != '\0' ? why : strerror(errno));
	}
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return shoal_errf(err, SHOAL_EIO, "mount overlay on %s: %s", target,
				  strerror(errno));
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
		return shoal_errf(err, SHOAL_EIO, "mount overlay on %s: %s", target,
				  strerror(errno));
	return 0;
}

int rootfs_unmount(const char *target, struct shoal_err *err)
{
	if (umount2(target, UMOUNT_NOFOLLOW) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOENT)
		return 0; /* not a mount point, or gone */
	if (errno == EBUSY && umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		return 0;
	return shoal_errf(err, SHOAL_EIO, "unmount %s: %s", target, strerror(errno));
}
