#!/usr/bin/env bash
# Services on a real cluster: 3 managers + 2 workers on five test hosts
# (network namespaces), runc containers of the demo image. Replicas spread
# evenly; scale up and down; a label constraint; service logs gathered from
# every node; global mode follows drain,
# a node leaving and joining, and label changes; a killed container is
# replaced; a worker killed with its containers has its tasks rescheduled.
# Driven through the docker CLI and the API.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

for cmd in runc busybox docker; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed (scripts/deps.sh test)"; exit 1; }
done
[ -f "$DEMO_IMAGE" ] || { fail "the demo image exists: $DEMO_IMAGE (make demo-image)"; exit 1; }

net_setup 5 || { fail "net_setup 5"; exit 1; }
for i in 1 2 3 4 5; do
	host_daemon_start "d$i" "$i" --hostname "svc-h$i" || { fail "daemon d$i starts"; exit 1; }
done
hip() { echo "${NET_IP[$1]}"; }
addr() { echo "${NET_IP[$1]}:$NET_PORT"; }
dk() {
	local d=$1
	shift
	DOCKER_HOST="unix://$(sock "$d")" timeout 60 docker "$@"
}

# Containers the test's daemons leave are removed whatever happens.
_cleanup_hooks+=(ctr_cleanup)

out=$(sh_on d1 swarm init --advertise-addr "$(hip 1)" 2>&1)
contains "$out" "Swarm initialized" || { fail "swarm init" "$out"; exit 1; }
wtok=$(sh_on d1 swarm join-token -q worker)
mtok=$(sh_on d1 swarm join-token -q manager)
for i in 2 3; do sh_on "d$i" swarm join --token "$mtok" "$(addr 1)" >/dev/null 2>&1 || fail "d$i joins"; done
for i in 4 5; do sh_on "d$i" swarm join --token "$wtok" "$(addr 1)" >/dev/null 2>&1 || fail "d$i joins"; done
ready5() { [ "$(sh_on d1 node ls --format json | grep -c '"Status":"Ready"')" = 5 ]; }
wait_for 30 ready5 && ok "a cluster of 3 managers and 2 workers" || { fail "cluster" "$(sh_on d1 node ls)"; exit 1; }
for i in 1 2 3 4 5; do
	sh_on "d$i" image load -i "$DEMO_IMAGE" >/dev/null 2>&1 || fail "d$i loads the demo image"
done
img=shoal-demo:latest
[ "$(sh_on d5 image ls --format json | grep -c shoal-demo)" = 1 ] && ok "the demo image is on every node" ||
	fail "demo image" "$(sh_on d5 image ls)"

# running SERVICE: "N node:count,..." of its running tasks, as the API says.
running() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22$1%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
tasks = [t for t in json.loads(body) if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
per = {}
for t in tasks:
    per[t["NodeID"]] = per.get(t["NodeID"], 0) + 1
print(len(tasks), ",".join(str(v) for v in sorted(per.values(), reverse=True)))'
}
has_running() { [ "$(running "$1" | cut -d' ' -f1)" = "$2" ]; }
# containers: runc containers running on all five hosts.
containers() {
	local i n=0 r
	for i in 1 2 3 4 5; do
		r=$T/d$i/state/containers/.runc
		[ -d "$r" ] && n=$((n + $(runc --root "$r" list -q 2>/dev/null | wc -l)))
	done
	echo "$n"
}

out=$(dk d1 service create -d --no-resolve-image --name web --replicas 6 "$img" sleep 100000 2>&1)
[[ "$out" =~ ^[0-9a-z]{25}$ ]] && ok "docker service create --replicas 6" || fail "service create" "$out"
if wait_for 60 has_running web 6; then
	r=$(running web)
	[ "${r#* }" = "2,1,1,1,1" ] && ok "6 replicas run, spread evenly over 5 nodes ($r)" || fail "spread" "$r"
else
	fail "6 replicas run" "$(running web)" "$(sh_on d1 service ps web 2>&1 | head -n 20)"
fi
[ "$(containers)" = 6 ] && ok "6 runc containers exist" || fail "containers" "$(containers)"

out=$(dk d2 service scale -d web=12 2>&1)
wait_for 60 has_running web 12 && ok "scale 6 -> 12 (through a follower)" || fail "scale 12" "$out" "$(running web)"
r=$(running web)
[ "${r#* }" = "3,3,2,2,2" ] && ok "12 replicas spread evenly ($r)" || fail "spread 12" "$r"
out=$(dk d1 service scale -d web=2 2>&1)
two_containers() { has_running web 2 && [ "$(containers)" = 2 ]; }
wait_for 60 two_containers && ok "scale 12 -> 2: 2 tasks, 2 containers left" || fail "scale 2" "$out" "$(running web) $(containers)"

# A killed container is replaced.
running_pid() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22web%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
t = [t for t in json.loads(body) if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
print(t[0]["Status"]["ContainerStatus"]["PID"] if t else "")'
}
kill_one() { pid=$(running_pid) && [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; }
if wait_for 10 kill_one; then
	replaced() {
		api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22web%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
ts = json.loads(body)
run = [t for t in ts if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
dead = [t for t in ts if t["Status"]["State"] == "failed" and t["Status"]["ContainerStatus"].get("ExitCode") == 137]
sys.exit(0 if len(run) == 2 and dead else 1)'
	}
	wait_for 30 replaced && ok "a killed container: its task failed (137), a new one runs" ||
		fail "killed container replaced" "$(sh_on d1 service ps web 2>&1 | head)"
else
	fail "a running task has a container pid" "$pid"
fi

# docker service update and rollback wait for convergence (the CLI's
# progress display asks for the tasks with filter _up-to-date).
out=$(dk d1 service update --env-add A=1 --update-monitor 1s web 2>&1)
rc=$?
[ $rc = 0 ] && contains "$out" "converged" && ok "docker service update: rolled over, converged" ||
	fail "docker service update" "rc=$rc" "$out"
out=$(dk d1 service rollback web 2>&1)
rc=$?
[ $rc = 0 ] && contains "$out" "converged" && ok "docker service rollback: converged" ||
	fail "docker service rollback" "rc=$rc" "$out"

# A label constraint.
sh_on d1 node update --label-add zone=east svc-h4 >/dev/null || fail "label d4"
out=$(dk d1 service create -d --no-resolve-image --name east --replicas 3 --constraint node.labels.zone==east "$img" sleep 100000 2>&1)
if wait_for 60 has_running east 3; then
	r=$(running east)
	[ "${r#* }" = 3 ] && ok "constraint node.labels.zone==east: all 3 on the one node" || fail "constraint" "$r"
else
	fail "constrained service runs" "$out" "$(running east)"
fi

# Global mode follows drain. Each task says hello first: its logs are read
# from its node by the manager asked (a follower), for shoal's CLI and docker's.
out=$(dk d1 service create -d --no-resolve-image --name everywhere --mode global "$img" \
	sh -c 'echo "hello from $(hostname)"; exec sleep 100000' 2>&1)
wait_for 60 has_running everywhere 5 && ok "global: one task on each of 5 nodes" || fail "global 5" "$out" "$(running everywhere)"
hellos() { sh_on d2 service logs everywhere 2>/dev/null | grep -oE '@svc-h[1-5] +\| hello from [0-9a-f]{12}$'; }
five_hellos() {
	local h
	h=$(hellos)
	[ "$(wc -l <<<"$h")" = 5 ] && [ "$(cut -d' ' -f1 <<<"$h" | sort -u | wc -l)" = 5 ]
}
wait_for 20 five_hellos && ok "service logs on a follower: every node's task, each line once" ||
	fail "service logs across nodes" "$(sh_on d2 service logs everywhere 2>&1 | head -n 20)"
out=$(dk d3 service logs everywhere 2>&1)
[ "$(grep -cE '^everywhere\.0\.[a-z0-9]{12}@svc-h[1-5]    \| hello from ' <<<"$out")" = 5 ] &&
	ok "docker service logs: a line from each of the 5 nodes" || fail "docker service logs" "$out"
sh_on d1 node update --availability drain svc-h5 >/dev/null || fail "drain d5"
wait_for 60 has_running everywhere 4 && ok "global: draining a node stops its task" || fail "global drain" "$(running everywhere)"
sh_on d1 node update --availability active svc-h5 >/dev/null
wait_for 60 has_running everywhere 5 && ok "global: the node made active again gets a task" ||
	fail "global active" "$(running everywhere)"

# Global mode follows membership: a worker that leaves loses its task; when
# it joins again (as a new node) a task starts there.
# node_id NAME: the node id daemon NAME says it is.
node_id() { api "$1" GET /info | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().rsplit("HTTP", 1)[0])["Swarm"]["NodeID"])'; }
# runs_on SERVICE NODE_ID: a task of SERVICE is running (and desired so) on NODE_ID.
runs_on() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22$1%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
sys.exit(0 if any(t["NodeID"] == sys.argv[1] and t["Status"]["State"] == "running" and
                  t["DesiredState"] == "running" for t in json.loads(body)) else 1)' "$2"
}
old5=$(node_id d5)
out=$(sh_on d5 swarm leave 2>&1) || fail "d5 leaves" "$out"
left() { has_running everywhere 4 && ! runs_on everywhere "$old5"; }
wait_for 60 left && ok "global: a worker that left no longer counts ($(running everywhere))" ||
	fail "global leave" "$(running everywhere)" "$(sh_on d1 service ps everywhere 2>&1 | head -n 20)"
out=$(sh_on d5 swarm join --token "$wtok" "$(addr 1)" 2>&1) || fail "d5 joins again" "$out"
new5=$(node_id d5)
joined() { has_running everywhere 5 && runs_on everywhere "$new5"; }
[ -n "$new5" ] && [ "$new5" != "$old5" ] && wait_for 60 joined &&
	ok "global: a node that joins gets a task ($(running everywhere))" ||
	fail "global join" "$old5 -> $new5" "$(running everywhere)" "$(sh_on d1 service ps everywhere 2>&1 | head -n 20)"

# Global mode follows labels: a node given the constraint's label gets a
# task, and loses it with the label.
out=$(dk d1 service create -d --no-resolve-image --name labelled --mode global --constraint node.labels.gl==on "$img" sleep 100000 2>&1)
[[ "$out" =~ ^[0-9a-z]{25}$ ]] || fail "global constrained service create" "$out"
id3=$(node_id d3)
sh_on d1 node update --label-add gl=on svc-h3 >/dev/null || fail "label d3"
on3() { has_running labelled 1 && runs_on labelled "$id3"; }
wait_for 60 on3 && ok "global + constraint: the node given the label gets a task" || fail "global label-add" "$(running labelled)"
sh_on d1 node update --label-rm gl svc-h3 >/dev/null || fail "unlabel d3"
# stopped SERVICE: none of its tasks is running any more, as the nodes report.
stopped() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22$1%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
sys.exit(1 if any(t["Status"]["State"] == "running" for t in json.loads(body)) else 0)'
}
unlabelled() { has_running labelled 0 && stopped labelled; }
wait_for 60 unlabelled && ok "global + constraint: removing the label stops its task" || fail "global label-rm" "$(running labelled)"

# A worker dies with its containers: its tasks run elsewhere.
dk d1 service rm east everywhere labelled >/dev/null 2>&1
dk d1 service scale -d web=4 >/dev/null 2>&1
wait_for 60 has_running web 4 || fail "web at 4" "$(running web)"
id4=$(api d1 GET /nodes/svc-h4 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().rsplit("HTTP", 1)[0])["ID"])')
daemon_kill9 d4
r=$T/d4/state/containers/.runc
for id in $(runc --root "$r" list -q 2>/dev/null); do runc --root "$r" delete -f "$id" >/dev/null 2>&1; done
t0=$(date +%s%N)
four_elsewhere() {
	api d1 GET "/tasks?filters=%7B%22service%22%3A%5B%22web%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
down = sys.argv[1]
run = [t for t in json.loads(body) if t["Status"]["State"] == "running" and t["DesiredState"] == "running" and t["NodeID"] != down]
sys.exit(0 if len(run) == 4 else 1)' "$id4"
}
wait_for 60 four_elsewhere && ok "worker killed: its tasks run elsewhere after $((($(date +%s%N) - t0) / 1000000)) ms" ||
	fail "rescheduled" "$(sh_on d1 service ps web 2>&1 | head -n 20)"

# The leader is killed right after a scale: the service still converges,
# as the new leader sees it (d1's own tasks are replaced: its node is down).
dk d1 service scale -d web=8 >/dev/null 2>&1
daemon_kill9 d1
id1=$(api d2 GET /nodes/svc-h1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().rsplit("HTTP", 1)[0])["ID"])')
eight() {
	api d2 GET "/tasks?filters=%7B%22service%22%3A%5B%22web%22%5D%7D" | python3 -c '
import json, sys
body = sys.stdin.read().rsplit("HTTP", 1)[0]
off = sys.argv[1:]
run = [t for t in json.loads(body) if t["Status"]["State"] == "running" and t["DesiredState"] == "running" and t["NodeID"] not in off]
sys.exit(0 if len(run) == 8 else 1)' "$id1" "$id4"
}
wait_for 60 eight && ok "leader killed during a scale to 8: 8 run on the survivors" ||
	fail "converge after leader loss" "$(sh_on d2 service ps web 2>&1 | head -n 30)"
# d1 comes back: the tasks it still runs are no longer its, so they stop.
host_daemon_start d1 1 --hostname svc-h1 || fail "d1 restarts"

out=$(dk d2 service rm web 2>&1)
none_left() { [ "$(containers)" = 0 ]; }
wait_for 60 none_left && ok "service rm: every container is gone" || fail "service rm" "$out" "$(containers)"
for i in 1 2 3 5; do daemon_stop "d$i" || fail "d$i stops"; done
grep -l "ERROR: AddressSanitizer\|LeakSanitizer\|runtime error:" "$T"/d*/daemon.log 2>/dev/null | grep -q . &&
	fail "no sanitizer report" "$(grep -h -A8 "Sanitizer\|runtime error" "$T"/d*/daemon.log | head -n 40)" || ok "no sanitizer report"
done_testing
