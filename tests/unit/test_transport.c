/* Raft over secure streams: three real raft servers (raft_uv I/O on disk) on
 * 127.0.0.1 whose only connections are secure streams handed over by their
 * listeners. Membership grows by consensus_add_voter, commands replicate, the
 * leader is lost and a new one keeps the log going. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "net/cert.h"
#include "net/stream.h"
#include "raft/consensus.h"

#define N 3

struct node {
	int index;
	uint64_t raft_id;
	char node_id[ID_LEN + 1];
	char addr[32];
	char dir[96];
	struct identity key;
	struct cert cert;
	struct stream_identity sid;
	struct secure_transport_config tcfg;
	struct stream_listener *listener;
	struct consensus *c;
	unsigned applied;
	uint64_t last_value;
	bool consensus_closed;
	bool listener_closed;
	unsigned raft_refused;
};

static uv_loop_t loop;
static struct identity root;
static struct node nodes[N];
static char tmp[64];

static int fsm_apply(void *arg, uint64_t index, const void *data, size_t len, void **result)
{
	struct node *n = arg;

	(void)index;
	*result = NULL;
	if (len == sizeof(uint64_t)) {
		memcpy(&n->last_value, data, sizeof(uint64_t));
		n->applied++;
	}
	return 0;
}

static int fsm_snapshot(void *arg, void **out, size_t *len)
{
	struct node *n = arg;
	uint64_t *v = malloc(2 * sizeof *v);

	if (v == NULL)
		return -1;
	v[0] = n->applied;
	v[1] = n->last_value;
	*out = v;
	*len = 2 * sizeof *v;
	return 0;
}

static int fsm_restore(void *arg, const void *data, size_t len)
{
	struct node *n = arg;
	uint64_t v[2];

	if (len != sizeof v)
		return -1;
	memcpy(v, data, sizeof v);
	n->applied = (unsigned)v[0];
	n->last_value = v[1];
	return 0;
}

/* Only managers of this cluster, each as the Raft server of its own node. */
static bool authorize(void *arg, const struct stream_peer *peer, uint64_t raft_id)
{
	struct node *self = arg;

	for (int i = 0; i < N; i++) {
		if (nodes[i].raft_id == raft_id)
			return peer->authenticated && peer->cert.role == CERT_ROLE_MANAGER &&
			       strcmp(peer->cert.node_id, nodes[i].node_id) == 0;
	}
	self->raft_refused++;
	return false;
}

static void ignore_message(struct stream *s, const void *d, size_t l, void *a)
{
	(void)s;
	(void)d;
	(void)l;
	(void)a;
}

static void ignore_closed(struct stream *s, int c, const struct shoal_err *e, void *a)
{
	(void)s;
	(void)c;
	(void)e;
	(void)a;
}

static void on_accept(struct stream_listener *l, struct stream *s, void *arg)
{
	struct node *n = arg;

	(void)l;
	if (stream_peer(s)->purpose == STREAM_RAFT && n->c != NULL && !n->consensus_closed) {
		consensus_accept(n->c, s);
		return;
	}
	stream_start(s, ignore_message, ignore_closed, NULL);
	stream_close(s);
}

static void free_port_addr(char *out, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(out, len, "127.0.0.1:%u", ntohs(a.sin_port));
	close(fd);
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

static int leader_index(void)
{
	for (int i = 0; i < N; i++)
		if (nodes[i].c != NULL && !nodes[i].consensus_closed &&
		    consensus_is_leader(nodes[i].c))
			return i;
	return -1;
}

static bool has_leader(void *arg)
{
	int not = arg != NULL ? *(int *)arg : -1;
	int l = leader_index();

	return l >= 0 && l != not ;
}

static void start_node(struct node *n, enum consensus_mode mode)
{
	struct consensus_config cfg = {0};
	struct shoal_err err;

	cfg.id = n->raft_id;
	cfg.address = n->addr;
	cfg.dir = n->dir;
	cfg.election_timeout_ms = 300;
	cfg.heartbeat_timeout_ms = 50;
	cfg.snapshot_threshold = 8;
	cfg.snapshot_trailing = 4;
	cfg.fsm = (struct consensus_fsm){
	    .arg = n, .apply = fsm_apply, .snapshot = fsm_snapshot, .restore = fsm_restore};
	cfg.secure = &n->tcfg;
	if (consensus_start(&n->c, &loop, &cfg, mode, &err) != 0)
		fail_msg("consensus_start: %s", err.msg);
}

static int setup(void **state)
{
	struct shoal_err err;

	(void)state;
	/* As in the daemon: a peer that went away is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || uv_loop_init(&loop) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/shoal-test-transport.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	identity_generate(&root);
	for (int i = 0; i < N; i++) {
		struct node *n = &nodes[i];
		n->index = i;
		n->raft_id = (uint64_t)i + 1;
		id_new(n->node_id);
		free_port_addr(n->addr, sizeof(n->addr));
		snprintf(n->dir, sizeof(n->dir), "%s/raft%d", tmp, i);
		identity_generate(&n->key);
		if (cert_issue(&n->cert, n->node_id, CERT_ROLE_MANAGER, n->key.pk, clock_now_ns(),
			       3600LL * 1000000000, &root, &err) != 0)
			return -1;
		n->sid.key = &n->key;
		n->sid.cert = &n->cert;
		memcpy(n->sid.root_pk, root.pk, IDENTITY_PK_LEN);
		n->tcfg = (struct secure_transport_config){
		    .loop = &loop, .id = &n->sid, .authorize = authorize, .arg = n};
		if (stream_listen(&n->listener, &loop, n->addr, &n->sid, on_accept, n, &err) != 0)
			return -1;
	}
	return 0;
}

static void listener_closed(void *arg)
{
	((struct node *)arg)->listener_closed = true;
}

static void consensus_closed(void *arg)
{
	(void)arg;
}

static void stop_node(struct node *n)
{
	if (n->c != NULL && !n->consensus_closed) {
		n->consensus_closed = true;
		consensus_close(n->c, consensus_closed, n);
	}
	if (!n->listener_closed && n->listener != NULL) {
		stream_listener_close(n->listener, listener_closed, n);
		n->listener = NULL;
	}
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++)
		stop_node(&nodes[i]);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	fs_rm_rf(tmp, NULL);
	return 0;
}

struct wait {
	int done;
	int status;
};

static void change_cb(void *arg, int status)
{
	struct wait *w = arg;

	w->status = status;
	w->done = 1;
}

static bool waited(void *arg)
{
	return ((struct wait *)arg)->done != 0;
}

static void proposed(void *arg, int status, void *result)
{
	struct wait *w = arg;

	(void)result;
	w->status = status;
	w->done++;
}

struct count {
	int nodes[N];
	int n;
	unsigned want;
};

static bool all_applied(void *arg)
{
	struct count *c = arg;

	for (int i = 0; i < c->n; i++)
		if (nodes[c->nodes[i]].applied < c->want)
			return false;
	return true;
}

static void propose_values(int leader, unsigned first, unsigned n)
{
	struct wait w = {0};
	struct shoal_err err;

	for (unsigned i = 0; i < n; i++) {
		uint64_t v = first + i;
		if (consensus_propose(nodes[leader].c, &v, sizeof v, proposed, &w, &err) != 0)
			fail_msg("propose: %s", err.msg);
	}
	while ((unsigned)w.done < n)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(w.status, 0);
}

static void raft_runs_over_secure_streams(void **state)
{
	struct shoal_err err;
	struct wait w;
	int l, old;

	(void)state;
	start_node(&nodes[0], CONSENSUS_BOOTSTRAP);
	start_node(&nodes[1], CONSENSUS_RESUME);
	start_node(&nodes[2], CONSENSUS_RESUME);
	assert_true(run_until(has_leader, NULL, 5000));
	assert_int_equal(leader_index(), 0);

	for (int i = 1; i < N; i++) {
		w = (struct wait){0};
		assert_int_equal(consensus_add_voter(nodes[0].c, nodes[i].raft_id, nodes[i].addr,
						     change_cb, &w, &err),
				 0);
		assert_true(run_until(waited, &w, 10000));
		assert_int_equal(w.status, 0);
	}
	assert_int_equal(consensus_voters(nodes[0].c), 3);

	/* Twenty commands reach all three state machines (and snapshots run:
	 * the threshold is 8). */
	propose_values(0, 1, 20);
	struct count all = {.nodes = {0, 1, 2}, .n = 3, .want = 20};
	assert_true(run_until(all_applied, &all, 10000));
	for (int i = 0; i < N; i++)
		assert_true(nodes[i].last_value == 20);

	/* Lose the leader: the other two elect one and go on. */
	old = 0;
	stop_node(&nodes[0]);
	assert_true(run_until(has_leader, &old, 10000));
	l = leader_index();
	assert_true(l == 1 || l == 2);
	propose_values(l, 21, 5);
	struct count rest = {.nodes = {1, 2}, .n = 2, .want = 25};
	assert_true(run_until(all_applied, &rest, 10000));
	assert_true(nodes[1].last_value == 25 && nodes[2].last_value == 25);
	assert_int_equal(nodes[1].raft_refused + nodes[2].raft_refused, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(raft_runs_over_secure_streams),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
