# Sourced by bench/full_sync.sh, bench/reindex.sh, bench/notify_latency.sh and bench/soak.sh
# (not run on its own): checks the build, starts a throwaway PostgreSQL in a temporary directory
# (removed on exit, with every process added to `pids`) and loads ROWS rows into `products`, the
# table the demo and the tests use.
# Leaves for the caller: root, rows, build_dir, build_type, searchsync, test_typesense, work,
# pids, pg_port, postmaster, pg_version, load_at_start, and the helpers free_port, now_ns,
# seconds_since, per_second, cpu_seconds, note, start_test_typesense and write_products_config.
caller=$PWD
cd "$(dirname "$0")/.."
root=$PWD

load_at_start=$(cut -d' ' -f1 /proc/loadavg)  # before this script adds its own
rows=${ROWS:-1000000}
case $rows in '' | *[!0-9]* | 0) echo "ROWS must be a positive integer, got '$rows'" >&2; exit 2 ;; esac
if [ -n "${BUILD_DIR:-}" ]; then
  case $BUILD_DIR in /*) build_dir=$BUILD_DIR ;; *) build_dir=$caller/$BUILD_DIR ;; esac
elif [ -d "$root/build-release" ]; then
  build_dir=$root/build-release
else
  build_dir=$root/build
fi
searchsync=$build_dir/searchsync
test_typesense=$build_dir/test-typesense
for binary in "$searchsync" "$test_typesense"; do
  if [ ! -x "$binary" ]; then
    echo "missing $binary; build it first:" >&2
    echo "  cmake -S $root -B $root/build-release -G Ninja -DCMAKE_BUILD_TYPE=Release" >&2
    echo "  ninja -C $root/build-release searchsync test-typesense" >&2
    exit 2
  fi
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
if [ ! -x /usr/bin/time ] || ! command -v psql >/dev/null ||
  ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  bash "$root/.ci/install-deps"
fi

work=$(mktemp -d /tmp/searchsync-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${pg_ctl:-}" ] && $as_pg "$pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# CPU seconds (user + system) a process has used, or its reaped children have (with `children`).
ticks=$(getconf CLK_TCK)
cpu_seconds() {
  awk -v t="$ticks" -v c="${2:-}" '{ sub(/^.*\) /, ""); \
    printf "%.2f", (c == "children" ? $14 + $15 : $12 + $13) / t }' "/proc/$1/stat"
}
note() { printf '%s\n' "$*" >&2; }

# ---- PostgreSQL --------------------------------------------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_ctl=$pg_bin/pg_ctl
as_pg=""
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_pg="runuser -u postgres --"; fi
pg_port=$(free_port)
note "starting PostgreSQL in $work/pg"
$as_pg "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust >/dev/null
$as_pg "$pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
postmaster=$(head -1 "$work/pg/postmaster.pid")
export PGDATABASE=postgres PGUSER=postgres PGHOST=127.0.0.1 PGPORT=$pg_port
pg_version=$(psql -tA -c 'SHOW server_version')

note "loading $rows rows into products"
load_started=$(now_ns)
psql -q -v ON_ERROR_STOP=1 -v rows="$rows" <<'SQL'
CREATE TABLE products (
  id text PRIMARY KEY, product_name text NOT NULL, price numeric(10,2) NOT NULL,
  tags text[] NOT NULL DEFAULT '{}', popularity int NOT NULL, internal_notes text,
  is_deleted boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE deleted_products (id text NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now());
-- One row per millisecond up to now, so keyset pages walk distinct timestamps as in a live table.
INSERT INTO products (id, product_name, price, tags, popularity, internal_notes, updated_at)
  SELECT 'sku-' || g, 'Product ' || g, (g % 500) + 0.99, ARRAY['color-' || (g % 5), 'demo'],
         g % 1000, 'internal', now() - make_interval(secs => (:rows - g) / 1000.0)
  FROM generate_series(1, :rows) g;
CREATE INDEX ON products (updated_at, id);
CREATE INDEX ON deleted_products (deleted_at, id);
VACUUM (ANALYZE) products;
VACUUM (ANALYZE) deleted_products;
SQL
loaded=$(psql -tA -c 'SELECT count(*) FROM products')
[ "$loaded" = "$rows" ] || { note "loaded $loaded rows, expected $rows"; exit 1; }
note "loaded in $(seconds_since "$load_started")s"


# Starts the Typesense test server (extra flags such as --discard are passed on) on port
# ts_listen_port (default 0: a free one), appending to $work/ts.log; sets ts_pid and ts_port.
api_key=bench-key
start_test_typesense() {
  rm -f "$work/ts.port"
  "$test_typesense" --port "${ts_listen_port:-0}" --port-file "$work/ts.port" \
    --api-key "$api_key" "$@" >>"$work/ts.log" 2>&1 &
  ts_pid=$!
  pids+=("$ts_pid")
  for _ in $(seq 100); do [ -s "$work/ts.port" ] && break; sleep 0.1; done
  [ -s "$work/ts.port" ] || { note "test-typesense did not start:"; cat "$work/ts.log" >&2; exit 1; }
  ts_port=$(cat "$work/ts.port")
}

# Writes the products pipeline (the demo's transforms and schema, ts_port, pg_port) to $config.
write_products_config() {
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
      table: products
      primary_key: id
      updated_at: updated_at
      poll_interval: 1s
      deletes:
        soft_delete_column: is_deleted
        tombstone_table: { table: deleted_products, id_column: id, deleted_at_column: deleted_at }
    transforms:
      - rename: { product_name: name }
      - drop: [internal_notes, is_deleted]
      - cast: { price: float }
    sink:
      collection: products
      schema:
        fields:
          - { name: name, type: string }
          - { name: price, type: float }
          - { name: tags, type: "string[]", facet: true }
          - { name: popularity, type: int32 }
        default_sorting_field: popularity
      batch: { max_events: 10000, max_bytes: 8MiB }
      concurrency: 2
YAML
}
