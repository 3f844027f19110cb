/* The containers of one node: records, lookup, and the lifecycle every driver shares. */
#include "runtime/container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "runtime/bundle.h"
#include "runtime/container_priv.h"
#include "runtime/ctr_proc.h"
#include "runtime/ctr_record.h"
#include "runtime/netw_priv.h"
#include "runtime/rootfs.h"

#define RECORD_FILE "container.json"

/* ---- small helpers ---- */

void ctr_path(const struct ctr *c, const char *name, char out[PATH_MAX])
{
	/* c->dir is short (ctr_open checks the root's length): never truncated. */
	if (snprintf(out, PATH_MAX, "%s/%s", c->dir, name) >= PATH_MAX)
		out[0] = '\0';
}

static void waiters_fire(struct ctr_waiter **list, int status, const char *msg)
{
	struct ctr_waiter *w = *list, *next;

	*list = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg, status, msg);
		free(w);
	}
}

static void ctr_free(struct ctr *c);

/* Call the waiters of @list of @c. A waiter may remove @c (ctr_remove can
 * finish at once): returns true when @c is gone, and the caller must not
 * touch it any more. */
static bool fire(struct ctr *c, struct ctr_waiter **list, int status, const char *msg)
{
	c->firing++;
	waiters_fire(list, status, msg);
	if (--c->firing > 0 || !c->free_deferred)
		return false;
	c->free_deferred = false;
	ctr_free(c);
	return true;
}

static int waiter_add(struct ctr_waiter **list, ctr_cb cb, void *arg)
{
	struct ctr_waiter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	w->cb = cb;
	w->arg = arg;
	w->next = *list;
	*list = w;
	return 0;
}

static void emit(struct ctr *c, enum ctr_event ev)
{
	if (c->cs->cfg.on_event != NULL)
		c->cs->cfg.on_event(c->cs->cfg.arg, &c->pub, ev);
}

int ctr_save(struct ctr *c, struct shoal_err *err)
{
	char path[PATH_MAX];

	ctr_path(c, RECORD_FILE, path);
	return ctr_record_save(&c->pub, path, c->pid_start, err);
}

static void ctr_free(struct ctr *c)
{
	struct ctr_watch *w, *wn;

	if (c->firing > 0) {
		c->free_deferred = true; /* fire() frees it once the waiters returned */
		return;
	}
	ctr_spec_free(&c->pub.spec);
	oci_strlist_free(&c->pub.args);
	health_resolve_free(&c->health_check, &c->health_argv);
	for (w = c->watches; w != NULL; w = wn) {
		wn = w->next;
		free(w);
	}
	free(c);
}

static struct ctr *find_id(const struct containers *cs, const char *id)
{
	for (size_t i = 0; i < cs->n; i++)
		if (strcmp(cs->v[i]->pub.id, id) == 0)
			return cs->v[i];
	return NULL;
}

static int push(struct containers *cs, struct ctr *c)
{
	if (cs->n == cs->cap) {
		size_t cap = cs->cap == 0 ? 16 : cs->cap * 2;
		struct ctr **v = realloc(cs->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		cs->v = v;
		cs->cap = cap;
	}
	cs->v[cs->n++] = c;
	return 0;
}

static void unlink_ctr(struct containers *cs, struct ctr *c)
{
	for (size_t i = 0; i < cs->n; i++) {
		if (cs->v[i] == c) {
			memmove(&cs->v[i], &cs->v[i + 1], (cs->n - i - 1) * sizeof(cs->v[0]));
			cs->n--;
			return;
		}
	}
}

static struct ctr *ctr_new(struct containers *cs, const char *id)
{
	struct ctr *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->cs = cs;
	c->pidfd = -1;
	c->out.fd = c->err.fd = -1;
	c->out.child_fd = c->err.child_fd = -1;
	c->out.c = c->err.c = c;
	c->out.stream = LOGFILE_STDOUT;
	c->err.stream = LOGFILE_STDERR;
	memcpy(c->pub.id, id, 64);
	c->pub.id[64] = '\0';
	if (snprintf(c->dir, sizeof(c->dir), "%s/%s", cs->root, id) >= (int)sizeof(c->dir) ||
	    snprintf(c->pub.log_path, sizeof(c->pub.log_path), "%s/%s-json.log", c->dir, id) >=
		(int)sizeof(c->pub.log_path)) {
		free(c);
		return NULL;
	}
	return c;
}

/* ---- public reads ---- */

size_t ctr_count(const struct containers *cs)
{
	return cs->n;
}

const struct container *ctr_at(const struct containers *cs, size_t i)
{
	return i < cs->n ? &cs->v[i]->pub : NULL;
}

int ctr_lookup(const struct containers *cs, const char *ref, const struct container **out,
	       struct shoal_err *err)
{
	const struct container *hit = NULL;
	const char *name = ref[0] == '/' ? ref + 1 : ref;
	size_t len = strlen(ref), i;
	int matches = 0;

	for (i = 0; i < cs->n; i++) {
		if (strcmp(cs->v[i]->pub.id, ref) == 0) {
			*out = &cs->v[i]->pub;
			return 0;
		}
	}
	for (i = 0; i < cs->n; i++) {
		if (strcmp(cs->v[i]->pub.name, name) == 0) {
			*out = &cs->v[i]->pub;
			return 0;
		}
	}
	for (i = 0; len > 0 && i < cs->n; i++) {
		if (strncmp(cs->v[i]->pub.id, ref, len) == 0) {
			hit = &cs->v[i]->pub;
			matches++;
		}
	}
	if (matches == 1) {
		*out = hit;
		return 0;
	}
	if (matches > 1)
		return shoal_errf(err, SHOAL_ECONFLICT,
				  "multiple IDs found with provided prefix: %s", ref);
	return shoal_errf(err, SHOAL_ENOTFOUND, "No such container: %s", ref);
}

static struct ctr *lookup(struct containers *cs, const char *ref, struct shoal_err *err)
{
	const struct container *pub;

	if (ctr_lookup(cs, ref, &pub, err) != 0)
		return NULL;
	return find_id(cs, pub->id);
}

/* ---- create ---- */

static bool name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > CTR_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

/* Docker-like generated names: adjective_noun. */
static void name_generate(const struct containers *cs, char *out, size_t len)
{
	static const char *const adj[] = {"brave",  "calm",  "eager", "gentle", "happy",
					  "jolly",  "keen",  "lucid", "merry",	"nimble",
					  "proud",  "quiet", "rapid", "swift",	"tender",
					  "upbeat", "vivid", "wise",  "witty",	"zealous"};
	static const char *const noun[] = {"anchovy",  "barracuda", "cod",     "dory", "eel",
					   "flounder", "grouper",   "herring", "ide",  "jack",
					   "koi",      "ling",	    "marlin",  "nase", "orfe",
					   "perch",    "roach",	    "sprat",   "tuna", "wrasse"};
	const struct container *unused;

	for (;;) {
		snprintf(out, len, "%s_%s", adj[randombytes_uniform(ARRAY_SIZE(adj))],
			 noun[randombytes_uniform(ARRAY_SIZE(noun))]);
		if (ctr_lookup(cs, out, &unused, NULL) != 0)
			return;
		snprintf(out + strlen(out), len - strlen(out), "%u", randombytes_uniform(1000));
		if (ctr_lookup(cs, out, &unused, NULL) != 0)
			return;
	}
}

int ctr_create(struct containers *cs, const struct ctr_spec *spec, const struct container **out,
	       struct shoal_err *err)
{
	const struct image *img;
	const struct container *other;
	struct bundle_process proc = {0};
	struct ctr *c = NULL;
	unsigned char raw[32];
	char id[65], path[PATH_MAX];
	int rv;

	if (cs->closing)
		return shoal_errf(err, SHOAL_ESHUTDOWN, "the daemon is shutting down");
	if (spec->name != NULL) {
		if (!name_valid(spec->name[0] == '/' ? spec->name + 1 : spec->name))
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
			    "are allowed",
			    spec->name);
		if (ctr_lookup(cs, spec->name[0] == '/' ? spec->name + 1 : spec->name, &other,
			       NULL) == 0 &&
		    strcmp(other->name, spec->name[0] == '/' ? spec->name + 1 : spec->name) == 0)
			return shoal_errf(
			    err, SHOAL_ECONFLICT,
			    "Conflict. The container name \"/%s\" is already in use by "
			    "container \"%s\". You have to remove (or rename) that "
			    "container to be able to reuse that name.",
			    other->name, other->id);
	}
	rv = image_store_lookup(cs->cfg.images, spec->image, &img, err);
	if (rv != 0)
		return rv;
	rv = bundle_process_resolve(spec, &img->config, &proc, err);
	if (rv != 0)
		return rv;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(id, sizeof(id), raw, sizeof(raw));
	c = ctr_new(cs, id);
	if (c == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	rv = ctr_spec_copy(spec, &c->pub.spec, err);
	if (rv != 0)
		goto err;
	if (spec->name != NULL)
		snprintf(c->pub.name, sizeof(c->pub.name), "%s",
			 spec->name[0] == '/' ? spec->name + 1 : spec->name);
	else
		name_generate(cs, c->pub.name, sizeof(c->pub.name));
	c->pub.image_id = img->id;
	snprintf(c->pub.image_name, sizeof(c->pub.image_name), "%s",
		 img->names.n > 0 ? img->names.items[0] : img->id.str);
	if (oci_strlist_copy(&proc.args, &c->pub.args) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	c->pub.state = CTR_CREATED;
	c->pub.driver = cs->cfg.driver;
	c->ops = c->pub.driver == CTR_DRIVER_RUNC ? &ctr_runc_driver : &ctr_process_driver;
	c->pub.created_ns = (uint64_t)clock_now_ns();
	c->pub.exit_code = 0;

	rv = fs_mkdir_p(c->dir, 0700, err);
	if (rv != 0)
		goto err;
	ctr_path(c, "stdout", path);
	if (mkfifo(path, 0600) != 0 && errno != EEXIST) {
		rv = shoal_errf(err, SHOAL_EIO, "mkfifo %s: %s", path, strerror(errno));
		goto err_dir;
	}
	ctr_path(c, "stderr", path);
	if (mkfifo(path, 0600) != 0 && errno != EEXIST) {
		rv = shoal_errf(err, SHOAL_EIO, "mkfifo %s: %s", path, strerror(errno));
		goto err_dir;
	}
	ctr_path(c, RECORD_FILE, path);
	rv = ctr_record_save(&c->pub, path, 0, err);
	if (rv != 0)
		goto err_dir;
	if (push(cs, c) != 0) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err_dir;
	}
	bundle_process_free(&proc);
	*out = &c->pub;
	return 0;

err_dir:
	fs_rm_rf(c->dir, NULL);
err:
	bundle_process_free(&proc);
	if (c != NULL)
		ctr_free(c);
	return rv;
}

/* ---- start ---- */

static void start_done(struct ctr *c, int status, const char *msg);
static void remove_finish(struct ctr *c);

void ctr_start(struct containers *cs, const char *ref, ctr_cb cb, void *arg)
{
	struct shoal_err err;
	struct ctr *c = lookup(cs, ref, &err);

	if (c == NULL) {
		cb(arg, SHOAL_ENOTFOUND, err.msg);
		return;
	}
	if (cs->closing) {
		cb(arg, SHOAL_ESHUTDOWN, "the daemon is shutting down");
		return;
	}
	if (c->pub.state == CTR_RUNNING) {
		cb(arg, SHOAL_ESTATE, "container already started");
		return;
	}
	if (c->busy || c->removing || c->pub.state == CTR_REMOVING || c->pub.state == CTR_DEAD) {
		if (c->busy && c->pub.state != CTR_RUNNING && !c->removing &&
		    waiter_add(&c->start_waiters, cb, arg) == 0)
			return; /* a start is in flight: answer with its result */
		cb(arg, SHOAL_ESTATE,
		   c->pub.state == CTR_DEAD ? "container is dead: remove it"
					    : "container is being removed");
		return;
	}
	if (waiter_add(&c->start_waiters, cb, arg) != 0) {
		cb(arg, SHOAL_ENOMEM, "out of memory");
		return;
	}
	c->busy = true;
	if (c->closing_count > 0) {
		/* The last run's handles are still closing: start once they are. */
		c->start_deferred = true;
		return;
	}
	ctr_start_now(c);
}

void ctr_start_now(struct ctr *c)
{
	struct shoal_err err;
	int rv;

	c->start_deferred = false;
	c->stopping = false;
	c->pub.error[0] = '\0';
	c->pub.oom_killed = false;
	rv = ctr_proc_open_stdio(c, &err);
	if (rv != 0) {
		start_done(c, rv, err.msg);
		return;
	}
	c->ops->start(c, c->out.child_fd, c->err.child_fd, start_done);
}

/* Answer everyone waiting on @c's start, exit and removal: it will not come. */
static void waiters_fail_all(struct ctr *c, int status, const char *msg)
{
	waiters_fire(&c->start_waiters, status, msg);
	waiters_fire(&c->exit_waiters, status, msg);
	waiters_fire(&c->remove_waiters, status, msg);
}

static void start_done(struct ctr *c, int status, const char *msg)
{
	char copy[SHOAL_ERR_LEN + 64];
	struct shoal_err err;

	ctr_proc_close_child_fds(c);
	if (status != 0) {
		snprintf(copy, sizeof(copy), "%s", msg != NULL ? msg : "start failed");
		ctr_proc_close_stdio(c);
		c->busy = false;
		c->pub.state = CTR_EXITED;
		/* Docker: 127 when the command is not found, else 128. */
		c->pub.exit_code =
		    strstr(copy, "no such file") != NULL || strstr(copy, "not found") != NULL ? 127
											      : 128;
		snprintf(c->pub.error, sizeof(c->pub.error), "%s", copy);
		c->pub.finished_ns = (uint64_t)clock_now_ns();
		(void)ctr_save(c, NULL);
		if (fire(c, &c->start_waiters, status, copy) ||
		    fire(c, &c->exit_waiters, 0, NULL)) /* it is not running */
			return;
		if (c->closing_handles)
			ctr_proc_close_handles(c, c->on_closed);
		else if (c->removing)
			remove_finish(c);
		return;
	}
	c->busy = false;
	c->pub.state = CTR_RUNNING;
	c->pub.started_ns = (uint64_t)clock_now_ns();
	c->pub.finished_ns = 0;
	c->pub.exit_code = 0;
	if (ctr_save(c, &err) != 0) {
		/* A container the record does not know would be lost to the next
		 * daemon: end it (its exit arrives as usual) and fail the start. */
		snprintf(copy, sizeof(copy), "container started but its record was not saved: %s",
			 err.msg);
		ctr_proc_signal(c, SIGKILL, NULL);
		waiters_fire(&c->start_waiters, SHOAL_EIO, copy);
		return;
	}
	ctr_proc_health_start(c);
	emit(c, CTR_EV_START);
	if (fire(c, &c->start_waiters, 0, NULL))
		return;
	if (c->closing_handles)
		ctr_proc_close_handles(c, c->on_closed);
	else if (c->removing)
		remove_finish(c);
}

/* ---- exit (from ctr_proc.c) ---- */

static void exit_cleaned(struct ctr *c, int status, const char *msg);

void ctr_exited(struct ctr *c, int exit_code, const char *why)
{
	c->pub.exit_code = exit_code;
	c->pub.finished_ns = (uint64_t)clock_now_ns();
	if (why != NULL)
		snprintf(c->pub.error, sizeof(c->pub.error), "%s", why);
	c->pub.pid = 0;
	c->pid_start = 0;
	c->stopping = false;
	c->busy = true;
	c->cleaned = false;
	ctr_proc_timer_stop(c);
	c->ops->cleanup(c, exit_cleaned);
}

static void exit_cleaned(struct ctr *c, int status, const char *msg)
{
	c->busy = false;
	if (status != 0) {
		c->pub.state = CTR_DEAD;
		snprintf(c->pub.error, sizeof(c->pub.error), "%s",
			 msg != NULL ? msg : "cleanup failed");
	} else {
		c->pub.state = CTR_EXITED;
		c->cleaned = true;
	}
	(void)ctr_save(c, NULL);
	if (!c->cs->closing)
		emit(c, CTR_EV_EXIT);
	/* Log followers learn that nothing more will come. */
	ctr_log_notify(c);
	if (fire(c, &c->exit_waiters, 0, NULL))
		return; /* a waiter removed it: nothing of it is left to do */
	if (c->closing_handles)
		ctr_proc_close_handles(c, c->on_closed);
	else if (c->removing)
		remove_finish(c);
}

/* ---- stop, kill, wait ---- */

void ctr_stop(struct containers *cs, const char *ref, int timeout_s, ctr_cb cb, void *arg)
{
	struct shoal_err err;
	struct ctr *c = lookup(cs, ref, &err);
	int sig;

	if (c == NULL) {
		cb(arg, SHOAL_ENOTFOUND, err.msg);
		return;
	}
	if (c->pub.state != CTR_RUNNING) {
		cb(arg, SHOAL_ESTATE, "container already stopped");
		return;
	}
	if (waiter_add(&c->exit_waiters, cb, arg) != 0) {
		cb(arg, SHOAL_ENOMEM, "out of memory");
		return;
	}
	if (c->stopping || c->busy || c->pidfd < 0 || !ctr_proc_watching(c))
		return; /* being stopped, or its exit is being handled: just wait */
	if (timeout_s < 0)
		timeout_s = c->pub.spec.stop_timeout >= 0 ? (int)c->pub.spec.stop_timeout : 10;
	sig = c->pub.spec.stop_signal != NULL ? ctr_signal_parse(c->pub.spec.stop_signal) : SIGTERM;
	if (sig <= 0)
		sig = SIGTERM;
	c->stopping = true;
	ctr_proc_stop(c, sig, (uint64_t)timeout_s * 1000);
}

int ctr_kill(struct containers *cs, const char *ref, int sig, struct shoal_err *err)
{
	struct ctr *c = lookup(cs, ref, err);

	if (c == NULL)
		return SHOAL_ENOTFOUND;
	if (c->pub.state != CTR_RUNNING || c->pidfd < 0)
		return shoal_errf(err, SHOAL_ESTATE, "Container %s is not running", c->pub.id);
	return ctr_proc_signal(c, sig, err);
}

void ctr_wait(struct containers *cs, const char *ref, ctr_cb cb, void *arg)
{
	struct shoal_err err;
	struct ctr *c = lookup(cs, ref, &err);

	if (c == NULL) {
		cb(arg, SHOAL_ENOTFOUND, err.msg);
		return;
	}
	if (c->pub.state != CTR_RUNNING && !c->busy) {
		cb(arg, 0, NULL);
		return;
	}
	if (waiter_add(&c->exit_waiters, cb, arg) != 0)
		cb(arg, SHOAL_ENOMEM, "out of memory");
}

/* ---- remove ---- */

static const char *msg_running(const struct ctr *c, char *buf, size_t len)
{
	snprintf(buf, len,
		 "You cannot remove a running container %s. Stop the container before "
		 "attempting removal or force remove",
		 c->pub.id);
	return buf;
}

void ctr_remove(struct containers *cs, const char *ref, bool force, ctr_cb cb, void *arg)
{
	char buf[256];
	struct shoal_err err;
	struct ctr *c = lookup(cs, ref, &err);

	if (c == NULL) {
		cb(arg, SHOAL_ENOTFOUND, err.msg);
		return;
	}
	if (c->removing) {
		if (waiter_add(&c->remove_waiters, cb, arg) != 0)
			cb(arg, SHOAL_ENOMEM, "out of memory");
		return;
	}
	if ((c->pub.state == CTR_RUNNING || c->busy) && !force) {
		if (c->pub.state == CTR_RUNNING)
			cb(arg, SHOAL_ECONFLICT, msg_running(c, buf, sizeof(buf)));
		else
			cb(arg, SHOAL_ECONFLICT,
			   "container is starting: try again, or force remove");
		return;
	}
	if (waiter_add(&c->remove_waiters, cb, arg) != 0) {
		cb(arg, SHOAL_ENOMEM, "out of memory");
		return;
	}
	c->removing = true;
	if (c->pub.state == CTR_RUNNING) {
		ctr_proc_signal(c, SIGKILL, NULL);
		return; /* exit_cleaned() continues */
	}
	if (c->busy)
		return; /* start_done or exit_cleaned continues */
	remove_finish(c);
}

static void remove_handles_closed(struct ctr *c)
{
	struct containers *cs = c->cs;
	struct ctr_watch *w;

	char rootfs[PATH_MAX];

	ctr_path(c, "bundle/rootfs", rootfs);
	rootfs_unmount(rootfs, NULL);
	fs_rm_rf(c->dir, NULL);
	unlink_ctr(cs, c);
	emit(c, CTR_EV_REMOVE);
	for (w = c->watches; w != NULL; w = w->next)
		w->cb(w->arg, true);
	waiters_fire(&c->start_waiters, SHOAL_ENOTFOUND, "the container was removed");
	waiters_fire(&c->exit_waiters, 0, NULL);
	waiters_fire(&c->remove_waiters, 0, NULL);
	ctr_free(c);
}

static void remove_cleaned(struct ctr *c, int status, const char *msg)
{
	c->busy = false;
	if (status != 0) {
		/* Still dead: removing it again retries. */
		c->removing = false;
		c->pub.state = CTR_DEAD;
		snprintf(c->pub.error, sizeof(c->pub.error), "%s",
			 msg != NULL ? msg : "cleanup failed");
		(void)ctr_save(c, NULL);
		waiters_fire(&c->remove_waiters, SHOAL_EIO, c->pub.error);
		return;
	}
	c->cleaned = true;
	remove_finish(c);
}

static void remove_finish(struct ctr *c)
{
	if (c->busy) /* a start finished into running meanwhile: kill again */
		return;
	if (c->pub.state == CTR_RUNNING) {
		ctr_proc_signal(c, SIGKILL, NULL);
		return;
	}
	if (!c->cleaned) {
		/* Dead, or left half-started by a crash: runc state, mount and
		 * address may remain. Cleanup is idempotent: run it again. */
		c->busy = true;
		c->ops->cleanup(c, remove_cleaned);
		return;
	}
	c->pub.state = CTR_REMOVING;
	ctr_proc_close_handles(c, remove_handles_closed);
}

/* ---- logs ---- */

uint64_t ctr_log_watch(struct containers *cs, const char *id, void (*cb)(void *arg, bool gone),
		       void *arg)
{
	struct ctr *c = find_id(cs, id);
	struct ctr_watch *w;

	if (c == NULL || c->removing)
		return 0;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return 0;
	w->token = ++cs->next_token;
	w->cb = cb;
	w->arg = arg;
	w->next = c->watches;
	c->watches = w;
	return w->token;
}

void ctr_log_unwatch(struct containers *cs, uint64_t token)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct ctr_watch **p = &cs->v[i]->watches;

		for (; *p != NULL; p = &(*p)->next) {
			if ((*p)->token == token) {
				struct ctr_watch *w = *p;

				*p = w->next;
				free(w);
				return;
			}
		}
	}
}

void ctr_log_notify(struct ctr *c)
{
	struct ctr_watch *w, *next;

	for (w = c->watches; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg, false);
	}
}

/* ---- open, re-adopt, close ---- */

static void adopt(struct containers *cs, struct ctr *c)
{
	struct shoal_err err;

	c->ops = c->pub.driver == CTR_DRIVER_RUNC ? &ctr_runc_driver : &ctr_process_driver;
	/* Only an exited container is known to be cleaned up; a created one
	 * may be what a crash during its start left. */
	c->cleaned = c->pub.state == CTR_EXITED;
	if (c->pub.state == CTR_REMOVING || c->pub.state == CTR_DEAD) {
		c->pub.state = CTR_DEAD;
		return;
	}
	if (c->pub.state != CTR_RUNNING)
		return;
	if (ctr_has_address(c) && ctr_net(cs, NULL) != NULL &&
	    netw_lookup(cs->net, c->pub.id, &c->pub.endpoint) == 0)
		c->pub.has_endpoint = true;
	if (c->pub.pid > 0 && c->pid_start != 0 && ctr_proc_starttime(c->pub.pid) == c->pid_start) {
		if (c->pub.driver == CTR_DRIVER_PROCESS)
			c->pgid = c->pub.pid; /* its own session, hence group */
		if (ctr_proc_adopt(c, &err) == 0) {
			ctr_proc_health_start(c);
			return;
		}
		/* Still running, but we cannot watch it (no fds, no disk?): do
		 * not kill it; say so, and let a remove --force retry. */
		c->pub.state = CTR_DEAD;
		snprintf(c->pub.error, sizeof(c->pub.error), "could not re-adopt pid %d: %s",
			 c->pub.pid, err.msg);
		return;
	}
	/* It ended while we were away; its status went with its parent. */
	c->busy = true;
	ctr_exited(c, 255,
		   "the container exited while the shoal daemon was not running; its exit code "
		   "is unknown");
}

static void reap_orphans(uv_signal_t *h, int signum);

int ctr_open(const struct ctr_config *cfg, struct containers **out, struct shoal_err *err)
{
	struct containers *cs;
	struct dirent *de;
	DIR *d;
	int rv;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return shoal_errf(err, SHOAL_EIO, "become child subreaper: %s", strerror(errno));
	cs = calloc(1, sizeof(*cs));
	if (cs == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	cs->cfg = *cfg;
	if (strlen(cfg->root) > 1024) {
		free(cs);
		return shoal_errf(err, SHOAL_EINVAL, "the containers directory's path is too long");
	}
	snprintf(cs->root, sizeof(cs->root), "%s", cfg->root);
	if (cfg->net != NULL) {
		snprintf(cs->net_dir, sizeof(cs->net_dir), "%s", cfg->net->state_dir);
		snprintf(cs->net_bridge, sizeof(cs->net_bridge), "%s",
			 cfg->net->bridge != NULL ? cfg->net->bridge : NETW_DEFAULT_BRIDGE);
		snprintf(cs->net_bip, sizeof(cs->net_bip), "%s",
			 cfg->net->bip != NULL ? cfg->net->bip : NETW_DEFAULT_BIP);
		cs->net_cfg.state_dir = cs->net_dir;
		cs->net_cfg.bridge = cs->net_bridge;
		cs->net_cfg.bip = cs->net_bip;
		cs->cfg.net = &cs->net_cfg;
	}
	snprintf(cs->runc_root, sizeof(cs->runc_root), "%s/.runc", cfg->root);
	rv = fs_mkdir_p(cs->runc_root, 0700, err);
	if (rv != 0)
		goto err;
	d = opendir(cs->root);
	if (d == NULL) {
		rv = shoal_errf(err, SHOAL_EIO, "open %s: %s", cs->root, strerror(errno));
		goto err;
	}
	while ((de = readdir(d)) != NULL) {
		struct shoal_err lerr;
		char path[PATH_MAX];
		struct ctr *c;

		if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64)
			continue;
		c = ctr_new(cs, de->d_name);
		if (c == NULL) {
			closedir(d);
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto err;
		}
		ctr_path(c, RECORD_FILE, path);
		if (ctr_record_load(path, &c->pub, &c->pid_start, &lerr) != 0 ||
		    strcmp(c->pub.id, de->d_name) != 0) {
			/* A container whose record is unreadable (created and
			 * crashed before it was written): nothing can run it. */
			fs_rm_rf(c->dir, NULL);
			ctr_free(c);
			continue;
		}
		if (push(cs, c) != 0) {
			ctr_free(c);
			closedir(d);
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto err;
		}
	}
	closedir(d);
	/* Oldest first, as Docker lists them newest first from this order. */
	for (size_t i = 1; i < cs->n; i++)
		for (size_t j = i; j > 0 && cs->v[j - 1]->pub.created_ns > cs->v[j]->pub.created_ns;
		     j--) {
			struct ctr *t = cs->v[j];
			cs->v[j] = cs->v[j - 1];
			cs->v[j - 1] = t;
		}
	uv_signal_init(cfg->loop, &cs->sigchld);
	cs->sigchld.data = cs;
	cs->pending++; /* released when the signal handle has closed */
	uv_signal_start(&cs->sigchld, reap_orphans, SIGCHLD);
	for (size_t i = 0; i < cs->n; i++)
		adopt(cs, cs->v[i]);
	*out = cs;
	return 0;
err:
	for (size_t i = 0; i < cs->n; i++)
		ctr_free(cs->v[i]);
	free(cs->v);
	free(cs);
	return rv;
}

struct netw *ctr_net(struct containers *cs, struct shoal_err *err)
{
	int rv;

	if (cs->net != NULL)
		return cs->net;
	if (cs->cfg.net == NULL) {
		shoal_errf(err, SHOAL_ENOTFOUND, "container networking is off (--bridge none)");
		return NULL;
	}
	/* A bip handed out since the daemon started replaces the one the bridge
	 * may still have from before, as ctr_net_set_bip() does on an open one. */
	rv = cs->net_bip_set ? netw_open_readdress(cs->cfg.net, &cs->net, err)
			     : netw_open(cs->cfg.net, &cs->net, err);
	if (rv != 0) {
		shoal_err_wrap(err, "set up the container bridge %s", cs->net_bridge);
		cs->net = NULL;
	}
	return cs->net;
}

int ctr_net_set_bip(struct containers *cs, const char *bip, struct shoal_err *err)
{
	struct netw_config cfg;
	struct netw *n = NULL;
	uint32_t gw, old_gw;
	uint8_t prefix, old_prefix;
	int rv;

	if (cs->cfg.net == NULL)
		return shoal_errf(err, SHOAL_ENOTFOUND,
				  "container networking is off (--bridge none): no subnet to set");
	rv = netw_parse_bip(bip, &gw, &prefix, err);
	if (rv != 0)
		return rv;
	PRE(strlen(bip) < sizeof(cs->net_bip));
	if (cs->net == NULL) {
		snprintf(cs->net_bip, sizeof(cs->net_bip), "%s", bip);
		cs->net_bip_set = true;
		return 0;
	}
	if (netw_parse_bip(netw_bip(cs->net), &old_gw, &old_prefix, NULL) == 0 && gw == old_gw &&
	    prefix == old_prefix)
		return 0;
	if (netw_count(cs->net) > 0)
		return shoal_errf(err, SHOAL_EBUSY,
				  "containers still use the node's old subnet %s: remove them, "
				  "then restart the daemon",
				  netw_bip(cs->net));
	cfg = cs->net_cfg;
	cfg.bip = bip;
	rv = netw_open_readdress(&cfg, &n, err);
	if (rv != 0) {
		shoal_err_wrap(err, "re-address the container bridge %s for the subnet %s",
			       cs->net_bridge, bip);
		return rv;
	}
	netw_close(cs->net);
	cs->net = n;
	snprintf(cs->net_bip, sizeof(cs->net_bip), "%s", bip);
	cs->net_bip_set = true;
	return 0;
}

bool ctr_has_address(const struct ctr *c)
{
	char path[PATH_MAX];

	if (c->cs->cfg.net == NULL ||
	    snprintf(path, sizeof(path), "%s/%s", c->cs->net_dir, c->pub.id) >= (int)sizeof(path))
		return false;
	return fs_exists(path);
}

int ctr_spawned(struct containers *cs, int pid, bool add)
{
	if (!add) {
		for (size_t i = 0; i < cs->n_spawned; i++) {
			if (cs->spawned[i] == pid) {
				cs->spawned[i] = cs->spawned[--cs->n_spawned];
				break;
			}
		}
		return 0;
	}
	if (cs->n_spawned == cs->cap_spawned) {
		size_t cap = cs->cap_spawned == 0 ? 16 : cs->cap_spawned * 2;
		int *v = realloc(cs->spawned, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		cs->spawned = v;
		cs->cap_spawned = cap;
	}
	cs->spawned[cs->n_spawned++] = pid;
	return 0;
}

/* Ours to reap: not a libuv child, not a container init (ctr_proc.c reaps
 * those through their pidfd). */
static bool reapable(const struct containers *cs, int pid)
{
	for (size_t i = 0; i < cs->n_spawned; i++)
		if (cs->spawned[i] == pid)
			return false;
	for (size_t i = 0; i < cs->n; i++)
		if ((cs->v[i]->pub.pid == pid && cs->v[i]->pidfd >= 0) ||
		    cs->v[i]->starting_pid == pid)
			return false;
	return true;
}

/* As child subreaper we inherit every orphan below us: a process-driver
 * task's leftovers, a health probe's command whose `runc exec` was killed, a
 * container init killed by `runc delete` after a failed start. Reap the
 * zombies among our children that nobody else waits for. */
static void reap_orphans(uv_signal_t *h, int signum)
{
	(void)signum;
	ctr_reap_orphans(h->data);
}

void ctr_reap_orphans(struct containers *cs)
{
	char path[64], buf[4096], state[8];
	struct dirent *de;
	DIR *tasks;

	tasks = opendir("/proc/self/task");
	if (tasks == NULL)
		return;
	while ((de = readdir(tasks)) != NULL) {
		char *p, *end;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.16s/children", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (p = buf;; p = end) {
			long pid = strtol(p, &end, 10);

			if (end == p)
				break;
			if (pid > 0 && reapable(cs, (int)pid) &&
			    ctr_proc_stat_state((int)pid, state, sizeof(state)) == 0 &&
			    state[0] == 'Z')
				(void)waitpid((pid_t)pid, NULL, WNOHANG);
		}
	}
	closedir(tasks);
}

static void sigchld_closed(uv_handle_t *h)
{
	ctr_release(h->data);
}

static void maybe_free(struct containers *cs)
{
	if (!cs->closing || cs->pending > 0 || cs->n > 0)
		return;
	netw_close(cs->net);
	free(cs->spawned);
	free(cs->v);
	if (cs->close_cb != NULL)
		cs->close_cb(cs->close_arg);
	free(cs);
}

void ctr_release(struct containers *cs)
{
	cs->pending--;
	maybe_free(cs);
}

static void closed_one(struct ctr *c)
{
	struct containers *cs = c->cs;
	struct ctr_watch *w;

	unlink_ctr(cs, c);
	for (w = c->watches; w != NULL; w = w->next)
		w->cb(w->arg, true);
	waiters_fail_all(c, SHOAL_ESHUTDOWN, "the daemon is shutting down");
	ctr_free(c);
	maybe_free(cs);
}

void ctr_close(struct containers *cs, void (*cb)(void *arg), void *arg)
{
	if (cs == NULL) {
		if (cb != NULL)
			cb(arg);
		return;
	}
	cs->closing = true;
	cs->close_cb = cb;
	cs->close_arg = arg;
	cs->pending++; /* held while handles are asked to close */
	uv_signal_stop(&cs->sigchld);
	uv_close((uv_handle_t *)&cs->sigchld, sigchld_closed); /* its hold: see ctr_open */
	for (size_t i = cs->n; i-- > 0;)
		ctr_proc_close_handles(cs->v[i], closed_one);
	ctr_release(cs);
}
