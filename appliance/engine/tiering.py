"""Intelligent tiering (the INTELLIGENT_TIERING class) as AWS moves it: an object not read for
30 days goes to the infrequent tier, the next read brings it back (docs/storage-classes.md).

The tier is where the data is: the class's own placement (STANDARD's geometry) is the frequent
tier, STANDARD_IA's denser one the infrequent tier; the version keeps its class label, ETag,
version id and Last-Modified through both moves (transcode.py). Objects under 128 KiB stay in
the frequent tier. The optional archive tiers are opened by the bucket's Intelligent-Tiering
configurations (tieringconfig.py): an object selected by one moves to Archive Access or Deep
Archive Access after that many days without access, and leaves them only through RestoreObject.

Reads are noted in memory (`AccessLog`, no metadata write per GET) and written in one commit
per lifecycle pass (`zA<bucket>\\0<key>\\0<version id>` -> ns), before the pass decides: an object
is moved back when it was read after its infrequent-tier copy was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import keys
from .lifecycle_rules import MIN_TRANSITION_BYTES, due_ns
from .records import ObjectVersion, SegmentRecord
from .tieringconfig import (
    ARCHIVE_ACCESS,
    DEEP_ARCHIVE_ACCESS,
    TIER_PLACEMENT,
    archive_days,
    configs_of,
    tier_of,
)

if TYPE_CHECKING:
    from .storecore import StoreCore

CLASS = "INTELLIGENT_TIERING"
INFREQUENT = "STANDARD_IA"  # whose placement the infrequent tier uses
IDLE_DAYS = 30


class AccessLog:
    """The last read of each INTELLIGENT_TIERING version since the last flush."""

    def __init__(self) -> None:
        self.reads: dict[tuple[str, str, str], int] = {}

    def note(self, v: ObjectVersion, now_ns: int) -> None:
        self.reads[(v.bucket, v.key, v.version_id)] = now_ns

    def take(self) -> dict[tuple[str, str, str], int]:
        reads, self.reads = self.reads, {}
        return reads


async def flush(store: StoreCore) -> int:
    """Write the noted reads (one commit for all)."""
    reads = store.access.take()
    if reads:
        async with store.txn() as t:
            for (bucket, key, vid), ns in reads.items():
                t.batch.put(keys.access(bucket, key, vid), keys.pack_seq(ns))
    return len(reads)


def last_read(store: StoreCore, v: ObjectVersion) -> int:
    raw = store.db.get(keys.access(v.bucket, v.key, v.version_id))
    return keys.unpack_seq(raw) if raw else 0


@dataclass(frozen=True)
class TierMove:
    """Where a version's data goes (a class's placement), and the archive tier it then is in
    (None: a move between the frequent and infrequent tiers)."""

    placement: str
    archive_tier: str | None = None


def move_for(store: StoreCore, v: ObjectVersion, day: float, now_ns: int) -> TierMove | None:
    """Where an INTELLIGENT_TIERING version should move now, if anywhere."""
    if v.storage_class != CLASS or v.delete_marker or v.size < MIN_TRANSITION_BYTES or not v.segments:
        return None
    read = last_read(store, v)
    idle_since = max(v.last_modified_ns, read)
    periods = archive_days(configs_of(store, v.bucket), v)
    deep_due = bool(periods.deep_archive) and due_ns(idle_since, periods.deep_archive, day) <= now_ns
    archived = tier_of(store, v)
    if archived is not None:  # out of an archive tier only through RestoreObject; deeper in time
        if archived.tier == ARCHIVE_ACCESS and deep_due:
            return TierMove(TIER_PLACEMENT[DEEP_ARCHIVE_ACCESS], DEEP_ARCHIVE_ACCESS)
        return None
    if deep_due:
        return TierMove(TIER_PLACEMENT[DEEP_ARCHIVE_ACCESS], DEEP_ARCHIVE_ACCESS)
    if periods.archive and due_ns(idle_since, periods.archive, day) <= now_ns:
        return TierMove(TIER_PLACEMENT[ARCHIVE_ACCESS], ARCHIVE_ACCESS)
    seg = store.db.get_record(SegmentRecord, keys.segment(v.segments[0].segment_id))
    if seg is None:
        return None
    frequent = store.placement(CLASS)
    in_frequent = (seg.pool, seg.k, seg.m) == (frequent.pool, frequent.geometry.k, frequent.geometry.m)
    if in_frequent:
        return TierMove(INFREQUENT) if due_ns(idle_since, IDLE_DAYS, day) <= now_ns else None
    return TierMove(CLASS) if read > seg.created_ns else None  # read since it moved: back to frequent
