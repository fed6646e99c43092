"""Garbage collection: unreferenced segments go (record first, then files); shared ones stay;
a copy racing the collection fails cleanly instead of referencing deleted data."""

from __future__ import annotations

import os

import pytest

from appliance.engine import keys
from appliance.engine.errors import NoSuchKey
from appliance.engine.gc import collect_once
from appliance.engine.records import SegmentRecord

from .conftest import read_all


def _files(store, seg_id: str) -> list[str]:
    return [p for d in store.disks for s, _i, p in d.iter_shard_files() if s == seg_id]


async def test_gc_removes_unreferenced_and_keeps_shared(store) -> None:
    old = await store.put_object("bkt", "k", os.urandom(300_000))
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


async def test_copy_of_a_collected_version_fails_cleanly(store) -> None:
    src = await store.put_object("bkt", "src", os.urandom(200_000))
    held = store.head_object("bkt", "src")  # a slow copier holds the version in memory
    await store.delete_object("bkt", "src")
    await collect_once(store, 0)
    with pytest.raises(NoSuchKey):
        await store.copy_object(held, "bkt", "dst")
    assert store.list_objects("bkt").entries == []
    assert src.segments[0].segment_id not in {s for d in store.disks for s, _i, _p in d.iter_shard_files()}
