"""The healer: bring damaged segments back to full redundancy, in passes.

What a pass looks at: the heal queue (H keys: a read or the scrubber found damaged chunks),
and on a full scan (at start-up, when a disk failed or came back, for `stowage heal`, and every
FULL_SCAN_SECONDS as a safety net) every segment with a shard to replace: a None shard, a shard
on a failed, offline, removed, unknown or draining disk. Each segment is verified and repaired
by the engine (appliance/engine/repair.py). A segment that could not be placed (no writable
disk for it) is not read again until the set of writable disks changes.

Unrecoverable segments (fewer than k readable chunks) are kept by the engine as lost entries;
the objects they held are listed in the healer's progress (`unrecoverable`, shown by `stowage
status`) and by `stowage heal` — never silently dropped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import trio

from appliance.engine.disks import Disk
from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import LostSegment, describe_ref
from appliance.engine.repair import RepairResult, SegmentRepair, Throttle

from .loop import Emit, Json, Passes, Wakeup, run_periodically

log = logging.getLogger("stowage.heal")

QUEUE_POLL_SECONDS = 5.0
FULL_SCAN_SECONDS = 300.0  # safety net: look at every segment record this often


@dataclass
class HealProgress:
    running: bool = False
    total: int = 0  # segments to look at in the current/last pass
    done: int = 0
    rebuilt_shards: int = 0  # since the daemon started
    moved_shards: int = 0
    pending: int = 0  # heal queue entries left after the last pass
    unrecoverable: list[str] = field(default_factory=list)  # what the lost segments held
    passes: int = 0
    last_pass_ns: int = 0
    last_error: str | None = None

    def to_json(self) -> Json:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Healer:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.repair = SegmentRepair(store, on_lost_change=self._refresh_lost)
        self.progress = HealProgress()
        self.passes = Passes()
        self._wakeup = Wakeup()
        self._full_scan = True  # at start-up: look at everything once
        self._last_full = 0.0
        # segments that could not be placed, with the writable disks at the time: retried only
        # when that set changes, so a pool short of disks is not re-read every few seconds
        self._blocked: dict[str, frozenset[str]] = {}
        self._refresh_lost()

    def request(self, full_scan: bool = False) -> None:
        """Wake the healer (after a disk failed, or for `stowage heal`)."""
        if full_scan:
            self._full_scan = True
        self._wakeup.set()

    async def wait_pass(self, emit: Emit | None = None) -> None:
        """Wait until a pass that started after this call has finished, emitting progress."""
        await self.passes.wait_for(self.passes.started + 1, emit, self.progress.to_json)

    def lost(self) -> list[LostSegment]:
        return self.repair.lost()

    def _refresh_lost(self) -> None:
        lost = self.lost()
        self.progress.unrecoverable = [describe_ref(r) for e in lost for r in e.objects] or [
            f"segment {e.segment_id} (no object references it)" for e in lost]

    def _tally(self, res: RepairResult | None) -> RepairResult | None:
        if res is not None:
            self.progress.rebuilt_shards += len(res.rebuilt)
            self.progress.moved_shards += len(res.moved)
        return res

    async def heal_segment(self, segment_id: str, extra: set[int] | None = None, throttle: Throttle | None = None,
                           prefer: Disk | None = None) -> RepairResult | None:
        """Verify a segment and repair whatever is wrong. None: nothing to do."""
        return self._tally(await self.repair.check(segment_id, extra, throttle, prefer))

    async def move_shards(self, segment_id: str, indices: set[int], prefer: Disk | None = None,
                          throttle: Throttle | None = None, linger: list[tuple[int, Disk]] | None = None
                          ) -> RepairResult | None:
        """Move (copy verified chunks, rebuild the rest) the given shards to other disks
        (`linger`: see SegmentRepair.move)."""
        return self._tally(await self.repair.move(segment_id, indices, prefer, throttle, linger))

    def _writable_set(self) -> frozenset[str]:
        return frozenset(d.disk_id for d in self.store.disks if d.writable)

    def _work_list(self, full: bool) -> list[str]:
        """Segment ids to look at: the heal queue, plus every degraded record on a full scan."""
        ids = self.repair.queued()
        if full:
            ids += self.repair.degraded(exclude=set(ids))
        return ids

    async def run_pass(self) -> None:
        full = self._full_scan or time.monotonic() - self._last_full > FULL_SCAN_SECONDS
        self._full_scan = False
        self.passes.begin()
        p = self.progress
        try:
            ids = await trio.to_thread.run_sync(self._work_list, full)
            if full:
                self._last_full = time.monotonic()
            p.running, p.total, p.done = bool(ids), len(ids), 0
            writable = self._writable_set()
            for seg_id in ids:
                if self._blocked.get(seg_id) == writable and not full:
                    p.done += 1
                    continue
                self._blocked.pop(seg_id, None)
                try:
                    res = await self.heal_segment(seg_id)
                    if res is not None and res.pending and not res.unrecoverable:
                        self._blocked[seg_id] = writable
                except Exception as exc:
                    log.exception("healing segment %s failed; will retry", seg_id)
                    p.last_error = f"{seg_id}: {exc}"
                p.done += 1
            p.pending = await trio.to_thread.run_sync(self.repair.queue_length)
        finally:
            p.running, p.last_pass_ns, p.passes = False, time.time_ns(), self.passes.done + 1
            self.passes.end()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await run_periodically(self.run_pass, lambda: QUEUE_POLL_SECONDS, log=log, what="heal pass",
                               wakeup=self._wakeup, task_status=task_status)
