#!/usr/bin/env bash
# dev.sh - `make dev`: start the local PostgreSQL and NATS (installing them when missing), build
# Tern, apply migrations and run the ingress and a delivery worker in the foreground with
# readable logs. The worker hands every message to a capture sink (Postfix's smtp-sink) on
# 127.0.0.1:2526 that writes each one as a file under .dev/mail/, so nothing leaves the machine.
# Ctrl-C stops Tern and the sink, then the services this run started (services that were already
# running, e.g. for a `make test` in another terminal, are left running).
#
# Any TERN_* setting in the environment overrides the defaults (see README.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
SERVICES=scripts/services.sh

started=()
bash "$SERVICES" status pg >/dev/null 2>&1 || started+=(pg)
bash "$SERVICES" status nats >/dev/null 2>&1 || started+=(nats)

stop_started() {
  trap - EXIT INT TERM
  if ((${#started[@]})); then
    for s in "${started[@]}"; do bash "$SERVICES" down "$s" || true; done
  fi
}
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$SERVICES" up
eval "$(bash "$SERVICES" env)"

cargo build --bin tern
TERN=$ROOT/target/debug/tern

export TERN_LOG_FORMAT=${TERN_LOG_FORMAT:-text}
"$TERN" migrate

# TLS: without configured certificates, a self-signed one for localhost (kept under .dev/tls/ so
# a client can be told to trust it: swaks --tls-ca-path .dev/tls/cert.pem).
if [[ -z ${TERN_INGRESS_TLS_CERTIFICATES:-} ]]; then
  TLS_DIR=$ROOT/.dev/tls
  if [[ ! -s $TLS_DIR/cert.pem || ! -s $TLS_DIR/key.pem ]]; then
    mkdir -p "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
    chmod 600 "$TLS_DIR/key.pem"
    echo "dev: made a self-signed certificate for localhost in $TLS_DIR" >&2
  fi
  export TERN_INGRESS_TLS_CERTIFICATES=$TLS_DIR/cert.pem:$TLS_DIR/key.pem
fi

# The capture sink: one file per delivered message, named by time, envelope in X- headers.
MAIL_DIR=$ROOT/.dev/mail
SINK_LISTEN=${TERN_DEV_SINK_LISTEN:-127.0.0.1:2526}
mkdir -p "$MAIL_DIR"
sink_user=()
if [[ $(id -u) == 0 ]]; then
  chown nobody "$MAIL_DIR"
  sink_user=(-u nobody)
fi
pids=()
stop_tern() {
  ((${#pids[@]})) && kill -TERM "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  stop_started
}
trap stop_tern EXIT
/usr/sbin/smtp-sink "${sink_user[@]}" -d "$MAIL_DIR/%Y%m%d/%H%M%S." "$SINK_LISTEN" 64 &
pids+=($!)

export TERN_WORKER_SMARTHOST=${TERN_WORKER_SMARTHOST:-smtp:[${SINK_LISTEN%:*}]:${SINK_LISTEN##*:}}
export TERN_WORKER_POLL_INTERVAL=${TERN_WORKER_POLL_INTERVAL:-2s}
"$TERN" ingress &
pids+=($!)
TERN_ADMIN_LISTEN=${TERN_WORKER_ADMIN_LISTEN:-127.0.0.1:9091} "$TERN" worker &
pids+=($!)

# The admin API, with a development admin token made once and kept in .dev/api-token (given to
# the API as its bootstrap token, so it needs no row and survives a database reset).
TOKEN_FILE=$ROOT/.dev/api-token
if [[ ! -s $TOKEN_FILE ]]; then
  (umask 077 && echo "tern_dev_$(openssl rand -hex 24)" >"$TOKEN_FILE")
fi
export TERN_API_BOOTSTRAP_TOKEN_FILE=${TERN_API_BOOTSTRAP_TOKEN_FILE:-$TOKEN_FILE}
export TERN_API_LISTEN=${TERN_API_LISTEN:-127.0.0.1:2580}
"$TERN" api &
pids+=($!)

echo "dev: Tern ingress on ${TERN_INGRESS_SMTP_LISTEN:-127.0.0.1:2525} (SMTP)," \
  "${TERN_INGRESS_SUBMISSION_LISTEN:-127.0.0.1:2587} (submission, STARTTLS)," \
  "${TERN_INGRESS_SUBMISSIONS_LISTEN:-127.0.0.1:2465} (submission, implicit TLS), metrics and health on" \
  "${TERN_ADMIN_LISTEN:-127.0.0.1:9090} (ingress) and 127.0.0.1:9091 (worker)." >&2
echo "dev: delivered mail lands in $MAIL_DIR (worker next hop: $TERN_WORKER_SMARTHOST). Ctrl-C stops." >&2
echo "dev: try: swaks --server 127.0.0.1:2525 --to someone@tern.test --tls --tls-ca-path .dev/tls/cert.pem" >&2
echo "dev: admin API on http://$TERN_API_LISTEN (token in $TERN_API_BOOTSTRAP_TOKEN_FILE):" >&2
echo "dev:   curl -H \"Authorization: Bearer \$(cat $TERN_API_BOOTSTRAP_TOKEN_FILE)\" http://$TERN_API_LISTEN/v1/queue/summary" >&2
# Ctrl-C reaches every process of the terminal's group; stop the rest when any one of them ends.
set +e
wait -n "${pids[@]}"
rc=$?
set -e
exit "$rc"
