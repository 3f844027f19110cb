#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root), builds shoal and runs
# the demo: three nodes on this machine form a swarm (two managers, one
# worker), list it, load the demo image on each, promote the worker, survive
# the loss of the leader, then tear down. Everything lives in a temporary directory; the nodes talk over
# 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all on the loopback interface).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh run
scripts/build.sh release
shoal="$top/build/shoal"

demo=$(mktemp -d /tmp/shoal-demo.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$demo"
}
trap cleanup EXIT

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# on N CMD...: run the CLI against node N, showing the command.
on() {
	local n=$1
	shift
	printf '\n\033[1mnode%s$ shoal %s\033[0m\n' "$n" "$*"
	"$shoal" -H "unix://$demo/n$n.sock" "$@"
}
start() {
	local n=$1
	"$shoal" daemon --state-dir "$demo/state$n" -H "unix://$demo/n$n.sock" \
		--hostname "demo-$n" --listen-addr "127.0.0.$n:4377" --advertise-addr "127.0.0.$n" \
		2>>"$demo/daemon$n.log" &
	pids[$n]=$!
	for _ in $(seq 1 200); do
		"$shoal" -H "unix://$demo/n$n.sock" version >/dev/null 2>&1 && return 0
		kill -0 "${pids[$n]}" 2>/dev/null || { cat "$demo/daemon$n.log"; exit 1; }
		sleep 0.05
	done
	echo "node $n did not start" >&2
	exit 1
}
# until N SECONDS CMD...: retry a check quietly for a while.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

say "Three daemons, one per loopback address"
for n in 1 2 3; do start "$n"; done

on 1 swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:4377
manager_token=$("$shoal" -H "unix://$demo/n1.sock" swarm join-token -q manager)
worker_token=$("$shoal" -H "unix://$demo/n1.sock" swarm join-token -q worker)
on 2 swarm join --token "$manager_token" 127.0.0.1:4377
on 3 swarm join --token "$worker_token" 127.0.0.1:4377
ready() { [ "$("$shoal" -H "unix://$demo/n$1.sock" node ls | grep -c Ready)" = 3 ]; }
until_ok 20 ready 1
on 1 node ls
say "every node loads the demo image, built with shoal from busybox-static"
for n in 1 2 3; do on "$n" image load -i "$top/build/shoal-demo.tar"; done
on 3 image ls
on 2 node update --label-add demo=yes demo-3
on 3 node ls || true

on 1 node promote demo-3
manager() { "$shoal" -H "unix://$demo/n3.sock" node ls; }
until_ok 20 manager
on 3 node ls

say "kill -9 the leader (node 1); the others elect a new one"
kill -9 "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
writable() { "$shoal" -H "unix://$demo/n2.sock" node update --label-add after=failover demo-2; }
start_s=$(date +%s%N)
until_ok 20 writable
echo "writable again after $((($(date +%s%N) - start_s) / 1000000)) ms"
on 2 node ls

say "bring node 1 back: it rejoins as a follower"
start 1
back() { "$shoal" -H "unix://$demo/n2.sock" node ls | grep demo-1 | grep -q Reachable; }
until_ok 20 back
on 1 node ls

for n in 3 2 1; do on "$n" swarm leave --force; done
say "stopping the daemons"
for n in 1 2 3; do
	kill -TERM "${pids[$n]}"
	wait "${pids[$n]}"
done
pids=()
echo "daemons stopped cleanly; the demo is over."
