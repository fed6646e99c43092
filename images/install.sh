#!/usr/bin/env bash
# Install or upgrade Stowage on a Debian 12 storage box from this checkout (`make install`).
#
#   images/install.sh [--no-apt] [--no-start]
#
#   --no-apt    don't apt-get the system packages (images/apt-packages.txt); fail if one is missing
#   --no-start  enable the units but don't start or restart anything
#
# What goes where:
#   /opt/stowage/src            a copy of the checkout the package was built from
#   /opt/stowage/venv           the Python environment (entry point /opt/stowage/venv/bin/stowage)
#   /usr/local/bin/stowage      symlink to the entry point, for operators
#   /opt/stowage/libexec/       helper scripts run by units (SMART self-test)
#   /etc/systemd/system/        stowage.service, stowage-smart-selftest.{service,timer}
#   /etc/stowage/stowage.toml   the commented default config, only if there is none yet
#   /var/lib/stowage            state: never created, changed or removed here (systemd's
#                               StateDirectory= creates it on first start)
#
# Reinstalling upgrades in place: the package is rebuilt and reinstalled into the same venv, the
# units are replaced, the config is kept, and a running service is restarted (a clean stop,
# then the new version opens the same state; a format it cannot read is refused at start with
# a one-line error in the journal and no restart loop).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${STOWAGE_PREFIX:-/opt/stowage}
VENV=$PREFIX/venv
UNIT_DIR=/etc/systemd/system
CONF=/etc/stowage/stowage.toml
APT=1
START=1

while [ $# -gt 0 ]; do
    case $1 in
        --no-apt) APT=0; shift ;;
        --no-start) START=0; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs system packages and units)"
[ -f "$SRC/pyproject.toml" ] || die "$SRC is not a Stowage checkout"

# 1. System packages: only the missing ones, so a reinstall without network still works.
missing=()
while read -r pkg; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < <(grep -vE '^\s*(#|$)' "$SRC/images/apt-packages.txt")
if [ ${#missing[@]} -gt 0 ]; then
    [ "$APT" = 1 ] || die "missing system packages: ${missing[*]}"
    say "installing system packages: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. The source copy the package is built from (building in the checkout would litter it with
# build/ and egg-info owned by root).
# (tar, not rsync: this also runs on a minimal Debian.)
if [ "$(realpath "$SRC")" != "$(realpath -m "$PREFIX/src")" ]; then
    rm -rf "$PREFIX/src.new"
    mkdir -p "$PREFIX/src.new"
    tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./images/cache --exclude=./images/out \
        --exclude=./stowage-data --exclude=__pycache__ --exclude='*.egg-info' --exclude=./build \
        --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache --exclude=.hypothesis \
        --exclude='./.stamp-*' -cf - . | tar -C "$PREFIX/src.new" -xf -
    rm -rf "$PREFIX/src"
    mv "$PREFIX/src.new" "$PREFIX/src"
fi

# 3. The venv: (re)created when missing or when its Python no longer runs (a distribution
# upgrade replaced the interpreter); otherwise upgraded in place.
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
fi
old=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("stowage"))' 2>/dev/null || true)
# No build isolation: the venv's own setuptools builds the package, so a reinstall whose
# dependencies are already satisfied needs no network at all.
"$VENV/bin/pip" install -q --no-build-isolation --upgrade "$PREFIX/src"
new=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("stowage"))')
if [ -n "$old" ]; then say "upgraded stowage $old -> $new in $VENV"; else say "installed stowage $new in $VENV"; fi
ln -sfn "$VENV/bin/stowage" /usr/local/bin/stowage

# 4. Units and their helpers.
install -d -m 0755 "$PREFIX/libexec"
install -m 0755 "$SRC/systemd/smart_selftest.py" "$PREFIX/libexec/stowage-smart-selftest"
units=(stowage.service stowage-smart-selftest.service stowage-smart-selftest.timer)
for unit in "${units[@]}"; do
    install -m 0644 "$SRC/systemd/$unit" "$UNIT_DIR/$unit"
done

# 5. The config: never overwritten; the shipped default is kept beside it for comparison.
install -d -m 0755 /etc/stowage
install -m 0644 "$SRC/systemd/stowage.toml" /etc/stowage/stowage.toml.default
if [ ! -e "$CONF" ]; then
    install -m 0640 "$SRC/systemd/stowage.toml" "$CONF"
    say "installed the default config $CONF"
else
    say "kept the existing $CONF (the shipped default is $CONF.default)"
fi

# 6. Enable, and start or restart when systemd is running this machine. In a chroot or an image
# being built, enabling is just the [Install] symlinks.
if [ -d /run/systemd/system ] && [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
    systemctl daemon-reload
    systemctl enable stowage.service stowage-smart-selftest.timer
    if [ "$START" = 1 ]; then
        if systemctl is-active -q stowage.service; then
            say "restarting stowage.service on the new version"
            systemctl restart stowage.service
        else
            systemctl start stowage.service
        fi
        systemctl start stowage-smart-selftest.timer
        systemctl is-active -q stowage.service || die "stowage.service did not start: journalctl -u stowage"
        say "stowage.service is running"
    fi
else
    mkdir -p "$UNIT_DIR/multi-user.target.wants" "$UNIT_DIR/timers.target.wants"
    ln -sfn "$UNIT_DIR/stowage.service" "$UNIT_DIR/multi-user.target.wants/stowage.service"
    ln -sfn "$UNIT_DIR/stowage-smart-selftest.timer" "$UNIT_DIR/timers.target.wants/stowage-smart-selftest.timer"
    say "systemd is not running here: enabled stowage.service and its timer for the next boot"
fi
