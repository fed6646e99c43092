#!/usr/bin/env bash
# The full Debian package check, for CI or by hand (as root): make the Debian 12 base root if it
# is not cached (debootstrap: several minutes), build the package, then run the nspawn test
# (install, start, write, upgrade, data intact, remove, purge). The suite runs the same test
# only when the base root is cached already (tests/adopt/test_deb_nspawn.py).
#   bench/deb-nspawn.sh        STOWAGE_IMAGE_CACHE=/var/cache/stowage-images by default
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${STOWAGE_IMAGE_CACHE:-/var/cache/stowage-images}
PY=${PYTHON:-$SRC/.venv/bin/python}
if ! ls -d "$CACHE"/base-*/usr/bin/python3 >/dev/null 2>&1; then
    echo "deb-nspawn: building the Debian 12 base root in $CACHE (debootstrap)"
    bash "$SRC/images/build.sh" --cache "$CACHE" --base-only --output "$(mktemp -d)/rootfs"
fi
cd "$SRC"
exec "$PY" -m pytest -q -p no:cacheprovider tests/adopt/test_deb_nspawn.py "$@"
