/* This node's membership of a swarm: the local state machine, its files,
 * init, join and leave. See swarm_priv.h for the other two files.
 *
 *   INACTIVE --init--> PENDING --leader, initial records committed--> ACTIVE
 *   INACTIVE --join as manager--> PENDING --own node record replicated--> ACTIVE
 *   INACTIVE --join as worker--> ACTIVE
 *   ACTIVE --leave--> LEAVING --raft closed, state erased--> INACTIVE
 *   ACTIVE --init --force-new-cluster--> PENDING (raft recovered as sole voter)
 *   ACTIVE (worker) --promoted--> PENDING --caught up--> ACTIVE (manager)
 *   (restart with state on disk) --open--> PENDING --> ACTIVE (workers: ACTIVE)
 *   INACTIVE/PENDING --raft cannot start--> ERROR --leave --force--> LEAVING
 *   ACTIVE --removed from the swarm (node rm)--> ERROR
 *
 * Files: STATE_DIR/swarm/state.json (node id, Raft id, addresses, managers),
 * node.key (identity, 0600), node.crt (its certificate), gossip.keys (the
 * gossip key ring, 0600), root.key (on the node that ran init, 0600);
 * STATE_DIR/raft (the log, managers only). Raft, RPC and joins ride secure
 * streams accepted on the listen address (the cluster port); gossip uses UDP
 * on the same address. */
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
#include "lib/log_limit.h"
#include "net/cert.h"
#include "net/identity.h"
#include "net/stream.h"
#include "node/command.h"
#include "node/membership.h"
#include "node/records.h"
#include "node/schema.h"
#include "node/store.h"
#include "node/swarm_priv.h"
#include "raft/consensus.h"

#define SETTLE_POLL_MS	 10
#define INIT_TIMEOUT_MS	 20000
#define DEFAULT_PORT	 SWARM_DEFAULT_PORT
#define ADDR_LEN	 SWARM_ADDR_LEN
#define CERT_TTL_NS	 SWARM_CERT_TTL_NS
#define CERT_BACKDATE_NS SWARM_CERT_BACKDATE_NS

static const char *const state_names[] = {"inactive", "pending", "active",
					  "leaving",  "error",	 "closed"};

const char *swarm_state_name(enum swarm_state st)
{
	return state_names[st];
}

/* Move to @to, checking the transition against the table above. */
void swarm_set_state(struct swarm *s, enum swarm_state to)
{
	static const bool allowed[6][6] = {
	    /*                   INACTIVE PENDING ACTIVE LEAVING ERROR  CLOSED */
	    /* from INACTIVE */ {false, true, true, false, true, true},
	    /* from PENDING  */ {true, false, true, true, true, true},
	    /* from ACTIVE   */ {false, true, false, true, true, true},
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
void swarm_stop_consensus(struct swarm *s, void (*next)(void *arg))
{
	s->consensus_closing = true;
	s->after_stop = next;
	uv_timer_start(&s->stop_timer, do_stop, 0, 0);
}

/* Raft could not be started for a node that has swarm state: keep the daemon
 * up (Docker does the same) and say why; leaving is still possible. */
void swarm_enter_error(struct swarm *s, const struct shoal_err *err)
{
	snprintf(s->error, sizeof(s->error), "%s", err->msg);
	if (s->state != SWARM_ERROR)
		swarm_set_state(s, SWARM_ERROR);
	log_error("swarm", "%s", err->msg);
}

void swarm_op_finish(struct swarm *s, int status, const struct shoal_err *err)
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

char *swarm_path(const char *a, const char *b)
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
	_cleanup_free_ char *raft_dir = swarm_path(s->state_dir, "raft");
	_cleanup_free_ char *state = swarm_path(s->swarm_dir, "state.json");
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

int swarm_save_state(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = swarm_path(s->swarm_dir, "state.json");
	json_t *managers = json_array();
	json_t *o;
	char *text;
	int rv;

	for (size_t i = 0; managers != NULL && i < s->n_managers; i++)
		json_array_append_new(managers, json_string(s->managers[i]));
	o = json_pack("{s:i, s:s, s:I, s:b, s:s, s:s, s:o}", "Version", 1, "NodeID", s->node_id,
		      "RaftID", (json_int_t)s->raft_id, "Bootstrap", s->bootstrapped, "ListenAddr",
		      s->listen_addr, "AdvertiseAddr", s->advertise_addr, "Managers", managers);
	text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
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
	_cleanup_free_ char *path = swarm_path(s->swarm_dir, "state.json");
	_cleanup_free_ char *text = NULL;
	json_error_t jerr;
	json_t *o;
	const char *node_id, *listen, *advertise;
	json_t *managers = NULL;
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
	    json_unpack(o, "{s:I, s:s, s:I, s?b, s:s, s:s, s?o}", "Version", &version, "NodeID",
			&node_id, "RaftID", &raft_id, "Bootstrap", &bootstrap, "ListenAddr",
			&listen, "AdvertiseAddr", &advertise, "Managers", &managers) != 0 ||
	    version != 1 || strlen(node_id) != ID_LEN || raft_id < 0 ||
	    strlen(listen) >= ADDR_LEN || strlen(advertise) >= ADDR_LEN ||
	    (managers != NULL &&
	     (!json_is_array(managers) || json_array_size(managers) > CLUSTER_MAX_MANAGERS))) {
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
	s->n_managers = 0;
	for (size_t i = 0; managers != NULL && i < json_array_size(managers); i++) {
		const char *m = json_string_value(json_array_get(managers, i));
		if (m != NULL && cluster_addr_valid(m))
			snprintf(s->managers[s->n_managers++], ADDR_LEN, "%s", m);
	}
	json_decref(o);
	return 0;
}

/* The gossip key ring: 32 or 64 raw bytes. */
int swarm_save_keys(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = swarm_path(s->swarm_dir, "gossip.keys");

	if (path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return fs_write_atomic(path, s->gossip_keys, s->gossip_keys_len, 0600, err);
}

static int load_keys(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = swarm_path(s->swarm_dir, "gossip.keys");
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int rv;

	if (path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = fs_read_all(path, sizeof s->gossip_keys, &data, &len, err);
	if (rv != 0)
		return rv;
	if (len != CLUSTER_KEY_LEN && len != 2 * CLUSTER_KEY_LEN)
		return shoal_errf(err, SHOAL_EPROTO, "%s is damaged", path);
	memcpy(s->gossip_keys, data, len);
	s->gossip_keys_len = len;
	sodium_memzero(data, len);
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

int swarm_save_cert(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *path = swarm_path(s->swarm_dir, "node.crt");
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
	_cleanup_free_ char *path = swarm_path(s->swarm_dir, "node.crt");
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
 * only as the Raft server of its own node record. A manager that just joined
 * (or was promoted) has no records yet: until its store holds the cluster,
 * any holder of a manager certificate of this cluster may (the leader
 * replicating to it). */
static bool authorize_raft(void *arg, const struct stream_peer *peer, uint64_t raft_id)
{
	struct swarm *s = arg;

	if (!peer->authenticated || peer->cert.role != CERT_ROLE_MANAGER || s->store == NULL)
		return false;
	if (store_cluster(s->store) == NULL)
		return true;
	for (size_t i = 0; i < store_node_count(s->store); i++) {
		const struct node_rec *n = store_node_at(s->store, i);
		if (n->raft_id == raft_id)
			return strcmp(n->meta.id, peer->cert.node_id) == 0 &&
			       n->spec.role == NODE_ROLE_MANAGER;
	}
	return false;
}

/* A stream finished its handshake on the cluster port. Raft's go to
 * consensus; RPC and joins to the RPC methods. */
static void on_stream(struct stream_listener *l, struct stream *st, void *arg)
{
	struct swarm *s = arg;
	enum stream_purpose purpose = stream_peer(st)->purpose;

	(void)l;
	if (purpose == STREAM_RAFT && s->consensus != NULL && !s->consensus_closing &&
	    !s->closing) {
		consensus_accept(s->consensus, st);
		return;
	}
	if ((purpose == STREAM_RPC || purpose == STREAM_JOIN) && !s->closing) {
		swarm_serve_rpc(s, st);
		return;
	}
	log_debug("swarm", "closing a raft stream from %s: this node runs no raft",
		  stream_remote_addr(st));
	stream_close(st);
}

/* Refused connections on the cluster port, logged at most 5 of a kind per
 * 10 s, and 20 in all besides the first of each kind (lib/log_limit.h).
 * Anyone can provoke them, and the log is the process's: one limit for the
 * process, not per listener. */
static struct log_limit refusals;
static bool refusals_ready;

/* A connection failed its handshake; @why names its address. */
static void on_refused(void *arg, int code, const struct shoal_err *why)
{
	(void)arg;
	(void)code;
	log_limited(&refusals, LOG_WARN, "swarm", "refused a connection on the cluster port: %s",
		    why->msg);
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
	if (rv != 0) {
		s->listener = NULL;
		return rv;
	}
	if (!refusals_ready) {
		log_limit_init(&refusals, 10000, 5, 20, NULL, NULL);
		refusals_ready = true;
	}
	stream_listener_on_failure(s->listener, on_refused, NULL);
	return 0;
}

static void close_listener(struct swarm *s)
{
	if (s->listener != NULL)
		stream_listener_close(s->listener, NULL, NULL);
	s->listener = NULL;
}

int swarm_start_consensus(struct swarm *s, enum consensus_mode mode, struct shoal_err *err)
{
	_cleanup_free_ char *raft_dir = swarm_path(s->state_dir, "raft");
	struct consensus_config cfg;
	int rv;

	if (raft_dir == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	if (s->store == NULL) {
		rv = store_new(&s->store, err);
		if (rv == 0)
			rv = store_watch(s->store, swarm_on_store_change, s, err);
		if (rv != 0) {
			store_free(s->store);
			s->store = NULL;
			return rv;
		}
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
		swarm_set_state(s, SWARM_PENDING);
	s->settle_deadline = clock_mono_ms() + INIT_TIMEOUT_MS;
	uv_timer_start(&s->settle_timer, settle_tick, 0, SETTLE_POLL_MS);
	return 0;
}

static void recovered_demoted(void *arg, int status, const struct shoal_err *err)
{
	(void)arg;
	if (status != 0)
		log_warn("swarm", "demoting the managers lost with the old cluster: %s", err->msg);
}

/* After force-new-cluster this node is the only voter: the other managers'
 * records say worker now, so they are not added back (they rejoin or are
 * promoted again). */
static void demote_lost_managers(struct swarm *s)
{
	struct command cmd;
	struct shoal_err err;
	int64_t now = clock_now_ns();
	int rv = 0;

	command_init(&cmd);
	for (size_t i = 0; rv == 0 && i < store_node_count(s->store); i++) {
		const struct node_rec *n = store_node_at(s->store, i);
		struct node_rec next;
		if (n->spec.role != NODE_ROLE_MANAGER || strcmp(n->meta.id, s->node_id) == 0)
			continue;
		rv = schema_copy(&node_schema, &next, n, &err);
		if (rv != 0)
			break;
		next.spec.role = NODE_ROLE_WORKER;
		free(next.manager_status.addr);
		next.manager_status.addr = NULL;
		next.meta.updated_at = now;
		rv = command_put(&cmd, RECORD_NODES, n->meta.version, &next, &err);
		schema_free(&node_schema, &next);
	}
	if (rv == 0 && cmd.n_ops > 0)
		rv = swarm_propose(s, &cmd, recovered_demoted, s, &err);
	if (rv != 0)
		log_warn("swarm", "demoting the managers lost with the old cluster: %s", err.msg);
	command_free(&cmd);
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
	swarm_set_state(s, SWARM_ACTIVE);
	log_info("swarm", "node %s is an active manager of cluster %s", s->node_id,
		 store_cluster(s->store)->meta.id);
	if (s->recovering) {
		s->recovering = false;
		demote_lost_managers(s);
	}
	swarm_refresh_from_store(s);
	swarm_op_finish(s, 0, NULL);
}

static int propose_initial_records(struct swarm *s, struct shoal_err *err);

int swarm_barrier(struct swarm *s, void (*cb)(void *arg, int status), void *arg,
		  struct shoal_err *err)
{
	if (s->closing || s->consensus == NULL || !consensus_is_leader(s->consensus))
		return shoal_errf(err, SHOAL_ESTATE, "not the leader");
	return consensus_barrier(s->consensus, cb, arg, err);
}

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
	/* Caught up: the cluster and this node's record are in the store. */
	if (!s->settling && store_cluster(s->store) != NULL &&
	    store_node_get(s->store, s->node_id) != NULL) {
		initial_committed(s, 0, NULL);
		return;
	}
	/* The node that ran init makes sure its records exist. */
	if (s->bootstrapped && !s->settling && consensus_is_leader(s->consensus)) {
		if (consensus_barrier(s->consensus, settled_barrier, s, &err) == 0)
			s->settling = true;
	}
	if (s->op_cb != NULL && clock_mono_ms() > s->settle_deadline) {
		shoal_errf(&err, SHOAL_ETIMEDOUT,
			   "timed out waiting for raft to elect this node; check %s/raft",
			   s->state_dir);
		swarm_op_finish(s, SHOAL_ETIMEDOUT, &err);
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
	if (rv == 0)
		rv = set_bytes(&c->root_secret_key, root->sk, IDENTITY_SK_LEN);
	if (rv == 0)
		rv = set_bytes(&c->gossip_keys, s->gossip_keys, s->gossip_keys_len);
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
	n->cluster_addr = strdup(s->advertise_addr);
	n->raft_id = s->raft_id;
	rv = describe_host(s, n);
	if (rv == 0)
		rv = set_bytes(&n->public_key, s->node_key.pk, IDENTITY_PK_LEN);
	if (rv != 0 || n->meta.id == NULL || n->status.addr == NULL ||
	    n->manager_status.addr == NULL || n->cluster_addr == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* Propose the cluster record and this node's record, both new, in one entry. */
static int propose_initial_records(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *root_path = swarm_path(s->swarm_dir, "root.key");
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

bool swarm_manager_role(const struct swarm *s)
{
	return s->cert.role == CERT_ROLE_MANAGER;
}

/* Start serving as a member: the cluster port, gossip and the role's timers,
 * and Raft for a manager. A worker is active at once; a manager once Raft
 * settles. On failure nothing started is left running. */
static int start_node(struct swarm *s, enum consensus_mode mode, struct shoal_err *err)
{
	int rv = open_listener(s, err);

	if (rv == 0)
		rv = swarm_start_member(s, err);
	if (rv == 0 && swarm_manager_role(s))
		rv = swarm_start_consensus(s, mode, err);
	if (rv != 0) {
		swarm_stop_member(s, false);
		close_listener(s);
		store_free(s->store);
		s->store = NULL;
		return rv;
	}
	if (!swarm_manager_role(s))
		swarm_set_state(s, SWARM_ACTIVE);
	return 0;
}

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
	s->swarm_dir = swarm_path(cfg->state_dir, "swarm");
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
	uv_timer_init(loop, &s->role_timer);
	s->role_timer.data = s;
	uv_timer_init(loop, &s->heartbeat_timer);
	s->heartbeat_timer.data = s;
	uv_timer_init(loop, &s->sync_timer);
	s->sync_timer.data = s;
	s->open_timers = 5;
	*out = s;
	if (s->state_dir == NULL || s->swarm_dir == NULL || s->hostname == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = rpc_server_new(&s->rpc_server, s, err);
	if (rv != 0)
		return rv;

	rv = load_state(s, err);
	if (rv == SHOAL_ENOTFOUND)
		return 0; /* not part of a swarm */
	if (rv != 0)
		return rv;
	key_path = swarm_path(s->swarm_dir, "node.key");
	if (key_path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = identity_load(&s->node_key, key_path, err);
	if (rv == 0)
		rv = load_cert(s, err);
	if (rv != 0)
		return rv;
	if (rv == 0)
		rv = load_keys(s, err);
	if (rv != 0)
		return rv;
	log_info("swarm", "resuming %s %s from %s", cert_role_name(s->cert.role), s->node_id,
		 s->swarm_dir);
	rv = start_node(s, s->bootstrapped ? CONSENSUS_BOOTSTRAP : CONSENSUS_RESUME, err);
	if (rv != 0)
		swarm_enter_error(s, err);
	return 0;
}

uint64_t swarm_new_raft_id(void)
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
	_cleanup_free_ char *node_key = swarm_path(s->swarm_dir, "node.key");
	_cleanup_free_ char *root_key = swarm_path(s->swarm_dir, "root.key");
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
		rv = swarm_save_cert(s, err);
	if (rv != 0)
		return rv;
	s->raft_id = swarm_new_raft_id();
	s->bootstrapped = true;
	randombytes_buf(s->gossip_keys, CLUSTER_KEY_LEN);
	s->gossip_keys_len = CLUSTER_KEY_LEN;
	snprintf(s->managers[0], ADDR_LEN, "%s", s->advertise_addr);
	s->n_managers = 1;
	rv = swarm_save_keys(s, err);
	if (rv != 0)
		return rv;
	return swarm_save_state(s, err);
}

static void recovered_restart(void *arg)
{
	struct swarm *s = arg;
	struct shoal_err err;
	int rv;

	s->consensus = NULL;
	s->consensus_closing = false;
	if (s->members_closing > 0 && !s->closing) {
		s->after_members = recovered_restart; /* its UDP port is free after */
		return;
	}
	/* Raft replays the whole log into the state machine: start it empty. */
	store_free(s->store);
	s->store = NULL;
	if (s->closing) {
		swarm_closed_consensus(s);
		return;
	}
	rv = swarm_start_consensus(s, CONSENSUS_RECOVER, &err);
	if (rv == 0)
		rv = swarm_start_member(s, &err);
	if (rv != 0) {
		swarm_enter_error(s, &err);
		swarm_op_finish(s, rv, &err);
	}
}

int swarm_init(struct swarm *s, const struct swarm_init_req *req, swarm_done_cb cb, void *arg,
	       struct shoal_err *err)
{
	char listen[ADDR_LEN], advertise[ADDR_LEN];
	int rv;

	if (s->op_cb != NULL)
		return shoal_errf(err, SHOAL_EBUSY, "another swarm operation is in progress");
	if ((s->state == SWARM_ACTIVE || s->state == SWARM_PENDING) && req->force_new_cluster) {
		/* Keep all state; restart Raft with this node as its only voter.
		 * PENDING too: a manager restarted without quorum never settles. */
		if (!swarm_manager_role(s) || s->consensus == NULL || s->consensus_closing)
			return shoal_errf(
			    err, SHOAL_ESTATE,
			    "--force-new-cluster needs a manager whose raft is running");
		s->op_cb = cb;
		s->op_arg = arg;
		s->recovering = true;
		uv_timer_stop(&s->settle_timer);
		if (s->state != SWARM_PENDING)
			swarm_set_state(s, SWARM_PENDING);
		swarm_stop_member(s, false);
		swarm_stop_consensus(s, recovered_restart);
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
		rv = start_node(s, CONSENSUS_BOOTSTRAP, err);
	if (rv != 0) {
		struct shoal_err ignored;
		erase_state(s, &ignored);
		store_free(s->store);
		s->store = NULL;
		if (s->state == SWARM_PENDING)
			swarm_set_state(s, SWARM_INACTIVE);
		return rv;
	}
	s->op_cb = cb;
	s->op_arg = arg;
	log_info("swarm", "initialising a new swarm: node %s, raft id %llu, advertising %s",
		 s->node_id, (unsigned long long)s->raft_id, s->advertise_addr);
	return 0;
}

/* --- join ------------------------------------------------------------------ */

/* Forget who this node was in a swarm (its files are the caller's). */
static void forget_membership(struct swarm *s)
{
	memset(s->node_id, 0, sizeof s->node_id);
	s->raft_id = 0;
	s->bootstrapped = false;
	s->listen_addr[0] = s->advertise_addr[0] = '\0';
	s->n_managers = 0;
	sodium_memzero(&s->node_key, sizeof s->node_key);
	sodium_memzero(&s->cert, sizeof s->cert);
	sodium_memzero(s->gossip_keys, sizeof s->gossip_keys);
	s->gossip_keys_len = 0;
}

/* Forget what a join that failed had set up; nothing was saved yet. */
static void join_abort(struct swarm *s, int status, const struct shoal_err *err)
{
	forget_membership(s);
	swarm_op_finish(s, status, err);
}

/* Check the grant a manager answered the join with and take it. */
static int take_grant(struct swarm *s, const struct grant *g, struct shoal_err *err)
{
	char fp[FINGERPRINT_LEN + 1];
	int rv;

	if (!g->has_cert)
		return shoal_errf(err, SHOAL_EPROTO, "the manager sent no certificate");
	identity_fingerprint(g->cert.root_pk, fp);
	if (strcmp(fp, s->join_fingerprint) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "the manager's certificate is not from the swarm of the token");
	rv = cert_verify(&g->cert, g->cert.root_pk, clock_now_ns(), err);
	if (rv != 0)
		return rv;
	if (strcmp(g->cert.node_id, g->node_id) != 0 ||
	    memcmp(g->cert.node_pk, s->node_key.pk, IDENTITY_PK_LEN) != 0 ||
	    g->cert.role != g->role || (g->role == CERT_ROLE_MANAGER && g->raft_id == 0))
		return shoal_errf(err, SHOAL_EPROTO,
				  "the manager's grant does not match the request");
	memcpy(s->node_id, g->node_id, sizeof s->node_id);
	s->cert = g->cert;
	s->raft_id = g->raft_id;
	memcpy(s->gossip_keys, g->keys, g->keys_len);
	s->gossip_keys_len = g->keys_len;
	s->n_managers = g->n_managers;
	for (size_t i = 0; i < g->n_managers; i++)
		snprintf(s->managers[i], ADDR_LEN, "%s", g->managers[i]);
	return 0;
}

static int save_joined(struct swarm *s, struct shoal_err *err)
{
	_cleanup_free_ char *key_path = swarm_path(s->swarm_dir, "node.key");
	int rv;

	if (key_path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = erase_state(s, err);
	if (rv == 0)
		rv = fs_mkdir_p(s->swarm_dir, 0700, err);
	if (rv == 0)
		rv = identity_save(&s->node_key, key_path, err);
	if (rv == 0)
		rv = swarm_save_cert(s, err);
	if (rv == 0)
		rv = swarm_save_keys(s, err);
	if (rv == 0)
		rv = swarm_save_state(s, err); /* the commit point */
	return rv;
}

static void join_answered(void *arg, int status, const struct shoal_err *rerr, const void *body,
			  size_t len)
{
	struct swarm *s = arg;
	struct shoal_err err;
	struct grant g;
	int rv;

	if (s->closing || s->join_rpc == NULL || s->op_cb == NULL)
		return; /* swarm_close() closes the client and finishes the op */
	rpc_client_close(s->join_rpc, NULL, NULL);
	s->join_rpc = NULL;
	if (status == SHOAL_EUNAVAIL || status == SHOAL_ETIMEDOUT) {
		shoal_errf(&err, status, "could not join through the manager: %s", rerr->msg);
		join_abort(s, status, &err);
		return;
	}
	if (status != 0) {
		join_abort(s, status, rerr); /* the manager's words: a bad token, say */
		return;
	}
	rv = grant_decode(body, len, &g, &err);
	if (rv == 0)
		rv = take_grant(s, &g, &err);
	if (rv == 0)
		rv = save_joined(s, &err);
	if (rv != 0) {
		struct shoal_err ignored;
		erase_state(s, &ignored);
		shoal_err_wrap(&err, "join");
		join_abort(s, rv, &err);
		return;
	}
	sodium_memzero(&g, sizeof g);
	log_info("swarm", "joined as %s %s; managers: %zu", cert_role_name(s->cert.role),
		 s->node_id, s->n_managers);
	rv = start_node(s, CONSENSUS_RESUME, &err);
	if (rv != 0) {
		swarm_enter_error(s, &err);
		swarm_op_finish(s, rv, &err);
		return;
	}
	if (!swarm_manager_role(s))
		swarm_op_finish(s, 0, NULL);
	/* A manager finishes once its store holds its own record (settle_tick). */
}

static int join_request_new(struct swarm *s, const char *secret, int availability,
			    struct join_request *r, struct shoal_err *err)
{
	struct node_rec n;
	int rv;

	memset(r, 0, sizeof *r);
	memset(&n, 0, sizeof n);
	rv = describe_host(s, &n);
	if (rv != 0) {
		node_rec_free(&n);
		return shoal_errf(err, rv, "out of memory");
	}
	snprintf(r->secret, sizeof r->secret, "%s", secret);
	snprintf(r->hostname, sizeof r->hostname, "%s", n.description.hostname);
	snprintf(r->cluster_addr, sizeof r->cluster_addr, "%s", s->advertise_addr);
	memcpy(r->node_pk, s->node_key.pk, IDENTITY_PK_LEN);
	r->availability = availability;
	snprintf(r->architecture, sizeof r->architecture, "%s",
		 n.description.platform.architecture);
	snprintf(r->os, sizeof r->os, "%s", n.description.platform.os);
	snprintf(r->engine_version, sizeof r->engine_version, "%s",
		 n.description.engine.engine_version);
	r->nano_cpus = n.description.resources.nano_cpus;
	r->memory_bytes = n.description.resources.memory_bytes;
	node_rec_free(&n);
	return 0;
}

int swarm_join(struct swarm *s, const struct swarm_join_req *req, swarm_done_cb cb, void *arg,
	       struct shoal_err *err)
{
	struct swarm_init_req addrs = {req->listen_addr, req->advertise_addr, false};
	char listen[ADDR_LEN], advertise[ADDR_LEN], remote_ip[INET_ADDRSTRLEN];
	char remote[ADDR_LEN], secret[TOKEN_SECRET_LEN + 1];
	struct join_request jr;
	struct buf body;
	unsigned remote_port;
	int rv;

	if (s->op_cb != NULL)
		return shoal_errf(err, SHOAL_EBUSY, "another swarm operation is in progress");
	if (s->state != SWARM_INACTIVE)
		return shoal_errf(
		    err, SHOAL_ESTATE,
		    "This node is already part of a swarm. Use \"docker swarm leave\" "
		    "to leave this swarm and join another one.");
	rv = join_token_parse(req->token != NULL ? req->token : "", s->join_fingerprint, secret,
			      err);
	if (rv != 0)
		return rv;
	if (req->remote_addr == NULL || req->remote_addr[0] == '\0')
		return shoal_errf(err, SHOAL_EINVAL, "missing remote manager address");
	rv = parse_addr("remote", req->remote_addr, DEFAULT_PORT, remote_ip, &remote_port, err);
	if (rv != 0)
		return rv;
	snprintf(remote, sizeof remote, "%s:%u", remote_ip, remote_port);
	rv = resolve_addrs(s, &addrs, listen, advertise, err);
	if (rv != 0)
		return rv;
	memcpy(s->listen_addr, listen, ADDR_LEN);
	memcpy(s->advertise_addr, advertise, ADDR_LEN);
	identity_generate(&s->node_key);
	memset(&s->join_sid, 0, sizeof s->join_sid);
	s->join_sid.key = &s->node_key;
	s->join_sid.pinned_root_fingerprint = s->join_fingerprint;
	buf_init(&body);
	rv = join_request_new(s, secret, req->availability, &jr, err);
	if (rv == 0)
		rv = join_request_encode(&jr, &body, err);
	if (rv == 0)
		rv = rpc_client_new(&s->join_rpc, s->loop, remote, STREAM_JOIN, &s->join_sid, err);
	if (rv == 0) {
		rv = rpc_client_call(s->join_rpc, "join", body.data, body.len,
				     SWARM_JOIN_TIMEOUT_MS, join_answered, s, NULL, err);
		if (rv != 0) {
			rpc_client_close(s->join_rpc, NULL, NULL);
			s->join_rpc = NULL;
		}
	}
	sodium_memzero(&jr, sizeof jr);
	sodium_memzero(secret, sizeof secret);
	if (body.data != NULL)
		sodium_memzero(body.data, body.len);
	buf_free(&body);
	if (rv != 0) {
		forget_membership(s);
		return rv;
	}
	s->op_cb = cb;
	s->op_arg = arg;
	log_info("swarm", "joining the swarm through %s, advertising %s", remote, advertise);
	return 0;
}

static void left(void *arg)
{
	struct swarm *s = arg;
	struct shoal_err err;
	int rv;

	s->consensus = NULL;
	s->consensus_closing = false;
	if (s->members_closing > 0 && !s->closing) {
		/* Gossip still announces the leave; its port is free after. */
		s->after_members = left;
		return;
	}
	close_listener(s);
	store_free(s->store);
	s->store = NULL;
	if (s->closing) {
		swarm_closed_consensus(s);
		return;
	}
	rv = erase_state(s, &err);
	forget_membership(s);
	s->error[0] = '\0';
	swarm_set_state(s, SWARM_INACTIVE);
	log_info("swarm", "left the swarm");
	swarm_op_finish(s, rv, rv != 0 ? &err : NULL);
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
	if (s->consensus_closing)
		return shoal_errf(err, SHOAL_EBUSY, "raft is stopping (a demotion); retry");
	/* Docker demands --force to leave as a manager. */
	if (!force && swarm_manager_role(s))
		return shoal_errf(
		    err, SHOAL_ESTATE,
		    "You are attempting to leave the swarm on a node that is "
		    "participating as a manager. Removing the last manager erases all "
		    "current state of the swarm. Use `--force` to ignore this message.");
	s->op_cb = cb;
	s->op_arg = arg;
	uv_timer_stop(&s->settle_timer);
	swarm_set_state(s, SWARM_LEAVING);
	swarm_stop_member(s, true);
	if (s->consensus != NULL)
		swarm_stop_consensus(s, left);
	else
		uv_timer_start(&s->stop_timer, left_later, 0, 0);
	return 0;
}

/* Free @s once closing and every handle it owns (timers, gossip) is gone. */
void swarm_maybe_free(struct swarm *s)
{
	void (*cb)(void *) = s->close_cb;
	void *arg = s->close_arg;

	if (!s->closing || s->open_timers > 0 || s->members_closing > 0)
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

static void timer_closed(uv_handle_t *h)
{
	struct swarm *s = h->data;

	s->open_timers--;
	swarm_maybe_free(s);
}

void swarm_closed_consensus(void *arg)
{
	struct swarm *s = arg;

	s->consensus = NULL;
	close_listener(s);
	uv_close((uv_handle_t *)&s->settle_timer, timer_closed);
	uv_close((uv_handle_t *)&s->stop_timer, timer_closed);
	uv_close((uv_handle_t *)&s->role_timer, timer_closed);
	uv_close((uv_handle_t *)&s->heartbeat_timer, timer_closed);
	uv_close((uv_handle_t *)&s->sync_timer, timer_closed);
}

static void join_client_closed(void *arg)
{
	struct swarm *s = arg;

	s->open_timers--;
	swarm_maybe_free(s);
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
		swarm_op_finish(s, SHOAL_ESHUTDOWN, &err);
	}
	swarm_set_state(s, SWARM_CLOSED);
	swarm_flush_syncs(s);
	swarm_stop_member(s, false);
	if (s->rpc_server != NULL)
		rpc_server_close(s->rpc_server);
	s->rpc_server = NULL;
	if (s->join_rpc != NULL) {
		/* The swarm outlives the client: its pending answer comes first. */
		s->open_timers++;
		rpc_client_close(s->join_rpc, join_client_closed, s);
		s->join_rpc = NULL;
	}
	if (s->consensus_closing || s->after_members != NULL)
		return; /* left() or recovered_restart() finishes the close */
	if (s->consensus != NULL)
		consensus_close(s->consensus, swarm_closed_consensus, s);
	else
		swarm_closed_consensus(s);
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
	return (s->state == SWARM_PENDING || s->state == SWARM_ACTIVE) && swarm_manager_role(s)
		   ? s->store
		   : NULL;
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

bool swarm_is_manager(const struct swarm *s)
{
	return (s->state == SWARM_ACTIVE || s->state == SWARM_PENDING) && swarm_manager_role(s) &&
	       s->store != NULL && s->consensus != NULL && !s->consensus_closing;
}

size_t swarm_remote_managers(const struct swarm *s, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_managers && n < max; i++)
		out[n++] = s->managers[i];
	return n;
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
