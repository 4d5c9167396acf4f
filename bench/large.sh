#!/usr/bin/env bash
# large.sh - `make bench-large`: LARGE_SESSIONS (50) sessions each sending one message of
# LARGE_SIZE bytes (25,000,000) at once through a release `tern ingress` and one `tern worker`
# into smtp-sink: the peak resident memory of each (VmHWM) over its resident memory before, per
# message in flight, and what the messages cost PostgreSQL (WAL and table bytes, CPU). The
# message is what large mail is: a MIME attachment of random bytes in base64, which PostgreSQL
# cannot compress much (a body of repeated lines compresses to 1% and says nothing).
#
# Environment: LARGE_SESSIONS LARGE_SIZE ROUNDS (1: messages per session) PEER_BENCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LARGE_SESSIONS=${LARGE_SESSIONS:-50} LARGE_SIZE=${LARGE_SIZE:-25000000} ROUNDS=${ROUNDS:-1}
LOADGEN=${LOADGEN:-$ROOT/target/release/tern-loadgen}
[[ -x $LOADGEN ]] || die "$LOADGEN not built (cargo build --release -p tern-loadgen)"

bench_init large
SQL() { "$PSQL" -X -A -t -q -d "$BENCH_URL" -c "$1"; }
/usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1024 >/dev/null 2>&1 &
SINK=$!
trap 'kill $SINK 2>/dev/null || true; bench_cleanup' EXIT
start_tern_ingress
start_tern worker 127.0.0.1:9191 TERN_WORKER_SMARTHOST="smtp:[127.0.0.1]:$SINK_PORT"
ingress=$(cat "$OUT/tern-ingress.pid") worker=$(cat "$OUT/tern-worker.pid")
PG_PID=$(head -n 1 "$PG_PIDFILE")
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
rss_ingress=$(kib "$ingress" VmRSS) rss_worker=$(kib "$worker" VmRSS)
SQL "checkpoint"
wal0=$(SQL "select pg_current_wal_lsn()")
pg0=$(tree_jiffies "$PG_PID")
messages=$((LARGE_SESSIONS * ROUNDS))
python3 - "$LARGE_SIZE" >"$OUT/message.eml" <<'PY'
import base64, os, sys
size = int(sys.argv[1])
head = ("From: loadgen@bench.test\r\nTo: rcpt1@bench.test\r\nSubject: large\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nattached\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
sys.stdout.buffer.write(head.encode())
data = base64.encodebytes(os.urandom((size - len(head)) * 57 // 78)).replace(b"\n", b"\r\n")
sys.stdout.buffer.write(data + b"--b--\r\n")
PY
start=$(date +%s.%N)
"$LOADGEN" --tls none --sessions "$LARGE_SESSIONS" --messages "$messages" --message "$OUT/message.eml" \
  "127.0.0.1:$TERN_PORT" | tee "$OUT/loadgen.txt"
for ((i = 0; i < 3000; i++)); do
  [[ $(SQL "select count(*) from jobs where status in ('queued','leased','deferred')") == 0 ]] && break
  sleep 0.2
done
seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
delivered=$(SQL "select count(*) from jobs where status = 'delivered'")
[[ $delivered == "$messages" ]] || die "$delivered of $messages delivered"
read -r wal table < <(SQL "select pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0'),
  $(bytes messages)" | tr '|' ' ')
pg_ms=$(( ($(tree_jiffies "$PG_PID") - pg0) * 1000 / $(getconf CLK_TCK) ))
hwm_ingress=$(kib "$ingress" VmHWM) hwm_worker=$(kib "$worker" VmHWM)
python3 - "$messages" "$LARGE_SESSIONS" "$LARGE_SIZE" "$seconds" "$rss_ingress" "$hwm_ingress" \
  "$rss_worker" "$hwm_worker" "$wal" "$table" "$pg_ms" <<'PY' | tee "$OUT/summary.txt"
import sys
n, sessions, size, secs, ri, hi, rw, hw, wal, table, pg_ms = (float(x) for x in sys.argv[1:])
mib = 1024 * 1024
print(f"{n:.0f} messages of {size / 1e6:.0f} MB over {sessions:.0f} sessions, delivered in {secs:.1f} s")
print(f"ingress: {ri / 1024:.0f} MiB before, peak {hi / 1024:.0f} MiB: "
      f"{(hi - ri) * 1024 / sessions / size:.2f} x the message size per session")
print(f"worker:  {rw / 1024:.0f} MiB before, peak {hw / 1024:.0f} MiB: {(hw - rw) / 1024:.0f} MiB above")
print(f"PostgreSQL: WAL {wal / n / size:.2f} x the message size per message, "
      f"table {table / n / size:.2f} x, CPU {pg_ms / n:.0f} ms per message")
PY
