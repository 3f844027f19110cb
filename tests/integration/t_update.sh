#!/usr/bin/env bash
# Updates under load, through the routing mesh: 3 nodes (2 managers, 1
# worker) on test hosts, a 4th host as the client. A web service of 4
# replicas publishes port 8080; a client sends requests continuously through
# every node's published port during each of: a rolling update (start-first),
# an update that fails its health checks and rolls back by itself, a
# blue/green update, and a blue/green rollback during the grace period. Each
# must lose no request, and the bodies (the VERSION env var) show the switch.
# Then an update paused on failure is resumed, and rolled back by hand.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

for cmd in runc busybox python3; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed (scripts/deps.sh test)"; exit 1; }
done
[ -f "$DEMO_IMAGE" ] || { fail "the demo image exists: $DEMO_IMAGE (make demo-image)"; exit 1; }

net_setup 4 || { fail "net_setup 4"; exit 1; }
for i in 1 2 3; do
	host_daemon_start "d$i" "$i" --hostname "upd-h$i" || { fail "daemon d$i starts"; exit 1; }
done
hip() { echo "${NET_IP[$1]}"; }

# The load client stops; the daemons' containers, mounts and cgroups go.
upd_cleanup() { touch "$T/stop" 2>/dev/null; }
_cleanup_hooks+=(ctr_cleanup upd_cleanup)

out=$(sh_on d1 swarm init --advertise-addr "$(hip 1)" 2>&1)
contains "$out" "Swarm initialized" || { fail "swarm init" "$out"; exit 1; }
sh_on d2 swarm join --token "$(sh_on d1 swarm join-token -q manager)" "$(hip 1):$NET_PORT" >/dev/null 2>&1 || fail "d2 joins"
sh_on d3 swarm join --token "$(sh_on d1 swarm join-token -q worker)" "$(hip 1):$NET_PORT" >/dev/null 2>&1 || fail "d3 joins"
ready3() { [ "$(sh_on d1 node ls --format json | grep -c '"Status":"Ready"')" = 3 ]; }
wait_for 30 ready3 && ok "3 nodes: 2 managers, 1 worker" || { fail "cluster" "$(sh_on d1 node ls)"; exit 1; }
for i in 1 2 3; do
	sh_on "d$i" image load -i "$DEMO_IMAGE" >/dev/null 2>&1 || fail "d$i loads the demo image"
done

# Every node has its own container subnet, handed out by the leader.
subnets=$(api d1 GET /nodes | python3 -c '
import json, sys
print(" ".join(sorted(n.get("Subnet", "-") for n in json.loads(sys.stdin.read().rsplit("HTTP", 1)[0]))))')
[[ "$subnets" =~ ^10\.89\.[0-9]+\.0/24\ 10\.89\.[0-9]+\.0/24\ 10\.89\.[0-9]+\.0/24$ ]] &&
	[ "$(tr ' ' '\n' <<<"$subnets" | sort -u | wc -l)" = 3 ] &&
	ok "each node has its own /24: $subnets" || fail "node subnets" "$subnets"

# svc NAME EXPR: EXPR over the service's JSON (j).
svc() { api d1 GET "/services/$1" | sed '$d' | jpy "$2" 2>/dev/null; }
ustate() { svc "$1" "j.get('UpdateStatus', {}).get('State', '')"; }
dstate() { svc "$1" "j.get('Deployment', {}).get('State', '')"; }
ustate_is() { [ "$(ustate "$1")" = "$2" ]; }
dstate_is() { [ "$(dstate "$1")" = "$2" ]; }
# running NAME: the number of its tasks desired and observed running.
running() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22$1%22%5D%7D" | sed '$d' |
		jpy "len([t for t in j if t['Status']['State'] == 'running' and t['DesiredState'] == 'running'])"
}
has_running() { [ "$(running "$1")" = "$2" ]; }
ntasks() { api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22$1%22%5D%7D" | sed '$d' | jpy "len(j)"; }
# fetch I: the body of one request to host I's published port, from the client host.
fetch() {
	printf 'GET / HTTP/1.0\r\n\r\n' | on_host 4 timeout 3 busybox nc "$(hip "$1")" 8080 2>/dev/null | sed '1,/^\r*$/d'
}
# serves V: every node's port answers V.
serves() {
	local i
	for i in 1 2 3; do [ "$(printf 'GET / HTTP/1.0\r\n\r\n' | on_host 4 timeout 3 busybox nc "$(hip "$i")" 8080 2>/dev/null | sed '1,/^\r*$/d')" = "$1" ] || return 1; done
}

# Load: the client host sends requests through the three nodes until stopped.
load_start() {
	rm -f "$T/stop" "$T/load.json" "$T/ready"
	ip netns exec "${NET_NS[4]}" python3 "$(dirname "$0")/load.py" --out "$T/load.json" \
		--stop "$T/stop" --ready "$T/ready" "$(hip 1):8080" "$(hip 2):8080" "$(hip 3):8080" &
	load_pid=$!
	wait_for 20 test -f "$T/ready" || fail "the load client gets its first answers"
}
# load_stop WHAT FROM TO [mixed]: stop the load; no request failed; through
# every node the bodies went from FROM to TO: at once (each node switched in
# one step, never back), or with "mixed" as a rolling update does (both
# versions answer while it runs: first FROM, last TO). FROM = TO: only FROM.
load_stop() {
	local what=$1 from=$2 to=$3 mode=${4:-atomic} sum n f res
	touch "$T/stop"
	wait "$load_pid"
	sum=$(head -c 2000 "$T/load.json" 2>/dev/null)
	n=$(jpy "j['requests']" <"$T/load.json")
	f=$(jpy "j['failed']" <"$T/load.json")
	[ "$f" = 0 ] && [ "${n:-0}" -gt 50 ] && ok "$what: $n requests through 3 nodes, none failed" ||
		fail "$what: no request fails" "$sum"
	res=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1])); a, b, mode = sys.argv[2:5]
for t, s in j["seq"].items():
    if mode == "atomic":
        ok = s == ([a] if a == b else [a, b])
    else:
        ok = len(s) >= 2 and s[0] == a and s[-1] == b and set(s) == {a, b}
    if not ok:
        print(t, " ".join(s)[:300])' "$T/load.json" "$from" "$to" "$mode")
	[ -z "$res" ] && ok "$what: every node went from $from to $to ($mode)" || fail "$what: versions seen" "$res"
}

hc=(--health-cmd "nc 127.0.0.1 80 </dev/null" --health-interval 250ms --health-retries 3)
# httpd is not PID 1: the shell is, and ends on SIGTERM as a web server does
# (PID 1 ignores signals it has no handler for: each stop would take the
# 10 s grace period).
page='mkdir -p /www; echo "$VERSION" >/www/index.html; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
out=$(sh_on d1 service create -d --name web --replicas 4 -p 8080:80 -e VERSION=v1 "${hc[@]}" \
	--update-order start-first --update-monitor 1s --update-parallelism 2 \
	shoal-demo:latest sh -c "$page" 2>&1)
[[ "$out" =~ ^[0-9a-z]{25}$ ]] && ok "service create -p 8080:80 --replicas 4" || fail "service create" "$out"
wait_for 60 has_running web 4 && ok "4 replicas run (healthy)" || fail "4 replicas" "$(sh_on d1 service ps web)"
wait_for 20 serves v1 && ok "every node's port 8080 reaches the service" ||
	fail "mesh serves v1" "$(for i in 1 2 3; do fetch "$i"; done)"

# 1. Rolling update, start-first, under load.
load_start
t0=$(date +%s%N)
sh_on d1 service update -d --env-add VERSION=v2 web >/dev/null 2>&1 || fail "service update v2"
wait_for 90 ustate_is web completed && ok "rolling update: UpdateStatus completed in $((($(date +%s%N) - t0) / 1000000)) ms" ||
	fail "rolling update completes" "$(svc web "j.get('UpdateStatus')")"
wait_for 10 serves v2 || fail "v2 everywhere"
load_stop "rolling update (start-first)" v1 v2 mixed
[ "$(svc web "j['UpdateStatus']['Message']")" = "update completed" ] && ok "Docker's message: update completed" ||
	fail "update message" "$(svc web "j['UpdateStatus']")"

# 2. An update whose health check fails rolls back by itself.
load_start
sh_on d1 service update -d --env-add VERSION=v3 --health-cmd "false" --health-retries 1 \
	--update-failure-action rollback web >/dev/null 2>&1 || fail "service update v3 (failing)"
wait_for 90 ustate_is web rollback_completed && ok "failing update: rolled back automatically" ||
	fail "automatic rollback" "$(svc web "j.get('UpdateStatus')")"
msg=$(svc web "j['UpdateStatus']['Message']")
contains "$msg" "rollback completed" && ok "UpdateStatus: $msg" || fail "rollback message" "$msg"
[ "$(svc web "[e for e in j['Spec']['TaskTemplate']['ContainerSpec']['Env'] if e.startswith('VERSION=')][0]")" = VERSION=v2 ] &&
	ok "the spec is back to v2" || fail "spec after rollback" "$(svc web "j['Spec']['TaskTemplate']['ContainerSpec']")"
wait_for 30 has_running web 4 || fail "4 running after the rollback"
load_stop "update failing its health check, rolled back" v2 v2

# 3. Blue/green under load: green starts beside blue, traffic switches at once.
load_start
sh_on d1 service update -d --env-add VERSION=v4 --health-cmd "nc 127.0.0.1 80 </dev/null" --health-retries 3 \
	--update-strategy blue-green --bluegreen-promote auto --bluegreen-grace 5m web >/dev/null 2>&1 ||
	fail "service update --update-strategy blue-green"
wait_for 90 dstate_is web promoted && ok "blue/green: green promoted" ||
	fail "blue/green promotion" "$(svc web "j.get('Deployment')")"
[ "$(svc web "j['Deployment']['LiveColor']")" = green ] && ok "service inspect: live color green" ||
	fail "live color" "$(svc web "j.get('Deployment')")"
wait_for 10 serves v4 || fail "v4 everywhere"
[ "$(running web)" = 8 ] && ok "blue kept running during the grace period (8 tasks)" ||
	fail "blue kept" "$(sh_on d1 service ps web)"
out=$(sh_on d1 service ps web 2>&1)
contains "$out" "COLOR" && contains "$out" green && contains "$out" blue && ok "service ps shows each task's color" ||
	fail "service ps colors" "$out"
load_stop "blue/green update" v2 v4

# 4. Rollback during the grace period: back to blue at once, no container starts.
before=$(ntasks web)
load_start
out=$(sh_on d1 service rollback -d web 2>&1) || fail "service rollback" "$out"
wait_for 10 serves v2 && ok "rollback in the grace period: every node serves blue (v2) again" ||
	fail "back to blue" "$(for i in 1 2 3; do fetch "$i"; done)"
load_stop "blue/green rollback" v4 v2
[ "$(svc web "j['Deployment']['LiveColor']")" = blue ] && [ "$(dstate web)" = rolled_back ] &&
	ok "Deployment: live blue, rolled_back" || fail "deployment after rollback" "$(svc web "j.get('Deployment')")"
[ "$(ntasks web)" = "$before" ] && ok "no task was created by the rollback" ||
	fail "tasks after rollback" "$before -> $(ntasks web)"
wait_for 30 has_running web 4 && ok "green removed: 4 tasks run" || fail "green removed" "$(sh_on d1 service ps web)"

# 5. Paused on failure, resumed, then rolled back by hand (rolling, stop-first).
# spec_update NAME PYTHON: POST the service's spec changed by PYTHON (on s) as an update.
spec_update() {
	local j ver body
	j=$(api d1 GET "/services/$1" | sed '$d')
	ver=$(jpy "j['Version']['Index']" <<<"$j")
	body=$(python3 -c '
import json, sys
s = json.loads(sys.argv[1])["Spec"]
exec(sys.argv[2])
print(json.dumps(s))' "$j" "$2")
	call d1 POST "/services/$1/update?version=$ver" -H 'Content-Type: application/json' -d "$body"
	[ "$CODE" = 200 ] || { echo "# update: $CODE $BODY"; return 1; }
}
mkdir -p "$T/flag"
spec_update web '
c = s["TaskTemplate"]["ContainerSpec"]
c["Env"] = ["VERSION=v5"]
c["Mounts"] = [{"Type": "bind", "Source": "'"$T"'/flag", "Target": "/flag"}]
c["Healthcheck"]["Test"] = ["CMD-SHELL", "test -f /flag/ok"]
c["Healthcheck"]["Retries"] = 1
s["UpdateStrategy"] = "rolling"
s["UpdateConfig"].update({"Order": "stop-first", "Parallelism": 1, "FailureAction": "pause"})
' || fail "service update v5"
wait_for 60 ustate_is web paused && ok "an update whose task fails pauses" ||
	fail "paused" "$(svc web "j.get('UpdateStatus')")"
msg=$(svc web "j['UpdateStatus']['Message']")
contains "$msg" "update paused due to failure or early termination of task" && ok "UpdateStatus: $msg" ||
	fail "pause message" "$msg"
touch "$T/flag/ok"
sh_on d1 service update -d web >/dev/null 2>&1 || fail "service update (resume)"
[ "$(svc web "[e for e in j['PreviousSpec']['TaskTemplate']['ContainerSpec']['Env'] if e.startswith('VERSION=')][0]")" = VERSION=v2 ] &&
	ok "resuming with the same spec keeps the spec to roll back to" || fail "PreviousSpec after resume" "$(svc web "j['PreviousSpec']")"
wait_for 90 ustate_is web completed && ok "service update resumes the paused update; it completes" ||
	fail "resume" "$(svc web "j.get('UpdateStatus')")"
wait_for 10 serves v5 && ok "v5 served" || fail "v5 everywhere"
out=$(sh_on d1 service rollback -d web 2>&1) || fail "service rollback by hand" "$out"
wait_for 90 ustate_is web rollback_completed && ok "rolled back by hand: rollback_completed" ||
	fail "manual rollback" "$(svc web "j.get('UpdateStatus')")"
wait_for 10 serves v2 && ok "v2 served again" ||
	fail "v2 after manual rollback" "$(for i in 1 2 3; do fetch "$i"; done; sh_on d1 service ps web)"

out=$(sh_on d1 service rm web 2>&1)
wait_for 20 bash -c "! printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec ${NET_NS[4]} timeout 2 busybox nc $(hip 2) 8080 2>/dev/null | grep -q ." &&
	ok "service rm: the published port is gone" || fail "port after rm"
done_testing
