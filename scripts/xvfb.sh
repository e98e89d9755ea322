#!/usr/bin/env bash
# Start an Xvfb server on a free display; print the display name. Usage: xvfb.sh start PIDFILE | stop PIDFILE
set -euo pipefail
case ${1:-} in
  start)
    command -v Xvfb >/dev/null || { echo "xvfb.sh: Xvfb is not installed" >&2; exit 1; }
    fifo=$(mktemp -u); mkfifo "$fifo"
    Xvfb -displayfd 9 -screen 0 1920x1080x24 -nolisten tcp +extension GLX +render -noreset 9>"$fifo" >/dev/null 2>&1 &
    echo $! > "$2"
    read -r -t 20 num < "$fifo" || { echo "xvfb.sh: Xvfb did not start" >&2; rm -f "$fifo"; exit 1; }
    rm -f "$fifo"
    echo ":$num"
    ;;
  stop)
    [[ -f $2 ]] && kill "$(cat "$2")" 2>/dev/null || true
    rm -f "$2"
    ;;
  *) echo "usage: xvfb.sh start|stop PIDFILE" >&2; exit 2 ;;
esac
