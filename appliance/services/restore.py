"""The restore worker: makes the copies RestoreObject asks for and drops them when they expire
(the mechanism is appliance/engine/restore.py and restorestore.py).

Queued restores are done oldest first, Expedited before Standard before Bulk, each no sooner
than `lifecycle.restore_min_seconds` after it was asked, paced by
`lifecycle.transition_bytes_per_second`. The queue is the restore records themselves, so a
restart resumes it.
"""

from __future__ import annotations

import logging
import time

import trio

from appliance.config import Config
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import RestoreRecord
from appliance.engine.restore import TIERS

from .lifecycle import Pace
from .loop import Json, Wakeup, run_periodically

log = logging.getLogger("stowage.restore")
NS = 1_000_000_000


class RestoreWorker:
    def __init__(self, store: ObjectStore, cfg: Config) -> None:
        self.store = store
        self.cfg = cfg.lifecycle
        self.wakeup = Wakeup()
        self.bytes = Pace(float(self.cfg.transition_bytes_per_second))
        self.queued = 0
        self.restored = 0  # since the daemon started
        self.restored_bytes = 0
        self.expired = 0
        self.active = 0  # copies readable now

    def interval(self) -> float:
        day = self.cfg.debug_day_seconds
        return max(0.05, min(day / 4, 1.0)) if day else 60.0

    def progress_json(self) -> Json:
        return {"queued": self.queued, "active": self.active, "restored": self.restored,
                "restored_bytes": self.restored_bytes, "expired": self.expired}

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await run_periodically(self.run_once, self.interval, log=log, what="restore pass", wakeup=self.wakeup,
                               task_status=task_status)

    async def run_once(self) -> None:
        records = await trio.to_thread.run_sync(self.store.restores)
        now = time.time_ns()
        queue = sorted((r for r in records if r.ongoing), key=lambda r: (_tier_rank(r), r.requested_ns))
        self.queued = len(queue)
        self.active = sum(1 for r in records if not r.ongoing and r.expiry_ns > now)
        for rec in records:
            if not rec.ongoing and rec.expiry_ns <= now:
                await self.store.drop_restore(rec)
                self.expired += 1
        for rec in queue:
            if time.time_ns() < rec.requested_ns + int(self.cfg.restore_min_seconds * NS):
                continue
            res = await self.store.complete_restore(rec)
            self.queued -= 1
            if res is not None:
                await self.bytes.take(max(res.moved_bytes, 1))
                self.restored += 1
                self.active += 1
                self.restored_bytes += res.moved_bytes
                log.info("restored %s/%s %s for %d days", rec.bucket, rec.key, rec.version_id, rec.days)


def _tier_rank(rec: RestoreRecord) -> int:
    return TIERS.index(rec.tier) if rec.tier in TIERS else len(TIERS)


async def serve_restore(worker: RestoreWorker, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await worker.serve(task_status=task_status)
