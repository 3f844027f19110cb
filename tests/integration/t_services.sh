#!/usr/bin/env bash
# Services and tasks on one daemon (process driver): the API (create, list,
# inspect, update with version conflicts, remove, validation, filters), the
# CLI and the docker CLI; then, in converge_tests, services whose tasks run
# (the orchestrator, the scheduler and the agent on one node).
. "$(dirname "$0")/lib.sh"

daemon_start s --hostname svc-h1 --runtime process --bridge none || { fail "daemon starts"; exit 1; }
port=$(free_port)

# The API refuses services outside a swarm, as Docker does.
call s GET /services
[ "$CODE" = 503 ] && contains "$BODY" "This node is not a swarm manager" &&
	ok "GET /services outside a swarm: 503" || fail "GET /services outside a swarm" "$CODE $BODY"
out=$(sh_ s service ls 2>&1)
[ $? -ne 0 ] && contains "$out" "This node is not a swarm manager" &&
	ok "service ls outside a swarm fails" || fail "service ls outside a swarm" "$out"

check "swarm init" sh_ s swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port"

jpost() { call s POST "$1" -H 'Content-Type: application/json' -d "$2"; }

# --- API: create ----------------------------------------------------------------------------
spec='{"Name":"web","Labels":{"tier":"front"},"TaskTemplate":{"ContainerSpec":{"Image":"shoal-demo:latest","Args":["sleep","1000"]}},"Mode":{"Replicated":{"Replicas":2}},"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}}'
jpost /services/create "$spec"
web=$(jpy "j['ID']" <<<"$BODY" 2>/dev/null)
[ "$CODE" = 201 ] && [ -n "$web" ] && [ "$(jpy "j['Warnings']" <<<"$BODY")" = "[]" ] &&
	ok "POST /services/create: 201 with ID and Warnings" || fail "POST /services/create" "$CODE $BODY"

jpost /v1.41/services/create '{"Name":"WEB","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}'
[ "$CODE" = 409 ] && contains "$BODY" "rpc error: code = AlreadyExists desc = name conflicts with an existing object" &&
	ok "a taken name: 409 AlreadyExists" || fail "name conflict" "$CODE $BODY"
jpost /services/create '{"Name":"noimage"}'
[ "$CODE" = 400 ] && contains "$BODY" "ContainerSpec: image reference must be provided" &&
	ok "no image: 400" || fail "no image" "$CODE $BODY"
jpost /services/create '{"Name":"badc","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Placement":{"Constraints":["node.role=manager"]}}}'
[ "$CODE" = 400 ] && contains "$BODY" "constraint expected one operator from ==, !=" &&
	ok "a bad constraint: 400" || fail "bad constraint" "$CODE $BODY"
jpost /services/create '{"Name":"two","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Global":{},"Replicated":{"Replicas":2}}}'
[ "$CODE" = 400 ] && contains "$BODY" "must specify only one service mode" &&
	ok "two modes: 400" || fail "two modes" "$CODE $BODY"
jpost /services/create '{"Name":"bad.name","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}'
[ "$CODE" = 400 ] && contains "$BODY" "name must be valid as a DNS name component" &&
	ok "a bad name: 400" || fail "bad name" "$CODE $BODY"
jpost /services/create '{"Name":"p2","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"EndpointSpec":{"Ports":[{"TargetPort":81,"PublishedPort":8080}]}}'
[ "$CODE" = 400 ] && contains "$BODY" "port '8080' is already in use by service 'web'" &&
	ok "a published port in use: 400" || fail "port in use" "$CODE $BODY"
jpost /services/create '{"Name":"bad-json","Mode":"global"}'
[ "$CODE" = 400 ] && contains "$BODY" "json: cannot unmarshal string into Go struct field ServiceSpec.Mode" &&
	ok "Go's unmarshal error for a bad Mode" || fail "bad Mode type" "$CODE $BODY"
jpost /services/create '{"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Global":{}}}'
gen=$(jpy "j['ID']" <<<"$BODY" 2>/dev/null)
[ "$CODE" = 201 ] && ok "a service without a name is created" || fail "nameless create" "$CODE $BODY"
call s GET "/services/$gen"
gname=$(jpy "j['Spec']['Name']" <<<"$BODY" 2>/dev/null)
[[ "$gname" =~ ^[a-z]+_[a-z]+[0-9]?$ ]] && ok "it gets a generated name ($gname)" || fail "generated name" "$BODY"

# --- API: inspect, list, filters ------------------------------------------------------------
call s GET /services/web
[ "$CODE" = 200 ] && [ "$(jpy "j['ID']" <<<"$BODY")" = "$web" ] &&
	[ "$(jpy "j['Spec']['Mode']" <<<"$BODY")" = '{"Replicated": {"Replicas": 2}}' ] &&
	[ "$(jpy "j['Spec']['TaskTemplate']['Resources']" <<<"$BODY")" = '{"Limits": {}, "Reservations": {}}' ] &&
	[ "$(jpy "j['Spec']['TaskTemplate']['Placement']" <<<"$BODY")" = '{}' ] &&
	[ "$(jpy "j['Endpoint']['Ports'][0]['PublishMode']" <<<"$BODY")" = ingress ] &&
	[ "$(jpy "'PreviousSpec' in j" <<<"$BODY")" = false ] &&
	ok "GET /services/web: Docker's shape" || fail "GET /services/web" "$CODE $BODY"
call s GET "/services/${web:0:6}"
[ "$CODE" = 200 ] && ok "GET /services/<id prefix>" || fail "GET by prefix" "$CODE $BODY"
call s GET /services/nope
[ "$CODE" = 404 ] && contains "$BODY" "service nope not found" && ok "GET /services/nope: 404" || fail "GET unknown" "$CODE $BODY"
call s GET '/services?status=true'
[ "$CODE" = 200 ] && [ "$(jpy "len(j)" <<<"$BODY")" = 2 ] &&
	[ "$(jpy "[s['ServiceStatus']['DesiredTasks'] for s in j if s['ID'] == '$web'][0]" <<<"$BODY")" = 2 ] &&
	ok "GET /services?status=true has ServiceStatus" || fail "status=true" "$CODE $BODY"
call s GET '/services?filters=%7B%22mode%22%3A%7B%22global%22%3Atrue%7D%7D'
[ "$CODE" = 200 ] && [ "$(jpy "[s['ID'] for s in j]" <<<"$BODY")" = "[\"$gen\"]" ] &&
	ok "filter mode=global" || fail "filter mode" "$CODE $BODY"
call s GET '/services?filters=%7B%22label%22%3A%7B%22tier%3Dfront%22%3Atrue%7D%7D'
[ "$CODE" = 200 ] && [ "$(jpy "[s['ID'] for s in j]" <<<"$BODY")" = "[\"$web\"]" ] &&
	ok "filter label=tier=front" || fail "filter label" "$CODE $BODY"
call s GET '/services?filters=%7B%22colour%22%3A%7B%22red%22%3Atrue%7D%7D'
[ "$CODE" = 400 ] && contains "$BODY" "invalid filter 'colour'" && ok "unknown filter: 400" || fail "unknown filter" "$CODE $BODY"
call s GET '/tasks?filters=%7B%22service%22%3A%7B%22nope%22%3Atrue%7D%7D'
[ "$CODE" = 404 ] && contains "$BODY" "service nope not found" && ok "tasks of an unknown service: 404" ||
	fail "tasks filter unknown service" "$CODE $BODY"
call s GET '/tasks?filters=%7B%22service%22%3A%7B%22web%22%3Atrue%7D%2C%22desired-state%22%3A%7B%22running%22%3Atrue%7D%7D'
[ "$CODE" = 200 ] && ok "GET /tasks with service and desired-state filters" || fail "tasks filters" "$CODE $BODY"
call s GET /tasks/nope
[ "$CODE" = 404 ] && contains "$BODY" "task nope not found" && ok "GET /tasks/nope: 404" || fail "task unknown" "$CODE $BODY"

# --- API: update and version conflicts --------------------------------------------------------
call s GET /services/web
cur=$BODY
v=$(jpy "j['Version']['Index']" <<<"$cur")
upd=$(jpy "dict(j['Spec'], Mode={'Replicated': {'Replicas': 3}})" <<<"$cur")
jpost "/services/web/update?version=$((v + 7))" "$upd"
[ "$CODE" = 409 ] && contains "$BODY" "update out of sequence" && ok "update at a wrong version: 409" ||
	fail "update version conflict" "$CODE $BODY"
jpost "/services/web/update" "$upd"
[ "$CODE" = 400 ] && ok "update without a version: 400" || fail "update without version" "$CODE $BODY"
jpost "/services/web/update?version=$v" "$(jpy "dict(j['Spec'], Name='other')" <<<"$cur")"
[ "$CODE" = 400 ] && contains "$BODY" "renaming services is not supported" && ok "rename refused" || fail "rename" "$CODE $BODY"
jpost "/services/web/update?version=$v" "$upd"
[ "$CODE" = 200 ] && ok "update at the current version: 200" || fail "update" "$CODE $BODY"
call s GET /services/web
[ "$(jpy "j['Spec']['Mode']['Replicated']['Replicas']" <<<"$BODY")" = 3 ] &&
	[ "$(jpy "j['PreviousSpec']['Mode']['Replicated']['Replicas']" <<<"$BODY")" = 2 ] &&
	[ "$(jpy "j['Version']['Index'] > $v" <<<"$BODY")" = true ] &&
	ok "the spec changed, PreviousSpec kept, the version moved" || fail "after update" "$BODY"
jpost "/services/web/update?version=$v" "$upd"
[ "$CODE" = 409 ] && ok "the old version conflicts now" || fail "stale version" "$CODE $BODY"
call s GET /services/web
v=$(jpy "j['Version']['Index']" <<<"$BODY")
jpost "/services/web/update?version=$v&rollback=previous" '{}'
call s GET /services/web
[ "$(jpy "j['Spec']['Mode']['Replicated']['Replicas']" <<<"$BODY")" = 2 ] &&
	[ "$(jpy "j['UpdateStatus']['State']" <<<"$BODY")" = rollback_started ] &&
	ok "rollback=previous restores the previous spec" || fail "rollback" "$BODY"

# --- CLI ----------------------------------------------------------------------------------------
out=$(sh_ s service create -d --name cli --replicas 2 -e A=1 --constraint node.role==manager \
	--reserve-memory 64m --limit-cpu 0.5 --restart-condition on-failure --restart-delay 2s \
	--update-parallelism 2 --update-order start-first -p 9090:80 shoal-demo:latest sleep 1000 2>&1)
rc=$?
cli=$out
[ $rc -eq 0 ] && [[ "$out" =~ ^[0-9a-z]{25}$ ]] && ok "service create -d prints the ID" || fail "service create -d" "$out"
out=$(sh_ s service inspect cli 2>&1)
[ "$(jpy "j[0]['Spec']['TaskTemplate']['ContainerSpec']['Args']" <<<"$out")" = '["sleep", "1000"]' ] &&
	[ "$(jpy "j[0]['Spec']['TaskTemplate']['ContainerSpec']['Env']" <<<"$out")" = '["A=1"]' ] &&
	[ "$(jpy "j[0]['Spec']['TaskTemplate']['Resources']['Reservations']['MemoryBytes']" <<<"$out")" = 67108864 ] &&
	[ "$(jpy "j[0]['Spec']['TaskTemplate']['Resources']['Limits']['NanoCPUs']" <<<"$out")" = 500000000 ] &&
	[ "$(jpy "j[0]['Spec']['TaskTemplate']['RestartPolicy']" <<<"$out")" = '{"Condition": "on-failure", "Delay": 2000000000, "MaxAttempts": 0}' ] &&
	[ "$(jpy "j[0]['Spec']['UpdateConfig']['Parallelism']" <<<"$out")" = 2 ] &&
	[ "$(jpy "j[0]['Spec']['EndpointSpec']['Ports'][0]['PublishedPort']" <<<"$out")" = 9090 ] &&
	ok "service create flags land in the spec" || fail "create flags" "$out"
out=$(sh_ s service ls 2>&1)
grep -qE "^ID +NAME +MODE +REPLICAS +IMAGE +PORTS$" <<<"$out" &&
	grep -qE "^${cli:0:12} +cli +replicated +[0-9]+/2 +shoal-demo:latest +\*:9090->80/tcp$" <<<"$out" &&
	grep -qE "^${gen:0:12} +$gname +global +[0-9]+/[0-9]+ +busybox +$" <<<"$out" &&
	ok "service ls" || fail "service ls" "$out"
out=$(sh_ s service ls -q -f name=cli)
[ "$out" = "$cli" ] && ok "service ls -q -f name=cli" || fail "service ls -q" "$out"
out=$(sh_ s service ls --format json -f mode=replicated)
[ "$(jpy "j['Name']" <<<"$(grep '"cli"' <<<"$out")")" = cli ] && [ "$(wc -l <<<"$out")" = 2 ] &&
	ok "service ls --format json" || fail "service ls --format json" "$out"
out=$(sh_ s service inspect --pretty cli 2>&1)
contains "$out" "Name:		cli" && contains "$out" "Replicas:	2" && contains "$out" "Image:		shoal-demo:latest" &&
	ok "service inspect --pretty" || fail "inspect --pretty" "$out"
out=$(sh_ s service inspect cli nope 2>&1)
[ $? -eq 1 ] && contains "$out" "no such service: nope" && contains "$out" '"Name": "cli"' &&
	ok "service inspect of a missing one prints what it found and fails" || fail "inspect missing" "$out"
out=$(sh_ s service update -d --env-add B=2 --image shoal-demo:v2 --replicas 3 cli 2>&1)
[ $? -eq 0 ] && [ "$out" = cli ] && ok "service update -d" || fail "service update" "$out"
out=$(sh_ s service inspect cli)
[ "$(jpy "j[0]['Spec']['TaskTemplate']['ContainerSpec']['Env']" <<<"$out")" = '["A=1", "B=2"]' ] &&
	[ "$(jpy "j[0]['Spec']['TaskTemplate']['ContainerSpec']['Image']" <<<"$out")" = shoal-demo:v2 ] &&
	[ "$(jpy "j[0]['Spec']['Mode']['Replicated']['Replicas']" <<<"$out")" = 3 ] &&
	[ "$(jpy "j[0]['PreviousSpec']['TaskTemplate']['ContainerSpec']['Image']" <<<"$out")" = shoal-demo:latest ] &&
	ok "service update changed only what was asked" || fail "update result" "$out"
f0=$(jpy "j[0]['Spec']['TaskTemplate']['ForceUpdate']" <<<"$out")
sh_ s service update -d --force cli >/dev/null
out=$(sh_ s service inspect cli)
[ "$(jpy "j[0]['Spec']['TaskTemplate']['ForceUpdate']" <<<"$out")" = $((f0 + 1)) ] && ok "service update --force bumps ForceUpdate" ||
	fail "update --force" "$out"
out=$(sh_ s service scale -d cli=5 2>&1)
[ $? -eq 0 ] && [ "$out" = "cli scaled to 5" ] && ok "service scale -d" || fail "service scale" "$out"
out=$(sh_ s service scale -d "$gname=2" 2>&1)
[ $? -ne 0 ] && contains "$out" "scale can only be used with replicated or replicated-job mode" &&
	ok "scale of a global service fails" || fail "scale global" "$out"
out=$(sh_ s service scale cli 2>&1)
[ $? -ne 0 ] && contains "$out" "Invalid scale specifier 'cli'" && ok "scale without =N fails" || fail "scale specifier" "$out"
out=$(sh_ s service create --replicas 2 --mode global busybox 2>&1)
[ $? -ne 0 ] && contains "$out" "replicas can only be used with replicated or replicated-job mode" &&
	ok "--replicas with --mode global fails" || fail "replicas with global" "$out"
out=$(sh_ s service create --replicas x busybox 2>&1)
[ $? -eq 125 ] && contains "$out" 'invalid argument "x" for "--replicas" flag' && ok "a bad --replicas is a flag error" ||
	fail "bad --replicas" "$out"
out=$(sh_ s service create -d --restart-delay 5parsecs busybox 2>&1)
[ $? -eq 125 ] && contains "$out" 'time: invalid duration "5parsecs"' && ok "a bad duration is a flag error" ||
	fail "bad duration" "$out"
out=$(sh_ s service create -d --name web busybox 2>&1)
[ $? -eq 1 ] && contains "$out" "Error response from daemon: rpc error: code = AlreadyExists" &&
	ok "service create with a taken name fails" || fail "create taken name" "$out"
out=$(sh_ s service ps cli 2>&1)
[ $? -eq 0 ] && grep -qE "^ID +NAME +IMAGE +NODE +DESIRED STATE +CURRENT STATE +ERROR +PORTS$" <<<"$out" &&
	ok "service ps prints Docker's header" || fail "service ps" "$out"
out=$(sh_ s service ps nope 2>&1)
[ $? -ne 0 ] && contains "$out" "no such service: nope" && ok "service ps of a missing service" || fail "ps missing" "$out"
out=$(sh_ s node ps 2>&1)
[ $? -eq 0 ] && contains "$out" "DESIRED STATE" && ok "node ps (self)" || fail "node ps" "$out"
out=$(sh_ s node ps -q nope 2>&1)
[ $? -ne 0 ] && ok "node ps of a missing node fails" || fail "node ps missing" "$out"

# --- the docker CLI -----------------------------------------------------------------------------
if command -v docker >/dev/null; then
	export DOCKER_HOST="unix://$(sock s)" DOCKER_CONFIG="$T/docker-config"
	out=$(docker service create -d --no-resolve-image --name dk --replicas 2 shoal-demo:latest sleep 1000 2>&1)
	[ $? -eq 0 ] && contains "$out" "$(sh_ s service ls -q -f name=dk)" && ok "docker service create -d" ||
		fail "docker service create" "$out"
	out=$(docker service ls 2>&1)
	[ $? -eq 0 ] && grep -qE " +dk +replicated +[0-9]+/2 +shoal-demo:latest" <<<"$out" && ok "docker service ls" ||
		fail "docker service ls" "$out"
	out=$(docker service inspect dk 2>&1)
	[ $? -eq 0 ] && contains "$out" '"Replicas": 2' && ok "docker service inspect" || fail "docker service inspect" "$out"
	out=$(docker service inspect --pretty dk 2>&1)
	[ $? -eq 0 ] && contains "$out" "Name:		dk" && ok "docker service inspect --pretty" || fail "docker inspect --pretty" "$out"
	out=$(docker service update -d --env-add X=1 dk 2>&1)
	[ $? -eq 0 ] && [ "$(sh_ s service inspect dk | jpy "j[0]['Spec']['TaskTemplate']['ContainerSpec']['Env']")" = '["X=1"]' ] &&
		ok "docker service update" || fail "docker service update" "$out"
	out=$(docker service scale -d dk=4 2>&1)
	[ $? -eq 0 ] && [ "$(sh_ s service inspect dk | jpy "j[0]['Spec']['Mode']['Replicated']['Replicas']")" = 4 ] &&
		ok "docker service scale -d" || fail "docker service scale" "$out"
	out=$(docker service ps dk 2>&1)
	[ $? -eq 0 ] && ok "docker service ps" || fail "docker service ps" "$out"
	out=$(docker service rm dk 2>&1)
	[ $? -eq 0 ] && [ "$out" = dk ] && ok "docker service rm" || fail "docker service rm" "$out"
	unset DOCKER_HOST
else
	ok "# SKIP the docker CLI is not installed"
fi

# --- remove -----------------------------------------------------------------------------------------
out=$(sh_ s service rm cli nope "$gname" 2>&1)
[ $? -eq 1 ] && contains "$out" "cli" && contains "$out" "service nope not found" && contains "$out" "$gname" &&
	ok "service rm removes what exists and reports the rest" || fail "service rm" "$out"
call s DELETE /services/web
[ "$CODE" = 200 ] && ok "DELETE /services/web" || fail "DELETE" "$CODE $BODY"
call s DELETE /services/web
[ "$CODE" = 404 ] && ok "DELETE again: 404" || fail "DELETE again" "$CODE $BODY"
[ "$(sh_ s service ls -q)" = "" ] && ok "no service left" || fail "services left" "$(sh_ s service ls)"

# --- with tasks running (the orchestrator and the agent) -------------------------------------------
# What this checks: a create waits and prints Docker's progress until 3
# replicas run; service ls shows 3/3; service ps shows web.1..web.3 Running
# on this node; scale to 5 and back to 1 converge (ls 1/1); an update of the
# image replaces the tasks (ps shows " \_ " history lines, Shutdown); node ps
# lists the node's tasks; a constraint no node meets makes create fail after
# SHOAL_CONVERGE_TIMEOUT with "no suitable node"; rm leaves no task.
converge_tests() {
	local out rc
	out=$(sh_ s image load -i "$DEMO_IMAGE" 2>&1)
	[ "$out" = "Loaded image: shoal-demo:latest" ] || { fail "the demo image loads" "$out"; return; }
	out=$(timeout 60 "$SHOAL_BIN" -H "unix://$(sock s)" service create --name run --replicas 3 shoal-demo:latest sleep 1000 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "overall progress: 3 out of 3 tasks" && contains "$out" "verify: Service converged" &&
		ok "service create waits for 3 running tasks" || fail "create converges" "rc=$rc" "$out"
	out=$(sh_ s service ls)
	grep -qE " run +replicated +3/3 " <<<"$out" && ok "service ls: 3/3" || fail "ls 3/3" "$out"
	out=$(sh_ s service ps run)
	[ "$(grep -cE " run\.[123] +shoal-demo:latest +svc-h1 +Running +Running " <<<"$out")" = 3 ] &&
		ok "service ps: three running tasks" || fail "ps running" "$out"
	out=$(sh_ s service scale run=5 2>&1)
	contains "$out" "overall progress: 5 out of 5 tasks" && ok "scale to 5 converges" || fail "scale 5" "$out"
	out=$(sh_ s service scale run=1 2>&1)
	[ $? -eq 0 ] && grep -qE " run +replicated +1/1 " <<<"$(sh_ s service ls)" && ok "scale to 1 converges" ||
		fail "scale 1" "$out"
	# update --force replacing tasks is the rolling updater's (issue 6).
	out=$(sh_ s node ps)
	grep -qE " run\.1 +shoal-demo:latest +svc-h1 +Running " <<<"$out" && ok "node ps lists the task" || fail "node ps" "$out"
	out=$(SHOAL_CONVERGE_TIMEOUT=3 "$SHOAL_BIN" -H "unix://$(sock s)" service create --name nowhere --constraint node.labels.zone==mars shoal-demo:latest sleep 1000 2>&1)
	rc=$?
	[ $rc -eq 1 ] && contains "$out" "service nowhere: 1 tasks could not start: no suitable node" &&
		ok "create fails clearly when no node fits" || fail "no suitable node" "rc=$rc" "$out"
	sh_ s service rm run nowhere >/dev/null
	wait_for 20 bash -c "[ -z \"\$('$SHOAL_BIN' -H unix://$(sock s) node ps -q)\" ]" &&
		ok "rm leaves no task" || fail "tasks left" "$(sh_ s node ps)"
}
converge_tests

# --- service logs -----------------------------------------------------------------------------------
# What this checks: service logs gathers every replica's output with Docker's
# prefix ("talk.1.<task id>@svc-h1    | "), stdout and stderr apart and in
# order; --tail per task, -t, --raw, --no-task-ids, --no-resolve, --no-trunc;
# one task's logs by its id; -f follows new lines and a task started while it
# runs; the API's refusals and its frames with details; docker service logs.
logs_tests() {
	local out rc tid fpid talk
	talk='i=0; while [ $i -lt 100000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.2; done'
	out=$(sh_ s service create --name talk --replicas 2 shoal-demo:latest sh -c "$talk" 2>&1)
	contains "$out" "verify: Service converged" && ok "a service that talks runs" || fail "talk runs" "$out"
	both_talk() { [ "$(sh_ s service logs talk 2>/dev/null | grep -cE '\| out 2$')" = 2 ]; }
	check "both replicas' lines arrive" wait_for 20 both_talk
	out=$(sh_ s service logs talk 2>"$T/talk.err")
	grep -qE '^talk\.1\.[a-z0-9]{12}@svc-h1    \| out 0$' <<<"$out" &&
		grep -qE '^talk\.2\.[a-z0-9]{12}@svc-h1    \| out 0$' <<<"$out" &&
		ok "service logs: every replica, with Docker's prefix" || fail "service logs" "$out"
	! grep -q '| err' <<<"$out" && grep -qE '^talk\.[12]\.[a-z0-9]{12}@svc-h1    \| err 0$' "$T/talk.err" &&
		ok "stderr lines go to stderr" || fail "stderr apart" "$(head -n 5 "$T/talk.err")"
	in_order() { grep "^talk\.$1\." | sed 's/.*| out //' | python3 -c '
import sys
n = [int(l) for l in sys.stdin]
sys.exit(0 if n and n == list(range(len(n))) else 1)'; }
	in_order 1 <<<"$out" && in_order 2 <<<"$out" && ok "each replica's lines complete and in order" ||
		fail "order" "$out"
	out=$(sh_ s service logs --tail 1 talk 2>&1)
	[ "$(wc -l <<<"$out")" = 2 ] && ok "--tail 1: the last line of each task" || fail "--tail 1" "$out"
	out=$(sh_ s service logs -t --tail 1 talk 2>&1)
	[ "$(grep -cE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z talk\.[12]\.' <<<"$out")" = 2 ] &&
		ok "-t: RFC 3339 timestamps before the prefix" || fail "-t" "$out"
	out=$(sh_ s service logs --raw --tail 1 talk 2>&1)
	[ "$(grep -cE '^(out|err) [0-9]+$' <<<"$out")" = 2 ] && ok "--raw: the lines alone" || fail "--raw" "$out"
	out=$(sh_ s service logs --no-task-ids --tail 1 talk 2>&1)
	[ "$(grep -cE '^talk\.[12]@svc-h1    \| ' <<<"$out")" = 2 ] && ok "--no-task-ids" || fail "--no-task-ids" "$out"
	out=$(sh_ s service logs --no-resolve --no-trunc --tail 1 talk 2>&1)
	[ "$(grep -cE '^[a-z0-9]{25}\.[12]\.[a-z0-9]{25}@[a-z0-9]{25}    \| ' <<<"$out")" = 2 ] &&
		ok "--no-resolve --no-trunc: whole ids" || fail "--no-resolve --no-trunc" "$out"
	tid=$(sh_ s service ps -q --no-trunc talk | head -n 1)
	out=$(sh_ s service logs "$tid" 2>/dev/null)
	[ -n "$out" ] && ! grep -qv "\.${tid:0:12}@svc-h1 " <<<"$out" && ok "a task's logs by its id: that task only" ||
		fail "task logs" "$tid" "$out"
	out=$(sh_ s service logs nope 2>&1)
	rc=$?
	[ $rc -eq 1 ] && [ "$out" = "no such task or service: nope" ] && ok "an unknown service or task: Docker's error" ||
		fail "logs of nope" "rc=$rc $out"

	# Follow: new lines from every replica, and from a task started meanwhile.
	sh_ s service logs -f --tail 0 talk >"$T/follow.out" 2>/dev/null &
	fpid=$!
	followed() { grep -qE "^talk\.$1\..*\| out [0-9]+$" "$T/follow.out"; }
	wait_for 10 followed 1 && wait_for 5 followed 2 && ok "-f: new lines of every replica" ||
		fail "follow" "$(cat "$T/follow.out")"
	sh_ s service scale -d talk=3 >/dev/null
	wait_for 20 followed 3 && ok "-f: a task started meanwhile is followed too" ||
		fail "follow a new task" "$(tail -n 5 "$T/follow.out")"
	kill "$fpid" 2>/dev/null
	wait "$fpid" 2>/dev/null

	call s GET /services/talk/logs
	[ "$CODE" = 400 ] && contains "$BODY" "You must choose at least one stream" &&
		ok "GET /services/{id}/logs without a stream: 400" || fail "no stream" "$CODE $BODY"
	call s GET "/services/nope/logs?stdout=1"
	[ "$CODE" = 404 ] && ok "GET /services/nope/logs: 404" || fail "logs 404" "$CODE $BODY"
	call s GET "/services/talk/logs?stdout=1&tail=x"
	[ "$CODE" = 400 ] && contains "$BODY" "invalid tail" && ok "a bad tail: 400" || fail "bad tail" "$CODE $BODY"
	curl -s --unix-socket "$(sock s)" -o "$T/frames" "http://x/v1.41/services/talk/logs?stdout=1&tail=1&details=1"
	call s GET /services/talk
	out=$(python3 - "$T/frames" "$(jpy "j['ID']" <<<"$BODY")" <<'PY'
import re, struct, sys
data = open(sys.argv[1], 'rb').read()
svc, pos, n = sys.argv[2], 0, 0
while pos < len(data):
    stream, size = data[pos], struct.unpack('>I', data[pos + 4:pos + 8])[0]
    body = data[pos + 8:pos + 8 + size].decode()
    assert stream == 1 and data[pos + 1:pos + 4] == b'\0\0\0', data[pos:pos + 8]
    assert re.fullmatch(r'com\.docker\.swarm\.node\.id=[a-z0-9]{25},com\.docker\.swarm\.service\.id=' + svc +
                        r',com\.docker\.swarm\.task\.id=[a-z0-9]{25} out [0-9]+\n', body), body
    pos += 8 + size
    n += 1
print(n)
PY
)
	[ "$out" = 3 ] && ok "the API's frames: stdout, details, the last entry of each task" || fail "frames" "$out"
	if command -v docker >/dev/null; then
		out=$(DOCKER_HOST="unix://$(sock s)" DOCKER_CONFIG="$T/docker-config" docker service logs --tail 1 talk 2>&1)
		[ "$(grep -cE '^talk\.[123]\.[a-z0-9]{12}@svc-h1    \| (out|err) [0-9]+$' <<<"$out")" = 3 ] &&
			ok "docker service logs" || fail "docker service logs" "$out"
	else
		ok "# SKIP the docker CLI is not installed"
	fi
	sh_ s service rm talk >/dev/null

	# A large log (2 x 400,000 lines, 136 MB as the API frames it, more than
	# a connection may hold queued) arrives whole and in order, also to a
	# client reading slowly: pages are read as the client drains them.
	out=$(sh_ s service create --name big --replicas 2 shoal-demo:latest sh -c 'seq 0 399999; exec sleep 100000' 2>&1)
	contains "$out" "verify: Service converged" || fail "big runs" "$out"
	big_written() { [ "$(sh_ s service logs --raw --tail 1 big 2>/dev/null | grep -c '^399999$')" = 2 ]; }
	check "a large log is written" wait_for 60 big_written
	out=$(sh_ s service logs big | python3 -c '
import collections, sys
seqs = collections.defaultdict(list)
for l in sys.stdin:
    p, n = l.rstrip("\n").split("    | ")
    seqs[p].append(int(n))
print(" ".join(sorted("%d:%s" % (len(v), v == list(range(400000))) for v in seqs.values())))')
	[ "$out" = "400000:True 400000:True" ] && ok "service logs of 800,000 lines: every line once, in order" ||
		fail "large log" "$out"
	n=$(curl -s --limit-rate 20M --unix-socket "$(sock s)" "http://x/v1.41/services/big/logs?stdout=1&details=1" | wc -c)
	m=$(curl -s --unix-socket "$(sock s)" "http://x/v1.41/services/big/logs?stdout=1&details=1" | wc -c)
	[ "$n" = "$m" ] && [ "$n" -gt $((64 << 20)) ] && ok "a slow reader gets all $n bytes" || fail "slow reader" "$n of $m"
	sh_ s service rm big >/dev/null
}
logs_tests

# --- leaving the swarm --------------------------------------------------------------------------
# Docker's rule: a node that leaves removes its tasks' containers. And a new
# swarm's assignment sets start at low versions again: they must still apply.
leave_tests() {
	local out port2
	out=$(sh_ s service create --name stay --replicas 2 shoal-demo:latest sleep 100000 2>&1)
	contains "$out" "verify: Service converged" || fail "stay runs" "$out"
	check "swarm leave --force" sh_ s swarm leave --force
	no_task_ctr() { [ "$(call s GET '/containers/json?all=1'; jpy "len([c for c in j if 'com.docker.swarm.task.id' in c['Labels']])" <<<"$BODY")" = 0 ]; }
	wait_for 20 no_task_ctr && ok "leaving removes the tasks' containers" || fail "containers after leave" "$BODY"
	port2=$(free_port)
	check "a new swarm" sh_ s swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port2"
	out=$(sh_ s service create --name fresh --replicas 1 shoal-demo:latest sleep 100000 2>&1)
	contains "$out" "verify: Service converged" && ok "the new swarm's tasks run here" || fail "tasks after rejoin" "$out"
	sh_ s service rm fresh >/dev/null
}
leave_tests

daemon_stop s
rc=$?
[ $rc -eq 0 ] && ok "the daemon exits 0" || fail "clean exit" "rc=$rc" "$(tail -n 40 "$(daemon_log s)")"
done_testing
