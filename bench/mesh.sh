#!/usr/bin/env bash
# Routing mesh benchmark: what the mesh's TCP proxy costs against a direct
# connection, on loopback: request/response latency (p50/p99 of 100 B
# requests and replies on one connection), bulk throughput (one stream from a
# backend), and new connections per second (connect, one request, close).
#
# bench/mesh_bench runs the backends and the mesh on one uv loop in a thread,
# the client in another; see its header. The reference is the same client
# connecting straight to the backend, in the same run.
# Usage: bench/mesh.sh [REQUESTS [BULK_MIB [CONNECTIONS]]]   (default 20000 1024 5000;
# ROUNDS=3: the median of that many runs; SHOAL_BUILD=DIR: the release build's
# directory, default build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. "$top/bench/lib.sh"
bench_build
build=$(dirname "$SHOAL_BIN")
make -s -C "$build" bench/mesh_bench
rounds=${ROUNDS:-3}

work=$(mktemp -d /tmp/shoal-bench-mesh.XXXXXX)
trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$rounds"); do
	"$build/bench/mesh_bench" "$@" >"$work/table$r" 2>"$work/raw$r"
done

med() { # KEY FIELD -> the median over the rounds
	cat "$work"/raw* | awk -v k="$1" -v f="$2" '$1 == "=" && $2 == k { print $f }' | median
}
row() { # KEY LABEL UNIT
	local d m
	d=$(med "$1" 3)
	m=$(med "$1" 4)
	printf '%-30s %12s %12s %-6s %8s\n' "$2" "$d" "$m" "$3" \
		"$(awk -v a="$m" -v b="$d" 'BEGIN { printf "%.2f", a / b }')"
}
printf '\nshoal routing mesh vs direct connection (loopback; median of %s runs)\n\n' "$rounds"
printf '%-30s %12s %12s %-6s %8s\n' "measure" "direct" "mesh" "unit" "mesh/dir"
row p50 "latency p50 (100 B req/rep)" us
row p99 "latency p99 (100 B req/rep)" us
row mibs "throughput (one stream)" MiB/s
row conns "connections (req/rep, close)" conn/s
echo
tail -n 1 "$work/table1"
