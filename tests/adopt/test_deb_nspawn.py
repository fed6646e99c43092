"""The Debian package (`make deb`) on a fresh Debian 12 root booted with systemd-nspawn:
install (the service starts, serves HTTPS with its generated certificate, `stowage` is on PATH),
write, upgrade to a newer package (the service restarts, the data is intact, the previous venv
is kept for `stowage rollback`), remove, purge (config and /opt/stowage gone, data and master
key kept).

Slow: building the package takes a few minutes (pip installs every dependency into the venv),
and on a cold cache the Debian base root of images/build.sh ($STOWAGE_IMAGE_CACHE/base-*, shared
with tests/systemd/test_nspawn_boot.py under build.sh's lock) is debootstrapped first.
STOWAGE_DEB=FILE tests a package built already instead of building one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.conftest import REPO
from tests.systemd.test_nspawn_boot import CACHE, Container, _unavailable, boot, free_port, poweroff, wait_active


def _base_root() -> Path:
    """The cached Debian base root, debootstrapped by images/build.sh when the cache is cold."""
    out = subprocess.run(["bash", str(REPO / "images/build.sh"), "--cache", str(CACHE), "--base-only"],
                         capture_output=True, text=True, timeout=3600, check=False)
    assert out.returncode == 0, f"images/build.sh --base-only failed:\n{out.stderr[-4000:]}"
    base = Path(out.stdout.strip().splitlines()[-1])
    assert (base / "usr/bin/python3").exists(), f"{base} is not a Debian root with python3"
    return base


def _why_not() -> str | None:
    if _unavailable() is not None:
        return _unavailable()
    if shutil.which("dpkg-deb") is None:
        return "dpkg-deb is not installed (apt-get install dpkg-dev)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))]

VERSION2 = "0.1.0+upgrade1"


@dataclass
class Rig:
    root: Path
    port: int
    deb1: Path
    deb2: Path


def _rebuild_with_version(deb: Path, version: str, out: Path) -> Path:
    """The same package under a newer version (what an upgrade installs), without rebuilding."""
    tree = out / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN/control"
    control.write_text("".join(f"Version: {version}\n" if line.startswith("Version:") else line
                               for line in control.read_text().splitlines(keepends=True)))
    target = out / f"stowage_{version}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(target)], check=True,
                   capture_output=True)
    shutil.rmtree(tree)
    return target


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("deb")
    prebuilt = os.environ.get("STOWAGE_DEB")  # a package `make deb` built already
    if prebuilt:
        deb1 = Path(prebuilt)
    else:
        built = subprocess.run(["bash", str(REPO / "packaging/deb/build.sh"), "--output", str(work)],
                               capture_output=True, text=True, timeout=1800, check=False,
                               env=dict(os.environ, PIP_CACHE_DIR=str(CACHE / "pip")))
        assert built.returncode == 0, built.stderr[-4000:]
        deb1 = Path(built.stdout.strip().splitlines()[-1])
    deb2 = _rebuild_with_version(deb1, VERSION2, work)
    root = work / "rootfs"
    base = _base_root()
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(root)], check=True)
    try:
        yield Rig(root, free_port(), deb1, deb2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _chroot(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, timeout=600, check=False)


def _configure(root: Path, port: int) -> None:
    """What an operator edits after installing: the listen port, no mount, six directory disks."""
    conf = root / "etc/stowage/stowage.toml"
    text = conf.read_text().replace('#listen = "127.0.0.1:9000"', f'listen = "127.0.0.1:{port}"')
    text = text.replace('#enabled = "auto"', 'enabled = "no"')
    text += "".join(f'\n[[disks]]\npath = "/srv/disks/disk{i}"\n' for i in range(6))
    conf.write_text(text)


def _client(rig: Rig) -> object:
    creds = tomllib.loads((rig.root / "etc/stowage/credentials.toml").read_text())
    return boto3.client("s3", endpoint_url=f"https://127.0.0.1:{rig.port}", region_name="us-east-1",
                        aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret_key"],
                        verify=str(rig.root / "var/lib/stowage/tls/cert.pem"),
                        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))


def test_install_upgrade_remove_purge(rig: Rig) -> None:
    shutil.copy(rig.deb1, rig.root / "var/tmp/stowage1.deb")  # /tmp is a tmpfs once booted
    r = _chroot(rig.root, "dpkg", "-i", "/var/tmp/stowage1.deb")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (rig.root / "etc/systemd/system/multi-user.target.wants/stowage.service").is_symlink()
    assert os.readlink(rig.root / "usr/bin/stowage") == "/opt/stowage/venv/bin/stowage"
    _configure(rig.root, rig.port)
    c: Container = boot(rig.root, rig.root.parent / "console.log")
    try:
        wait_active(c)
        assert "stowage 0.1.0" in c.run("stowage", "version").stdout  # on PATH, from the package's venv
        env = c.run("stowage", "credentials", "--env").stdout
        assert "AWS_CA_BUNDLE=/var/lib/stowage/tls/cert.pem" in env and f"https://127.0.0.1:{rig.port}" in env
        assert "SHA-256 fingerprint" in c.journal()
        s3 = _client(rig)
        s3.create_bucket(Bucket="kept")  # type: ignore[attr-defined]
        s3.put_object(Bucket="kept", Key="before-upgrade", Body=b"v1 data" * 1000)  # type: ignore[attr-defined]

        shutil.copy(rig.deb2, rig.root / "var/tmp/stowage2.deb")
        up = c.run("dpkg", "-i", "--force-confold", "/var/tmp/stowage2.deb", timeout=600)
        assert "0.1.0+upgrade1" in c.run("dpkg-query", "-W", "-f", "${Version}", "stowage").stdout, up.stdout
        assert (rig.root / "opt/stowage/venv.previous/STOWAGE_VERSION").read_text().strip() == "0.1.0"
        wait_active(c)
        restarts = c.journal().count("Started stowage.service") + c.journal().count("Started Stowage")
        assert restarts >= 2  # postinst restarted it
        got = _client(rig).get_object(Bucket="kept", Key="before-upgrade")  # type: ignore[attr-defined]
        assert got["Body"].read() == b"v1 data" * 1000
        assert "formats: current" in c.run("stowage", "upgrade", "--check").stdout or \
            "running" in c.run("stowage", "upgrade", "--check").stdout

        c.run("dpkg", "-r", "stowage", timeout=300)
        assert c.run("systemctl", "is-active", "stowage", check=False).stdout.strip() != "active"
        assert not (rig.root / "usr/bin/stowage").exists()
        assert (rig.root / "etc/stowage/stowage.toml").exists()  # a conffile outlives removal
        c.run("dpkg", "--purge", "stowage", timeout=300)
        assert not (rig.root / "etc/stowage/stowage.toml").exists()
        assert not (rig.root / "opt/stowage").exists()
        assert (rig.root / "var/lib/stowage/meta").is_dir()  # the data is the operator's to destroy
        assert (rig.root / "etc/stowage/master.key").exists()
    finally:
        if c.proc.poll() is None:
            with contextlib.suppress(Exception):
                poweroff(c)
