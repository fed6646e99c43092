"""Packed shards (volumes.py): the record format against hostile bytes, reads that cannot be
pointed at another object's record, deletes that mark records dead, scrub and heal of packed
shards, and m lost disks."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from appliance.engine import gc, keys, segments, volumes
from appliance.engine.cachedopen import open_cached
from appliance.engine.codec import Geometry
from appliance.engine.disks import Disk
from appliance.engine.errors import FormatError
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import SegmentRecord
from appliance.engine.repair import SegmentRepair
from appliance.engine.shardfile import ShardHeader, read_chunk_views
from appliance.engine.volumes import (
    DEAD,
    LIVE,
    MAX_HEADER_JSON,
    VOLUME_HEADER,
    VolumeWriter,
    _record_head,
    encode_record,
    read_record_header,
    record_heads,
    scan,
    volume_numbers,
    volume_path,
)
from tests.faultfs import FaultDisk
from tests.faultfs import usable as faultfs_usable

from .conftest import open_store, read_all


def _segment(store: ObjectStore, key: str) -> SegmentRecord:
    v = store.head_object("bkt", key)
    rec = store.db.get_record(SegmentRecord, keys.segment(v.segments[0].segment_id))
    assert rec is not None
    return rec


def _flip_packed_byte(store: ObjectStore, rec: SegmentRecord, shard: int, at: int) -> Disk:
    """Flip one byte `at` bytes into the chunk of a packed shard (written through the page
    cache, as a disk's silent corruption would read); its disk."""
    disk = store.disks.get(rec.shards[shard] or "")
    assert disk is not None
    vol, _, data = rec.packs[shard] or [0, 0, 0]
    with open(volume_path(disk.path, vol), "r+b") as f:
        f.seek(data + at)
        b = f.read(1)
        f.seek(data + at)
        f.write(bytes([b[0] ^ 0xFF]))
    return disk


def _header(seg: str, shard: int = 0, length: int = 5) -> ShardHeader:
    return ShardHeader(seg, shard, 1, 2, 1 << 20, length, 1, "app", {"bucket": "b", "key": "k"})


@pytest.mark.parametrize("identity, enc, count", [
    ({"bucket": "b", "key": "k"}, None, 6),
    ({"bucket": "b", "key": 'q"uote\\,"shard":0,\u00e9\ud83d\ude00', "user_meta": {"x-amz-meta-a": "\u00fc"}},
     {"alg": "AES256-GCM", "wrapped": "w" * 60}, 6),
    ({"bucket": "b", "key": "k", "user_meta": {"m": "v" * 100}}, None, 20),  # two-digit shards
    # at the size limit with shard 0-9: shards 10+ (one byte longer) drop their user metadata
    ({"bucket": "b", "key": "k", "user_meta": {"m": "<fill>"}}, None, 12),
    ({"bucket": "b", "key": "k", "user_meta": {"m": "v" * 9000}}, None, 12),  # all of them drop it
])
def test_record_heads_match_one_encode_per_shard(identity: dict[str, Any], enc: dict[str, Any] | None,
                                                 count: int) -> None:
    """The heads encoded once for every shard are byte for byte the heads encoded per shard,
    user metadata dropped (or not) for exactly the same shards."""
    def header(shard: int) -> ShardHeader:
        return ShardHeader("ab" * 16, shard, count - 2, 2, 1 << 20, 5, 7, "app", identity, enc)

    fill = identity.get("user_meta", {}).get("m") == "<fill>"
    if fill:  # shard 0's JSON exactly MAX_HEADER_JSON long
        identity = dict(identity, user_meta={"m": ""})
        identity["user_meta"]["m"] = "v" * (MAX_HEADER_JSON - len(header(0).json_body(1 << 20)))
        assert len(header(9).json_body(1 << 20)) == MAX_HEADER_JSON
    heads = record_heads(header(0), count)
    assert heads == [_record_head(header(i)) for i in range(count)]
    if fill:  # the boundary this case is built to straddle
        assert [b"user_meta" in bytes(h[1]) for h in heads] == [True] * 10 + [False] * 2


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


async def test_small_puts_started_together_share_one_group_per_disk(tmp_path: Path) -> None:
    """Records queued in one turn of the event loop go out together: the first small PUT of a
    burst does not launch a group of its own (one worker-thread call, fdatasync included, per
    disk for the lot), and every PUT still waits for its own records to be durable."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        bodies = {f"k{i}": os.urandom(100 + i) for i in range(12)}

        async def put(key: str) -> None:
            await store.put_object("bkt", key, bodies[key])

        async with trio.open_nursery() as n:
            for key in bodies:
                n.start_soon(put, key)
        writers = list(store.seg._volumes.values())
        assert writers and all(w.groups == 1 for w in writers)
        for key, body in bodies.items():
            assert await read_all(store, "bkt", key) == body
        await store.put_object("bkt", "alone", b"one more")  # an idle writer still gets going
        placed = set(_segment(store, "alone").shards)
        assert {disk_id: w.groups for (disk_id, _path), w in store.seg._volumes.items() if disk_id in placed} == {
            disk_id: 2 for disk_id in placed}
        assert await read_all(store, "bkt", "alone") == b"one more"
    finally:
        store.db.close()


async def test_a_place_that_names_another_segment_reads_as_damage(tmp_path: Path) -> None:
    """Even with a wrong place in the metadata, a read never returns another object's bytes
    (whose chunk checksums are valid): the record's segment id is checked in the same pread."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        await store.put_object("bkt", "a", b"A" * 1000)
        ra = _segment(store, "a")
        for n in range(100):  # an object with a shard on a disk of a's (3 of 6 disks each)
            await store.put_object("bkt", f"b{n}", b"B" * 1000)
            rb = _segment(store, f"b{n}")
            if set(rb.shards) & set(ra.shards):
                break
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
        disk = _flip_packed_byte(store, rec, 0, 10)  # in shard 0's chunk
        vol = (rec.packs[0] or [0])[0]
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


# --- reads the page cache answers on the event loop (segments._read_cached) ------------------

def _drop_cache(store: ObjectStore) -> None:
    """Evict every volume file from the page cache (its pages are clean: written and synced)."""
    for d in store.disks:
        for n in volume_numbers(d.path):
            fd = os.open(volume_path(d.path, n), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _cached_reads_work(where: Path) -> bool:
    probe = where / "probe"
    probe.write_bytes(b"x" * 4096)
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()


def _count_threaded_reads(store: ObjectStore) -> list[int]:
    calls = [0]
    threaded = store.seg._read_chunks

    def counted(*args: object) -> object:
        calls[0] += 1
        return threaded(*args)  # type: ignore[arg-type]

    store.seg._read_chunks = counted  # type: ignore[method-assign]
    return calls


async def test_a_cached_packed_read_needs_no_worker_thread_and_an_uncached_one_waits(
        store: ObjectStore, tmp_path: Path) -> None:
    if not _cached_reads_work(tmp_path):
        pytest.skip("this filesystem does not answer RWF_NOWAIT reads")
    bodies = {f"k{i}": os.urandom(size) for i, size in enumerate((1, 4096, 300_000, 900_000))}
    for key, body in bodies.items():
        await store.put_object("bkt", key, body)
    calls = _count_threaded_reads(store)
    for key, body in bodies.items():  # a disk's first read is threaded: it decides
        assert await read_all(store, "bkt", key) == body
    assert calls[0] > 0 and store.seg.cached_reads and all(store.seg.cached_reads.values())
    calls[0] = 0
    for key, body in bodies.items():
        assert await read_all(store, "bkt", key) == body
    assert calls[0] == 0  # just written and read: in the page cache, read in the loop
    for key, body in bodies.items():
        _drop_cache(store)
        before = calls[0]
        assert await read_all(store, "bkt", key, start=len(body) // 2) == body[len(body) // 2:]
        assert calls[0] - before == _segment(store, key).k  # not cached: each data shard read in a thread
        assert await read_all(store, "bkt", key) == body
        assert calls[0] - before == _segment(store, key).k  # and now cached again


async def test_reads_the_cache_answers_still_let_other_tasks_run(store: ObjectStore, tmp_path: Path) -> None:
    """A read that never waits is still a trio checkpoint: a task reading in a loop (a reader
    under compaction, a client streaming many small objects) must not starve the others."""
    await store.put_object("bkt", "obj", b"x" * 3000)
    assert await read_all(store, "bkt", "obj") == b"x" * 3000  # the disks are probed
    ran_during: list[int] = []
    other_runs = [0]

    async def reader() -> None:
        for _ in range(50):
            assert await read_all(store, "bkt", "obj") == b"x" * 3000
        ran_during.append(other_runs[0])

    async def other() -> None:
        while not ran_during:
            other_runs[0] += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as n:
        n.start_soon(other)
        n.start_soon(reader)
    assert ran_during[0] > 0


async def test_damage_in_a_cached_record_is_read_around_and_reported(store: ObjectStore, tmp_path: Path) -> None:
    body = os.urandom(9000)
    await store.put_object("bkt", "obj", body)
    rec = _segment(store, "obj")
    for _ in range(2):
        assert await read_all(store, "bkt", "obj") == body  # now cached, the disks probed
    if _cached_reads_work(tmp_path):  # the damaged shard's disk is read in the loop first
        assert store.seg.cached_reads.get(rec.shards[0]) is True
    _flip_packed_byte(store, rec, 0, 3)  # a data shard's, through the page cache
    reported: list[tuple[str, list[int], str]] = []
    store.seg.on_damage = lambda seg, shards, why: reported.append((seg, shards, why))
    assert await read_all(store, "bkt", "obj") == body
    assert reported == [(rec.segment_id, [0], "read")]


async def _only_threaded_reads(root: Path) -> None:
    store = open_store(root / "app")
    try:
        await store.create_bucket("bkt")
        body = os.urandom(5000)
        await store.put_object("bkt", "obj", body)
        calls = _count_threaded_reads(store)
        for _ in range(3):
            assert await read_all(store, "bkt", "obj") == body
        assert store.seg.cached_reads and not any(store.seg.cached_reads.values())
        assert calls[0] == 3 * _segment(store, "obj").k
    finally:
        store.db.close()


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no tmpfs at /dev/shm")
async def test_a_filesystem_without_nowait_reads_takes_the_threaded_path(tmp_path: Path) -> None:
    """tmpfs refuses RWF_NOWAIT with EOPNOTSUPP: its disks are read in worker threads, as before."""
    root = Path(tempfile.mkdtemp(prefix="stowage-test-", dir="/dev/shm"))
    try:
        await _only_threaded_reads(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not faultfs_usable(), reason="needs root and /dev/fuse")
async def test_a_fuse_disk_is_never_read_in_the_loop(tmp_path: Path) -> None:
    """An open on FUSE waits for its server (a stalled one: for ever), so the loop never opens
    a volume there, whatever the filesystem says of RWF_NOWAIT."""
    with FaultDisk.start(tmp_path / "base", tmp_path / "mnt") as disk:
        await _only_threaded_reads(disk.mountpoint)


def test_a_cached_only_read_refuses_what_is_not_cached_or_not_there(tmp_path: Path) -> None:
    if not _cached_reads_work(tmp_path):
        pytest.skip("this filesystem does not answer RWF_NOWAIT reads")
    geo = Geometry(1, 0, 1 << 20)
    path = str(tmp_path / "shard")
    with open(path, "wb") as f:
        f.write(b"\0" * 4096 + os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    with pytest.raises(BlockingIOError):
        read_chunk_views(path, geo, 1000, 0, 0, data_start=4096, cached_only=True)
    read_chunk_views(path, geo, 1000, 0, 0, data_start=4096)  # the waiting read brings it in
    assert read_chunk_views(path, geo, 1000, 0, 0, data_start=4096, cached_only=True) == [None]  # random CRC
    with pytest.raises(BlockingIOError):  # past the end of the file: not "damage" here
        read_chunk_views(path, geo, 1000, 0, 0, data_start=(1 << 20) + 4000, cached_only=True)


def _drop_dentries() -> bool:
    """Evict the kernel's unused dentries and inodes (root, where /proc/sys/vm is writable)."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")
        return True
    except OSError:
        return False


def test_open_cached_refuses_a_path_the_dentry_cache_lost(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "file"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    os.close(open_cached(str(path)))  # just made: cached
    if not _drop_dentries():
        pytest.skip("cannot drop the kernel's caches here")
    with pytest.raises(BlockingIOError):
        open_cached(str(path))
    assert path.read_bytes() == b"x"  # a waiting open brings it back
    os.close(open_cached(str(path)))
    missing = tmp_path / "missing"
    assert not missing.exists()  # the lookup leaves a negative dentry: "no such file", cached
    with pytest.raises(FileNotFoundError):
        open_cached(str(missing))


async def test_a_volume_whose_name_is_not_cached_is_read_in_a_thread(store: ObjectStore, tmp_path: Path) -> None:
    """A volume the kernel evicted (its name and its pages) is opened and read in a worker
    thread, as an uncached byte is (that the loop's open alone refuses an uncached name is
    test_open_cached_refuses_a_path_the_dentry_cache_lost: eviction takes the pages too)."""
    if not _cached_reads_work(tmp_path):
        pytest.skip("this filesystem does not answer RWF_NOWAIT reads")
    body = os.urandom(5000)
    await store.put_object("bkt", "obj", body)
    for _ in range(2):
        assert await read_all(store, "bkt", "obj") == body  # the disks probed, the record cached
    calls = _count_threaded_reads(store)
    assert await read_all(store, "bkt", "obj") == body and calls[0] == 0
    if not _drop_dentries():
        pytest.skip("cannot drop the kernel's caches here")
    assert await read_all(store, "bkt", "obj") == body
    assert calls[0] == _segment(store, "obj").k


class _StuckWriter:
    """A disk's volume writer that never answers (a hung disk), or fails every append."""

    def __init__(self, error: OSError | None = None) -> None:
        self.error = error
        self.jobs: list[tuple[volumes.Append, Any]] = []
        self.current = None

    def submit(self, parts: list[bytes | memoryview], notify: Any = None, launch: bool = True) -> volumes.Append:
        job = volumes.Append(parts, sum(len(p) for p in parts), notify=notify)
        self.jobs.append((job, notify))
        if self.error is not None:
            job.error = self.error
            trio.lowlevel.current_trio_token().run_sync_soon(notify, job)
        return job

    idle_with_queue = False

    def launch_if_idle(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_small_put_goes_on_past_a_hung_or_failing_disk(store: ObjectStore,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The packed append of a small PUT (three copies, two needed): a copy whose disk fails is
    left out at once, one whose disk hangs is given up after stall_seconds; both are recorded
    damaged for the healer, the object reads back, and a hung append answering later changes
    nothing."""
    disks = list(store.disks)
    monkeypatch.setattr(segments, "choose", lambda pool, geo, *a, **kw: disks[: geo.n])
    store.seg.stall_seconds = 0.3
    hung, failing = _StuckWriter(), _StuckWriter(OSError(errno.EIO, "Input/output error"))
    store.seg._volumes[(disks[0].disk_id, str(disks[0].path))] = hung  # type: ignore[assignment]
    body = os.urandom(4096)
    v = await store.put_object("bkt", "hung", body)
    rec = store.get_segment(v.segments[0].segment_id)
    assert (rec.k, rec.shards[0], rec.damaged) == (1, None, [0])
    assert await read_all(store, "bkt", "hung") == body
    job, notify = hung.jobs[0]
    job.place = (1, 4096)
    notify(job)  # the hung disk answers after all: too late to count
    assert store.get_segment(rec.segment_id) == rec
    store.seg._volumes[(disks[0].disk_id, str(disks[0].path))] = failing  # type: ignore[assignment]
    errors = disks[0].counters.io_errors
    v = await store.put_object("bkt", "failing", body)
    rec = store.get_segment(v.segments[0].segment_id)
    assert (rec.shards[0], rec.damaged, disks[0].counters.io_errors) == (None, [0], errors + 1)
    assert await read_all(store, "bkt", "failing") == body
