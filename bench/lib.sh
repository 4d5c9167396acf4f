# lib.sh - what the benchmarks share: the peer harness, a benchmark database, and Tern processes
# started from a release build with their pid files for the harness's CPU accounting.
# Sourced by bench/*.sh after `set -euo pipefail`; run through make (it sets the service env).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PEER=${PEER_BENCH_DIR:-$ROOT/../shared/bench}
TERN_BIN=${TERN_BIN:-$ROOT/target/release/tern}
PG_PIDFILE=${TERN_DEV_PG_PIDFILE:?run through make}
NATS_PIDFILE=${TERN_DEV_NATS_PIDFILE:?run through make}
# The Postfix peer's ports; Tern's SMTP port is 2625.
export SUT_PORT=2725 SINK_PORT=2726 CHECK_PORT=2727
TERN_PORT=2625
QUIET_PCT=${QUIET_PCT:-80:60}
SPOOL=/var/lib/mta-bench-postfix/spool
POSTFIX_DRAINED="[ -z \"\$(find $SPOOL/incoming $SPOOL/active $SPOOL/deferred $SPOOL/maildrop $SPOOL/hold -type f -print -quit 2>/dev/null)\" ]"

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
# SQL for the bytes of a queue table with its indexes, summed over its day partitions.
bytes() { printf "(SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('%s'))" "$1"; }

# bench_init NAME: checks, the results directory $OUT, a fresh database $BENCH_URL, cleanup trap.
bench_init() {
  [[ -x $PEER/smtp_load.sh && -x $PEER/postfix_baseline.sh ]] ||
    die "the peer harness is not at $PEER (set PEER_BENCH_DIR)"
  [[ -x $TERN_BIN ]] || die "$TERN_BIN not built (cargo build --release --bin tern)"
  [[ $(id -u) == 0 ]] || die "run as root: the Postfix peer runs as its own instance"
  OUT=$ROOT/bench/results/$1-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$OUT"
  PSQL=$(command -v psql || printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)
  local admin_url=$TERN_TEST_DATABASE_URL
  BENCH_URL=${admin_url%/*}/tern_bench
  "$PSQL" -X -q -d "$admin_url" -c "DROP DATABASE IF EXISTS tern_bench WITH (FORCE)" \
    -c "CREATE DATABASE tern_bench"
  TERN_ENV=(TERN_DATABASE_URL="$BENCH_URL" TERN_NATS_PREFIX="bench$$" TERN_LOG=warn)
  TERN_PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  env "${TERN_ENV[@]}" "$TERN_BIN" migrate
}

bench_cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${TERN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${TERN_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash "$PEER/postfix_baseline.sh" stop >/dev/null 2>&1 || true
}

# start_tern COMMAND ADMIN_ADDR [VAR=value ...]: runs `tern COMMAND`, waits for /readyz, writes
# $OUT/tern-NAME.pid (NAME: $INSTANCE, else COMMAND) and adds it to $SUT_PIDS (the harness's -P
# list).
start_tern() {
  local command=$1 admin=$2 name=${INSTANCE:-$1}
  shift 2
  env "${TERN_ENV[@]}" TERN_ADMIN_LISTEN="$admin" "$@" "$TERN_BIN" "$command" >"$OUT/tern-$name.log" 2>&1 &
  local pid=$! i
  TERN_PIDS+=("$pid")
  echo "$pid" >"$OUT/tern-$name.pid"
  SUT_PIDS=${SUT_PIDS:-@$PG_PIDFILE,@$NATS_PIDFILE},@$OUT/tern-$name.pid
  for ((i = 0; i < 100; i++)); do
    curl -fsS "http://$admin/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "tern $command exited at startup: $(tail -n 5 "$OUT/tern-$name.log")"
    sleep 0.2
  done
  curl -fsS "http://$admin/readyz" >/dev/null || die "tern $command is not ready (log: $OUT/tern-$name.log)"
  log "tern $command ready (pid $pid)"
}

# The ingress as the benchmarks run it: relaying for 127.0.0.0/8 like the Postfix peer's
# mynetworks, with room for many connections.
start_tern_ingress() {
  start_tern ingress 127.0.0.1:9190 TERN_INGRESS_SMTP_LISTEN=127.0.0.1:$TERN_PORT \
    TERN_INGRESS_SUBMISSION_LISTEN= TERN_INGRESS_TRUSTED_NETWORKS=127.0.0.0/8 \
    TERN_INGRESS_MAX_CONNECTIONS=20000 TERN_INGRESS_MAX_CONNECTIONS_PER_IP=20000 "$@"
}

# stop_tern: ends the running Tern processes before the next ones bind the same ports.
stop_tern() {
  local pid
  for pid in "${TERN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  TERN_PIDS=() SUT_PIDS=
}

# start_bench_dns [NAME=TEXT ...]: tern-bench-dns on 127.0.0.1 (with these TXT records), its
# address in $DNS_ADDR, its pid in $DNS_PID (killed on exit); $POLICY, the ingress settings
# that turn the policy checks on against it: two DNSBL zones, SPF and DMARC in record mode
# (DKIM verification with it), rate limits per client network and sender domain never reached.
start_bench_dns() {
  local i
  "$DNS_BIN" "$OUT/dns.addr" "$@" >"$OUT/dns.log" 2>&1 &
  DNS_PID=$!
  trap 'kill $DNS_PID 2>/dev/null || true; bench_cleanup' EXIT
  for ((i = 0; i < 50; i++)); do [[ -s $OUT/dns.addr ]] && break; sleep 0.1; done
  DNS_ADDR=$(cat "$OUT/dns.addr")
  log "bench DNS on $DNS_ADDR"
  POLICY=(TERN_INGRESS_TRUSTED_NETWORKS= TERN_INGRESS_LOCAL_DOMAINS=bench.test
    "TERN_INGRESS_DNSBL_SITES=bl1.bench.test*2,bl2.bench.test" TERN_INGRESS_DNSBL_NAMESERVER="$DNS_ADDR"
    TERN_INGRESS_SPF=record TERN_INGRESS_DMARC=record TERN_INGRESS_NAMESERVER="$DNS_ADDR"
    TERN_INGRESS_RATE_LIMIT_CLIENT=100000000/1h TERN_INGRESS_RATE_LIMIT_SENDER_DOMAIN=100000000/1h)
}

# smtp_load ARGS...: the peer harness, with the settings every run shares; RUN_MSGS messages
# (else MSGS), rows into RUNS_CSV (else runs.csv).
smtp_load() {
  bash "$PEER/smtp_load.sh" -S -N -o "${RUNS_CSV:-$OUT/runs.csv}" -m "${RUN_MSGS:-$MSGS}" -k 1 \
    -c reuse -T 300 -W "$QUIET_PCT" "$@"
}

# A run of a few thousand messages lasts a second or two, so start-up and drain dominate it. Each
# run therefore lasts about DURATION seconds: before a cell, one calibration run of CAL_MSGS
# messages per server measures its rate, and that server's runs of the cell send rate x DURATION
# messages. MSGS set: exactly that many per run, no calibration.
DURATION=${DURATION:-20} CAL_MSGS=${CAL_MSGS:-2000}

# run_cell MEASURE: one cell: each server's run size, then REPS runs alternating between them.
# TERN_RUN and POSTFIX_RUN (arrays) hold each server's smtp_load arguments for the cell.
run_cell() {
  local measure=$1 tern_msgs postfix_msgs rep
  tern_msgs=$(run_size "$measure" "${TERN_RUN[@]}")
  postfix_msgs=$(run_size "$measure" "${POSTFIX_RUN[@]}")
  for ((rep = 1; rep <= REPS; rep++)); do
    log "${TERN_RUN[*]:0:6} rep $rep: Tern $tern_msgs, Postfix $postfix_msgs messages"
    RUN_MSGS=$tern_msgs smtp_load "${TERN_RUN[@]}"
    RUN_MSGS=$postfix_msgs smtp_load "${POSTFIX_RUN[@]}"
  done
}

# run_size MEASURE ARGS...: how many messages a run of this server's cell sends (MEASURE:
# e2e_mps or ingest_mps, the rate to size by); ARGS as for smtp_load.
run_size() {
  local measure=$1
  shift
  if [[ -n ${MSGS:-} ]]; then
    echo "$MSGS"
    return
  fi
  RUN_MSGS=$CAL_MSGS RUNS_CSV=$OUT/calibration.csv smtp_load "$@" >&2
  python3 - "$OUT/calibration.csv" "$measure" "$DURATION" "$CAL_MSGS" <<'PY'
import csv, sys
path, measure, duration, least = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rate = float(list(csv.DictReader(open(path)))[-1][measure] or 0)
print(max(least, int(rate * duration)))
PY
}

# tree_jiffies PID...: CPU ticks (user + system, exited children included) of the process trees
# rooted at the given pids, read from /proc. Divide by `getconf CLK_TCK` for seconds.
tree_jiffies() {
  python3 - "$@" <<'PY'
import os, sys
roots = {int(x) for x in sys.argv[1:]}; kids = {}; t = {}
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        s = open("/proc/%s/stat" % d).read()
    except OSError:
        continue
    f = s[s.rindex(")") + 2:].split()
    kids.setdefault(int(f[1]), []).append(int(d))
    t[int(d)] = sum(int(x) for x in f[11:15])   # utime stime cutime cstime
total, todo, seen = 0, list(roots), set()
while todo:
    p = todo.pop()
    if p not in seen:
        seen.add(p); total += t.get(p, 0); todo.extend(kids.get(p, []))
print(total)
PY
}

# report MEASURE: the harness's summary, then medians with their spread (bench/spread.py).
report() {
  bash "$PEER/smtp_load.sh" -R "$OUT/runs.csv" -B postfix | tee "$OUT/summary.txt"
  echo
  python3 "$ROOT/bench/spread.py" "$OUT/runs.csv" "${1:-ingest_mps}" | tee "$OUT/spread.md"
  log "raw results in $OUT"
}
