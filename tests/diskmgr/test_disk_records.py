"""The one writer of DiskRecords (appliance.engine.diskrecords): state changes are checked by the
state machine and persisted; offline sessions record a disk for the next start."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.engine import diskrecords, offline
from appliance.engine.metadb import MetaDB
from diskmgr.errors import DiskStateError
from diskmgr.state import DiskState
from tests.engine.conftest import open_store


async def test_set_state_changes_memory_and_record(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app", ndisks=6)
    try:
        disk = next(iter(store.disks))
        await diskrecords.set_state(store.db, disk, DiskState.DRAINING)
        assert disk.state is DiskState.DRAINING and disk.readable and not disk.writable
        rec = diskrecords.get(store.db, disk.disk_id)
        assert rec is not None and rec.state == "draining" and type(rec.state) is str
        with pytest.raises(DiskStateError):  # the monitor may not override a drain
            await diskrecords.set_state(store.db, disk, DiskState.WARNING)
        assert disk.state is DiskState.DRAINING
        await diskrecords.set_state(store.db, disk, DiskState.REMOVED)
        with pytest.raises(DiskStateError):
            await diskrecords.set_state(store.db, disk, DiskState.OK)
        rec = diskrecords.get(store.db, disk.disk_id)
        assert rec is not None and rec.state == "removed"
    finally:
        store.db.close()


def test_offline_sessions(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    the_id = offline.appliance_id(meta)  # a brand-new appliance: the DB and its id are created
    assert len(the_id) == 16 and offline.appliance_id(meta) == the_id
    offline.record_disk(meta, diskrecords.new("d1", "/srv/d1", "data", "default", device="/dev/sdx",
                                              fs_uuid="u-1"))
    found = offline.summary(meta)
    assert [(r.disk_id, r.state, r.device, r.uuid) for r in found.disks] == [("d1", "ok", "/dev/sdx", "u-1")]
    assert found.objects_per_bucket == {}
    db = MetaDB(meta)  # held by someone else (the daemon): the offline session says so
    try:
        with pytest.raises(offline.MetaDBUnavailable):
            offline.summary(meta)
    finally:
        db.close()
