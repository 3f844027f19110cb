/* A running container's process: stdio FIFOs into the log, its pidfd, signals, exit status, probes.
 */
#ifndef SHOAL_RUNTIME_CTR_PROC_H
#define SHOAL_RUNTIME_CTR_PROC_H

#include <stdint.h>

#include "runtime/container_priv.h"

/* Open the log and both FIFOs: the daemon's non-blocking read ends (polled
 * from now on) and the container's read-write ends (c->out.child_fd, ...). */
int ctr_proc_open_stdio(struct ctr *c, struct shoal_err *err);
/* Close the container's ends once it holds its own copies. */
void ctr_proc_close_child_fds(struct ctr *c);
/* Drain what is left in the FIFOs into the log, stop polling, close the log. */
void ctr_proc_close_stdio(struct ctr *c);

/* After a daemon restart: open the pidfd of c->pub.pid, the FIFOs and the log. */
int ctr_proc_adopt(struct ctr *c, struct shoal_err *err);

/* Send @sig through the pidfd. */
int ctr_proc_signal(struct ctr *c, int sig, struct shoal_err *err);
/* @sig now, SIGKILL after @grace_ms if still running. */
void ctr_proc_stop(struct ctr *c, int sig, uint64_t grace_ms);

/* The state letter of /proc/PID/stat ("R", "S", "Z", ...). Returns 0 or -1. */
int ctr_proc_stat_state(int pid, char *out, size_t len);

/* Stop the stop-grace / exit-retry timer. */
void ctr_proc_timer_stop(struct ctr *c);
/* True while the pidfd is polled (its exit not yet seen). */
bool ctr_proc_watching(const struct ctr *c);

/* Start the health checker if the container has a check. */
void ctr_proc_health_start(struct ctr *c);

/* Close every handle of @c (pid poll, FIFO polls, timer, health), then call
 * @cb (at once if none is open). Waits for a start or cleanup in flight. */
void ctr_proc_close_handles(struct ctr *c, void (*cb)(struct ctr *c));

#endif
