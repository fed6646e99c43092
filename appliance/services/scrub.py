"""The scrubber: read and verify every chunk of every segment, at a bounded rate, and repair.

A pass walks the segment records (S keys) in key order. Each segment is verified chunk by chunk
(CRC32C) through the healer, which repairs whatever is damaged or misplaced. The bytes read are
charged to a token bucket at `scrub.rate_bytes_per_sec`, so a pass never takes the disks from
the clients. The cursor (last segment id done) is saved under `X scrub` every few seconds, so a
restarted daemon resumes the pass where it stopped instead of starting over.

Background passes start every `scrub.interval_hours` (when `scrub.enabled`). `request_pass()`
(`stowage scrub`) cancels a background pass in progress and starts a full pass from the start.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import trio

from appliance.engine import keys
from appliance.engine.records import SegmentRecord
from appliance.engine.storecore import StoreCore

from .heal import Healer

log = logging.getLogger("stowage.scrub")

CURSOR_KEY = keys.progress("scrub")
CURSOR_FORMAT = 1
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
class ScrubCursor:
    """Persisted pass state (format 1)."""

    cursor: str = ""  # last segment id verified in the current pass ("" = not started)
    pass_started_ns: int = 0  # 0: no pass in progress
    last_complete_ns: int = 0
    segments: int = 0
    bytes_read: int = 0
    found: int = 0  # segments with damage found in the current/last pass
    repaired: int = 0
    unrecoverable: int = 0

    def encode(self) -> bytes:
        return json.dumps({"format": CURSOR_FORMAT, **asdict(self)}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> ScrubCursor:
        if not raw:
            return cls()
        try:
            d = json.loads(raw)
        except ValueError:
            log.warning("scrub cursor damaged; starting a new pass")
            return cls()
        if d.get("format") != CURSOR_FORMAT:
            return cls()
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class Scrubber:
    def __init__(self, store: StoreCore, healer: Healer, state: dict[str, Any] | None = None) -> None:
        self.store = store
        self.healer = healer
        self.cfg = store.cfg.scrub
        self.state: dict[str, Any] = state if state is not None else {}
        self.cur = ScrubCursor.decode(store.db.get(CURSOR_KEY))
        self._requested = False
        self._wake = trio.Event()
        self._scope: trio.CancelScope | None = None
        self.passes_started = 0
        self.passes_done = 0
        self._pass_done = trio.Event()
        self._publish(running=False)

    def _publish(self, **extra: Any) -> None:
        self.state.update(asdict(self.cur), rate_bytes_per_sec=self.cfg.rate_bytes_per_sec, **extra)

    def request_pass(self) -> int:
        """Start a full pass now (cancelling a background one). Returns the pass number to wait for."""
        self._requested = True
        if self._scope is not None:
            self._scope.cancel()
        self._wake.set()
        return self.passes_started + 1

    async def wait_pass(self, number: int, emit: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> None:
        while self.passes_done < number:
            with trio.move_on_after(0.5):
                await self._pass_done.wait()
            if emit is not None:
                await emit(dict(self.state))

    def _due(self) -> bool:
        if self._requested:
            return True
        if self.cur.pass_started_ns:
            return self.cfg.enabled  # resume an interrupted pass
        if not self.cfg.enabled:
            return False
        return time.time_ns() - self.cur.last_complete_ns >= self.cfg.interval_hours * 3600e9

    def _save(self, sync: bool = False) -> None:
        b = self.store.db.batch()
        b.put(CURSOR_KEY, self.cur.encode())
        self.store.db.commit_now(b, sync=sync)

    def _next_ids(self, after: str) -> list[str]:
        start = keys.segment(after) + b"\x00" if after else keys.SEGMENT
        out: list[str] = []
        with self.store.db.iterator(start=start, stop=keys.prefix_successor(keys.SEGMENT)) as it:
            for k, _ in it:
                out.append(k[1:].decode())
                if len(out) >= BATCH:
                    break
        return out

    async def run_pass(self, fresh: bool) -> None:
        """One pass over all segments (from the saved cursor unless `fresh`)."""
        if fresh or not self.cur.pass_started_ns:
            self.cur = ScrubCursor(last_complete_ns=self.cur.last_complete_ns, pass_started_ns=time.time_ns())
            log.info("scrub pass started")
        else:
            log.info("scrub pass resumed after segment %s", self.cur.cursor)
        bucket = TokenBucket(self.cfg.rate_bytes_per_sec)

        async def throttle(n: int) -> None:
            self.cur.bytes_read += n
            await bucket.take(n)

        self._publish(running=True)
        last_save = time.monotonic()
        while True:
            ids = await trio.to_thread.run_sync(self._next_ids, self.cur.cursor)
            if not ids:
                break
            for seg_id in ids:
                rec = self.store.db.get_record(SegmentRecord, keys.segment(seg_id))
                if rec is not None and rec.refcount > 0:
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

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                if self._due():
                    fresh = self._requested
                    self._requested = False
                    self.passes_started += 1
                    with trio.CancelScope() as scope:
                        self._scope = scope
                        try:
                            await self.run_pass(fresh)
                        except Exception:
                            log.exception("scrub pass failed; retrying later")
                    self._scope = None
                    if scope.cancelled_caught:
                        self._save()  # a newer request interrupted this pass
                    self.passes_done += 1
                    self._pass_done.set()
                    self._pass_done = trio.Event()
                    self._publish(running=False)
                    continue
                with trio.move_on_after(IDLE_CHECK_SECONDS):
                    await self._wake.wait()
                self._wake = trio.Event()
        finally:
            with trio.CancelScope(shield=True):
                try:
                    self._save(sync=True)
                except Exception:
                    log.exception("could not save the scrub cursor")
