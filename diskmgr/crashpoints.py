"""Crash points: named steps of the write, GC, heal, rename and replication paths where the daemon kills itself,
so that tests can check recovery from a crash at exactly that step.

`STOWAGE_CRASH_AT=<point>[@<n>]` in the environment at start arms one point: the n-th time
(default the first) the daemon reaches it, it writes "crash point <name>" to stderr and sends
itself SIGKILL (no cleanup, no atexit, no buffered output: as a power cut or an OOM kill leaves
it). Unset, `crash_point` is one failed dict lookup. Here in diskmgr, the lowest layer, so that
the engine and the services can both call it.

`STOWAGE_CRASH_AT=file:<path>` arms them at run time instead: the file, when it exists, holds
`<point>[@<n>]`, read again whenever it changes (one stat per point reached), so that a test can
arm a running daemon for the next step, as the power-cut matrix does.
"""

from __future__ import annotations

import os
import signal

ENV = "STOWAGE_CRASH_AT"

# name -> where it is (the test suite crashes the daemon at every one of them)
POINTS = {
    "write.data_stored": "PUT: the shards are sealed on the disks, the version is not committed",
    "write.committed": "PUT: the version is committed and durable, the client has no answer yet",
    "multipart.completed": "CompleteMultipartUpload: committed, the client has no answer yet",
    "rename.committed": "mount rename: the move is committed, the file system call has not returned",
    "gc.record_dropped": "GC: the segment record is gone (durably), its shard files are not deleted yet",
    "gc.files_deleted": "GC: one segment's shard files are deleted, the next is not started",
    "heal.shards_sealed": "heal: rebuilt shards are sealed, the new placement is not committed",
    "heal.committed": "heal: the new placement is committed, the replaced shard files are not deleted",
    "transition.committed": "lifecycle transition: the re-encoded version is committed, the old data is not freed",
    "snapshot.committed": "metadata snapshot: stored and committed, the journal is not compacted",
    "replication.sent": "replication: the target acknowledged the version, the source's COMPLETED is not committed",
}


def _parse(raw: str) -> dict[str, int]:
    if not raw:
        return {}
    name, _, nth = raw.partition("@")
    if name not in POINTS:
        raise ValueError(f"{ENV}={raw}: no crash point {name!r} (known: {', '.join(sorted(POINTS))})")
    return {name: int(nth) if nth else 1}


_RAW = os.environ.get(ENV, "").strip()
_FILE = _RAW.removeprefix("file:") if _RAW.startswith("file:") else ""
_ARMED = {} if _FILE else _parse(_RAW)
_file_seen: tuple[int, int] | None = None  # (mtime_ns, size) of the arming file last read


def _rearm() -> None:
    """Arm what the arming file says, if it changed since it was last read."""
    global _ARMED, _file_seen
    try:
        st = os.stat(_FILE)
    except FileNotFoundError:
        _ARMED, _file_seen = {}, None
        return
    if (st.st_mtime_ns, st.st_size) != _file_seen:
        with open(_FILE) as f:
            _ARMED = _parse(f.read().strip())
        _file_seen = (st.st_mtime_ns, st.st_size)


def crash_point(name: str) -> None:
    """Die here if this point is armed (and reached its count)."""
    if _FILE:
        _rearm()
    left = _ARMED.get(name)
    if left is None:
        return
    if left > 1:
        _ARMED[name] = left - 1
        return
    os.write(2, f"crash point {name}\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
