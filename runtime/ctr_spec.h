/* What a container is asked to be: its spec, parsed from Docker's container-create body. */
#ifndef SHOAL_RUNTIME_CTR_SPEC_H
#define SHOAL_RUNTIME_CTR_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "runtime/oci.h"

/* Bounds on a spec; anything larger is refused with SHOAL_ETOOBIG. */
#define CTR_SPEC_MAX_BODY   (1u << 20) /* bytes of the JSON body */
#define CTR_SPEC_MAX_ITEMS  1024u      /* args, env entries, mounts, labels, rlimits */
#define CTR_SPEC_MAX_STRING (64u << 10)
#define CTR_NAME_MAX	    128u /* bytes of a name, Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]* */

/* A bind mount. Both paths absolute; @target inside the container. */
struct ctr_mount {
	char *source;
	char *target;
	bool readonly;
};

/* One rlimit: @type is the OCI name ("RLIMIT_NOFILE"). */
struct ctr_rlimit {
	char *type;
	uint64_t soft;
	uint64_t hard;
};

/* A container spec. Every string and list is heap-owned; free with
 * ctr_spec_free(). NULL / empty means "not given" (the image's value or
 * Docker's default applies at create time). */
struct ctr_spec {
	char *name;  /* NULL: the API picks one */
	char *image; /* reference as the user gave it; required */
	struct oci_strlist entrypoint;
	bool entrypoint_set; /* Entrypoint given, even empty: it replaces the image's */
	struct oci_strlist cmd;
	struct oci_strlist env; /* "K=V", appended to the image's Env (a key given here wins) */
	char *workdir;
	char *user; /* "uid[:gid]" or a name (resolved from the rootfs' /etc/passwd) */
	char *hostname;
	struct oci_label *labels;
	size_t n_labels;
	char *stop_signal;    /* "SIGTERM" (default), "TERM" or "15" */
	int64_t stop_timeout; /* seconds; -1: default 10 */
	/* Healthcheck: test.n == 0 inherits the image's; {"NONE"} disables;
	 * {"CMD", arg...} or {"CMD-SHELL", "cmd"}. Durations in ns, 0 = Docker's
	 * default (interval 30 s, timeout 30 s, start period 0, retries 3). */
	struct oci_healthcheck health;
	/* HostConfig */
	struct ctr_mount *mounts; /* Binds "src:dst[:ro|rw]" and Mounts of Type "bind" */
	size_t n_mounts;
	bool readonly_rootfs;
	int64_t memory;		    /* bytes; 0 = no limit */
	int64_t nano_cpus;	    /* 1e9 = one CPU; 0 = no limit */
	int64_t cpu_shares;	    /* 0 = default */
	int64_t pids_limit;	    /* 0 or -1 = no limit */
	struct ctr_rlimit *rlimits; /* Ulimits [{Name:"nofile",Soft,Hard}] */
	size_t n_rlimits;
	struct oci_strlist cap_add; /* "CAP_NET_ADMIN" or "NET_ADMIN"; "ALL" allowed */
	struct oci_strlist cap_drop;
	bool network_none; /* NetworkMode "none"; "", "default" and "bridge" attach to the bridge */
	int64_t log_max_size; /* LogConfig json-file max-size in bytes; 0: default 10 MiB */
	int log_max_file;     /* max-file; 0: default 3 */
};

/* Parse Docker's POST /containers/create body (ContainerConfig with its
 * HostConfig) into @out, refusing what shoal cannot honour with a clear
 * sentence (another LogConfig Type, a NetworkMode other than
 * default/bridge/none, Privileged, a non-bind Mount, ...): SHOAL_EINVAL, or
 * SHOAL_ETOOBIG. Unknown fields are ignored, as the docker CLI sends many.
 * On failure @out is left empty (nothing to free). */
int ctr_spec_parse(const json_t *body, struct ctr_spec *out, struct shoal_err *err);

/* The same body back (Config fields with a HostConfig object, as the create
 * body has them), so the spec can be stored as JSON and parsed again:
 * parse(to_json(s)) == s for every field but @name, which is not part of
 * Docker's body (the API takes it from ?name=). Binds come back as Mounts of
 * Type "bind"; NULL only when out of memory. */
json_t *ctr_spec_to_json(const struct ctr_spec *s);

/* Deep copy. Returns 0 or SHOAL_ENOMEM. */
int ctr_spec_copy(const struct ctr_spec *src, struct ctr_spec *dst, struct shoal_err *err);

void ctr_spec_free(struct ctr_spec *s);

/* Parse "SIGTERM", "TERM" or "15" into a signal number. Returns it or -1.
 * Names are case-insensitive, with or without "SIG" (RTMIN+n, RTMAX-n too);
 * numbers from 1 to 64. */
int ctr_signal_parse(const char *s);

/* Every capability Linux knows, "CAP_CHOWN" (0) to "CAP_CHECKPOINT_RESTORE",
 * in kernel order, NULL-terminated. CapAdd/CapDrop hold only these and "ALL". */
const char *const *ctr_cap_all(void);

#endif
