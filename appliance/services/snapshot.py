"""The metadata snapshot service: every `snapshot.interval_seconds`, if anything was committed
since the last snapshot, store a new one on the data disks (appliance/engine/metasnap.py, which
also holds the stream format and the retention of `snapshot.keep` snapshots). `stowage
snapshot-metadata` takes one at once (`take(force=True)`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import trio

from appliance.engine.metasnap import changed_since, list_snapshots, take_snapshot
from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import SnapshotInfo

from .loop import Json, run_periodically

log = logging.getLogger("stowage.snapshot")


@dataclass
class SnapshotProgress:
    count: int = 0  # snapshots kept
    last_ns: int = 0
    # the last snapshot this daemon took (None until it takes one)
    last_segment: str | None = None
    last_records: int | None = None
    last_bytes: int | None = None

    def to_json(self) -> Json:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Snapshotter:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.lock = trio.Lock()  # one snapshot at a time (one temporary file)
        snaps = list_snapshots(store)
        self.progress = SnapshotProgress(count=len(snaps), last_ns=snaps[-1].created_ns if snaps else 0)

    async def take(self, force: bool = False) -> SnapshotInfo | None:
        """Take one snapshot now (None: nothing changed since the last one and not forced)."""
        async with self.lock:
            snaps = list_snapshots(self.store)
            if not force and snaps and not changed_since(self.store, snaps[-1]):
                return None
            taken = await take_snapshot(self.store, keep=max(1, self.store.cfg.snapshot.keep))
            if taken is None:
                return None
            info, kept = taken
            self.progress = SnapshotProgress(count=len(kept), last_ns=info.created_ns, last_segment=info.segment_id,
                                             last_records=info.records, last_bytes=info.length)
            return info

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await run_periodically(self.take, lambda: self.store.cfg.snapshot.interval_seconds, log=log,
                               what="metadata snapshot", wait_first=True, task_status=task_status)
