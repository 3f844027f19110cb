#!/usr/bin/env bash
# Containers through the API (curl) and the docker CLI, with both runtimes
# (runc and process), in the root namespace with --bridge none (no container
# networking: t_ctr_net.sh covers it on network-namespace hosts):
# lifecycle, status codes, exit codes, stop grace then kill, the memory
# limit (runc), logs (streams, tail, timestamps, follow, the json-file on
# disk, rotation), health transitions, wait, list filters, inspect, a
# kill -9 of the daemon with running containers (re-adopted), and 100
# create/start/rm cycles that leave nothing behind.
. "$(dirname "$0")/lib.sh"

for cmd in runc busybox python3 curl docker; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed (scripts/deps.sh test)"; exit 1; }
done
[ -f "$DEMO_IMAGE" ] || { fail "the demo image exists: $DEMO_IMAGE (make demo-image)"; exit 1; }
_cleanup_hooks+=(ctr_cleanup)
export DOCKER_CONFIG="$T/docker-config"

# dk NAME ARGS...: the docker CLI against daemon NAME.
dk() {
	local d=$1
	shift
	DOCKER_HOST="unix://$(sock "$d")" timeout 60 docker "$@"
}

# run NAME CTR EXTRA_JSON CMD...: create and start; sets CID.
run() {
	local d=$1 n=$2 extra=$3
	shift 3
	create "$d" "$n" "$(mkbody "$extra" "$@")" && start "$d" "$CID"
}

# logs NAME REF QUERY: the raw body of GET /containers/REF/logs?QUERY.
logs() {
	curl -sSN --max-time 30 --unix-socket "$(sock "$1")" "http://localhost/containers/$2/logs?$3"
}

# demux: Docker's multiplexed frames on stdin -> "STREAM PAYLOAD" per frame;
# a malformed stream prints BAD.
demux() {
	python3 -c '
import struct, sys
d = sys.stdin.buffer.read()
i = 0
while i + 8 <= len(d):
    s, n = d[i], struct.unpack(">I", d[i + 4:i + 8])[0]
    if s not in (1, 2) or d[i + 1:i + 4] != b"\0\0\0" or i + 8 + n > len(d):
        print("BAD frame at", i); sys.exit(0)
    sys.stdout.write("%d %s" % (s, d[i + 8:i + 8 + n].decode()))
    i += 8 + n
if i != len(d):
    print("BAD trailing", len(d) - i)'
}

# alive NAME: the daemon still runs; else a failure with its log's end.
alive() {
	kill -0 "$(daemon_pid "$1")" 2>/dev/null && return 0
	fail "the daemon $1 is still running" "$(tail -n 40 "$(daemon_log "$1")")"
	return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_exit NAME REF [SECONDS]: until the container is exited.
wait_exit() { wait_for "${3:-20}" state_is "$1" "$2" exited; }

# --- one runtime -------------------------------------------------------------

suite() {
	local d=$1 drv=$2 out rc t0 t1 pid pid2 id i
	local trig=$T/trig-$d
	mkdir -p "$trig"
	daemon_start "$d" --runtime "$drv" --bridge none || { fail "[$drv] daemon starts"; return 1; }
	out=$(sh_ "$d" image load -i "$DEMO_IMAGE" 2>&1)
	[ "$out" = "Loaded image: shoal-demo:latest" ] && ok "[$drv] the demo image loads" ||
		{ fail "[$drv] the demo image loads" "$out"; return 1; }

	# Lifecycle with the docker CLI.
	out=$(dk "$d" create --name life shoal-demo:latest sleep 1000 2>&1)
	[[ "$out" =~ ^[0-9a-f]{64}$ ]] && ok "[$drv] docker create prints the id" ||
		fail "[$drv] docker create prints the id" "$out"
	id=$out
	echo "$id" >>"$T/ctr-ids"
	out=$(dk "$d" ps -a --format '{{.Names}}|{{.Status}}|{{.Image}}' 2>&1)
	[ "$out" = "life|Created|shoal-demo:latest" ] && ok "[$drv] docker ps -a: Created" ||
		fail "[$drv] docker ps -a: Created" "$out"
	# The image of a container stays: by name (without and with force) and by id.
	out=$(sh_ "$d" image rm shoal-demo 2>&1)
	rc=$?
	[ $rc -ne 0 ] && contains "$out" 'conflict: unable to remove repository reference "shoal-demo" (must force) - container '"${id:0:12}" &&
		ok "[$drv] image rm of an image a container uses: refused" || fail "[$drv] image rm in use" "rc=$rc" "$out"
	call "$d" DELETE "/images/shoal-demo:latest?force=1"
	[ "$CODE" = 409 ] && contains "$BODY" "(cannot be forced) - image is being used by container ${id:0:12}" &&
		ok "[$drv] ... also with force, while it is the image's last name" || fail "[$drv] image rm -f in use" "$CODE $BODY"
	out=$(sh_ "$d" image ls -q 2>&1)
	[ -n "$out" ] && ok "[$drv] ... and the image is still there" || fail "[$drv] image still there" "$out"
	[ "$(field "$d" life "j['State']['FinishedAt'] + ' ' + j['State']['StartedAt']")" = \
		"0001-01-01T00:00:00Z 0001-01-01T00:00:00Z" ] &&
		ok "[$drv] a created container has zero StartedAt and FinishedAt" ||
		fail "[$drv] zero times" "$(api "$d" GET /containers/life/json)"
	out=$(dk "$d" start life 2>&1)
	[ "$out" = life ] && state_is "$d" life running && ok "[$drv] docker start: running" ||
		fail "[$drv] docker start" "$out" "$(api "$d" GET /containers/life/json)"
	pid=$(field "$d" life "j['State']['Pid']")
	ctr_track "$pid"
	[ -n "$pid" ] && [ "$pid" -gt 0 ] && [ -d "/proc/$pid" ] &&
		ok "[$drv] State.Pid is a live process" || fail "[$drv] State.Pid is a live process" "pid=$pid"
	out=$(dk "$d" ps --format '{{.Names}}|{{.Status}}' 2>&1)
	[[ "$out" =~ ^life\|Up\ (Less\ than\ a\ second|[0-9]+\ seconds?)$ ]] &&
		ok "[$drv] docker ps: Up N seconds" || fail "[$drv] docker ps: Up N seconds" "$out"
	call "$d" POST /containers/life/start
	[ "$CODE" = 304 ] && ok "[$drv] start of a running container: 304" || fail "[$drv] start twice" "$CODE $BODY"
	call "$d" DELETE /containers/life
	[ "$CODE" = 409 ] && contains "$BODY" "You cannot remove a running container" &&
		ok "[$drv] rm of a running container without force: 409" || fail "[$drv] rm running" "$CODE $BODY"
	out=$(dk "$d" stop -t 1 life 2>&1)
	[ "$out" = life ] && state_is "$d" life exited && ok "[$drv] docker stop" ||
		fail "[$drv] docker stop" "$out"
	call "$d" POST /containers/life/stop
	[ "$CODE" = 304 ] && ok "[$drv] stop of a stopped container: 304" || fail "[$drv] stop twice" "$CODE $BODY"
	call "$d" POST /containers/life/kill
	[ "$CODE" = 409 ] && contains "$BODY" "is not running" &&
		ok "[$drv] kill of a stopped container: 409" || fail "[$drv] kill stopped" "$CODE $BODY"
	call "$d" POST /containers/life/restart?t=1
	[ "$CODE" = 204 ] && state_is "$d" life running && ok "[$drv] restart starts it again" ||
		fail "[$drv] restart" "$CODE $BODY"
	pid=$(field "$d" life "j['State']['Pid']") && ctr_track "$pid"
	call "$d" POST /containers/life/restart?t=1
	pid2=$(field "$d" life "j['State']['Pid']") && ctr_track "$pid2"
	[ "$CODE" = 204 ] && state_is "$d" life running && [ "$pid2" != "$pid" ] &&
		ok "[$drv] restart of a running container: a new process" || fail "[$drv] restart running" "$CODE $BODY $pid $pid2"
	out=$(dk "$d" rm -f life 2>&1)
	call "$d" GET /containers/life/json
	[ "$out" = life ] && [ "$CODE" = 404 ] && contains "$BODY" "No such container" &&
		ok "[$drv] docker rm -f; inspect then says No such container" || fail "[$drv] docker rm" "$out" "$CODE $BODY"

	# Errors.
	alive "$d" || return 1
	call "$d" POST /containers/create -H 'Content-Type: application/json' -d '{"Image":"nope:1"}'
	[ "$CODE" = 404 ] && contains "$BODY" "No such image: " && ok "[$drv] unknown image: 404 No such image" ||
		fail "[$drv] unknown image" "$CODE $BODY"
	call "$d" POST /containers/create -H 'Content-Type: application/json' -d '{"Image":5}'
	[ "$CODE" = 400 ] && ok "[$drv] a bad body: 400" || fail "[$drv] bad body" "$CODE $BODY"
	call "$d" POST '/containers/create?name=bad%20name' -H 'Content-Type: application/json' \
		-d '{"Image":"shoal-demo"}'
	[ "$CODE" = 400 ] && contains "$BODY" "Invalid container name" && ok "[$drv] a bad name: 400" ||
		fail "[$drv] bad name" "$CODE $BODY"
	create "$d" dup "$(mkbody '{}' true)" && create "$d" dup "$(mkbody '{}' true)"
	[ "$CODE" = 409 ] && contains "$BODY" 'The container name \"/dup\" is already in use' &&
		ok "[$drv] a name in use: 409" || fail "[$drv] name in use" "$CODE $BODY"
	call "$d" POST "/containers/dup/kill?signal=SIGNOPE"
	[ "$CODE" = 400 ] && ok "[$drv] kill with an unknown signal: 400" || fail "[$drv] bad signal" "$CODE $BODY"
	call "$d" DELETE /containers/dup
	[ "$CODE" = 204 ] && ok "[$drv] rm of a created container: 204" || fail "[$drv] rm created" "$CODE $BODY"

	# Exit codes, wait, inspect.
	alive "$d" || return 1
	run "$d" e3 '{"Labels":{"tier":"batch"}}' sh -c 'exit 3'
	out=$(curl -sS --max-time 20 --unix-socket "$(sock "$d")" -X POST "http://localhost/containers/e3/wait")
	[ "$(jpy "j['StatusCode'], j['Error']" <<<"$out")" = '[3, null]' ] &&
		ok "[$drv] wait: StatusCode 3 for sh -c 'exit 3'" || fail "[$drv] wait exit 3" "$out"
	out=$(dk "$d" wait e3 2>&1)
	[ "$out" = 3 ] && ok "[$drv] docker wait prints 3" || fail "[$drv] docker wait" "$out"
	out=$(api "$d" GET /containers/e3/json)
	if python3 - "${out%HTTP *}" "$drv" <<'PY'; then
import json, re, sys
j = json.loads(sys.argv[1]); drv = sys.argv[2]
st = j["State"]
assert st["Status"] == "exited" and st["ExitCode"] == 3 and st["Running"] is False, st
assert st["Paused"] is False and st["Restarting"] is False and st["OOMKilled"] is False, st
assert st["FinishedAt"] != "0001-01-01T00:00:00Z" and "Health" not in st, st
rfc = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$"
assert re.match(rfc, j["Created"]) and re.match(rfc, st["StartedAt"]), j
assert j["Name"] == "/e3" and re.match(r"^[0-9a-f]{64}$", j["Id"]), j
assert j["Path"] == "sh" and j["Args"] == ["-c", "exit 3"], j
assert re.match(r"^sha256:[0-9a-f]{64}$", j["Image"]), j
assert j["Driver"] == ("overlay2" if drv == "runc" else "process"), j["Driver"]
assert j["LogPath"].endswith("/" + j["Id"] + "-json.log"), j["LogPath"]
assert j["Config"]["Image"] == "shoal-demo:latest" and j["Config"]["Labels"] == {"tier": "batch"}, j["Config"]
assert isinstance(j["HostConfig"], dict) and j["RestartCount"] == 0, j
ns = j["NetworkSettings"]
assert "IPAddress" in ns and "Networks" in ns and isinstance(ns["Networks"], dict), ns
PY
		ok "[$drv] inspect: State, Created, Name, Path/Args, Image, Driver, LogPath, Config"
	else
		fail "[$drv] inspect fields" "$out"
	fi
	out=$(dk "$d" ps -a --filter name=e3 --format '{{.Status}}' 2>&1)
	[[ "$out" =~ ^Exited\ \(3\)\ (Less\ than\ a\ second|[0-9]+\ seconds?)\ ago$ ]] &&
		ok "[$drv] docker ps -a: Exited (3) N seconds ago" || fail "[$drv] ps Exited (3)" "$out"
	out=$(dk "$d" inspect -f '{{.State.ExitCode}} {{.Name}}' e3 2>&1)
	[ "$out" = "3 /e3" ] && ok "[$drv] docker inspect -f" || fail "[$drv] docker inspect -f" "$out"

	# docker run -d, and list filters.
	alive "$d" || return 1
	out=$(dk "$d" run -d --name rd --label tier=web shoal-demo:latest sh -c 'echo hello-from-run; sleep 1000' 2>&1)
	[[ "$out" =~ ^[0-9a-f]{64}$ ]] && state_is "$d" rd running && ok "[$drv] docker run -d" ||
		fail "[$drv] docker run -d" "$out"
	echo "$out" >>"$T/ctr-ids"
	pid=$(field "$d" rd "j['State']['Pid']") && ctr_track "$pid"
	wait_for 10 bash -c "DOCKER_HOST=unix://$(sock "$d") docker logs rd 2>&1 | grep -qx hello-from-run" &&
		ok "[$drv] docker logs shows the output of docker run -d" ||
		fail "[$drv] docker logs after run -d" "$(dk "$d" logs rd 2>&1)"
	out=$(dk "$d" ps --format '{{.Names}}' 2>&1)
	[ "$out" = rd ] && ok "[$drv] docker ps lists running containers only" || fail "[$drv] ps running only" "$out"
	out=$(dk "$d" ps -a --format '{{.Names}}' 2>&1 | sort | tr '\n' ' ')
	[ "$out" = "e3 rd " ] && ok "[$drv] docker ps -a lists every container" || fail "[$drv] ps -a" "$out"
	out=$(dk "$d" ps -a --filter label=tier=web --format '{{.Names}}' 2>&1)
	[ "$out" = rd ] && ok "[$drv] filter label=tier=web" || fail "[$drv] filter label" "$out"
	out=$(dk "$d" ps --filter status=exited --format '{{.Names}}' 2>&1)
	[ "$out" = e3 ] && ok "[$drv] filter status=exited (implies all)" || fail "[$drv] filter status" "$out"
	out=$(dk "$d" ps -a --filter 'name=^/rd$' --format '{{.Names}}' 2>&1)
	[ "$out" = rd ] && ok "[$drv] filter name=^/rd$" || fail "[$drv] filter name" "$out"
	call "$d" GET '/containers/json?filters=%7B%22status%22%3A%7B%22nope%22%3Atrue%7D%7D'
	[ "$CODE" = 400 ] && ok "[$drv] filter status=nope: 400" || fail "[$drv] bad status filter" "$CODE $BODY"
	call "$d" GET '/containers/json?filters=%7B%22ancestor%22%3A%5B%22x%22%5D%7D'
	[ "$CODE" = 400 ] && ok "[$drv] an unsupported filter: 400" || fail "[$drv] unsupported filter" "$CODE $BODY"
	call "$d" GET '/containers/json?all=1'
	if python3 - "$BODY" <<'PY'; then
import json, sys
l = json.loads(sys.argv[1])
c = [x for x in l if x["Names"] == ["/rd"]][0]
assert c["State"] == "running" and c["Status"].startswith("Up "), c
assert c["Command"] == "sh -c 'echo hello-from-run; sleep 1000'", c["Command"]
assert c["Image"] == "shoal-demo:latest" and c["ImageID"].startswith("sha256:"), c
assert c["Labels"] == {"tier": "web"} and c["Ports"] == [] and c["SizeRw"] == 0, c
assert isinstance(c["Created"], int) and c["HostConfig"]["NetworkMode"], c
assert isinstance(c["NetworkSettings"]["Networks"], dict) and c["Mounts"] == [], c
assert [x["Names"] for x in l] == [["/rd"], ["/e3"]], "newest first"
PY
		ok "[$drv] the ContainerSummary fields, newest first"
	else
		fail "[$drv] ContainerSummary" "$BODY"
	fi

	# wait: answered when the container exits; a client that leaves early is harmless.
	alive "$d" || return 1
	curl -sS --max-time 30 --unix-socket "$(sock "$d")" -X POST \
		"http://localhost/containers/rd/wait?condition=next-exit" >"$T/$d-wait.out" 2>&1 &
	local wpid=$!
	timeout 0.5 curl -sS --unix-socket "$(sock "$d")" -X POST "http://localhost/containers/rd/wait" \
		>/dev/null 2>&1
	sleep 0.3
	if kill -0 "$wpid" 2>/dev/null; then
		ok "[$drv] wait does not answer while the container runs"
	else
		fail "[$drv] wait answered early" "$(cat "$T/$d-wait.out")"
	fi
	call "$d" POST /containers/rd/kill?signal=KILL
	[ "$CODE" = 204 ] && ok "[$drv] kill: 204" || fail "[$drv] kill" "$CODE $BODY"
	wait "$wpid"
	out=$(cat "$T/$d-wait.out")
	[ "$(jpy "j['StatusCode']" <<<"$out" 2>/dev/null)" = 137 ] && ok "[$drv] the pending wait answers 137 after kill" ||
		fail "[$drv] pending wait" "$out"
	# next-exit of a stopped container: the exit of the run the API starts next.
	curl -sS --max-time 30 --unix-socket "$(sock "$d")" -X POST \
		"http://localhost/containers/rd/wait?condition=next-exit" >"$T/$d-wait2.out" 2>&1 &
	wpid=$!
	sleep 0.3
	kill -0 "$wpid" 2>/dev/null && ok "[$drv] wait next-exit of a stopped container waits" ||
		fail "[$drv] next-exit answered at once" "$(cat "$T/$d-wait2.out")"
	start "$d" rd && call "$d" POST /containers/rd/kill?signal=KILL
	wait "$wpid"
	out=$(cat "$T/$d-wait2.out")
	[ "$(jpy "j['StatusCode']" <<<"$out" 2>/dev/null)" = 137 ] &&
		ok "[$drv] ... and answers with the exit of the run started next (137)" || fail "[$drv] next-exit after start" "$out"
	call "$d" GET /_ping
	[ "$CODE" = 200 ] && ok "[$drv] the daemon serves on after a waiting client left" || fail "[$drv] ping" "$CODE"

	# Stop: a TERM handler exits within the grace; a container ignoring TERM is killed after t.
	alive "$d" || return 1
	run "$d" graceful '{}' sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
	wait_for 5 state_is "$d" graceful running
	t0=$(now_ms)
	call "$d" POST /containers/graceful/stop?t=10
	t1=$(now_ms)
	[ "$CODE" = 204 ] && [ "$(field "$d" graceful "j['State']['ExitCode']")" = 0 ] && [ $((t1 - t0)) -lt 5000 ] &&
		ok "[$drv] stop: a TERM handler exits 0 within the grace ($((t1 - t0)) ms)" ||
		fail "[$drv] graceful stop" "$CODE $BODY" "$((t1 - t0)) ms" "$(field "$d" graceful "j['State']")"
	if [ "$drv" = runc ]; then
		run "$d" deaf '{}' sleep 1000 # pid 1 without a handler ignores TERM
	else
		run "$d" deaf '{}' sh -c 'trap "" TERM; while :; do sleep 0.1; done'
	fi
	wait_for 5 state_is "$d" deaf running
	t0=$(now_ms)
	call "$d" POST /containers/deaf/stop?t=1
	t1=$(now_ms)
	[ "$CODE" = 204 ] && [ "$(field "$d" deaf "j['State']['ExitCode']")" = 137 ] &&
		[ $((t1 - t0)) -ge 1000 ] && [ $((t1 - t0)) -lt 5000 ] &&
		ok "[$drv] stop t=1: TERM ignored, killed after the grace with 137 ($((t1 - t0)) ms)" ||
		fail "[$drv] deaf stop" "$CODE $BODY" "$((t1 - t0)) ms" "$(field "$d" deaf "j['State']")"

	# Memory limit (runc only: the process driver sets no limits).
	alive "$d" || return 1
	if [ "$drv" = runc ]; then
		run "$d" oom '{"HostConfig":{"Memory":8388608}}' \
			sh -c 'x=$(head -c 67108864 /dev/zero | tr "\0" x); echo ${#x}'
		if wait_exit "$d" oom 30 && [ "$(field "$d" oom "j['State']['ExitCode'], j['State']['OOMKilled']")" = '[137, true]' ]; then
			ok "[runc] Memory 8 MiB: allocating 64 MB ends in 137 with OOMKilled"
		else
			fail "[runc] memory limit" "$(field "$d" oom "j['State']")"
		fi
	fi

	# Logs.
	alive "$d" || return 1
	run "$d" lg '{}' sh -c 'echo out1; echo err1 >&2; echo out2; echo err2 >&2'
	wait_exit "$d" lg
	out=$(logs "$d" lg 'stdout=1&stderr=1' | demux)
	[ "$(grep '^1 ' <<<"$out" | tr '\n' ' ')" = "1 out1 1 out2 " ] &&
		[ "$(grep '^2 ' <<<"$out" | tr '\n' ' ')" = "2 err1 2 err2 " ] &&
		ok "[$drv] logs: stdout and stderr frames, in order" || fail "[$drv] logs both" "$out"
	out=$(logs "$d" lg 'stdout=1' | demux)
	[ "$out" = $'1 out1\n1 out2' ] && ok "[$drv] logs stdout only" || fail "[$drv] logs stdout" "$out"
	out=$(dk "$d" logs lg 2>/dev/null)
	rc=$(dk "$d" logs lg 2>&1 >/dev/null)
	[ "$out" = $'out1\nout2' ] && [ "$rc" = $'err1\nerr2' ] && ok "[$drv] docker logs splits stdout and stderr" ||
		fail "[$drv] docker logs" "$out" "$rc"
	call "$d" GET /containers/lg/logs
	[ "$CODE" = 400 ] && contains "$BODY" "You must choose at least one stream" &&
		ok "[$drv] logs without a stream: 400" || fail "[$drv] logs no stream" "$CODE $BODY"
	out=$(logs "$d" lg 'stdout=1&stderr=1&timestamps=1' | demux)
	[ "$(grep -cE '^[12] [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{1,9}Z (out|err)[12]$' <<<"$out")" = 4 ] &&
		ok "[$drv] logs timestamps=1: RFC 3339 nano before each line" || fail "[$drv] timestamps" "$out"
	out=$(logs "$d" lg "stdout=1&stderr=1&since=$(($(date +%s) + 100))" | demux)
	[ -z "$out" ] && ok "[$drv] logs since the future: nothing" || fail "[$drv] since" "$out"
	local lp
	lp=$(field "$d" lg "j['LogPath']")
	if python3 - "$lp" <<'PY'; then
import json, re, sys
lines = open(sys.argv[1], "rb").read().decode().splitlines()
assert len(lines) == 4, lines
got = {}
for l in lines:
    e = json.loads(l)
    assert sorted(e) == ["log", "stream", "time"], e
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z$", e["time"]), e
    got.setdefault(e["stream"], []).append(e["log"])
assert got == {"stdout": ["out1\n", "out2\n"], "stderr": ["err1\n", "err2\n"]}, got
PY
		ok "[$drv] the json-file on disk is Docker's format"
	else
		fail "[$drv] json-file format" "$(cat "$lp")"
	fi
	run "$d" tl '{}' sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do echo line$i; done'
	wait_exit "$d" tl
	out=$(logs "$d" tl 'stdout=1&tail=3' | demux | tr '\n' ' ')
	[ "$out" = "1 line8 1 line9 1 line10 " ] && ok "[$drv] logs tail=3" || fail "[$drv] tail=3" "$out"
	out=$(logs "$d" tl 'stdout=1&tail=all' | demux | wc -l)
	[ "$out" = 10 ] && ok "[$drv] logs tail=all" || fail "[$drv] tail=all" "$out"
	out=$(dk "$d" logs --tail 2 tl 2>&1 | tr '\n' ' ')
	[ "$out" = "line9 line10 " ] && ok "[$drv] docker logs --tail 2" || fail "[$drv] docker logs --tail" "$out"
	call "$d" GET '/containers/tl/logs?stdout=1&tail=x'
	[ "$CODE" = 400 ] && ok "[$drv] logs tail=x: 400" || fail "[$drv] tail=x" "$CODE $BODY"

	# Follow: the stream carries new lines and ends by itself when the container exits.
	alive "$d" || return 1
	run "$d" fl '{}' sh -c 'i=0; while [ $i -lt 15 ]; do echo tick$i; i=$((i+1)); sleep 0.2; done'
	logs "$d" fl 'stdout=1&follow=1' >"$T/$d-follow.raw" &
	local fpid=$!
	sleep 1
	if kill -0 "$fpid" 2>/dev/null && [ -s "$T/$d-follow.raw" ]; then
		ok "[$drv] logs follow streams while the container runs"
	else
		fail "[$drv] logs follow streams" "$(demux <"$T/$d-follow.raw")"
	fi
	wait_exit "$d" fl
	if wait_for 10 bash -c "! kill -0 $fpid"; then
		ok "[$drv] logs follow ends when the container exits"
	else
		fail "[$drv] logs follow ends"
		kill "$fpid" 2>/dev/null
	fi
	wait "$fpid" 2>/dev/null
	out=$(demux <"$T/$d-follow.raw" | tr '\n' ' ')
	[ "$out" = "$(for i in $(seq 0 14); do printf '1 tick%d ' "$i"; done)" ] &&
		ok "[$drv] logs follow: every line once, in order, up to the last" || fail "[$drv] follow content" "$out"
	run "$d" fl2 '{}' sh -c 'while :; do echo t; sleep 0.1; done'
	timeout 0.7 curl -sS --unix-socket "$(sock "$d")" "http://localhost/containers/fl2/logs?stdout=1&follow=1" \
		>/dev/null 2>&1
	sleep 0.3
	call "$d" DELETE /containers/fl2?force=1
	[ "$CODE" = 204 ] && wait_for 5 sh_ "$d" version && ok "[$drv] a follower that left, then rm -f: the daemon serves on" ||
		fail "[$drv] follower left" "$CODE $BODY"

	# Rotation: max-size 1k, max-file 2.
	alive "$d" || return 1
	run "$d" rot '{"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"1k","max-file":"2"}}}}' \
		sh -c 'i=0; while [ $i -lt 200 ]; do echo "line $i 0123456789012345678901234567890123456789012345678901234567890123456789012345"; i=$((i+1)); done'
	wait_exit "$d" rot
	lp=$(field "$d" rot "j['LogPath']")
	out=$(cd "$(dirname "$lp")" && ls | grep -- '-json\.log' | tr '\n' ' ')
	local base
	base=$(basename "$lp")
	if [ "$out" = "$base $base.1 " ] && [ "$(stat -c %s "$lp")" -le 1400 ] &&
		[ "$(stat -c %s "$lp.1")" -le 1400 ]; then
		ok "[$drv] rotation: only <id>-json.log and .1, each about 1k"
	else
		fail "[$drv] rotation" "$out" "$(ls -l "$(dirname "$lp")")"
	fi
	out=$(logs "$d" rot 'stdout=1&tail=1' | demux)
	[[ "$out" == "1 line 199 "* ]] && ok "[$drv] logs after rotation end with the last line" ||
		fail "[$drv] logs after rotation" "$out"

	# Health: starting -> unhealthy -> healthy once the file exists.
	alive "$d" || return 1
	local hc=/hc/ok extra
	mkdir -p "$T/hc-$d"
	extra="{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"test -f $hc\"],\"Interval\":200000000,\"Retries\":2},\"HostConfig\":{\"Binds\":[\"$T/hc-$d:/hc\"]}}"
	if [ "$drv" = process ]; then # no mount namespace: the probe sees the host
		hc=$T/hc-$d/ok
		extra="{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"test -f $hc\"],\"Interval\":200000000,\"Retries\":2}}"
	fi
	run "$d" hl "$extra" sleep 1000
	local seen="" s
	for _ in $(seq 1 100); do
		s=$(field "$d" hl "j['State'].get('Health', {}).get('Status')")
		[ "${seen##* }" = "$s" ] || seen="$seen $s"
		[ "$s" = unhealthy ] && break
		sleep 0.05
	done
	[ "$seen" = " starting unhealthy" ] && ok "[$drv] health: starting, then unhealthy after 2 failures" ||
		fail "[$drv] health starting -> unhealthy" "seen:$seen" "$(field "$d" hl "j['State']")"
	[ "$(field "$d" hl "j['State']['Health']['FailingStreak'] >= 2")" = true ] &&
		ok "[$drv] health: FailingStreak >= 2" || fail "[$drv] FailingStreak" "$(field "$d" hl "j['State']['Health']")"
	out=$(dk "$d" ps --filter name=hl --format '{{.Status}}' 2>&1)
	[[ "$out" == *"(unhealthy)" ]] && ok "[$drv] docker ps: (unhealthy)" || fail "[$drv] ps unhealthy" "$out"
	touch "$T/hc-$d/ok"
	wait_for 10 bash -c "[ \"\$(curl -s --unix-socket $(sock "$d") http://localhost/containers/hl/json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[\"State\"][\"Health\"][\"Status\"])')\" = healthy ]" &&
		ok "[$drv] health: healthy once the file exists" || fail "[$drv] healthy" "$(field "$d" hl "j['State']")"
	if python3 - "$(api "$d" GET /containers/hl/json | sed '$d')" <<'PY'; then
import json, sys
h = json.loads(sys.argv[1])["State"]["Health"]
log = h["Log"]
assert h["FailingStreak"] == 0 and 1 <= len(log) <= 5, h
assert log[-1]["ExitCode"] == 0 and any(e["ExitCode"] == 1 for e in log), log
assert all(e["Start"] <= e["End"] for e in log), log
PY
		ok "[$drv] health: Log entries with Start, End, ExitCode"
	else
		fail "[$drv] health log" "$(api "$d" GET /containers/hl/json)"
	fi
	out=$(dk "$d" ps --filter name=hl --format '{{.Status}}' 2>&1)
	[[ "$out" == *"(healthy)" ]] && ok "[$drv] docker ps: (healthy)" || fail "[$drv] ps healthy" "$out"

	# Clean slate for the restart test.
	alive "$d" || return 1
	for i in $(dk "$d" ps -aq); do
		api "$d" DELETE "/containers/$i?force=1" >/dev/null
	done
	out=$(dk "$d" ps -aq 2>&1)
	[ -z "$out" ] && ok "[$drv] rm -f of every container" || fail "[$drv] rm all" "$out"

	# kill -9 of the daemon with 5 running containers and one that exits meanwhile.
	local pids=() names=() trigpath=/trig binds
	binds="{\"HostConfig\":{\"Binds\":[\"$trig:/trig\"]}}"
	[ "$drv" = process ] && trigpath=$trig && binds='{}'
	for i in 1 2 3 4 5; do
		run "$d" "tick$i" '{}' sh -c 'i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done'
		pids+=("$(field "$d" "tick$i" "j['State']['Pid']")")
	done
	run "$d" ends "$binds" sh -c "while [ ! -f $trigpath/go ]; do sleep 0.1; done; exit 7"
	local endpid
	endpid=$(field "$d" ends "j['State']['Pid']")
	daemon_kill9 "$d"
	touch "$trig/go"
	# Gone, or a zombie nobody reaps (the daemon was its reaper).
	wait_for 10 bash -c "[ ! -e /proc/$endpid ] || grep -q '^State:.Z' /proc/$endpid/status"
	sleep 0.5 # output piles up in the FIFOs meanwhile
	daemon_start "$d" --runtime "$drv" --bridge none || { fail "[$drv] daemon restarts"; return 1; }
	local same=0
	for i in 1 2 3 4 5; do
		[ "$(field "$d" "tick$i" "j['State']['Status'], j['State']['Pid']")" = "[\"running\", ${pids[i - 1]}]" ] &&
			same=$((same + 1))
	done
	[ "$same" = 5 ] && ok "[$drv] after kill -9 and restart: the 5 containers run with the same pids" ||
		fail "[$drv] re-adoption" "$same of 5" "$(dk "$d" ps -a 2>&1)"
	out=$(dk "$d" ps -q 2>&1 | sort -u | wc -l)
	[ "$out" = 5 ] && [ "$(dk "$d" ps -q | wc -l)" = 5 ] && ok "[$drv] docker ps: 5 running, no duplicates" ||
		fail "[$drv] ps after restart" "$(dk "$d" ps -a 2>&1)"
	if [ "$drv" = runc ]; then
		local rroot=$T/$d/state/containers/.runc
		[ -d "$rroot" ] || rroot=$T/$d/state/runc
		out=$(runc --root "$rroot" list 2>&1 | awk 'NR > 1 && $3 == "running"' | wc -l)
		[ "$out" = 5 ] && ok "[runc] runc list shows 5 running" || fail "[runc] runc list" "$(runc --root "$rroot" list 2>&1)"
	fi
	state_is "$d" ends exited && ok "[$drv] the container that ended while the daemon was down is exited" ||
		fail "[$drv] ended while down" "$(field "$d" ends "j['State']")"
	local n1 n2
	n1=$(logs "$d" tick1 'stdout=1&tail=1' | demux)
	sleep 1.2
	n2=$(logs "$d" tick1 'stdout=1&tail=1' | demux)
	[[ "$n1" =~ ^1\ tick([0-9]+)$ ]] && n1=${BASH_REMATCH[1]}
	[[ "$n2" =~ ^1\ tick([0-9]+)$ ]] && n2=${BASH_REMATCH[1]}
	[[ "$n1" =~ ^[0-9]+$ ]] && [[ "$n2" =~ ^[0-9]+$ ]] && [ "$n2" -gt "$n1" ] &&
		ok "[$drv] the logs keep flowing after the restart (tick$n1 -> tick$n2)" || fail "[$drv] logs flow" "$n1" "$n2"
	out=$(logs "$d" tick2 'stdout=1' | demux | awk '{print $2}' | sed 's/tick//' |
		awk 'NR > 1 && $1 != prev + 1 {bad = 1} {prev = $1} END {print bad ? "gap" : "ok"}')
	[ "$out" = ok ] && ok "[$drv] nothing lost or repeated across the restart" ||
		fail "[$drv] continuity" "$(logs "$d" tick2 'stdout=1' | demux | tr '\n' ' ')"
	for i in $(dk "$d" ps -aq); do
		api "$d" DELETE "/containers/$i?force=1" >/dev/null
	done

	# Cycles leave nothing behind.
	alive "$d" || return 1
	local n=100 ids=() bad=0
	[ "$drv" = process ] && n=50
	for ((i = 0; i < n; i++)); do
		if ! run "$d" "cyc$i" '{}' sleep 1000; then
			bad=$((bad + 1))
			kill -0 "$(daemon_pid "$d")" 2>/dev/null || break
			continue
		fi
		ids+=("$CID")
		call "$d" DELETE "/containers/$CID?force=1"
		[ "$CODE" = 204 ] || bad=$((bad + 1))
	done
	[ "$bad" = 0 ] && ok "[$drv] $n create/start/rm -f cycles" || fail "[$drv] cycles" "$bad failures" "$CODE $BODY"
	out=$(leftovers "$d" "$drv" "${ids[@]}")
	[ -z "$out" ] && ok "[$drv] nothing left: no mounts, files, runc state or cgroups" ||
		fail "[$drv] leftovers" "$out"
	# Every process a container of this test ran is gone (or a zombie of
	# an init that does not reap, for the one that ended with the daemon down).
	out=$(while read -r pid st; do
		[ "$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null)" = "$st" ] &&
			! grep -q '^State:.Z' "/proc/$pid/status" 2>/dev/null && ps -o pid=,args= -p "$pid"
	done <"$T/ctr-pids")
	[ -z "$out" ] && ok "[$drv] no container process is left running" || fail "[$drv] processes left" "$out"
	# The daemon is the child subreaper: no orphan stays a zombie under it.
	out=$(ps -o pid=,stat=,args= --ppid "$(daemon_pid "$d")" | awk '$2 ~ /^Z/')
	[ -z "$out" ] && ok "[$drv] no zombie under the daemon" || fail "[$drv] zombies" "$out"

	alive "$d" || return 1
	daemon_stop "$d"
	rc=$?
	[ "$rc" = 0 ] && ok "[$drv] the daemon stops cleanly" || fail "[$drv] daemon stop" "rc=$rc"
	grep -q "ERROR: AddressSanitizer\|LeakSanitizer\|runtime error:" "$(daemon_log "$d")" &&
		fail "[$drv] no sanitizer report" "$(grep -A8 "Sanitizer\|runtime error" "$(daemon_log "$d")" | head -n 40)" ||
		ok "[$drv] no sanitizer report"
}

# SHOAL_CTR_DRIVERS="process" runs one runtime only (when debugging).
for drv in ${SHOAL_CTR_DRIVERS:-runc process}; do
	suite "${drv:0:1}" "$drv"
done
done_testing
