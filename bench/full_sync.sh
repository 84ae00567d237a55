#!/usr/bin/env bash
# Full-sync benchmark: how fast `searchsync run --once` copies a PostgreSQL table into Typesense,
# against the ceiling of PostgreSQL itself writing every row as JSON (COPY ... row_to_json).
#
#   bench/full_sync.sh                      # 1,000,000 rows, build-release if it exists, else build
#   ROWS=100000 BUILD_DIR=build bench/full_sync.sh
#
# Starts a throwaway PostgreSQL and the Typesense test server in --discard mode (validates every
# document and answers like Typesense, stores nothing) in a temporary directory, removed on exit.
# Prints one summary block: machine, build, rows, COPY rows/s, searchsync rows/s and peak RSS.
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
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
invocation="ROWS=$rows BUILD_DIR=$build_dir bench/full_sync.sh"

cat <<SUMMARY

== searchsync full-sync benchmark
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
postgres:    $pg_version, fsync=off, table products with $rows rows
rows:        $rows
COPY:        $(printf '%9s' "$copy_rate") rows/s  (${copy_seconds}s, best of 3: psql -c "$copy_sql" > /dev/null)
searchsync:  $(printf '%9s' "$sync_rate") rows/s  (${run_seconds}s: run --once, events_acked=$acked)
ratio:       $ratio of COPY (target >= 0.50)
peak RSS:    $rss_mib MiB (target < 150)
CPU:         searchsync ${user_cpu}s user + ${sys_cpu}s sys, postgres ${pg_cpu}s, test-typesense ${ts_cpu}s
command:     $invocation
timed:       /usr/bin/time -v $run_command
SUMMARY
