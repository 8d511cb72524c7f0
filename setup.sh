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
# The install also builds the compiled hot path (src/tickpipe/_hot.c, setup.py) with the
# machine's C compiler; it is rebuilt when its source changes.
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ] \
    || [ setup.py -nt "$STAMP" ] || [ src/tickpipe/_hot.c -nt "$STAMP" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,bench,parquet,nats]"
    touch "$STAMP"
fi
# A failed build of the compiled hot path is not fatal (tickpipe runs its pure-Python path) but
# it is never silent: say so, and why, on every run of this script.
if ! HOT=$(.venv/bin/python -W error::RuntimeWarning -c 'import tickpipe.hotpath as h; print(h.describe())' 2>&1); then
    echo "setup.sh: WARNING: the compiled hot path did not build; tickpipe runs the pure-Python" >&2
    echo "setup.sh: WARNING: path (~2x more CPU a frame). Install gcc and python3-dev, then run" >&2
    echo "setup.sh: WARNING: 'rm .venv/.tickpipe-installed; bash setup.sh'. Cause:" >&2
    echo "$HOT" | tail -n 3 | sed 's/^/setup.sh:   /' >&2
else
    echo "setup.sh: hot path: $HOT" >&2
fi
echo "setup.sh: ready: $(.venv/bin/tickpipe --version 2>/dev/null || echo tickpipe)" >&2
