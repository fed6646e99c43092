"""Versions moved between boxes as they are stored: ciphertext (SSE-C replicas).

An SSE-C version cannot be decrypted without its customer key, which is never stored. Its
segments' stored blocks (AES-GCM sealed; block keys derive from the data key and the segment id
the blocks were sealed under) are read as they are (`sealed_object`) and, on another box,
stored as they are in new segments of the same block size whose `cipher_id` names the segment
they were sealed under, with each segment's envelope (the data key wrapped by the customer key
and the key check value), exactly as a storage-class transition re-encodes a segment
(transcode.py). The version (`put_sealed`) gets the source's size, ETag, checksums, parts and
SSE settings: it reads back with the same customer key, and a block altered on the way fails
authentication.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events, keys
from .codec import Geometry
from .crypto import plain_length
from .errors import InvalidArgument, NoSuchBucket, StowageError
from .records import BucketRecord, ObjectVersion, SegmentRecord, SegmentRef

if TYPE_CHECKING:
    from .storecore import PutMeta, StoreCore

MAX_SEGMENTS = 10_000


@dataclass(frozen=True)
class SealedSegment:
    cipher_id: str  # the segment id its blocks were sealed under
    length: int  # stored bytes (with the blocks' tags)
    block_size: int
    plain: int
    enc: dict[str, Any]

    def check(self) -> None:
        if not (0 < len(self.cipher_id) <= 64 and self.length > 0 and 4096 <= self.block_size <= 64 << 20
                and self.plain == plain_length(self.length, self.block_size) and self.enc.get("mode") == "SSE-C"):
            raise InvalidArgument("a sealed segment's description is not consistent")


@dataclass(frozen=True)
class SealedObject:
    size: int
    etag: str
    sse: dict[str, Any]
    segments: list[SealedSegment]
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: str = ""
    parts: list[int] = field(default_factory=list)
    part_checksums: list[dict[str, str]] = field(default_factory=list)

    def check(self) -> None:
        if self.sse.get("mode") != "SSE-C" or not 0 < len(self.segments) <= MAX_SEGMENTS:
            raise InvalidArgument("only SSE-C objects of 1 to 10000 segments are moved sealed")
        for s in self.segments:
            s.check()
        if self.size != sum(s.plain for s in self.segments) or not 0 < len(self.etag) <= 128:
            raise InvalidArgument("a sealed object's size or ETag is not consistent")

    @property
    def stored(self) -> int:
        return sum(s.length for s in self.segments)


class NotSealable(StowageError):
    """This version cannot be moved as ciphertext."""

    code = "NotSealable"


def sealed_object(store: StoreCore, v: ObjectVersion) -> tuple[SealedObject, list[SegmentRecord]]:
    """What describes an SSE-C version's ciphertext, and its segments (read them with
    `store.seg.read_stored`)."""
    segs: list[SegmentRecord] = []
    for ref in v.segments:
        rec = store.db.get_record(SegmentRecord, keys.segment(ref.segment_id))
        if rec is None or rec.enc is None:
            raise NotSealable("a segment of the SSE-C object is missing or not encrypted")
        if ref.offset != 0 or ref.length != rec.plain_length:
            raise NotSealable("the SSE-C object holds part of a segment (a ranged copy)")
        segs.append(rec)
    obj = SealedObject(v.size, v.etag, dict(v.sse or {}),
                       [SealedSegment(s.cipher_id or s.segment_id, s.length, s.block_size, s.plain_length,
                                      dict(s.enc or {})) for s in segs],
                       dict(v.checksums), v.checksum_type, list(v.parts), [dict(c) for c in v.part_checksums])
    return obj, segs


async def _take(stream: AsyncIterator[bytes], n: int, pending: bytearray) -> AsyncIterator[bytes]:
    """The next n bytes of the stream, piece by piece (`pending` holds what was read beyond)."""
    while n > 0:
        if not pending:
            try:
                pending += await stream.__anext__()
            except StopAsyncIteration:
                raise InvalidArgument("the body is shorter than its sealed segments",
                                      code_hint="IncompleteBody") from None
        piece = bytes(pending[:n])
        del pending[:n]
        n -= len(piece)
        yield piece


async def put_sealed(store: StoreCore, bucket: str, key: str, meta: PutMeta, obj: SealedObject,
                     body: AsyncIterator[bytes]) -> ObjectVersion:
    """A new version of `key` holding `body`, the stored bytes of obj's segments one after the
    other (a replica: its version id comes from the event cause, as for put_object)."""
    from .storecore import Content  # storecore imports this module's callers

    if not events.replica_version_id():  # only a replica, authorized as one by the frontend, is sealed
        raise InvalidArgument("sealed bytes are taken from replicas only", code_hint="AccessDenied")
    obj.check()
    meta.sse = dict(obj.sse)
    place = store.placement(meta.storage_class)
    pending = bytearray()
    written: list[SegmentRecord] = []
    try:
        for s in obj.segments:
            geo = store.geometry_for(place.pool, s.plain, place.geometry)
            geo = Geometry(geo.k, geo.m, s.block_size)  # a sealed block is stored whole
            seg, _ = await store.seg.write(_take(body, s.length, pending), geo, store.disks.pool(place.pool),
                                           {"bucket": bucket, "key": key, "cipher_id": s.cipher_id},
                                           sealed=dict(s.enc))
            if seg is not None:
                written.append(seg)
            if seg is None or seg.length != s.length:
                raise InvalidArgument("a sealed segment's length differs from its description",
                                      code_hint="IncompleteBody")
            seg.cipher_id = s.cipher_id
        if pending or await _more(body):
            raise InvalidArgument("the body is longer than its sealed segments")
        content = Content(obj.size, obj.etag, [SegmentRef(s.segment_id, 0, s.plain_length) for s in written],
                          dict(obj.checksums), obj.checksum_type, list(obj.parts),
                          [dict(c) for c in obj.part_checksums])
        async with store.txn() as t:
            b = t.batch.get_record(BucketRecord, keys.bucket(bucket))
            if b is None:
                raise NoSuchBucket(bucket=bucket)
            for seg in written:
                t.add_segment(seg)
            return store.put_content_in(t, b, key, meta, content)
    except BaseException:
        for seg in written:
            await store.discard_segment(seg)
        raise


async def _more(stream: AsyncIterator[bytes]) -> bool:
    try:
        return bool(await stream.__anext__())
    except StopAsyncIteration:
        return False
