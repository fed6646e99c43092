"""Sequential writes stored while they happen, instead of read back and encoded at commit.

A file written from its first byte in order (a new file, or one truncated to zero: `cp`, `dd`,
`tar -x`, a download) used to be staged whole and then read back and erasure-coded when it was
fsynced or closed, so the writer waited for both, one after the other. Once such a file has
STREAM_START bytes, a task of the mount's nursery stores it as a new segment
(ObjectStore.write_segment: a staged segment, held until a version references it), reading the
staging file just behind the writer; a commit then waits only for the tail and commits that
segment. The staging file still holds every byte (reads of
the open file, and the fallback): a write that is not an append, a truncate, or a stream that
failed ends the stream (its shards are discarded) and the commit stores the staged bytes as
before. Smaller files keep the whole-write path, whose geometry follows their size.

Durability is that of an S3 PUT: write_segment returns once the segment is durable, and only
then does the version that points at it get committed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from appliance.engine import BodySummary, ObjectStore, SegmentKey, SegmentRef

log = logging.getLogger("stowage.fuse")

STREAM_START = 8 << 20  # the size from which commit_patch streams a body anyway (REWRITE_LIMIT)
CHUNK = 1 << 20

ReadRange = Callable[[int, int], Awaitable[bytes]]
Stored = tuple[SegmentRef | None, BodySummary]


class SegmentStream:
    """One file's bytes [0, end) streamed into a segment as `end` grows (see the module doc)."""

    def __init__(self, store: ObjectStore, read: ReadRange, identity: dict[str, str],
                 encrypt_with: SegmentKey | None, sse: dict[str, str] | None) -> None:
        self.store = store
        self.read = read
        self.identity = identity
        self.encrypt_with = encrypt_with
        self.sse = sse  # the protection the segment is written under, for the version's metadata
        self.end = 0  # bytes written in order so far (all in the staging file)
        self.done = False  # no more bytes: the file is being committed
        self.result: Stored | None = None
        self.stopped = False  # the stream's bytes are not wanted: its body ends at the next step
        self.finished = trio.Event()
        self._more = trio.Event()

    def appended(self, end: int) -> None:
        self.end = end
        self._more.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            stored = await self.store.write_segment(self._body(), self.identity, encrypt_with=self.encrypt_with)
            if self.stopped:  # it ended early: not wanted
                if stored[0] is not None:
                    await self.store.release_staged([stored[0].segment_id])
            else:
                self.result = stored
        except Exception:
            # write_segment discarded what it had stored; the commit stores the staged bytes
            if not self.stopped:  # (a stopped stream's staging file may be closed under it)
                log.exception("streaming %s/%s failed", self.identity.get("bucket"), self.identity.get("key"))
        finally:
            self.finished.set()

    async def _body(self) -> AsyncIterator[bytes]:
        pos = 0
        while True:
            while self.end - pos < CHUNK and not self.done and not self.stopped:
                await self._more.wait()
                self._more = trio.Event()
            if self.stopped or pos >= self.end:  # stopped, or done and everything read
                # stopped: the body just ends early (a short segment, released by run()), which
                # the engine handles like any body; a failing or cancelled one leaves more to undo
                return
            hi = min(self.end, pos + CHUNK)
            yield await self.read(pos, hi)
            pos = hi

    async def finish(self) -> Stored | None:
        """The stored segment of [0, end), once written and durable; None if the stream failed
        or was cancelled (the caller stores the staged bytes instead)."""
        self.done = True
        self._more.set()
        await self.finished.wait()
        return self.result

    def cancel(self) -> None:
        """Stop without waiting (the staging file is going away): the body ends at its next
        step and run() releases what was stored."""
        self.stopped = True
        self._more.set()

    async def abort(self) -> None:
        """Stop and drop what was stored."""
        self.cancel()
        await self.finished.wait()
        if self.result is not None and self.result[0] is not None:
            await self.store.release_staged([self.result[0].segment_id])
        self.result = None
