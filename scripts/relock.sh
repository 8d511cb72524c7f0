#!/usr/bin/env bash
# Re-resolves tickpipe's dependencies to the newest versions pyproject.toml allows and writes them
# to constraints.txt (the lock that setup.sh installs). Run it, then the whole test suite
# (bash setup.sh && .venv/bin/python -m pytest), then commit constraints.txt if all passes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$TMP/venv/bin/python" -m pip install -q --disable-pip-version-check ".[test,bench,parquet,nats]"
{
    echo "# The exact versions tickpipe is tested with (setup.sh installs them: every machine tests the same)."
    echo "# pyproject.toml keeps the ranges for library users. Refresh: bash scripts/relock.sh (see README)."
    "$TMP/venv/bin/python" -m pip freeze --all | grep -v -i -E '^(tickpipe|setuptools)==' | LC_ALL=C sort -f
} > constraints.txt
echo "relock.sh: constraints.txt rewritten; now run the tests: bash setup.sh && .venv/bin/python -m pytest" >&2
