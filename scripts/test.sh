#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root) and runs the whole
# test suite: format check, unit tests, integration tests and fuzz targets,
# built with -Werror under ASan+UBSan. Ends with "N passed, N failed".
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# A failed set-up or build is one failed test, so the run still ends with its count.
setup_failed() {
	echo "# set-up or build failed: $1"
	echo "0 passed, 1 failed"
	exit 1
}
scripts/deps.sh test || setup_failed "installing packages (scripts/deps.sh test)"
scripts/build.sh ci || setup_failed "the -Werror ASan/UBSan build (scripts/build.sh ci)"
scripts/build.sh fuzz || setup_failed "the fuzz build (scripts/build.sh fuzz)"
# ASan: report leaks (LeakSanitizer) and fail on any error; UBSan: stop at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec tests/run build-ci build-fuzz
