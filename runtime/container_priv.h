/* Internals shared by container.c, ctr_proc.c and the drivers: not part of runtime's API. */
#ifndef SHOAL_RUNTIME_CONTAINER_PRIV_H
#define SHOAL_RUNTIME_CONTAINER_PRIV_H

#include <limits.h>

#include "runtime/container.h"
#include "runtime/logfile.h"

struct ctr;

/* A pending completion (start, stop, wait, remove). */
struct ctr_waiter {
	ctr_cb cb;
	void *arg;
	struct ctr_waiter *next;
};

/* A log follower. */
struct ctr_watch {
	uint64_t token;
	void (*cb)(void *arg, bool gone);
	void *arg;
	struct ctr_watch *next;
};

/* One stdio FIFO being read into the log. */
struct ctr_pipe {
	struct ctr *c;
	enum logfile_stream stream;
	int fd;	      /* read end, non-blocking; -1 when closed */
	int child_fd; /* the container's end (read-write) while a start is in flight */
	uv_poll_t poll;
	bool polling;
};

/* What a driver does; container.c does the rest (records, pidfd, logs, health). */
struct ctr_driver_ops {
	const char *name; /* "runc" or "process" (inspect's Driver is "overlay2" for runc) */
	/* Start @c's process with @out_fd/@err_fd as its stdout/stderr (the driver
	 * closes neither). On success call ctr_started(c, pid) before @done(c, 0,
	 * NULL); on failure @done(c, code, message) with nothing left running. */
	void (*start)(struct ctr *c, int out_fd, int err_fd,
		      void (*done)(struct ctr *c, int status, const char *msg));
	/* After the process exited (or before removing a container that never ran):
	 * release what start set up (runc delete, unmount, address). Always calls
	 * @done; an error leaves the container dead. */
	void (*cleanup)(struct ctr *c, void (*done)(struct ctr *c, int status, const char *msg));
	/* Run a health probe inside @c (see struct health_exec_ops). */
	void (*exec)(struct ctr *c, const char *const *argv, uint64_t timeout_ms,
		     void (*done)(void *arg, int exit_code, const char *out, size_t len),
		     void *arg);
	void (*exec_cancel)(struct ctr *c);
};

extern const struct ctr_driver_ops ctr_runc_driver;
extern const struct ctr_driver_ops ctr_process_driver;

/* Per-driver scratch, owned by the driver (freed by its cleanup). */
struct ctr_exec;

struct ctr {
	struct container pub;
	struct containers *cs;
	const struct ctr_driver_ops *ops;
	char dir[PATH_MAX];
	uint64_t pid_start; /* /proc/PID/stat starttime: the pid's identity */
	int pidfd;
	uv_poll_t pid_poll;
	bool pid_polling;
	uv_timer_t timer; /* stop grace, exit-status retries */
	bool timer_init;
	int exit_tries;
	struct ctr_pipe out, err;
	struct logfile *log;
	struct health *health;
	struct oci_strlist health_argv;
	struct oci_healthcheck health_check;
	struct ctr_exec *exec; /* the driver's running probe */
	int pgid;	       /* process driver: the task's process group */
	int starting_pid;      /* runc: the init between create and the pidfd: not an orphan */
	bool busy;	       /* a start or cleanup is in flight */
	bool start_deferred;   /* a start waits for the last run's handles to close */
	bool cleaned;	       /* the runtime holds nothing for it (runc state, mount, address) */
	int closing_count;     /* handles closing now */
	bool stopping;
	bool removing;
	bool closing_handles;
	/* Waiters being called (fire()): one of them may remove the container
	 * (the agent does), and ctr_free() then waits until they returned. */
	unsigned firing;
	bool free_deferred;
	int open_handles;		  /* handles whose close callback has not run */
	void (*on_closed)(struct ctr *c); /* once every handle is closed */
	struct ctr_waiter *start_waiters, *exit_waiters, *remove_waiters;
	struct ctr_watch *watches;
	char runc_log[PATH_MAX];
};

struct containers {
	struct ctr_config cfg;
	char root[PATH_MAX];
	char runc_root[PATH_MAX];
	struct ctr **v;
	size_t n, cap;
	struct netw_config net_cfg;
	char net_dir[PATH_MAX], net_bridge[NETW_IFNAME_MAX], net_bip[64];
	struct netw *net;    /* opened on first use */
	bool net_bip_set;    /* net_bip came from ctr_net_set_bip: open with readdress */
	uv_signal_t sigchld; /* reaps orphans re-parented to us (ctr_reap) */
	int *spawned;	     /* pids of libuv children: theirs to reap, not ours */
	size_t n_spawned, cap_spawned;
	uint64_t next_token;
	bool closing;
	int pending; /* operations and handles still to finish before free */
	void (*close_cb)(void *arg);
	void *close_arg;
};

/* Called by a driver once the process runs: opens the pidfd and records the pid. */
int ctr_started(struct ctr *c, int pid, struct shoal_err *err);

/* container.c, for ctr_proc.c and the drivers. */
int ctr_save(struct ctr *c, struct shoal_err *err);
void ctr_start_now(struct ctr *c); /* a deferred start, once closing_count is 0 */
void ctr_exited(struct ctr *c, int exit_code, const char *why);
void ctr_log_notify(struct ctr *c);
void ctr_release(struct containers *cs); /* drop a cs->pending hold */

/* Register (@add) or forget a pid spawned through uv_spawn: the orphan
 * reaper must leave it to libuv. Returns 0 or -1 (no memory: the caller
 * kills what it spawned). */
int ctr_spawned(struct containers *cs, int pid, bool add);

/* Reap the zombies among our children nobody waits for (also run on SIGCHLD). */
void ctr_reap_orphans(struct containers *cs);

/* The node's container network, opened on first use; NULL with @err set
 * when networking is off (SHOAL_ENOTFOUND) or cannot be set up. */
struct netw *ctr_net(struct containers *cs, struct shoal_err *err);

/* True if the network holds an address for @c (its allocation file exists). */
bool ctr_has_address(const struct ctr *c);

/* Record helpers for drivers. */
void ctr_path(const struct ctr *c, const char *name, char out[PATH_MAX]);

/* /proc/PID/stat's starttime, or 0 if there is no such process. */
uint64_t ctr_proc_starttime(int pid);

#endif
