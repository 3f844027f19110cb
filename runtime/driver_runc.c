/* The runc driver: an overlay rootfs, a generated bundle, runc create/start/delete/exec. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/fsutil.h"
#include "runtime/bundle.h"
#include "runtime/container_priv.h"
#include "runtime/health.h"
#include "runtime/rootfs.h"

#define RUNC_ARGS_MAX 64

/* One runc invocation. Happy path: spawned, exits, @cb with its status.
 * A spawn failure calls @cb at once with status -1 and errno's text. */
struct runc_cmd {
	uv_process_t proc;
	struct ctr *c; /* may be freed by @cb: use @cs afterwards */
	struct containers *cs;
	void (*cb)(struct runc_cmd *cmd, int64_t status, int sig);
	void *arg;
	uint64_t timeout_ms;
	uv_timer_t timer;
	bool timer_on;
	bool timed_out;
	bool exited;
	int closing; /* handles still to close */
	int pid;
	char pid_file[PATH_MAX]; /* runc exec --pid-file: the probe inside */
};

/* A health probe in flight (c->exec). */
struct ctr_exec {
	struct runc_cmd *cmd;
	void (*done)(void *arg, int exit_code, const char *out, size_t len);
	void *arg;
	bool cancelled;
};

/* uv_spawn and exec want char *const *: the strings are never written. */
static char *unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

static const char *runc_bin(const struct ctr *c)
{
	return c->cs->cfg.runc != NULL ? c->cs->cfg.runc : "runc";
}

static void cmd_free(uv_handle_t *h)
{
	struct runc_cmd *cmd = h->data;

	if (--cmd->closing > 0)
		return;
	ctr_release(cmd->cs);
	free(cmd);
}

static void cmd_exit(uv_process_t *p, int64_t status, int sig)
{
	struct runc_cmd *cmd = p->data;

	cmd->exited = true;
	ctr_spawned(cmd->cs, cmd->pid, false);
	if (cmd->timer_on) {
		uv_timer_stop(&cmd->timer);
		cmd->closing++;
		uv_close((uv_handle_t *)&cmd->timer, cmd_free);
		cmd->timer_on = false;
	}
	cmd->cb(cmd, status, sig);
	uv_close((uv_handle_t *)p, cmd_free);
}

/* Kill what @cmd runs: for `runc exec`, the process inside first (runc does
 * not forward SIGKILL), then runc itself. */
static void cmd_kill(struct runc_cmd *cmd)
{
	char *text = NULL;
	size_t len;
	int pid;

	if (cmd->exited)
		return;
	if (cmd->pid_file[0] != '\0' && fs_read_all(cmd->pid_file, 64, &text, &len, NULL) == 0 &&
	    (pid = atoi(text)) > 0)
		kill(pid, SIGKILL);
	free(text);
	uv_process_kill(&cmd->proc, SIGKILL);
}

static void cmd_timeout(uv_timer_t *t)
{
	struct runc_cmd *cmd = t->data;

	cmd->timed_out = true;
	cmd_kill(cmd);
}

/* Spawn @argv (NULL-terminated) with stdio @fds[3] (-1: /dev/null). */
static int cmd_run(struct ctr *c, char **argv, const int fds[3], uint64_t timeout_ms,
		   void (*cb)(struct runc_cmd *, int64_t, int), void *arg, struct runc_cmd **out,
		   struct shoal_err *err)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	struct runc_cmd *cmd;
	_cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int rv, i;

	if (null_fd < 0)
		return shoal_errf(err, SHOAL_EIO, "open /dev/null: %s", strerror(errno));
	cmd = calloc(1, sizeof(*cmd));
	if (cmd == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	cmd->c = c;
	cmd->cs = c->cs;
	cmd->cb = cb;
	cmd->arg = arg;
	for (i = 0; i < 3; i++) {
		stdio[i].flags = UV_INHERIT_FD;
		stdio[i].data.fd = fds != NULL && fds[i] >= 0 ? fds[i] : null_fd;
	}
	memset(&opts, 0, sizeof(opts));
	opts.file = argv[0];
	opts.args = argv;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.exit_cb = cmd_exit;
	cmd->proc.data = cmd;
	rv = uv_spawn(c->cs->cfg.loop, &cmd->proc, &opts);
	if (rv != 0) {
		/* libuv wants the handle closed even when the spawn failed. */
		c->cs->pending++;
		cmd->closing = 1;
		uv_close((uv_handle_t *)&cmd->proc, cmd_free);
		return shoal_errf(err, SHOAL_EIO, "run %s: %s", argv[0], uv_strerror(rv));
	}
	c->cs->pending++;
	cmd->closing = 1;
	cmd->pid = cmd->proc.pid;
	if (ctr_spawned(c->cs, cmd->pid, true) != 0)
		uv_process_kill(&cmd->proc, SIGKILL); /* libuv reaps it; cb reports the failure */
	if (timeout_ms > 0) {
		uv_timer_init(c->cs->cfg.loop, &cmd->timer);
		cmd->timer.data = cmd;
		cmd->timer_on = true;
		uv_timer_start(&cmd->timer, cmd_timeout, timeout_ms, 0);
	}
	if (out != NULL)
		*out = cmd;
	return 0;
}

/* The last error runc wrote to its --log file (JSON lines), for messages. */
static void runc_error(const struct ctr *c, char *out, size_t len)
{
	char *text = NULL, *line, *save = NULL;
	size_t n;

	if (snprintf(out, len, "runc failed (see %s)", c->runc_log) >= (int)len)
		snprintf(out, len, "runc failed");
	if (fs_read_all(c->runc_log, 1u << 20, &text, &n, NULL) != 0)
		return;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *lvl = json_string_value(json_object_get(j, "level"));
		const char *msg = json_string_value(json_object_get(j, "msg"));

		if (lvl != NULL && msg != NULL && strcmp(lvl, "error") == 0)
			snprintf(out, len, "runc: %s", msg);
		json_decref(j);
	}
	free(text);
}

/* argv for "runc --root R --log L --log-format json VERB ..." into @argv. */
static size_t runc_argv(struct ctr *c, char **argv, const char *verb)
{
	size_t n = 0;

	argv[n++] = unconst(runc_bin(c));
	argv[n++] = "--root";
	argv[n++] = c->cs->runc_root;
	argv[n++] = "--log";
	argv[n++] = c->runc_log;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	argv[n++] = unconst(verb);
	return n;
}

/* ---- start ---- */

struct start_op {
	struct ctr *c;
	void (*done)(struct ctr *c, int status, const char *msg);
	int pid;
	int status;
	char msg[SHOAL_ERR_LEN];
};

static void start_fail(struct start_op *op, int status, const char *msg);

static int write_file(const char *path, const char *text, struct shoal_err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		return shoal_errf(err, SHOAL_EIO, "write %s: %s", path, strerror(errno));
	return 0;
}

static const char *hostname_of(const struct ctr *c, char buf[16])
{
	if (c->pub.spec.hostname != NULL && c->pub.spec.hostname[0] != '\0')
		return c->pub.spec.hostname;
	memcpy(buf, c->pub.id, 12);
	buf[12] = '\0';
	return buf;
}

static int write_etc(struct ctr *c, struct shoal_err *err)
{
	char path[PATH_MAX], text[1024], hn[16], addr[32] = "";
	const char *host = hostname_of(c, hn);
	int rv;

	if (c->pub.has_endpoint)
		inet_ntop(AF_INET, &c->pub.endpoint.addr, addr, sizeof(addr));
	ctr_path(c, "hostname", path);
	snprintf(text, sizeof(text), "%s\n", host);
	rv = write_file(path, text, err);
	if (rv != 0)
		return rv;
	ctr_path(c, "hosts", path);
	snprintf(text, sizeof(text),
		 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s%s%s%s", addr,
		 addr[0] != '\0' ? "\t" : "", addr[0] != '\0' ? host : "",
		 addr[0] != '\0' ? "\n" : "");
	return write_file(path, text, err);
}

/* resolv.conf: the host's, unless it points at a loopback resolver the
 * container cannot reach (Docker then uses public resolvers; we leave it
 * empty rather than send queries off the machine unasked). */
static int write_resolv(struct ctr *c, struct shoal_err *err)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	int rv;

	ctr_path(c, "resolv.conf", path);
	if (fs_read_all("/etc/resolv.conf", 64u << 10, &text, &len, NULL) != 0 ||
	    strstr(text, "nameserver 127.") != NULL) {
		free(text);
		return write_file(path, "", err);
	}
	rv = write_file(path, text, err);
	free(text);
	return rv;
}

static void started_cb(struct runc_cmd *cmd, int64_t status, int sig)
{
	struct start_op *op = cmd->arg;
	struct ctr *c = op->c;
	struct shoal_err err;
	char msg[SHOAL_ERR_LEN];

	if (status != 0 || sig != 0) {
		runc_error(c, msg, sizeof(msg));
		start_fail(op, SHOAL_EIO, msg);
		return;
	}
	if (ctr_started(c, op->pid, &err) != 0) {
		start_fail(op, SHOAL_EIO, err.msg);
		return;
	}
	c->starting_pid = 0;
	op->done(c, 0, NULL);
	free(op);
}

static void created_cb(struct runc_cmd *cmd, int64_t status, int sig)
{
	struct start_op *op = cmd->arg;
	struct ctr *c = op->c;
	char msg[SHOAL_ERR_LEN], path[PATH_MAX], netns[64], *text = NULL;
	char *argv[RUNC_ARGS_MAX];
	struct shoal_err err;
	size_t n, len;

	if (status != 0 || sig != 0) {
		runc_error(c, msg, sizeof(msg));
		start_fail(op, SHOAL_EIO, msg);
		return;
	}
	ctr_path(c, "pid", path);
	if (fs_read_all(path, 64, &text, &len, &err) != 0 || (op->pid = atoi(text)) <= 0) {
		free(text);
		start_fail(op, SHOAL_EIO, "runc create wrote no pid file");
		return;
	}
	free(text);
	c->starting_pid = op->pid; /* our child now: ctr_started() takes it over */
	if (c->cs->cfg.net != NULL && !c->pub.spec.network_none) {
		struct netw *net = ctr_net(c->cs, &err);

		snprintf(netns, sizeof(netns), "/proc/%d/ns/net", op->pid);
		if (net == NULL ||
		    netw_attach(net, c->pub.id, netns, &c->pub.endpoint, &err) != 0) {
			start_fail(op, SHOAL_EIO, err.msg);
			return;
		}
		c->pub.has_endpoint = true;
		if (write_etc(c, &err) != 0) {
			start_fail(op, SHOAL_EIO, err.msg);
			return;
		}
	}
	n = runc_argv(c, argv, "start");
	argv[n++] = c->pub.id;
	argv[n] = NULL;
	if (cmd_run(c, argv, NULL, 0, started_cb, op, NULL, &err) != 0)
		start_fail(op, SHOAL_EIO, err.msg);
}

static void runc_start(struct ctr *c, int out_fd, int err_fd,
		       void (*done)(struct ctr *c, int status, const char *msg))
{
	const struct image *img;
	struct bundle_params params;
	struct start_op *op;
	struct shoal_err err;
	char bundle[PATH_MAX], rootfs[PATH_MAX], upper[PATH_MAX], work[PATH_MAX];
	char config[PATH_MAX], pidf[PATH_MAX], cg[128], hostf[PATH_MAX], hostsf[PATH_MAX],
	    resolvf[PATH_MAX];
	char *argv[RUNC_ARGS_MAX], *text;
	char **dirs = NULL;
	size_t n_dirs = 0, n;
	json_t *cfg = NULL;
	int fds[3] = {-1, out_fd, err_fd};
	int rv;

	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		done(c, SHOAL_ENOMEM, "out of memory");
		return;
	}
	op->c = c;
	op->done = done;
	ctr_path(c, "runc.log", c->runc_log);
	unlink(c->runc_log);
	ctr_path(c, "bundle", bundle);
	ctr_path(c, "bundle/rootfs", rootfs);
	ctr_path(c, "upper", upper);
	ctr_path(c, "work", work);
	ctr_path(c, "bundle/config.json", config);
	ctr_path(c, "pid", pidf);
	ctr_path(c, "hostname", hostf);
	ctr_path(c, "hosts", hostsf);
	ctr_path(c, "resolv.conf", resolvf);
	snprintf(cg, sizeof(cg), "/shoal/%s", c->pub.id);

	rv = image_store_lookup(c->cs->cfg.images, c->pub.image_id.str, &img, &err);
	if (rv == 0)
		rv = image_store_layer_dirs(c->cs->cfg.images, img, &dirs, &n_dirs, &err);
	if (rv == 0)
		rv = rootfs_mount((const char *const *)dirs, n_dirs, upper, work, rootfs, &err);
	image_store_dirs_free(dirs, n_dirs);
	if (rv == 0)
		rv = write_etc(c, &err);
	if (rv == 0)
		rv = write_resolv(c, &err);
	if (rv == 0) {
		memset(&params, 0, sizeof(params));
		params.id = c->pub.id;
		params.rootfs = rootfs;
		params.cgroups_path = cg;
		params.hostname_file = hostf;
		params.hosts = hostsf;
		params.resolv_conf = resolvf;
		rv = bundle_config(&c->pub.spec, &img->config, &params, &cfg, &err);
	}
	if (rv == 0) {
		text = json_dumps(cfg, JSON_INDENT(1));
		json_decref(cfg);
		rv = text == NULL ? shoal_errf(&err, SHOAL_ENOMEM, "out of memory")
				  : fs_write_atomic(config, text, strlen(text), 0600, &err);
		free(text);
	}
	if (rv != 0) {
		start_fail(op, rv, err.msg);
		return;
	}
	unlink(pidf);
	n = runc_argv(c, argv, "create");
	argv[n++] = "--bundle";
	argv[n++] = bundle;
	argv[n++] = "--pid-file";
	argv[n++] = pidf;
	argv[n++] = c->pub.id;
	argv[n] = NULL;
	if (cmd_run(c, argv, fds, 0, created_cb, op, NULL, &err) != 0)
		start_fail(op, SHOAL_EIO, err.msg);
}

/* ---- cleanup ---- */

struct cleanup_op {
	struct ctr *c;
	void (*done)(struct ctr *c, int status, const char *msg);
	int status;
	char msg[SHOAL_ERR_LEN];
	struct start_op *start; /* undoing a failed start: answer it afterwards */
};

static bool oom_killed(const struct ctr *c)
{
	char path[PATH_MAX], *text = NULL, *p;
	size_t len;
	bool oom = false;

	/* cgroup v1 (this platform), else v2's memory.events. */
	snprintf(path, sizeof(path), "/sys/fs/cgroup/memory/shoal/%s/memory.oom_control",
		 c->pub.id);
	if (fs_read_all(path, 4096, &text, &len, NULL) != 0) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/shoal/%s/memory.events", c->pub.id);
		if (fs_read_all(path, 4096, &text, &len, NULL) != 0)
			text = NULL;
	}
	if (text != NULL) {
		p = strstr(text, "oom_kill ");
		oom = p != NULL && atoi(p + 9) > 0;
	}
	free(text);
	return oom;
}

static void deleted_cb(struct runc_cmd *cmd, int64_t status, int sig)
{
	struct cleanup_op *op = cmd->arg;
	struct ctr *c = op->c;
	struct shoal_err err;
	char rootfs[PATH_MAX];
	int rv = 0;

	if ((status != 0 || sig != 0) && op->status == 0) {
		runc_error(c, op->msg, sizeof(op->msg));
		/* "container does not exist" is what we wanted. */
		if (strstr(op->msg, "does not exist") == NULL)
			op->status = SHOAL_EIO;
	}
	ctr_path(c, "bundle/rootfs", rootfs);
	rv = rootfs_unmount(rootfs, &err);
	if (rv != 0 && op->status == 0) {
		op->status = rv;
		snprintf(op->msg, sizeof(op->msg), "%s", err.msg);
	}
	if ((c->pub.has_endpoint || ctr_has_address(c)) && c->cs->cfg.net != NULL &&
	    (ctr_net(c->cs, &err) == NULL || netw_detach(c->cs->net, c->pub.id, &err) != 0) &&
	    op->status == 0) {
		op->status = SHOAL_EIO;
		snprintf(op->msg, sizeof(op->msg), "%s", err.msg);
	}
	c->pub.has_endpoint = false;
	if (c->starting_pid != 0) {
		/* The init of a failed start, killed by runc delete: reap it. */
		c->starting_pid = 0;
		ctr_reap_orphans(c->cs);
	}
	if (op->start != NULL) {
		/* The start's own error is the one to report. */
		op->start->done(c, op->start->status, op->start->msg);
		free(op->start);
	} else {
		op->done(c, op->status, op->status != 0 ? op->msg : NULL);
	}
	free(op);
}

static void runc_cleanup(struct ctr *c, void (*done)(struct ctr *c, int status, const char *msg))
{
	struct cleanup_op *op = calloc(1, sizeof(*op));
	char *argv[RUNC_ARGS_MAX];
	struct shoal_err err;
	size_t n;

	if (op == NULL) {
		done(c, SHOAL_ENOMEM, "out of memory");
		return;
	}
	op->c = c;
	op->done = done;
	if (oom_killed(c))
		c->pub.oom_killed = true;
	ctr_path(c, "runc.log", c->runc_log);
	n = runc_argv(c, argv, "delete");
	argv[n++] = "--force";
	argv[n++] = c->pub.id;
	argv[n] = NULL;
	if (cmd_run(c, argv, NULL, 0, deleted_cb, op, NULL, &err) != 0) {
		free(op);
		done(c, SHOAL_EIO, err.msg);
	}
}

static void start_fail(struct start_op *op, int status, const char *msg)
{
	struct ctr *c = op->c;
	struct cleanup_op *cop = calloc(1, sizeof(*cop));
	char *argv[RUNC_ARGS_MAX];
	struct shoal_err err;
	size_t n;

	/* Undo what the start did (runc state, mount, address), then answer. */
	op->status = status;
	snprintf(op->msg, sizeof(op->msg), "%s", msg);
	if (cop != NULL) {
		cop->c = c;
		cop->start = op;
		n = runc_argv(c, argv, "delete");
		argv[n++] = "--force";
		argv[n++] = c->pub.id;
		argv[n] = NULL;
		if (cmd_run(c, argv, NULL, 0, deleted_cb, cop, NULL, &err) == 0)
			return;
		free(cop);
	}
	op->done(c, status, op->msg);
	free(op);
}

/* ---- health probes ---- */

static void probe_cb(struct runc_cmd *cmd, int64_t status, int sig)
{
	struct ctr_exec *ex = cmd->arg;
	struct ctr *c;
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	int code;

	if (ex->cancelled) {
		/* The container may be gone by now: do not touch it. */
		ex->done(ex->arg, -1, "", 0);
		free(ex);
		return;
	}
	c = cmd->c;
	if (c->exec == ex)
		c->exec = NULL;
	ctr_path(c, "health.out", path);
	if (fs_read_all(path, 1u << 20, &text, &len, NULL) != 0)
		len = 0;
	if (len > HEALTH_OUTPUT_MAX)
		len = HEALTH_OUTPUT_MAX;
	code = cmd->timed_out || sig != 0 ? -1 : (int)status;
	if (cmd->timed_out) {
		char msg[96];

		snprintf(msg, sizeof(msg), "Health check exceeded timeout (%llums)",
			 (unsigned long long)cmd->timeout_ms);
		ex->done(ex->arg, -1, msg, strlen(msg));
	} else {
		ex->done(ex->arg, code, text != NULL ? text : "", len);
	}
	free(text);
	free(ex);
}

static void runc_exec(struct ctr *c, const char *const *args, uint64_t timeout_ms,
		      void (*done)(void *arg, int exit_code, const char *out, size_t len),
		      void *arg)
{
	struct ctr_exec *ex = calloc(1, sizeof(*ex));
	char *argv[RUNC_ARGS_MAX + 64], path[PATH_MAX], pidf[PATH_MAX];
	struct shoal_err err;
	_cleanup_close_ int out = -1;
	int fds[3];
	size_t n, i;

	if (ex == NULL) {
		done(arg, -1, "out of memory", 13);
		return;
	}
	ex->done = done;
	ex->arg = arg;
	ctr_path(c, "health.out", path);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ctr_path(c, "runc.log", c->runc_log);
	ctr_path(c, "health.pid", pidf);
	unlink(pidf);
	n = runc_argv(c, argv, "exec");
	argv[n++] = "--pid-file";
	argv[n++] = pidf;
	argv[n++] = c->pub.id;
	for (i = 0; args[i] != NULL && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = unconst(args[i]);
	argv[n] = NULL;
	fds[0] = -1;
	fds[1] = fds[2] = out;
	if (out < 0 || cmd_run(c, argv, fds, timeout_ms, probe_cb, ex, &ex->cmd, &err) != 0) {
		free(ex);
		done(arg, -1, "the health check could not start", 32);
		return;
	}
	ex->cmd->timeout_ms = timeout_ms;
	snprintf(ex->cmd->pid_file, sizeof(ex->cmd->pid_file), "%s", pidf);
	c->exec = ex;
}

static void runc_exec_cancel(struct ctr *c)
{
	if (c->exec == NULL)
		return;
	c->exec->cancelled = true;
	cmd_kill(c->exec->cmd);
	c->exec = NULL;
}

const struct ctr_driver_ops ctr_runc_driver = {
    .name = "runc",
    .start = runc_start,
    .cleanup = runc_cleanup,
    .exec = runc_exec,
    .exec_cancel = runc_exec_cancel,
};
