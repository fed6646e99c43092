"""The scrubber: read and verify every chunk of every segment, at a bounded rate, and repair.

A pass walks the segment records (S keys) in key order. Each segment is verified chunk by chunk
(CRC32C) through the healer, which repairs whatever is damaged or misplaced. The bytes read are
charged to a token bucket at `scrub.rate_bytes_per_sec`, so a pass never takes the disks from
the clients. The cursor (progress.ScrubCursor: last segment id done, counters) is saved under
`X scrub` every few seconds, so a restarted daemon resumes the pass where it stopped instead of
starting over. Segments with a shard on a spun-down disk (`Disk.asleep`, an archive pool that
spins down) are skipped, counted in `asleep_skipped`: a pass when the disks are awake verifies them.

Background passes start every `scrub.interval_hours` (when `scrub.enabled`). `request_pass()`
(`stowage scrub`) cancels a background pass in progress and starts a full pass from the start.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import trio

from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import SCRUB_CURSOR, ScrubCursor
from appliance.engine.records import SegmentRecord

from .heal import Healer
from .loop import Emit, Json, Passes, Wakeup, run_periodically

log = logging.getLogger("stowage.scrub")

SAVE_EVERY_SECONDS = 2.0
IDLE_CHECK_SECONDS = 60.0
BATCH = 256  # segment ids read from the DB at a time


class TokenBucket:
    """Allow `rate` units per second on average, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = max(self.rate, 1.0)
        self.tokens = self.capacity
        self.last = trio.current_time()

    async def take(self, n: int) -> None:
        now = trio.current_time()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= n
        if self.tokens < 0:
            await trio.sleep(-self.tokens / self.rate)


@dataclass
class ScrubProgress:
    cursor: ScrubCursor  # a copy, as of the last publication
    rate_bytes_per_sec: int
    running: bool = False
    asleep_skipped: int = 0  # segments of the current/last pass left for a pass when their disks are awake

    def to_json(self) -> Json:
        return {**self.cursor.to_json(), "rate_bytes_per_sec": self.rate_bytes_per_sec, "running": self.running,
                "asleep_skipped": self.asleep_skipped}


class Scrubber:
    def __init__(self, store: ObjectStore, healer: Healer) -> None:
        self.store = store
        self.healer = healer
        self.cfg = store.cfg.scrub
        self.cur = store.load_progress(ScrubCursor, SCRUB_CURSOR) or ScrubCursor()
        self.passes = Passes()
        self._requested = False
        self._wakeup = Wakeup()
        self._scope: trio.CancelScope | None = None
        self._asleep_skipped = 0
        self.progress = ScrubProgress(replace(self.cur), self.cfg.rate_bytes_per_sec)

    def _publish(self, running: bool) -> None:
        self.progress = ScrubProgress(replace(self.cur), self.cfg.rate_bytes_per_sec, running, self._asleep_skipped)

    def _wakes_a_disk(self, rec: SegmentRecord) -> bool:
        """Would verifying the segment spin up a sleeping disk (an archive pool's)?"""
        return any((d := self.store.disks.get(disk_id)) is not None and d.asleep
                   for disk_id in rec.shards if disk_id is not None)

    def request_pass(self) -> int:
        """Start a full pass now (cancelling a background one). Returns the pass number to wait for."""
        self._requested = True
        if self._scope is not None:
            self._scope.cancel()
        self._wakeup.set()
        return self.passes.started + 1

    async def wait_pass(self, number: int, emit: Emit | None = None) -> None:
        await self.passes.wait_for(number, emit, lambda: self.progress.to_json())

    def _due(self) -> bool:
        if self._requested:
            return True
        if self.cur.pass_started_ns:
            return self.cfg.enabled  # resume an interrupted pass
        if not self.cfg.enabled:
            return False
        return time.time_ns() - self.cur.last_complete_ns >= self.cfg.interval_hours * 3600e9

    def _save(self, sync: bool = False) -> None:
        self.store.save_progress(SCRUB_CURSOR, self.cur, sync)

    async def run_pass(self, fresh: bool) -> None:
        """One pass over all segments (from the saved cursor unless `fresh`)."""
        if fresh or not self.cur.pass_started_ns:
            self.cur = ScrubCursor(last_complete_ns=self.cur.last_complete_ns, pass_started_ns=time.time_ns())
            log.info("scrub pass started")
        else:
            log.info("scrub pass resumed after segment %s", self.cur.cursor)
        bucket = TokenBucket(self.cfg.rate_bytes_per_sec)
        self._asleep_skipped = 0

        async def throttle(n: int) -> None:
            self.cur.bytes_read += n
            await bucket.take(n)

        self._publish(running=True)
        last_save = time.monotonic()
        while True:
            ids = await trio.to_thread.run_sync(self.store.segment_ids_after, self.cur.cursor, BATCH)
            if not ids:
                break
            for seg_id in ids:
                rec = self.store.find_segment(seg_id)
                if rec is not None and rec.refcount > 0 and self._wakes_a_disk(rec):
                    self._asleep_skipped += 1  # left asleep: verified by a pass when they are awake
                elif rec is not None and rec.refcount > 0:
                    try:
                        res = await self.healer.heal_segment(seg_id, throttle=throttle)
                    except Exception:
                        log.exception("scrub: segment %s could not be checked; continuing", seg_id)
                        res = None
                    if res is not None:
                        self.cur.found += 1
                        if res.unrecoverable:
                            self.cur.unrecoverable += 1
                        elif res.rebuilt and not res.pending:
                            self.cur.repaired += 1
                    self.cur.segments += 1
                self.cur.cursor = seg_id
                if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                    await trio.to_thread.run_sync(self._save)
                    last_save = time.monotonic()
                self._publish(running=True)
        self.cur.cursor = ""
        self.cur.pass_started_ns = 0
        self.cur.last_complete_ns = time.time_ns()
        await trio.to_thread.run_sync(self._save, True)
        self._publish(running=False)
        log.info("scrub pass complete: %d segments, %d bytes read, %d damaged, %d repaired, %d unrecoverable",
                 self.cur.segments, self.cur.bytes_read, self.cur.found, self.cur.repaired, self.cur.unrecoverable)

    async def _pass_if_due(self) -> None:
        if not self._due():
            return
        fresh = self._requested
        self._requested = False
        self.passes.begin()
        scope = self._scope = trio.CancelScope()
        try:
            with scope:
                await self.run_pass(fresh)
        finally:
            self._scope = None
            if scope.cancelled_caught:
                self._save()  # a newer request interrupted this pass
            self.passes.end()
            self._publish(running=False)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await run_periodically(self._pass_if_due, lambda: IDLE_CHECK_SECONDS, log=log, what="scrub pass",
                                   wakeup=self._wakeup, task_status=task_status)
        finally:
            try:  # a blocking call: cancellation cannot interrupt it
                self._save(sync=True)
            except Exception:
                log.exception("could not save the scrub cursor")
