"""Garbage collection of unreferenced segments, and the start-up orphan sweep.

GC: a segment whose refcount reached zero is queued (G keys, time ordered) in the same batch
that dropped the last reference. After a grace period (readers in flight may still hold the
old version) its record is deleted, then its shard files. If something took a reference in
the meantime (a copy racing a delete), the entry is simply dropped. The periodic pass that
calls `collect_once` is the GC service (services/gc.py).

Object lock: a protected version cannot be removed (storecore.Txn), so it keeps a reference to
each of its segments and the GC never sees them. As a safety net against a wrong refcount, the
GC also reads the segment's shard header and keeps the segment when the version that wrote it
still references it and is protected (lockstore.protected_writer); that is logged as an error.

Orphans: shard files that no committed segment record places on that disk: left by a crash
between sealing shards and the commit, or by a write that lost its commit race. Swept only at
start-up, before any write can be in flight, so a file being written is never mistaken for
one. The packed records such a crash leaves lie in the volume the last run appended to (each
start appends to a new one): the start-up sweep notes that volume, and the GC service's first
pass scans it and marks its unplaced live records dead (`sweep_unplaced_records`), so the
compactor counts them and `recover-metadata` never meets them. That scan (~50 us a record: a
full volume of small records takes seconds per disk) runs while the daemon serves, which is safe
because nothing of this run appends to that volume or places a record in it (appends, the
compactor's copies and rebuilt shards go to the current volume). Older volumes are not scanned;
the compactor reclaims what a record left there once it settles.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import trio

from diskmgr.crashpoints import crash_point

from . import keys
from .compact import is_placed
from .completions import COMPLETION_SECONDS
from .disks import Disk
from .errors import FormatError
from .objectstore import ObjectStore
from .records import SegmentRecord
from .volumes import mark_dead, scan, volume_numbers, volume_path

log = logging.getLogger("stowage.gc")


def _due(store: ObjectStore, space: bytes, older_than: float, limit: int = 1000) -> list[bytes]:
    """Up to `limit` keys of a time-ordered queue (`space` + u64 queued ns + ...) queued more than
    `older_than` seconds ago."""
    cutoff = max(time.time_ns() - int(older_than * 1e9), 0)
    with store.db.iterator(start=space, stop=space + struct.pack(">Q", cutoff)) as it:
        return [k for (k, _), _n in zip(it, range(limit), strict=False)]


async def collect_once(store: ObjectStore, grace_seconds: float) -> int:
    """Delete the shard files of segments unreferenced for longer than the grace period."""
    due = _due(store, keys.GC, grace_seconds)
    done = 0
    for k in due:
        seg_id = k[9:].decode()
        if _being_read(store, seg_id):
            continue  # next pass
        if await _locked(store, seg_id):
            async with store.lock:
                b = store.db.batch()
                b.delete(k)
                await store.db.commit(b)
            continue
        # Drop the record first, under the commit lock: from then on a racing copy that tries to
        # reference the segment fails cleanly (Txn.finish: "no longer exists") instead of
        # committing a reference to files that are about to go. A crash before the files are
        # deleted leaves orphans, which the start-up sweep removes.
        async with store.lock:
            if _being_read(store, seg_id):
                continue  # a read began while _locked waited: the entry stays for the next pass
            b = store.db.batch()
            b.delete(k)
            rec = store.db.get_record(SegmentRecord, keys.segment(seg_id))
            doomed = rec is not None and rec.refcount == 0
            if doomed:
                b.delete(keys.segment(seg_id))
                b.delete(keys.heal(seg_id))
            lsn = await store.db.apply(b)
        await store.db.durable(lsn)  # in the journal before the files go (outside the lock)
        if doomed and rec is not None:
            crash_point("gc.record_dropped")
            await store.seg.delete(rec)
            crash_point("gc.files_deleted")
            done += 1
    return done


def _being_read(store: ObjectStore, seg_id: str) -> bool:
    """A reader still streams the segment (a slow GET of a replaced version, a file read in the
    mount after an unlink: StoreCore.pins), or still reads its placement (open_reads)."""
    return bool(store.pins[seg_id] or store.open_reads[seg_id])


async def _locked(store: ObjectStore, seg_id: str) -> bool:
    """Whether a segment about to be collected still holds a protected version's data."""
    rec = store.db.get_record(SegmentRecord, keys.segment(seg_id))
    if rec is None or rec.refcount != 0:
        return False
    holder = await trio.to_thread.run_sync(store.protected_writer, rec)
    if holder is None:
        return False
    log.error("segment %s has no references but holds %s/%s (%s), which object lock protects: kept",
              seg_id, holder.bucket, holder.key, holder.version_id)
    return True


VID_MARKER_SECONDS = 3600.0  # how long a removed version's id still positions a listing


async def expire_version_markers(store: ObjectStore, older_than: float = VID_MARKER_SECONDS) -> int:
    """Drop the I keys of versions removed more than `older_than` seconds ago (storecore
    Txn._drop keeps them for listings that resume after a deleted version)."""
    due = _due(store, keys.VID_EXPIRY, older_than)
    if not due:
        return 0
    async with store.lock:
        b = store.db.batch()
        for k in due:
            b.delete(k)
            bucket, key, version_id = keys.split_vid_expiry(k)
            raw = store.db.get(keys.vid(bucket, key, version_id))
            # a "null" version id is reused by the next null version: keep a mapping that is live
            if raw is not None and store.db.get(keys.version(bucket, key, keys.unpack_seq(raw))) is None:
                b.delete(keys.vid(bucket, key, version_id))
        await store.db.commit(b, sync=False)
    return len(due)


async def expire_completions(store: ObjectStore, older_than: float = COMPLETION_SECONDS) -> int:
    """Forget completed multipart uploads older than `older_than` seconds (completions.py)."""
    due = _due(store, keys.COMPLETION_EXPIRY, older_than)
    if not due:
        return 0
    async with store.lock:
        b = store.db.batch()
        for k in due:
            b.delete(k)
            b.delete(keys.completion(keys.split_completion_expiry(k)))
        await store.db.commit(b, sync=False)
    return len(due)


def sweep_orphans(store: ObjectStore) -> int:
    """Remove tmp files and shard files with no committed record (blocking; start-up only).
    The disks are swept side by side: each mostly waits for its own directory reads."""

    def sweep(disk: Disk) -> int:
        numbers = volume_numbers(str(disk.path))
        if numbers:  # the volume the last run appended to: its records are swept while serving
            store.seg.unswept[disk.disk_id] = numbers[-1]
        removed = disk.clear_tmp()
        for seg_id, idx, path in disk.iter_shard_files():
            rec = store.db.get_record(SegmentRecord, keys.segment(seg_id))
            if rec is None or idx >= len(rec.shards) or rec.shards[idx] != disk.disk_id:
                try:
                    os.unlink(path)
                    removed += 1
                except OSError:
                    pass
        return removed

    disks = [d for d in store.disks if d.role == "data" and d.readable]
    if any(store.seg.current_volume(d) is not None for d in disks):
        raise RuntimeError("the orphan sweep runs at start-up, before any packed write")
    with ThreadPoolExecutor(max(1, len(disks))) as pool:
        removed = sum(pool.map(sweep, disks))
    if removed:
        log.info("swept %d orphan shard/tmp files", removed)
    return removed


async def sweep_unplaced_records(store: ObjectStore) -> int:
    """Mark dead the unplaced live records of the volumes the start-up sweep noted (once; the
    GC service's first pass). A disk that fails the scan is left to the compactor."""
    marked = 0
    while store.seg.unswept:
        disk_id, volume = store.seg.unswept.popitem()
        disk = store.disks.get(disk_id)
        if disk is not None and disk.readable and disk.writable:
            marked += await trio.to_thread.run_sync(_sweep_volume, store, disk, volume, limiter=disk.limiter)
    if marked:
        store.seg.dead_marks += 1
        log.info("marked dead %d packed records no committed write places (a crash's)", marked)
    return marked


def _sweep_volume(store: ObjectStore, disk: Disk, volume: int) -> int:
    """Mark dead a volume's live records that no committed segment places there (blocking)."""
    path = volume_path(disk.path, volume)
    try:
        orphans = [r.offset for r in scan(path, volume) if r.live and not is_placed(store, disk, volume, r)]
        mark_dead(path, *orphans)
    except FileNotFoundError:  # compacted away meanwhile
        return 0
    except (OSError, FormatError) as exc:  # left to the compactor (or the healer, for damage)
        log.warning("orphan sweep: disk %s: volume %d: %s", disk.disk_id, volume, exc)
        return 0
    return len(orphans)

