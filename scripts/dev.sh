#!/usr/bin/env bash
# dev.sh - `make dev`: start the local PostgreSQL and NATS (installing them when missing), build
# Tern, apply migrations and run the ingress in the foreground with readable logs.
# Ctrl-C stops Tern, then the services this run started (services that were already running,
# e.g. for a `make test` in another terminal, are left running).
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

echo "dev: Tern ingress on ${TERN_INGRESS_SMTP_LISTEN:-127.0.0.1:2525} (SMTP)," \
  "${TERN_INGRESS_SUBMISSION_LISTEN:-127.0.0.1:2587} (submission)," \
  "${TERN_ADMIN_LISTEN:-127.0.0.1:9090} (metrics, health). Ctrl-C stops." >&2
echo "dev: try: swaks --server 127.0.0.1:2525 --to someone@tern.test" >&2
# Not exec: the EXIT trap must run after Tern stops. Tern gets Ctrl-C from the terminal itself.
set +e
"$TERN" ingress
rc=$?
set -e
exit "$rc"
