"""In-process object stores on temporary directories (real disks-as-directories, real LevelDB)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from appliance.config import DiskConfig, PoolConfig, embedded_config
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore


def open_store(root: Path, ndisks: int = 6, k: int = 0, m: int = 0, block_size: int = 1 << 20,
               grace: float = 60.0) -> ObjectStore:
    cfg = embedded_config(root)
    cfg = replace(cfg, disks=[DiskConfig(path=str(root / "disks" / f"disk{i}")) for i in range(ndisks)],
                  pools={"default": PoolConfig(k=k, m=m, block_size=block_size)},
                  gc=replace(cfg.gc, grace_seconds=grace))
    db = MetaDB(cfg.meta_path)
    try:
        return ObjectStore(cfg, db, load_disks(cfg, db))
    except BaseException:
        db.close()
        raise


async def read_all(store: ObjectStore, bucket: str, key: str, version_id: str | None = None,
                   start: int = 0, end: int | None = None) -> bytes:
    v = store.head_object(bucket, key, version_id)
    return b"".join([p async for p in store.read_object(v, start, end)])


@pytest.fixture
async def store_factory(tmp_path: Path) -> AsyncIterator[Callable[..., ObjectStore]]:
    opened: list[ObjectStore] = []

    def factory(name: str = "app", **kw: Any) -> ObjectStore:
        s = open_store(tmp_path / name, **kw)
        opened.append(s)
        return s

    yield factory
    for s in opened:
        with contextlib.suppress(Exception):
            s.db.close()


@pytest.fixture
async def store(store_factory: Callable[..., ObjectStore]) -> ObjectStore:
    s = store_factory()
    await s.create_bucket("bkt")
    return s
