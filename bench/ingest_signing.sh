#!/usr/bin/env bash
# ingest_signing.sh - `make bench-ingest-signing`: what DKIM signing costs at ingest. For each
# message size, Tern's ingress runs three times against the same smtp-source load, and Postfix
# (which signs nothing) once, in one invocation:
#
#   tern          the benchmarks' usual set-up (the client is in a trusted network), no key
#   tern-rsa      the same with an RSA-2048 signing key for bench.test, the From: domain
#   tern-ed25519  the same with an Ed25519 key instead
#   postfix       the durable Postfix relay, as in bench/ingest.sh
#
# CPU counted for Tern is Tern's + PostgreSQL's + nats-server's.
#
# Environment: MSGS (2000) REPS (1) SESSIONS (10) SIZES ("1024 102400") QUIET_PCT PEER_BENCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MSGS=${MSGS:-2000} REPS=${REPS:-1} SESSIONS=${SESSIONS:-10} SIZES=${SIZES:-"1024 102400"}

bench_init ingest-signing
# The drain check empties the queue between runs; first it notes how many stored messages carry
# a signature, so that a signing run that signed nothing is caught rather than reported.
cat >"$OUT/drain.sh" <<DRAIN
"$PSQL" -X -qAt -d "$BENCH_URL" -c "SELECT count(*) FROM messages WHERE position('DKIM-Signature:'::bytea in body) > 0" >>"$OUT/signed-\$1"
"$PSQL" -X -q -d "$BENCH_URL" -c 'TRUNCATE attempts, jobs, messages'
DRAIN

# use_key ALGORITHM: bench.test's only signing key becomes a fresh one of ALGORITHM, made by
# `tern dkim create`; `none` leaves it without a key.
use_key() {
  local algorithm=$1
  "$PSQL" -X -q -d "$BENCH_URL" -c "DELETE FROM dkim_keys"
  [[ $algorithm == none ]] && return
  env "${TERN_ENV[@]}" "$TERN_BIN" dkim create bench.test "bench-$algorithm" --algorithm "$algorithm" >/dev/null
}

bash "$PEER/postfix_baseline.sh" start
for ((rep = 1; rep <= REPS; rep++)); do
  for size in $SIZES; do
    for variant in none:tern rsa-sha256:tern-rsa ed25519-sha256:tern-ed25519; do
      log "rep $rep: ${size} B, ${variant#*:}"
      use_key "${variant%%:*}"
      start_tern_ingress
      smtp_load -s "$SESSIONS" -l "$size" -r 1 -E -L "${variant#*:}" -D "bash $OUT/drain.sh ${variant#*:}" \
        -p "$ROOT/.dev" -P "$SUT_PIDS" 127.0.0.1 "$TERN_PORT" "$SINK_PORT"
      stop_tern
      signed=$(sort -n "$OUT/signed-${variant#*:}" | tail -1)
      log "${variant#*:}: $signed messages stored signed"
      [[ ${variant%%:*} == none || $signed -gt 0 ]] || die "the ${variant#*:} run signed nothing"
    done
    smtp_load -s "$SESSIONS" -l "$size" -r 1 -L postfix -D "$POSTFIX_DRAINED" \
      -p "$SPOOL" -P "@$SPOOL/pid/master.pid" 127.0.0.1 "$SUT_PORT" "$SINK_PORT"
  done
done
bash "$PEER/postfix_baseline.sh" stop >/dev/null 2>&1 || true
echo
echo "Ingest without a key (tern) and signing with RSA-2048 or Ed25519, and Postfix; ratio = Tern / Postfix:"
report
