#!/usr/bin/env bash
# CouchDB change-to-index latency: `searchsync run` follows pouchdb-server's continuous feed
# while documents are written at a steady rate; each document's latency is the time from
# CouchDB's answer to the write until the Typesense test server returns the document.
#
#   bench/couchdb_latency.sh                       # 20 documents/s for 30 s, flush_interval 50ms
#   RATE=1000 FLUSH=100ms bench/couchdb_latency.sh   # issue 11's steady 1,000 changes/s
#   RATE=50 SECONDS_TO_RUN=20 FLUSH=5s BUILD_DIR=build bench/couchdb_latency.sh
#
# Documents go out in one _bulk_docs request every 10 ms (RATE/100 documents each), and about
# 100 documents a second are timed: the poller asks for the oldest timed document not seen yet,
# again about every millisecond until it is there, so latencies carry a millisecond or two of
# polling error (more when documents arrive out of order: never less than they were). Prints
# p50/p90/p99/max and the write rate achieved.
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
pending = []      # (id, monotonic time CouchDB acknowledged the write), in write order
latencies = []
writing_done = threading.Event()
achieved = [0.0]
SAMPLE = max(1, int(rate // 100))  # about 100 documents a second are timed
TICK = 0.01                        # writes go out every 10 ms, as one _bulk_docs each

def writer():
    couch = http.client.HTTPConnection("127.0.0.1", couch_port)
    total = int(rate * duration)
    start = time.monotonic()
    written, tick = 0, 0
    while written < total:
        tick += 1
        delay = start + tick * TICK - time.monotonic()
        if delay > 0: time.sleep(delay)
        due = min(total, int((time.monotonic() - start) * rate))  # the documents due by now
        if due <= written: continue
        ids = ["lat-%d" % i for i in range(written, due)]
        docs = [{"_id": doc_id, "name": "v" + doc_id, "age": i % 20} for i, doc_id in enumerate(ids, written)]
        couch.request("POST", "/animals/_bulk_docs", body=json.dumps({"docs": docs}),
                      headers={"Content-Type": "application/json"})
        response = couch.getresponse(); body = response.read()
        if response.status != 201: sys.exit("_bulk_docs: %d %s" % (response.status, body[:200]))
        acked = time.monotonic()
        with lock: pending.extend((doc_id, acked) for i, doc_id in enumerate(ids, written) if i % SAMPLE == 0)
        written = due
    achieved[0] = total / (time.monotonic() - start)
    writing_done.set()

thread = threading.Thread(target=writer); thread.start()
deadline = time.monotonic() + duration + 120
# The oldest timed document first: documents mostly arrive in write order, and one found later
# than it arrived (an older one still missing) only makes its latency larger than it was.
while True:
    with lock: oldest = pending[0] if pending else None
    if oldest is None:
        if writing_done.is_set(): break
        time.sleep(0.001); continue
    if time.monotonic() > deadline: sys.exit("%d documents never reached the index" % len(pending))
    if ts_get(ts, "/collections/animals/documents/" + oldest[0]) == 200:
        seen = time.monotonic()
        with lock: pending.pop(0)
        latencies.append(seen - oldest[1])
    else:
        time.sleep(0.001)
thread.join()
latencies.sort()
def pct(p): return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))] * 1000
print("%d %.1f %.1f %.1f %.1f %.1f" % (len(latencies), pct(50), pct(90), pct(99), latencies[-1] * 1000, achieved[0]))
PY
)
read -r count p50 p90 p99 max achieved <<<"$result"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cat <<SUMMARY

== searchsync CouchDB change-to-index latency
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start
build:       ${build_type:-unknown} ($build_dir)
setup:       pouchdb-server $(node -p "require('$root/tests/node/node_modules/pouchdb-server/package.json').version"), feed: continuous, batch.flush_interval $flush, test-typesense (storing)
changes:     $((rate * duration)) documents written at $rate/s ($achieved/s achieved) in one _bulk_docs every 10 ms; $count of them timed
latency:     p50 ${p50} ms, p90 ${p90} ms, p99 ${p99} ms, max ${max} ms
command:     RATE=$rate SECONDS_TO_RUN=$duration FLUSH=$flush BUILD_DIR=$build_dir bench/couchdb_latency.sh
SUMMARY
