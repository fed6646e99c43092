"""The machine's raw speeds, measured in the same run as a benchmark so figures sit side by side.

sequential write: dd-style 4 MiB writes of a 1 GiB file then fsync; sequential read: the same
file read back after dropping it from the page cache (posix_fadvise DONTNEED, which works
without privileges; /proc/sys/vm/drop_caches is used too when writable); memory: a 1 GiB
memcpy; durable small files: write + fsync + rename + dir fsync per second.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20


@dataclass
class RawSpeeds:
    seq_write_mib_s: float
    seq_read_mib_s: float
    memcpy_mib_s: float
    durable_files_per_s: float

    def lines(self) -> list[str]:
        return [
            f"raw disk sequential write (+fsync): {self.seq_write_mib_s:8.1f} MiB/s",
            f"raw disk sequential read (cold):    {self.seq_read_mib_s:8.1f} MiB/s",
            f"memory copy:                        {self.memcpy_mib_s:8.1f} MiB/s",
            f"durable small files (1 thread):     {self.durable_files_per_s:8.1f} files/s",
        ]


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(directory: Path, size: int = 1 << 30) -> RawSpeeds:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "raw-speed.tmp"
    buf = os.urandom(4 * MIB)
    t = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for _ in range(size // len(buf)):
            f.write(buf)
        os.fsync(f.fileno())
    write = size / MIB / (time.perf_counter() - t)
    drop_cache(path)
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(4 * MIB):
            pass
    read = size / MIB / (time.perf_counter() - t)
    path.unlink()
    src = bytearray(256 * MIB)
    t = time.perf_counter()
    for _ in range(4):
        bytes(src)
    memcpy = 1024 / (time.perf_counter() - t)
    small = directory / "small"
    small.mkdir(exist_ok=True)
    n = 300
    t = time.perf_counter()
    dfd = os.open(small, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(n):
        tmp = small / f".{i}.tmp"
        with open(tmp, "wb") as f:
            f.write(buf[:4096])
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, small / str(i))
        os.fsync(dfd)
    os.close(dfd)
    files = n / (time.perf_counter() - t)
    for p in small.iterdir():
        p.unlink()
    small.rmdir()
    return RawSpeeds(write, read, memcpy, files)


@contextlib.contextmanager
def scratch_dir(directory: str, prefix: str) -> Iterator[Path]:
    """A benchmark's scratch directory under `directory` (made if missing: a --dir not made
    yet), removed afterwards."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=prefix) as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def work_dir(directory: str, prefix: str, raw_bytes: int) -> Iterator[tuple[Path, RawSpeeds]]:
    """`scratch_dir`, and the raw speeds measured in it first (printed), for a benchmark to
    print its figures beside."""
    with scratch_dir(directory, prefix) as work:
        raw = measure(work / "raw", raw_bytes)
        for line in raw.lines():
            print(line)
        yield work, raw
