"""The store side of S3 Intelligent-Tiering configurations (tieringconfig.py has the rules)."""

from __future__ import annotations

from . import keys
from .errors import InvalidArgument
from .records import ArchiveTierRecord, ObjectVersion, TieringConfigRecord
from .storecore import StoreCore
from .tieringconfig import MAX_CONFIGS, configs_of, tier_of


class TieringConfigStore(StoreCore):
    async def put_tiering_config(self, rec: TieringConfigRecord) -> None:
        """Create or replace the bucket's configuration of that id (NoSuchBucket, or
        InvalidArgument past MAX_CONFIGS)."""
        async with self.txn() as t:
            self._bucket_in(t, rec.bucket)
            k = keys.tiering_config(rec.bucket, rec.config_id)
            if t.batch.get(k) is None and sum(1 for _ in t.batch.scan(keys.tiering_config_prefix(rec.bucket))) \
                    >= MAX_CONFIGS:
                raise InvalidArgument(f"a bucket has at most {MAX_CONFIGS} Intelligent-Tiering configurations")
            t.batch.put(k, rec)

    def get_tiering_config(self, bucket: str, config_id: str) -> TieringConfigRecord | None:
        self.require_bucket(bucket)
        return self.db.get_record(TieringConfigRecord, keys.tiering_config(bucket, config_id))

    def list_tiering_configs(self, bucket: str) -> list[TieringConfigRecord]:
        self.require_bucket(bucket)
        return configs_of(self, bucket)

    async def delete_tiering_config(self, bucket: str, config_id: str) -> bool:
        """False when the bucket has no configuration of that id."""
        async with self.txn() as t:
            self._bucket_in(t, bucket)
            k = keys.tiering_config(bucket, config_id)
            if t.batch.get(k) is None:
                return False
            t.batch.delete(k)
        return True

    def archive_tier_of(self, v: ObjectVersion) -> ArchiveTierRecord | None:
        """The archive tier an INTELLIGENT_TIERING version is in (HEAD's x-amz-archive-status)."""
        return tier_of(self, v)
