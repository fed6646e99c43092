"""Persisted formats of the healing services: the metadata snapshot stream (golden bytes,
round trip, damage detection) and the progress records (scrub cursor, snapshot list, lost
segments, recovery report): the bytes round 1 wrote (`*.v1`, plain JSON), those of later formats
(`*.v2`, `*.v3`: a format byte then JSON) and the bytes this version writes all decode."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.engine.errors import FormatError
from appliance.engine.metasnap import read_stream, write_stream
from appliance.engine.progress import (
    LostSegment,
    ProgressRecord,
    RecoveryReport,
    ScrubCursor,
    SnapshotInfo,
    SnapshotList,
)

GOLDEN = Path(__file__).parent / "golden"
META = {"appliance_id": "a1b2c3d4e5f60718", "created_ns": 1, "seq": 7, "db_format": 1}
ITEMS = [(b"Afmt", b"1"), (b"Bbucket", b"\x01{}"), (b"S" + b"0" * 32, bytes(range(256)))]


def _stream(items: list[tuple[bytes, bytes]]) -> bytes:
    buf = io.BytesIO()
    write_stream(iter(items), buf, META)
    return buf.getvalue()


def test_snapshot_stream_golden_v1() -> None:
    raw = _stream(ITEMS)
    assert raw == (GOLDEN / "meta-snapshot.v1").read_bytes()
    meta, records = read_stream(io.BytesIO(raw))
    assert meta == META and list(records) == ITEMS


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=300)), max_size=30))
def test_snapshot_stream_round_trip(items: list[tuple[bytes, bytes]]) -> None:
    _meta, records = read_stream(io.BytesIO(_stream(items)))
    assert list(records) == items


@pytest.mark.parametrize("cut", [5, 30, -1, -13])
def test_snapshot_stream_truncated(cut: int) -> None:
    raw = _stream(ITEMS)[:cut]
    with pytest.raises(FormatError):
        _, records = read_stream(io.BytesIO(raw))
        list(records)


def test_snapshot_stream_bit_flip_detected() -> None:
    raw = bytearray(_stream(ITEMS))
    raw[-40] ^= 0x01  # inside the last value
    _, records = read_stream(io.BytesIO(bytes(raw)))
    with pytest.raises(FormatError, match="checksum"):
        list(records)


def test_snapshot_stream_rejects_unknown_version() -> None:
    raw = bytearray(_stream(ITEMS))
    raw[8] = 9
    with pytest.raises(FormatError, match="format 9"):
        read_stream(io.BytesIO(bytes(raw)))


def test_scrub_cursor_format_v1() -> None:
    raw = (GOLDEN / "scrub-cursor.v1").read_bytes()
    cur = ScrubCursor.decode(raw)
    assert cur == ScrubCursor(cursor="ab" * 16, pass_started_ns=5, last_complete_ns=3, segments=10,
                              bytes_read=4096, found=2, repaired=2, unrecoverable=0)
    assert ScrubCursor.decode(cur.encode()) == cur
    assert ScrubCursor.decode(b"not json") == ScrubCursor()  # damaged: a new pass, not a crash
    assert ScrubCursor.decode(b'{"format": 99, "cursor": "x"}') == ScrubCursor()


GOLDEN_RECORDS: list[tuple[str, ProgressRecord]] = [
    ("scrub-cursor", ScrubCursor(cursor="ab" * 16, pass_started_ns=5, last_complete_ns=3, segments=10,
                                 bytes_read=4096, found=2, repaired=2, unrecoverable=0)),
    # round 1's bytes are those of the round-1 fixture (tests/fixtures/round1-datadir.tar.xz)
    ("snapshot-list", SnapshotList([SnapshotInfo("a7840ee454b19117230a56f801166112", 1796199880459106059,
                                                 1796199879811466334, 17661, 63)])),
    ("lost-segment", LostSegment("cd" * 16, 1700000000000000001, [0, 4], 4, 2,
                                 [{"bucket": "photos", "key": "2024/été.jpg", "version_id": "null"},
                                  {"upload_id": "u-1", "part": 3}])),
    ("recovery-report", RecoveryReport(
        appliance_id="8b41785b83ba288d", disks=["d0 (/srv/d0)", "d1 (/srv/d1)"], shard_files=42,
        snapshot={"segment_id": "ef" * 16, "created_ns": 1700000000000000002}, restored_records=63,
        versions_added=["b/k", "b/v (vid1)"], parts_added=1, versions_dropped=["b/gone (null)"],
        segments_unreadable=["01" * 16], segments_ignored=2, degraded_segments=3)),
]


@pytest.mark.parametrize(("name", "record"), GOLDEN_RECORDS, ids=[n for n, _ in GOLDEN_RECORDS])
def test_progress_record_golden(name: str, record: ProgressRecord) -> None:
    cls = type(record)
    current = (GOLDEN / f"{name}.v{record.FORMAT}").read_bytes()
    assert record.encode() == current
    assert cls.decode(current) == record
    for version in range(1, record.FORMAT):  # 1: written by round 1; the fields added since default
        assert cls.decode((GOLDEN / f"{name}.v{version}").read_bytes()) == record


@pytest.mark.parametrize("cls", [SnapshotList, LostSegment, RecoveryReport])
def test_progress_record_rejects_unknown_or_damaged(cls: type[ProgressRecord]) -> None:
    with pytest.raises(FormatError, match="format 9"):
        cls.decode(bytes([9]) + b"{}")
    with pytest.raises(FormatError, match="damaged"):
        cls.decode(bytes([2]) + b"{not json")
    assert ScrubCursor.decode(bytes([9]) + b"{}") == ScrubCursor()  # the scrubber starts a new pass
