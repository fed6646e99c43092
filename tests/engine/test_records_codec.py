"""Records decoded straight into their dataclass by msgspec, and encoded from it, give what the
dict path gives: the same values of the same types, the same bytes (records.py)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from appliance.engine import records
from appliance.engine.errors import FormatError
from appliance.engine.records import Record, SegmentRecord, UsageRecord, fields_dict, json_dumps, json_loads

from .test_formats import GOLDEN_NAMES, _record_classes

GOLDEN = Path(__file__).parent / "golden"


def _by_dict(cls: type[Record], raw: bytes) -> Record:
    """What Record.decode gave before the typed decoders: the dict and the format's decoder."""
    body = json_loads(raw[1:])
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return cls.decoders()[raw[0]](body)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a tuple is not a list here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Record) or hasattr(a, "__dataclass_fields__"):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    return bool(a == b)


@pytest.mark.parametrize("cls", _record_classes(), ids=lambda c: c.__name__)
def test_typed_decode_matches_the_dict_path_on_every_golden_format(cls: type[Record]) -> None:
    for version in cls.decoders():
        raw = (GOLDEN / f"{GOLDEN_NAMES[cls.__name__]}.v{version}").read_bytes()
        assert _same(cls.decode(raw), _by_dict(cls, raw)), (cls.__name__, version)


@pytest.mark.parametrize("cls", _record_classes(), ids=lambda c: c.__name__)
def test_native_encode_is_the_dict_encoding(cls: type[Record]) -> None:
    raw = (GOLDEN / f"{GOLDEN_NAMES[cls.__name__]}.v{cls.FORMAT}").read_bytes()
    rec = cls.decode(raw)
    if cls._to_json is Record._to_json:
        assert rec.encode()[1:] == json_dumps(fields_dict(rec))
        assert rec.encode()[1:] == json.dumps(fields_dict(rec), separators=(",", ":"), ensure_ascii=False).encode()


def test_plain_records_take_the_typed_path() -> None:
    """The hot records of a small PUT do (the speed is the point), ObjectVersion cannot (its
    segments are arrays): it keeps its own decoder."""
    assert records._typed_decoder(SegmentRecord, SegmentRecord.FORMAT) is not None
    assert records._typed_decoder(UsageRecord, UsageRecord.FORMAT) is not None
    assert records._typed_decoder(records.ObjectVersion, records.ObjectVersion.FORMAT) is None
    assert records._typed_decoder(records.UploadRecord, 3) is None  # format 3's decoder is its own


def test_unusual_values_still_read_as_the_dict_path_reads_them() -> None:
    """A value of another type than the field's annotation, an unknown field, a missing
    defaulted one, text that is not ASCII: the same record either way."""
    base = SegmentRecord("s" * 32, 4, 2, 1 << 20, 10, ["d0", None, "d2", "d3", "d4", "d5"], 1, 7)
    body = json.loads(base.encode()[1:])
    variants = [
        {**body, "k": "4"},  # a string where an int is annotated
        {**body, "refcount": True},
        {**body, "future_field": {"x": [1, 2]}},  # written by a newer version
        {k: v for k, v in body.items() if k not in ("pool", "damaged", "packs")},
        {**body, "pool": "пул-😀"},
        {**body, "enc": {"v": 1, "wrapped": "A" * 40, "extra": [None, 1.5]}},
        {**body, "packs": [[1, 2, 3], None, [4, 5, 6], None, None, None]},
    ]
    for v in variants:
        raw = bytes([SegmentRecord.FORMAT]) + json.dumps(v, ensure_ascii=False).encode()
        assert _same(SegmentRecord.decode(raw), _by_dict(SegmentRecord, raw)), v


HOSTILE = {
    "empty body": b"\x01", "array": b"\x01[1,2]", "cut short": b"\x01{\"bucket\": 5", "not utf-8": b"\x01\xff\xfe",
    "null": b"\x01null", "missing field": b"\x01{\"objects\":1}",
    "wrong type": b"\x01{\"bucket\":\"b\",\"objects\":\"x\"}   ", "deep nesting": b"\x01" + b"[" * 20_000,
    "lone surrogate": b"\x01{\"bucket\":\"\\ud800\"}",
    "huge number": b"\x01{\"bucket\":\"b\",\"objects\":1" + b"0" * 400 + b"}",
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bodies_of_typed_records_raise_format_error_or_read_as_before(raw: bytes) -> None:
    try:
        expected: Record | None = _by_dict(UsageRecord, raw)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        expected = None
    if expected is None:
        with pytest.raises(FormatError):
            UsageRecord.decode(raw)
    else:
        assert _same(UsageRecord.decode(raw), expected)
