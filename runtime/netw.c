/* Container networking on one node: bridge, IPAM, veth pairs, NAT, via iproute2 and nft. */
#include "runtime/netw.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "runtime/netw_priv.h"

#define ID_LEN	    64
#define OUTPUT_MAX  4096		  /* bytes of a command's output kept for messages */
#define OUTPUT_CAP  (1U << 20)		  /* bytes of a command's output kept for the caller */
#define BIP_MAX	    (INET_ADDRSTRLEN + 4) /* "255.255.255.255/32" */
#define NFT_TABLE   "shoal"
#define FORWARD_SYS "/proc/sys/net/ipv4/ip_forward"

/* One address handed out: the container id and the address (host order). */
struct alloc {
	char id[ID_LEN + 1];
	uint32_t addr;
};

struct netw {
	char *state_dir;
	char bridge[NETW_IFNAME_MAX];
	uint32_t gw; /* host order, as every address below */
	uint32_t net;
	uint32_t bcast;
	uint8_t prefix;
	char bip[BIP_MAX]; /* gw/prefix, as opened */
	char ip_bin[PATH_MAX];
	char nft_bin[PATH_MAX];
	struct alloc *v; /* sorted by addr */
	size_t n;
	size_t cap;
};

/* ---- spawning ip and nft ---- */

/* Append to @buf (@len bytes, *@off used); the buffers are sized for the
 * longest names, so truncation is a bug. */
__attribute__((format(printf, 4, 5))) static void appendf(char *buf, size_t len, size_t *off,
							  const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	PRE(k >= 0 && (size_t)k < len - *off);
	if (k < 0 || (size_t)k >= len - *off)
		k = (int)(len - *off - 1);
	*off += (size_t)k;
}

/* Move @fd to a descriptor >= 10 in a forked child, so dup2 onto 0..3 cannot
 * clobber another source. Returns the new fd or -1. */
static int lift(int fd)
{
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

static void child(const char *const argv[], int in, int out, int nsfd, int pass_fd)
{
	static const char nsmsg[] = "cannot enter the container's network namespace (setns)\n";
	/* execv takes char *const[] for history's sake; it writes nothing. */
	union {
		const char *const *c;
		char *const *m;
	} u = {.c = argv};

	in = lift(in);
	out = lift(out);
	nsfd = lift(nsfd);
	pass_fd = lift(pass_fd);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	if (pass_fd >= 0 && dup2(pass_fd, 3) < 0)
		_exit(126);
	if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0) {
		ssize_t w = write(2, nsmsg, sizeof(nsmsg) - 1);
		(void)w;
		_exit(126);
	}
	close_range(pass_fd >= 0 ? 4 : 3, ~0U, 0);
	execv(argv[0], u.m);
	_exit(127);
}

/* Read what the command wrote to @fd (a memfd, from its start) into a heap
 * string of at most @cap bytes. Returns NULL when out of memory. */
static char *slurp(int fd, size_t cap)
{
	size_t len = 0, size = 1024;
	char *buf = malloc(size);

	if (buf == NULL)
		return NULL;
	if (lseek(fd, 0, SEEK_SET) == 0) {
		for (;;) {
			ssize_t r;
			if (len == size - 1 && size < cap) {
				char *t = realloc(buf, 2 * size);
				if (t == NULL) {
					free(buf);
					return NULL;
				}
				buf = t;
				size *= 2;
			}
			if (len == size - 1)
				break;
			r = read(fd, buf + len, size - 1 - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
	}
	buf[len] = '\0';
	return buf;
}

int netw_run(const char *const argv[], const char *input, int nsfd, int pass_fd, char **output,
	     const char *what, struct shoal_err *err)
{
	_cleanup_close_ int in = -1;
	_cleanup_close_ int out = -1;
	_cleanup_free_ char *buf = NULL;
	size_t ilen = input != NULL ? strlen(input) : 0;
	size_t len;
	int status;
	pid_t pid;

	in = memfd_create("shoal-netw-in", MFD_CLOEXEC);
	out = memfd_create("shoal-netw-out", MFD_CLOEXEC);
	if (in < 0 || out < 0)
		return shoal_errf(err, SHOAL_EIO, "%s: memfd_create: %s", what, strerror(errno));
	for (size_t off = 0; off < ilen;) {
		ssize_t w = write(in, input + off, ilen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return shoal_errf(err, SHOAL_EIO, "%s: write: %s", what, strerror(errno));
		off += (size_t)w;
	}
	if (lseek(in, 0, SEEK_SET) != 0)
		return shoal_errf(err, SHOAL_EIO, "%s: lseek: %s", what, strerror(errno));
	pid = fork();
	if (pid < 0)
		return shoal_errf(err, SHOAL_EIO, "%s: fork: %s", what, strerror(errno));
	if (pid == 0)
		child(argv, in, out, nsfd, pass_fd);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return shoal_errf(err, SHOAL_EIO, "%s: waitpid: %s", what, strerror(errno));
	}
	buf = slurp(out, output != NULL ? OUTPUT_CAP : OUTPUT_MAX);
	if (buf == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "%s: out of memory", what);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		len = strlen(buf);
		if (len > OUTPUT_MAX - 1)
			buf[len = OUTPUT_MAX - 1] = '\0';
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			buf[--len] = '\0';
		for (char *p = buf; *p != '\0'; p++)
			if (*p == '\n')
				*p = ' ';
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return shoal_errf(err, SHOAL_EIO, "%s: cannot run %s", what, argv[0]);
		return shoal_errf(err, SHOAL_EIO, "%s: %s exited with %d: %s", what, argv[0],
				  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
				  len > 0 ? buf : "(no output)");
	}
	if (output != NULL) {
		*output = buf;
		buf = NULL;
	}
	return 0;
}

static int ip_batch(const struct netw *n, const char *batch, int nsfd, int pass_fd,
		    const char *what, struct shoal_err *err)
{
	const char *argv[] = {n->ip_bin, "-batch", "-", NULL};
	return netw_run(argv, batch, nsfd, pass_fd, NULL, what, err);
}

int netw_find_bin(const char *name, const char *pkg, char *out, size_t len, struct shoal_err *err)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	char *save = NULL;

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin:/usr/bin:/bin", path != NULL ? path : "");
	for (char *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/')
			continue;
		if ((size_t)snprintf(out, len, "%s/%s", d, name) < len && access(out, X_OK) == 0)
			return 0;
	}
	return shoal_errf(err, SHOAL_ENOTFOUND,
			  "'%s' was not found in PATH or /usr/sbin: install %s", name, pkg);
}

/* ---- addresses ---- */

static void fmt_addr(uint32_t a, char out[INET_ADDRSTRLEN])
{
	struct in_addr ia = {.s_addr = htonl(a)};
	inet_ntop(AF_INET, &ia, out, INET_ADDRSTRLEN);
}

static uint32_t mask_of(uint8_t prefix)
{
	return prefix == 0 ? 0 : ~0U << (32 - prefix);
}

int netw_parse_bip(const char *bip, uint32_t *gw, uint8_t *prefix, struct shoal_err *err)
{
	const char *slash = strchr(bip, '/');
	char host[INET_ADDRSTRLEN];
	struct in_addr ia;
	unsigned p = 0;
	uint32_t a, mask;

	if (slash == NULL || (size_t)(slash - bip) >= sizeof(host))
		return shoal_errf(err, SHOAL_EINVAL,
				  "bip '%.64s' is not of the form GATEWAY/PREFIX (e.g. %s)", bip,
				  NETW_DEFAULT_BIP);
	memcpy(host, bip, (size_t)(slash - bip));
	host[slash - bip] = '\0';
	if (inet_pton(AF_INET, host, &ia) != 1)
		return shoal_errf(err, SHOAL_EINVAL, "bip '%.64s': '%s' is not an IPv4 address",
				  bip, host);
	if (slash[1] == '\0' || strlen(slash + 1) > 2)
		return shoal_errf(err, SHOAL_EINVAL, "bip '%.64s': the prefix must be 8..30", bip);
	for (const char *c = slash + 1; *c != '\0'; c++) {
		if (*c < '0' || *c > '9')
			return shoal_errf(err, SHOAL_EINVAL,
					  "bip '%.64s': the prefix must be 8..30", bip);
		p = p * 10 + (unsigned)(*c - '0');
	}
	if (p < 8 || p > 30)
		return shoal_errf(err, SHOAL_EINVAL, "bip '%.64s': the prefix must be 8..30", bip);
	a = ntohl(ia.s_addr);
	mask = mask_of((uint8_t)p);
	if ((a & ~mask) == 0 || (a & ~mask) == ~mask)
		return shoal_errf(err, SHOAL_EINVAL,
				  "bip '%.64s': the gateway must be a host address of the subnet, "
				  "not its network or broadcast address",
				  bip);
	*gw = a;
	*prefix = (uint8_t)p;
	return 0;
}

static int check_bridge_name(const char *name, struct shoal_err *err)
{
	size_t len = strlen(name);

	if (len == 0 || len >= NETW_IFNAME_MAX || name[0] == '-' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_.-") != len)
		return shoal_errf(err, SHOAL_EINVAL,
				  "bridge name '%.64s' is not a valid interface name (1..15 of "
				  "letters, digits, '_', '.', '-')",
				  name);
	return 0;
}

static bool valid_id(const char *id)
{
	return strlen(id) == ID_LEN && strspn(id, "0123456789abcdef") == ID_LEN;
}

static struct alloc *find(const struct netw *n, const char *id)
{
	for (size_t i = 0; i < n->n; i++)
		if (strcmp(n->v[i].id, id) == 0)
			return &n->v[i];
	return NULL;
}

static int insert(struct netw *n, const char *id, uint32_t addr)
{
	size_t i = 0;

	if (n->n == n->cap) {
		size_t cap = n->cap != 0 ? 2 * n->cap : 16;
		struct alloc *v = realloc(n->v, cap * sizeof(*v));
		if (v == NULL)
			return SHOAL_ENOMEM;
		n->v = v;
		n->cap = cap;
	}
	while (i < n->n && n->v[i].addr < addr)
		i++;
	memmove(&n->v[i + 1], &n->v[i], (n->n - i) * sizeof(*n->v));
	memcpy(n->v[i].id, id, ID_LEN + 1);
	n->v[i].addr = addr;
	n->n++;
	return 0;
}

static void drop(struct netw *n, const char *id)
{
	struct alloc *a = find(n, id);
	size_t i;

	if (a == NULL)
		return;
	i = (size_t)(a - n->v);
	memmove(&n->v[i], &n->v[i + 1], (n->n - i - 1) * sizeof(*n->v));
	n->n--;
}

/* The lowest free host address, or 0 if the subnet is full. */
static uint32_t lowest_free(const struct netw *n)
{
	uint32_t c = n->net + 1;
	size_t i = 0;

	while (c < n->bcast) {
		while (i < n->n && n->v[i].addr < c)
			i++;
		if (c != n->gw && (i == n->n || n->v[i].addr != c))
			return c;
		c++;
	}
	return 0;
}

static int alloc_path(const struct netw *n, const char *id, char *out, size_t len)
{
	return (size_t)snprintf(out, len, "%s/%s", n->state_dir, id) < len ? 0 : -1;
}

static int load_one(struct netw *n, const char *id, struct shoal_err *err)
{
	_cleanup_free_ char *data = NULL;
	char path[PATH_MAX];
	char other[INET_ADDRSTRLEN];
	struct in_addr ia;
	size_t len;
	uint32_t a;
	int rv;

	if (alloc_path(n, id, path, sizeof(path)) != 0)
		return shoal_errf(err, SHOAL_EINVAL, "state directory path too long");
	rv = fs_read_all(path, 64, &data, &len, err);
	if (rv != 0)
		return rv;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
		data[--len] = '\0';
	if (inet_pton(AF_INET, data, &ia) != 1)
		return shoal_errf(err, SHOAL_EPROTO,
				  "allocation %s does not hold an IPv4 address: remove the file "
				  "if its container is gone",
				  path);
	a = ntohl(ia.s_addr);
	if (a <= n->net || a >= n->bcast || a == n->gw || (a & mask_of(n->prefix)) != n->net) {
		char gw[INET_ADDRSTRLEN];
		fmt_addr(n->gw, gw);
		return shoal_errf(err, SHOAL_ECONFLICT,
				  "allocation %s holds %s, which is not a container address of "
				  "the subnet %s/%u: remove the container (or the file) or use "
				  "the bip it was made with",
				  path, data, gw, n->prefix);
	}
	for (size_t i = 0; i < n->n; i++)
		if (n->v[i].addr == a) {
			fmt_addr(a, other);
			return shoal_errf(err, SHOAL_EPROTO,
					  "allocations %s and %.12s... both hold %s: remove one",
					  path, n->v[i].id, other);
		}
	if (insert(n, id, a) != 0)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

static int load(struct netw *n, struct shoal_err *err)
{
	DIR *d = opendir(n->state_dir);
	struct dirent *e;
	int rv = 0;

	if (d == NULL)
		return shoal_errf(err, SHOAL_EIO, "open %s: %s", n->state_dir, strerror(errno));
	while (rv == 0 && (e = readdir(d)) != NULL) {
		if (!valid_id(e->d_name)) /* ".", "..", leftover temp files */
			continue;
		rv = load_one(n, e->d_name, err);
	}
	closedir(d);
	return rv;
}

/* ---- the bridge and the NAT table ---- */

/* Inspect the existing bridge: refuse a non-bridge or one with another IPv4
 * address, unless @readdress and no allocation is held (*@flush: its IPv4
 * addresses are to go); *@has_addr says whether the gateway address is there. */
static int inspect_bridge(struct netw *n, bool readdress, bool *has_addr, bool *flush,
			  struct shoal_err *err)
{
	const char *argv[] = {n->ip_bin, "-j", "-d", "addr", "show", "dev", n->bridge, NULL};
	_cleanup_free_ char *out = NULL;
	char gw[INET_ADDRSTRLEN];
	json_t *root, *link, *addrs, *a;
	const char *kind = NULL;
	size_t i;
	int rv;

	rv = netw_run(argv, NULL, -1, -1, &out, "inspect the bridge", err);
	if (rv != 0)
		return rv;
	root = json_loads(out, 0, NULL);
	link = json_is_array(root) ? json_array_get(root, 0) : NULL;
	if (link == NULL) {
		json_decref(root);
		return shoal_errf(err, SHOAL_EIO, "inspect the bridge %s: unreadable ip output",
				  n->bridge);
	}
	kind = json_string_value(json_object_get(json_object_get(link, "linkinfo"), "info_kind"));
	if (kind == NULL || strcmp(kind, "bridge") != 0) {
		rv = shoal_errf(err, SHOAL_ECONFLICT,
				"interface %s exists and is not a bridge (%s): remove it or "
				"choose another bridge name",
				n->bridge, kind != NULL ? kind : "no kind");
		json_decref(root);
		return rv;
	}
	fmt_addr(n->gw, gw);
	*has_addr = false;
	*flush = false;
	addrs = json_object_get(link, "addr_info");
	json_array_foreach(addrs, i, a)
	{
		const char *fam = json_string_value(json_object_get(a, "family"));
		const char *local = json_string_value(json_object_get(a, "local"));
		json_int_t plen = json_integer_value(json_object_get(a, "prefixlen"));
		if (fam == NULL || strcmp(fam, "inet") != 0 || local == NULL)
			continue;
		if (strcmp(local, gw) == 0 && plen == n->prefix) {
			*has_addr = true;
			continue;
		}
		if (readdress && n->n == 0) {
			*flush = true;
			continue;
		}
		if (readdress) {
			rv = shoal_errf(err, SHOAL_ECONFLICT,
					"bridge %s has the address %s/%lld, not the new bip %s/%u, "
					"and %zu container(s) still hold an address on it: remove "
					"them first",
					n->bridge, local, (long long)plen, gw, n->prefix, n->n);
			break;
		}
		rv = shoal_errf(err, SHOAL_ECONFLICT,
				"bridge %s has the address %s/%lld, not the configured bip "
				"%s/%u: set bip to match or remove the bridge (ip link del %s)",
				n->bridge, local, (long long)plen, gw, n->prefix, n->bridge);
		break;
	}
	json_decref(root);
	return rv;
}

static int setup_bridge(struct netw *n, bool readdress, bool *created, struct shoal_err *err)
{
	char batch[256];
	char gw[INET_ADDRSTRLEN];
	bool has_addr = false, flush = false;
	size_t off = 0;
	int rv;

	*created = if_nametoindex(n->bridge) == 0;
	if (!*created) {
		rv = inspect_bridge(n, readdress, &has_addr, &flush, err);
		if (rv != 0)
			return rv;
	}
	fmt_addr(n->gw, gw);
	if (*created)
		appendf(batch, sizeof(batch), &off, "link add %s type bridge\n", n->bridge);
	/* "to 0.0.0.0/0": IPv4 only, the IPv6 link-local address stays. */
	if (flush)
		appendf(batch, sizeof(batch), &off, "addr flush dev %s to 0.0.0.0/0\n", n->bridge);
	if (!has_addr || flush)
		appendf(batch, sizeof(batch), &off, "addr add %s/%u dev %s\n", gw, n->prefix,
			n->bridge);
	appendf(batch, sizeof(batch), &off, "link set %s up\n", n->bridge);
	return ip_batch(n, batch, -1, -1, "set up the bridge", err);
}

static int setup_nat(struct netw *n, struct shoal_err *err)
{
	const char *argv[] = {n->nft_bin, "-f", "-", NULL};
	char net[INET_ADDRSTRLEN];
	char script[1024];

	fmt_addr(n->net, net);
	/* Create-then-delete makes the replacement one atomic transaction. */
	snprintf(script, sizeof(script),
		 "table ip " NFT_TABLE "\n"
		 "delete table ip " NFT_TABLE "\n"
		 "table ip " NFT_TABLE " {\n"
		 "\tchain postrouting {\n"
		 "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		 "\t\tip saddr %s/%u oifname != \"%s\" masquerade\n"
		 "\t}\n"
		 "\tchain forward {\n"
		 "\t\ttype filter hook forward priority filter; policy accept;\n"
		 "\t\tiifname \"%s\" accept\n"
		 "\t\toifname \"%s\" accept\n"
		 "\t}\n"
		 "}\n",
		 net, n->prefix, n->bridge, n->bridge, n->bridge);
	return netw_run(argv, script, -1, -1, NULL, "install the NAT table", err);
}

static int enable_forwarding(struct shoal_err *err)
{
	_cleanup_close_ int fd = open(FORWARD_SYS, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "1\n", 2) != 2)
		return shoal_errf(err, SHOAL_EIO, "enable IPv4 forwarding (%s): %s", FORWARD_SYS,
				  strerror(errno));
	return 0;
}

/* ---- public API ---- */

static int open_net(const struct netw_config *cfg, bool readdress, struct netw **out,
		    struct shoal_err *err)
{
	const char *bip = cfg->bip != NULL ? cfg->bip : NETW_DEFAULT_BIP;
	const char *bridge = cfg->bridge != NULL ? cfg->bridge : NETW_DEFAULT_BRIDGE;
	char gwtext[INET_ADDRSTRLEN];
	struct netw *n;
	bool created = false;
	uint32_t gw = 0;
	uint8_t prefix = 0;
	int rv;

	if (cfg->state_dir == NULL || cfg->state_dir[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL, "network: no state directory given");
	rv = check_bridge_name(bridge, err);
	if (rv == 0)
		rv = netw_parse_bip(bip, &gw, &prefix, err);
	if (rv != 0)
		goto err;
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	n->state_dir = strdup(cfg->state_dir);
	if (n->state_dir == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err_free;
	}
	memcpy(n->bridge, bridge, strlen(bridge) + 1);
	n->gw = gw;
	n->prefix = prefix;
	n->net = gw & mask_of(prefix);
	n->bcast = n->net | ~mask_of(prefix);
	fmt_addr(gw, gwtext);
	snprintf(n->bip, sizeof(n->bip), "%s/%u", gwtext, prefix);
	rv = netw_find_bin("ip", "iproute2", n->ip_bin, sizeof(n->ip_bin), err);
	if (rv == 0)
		rv = netw_find_bin("nft", "nftables", n->nft_bin, sizeof(n->nft_bin), err);
	if (rv == 0)
		rv = fs_mkdir_p(n->state_dir, 0700, err);
	if (rv == 0)
		rv = load(n, err);
	if (rv != 0)
		goto err_free;
	rv = setup_bridge(n, readdress, &created, err);
	if (rv != 0)
		goto err_free;
	rv = setup_nat(n, err);
	if (rv == 0)
		rv = enable_forwarding(err);
	if (rv != 0)
		goto err_bridge;
	*out = n;
	return 0;

err_bridge:
	if (created) {
		char batch[64];
		snprintf(batch, sizeof(batch), "link del %s\n", n->bridge);
		ip_batch(n, batch, -1, -1, "remove the bridge", NULL);
	}
err_free:
	netw_close(n);
err:
	shoal_err_wrap(err, "network");
	return rv;
}

int netw_open(const struct netw_config *cfg, struct netw **out, struct shoal_err *err)
{
	return open_net(cfg, false, out, err);
}

int netw_open_readdress(const struct netw_config *cfg, struct netw **out, struct shoal_err *err)
{
	return open_net(cfg, true, out, err);
}

void netw_close(struct netw *n)
{
	if (n == NULL)
		return;
	free(n->v);
	free(n->state_dir);
	free(n);
}

int netw_destroy(struct netw *n, struct shoal_err *err)
{
	const char *argv[] = {n->nft_bin, "-f", "-", NULL};
	char batch[64];
	int rv;

	if (n->n > 0)
		return shoal_errf(err, SHOAL_EBUSY,
				  "network: %zu container(s) still hold an address on %s: detach "
				  "them first",
				  n->n, n->bridge);
	if (if_nametoindex(n->bridge) != 0) {
		snprintf(batch, sizeof(batch), "link del %s\n", n->bridge);
		rv = ip_batch(n, batch, -1, -1, "remove the bridge", err);
		if (rv != 0 && if_nametoindex(n->bridge) != 0)
			goto err;
	}
	rv = netw_run(argv, "table ip " NFT_TABLE "\ndelete table ip " NFT_TABLE "\n", -1, -1, NULL,
		      "remove the NAT table", err);
	if (rv != 0)
		goto err;
	return 0;
err:
	shoal_err_wrap(err, "network");
	return rv;
}

size_t netw_count(const struct netw *n)
{
	return n->n;
}

const char *netw_bip(const struct netw *n)
{
	return n->bip;
}

static void fill(const struct netw *n, const struct alloc *a, struct netw_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	out->addr.s_addr = htonl(a->addr);
	out->prefix = n->prefix;
	out->gateway.s_addr = htonl(n->gw);
	snprintf(out->host_ifname, sizeof(out->host_ifname), "vsh%.8s", a->id);
	out->mac[0] = 0x02;
	out->mac[1] = 0x42;
	out->mac[2] = (uint8_t)(a->addr >> 24);
	out->mac[3] = (uint8_t)(a->addr >> 16);
	out->mac[4] = (uint8_t)(a->addr >> 8);
	out->mac[5] = (uint8_t)a->addr;
}

int netw_lookup(const struct netw *n, const char *id, struct netw_endpoint *out)
{
	const struct alloc *a = find(n, id);

	if (a == NULL)
		return SHOAL_ENOTFOUND;
	fill(n, a, out);
	return 0;
}

void netw_foreach(const struct netw *n, void (*cb)(void *arg, const char *id), void *arg)
{
	for (size_t i = 0; i < n->n; i++)
		cb(arg, n->v[i].id);
}

static void del_host_veth(const struct netw *n, const char *ifname)
{
	char batch[64];

	if (if_nametoindex(ifname) == 0)
		return;
	snprintf(batch, sizeof(batch), "link del %s\n", ifname);
	ip_batch(n, batch, -1, -1, "remove the veth", NULL);
}

/* Create the veth pair into @nsfd and configure both ends. @had_veth: the
 * host end was already there (an attach again), so only make sure of it. */
static int wire(const struct netw *n, const struct netw_endpoint *ep, int nsfd, bool had_veth,
		struct shoal_err *err)
{
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
	char host[512], inside[512];
	size_t off = 0;
	int rv;

	inet_ntop(AF_INET, &ep->addr, addr, sizeof(addr));
	inet_ntop(AF_INET, &ep->gateway, gw, sizeof(gw));
	if (!had_veth)
		appendf(host, sizeof(host), &off,
			"link add %s type veth peer name eth0 address "
			"%02x:%02x:%02x:%02x:%02x:%02x netns /proc/self/fd/3\n",
			ep->host_ifname, ep->mac[0], ep->mac[1], ep->mac[2], ep->mac[3], ep->mac[4],
			ep->mac[5]);
	appendf(host, sizeof(host), &off, "link set %s master %s\nlink set %s up\n",
		ep->host_ifname, n->bridge, ep->host_ifname);
	rv = ip_batch(n, host, -1, nsfd, "create the veth pair", err);
	if (rv != 0)
		return rv;
	snprintf(inside, sizeof(inside),
		 "link set lo up\n"
		 "addr replace %s/%u dev eth0\n"
		 "link set eth0 up\n"
		 "route replace default via %s dev eth0\n",
		 addr, ep->prefix, gw);
	return ip_batch(n, inside, nsfd, -1, "configure eth0 in the container", err);
}

static int open_netns(const char *path, int *fd, struct shoal_err *err)
{
	int t;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return shoal_errf(err, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO,
				  "network namespace %.200s: %s", path, strerror(errno));
	t = ioctl(*fd, NS_GET_NSTYPE);
	if (t != CLONE_NEWNET)
		return shoal_errf(err, SHOAL_EINVAL, "%.200s is not a network namespace", path);
	return 0;
}

int netw_attach(struct netw *n, const char *id, const char *netns_path, struct netw_endpoint *out,
		struct shoal_err *err)
{
	_cleanup_close_ int nsfd = -1;
	struct netw_endpoint ep;
	struct alloc *a;
	char path[PATH_MAX];
	char text[INET_ADDRSTRLEN + 1];
	bool had_alloc, had_veth;
	int rv;

	if (!valid_id(id))
		return shoal_errf(err, SHOAL_EINVAL,
				  "network: container id '%.80s' is not 64 lowercase hex digits",
				  id);
	rv = open_netns(netns_path, &nsfd, err);
	if (rv != 0)
		goto err;
	for (size_t i = 0; i < n->n; i++)
		if (strncmp(n->v[i].id, id, 8) == 0 && strcmp(n->v[i].id, id) != 0) {
			rv = shoal_errf(err, SHOAL_ECONFLICT,
					"container %.12s... already uses the interface vsh%.8s",
					n->v[i].id, id);
			goto err;
		}
	if (alloc_path(n, id, path, sizeof(path)) != 0) {
		rv = shoal_errf(err, SHOAL_EINVAL, "state directory path too long");
		goto err;
	}
	a = find(n, id);
	had_alloc = a != NULL;
	if (!had_alloc) {
		uint32_t addr = lowest_free(n);
		char net[INET_ADDRSTRLEN];
		if (addr == 0) {
			fmt_addr(n->net, net);
			rv = shoal_errf(
			    err, SHOAL_EBUSY,
			    "subnet %s/%u is full: all %u container addresses are in use", net,
			    n->prefix, n->bcast - n->net - 2);
			goto err;
		}
		fmt_addr(addr, text);
		strcat(text, "\n");
		/* On disk first: a crash after wiring never hands the address out twice. */
		rv = fs_write_atomic(path, text, strlen(text), 0600, err);
		if (rv != 0)
			goto err;
		if (insert(n, id, addr) != 0) {
			fs_unlink_durable(path, NULL);
			rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
			goto err;
		}
		a = find(n, id);
	}
	fill(n, a, &ep);
	had_veth = if_nametoindex(ep.host_ifname) != 0;
	rv = wire(n, &ep, nsfd, had_veth, err);
	if (rv != 0 && had_veth) {
		/* A leftover host end (e.g. of the container's previous namespace,
		 * still being torn down) not paired with an eth0 here: start over. */
		del_host_veth(n, ep.host_ifname);
		rv = wire(n, &ep, nsfd, false, err);
	}
	if (rv != 0) {
		del_host_veth(n, ep.host_ifname);
		if (!had_alloc) {
			drop(n, id);
			fs_unlink_durable(path, NULL);
		}
		goto err;
	}
	if (out != NULL)
		*out = ep;
	return 0;
err:
	shoal_err_wrap(err, "network for container %.12s", id);
	return rv;
}

int netw_detach(struct netw *n, const char *id, struct shoal_err *err)
{
	char path[PATH_MAX];
	char ifname[NETW_IFNAME_MAX];
	char batch[64];
	int rv;

	if (find(n, id) == NULL)
		return 0;
	snprintf(ifname, sizeof(ifname), "vsh%.8s", id);
	if (if_nametoindex(ifname) != 0) {
		snprintf(batch, sizeof(batch), "link del %s\n", ifname);
		rv = ip_batch(n, batch, -1, -1, "remove the veth", err);
		/* It may vanish on its own meanwhile, with its namespace. */
		if (rv != 0 && if_nametoindex(ifname) != 0)
			goto err;
	}
	if (alloc_path(n, id, path, sizeof(path)) != 0) {
		rv = shoal_errf(err, SHOAL_EINVAL, "state directory path too long");
		goto err;
	}
	rv = fs_unlink_durable(path, err);
	if (rv != 0)
		goto err;
	drop(n, id);
	return 0;
err:
	shoal_err_wrap(err, "network for container %.12s", id);
	return rv;
}
