#!/usr/bin/env bash
# The one lock: uv.lock (exact versions and hashes) and the pip-readable exports made from it,
#   requirements/venv.txt  the app with its test, dev and installer extras (scripts/venv.sh, CI)
#   requirements/app.txt   the app alone (installers/build_bundle.py: what ships is what was tested)
# Usage: scripts/lock.sh update   re-resolve everything to the newest versions pyproject.toml allows
#        scripts/lock.sh check    fail with one line when pyproject.toml asks for what the lock lacks,
#                                 when an export is stale, or when .venv differs from the lock
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}

# uv itself is locked (dev extra); before a venv exists, a throwaway one brings the locked version.
uv_bin() {
  if [[ -x .venv/bin/uv ]]; then
    echo .venv/bin/uv
    return
  fi
  local tool=build/lock-tool
  if [[ ! -x $tool/bin/uv ]]; then
    "$py" -m venv "$tool" >&2
    local pin
    pin=$(grep -E '^uv==' requirements/venv.txt 2>/dev/null | head -1 | cut -d' ' -f1 || true)
    "$tool/bin/pip" install -q "${pin:-uv}" >&2
  fi
  echo "$tool/bin/uv"
}

export_locks() {
  local uv=$1 dest=$2
  mkdir -p "$dest"
  local header="# Exported from uv.lock by 'make lock' (scripts/lock.sh); do not edit. Install with pip --require-hashes."
  { echo "$header"; "$uv" export -q --frozen --no-header --format requirements.txt --no-emit-project --all-extras; } \
    >"$dest/venv.txt"
  { echo "$header"; "$uv" export -q --frozen --no-header --format requirements.txt --no-emit-project --no-dev; } \
    >"$dest/app.txt"
}

case ${1:-} in
  update)
    uv=$(uv_bin)
    cp uv.lock build/uv.lock.before 2>/dev/null || { mkdir -p build && cp uv.lock build/uv.lock.before 2>/dev/null || true; }
    echo "make lock: re-resolving every dependency to the newest version pyproject.toml allows"
    "$uv" lock --upgrade 2>&1 | sed 's/^/  /'
    export_locks "$uv" requirements
    "$py" scripts/lock_diff.py build/uv.lock.before uv.lock
    echo "make lock: wrote uv.lock, requirements/venv.txt, requirements/app.txt; 'make test' rebuilds .venv from them"
    ;;
  check)
    uv=$(uv_bin)
    if ! "$uv" lock --check --offline -q >/dev/null 2>&1; then
      echo "lock: pyproject.toml asks for something uv.lock does not hold: run 'make lock'" >&2
      exit 1
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    export_locks "$uv" "$tmp"
    for f in venv.txt app.txt; do
      if ! cmp -s "$tmp/$f" "requirements/$f"; then
        echo "lock: requirements/$f is not the export of uv.lock: run 'make lock'" >&2
        exit 1
      fi
    done
    .venv/bin/python scripts/lock_diff.py --venv requirements/venv.txt
    ;;
  *) echo "usage: scripts/lock.sh update|check" >&2; exit 2 ;;
esac
