"""`recover-metadata` with packed shards (volumes.py): live records are shards like files, so
packed objects come back byte-exact and readable from their records; dead records (deleted
objects, replaced copies) and a torn volume tail do not bring anything back. Each test runs
with the journal (placements come from the disks) and, where it matters, without it (the
objects come from the record headers alone)."""

from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path

import pytest
import trio

from appliance.engine import gc, keys
from appliance.engine.errors import NoSuchKey
from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import RecoveryReport
from appliance.engine.records import SegmentRecord
from appliance.engine.recover import recover_metadata
from appliance.engine.shardfile import ShardHeader
from appliance.engine.volumes import DEAD, VOLUME_HEADER, encode_record, scan, volume_numbers, volume_path

from .conftest import open_store, read_all

BUCKET = "bkt"
JOURNAL = pytest.mark.parametrize("with_journal", [True, False], ids=["journal", "headers-only"])


def _segment(store: ObjectStore, key: str) -> SegmentRecord:
    v = store.head_object(BUCKET, key)
    rec = store.db.get_record(SegmentRecord, keys.segment(v.segments[0].segment_id))
    assert rec is not None
    return rec


def _disks(root: Path) -> list[Path]:
    return sorted((root / "disks").iterdir())


def _records(root: Path) -> list[tuple[Path, int, int, bool, ShardHeader]]:
    """(disk, volume, offset, live, header) of every whole record on the disks."""
    return [(d, n, r.offset, r.live, r.header) for d in _disks(root) for n in volume_numbers(d)
            for r in scan(volume_path(d, n), n)]


async def _populate(store: ObjectStore, n: int, seed: int) -> dict[str, bytes]:
    rnd = random.Random(seed)
    objs = {f"small/{i:02d}": rnd.randbytes(rnd.randrange(1, 200_000)) for i in range(n)}
    for key, body in objs.items():
        await store.put_object(BUCKET, key, body)
    return objs


def _assert_packed(store: ObjectStore, objs: dict[str, bytes]) -> dict[str, SegmentRecord]:
    """The objects really were packed (else the tests below would pass on shard files)."""
    recs = {key: _segment(store, key) for key in objs}
    for key, rec in recs.items():
        assert rec.packs and all(rec.pack_of(i) is not None for i, d in enumerate(rec.shards) if d), key
    return recs


def _lose_metadata(store: ObjectStore, root: Path, with_journal: bool) -> None:
    store.seg.close()
    store.db.close()
    shutil.rmtree(store.cfg.meta_path)
    if not with_journal:
        for journal in root.glob("disks/*/journal"):
            shutil.rmtree(journal)


async def _recover(store: ObjectStore) -> RecoveryReport:
    return await trio.to_thread.run_sync(recover_metadata, store.cfg)


async def _check(store: ObjectStore, objs: dict[str, bytes]) -> None:
    for key, body in objs.items():
        assert await read_all(store, BUCKET, key) == body, key


@JOURNAL
async def test_packed_objects_come_back_byte_exact(tmp_path: Path, with_journal: bool) -> None:
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket(BUCKET)
    objs = await _populate(store, 24, seed=1)
    before = _assert_packed(store, objs)
    live = sum(1 for *_, is_live, _ in _records(root) if is_live)
    assert live == sum(1 for rec in before.values() for d in rec.shards if d)
    _lose_metadata(store, root, with_journal)

    report = await _recover(store)
    assert report.shard_files == live  # every record's header counted as a shard's
    assert report.degraded_segments == 0 and report.segments_unreadable == []
    if with_journal:
        assert report.journal and report.journal["complete"] and report.versions_added == []
    else:
        assert sorted(report.versions_added) == sorted(f"{BUCKET}/{key}" for key in objs)

    store = open_store(root)
    try:
        for key, rec in _assert_packed(store, objs).items():
            old = before[key]
            assert (rec.shards, rec.packs, rec.length) == (old.shards, old.packs, old.length), key
        await _check(store, objs)
    finally:
        store.db.close()


@JOURNAL
async def test_a_deleted_packed_object_is_not_recovered(tmp_path: Path, with_journal: bool) -> None:
    root = tmp_path / "app"
    store = open_store(root, grace=0)
    await store.create_bucket(BUCKET)
    objs = await _populate(store, 6, seed=2)
    await store.put_object(BUCKET, "doomed", b"deleted before the DB was lost" * 100)
    doomed = _assert_packed(store, {"doomed": b""})["doomed"].segment_id
    await store.delete_object(BUCKET, "doomed")
    assert await gc.collect_once(store, 0) == 1
    records = [(live, hdr) for *_, live, hdr in _records(root) if hdr.segment_id == doomed]
    assert records and not any(live for live, _ in records)  # its records are there, dead
    _lose_metadata(store, root, with_journal)

    report = await _recover(store)
    assert not any("doomed" in v for v in report.versions_added)
    assert report.versions_dropped == []

    store = open_store(root)
    try:
        with pytest.raises(NoSuchKey):
            store.head_object(BUCKET, "doomed")
        assert store.db.get(keys.segment(doomed)) is None
        _assert_packed(store, objs)
        await _check(store, objs)
    finally:
        store.db.close()


@JOURNAL
async def test_a_torn_volume_tail_keeps_every_whole_record(tmp_path: Path, with_journal: bool) -> None:
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket(BUCKET)
    objs = await _populate(store, 10, seed=3)
    _assert_packed(store, objs)
    whole = len(_records(root))
    rnd = random.Random(4)
    torn = ShardHeader("ab" * 16, 0, 1, 1, 1 << 20, 5000, 1, "",
                       {"bucket": BUCKET, "key": "torn", "version_id": "null", "etag": "x", "size": 5000})
    for d in _disks(root):
        for n in volume_numbers(d):
            with open(volume_path(d, n), "ab") as f:  # a crash mid-append: half a record, then junk
                f.write(b"".join(bytes(p) for p in encode_record(torn, [rnd.randbytes(5000)]))[:3000])
                f.write(rnd.randbytes(777))
    assert len(_records(root)) == whole  # the scan stops at the tear
    _lose_metadata(store, root, with_journal)

    report = await _recover(store)
    assert report.degraded_segments == 0 and report.segments_unreadable == []
    assert f"{BUCKET}/torn" not in report.versions_added

    store = open_store(root)
    try:
        _assert_packed(store, objs)
        await _check(store, objs)
        with pytest.raises(NoSuchKey):
            store.head_object(BUCKET, "torn")
    finally:
        store.db.close()


@JOURNAL
async def test_packed_and_shard_file_objects_both_come_back(tmp_path: Path, with_journal: bool) -> None:
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket(BUCKET)
    small = await _populate(store, 8, seed=5)
    rnd = random.Random(6)
    large = {f"large/{i}": rnd.randbytes(3 << 20) for i in range(2)}
    for key, body in large.items():
        await store.put_object(BUCKET, key, body)
    _assert_packed(store, small)
    for key in large:
        rec = _segment(store, key)
        files = list(root.glob(f"disks/*/shards/*/{rec.segment_id}.*"))
        assert rec.packs == [] and len(files) == sum(1 for d in rec.shards if d)
        assert not any(hdr.segment_id == rec.segment_id for *_, hdr in _records(root))
    _lose_metadata(store, root, with_journal)

    report = await _recover(store)
    assert report.degraded_segments == 0 and report.segments_unreadable == []
    if not with_journal:
        assert sorted(report.versions_added) == sorted(f"{BUCKET}/{key}" for key in small | large)

    store = open_store(root)
    try:
        _assert_packed(store, small)
        assert all(_segment(store, key).packs == [] for key in large)
        await _check(store, small | large)
    finally:
        store.db.close()


def _copy_volume(disk: Path, old: int, new: int) -> None:
    """What the compactor leaves when it stops between copying a volume and removing it: the
    records again, in a newer volume (same record bytes, so the same offsets here)."""
    with open(volume_path(disk, old), "rb") as f:
        data = f.read()
    head = b"STWVOLUM" + struct.pack("<HI", 1, new)
    with open(volume_path(disk, new), "wb") as f:
        f.write(head + bytes(VOLUME_HEADER - len(head)) + data[VOLUME_HEADER:])


@JOURNAL
async def test_a_compacted_copy_wins_and_a_dead_copy_keeps_its_object_deleted(tmp_path: Path,
                                                                               with_journal: bool) -> None:
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket(BUCKET)
    objs = await _populate(store, 6, seed=7)
    await store.put_object(BUCKET, "doomed", b"deleted after its volume was compacted" * 100)
    doomed = _assert_packed(store, {"doomed": b""})["doomed"].segment_id
    _assert_packed(store, objs)
    copies: dict[Path, tuple[int, int]] = {}
    for d in _disks(root):
        (old,) = volume_numbers(d)
        copies[d] = (old, old + 10)
        _copy_volume(d, old, old + 10)
        for where, n, offset, _, hdr in _records(root):
            if where == d and n == old + 10 and hdr.segment_id == doomed:
                with open(volume_path(d, n), "r+b") as f:  # deleted since: only the new copy was marked
                    f.seek(offset)
                    f.write(DEAD)
        if with_journal:  # the compaction finished: the journal's places are stale
            os.unlink(volume_path(d, old))
    _lose_metadata(store, root, with_journal)

    report = await _recover(store)
    assert not any("doomed" in v for v in report.versions_added)

    store = open_store(root)
    try:
        for key, rec in _assert_packed(store, objs).items():
            for i, disk_id in enumerate(rec.shards):
                disk = store.disks.get(disk_id)
                if disk is not None:
                    place = rec.pack_of(i)
                    assert place is not None and place[0] == copies[Path(disk.path)][1], key  # the newest copy
        await _check(store, objs)
        with pytest.raises(NoSuchKey):  # with the journal: committed, but its data is gone
            store.head_object(BUCKET, "doomed")
    finally:
        store.db.close()
