"""Bucket lifecycle: PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration,
DeleteBucketLifecycle, and the x-amz-expiration header of HEAD and GET.

The rules (s3gw/lifecyclexml.py parses and validates them) replace the bucket's whole
configuration, as on AWS; the lifecycle worker (appliance/services/lifecycle.py) applies them.
The put and the delete are both s3:PutLifecycleConfiguration, as on AWS.
"""

from __future__ import annotations

from urllib.parse import quote

from appliance.engine import ObjectVersion

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .lifecyclexml import lifecycle_xml, parse_lifecycle
from .refusedheaders import one_value_served
from .routing import Op
from .xmlio import http_date

XML = ("Content-Type", "application/xml")
LIFECYCLE_DOC = 2 << 20  # 1000 rules with their filters and tags, with room for the XML around them
# What PutBucketLifecycleConfiguration answers on AWS since 2024: objects under 128 KiB are not
# transitioned unless a rule's filter names a size (engine/lifecycle_rules.MIN_TRANSITION_BYTES).
MIN_SIZE_HEADER = ("x-amz-transition-default-minimum-object-size", "all_storage_classes_128K")


# The other value AWS takes, varies_by_storage_class (small objects do move to GLACIER and
# DEEP_ARCHIVE), is a per-bucket setting this store does not keep: refused, never ignored.
OTHER_MIN_SIZE = "varies_by_storage_class"


def _check_min_size(headers: dict[str, str]) -> None:
    name, supported = MIN_SIZE_HEADER
    one_value_served(headers, name, supported, OTHER_MIN_SIZE,
                     f"{name}: {OTHER_MIN_SIZE} is not implemented; objects under 128 KiB transition only "
                     f"when a rule's filter names a size ({supported}).")


async def put_bucket_lifecycle(ctx: Ctx) -> Response:
    _check_min_size(ctx.req.headers)
    rules = await read_xml(ctx, parse_lifecycle, LIFECYCLE_DOC, digest_required=True)
    await ctx.store.put_lifecycle(ctx.bucket, rules)
    return Response(200, [MIN_SIZE_HEADER])


async def get_bucket_lifecycle(ctx: Ctx) -> Response:
    rules = ctx.store.get_lifecycle(ctx.bucket)
    if rules is None:
        raise S3Error("NoSuchLifecycleConfiguration", BucketName=ctx.bucket)
    return Response(200, [XML, MIN_SIZE_HEADER], lifecycle_xml(rules))


async def delete_bucket_lifecycle(ctx: Ctx) -> Response:
    ctx.store.require_bucket(ctx.bucket)
    await ctx.store.delete_lifecycle(ctx.bucket)
    return Response(204)


def expiration_headers(ctx: Ctx, v: ObjectVersion) -> list[tuple[str, str]]:
    """x-amz-expiration of a current version an Expiration rule applies to."""
    due = ctx.store.expiration_of(v)
    if due is None:
        return []
    # URL-encoded, as AWS documents it: a rule's ID is any text, and a CR or LF in it sent as it
    # is would split the response head (every GET and HEAD the rule covers would drop the
    # connection); a quote would end the value early
    rule_id = quote(due.rule_id, safe="")
    return [("x-amz-expiration", f'expiry-date="{http_date(due.at_ns)}", rule-id="{rule_id}"')]


OPS: dict[str, OpHandler] = {
    Op.PutBucketLifecycleConfiguration: put_bucket_lifecycle,
    Op.GetBucketLifecycleConfiguration: get_bucket_lifecycle,
    Op.DeleteBucketLifecycle: delete_bucket_lifecycle,
}
