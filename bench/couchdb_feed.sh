#!/usr/bin/env bash
# CouchDB feed benchmark: how fast `searchsync run --once` applies a 1,000,000-change `_changes`
# feed to Typesense, against the ceiling of `curl` reading the same feed to /dev/null.
#
#   bench/couchdb_feed.sh                          # 1,000,000 changes; build-release if it exists
#   CHANGES=100000 BUILD_DIR=build bench/couchdb_feed.sh
#
# The feed comes from bench/couchdb_feed_server (generated on the fly, CouchDB 3 string
# sequences, nested documents, one change in 20 a delete); the Typesense test server runs in
# --discard mode. Everything lives in a temporary directory, removed on exit. Prints one summary
# block: machine, build, changes/s of searchsync and of curl, peak RSS and CPU per process.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
root=$PWD

load_at_start=$(cut -d' ' -f1 /proc/loadavg)
changes=${CHANGES:-1000000}
case $changes in '' | *[!0-9]* | 0) echo "CHANGES must be a positive integer, got '$changes'" >&2; exit 2 ;; esac
page_size=${PAGE_SIZE:-10000}
if [ -n "${BUILD_DIR:-}" ]; then
  case $BUILD_DIR in /*) build_dir=$BUILD_DIR ;; *) build_dir=$caller/$BUILD_DIR ;; esac
elif [ -d "$root/build-release" ]; then
  build_dir=$root/build-release
else
  build_dir=$root/build
fi
searchsync=$build_dir/searchsync
test_typesense=$build_dir/test-typesense
feed_server=$build_dir/couchdb_feed_server
for binary in "$searchsync" "$test_typesense" "$feed_server"; do
  if [ ! -x "$binary" ]; then
    echo "missing $binary; build it first:" >&2
    echo "  cmake -S $root -B $root/build-release -G Ninja -DCMAKE_BUILD_TYPE=Release" >&2
    echo "  ninja -C $root/build-release searchsync test-typesense couchdb_feed_server" >&2
    exit 2
  fi
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
[ -x /usr/bin/time ] && command -v curl >/dev/null || bash "$root/.ci/install-deps"

work=$(mktemp -d /tmp/searchsync-couch-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now_ns() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
note() { printf '%s\n' "$*" >&2; }
wait_port_file() {
  for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
  note "$2 did not start:"; cat "$3" >&2; exit 1
}

# ---- The feed ----------------------------------------------------------------------------------
"$feed_server" --changes "$changes" --port 0 --port-file "$work/feed.port" >"$work/feed.log" 2>&1 &
feed_pid=$!
pids+=("$feed_pid")
wait_port_file "$work/feed.port" couchdb_feed_server "$work/feed.log"
feed_url=http://127.0.0.1:$(cat "$work/feed.port")

# ---- The ceiling: curl reading the whole feed --------------------------------------------------
curl_url="$feed_url/animals/_changes?feed=normal&include_docs=true&since=0"
note "timing (best of 3): curl -s -o /dev/null '$curl_url'"
curl_seconds=""
feed_bytes=0
for _ in 1 2 3; do
  curl_started=$(now_ns)
  feed_bytes=$(curl -sS -o /dev/null -w '%{size_download}' "$curl_url")
  seconds=$(seconds_since "$curl_started")
  curl_seconds=$(awk -v a="${curl_seconds:-$seconds}" -v b="$seconds" 'BEGIN { print (b < a ? b : a) }')
done
curl_rate=$(per_second "$changes" "$curl_seconds")

# ---- The Typesense test server -----------------------------------------------------------------
api_key=bench-key
"$test_typesense" --port 0 --port-file "$work/ts.port" --discard --api-key "$api_key" \
  >"$work/ts.log" 2>&1 &
ts_pid=$!
pids+=("$ts_pid")
wait_port_file "$work/ts.port" test-typesense "$work/ts.log"
ts_port=$(cat "$work/ts.port")

# ---- searchsync run --once ---------------------------------------------------------------------
config=$work/bench.yaml
cat >"$config" <<YAML
typesense:
  nodes: ["http://127.0.0.1:$ts_port"]
  api_key: $api_key
state:
  path: $work/state
pipelines:
  - name: animals
    source:
      type: couchdb
      url: $feed_url
      database: animals
      page_size: $page_size
    sink:
      collection: animals
      schema:
        fields:
          - { name: name, type: string }
          - { name: species, type: string, facet: true }
          - { name: age, type: int32 }
          - { name: tags, type: "string[]" }
      batch: { max_events: 10000, max_bytes: 8MiB }
      concurrency: 2
YAML

ts_cpu_before=$(cpu_seconds "$ts_pid")
feed_cpu_before=$(cpu_seconds "$feed_pid")
run_cmd=("$searchsync" run --once -c "$config")
run_command="${run_cmd[*]}"
note "timing: /usr/bin/time -v $run_command"
run_started=$(now_ns)
set +e
/usr/bin/time -v -o "$work/time.txt" "${run_cmd[@]}" 2>"$work/run.log"
run_status=$?
set -e
run_seconds=$(seconds_since "$run_started")
ts_cpu=$(cpu_delta "$ts_cpu_before" "$(cpu_seconds "$ts_pid")")
feed_cpu=$(cpu_delta "$feed_cpu_before" "$(cpu_seconds "$feed_pid")")

if [ "$run_status" != 0 ]; then
  note "searchsync run --once exited $run_status; its log ends:"
  tail -20 "$work/run.log" >&2
  exit 1
fi
status_json=$("$searchsync" status -c "$config" --json)
acked=$(python3 -c 'import json,sys; p=json.load(sys.stdin)["pipelines"][0]
print(p["events_acked"] if p["dead_lettered"] == 0 and p["state"] == "caught_up" else -1)' \
  <<<"$status_json")
if [ "$acked" != "$changes" ]; then
  note "expected events_acked=$changes with no dead letters, status says: $status_json"
  exit 1
fi

rss_kib=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$work/time.txt")
user_cpu=$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$work/time.txt")
sys_cpu=$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$work/time.txt")
sync_rate=$(per_second "$changes" "$run_seconds")
ratio=$(awk -v a="$sync_rate" -v b="$curl_rate" 'BEGIN { printf "%.2f", a / b }')
rss_mib=$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')
feed_mib=$(awk -v b="$feed_bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

cat <<SUMMARY

== searchsync CouchDB feed benchmark
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
feed:        $changes changes ($feed_mib MiB with include_docs), generated by couchdb_feed_server
curl:        $(printf '%9s' "$curl_rate") changes/s  (${curl_seconds}s, best of 3: one feed=normal request to /dev/null)
searchsync:  $(printf '%9s' "$sync_rate") changes/s  (${run_seconds}s: run --once, page_size $page_size, events_acked=$acked)
ratio:       $ratio of curl
peak RSS:    $rss_mib MiB
CPU:         searchsync ${user_cpu}s user + ${sys_cpu}s sys, feed server ${feed_cpu}s, test-typesense ${ts_cpu}s
command:     CHANGES=$changes PAGE_SIZE=$page_size BUILD_DIR=$build_dir bench/couchdb_feed.sh
SUMMARY
