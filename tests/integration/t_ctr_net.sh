#!/usr/bin/env bash
# Container networking, on network-namespace hosts (netns.sh) so the
# machine's own network is never touched: a daemon with the default bridge
# on host 1; two containers reach each other by address over the bridge; a
# container reaches host 2, which sees host 1's address (outbound NAT);
# inspect reports the endpoint; create/start/rm cycles leave no veth, no
# address, no mount, no runc state behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

for cmd in runc busybox python3 curl nft; do
	command -v "$cmd" >/dev/null || { fail "$cmd is installed (scripts/deps.sh test)"; exit 1; }
done
[ -f "$DEMO_IMAGE" ] || { fail "the demo image exists: $DEMO_IMAGE (make demo-image)"; exit 1; }

net_setup 2 || { fail "network namespaces are set up"; exit 1; }
# Registered after net_setup's hook, so it runs first (hooks run last first).
_cleanup_hooks+=(ctr_cleanup)

# The default bridge subnet, unless the test hosts' subnet falls inside it.
bip=()
[[ "$NET_SUBNET" == 10.88.* ]] && bip=(--bip 10.89.0.1/16)
gw=10.88.0.1
[ ${#bip[@]} -gt 0 ] && gw=10.89.0.1

# alive: the daemon still runs; else a failure with its log's end, and the test ends.
alive() {
	kill -0 "$(daemon_pid n)" 2>/dev/null && return 0
	fail "the daemon is still running" "$(tail -n 40 "$(daemon_log n)")"
	done_testing
	exit 1
}

# run NAME CTR CMD...: create and start the demo image with CMD; sets CID.
run() {
	local d=$1 n=$2
	shift 2
	create "$d" "$n" "$(mkbody '{}' "$@")" && start "$d" "$CID"
}

# stdout_of NAME CTR: the container's stdout, from the logs endpoint.
stdout_of() {
	curl -sS --max-time 10 --unix-socket "$(sock "$1")" \
		"http://localhost/containers/$2/logs?stdout=1" | python3 -c '
import struct, sys
d = sys.stdin.buffer.read(); i = 0
while i + 8 <= len(d):
    n = struct.unpack(">I", d[i + 4:i + 8])[0]
    sys.stdout.write(d[i + 8:i + 8 + n].decode()); i += 8 + n'
}

# As host_daemon_start, but entering only the network namespace: runc fails
# under `ip netns exec`, which remounts /sys (no cgroup mounts in sight).
mkdir -p "$T/n"
echo 1 >"$T/n/host"
_daemon_wrap=(nsenter "--net=/var/run/netns/${NET_NS[1]}")
daemon_start n --listen-addr "${NET_IP[1]}:$NET_PORT" --advertise-addr "${NET_IP[1]}" \
	--runtime runc "${bip[@]}" || { fail "daemon starts on host 1"; exit 1; }
_daemon_wrap=()
out=$(sh_ n image load -i "$DEMO_IMAGE" 2>&1)
[ "$out" = "Loaded image: shoal-demo:latest" ] && ok "the demo image loads" || { fail "the demo image loads" "$out"; exit 1; }

# Two containers, one listening.
run n srv sh -c 'nc -l -p 5000; sleep 1000' || fail "the server container starts" "$CODE $BODY"
wait_for 5 state_is n srv running
ip_srv=$(field n srv "j['NetworkSettings']['IPAddress']")
if python3 - "$(api n GET /containers/srv/json | sed '$d')" "$gw" <<'PY'; then
import ipaddress, json, sys
j = json.loads(sys.argv[1]); gw = sys.argv[2]
ns = j["NetworkSettings"]
br = ns["Networks"]["bridge"]
net = ipaddress.ip_network(gw + "/16", strict=False)
assert ipaddress.ip_address(ns["IPAddress"]) in net and ns["IPAddress"] != gw, ns
assert ns["Gateway"] == gw and ns["IPPrefixLen"] == 16, ns
a = [int(x) for x in ns["IPAddress"].split(".")]
assert ns["MacAddress"] == "02:42:%02x:%02x:%02x:%02x" % tuple(a), ns
assert (br["IPAddress"], br["Gateway"], br["MacAddress"], br["IPPrefixLen"]) == \
    (ns["IPAddress"], ns["Gateway"], ns["MacAddress"], ns["IPPrefixLen"]), br
assert j["HostConfig"]["NetworkMode"] in ("bridge", "default"), j["HostConfig"]
PY
	ok "inspect: an address on the bridge, its gateway, Docker's MAC, Networks.bridge"
else
	fail "inspect NetworkSettings" "$(api n GET /containers/srv/json)"
fi
veth=$(on_host 1 ip -o link show master shoal0 2>/dev/null | grep -c vsh)
[ "$veth" = 1 ] && ok "one veth on the bridge for the running container" ||
	fail "veth on the bridge" "$(on_host 1 ip -o link 2>&1)"
# busybox nc -l may take a moment to listen: retry the client until the server heard it.
for _ in 1 2 3 4 5; do
	run n cli sh -c "echo hello-over-the-bridge | timeout 3 nc $ip_srv 5000" || break
	wait_for 5 state_is n "$CID" exited
	call n DELETE "/containers/cli?force=1"
	stdout_of n srv | grep -q hello-over-the-bridge && break
	sleep 0.3
done
stdout_of n srv | grep -q hello-over-the-bridge &&
	ok "a container reaches another by its address ($ip_srv)" || fail "container to container" "$(stdout_of n srv)"

# Outbound NAT: host 2 sees host 1's address as the source.
alive
ip netns exec "${NET_NS[2]}" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 6000)); s.listen(1); s.settimeout(30)
open(sys.argv[2] + ".ready", "w").close()
c, a = s.accept(); c.settimeout(5)
data = b""
try:
    while not data.endswith(b"\n"):
        b = c.recv(100)
        if not b: break
        data += b
except socket.timeout:
    pass
open(sys.argv[2], "w").write("%s %s" % (a[0], data.decode().strip()))' "${NET_IP[2]}" "$T/nat.out" &
lpid=$!
wait_for 10 test -e "$T/nat.out.ready"
run n natc sh -c "echo nat-test | timeout 5 nc ${NET_IP[2]} 6000" || fail "the NAT client starts" "$CODE $BODY"
wait_for 15 test -s "$T/nat.out"
out=$(cat "$T/nat.out" 2>/dev/null)
[ "$out" = "${NET_IP[1]} nat-test" ] && ok "outbound NAT: host 2 sees host 1's address ${NET_IP[1]}" ||
	fail "outbound NAT" "got: $out"
kill "$lpid" 2>/dev/null
wait "$lpid" 2>/dev/null

for c in srv natc; do
	call n DELETE "/containers/$c?force=1"
done

# Cycles leave nothing behind.
alive
ids=()
bad=0
for ((i = 0; i < 20; i++)); do
	if ! run n "cyc$i" sleep 1000; then
		bad=$((bad + 1))
		[ -n "$CID" ] && ids+=("$CID") && call n DELETE "/containers/$CID?force=1"
		alive
		continue
	fi
	ids+=("$CID")
	call n DELETE "/containers/$CID?force=1"
	[ "$CODE" = 204 ] || bad=$((bad + 1))
done
[ "$bad" = 0 ] && ok "20 create/start/rm -f cycles with networking" || fail "cycles" "$bad failures" "$CODE $BODY"
out=$(
	on_host 1 ip -o link show | grep -o 'vsh[0-9a-f]*' | sed 's/^/veth /'
	leftovers n runc "${ids[@]}"
)
[ -z "$out" ] && ok "nothing left: no veth, mount, file, runc state or cgroup" || fail "leftovers" "$out"
alive
# The next container gets the lowest free address again: the old ones were released.
run n again sleep 1000
[ -n "$ip_srv" ] && [ "$(field n again "j['NetworkSettings']['IPAddress']")" = "$ip_srv" ] &&
	ok "addresses are released: the next container gets $ip_srv again" ||
	fail "address release" "$(field n again "j['NetworkSettings']")"
call n DELETE "/containers/again?force=1"

alive
daemon_stop n
rc=$?
[ "$rc" = 0 ] && ok "the daemon stops cleanly" || fail "daemon stop" "rc=$rc"
grep -q "ERROR: AddressSanitizer\|LeakSanitizer\|runtime error:" "$(daemon_log n)" &&
	fail "no sanitizer report" "$(grep -A8 "Sanitizer\|runtime error" "$(daemon_log n)" | head -n 40)" ||
	ok "no sanitizer report"
done_testing
