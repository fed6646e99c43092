"""Volume compaction: the space of packed shards (volumes.py) that were deleted or moved.

A volume is never rewritten: a deleted segment's records are only marked DEAD, and a record
whose shard was rebuilt elsewhere (or whose write never committed) just stops being placed by
the metadata. Once `volumes.compact_dead_ratio` of a closed volume's bytes are dead, its live
records are copied, as they are (records are position independent), to the disk's current
volume through its VolumeWriter (group-committed, durable when `append` returns); the segment
records are pointed at the copies (under the commit lock, re-read: only a shard still placed at
the old record moves, else the copy is marked dead) and made durable; then, once no read that
took an old placement is still in progress (store.open_reads), the old volume is unlinked.

Crash safety: the old volume goes only after the metadata pointing at the copies is durable. A
crash before that leaves a copy nothing places (dead space for the next pass; recover-metadata
takes the newest copy of a shard, the same bytes) or an old volume nothing places any more
(compacted again by the next pass). Recovery ignores a volume whose head is damaged, so after
a crash there it sees only the copies: the same bytes, in a volume it reads.

What is live is decided by the committed metadata, so a packed write whose commit is still to
come would look dead: a volume holding an unplaced live record created less than
`settle_seconds` ago is left for a later pass. The current volume (SegmentIO.current_volume) is
never touched, and when a disk has none yet (nothing appended since the start) its newest
volume is kept too, so the writer never reuses the number of a removed volume.

A volume's 64-byte head is not needed here: the survey scans the records past it whatever it
holds (each record carries its own magic and CRC, and only records the metadata places are
copied), so a volume whose head is damaged (which recovery ignores, and whose records scrub
and heal therefore rebuild elsewhere) is compacted like any other, and its space comes back.

Finding candidates costs no volume reads: one pass over the segment records gives each volume's
placed bytes (record size = data offset - record offset + the chunks and their CRCs); only the
volumes dead enough by that count are scanned. The GC service runs a pass every
COMPACT_SECONDS (`compact_if_due`) when a packed record may have died since the last one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import trio

from diskmgr.durable import fsync_dir

from . import keys
from .codec import Geometry
from .disks import Disk
from .errors import FormatError
from .objectstore import ObjectStore
from .records import SegmentRecord
from .shardfile import chunks_bytes
from .volumes import (
    LIVE,
    VOLUME_HEADER,
    PackedRecord,
    mark_dead,
    read_record,
    read_record_header,
    scan,
    volume_numbers,
    volume_path,
    volumes_dir,
)

log = logging.getLogger("stowage.compact")

COMPACT_SECONDS = 300.0  # between the GC service's compaction passes
SETTLE_SECONDS = 600.0  # an unplaced live record younger than this may be a write still to commit
READ_WAIT_SECONDS = 60.0  # how long a compacted volume waits for reads of its old placements
READ_POLL_SECONDS = 0.1
COPY_BATCH_BYTES = 8 << 20  # records copied (read, appended, committed) together
COPY_BATCH_RECORDS = 256

# a pass is skipped while nothing died, but not for longer than this (a safety net for dead
# space nothing counted)
IDLE_PASS_SECONDS = 3600.0


@dataclass(frozen=True)
class _Pass:
    at: float  # time.monotonic() when it began
    marks: int  # SegmentIO.dead_marks then
    clean: bool  # nothing was left for a later pass


_last_pass: weakref.WeakKeyDictionary[ObjectStore, _Pass] = weakref.WeakKeyDictionary()
_running: weakref.WeakSet[ObjectStore] = weakref.WeakSet()


@dataclass
class Compaction:
    """What a pass did."""

    volumes: int = 0  # volumes removed
    records: int = 0  # live records moved to the current volume
    bytes: int = 0  # bytes given back (removed volumes' sizes less what was copied out of them)
    skipped: list[str] = field(default_factory=list)  # "disk/volume: why" for volumes left for later


@dataclass
class _Survey:
    size: int
    records: list[PackedRecord]  # every whole record found (live or dead)
    live: list[PackedRecord]  # live records the metadata places here
    recent: int  # unplaced live records younger than the settle time (writes to commit, maybe)

    @property
    def live_bytes(self) -> int:
        return sum(r.size for r in self.live)


def is_placed(store: ObjectStore, disk: Disk, volume: int, r: PackedRecord) -> bool:
    """Whether the committed metadata places record `r` of `disk`'s volume where it lies (blocking)."""
    rec = store.db.get_record(SegmentRecord, keys.segment(r.header.segment_id))
    return rec is not None and rec.places(disk.disk_id, volume, r.offset, r.header.shard)


def _record_bytes(rec: SegmentRecord, place: list[int]) -> int:
    """The size of the record at `place` holding a shard of `rec`."""
    return place[2] - place[1] + chunks_bytes(Geometry(rec.k, rec.m, rec.block_size), rec.length)


def placed_bytes(store: ObjectStore) -> dict[tuple[str, int], int]:
    """(disk id, volume) -> bytes of the records the committed metadata places there (blocking:
    one pass over the segment records)."""
    out: dict[tuple[str, int], int] = defaultdict(int)
    for _k, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT):
        for _i, disk_id, place in rec.packed():
            out[(disk_id, place[0])] += _record_bytes(rec, place)
    return out


def _placed_past(store: ObjectStore, disk: Disk, volume: int, end: int, size: int) -> list[PackedRecord] | None:
    """The records the metadata places in a volume at or after `end`, where its scan stopped (a
    damaged record: the whole records after it cannot be found by a scan, but the metadata knows
    where they are); None if one of them is not there as it should be (blocking: one pass over
    the segment records; only for a volume with bytes its scan could not read)."""
    path = volume_path(disk.path, volume)
    out: list[PackedRecord] = []
    for _k, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT):
        for i, disk_id, place in rec.packed():
            if disk_id != disk.disk_id or place[0] != volume or place[1] < end:
                continue
            try:
                hdr = read_record_header(path, place[1])
            except FormatError:
                return None
            n = _record_bytes(rec, place)
            if hdr.segment_id != rec.segment_id or hdr.shard != i or place[1] + n > size:
                return None
            out.append(PackedRecord(volume, place[1], place[2], n, True, hdr))
    return out


def _survey(store: ObjectStore, disk: Disk, volume: int, settle_seconds: float) -> _Survey | None:
    """Scan a volume and sort its records by the committed metadata (blocking). None: it holds
    a placed record past damage that cannot be checked (left to the healer)."""
    path = volume_path(disk.path, volume)
    size = os.stat(path).st_size
    records = list(scan(path, volume, need_head=False))  # a damaged head must not keep dead space forever
    live: list[PackedRecord] = []
    recent = 0
    young = time.time_ns() - int(settle_seconds * 1e9)
    for r in records:
        if not r.live:
            continue
        if is_placed(store, disk, volume, r):
            live.append(r)
        elif r.header.created_ns > young:
            recent += 1
    end = records[-1].offset + records[-1].size if records else VOLUME_HEADER
    if end < size:  # a torn tail (writes never acknowledged), or damage with records after it
        past = _placed_past(store, disk, volume, end, size)
        if past is None:
            return None
        records += past
        live += past
    return _Survey(size, records, live, recent)


def _still_placed(store: ObjectStore, disk: Disk, volume: int, records: Iterable[PackedRecord]) -> int:
    """How many of a volume's records the committed metadata still places there (blocking)."""
    return sum(is_placed(store, disk, volume, r) for r in records)


def _read_batch(path: str, batch: list[PackedRecord]) -> list[bytes]:
    return [read_record(path, r.offset, r.size) for r in batch]


def _batches(records: list[PackedRecord]) -> Iterable[list[PackedRecord]]:
    batch: list[PackedRecord] = []
    size = 0
    for r in records:
        if batch and (size + r.size > COPY_BATCH_BYTES or len(batch) >= COPY_BATCH_RECORDS):
            yield batch
            batch, size = [], 0
        batch.append(r)
        size += r.size
    if batch:
        yield batch


def _remove(disk: Disk, volume: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(volume_path(disk.path, volume))
    fsync_dir(volumes_dir(disk.path))


async def _copy(store: ObjectStore, disk: Disk, volume: int, batch: list[PackedRecord]) -> tuple[int, bool]:
    """Copy a batch of live records to the current volume and point the metadata at the copies
    (durably). (records moved, whether every record of the batch is off the old volume)."""
    path = volume_path(disk.path, volume)
    datas = await trio.to_thread.run_sync(_read_batch, path, batch, limiter=disk.limiter)
    writer = store.seg.volume_writer(disk)
    places: list[tuple[int, int] | None] = [None] * len(batch)
    complete = True

    async def append(j: int) -> None:
        nonlocal complete
        if datas[j][:len(LIVE)] != LIVE:  # marked dead since the scan: nothing to copy
            return
        try:
            places[j] = await writer.append([datas[j]])
        except OSError as exc:
            complete = False
            log.warning("compact: disk %s: copying a record of volume %d failed: %s", disk.disk_id, volume, exc)

    async with trio.open_nursery() as nursery:  # side by side: the appends share a sync
        for j in range(len(batch)):
            nursery.start_soon(append, j)
    moved = 0
    stale: list[tuple[int, int]] = []  # copies of shards no longer placed at the old record
    lsn = 0
    async with store.lock:
        b = store.db.batch()
        for r, place in zip(batch, places, strict=True):
            if place is None:
                continue
            key = keys.segment(r.header.segment_id)
            rec = b.get_record(SegmentRecord, key)  # the batch's own writes: shards of one segment
            if rec is None or not rec.places(disk.disk_id, volume, r.offset, r.header.shard):
                stale.append(place)
                continue
            rec.set_pack(r.header.shard, [place[0], place[1], place[1] + (r.data_start - r.offset)])
            b.put(key, rec)
            moved += 1
        if b.writes:
            lsn = await store.db.apply(b)
    await store.db.durable(lsn)
    store.seg.dead_marks += len(stale) + (not complete)  # dead copies, or a failed append's bytes
    if stale:
        def kill() -> None:
            for v, off in stale:
                mark_dead(volume_path(disk.path, v), off)

        await trio.to_thread.run_sync(kill, limiter=disk.limiter)
    return moved, complete


async def _wait_reads(store: ObjectStore, segment_ids: set[str], seconds: float) -> bool:
    """Until each segment has been seen with no read in progress (a read that starts after the
    move takes the new placement), at most `seconds`; whether they all were."""
    waiting = {s for s in segment_ids if store.open_reads[s]}
    deadline = trio.current_time() + seconds
    while waiting:
        if trio.current_time() >= deadline:
            return False
        await trio.sleep(READ_POLL_SECONDS)
        waiting = {s for s in waiting if store.open_reads[s]}
    return True


async def _compact_volume(store: ObjectStore, disk: Disk, volume: int, ratio: float, settle_seconds: float,
                          read_wait: float, result: Compaction) -> None:
    where = f"{disk.disk_id}/{volume}"
    try:
        survey = await trio.to_thread.run_sync(_survey, store, disk, volume, settle_seconds, limiter=disk.limiter)
    except FileNotFoundError:
        return
    except (OSError, FormatError) as exc:
        log.warning("compact: disk %s: volume %d cannot be scanned: %s", disk.disk_id, volume, exc)
        result.skipped.append(f"{where}: {exc}")
        return
    if survey is None:
        log.warning("compact: disk %s: volume %d holds a placed record past damage that cannot be read; kept",
                    disk.disk_id, volume)
        result.skipped.append(f"{where}: placed records past damage")
        return
    live_bytes = survey.live_bytes
    dead = survey.size - VOLUME_HEADER - live_bytes
    if survey.live and dead < ratio * survey.size:
        return
    if survey.recent:
        result.skipped.append(f"{where}: {survey.recent} recent records not committed yet")
        return
    moved = 0
    for batch in _batches(survey.live):
        n, complete = await _copy(store, disk, volume, batch)
        moved += n
        result.records += n
        if not complete:
            result.skipped.append(f"{where}: copying failed")
            return
    # every record is off the volume, unless something else changed meanwhile: checked, not assumed
    left = await trio.to_thread.run_sync(_still_placed, store, disk, volume, survey.records)
    if left:
        log.warning("compact: disk %s: volume %d still holds %d placed records; kept", disk.disk_id, volume, left)
        result.skipped.append(f"{where}: {left} records still placed")
        return
    if not await _wait_reads(store, {r.header.segment_id for r in survey.records}, read_wait):
        result.skipped.append(f"{where}: reads in progress")
        return
    current = store.seg.current_volume(disk)
    if current is None and volume >= max(await trio.to_thread.run_sync(volume_numbers, str(disk.path)), default=0):
        # the writer would open the next number after the newest left: keep it until it has one
        result.skipped.append(f"{where}: newest volume and nothing appended since the start")
        return
    await trio.to_thread.run_sync(_remove, disk, volume, limiter=disk.limiter)
    reclaimed = survey.size - live_bytes
    result.volumes += 1
    result.bytes += reclaimed
    log.info("compacted volume %d of disk %s: %d of %d records moved, %d bytes reclaimed (%.0f%% dead)",
             volume, disk.disk_id, moved, len(survey.records), reclaimed,
             100.0 * dead / survey.size if survey.size else 100.0)


async def _compact_disk(store: ObjectStore, disk: Disk, placed: dict[tuple[str, int], int], ratio: float,
                        settle_seconds: float, read_wait: float, result: Compaction) -> None:
    current = store.seg.current_volume(disk)
    numbers = await trio.to_thread.run_sync(volume_numbers, str(disk.path), limiter=disk.limiter)
    for volume in numbers:
        if current is not None and volume >= current:
            continue
        try:
            size = (await trio.to_thread.run_sync(os.stat, volume_path(disk.path, volume),
                                                  limiter=disk.limiter)).st_size
        except FileNotFoundError:
            continue
        live = placed.get((disk.disk_id, volume), 0)
        if live and size - VOLUME_HEADER - live < ratio * size:
            continue  # not dead enough by the metadata's count: not even scanned
        try:
            await _compact_volume(store, disk, volume, ratio, settle_seconds, read_wait, result)
        except (OSError, FormatError) as exc:  # a read or a copy failed: the volume is left as it is
            log.warning("compact: disk %s: volume %d: %s", disk.disk_id, volume, exc)
            result.skipped.append(f"{disk.disk_id}/{volume}: {exc}")
            if isinstance(exc, OSError):
                disk.record_write_error(exc)  # a copy on a full disk is no I/O error


async def compact_once(store: ObjectStore, ratio: float | None = None, *, settle_seconds: float = SETTLE_SECONDS,
                       read_wait: float = READ_WAIT_SECONDS) -> Compaction:
    """One compaction pass over every data disk's closed volumes (`ratio`: the dead share that
    makes a volume worth compacting; config volumes.compact_dead_ratio by default). The disks
    are compacted side by side, each volume after the other."""
    result = Compaction()
    if store in _running:  # one pass at a time
        return result
    _running.add(store)
    try:
        ratio = store.cfg.volumes.compact_dead_ratio if ratio is None else ratio
        disks = [d for d in store.disks if d.role == "data" and d.readable and d.writable]
        if not disks:
            return result
        placed = await trio.to_thread.run_sync(placed_bytes, store)
        async with trio.open_nursery() as nursery:
            for disk in disks:
                nursery.start_soon(_compact_disk, store, disk, placed, ratio, settle_seconds, read_wait, result)
    finally:
        _running.discard(store)
    return result


async def compact_if_due(store: ObjectStore, every: float = COMPACT_SECONDS,
                         idle_every: float = IDLE_PASS_SECONDS) -> Compaction | None:
    """A compaction pass if none ran in the last `every` seconds (the GC service's hook). Its
    candidate survey reads every segment record, so a pass is skipped while no packed record
    can have died since the last one that finished with nothing left for later
    (SegmentIO.dead_marks), except once every `idle_every` seconds; the first pass after a
    start always runs (a crash leaves dead space nothing counted)."""
    now = time.monotonic()
    last = _last_pass.get(store)
    if last is not None:
        if now - last.at < every:
            return None
        if last.clean and last.marks == store.seg.dead_marks and now - last.at < idle_every:
            return None
    marks = store.seg.dead_marks  # deaths during the pass make the next one run
    _last_pass[store] = _Pass(now, marks, False)  # a pass that fails is retried `every` later
    result = await compact_once(store)
    _last_pass[store] = _Pass(now, marks, not result.skipped)
    return result
