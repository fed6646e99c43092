"""The data path: streaming a body into an erasure-coded segment, and range reads back.

Write: the body is cut into blocks; each block is hashed and encoded in a worker thread and
its k+m chunks are handed to one writer task per shard, each appending to a temporary file on
its own disk under that disk's limiter. Bounded channels keep memory to a few blocks whatever
the object size. A shard whose disk fails mid-write is dropped; the segment survives if at
least `quorum` shards were written. Sealing fsyncs, renames and fsyncs directories; the
caller's metadata commit comes after.

Read: blocks are fetched in batches, one contiguous pread per shard file per batch, and every
chunk's CRC32C is verified. With all needed data chunks healthy the bytes are concatenated;
otherwise the remaining shards of the batch are read and the block is decoded, and the damage
is reported so the healer can rebuild the missing chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from diskmgr.durable import fsync_dir

from . import codec
from .codec import Geometry
from .disks import Disk, DiskSet
from .errors import InsufficientShards, InsufficientStorage
from .placement import choose
from .records import SegmentRecord
from .shardfile import ShardHeader, ShardWriter, block_count, block_len, read_chunks

READ_BATCH_BYTES = 8 << 20  # data bytes fetched per batch (per read, ~1.5x this in flight)
CHANNEL_DEPTH = 4  # encoded blocks buffered per shard writer

DamageCallback = Callable[[str, list[int], str], None]


@dataclass
class BodySummary:
    size: int = 0
    md5: str = hashlib.md5(b"").hexdigest()


@dataclass
class _ShardState:
    disk: Disk | None
    writer: ShardWriter | None = None
    failed: bool = False
    error: str = ""
    sent: list[int] = field(default_factory=list)


async def gather(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run calls concurrently in a local nursery; results in call order."""
    results: list[Any] = [None] * len(calls)

    async def one(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
        results[i] = await fn()

    async with trio.open_nursery() as nursery:
        for i, fn in enumerate(calls):
            nursery.start_soon(one, i, fn)
    return results


async def iter_blocks(body: bytes | AsyncIterable[bytes], block_size: int) -> AsyncIterator[bytes]:
    """Re-chunk a body into block_size pieces (the last may be shorter)."""
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        for off in range(0, len(data), block_size):
            yield data[off : off + block_size]
        return
    pieces: list[bytes] = []
    have = 0
    async for piece in body:
        if not piece:
            continue
        pieces.append(bytes(piece))
        have += len(piece)
        while have >= block_size:
            joined = b"".join(pieces)
            yield joined[:block_size]
            rest = joined[block_size:]
            pieces = [rest] if rest else []
            have = len(rest)
    if have:
        yield b"".join(pieces)


class SegmentIO:
    def __init__(self, disks: DiskSet, appliance_id: str, on_damage: DamageCallback) -> None:
        self.disks = disks
        self.appliance_id = appliance_id
        self.on_damage = on_damage

    # --- write ------------------------------------------------------------------------------

    async def write(
        self,
        body: bytes | AsyncIterable[bytes],
        geo: Geometry,
        pool: list[Disk],
        identity: dict[str, Any],
    ) -> tuple[SegmentRecord | None, BodySummary]:
        """Store a body as one new segment (None for an empty body). Not yet committed."""
        segment_id = secrets.token_hex(16)
        md5 = hashlib.md5()
        created = time.time_ns()
        header = ShardHeader(segment_id, 0, geo.k, geo.m, geo.block_size, 0, created, self.appliance_id,
                             dict(identity))
        shards: list[_ShardState] = []
        sends: list[trio.MemorySendChannel[memoryview]] = []
        length = 0

        async def encode(block: bytes) -> list[memoryview]:
            # MD5 and zfec each take ~1.5 ms per MiB; on two threads they overlap.
            _, chunks = await gather(lambda: trio.to_thread.run_sync(md5.update, block),
                                     lambda: trio.to_thread.run_sync(codec.encode_block, geo, block))
            encoded: list[memoryview] = chunks
            return encoded

        try:
            async with trio.open_nursery() as nursery:
                async for block in iter_blocks(body, geo.block_size):
                    if not shards:
                        placement = choose(pool, geo)
                        shards = [_ShardState(d) for d in placement]
                        for i, st in enumerate(shards):
                            send, recv = trio.open_memory_channel[memoryview](CHANNEL_DEPTH)
                            sends.append(send)
                            nursery.start_soon(self._shard_writer, i, st, header, recv)
                    chunks = await encode(block)
                    length += len(block)
                    for i, send in enumerate(sends):
                        await send.send(chunks[i])
                    self._check_quorum(shards, geo)
                for send in sends:
                    await send.aclose()
            summary = BodySummary(length, md5.hexdigest())
            if not shards:
                return None, summary
            self._check_quorum(shards, geo)
            identity = dict(identity, etag=summary.md5, size=length)
            await self._seal(segment_id, shards, header, length, identity)
            self._check_quorum(shards, geo)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._discard(segment_id, shards)
            raise
        disk_ids = [st.disk.disk_id if st.disk and not st.failed else None for st in shards]
        rec = SegmentRecord(segment_id, geo.k, geo.m, geo.block_size, length, disk_ids, refcount=0,
                            created_ns=created, pool=pool[0].pool if pool else "default",
                            damaged=[i for i, d in enumerate(disk_ids) if d is None])
        return rec, summary

    @staticmethod
    def _check_quorum(shards: list[_ShardState], geo: Geometry) -> None:
        healthy = sum(1 for st in shards if st.disk and not st.failed)
        if healthy < geo.quorum:
            errors = "; ".join(sorted({st.error for st in shards if st.error})) or "no disks"
            raise InsufficientStorage(
                f"only {healthy} of {geo.n} shards could be written (need {geo.quorum}): {errors}"
            )

    async def _shard_writer(
        self, i: int, st: _ShardState, header: ShardHeader, recv: trio.MemoryReceiveChannel[memoryview]
    ) -> None:
        disk = st.disk
        async with recv:
            if disk is None:
                async for _ in recv:
                    pass
                return
            hdr = _with_shard(header, i)
            try:
                st.writer = await trio.to_thread.run_sync(
                    ShardWriter, disk.tmp_path(header.segment_id, i), hdr, limiter=disk.limiter
                )
            except OSError as exc:
                self._fail(st, disk, exc)
            async for chunk in recv:
                if st.failed or st.writer is None:
                    continue
                t0 = time.perf_counter()
                try:
                    await trio.to_thread.run_sync(st.writer.append, chunk, limiter=disk.limiter)
                except OSError as exc:
                    self._fail(st, disk, exc)
                    await trio.to_thread.run_sync(st.writer.discard)
                    continue
                disk.counters.observe(time.perf_counter() - t0)
                disk.counters.writes += 1
                disk.counters.write_bytes += len(chunk)

    @staticmethod
    def _fail(st: _ShardState, disk: Disk, exc: OSError) -> None:
        st.failed = True
        st.error = f"{disk.disk_id}: {exc.strerror or exc}"
        disk.record_error()

    async def _seal(
        self, segment_id: str, shards: list[_ShardState], header: ShardHeader, length: int,
        identity: dict[str, Any],
    ) -> None:
        async def seal_one(i: int, st: _ShardState) -> None:
            if st.failed or st.writer is None or st.disk is None:
                return
            disk, writer = st.disk, st.writer
            final = _with_shard(header, i)
            final.length = length
            final.identity = identity
            path = disk.shard_path(segment_id, i)

            def work() -> None:
                writer.seal(path, final)
                fsync_dir(path.rsplit("/", 1)[0])

            try:
                await trio.to_thread.run_sync(work, limiter=disk.limiter)
            except OSError as exc:
                self._fail(st, disk, exc)
                await trio.to_thread.run_sync(writer.discard)

        await gather(*[(lambda i=i, st=st: seal_one(i, st)) for i, st in enumerate(shards)])

    async def _discard(self, segment_id: str, shards: list[_ShardState]) -> None:
        """Remove every file of an uncommitted segment (temporary or sealed)."""
        for i, st in enumerate(shards):
            if st.disk is None:
                continue
            disk, writer = st.disk, st.writer

            def work(disk: Disk = disk, writer: ShardWriter | None = writer, i: int = i) -> None:
                if writer is not None:
                    writer.discard()
                with contextlib.suppress(OSError):
                    os.unlink(disk.shard_path(segment_id, i))

            await trio.to_thread.run_sync(work, limiter=disk.limiter)

    async def delete(self, rec: SegmentRecord) -> None:
        """Remove the shard files of a segment (GC of an unreferenced segment)."""
        for i, disk_id in enumerate(rec.shards):
            disk = self.disks.get(disk_id)
            if disk is None:
                continue
            path = disk.shard_path(rec.segment_id, i)

            def work(path: str = path) -> None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

            try:
                await trio.to_thread.run_sync(work, limiter=disk.limiter)
            except OSError:
                disk.record_error()

    # --- read -------------------------------------------------------------------------------

    async def read(self, rec: SegmentRecord, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the segment, verified; decodes around damaged chunks."""
        if start >= end:
            return
        geo = Geometry(rec.k, rec.m, rec.block_size)
        first, last = start // geo.block_size, (end - 1) // geo.block_size
        per_batch = max(1, READ_BATCH_BYTES // geo.block_size)
        for b0 in range(first, last + 1, per_batch):
            b1 = min(last, b0 + per_batch - 1)
            blocks = await self._read_blocks(rec, geo, b0, b1)
            for b, data in zip(range(b0, b1 + 1), blocks, strict=True):
                base = b * geo.block_size
                lo = max(start - base, 0)
                hi = min(end - base, len(data))
                yield data[lo:hi] if (lo, hi) != (0, len(data)) else data

    async def _read_shard(self, rec: SegmentRecord, geo: Geometry, i: int, b0: int, b1: int) -> list[bytes | None]:
        disk = self.disks.get(rec.shards[i])
        n = b1 - b0 + 1
        if disk is None or not disk.readable:
            return [None] * n
        path = disk.shard_path(rec.segment_id, i)
        t0 = time.perf_counter()
        try:
            chunks = await trio.to_thread.run_sync(read_chunks, path, geo, rec.length, b0, b1, limiter=disk.limiter)
        except OSError:
            disk.record_error()
            return [None] * n
        disk.counters.observe(time.perf_counter() - t0)
        disk.counters.reads += 1
        bad = sum(1 for c in chunks if c is None)
        if bad:
            disk.counters.checksum_failures += bad
        if len(chunks) < n:  # truncated file: the missing tail is damage too
            chunks += [None] * (n - len(chunks))
        return chunks

    async def _read_blocks(self, rec: SegmentRecord, geo: Geometry, b0: int, b1: int) -> list[bytes]:
        n = b1 - b0 + 1
        got: dict[int, list[bytes | None]] = {}
        data_idx = list(range(geo.k))
        results = await gather(*[(lambda i=i: self._read_shard(rec, geo, i, b0, b1)) for i in data_idx])
        got.update(zip(data_idx, results, strict=True))
        damaged = sorted(i for i, chunks in got.items() if any(c is None for c in chunks))
        if damaged:
            extra = list(range(geo.k, geo.n))
            results = await gather(*[(lambda i=i: self._read_shard(rec, geo, i, b0, b1)) for i in extra])
            got.update(zip(extra, results, strict=True))
            damaged = sorted(i for i, chunks in got.items() if any(c is None for c in chunks))
            self.on_damage(rec.segment_id, damaged, "read")
        out: list[bytes] = []
        for j in range(n):
            blen = block_len(rec.length, geo.block_size, b0 + j)
            avail: dict[int, bytes] = {}
            for i, c in got.items():
                chunk = c[j]
                if chunk is not None:
                    avail[i] = chunk
            if all(i in avail for i in range(geo.k)):
                block = b"".join(avail[i] for i in range(geo.k))
                out.append(block[:blen] if len(block) != blen else block)
                continue
            if len(avail) < geo.k:
                raise InsufficientShards(
                    f"segment {rec.segment_id} block {b0 + j}: {len(avail)} of {geo.k} needed chunks "
                    f"readable (k={geo.k}, m={geo.m})"
                )
            out.append(await trio.to_thread.run_sync(codec.decode_block, geo, avail, blen))
        return out

    async def read_all_chunks(self, rec: SegmentRecord, b0: int, b1: int) -> dict[int, list[bytes | None]]:
        """Every shard's chunks for blocks b0..b1 (for the scrubber/healer)."""
        geo = Geometry(rec.k, rec.m, rec.block_size)
        idx = list(range(geo.n))
        results = await gather(*[(lambda i=i: self._read_shard(rec, geo, i, b0, b1)) for i in idx])
        return dict(zip(idx, results, strict=True))

    def block_count(self, rec: SegmentRecord) -> int:
        return block_count(rec.length, rec.block_size)


def _with_shard(header: ShardHeader, i: int) -> ShardHeader:
    return ShardHeader(header.segment_id, i, header.k, header.m, header.block_size, header.length,
                       header.created_ns, header.appliance_id, dict(header.identity))
