"""Start-up disk loading: labels, wiped disks, removed disks, foreign disks."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.config import ConfigError
from appliance.engine import keys
from appliance.engine.records import DiskRecord
from diskmgr.label import LABEL_NAME
from diskmgr.state import DiskState

from .conftest import open_store, read_all


def _records(store) -> dict[str, DiskRecord]:
    return {r.path: r for _, r in store.db.scan_records(DiskRecord, keys.DISK)}


def test_wiped_disk_joins_as_new_and_old_id_is_failed(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    disk0 = tmp_path / "disks" / "disk0"
    old_id = json.loads((disk0 / LABEL_NAME).read_text())["disk_id"]
    s.db.close()
    shutil.rmtree(disk0)  # wiped: an empty directory in its place
    disk0.mkdir()
    s = open_store(tmp_path)
    try:
        new_id = json.loads((disk0 / LABEL_NAME).read_text())["disk_id"]
        assert new_id != old_id and s.disks.get(new_id) is not None and s.disks.get(old_id) is None
        states = {r.disk_id: r.state for _, r in s.db.scan_records(DiskRecord, keys.DISK)}
        assert states[old_id] == "failed" and states[new_id] == "ok"
    finally:
        s.db.close()


async def test_a_disk_that_lost_only_its_label_gets_it_back(tmp_path: Path) -> None:
    """As a new disk, the orphan sweep deleted every shard on it (found by fuzzing: three
    labels lost, every object lost though every byte was on disk)."""
    s = open_store(tmp_path)
    await s.create_bucket("bkt2")
    body = os.urandom(3 << 20)
    await s.put_object("bkt2", "k", body)
    ids = {}
    for i in range(3):
        label = tmp_path / "disks" / f"disk{i}" / LABEL_NAME
        ids[i] = json.loads(label.read_text())["disk_id"]
    s.db.close()
    for i in range(3):
        (tmp_path / "disks" / f"disk{i}" / LABEL_NAME).unlink()
    s = open_store(tmp_path)
    try:
        for i in range(3):
            assert json.loads((tmp_path / "disks" / f"disk{i}" / LABEL_NAME).read_text())["disk_id"] == ids[i]
        states = {r.disk_id: r.state for _, r in s.db.scan_records(DiskRecord, keys.DISK)}
        assert all(states[ids[i]] == "ok" for i in range(3)) and len(states) == 6
        assert await read_all(s, "bkt2", "k") == body
    finally:
        s.db.close()


def test_removed_disk_is_not_loaded_again(tmp_path: Path) -> None:
    s = open_store(tmp_path, ndisks=7)
    rec = _records(s)[str(tmp_path / "disks" / "disk6")]
    rec.state = "removed"
    b = s.db.batch()
    b.put(keys.disk(rec.disk_id), rec)
    s.db.commit_now(b)
    s.db.close()
    s = open_store(tmp_path, ndisks=7)
    try:
        assert s.disks.get(rec.disk_id) is None and len(s.disks) == 6
    finally:
        s.db.close()


def test_a_foreign_disk_is_held_offline_where_a_disk_was_recorded(tmp_path: Path) -> None:
    """One disk carrying another appliance's label is never used (so never swept), and the other
    disks serve; it refused the whole appliance's start (found by fuzzing)."""
    a = open_store(tmp_path / "a")
    a.db.close()
    b = open_store(tmp_path / "b")
    b.db.close()
    # move one of b's disks into a: it belongs to another appliance
    ours = tmp_path / "a" / "disks" / "disk0" / LABEL_NAME
    disk_id = json.loads(ours.read_text())["disk_id"]
    ours.write_text((tmp_path / "b" / "disks" / "disk0" / LABEL_NAME).read_text())
    s = open_store(tmp_path / "a")
    try:
        disk = s.disks.get(disk_id)
        assert disk is not None and disk.state == DiskState.OFFLINE
        assert "belongs to appliance" in disk.reasons[0]
        assert sum(d.state == DiskState.OK for d in s.disks) == 5
    finally:
        s.db.close()


def test_a_foreign_disk_where_none_was_recorded_is_refused(tmp_path: Path) -> None:
    b = open_store(tmp_path / "b")
    b.db.close()
    (tmp_path / "a" / "disks" / "disk0").mkdir(parents=True)
    shutil.copy(tmp_path / "b" / "disks" / "disk0" / LABEL_NAME, tmp_path / "a" / "disks" / "disk0" / LABEL_NAME)
    with pytest.raises(ConfigError, match="belongs to appliance"):
        open_store(tmp_path / "a")


def test_configured_non_empty_unlabelled_directory_is_refused(tmp_path: Path) -> None:
    from appliance.config import DiskConfig, embedded_config
    from appliance.engine.diskload import load_disks
    from appliance.engine.metadb import MetaDB
    from diskmgr.label import UnlabelledDisk

    cfg = replace(embedded_config(tmp_path), embedded=False,  # as if from a config file
                  disks=[DiskConfig(path=str(tmp_path / "d0")), DiskConfig(path=str(tmp_path / "d1"))])
    (tmp_path / "d1").mkdir()
    (tmp_path / "d1" / "somebodys-file").write_text("keep me")
    db = MetaDB(cfg.meta_path)
    try:
        with pytest.raises(UnlabelledDisk, match="not empty"):
            load_disks(cfg, db)
        assert (tmp_path / "d1" / "somebodys-file").read_text() == "keep me"
    finally:
        db.close()


def test_two_configured_disks_on_one_directory_are_refused(tmp_path: Path) -> None:
    """A symlink to another disk, or a copied label: it was loaded once, `status` lost the sixth
    disk and the log said 'ready: 5/5 disks ok' (found by fuzzing)."""
    from appliance.config import ConfigError, DiskConfig, embedded_config
    from appliance.engine.diskload import load_disks
    from appliance.engine.metadb import MetaDB

    base = embedded_config(tmp_path)
    (tmp_path / "d0").mkdir()
    os.symlink(tmp_path / "d0", tmp_path / "d1")
    db = MetaDB(base.meta_path)
    try:
        same_dir = replace(base, disks=[DiskConfig(path=str(tmp_path / "d0")), DiskConfig(path=str(tmp_path / "d1"))])
        with pytest.raises(ConfigError, match="same directory"):
            load_disks(same_dir, db)
        (tmp_path / "d1").unlink()
        (tmp_path / "d1").mkdir()
        load_disks(replace(base, disks=[DiskConfig(path=str(tmp_path / "d0"))]), db)  # d0 gets its label
        shutil.copy(tmp_path / "d0" / LABEL_NAME, tmp_path / "d1" / LABEL_NAME)
        with pytest.raises(ConfigError, match="same disk"):
            load_disks(same_dir, db)
    finally:
        db.close()


def test_a_configured_disk_path_that_is_a_file_and_was_never_a_disk_is_a_config_error(tmp_path: Path) -> None:
    """No disk recorded there to hold offline (one recorded there is held offline:
    tests/healing/test_disk_failure.py); it was a FileExistsError traceback."""
    from appliance.config import ConfigError, DiskConfig, embedded_config
    from appliance.engine.diskload import load_disks
    from appliance.engine.metadb import MetaDB

    cfg = replace(embedded_config(tmp_path), disks=[DiskConfig(path=str(tmp_path / "d0"))])
    (tmp_path / "d0").write_text("a file")
    db = MetaDB(cfg.meta_path)
    try:
        with pytest.raises(ConfigError, match=f"{tmp_path / 'd0'} is not a directory"):
            load_disks(cfg, db)
    finally:
        db.close()
