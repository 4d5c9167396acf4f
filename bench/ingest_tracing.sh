#!/usr/bin/env bash
# ingest_tracing.sh - `make bench-ingest-tracing`: what OpenTelemetry tracing costs the ingress.
# Two release ingresses share the benchmark database: one with tracing off, one sampling every
# trace (OTEL_TRACES_SAMPLER=always_on) and exporting over OTLP/gRPC to a local receiver
# (tern-otlp-sink, which counts what it gets), plus the durable Postfix peer for the usual ratio.
#
#   tern-loadgen -> Tern ingress, tracing off  127.0.0.1:2625 -> PostgreSQL + JetStream
#   tern-loadgen -> Tern ingress, tracing on   127.0.0.1:2635 -> ... + spans -> tern-otlp-sink
#   tern-loadgen -> Postfix smtpd              127.0.0.1:2725 -> queue file -> smtp-sink
#
# Measured per run: accepted messages per second and CPU milliseconds per message of the
# server's process tree (the ingress + PostgreSQL + nats-server; Postfix's master and its
# daemons). The receiver's own CPU is reported apart: it stands for a collector, not for Tern.
#
# Environment: MSGS (2000) SESSIONS ("10 50") SIZE (1024) REPS (2)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MSGS=${MSGS:-2000} SESSIONS=${SESSIONS:-"10 50"} SIZE=${SIZE:-1024} REPS=${REPS:-2}
LOADGEN=${LOADGEN:-$ROOT/target/release/tern-loadgen}
OTLP_SINK=${OTLP_SINK:-$ROOT/target/release/tern-otlp-sink}
TRACED_PORT=2635

[[ -x $LOADGEN && -x $OTLP_SINK ]] || die "build first: cargo build --release -p tern-loadgen"
bench_init ingest-tracing

"$OTLP_SINK" >"$OUT/otlp-sink.log" 2>&1 &
SINK_PID=$!
for ((i = 0; i < 100; i++)); do grep -q '^endpoint ' "$OUT/otlp-sink.log" && break; sleep 0.1; done
OTLP_ENDPOINT=$(sed -n 's/^endpoint //p' "$OUT/otlp-sink.log")
[[ -n $OTLP_ENDPOINT ]] || die "tern-otlp-sink did not start: $(cat "$OUT/otlp-sink.log")"
start_tern_ingress
PLAIN_PID=${TERN_PIDS[-1]}
start_tern ingress 127.0.0.1:9191 TERN_INGRESS_SMTP_LISTEN=127.0.0.1:$TRACED_PORT \
  TERN_INGRESS_SUBMISSION_LISTEN= TERN_INGRESS_TRUSTED_NETWORKS=127.0.0.0/8 \
  TERN_INGRESS_MAX_CONNECTIONS=20000 TERN_INGRESS_MAX_CONNECTIONS_PER_IP=20000 \
  OTEL_EXPORTER_OTLP_ENDPOINT="$OTLP_ENDPOINT" OTEL_TRACES_SAMPLER=always_on \
  OTEL_SERVICE_NAME=tern-ingress-bench
TRACED_PID=${TERN_PIDS[-1]}
bash "$PEER/postfix_baseline.sh" start
/usr/sbin/smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >/dev/null 2>&1 &
SMTP_SINK_PID=$!
trap 'kill "$SMTP_SINK_PID" "$SINK_PID" 2>/dev/null || true; bench_cleanup' EXIT

HZ=$(getconf CLK_TCK)
SERVICES=("$(head -1 "$PG_PIDFILE")" "$(head -1 "$NATS_PIDFILE")")
POSTFIX_ROOT=$(head -1 /var/lib/mta-bench-postfix/spool/pid/master.pid | tr -dc 0-9)
EMPTY_TERN=("$PSQL" -X -q -d "$BENCH_URL" -c 'TRUNCATE attempts, jobs, messages')

echo "server,sessions,rep,msgs,seconds,per_second,cpu_ms_per_msg,receiver_cpu_ms_per_msg" >"$OUT/runs.csv"
# run_cell SERVER PORT SESSIONS REP
run_cell() {
  local server=$1 port=$2 sessions=$3 rep=$4 roots before after sink_before sink_after line i
  case $server in
    tern-off) roots=("${SERVICES[@]}" "$PLAIN_PID"); "${EMPTY_TERN[@]}" ;;
    tern-on) roots=("${SERVICES[@]}" "$TRACED_PID"); "${EMPTY_TERN[@]}" ;;
    postfix) roots=("$POSTFIX_ROOT") ;;
  esac
  before=$(tree_jiffies "${roots[@]}")
  sink_before=$(tree_jiffies "$SINK_PID")
  line=$("$LOADGEN" "127.0.0.1:$port" --tls none --sessions "$sessions" --messages "$MSGS" --size "$SIZE")
  if [[ $server == postfix ]]; then
    for ((i = 0; i < 600; i++)); do eval "$POSTFIX_DRAINED" && break; sleep 0.1; done
  else
    sleep 2 # the batch exporter sends every second or so; its work belongs to this run
  fi
  after=$(tree_jiffies "${roots[@]}")
  sink_after=$(tree_jiffies "$SINK_PID")
  local seconds rate cpu sink
  seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
  rate=$(sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$line")
  cpu=$(python3 -c "print(f'{($after - $before) * 1000 / $HZ / $MSGS:.3f}')")
  sink=$(python3 -c "print(f'{($sink_after - $sink_before) * 1000 / $HZ / $MSGS:.3f}')")
  log "$server sessions=$sessions rep=$rep: $line cpu_ms/msg=$cpu receiver_cpu_ms/msg=$sink"
  echo "$server,$sessions,$rep,$MSGS,$seconds,$rate,$cpu,$sink" >>"$OUT/runs.csv"
}

for sessions in $SESSIONS; do
  for ((rep = 1; rep <= REPS; rep++)); do
    run_cell tern-off "$TERN_PORT" "$sessions" "$rep"
    run_cell tern-on "$TRACED_PORT" "$sessions" "$rep"
    run_cell postfix "$SUT_PORT" "$sessions" "$rep"
  done
done
log "receiver: $(tail -n 1 "$OUT/otlp-sink.log" 2>/dev/null || echo 'no output')"

echo
echo "Ingest with tracing off and on (100% sampled, OTLP/gRPC), $SIZE bytes, $MSGS messages per run, medians of $REPS:"
python3 - "$OUT/runs.csv" <<'PY' | tee "$OUT/summary.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def med(server, sessions, key):
    v = [float(r[key]) for r in rows if r["server"] == server and r["sessions"] == sessions]
    return statistics.median(v) if v else float("nan")
print(f"{'sessions':>8} {'off msg/s':>10} {'on msg/s':>9} {'Postfix':>8} {'off CPU':>8} {'on CPU':>7} {'cost ms/msg':>12} {'Postfix CPU':>12} {'on/Postfix':>10}")
for sessions in sorted({r["sessions"] for r in rows}, key=int):
    off, on, pf = (med(s, sessions, "cpu_ms_per_msg") for s in ("tern-off", "tern-on", "postfix"))
    r_off, r_on, r_pf = (med(s, sessions, "per_second") for s in ("tern-off", "tern-on", "postfix"))
    print(f"{sessions:>8} {r_off:>10.0f} {r_on:>9.0f} {r_pf:>8.0f} {off:>8.3f} {on:>7.3f} {on - off:>12.3f} {pf:>12.3f} {on / pf:>10.2f}")
PY
log "raw results in $OUT"
