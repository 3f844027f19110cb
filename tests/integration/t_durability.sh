#!/usr/bin/env bash
# kill -9 during a burst of acknowledged writes: after a restart every write the
# API acknowledged is there.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
# Snapshots every 64 entries, so the burst crosses several before the kill.
daemon_start d --raft-snapshot-interval 64 || { fail "daemon starts"; exit 1; }
check "swarm init" sh_ d swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port"

# Writers: each adds labels one by one and records those the API acknowledged.
writer() {
	local w=$1 i
	for i in $(seq 1 400); do
		if sh_ d node update --label-add "w$w-$i=v$i" self >/dev/null 2>&1; then
			echo "w$w-$i" >>"$T/acked.$w"
		fi
	done
}
: >"$T/acked.1"
: >"$T/acked.2"
writer 1 &
w1=$!
writer 2 &
w2=$!
# Kill once a good number of writes have been acknowledged, mid-burst.
wait_for 180 bash -c "[ \$(cat $T/acked.1 $T/acked.2 | wc -l) -ge 200 ]"
daemon_kill9 d
wait $w1 $w2
acked=$(cat "$T/acked.1" "$T/acked.2" | wc -l)
[ "$acked" -ge 200 ] && ok "a burst of $acked writes was acknowledged before kill -9" || fail "writes acknowledged before kill -9" "acked=$acked"
ls "$T/d/state/raft" | grep -q '^snapshot-' && ok "the burst crossed raft snapshots" ||
	fail "the burst crossed raft snapshots" "$(ls "$T/d/state/raft")"

daemon_start d || fail "the daemon restarts after kill -9"
wait_for 20 bash -c "curl -s --unix-socket $(sock d) http://localhost/info | grep -q '\"LocalNodeState\":\"active\"'"
labels=$(api d GET /nodes/self | head -n1 | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["Spec"]["Labels"]))')
missing=$(cat "$T/acked.1" "$T/acked.2" | sort | comm -23 - <(sort <<<"$labels"))
if [ -z "$missing" ]; then
	ok "every acknowledged write survived kill -9 ($acked writes)"
else
	fail "every acknowledged write survived kill -9" "missing: $(head -n 10 <<<"$missing")"
fi
check "the restarted node accepts writes" sh_ d node update --label-add after=restart self

daemon_stop d
rc=$?
[ $rc -eq 0 ] && ok "clean exit after recovery (no sanitizer report)" || fail "clean exit after recovery" "rc=$rc" "$(tail -n 40 "$(daemon_log d)")"
done_testing
