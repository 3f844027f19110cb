# Helpers shared by the benchmarks: the release build, timing, and the runc
# floor (N sequential `runc run -d` of the demo's process). Source it from a
# bench script after `top` is set; it sets no trap (each script cleans up).
#
#   bench_build                 deps, then the release build in $SHOAL_BUILD
#                               (default $top/build); sets SHOAL_BIN, BENCH_DEMO
#   floor_setup DIR             a busybox bundle in DIR/bundle, runc root DIR/runc
#   floor_start N PREFIX        N sequential runc run -d; prints the seconds
#   floor_rm                    runc delete -f of every floor container
#   median < values             the median of one number per line
#   now; since T0               epoch seconds; seconds since T0 (2 decimals)
#   bench_sections USAGE NAME... -- ARG...
#                               `sections` from ARGs (none: all), each a NAME or
#                               all, else USAGE and exit 2; then `want NAME`
#   bench_netns PREFIX          tests/integration's lib.sh and netns.sh, with $T
#                               a directory of our own, /tmp/shoal-PREFIX.*
#   log MSG; die MSG            progress on stdout; a reason on stderr, exit 1
#   ctr_total DAEMON...         runc containers of these shoal daemons (in $T)

bench_build() {
	local build=${SHOAL_BUILD:-$top/build}
	"$top/scripts/deps.sh" bench >/dev/null || { echo "# scripts/deps.sh bench failed" >&2; return 1; }
	"$top/scripts/build.sh" release "$build" >/dev/null || { echo "# release build in $build failed" >&2; return 1; }
	SHOAL_BIN=$(cd "$build" && pwd)/shoal
	BENCH_DEMO=$(dirname "$SHOAL_BIN")/shoal-demo.tar
	export SHOAL_BIN
}

_floor_dir=
floor_setup() {
	_floor_dir=$1
	local bundle=$_floor_dir/bundle
	mkdir -p "$bundle/rootfs/bin" "$_floor_dir/runc" || return 1
	cp /bin/busybox "$bundle/rootfs/bin/busybox" && ln -sf busybox "$bundle/rootfs/bin/sleep" || return 1
	(cd "$bundle" && runc spec) || return 1
	python3 - "$bundle/config.json" <<-'PY'
		import json, sys
		p = sys.argv[1]
		c = json.load(open(p))
		c["process"]["terminal"] = False
		c["process"]["args"] = ["sleep", "100000"]
		c["root"]["readonly"] = False
		json.dump(c, open(p, "w"))
	PY
}

floor_start() { # N PREFIX -> seconds
	local t0 t1 i
	t0=$(date +%s.%N)
	for i in $(seq 1 "$1"); do
		runc --root "$_floor_dir/runc" run -d --bundle "$_floor_dir/bundle" "$2$i" </dev/null >/dev/null 2>&1
	done
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

floor_rm() {
	local id
	[ -n "$_floor_dir" ] && [ -d "$_floor_dir/runc" ] || return 0
	for id in $(runc --root "$_floor_dir/runc" list -q 2>/dev/null); do
		runc --root "$_floor_dir/runc" delete -f "$id" >/dev/null 2>&1
	done
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

bench_sections() {
	local usage=$1 s n ok
	local -a names=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do names+=("$1"); shift; done
	shift
	sections=("$@")
	[ ${#sections[@]} -eq 0 ] && sections=(all)
	for s in "${sections[@]}"; do
		ok=0
		for n in all "${names[@]}"; do [ "$s" = "$n" ] && ok=1; done
		[ $ok = 1 ] || { echo "usage: $usage" >&2; exit 2; }
	done
}
want() {
	local s
	for s in "${sections[@]}"; do [ "$s" = all ] || [ "$s" = "$1" ] && return 0; done
	return 1
}

# Sourced here, so lib.sh's cleanup trap and hooks are the caller's. The
# directory is not /tmp/shoal-it.*, which test runs may sweep.
bench_netns() {
	. "$top/tests/integration/lib.sh"
	. "$top/tests/integration/netns.sh"
	rmdir "$T" && T=$(mktemp -d "/tmp/shoal-$1.XXXXXX") && chmod 755 "$T"
}
log() { echo "# [$SECONDS s] $*"; }
die() { echo "# $*" >&2; exit 1; }

ctr_total() {
	local d n=0 r
	for d in "$@"; do
		r=$T/$d/state/containers/.runc
		[ -d "$r" ] && n=$((n + $(runc --root "$r" list -q 2>/dev/null | wc -l)))
	done
	echo "$n"
}
