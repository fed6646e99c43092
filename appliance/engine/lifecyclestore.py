"""Lifecycle in the store: each bucket's rules (keys.lifecycle), and the narrow, conditional
operations the lifecycle worker (appliance/services/lifecycle.py) applies them with.

Every action re-checks, in its own commit, that the version it was decided for is still what
the worker saw (same sequence number, still current or still noncurrent): a PUT or DELETE that
lands between the decision and the action wins, and the worker simply finds nothing to do.
Removals go through Txn.remove_version, so object lock and legal holds always win
(lock.check_removable raises ObjectLocked); a delete marker is added to a locked current
version as AWS does, since it removes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import keys, lock, tiering, tieringconfig, transcode, usage
from .errors import NoSuchBucket
from .lifecycle_rules import DAY, Due, Rule, current_expiration
from .records import BucketRecord, LifecycleCursor, LifecycleRecord, ObjectVersion, UploadRecord
from .storecore import StoreCore
from .transcode import TranscodeResult

CURSOR = "pass"


@dataclass
class ExpireCounts:
    expired: int = 0
    markers: int = 0
    locked: int = 0


class LifecycleStore(StoreCore):
    # --- configuration --------------------------------------------------------------------

    @property
    def lifecycle_day(self) -> float:
        """Seconds in a lifecycle day (lifecycle.debug_day_seconds shortens it for tests)."""
        return self.cfg.lifecycle.debug_day_seconds or DAY

    def get_lifecycle(self, bucket: str) -> list[Rule] | None:
        """The bucket's rules; None when it has no lifecycle configuration."""
        self.require_bucket(bucket)
        rec = self.db.get_record(LifecycleRecord, keys.lifecycle(bucket))
        return None if rec is None else [Rule.from_json(r) for r in rec.rules]

    async def put_lifecycle(self, bucket: str, rules: list[Rule]) -> None:
        """Replace the bucket's rules (validated by the caller's parser; every class they name
        must exist: InvalidStorageClass)."""
        for r in rules:
            for cls in [t.storage_class for t in r.transitions] + [t.storage_class for t in r.noncurrent_transitions]:
                self.placement(cls)
        async with self.txn() as t:
            if t.batch.get(keys.bucket(bucket)) is None:
                raise NoSuchBucket(bucket=bucket)
            t.batch.put(keys.lifecycle(bucket), LifecycleRecord(bucket, [r.to_json() for r in rules], time.time_ns()))

    async def delete_lifecycle(self, bucket: str) -> None:
        async with self.txn() as t:
            if t.batch.get(keys.bucket(bucket)) is None:
                raise NoSuchBucket(bucket=bucket)
            t.batch.delete(keys.lifecycle(bucket))

    def lifecycle_buckets(self) -> list[tuple[BucketRecord, list[Rule]]]:
        """Every bucket with lifecycle rules or INTELLIGENT_TIERING objects (the usage counters
        say which), in name order."""
        rules = {rec.bucket: [Rule.from_json(r) for r in rec.rules]
                 for _, rec in self.db.scan_records(LifecycleRecord, keys.LIFECYCLE)}
        out = []
        for _, b in self.db.scan_records(BucketRecord, keys.BUCKET):
            if b.name in rules or tiering.CLASS in usage.usage_of(self.db, b.name).classes:
                out.append((b, rules.get(b.name, [])))
        return out

    def expiration_of(self, v: ObjectVersion) -> Due | None:
        """The Expiration that applies to a current version (x-amz-expiration), if any."""
        rec = self.db.get_record(LifecycleRecord, keys.lifecycle(v.bucket))
        if rec is None or v.delete_marker:
            return None
        rules = [Rule.from_json(r) for r in rec.rules]
        return current_expiration(rules, v.key, v.size, v.tags, v.last_modified_ns, self.lifecycle_day)

    # --- what the worker walks (blocking scans: run them in a thread) -----------------------

    def version_groups(self, bucket: str, after: str, limit: int) -> list[list[ObjectVersion]]:
        """The versions (newest first, delete markers included) of up to `limit` keys following
        `after` in key order ("" = from the first)."""
        prefix = keys.version_bucket_prefix(bucket)
        start = (keys.prefix_successor(keys.version_key_prefix(bucket, after)) or prefix) if after else prefix
        groups: list[list[ObjectVersion]] = []
        with self.db.iterator(start=start, stop=keys.prefix_successor(prefix)) as it:
            for _, raw in it:
                v = ObjectVersion.decode(raw)
                if groups and groups[-1][0].key == v.key:
                    groups[-1].append(v)
                    continue
                if len(groups) == limit:
                    break
                groups.append([v])
        return groups

    def uploads_after(self, bucket: str, key: str, upload_id: str, limit: int) -> list[UploadRecord]:
        """Up to `limit` uploads of the bucket following (key, upload id) ("" = from the first)."""
        prefix = keys.upload_bucket_prefix(bucket)
        start = keys.upload(bucket, key, upload_id) + b"\x00" if key else prefix
        out: list[UploadRecord] = []
        with self.db.iterator(start=start, stop=keys.prefix_successor(prefix)) as it:
            for _, raw in it:
                out.append(UploadRecord.decode(raw))
                if len(out) >= limit:
                    break
        return out

    # --- actions ------------------------------------------------------------------------------

    async def expire_many(self, items: list[tuple[str, ObjectVersion]]) -> ExpireCounts:
        """Several expirations in one commit (the worker batches a run of keys), each only if
        its version is still what the worker read: ("current", v) removes v (unversioned
        bucket) or hides it behind a delete marker (versioned; suspended: the "null" one, as
        DELETE does); ("version", v) removes a noncurrent version; ("marker", v) removes a delete
        marker while it is its key's only version. A version object lock protects is skipped and
        counted, the others still go."""
        out = ExpireCounts()
        now = time.time_ns()
        async with self.txn() as t:
            bucket_recs: dict[str, BucketRecord | None] = {}
            for kind, v in items:
                if v.bucket not in bucket_recs:
                    bucket_recs[v.bucket] = t.batch.get_record(BucketRecord, keys.bucket(v.bucket))
                b = bucket_recs[v.bucket]
                if b is None:
                    continue
                if kind == "current":
                    cur = t.latest(v.bucket, v.key)
                    if cur is None or cur.seq != v.seq:
                        continue
                    gone = t.version_at(v.bucket, v.key, "null") if b.versioning != "Enabled" else None
                else:
                    gone = cur = t.version_at(v.bucket, v.key, v.version_id)
                    if cur is None or cur.seq != v.seq:
                        continue
                    if kind == "marker" and len(t.batch.scan(keys.version_key_prefix(v.bucket, v.key))) != 1:
                        continue
                if gone is not None and lock.protection(gone, now):
                    out.locked += 1  # checked first: a refusal must not leave half a change in the batch
                    continue
                if kind == "current":
                    self._delete_current_in(t, b, v.key)
                else:
                    t.remove_version(cur)
                if kind == "marker":
                    out.markers += 1
                else:
                    out.expired += 1
        return out

    async def transition(self, v: ObjectVersion, storage_class: str, *, label: str | None = None,
                         archive_tier: str | None = None) -> TranscodeResult | None:
        """Re-encode the version's data into `storage_class`'s placement, keeping its identity
        (transcode.py); `label`: the class it is then reported in (intelligent tiering's moves),
        `archive_tier`: the intelligent-tiering archive tier it then is in."""
        also = tieringconfig.enter_tier(archive_tier) if archive_tier else None
        return await transcode.transition_version(self, v, storage_class, label=label, also=also)

    async def flush_access(self) -> int:
        """Write the reads of INTELLIGENT_TIERING versions noted since the last flush."""
        return await tiering.flush(self)

    def tiering_move(self, v: ObjectVersion, now_ns: int) -> tiering.TierMove | None:
        """The placement an INTELLIGENT_TIERING version moves to now (tiering.py), if any."""
        return tiering.move_for(self, v, self.lifecycle_day, now_ns)

    # --- the worker's cursor --------------------------------------------------------------------

    def lifecycle_cursor(self) -> LifecycleCursor:
        rec = self.db.get_record(LifecycleCursor, keys.lifecycle_state(CURSOR))
        return rec or LifecycleCursor()

    async def save_lifecycle_cursor(self, cur: LifecycleCursor) -> None:
        """Saved through a commit, so the journal (and recover-metadata) keeps it too."""
        async with self.txn() as t:
            t.batch.put(keys.lifecycle_state(CURSOR), cur)
