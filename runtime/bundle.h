/* The OCI runtime config (config.json) of a container, generated from its spec and image. */
#ifndef SHOAL_RUNTIME_BUNDLE_H
#define SHOAL_RUNTIME_BUNDLE_H

#include <jansson.h>

#include "lib/err.h"
#include "runtime/ctr_spec.h"
#include "runtime/oci.h"

/* Everything config.json depends on besides the spec and the image config. */
struct bundle_params {
	const char *id;		  /* container id (64 hex): hostname default is its first 12 */
	const char *rootfs;	  /* absolute path of the mounted root filesystem */
	const char *cgroups_path; /* "/shoal/<id>" (cgroupfs layout) */
	const char *netns_path;	  /* NULL: a new, empty network namespace; else join it */
	const char
	    *resolv_conf;  /* NULL or a host file bind-mounted read-only on /etc/resolv.conf */
	const char *hosts; /* NULL or a file bind-mounted on /etc/hosts */
	const char *hostname_file; /* NULL or a file bind-mounted on /etc/hostname */
};

/* The process a container runs, resolved as Docker does: Entrypoint and Cmd of
 * the spec replace the image's (an Entrypoint given in the spec drops the
 * image's Cmd unless the spec gives one), Env = image Env overridden key by
 * key by the spec, plus PATH and HOSTNAME when absent (HOSTNAME only when the
 * spec sets Hostname: bundle_config() adds the id-derived default); WorkingDir from the
 * spec, else the image, else "/"; User likewise ("" = root). Heap-owned: free
 * with bundle_process_free(). */
/* args.items and env.items are NULL-terminated (ready for exec). */
struct bundle_process {
	struct oci_strlist args;
	struct oci_strlist env;
	char *cwd;
	char *user; /* as given: "uid[:gid]", "name[:group]", or "" */
};

/* Resolve the process. SHOAL_EINVAL ("no command specified") when neither
 * spec nor image gives args. */
int bundle_process_resolve(const struct ctr_spec *spec, const struct oci_config *image,
			   struct bundle_process *out, struct shoal_err *err);
void bundle_process_free(struct bundle_process *p);

/* Resolve @user ("uid[:gid]", "name[:group]", "") against the rootfs'
 * /etc/passwd and /etc/group (read with openat under @rootfs, never following
 * a symlink out of it). A numeric uid without gid gets the passwd entry's
 * group, else 0. Additional groups from /etc/group. SHOAL_EINVAL for an
 * unknown name ("unable to find user app: no matching entries in passwd
 * file", Docker's words). */
int bundle_user_resolve(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
			uint32_t **extra_gids, size_t *n_extra, struct shoal_err *err);

/* Build config.json (OCI runtime spec 1.0.2, what runc 1.1 reads) for @spec
 * on @image's config: process (args, env, cwd, user, no terminal, rlimits
 * with Docker's default RLIMIT_NOFILE 1048576 when none given (lowered to
 * this process's hard limit when it lacks CAP_SYS_RESOURCE to raise it), Docker's
 * default capability set adjusted by CapAdd/CapDrop, noNewPrivileges false,
 * Docker's default masked and read-only paths), root (readonly per spec),
 * hostname, Docker's default mounts (/proc, /dev tmpfs, /dev/pts, /dev/shm
 * 64 MiB, /dev/mqueue, /sys ro, /sys/fs/cgroup ro) plus the spec's binds
 * (rbind, private, ro when asked) and the params' files, namespaces (pid,
 * ipc, uts, mount, network with the params' path), Docker's default device
 * allow list, cgroup resources (memory limit with swap equal to it so OOM
 * kills, cpu quota/period from NanoCpus, shares, pids). The
 * stop signal is not in config.json (the daemon sends it). */
int bundle_config(const struct ctr_spec *spec, const struct oci_config *image,
		  const struct bundle_params *params, json_t **out, struct shoal_err *err);

/* Docker's default capabilities, NULL-terminated ("CAP_CHOWN", ...). */
extern const char *const bundle_default_caps[];

#endif
