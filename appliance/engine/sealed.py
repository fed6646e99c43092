"""Versions moved between boxes as they are stored: ciphertext (SSE-C replicas).

An SSE-C version cannot be decrypted without its customer key, which is never stored. Its
segments' stored blocks (AES-GCM sealed; block keys derive from the data key and the segment id
the blocks were sealed under) are read as they are (`sealed_object`) and, on another box,
stored as they are in new segments of the same block size whose `cipher_id` names the segment
they were sealed under, with each segment's envelope (the data key wrapped by the customer key
and the key check value), exactly as a storage-class transition re-encodes a segment
(transcode.py). The version (`put_sealed`) gets the source's size, ETag, checksums, parts and
SSE settings: it reads back with the same customer key, and a block altered on the way fails
authentication. A version that holds part of a segment (a ranged part copy) moves the whole
segment and keeps its slice (offset, used). The new segments' headers name the replica's version
as a PUT's do (shardident.py), with the source's ETag and size when one segment holds it whole:
the GC's object-lock safety net covers them, and `recover-metadata` without the journal brings
such a replica back.

A large version moves as a multipart upload of sealed parts, one per segment
(`put_sealed_part`, each written as it streams in), completed by `complete_sealed` into the
source's version: the parts' segments, the source's size, ETag, checksums and parts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events, keys, shardident
from .codec import Geometry
from .crypto import plain_length
from .errors import InvalidArgument, NoSuchBucket, NoSuchUpload, StowageError
from .records import BucketRecord, ObjectVersion, PartRecord, SegmentRecord, SegmentRef, UploadRecord

if TYPE_CHECKING:
    from .multipart import MultipartStore
    from .storecore import PutMeta, StoreCore

MAX_SEGMENTS = 10_000


@dataclass(frozen=True)
class SealedSegment:
    cipher_id: str  # the segment id its blocks were sealed under
    length: int  # stored bytes (with the blocks' tags)
    block_size: int
    plain: int
    enc: dict[str, Any]
    offset: int = 0  # the slice of the plaintext the version holds (a ranged part copy holds less)
    used: int = 0  # 0: the whole plaintext

    @property
    def size(self) -> int:
        return self.used or self.plain

    def check(self) -> None:
        if not (0 < len(self.cipher_id) <= 64 and self.length > 0 and 4096 <= self.block_size <= 64 << 20
                and self.plain == plain_length(self.length, self.block_size) and self.enc.get("mode") == "SSE-C"
                and self.offset >= 0 and self.used >= 0 and self.offset + self.size <= self.plain):
            raise InvalidArgument("a sealed segment's description is not consistent")

    def ref(self, segment_id: str) -> SegmentRef:
        return SegmentRef(segment_id, self.offset, self.size)


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
        if self.size != sum(s.size for s in self.segments) or not 0 < len(self.etag) <= 128:
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
        segs.append(rec)
    obj = SealedObject(v.size, v.etag, dict(v.sse or {}),
                       [SealedSegment(s.cipher_id or s.segment_id, s.length, s.block_size, s.plain_length,
                                      dict(s.enc or {}), ref.offset, 0 if ref.length == s.plain_length else ref.length)
                        for s, ref in zip(segs, v.segments, strict=True)],
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


def _replica_only() -> None:
    if not events.replica_version_id():  # only a replica, authorized as one by the frontend, is sealed
        raise InvalidArgument("sealed bytes are taken from replicas only", code_hint="AccessDenied")


async def _write(store: StoreCore, s: SealedSegment, storage_class: str, identity: dict[str, Any],
                 body: AsyncIterator[bytes], pending: bytearray) -> tuple[SegmentRecord, str]:
    """One sealed segment stored as it is (not committed: discard it on failure), and the MD5
    of its stored bytes."""
    place = store.placement(storage_class)
    geo = store.geometry_for(place.pool, s.plain, place.geometry)
    geo = Geometry(geo.k, geo.m, s.block_size)  # a sealed block is stored whole
    seg, summary = await store.seg.write(_take(body, s.length, pending), geo, store.disks.pool(place.pool),
                                   dict(identity, cipher_id=s.cipher_id), sealed=dict(s.enc))
    if seg is None:
        raise InvalidArgument("a sealed segment is empty", code_hint="IncompleteBody")
    if seg.length != s.length:
        await store.discard_segment(seg)
        raise InvalidArgument("a sealed segment's length differs from its description", code_hint="IncompleteBody")
    seg.cipher_id = s.cipher_id
    return seg, summary.md5


async def put_sealed(store: StoreCore, bucket: str, key: str, meta: PutMeta, obj: SealedObject,
                     body: AsyncIterator[bytes]) -> ObjectVersion:
    """A new version of `key` holding `body`, the stored bytes of obj's segments one after the
    other (a replica: its version id comes from the event cause, as for put_object)."""
    from .storecore import Content  # storecore imports this module's callers

    _replica_only()
    obj.check()
    meta.sse = dict(obj.sse)
    # the segments name the version they hold, as a PUT's do (StoreCore.new_version: the id is
    # the replica's): the GC's object lock safety net covers them, and recover-metadata without
    # the journal brings back a replica held in one whole segment
    new = store.new_version(bucket, key, meta)
    meta = new.meta
    s0 = obj.segments[0]
    whole = len(obj.segments) == 1 and not obj.parts and s0.offset == 0 and s0.size == s0.plain
    identity = shardident.with_content(new.identity, whole, obj.etag, obj.size, obj.checksums, obj.checksum_type)
    pending = bytearray()
    written: list[SegmentRecord] = []
    try:
        for s in obj.segments:
            seg, _ = await _write(store, s, meta.storage_class, identity, body, pending)
            written.append(seg)
        if pending or await _more(body):
            raise InvalidArgument("the body is longer than its sealed segments")
        content = Content(obj.size, obj.etag, [s.ref(w.segment_id) for s, w in zip(obj.segments, written, strict=True)],
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


async def put_sealed_part(store: MultipartStore, bucket: str, key: str, upload_id: str, part_number: int,
                          s: SealedSegment, body: AsyncIterator[bytes]) -> PartRecord:
    """Part `part_number` of a sealed multipart replica: one segment's stored bytes."""
    _replica_only()
    s.check()
    if not 1 <= part_number <= MAX_SEGMENTS:
        raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_SEGMENTS}, inclusive")
    up = store.get_upload(bucket, key, upload_id)
    # the version the completion makes (its id is the replica's, known now) is named too, for
    # the GC's safety net; recovery takes the segment for the part it is, of its size in plain
    identity = shardident.of_new_version(store.shared_bucket(bucket), key, events.replica_version_id(),
                                         up.storage_class, up.lock_mode, up.retain_until_ns, up.legal_hold)
    identity.update(upload_id=upload_id, part=part_number, size=s.size, partial=True)
    pending = bytearray()
    seg, md5 = await _write(store, s, up.storage_class, identity, body, pending)
    try:
        if pending or await _more(body):
            raise InvalidArgument("the body is longer than its sealed segment")
        part = PartRecord(part_number, s.size, md5, time.time_ns(), [s.ref(seg.segment_id)])
        async with store.txn() as t:
            if t.batch.get(keys.upload(bucket, key, upload_id)) is None:
                raise NoSuchUpload(upload_id=upload_id)
            old = t.batch.get_record(PartRecord, keys.part(upload_id, part_number))
            if old is not None:
                t.decref(old.segments)
            t.add_segment(seg)
            t.incref(part.segments)
            t.batch.put(keys.part(upload_id, part_number), part)
    except BaseException:
        await store.discard_segment(seg)
        raise
    return part


async def complete_sealed(store: MultipartStore, bucket: str, key: str, upload_id: str,
                          obj: SealedObject) -> ObjectVersion:
    """The version a sealed multipart replica makes: its parts 1..N, each one sealed segment, in
    order, with obj's size, ETag, checksums, parts and SSE settings (obj.segments is ignored:
    they are the parts')."""
    from .storecore import Content, PutMeta, copy_grants

    _replica_only()
    async with store.txn() as t:
        b = t.batch.get_record(BucketRecord, keys.bucket(bucket))
        if b is None:
            raise NoSuchBucket(bucket=bucket)
        up = t.batch.get_record(UploadRecord, keys.upload(bucket, key, upload_id))
        if up is None:
            raise NoSuchUpload(upload_id=upload_id)
        parts = [PartRecord.decode(raw) for _, raw in t.batch.scan(keys.part_prefix(upload_id))]
        if [p.part_number for p in parts] != list(range(1, len(parts) + 1)) or \
                any(len(p.segments) != 1 for p in parts):
            raise InvalidArgument("a sealed upload's parts are not its segments 1 to N", code_hint="InvalidPart")
        segs: list[SealedSegment] = []
        for p in parts:
            ref = p.segments[0]
            rec = t.batch.get_record(SegmentRecord, keys.segment(ref.segment_id))
            if rec is None or rec.enc is None or not rec.cipher_id:
                raise InvalidArgument("a part of a sealed upload is not a sealed segment", code_hint="InvalidPart")
            segs.append(SealedSegment(rec.cipher_id, rec.length, rec.block_size, rec.plain_length, dict(rec.enc),
                                      ref.offset, 0 if ref.length == rec.plain_length else ref.length))
        whole = SealedObject(obj.size, obj.etag, dict(obj.sse), segs, dict(obj.checksums), obj.checksum_type,
                             list(obj.parts), [dict(c) for c in obj.part_checksums])
        whole.check()
        meta = PutMeta(up.content_type, dict(up.headers), dict(up.user_meta), dict(up.tags), up.storage_class,
                       up.posix_trusted, up.owner, copy_grants(up.acl), sse=dict(obj.sse), lock_mode=up.lock_mode,
                       retain_until_ns=up.retain_until_ns, legal_hold=up.legal_hold)
        content = Content(whole.size, whole.etag, [p.segments[0] for p in parts], dict(whole.checksums),
                          whole.checksum_type, list(whole.parts), [dict(c) for c in whole.part_checksums])
        v = store.put_content_in(t, b, key, meta, content)
        for p in parts:
            t.decref(p.segments)
            t.batch.delete(keys.part(upload_id, p.part_number))
        t.batch.delete(keys.upload(bucket, key, upload_id))
    return v


async def _more(stream: AsyncIterator[bytes]) -> bool:
    try:
        return bool(await stream.__anext__())
    except StopAsyncIteration:
        return False
