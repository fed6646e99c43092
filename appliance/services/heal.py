"""The healer: rebuild missing or corrupt shards of a segment and bring it back to full redundancy.

What needs healing:
- segments in the heal queue (H keys): a read or the scrubber found damaged chunks;
- segments with a shard on a disk that is failed, offline, removed or unknown, or with a None
  shard (written degraded, or lost earlier);
- segments with a shard on a draining disk (moved, not rebuilt: its verified chunks are copied).

Repairing one segment: read every shard batch by batch (any k verified chunks per block), rebuild
the wanted chunks (codec.rebuild_chunks), append them to a new shard file per wanted index
(temporary name, fsync, rename, directory fsync), then commit the new placement under the commit
lock with a synced batch, and only then delete the old file. A shard damaged on a disk that is
still writable is rebuilt in place (rename over the old file); otherwise it goes to a writable
disk of the pool that holds no other shard of the segment, chosen with weight = free space. The
new file keeps the header identity of the survivors, so `recover-metadata` still sees who wrote it.

A segment with fewer than k verified chunks in some block is unrecoverable: it is recorded under
`X lost/<segment id>` with the objects (bucket/key/version) that reference it, listed in
`daemon.state["heal"]["unrecoverable"]` and by `stowage heal` — never silently dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from appliance.engine import keys
from appliance.engine.codec import Geometry, rebuild_chunks
from appliance.engine.disks import Disk
from appliance.engine.records import HealEntry, ObjectVersion, PartRecord, SegmentRecord
from appliance.engine.segments import READ_BATCH_BYTES
from appliance.engine.shardfile import ShardHeader, ShardWriter, block_len, read_header
from appliance.engine.storecore import StoreCore
from diskmgr.durable import fsync_dir
from diskmgr.state import LOST, MOVING

log = logging.getLogger("stowage.heal")

LOST_STATES = LOST  # the disk's shards must be rebuilt elsewhere
MOVE_STATES = MOVING  # the disk's shards are readable but must move elsewhere
QUEUE_POLL_SECONDS = 5.0
FULL_SCAN_SECONDS = 300.0  # safety net: look at every segment record this often
LOST_PREFIX = "lost/"

Throttle = Callable[[int], Awaitable[None]]


@dataclass
class RepairResult:
    segment_id: str
    rebuilt: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)  # rebuilt onto another disk
    pending: list[int] = field(default_factory=list)  # could not be placed (no target disk, I/O error)
    unrecoverable: bool = False
    gone: bool = False  # the segment was collected meanwhile


def weighted_pick(disks: list[Disk], exclude: set[str]) -> Disk | None:
    """A writable disk not in `exclude`, chosen with probability proportional to free space."""
    best: tuple[float, Disk] | None = None
    for d in disks:
        if not d.writable or d.disk_id in exclude:
            continue
        free = d.free_bytes()
        if free <= 0:
            continue
        key = random.random() ** (1.0 / free)
        if best is None or key > best[0]:
            best = (key, d)
    return best[1] if best else None


def objects_of(db: Any, segment_id: str) -> list[dict[str, Any]]:
    """Every object version and multipart part that references a segment (blocking: full scan)."""
    found: list[dict[str, Any]] = []
    for _, raw in db.scan(keys.VERSION):
        v = ObjectVersion.decode(raw)
        if any(s.segment_id == segment_id for s in v.segments):
            found.append({"bucket": v.bucket, "key": v.key, "version_id": v.version_id})
    for k, raw in db.scan(keys.PART):
        p = PartRecord.decode(raw)
        if any(s.segment_id == segment_id for s in p.segments):
            upload_id = k[1:].split(keys.SEP, 1)[0].decode()
            found.append({"upload_id": upload_id, "part": p.part_number})
    return found


class Healer:
    def __init__(self, store: StoreCore, state: dict[str, Any] | None = None) -> None:
        self.store = store
        self.state: dict[str, Any] = state if state is not None else {}
        self.state.update(running=False, total=0, done=0, rebuilt_shards=0, moved_shards=0, pending=0,
                          unrecoverable=[], passes=0, last_pass_ns=0)
        self._wake = trio.Event()
        self._full_scan = True  # at start-up: look at everything once
        self._last_full = 0.0
        self._locks: dict[str, trio.Lock] = {}
        # segments that could not be placed, with the writable disks at the time: retried only
        # when that set changes, so a pool short of disks is not re-read every few seconds
        self._blocked: dict[str, frozenset[str]] = {}
        self.passes_started = 0
        self.passes_done = 0
        self._pass_done = trio.Event()
        self._refresh_lost()

    # --- what needs work ---------------------------------------------------------------------

    def forced(self, rec: SegmentRecord) -> dict[int, str]:
        """Shard indices that must be rebuilt/moved whatever their content (index -> reason)."""
        out: dict[int, str] = {}
        for i, disk_id in enumerate(rec.shards):
            if disk_id is None:
                out[i] = "missing"
                continue
            d = self.store.disks.get(disk_id)
            if d is None:
                out[i] = f"disk {disk_id} unknown"
            elif d.state in LOST_STATES or d.state in MOVE_STATES:
                out[i] = f"disk {disk_id} {d.state}"
        for i in rec.damaged:
            out.setdefault(i, "damaged")
        return out

    def request(self, full_scan: bool = False) -> None:
        """Wake the healer (after a disk failed, or for `stowage heal`)."""
        if full_scan:
            self._full_scan = True
        self._wake.set()

    async def wait_pass(self, emit: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> None:
        """Wait until a pass that started after this call has finished, emitting progress."""
        target = self.passes_started + 1
        while self.passes_done < target:
            with trio.move_on_after(0.5):
                await self._pass_done.wait()
            if emit is not None:
                await emit(self.progress())

    def progress(self) -> dict[str, Any]:
        return {k: v for k, v in self.state.items()}

    # --- verification ------------------------------------------------------------------------

    async def verify(self, rec: SegmentRecord, throttle: Throttle | None = None) -> tuple[set[int], bool]:
        """Read and check every chunk: (shard indices with any bad chunk, recoverable)."""
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
        return bad, recoverable

    # --- repair ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock(self, segment_id: str) -> AsyncIterator[None]:
        """One repair per segment at a time (scrubber, healer and drain may meet on one)."""
        lock = self._locks.get(segment_id)
        if lock is None:
            lock = self._locks[segment_id] = trio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(segment_id, None)  # keep the table small on a full scrub

    def _writable_set(self) -> frozenset[str]:
        return frozenset(d.disk_id for d in self.store.disks if d.writable)

    async def heal_segment(self, segment_id: str, extra: set[int] | None = None,
                           throttle: Throttle | None = None, prefer: Disk | None = None) -> RepairResult | None:
        """Verify a segment and repair whatever is wrong. None: nothing to do."""
        async with self._lock(segment_id):
            rec = self.store.db.get_record(SegmentRecord, keys.segment(segment_id))
            if rec is None or rec.refcount == 0:
                await self._clear_entry(segment_id)
                return None
            bad, recoverable = await self.verify(rec, throttle)
            bad |= set(self.forced(rec)) | (extra or set())
            if not bad:
                await self._clear_entry(segment_id)
                self._forget_lost(segment_id)
                return None
            if not recoverable:
                return await self._unrecoverable(rec, bad)
            return await self._repair_locked(rec, bad, throttle, prefer)

    async def move_shards(self, segment_id: str, indices: set[int], prefer: Disk | None = None) -> RepairResult | None:
        """Move (copy verified chunks, rebuild the rest) the given shards to other disks."""
        async with self._lock(segment_id):
            rec = self.store.db.get_record(SegmentRecord, keys.segment(segment_id))
            if rec is None:
                return None
            wanted = {i for i in indices if i < len(rec.shards)} | set(self.forced(rec))
            if not wanted:
                return None
            return await self._repair_locked(rec, wanted, None, prefer)

    def _choose_target(self, rec: SegmentRecord, i: int, chosen: dict[int, Disk], prefer: Disk | None) -> Disk | None:
        cur = self.store.disks.get(rec.shards[i])
        forced = self.forced(rec)
        if cur is not None and cur.writable and i not in forced and prefer is None:
            return cur  # content damage on a healthy disk: rebuild in place
        holders = {d for j, d in enumerate(rec.shards) if d is not None and j != i} | {
            d.disk_id for d in chosen.values()}
        if cur is not None:
            holders.add(cur.disk_id)
        if prefer is not None and prefer.writable and prefer.disk_id not in holders:
            return prefer
        target = weighted_pick(self.store.disks.pool(rec.pool), holders)
        if target is None and cur is not None and cur.writable and i not in forced:
            return cur
        return target

    async def _template(self, rec: SegmentRecord, bad: set[int]) -> ShardHeader:
        """A header of a surviving shard (keeps the object identity for metadata recovery)."""
        for i, disk_id in enumerate(rec.shards):
            d = self.store.disks.get(disk_id)
            if d is None or not d.readable or i in bad:
                continue
            try:
                hdr = await trio.to_thread.run_sync(read_header, d.shard_path(rec.segment_id, i), limiter=d.limiter)
            except (OSError, ValueError, Exception):
                continue
            if hdr.segment_id == rec.segment_id:
                return hdr
        return ShardHeader(rec.segment_id, 0, rec.k, rec.m, rec.block_size, rec.length, rec.created_ns,
                           self.store.db.appliance_id, {})

    async def _repair_locked(self, rec: SegmentRecord, bad: set[int], throttle: Throttle | None,
                             prefer: Disk | None) -> RepairResult:
        res = RepairResult(rec.segment_id)
        geo = Geometry(rec.k, rec.m, rec.block_size)
        targets: dict[int, Disk] = {}
        for i in sorted(bad):
            t = self._choose_target(rec, i, targets, prefer)
            if t is None:
                res.pending.append(i)
            else:
                targets[i] = t
        if not targets:
            await self._keep_entry(rec.segment_id, res.pending, "no disk to rebuild on")
            return res
        tmpl = await self._template(rec, bad)
        writers: dict[int, ShardWriter] = {}

        async def open_writer(i: int, d: Disk) -> None:
            hdr = ShardHeader(rec.segment_id, i, rec.k, rec.m, rec.block_size, rec.length, tmpl.created_ns,
                              tmpl.appliance_id or self.store.db.appliance_id, dict(tmpl.identity))
            try:
                writers[i] = await trio.to_thread.run_sync(ShardWriter, d.tmp_path(rec.segment_id, i), hdr,
                                                           limiter=d.limiter)
            except OSError as exc:
                log.warning("heal %s: cannot write shard %d on %s: %s", rec.segment_id, i, d.disk_id, exc)
                d.record_error()
                res.pending.append(i)

        for i, d in list(targets.items()):
            await open_writer(i, d)
        targets = {i: d for i, d in targets.items() if i in writers}
        try:
            ok = await self._copy_blocks(rec, geo, targets, writers, res, throttle)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._discard(targets, writers)
            raise
        if not ok:
            await self._discard(targets, writers)
            return await self._unrecoverable(rec, bad)
        sealed = await self._seal(rec, targets, writers, tmpl, res)
        await self._commit(rec, sealed, res)
        return res

    async def _copy_blocks(self, rec: SegmentRecord, geo: Geometry, targets: dict[int, Disk],
                           writers: dict[int, ShardWriter], res: RepairResult, throttle: Throttle | None) -> bool:
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
                    d.record_error()
                    await trio.to_thread.run_sync(w.discard)
                    del writers[i]
                    del targets[i]
                    res.pending.append(i)
            if throttle is not None:
                await throttle(nbytes)
        return True

    async def _seal(self, rec: SegmentRecord, targets: dict[int, Disk], writers: dict[int, ShardWriter],
                    tmpl: ShardHeader, res: RepairResult) -> dict[int, Disk]:
        sealed: dict[int, Disk] = {}
        for i, w in list(writers.items()):
            d = targets[i]
            path = d.shard_path(rec.segment_id, i)

            def work(w: ShardWriter = w, path: str = path) -> None:
                w.seal(path, w.header)
                fsync_dir(path.rsplit("/", 1)[0])

            try:
                await trio.to_thread.run_sync(work, limiter=d.limiter)
                sealed[i] = d
            except OSError as exc:
                log.warning("heal %s: sealing shard %d on %s failed: %s", rec.segment_id, i, d.disk_id, exc)
                d.record_error()
                await trio.to_thread.run_sync(w.discard)
                res.pending.append(i)
        return sealed

    async def _discard(self, targets: dict[int, Disk], writers: dict[int, ShardWriter]) -> None:
        for i, w in writers.items():
            await trio.to_thread.run_sync(w.discard, limiter=targets[i].limiter)

    async def _commit(self, rec: SegmentRecord, sealed: dict[int, Disk], res: RepairResult) -> None:
        store = self.store
        stale: list[tuple[Disk, str]] = []  # files to delete after the commit
        async with store.lock:
            cur = store.db.get_record(SegmentRecord, keys.segment(rec.segment_id))
            b = store.db.batch()
            if cur is None:
                res.gone = True
                for i, d in sealed.items():
                    stale.append((d, d.shard_path(rec.segment_id, i)))
            else:
                for i, d in sealed.items():
                    if cur.shards[i] != rec.shards[i]:  # placement changed under us: ours is surplus
                        if d.disk_id != cur.shards[i]:
                            stale.append((d, d.shard_path(rec.segment_id, i)))
                        continue
                    old = store.disks.get(cur.shards[i])
                    if old is not None and old.disk_id != d.disk_id:
                        stale.append((old, old.shard_path(rec.segment_id, i)))
                    if cur.shards[i] != d.disk_id:
                        res.moved.append(i)
                    cur.shards[i] = d.disk_id
                    res.rebuilt.append(i)
                cur.damaged = sorted(set(cur.damaged) - set(res.rebuilt))
                b.put(keys.segment(rec.segment_id), cur)
                if res.pending:
                    b.put(keys.heal(rec.segment_id),
                          HealEntry(rec.segment_id, time.time_ns(), sorted(res.pending), "rebuild pending"))
                else:
                    b.delete(keys.heal(rec.segment_id))
                b.delete(keys.progress(LOST_PREFIX + rec.segment_id))
            await store.db.commit(b, sync=True)
        self._forget_lost(rec.segment_id)
        for d, path in stale:
            await self._unlink(d, path)
        self.state["rebuilt_shards"] = self.state.get("rebuilt_shards", 0) + len(res.rebuilt)
        self.state["moved_shards"] = self.state.get("moved_shards", 0) + len(res.moved)
        if res.rebuilt:
            log.info("healed segment %s: rebuilt shards %s (%d moved)%s", rec.segment_id, res.rebuilt,
                     len(res.moved), f", pending {res.pending}" if res.pending else "")

    @staticmethod
    async def _unlink(d: Disk, path: str) -> None:
        def work() -> None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

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
        refs = await trio.to_thread.run_sync(objects_of, self.store.db, rec.segment_id)
        entry = {"segment_id": rec.segment_id, "found_ns": time.time_ns(), "bad_shards": sorted(bad),
                 "k": rec.k, "m": rec.m, "objects": refs}
        b = self.store.db.batch()
        b.put(keys.progress(LOST_PREFIX + rec.segment_id), json.dumps(entry).encode())
        b.delete(keys.heal(rec.segment_id))
        await self.store.db.commit(b, sync=True)
        log.error("segment %s is unrecoverable (fewer than %d readable chunks); objects: %s", rec.segment_id,
                  rec.k, ", ".join(describe_ref(r) for r in refs) or "none")
        self._refresh_lost()
        return RepairResult(rec.segment_id, unrecoverable=True, pending=sorted(bad))

    def lost(self) -> list[dict[str, Any]]:
        return [json.loads(v) for _, v in self.store.db.scan(keys.progress(LOST_PREFIX))]

    def _refresh_lost(self) -> None:
        self.state["unrecoverable"] = [describe_ref(r) for e in self.lost() for r in e.get("objects", [])] or [
            f"segment {e['segment_id']} (no object references it)" for e in self.lost()]

    def _forget_lost(self, segment_id: str) -> None:
        if self.store.db.get(keys.progress(LOST_PREFIX + segment_id)) is not None:
            b = self.store.db.batch()
            b.delete(keys.progress(LOST_PREFIX + segment_id))
            self.store.db.commit_now(b, sync=False)
            self._refresh_lost()

    # --- the service -------------------------------------------------------------------------

    def _work_list(self, full: bool) -> list[str]:
        """Segment ids to look at: the heal queue, plus every degraded record on a full scan."""
        ids = [k[1:].decode() for k, _ in self.store.db.scan(keys.HEAL)]
        if full:
            seen = set(ids)
            for _, raw in self.store.db.scan(keys.SEGMENT):
                rec = SegmentRecord.decode(raw)
                if rec.segment_id not in seen and rec.refcount > 0 and self.forced(rec):
                    ids.append(rec.segment_id)
                    seen.add(rec.segment_id)
        return ids

    async def run_pass(self) -> None:
        full = self._full_scan or time.monotonic() - self._last_full > FULL_SCAN_SECONDS
        self._full_scan = False
        self.passes_started += 1
        try:
            ids = await trio.to_thread.run_sync(self._work_list, full)
            if full:
                self._last_full = time.monotonic()
            self.state.update(running=bool(ids), total=len(ids), done=0)
            writable = self._writable_set()
            for seg_id in ids:
                if self._blocked.get(seg_id) == writable and not full:
                    self.state["done"] += 1
                    continue
                self._blocked.pop(seg_id, None)
                try:
                    res = await self.heal_segment(seg_id)
                    if res is not None and res.pending and not res.unrecoverable:
                        self._blocked[seg_id] = writable
                except Exception as exc:
                    log.exception("healing segment %s failed; will retry", seg_id)
                    self.state["last_error"] = f"{seg_id}: {exc}"
                self.state["done"] += 1
            self.state["pending"] = await trio.to_thread.run_sync(
                lambda: sum(1 for _ in self.store.db.scan(keys.HEAL)))
        finally:
            self.state.update(running=False, last_pass_ns=time.time_ns(), passes=self.passes_done + 1)
            self.passes_done += 1
            self._pass_done.set()
            self._pass_done = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                await self.run_pass()
            except Exception:
                log.exception("heal pass failed; retrying later")
            with trio.move_on_after(QUEUE_POLL_SECONDS):
                await self._wake.wait()
            self._wake = trio.Event()


def describe_ref(r: dict[str, Any]) -> str:
    if "bucket" in r:
        v = r.get("version_id")
        return f"{r['bucket']}/{r['key']}" + (f" (version {v})" if v and v != "null" else "")
    return f"multipart upload {r.get('upload_id')} part {r.get('part')}"
