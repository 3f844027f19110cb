# A Docker Swarm cluster on test hosts, for the benchmarks that compare with
# it (bench/services.sh, bench/update.sh). Source after tests/integration
# lib.sh and netns.sh, with:
#   DKH=(0 H1 H2 ...)   the test hosts of dockerd 1..N (index 0 unused)
#   DW_CGROUP           a cgroup name prefix of this run
#   DC_TIMEOUT          seconds a docker CLI call may take (default 60)
# dockerd I lives in $DC/I (data, exec root, socket, pid file, log) and puts
# its containers in cgroup "$DW_CGROUP-cI". Register dcluster_cleanup as a
# cleanup hook.
DC=$T/dcluster
dc_n() { echo $((${#DKH[@]} - 1)); }
dc_cg() { echo "$DW_CGROUP-c$1"; }
dc() { local i=$1; shift; DOCKER_HOST="unix://$DC/$i/docker.sock" timeout "${DC_TIMEOUT:-60}" docker "$@"; }
dc_pid() { cat "$DC/$1/docker.pid" 2>/dev/null; }
# dc_start I: dockerd I on its host; waits for its API.
dc_start() {
	local i=$1 d=$DC/$1
	mkdir -p "$d"
	# in a subshell: no job of ours (no notice when cleanup kills it)
	(nsenter --net="/var/run/netns/${NET_NS[${DKH[i]}]}" dockerd --data-root "$d/data" \
		--exec-root "$d/exec" -H "unix://$d/docker.sock" --pidfile "$d/docker.pid" \
		--cgroup-parent "$(dc_cg "$i")" --iptables=false --bridge=none >>"$d/dockerd.log" 2>&1 &)
	wait_for 60 dc "$i" version
}
# dc_ready: every dockerd's node is Ready, as dockerd 1 sees it.
dc_ready() { [ "$(dc 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$')" = "$(dc_n)" ]; }
# dc_kill I: kill -9 of dockerd I, its containerd and shims (all in its
# host's namespace) and its containers (in its cgroups).
dc_kill() {
	local i=$1
	ip netns pids "${NET_NS[${DKH[i]}]}" 2>/dev/null | xargs -r kill -9 2>/dev/null
	cat /sys/fs/cgroup/*/"$(dc_cg "$i")"/*/cgroup.procs 2>/dev/null | sort -u | xargs -r kill -9 2>/dev/null
	for _ in $(seq 1 100); do [ -z "$(ip netns pids "${NET_NS[${DKH[i]}]}" 2>/dev/null)" ] && break; sleep 0.05; done
	rm -f "$DC/$i/docker.pid"
}
# dcluster_cleanup: containers removed, every dockerd killed, their cgroups
# and mounts gone. Idempotent.
dcluster_cleanup() {
	local i ids m
	[ -d "$DC" ] || return 0
	for i in $(seq 1 "$(dc_n)"); do
		[ -f "$DC/$i/docker.pid" ] || continue
		ids=$(dc "$i" ps -aq 2>/dev/null)
		# shellcheck disable=SC2086 # one id per word
		[ -n "$ids" ] && dc "$i" rm -f $ids >/dev/null 2>&1
	done
	for i in $(seq 1 "$(dc_n)"); do
		dc_kill "$i"
		find /sys/fs/cgroup/*/"$(dc_cg "$i")" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	for m in $(awk -v p="$DC/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	return 0
}
