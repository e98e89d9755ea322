#!/usr/bin/env bash
# Open Sitelabel on the demo project (embedded SQLite, real sample images and DICOM).
set -euo pipefail
cd "$(dirname "$0")/.."
demo=${SITELABEL_DEMO_DIR:-$PWD/.demo}
.venv/bin/sitelabel demo --dir "$demo" --quiet
if [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} && $(uname) == Linux ]]; then
  if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "No display found (DISPLAY is not set) and no Xvfb to make one." >&2
    echo "Run 'make run' from a desktop session, or over 'ssh -X', or install Xvfb:" >&2
    echo "  sudo apt-get install -y xvfb xauth   (then 'make run' opens the window on a virtual screen)" >&2
    exit 1
  fi
  echo "No display found (DISPLAY is not set): opening the window on a virtual screen (Xvfb) instead." >&2
  echo "On a workstation run 'make run' from the desktop session to see it." >&2
  exec xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/sitelabel run "$demo/labels.db" "$@"
fi
exec .venv/bin/sitelabel run "$demo/labels.db" "$@"
