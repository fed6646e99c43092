"""Usage and quotas in the store: the report `stowage usage` shows and the quota settings
(the counters and the enforcement are usage.py's)."""

from __future__ import annotations

from typing import Any

from appliance.config import ConfigError

from . import keys, usage
from .errors import InvalidArgument, InvalidStorageClass, NoSuchBucket
from .lifecycle_rules import Rule
from .records import BucketRecord, LifecycleRecord, QuotaRecord, UsageRecord
from .storecore import StoreCore

GIB = 1 << 30


class UsageStore(StoreCore):
    async def set_quota(self, kind: str, name: str, max_bytes: int, max_objects: int) -> QuotaRecord | None:
        """Set (or with both limits 0, clear) the hard quota of a bucket or a user."""
        if kind not in ("bucket", "user") or max_bytes < 0 or max_objects < 0:
            raise InvalidArgument("a quota is of a bucket or a user, with limits of 0 (none) or more")
        key = keys.bucket_quota(name) if kind == "bucket" else keys.user_quota(name)
        async with self.txn() as t:
            if kind == "bucket" and t.batch.get(keys.bucket(name)) is None:
                raise NoSuchBucket(bucket=name)
            if not max_bytes and not max_objects:
                t.batch.delete(key)
                return None
            rec = QuotaRecord(name, max_bytes, max_objects)
            t.batch.put(key, rec)
        return rec

    def usage_report(self, bucket: str | None = None) -> dict[str, Any]:
        """Per bucket: versions and bytes per class, the bytes they take on disk after erasure
        coding (at each class's geometry for large objects), its quota and a recommendation."""
        buckets = [self.get_bucket(bucket)] if bucket else self.list_buckets()
        quotas = {(kind, q.name): q for kind, q in usage.quotas(self.db)}
        out = []
        for b in buckets:
            rec = usage.usage_of(self.db, b.name)
            classes = {}
            for cls, (n, size) in sorted(rec.classes.items()):
                classes[cls] = {"objects": n, "bytes": size, "stored_bytes": self._stored(cls, size)}
            q = quotas.get(("bucket", b.name))
            out.append({"bucket": b.name, "owner": b.owner, "versioning": b.versioning or "Off",
                        "objects": rec.objects, "bytes": rec.bytes,
                        "stored_bytes": sum(c["stored_bytes"] for c in classes.values()),
                        "classes": classes,
                        "quota": {"bytes": q.max_bytes, "objects": q.max_objects} if q else None,
                        "recommendation": self._recommend(b, rec, q)})
        users = [{"user": q.name, "bytes": q.max_bytes, "objects": q.max_objects}
                 for (kind, _), q in quotas.items() if kind == "user"]
        return {"buckets": out, "user_quotas": users}

    def _stored(self, cls: str, size: int) -> int:
        try:
            geo = self.placement(cls).geometry
        except (InvalidStorageClass, ConfigError):  # a class the config no longer names: the default pool's
            geo = self.geometry()
        return size * geo.n // geo.k if geo.k else size

    def _recommend(self, b: BucketRecord, rec: UsageRecord, q: QuotaRecord | None) -> str:
        raw = self.db.get_record(LifecycleRecord, keys.lifecycle(b.name))
        rules = [Rule.from_json(r) for r in raw.rules] if raw else []
        if q is not None and ((q.max_bytes and rec.bytes > 0.9 * q.max_bytes)
                              or (q.max_objects and rec.objects > 0.9 * q.max_objects)):
            return "within 10% of its quota: raise it or expire data"
        if b.versioning and not any(r.enabled and r.noncurrent_days is not None for r in rules):
            return "versioned without NoncurrentVersionExpiration: replaced versions are kept for ever"
        if rec.bytes >= GIB and set(rec.classes) <= {"STANDARD"} and not any(r.transitions for r in rules):
            return "large and all STANDARD: a Transition to STANDARD_IA stores it denser (5+1 instead of 4+2)"
        return "-"
