"""Volume compaction (compact.py): dead space of packed shards is given back, live records are
moved to the current volume with their metadata, and nothing is lost: not to concurrent reads
and deletes, not across a restart, not to a kill -9 at any step; the current volume, the newest
volume of a disk with no writer yet and a volume with a write still to commit are left alone."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import trio

from appliance.engine import compact, gc, keys, volumes
from appliance.engine.compact import compact_once, placed_bytes
from appliance.engine.disks import Disk
from appliance.engine.errors import FormatError, NoSuchKey
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import SegmentRecord
from appliance.engine.repair import SegmentRepair
from appliance.engine.shardfile import ShardHeader
from appliance.engine.volumes import (
    VOLUME_HEADER,
    check_volume_head,
    encode_record,
    scan,
    volume_numbers,
    volume_path,
)
from tests.healing.helpers import packed_shards

from .conftest import open_store, read_all

REPO = Path(__file__).resolve().parents[2]
VOLUME = 1 << 20


def _new_store(root: Path) -> ObjectStore:
    store = open_store(root, grace=0)
    store.seg.volume_bytes = VOLUME  # before the first write: several volumes fill
    return store


def _damage_log(store: ObjectStore) -> list[tuple[str, list[int], str]]:
    """What reads report as damaged from now on (a read of a removed place would be)."""
    seen: list[tuple[str, list[int], str]] = []
    report = store.seg.on_damage

    def note(segment_id: str, shards: list[int], reason: str) -> None:
        seen.append((segment_id, shards, reason))
        report(segment_id, shards, reason)

    store.seg.on_damage = note
    return seen


def _close(store: ObjectStore) -> None:
    store.seg.close()
    store.db.close()


async def _fill(store: ObjectStore, n: int, seed: int = 0) -> dict[str, bytes]:
    """n packed objects of 6..90 KiB (small objects are replicated: three copies on three of the
    six disks), written side by side."""
    rnd = random.Random(seed)
    bodies = {f"o{seed}-{i:04d}": rnd.randbytes(rnd.randrange(6 << 10, 90 << 10)) for i in range(n)}
    limiter = trio.CapacityLimiter(16)

    async def put(key: str) -> None:
        async with limiter:
            await store.put_object("bkt", key, bodies[key])

    async with trio.open_nursery() as nursery:
        for key in bodies:
            nursery.start_soon(put, key)
    return bodies


def _volumes(store: ObjectStore) -> dict[str, list[int]]:
    return {d.disk_id: volume_numbers(d.path) for d in store.disks}


def _usage(store: ObjectStore) -> int:
    return sum(os.path.getsize(volume_path(d.path, v)) for d in store.disks for v in volume_numbers(d.path))


def _dead_enough(store: ObjectStore, ratio: float = 0.5) -> list[tuple[str, int]]:
    """The closed volumes a pass with `ratio` would compact (by the metadata's count)."""
    placed = placed_bytes(store)
    out = []
    for d in store.disks:
        for v in volume_numbers(d.path):
            size = os.path.getsize(volume_path(d.path, v))
            dead = size - VOLUME_HEADER - placed.get((d.disk_id, v), 0)
            if v != store.seg.current_volume(d) and dead >= ratio * size:
                out.append((d.disk_id, v))
    return out


def _placements(store: ObjectStore) -> list[tuple[str, int]]:
    """(disk id, volume) of every packed shard the metadata places."""
    out = []
    for _k, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT):
        out += [(d, p[0]) for _i, d, p in rec.packed()]
    return out


async def _shards_intact(store: ObjectStore) -> None:
    """Every shard of every segment reads back at its place with valid CRCs (a read of a whole
    object would not tell: it reads around a missing copy)."""
    for _k, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT):
        chunks = await store.seg.read_all_chunks(rec, 0, store.seg.block_count(rec) - 1)
        assert all(c is not None for i, cs in chunks.items() if rec.shards[i] for c in cs), rec


async def _check(store: ObjectStore, bodies: dict[str, bytes]) -> None:
    for key, body in bodies.items():
        assert await read_all(store, "bkt", key) == body, key
    for disk_id, volume in _placements(store):  # every place points into a volume that exists
        disk = store.disks.get(disk_id)
        assert disk is not None and volume in volume_numbers(disk.path)
    await _shards_intact(store)


async def _delete_and_collect(store: ObjectStore, keys_: list[str]) -> None:
    for key in keys_:
        await store.delete_object("bkt", key)
    await gc.collect_once(store, 0)


async def _keep_a_quarter(store: ObjectStore) -> dict[str, bytes]:
    """A bucket of 200 packed objects of which three in four are deleted and collected: the
    bodies kept, in key order."""
    await store.create_bucket("bkt")
    bodies = await _fill(store, 200)
    names = sorted(bodies)
    await _delete_and_collect(store, [k for i, k in enumerate(names) if i % 4])
    return {k: bodies[k] for k in names[::4]}


async def test_compaction_gives_back_dead_space_and_keeps_every_object(tmp_path: Path) -> None:
    store = _new_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = await _fill(store, 300)
        before = _volumes(store)
        assert all(len(v) >= 3 for v in before.values()), before  # several volumes per disk
        doomed = [k for i, k in enumerate(sorted(bodies)) if i % 5]  # 4 of 5 go
        await _delete_and_collect(store, doomed)
        kept = {k: bodies[k] for k in bodies if k not in doomed}
        # the metadata's count of placed bytes (what picks the candidates) is the scan's
        for d in store.disks:
            for v in volume_numbers(d.path):
                live = [r for r in scan(volume_path(d.path, v), v) if r.live]
                assert placed_bytes(store).get((d.disk_id, v), 0) == sum(r.size for r in live)
        used = _usage(store)
        damage = _damage_log(store)

        result = await compact_once(store, settle_seconds=0)

        after = _volumes(store)
        removed = {d: set(before[d]) - set(after[d]) for d in before}
        assert result.volumes == sum(len(r) for r in removed.values()) >= len(before)
        assert all(removed.values())  # on every disk
        assert result.records > 0 and result.bytes > 0
        assert _usage(store) < used * 0.5
        assert used - _usage(store) <= result.bytes
        await _check(store, kept)
        assert damage == []
        for key in doomed[:5]:
            with pytest.raises(NoSuchKey):
                store.head_object("bkt", key)
        # a second pass (the volume current during the first, closed since, is compacted now)
        await compact_once(store, settle_seconds=0)
        assert _dead_enough(store) == []
        more = await _fill(store, 10, seed=1)
        await _check(store, kept | more)
    finally:
        _close(store)


async def test_compaction_under_concurrent_reads_and_deletes_loses_nothing(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "COPY_BATCH_RECORDS", 8)  # many commits, interleaved with the rest
    store = _new_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = await _fill(store, 240)
        names = sorted(bodies)
        await _delete_and_collect(store, names[1::3])  # dead space before compaction starts
        doomed = names[2::3]  # deleted while compaction runs
        kept = {k: bodies[k] for k in names[0::3]}
        total = compact.Compaction()
        damage = _damage_log(store)
        read_chunks = store.seg._read_chunks

        def slow_read(*a):  # (in a worker thread) reads that took the old place still open it after the move
            time.sleep(0.03)
            return read_chunks(*a)

        store.seg._read_chunks = slow_read
        reads = 0
        done = trio.Event()

        async def reader() -> None:
            nonlocal reads
            while not done.is_set():
                for key, body in kept.items():
                    assert await read_all(store, "bkt", key) == body, key
                    reads += 1

        async def deleter() -> None:
            for i, key in enumerate(doomed):
                await store.delete_object("bkt", key)
                if i % 10 == 9:
                    await gc.collect_once(store, 0)
                await trio.sleep(0.005)
            await gc.collect_once(store, 0)

        async def compactor() -> None:
            passes = 0
            while not done.is_set() or passes < 2:
                r = await compact_once(store, 0.3, settle_seconds=0)
                total.volumes += r.volumes
                total.records += r.records
                passes += 1
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(reader)
            nursery.start_soon(compactor)
            await deleter()
            done.set()
        assert total.volumes > 0 and total.records > 0 and reads > len(kept)
        await _check(store, kept)
        assert damage == []  # no read ever met a removed volume
        for key in doomed:
            with pytest.raises(NoSuchKey):
                store.head_object("bkt", key)
    finally:
        _close(store)


def _closed_shard0(store: ObjectStore, names: list[str], among: set[tuple[str, int]] | None = None
                   ) -> tuple[str, SegmentRecord, Disk, int]:
    """A key whose shard 0 (what a read reads) lies in a closed volume (one of `among`): (key,
    its segment record, the disk, the volume)."""
    for key in names:
        rec = store.get_segment(store.head_object("bkt", key).segments[0].segment_id)
        disk, place = store.disks.get(rec.shards[0]), rec.pack_of(0)
        if (disk is not None and place is not None and place[0] != store.seg.current_volume(disk)
                and (among is None or (disk.disk_id, place[0]) in among)):
            return key, rec, disk, place[0]
    raise AssertionError("no shard in a closed volume")


async def test_a_read_in_progress_keeps_the_old_volume_until_it_ends(tmp_path: Path) -> None:
    """A read that took a moved shard's old place goes on reading it: its volume is removed
    only once that read is done (or left for the next pass when it lasts too long)."""
    store = _new_store(tmp_path / "app")
    try:
        kept = await _keep_a_quarter(store)
        key, old, disk, volume = _closed_shard0(store, list(kept))
        damage = _damage_log(store)

        async def read_old() -> bytes:  # reads shard 0 only: its old place
            return b"".join([p async for p in store.seg.read(old, 0, len(kept[key]))])

        with store.reading(old.segment_id):
            result = await compact_once(store, settle_seconds=0, read_wait=0.3)  # too long a read: left
            assert result.records > 0 and f"{disk.disk_id}/{volume}: reads in progress" in result.skipped
            assert volume in volume_numbers(disk.path)
            assert store.get_segment(old.segment_id).pack_of(0) != old.pack_of(0)  # moved all the same
            assert await read_old() == kept[key]
        assert await compact_once(store, settle_seconds=0)  # nothing placed there now: it goes
        assert volume not in volume_numbers(disk.path)

        # a move while the read is in progress: the volume waits for it, then goes
        new = await _fill(store, 150, seed=3)
        shared = set()  # volumes holding some of the new objects (deleted next), to share with a kept one
        for k in new:
            rec = store.get_segment(store.head_object("bkt", k).segments[0].segment_id)
            shared |= {(d, p[0]) for _i, d, p in rec.packed()}
        key, old, disk, volume = _closed_shard0(store, list(kept), shared)
        await _delete_and_collect(store, [f"o3-{i:04d}" for i in range(150)])
        done = trio.Event()
        outcome: list[compact.Compaction] = []

        async def run() -> None:
            outcome.append(await compact_once(store, 1e-6, settle_seconds=0, read_wait=30))
            done.set()

        async with trio.open_nursery() as nursery:
            with store.reading(old.segment_id):
                nursery.start_soon(run)
                with trio.move_on_after(60):
                    while store.get_segment(old.segment_id).pack_of(0) == old.pack_of(0):
                        await trio.sleep(0.05)
                await trio.sleep(0.3)
                assert not done.is_set() and volume in volume_numbers(disk.path)
                assert await read_old() == kept[key]
        assert outcome[0].records > 0 and volume not in volume_numbers(disk.path)
        assert damage == []
        await _check(store, kept)
    finally:
        _close(store)


def _placed_at(store: ObjectStore) -> set[tuple[str, int, int]]:
    """(disk id, volume, record offset) of every packed shard the metadata places."""
    out = set()
    for _k, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT):
        out |= {(d, p[0], p[1]) for _i, d, p in rec.packed()}
    return out


def _break_header(path: str, offset: int) -> None:
    with open(path, "r+b") as f:  # the header JSON's CRC: the scan stops at this record
        f.seek(offset + 14)
        f.write(b"\0\0\0\0")


async def test_placed_records_past_a_damaged_record_are_moved(tmp_path: Path) -> None:
    """A scan stops at a damaged record; the records after it that the metadata places are
    found from the metadata and moved. A placed record that is itself damaged keeps its volume."""
    store = _new_store(tmp_path / "app")
    try:
        kept = await _keep_a_quarter(store)
        placed = _placed_at(store)
        target = None
        for d in store.disks:
            for v in volume_numbers(d.path)[:-1]:
                recs = list(scan(volume_path(d.path, v), v))
                for j, r in enumerate(recs):
                    after = [x for x in recs[j + 1:] if (d.disk_id, v, x.offset) in placed]
                    if not r.live and len(after) >= 2:
                        target = (d, v, j, r.offset)
                        break
                if target:
                    break
            if target:
                break
        assert target is not None
        disk, volume, j, offset = target
        _break_header(volume_path(disk.path, volume), offset)
        assert len(list(scan(volume_path(disk.path, volume), volume))) == j
        result = await compact_once(store, 1e-6, settle_seconds=0)
        assert result.records > 0 and volume not in volume_numbers(disk.path)
        await _check(store, kept)

        # a damaged record the metadata places: its volume stays (the healer's business)
        placed = _placed_at(store)  # kept objects only
        more = await _fill(store, 150, seed=4)
        # a closed volume holding kept records and new ones (those go next); which disks and
        # volumes they share depends on placement and on the order concurrent appends land in,
        # so any disk's will do
        shared = {(d, v) for d, v, _o in _placed_at(store) - placed}
        by_id = {d.disk_id: d for d in store.disks}
        disk_id, victim_volume, victim_offset = next(
            (d, v, o) for d, v, o in sorted(placed)
            if (d, v) in shared and v != store.seg.current_volume(by_id[d]))
        disk, victim = by_id[disk_id], (victim_volume, victim_offset)
        _break_header(volume_path(disk.path, victim[0]), victim[1])
        await _delete_and_collect(store, list(more))
        result = await compact_once(store, 1e-6, settle_seconds=0)
        assert victim[0] in volume_numbers(disk.path)
        assert f"{disk.disk_id}/{victim[0]}: placed records past damage" in result.skipped
        for key, body in kept.items():
            assert await read_all(store, "bkt", key) == body
    finally:
        _close(store)


def _damage_head(path: str) -> None:
    with open(path, "r+b") as f:  # garbage over the 64-byte head (reads never look at it)
        f.write(b"\xa5" * VOLUME_HEADER)


def _kept_by_volume(store: ObjectStore, kept: dict[str, bytes]) -> dict[tuple[str, int], set[str]]:
    """(disk id, closed volume) -> the kept keys with a shard placed there."""
    out: dict[tuple[str, int], set[str]] = {}
    by_id = {d.disk_id: d for d in store.disks}
    for key in kept:
        rec = store.get_segment(store.head_object("bkt", key).segments[0].segment_id)
        for _i, d, p in rec.packed():
            if p[0] != store.seg.current_volume(by_id[d]):
                out.setdefault((d, p[0]), set()).add(key)
    return out


async def test_a_volume_with_a_damaged_head_is_compacted(tmp_path: Path) -> None:
    """No read needs a volume's head, and the compactor finds the records past it without it:
    a volume whose head is damaged gives its space back once its records are dead (deleted, or
    moved out by heal, which finds the damage), and its live records are moved like any others
    (to a volume with a good head, which recovery reads again)."""
    store = _new_store(tmp_path / "app")
    try:
        kept = await _keep_a_quarter(store)
        by_volume = _kept_by_volume(store, kept)
        picked: list[tuple[str, int]] = []
        taken: set[str] = set()
        for where, held in sorted(by_volume.items()):  # three volumes sharing no object
            if not held & taken:
                picked.append(where)
                taken |= held
            if len(picked) == 3:
                break
        assert len(picked) == 3, by_volume
        by_id = {d.disk_id: d for d in store.disks}
        for d, v in picked:
            _damage_head(volume_path(by_id[d].path, v))
            with pytest.raises(FormatError):
                check_volume_head(volume_path(by_id[d].path, v), v)
        deleted, healed, live = picked
        # every record of one made dead by deleting its objects
        await _delete_and_collect(store, sorted(by_volume[deleted]))
        kept = {k: b for k, b in kept.items() if k not in by_volume[deleted]}
        # and of another by heal: the scrub finds each shard there damaged and rebuilds it as a file
        repair = SegmentRepair(store)
        for key in sorted(by_volume[healed]):
            res = await repair.check(store.head_object("bkt", key).segments[0].segment_id)
            assert res is not None and res.rebuilt, key
        placed = placed_bytes(store)
        assert placed.get(deleted, 0) == placed.get(healed, 0) == 0 and placed[live] > 0
        damage = _damage_log(store)

        result = await compact_once(store, 1e-6, settle_seconds=0)

        for d, v in picked:
            assert v not in volume_numbers(by_id[d].path), (d, v, result.skipped)
        assert not any(s.startswith(f"{d}/{v}:") for d, v in picked for s in result.skipped), result.skipped
        assert result.records >= len(by_volume[live])
        await _check(store, kept)
        assert damage == []
        for d, v in set(_placements(store)):  # every packed shard now in a volume recovery reads
            check_volume_head(volume_path(by_id[d].path, v), v)
        for key in kept:
            assert await repair.check(store.head_object("bkt", key).segments[0].segment_id) is None, key
    finally:
        _close(store)


async def test_compacted_placements_survive_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "app"
    store = _new_store(root)
    try:
        kept = await _keep_a_quarter(store)
        result = await compact_once(store, settle_seconds=0)
        assert result.volumes > 0 and result.records > 0
        places = sorted(_placements(store))
    finally:
        _close(store)
    store = open_store(root, grace=0)
    try:
        assert sorted(_placements(store)) == places
        damage = _damage_log(store)
        await _check(store, kept)
        assert damage == []
    finally:
        _close(store)


async def test_the_current_volume_is_never_removed(tmp_path: Path) -> None:
    store = _new_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = await _fill(store, 150)
        current = {d.disk_id: store.seg.current_volume(d) for d in store.disks}
        assert all(v is not None and v > 1 for v in current.values())
        await _delete_and_collect(store, list(bodies))  # every record of every volume dead
        result = await compact_once(store, 0.01, settle_seconds=0)
        assert result.records == 0 and result.volumes > 0
        assert _volumes(store) == {d: [v] for d, v in current.items()}  # only the current ones left
        assert {d.disk_id: store.seg.current_volume(d) for d in store.disks} == current
        more = await _fill(store, 40, seed=2)  # still appended to (and on to the next when full)
        await _check(store, more)
        for _ in range(2):
            await compact_once(store, 0.01, settle_seconds=0)
            for d in store.disks:
                assert store.seg.current_volume(d) in volume_numbers(d.path)
            await _check(store, more)
    finally:
        _close(store)


async def test_a_pass_is_skipped_while_no_packed_record_died(tmp_path: Path) -> None:
    """The GC service's hook: the survey reads every segment record, so it runs only when a
    record may have died since the last clean pass (or once in `idle_every`)."""
    store = _new_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = await _fill(store, 150)
        assert await compact.compact_if_due(store, every=0) is not None  # the first after a start runs
        assert await compact.compact_if_due(store, every=0) is None  # nothing died since
        doomed = sorted(bodies)[1::2] + sorted(bodies)[2::4]  # three of four go
        await _delete_and_collect(store, doomed)
        result = await compact.compact_if_due(store, every=0)
        assert result is not None and result.volumes > 0 and result.skipped == []
        assert await compact.compact_if_due(store, every=0) is None
        assert await compact.compact_if_due(store, every=0, idle_every=0) is not None  # the safety net
        await _delete_and_collect(store, sorted(bodies)[:1])
        assert await compact.compact_if_due(store, every=0) is not None
        await _check(store, {k: v for k, v in bodies.items() if k not in doomed and k != sorted(bodies)[0]})
    finally:
        _close(store)


async def test_without_a_writer_the_newest_volume_stays(tmp_path: Path) -> None:
    """After a restart nothing has been appended yet: the newest volume is kept even when dead,
    so the next volume opened never takes the number of one that was removed."""
    root = tmp_path / "app"
    store = _new_store(root)
    try:
        await store.create_bucket("bkt")
        bodies = await _fill(store, 120)
        await _delete_and_collect(store, list(bodies))
    finally:
        _close(store)
    store = _new_store(root)
    try:
        newest = {d: v[-1] for d, v in _volumes(store).items()}
        assert all(v > 1 for v in newest.values())
        result = await compact_once(store, 0.01, settle_seconds=0)
        assert result.volumes > 0
        assert _volumes(store) == {d: [v] for d, v in newest.items()}
        n = 0
        while any(store.seg.current_volume(d) is None for d in store.disks):  # every disk appended to
            await store.put_object("bkt", f"new{n}", b"x" * 5000)
            n += 1
        assert {d.disk_id: store.seg.current_volume(d) for d in store.disks} == {d: v + 1 for d, v in newest.items()}
        await compact_once(store, 0.01, settle_seconds=0)  # now the old newest goes
        assert _volumes(store) == {d.disk_id: [newest[d.disk_id] + 1] for d in store.disks}
        for i in range(n):
            assert await read_all(store, "bkt", f"new{i}") == b"x" * 5000
    finally:
        _close(store)


async def test_a_write_still_to_commit_keeps_its_volume(tmp_path: Path) -> None:
    """A record appended but not yet committed looks unplaced: its volume is left alone until
    the record is older than the settle time."""
    store = _new_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        disk = next(iter(store.disks))
        hdr = ShardHeader("ab" * 16, 0, 1, 2, 1 << 20, 4, time.time_ns(), "app", {"bucket": "bkt"})
        pending, _ = await store.seg.volume_writer(disk).append(encode_record(hdr, [b"data"]))
        bodies = await _fill(store, 150)  # the pending record's volume is closed meanwhile
        assert store.seg.current_volume(disk) != pending
        await _delete_and_collect(store, list(bodies))
        result = await compact_once(store, 0.01)
        assert pending in volume_numbers(disk.path)
        assert any(s.startswith(f"{disk.disk_id}/{pending}:") for s in result.skipped)
        await compact_once(store, 0.01, settle_seconds=0)
        assert pending not in volume_numbers(disk.path)
    finally:
        _close(store)


# --- kill -9 during compaction ---------------------------------------------------------------


async def _crash_child(root: Path, step: str) -> None:
    """Write, delete most, collect, then compact and SIGKILL ourselves at `step` (`+head`: with
    the head of every closed volume damaged first)."""
    store = _new_store(root)
    kept = {k: hashlib.md5(body).hexdigest() for k, body in (await _keep_a_quarter(store)).items()}
    (root / "kept.json").write_text(json.dumps({"kept": kept, "used": _usage(store)}))
    compact.COPY_BATCH_RECORDS = 4
    step, heads, _ = step.partition("+head")
    if heads:
        for d in store.disks:
            for v in volume_numbers(d.path):
                if v != store.seg.current_volume(d):
                    _damage_head(volume_path(d.path, v))

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    name, _, nth = step.partition("@")
    count = [int(nth or 1)]

    def due() -> bool:
        count[0] -= 1
        return count[0] == 0

    if name == "append":  # copies are durable, their placements not committed
        inner = volumes.VolumeWriter.append

        async def append(self, parts):
            place = await inner(self, parts)
            if due():
                die()
            return place

        volumes.VolumeWriter.append = append
    elif name == "batch":  # some batches committed, the rest not
        orig_copy = compact._copy

        async def copy(*a):
            out = await orig_copy(*a)
            if due():
                die()
            return out

        compact._copy = copy
    elif name == "moved":  # every record of a volume moved, durably; the volume not removed
        async def wait(*a):
            die()

        compact._wait_reads = wait
    elif name == "removed":  # a volume unlinked, its directory not synced
        orig_remove = compact._remove

        def remove(*a):
            orig_remove(*a)
            if due():
                die()

        compact._remove = remove
    await compact_once(store, settle_seconds=0)
    print("finished without a crash", flush=True)


def _live_records(root: Path) -> dict[str, int]:
    """segment id -> its live records, over every volume of every disk."""
    return {seg: len(found) for seg, found in packed_shards(root).items()}


async def test_the_sweep_marks_a_crashed_writes_records_dead(tmp_path: Path) -> None:
    # a packed write synced but never committed (a crash in between), then a restart
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket("bkt")
    await store.put_object("bkt", "kept", b"k" * 3000)
    geo = store.geometry_for("default", 3000)
    lost, _ = await store.seg.write(b"o" * 3000, geo, store.disks.pool("default"), {"bucket": "bkt", "key": "lost"})
    assert lost is not None and lost.packed()
    kept = store.head_object("bkt", "kept").segments[0].segment_id
    _close(store)
    store = open_store(root)
    try:
        assert _live_records(root) == {kept: geo.k + geo.m, lost.segment_id: geo.k + geo.m}
        assert gc.sweep_orphans(store) == 0  # no shard file, no tmp file: the volume is noted
        await store.put_object("bkt", "new", b"n" * 3000)  # the daemon serves meanwhile
        assert await gc.sweep_unplaced_records(store) == geo.k + geo.m
        new = store.head_object("bkt", "new").segments[0].segment_id
        # dead: compaction counts it, recovery skips it
        assert _live_records(root) == {kept: geo.k + geo.m, new: geo.k + geo.m}
        assert await read_all(store, "bkt", "kept") == b"k" * 3000
        assert await gc.sweep_unplaced_records(store) == 0  # once
    finally:
        _close(store)


@pytest.mark.parametrize("step", ["append@5", "batch@3", "moved", "removed@2", "batch@3+head", "removed@2+head"])
async def test_kill_9_during_compaction_loses_nothing(tmp_path: Path, step: str) -> None:
    root = tmp_path / "app"
    proc = await trio.run_process([sys.executable, "-m", "tests.engine.test_compact", str(root), step],
                                  cwd=REPO, check=False, capture_stdout=True, capture_stderr=True)
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr.decode()[-3000:])
    saved = json.loads((root / "kept.json").read_text())
    kept: dict[str, str] = saved["kept"]
    store = open_store(root, grace=0)
    try:
        store.drop_stale_staging()
        gc.sweep_orphans(store)
        for key, md5 in kept.items():
            assert hashlib.md5(await read_all(store, "bkt", key)).hexdigest() == md5, key
        await _shards_intact(store)
        # a pass after the restart finishes the job, and still everything reads back
        store.seg.volume_bytes = VOLUME
        await store.put_object("bkt", "after", b"y" * 3000)  # a current volume: the old newest may go
        await compact_once(store, settle_seconds=0)
        for key, md5 in kept.items():
            assert hashlib.md5(await read_all(store, "bkt", key)).hexdigest() == md5, key
        assert {(d, v) for d, v in _placements(store)} <= {(d, v) for d, vs in _volumes(store).items() for v in vs}
        await _shards_intact(store)
        assert _usage(store) < saved["used"] * 0.8 and _dead_enough(store) == []
    finally:
        _close(store)


if __name__ == "__main__":
    trio.run(_crash_child, Path(sys.argv[1]), sys.argv[2])
