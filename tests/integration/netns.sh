# Multi-host integration tests on network namespaces. Source after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/netns.sh"
#   net_setup 3                          # hosts 1..3, see NET_NS / NET_IP
#   host_daemon_start a 1 --hostname a   # a daemon on host 1
#   sh_on a swarm init --advertise-addr "${NET_IP[1]}"
#   net_cut 1; ...; net_heal 1
#   capture_start; ...; capture_stop "$T/cap.pcap"; capture_grep "$T/cap.pcap" text
#
# Layout: one "switch" namespace holding bridge br0, and hosts h1..hN, each a
# namespace whose eth0 (a veth) is plugged into br0 as port vh<i>. Nothing is
# created in the root namespace, so its firewall never matters and the
# interface names of concurrent runs never collide. Namespaces are named
# "shl<pid of the test>-sw" and "shl<pid>-h<i>"; the subnet 10.X.0.0/24 is
# chosen from the pid too. Everything is torn down by lib.sh's cleanup however
# the test ends (failure, exit, SIGINT/SIGTERM); namespaces left by a test that
# was SIGKILLed are removed by the next net_setup (their pid is dead).
# Needs root, iproute2, nft; python3 for captures.

NET_PREFIX="shl$$-"
NET_SW="${NET_PREFIX}sw"
NET_SUBNET="10.$((16 + $$ % 200)).0"
NET_PORT=4377 # the daemon's default cluster port; each host has its own
NET_N=0
NET_NS=()
NET_IP=()
_net_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_net_py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)
_net_cap_pid=
_net_cap_file=

# net_setup N: create the switch and N hosts. Host i (1..N) is namespace
# ${NET_NS[i]}, its eth0 has ${NET_IP[i]}/24 (10.X.0.i); lo is up. Sets NET_N.
# Also creates nft table "bridge shl" in the switch used by net_cut/net_heal.
# Returns non-zero (after printing why) if anything fails.
net_setup() {
	local n=$1 i ns
	_net_reap_stale
	_cleanup_hooks+=(net_teardown)
	NET_N=$n
	ip netns add "$NET_SW" || return 1
	ip -n "$NET_SW" link set lo up &&
		ip -n "$NET_SW" link add br0 type bridge forward_delay 0 stp_state 0 &&
		ip -n "$NET_SW" link set br0 up || return 1
	ip netns exec "$NET_SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
	ip netns exec "$NET_SW" nft -f - <<-EOF || return 1
		table bridge shl {
			set cut { type ifname; }
			set pair { type ifname . ifname; }
			chain forward {
				type filter hook forward priority 0; policy accept;
				iifname @cut drop
				oifname @cut drop
				iifname . oifname @pair drop
			}
		}
	EOF
	for ((i = 1; i <= n; i++)); do
		ns="${NET_PREFIX}h$i"
		NET_NS[i]=$ns
		NET_IP[i]="$NET_SUBNET.$i"
		ip netns add "$ns" || return 1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		ip -n "$ns" link set lo up &&
			ip -n "$ns" link add eth0 type veth peer name "vh$i" netns "$NET_SW" &&
			ip -n "$ns" addr add "${NET_IP[i]}/24" dev eth0 &&
			ip -n "$ns" link set eth0 up &&
			ip -n "$NET_SW" link set "vh$i" master br0 &&
			ip -n "$NET_SW" link set "vh$i" up || return 1
	done
}

# net_teardown: kill every process in the test's namespaces (ip netns pids),
# then delete them. Idempotent; lib.sh's cleanup calls it. A test may call it
# itself to check that nothing is left behind.
net_teardown() {
	trap '' INT TERM # do not stop half-way on a second ^C
	_net_cap_pid=
	_net_destroy "$NET_PREFIX"
	trap 'exit 130' INT TERM
}

# on_host I CMD...: run CMD in host I's namespace. (Run in the background, $!
# is a subshell's pid; use `ip netns exec "${NET_NS[I]}" CMD &` if you need
# CMD's own pid.)
on_host() {
	local i=$1
	shift
	ip netns exec "${NET_NS[i]}" "$@"
}

# host_daemon_start NAME I [FLAGS...]: like daemon_start, but the daemon runs
# in host I's namespace, with state in $T/NAME/state and API socket
# $T/NAME/shoal.sock (reachable from the root namespace: it is a file). It
# listens for the cluster on ${NET_IP[I]}:$NET_PORT and advertises ${NET_IP[I]};
# FLAGS come last and may override that. daemon_stop/daemon_kill9/daemon_pid
# work on it as on any daemon.
host_daemon_start() {
	local name=$1 i=$2 rv=0
	shift 2
	mkdir -p "$T/$name"
	echo "$i" >"$T/$name/host"
	# nsenter, not `ip netns exec`: that remounts /sys, and runc then finds
	# no cgroup mount.
	_daemon_wrap=(nsenter --net="/var/run/netns/${NET_NS[i]}")
	daemon_start "$name" --listen-addr "${NET_IP[i]}:$NET_PORT" \
		--advertise-addr "${NET_IP[i]}" "$@" || rv=$?
	_daemon_wrap=()
	return $rv
}

# sh_on NAME ARGS...: the CLI against daemon NAME (the CLI itself runs in the
# root namespace and talks to the daemon over its unix socket).
sh_on() { sh_ "$@"; }

# host_can_connect I IP PORT [SECONDS]: exit 0 if a TCP connection from host I
# to IP:PORT succeeds within SECONDS (default 1). Sends nothing.
host_can_connect() {
	local i=$1 ip=$2 port=$3 secs=${4:-1}
	on_host "$i" timeout -k 1 "$secs" busybox nc -w "$secs" "$ip" "$port" </dev/null >/dev/null 2>&1
}

# net_cut I [J]: drop, in the switch, every frame from or to host I; with J,
# only the frames between I and J (both ways). Existing connections stall too.
net_cut() {
	if [ $# -ge 2 ]; then
		ip netns exec "$NET_SW" nft add element bridge shl pair \
			"{ \"vh$1\" . \"vh$2\", \"vh$2\" . \"vh$1\" }"
	else
		ip netns exec "$NET_SW" nft add element bridge shl cut "{ \"vh$1\" }"
	fi
}

# net_heal I [J]: undo net_cut I [J].
net_heal() {
	if [ $# -ge 2 ]; then
		ip netns exec "$NET_SW" nft delete element bridge shl pair \
			"{ \"vh$1\" . \"vh$2\", \"vh$2\" . \"vh$1\" }"
	else
		ip netns exec "$NET_SW" nft delete element bridge shl cut "{ \"vh$1\" }"
	fi
}

# net_heal_all: remove every cut.
net_heal_all() {
	ip netns exec "$NET_SW" nft flush set bridge shl cut &&
		ip netns exec "$NET_SW" nft flush set bridge shl pair
}

# capture_start: start capturing, in the switch, every frame that enters it
# from a host (pcap format; see pcap.py). One capture at a time. Returns once
# the capturer listens (at most 10 s).
capture_start() {
	[ -z "$_net_cap_pid" ] || { echo "# capture_start: a capture is running"; return 1; }
	_net_cap_file="$T/capture.$RANDOM.pcap"
	rm -f "$_net_cap_file.ready"
	ip netns exec "$NET_SW" "$_net_py" "$_net_here/pcap.py" capture "$_net_cap_file" \
		"$_net_cap_file.ready" --exclude br0 --skip-outgoing 2>"$_net_cap_file.log" &
	_net_cap_pid=$!
	if ! wait_for 10 test -e "$_net_cap_file.ready"; then
		echo "# capture did not start: $(cat "$_net_cap_file.log")"
		kill -9 "$_net_cap_pid" 2>/dev/null
		_net_cap_pid=
		return 1
	fi
}

# capture_pid: the running capturer's pid (empty if none).
capture_pid() { echo "$_net_cap_pid"; }

# capture_stop FILE: stop the capture, keeping the frames still queued, and
# write it to FILE (pcap). Waits at most 10 s, then kills the capturer and
# returns non-zero. Prints nothing; the capturer's "frames=N dropped=M" line
# is in FILE.log.
capture_stop() {
	local file=$1 pid=$_net_cap_pid rc
	[ -n "$pid" ] || { echo "# capture_stop: no capture running"; return 1; }
	kill -TERM "$pid" 2>/dev/null
	local deadline=$((SECONDS + 10))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill -9 "$pid" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait "$pid"
	rc=$?
	_net_cap_pid=
	mv "$_net_cap_file" "$file" && mv "$_net_cap_file.log" "$file.log" || return 1
	rm -f "$_net_cap_file.ready"
	return $rc
}

# capture_grep FILE STRING: exit 0 if STRING's bytes occur in one captured
# frame of FILE (plain bytes; a string split over two segments is missed).
capture_grep() { "$_net_py" "$_net_here/pcap.py" grep "$1" "$2"; }

# capture_count FILE: print the number of frames in FILE.
capture_count() { "$_net_py" "$_net_here/pcap.py" count "$1"; }

# net_leftovers [PREFIX]: print the namespaces named PREFIX* (default: this
# test's) and the pids still in them; prints nothing if all is gone.
net_leftovers() {
	local prefix=${1:-$NET_PREFIX} ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix"); do
		echo "$ns: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
	done
}

# _net_destroy PREFIX: kill the processes in, then delete, namespaces PREFIX*.
_net_destroy() {
	local prefix=$1 ns pids
	local all
	all=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix")
	[ -n "$all" ] || return 0
	for _ in $(seq 1 100); do # at most ~5 s
		pids=
		for ns in $all; do
			pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
		done
		[ -z "${pids// /}" ] && break
		# shellcheck disable=SC2086
		kill -9 $pids 2>/dev/null
		sleep 0.05
	done
	for ns in $all; do
		ip netns del "$ns" 2>/dev/null
	done
}

# _net_reap_stale: destroy namespaces of earlier runs whose test process is
# gone (SIGKILLed tests cannot clean up after themselves).
_net_reap_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^shl[0-9]+-'); do
		pid=${ns#shl}
		pid=${pid%%-*}
		_net_alive "$pid" || _net_destroy "shl$pid-"
	done
}

# _net_alive PID: PID exists and is not a zombie.
_net_alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ "$st" != Z* ]]
}
