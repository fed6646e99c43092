"""The metadata snapshot service: every `snapshot.interval_seconds`, if anything was committed
since the last snapshot, store a new one on the data disks (appliance/engine/metasnap.py, which
also holds the stream format and the retention of `snapshot.keep` snapshots). `stowage
snapshot-metadata` takes one at once (`take(force=True)`).

Snapshots also compact the metadata journal (engine/journal.py): so one is taken early when the
journal written since the last one exceeds JOURNAL_SNAPSHOT_BYTES (recovery and a restart after
a crash read that much at most), and at start-up, before the service reports itself started
(and so before the daemon serves), when the DB says one is due: the journal may lack commits the
DB holds (a power cut, changes made without a journal, a DB rebuilt by recover-metadata).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import trio

from appliance.engine.metasnap import changed_since, list_snapshots, take_snapshot
from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import SnapshotInfo

from .loop import Json, run_periodically

log = logging.getLogger("stowage.snapshot")

JOURNAL_SNAPSHOT_BYTES = 256 << 20
JOURNAL_CHECK_SECONDS = 10.0


@dataclass
class SnapshotProgress:
    count: int = 0  # snapshots kept
    last_ns: int = 0
    # the last snapshot this daemon took (None until it takes one)
    last_segment: str | None = None
    last_records: int | None = None
    last_bytes: int | None = None
    journal: dict[str, Any] = field(default_factory=dict)  # the metadata journal's state

    def to_json(self) -> Json:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Snapshotter:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.lock = trio.Lock()  # one snapshot at a time (one temporary file)
        snaps = list_snapshots(store)
        self._progress = SnapshotProgress(count=len(snaps), last_ns=snaps[-1].created_ns if snaps else 0)

    @property
    def progress(self) -> SnapshotProgress:
        status = self.store.db.journal_status()
        if status is not None:
            self._progress.journal = {"disks": status.disks, "stopped": status.stopped, "quorum": status.quorum,
                                      "last_record": status.last_lsn, "bytes_since_snapshot": status.bytes_since_roll}
        return self._progress

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
            self._progress = SnapshotProgress(count=len(kept), last_ns=info.created_ns, last_segment=info.segment_id,
                                              last_records=info.records, last_bytes=info.length)
            return info

    async def _checkpoint_if_due(self) -> None:
        if not self.store.db.checkpoint_due():
            return
        log.info("metadata snapshot due at start-up (the journal may lack commits the DB holds)")
        try:
            await self.take(force=True)
        except Exception:
            log.exception("the metadata snapshot due at start-up failed; the service retries it")

    async def _watch_journal(self) -> None:
        while True:
            await trio.sleep(JOURNAL_CHECK_SECONDS)
            status = self.store.db.journal_status()
            due = self.store.db.checkpoint_due()
            if due or (status is not None and status.bytes_since_roll >= JOURNAL_SNAPSHOT_BYTES):
                try:
                    await self.take(force=True)
                except Exception:
                    log.exception("metadata snapshot (journal compaction) failed; retrying later")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._checkpoint_if_due()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_journal)
            await run_periodically(self.take, lambda: self.store.cfg.snapshot.interval_seconds, log=log,
                                   what="metadata snapshot", wait_first=True, task_status=task_status)
