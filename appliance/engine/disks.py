"""Runtime view of the data disks: where shards live, per-disk limiters and error counters.

A disk is a directory (the root of a mounted filesystem, or a plain directory in the embedded
mode) holding `shards/<2 hex>/<segment>.<shard>` and `tmp/`. The fan-out directories are
created once when the disk is initialised and never at write time: if the filesystem goes away
and leaves an empty mount point, writes fail instead of filling the root filesystem.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import outcome
import trio

from diskmgr.durable import fsync_dir
from diskmgr.latency import LatencyHistogram
from diskmgr.state import READABLE, WRITABLE, DiskState

from . import fssync

FANOUT = [f"{i:02x}" for i in range(256)]
log = logging.getLogger("stowage.disks")

SPACE_SECONDS = 1.0  # free and total space are read again when older than this
# what a disk's directory holds besides its label (volumes/ is made by the first packed write)
SKELETON = ("shards", "tmp", "volumes")


def skeleton_fault(path: Path) -> str | None:
    """Why the disk at `path` cannot be used as it is: the path, or one of the entries of its
    skeleton, is not a directory (a file left where one belongs); None when each is a directory
    or not made yet (blocking; OSError if one cannot be looked at)."""
    for p in (path, *(path / sub for sub in SKELETON)):
        try:
            mode = os.stat(p).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            return f"{p} is not a directory"
    return None


@dataclass
class DiskCounters:
    reads: int = 0
    writes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    io_errors: int = 0
    checksum_failures: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def observe(self, seconds: float) -> None:
        """One shard read or write took `seconds` (waiting for the disk's limiter included)."""
        self.latency.observe(seconds)

    def wrote(self, seconds: float, nbytes: int) -> None:
        """One shard write of `nbytes` landed after `seconds`."""
        self.observe(seconds)
        self.writes += 1
        self.write_bytes += nbytes

    def latency_p99_ms(self) -> float | None:
        """The 99th percentile over the last minute; None while too few operations were seen."""
        return self.latency.p99_ms()


@dataclass
class Disk:
    disk_id: str
    path: Path
    pool: str = "default"
    role: str = "data"
    state: DiskState = DiskState.OK
    reasons: list[str] = field(default_factory=list)
    counters: DiskCounters = field(default_factory=DiskCounters)
    limiter: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(4))
    reserve_bytes: int = 64 << 20  # keep this much free so the filesystem itself stays healthy
    reserve_inodes: int = 256  # and this many inodes (a shard file, its temporary, a directory each)
    # spun down (seen by the disk monitor with `hdparm -C`, which does not wake it): new
    # segments and the scrubber leave it asleep while they can
    asleep: bool = False
    _space_read: tuple[int, int, int | None] | None = field(default=None, init=False, repr=False)
    _space_at: float = field(default=0.0, init=False, repr=False)
    _space_reading: bool = field(default=False, init=False, repr=False)

    @property
    def shards_dir(self) -> Path:
        return self.path / "shards"

    @property
    def tmp_dir(self) -> Path:
        return self.path / "tmp"

    def shard_path(self, segment_id: str, shard: int) -> str:
        return f"{self.path}/shards/{segment_id[:2]}/{segment_id}.{shard}"

    def tmp_path(self, segment_id: str, shard: int) -> str:
        return f"{self.path}/tmp/{segment_id}.{shard}.{secrets.token_hex(4)}"

    @functools.cached_property
    def group_syncable(self) -> bool:
        """The disk is the root of a filesystem of its own (a mounted data disk), not a
        directory of a filesystem shared with other software (the embedded mode), and one that
        syncfs makes durable (fssync.py: not a FUSE filesystem)."""
        return os.path.ismount(self.path) and fssync.syncfs_reaches(str(self.path))

    @property
    def writable(self) -> bool:
        return self.state in WRITABLE

    @property
    def readable(self) -> bool:
        return self.state in READABLE

    def free_bytes(self) -> int:
        return max(0, self._space()[0] - self.reserve_bytes)

    def total_bytes(self) -> int:
        return self._space()[1]

    def device(self) -> int | None:
        """The filesystem's device number (disks sharing one count once); None if unreadable."""
        return self._space()[2]

    def _space(self) -> tuple[int, int, int | None]:
        """(free bytes, total bytes, device) as last read. Callers run in the event loop (placement, status),
        and a stalled disk would hold it in statvfs: the figures are read again in a worker thread
        when older than SPACE_SECONDS, at most one at a time; only the first waits. The worker is
        one of trio's cached threads (a lock release): threading.Thread.start waited, in the loop,
        for a new thread to be scheduled, six times a second on a box of six disks (py-spy: 8% of
        a mount's file commit)."""
        space = self._space_read
        if space is None:
            self._space_reading = True
            return self._read_space()
        if time.monotonic() - self._space_at > SPACE_SECONDS and not self._space_reading:
            self._space_reading = True
            trio.lowlevel.start_thread_soon(self._read_space, _read_done, name=f"statvfs {self.disk_id}")
        return space

    def _read_space(self) -> tuple[int, int, int | None]:
        space: tuple[int, int, int | None]
        try:
            st = os.statvfs(self.path)
            free = st.f_bavail * st.f_frsize
            # A filesystem out of inodes (many small files on ext4, a tmpfs's nr_inodes) refuses
            # every new shard file whatever its free bytes: its room is none. f_files == 0 means
            # no inode limit (btrfs, and XFS allocates them as it goes).
            if st.f_files and st.f_favail < self.reserve_inodes:
                free = 0
            space = (free, st.f_blocks * st.f_frsize, os.stat(self.path).st_dev)
        except OSError:
            space = (0, 0, None)
        except BaseException:
            self._space_reading = False  # (a bug) the next caller tries again
            raise
        self._space_read, self._space_at, self._space_reading = space, time.monotonic(), False
        return space

    def initialise(self) -> None:
        """Create the directory skeleton (blocking; once, when the disk joins)."""
        for sub in ("shards", "tmp"):
            (self.path / sub).mkdir(exist_ok=True)
        for d in FANOUT:
            (self.shards_dir / d).mkdir(exist_ok=True)
        fsync_dir(str(self.shards_dir))
        fsync_dir(str(self.path))

    def skeleton_fault(self) -> str | None:
        return skeleton_fault(self.path)

    def is_initialised(self) -> bool:
        return (self.shards_dir / "ff").is_dir() and self.tmp_dir.is_dir()

    def clear_tmp(self) -> int:
        """Remove temporary shard files left by a crash (blocking)."""
        n = 0
        try:
            entries = list(os.scandir(self.tmp_dir))
        except OSError:
            return 0
        for e in entries:
            try:
                os.unlink(e.path)
                n += 1
            except OSError:
                pass
        return n

    def iter_shard_files(self) -> Iterator[tuple[str, int, str]]:
        """(segment id, shard index, path) of every shard file on the disk (blocking)."""
        for d in FANOUT:
            try:
                entries = list(os.scandir(self.shards_dir / d))
            except OSError:
                continue
            for e in entries:
                seg, _, idx = e.name.rpartition(".")
                if seg and idx.isascii() and idx.isdigit():
                    yield seg, int(idx), e.path

    def record_error(self, checksum: bool = False) -> None:
        if checksum:
            self.counters.checksum_failures += 1
        else:
            self.counters.io_errors += 1

    def record_write_error(self, exc: OSError) -> None:
        """A write failed: an I/O error of the disk, unless its filesystem is full (a full disk
        is not a failing one: its health must not suffer, diskmgr/health.py); its free space
        is then read again at the next look."""
        if is_full(exc):
            self._space_at = 0.0
        else:
            self.record_error()


def _read_done(result: outcome.Outcome[object]) -> None:
    """A space read in a worker thread: its figures are on the disk; only a bug is left to say."""
    if isinstance(result, outcome.Error):
        log.error("reading a disk's free space failed", exc_info=result.error)


def is_full(exc: OSError) -> bool:
    """The write failed for lack of space (the filesystem's, or a quota's)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class DiskSet:
    """All data disks of the appliance, by id, grouped in pools."""

    def __init__(self, disks: list[Disk] | None = None) -> None:
        self.disks: dict[str, Disk] = {d.disk_id: d for d in disks or []}

    def add(self, disk: Disk) -> None:
        self.disks[disk.disk_id] = disk

    def remove(self, disk_id: str) -> None:
        self.disks.pop(disk_id, None)

    def get(self, disk_id: str | None) -> Disk | None:
        return self.disks.get(disk_id) if disk_id else None

    def pool(self, name: str) -> list[Disk]:
        return [d for d in self.disks.values() if d.pool == name and d.role == "data"]

    def pools(self) -> list[str]:
        return sorted({d.pool for d in self.disks.values() if d.role == "data"})

    def __iter__(self) -> Iterator[Disk]:
        return iter(list(self.disks.values()))

    def __len__(self) -> int:
        return len(self.disks)

