"""Storage classes: each class's pool and geometry as the shard files on disk show it, class
changes through copy (re-encoded, the same ETag), encrypted data moved as ciphertext."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from appliance.config import ConfigError, DiskConfig, PoolConfig, StorageClassConfig, embedded_config, validate
from appliance.engine.crypto import SegmentKey
from appliance.engine.diskload import load_disks
from appliance.engine.errors import InvalidObjectState, InvalidStorageClass
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore, PutMeta
from appliance.engine.records import ObjectVersion
from appliance.engine.segments import shard_header
from appliance.engine.transcode import transition_version

BODY = os.urandom(3 << 20)


def _store(root: Path, pools: dict[str, int], classes: dict[str, str | StorageClassConfig] | None = None,
           pool_cfg: dict[str, PoolConfig] | None = None) -> ObjectStore:
    disks = [DiskConfig(path=str(root / "disks" / f"{p}{i}"), pool=p) for p, n in pools.items() for i in range(n)]
    cfg = replace(embedded_config(root), disks=disks, pools=pool_cfg or {p: PoolConfig() for p in pools},
                  storage_classes=classes or {})
    db = MetaDB(cfg.meta_path)
    try:
        return ObjectStore(cfg, db, load_disks(cfg, db))
    except BaseException:
        db.close()
        raise


def on_disk(store: ObjectStore, v: ObjectVersion) -> set[tuple[str, int, int]]:
    """(pool, k, m) of every shard of the version, read from the shard headers on disk (shard
    files, or packed records)."""
    found = set()
    for ref in v.segments:
        rec = store.get_segment(ref.segment_id)
        for i, disk_id in enumerate(rec.shards):
            disk = store.disks.get(disk_id)
            assert disk is not None
            h = shard_header(disk, rec, i)
            found.add((disk.pool, h.k, h.m))
    return found


async def read(store: ObjectStore, v: ObjectVersion, resolve: Any = None) -> bytes:
    return b"".join([p async for p in store.read_object(v, decrypt_with=resolve)])


@pytest.mark.parametrize("cls,expected", [
    ("STANDARD", (4, 2)), ("REDUCED_REDUNDANCY", (4, 1)), ("STANDARD_IA", (5, 1)), ("ONEZONE_IA", (5, 1)),
    ("GLACIER_IR", (5, 1)), ("INTELLIGENT_TIERING", (4, 2)), ("GLACIER", (5, 1)), ("DEEP_ARCHIVE", (5, 1)),
])
async def test_each_class_on_six_disks(tmp_path: Path, cls: str, expected: tuple[int, int]) -> None:
    s = _store(tmp_path, {"default": 6})
    try:
        await s.create_bucket("bkt")
        v = await s.put_object("bkt", "k", BODY, PutMeta(storage_class=cls))
        assert v.storage_class == cls and on_disk(s, v) == {("default", *expected)}
        if cls in ("GLACIER", "DEEP_ARCHIVE"):  # archived: readable only once restored
            with pytest.raises(InvalidObjectState):
                await read(s, s.head_object("bkt", "k"))
        else:
            assert await read(s, s.head_object("bkt", "k")) == BODY
        small = await s.put_object("bkt", "small", b"x" * 1000, PutMeta(storage_class=cls))
        assert on_disk(s, small) == {("default", 1, expected[1])}  # replicated, with the class's parity
    finally:
        s.db.close()


async def test_archive_classes_go_to_the_archive_pool(tmp_path: Path) -> None:
    s = _store(tmp_path, {"default": 6, "archive": 4})
    try:
        await s.create_bucket("bkt")
        g = await s.put_object("bkt", "g", BODY, PutMeta(storage_class="GLACIER"))
        assert on_disk(s, g) == {("archive", 3, 1)}
        assert on_disk(s, await s.put_object("bkt", "h", BODY)) == {("default", 4, 2)}
    finally:
        s.db.close()


async def test_custom_classes_and_unknown_ones(tmp_path: Path) -> None:
    s = _store(tmp_path, {"default": 6, "ssd": 3},
               {"FAST": StorageClassConfig(pool="ssd"), "WIDE": StorageClassConfig(k=3, m=3),
                "STANDARD_IA": StorageClassConfig(profile="reduced")})
    try:
        await s.create_bucket("bkt")
        assert on_disk(s, await s.put_object("bkt", "f", BODY, PutMeta(storage_class="FAST"))) == {("ssd", 2, 1)}
        assert on_disk(s, await s.put_object("bkt", "w", BODY, PutMeta(storage_class="WIDE"))) == {("default", 3, 3)}
        assert on_disk(s, await s.put_object("bkt", "i", BODY, PutMeta(storage_class="STANDARD_IA"))) == \
            {("default", 4, 1)}
        with pytest.raises(InvalidStorageClass):
            await s.put_object("bkt", "x", BODY, PutMeta(storage_class="NOPE"))
        with pytest.raises(InvalidStorageClass):
            await s.create_multipart("bkt", "x", PutMeta(storage_class="NOPE"))
        assert [e.key for e in s.list_objects("bkt").entries] == ["f", "i", "w"]  # no "x"
    finally:
        s.db.close()


def test_class_config_is_validated(tmp_path: Path) -> None:
    base = embedded_config(tmp_path)
    for classes, match in [({"GLACIER": "tape"}, "unknown pool"), ({"bad name": "default"}, "class name"),
                           ({"X": StorageClassConfig(profile="tiny")}, "profile"),
                           ({"X": StorageClassConfig(m=2)}, "together")]:
        with pytest.raises(ConfigError, match=match):
            validate(replace(base, storage_classes=classes))


async def test_multipart_parts_take_the_upload_class(tmp_path: Path) -> None:
    s = _store(tmp_path, {"default": 6})
    try:
        await s.create_bucket("bkt")
        up = await s.create_multipart("bkt", "mp", PutMeta(storage_class="STANDARD_IA"))
        p1 = await s.upload_part("bkt", "mp", up.upload_id, 1, BODY[: 5 << 20] + BODY[:2 << 20])
        p2 = await s.upload_part("bkt", "mp", up.upload_id, 2, BODY[:100_000])
        v = await s.complete_multipart("bkt", "mp", up.upload_id, [(1, p1.etag), (2, p2.etag)])
        assert v.storage_class == "STANDARD_IA" and on_disk(s, v) == {("default", 5, 1)}
    finally:
        s.db.close()


async def test_copy_changes_class_and_re_encodes(tmp_path: Path) -> None:
    s = _store(tmp_path, {"default": 6})
    try:
        await s.create_bucket("bkt")
        src = await s.put_object("bkt", "k", BODY)
        meta = replace(PutMeta.of(src), storage_class="STANDARD_IA")
        v = await s.copy_object(src, "bkt", "k", meta)  # in place: a new version in the new class
        assert (v.etag, v.size, v.storage_class) == (src.etag, src.size, "STANDARD_IA")
        assert on_disk(s, v) == {("default", 5, 1)} and await read(s, v) == BODY
        same = await s.copy_object(v, "bkt", "k2", replace(PutMeta.of(v)))  # same class: shared, not copied
        assert same.segments == v.segments
        with pytest.raises(InvalidStorageClass):
            await s.copy_object(src, "bkt", "k3", replace(PutMeta.of(src), storage_class="NOPE"))
    finally:
        s.db.close()


async def test_transition_moves_ciphertext_keeping_identity(tmp_path: Path) -> None:
    s = _store(tmp_path, {"default": 6, "archive": 3})
    key = os.urandom(32)
    try:
        await s.create_bucket("bkt")
        v = await s.put_object("bkt", "enc", BODY, encrypt_with=SegmentKey(key, {"k": 1}),
                               finalize=lambda _s: {"CRC32": "AAAAAA=="})
        old = s.get_segment(v.segments[0].segment_id)
        res = await transition_version(s, v, "GLACIER")
        assert res is not None and res.moved_bytes == old.length
        after = s.head_object("bkt", "enc")
        assert (after.etag, after.version_id, after.last_modified_ns, after.checksums) == \
            (v.etag, v.version_id, v.last_modified_ns, v.checksums)
        assert after.storage_class == "GLACIER" and on_disk(s, after) == {("archive", 2, 1)}
        new = s.get_segment(after.segments[0].segment_id)
        assert new.cipher_id == old.segment_id and new.enc == old.enc
        with pytest.raises(InvalidObjectState):  # archived now: a restore makes it readable
            await read(s, after, lambda env: key)
        assert await s.request_restore(after, 2, "Bulk")
        restored = await s.complete_restore(s.restores()[0])
        assert restored is not None and restored.segments == 1  # a STANDARD copy, again of the ciphertext
        assert await read(s, after, lambda env: key) == BODY
        assert s.get_segment(old.segment_id).refcount == 0  # queued for GC
        # and again, from the archive back to STANDARD: the cipher id stays the first segment's
        back = await transition_version(s, after, "STANDARD")
        assert back is not None
        final = s.head_object("bkt", "enc")
        assert s.get_segment(final.segments[0].segment_id).cipher_id == old.segment_id
        assert await read(s, final, lambda env: key) == BODY
        assert await transition_version(s, v, "STANDARD_IA") is None  # v is stale: nothing done
    finally:
        s.db.close()
