"""ListBuckets' paging and filtering: prefix, bucket-region, max-buckets, continuation-token.

Applied to the buckets the caller may see (authz.visible_buckets), in name order. Every bucket
is in the one configured region (s3.region), so bucket-region keeps all of them or none. A
continuation token is the last name of the page before (pagetoken.py), and a listing resumes
after that name even when the bucket has gone since.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from appliance.engine import BucketRecord

from . import pagetoken
from .errors import S3Error
from .numbers import digits

MAX_BUCKETS = 10000  # AWS's largest page (and its default quota of buckets per account)


@dataclass(frozen=True)
class BucketPage:
    buckets: list[BucketRecord]
    continuation_token: str | None  # None: this is the last page
    prefix: str | None  # echoed when the request filtered by prefix


def _max_buckets(raw: str | None) -> int:
    if raw is None:
        return MAX_BUCKETS
    value = digits(raw) or 0
    if not 1 <= value <= MAX_BUCKETS:
        raise S3Error("InvalidArgument", f"max-buckets must be an integer between 1 and {MAX_BUCKETS}",
                      ArgumentName="max-buckets", ArgumentValue=raw)
    return value


def page(buckets: Sequence[BucketRecord], query: Mapping[str, str], region: str) -> BucketPage:
    """The page of `buckets` (sorted by name) the ListBuckets query asks for."""
    limit = _max_buckets(query.get("max-buckets"))
    prefix = query.get("prefix")
    after = pagetoken.decode(query["continuation-token"]) if "continuation-token" in query else ""
    wanted_region = query.get("bucket-region")
    chosen = [b for b in buckets if b.name.startswith(prefix or "") and b.name > after]
    if wanted_region is not None and wanted_region != region:
        chosen = []
    if len(chosen) <= limit:
        return BucketPage(chosen, None, prefix)
    shown = chosen[:limit]
    return BucketPage(shown, pagetoken.encode(shown[-1].name), prefix)
