#!/usr/bin/env bash
# CouchDB change-to-index latency: `searchsync run` follows pouchdb-server's continuous feed
# while documents are written at a steady rate; each document's latency is the time from
# CouchDB's answer to the write until the Typesense test server returns the document.
#
#   bench/couchdb_latency.sh                       # 20 writes/s for 30 s, flush_interval 50ms
#   RATE=50 SECONDS_TO_RUN=20 FLUSH=5s BUILD_DIR=build bench/couchdb_latency.sh
#
# The poller asks for every written-but-unseen document about every 2 ms, so latencies carry up
# to a few milliseconds of polling error. Prints p50/p90/p99/max.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
root=$PWD

load_at_start=$(cut -d' ' -f1 /proc/loadavg)
rate=${RATE:-20}
duration=${SECONDS_TO_RUN:-30}
flush=${FLUSH:-50ms}
if [ -n "${BUILD_DIR:-}" ]; then
  case $BUILD_DIR in /*) build_dir=$BUILD_DIR ;; *) build_dir=$caller/$BUILD_DIR ;; esac
elif [ -d "$root/build-release" ]; then
  build_dir=$root/build-release
else
  build_dir=$root/build
fi
searchsync=$build_dir/searchsync
test_typesense=$build_dir/test-typesense
pouchdb_server=$root/tests/node/node_modules/.bin/pouchdb-server
for binary in "$searchsync" "$test_typesense"; do
  [ -x "$binary" ] || { echo "missing $binary; build it first (see bench/README.md)" >&2; exit 2; }
done
[ -e "$pouchdb_server" ] || bash "$root/.ci/install-deps"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)

work=$(mktemp -d /tmp/searchsync-couch-latency-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
note() { printf '%s\n' "$*" >&2; }

couch_port=$(free_port)
mkdir -p "$work/pouch"
(cd "$work" && exec node "$pouchdb_server" --port "$couch_port" --host 127.0.0.1 --dir "$work/pouch") \
  >"$work/pouch.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$couch_port/" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "http://127.0.0.1:$couch_port/animals" >/dev/null

api_key=bench-key
"$test_typesense" --port 0 --port-file "$work/ts.port" --api-key "$api_key" >"$work/ts.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/ts.port" ] && break; sleep 0.1; done
ts_port=$(cat "$work/ts.port")

cat >"$work/bench.yaml" <<YAML
typesense:
  nodes: ["http://127.0.0.1:$ts_port"]
  api_key: $api_key
state:
  path: $work/state
pipelines:
  - name: animals
    source:
      type: couchdb
      url: http://127.0.0.1:$couch_port
      database: animals
      feed: continuous
      heartbeat: 10s
    sink:
      collection: animals
      schema:
        fields:
          - { name: name, type: string }
          - { name: age, type: int32 }
      batch: { max_events: 10000, max_bytes: 8MiB, flush_interval: $flush }
YAML
"$searchsync" run -c "$work/bench.yaml" 2>"$work/run.log" &
pids+=($!)

note "writing $rate documents/s for ${duration}s to pouchdb-server; polling the test Typesense"
result=$(python3 - "$couch_port" "$ts_port" "$api_key" "$rate" "$duration" <<'PY'
import http.client, json, sys, threading, time
couch_port, ts_port, api_key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rate, duration = float(sys.argv[4]), float(sys.argv[5])

def ts_get(conn, path):
    conn.request("GET", path, headers={"X-TYPESENSE-API-KEY": api_key})
    response = conn.getresponse()
    response.read()
    return response.status

# Wait until searchsync created the collection (it is caught up with the empty database then).
ts = http.client.HTTPConnection("127.0.0.1", ts_port)
deadline = time.monotonic() + 60
while ts_get(ts, "/collections/animals") != 200:
    if time.monotonic() > deadline: sys.exit("the collection never appeared")
    time.sleep(0.05)

lock = threading.Lock()
pending = {}      # id -> monotonic time CouchDB acknowledged the write
latencies = []
writing_done = threading.Event()

def writer():
    couch = http.client.HTTPConnection("127.0.0.1", couch_port)
    total = int(rate * duration)
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0: time.sleep(delay)
        doc_id = "lat-%d" % i
        couch.request("PUT", "/animals/" + doc_id, body=json.dumps({"name": "v%d" % i, "age": i % 20}),
                      headers={"Content-Type": "application/json"})
        response = couch.getresponse(); response.read()
        if response.status != 201: sys.exit("PUT %s: %d" % (doc_id, response.status))
        with lock: pending[doc_id] = time.monotonic()
    writing_done.set()

thread = threading.Thread(target=writer); thread.start()
deadline = time.monotonic() + duration + 120
while True:
    with lock: ids = list(pending)
    if not ids and writing_done.is_set(): break
    if time.monotonic() > deadline: sys.exit("%d documents never reached the index" % len(ids))
    for doc_id in ids:
        if ts_get(ts, "/collections/animals/documents/" + doc_id) == 200:
            seen = time.monotonic()
            with lock: latencies.append(seen - pending.pop(doc_id))
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

== searchsync CouchDB change-to-index latency
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
setup:       pouchdb-server $(node -p "require('$root/tests/node/node_modules/pouchdb-server/package.json').version"), feed: continuous, batch.flush_interval $flush, test-typesense (storing)
changes:     $count single-document PUTs at $rate/s
latency:     p50 ${p50} ms, p90 ${p90} ms, p99 ${p99} ms, max ${max} ms
command:     RATE=$rate SECONDS_TO_RUN=$duration FLUSH=$flush BUILD_DIR=$build_dir bench/couchdb_latency.sh
SUMMARY
