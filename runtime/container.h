/* The containers of one node: create, start, stop, kill, remove, logs, health, re-adoption. */
#ifndef SHOAL_RUNTIME_CONTAINER_H
#define SHOAL_RUNTIME_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/err.h"
#include "runtime/ctr_spec.h"
#include "runtime/digest.h"
#include "runtime/health.h"
#include "runtime/image_store.h"
#include "runtime/netw.h"

/* One directory per container under the root given (STATE_DIR/containers):
 *
 *   <id>/container.json    the record: spec, image, state (written atomically)
 *   <id>/stdout, stderr    FIFOs: the container's stdio (the daemon reads them)
 *   <id>/<id>-json.log     the log, Docker's json-file format (runtime/logfile.h)
 *   <id>/bundle/           runc only: config.json and rootfs/ (the overlay mount)
 *   <id>/upper, work       runc only: the overlay's upper and work directories
 *   <id>/hostname, hosts, resolv.conf   runc only: bind-mounted into the container
 *
 * There is no helper process per container. The daemon is the child
 * subreaper (ctr_open sets PR_SET_CHILD_SUBREAPER), so a runc container's
 * init becomes its child once `runc create` exits; every running container is
 * watched through a pidfd (readable when it exits), which also gives the exit
 * status of a container that is no longer our child after a daemon restart
 * (PIDFD_INFO_EXIT). The container holds its FIFOs open for reading and
 * writing, so it never gets EPIPE while the daemon is down: its output waits
 * in the pipe (1 MiB) until the daemon is back.
 *
 * States (Docker's names): created -> running -> exited; removing while the
 * runtime cleans up; dead if cleaning up failed (remove again to retry).
 * A container that ended while the daemon was down is exited with code 255
 * and State.Error saying so: its status is lost with its parent. */

enum ctr_state { CTR_CREATED, CTR_RUNNING, CTR_EXITED, CTR_REMOVING, CTR_DEAD };

/* "created", "running", "exited", "removing", "dead". */
const char *ctr_state_name(enum ctr_state s);

enum ctr_driver { CTR_DRIVER_RUNC, CTR_DRIVER_PROCESS };

/* A container, as the API reads it. Owned by the containers object: valid
 * until the container is removed or the object closes; never modify it. */
struct container {
	char id[65];
	char name[CTR_NAME_MAX + 1];
	struct ctr_spec spec;
	struct digest image_id;
	char image_name[IMAGE_REF_MAX]; /* as resolved at create */
	struct oci_strlist args;	/* the resolved process: args[0] is Path */
	enum ctr_state state;
	enum ctr_driver driver;
	int pid; /* while running */
	int exit_code;
	bool oom_killed;
	char error[SHOAL_ERR_LEN + 64];		      /* State.Error */
	uint64_t created_ns, started_ns, finished_ns; /* CLOCK_REALTIME */
	int restart_count;
	bool has_endpoint;
	struct netw_endpoint endpoint;
	char log_path[4096];
	bool has_health;
	enum health_status health; /* HEALTH_NONE when there is no check */
	int health_failing_streak;
	struct health_result health_log[HEALTH_LOG_ENTRIES];
	size_t n_health_log;
};

/* Why an event was raised. */
enum ctr_event { CTR_EV_START, CTR_EV_EXIT, CTR_EV_HEALTH, CTR_EV_REMOVE };

struct ctr_config {
	uv_loop_t *loop;
	const char *root;	    /* STATE_DIR/containers */
	enum ctr_driver driver;	    /* for new containers */
	const char *runc;	    /* runc binary, NULL: "runc" on PATH */
	struct image_store *images; /* must outlive the containers object */
	/* Container networking, set up when the first container needs it (so a
	 * daemon that runs none never touches the network); NULL: none (lo only). */
	const struct netw_config *net;
	/* Raised after each change: the container is valid during the call. */
	void (*on_event)(void *arg, const struct container *c, enum ctr_event ev);
	void *arg;
};

struct containers;

/* Open the containers under cfg->root: load every record, re-adopt the
 * running ones (same pid and start time), mark as exited those that ended
 * meanwhile (raising CTR_EV_EXIT), restart log reading and health checks.
 * Sets the daemon as child subreaper. */
int ctr_open(const struct ctr_config *cfg, struct containers **out, struct shoal_err *err);

/* Stop watching and free everything once pending operations have finished,
 * then call @cb (may be NULL). Containers keep running. */
void ctr_close(struct containers *cs, void (*cb)(void *arg), void *arg);

/* Containers in creation order. */
size_t ctr_count(const struct containers *cs);
const struct container *ctr_at(const struct containers *cs, size_t i);

/* Find by full id, name (with or without a leading "/") or unique id prefix,
 * as Docker does. SHOAL_ENOTFOUND "No such container: X", or SHOAL_ECONFLICT
 * when a prefix is ambiguous. */
int ctr_lookup(const struct containers *cs, const char *ref, const struct container **out,
	       struct shoal_err *err);

/* Create a container from @spec (copied): resolve the image (SHOAL_ENOTFOUND
 * "No such image: X"), the process (bundle_process_resolve), a unique name
 * (spec->name, else a generated one; SHOAL_ECONFLICT "Conflict. The container
 * name \"/web\" is already in use by container \"<id>\". You have to remove
 * (or rename) that container to be able to reuse that name."), write its
 * directory and record. Nothing runs yet. */
int ctr_create(struct containers *cs, const struct ctr_spec *spec, const struct container **out,
	       struct shoal_err *err);

/* Completion of an asynchronous operation: @status 0 or a SHOAL_E* code with
 * @err's message. */
typedef void (*ctr_cb)(void *arg, int status, const char *err);

/* Start a created (or exited) container: mount the rootfs, write the bundle,
 * `runc create` with the FIFOs as stdio, attach the network, `runc start`
 * (or spawn the process). SHOAL_ESTATE if running ("container already
 * started": the API answers 304). On failure the container is exited with
 * State.Error set and exit code 127 or 128, as Docker reports it. */
void ctr_start(struct containers *cs, const char *id, ctr_cb cb, void *arg);

/* Stop: the stop signal, then SIGKILL after @timeout_s (-1: the spec's
 * StopTimeout, else 10). @cb fires once the container has exited.
 * SHOAL_ESTATE when not running (the API answers 304). */
void ctr_stop(struct containers *cs, const char *id, int timeout_s, ctr_cb cb, void *arg);

/* The node's container subnet (a swarm node's, handed out by the managers):
 * the network is (re)opened with gateway/prefix @bip ("10.89.3.1/24").
 * Before the network was first used: only remembered, for its first use.
 * Same bip as now: nothing to do. Another bip while no container holds an
 * address: the bridge is re-addressed (netw_open_readdress). Else
 * SHOAL_EBUSY ("containers still use the node's old subnet 10.88.0.1/16:
 * remove them, then restart the daemon"), nothing changed. SHOAL_EINVAL for
 * a bad bip, SHOAL_ENOTFOUND when networking is off (--bridge none). */
int ctr_net_set_bip(struct containers *cs, const char *bip, struct shoal_err *err);

/* Send @sig. SHOAL_ESTATE "Container <id> is not running". */
int ctr_kill(struct containers *cs, const char *id, int sig, struct shoal_err *err);

/* Wait until not running (@cb's status 0; read the exit code from the
 * container, which stays valid until removed). At once when not running. */
void ctr_wait(struct containers *cs, const char *id, ctr_cb cb, void *arg);

/* Remove: a running container needs @force (it is killed first), else
 * SHOAL_ECONFLICT with Docker's message. Then `runc delete`, unmount,
 * release the address, delete the directory and the record. @cb after it is
 * gone (CTR_EV_REMOVE raised before). */
void ctr_remove(struct containers *cs, const char *id, bool force, ctr_cb cb, void *arg);

/* Follow @id's log: @cb is called each time entries are appended, and once
 * when the container has exited (so a follower can end), until
 * ctr_log_unwatch() or the container is removed (then with @gone true; no
 * more calls after that). Returns a watch token > 0, or 0 when @id is unknown. */
uint64_t ctr_log_watch(struct containers *cs, const char *id, void (*cb)(void *arg, bool gone),
		       void *arg);
void ctr_log_unwatch(struct containers *cs, uint64_t token);

#endif
