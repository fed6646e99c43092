"""ISA-L's parity (engine/isal.py) is zfec's, byte for byte, and zfec still encodes without it."""

from __future__ import annotations

import random

import pytest

from appliance.engine import codec, isal
from appliance.engine.codec import Geometry

GEOMETRIES = [(1, 1), (2, 1), (2, 2), (3, 2), (4, 2), (6, 3), (10, 4), (16, 4)]
SIZES = [1, 7, 63, 64, 65, 4096, 65537, 1 << 20]


def _zfec_chunks(geo: Geometry, block: bytes) -> list[bytes]:
    data, _ = codec.split_block(geo, block)
    return [bytes(c) for c in data] + isal.zfec_parity(geo.k, geo.m, list(data))


def test_libisal_is_installed_and_agrees() -> None:
    # the set-up installs libisal2 (Makefile RUN_APT): the fast path is the one tested and shipped
    for k, m in GEOMETRIES:
        assert isal.parity_coder(k, m) is not None, (k, m)


@pytest.mark.parametrize(("k", "m"), GEOMETRIES)
def test_parity_is_zfecs(k: int, m: int) -> None:
    rng = random.Random(k * 100 + m)
    geo = Geometry(k, m, 1 << 20)
    for size in SIZES:
        block = rng.randbytes(size)
        got = [bytes(c) for c in codec.encode_block(geo, block)]
        assert got == _zfec_chunks(geo, block), size
        # any k of them decode (zfec's decoder reads ISA-L's parity)
        keep = rng.sample(range(k + m), k)
        assert codec.decode_block(geo, {i: got[i] for i in keep}, size) == block


def test_buffer_kinds() -> None:
    coder = isal.parity_coder(4, 2)
    assert coder is not None
    block = random.Random(1).randbytes(4 * 1000)
    want = b"".join(isal.zfec_parity(4, 2, [block[i * 1000:(i + 1) * 1000] for i in range(4)]))
    for buf in (block, bytearray(block), memoryview(block), memoryview(bytearray(block))):
        assert bytes(coder.parity(buf, 1000)) == want
    with pytest.raises(ValueError):
        coder.parity(block, 999)
    with pytest.raises(ValueError):
        coder.parity(b"", 0)


def test_zfec_encodes_without_libisal(monkeypatch: pytest.MonkeyPatch) -> None:
    geo = Geometry(4, 2, 1 << 20)
    block = random.Random(2).randbytes(300_001)
    fast = [bytes(c) for c in codec.encode_block(geo, block)]
    monkeypatch.setattr(isal, "LIBRARY", "libisal-not-here.so.0")
    isal._library.cache_clear()
    isal.parity_coder.cache_clear()
    try:
        assert isal.parity_coder(4, 2) is None
        assert [bytes(c) for c in codec.encode_block(geo, block)] == fast == _zfec_chunks(geo, block)
    finally:
        monkeypatch.undo()
        isal._library.cache_clear()
        isal.parity_coder.cache_clear()


def test_empty_and_unparitied_blocks() -> None:
    assert codec.encode_block(Geometry(4, 2, 1 << 20), b"") == [b""] * 6
    assert [bytes(c) for c in codec.encode_block(Geometry(3, 0, 1 << 20), b"abcdef")] == [b"ab", b"cd", b"ef"]
