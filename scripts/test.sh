#!/usr/bin/env bash
# Builds searchsync and runs every test: unit tests, then integration tests against real
# PostgreSQL servers and the Typesense test server, which the tests start themselves.
#   scripts/test.sh            everything
#   scripts/test.sh -L unit    only the unit tests (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$build_dir"
cd "$build_dir"
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" "$@"
