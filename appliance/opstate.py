"""The operator's persisted settings and state, in the metadata DB through MetaDB commits (so
they are journaled and survive `stowage recover-metadata`):

    g<name>    OperatorRecord: the metrics token's digest, the alerts that are firing
    l<bucket>  BucketLoggingRecord: a bucket's access-log switch and S3 server access logging

The daemon is the only writer while it runs (the CLI goes through the control socket), so the
bucket logging settings are cached here and read per request without touching the DB.
"""

from __future__ import annotations

from typing import Any

from appliance.engine import keys
from appliance.engine.metadb import MetaDB
from appliance.engine.records import BucketLoggingRecord, OperatorRecord

METRICS_TOKEN = "metrics-token"
ALERTS = "alerts"


class OperatorState:
    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self._logging: dict[str, BucketLoggingRecord] = {
            rec.bucket: rec for _, rec in db.scan_records(BucketLoggingRecord, keys.BUCKET_LOGGING)}

    # g<name>

    def get(self, name: str) -> dict[str, Any] | None:
        rec = self.db.get_record(OperatorRecord, keys.operator(name))
        return rec.value if rec is not None else None

    async def put(self, name: str, value: dict[str, Any]) -> None:
        b = self.db.batch()
        b.put(keys.operator(name), OperatorRecord(name, value))
        await self.db.commit(b)

    def put_now(self, name: str, value: dict[str, Any]) -> None:
        """Blocking, for the CLI while no daemon runs."""
        b = self.db.batch()
        b.put(keys.operator(name), OperatorRecord(name, value))
        self.db.commit_now(b)

    # l<bucket>

    def logging(self, bucket: str) -> BucketLoggingRecord | None:
        return self._logging.get(bucket)

    def all_logging(self) -> list[BucketLoggingRecord]:
        return list(self._logging.values())

    async def put_logging(self, rec: BucketLoggingRecord) -> None:
        b = self.db.batch()
        if rec.access_log or rec.target_bucket:
            b.put(keys.bucket_logging(rec.bucket), rec)
        else:
            b.delete(keys.bucket_logging(rec.bucket))
        await self.db.commit(b)
        if rec.access_log or rec.target_bucket:
            self._logging[rec.bucket] = rec
        else:
            self._logging.pop(rec.bucket, None)

    def logging_or_default(self, bucket: str) -> BucketLoggingRecord:
        rec = self._logging.get(bucket)
        return BucketLoggingRecord(rec.bucket, rec.access_log, rec.target_bucket, rec.target_prefix) if rec \
            else BucketLoggingRecord(bucket)
