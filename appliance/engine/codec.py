"""Erasure coding of one block into k data + m parity chunks (zfec, systematic).

zfec is systematic: chunks 0..k-1 are the block itself cut in k pieces, so a healthy read is a
concatenation and never decodes. Chunks are CRC32C-checksummed (hardware, ~25 GB/s: nearly
free) so a read verifies exactly the bytes it touches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import zfec
from awscrt.checksums import crc32c

from . import isal
from .errors import InsufficientShards


@dataclass(frozen=True, slots=True)
class Geometry:
    k: int
    m: int
    block_size: int

    @property
    def n(self) -> int:
        return self.k + self.m

    @property
    def quorum(self) -> int:
        """Shards that must be written for a segment to be committed (k+1, or all when m=0)."""
        return self.k + min(1, self.m)

    def chunk_size(self, block_len: int) -> int:
        return -(-block_len // self.k) if block_len else 0


def auto_geometry(disks: int) -> tuple[int, int]:
    """Default k+m for a pool of `disks` disks: 4+2 at six or more, fewer parity below."""
    table = {1: (1, 0), 2: (1, 1), 3: (2, 1), 4: (2, 2), 5: (3, 2)}
    return (4, 2) if disks >= 6 else table.get(disks, (1, 0))


@lru_cache(maxsize=64)
def _decoder(k: int, n: int) -> zfec.Decoder:
    return zfec.Decoder(k, n)


def checksum(chunk: bytes | memoryview) -> int:
    return int(crc32c(chunk))


def _padded(geo: Geometry, block: bytes) -> tuple[bytes, int]:
    """The block zero-padded to k equal chunks, and the chunk size."""
    cs = geo.chunk_size(len(block))
    return (block if len(block) == cs * geo.k else block + bytes(cs * geo.k - len(block))), cs


def _cut(buf: bytes | bytearray, cs: int, count: int) -> list[memoryview]:
    mv = memoryview(buf)
    return [mv[i * cs : (i + 1) * cs] for i in range(count)]


def split_block(geo: Geometry, block: bytes) -> tuple[list[memoryview], int]:
    """Cut a block into k equal chunks (last one zero-padded), as views: no copies."""
    padded, cs = _padded(geo, block)
    return _cut(padded, cs, geo.k), cs


def encode_block(geo: Geometry, block: bytes) -> list[memoryview]:
    """All k+m chunks of a block, in shard order (views; valid while the block lives)."""
    padded, cs = _padded(geo, block)
    data = _cut(padded, cs, geo.k)
    if geo.m == 0:
        return data
    coder = isal.parity_coder(geo.k, geo.m) if cs else None
    if coder is not None:  # zfec's bytes, with SIMD (engine/isal.py)
        return data + _cut(coder.parity(padded, cs), cs, geo.m)
    return data + [memoryview(p) for p in isal.zfec_parity(geo.k, geo.m, data)]


def decode_block(geo: Geometry, chunks: Mapping[int, bytes | memoryview], block_len: int) -> bytes:
    """Rebuild a block from any k verified chunks (index -> bytes)."""
    if len(chunks) < geo.k:
        raise InsufficientShards(f"only {len(chunks)} of the {geo.k} chunks needed are readable")
    if all(i in chunks for i in range(geo.k)):
        return b"".join(chunks[i] for i in range(geo.k))[:block_len]
    nums = tuple(sorted(chunks)[: geo.k])
    out = _decoder(geo.k, geo.n).decode(tuple(chunks[i] for i in nums), nums)
    return b"".join(bytes(c) for c in out)[:block_len]


def rebuild_chunks(geo: Geometry, chunks: Mapping[int, bytes | memoryview], block_len: int,
                   want: list[int]) -> dict[int, bytes]:
    """Recompute the chunks `want` of a block from any k of its chunks (for healing)."""
    block = decode_block(geo, chunks, block_len)
    full = encode_block(geo, block)
    return {i: bytes(full[i]) for i in want}
