#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root), builds shoal and runs
# the demo: a node started, a swarm initialised, its nodes listed, then torn
# down. Everything lives in a temporary directory and on 127.0.0.1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh run
scripts/build.sh release
shoal="$top/build/shoal"

demo=$(mktemp -d /tmp/shoal-demo.XXXXXX)
daemon_pid=
cleanup() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid"
		wait "$daemon_pid" || true
	fi
	rm -rf "$demo"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() {
	say "$*"
	"$@"
}
export SHOAL_HOST="unix://$demo/shoal.sock"

say "shoal daemon --state-dir $demo/state -H $SHOAL_HOST &"
"$shoal" daemon --state-dir "$demo/state" -H "$SHOAL_HOST" --hostname demo-1 \
	2>"$demo/daemon.log" &
daemon_pid=$!
for _ in $(seq 1 200); do
	"$shoal" version >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || { cat "$demo/daemon.log"; exit 1; }
	sleep 0.05
done

run "$shoal" version
run "$shoal" swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:4377
run "$shoal" node ls
run "$shoal" node update --label-add demo=yes self
run "$shoal" node inspect self
say "$shoal info | sed -n '/Swarm:/,/Manager Addresses/p'"
"$shoal" info | sed -n '/Swarm:/,/Manager Addresses/p'
run "$shoal" swarm leave --force

say "kill -TERM <daemon>"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
echo "daemon stopped cleanly; the demo is over."
