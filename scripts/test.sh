#!/usr/bin/env bash
# The whole check: lint, types, import layers, then pytest against SQLite and a throwaway
# PostgreSQL, with widgets offscreen and the GL canvas on Xvfb. Stops everything it started.
# In CI (CI=true) a missing server or display is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
py=.venv/bin/python
work=$(mktemp -d /tmp/sitelabel-test.XXXXXX)
chmod 755 "$work"
cleanup() {
  scripts/xvfb.sh stop "$work/xvfb.pid"
  for pg in "$work"/pg-*; do
    [[ -d $pg ]] && $py tests/pgcluster.py stop "$pg" >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
fail=0

step "lock"
scripts/lock.sh check || fail=1

step "ruff"
ruff check app tests bench || fail=1
ruff format --check app tests bench || fail=1
step "mypy"
mypy || fail=1
step "import layers"
lint-imports || fail=1

step "PostgreSQL (throwaway clusters: one per pytest worker, one for the GL run)"
# The offscreen suite runs on $workers pytest-xdist workers; each gets a cluster of its own, since
# PostgreSQL roles are cluster-wide and the row-security tests create them.
workers=${SITELABEL_TEST_WORKERS:-2}
for name in main $(seq -f 'gw%g' 0 $((workers - 1))); do
  if url=$($py tests/pgcluster.py start "$work/pg-$name"); then
    if [[ $name == main ]]; then export SITELABEL_TEST_PG_URL=$url; else export "SITELABEL_TEST_PG_URL_$name=$url"; fi
    echo "$name: started at ${url}"
  else
    echo "could not start PostgreSQL" >&2
    [[ ${CI:-} == true ]] && fail=1
    break
  fi
done

step "Xvfb"
if display=$(scripts/xvfb.sh start "$work/xvfb.pid"); then
  export SITELABEL_TEST_DISPLAY=$display
  echo "display $display"
else
  echo "could not start Xvfb" >&2
  [[ ${CI:-} == true ]] && fail=1
fi

step "pytest: unit, integration and offscreen GUI"
# The soak-marked explorations (fuzzing properties, the 16-labeler load) run in `make soak`, which CI runs
# after this with more examples; their regression seeds and every other reliability test run here.
# Two workers, a test file at a time each (module fixtures such as a test's own cluster stay in one
# process); SITELABEL_TEST_WORKERS=0 runs in this process.
parallel=()
((workers > 0)) && parallel=(-n "$workers" --dist loadfile)
QT_QPA_PLATFORM=offscreen pytest "${parallel[@]}" -m "not gl and not soak" -p no:cacheprovider "$@"
rc=$?
((rc != 0)) && fail=1

step "pytest: GL canvas and screenshots on Xvfb"
DISPLAY=${SITELABEL_TEST_DISPLAY:-} QT_QPA_PLATFORM=xcb SITELABEL_CANVAS=gl pytest -m "gl and not soak" -p no:cacheprovider "$@"
rc=$?
# 5 = nothing selected, e.g. when a -k filter was passed in
((rc != 0 && rc != 5)) && fail=1

if ((fail)); then
  printf '\nmake test: FAILED\n'
  exit 1
fi
printf '\nmake test: all checks passed\n'
