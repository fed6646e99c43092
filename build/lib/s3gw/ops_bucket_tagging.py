"""Bucket tagging: PutBucketTagging, GetBucketTagging, DeleteBucketTagging.

The tag set is stored with the bucket (BucketRecord.tags) and replaced whole, as on AWS, under
AWS's limits: at most 50 tags, keys of 1-128 and values of up to 256 characters, no key in the
reserved aws: namespace, no key twice (InvalidTag). A bucket without tags answers NoSuchTagSet;
storing an empty tag set is deleting it. Both the put and the delete are s3:PutBucketTagging.
"""

from __future__ import annotations

from appliance.engine import BucketRecord

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .objmeta import validate_tags
from .routing import Op
from .xmlio import doc, el, parse_tagging

XML = ("Content-Type", "application/xml")
MAX_BUCKET_TAGS = 50
TAGGING_DOC = 64 * 1024  # 50 tags of 128 + 256 characters, with room for the XML around them


async def _store(ctx: Ctx, tags: dict[str, str]) -> None:
    def change(rec: BucketRecord) -> None:
        rec.tags = dict(tags)

    await ctx.store.update_bucket(ctx.bucket, change)


async def put_bucket_tagging(ctx: Ctx) -> Response:
    tags = await read_xml(ctx, parse_tagging, TAGGING_DOC)
    await _store(ctx, validate_tags(tags, limit=MAX_BUCKET_TAGS, what="Bucket"))
    return Response(204)


async def get_bucket_tagging(ctx: Ctx) -> Response:
    tags = ctx.store.get_bucket(ctx.bucket).tags
    if not tags:
        raise S3Error("NoSuchTagSet", BucketName=ctx.bucket)
    items = "".join(f"<Tag>{el('Key', k)}{el('Value', v)}</Tag>" for k, v in tags.items())
    return Response(200, [XML], doc("Tagging", [f"<TagSet>{items}</TagSet>"]))


async def delete_bucket_tagging(ctx: Ctx) -> Response:
    await _store(ctx, {})
    return Response(204)


OPS: dict[str, OpHandler] = {
    Op.PutBucketTagging: put_bucket_tagging,
    Op.GetBucketTagging: get_bucket_tagging,
    Op.DeleteBucketTagging: delete_bucket_tagging,
}
