/* This node's membership of a swarm: the local state machine, its files, the
 * Raft consensus and the store it drives.
 *
 *   INACTIVE --init--> PENDING --leader, initial records committed--> ACTIVE
 *   ACTIVE --leave--> LEAVING --raft closed, state erased--> INACTIVE
 *   ACTIVE --init --force-new-cluster--> PENDING (raft recovered as sole voter)
 *   (restart with state on disk) --open--> PENDING --> ACTIVE
 *   INACTIVE/PENDING --raft cannot start--> ERROR --leave --force--> LEAVING
 *
 * Files: STATE_DIR/swarm/state.json (node id, Raft id, addresses), node.key
 * (identity, 0600), node.crt (its certificate), root.key (cluster root key,
 * 0600); STATE_DIR/raft (the log). Raft rides secure streams accepted on the
 * listen address (the cluster port). */
#include "node/swarm.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <net/if.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "net/cert.h"
#include "net/identity.h"
#include "net/stream.h"
#include "node/command.h"
#include "node/records.h"
#include "node/store.h"
#include "raft/consensus.h"

#define DEFAULT_PORT	4377
#define SETTLE_POLL_MS	10
#define INIT_TIMEOUT_MS 20000
#define ADDR_LEN	64

struct swarm {
	uv_loop_t *loop;
	enum swarm_state state;
	char *state_dir;
	char *swarm_dir;
	char *hostname;
	char *cfg_listen;
	char *cfg_advertise;
	unsigned election_ms;
	unsigned heartbeat_ms;
	unsigned snapshot_interval;

	/* This node, from state.json. */
	char node_id[ID_LEN + 1];
	uint64_t raft_id;
	bool bootstrapped; /* this node created the cluster: bootstrap Raft if its log is empty */
	char listen_addr[ADDR_LEN];
	char advertise_addr[ADDR_LEN];
	struct identity node_key;
	struct cert cert;	    /* this node's certificate (node.crt) */
	struct stream_identity sid; /* key + certificate for every stream */
	struct secure_transport_config tcfg;
	struct stream_listener *listener; /* the cluster port, while a member */

	struct store *store;
	struct consensus *consensus;
	uv_timer_t settle_timer;
	uint64_t settle_deadline;
	bool settling;		/* a barrier or the initial proposal is in flight */
	bool consensus_closing; /* leave or force-new-cluster is restarting Raft */
	uv_timer_t stop_timer;	/* defers raft_close out of whatever callback asked for it */
	void (*after_stop)(void *arg);
	unsigned open_timers;	   /* handles still to close on swarm_close */
	char error[SHOAL_ERR_LEN]; /* why the node is in SWARM_ERROR */

	/* The one init/leave operation in progress. */
	swarm_done_cb op_cb;
	void *op_arg;

	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static const char *const state_names[] = {"inactive", "pending", "active",
					  "leaving",  "error",	 "closed"};

const char *swarm_state_name(enum swarm_state st)
{
	return state_names[st];
}

/* Move to @to, checking the transition against the table above. */
static void set_state(struct swarm *s, enum swarm_state to)
{
	static const bool allowed[6][6] = {
	    /*                   INACTIVE PENDING ACTIVE LEAVING ERROR  CLOSED */
	    /* from INACTIVE */ {false, true, false, false, true, true},
	    /* from PENDING  */ {true, false, true, true, true, true},
	    /* from ACTIVE   */ {false, true, false, true, false, true},
	    /* from LEAVING  */ {true, false, false, false, false, true},
	    /* from ERROR    */ {false, false, false, true, false, true},
	    /* from CLOSED   */ {false, false, false, false, false, false},
	};

	PRE(allowed[s->state][to]);
	(void)allowed;
	log_debug("swarm", "state %s -> %s", state_names[s->state], state_names[to]);
	s->state = to;
}

static void do_stop(uv_timer_t *t)
{
	struct swarm *s = t->data;

	consensus_close(s->consensus, s->after_stop, s);
}

/* Close Raft, then call @next. Never calls raft_close() on the caller's stack:
 * the request that asked may be answered from inside a raft callback (its
 * connection's next pipelined request runs there too). */
static void stop_consensus(struct swarm *s, void (*next)(void *arg))
{
	s->consensus_closing = true;
	s->after_stop = next;
	uv_timer_start(&s->stop_timer, do_stop, 0, 0);
}

/* Raft could not be started for a node that has swarm state: keep the daemon
 * up (Docker does the same) and say why; leaving is still possible. */
static void enter_error(struct swarm *s, const struct shoal_err *err)
{
	snprintf(s->error, sizeof(s->error), "%s", err->msg);
	if (s->state != SWARM_ERROR)
		set_state(s, SWARM_ERROR);
	log_error("swarm", "%s", err->msg);
}

static void op_finish(struct swarm *s, int status, const struct shoal_err *err)
{
	swarm_done_cb cb = s->op_cb;

	s->op_cb = NULL;
	if (cb != NULL)
		cb(s->op_arg, status, err);
}

/* --- addresses ---------------------------------------------------------- */

/* The first IPv4 address of interface @name, into @out. */
static int interface_ip(const char *name, char *out, size_t len)
{
	struct ifaddrs *ifs, *i;
	int rv = -1;

	if (getifaddrs(&ifs) != 0)
		return -1;
	for (i = ifs; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, name) != 0)
			continue;
		const struct sockaddr_in *sin = (const void *)i->ifa_addr;
		if (inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)len) != NULL)
			rv = 0;
		break;
	}
	freeifaddrs(ifs);
	return rv;
}

/* Parse "IP", "IP:PORT", "IFACE" or "IFACE:PORT" into an IPv4 address and port. */
static int parse_addr(const char *what, const char *in, unsigned default_port,
		      char ip[INET_ADDRSTRLEN], unsigned *port, struct shoal_err *err)
{
	char host[ADDR_LEN];
	const char *colon = strrchr(in, ':');
	size_t n = colon != NULL ? (size_t)(colon - in) : strlen(in);
	struct in_addr a;

	*port = default_port;
	if (n == 0 && colon != NULL) {
		memcpy(host, "0.0.0.0", 8);
	} else {
		if (n == 0 || n >= sizeof(host))
			return shoal_errf(err, SHOAL_EINVAL, "invalid %s address '%s'", what, in);
		memcpy(host, in, n);
		host[n] = '\0';
	}
	if (colon != NULL) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || p == 0 || p > 65535)
			return shoal_errf(err, SHOAL_EINVAL, "invalid port in %s address '%s'",
					  what, in);
		*port = (unsigned)p;
	}
	if (inet_pton(AF_INET, host, &a) == 1 &&
	    inet_ntop(AF_INET, &a, ip, INET_ADDRSTRLEN) != NULL)
		return 0;
	if (interface_ip(host, ip, INET_ADDRSTRLEN) == 0)
		return 0;
	return shoal_errf(err, SHOAL_EINVAL,
			  "invalid %s address '%s': must be an IPv4 address or an interface name "
			  "with an IPv4 address",
			  what, in);
}

/* Docker's choice when no address is given: the one non-loopback address. */
static int autodetect_ip(char ip[INET_ADDRSTRLEN], struct shoal_err *err)
{
	struct ifaddrs *ifs, *i;
	char found[2][INET_ADDRSTRLEN];
	char names[2][IF_NAMESIZE + 1];
	int n = 0;

	if (getifaddrs(&ifs) != 0)
		return shoal_errf(err, SHOAL_EIO, "could not list network interfaces");
	for (i = ifs; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		const struct sockaddr_in *sin = (const void *)i->ifa_addr;
		if (n < 2) {
			inet_ntop(AF_INET, &sin->sin_addr, found[n], INET_ADDRSTRLEN);
			snprintf(names[n], sizeof(names[n]), "%s", i->ifa_name);
		}
		n++;
	}
	freeifaddrs(ifs);
	if (n == 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "could not find the system's IP address - specify one with "
				  "--advertise-addr");
	if (n > 1)
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "could not choose an IP address to advertise since this system has "
		    "multiple addresses on different interfaces (%s on %s and %s on "
		    "%s) - specify one with --advertise-addr",
		    found[0], names[0], found[1], names[1]);
	memcpy(ip, found[0], INET_ADDRSTRLEN);
	return 0;
}

/* Work out the listen and advertise addresses from the request and the
 * daemon's flags. Raft's TCP transport binds the advertised port, so the two
 * ports must agree. */
static int resolve_addrs(struct swarm *s, const struct swarm_init_req *req, char listen[ADDR_LEN],
			 char advertise[ADDR_LEN], struct shoal_err *err)
{
	const char *l = req->listen_addr != NULL && req->listen_addr[0] != '\0' ? req->listen_addr
										: s->cfg_listen;
	const char *a = req->advertise_addr != NULL && req->advertise_addr[0] != '\0'
			    ? req->advertise_addr
			    : s->cfg_advertise;
	char lip[INET_ADDRSTRLEN], aip[INET_ADDRSTRLEN];
	unsigned lport = DEFAULT_PORT, aport;
	int rv;

	if (l == NULL)
		l = "0.0.0.0:4377";
	rv = parse_addr("listen", l, DEFAULT_PORT, lip, &lport, err);
	if (rv != 0)
		return rv;
	if (a != NULL) {
		rv = parse_addr("advertise", a, lport, aip, &aport, err);
		if (rv != 0)
			return rv;
	} else if (strcmp(lip, "0.0.0.0") != 0) {
		memcpy(aip, lip, sizeof(aip));
		aport = lport;
	} else {
		rv = autodetect_ip(aip, err);
		if (rv != 0)
			return rv;
		aport = lport;
	}
	if (strcmp(aip, "0.0.0.0") == 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "advertise address must be a non-zero IP address or network "
				  "interface (with optional port number)");
	snprintf(listen, ADDR_LEN, "%s:%u", lip, lport);
	snprintf(advertise, ADDR_LEN, "%s:%u", aip, aport);
	return 0;
}

/* --- files ---------------------------------------------------------------- */

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* Remove everything that made this node a member: STATE_DIR/swarm and STATE_DIR/raft. */
static int erase_state(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *raft_dir = path_join(s->state_dir, "raft");
	_cleanup_free_ char *state = path_join(s->swarm_dir, "state.json");
	int rv;

	if (raft_dir == NULL || state == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	/* state.json going is the commit point: without it the node is not a
	 * member, whatever else a crash leaves behind (init wipes leftovers). */
	rv = fs_unlink_durable(state, err);
	if (rv == 0)
		rv = fs_rm_rf(s->swarm_dir, err);
	if (rv == 0)
		rv = fs_rm_rf(raft_dir, err);
	return rv;
}

static int save_state(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = path_join(s->swarm_dir, "state.json");
	json_t *o = json_pack("{s:i, s:s, s:I, s:b, s:s, s:s}", "Version", 1, "NodeID", s->node_id,
			      "RaftID", (json_int_t)s->raft_id, "Bootstrap", s->bootstrapped,
			      "ListenAddr", s->listen_addr, "AdvertiseAddr", s->advertise_addr);
	char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
	int rv;

	json_decref(o);
	if (text == NULL || path == NULL) {
		free(text);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory saving swarm state");
	}
	rv = fs_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rv;
}

static int load_state(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = path_join(s->swarm_dir, "state.json");
	_cleanup_free_ char *text = NULL;
	json_error_t jerr;
	json_t *o;
	const char *node_id, *listen, *advertise;
	json_int_t version, raft_id;
	int bootstrap = 0;
	int rv;

	if (path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = fs_read_all(path, 64 * 1024, &text, NULL, err);
	if (rv != 0)
		return rv;
	o = json_loads(text, 0, &jerr);
	if (o == NULL ||
	    json_unpack(o, "{s:I, s:s, s:I, s?b, s:s, s:s}", "Version", &version, "NodeID",
			&node_id, "RaftID", &raft_id, "Bootstrap", &bootstrap, "ListenAddr",
			&listen, "AdvertiseAddr", &advertise) != 0 ||
	    version != 1 || strlen(node_id) != ID_LEN || raft_id <= 0 ||
	    strlen(listen) >= ADDR_LEN || strlen(advertise) >= ADDR_LEN) {
		json_decref(o);
		return shoal_errf(err, SHOAL_EPROTO,
				  "%s is damaged; move %s and %s/raft away to start this node "
				  "afresh",
				  path, s->swarm_dir, s->state_dir);
	}
	memcpy(s->node_id, node_id, ID_LEN + 1);
	s->raft_id = (uint64_t)raft_id;
	s->bootstrapped = bootstrap != 0;
	snprintf(s->listen_addr, ADDR_LEN, "%s", listen);
	snprintf(s->advertise_addr, ADDR_LEN, "%s", advertise);
	json_decref(o);
	return 0;
}

/* --- Raft ----------------------------------------------------------------- */

static void settle_tick(uv_timer_t *t);

/* Entries kept after a snapshot for followers that lag (Docker's
 * LogEntriesForSlowFollowers, 500), never more than half the interval. */
static unsigned slow_follower_entries(const struct swarm *s)
{
	return s->snapshot_interval < 1000 ? s->snapshot_interval / 2 : 500;
}

/* Docker's default NodeCertExpiry; renewal comes with joins. Validity starts
 * a minute early to absorb clock skew between nodes. */
#define CERT_TTL_NS	 (90LL * 24 * 3600 * 1000000000)
#define CERT_BACKDATE_NS (60LL * 1000000000)

static int save_cert(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = path_join(s->swarm_dir, "node.crt");
	struct buf b;
	int rv;

	if (path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	buf_init(&b);
	rv = cert_encode(&s->cert, &b);
	if (rv == 0)
		rv = fs_write_atomic(path, b.data, b.len, 0600, err);
	else
		shoal_errf(err, rv, "out of memory encoding the node certificate");
	buf_free(&b);
	return rv;
}

/* Load node.crt and check that it is this node's, signed by the root it names. */
static int load_cert(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = path_join(s->swarm_dir, "node.crt");
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int rv;

	if (path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = fs_read_all(path, CERT_MAX_ENCODED, &data, &len, err);
	if (rv == 0)
		rv = cert_decode(data, len, &s->cert, err);
	if (rv == 0)
		rv = cert_verify(&s->cert, s->cert.root_pk, clock_now_ns(), err);
	if (rv == 0 && (strcmp(s->cert.node_id, s->node_id) != 0 ||
			memcmp(s->cert.node_pk, s->node_key.pk, IDENTITY_PK_LEN) != 0))
		rv = shoal_errf(err, SHOAL_EPROTO, "%s is not this node's certificate", path);
	if (rv != 0)
		shoal_err_wrap(err, "node certificate");
	return rv;
}

/* May the stream's peer speak Raft as server @raft_id? Only a manager, and
 * only as the Raft server of its own node record. */
static bool authorize_raft(void *arg, const struct stream_peer *peer, uint64_t raft_id)
{
	struct swarm *s = arg;

	if (!peer->authenticated || peer->cert.role != CERT_ROLE_MANAGER || s->store == NULL)
		return false;
	for (size_t i = 0; i < store_node_count(s->store); i++) {
		const struct node_rec *n = store_node_at(s->store, i);
		if (n->raft_id == raft_id)
			return strcmp(n->meta.id, peer->cert.node_id) == 0 &&
			       n->spec.role == NODE_ROLE_MANAGER;
	}
	return false;
}

static void refuse_message(struct stream *st, const void *data, size_t len, void *arg)
{
	(void)st;
	(void)data;
	(void)len;
	(void)arg;
}

static void refused_closed(struct stream *st, int code, const struct shoal_err *err, void *arg)
{
	(void)st;
	(void)code;
	(void)err;
	(void)arg;
}

/* A stream finished its handshake on the cluster port. Raft's go to
 * consensus; RPC and joins arrive with the cluster issue's join flow. */
static void on_stream(struct stream_listener *l, struct stream *st, void *arg)
{
	struct swarm *s = arg;

	(void)l;
	if (stream_peer(st)->purpose == STREAM_RAFT && s->consensus != NULL &&
	    !s->consensus_closing && !s->closing) {
		consensus_accept(s->consensus, st);
		return;
	}
	log_debug("swarm", "closing a %s stream from %s: nothing serves it",
		  stream_peer(st)->purpose == STREAM_JOIN ? "join" : "RPC", stream_remote_addr(st));
	stream_start(st, refuse_message, refused_closed, NULL);
	stream_close(st);
}

/* Listen on the cluster port with this node's certificate. */
static int open_listener(struct swarm *s, struct shoal_err *err)
{
	int rv;

	if (s->listener != NULL)
		return 0;
	s->sid.key = &s->node_key;
	s->sid.cert = &s->cert;
	memcpy(s->sid.root_pk, s->cert.root_pk, IDENTITY_PK_LEN);
	s->tcfg.loop = s->loop;
	s->tcfg.id = &s->sid;
	s->tcfg.authorize = authorize_raft;
	s->tcfg.arg = s;
	/* Its errors name the address already. */
	rv = stream_listen(&s->listener, s->loop, s->listen_addr, &s->sid, on_stream, s, err);
	if (rv != 0)
		s->listener = NULL;
	return rv;
}

static void close_listener(struct swarm *s)
{
	if (s->listener != NULL)
		stream_listener_close(s->listener, NULL, NULL);
	s->listener = NULL;
}

static int start_consensus(struct swarm *s, enum consensus_mode mode, struct shoal_err *err)
{
	_cleanup_free_ char *raft_dir = path_join(s->state_dir, "raft");
	struct consensus_config cfg;
	int rv;

	if (raft_dir == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (s->store == NULL) {
		rv = store_new(&s->store, err);
		if (rv != 0)
			return rv;
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.id = s->raft_id;
	cfg.address = s->advertise_addr;
	cfg.dir = raft_dir;
	cfg.election_timeout_ms = s->election_ms;
	cfg.heartbeat_timeout_ms = s->heartbeat_ms;
	cfg.snapshot_threshold = s->snapshot_interval;
	cfg.snapshot_trailing = slow_follower_entries(s);
	cfg.secure = &s->tcfg;
	store_fsm(s->store, &cfg.fsm);
	rv = open_listener(s, err);
	if (rv != 0)
		return rv;
	rv = consensus_start(&s->consensus, s->loop, &cfg, mode, err);
	if (rv != 0) {
		close_listener(s);
		shoal_err_wrap(err, "start raft");
		return rv;
	}
	if (s->state != SWARM_PENDING)
		set_state(s, SWARM_PENDING);
	s->settle_deadline = clock_mono_ms() + INIT_TIMEOUT_MS;
	uv_timer_start(&s->settle_timer, settle_tick, 0, SETTLE_POLL_MS);
	return 0;
}

static void initial_committed(void *arg, int status, const struct shoal_err *err)
{
	struct swarm *s = arg;

	s->settling = false;
	if (s->closing || s->state != SWARM_PENDING)
		return;
	if (status != 0) {
		/* Try again on the next tick unless time is up. */
		log_warn("swarm", "committing the initial cluster records: %s", err->msg);
		return;
	}
	uv_timer_stop(&s->settle_timer);
	set_state(s, SWARM_ACTIVE);
	log_info("swarm", "node %s is an active manager of cluster %s", s->node_id,
		 store_cluster(s->store)->meta.id);
	op_finish(s, 0, NULL);
}

static int propose_initial_records(struct swarm *s, struct shoal_err *err);

static void settled_barrier(void *arg, int status)
{
	struct swarm *s = arg;
	struct shoal_err err;

	s->settling = false;
	if (s->closing || s->state != SWARM_PENDING || status != 0)
		return;
	if (store_cluster(s->store) != NULL && store_node_get(s->store, s->node_id) != NULL) {
		initial_committed(s, 0, NULL);
		return;
	}
	/* init crashed before its records were committed: finish it now. */
	if (propose_initial_records(s, &err) == 0)
		s->settling = true;
	else
		log_warn("swarm", "proposing the initial cluster records: %s", err.msg);
}

/* Poll until this node leads (a sole voter elects itself at once), then make
 * sure every earlier entry is applied and the initial records exist. */
static void settle_tick(uv_timer_t *t)
{
	struct swarm *s = t->data;
	struct shoal_err err;

	if (s->closing || s->state != SWARM_PENDING)
		return;
	if (!s->settling && consensus_is_leader(s->consensus)) {
		if (consensus_barrier(s->consensus, settled_barrier, s, &err) == 0)
			s->settling = true;
	}
	if (s->op_cb != NULL && clock_mono_ms() > s->settle_deadline) {
		shoal_errf(&err, SHOAL_ETIMEDOUT,
			   "timed out waiting for raft to elect this node; check %s/raft",
			   s->state_dir);
		op_finish(s, SHOAL_ETIMEDOUT, &err);
	}
}

/* --- records -------------------------------------------------------------- */

static char *strdup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* Fill the description of this host into @n. Returns 0 or SHOAL_ENOMEM. */
static int describe_host(struct swarm *s, struct node_rec *n)
{
	struct utsname u;
	struct sysinfo si;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	n->description.hostname = strdup_or_null(s->hostname);
	n->description.platform.architecture = strdup_or_null(uname(&u) == 0 ? u.machine : "");
	n->description.platform.os = strdup_or_null("linux");
	n->description.resources.nano_cpus = (int64_t)(cpus > 0 ? cpus : 1) * 1000000000;
	if (sysinfo(&si) == 0)
		n->description.resources.memory_bytes = (int64_t)si.totalram * si.mem_unit;
	n->description.engine.engine_version = strdup_or_null(PACKAGE_VERSION);
	if (n->description.hostname == NULL || n->description.platform.architecture == NULL ||
	    n->description.platform.os == NULL || n->description.engine.engine_version == NULL)
		return SHOAL_ENOMEM;
	return 0;
}

static int set_bytes(struct schema_bytes *b, const unsigned char *data, size_t len)
{
	b->data = malloc(len);
	if (b->data == NULL)
		return SHOAL_ENOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	return 0;
}

/* The cluster record of a new swarm whose root key is @root. */
static int make_cluster(struct swarm *s, struct cluster_rec *c, const struct identity *root,
			int64_t now, struct shoal_err *err)
{
	char fp[FINGERPRINT_LEN + 1], worker[TOKEN_LEN + 1], manager[TOKEN_LEN + 1];
	char pk64[sodium_base64_ENCODED_LEN(IDENTITY_PK_LEN, sodium_base64_VARIANT_ORIGINAL)];
	char trust[sizeof(pk64) + 64];
	/* Docker's TLSInfo holds the issuer's subject and key as []byte: base64. */
	static const char subject[] = "CN=shoal-root";
	char subject64[sodium_base64_ENCODED_LEN(sizeof(subject) - 1,
						 sodium_base64_VARIANT_ORIGINAL)];
	char id[ID_LEN + 1];
	int rv;

	rv = cluster_rec_defaults(c, err);
	if (rv != 0)
		return rv;
	id_new(id);
	identity_fingerprint(root->pk, fp);
	join_token_new(fp, worker);
	join_token_new(fp, manager);
	sodium_bin2base64(pk64, sizeof(pk64), root->pk, IDENTITY_PK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(trust, sizeof(trust), "shoal-root ed25519 %s\n", pk64);
	c->meta.id = strdup(id);
	c->spec.raft.snapshot_interval = s->snapshot_interval;
	c->spec.raft.log_entries_for_slow_followers = slow_follower_entries(s);
	c->meta.created_at = c->meta.updated_at = now;
	c->tls_info.trust_root = strdup(trust);
	sodium_bin2base64(subject64, sizeof(subject64), (const unsigned char *)subject,
			  sizeof(subject) - 1, sodium_base64_VARIANT_ORIGINAL);
	c->tls_info.cert_issuer_subject = strdup(subject64);
	c->tls_info.cert_issuer_public_key = strdup(pk64);
	c->join_tokens.worker = strdup(worker);
	c->join_tokens.manager = strdup(manager);
	rv = set_bytes(&c->root_public_key, root->pk, IDENTITY_PK_LEN);
	if (rv != 0 || c->meta.id == NULL || c->tls_info.trust_root == NULL ||
	    c->tls_info.cert_issuer_subject == NULL || c->tls_info.cert_issuer_public_key == NULL ||
	    c->join_tokens.worker == NULL || c->join_tokens.manager == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* This node's record as the cluster's first manager. */
static int make_self(struct swarm *s, struct node_rec *n, int64_t now, struct shoal_err *err)
{
	char ip[ADDR_LEN];
	int rv;

	rv = node_rec_defaults(n, err);
	if (rv != 0)
		return rv;
	snprintf(ip, sizeof(ip), "%s", s->advertise_addr);
	ip[strcspn(ip, ":")] = '\0';
	n->meta.id = strdup(s->node_id);
	n->meta.created_at = n->meta.updated_at = now;
	n->spec.role = NODE_ROLE_MANAGER;
	n->spec.availability = NODE_AVAILABILITY_ACTIVE;
	n->status.state = NODE_STATE_READY;
	n->status.addr = strdup(ip);
	n->manager_status.addr = strdup(s->advertise_addr);
	n->raft_id = s->raft_id;
	rv = describe_host(s, n);
	if (rv == 0)
		rv = set_bytes(&n->public_key, s->node_key.pk, IDENTITY_PK_LEN);
	if (rv != 0 || n->meta.id == NULL || n->status.addr == NULL ||
	    n->manager_status.addr == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* Propose the cluster record and this node's record, both new, in one entry. */
static int propose_initial_records(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *root_path = path_join(s->swarm_dir, "root.key");
	struct identity root;
	struct cluster_rec c;
	struct node_rec n;
	struct command cmd;
	int64_t now = clock_now_ns();
	int rv;

	memset(&c, 0, sizeof c);
	memset(&n, 0, sizeof n);
	command_init(&cmd);
	if (root_path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = identity_load(&root, root_path, err);
	if (rv != 0)
		return rv;
	rv = make_cluster(s, &c, &root, now, err);
	sodium_memzero(&root, sizeof root);
	if (rv == 0)
		rv = make_self(s, &n, now, err);
	if (rv == 0)
		rv = command_put(&cmd, RECORD_CLUSTER, COMMAND_EXPECT_NEW, &c, err);
	if (rv == 0)
		rv = command_put(&cmd, RECORD_NODES, COMMAND_EXPECT_NEW, &n, err);
	if (rv == 0)
		rv = swarm_propose(s, &cmd, initial_committed, s, err);
	command_free(&cmd);
	cluster_rec_free(&c);
	node_rec_free(&n);
	return rv;
}

/* --- operations ----------------------------------------------------------- */

int swarm_open(struct swarm **out, uv_loop_t *loop, const struct swarm_config *cfg,
	       struct shoal_err *err)
{
	struct swarm *s = calloc(1, sizeof *s);
	_cleanup_free_ char *key_path = NULL;
	int rv;

	if (s == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	s->loop = loop;
	s->state = SWARM_INACTIVE;
	s->state_dir = strdup(cfg->state_dir);
	s->swarm_dir = path_join(cfg->state_dir, "swarm");
	s->hostname = strdup(cfg->hostname);
	s->cfg_listen = cfg->listen_addr != NULL ? strdup(cfg->listen_addr) : NULL;
	s->cfg_advertise = cfg->advertise_addr != NULL ? strdup(cfg->advertise_addr) : NULL;
	s->election_ms = cfg->election_timeout_ms;
	s->heartbeat_ms = cfg->heartbeat_timeout_ms;
	s->snapshot_interval = cfg->snapshot_interval != 0 ? cfg->snapshot_interval : 10000;
	uv_timer_init(loop, &s->settle_timer);
	s->settle_timer.data = s;
	uv_timer_init(loop, &s->stop_timer);
	s->stop_timer.data = s;
	s->open_timers = 2;
	*out = s;
	if (s->state_dir == NULL || s->swarm_dir == NULL || s->hostname == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");

	rv = load_state(s, err);
	if (rv == SHOAL_ENOTFOUND)
		return 0; /* not part of a swarm */
	if (rv != 0)
		return rv;
	key_path = path_join(s->swarm_dir, "node.key");
	if (key_path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = identity_load(&s->node_key, key_path, err);
	if (rv == 0)
		rv = load_cert(s, err);
	if (rv != 0)
		return rv;
	log_info("swarm", "resuming node %s from %s", s->node_id, s->swarm_dir);
	rv = start_consensus(s, s->bootstrapped ? CONSENSUS_BOOTSTRAP : CONSENSUS_RESUME, err);
	if (rv != 0) {
		store_free(s->store);
		s->store = NULL;
		enter_error(s, err);
	}
	return 0;
}

static uint64_t new_raft_id(void)
{
	uint64_t id;

	do {
		randombytes_buf(&id, sizeof id);
		id &= INT64_MAX; /* stays positive in JSON and msgpack ints */
	} while (id == 0);
	return id;
}

static int create_identity(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *node_key = path_join(s->swarm_dir, "node.key");
	_cleanup_free_ char *root_key = path_join(s->swarm_dir, "root.key");
	struct identity root;
	int rv;

	if (node_key == NULL || root_key == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = fs_mkdir_p(s->swarm_dir, 0700, err);
	if (rv != 0)
		return rv;
	identity_generate(&s->node_key);
	rv = identity_save(&s->node_key, node_key, err);
	if (rv != 0)
		return rv;
	identity_generate(&root);
	rv = identity_save(&root, root_key, err);
	id_new(s->node_id);
	if (rv == 0)
		rv = cert_issue(&s->cert, s->node_id, CERT_ROLE_MANAGER, s->node_key.pk,
				clock_now_ns() - CERT_BACKDATE_NS, CERT_TTL_NS, &root, err);
	sodium_memzero(&root, sizeof root);
	if (rv == 0)
		rv = save_cert(s, err);
	if (rv != 0)
		return rv;
	s->raft_id = new_raft_id();
	s->bootstrapped = true;
	return save_state(s, err);
}

static void close_consensus_done(void *arg);

static void recovered_restart(void *arg)
{
	struct swarm *s = arg;
	struct shoal_err err;
	int rv;

	s->consensus = NULL;
	s->consensus_closing = false;
	/* Raft replays the whole log into the state machine: start it empty. */
	store_free(s->store);
	s->store = NULL;
	if (s->closing) {
		close_consensus_done(s);
		return;
	}
	rv = start_consensus(s, CONSENSUS_RECOVER, &err);
	if (rv != 0) {
		enter_error(s, &err);
		op_finish(s, rv, &err);
	}
}

int swarm_init(struct swarm *s, const struct swarm_init_req *req, swarm_done_cb cb, void *arg,
	       struct shoal_err *err)
{
	char listen[ADDR_LEN], advertise[ADDR_LEN];
	int rv;

	if (s->op_cb != NULL)
		return shoal_errf(err, SHOAL_EBUSY, "another swarm operation is in progress");
	if (s->state == SWARM_ACTIVE && req->force_new_cluster) {
		/* Keep all state; restart Raft with this node as its only voter. */
		s->op_cb = cb;
		s->op_arg = arg;
		uv_timer_stop(&s->settle_timer);
		set_state(s, SWARM_PENDING);
		stop_consensus(s, recovered_restart);
		return 0;
	}
	if (s->state != SWARM_INACTIVE)
		return shoal_errf(
		    err, SHOAL_ESTATE,
		    "This node is already part of a swarm. Use \"docker swarm leave\" "
		    "to leave this swarm and join another one.");
	rv = resolve_addrs(s, req, listen, advertise, err);
	if (rv != 0)
		return rv;
	memcpy(s->listen_addr, listen, ADDR_LEN);
	memcpy(s->advertise_addr, advertise, ADDR_LEN);
	/* A crash while leaving, or a state.json moved away by hand, may leave
	 * an old log behind: a new cluster starts from nothing. */
	rv = erase_state(s, err);
	if (rv == 0)
		rv = create_identity(s, err);
	if (rv == 0)
		rv = start_consensus(s, CONSENSUS_BOOTSTRAP, err);
	if (rv != 0) {
		struct shoal_err ignored;
		erase_state(s, &ignored);
		store_free(s->store);
		s->store = NULL;
		if (s->state == SWARM_PENDING)
			set_state(s, SWARM_INACTIVE);
		return rv;
	}
	s->op_cb = cb;
	s->op_arg = arg;
	log_info("swarm", "initialising a new swarm: node %s, raft id %llu, advertising %s",
		 s->node_id, (unsigned long long)s->raft_id, s->advertise_addr);
	return 0;
}

static void left(void *arg)
{
	struct swarm *s = arg;
	struct shoal_err err;
	int rv;

	s->consensus = NULL;
	s->consensus_closing = false;
	close_listener(s);
	store_free(s->store);
	s->store = NULL;
	if (s->closing) {
		close_consensus_done(s);
		return;
	}
	rv = erase_state(s, &err);
	memset(s->node_id, 0, sizeof(s->node_id));
	s->raft_id = 0;
	s->listen_addr[0] = s->advertise_addr[0] = '\0';
	sodium_memzero(&s->node_key, sizeof s->node_key);
	set_state(s, SWARM_INACTIVE);
	log_info("swarm", "left the swarm");
	op_finish(s, rv, rv != 0 ? &err : NULL);
}

static void left_later(uv_timer_t *t)
{
	left(t->data);
}

int swarm_leave(struct swarm *s, bool force, swarm_done_cb cb, void *arg, struct shoal_err *err)
{
	if (s->op_cb != NULL)
		return shoal_errf(err, SHOAL_EBUSY, "another swarm operation is in progress");
	if (s->state == SWARM_INACTIVE)
		return shoal_errf(err, SHOAL_ESTATE, "This node is not part of a swarm");
	if (s->state != SWARM_ACTIVE && s->state != SWARM_PENDING && s->state != SWARM_ERROR)
		return shoal_errf(err, SHOAL_ESTATE, "This node is %s", state_names[s->state]);
	/* Every node of a swarm is a manager until workers arrive with the
	 * cluster issue; Docker demands --force to leave as a manager. */
	if (!force)
		return shoal_errf(
		    err, SHOAL_ESTATE,
		    "You are attempting to leave the swarm on a node that is "
		    "participating as a manager. Removing the last manager erases all "
		    "current state of the swarm. Use `--force` to ignore this message.");
	s->op_cb = cb;
	s->op_arg = arg;
	uv_timer_stop(&s->settle_timer);
	set_state(s, SWARM_LEAVING);
	if (s->consensus != NULL)
		stop_consensus(s, left);
	else
		uv_timer_start(&s->stop_timer, left_later, 0, 0);
	return 0;
}

struct proposal {
	struct swarm *s;
	swarm_done_cb cb;
	void *arg;
};

static void proposal_done(void *arg, int status, void *result)
{
	struct proposal *p = arg;
	struct shoal_err err;

	if (status == 0)
		status = store_result_code(result);
	switch (status) {
	case 0:
		break;
	case SHOAL_ECONFLICT:
		shoal_errf(&err, status, "update out of sequence");
		break;
	case SHOAL_ENOTFOUND:
		shoal_errf(&err, status, "the object was removed meanwhile");
		break;
	case SHOAL_ENOTLEADER:
		shoal_errf(&err, status,
			   "leadership changed before the change was committed; "
			   "retry");
		break;
	case SHOAL_ESHUTDOWN:
		shoal_errf(&err, status, "the node is shutting down");
		break;
	default:
		shoal_errf(&err, status, "raft: %s", shoal_strerror(status));
		break;
	}
	p->cb(p->arg, status, status != 0 ? &err : NULL);
	free(p);
}

int swarm_propose(struct swarm *s, const struct command *cmd, swarm_done_cb cb, void *arg,
		  struct shoal_err *err)
{
	struct proposal *p;
	void *buf = NULL;
	size_t len = 0;
	int rv;

	if (s->state != SWARM_ACTIVE && s->state != SWARM_PENDING)
		return shoal_errf(
		    err, SHOAL_ESTATE,
		    "This node is not a swarm manager. Use \"docker swarm init\" or "
		    "\"docker swarm join\" to connect this node to swarm and try again.");
	if (s->consensus == NULL || s->consensus_closing)
		return shoal_errf(err, SHOAL_EUNAVAIL, "raft is restarting; retry");
	rv = command_encode(cmd, &buf, &len, err);
	if (rv != 0)
		return rv;
	p = malloc(sizeof *p);
	if (p == NULL) {
		free(buf);
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	}
	p->s = s;
	p->cb = cb;
	p->arg = arg;
	rv = consensus_propose(s->consensus, buf, len, proposal_done, p, err);
	free(buf);
	if (rv != 0)
		free(p);
	return rv;
}

static void timer_closed(uv_handle_t *h)
{
	struct swarm *s = h->data;
	void (*cb)(void *) = s->close_cb;
	void *arg = s->close_arg;

	if (--s->open_timers > 0)
		return;
	store_free(s->store);
	free(s->state_dir);
	free(s->swarm_dir);
	free(s->hostname);
	free(s->cfg_listen);
	free(s->cfg_advertise);
	sodium_memzero(&s->node_key, sizeof s->node_key);
	free(s);
	if (cb != NULL)
		cb(arg);
}

static void close_consensus_done(void *arg)
{
	struct swarm *s = arg;

	s->consensus = NULL;
	close_listener(s);
	uv_close((uv_handle_t *)&s->settle_timer, timer_closed);
	uv_close((uv_handle_t *)&s->stop_timer, timer_closed);
}

void swarm_close(struct swarm *s, void (*cb)(void *arg), void *arg)
{
	struct shoal_err err;

	s->closing = true;
	s->close_cb = cb;
	s->close_arg = arg;
	uv_timer_stop(&s->settle_timer);
	if (s->op_cb != NULL) {
		shoal_errf(&err, SHOAL_ESHUTDOWN, "the daemon is shutting down");
		op_finish(s, SHOAL_ESHUTDOWN, &err);
	}
	set_state(s, SWARM_CLOSED);
	if (s->consensus_closing)
		return; /* left() or recovered_restart() finishes the close */
	if (s->consensus != NULL)
		consensus_close(s->consensus, close_consensus_done, s);
	else
		close_consensus_done(s);
}

/* --- accessors ------------------------------------------------------------ */

enum swarm_state swarm_state(const struct swarm *s)
{
	return s->state;
}

const char *swarm_error(const struct swarm *s)
{
	return s->state == SWARM_ERROR ? s->error : "";
}

const struct store *swarm_store(const struct swarm *s)
{
	return s->state == SWARM_PENDING || s->state == SWARM_ACTIVE ? s->store : NULL;
}

const char *swarm_node_id(const struct swarm *s)
{
	return s->node_id;
}

const char *swarm_advertise_addr(const struct swarm *s)
{
	return s->advertise_addr;
}

const char *swarm_listen_addr(const struct swarm *s)
{
	return s->listen_addr;
}

const char *swarm_hostname(const struct swarm *s)
{
	return s->hostname;
}

uint64_t swarm_raft_id(const struct swarm *s)
{
	return s->raft_id;
}

bool swarm_is_leader(const struct swarm *s, uint64_t *leader_raft_id)
{
	uint64_t id = 0;
	const char *addr;

	if (s->consensus != NULL && (s->state == SWARM_ACTIVE || s->state == SWARM_PENDING))
		consensus_leader(s->consensus, &id, &addr);
	if (leader_raft_id != NULL)
		*leader_raft_id = id;
	return id != 0 && id == s->raft_id;
}
