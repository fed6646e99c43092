"""Parity from ISA-L's SIMD GF(2^8) code, byte for byte what zfec computes.

zfec's parity is a linear map over GF(2^8) with the field polynomial ISA-L uses (0x11d):
parity chunk i = sum over j of M[i][j] * data chunk j. Encoding unit vectors through zfec
reads M off, and ISA-L's `ec_encode_data` applies that M with AVX2/AVX-512 (measured here on a
1 MiB block, 4+2: ~17 GB/s against zfec's ~1.2 GB/s; zfec's multiply was ~14% of a large
write's CPU). The shards on disk do not change, so reads, healing's decode and every shard
already written stay zfec's. A coder is used only if libisal loads and, for its geometry, gives
zfec's bytes on a self-test; otherwise zfec encodes as before (codec.encode_block).

ctypes rather than a binding package: no maintained package on PyPI exposes ISA-L's erasure
code (python-isal wraps its compression; pyeclib needs liberasurecode and brings other
matrices), and the two C functions used take plain pointers. A ctypes call drops the GIL, so
encoding in worker threads still overlaps the loop; a small block, encoded in the loop, goes
through a second handle of the library that keeps the GIL (ctypes.PyDLL): at ~17 GB/s its
parity takes microseconds, and a release on a busy loop costs a wait for the GIL's return.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import zfec

log = logging.getLogger("stowage.isal")

LIBRARY = "libisal.so.2"  # Debian's libisal2
_SELF_TEST_BYTES = 4099  # odd: the SIMD loops' tails are checked too
HELD_BYTES = 256 << 10  # blocks up to this size are encoded without releasing the GIL


@cache
def _library(held: bool = False) -> ctypes.CDLL | None:
    """The library through a handle whose calls release the GIL, or (`held`) keep it."""
    try:
        lib = ctypes.PyDLL(LIBRARY) if held else ctypes.CDLL(LIBRARY)
    except OSError:
        log.info("%s not found: zfec computes parity", LIBRARY)
        return None
    # void ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls)
    lib.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    lib.ec_init_tables.restype = None
    # void ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
    #                     unsigned char **data, unsigned char **coding)
    lib.ec_encode_data.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                   ctypes.c_void_p, ctypes.c_void_p]
    lib.ec_encode_data.restype = None
    return lib


@lru_cache(maxsize=64)
def _zfec_encoder(k: int, n: int) -> zfec.Encoder:
    return zfec.Encoder(k, n)


def zfec_parity(k: int, m: int, chunks: Sequence[bytes | memoryview]) -> list[bytes]:
    """zfec's m parity chunks of k equal data chunks (codec.encode_block's fallback, and what
    ISA-L's coder is read off and checked against)."""
    return list(_zfec_encoder(k, k + m).encode(tuple(chunks), tuple(range(k, k + m))))


def zfec_matrix(k: int, m: int) -> bytes:
    """zfec's parity coefficients, m rows of k, read off by encoding unit vectors."""
    rows = [bytearray(k) for _ in range(m)]
    for j in range(k):
        unit = [b"\x01" if i == j else b"\x00" for i in range(k)]
        for i, p in enumerate(zfec_parity(k, m, unit)):
            rows[i][j] = p[0]
    return b"".join(rows)


def _address(buf: bytes | bytearray | memoryview) -> tuple[int, object]:
    """The address of a buffer's first byte, and what must stay alive while it is used."""
    if isinstance(buf, bytes):
        return ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0, buf
    view = memoryview(buf)
    if view.readonly or not view.contiguous:  # not met by the write path: copied rather than refused
        data = bytes(view)
        return _address(data)
    arr = (ctypes.c_char * view.nbytes).from_buffer(view)
    return ctypes.addressof(arr), arr


@dataclass(frozen=True, slots=True)
class ParityCoder:
    k: int
    m: int
    _lib: ctypes.CDLL
    _held: ctypes.CDLL  # the same functions, called without releasing the GIL
    _tables: ctypes.Array[ctypes.c_char]  # ec_init_tables' expansion of zfec's matrix

    def parity(self, padded: bytes | bytearray | memoryview, chunk_size: int) -> bytearray:
        """The m parity chunks, one after another, of `padded` cut in k chunks of `chunk_size`."""
        if len(padded) != self.k * chunk_size or chunk_size <= 0:
            raise ValueError("parity: the block must be k whole chunks")
        base, keep = _address(padded)
        out = bytearray(self.m * chunk_size)
        out_base, out_keep = _address(out)
        data = (ctypes.c_void_p * self.k)(*(base + i * chunk_size for i in range(self.k)))
        coding = (ctypes.c_void_p * self.m)(*(out_base + i * chunk_size for i in range(self.m)))
        lib = self._held if len(padded) <= HELD_BYTES else self._lib
        lib.ec_encode_data(chunk_size, self.k, self.m, self._tables, data, coding)
        del keep, out_keep
        return out


@cache
def parity_coder(k: int, m: int) -> ParityCoder | None:
    """ISA-L's coder of zfec's k+m parity, or None: no libisal, or it disagrees with zfec."""
    lib, held = _library(), _library(held=True)
    if lib is None or held is None or m <= 0 or k <= 0 or k + m > 256:
        return None
    tables = ctypes.create_string_buffer(32 * k * m)
    lib.ec_init_tables(k, m, zfec_matrix(k, m), tables)
    coder = ParityCoder(k, m, lib, held, tables)
    sample = os.urandom(_SELF_TEST_BYTES * k)
    expect = b"".join(zfec_parity(k, m, [sample[i * _SELF_TEST_BYTES:(i + 1) * _SELF_TEST_BYTES]
                                         for i in range(k)]))
    if bytes(coder.parity(sample, _SELF_TEST_BYTES)) != expect:
        log.warning("ISA-L's parity differs from zfec's for %d+%d: zfec computes it", k, m)
        return None
    return coder
