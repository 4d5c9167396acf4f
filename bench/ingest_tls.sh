#!/usr/bin/env bash
# ingest_tls.sh - `make bench-ingest-tls`: sessions that STARTTLS and then send, Tern's ingress
# against the durable Postfix relay with TLS switched on, in one run.
#
#   tern-loadgen -> STARTTLS -> Tern ingress 127.0.0.1:2625 -> PostgreSQL commit + JetStream notice
#   tern-loadgen -> STARTTLS -> Postfix smtpd 127.0.0.1:2725 -> queue file -> smtp-sink 127.0.0.1:2726
#
# Postfix's smtp-source cannot STARTTLS, so the load comes from tern-loadgen (Tern's own SMTP
# client, pipelining when offered, one connection per session kept for all its messages). Both
# servers use the same self-signed RSA-2048 certificate. Each cell also runs without TLS through
# the same client, so the cost of TLS itself shows. Cells alternate between the servers.
#
# Measured per run: accepted messages per second (first connection to the last 250) and CPU
# milliseconds per message of the server's process tree: Tern + PostgreSQL + nats-server, or
# Postfix's master and all its daemons (including the relay to smtp-sink, as in bench-ingest;
# Tern runs ingest-only). CPU is read from /proc before the run and after it has settled
# (Postfix: queue drained).
#
# Modes: `starttls` (one handshake per session, then all its messages), `none` (the same without
# TLS), `starttls-1` (QUIT and a new connection and handshake for every message, as an MX sees
# most senders).
#
# Environment: MSGS (2000) SESSIONS ("10 50") SIZE (1024) RCPTS (1) MODES ("starttls none starttls-1")
#              PEER_BENCH_DIR (../shared/bench)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MSGS=${MSGS:-2000} SESSIONS=${SESSIONS:-"10 50"} SIZE=${SIZE:-1024} RCPTS=${RCPTS:-1}
MODES=${MODES:-"starttls none starttls-1"}
LOADGEN=${LOADGEN:-$ROOT/target/release/tern-loadgen}
POSTFIX_CONF=/var/lib/mta-bench-postfix/etc

[[ -x $LOADGEN ]] || die "$LOADGEN not built (cargo build --release -p tern-loadgen)"
bench_init ingest-tls

TLS_DIR=$OUT/tls
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench.test" \
  -addext "subjectAltName=DNS:bench.test,DNS:localhost" \
  -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
chmod 600 "$TLS_DIR/key.pem"

start_tern_ingress TERN_INGRESS_TLS_CERTIFICATES="$TLS_DIR/cert.pem:$TLS_DIR/key.pem" \
  TERN_INGRESS_SUBMISSIONS_LISTEN=
bash "$PEER/postfix_baseline.sh" start
postconf -c "$POSTFIX_CONF" -e smtpd_tls_security_level=may \
  "smtpd_tls_cert_file=$TLS_DIR/cert.pem" "smtpd_tls_key_file=$TLS_DIR/key.pem"
postfix -c "$POSTFIX_CONF" reload >/dev/null 2>&1
/usr/sbin/smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >/dev/null 2>&1 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true; bench_cleanup' EXIT

HZ=$(getconf CLK_TCK)
TERN_ROOTS=("$(head -1 "$PG_PIDFILE")" "$(head -1 "$NATS_PIDFILE")" "${TERN_PIDS[@]}")
POSTFIX_ROOTS=("$(head -1 /var/lib/mta-bench-postfix/spool/pid/master.pid | tr -dc 0-9)")
EMPTY_TERN=("$PSQL" -X -q -d "$BENCH_URL" -c 'TRUNCATE attempts, jobs, messages')

echo "server,mode,sessions,msgs,seconds,per_second,cpu_ms_per_msg" >"$OUT/runs.csv"
# run_cell SERVER PORT MODE SESSIONS
run_cell() {
  local server=$1 port=$2 mode=$3 sessions=$4 roots before after line seconds rate i
  if [[ $server == tern ]]; then roots=("${TERN_ROOTS[@]}"); "${EMPTY_TERN[@]}"; else roots=("${POSTFIX_ROOTS[@]}"); fi
  before=$(tree_jiffies "${roots[@]}")
  local per_connection=0
  [[ $mode == *-1 ]] && per_connection=1
  line=$("$LOADGEN" "127.0.0.1:$port" --tls "${mode%-1}" --sessions "$sessions" --messages "$MSGS" \
    --size "$SIZE" --recipients "$RCPTS" --per-connection "$per_connection")
  if [[ $server == postfix ]]; then
    for ((i = 0; i < 600; i++)); do eval "$POSTFIX_DRAINED" && break; sleep 0.1; done
  fi
  after=$(tree_jiffies "${roots[@]}")
  seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
  rate=$(sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$line")
  local cpu_ms
  cpu_ms=$(python3 -c "print(f'{($after - $before) * 1000 / $HZ / $MSGS:.3f}')")
  log "$server $mode sessions=$sessions: $line cpu_ms/msg=$cpu_ms"
  echo "$server,$mode,$sessions,$MSGS,$seconds,$rate,$cpu_ms" >>"$OUT/runs.csv"
}

for sessions in $SESSIONS; do
  for mode in $MODES; do
    run_cell tern "$TERN_PORT" "$mode" "$sessions"
    run_cell postfix "$SUT_PORT" "$mode" "$sessions"
  done
done

echo
echo "STARTTLS ingest, $SIZE bytes, $RCPTS recipient(s), $MSGS messages per run; ratio = Tern / Postfix:"
python3 - "$OUT/runs.csv" <<'PY' | tee "$OUT/summary.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cell = {(r["server"], r["mode"], r["sessions"]): r for r in rows}
print(f"{'mode':10} {'sessions':>8} {'Tern msg/s':>11} {'Postfix msg/s':>14} {'ratio':>6} {'Tern CPU ms/msg':>16} {'Postfix CPU ms/msg':>19}")
for (server, mode, sessions), t in cell.items():
    if server != "tern" or ("postfix", mode, sessions) not in cell:
        continue
    p = cell[("postfix", mode, sessions)]
    ratio = float(t["per_second"]) / float(p["per_second"])
    print(f"{mode:10} {sessions:>8} {float(t['per_second']):>11.0f} {float(p['per_second']):>14.0f} {ratio:>5.2f}x {t['cpu_ms_per_msg']:>16} {p['cpu_ms_per_msg']:>19}")
PY
log "raw results in $OUT"
