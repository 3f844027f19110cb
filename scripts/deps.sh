#!/usr/bin/env bash
# Installs what shoal needs to build, test, run and benchmark on Debian (bookworm). Run as root.
# Idempotent: packages already present are left alone, so repeated runs are fast.
set -euo pipefail

BUILD="build-essential autoconf automake libtool pkg-config clang-format
  libuv1-dev libraft-dev libsodium-dev libmsgpack-dev libjansson-dev
  libhttp-parser-dev libcurl4-openssl-dev libarchive-dev
  busybox-static"   # the demo image is built from it at build time
TEST="libcmocka-dev clang libclang-rt-14-dev iproute2 procps python3 curl
  docker-registry skopeo openssl"
RUN="runc busybox-static nftables"

want="$BUILD"
case "${1:-build}" in
build) ;;
test) want="$BUILD $TEST $RUN" ;;
run) want="$BUILD $RUN" ;;
bench) want="$BUILD $RUN iproute2 procps python3 curl docker.io" ;; # Docker Engine is the benchmarks' reference
*) echo "usage: $0 [build|test|run|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
# The docker CLI is a test client; the machine may have one already.
if [ "${1:-build}" = test ] && ! command -v docker >/dev/null 2>&1; then
	missing="$missing docker.io"
fi
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
