/* A running container's process: stdio FIFOs into the log, its pidfd, signals, exit status, probes.
 */
#include "runtime/ctr_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fsutil.h"

#define PIPE_SIZE	 (1 << 20) /* the container's output waits here while we are away */
#define READ_CHUNK	 (64u << 10)
#define EXIT_RETRY_MS	 20
#define EXIT_RETRY_TRIES 50

/* PIDFD_GET_INFO (Linux 6.13) and PIDFD_INFO_EXIT (6.15): the exit status of
 * a process that is not our child, once its parent reaped it. Declared here
 * because the build machine's headers predate them; the kernel accepts this
 * first version of the structure (64 bytes). */
struct ctr_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define CTR_PIDFD_GET_INFO  _IOWR(0xFF, 11, struct ctr_pidfd_info)
#define CTR_PIDFD_INFO_EXIT (1ULL << 3)

/* ---- /proc ---- */

/* Fields of /proc/PID/stat after the command (which may hold spaces and
 * parentheses): @idx counts from 3 (the state) as proc(5) numbers them. */
static int stat_field(int pid, int idx, char *out, size_t len)
{
	char path[64], buf[2048], *p, *save = NULL, *tok;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	for (i = 3, tok = strtok_r(p + 1, " \n", &save); tok != NULL;
	     i++, tok = strtok_r(NULL, " \n", &save)) {
		if (i == idx) {
			snprintf(out, len, "%s", tok);
			return 0;
		}
	}
	return -1;
}

int ctr_proc_stat_state(int pid, char *out, size_t len)
{
	return stat_field(pid, 3, out, len);
}

uint64_t ctr_proc_starttime(int pid)
{
	char v[32];

	if (pid <= 0 || stat_field(pid, 22, v, sizeof(v)) != 0)
		return 0;
	return strtoull(v, NULL, 10);
}

/* A wait status as Docker reports it: the code, or 128 + the signal. */
static int wait_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* 0 with *@code when the exit status is known, 1 when not yet, -1 never. */
static int exit_status(struct ctr *c, int *code)
{
	struct ctr_pidfd_info info = {.mask = CTR_PIDFD_INFO_EXIT};
	siginfo_t si;
	char v[32];

	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) == 0) {
		if (si.si_pid == 0)
			return 1; /* our child, still running */
		*code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
		return 0;
	}
	if (errno != ECHILD)
		return -1;
	/* Not our child (we were restarted). Its parent may have reaped it... */
	if (ioctl(c->pidfd, CTR_PIDFD_GET_INFO, &info) == 0 && (info.mask & CTR_PIDFD_INFO_EXIT)) {
		*code = wait_code(info.exit_code);
		return 0;
	}
	/* ...or it is still a zombie, whose proc(5) field 52 holds the wait
	 * status. The pid is ours only if its start time matches, and it is
	 * still unreaped (so not reused) if the pidfd can signal it after. */
	if (ctr_proc_starttime(c->pub.pid) == c->pid_start &&
	    stat_field(c->pub.pid, 3, v, sizeof(v)) == 0 && v[0] == 'Z' &&
	    stat_field(c->pub.pid, 52, v, sizeof(v)) == 0 &&
	    pidfd_send_signal(c->pidfd, 0, NULL, 0) == 0) {
		*code = wait_code(atoi(v));
		return 0;
	}
	return 1;
}

/* ---- handles ---- */

static void handle_closed(uv_handle_t *h)
{
	struct ctr *c = h->data;

	c->open_handles--;
	c->closing_count--;
	if (c->closing_count == 0 && c->start_deferred && !c->closing_handles && !c->cs->closing) {
		ctr_start_now(c);
		return;
	}
	if (c->closing_handles && c->open_handles == 0 && c->on_closed != NULL) {
		void (*cb)(struct ctr *) = c->on_closed;

		c->on_closed = NULL;
		cb(c);
	}
}

static void close_handle(struct ctr *c, uv_handle_t *h)
{
	h->data = c;
	c->closing_count++;
	uv_close(h, handle_closed);
}

/* ---- stdio ---- */

static void pipe_drain(struct ctr_pipe *p)
{
	struct ctr *c = p->c;
	char *buf;
	ssize_t n;
	bool wrote = false;

	if (p->fd < 0)
		return;
	buf = malloc(READ_CHUNK);
	if (buf == NULL)
		return;
	for (;;) {
		n = read(p->fd, buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (c->log != NULL)
			logfile_write(c->log, p->stream, buf, (size_t)n, (uint64_t)clock_now_ns(),
				      NULL);
		wrote = true;
	}
	free(buf);
	if (n == 0 && p->polling) /* no writer left */
		uv_poll_stop(&p->poll);
	if (wrote)
		ctr_log_notify(c);
}

static void pipe_cb(uv_poll_t *h, int status, int events)
{
	struct ctr_pipe *p = (struct ctr_pipe *)((char *)h - offsetof(struct ctr_pipe, poll));

	(void)status;
	(void)events;
	if (p->c->cs->closing) {
		uv_poll_stop(h); /* level-triggered: do not spin until it is closed */
		return;
	}
	pipe_drain(p);
}

static int pipe_open(struct ctr *c, struct ctr_pipe *p, const char *name, bool child,
		     struct shoal_err *err)
{
	char path[PATH_MAX];

	ctr_path(c, name, path);
	if (child) {
		/* Read-write: the container never sees EPIPE while we are away. */
		p->child_fd = open(path, O_RDWR | O_CLOEXEC);
		if (p->child_fd < 0)
			return shoal_errf(err, SHOAL_EIO, "open %s: %s", path, strerror(errno));
		(void)fcntl(p->child_fd, F_SETPIPE_SZ, PIPE_SIZE);
	}
	p->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (p->fd < 0)
		return shoal_errf(err, SHOAL_EIO, "open %s: %s", path, strerror(errno));
	if (uv_poll_init(c->cs->cfg.loop, &p->poll, p->fd) != 0) {
		close(p->fd);
		p->fd = -1;
		return shoal_errf(err, SHOAL_EIO, "watch %s", path);
	}
	p->poll.data = c;
	p->polling = true;
	c->open_handles++;
	uv_poll_start(&p->poll, UV_READABLE, pipe_cb);
	return 0;
}

static void pipe_close(struct ctr *c, struct ctr_pipe *p)
{
	if (p->child_fd >= 0) {
		close(p->child_fd);
		p->child_fd = -1;
	}
	if (!p->polling)
		return;
	pipe_drain(p);
	uv_poll_stop(&p->poll);
	close(p->fd);
	p->fd = -1;
	p->polling = false;
	close_handle(c, (uv_handle_t *)&p->poll);
}

static int log_open(struct ctr *c, struct shoal_err *err)
{
	uint64_t size = c->pub.spec.log_max_size > 0 ? (uint64_t)c->pub.spec.log_max_size
						     : LOGFILE_DEFAULT_MAX_SIZE;
	int files =
	    c->pub.spec.log_max_file > 0 ? c->pub.spec.log_max_file : LOGFILE_DEFAULT_MAX_FILE;

	if (c->log != NULL)
		return 0;
	return logfile_open(c->pub.log_path, size, files, &c->log, err);
}

int ctr_proc_open_stdio(struct ctr *c, struct shoal_err *err)
{
	int rv;

	c->out.child_fd = c->err.child_fd = -1;
	rv = log_open(c, err);
	if (rv == 0)
		rv = pipe_open(c, &c->out, "stdout", true, err);
	if (rv == 0)
		rv = pipe_open(c, &c->err, "stderr", true, err);
	if (rv != 0)
		ctr_proc_close_stdio(c);
	return rv;
}

void ctr_proc_close_child_fds(struct ctr *c)
{
	if (c->out.child_fd >= 0)
		close(c->out.child_fd);
	if (c->err.child_fd >= 0)
		close(c->err.child_fd);
	c->out.child_fd = c->err.child_fd = -1;
}

void ctr_proc_close_stdio(struct ctr *c)
{
	pipe_close(c, &c->out);
	pipe_close(c, &c->err);
	if (c->log != NULL) {
		logfile_close(c->log);
		c->log = NULL;
		ctr_log_notify(c);
	}
}

/* ---- the process ---- */

void ctr_proc_timer_stop(struct ctr *c)
{
	if (c->timer_init)
		uv_timer_stop(&c->timer);
}

bool ctr_proc_watching(const struct ctr *c)
{
	return c->pid_polling;
}

static void timer_ensure(struct ctr *c)
{
	if (c->timer_init)
		return;
	uv_timer_init(c->cs->cfg.loop, &c->timer);
	c->timer.data = c;
	c->timer_init = true;
	c->open_handles++;
}

static void pid_close(struct ctr *c)
{
	if (c->pid_polling) {
		uv_poll_stop(&c->pid_poll);
		c->pid_polling = false;
		close_handle(c, (uv_handle_t *)&c->pid_poll);
	}
	if (c->pidfd >= 0) {
		close(c->pidfd);
		c->pidfd = -1;
	}
}

static void process_ended(struct ctr *c, int code)
{
	if (c->timer_init)
		uv_timer_stop(&c->timer);
	if (c->health != NULL) {
		c->pub.health_failing_streak = health_failing_streak(c->health);
		health_stop(c->health);
		c->health = NULL;
	}
	pid_close(c);
	ctr_proc_close_stdio(c);
	ctr_exited(c, code, NULL);
}

static void check_exit(struct ctr *c);

static void exit_retry_cb(uv_timer_t *t)
{
	struct ctr *c = t->data;

	if (c->cs->closing)
		return;
	check_exit(c);
}

static void check_exit(struct ctr *c)
{
	int code = 255, rv;

	rv = exit_status(c, &code);
	if (rv == 1 && ctr_proc_starttime(c->pub.pid) == c->pid_start && c->pid_start != 0) {
		/* Readable pidfd but no status yet: the parent has not reaped it. */
		if (++c->exit_tries <= EXIT_RETRY_TRIES) {
			timer_ensure(c);
			uv_timer_start(&c->timer, exit_retry_cb, EXIT_RETRY_MS, 0);
			return;
		}
	}
	if (rv != 0) {
		code = 255;
		snprintf(c->pub.error, sizeof(c->pub.error), "the exit status of pid %d was lost",
			 c->pub.pid);
	}
	process_ended(c, code);
}

static void pid_cb(uv_poll_t *h, int status, int events)
{
	struct ctr *c = h->data;

	(void)status;
	(void)events;
	if (c->cs->closing || !c->pid_polling)
		return;
	uv_poll_stop(&c->pid_poll);
	c->exit_tries = 0;
	check_exit(c);
}

static int pid_watch(struct ctr *c, int pid, struct shoal_err *err)
{
	c->pidfd = pidfd_open(pid, 0);
	if (c->pidfd < 0)
		return shoal_errf(err, SHOAL_EIO, "watch pid %d: %s", pid, strerror(errno));
	if (uv_poll_init(c->cs->cfg.loop, &c->pid_poll, c->pidfd) != 0) {
		close(c->pidfd);
		c->pidfd = -1;
		return shoal_errf(err, SHOAL_EIO, "watch pid %d", pid);
	}
	c->pid_poll.data = c;
	c->pid_polling = true;
	c->open_handles++;
	c->pub.pid = pid;
	uv_poll_start(&c->pid_poll, UV_READABLE, pid_cb);
	return 0;
}

int ctr_started(struct ctr *c, int pid, struct shoal_err *err)
{
	c->pid_start = ctr_proc_starttime(pid);
	if (c->pid_start == 0)
		return shoal_errf(err, SHOAL_EIO, "the container's process %d is gone", pid);
	return pid_watch(c, pid, err);
}

int ctr_proc_adopt(struct ctr *c, struct shoal_err *err)
{
	int rv;

	c->out.child_fd = c->err.child_fd = -1;
	rv = pid_watch(c, c->pub.pid, err);
	if (rv != 0)
		return rv;
	/* The pid could have been reused between the check and pidfd_open. */
	if (ctr_proc_starttime(c->pub.pid) != c->pid_start) {
		pid_close(c);
		return shoal_errf(err, SHOAL_ENOTFOUND, "pid %d is another process", c->pub.pid);
	}
	rv = log_open(c, err);
	if (rv == 0)
		rv = pipe_open(c, &c->out, "stdout", false, err);
	if (rv == 0)
		rv = pipe_open(c, &c->err, "stderr", false, err);
	if (rv != 0) {
		ctr_proc_close_stdio(c);
		pid_close(c);
	}
	return rv;
}

int ctr_proc_signal(struct ctr *c, int sig, struct shoal_err *err)
{
	if (c->pidfd < 0)
		return shoal_errf(err, SHOAL_ESTATE, "Container %s is not running", c->pub.id);
	if (pidfd_send_signal(c->pidfd, sig, NULL, 0) != 0 && errno != ESRCH)
		return shoal_errf(err, SHOAL_EIO, "signal %d to container %s: %s", sig, c->pub.id,
				  strerror(errno));
	return 0;
}

static void grace_cb(uv_timer_t *t)
{
	struct ctr *c = t->data;

	if (c->cs->closing || c->pub.state != CTR_RUNNING)
		return;
	ctr_proc_signal(c, SIGKILL, NULL);
}

void ctr_proc_stop(struct ctr *c, int sig, uint64_t grace_ms)
{
	ctr_proc_signal(c, sig, NULL);
	timer_ensure(c);
	uv_timer_start(&c->timer, grace_cb, grace_ms, 0);
}

/* ---- health ---- */

static void health_changed(void *arg, enum health_status status)
{
	struct ctr *c = arg;
	const struct health_result *log;
	size_t n;

	c->pub.health = status;
	c->pub.health_failing_streak = health_failing_streak(c->health);
	log = health_log(c->health, &n);
	memcpy(c->pub.health_log, log, n * sizeof(*log));
	c->pub.n_health_log = n;
	if (c->cs->cfg.on_event != NULL)
		c->cs->cfg.on_event(c->cs->cfg.arg, &c->pub, CTR_EV_HEALTH);
}

static void exec_run(void *arg, const char *const *argv, uint64_t timeout_ms,
		     void (*done)(void *done_arg, int exit_code, const char *output, size_t len),
		     void *done_arg)
{
	struct ctr *c = arg;

	c->ops->exec(c, argv, timeout_ms, done, done_arg);
}

static void exec_cancel(void *arg)
{
	struct ctr *c = arg;

	c->ops->exec_cancel(c);
}

void ctr_proc_health_start(struct ctr *c)
{
	const struct oci_healthcheck *image_check = NULL;
	const struct image *img;
	struct health_exec_ops ops = {.run = exec_run, .cancel = exec_cancel, .arg = c};
	struct shoal_err err;
	int rv;

	if (c->health != NULL)
		return;
	if (image_store_lookup(c->cs->cfg.images, c->pub.image_id.str, &img, NULL) == 0)
		image_check = &img->config.healthcheck;
	health_resolve_free(&c->health_check, &c->health_argv);
	memset(&c->health_argv, 0, sizeof(c->health_argv));
	memset(&c->health_check, 0, sizeof(c->health_check));
	rv = health_resolve(&c->pub.spec.health, image_check, &c->health_check, &c->health_argv,
			    &err);
	if (rv <= 0) {
		c->pub.has_health = false;
		c->pub.health = HEALTH_NONE;
		return;
	}
	c->pub.has_health = true;
	c->pub.n_health_log = 0;
	c->pub.health_failing_streak = 0;
	if (health_start(c->cs->cfg.loop, &c->health_check, &ops, health_changed, c, &c->health,
			 &err) != 0) {
		snprintf(c->pub.error, sizeof(c->pub.error), "health check: %s", err.msg);
		return;
	}
	c->pub.health = HEALTH_STARTING;
}

/* ---- closing ---- */

void ctr_proc_close_handles(struct ctr *c, void (*cb)(struct ctr *c))
{
	c->closing_handles = true;
	c->on_closed = cb;
	if (c->busy)
		return; /* the start or cleanup in flight calls us again */
	if (c->health != NULL) {
		health_stop(c->health);
		c->health = NULL;
	}
	if (c->exec != NULL)
		c->ops->exec_cancel(c);
	pid_close(c);
	pipe_close(c, &c->out);
	pipe_close(c, &c->err);
	if (c->log != NULL) {
		logfile_close(c->log);
		c->log = NULL;
	}
	if (c->timer_init) {
		uv_timer_stop(&c->timer);
		c->timer_init = false;
		close_handle(c, (uv_handle_t *)&c->timer);
	}
	if (c->open_handles == 0 && c->on_closed != NULL) {
		c->on_closed = NULL;
		cb(c);
	}
}
