"""Records and shard headers are written by msgspec's JSON codec (records.json_dumps/json_loads):
the bytes must be the ones json.dumps wrote before it, so old and new writers, the golden
records and the journal all agree, and whatever json read must still read the same."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.engine.records import ObjectVersion, SegmentRef, _json_default, json_dumps, json_loads
from appliance.engine.shardfile import ShardHeader, _ascii_json

# what records hold: no floats (none of their fields is one); any text, a mount's undecodable
# name bytes as lone surrogates included where noted
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
SURROGATE_TEXT = st.text(max_size=40)  # lone surrogates included
INTS = st.integers(min_value=-(2**70), max_value=2**70)


def values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | INTS | text
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
                        max_leaves=30)


def old_dumps(obj: Any, ascii_only: bool = False) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only, default=_json_default).encode()


@settings(max_examples=400, deadline=None)
@given(values(TEXT))
def test_the_same_bytes_as_json(value: Any) -> None:
    assert json_dumps(value) == old_dumps(value)
    assert json_loads(old_dumps(value)) == value
    assert json_loads(memoryview(b"x" + old_dumps(value))[1:]) == value


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT, st.dictionaries(TEXT, TEXT, max_size=4), INTS)
def test_version_records_encode_as_before(bucket: str, key: str, meta: dict[str, str], n: int) -> None:
    v = ObjectVersion(bucket=bucket, key=key, version_id="null", seq=abs(n), last_modified_ns=abs(n),
                      user_meta=meta, segments=[SegmentRef(segment_id="s" * 32, offset=0, length=abs(n))],
                      sse={"mode": "AES256"}, acl=[{"id": key}])
    body = v.encode()
    assert body == bytes([ObjectVersion.FORMAT]) + old_dumps(v._to_json())
    assert ObjectVersion.decode(body) == v


@settings(max_examples=300, deadline=None)
@given(values(SURROGATE_TEXT))
def test_shard_header_json_is_json_dumps_ascii(value: Any) -> None:
    """Headers stay ASCII, byte for byte what json.dumps wrote, lone surrogates and DEL too."""
    doc = {"identity": value, "segment_id": "a" * 32}
    assert _ascii_json(doc) == old_dumps(doc, ascii_only=True)
    assert json_loads(_ascii_json(doc)) == json.loads(old_dumps(doc, ascii_only=True))


def test_header_round_trip_with_undecodable_names() -> None:
    name = b"dir/\xff\xfe-\x7f-\xc3\xa9".decode("utf-8", "surrogateescape")
    h = ShardHeader("a" * 32, 1, 4, 2, 65536, 10, 5, identity={"key": name, "user_meta": {"m": "\u2028"}})
    body = h.json_body(8192)
    assert body.isascii() and body == old_dumps({k: getattr(h, k) for k in (
        "segment_id", "shard", "k", "m", "block_size", "length", "created_ns", "appliance_id", "identity")},
        ascii_only=True)
    assert ShardHeader.from_json(body).identity["key"] == name


def test_a_lone_surrogate_in_a_record_raises_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        old_dumps({"k": "\udcff"})
    with pytest.raises(UnicodeEncodeError):
        json_dumps({"k": "\udcff"})


def test_what_only_json_reads_still_reads() -> None:
    assert json_loads(b'{"a":NaN}')["a"] != json_loads(b'{"a":NaN}')["a"]  # NaN, as json gives it
    assert json_loads(b'{"a":1,"a":2}') == {"a": 2}
    for bad in (b"", b"{", b'{"a":}', b"\xff", b'{"a":"\xc3"}', b"[1]]"):
        with pytest.raises(ValueError):
            json_loads(bad)
