#!/usr/bin/env bash
# The chaos suite (docs/CHAOS.md): faults under load on a 3-manager +
# 3-worker cluster, then checks that nothing acknowledged was lost.
#
# Usage: tests/chaos/run.sh [--seed N] [--rounds N] [--short]
#   --short     a CI run of 3-4 minutes: seed 1 unless given, 5 rounds of 35 s
#   --rounds N  rounds of faults under load (default 5 rounds of 60 s)
#   --seed N    the nemesis' schedule and the workload's choices (default: random)
# Needs root, runc, busybox, nft, python3, and SHOAL_BIN (default build-ci/shoal)
# with the demo image next to it. Output is TAP; SHOAL_KEEP_TMP=1 keeps the test
# dir. On failure the history and the daemons' logs are kept in
# /tmp/shoal-chaos.seedN.PID/.
#
# Seven test hosts on network namespaces (tests/integration/netns.sh):
# h1-h3 run the managers d1-d3, h4-h6 the workers d4-d6 (runc containers of
# the demo image), h7 is the client host, from which partitions are checked.
# tests/chaos/chaos.py then runs the workload and the nemesis for each
# round, heals, checks, removes everything and checks for leftovers.
set -u
here=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
seed='' rounds='' short=0
while [ $# -gt 0 ]; do
	case $1 in
	--seed | --rounds)
		[[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "run.sh: $1 needs a number" >&2; exit 2; }
		[ "$1" = --seed ] && seed=$2 || rounds=$2
		shift 2
		;;
	--short) short=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
if [ "$short" = 1 ]; then
	seed=${seed:-1} rounds=${rounds:-5} round_secs=35 faults=(3 3) max_live=2
else
	seed=${seed:-$(((RANDOM << 15) | RANDOM))} rounds=${rounds:-5} round_secs=60 faults=(4 7) max_live=3
fi
[ "$rounds" -ge 1 ] || { echo "run.sh: --rounds must be at least 1" >&2; exit 2; }
echo "# seed $seed (replay: tests/chaos/run.sh --seed $seed --rounds $rounds$([ "$short" = 1 ] && echo " --short"))"

. "$here/../integration/lib.sh"
. "$here/../integration/netns.sh"

for cmd in runc busybox nft python3 nsenter curl; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed (scripts/deps.sh test)"; exit 1; }
done
[ -x "$SHOAL_BIN" ] || { fail "the shoal binary exists: $SHOAL_BIN"; exit 1; }
[ -f "$DEMO_IMAGE" ] || { fail "the demo image exists: $DEMO_IMAGE (make demo-image)"; exit 1; }

# Runs last, after the namespaces are gone: a container a killed daemon's
# `runc create` finished after ctr_cleanup looked (its `runc init` waits in
# a namespace of its own) is found by its state dir under $T, killed, and
# its cgroups removed.
chaos_sweep() {
	local f p id c
	for f in $(grep -lzs "^_LIBCONTAINER_STATEDIR=$T/" /proc/[0-9]*/environ); do
		p=${f%/environ}
		id=$(tr '\0' '\n' <"$f" 2>/dev/null | sed -n 's|^_LIBCONTAINER_STATEDIR=.*/\([0-9a-f]\{64\}\)$|\1|p')
		kill -9 "${p#/proc/}" 2>/dev/null
		[ -n "$id" ] || continue
		for _ in $(seq 1 100); do [ -e "$p" ] || break; sleep 0.02; done
		for c in /sys/fs/cgroup/*/shoal/"$id" /sys/fs/cgroup/shoal/"$id"; do
			[ -d "$c" ] && rmdir "$c" 2>/dev/null
		done
	done
	return 0
}
_cleanup_hooks+=(chaos_sweep)
net_setup 7 || { fail "net_setup 7"; exit 1; }
# Runs first (hooks run last registered first): kills the daemons, removes
# the containers, mounts and cgroups they left, then netns.sh's teardown.
_cleanup_hooks+=(ctr_cleanup)
_daemons+=(d1 d2 d3 d4 d5 d6)

cfg=$T/chaos.json
python3 - "$cfg" "$T" "$SHOAL_BIN" "$NET_SW" "$NET_PORT" "${NET_NS[@]}" -- "${NET_IP[@]}" <<'EOF' ||
import json, sys
out, t, binary, sw, port = sys.argv[1:6]
rest = sys.argv[6:]
sep = rest.index("--")
ns, ips = rest[:sep], rest[sep + 1:]
roles = ["manager"] * 3 + ["worker"] * 3 + ["client"]
hosts = [{"i": i + 1, "ns": ns[i], "ip": ips[i], "role": roles[i]} for i in range(7)]
json.dump({"dir": t, "bin": binary, "sw": sw, "port": int(port), "hosts": hosts}, open(out, "w"))
EOF
	{ fail "write $cfg"; exit 1; }

out=$(python3 "$here/chaos.py" start --config "$cfg" d1 d2 d3 d4 d5 d6 2>&1) &&
	ok "6 daemons start on hosts 1-6" || { fail "the daemons start" "$out"; exit 1; }

out=$(sh_on d1 swarm init --advertise-addr "${NET_IP[1]}" 2>&1)
contains "$out" "Swarm initialized" || { fail "swarm init" "$out"; exit 1; }
mtok=$(sh_on d1 swarm join-token -q manager)
wtok=$(sh_on d1 swarm join-token -q worker)
for i in 2 3; do
	out=$(sh_on "d$i" swarm join --token "$mtok" "${NET_IP[1]}:$NET_PORT" 2>&1) || fail "d$i joins as a manager" "$out"
done
for i in 4 5 6; do
	out=$(sh_on "d$i" swarm join --token "$wtok" "${NET_IP[1]}:$NET_PORT" 2>&1) || fail "d$i joins as a worker" "$out"
done
ready6() { [ "$(sh_on d1 node ls --format json | grep -c '"Status":"Ready"')" = 6 ]; }
wait_for 60 ready6 && ok "a cluster of 3 managers and 3 workers" || { fail "cluster" "$(sh_on d1 node ls 2>&1)"; exit 1; }

loaded=0
for i in 1 2 3 4 5 6; do
	out=$(sh_on "d$i" image load -i "$DEMO_IMAGE" 2>&1) && loaded=$((loaded + 1)) || fail "d$i loads the demo image" "$out"
done
[ "$loaded" = 6 ] && ok "the demo image is loaded on the 6 nodes" || exit 1

# A few services to start with (ops 1..3 of the history: chaos.py adopts them).
created=0
for s in 1 2 3; do
	call "d$s" POST /services/create -H 'Content-Type: application/json' \
		-d "$(python3 "$here/chaos.py" spec "base$s" "$s" "$s")"
	[ "$CODE" = 201 ] && created=$((created + 1)) || fail "service base$s is created" "$CODE $BODY"
done
[ "$created" = 3 ] && ok "3 services created (1, 2 and 3 replicas)" || exit 1

python3 "$here/chaos.py" run --config "$cfg" --seed "$seed" --rounds "$rounds" --round-secs "$round_secs" \
	--faults-min "${faults[0]}" --faults-max "${faults[1]}" --max-live "$max_live" --tap-start "$_n"
rc=$?
if read -r n f <"$T/tap-count" 2>/dev/null; then
	_n=$n _failed=$((_failed + f))
else
	fail "chaos.py reported its results" "exit status $rc"
fi
[ "$rc" = 0 ] || [ "$_failed" -gt 0 ] || fail "chaos.py exits 0" "exit status $rc"
done_testing
