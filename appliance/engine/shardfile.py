"""The shard file format: one file per (segment, shard index) on a data disk.

    [0, 8192)        header: b"STWSHARD" | u16 format | u32 json length | JSON
                             | u32 CRC32C of all before it (format 3) | zero padding
    then per block:  chunk bytes (ceil(block_len / k)) | u32 CRC32C (little endian)

Format 2 is format 1 plus the header field `enc`: the envelope of an encrypted segment's data
key (engine/crypto.py), so `recover-metadata` can rebuild encrypted segments; a version that
predates encryption refuses it instead of reading ciphertext as data. Format 3, what every
header is written as now (encrypted or not, `enc` optional), adds the header's own CRC32C after
its JSON: no read uses a header past its owner prefix (file_owner), so a flipped bit in a key,
a bucket name or a length that still parses was found by nothing, and `recover-metadata` would
have restored from it. A header whose CRC fails is damaged like one that does not decode. The
JSON starts where it always did, so the owner prefix is the same in every format. Formats 1
and 2 (no CRC) are still read. The envelope is the one piece of a header `rotate-master`
rewrites in place (rewritten as format 3, CRC and all; a header that fails its CRC is not
rewritten: it could not be read).

The header is self-describing (segment id, shard index, k, m, block size, data length, and the
object identity at write time) so the metadata DB can be rebuilt from shard files alone. It is
written as a placeholder first and rewritten with final values (length, ETag) before the fsync,
which is why it has a fixed size. Chunk offsets are computable from the header, so a range
read seeks straight to the blocks it needs. All functions here are blocking: call them from a
worker thread under the disk's limiter.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from diskmgr.durable import open_regular

from .cachedopen import open_cached
from .codec import Geometry, checksum
from .errors import FormatError
from .records import fields_dict, json_dumps, json_loads

MAGIC = b"STWSHARD"
SHARD_FORMAT = 1  # unencrypted segments (read only)
ENCRYPTED_FORMAT = 2  # with the `enc` header field (read only)
CHECKSUM_FORMAT = 3  # the header's own CRC32C after its JSON: every header written now
HEADER_SIZE = 8192
CRC_SIZE = 4
_PREFIX = struct.Struct("<8sHI")
SYNC_EVERY = 8 << 20
_IOV_MAX = 1024  # buffers per writev (Linux's UIO_MAXIOV)


def _ascii_json(doc: dict[str, Any]) -> bytes:
    """`json.dumps(doc, separators=(",", ":"))`, byte for byte: a header's JSON is ASCII (other
    characters escaped, a mount's undecodable name bytes too, as lone surrogates). msgspec's
    encoder (records.json_dumps, ~3x faster) writes the same bytes when its output is ASCII
    without DEL, which json escapes and msgspec does not; anything else is json's."""
    try:
        body = json_dumps(doc)
        if body.isascii() and b"\x7f" not in body:
            return body
    except UnicodeEncodeError:
        pass
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(slots=True)
class ShardHeader:
    segment_id: str
    shard: int
    k: int
    m: int
    block_size: int
    length: int
    created_ns: int
    appliance_id: str = ""
    identity: dict[str, Any] = field(default_factory=dict)  # bucket, key, version, upload, part, etag...
    enc: dict[str, Any] | None = None  # an encrypted segment's envelope (format 2)

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.k, self.m, self.block_size)

    def json_body(self, limit: int) -> bytes:
        """The header's JSON, at most `limit` bytes (also a packed record's header: volumes.py)."""
        # fields_dict, not asdict: no deep copy of identity and enc (asdict was ~85% of this
        # call, and a small PUT encodes k+m headers on the event loop); the same JSON
        doc = fields_dict(self)
        if self.enc is None:
            del doc["enc"]
        body = _ascii_json(doc)
        if len(body) > limit:
            # identity carries user metadata; drop it rather than fail the write.
            doc["identity"] = {k: v for k, v in self.identity.items() if k != "user_meta"}
            body = _ascii_json(doc)
        if len(body) > limit:
            raise FormatError(f"shard header of segment {self.segment_id} does not fit in {limit} bytes")
        return body

    def encode(self) -> bytes:
        body = self.json_body(HEADER_SIZE - _PREFIX.size - CRC_SIZE)
        raw = _PREFIX.pack(MAGIC, CHECKSUM_FORMAT, len(body)) + body
        raw += struct.pack("<I", checksum(raw))
        return raw + bytes(HEADER_SIZE - len(raw))

    @classmethod
    def decode(cls, raw: bytes) -> ShardHeader:
        if len(raw) < _PREFIX.size:
            raise FormatError("shard header truncated")
        magic, version, n = _PREFIX.unpack_from(raw)
        if magic != MAGIC:
            raise FormatError("not a stowage shard file")
        decoder = _HEADER_DECODERS.get(version)
        if decoder is None:
            raise FormatError(f"shard format {version} is not supported by this version")
        end = _PREFIX.size + n
        if version in _CHECKSUMMED:
            crc = raw[end : end + CRC_SIZE]
            if len(crc) < CRC_SIZE or struct.unpack("<I", crc)[0] != checksum(raw[:end]):
                raise FormatError("damaged shard header: its checksum does not match")
        elif any(raw[end : end + CRC_SIZE]):
            # formats 1 and 2 pad with zeros: a CRC here is format 3's, its format number damaged
            # (read as format 1 or 2, the header's JSON would go unchecked)
            raise FormatError("damaged shard header: a checksum follows the JSON of a format without one")
        return cls.from_json(raw[_PREFIX.size : end], decoder)

    @classmethod
    def from_json(cls, body: bytes | memoryview,
                  decoder: Callable[[dict[str, Any]], ShardHeader] | None = None) -> ShardHeader:
        """The header from its JSON alone (a shard file's, after its prefix, or a packed
        record's: volumes.py); `decoder`: its format's, the first format's by default."""
        try:
            d = json_loads(body)
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            return (decoder or _header_v1)(d)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"damaged shard header: {exc}") from exc


def _header_v1(d: dict[str, Any]) -> ShardHeader:
    return ShardHeader(**d)


def _header_v2(d: dict[str, Any]) -> ShardHeader:
    if not isinstance(d.get("enc"), dict):
        raise ValueError("an encrypted shard header without its envelope")
    return ShardHeader(**d)


def _header_v3(d: dict[str, Any]) -> ShardHeader:
    if d.get("enc") is not None and not isinstance(d["enc"], dict):
        raise ValueError("an envelope that is not an object")
    return ShardHeader(**d)


# Shard format version -> header decoder. A new format adds an entry; old ones are never edited,
# because shard files written by every earlier version stay on the disks for years.
_HEADER_DECODERS: dict[int, Callable[[dict[str, Any]], ShardHeader]] = {1: _header_v1, 2: _header_v2, 3: _header_v3}
_CHECKSUMMED = frozenset({3})  # formats whose header ends with its own CRC32C


def block_count(length: int, block_size: int) -> int:
    return -(-length // block_size)


def block_len(length: int, block_size: int, b: int) -> int:
    return min(block_size, length - b * block_size)


def chunk_offset(geo: Geometry, b: int, data_start: int = HEADER_SIZE) -> int:
    """File offset of block b's chunk (all blocks before the last are full size); `data_start`:
    block 0's (a shard file's header size, or a packed record's data offset: volumes.py)."""
    return data_start + b * (geo.chunk_size(geo.block_size) + CRC_SIZE)


def read_header(path: str) -> ShardHeader:
    with open_regular(path) as f:
        return ShardHeader.decode(f.read(HEADER_SIZE))


def rewrite_header(path: str, header: ShardHeader) -> None:
    """Replace a sealed shard file's header in place (a new envelope after `rotate-master`).
    The chunks are untouched; raises FileNotFoundError if the file is gone."""
    raw = header.encode()
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, raw, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)


class ShardWriter:
    """Appends checksummed chunks to a temporary shard file; `seal` makes it durable."""

    def __init__(self, tmp_path: str, header: ShardHeader) -> None:
        self.tmp_path = tmp_path
        self.header = header
        self.f = open(tmp_path, "wb", buffering=0)  # noqa: SIM115 - closed in seal/discard
        self.unsynced = 0
        try:
            self.f.write(header.encode())
        except BaseException:  # a full disk fails the very first write: nothing left behind
            self.discard()
            raise

    def append(self, *chunks: bytes | memoryview) -> None:
        """Append the chunks of consecutive blocks, each followed by its CRC, in one writev."""
        _write_all(self.f.fileno(), chunk_parts(chunks))
        self.unsynced += sum(len(c) + CRC_SIZE for c in chunks)
        if self.unsynced >= SYNC_EVERY:
            # Flush as we go: the disk writes while later blocks are being encoded, and the
            # final fsync in seal() has little left to do.
            os.fdatasync(self.f.fileno())
            self.unsynced = 0

    def seal(self, final_path: str, header: ShardHeader) -> None:
        """Rewrite the header, fsync, rename into place. The caller fsyncs the directory."""
        self.f.seek(0)
        self.f.write(header.encode())
        os.fsync(self.f.fileno())
        self.f.close()
        os.rename(self.tmp_path, final_path)

    def discard(self) -> None:
        try:
            self.f.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp_path)


def _write_all(fd: int, parts: Sequence[bytes | memoryview], offset: int | None = None, flags: int = 0) -> None:
    """os.writev (os.pwritev at `offset`: no lseek first, one system call and one GIL hand-off
    less per write in a worker thread) until every byte is written (a regular file takes a short
    write only near ENOSPC or on a signal; the next call then reports the error or goes on).
    `offset` -1: at the file's position (pwritev2's own convention); `flags`: pwritev2's."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        if offset is None:
            n = os.writev(fd, views[:_IOV_MAX])
        else:
            n = os.pwritev(fd, views[:_IOV_MAX], offset, flags)
            if offset >= 0:
                offset += n
        while views and n >= views[0].nbytes:
            n -= views[0].nbytes
            views.pop(0)
        if n:
            views[0] = views[0][n:]


_RWF_DSYNC = getattr(os, "RWF_DSYNC", 0)
_dsync_refused = False  # the kernel or a filesystem refused the flag once: fdatasync from then on


def write_durable(fd: int, parts: Sequence[bytes | memoryview], offset: int) -> None:
    """Every byte of `parts` written at `offset` (-1: the file's position) and durable on return,
    as after an fdatasync: one pwritev2 with RWF_DSYNC, whose sync is the same as fdatasync's
    (the data and what reading it back needs, the file size among it). A worker thread appending
    a group of records made three system calls for this (write, fdatasync), each a GIL hand-off
    when it returns; the flag makes it one. Where the flag is refused (EOPNOTSUPP, EINVAL: an
    old kernel), or the parts need more than one call, the two calls as before."""
    global _dsync_refused
    if _RWF_DSYNC and not _dsync_refused and len(parts) <= _IOV_MAX:  # more: a sync per call, so one at the end
        try:
            _write_all(fd, parts, offset, _RWF_DSYNC)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            _dsync_refused = True  # refused before writing anything: write it the old way
    _write_all(fd, parts, offset)
    os.fdatasync(fd)


def write_whole(tmp_path: str, final_path: str, header: ShardHeader, chunks: Sequence[bytes | memoryview],
                group_sync: Callable[[str], None] | None = None) -> None:
    """A complete shard file in one go, for a segment whose every chunk is at hand (a small
    body): header and checksummed chunks in one write, renamed into place, durable on return.
    The same bytes as ShardWriter + seal, in one worker-thread call instead of three (a thread
    hop costs more than writing 4 KiB). Durable either by fsync of the file and its directory,
    or, given `group_sync` (fssync.py), by the group sync of its filesystem, waited for with
    the file's directory, then an fdatasync of the file (no journal commit left to do; it
    reports a writeback error of the file's pages)."""
    data = memoryview(b"".join([header.encode(), *chunk_parts(chunks)]))
    directory = final_path.rsplit("/", 1)[0]
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            while data:
                data = data[os.write(fd, data):]
            if group_sync is None:
                os.fsync(fd)
            os.rename(tmp_path, final_path)
            if group_sync is not None:
                group_sync(directory)
                os.fdatasync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    if group_sync is None:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_chunks(path: str, geo: Geometry, length: int, first: int, last: int) -> list[bytes | None]:
    """Chunks of blocks first..last (inclusive) from one shard file; None where the CRC fails.

    Raises OSError if the file cannot be read at all (missing disk, missing file).
    """
    return [None if c is None else bytes(c) for c in read_chunk_views(path, geo, length, first, last)]


def chunk_parts(chunks: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    """The chunks of consecutive blocks as written: each followed by its CRC32C."""
    parts: list[bytes | memoryview] = []
    for chunk in chunks:
        parts += [chunk, struct.pack("<I", checksum(chunk))]
    return parts


def chunks_bytes(geo: Geometry, length: int) -> int:
    """Bytes of every chunk of a shard with their CRCs (a shard file less its header, or a
    packed record less its prefix and header). All blocks but the last are full."""
    n = block_count(length, geo.block_size)
    if n == 0:
        return 0
    full = (n - 1) * (geo.chunk_size(geo.block_size) + CRC_SIZE)
    return full + geo.chunk_size(block_len(length, geo.block_size, n - 1)) + CRC_SIZE


def batch_bytes(geo: Geometry, length: int, first: int, last: int) -> int:
    """Bytes of one shard file holding the chunks of blocks first..last with their CRCs."""
    return sum(geo.chunk_size(block_len(length, geo.block_size, b)) + CRC_SIZE for b in range(first, last + 1))


def file_owner(segment_id: str, shard: int) -> tuple[int, bytes]:
    """What a shard file of shard `shard` of `segment_id` begins its header JSON with (field
    order and separators are those of every format): read_chunk_views checks it, so another
    file at a shard's path (a misplaced or swapped file) never returns its bytes."""
    return _PREFIX.size, b'{"segment_id":"%s","shard":%d,' % (segment_id.encode(), shard)


def read_chunk_views(path: str, geo: Geometry, length: int, first: int, last: int,
                     buf: bytearray | None = None, data_start: int = HEADER_SIZE,
                     owner: tuple[int, bytes] | None = None, *, cached_only: bool = False) -> list[memoryview | None]:
    """`read_chunks` as views of the one buffer the file was read into (`buf` when given and
    large enough: a reused buffer costs no page faults): a read that joins the chunks into
    blocks anyway (segments.py) copies each byte once instead of twice. `data_start`: where
    block 0's chunk lies. `owner`: (offset, the bytes there) of a packed shard's
    record (volumes.py) or of a shard file's header (file_owner): read in the same pread when
    they lie within a header's size before the chunks, in one small pread before them
    otherwise; every chunk reads as damaged unless they match, so a wrong place or a wrong
    file can never return another object's bytes, checksums and all.
    `cached_only`: a read that must not wait for the disk (opened from the dentry cache alone,
    read with preadv2 RWF_NOWAIT): BlockingIOError when the path or any of the bytes is not
    cached (or the bytes lie past the end of the file), and OSError EOPNOTSUPP where the
    filesystem cannot tell (ENOSYS where the kernel has no openat2)."""
    start = chunk_offset(geo, first, data_start)
    sizes = [geo.chunk_size(block_len(length, geo.block_size, b)) for b in range(first, last + 1)]
    total = sum(sizes) + CRC_SIZE * len(sizes)
    head = 0
    apart: tuple[int, bytes] | None = None  # an owner checked by a pread of its own
    if owner is not None:
        head = start - owner[0]
        if head < len(owner[1]):
            return [None] * len(sizes)
        if head > HEADER_SIZE:  # a later block of a shard file: not a read of everything before it
            apart, owner, head = owner, None, 0
        else:
            start = owner[0]
            total += head
    if buf is None or len(buf) < total:
        buf = bytearray(total)
    fd = open_cached(path) if cached_only else os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if apart is not None:
            want = bytearray(len(apart[1]))
            got = os.preadv(fd, [want], apart[0], os.RWF_NOWAIT) if cached_only else os.preadv(fd, [want], apart[0])
            if cached_only and got < len(want):
                raise BlockingIOError(errno.EAGAIN, "not all in the page cache")
            if want[:got] != apart[1]:
                return [None] * len(sizes)
        if cached_only:
            got = os.preadv(fd, [memoryview(buf)[:total]], start, os.RWF_NOWAIT)
            if got < total:  # partly cached, or a truncated file: the waiting read decides
                raise BlockingIOError(errno.EAGAIN, "not all in the page cache")
        else:
            got = os.preadv(fd, [memoryview(buf)[:total]], start)
    finally:
        os.close(fd)
    mv = memoryview(buf)[:got]
    if owner is not None and mv[: len(owner[1])] != owner[1]:
        return [None] * len(sizes)
    out: list[memoryview | None] = []
    pos = head
    for cs in sizes:
        chunk = mv[pos : pos + cs]
        crc_raw = mv[pos + cs : pos + cs + CRC_SIZE]
        pos += cs + CRC_SIZE
        if len(crc_raw) < CRC_SIZE or struct.unpack("<I", crc_raw)[0] != checksum(chunk):
            out.append(None)
        else:
            out.append(chunk)
    return out
