#!/usr/bin/env bash
# make installer-check: build the offline bundle, install it into a fresh environment with the network
# blocked, start the installed app offscreen on the demo project, then build the frozen app and start it
# offscreen on projects (SQLite offline; PostgreSQL). Slow (downloads ~400 MB once, freezes ~2 min), so
# it is not part of `make test`. Timings land in build/installer-times.json.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export SITELABEL_INSTALLER_CHECK=1
rm -f build/installer-times.json
# timings are printed in pytest's summary and kept in build/installer-times.json
QT_QPA_PLATFORM=offscreen exec pytest -m installer tests/installers -p no:cacheprovider "$@"
