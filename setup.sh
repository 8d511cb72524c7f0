#!/usr/bin/env bash
# Sets up tickpipe in ./.venv on a fresh Debian machine with Python 3.11 (idempotent, fast when done).
# Installs python3-venv through apt when the interpreter lacks ensurepip (as on a bare Debian).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "setup.sh: tickpipe needs Python >= 3.11 as '$PY' (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        echo "setup.sh: '$PY -m venv' failed; installing Debian's python3-venv" >&2
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
        "$PY" -m venv .venv
    fi
fi
STAMP=.venv/.tickpipe-installed
# constraints.txt pins every package to the versions the suite was run with (scripts/relock.sh
# refreshes it); pyproject.toml keeps the ranges for library users.
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,bench,parquet,nats]"
    touch "$STAMP"
fi
echo "setup.sh: ready: $(.venv/bin/tickpipe --version 2>/dev/null || echo tickpipe)" >&2
