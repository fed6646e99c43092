"""Open-file state: writes staged in a local file, committed as one new segment.

One FileState per open inode (shared by all its handles, so two descriptors see each other's
writes). Written bytes go to an unlinked sparse file in the staging directory (bounded memory
whatever the file size); `dirty` records which byte ranges live there. Everything else below
`base_limit` is still the committed version's data (its segment refs).

Commit (fsync, close): all dirty ranges are concatenated into ONE new staged segment
(store.write_segment), and the new version's ref list interleaves slices of the old version's
refs with slices of that segment, so a 4 KiB write into a 1 GiB file stores 4 KiB. Small files
(<= REWRITE_LIMIT) and badly fragmented ones (> MAX_REFS refs) are rewritten whole instead,
which keeps their ETag the true MD5 and their ref lists short. ETag: when the new segment holds
the whole content (file written from scratch, or rewritten whole), it is the MD5 of the content
(computed by write_segment as the bytes stream past); otherwise a composite "<md5>-<refs>" that
S3 clients recognise as not-an-MD5 (like a multipart ETag).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import trio

from appliance.engine import ObjectStore, ObjectVersion, PutMeta, SegmentRef, slice_refs

from .attrs import Posix

CHUNK = 1 << 20
READ_WINDOW = 4 << 20
REWRITE_LIMIT = 8 << 20
MAX_REFS = 512
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
IO_LIMIT = trio.CapacityLimiter(8)


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


def merge_refs(refs: list[SegmentRef]) -> list[SegmentRef]:
    out: list[SegmentRef] = []
    for r in refs:
        if out and out[-1].segment_id == r.segment_id and out[-1].offset + out[-1].length == r.offset:
            out[-1] = SegmentRef(r.segment_id, out[-1].offset, out[-1].length + r.length)
        else:
            out.append(r)
    return out


class FileState:
    def __init__(self, store: ObjectStore, staging_dir: Path, base: ObjectVersion | None, posix: Posix,
                 content_type: str) -> None:
        self.store = store
        self.staging_dir = staging_dir
        self.lock = trio.Lock()
        self.posix = posix
        self.content_type = content_type
        self.fd: int | None = None
        self.dirty = Intervals()
        self.changed = False  # data or size differs from the committed version
        self.meta_changed = False  # attributes to commit with the data
        self.stale = False  # the committed version was replaced from outside
        self.user_meta: dict[str, str] = dict(base.user_meta) if base else {}
        self.set_base(base)

    def set_base(self, base: ObjectVersion | None) -> None:
        self.base = base
        self.refs = list(base.segments) if base else []
        self._cache: tuple[int, bytes] = (0, b"")
        self.base_limit = self.size = base.size if base else 0
        self.stale = False

    # --- staging file -------------------------------------------------------------------

    def _open_staging(self) -> int:
        if self.fd is None:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            path = self.staging_dir / f"open-{secrets.token_hex(8)}"
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.unlink(path)  # the descriptor keeps it; a crash leaves nothing behind
        return self.fd

    def close_staging(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    async def _pread(self, s: int, e: int) -> bytes:
        fd = self.fd
        if fd is None:
            return bytes(e - s)
        data = await trio.to_thread.run_sync(os.pread, fd, e - s, s, limiter=IO_LIMIT)
        return data + bytes(e - s - len(data)) if len(data) < e - s else data

    # --- data ops -------------------------------------------------------------------------

    async def write(self, off: int, data: bytes) -> int:
        fd = self._open_staging()
        await trio.to_thread.run_sync(os.pwrite, fd, data, off, limiter=IO_LIMIT)
        if off > self.size:
            self.dirty.add(self.size, off)  # the hole reads as zeros from the sparse file
        self.dirty.add(off, off + len(data))
        self.size = max(self.size, off + len(data))
        self.changed = True
        return len(data)

    async def truncate(self, size: int) -> None:
        if size == self.size:
            return
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

    async def read(self, off: int, size: int) -> bytes:
        end = min(self.size, off + size)
        if off >= end:
            return b""
        parts: list[bytes] = []
        async for piece in self._content(off, end):
            parts.append(piece)
        return b"".join(parts)

    async def _content(self, start: int, end: int) -> AsyncIterator[bytes]:
        for dirty, s, e in self.dirty.runs(start, end):
            if dirty:
                for c in range(s, e, CHUNK):
                    yield await self._pread(c, min(e, c + CHUNK))
                continue
            hi = min(e, self.base_limit)
            if s < hi:
                async for piece in self._base(s, hi):
                    yield piece
            if hi < e:  # cannot happen while [base_limit, size) is dirty; zeros to be safe
                yield bytes(e - max(s, hi))

    async def _base(self, s: int, e: int) -> AsyncIterator[bytes]:
        """Committed bytes [s, e), through a one-window read-ahead cache: the kernel asks for
        128 KiB at a time, the store reads whole erasure-coded blocks."""
        if e - s > READ_WINDOW:
            async for piece in self.store.read_refs(self.refs, s, e):
                yield piece
            return
        c0, cached = self._cache
        if not (c0 <= s and e <= c0 + len(cached)):
            hi = min(self.base_limit, max(e, s + READ_WINDOW))
            cached = b"".join([p async for p in self.store.read_refs(self.refs, s, hi)])
            c0 = s
            self._cache = (c0, cached)
        yield cached[s - c0 : e - c0]

    async def _dirty_bytes(self) -> AsyncIterator[bytes]:
        for dirty, s, e in self.dirty.runs(0, self.size):
            if dirty:
                for c in range(s, e, CHUNK):
                    yield await self._pread(c, min(e, c + CHUNK))

    # --- commit ---------------------------------------------------------------------------

    def _layout(self) -> list[tuple[bool, int, int]]:
        return list(self.dirty.runs(0, self.size))

    async def commit(self, bucket: str, key: str, meta: PutMeta) -> ObjectVersion:
        """Store the current content as the new version of bucket/key (caller holds the lock)."""
        layout = self._layout()
        clean = [r for r in layout if not r[0]]
        whole = self.size <= REWRITE_LIMIT or not clean
        identity = {"bucket": bucket, "key": key}
        if whole:
            seg, summary = await self.store.write_segment(self._content(0, self.size), identity)
            refs = [seg] if seg else []
            etag = summary.md5
        else:
            seg, summary = await self.store.write_segment(self._dirty_bytes(), identity)
            refs, seg_off = [], 0
            for dirty, s, e in layout:
                if dirty:
                    assert seg is not None
                    refs.append(SegmentRef(seg.segment_id, seg_off, e - s))
                    seg_off += e - s
                else:
                    refs.extend(slice_refs(self.refs, s, e))
            refs = merge_refs(refs)
            if len(refs) > MAX_REFS:  # too fragmented: rewrite whole (old refs still readable)
                if seg is not None:
                    with trio.CancelScope(shield=True):
                        await self.store.release_staged([seg.segment_id])
                seg, summary = await self.store.write_segment(self._content(0, self.size), identity)
                refs, etag = ([seg] if seg else []), summary.md5
            else:
                h = hashlib.md5((self.base.etag if self.base else "").encode())
                h.update(repr([(r.segment_id, r.offset, r.length) for r in refs]).encode())
                h.update(summary.md5.encode())
                etag = f"{h.hexdigest()}-{len(refs)}"
        staged = [seg.segment_id] if seg else []
        try:
            v = await self.store.put_object_segments(bucket, key, refs, self.size, etag if self.size else EMPTY_MD5,
                                                     meta, release_staged=staged)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.store.release_staged(staged)
            raise
        self.set_base(v)
        self.dirty.clear()
        self.changed = self.meta_changed = False
        if self.fd is not None:
            await trio.to_thread.run_sync(os.ftruncate, self.fd, 0, limiter=IO_LIMIT)
        return v
