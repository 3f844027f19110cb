#!/usr/bin/env bash
# Services benchmark: from `service create --replicas N` to all N running
# (N = 10, 50, 100) on one node and on three; scale 50 -> 100 and 10 of 50
# containers killed until 50 run again (one node); a worker's death until its
# tasks run elsewhere (3 managers + 2 workers).
#
# References measured in the same run:
#   - N sequential `runc run -d` of the same process (the floor, bench/lib.sh);
#   - Docker Swarm mode (Debian's docker.io), the same service through its
#     API, when dockerd is installed (NO_DOCKER=1: skipped): single node for
#     the create, scale and heal figures; 3 managers + 2 workers (one dockerd
#     per test host, as bench/cluster.sh builds it) for a worker's death.
#     Without it, the issue's Docker figure for a worker's death (47 s) is
#     printed, marked as not measured.
#
# Every daemon runs on a test host, a network namespace on a private switch
# (tests/integration/netns.sh): hosts 1-5 the shoal cluster, 6 the one-node
# shoal, 7 the one-node dockerd, 8-12 the Docker cluster. Each dockerd has
# its own data-root, exec-root, pidfile, socket and --cgroup-parent. At exit
# (also on failure or ^C) the daemons are killed, every container removed
# (runc delete -f, docker rm -f, the processes left in the dockerds'
# cgroups), mounts under the work directory unmounted, the containers'
# cgroups removed and the namespaces deleted (with whatever still runs in
# them).
#
# Usage: bench/services.sh [one|cluster|death|all]...   (default all)
# Environment: ROUNDS (1: create figures are medians of that many rounds),
#   DEATH_RUNS (5), DOCKER_DEATH_RUNS (1; 20-60 s each), SHOAL_BUILD (the
#   release build's directory, default build), NO_DOCKER=1.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

. "$top/bench/lib.sh"
bench_sections "bench/services.sh [one|cluster|death|all]..." one cluster death -- "$@"
[ "$(id -u)" = 0 ] || { echo "bench/services.sh needs root (namespaces, runc)" >&2; exit 1; }
rounds=${ROUNDS:-1}
death_runs=${DEATH_RUNS:-5}
docker_death_runs=${DOCKER_DEATH_RUNS:-1}
sizes=(10 50 100)

echo "# building the release build (scripts/build.sh release ${SHOAL_BUILD:-build})"
bench_build || exit 1
bench_netns sbench

net_setup 12 || die "net_setup failed"
ONE=6 DOCK=7
DKH=(0 8 9 10 11 12) # the Docker cluster's hosts

# --- cleanup (lib.sh runs the hooks last-registered first, then the netns go) --
DW=$T/docker
DW_CGROUP=shoalbench-svc-$$ # dockerd's containers' cgroups, removed at exit
docker_cleanup() {
	[ -f "$DW/docker.pid" ] || return 0
	local dpid ids
	dpid=$(cat "$DW/docker.pid")
	ids=$(DOCKER_HOST="unix://$DW/docker.sock" timeout 30 docker service ls -q 2>/dev/null)
	[ -n "$ids" ] && DOCKER_HOST="unix://$DW/docker.sock" timeout 60 docker service rm $ids >/dev/null 2>&1
	ids=$(DOCKER_HOST="unix://$DW/docker.sock" timeout 30 docker ps -aq 2>/dev/null)
	[ -n "$ids" ] && DOCKER_HOST="unix://$DW/docker.sock" timeout 60 docker rm -f $ids >/dev/null 2>&1
	kill -TERM "$dpid" 2>/dev/null
	for _ in $(seq 1 400); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$dpid" 2>/dev/null
	rm -f "$DW/docker.pid"
	find /sys/fs/cgroup/*/"$DW_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
	return 0
}
# The Docker cluster: dockerd I on host ${DKH[I]} (bench/dcluster.sh).
. "$top/bench/dcluster.sh"
bench_cleanup() {
	ctr_cleanup # kills our daemons, removes their containers, mounts and cgroups
	floor_rm
	grep -F " $T/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	return 0
}
_cleanup_hooks+=(bench_cleanup docker_cleanup dcluster_cleanup)

# --- helpers --------------------------------------------------------------------
dk() { local s=$1; shift; DOCKER_HOST="unix://$s" timeout 120 docker "$@"; }
Q_RUNNING='%7B%22service%22%3A%5B%22SVC%22%5D%2C%22desired-state%22%3A%5B%22running%22%5D%7D'
# tasks_json SOCK SERVICE: the service's tasks with desired state running.
tasks_json() { curl -s --unix-socket "$1" "http://x/v1.41/tasks?filters=${Q_RUNNING/SVC/$2}"; }
# running SOCK SERVICE [NODE_ID]: its tasks running (not on NODE_ID).
running() {
	tasks_json "$1" "$2" | python3 -c '
import json, sys
skip = sys.argv[1]
try: ts = json.load(sys.stdin)
except ValueError: ts = []
print(sum(1 for t in ts if t["Status"]["State"] == "running" and t.get("NodeID") != skip))' "${3:-}"
}
# running_except SOCK SERVICE FILE: its tasks running, but those whose id
# begins a line of FILE.
running_except() {
	tasks_json "$1" "$2" | python3 -c '
import json, sys
skip = {l.split()[0] for l in open(sys.argv[1]) if l.strip()}
try: ts = json.load(sys.stdin)
except ValueError: ts = []
print(sum(1 for t in ts if t["Status"]["State"] == "running" and t["ID"] not in skip))' "$3"
}
wait_running() { # SOCK SERVICE N [NODE_ID]: poll every 50 ms, at most 300 s
	local i
	for i in $(seq 1 6000); do
		[ "$(running "$1" "$2" "${4:-}")" -ge "$3" ] 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# create SOCK IMAGE NAME N -> seconds until N run (--stop-grace-period only
# shortens the removal between rounds: sleep as pid 1 ignores SIGTERM).
create() {
	local t0
	t0=$(now)
	dk "$1" service create -d --no-resolve-image --stop-grace-period 1s --name "$3" \
		--replicas "$4" "$2" sleep 100000 >/dev/null || { echo "# service create $3 failed" >&2; return 1; }
	wait_running "$1" "$3" "$4" || { echo "# $3: $4 not running after 300 s" >&2; return 1; }
	since "$t0"
}
# svc_rm SOCK SERVICE CHECK...: remove, then wait until CHECK... (a command)
# succeeds (60 s at most).
svc_rm() {
	local s=$1 name=$2
	shift 2
	dk "$s" service rm "$name" >/dev/null
	wait_for 60 "$@" || echo "# $name: containers left after service rm" >&2
}
no_docker_ctr() { [ "$(dk "$DW/docker.sock" ps -q | wc -l)" = 0 ]; }
no_shoal_ctr() { [ "$(ctr_total "$@")" = 0 ]; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "-" || b == "" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

floor_setup "$T/floor" || die "runc floor bundle"
declare -A f s d c

# --- one node -------------------------------------------------------------------
have_docker=
docker_why=
start_docker() {
	if [ "${NO_DOCKER:-}" = 1 ]; then docker_why="NO_DOCKER=1"; return 1; fi
	command -v dockerd >/dev/null || { docker_why="dockerd is not installed (apt-get install docker.io)"; return 1; }
	mkdir -p "$DW"
	# in a subshell: no job of ours (no notice when cleanup kills it)
	(nsenter --net="/var/run/netns/${NET_NS[DOCK]}" dockerd --data-root "$DW/data" \
		--exec-root "$DW/exec" -H "unix://$DW/docker.sock" --pidfile "$DW/docker.pid" \
		--cgroup-parent "$DW_CGROUP" --iptables=false --bridge=none >"$DW/docker.log" 2>&1 &)
	wait_for 30 dk "$DW/docker.sock" version || { docker_why="dockerd did not start: $(tail -n 2 "$DW/docker.log")"; return 1; }
	dk "$DW/docker.sock" load -i "$BENCH_DEMO" >/dev/null 2>&1 || { docker_why="docker load failed"; return 1; }
	dk "$DW/docker.sock" swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null 2>&1 ||
		{ docker_why="docker swarm init failed"; return 1; }
	# The full id: a short one is taken for a name and pulled (PLATFORM.md).
	dimg=$(dk "$DW/docker.sock" image inspect -f '{{.Id}}' shoal-demo:latest)
}
section_one() {
	local sock n r a b e sc t0 pids
	log "one node: shoal on test host $ONE, dockerd on test host $DOCK"
	host_daemon_start one "$ONE" --bridge none --log-level warn || die "the one-node daemon did not start"
	sock=$(sock one)
	sh_on one swarm init --advertise-addr "${NET_IP[ONE]}" >/dev/null || die "swarm init (one node)"
	sh_on one image load -i "$BENCH_DEMO" >/dev/null || die "image load (one node)"
	start_docker && have_docker=1
	for n in "${sizes[@]}"; do
		a=() b=() e=()
		for r in $(seq 1 "$rounds"); do
			a+=("$(floor_start "$n" "f$n-$r-")")
			floor_rm
			b+=("$(create "$sock" shoal-demo:latest "s$n$r" "$n")") || die "shoal create $n failed"
			svc_rm "$sock" "s$n$r" no_shoal_ctr one
			if [ -n "$have_docker" ]; then
				e+=("$(create "$DW/docker.sock" "$dimg" "d$n$r" "$n")") || die "docker create $n failed"
				svc_rm "$DW/docker.sock" "d$n$r" no_docker_ctr
			fi
		done
		f[$n]=$(printf '%s\n' "${a[@]}" | median)
		s[$n]=$(printf '%s\n' "${b[@]}" | median)
		[ -n "$have_docker" ] && d[$n]=$(printf '%s\n' "${e[@]}" | median)
		log "N=$n: runc ${f[$n]} s, shoal ${s[$n]} s, docker ${d[$n]:--} s"
	done
	# scale 50 -> 100; then 10 of a 50-replica service's containers killed.
	scale_and_heal() { # SOCK IMAGE NAME CHECK... -> "scale_s heal_s"
		local so=$1 img=$2 name=$3
		shift 3
		create "$so" "$img" "$name" 50 >/dev/null || return 1
		t0=$(now)
		dk "$so" service scale -d "$name=100" >/dev/null
		wait_running "$so" "$name" 100 || return 1
		sc=$(since "$t0")
		dk "$so" service scale -d "$name=50" >/dev/null
		for _ in $(seq 1 6000); do [ "$(running "$so" "$name")" = 50 ] && break; sleep 0.05; done
		sleep 1
		# 10 running tasks: "id pid" lines; healed once 50 others run (the
		# killed tasks may still read running until their exit is reported).
		tasks_json "$so" "$name" | python3 -c 'import json,sys
for t in [t for t in json.load(sys.stdin) if t["Status"]["State"] == "running"][:10]:
    print(t["ID"], t["Status"]["ContainerStatus"]["PID"])' >"$T/killed"
		pids=$(cut -d' ' -f2 "$T/killed")
		t0=$(now)
		kill -9 $pids
		for _ in $(seq 1 6000); do [ "$(running_except "$so" "$name" "$T/killed")" -ge 50 ] && break; sleep 0.05; done
		echo "$sc $(since "$t0")"
		svc_rm "$so" "$name" "$@"
	}
	read -r s_scale s_heal < <(scale_and_heal "$sock" shoal-demo:latest sc no_shoal_ctr one)
	d_scale="" d_heal=""
	[ -n "$have_docker" ] && read -r d_scale d_heal < <(scale_and_heal "$DW/docker.sock" "$dimg" dc no_docker_ctr)
	log "scale: shoal $s_scale s, docker ${d_scale:--} s; heal: shoal $s_heal s, docker ${d_heal:--} s"
	daemon_kill9 one
	for id in $(runc --root "$T/one/state/containers/.runc" list -q 2>/dev/null); do
		runc --root "$T/one/state/containers/.runc" delete -f "$id" >/dev/null 2>&1
	done
	docker_cleanup
}

# --- the cluster ------------------------------------------------------------------
cluster_up=0
start_cluster() { # managers on hosts 1-3
	local i mtok
	log "cluster: 3 managers on test hosts 1-3"
	for i in 1 2 3; do
		host_daemon_start "m$i" "$i" --hostname "sb-h$i" --bridge none --log-level warn || die "daemon m$i did not start"
	done
	sh_on m1 swarm init --advertise-addr "${NET_IP[1]}" >/dev/null || die "swarm init (cluster)"
	mtok=$(sh_on m1 swarm join-token -q manager) || die "join token"
	for i in 2 3; do
		sh_on "m$i" swarm join --token "$mtok" "${NET_IP[1]}:$NET_PORT" >/dev/null || die "m$i join"
	done
	for i in 1 2 3; do sh_on "m$i" image load -i "$BENCH_DEMO" >/dev/null || die "image load on m$i"; done
	ready() { [ "$(sh_on m1 node ls --format json | grep -c '"Status":"Ready"')" = "$1" ]; }
	wait_for 30 ready 3 || die "3 managers not Ready: $(sh_on m1 node ls 2>&1)"
	cluster_up=1
}
section_cluster() {
	local n r b v
	[ "$cluster_up" = 1 ] || start_cluster
	for n in "${sizes[@]}"; do
		b=()
		for r in $(seq 1 "$rounds"); do
			if v=$(create "$(sock m1)" shoal-demo:latest "c$n$r" "$n"); then
				b+=("$v")
			else
				echo "# cluster create N=$n, round $r failed: $(sh_on m1 node ls 2>&1 | tr '\n' ' ')" >&2
			fi
			svc_rm "$(sock m1)" "c$n$r" no_shoal_ctr m1 m2 m3
		done
		[ ${#b[@]} -gt 0 ] && c[$n]=$(printf '%s\n' "${b[@]}" | median)
		log "N=$n on 3 nodes: ${c[$n]:-failed} s"
	done
}

# --- a worker's death ----------------------------------------------------------
death_ms=()
section_death() {
	local i wtok r victim vid t0 ms sock_m
	[ "$cluster_up" = 1 ] || start_cluster
	log "worker death: workers join on test hosts 4-5; $death_runs runs, 10 replicas each"
	wtok=$(sh_on m1 swarm join-token -q worker) || die "worker token"
	for i in 4 5; do
		host_daemon_start "w$i" "$i" --hostname "sb-h$i" --bridge none --log-level warn || die "daemon w$i did not start"
		sh_on "w$i" swarm join --token "$wtok" "${NET_IP[1]}:$NET_PORT" >/dev/null || die "w$i join"
		sh_on "w$i" image load -i "$BENCH_DEMO" >/dev/null || die "image load on w$i"
	done
	ready() { [ "$(sh_on m1 node ls --format json | grep -c '"Status":"Ready"')" = "$1" ]; }
	wait_for 30 ready 5 || die "5 nodes not Ready: $(sh_on m1 node ls 2>&1)"
	sock_m=$(sock m1)
	for ((r = 1; r <= death_runs; r++)); do
		victim=$((4 + (r - 1) % 2))
		vid=$(curl -s --unix-socket "$sock_m" "http://x/v1.41/nodes/sb-h$victim" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])') ||
			die "no node id for sb-h$victim"
		create "$sock_m" shoal-demo:latest "w$r" 10 >/dev/null || die "death run $r: 10 replicas not running"
		[ "$(ctr_total "w$victim")" -gt 0 ] || die "death run $r: no task on worker $victim"
		log "death run $r: w$victim runs $(ctr_total "w$victim") of 10; killing its daemon and containers"
		t0=$(now)
		daemon_kill9 "w$victim"
		for id in $(runc --root "$T/w$victim/state/containers/.runc" list -q 2>/dev/null); do
			runc --root "$T/w$victim/state/containers/.runc" delete -f "$id" >/dev/null 2>&1
		done
		if wait_running "$sock_m" "w$r" 10 "$vid"; then
			ms=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
			death_ms+=("$ms")
			log "death run $r: 10 running elsewhere after $ms ms"
		else
			echo "# death run $r: not 10 running elsewhere within 300 s" >&2
		fi
		host_daemon_start "w$victim" "$victim" --hostname "sb-h$victim" --bridge none --log-level warn ||
			die "w$victim did not restart"
		wait_for 60 ready 5 || die "w$victim not Ready again: $(sh_on m1 node ls 2>&1)"
		svc_rm "$sock_m" "w$r" no_shoal_ctr m1 m2 m3 w4 w5
	done
}

# --- a worker's death, Docker -------------------------------------------------------
ddeath_ms=()
ddeath_why=
dcluster_up() {
	local i ip1 ip tok mtok wtok pids=()
	if [ "${NO_DOCKER:-}" = 1 ]; then ddeath_why="NO_DOCKER=1"; return 1; fi
	command -v dockerd >/dev/null || { ddeath_why="dockerd is not installed"; return 1; }
	log "docker worker death: 5 dockerd (3 managers + 2 workers) on test hosts 8-12"
	for i in 1 2 3 4 5; do dc_start "$i" & pids+=($!); done
	wait "${pids[@]}"
	for i in 1 2 3 4 5; do
		dc "$i" version >/dev/null 2>&1 || { ddeath_why="dockerd $i did not start: $(tail -n 2 "$DC/$i/dockerd.log")"; return 1; }
		dc "$i" load -i "$BENCH_DEMO" >/dev/null 2>&1 || { ddeath_why="docker load on $i failed"; return 1; }
	done
	ip1=${NET_IP[${DKH[1]}]}
	dc 1 swarm init --advertise-addr "$ip1" --listen-addr "$ip1:2377" >/dev/null 2>&1 || { ddeath_why="docker swarm init failed"; return 1; }
	mtok=$(dc 1 swarm join-token -q manager) && wtok=$(dc 1 swarm join-token -q worker) || { ddeath_why="docker join tokens"; return 1; }
	for i in 2 3 4 5; do
		ip=${NET_IP[${DKH[i]}]} tok=$mtok
		[ "$i" -ge 4 ] && tok=$wtok
		dc "$i" swarm join --token "$tok" --advertise-addr "$ip" --listen-addr "$ip:2377" "$ip1:2377" >/dev/null 2>&1 ||
			{ ddeath_why="docker swarm join of $i failed"; return 1; }
	done
	wait_for 60 dc_ready || { ddeath_why="the Docker cluster is not Ready: $(dc 1 node ls 2>&1 | tr '\n' ' ')"; return 1; }
	dcimg=$(dc 1 image inspect -f '{{.Id}}' shoal-demo:latest)
}
section_docker_death() {
	local r victim vid t0 ms s1=$DC/1/docker.sock
	dcluster_up || { echo "# docker worker death not measured: $ddeath_why"; return 0; }
	for ((r = 1; r <= docker_death_runs; r++)); do
		victim=$((4 + (r - 1) % 2))
		vid=$(dc "$victim" info --format '{{.Swarm.NodeID}}') || { ddeath_why="no node id"; break; }
		create "$s1" "$dcimg" "dw$r" 10 >/dev/null || { ddeath_why="10 replicas did not run"; break; }
		log "docker death run $r: d$victim runs $(dc "$victim" ps -q | wc -l) of 10; killing its daemons and containers"
		t0=$(now)
		dc_kill "$victim"
		if wait_running "$s1" "dw$r" 10 "$vid"; then
			ms=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
			ddeath_ms+=("$ms")
			log "docker death run $r: 10 running elsewhere after $ms ms"
		else
			echo "# docker death run $r: not 10 running elsewhere within 300 s" >&2
		fi
		dc_start "$victim" && wait_for 120 dc_ready || { echo "# d$victim not Ready again" >&2; break; }
		svc_rm "$s1" "dw$r" dc_none
	done
	dcluster_cleanup
}

echo "# shoal services benchmark: $(nproc) cores, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
want one && section_one
want cluster && section_cluster
if want death; then
	section_death
	section_docker_death
fi

# --- tables -------------------------------------------------------------------------
printf '\nshoal services benchmark (runc, no network; %s cores; median of %s round(s))\n' "$(nproc)" "$rounds"
if want one || want cluster; then
	printf '\n%-34s %9s %9s %9s %9s %10s %11s %12s\n' "create --replicas N, all running" "runc run" "shoal" \
		"shoal 3n" "docker" "shoal/runc" "shoal/docker" "shoal 3n/1n"
	for n in "${sizes[@]}"; do
		printf '%-34s %8ss %8ss %8ss %8ss %10s %11s %12s\n' "N = $n" "${f[$n]:--}" "${s[$n]:--}" "${c[$n]:--}" \
			"${d[$n]:--}" "$(ratio "${s[$n]:-}" "${f[$n]:-}")" "$(ratio "${s[$n]:-}" "${d[$n]:-}")" \
			"$(ratio "${c[$n]:-}" "${s[$n]:-}")"
	done
	echo "(runc run: N sequential runc run -d, the floor; shoal 3n: 3 managers; docker: one node${docker_why:+; not measured: $docker_why})"
fi
if want one; then
	printf '\n%-34s %9s %9s %12s\n' "one node" "shoal" "docker" "shoal/docker"
	printf '%-34s %8ss %8ss %12s\n' "scale 50 -> 100" "${s_scale:--}" "${d_scale:--}" "$(ratio "${s_scale:-}" "${d_scale:-}")"
	printf '%-34s %8ss %8ss %12s\n' "10 of 50 killed until 50 run" "${s_heal:--}" "${d_heal:--}" "$(ratio "${s_heal:-}" "${d_heal:-}")"
fi
if want death; then
	read -r dmin dmed dmax dn < <(python3 - "${death_ms[@]}" <<-'EOF'
		import statistics, sys
		v = sorted(float(x) for x in sys.argv[1:])
		print("%.0f %.0f %.0f %d" % (v[0], statistics.median(v), v[-1], len(v)) if v else "- - - 0")
	EOF
	)
	read -r emin emed emax en < <(python3 - "${ddeath_ms[@]}" <<-'EOF'
		import statistics, sys
		v = sorted(float(x) for x in sys.argv[1:])
		print("%.0f %.0f %.0f %d" % (v[0], statistics.median(v), v[-1], len(v)) if v else "- - - 0")
	EOF
	)
	printf '\n%s\n' "worker death: 3 managers + 2 workers, 10 replicas; kill -9 of a worker's daemon(s) and its containers"
	printf '%s\n' "until 10 run on the other nodes (tasks API of a manager, polled every 50 ms)"
	printf '%-34s %9s %9s %9s %6s %12s\n' "worker death -> running elsewhere" "min" "median" "max" "runs" "shoal/docker"
	printf '%-34s %7sms %7sms %7sms %6s %12s\n' "shoal" "$dmin" "$dmed" "$dmax" "$dn" "$(ratio "$dmed" "$emed")"
	if [ "$en" != 0 ]; then
		printf '%-34s %7sms %7sms %7sms %6s\n' "Docker Swarm" "$emin" "$emed" "$emax" "$en"
	else
		printf '%-34s %9s %9s %9s %6s %12s\n' "Docker Swarm" "-" "47 s" "-" "-" "$(ratio "$dmed" 47000)"
		echo "(Docker: the issue's figure, not measured here: ${ddeath_why:-DOCKER_DEATH_RUNS=0})"
	fi
	echo "shoal runs (ms): ${death_ms[*]}${ddeath_ms[*]:+; docker runs (ms): ${ddeath_ms[*]}}"
fi
exec 2>/dev/null # the shell's "Killed" notices while cleanup kills the daemons
