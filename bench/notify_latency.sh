#!/usr/bin/env bash
# Postgres commit-to-searchable latency with `notify_channel`: `searchsync run` polls a table of
# ROWS rows only every 60 s, and a statement trigger's pg_notify wakes it; single-row UPDATEs
# commit at a steady rate, and each one's latency runs from the commit (clock_timestamp() at
# the end of the UPDATE) until the Typesense test server returns the document with the new name.
#
#   bench/notify_latency.sh                           # 20 updates/s for 30 s, flush_interval 100ms
#   RATE=50 SECONDS_TO_RUN=20 FLUSH=1s ROWS=100000 BUILD_DIR=build bench/notify_latency.sh
#
# Each update is its own psql process; the poller asks for every updated-but-unseen document about
# every 2 ms, so latencies carry a few milliseconds of polling error. Prints p50/p90/p99/max.
set -euo pipefail
ROWS=${ROWS:-10000}
source "$(dirname "$0")/postgres_table.sh"
rate=${RATE:-20}
duration=${SECONDS_TO_RUN:-30}
flush=${FLUSH:-100ms}

psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE FUNCTION notify_products_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN PERFORM pg_notify('products_changed', ''); RETURN NULL; END $$;
CREATE TRIGGER products_notify AFTER INSERT OR UPDATE OR DELETE ON products
  FOR EACH STATEMENT EXECUTE FUNCTION notify_products_changed();
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER products_touch BEFORE UPDATE ON products FOR EACH ROW EXECUTE FUNCTION touch();
SQL

start_test_typesense
config=$work/bench.yaml
write_products_config
# The fallback poll a minute apart: every latency below it comes from a notification.
sed -i -e 's/^      poll_interval: 1s$/      poll_interval: 60s\n      notify_channel: products_changed/' \
  -e "s/^      batch: { max_events: 10000, max_bytes: 8MiB }$/      batch: { max_events: 10000, max_bytes: 8MiB, flush_interval: $flush }/" \
  "$config"
grep -q 'notify_channel: products_changed' "$config" && grep -q "flush_interval: $flush" "$config" ||
  { note "could not set notify_channel and flush_interval in $config"; exit 1; }
"$searchsync" run -c "$config" 2>"$work/run.log" &
pids+=($!)

note "updating $rate rows/s for ${duration}s; polling the test Typesense"
result=$(python3 - "$ts_port" "$api_key" "$rate" "$duration" "$rows" <<'PY'
import http.client, json, subprocess, sys, threading, time
ts_port, api_key = int(sys.argv[1]), sys.argv[2]
rate, duration, rows = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

def ts_get(conn, path):
    conn.request("GET", path, headers={"X-TYPESENSE-API-KEY": api_key})
    response = conn.getresponse()
    return response.status, response.read()

# Wait until searchsync synced the table (the last row is in the index).
ts = http.client.HTTPConnection("127.0.0.1", ts_port)
deadline = time.monotonic() + 600
while ts_get(ts, "/collections/products/documents/sku-%d" % rows)[0] != 200:
    if time.monotonic() > deadline: sys.exit("the initial sync never finished")
    time.sleep(0.05)

lock = threading.Lock()
pending = {}      # id -> (expected name, wall-clock time of the commit)
latencies = []
writing_done = threading.Event()
failure = []

def writer():
    total = int(rate * duration)
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0: time.sleep(delay)
        doc_id, name = "sku-%d" % (i % rows + 1), "v%d" % i
        out = subprocess.run(
            ["psql", "-qtA", "-v", "ON_ERROR_STOP=1", "-c",
             "UPDATE products SET product_name = '%s' WHERE id = '%s' "
             "RETURNING extract(epoch FROM clock_timestamp())" % (name, doc_id)],
            capture_output=True, text=True)
        if out.returncode != 0:
            failure.append(out.stderr); break
        with lock: pending[doc_id] = (name, float(out.stdout.strip()))
    writing_done.set()

thread = threading.Thread(target=writer); thread.start()
deadline = time.monotonic() + duration + 120
while True:
    with lock: items = list(pending.items())
    if failure: sys.exit("update failed: " + failure[0])
    if not items and writing_done.is_set(): break
    if time.monotonic() > deadline: sys.exit("%d updates never reached the index" % len(items))
    for doc_id, (name, committed) in items:
        status, body = ts_get(ts, "/collections/products/documents/" + doc_id)
        if status == 200 and json.loads(body).get("name") == name:
            seen = time.time()
            with lock:
                if pending.get(doc_id, (None,))[0] == name:
                    latencies.append(seen - committed)
                    del pending[doc_id]
    time.sleep(0.002)
thread.join()
latencies.sort()
def pct(p): return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))] * 1000
print("%d %.1f %.1f %.1f %.1f" % (len(latencies), pct(50), pct(90), pct(99), latencies[-1] * 1000))
PY
)
read -r count p50 p90 p99 max <<<"$result"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cat <<SUMMARY

== searchsync Postgres commit-to-searchable latency (notify_channel)
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
setup:       PostgreSQL $pg_version, $rows rows, poll_interval 60s + notify_channel, batch.flush_interval $flush, test-typesense (storing)
changes:     $count single-row UPDATEs at $rate/s, each committed by its own psql
latency:     p50 ${p50} ms, p90 ${p90} ms, p99 ${p99} ms, max ${max} ms
command:     RATE=$rate SECONDS_TO_RUN=$duration FLUSH=$flush ROWS=$rows BUILD_DIR=$build_dir bench/notify_latency.sh
SUMMARY
