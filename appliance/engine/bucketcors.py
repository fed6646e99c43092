"""A bucket's CORS configuration, stored beside the bucket (c<bucket>, CorsRecord).

Its own record rather than a field of BucketRecord: the gateway reads it for every request that
carries an Origin header, and a change of the rules should not rewrite the bucket's record.
Written through MetaDB transactions like every other record, so it is journaled and comes back
with `recover-metadata`; deleting the bucket deletes it (storecore.delete_bucket).
"""

from __future__ import annotations

from typing import Any

from . import keys
from .errors import NoSuchBucket
from .records import CorsRecord
from .storecore import StoreCore


def get_cors(store: StoreCore, bucket: str) -> CorsRecord | None:
    """The bucket's CORS rules (None: none configured). NoSuchBucket when it does not exist."""
    store.require_bucket(bucket)
    return store.db.get_record(CorsRecord, keys.cors(bucket))


def find_cors(store: StoreCore, bucket: str) -> CorsRecord | None:
    """The CORS rules of a bucket, or None when it has none or does not exist (one read: the
    gateway asks for every request with an Origin header)."""
    return store.db.get_record(CorsRecord, keys.cors(bucket))


async def put_cors(store: StoreCore, bucket: str, rules: list[dict[str, Any]]) -> None:
    """Replace the bucket's CORS rules (an empty list deletes them)."""
    async with store.txn() as t:
        if t.batch.get(keys.bucket(bucket)) is None:
            raise NoSuchBucket(bucket=bucket)
        if rules:
            t.batch.put(keys.cors(bucket), CorsRecord(bucket, [dict(r) for r in rules]))
        else:
            t.batch.delete(keys.cors(bucket))
