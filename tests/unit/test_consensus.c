/* A one-voter raft whose log is on a small tmpfs that fills up: changes and
 * barriers are refused at once with an error that says so, nothing of them
 * reaches the log, raft restarts on the full disk, and once space is back
 * changes commit again, all of them still there after a restart. Needs root
 * (mount); skipped without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <uv.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/id.h"
#include "net/cert.h"
#include "raft/consensus.h"

static uv_loop_t loop;
static char tmp[64], dir[96], filler[96];
static bool mounted;
static struct identity root, key;
static char node_id[ID_LEN + 1];
static struct cert crt;
static struct stream_identity sid;
static struct secure_transport_config tcfg;
static struct consensus *c;
static unsigned applied;
static uint64_t last_value;

static int fsm_apply(void *arg, uint64_t index, const void *data, size_t len, void **result)
{
	(void)arg;
	(void)index;
	*result = NULL;
	if (len == sizeof(uint64_t)) {
		memcpy(&last_value, data, sizeof last_value);
		applied++;
	}
	return 0;
}

static int fsm_snapshot(void *arg, void **out, size_t *len)
{
	uint64_t *v = malloc(2 * sizeof *v);

	(void)arg;
	if (v == NULL)
		return -1;
	v[0] = applied;
	v[1] = last_value;
	*out = v;
	*len = 2 * sizeof *v;
	return 0;
}

static int fsm_restore(void *arg, const void *data, size_t len)
{
	uint64_t v[2];

	(void)arg;
	if (len != sizeof v)
		return -1;
	memcpy(v, data, sizeof v);
	applied = (unsigned)v[0];
	last_value = v[1];
	return 0;
}

static bool authorize(void *arg, const struct stream_peer *peer, uint64_t raft_id)
{
	(void)arg;
	(void)peer;
	(void)raft_id;
	return false;
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until @pred holds or @ms pass. */
static bool run_until(bool (*pred)(void *), void *arg, uint64_t ms)
{
	uv_timer_t t;
	uint64_t deadline;
	bool ok;

	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick, 10, 10);
	uv_update_time(&loop);
	deadline = uv_now(&loop) + ms;
	while (!(ok = pred(arg)) && uv_now(&loop) < deadline)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return ok;
}

static bool is_leader(void *arg)
{
	(void)arg;
	return consensus_is_leader(c);
}

static void start(enum consensus_mode mode)
{
	struct consensus_config cfg = {0};
	struct shoal_err err;

	cfg.id = 1;
	cfg.address = "127.0.0.1:9";
	cfg.dir = dir;
	cfg.election_timeout_ms = 100;
	cfg.heartbeat_timeout_ms = 20;
	cfg.fsm = (struct consensus_fsm){
	    .arg = NULL, .apply = fsm_apply, .snapshot = fsm_snapshot, .restore = fsm_restore};
	cfg.secure = &tcfg;
	if (consensus_start(&c, &loop, &cfg, mode, &err) != 0)
		fail_msg("consensus_start: %s", err.msg);
	assert_true(run_until(is_leader, NULL, 5000));
}

static bool closed;

static void on_closed(void *arg)
{
	(void)arg;
	closed = true;
}

static void stop(void)
{
	closed = false;
	consensus_close(c, on_closed, NULL);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_NOWAIT);
	c = NULL;
}

static int setup(void **state)
{
	struct shoal_err err;
	char opts[32];

	(void)state;
	if (sodium_init() < 0 || uv_loop_init(&loop) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/shoal-test-consensus.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	snprintf(opts, sizeof(opts), "size=%dm,mode=0700", 16);
	mounted = mount("shoal-test", tmp, "tmpfs", 0, opts) == 0;
	snprintf(dir, sizeof(dir), "%s/raft", tmp);
	snprintf(filler, sizeof(filler), "%s/filler", tmp);
	identity_generate(&root);
	identity_generate(&key);
	id_new(node_id);
	if (cert_issue(&crt, node_id, CERT_ROLE_MANAGER, key.pk, clock_now_ns(),
		       3600LL * 1000000000, &root, &err) != 0)
		return -1;
	sid.key = &key;
	sid.cert = &crt;
	memcpy(sid.root_pk, root.pk, IDENTITY_PK_LEN);
	tcfg = (struct secure_transport_config){.loop = &loop, .id = &sid, .authorize = authorize};
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (c != NULL)
		stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (mounted)
		umount(tmp);
	fs_rm_rf(tmp, NULL);
	return 0;
}

static unsigned long long free_bytes(void)
{
	struct statvfs st;

	assert_int_equal(statvfs(tmp, &st), 0);
	return (unsigned long long)st.f_bavail * st.f_frsize;
}

/* Take every free byte of the tmpfs. */
static void fill(void)
{
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char page[4096] = {0};

	assert_true(fd >= 0);
	/* All at once if tmpfs takes it, then page by page. */
	(void)posix_fallocate(fd, 0, (off_t)free_bytes());
	while (free_bytes() > 0 && write(fd, page, sizeof page) > 0)
		;
	close(fd);
	assert_true(free_bytes() == 0);
}

struct wait {
	int done;
	int status;
};

static void proposed(void *arg, int status, void *result)
{
	struct wait *w = arg;

	(void)result;
	w->status = status;
	w->done++;
}

static void barrier_done(void *arg, int status)
{
	proposed(arg, status, NULL);
}

static bool waited(void *arg)
{
	return ((struct wait *)arg)->done > 0;
}

static void propose_ok(uint64_t v)
{
	struct wait w = {0};
	struct shoal_err err;

	if (consensus_propose(c, &v, sizeof v, proposed, &w, &err) != 0)
		fail_msg("propose %llu: %s", (unsigned long long)v, err.msg);
	assert_true(run_until(waited, &w, 5000));
	assert_int_equal(w.status, 0);
}

static void a_full_disk_refuses_changes_and_recovers(void **state)
{
	struct shoal_err err;
	struct wait w = {0};
	uint64_t v = 100;

	(void)state;
	if (!mounted)
		skip(); /* not root: no tmpfs */
	start(CONSENSUS_BOOTSTRAP);
	for (uint64_t i = 1; i <= 3; i++)
		propose_ok(i);

	fill();
	assert_int_equal(consensus_propose(c, &v, sizeof v, proposed, &w, &err), SHOAL_EIO);
	assert_non_null(strstr(err.msg, "no space left on device"));
	assert_non_null(strstr(err.msg, dir));
	assert_int_equal(consensus_barrier(c, barrier_done, &w, &err), SHOAL_EIO);
	assert_non_null(strstr(err.msg, "no space left on device"));
	/* Neither callback fires, nothing is applied, the node still leads. */
	run_until(waited, &w, 300);
	assert_int_equal(w.done, 0);
	assert_int_equal(applied, 3);
	assert_true(consensus_is_leader(c));

	/* A restart on the full disk: raft starts (on the space it had put
	 * aside) and leads; with the disk still full it refuses. */
	stop();
	fill();
	applied = 0;
	start(CONSENSUS_RESUME);
	fill();
	w = (struct wait){0};
	assert_int_equal(consensus_propose(c, &v, sizeof v, proposed, &w, &err), SHOAL_EIO);
	assert_non_null(strstr(err.msg, "no space left on device"));

	assert_int_equal(unlink(filler), 0);
	for (uint64_t i = 4; i <= 6; i++)
		propose_ok(i);
	assert_true(last_value == 6);

	/* Everything committed is in the log, and the refused change is not. */
	stop();
	applied = 0;
	last_value = 0;
	start(CONSENSUS_RESUME);
	propose_ok(7);
	assert_int_equal(applied, 7);
	assert_true(last_value == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_full_disk_refuses_changes_and_recovers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
