#!/usr/bin/env bash
# ingest_dkim_verify.sh - `make bench-ingest-dkim-verify`: what the policy engine costs on mail
# that carries a DKIM signature, which smtp-source's mail does not (bench/ingest_policy.sh). One
# invocation, the same load from tern-loadgen (Postfix's smtp-source cannot send a given message)
# for each of:
#
#   tern         the benchmarks' usual set-up: the client is in a trusted network, no checks run
#   tern-policy  the client is a stranger on port 25 with the checks of bench/ingest_policy.sh on:
#                two DNSBL zones, SPF (record), DKIM and ARC verification, DMARC (record, the
#                domain's policy p=reject), rate limits per client network and sender domain
#   postfix      the durable Postfix relay, as in bench/ingest.sh (it verifies nothing)
#
# and each of two messages of about 1 KB from bench.test: `unsigned`, and `signed` by dkimpy
# (RSA-2048, relaxed/relaxed, d=bench.test) with its key published by tern-bench-dns. A signed
# run of tern-policy must record `dkim=pass` on every message it stored, or the script fails:
# a verifier that verified nothing is not reported.
#
# CPU counted for Tern is Tern's + PostgreSQL's + nats-server's; the DNS server's is not (it
# stands for the site's resolver).
#
# Environment: MSGS (2000) SESSIONS ("10 50") PEER_BENCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MSGS=${MSGS:-2000} SESSIONS=${SESSIONS:-"10 50"}
LOADGEN=${LOADGEN:-$ROOT/target/release/tern-loadgen}
DNS_BIN=${DNS_BIN:-$ROOT/target/release/tern-bench-dns}
[[ -x $LOADGEN && -x $DNS_BIN ]] || die "tern-loadgen and tern-bench-dns not built (cargo build --release -p tern-loadgen)"
PYTHON=$(bash "$ROOT/scripts/dkimpy.sh" python)

bench_init ingest-dkim-verify

# The messages: about 1 KB in 76-character lines, as tern-loadgen makes them, and the same signed
# by dkimpy.
KEYS=$OUT/dkim
mkdir -p "$KEYS"
openssl genrsa -traditional -out "$KEYS/bench.pem" 2048 2>/dev/null
PUBLIC=$(openssl rsa -in "$KEYS/bench.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
"$PYTHON" - "$KEYS/bench.pem" "$OUT/unsigned.eml" "$OUT/signed.eml" <<'PY'
import sys
import dkim
key_file, unsigned, signed = sys.argv[1:]
message = b"From: loadgen@bench.test\r\nTo: rcpt1@bench.test\r\nSubject: load\r\n\r\n"
while len(message) < 1024:
    message += b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"
signature = dkim.sign(message, b"bench", b"bench.test", open(key_file, "rb").read(),
                      canonicalize=(b"relaxed", b"relaxed"),
                      include_headers=[b"from", b"to", b"subject"])
open(unsigned, "wb").write(message)
open(signed, "wb").write(signature + message)
PY

start_bench_dns "bench._domainkey.bench.test=v=DKIM1; k=rsa; p=$PUBLIC"

HZ=$(getconf CLK_TCK)
bash "$PEER/postfix_baseline.sh" start
/usr/sbin/smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >/dev/null 2>&1 &
SINK_PID=$!
trap 'kill $DNS_PID $SINK_PID 2>/dev/null || true; bench_cleanup' EXIT
POSTFIX_ROOTS=("$(head -1 "$SPOOL/pid/master.pid" | tr -dc 0-9)")

echo "server,message,sessions,msgs,seconds,per_second,cpu_ms_per_msg" >"$OUT/runs.csv"
# run_cell SERVER MESSAGE SESSIONS: one load of MSGS messages; Tern's queue is emptied before.
run_cell() {
  local server=$1 message=$2 sessions=$3 port roots before after line seconds rate cpu_ms i
  if [[ $server == postfix ]]; then
    port=$SUT_PORT roots=("${POSTFIX_ROOTS[@]}")
  else
    port=$TERN_PORT roots=("$(head -1 "$PG_PIDFILE")" "$(head -1 "$NATS_PIDFILE")" "${TERN_PIDS[@]}")
    "$PSQL" -X -q -d "$BENCH_URL" -c 'TRUNCATE attempts, jobs, messages, rate_limits'
  fi
  before=$(tree_jiffies "${roots[@]}")
  line=$("$LOADGEN" "127.0.0.1:$port" --tls none --sessions "$sessions" --messages "$MSGS" \
    --message "$OUT/$message.eml")
  if [[ $server == postfix ]]; then
    for ((i = 0; i < 600; i++)); do eval "$POSTFIX_DRAINED" && break; sleep 0.1; done
  fi
  after=$(tree_jiffies "${roots[@]}")
  seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
  rate=$(sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$line")
  cpu_ms=$(python3 -c "print(f'{($after - $before) * 1000 / $HZ / $MSGS:.3f}')")
  if [[ $server == tern-policy && $message == signed ]]; then
    local passed
    passed=$("$PSQL" -X -qAt -d "$BENCH_URL" -c \
      "SELECT count(*) FROM messages WHERE position('dkim=pass header.d=bench.test'::bytea in body) > 0")
    [[ $passed == "$MSGS" ]] || die "only $passed of $MSGS signed messages were recorded as dkim=pass"
  fi
  log "$server $message sessions=$sessions: $line cpu_ms/msg=$cpu_ms"
  echo "$server,$message,$sessions,$MSGS,$seconds,$rate,$cpu_ms" >>"$OUT/runs.csv"
}

for sessions in $SESSIONS; do
  start_tern_ingress
  for message in unsigned signed; do run_cell tern "$message" "$sessions"; done
  stop_tern
  start_tern_ingress "${POLICY[@]}"
  for message in unsigned signed; do run_cell tern-policy "$message" "$sessions"; done
  stop_tern
  for message in unsigned signed; do run_cell postfix "$message" "$sessions"; done
done

echo
echo "Ingest of unsigned and DKIM-signed 1 KB mail, policy checks off (tern) and on (tern-policy), and Postfix:"
python3 - "$OUT/runs.csv" <<'PY' | tee "$OUT/summary.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{'sessions':>8} {'message':9} {'server':12} {'msg/s':>7} {'CPU ms/msg':>11} {'rate vs Postfix':>16}")
for r in rows:
    p = next(p for p in rows if p["server"] == "postfix" and p["message"] == r["message"] and p["sessions"] == r["sessions"])
    ratio = float(r["per_second"]) / float(p["per_second"])
    print(f"{r['sessions']:>8} {r['message']:9} {r['server']:12} {float(r['per_second']):>7.0f} {r['cpu_ms_per_msg']:>11} {ratio:>15.2f}x")
PY
log "raw results in $OUT"
