"""Sequential writes stored while they happen, not staged whole and read back at commit.

A file written from its first byte in order (a new file, or one truncated to zero: `cp`, `dd`,
`tar -x`, a download) used to be staged whole and then read back and erasure-coded when it was
fsynced or closed. Once such a file has STREAM_START bytes, a task of the mount's nursery stores
it as a new segment (ObjectStore.write_segment: a staged segment, held until a version references
it): first the bytes already in the staging file, then each later write, handed over in memory
(push) without touching the staging file. A commit then waits only for the tail and commits that
segment; smaller files keep the whole-write path, whose geometry follows their size.

Later bytes are not staged because staging them cost as much as storing them: a page-cache copy
of every byte (the mount wrote 1 GiB at 66% of an S3 PUT's rate, with twice its CPU), a read
back, and as much free space on the staging file system as the file's size. At most
QUEUE_LIMIT bytes per file (QUEUE_TOTAL for all) wait in memory: a write waits for the store (as an S3 PUT's socket
does). Whatever needs the bytes back before the commit (a write that is not an append, a
truncate, a read past the staging file's share) settles the stream: its segment becomes the
content those changes patch (staging.py). A stream that fails loses the bytes only it held:
the write, fsync or close then fails with EIO, as a local file system's failed writeback does.

Durability is that of an S3 PUT: write_segment returns once the segment is durable, and only
then does the version that points at it get committed.

Which version the segment holds, if any, is known only when the file is committed: a commit
hands the stream that version's identity as it finishes, and the segment's headers, sealed
after its last byte, name it as a PUT's do (so `recover-metadata` without the journal and the
GC's object-lock safety net see it). A stream that settles holds no version of its own (the
commit_patch that follows makes one from it and the changes), so its headers name none.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from appliance.engine import BodySummary, ObjectStore, SegmentKey, SegmentRef

log = logging.getLogger("stowage.fuse")

STREAM_START = 8 << 20  # the size from which commit_patch streams a body anyway (REWRITE_LIMIT)
CHUNK = 1 << 20
QUEUE_LIMIT = 4 << 20  # bytes handed over and not yet taken by the store, per file
QUEUE_TOTAL = 32 << 20  # and for all the mount's streams together

ReadRange = Callable[[int, int], Awaitable[bytes]]
Stored = tuple[SegmentRef | None, BodySummary]


class StreamLost(Exception):
    """The stream ended without storing its bytes; those it held alone are gone."""


class Queued:
    """The bytes all streams hold (one per mount process): a push waits while over the total,
    and any stream's store taking bytes wakes every waiting push to check again."""

    def __init__(self) -> None:
        self.held = 0
        self._room: trio.Event | None = None

    def taken(self, n: int) -> None:
        self.held -= n
        if self._room is not None:
            self._room.set()
            self._room = None

    async def room(self) -> None:
        if self._room is None:
            self._room = trio.Event()
        await self._room.wait()


QUEUED = Queued()


class SegmentStream:
    """One file's bytes streamed into a segment: [0, staged_end) read from the staging file,
    then whatever push() hands over (see the module doc)."""

    def __init__(self, store: ObjectStore, read: ReadRange, staged_end: int, identity: dict[str, str],
                 encrypt_with: SegmentKey | None) -> None:
        self.store = store
        self.read = read
        self.staged_end = staged_end  # the bytes in the staging file; later ones exist only here
        self.identity = identity
        self.encrypt_with = encrypt_with
        self.done = False  # no more bytes: the file is being committed
        self.result: Stored | None = None
        self.stopped = False  # the stream's bytes are not wanted: its body ends at the next step
        self.finished = trio.Event()
        self._more = trio.Event()
        self._queue: deque[bytes] = deque()
        self.queued = 0  # bytes in _queue
        self.pushed = 0  # bytes handed over: a failure loses them (the staging file lacks them)
        self.version: dict[str, Any] = {}  # the identity of the version it holds, once known (finish)

    async def push(self, data: bytes) -> None:
        """Hand over the file's next bytes once there is room: QUEUE_LIMIT bytes for this stream,
        QUEUE_TOTAL for all, but always room for one piece in an empty queue. So the mount's
        streams hold at most QUEUE_TOTAL plus one write each, and a store never waits for bytes
        a push holds back."""
        while self._queue and not self.finished.is_set() and (
                self.queued + len(data) > QUEUE_LIMIT or QUEUED.held + len(data) > QUEUE_TOTAL):
            await QUEUED.room()
        if self.finished.is_set():
            raise StreamLost
        self._queue.append(data)
        self.queued += len(data)
        QUEUED.held += len(data)
        self.pushed += len(data)
        self._more.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            stored = await self.store.write_segment(self._body(), self.identity, encrypt_with=self.encrypt_with,
                                                    named=lambda: self.version)
            if self.stopped:  # it ended early: not wanted
                if stored[0] is not None:
                    await self.store.release_staged([stored[0].segment_id])
            else:
                self.result = stored
        except Exception:
            # write_segment discarded what it had stored
            if not self.stopped:  # (a stopped stream's staging file may be closed under it)
                log.exception("streaming %s/%s failed", self.identity.get("bucket"), self.identity.get("key"))
        finally:
            self._queue.clear()
            self.finished.set()
            self._drop(self.queued)

    async def _body(self) -> AsyncIterator[bytes]:
        for pos in range(0, self.staged_end, CHUNK):
            if self.stopped:
                return
            yield await self.read(pos, min(self.staged_end, pos + CHUNK))
        while True:
            while not self._queue and not self.done and not self.stopped:
                await self._more.wait()
                self._more = trio.Event()
            if self.stopped or not self._queue:  # stopped, or done and everything taken
                # stopped: the body just ends early (a short segment, released by run()), which
                # the engine handles like any body; a failing or cancelled one leaves more to undo
                return
            data = self._queue.popleft()
            self._drop(len(data))
            yield data

    def _drop(self, n: int) -> None:
        self.queued -= n
        QUEUED.taken(n)

    async def finish(self, version: dict[str, Any] | None = None) -> Stored | None:
        """The stored segment of everything handed over, once written and durable; None if the
        stream failed or was cancelled. `version`: the identity of the version the segment is
        committed as (StoreCore.new_version), which its headers then name (the body ends after
        this, so they are sealed with it)."""
        self.version = dict(version or {})
        self.done = True
        self._more.set()
        await self.finished.wait()
        return self.result

    def cancel(self) -> None:
        """Stop without waiting (the staging file is going away): the body ends at its next
        step and run() releases what was stored."""
        self.stopped = True
        self._more.set()
        QUEUED.taken(0)  # (a push waiting on this stream checks again)

    async def abort(self) -> None:
        """Stop and drop what was stored."""
        self.cancel()
        await self.finished.wait()
        if self.result is not None and self.result[0] is not None:
            await self.store.release_staged([self.result[0].segment_id])
        self.result = None
