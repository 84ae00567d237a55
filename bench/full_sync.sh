#!/usr/bin/env bash
# Full-sync benchmark: how fast `searchsync run --once` copies a PostgreSQL table into Typesense,
# against the ceiling of PostgreSQL itself writing every row as JSON (COPY ... row_to_json).
#
#   bench/full_sync.sh                      # 1,000,000 rows, build-release if it exists, else build
#   ROWS=100000 BUILD_DIR=build bench/full_sync.sh
#   NODE=0 bench/full_sync.sh               # without the Node peer (bench/node_sync.js)
#   NODE_MODULES=DIR bench/full_sync.sh     # pg and typesense from DIR, not tests/node/node_modules
#
# Starts a throwaway PostgreSQL and the Typesense test server in --discard mode (validates every
# document and answers like Typesense, stores nothing) in a temporary directory, removed on exit.
# Prints one summary block: machine, build, rows, COPY rows/s, the Node peer's (bench/node_sync.js)
# and searchsync's rows/s, peak RSS and CPU.
set -euo pipefail
source "$(dirname "$0")/postgres_table.sh"

# ---- The ceiling: PostgreSQL writing every row as JSON -----------------------------------------
copy_sql="COPY (SELECT row_to_json(t) FROM products t) TO STDOUT"
# The ceiling is the best of three runs, after one that warms the cache (the sync finds it warm
# too).
psql -c "$copy_sql" >/dev/null
note "timing (best of 3): psql -c \"$copy_sql\" > /dev/null"
copy_seconds=""
for _ in 1 2 3; do
  copy_started=$(now_ns)
  psql -c "$copy_sql" >/dev/null
  seconds=$(seconds_since "$copy_started")
  copy_seconds=$(awk -v a="${copy_seconds:-$seconds}" -v b="$seconds" 'BEGIN { print (b < a ? b : a) }')
done
copy_rate=$(per_second "$rows" "$copy_seconds")

# ---- The Typesense test server -----------------------------------------------------------------
start_test_typesense --discard

# ---- The peer: the Node script a user writes from the Typesense guide --------------------------
node_modules=${NODE_MODULES:-$root/tests/node/node_modules}
node_rate=""
if [ "${NODE:-1}" != 0 ]; then
if ! command -v node >/dev/null || [ ! -d "$node_modules/pg" ] || [ ! -d "$node_modules/typesense" ]; then
  bash "$root/.ci/install-deps"
fi
node_cmd=(node "$root/bench/node_sync.js" "postgresql://postgres@127.0.0.1:$pg_port/postgres"
  "http://127.0.0.1:$ts_port" "$api_key" products_node)
note "timing: /usr/bin/time -v ${node_cmd[*]}"
ts_cpu_before=$(cpu_seconds "$ts_pid")
pg_cpu_before=$(cpu_seconds "$postmaster" children)
node_started=$(now_ns)
if ! NODE_PATH=$node_modules /usr/bin/time -v -o "$work/node_time.txt" "${node_cmd[@]}" \
  >"$work/node.log" 2>&1; then
  note "the Node peer failed; its output ends:"
  tail -20 "$work/node.log" >&2
  exit 1
fi
node_seconds=$(seconds_since "$node_started")
node_ts_cpu=$(awk -v a="$ts_cpu_before" -v b="$(cpu_seconds "$ts_pid")" 'BEGIN { printf "%.2f", b - a }')
node_pg_cpu=$(awk -v a="$pg_cpu_before" -v b="$(cpu_seconds "$postmaster" children)" \
  'BEGIN { printf "%.2f", b - a }')
node_imported=$(sed -n 's/^imported=\([0-9]*\) failed=0$/\1/p' "$work/node.log")
if [ "$node_imported" != "$rows" ]; then
  note "the Node peer imported '${node_imported}' documents, expected $rows: $(tail -1 "$work/node.log")"
  exit 1
fi
fi

# ---- searchsync run --once ---------------------------------------------------------------------
config=$work/bench.yaml
write_products_config

ts_cpu_before=$(cpu_seconds "$ts_pid")
pg_cpu_before=$(cpu_seconds "$postmaster" children)
run_cmd=("$searchsync" run --once -c "$config")
run_command="${run_cmd[*]}"
note "timing: /usr/bin/time -v $run_command"
run_started=$(now_ns)
set +e
/usr/bin/time -v -o "$work/time.txt" "${run_cmd[@]}" 2>"$work/run.log"
run_status=$?
set -e
run_seconds=$(seconds_since "$run_started")
ts_cpu=$(awk -v a="$ts_cpu_before" -v b="$(cpu_seconds "$ts_pid")" 'BEGIN { printf "%.2f", b - a }')
pg_cpu=$(awk -v a="$pg_cpu_before" -v b="$(cpu_seconds "$postmaster" children)" \
  'BEGIN { printf "%.2f", b - a }')

if [ "$run_status" != 0 ]; then
  note "searchsync run --once exited $run_status; its log ends:"
  tail -20 "$work/run.log" >&2
  exit 1
fi
status_json=$("$searchsync" status -c "$config" --json)
acked=$(python3 -c 'import json,sys; p=json.load(sys.stdin)["pipelines"][0]
print(p["events_acked"] if p["dead_lettered"] == 0 and p["state"] == "caught_up" else -1)' \
  <<<"$status_json")
if [ "$acked" != "$rows" ]; then
  note "expected events_acked=$rows with no dead letters, status says: $status_json"
  exit 1
fi

rss_kib=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$work/time.txt")
user_cpu=$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$work/time.txt")
sys_cpu=$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$work/time.txt")
sync_rate=$(per_second "$rows" "$run_seconds")
ratio=$(awk -v a="$sync_rate" -v b="$copy_rate" 'BEGIN { printf "%.2f", a / b }')
rss_mib=$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')
cpu_per_million=$(awk -v u="$user_cpu" -v s="$sys_cpu" -v n="$rows" 'BEGIN { printf "%.2f", (u + s) * 1e6 / n }')
node_line="skipped (NODE=0)"
node_ratio_text=""
node_cpu_line=""
if [ "${NODE:-1}" != 0 ]; then
  node_rate=$(per_second "$rows" "$node_seconds")
  node_ratio=$(awk -v a="$sync_rate" -v b="$node_rate" 'BEGIN { printf "%.2f", a / b }')
  node_copy_ratio=$(awk -v a="$node_rate" -v b="$copy_rate" 'BEGIN { printf "%.2f", a / b }')
  node_rss_mib=$(awk -v k="$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' \
    "$work/node_time.txt")" 'BEGIN { printf "%.1f", k / 1024 }')
  node_cpu=$(awk '/User time|System time/ { s += $NF } END { printf "%.2f", s }' "$work/node_time.txt")
  node_line="$(printf '%9s' "$node_rate") rows/s  (${node_seconds}s: bench/node_sync.js, $node_copy_ratio of COPY, peak RSS $node_rss_mib MiB)"
  node_ratio_text=", ${node_ratio}x node (target >= 3)"
  node_cpu_line="
CPU (node):  node ${node_cpu}s, postgres ${node_pg_cpu}s, test-typesense ${node_ts_cpu}s"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
invocation="ROWS=$rows BUILD_DIR=$build_dir${NODE:+ NODE=$NODE} bench/full_sync.sh"

cat <<SUMMARY

== searchsync full-sync benchmark
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
postgres:    $pg_version, fsync=off, table products with $rows rows
rows:        $rows
COPY:        $(printf '%9s' "$copy_rate") rows/s  (${copy_seconds}s, best of 3: psql -c "$copy_sql" > /dev/null)
node:        $node_line
searchsync:  $(printf '%9s' "$sync_rate") rows/s  (${run_seconds}s: run --once, events_acked=$acked)
ratio:       $ratio of COPY (target >= 0.70)$node_ratio_text
peak RSS:    $rss_mib MiB (target <= 100)
CPU:         searchsync ${user_cpu}s user + ${sys_cpu}s sys ($cpu_per_million s per million rows), postgres ${pg_cpu}s, test-typesense ${ts_cpu}s$node_cpu_line
command:     $invocation
timed:       /usr/bin/time -v $run_command
SUMMARY
