#!/usr/bin/env bash
# dkimpy (from PyPI), the independent DKIM and ARC signer the tests use, in a virtualenv
# cached outside the repository, keyed by version, so `make test` installs it once per machine.
#
#   scripts/dkimpy.sh python   install if missing, print the path of the venv's python3
set -euo pipefail

VERSION=1.1.8
# ARC signing needs authres, Ed25519 (RFC 8463) needs PyNaCl: dkimpy's optional dependencies.
AUTHRES=1.2.0
PYNACL=1.6.2
CACHE="${TERN_CACHE_DIR:-$HOME/.cache/tern}"
VENV="$CACHE/dkimpy-$VERSION-authres-$AUTHRES-pynacl-$PYNACL"

install() {
  # The marker is written last, so an interrupted install is redone rather than trusted.
  if [[ -f "$VENV/.installed" ]]; then
    return
  fi
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    else
      echo "dkimpy.sh: python3 with venv is needed (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  mkdir -p "$CACHE"
  # Tests ask for it in parallel: one installs, the others wait and find it installed.
  exec 9>"$VENV.lock"
  flock 9
  if [[ -f "$VENV/.installed" ]]; then
    return
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "dkimpy==$VERSION" "authres==$AUTHRES" "pynacl==$PYNACL" >&2
  touch "$VENV/.installed"
}

case "${1:-}" in
  python)
    install
    echo "$VENV/bin/python3"
    ;;
  *)
    echo "usage: scripts/dkimpy.sh python" >&2
    exit 64
    ;;
esac
