#!/usr/bin/env bash
# Reindex benchmark: a zero-downtime reindex of a PostgreSQL table (`searchsync reindex`, run
# standalone: the live stream runs beside the full read into a new collection, then the alias
# moves) beside a plain full sync of the same table (`searchsync run --once` into an empty index).
#
#   bench/reindex.sh                        # 1,000,000 rows, build-release if it exists, else build
#   ROWS=100000 BUILD_DIR=build bench/reindex.sh
#
# Starts a throwaway PostgreSQL and the Typesense test server (storing documents: a reindex
# verifies the new collection's document count) in a temporary directory, removed on exit.
# Prints one summary block: machine, build, rows, wall time and peak RSS of each.
set -euo pipefail
source "$(dirname "$0")/postgres_table.sh"

# ---- The Typesense test server -----------------------------------------------------------------
start_test_typesense

# ---- searchsync run --once ---------------------------------------------------------------------
config=$work/bench.yaml
write_products_config

# Runs "$@" under /usr/bin/time -v; sets seconds and rss_mib, or exits with the log's tail.
timed() {
  local name=$1
  shift
  note "timing: /usr/bin/time -v $*"
  local started
  started=$(now_ns)
  set +e
  /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.log"
  local status=$?
  set -e
  seconds=$(seconds_since "$started")
  if [ "$status" != 0 ]; then
    note "$* exited $status; its log ends:"
    tail -20 "$work/$name.log" >&2
    exit 1
  fi
  rss_mib=$(awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$work/$name.time")
}

timed sync "$searchsync" run --once -c "$config"
sync_seconds=$seconds sync_rss=$rss_mib
sync_rate=$(per_second "$rows" "$sync_seconds")

timed reindex "$searchsync" reindex -c "$config" products --wait
reindex_seconds=$seconds reindex_rss=$rss_mib
reindex_rate=$(per_second "$rows" "$reindex_seconds")
grep -q 'reindex.*done' "$work/reindex.log" || { note "no 'reindex done' in the log"; exit 1; }
full_read_line=$(grep -o 'full read done.*' "$work/reindex.log" | head -1)
ratio=$(awk -v a="$reindex_seconds" -v b="$sync_seconds" 'BEGIN { printf "%.2f", a / b }')
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

cat <<SUMMARY

== searchsync reindex benchmark
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
postgres:    $pg_version, fsync=off, table products with $rows rows
full sync:   $(printf '%7s' "$sync_seconds")s  $(printf '%9s' "$sync_rate") rows/s  peak RSS $sync_rss MiB  (run --once into an empty index)
reindex:     $(printf '%7s' "$reindex_seconds")s  $(printf '%9s' "$reindex_rate") rows/s  peak RSS $reindex_rss MiB  (reindex --wait, standalone)
ratio:       reindex / full sync wall time = $ratio
full read:   $full_read_line
command:     ROWS=$rows BUILD_DIR=$build_dir bench/reindex.sh
SUMMARY
