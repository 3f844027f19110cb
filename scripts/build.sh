#!/usr/bin/env bash
# Configures and builds shoal in a build directory.
# Usage: scripts/build.sh [release|ci|fuzz] [BUILD_DIR]
#   release  optimised build (default dir: build)
#   ci       -Werror, ASan+UBSan, debug asserts, unit tests (default dir: build-ci)
#   fuzz     clang libFuzzer targets with ASan+UBSan (default dir: build-fuzz)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-release}
case "$kind" in
release) dir=${2:-$top/build}; flags=(--enable-werror); cc=${CC:-gcc} ;;
ci) dir=${2:-$top/build-ci}; flags=(--enable-werror --enable-debug --enable-sanitize); cc=${CC:-gcc} ;;
fuzz) dir=${2:-$top/build-fuzz}; flags=(--enable-fuzz --enable-sanitize --enable-debug); cc=clang ;;
*) echo "usage: scripts/build.sh [release|ci|fuzz] [BUILD_DIR]" >&2; exit 2 ;;
esac

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >/dev/null
fi
mkdir -p "$dir"
cd "$dir"
stamp="CC=$cc ${flags[*]}"
if [ ! -f Makefile ] || [ "$(cat .configure-stamp 2>/dev/null)" != "$stamp" ]; then
	"$top/configure" CC="$cc" "${flags[@]}" >configure.log 2>&1 ||
		{ tail -n 30 configure.log; exit 1; }
	echo "$stamp" >.configure-stamp
fi
jobs=$(nproc)
case "$kind" in
release) make -s -j"$jobs" shoal demo-image ;;
ci) make -s -j"$jobs" shoal unit-tests demo-image ;;
fuzz) make -s -j"$jobs" fuzz-targets ;;
esac
