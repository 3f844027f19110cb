#!/usr/bin/env bash
# A hostile peer against a 3-manager cluster on network namespaces: a fourth
# test host (the attacker, tests/integration/hostile.py) opens hundreds of TCP
# connections to the cluster port that never shake hands, sends garbage,
# partial frames, frame headers announcing oversized lengths and a slow
# trickle; completes handshakes as a joiner (which needs no certificate) and
# then stays idle; floods the gossip port (the same port, UDP) with random
# and oversized datagrams; and replays a capture of the cluster's own traffic
# (UDP datagrams, from its own address and spoofed from the original sender,
# and each TCP connection's bytes on a new connection). Meanwhile and after,
# the cluster keeps working (node ls, writes, a service created and scaled,
# a leader killed fails over); every hostile connection is closed by the
# daemons, the idle ones after the handshake timeout, idle joiners after
# RPC_JOINER_IDLE_MS; the daemons' open files come back to where they were
# and their memory (RSS) stays bounded: a second attack ends below the
# first one's high-water mark; each refusal is logged with its reason; the
# daemons exit 0 (with LeakSanitizer on in sanitizer builds).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

HOSTILE=$(cd "$(dirname "$0")" && pwd)/hostile.py
IDLE_PER_NODE=${SHOAL_HOSTILE_IDLE:-200} # idle connections per daemon
HANDSHAKE_S=5                            # the daemon's handshake timeout (net/stream.c)
JOINER_IDLE_S=10                         # RPC_JOINER_IDLE_MS (net/rpc.h)
JOINERS_PER_NODE=30
SLACK_S=3                                # scheduling slack under the sanitizers
MAX_RSS_GROWTH_KB=$((20 * 1024)) # after the attack, over the daemon at rest
MAX_WAVE_GROWTH_KB=1024          # a second attack over the first one's high-water mark
MAX_FD_GROWTH=10

for cmd in runc busybox docker; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed (scripts/deps.sh test)"; exit 1; }
done
[ -f "$DEMO_IMAGE" ] || { fail "the demo image exists: $DEMO_IMAGE (make demo-image)"; exit 1; }

# Under ASan, freed memory waits in a quarantine (256 MiB by default) before
# it is reused, so RSS would measure the quarantine filling up rather than
# the daemon. A small one keeps use-after-free detection and makes RSS mean
# what the daemon holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
net_setup 4 || { fail "net_setup 4"; exit 1; }
_cleanup_hooks+=(ctr_cleanup) # runs before net_teardown: kills the daemons, removes containers
tag=hst$$
for i in 1 2 3; do
	host_daemon_start "d$i" "$i" --hostname "$tag-h$i" || { fail "daemon d$i starts"; exit 1; }
done
attacker=4
addr() { echo "${NET_IP[$1]}:$NET_PORT"; }
targets="$(addr 1),$(addr 2),$(addr 3)"
dk() {
	local d=$1
	shift
	DOCKER_HOST="unix://$(sock "$d")" timeout 60 docker "$@"
}
# hostile ARGS...: hostile.py on the attacker's host.
hostile() { on_host "$attacker" python3 "$HOSTILE" "$@"; }
# jget FILE EXPR: EXPR (Python, j = the JSON object in FILE).
jget() { jpy "$2" <"$1"; }

# Capture the cluster being formed: joins, RPC, Raft and gossip.
capture_start || { fail "capture_start"; exit 1; }
out=$(sh_on d1 swarm init --advertise-addr "${NET_IP[1]}" 2>&1)
contains "$out" "Swarm initialized" || { fail "swarm init" "$out"; exit 1; }
mtok=$(sh_on d1 swarm join-token -q manager)
for i in 2 3; do
	out=$(sh_on "d$i" swarm join --token "$mtok" "$(addr 1)" 2>&1)
	[ "$out" = "This node joined a swarm as a manager." ] || fail "d$i joins" "$out"
done
view() { sh_on "$1" node ls --format json | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(" ".join(sorted("%s/%s/%s" % (r["Hostname"], r["Status"], r["ManagerStatus"]) for r in rows)))'; }
# all_ready MANAGER: 3 ready nodes, a leader, 2 reachable, as MANAGER sees it.
all_ready() {
	local v
	v=$(view "$1") || return 1
	[ "$(grep -o "/Ready/" <<<"$v" | wc -l)" = 3 ] && [ "$(grep -o "/Leader" <<<"$v" | wc -l)" = 1 ] &&
		[ "$(grep -o "/Reachable" <<<"$v" | wc -l)" = 2 ]
}
wait_for 30 all_ready d1 && ok "a cluster of 3 managers" || { fail "cluster" "$(view d1)"; exit 1; }
for i in 1 2 3; do
	sh_on "d$i" image load -i "$DEMO_IMAGE" >/dev/null 2>&1 || fail "d$i loads the demo image"
done
img=shoal-demo:latest
# running SERVICE: how many of its tasks run (and should), as the API says.
running() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22$1%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
print(sum(1 for t in json.loads(body) if t["Status"]["State"] == "running" and t["DesiredState"] == "running"))'
}
has_running() { [ "$(running "$1")" = "$2" ]; }
out=$(dk d1 service create -d --no-resolve-image --name before --replicas 3 "$img" sleep 100000 2>&1)
wait_for 60 has_running before 3 && ok "a service runs 3 replicas (captured)" || fail "service before" "$out" "$(running before)"
for i in 1 2 3; do sh_on d2 node update --label-add "round=$i" "$tag-h3" >/dev/null || fail "node update $i"; done
sleep 2 # some gossip rounds in the capture
capture_stop "$T/capture.pcap" || fail "capture_stop"
frames=$(capture_count "$T/capture.pcap")
[ "${frames:-0}" -gt 100 ] && ok "captured $frames frames of cluster traffic" || fail "capture" "$frames"

# --- the daemons at rest -------------------------------------------------------
fds() { ls "/proc/$(daemon_pid "$1")/fd" | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$(daemon_pid "$1")/status"; }
declare -A fd0 rss0 fdpeak rsspeak
for i in 1 2 3; do
	fd0[$i]=$(fds "d$i")
	rss0[$i]=$(rss "d$i")
done
echo "# at rest: $(for i in 1 2 3; do printf 'd%s fds=%s rss=%sKiB  ' "$i" "${fd0[$i]}" "${rss0[$i]}"; done)"

# --- the attack ------------------------------------------------------------------
hold=$((HANDSHAKE_S + SLACK_S + 4))
jhold=$((JOINER_IDLE_S + SLACK_S + 4))
# attack W: start every attack of wave W from the attacker's host, in the
# background (jobs idle_job, join_job, bad_job, udp_job; results in
# $T/*.W.json); returns once the idle connections are open.
attack() {
	local w=$1
	rm -f "$T/idle.$w.ready"
	hostile tcp-idle "$targets" --count "$IDLE_PER_NODE" --hold "$hold" --ready "$T/idle.$w.ready" \
		>"$T/idle.$w.json" 2>"$T/idle.$w.err" &
	idle_job=$!
	wait_for 30 test -e "$T/idle.$w.ready" || fail "the idle connections are open" "$(cat "$T/idle.$w.err")"
	# Joiners: anyone can complete the handshake without a certificate.
	hostile join-idle "$targets" --count "$JOINERS_PER_NODE" --hold "$jhold" \
		>"$T/join.$w.json" 2>"$T/join.$w.err" &
	join_job=$!
	hostile tcp-bad "$targets" --rounds 10 --wait "$hold" >"$T/bad.$w.json" 2>"$T/bad.$w.err" &
	bad_job=$!
	hostile udp "$targets" --count 1000 >"$T/udp.$w.json" 2>"$T/udp.$w.err" &
	udp_job=$!
}
attack 1
# The daemons hold the idle connections: proof the attack reached them.
held() { [ "$(fds "d$1")" -ge $((fd0[$1] + IDLE_PER_NODE * 9 / 10)) ]; }
for i in 1 2 3; do
	if wait_for 3 held "$i"; then
		fdpeak[$i]=$(fds "d$i")
		ok "d$i accepted the idle connections: ${fd0[$i]} -> ${fdpeak[$i]} open files"
	else
		fail "d$i accepted the idle connections" "open files: ${fd0[$i]} -> $(fds "d$i")"
	fi
done

# The cluster works under attack.
for i in 1 2 3; do
	wait_for 10 all_ready "d$i" && ok "under attack, node ls on d$i: 3 ready, a leader" ||
		fail "under attack, node ls on d$i" "$(view "d$i")"
done
check "under attack, a write through a follower" sh_on d3 node update --label-add attacked=1 "$tag-h2"
for i in 1 2 3; do rsspeak[$i]=$(rss "d$i"); done

wait "$udp_job" && [ -s "$T/udp.1.json" ] && ok "udp flood: $(cat "$T/udp.1.json")" ||
	fail "hostile.py udp" "$(cat "$T/udp.1.err")"
wait "$idle_job"
if [ -s "$T/idle.1.json" ]; then
	echo "# idle: $(cat "$T/idle.1.json")"
	for i in 1 2 3; do
		k="j['idle']['idle $(addr "$i")']"
		r=$(jget "$T/idle.1.json" "[${k}['opened'], ${k}['closed_by_peer'], ${k}['still_open'], (${k}['close_after_s'] or {}).get('max')]")
		read -r opened closed still maxs < <(tr -d '[],' <<<"$r")
		if [ "$opened" = "$IDLE_PER_NODE" ] && [ "$closed" = "$opened" ] && [ "$still" = 0 ] &&
			python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= $HANDSHAKE_S + $SLACK_S else 1)" "$maxs"; then
			ok "d$i closed all $opened idle connections, the last after ${maxs}s (timeout ${HANDSHAKE_S}s)"
		else
			fail "d$i closes idle connections after the handshake timeout" "$r"
		fi
	done
else
	fail "hostile.py tcp-idle" "$(cat "$T/idle.1.err")"
fi
wait "$bad_job"
if [ -s "$T/bad.1.json" ]; then
	echo "# bad: $(cat "$T/bad.1.json")"
	# kind MAX_SECONDS: every connection of that kind closed by the daemon within MAX_SECONDS.
	closed_within() {
		jget "$T/bad.1.json" "'%d %d %d %s' % ((lambda k: (k['opened'], k['closed_by_peer'], k['still_open'], (k['close_after_s'] or {}).get('max')))(j['bad']['$1']))"
	}
	for kind in garbage oversized zero hello-big junk-hello partial trickle; do
		case $kind in
		partial | trickle) lim=$((HANDSHAKE_S + SLACK_S)) ;;
		*) lim=$SLACK_S ;;
		esac
		read -r opened closed still maxs < <(closed_within "$kind")
		if [ "$opened" -gt 0 ] && [ "$closed" = "$opened" ] && [ "$still" = 0 ] &&
			python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= $lim else 1)" "$maxs"; then
			ok "$kind: all $opened connections closed by the daemons, the last after ${maxs}s (<= ${lim}s)"
		else
			fail "$kind: connections closed by the daemons within ${lim}s" "opened=$opened closed=$closed still_open=$still max=${maxs}s"
		fi
	done
else
	fail "hostile.py tcp-bad" "$(cat "$T/bad.1.err")"
fi

wait "$join_job"
if [ -s "$T/join.1.json" ]; then
	echo "# joiners: $(cat "$T/join.1.json")"
	r=$(jget "$T/join.1.json" "'%d %s' % (j['established'], j['answers'])")
	[ "$r" = "$((3 * JOINERS_PER_NODE)) {'unknown method hostile': $((3 * JOINERS_PER_NODE))}" ] &&
		ok "$((3 * JOINERS_PER_NODE)) joiner handshakes completed, each call answered \"unknown method\"" ||
		fail "joiner handshakes" "$r" "$(cat "$T/join.1.json" "$T/join.1.err")"
	for i in 1 2 3; do
		k="j['joiner']['joiner $(addr "$i")']"
		r=$(jget "$T/join.1.json" "'%d %d %d %s' % (${k}['opened'], ${k}['closed_by_peer'], ${k}['still_open'], (${k}['close_after_s'] or {}).get('max'))")
		read -r opened closed still maxs <<<"$r"
		if [ "$opened" = "$JOINERS_PER_NODE" ] && [ "$closed" = "$opened" ] && [ "$still" = 0 ] &&
			python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= $JOINER_IDLE_S + $SLACK_S else 1)" "$maxs"; then
			ok "d$i closed all $opened idle joiners, the last after ${maxs}s (idle limit ${JOINER_IDLE_S}s)"
		else
			fail "d$i closes idle joiners after ${JOINER_IDLE_S}s" "opened=$opened closed=$closed still_open=$still max=${maxs}s"
		fi
	done
else
	fail "hostile.py join-idle" "$(cat "$T/join.1.err")"
fi

# --- replay ---------------------------------------------------------------------
if hostile replay "$T/capture.pcap" --port "$NET_PORT" --copies 3 --spoof --wait "$hold" \
	>"$T/replay.json" 2>"$T/replay.err" && [ -s "$T/replay.json" ]; then
	echo "# replay: $(cat "$T/replay.json")"
	r=$(jget "$T/replay.json" "'%d %d %d' % (j['replay']['udp_sent'], j['replay']['udp_spoofed'], j['replay']['tcp_flows'])")
	read -r usent uspoof flows <<<"$r"
	[ "$usent" -gt 0 ] && [ "$uspoof" = "$usent" ] && [ "$flows" -gt 0 ] &&
		ok "replayed $usent gossip datagrams (and $uspoof spoofed) and $flows TCP connections" ||
		fail "replay sent something" "$r"
	r=$(jget "$T/replay.json" "' '.join('%s:%d/%d' % (k.split()[1], v['closed_by_peer'], v['opened']) for k, v in sorted(j['replay']['tcp'].items()) if v['still_open'] or v['failed_to_open'])")
	[ -z "$r" ] && ok "every replayed TCP connection was closed by the daemon" ||
		fail "replayed TCP connections closed" "$r" "$(cat "$T/replay.json")"
else
	fail "hostile.py replay" "$(cat "$T/replay.err")"
fi

# --- after the attack ---------------------------------------------------------------
for i in 1 2 3; do
	wait_for 10 all_ready "d$i" && ok "after the attack, node ls on d$i: 3 ready, a leader" ||
		fail "after the attack, node ls on d$i" "$(view "d$i")"
done
settled() { [ "$(fds "d$1")" -le $((fd0[$1] + MAX_FD_GROWTH)) ]; }
for i in 1 2 3; do
	if wait_for 10 settled "$i"; then
		ok "d$i open files back: ${fd0[$i]} before, ${fdpeak[$i]:-?} under attack, $(fds "d$i") after"
	else
		fail "d$i open files back within $MAX_FD_GROWTH of ${fd0[$i]}" "now $(fds "d$i"): $(ls -l "/proc/$(daemon_pid "d$i")/fd" | awk '{print $NF}' | sort | uniq -c | sort -rn | head -n 5)"
	fi
done
declare -A rss1 rss2 rsspeak2
for i in 1 2 3; do rss1[$i]=$(rss "d$i"); done
# A second wave, replay included: what the first one took is reused, so the
# daemon ends below the high-water mark of the first.
attack 2
for i in 1 2 3; do rsspeak2[$i]=$(rss "d$i"); done
wait "$idle_job" "$join_job" "$bad_job" "$udp_job"
hostile replay "$T/capture.pcap" --port "$NET_PORT" --copies 3 --spoof --wait "$hold" >/dev/null 2>&1
for i in 1 2 3; do
	wait_for 10 settled "$i" || fail "d$i open files back after the second attack" "now $(fds "d$i")"
	rss2[$i]=$(rss "d$i")
done
for i in 1 2 3; do
	grow=$((rss2[$i] - rss0[$i]))
	high=${rsspeak[$i]}
	[ "${rss1[$i]}" -gt "$high" ] && high=${rss1[$i]}
	wave=$((rss2[$i] - high))
	msg="d$i RSS (KiB): ${rss0[$i]} at rest, ${rsspeak[$i]} under attack, ${rss1[$i]} after; ${rsspeak2[$i]} under a second attack, ${rss2[$i]} after"
	[ "$grow" -le "$MAX_RSS_GROWTH_KB" ] && [ "$wave" -le "$MAX_WAVE_GROWTH_KB" ] &&
		ok "$msg (+$grow <= $MAX_RSS_GROWTH_KB; over the first high-water mark: $wave <= $MAX_WAVE_GROWTH_KB)" ||
		fail "d$i RSS bounded" "$msg: +$grow (max $MAX_RSS_GROWTH_KB), over the first attack's high-water mark $wave (max $MAX_WAVE_GROWTH_KB)"
done

out=$(dk d2 service scale -d before=5 2>&1)
wait_for 60 has_running before 5 && ok "scale 3 -> 5 after the attack" || fail "scale" "$out" "$(running before)"
out=$(dk d3 service create -d --no-resolve-image --name after --replicas 2 "$img" sleep 100000 2>&1)
wait_for 60 has_running after 2 && ok "a service created after the attack runs" || fail "service after" "$out" "$(running after)"

# Each refusal is logged with its reason (the attacker is 10.X.0.4).
logs() { cat "$(daemon_log d1)" "$(daemon_log d2)" "$(daemon_log d3)"; }
# logged WHAT REGEX WHERE: some daemon logged a line matching REGEX; WHERE
# says where the reason is known.
logged() {
	local what=$1 re=$2 where=$3 line
	line=$(logs | grep -E "$re" | head -n 1)
	if [ -n "$line" ]; then
		ok "refused $what is logged: ${line:0:200}"
	else
		fail "refused $what is logged" "no daemon log line matches /$re/" "$where"
	fi
}
stream_why="net/stream.c keeps each failed handshake's reason (stream_listener_failures()); node/ never logs it"
gossip_why="net/gossip_core.c counts datagrams that do not unseal (gossip_core_stats(), membership_rejected()); node/ never logs them"
a=${NET_IP[attacker]//./\\.}
echo "# daemon log lines naming the attacker: $(logs | grep -c "$a")"
logs | grep "$a" | sed -E 's/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+/ADDR/g; s/[0-9]+ bytes/N bytes/g' |
	sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/#   /'
logged "an idle connection" "$a:[0-9]+.*(did not finish within|timed out)" "$stream_why"
logged "an oversized frame header" "$a:[0-9]+.*announced a frame of [0-9]+ bytes, over the limit" "$stream_why"
logged "a malformed handshake" "$a:[0-9]+.*malformed HELLO" "$stream_why"
logged "a replayed stream" "$a:[0-9]+.*failed authentication" "$stream_why"
logged "a gossip datagram that does not unseal" "gossip.*$a.*(reject|could not|unseal|seal)" "$gossip_why"

# A leader killed still fails over, and comes back as a follower.
leader_of() { view "$1" | tr ' ' '\n' | grep "/Leader" | cut -d/ -f1; }
lead=$(leader_of d1)
li=${lead##*-h}
survivor=1
[ "$li" = 1 ] && survivor=2
daemon_kill9 "d$li"
t0=$(date +%s%N)
writable() { sh_on "d$survivor" node update --label-add "failover=$RANDOM" "$tag-h$survivor" >/dev/null 2>&1; }
if wait_for 30 writable; then
	ok "after kill -9 of the leader (d$li), writable again in $((($(date +%s%N) - t0) / 1000000)) ms"
else
	fail "failover" "$(view "d$survivor")"
fi
host_daemon_start "d$li" "$li" --hostname "$tag-h$li" || fail "restart the old leader"
wait_for 30 all_ready "d$li" && ok "the old leader is back" || fail "old leader back" "$(view "d$survivor")"

for i in 1 2 3; do
	daemon_stop "d$i"
	rc=$?
	[ $rc = 0 ] && ok "d$i exits 0" || fail "d$i exits 0 (rc $rc)" "$(tail -n 30 "$(daemon_log "d$i")")"
done
done_testing
