/* The process driver: a task is a plain child process in its own session, same lifecycle and logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "runtime/bundle.h"
#include "runtime/container_priv.h"
#include "runtime/health.h"

/* No image root filesystem, no namespaces, no limits: the process runs on the
 * host as the daemon's user, in the image's working directory when the host
 * has it (else the container's directory), with the image's and spec's
 * environment. What it shares with the runc driver is everything the daemon
 * does around a process: FIFOs into the json-file log, the pidfd, stop grace,
 * exit codes, health probes, re-adoption. */

static char *no_env[] = {NULL};

static int spawn(struct ctr *c, char *const *argv, char *const *envp, const char *cwd, int out_fd,
		 int err_fd, int *pid, struct shoal_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rv;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	posix_spawn_file_actions_addchdir_np(&fa, cwd);
	/* Its own session (so its group can be killed as one), default signal
	 * dispositions (the daemon ignores SIGPIPE) and an empty mask. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
					    POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	rv = posix_spawnp(pid, argv[0], &fa, &attr, argv, envp != NULL ? envp : no_env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	(void)c;
	if (rv != 0)
		return shoal_errf(err, SHOAL_EIO, "exec: \"%s\": %s", argv[0],
				  rv == ENOENT ? "executable file not found in $PATH"
					       : strerror(rv));
	return 0;
}

static int resolve(struct ctr *c, struct bundle_process *proc, char cwd[PATH_MAX],
		   struct shoal_err *err)
{
	const struct image *img;
	struct stat st;
	int rv;

	rv = image_store_lookup(c->cs->cfg.images, c->pub.image_id.str, &img, err);
	if (rv == 0)
		rv = bundle_process_resolve(&c->pub.spec, &img->config, proc, err);
	if (rv != 0)
		return rv;
	if (proc->cwd != NULL && strcmp(proc->cwd, "/") != 0 && stat(proc->cwd, &st) == 0 &&
	    S_ISDIR(st.st_mode))
		snprintf(cwd, PATH_MAX, "%s", proc->cwd);
	else
		snprintf(cwd, PATH_MAX, "%s", c->dir);
	return 0;
}

static void process_start(struct ctr *c, int out_fd, int err_fd,
			  void (*done)(struct ctr *c, int status, const char *msg))
{
	struct bundle_process proc = {0};
	struct shoal_err err;
	char cwd[PATH_MAX];
	int pid, rv;

	rv = resolve(c, &proc, cwd, &err);
	if (rv == 0)
		rv = spawn(c, proc.args.items, proc.env.items, cwd, out_fd, err_fd, &pid, &err);
	bundle_process_free(&proc);
	if (rv == 0) {
		c->pgid = pid;
		rv = ctr_started(c, pid, &err);
		if (rv != 0) {
			kill(-pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	if (rv != 0) {
		done(c, rv, err.msg);
		return;
	}
	done(c, 0, NULL);
}

static void process_cleanup(struct ctr *c, void (*done)(struct ctr *c, int status, const char *msg))
{
	/* The task's leader is gone; what it left in its session goes too. */
	if (c->pgid > 0)
		kill(-c->pgid, SIGKILL);
	c->pgid = 0;
	done(c, 0, NULL);
}

/* ---- health probes: a child process with the task's environment ---- */

struct ctr_exec {
	uv_process_t proc;
	uv_timer_t timer;
	struct ctr *c;
	struct containers *cs;
	void (*done)(void *arg, int exit_code, const char *out, size_t len);
	void *arg;
	uint64_t timeout_ms;
	bool timed_out;
	bool cancelled;
	int closing;
	int64_t status;
	int sig;
};

static void probe_kill(struct ctr_exec *ex)
{
	/* The probe runs in its own session (UV_PROCESS_DETACHED): end it all. */
	if (ex->proc.pid > 0)
		kill(-ex->proc.pid, SIGKILL);
}

static void probe_closed(uv_handle_t *h)
{
	struct ctr_exec *ex = h->data;
	struct containers *cs = ex->cs;

	if (--ex->closing > 0)
		return;
	free(ex);
	ctr_release(cs);
}

static void probe_exit(uv_process_t *p, int64_t status, int sig)
{
	struct ctr_exec *ex = p->data;
	struct ctr *c = ex->c;
	char path[PATH_MAX], *text = NULL, msg[96];
	size_t len = 0;

	uv_timer_stop(&ex->timer);
	ctr_spawned(ex->cs, ex->proc.pid, false);
	probe_kill(ex); /* what it left behind */
	if (ex->cancelled) {
		ex->done(ex->arg, -1, "", 0);
	} else {
		if (c->exec == ex)
			c->exec = NULL;
		if (ex->timed_out) {
			snprintf(msg, sizeof(msg), "Health check exceeded timeout (%llums)",
				 (unsigned long long)ex->timeout_ms);
			ex->done(ex->arg, -1, msg, strlen(msg));
		} else {
			ctr_path(c, "health.out", path);
			if (fs_read_all(path, 1u << 20, &text, &len, NULL) != 0)
				len = 0;
			if (len > HEALTH_OUTPUT_MAX)
				len = HEALTH_OUTPUT_MAX;
			ex->done(ex->arg, sig != 0 ? -1 : (int)status, text != NULL ? text : "",
				 len);
			free(text);
		}
	}
	ex->closing = 2;
	uv_close((uv_handle_t *)&ex->timer, probe_closed);
	uv_close((uv_handle_t *)&ex->proc, probe_closed);
}

static void probe_timeout(uv_timer_t *t)
{
	struct ctr_exec *ex = t->data;

	ex->timed_out = true;
	probe_kill(ex);
}

static void process_exec(struct ctr *c, const char *const *argv, uint64_t timeout_ms,
			 void (*done)(void *arg, int exit_code, const char *out, size_t len),
			 void *arg)
{
	struct bundle_process proc = {0};
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	struct ctr_exec *ex = NULL;
	struct shoal_err err;
	char cwd[PATH_MAX], path[PATH_MAX];
	_cleanup_close_ int out = -1;
	int rv;

	ctr_path(c, "health.out", path);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ex = calloc(1, sizeof(*ex));
	if (out < 0 || ex == NULL || resolve(c, &proc, cwd, &err) != 0) {
		free(ex);
		bundle_process_free(&proc);
		done(arg, -1, "the health check could not start", 32);
		return;
	}
	ex->c = c;
	ex->cs = c->cs;
	ex->done = done;
	ex->arg = arg;
	ex->timeout_ms = timeout_ms;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = stdio[2].flags = UV_INHERIT_FD;
	stdio[1].data.fd = stdio[2].data.fd = out;
	memset(&opts, 0, sizeof(opts));
	opts.file = argv[0];
	opts.args = (char **)(uintptr_t)argv;
	opts.env = proc.env.items != NULL ? proc.env.items : no_env;
	opts.cwd = cwd;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.exit_cb = probe_exit;
	opts.flags = UV_PROCESS_DETACHED;
	ex->proc.data = ex;
	rv = uv_spawn(c->cs->cfg.loop, &ex->proc, &opts);
	bundle_process_free(&proc);
	c->cs->pending++;
	if (rv != 0) {
		ex->closing = 1;
		uv_close((uv_handle_t *)&ex->proc, probe_closed);
		done(arg, -1, "the health check could not start", 32);
		return;
	}
	if (ctr_spawned(c->cs, ex->proc.pid, true) != 0)
		probe_kill(ex);
	uv_timer_init(c->cs->cfg.loop, &ex->timer);
	ex->timer.data = ex;
	uv_timer_start(&ex->timer, probe_timeout, timeout_ms, 0);
	c->exec = ex;
}

static void process_exec_cancel(struct ctr *c)
{
	if (c->exec == NULL)
		return;
	c->exec->cancelled = true;
	probe_kill(c->exec);
	c->exec = NULL;
}

const struct ctr_driver_ops ctr_process_driver = {
    .name = "process",
    .start = process_start,
    .cleanup = process_cleanup,
    .exec = process_exec,
    .exec_cancel = process_exec_cancel,
};
