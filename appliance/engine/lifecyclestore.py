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

from . import keys, transcode
from .errors import NoSuchBucket
from .lifecycle_rules import DAY, Due, Rule, current_expiration
from .records import BucketRecord, LifecycleCursor, LifecycleRecord, ObjectVersion, UploadRecord
from .storecore import StoreCore
from .transcode import TranscodeResult

CURSOR = "pass"


class LifecycleStore(StoreCore):
    # --- configuration --------------------------------------------------------------------

    @property
    def lifecycle_day(self) -> float:
        """Seconds in a lifecycle day (lifecycle.debug_day_seconds shortens it for tests)."""
        return self.cfg.lifecycle.debug_day_seconds or DAY

    def get_lifecycle(self, bucket: str) -> list[Rule] | None:
        """The bucket's rules; None when it has no lifecycle configuration."""
        self.get_bucket(bucket)
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
        """Every bucket with lifecycle rules, in name order."""
        out = []
        for _, rec in self.db.scan_records(LifecycleRecord, keys.LIFECYCLE):
            b = self.db.get_record(BucketRecord, keys.bucket(rec.bucket))
            if b is not None:
                out.append((b, [Rule.from_json(r) for r in rec.rules]))
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

    async def expire_current(self, v: ObjectVersion) -> bool:
        """Expire `v` if it is still the current version: remove it (unversioned bucket) or add
        a delete marker (versioned or suspended: a "null" one then, as DELETE does)."""
        async with self.txn() as t:
            b = self._bucket_in(t, v.bucket)
            cur = t.latest(v.bucket, v.key)
            if cur is None or cur.seq != v.seq:
                return False
            self._delete_current_in(t, b, v.key)
        return True

    async def expire_version(self, v: ObjectVersion, *, only_version: bool = False) -> bool:
        """Remove the version (noncurrent expiration, or with `only_version` an expired object
        delete marker, which must still be the key's only version). ObjectLocked when object
        lock protects it."""
        async with self.txn() as t:
            cur = t.version_at(v.bucket, v.key, v.version_id)
            if cur is None or cur.seq != v.seq:
                return False
            if only_version and len(t.batch.scan(keys.version_key_prefix(v.bucket, v.key))) != 1:
                return False
            t.remove_version(cur)
        return True

    async def transition(self, v: ObjectVersion, storage_class: str) -> TranscodeResult | None:
        """Re-encode the version's data into `storage_class`, keeping its identity (transcode.py)."""
        return await transcode.transition_version(self, v, storage_class)

    # --- the worker's cursor --------------------------------------------------------------------

    def lifecycle_cursor(self) -> LifecycleCursor:
        rec = self.db.get_record(LifecycleCursor, keys.lifecycle_state(CURSOR))
        return rec or LifecycleCursor()

    async def save_lifecycle_cursor(self, cur: LifecycleCursor) -> None:
        """Saved through a commit, so the journal (and recover-metadata) keeps it too."""
        async with self.txn() as t:
            t.batch.put(keys.lifecycle_state(CURSOR), cur)
