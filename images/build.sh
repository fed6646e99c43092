#!/usr/bin/env bash
# Build a Debian 12 (bookworm) appliance root filesystem with Stowage installed and enabled.
#
#   images/build.sh [--output DIR] [--s3-listen HOST:PORT] [--cache DIR] [--base-only | --upgrade]
#
# Three layers, the first two cached (default cache: images/cache/, or $STOWAGE_IMAGE_CACHE):
#   base-KEY       debootstrap --variant=minbase + systemd + images/apt-packages.txt;
#                  KEY = hash of suite, mirror and package list, so it is rebuilt only when they change.
#   installed-KEY2 base + images/install.sh run in a chroot (venv with every Python dependency);
#                  KEY2 = KEY + hash of pyproject.toml, install.sh and the unit files.
#   DIR            a copy of installed-KEY2 where install.sh runs again with the current checkout
#                  (an in-place upgrade, so only the stowage package itself is rebuilt), plus the
#                  appliance config: directory-backed disks under /var/lib/stowage, fixed test
#                  credentials, S3 on --s3-listen (default 127.0.0.1:9000), the mount at /srv/stowage.
# The output boots with `systemd-nspawn -b -D DIR` (see tests/systemd/test_nspawn_boot.py).
# --upgrade reinstalls the current checkout into an existing DIR the way an operator upgrades a box
# (install.sh over the old install), keeping its config and /var/lib/stowage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
CACHE=${STOWAGE_IMAGE_CACHE:-$SRC/images/cache}
OUT=$SRC/images/out/rootfs
S3_LISTEN=127.0.0.1:9000
BASE_ONLY=0
UPGRADE=0
# Credentials baked into the image config: for tests and first boot only; change them on a real box.
TEST_ACCESS_KEY=stowagetestkey
TEST_SECRET_KEY=stowage-test-secret-key-0123456789

while [ $# -gt 0 ]; do
    case $1 in
        --output) OUT=$2; shift 2 ;;
        --s3-listen) S3_LISTEN=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --base-only) BASE_ONLY=1; shift ;;
        --upgrade) UPGRADE=1; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is not installed" >&2; exit 1; }

# The mirror apt already uses on this host (deb822 or one-line format), else Debian's default.
mirror() {
    local m
    m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1 || true)
    [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security \
        | awk '{print $2}' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${STOWAGE_DEBIAN_MIRROR:-$(mirror)}
SECURITY_MIRROR=$(grep -hsE '^URIs:.*security' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | head -n1 || true)
SECURITY_MIRROR=${STOWAGE_DEBIAN_SECURITY_MIRROR:-${SECURITY_MIRROR:-http://deb.debian.org/debian-security}}

# debootstrap's own dependency resolver only copes with the init system; everything else is
# installed with apt inside the new root.
BOOT_PACKAGES=systemd,systemd-sysv,dbus,procps,ca-certificates
APT_PACKAGES=$(grep -vE '^\s*(#|$)' "$SRC/images/apt-packages.txt" | sort -u | tr '\n' ' ')
KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$BOOT_PACKAGES" "$APT_PACKAGES" \
      | sha256sum | cut -c1-16)
BASE=$CACHE/base-$KEY
installed_dir() {
    local key2
    key2=$( { echo "$KEY"; cat "$SRC/pyproject.toml" "$SRC/images/install.sh" "$SRC/images/apt-packages.txt" \
              "$SRC"/systemd/*.service "$SRC"/systemd/*.timer; } | sha256sum | cut -c1-16)
    echo "$CACHE/installed-$key2"
}

log() { echo "build.sh: $*" >&2; }

# Run a command inside ROOT in a private mount namespace: /proc, /sys and /dev vanish with it,
# so an interrupted build never leaves mounts behind. The pip cache is shared across builds.
in_root() {
    local root=$1; shift
    mkdir -p "$CACHE/pip" "$root/root/.cache/pip"
    unshare -m --propagation private -- /bin/bash -c '
        set -e
        root=$1; cache=$2; shift 2
        mount -t proc proc "$root/proc"
        mount -t sysfs sys "$root/sys"
        mount --bind /dev "$root/dev"
        mount --bind "$cache/pip" "$root/root/.cache/pip"
        cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
        # pip trusts the build host'"'"'s CA bundle (a host behind a TLS-inspecting proxy has its
        # own CA there); it lives on a tmpfs that vanishes with this namespace, not in the image.
        mount -t tmpfs tmpfs "$root/tmp"
        ca=
        if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
            cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/build-host-ca.crt"
            ca=/tmp/build-host-ca.crt
        fi
        exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 \
            PIP_DEFAULT_TIMEOUT=180 ${ca:+PIP_CERT=$ca SSL_CERT_FILE=$ca} "$@"
    ' in_root "$root" "$CACHE" "$@"
}

# Copy the checkout (not its venv, git or caches) to ROOT/usr/src/stowage.
sync_source() {
    local root=$1
    mkdir -p "$root/usr/src/stowage"
    rsync -a --delete --exclude=/.venv --exclude=/.git --exclude=/images/cache --exclude=/images/out \
        --exclude=/stowage-data --exclude=__pycache__ --exclude='*.egg-info' --exclude=/build \
        --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache --exclude=.hypothesis \
        --exclude='.stamp-*' "$SRC/" "$root/usr/src/stowage/"
}

copy_tree() { rm -rf "$2"; cp -a --reflink=auto "$1" "$2"; }

build_base() {
    [ -d "$BASE" ] && return 0
    log "debootstrap $SUITE from $MIRROR into $BASE (once per package list; takes a few minutes)"
    local tmp=$BASE.tmp
    rm -rf "$tmp"
    debootstrap --variant=minbase --include="$BOOT_PACKAGES" \
        "$SUITE" "$tmp" "$MIRROR" >"$CACHE/debootstrap-$KEY.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap-$KEY.log" >&2; exit 1; }
    cat >"$tmp/etc/apt/sources.list" <<EOS
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOS
    # shellcheck disable=SC2086
    in_root "$tmp" /bin/sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $APT_PACKAGES \
        && apt-get clean && rm -rf /var/lib/apt/lists/*" >>"$CACHE/debootstrap-$KEY.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap-$KEY.log" >&2; exit 1; }
    # Each boot of a copy gets its own machine id; the journal persists under /var/log/journal.
    : >"$tmp/etc/machine-id"
    mkdir -p "$tmp/var/log/journal"
    echo stowage >"$tmp/etc/hostname"
    mv "$tmp" "$BASE"
    prune base- "$BASE"
}

build_installed() {
    [ -d "$INSTALLED" ] && return 0
    log "installing Stowage's dependencies into $INSTALLED"
    local tmp=$INSTALLED.tmp
    copy_tree "$BASE" "$tmp"
    sync_source "$tmp"
    in_root "$tmp" /bin/bash /usr/src/stowage/images/install.sh --no-start
    mv "$tmp" "$INSTALLED"
    prune installed- "$INSTALLED"
}

# Drop older layers of one kind: each is ~0.5 GB and only the current key is ever used again.
prune() {
    local keep=$2 old
    for old in "$CACHE/$1"*; do
        [ "$old" = "$keep" ] || [ ! -d "$old" ] || { log "removing stale cache layer $old"; rm -rf "$old"; }
    done
}

configure_appliance() {
    local root=$1 i
    mkdir -p "$root/etc/stowage"
    {
        echo "# Appliance image config (written by images/build.sh): six directory-backed disks under"
        echo "# /var/lib/stowage/disks and fixed test credentials. On real hardware use the commented"
        echo "# default from systemd/stowage.toml and replace the keys."
        echo 'state_dir = "/var/lib/stowage"'
        echo "embedded = true"
        echo 'log_level = "info"'
        for i in 0 1 2 3 4 5; do
            printf '\n[[disks]]\npath = "/var/lib/stowage/disks/disk%s"\npool = "default"\n' "$i"
        done
        printf '\n[s3]\nlisten = "%s"\naccess_key = "%s"\nsecret_key = "%s"\n' \
            "$S3_LISTEN" "$TEST_ACCESS_KEY" "$TEST_SECRET_KEY"
        printf '\n[mount]\nenabled = "auto"\npath = "/srv/stowage"\n'
    } >"$root/etc/stowage/stowage.toml"
    chmod 0640 "$root/etc/stowage/stowage.toml"
}

if [ "$UPGRADE" = 1 ]; then
    [ -x "$OUT/opt/stowage/venv/bin/stowage" ] || { echo "build.sh: no Stowage install in $OUT" >&2; exit 1; }
    log "upgrading Stowage in place in $OUT"
    sync_source "$OUT"
    in_root "$OUT" /bin/bash /usr/src/stowage/images/install.sh --no-start --no-apt
    echo "$OUT"
    exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
build_base
[ "$BASE_ONLY" = 1 ] && { echo "$BASE"; exit 0; }
INSTALLED=$(installed_dir)
build_installed
log "assembling $OUT"
mkdir -p "$(dirname "$OUT")"
copy_tree "$INSTALLED" "$OUT"
sync_source "$OUT"
in_root "$OUT" /bin/bash /usr/src/stowage/images/install.sh --no-start --no-apt
configure_appliance "$OUT"
echo "$OUT"
