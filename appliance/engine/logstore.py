"""The facade's bucket logging settings (key l<bucket>, BucketLoggingRecord): whether a bucket's
requests go to the structured access log, and where S3 server access logging (PutBucketLogging)
delivers its log objects. Read on every request by the access-log observers, so kept in a
per-store cache that every change made through here updates (the daemon is the only writer
while it runs)."""

from __future__ import annotations

from . import keys
from .records import BucketLoggingRecord
from .storecore import StoreCore


class LoggingStore(StoreCore):
    """StoreCore plus bucket logging settings."""

    def _logging_cache(self) -> dict[str, BucketLoggingRecord | None]:
        cache: dict[str, BucketLoggingRecord | None] = self.__dict__.setdefault("_bucket_logging", {})
        return cache

    def bucket_logging(self, bucket: str) -> BucketLoggingRecord | None:
        """The bucket's logging settings (None: nothing logged, no target)."""
        cache = self._logging_cache()
        if bucket not in cache:
            cache[bucket] = self.db.get_record(BucketLoggingRecord, keys.bucket_logging(bucket))
        return cache[bucket]

    def all_bucket_logging(self) -> list[BucketLoggingRecord]:
        return [rec for _, rec in self.db.scan_records(BucketLoggingRecord, keys.BUCKET_LOGGING)]

    async def forget_bucket_logging(self, bucket: str) -> bool:
        """Drop the settings of a bucket that no longer exists (after DeleteBucket): a new
        bucket of the same name starts without them, as on AWS."""
        if self.db.get(keys.bucket(bucket)) is not None or self.bucket_logging(bucket) is None:
            return False
        b = self.db.batch()
        b.delete(keys.bucket_logging(bucket))
        await self.db.commit(b)
        self._logging_cache()[bucket] = None
        return True

    async def set_bucket_logging(self, rec: BucketLoggingRecord) -> None:
        """Store the settings (a record with nothing on is deleted)."""
        self.require_bucket(rec.bucket)
        on = rec.access_log or bool(rec.target_bucket)
        b = self.db.batch()
        if on:
            b.put(keys.bucket_logging(rec.bucket), rec)
        else:
            b.delete(keys.bucket_logging(rec.bucket))
        await self.db.commit(b)
        self._logging_cache()[rec.bucket] = rec if on else None
