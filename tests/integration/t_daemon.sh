#!/usr/bin/env bash
# The daemon on its own: start-up, files and modes, the state-dir lock, clean
# shutdown on SIGTERM and SIGINT, log formats, flag errors.
. "$(dirname "$0")/lib.sh"

if daemon_start a; then ok "daemon starts and answers on its socket"; else fail "daemon starts"; exit 1; fi

mode=$(stat -c %a "$(sock a)")
[ "$mode" = 660 ] && ok "API socket has mode 0660" || fail "API socket has mode 0660" "mode: $mode"
mode=$(stat -c %a "$T/a/state")
[ "$mode" = 700 ] && ok "state dir has mode 0700" || fail "state dir has mode 0700" "mode: $mode"

out=$(timeout 20 "$SHOAL_BIN" daemon --state-dir "$T/a/state" -H "unix://$T/a/other.sock" 2>&1)
rc=$?
if [ $rc -ne 0 ] && contains "$out" "another shoal daemon is using the state directory $T/a/state"; then
	ok "a second daemon on the same state dir refuses to start"
else
	fail "a second daemon on the same state dir refuses to start" "rc=$rc" "$out"
fi
check "the first daemon still serves after the refused second one" sh_ a version
[ ! -e "$T/a/other.sock" ] && ok "the refused daemon left no socket behind" ||
	fail "the refused daemon left no socket behind"

out=$(sh_ a version 2>&1)
if contains "$out" "Server:" && contains "$out" "0.1.0" && contains "$out" "1.41"; then
	ok "shoal version shows client and server"
else
	fail "shoal version shows client and server" "$out"
fi

out=$(SHOAL_HOST="unix://$(sock a)" "$SHOAL_BIN" version 2>&1)
contains "$out" "Server:" && ok "SHOAL_HOST selects the socket like DOCKER_HOST" ||
	fail "SHOAL_HOST selects the socket" "$out"
out=$(SHOAL_HOST="unix://$T/nowhere.sock" "$SHOAL_BIN" -H "unix://$(sock a)" version 2>&1)
contains "$out" "Server:" && ok "-H takes precedence over SHOAL_HOST" || fail "-H over SHOAL_HOST" "$out"

out=$(sh_ a info 2>&1)
contains "$out" "Swarm: inactive" && ok "shoal info says the swarm is inactive" ||
	fail "shoal info says the swarm is inactive" "$out"

out=$(sh_ a node ls 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.'; then
	ok "node ls outside a swarm gives Docker's error and exit code 1"
else
	fail "node ls outside a swarm gives Docker's error" "rc=$rc" "$out"
fi

daemon_stop a
rc=$?
[ $rc -eq 0 ] && ok "SIGTERM stops the daemon with status 0 (no sanitizer report)" ||
	fail "SIGTERM stops the daemon with status 0" "rc=$rc" "$(tail -n 40 "$(daemon_log a)")"
[ ! -e "$(sock a)" ] && ok "the socket is removed on shutdown" || fail "the socket is removed on shutdown"

# SIGINT too, with JSON logs.
daemon_start j --log-format json || fail "daemon starts with --log-format json"
pid=$(daemon_pid j)
kill -INT "$pid"
wait "$pid"
rc=$?
[ $rc -eq 0 ] && ok "SIGINT stops the daemon with status 0" || fail "SIGINT stops the daemon" "rc=$rc"
if python3 -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines, "no log lines"
for l in lines:
    o = json.loads(l)
    assert {"time", "level", "module", "msg"} <= set(o), l
' "$(daemon_log j)"; then
	ok "--log-format json writes one JSON object per line"
else
	fail "--log-format json writes one JSON object per line" "$(head -n 5 "$(daemon_log j)")"
fi

out=$("$SHOAL_BIN" daemon --runtime bogus 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" 'unknown runtime "bogus"' && ok "an unknown --runtime is refused" ||
	fail "an unknown --runtime is refused" "rc=$rc" "$out"
out=$("$SHOAL_BIN" daemon --log-level loud 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" 'unknown log level "loud"' && ok "an unknown --log-level is refused" ||
	fail "an unknown --log-level is refused" "rc=$rc" "$out"

out=$("$SHOAL_BIN" -H "unix://$T/nobody.sock" version 2>&1)
rc=$?
[ $rc -ne 0 ] && contains "$out" "Cannot connect to the shoal daemon at unix://$T/nobody.sock" &&
	ok "the CLI says clearly when no daemon answers" ||
	fail "the CLI says clearly when no daemon answers" "rc=$rc" "$out"

done_testing
