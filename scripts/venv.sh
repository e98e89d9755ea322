#!/usr/bin/env bash
# Create .venv from the lock (requirements/venv.txt, exported from uv.lock by `make lock`): exact versions,
# every file checked against its hash, nothing resolved anew. Re-runs only when the lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
lock=requirements/venv.txt
stamp=.venv/.installed
if [[ -f $stamp && $stamp -nt $lock && $stamp -nt pyproject.toml && -x .venv/bin/python ]]; then
  exit 0
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "Sitelabel is locked for Python 3.11; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11." >&2
  exit 1
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
echo "venv: installing the locked packages from $lock"
# The locked pip first (it is in the lock too), then everything else with hashes required.
.venv/bin/python -m pip install -q --require-hashes --no-deps \
  -r <(awk '/^pip==/{p=1} p&&/^[^ ]/&&!/^pip==/{exit} p' "$lock")
.venv/bin/python -m pip install -q --require-hashes --no-deps -r "$lock"
# The project itself, editable, built with the locked setuptools (no isolated build fetching its own).
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# Anything the venv held before that the lock no longer names goes (an old venv updated in place).
.venv/bin/python scripts/lock_diff.py --prune "$lock"
touch "$stamp"
