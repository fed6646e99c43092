"""Pools and storage classes: per-pool geometry, adaptation to the disk count, refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from appliance.config import ConfigError, DiskConfig, PoolConfig, embedded_config
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore, PutMeta

from .conftest import open_store, read_all


def _store(root: Path, disks: list[tuple[str, str]], pools: dict[str, PoolConfig],
           classes: dict[str, str] | None = None) -> ObjectStore:
    cfg = replace(embedded_config(root), disks=[DiskConfig(path=str(root / "disks" / name), pool=pool)
                                                for name, pool in disks],
                  pools=pools, storage_classes=classes or {})
    db = MetaDB(cfg.meta_path)
    try:
        return ObjectStore(cfg, db, load_disks(cfg, db))
    except Exception:
        db.close()
        raise


async def test_storage_class_selects_pool_and_geometry(tmp_path: Path) -> None:
    disks = [(f"hdd{i}", "default") for i in range(6)] + [(f"arc{i}", "archive") for i in range(3)]
    s = _store(tmp_path, disks, {"default": PoolConfig(), "archive": PoolConfig(k=2, m=1)},
               {"GLACIER": "archive"})
    try:
        await s.create_bucket("bkt")
        body = b"x" * 3_000_000
        v = await s.put_object("bkt", "cold", body, PutMeta(storage_class="GLACIER"))
        rec = s.get_segment(v.segments[0].segment_id)
        archive_ids = {d.disk_id for d in s.disks.pool("archive")}
        assert (rec.k, rec.m) == (2, 1) and set(rec.shards) == archive_ids
        v2 = await s.put_object("bkt", "hot", body)
        rec2 = s.get_segment(v2.segments[0].segment_id)
        assert (rec2.k, rec2.m) == (4, 2) and not set(rec2.shards) & archive_ids
        await s.request_restore(v, 1, "Expedited")  # GLACIER is archived: read after a restore
        await s.complete_restore(s.restores()[0])
        assert await read_all(s, "bkt", "cold") == body
    finally:
        s.db.close()


@pytest.mark.parametrize("ndisks,expected", [(6, (4, 2)), (5, (3, 2)), (4, (2, 2)), (3, (2, 1)), (8, (4, 2))])
async def test_geometry_adapts_to_disk_count(tmp_path: Path, ndisks: int, expected: tuple[int, int]) -> None:
    s = open_store(tmp_path, ndisks=ndisks)
    try:
        g = s.geometry()
        assert (g.k, g.m) == expected
        await s.create_bucket("bkt")
        await s.put_object("bkt", "k", b"abc" * 100_000)
        assert await read_all(s, "bkt", "k") == b"abc" * 100_000
    finally:
        s.db.close()


def test_geometry_the_disks_cannot_hold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs 10 disks"):
        _store(tmp_path, [(f"d{i}", "default") for i in range(6)], {"default": PoolConfig(k=8, m=2)})


async def test_small_objects_are_replicated_with_the_pools_m(tmp_path: Path) -> None:
    """<= 64 KiB with a known size: k=1 (m+1 durable files, same failures survived)."""
    s = open_store(tmp_path)
    try:
        await s.create_bucket("bkt")
        small = await s.put_object("bkt", "small", b"s" * 65536)
        big = await s.put_object("bkt", "big", b"b" * 65537)

        async def stream():
            yield b"u" * 100  # size unknown up front: the pool's geometry

        unknown = await s.put_object("bkt", "unknown", stream())
        hinted = await s.put_object("bkt", "hinted", stream(), size_hint=100)
        geo = {v.key: (lambda r: (r.k, r.m, len([d for d in r.shards if d])))(s.get_segment(v.segments[0].segment_id))
               for v in (small, big, unknown, hinted)}
        assert geo == {"small": (1, 2, 3), "big": (4, 2, 6), "unknown": (4, 2, 6), "hinted": (1, 2, 3)}
    finally:
        s.db.close()
