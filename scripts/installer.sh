#!/usr/bin/env bash
# Build the installers. Usage: scripts/installer.sh freeze|bundle [build_bundle.py options]
#   freeze - the PyInstaller one-folder app in dist/sitelabel/ (installers/sitelabel.spec)
#   bundle - the offline wheel bundle in dist/ (installers/build_bundle.py)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
case ${1:-} in
  freeze)
    # PyInstaller comes with the locked venv (the `installer` extra is in requirements/venv.txt)
    start=$(date +%s)
    rm -rf dist/sitelabel
    .venv/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
      installers/sitelabel.spec
    echo "frozen app: dist/sitelabel/sitelabel ($(du -sh dist/sitelabel | cut -f1), $(( $(date +%s) - start )) s)"
    ;;
  bundle)
    shift
    $py installers/build_bundle.py "$@"
    ;;
  *) echo "usage: scripts/installer.sh freeze|bundle [options]" >&2; exit 2 ;;
esac
