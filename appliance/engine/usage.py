"""Usage counters and hard quotas (`stowage usage`, `stowage quota`).

Every commit keeps each bucket's UsageRecord (keys.usage: versions and bytes per storage class,
delete markers not counted) in step: Txn notes each version it adds (put_version) or removes
(_drop) and `apply` folds the sums into the records in the same batch, under the commit lock, so
the counters are exact and cost one read and one write per bucket a commit touches. A commit
that raises a bucket's bytes or versions past its quota, or its owner's past theirs, is refused
with QuotaExceeded before anything is written; commits that only shrink always pass, so a
bucket over its quota (a quota set below its usage) can still be cleaned.

Counters start with the first daemon start of a version that has them: `count_all` scans every
version once and marks them complete (keys.USAGE_READY). `recover-metadata` recounts them
(`recount_writes`) after its reconciliation, which adds and drops versions outside any commit;
quotas are journaled records and come back as they were.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from . import keys
from .errors import QuotaExceeded
from .metadb import Batch, MetaDB
from .records import BucketRecord, ObjectVersion, QuotaRecord, UsageRecord

if TYPE_CHECKING:
    from .storecore import Txn


class Deltas:
    """Per (bucket, class): [versions, bytes] added (negative: removed) by one transaction."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, v: ObjectVersion, sign: int) -> None:
        if v.delete_marker:
            return
        d = self.by[(v.bucket, v.storage_class or "STANDARD")]
        d[0] += sign
        d[1] += sign * v.size


def _over(rec: QuotaRecord | None, objects: int, size: int) -> str:
    if rec is None:
        return ""
    if rec.max_bytes and size > rec.max_bytes:
        return f"{size} bytes > quota {rec.max_bytes}"
    if rec.max_objects and objects > rec.max_objects:
        return f"{objects} objects > quota {rec.max_objects}"
    return ""


def apply(t: Txn) -> None:
    """Fold a transaction's deltas into the usage records, refusing a quota overrun."""
    if not t.usage.by:
        return
    net: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    records: dict[str, UsageRecord] = {}
    for (bucket, cls), (n, size) in t.usage.by.items():
        net[bucket][0] += n
        net[bucket][1] += size
        if n == 0 and size == 0:
            continue
        rec = records.get(bucket) or t.batch.get_record(UsageRecord, keys.usage(bucket)) or UsageRecord(bucket)
        c = rec.classes.setdefault(cls, [0, 0])
        c[0], c[1] = c[0] + n, c[1] + size
        if c == [0, 0]:
            del rec.classes[cls]
        records[bucket] = rec
    # only a commit that grows a bucket can overrun (a transition moves bytes between classes)
    grew = sorted(b for b, (n, size) in net.items() if n > 0 or size > 0)
    for bucket in grew:
        rec = records[bucket]
        why = _over(t.batch.get_record(QuotaRecord, keys.bucket_quota(bucket)), rec.objects, rec.bytes)
        if why:
            raise QuotaExceeded(f"Bucket quota exceeded: {why}", bucket=bucket)
        owner = _owner(t, bucket)
        quota = t.batch.get_record(QuotaRecord, keys.user_quota(owner)) if owner else None
        if quota is not None:
            objects, size = _owner_totals(t.batch, owner, records)
            why = _over(quota, objects, size)
            if why:
                raise QuotaExceeded(f"User quota of {owner} exceeded: {why}", bucket=bucket)
    for bucket, rec in records.items():
        t.batch.put(keys.usage(bucket), rec)


def _owner(t: Txn, bucket: str) -> str:
    b = t.shared_bucket(bucket)  # the shared decode: every commit that adds an object asks
    return b.owner if b is not None else ""


def _owner_totals(batch: Batch, owner: str, pending: dict[str, UsageRecord]) -> tuple[int, int]:
    objects = size = 0
    for _, raw in batch.scan(keys.BUCKET):
        b = BucketRecord.decode(raw)
        if b.owner != owner:
            continue
        rec = pending.get(b.name) or batch.get_record(UsageRecord, keys.usage(b.name))
        if rec is not None:
            objects, size = objects + rec.objects, size + rec.bytes
    return objects, size


def count_all(db: MetaDB) -> int:
    """Count every bucket's versions into fresh usage records, once (blocking; at start-up,
    before the store takes writes). Returns the buckets counted (0: already complete)."""
    if db.get(keys.USAGE_READY) is not None:
        return 0
    counted = _count(db)
    batch = db.batch()
    for name, rec in counted.items():
        batch.put(keys.usage(name), rec)
    batch.put(keys.USAGE_READY, b"1")
    db.commit_now(batch, sync=True)
    return len(counted)


def _count(db: MetaDB) -> dict[str, UsageRecord]:
    counted: dict[str, UsageRecord] = {}
    for _, b in db.scan_records(BucketRecord, keys.BUCKET):
        rec = counted[b.name] = UsageRecord(b.name)
        for _, v in db.scan_records(ObjectVersion, keys.version_bucket_prefix(b.name)):
            if not v.delete_marker:
                c = rec.classes.setdefault(v.storage_class or "STANDARD", [0, 0])
                c[0], c[1] = c[0] + 1, c[1] + v.size
    return counted


def recount_writes(db: MetaDB) -> list[tuple[bytes, bytes | None]]:
    """The writes that replace every usage record by a full count (blocking; for a DB being
    rebuilt, whose writes are loaded as they are): counters of buckets that are gone go too.
    Nothing while the counters were never complete: the daemon's next start counts them."""
    if db.get(keys.USAGE_READY) is None:
        return []
    counted = _count(db)
    writes: list[tuple[bytes, bytes | None]] = [(k, None) for k, _ in db.scan(keys.USAGE_BUCKET)]
    return writes + [(keys.usage(name), rec.encode()) for name, rec in counted.items()]


def usage_of(db: MetaDB, bucket: str) -> UsageRecord:
    return db.get_record(UsageRecord, keys.usage(bucket)) or UsageRecord(bucket)


def quotas(db: MetaDB) -> list[tuple[str, QuotaRecord]]:
    """("bucket" | "user", record) of every quota set."""
    out = [("bucket", r) for _, r in db.scan_records(QuotaRecord, keys.QUOTA_BUCKET)]
    return out + [("user", r) for _, r in db.scan_records(QuotaRecord, keys.QUOTA_USER)]
