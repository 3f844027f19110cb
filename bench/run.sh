#!/usr/bin/env bash
# Foundation benchmark: idle memory of a single-node manager after init, and
# GET /nodes latency over 1,000 requests through the API socket.
#
# References measured in the same run:
#   - GET /_ping on the same socket: the floor of shoal's HTTP path;
#   - Docker Engine (dockerd + containerd, Debian's docker.io, installed by
#     scripts/deps.sh bench) in Swarm mode: its idle RSS and GET /nodes latency,
#     measured with the same client. Started in a private network namespace
#     with its own data and exec roots, and stopped by its pid file.
# Usage: bench/run.sh [REQUESTS]   (default 1000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
cd "$top"
scripts/deps.sh bench >/dev/null
scripts/build.sh release >/dev/null
make -s -C build bench/api_latency
shoal=build/shoal
lat=build/bench/api_latency

work=$(mktemp -d /tmp/shoal-bench.XXXXXX)
shoal_pid=
docker_ns=
cleanup() {
	[ -n "$shoal_pid" ] && kill -TERM "$shoal_pid" 2>/dev/null && wait "$shoal_pid" 2>/dev/null
	if [ -f "$work/docker.pid" ]; then
		local dpid
		dpid=$(cat "$work/docker.pid")
		kill -TERM "$dpid" 2>/dev/null
		for _ in $(seq 1 400); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.05; done
	fi
	[ -n "$docker_ns" ] && ip netns del "$docker_ns" 2>/dev/null
	rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

rss_kib() { # sum of VmRSS of the given pids
	local total=0 p v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# --- shoal --------------------------------------------------------------------
sock="$work/shoal.sock"
"$shoal" daemon --state-dir "$work/state" -H "unix://$sock" --log-level warn 2>"$work/shoal.log" &
shoal_pid=$!
for _ in $(seq 1 200); do "$shoal" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
port=$((20000 + RANDOM % 20000))
"$shoal" -H "unix://$sock" swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" >/dev/null
sleep 2 # let the manager go idle before reading its memory
shoal_rss=$(rss_kib "$shoal_pid")
# Latency on two cores is noisy (scheduler wake-ups): take the median of
# ROUNDS interleaved rounds of each measure.
rounds=${ROUNDS:-5}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# measure SOCKET PATH -> "p50 p99" (medians over the rounds)
measure() {
	local out
	out=$(for _ in $(seq 1 "$rounds"); do "$lat" "$1" "$2" "$n"; done)
	echo "$(cut -d' ' -f1 <<<"$out" | median) $(cut -d' ' -f2 <<<"$out" | median)"
}
read -r s_ping_p50 s_ping_p99 < <(measure "$sock" /_ping)
read -r s_nodes_p50 s_nodes_p99 < <(measure "$sock" /v1.41/nodes)

# --- Docker Engine in Swarm mode (optional reference) --------------------------
d_rss="" d_p50="" d_p99=""
if command -v dockerd >/dev/null; then
	docker_ns="shoalbench$$"
	ip netns add "$docker_ns"
	ip -n "$docker_ns" link set lo up
	dsock="$work/docker.sock"
	nsenter --net="/var/run/netns/$docker_ns" dockerd --data-root "$work/docker-data" \
		--exec-root "$work/docker-exec" -H "unix://$dsock" --pidfile "$work/docker.pid" \
		--iptables=false --bridge=none >"$work/docker.log" 2>&1 &
	for _ in $(seq 1 400); do DOCKER_HOST="unix://$dsock" docker version >/dev/null 2>&1 && break; sleep 0.05; done
	if DOCKER_HOST="unix://$dsock" docker swarm init --advertise-addr 127.0.0.1 >/dev/null 2>&1; then
		sleep 2
		dpid=$(cat "$work/docker.pid")
		cpid=$(pgrep -P "$dpid" containerd || true)
		d_rss=$(rss_kib "$dpid" $cpid)
		read -r d_p50 d_p99 < <(measure "$dsock" /v1.41/nodes)
	fi
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
printf '\nshoal foundation benchmark (%s requests per round, one keep-alive connection, median of %s rounds)\n\n' "$n" "$rounds"
printf '%-34s %12s %12s %14s\n' "measure" "shoal" "reference" "shoal/ref"
printf '%-34s %12s %12s %14s\n' "----------------------------------" "------------" "------------" "--------------"
printf '%-34s %10s us %10s us %14s\n' "GET /nodes p50 vs GET /_ping p50" "$s_nodes_p50" "$s_ping_p50" "$(ratio "$s_nodes_p50" "$s_ping_p50")"
printf '%-34s %10s us %10s us %14s\n' "GET /nodes p99 vs GET /_ping p99" "$s_nodes_p99" "$s_ping_p99" "$(ratio "$s_nodes_p99" "$s_ping_p99")"
if [ -n "$d_rss" ]; then
	printf '%-34s %9s KiB %9s KiB %14s\n' "idle RSS vs dockerd+containerd" "$shoal_rss" "$d_rss" "$(ratio "$shoal_rss" "$d_rss")"
	printf '%-34s %10s us %10s us %14s\n' "GET /nodes p50 vs dockerd" "$s_nodes_p50" "$d_p50" "$(ratio "$s_nodes_p50" "$d_p50")"
	printf '%-34s %10s us %10s us %14s\n' "GET /nodes p99 vs dockerd" "$s_nodes_p99" "$d_p99" "$(ratio "$s_nodes_p99" "$d_p99")"
else
	printf '%-34s %9s KiB %12s %14s\n' "idle RSS (no dockerd to compare)" "$shoal_rss" "-" "-"
	echo "(install docker.io to measure Docker Engine in Swarm mode as the reference)"
fi
