#!/usr/bin/env bash
# Install the Debian packages Sitelabel needs, when they are missing.
# Usage: scripts/system-deps.sh run|test
#   run  - what the desktop app needs (Qt's system libraries, python venv; Xvfb when there is no display)
#   test - also Xvfb and PostgreSQL for the test suite
# As root it installs them with apt-get; otherwise it prints the exact command and fails.
set -euo pipefail
mode=${1:-run}

pkgs=(libgl1 libegl1 libfontconfig1 libxkbcommon0 libglib2.0-0 libdbus-1-3
      libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
      libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 fonts-dejavu-core)
if [[ $mode == test ]]; then
  pkgs+=(xvfb xauth postgresql)
elif [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} ]]; then
  # `make run` with no screen (a server, a container, ssh without -X) opens the window on Xvfb
  pkgs+=(xvfb xauth)
fi
# A Python without venv support needs Debian's venv package (the pyenv builds have it).
if ! "${PYTHON:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  pkgs+=(python3-venv)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: not a Debian-like system; make sure Qt's libraries$([[ $mode == test ]] && echo ', Xvfb and PostgreSQL') are installed." >&2
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -eq 0 ]]; then
  echo "system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || apt-get update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || \
    apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
