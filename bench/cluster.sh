#!/usr/bin/env bash
# Cluster benchmark: leader failover, time to declare a dead worker down,
# gossip convergence with 20/50/100 daemons, and idle cost of a manager and a
# worker. Each table gives shoal's figure, the reference and shoal/reference.
#
# Test hosts are network namespaces on a private switch (tests/integration/
# netns.sh); nothing listens in the root namespace. The reference is Docker
# Engine in Swarm mode (Debian's docker.io, dockerd 20.10), started in the
# same run: one dockerd per test host, each with its own data-root,
# exec-root, pidfile, socket and --cgroup-parent, stopped by its pid file at
# exit. What Docker may change in the root namespace (ip_forward, the FORWARD
# policy, docker0/docker_gwbridge) is recorded first and restored at exit.
#
# Usage: bench/cluster.sh [failover|down|gossip|idle|all]...   (default all)
# Environment:
#   FAILOVER_RUNS (10)  DOCKER_FAILOVER_RUNS (10; ~20 s each)  DOWN_RUNS (5)
#   DOCKER_DOWN_RUNS (1)  GOSSIP_SIZES ("20 50 100")  GOSSIP_KILLS (3, one after
#   the other, different workers)  IDLE_SECONDS (30)
#   NO_DOCKER=1 to skip the Docker reference (issue figures are printed).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(all)
for s in "${sections[@]}"; do
	case "$s" in
	failover | down | gossip | idle | all) ;;
	*) echo "usage: bench/cluster.sh [failover|down|gossip|idle|all]..." >&2; exit 2 ;;
	esac
done
want() {
	local s
	for s in "${sections[@]}"; do [ "$s" = all ] || [ "$s" = "$1" ] && return 0; done
	return 1
}
[ "$(id -u)" = 0 ] || { echo "bench/cluster.sh needs root (network namespaces)" >&2; exit 1; }

FAILOVER_RUNS=${FAILOVER_RUNS:-10}
DOCKER_FAILOVER_RUNS=${DOCKER_FAILOVER_RUNS:-10}
DOWN_RUNS=${DOWN_RUNS:-5}
DOCKER_DOWN_RUNS=${DOCKER_DOWN_RUNS:-1}
GOSSIP_SIZES=${GOSSIP_SIZES:-"20 50 100"}
GOSSIP_KILLS=${GOSSIP_KILLS:-3}
IDLE_SECONDS=${IDLE_SECONDS:-30}

echo "# installing what it needs (scripts/deps.sh bench: build deps, runc, nftables, docker.io)"
scripts/deps.sh bench >/dev/null || { echo "# scripts/deps.sh bench failed" >&2; exit 1; }
echo "# building the release build (scripts/build.sh release)"
scripts/build.sh release >/dev/null || { echo "# release build failed" >&2; exit 1; }
export SHOAL_BIN=$top/build/shoal
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/netns.sh"
# A directory of our own (not /tmp/shoal-it.*, which test runs may sweep).
rmdir "$T" && T=$(mktemp -d /tmp/shoal-cbench.XXXXXX) && chmod 755 "$T"
bench_t0=$SECONDS
ms_since() { # ms_since EPOCHREALTIME_AT_T0
	python3 - "$1" "$EPOCHREALTIME" <<-'EOF'
		import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))
	EOF
}
now() { echo "$EPOCHREALTIME"; }
log() { echo "# [$((SECONDS - bench_t0))s] $*"; }

# Hosts 1..5: the shoal cluster (3 managers + 2 workers); 6..10: the Docker
# cluster (same shape); 11: the gossip host (all daemons on 127.0.1.x).
SH=(0 1 2 3 4 5)
DK=(0 6 7 8 9 10)
GH=11
net_setup 11 || { echo "# net_setup failed" >&2; exit 1; }
tag=cb$$
stats=$T/stats
mkdir -p "$stats"

# ------------------------------------------------------------------ shoal ----
sname() { echo "s$1"; }          # daemon name of shoal host i
shost() { echo "$tag-h$1"; }     # its node hostname
shoal_up=0
shoal_view() { # NAME -> "hostname/Status/ManagerStatus" lines
	sh_on "$1" node ls --format json 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    if l.strip():
        r = json.loads(l)
        print("%s/%s/%s" % (r["Hostname"], r["Status"], r["ManagerStatus"] or "-"))'
}
# shoal_healthy NAME: 5 nodes Ready, 1 leader, 2 reachable.
shoal_healthy() {
	local v
	v=$(shoal_view "$1") || return 1
	[ "$(grep -c "/Ready/" <<<"$v")" = 5 ] && [ "$(grep -c "/Leader$" <<<"$v")" = 1 ] &&
		[ "$(grep -c "/Reachable$" <<<"$v")" = 2 ]
}
shoal_leader() { # prints the leader's host index (asks every live manager)
	local i l
	for i in 1 2 3; do
		l=$(shoal_view "$(sname "$i")" 2>/dev/null | grep "/Leader$" | cut -d/ -f1) || continue
		[ -n "$l" ] && { echo "${l##*-h}"; return 0; }
	done
	return 1
}
shoal_cluster_up() {
	[ "$shoal_up" = 1 ] && return 0
	log "shoal: 3 managers + 2 workers on test hosts 1-5"
	local i out
	for i in 1 2 3 4 5; do
		host_daemon_start "$(sname "$i")" "$i" --hostname "$(shost "$i")" || return 1
	done
	out=$(sh_on s1 swarm init --advertise-addr "${NET_IP[1]}" 2>&1) || { echo "# swarm init: $out"; return 1; }
	local mtok wtok
	mtok=$(sh_on s1 swarm join-token -q manager) && wtok=$(sh_on s1 swarm join-token -q worker) || return 1
	for i in 2 3; do
		out=$(sh_on "s$i" swarm join --token "$mtok" "${NET_IP[1]}:$NET_PORT" 2>&1) ||
			{ echo "# shoal join (manager, host $i) failed: $out"; return 1; }
	done
	for i in 4 5; do
		out=$(sh_on "s$i" swarm join --token "$wtok" "${NET_IP[1]}:$NET_PORT" 2>&1) ||
			{ echo "# shoal join (worker, host $i) failed: $out"; return 1; }
	done
	wait_for 30 shoal_healthy s1 || { echo "# shoal cluster not healthy:"; shoal_view s1 | sed 's/^/#   /'; return 1; }
	shoal_up=1
}
shoal_restart() { # I: restart the daemon of host I on its state dir
	host_daemon_start "$(sname "$1")" "$1" --hostname "$(shost "$1")"
}

# ----------------------------------------------------------------- docker ----
docker_ok=0    # 1 once the Docker cluster is up
docker_tried=0
docker_why="" # why Docker could not be measured
DW=$T/docker
# root-namespace state Docker may change
root_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
root_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3; exit }')
root_links=""
for l in docker0 docker_gwbridge; do ip link show "$l" >/dev/null 2>&1 && root_links+=" $l"; done

dk() { local i=$1; shift; DOCKER_HOST="unix://$DW/$i/docker.sock" timeout 60 docker "$@"; }
dpid() { cat "$DW/$1/docker.pid" 2>/dev/null; }
docker_start() { # I (docker cluster member 1..5, on host ${DK[I]})
	local i=$1 h=${DK[$1]} d=$DW/$1
	mkdir -p "$d"
	# in a subshell, so that it is no job of ours (no "Killed" notice after kill -9)
	(nsenter --net="/var/run/netns/${NET_NS[h]}" dockerd --data-root "$d/data" --exec-root "$d/exec" \
		-H "unix://$d/docker.sock" --pidfile "$d/docker.pid" --cgroup-parent "shoalbench-$tag-d$i" \
		--iptables=false --bridge=none >>"$d/dockerd.log" 2>&1 &)
	wait_for 60 dk "$i" version || { docker_why="dockerd $i did not start: $(tail -n 3 "$d/dockerd.log")"; return 1; }
}
docker_stop_all() {
	local i p
	for i in 1 2 3 4 5; do
		p=$(dpid "$i") || continue
		kill -TERM "$p" 2>/dev/null
	done
	for i in 1 2 3 4 5; do
		p=$(dpid "$i") || continue
		for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$p" 2>/dev/null
		rm -f "$DW/$i/docker.pid"
	done
	# containerd children live in the hosts' namespaces: net_teardown kills
	# them. Mounts dockerd left (netns bind mounts, overlays) are in ours.
	local m
	for m in $(awk -v p="$DW/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	docker_ok=0
}
docker_restore_root() {
	local l
	[ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$root_fwd" ] || echo "$root_fwd" >/proc/sys/net/ipv4/ip_forward
	if [ -n "$root_policy" ]; then
		local p
		p=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3; exit }')
		[ "$p" = "$root_policy" ] || iptables -P FORWARD "$root_policy"
	fi
	for l in docker0 docker_gwbridge; do
		[[ " $root_links " == *" $l "* ]] && continue
		ip link show "$l" >/dev/null 2>&1 && ip link del "$l" 2>/dev/null
	done
}
docker_cleanup() {
	[ -d "$DW" ] || return 0
	docker_stop_all
	docker_restore_root
	local dk_ns
	for dk_ns in "${DK[@]:1}"; do ip netns pids "${NET_NS[dk_ns]}" 2>/dev/null | xargs -r kill -9 2>/dev/null; done
}
_cleanup_hooks+=(docker_cleanup) # runs before net_teardown (hooks run last-registered first)

dnode_id() { dk "$1" info --format '{{.Swarm.NodeID}}' 2>/dev/null; }
dview() { dk "$1" node ls --format '{{.ID}}/{{.Status}}/{{.ManagerStatus}}' 2>/dev/null; }
docker_healthy() { # I: 5 Ready, a leader, 2 reachable (seen from manager I)
	local v
	v=$(dview "$1") || return 1
	[ "$(grep -c "/Ready/" <<<"$v")" = 5 ] && [ "$(grep -c "/Leader$" <<<"$v")" = 1 ] &&
		[ "$(grep -c "/Reachable$" <<<"$v")" = 2 ]
}
docker_healthy_nw() { # I: the 3 managers Ready, a leader, 2 reachable (workers may be down)
	local v
	v=$(dview "$1") || return 1
	[ "$(grep -cE "/Ready/(Leader|Reachable)$" <<<"$v")" = 3 ] && [ "$(grep -c "/Leader$" <<<"$v")" = 1 ]
}
DID=()
docker_leader() {
	local i l j
	for i in 1 2 3; do
		l=$(dview "$i" | grep "/Leader$" | cut -d/ -f1) || continue
		for j in 1 2 3; do [ "${DID[j]}" = "$l" ] && { echo "$j"; return 0; }; done
	done
	return 1
}
docker_cluster_up() {
	[ "$docker_ok" = 1 ] && return 0
	[ "$docker_tried" = 1 ] && return 1
	docker_tried=1
	if [ "${NO_DOCKER:-}" = 1 ]; then docker_why="NO_DOCKER=1"; return 1; fi
	command -v dockerd >/dev/null && command -v docker >/dev/null ||
		{ docker_why="dockerd or docker not installed (apt-get install docker.io)"; return 1; }
	log "docker: 5 dockerd (3 managers + 2 workers) on test hosts 6-10"
	local i out pids=()
	for i in 1 2 3 4 5; do docker_start "$i" & pids+=($!); done
	wait "${pids[@]}"
	for i in 1 2 3 4 5; do
		dk "$i" version >/dev/null 2>&1 || { docker_why="dockerd $i did not start: $(tail -n 3 "$DW/$i/dockerd.log")"; return 1; }
	done
	local ip1=${NET_IP[${DK[1]}]}
	out=$(dk 1 swarm init --advertise-addr "$ip1" --listen-addr "$ip1:2377" 2>&1) ||
		{ docker_why="docker swarm init: $out"; return 1; }
	local mtok wtok
	mtok=$(dk 1 swarm join-token -q manager) && wtok=$(dk 1 swarm join-token -q worker) ||
		{ docker_why="docker swarm join-token failed"; return 1; }
	for i in 2 3 4 5; do
		local ip=${NET_IP[${DK[i]}]} tok=$mtok
		[ "$i" -ge 4 ] && tok=$wtok
		out=$(dk "$i" swarm join --token "$tok" --advertise-addr "$ip" --listen-addr "$ip:2377" "$ip1:2377" 2>&1) ||
			{ docker_why="docker swarm join ($i): $out"; return 1; }
	done
	for i in 1 2 3 4 5; do DID[i]=$(dnode_id "$i"); done
	wait_for 60 docker_healthy 1 || { docker_why="docker cluster not healthy: $(dview 1 | tr '\n' ' ')"; return 1; }
	docker_ok=1
	log "docker: cluster up"
}

# ----------------------------------------------------------------- tables ----
# stats NAME VALUES... -> "min median max n"
stats() {
	python3 - "$@" <<-'EOF'
		import statistics, sys
		v = sorted(float(x) for x in sys.argv[1:] if x != "")
		if not v: print("- - - 0")
		else: print("%g %g %g %d" % (v[0], statistics.median(v), v[-1], len(v)))
	EOF
}
# row LABEL SHOAL REF UNIT: one table row with the ratio
row() {
	python3 - "$@" <<-'EOF'
		import sys
		label, a, b, unit = sys.argv[1:5]
		def f(x):
		    try: return "%s %s" % (format(float(x), ",.0f") if float(x) >= 100 else format(float(x), ",.3g"), unit)
		    except ValueError: return x
		try: r = "%.3f" % (float(a) / float(b))
		except (ValueError, ZeroDivisionError): r = "n/a"
		print("%-46s %14s %22s %10s" % (label, f(a), f(b), r))
	EOF
}
header() {
	printf '\n%s\n' "$1"
	printf '%-46s %14s %22s %10s\n' "measure" "shoal" "reference" "shoal/ref"
	printf '%-46s %14s %22s %10s\n' "$(printf -- '-%.0s' {1..46})" "--------------" "----------------------" "----------"
}
emit() { cat >"$T/table.$1"; } # emit SECTION_NUMBER < table

# --------------------------------------------------------------- failover ----
# poll_writable CMD...: run CMD every 20 ms until it succeeds (60 s at most);
# prints the ms since T0 (global ft0) or nothing.
poll_writable() {
	local deadline=$((SECONDS + 60))
	while [ "$SECONDS" -lt "$deadline" ]; do
		"$@" >/dev/null 2>&1 && { ms_since "$ft0"; return 0; }
		sleep 0.02
	done
	return 1
}
section_failover() {
	shoal_cluster_up || { echo "# shoal cluster did not form; failover skipped"; return 1; }
	local r li surv ms vals=() dvals=()
	for ((r = 1; r <= FAILOVER_RUNS; r++)); do
		wait_for 30 shoal_healthy s1 || wait_for 30 shoal_healthy s2 ||
			{ echo "# shoal cluster not healthy before failover run $r"; shoal_view s2 | sed 's/^/#   /'; break; }
		li=$(shoal_leader) || { echo "# no shoal leader before run $r"; break; }
		surv=1; [ "$li" = 1 ] && surv=2
		ft0=$(now)
		daemon_kill9 "$(sname "$li")"
		if ms=$(poll_writable sh_on "s$surv" node update --label-add "k=$r" "$(shost "$surv")"); then
			vals+=("$ms")
			log "shoal failover run $r: leader h$li killed, writable on h$surv after $ms ms"
		else
			echo "# shoal failover run $r: not writable on h$surv within 60 s"
			shoal_view "s$surv" | sed 's/^/#   /'
		fi
		shoal_restart "$li" || { echo "# restart of h$li failed"; break; }
		wait_for 30 shoal_healthy "s$surv" ||
			{ echo "# h$li not back as a follower:"; shoal_view "s$surv" | sed 's/^/#   /'; }
	done
	local dnote="" dref="" dmin="" dmed="" dmax="" dn=0
	if docker_cluster_up; then
		local dl ds
		for ((r = 1; r <= DOCKER_FAILOVER_RUNS; r++)); do
			wait_for 90 docker_healthy_nw 1 || wait_for 90 docker_healthy_nw 2 ||
				{ echo "# docker cluster not healthy before failover run $r"; break; }
			dl=$(docker_leader) || { echo "# no docker leader"; break; }
			ds=1; [ "$dl" = 1 ] && ds=2
			ft0=$(now)
			kill -9 "$(dpid "$dl")"
			if ms=$(poll_writable dk "$ds" node update --label-add "k=$r" "${DID[ds]}"); then
				dvals+=("$ms")
				log "docker failover run $r: leader d$dl killed, writable on d$ds after $ms ms"
			else
				echo "# docker failover run $r: not writable within 60 s"
			fi
			rm -f "$DW/$dl/docker.pid"
			docker_start "$dl" || { echo "# docker restart failed: $docker_why"; break; }
			wait_for 90 docker_healthy_nw "$ds" || echo "# docker d$dl not back: $(dview "$ds" | tr '\n' ' ')"
		done
		read -r dmin dmed dmax dn < <(stats "${dvals[@]}")
		dnote="Docker, $dn runs"
	else
		dmin=11700 dmed=11700 dmax=11700
		dnote="issue figure, not measured: $docker_why"
	fi
	local smin smed smax sn
	read -r smin smed smax sn < <(stats "${vals[@]}")
	{
		header "1. Leader failover: kill -9 of the leader of 3 managers until a write (node update, polled every 20 ms) succeeds on a survivor
   shoal: $sn runs; reference: $dnote"
		row "failover min" "$smin" "$dmin" ms
		row "failover median" "$smed" "$dmed" ms
		row "failover max" "$smax" "$dmax" ms
		[ "$dn" = 0 ] && echo "(reference 11.7 s median: issue figure, not measured)"
		echo "shoal runs (ms): ${vals[*]}"
		[ ${#dvals[@]} -gt 0 ] && echo "docker runs (ms): ${dvals[*]}"
	} | emit 1
}

# ------------------------------------------------------------------- down ----
section_down() {
	shoal_cluster_up || { echo "# shoal cluster did not form; down skipped"; return 1; }
	local r ms vals=() dvals=() w=4 lead
	isdown() { shoal_view "$1" | grep -q "^$(shost $w)/Down/"; }
	for ((r = 1; r <= DOWN_RUNS; r++)); do
		wait_for 30 shoal_healthy s1 || wait_for 30 shoal_healthy s2 ||
			{ echo "# shoal cluster not healthy before down run $r"; break; }
		lead=$(shoal_leader) || break
		ft0=$(now)
		daemon_kill9 "$(sname $w)"
		if ms=$(poll_writable isdown "s$lead"); then
			vals+=("$ms")
			log "shoal down run $r: worker h$w killed, Down on the leader (h$lead) after $ms ms"
		else
			echo "# shoal down run $r: not Down within 60 s"; shoal_view "s$lead" | sed 's/^/#   /'
		fi
		shoal_restart $w || { echo "# restart of worker h$w failed"; break; }
		wait_for 30 shoal_healthy "s$lead" ||
			{ echo "# worker h$w not Ready again after restart:"; shoal_view "s$lead" | sed 's/^/#   /'; }
	done
	local dnote dmin dmed dmax dn=0
	if [ "$DOCKER_DOWN_RUNS" -gt 0 ] && docker_cluster_up; then
		local dl dw=5
		ddown() { dview "$1" | grep -q "^${DID[dw]}/Down/"; }
		for ((r = 1; r <= DOCKER_DOWN_RUNS; r++)); do
			wait_for 90 docker_healthy 1 || { echo "# docker cluster not healthy before down run $r"; break; }
			dl=$(docker_leader) || break
			ft0=$(now)
			kill -9 "$(dpid $dw)"
			if ms=$(poll_writable ddown "$dl"); then
				dvals+=("$ms")
				log "docker down run $r: worker d$dw killed, Down on the leader after $ms ms"
			else
				echo "# docker down run $r: not Down within 60 s"
			fi
			rm -f "$DW/$dw/docker.pid"
			docker_start $dw || break
		done
		read -r dmin dmed dmax dn < <(stats "${dvals[@]}")
		dnote="Docker, $dn run(s)"
	fi
	if [ "$dn" = 0 ]; then
		dmin=42000 dmed=42000 dmax=42000
		dnote="issue figure, not measured${docker_why:+: $docker_why}"
	fi
	local smin smed smax sn
	read -r smin smed smax sn < <(stats "${vals[@]}")
	{
		header "2. Killed worker declared Down: 3 managers + 2 workers, kill -9 of a worker until node ls on the leader shows it Down (polled every 20 ms)
   shoal: $sn runs; reference: $dnote"
		row "down min" "$smin" "$dmin" ms
		row "down median" "$smed" "$dmed" ms
		row "down max" "$smax" "$dmax" ms
		echo "shoal runs (ms): ${vals[*]}"
		[ ${#dvals[@]} -gt 0 ] && echo "docker runs (ms): ${dvals[*]}"
	} | emit 2
}

# ------------------------------------------------------------------- idle ----
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
section_idle() {
	shoal_cluster_up || { echo "# shoal cluster did not form; idle skipped"; return 1; }
	local have_docker=0
	docker_cluster_up && have_docker=1
	local lead dl="" sm sw dm="" dw="" dmc="" dwc=""
	lead=$(shoal_leader) || return 1
	sm=$(daemon_pid "$(sname "$lead")")
	sw=$(daemon_pid s5)
	if [ $have_docker = 1 ]; then
		dl=$(docker_leader) || have_docker=0
		dm=$(dpid "$dl"); dw=$(dpid 5)
		dmc=$(pgrep -P "$dm" containerd | head -n 1); dwc=$(pgrep -P "$dw" containerd | head -n 1)
	fi
	log "idle: letting both clusters settle 5 s, then ${IDLE_SECONDS} s of CPU accounting (shoal and Docker side by side)"
	sleep 5
	local hz p
	hz=$(getconf CLK_TCK)
	declare -A c0 c1 r1
	for p in $sm $sw $dm $dw $dmc $dwc; do c0[$p]=$(cpu_ticks "$p"); done
	sleep "$IDLE_SECONDS" & # waited for, so a TERM stops the bench at once
	wait $!
	for p in $sm $sw $dm $dw $dmc $dwc; do c1[$p]=$(cpu_ticks "$p"); r1[$p]=$(rss "$p"); done
	cpu() { python3 -c "print('%.3f' % ((${c1[$1]} - ${c0[$1]}) * 100.0 / $hz / $IDLE_SECONDS))"; }
	{
		header "4. Idle cost, 3 managers + 2 workers, after ${IDLE_SECONDS} s idle (VmRSS; CPU = utime+stime as % of one core)
   reference: $([ $have_docker = 1 ] && echo "dockerd of an idle Docker Swarm of the same shape, same window" || echo "n/a ($docker_why)")"
		if [ $have_docker = 1 ]; then
			row "manager (leader) RSS vs dockerd" "${r1[$sm]}" "${r1[$dm]}" KiB
			row "manager (leader) RSS vs dockerd+containerd" "${r1[$sm]}" "$((r1[$dm] + ${r1[$dmc]:-0}))" KiB
			row "worker RSS vs dockerd" "${r1[$sw]}" "${r1[$dw]}" KiB
			row "worker RSS vs dockerd+containerd" "${r1[$sw]}" "$((r1[$dw] + ${r1[$dwc]:-0}))" KiB
			row "manager (leader) CPU vs dockerd" "$(cpu "$sm")" "$(cpu "$dm")" "%"
			row "worker CPU vs dockerd" "$(cpu "$sw")" "$(cpu "$dw")" "%"
			echo "(containerd, idle: manager $(cpu "$dmc") %, worker $(cpu "$dwc") % CPU; CPU ticks are 1/$hz s, so one tick is $(python3 -c "print('%.3f' % (100.0 / $hz / $IDLE_SECONDS))") %)"
		else
			row "manager (leader) RSS" "${r1[$sm]}" n/a KiB
			row "worker RSS" "${r1[$sw]}" n/a KiB
			row "manager (leader) CPU" "$(cpu "$sm")" n/a "%"
			row "worker CPU" "$(cpu "$sw")" n/a "%"
		fi
	} | emit 4
}

# ----------------------------------------------------------------- gossip ----
# All daemons of one size in test host $GH's namespace, on 127.0.1.i:4377
# (lo of that namespace; no traffic leaves it).
gname() { echo "g$1-$2"; } # N I
gaddr() { echo "127.0.1.$2"; }
gossip_start() { # N I
	local name
	name=$(gname "$1" "$2")
	mkdir -p "$T/$name"
	ip netns exec "${NET_NS[GH]}" "$SHOAL_BIN" daemon --state-dir "$T/$name/state" \
		-H "unix://$(sock "$name")" --log-level debug --listen-addr "$(gaddr "$1" "$2"):4377" \
		--advertise-addr "$(gaddr "$1" "$2")" --hostname "$tag-$name" >>"$(daemon_log "$name")" 2>&1 &
	echo $! >"$T/$name/pid"
	_daemons+=("$name")
}
gossip_ready() { # N: the manager's node ls shows N Ready
	local c
	c=$(sh_on "$(gname "$1" 1)" node ls --format json 2>/dev/null | grep -c '"Status":"Ready"')
	[ "$c" = "$1" ]
}
gossip_stop() { # N
	local i
	for ((i = 1; i <= $1; i++)); do daemon_kill9 "$(gname "$1" "$i")"; done
}
section_gossip() {
	local n i out tok k victim rows=() failed
	for n in $GOSSIP_SIZES; do
		local avail need
		avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
		need=$((n * 40 * 1024)) # 12 MB RSS each, margin for page cache and tmp state
		if [ "$avail" -lt "$need" ]; then
			echo "# gossip N=$n skipped: MemAvailable ${avail} KiB < ${need} KiB"
			rows+=("$n - - - - - skipped(memory)")
			continue
		fi
		log "gossip N=$n: starting $n daemons in one namespace (127.0.1.1-$n)"
		for ((i = 1; i <= n; i++)); do gossip_start "$n" "$i"; done
		failed=0
		for ((i = 1; i <= n; i++)); do
			wait_for 60 sh_on "$(gname "$n" "$i")" version ||
				{ echo "# daemon $(gname "$n" "$i") did not start"; tail -n 5 "$(daemon_log "$(gname "$n" "$i")")" | sed 's/^/#   /'; failed=1; }
		done
		out=$(sh_on "$(gname "$n" 1)" swarm init --advertise-addr "$(gaddr "$n" 1)" 2>&1) ||
			{ echo "# gossip N=$n: swarm init failed: $out"; failed=1; }
		tok=$(sh_on "$(gname "$n" 1)" swarm join-token -q worker)
		local jt0=$SECONDS
		local jp
		for ((i = 2; i <= n; i += 10)); do
			jp=()
			for ((k = i; k < i + 10 && k <= n; k++)); do
				(out=$(sh_on "$(gname "$n" "$k")" swarm join --token "$tok" "$(gaddr "$n" 1):4377" 2>&1) ||
					echo "# gossip N=$n: join of $(gname "$n" "$k") failed: $out") &
				jp+=($!)
			done
			wait "${jp[@]}"
		done
		if ! wait_for 120 gossip_ready "$n"; then
			echo "# gossip N=$n: node ls shows $(sh_on "$(gname "$n" 1)" node ls --format json 2>/dev/null | grep -c '"Status":"Ready"') Ready of $n"
			rows+=("$n - - - - - not-all-ready")
			gossip_stop "$n"
			continue
		fi
		log "gossip N=$n: $n Ready in $((SECONDS - jt0)) s; settling 3 s"
		sleep 3
		local kill_rows=() kk
		for ((kk = 0; kk < GOSSIP_KILLS; kk++)); do
		victim=$((n - kk))
		local vaddr
		vaddr="$(gaddr "$n" "$victim"):4377"
		local mark=$T/gossip-$n.t0
		now >"$mark"
		kill -9 "$(daemon_pid "$(gname "$n" "$victim")")"
		# wait until every survivor logged the death (60 s at most)
		learned() {
			local c=0 j
			for ((j = 1; j < victim; j++)); do grep -q " at $vaddr is dead" "$(daemon_log "$(gname "$n" "$j")")" && c=$((c + 1)); done
			[ "$c" = $((victim - 1)) ]
		}
		wait_for 60 learned || echo "# gossip N=$n: not every daemon learned of the death of $vaddr within 60 s"
		sleep 1
		local logs=()
		for ((j = 1; j < victim; j++)); do logs+=("$(daemon_log "$(gname "$n" "$j")")"); done
		kill_rows+=("$(python3 - "$n" "$(cat "$mark")" "$vaddr" "${logs[@]}" <<-'EOF'
			import datetime, statistics, sys
			n, t0, addr, logs = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
			def ts(s):
			    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
			        tzinfo=datetime.timezone.utc).timestamp()
			out = {}
			for state in ("dead", "suspect"):
			    v = []
			    for p in logs:
			        for line in open(p, errors="replace"):
			            if (" at %s is %s" % (addr, state)) in line and " gossip " in line:
			                t = ts(line.split()[0])
			                if t >= t0 - 0.001:
			                    v.append((t - t0) * 1000); break
			    out[state] = v
			d, s = out["dead"], out["suspect"]
			f = lambda v, g: "%.0f" % g(v) if v else "-"
			print(n, f(d, statistics.median), f(d, max), f(s, statistics.median), f(s, max),
			      "%d/%d" % (len(d), len(logs)), "%d/%d" % (len(s), len(logs)))
		EOF
		)")
		log "gossip N=$n, kill $((kk + 1)) ($vaddr): ${kill_rows[-1]} (N dead-median dead-last suspect-median suspect-last logged-dead logged-suspect, ms)"
		sleep 2
		done
		# the median over the kills of each column; counts summed
		rows+=("$(python3 - "${kill_rows[@]}" <<-'EOF'
			import statistics, sys
			rows = [r.split() for r in sys.argv[1:]]
			out = [rows[0][0]]
			for c in range(1, 5):
			    v = [float(r[c]) for r in rows if r[c] != "-"]
			    out.append("%.0f" % statistics.median(v) if v else "-")
			for c in (5, 6):
			    a = sum(int(r[c].split("/")[0]) for r in rows); b = sum(int(r[c].split("/")[1]) for r in rows)
			    out.append("%d/%d" % (a, b))
			out.append(",".join("%s/%s" % (r[1], r[2]) for r in rows))
			print(" ".join(out))
		EOF
		)")
		gossip_stop "$n"
	done
	{
		header "3. Gossip convergence of one death: 1 manager + N-1 workers in one namespace, kill -9 of a worker at t0;
   per surviving daemon, the time of its first log line saying the member is dead (suspect); last daemon = convergence.
   $GOSSIP_KILLS kills per N (different workers, one after the other): figures are medians over the kills. No Docker reference"
		local r
		for r in "${rows[@]}"; do
			read -r n dmed dmax smed smax dn sn per <<<"$r"
			row "N=$n dead: median over daemons" "$dmed" n/a ms
			row "N=$n dead: last daemon (convergence)" "$dmax" n/a ms
			row "N=$n suspect: median over daemons" "$smed" n/a ms
			row "N=$n suspect: last daemon" "$smax" n/a ms
			echo "N=$n: survivor logs with a dead line $dn, with a suspect line $sn (summed over the kills)${per:+; per kill (dead median/last ms): $per}"
		done
	} | emit 3
}

# ------------------------------------------------------------------- main ----
echo "# shoal cluster benchmark: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), shoal release build $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
echo "# NOTE: timings are noisy: 2 cores, shared with other work (tests run concurrently); compare ratios, not absolutes"
want idle && section_idle
want down && section_down
want failover && section_failover
if want gossip; then
	[ -d "$DW" ] && { log "stopping the Docker cluster before the gossip section"; docker_stop_all; docker_restore_root; }
	# stop the 5-host shoal cluster too: leave the cores to the gossip daemons
	if [ "$shoal_up" = 1 ]; then for i in 1 2 3 4 5; do daemon_kill9 "$(sname "$i")"; done; shoal_up=0; fi
	section_gossip
fi
printf '\nshoal cluster benchmark (%s cores; noisy: shared machine, other tests running; total %d s)\n' "$(nproc)" "$((SECONDS - bench_t0))"
cat "$T"/table.* 2>/dev/null
exec 2>/dev/null # the shell's "Killed" notices while cleanup kills the daemons
