#!/usr/bin/env bash
# A demo sync, end to end: a real PostgreSQL with a products table, kept in Typesense.
# Uses the Typesense test server unless TYPESENSE_URL (and TYPESENSE_API_KEY) are set.
# Everything runs in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash .ci/install-deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target searchsync test-typesense

work=$(mktemp -d /tmp/searchsync-demo-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${pg_ctl:-}" ] && $as_pg "$pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting PostgreSQL in $work/pg"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_ctl=$pg_bin/pg_ctl
as_pg=""
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_pg="runuser -u postgres --"; fi
pg_port=$(free_port)
$as_pg "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust >/dev/null
$as_pg "$pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export PG_DSN="postgresql://postgres@127.0.0.1:$pg_port/postgres"
psql -q "$PG_DSN" <<'SQL'
CREATE TABLE products (
  id text PRIMARY KEY, product_name text NOT NULL, price numeric(10,2) NOT NULL,
  tags text[] NOT NULL DEFAULT '{}', popularity int NOT NULL, internal_notes text,
  is_deleted boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON products (updated_at, id);
CREATE TABLE deleted_products (id text NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER products_touch BEFORE UPDATE ON products FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION record_delete() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO deleted_products(id) VALUES (OLD.id); RETURN OLD; END $$;
CREATE TRIGGER products_tombstone AFTER DELETE ON products FOR EACH ROW EXECUTE FUNCTION record_delete();
INSERT INTO products (id, product_name, price, tags, popularity, internal_notes)
  SELECT 'sku-' || g, 'Product ' || g, (g % 500) + 0.99, ARRAY['color-' || (g % 5), 'demo'], g % 1000, 'internal'
  FROM generate_series(1, 20000) g;
SQL
echo "products: $(psql -tA "$PG_DSN" -c 'SELECT count(*) FROM products') rows"

if [ -z "${TYPESENSE_URL:-}" ]; then
  step "Starting the Typesense test server (set TYPESENSE_URL to use a real Typesense)"
  ts_port=$(free_port)
  export TYPESENSE_API_KEY=demo-key
  "$root/build/test-typesense" --port "$ts_port" --api-key "$TYPESENSE_API_KEY" >"$work/ts.log" 2>&1 &
  pids+=($!)
  export TYPESENSE_URL="http://127.0.0.1:$ts_port"
  for _ in $(seq 100); do curl -sf "$TYPESENSE_URL/health" >/dev/null && break; sleep 0.1; done
fi
: "${TYPESENSE_API_KEY:?set TYPESENSE_API_KEY for $TYPESENSE_URL}"
export DEMO_STATE_DIR="$work/state"
config=$root/conf/demo.yaml
searchsync=$root/build/searchsync
search() {
  curl -sf -G -H "X-TYPESENSE-API-KEY: $TYPESENSE_API_KEY" \
    "$TYPESENSE_URL/collections/products/documents/search" \
    --data-urlencode "q=*" --data-urlencode "filter_by=$1" --data-urlencode "per_page=3" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("found", r["found"], [h["document"] for h in r["hits"]])'
}

step "searchsync check"
"$searchsync" check -c "$config"

step "searchsync run --once: the initial sync"
"$searchsync" run --once -c "$config"
search 'id:=sku-7'

step "Change the table: update, soft-delete, hard-delete"
psql -q "$PG_DSN" -c "UPDATE products SET product_name = 'Renamed product 7', price = 7.77 WHERE id = 'sku-7'" \
  -c "UPDATE products SET is_deleted = true WHERE id = 'sku-8'" \
  -c "DELETE FROM products WHERE id = 'sku-9'"

step "searchsync run (daemon) picks the changes up; stopping it with SIGTERM"
"$searchsync" run -c "$config" &
daemon=$!
pids+=($daemon)
for _ in $(seq 100); do
  search 'id:=sku-7' | grep -q Renamed && break
  sleep 0.2
done
kill -TERM $daemon; wait $daemon
search 'id:=sku-7'
search 'id:=[sku-8,sku-9]'

step "searchsync status"
"$searchsync" status -c "$config"
echo; echo "demo finished: the index follows the table."
