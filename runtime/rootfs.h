/* A container's root filesystem: an overlayfs over its image's unpacked layers. */
#ifndef SHOAL_RUNTIME_ROOTFS_H
#define SHOAL_RUNTIME_ROOTFS_H

#include <stddef.h>

#include "lib/err.h"

/* Mount an overlay at @target (created if missing) with @layers as lower
 * directories (base layer first, as image_store_layer_dirs() gives them) and
 * @upper, @work (created if missing; on the same filesystem) for writes. A
 * target that is already an overlay mount is left as it is (a restart). The
 * lowerdir list is given through the new mount API one layer at a time
 * ("lowerdir+"), so no page-size limit applies to long paths or many layers.
 * Returns 0 or SHOAL_EIO with the kernel's reason. */
int rootfs_mount(const char *const *layers, size_t n_layers, const char *upper, const char *work,
		 const char *target, struct shoal_err *err);

/* Unmount @target (lazily if busy). Not mounted is success. */
int rootfs_unmount(const char *target, struct shoal_err *err);

/* True if @path is a mount point. */
int rootfs_is_mounted(const char *path);

#endif
