"""The GC service: every `gc.interval_seconds`, collect the segments unreferenced for longer
than `gc.grace_seconds` (the mechanism, and why the grace period, in appliance/engine/gc.py),
forget the ids of versions removed long enough ago that no listing resumes after them, and the
completed multipart uploads old enough that no client still retries their completion; every few
minutes, compact the packed-shard volumes that are dead enough (appliance/engine/compact.py).
Its first pass marks dead the packed records a crash left uncommitted (gc.sweep_unplaced_records)."""

from __future__ import annotations

import logging

import trio

from appliance.engine.compact import compact_if_due
from appliance.engine.gc import collect_once, expire_completions, expire_version_markers, sweep_unplaced_records
from appliance.engine.objectstore import ObjectStore

from .loop import run_periodically

log = logging.getLogger("stowage.gc")


async def serve_gc(store: ObjectStore, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async def collect() -> None:
        await sweep_unplaced_records(store)  # the first pass: what a crash left in the last volume
        n = await collect_once(store, store.cfg.gc.grace_seconds)
        if n:
            log.info("gc: removed %d unreferenced segments", n)
        await expire_version_markers(store)
        await expire_completions(store)
        await compact_if_due(store)  # packed volumes' dead space (engine/compact.py), every few minutes

    await run_periodically(collect, lambda: store.cfg.gc.interval_seconds, log=log, what="gc pass",
                           task_status=task_status)
