"""Group commit of small shard files: one syncfs per filesystem for many files, not two fsyncs each.

A small PUT writes m+1 complete shard files; made durable one by one, each costs an fsync of
the file and one of its directory (about a journal commit each), and the filesystem journal,
not the bytes, bounds the rate. Here a writer writes and renames its file unsynced, then waits
on its filesystem's GroupSync (groupsync.py): one syncfs(2) makes every file written before it
began durable, data and directory entries alike, for all the writers that arrived meanwhile.
Disks that are directories of one filesystem (the embedded mode, tests) share one syncer.

syncfs reports only the filesystem's writeback errors since its descriptor was opened, and a
syncer must not hold a descriptor between syncs (a drained disk is unmounted). So each writer
keeps its own file open and, after the group sync, fdatasyncs it: the data is clean by then, so
that costs no journal commit, and it reports any writeback error of that file's pages since the
writer opened it. A failed sync fails every write that waited on it (their PUTs fail and their
files are removed: nothing unsynced is acknowledged).

syncfs does not reach a FUSE filesystem's server: the kernel writes back its page cache and
returns without asking the server to sync (only virtiofs forwards it), so a file "synced" that
way is lost with the server's cache at a power cut. `syncfs_reaches` tells such disks apart;
their shard files are fsync'd one by one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

from .groupsync import GroupSync

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)  # calls release the GIL


def syncfs(fd: int) -> None:
    """syncfs(2), which the os module lacks."""
    if _libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}")


FUSE_SUPER_MAGIC = 0x65735546


def syncfs_reaches(path: str) -> bool:
    """syncfs(2) of the filesystem holding `path` makes its files durable (not a FUSE one)."""
    return is_fuse(path) is not True  # cannot tell: the caller's syncfs then fails the way it would


def is_fuse(path: str) -> bool | None:
    """Whether `path` lies on a FUSE filesystem (None: statfs failed)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type, a C long, comes first
    if _libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value == FUSE_SUPER_MAGIC


class FilesystemSync:
    """The group syncer of one filesystem. It holds no descriptor between syncs (a disk must
    stay unmountable): the leader opens the directory of the latest writer to sync it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = 0  # writes completed so far: a writer's ticket is the count including it
        self._path = ""
        self.group = GroupSync(self._sync, lambda: self._done)

    def _sync(self) -> None:
        fd = os.open(self._path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            syncfs(fd)
        finally:
            os.close(fd)

    def written(self, path: str) -> int:
        """Count a completed write to a file under directory `path`; returns its ticket."""
        with self._lock:
            self._done += 1
            self._path = path
            return self._done

    def wait(self, ticket: int) -> None:
        self.group.wait(ticket)

    def sync_after(self, path: str) -> None:
        """A write under directory `path` has completed: block until a sync covers it."""
        self.wait(self.written(path))


_by_dev: dict[int, FilesystemSync] = {}
_by_dev_lock = threading.Lock()


def for_path(path: str) -> FilesystemSync:
    """The syncer of the filesystem holding `path` (one per filesystem in the process)."""
    dev = os.stat(path).st_dev
    with _by_dev_lock:
        fs = _by_dev.get(dev)
        if fs is None:
            fs = _by_dev[dev] = FilesystemSync()
        return fs
