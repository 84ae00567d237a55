#!/usr/bin/env bash
# Soak: `searchsync run` for DURATION seconds against a table that never stops changing, through
# 503 storms and Typesense restarts; shows that RSS, open files and threads stay flat and that
# the index equals the table at the end.
#
#   bench/soak.sh                                  # one hour, 20,000 rows, 200 writes/s
#   DURATION=120 STORM_EVERY=40 RESTARTS=1 BUILD_DIR=build bench/soak.sh
#
# Starts a throwaway PostgreSQL and the Typesense test server with its write-queue model and a
# data directory. Once the first sync is done, pgbench writes RATE transactions a second (inserts,
# upserts that may bring back deleted ids, updates, soft deletes and undeletes, hard deletes);
# every STORM_EVERY seconds a load spike (SIGUSR1) makes the test server refuse writes with 503
# for about STORM_SECONDS; RESTARTS times the test server is stopped (it saves its state), left
# down RESTART_DOWN seconds and started again on the same port. searchsync is sampled every 10 s
# from /proc (RSS, open file descriptors, threads) into a CSV (SOAK_CSV, default
# ./soak-<date>.csv; the logs are kept beside it). At the end the writers stop, searchsync catches up, the index is compared
# with the table, and a report is printed. Exits 1 when the index differs from the table or when
# RSS, fds or threads grew beyond the tolerance the report states.
set -euo pipefail
ROWS=${ROWS:-20000}
source "$(dirname "$0")/postgres_table.sh"
duration=${DURATION:-3600}
rate=${RATE:-200}
storm_every=${STORM_EVERY:-300}
storm_seconds=${STORM_SECONDS:-30}
restarts=${RESTARTS:-2}
restart_down=${RESTART_DOWN:-5}
for setting in duration rate storm_every storm_seconds restarts restart_down; do
  case ${!setting} in '' | *[!0-9]*) note "$setting must be a non-negative integer"; exit 2 ;; esac
done
[ "$duration" -ge 60 ] || { note "DURATION must be at least 60 seconds"; exit 2; }
csv=${SOAK_CSV:-$caller/soak-$(date +%Y%m%d-%H%M%S).csv}
# The logs (searchsync, test-typesense, pgbench, the storms and restarts) are kept beside the CSV.
keep_logs() {
  for log in run ts pgbench events; do
    [ -f "$work/$log.log" ] && cp "$work/$log.log" "${csv%.csv}.$log.log"
  done
  cleanup
}
trap keep_logs EXIT
sample_every=10
# Compared: the first and the last `window` seconds of writing (10 minutes, or a third of a short
# run).
window=$((duration / 3 < 600 ? duration / 3 : 600))
# The write queue drains 100 chunks/s and refuses writes above 500: a spike of 500 + 100 x
# storm_seconds chunks refuses them for about storm_seconds (reads too while above 1000).
queue_drain=100
healthy_write_lag=500
spike=$((healthy_write_lag + queue_drain * storm_seconds))

# ---- The table's triggers and the writers' script ----------------------------------------------
psql -q -v ON_ERROR_STOP=1 -v rows="$rows" >/dev/null <<'SQL'
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER products_touch BEFORE UPDATE ON products FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO deleted_products (id) VALUES (OLD.id); RETURN NULL; END $$;
CREATE TRIGGER products_tombstone AFTER DELETE ON products FOR EACH ROW EXECUTE FUNCTION tombstone();
CREATE SEQUENCE product_ids;
SELECT setval('product_ids', :rows);
SQL
# Percentages: 10 inserts of new ids, 5 upserts of any id (bringing back deleted ones), 55 updates,
# 10 soft deletes, 5 undeletes, 15 hard deletes. Every write sets new values, so a stale document
# shows.
cat >"$work/writes.sql" <<'SQL'
\set pick random(1, 100)
\set v random(1, 1000000000)
SELECT last_value AS max_id FROM product_ids \gset
\set id random(1, :max_id)
\if :pick <= 10
INSERT INTO products (id, product_name, price, tags, popularity, internal_notes)
  VALUES ('sku-' || nextval('product_ids'), 'New ' || :v, (:v % 100000) / 100.0,
          ARRAY['color-' || (:v % 5), 'soak'], :v % 1000, 'internal');
\elif :pick <= 15
INSERT INTO products (id, product_name, price, tags, popularity, internal_notes)
  VALUES ('sku-' || :id, 'Back ' || :v, (:v % 100000) / 100.0, ARRAY['back'], :v % 1000, 'internal')
  ON CONFLICT (id) DO UPDATE SET product_name = EXCLUDED.product_name, price = EXCLUDED.price,
    tags = EXCLUDED.tags, popularity = EXCLUDED.popularity, is_deleted = false;
\elif :pick <= 70
UPDATE products SET product_name = 'Product ' || :id || ' rev ' || :v,
    price = (:v % 100000) / 100.0, tags = ARRAY['color-' || (:v % 5)], popularity = :v % 1000
  WHERE id = 'sku-' || :id;
\elif :pick <= 80
UPDATE products SET is_deleted = true WHERE id = 'sku-' || :id;
\elif :pick <= 85
UPDATE products SET is_deleted = false, popularity = :v % 1000 WHERE id = 'sku-' || :id;
\else
DELETE FROM products WHERE id = 'sku-' || :id;
\endif
SQL

# ---- Typesense test server and searchsync ------------------------------------------------------
mkdir "$work/ts-data"
ts_flags=(--queue-drain "$queue_drain" --healthy-write-lag "$healthy_write_lag"
  --spike-batches "$spike" --data-dir "$work/ts-data")
start_test_typesense "${ts_flags[@]}"
ts_listen_port=$ts_port  # restarts come back on the same port

config=$work/bench.yaml
write_products_config
admin_port=$(free_port)
printf 'admin:\n  listen: 127.0.0.1:%s\n' "$admin_port" >>"$config"
"$searchsync" run -c "$config" 2>"$work/run.log" &
ss_pid=$!
pids+=("$ss_pid")

# One field of the daemon's /status (its first pipeline), or "" while it does not answer.
status_field() {
  curl -sf --max-time 10 "http://127.0.0.1:$admin_port/status" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pipelines"][0][sys.argv[1]])' "$1" \
      2>/dev/null || true
}
# The sum of a metric's series in the daemon's /metrics whose labels contain $2 (or all of them).
metric() {
  curl -sf --max-time 10 "http://127.0.0.1:$admin_port/metrics" 2>/dev/null |
    awk -v name="$1" -v label="${2:-}" '$1 == name || index($1, name "{") == 1 {
      if (label == "" || index($1, label)) sum += $2 } END { printf "%.0f", sum }' || true
}
daemon_alive() {
  kill -0 "$ss_pid" 2>/dev/null && return 0
  note "searchsync exited; its log ends:"
  tail -20 "$work/run.log" >&2
  exit 1
}

note "waiting for the first sync of $rows rows"
deadline=$(($(date +%s) + 600))
until [ "$(status_field state)" = caught_up ] && [ "$(status_field events_acked)" -ge "$rows" ] 2>/dev/null; do
  daemon_alive
  [ "$(date +%s)" -lt "$deadline" ] || { note "the first sync did not finish in 600 s"; exit 1; }
  sleep 1
done

# ---- The soak ----------------------------------------------------------------------------------
started=$(date +%s)
sampler() {
  echo "seconds,rss_kib,fds,threads,events_acked,lag_seconds"
  local sample=0
  while kill -0 "$ss_pid" 2>/dev/null; do
    local rss threads fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ss_pid/status" 2>/dev/null) || break
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$ss_pid/status" 2>/dev/null) || break
    fds=$(find "/proc/$ss_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "$((sample * sample_every)),$rss,$fds,$threads,$(metric searchsync_events_acked_total),$(metric searchsync_lag_seconds)"
    sample=$((sample + 1))
    local wait_for=$((started + sample * sample_every - $(date +%s)))
    [ "$wait_for" -le 0 ] || sleep "$wait_for"
  done
}
sampler >"$csv" &
sampler_pid=$!
pids+=("$sampler_pid")

note "soak: ${duration}s, $rate writes/s, a 503 storm every ${storm_every}s, $restarts restarts; samples in $csv"
pgbench -n -c 2 -j 2 -T "$duration" -R "$rate" -P 60 -f "$work/writes.sql" >"$work/pgbench.log" 2>&1 &
pgbench_pid=$!
pids+=("$pgbench_pid")

events=$work/events.log
storms=0
restarts_done=0
next_storm=$((storm_every / 2))
next_restart=$((restarts > 0 ? duration / (restarts + 1) : duration + 1))
while :; do
  elapsed=$(($(date +%s) - started))
  [ "$elapsed" -lt "$duration" ] || break
  daemon_alive
  if [ "$storm_every" -gt 0 ] && [ "$elapsed" -ge "$next_storm" ]; then
    kill -USR1 "$ts_pid"
    storms=$((storms + 1))
    echo "$elapsed storm $storms" >>"$events"
    next_storm=$((next_storm + storm_every))
  fi
  if [ "$restarts_done" -lt "$restarts" ] && [ "$elapsed" -ge "$next_restart" ]; then
    kill -TERM "$ts_pid"
    wait "$ts_pid" || { note "test-typesense did not stop cleanly"; tail -5 "$work/ts.log" >&2; exit 1; }
    sleep "$restart_down"
    start_test_typesense "${ts_flags[@]}"
    restarts_done=$((restarts_done + 1))
    echo "$elapsed restart $restarts_done (down ${restart_down}s)" >>"$events"
    note "t=${elapsed}s: restarted test-typesense on port $ts_port"
    next_restart=$((duration * (restarts_done + 1) / (restarts + 1)))
  fi
  sleep 1
done
wait "$pgbench_pid" || { note "pgbench failed:"; tail -20 "$work/pgbench.log" >&2; exit 1; }
transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.log")

# ---- Catch-up: everything read is acknowledged, and nothing more arrives for 5 s -------------
note "writers stopped; waiting for searchsync to catch up"
writes_ended=$(now_ns)
deadline=$(($(date +%s) + 900))
last_read=-1
while :; do
  daemon_alive
  read_now=$(status_field events_read)
  if [ "$(status_field state)" = caught_up ] && awk -v lag="$(status_field lag_seconds)" \
    'BEGIN { exit !(lag != "" && lag + 0 == 0) }' &&
    [ "$read_now" = "$(status_field events_acked)" ] && [ "$read_now" = "$last_read" ]; then
    break
  fi
  [ "$(date +%s)" -lt "$deadline" ] || { note "searchsync did not catch up in 900 s"; exit 1; }
  last_read=$read_now
  sleep 5
done
catch_up_seconds=$(seconds_since "$writes_ended")
events_acked=$(status_field events_acked)
dead_lettered=$(status_field dead_lettered)
seen_503=$(metric searchsync_typesense_responses_total 'status="503"')
seen_errors=$(metric searchsync_typesense_responses_total 'status="error"')
retries=$(metric searchsync_retries_total)
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true

# ---- The index against the table ---------------------------------------------------------------
psql -tA -v ON_ERROR_STOP=1 >"$work/table.jsonl" <<'SQL'
SELECT json_build_object('id', id, 'name', product_name, 'price', price::float8, 'tags', tags,
                         'popularity', popularity, 'deleted', is_deleted) FROM products;
SQL
psql -tA -v ON_ERROR_STOP=1 -c 'SELECT DISTINCT id FROM deleted_products' >"$work/tombstones.txt"
comparison=$(python3 - "$ts_port" "$api_key" "$work/table.jsonl" "$work/tombstones.txt" <<'PY'
import json, sys, time, urllib.request
port, key, table_path, tombstones_path = sys.argv[1:5]
request = urllib.request.Request("http://127.0.0.1:%s/collections/products/documents/export" % port,
                                 headers={"X-TYPESENSE-API-KEY": key})
deadline = time.monotonic() + 300
while True:  # reads are refused while a storm's queue drains
    try:
        body = urllib.request.urlopen(request, timeout=60).read().decode()
        break
    except Exception as error:
        if time.monotonic() > deadline: sys.exit("export failed: %s" % error)
        time.sleep(2)
index = {d["id"]: d for d in (json.loads(l) for l in body.splitlines() if l.strip())}
rows = [json.loads(l) for l in open(table_path) if l.strip()]
live = {r["id"]: r for r in rows if not r["deleted"]}
soft_deleted = {r["id"] for r in rows if r["deleted"]}
hard_deleted = {l.strip() for l in open(tombstones_path) if l.strip()} - {r["id"] for r in rows}
missing = [i for i in live if i not in index]
stale = [i for i, r in live.items() if i in index and (
    index[i].get("name") != r["name"] or abs(index[i].get("price", -1) - r["price"]) > 0.005 or
    index[i].get("tags") != r["tags"] or index[i].get("popularity") != r["popularity"])]
extra_soft = [i for i in index if i in soft_deleted]
extra_hard = [i for i in index if i in hard_deleted]
extra_other = [i for i in index if i not in live and i not in soft_deleted and i not in hard_deleted]
bad = missing or stale or extra_soft or extra_hard or extra_other
print("%s: %d live rows, %d documents; missing %d, stale %d, soft-deleted present %d, "
      "hard-deleted present %d, unknown %d (%d soft-deleted and %d hard-deleted ids in the table's history)%s" % (
      "DIFFERS" if bad else "EQUAL", len(live), len(index), len(missing), len(stale), len(extra_soft),
      len(extra_hard), len(extra_other), len(soft_deleted), len(hard_deleted),
      "; e.g. " + ", ".join((missing + stale + extra_soft + extra_hard + extra_other)[:5]) if bad else ""))
PY
)

# Stop the test server for its final counters; each of its runs printed the 503s it served.
kill -TERM "$ts_pid"
wait "$ts_pid" || true
served_503=$(sed -n 's/^stopping: served \([0-9]*\) 503s.*/\1/p' "$work/ts.log" | awk '{ s += $1 } END { print s + 0 }')

# ---- Report --------------------------------------------------------------------------------------
read -r growth_report growth_ok < <(python3 - "$csv" "$window" "$duration" <<'PY'
import csv, statistics, sys
path, window, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
samples = [r for r in csv.DictReader(open(path)) if int(r["seconds"]) <= duration]
first = [r for r in samples if int(r["seconds"]) < window]
last = [r for r in samples if int(r["seconds"]) > duration - window]
def med(rows, key): return statistics.median(int(r[key]) for r in rows)
def top(key): return max(int(r[key]) for r in samples)
rss_first, rss_last = med(first, "rss_kib") / 1024, med(last, "rss_kib") / 1024
fds_first, fds_last = med(first, "fds"), med(last, "fds")
thr_first, thr_last = med(first, "threads"), med(last, "threads")
# Tolerance: RSS may grow by 20 % or 10 MiB, whichever is more; fds by 4; threads by 2.
ok = (rss_last <= rss_first + max(10, 0.2 * rss_first) and fds_last <= fds_first + 4 and
      thr_last <= thr_first + 2)
row = "%.1f|%.1f|%.1f|%g|%g|%d|%g|%g|%d|%d" % (
    rss_first, rss_last, top("rss_kib") / 1024, fds_first, fds_last, top("fds"), thr_first,
    thr_last, top("threads"), len(samples))
print(row, "yes" if ok else "no")
PY
)
IFS='|' read -r rss_first rss_last rss_max fds_first fds_last fds_max thr_first thr_last thr_max \
  sample_count <<<"$growth_report"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
load_at_end=$(cut -d' ' -f1 /proc/loadavg)
window_label="first/last $((window / 60)) min"
[ $((window % 60)) = 0 ] || window_label="first/last ${window}s"
cat <<SUMMARY

== searchsync soak
machine:     ${cpu_model:-unknown cpu}, $(nproc) cores, $(uname -sr), load $load_at_start at start, $load_at_end at end (1-min)
build:       ${build_type:-unknown} ($build_dir)
setup:       PostgreSQL $pg_version, $rows rows to start, test-typesense (write queue: drain $queue_drain chunks/s, 503 above $healthy_write_lag), searchsync run (poll 1s, batch 10000, concurrency 2)
writes:      ${transactions:-?} pgbench transactions in ${duration}s (target $rate/s: 15 % inserts/upserts, 55 % updates, 15 % soft deletes/undeletes, 15 % hard deletes)
faults:      $storms 503 storms (~${storm_seconds}s each), $restarts_done test-typesense restarts (down ${restart_down}s each); test-typesense served $served_503 503s; searchsync saw $seen_503 503s and $seen_errors connection errors, retried $retries times
catch-up:    ${catch_up_seconds}s after the writers stopped; events_acked $events_acked, dead letters $dead_lettered
samples:     $sample_count, every ${sample_every}s ($csv)
             ${window_label} median  max
RSS MiB:     $(printf '%8s %8s %8s' "$rss_first" "$rss_last" "$rss_max")
fds:         $(printf '%8s %8s %8s' "$fds_first" "$fds_last" "$fds_max")
threads:     $(printf '%8s %8s %8s' "$thr_first" "$thr_last" "$thr_max")
flat:        $growth_ok (tolerance: last median <= first + max(10 MiB, 20 %) RSS, + 4 fds, + 2 threads)
index:       $comparison
command:     DURATION=$duration RATE=$rate STORM_EVERY=$storm_every STORM_SECONDS=$storm_seconds RESTARTS=$restarts ROWS=$rows BUILD_DIR=$build_dir bench/soak.sh
SUMMARY
[ "$growth_ok" = yes ] && [[ $comparison == EQUAL* ]]
