#!/usr/bin/env bash
# Smoke test of netns.sh: hosts on a private switch, daemons inside them,
# cutting and healing a host, capturing the frames on the switch, and leaving
# nothing behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

if net_setup 3; then
	ok "net_setup 3 creates a switch and three hosts"
else
	fail "net_setup 3" "$(ip netns list)"
	exit 1
fi
ip1=${NET_IP[1]}
out=$(on_host 1 ip -4 -o addr show dev eth0)
contains "$out" "$ip1/24" && ok "host 1 has ${NET_IP[1]}/24 on eth0" || fail "host 1's address" "$out"
check "host 3 pings host 1 through the switch" on_host 3 busybox ping -c 1 -W 2 "$ip1"

host=shl-host-$$-$RANDOM$RANDOM
host_daemon_start d1 1 --hostname "$host" || { fail "daemon on host 1 starts"; exit 1; }
host_daemon_start d2 2 --hostname "$host-2" || { fail "daemon on host 2 starts"; exit 1; }
ok "daemons start in host 1 and host 2"

if capture_start; then ok "capture_start"; else fail "capture_start"; fi
cap_pid=$(capture_pid)

out=$(sh_on d1 swarm init --advertise-addr "$ip1" 2>&1)
contains "$out" "Swarm initialized" && ok "swarm init on host 1 advertising $ip1" || fail "swarm init on host 1" "$out"
out=$(sh_on d1 node ls 2>&1)
[[ "$(sed -n 2p <<<"$out")" =~ \*\ +$host\ +Ready\ +Active\ +Leader ]] &&
	ok "node ls on host 1 shows it as the Leader" || fail "node ls on host 1" "$out"
out=$(sh_on d1 node inspect self 2>&1)
contains "$out" "\"Addr\": \"$ip1:$NET_PORT\"" && ok "the manager's address is host 1's IP and cluster port" ||
	fail "the manager's address" "$out"

listening() { on_host 1 ss -Htln "sport = :$1" | grep -q .; }
wait_for 10 listening "$NET_PORT" || fail "host 1 listens on its cluster port"
check "host 2 reaches host 1's cluster port" wait_for 5 host_can_connect 2 "$ip1" "$NET_PORT"

# Positive control for the capture: a marker sent in the clear from h2 to h1.
marker="shl-marker-$$-$RANDOM$RANDOM"
on_host 1 timeout 10 busybox nc -l -p 5555 >"$T/received" &
nc_pid=$!
wait_for 5 listening 5555 || fail "a listener on host 1 port 5555"
on_host 2 timeout 5 bash -c 'printf "%s\n" "$1" >"/dev/tcp/$2/5555"' _ "$marker" "$ip1"
wait "$nc_pid"
[ "$(cat "$T/received")" = "$marker" ] && ok "a marker sent from host 2 arrives on host 1" ||
	fail "a marker sent from host 2 arrives on host 1" "received: $(cat "$T/received")"

net_cut 1 || fail "net_cut 1"
if ! host_can_connect 2 "$ip1" "$NET_PORT" && ! host_can_connect 3 "$ip1" "$NET_PORT" &&
	! on_host 3 busybox ping -c 1 -W 1 "$ip1" >/dev/null 2>&1; then
	ok "after net_cut 1, hosts 2 and 3 cannot reach host 1"
else
	fail "after net_cut 1, hosts 2 and 3 cannot reach host 1" "$(ip netns exec "$NET_SW" nft list ruleset)"
fi
check "after net_cut 1, host 3 still reaches host 2" on_host 3 busybox ping -c 1 -W 2 "${NET_IP[2]}"
net_heal 1 || fail "net_heal 1"
check "after net_heal 1, host 2 reaches host 1's cluster port again" wait_for 5 host_can_connect 2 "$ip1" "$NET_PORT"
net_cut 1 2
if ! host_can_connect 2 "$ip1" "$NET_PORT" && host_can_connect 3 "$ip1" "$NET_PORT"; then
	ok "net_cut 1 2 cuts host 2 from host 1 only"
else
	fail "net_cut 1 2 cuts host 2 from host 1 only"
fi
net_heal 1 2
check "after net_heal 1 2, host 2 reaches host 1 again" wait_for 5 host_can_connect 2 "$ip1" "$NET_PORT"

out=$(sh_on d1 node ls 2>&1)
contains "$out" "$host" || fail "node ls during the capture" "$out"
if capture_stop "$T/cap.pcap"; then ok "capture_stop"; else fail "capture_stop" "$(cat "$T/cap.pcap.log" 2>/dev/null)"; fi
frames=$(capture_count "$T/cap.pcap")
[ "${frames:-0}" -gt 10 ] && ok "the capture holds frames ($frames; $(cat "$T/cap.pcap.log"))" ||
	fail "the capture holds frames" "frames: $frames" "$(cat "$T/cap.pcap.log" 2>/dev/null)"
capture_grep "$T/cap.pcap" "$marker" && ok "capture_grep finds the marker sent in the clear" ||
	fail "capture_grep finds the marker sent in the clear"
capture_grep "$T/cap.pcap" "$host"
rc=$?
[ $rc -eq 1 ] && ok "the daemon's hostname never crosses the switch in the clear" ||
	fail "the daemon's hostname never crosses the switch in the clear" "capture_grep rc=$rc"
if [ -n "$cap_pid" ] && ! kill -0 "$cap_pid" 2>/dev/null && [ -z "$(ip netns pids "$NET_SW")" ]; then
	ok "the capture process is gone"
else
	fail "the capture process is gone" "pid $cap_pid; in the switch: $(ip netns pids "$NET_SW" | tr '\n' ' ')"
fi

daemon_stop d2
rc=$?
[ $rc -eq 0 ] && ok "the daemon on host 2 stops cleanly" || fail "the daemon on host 2 stops cleanly" "rc=$rc" "$(tail -n 20 "$(daemon_log d2)")"
daemon_stop d1
rc=$?
[ $rc -eq 0 ] && ok "the daemon on host 1 stops cleanly" || fail "the daemon on host 1 stops cleanly" "rc=$rc" "$(tail -n 20 "$(daemon_log d1)")"

# A straggler in host 3, not a child of this shell (as a daemon's child would be).
(ip netns exec "${NET_NS[3]}" sleep 60 >/dev/null 2>&1 & echo $! >"$T/straggler")
straggler=$(cat "$T/straggler")
wait_for 5 bash -c "ip netns pids ${NET_NS[3]} | grep -qx $straggler"
gone() { # dead, or a zombie its new parent has not reaped yet
	local st
	st=$(ps -o stat= -p "$1") || return 0
	[[ "$st" == Z* ]]
}
net_teardown
wait_for 5 gone "$straggler"
left=$(net_leftovers)
if [ -z "$left" ] && gone "$straggler"; then
	ok "net_teardown kills what runs in the hosts and deletes every namespace"
else
	fail "net_teardown leaves nothing behind" "$left"
fi
done_testing
