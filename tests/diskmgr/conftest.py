"""Real loop devices for the disk-management tests (root only; skipped elsewhere).

Every device is torn down even when the test fails: whatever is mounted from it is unmounted
(lazily if busy), an immutable mount-point flag is cleared, and the loop device is detached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

GIB = 1 << 30


def _can_loop() -> bool:
    return os.geteuid() == 0 and shutil.which("losetup") is not None and os.path.exists("/dev/loop-control")


def _mounts_of(dev: str) -> list[str]:
    st = os.stat(dev)
    majmin = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[2] == majmin:
                out.append(parts[4].replace("\\040", " "))
    return out


def _detach(dev: str) -> None:
    for mp in sorted(_mounts_of(dev), key=len, reverse=True):
        if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True)
    # partitions of the loop device (loopNpM) may be mounted too
    name = os.path.basename(dev)
    for part in Path("/sys/block", name).glob(f"{name}p*"):
        pdev = f"/dev/{part.name}"
        if os.path.exists(pdev):
            for mp in _mounts_of(pdev):
                subprocess.run(["umount", "-l", mp], capture_output=True)
    subprocess.run(["losetup", "-d", dev], capture_output=True)


@pytest.fixture
def make_loop(tmp_path: Path) -> Iterator[Callable[..., str]]:
    if not _can_loop():
        pytest.skip("needs root and loop devices")
    made: list[str] = []

    def make(size: int = GIB, name: str = "disk.img") -> str:
        img = tmp_path / f"{len(made)}-{name}"
        with open(img, "wb") as f:
            f.truncate(size)  # sparse
        dev = subprocess.run(["losetup", "-f", "--show", "-P", str(img)], capture_output=True, text=True,
                             check=True).stdout.strip()
        made.append(dev)
        return dev

    try:
        yield make
    finally:
        for dev in made:
            _detach(dev)
        release_mount_points(tmp_path)


def release_mount_points(root: Path) -> None:
    """Mount points the appliance prepared are made immutable while empty (diskmgr/prepare.py):
    clear that under `root`, or pytest cannot delete the test's directory (and every run would
    leave it behind, loop images and all)."""
    for top, dirs, _files in os.walk(root):  # os.walk skips what it cannot read (a dead mount)
        if Path(top).name == "disks":
            for name in dirs:
                if name.startswith("disk-") and not (Path(top) / name).is_symlink():
                    subprocess.run(["chattr", "-i", str(Path(top) / name)], capture_output=True)
            # a disk's shards, volumes and journal hold no mount point: not walked (the whole
            # run's tree, ~850,000 entries, took each worker 4 minutes at the session's end)
            dirs[:] = [d for d in dirs if not d.startswith("disk-")]


@pytest.fixture
def loop_device(make_loop: Callable[..., str]) -> str:
    return make_loop()


@pytest.fixture
def write_mbr() -> Callable[..., None]:
    return _write_mbr


def _write_mbr(dev: str, size: int = GIB) -> None:
    """A DOS partition table with one Linux partition, written straight to the device."""
    import struct

    mbr = bytearray(512)
    mbr[440:444] = b"\x12\x34\x56\x78"
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0x83, b"\xff\xff\xff", 2048, size // 512 - 2048)
    mbr[510:512] = b"\x55\xaa"
    with open(dev, "r+b") as f:
        f.write(mbr)
        f.flush()
        os.fsync(f.fileno())
    subprocess.run(["partx", "-a", dev], capture_output=True)
