#!/usr/bin/env bash
# Services on a real cluster: 3 managers + 2 workers on five test hosts
# (network namespaces), runc containers of the demo image. Replicas spread
# evenly; scale up and down; global mode follows drain; a label constraint;
# a killed container is replaced; a worker killed with its containers has its
# tasks rescheduled. Driven through the docker CLI and the API.
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
svc_cleanup() {
	local i r id
	for i in 1 2 3 4 5; do
		r=$T/d$i/state/containers/.runc
		[ -d "$r" ] || continue
		for id in $(runc --root "$r" list -q 2>/dev/null); do runc --root "$r" delete -f "$id" >/dev/null 2>&1; done
	done
	grep " $T/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
}
_cleanup_hooks+=(svc_cleanup)

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

# A label constraint.
sh_on d1 node update --label-add zone=east svc-h4 >/dev/null || fail "label d4"
out=$(dk d1 service create -d --no-resolve-image --name east --replicas 3 --constraint node.labels.zone==east "$img" sleep 100000 2>&1)
if wait_for 60 has_running east 3; then
	r=$(running east)
	[ "${r#* }" = 3 ] && ok "constraint node.labels.zone==east: all 3 on the one node" || fail "constraint" "$r"
else
	fail "constrained service runs" "$out" "$(running east)"
fi

# Global mode follows drain.
out=$(dk d1 service create -d --no-resolve-image --name everywhere --mode global "$img" sleep 100000 2>&1)
wait_for 60 has_running everywhere 5 && ok "global: one task on each of 5 nodes" || fail "global 5" "$out" "$(running everywhere)"
sh_on d1 node update --availability drain svc-h5 >/dev/null || fail "drain d5"
wait_for 60 has_running everywhere 4 && ok "global: draining a node stops its task" || fail "global drain" "$(running everywhere)"
sh_on d1 node update --availability active svc-h5 >/dev/null

# A worker dies with its containers: its tasks run elsewhere.
dk d1 service rm east everywhere >/dev/null 2>&1
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
