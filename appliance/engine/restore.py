"""Archive classes and RestoreObject (docs/lifecycle.md, "Archive and restore").

A version in an archive class (GLACIER, DEEP_ARCHIVE: classes.ARCHIVE_CLASSES) cannot be read
until it is restored: every read of it goes through `readable_refs`, which raises
InvalidObjectState (S3 answers 403, the mount EAGAIN) unless a finished restore copy exists.
RestoreObject queues a RestoreRecord (keys.restore); the restore worker
(appliance/services/restore.py) re-encodes the version's data into the STANDARD class's pool
and geometry (transcode.py: as stored, the ciphertext of an encrypted version included), and
commits the copy with the record, which holds a reference on each of its segments. Reads use
the copy until its expiry (the midnight after completion plus Days, as AWS counts), when the
worker drops the record and the copy's segments go to GC. A second RestoreObject of a
restored version sets a new expiry counted from that request; one of a version still being
restored is RestoreAlreadyInProgress.

Records survive restarts (they are metadata commits, journaled); a restore cut by a crash left
only an uncommitted segment and is done again. `recover-metadata` recomputes segment reference
counts from versions and parts only, so a restore copy may be collected after it: reads then
fall back to the archived segments themselves (the same bytes), until the record expires.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import keys, tieringconfig
from .classes import ARCHIVE_CLASSES
from .errors import InvalidObjectState
from .records import ObjectVersion, RestoreRecord, SegmentRecord, SegmentRef

if TYPE_CHECKING:
    from .storecore import StoreCore

TIERS = ("Expedited", "Standard", "Bulk")


def is_archived(v: ObjectVersion) -> bool:
    return v.storage_class in ARCHIVE_CLASSES and not v.delete_marker


def restore_of(store: StoreCore, v: ObjectVersion) -> RestoreRecord | None:
    """The restore of exactly this version (same seq), if any."""
    rec = store.db.get_record(RestoreRecord, keys.restore(v.bucket, v.key, v.version_id))
    return rec if rec is not None and rec.seq == v.seq else None


def readable_refs(store: StoreCore, v: ObjectVersion, now_ns: int | None = None) -> list[SegmentRef]:
    """What a read of `v` reads: its own segments, or for an archived version its restore copy
    (InvalidObjectState when there is none, or it is not finished, or it expired)."""
    if not is_archived(v):
        tieringconfig.check_readable(store, v)  # an intelligent-tiering archive tier
        return v.segments
    rec = restore_of(store, v)
    now = time.time_ns() if now_ns is None else now_ns
    if rec is None or rec.ongoing or rec.expiry_ns <= now:
        raise InvalidObjectState("The operation is not valid for the object's storage class",
                                 storage_class=v.storage_class)
    refs = [SegmentRef(s[0], s[1], s[2]) for s in rec.copy]
    if any(store.db.get_record(SegmentRecord, keys.segment(r.segment_id)) is None for r in refs):
        return v.segments  # the copy was collected after a metadata recovery: the same bytes
    return refs
