#!/usr/bin/env bash
# A Python command-line tool from PyPI in a virtualenv cached outside the repository, keyed by
# package and version, so a test installs it once per machine.
#
#   scripts/pytool.sh PACKAGE VERSION COMMAND   install if missing, print the path of COMMAND
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: scripts/pytool.sh PACKAGE VERSION COMMAND" >&2; exit 64; }
PACKAGE=$1 VERSION=$2 COMMAND=$3
CACHE="${TERN_CACHE_DIR:-$HOME/.cache/tern}"
VENV="$CACHE/$PACKAGE-$VERSION"

# The marker is written last, so an interrupted install is redone rather than trusted. Test
# binaries may ask at once: one installs, the others wait and find it installed.
if [[ ! -f "$VENV/.installed" ]]; then
  mkdir -p "$CACHE"
  exec 9>"$VENV.lock"
  flock 9
  if [[ ! -f "$VENV/.installed" ]]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      [[ $(id -u) -eq 0 ]] || { echo "pytool.sh: python3 with venv is needed (apt-get install python3-venv)" >&2; exit 1; }
      apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PACKAGE==$VERSION" >&2
    touch "$VENV/.installed"
  fi
fi
echo "$VENV/bin/$COMMAND"
