#!/usr/bin/env bash
# A single-node swarm: init, node ls/inspect/update, restart as the same node of
# the same cluster, leave and init again.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
daemon_start m --hostname node-m || { fail "daemon starts"; exit 1; }

out=$(sh_ m swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" 2>&1)
rc=$?
node_id=$(sed -n 's/^Swarm initialized: current node (\([a-z0-9]*\)) is now a manager\.$/\1/p' <<<"$out")
token=$(grep -oE 'SHOAL-1-[a-z2-7]{52}-[a-z2-7]{26}' <<<"$out" | head -n1)
if [ $rc -eq 0 ] && [ ${#node_id} -eq 25 ] && [ -n "$token" ] &&
	grep -qx "    shoal swarm join --token $token 127.0.0.1:$port" <<<"$out" &&
	contains "$out" "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions."; then
	ok "swarm init prints the node id and the join command the way Docker does"
else
	fail "swarm init prints the node id and the join command" "rc=$rc" "$out"
fi

for f in node.key root.key state.json; do
	mode=$(stat -c %a "$T/m/state/swarm/$f" 2>/dev/null)
	[ "$mode" = 600 ] && ok "swarm/$f has mode 0600" || fail "swarm/$f has mode 0600" "mode: $mode"
done
[ -d "$T/m/state/raft" ] && ls "$T/m/state/raft" | grep -q metadata && ok "raft keeps its log in STATE_DIR/raft" || fail "raft keeps its log in STATE_DIR/raft" "$(ls -R "$T/m/state")"

swarm_json=$(api m GET /v1.41/swarm)
cluster_id=$(head -n1 <<<"$swarm_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])' 2>/dev/null)
worker_token=$(head -n1 <<<"$swarm_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Worker"])' 2>/dev/null)
manager_token=$(head -n1 <<<"$swarm_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Manager"])' 2>/dev/null)
if [ ${#cluster_id} -eq 25 ] && [ "$worker_token" = "$token" ] && [ -n "$manager_token" ] &&
	[ "$manager_token" != "$worker_token" ] && [ "${manager_token:0:61}" = "${worker_token:0:61}" ]; then
	ok "GET /swarm shows the cluster id and two distinct tokens with one root fingerprint"
else
	fail "GET /swarm shows the cluster and its tokens" "$swarm_json"
fi

out=$(sh_ m swarm init --advertise-addr 127.0.0.1 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.' &&
	ok "a second swarm init gives Docker's error" || fail "a second swarm init gives Docker's error" "rc=$rc" "$out"
out=$(api m POST /swarm/init -H 'Content-Type: application/json' -d '{}')
contains "$out" "HTTP 503" && ok "a second POST /swarm/init answers 503" || fail "a second POST /swarm/init answers 503" "$out"

out=$(sh_ m node ls 2>&1)
header=$(head -n1 <<<"$out")
row=$(sed -n 2p <<<"$out")
if [[ "$header" =~ ^ID\ +HOSTNAME\ +STATUS\ +AVAILABILITY\ +MANAGER\ STATUS\ +ENGINE\ VERSION$ ]] &&
	[[ "$row" =~ ^$node_id\ \*\ +node-m\ +Ready\ +Active\ +Leader\ +0\.1\.0$ ]] && [ "$(wc -l <<<"$out")" -eq 2 ]; then
	ok "node ls shows this node as a Ready, Active Leader marked with *"
else
	fail "node ls shows this node as a Ready, Active Leader" "$out"
fi
# Docker aligns columns: every header starts where the cells under it start.
col=$(awk 'NR==1{print index($0,"HOSTNAME")} NR==2{print index($0,"node-m")}' <<<"$out" | sort -u | wc -l)
[ "$col" -eq 1 ] && ok "node ls columns are aligned" || fail "node ls columns are aligned" "$out"

out=$(sh_ m node ls -q 2>&1)
[ "$out" = "$node_id" ] && ok "node ls -q prints the id only" || fail "node ls -q prints the id only" "$out"
out=$(sh_ m node ls --format json 2>&1)
if python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
assert len(rows) == 1 and rows[0]["ID"] == sys.argv[1] and rows[0]["Hostname"] == "node-m", rows
assert rows[0]["ManagerStatus"] == "Leader" and rows[0]["Status"] == "Ready", rows
' "$node_id" <<<"$out"; then
	ok "node ls --format json prints one JSON object per node"
else
	fail "node ls --format json" "$out"
fi

out=$(sh_ m node inspect self 2>&1)
if python3 -c '
import json, sys
nodes = json.load(sys.stdin)
n = nodes[0]
assert len(nodes) == 1 and n["ID"] == sys.argv[1], nodes
assert n["Spec"]["Role"] == "manager" and n["Spec"]["Availability"] == "active"
assert n["Description"]["Hostname"] == "node-m"
assert n["Status"]["State"] == "ready" and n["Status"]["Addr"] == "127.0.0.1"
assert n["ManagerStatus"]["Leader"] is True and n["ManagerStatus"]["Reachability"] == "reachable"
assert n["ManagerStatus"]["Addr"] == "127.0.0.1:" + sys.argv[2]
assert n["Version"]["Index"] > 0 and n["CreatedAt"].endswith("Z")
' "$node_id" "$port" <<<"$out"; then
	ok "node inspect self shows Docker's Node shape"
else
	fail "node inspect self shows Docker's Node shape" "$out"
fi
out=$(sh_ m node inspect "${node_id:0:6}" 2>&1)
contains "$out" "\"ID\": \"$node_id\"" && ok "node inspect resolves an id prefix" || fail "node inspect resolves an id prefix" "$out"
out=$(sh_ m node inspect node-m 2>&1)
contains "$out" "\"ID\": \"$node_id\"" && ok "node inspect resolves a hostname" || fail "node inspect resolves a hostname" "$out"
out=$(sh_ m node inspect nosuchnode 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "nosuchnode" && ok "node inspect of an unknown node fails" || fail "node inspect of an unknown node fails" "rc=$rc" "$out"

check "node update --label-add" sh_ m node update --label-add zone=a --label-add tier=db self
check "node update --availability drain" sh_ m node update --availability drain self
out=$(sh_ m node inspect self 2>&1)
if python3 -c '
import json, sys
n = json.load(sys.stdin)[0]
assert n["Spec"]["Labels"] == {"zone": "a", "tier": "db"}, n["Spec"]
assert n["Spec"]["Availability"] == "drain"
' <<<"$out"; then ok "node update changes labels and availability"; else fail "node update changes labels and availability" "$out"; fi
check "node update --label-rm and back to active" sh_ m node update --label-rm tier --availability active self

version=$(api m GET /nodes/"$node_id" | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"]["Index"])')
out=$(api m POST "/v1.41/nodes/$node_id/update?version=$((version - 1))" -H 'Content-Type: application/json' \
	-d '{"Role":"manager","Availability":"pause","Labels":{}}')
if contains "$out" "HTTP 409" && contains "$out" "update out of sequence"; then
	ok "an update with a stale version is refused with 409"
else
	fail "an update with a stale version is refused with 409" "$out"
fi
out=$(api m POST "/v1.41/nodes/$node_id/update?version=$version" -H 'Content-Type: application/json' \
	-d '{"Role":"worker","Availability":"active","Labels":{}}')
contains "$out" "attempting to demote the last manager of the swarm" && ok "demoting the last manager is refused" ||
	fail "demoting the last manager is refused" "$out"
after=$(api m GET /nodes/"$node_id" | head -n1 | python3 -c 'import json,sys; n=json.load(sys.stdin); print(n["Version"]["Index"], n["Spec"]["Availability"], n["Spec"]["Role"])')
[ "$after" = "$version active manager" ] && ok "refused updates change nothing" || fail "refused updates change nothing" "$after (was $version)"

out=$(sh_ m info 2>&1)
contains "$out" "Swarm: active" && contains "$out" "$cluster_id" && ok "info shows the active swarm and its cluster id" ||
	fail "info shows the active swarm" "$out"

# Restart: same node, same cluster, same state.
before=$(api m GET /nodes/"$node_id" | head -n1)
daemon_stop m
rc=$?
[ $rc -eq 0 ] && ok "the manager stops cleanly on SIGTERM" || fail "the manager stops cleanly" "rc=$rc" "$(tail -n 40 "$(daemon_log m)")"
daemon_start m --hostname node-m || fail "the manager restarts"
wait_for 20 bash -c "[ \"\$(curl -s --unix-socket $(sock m) http://localhost/info | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"Swarm\"][\"LocalNodeState\"])')\" = active ]"
again=$(api m GET /v1.41/swarm | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])' 2>/dev/null)
[ "$again" = "$cluster_id" ] && ok "after a restart the node is in the same cluster" || fail "same cluster after restart" "$again vs $cluster_id"
after=$(api m GET /nodes/"$node_id" | head -n1)
if python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for k in ("ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "Description"):
    assert a[k] == b[k], (k, a[k], b[k])
' "$before" "$after"; then ok "after a restart the node record is unchanged"; else fail "node record unchanged after restart" "$before" "$after"; fi
out=$(sh_ m swarm init 2>&1)
contains "$out" "already part of a swarm" && ok "after a restart the node needs no re-init" || fail "no re-init after restart" "$out"

# --force-new-cluster on an active manager: same cluster, same state, writable.
labels_before=$(api m GET /nodes/self | head -n1 | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["Spec"]["Labels"].items()))')
out=$(sh_ m swarm init --force-new-cluster 2>&1)
rc=$?
after_id=$(api m GET /swarm | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])' 2>/dev/null)
labels_after=$(api m GET /nodes/self | head -n1 | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["Spec"]["Labels"].items()))')
if [ $rc -eq 0 ] && [ "$after_id" = "$cluster_id" ] && [ "$labels_after" = "$labels_before" ] &&
	sh_ m node update --label-add recovered=yes self >/dev/null 2>&1; then
	ok "swarm init --force-new-cluster keeps the cluster and its state, and stays writable"
else
	fail "swarm init --force-new-cluster" "rc=$rc" "$out" "$after_id vs $cluster_id" "$labels_before" "$labels_after"
fi

# A write and a leave pipelined on one connection: the leave is served from
# inside the write's commit callback, and must not close Raft there.
python3 - "$(sock m)" "$node_id" >"$T/pipelined.out" 2>&1 <<'PY'
import json, socket, sys
path, node = sys.argv[1], sys.argv[2]
def req(method, url, body=b""):
    head = f"{method} {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall(req("GET", f"/nodes/{node}"))
data = b""
while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
    data += s.recv(65536)
version = json.loads(data.split(b"\r\n\r\n", 1)[1])["Version"]["Index"]
spec = json.dumps({"Role": "manager", "Availability": "active", "Labels": {"pipelined": "yes"}}).encode()
s.sendall(req("POST", f"/nodes/{node}/update?version={version}", spec) + req("POST", "/swarm/leave?force=1"))
out = b""
s.settimeout(20)
while out.count(b"HTTP/1.1 ") < 2:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
print(" ".join(l.decode() for l in out.split(b"\r\n") if l.startswith(b"HTTP/1.1 ")))
PY
out=$(cat "$T/pipelined.out")
if [ "$out" = "HTTP/1.1 200 OK HTTP/1.1 200 OK" ] && sh_ m info 2>&1 | grep -q "Swarm: inactive"; then
	ok "an update and a leave pipelined on one connection are both served"
else
	fail "an update and a leave pipelined on one connection" "$out" "$(tail -n 20 "$(daemon_log m)")"
fi
check "init again after the pipelined leave" sh_ m swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port"
node_id=$(sh_ m node ls -q)
cluster_id=$(api m GET /swarm | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')

out=$(sh_ m swarm leave 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "Use \`--force\` to ignore this message." && ok "leaving as the last manager needs --force" ||
	fail "leaving as the last manager needs --force" "rc=$rc" "$out"
out=$(sh_ m swarm leave --force 2>&1)
[ "$out" = "Node left the swarm." ] && ok "swarm leave --force" || fail "swarm leave --force" "$out"
[ ! -e "$T/m/state/swarm" ] && [ ! -e "$T/m/state/raft" ] && ok "leaving erases the node's swarm state and raft log" || fail "leaving erases the node's swarm state" "$(ls -R "$T/m/state")"
out=$(sh_ m info 2>&1)
contains "$out" "Swarm: inactive" && ok "after leaving the node is inactive" || fail "inactive after leave" "$out"
out=$(sh_ m swarm leave --force 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "This node is not part of a swarm" && ok "leaving twice gives Docker's error" || fail "leaving twice" "rc=$rc" "$out"

out=$(sh_ m swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" 2>&1)
new_id=$(sed -n 's/^Swarm initialized: current node (\([a-z0-9]*\)) is now a manager\.$/\1/p' <<<"$out")
new_cluster=$(api m GET /swarm | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])' 2>/dev/null)
[ -n "$new_id" ] && [ "$new_id" != "$node_id" ] && [ -n "$new_cluster" ] && [ "$new_cluster" != "$cluster_id" ] &&
	ok "init after leave makes a new node of a new cluster" || fail "init after leave" "$out"

# A node whose swarm/ was moved away by hand (or a crash while leaving) left
# an old raft log: init must start a new cluster, not resume the old log.
daemon_stop m
mv "$T/m/state/swarm" "$T/swarm-moved-away"
daemon_start m --hostname node-m || fail "restart without swarm/"
out=$(timeout 30 "$SHOAL_BIN" -H "unix://$(sock m)" swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Swarm initialized" && sh_ m node ls -q | grep -qv "$new_id" &&
	ok "init over a leftover raft log starts a new cluster" || fail "init over a leftover raft log" "rc=$rc" "$out"

# The cluster port taken at restart: the daemon still starts, reports the
# error, and can leave.
daemon_stop m
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], "w").close()
time.sleep(120)' "$port" "$T/port-held" &
holder=$!
wait_for 10 test -e "$T/port-held"
daemon_start m --hostname node-m || fail "the daemon starts although raft cannot"
info=$(api m GET /info | head -n1)
if python3 -c '
import json, sys
s = json.loads(sys.argv[1])["Swarm"]
assert s["LocalNodeState"] == "error", s
assert "127.0.0.1:" + sys.argv[2] in s["Error"] and "in use" in s["Error"], s
' "$info" "$port"; then
	ok "a node whose cluster port is taken starts in the error state and says why"
else
	fail "raft port taken at restart" "$info"
fi
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
out=$(sh_ m swarm leave --force 2>&1)
[ "$out" = "Node left the swarm." ] && ok "a node in the error state can leave" || fail "leave from the error state" "$out"

# join-token, join's argument checks, promote/demote/rm on a one-manager swarm.
# (The daemon serves neither POST /swarm/join nor DELETE /nodes yet: only the
# CLI's side and the daemon's error path are checked here.)
sh_ m swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" >/dev/null 2>&1 ||
	fail "init for the join-token and node role tests"
node_id=$(sh_ m node ls -q)
swarm_json=$(api m GET /swarm | head -n1)
wt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["JoinTokens"]["Worker"])' "$swarm_json" 2>/dev/null)
mt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["JoinTokens"]["Manager"])' "$swarm_json" 2>/dev/null)
out=$(sh_ m swarm join-token worker 2>&1)
rc=$?
want=$(printf 'To add a worker to this swarm, run the following command:\n\n    shoal swarm join --token %s 127.0.0.1:%s' "$wt" "$port")
[ $rc -eq 0 ] && [ "$out" = "$want" ] && [[ "$wt" =~ ^SHOAL-1-[a-z2-7]{52}-[a-z2-7]{26}$ ]] &&
	ok "swarm join-token worker prints Docker's join command" || fail "swarm join-token worker" "rc=$rc" "$out" "want: $want"
out=$(sh_ m swarm join-token manager 2>&1)
rc=$?
want=$(printf 'To add a manager to this swarm, run the following command:\n\n    shoal swarm join --token %s 127.0.0.1:%s' "$mt" "$port")
[ $rc -eq 0 ] && [ "$out" = "$want" ] && [[ "$mt" =~ ^SHOAL-1-[a-z2-7]{52}-[a-z2-7]{26}$ ]] && [ "$mt" != "$wt" ] &&
	ok "swarm join-token manager prints the manager token's command" || fail "swarm join-token manager" "rc=$rc" "$out" "want: $want"
out=$(sh_ m swarm join-token -q worker 2>&1)
out2=$(sh_ m swarm join-token --quiet manager 2>&1)
[ "$out" = "$wt" ] && [ "$out2" = "$mt" ] && ok "swarm join-token -q prints the token only" ||
	fail "swarm join-token -q" "$out" "$out2"
out=$(sh_ m swarm join-token boss 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "unknown role boss" ] && ok "swarm join-token with a bad role gives Docker's error" ||
	fail "swarm join-token with a bad role" "rc=$rc" "$out"
out=$(sh_ m swarm join-token 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "shoal: 'shoal swarm join-token' requires 1 argument" &&
	contains "$out" "Usage:  shoal swarm join-token [OPTIONS] (worker|manager)" &&
	ok "swarm join-token needs exactly one argument" || fail "swarm join-token without a role" "rc=$rc" "$out"

out=$(sh_ m swarm join 2>&1)
rc=$?
out2=$(sh_ m swarm join --token "$wt" 127.0.0.1:1 127.0.0.1:2 2>&1)
rc2=$?
[ $rc -eq 1 ] && [ $rc2 -eq 1 ] && contains "$out" "shoal: 'shoal swarm join' requires 1 argument" &&
	contains "$out2" "shoal: 'shoal swarm join' requires 1 argument" && contains "$out" "Usage:  shoal swarm join [OPTIONS] HOST:PORT" &&
	ok "swarm join needs exactly one address" || fail "swarm join argument count" "rc=$rc" "$out" "rc=$rc2" "$out2"
out=$(sh_ m swarm join --token "$wt" --availability bogus 127.0.0.1:1 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = 'invalid availability "bogus", only active, pause and drain are supported' ] &&
	ok "swarm join --availability bogus gives Docker's error" || fail "swarm join --availability bogus" "rc=$rc" "$out"
out=$(sh_ m swarm join --token 2>&1)
rc=$?
[ $rc -eq 125 ] && contains "$out" "flag needs an argument: --token" &&
	ok "swarm join --token without a value is a flag error" || fail "swarm join --token without a value" "rc=$rc" "$out"
out=$(sh_ m swarm join --token "$wt" --listen-addr udp://1.2.3.4:5 127.0.0.1:1 2>&1)
rc=$?
[ $rc -eq 125 ] && contains "$out" 'invalid argument "udp://1.2.3.4:5" for "--listen-addr" flag' &&
	ok "swarm join --listen-addr is checked like init's" || fail "swarm join --listen-addr bad" "rc=$rc" "$out"
out=$(sh_ m swarm --help 2>&1)
[[ "$out" == *"  join        Join a swarm as a node and/or manager"* ]] && [[ "$out" == *"  join-token  Manage join tokens"* ]] &&
	ok "swarm --help lists join and join-token" || fail "swarm --help lists join and join-token" "$out"

out=$(sh_ m node promote self 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "Node $node_id is already a manager." ] && ok "node promote of a manager says it is one already" ||
	fail "node promote of a manager" "rc=$rc" "$out"
out=$(sh_ m node demote self 2>/dev/null)
rc=$?
err=$(sh_ m node demote self 2>&1 >/dev/null)
role=$(api m GET /nodes/"$node_id" | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Spec"]["Role"])')
[ $rc -eq 1 ] && [ -z "$out" ] && [[ "$err" == "Error response from daemon: "* ]] && [ "$role" = manager ] &&
	ok "node demote of the last manager fails with the daemon's error" || fail "node demote of the last manager" "rc=$rc" "$out" "$err" "role: $role"
out=$(sh_ m node promote 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "shoal: 'shoal node promote' requires at least 1 argument" &&
	ok "node promote needs a node" || fail "node promote without a node" "rc=$rc" "$out"

out=$(sh_ m node rm nosuchnode 2>/dev/null)
rc=$?
err=$(sh_ m node rm -f nosuchnode othernode 2>&1 >/dev/null)
rc2=$?
[ $rc -eq 1 ] && [ -z "$out" ] && [ $rc2 -eq 1 ] && [ "$(grep -c '^Error response from daemon: ' <<<"$err")" -eq 2 ] &&
	ok "node rm reports every node it cannot remove" || fail "node rm of unknown nodes" "rc=$rc" "$out" "rc=$rc2" "$err"
out=$(sh_ m node rm 2>&1)
rc=$?
out2=$(sh_ m node rm --bogus x 2>&1)
rc2=$?
[ $rc -eq 1 ] && contains "$out" "shoal: 'shoal node rm' requires at least 1 argument" && [ $rc2 -eq 125 ] &&
	contains "$out2" "unknown flag: --bogus" && ok "node rm checks its arguments and flags" || fail "node rm arguments" "rc=$rc" "$out" "rc=$rc2" "$out2"
out=$(sh_ m node remove --help 2>&1)
out2=$(sh_ m node --help 2>&1)
contains "$out" "shoal node rm, shoal node remove" && contains "$out" "Force remove a node from the swarm" &&
	[[ "$out2" == *"  demote      Demote one or more nodes from manager in the swarm"* ]] &&
	[[ "$out2" == *"  promote     Promote one or more nodes to manager in the swarm"* ]] &&
	[[ "$out2" == *"  rm          Remove one or more nodes from the swarm"* ]] &&
	ok "node --help lists promote, demote and rm (alias remove)" || fail "node help" "$out" "$out2"

# node update passes role and availability on as Docker does: any case, and the
# daemon refuses other values (exit 1, not a flag error).
out=$(sh_ m node update --availability DRAIN self 2>&1)
rc=$?
avail=$(api m GET /nodes/"$node_id" | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Spec"]["Availability"])')
[ $rc -eq 0 ] && [ "$out" = self ] && [ "$avail" = drain ] && ok "node update --availability DRAIN drains the node" ||
	fail "node update --availability DRAIN" "rc=$rc" "$out" "$avail"
out=$(sh_ m node update --availability bogus self 2>&1)
rc=$?
[ $rc -eq 1 ] && [[ "$out" == 'Error response from daemon: invalid Availability: "bogus"'* ]] &&
	ok "node update --availability bogus is the daemon's error" || fail "node update --availability bogus" "rc=$rc" "$out"
check "node update --availability active" sh_ m node update --availability active self
sh_ m swarm leave --force >/dev/null 2>&1 || fail "leave after the join-token and node role tests"

daemon_stop m
rc=$?
[ $rc -eq 0 ] && ok "the daemon exits 0 after init/leave/init (no sanitizer report)" ||
	fail "clean exit after init/leave/init" "rc=$rc" "$(tail -n 40 "$(daemon_log m)")"
done_testing
