#!/usr/bin/env bash
# Container benchmark: start latency of 1, 10 and 50 containers through shoal,
# and the daemon's memory per running container.
#
# References measured in the same run:
#   - N sequential `runc run -d` of the same busybox process (the floor);
#   - Docker Engine (dockerd + containerd + one containerd-shim per container,
#     Debian's docker.io) through the same API client, when it can be installed.
# Every daemon runs in a private network namespace the script makes (so
# shoal's bridge and Docker's changes stay there) and is stopped at exit.
# Usage: bench/containers.sh   (ROUNDS=3: the median of that many rounds;
# SHOAL_BUILD=DIR: the release build's directory, default build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. "$top/bench/lib.sh"
bench_build
shoal=$SHOAL_BIN
client=$top/bench/ctr_client.py
rounds=${ROUNDS:-3}
sizes=(1 10 50)

work=$(mktemp -d /tmp/shoal-bench-ctr.XXXXXX)
ns="shlbc$$"
shoal_pid=
cleanup() {
	set +e
	[ -n "$shoal_pid" ] && kill -TERM "$shoal_pid" 2>/dev/null && wait "$shoal_pid" 2>/dev/null
	# shoal leaves containers running across restarts: remove them by runc.
	for id in $(runc --root "$work/shoal/containers/.runc" list -q 2>/dev/null); do
		runc --root "$work/shoal/containers/.runc" delete -f "$id" >/dev/null 2>&1
	done
	floor_rm
	if [ -f "$work/docker.pid" ]; then
		local dpid
		dpid=$(cat "$work/docker.pid")
		DOCKER_HOST="unix://$work/docker.sock" docker rm -f $(DOCKER_HOST="unix://$work/docker.sock" docker ps -aq) >/dev/null 2>&1
		kill -TERM "$dpid" 2>/dev/null
		for _ in $(seq 1 400); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.05; done
	fi
	grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { nsenter --net="/var/run/netns/$ns" "$@"; }

mem_kib() { # "RSS PSS" summed over the given pids
	local rss=0 pss=0 p r s
	for p in "$@"; do
		r=$(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		s=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		rss=$((rss + ${r:-0}))
		pss=$((pss + ${s:-0}))
	done
	echo "$rss $pss"
}

cp "$BENCH_DEMO" "$work/demo.tar"

# --- the floor: runc run -d (bench/lib.sh) ------------------------------------
floor_setup "$work/floor"

# --- shoal ---------------------------------------------------------------------
sock=$work/shoal.sock
nsenter --net="/var/run/netns/$ns" "$shoal" daemon --state-dir "$work/shoal" -H "unix://$sock" --log-level warn \
	--listen-addr 127.0.0.1:4377 2>"$work/shoal.log" &
shoal_pid=$!
for _ in $(seq 1 200); do "$shoal" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
"$shoal" -H "unix://$sock" image load -i "$work/demo.tar" >/dev/null

# --- Docker (optional) ---------------------------------------------------------
dsock=$work/docker.sock
have_docker=
if command -v dockerd >/dev/null; then
	in_ns dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
		-H "unix://$dsock" --pidfile "$work/docker.pid" --iptables=false --bridge=none \
		>"$work/docker.log" 2>&1 &
	for _ in $(seq 1 400); do DOCKER_HOST="unix://$dsock" docker version >/dev/null 2>&1 && break; sleep 0.05; done
	if DOCKER_HOST="unix://$dsock" docker load -i "$work/demo.tar" >/dev/null 2>&1; then
		have_docker=1
	fi
fi
docker_pids() {
	local dpid
	dpid=$(cat "$work/docker.pid")
	echo "$dpid" $(pgrep -P "$dpid" containerd || true) $(pgrep -f "containerd-shim.*$work" || true)
}

declare -A t_runc t_shoal t_shoal_net t_docker
for n in "${sizes[@]}"; do
	a=() b=() c=() d=()
	for r in $(seq 1 "$rounds"); do
		a+=("$(floor_start "$n" "f$r-")")
		floor_rm
		b+=("$(python3 "$client" "$sock" start shoal-demo "$n" "s$r-" none)")
		python3 "$client" "$sock" rm "$n" "s$r-"
		c+=("$(python3 "$client" "$sock" start shoal-demo "$n" "b$r-" bridge)")
		python3 "$client" "$sock" rm "$n" "b$r-"
		if [ -n "$have_docker" ]; then
			d+=("$(python3 "$client" "$dsock" start shoal-demo:latest "$n" "d$r-" none)")
			python3 "$client" "$dsock" rm "$n" "d$r-"
		fi
	done
	t_runc[$n]=$(printf '%s\n' "${a[@]}" | median)
	t_shoal[$n]=$(printf '%s\n' "${b[@]}" | median)
	t_shoal_net[$n]=$(printf '%s\n' "${c[@]}" | median)
	[ -n "$have_docker" ] && t_docker[$n]=$(printf '%s\n' "${d[@]}" | median)
done

# Memory per running container: 50 containers, the daemons' growth / 50,
# on a freshly started shoal daemon (so no freed memory of the rounds above
# is reused).
m=50
kill -TERM "$shoal_pid" && wait "$shoal_pid" || true
nsenter --net="/var/run/netns/$ns" "$shoal" daemon --state-dir "$work/shoal" -H "unix://$sock" --log-level warn \
	--listen-addr 127.0.0.1:4377 2>>"$work/shoal.log" &
shoal_pid=$!
for _ in $(seq 1 200); do "$shoal" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
sleep 1
read -r s_rss0 s_pss0 < <(mem_kib "$shoal_pid")
python3 "$client" "$sock" start shoal-demo "$m" "m-" none >/dev/null
sleep 1
read -r s_rss1 s_pss1 < <(mem_kib "$shoal_pid")
python3 "$client" "$sock" rm "$m" "m-"
if [ -n "$have_docker" ]; then
	read -r d_rss0 d_pss0 < <(mem_kib $(docker_pids))
	python3 "$client" "$dsock" start shoal-demo:latest "$m" "m-" none >/dev/null
	sleep 1
	read -r d_rss1 d_pss1 < <(mem_kib $(docker_pids))
	python3 "$client" "$dsock" rm "$m" "m-"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
per() { awk -v a="$1" -v b="$2" -v n="$m" 'BEGIN { printf "%.1f", (b - a) / n }'; }
printf '\nshoal container benchmark (sequential create+start through the API, median of %s rounds)\n\n' "$rounds"
printf '%-26s %10s %10s %10s %10s %12s %12s\n' "containers" "runc run" "shoal" "shoal+net" "docker" "shoal/runc" "shoal/docker"
for n in "${sizes[@]}"; do
	printf '%-26s %9ss %9ss %9ss %9ss %12s %12s\n' "$n" "${t_runc[$n]}" "${t_shoal[$n]}" \
		"${t_shoal_net[$n]}" "${t_docker[$n]:--}" "$(ratio "${t_shoal[$n]}" "${t_runc[$n]}")" \
		"$(ratio "${t_shoal[$n]}" "${t_docker[$n]:-}")"
done
printf '\nmemory per running container (growth with %s containers / %s)\n\n' "$m" "$m"
printf '%-26s %12s %12s\n' "daemon" "RSS KiB" "PSS KiB"
printf '%-26s %12s %12s\n' "shoal" "$(per "$s_rss0" "$s_rss1")" "$(per "$s_pss0" "$s_pss1")"
if [ -n "$have_docker" ]; then
	printf '%-26s %12s %12s\n' "dockerd+containerd+shims" "$(per "$d_rss0" "$d_rss1")" "$(per "$d_pss0" "$d_pss1")"
else
	echo "(docker.io not available: the issue's figure for Docker is 2.5 MB PSS, 12.9 MB RSS per container)"
fi
