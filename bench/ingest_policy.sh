#!/usr/bin/env bash
# ingest_policy.sh - `make bench-ingest-policy`: what the policy checks cost at ingest. Tern's
# ingress runs twice against the same smtp-source load, and Postfix once, in one invocation:
#
#   tern        the benchmarks' usual set-up: the client is in a trusted network, no checks run
#   tern-policy the client is a stranger on port 25: two DNSBL zones (NXDOMAIN, cached per client),
#               SPF of HELO and MAIL FROM in record mode (TTL 0, so every message asks), DKIM
#               verification and DMARC in record mode (the mail is unsigned: DMARC finds SPF
#               aligned, with its own DNS query per message), rate
#               limits per client network and per sender domain (limits never reached), the
#               pipelining check; all DNS answered by tern-bench-dns on 127.0.0.1
#   postfix     the durable Postfix relay, as in bench/ingest.sh
#
# CPU counted for Tern is Tern's + PostgreSQL's + nats-server's; the DNS server's is not (it
# stands for the site's resolver).
#
# Environment: MSGS (2000) REPS (1) SESSIONS ("10 50") QUIET_PCT (80:60) PEER_BENCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MSGS=${MSGS:-2000} REPS=${REPS:-1} SESSIONS=${SESSIONS:-"10 50"}
DNS_BIN=${DNS_BIN:-$ROOT/target/release/tern-bench-dns}
[[ -x $DNS_BIN ]] || die "$DNS_BIN not built (cargo build --release -p tern-loadgen)"

bench_init ingest-policy
start_bench_dns
EMPTY_TERN="$PSQL -X -q -d $BENCH_URL -c 'TRUNCATE attempts, jobs, messages, rate_limits'"

bash "$PEER/postfix_baseline.sh" start
for ((rep = 1; rep <= REPS; rep++)); do
  for sess in $SESSIONS; do
    log "rep $rep: sessions=$sess"
    start_tern_ingress
    smtp_load -s "$sess" -l 1024 -r 1 -E -L tern -D "$EMPTY_TERN" \
      -p "$ROOT/.dev" -P "$SUT_PIDS" 127.0.0.1 "$TERN_PORT" "$SINK_PORT"
    stop_tern
    start_tern_ingress "${POLICY[@]}"
    smtp_load -s "$sess" -l 1024 -r 1 -E -L tern-policy -D "$EMPTY_TERN" \
      -p "$ROOT/.dev" -P "$SUT_PIDS" 127.0.0.1 "$TERN_PORT" "$SINK_PORT"
    stop_tern
    smtp_load -s "$sess" -l 1024 -r 1 -L postfix -D "$POSTFIX_DRAINED" \
      -p "$SPOOL" -P "@$SPOOL/pid/master.pid" 127.0.0.1 "$SUT_PORT" "$SINK_PORT"
  done
done
bash "$PEER/postfix_baseline.sh" stop >/dev/null 2>&1 || true

echo
echo "Ingest with the policy checks off (tern) and on (tern-policy), and Postfix; ratio = Tern / Postfix:"
report
