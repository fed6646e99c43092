"""Re-encoding data into another storage class's pool and geometry (transitions, class changes).

A segment is copied block by block as it is stored: the stored blocks are read (CRC-verified,
decoded around damage) and erasure-coded again with the new k+m into a new segment on the
target pool's disks. Encrypted blocks are never opened: the ciphertext moves as it is, and the
new segment keeps the old one's envelope and records in `cipher_id` the segment id its block
keys derive from. So a transition needs no key and changes no byte of the content: ETag,
checksums, version id and Last-Modified stay what they were. The new segment's headers name the
version it now holds, as a PUT's do (shardident.py): the GC's object-lock safety net and a
`recover-metadata` without the journal see it as that version's data, in its new class.

The version's segment references are swapped in one commit that re-checks the version is still
the one that was read; a crash before it leaves only an uncommitted segment, which the start-up
orphan sweep removes, and the version still in its old class (the next lifecycle pass does it
again): nothing is lost and nothing is held twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diskmgr.crashpoints import crash_point

from . import events, keys, shardident
from .classes import Placement
from .codec import Geometry
from .errors import NoSuchKey, StowageError
from .records import BucketRecord, ObjectVersion, SegmentRecord, SegmentRef
from .tieringconfig import TxnStep

if TYPE_CHECKING:
    from .storecore import StoreCore

log = logging.getLogger("stowage.transcode")


class _Changed(Exception):
    """The version changed while its data was re-encoded: the new segments are not used."""


@dataclass
class TranscodeResult:
    moved_bytes: int  # stored bytes written into the target geometry
    segments: int


def segment_fits(rec: SegmentRecord, place: Placement, small: Geometry) -> bool:
    """Is the segment already where the class puts data of its size (`small`: that geometry)?"""
    return rec.pool == place.pool and (rec.k, rec.m) == (small.k, small.m)


async def transcode_segment(store: StoreCore, rec: SegmentRecord, place: Placement,
                            owner: ObjectVersion | None = None, label: str | None = None) -> SegmentRecord:
    """A new, uncommitted segment holding `rec`'s stored blocks in `place`'s geometry (the
    block size stays: an encrypted block is sealed whole). `owner`: the version whose data it
    becomes (in class `label`, default the placement's), which its headers then name."""
    geo = store.geometry_for(place.pool, rec.plain_length, place.geometry)
    geo = Geometry(geo.k, geo.m, rec.block_size)
    cipher_id = (rec.cipher_id or rec.segment_id) if rec.enc is not None else ""
    # The new segment is referenced by `owner` alone, even when `rec` is shared (a copy by
    # reference keeps the old segment, which still names the version that wrote it): so it
    # names `owner`. Without one (a class-changing copy, whose version id is not chosen yet; a
    # temporary restore copy, which is no version's data) only its origin is recorded, and
    # recovery leaves it to the orphan sweep as before.
    identity: dict[str, Any] = {"transcode_of": rec.segment_id}
    if owner is not None:
        bucket = store.db.get_record(BucketRecord, keys.bucket(owner.bucket))
        if bucket is not None:
            identity = shardident.of_transcoded(bucket, owner, rec, label or place.storage_class)
    if cipher_id:
        identity["cipher_id"] = cipher_id
    with store.reading(rec.segment_id):
        new, _ = await store.seg.write(store.seg.read_stored(rec), geo, store.disks.pool(place.pool), identity,
                                     sealed=dict(rec.enc) if rec.enc is not None else None)
    if new is None or new.length != rec.length:
        await store.discard_segment(new)
        raise StowageError(f"re-encoding segment {rec.segment_id} produced {new.length if new else 0} "
                           f"bytes, expected {rec.length}")
    new.cipher_id = cipher_id
    return new


async def refs_in_class(store: StoreCore, refs: list[SegmentRef], storage_class: str,
                        owner: ObjectVersion | None = None, label: str | None = None
                        ) -> tuple[list[SegmentRef], list[SegmentRecord]]:
    """`refs` with every segment not yet in the class's placement re-encoded into it: (the
    new refs, the new uncommitted segments: the caller commits or discards them). `owner`,
    `label`: as for transcode_segment."""
    place = store.placement(storage_class)
    fresh: dict[str, SegmentRecord] = {}
    try:
        for seg_id in dict.fromkeys(r.segment_id for r in refs):
            rec = store.db.get_record(SegmentRecord, keys.segment(seg_id))
            if rec is None:  # a version collected while a copier held it, as Txn.finish reports
                raise NoSuchKey("a segment of the source object no longer exists", segment=seg_id)
            if not segment_fits(rec, place, store.geometry_for(place.pool, rec.plain_length, place.geometry)):
                fresh[seg_id] = await transcode_segment(store, rec, place, owner, label)
    except BaseException:
        for s in fresh.values():
            await store.discard_segment(s)
        raise
    new_refs = [SegmentRef(fresh[r.segment_id].segment_id, r.offset, r.length) if r.segment_id in fresh else r
                for r in refs]
    return new_refs, list(fresh.values())


async def transition_version(store: StoreCore, v: ObjectVersion, storage_class: str, *,
                             label: str | None = None, also: TxnStep | None = None) -> TranscodeResult | None:
    """Move one version's data into `storage_class`'s placement and relabel it `label` (default
    that class), in place: the same version id, ETag, checksums and Last-Modified. `also`: a step
    the same commit takes (an intelligent-tiering archive tier entered or left). None when the
    version changed or went meanwhile (nothing is changed then)."""
    if v.delete_marker:
        return None
    new_refs, fresh = await refs_in_class(store, v.segments, storage_class, v, label or storage_class)
    try:
        async with store.txn() as t:
            cur = t.version_at(v.bucket, v.key, v.version_id)
            if cur is None or cur.seq != v.seq or cur.segments != v.segments:
                raise _Changed()
            for s in fresh:
                t.add_segment(s)
            t.incref(new_refs)
            t.decref(cur.segments)
            t.usage.add(cur, -1)
            cur.segments, cur.storage_class = new_refs, label or storage_class
            t.usage.add(cur, 1)
            t.batch.put(keys.version(cur.bucket, cur.key, cur.seq), cur)
            latest = t.latest(cur.bucket, cur.key)
            if latest is not None and latest.seq == cur.seq:
                t.batch.put(keys.latest(cur.bucket, cur.key), cur)
            t.changed.append((cur.bucket, cur.key))
            t.changes.append(events.Change(events.IN_PLACE, cur))  # s3:LifecycleTransition (its cause)
            if also is not None:
                also(t, cur)
    except BaseException as exc:
        for s in fresh:
            await store.discard_segment(s)
        if isinstance(exc, _Changed):
            log.info("transition of %s/%s %s skipped: the version changed", v.bucket, v.key, v.version_id)
            return None
        raise
    crash_point("transition.committed")
    return TranscodeResult(sum(s.length for s in fresh), len(fresh))
