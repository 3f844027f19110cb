#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root), builds shoal and runs
# the demo: three nodes on this machine form a swarm (two managers, one
# worker) and load the demo image; a service "web" (busybox httpd) runs 3
# replicas, is scaled to 6 over the three nodes, answers HTTP and is removed;
# then the worker is promoted, the leader is killed and replaced, and
# everything is torn down.
#
# Each node runs in its own network namespace, as separate machines would: a
# private "switch" namespace holds a bridge, and every node's eth0 (a veth,
# 10.77.0.N/24) is plugged into it. Each daemon then has its own container
# bridge shoal0 (10.88.0.1/16), its own nftables table "ip shoal" and its own
# ip_forward, as on a real host; three daemons in one namespace would fight
# over those (the table's name is fixed). Nothing is created in the root
# namespace, so its firewall does not matter.
#
# Everything the demo creates is removed on every exit path (success,
# failure, ^C): daemons, containers (runc state, mounts, cgroups), the
# namespaces (with the bridges, veths and nft tables in them) and the
# temporary directory. SHOAL_DEMO_BUILD=DIR uses the shoal already built in
# DIR (with shoal-demo.tar) instead of building a release into build/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh run
if [ -n "${SHOAL_DEMO_BUILD:-}" ]; then
	build=$(cd "$SHOAL_DEMO_BUILD" && pwd)
else
	scripts/build.sh release
	build=$top/build
fi
shoal="$build/shoal"
image="$build/shoal-demo.tar"
for cmd in ip nsenter runc busybox; do
	command -v "$cmd" >/dev/null || { echo "demo: $cmd is missing" >&2; exit 1; }
done

tag="shoaldemo$$"   # namespaces: $tag-sw (the switch), $tag-n1..3 (the nodes)
subnet=10.77.0
demo=$(mktemp -d /tmp/shoal-demo.XXXXXX)
pids=()
# cgroup parents "shoal" that exist already are not ours to remove.
cg_before=$(ls -d /sys/fs/cgroup/*/shoal /sys/fs/cgroup/shoal 2>/dev/null || true)

# Namespaces of an earlier demo that was SIGKILLed (its pid is gone).
reap_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^shoaldemo[0-9]+-'); do
		pid=${ns#shoaldemo}
		pid=${pid%%-*}
		kill -0 "$pid" 2>/dev/null && continue
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
}

cleanup() {
	local pid st r id m ns cg alive
	set +e
	trap '' INT TERM
	# The daemons first (containers outlive a daemon, by design) ...
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for _ in $(seq 1 100); do
		alive=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
	wait 2>/dev/null
	# ... then whatever containers they left: runc state and processes,
	# rootfs mounts, cgroups.
	for st in "$demo"/state*; do
		for r in "$st/containers/.runc" "$st/runc"; do
			[ -d "$r" ] || continue
			for id in $(runc --root "$r" list -q 2>/dev/null); do
				runc --root "$r" delete -f "$id" >/dev/null 2>&1
			done
		done
	done
	grep -F " $demo/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	for st in "$demo"/state*; do
		for id in "$st"/containers/*; do
			id=${id##*/}
			rmdir /sys/fs/cgroup/*/shoal/"$id" /sys/fs/cgroup/shoal/"$id" 2>/dev/null
		done
	done
	for cg in /sys/fs/cgroup/*/shoal /sys/fs/cgroup/shoal; do
		[ -d "$cg" ] || continue
		grep -qxF "$cg" <<<"$cg_before" || rmdir "$cg" 2>/dev/null
	done
	# The namespaces take the bridges, veths and nft tables with them.
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$tag-"); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$demo"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# on N CMD...: run the CLI against node N, showing the command.
on() {
	local n=$1
	shift
	local a shown=
	for a in "$@"; do
		[[ "$a" == *[[:space:]\"\$\<\>\&]* ]] && a="'$a'"
		shown+=" $a"
	done
	printf '\n\033[1mnode%s$ shoal%s\033[0m\n' "$n" "$shown"
	"$shoal" -H "unix://$demo/n$n.sock" "$@"
}
q() {
	local n=$1
	shift
	"$shoal" -H "unix://$demo/n$n.sock" "$@"
}
# in_node N CMD...: run CMD in node N's network namespace.
in_node() {
	local n=$1
	shift
	nsenter --net="/var/run/netns/$tag-n$n" "$@"
}
network() {
	local n ns
	reap_stale
	ip netns add "$tag-sw"
	ip -n "$tag-sw" link set lo up
	ip -n "$tag-sw" link add br0 type bridge forward_delay 0 stp_state 0
	ip -n "$tag-sw" link set br0 up
	for n in 1 2 3; do
		ns="$tag-n$n"
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip -n "$ns" link add eth0 type veth peer name "port$n" netns "$tag-sw"
		ip -n "$ns" addr add "$subnet.$n/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$tag-sw" link set "port$n" master br0
		ip -n "$tag-sw" link set "port$n" up
	done
}
start() {
	local n=$1
	# nsenter, not `ip netns exec` (which remounts /sys: runc would find no
	# cgroups); it execs, so $! is the daemon (a function would be a subshell).
	nsenter --net="/var/run/netns/$tag-n$n" \
		"$shoal" daemon --state-dir "$demo/state$n" -H "unix://$demo/n$n.sock" \
		--hostname "demo-$n" --listen-addr "$subnet.$n:4377" --advertise-addr "$subnet.$n" \
		2>>"$demo/daemon$n.log" &
	pids[n]=$!
	for _ in $(seq 1 200); do
		q "$n" version >/dev/null 2>&1 && return 0
		kill -0 "${pids[$n]}" 2>/dev/null || { cat "$demo/daemon$n.log"; exit 1; }
		sleep 0.05
	done
	echo "node $n did not start" >&2
	exit 1
}
# until_ok SECONDS CMD...: retry a check quietly for a while.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
runc_root() { echo "$demo/state$1/containers/.runc"; }
# containers N: the ids of the containers running on node N (runc's view).
containers() {
	[ ! -d "$(runc_root "$1")" ] || runc --root "$(runc_root "$1")" list -q 2>/dev/null
}
# http N: from node N, fetch the page of one of the containers it runs.
http() {
	local n=$1 id pid ip
	id=$(containers "$n" | sed -n 1p)
	[ -n "$id" ] || { echo "no container on node $n"; return 1; }
	pid=$(runc --root "$(runc_root "$n")" state "$id" |
		sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
	ip=$(nsenter --net="/proc/$pid/ns/net" ip -4 -o addr show dev eth0 |
		awk '{print $4}' | cut -d/ -f1)
	printf '\n\033[1mnode%s: GET http://%s:8080/ (container %.12s)\033[0m\n' "$n" "$ip" "$id"
	# busybox-static's wget may crash: speak HTTP with nc.
	printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$ip" |
		in_node "$n" timeout 5 busybox nc "$ip" 8080 | sed '1,/^\r*$/d'
}

say "Three nodes, each in its own network namespace: 10.77.0.1-3 on a private switch"
network
for n in 1 2 3; do start "$n"; done

on 1 swarm init --advertise-addr "$subnet.1" --listen-addr "$subnet.1:4377"
manager_token=$(q 1 swarm join-token -q manager)
worker_token=$(q 1 swarm join-token -q worker)
on 2 swarm join --token "$manager_token" "$subnet.1:4377"
on 3 swarm join --token "$worker_token" "$subnet.1:4377"
ready() { [ "$(q "$1" node ls | grep -c Ready)" = 3 ]; }
until_ok 20 ready 1
on 1 node ls
say "every node loads the demo image, built with shoal from busybox-static"
for n in 1 2 3; do on "$n" image load -i "$image"; done
on 3 image ls
on 2 node update --label-add demo=yes demo-3
on 3 node ls || true

# mesh N: GET the published port 8000 of node N, from node 1.
mesh() {
	printf 'GET / HTTP/1.0\r\nHost: node%s\r\n\r\n' "$1" |
		in_node 1 timeout 5 busybox nc "$subnet.$1" 8000 | sed '1,/^\r*$/d'
}

say "a service: busybox httpd serving a page that names its container and version"
# shellcheck disable=SC2016 # expanded in the container
page='echo "<h1>hello from $(hostname), version $VERSION</h1>" >/www/index.html && trap "exit 0" TERM && { httpd -f -v -p 8080 -h /www & wait; }'
on 1 service create --name web --replicas 3 -p 8000:8080 -e VERSION=1 \
	--health-cmd "nc 127.0.0.1 8080 </dev/null" --health-interval 250ms \
	shoal-demo:latest sh -c "$page"
on 1 service ls
on 1 service ps web
on 2 service scale web=6
on 1 service ps web
for n in 1 2 3; do
	printf 'node%s runs %s containers (runc list)\n' "$n" "$(containers "$n" | wc -l)"
done
say "each node reaches the replicas it runs (on its container bridge)"
for n in 1 2 3; do http "$n"; done
say "the routing mesh: every node answers on the published port 8000, whoever runs the task"
for n in 1 2 3; do printf 'node%s:8000 -> ' "$n"; mesh "$n"; done
say "a blue/green update: a whole green set starts beside blue, traffic switches once it is healthy"
on 1 service update --env-add VERSION=2 --update-strategy blue-green --bluegreen-grace 1m web
on 1 service ps web
for n in 1 2 3; do printf 'node%s:8000 -> ' "$n"; mesh "$n"; done
say "changed our mind: rollback during the grace period switches back to blue at once"
on 1 service rollback web
for n in 1 2 3; do printf 'node%s:8000 -> ' "$n"; mesh "$n"; done
say "the service's logs, gathered from the three nodes (httpd -v logs each request)"
on 1 service logs --tail 2 web
on 1 service rm web
gone() { [ -z "$(containers 1)$(containers 2)$(containers 3)" ]; }
until_ok 30 gone
on 1 service ls
echo "containers left on the nodes: $( (containers 1; containers 2; containers 3) | wc -l)"

on 1 node promote demo-3
manager() { q 3 node ls; }
until_ok 20 manager
on 3 node ls

say "kill -9 the leader (node 1); the others elect a new one"
kill -9 "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
writable() { q 2 node update --label-add after=failover demo-2; }
start_s=$(date +%s%N)
until_ok 20 writable
echo "writable again after $((($(date +%s%N) - start_s) / 1000000)) ms"
on 2 node ls

say "bring node 1 back: it rejoins as a follower"
start 1
back() { q 2 node ls | grep demo-1 | grep Reachable >/dev/null && q 1 node ls; }
until_ok 20 back
on 1 node ls

for n in 3 2 1; do on "$n" swarm leave --force; done
say "stopping the daemons"
for n in 1 2 3; do
	kill -TERM "${pids[$n]}"
	wait "${pids[$n]}"
done
pids=()
echo "daemons stopped cleanly; the demo is over (the namespaces go with the cleanup)."
