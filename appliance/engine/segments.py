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

Encryption (crypto.py): a write given a SegmentKey seals each block (block_size - 16 plaintext
bytes) before it is erasure-coded; a read given the data key opens the blocks it touches. A
block that fails authentication although its chunks passed their CRCs was altered on a disk:
the other shards are read and combinations of k chunks are decoded until one authenticates, and
the chunks that differ from it are reported as damage like a CRC failure (the healer rebuilds
them). If no combination authenticates the read fails (DataIntegrityError): unauthenticated
bytes are never returned.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import functools
import hashlib
import itertools
import os
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from diskmgr.durable import fsync_dir

from . import codec, entropy, fssync
from .budget import ByteBudget
from .cachedopen import open_cached
from .codec import Geometry
from .crypto import TAG, SegmentCipher, SegmentKey
from .disks import Disk, DiskSet
from .errors import DataIntegrityError, EncryptionKeyRequired, FormatError, InsufficientShards, InsufficientStorage
from .placement import choose
from .records import SegmentRecord
from .shardfile import (
    HEADER_SIZE,
    ShardHeader,
    ShardWriter,
    batch_bytes,
    block_count,
    block_len,
    chunk_parts,
    file_owner,
    read_chunk_views,
    read_header,
    write_whole,
)
from .volumes import (
    VOLUME_BYTES,
    Append,
    VolumeWriter,
    check_volume_head,
    mark_dead,
    owner_of,
    read_record_header,
    record_heads,
    volume_path,
)

# what large writes and large reads may hold in flight, all of them together (budget.py); the
# defaults of config [memory] write_buffer_bytes and read_buffer_bytes
WRITE_BUFFER_BYTES = 64 << 20
READ_BUFFER_BYTES = 128 << 20
READ_BATCH_BYTES = 8 << 20  # data bytes fetched per batch (per read, ~1.5x this in flight)
CHANNEL_DEPTH = 4  # encoded blocks buffered per shard writer
# Blocks buffered before the MD5 and the encoding stage of a write; each stage takes whatever is
# queued (up to this many) in one worker-thread call. At one block per call the GIL hand-offs of
# a large write's thread hops (futex waits and wake-ups) were ~20% of its CPU (perf); a stream
# holds up to ~7 MiB more for it (queued blocks and one encoded batch).
STAGE_DEPTH = 4
# A one-block body this small is hashed, sealed and encoded in the loop (~0.6 ms at 256 KiB: MD5
# 0.34, zfec 0.22, AES-GCM 0.03). A worker thread's round trip on a busy loop took ~9 ms of a 256 KiB
# PUT's ~50 (threads wait for the GIL and for a core); a larger body blocks the loop too long for it.
INLINE_WHOLE_BYTES = 256 << 10
# hashlib releases the GIL for an update of 2 KiB or more, and on the loop under load each release
# waited ~40 us for its return (a 4 KiB MD5 takes 6); bodies this small are hashed in pieces below it
HELD_MD5_BYTES = 16 << 10
_MD5_PIECE = 2047
INLINE_OPEN_BYTES = 512 << 10  # batches this small are decrypted in the loop (a thread hop costs more;
# 256 KiB objects with their tags included: A/B 256 KiB GET 988 -> 1,384/s)
MAX_COMBINATIONS = 256  # k-chunk combinations tried for a block that fails authentication
CIPHER_CACHE = 1024  # segment ciphers kept for reads
BUFFER_POOL = 24  # block buffers kept for assembling encrypted reads (one per batch being opened)
MAX_POOLED_BUFFER = 16 << 20
# Buffers shard batches are read into, kept for reuse (~2 MiB each at 4+2): a fresh buffer per
# read cost ~16,000 page faults per 64 MiB GET. A stream holds 2k of them (its batch and the next).
READ_BUFFERS = 16
POOLED_READ_MIN = 256 << 10  # smaller reads allocate: pymalloc and small mallocs reuse memory anyway
# A data shard not read after this long is read around (hedged): the parity shards are read too
# and the block is decoded from the first k chunks in. A disk whose read was read around counts
# as slow until one of its reads completes: its shards are read around at once meanwhile.
HEDGE_SECONDS = 1.0
STALL_SECONDS = 10.0  # the default of config [stall] seconds
# one-block segments (encrypted or not) up to this size are packed into volume files (volumes.py);
# the default of config [volumes] pack_bytes (0: every shard is a file)
PACK_BYTES = 1 << 20
INLINE_READ_BYTES = PACK_BYTES + (64 << 10)  # a packed body of the default pack_bytes, tags and CRCs included,
# is read in the loop when the page cache has all of it (a 1 MiB copy blocks the loop ~0.2 ms)

DamageCallback = Callable[[str, list[int], str], None]
# A chunk as read: a view of the buffer its shard's batch was read into (copied once, into its block).
Chunk = memoryview
Chunks = dict[int, list[Chunk | None]]  # shard index -> the chunks of a batch's blocks (None: unreadable)


@dataclass
class BodySummary:
    size: int = 0
    md5: str = hashlib.md5(b"").hexdigest()  # of the plaintext: for Content-MD5 checks
    etag: str = ""  # what the version's ETag becomes: the MD5, or a keyed digest (crypto.py)

    def __post_init__(self) -> None:
        self.etag = self.etag or self.md5


class _Landed:
    """The shards whose writes have finished (success or failure), and the waiter's wake-up.
    The waiter is woken only when what it decides changes: the quorum's success (its stall
    deadline starts) and the last shard. Waking it at every landing cost a task step and a
    cancel scope per group of shards landing, ~3.5 per small PUT on the event loop."""

    def __init__(self, shards: list[_ShardState], quorum: int) -> None:
        self.shards = shards
        self.quorum = quorum
        self.done: set[int] = set()
        self.ok = 0  # shards landed with success (a disk, no failure)
        self.wake = trio.Event()
        self.over = False  # the wait has ended: a write landing now was given up on

    def finished(self, i: int) -> None:
        """Shard i's write is over; a failure is recorded on its state before this is called."""
        if i in self.done:
            return
        self.done.add(i)
        st = self.shards[i]
        if st.disk is not None and not st.failed:
            self.ok += 1
            if self.ok == self.quorum:
                self.wake.set()
        if len(self.done) == len(self.shards):
            self.wake.set()


@dataclass
class _ShardState:
    disk: Disk | None
    writer: ShardWriter | None = None
    failed: bool = False
    stalled: bool = False  # given up on while its disk still holds the operation: left alone
    error: str = ""
    sent: list[int] = field(default_factory=list)
    place: list[int] | None = None  # a packed shard's [volume, offset, data offset]


class _ReadAhead:
    """One shard read per data shard (a batch's chunks), running in plain worker threads.

    A read streams through an async generator, which cannot keep a task running across its
    yields; threads started with `trio.lowlevel.start_thread_soon` can, so the next batch is read
    from the disks while the consumer sends the current one. Each read holds a token of its
    disk's limiter, given back when it ends, as a `trio.to_thread` call would. A read that is
    never waited for (the stream was closed) just ends; its chunks are dropped.

    `then`, when given, runs in one more such thread once every read has landed whole (every
    chunk read and its CRC good), on the chunks by shard index; its result is `opened` (None
    when it raised, or did not run). An encrypted batch is decrypted this way while the one
    before it is still being sent: profiled on 4 concurrent 64 MiB GETs, the loop sat idle a
    third of the time while each stream decrypted a batch only after sending the previous one."""

    def __init__(self, disks: list[Disk], then: Callable[[Chunks], Any] | None = None) -> None:
        self.disks = disks
        self.results: list[list[Chunk | None] | None] = [None] * len(disks)  # None: not done or failed
        self.seconds = [0.0] * len(disks)
        self.done = trio.Event()
        self.opened: Any = None
        self._then = then
        self._left = len(disks)
        self._token = trio.lowlevel.current_trio_token()

    @classmethod
    def start(cls, jobs: list[tuple[Disk, Callable[[], list[Chunk | None]]]],
              then: Callable[[Chunks], Any] | None = None) -> _ReadAhead | None:
        ahead = cls([disk for disk, _ in jobs], then)
        taken: list[int] = []
        for i, (disk, _) in enumerate(jobs):
            try:
                disk.limiter.acquire_on_behalf_of_nowait((ahead, i))
            except trio.WouldBlock:  # the disk is busy: this batch is read when it is needed
                for j in taken:
                    jobs[j][0].limiter.release_on_behalf_of((ahead, j))
                return None
            taken.append(i)
        for i, (_, fn) in enumerate(jobs):
            trio.lowlevel.start_thread_soon(functools.partial(ahead._run, i, fn),
                                            functools.partial(ahead._deliver, ahead._finished, i))
        return ahead

    def _run(self, i: int, fn: Callable[[], list[Chunk | None]]) -> list[Chunk | None] | None:
        t0 = time.perf_counter()
        try:
            return fn()
        except OSError:
            return None  # read again by _fetch, which records the error
        finally:
            self.seconds[i] = time.perf_counter() - t0

    def _deliver(self, finished: Callable[..., None], *args: Any) -> None:  # in the worker thread
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(finished, *args)

    def _finished(self, i: int, result: Any) -> None:  # back in trio's thread
        self.disks[i].limiter.release_on_behalf_of((self, i))
        with contextlib.suppress(BaseException):  # _run catches OSError; anything else: not usable
            self.results[i] = result.unwrap()
        self._left -= 1
        if self._left:
            return
        got = {i: r for i, r in enumerate(self.results) if r is not None and all(c is not None for c in r)}
        if self._then is None or len(got) < len(self.results):
            self.done.set()
            return
        trio.lowlevel.start_thread_soon(functools.partial(self._then, got),
                                        functools.partial(self._deliver, self._then_finished))

    def _then_finished(self, result: Any) -> None:  # back in trio's thread
        with contextlib.suppress(BaseException):  # a failure leaves `opened` None: the reader opens it
            self.opened = result.unwrap()
        self.done.set()


async def gather(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run calls concurrently in a local nursery; results in call order."""
    if len(calls) == 1:  # a replicated small object reads one shard: no nursery for that
        return [await calls[0]()]
    results: list[Any] = [None] * len(calls)

    async def one(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
        results[i] = await fn()

    async with trio.open_nursery() as nursery:
        for i, fn in enumerate(calls):
            nursery.start_soon(one, i, fn)
    return results


async def with_last(blocks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bool]]:
    """(block, is it the last one): the final-block flag an encrypted block is sealed with."""
    held: bytes | None = None
    async for block in blocks:
        if held is not None:
            yield held, False
        held = block
    if held is not None:
        yield held, True


def _md5_hex(data: bytes) -> str:
    if len(data) > HELD_MD5_BYTES:
        return hashlib.md5(data).hexdigest()
    h = hashlib.md5()
    view = memoryview(data)
    for at in range(0, len(view), _MD5_PIECE):
        h.update(view[at:at + _MD5_PIECE])
    return h.hexdigest()


async def _collect(body: AsyncIterable[bytes | bytearray], limit: int) -> bytes | AsyncIterable[bytes | bytearray]:
    """The body as bytes when it is at most `limit` long; else an iterable of it all (what was
    read so far, then the rest), for the streaming path."""
    pieces: list[bytes] = []
    have = 0
    it = aiter(body)
    async for piece in it:
        pieces.append(bytes(piece))
        have += len(piece)
        if have > limit:
            return _chain(pieces, it)
    return b"".join(pieces)


async def _chain(head: list[bytes], rest: AsyncIterator[bytes | bytearray]) -> AsyncIterator[bytes | bytearray]:
    for piece in head:
        yield piece
    async for more in rest:
        yield more


async def iter_blocks(body: bytes | AsyncIterable[bytes | bytearray], block_size: int) -> AsyncIterator[bytes]:
    """Re-chunk a body into block_size pieces (the last may be shorter), each copied once: the
    pieces that make a block are joined, and a piece that straddles two blocks is cut as a view."""
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        for off in range(0, len(data), block_size):
            yield data[off : off + block_size]
        return
    pieces: list[bytes | memoryview] = []
    have = 0
    async for piece in body:
        if not piece:
            continue
        if not isinstance(piece, bytes):
            piece = bytes(piece)  # a snapshot: the body's producer may reuse its buffer
        view: bytes | memoryview = memoryview(piece) if have + len(piece) > block_size else piece
        while have + len(view) >= block_size:
            cut = block_size - have
            pieces.append(view[:cut])
            yield b"".join(pieces)
            view = view[cut:]
            pieces, have = [], 0
        if len(view):
            pieces.append(view)
            have += len(view)
    if have:
        yield b"".join(pieces)


class SegmentIO:
    def __init__(self, disks: DiskSet, appliance_id: str, on_damage: DamageCallback) -> None:
        self.disks = disks
        self.appliance_id = appliance_id
        self.on_damage = on_damage
        # small shard files made durable by a shared syncfs (fssync.py): True, False, or None
        # for disks that are filesystems of their own (a syncfs of a filesystem shared with
        # other software would flush its data too: there, each file is fsync'd)
        self.group_sync: bool | None = None
        # (data key, segment id) -> cipher: deriving a block key costs more than opening a small
        # object, and hot objects are read again and again
        self._cipher = functools.lru_cache(maxsize=CIPHER_CACHE)(SegmentCipher)
        # buffers encrypted blocks are assembled in (reused: a fresh one costs page faults)
        self._buffers: list[bytearray] = []
        self._read_buffers: list[bytearray] = []  # shard batches are read into these (_read_chunks)
        self.slow_disks: set[str] = set()  # disks with a read outstanding past HEDGE_SECONDS
        # disk id -> whether the loop may read its volumes (`_read_cached`); decided off the loop
        # by `_probe_cached_reads` at a disk's first threaded read of a packed shard
        self.cached_reads: dict[str, bool] = {}
        # a shard write unanswered this long, once the others make the quorum, is given up
        # (config [stall] seconds; docs/fault-matrix.md)
        self.stall_seconds = STALL_SECONDS
        self.write_budget = ByteBudget(WRITE_BUFFER_BYTES)
        self.read_budget = ByteBudget(READ_BUFFER_BYTES)
        self.pack_bytes = PACK_BYTES
        self.volume_bytes = VOLUME_BYTES
        self._volumes: dict[tuple[str, str], VolumeWriter] = {}  # (disk id, path) -> its appends
        # packed records that may have become dead space since the start (marked dead, or a
        # write given up): the compactor's pass is skipped while this has not moved (compact.py)
        self.dead_marks = 0
        # disk id -> the volume the last run appended to, whose unplaced records (writes a crash
        # cut off before their commit) are still to be marked dead (gc.sweep_unplaced_records)
        self.unswept: dict[str, int] = {}

    def volume_writer(self, disk: Disk) -> VolumeWriter:
        key = (disk.disk_id, str(disk.path))
        writer = self._volumes.get(key)
        if writer is None:
            writer = self._volumes[key] = VolumeWriter(str(disk.path), self.volume_bytes)
        return writer

    def current_volume(self, disk: Disk) -> int | None:
        """The volume a disk's packed shards are being appended to (the compactor leaves it)."""
        writer = self._volumes.get((disk.disk_id, str(disk.path)))
        return writer.current if writer is not None else None

    def close(self) -> None:
        for writer in self._volumes.values():
            writer.close()
        self._volumes.clear()

    # --- write ------------------------------------------------------------------------------

    async def write(
        self,
        body: bytes | AsyncIterable[bytes | bytearray],
        geo: Geometry,
        pool: list[Disk],
        identity: dict[str, Any],
        key: SegmentKey | None = None,
        size_hint: int | None = None,
        *,
        sealed: dict[str, Any] | None = None,
        named: Callable[[], dict[str, Any]] | None = None,
    ) -> tuple[SegmentRecord | None, BodySummary]:
        """Store a body as one new segment (None for an empty body), encrypted when given a key.
        Not yet committed. `size_hint`: the length the body announced (a streamed body that
        short is gathered and written whole; one that turns out longer is streamed). `sealed`:
        the body is another segment's stored blocks, already encrypted under this envelope (a
        re-encoding: transcode.py); they are stored as they are. `named`: what the sealed
        headers add to `identity`, asked once the body has ended (the mount's stream: which
        version it holds is known only when its file is committed)."""
        whole = geo.block_size - TAG  # a body this long fits one block, encrypted or not
        if sealed is None and isinstance(body, bytes | bytearray | memoryview) and not body and not (
                key is not None and key.opaque_etag):
            # nothing to store: what the streaming path below would answer, without its cipher,
            # header, channels and nursery (4% of the daemon's CPU in a mount's `tar -x`, whose
            # every creat stores an empty file)
            return None, BodySummary()
        if sealed is None:
            if (not isinstance(body, bytes | bytearray | memoryview) and size_hint is not None
                    and 0 < size_hint <= whole):
                body = await _collect(body, whole)
            if isinstance(body, bytes | bytearray | memoryview) and 0 < len(body) <= whole:
                return await self._write_whole(bytes(body), geo, pool, {**identity, **(named() if named else {})},
                                               key)
        segment_id = entropy.token_hex(16)
        md5 = hashlib.md5()
        created = time.time_ns()
        cipher = SegmentCipher(key.data_key, segment_id) if key is not None else None
        enc = dict(key.envelope) if key is not None else sealed
        header = ShardHeader(segment_id, 0, geo.k, geo.m, geo.block_size, 0, created, self.appliance_id,
                             dict(identity), enc)
        shards: list[_ShardState] = []
        sends: list[trio.MemorySendChannel[memoryview]] = []
        length = stored = 0
        flow = _Flow(self.write_budget, geo.n)

        # Three stages overlap, each in its own thread while the loop reads the next block: the
        # ETag's MD5 (sequential by nature), sealing + erasure coding, and the shard writers. MD5
        # and zfec (after AES-GCM, ~10x faster) take ~1.5-3 ms per MiB each and drop the GIL, so
        # they use both cores. Every channel is bounded: a stream holds a fixed number of blocks.
        hash_send, hash_recv = trio.open_memory_channel[bytes](STAGE_DEPTH)
        code_send, code_recv = trio.open_memory_channel[tuple[int, bytes, bool]](STAGE_DEPTH)

        def hash_all(blocks: list[bytes]) -> None:
            for block in blocks:
                md5.update(block)

        def seal_and_encode(items: list[tuple[int, bytes, bool]]) -> list[list[memoryview]]:
            return [codec.encode_block(geo, cipher.seal(index, block, final) if cipher is not None else block)
                    for index, block, final in items]

        async def hasher() -> None:
            async with hash_recv:
                async for block in hash_recv:
                    blocks = _with_queued(hash_recv, block, STAGE_DEPTH)
                    await trio.to_thread.run_sync(hash_all, blocks)
                    flow.hashed(len(blocks))

        async def coder() -> None:
            async with code_recv:
                async for item in code_recv:
                    batch = _with_queued(code_recv, item, STAGE_DEPTH)
                    for chunks in await trio.to_thread.run_sync(seal_and_encode, batch):
                        for i, send in enumerate(sends):
                            await send.send(chunks[i])
                        self._check_quorum(shards, geo)
            for send in sends:
                await send.aclose()

        plain_block = geo.block_size - (TAG if cipher is not None else 0)
        try:
            async with trio.open_nursery() as nursery, hash_send, code_send:
                index = 0
                async for block, final in with_last(iter_blocks(body, plain_block)):
                    if not shards:
                        placement = choose(pool, geo)
                        shards = [_ShardState(d) for d in placement]
                        for i, st in enumerate(shards):
                            send, recv = trio.open_memory_channel[memoryview](CHANNEL_DEPTH)
                            sends.append(send)
                            nursery.start_soon(self._shard_writer, i, st, header, recv, flow)
                        nursery.start_soon(hasher)
                        nursery.start_soon(coder)
                    # the block's share of the budget, given back once every stage is done with
                    # it: its encoded size (n/k of it), what it holds as plain bytes before the
                    # coder and as chunks after
                    await flow.enter(len(block) * geo.n // geo.k)
                    await hash_send.send(block)
                    await code_send.send((index, block, final))
                    index += 1
                    length += len(block)
                    stored += len(block) + (TAG if cipher is not None else 0)
            digest = md5.hexdigest()
            etag = cipher.opaque_etag(digest) if cipher is not None and key is not None and key.opaque_etag else digest
            summary = BodySummary(length, digest, etag)
            if not shards:
                return None, summary
            self._check_quorum(shards, geo)
            # a re-encoding's body is stored blocks (ciphertext, when encrypted): the ETag and
            # size of the object it holds come with its identity (shardident.of_transcoded)
            identity = {"etag": summary.etag, "size": length, **identity, **(named() if named else {})}
            await self._seal(segment_id, shards, geo, header, stored, identity)
            self._check_quorum(shards, geo)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._discard(segment_id, shards)
            raise
        finally:
            flow.close()
        return _record(segment_id, geo, stored, shards, created, pool, enc), summary

    async def _write_whole(self, data: bytes, geo: Geometry, pool: list[Disk], identity: dict[str, Any],
                           key: SegmentKey | None) -> tuple[SegmentRecord, BodySummary]:
        """A body of one block, at hand in memory (small PUTs): hashed and encoded at once, and
        each shard file written complete in one worker-thread call (shardfile.write_whole)
        rather than streamed through the writer tasks, whose thread hops cost more than the
        write itself. The same files, checks and failure handling as the streaming path."""
        segment_id = entropy.token_hex(16)
        created = time.time_ns()
        cipher = SegmentCipher(key.data_key, segment_id) if key is not None else None
        enc = dict(key.envelope) if key is not None else None

        def hash_and_encode() -> tuple[str, list[memoryview]]:
            sealed = cipher.seal(0, data, True) if cipher is not None else data
            return _md5_hex(data), codec.encode_block(geo, sealed)

        if len(data) <= INLINE_WHOLE_BYTES:
            digest, chunks = hash_and_encode()
        else:
            digest, chunks = await trio.to_thread.run_sync(hash_and_encode)
        etag = cipher.opaque_etag(digest) if cipher is not None and key is not None and key.opaque_etag else digest
        summary = BodySummary(len(data), digest, etag)
        stored = len(data) + (TAG if cipher is not None else 0)
        header = ShardHeader(segment_id, 0, geo.k, geo.m, geo.block_size, stored, created, self.appliance_id,
                             dict(identity, etag=etag, size=len(data)), enc)
        shards = [_ShardState(d) for d in choose(pool, geo)]
        packed = 0 < stored <= self.pack_bytes

        async def write_one(i: int, st: _ShardState) -> None:
            disk = st.disk
            if disk is None:
                return
            t0 = time.perf_counter()

            def work() -> None:  # all of it in the thread: a stalled disk holds even its stat
                grouped = self.group_sync if self.group_sync is not None else disk.group_syncable
                group = fssync.for_path(str(disk.path)).sync_after if grouped else None
                write_whole(disk.tmp_path(segment_id, i), disk.shard_path(segment_id, i), _with_shard(header, i),
                            [chunks[i]], group)

            try:
                # not under the disk's limiter: a few KiB, and the thread mostly waits for the
                # group sync, which the more writers join the better
                await trio.to_thread.run_sync(work, abandon_on_cancel=True)
            except OSError as exc:
                self._fail(st, disk, exc)
                return
            disk.counters.wrote(time.perf_counter() - t0, len(chunks[i]))

        try:
            if packed:
                await self._append_packed(shards, geo, header, chunks)
            else:
                await self._quorum_or_stall(shards, geo, write_one)
            self._check_quorum(shards, geo)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._discard(segment_id, shards)
            raise
        if packed and any(st.failed or st.stalled for st in shards):
            self.dead_marks += 1  # a record given up on, or a volume left after a failed append
        return _record(segment_id, geo, stored, shards, created, pool, enc), summary

    async def _quorum_or_stall(self, shards: list[_ShardState], geo: Geometry,
                               job: Callable[[int, _ShardState], Awaitable[None]]) -> None:
        """`job` for every shard side by side, until `_await_quorum` is satisfied; the jobs of
        shards given up on are cancelled (their disk is left holding the abandoned thread)."""
        q = _Landed(shards, geo.quorum)

        async def run(i: int, st: _ShardState) -> None:
            await job(i, st)
            q.finished(i)

        async with trio.open_nursery() as nursery:
            for i, st in enumerate(shards):
                nursery.start_soon(run, i, st)
            await self._await_quorum(shards, geo, q)
            nursery.cancel_scope.cancel()

    async def _append_packed(self, shards: list[_ShardState], geo: Geometry, header: ShardHeader,
                             chunks: list[memoryview]) -> None:
        """_write_whole's packed shards: each record queued on its disk's volume writer at once,
        its outcome noted by the writer's callback, then the same wait as _quorum_or_stall. No
        task per shard: a nursery and its three tasks were ~7% of a 4 KiB PUT's loop time."""
        q = _Landed(shards, geo.quorum)
        heads = record_heads(header, len(shards))
        writers: list[VolumeWriter] = []
        try:
            for i, st in enumerate(shards):
                self._submit_packed(q, i, st, heads[i], chunks, writers)
            if any(w.idle_with_queue for w in writers):
                # Queued, not yet written: the other small PUTs of this turn of the event loop
                # queue theirs meanwhile, and one group per disk carries them all. A group is a
                # worker-thread call, ~10 context switches (GIL hand-offs among them); launched
                # at once, the first PUT of a burst went alone: 4 KiB PUTs at 16 connections
                # 33 -> 26 context switches each, +8% PUT/s.
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            for w in writers:
                w.launch_if_idle()
        try:
            await self._await_quorum(shards, geo, q)
        finally:
            q.over = True

    def _submit_packed(self, q: _Landed, i: int, st: _ShardState, head: list[bytes | memoryview],
                       chunks: list[memoryview], writers: list[VolumeWriter]) -> None:
        """Queue shard i's record on its disk's volume writer (not launched: `writers` gets the
        writer); its outcome goes to `q` and `st`."""
        if st.disk is None:
            q.finished(i)
            return
        disk = st.disk
        parts = [*head, *chunk_parts([chunks[i]])]
        head_bytes, t0 = len(parts[0]) + len(parts[1]), time.perf_counter()

        def landed(job: Append) -> None:
            if q.over:
                return  # given up on (stalled, or the write was cancelled): dead space
            if job.error is not None:
                self._fail(st, disk, job.error)
            elif job.place is not None:
                volume, offset = job.place
                st.place = [volume, offset, offset + head_bytes]  # where its data begins
                disk.counters.wrote(time.perf_counter() - t0, len(chunks[i]))
            q.finished(i)

        writer = self.volume_writer(disk)
        writer.submit(parts, landed, launch=False)
        writers.append(writer)

    async def _await_quorum(self, shards: list[_ShardState], geo: Geometry, q: _Landed) -> None:
        """Until every shard's write has landed, or, once `quorum` of them succeeded, stall_seconds
        more; those still unanswered then are given up as stalled: the write goes on without them
        (never below the quorum, which _check_quorum enforces) and their shards are recorded
        damaged for the healer."""
        deadline = float("inf")
        while len(q.done) < len(shards):
            if q.ok >= q.quorum and deadline == float("inf"):
                deadline = trio.current_time() + self.stall_seconds
            if deadline == float("inf"):
                await q.wake.wait()  # no deadline yet: no cancel scope either
            else:
                with trio.move_on_at(deadline):
                    await q.wake.wait()
            q.wake = trio.Event()
            if trio.current_time() >= deadline:
                break
        q.over = True
        for i, st in enumerate(shards):
            if i not in q.done and st.disk is not None:
                self._stalled(st, st.disk)

    def _stalled(self, st: _ShardState, disk: Disk) -> None:
        st.failed = st.stalled = True
        st.error = f"{disk.disk_id}: no answer within {self.stall_seconds:g} s (stalled)"
        disk.record_error()

    @staticmethod
    def _check_quorum(shards: list[_ShardState], geo: Geometry) -> None:
        healthy = sum(1 for st in shards if st.disk and not st.failed)
        if healthy < geo.quorum:
            errors = "; ".join(sorted({st.error for st in shards if st.error})) or "no disks"
            raise InsufficientStorage(
                f"only {healthy} of {geo.n} shards could be written (need {geo.quorum}): {errors}"
            )

    async def _shard_writer(
        self, i: int, st: _ShardState, header: ShardHeader, recv: trio.MemoryReceiveChannel[memoryview],
        flow: _Flow,
    ) -> None:
        disk = st.disk
        async with recv:
            if disk is None:
                async for _ in recv:
                    flow.wrote(i, 1)
                return
            hdr = _with_shard(header, i)
            try:
                with trio.move_on_after(self.stall_seconds):
                    st.writer = await trio.to_thread.run_sync(
                        ShardWriter, disk.tmp_path(header.segment_id, i), hdr, limiter=disk.limiter,
                        abandon_on_cancel=True)
                if st.writer is None:
                    self._stalled(st, disk)  # the other shards' writers must not wait for it
            except OSError as exc:
                self._fail(st, disk, exc)
            async for chunk in recv:
                if st.failed or st.writer is None:
                    flow.wrote(i, 1)
                    continue
                chunks = _with_queued(recv, chunk, CHANNEL_DEPTH)  # what else is queued: the same write
                t0 = time.perf_counter()
                try:
                    with trio.move_on_after(self.stall_seconds) as waited:
                        await trio.to_thread.run_sync(st.writer.append, *chunks, limiter=disk.limiter,
                                                      abandon_on_cancel=True)
                    if waited.cancelled_caught:
                        self._stalled(st, disk)
                        continue
                except OSError as exc:
                    self._fail(st, disk, exc)
                    await trio.to_thread.run_sync(st.writer.discard)
                    continue
                finally:
                    # done with, for the budget, even when given up on (a stalled disk's thread
                    # may hold these chunks a while): the write must not wait for that disk
                    flow.wrote(i, len(chunks))
                disk.counters.wrote(time.perf_counter() - t0, sum(len(c) for c in chunks))

    @staticmethod
    def _fail(st: _ShardState, disk: Disk, exc: OSError) -> None:
        st.failed = True
        st.error = f"{disk.disk_id}: {exc.strerror or exc}"
        disk.record_write_error(exc)

    async def _seal(
        self, segment_id: str, shards: list[_ShardState], geo: Geometry, header: ShardHeader, length: int,
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
                await trio.to_thread.run_sync(work, limiter=disk.limiter, abandon_on_cancel=True)
            except OSError as exc:
                self._fail(st, disk, exc)
                await trio.to_thread.run_sync(writer.discard)

        await self._quorum_or_stall(shards, geo, seal_one)

    async def _discard(self, segment_id: str, shards: list[_ShardState]) -> None:
        """Remove every file of an uncommitted segment (temporary or sealed)."""
        for i, st in enumerate(shards):
            if st.disk is None or st.stalled:  # a stalled disk's tmp file goes at the next start
                continue
            disk, writer, place = st.disk, st.writer, st.place

            def work(disk: Disk = disk, writer: ShardWriter | None = writer, i: int = i,
                     place: list[int] | None = place) -> None:
                if writer is not None:
                    writer.discard()
                with contextlib.suppress(OSError):
                    if place is not None:
                        mark_dead(volume_path(disk.path, place[0]), place[1])
                    else:
                        os.unlink(disk.shard_path(segment_id, i))

            await trio.to_thread.run_sync(work, limiter=disk.limiter)
        self.dead_marks += 1  # its records, or what a failed append left in a volume

    async def delete(self, rec: SegmentRecord) -> None:
        """Remove the shard files of a segment (GC of an unreferenced segment); a packed shard's
        record is marked dead, its space left to the compactor."""
        for i, disk_id in enumerate(rec.shards):
            disk = self.disks.get(disk_id)
            if disk is None:
                continue
            place = rec.pack_of(i)
            path = disk.shard_path(rec.segment_id, i) if place is None else volume_path(disk.path, place[0])

            def work(path: str = path, place: list[int] | None = place) -> None:
                if place is not None:
                    mark_dead(path, place[1])
                    return
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

            try:
                await trio.to_thread.run_sync(work, limiter=disk.limiter)
            except OSError:
                disk.record_error()
            self.dead_marks += place is not None

    # --- read -------------------------------------------------------------------------------

    async def read(self, rec: SegmentRecord, start: int, end: int,
                   data_key: bytes | None = None) -> AsyncGenerator[bytes | bytearray, None]:
        """Content bytes [start, end) of the segment, verified (and decrypted: an encrypted
        segment needs its data key); decodes around damaged chunks."""
        if start >= end:
            return
        geo = Geometry(rec.k, rec.m, rec.block_size)
        cipher: SegmentCipher | None = None
        if rec.enc is not None:
            if data_key is None:
                raise EncryptionKeyRequired(f"segment {rec.segment_id} is encrypted and no key was given")
            cipher = self._cipher(data_key, rec.cipher_id or rec.segment_id)
        step = geo.block_size - (TAG if cipher is not None else 0)  # content bytes per block
        first, last = start // step, (end - 1) // step
        per_batch = max(1, READ_BATCH_BYTES // geo.block_size)
        budget = self.read_budget

        def cost(b0: int, b1: int) -> int:
            # a batch as read, and half again for its blocks joined or decrypted: a stream holds
            # about three batches' bytes at a time (the batch read ahead, the batch being sent,
            # and one of them as read until it is joined or decrypted)
            return 3 * geo.k * batch_bytes(geo, rec.length, b0, b1) // 2

        # A batch of more than one block takes its share of the read budget (budget.py): with
        # too little free, a batch of half as many blocks, and so on down to one block (a few
        # MiB outside the budget). A whole next batch is read ahead only while a share stays
        # free after it, so that another stream's batch comes before this one's read-ahead.
        # Never waited for: a reader holds its share while its client takes the batch, and a
        # slow client must not stall the others.
        held = ahead_held = 0
        ahead: _ReadAhead | None = None  # the read-ahead of blocks b0..ahead_last
        ahead_last = 0
        b0 = first
        try:
            while b0 <= last:
                if ahead is not None:
                    b1, held, ahead_held = ahead_last, ahead_held, 0
                else:
                    size = per_batch
                    while True:
                        b1 = min(last, b0 + size - 1)
                        if b1 == b0 or (held := budget.try_take(cost(b0, b1))):
                            break
                        size //= 2
                got = self._read_cached(rec, geo, b0, b1) if (b0, b1) == (first, last) else None
                opened: list[bytes | bytearray | None] | None = None
                if got is not None:
                    # read without waiting: still a checkpoint, or a task that reads in a loop
                    # would never let another run (trio schedules only at checkpoints)
                    await trio.lowlevel.checkpoint()
                elif ahead is not None:
                    got = await self._take_ahead(ahead, rec, b1 - b0 + 1)
                    opened = ahead.opened if got is not None else None
                if got is None:
                    got = await self._fetch(rec, geo, b0, b1)
                # the next batch is read (and decrypted) while this one is assembled and consumed
                ahead = None
                if b1 < last:
                    ahead_last = min(last, b1 + per_batch)
                    share = cost(b1 + 1, ahead_last)
                    ahead_held = budget.try_take(share, spare=share)
                    if ahead_held:
                        ahead = self._read_ahead(rec, geo, b1 + 1, ahead_last, cipher)
                        if ahead is None:
                            budget.give(ahead_held)
                            ahead_held = 0
                blocks: Sequence[bytes | bytearray]
                if cipher is None:
                    blocks = await self._assemble(rec, geo, b0, got)
                else:
                    blocks = await self._open_blocks(rec, geo, b0, got, cipher, opened)
                self._recycle(got)
                for piece in _pieces(blocks, b0, step, start, end):
                    yield piece
                del blocks
                budget.give(held)
                held = 0
                b0 = b1 + 1
        finally:
            budget.give(held + ahead_held)

    def _read_cached(self, rec: SegmentRecord, geo: Geometry, b0: int, b1: int) -> Chunks | None:
        """The data chunks of a small packed batch read on the event loop, or None: then read in
        worker threads (`_fetch`). Profiled on a 4 KiB GET, the k thread hops, their nursery and
        channel cost more than the reads: a pread the page cache answers takes microseconds.
        Only when the cache holds every byte (RWF_NOWAIT: a read that would wait for a disk
        fails instead of blocking the loop), opened from the dentry cache alone (cachedopen.py:
        a path not cached fails too, so a stalled disk cannot stop the loop), volume files only
        (their few names stay cached); never on a FUSE filesystem, whose open waits for a
        userspace server (`_probe_cached_reads`). Damage, a missing disk or a slow
        one takes the threaded path, which reads again, hedges and reports."""
        if batch_bytes(geo, rec.length, b0, b1) * geo.k > INLINE_READ_BYTES:
            return None
        disks: list[Disk] = []
        for i in range(geo.k):
            disk = self.disks.get(rec.shards[i])
            if (rec.pack_of(i) is None or disk is None or not disk.readable or disk.disk_id in self.slow_disks
                    or self.cached_reads.get(disk.disk_id) is not True):
                return None
            disks.append(disk)
        got: Chunks = {}
        for i, disk in enumerate(disks):
            path, data_start, owner = shard_location(disk, rec, i)
            try:
                chunks: list[Chunk | None] = list(read_chunk_views(
                    path, geo, rec.length, b0, b1, None, data_start, owner, cached_only=True))
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    self.cached_reads[disk.disk_id] = False
                return None
            if any(c is None for c in chunks):
                return None
            got[i] = chunks
        for disk in disks:
            disk.counters.reads += 1
        return got

    def _probe_cached_reads(self, disk_id: str, volume: str) -> None:
        """Whether the loop may read the volumes of this disk (in a worker thread: the answer
        must not cost the loop a wait): not on FUSE, and only where the filesystem answers
        RWF_NOWAIT reads (tmpfs refuses them). Undecided when the disk cannot be asked now."""
        fuse = fssync.is_fuse(volume)
        if fuse is None:
            return
        ok = not fuse
        if ok:
            try:
                fd = open_cached(volume)
            except BlockingIOError:
                return  # evicted meanwhile: ask again at the next threaded read
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    return
                fd, ok = -1, False  # no openat2 with RESOLVE_CACHED (Linux < 5.12)
            if fd >= 0:
                try:
                    os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
                except BlockingIOError:
                    pass  # supported; that byte is just not cached
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        return
                    ok = False
                finally:
                    os.close(fd)
        self.cached_reads[disk_id] = ok  # one store: atomic for the loop that reads it

    def _read_ahead(self, rec: SegmentRecord, geo: Geometry, b0: int, b1: int,
                    cipher: SegmentCipher | None) -> _ReadAhead | None:
        """Start reading the data shards' chunks of blocks b0..b1 in worker threads, each under
        a token of its disk's limiter, and decrypting them (a cipher, a batch too large to open
        in the loop) once read; None (the batch is fetched when needed) when a data shard's disk
        is missing, unreadable, slow or has no token free."""
        jobs: list[tuple[Disk, Callable[[], list[Chunk | None]]]] = []
        for i in range(geo.k):
            disk = self.disks.get(rec.shards[i])
            if disk is None or not disk.readable or disk.disk_id in self.slow_disks:
                return None
            jobs.append((disk, functools.partial(self._read_chunks, *shard_location(disk, rec, i), geo,
                                                 rec.length, b0, b1)))
        then = None
        if cipher is not None:
            blens = [block_len(rec.length, geo.block_size, b) for b in range(b0, b1 + 1)]
            if sum(blens) > INLINE_OPEN_BYTES:
                then = functools.partial(self._open_batch, rec, geo, b0, cipher, _plaintext_buffers(blens))
        return _ReadAhead.start(jobs, then)

    async def _take_ahead(self, ahead: _ReadAhead, rec: SegmentRecord, blocks: int) -> Chunks | None:
        """The chunks read ahead, or None when the batch must be fetched with `_fetch` instead:
        a read failed, a chunk failed its CRC (`_fetch` reads it again, reads around it and
        reports the damage) or a read is slow (its disk is then read around at once)."""
        with trio.move_on_after(HEDGE_SECONDS):
            await ahead.done.wait()
        if not ahead.done.is_set():
            self.slow_disks.update(d.disk_id for d, r in zip(ahead.disks, ahead.results, strict=True) if r is None)
            return None
        got: Chunks = {}
        for i, (disk, chunks, seconds) in enumerate(zip(ahead.disks, ahead.results, ahead.seconds, strict=True)):
            if chunks is None or len(chunks) != blocks or any(c is None for c in chunks):
                return None
            self.slow_disks.discard(disk.disk_id)
            disk.counters.observe(seconds)
            disk.counters.reads += 1
            got[i] = chunks
        return got

    async def _read_shard(self, rec: SegmentRecord, geo: Geometry, i: int, b0: int, b1: int) -> list[Chunk | None]:
        disk = self.disks.get(rec.shards[i])
        n = b1 - b0 + 1
        if disk is None or not disk.readable:
            return [None] * n
        path, data_start, owner = shard_location(disk, rec, i)
        probe = owner is not None and disk.disk_id not in self.cached_reads

        def work() -> list[Chunk | None]:
            chunks = self._read_chunks(path, data_start, owner, geo, rec.length, b0, b1)
            if probe:
                self._probe_cached_reads(disk.disk_id, path)
            return chunks

        t0 = time.perf_counter()
        try:
            # abandoned when a hedged read no longer needs it (a stalled disk may hold it for long)
            chunks = await trio.to_thread.run_sync(work, limiter=disk.limiter, abandon_on_cancel=True)
        except OSError:
            self.slow_disks.discard(disk.disk_id)
            disk.record_error()
            return [None] * n
        self.slow_disks.discard(disk.disk_id)
        disk.counters.observe(time.perf_counter() - t0)
        disk.counters.reads += 1
        bad = sum(1 for c in chunks if c is None)
        if bad:
            disk.counters.checksum_failures += bad
        if len(chunks) < n:  # truncated file: the missing tail is damage too
            chunks += [None] * (n - len(chunks))
        return chunks

    async def _read_parity(self, rec: SegmentRecord, geo: Geometry, b0: int, b1: int, got: Chunks) -> None:
        extra = [i for i in range(geo.k, geo.n) if i not in got]
        results = await gather(*[(lambda i=i: self._read_shard(rec, geo, i, b0, b1)) for i in extra])
        got.update(zip(extra, results, strict=True))

    async def _fetch(self, rec: SegmentRecord, geo: Geometry, b0: int, b1: int) -> Chunks:
        """The chunks of blocks b0..b1: the data shards', and the parity shards' too when a data
        chunk is missing or damaged (the damage is reported) or a data shard is slow to come
        (hedged: then the first k chunks of each block do, and the slow reads are abandoned)."""
        got: Chunks = {}
        send, recv = trio.open_memory_channel[tuple[int, list[Chunk | None]]](geo.n)
        launched: set[int] = set()

        async def one(i: int) -> None:
            send.send_nowait((i, await self._read_shard(rec, geo, i, b0, b1)))

        async with trio.open_nursery() as nursery:

            def launch(indices: range) -> None:
                for i in indices:
                    if i not in launched:
                        launched.add(i)
                        nursery.start_soon(one, i)

            launch(range(geo.k))
            slow = any(rec.shards[i] in self.slow_disks for i in range(geo.k))
            if slow:
                launch(range(geo.k, geo.n))
            deadline = trio.current_time() + HEDGE_SECONDS
            while len(got) < len(launched):
                if slow and _enough(got, geo.k, b1 - b0 + 1):
                    break
                with trio.move_on_at(deadline if not slow else float("inf")) as waited:
                    i, chunks = await recv.receive()
                if waited.cancelled_caught:  # a data shard is slow: read around it
                    slow = True
                    self.slow_disks.update(d for j in launched - set(got) if (d := rec.shards[j]) is not None)
                    launch(range(geo.k, geo.n))
                    continue
                got[i] = chunks
                if any(c is None for c in chunks):
                    launch(range(geo.k, geo.n))
            nursery.cancel_scope.cancel()
        damaged = sorted(i for i, chunks in got.items() if any(c is None for c in chunks))
        if damaged:
            self.on_damage(rec.segment_id, damaged, "read")
        for j in range(b1 - b0 + 1):
            avail = sum(1 for chunks in got.values() if chunks[j] is not None)
            if avail < geo.k:
                raise InsufficientShards(
                    f"segment {rec.segment_id} block {b0 + j}: {avail} of {geo.k} needed chunks "
                    f"readable (k={geo.k}, m={geo.m})"
                )
        return got

    async def _read_blocks(self, rec: SegmentRecord, geo: Geometry, b0: int, b1: int) -> list[bytes]:
        """Stored blocks b0..b1: data chunks concatenated, decoded around damage."""
        got = await self._fetch(rec, geo, b0, b1)
        blocks = await self._assemble(rec, geo, b0, got)
        self._recycle(got)
        return blocks

    @staticmethod
    async def _assemble(rec: SegmentRecord, geo: Geometry, b0: int, got: Chunks) -> list[bytes]:
        """The stored blocks of a fetched batch: data chunks concatenated, decoded around damage.
        The join stays on the event loop: a block joined in a worker thread is allocated in that
        thread's malloc arena and freed by the loop, which made twice the page faults."""
        out: list[bytes] = []
        for j in range(len(next(iter(got.values())))):
            blen = block_len(rec.length, geo.block_size, b0 + j)
            avail = _available(got, j)
            if all(i in avail for i in range(geo.k)):
                out.append(_join(avail, geo.k, blen))
            else:
                out.append(await trio.to_thread.run_sync(codec.decode_block, geo, avail, blen))
        return out

    def _open_batch(self, rec: SegmentRecord, geo: Geometry, b0: int, cipher: SegmentCipher,
                    plain: list[bytearray] | None, got: Chunks) -> list[bytes | bytearray | None]:
        """A batch's blocks decrypted (None: a block that failed authentication). A large batch
        is decrypted into the buffers (`plain`) the stream then yields as they are, straight
        from the chunks as read (no copy joining them first); a small one (in the loop) is
        joined in a reused buffer and decrypted into bytes."""
        last = block_count(rec.length, geo.block_size) - 1
        blens = [block_len(rec.length, geo.block_size, b0 + j) for j in range(len(next(iter(got.values()))))]
        out: list[bytes | bytearray | None] = []
        # the joined path's buffer: the chunks with their padding
        buf = self._take_buffer(geo.chunk_size(max(blens)) * geo.k) if plain is None else None
        view = memoryview(buf) if buf is not None else None
        try:
            for j, blen in enumerate(blens):
                index = b0 + j
                avail = _available(got, j)
                if not all(i in avail for i in range(geo.k)):
                    out.append(cipher.open(index, codec.decode_block(geo, avail, blen), index == last))
                elif plain is not None:
                    # a cipher per block costs ~15 us more than AESGCM's one call: worth it for the
                    # large blocks of a large batch only (no join, no zero-fill)
                    dst = plain[j]
                    opened = cipher.open_parts_into(index, _parts(avail, geo.k, blen), index == last, memoryview(dst))
                    out.append(dst if opened else None)
                else:
                    assert view is not None
                    pos = 0
                    for i in range(geo.k):
                        chunk = avail[i]
                        view[pos:pos + len(chunk)] = chunk
                        pos += len(chunk)
                    out.append(cipher.open(index, view[:blen], index == last))
            return out
        finally:
            if view is not None:
                view.release()
            if buf is not None:
                self._give_back(buf)

    async def _open_blocks(self, rec: SegmentRecord, geo: Geometry, b0: int, got: Chunks,
                           cipher: SegmentCipher, opened: list[bytes | bytearray | None] | None = None,
                           ) -> list[bytes | bytearray]:
        """Decrypt a batch (unless it was, while read ahead: `opened`); a block that fails
        authentication is rebuilt from chunks that do."""
        last = block_count(rec.length, geo.block_size) - 1
        blens = [block_len(rec.length, geo.block_size, b0 + j) for j in range(len(next(iter(got.values()))))]
        if opened is None or len(opened) != len(blens):
            if sum(blens) <= INLINE_OPEN_BYTES:
                opened = self._open_batch(rec, geo, b0, cipher, None, got)
            else:
                opened = await trio.to_thread.run_sync(
                    self._open_batch, rec, geo, b0, cipher, _plaintext_buffers(blens), got)
        if all(p is not None for p in opened):
            return [p for p in opened if p is not None]
        await self._read_parity(rec, geo, b0, b0 + len(blens) - 1, got)
        out: list[bytes | bytearray] = []
        tampered: set[int] = set()
        for j, plain in enumerate(opened):
            if plain is not None:
                out.append(plain)
                continue
            index = b0 + j
            rebuilt, bad = await trio.to_thread.run_sync(
                authentic_block, geo, _available(got, j), block_len(rec.length, geo.block_size, index),
                cipher, index, index == last)
            out.append(rebuilt)
            tampered |= bad
        for i in tampered:
            disk = self.disks.get(rec.shards[i])
            if disk is not None:
                disk.counters.checksum_failures += 1
        if tampered:
            self.on_damage(rec.segment_id, sorted(tampered), "authentication failed")
        return out

    def _read_chunks(self, path: str, data_start: int, owner: tuple[int, bytes] | None, geo: Geometry,
                     length: int, b0: int, b1: int) -> list[Chunk | None]:
        """read_chunk_views into a pooled buffer (in a worker thread). The buffer goes back to
        the pool only through `_recycle`, once the batch's blocks are assembled: a read given up
        on (hedged, or a stream closed mid-read) may still be writing into its buffer, which is
        then never reused."""
        size = batch_bytes(geo, length, b0, b1)
        buf: bytearray | None = None
        if size >= POOLED_READ_MIN:
            with contextlib.suppress(IndexError):
                buf = self._read_buffers.pop()  # atomic: one pool for every thread
        if buf is not None and len(buf) < size:
            buf = None
        return read_chunk_views(path, geo, length, b0, b1, buf, data_start, owner)

    def _recycle(self, got: Chunks) -> None:
        """Give a batch's read buffers back to the pool: its blocks are assembled (copied out,
        decoded or decrypted into buffers of their own) and its chunks are not used again."""
        for chunks in got.values():
            view = next((c for c in chunks if c is not None), None)
            buf = None if view is None else view.obj
            if isinstance(buf, bytearray) and len(buf) >= POOLED_READ_MIN and len(self._read_buffers) < READ_BUFFERS:
                self._read_buffers.append(buf)

    def _take_buffer(self, size: int) -> bytearray:
        try:
            buf = self._buffers.pop()  # atomic: reads decrypt in several threads
        except IndexError:
            return bytearray(size)
        return buf if len(buf) >= size else bytearray(size)

    def _give_back(self, buf: bytearray) -> None:
        if len(self._buffers) < BUFFER_POOL and len(buf) <= MAX_POOLED_BUFFER:
            self._buffers.append(buf)

    async def read_stored(self, rec: SegmentRecord) -> AsyncIterator[bytes]:
        """The segment's stored blocks in order, CRC-verified and decoded around damage, but
        never decrypted: what a re-encoding into another geometry copies (transcode.py)."""
        geo = Geometry(rec.k, rec.m, rec.block_size)
        count = block_count(rec.length, rec.block_size)
        per_batch = max(1, READ_BATCH_BYTES // rec.block_size)
        for b0 in range(0, count, per_batch):
            for block in await self._read_blocks(rec, geo, b0, min(count - 1, b0 + per_batch - 1)):
                yield block

    async def read_all_chunks(self, rec: SegmentRecord, b0: int, b1: int) -> dict[int, list[bytes | None]]:
        """Every shard's chunks for blocks b0..b1 (for the scrubber/healer)."""
        geo = Geometry(rec.k, rec.m, rec.block_size)
        idx = list(range(geo.n))
        results = await gather(*[(lambda i=i: self._read_shard(rec, geo, i, b0, b1)) for i in idx])
        return {i: [None if c is None else bytes(c) for c in chunks] for i, chunks in zip(idx, results, strict=True)}

    def block_count(self, rec: SegmentRecord) -> int:
        return block_count(rec.length, rec.block_size)


def _plaintext_buffers(blens: list[int]) -> list[bytearray]:
    """Buffers a large batch is decrypted into, each its block's plaintext size, made on the
    loop (a block allocated in a worker thread and freed by the loop comes from another malloc
    arena): the daemon's malloc settings (malloctune.py) keep freed blocks for reuse, so they cost
    no page faults. Left uninitialised: every byte is written by the decryption, and a block
    that fails it is zeroed and dropped (zero-filling them was ~3% of a large GET's CPU)."""
    return [_uninitialised(blen - TAG) for blen in blens]


_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
_new_bytearray.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
_new_bytearray.restype = ctypes.py_object


def _uninitialised(size: int) -> bytearray:
    """bytearray(size) without zero-filling it (CPython's C API does not fill a bytearray it is
    given no source for; Python's bytearray(n) does)."""
    buf: bytearray = _new_bytearray(None, size)
    return buf


T = TypeVar("T")


class _Flow:
    """A streamed write's blocks in flight and the budget each took (budget.py): a block's share
    is given back, in order, once the MD5 stage has hashed it and every shard writer is done
    with its chunk (written, failed or skipped); whatever is still held when the write ends
    (`close`), however it ends."""

    def __init__(self, budget: ByteBudget, shards: int) -> None:
        self.budget = budget
        self.held: collections.deque[int] = collections.deque()  # per block not yet given back
        self.given = 0  # blocks given back
        self._hashed = 0
        self._written = [0] * shards

    async def enter(self, cost: int) -> None:
        self.held.append(await self.budget.take(cost))

    def hashed(self, blocks: int) -> None:
        self._hashed += blocks
        self._settle()

    def wrote(self, shard: int, blocks: int) -> None:
        self._written[shard] += blocks
        self._settle()

    def _settle(self) -> None:
        done = min(self._hashed, *self._written)
        while self.given < done and self.held:
            self.budget.give(self.held.popleft())
            self.given += 1

    def close(self) -> None:
        while self.held:
            self.budget.give(self.held.popleft())


def _with_queued(recv: trio.MemoryReceiveChannel[T], first: T, most: int) -> list[T]:
    """`first` and whatever else `recv` holds already, up to `most` items: one thread call for them."""
    items = [first]
    with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
        while len(items) < most:
            items.append(recv.receive_nowait())
    return items


def _with_shard(header: ShardHeader, i: int) -> ShardHeader:
    return ShardHeader(header.segment_id, i, header.k, header.m, header.block_size, header.length,
                       header.created_ns, header.appliance_id, dict(header.identity), header.enc)


def _pieces(blocks: Sequence[bytes | bytearray], b0: int, step: int, start: int,
            end: int) -> Iterator[bytes | bytearray]:
    """The parts of consecutive content blocks (from block b0, `step` bytes each) in [start, end)."""
    for j, data in enumerate(blocks):
        base = (b0 + j) * step
        lo = max(start - base, 0)
        hi = min(end - base, len(data))
        yield data[lo:hi] if (lo, hi) != (0, len(data)) else data


def _join(chunks: dict[int, Chunk], k: int, blen: int) -> bytes:
    """A block from its k data chunks in one copy, without the last chunk's zero padding."""
    cs = len(chunks[0])
    if cs * k == blen:
        return b"".join(chunks[i] for i in range(k))
    return b"".join(_parts(chunks, k, blen))


def _parts(chunks: dict[int, Chunk], k: int, blen: int) -> list[memoryview]:
    """A block as views of its k data chunks, without the last chunk's zero padding."""
    cs = len(chunks[0])
    return [memoryview(chunks[i])[: max(0, min(cs, blen - i * cs))] for i in range(k)]


def _enough(got: Chunks, k: int, blocks: int) -> bool:
    """Whether every block has k chunks among those read."""
    return all(sum(1 for chunks in got.values() if chunks[j] is not None) >= k for j in range(blocks))


def _available(got: Chunks, j: int) -> dict[int, Chunk]:
    """The chunks of the batch's j-th block that passed their CRC, by shard index."""
    avail: dict[int, Chunk] = {}
    for i, chunks in got.items():
        chunk = chunks[j]
        if chunk is not None:
            avail[i] = chunk
    return avail


def authentic_block(geo: Geometry, chunks: dict[int, Chunk], blen: int, cipher: SegmentCipher, index: int,
                    final: bool) -> tuple[bytes, set[int]]:
    """Find k chunks whose block authenticates: (its plaintext, the shards whose chunks differ).

    Every chunk given passed its CRC, so some were altered together with their CRCs. The first k
    (what the read tried) failed; other combinations are tried dropping as few chunks as
    possible first, so one altered chunk costs at most n decodes. Blocking: run it in a thread.
    """
    idx = sorted(chunks)
    tried = {tuple(idx[: geo.k])}
    candidates = (tuple(i for i in idx if i not in dropped)[: geo.k]
                  for drop in range(1, len(idx) - geo.k + 1) for dropped in itertools.combinations(idx, drop))
    for use in candidates:
        if use in tried:
            continue
        if len(tried) > MAX_COMBINATIONS:
            break
        tried.add(use)
        block = codec.decode_block(geo, {i: chunks[i] for i in use}, blen)
        plain = cipher.open(index, block, final)
        if plain is not None:
            full = codec.encode_block(geo, block)
            return plain, {i for i in idx if chunks[i] != full[i]}
    raise DataIntegrityError(f"segment {cipher.segment_id} block {index}: no combination of its {len(idx)} "
                             f"readable chunks authenticates (k={geo.k}, m={geo.m}); the stored data was altered")


def _record(segment_id: str, geo: Geometry, stored: int, shards: list[_ShardState], created: int, pool: list[Disk],
            enc: dict[str, Any] | None) -> SegmentRecord:
    """The uncommitted record of a segment just written: where each shard landed (None where its
    disk failed, and then listed as damaged for the healer)."""
    disk_ids = [st.disk.disk_id if st.disk and not st.failed else None for st in shards]
    packs = [st.place if d is not None else None for st, d in zip(shards, disk_ids, strict=True)]
    return SegmentRecord(segment_id, geo.k, geo.m, geo.block_size, stored, disk_ids, refcount=0,
                         created_ns=created, pool=pool[0].pool if pool else "default",
                         damaged=[i for i, d in enumerate(disk_ids) if d is None], enc=enc,
                         packs=packs if any(packs) else [])


def shard_location(disk: Disk, rec: SegmentRecord, i: int) -> tuple[str, int, tuple[int, bytes] | None]:
    """(file, offset of block 0's chunk, owner check) of shard i of a segment on `disk`: its
    shard file, or its record in a volume (read_chunk_views checks the file or the record is
    that shard's)."""
    place = rec.pack_of(i)
    if place is None:
        return disk.shard_path(rec.segment_id, i), HEADER_SIZE, file_owner(rec.segment_id, i)
    return volume_path(disk.path, place[0]), place[2], owner_of(place, rec.segment_id)


def shard_header(disk: Disk, rec: SegmentRecord, i: int) -> ShardHeader:
    """The header of shard i on `disk`, from its file or its packed record (blocking).
    FormatError when what lies there is not that shard's."""
    place = rec.pack_of(i)
    if place is None:
        return read_header(disk.shard_path(rec.segment_id, i))
    hdr = read_record_header(volume_path(disk.path, place[0]), place[1])
    if hdr.segment_id != rec.segment_id or hdr.shard != i:
        raise FormatError(f"the packed record at {place} is not shard {i} of {rec.segment_id}")
    return hdr


def check_shard_header(disk: Disk, rec: SegmentRecord, i: int) -> None:
    """FormatError unless the header of shard i on `disk` decodes and describes that shard of
    `rec` (segment, index, geometry, length, encrypted or not): what `recover-metadata` rebuilds
    the segment's record from, which no read needs past its owner prefix (blocking: the scrub's
    one small read per shard, of bytes the chunk read before it has just cached). A packed
    shard's volume head too (recovery ignores a volume without it): one more 64-byte read."""
    place = rec.pack_of(i)
    if place is not None:
        check_volume_head(volume_path(disk.path, place[0]), place[0])
    hdr = shard_header(disk, rec, i)
    got = (hdr.segment_id, hdr.shard, hdr.k, hdr.m, hdr.block_size, hdr.length, hdr.enc is not None)
    want = (rec.segment_id, i, rec.k, rec.m, rec.block_size, rec.length, rec.enc is not None)
    if got != want:
        raise FormatError(f"the header of shard {i} of {rec.segment_id} on {disk.disk_id} does not describe it")
