"""Open-file state: writes staged in a local file, committed through the store's commit_patch.

One FileState per open inode (shared by all its handles, so two descriptors see each other's
writes). Written bytes go to an unlinked sparse file in the staging directory (bounded memory
whatever the file size); `dirty` records which byte ranges live there. Everything else below
`base_limit` is still the committed version's data. A small file written in order from empty
(`tar -x`, `cp` of small files) is held in memory instead, up to MEM_FILE_BYTES each and
MEM_TOTAL_BYTES for all of them (`MemBudget`); anything else moves it to the staging file first.

Commit (fsync, close) hands the store the size, the dirty ranges and a reader of the staging
file; the engine decides how the new version is laid out and what its ETag is
(appliance/engine/patch.py). A file written in order from its first byte is stored while it is
written instead (streaming.py), and its commit only adds the version; the bytes it was handed
are not staged. When the file stops being written in order the stream settles: its segment
(`prefix`, still staged) becomes the `origin` the dirty ranges patch, where the committed
version is otherwise. A segment holding a committed version whole (a file written in order,
stored at its close or streamed) names that version in its shard headers, as a PUT's does, its
id chosen before the segment is sealed (StoreCore.new_version). The mount deals in bytes
and versions only; committed bytes are read with `decrypt_with` and new ones written with the
key the commit is given (encryption.py).
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from appliance.engine import (
    BodySummary,
    KeyResolver,
    NewVersion,
    ObjectStore,
    ObjectVersion,
    PutMeta,
    SegmentKey,
    SegmentRef,
)

from .attrs import Posix
from .streaming import SegmentStream, StreamLost

if TYPE_CHECKING:
    from appliance.iam.objectkeys import Protection

CHUNK = 1 << 20
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
READ_WINDOW = 4 << 20
IO_LIMIT = trio.CapacityLimiter(8)
# A small file's bytes held in memory until its commit: a staging file costs each such file three
# worker-thread hops (write, the commit's read, the truncate after it) and an open/unlink, ~8% of
# the daemon's CPU per file of a `tar -x` into the mount. Bounded per file and in total.
MEM_FILE_BYTES = 64 << 10
MEM_TOTAL_BYTES = 32 << 20


class MemBudget:
    """The bytes all open files hold in memory (one per mount process: FileStates share it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, n: int) -> bool:
        if self.held + n > self.limit:
            return False
        self.held += n
        return True

    def give(self, n: int) -> None:
        self.held -= n


MEM = MemBudget(MEM_TOTAL_BYTES)


class Intervals:
    """Disjoint, sorted, non-adjacent [start, end) ranges."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, s: int, e: int) -> None:
        if s >= e:
            return
        i = bisect.bisect_left(self.ends, s)
        j = bisect.bisect_right(self.starts, e)
        if i < j:
            s, e = min(s, self.starts[i]), max(e, self.ends[j - 1])
        self.starts[i:j] = [s]
        self.ends[i:j] = [e]

    def clip(self, size: int) -> None:
        j = bisect.bisect_left(self.starts, size)
        del self.starts[j:], self.ends[j:]
        if self.ends and self.ends[-1] > size:
            self.ends[-1] = size

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))

    def runs(self, start: int, end: int) -> Iterator[tuple[bool, int, int]]:
        """(dirty?, s, e) pieces covering [start, end)."""
        pos = start
        i = max(0, bisect.bisect_right(self.ends, start))
        while pos < end:
            if i < len(self.starts) and self.starts[i] <= pos:
                hi = min(end, self.ends[i])
                yield True, pos, hi
                pos = hi
                i += 1
            else:
                hi = min(end, self.starts[i]) if i < len(self.starts) else end
                yield False, pos, hi
                pos = hi


class FileState:
    def __init__(self, store: ObjectStore, staging_dir: Path, base: ObjectVersion | None, posix: Posix,
                 content_type: str, decrypt_with: KeyResolver) -> None:
        self.store = store
        self.decrypt_with = decrypt_with
        self.staging_dir = staging_dir
        self.lock = trio.Lock()
        self.posix = posix
        self.content_type = content_type
        self.fd: int | None = None
        self.mem: bytearray | None = None  # the content, while in memory (then [0, size) exactly)
        self.dirty = Intervals()
        self.changed = False  # data or size differs from the committed version
        self.meta_changed = False  # attributes to commit with the data
        self.stale = False  # the committed version was replaced from outside
        self.stream: SegmentStream | None = None  # only while in_order
        self.origin: ObjectVersion | None = None  # where the clean bytes below base_limit are
        self.prefix: SegmentRef | None = None  # a settled stream's staged segment (then origin's)
        self.pinned: Protection | None = None  # what a stream (and so this content) is written under
        self.user_meta: dict[str, str] = dict(base.user_meta) if base else {}
        self._pinned_ids: set[str] = set()
        self.set_base(base)

    def set_base(self, base: ObjectVersion | None) -> None:
        """(Any prefix is released: by the commit of `base`, or never taken.) The base's
        segments are pinned while this state holds it: after an unlink, or a replace over S3,
        the open file still reads them, and the collector must leave them be."""
        self.store.unpin(self._pinned_ids)
        self._pinned_ids = {r.segment_id for r in base.segments} if base else set()
        self.store.pin(self._pinned_ids)
        self.base = self.origin = base
        self.prefix = None
        self.pinned = None
        self._cache: tuple[int, bytes] = (0, b"")
        self.base_limit = self.size = base.size if base else 0
        self.stale = False
        self.in_order = self.size == 0  # [0, size) was written in order, from an empty file
        self._release_mem()
        if self.size == 0:
            self.mem = bytearray()

    def _release_mem(self) -> None:
        if self.mem is not None:
            MEM.give(len(self.mem))
            self.mem = None

    async def _spill(self) -> None:
        """Move the in-memory content to the staging file (which is empty meanwhile: the content
        went to memory only from size 0, after any staged bytes were truncated away). Memory
        stays the content's home until the file holds it: a failed write loses nothing."""
        if self.mem is None:
            return
        if self.mem:
            fd = self._open_staging()
            await trio.to_thread.run_sync(os.pwrite, fd, bytes(self.mem), 0, limiter=IO_LIMIT)
        self._release_mem()

    # --- staging file -------------------------------------------------------------------

    def _open_staging(self) -> int:
        if self.fd is None:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            path = self.staging_dir / f"open-{secrets.token_hex(8)}"
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.unlink(path)  # the descriptor keeps it; a crash leaves nothing behind
        return self.fd

    async def close_staging(self) -> None:
        self.store.unpin(self._pinned_ids)
        self._pinned_ids = set()
        self._release_mem()
        if self.stream is not None:  # (it releases what it stored)
            self.stream.cancel()
            self.stream = None
        await self._drop_prefix()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    async def _drop_prefix(self) -> None:
        if self.prefix is not None:
            ids, self.prefix, self.origin = [self.prefix.segment_id], None, self.base
            with trio.CancelScope(shield=True):
                await self.store.release_staged(ids)

    async def _settle(self) -> None:
        """The content is no longer written in order: what the stream stored becomes the origin
        later changes patch (all of [0, size) was handed to it). A stream that failed leaves
        the staged bytes to fall back on, unless it was handed more (then they are lost)."""
        self.in_order = False
        stream, self.stream = self.stream, None
        stored = await self._stored(stream) if stream is not None else None
        if stored is None:
            return
        seg, summary = stored
        self.prefix = seg
        self.origin = ObjectVersion(bucket="", key="", version_id="", seq=0, last_modified_ns=0, size=summary.size,
                                    etag=summary.etag, segments=[seg])
        self.base_limit = self.size
        self._cache = (0, b"")
        self.dirty.clear()
        if self.fd is not None:  # the staged share is in the segment too
            await trio.to_thread.run_sync(os.ftruncate, self.fd, 0, limiter=IO_LIMIT)

    async def _stored(self, stream: SegmentStream, version: NewVersion | None = None
                      ) -> tuple[SegmentRef, BodySummary] | None:
        """The stream's segment of [0, size), once durable, naming `version` when it is
        committed as that (streaming.py); None when it failed holding nothing the staging file
        lacks (the staged bytes are then the content), EIO when it did."""
        seg, summary = await stream.finish(version.identity if version else None) or (None, None)
        if seg is not None and summary is not None and summary.size == self.size:  # (short: not expected)
            return seg, summary
        await self._lost_unless_staged(stream)
        return None

    async def _lost_unless_staged(self, stream: SegmentStream) -> None:
        """A failed stream: EIO, and the file back to its committed version, if it held bytes
        the staging file lacks (as a local file system drops pages whose writeback failed)."""
        await stream.abort()  # (drops whatever it stored)
        if not stream.pushed:
            return
        await self._drop_prefix()
        meta_changed = self.meta_changed
        self.set_base(self.base)
        self.dirty.clear()
        self.changed, self.meta_changed = False, meta_changed
        if self.fd is not None:
            await trio.to_thread.run_sync(os.ftruncate, self.fd, 0, limiter=IO_LIMIT)
        raise OSError(errno.EIO, "the file's data could not be stored")

    async def _commit_whole(self, bucket: str, key: str, new: NewVersion,
                            encrypt_with: SegmentKey | None) -> ObjectVersion:
        """A file written in order from empty: the staging file holds its whole content, stored
        as one new segment (written whole when it fits one block) and committed in the same
        transaction as the version, as an S3 PUT is (commit_patch would add a staged-segment
        record and its release: a transaction more per file). Its headers name `new`, as a
        PUT's do."""
        body = bytes(self.mem) if self.mem is not None else self._staged()
        seg, summary = await self.store.write_body(body, new.identity, size_hint=self.size, encrypt_with=encrypt_with)
        refs = [SegmentRef(seg.segment_id, 0, seg.plain_length)] if seg is not None else []
        try:
            etag = summary.etag if self.size else EMPTY_MD5
            return await self.store.put_object_segments(bucket, key, refs, self.size, etag, new.meta, long_key=True,
                                                        new_segments=[seg] if seg is not None else [],
                                                        version_id=new.version_id)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.store.discard_segment(seg)
            raise

    async def _staged(self) -> AsyncIterator[bytes | bytearray]:
        for c in range(0, self.size, CHUNK):
            yield await self._pread(c, min(self.size, c + CHUNK))

    async def read_staged(self, s: int, e: int) -> bytes:
        return await self._pread(s, e)

    async def _pread(self, s: int, e: int) -> bytes:
        if self.mem is not None:
            data = bytes(self.mem[s:e])
            return data + bytes(e - s - len(data)) if len(data) < e - s else data
        fd = self.fd
        if fd is None:
            return bytes(e - s)
        data = await trio.to_thread.run_sync(os.pread, fd, e - s, s, limiter=IO_LIMIT)
        return data + bytes(e - s - len(data)) if len(data) < e - s else data

    # --- data ops -------------------------------------------------------------------------

    async def write(self, off: int, data: bytes) -> int:
        mem = self.mem
        if mem is not None:
            if off == self.size and self.size + len(data) <= MEM_FILE_BYTES and MEM.take(len(data)):
                mem += data
                self.dirty.add(off, off + len(data))
                self.size += len(data)
                self.changed = True
                return len(data)
            await self._spill()
        if off != self.size:
            await self._settle()
        pushed = False
        if self.stream is not None:
            try:
                await self.stream.push(data)
                pushed = True
            except StreamLost:  # EIO if it held bytes the staging file lacks; else staged from here on
                await self._settle()
        if not pushed:
            await trio.to_thread.run_sync(os.pwrite, self._open_staging(), data, off, limiter=IO_LIMIT)
        if off > self.size:
            self.dirty.add(self.size, off)  # the hole reads as zeros from the sparse file
        self.dirty.add(off, off + len(data))
        self.size = max(self.size, off + len(data))
        self.changed = True
        return len(data)

    def start_stream(self, stream: SegmentStream, protection: Protection) -> None:
        """From now on, appended bytes go to `stream` (started on [0, size) of the staging file)."""
        self.stream = stream
        self.pinned = protection

    async def truncate(self, size: int) -> None:
        if size == self.size:
            return
        if size == 0:
            self._release_mem()  # the content goes; memory takes the next one (below)
            if self.stream is not None:
                stream, self.stream = self.stream, None
                await stream.abort()
            await self._drop_prefix()
            self.in_order = False  # (True again below)
        else:
            await self._spill()
            await self._settle()
        if size < self.size:
            self.dirty.clip(size)
            self.base_limit = min(self.base_limit, size)
            self._cache = (0, b"")
            if self.fd is not None:
                await trio.to_thread.run_sync(os.ftruncate, self.fd, size, limiter=IO_LIMIT)
        else:
            self.dirty.add(self.size, size)
        self.size = size
        self.changed = True
        self.in_order = size == 0
        if size == 0:  # (any staged bytes were truncated away above)
            self.mem = bytearray()

    async def read(self, off: int, size: int) -> bytes:
        end = min(self.size, off + size)
        if off >= end:
            return b""
        if self.stream is not None and end > self.stream.staged_end:
            await self._settle()  # the bytes are in the stream only
        return b"".join([piece async for piece in self._content(off, end)])

    async def _content(self, start: int, end: int) -> AsyncIterator[bytes | bytearray]:
        for dirty, s, e in self.dirty.runs(start, end):
            if dirty:
                for c in range(s, e, CHUNK):
                    yield await self._pread(c, min(e, c + CHUNK))
                continue
            hi = min(e, self.base_limit)
            if s < hi and self.origin is not None:  # (base_limit is 0 without an origin)
                async for piece in self._base(self.origin, s, hi):
                    yield piece
            if hi < e:  # cannot happen while [base_limit, size) is dirty; zeros to be safe
                yield bytes(e - max(s, hi))

    async def _base(self, base: ObjectVersion, s: int, e: int) -> AsyncIterator[bytes | bytearray]:
        """Committed bytes [s, e), through a one-window read-ahead cache: the kernel asks for
        128 KiB at a time, the store reads whole erasure-coded blocks."""
        if e - s > READ_WINDOW:
            async for piece in self.store.read_object(base, s, e, decrypt_with=self.decrypt_with):
                yield piece
            return
        c0, cached = self._cache
        if not (c0 <= s and e <= c0 + len(cached)):
            hi = min(self.base_limit, max(e, s + READ_WINDOW))
            cached = b"".join([p async for p in self.store.read_object(base, s, hi, decrypt_with=self.decrypt_with)])
            c0 = s
            self._cache = (c0, cached)
        yield cached[s - c0 : e - c0]

    # --- commit ---------------------------------------------------------------------------

    async def commit(self, bucket: str, key: str, meta: PutMeta, encrypt_with: SegmentKey | None) -> ObjectVersion:
        """Store the current content as the new version of bucket/key, new bytes encrypted with
        `encrypt_with` (caller holds the lock); a streamed file, with the segment stored for it.
        A new segment holding the whole content names the version it is committed as (its id
        chosen first, as a PUT's); commit_patch names its own."""
        new = self.store.new_version(bucket, key, meta) if self.stream is not None or self.in_order else None
        stream, self.stream = self.stream, None
        stored = await self._stored(stream, new) if stream is not None else None
        if stored is not None and new is not None:
            seg, summary = stored
            try:
                v = await self.store.put_object_segments(bucket, key, [seg], self.size, summary.etag, new.meta,
                                                         release_staged=[seg.segment_id], long_key=True,
                                                         version_id=new.version_id)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self.store.release_staged([seg.segment_id])
                raise
        elif new is not None and stream is None:  # (in order)
            v = await self._commit_whole(bucket, key, new, encrypt_with)
        else:  # (a failed stream, if any, was aborted by _stored)
            v = await self.store.commit_patch(bucket, key, self.origin, self.size, self.dirty.ranges(), self._pread,
                                              meta, encrypt_with=encrypt_with, decrypt_with=self.decrypt_with,
                                              release=[self.prefix.segment_id] if self.prefix else [])
        self.set_base(v)
        self.dirty.clear()
        self.changed = self.meta_changed = False
        if self.fd is not None:
            await trio.to_thread.run_sync(os.ftruncate, self.fd, 0, limiter=IO_LIMIT)
        return v
