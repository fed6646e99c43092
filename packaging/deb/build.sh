#!/usr/bin/env bash
# Build the Stowage Debian package (`make deb`) with the standard tooling (dpkg-deb).
#
#   packaging/deb/build.sh [--output DIR] [--version VERSION]
#
# The package installs:
#   /opt/stowage/venv                 the Python environment, built here with Debian's python3
#                                     (/usr/bin/python3: the package runs on the same Debian release)
#   /usr/bin/stowage                  -> /opt/stowage/venv/bin/stowage
#   /opt/stowage/libexec/             helper scripts run by the units (SMART self-test)
#   /lib/systemd/system/              stowage.service, stowage-smart-selftest.{service,timer}
#   /etc/stowage/stowage.toml         the commented default config (a conffile: kept when edited);
#                                     the root S3 key is generated on first start into
#                                     /etc/stowage/credentials.toml (`stowage credentials --env`)
# State stays in /var/lib/stowage, never touched by the package; the master key
# (/etc/stowage/master.key) survives a purge, since the data cannot be read without it.
# The maintainer scripts (packaging/deb/*inst, *rm): an upgrade keeps the previous venv as
# /opt/stowage/venv.previous (what `stowage rollback` returns to) and restarts a running service
# (the new version snapshots the metadata before migrating anything).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$SRC/dist
VERSION=""
while [ $# -gt 0 ]; do
    case $1 in
        --output) OUT=$2; shift 2 ;;
        --version) VERSION=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "build.sh: needs Debian's python3 (apt-get install python3-venv)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "build.sh: needs dpkg-deb (apt-get install dpkg-dev)" >&2; exit 1; }
[ -n "$VERSION" ] || VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/pyproject.toml" | head -1)
ARCH=$(dpkg --print-architecture)
PYVER=$($PY -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
NEXT=$($PY -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1] + 1}")')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stowage-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
STAGE=$ROOT/opt/stowage/venv
mkdir -p "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/stowage" "$ROOT/opt/stowage/libexec"

# The venv is built at its staging path, then every reference to that path is pointed at
# /opt/stowage/venv (shebangs, activate scripts): nothing in it may name the build directory.
# built from a copy, so the checkout gets no build/ or egg-info
mkdir -p "$WORK/src"
tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./dist --exclude=./images/cache --exclude=./build \
    --exclude=./stowage-data --exclude=__pycache__ --exclude='*.egg-info' --exclude=.mypy_cache \
    --exclude=.ruff_cache -cf - . | tar -C "$WORK/src" -xf -
$PY -m venv "$STAGE"
"$STAGE/bin/pip" install -q --upgrade pip setuptools wheel
"$STAGE/bin/pip" install -q "$WORK/src"
"$STAGE/bin/pip" uninstall -q -y pip setuptools wheel 2>/dev/null || true
find "$STAGE" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$STAGE" -name direct_url.json -path '*stowage-*' -delete  # it names the build copy
grep -rlI --null "$STAGE" "$STAGE" | xargs -0 -r sed -i "s|$STAGE|/opt/stowage/venv|g"
if grep -rqI "$WORK" "$STAGE"; then echo "build.sh: the venv still names $WORK" >&2; exit 1; fi
ln -s /opt/stowage/venv/bin/stowage "$ROOT/usr/bin/stowage"

install -m 0644 "$SRC"/systemd/stowage.service "$SRC"/systemd/stowage-smart-selftest.service \
    "$SRC"/systemd/stowage-smart-selftest.timer "$ROOT/lib/systemd/system/"
install -m 0755 "$SRC/systemd/smart_selftest.py" "$ROOT/opt/stowage/libexec/stowage-smart-selftest"
{
    sed -n '1,/^state_dir = /p' "$SRC/systemd/stowage.toml"
    echo
    echo "# Packaged appliance: the root S3 key is generated on first start into this file (mode 0600)"
    echo "# and shown by \`stowage credentials\`; or set s3.access_key/s3.secret_key instead."
    echo 'credentials_file = "/etc/stowage/credentials.toml"'
    sed -n '/^state_dir = /,$p' "$SRC/systemd/stowage.toml" | tail -n +2
} > "$ROOT/etc/stowage/stowage.toml"
chmod 0640 "$ROOT/etc/stowage/stowage.toml"
echo /etc/stowage/stowage.toml > "$ROOT/DEBIAN/conffiles"

for script in preinst postinst prerm postrm; do
    install -m 0755 "$SRC/packaging/deb/$script" "$ROOT/DEBIAN/$script"
done
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: stowage
Version: $VERSION
Architecture: $ARCH
Maintainer: Stowage developers <stowage@localhost>
Installed-Size: $SIZE
Depends: python3 (>= $PYVER), python3 (<< $NEXT), fuse3, libfuse3-3, smartmontools, xfsprogs, e2fsprogs, util-linux, systemd, libisal2
Section: admin
Priority: optional
Homepage: https://github.com/stowage/stowage
Description: storage appliance: erasure-coded S3 service and POSIX mount
 Stowage turns one box with several disks into an S3 service (with versioning,
 object lock, server-side encryption and IAM) and a FUSE mount of the same
 buckets, erasure-coding every object across the disks and healing itself.
CONTROL

mkdir -p "$OUT"
DEB=$OUT/stowage_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
