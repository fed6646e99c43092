"""The built-in KMS on a real engine (temporary directory disks, real LevelDB): SSE-S3, SSE-KMS
and SSE-C envelopes round trip, a disabled key refuses, the customer key is checked and never
stored, rotate-master re-wraps everything (and resumes, and waits for writes in flight), and
recover-metadata needs the master key."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from appliance.engine import keys, keystore
from appliance.engine.objectstore import ObjectStore
from appliance.engine.progress import MASTER_ROTATION, MasterRotation
from appliance.engine.records import ObjectVersion, SegmentRecord
from appliance.engine.recover import RecoveryError, recover_metadata
from appliance.engine.segments import shard_header
from appliance.engine.volumes import scan, volume_numbers, volume_path
from appliance.iam import rotation
from appliance.iam.kms import (
    CustomerKeyMismatch,
    CustomerKeyRequired,
    Kms,
    KmsDisabled,
    KmsNotFound,
    describe_envelope,
    envelope_check,
    key_arn,
    sse_c_key,
)
from appliance.iam.masterkey import MasterKey, load_or_create, wrapping_key
from tests.engine.conftest import open_store

BLOCK = 64 * 1024
MARKER = b"KMS-MARKER-d41d8cd98f00b204e9800998"


@pytest.fixture
async def env(tmp_path: Path) -> Any:
    store = open_store(tmp_path / "app", k=4, m=2, block_size=BLOCK)
    await store.create_bucket("bkt")
    kms = Kms(store.db, load_or_create(tmp_path / "keys" / "master.key"))
    yield store, kms
    store.db.close()


async def read(store: ObjectStore, v: ObjectVersion, kms: Kms, customer_key: bytes | None = None) -> bytes:
    return b"".join([p async for p in store.read_object(v, decrypt_with=kms.resolver(customer_key))])


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_sse_s3_kms_and_c_round_trip(env: Any) -> None:
    store, kms = env
    body = random.Random(1).randbytes(300_000)
    s3 = await store.put_object("bkt", "s3", body, encrypt_with=kms.sse_s3_key())
    info = kms.create_key("backup", "restic")
    km = await store.put_object("bkt", "kms", body, encrypt_with=kms.sse_kms_key("backup", {"purpose": "test"}))
    ck = os.urandom(32)
    c = await store.put_object("bkt", "c", body, encrypt_with=sse_c_key(ck))
    for v in (s3, km):
        assert await read(store, v, kms) == body
    assert await read(store, c, kms, ck) == body
    [e_s3], [e_kms], [e_c] = (store.segment_envelopes(v.segments) for v in (s3, km, c))
    assert describe_envelope(e_s3).mode == "AES256"
    assert describe_envelope(e_kms).kms_key_id == info.key_id == e_kms["key_id"]
    assert describe_envelope(e_kms).context == {"purpose": "test"} and describe_envelope(e_c).mode == "SSE-C"
    md5 = hashlib.md5(body).hexdigest()
    assert s3.etag == md5 and md5 not in (km.etag, c.etag) and len(km.etag) == 32  # as S3 does
    with pytest.raises(CustomerKeyRequired):
        await read(store, c, kms)
    with pytest.raises(CustomerKeyMismatch):
        await read(store, c, kms, os.urandom(32))
    assert base64.b64encode(ck).decode() not in str(e_c) and ck.hex() not in str(e_c)


async def test_no_plaintext_and_no_plaintext_key_on_disk(env: Any, tmp_path: Path) -> None:
    store, kms = env
    kms.create_key("k1")
    body = MARKER * 10000
    seg_keys = [kms.sse_s3_key(), kms.sse_kms_key("k1", {"a": "b"}), sse_c_key(os.urandom(32))]
    data_keys = [k.data_key for k in seg_keys]
    for i, sk in enumerate(seg_keys):
        await store.put_object("bkt", f"o{i}", body, encrypt_with=sk)
        await store.put_object("bkt", f"small{i}", MARKER * 20, encrypt_with=sk)  # packed in a volume
    assert len(_packed_segments(store)) == 3
    needles = [MARKER] + data_keys + [base64.b64encode(k) for k in data_keys]
    for p in files_under(tmp_path / "app" / "disks") + files_under(tmp_path / "app" / "meta"):
        raw = p.read_bytes()
        assert not any(n in raw for n in needles), p


async def test_kms_keys_find_disable_rotate(env: Any) -> None:
    store, kms = env
    info = kms.create_key("photos")
    for ref in ("photos", "alias/photos", info.key_id, key_arn(info.key_id, "us-east-1", "000000000000"),
                "arn:aws:kms:us-east-1:000000000000:alias/photos"):
        assert kms.describe(ref).key_id == info.key_id
    with pytest.raises(KmsNotFound):
        kms.describe("nope")
    body = b"kms body" * 5000
    v1 = await store.put_object("bkt", "v1", body, encrypt_with=kms.sse_kms_key("photos", {}))
    kms.set_enabled("photos", False)
    with pytest.raises(KmsDisabled):
        await read(store, v1, kms)
    with pytest.raises(KmsDisabled):
        kms.sse_kms_key("photos", {})
    assert Kms(store.db, kms.master).list_keys()[0].enabled is False  # persisted
    kms.set_enabled("alias/photos", True)
    assert await read(store, v1, kms) == body
    assert kms.rotate_key("photos").versions == 2
    v2 = await store.put_object("bkt", "v2", body, encrypt_with=kms.sse_kms_key("photos", {}))
    [e2] = store.segment_envelopes(v2.segments)
    assert e2["key_version"] == 2
    fresh = Kms(store.db, kms.master)  # no cached material: unwrapped from the records
    assert await read(store, v1, fresh) == body and await read(store, v2, fresh) == body
    default = await store.put_object("bkt", "d", body, encrypt_with=kms.sse_kms_key(None, {}))
    assert store.segment_envelopes(default.segments)[0]["key_id"] == kms.describe("alias/aws/s3").key_id


async def _populate(store: ObjectStore, kms: Kms, n: int = 12) -> dict[str, tuple[bytes, bytes | None]]:
    kms.create_key("k")
    out: dict[str, tuple[bytes, bytes | None]] = {}
    for i in range(n):
        body = random.Random(i).randbytes(random.Random(i).randrange(1, 200_000))
        ck = os.urandom(32) if i % 4 == 3 else None
        sk = sse_c_key(ck) if ck else kms.sse_kms_key("k", {"i": str(i)}) if i % 4 == 2 else kms.sse_s3_key()
        await store.put_object("bkt", f"o{i}", body, encrypt_with=sk)
        out[f"o{i}"] = (body, ck)
    await store.put_object("bkt", "plain", b"plain text")
    out["plain"] = (b"plain text", None)
    return out


async def _check(store: ObjectStore, kms: Kms, objs: dict[str, tuple[bytes, bytes | None]]) -> None:
    for key, (body, ck) in objs.items():
        assert await read(store, store.head_object("bkt", key), kms, ck) == body, key


def _wrapping_keys(store: ObjectStore) -> set[str]:
    """Master key ids found in SSE-S3 envelopes: records and every shard header."""
    found: set[str] = set()
    for _, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT):
        disks = [(i, store.disks.get(d)) for i, d in enumerate(rec.shards)]
        envs = [rec.enc] + [shard_header(disk, rec, i).enc for i, disk in disks if disk]
        for e in envs:
            if e and e["mode"] == "AES256":
                found.add(wrapping_key(base64.b64decode(e["wrapped"])))
    return found


def _packed_segments(store: ObjectStore) -> dict[str, SegmentRecord]:
    """The encrypted segments whose shards are records in volumes (small objects)."""
    return {rec.segment_id: rec for _, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT)
            if rec.enc is not None and rec.packs}


def _volume_records(store: ObjectStore) -> list[Any]:
    return [r for d in store.disks for n in volume_numbers(d.path) for r in scan(volume_path(d.path, n), n)]


async def test_rotate_master_rewraps_everything(env: Any, tmp_path: Path) -> None:
    store, kms = env
    objs = await _populate(store, kms)
    old = kms.master.current
    packed = _packed_segments(store)
    assert len(packed) >= 2  # small encrypted objects are packed: their records are re-appended
    progress: list[dict[str, Any]] = []

    async def emit(p: dict[str, Any]) -> None:
        progress.append(p)

    snapshots: list[int] = []

    async def snapshot() -> None:
        snapshots.append(1)

    res = await rotation.rotate_master(kms, store, snapshot=snapshot, emit=emit)
    assert res["phase"] == "done" and res["retired"] == [old] and snapshots == [1]
    assert res["rewrapped"] >= 7  # six SSE-S3 envelopes and the KMS key's material
    assert progress and progress[-1]["total"] == len(objs)
    ring = load_or_create(tmp_path / "keys" / "master.key", create=False)
    assert list(ring.entries) == [ring.current] != [old]
    assert _wrapping_keys(store) == {ring.current}
    assert store.load_progress(MasterRotation, MASTER_ROTATION) is None
    await _check(store, Kms(store.db, ring), objs)  # a fresh KMS with only the new key opens everything
    after = _packed_segments(store)
    sse_s3 = [s for s, rec in packed.items() if rec.enc and rec.enc["mode"] == "AES256"]
    assert sse_s3 and all(after[s].packs != packed[s].packs for s in sse_s3)  # placed at their copies
    for r in _volume_records(store):  # the replaced records are dead: no live one holds a retired key
        if r.live and r.header.enc and r.header.enc["mode"] == "AES256":
            assert wrapping_key(base64.b64decode(r.header.enc["wrapped"])) == ring.current
    assert keystore.master_mark(store.db) == ring.current


async def test_rotate_master_resumes(env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, kms = env
    objs = await _populate(store, kms)
    monkeypatch.setattr(rotation, "BATCH", 3)

    class Stop(Exception):
        pass

    async def crash(p: dict[str, Any]) -> None:
        if p["phase"] == "segments" and p["done"] >= 6:
            raise Stop

    with pytest.raises(Stop):
        await rotation.rotate_master(kms, store, emit=crash)
    state = store.load_progress(MasterRotation, MASTER_ROTATION)
    assert state is not None and state.phase == "segments" and state.cursor
    ring = load_or_create(tmp_path / "keys" / "master.key", create=False)
    assert set(ring.entries) == {state.new_key, *state.old_keys}  # both kept until it finishes
    await _check(store, Kms(store.db, ring), objs)  # everything readable half-way
    kms2 = Kms(store.db, ring)  # "after a restart"
    res = await rotation.rotate_master(kms2, store)
    assert res["new_key"] == state.new_key and res["retired"] == state.old_keys
    assert _wrapping_keys(store) == {state.new_key}
    await _check(store, Kms(store.db, load_or_create(tmp_path / "keys" / "master.key", create=False)), objs)


async def test_rotate_master_waits_for_writes_in_flight(env: Any, tmp_path: Path) -> None:
    store, kms = env
    objs = await _populate(store, kms, 4)
    held = [kms.sse_s3_key()]  # a write that got its data key before the rotation started
    waiting = trio.Event()

    async def emit(p: dict[str, Any]) -> None:
        if p["waiting_writes"]:
            waiting.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: rotation.rotate_master(kms, store, emit=emit))
        with trio.fail_after(30):
            await waiting.wait()
        await store.put_object("bkt", "late", b"late" * 1000, encrypt_with=held.pop())
    objs["late"] = (b"late" * 1000, None)
    ring = load_or_create(tmp_path / "keys" / "master.key", create=False)
    assert len(ring.entries) == 1 and _wrapping_keys(store) == {ring.current}
    await _check(store, Kms(store.db, ring), objs)


async def test_rewrapping_a_record_changed_meanwhile_leaves_it(env: Any) -> None:
    """A segment re-wrapped by another run (or collected) between the scan and the commit keeps
    its record; the copies of its packed shards made meanwhile are dead, not placed."""
    store, kms = env
    await store.put_object("bkt", "small", b"s" * 3000, encrypt_with=kms.sse_s3_key())
    [rec] = _packed_segments(store).values()
    other = dict(rec.enc or {}, wrapped="changed-by-another-run")
    cur = store.db.get_record(SegmentRecord, keys.segment(rec.segment_id))
    assert cur is not None
    cur.enc = other
    b = store.db.batch()
    b.put(keys.segment(rec.segment_id), cur)
    await store.db.commit(b, sync=True)
    before = len(_volume_records(store))
    assert await keystore.replace_envelopes(store, [rec], lambda enc: dict(enc, wrapped="new")) == 0
    now = store.db.get_record(SegmentRecord, keys.segment(rec.segment_id))
    assert now is not None and now.enc == other and now.packs == rec.packs
    records = _volume_records(store)
    copies = [r for r in records if r.header.segment_id == rec.segment_id and r.header.enc
              and r.header.enc["wrapped"] == "new"]
    assert len(records) == before + len(rec.shards) and len(copies) == len(rec.shards)
    assert not any(r.live for r in copies)


async def test_recover_metadata_needs_the_master_key(env: Any, tmp_path: Path) -> None:
    store, kms = env
    objs = await _populate(store, kms, 8)
    assert _packed_segments(store)  # packed records, re-appended by the rotation, are recovered too
    await rotation.rotate_master(kms, store)  # headers were rewritten: recovery must use theirs
    cfg = store.cfg
    master = load_or_create(tmp_path / "keys" / "master.key", create=False)
    store.db.close()
    shutil.move(str(cfg.meta_path), str(tmp_path / "old-meta"))
    with pytest.raises(RecoveryError, match="no master key"):
        recover_metadata(cfg)
    with pytest.raises(RecoveryError, match="does not open"):
        recover_metadata(cfg, check_envelope=envelope_check(load_or_create(tmp_path / "other.key")))
    assert not cfg.meta_path.exists() or not any(cfg.meta_path.iterdir())  # refused before writing
    report = recover_metadata(cfg, check_envelope=envelope_check(master))
    assert report.journal and report.journal["complete"] and report.versions_added == []
    store = open_store(tmp_path / "app", k=4, m=2, block_size=BLOCK)
    try:
        # no snapshot was taken: the metadata journal brings back the KMS key records with the
        # rest, so the SSE-KMS objects read too
        await _check(store, Kms(store.db, master), objs)
    finally:
        store.db.close()


def test_master_key_mark(tmp_path: Path) -> None:
    from appliance.engine.metadb import MetaDB
    from appliance.iam.masterkey import MasterKeyError, open_for

    store = open_store(tmp_path / "app")
    cfg = store.cfg
    key = open_for(cfg, store.db)
    assert cfg.master_key_path == tmp_path / "app" / "keys" / "master.key" and cfg.master_key_path.exists()
    assert keystore.master_mark(store.db) == key.current
    store.db.close()
    cfg.master_key_path.unlink()
    db = MetaDB(cfg.meta_path)
    try:
        with pytest.raises(MasterKeyError, match="import-master"):
            open_for(cfg, db)  # the DB was used with a key: a new one would hide the loss
    finally:
        db.close()
    assert isinstance(key, MasterKey)
