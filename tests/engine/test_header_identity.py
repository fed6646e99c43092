"""The shard headers of the engine's other writers name the version they hold, as a PUT's do
(shardident.py): an SSE-C replica stored as ciphertext (sealed.py), a file changed in place
through the mount (patch.py) and one written in order through it (fusefs/staging.py, committed
whole or streamed: fusefs/streaming.py). So such a version comes back from its headers alone
(`recover-metadata` with the DB and the journal lost), and the GC's object-lock safety net
keeps its data when a refcount is wrong."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from appliance.engine import keys
from appliance.engine.crypto import SegmentKey
from appliance.engine.events import Cause, caused_by
from appliance.engine.gc import collect_once
from appliance.engine.lock import COMPLIANCE
from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import RecoveryReport
from appliance.engine.records import ObjectVersion, SegmentRecord
from appliance.engine.recover import recover_metadata
from appliance.engine.sealed import complete_sealed, put_sealed, put_sealed_part, sealed_object
from appliance.engine.segments import shard_header
from appliance.engine.storecore import PutMeta
from fusefs.attrs import Posix
from fusefs.staging import FileState
from fusefs.streaming import STREAM_START, SegmentStream

from .conftest import open_store
from .test_lock import FAR, _wrong_refcount

BLOCK = 64 * 1024
CUSTOMER_KEY = os.urandom(32)
SSEC = {"mode": "SSE-C", "customer_key_md5": "test"}


def _ssec_key() -> SegmentKey:
    return SegmentKey(CUSTOMER_KEY, {"mode": "SSE-C", "test": 1}, opaque_etag=True)


def _customer_key(env: dict[str, Any]) -> bytes:
    return CUSTOMER_KEY


async def _lose_metadata_and_journal(store: ObjectStore, root: Path) -> RecoveryReport:
    store.seg.close()
    store.db.close()
    shutil.rmtree(store.cfg.meta_path)
    for journal in root.glob("disks/*/journal"):
        shutil.rmtree(journal)
    # the SSE-C envelopes open with the customer's key only: the master key has nothing to check
    return await trio.to_thread.run_sync(lambda: recover_metadata(store.cfg, check_envelope=lambda env: None))


async def _read(store: ObjectStore, bucket: str, key: str, version_id: str | None = None) -> bytes:
    v = store.head_object(bucket, key, version_id)
    return b"".join([p async for p in store.read_object(v, decrypt_with=_customer_key)])


async def _kept_by_the_gc(store: ObjectStore, caplog: pytest.LogCaptureFixture, *segment_ids: str) -> None:
    """Given a wrong refcount, the GC keeps the segments all the same: their headers name a
    version object lock protects."""
    await _wrong_refcount(store, *segment_ids)
    with caplog.at_level(logging.ERROR, "stowage.gc"):
        assert await collect_once(store, 0) == 0
    assert "object lock protects" in caplog.text


async def _replicate(store: ObjectStore, src: ObjectVersion, bucket: str, meta: PutMeta,
                     checksums: dict[str, str] | None = None) -> ObjectVersion:
    """`src` replicated as ciphertext into `bucket`, as a replication target stores it (with
    `checksums` as the source's)."""
    obj, segs = sealed_object(store, src)
    if checksums:
        obj = replace(obj, checksums=checksums, checksum_type="FULL_OBJECT")

    async def stored() -> AsyncIterator[bytes]:
        for rec in segs:
            async for block in store.seg.read_stored(rec):
                yield bytes(block)

    with caused_by(Cause(replica=True, replica_version_id=src.version_id)):
        return await put_sealed(store, bucket, src.key, meta, obj, stored())


async def test_a_sealed_replica_comes_back_from_its_shard_headers(tmp_path: Path) -> None:
    """A replica of an SSE-C version, stored as the source's ciphertext, is a version of its
    own bucket with the source's version id, ETag and size; before its headers named it, it was
    ignored, and the replica was lost."""
    root = tmp_path / "app"
    store = open_store(root, ndisks=6, k=4, m=2, block_size=BLOCK)
    await store.create_bucket("src")
    await store.create_bucket("dst")
    await store.set_versioning("src", "Enabled")
    await store.set_versioning("dst", "Enabled")
    body = os.urandom(3 * BLOCK + 123)
    src = await store.put_object("src", "k", body, PutMeta(sse=dict(SSEC)), encrypt_with=_ssec_key())
    replica = await _replicate(store, src, "dst", PutMeta(), {"CRC32": "AAAAAA=="})
    assert replica.version_id == src.version_id and replica.etag == src.etag
    assert await _read(store, "dst", "k") == body

    report = await _lose_metadata_and_journal(store, root)
    assert sorted(report.versions_added) == [f"dst/k ({src.version_id})", f"src/k ({src.version_id})"]
    store = open_store(root, ndisks=6, k=4, m=2, block_size=BLOCK)
    try:
        back = store.head_object("dst", "k")
        assert (back.version_id, back.etag, back.size) == (src.version_id, src.etag, len(body))
        assert (back.checksums, back.checksum_type) == ({"CRC32": "AAAAAA=="}, "FULL_OBJECT")
        assert await _read(store, "dst", "k") == body
        assert store.db.get(keys.vid("dst", "k", src.version_id)) is not None
    finally:
        store.db.close()


async def _replicate_in_parts(store: ObjectStore, src: ObjectVersion, bucket: str, meta: PutMeta) -> ObjectVersion:
    """`src` replicated as ciphertext into `bucket` as a large one moves: one sealed part per
    segment, then the completion."""
    obj, segs = sealed_object(store, src)
    with caused_by(Cause(replica=True, replica_version_id=src.version_id)):
        up = await store.create_multipart(bucket, src.key, meta)
        for n, (s, rec) in enumerate(zip(obj.segments, segs, strict=True), 1):
            await put_sealed_part(store, bucket, src.key, up.upload_id, n, s, store.seg.read_stored(rec))
        return await complete_sealed(store, bucket, src.key, up.upload_id, obj)


@pytest.mark.parametrize("replicate", [_replicate, _replicate_in_parts], ids=["whole", "in-parts"])
async def test_the_gc_keeps_a_protected_sealed_replica_s_segment(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                 replicate: Any) -> None:
    """A replica under COMPLIANCE retention whose segment's refcount is wrong: the GC asks the
    headers whose data it is and keeps it (collected before they named the version)."""
    store = open_store(tmp_path / "app", ndisks=6, k=4, m=2, block_size=BLOCK)
    try:
        await store.create_bucket("src")
        await store.set_versioning("src", "Enabled")
        await store.create_bucket("dst", object_lock=True)
        body = os.urandom(2 * BLOCK)
        src = await store.put_object("src", "k", body, PutMeta(sse=dict(SSEC)), encrypt_with=_ssec_key())
        replica = await replicate(store, src, "dst", PutMeta(lock_mode=COMPLIANCE, retain_until_ns=FAR))
        assert replica.version_id == src.version_id and replica.lock_mode == COMPLIANCE
        seg_id = replica.segments[0].segment_id
        await _kept_by_the_gc(store, caplog, seg_id)
        assert await _read(store, "dst", "k") == body
    finally:
        store.db.close()


class _File:
    """What the mount hands commit_patch: the file's bytes, changed in place."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    def write(self, at: int, data: bytes) -> tuple[int, int]:
        self.data[at:at + len(data)] = data
        return at, at + len(data)

    async def read(self, start: int, end: int) -> bytes:
        return bytes(self.data[start:end])


@pytest.mark.parametrize("versioning", ["Enabled", ""], ids=["versioned", "unversioned"])
@pytest.mark.parametrize("size", [300_000, 9 << 20], ids=["rewritten-whole", "spliced"])
async def test_files_changed_in_place_come_back_from_their_shard_headers(tmp_path: Path, versioning: str,
                                                                         size: int) -> None:
    """A file written through the mount, then changed in place twice (random writes: patch.py).
    A small file is rewritten whole, a large one is stored as its changed runs spliced into the
    version before. Every version comes back with its version id, ETag, size and bytes; before
    the headers named it, a patch's segment was ignored and the file came back as its first
    version (unversioned) or without the changes (versioned)."""
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket("bkt")
    if versioning:
        await store.set_versioning("bkt", versioning)
    f = _File(os.urandom(size))
    base = await store.put_object("bkt", "f", bytes(f.data))
    dirty = [f.write(100, b"x" * 50), f.write(size // 2, os.urandom(4096)), f.write(size, b"appended")]
    v1 = await store.commit_patch("bkt", "f", base, len(f.data), dirty, f.read, PutMeta())
    first = bytes(f.data)
    v2 = await store.commit_patch("bkt", "f", v1, len(f.data), [f.write(size // 3, b"again")], f.read, PutMeta())
    spliced = len(v2.segments) > 1
    assert spliced == (size > 8 << 20)  # (else this tests nothing new for the large file)
    want = {v.version_id: (v.etag, v.size) for v in (base, v1, v2)}
    if not versioning:
        want = {"null": (v2.etag, v2.size)}

    report = await _lose_metadata_and_journal(store, root)
    assert report.segments_ignored == 0
    store = open_store(root)
    try:
        got = {v.version_id: (v.etag, v.size) for v, _ in store.list_versions("bkt", "f").entries}
        assert got == want
        assert await _read(store, "bkt", "f") == bytes(f.data)
        if versioning:
            assert await _read(store, "bkt", "f", v1.version_id) == first
    finally:
        store.db.close()


@pytest.mark.parametrize("size", [300_000, 9 << 20], ids=["rewritten-whole", "spliced"])
async def test_the_gc_keeps_a_protected_patched_version_s_segment(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                  size: int) -> None:
    """A file changed in place under COMPLIANCE retention: the new segment's refcount is wrong,
    and the GC keeps it for the version its headers name (collected before they named one)."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("lkb", object_lock=True)
        locked = PutMeta(lock_mode=COMPLIANCE, retain_until_ns=FAR)
        f = _File(os.urandom(size))
        base = await store.put_object("lkb", "f", bytes(f.data), locked)
        v = await store.commit_patch("lkb", "f", base, size, [f.write(size // 2, b"changed")], f.read, locked)
        new = {s.segment_id for s in v.segments} - {s.segment_id for s in base.segments}
        assert len(new) == 1
        await _kept_by_the_gc(store, caplog, *new)
        assert await _read(store, "lkb", "f") == bytes(f.data)
    finally:
        store.db.close()


async def test_a_patch_of_too_many_runs_for_its_headers_is_lost_but_protected(tmp_path: Path) -> None:
    """A large file changed in 250 places: the layout does not fit the headers (shardident.
    PATCH_IDENTITY_BYTES), so the write still succeeds, its headers name the version (the GC's
    net), and a recovery without the journal does not rebuild it (the version before stays)."""
    root = tmp_path / "app"
    store = open_store(root)
    await store.create_bucket("bkt")
    await store.set_versioning("bkt", "Enabled")
    size = 9 << 20
    f = _File(os.urandom(size))
    base = await store.put_object("bkt", "f", bytes(f.data))
    before = bytes(f.data)
    v = await store.commit_patch("bkt", "f", base, size, [f.write(i * 36_000, b"y") for i in range(1, 251)],
                                 f.read, PutMeta())
    assert await _read(store, "bkt", "f") == bytes(f.data)
    (new,) = {s.segment_id for s in v.segments} - {s.segment_id for s in base.segments}
    rec = store.db.get_record(SegmentRecord, keys.segment(new))
    assert rec is not None and rec.shards[0] is not None
    ident = shard_header(store.disks.get(rec.shards[0]), rec, 0).identity
    assert ident["version_id"] == v.version_id and ident["partial"] and "patch_of" not in ident

    report = await _lose_metadata_and_journal(store, root)
    assert report.segments_ignored == 1
    store = open_store(root)
    try:
        assert [x.version_id for x, _ in store.list_versions("bkt", "f").entries] == [base.version_id]
        assert await _read(store, "bkt", "f") == before
    finally:
        store.db.close()


@pytest.mark.parametrize("size", [300_000, STREAM_START + 5], ids=["committed-whole", "streamed"])
async def test_the_gc_keeps_a_protected_file_written_in_order_through_the_mount(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, size: int) -> None:
    """A new file written in order through the mount (FileState, as the mount drives it: a
    large one streamed from STREAM_START on) under COMPLIANCE retention, whose segment's
    refcount is wrong: the GC keeps it for the version its headers name (collected before they
    named one)."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("lkb", object_lock=True)
        locked = PutMeta(lock_mode=COMPLIANCE, retain_until_ns=FAR)
        body = os.urandom(size)
        st = FileState(store, tmp_path / "staging", None, Posix(0o100644), "", _customer_key)
        async with trio.open_nursery() as nursery:
            for at in range(0, size, 128 << 10):
                await st.write(at, body[at:at + (128 << 10)])
                if st.stream is None and st.size >= STREAM_START:  # (FuseNodes.stream_if_in_order)
                    stream = SegmentStream(store, st.read_staged, st.size, {"bucket": "lkb", "key": "f"}, None)
                    await nursery.start(stream.run)
                    st.start_stream(stream, None)  # type: ignore[arg-type]  # (unencrypted)
            assert (st.stream is not None) == (size >= STREAM_START)
            v = await st.commit("lkb", "f", locked, None)
        await st.close_staging()
        assert v.lock_mode == COMPLIANCE and len(v.segments) == 1
        await _kept_by_the_gc(store, caplog, v.segments[0].segment_id)
        assert await _read(store, "lkb", "f") == body
    finally:
        store.db.close()
