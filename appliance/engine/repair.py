"""Segment repair: verify every chunk of a segment, rebuild or move shards, commit the placement.

What needs repair (`shards_to_replace`): a None shard (written degraded, or lost earlier), a
shard on a disk that is failed, offline, removed or unknown (rebuilt elsewhere), a shard on a
draining disk (moved: its verified chunks are copied), and the shards the heal queue (H keys)
or the caller name as damaged.

Repairing one segment: read every shard batch by batch (any k verified chunks per block), rebuild
the wanted chunks (codec.rebuild_chunks), append them to a new shard file per wanted index
(temporary name, fsync, rename, directory fsync), then commit the new placement under the commit
lock with a synced batch, and only then delete the old file. A shard damaged on a disk that is
still writable is rebuilt in place (rename over the old file); otherwise it goes to a writable
disk of the pool that holds no other shard of the segment, chosen with weight = free space. A
disk without room for the shard (Disk.free_bytes: less the reserve) is passed over, the
preferred target of a replace too; running out of space is not an I/O error of the disk. A
shard whose write fails on the disk chosen (a directory at its path that is not empty, a full
disk) is written again, in the same repair, on such a disk not tried yet; only when none is left
does it stay pending. The new file keeps the header identity of the survivors, so
`recover-metadata` still sees who wrote it.

Encrypted segments are repaired as ciphertext, without their key. Their chunks can be altered
on a disk with the CRC recomputed, which only a reader holding the key notices (a block fails
authentication, segments.py): the shards such a reader reports in the heal queue are rebuilt
although their CRCs verify, and their chunks are not used as sources while k others remain.
Rebuilt shard files get the envelope of the current segment record (it changes when
`rotate-master` re-wraps it).

A segment with fewer than k verified chunks in some block is unrecoverable: it is recorded as a
progress.LostSegment under `X lost/<segment id>` with the objects (bucket/key/version) that
reference it, never silently dropped. When to repair what, and how fast, is the healer's
business (services/heal.py); this module is the mechanism.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from diskmgr.crashpoints import crash_point
from diskmgr.durable import fsync_dir
from diskmgr.state import LOST, MOVING

from . import keys
from .balance import shard_bytes
from .codec import Geometry, rebuild_chunks
from .disks import Disk, is_full
from .errors import FormatError
from .progress import LOST_PREFIX, LostSegment, ObjectRef, describe_ref
from .records import HealEntry, ObjectVersion, PartRecord, SegmentRecord
from .segments import READ_BATCH_BYTES, check_shard_header, shard_header
from .shardfile import ShardHeader, ShardWriter, block_len, read_header, rewrite_header
from .storecore import StoreCore
from .volumes import mark_dead, volume_path

log = logging.getLogger("stowage.heal")


# Awaited with the bytes just read: the scrubber's rate limit.
Throttle = Callable[[int], Awaitable[None]]


@dataclass
class RepairResult:
    segment_id: str
    rebuilt: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)  # rebuilt onto another disk
    pending: list[int] = field(default_factory=list)  # could not be placed (no target disk, I/O error)
    unrecoverable: bool = False
    full: set[str] = field(default_factory=set)  # disks that had no room for a shard (not taken, or out of space)
    placed: dict[int, str] = field(default_factory=dict)  # rebuilt shard -> the disk it is on now
    gone: bool = False  # the segment was collected meanwhile


def weighted_pick(disks: list[Disk], exclude: set[str], need: int = 1) -> Disk | None:
    """A writable disk not in `exclude` with `need` bytes free, chosen with probability
    proportional to free space."""
    best: tuple[float, Disk] | None = None
    for d in disks:
        if not d.writable or d.disk_id in exclude:
            continue
        free = d.free_bytes()
        if free < max(need, 1):
            continue
        key = random.random() ** (1.0 / free)
        if best is None or key > best[0]:
            best = (key, d)
    return best[1] if best else None


class SegmentRepair:
    """Verification and repair of single segments, and the heal queue and lost entries they
    maintain. One instance per store: it serialises work on each segment (the scrubber, the
    healer and a drain may meet on one). `on_lost_change` is called when a lost entry is added
    or dropped."""

    def __init__(self, store: StoreCore, on_lost_change: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_lost_change = on_lost_change
        self._locks: dict[str, trio.Lock] = {}

    # --- what needs work (blocking scans: run them in a thread) --------------------------------

    def shards_to_replace(self, rec: SegmentRecord) -> dict[int, str]:
        """Shard indices that must be rebuilt/moved whatever their content (index -> reason)."""
        out: dict[int, str] = {}
        for i, disk_id in enumerate(rec.shards):
            if disk_id is None:
                out[i] = "missing"
                continue
            d = self.store.disks.get(disk_id)
            if d is None:
                out[i] = f"disk {disk_id} unknown"
            elif d.state in LOST or d.state in MOVING:  # lost: rebuild elsewhere; moving: copy elsewhere
                out[i] = f"disk {disk_id} {d.state}"
        for i in rec.damaged:
            out.setdefault(i, "damaged")
        return out

    def queued(self) -> list[str]:
        """Segment ids in the heal queue (reads and scrubs that found damage)."""
        return [k[1:].decode() for k, _ in self.store.db.scan(keys.HEAL)]

    def queue_length(self) -> int:
        return sum(1 for _ in self.store.db.scan(keys.HEAL))

    def degraded(self, exclude: set[str]) -> list[str]:
        """Live segments not in `exclude` with a shard to replace (a full scan of the records)."""
        out: list[str] = []
        for _, rec in self.store.db.scan_records(SegmentRecord, keys.SEGMENT):
            if rec.segment_id not in exclude and rec.refcount > 0 and self.shards_to_replace(rec):
                out.append(rec.segment_id)
        return out

    def lost(self) -> list[LostSegment]:
        return [LostSegment.decode(v) for _, v in self.store.db.scan(keys.progress(LOST_PREFIX))]

    def objects_of(self, segment_id: str) -> list[ObjectRef]:
        """Every object version and multipart part that references a segment (blocking: full scan)."""
        found: list[ObjectRef] = []
        for _, v in self.store.db.scan_records(ObjectVersion, keys.VERSION):
            if any(s.segment_id == segment_id for s in v.segments):
                found.append({"bucket": v.bucket, "key": v.key, "version_id": v.version_id})
        for k, p in self.store.db.scan_records(PartRecord, keys.PART):
            if any(s.segment_id == segment_id for s in p.segments):
                upload_id = k[1:].split(keys.SEP, 1)[0].decode()
                found.append({"upload_id": upload_id, "part": p.part_number})
        return found

    # --- verification ------------------------------------------------------------------------

    async def verify(self, rec: SegmentRecord, throttle: Throttle | None = None) -> tuple[set[int], bool]:
        """Read and check every chunk and every shard's header: (shard indices with any bad
        chunk or a bad header, recoverable). A bad header alone leaves the chunks usable."""
        geo = Geometry(rec.k, rec.m, rec.block_size)
        nblocks = self.store.seg.block_count(rec)
        per_batch = max(1, READ_BATCH_BYTES // geo.block_size)
        bad: set[int] = set()
        recoverable = True
        for b0 in range(0, nblocks, per_batch):
            b1 = min(nblocks - 1, b0 + per_batch - 1)
            got = await self.store.seg.read_all_chunks(rec, b0, b1)
            nbytes = 0
            for i, chunks in got.items():
                for c in chunks:
                    if c is None:
                        bad.add(i)
                    else:
                        nbytes += len(c)
            for j in range(b1 - b0 + 1):
                if sum(1 for chunks in got.values() if chunks[j] is not None) < geo.k:
                    recoverable = False
            if throttle is not None:
                await throttle(nbytes)
        return bad | await self._bad_headers(rec, bad), recoverable

    async def _bad_headers(self, rec: SegmentRecord, skip: set[int]) -> set[int]:
        """Shards (not in `skip`) whose header does not decode or does not describe them: reads
        check only its owner prefix, but `recover-metadata` places the shard by it, so a bad
        one is damage that heal rewrites (a shard file, or a packed record as a file)."""
        bad: set[int] = set()

        async def one(i: int, d: Disk) -> None:
            try:
                await trio.to_thread.run_sync(check_shard_header, d, rec, i, limiter=d.limiter,
                                              abandon_on_cancel=True)
            except (OSError, FormatError) as exc:
                log.warning("verify %s: shard %d on %s: bad header: %s", rec.segment_id, i, d.disk_id, exc)
                bad.add(i)

        async with trio.open_nursery() as nursery:
            for i, disk_id in enumerate(rec.shards):
                d = self.store.disks.get(disk_id)
                if i not in skip and d is not None and d.readable:
                    nursery.start_soon(one, i, d)
        return bad

    # --- repair ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock(self, segment_id: str) -> AsyncIterator[None]:
        """One repair per segment at a time."""
        lock = self._locks.get(segment_id)
        if lock is None:
            lock = self._locks[segment_id] = trio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(segment_id, None)  # keep the table small on a full scrub

    async def check(self, segment_id: str, extra: set[int] | None = None, throttle: Throttle | None = None,
                    prefer: Disk | None = None) -> RepairResult | None:
        """Verify a segment and repair whatever is wrong. None: nothing to do."""
        async with self._lock(segment_id):
            rec = self.store.db.get_record(SegmentRecord, keys.segment(segment_id))
            if rec is None or rec.refcount == 0:
                await self._clear_entry(segment_id)
                return None
            bad, recoverable = await self.verify(rec, throttle)
            untrusted = self._reported_altered(rec)
            bad |= set(self.shards_to_replace(rec)) | (extra or set()) | untrusted
            if not bad:
                await self._clear_entry(segment_id)
                self._forget_lost(segment_id)
                return None
            if not recoverable:
                return await self._unrecoverable(rec, bad)
            return await self._repair_locked(rec, bad, throttle, prefer, untrusted)

    def _reported_altered(self, rec: SegmentRecord) -> set[int]:
        """Shards of an encrypted segment a reader found altered (their CRCs cannot tell)."""
        if rec.enc is None:
            return set()
        entry = self.store.db.get_record(HealEntry, keys.heal(rec.segment_id))
        return {i for i in entry.shards if i < len(rec.shards)} if entry is not None else set()

    async def move(self, segment_id: str, indices: set[int], prefer: Disk | None = None,
                   throttle: Throttle | None = None, linger: list[tuple[int, Disk]] | None = None
                   ) -> RepairResult | None:
        """Move (copy verified chunks, rebuild the rest) the given shards to other disks.
        `linger`: the old file of a moved shard that a read in progress may still open
        (store.open_reads) is left in place and listed there as (shard index, old disk), for
        the caller to remove with `drop_moved` once those reads are done."""
        async with self._lock(segment_id):
            rec = self.store.db.get_record(SegmentRecord, keys.segment(segment_id))
            if rec is None:
                return None
            wanted = {i for i in indices if i < len(rec.shards)} | set(self.shards_to_replace(rec))
            if not wanted:
                return None
            return await self._repair_locked(rec, wanted, throttle, prefer, linger=linger)

    async def drop_moved(self, segment_id: str, i: int, old: Disk) -> None:
        """Remove a moved shard's old file, unless shard i has been put back on that disk since
        (under the segment's lock: no move can rename a new file onto that path meanwhile)."""
        async with self._lock(segment_id):
            rec = self.store.db.get_record(SegmentRecord, keys.segment(segment_id))
            if rec is not None and i < len(rec.shards) and rec.shards[i] == old.disk_id:
                return
            await self._unlink(old.shard_path(segment_id, i))

    def _choose_target(self, rec: SegmentRecord, i: int, chosen: dict[int, Disk], prefer: Disk | None,
                       failed: set[str], full: set[str]) -> Disk | None:
        """Where shard i is rebuilt. `failed`: disks a write of this shard failed on during this
        repair (a directory at its path, a full disk): not tried again, so the shard goes to another.
        A disk without room for the shard is passed over (and added to `full`), `prefer` too."""
        disks = self.store.disks
        need = shard_bytes(rec)

        def room(d: Disk) -> bool:
            if d.free_bytes() >= need:
                return True
            full.add(d.disk_id)
            return False

        cur = disks.get(rec.shards[i])
        forced = self.shards_to_replace(rec)
        in_place = cur is not None and cur.writable and i not in forced and cur.disk_id not in failed
        if cur is not None and in_place and prefer is None and room(cur):
            return cur  # content damage on a healthy disk: rebuild in place
        holders = {d for j, d in enumerate(rec.shards) if d is not None and j != i} | {
            d.disk_id for d in chosen.values()} | failed
        if cur is not None:
            holders.add(cur.disk_id)
        if prefer is not None and prefer.writable and prefer.disk_id not in holders and room(prefer):
            return prefer
        pool = disks.pool(rec.pool)
        target = weighted_pick(pool, holders, need)
        if target is None:
            for d in pool:
                if d.writable and d.disk_id not in holders:
                    room(d)  # each one short of room: said so
            if in_place:
                return cur  # last resort: the old file's space comes back when the new one replaces it
        return target

    async def _template(self, rec: SegmentRecord, bad: set[int]) -> ShardHeader:
        """A header of a surviving shard (keeps the object identity for metadata recovery)."""
        for i, disk_id in enumerate(rec.shards):
            d = self.store.disks.get(disk_id)
            if d is None or not d.readable or i in bad:
                continue
            try:
                hdr = await trio.to_thread.run_sync(shard_header, d, rec, i, limiter=d.limiter)
            except Exception:  # unreadable or damaged header: try another survivor
                continue
            if hdr.segment_id == rec.segment_id:
                return hdr
        return ShardHeader(rec.segment_id, 0, rec.k, rec.m, rec.block_size, rec.length, rec.created_ns,
                           self.store.db.appliance_id, {})

    async def _repair_locked(self, rec: SegmentRecord, bad: set[int], throttle: Throttle | None,
                             prefer: Disk | None, untrusted: set[int] | None = None,
                             linger: list[tuple[int, Disk]] | None = None) -> RepairResult:
        res = RepairResult(rec.segment_id)
        geo = Geometry(rec.k, rec.m, rec.block_size)
        failed: dict[int, set[str]] = {i: set() for i in bad}  # disks a write of shard i failed on
        targets = self._targets(rec, bad, {}, prefer, failed, res)
        if not targets:
            await self._keep_entry(rec.segment_id, res.pending, "no disk to rebuild on")
            return res
        tmpl = await self._template(rec, bad)
        sealed: dict[int, Disk] = {}
        while targets:
            ok = await self._write_shards(rec, geo, tmpl, targets, res, throttle, untrusted or set(), sealed)
            if not ok:
                if sealed:  # a retry found the segment short of chunks: keep what was written
                    res.pending = sorted(set(res.pending) | set(targets))
                    break
                return await self._unrecoverable(rec, bad)
            # a write that failed (a directory at the shard's path, a full disk) is tried once more
            # on a disk not tried yet for that shard; none left: the shard stays pending
            retry = {i for i in targets if i not in sealed}
            for i in retry:
                failed[i].add(targets[i].disk_id)
            res.pending = [i for i in res.pending if i not in retry]
            targets = self._targets(rec, retry, sealed, prefer, failed, res)
        crash_point("heal.shards_sealed")
        await self._commit(rec, sealed, res, linger)
        return res

    def _targets(self, rec: SegmentRecord, wanted: set[int], sealed: dict[int, Disk], prefer: Disk | None,
                 failed: dict[int, set[str]], res: RepairResult) -> dict[int, Disk]:
        """A disk for each wanted shard; those without one are added to res.pending."""
        targets: dict[int, Disk] = {}
        for i in sorted(wanted):
            t = self._choose_target(rec, i, {**sealed, **targets}, prefer, failed[i], res.full)
            if t is None:
                res.pending.append(i)
            else:
                targets[i] = t
        return targets

    async def _write_shards(self, rec: SegmentRecord, geo: Geometry, tmpl: ShardHeader, targets: dict[int, Disk],
                            res: RepairResult, throttle: Throttle | None, untrusted: set[int],
                            sealed: dict[int, Disk]) -> bool:
        """Write and seal the target shards (those sealed are added to `sealed`); False: the
        segment has fewer than k readable chunks in some block (nothing was sealed)."""
        writers: dict[int, ShardWriter] = {}

        async def open_writer(i: int, d: Disk) -> None:
            hdr = ShardHeader(rec.segment_id, i, rec.k, rec.m, rec.block_size, rec.length, tmpl.created_ns,
                              tmpl.appliance_id or self.store.db.appliance_id, dict(tmpl.identity), rec.enc)
            try:
                writers[i] = await trio.to_thread.run_sync(ShardWriter, d.tmp_path(rec.segment_id, i), hdr,
                                                           limiter=d.limiter)
            except OSError as exc:
                log.warning("heal %s: cannot write shard %d on %s: %s", rec.segment_id, i, d.disk_id, exc)
                self._write_failed(d, exc, res)
                res.pending.append(i)

        for i, d in list(targets.items()):
            await open_writer(i, d)
        open_targets = {i: d for i, d in targets.items() if i in writers}
        try:
            ok = await self._copy_blocks(rec, geo, open_targets, writers, res, throttle, untrusted)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._discard(open_targets, writers)
            raise
        if not ok:
            await self._discard(open_targets, writers)
            return False
        sealed.update(await self._seal(rec, open_targets, writers, res))
        return True

    async def _copy_blocks(self, rec: SegmentRecord, geo: Geometry, targets: dict[int, Disk],
                           writers: dict[int, ShardWriter], res: RepairResult, throttle: Throttle | None,
                           untrusted: set[int]) -> bool:
        nblocks = self.store.seg.block_count(rec)
        per_batch = max(1, READ_BATCH_BYTES // geo.block_size)
        for b0 in range(0, nblocks, per_batch):
            b1 = min(nblocks - 1, b0 + per_batch - 1)
            got = await self.store.seg.read_all_chunks(rec, b0, b1)
            out: dict[int, list[bytes]] = {i: [] for i in writers}
            nbytes = 0
            for j in range(b1 - b0 + 1):
                avail: dict[int, bytes] = {}
                for i, c in got.items():
                    chunk = c[j]
                    if chunk is not None:
                        avail[i] = chunk
                nbytes += sum(len(c) for c in avail.values())
                if len(avail) < geo.k:
                    return False
                trusted = {i: c for i, c in avail.items() if i not in untrusted}
                if len(trusted) >= geo.k:
                    avail = trusted
                # every chunk read passed its CRC: a moved shard's chunks are copied, lost ones recomputed
                want = [i for i in writers if i not in avail]
                blen = block_len(rec.length, geo.block_size, b0 + j)
                rebuilt = await trio.to_thread.run_sync(rebuild_chunks, geo, avail, blen, want) if want else {}
                for i in writers:
                    out[i].append(rebuilt[i] if i in rebuilt else avail[i])
            for i, chunks in out.items():
                w, d = writers[i], targets[i]

                def append(w: ShardWriter = w, chunks: list[bytes] = chunks) -> None:
                    for c in chunks:
                        w.append(c)

                try:
                    await trio.to_thread.run_sync(append, limiter=d.limiter)
                except OSError as exc:
                    log.warning("heal %s: writing shard %d on %s failed: %s", rec.segment_id, i, d.disk_id, exc)
                    self._write_failed(d, exc, res)
                    await trio.to_thread.run_sync(w.discard)
                    del writers[i]
                    del targets[i]
                    res.pending.append(i)
            if throttle is not None:
                await throttle(nbytes)
        return True

    async def _seal(self, rec: SegmentRecord, targets: dict[int, Disk], writers: dict[int, ShardWriter],
                    res: RepairResult) -> dict[int, Disk]:
        sealed: dict[int, Disk] = {}
        for i, w in list(writers.items()):
            d = targets[i]
            path = d.shard_path(rec.segment_id, i)

            def work(w: ShardWriter = w, path: str = path) -> None:
                try:
                    w.seal(path, w.header)
                except IsADirectoryError:
                    # a directory where the shard file belongs (a damaged shard): an empty one
                    # holds nothing and gives way; one that holds anything stays (ENOTEMPTY)
                    # and the shard goes to another disk
                    os.rmdir(path)
                    os.rename(w.tmp_path, path)
                fsync_dir(path.rsplit("/", 1)[0])

            try:
                await trio.to_thread.run_sync(work, limiter=d.limiter)
                sealed[i] = d
            except OSError as exc:
                log.warning("heal %s: sealing shard %d on %s failed: %s", rec.segment_id, i, d.disk_id, exc)
                self._write_failed(d, exc, res)
                await trio.to_thread.run_sync(w.discard)
                res.pending.append(i)
        return sealed

    @staticmethod
    def _write_failed(d: Disk, exc: OSError, res: RepairResult) -> None:
        d.record_write_error(exc)  # out of space: not counted against the disk's health
        if is_full(exc):
            res.full.add(d.disk_id)

    async def _discard(self, targets: dict[int, Disk], writers: dict[int, ShardWriter]) -> None:
        for i, w in writers.items():
            await trio.to_thread.run_sync(w.discard, limiter=targets[i].limiter)

    async def _commit(self, rec: SegmentRecord, sealed: dict[int, Disk], res: RepairResult,
                      linger: list[tuple[int, Disk]] | None = None) -> None:
        store = self.store
        stale: list[str] = []  # shard files to delete after the commit
        dead: list[tuple[Disk, list[int]]] = []  # packed records replaced: marked dead after it
        async with store.lock:
            cur = store.db.get_record(SegmentRecord, keys.segment(rec.segment_id))
            b = store.db.batch()
            if cur is None:
                res.gone = True
                for i, d in sealed.items():
                    stale.append(d.shard_path(rec.segment_id, i))
            else:
                if cur.enc != rec.enc:  # rotate-master re-wrapped the data key meanwhile
                    await self._update_envelope(rec, sealed, cur.enc)
                for i, d in sealed.items():
                    if cur.shards[i] != rec.shards[i]:  # placement changed under us: ours is surplus
                        if d.disk_id != cur.shards[i]:
                            stale.append(d.shard_path(rec.segment_id, i))
                        continue
                    old = store.disks.get(cur.shards[i])
                    place = cur.pack_of(i)
                    if place is not None:
                        # the rebuilt shard is a file; the record stays readable (a read in
                        # progress checks only its segment id) until the compactor, which
                        # waits for open reads, removes its volume
                        if old is not None:
                            dead.append((old, place))
                        cur.set_pack(i, None)
                    elif old is not None and old.disk_id != d.disk_id:
                        if linger is not None and old.readable and store.open_reads[rec.segment_id]:
                            linger.append((i, old))
                        else:
                            stale.append(old.shard_path(rec.segment_id, i))
                    if cur.shards[i] != d.disk_id:
                        res.moved.append(i)
                    cur.shards[i] = d.disk_id
                    res.rebuilt.append(i)
                    res.placed[i] = d.disk_id
                cur.damaged = sorted(set(cur.damaged) - set(res.rebuilt))
                b.put(keys.segment(rec.segment_id), cur)
                if res.pending:
                    b.put(keys.heal(rec.segment_id),
                          HealEntry(rec.segment_id, time.time_ns(), sorted(res.pending), "rebuild pending"))
                else:
                    b.delete(keys.heal(rec.segment_id))
                b.delete(LostSegment.key(rec.segment_id))
            await store.db.commit(b, sync=True)
        crash_point("heal.committed")
        self._forget_lost(rec.segment_id)
        for path in stale:
            await self._unlink(path)
        for disk, place in dead:
            await self._mark_dead(disk, place)
        store.seg.dead_marks += len(dead)
        if res.rebuilt:
            log.info("healed segment %s: rebuilt shards %s (%d moved)%s", rec.segment_id, res.rebuilt,
                     len(res.moved), f", pending {res.pending}" if res.pending else "")

    @staticmethod
    async def _update_envelope(rec: SegmentRecord, sealed: dict[int, Disk], enc: dict[str, Any] | None) -> None:
        for i, d in sealed.items():
            path = d.shard_path(rec.segment_id, i)

            def work(path: str = path) -> None:
                hdr = read_header(path)
                hdr.enc = enc
                rewrite_header(path, hdr)

            try:
                await trio.to_thread.run_sync(work, limiter=d.limiter)
            except (OSError, FormatError) as exc:  # the other shards carry the new envelope
                log.warning("heal %s: updating the envelope of shard %d failed: %s", rec.segment_id, i, exc)

    @staticmethod
    async def _mark_dead(disk: Disk, place: list[int]) -> None:
        try:
            with trio.move_on_after(30):
                await trio.to_thread.run_sync(mark_dead, volume_path(disk.path, place[0]), place[1],
                                              abandon_on_cancel=True)
        except OSError:
            pass  # the disk is gone; its volumes go with it

    @staticmethod
    async def _unlink(path: str) -> None:
        def work() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

        try:
            with trio.move_on_after(30):
                await trio.to_thread.run_sync(work, abandon_on_cancel=True)
        except OSError:
            pass  # the disk is gone; its files go with it

    async def _clear_entry(self, segment_id: str) -> None:
        if self.store.db.get(keys.heal(segment_id)) is not None:
            b = self.store.db.batch()
            b.delete(keys.heal(segment_id))
            await self.store.db.commit(b, sync=False)

    async def _keep_entry(self, segment_id: str, pending: list[int], reason: str) -> None:
        b = self.store.db.batch()
        b.put(keys.heal(segment_id), HealEntry(segment_id, time.time_ns(), sorted(pending), reason))
        await self.store.db.commit(b, sync=False)

    # --- unrecoverable -----------------------------------------------------------------------

    async def _unrecoverable(self, rec: SegmentRecord, bad: set[int]) -> RepairResult:
        refs = await trio.to_thread.run_sync(self.objects_of, rec.segment_id)
        entry = LostSegment(rec.segment_id, time.time_ns(), sorted(bad), rec.k, rec.m, refs)
        b = self.store.db.batch()
        b.put(LostSegment.key(rec.segment_id), entry.encode())
        b.delete(keys.heal(rec.segment_id))
        await self.store.db.commit(b, sync=True)
        log.error("segment %s is unrecoverable (fewer than %d readable chunks); objects: %s", rec.segment_id,
                  rec.k, ", ".join(describe_ref(r) for r in refs) or "none")
        self.on_lost_change()
        return RepairResult(rec.segment_id, unrecoverable=True, pending=sorted(bad))

    def _forget_lost(self, segment_id: str) -> None:
        if self.store.db.get(LostSegment.key(segment_id)) is not None:
            b = self.store.db.batch()
            b.delete(LostSegment.key(segment_id))
            self.store.db.commit_now(b, sync=False)
            self.on_lost_change()
