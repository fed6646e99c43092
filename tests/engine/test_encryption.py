"""Envelope encryption in the engine (engine/crypto.py, segments.py): round trips, ranges across
block boundaries, ciphertext-only shards, tampering detected and healed, swapped and truncated
blocks refused, copies that share or rewrite segments. Keys here are plain test keys: the KMS
that makes real envelopes has its own tests (tests/iam/test_kms.py)."""

from __future__ import annotations

import hashlib
import os
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.engine import keys
from appliance.engine.codec import checksum
from appliance.engine.crypto import TAG, SegmentCipher, SegmentKey
from appliance.engine.errors import DataIntegrityError, EncryptionKeyRequired
from appliance.engine.objectstore import ObjectStore, PutMeta
from appliance.engine.records import HealEntry, ObjectVersion, SegmentRecord
from appliance.engine.repair import SegmentRepair
from appliance.engine.segments import INLINE_OPEN_BYTES, shard_header
from appliance.engine.shardfile import CRC_SIZE, HEADER_SIZE

from .conftest import open_store

BLOCK = 64 * 1024
PLAIN = BLOCK - TAG  # content bytes per encrypted block
MARKER = b"SECRET-MARKER-7f3a9c1e-do-not-leak"


class Keys:
    """A stand-in key manager: envelopes name a key id, the resolver looks it up."""

    def __init__(self) -> None:
        self.by_id: dict[str, bytes] = {}

    def new(self, opaque: bool = False) -> SegmentKey:
        kid = os.urandom(4).hex()
        self.by_id[kid] = os.urandom(32)
        return SegmentKey(self.by_id[kid], {"test": kid}, opaque_etag=opaque)

    def resolve(self, env: dict[str, Any]) -> bytes:
        return self.by_id[env["test"]]


@pytest.fixture
async def estore(tmp_path: Path) -> Any:
    s = open_store(tmp_path / "app", ndisks=6, k=4, m=2, block_size=BLOCK)
    await s.create_bucket("bkt")
    yield s
    s.db.close()


async def read(store: ObjectStore, v: ObjectVersion, resolve: Callable[[dict[str, Any]], bytes] | None,
               start: int = 0, end: int | None = None) -> bytes:
    return b"".join([p async for p in store.read_object(v, start, end, decrypt_with=resolve)])


def segment_of(store: ObjectStore, v: ObjectVersion, n: int = 0) -> SegmentRecord:
    return store.get_segment(v.segments[n].segment_id)


def shard_path(store: ObjectStore, rec: SegmentRecord, i: int) -> Path:
    disk = store.disks.get(rec.shards[i])
    assert disk is not None
    return Path(disk.shard_path(rec.segment_id, i))


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_round_trip_and_ranges_across_blocks(estore: ObjectStore) -> None:
    k = Keys()
    body = random.Random(1).randbytes(5 * PLAIN + 1234)
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    rec = segment_of(estore, v)
    assert rec.enc is not None and v.size == len(body)
    assert rec.length == len(body) + 6 * TAG and rec.plain_length == len(body)  # six blocks, one tag each
    assert v.etag == hashlib.md5(body).hexdigest()  # SSE-S3 style: the plaintext MD5
    assert await read(estore, v, k.resolve) == body
    edges = [(0, 1), (PLAIN - 1, PLAIN + 1), (PLAIN, 2 * PLAIN), (PLAIN - 5, 3 * PLAIN + 7),
             (len(body) - 3, len(body)), (12345, len(body) - 1), (4 * PLAIN + 1, 5 * PLAIN + 100)]
    for lo, hi in edges:
        assert await read(estore, v, k.resolve, lo, hi) == body[lo:hi], (lo, hi)
    with pytest.raises(EncryptionKeyRequired):
        await read(estore, v, None)
    small = await estore.put_object("bkt", "small", b"x" * 4096, encrypt_with=k.new())
    assert await read(estore, small, k.resolve) == b"x" * 4096
    assert segment_of(estore, small).k == 1  # small objects keep their replicated geometry


async def test_several_segments_each_with_its_own_key(estore: ObjectStore) -> None:
    k = Keys()
    up = await estore.create_multipart("bkt", "mp")
    parts = [random.Random(i).randbytes(PLAIN * 2 + i * 999) for i in range(3)]
    done = []
    for n, body in enumerate(parts, 1):
        p = await estore.upload_part("bkt", "mp", up.upload_id, n, body, encrypt_with=k.new())
        done.append((n, p.etag))
    v = await estore.complete_multipart("bkt", "mp", up.upload_id, done, min_part_size=1)
    envs = estore.segment_envelopes(v.segments)
    assert len(envs) == 3 and len({e["test"] for e in envs if e}) == 3
    whole = b"".join(parts)
    assert await read(estore, v, k.resolve) == whole
    lo, hi = len(parts[0]) - 10, len(parts[0]) + len(parts[1]) + 10  # across both part boundaries
    assert await read(estore, v, k.resolve, lo, hi) == whole[lo:hi]


async def test_opaque_etag_is_not_the_md5(estore: ObjectStore) -> None:
    k = Keys()
    body = b"etag test" * 1000
    v = await estore.put_object("bkt", "o", body, encrypt_with=k.new(opaque=True))
    assert len(v.etag) == 32 and v.etag != hashlib.md5(body).hexdigest()
    rec = segment_of(estore, v)
    disk = estore.disks.get(rec.shards[0])
    assert disk is not None and rec.packs  # a small body: packed, its header in a volume record
    assert shard_header(disk, rec, 0).identity["etag"] == v.etag


async def test_shards_and_metadata_hold_no_plaintext(estore: ObjectStore, tmp_path: Path) -> None:
    k = Keys()
    body = MARKER * 20000  # ~700 KiB: many blocks, every one full of the marker
    v = await estore.put_object("bkt", "secret", body, encrypt_with=k.new())
    await estore.copy_object(v, "bkt", "copy")
    up = await estore.create_multipart("bkt", "mp")
    await estore.upload_part("bkt", "mp", up.upload_id, 1, body, encrypt_with=k.new())
    assert await read(estore, v, k.resolve) == body
    root = tmp_path / "app"
    shards = files_under(root / "disks")
    assert len(shards) >= 12
    for p in shards + files_under(root / "meta"):
        assert MARKER not in p.read_bytes(), p
    # the check itself works: an unencrypted object's marker is found in its shards
    plain = await estore.put_object("bkt", "plain", body)
    rec = segment_of(estore, plain)
    assert MARKER in shard_path(estore, rec, 0).read_bytes()


def flip_chunk_byte(path: Path, block: int, geo_chunk: int, fix_crc: bool) -> None:
    """Flip a byte of one block's chunk; with fix_crc the CRC is recomputed (CRCs cannot tell)."""
    off = HEADER_SIZE + block * (geo_chunk + CRC_SIZE)
    raw = bytearray(path.read_bytes())
    raw[off + 100] ^= 0x55
    if fix_crc:
        chunk = bytes(raw[off:off + geo_chunk])
        raw[off + geo_chunk:off + geo_chunk + CRC_SIZE] = struct.pack("<I", checksum(chunk))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("fix_crc", [False, True], ids=["crc-fails", "crc-recomputed"])
@pytest.mark.parametrize("shard", [0, 5], ids=["data-shard", "parity-shard"])
async def test_altered_ciphertext_is_detected_and_healed(estore: ObjectStore, fix_crc: bool, shard: int) -> None:
    k = Keys()
    body = random.Random(7).randbytes(3 * PLAIN + 500)
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    rec = segment_of(estore, v)
    path = shard_path(estore, rec, shard)
    original = path.read_bytes()
    flip_chunk_byte(path, 1, BLOCK // 4, fix_crc)
    assert await read(estore, v, k.resolve) == body  # decoded around the altered chunk
    entry = estore.db.get_record(HealEntry, keys.heal(rec.segment_id))
    if shard < 4:  # reported by the read (an unreadable chunk, or one that fails authentication)
        assert entry is not None and entry.shards == [shard]
    else:  # a healthy read reads data shards only
        assert entry is None
    result = await SegmentRepair(estore).check(rec.segment_id)  # the scrubber's and healer's check
    if shard >= 4 and fix_crc:
        # altered parity with a valid CRC: without the key nothing can tell until a read needs it,
        # and then authentication rejects it (test_tampering_beyond_repair_is_an_error_not_data)
        assert result is None
        return
    assert result is not None and result.rebuilt == [shard]
    assert path.read_bytes() == original  # rebuilt from parity, bit for bit
    assert estore.db.get(keys.heal(rec.segment_id)) is None
    assert await read(estore, v, k.resolve) == body


async def test_tampering_beyond_repair_is_an_error_not_data(estore: ObjectStore) -> None:
    k = Keys()
    body = random.Random(8).randbytes(2 * PLAIN + 10)
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    rec = segment_of(estore, v)
    for i in range(3):  # more altered chunks than parity: no combination authenticates
        flip_chunk_byte(shard_path(estore, rec, i), 0, BLOCK // 4, fix_crc=True)
    with pytest.raises(DataIntegrityError):
        await read(estore, v, k.resolve)
    assert await read(estore, v, k.resolve, PLAIN, len(body)) == body[PLAIN:]  # other blocks still read


def swap_blocks(path: Path, a: int, b: int, chunk: int) -> None:
    raw = bytearray(path.read_bytes())
    size = chunk + CRC_SIZE
    oa, ob = HEADER_SIZE + a * size, HEADER_SIZE + b * size
    raw[oa:oa + size], raw[ob:ob + size] = raw[ob:ob + size], raw[oa:oa + size]
    path.write_bytes(bytes(raw))


async def test_swapped_blocks_and_truncation_are_detected(estore: ObjectStore) -> None:
    k = Keys()
    body = random.Random(9).randbytes(4 * PLAIN)
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    rec = segment_of(estore, v)
    for i in range(6):  # every shard, CRCs and all: only the associated data can tell
        swap_blocks(shard_path(estore, rec, i), 1, 2, BLOCK // 4)
    with pytest.raises(DataIntegrityError):
        await read(estore, v, k.resolve, PLAIN, PLAIN + 10)
    assert await read(estore, v, k.resolve, 0, PLAIN) == body[:PLAIN]

    v2 = await estore.put_object("bkt", "obj2", body, encrypt_with=k.new())
    rec2 = segment_of(estore, v2)
    rec2.length -= BLOCK  # metadata cut the segment short by a whole block: the new last one was not final
    b = estore.db.batch()
    b.put(keys.segment(rec2.segment_id), rec2)
    estore.db.commit_now(b)
    with pytest.raises(DataIntegrityError):
        await read(estore, v2, k.resolve, 2 * PLAIN, 3 * PLAIN)

    # a block moved to another segment (same key, same index) fails: the segment id is bound too
    key = k.new()
    v3 = await estore.put_object("bkt", "a", body, encrypt_with=key)
    v4 = await estore.put_object("bkt", "b", body, encrypt_with=key)
    r3, r4 = segment_of(estore, v3), segment_of(estore, v4)
    for i in range(6):
        shard_path(estore, r4, i).write_bytes(shard_path(estore, r4, i).read_bytes()[:HEADER_SIZE]
                                              + shard_path(estore, r3, i).read_bytes()[HEADER_SIZE:])
    assert await read(estore, v3, k.resolve) == body
    with pytest.raises(DataIntegrityError):
        await read(estore, v4, k.resolve, 0, 10)


async def test_restart_keeps_envelopes(tmp_path: Path) -> None:
    k = Keys()
    s = open_store(tmp_path / "app", k=4, m=2, block_size=BLOCK)
    await s.create_bucket("bkt")
    body = random.Random(3).randbytes(PLAIN * 3 + 3)
    v = await s.put_object("bkt", "obj", body, encrypt_with=k.new())
    s.db.close()
    s = open_store(tmp_path / "app", k=4, m=2, block_size=BLOCK)
    try:
        v = s.head_object("bkt", "obj")
        assert segment_of(s, v).enc is not None
        assert await read(s, v, k.resolve) == body
    finally:
        s.db.close()


async def test_copies_share_or_rewrite(estore: ObjectStore) -> None:
    k = Keys()
    body = random.Random(4).randbytes(3 * PLAIN + 77)
    key_a = k.new()
    src = await estore.put_object("bkt", "src", body, encrypt_with=key_a)
    same = await estore.copy_object(src, "bkt", "same")
    assert same.segments == src.segments  # same key: shared, nothing copied
    other = await estore.copy_object(src, "bkt", "other", PutMeta("text/plain"), rewrite=True,
                                     encrypt_with=k.new(), decrypt_with=k.resolve)
    assert other.segments[0].segment_id != src.segments[0].segment_id
    assert segment_of(estore, other).enc != segment_of(estore, src).enc
    plain = await estore.copy_object(src, "bkt", "plain", rewrite=True, decrypt_with=k.resolve)
    assert segment_of(estore, plain).enc is None
    back = await estore.copy_object(plain, "bkt", "back", rewrite=True, encrypt_with=k.new())
    for v in (same, other, back):
        assert await read(estore, v, k.resolve) == body
    assert await read(estore, plain, None) == body
    assert other.content_type == "text/plain" and back.etag == src.etag
    with pytest.raises(ValueError, match="rewrite"):
        await estore.copy_object(src, "bkt", "bad", encrypt_with=k.new())

    up = await estore.create_multipart("bkt", "mp")
    p1 = await estore.upload_part_copy("bkt", "mp", up.upload_id, 1, src, 10, PLAIN + 20, decrypt_with=k.resolve)
    p2 = await estore.upload_part_copy("bkt", "mp", up.upload_id, 2, src, 5, 2 * PLAIN, decrypt_with=k.resolve,
                                       rewrite=True, encrypt_with=k.new())
    v = await estore.complete_multipart("bkt", "mp", up.upload_id, [(1, p1.etag), (2, p2.etag)], min_part_size=1)
    assert p1.segments[0].segment_id == src.segments[0].segment_id
    assert p2.segments[0].segment_id != src.segments[0].segment_id
    assert await read(estore, v, k.resolve) == body[10:PLAIN + 20] + body[5:2 * PLAIN]


async def test_patch_commit_mixes_keys(estore: ObjectStore) -> None:
    k = Keys()
    base_body = bytearray(random.Random(5).randbytes(10 << 20))
    base = await estore.put_object("bkt", "f", bytes(base_body), encrypt_with=k.new())
    base_body[3_000_000:3_004_096] = b"z" * 4096

    async def read_dirty(lo: int, hi: int) -> bytes:
        return bytes(base_body[lo:hi])

    v = await estore.commit_patch("bkt", "f", base, len(base_body), [(3_000_000, 3_004_096)], read_dirty,
                                  PutMeta(), encrypt_with=k.new(), decrypt_with=k.resolve)
    envs = estore.segment_envelopes(v.segments)
    assert len(envs) == 2 and all(e is not None for e in envs)
    assert await read(estore, v, k.resolve) == bytes(base_body)


async def test_altered_parity_is_caught_when_a_decode_needs_it(estore: ObjectStore) -> None:
    k = Keys()
    body = random.Random(10).randbytes(2 * PLAIN + 99)
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    rec = segment_of(estore, v)
    shard_path(estore, rec, 0).unlink()  # a lost data shard: reads decode from parity
    flip_chunk_byte(shard_path(estore, rec, 4), 1, BLOCK // 4, fix_crc=True)  # and one parity chunk lies
    assert await read(estore, v, k.resolve) == body
    entry = estore.db.get_record(HealEntry, keys.heal(rec.segment_id))
    assert entry is not None and entry.shards == [0, 4]
    result = await SegmentRepair(estore).check(rec.segment_id)
    assert result is not None and sorted(result.rebuilt) == [0, 4]
    shard_path(estore, rec, 5).unlink()  # the rebuilt parity is good: decoding with it authenticates
    shard_path(estore, rec, 1).unlink()
    assert await read(estore, v, k.resolve) == body


async def test_reads_of_many_batches(estore: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is decrypted while the next one is read; damage in a later batch is still found."""
    from appliance.engine import segments

    monkeypatch.setattr(segments, "READ_BATCH_BYTES", 3 * BLOCK)  # three blocks a batch
    k = Keys()
    body = random.Random(11).randbytes(10 * PLAIN + 5)
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    assert await read(estore, v, k.resolve) == body
    for lo, hi in [(2 * PLAIN + 3, 7 * PLAIN - 3), (PLAIN * 3, PLAIN * 6), (0, len(body))]:
        assert await read(estore, v, k.resolve, lo, hi) == body[lo:hi]
    rec = segment_of(estore, v)
    flip_chunk_byte(shard_path(estore, rec, 2), 7, BLOCK // 4, fix_crc=True)  # in the third batch
    assert await read(estore, v, k.resolve) == body
    entry = estore.db.get_record(HealEntry, keys.heal(rec.segment_id))
    assert entry is not None and entry.shards == [2]


async def test_batches_decrypted_while_read_ahead(estore: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large batch is decrypted in the read-ahead's thread, before its turn: the bytes are
    the same; a block failing authentication there is rebuilt when its turn comes; a batch
    whose read found damage (a lost shard) is fetched and decrypted as before."""
    from appliance.engine import segments

    monkeypatch.setattr(segments, "READ_BATCH_BYTES", 3 * BLOCK)
    monkeypatch.setattr(segments, "INLINE_OPEN_BYTES", BLOCK)  # every batch of 3 blocks goes to a thread
    opened_ahead: list[int] = []
    then_finished = segments._ReadAhead._then_finished

    def spy(self: Any, result: Any) -> None:
        then_finished(self, result)
        opened_ahead.append(len(self.opened or []))

    monkeypatch.setattr(segments._ReadAhead, "_then_finished", spy)
    k = Keys()
    body = random.Random(12).randbytes(10 * PLAIN + 5)  # 11 blocks: batches 0-2, 3-5, 6-8, 9-10
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    assert await read(estore, v, k.resolve) == body
    assert opened_ahead == [3, 3, 2]  # every batch after the first
    assert await read(estore, v, k.resolve, PLAIN + 1, 8 * PLAIN - 1) == body[PLAIN + 1:8 * PLAIN - 1]
    rec = segment_of(estore, v)
    flip_chunk_byte(shard_path(estore, rec, 1), 4, BLOCK // 4, fix_crc=True)  # the second batch
    opened_ahead.clear()
    assert await read(estore, v, k.resolve) == body
    assert opened_ahead == [3, 3, 2]  # opened ahead, one block None: rebuilt in its turn
    entry = estore.db.get_record(HealEntry, keys.heal(rec.segment_id))
    assert entry is not None and entry.shards == [1]
    shard_path(estore, rec, 0).unlink()  # every read ahead now misses a shard: fetched, decoded
    opened_ahead.clear()
    assert await read(estore, v, k.resolve) == body
    assert opened_ahead == []


async def test_scrubber_and_healer_repair_encrypted_segments(estore: ObjectStore) -> None:
    """The services, without any key: the scrubber finds a chunk whose CRC fails, the healer
    rebuilds a shard a reader found altered (its CRC recomputed)."""
    from appliance.services.heal import Healer
    from appliance.services.scrub import Scrubber

    k = Keys()
    bodies = {f"o{i}": random.Random(20 + i).randbytes(3 * PLAIN + i) for i in range(3)}
    versions = {name: await estore.put_object("bkt", name, b, encrypt_with=k.new()) for name, b in bodies.items()}
    recs = {name: segment_of(estore, v) for name, v in versions.items()}
    originals = {name: shard_path(estore, r, 1).read_bytes() for name, r in recs.items()}
    flip_chunk_byte(shard_path(estore, recs["o0"], 1), 2, BLOCK // 4, fix_crc=False)
    flip_chunk_byte(shard_path(estore, recs["o1"], 1), 0, BLOCK // 4, fix_crc=True)
    healer = Healer(estore)
    await Scrubber(estore, healer).run_pass(fresh=True)
    assert shard_path(estore, recs["o0"], 1).read_bytes() == originals["o0"]  # CRC: found and healed
    assert shard_path(estore, recs["o1"], 1).read_bytes() != originals["o1"]  # invisible without the key
    assert await read(estore, versions["o1"], k.resolve) == bodies["o1"]  # the read authenticates and reports
    await healer.run_pass()
    assert shard_path(estore, recs["o1"], 1).read_bytes() == originals["o1"]
    for name, v in versions.items():
        assert await read(estore, v, k.resolve) == bodies[name]


@pytest.mark.parametrize(("k", "m"), [(3, 2), (1, 1), (5, 1)])
async def test_geometries_whose_chunks_are_padded(tmp_path: Path, k: int, m: int) -> None:
    """k not dividing the block size: chunks carry padding, which decryption must skip."""
    s = open_store(tmp_path / "app", ndisks=k + m, k=k, m=m, block_size=BLOCK)
    try:
        await s.create_bucket("bkt")
        keys_ = Keys()
        body = random.Random(k).randbytes(4 * PLAIN + 333)
        v = await s.put_object("bkt", "obj", body, encrypt_with=keys_.new(), size_hint=None)
        assert await read(s, v, keys_.resolve) == body
        assert await read(s, v, keys_.resolve, PLAIN - 7, 3 * PLAIN + 9) == body[PLAIN - 7:3 * PLAIN + 9]
        rec = segment_of(s, v)
        if m:
            shard_path(s, rec, 0).unlink()  # decoded from parity, then decrypted
            assert await read(s, v, keys_.resolve) == body
    finally:
        s.db.close()


async def test_altered_ciphertext_in_a_large_batch(estore: ObjectStore) -> None:
    """A batch past INLINE_OPEN_BYTES is decrypted in a worker thread into reused buffers: a
    block failing authentication there is still rebuilt, and the blocks around it are intact."""
    k = Keys()
    body = random.Random(9).randbytes(10 * PLAIN + 777)
    assert len(body) > INLINE_OPEN_BYTES
    v = await estore.put_object("bkt", "obj", body, encrypt_with=k.new())
    rec = segment_of(estore, v)
    flip_chunk_byte(shard_path(estore, rec, 2), 6, BLOCK // 4, fix_crc=True)
    assert await read(estore, v, k.resolve) == body
    assert await read(estore, v, k.resolve, 5 * PLAIN + 3, 9 * PLAIN) == body[5 * PLAIN + 3 : 9 * PLAIN]
    entry = estore.db.get_record(HealEntry, keys.heal(rec.segment_id))
    assert entry is not None and entry.shards == [2]


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, PLAIN, 5 * PLAIN + 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_blocks_open_from_their_pieces(size: int, k: int) -> None:
    """open_parts_into (large GETs) decrypts a block where its chunks lie, the tag split across
    chunks or not: the plaintext `open` gives; any altered byte of any piece, tag included, or a
    block opened as another index or finality, fails, and leaves the output zeroed, not holding
    unauthenticated plaintext."""
    cipher = SegmentCipher(os.urandom(32), "seg-parts")
    plain = random.Random(size * 7 + k).randbytes(size)
    block = cipher.seal(3, plain, True)
    cs = -(-len(block) // k)
    padded = block + b"\xaa" * (cs * k - len(block))  # padding past the block is never read
    pieces = [memoryview(bytearray(padded[i * cs:(i + 1) * cs]))[: max(0, min(cs, len(block) - i * cs))]
              for i in range(k)]
    out = bytearray(os.urandom(size))
    assert cipher.open_parts_into(3, pieces, True, memoryview(out)) and bytes(out) == plain
    assert not cipher.open_parts_into(4, pieces, True, memoryview(out)) and out == bytes(size)
    assert not cipher.open_parts_into(3, pieces, False, memoryview(out)) and out == bytes(size)
    for i in range(k):
        if not len(pieces[i]):
            continue
        for at in {0, len(pieces[i]) - 1}:
            pieces[i][at] ^= 1
            out[:] = os.urandom(size)
            assert not cipher.open_parts_into(3, pieces, True, memoryview(out)) and out == bytes(size)
            pieces[i][at] ^= 1
    assert cipher.open_parts_into(3, pieces, True, memoryview(out)) and bytes(out) == plain
    with pytest.raises(ValueError):
        cipher.open_parts_into(3, pieces, True, memoryview(bytearray(size + 1)))


async def test_empty_bodies_store_nothing_and_answer_as_before(estore: ObjectStore, tmp_path: Path) -> None:
    """An empty body (every creat in the mount) takes a short cut past the streaming writer: no
    segment, no file, the MD5 of nothing as ETag, plain or encrypted; an opaque-ETag key (SSE-C)
    still gets its keyed ETag, which must not be the plaintext MD5."""
    k = Keys()
    before = files_under(tmp_path / "app")
    empty_md5 = hashlib.md5(b"").hexdigest()
    for name, key in (("plain", None), ("sse", k.new()), ("view", k.new())):
        body: bytes | bytearray | memoryview = {"plain": b"", "sse": bytearray(), "view": memoryview(b"")}[name]
        v = await estore.put_object("bkt", name, body, encrypt_with=key)
        assert (v.size, v.segments, v.etag) == (0, [], empty_md5), name
        assert await read(estore, v, k.resolve) == b""
    opaque = await estore.put_object("bkt", "opaque", b"", encrypt_with=k.new(opaque=True))
    assert opaque.size == 0 and opaque.segments == []
    assert len(opaque.etag) == 32 and opaque.etag != empty_md5
    grown = {p for p in files_under(tmp_path / "app") if "/volumes/" in str(p) or "/shards/" in str(p)}
    assert grown <= set(before)  # no shard file or volume was written for any of them
