"""S3 Intelligent-Tiering configurations: Put/Get/Delete/ListBucketIntelligentTieringConfiguration,
and HEAD's x-amz-archive-status (the engine applies them: appliance/engine/tieringconfig.py).

Put, Get and Delete name one configuration by the `id` parameter; List returns them all, in id
order, in one page (a bucket has at most 1000, as on AWS). Get and Delete of an id the bucket
does not have answer 404 NoSuchConfiguration. Put and Delete are
s3:PutIntelligentTieringConfiguration, Get and List s3:GetIntelligentTieringConfiguration, as on
AWS.
"""

from __future__ import annotations

from functools import partial

from appliance.engine import ObjectVersion

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op
from .tieringxml import check_id, parse_tiering, tiering_xml
from .xmlio import doc, el

XML = ("Content-Type", "application/xml")
TIERING_DOC = 64 << 10


async def put_tiering(ctx: Ctx) -> Response:
    config_id = check_id(ctx.query.get("id"))
    rec = await read_xml(ctx, partial(parse_tiering, bucket=ctx.bucket, config_id=config_id), TIERING_DOC)
    await ctx.store.put_tiering_config(rec)
    return Response(200)


async def get_tiering(ctx: Ctx) -> Response:
    config_id = check_id(ctx.query.get("id"))
    rec = ctx.store.get_tiering_config(ctx.bucket, config_id)
    if rec is None:
        raise S3Error("NoSuchConfiguration")
    return Response(200, [XML], doc("IntelligentTieringConfiguration", [tiering_xml(rec)]))


async def delete_tiering(ctx: Ctx) -> Response:
    config_id = check_id(ctx.query.get("id"))
    if not await ctx.store.delete_tiering_config(ctx.bucket, config_id):
        raise S3Error("NoSuchConfiguration")
    return Response(204)


async def list_tiering(ctx: Ctx) -> Response:
    recs = ctx.store.list_tiering_configs(ctx.bucket)
    parts = [el("IsTruncated", False)]
    parts += [f"<IntelligentTieringConfiguration>{tiering_xml(r)}</IntelligentTieringConfiguration>" for r in recs]
    return Response(200, [XML], doc("ListBucketIntelligentTieringConfigurationsOutput", parts))


def archive_status_headers(ctx: Ctx, v: ObjectVersion) -> list[tuple[str, str]]:
    """x-amz-archive-status of an INTELLIGENT_TIERING version in an archive tier."""
    rec = ctx.store.archive_tier_of(v)
    return [("x-amz-archive-status", rec.tier)] if rec is not None else []


OPS: dict[str, OpHandler] = {
    Op.PutBucketIntelligentTieringConfiguration: put_tiering,
    Op.GetBucketIntelligentTieringConfiguration: get_tiering,
    Op.DeleteBucketIntelligentTieringConfiguration: delete_tiering,
    Op.ListBucketIntelligentTieringConfigurations: list_tiering,
}
