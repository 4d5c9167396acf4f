#!/usr/bin/env bash
# Schemathesis (from PyPI) in a virtualenv cached outside the repository, keyed by version, so
# `make test` installs it once per machine.
#
#   scripts/schemathesis.sh path   install if missing, print the path of the `schemathesis` command
set -euo pipefail

VERSION=4.32.5
CACHE="${TERN_CACHE_DIR:-$HOME/.cache/tern}"
VENV="$CACHE/schemathesis-$VERSION"

install() {
  # The marker is written last, so an interrupted install is redone rather than trusted.
  if [[ -f "$VENV/.installed" ]]; then
    return
  fi
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    else
      echo "schemathesis.sh: python3 with venv is needed (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
  touch "$VENV/.installed"
}

case "${1:-}" in
  path)
    install
    echo "$VENV/bin/schemathesis"
    ;;
  *)
    echo "usage: scripts/schemathesis.sh path" >&2
    exit 64
    ;;
esac
