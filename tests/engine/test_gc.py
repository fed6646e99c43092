"""Garbage collection: unreferenced segments go (record first, then files); shared ones stay;
a copy racing the collection fails cleanly instead of referencing deleted data."""

from __future__ import annotations

import os

import pytest

from appliance.engine import keys
from appliance.engine.errors import NoSuchKey
from appliance.engine.gc import collect_once
from appliance.engine.records import SegmentRecord
from appliance.engine.volumes import scan, volume_numbers, volume_path

from .conftest import read_all


def _files(store, seg_id: str) -> list[str]:
    """Where a segment's shards still lie: shard files, and live packed records (volumes.py)."""
    files = [p for d in store.disks for s, _i, p in d.iter_shard_files() if s == seg_id]
    for d in store.disks:
        for n in volume_numbers(d.path):
            files += [f"{volume_path(d.path, n)}@{r.offset}" for r in scan(volume_path(d.path, n), n)
                      if r.live and r.header.segment_id == seg_id]
    return files


@pytest.mark.parametrize("size", [300_000, 3 << 20])  # packed into volumes, and shard files
async def test_gc_removes_unreferenced_and_keeps_shared(store, size: int) -> None:
    old = await store.put_object("bkt", "k", os.urandom(size))
    shared = await store.put_object("bkt", "s", os.urandom(300_000))
    await store.copy_object(shared, "bkt", "s2")
    await store.put_object("bkt", "k", b"new")
    await store.delete_object("bkt", "s")
    old_id, shared_id = old.segments[0].segment_id, shared.segments[0].segment_id
    assert _files(store, old_id)
    assert await collect_once(store, 0) == 1
    assert store.db.get(keys.segment(old_id)) is None and not _files(store, old_id)
    assert not list(store.db.scan(keys.GC))
    assert store.db.get_record(SegmentRecord, keys.segment(shared_id)).refcount == 1
    assert len(await read_all(store, "bkt", "s2")) == 300_000
    assert await read_all(store, "bkt", "k") == b"new"


@pytest.mark.parametrize("size", [300_000, 9 << 20])
async def test_a_stream_still_read_keeps_its_segments_past_the_grace(store, size: int) -> None:
    """A GET streaming a replaced version to a slow client (or a file read in the mount after
    an unlink) past the grace lost its data mid-body, and the missing shards were counted as
    disk errors (found by fuzzing). Its segments stay until the stream ends."""
    body = os.urandom(size)
    old = await store.put_object("bkt", "k", body)
    stream = store.read_object(old)
    got = bytearray(await stream.__anext__())
    await store.put_object("bkt", "k", b"new")  # the version being read is replaced
    ids = {r.segment_id for r in old.segments}
    assert await collect_once(store, 0) == 0  # grace 0: only the pins keep them
    assert all(_files(store, i) for i in ids)
    async for piece in stream:
        got += piece
    await stream.aclose()
    assert bytes(got) == body
    assert await collect_once(store, 0) == len(ids) and not any(_files(store, i) for i in ids)
    assert not store.pins


async def test_copy_of_a_collected_version_fails_cleanly(store) -> None:
    src = await store.put_object("bkt", "src", os.urandom(200_000))
    held = store.head_object("bkt", "src")  # a slow copier holds the version in memory
    await store.delete_object("bkt", "src")
    await collect_once(store, 0)
    with pytest.raises(NoSuchKey):
        await store.copy_object(held, "bkt", "dst")
    assert store.list_objects("bkt").entries == []
    assert not _files(store, src.segments[0].segment_id)
