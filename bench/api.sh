#!/usr/bin/env bash
# api.sh - `make bench-api`: how fast the admin API answers an operator's questions about a big
# queue, and how fast Postfix's own tools answer the same questions, in one run.
#
#   Tern:    JOBS jobs (default 1,000,000): DEFERRED (100,000) deferred across DOMAINS (1,000)
#            destination domains, the rest delivered history (bodies older than a day already
#            swept, as retention leaves them); a release `tern api` on 127.0.0.1:9192.
#   Postfix: POSTFIX_DEFERRED (= DEFERRED) deferred messages across POSTFIX_DOMAINS (10) domains
#            in the peer harness's durable instance, its relay host not listening.
#
# Questions, asked REQUESTS (200) times of Tern and POSTFIX_RUNS (5) times of Postfix (each
# Postfix answer reads the whole queue: seconds, not milliseconds):
#   summary        GET /v1/queue/summary                 qshape deferred
#   queue page     GET /v1/queue?status=deferred&domain=  postqueue -j (the whole listing: Postfix
#                  d500.test&limit=50                    has no filter or page)
#   message-id     GET /v1/messages?message_id=<…>       (none: Postfix keeps no index)
#   detail         GET /v1/messages/{queue_id}           postcat -q QUEUE_ID
# It also reports the database's size per million messages in this shape.
#
# Environment: JOBS DEFERRED DOMAINS REQUESTS POSTFIX_DEFERRED POSTFIX_DOMAINS POSTFIX_RUNS
#              PEER_BENCH_DIR (../shared/bench)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
JOBS=${JOBS:-1000000} DEFERRED=${DEFERRED:-100000} DOMAINS=${DOMAINS:-1000}
REQUESTS=${REQUESTS:-200} POSTFIX_DEFERRED=${POSTFIX_DEFERRED:-$DEFERRED}
POSTFIX_DOMAINS=${POSTFIX_DOMAINS:-10} POSTFIX_RUNS=${POSTFIX_RUNS:-5}
CONF=/var/lib/mta-bench-postfix/etc
API=127.0.0.1:9192

bench_init api
SQL() { "$PSQL" -X -A -t -q -d "$BENCH_URL" -c "$1"; }

# 1. The template: one message through a real ingress and worker into an smtp-sink, so the rows
#    the fill clones are the rows Tern writes.
/usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 64 >/dev/null 2>&1 &
SINK=$!
start_tern_ingress
start_tern worker 127.0.0.1:9191 TERN_WORKER_SMARTHOST="smtp:[127.0.0.1]:$SINK_PORT"
swaks --server "127.0.0.1:$TERN_PORT" --from sender@origin.test --to user@d1.test \
  --header "Message-ID: <template@origin.test>" --body "$(printf 'x%.0s' {1..900})" --silent 2 ||
  die "the template message was not accepted"
for ((i = 0; i < 100; i++)); do
  [[ $(SQL "select count(*) from attempts") == 1 ]] && break
  sleep 0.1
done
[[ $(SQL "select count(*) from attempts") == 1 ]] || die "the template message was not delivered"
for pid in "${TERN_PIDS[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
TERN_PIDS=() SUT_PIDS=
kill "$SINK" 2>/dev/null || true
wait "$SINK" 2>/dev/null || true

# 2. The fill, and what it costs on disk.
log "filling: $JOBS jobs, $DEFERRED deferred across $DOMAINS domains"
start=$(date +%s)
"$PSQL" -X -q -d "$BENCH_URL" -v jobs="$JOBS" -v deferred="$DEFERRED" -v domains="$DOMAINS" \
  -f "$ROOT/bench/api_fill.sql"
log "filled in $(($(date +%s) - start)) s"
SQL "select pg_database_size(current_database()),
            $(bytes messages), $(bytes jobs),
            $(bytes attempts)" | tr '|' ' ' >"$OUT/size.txt"
read -r db_bytes messages_bytes jobs_bytes attempts_bytes <"$OUT/size.txt"

# 3. Tern's answers.
echo "bench-api-token-$$-$RANDOM$RANDOM" >"$OUT/token"
start_tern api "$API" TERN_API_LISTEN="$API" TERN_API_BOOTSTRAP_TOKEN_FILE="$OUT/token"
probe=$((JOBS - DEFERRED / 2))
detail_id=$(SQL "select replace(message_id::text, '-', '') from jobs where id = $probe")
echo "system,question,n,p50_ms,p99_ms" >"$OUT/latency.csv"
python3 "$ROOT/bench/api_latency.py" http tern "http://$API" "$(cat "$OUT/token")" "$REQUESTS" \
  "summary=/v1/queue/summary" \
  "queue page=/v1/queue?status=deferred&domain=d500.test&limit=50" \
  "message-id=/v1/messages?message_id=%3Cbench-$probe%40origin.test%3E" \
  "detail=/v1/messages/$detail_id" | tee -a "$OUT/latency.csv"

# 4. Postfix's answers, its relay host not listening so that everything stays deferred.
bash "$PEER/postfix_baseline.sh" start
per_domain=$((POSTFIX_DEFERRED / POSTFIX_DOMAINS))
log "queueing $((per_domain * POSTFIX_DOMAINS)) messages in Postfix"
for ((d = 1; d <= POSTFIX_DOMAINS; d++)); do
  /usr/sbin/smtp-source -c -s 20 -m "$per_domain" -l 1024 -f sender@origin.test \
    -t "user@d$d.test" "127.0.0.1:$SUT_PORT" >/dev/null
done
wanted=$((per_domain * POSTFIX_DOMAINS))
for ((i = 0; i < 600; i++)); do
  deferred=$(find "$SPOOL/deferred" -type f | wc -l)
  [[ $deferred -ge $wanted ]] && break
  sleep 1
done
log "Postfix holds $deferred deferred messages"
[[ $deferred -ge $wanted ]] || die "Postfix did not defer every message"
# The first message of the listing (postqueue stops on the closed pipe: that is expected).
postfix_id=$( (postqueue -c "$CONF" -j || true) |
  python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["queue_id"])')
python3 "$ROOT/bench/api_latency.py" cmd postfix "$POSTFIX_RUNS" \
  "summary=qshape -c $CONF deferred" \
  "queue page=postqueue -c $CONF -j" \
  "detail=postcat -c $CONF -q $postfix_id" | tee -a "$OUT/latency.csv"
postsuper -c "$CONF" -d ALL >/dev/null 2>&1 || true

# 5. The summary.
{
  echo "queue: $JOBS jobs ($DEFERRED deferred, $DOMAINS domains); Postfix: $deferred deferred"
  queue_bytes=$((messages_bytes + jobs_bytes + attempts_bytes))
  printf 'queue tables: %d MiB, %.0f MiB per million messages (messages %d MiB, jobs %d MiB, attempts %d MiB; the whole database %d MiB)\n' \
    $((queue_bytes >> 20)) "$(echo "$queue_bytes * 1000000 / $JOBS / 1048576" | bc -l)" \
    $((messages_bytes >> 20)) $((jobs_bytes >> 20)) $((attempts_bytes >> 20)) $((db_bytes >> 20))
  printf '%-12s %14s %14s %16s %16s\n' question "Tern p50 ms" "Tern p99 ms" "Postfix p50 ms" "Postfix p99 ms"
  for q in summary "queue page" message-id detail; do
    t=$( (grep "^tern,$q," "$OUT/latency.csv" || true) | cut -d, -f4,5 | tr , ' ')
    p=$( (grep "^postfix,$q," "$OUT/latency.csv" || true) | cut -d, -f4,5 | tr , ' ')
    printf '%-12s %14s %14s %16s %16s\n' "$q" ${t:-- -} ${p:-- -}
  done
} | tee "$OUT/summary.txt"
