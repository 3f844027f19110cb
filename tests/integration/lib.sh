# Shared helpers for integration tests: TAP output, daemons in a private temp
# directory, bounded waits, and cleanup that runs however the test ends.
# Source it, then call ok/fail/check. Needs SHOAL_BIN (set by tests/run).
set -u

SHOAL_BIN=${SHOAL_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build-ci/shoal}
T=$(mktemp -d /tmp/shoal-it.XXXXXX)
chmod 755 "$T"
_n=0
_failed=0
_daemons=()
# Functions _cleanup calls first, last registered first (netns.sh adds one).
_cleanup_hooks=()

_cleanup() {
	local name pid i
	for ((i = ${#_cleanup_hooks[@]} - 1; i >= 0; i--)); do
		"${_cleanup_hooks[i]}"
	done
	for name in "${_daemons[@]}"; do
		pid=$(cat "$T/$name/pid" 2>/dev/null) || continue
		kill -9 "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "${SHOAL_KEEP_TMP:-}" = 1 ]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

ok() {
	_n=$((_n + 1))
	echo "ok $_n - $1"
}

# fail NAME [DETAIL...]: a failed test, with details as TAP comments.
fail() {
	_n=$((_n + 1))
	_failed=$((_failed + 1))
	echo "not ok $_n - $1"
	shift
	local line
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/#   /'
	done
}

# check NAME CMD...: ok if CMD succeeds.
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		fail "$name" "command: $*" "$out"
	fi
}

# contains HAYSTACK NEEDLE
contains() {
	[[ "$1" == *"$2"* ]]
}

# A TCP port on 127.0.0.1 nobody listens on now.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if ! ss -Htln "sport = :$p" | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# wait_for SECONDS CMD...: poll CMD (every 50 ms) until it succeeds or time runs out.
wait_for() {
	local limit=$1
	shift
	local deadline=$((SECONDS + limit))
	while ! "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

sock() { echo "$T/$1/shoal.sock"; }

# shoal NAME ARGS...: the CLI against daemon NAME.
sh_() {
	local name=$1
	shift
	"$SHOAL_BIN" -H "unix://$(sock "$name")" "$@"
}

# api NAME METHOD PATH [CURL ARGS...]: raw HTTP; prints the body then "HTTP <status>".
api() {
	local name=$1 method=$2 path=$3
	shift 3
	curl -sS --unix-socket "$(sock "$name")" -X "$method" -w '\nHTTP %{http_code}\n' \
		"http://localhost$path" "$@"
}

daemon_log() { echo "$T/$1/daemon.log"; }

# daemon_start NAME [FLAGS...]: start a daemon with its own state dir and socket
# and wait until its API answers.
# A command that daemon_start runs the daemon through (netns.sh sets it to
# "ip netns exec NS", which execs: $! is still the daemon's pid).
_daemon_wrap=()
# A daemon in the root namespace publishes service ports on loopback only.
daemon_start() {
	local name=$1 ingress=()
	shift
	mkdir -p "$T/$name"
	[ ${#_daemon_wrap[@]} -gt 0 ] || ingress=(--ingress-addr 127.0.0.1)
	"${_daemon_wrap[@]}" "$SHOAL_BIN" daemon --state-dir "$T/$name/state" \
		-H "unix://$(sock "$name")" --log-level debug "${ingress[@]}" "$@" >>"$(daemon_log "$name")" 2>&1 &
	echo $! >"$T/$name/pid"
	_daemons+=("$name")
	if ! wait_for 30 sh_ "$name" version; then
		echo "# daemon $name did not start; log:"
		tail -n 30 "$(daemon_log "$name")" | sed 's/^/#   /'
		return 1
	fi
}

daemon_pid() { cat "$T/$1/pid"; }

# daemon_stop NAME: SIGTERM and wait (20 s); returns the daemon's exit status.
daemon_stop() {
	local pid
	pid=$(daemon_pid "$1")
	kill -TERM "$pid" 2>/dev/null || return 1
	local deadline=$((SECONDS + 20))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill -9 "$pid"
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.05
	done
	wait "$pid"
}

daemon_kill9() {
	local pid
	pid=$(daemon_pid "$1")
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# done_testing: exit non-zero if anything failed.
done_testing() {
	[ "$_failed" -eq 0 ]
}

# --- containers (t_containers.sh, t_ctr_net.sh) ---------------------------------

# The demo image archive, built next to the shoal binary by `make demo-image`.
DEMO_IMAGE=${SHOAL_DEMO_IMAGE:-$(dirname "$SHOAL_BIN")/shoal-demo.tar}

# call NAME METHOD PATH [CURL ARGS...]: like api, but sets BODY and CODE.
call() {
	local out
	out=$(api "$@")
	CODE=${out##*HTTP }
	BODY=${out%HTTP *}
	BODY=${BODY%$'\n'}
}

# jpy EXPR: print the Python expression EXPR over the JSON document on stdin
# (bound to j): strings and numbers as they are, anything else as JSON.
jpy() {
	python3 -c '
import json, sys
j = json.load(sys.stdin)
r = eval(sys.argv[1])
print(r if isinstance(r, (str, int)) and not isinstance(r, bool) else json.dumps(r))' "$1"
}

# mkbody EXTRA_JSON CMD...: a create body for the demo image running CMD,
# with EXTRA_JSON's members merged in (objects one level deep).
mkbody() {
	python3 -c '
import json, sys
b = {"Image": "shoal-demo:latest", "Cmd": sys.argv[2:]}
for k, v in json.loads(sys.argv[1]).items():
    if isinstance(v, dict) and isinstance(b.get(k), dict):
        b[k].update(v)
    else:
        b[k] = v
print(json.dumps(b))' "$@"
}

# create NAME CTR BODY: POST /containers/create?name=CTR; sets CID on 201.
create() {
	CID=
	call "$1" POST "/containers/create?name=$2" -H 'Content-Type: application/json' -d "$3"
	[ "$CODE" = 201 ] || return 1
	CID=$(jpy "j['Id']" <<<"$BODY")
	echo "$CID" >>"$T/ctr-ids"
}

# field NAME REF EXPR: EXPR (Python, j = the inspect document) of container REF.
field() {
	local out
	out=$(api "$1" GET "/containers/$2/json") || return 1
	[[ "$out" == *"HTTP 200" ]] || return 1
	jpy "$3" <<<"${out%HTTP *}"
}

state_is() { [ "$(field "$1" "$2" "j['State']['Status']")" = "$3" ]; }

# start NAME REF: 204 expected; the container's process is tracked for cleanup.
start() {
	local pid
	call "$1" POST "/containers/$2/start"
	[ "$CODE" = 204 ] || return 1
	pid=$(field "$1" "$2" "j['State']['Pid']")
	[ -n "$pid" ] && [ "$pid" -gt 0 ] && ctr_track "$pid"
	return 0
}

# leftovers NAME DRIVER ID...: the mounts, files, runc state (DRIVER runc)
# and cgroups of containers ID... that daemon NAME may have left, one per line.
leftovers() {
	local d=$1 drv=$2 st=$T/$1/state id
	shift 2
	grep -F " $st/" "/proc/$(daemon_pid "$d")/mountinfo" | awk '{print "mount " $5}'
	ls "$st/containers" 2>/dev/null | sed 's/^/file /'
	if [ "$drv" = runc ]; then
		for r in "$st/containers/.runc" "$st/runc"; do
			[ -d "$r" ] && runc --root "$r" list -q 2>/dev/null | sed 's/^/runc /'
		done
	fi
	for id in "$@"; do
		ls -d /sys/fs/cgroup/*/shoal/"$id" 2>/dev/null | sed 's/^/cgroup /'
	done
}

# ctr_track PID: remember a container process, so ctr_cleanup kills it if it
# is still that process (same start time) when the test ends.
ctr_track() {
	local st
	st=$(awk '{print $22}' "/proc/$1/stat" 2>/dev/null) || return 0
	echo "$1 $st" >>"$T/ctr-pids"
}

# ctr_cleanup: a cleanup hook for tests that run containers. Kills every
# daemon first (so none reacts), then removes what containers left: runc
# state (runc delete -f), tracked processes, mounts under $T, and the
# cgroups shoal/<id> of the containers under the daemons' state dirs.
ctr_cleanup() {
	local name pid st r id m start
	for name in "${_daemons[@]}"; do
		pid=$(cat "$T/$name/pid" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
	done
	for st in "$T"/*/state; do
		for r in "$st/containers/.runc" "$st/runc"; do
			[ -d "$r" ] || continue
			for id in $(runc --root "$r" list -q 2>/dev/null); do
				runc --root "$r" delete -f "$id" >/dev/null 2>&1
			done
		done
	done
	if [ -f "$T/ctr-pids" ]; then
		while read -r pid start; do
			[ "$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null)" = "$start" ] &&
				kill -9 "$pid" 2>/dev/null
		done <"$T/ctr-pids"
	fi
	grep -F " $T/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	for st in "$T"/*/state; do
		for id in $(ls "$st/containers" 2>/dev/null) $(cat "$T/ctr-ids" 2>/dev/null); do
			rmdir /sys/fs/cgroup/*/shoal/"$id" 2>/dev/null
		done
	done
	return 0
}
