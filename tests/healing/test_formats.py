"""Persisted formats of the healing services: the metadata snapshot stream (golden bytes,
round trip, damage detection) and the scrub cursor."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.engine.errors import FormatError
from appliance.services.scrub import ScrubCursor
from appliance.services.snapshot import read_stream, write_stream

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
