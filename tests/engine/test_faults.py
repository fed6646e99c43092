"""Real faults on the data disks: removed disks, flipped bits, a full filesystem."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.engine import keys
from appliance.engine.codec import Geometry
from appliance.engine.errors import InsufficientShards, InsufficientStorage
from appliance.engine.records import HealEntry
from appliance.engine.segments import shard_location
from appliance.engine.shardfile import batch_bytes, block_count

from .conftest import open_store, read_all

SIZES = [0, 1, 1000, (1 << 20) - 1, 1 << 20, (3 << 20) + 17]


async def _populate(store) -> dict[str, bytes]:
    bodies = {}
    for i, size in enumerate(SIZES):
        body = os.urandom(size)
        await store.put_object("bkt", f"obj{i}", body)
        bodies[f"obj{i}"] = body
    return bodies


def _hide(path: Path) -> Path:
    """Make a disk unreadable: its shard tree disappears (root ignores chmod, so move it)."""
    hidden = path.with_name(path.name + ".gone")
    os.rename(path, hidden)
    return hidden


async def test_any_m_disks_removed_reads_byte_exact(store) -> None:
    bodies = await _populate(store)
    disks = [d for d in store.disks]
    geo = store.geometry()
    assert (geo.k, geo.m) == (4, 2)
    for combo in itertools.combinations(disks, geo.m):
        hidden = [(_hide(d.path), d.path) for d in combo]
        try:
            for key, body in bodies.items():
                assert await read_all(store, "bkt", key) == body, (key, [d.disk_id for d in combo])
        finally:
            for h, p in hidden:
                os.rename(h, p)


async def test_deleted_disk_directories(store) -> None:
    bodies = await _populate(store)
    victims = random.Random(7).sample(list(store.disks), 2)
    for d in victims:
        shutil.rmtree(d.path)
    for key, body in bodies.items():
        assert await read_all(store, "bkt", key) == body
    # The damage is recorded for the healer.
    damaged = [HealEntry.decode(v) for _, v in store.db.scan(keys.HEAL)]
    assert damaged and all(e.shards for e in damaged)


async def test_m_plus_one_disks_removed_is_a_clear_error(store) -> None:
    body = os.urandom((2 << 20) + 5)
    await store.put_object("bkt", "k", body)
    hidden = [(_hide(d.path), d.path) for d in list(store.disks)[:3]]
    try:
        with pytest.raises(InsufficientShards, match="chunks"):
            await read_all(store, "bkt", "k")
    finally:
        for h, p in hidden:
            os.rename(h, p)
    assert await read_all(store, "bkt", "k") == body


async def test_flipped_bits_detected_and_corrected(store) -> None:
    """Up to m shards of every segment get random bit flips: reads stay byte-exact."""
    bodies = await _populate(store)
    rng = random.Random(11)
    flipped = 0
    for key in bodies:
        v = store.head_object("bkt", key)
        for ref in v.segments:
            rec = store.get_segment(ref.segment_id)
            for idx in rng.sample(range(len(rec.shards)), rec.m):
                disk = store.disks.get(rec.shards[idx])
                assert disk is not None
                path, data_start, _ = shard_location(disk, rec, idx)  # a shard file, or a packed record
                geo = Geometry(rec.k, rec.m, rec.block_size)
                size = data_start + batch_bytes(geo, rec.length, 0, block_count(rec.length, rec.block_size) - 1)
                with open(path, "r+b") as f:
                    for _ in range(5):
                        pos = rng.randrange(data_start, size)
                        f.seek(pos)
                        b = f.read(1)
                        f.seek(pos)
                        f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
                        flipped += 1
    assert flipped
    for key, body in bodies.items():
        assert await read_all(store, "bkt", key) == body
    assert sum(d.counters.checksum_failures for d in store.disks) > 0
    assert list(store.db.scan(keys.HEAL)), "damage was not recorded"


async def test_corrupt_header_region_and_truncation(store) -> None:
    body = os.urandom(3 << 20)
    v = await store.put_object("bkt", "t", body)
    rec = store.get_segment(v.segments[0].segment_id)
    d0 = store.disks.get(rec.shards[0])
    d1 = store.disks.get(rec.shards[1])
    assert d0 and d1
    with open(d0.shard_path(rec.segment_id, 0), "r+b") as f:
        f.truncate(9000)  # truncated mid-chunk
    with open(d1.shard_path(rec.segment_id, 1), "r+b") as f:
        f.seek(8192 + 100)
        f.write(b"\x00" * 64)
    assert await read_all(store, "bkt", "t") == body


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 48 MiB ext4 filesystem on a loop device (a real block device)."""
    img = tmp_path / "small.img"
    with open(img, "wb") as f:
        f.truncate(48 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], check=True, capture_output=True,
                          text=True).stdout.strip()
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        subprocess.run(["mount", loop, str(mnt)], check=True)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


async def test_full_disk_writes_elsewhere_or_fail_cleanly(tmp_path: Path, small_fs: Path) -> None:
    root = tmp_path / "app"
    (root / "disks").mkdir(parents=True)
    os.symlink(small_fs, root / "disks" / "disk0")  # disk0 is the small real filesystem
    store = open_store(root)
    try:
        await store.create_bucket("bkt")
        small = next(d for d in store.disks if d.path == root / "disks" / "disk0")
        small.reserve_bytes = 0  # let it fill to the last block
        stored: dict[str, bytes] = {}
        for i in range(40):  # ~ 40 x 4 MiB = 160 MiB of data; disk0 holds ~48 MiB
            body = os.urandom(4 << 20)
            try:
                await store.put_object("bkt", f"o{i}", body)
                stored[f"o{i}"] = body
            except InsufficientStorage as exc:
                assert "shards" in exc.message or "disks" in exc.message
        assert len(stored) == 40, "other disks had room: every write must succeed"
        st = os.statvfs(small.path)
        assert st.f_bavail * st.f_frsize < 2 << 20  # it really filled up
        degraded = [store.get_segment(store.head_object("bkt", k).segments[0].segment_id) for k in stored]
        assert any(None in rec.shards for rec in degraded), "later segments must record the missing shard"
        for key, body in stored.items():
            assert await read_all(store, "bkt", key) == body
    finally:
        store.db.close()
