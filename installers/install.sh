#!/usr/bin/env bash
# Install Sitelabel from this bundle folder alone: no network, no package index.
#
#   sudo ./install.sh                      # system-wide: /opt/sitelabel, /usr/local/bin/sitelabel
#   ./install.sh                           # this user: ~/.local/share/sitelabel, ~/.local/bin/sitelabel
#   ./install.sh --site-config site.toml   # also deploy the site config (system-wide as root)
#   ./install.sh --uninstall               # remove the program; the site config and user data stay
#
# Options: --prefix DIR, --bin-dir DIR, --apps-dir DIR (menu entries), --config-dir DIR (site config),
#          --python PYTHON, --site-config FILE, --no-demo-data, --no-desktop, --uninstall, --help.
# Running it again with a newer bundle upgrades in place: the new version is installed beside the
# old one, checked, then switched to; the previous version stays for a rollback (see README.md).
set -euo pipefail

bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'sitelabel-install: %s\n' "$*"; }
die() { printf 'sitelabel-install: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ $(id -u) -eq 0 ]]; then
  prefix=/opt/sitelabel; bin_dir=/usr/local/bin
  apps_dir=/usr/share/applications; config_dir=/etc/xdg/sitelabel
else
  data_home=${XDG_DATA_HOME:-$HOME/.local/share}
  prefix=$data_home/sitelabel; bin_dir=$HOME/.local/bin
  apps_dir=$data_home/applications; config_dir=${XDG_CONFIG_HOME:-$HOME/.config}/sitelabel
fi
python=""; site_config=""; demo=1; desktop=1; action=install

while (($#)); do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --apps-dir) apps_dir=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --site-config) site_config=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --no-demo-data) demo=0; shift ;;
    --no-desktop) desktop=0; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

record=$prefix/installed-files.txt

uninstall() {
  [[ -d $prefix ]] || die "nothing installed in $prefix"
  [[ -d $prefix/versions ]] || die "$prefix does not look like a Sitelabel installation; nothing removed"
  if [[ -f $record ]]; then
    while IFS= read -r path; do
      [[ -n $path ]] || continue
      if [[ $path == *.desktop ]] && command -v xdg-desktop-menu >/dev/null 2>&1; then
        xdg-desktop-menu uninstall --novendor "$path" >/dev/null 2>&1 || true
      fi
      rm -f -- "$path"
    done < "$record"
  fi
  rm -rf -- "$prefix"
  say "removed $prefix and its command and menu entry"
  say "kept: the site config ($config_dir/config.toml) and each user's settings and journals"
}

if [[ $action == uninstall ]]; then
  uninstall
  exit 0
fi

# --- 1. the bundle is complete and unchanged -------------------------------------------------
say "checking the bundle's checksums"
cd "$bundle"
[[ -f SHA256SUMS && -f bundle.json ]] || die "$bundle is not a Sitelabel bundle (no SHA256SUMS / bundle.json)"
if command -v sha256sum >/dev/null 2>&1; then
  sha256sum --check --quiet --strict SHA256SUMS || die "checksum mismatch: the bundle is damaged; copy it again"
else  # macOS
  shasum -a 256 --check --quiet SHA256SUMS || die "checksum mismatch: the bundle is damaged; copy it again"
fi
field() { sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" bundle.json | head -1; }
version=$(field version); want_python=$(field python); target=$(field target)

# --- 2. a Python of the version the wheels were built for --------------------------------------
if [[ -z $python ]]; then
  for candidate in "python$want_python" python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$(command -v "$candidate"); break; fi
  done
fi
[[ -n $python ]] || die "no Python $want_python found; install it (or pass --python /path/to/python$want_python)"
have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $have == "$want_python" ]] || die "this bundle is for Python $want_python ($target) but $python is $have; pass --python"
"$python" -c 'import ensurepip, venv' 2>/dev/null || \
  die "$python cannot create environments; install its venv module (Debian/Ubuntu: python3-venv)"

# --- 3. a fresh environment beside any previous version -----------------------------------------
stamp=$(date +%Y%m%d%H%M%S)
env_dir=$prefix/versions/$version-$stamp
mkdir -p "$prefix/versions"
say "creating $env_dir"
"$python" -m venv "$env_dir"
pip_offline() {
  # --isolated: no pip.conf or PIP_* variable can point pip at an index; --no-index: none is used
  PIP_NO_INDEX=1 PIP_CONFIG_FILE=/dev/null "$env_dir/bin/python" -m pip --isolated \
    --disable-pip-version-check --no-input "$@"
}
fail_cleanup() { rm -rf -- "$env_dir"; die "$1; nothing was changed"; }
pip_offline install --quiet --no-index --no-cache-dir --find-links "$bundle/wheels" \
  --require-hashes -r "$bundle/bootstrap.lock" || fail_cleanup "pip could not be updated from the bundle"
say "installing Sitelabel $version and its dependencies from the bundle (no network)"
pip_offline install --quiet --no-index --no-cache-dir --find-links "$bundle/wheels" \
  --require-hashes -r "$bundle/requirements.lock" || fail_cleanup "installing from the bundle failed"
if ((demo)) && [[ -f $bundle/demo-data.lock ]]; then
  pip_offline install --quiet --no-index --no-cache-dir --no-deps --find-links "$bundle/demo-wheels" \
    --require-hashes -r "$bundle/demo-data.lock" || fail_cleanup "installing the demo data failed"
fi
"$env_dir/bin/sitelabel" --version >/dev/null || fail_cleanup "the installed sitelabel does not start"
installed=$("$env_dir/bin/sitelabel" --version)

# --- 4. switch to it (one rename), keep the previous version for a rollback -----------------------
previous=$(readlink "$prefix/current" 2>/dev/null || true)
ln -sfn "$env_dir" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current" 2>/dev/null || { rm -f "$prefix/current"; mv "$prefix/current.new" "$prefix/current"; }
if [[ -n $previous ]]; then
  ln -sfn "$previous" "$prefix/previous"
  for old in "$prefix"/versions/*; do  # keep the current and the previous one
    [[ $old == "$env_dir" || $old == "$previous" ]] || rm -rf -- "$old"
  done
fi

# --- 5. command, icon, menu entry, site config ------------------------------------------------
mkdir -p "$prefix/share" "$bin_dir"
cp "$bundle/share/sitelabel.svg" "$bundle/share/sitelabel.png" "$prefix/share/"
cp "$bundle/site-config.example.toml" "$bundle/README.md" "$prefix/share/"
ln -sfn "$prefix/current/bin/sitelabel" "$bin_dir/sitelabel"
: > "$record"
echo "$bin_dir/sitelabel" >> "$record"

if ((desktop)) && [[ $(uname) == Linux ]]; then
  entry=$prefix/share/sitelabel.desktop
  sed -e "s|@BIN@|$bin_dir/sitelabel|" -e "s|@ICON@|$prefix/share/sitelabel.svg|" \
    "$bundle/share/sitelabel.desktop" > "$entry"
  if [[ $apps_dir == /usr/share/applications || $apps_dir == "${XDG_DATA_HOME:-$HOME/.local/share}/applications" ]] && \
     command -v xdg-desktop-menu >/dev/null 2>&1 && \
     xdg-desktop-menu install --novendor --mode "$([[ $(id -u) -eq 0 ]] && echo system || echo user)" "$entry" 2>/dev/null; then
    echo "$apps_dir/sitelabel.desktop" >> "$record"
  else  # no xdg-utils: the freedesktop.org location directly
    mkdir -p "$apps_dir"
    cp "$entry" "$apps_dir/sitelabel.desktop"
    echo "$apps_dir/sitelabel.desktop" >> "$record"
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps_dir" 2>/dev/null || true
  fi
fi

if [[ -n $site_config ]]; then
  [[ -f $site_config ]] || die "no site config at $site_config"
  mkdir -p "$config_dir"
  if [[ -f $config_dir/config.toml ]] && ! cmp -s "$site_config" "$config_dir/config.toml"; then
    cp -p "$config_dir/config.toml" "$config_dir/config.toml.before-$stamp"
    say "previous site config kept as $config_dir/config.toml.before-$stamp"
  fi
  install -m 0644 "$site_config" "$config_dir/config.toml"
  say "site config installed: $config_dir/config.toml"
elif [[ -f $config_dir/config.toml ]]; then
  say "site config kept: $config_dir/config.toml"
else
  say "no site config yet: copy $prefix/share/site-config.example.toml to $config_dir/config.toml and edit it"
fi

# --- 6. what the desktop needs from the system (Qt's libraries) ----------------------------------
if [[ $(uname) == Linux ]] && command -v ldconfig >/dev/null 2>&1; then
  missing=()
  for lib in libEGL.so.1 libGL.so.1 libfontconfig.so.1 libxkbcommon.so.0 libxkbcommon-x11.so.0 \
             libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-shape.so.0 libdbus-1.so.3; do
    ldconfig -p | grep -q "$lib" || missing+=("$lib")
  done
  if ((${#missing[@]})); then
    say "warning: the window needs system libraries that are missing: ${missing[*]}"
    say "  Debian/Ubuntu: apt-get install libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libdbus-1-3"
    say "  RHEL/Rocky: dnf install mesa-libEGL mesa-libGL fontconfig libxkbcommon-x11 xcb-util-cursor xcb-util-wm xcb-util-keysyms dbus-libs"
  fi
fi

say "installed $installed ($target) in $prefix"
[[ -n $previous ]] && say "previous version kept for a rollback: $previous"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) say "note: $bin_dir is not on your PATH; add it, or run $bin_dir/sitelabel" ;;
esac
say "next: sitelabel config check    (tests the site config, the database and the folders)"
