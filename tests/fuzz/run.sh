#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a bounded time on a copy of
# its corpus, tests/fuzz/corpus/<target>/.
#   tests/fuzz/run.sh                   every target, FUZZ_SECONDS (default 20) each
#   tests/fuzz/run.sh cron config       only these targets
# FUZZ_BUILD_DIR (default build-fuzz) is the build directory. New inputs that reach new code stay
# in FUZZ_WORK (default $FUZZ_BUILD_DIR/fuzz-work); the repository's corpora are not modified.
# A crash stops the run with exit 1; libFuzzer writes the input to
# $FUZZ_WORK/crash-<target>-<sha1>. Add it to tests/fuzz/corpus/<target>/ with the fix: the
# unit tests replay every corpus file.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
work=${FUZZ_WORK:-$build_dir/fuzz-work}
seconds=${FUZZ_SECONDS:-20}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for file in tests/fuzz/*_fuzz.cc; do
    name=$(basename "$file" _fuzz.cc)
    targets+=("$name")
  done
fi

launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# -O1 and line tables only, as fuzzing builds usually are: quick to build, fast enough to run,
# and stack traces still name the line.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" \
  -DCMAKE_CXX_COMPILER=clang++ -DSEARCHSYNC_FUZZ=ON "${launcher[@]}" >/dev/null
mkdir -p "$work"
if ! cmake --build "$build_dir" --target "${targets[@]/#/fuzz_}" >"$work/build.log" 2>&1; then
  tail -60 "$work/build.log"
  exit 1
fi
summary=()
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  log="$work/$target.log"
  echo "fuzz_$target: ${seconds}s"
  # -timeout: one input taking this long is a hang, reported as a crash.
  # -rss_limit_mb: an input that makes the parser hold this much is a crash too.
  status=0
  "$build_dir/fuzz_$target" "$corpus" "tests/fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="$work/crash-$target-" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  summary+=("fuzz_$target: ${runs:-?} executions, exit $status")
  if [ "$status" -ne 0 ]; then
    tail -60 "$log"
    printf '%s\n' "${summary[@]}"
    echo "fuzz_$target failed: the input is in $work/crash-$target-*" >&2
    exit 1
  fi
done
printf '%s\n' "${summary[@]}"
