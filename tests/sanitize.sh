#!/usr/bin/env bash
# The unit tests under sanitizers, as CI runs them (after tests/fuzz/run.sh):
#   address  ASan+UBSan: unit_tests in the fuzz build directory (clang). Its libraries are already
#            instrumented for the fuzz targets, so this step compiles only the tests.
#   thread   TSan: unit_tests in build-tsan (gcc, -O1: quick to build, still sees every race the
#            tests run into).
#   tests/sanitize.sh                both
#   tests/sanitize.sh thread         one of them
# Extra arguments after `--` go to unit_tests (a Catch2 filter, e.g. "[runner]").
# Any report stops the run with exit 1 and the report on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

kinds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  kinds+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
[ ${#kinds[@]} -eq 0 ] && kinds=(address thread)

launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

for kind in "${kinds[@]}"; do
  case "$kind" in
    address)
      # The same configuration as tests/fuzz/run.sh, so the two share one build.
      dir=${FUZZ_BUILD_DIR:-build-fuzz}
      cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None \
        -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DCMAKE_CXX_COMPILER=clang++ \
        -DSEARCHSYNC_FUZZ=ON "${launcher[@]}" >/dev/null
      export ASAN_OPTIONS=abort_on_error=1:strict_string_checks=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      ;;
    thread)
      dir=${TSAN_BUILD_DIR:-build-tsan}
      cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" \
        -DSEARCHSYNC_SANITIZE=thread "${launcher[@]}" >/dev/null
      export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
      ;;
    *)
      echo "tests/sanitize.sh: unknown sanitizer '$kind' (address or thread)" >&2
      exit 2
      ;;
  esac
  log="$dir/sanitize-build.log"
  echo "unit tests under $kind: building in $dir"
  if ! cmake --build "$dir" --target unit_tests >"$log" 2>&1; then
    tail -60 "$log"
    exit 1
  fi
  started=$(date +%s)
  "$dir/unit_tests" "$@"
  echo "unit tests under $kind: clean in $(($(date +%s) - started))s"
done
