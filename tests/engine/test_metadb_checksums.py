"""A flipped bit in a metadata table file is an error on read, never a different value: reads
verify LevelDB's block checksums (found by fuzzing: a version's segment offset 0 read as 1
served other bytes with 206); a damaged DB that cannot be opened says how to rebuild it."""

from __future__ import annotations

import os
from pathlib import Path

import plyvel
import pytest

from appliance.engine.errors import FormatError
from appliance.engine.metadb import MetaDB

KEY = b"Vtest-key"
VALUE = b'{"segments":[["9f3c1a7e52b04d86e1f7a2c95b3d0e48",0,3145728]]}'


def _table_with_value(path: Path) -> Path:
    db = MetaDB(path)
    b = db.batch()
    b.put(KEY, VALUE)
    for i in range(300):  # other blocks around it: what the open reads lies elsewhere
        b.put(b"Vfill%04d" % i, os.urandom(100))
    db.commit_now(b)
    db.db.compact_range()  # the value leaves the log for a table file
    db.close()
    tables = sorted(path.glob("*.ldb"))
    return next(t for t in tables if b'",0,3145728' in t.read_bytes())  # stored literally


def test_a_flipped_bit_in_a_table_is_an_error_on_read(tmp_path: Path) -> None:
    table = _table_with_value(tmp_path / "meta")
    raw = bytearray(table.read_bytes())
    at = raw.index(b'",0,3145728') + 2
    raw[at] ^= 0x01  # '0' -> '1': still valid JSON, another offset
    table.write_bytes(bytes(raw))
    try:
        db = MetaDB(tmp_path / "meta")
    except FormatError as exc:
        raise AssertionError("the damaged block should hold none of what the open reads") from exc
    try:
        with pytest.raises(plyvel.CorruptionError):
            db.get(KEY)
        with pytest.raises(plyvel.CorruptionError):  # again: a damaged block is never cached
            db.get(KEY)
        # (plyvel's iterators end at a damaged block without an error: a scan misses its keys
        # but returns no altered value; docs/metadata-recovery.md)
        assert all(v != VALUE.replace(b",0,", b",1,") for _, v in db.scan(b"V"))
    finally:
        db.close()


def test_a_damaged_db_that_cannot_open_points_at_recover_metadata(tmp_path: Path) -> None:
    _table_with_value(tmp_path / "meta")
    manifest = next((tmp_path / "meta").glob("MANIFEST-*"))
    manifest.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(FormatError) as exc:
        MetaDB(tmp_path / "meta")
    assert "cannot open metadata DB" in str(exc.value)


def test_a_flipped_bit_in_leveldbs_log_refuses_the_db_until_it_is_rebuilt(tmp_path: Path) -> None:
    """LevelDB skips a damaged log record, with its block of commits, and only its info LOG
    said so: the daemon served without those commits, and the orphan sweep deleted their data
    (found by fuzzing). The open that skipped them writes the rest to a table and deletes the
    log, so every later open must refuse the DB as well."""
    path = tmp_path / "meta"
    db = MetaDB(path)
    for i in range(40):
        b = db.batch()
        b.put(b"Vkey%04d" % i, os.urandom(1000))
        db.commit_now(b, sync=False)
    db.close()
    log = max(path.glob("*.log"), key=lambda p: p.stat().st_size)
    raw = bytearray(log.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    log.write_bytes(bytes(raw))
    for _ in range(2):
        with pytest.raises(FormatError) as exc:
            MetaDB(path)
        assert "dropping" in str(exc.value) and "recover-metadata" in str(exc.value)
    MetaDB(path, recovering=True).close()  # recover-metadata may still read it


def test_a_clean_db_opens_again_and_again(tmp_path: Path) -> None:
    path = tmp_path / "meta"
    for i in range(3):
        db = MetaDB(path)
        b = db.batch()
        b.put(b"Vkey%04d" % i, b"x")
        db.commit_now(b)
        db.close()
    db = MetaDB(path)
    assert [k for k, _ in db.scan(b"Vkey")] == [b"Vkey0000", b"Vkey0001", b"Vkey0002"]
    db.close()



def _log_of_small_commits(path: Path) -> tuple[Path, bytearray]:
    """A log of 3,000 small commits, one of which ends exactly at a block's end (so the next
    block begins a new commit, as it does by chance in a real log)."""
    db = MetaDB(path)
    log = max(path.glob("*.log"), key=lambda p: p.stat().st_size)
    aligned, record = False, 0  # record: one commit's bytes in the log, less its value's
    for i in range(3000):
        before = log.stat().st_size  # LevelDB flushes each record to the file
        value = bytes(150)
        left = 32768 - before % 32768
        if not aligned and before > 3 * 32768 and 400 < left < 600:
            value = bytes(left - record)
            aligned = True
        b = db.batch()
        b.put(b"Vkey%05d" % i, value)
        db.commit_now(b, sync=False)
        record = log.stat().st_size - before - len(value)
    assert aligned and any(b % 32768 == 0 for b in _new_records(log.read_bytes()))
    db.close()
    return log, bytearray(log.read_bytes())


def _new_records(raw: bytes) -> list[int]:
    """Offsets of LevelDB log records that begin a commit (type FULL or FIRST), read block by
    block as LevelDB does (doc/log_format.md)."""
    found = []
    for block in range(0, len(raw), 32768):
        pos = block
        while pos + 7 <= min(block + 32768, len(raw)):
            length, rtype = int.from_bytes(raw[pos + 4:pos + 6], "little"), raw[pos + 6]
            if rtype in (1, 2):
                found.append(pos)
            pos += 7 + length
    return found


def test_a_zeroed_block_in_leveldbs_log_refuses_the_db_until_it_is_rebuilt(tmp_path: Path) -> None:
    """LevelDB drops the rest of a log block that reads as zeros without a word in its info LOG
    (it takes it for preallocated space): when the next block begins a new commit, the commits
    in the zeroed part vanished while later ones stood, and the DB opened as if whole. Zeros
    followed by intact records are damage, never a power cut's torn tail."""
    path = tmp_path / "meta"
    log, raw = _log_of_small_commits(path)
    starts = _new_records(raw)
    # a block whose successor begins with a new commit: zero it from its second record on
    nxt = next(b for b in range(32768, len(raw) - 32768, 32768) if b in starts)
    at = [p for p in starts if nxt - 32768 < p < nxt][1]
    raw[at:nxt] = bytes(nxt - at)
    log.write_bytes(bytes(raw))
    for _ in range(2):
        with pytest.raises(FormatError) as exc:
            MetaDB(path)
        assert f"zeroed bytes at offset {at}" in str(exc.value) and "recover-metadata" in str(exc.value)
    MetaDB(path, recovering=True).close()


def test_zeros_to_the_end_of_leveldbs_log_are_a_torn_tail(tmp_path: Path) -> None:
    """A power cut may leave the log's unsynced end as zeros: LevelDB drops it, and the DB opens
    with every commit before it."""
    path = tmp_path / "meta"
    log, raw = _log_of_small_commits(path)
    cut = _new_records(raw)[3000]
    raw[cut:] = bytes(len(raw) - cut)
    log.write_bytes(bytes(raw))
    db = MetaDB(path)
    try:
        kept = [k for k, _ in db.scan(b"Vkey")]
        assert 2000 <= len(kept) < 6000 and kept == [b"Vkey%05d" % i for i in range(len(kept))]
    finally:
        db.close()


def test_the_log_scan_takes_any_bytes(tmp_path: Path) -> None:
    """Hostile or torn log files: the scan before the open never raises on their bytes."""
    import random

    from appliance.engine.leveldblog import zeroed_hole

    rng = random.Random(7)
    log = tmp_path / "000001.log"
    for size in (0, 1, 6, 7, 8, 32767, 32768, 32769, 100_000):
        for fill in (b"\x00", b"\xff", None):
            log.write_bytes(fill * size if fill else rng.randbytes(size))
            assert zeroed_hole(log) is None or "zeroed bytes" in str(zeroed_hole(log))
