#!/usr/bin/env bash
# Services benchmark on one node: from `service create --replicas N` to all N
# running (N = 10, 50, 100), scale 50 -> 100, and 10 of 50 containers killed
# until 50 run again.
#
# References measured in the same run:
#   - N sequential `runc run -d` of the same process (the floor);
#   - Docker Swarm mode (Debian's docker.io), single node, the same service
#     through its API, when it can be installed.
# Both daemons run in private network namespaces the script makes and are
# stopped at exit; their containers are removed.
# Usage: bench/services.sh   (ROUNDS=1: the median of that many rounds)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh bench >/dev/null
scripts/build.sh release >/dev/null
shoal=$top/build/shoal
rounds=${ROUNDS:-1}
sizes=(10 50 100)

work=$(mktemp -d /tmp/shoal-bench-svc.XXXXXX)
ns="shlbs$$"
shoal_pid=
cleanup() {
	set +e
	[ -n "$shoal_pid" ] && kill -TERM "$shoal_pid" 2>/dev/null && wait "$shoal_pid" 2>/dev/null
	for r in "$work/shoal/containers/.runc" "$work/runc"; do
		for id in $(runc --root "$r" list -q 2>/dev/null); do runc --root "$r" delete -f "$id" >/dev/null 2>&1; done
	done
	if [ -f "$work/docker.pid" ]; then
		local dpid
		dpid=$(cat "$work/docker.pid")
		DOCKER_HOST="unix://$work/docker.sock" docker service rm $(DOCKER_HOST="unix://$work/docker.sock" docker service ls -q 2>/dev/null) >/dev/null 2>&1
		DOCKER_HOST="unix://$work/docker.sock" docker rm -f $(DOCKER_HOST="unix://$work/docker.sock" docker ps -aq 2>/dev/null) >/dev/null 2>&1
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
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
"$top/scripts/demo-image.sh" "$work/demo.tar" >/dev/null

# --- the floor ----------------------------------------------------------------
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/sleep"
(cd "$bundle" && runc spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "100000"]
c["root"]["readonly"] = False
json.dump(c, open(p, "w"))
PY
runc_n() {
	local t0 i
	t0=$(now)
	for i in $(seq 1 "$1"); do
		runc --root "$work/runc" run -d --bundle "$bundle" "f$i" </dev/null >/dev/null 2>&1
	done
	since "$t0"
	for i in $(runc --root "$work/runc" list -q); do runc --root "$work/runc" delete -f "$i"; done
}

# --- the daemons ----------------------------------------------------------------
sock=$work/shoal.sock
nsenter --net="/var/run/netns/$ns" "$shoal" daemon --state-dir "$work/shoal" -H "unix://$sock" \
	--log-level warn --bridge none --listen-addr 127.0.0.1:4377 2>"$work/shoal.log" &
shoal_pid=$!
for _ in $(seq 1 200); do "$shoal" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
"$shoal" -H "unix://$sock" swarm init --advertise-addr 127.0.0.1 >/dev/null
"$shoal" -H "unix://$sock" image load -i "$work/demo.tar" >/dev/null
dsock=$work/docker.sock
have_docker=
if command -v dockerd >/dev/null; then
	nsenter --net="/var/run/netns/$ns" dockerd --data-root "$work/docker-data" \
		--exec-root "$work/docker-exec" -H "unix://$dsock" --pidfile "$work/docker.pid" \
		--iptables=false --bridge=none >"$work/docker.log" 2>&1 &
	for _ in $(seq 1 400); do DOCKER_HOST="unix://$dsock" docker version >/dev/null 2>&1 && break; sleep 0.05; done
	if DOCKER_HOST="unix://$dsock" docker load -i "$work/demo.tar" >/dev/null 2>&1 &&
		DOCKER_HOST="unix://$dsock" docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null 2>&1; then
		have_docker=1
		# The full id: a short one is taken for a name and pulled (PLATFORM.md).
		dimg=$(DOCKER_HOST="unix://$dsock" docker image inspect -f '{{.Id}}' shoal-demo:latest)
	fi
fi

# running SOCK SERVICE: tasks running (the same query for both daemons).
running() {
	curl -s --unix-socket "$1" "http://x/v1.41/tasks?filters=%7B%22service%22%3A%5B%22$2%22%5D%2C%22desired-state%22%3A%5B%22running%22%5D%7D" |
		python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["Status"]["State"] == "running"))'
}
wait_running() { # SOCK SERVICE N: poll every 50 ms, at most 300 s
	local i
	for i in $(seq 1 6000); do
		[ "$(running "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}
svc_rm() { # SOCK SERVICE: remove and wait until no container is left
	DOCKER_HOST="unix://$1" docker service rm "$2" >/dev/null
	for _ in $(seq 1 6000); do
		[ "$(DOCKER_HOST="unix://$1" docker ps -q --filter "label=com.docker.swarm.service.name=$2" | wc -l)" = 0 ] && return 0
		sleep 0.05
	done
}
create() { # SOCK IMAGE NAME N -> seconds until N run
	local t0
	t0=$(now)
	DOCKER_HOST="unix://$1" docker service create -d --no-resolve-image --name "$3" --replicas "$4" "$2" sleep 100000 >/dev/null
	wait_running "$1" "$3" "$4"
	since "$t0"
}

declare -A f s d
for n in "${sizes[@]}"; do
	a=() b=() c=()
	for r in $(seq 1 "$rounds"); do
		a+=("$(runc_n "$n")")
		b+=("$(create "$sock" shoal-demo:latest "s$n$r" "$n")")
		svc_rm "$sock" "s$n$r"
		if [ -n "$have_docker" ]; then
			c+=("$(create "$dsock" "$dimg" "d$n$r" "$n")")
			svc_rm "$dsock" "d$n$r"
		fi
	done
	f[$n]=$(printf '%s\n' "${a[@]}" | median)
	s[$n]=$(printf '%s\n' "${b[@]}" | median)
	[ -n "$have_docker" ] && d[$n]=$(printf '%s\n' "${c[@]}" | median)
done

# scale 50 -> 100; then kill 10 of 100's first 50... of a 50-replica service.
scale_and_heal() { # SOCK IMAGE NAME -> "scale_s heal_s"
	local t0 sc pids
	create "$1" "$2" "$3" 50 >/dev/null
	t0=$(now)
	DOCKER_HOST="unix://$1" docker service scale -d "$3=100" >/dev/null
	wait_running "$1" "$3" 100
	sc=$(since "$t0")
	DOCKER_HOST="unix://$1" docker service scale -d "$3=50" >/dev/null
	for _ in $(seq 1 6000); do [ "$(running "$1" "$3")" = 50 ] && break; sleep 0.05; done
	sleep 1
	pids=$(curl -s --unix-socket "$1" "http://x/v1.41/tasks?filters=%7B%22service%22%3A%5B%22$3%22%5D%2C%22desired-state%22%3A%5B%22running%22%5D%7D" |
		python3 -c 'import json,sys; print(" ".join([str(t["Status"]["ContainerStatus"]["PID"]) for t in json.load(sys.stdin) if t["Status"]["State"] == "running"][:10]))')
	t0=$(now)
	kill -9 $pids
	sleep 0.2
	for _ in $(seq 1 6000); do [ "$(running "$1" "$3")" -ge 50 ] && break; sleep 0.05; done
	echo "$sc $(since "$t0")"
	svc_rm "$1" "$3"
}
read -r s_scale s_heal < <(scale_and_heal "$sock" shoal-demo:latest sc)
d_scale="" d_heal=""
[ -n "$have_docker" ] && read -r d_scale d_heal < <(scale_and_heal "$dsock" "$dimg" dc)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
printf '\nshoal services benchmark, one node (runc, no network; median of %s round(s))\n\n' "$rounds"
printf '%-34s %10s %10s %10s %11s %12s\n' "measure" "runc run" "shoal" "docker" "shoal/runc" "shoal/docker"
for n in "${sizes[@]}"; do
	printf '%-34s %9ss %9ss %9ss %11s %12s\n' "create --replicas $n, all running" "${f[$n]}" "${s[$n]}" \
		"${d[$n]:--}" "$(ratio "${s[$n]}" "${f[$n]}")" "$(ratio "${s[$n]}" "${d[$n]:-}")"
done
printf '%-34s %10s %9ss %9ss %11s %12s\n' "scale 50 -> 100" "-" "$s_scale" "${d_scale:--}" "-" "$(ratio "$s_scale" "$d_scale")"
printf '%-34s %10s %9ss %9ss %11s %12s\n' "10 of 50 killed until 50 run" "-" "$s_heal" "${d_heal:--}" "-" "$(ratio "$s_heal" "$d_heal")"
[ -n "$have_docker" ] || echo "(docker.io not available: the issue's Docker figures are 1.8 s, 6.4 s, 13.0 s; scale 6.9 s; heal 7.1 s)"
