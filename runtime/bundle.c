/* The OCI runtime config (config.json) of a container: Docker's defaults, the spec, the image. */
#include "runtime/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/fsutil.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_IN_ROOT_       0x10

/* struct open_how of linux/openat2.h, defined here as libc headers may lack it. */
struct shoal_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

#define DEFAULT_PATH	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_NOFILE	1048576u
#define ETC_FILE_MAX	(4u << 20) /* bytes of /etc/passwd or /etc/group we read */
#define EXTRA_GIDS_MAX	65536u	   /* NGROUPS_MAX */
#define CPU_PERIOD	100000ll   /* us, Docker's */
#define UID_MAX_ALLOWED 2147483647u

const char *const bundle_default_caps[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    NULL,
};

static const char *const masked_paths[] = {
    "/proc/asound",	   "/proc/acpi",       "/proc/kcore",	    "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",	   "/sys/firmware",
};

static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* Docker's default mounts, in its order. */
static const struct {
	const char *dest, *type, *source, *options;
} default_mounts[] = {
    {"/proc", "proc", "proc", "nosuid,noexec,nodev"},
    {"/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"},
    {"/dev/pts", "devpts", "devpts", "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"},
    {"/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"},
    {"/sys/fs/cgroup", "cgroup", "cgroup", "ro,nosuid,noexec,nodev"},
    {"/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"},
    {"/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=67108864"},
};

/* Docker's default device cgroup rules after "deny all": type, major, minor
 * (-1 = any), access. */
static const struct {
	const char *type;
	int64_t major, minor;
	const char *access;
} default_devices[] = {
    {"c", -1, -1, "m"}, {"b", -1, -1, "m"},    {"c", 1, 3, "rwm"}, {"c", 1, 8, "rwm"},
    {"c", 1, 7, "rwm"}, {"c", 5, 0, "rwm"},    {"c", 1, 5, "rwm"}, {"c", 1, 9, "rwm"},
    {"c", 5, 1, "rwm"}, {"c", 136, -1, "rwm"}, {"c", 5, 2, "rwm"}, {"c", 10, 200, "rwm"},
};

static int nomem(struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
}

/* ---- the process ---- */

static size_t env_key_len(const char *e)
{
	return strcspn(e, "=");
}

/* Index of the entry of @env with @e's key, or -1. */
static ssize_t env_find(const struct oci_strlist *env, const char *e)
{
	size_t k = env_key_len(e);

	for (size_t i = 0; i < env->n; i++)
		if (env_key_len(env->items[i]) == k && strncmp(env->items[i], e, k) == 0)
			return (ssize_t)i;
	return -1;
}

/* Replace the entry with @e's key, or append @e. */
static int env_set(struct oci_strlist *env, const char *e)
{
	ssize_t i = env_find(env, e);
	char *d;

	if (i < 0)
		return oci_strlist_push(env, e);
	d = strdup(e);
	if (d == NULL)
		return -1;
	free(env->items[i]);
	env->items[i] = d;
	return 0;
}

/* Docker's order: PATH (when missing), HOSTNAME (when missing and known), the
 * image's Env overridden by the spec's. */
static int build_env(const struct ctr_spec *spec, const struct oci_config *image,
		     const char *hostname, struct oci_strlist *out)
{
	struct oci_strlist merged = {0};
	int rv = 0;

	for (size_t i = 0; rv == 0 && image != NULL && i < image->env.n; i++)
		rv = env_set(&merged, image->env.items[i]);
	for (size_t i = 0; rv == 0 && i < spec->env.n; i++)
		rv = env_set(&merged, spec->env.items[i]);
	if (rv == 0 && env_find(&merged, "PATH") < 0)
		rv = oci_strlist_push(out, DEFAULT_PATH);
	if (rv == 0 && hostname != NULL && env_find(&merged, "HOSTNAME") < 0) {
		size_t n = strlen(hostname) + sizeof("HOSTNAME=");
		char *h = malloc(n);
		rv = h == NULL ? -1 : 0;
		if (h != NULL) {
			snprintf(h, n, "HOSTNAME=%s", hostname);
			rv = oci_strlist_push(out, h);
			free(h);
		}
	}
	if (rv == 0)
		rv = oci_strlist_push_all(out, &merged);
	oci_strlist_free(&merged);
	return rv;
}

static int process_resolve(const struct ctr_spec *spec, const struct oci_config *image,
			   const char *hostname, struct bundle_process *out, struct shoal_err *err)
{
	static const struct oci_strlist none = {0};
	const struct oci_strlist *ep, *cmd;
	const char *cwd, *user;

	memset(out, 0, sizeof(*out));
	ep = spec->entrypoint_set ? &spec->entrypoint : image != NULL ? &image->entrypoint : &none;
	if (spec->cmd.n > 0)
		cmd = &spec->cmd;
	else if (spec->entrypoint_set || image == NULL)
		cmd = &none;
	else
		cmd = &image->cmd;
	if (ep->n + cmd->n == 0)
		return shoal_errf(err, SHOAL_EINVAL, "no command specified");
	if ((ep->n > 0 ? ep->items[0] : cmd->items[0])[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL, "no command specified: the command is empty");

	cwd = spec->workdir;
	if (cwd == NULL && image != NULL && image->working_dir != NULL &&
	    image->working_dir[0] != '\0')
		cwd = image->working_dir;
	user = spec->user;
	if (user == NULL && image != NULL)
		user = image->user;
	/* Built by pushes, so NULL-terminated: args and env go to exec as they are. */
	if (oci_strlist_push_all(&out->args, ep) != 0 ||
	    oci_strlist_push_all(&out->args, cmd) != 0 ||
	    build_env(spec, image, hostname, &out->env) != 0)
		goto nomem;
	if (cwd == NULL || cwd[0] == '/') {
		out->cwd = strdup(cwd != NULL ? cwd : "/");
	} else {
		/* An image's relative WorkingDir is taken from /, as Docker does. */
		size_t n = strlen(cwd) + 2;
		out->cwd = malloc(n);
		if (out->cwd != NULL)
			snprintf(out->cwd, n, "/%s", cwd);
	}
	out->user = strdup(user != NULL ? user : "");
	if (out->cwd == NULL || out->user == NULL)
		goto nomem;
	return 0;
nomem:
	bundle_process_free(out);
	return nomem(err);
}

int bundle_process_resolve(const struct ctr_spec *spec, const struct oci_config *image,
			   struct bundle_process *out, struct shoal_err *err)
{
	return process_resolve(spec, image, spec->hostname, out, err);
}

void bundle_process_free(struct bundle_process *p)
{
	if (p == NULL)
		return;
	oci_strlist_free(&p->args);
	oci_strlist_free(&p->env);
	free(p->cwd);
	free(p->user);
	p->cwd = NULL;
	p->user = NULL;
}

/* ---- users and groups from the rootfs ---- */

/* Open @rel ("etc/passwd") under @root_fd, resolving symlinks as if @root_fd
 * were "/" (openat2 RESOLVE_IN_ROOT); without openat2, no symlink is followed
 * at all. Returns an fd, or -errno. */
static int open_in_root(int root_fd, const char *dir, const char *file)
{
	struct shoal_open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	    .resolve = RESOLVE_IN_ROOT_ | RESOLVE_NO_MAGICLINKS_,
	};
	char path[64];
	long fd;
	int dfd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
	dfd = openat(root_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		fd = -errno;
	close(dfd);
	return (int)fd;
}

/* The content of @file (under etc/ of the root) as a NUL-terminated heap
 * string; "" when it does not exist or is not a regular file. */
static int read_etc(int root_fd, const char *file, char **out, struct shoal_err *err)
{
	_cleanup_close_ int fd = open_in_root(root_fd, "etc", file);
	struct stat st;
	size_t len = 0;
	char *buf;

	*out = NULL;
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP || fd == -EXDEV)
		return (*out = strdup("")) == NULL ? nomem(err) : 0;
	if (fd < 0)
		return shoal_errf(err, SHOAL_EIO, "open /etc/%s of the container: %s", file,
				  strerror(-fd));
	if (fstat(fd, &st) != 0)
		return shoal_errf(err, SHOAL_EIO, "stat /etc/%s of the container: %s", file,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return (*out = strdup("")) == NULL ? nomem(err) : 0;
	if (st.st_size > (off_t)ETC_FILE_MAX)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "/etc/%s of the container is larger than %u bytes", file,
				  ETC_FILE_MAX);
	buf = malloc(ETC_FILE_MAX + 1);
	if (buf == NULL)
		return nomem(err);
	for (;;) {
		ssize_t n = read(fd, buf + len, ETC_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return shoal_errf(err, SHOAL_EIO, "read /etc/%s of the container: %s", file,
					  strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > ETC_FILE_MAX) {
			free(buf);
			return shoal_errf(err, SHOAL_ETOOBIG,
					  "/etc/%s of the container is larger than %u bytes", file,
					  ETC_FILE_MAX);
		}
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* A decimal id no larger than UID_MAX_ALLOWED. */
static bool parse_id(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || strlen(s) > 10)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > UID_MAX_ALLOWED)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Split the next line of *@cur into at most @max ':'-separated fields (in
 * place). Returns the number of fields, 0 at the end. Comments and blank
 * lines give -1. */
static int next_entry(char **cur, char **f, int max)
{
	char *line = *cur, *nl, *c;
	int n = 0;

	if (*line == '\0')
		return 0;
	nl = strchr(line, '\n');
	if (nl != NULL) {
		*nl = '\0';
		*cur = nl + 1;
	} else {
		*cur = line + strlen(line);
	}
	if (line[0] == '#' || line[0] == '\0')
		return -1;
	for (c = line; n < max;) {
		f[n++] = c;
		c = strchr(c, ':');
		if (c == NULL)
			break;
		*c++ = '\0';
	}
	return n;
}

/* The passwd entry named @arg, or with uid @arg when it is a number: its
 * uid, gid and (heap) name. Returns true when found. */
static bool passwd_lookup(char *passwd, const char *arg, uint32_t *uid, uint32_t *gid, char **name)
{
	char *cur = passwd, *f[7];
	uint32_t num = 0, u, g;
	bool numeric = parse_id(arg, &num);
	int n;

	while ((n = next_entry(&cur, f, 7)) != 0) {
		if (n < 4 || !parse_id(f[2], &u) || !parse_id(f[3], &g))
			continue;
		if (strcmp(f[0], arg) == 0 || (numeric && u == num)) {
			*uid = u;
			*gid = g;
			*name = strdup(f[0]);
			return true;
		}
	}
	return false;
}

static bool group_lookup(char *group, const char *arg, uint32_t *gid)
{
	char *cur = group, *f[4];
	uint32_t num = 0, g;
	bool numeric = parse_id(arg, &num);
	int n;

	while ((n = next_entry(&cur, f, 4)) != 0) {
		if (n < 3 || !parse_id(f[2], &g))
			continue;
		if (strcmp(f[0], arg) == 0 || (numeric && g == num)) {
			*gid = g;
			return true;
		}
	}
	return false;
}

/* The gids of the groups listing @user as a member, without duplicates. */
static int group_members(char *group, const char *user, uint32_t **out, size_t *n_out,
			 struct shoal_err *err)
{
	char *cur = group, *f[4];
	uint32_t g;
	int n;

	while ((n = next_entry(&cur, f, 4)) != 0) {
		char *m, *save = NULL;
		bool member = false, dup = false;

		if (n < 4 || !parse_id(f[2], &g))
			continue;
		for (m = strtok_r(f[3], ",", &save); m != NULL && !member;
		     m = strtok_r(NULL, ",", &save))
			member = strcmp(m, user) == 0;
		for (size_t i = 0; member && i < *n_out; i++)
			dup = dup || (*out)[i] == g;
		if (!member || dup)
			continue;
		if (*n_out == EXTRA_GIDS_MAX)
			return shoal_errf(err, SHOAL_ETOOBIG,
					  "user %.64s is in more than %u groups", user,
					  EXTRA_GIDS_MAX);
		uint32_t *a = realloc(*out, (*n_out + 1) * sizeof(*a));
		if (a == NULL)
			return nomem(err);
		*out = a;
		a[(*n_out)++] = g;
	}
	return 0;
}

int bundle_user_resolve(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
			uint32_t **extra_gids, size_t *n_extra, struct shoal_err *err)
{
	_cleanup_close_ int root_fd = -1;
	_cleanup_free_ char *passwd = NULL, *group = NULL, *u = NULL, *name = NULL;
	uint32_t *extra = NULL;
	size_t n = 0;
	const char *garg;
	char *colon;
	uint32_t pu = 0, pg = 0;
	int rv;

	*extra_gids = NULL;
	*n_extra = 0;
	u = strdup(user != NULL && user[0] != '\0' ? user : "0");
	if (u == NULL)
		return nomem(err);
	colon = strchr(u, ':');
	if (colon != NULL)
		*colon = '\0';
	garg = colon != NULL ? colon + 1 : NULL;
	if (u[0] == '\0' || (garg != NULL && garg[0] == '\0'))
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid user '%.64s': must be name, uid, name:group or uid:gid",
				  user);
	root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return shoal_errf(err, SHOAL_EIO, "open rootfs %s: %s", rootfs, strerror(errno));
	rv = read_etc(root_fd, "passwd", &passwd, err);
	if (rv == 0)
		rv = read_etc(root_fd, "group", &group, err);
	if (rv != 0)
		return rv;

	if (passwd_lookup(passwd, u, &pu, &pg, &name)) {
		if (name == NULL)
			return nomem(err);
	} else if (parse_id(u, &pu)) {
		pg = 0;
	} else {
		return shoal_errf(err, SHOAL_EINVAL,
				  "unable to find user %.64s: no matching entries in passwd file",
				  u);
	}
	if (garg != NULL) {
		/* group_lookup splits lines in place: work on a copy. */
		_cleanup_free_ char *g = strdup(group);
		if (g == NULL)
			return nomem(err);
		if (!group_lookup(g, garg, &pg) && !parse_id(garg, &pg))
			return shoal_errf(err, SHOAL_EINVAL,
					  "unable to find group %.64s: no matching entries in "
					  "group file",
					  garg);
	} else if (name != NULL) {
		rv = group_members(group, name, &extra, &n, err);
		if (rv != 0) {
			free(extra);
			return rv;
		}
	}
	*uid = pu;
	*gid = pg;
	*extra_gids = extra;
	*n_extra = n;
	return 0;
}

/* ---- config.json ---- */

/* json_array_append_new / json_object_set_new that remember a failure. */
static void push(json_t *a, json_t *v, bool *ok)
{
	if (a == NULL || v == NULL || json_array_append_new(a, v) != 0) {
		json_decref(v);
		*ok = false;
	}
}

static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (o == NULL || v == NULL || json_object_set_new(o, key, v) != 0) {
		json_decref(v);
		*ok = false;
	}
}

static json_t *str_array(const char *const *s, size_t n, bool *ok)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		push(a, json_string(s[i]), ok);
	return a;
}

/* A mount; @options is comma-separated. */
static json_t *mount_json(const char *dest, const char *type, const char *source,
			  const char *options, bool *ok)
{
	json_t *m = json_object(), *opts = json_array();
	char buf[128], *o, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", options);
	for (o = strtok_r(buf, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save))
		push(opts, json_string(o), ok);
	put(m, "destination", json_string(dest), ok);
	put(m, "type", json_string(type), ok);
	put(m, "source", json_string(source), ok);
	put(m, "options", opts, ok);
	return m;
}

static size_t path_depth(const char *p)
{
	size_t d = 0;

	for (; *p != '\0'; p++)
		if (*p == '/' && p[1] != '/' && p[1] != '\0')
			d++;
	return d;
}

/* Docker's default mounts (less those the spec's binds replace), the params'
 * files, then the binds, parents before children. */
static json_t *mounts_json(const struct ctr_spec *spec, const struct bundle_params *params,
			   bool *ok)
{
	const struct {
		const char *file, *dest, *options;
	} files[] = {
	    {params->resolv_conf, "/etc/resolv.conf", "rbind,rprivate,ro"},
	    {params->hosts, "/etc/hosts", "rbind,rprivate"},
	    {params->hostname_file, "/etc/hostname", "rbind,rprivate"},
	};
	json_t *a = json_array();
	size_t max_depth = 0;

	for (size_t i = 0; i < ARRAY_SIZE(default_mounts); i++) {
		bool replaced = false;
		for (size_t j = 0; j < spec->n_mounts; j++)
			replaced =
			    replaced || strcmp(spec->mounts[j].target, default_mounts[i].dest) == 0;
		if (!replaced)
			push(a,
			     mount_json(default_mounts[i].dest, default_mounts[i].type,
					default_mounts[i].source, default_mounts[i].options, ok),
			     ok);
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		bool replaced = false;
		if (files[i].file == NULL)
			continue;
		for (size_t j = 0; j < spec->n_mounts; j++)
			replaced = replaced || strcmp(spec->mounts[j].target, files[i].dest) == 0;
		if (!replaced)
			push(a,
			     mount_json(files[i].dest, "bind", files[i].file, files[i].options, ok),
			     ok);
	}
	for (size_t j = 0; j < spec->n_mounts; j++)
		if (path_depth(spec->mounts[j].target) > max_depth)
			max_depth = path_depth(spec->mounts[j].target);
	/* Stable by depth: a bind on /a is mounted before one on /a/b. */
	for (size_t d = 0; d <= max_depth; d++)
		for (size_t j = 0; j < spec->n_mounts; j++) {
			const struct ctr_mount *m = &spec->mounts[j];
			if (path_depth(m->target) == d)
				push(a,
				     mount_json(
					 m->target, "bind", m->source,
					 m->readonly ? "rbind,rprivate,ro" : "rbind,rprivate", ok),
				     ok);
		}
	return a;
}

static bool list_has(const struct oci_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

/* Docker's TweakCapabilities: ALL in CapAdd gives every capability but those
 * dropped; ALL in CapDrop gives only CapAdd; else the defaults less CapDrop
 * plus CapAdd. In kernel order. */
static json_t *caps_json(const struct ctr_spec *spec, bool *ok)
{
	const char *const *all = ctr_cap_all();
	json_t *a = json_array();
	bool add_all = list_has(&spec->cap_add, "ALL");
	bool drop_all = list_has(&spec->cap_drop, "ALL");

	for (size_t i = 0; all[i] != NULL; i++) {
		bool on, dflt = false;
		for (size_t j = 0; bundle_default_caps[j] != NULL; j++)
			dflt = dflt || strcmp(all[i], bundle_default_caps[j]) == 0;
		if (add_all)
			on = !list_has(&spec->cap_drop, all[i]);
		else if (drop_all)
			on = list_has(&spec->cap_add, all[i]);
		else
			on = (dflt && !list_has(&spec->cap_drop, all[i])) ||
			     list_has(&spec->cap_add, all[i]);
		if (on)
			push(a, json_string(all[i]), ok);
	}
	return a;
}

/* Whether this process may raise hard rlimits (CAP_SYS_RESOURCE, bit 24, in
 * CapEff of /proc/self/status). */
static bool has_sys_resource(void)
{
	char line[128];
	unsigned long long eff = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return true;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return !found || (eff & (1ull << 24)) != 0;
}

static json_t *rlimits_json(const struct ctr_spec *spec, bool *ok)
{
	json_t *a = json_array();
	bool nofile = false;

	for (size_t i = 0; i < spec->n_rlimits; i++) {
		const struct ctr_rlimit *r = &spec->rlimits[i];
		json_t *o = json_object();
		nofile = nofile || strcmp(r->type, "RLIMIT_NOFILE") == 0;
		put(o, "type", json_string(r->type), ok);
		/* Unlimited (-1 in the spec) is written as INT64_MAX: runc reads
		 * a uint64 and JSON integers here are signed. */
		put(o, "hard", json_integer(r->hard > INT64_MAX ? INT64_MAX : (json_int_t)r->hard),
		    ok);
		put(o, "soft", json_integer(r->soft > INT64_MAX ? INT64_MAX : (json_int_t)r->soft),
		    ok);
		push(a, o, ok);
	}
	if (!nofile) {
		/* Docker's containers inherit dockerd's 1048576; a daemon that may
		 * not raise its own hard limit (no CAP_SYS_RESOURCE) gives that. */
		struct rlimit cur;
		json_int_t v = DEFAULT_NOFILE;
		json_t *o = json_object();
		if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
		    cur.rlim_max < DEFAULT_NOFILE && !has_sys_resource())
			v = (json_int_t)cur.rlim_max;
		put(o, "type", json_string("RLIMIT_NOFILE"), ok);
		put(o, "hard", json_integer(v), ok);
		put(o, "soft", json_integer(v), ok);
		push(a, o, ok);
	}
	return a;
}

static json_t *process_json(const struct ctr_spec *spec, const struct bundle_process *p,
			    uint32_t uid, uint32_t gid, const uint32_t *extra, size_t n_extra,
			    bool *ok)
{
	json_t *proc = json_object(), *user = json_object(), *caps = json_object();

	put(proc, "terminal", json_false(), ok);
	put(user, "uid", json_integer(uid), ok);
	put(user, "gid", json_integer(gid), ok);
	if (n_extra > 0) {
		json_t *g = json_array();
		for (size_t i = 0; i < n_extra; i++)
			push(g, json_integer(extra[i]), ok);
		put(user, "additionalGids", g, ok);
	}
	put(proc, "user", user, ok);
	put(proc, "args", str_array((const char *const *)p->args.items, p->args.n, ok), ok);
	put(proc, "env", str_array((const char *const *)p->env.items, p->env.n, ok), ok);
	put(proc, "cwd", json_string(p->cwd), ok);
	put(caps, "bounding", caps_json(spec, ok), ok);
	put(caps, "effective", caps_json(spec, ok), ok);
	put(caps, "permitted", caps_json(spec, ok), ok);
	put(proc, "capabilities", caps, ok);
	put(proc, "rlimits", rlimits_json(spec, ok), ok);
	put(proc, "noNewPrivileges", json_false(), ok);
	return proc;
}

static json_t *resources_json(const struct ctr_spec *spec, bool *ok)
{
	json_t *r = json_object(), *devs = json_array(), *deny = json_object();

	put(deny, "allow", json_false(), ok);
	put(deny, "access", json_string("rwm"), ok);
	push(devs, deny, ok);
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
		json_t *d = json_object();
		put(d, "allow", json_true(), ok);
		put(d, "type", json_string(default_devices[i].type), ok);
		if (default_devices[i].major >= 0)
			put(d, "major", json_integer(default_devices[i].major), ok);
		if (default_devices[i].minor >= 0)
			put(d, "minor", json_integer(default_devices[i].minor), ok);
		put(d, "access", json_string(default_devices[i].access), ok);
		push(devs, d, ok);
	}
	put(r, "devices", devs, ok);
	if (spec->memory > 0) {
		json_t *m = json_object();
		put(m, "limit", json_integer(spec->memory), ok);
		put(m, "swap", json_integer(spec->memory), ok);
		put(r, "memory", m, ok);
	}
	if (spec->nano_cpus > 0 || spec->cpu_shares > 0) {
		json_t *c = json_object();
		if (spec->cpu_shares > 0)
			put(c, "shares", json_integer(spec->cpu_shares), ok);
		if (spec->nano_cpus > 0) {
			put(c, "quota", json_integer(spec->nano_cpus * CPU_PERIOD / 1000000000ll),
			    ok);
			put(c, "period", json_integer(CPU_PERIOD), ok);
		}
		put(r, "cpu", c, ok);
	}
	if (spec->pids_limit > 0) {
		json_t *p = json_object();
		put(p, "limit", json_integer(spec->pids_limit), ok);
		put(r, "pids", p, ok);
	}
	return r;
}

static json_t *linux_json(const struct ctr_spec *spec, const struct bundle_params *params, bool *ok)
{
	static const char *const ns_types[] = {"pid", "ipc", "uts", "mount"};
	json_t *l = json_object(), *ns = json_array(), *net = json_object();

	for (size_t i = 0; i < ARRAY_SIZE(ns_types); i++) {
		json_t *n = json_object();
		put(n, "type", json_string(ns_types[i]), ok);
		push(ns, n, ok);
	}
	put(net, "type", json_string("network"), ok);
	if (params->netns_path != NULL)
		put(net, "path", json_string(params->netns_path), ok);
	push(ns, net, ok);
	put(l, "namespaces", ns, ok);
	put(l, "cgroupsPath", json_string(params->cgroups_path), ok);
	put(l, "resources", resources_json(spec, ok), ok);
	put(l, "maskedPaths", str_array(masked_paths, ARRAY_SIZE(masked_paths), ok), ok);
	put(l, "readonlyPaths", str_array(readonly_paths, ARRAY_SIZE(readonly_paths), ok), ok);
	return l;
}

int bundle_config(const struct ctr_spec *spec, const struct oci_config *image,
		  const struct bundle_params *params, json_t **out, struct shoal_err *err)
{
	struct bundle_process proc;
	char hostname[13];
	uint32_t uid, gid, *extra = NULL;
	size_t n_extra = 0;
	json_t *cfg, *root;
	bool ok = true;
	int rv;

	PRE(params->id != NULL && params->rootfs != NULL && params->cgroups_path != NULL);
	*out = NULL;
	if (params->rootfs[0] != '/')
		return shoal_errf(err, SHOAL_EINVAL, "rootfs %s is not an absolute path",
				  params->rootfs);
	snprintf(hostname, sizeof(hostname), "%.12s", params->id);
	rv = process_resolve(spec, image, spec->hostname != NULL ? spec->hostname : hostname, &proc,
			     err);
	if (rv != 0)
		return rv;
	rv = bundle_user_resolve(params->rootfs, proc.user, &uid, &gid, &extra, &n_extra, err);
	if (rv != 0) {
		bundle_process_free(&proc);
		return rv;
	}

	cfg = json_object();
	root = json_object();
	put(cfg, "ociVersion", json_string("1.0.2"), &ok);
	put(cfg, "process", process_json(spec, &proc, uid, gid, extra, n_extra, &ok), &ok);
	put(root, "path", json_string(params->rootfs), &ok);
	put(root, "readonly", json_boolean(spec->readonly_rootfs), &ok);
	put(cfg, "root", root, &ok);
	put(cfg, "hostname", json_string(spec->hostname != NULL ? spec->hostname : hostname), &ok);
	put(cfg, "mounts", mounts_json(spec, params, &ok), &ok);
	put(cfg, "linux", linux_json(spec, params, &ok), &ok);
	bundle_process_free(&proc);
	free(extra);
	if (!ok) {
		json_decref(cfg);
		return nomem(err);
	}
	*out = cfg;
	return 0;
}
