"""Draining a disk (move every shard off it, then release it) and replacing one disk by another.

drain(disk): the disk becomes `draining` (still read, never written), every segment with a
shard on it has that shard moved (verified chunks copied, damaged ones rebuilt from the other
shards) to another writable disk of the pool, then the disk is `removed`: its DiskRecord says so
(a managed disk is not loaded again) and it leaves the running DiskSet. If some shard cannot be
moved (the pool has no other disk for it) the drain stops with an error and the disk stays
`draining`; nothing is lost.

replace(old, new): the same, with `new` (already attached) as the preferred target of every
shard; it works whether `old` is still readable (copy) or dead (rebuild from the survivors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from appliance.engine import diskrecords, keys
from appliance.engine.disks import Disk
from appliance.engine.errors import InsufficientStorage, InvalidArgument
from appliance.engine.records import SegmentRecord
from appliance.engine.storecore import StoreCore
from diskmgr.state import DiskState

from .heal import LOST_STATES, Healer

log = logging.getLogger("stowage.drain")

Emit = Callable[[dict[str, Any]], Awaitable[None]]


def segments_on(store: StoreCore, disk_id: str) -> list[tuple[str, list[int]]]:
    """(segment id, shard indices) of every live segment with a shard on the disk (blocking)."""
    out = []
    for _, raw in store.db.scan(keys.SEGMENT):
        rec = SegmentRecord.decode(raw)
        idx = [i for i, d in enumerate(rec.shards) if d == disk_id]
        if idx and rec.refcount > 0:
            out.append((rec.segment_id, idx))
    return out


async def set_state(store: StoreCore, disk: Disk, state: DiskState) -> None:
    await diskrecords.set_state(store.db, disk, state)
    log.warning("disk %s: %s", disk.disk_id, state)


class Drainer:
    def __init__(self, store: StoreCore, healer: Healer, state: dict[str, Any]) -> None:
        self.store = store
        self.healer = healer
        self.state = state  # daemon.state["drain"]
        self.lock = trio.Lock()

    def _disk(self, disk_id: Any, what: str) -> Disk:
        if not isinstance(disk_id, str) or not disk_id:
            raise InvalidArgument(f"{what}: a disk id is required")
        disk = self.store.disks.get(disk_id)
        if disk is None:
            for d in self.store.disks:  # accept the mount path too
                if str(d.path) == disk_id:
                    return d
            raise InvalidArgument(f"{what}: no disk {disk_id!r} in this appliance")
        return disk

    async def drain(self, disk_id: Any, emit: Emit | None = None, target_id: Any = None,
                    release: bool = True) -> dict[str, Any]:
        op = "replace" if target_id else "drain"
        disk = self._disk(disk_id, op)
        target = self._disk(target_id, op) if target_id else None
        if target is not None:
            if target.disk_id == disk.disk_id:
                raise InvalidArgument("replace: OLD and NEW are the same disk")
            if not target.writable:
                raise InvalidArgument(f"replace: disk {target.disk_id} is {target.state}, not writable")
            if target.pool != disk.pool:
                raise InvalidArgument(f"replace: disk {target.disk_id} is in pool {target.pool}, "
                                      f"{disk.disk_id} in pool {disk.pool}")
        async with self.lock:
            if disk.state not in LOST_STATES:
                await set_state(self.store, disk, DiskState.DRAINING)
            work = await trio.to_thread.run_sync(segments_on, self.store, disk.disk_id)
            st = {"op": op, "disk_id": disk.disk_id, "target": target.disk_id if target else None,
                  "total": len(work), "done": 0, "moved_shards": 0, "running": True, "failed": 0}
            self.state.clear()
            self.state.update(st)
            last_emit = 0.0
            for seg_id, idx in work:
                try:
                    res = await self.healer.move_shards(seg_id, set(idx), prefer=target)
                except Exception as exc:
                    log.exception("%s: moving segment %s failed", op, seg_id)
                    self.state["last_error"] = f"{seg_id}: {exc}"
                    res = None
                if res is not None:
                    self.state["moved_shards"] += len([i for i in res.rebuilt if i in idx])
                    if res.pending or res.unrecoverable:
                        self.state["failed"] += 1
                self.state["done"] += 1
                if emit is not None and time.monotonic() - last_emit > 0.3:
                    await emit(dict(self.state))
                    last_emit = time.monotonic()
            left = await trio.to_thread.run_sync(segments_on, self.store, disk.disk_id)
            self.state["running"] = False
            if left:
                self.state["remaining"] = len(left)
                raise InsufficientStorage(
                    f"{op}: {len(left)} segments still have shards on {disk.disk_id} (no other writable disk "
                    f"could take them); the disk stays {disk.state}. Add a disk and retry.")
            if release:
                await set_state(self.store, disk, DiskState.REMOVED)
                self.store.disks.disks.pop(disk.disk_id, None)
            self.state["released"] = release
            if emit is not None:
                await emit(dict(self.state))
            return {"disk_id": disk.disk_id, "path": str(disk.path), "moved_shards": self.state["moved_shards"],
                    "segments": len(work), "state": disk.state, "released": release,
                    "target": target.disk_id if target else None}
