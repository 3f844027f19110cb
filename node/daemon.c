/* The daemon: parses its flags, locks the state directory, and wires one libuv
 * loop with the API socket, the swarm (Raft and the store) and signals.
 *
 * Start: flags -> state dir (0700) -> lock -> swarm (resumes from disk) ->
 * image store (STATE_DIR/images) -> API socket (0660) -> run. SIGTERM/SIGINT: close the socket
 * (removing it), close the swarm (Raft closed properly), let the loop drain, release the lock. */
#include "node/daemon.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "node/agent.h"
#include "node/api.h"
#include "node/api_images.h"
#include "node/api_svc_logs.h"
#include "node/dispatch.h"
#include "node/http_server.h"
#include "node/node_mesh.h"
#include "node/swarm.h"
#include "runtime/container.h"
#include "runtime/image_store.h"
#include "runtime/netw.h"

#define DEFAULT_STATE_DIR "/var/lib/shoal"
#define DEFAULT_SOCKET	  "/run/shoal/shoal.sock"
#define MAX_INSECURE	  64

struct daemon_opts {
	const char *state_dir;
	const char *socket_path;
	const char *listen_addr;
	const char *advertise_addr;
	const char *runtime;
	const char *hostname;
	enum log_level log_level;
	enum log_format log_format;
	unsigned election_ms;
	unsigned heartbeat_ms;
	unsigned snapshot_interval;
	const char *bridge;	  /* -b/--bridge: NETW_DEFAULT_BRIDGE, or "none" */
	const char *bip;	  /* --bip: gateway/prefix of the bridge */
	const char *ingress_addr; /* --ingress-addr: where published ports listen */

	const char *insecure[MAX_INSECURE]; /* --insecure-registry */
	size_t n_insecure;
};

struct daemon {
	uv_loop_t loop;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	struct daemon_opts opts;
	char hostname[256];
	int lock_fd;
	struct swarm *swarm;
	struct image_store *images;    /* STATE_DIR/images */
	struct containers *containers; /* STATE_DIR/containers */
	struct agent *agent;	       /* runs this node's tasks */
	struct dispatch *dispatch;     /* leader loops, assignment sets, reports */
	struct task_logs *task_logs;   /* this node's task logs, for managers */
	struct svc_logs *svc_logs;     /* a manager's service logs streams */
	struct node_mesh *mesh;	       /* the routing mesh's part on this node */
	struct http_server *http;
	struct api *api;
	bool stopping;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage:  shoal daemon [OPTIONS]\n"
		"\n"
		"Run a shoal node in the foreground.\n"
		"\n"
		"Options:\n"
		"      --state-dir DIR         Directory for the node's state (default %s)\n"
		"  -H, --host unix://PATH      API socket (default unix://%s)\n"
		"      --listen-addr HOST:PORT Default cluster listen address (default "
		"0.0.0.0:4377)\n"
		"      --advertise-addr HOST[:PORT]\n"
		"                              Default address advertised to other nodes\n"
		"      --runtime runc|process  Container runtime (default runc)\n"
		"  -b, --bridge NAME           Bridge for containers, or none (default %s)\n"
		"      --bip CIDR              The bridge's address and prefix outside a swarm "
		"(default %s)\n"
		"      --ingress-addr IP       Address published ports listen on (default "
		"0.0.0.0)\n"
		"      --hostname NAME         Hostname reported for this node (default: the "
		"system's)\n"
		"      --log-level LEVEL       debug, info, warn, error, fatal (default info)\n"
		"      --log-format FORMAT     text or json (default text)\n"
		"      --raft-election-timeout MS, --raft-heartbeat-timeout MS\n"
		"                              Raft timers (default 500 and 50)\n"
		"      --raft-snapshot-interval N\n"
		"                              Raft entries between snapshots (default 10000)\n"
		"      --insecure-registry HOST:PORT\n"
		"                              Pull from this registry over plain HTTP "
		"(repeatable)\n",
		DEFAULT_STATE_DIR, DEFAULT_SOCKET, NETW_DEFAULT_BRIDGE, NETW_DEFAULT_BIP);
}

static int parse_ms(const char *flag, const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v == 0 || v > 600000) {
		fprintf(stderr, "shoal daemon: invalid value \"%s\" for %s: want milliseconds\n", s,
			flag);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_count(const char *flag, const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s < '0' || *s > '9' || *end != '\0' || v < 8 || v > 10000000) {
		fprintf(stderr, "shoal daemon: invalid value \"%s\" for %s: want 8 to 10000000\n",
			s, flag);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* Returns 0 to run, 1 for a usage error, 2 when --help was printed. */
static int parse_flags(int argc, char **argv, struct daemon_opts *o)
{
	enum {
		OPT_STATE = 256,
		OPT_LISTEN,
		OPT_ADVERTISE,
		OPT_RUNTIME,
		OPT_HOSTNAME,
		OPT_LOG_LEVEL,
		OPT_LOG_FORMAT,
		OPT_ELECTION,
		OPT_HEARTBEAT,
		OPT_SNAPSHOT,
		OPT_INSECURE,
		OPT_BIP,
		OPT_INGRESS
	};
	static const struct option longopts[] = {
	    {"state-dir", required_argument, NULL, OPT_STATE},
	    {"host", required_argument, NULL, 'H'},
	    {"listen-addr", required_argument, NULL, OPT_LISTEN},
	    {"advertise-addr", required_argument, NULL, OPT_ADVERTISE},
	    {"runtime", required_argument, NULL, OPT_RUNTIME},
	    {"hostname", required_argument, NULL, OPT_HOSTNAME},
	    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
	    {"raft-election-timeout", required_argument, NULL, OPT_ELECTION},
	    {"raft-heartbeat-timeout", required_argument, NULL, OPT_HEARTBEAT},
	    {"raft-snapshot-interval", required_argument, NULL, OPT_SNAPSHOT},
	    {"insecure-registry", required_argument, NULL, OPT_INSECURE},
	    {"bridge", required_argument, NULL, 'b'},
	    {"bip", required_argument, NULL, OPT_BIP},
	    {"ingress-addr", required_argument, NULL, OPT_INGRESS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	o->state_dir = DEFAULT_STATE_DIR;
	o->socket_path = DEFAULT_SOCKET;
	o->runtime = "runc";
	o->bridge = NETW_DEFAULT_BRIDGE;
	o->bip = NETW_DEFAULT_BIP;
	o->log_level = LOG_INFO;
	o->log_format = LOG_FORMAT_TEXT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "H:b:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE:
			o->state_dir = optarg;
			break;
		case 'H':
			o->socket_path = strncmp(optarg, "unix://", 7) == 0 ? optarg + 7 : optarg;
			if (optarg[0] != '/' && strncmp(optarg, "unix:///", 8) != 0) {
				fprintf(stderr,
					"shoal daemon: invalid --host \"%s\": want unix:///path\n",
					optarg);
				return 1;
			}
			break;
		case OPT_LISTEN:
			o->listen_addr = optarg;
			break;
		case OPT_ADVERTISE:
			o->advertise_addr = optarg;
			break;
		case OPT_RUNTIME:
			if (strcmp(optarg, "runc") != 0 && strcmp(optarg, "process") != 0) {
				fprintf(stderr,
					"shoal daemon: unknown runtime \"%s\": want runc or "
					"process\n",
					optarg);
				return 1;
			}
			o->runtime = optarg;
			break;
		case OPT_HOSTNAME:
			o->hostname = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &o->log_level) != 0) {
				fprintf(stderr, "shoal daemon: unknown log level \"%s\"\n", optarg);
				return 1;
			}
			break;
		case OPT_LOG_FORMAT:
			if (log_format_parse(optarg, &o->log_format) != 0) {
				fprintf(stderr,
					"shoal daemon: unknown log format \"%s\": want text or "
					"json\n",
					optarg);
				return 1;
			}
			break;
		case OPT_ELECTION:
			if (parse_ms("--raft-election-timeout", optarg, &o->election_ms) != 0)
				return 1;
			break;
		case OPT_HEARTBEAT:
			if (parse_ms("--raft-heartbeat-timeout", optarg, &o->heartbeat_ms) != 0)
				return 1;
			break;
		case OPT_SNAPSHOT:
			if (parse_count("--raft-snapshot-interval", optarg,
					&o->snapshot_interval) != 0)
				return 1;
			break;
		case OPT_INSECURE:
			if (optarg[0] == '\0' || strchr(optarg, '/') != NULL ||
			    o->n_insecure == MAX_INSECURE) {
				fprintf(stderr,
					"shoal daemon: invalid --insecure-registry \"%s\": want "
					"HOST[:PORT], at most %d of them\n",
					optarg, MAX_INSECURE);
				return 1;
			}
			o->insecure[o->n_insecure++] = optarg;
			break;
		case 'b':
			o->bridge = optarg;
			break;
		case OPT_BIP:
			o->bip = optarg;
			break;
		case OPT_INGRESS:
			o->ingress_addr = optarg;
			break;
		case 'h':
			usage(stdout);
			return 2;
		default:
			fprintf(stderr, "See 'shoal daemon --help'.\n");
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"shoal daemon: unexpected argument \"%s\"\nSee 'shoal daemon "
			"--help'.\n",
			argv[optind]);
		return 1;
	}
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void containers_closed(void *arg)
{
	struct daemon *d = arg;

	d->containers = NULL;
	api_free(d->api);
	d->api = NULL;
	image_store_close(d->images);
	d->images = NULL;
	uv_close((uv_handle_t *)&d->sigterm, handle_closed);
	uv_close((uv_handle_t *)&d->sigint, handle_closed);
	log_info("daemon", "stopped");
}

/* Containers keep running: the next daemon re-adopts them. */
static void swarm_closed(void *arg)
{
	struct daemon *d = arg;

	d->swarm = NULL;
	/* Its waits watch containers; no RPC can ask for more now. */
	task_logs_close(d->task_logs);
	d->task_logs = NULL;
	ctr_close(d->containers, containers_closed, d);
}

static void mesh_closed(void *arg)
{
	struct daemon *d = arg;

	d->mesh = NULL;
	if (d->swarm != NULL)
		swarm_close(d->swarm, swarm_closed, d);
	else
		swarm_closed(d);
}

static void agent_closed(void *arg)
{
	struct daemon *d = arg;

	d->agent = NULL;
	node_mesh_close(d->mesh, mesh_closed, d);
}

static void dispatch_closed(void *arg)
{
	struct daemon *d = arg;

	d->dispatch = NULL;
	if (d->agent != NULL)
		agent_close(d->agent, agent_closed, d);
	else
		agent_closed(d);
}

static void http_closed(void *arg)
{
	struct daemon *d = arg;

	d->http = NULL;
	svc_logs_close(d->svc_logs);
	d->svc_logs = NULL;
	dispatch_close(d->dispatch, dispatch_closed, d);
}

static void stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("daemon", "shutting down");
	if (d->http != NULL)
		http_server_close(d->http, http_closed, d);
	else
		http_closed(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	log_info("daemon", "received signal %d", signum);
	stop(d);
}

/* Container events go to the agent (once it exists). */
static void ctr_event(void *arg, const struct container *c, enum ctr_event ev)
{
	struct daemon *d = arg;

	if (d->agent != NULL)
		agent_container_event(d->agent, c, ev);
}

/* The services layer: the dispatcher (leader loops, assignment sets, status
 * reports) and this node's agent, which resumes its last assignment set. */
static int open_services(struct daemon *d, struct shoal_err *err)
{
	char path[4096];
	struct dispatch_config dcfg;
	struct agent_config acfg;
	int rv;

	bool net = strcmp(d->opts.runtime, "runc") == 0 && strcmp(d->opts.bridge, "none") != 0;

	rv = task_logs_new(&d->task_logs, &d->loop, d->containers, err);
	if (rv == 0)
		rv = svc_logs_new(&d->svc_logs, &d->loop, d->swarm, d->task_logs, err);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof(path), "%s/agent", d->opts.state_dir);
	rv = node_mesh_open(&d->loop, net ? d->containers : NULL, path, d->opts.ingress_addr,
			    &d->mesh, err);
	if (rv != 0) {
		shoal_err_wrap(err, "restore the routing mesh");
		return rv;
	}
	memset(&dcfg, 0, sizeof(dcfg));
	dcfg.loop = &d->loop;
	dcfg.swarm = d->swarm;
	dcfg.logs = d->task_logs;
	dcfg.mesh = d->mesh;
	rv = dispatch_start(&d->dispatch, &dcfg, err);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof(path), "%s/agent", d->opts.state_dir);
	memset(&acfg, 0, sizeof(acfg));
	acfg.loop = &d->loop;
	acfg.state_dir = path;
	acfg.node_id = swarm_node_id(d->swarm); /* filled in place by init/join */
	acfg.containers = d->containers;
	acfg.images = d->images;
	acfg.report = dispatch_agent_report;
	acfg.arg = d->dispatch;
	acfg.mesh = d->mesh;
	rv = agent_open(&acfg, &d->agent, err);
	if (rv != 0) {
		shoal_err_wrap(err, "resume this node's tasks");
		return rv;
	}
	dispatch_set_agent(d->dispatch, d->agent);
	return 0;
}

/* The containers, re-adopting those that kept running while the daemon was
 * away. The container bridge (runc only, unless --bridge none) is set up when
 * the first container needs it. */
static int open_containers(struct daemon *d, struct shoal_err *err)
{
	char path[4096];
	struct netw_config ncfg;
	struct ctr_config ccfg;
	bool runc = strcmp(d->opts.runtime, "runc") == 0;
	int rv;

	char net_dir[4096];

	snprintf(net_dir, sizeof(net_dir), "%s/network", d->opts.state_dir);
	memset(&ncfg, 0, sizeof(ncfg));
	ncfg.state_dir = net_dir;
	ncfg.bridge = d->opts.bridge;
	ncfg.bip = d->opts.bip;
	snprintf(path, sizeof(path), "%s/containers", d->opts.state_dir);
	rv = fs_mkdir_p(path, 0700, err);
	if (rv != 0)
		return rv;
	memset(&ccfg, 0, sizeof(ccfg));
	ccfg.loop = &d->loop;
	ccfg.root = path;
	ccfg.driver = runc ? CTR_DRIVER_RUNC : CTR_DRIVER_PROCESS;
	ccfg.images = d->images;
	ccfg.on_event = ctr_event;
	ccfg.arg = d;
	ccfg.net = runc && strcmp(d->opts.bridge, "none") != 0 ? &ncfg : NULL;
	rv = ctr_open(&ccfg, &d->containers, err);
	if (rv != 0)
		shoal_err_wrap(err, "open the containers in %s", path);
	return rv;
}

static int start(struct daemon *d, struct shoal_err *err)
{
	_cleanup_free_ char *lock_path = NULL;
	_cleanup_free_ char *images_path = NULL;
	char *slash;
	char sock_dir[4096];
	struct swarm_config scfg;
	struct api_context actx;
	struct http_limits limits;
	int rv;

	rv = fs_mkdir_p(d->opts.state_dir, 0700, err);
	if (rv != 0)
		return rv;
	lock_path = malloc(strlen(d->opts.state_dir) + sizeof("/shoal.lock"));
	if (lock_path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	sprintf(lock_path, "%s/shoal.lock", d->opts.state_dir);
	rv = fs_lock(lock_path, &d->lock_fd, err);
	if (rv == SHOAL_EBUSY)
		return shoal_errf(err, rv,
				  "another shoal daemon is using the state directory %s (%s is "
				  "locked); stop it or choose another --state-dir",
				  d->opts.state_dir, lock_path);
	if (rv != 0)
		return rv;

	snprintf(sock_dir, sizeof(sock_dir), "%s", d->opts.socket_path);
	slash = strrchr(sock_dir, '/');
	if (slash != NULL && slash != sock_dir) {
		*slash = '\0';
		if (!fs_exists(sock_dir)) {
			rv = fs_mkdir_p(sock_dir, 0755, err);
			if (rv != 0)
				return rv;
		}
	}

	memset(&scfg, 0, sizeof scfg);
	scfg.state_dir = d->opts.state_dir;
	scfg.hostname = d->hostname;
	scfg.listen_addr = d->opts.listen_addr;
	scfg.advertise_addr = d->opts.advertise_addr;
	scfg.election_timeout_ms = d->opts.election_ms;
	scfg.heartbeat_timeout_ms = d->opts.heartbeat_ms;
	scfg.snapshot_interval = d->opts.snapshot_interval;
	rv = swarm_open(&d->swarm, &d->loop, &scfg, err);
	if (rv != 0) {
		shoal_err_wrap(err, "resume swarm state");
		return rv;
	}

	images_path = malloc(strlen(d->opts.state_dir) + sizeof("/images"));
	if (images_path == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	sprintf(images_path, "%s/images", d->opts.state_dir);
	rv = image_store_open(images_path, &d->images, err);
	if (rv != 0) {
		shoal_err_wrap(err, "open the image store %s", images_path);
		return rv;
	}

	rv = open_containers(d, err);
	if (rv == 0)
		rv = open_services(d, err);
	if (rv != 0)
		return rv;

	memset(&actx, 0, sizeof actx);
	actx.swarm = d->swarm;
	actx.images = d->images;
	actx.containers = d->containers;
	actx.svc_logs = d->svc_logs;
	actx.hostname = d->hostname;
	actx.state_dir = d->opts.state_dir;
	actx.runtime = d->opts.runtime;
	actx.started_ns = clock_now_ns();
	api_images_pull_setup(&d->loop, d->opts.state_dir, d->opts.insecure, d->opts.n_insecure);
	rv = api_new(&d->api, &actx, err);
	if (rv != 0)
		return rv;
	/* Image archives stream to an unlinked temp file in the state dir (on
	 * disk, like the images) instead of memory; other bodies keep the
	 * core's default bound. */
	memset(&limits, 0, sizeof limits);
	limits.file_body = api_body_to_file;
	limits.file_body_dir = d->opts.state_dir;
	limits.max_file_body_bytes = API_MAX_IMAGE_ARCHIVE;
	rv = http_server_start(&d->http, &d->loop, d->opts.socket_path, 0660, &limits, api_handle,
			       d->api, err);
	if (rv != 0)
		return rv;
	log_info("daemon", "shoal %s serving the API on unix://%s (state in %s)", PACKAGE_VERSION,
		 d->opts.socket_path, d->opts.state_dir);
	return 0;
}

int daemon_main(int argc, char **argv)
{
	struct daemon d;
	struct shoal_err err;
	int rv, exit_code = 0;

	memset(&d, 0, sizeof d);
	d.lock_fd = -1;
	rv = parse_flags(argc, argv, &d.opts);
	if (rv != 0)
		return rv == 2 ? 0 : 1;
	log_setup(d.opts.log_level, d.opts.log_format);
	if (d.opts.hostname != NULL)
		snprintf(d.hostname, sizeof(d.hostname), "%s", d.opts.hostname);
	else if (gethostname(d.hostname, sizeof(d.hostname) - 1) != 0)
		snprintf(d.hostname, sizeof(d.hostname), "localhost");

	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&d.loop);
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	d.sigterm.data = &d;
	d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);

	rv = start(&d, &err);
	if (rv != 0) {
		log_error("daemon", "%s", err.msg);
		exit_code = 1;
		stop(&d);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d.loop) != 0)
		log_warn("daemon", "event loop closed with handles still open");
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	return exit_code;
}
