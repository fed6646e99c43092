"""Draining a disk (move every shard off it, then release it) and replacing one disk by another.

drain(disk): the disk becomes `draining` (still read, never written), every segment with a
shard on it has that shard moved (verified chunks copied, damaged ones rebuilt from the other
shards) to another writable disk of the pool, then the disk is `removed`: its DiskRecord says so
(a managed disk is not loaded again) and it leaves the running DiskSet. If some shard cannot be
moved (the pool has no other disk for it) the drain stops with an error and the disk is
`draining` only until the drain ends: a drain that fails gives the disk back the state it had, so
new segments keep every shard, and nothing is lost. A drain that could not finish (the pool has
too few other writable disks for a segment's shards) is refused before it starts.

replace(old, new): the same, with `new` (already attached) as the preferred target of every
shard; it works whether `old` is still readable (copy) or dead (rebuild from the survivors). A
shard `new` has no room for (a smaller or fuller disk) goes to another disk of the pool, as in
a drain; the result counts those (`elsewhere`). A full disk is not a failing one: running out
of space is not counted as an I/O error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import trio

from appliance.engine.disks import Disk
from appliance.engine.errors import InsufficientStorage, InvalidArgument
from appliance.engine.objectstore import ObjectStore
from diskmgr.state import DiskState

from .heal import Healer
from .loop import Emit, Json

log = logging.getLogger("stowage.drain")


@dataclass
class DrainProgress:
    """The drain or replace in progress, or the last one."""

    op: str  # drain | replace
    disk_id: str
    target: str | None  # replace: the new disk
    total: int  # segments with a shard on the disk when it started
    done: int = 0
    moved_shards: int = 0
    elsewhere: int = 0  # replace: shards moved to another disk than the new one
    running: bool = True
    failed: int = 0  # segments whose shards could not all be moved
    last_error: str | None = None
    remaining: int | None = None  # segments left on the disk at the end (the drain failed)
    released: bool | None = None  # set when the drain succeeded

    def to_json(self) -> Json:
        optional = ("last_error", "remaining", "released")
        return {k: v for k, v in asdict(self).items() if k not in optional or v is not None}


class Drainer:
    def __init__(self, store: ObjectStore, healer: Healer) -> None:
        self.store = store
        self.healer = healer
        self.progress: DrainProgress | None = None  # None: no drain since the daemon started
        self.lock = trio.Lock()

    def progress_json(self) -> Json:
        return self.progress.to_json() if self.progress is not None else {}

    def _disk(self, disk_id: object, what: str) -> Disk:
        if not isinstance(disk_id, str) or not disk_id:
            raise InvalidArgument(f"{what}: a disk id is required")
        disk = self.store.disks.get(disk_id)
        if disk is None:
            for d in self.store.disks:  # accept the mount path too
                if str(d.path) == disk_id:
                    return d
            raise InvalidArgument(f"{what}: no disk {disk_id!r} in this appliance")
        return disk

    async def drain(self, disk_id: object, emit: Emit | None = None, target_id: object = None,
                    release: bool = True) -> Json:
        op = "replace" if target_id else "drain"
        disk = self._disk(disk_id, op)
        target = self._disk(target_id, op) if target_id else None
        if target is not None:
            check_replace(disk, target)
        async with self.lock:
            if target is None:
                await self._check_room(disk)
            before = disk.state
            if not disk.state.lost:
                await self.store.set_disk_state(disk, DiskState.DRAINING)
                log.warning("disk %s: draining", disk.disk_id)
            work = await trio.to_thread.run_sync(self.store.segments_on, disk.disk_id)
            p = self.progress = DrainProgress(op, disk.disk_id, target.disk_id if target else None, len(work))
            last_emit = 0.0
            full: set[str] = set()  # disks that had no room for a shard
            for seg_id, idx in work:
                try:
                    res = await self.healer.move_shards(seg_id, set(idx), prefer=target)
                except Exception as exc:
                    log.exception("%s: moving segment %s failed", op, seg_id)
                    p.last_error = f"{seg_id}: {exc}"
                    res = None
                if res is not None:
                    p.moved_shards += len([i for i in res.rebuilt if i in idx])
                    if target is not None:
                        p.elsewhere += len([i for i in idx if res.placed.get(i, target.disk_id) != target.disk_id])
                    full |= res.full
                    if res.pending or res.unrecoverable:
                        p.failed += 1
                p.done += 1
                if emit is not None and time.monotonic() - last_emit > 0.3:
                    await emit(p.to_json())
                    last_emit = time.monotonic()
            left = await trio.to_thread.run_sync(self.store.segments_on, disk.disk_id)
            p.running = False
            if left:
                p.remaining = len(left)
                if disk.state == DiskState.DRAINING and before != DiskState.DRAINING:
                    # a disk left draining takes no shard of new segments: give it back its use
                    # (a warning or failing one as ok: the health policy judges it again)
                    back = before if DiskState.DRAINING.can_become(before) else DiskState.OK
                    await self.store.set_disk_state(disk, back)
                    log.warning("disk %s: %s failed, back to %s", disk.disk_id, op, back)
                why, fix = "no other writable disk could take them", "Add a disk and retry."
                if full:
                    why = f"out of space on {', '.join(sorted(full))}, and no other writable disk could take them"
                    fix = "Free some space or add a disk and retry."
                raise InsufficientStorage(
                    f"{op}: {len(left)} segments still have shards on {disk.disk_id} ({why}); the disk is "
                    f"{disk.state}. {fix}")
            if release:
                await self.store.set_disk_state(disk, DiskState.REMOVED)
                log.warning("disk %s: removed", disk.disk_id)
                self.store.disks.remove(disk.disk_id)
            p.released = release
            if emit is not None:
                await emit(p.to_json())
            return {"disk_id": disk.disk_id, "path": str(disk.path), "moved_shards": p.moved_shards,
                    "segments": len(work), "state": disk.state, "released": release,
                    "target": target.disk_id if target else None, "elsewhere": p.elsewhere,
                    "full": sorted(full)}


    async def _check_room(self, disk: Disk) -> None:
        """Refuse a drain that cannot finish, before the disk stops taking new shards."""
        targets = {d.disk_id for d in self.store.disks.pool(disk.pool) if d.writable and d.disk_id != disk.disk_id}
        stranded = await trio.to_thread.run_sync(self.store.stranded_on, disk.disk_id, targets)
        if stranded:
            raise InsufficientStorage(
                f"drain: {stranded} segments with a shard on {disk.disk_id} have nowhere to move it: pool "
                f"{disk.pool} has {len(targets)} other writable disks, too few for their shards. Add a disk "
                f"first, or replace {disk.disk_id} by a new one (`stowage disks replace`). Nothing was changed.")


def check_replace(old: Disk, new: Disk) -> None:
    """Why disk `new` cannot replace `old` (InvalidArgument), if it cannot: the CLI learns it from
    `drain`, the console before it starts the background work (consoleadmin.py)."""
    if new.disk_id == old.disk_id:
        raise InvalidArgument("replace: OLD and NEW are the same disk")
    if not new.writable:
        raise InvalidArgument(f"replace: disk {new.disk_id} is {new.state}, not writable")
    if new.pool != old.pool:
        raise InvalidArgument(f"replace: disk {new.disk_id} is in pool {new.pool}, {old.disk_id} in pool {old.pool}")
