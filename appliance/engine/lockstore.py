"""The facade's object lock operations: a bucket's lock configuration, a version's retention and
legal hold, and the GC's check that a segment it is about to collect holds no protected data.

The rules themselves are lock.py's; the protection of versions is enforced by storecore's Txn.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from . import lock
from .errors import FormatError, InvalidBucketState, ObjectLockNotEnabled, StowageError
from .lock import LockConfig
from .records import BucketRecord, ObjectVersion, SegmentRecord
from .segments import shard_header
from .storecore import StoreCore

log = logging.getLogger("stowage.lock")


class LockStore(StoreCore):
    """StoreCore plus object lock settings."""

    async def set_object_lock(self, bucket: str, config: LockConfig) -> BucketRecord:
        """Enable object lock on a bucket (its versioning must be Enabled: InvalidBucketState) or
        change its default retention. There is no way to disable it again."""

        def change(rec: BucketRecord) -> None:
            if not lock.enabled(rec) and rec.versioning != "Enabled":
                raise InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock "
                                         "configuration", bucket=bucket)
            rec.object_lock = config.to_record()

        return await self.update_bucket(bucket, change)

    def lock_config(self, bucket: str) -> LockConfig | None:
        """The bucket's object lock configuration (None: not enabled)."""
        return LockConfig.of(self.get_bucket(bucket))

    async def set_retention(self, bucket: str, key: str, version_id: str | None, mode: str, until_ns: int, *,
                            bypass_governance: bool = False) -> ObjectVersion:
        """Set (mode, until_ns) or remove (mode "") the retention of a version (the current one
        without a version id), in place, under lock.check_retention_change's rules."""
        self._require_lock(bucket)

        def change(v: ObjectVersion) -> None:
            lock.check_retention_change(v, mode, until_ns, time.time_ns(), bypass_governance=bypass_governance)
            if mode and mode == v.lock_mode and lock.same_date(until_ns, v.retain_until_ns):
                return  # the date it has: kept to the nanosecond, never shortened by the rounding
            v.lock_mode, v.retain_until_ns = mode, until_ns if mode else 0

        return await self._change_in_place(bucket, key, version_id, change)

    async def set_legal_hold(self, bucket: str, key: str, version_id: str | None, on: bool) -> ObjectVersion:
        """Put a legal hold on a version (the current one without a version id), or lift it."""
        self._require_lock(bucket)

        def change(v: ObjectVersion) -> None:
            v.legal_hold = on

        return await self._change_in_place(bucket, key, version_id, change)

    def version_for_lock(self, bucket: str, key: str, version_id: str | None) -> ObjectVersion:
        """The version a Get{ObjectRetention,ObjectLegalHold} reads (ObjectLockNotEnabled first)."""
        self._require_lock(bucket)
        return self.head_object(bucket, key, version_id)

    def _require_lock(self, bucket: str) -> None:
        if not lock.enabled(self.get_bucket(bucket)):
            raise ObjectLockNotEnabled("Bucket is missing Object Lock Configuration", bucket=bucket)

    # --- the GC's safety net ------------------------------------------------------------------

    def protected_writer(self, rec: SegmentRecord) -> ObjectVersion | None:
        """The version that wrote this segment, when it still references it and object lock
        protects it (blocking: reads a shard header). The GC asks before collecting a segment: its
        refcount says nothing references it, and this catches a refcount that is wrong, for the
        version named by the segment's own headers."""
        identity = self._identity_of(rec)
        if not identity or "version_id" not in identity:
            return None
        try:
            v = self.head_object(str(identity["bucket"]), str(identity["key"]), str(identity["version_id"]))
        except StowageError:  # gone (key, version or bucket), or a damaged record
            return None
        if any(s.segment_id == rec.segment_id for s in v.segments) and lock.protection(v, time.time_ns()):
            return v
        return None

    def _identity_of(self, rec: SegmentRecord) -> dict[str, Any] | None:
        for index, disk_id in enumerate(rec.shards):
            disk = self.disks.get(disk_id)
            if disk is None or not disk.readable:
                continue
            try:
                return shard_header(disk, rec, index).identity
            except (OSError, FormatError):
                continue
        return None
