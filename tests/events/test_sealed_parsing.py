"""The description of an SSE-C replica sent as ciphertext (s3gw/sealedreplica.py,
appliance/engine/sealed.py): hostile or inconsistent descriptions are refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from appliance.engine.errors import InvalidArgument
from s3gw.errors import S3Error
from s3gw.sealedreplica import parse_sealed, parse_sealed_part

SEG = {"cipher_id": "ab" * 16, "length": 65536 + 100, "block_size": 65536, "plain": 65536 + 100 - 32,
       "enc": {"mode": "SSE-C", "salt": "x", "hmac": "y", "wrapped": "z"}}
GOOD = {"v": 1, "size": SEG["plain"], "etag": "e" * 32, "sse": {"mode": "SSE-C"}, "segments": [SEG],
        "checksums": {}, "checksum_type": "", "parts": [], "part_checksums": []}


def enc(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def test_a_good_description() -> None:
    obj = parse_sealed(enc(GOOD))
    obj.check()
    assert obj.stored == SEG["length"] and obj.segments[0].cipher_id == "ab" * 16


@pytest.mark.parametrize("raw", ["%%%", base64.b64encode(b"\xff").decode(), enc([]), enc({"v": 2}),
                                 enc(dict(GOOD, segments=[dict(SEG, length="1")])),
                                 enc(dict(GOOD, segments=[dict(SEG, length=True)])),
                                 enc(dict(GOOD, segments=[[]])), enc(dict(GOOD, size="1")),
                                 enc(dict(GOOD, checksums={"CRC32": 5})), enc(dict(GOOD, parts=["1"])),
                                 enc(dict(GOOD, part_checksums=[1])), enc(dict(GOOD, sse=None)),
                                 base64.b64encode(b"[" * 100000).decode()])
def test_malformed_descriptions(raw: str) -> None:
    with pytest.raises(S3Error):
        parse_sealed(raw)


@pytest.mark.parametrize("doc", [dict(GOOD, sse={"mode": "AES256"}), dict(GOOD, segments=[]),
                                 dict(GOOD, size=SEG["plain"] + 1), dict(GOOD, etag=""),
                                 dict(GOOD, segments=[dict(SEG, plain=SEG["plain"] + 1)]),
                                 dict(GOOD, segments=[dict(SEG, block_size=100)]),
                                 dict(GOOD, segments=[dict(SEG, cipher_id="")]),
                                 dict(GOOD, segments=[dict(SEG, enc={"mode": "AES256"})])])
def test_inconsistent_descriptions(doc: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        parse_sealed(enc(doc)).check()


def test_a_sealed_part_and_a_sealed_completion() -> None:
    part = dict(SEG, offset=4096, used=1000)
    seg = parse_sealed_part(enc({"v": 1, "segment": part}))
    seg.check()
    assert (seg.offset, seg.size) == (4096, 1000)
    done = parse_sealed(enc(dict(GOOD, segments=None)), with_segments=False)  # its segments are the parts'
    assert done.segments == [] and done.size == SEG["plain"]


@pytest.mark.parametrize("raw", ["%%%", enc({"v": 1}), enc({"v": 1, "segment": []}), enc({"v": 2, "segment": SEG}),
                                 enc({"v": 1, "segment": dict(SEG, offset="1")}),
                                 enc({"v": 1, "segment": dict(SEG, used=True)})])
def test_malformed_sealed_parts(raw: str) -> None:
    with pytest.raises(S3Error):
        parse_sealed_part(raw)


@pytest.mark.parametrize("seg", [dict(SEG, offset=-1), dict(SEG, used=-1), dict(SEG, offset=1, used=SEG["plain"]),
                                 dict(SEG, offset=SEG["plain"])])
def test_inconsistent_slices(seg: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        parse_sealed_part(enc({"v": 1, "segment": seg})).check()
