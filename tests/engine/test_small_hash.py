"""A small body's MD5, hashed in pieces that keep the GIL (segments._md5_hex), is hashlib's."""

from __future__ import annotations

import hashlib
import random

from appliance.engine import segments


def test_piecewise_md5_is_hashlibs_at_every_boundary() -> None:
    rng = random.Random(5)
    piece, held = segments._MD5_PIECE, segments.HELD_MD5_BYTES
    for size in (0, 1, piece - 1, piece, piece + 1, 2 * piece, 4096, held - 1, held, held + 1, 300_000):
        data = rng.randbytes(size)
        assert segments._md5_hex(data) == hashlib.md5(data).hexdigest(), size
