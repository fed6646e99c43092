"""S3 Intelligent-Tiering configurations (Put/Get/Delete/ListBucketIntelligentTieringConfiguration)
and the archive tiers they open (docs/storage-classes.md).

A configuration opts the INTELLIGENT_TIERING objects its filter selects (prefix, tags) into the
Archive Access tier after `archive_days` without access and the Deep Archive Access tier after
`deep_archive_days`. Several may select one object: the shortest period of each tier applies,
as the earliest rule to match would. A Disabled configuration selects nothing.

An archived version keeps its class label, ETag, version id and Last-Modified; its data moves to
GLACIER's (or DEEP_ARCHIVE's) placement and an ArchiveTierRecord (`at<bucket>\\0<key>\\0<vid>`)
says which tier it is in: reads are refused (InvalidObjectState), HEAD reports
`x-amz-archive-status`, and only a RestoreObject brings it back to the frequent tier (the
restore worker moves the data back and drops the record in one commit). Configurations and tier
records are metadata commits: journaled, and back after `recover-metadata`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import keys
from .errors import InvalidObjectState
from .records import ArchiveTierRecord, ObjectVersion, TieringConfigRecord

if TYPE_CHECKING:
    from .storecore import StoreCore, Txn

# A step a transition's commit also takes (transcode.transition_version's `also`).
TxnStep = Callable[["Txn", ObjectVersion], None]

IT_CLASS = "INTELLIGENT_TIERING"  # tiering.CLASS (which imports this module)
ARCHIVE_ACCESS = "ARCHIVE_ACCESS"
DEEP_ARCHIVE_ACCESS = "DEEP_ARCHIVE_ACCESS"
# the placement (storage class) each archive tier's data goes to
TIER_PLACEMENT = {ARCHIVE_ACCESS: "GLACIER", DEEP_ARCHIVE_ACCESS: "DEEP_ARCHIVE"}
MAX_CONFIGS = 1000  # per bucket, as AWS


@dataclass(frozen=True)
class ArchiveDays:
    """The archive periods that apply to one version (0: that tier is not configured)."""

    archive: int = 0
    deep_archive: int = 0


def selects(cfg: TieringConfigRecord, v: ObjectVersion) -> bool:
    return (cfg.status == "Enabled" and v.key.startswith(cfg.prefix)
            and all(v.tags.get(k) == val for k, val in cfg.tags.items()))


def archive_days(configs: list[TieringConfigRecord], v: ObjectVersion) -> ArchiveDays:
    chosen = [c for c in configs if selects(c, v)]
    archive = min((c.archive_days for c in chosen if c.archive_days), default=0)
    deep = min((c.deep_archive_days for c in chosen if c.deep_archive_days), default=0)
    return ArchiveDays(archive, deep)


def tier_of(store: StoreCore, v: ObjectVersion) -> ArchiveTierRecord | None:
    """The archive tier of exactly this version (same seq), if it is in one (a version a
    lifecycle rule moved to another class meanwhile is in none: that class says what it is)."""
    if v.storage_class != IT_CLASS:
        return None
    rec = store.db.get_record(ArchiveTierRecord, keys.archive_tier(v.bucket, v.key, v.version_id))
    return rec if rec is not None and rec.seq == v.seq else None


def configs_of(store: StoreCore, bucket: str) -> list[TieringConfigRecord]:
    return [rec for _, rec in store.db.scan_records(TieringConfigRecord, keys.tiering_config_prefix(bucket))]


def check_readable(store: StoreCore, v: ObjectVersion) -> None:
    """InvalidObjectState for a version in an archive tier (AWS: until restored)."""
    if tier_of(store, v) is not None:
        raise InvalidObjectState("The operation is not valid for the object's access tier",
                                 storage_class=v.storage_class)


def enter_tier(tier: str) -> TxnStep:
    """A commit step putting the version it moves into `tier`."""

    def step(t: Txn, v: ObjectVersion) -> None:
        t.batch.put(keys.archive_tier(v.bucket, v.key, v.version_id), ArchiveTierRecord(v.seq, tier, time.time_ns()))

    return step


def leave_tier(t: Txn, v: ObjectVersion) -> None:
    """A commit step restoring the version it moves to the frequent tier: the tier record and the
    restore request go, and the restore counts as an access (the idle periods start again)."""
    t.batch.delete(keys.archive_tier(v.bucket, v.key, v.version_id))
    t.batch.delete(keys.restore(v.bucket, v.key, v.version_id))
    t.batch.put(keys.access(v.bucket, v.key, v.version_id), keys.pack_seq(time.time_ns()))
