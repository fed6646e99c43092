"""Packed shards (volumes.py): the record format against hostile bytes, reads that cannot be
pointed at another object's record, deletes that mark records dead, scrub and heal of packed
shards, and m lost disks."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
import trio

from appliance.engine import gc, keys
from appliance.engine.codec import Geometry
from appliance.engine.errors import FormatError
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import SegmentRecord
from appliance.engine.repair import SegmentRepair
from appliance.engine.shardfile import ShardHeader
from appliance.engine.volumes import (
    DEAD,
    LIVE,
    VOLUME_HEADER,
    VolumeWriter,
    encode_record,
    read_record_header,
    scan,
    volume_numbers,
    volume_path,
)

from .conftest import open_store, read_all


def _segment(store: ObjectStore, key: str) -> SegmentRecord:
    v = store.head_object("bkt", key)
    rec = store.db.get_record(SegmentRecord, keys.segment(v.segments[0].segment_id))
    assert rec is not None
    return rec


def _header(seg: str, shard: int = 0, length: int = 5) -> ShardHeader:
    return ShardHeader(seg, shard, 1, 2, 1 << 20, length, 1, "app", {"bucket": "b", "key": "k"})


async def test_records_scan_back_and_a_torn_tail_is_skipped(tmp_path: Path) -> None:
    w = VolumeWriter(str(tmp_path))
    places = [await w.append(encode_record(_header(f"{i:032x}", length=i + 1), [os.urandom(i + 1)]))
              for i in range(20)]
    assert [p[0] for p in places] == [1] * 20 and places[0][1] == VOLUME_HEADER
    path = volume_path(tmp_path, 1)
    with open(path, "ab") as f:  # a crash mid-append: half a record
        f.write(b"".join(bytes(p) for p in encode_record(_header("ff" * 16), [b"x" * 100]))[:60])
    found = list(scan(path, 1))
    assert [(r.volume, r.offset) for r in found] == places
    assert [r.header.segment_id for r in found] == [f"{i:032x}" for i in range(20)]
    assert all(r.live for r in found)
    assert read_record_header(path, places[3][1]).segment_id == f"{3:032x}"
    w.close()
    w2 = VolumeWriter(str(tmp_path))  # a new start appends to a new volume, never after a torn tail
    assert (await w2.append(encode_record(_header("ee" * 16), [b"y"])))[0] == 2
    assert volume_numbers(tmp_path) == [1, 2]
    w2.close()


@pytest.mark.parametrize("damage", ["magic", "json_len", "json_crc", "json", "huge_length", "garbage"])
async def test_hostile_volume_bytes_stop_the_scan_cleanly(tmp_path: Path, damage: str) -> None:
    w = VolumeWriter(str(tmp_path))
    await w.append(encode_record(_header("aa" * 16), [b"first"]))
    _, off = await w.append(encode_record(_header("bb" * 16), [b"second"]))
    w.close()
    path = volume_path(tmp_path, 1)
    with open(path, "r+b") as f:
        f.seek(off)
        prefix = bytearray(f.read(18))
        if damage == "magic":
            prefix[:8] = b"NOTAREC!"
        elif damage == "json_len":
            prefix[10:14] = struct.pack("<I", 0xFFFFFFF0)
        elif damage == "json_crc":
            prefix[14:18] = b"\0\0\0\0"
        f.seek(off)
        if damage in ("magic", "json_len", "json_crc"):
            f.write(prefix)
        elif damage == "json":
            f.seek(off + 18)
            f.write(b"\xff\xfe")
        elif damage == "huge_length":  # a valid-looking header claiming more bytes than the file has
            body = _header("bb" * 16, length=1 << 40).json_body(8192)
            from appliance.engine.codec import checksum
            f.write(struct.pack("<8sHII", LIVE, 1, len(body), checksum(body)) + body)
            f.truncate()
        else:
            f.write(os.urandom(4096))
    found = list(scan(path, 1))
    assert [r.header.segment_id for r in found] == ["aa" * 16]
    if damage in ("magic", "json_crc", "json", "garbage"):
        with pytest.raises(FormatError):
            read_record_header(path, off)
    with open(tmp_path / "junk.vol", "wb") as f:
        f.write(b"not a volume at all")
    with pytest.raises(FormatError):
        list(scan(str(tmp_path / "junk.vol"), 9))


async def test_small_objects_are_packed_and_read_back(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = {f"k{i}": os.urandom(1 + i * 997) for i in range(40)}

        async def put(key: str) -> None:
            await store.put_object("bkt", key, bodies[key])

        async with trio.open_nursery() as n:
            for key in bodies:
                n.start_soon(put, key)
        for key, body in bodies.items():
            assert await read_all(store, "bkt", key) == body
            assert await read_all(store, "bkt", key, start=1, end=len(body)) == body[1:]
            rec = _segment(store, key)
            assert len(rec.packs) == len(rec.shards) and all(rec.packs)
        assert not [f for d in store.disks for f in d.iter_shard_files()]
        big = os.urandom(3 << 20)  # beyond pack_bytes: shard files, as before
        await store.put_object("bkt", "big", big)
        assert _segment(store, "big").packs == [] and await read_all(store, "bkt", "big") == big
    finally:
        store.db.close()


async def test_a_place_that_names_another_segment_reads_as_damage(tmp_path: Path) -> None:
    """Even with a wrong place in the metadata, a read never returns another object's bytes
    (whose chunk checksums are valid): the record's segment id is checked in the same pread."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        await store.put_object("bkt", "a", b"A" * 1000)
        await store.put_object("bkt", "b", b"B" * 1000)
        ra, rb = _segment(store, "a"), _segment(store, "b")
        disk_of_b = {d: i for i, d in enumerate(rb.shards)}
        i = next(i for i, d in enumerate(ra.shards) if d in disk_of_b)
        ra.packs[i] = rb.packs[disk_of_b[ra.shards[i]]]  # shard i of a now "lies" at b's record
        shard = store.seg._read_shard(ra, Geometry(ra.k, ra.m, ra.block_size), i, 0, 0)
        assert await shard == [None]
    finally:
        store.db.close()


async def test_gc_marks_packed_records_dead(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app", grace=0)
    try:
        await store.create_bucket("bkt")
        await store.put_object("bkt", "gone", b"x" * 5000)
        await store.put_object("bkt", "kept", b"y" * 5000)
        gone, kept = _segment(store, "gone"), _segment(store, "kept")
        await store.delete_object("bkt", "gone")
        assert await gc.collect_once(store, 0) == 1
        states: dict[str, list[bool]] = {}
        for d in store.disks:
            for n in volume_numbers(d.path):
                for r in scan(volume_path(d.path, n), n):
                    states.setdefault(r.header.segment_id, []).append(r.live)
        assert states[gone.segment_id] == [False] * len(gone.shards)
        assert states[kept.segment_id] == [True] * len(kept.shards)
        assert await read_all(store, "bkt", "kept") == b"y" * 5000
    finally:
        store.db.close()


async def test_scrub_rebuilds_a_damaged_packed_shard_as_a_file(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        body = os.urandom(7000)
        await store.put_object("bkt", "obj", body)
        rec = _segment(store, "obj")
        disk = store.disks.get(rec.shards[0])
        assert disk is not None
        vol, _, data = rec.packs[0] or [0, 0, 0]
        with open(volume_path(disk.path, vol), "r+b") as f:  # flip a byte of shard 0's chunk
            f.seek(data + 10)
            b = f.read(1)
            f.seek(data + 10)
            f.write(bytes([b[0] ^ 0xFF]))
        repair = SegmentRepair(store)
        res = await repair.check(rec.segment_id)
        assert res is not None and 0 in res.rebuilt
        after = _segment(store, "obj")
        assert after.pack_of(0) is None and after.pack_of(1) == rec.pack_of(1)
        assert os.path.exists(disk.shard_path(rec.segment_id, 0))
        assert [r.live for r in scan(volume_path(disk.path, vol), vol)
                if r.header.segment_id == rec.segment_id] == [False]  # the bad copy is dead
        assert await repair.check(rec.segment_id) is None  # healthy now
        assert await read_all(store, "bkt", "obj") == body
    finally:
        store.db.close()


async def test_m_lost_disks_still_read_packed_objects(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = {f"k{i}": os.urandom(100 + i) for i in range(30)}
        for key, body in bodies.items():
            await store.put_object("bkt", key, body)
        m = _segment(store, "k0").m
        for d in list(store.disks)[:m]:
            shutil.rmtree(Path(d.path) / "volumes")
        for key, body in bodies.items():
            assert await read_all(store, "bkt", key) == body
    finally:
        store.db.close()


async def test_record_marked_dead_is_not_resurrected_by_a_second_delete(tmp_path: Path) -> None:
    w = VolumeWriter(str(tmp_path))
    _, off = await w.append(encode_record(_header("cc" * 16), [b"z" * 10]))
    w.close()
    from appliance.engine.volumes import mark_dead
    path = volume_path(tmp_path, 1)
    mark_dead(path, off)
    mark_dead(path, off)  # idempotent
    mark_dead(volume_path(tmp_path, 7), off)  # a compacted-away volume: nothing to do
    with open(path, "rb") as f:
        f.seek(off)
        assert f.read(8) == DEAD
