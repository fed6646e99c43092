"""Patch commits: a new version made of a base version plus the byte ranges a writer changed.

The mount (fusefs) stages writes locally and commits on fsync/close with
`commit_patch(bucket, key, base, size, dirty, read_dirty, meta)`: `dirty` lists the [start, end)
ranges it wrote and `read_dirty(start, end)` returns those bytes. Every other byte below
base.size is the base version's; everything at or beyond base.size counts as dirty.

All dirty ranges are concatenated into ONE new staged segment (write_segment), and the new
version's ref list interleaves slices of the base's refs with slices of that segment, so a 4 KiB
write into a 1 GiB file stores 4 KiB. Small files (<= REWRITE_LIMIT) and badly fragmented ones
(> MAX_REFS refs) are rewritten whole instead, which keeps their ETag the true MD5 and their ref
lists short. ETag: when the new segment holds the whole content (file written from scratch, or
rewritten whole) it is the MD5 of the content (computed by write_segment as the bytes stream
past); otherwise a composite "<md5>-<refs>" that S3 clients recognise as not-an-MD5 (like a
multipart ETag). The staged segment is released by the commit itself, or on failure.

The new segment's headers name the version the commit makes (its id chosen before the write),
as a PUT's do (shardident.py): the GC's object-lock safety net covers it, and `recover-metadata`
without the journal rebuilds the version: a segment holding it whole like a PUT's, a spliced one
from the base version and the dirty runs its headers list (shardident.of_patch, `splice`).

Encryption: the new segment is written with `encrypt_with` and base bytes are read with
`decrypt_with`; the spliced version mixes base segments (their own keys) with the new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import trio

from . import shardident
from .crypto import KeyResolver, SegmentKey
from .records import ObjectVersion, SegmentRef
from .refs import merge_refs, slice_refs
from .segments import BodySummary
from .storecore import PutMeta, StoreCore

CHUNK = 1 << 20  # dirty bytes are read from the writer this much at a time
REWRITE_LIMIT = 8 << 20
MAX_REFS = 512
WINDOW = 8 << 20  # a whole rewrite reads the base this much at a time (_content)
EMPTY_MD5 = hashlib.md5(b"").hexdigest()

ReadRange = Callable[[int, int], Awaitable[bytes]]
Run = tuple[bool, int, int]  # (dirty?, start, end)


def layout(size: int, base_size: int, dirty: Iterable[tuple[int, int]]) -> list[Run]:
    """Dirty and base pieces covering [0, size), in order; bytes from base_size on are dirty."""
    spans = sorted([(s, min(e, size)) for s, e in dirty if s < min(e, size)]
                   + ([(base_size, size)] if base_size < size else []))
    runs: list[Run] = []
    pos = 0
    for s, e in spans:
        if runs and s <= pos:  # overlaps or touches the dirty run before: extend it
            if e > pos:
                runs[-1], pos = (True, runs[-1][1], e), e
            continue
        if pos < s:
            runs.append((False, pos, s))
        runs.append((True, s, e))
        pos = e
    if pos < size:
        runs.append((False, pos, size))
    return runs


def splice(runs: list[Run], base_refs: list[SegmentRef], seg: SegmentRef | None) -> list[SegmentRef]:
    """The new ref list: base slices for clean runs, consecutive ranges of seg for dirty ones
    (also how recover-metadata rebuilds a patched version from its segment's headers)."""
    refs: list[SegmentRef] = []
    seg_off = 0
    for dirty, s, e in runs:
        if dirty:
            assert seg is not None  # the dirty runs are what seg holds
            refs.append(SegmentRef(seg.segment_id, seg_off, e - s))
            seg_off += e - s
        else:
            refs.extend(slice_refs(base_refs, s, e))
    return merge_refs(refs)


def composite_etag(base_etag: str, refs: list[SegmentRef], new_md5: str) -> str:
    """Not an MD5 of the content (which nobody read whole): a digest of what the version is made
    of, "-<number of refs>" like a multipart ETag."""
    h = hashlib.md5(base_etag.encode())
    h.update(repr([(r.segment_id, r.offset, r.length) for r in refs]).encode())
    h.update(new_md5.encode())
    return f"{h.hexdigest()}-{len(refs)}"


class PatchStore(StoreCore):
    """StoreCore plus the mount's commit."""

    async def commit_patch(self, bucket: str, key: str, base: ObjectVersion | None, size: int,
                           dirty: Iterable[tuple[int, int]], read_dirty: ReadRange,
                           meta: PutMeta, *, encrypt_with: SegmentKey | None = None,
                           decrypt_with: KeyResolver | None = None, release: Iterable[str] = ()) -> ObjectVersion:
        """Commit `size` bytes: base's bytes outside `dirty`, read_dirty's inside (module doc).
        `release`: staged segments of `base` (a stream's, not yet a version's), released in the
        commit (referenced by the new version or not)."""
        runs = layout(size, base.size if base else 0, dirty)
        # the new segment names the version it is written for, as a PUT's does (shardident.py)
        new = self.new_version(bucket, key, meta)
        meta, version_id, identity = new.meta, new.version_id, new.identity

        def content() -> AsyncIterator[bytes | bytearray]:
            return self._content(runs, base, read_dirty, decrypt_with)

        base_refs = base.segments if base else []
        dirty_bytes = sum(e - s for d, s, e in runs if d)
        # too fragmented (counted with a stand-in for the dirty segment, before writing it):
        # rewritten whole, like small files
        if (size <= REWRITE_LIMIT or all(d for d, _, _ in runs)
                or len(splice(runs, base_refs, SegmentRef("", 0, dirty_bytes))) > MAX_REFS):
            seg, summary = await self.write_segment(content(), identity, encrypt_with=encrypt_with, size_hint=size)
            refs, etag = self._whole(seg, summary)
        else:
            assert base is not None  # a clean run is the base's
            seg, summary = await self.write_segment(self._dirty(runs, read_dirty),
                                                    shardident.of_patch(identity, base, runs, size),
                                                    encrypt_with=encrypt_with)
            refs = splice(runs, base_refs, seg)
            etag = composite_etag(base.etag, refs, summary.etag)
        staged = [seg.segment_id] if seg else []
        try:
            return await self.put_object_segments(bucket, key, refs, size, etag if size else EMPTY_MD5, meta,
                                                  release_staged=[*staged, *release], long_key=True,
                                                  version_id=version_id)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.release_staged(staged)
            raise

    @staticmethod
    def _whole(seg: SegmentRef | None, summary: BodySummary) -> tuple[list[SegmentRef], str]:
        return ([seg] if seg else []), summary.etag

    async def _content(self, runs: list[Run], base: ObjectVersion | None, read_dirty: ReadRange,
                       decrypt_with: KeyResolver | None) -> AsyncIterator[bytes | bytearray]:
        """The whole new content, in order. Runs that fit in a WINDOW together are read as one:
        the base once over the window, the dirty runs laid over it. Read one by one, a file
        rewritten because thousands of small writes fragmented it read each base block (1 MiB,
        decoded and decrypted whole) once per clean gap in it: 16 times over for 4,000 random
        4 KiB writes into 256 MiB (10 s for its fsync)."""
        i = 0
        while i < len(runs):
            j = i
            while j + 1 < len(runs) and runs[j + 1][2] - runs[i][1] <= WINDOW:
                j += 1
            dirty, s, e = runs[i]
            if j == i:
                if dirty:
                    async for piece in _read_range(read_dirty, s, e):
                        yield piece
                else:
                    assert base is not None  # clean runs lie below base.size
                    async for block in self.read_object(base, s, e, decrypt_with=decrypt_with):
                        yield block
                i += 1
                continue
            window = runs[i:j + 1]
            end = window[-1][2]
            buf = bytearray()
            clean_end = max((ce for d, _cs, ce in window if not d), default=s)
            if clean_end > s:
                assert base is not None
                async for block in self.read_object(base, s, clean_end, decrypt_with=decrypt_with):
                    buf += block
            buf.extend(bytes(end - s - len(buf)))
            for d, rs, re_ in window:
                if d:
                    async for piece in _read_range(read_dirty, rs, re_):
                        buf[rs - s:rs - s + len(piece)] = piece
                        rs += len(piece)
            yield bytes(buf)
            i = j + 1

    @staticmethod
    async def _dirty(runs: list[Run], read_dirty: ReadRange) -> AsyncIterator[bytes]:
        """The dirty runs' bytes, concatenated (the new segment)."""
        for dirty, s, e in runs:
            if dirty:
                async for piece in _read_range(read_dirty, s, e):
                    yield piece


async def _read_range(read_dirty: ReadRange, start: int, end: int) -> AsyncIterator[bytes]:
    for c in range(start, end, CHUNK):
        hi = min(end, c + CHUNK)
        data = await read_dirty(c, hi)
        if len(data) != hi - c:  # a short read would shift every later ref of the new version
            raise ValueError(f"read_dirty({c}, {hi}) returned {len(data)} bytes")
        yield data
