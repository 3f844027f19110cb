/* Unit tests of runtime/netw: bridge, IPAM, veth wiring, NAT, each in a private network namespace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fsutil.h"
#include "runtime/container.h"
#include "runtime/container_priv.h"
#include "runtime/netw.h"

#define PATHF(buf, ...) assert_true((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) < sizeof(buf))
#define WAIT_MS		5000 /* bound of every wait */
#define MAX_KIDS	8

struct fx {
	char dir[64];
	char state[128];
	pid_t kids[MAX_KIDS];
	int nkids;
	struct netw *n;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Read one byte from @fd within WAIT_MS; returns it or -1. */
static int read_byte(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	if (poll(&p, 1, WAIT_MS) != 1 || read(fd, &c, 1) != 1)
		return -1;
	return (unsigned char)c;
}

/* A "container": a child in its own network namespace, sleeping until killed. */
static pid_t kid(struct fx *f)
{
	int p[2];
	pid_t pid;

	assert_true(f->nkids < MAX_KIDS);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNET) != 0)
			_exit(1);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	f->kids[f->nkids++] = pid;
	assert_int_equal(read_byte(p[0]), 'r');
	close(p[0]);
	return pid;
}

static void kill_kid(struct fx *f, pid_t pid)
{
	for (int i = 0; i < f->nkids; i++)
		if (f->kids[i] == pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			f->kids[i] = f->kids[--f->nkids];
			return;
		}
}

static void ns_path(pid_t pid, char out[64])
{
	snprintf(out, 64, "/proc/%d/ns/net", (int)pid);
}

/* Run @argv in the network namespace of @nspid (0: ours), stdin from
 * /dev/null, output into @out. Returns the exit status, or -1 if it did not
 * finish within WAIT_MS (it is killed). */
static int run_in(pid_t nspid, const char *const argv[], char *out, size_t outlen)
{
	double deadline = now_ms() + WAIT_MS;
	size_t len = 0;
	int p[2], status = -1;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		union {
			const char *const *c;
			char *const *m;
		} u = {.c = argv};
		int null = open("/dev/null", O_RDONLY);
		if (nspid > 0) {
			char path[64];
			int fd;
			ns_path(nspid, path);
			fd = open(path, O_RDONLY);
			if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
				_exit(125);
		}
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(125);
		execvp(argv[0], u.m);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		int left = (int)(deadline - now_ms());
		ssize_t r;
		char sink[256];
		if (left <= 0 || poll(&pf, 1, left) != 1)
			break;
		if (out != NULL && len < outlen - 1)
			r = read(p[0], out + len, outlen - 1 - len);
		else
			r = read(p[0], sink, sizeof(sink));
		if (r <= 0)
			break;
		if (out != NULL && len < outlen - 1)
			len += (size_t)r;
	}
	close(p[0]);
	if (out != NULL)
		out[len] = '\0';
	while (waitpid(pid, &status, WNOHANG) == 0) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int ping_from(pid_t nspid, const char *addr)
{
	const char *argv[] = {"busybox", "ping", "-c1", "-W1", addr, NULL};
	char out[1024];
	int rv = run_in(nspid, argv, out, sizeof(out));
	if (rv != 0)
		print_message("# ping %s from %d: %s\n", addr, (int)nspid, out);
	return rv;
}

static void mkid(char out[65], unsigned k)
{
	snprintf(out, 65, "%08x", 0xc0de0000U + k);
	memset(out + 8, 'f', 56);
	out[64] = '\0';
}

static bool has_link(const char *name)
{
	return if_nametoindex(name) != 0;
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static const char *addr_str(struct in_addr a, char out[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (geteuid() != 0) {
		fprintf(stderr, "test_netw: root is required (network namespaces, bridges, nft)\n");
		free(f);
		return -1;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "test_netw: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/shoal-netw-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->state, sizeof(f->state), "%s/net", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	netw_close(f->n);
	while (f->nkids > 0)
		kill_kid(f, f->kids[0]);
	fs_rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static void open_default(struct fx *f)
{
	struct netw_config cfg = {.state_dir = f->state};
	struct shoal_err err = {{0}};
	int rv = netw_open(&cfg, &f->n, &err);
	if (rv != 0)
		fail_msg("netw_open: %s", err.msg);
}

static void attach_ok(struct fx *f, unsigned k, pid_t pid, const char *want,
		      struct netw_endpoint *ep)
{
	struct shoal_err err = {{0}};
	char id[65], path[64], got[INET_ADDRSTRLEN];
	struct netw_endpoint tmp;
	double t0;
	int rv;

	mkid(id, k);
	ns_path(pid, path);
	t0 = now_ms();
	rv = netw_attach(f->n, id, path, ep != NULL ? ep : &tmp, &err);
	if (rv != 0)
		fail_msg("netw_attach: %s", err.msg);
	print_message("# netw_attach took %.1f ms\n", now_ms() - t0);
	assert_string_equal(addr_str((ep != NULL ? ep : &tmp)->addr, got), want);
}

/* ---- tests ---- */

static void test_open_creates_bridge(void **state)
{
	struct fx *f = *state;
	const char *nft[] = {"nft", "list", "table", "ip", "shoal", NULL};
	struct ifaddrs *ifs, *i;
	char out[4096];
	bool found = false;
	int fd;

	open_default(f);
	assert_true(has_link("shoal0"));
	assert_int_equal(getifaddrs(&ifs), 0);
	for (i = ifs; i != NULL; i = i->ifa_next) {
		char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN];
		if (strcmp(i->ifa_name, "shoal0") != 0 || i->ifa_addr == NULL ||
		    i->ifa_addr->sa_family != AF_INET)
			continue;
		addr_str(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, a);
		addr_str(((struct sockaddr_in *)(void *)i->ifa_netmask)->sin_addr, m);
		assert_string_equal(a, "10.88.0.1");
		assert_string_equal(m, "255.255.0.0");
		assert_true(i->ifa_flags & IFF_UP);
		found = true;
	}
	freeifaddrs(ifs);
	assert_true(found);
	assert_int_equal(run_in(0, nft, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "ip saddr 10.88.0.0/16 oifname != \"shoal0\" masquerade"));
	assert_non_null(strstr(out, "hook forward"));
	assert_non_null(strstr(out, "iifname \"shoal0\" accept"));
	fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, out, 2), 2);
	close(fd);
	assert_int_equal(out[0], '1');
	/* opening again adopts what is there */
	netw_close(f->n);
	f->n = NULL;
	open_default(f);
	assert_true(has_link("shoal0"));
}

static void test_attach_two_reach_each_other(void **state)
{
	struct fx *f = *state;
	struct netw_endpoint a, b, look;
	const char *showlink[] = {"ip", "-o", "link", "show", "dev", "eth0", NULL};
	const char *route[] = {"ip", "route", "show", "default", NULL};
	char id[65], path[PATH_MAX], out[2048], gw[INET_ADDRSTRLEN];
	pid_t ka = kid(f), kb = kid(f);

	open_default(f);
	attach_ok(f, 1, ka, "10.88.0.2", &a);
	attach_ok(f, 2, kb, "10.88.0.3", &b);
	assert_int_equal(a.prefix, 16);
	assert_string_equal(addr_str(a.gateway, gw), "10.88.0.1");
	assert_string_equal(a.host_ifname, "vshc0de0001");
	assert_string_equal(b.host_ifname, "vshc0de0002");
	assert_memory_equal(a.mac, ((uint8_t[]){0x02, 0x42, 10, 88, 0, 2}), 6);
	assert_true(has_link("vshc0de0001"));
	assert_true(has_link("vshc0de0002"));
	mkid(id, 1);
	assert_int_equal(netw_lookup(f->n, id, &look), 0);
	assert_memory_equal(&look, &a, sizeof(a));
	PATHF(path, "%s/%s", f->state, id);
	assert_true(fs_exists(path));

	assert_int_equal(run_in(ka, showlink, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "02:42:0a:58:00:02"));
	assert_non_null(strstr(out, "state UP"));
	assert_int_equal(run_in(ka, route, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "default via 10.88.0.1 dev eth0"));

	assert_int_equal(ping_from(ka, "10.88.0.3"), 0);
	assert_int_equal(ping_from(kb, "10.88.0.2"), 0);
	assert_int_equal(ping_from(ka, "10.88.0.1"), 0);
	assert_int_equal(ping_from(0, "10.88.0.3"), 0);
	/* lo is up in the container */
	assert_int_equal(ping_from(ka, "127.0.0.1"), 0);
}

static void test_detach_frees_lowest(void **state)
{
	struct fx *f = *state;
	struct shoal_err err = {{0}};
	struct netw_endpoint ep;
	char id[65], path[PATH_MAX];
	pid_t ka = kid(f), kb = kid(f), kc = kid(f);

	open_default(f);
	attach_ok(f, 1, ka, "10.88.0.2", NULL);
	attach_ok(f, 2, kb, "10.88.0.3", NULL);
	mkid(id, 1);
	assert_int_equal(netw_detach(f->n, id, &err), 0);
	assert_false(has_link("vshc0de0001"));
	assert_int_equal(netw_lookup(f->n, id, &ep), SHOAL_ENOTFOUND);
	PATHF(path, "%s/%s", f->state, id);
	assert_false(fs_exists(path));
	assert_int_equal(count_files(f->state), 1);
	/* idempotent, and unknown ids are fine */
	assert_int_equal(netw_detach(f->n, id, &err), 0);
	mkid(id, 77);
	assert_int_equal(netw_detach(f->n, id, &err), 0);
	/* the lowest address is handed out again */
	attach_ok(f, 3, kc, "10.88.0.2", NULL);
	assert_int_equal(ping_from(kc, "10.88.0.3"), 0);
}

static void test_attach_idempotent(void **state)
{
	struct fx *f = *state;
	const char *del[] = {"ip", "link", "del", "vshc0de0001", NULL};
	struct netw_endpoint a1, a2;
	pid_t ka = kid(f), kb = kid(f);

	open_default(f);
	attach_ok(f, 1, ka, "10.88.0.2", &a1);
	attach_ok(f, 1, ka, "10.88.0.2", &a2);
	assert_memory_equal(&a1, &a2, sizeof(a1));
	assert_int_equal(count_files(f->state), 1);
	assert_int_equal(ping_from(ka, "10.88.0.1"), 0);

	/* the veth is recreated if it went missing */
	assert_int_equal(run_in(0, del, NULL, 0), 0);
	assert_false(has_link("vshc0de0001"));
	attach_ok(f, 1, ka, "10.88.0.2", NULL);
	assert_true(has_link("vshc0de0001"));
	assert_int_equal(ping_from(ka, "10.88.0.1"), 0);

	/* the container restarts in a new namespace: same address, rewired */
	kill_kid(f, ka);
	attach_ok(f, 1, kb, "10.88.0.2", NULL);
	assert_int_equal(ping_from(kb, "10.88.0.1"), 0);
	assert_int_equal(count_files(f->state), 1);
}

static void count_cb(void *arg, const char *id)
{
	(void)id;
	(*(int *)arg)++;
}

static void test_reopen_keeps_allocations(void **state)
{
	struct fx *f = *state;
	struct netw_config cfg = {.state_dir = f->state, .bip = "10.99.0.1/16"};
	struct shoal_err err = {{0}};
	struct netw_endpoint ep;
	struct netw *other = NULL;
	char id[65], a[INET_ADDRSTRLEN];
	int count = 0;
	pid_t ka = kid(f), kb = kid(f), kc = kid(f);

	open_default(f);
	attach_ok(f, 1, ka, "10.88.0.2", NULL);
	attach_ok(f, 2, kb, "10.88.0.3", NULL);
	netw_close(f->n);
	f->n = NULL;
	open_default(f);
	mkid(id, 1);
	assert_int_equal(netw_lookup(f->n, id, &ep), 0);
	assert_string_equal(addr_str(ep.addr, a), "10.88.0.2");
	mkid(id, 2);
	assert_int_equal(netw_lookup(f->n, id, &ep), 0);
	assert_string_equal(addr_str(ep.addr, a), "10.88.0.3");
	netw_foreach(f->n, count_cb, &count);
	assert_int_equal(count, 2);
	attach_ok(f, 3, kc, "10.88.0.4", NULL);
	assert_int_equal(ping_from(kc, "10.88.0.2"), 0);

	/* another subnet with these allocations is refused, nothing changes */
	assert_int_equal(netw_open(&cfg, &other, &err), SHOAL_ECONFLICT);
	assert_null(other);
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "10.99.0.1/16"));
	assert_int_equal(count_files(f->state), 3);
}

static void test_exhaustion(void **state)
{
	struct fx *f = *state;
	struct netw_config cfg = {
	    .state_dir = f->state, .bridge = "shoaltiny", .bip = "10.77.0.1/30"};
	struct shoal_err err = {{0}};
	struct netw_endpoint ep;
	char id[65], path[64];
	pid_t ka = kid(f), kb = kid(f);

	assert_int_equal(netw_open(&cfg, &f->n, &err), 0);
	attach_ok(f, 1, ka, "10.77.0.2", NULL);
	mkid(id, 2);
	ns_path(kb, path);
	assert_int_equal(netw_attach(f->n, id, path, &ep, &err), SHOAL_EBUSY);
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "subnet 10.77.0.0/30 is full"));
	assert_int_equal(netw_lookup(f->n, id, &ep), SHOAL_ENOTFOUND);
	assert_false(has_link("vshc0de0002"));
	assert_int_equal(count_files(f->state), 1);
	assert_int_equal(ping_from(ka, "10.77.0.1"), 0);
}

static void test_bad_config_refused(void **state)
{
	struct fx *f = *state;
	static const char *const bips[] = {
	    "",
	    "10.88.0.1",
	    "10.88.0.1/",
	    "10.88.0.1/7",
	    "10.88.0.1/31",
	    "10.88.0.1/16x",
	    "10.88.0.0/16",
	    "10.88.255.255/16",
	    "300.1.1.1/16",
	    "10.88.0/16",
	    "x/16",
	    "10.88.0.1/-16",
	    "10.88.0.1/016",
	    "10.88.0.1/ 16",
	};
	static const char *const bridges[] = {"", "bad name", "waytoolongbridge0", "a/b", "-x"};
	struct shoal_err err;
	struct netw *n = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(bips); i++) {
		struct netw_config cfg = {
		    .state_dir = f->state, .bridge = "shoalbad", .bip = bips[i]};
		memset(&err, 0, sizeof(err));
		if (netw_open(&cfg, &n, &err) != SHOAL_EINVAL)
			fail_msg("bip '%s' was not refused", bips[i]);
		assert_null(n);
		assert_true(strlen(err.msg) > 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bridges); i++) {
		struct netw_config cfg = {.state_dir = f->state, .bridge = bridges[i]};
		memset(&err, 0, sizeof(err));
		if (netw_open(&cfg, &n, &err) != SHOAL_EINVAL)
			fail_msg("bridge '%s' was not refused", bridges[i]);
		assert_null(n);
	}
	print_message("# %s\n", err.msg);
	assert_false(has_link("shoalbad"));
	assert_false(fs_exists(f->state));
}

static void test_destroy(void **state)
{
	struct fx *f = *state;
	const char *nft[] = {"nft", "list", "table", "ip", "shoal", NULL};
	struct shoal_err err = {{0}};
	char id[65];
	pid_t ka = kid(f);

	open_default(f);
	attach_ok(f, 1, ka, "10.88.0.2", NULL);
	assert_int_equal(netw_destroy(f->n, &err), SHOAL_EBUSY);
	assert_true(has_link("shoal0"));
	mkid(id, 1);
	assert_int_equal(netw_detach(f->n, id, &err), 0);
	assert_int_equal(netw_destroy(f->n, &err), 0);
	assert_false(has_link("shoal0"));
	assert_int_not_equal(run_in(0, nft, NULL, 0), 0);
	/* again: nothing left to remove is fine */
	assert_int_equal(netw_destroy(f->n, &err), 0);
}

static void test_failure_leaves_nothing(void **state)
{
	struct fx *f = *state;
	const char *mketh0[] = {"ip",	"link", "add",	"eth0", "type",
				"veth", "peer", "name", "eth1", NULL};
	struct shoal_err err = {{0}};
	struct netw_endpoint ep;
	char id[65], path[64];
	pid_t ka = kid(f), kb = kid(f);

	open_default(f);
	mkid(id, 1);
	assert_int_equal(netw_attach(f->n, id, "/proc/999999999/ns/net", &ep, &err),
			 SHOAL_ENOTFOUND);
	print_message("# %s\n", err.msg);
	assert_int_equal(netw_attach(f->n, id, "/proc/self/ns/pid", &ep, &err), SHOAL_EINVAL);
	assert_int_equal(netw_attach(f->n, "not-an-id", "/proc/self/ns/net", &ep, &err),
			 SHOAL_EINVAL);
	assert_int_equal(netw_lookup(f->n, id, &ep), SHOAL_ENOTFOUND);
	assert_int_equal(count_files(f->state), 0);

	/* fails after the address was taken: eth0 already exists in there */
	assert_int_equal(run_in(ka, mketh0, NULL, 0), 0);
	ns_path(ka, path);
	memset(&err, 0, sizeof(err));
	assert_int_equal(netw_attach(f->n, id, path, &ep, &err), SHOAL_EIO);
	print_message("# %s\n", err.msg);
	assert_true(strlen(err.msg) > 0);
	assert_int_equal(netw_lookup(f->n, id, &ep), SHOAL_ENOTFOUND);
	assert_false(has_link("vshc0de0001"));
	assert_int_equal(count_files(f->state), 0);
	/* the address was not lost */
	attach_ok(f, 2, kb, "10.88.0.2", NULL);
}

/* The "outside" host: waits for "go", accepts one connection on
 * 192.0.2.2:8080 and reports the peer's address on @w. */
static void outside_main(int w, int go)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	struct pollfd p;
	char text[INET_ADDRSTRLEN + 1];
	int s, c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) != 0 || write(w, "r", 1) != 1 || read_byte(go) != 'g')
		_exit(1);
	inet_pton(AF_INET, "192.0.2.2", &sa.sin_addr);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s, 1) != 0 ||
	    write(w, "l", 1) != 1)
		_exit(1);
	p = (struct pollfd){.fd = s, .events = POLLIN};
	if (poll(&p, 1, WAIT_MS) != 1)
		_exit(1);
	c = accept(s, (struct sockaddr *)&peer, &plen);
	if (c < 0)
		_exit(1);
	inet_ntop(AF_INET, &peer.sin_addr, text, INET_ADDRSTRLEN);
	strcat(text, "\n");
	if (write(w, text, strlen(text)) < 0)
		_exit(1);
	close(c);
	_exit(0);
}

static void test_outbound_nat(void **state)
{
	struct fx *f = *state;
	int up[2], go[2];
	char path[64], peer[64] = {0}, out[1024];
	size_t len = 0;
	pid_t out_pid, ka = kid(f);

	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	out_pid = fork();
	assert_true(out_pid >= 0);
	if (out_pid == 0)
		outside_main(up[1], go[0]);
	f->kids[f->nkids++] = out_pid;
	close(up[1]);
	close(go[0]);
	assert_int_equal(read_byte(up[0]), 'r');

	ns_path(out_pid, path);
	{
		const char *mk[] = {"ip",   "link", "add",  "vout",  "type", "veth",
				    "peer", "name", "eth0", "netns", path,   NULL};
		const char *addr[] = {"ip", "addr", "add", "192.0.2.1/24", "dev", "vout", NULL};
		const char *up1[] = {"ip", "link", "set", "vout", "up", NULL};
		const char *oaddr[] = {"ip", "addr", "add", "192.0.2.2/24", "dev", "eth0", NULL};
		const char *oup[] = {"ip", "link", "set", "eth0", "up", NULL};
		assert_int_equal(run_in(0, mk, out, sizeof(out)), 0);
		assert_int_equal(run_in(0, addr, out, sizeof(out)), 0);
		assert_int_equal(run_in(0, up1, out, sizeof(out)), 0);
		assert_int_equal(run_in(out_pid, oaddr, out, sizeof(out)), 0);
		assert_int_equal(run_in(out_pid, oup, out, sizeof(out)), 0);
	}
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(read_byte(up[0]), 'l');

	open_default(f);
	attach_ok(f, 1, ka, "10.88.0.2", NULL);
	{
		const char *nc[] = {"busybox", "nc", "-w", "2", "192.0.2.2", "8080", NULL};
		assert_int_equal(run_in(ka, nc, out, sizeof(out)), 0);
	}
	while (len < sizeof(peer) - 1 && memchr(peer, '\n', len) == NULL) {
		struct pollfd p = {.fd = up[0], .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, WAIT_MS) != 1)
			break;
		r = read(up[0], peer + len, sizeof(peer) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(up[0]);
	close(go[1]);
	/* seen from outside, the container's connection comes from the host */
	assert_string_equal(peer, "192.0.2.1\n");
}

/* ---- routes to other nodes' subnets ---- */

static void show_routes(char *out, size_t len)
{
	const char *show[] = {"ip", "route", "show", "proto", "147", NULL};
	assert_int_equal(run_in(0, show, out, len), 0);
}

/* A link with 10.77.0.1/24 (the nodes' network) so gateways 10.77.0.x are
 * reachable, and a route of another protocol that must stay. */
static void nodes_link(void)
{
	const char *mk[] = {"ip",   "link", "add",  "vnode0", "type",
			    "veth", "peer", "name", "vnode1", NULL};
	const char *addr[] = {"ip", "addr", "add", "10.77.0.1/24", "dev", "vnode0", NULL};
	const char *up0[] = {"ip", "link", "set", "vnode0", "up", NULL};
	const char *up1[] = {"ip", "link", "set", "vnode1", "up", NULL};
	const char *other[] = {"ip", "route", "add", "10.90.0.0/16", "via", "10.77.0.9", NULL};
	char out[1024];

	assert_int_equal(run_in(0, mk, out, sizeof(out)), 0);
	assert_int_equal(run_in(0, addr, out, sizeof(out)), 0);
	assert_int_equal(run_in(0, up0, out, sizeof(out)), 0);
	assert_int_equal(run_in(0, up1, out, sizeof(out)), 0);
	assert_int_equal(run_in(0, other, out, sizeof(out)), 0);
}

static void assert_other_route_kept(void)
{
	const char *show[] = {"ip", "route", "show", "10.90.0.0/16", NULL};
	char out[1024];

	assert_int_equal(run_in(0, show, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "10.90.0.0/16 via 10.77.0.9 dev vnode0"));
}

static void routes_ok(const struct netw_route *r, size_t n)
{
	struct shoal_err err = {{0}};
	if (netw_routes_set(r, n, &err) != 0)
		fail_msg("netw_routes_set: %s", err.msg);
}

static void test_routes_set(void **state)
{
	const struct netw_route two[] = {{"10.89.2.0/24", "10.77.0.2"},
					 {"10.89.3.0/24", "10.77.0.3"}};
	const struct netw_route next[] = {{"10.89.2.0/24", "10.77.0.4"},
					  {"10.89.4.0/24", "10.77.0.2"},
					  {"10.89.5.7/32", "10.77.0.3"}};
	const struct netw_route bad_via[] = {{"10.89.6.0/24", "10.66.0.2"},
					     {"10.89.7.0/24", "10.77.0.2"}};
	struct shoal_err err = {{0}};
	char out[4096];

	(void)state;
	nodes_link();
	routes_ok(two, ARRAY_SIZE(two));
	show_routes(out, sizeof(out));
	print_message("# %s", out);
	assert_non_null(strstr(out, "10.89.2.0/24 via 10.77.0.2 dev vnode0"));
	assert_non_null(strstr(out, "10.89.3.0/24 via 10.77.0.3 dev vnode0"));
	/* the same set again changes nothing */
	routes_ok(two, ARRAY_SIZE(two));
	show_routes(out, sizeof(out));
	assert_non_null(strstr(out, "10.89.2.0/24 via 10.77.0.2 dev vnode0"));
	assert_non_null(strstr(out, "10.89.3.0/24 via 10.77.0.3 dev vnode0"));

	/* replaced, added, and the one no longer wanted removed */
	routes_ok(next, ARRAY_SIZE(next));
	show_routes(out, sizeof(out));
	print_message("# %s", out);
	assert_non_null(strstr(out, "10.89.2.0/24 via 10.77.0.4 dev vnode0"));
	assert_null(strstr(out, "10.89.2.0/24 via 10.77.0.2"));
	assert_non_null(strstr(out, "10.89.4.0/24 via 10.77.0.2 dev vnode0"));
	assert_non_null(strstr(out, "10.89.5.7 via 10.77.0.3 dev vnode0"));
	assert_null(strstr(out, "10.89.3.0"));
	/* a host route is recognised as ours (ip shows it without /32) */
	routes_ok(next, ARRAY_SIZE(next));
	show_routes(out, sizeof(out));
	assert_non_null(strstr(out, "10.89.5.7 via 10.77.0.3 dev vnode0"));
	assert_other_route_kept();

	/* a gateway that is not reachable: ip's error; the others are set */
	assert_int_equal(netw_routes_set(bad_via, ARRAY_SIZE(bad_via), &err), SHOAL_EIO);
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "set the routes"));
	assert_non_null(strstr(err.msg, "exited with"));
	show_routes(out, sizeof(out));
	assert_null(strstr(out, "10.89.6.0"));
	assert_non_null(strstr(out, "10.89.7.0/24 via 10.77.0.2 dev vnode0"));
	assert_null(strstr(out, "10.89.2.0"));

	/* none: ours are gone, the other protocol's route stays */
	routes_ok(NULL, 0);
	show_routes(out, sizeof(out));
	assert_string_equal(out, "");
	assert_other_route_kept();
	routes_ok(NULL, 0);
}

static void test_routes_bad_input(void **state)
{
	static const char *const subnets[] = {
	    "",		 "10.89.2.1/24",  "10.89.2.0/33",  "10.89.2.0/0",
	    "10.89.2.0", "10.89.2.0/",	  "10.89.2.0/024", "10.0.0.0/08",
	    "x/24",	 "10.89.2.0/24 ", "10.89.2.0/2x",  "10.89.2/24",
	    "/24",	 "10.89.2.0/-4",  "10.89.2.0/+24",
	};
	static const char *const vias[] = {
	    "", "10.77.0", "0.0.0.0", "224.0.0.1", "127.0.0.1", "10.77.0.2 x", "x", "10.77.0.256",
	};
	const struct netw_route keep = {"10.89.2.0/24", "10.77.0.2"};
	struct netw_route r[2];
	struct shoal_err err;
	char before[4096], after[4096];

	(void)state;
	nodes_link();
	routes_ok(&keep, 1);
	show_routes(before, sizeof(before));
	assert_non_null(strstr(before, "10.89.2.0/24 via 10.77.0.2"));
	for (size_t i = 0; i < ARRAY_SIZE(subnets); i++) {
		memset(r, 0, sizeof(r));
		snprintf(r[0].subnet, sizeof(r[0].subnet), "10.89.9.0/24");
		snprintf(r[0].via, sizeof(r[0].via), "10.77.0.3");
		snprintf(r[1].subnet, sizeof(r[1].subnet), "%s", subnets[i]);
		snprintf(r[1].via, sizeof(r[1].via), "10.77.0.3");
		memset(&err, 0, sizeof(err));
		if (netw_routes_set(r, 2, &err) != SHOAL_EINVAL)
			fail_msg("subnet '%s' was not refused", subnets[i]);
		assert_non_null(strstr(err.msg, "a.b.c.d/len"));
	}
	print_message("# %s\n", err.msg);
	for (size_t i = 0; i < ARRAY_SIZE(vias); i++) {
		memset(r, 0, sizeof(r));
		snprintf(r[0].subnet, sizeof(r[0].subnet), "10.89.9.0/24");
		snprintf(r[0].via, sizeof(r[0].via), "%s", vias[i]);
		memset(&err, 0, sizeof(err));
		if (netw_routes_set(r, 1, &err) != SHOAL_EINVAL)
			fail_msg("gateway '%s' was not refused", vias[i]);
		assert_non_null(strstr(err.msg, "gateway"));
	}
	print_message("# %s\n", err.msg);
	/* not NUL-terminated */
	memset(r, 'a', sizeof(r));
	assert_int_equal(netw_routes_set(r, 1, &err), SHOAL_EINVAL);
	memset(r, 0, sizeof(r));
	snprintf(r[0].subnet, sizeof(r[0].subnet), "10.89.9.0/24");
	memset(r[0].via, '1', sizeof(r[0].via));
	assert_int_equal(netw_routes_set(r, 1, &err), SHOAL_EINVAL);
	/* the same subnet twice */
	memset(r, 0, sizeof(r));
	snprintf(r[0].subnet, sizeof(r[0].subnet), "10.89.9.0/24");
	snprintf(r[0].via, sizeof(r[0].via), "10.77.0.3");
	r[1] = r[0];
	snprintf(r[1].via, sizeof(r[1].via), "10.77.0.4");
	assert_int_equal(netw_routes_set(r, 2, &err), SHOAL_EINVAL);
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "listed twice"));

	show_routes(after, sizeof(after));
	assert_string_equal(after, before);
	assert_other_route_kept();
}

/* ---- re-addressing ---- */

/* The IPv4 addresses of @ifname, "a/len" joined by spaces. */
static void if_addrs(const char *ifname, char *out, size_t len)
{
	struct ifaddrs *ifs, *i;
	size_t off = 0;

	out[0] = '\0';
	assert_int_equal(getifaddrs(&ifs), 0);
	for (i = ifs; i != NULL; i = i->ifa_next) {
		char a[INET_ADDRSTRLEN];
		uint32_t m;
		int plen = 0;
		if (strcmp(i->ifa_name, ifname) != 0 || i->ifa_addr == NULL ||
		    i->ifa_addr->sa_family != AF_INET)
			continue;
		addr_str(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, a);
		m = ntohl(((struct sockaddr_in *)(void *)i->ifa_netmask)->sin_addr.s_addr);
		while (m & 0x80000000U) {
			plen++;
			m <<= 1;
		}
		off +=
		    (size_t)snprintf(out + off, len - off, "%s%s/%d", off > 0 ? " " : "", a, plen);
		assert_true(off < len);
	}
	freeifaddrs(ifs);
}

static void test_readdress(void **state)
{
	struct fx *f = *state;
	struct netw_config cfg = {.state_dir = f->state, .bip = "10.89.3.1/24"};
	const char *nft[] = {"nft", "list", "table", "ip", "shoal", NULL};
	const char *add2[] = {"ip", "addr", "add", "10.88.7.1/24", "dev", "shoal0", NULL};
	struct shoal_err err = {{0}};
	struct netw *other = NULL;
	char out[4096], id[65];
	pid_t ka = kid(f);

	open_default(f);
	assert_string_equal(netw_bip(f->n), "10.88.0.1/16");
	assert_int_equal(netw_count(f->n), 0);
	/* a second foreign address goes too */
	assert_int_equal(run_in(0, add2, out, sizeof(out)), 0);
	netw_close(f->n);
	f->n = NULL;

	/* plain open refuses the other address, readdress takes the new one */
	assert_int_equal(netw_open(&cfg, &other, &err), SHOAL_ECONFLICT);
	assert_null(other);
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.88.0.1/16 10.88.7.1/24");
	if (netw_open_readdress(&cfg, &f->n, &err) != 0)
		fail_msg("netw_open_readdress: %s", err.msg);
	assert_string_equal(netw_bip(f->n), "10.89.3.1/24");
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.89.3.1/24");
	assert_int_equal(run_in(0, nft, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "ip saddr 10.89.3.0/24 oifname != \"shoal0\" masquerade"));
	assert_null(strstr(out, "10.88.0.0"));
	attach_ok(f, 1, ka, "10.89.3.2", NULL);
	assert_int_equal(netw_count(f->n), 1);
	assert_int_equal(ping_from(ka, "10.89.3.1"), 0);
	/* the same bip again: adopted as is */
	netw_close(f->n);
	f->n = NULL;
	if (netw_open_readdress(&cfg, &f->n, &err) != 0)
		fail_msg("netw_open_readdress: %s", err.msg);
	assert_int_equal(netw_count(f->n), 1);
	netw_close(f->n);
	f->n = NULL;

	/* with an allocation: refused, nothing changes */
	cfg.bip = "10.88.0.1/16"; /* the allocation lies outside */
	memset(&err, 0, sizeof(err));
	assert_int_equal(netw_open_readdress(&cfg, &other, &err), SHOAL_ECONFLICT);
	print_message("# %s\n", err.msg);
	assert_null(other);
	cfg.bip = "10.89.0.1/16"; /* the allocation lies inside */
	memset(&err, 0, sizeof(err));
	assert_int_equal(netw_open_readdress(&cfg, &other, &err), SHOAL_ECONFLICT);
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "still hold an address"));
	assert_null(other);
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.89.3.1/24");
	assert_int_equal(run_in(0, nft, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "ip saddr 10.89.3.0/24"));
	assert_int_equal(count_files(f->state), 1);
	assert_int_equal(ping_from(ka, "10.89.3.1"), 0);

	/* once it is released, the count says so */
	cfg.bip = "10.89.3.1/24";
	assert_int_equal(netw_open(&cfg, &f->n, &err), 0);
	mkid(id, 1);
	assert_int_equal(netw_detach(f->n, id, &err), 0);
	assert_int_equal(netw_count(f->n), 0);
}

/* ---- the containers object's subnet ---- */

static void closed_cb(void *arg)
{
	*(bool *)arg = true;
}

static void ctr_done(uv_loop_t *loop, struct containers *cs)
{
	bool closed = false;
	double deadline = now_ms() + WAIT_MS;

	ctr_close(cs, closed_cb, &closed);
	while (!closed && now_ms() < deadline)
		uv_run(loop, UV_RUN_ONCE);
	assert_true(closed);
}

static void test_ctr_set_bip(void **state)
{
	struct fx *f = *state;
	struct netw_config ncfg = {.state_dir = f->state};
	struct ctr_config cc;
	struct containers *cs = NULL, *off = NULL;
	struct shoal_err err = {{0}};
	struct netw *n;
	uv_loop_t loop;
	char root[128], out[1024], id[65];
	pid_t ka = kid(f);

	/* a bridge from an earlier run, on the default subnet */
	open_default(f);
	netw_close(f->n);
	f->n = NULL;

	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&cc, 0, sizeof(cc));
	PATHF(root, "%s/containers", f->dir);
	cc.loop = &loop;
	cc.root = root;
	cc.driver = CTR_DRIVER_PROCESS;
	cc.net = &ncfg;
	if (ctr_open(&cc, &cs, &err) != 0)
		fail_msg("ctr_open: %s", err.msg);

	assert_int_equal(ctr_net_set_bip(cs, "10.89.3.1", &err), SHOAL_EINVAL);
	print_message("# %s\n", err.msg);
	assert_int_equal(ctr_net_set_bip(cs, "10.89.3.0/24", &err), SHOAL_EINVAL);
	/* before the first use: only remembered */
	assert_int_equal(ctr_net_set_bip(cs, "10.89.3.1/24", &err), 0);
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.88.0.1/16");
	/* the first use re-addresses the bridge left by the earlier run */
	n = ctr_net(cs, &err);
	if (n == NULL)
		fail_msg("ctr_net: %s", err.msg);
	assert_string_equal(netw_bip(n), "10.89.3.1/24");
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.89.3.1/24");

	/* same: nothing to do; another, unused: re-addressed */
	assert_int_equal(ctr_net_set_bip(cs, "10.89.3.1/24", &err), 0);
	assert_ptr_equal(ctr_net(cs, &err), n);
	if (ctr_net_set_bip(cs, "10.89.4.1/24", &err) != 0)
		fail_msg("ctr_net_set_bip: %s", err.msg);
	n = ctr_net(cs, &err);
	assert_non_null(n);
	assert_string_equal(netw_bip(n), "10.89.4.1/24");
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.89.4.1/24");

	/* in use: refused, nothing changed */
	mkid(id, 1);
	ns_path(ka, root);
	if (netw_attach(n, id, root, NULL, &err) != 0)
		fail_msg("netw_attach: %s", err.msg);
	assert_int_equal(ctr_net_set_bip(cs, "10.89.5.1/24", &err), SHOAL_EBUSY);
	assert_string_equal(err.msg, "containers still use the node's old subnet 10.89.4.1/24: "
				     "remove them, then restart the daemon");
	assert_ptr_equal(ctr_net(cs, &err), n);
	assert_string_equal(netw_bip(n), "10.89.4.1/24");
	if_addrs("shoal0", out, sizeof(out));
	assert_string_equal(out, "10.89.4.1/24");
	assert_int_equal(ping_from(ka, "10.89.4.1"), 0);
	assert_int_equal(netw_detach(n, id, &err), 0);
	ctr_done(&loop, cs);

	/* networking off */
	PATHF(root, "%s/containers-off", f->dir);
	cc.net = NULL;
	if (ctr_open(&cc, &off, &err) != 0)
		fail_msg("ctr_open: %s", err.msg);
	assert_int_equal(ctr_net_set_bip(off, "10.89.3.1/24", &err), SHOAL_ENOTFOUND);
	print_message("# %s\n", err.msg);
	ctr_done(&loop, off);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_creates_bridge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attach_two_reach_each_other, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_detach_frees_lowest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attach_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_allocations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exhaustion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_config_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_destroy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbound_nat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readdress, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctr_set_bip, setup, teardown),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
