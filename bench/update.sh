#!/usr/bin/env bash
# Update benchmark: rolling updates and rollbacks of 50 replicas, and the
# blue/green switch through the routing mesh.
#
# 1. Rolling update of 50 replicas (parallelism 10, delay 0, monitor 1s,
#    failure action pause; the RollbackConfig has the same values), stop-first
#    and start-first, each followed by `service rollback`: from the request
#    (the CLI's `service update -d` / `service rollback -d`) until the
#    service's UpdateStatus.State is "completed" / "rollback_completed" with a
#    new StartedAt (API polled every 50 ms). The tasks run
#    sh -c 'trap "exit 0" TERM; sleep 100000 & wait' in the demo image (a stop
#    takes no grace period); the update is an --env-add. shoal on 3 managers
#    with --bridge none (as bench/services.sh), and Docker Swarm mode
#    (Debian's docker.io) on 3 managers in the same run when dockerd is
#    installed. The floor the config sets: ceil(50/10) batches x (monitor +
#    the time to start 10 containers, measured as 10 sequential `runc run -d`,
#    bench/lib.sh). Then, on a second shoal cluster with the container bridge,
#    the same stop-first update with and without a published port: the
#    difference is the routing mesh's drain (NODE_MESH_DRAIN_MS per stopped
#    task before its container is stopped).
# 2. Blue/green switch: a web service (busybox httpd of the demo image serving
#    $VERSION, -p 8080:80, 4 replicas, health check) on the bridged cluster is
#    updated with --update-strategy blue-green --bluegreen-promote auto; each
#    round changes VERSION, so the colors alternate. A client on a 4th test
#    host probes every node's published port in a tight loop (one thread per
#    node, a new connection per request). Switch time: from the last new-color
#    task's running Status.Timestamp (API) to the moment every node answered
#    the new version; split into that timestamp -> Deployment.SwitchedAt (the
#    leader's decision) and SwitchedAt -> every node serving (the mesh).
#
# Test hosts are network namespaces on a private switch (tests/integration/
# netns.sh): hosts 1-3 shoal --bridge none, 4-6 shoal with its bridge, 7 the
# client, 8-10 Docker (one dockerd --iptables=false --bridge=none per host,
# with its own data-root, exec-root, pidfile, socket and --cgroup-parent).
# Only one cluster runs at a time. At exit, also on failure or ^C, the
# daemons are killed, every container removed (runc delete -f, docker rm -f,
# the processes left in the dockerds' cgroups), mounts under the work
# directory unmounted, cgroups removed and the namespaces deleted.
#
# Usage: bench/update.sh [rolling|bluegreen|all]...   (default all)
# Environment: ROUNDS (3: blue/green rounds), UPDATE_ROUNDS (1: rolling
#   figures are medians of that many rounds), SHOAL_BUILD (the release
#   build's directory, default build), NO_DOCKER=1.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

. "$top/bench/lib.sh"
bench_sections "bench/update.sh [rolling|bluegreen|all]..." rolling bluegreen -- "$@"
[ "$(id -u)" = 0 ] || { echo "bench/update.sh needs root (namespaces, runc)" >&2; exit 1; }
rounds=${ROUNDS:-3}
urounds=${UPDATE_ROUNDS:-1}
N=50 PAR=10 MONITOR=1 # the rolling update's replicas, parallelism, monitor (s)
BATCHES=$(((N + PAR - 1) / PAR))
# Docker's figures from an earlier run (50 tasks, the same UpdateConfig).
REF_STOP=15.5 REF_START=11.3 REF_RB=15.4

echo "# building the release build (scripts/build.sh release ${SHOAL_BUILD:-build})"
bench_build || exit 1
bench_netns ubench

net_setup 10 || die "net_setup failed"
CLIENT=7
DKH=(0 8 9 10) # the Docker cluster's hosts

# --- cleanup (lib.sh runs the hooks last-registered first, then the netns go) --
DW_CGROUP=shoalbench-upd-$$
DC_TIMEOUT=120
. "$top/bench/dcluster.sh"
bench_cleanup() {
	touch "$T/stop" 2>/dev/null
	ctr_cleanup # kills our daemons, removes their containers, mounts and cgroups
	floor_rm
	grep -F " $T/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	return 0
}
_cleanup_hooks+=(bench_cleanup dcluster_cleanup)

# --- helpers ------------------------------------------------------------------------
# Python helpers, talking HTTP over the daemons' unix sockets.
cat >"$T/api.py" <<-'EOF'
	"""api.py started SOCK NAME | state SOCK NAME | wait SOCK NAME STATE PREV TIMEOUT | running SOCK NAME
	| deployment SOCK NAME | green SOCK NAME COLOR SINCE

	started, state: the service's UpdateStatus.StartedAt, .State ("-" if none).
	wait: poll (50 ms) until UpdateStatus.State is STATE and StartedAt is not
	PREV; prints "END_EPOCH API_SECONDS" (API_SECONDS: CompletedAt - StartedAt).
	Fails on timeout or a paused state.
	running: the service's tasks desired running and running.
	deployment: "STATE LIVECOLOR" of its Deployment ("- -" if none).
	green: "N LAST_RUNNING_EPOCH SWITCHED_EPOCH": the tasks of color COLOR
	created at or after SINCE (epoch), desired and observed running; the last
	one's running Status.Timestamp; Deployment.SwitchedAt."""
	import datetime, http.client, json, socket, sys, time
	class Conn(http.client.HTTPConnection):
	    def __init__(self, path):
	        super().__init__("localhost", timeout=10)
	        self.path = path
	    def connect(self):
	        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	        self.sock.settimeout(10)
	        self.sock.connect(self.path)
	def get(sock, path):
	    c = Conn(sock)
	    try:
	        c.request("GET", "/v1.41" + path)
	        r = c.getresponse()
	        body = r.read()
	        if r.status != 200:
	            raise RuntimeError("GET %s: %d %s" % (path, r.status, body[:200]))
	        return json.loads(body)
	    finally:
	        c.close()
	def ts(s):
	    """RFC 3339 with up to nanoseconds -> epoch seconds (float)."""
	    if not s or s.startswith("0001-"):
	        return None
	    s = s.rstrip("Z")
	    tz = 0.0
	    if "+" in s[10:] or "-" in s[10:]:
	        i = max(s.rfind("+"), s.rfind("-"))
	        sign = 1 if s[i] == "+" else -1
	        hh, mm = s[i + 1:].split(":")
	        tz, s = sign * (int(hh) * 3600 + int(mm) * 60), s[:i]
	    base, _, frac = s.partition(".")
	    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
	    return t.timestamp() + (float("0." + frac) if frac else 0.0) - tz
	def tasks(sock, name):
	    q = json.dumps({"service": [name]})
	    return get(sock, "/tasks?filters=" + __import__("urllib.parse").parse.quote(q))
	cmd, sock, name = sys.argv[1:4]
	if cmd == "started":
	    print((get(sock, "/services/" + name).get("UpdateStatus") or {}).get("StartedAt") or "-")
	elif cmd == "state":
	    print((get(sock, "/services/" + name).get("UpdateStatus") or {}).get("State") or "-")
	elif cmd == "wait":
	    state, prev, limit = sys.argv[4], sys.argv[5], float(sys.argv[6])
	    deadline = time.time() + limit
	    last = {}
	    while time.time() < deadline:
	        try:
	            u = get(sock, "/services/" + name).get("UpdateStatus") or {}
	        except (OSError, RuntimeError, ValueError):
	            u = {}
	        last = u
	        if u.get("StartedAt") and u.get("StartedAt") != prev:
	            if u.get("State") == state:
	                end = time.time()
	                a, b = ts(u.get("StartedAt")), ts(u.get("CompletedAt"))
	                print("%.3f %s" % (end, "%.3f" % (b - a) if a and b else "-"))
	                sys.exit(0)
	            if u.get("State") in ("paused", "rollback_paused"):
	                break
	        time.sleep(0.05)
	    sys.stderr.write("# UpdateStatus: %s\n" % json.dumps(last))
	    sys.exit(1)
	elif cmd == "running":
	    try:
	        ts_ = tasks(sock, name)
	    except (OSError, RuntimeError, ValueError):
	        ts_ = []
	    print(sum(1 for t in ts_ if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"))
	elif cmd == "deployment":
	    d = get(sock, "/services/" + name).get("Deployment") or {}
	    print(d.get("State") or "-", d.get("LiveColor") or "-")
	elif cmd == "green":
	    color, since = sys.argv[4], float(sys.argv[5])
	    g = [t for t in tasks(sock, name)
	         if (t.get("Color") or "blue") == color and t.get("DesiredState") == "running"
	         and t["Status"]["State"] == "running" and (ts(t.get("CreatedAt")) or 0) >= since]
	    d = get(sock, "/services/" + name).get("Deployment") or {}
	    last = max((ts(t["Status"]["Timestamp"]) for t in g), default=None)
	    sw = ts(d.get("SwitchedAt"))
	    print(len(g), "%.6f" % last if last else "-", "%.6f" % sw if sw else "-")
EOF
# probe.py VERSION TIMEOUT IP:PORT...: one thread per target, GET / on a new
# connection each time, until every target answered VERSION; prints
# "TARGET EPOCH" per target (the first VERSION answer's arrival) and the
# number of requests; exits 1 if one never did.
cat >"$T/probe.py" <<-'EOF'
	import socket, sys, threading, time
	want, limit, targets = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
	deadline = time.time() + limit
	first, count = {}, [0]
	def run(t):
	    host, port = t.rsplit(":", 1)
	    while time.time() < deadline:
	        try:
	            s = socket.create_connection((host, int(port)), timeout=2)
	            try:
	                s.sendall(b"GET / HTTP/1.0\r\nHost: shoal\r\n\r\n")
	                data = b""
	                while True:
	                    c = s.recv(65536)
	                    if not c:
	                        break
	                    data += c
	            finally:
	                s.close()
	        except OSError:
	            continue
	        count[0] += 1
	        if data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip() == want:
	            first[t] = time.time()
	            return
	th = [threading.Thread(target=run, args=(t,)) for t in targets]
	for x in th: x.start()
	for x in th: x.join()
	for t in targets:
	    print(t, "%.6f" % first[t] if t in first else "-")
	print("requests", count[0])
	sys.exit(0 if len(first) == len(targets) else 1)
EOF
api_py() { python3 "$T/api.py" "$@"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "") print "-"; else printf "%.3f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "-" || b == "" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
med() { [ $# -gt 0 ] && printf '%s\n' "$@" | median || echo -; }

# cli SYS ARGS...: the system's own CLI (shoal's, or docker's) against its
# first manager. SYS: a (shoal --bridge none), b (shoal with bridge), d (Docker).
cli() {
	local sys=$1
	shift
	case "$sys" in
	a | b) "$SHOAL_BIN" -H "unix://$(sock "${sys}1")" "$@" ;;
	d) dc 1 "$@" ;;
	esac
}
sysock() { case "$1" in a | b) sock "${1}1" ;; d) echo "$DC/1/docker.sock" ;; esac; }
sysimg() { case "$1" in a | b) echo shoal-demo:latest ;; d) echo "$dimg" ;; esac; }
nrunning() { api_py running "$(sysock "$1")" "$2"; }
has_running() { [ "$(nrunning "$1" "$2")" = "$3" ]; }

# shoal_cluster SYS H1: 3 managers on test hosts H1..H1+2; FLAGS after.
shoal_cluster() {
	local sys=$1 h=$2 i mtok
	shift 2
	for i in 1 2 3; do
		host_daemon_start "$sys$i" $((h + i - 1)) --hostname "ub-$sys$i" --log-level warn "$@" ||
			die "daemon $sys$i did not start"
	done
	sh_on "${sys}1" swarm init --advertise-addr "${NET_IP[h]}" >/dev/null || die "swarm init ($sys)"
	mtok=$(sh_on "${sys}1" swarm join-token -q manager) || die "join token ($sys)"
	for i in 2 3; do
		sh_on "$sys$i" swarm join --token "$mtok" "${NET_IP[h]}:$NET_PORT" >/dev/null || die "$sys$i join"
	done
	for i in 1 2 3; do sh_on "$sys$i" image load -i "$BENCH_DEMO" >/dev/null || die "image load on $sys$i"; done
	ready3() { [ "$(sh_on "${sys}1" node ls --format json | grep -c '"Status":"Ready"')" = 3 ]; }
	wait_for 30 ready3 || die "cluster $sys: 3 managers not Ready: $(sh_on "${sys}1" node ls 2>&1)"
}
shoal_cluster_down() { # SYS: kill its daemons, remove their containers
	local sys=$1 i r id
	for i in 1 2 3; do
		daemon_kill9 "$sys$i"
		r=$T/$sys$i/state/containers/.runc
		for id in $(runc --root "$r" list -q 2>/dev/null); do runc --root "$r" delete -f "$id" >/dev/null 2>&1; done
	done
}

# --- Docker on test hosts 8-10 ------------------------------------------------------
dk_why=
dimg=
dcluster_up() {
	local i ip1 ip mtok pids=()
	if [ "${NO_DOCKER:-}" = 1 ]; then dk_why="NO_DOCKER=1"; return 1; fi
	command -v dockerd >/dev/null && command -v docker >/dev/null ||
		{ dk_why="dockerd is not installed (apt-get install docker.io)"; return 1; }
	log "Docker: 3 dockerd (3 managers) on test hosts 8-10"
	for i in 1 2 3; do dc_start "$i" & pids+=($!); done
	wait "${pids[@]}"
	for i in 1 2 3; do
		dc "$i" version >/dev/null 2>&1 || { dk_why="dockerd $i did not start: $(tail -n 2 "$DC/$i/dockerd.log")"; return 1; }
		dc "$i" load -i "$BENCH_DEMO" >/dev/null 2>&1 || { dk_why="docker load on $i failed"; return 1; }
	done
	ip1=${NET_IP[${DKH[1]}]}
	dc 1 swarm init --advertise-addr "$ip1" --listen-addr "$ip1:2377" >/dev/null 2>&1 || { dk_why="docker swarm init failed"; return 1; }
	mtok=$(dc 1 swarm join-token -q manager) || { dk_why="docker join token"; return 1; }
	for i in 2 3; do
		ip=${NET_IP[${DKH[i]}]}
		dc "$i" swarm join --token "$mtok" --advertise-addr "$ip" --listen-addr "$ip:2377" "$ip1:2377" >/dev/null 2>&1 ||
			{ dk_why="docker swarm join of $i failed"; return 1; }
	done
	wait_for 60 dc_ready || { dk_why="the Docker cluster is not Ready: $(dc 1 node ls 2>&1 | tr '\n' ' ')"; return 1; }
	# The full id: a short one is taken for a name and pulled (PLATFORM.md).
	dimg=$(dc 1 image inspect -f '{{.Id}}' shoal-demo:latest) || { dk_why="no shoal-demo image id"; return 1; }
}
dc_ctr_total() {
	local i n=0
	for i in 1 2 3; do n=$((n + $(dc "$i" ps -q 2>/dev/null | wc -l))); done
	echo "$n"
}

# --- one rolling update ------------------------------------------------------------
# timed SYS NAME STATE CMD...: run CMD (an update or rollback request), then
# wait until UpdateStatus is STATE with a new StartedAt; prints "WALL API"
# (seconds from the request; CompletedAt - StartedAt).
timed() {
	local sys=$1 name=$2 state=$3 prev t0 out
	shift 3
	prev=$(api_py started "$(sysock "$sys")" "$name") || return 1
	t0=$(now)
	"$@" >/dev/null || { echo "# $sys: request failed: $*" >&2; return 1; }
	out=$(api_py wait "$(sysock "$sys")" "$name" "$state" "$prev" 300) || { echo "# $sys $name: no $state" >&2; return 1; }
	read -r end api <<<"$out"
	echo "$(sub "$end" "$t0") $api"
}
# settle SYS NAME: no update running, N tasks running (120 s at most).
settle() {
	local sys=$1 name=$2
	idle() {
		local st
		st=$(api_py state "$(sysock "$sys")" "$name") || return 1
		[ "$st" != updating ] && [ "$st" != rollback_started ] && has_running "$sys" "$name" "$N"
	}
	wait_for 120 idle
}
svc_flags=(--stop-grace-period 1s --update-parallelism "$PAR" --update-delay 0s --update-monitor "${MONITOR}s"
	--update-failure-action pause --rollback-parallelism "$PAR" --rollback-delay 0s
	--rollback-monitor "${MONITOR}s" --rollback-failure-action pause)
cmd_sleep=(sh -c 'trap "exit 0" TERM; sleep 100000 & wait')
# create_svc SYS NAME ORDER [FLAGS...]: N replicas; waits until they run.
create_svc() {
	local sys=$1 name=$2 order=$3 ri=()
	shift 3
	[ "$sys" = d ] && ri=(--no-resolve-image)
	cli "$sys" service create -d "${ri[@]}" --name "$name" --replicas "$N" "${svc_flags[@]}" \
		--update-order "$order" --rollback-order "$order" -e V=0 "$@" "$(sysimg "$sys")" "${cmd_sleep[@]}" >/dev/null ||
		{ echo "# $sys: service create $name failed" >&2; return 1; }
	wait_for 300 has_running "$sys" "$name" "$N" || { echo "# $sys: $N of $name not running" >&2; return 1; }
}
rm_svc() { # SYS NAME: remove, wait until its containers are gone (90 s)
	local sys=$1 name=$2
	cli "$sys" service rm "$name" >/dev/null 2>&1
	gone() {
		case "$sys" in
		d) [ "$(dc_ctr_total)" = 0 ] ;;
		*) [ "$(ctr_total "${sys}1" "${sys}2" "${sys}3")" = 0 ] ;;
		esac
	}
	wait_for 90 gone || echo "# $sys: containers of $name left after service rm" >&2
}
# update_req SYS NAME ARGS...: service update -d (Docker: without resolving the image).
update_req() {
	local sys=$1 name=$2 ri=()
	shift 2
	[ "$sys" = d ] && ri=(--no-resolve-image)
	cli "$sys" service update -d "${ri[@]}" "$@" "$name"
}
declare -A W A # W[sys.row]: wall seconds (lists, space-separated), A: API seconds
put() { W[$1]+="${2% *} "; A[$1]+="${2#* } "; }
# rolling_set SYS ROUND: stop-first update, its rollback, then start-first.
rolling_set() {
	local sys=$1 r=$2 name="u$1$2" v
	create_svc "$sys" "$name" stop-first || return 1
	v=$(timed "$sys" "$name" completed update_req "$sys" "$name" --env-add V=1) || return 1
	put "$sys.stop" "$v"
	log "$sys round $r: stop-first update ${v% *} s (API ${v#* } s)"
	v=$(timed "$sys" "$name" rollback_completed cli "$sys" service rollback -d "$name") || return 1
	put "$sys.stoprb" "$v"
	log "$sys round $r: its rollback ${v% *} s (API ${v#* } s)"
	settle "$sys" "$name" || { echo "# $sys: $name did not settle" >&2; return 1; }
	# The orders alone (no task changes), then the update.
	update_req "$sys" "$name" --update-order start-first --rollback-order start-first >/dev/null || return 1
	sleep 1
	settle "$sys" "$name" || { echo "# $sys: $name did not settle" >&2; return 1; }
	v=$(timed "$sys" "$name" completed update_req "$sys" "$name" --env-add V=2) || return 1
	put "$sys.start" "$v"
	log "$sys round $r: start-first update ${v% *} s (API ${v#* } s)"
	v=$(timed "$sys" "$name" rollback_completed cli "$sys" service rollback -d "$name") || return 1
	put "$sys.startrb" "$v"
	log "$sys round $r: its rollback ${v% *} s (API ${v#* } s)"
	settle "$sys" "$name"
	rm_svc "$sys" "$name"
}

# --- 1. rolling updates ----------------------------------------------------------------
floor10=()
have_docker=
section_rolling() {
	local r v
	floor_setup "$T/floor" || die "runc floor bundle"
	for r in 1 2 3; do
		floor10+=("$(floor_start "$PAR" "f$r-")")
		floor_rm
	done
	log "runc floor, $PAR sequential runc run -d: ${floor10[*]} s"
	log "shoal: 3 managers (--bridge none) on test hosts 1-3"
	shoal_cluster a 1 --bridge none
	for r in $(seq 1 "$urounds"); do rolling_set a "$r" || die "shoal rolling round $r failed"; done
	shoal_cluster_down a
	if dcluster_up; then
		have_docker=1
		for r in $(seq 1 "$urounds"); do
			rolling_set d "$r" || { dk_why="Docker round $r failed"; have_docker=; break; }
		done
		dcluster_cleanup
	else
		echo "# Docker not measured: $dk_why"
	fi
}

# --- the bridged cluster: published port, blue/green -------------------------------------
b_up=0
b_cluster() {
	[ "$b_up" = 1 ] && return 0
	log "shoal: 3 managers with the container bridge on test hosts 4-6; client on host $CLIENT"
	shoal_cluster b 4
	b_up=1
}
section_port() {
	local v name
	b_cluster
	name=pn
	create_svc b "$name" stop-first || die "bridged service (no port)"
	v=$(timed b "$name" completed update_req b "$name" --env-add V=1) || die "bridged update (no port)"
	put b.stop "$v"
	log "bridged, no port: stop-first update ${v% *} s (API ${v#* } s)"
	rm_svc b "$name"
	name=pp
	create_svc b "$name" stop-first -p 8081:80 || die "bridged service (-p 8081:80)"
	v=$(timed b "$name" completed update_req b "$name" --env-add V=1) || die "bridged update (-p)"
	put b.pstop "$v"
	log "bridged, -p 8081:80: stop-first update ${v% *} s (API ${v#* } s)"
	settle b "$name"
	update_req b "$name" --update-order start-first --rollback-order start-first >/dev/null
	sleep 1
	settle b "$name"
	v=$(timed b "$name" completed update_req b "$name" --env-add V=2) || die "bridged start-first update (-p)"
	put b.pstart "$v"
	log "bridged, -p 8081:80: start-first update ${v% *} s (API ${v#* } s)"
	rm_svc b "$name"
}

bg_rows=()
section_bluegreen() {
	local r ver color live t0 last sw allg n reqs hc page
	b_cluster
	hc=(--health-cmd "nc 127.0.0.1 80 </dev/null" --health-interval 250ms --health-retries 3)
	# httpd is not PID 1: the shell is, and ends on SIGTERM (see t_update.sh).
	page='mkdir -p /www; echo "$VERSION" >/www/index.html; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
	cli b service create -d --name web --replicas 4 -p 8080:80 -e VERSION=v0 "${hc[@]}" --stop-grace-period 1s \
		shoal-demo:latest sh -c "$page" >/dev/null || die "web service create"
	wait_for 60 has_running b web 4 || die "web: 4 not running"
	serves() { # V: every node's port answers V
		local i
		for i in 4 5 6; do
			[ "$(printf 'GET / HTTP/1.0\r\n\r\n' | on_host "$CLIENT" timeout 3 busybox nc "${NET_IP[i]}" 8080 2>/dev/null |
				sed '1,/^\r*$/d')" = "$1" ] || return 1
		done
	}
	wait_for 30 serves v0 || die "web: v0 not served through every node"
	for r in $(seq 1 "$rounds"); do
		ver=v$r
		read -r _ live < <(api_py deployment "$(sock b1)" web)
		[ "$live" = green ] && color=blue || color=green
		rm -f "$T/probe.out"
		ip netns exec "${NET_NS[CLIENT]}" python3 "$T/probe.py" "$ver" 120 \
			"${NET_IP[4]}:8080" "${NET_IP[5]}:8080" "${NET_IP[6]}:8080" >"$T/probe.out" 2>&1 &
		local ppid=$!
		sleep 0.3 # the probes run (old version answers) before the request
		t0=$(now)
		if [ "$r" = 1 ]; then
			cli b service update -d --update-strategy blue-green --bluegreen-promote auto --bluegreen-grace 1s \
				--env-add "VERSION=$ver" web >/dev/null || die "blue/green update (round $r)"
		else
			cli b service update -d --env-add "VERSION=$ver" web >/dev/null || die "blue/green update (round $r)"
		fi
		wait "$ppid" || die "round $r: not every node served $ver: $(tr '\n' ' ' <"$T/probe.out"); $(api_py deployment "$(sock b1)" web)"
		allg=$(awk '$1 != "requests" { if ($2 > m) m = $2 } END { print m }' "$T/probe.out")
		reqs=$(awk '$1 == "requests" { print $2 }' "$T/probe.out")
		read -r n last sw < <(api_py green "$(sock b1)" web "$color" "$(sub "$t0" 1)")
		[ "$n" = 4 ] || die "round $r: $n running $color tasks (4 expected)"
		bg_rows+=("$r $color $(sub "$allg" "$last") $(sub "$sw" "$last") $(sub "$allg" "$sw") $(sub "$allg" "$t0") $reqs")
		log "round $r ($ver, $color): last $color running -> every node serves $ver: $(sub "$allg" "$last") s" \
			"(-> SwitchedAt $(sub "$sw" "$last") s, SwitchedAt -> all $(sub "$allg" "$sw") s; request -> all $(sub "$allg" "$t0") s; $reqs probes)"
		# The grace period ends, the old color goes: 4 tasks again.
		dep_done() { [ "$(api_py deployment "$(sock b1)" web)" = "completed $color" ] && has_running b web 4; }
		wait_for 60 dep_done || die "round $r: the deployment did not complete: $(api_py deployment "$(sock b1)" web)"
	done
	cli b service rm web >/dev/null 2>&1
}

echo "# shoal update benchmark: $(nproc) cores, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
want rolling && section_rolling
want rolling && section_port
want bluegreen && section_bluegreen

# --- tables -------------------------------------------------------------------------
printf '\nshoal update benchmark (%s cores; total %s s)\n' "$(nproc)" "$SECONDS"
if want rolling; then
	f10=$(med "${floor10[@]}")
	floor=$(awk -v b="$BATCHES" -v m="$MONITOR" -v f="$f10" 'BEGIN { printf "%.2f", b * (m + f) }')
	printf '\nRolling update of %s replicas on 3 managers: parallelism %s, delay 0, monitor %ss (rollback: the same);\n' "$N" "$PAR" "$MONITOR"
	printf 'from the request (CLI, -d) to UpdateStatus.State completed / rollback_completed (API polled every 50 ms).\n'
	printf 'floor = ceil(%s/%s) batches x (monitor %ss + %s sequential runc run -d %ss) = %s x (%s + %s) = %s s\n' \
		"$N" "$PAR" "$MONITOR" "$PAR" "$f10" "$BATCHES" "$MONITOR" "$f10" "$floor"
	dref=""
	[ -z "$have_docker" ] && dref=" (ref.)"
	printf '%-36s %8s %8s %10s %9s %11s %11s\n' "median of $urounds round(s)" "floor" "shoal" "shoal API" "docker$dref" "shoal/floor" "shoal/docker"
	row() { # LABEL KEY REF FLOOR
		local s d
		s=$(med ${W[a.$2]:-})
		if [ -n "$have_docker" ]; then d=$(med ${W[d.$2]:-}); else d=$3; fi
		printf '%-36s %7ss %7ss %9ss %8ss %11s %11s\n' "$1" "$4" "$s" "$(med ${A[a.$2]:-})" "$d" \
			"$(ratio "$s" "$4")" "$(ratio "$s" "$d")"
	}
	row "stop-first update" stop "$REF_STOP" "$floor"
	row "  its rollback (stop-first)" stoprb "$REF_RB" "$floor"
	row "start-first update" start "$REF_START" "$floor"
	row "  its rollback (start-first)" startrb - "$floor"
	if [ -n "$have_docker" ]; then
		echo "(docker: Docker Swarm mode $(dockerd --version | awk '{print $3}' | tr -d ,), 3 managers, measured in this run; an earlier run gave $REF_STOP / $REF_START / rollback $REF_RB s)"
		echo "(docker API: $(for k in stop stoprb start startrb; do printf '%s %ss  ' "$k" "$(med ${A[d.$k]:-})"; done))"
	else
		echo "(docker: reference (earlier run), NOT measured here: $dk_why)"
	fi
	echo "(shoal API / docker API: UpdateStatus.CompletedAt - StartedAt; shoal: --bridge none, as the docker daemons)"
	printf '\n%-36s %8s %8s %10s %11s\n' "with the container bridge" "floor" "shoal" "shoal API" "shoal/floor"
	for k in "stop:stop-first, no published port" "pstop:stop-first, -p 8081:80" "pstart:start-first, -p 8081:80"; do
		s=$(med ${W[b.${k%%:*}]:-})
		printf '%-36s %7ss %7ss %9ss %11s\n' "${k#*:}" "$floor" "$s" "$(med ${A[b.${k%%:*}]:-})" "$(ratio "$s" "$floor")"
	done
	echo "(the mesh's drain: -p stop-first minus no-port stop-first = $(sub "$(med ${W[b.pstop]:-})" "$(med ${W[b.stop]:-})") s over $BATCHES batches)"
fi
if want bluegreen; then
	printf '\nBlue/green switch, 3 managers, web service of 4 replicas (-p 8080:80, health check), promote auto;\n'
	printf 'from the last new-color task'"'"'s running Status.Timestamp to every node'"'"'s port answering the new version\n'
	printf '(client on a 4th host, one probing thread per node, a new connection per request)\n'
	printf '%-24s %9s %9s %9s %6s\n' "seconds, $rounds round(s)" "min" "median" "max" "rounds"
	for c in 3 4 5 6; do
		case $c in
		3) label="last running -> all nodes" ;;
		4) label="  -> SwitchedAt (leader)" ;;
		5) label="  SwitchedAt -> all nodes" ;;
		6) label="request -> all nodes" ;;
		esac
		printf '%s\n' "${bg_rows[@]}" | awk -v c="$c" -v l="$label" 'NF { v[++n] = $c } END {
			if (!n) { printf "%-24s %9s %9s %9s %6d\n", l, "-", "-", "-", 0; exit }
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			printf "%-24s %9.3f %9.3f %9.3f %6d\n", l, v[1], (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[n], n }'
	done
	echo "rounds (round color last->all ->switched switched->all request->all probes): $(printf '[%s] ' "${bg_rows[@]}")"
	echo "(no Docker figure: Docker Swarm has no blue/green deployment)"
fi
exec 2>/dev/null # the shell's "Killed" notices while cleanup kills the daemons
