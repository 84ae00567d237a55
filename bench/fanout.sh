#!/usr/bin/env bash
# Fan-out benchmark: one category holding every product is renamed, and `relations` re-reads all
# of its documents (issue 12). Compared with the plain first sync of the same query.
#
#   bench/fanout.sh                          # 200,000 products, build-release if it exists, else build
#   ROWS=50000 BUILD_DIR=build bench/fanout.sh
#
# Starts a throwaway PostgreSQL (the products table of bench/postgres_table.sh, plus a
# `categories` table and products.category_id, every product in category 1) and
# `test-typesense --discard` in a temporary directory, removed on exit. Then, under
# /usr/bin/time -v:
#   1. sync:    `run --once` into an empty index: the query's first pass (the plain sync);
#   2. fan-out: UPDATE categories SET name = ... WHERE id = 1, then `run --once`: the relation's
#               `documents` query gives ROWS ids, each re-read through the query restricted
#               to its ids.
# Prints one summary block: machine, build, rows, wall time, documents/s and peak RSS of each.
set -euo pipefail
rows=${ROWS:=200000}
export ROWS
source "$(dirname "$0")/postgres_table.sh"

note "adding categories: every product in category 1"
psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE categories (id int PRIMARY KEY, name text NOT NULL,
                         updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO categories (id, name, updated_at) VALUES (1, 'Garden', now() - interval '1 day');
CREATE INDEX ON categories (updated_at, id);
ALTER TABLE products ADD COLUMN category_id int NOT NULL DEFAULT 1;
CREATE INDEX ON products (category_id, id);
VACUUM (ANALYZE) products;
VACUUM (ANALYZE) categories;
SQL

start_test_typesense --discard

config=$work/bench.yaml
cat >"$config" <<YAML
typesense:
  nodes: ["http://127.0.0.1:$ts_port"]
  api_key: $api_key
state:
  path: $work/state
pipelines:
  - name: products
    source:
      type: postgres
      dsn: postgresql://postgres@127.0.0.1:$pg_port/postgres
      query: |
        SELECT p.id, p.product_name AS name, p.price, p.tags, p.popularity, p.updated_at,
               c.name AS category
        FROM products p JOIN categories c ON c.id = p.category_id
        WHERE NOT p.is_deleted
      primary_key: id
      updated_at: updated_at
      poll_interval: 1s
      relations:
        - table: categories
          updated_at: updated_at
          documents: "SELECT id FROM products WHERE category_id = ANY(\$1)"
    transforms:
      - cast: { price: float }
    sink:
      collection: products
      schema:
        fields:
          - { name: name, type: string }
          - { name: price, type: float }
          - { name: tags, type: "string[]", facet: true }
          - { name: popularity, type: int32 }
          - { name: category, type: string, facet: true }
        default_sorting_field: popularity
      batch: { max_events: 10000, max_bytes: 8MiB }
      concurrency: 2
YAML

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

# The pipeline's events_acked from `status --json`; -1 with dead letters or not caught up.
events_acked() {
  "$searchsync" status --json -c "$config" | python3 -c 'import json, sys
p = json.load(sys.stdin)["pipelines"][0]
print(p["events_acked"] if p["dead_lettered"] == 0 and p["state"] == "caught_up" else -1)'
}

timed sync "$searchsync" run --once -c "$config"
sync_seconds=$seconds sync_rss=$rss_mib
sync_rate=$(per_second "$rows" "$sync_seconds")
sync_acked=$(events_acked)

psql -q -v ON_ERROR_STOP=1 -c "UPDATE categories SET name = 'Garden & Outdoor', updated_at = now() WHERE id = 1"
timed fanout "$searchsync" run --once -c "$config"
fanout_seconds=$seconds fanout_rss=$rss_mib
fanout_rate=$(per_second "$rows" "$fanout_seconds")
fanout_acked=$(events_acked)
if [ "$sync_acked" != "$rows" ] || [ "$((fanout_acked - sync_acked))" != "$rows" ]; then
  note "expected $rows events acknowledged by each run, status says $sync_acked then $fanout_acked"
  exit 1
fi
reread=$(grep -o 're-reading changed documents:.*' "$work/fanout.log" | tail -1)
[ -n "$reread" ] || { note "no 're-reading changed documents' line in the fan-out's log"; exit 1; }
ratio=$(awk -v a="$fanout_rss" -v b="$sync_rss" 'BEGIN { printf "%.2f", a / b }')
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

cat <<SUMMARY

== searchsync fan-out benchmark
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
postgres:    $pg_version, fsync=off, $rows products in one category
sync:        $(printf '%7s' "$sync_seconds")s  $(printf '%9s' "$sync_rate") documents/s  peak RSS $sync_rss MiB  (run --once into an empty index)
fan-out:     $(printf '%7s' "$fanout_seconds")s  $(printf '%9s' "$fanout_rate") documents/s  peak RSS $fanout_rss MiB  (category renamed, run --once re-reads $rows documents)
RSS ratio:   fan-out / sync peak RSS = $ratio
status:      events_acked $sync_acked after the sync, $fanout_acked after the fan-out
progress:    last line: $reread
command:     ROWS=$rows BUILD_DIR=$build_dir bench/fanout.sh
SUMMARY
