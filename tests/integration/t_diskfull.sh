#!/usr/bin/env bash
# A manager whose state dir fills up (a small tmpfs and filler files): writes
# fail with an error that says the disk is full, reads keep working, the
# daemon stays up; freeing space makes it writable again without a restart;
# after a restart (SIGTERM, kill -9 while full, a start on the full disk)
# every write acknowledged is there and none refused appears. Then three
# managers (network namespaces): a follower's disk full (writes go on, it
# catches up later), then the leader's (it hands leadership over).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

for cmd in fallocate df mount umount busybox nft; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed"; exit 1; }
done

# Raft preallocates its open segments (1 MiB each) and keeps a few ready, and
# consensus keeps 3.25 MiB aside (raft/consensus.c): 24 MiB holds those, the
# snapshots and the daemon's files.
TMPFS_MB=24
# Each write adds one label and replaces a 12 KiB one: a few hundred writes
# are more than the segments raft had preallocated before the disk filled.
PAD=$(head -c 12288 /dev/zero | tr '\0' p)
MAX_WRITES=600

# Daemons first (their files pin the mounts), then every tmpfs under $T.
diskfull_cleanup() {
	local name pid m
	for name in "${_daemons[@]}"; do
		pid=$(cat "$T/$name/pid" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	grep -F " $T/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	return 0
}
_cleanup_hooks+=(diskfull_cleanup)

# small_state NAME: daemon NAME's state dir is a fresh TMPFS_MB tmpfs.
small_state() {
	mkdir -p "$T/$1/state"
	mount -t tmpfs -o "size=${TMPFS_MB}m,mode=0700" "shoal-diskfull-$1" "$T/$1/state"
}

free_bytes() { df -B1 --output=avail "$T/$1/state" | tail -n1 | tr -d ' '; }

# fill NAME: use up every free byte of NAME's state dir. Again and again:
# raft frees space itself (segments behind a snapshot go), the test keeps the
# disk full as whatever filled it would.
fill() {
	local st=$T/$1/state n=0
	fallocate -l "$(free_bytes "$1")" "$st/filler.$RANDOM$RANDOM" 2>/dev/null
	# Whatever that left (a page or two).
	while [ "$(free_bytes "$1")" -gt 0 ] && [ $n -lt 64 ]; do
		n=$((n + 1))
		dd if=/dev/zero of="$st/filler.$RANDOM$RANDOM" bs=4096 count=1 2>/dev/null || break
	done
	[ "$(free_bytes "$1")" -eq 0 ]
}

unfill() { rm -f "$T/$1/state"/filler*; }

# sht NAME ARGS...: the CLI with a bound, so that a hang is seen as one
# (exit 124) rather than stalling the test.
sht() {
	local name=$1
	shift
	timeout 40 "$SHOAL_BIN" -H "unix://$(sock "$name")" "$@"
}

# write NAME KEY: a node update on NAME adding label KEY and rewriting the
# padding label; prints the CLI's output, returns its status.
write() {
	sht "$1" node update --label-add "$2=v" --label-add "pad=$2-$PAD" self 2>&1
}

# write_until_full NAME PREFIX: write labels PREFIX-1, PREFIX-2... until one
# is refused (at most MAX_WRITES). Acknowledged keys go to $T/acked, the
# refused one to $T/refused; its output to $T/first_error, status in
# FIRST_RC. Returns 1 if none was refused.
write_until_full() {
	local i out rc
	for ((i = 1; i <= MAX_WRITES; i++)); do
		fill "$1"
		out=$(write "$1" "$2-$i")
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "$2-$i" >>"$T/acked"
		else
			echo "$2-$i" >>"$T/refused"
			printf '%s\n' "$out" >"$T/first_error"
			FIRST_RC=$rc
			WRITES_OK=$((i - 1))
			return 0
		fi
	done
	WRITES_OK=$MAX_WRITES
	return 1
}

# The error a user sees for a write refused for lack of space names it.
says_disk_full() {
	grep -qiE 'no space|disk (is )?full' <<<"$1"
}

# labels NAME: the node's label keys, one per line, sorted.
labels() {
	api "$1" GET /nodes/self | head -n1 |
		python3 -c 'import json,sys; print("\n".join(sorted(json.load(sys.stdin)["Spec"]["Labels"])))'
}

# state_check NAME WHAT: every acknowledged label is on the node and no
# refused one is; the services acknowledged exist and refused ones do not.
state_check() {
	local have missing extra svcs
	have=$(labels "$1")
	missing=$(sort -u "$T/acked" | comm -23 - <(echo "$have"))
	extra=$(sort -u "$T/refused" | comm -12 - <(echo "$have"))
	svcs=$(api "$1" GET /services | head -n1 |
		python3 -c 'import json,sys; print("\n".join(sorted(s["Spec"]["Name"] for s in json.load(sys.stdin))))' 2>&1)
	if [ -z "$missing" ] && [ -z "$extra" ] && [ "$svcs" = "$(sort "$T/svc_acked")" ]; then
		ok "$2: all $(sort -u "$T/acked" | wc -l) acknowledged writes are there, none of the $(sort -u "$T/refused" | wc -l) refused"
	else
		fail "$2: acknowledged writes there, refused ones not" "missing: $(head -n 5 <<<"$missing")" \
			"refused but present: $(head -n 5 <<<"$extra")" "services: $svcs" "acknowledged services: $(cat "$T/svc_acked")"
	fi
}

active() {
	[ "$(api "$1" GET /info | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["LocalNodeState"])' 2>/dev/null)" = active ]
}

worker_token() {
	api "$1" GET /swarm | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Worker"])'
}

alive() { kill -0 "$(daemon_pid "$1")" 2>/dev/null; }

: >"$T/acked"
: >"$T/refused"
: >"$T/svc_acked"

# --- one manager ------------------------------------------------------------

small_state d || { fail "mount a ${TMPFS_MB} MiB tmpfs for the state dir"; exit 1; }
daemon_start d --hostname df-1 --runtime process --bridge none --raft-snapshot-interval 64 ||
	{ fail "daemon starts on a tmpfs state dir"; exit 1; }
port=$(free_port)
check "swarm init" sh_ d swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port"
for i in 1 2 3; do
	write d "pre-$i" >/dev/null && echo "pre-$i" >>"$T/acked"
done
sht d service create -d --name before --replicas 0 shoal-demo:latest sleep 1 >/dev/null 2>&1 &&
	echo before >>"$T/svc_acked"
token0=$(worker_token d)
[ "$(wc -l <"$T/acked")" = 3 ] && [ -s "$T/svc_acked" ] && ok "writes before the disk fills" ||
	fail "writes before the disk fills" "$(tail -n 20 "$(daemon_log d)")"

fill d && ok "the state dir is full ($(df -h --output=used,size "$T/d/state" | tail -n1))" ||
	fail "fill the state dir" "$(df "$T/d/state")"
if write_until_full d full1; then
	ok "a write is refused on the full disk (after $WRITES_OK acknowledged)"
else
	fail "a write is refused on a full disk" "$WRITES_OK writes acknowledged" "$(ls -l "$T/d/state/raft")"
fi
err=$(cat "$T/first_error" 2>/dev/null)
if [ "${FIRST_RC:-0}" -eq 1 ] && says_disk_full "$err"; then
	ok "the refused write says the disk is full: $err"
else
	fail "the refused write says the disk is full" "rc=${FIRST_RC:-}" "$err"
fi
alive d && ok "the daemon is up after the refused write" || fail "the daemon is up" "$(tail -n 40 "$(daemon_log d)")"

# Every kind of write is refused while the disk is full, with the same error.
fill d
out=$(write d full1-again)
rc=$?
[ $rc -eq 0 ] && echo full1-again >>"$T/acked" || echo full1-again >>"$T/refused"
[ $rc -eq 1 ] && says_disk_full "$out" && ok "node update is refused while full" ||
	fail "node update is refused while full" "rc=$rc" "$out"
fill d
out=$(sht d service create -d --name during --replicas 0 shoal-demo:latest sleep 1 2>&1)
rc=$?
[ $rc -eq 1 ] && says_disk_full "$out" && ok "service create is refused while full" ||
	fail "service create is refused while full" "rc=$rc" "$out"
[ $rc -eq 0 ] && echo during >>"$T/svc_acked"
fill d
out=$(sht d swarm join-token --rotate worker 2>&1)
rc=$?
[ $rc -eq 1 ] && says_disk_full "$out" && ok "join-token --rotate is refused while full" ||
	fail "join-token --rotate is refused while full" "rc=$rc" "$out"
[ $rc -eq 0 ] && token0=$(worker_token d)

# Reads keep working.
out=$(sht d node ls 2>&1)
rc=$?
out2=$(sht d service ls 2>&1)
rc2=$?
tok=$(worker_token d)
if [ $rc -eq 0 ] && contains "$out" df-1 && [ $rc2 -eq 0 ] && contains "$out2" before && [ "$tok" = "$token0" ] &&
	sht d info 2>&1 | grep -q "Swarm: active"; then
	ok "reads work while full (node ls, service ls, info, the unrotated token)"
else
	fail "reads work while full" "$out" "$out2" "token: $tok vs $token0"
fi
state_check d "while full"

# Space comes back: writable again without a restart.
unfill d
wait_for 30 write d after-free-probe && echo after-free-probe >>"$T/acked" &&
	ok "writes work again once space is freed, without a restart" ||
	fail "writes work again after freeing space" "$(write d after-free-probe)" "$(tail -n 40 "$(daemon_log d)")"
for i in 1 2 3; do
	write d "post-$i" >/dev/null && echo "post-$i" >>"$T/acked" || fail "write post-$i after freeing space"
done
out=$(sht d service create -d --name after --replicas 0 shoal-demo:latest sleep 1 2>&1) &&
	echo after >>"$T/svc_acked" && ok "service create after freeing space" || fail "service create after freeing space" "$out"
out=$(sht d swarm join-token --rotate worker 2>&1)
token1=$(worker_token d)
contains "$out" "Successfully rotated worker join token." && [ "$token1" != "$token0" ] &&
	ok "join-token --rotate after freeing space" || fail "join-token --rotate after freeing space" "$out"
state_check d "after freeing space"

# A clean restart keeps all of it.
daemon_stop d
rc=$?
[ $rc -eq 0 ] && ok "SIGTERM after the full disk: exit 0" || fail "SIGTERM after the full disk" "rc=$rc" "$(tail -n 40 "$(daemon_log d)")"
daemon_start d --hostname df-1 --runtime process --bridge none --raft-snapshot-interval 64 || fail "the daemon restarts"
wait_for 30 active d || fail "the swarm is active after the restart" "$(api d GET /info | head -n1)"
state_check d "after a restart"
[ "$(worker_token d)" = "$token1" ] && ok "the token rotated after freeing space is kept" ||
	fail "the rotated token is kept" "$(worker_token d) vs $token1"

# kill -9 while the disk is full, free the space, start again.
fill d || fail "fill the state dir again" "$(df "$T/d/state")"
write_until_full d full2 && [ "$FIRST_RC" -eq 1 ] && says_disk_full "$(cat "$T/first_error")" &&
	ok "the disk full again, writes are refused again" ||
	fail "a write is refused on the full disk again" "$WRITES_OK writes acknowledged" "$(cat "$T/first_error")"
for i in 1 2; do
	fill d
	write d "full2-more-$i" >/dev/null && echo "full2-more-$i" >>"$T/acked" || echo "full2-more-$i" >>"$T/refused"
done
daemon_kill9 d
unfill d
daemon_start d --hostname df-1 --runtime process --bridge none --raft-snapshot-interval 64 ||
	fail "the daemon starts after kill -9 on a full disk"
wait_for 30 active d || fail "the swarm is active after kill -9 on a full disk" "$(api d GET /info | head -n1)"
state_check d "after kill -9 on a full disk"
write d after-kill >/dev/null && echo after-kill >>"$T/acked" && ok "writable after kill -9 on a full disk" ||
	fail "writable after kill -9 on a full disk" "$(tail -n 40 "$(daemon_log d)")"

# Start on a full disk: the daemon comes up, writes are refused as above,
# and the swarm is writable once space is freed, without another restart.
daemon_kill9 d
fill d || fail "fill the state dir before starting"
daemon_start d --hostname df-1 --runtime process --bridge none --raft-snapshot-interval 64 ||
	fail "the daemon starts on a full disk"
fill d
out=$(write d start-full)
rc=$?
[ $rc -eq 0 ] && echo start-full >>"$T/acked" || echo start-full >>"$T/refused"
[ $rc -eq 1 ] && says_disk_full "$out" && ok "started on a full disk, writes are refused: $out" ||
	fail "started on a full disk, writes are refused with the disk-full error" "rc=$rc" "$out" "$(tail -n 20 "$(daemon_log d)")"
unfill d
wait_for 30 active d && wait_for 30 write d after-start-full && echo after-start-full >>"$T/acked" &&
	ok "once space is freed the manager started on a full disk is active and writable" ||
	fail "the manager started on a full disk recovers" "$(api d GET /info | head -n1 | cut -c1-300)" "$(tail -n 20 "$(daemon_log d)")"
state_check d "after starting on a full disk"

daemon_stop d
rc=$?
[ $rc -eq 0 ] && ok "the single manager exits 0 (no sanitizer report)" ||
	fail "the single manager exits 0" "rc=$rc" "$(tail -n 40 "$(daemon_log d)")"

# --- three managers -----------------------------------------------------------

net_setup 3 || { fail "net_setup 3"; exit 1; }
for i in 1 2 3; do
	small_state "m$i" || { fail "mount a tmpfs for manager $i"; exit 1; }
	host_daemon_start "m$i" "$i" --hostname "dfc-$i" --runtime process --bridge none --raft-snapshot-interval 64 ||
		{ fail "manager $i starts"; exit 1; }
done
out=$(sh_ m1 swarm init --advertise-addr "${NET_IP[1]}" 2>&1)
contains "$out" "Swarm initialized" || { fail "swarm init on host 1" "$out"; exit 1; }
mtok=$(sh_ m1 swarm join-token -q manager)
for i in 2 3; do
	sht "m$i" swarm join --token "$mtok" "${NET_IP[1]}:$NET_PORT" >/dev/null 2>&1 || fail "manager $i joins"
done

# leader_of MGR: the host number of the leader, as MGR sees it.
leader_of() {
	api "$1" GET /nodes | head -n1 | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    if (n.get("ManagerStatus") or {}).get("Leader"):
        print(n["Description"]["Hostname"].split("-")[1])' 2>/dev/null
}
three_ready() {
	[ "$(api "$1" GET /nodes | head -n1 | python3 -c '
import json, sys
print(sum(1 for n in json.load(sys.stdin) if n["Status"]["State"] == "ready" and
          (n.get("ManagerStatus") or {}).get("Reachability") == "reachable"))' 2>/dev/null)" = 3 ] &&
		[ -n "$(leader_of "$1")" ]
}
for i in 1 2 3; do
	wait_for 30 three_ready "m$i" || fail "manager $i sees 3 reachable managers and a leader" "$(sh_ "m$i" node ls 2>&1)"
done
L=$(leader_of m1)
F=$(((L % 3) + 1))
O=$(((F % 3) + 1))
ok "3 managers on tmpfs state dirs (leader: host $L)"

: >"$T/acked"
: >"$T/refused"
# cwrite MGR KEY: through MGR, label KEY (and the padding) on node dfc-1.
cwrite() {
	sht "$1" node update --label-add "$2=v" --label-add "pad=$2-$PAD" dfc-1 2>&1
}
# cstate_check MGR WHAT: like state_check, on node dfc-1 as MGR sees it.
cstate_check() {
	local have missing extra
	have=$(api "$1" GET /nodes/dfc-1 | head -n1 |
		python3 -c 'import json,sys; print("\n".join(sorted(json.load(sys.stdin)["Spec"]["Labels"])))')
	missing=$(sort -u "$T/acked" | comm -23 - <(echo "$have"))
	extra=$(sort -u "$T/refused" | comm -12 - <(echo "$have"))
	if [ -z "$missing" ] && [ -z "$extra" ]; then
		ok "$2: all $(sort -u "$T/acked" | wc -l) acknowledged writes are there, none of the $(sort -u "$T/refused" | wc -l) refused"
	else
		fail "$2: acknowledged writes there, refused ones not" "missing: $(head -n 5 <<<"$missing")" \
			"refused but present: $(head -n 5 <<<"$extra")"
	fi
}
# caught_up MGR: MGR has every acknowledged write.
caught_up() {
	local have
	have=$(api "$1" GET /nodes/dfc-1 | head -n1 |
		python3 -c 'import json,sys; print("\n".join(sorted(json.load(sys.stdin)["Spec"]["Labels"])))' 2>/dev/null)
	[ -z "$(sort -u "$T/acked" | comm -23 - <(echo "$have"))" ]
}

# A follower's disk fills: the two others are a quorum, writes go on.
fill "m$F" || fail "fill follower $F's state dir"
n_bad=0
for ((i = 1; i <= 300; i++)); do
	fill "m$F"
	if out=$(cwrite "m$L" "fol-$i"); then
		echo "fol-$i" >>"$T/acked"
	else
		n_bad=$((n_bad + 1))
		echo "fol-$i" >>"$T/refused"
		last_err=$out
	fi
done
[ $n_bad -eq 0 ] && ok "300 writes through the leader while follower $F's disk is full" ||
	fail "writes while a follower's disk is full" "$n_bad refused" "${last_err:-}"
# Through the full follower: it forwards the write to the leader. (Its own
# view is stale while it cannot store the log: take the version from the
# leader, as the CLI's read-modify-write through it would not.)
node1=$(api "m$L" GET /nodes/dfc-1 | head -n1)
spec=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1])["Spec"]; s["Labels"]["fol-via-full"]="v"; print(json.dumps(s))' "$node1")
fill "m$F"
out=$(api "m$F" POST "/nodes/$(jpy "j['ID']" <<<"$node1")/update?version=$(jpy "j['Version']['Index']" <<<"$node1")" \
	-H 'Content-Type: application/json' -d "$spec")
contains "$out" "HTTP 200" && echo fol-via-full >>"$T/acked" &&
	ok "a write through the full follower is forwarded and committed" || fail "a write through the full follower" "$out"
alive "m$F" && sht "m$F" node ls >/dev/null 2>&1 && ok "the full follower is up and serves reads" ||
	fail "the full follower serves reads" "$(tail -n 40 "$(daemon_log "m$F")")"
unfill "m$F"
wait_for 60 caught_up "m$F" && ok "follower $F catches up once space is freed" ||
	fail "follower $F catches up" "$(tail -n 40 "$(daemon_log "m$F")")"
for i in 1 2 3; do cstate_check "m$i" "manager $i after the follower's disk was full"; done

# The leader's disk fills.
fill "m$L" || fail "fill leader $L's state dir"
first_err=
first_rc=0
for ((i = 1; i <= MAX_WRITES; i++)); do
	fill "m$L"
	if out=$(cwrite "m$O" "lead-$i"); then
		echo "lead-$i" >>"$T/acked"
	else
		first_rc=$?
		first_err=$out
		echo "lead-$i" >>"$T/refused"
		break
	fi
done
if [ -n "$first_err" ]; then
	ok "a write is refused once the leader's disk is full (after $((i - 1)) acknowledged)"
	[ "$first_rc" -eq 1 ] && says_disk_full "$first_err" && ok "the refusal says the leader's disk is full: $first_err" ||
		fail "the refusal says the leader's disk is full" "rc=$first_rc" "$first_err"
else
	ok "no write is refused while the leader's disk is full ($MAX_WRITES acknowledged)"
fi
# The two managers with space are a quorum: the cluster takes writes again
# (another manager leads) without waiting for the space to come back.
writable_again() {
	local k="lead-retry-$((++retry))"
	fill "m$L"
	if cwrite "m$O" "$k" >/dev/null; then
		echo "$k" >>"$T/acked"
	else
		echo "$k" >>"$T/refused"
		return 1
	fi
}
retry=0
wait_for 30 writable_again && ok "writes succeed again while the old leader's disk is still full (leader now: host $(leader_of "m$O"))" ||
	fail "the cluster takes writes while one manager's disk is full" "leader: $(leader_of "m$O")" "$(cwrite "m$O" probe-x)"
alive "m$L" && ok "the full manager is up" || fail "the full manager is up" "$(tail -n 40 "$(daemon_log "m$L")")"
unfill "m$L"
wait_for 60 caught_up "m$L" && ok "manager $L catches up once space is freed" ||
	fail "manager $L catches up" "$(tail -n 40 "$(daemon_log "m$L")")"
for i in 1 2 3; do cstate_check "m$i" "manager $i after the leader's disk was full"; done

# Restart all three: the state is the same.
for i in 1 2 3; do
	daemon_stop "m$i"
	rc=$?
	[ $rc -eq 0 ] && ok "manager $i exits 0 (no sanitizer report)" ||
		fail "manager $i exits 0" "rc=$rc" "$(tail -n 40 "$(daemon_log "m$i")")"
done
for i in 1 2 3; do
	host_daemon_start "m$i" "$i" --hostname "dfc-$i" --runtime process --bridge none --raft-snapshot-interval 64 ||
		fail "manager $i restarts"
done
for i in 1 2 3; do
	wait_for 30 caught_up "m$i"
	cstate_check "m$i" "manager $i after restarting the cluster"
done
for i in 1 2 3; do
	daemon_stop "m$i"
	rc=$?
	[ $rc -eq 0 ] && ok "manager $i exits 0 at the end" || fail "manager $i exits 0 at the end" "rc=$rc" "$(tail -n 40 "$(daemon_log "m$i")")"
done

done_testing
