"""The disks' bookkeeping in the metadata DB: the one module that writes DiskRecords.

A DiskRecord (keys.disk(id)) is how the appliance remembers a disk across restarts: where it is
mounted, its pool, and its state. They are written
- at start-up by the loader (diskload): a configured directory joins, comes back, or lost its label;
- by the running daemon: a disk attached live (appliance.ops.disks), a state change decided by
  the disk monitor or by a drain (`set_state`);
- with the daemon stopped: a disk prepared by `stowage disks add` is recorded for the next start
  (appliance.engine.offline);
- by `recover-metadata`, in the recovery's own batch (`put`).
Every state change goes through DiskState's transition table (diskmgr.state), so a change the
state machine does not allow (a removed disk coming back) fails instead of being persisted.
The record keeps the state's string value: records written before the enum existed decode as is.
"""

from __future__ import annotations

import time

from diskmgr.state import DiskState

from . import keys
from .disks import Disk
from .metadb import Batch, MetaDB
from .records import DiskRecord


def new(disk_id: str, path: str, role: str, pool: str, *, device: str = "", fs_uuid: str = "",
        added_ns: int | None = None) -> DiskRecord:
    """The record of a disk that joins now, healthy."""
    return DiskRecord(disk_id, path, role, pool, DiskState.OK.value,
                      time.time_ns() if added_ns is None else added_ns, device, fs_uuid)


def state_of(rec: DiskRecord) -> DiskState:
    return DiskState(rec.state)


def change_state(rec: DiskRecord, state: DiskState) -> None:
    """Set the state of a record (saved by the caller); DiskStateError if not allowed."""
    rec.state = state_of(rec).become(state).value


def get(db: MetaDB, disk_id: str) -> DiskRecord | None:
    return db.get_record(DiskRecord, keys.disk(disk_id))


def known(db: MetaDB) -> dict[str, DiskRecord]:
    """Every disk the appliance has a record of, by id."""
    return {rec.disk_id: rec for _, rec in db.scan_records(DiskRecord, keys.DISK)}


def put(batch: Batch, rec: DiskRecord) -> None:
    """Stage a record in a caller's batch (written with the rest of it)."""
    batch.put(keys.disk(rec.disk_id), rec)


def save_now(db: MetaDB, rec: DiskRecord) -> None:
    """Write a record at once (blocking: start-up and tools outside the event loop)."""
    b = db.batch()
    put(b, rec)
    db.commit_now(b)


async def save(db: MetaDB, rec: DiskRecord) -> None:
    """Write a record from the running daemon, synced: a restart must see the disk."""
    b = db.batch()
    put(b, rec)
    await db.commit(b, sync=True)


async def set_state(db: MetaDB, disk: Disk, state: DiskState) -> None:
    """Change a disk's state in the running daemon: in memory at once, then in its record.

    The transition is checked against the in-memory state, which is the daemon's truth (a
    configured directory restarts `ok` whatever its record said).
    """
    disk.state = DiskState(disk.state).become(state)
    rec = get(db, disk.disk_id)
    if rec is None:
        rec = new(disk.disk_id, str(disk.path), disk.role, disk.pool)
    elif rec.state == state:
        return
    rec.state = state.value
    await save(db, rec)
