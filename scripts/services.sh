#!/usr/bin/env bash
# services.sh - the local PostgreSQL and NATS JetStream that `make dev`, `make test` and the
# benchmarks run against. Everything lives under .dev/ in the repository:
#
#   .dev/pg/data          PostgreSQL cluster (initdb once, reused), 127.0.0.1:$TERN_DEV_PG_PORT
#   .dev/pg/log           its server log; its unix socket is in .dev/pg
#   .dev/nats/store       JetStream store of nats-server on 127.0.0.1:$TERN_DEV_NATS_PORT
#   .dev/nats/nats.pid    nats-server's pid file, .dev/nats/nats.log its log
#
# usage: scripts/services.sh up|down|status|env [pg|nats] [--quiet]
#   up      install missing Debian packages (as root), start what is not running yet
#   down    stop (PostgreSQL: pg_ctl -m fast; nats-server: by the pid in its pid file)
#   status  one line per service; exit 0 when every service asked about is running, 3 if not
#   env     print `export` lines for TERN_DATABASE_URL, TERN_NATS_URL, TERN_TEST_* and the pid files
#   pg|nats limit up/down/status to one service (default: both)
#   --quiet only errors (on stderr)
#
# Environment: TERN_DEV_PG_PORT (55432), TERN_DEV_NATS_PORT (54222).
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DEV=$ROOT/.dev
PG_DIR=$DEV/pg
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/log
PG_PORT=${TERN_DEV_PG_PORT:-55432}
NATS_DIR=$DEV/nats
NATS_STORE=$NATS_DIR/store
NATS_PIDFILE=$NATS_DIR/nats.pid
NATS_LOG=$NATS_DIR/nats.log
NATS_PORT=${TERN_DEV_NATS_PORT:-54222}
LOCK=$DEV/services.lock
WAIT_SECS=20

QUIET=0
ACTION=""
WHICH=(pg nats)
usage() { echo "usage: scripts/services.sh up|down|status|env [pg|nats] [--quiet]" >&2; exit 2; }
for arg in "$@"; do
  case $arg in
    --quiet | -q) QUIET=1 ;;
    up | down | status | env) [[ -z $ACTION ]] || usage; ACTION=$arg ;;
    pg | postgres | postgresql) WHICH=(pg) ;;
    nats) WHICH=(nats) ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done
[[ -n $ACTION ]] || usage

log() { ((QUIET)) || echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }
for p in "$PG_PORT" "$NATS_PORT"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then die "not a TCP port: $p"; fi
done
IS_ROOT=0; [[ $(id -u) == 0 ]] && IS_ROOT=1

# ------------------------------------------------------------------------------------ env
if [[ $ACTION == env ]]; then
  printf 'export %s=%q\n' \
    TERN_DATABASE_URL "postgres://tern@127.0.0.1:$PG_PORT/tern" \
    TERN_NATS_URL "nats://127.0.0.1:$NATS_PORT" \
    TERN_TEST_DATABASE_URL "postgres://tern@127.0.0.1:$PG_PORT/postgres" \
    TERN_TEST_NATS_URL "nats://127.0.0.1:$NATS_PORT" \
    TERN_DEV_PG_PIDFILE "$PG_DATA/postmaster.pid" \
    TERN_DEV_NATS_PIDFILE "$NATS_PIDFILE"
  exit 0
fi

# ------------------------------------------------------------------------------- packages
# The packages every local workflow needs: the two services, plus the test and benchmark
# peers (Postfix's smtp-source/smtp-sink, swaks with its TLS modules, openssl), python3 and ss(8).
missing_packages() {
  local need=()
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
  command -v nats-server >/dev/null || need+=(nats-server)
  [[ -x /usr/sbin/smtp-source && -x /usr/sbin/smtp-sink ]] || need+=(postfix)
  command -v swaks >/dev/null || need+=(swaks)
  perl -MIO::Socket::SSL -e1 2>/dev/null || need+=(libio-socket-ssl-perl)
  perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl)
  command -v openssl >/dev/null || need+=(openssl)
  command -v python3 >/dev/null || need+=(python3)
  command -v ss >/dev/null || need+=(iproute2)
  echo "${need[*]}"
}

install_packages() {
  local need
  need=$(missing_packages)
  [[ -z $need ]] && return 0
  if ((!IS_ROOT)); then
    echo "services: error: missing Debian packages: $need. Install them as root with:" >&2
    [[ $need == *postfix* ]] &&
      echo "  echo 'postfix postfix/main_mailer_type select No configuration' | sudo debconf-set-selections" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need" >&2
    exit 1
  fi
  log "installing missing packages: $need"
  # "No configuration": the postfix package must not configure or start a system MTA.
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  local apt=(apt-get -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0) pkgs
  read -ra pkgs <<<"$need"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" update </dev/null >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}" </dev/null >&2 ||
    die "apt-get install $need failed"
  need=$(missing_packages)
  [[ -z $need ]] || die "still missing after apt-get install: $need"
}

# ---------------------------------------------------------------------------- helpers
listening() { [[ -n $(ss -ltnH "sport = :$1" 2>/dev/null) ]]; }

rotate_log() {  # keep one previous log once a log passes 20 MB
  local f=$1
  if [[ -f $f ]] && (($(stat -c %s "$f") > 20 * 1024 * 1024)); then mv -f "$f" "$f.1"; fi
}

log_tail() { [[ -f $1 ]] && tail -n "${2:-20}" "$1" | sed 's/^/    /' >&2; return 0; }

# ---------------------------------------------------------------------------- PostgreSQL
PG_BIN=""
find_pg_bin() {  # the server binaries matching the cluster's PG_VERSION, else the newest
  local want="" dir
  [[ -f $PG_DATA/PG_VERSION ]] && want=$(<"$PG_DATA/PG_VERSION")
  if [[ -n $want ]]; then
    [[ -x /usr/lib/postgresql/$want/bin/postgres ]] ||
      die "$PG_DATA is a PostgreSQL $want cluster but PostgreSQL $want is not installed (apt-get install postgresql-$want, or 'make clean-dev' to start over)"
    PG_BIN=/usr/lib/postgresql/$want/bin
    return
  fi
  dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"
  PG_BIN=$dir
}

as_pg() {  # run a PostgreSQL server tool as the cluster's owner; never leak our lock fd
  if ((IS_ROOT)); then
    (cd / && runuser -u postgres -- "$@" 9>&-)
  else
    (cd / && "$@" 9>&-)
  fi
}

pg_running() { [[ -f $PG_DATA/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
pg_pid() { head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }
pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_prepare_dirs() {
  mkdir -p "$PG_DIR"
  if ((IS_ROOT)); then
    id postgres >/dev/null 2>&1 || die "user 'postgres' does not exist (it comes with the postgresql package)"
    chmod o+x "$DEV"
    chown postgres:postgres "$PG_DIR"
    chmod 755 "$PG_DIR"
    [[ -d $PG_DATA ]] && chown -R postgres:postgres "$PG_DATA"
    [[ -f $PG_LOG ]] && chown postgres:postgres "$PG_LOG"
    runuser -u postgres -- test -x "$ROOT" 9>&- ||
      die "the postgres user cannot reach $ROOT: a parent directory is not traversable (chmod o+x on each parent, or clone the repository elsewhere, e.g. under /srv or /tmp)"
    runuser -u postgres -- test -w "$PG_DIR" 9>&- || die "the postgres user cannot write $PG_DIR"
  else
    if [[ -d $PG_DATA && ! -O $PG_DATA ]]; then
      die "$PG_DATA belongs to $(stat -c %U "$PG_DATA"), not $(id -un) (it was created as root?): run as that user, or 'make clean-dev' as root"
    fi
  fi
}

pg_initdb() {
  if [[ -f $PG_DATA/PG_VERSION ]]; then
    log "postgres: reusing cluster $PG_DATA (PostgreSQL $(<"$PG_DATA/PG_VERSION"))"
    return
  fi
  # A half-made data directory (initdb interrupted) is ours to remove: it holds no data yet.
  [[ -e $PG_DATA ]] && rm -rf "$PG_DATA"
  log "postgres: initdb $PG_DATA (user tern, trust auth, UTF8)"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust -U tern -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 || {
    log_tail "$PG_DIR/initdb.log"; die "initdb failed (full output: $PG_DIR/initdb.log)"; }
  echo "include_if_exists = 'tern-dev.conf'   # written by scripts/services.sh on each start" >>"$PG_DATA/postgresql.conf"
}

pg_write_conf() {  # the settings of the dev cluster; rewritten before each start (ports may change)
  local sockdir=$PG_DIR
  # a unix socket path is limited to 107 bytes; everything here connects over TCP anyway
  ((${#sockdir} + 20 < 107)) || sockdir=""
  sockdir=${sockdir//"'"/"''"}
  grep -q "tern-dev.conf" "$PG_DATA/postgresql.conf" ||
    echo "include_if_exists = 'tern-dev.conf'   # written by scripts/services.sh on each start" >>"$PG_DATA/postgresql.conf"
  cat >"$PG_DATA/tern-dev.conf" <<EOF
# Written by scripts/services.sh before each start; edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 300
shared_buffers = 256MB
# Durability is the point: a 250 means the commit is on disk. Group commit defaults kept.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
  ((IS_ROOT)) && chown postgres:postgres "$PG_DATA/tern-dev.conf"
  return 0
}

pg_ensure_database() {
  local psql=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U tern -d postgres -v ON_ERROR_STOP=1)
  local i
  for ((i = 0; i < WAIT_SECS * 5; i++)); do
    "${psql[@]}" -Atc 'select 1' >/dev/null 2>&1 && break
    sleep 0.2
  done
  if [[ -z $("${psql[@]}" -Atc "select 1 from pg_database where datname = 'tern'" 2>/dev/null) ]]; then
    "${psql[@]}" -c 'CREATE DATABASE tern' >/dev/null || die "cannot create database tern on 127.0.0.1:$PG_PORT"
    log "postgres: created database tern"
  fi
}

pg_up() {
  find_pg_bin
  if pg_running; then
    local port; port=$(pg_running_port)
    [[ $port == "$PG_PORT" ]] ||
      die "postgres from $PG_DATA is running on port $port, not $PG_PORT: run 'scripts/services.sh down pg' first"
    log "postgres: reusing running server (pid $(pg_pid)) on 127.0.0.1:$PG_PORT"
    pg_ensure_database
    return
  fi
  listening "$PG_PORT" && die "port $PG_PORT is in use by another program (not $PG_DATA); set TERN_DEV_PG_PORT"
  pg_prepare_dirs
  pg_initdb
  pg_write_conf
  rotate_log "$PG_LOG"
  log "postgres: starting $PG_BIN/postgres on 127.0.0.1:$PG_PORT (log $PG_LOG)"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 2>&1; then
    log_tail "$PG_LOG"
    die "PostgreSQL did not start (log: $PG_LOG)"
  fi
  pg_ensure_database
  log "postgres: running (pid $(pg_pid)) on 127.0.0.1:$PG_PORT"
}

pg_down() {
  [[ -f $PG_DATA/PG_VERSION ]] || { log "postgres: no cluster in $PG_DATA"; return 0; }
  find_pg_bin
  if ! pg_running; then log "postgres: not running"; return 0; fi
  log "postgres: stopping (pid $(pg_pid))"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || {
    log_tail "$PG_LOG"; die "pg_ctl stop failed (log: $PG_LOG)"; }
  log "postgres: stopped"
}

pg_status() {
  if [[ -f $PG_DATA/PG_VERSION ]]; then find_pg_bin; fi
  if [[ -n $PG_BIN ]] && pg_running; then
    log "postgres: running (pid $(pg_pid)) on 127.0.0.1:$(pg_running_port), data $PG_DATA"
  else
    log "postgres: stopped$([[ -f $PG_DATA/PG_VERSION ]] || echo ' (no cluster yet)')"
    return 1
  fi
}

# --------------------------------------------------------------------------------- NATS
nats_pid() {  # pid from our pid file if that process is a live nats-server using our store
  local pid cmd
  pid=$(head -n 1 "$NATS_PIDFILE" 2>/dev/null | tr -dc '0-9') || true
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *nats-server* && $cmd == *"$NATS_STORE"* ]] || return 1
  echo "$pid"
}

nats_up() {
  local pid
  if pid=$(nats_pid); then
    local cmd; cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
    [[ $cmd == *"-p $NATS_PORT "* ]] ||
      die "nats-server (pid $pid) from $NATS_STORE runs on another port than $NATS_PORT: run 'scripts/services.sh down nats' first"
    log "nats: reusing running nats-server (pid $pid) on 127.0.0.1:$NATS_PORT"
    return
  fi
  listening "$NATS_PORT" && die "port $NATS_PORT is in use by another program (not our nats-server); set TERN_DEV_NATS_PORT"
  local bin; bin=$(command -v nats-server) || die "nats-server not found (apt-get install nats-server)"
  mkdir -p "$NATS_STORE"
  rm -f "$NATS_PIDFILE"
  rotate_log "$NATS_LOG"
  log "nats: starting nats-server -js on 127.0.0.1:$NATS_PORT (store $NATS_STORE, log $NATS_LOG)"
  # setsid + nohup: the server outlives this script and the terminal it was started from
  setsid nohup "$bin" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$NATS_STORE" -P "$NATS_PIDFILE" -l "$NATS_LOG" \
    </dev/null >>"$NATS_DIR/nats.out" 2>&1 9>&- &
  local launcher=$! i
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    if listening "$NATS_PORT" && pid=$(nats_pid); then
      log "nats: running (pid $pid) on 127.0.0.1:$NATS_PORT"
      return
    fi
    if ! kill -0 "$launcher" 2>/dev/null && ! nats_pid >/dev/null; then
      log_tail "$NATS_LOG"; log_tail "$NATS_DIR/nats.out" 5
      die "nats-server exited at startup (log: $NATS_LOG)"
    fi
    sleep 0.1
  done
  log_tail "$NATS_LOG"
  die "nats-server is not listening on 127.0.0.1:$NATS_PORT after ${WAIT_SECS}s (log: $NATS_LOG)"
}

nats_down() {
  local pid i
  if ! pid=$(nats_pid); then
    log "nats: not running"; rm -f "$NATS_PIDFILE"; return 0
  fi
  log "nats: stopping nats-server (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "nats: still running after 10s, sending SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$NATS_PIDFILE"
  log "nats: stopped"
}

nats_status() {
  local pid
  if pid=$(nats_pid); then
    log "nats: running (pid $pid) on 127.0.0.1:$NATS_PORT, store $NATS_STORE"
  else
    log "nats: stopped"
    return 1
  fi
}

# --------------------------------------------------------------------------------- main
if [[ $ACTION == status ]]; then
  rc=0
  for s in "${WHICH[@]}"; do "${s}_status" || rc=3; done
  exit "$rc"
fi

if [[ $ACTION == down && ! -d $DEV ]]; then log "nothing to stop (no $DEV)"; exit 0; fi
mkdir -p "$DEV"
# one up/down at a time (make dev and make test may start together); daemons never inherit fd 9
exec 9>"$LOCK"
flock -w 120 9 || die "another scripts/services.sh holds $LOCK for over 120s"

case $ACTION in
  up)
    install_packages
    for s in "${WHICH[@]}"; do "${s}_up"; done ;;
  down)
    for s in "${WHICH[@]}"; do "${s}_down"; done ;;
esac
