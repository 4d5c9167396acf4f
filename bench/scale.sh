#!/usr/bin/env bash
# scale.sh - `make bench-scale`: where the claim path stops scaling, what history costs it, and
# what a message costs the database. Four parts, one PostgreSQL (the .dev one, fsync on):
#
#   1. Per message: PER_MSG_MSGS (20,000) 1 KB messages through a real ingress and one worker into
#      smtp-sink: bytes of WAL and of table per message, ingest and delivery together.
#   2. Workers side by side: 1, 2, 4 and 8 `tern worker` processes (WORKERS) drain SCALE_MSGS
#      (60,000) queued one-recipient messages into an instant smtp-sink: messages and claims per
#      second, the claim size, what the backends wait on (sampled every 20 ms), and CPU per
#      delivered message of the workers + PostgreSQL + nats-server.
#   3. Many claimers: `tern-queue-sim claim` runs the worker's own claim, load and finish
#      statements on CLAIMERS (1 .. 64) connections over SIM_JOBS (100,000) jobs: the knee, with
#      no SMTP in the way. One more cell finishes a claim's jobs in one statement instead of one
#      per message (what the worker's batched finishing does under load).
#   4. History: HISTORY (10,000,000) finished messages in the tables, one partition per day,
#      then the same claim cells at 1 and 8 claimers, and retention as a worker runs it (bodies:
#      nothing due; history: the days past TERN_RETENTION_HISTORY, about an eighth, first row by
#      row for ROW_SWEEP_SECONDS (10), then the rest dropped as whole days).
#
# Environment: PARTS ("1 2 3 4") WORKERS SCALE_MSGS CLAIMERS SIM_JOBS HISTORY PER_MSG_MSGS
#              ROW_SWEEP_SECONDS
#              PEER_BENCH_DIR (../shared/bench)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PARTS=${PARTS:-"1 2 3 4"} WORKERS=${WORKERS:-"1 2 4 8"} SCALE_MSGS=${SCALE_MSGS:-60000}
CLAIMERS=${CLAIMERS:-"1 2 4 8 16 32 64"} SIM_JOBS=${SIM_JOBS:-100000}
HISTORY=${HISTORY:-10000000} PER_MSG_MSGS=${PER_MSG_MSGS:-20000}
ROW_SWEEP_SECONDS=${ROW_SWEEP_SECONDS:-10}
SIM_BIN=${SIM_BIN:-$ROOT/target/release/tern-queue-sim}
[[ -x $SIM_BIN ]] || die "$SIM_BIN not built (cargo build --release -p tern-loadgen)"

bench_init scale
SQL() { "$PSQL" -X -A -t -q -d "$BENCH_URL" -c "$1"; }
PG_PID=$(head -n 1 "$PG_PIDFILE")
NATS_PID=$(cat "$NATS_PIDFILE")
TCK=$(getconf CLK_TCK)
SIM=("$SIM_BIN" --url "$BENCH_URL" --pg-pid "$PG_PID")
fill() { # fill HISTORY QUEUED [DUE_IN]
  "$PSQL" -X -q -d "$BENCH_URL" -v history="$1" -v queued="$2" -v rcpts=1 -v domains=1000 \
    -v due_in="${3:-0}" -f "$ROOT/bench/scale_fill.sql"
}
# Through the claim index, so that watching costs the database next to nothing (a count of the
# whole table ten times a second cost it more than the deliveries did).
drained() {
  [[ $(SQL "select (select next_attempt_at from jobs where status in ('queued','deferred','leased')
                     order by next_attempt_at limit 1) is null") == t ]]
}
wait_drained() { # wait_drained TIMEOUT_S
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    drained && return 0
    sleep 0.1
  done
  die "the queue did not drain in $1 s"
}
/usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1024 >/dev/null 2>&1 &
SINK=$!
trap 'kill $SINK 2>/dev/null || true; bench_cleanup' EXIT
WORKER_ENV=(TERN_WORKER_SMARTHOST="smtp:[127.0.0.1]:$SINK_PORT" TERN_WORKER_POLL_INTERVAL=200ms
  TERN_WORKER_DESTINATION_CONCURRENCY=10000)

# 1. Bytes per message, the whole path.
if [[ " $PARTS " == *" 1 "* ]]; then
  start_tern_ingress
  INSTANCE=worker-1 start_tern worker 127.0.0.1:9191 "${WORKER_ENV[@]}"
  SQL "checkpoint"
  wal0=$(SQL "select pg_current_wal_lsn()")
  size0=$(SQL "select $(bytes messages) + $(bytes jobs) + $(bytes attempts)")
  /usr/sbin/smtp-source -d -s 10 -m "$PER_MSG_MSGS" -l 1024 -f sender@origin.test -t user@d1.test \
    "127.0.0.1:$TERN_PORT" >/dev/null
  wait_drained 300
  read -r wal size < <(SQL "select pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0'),
    $(bytes messages) + $(bytes jobs) + $(bytes attempts) - $size0" | tr '|' ' ')
  echo "per message (1 KB, 1 recipient, ingest + delivery): WAL $((wal / PER_MSG_MSGS)) bytes, tables $((size / PER_MSG_MSGS)) bytes" |
    tee "$OUT/per-message.txt"
  stop_tern
  SQL "TRUNCATE attempts, jobs, messages"
fi

# 2. Workers side by side.
metric_sum() { # metric_sum NAME_AND_LABELS PORT...: the sum over the workers' /metrics
  local name=$1 port total=0 value
  shift
  for port in "$@"; do
    value=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk -v m="$name" 'index($0, m) == 1 { print $2 }')
    total=$(echo "$total + ${value:-0}" | bc -l)
  done
  echo "$total"
}
if [[ " $PARTS " == *" 2 "* ]]; then
  echo "workers,messages,seconds,msgs_per_s,claims_per_s,jobs_per_claim,empty_claims,cpu_ms_per_msg,worker_cpu_ms_per_msg,waits" >"$OUT/workers.csv"
  for workers in $WORKERS; do
    SQL "TRUNCATE attempts, jobs, messages"
    fill 0 "$SCALE_MSGS" 3600
    ports=() pids=()
    for ((w = 1; w <= workers; w++)); do
      INSTANCE=worker-$w start_tern worker "127.0.0.1:$((9190 + w))" "${WORKER_ENV[@]}"
      ports+=($((9190 + w)))
      pids+=("$(cat "$OUT/tern-worker-$w.pid")")
    done
    "${SIM[@]}" watch >"$OUT/waits-$workers.txt" &
    watcher=$!
    cpu0=$(tree_jiffies "$PG_PID" "$NATS_PID" "${pids[@]}") wcpu0=$(tree_jiffies "${pids[@]}")
    start=$(date +%s.%N)
    SQL "UPDATE jobs SET next_attempt_at = now() WHERE status = 'queued'"
    wait_drained 600
    seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
    cpu1=$(tree_jiffies "$PG_PID" "$NATS_PID" "${pids[@]}") wcpu1=$(tree_jiffies "${pids[@]}")
    kill -TERM "$watcher"
    wait "$watcher" || true
    claims=$(metric_sum 'tern_worker_claims_total{result="jobs"}' "${ports[@]}")
    empty=$(metric_sum 'tern_worker_claims_total{result="empty"}' "${ports[@]}")
    jobs=$(metric_sum 'tern_worker_jobs_claimed_total' "${ports[@]}")
    stop_tern
    python3 - "$workers" "$SCALE_MSGS" "$seconds" "$claims" "$empty" "$jobs" "$((cpu1 - cpu0))" "$((wcpu1 - wcpu0))" "$TCK" \
      "$(cat "$OUT/waits-$workers.txt")" >>"$OUT/workers.csv" <<'PY'
import sys
w, n, s, claims, empty, jobs, ticks, wticks, tck, waits = sys.argv[1:]
n, s, claims, empty, jobs = int(n), float(s), float(claims), float(empty), float(jobs)
print(f"{w},{n},{s:.1f},{n / s:.0f},{(claims + empty) / s:.0f},{jobs / max(claims, 1):.1f},"
      f"{empty:.0f},{int(ticks) * 1000 / int(tck) / n:.3f},{int(wticks) * 1000 / int(tck) / n:.3f},{waits}")
PY
    tail -n 1 "$OUT/workers.csv"
  done
fi

# 3. Many claimers, the worker's statements without SMTP.
if [[ " $PARTS " == *" 3 "* ]]; then
  for claimers in $CLAIMERS; do
    SQL "TRUNCATE attempts, jobs, messages"
    fill 0 "$SIM_JOBS"
    "${SIM[@]}" claim --claimers "$claimers" --seconds 300 | tee -a "$OUT/claimers.txt"
  done
  SQL "TRUNCATE attempts, jobs, messages"
  fill 0 "$SIM_JOBS"
  "${SIM[@]}" claim --claimers 8 --finish-per claim --seconds 300 | tee -a "$OUT/claimers.txt"
fi

# 4. History.
if [[ " $PARTS " == *" 4 "* ]]; then
  SQL "TRUNCATE attempts, jobs, messages"
  "$PSQL" -X -q -d "$BENCH_URL" -f "$ROOT/bench/scale_days.sql"
  start=$(date +%s)
  fill "$HISTORY" 0
  SQL "VACUUM messages, jobs, attempts"
  log "filled $HISTORY finished messages in $(($(date +%s) - start)) s"
  SQL "select $(bytes messages), $(bytes jobs),
              $(bytes attempts)" | tr '|' ' ' | {
    read -r m j a
    echo "history: $HISTORY messages; messages $((m >> 20)) MiB, jobs $((j >> 20)) MiB, attempts $((a >> 20)) MiB"
  } | tee "$OUT/history.txt"
  for claimers in 1 8; do
    fill 0 "$SIM_JOBS"
    "${SIM[@]}" claim --claimers "$claimers" --seconds 300 | sed "s/^/history=$HISTORY /" | tee -a "$OUT/history.txt"
  done
  "${SIM[@]}" sweep --what body --after 86400 --seconds 60 | tee -a "$OUT/history.txt"
  "${SIM[@]}" sweep --what history --after $((7 * 86400)) --seconds "$ROW_SWEEP_SECONDS" |
    tee -a "$OUT/history.txt"
  "${SIM[@]}" sweep --what days --after $((7 * 86400)) | tee -a "$OUT/history.txt"
fi
log "raw results in $OUT"
