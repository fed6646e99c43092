"""Packed shards: small shards appended to per-disk volume files, one shared fdatasync per group.

A small object's shards were one file each (m+1 file creations, fsyncs, renames and directory
fsyncs per PUT: the cost that bound small PUTs). A whole-written small shard is instead a
*record* appended to the disk's current volume file (as Haystack's and SeaweedFS's needles);
concurrent appends to one disk are written with one pwritev and made durable by one fdatasync,
and each writer is answered only after that sync (group commit). The segment record keeps each
packed shard's place: [volume number, record offset, data offset].

    volume file   <disk>/volumes/NNNNNNNN.vol
      [0, 64)     b"STWVOLUM" | u16 format | u32 volume number | zero padding
      records     one after another, each self-describing:
        prefix    magic (b"STWNEEDL" live, b"STWDEAD!" deleted) | u16 format | u32 JSON length
                  | u32 CRC32C of the JSON
        JSON      the shard header (shardfile.ShardHeader: segment id, shard index, geometry,
                  length, object identity): what `recover-metadata` rebuilds a segment from
        chunks    as in a shard file: per block, the chunk then its CRC32C

A record never changes after its sync but for its magic: deleting a segment flips it to
b"STWDEAD!" in place, so a deleted object is not brought back by `recover-metadata`, and the
compactor (compact.py) knows the dead bytes without asking the metadata. Each daemon start
appends to a new volume, so nothing is ever appended after a torn tail; a torn tail (records of
writes never acknowledged) is skipped by the scan. Volumes are never rewritten: the compactor
copies a volume's live records to the current volume and removes the old file.

An encrypted segment's records carry its envelope in their header, as shard files do. A
record's header cannot be rewritten in place, so `rotate-master` appends a copy with the new
envelope and points the segment at it (rewrapped_record, engine/keystore.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from diskmgr.durable import fsync_dir, open_regular

from .codec import checksum
from .errors import FormatError
from .shardfile import ShardHeader, chunk_parts, chunks_bytes, write_durable

log = logging.getLogger("stowage.volumes")

VOLUME_MAGIC = b"STWVOLUM"
VOLUME_FORMAT = 1
VOLUME_HEADER = 64
_VOLUME_PREFIX = struct.Struct("<8sHI")
LIVE = b"STWNEEDL"
DEAD = b"STWDEAD!"
RECORD_FORMAT = 1
_RECORD_PREFIX = struct.Struct("<8sHII")
MAX_HEADER_JSON = 8192  # as a shard file's header
VOLUME_BYTES = 256 << 20  # a volume is closed once this full; the next record starts a new one


@dataclass(frozen=True, slots=True)
class PackedRecord:
    """One record found in a volume by `scan`."""

    volume: int
    offset: int  # of the record's prefix
    data_start: int  # of block 0's chunk
    size: int  # the whole record, prefix to last CRC
    live: bool
    header: ShardHeader


def volumes_dir(disk_path: str | os.PathLike[str]) -> str:
    return f"{disk_path}/volumes"


def volume_path(disk_path: str | os.PathLike[str], volume: int) -> str:
    return f"{disk_path}/volumes/{volume:08d}.vol"


def volume_numbers(disk_path: str | os.PathLike[str]) -> list[int]:
    """The volumes on a disk, oldest first (blocking)."""
    try:
        names = os.listdir(volumes_dir(disk_path))
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".vol") and n[:-4].isascii() and n[:-4].isdigit())


def _record_head(header: ShardHeader) -> list[bytes | memoryview]:
    """A live record's prefix and header JSON."""
    return _head_parts(header.json_body(MAX_HEADER_JSON))


def _head_parts(body: bytes) -> list[bytes | memoryview]:
    return [_RECORD_PREFIX.pack(LIVE, RECORD_FORMAT, len(body), checksum(body)), body]


def encode_record(header: ShardHeader, chunks: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    """A record's bytes as parts for one writev: prefix, header JSON, then each chunk + CRC."""
    return [*_record_head(header), *chunk_parts(chunks)]


def record_heads(header: ShardHeader, count: int) -> list[list[bytes | memoryview]]:
    """`_record_head` of shards 0..count-1 of `header`'s segment, byte for byte, from one JSON
    encode: the headers differ only in their shard number (a small PUT encoded k+m headers on
    the loop, ~50 us per 4+2 PUT). A header that a longer number pushes over the size limit is
    encoded on its own (json_body then drops its user metadata)."""
    body0 = (header if header.shard == 0 else replace(header, shard=0)).json_body(MAX_HEADER_JSON)
    # the second field: no JSON string can hold this unescaped, so the first match is it
    marker = b',"shard":0,'
    at = body0.find(marker)
    if at < 0:  # not the layout this relies on: every head encoded on its own
        return [_record_head(replace(header, shard=i)) for i in range(count)]
    head, tail = body0[:at], body0[at + len(marker):]
    heads: list[list[bytes | memoryview]] = []
    for i in range(count):
        body = head + b',"shard":%d,' % i + tail
        if len(body) > MAX_HEADER_JSON:
            heads.append(_record_head(replace(header, shard=i)))
            continue
        heads.append(_head_parts(body))
    return heads


def _prefix(raw: bytes) -> tuple[bool, int, int] | None:
    """(live, header JSON length, its CRC) of a record's prefix; None if it is not one."""
    if len(raw) < _RECORD_PREFIX.size:
        return None
    magic, fmt, n, crc = _RECORD_PREFIX.unpack(raw)
    if magic not in (LIVE, DEAD) or fmt != RECORD_FORMAT or n > MAX_HEADER_JSON:
        return None
    return magic == LIVE, n, crc


def owner_of(place: list[int], segment_id: str) -> tuple[int, bytes]:
    """What the record at `place` must begin its header with to be shard of `segment_id`
    (the header JSON's first field): checked by every packed read (shardfile.read_chunk_views)."""
    return place[1] + _RECORD_PREFIX.size, b'{"segment_id":"' + segment_id.encode() + b'"'


def _read_header(fd: int, path: str, offset: int) -> tuple[ShardHeader, int]:
    """(header, its JSON length) of the record at `offset` of an open volume."""
    prefix = os.pread(fd, _RECORD_PREFIX.size, offset)
    if len(prefix) < _RECORD_PREFIX.size:
        raise FormatError("packed record truncated")
    parsed = _prefix(prefix)
    if parsed is None:
        raise FormatError(f"no packed record at {path}:{offset}")
    _live, n, crc = parsed
    body = os.pread(fd, n, offset + _RECORD_PREFIX.size)
    if len(body) < n or checksum(body) != crc:
        raise FormatError(f"damaged packed header at {path}:{offset}")
    return ShardHeader.from_json(body), n


def check_volume_head(path: str, volume: int) -> None:
    """FormatError unless the volume file at `path` begins with volume `volume`'s head (blocking).
    No read needs it, but `recover-metadata` ignores a volume without it (scan)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO here must not hang the reader
    try:
        head = os.pread(fd, _VOLUME_PREFIX.size, 0)
    finally:
        os.close(fd)
    if len(head) < _VOLUME_PREFIX.size or _VOLUME_PREFIX.unpack(head) != (VOLUME_MAGIC, VOLUME_FORMAT, volume):
        raise FormatError(f"{path}: damaged volume head")


def read_record_header(path: str, offset: int) -> ShardHeader:
    """The shard header of the record at `offset` (blocking; FormatError if it is not one)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO here must not hang the reader
    try:
        return _read_header(fd, path, offset)[0]
    finally:
        os.close(fd)


def rewrapped_record(path: str, offset: int, segment_id: str, shard: int,
                     enc: dict[str, Any] | None) -> list[bytes | memoryview]:
    """The record at `offset` again, as parts for an append, with `enc` as its header's envelope
    (blocking). A record cannot be rewritten in place (its header would change length):
    `rotate-master` appends this copy and points the segment at it (engine/keystore.py). The
    chunks and their CRCs are copied as they are. FormatError if the record there is not that
    shard's."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO here must not hang the reader
    try:
        header, n = _read_header(fd, path, offset)
        if header.segment_id != segment_id or header.shard != shard:
            raise FormatError(f"the packed record at {path}:{offset} is not shard {shard} of {segment_id}")
        size = chunks_bytes(header.geometry, header.length)
        data = os.pread(fd, size, offset + _RECORD_PREFIX.size + n)
    finally:
        os.close(fd)
    if len(data) < size:
        raise FormatError(f"packed record at {path}:{offset} truncated")
    header.enc = enc
    return [*_record_head(header), data]


def record_size(header: ShardHeader, json_len: int) -> int:
    return _RECORD_PREFIX.size + json_len + chunks_bytes(header.geometry, header.length)


def scan(path: str, volume: int, *, need_head: bool = True) -> Iterator[PackedRecord]:
    """Every record of a volume, in order (blocking). Stops at the first thing that is not a
    whole record: the torn tail of a crash, or damage (what follows a damaged prefix cannot be
    found; its shards are rebuilt by the healer from their other copies). FormatError if the
    file does not begin with a volume's magic, unless `need_head` is False: the compactor,
    which moves only what the metadata places and needs nothing else from the file, reads the
    records of a volume whose head is damaged too (each record is checked on its own)."""
    with open_regular(path) as f:
        head = f.read(VOLUME_HEADER)
        if need_head and (len(head) < _VOLUME_PREFIX.size or _VOLUME_PREFIX.unpack_from(head)[0] != VOLUME_MAGIC):
            raise FormatError(f"{path} is not a stowage volume")
        size = os.fstat(f.fileno()).st_size
        offset = VOLUME_HEADER
        while offset + _RECORD_PREFIX.size <= size:
            f.seek(offset)
            parsed = _prefix(f.read(_RECORD_PREFIX.size))
            if parsed is None:
                return
            live, n, crc = parsed
            body = f.read(n)
            if len(body) < n or checksum(body) != crc:
                return
            try:
                header = ShardHeader.from_json(body)
                total = record_size(header, n)
            except (FormatError, ValueError, ZeroDivisionError):
                return
            if offset + total > size:
                return
            yield PackedRecord(volume, offset, offset + _RECORD_PREFIX.size + n, total, live, header)
            offset += total


def read_record(path: str, offset: int, size: int) -> bytes:
    """A whole record's bytes (the compactor copies them as they are: nothing in a record
    depends on where it lies)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO here must not hang the reader
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    if len(data) < size:
        raise FormatError(f"packed record at {path}:{offset} truncated")
    return data


def mark_dead(path: str, *offsets: int) -> None:
    """Flip records' magic to DEAD and make that durable, one sync for them all (blocking). A
    record already gone with its volume (compacted away) is fine."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        flipped = False
        for offset in offsets:
            if os.pread(fd, len(LIVE), offset) == LIVE:
                os.pwrite(fd, DEAD, offset)
                flipped = True
        if flipped:
            os.fdatasync(fd)
    finally:
        os.close(fd)


@dataclass
class Append:
    parts: list[bytes | memoryview]
    size: int
    done: trio.Event = field(default_factory=trio.Event)
    place: tuple[int, int] | None = None  # (volume, offset)
    error: OSError | None = None
    notify: Callable[[Append], None] | None = None  # called (in trio's thread) once done


class VolumeWriter:
    """The appends of one disk: whoever arrives while a group is being written and synced goes
    in the next group. Each group is one worker-thread call (`start_thread_soon`, owned by no
    task: a writer that gives up waiting, e.g. a stalled disk, leaves the group to finish and
    its record becomes dead space). One group at a time, so records land in order."""

    def __init__(self, disk_path: str, max_bytes: int = VOLUME_BYTES) -> None:
        self.disk_path = disk_path
        self.max_bytes = max_bytes
        self.volume: int | None = None  # the volume appended to (None: the next group opens one)
        self._fd: int | None = None
        self._end = 0
        self._queue: list[Append] = []
        self._busy = False
        self.groups = 0  # groups written (the benchmark divides appends by it)

    async def append(self, parts: list[bytes | memoryview]) -> tuple[int, int]:
        """Append one record; (volume, offset) once it is durable. OSError if it could not be."""
        job = self.submit(parts)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.place is not None
        return job.place

    def submit(self, parts: list[bytes | memoryview], notify: Callable[[Append], None] | None = None,
               launch: bool = True) -> Append:
        """Queue one record without waiting: `notify(job)` runs once it is durable (job.place)
        or failed (job.error), whether or not anyone still waits for it. `launch` False: the
        caller calls `launch_if_idle` soon (after letting other tasks queue theirs)."""
        job = Append(parts, sum(len(p) for p in parts), notify=notify)
        self._queue.append(job)
        if launch:
            self.launch_if_idle()
        return job

    @property
    def idle_with_queue(self) -> bool:
        """Records are queued and no group is being written: `launch_if_idle` would start one."""
        return not self._busy and bool(self._queue)

    def launch_if_idle(self) -> None:
        """Start writing the queued records as a group, unless a group is being written (the
        records then go with the next one, as always)."""
        if self.idle_with_queue:
            self._launch()

    @property
    def current(self) -> int | None:
        """The volume being appended to: the compactor leaves it alone."""
        return self.volume

    def _launch(self) -> None:
        batch, self._queue = self._queue, []
        self._busy = True
        token = trio.lowlevel.current_trio_token()
        trio.lowlevel.start_thread_soon(functools.partial(self._write, batch),
                                        functools.partial(self._deliver, token, batch))

    def _write(self, batch: list[Append]) -> None:  # in the worker thread
        total = sum(j.size for j in batch)
        if self.volume is None or (self._end > VOLUME_HEADER and self._end + total > self.max_bytes):
            self._open_next()
        elif self._fd is None:
            # the volume is open only while appends keep coming (closed below when none waits):
            # a disk with no write in progress holds no file open for writing (`mount -o
            # remount,ro`, a release)
            try:
                self._fd = os.open(volume_path(self.disk_path, self.volume), os.O_WRONLY)
            except OSError:
                self.volume = None
                raise
        assert self._fd is not None and self.volume is not None
        offset = self._end
        parts: list[bytes | memoryview] = []
        for job in batch:
            job.place = (self.volume, offset)
            offset += job.size
            parts += job.parts
        try:
            write_durable(self._fd, parts, self._end)
        except OSError:
            # what was written may be partial: never append after it (a new volume next time)
            self._close()
            self.volume = None
            raise
        self._end = offset
        self.groups += 1
        if not self._queue:
            # nothing queued behind this group (a list read racing the loop's append: seen
            # late, the next group opens the file again): close. Open and close per group were
            # two more system calls, each a GIL hand-off of this thread, under a run of appends
            self._close()

    def _open_next(self) -> None:
        self._close()
        os.makedirs(volumes_dir(self.disk_path), mode=0o700, exist_ok=True)
        # the directory's own name is durable only once its parent is synced (a power cut
        # would take every volume with it); once per volume, and a mkdir done before a crash
        # is covered too
        fsync_dir(self.disk_path)
        numbers = volume_numbers(self.disk_path)
        volume = max([*numbers, self.volume or 0]) + 1
        path = volume_path(self.disk_path, volume)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            head = _VOLUME_PREFIX.pack(VOLUME_MAGIC, VOLUME_FORMAT, volume)
            os.pwrite(fd, head + bytes(VOLUME_HEADER - len(head)), 0)
            os.fsync(fd)
            fsync_dir(volumes_dir(self.disk_path))
        except BaseException:
            os.close(fd)
            raise
        self._fd, self.volume, self._end = fd, volume, VOLUME_HEADER

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None

    def _deliver(self, token: trio.lowlevel.TrioToken, batch: list[Append], outcome: Any) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(self._finished, batch, outcome)

    def _finished(self, batch: list[Append], outcome: Any) -> None:  # back in trio's thread
        error: OSError | None = None
        try:
            outcome.unwrap()
        except OSError as exc:
            error = exc
        except BaseException as exc:  # reported to the writers as an I/O failure
            error = OSError(f"volume append failed: {exc!r}")
        for job in batch:
            job.error = error
            job.done.set()
            if job.notify is not None:
                try:
                    job.notify(job)
                except Exception:
                    log.exception("a volume append's completion callback failed")
        self._busy = False
        self.launch_if_idle()

    def close(self) -> None:
        self._close()

