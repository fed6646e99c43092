"""Bucket CORS: Put/Get/DeleteBucketCors, and the preflight (OPTIONS) answered from the rules.

The rules are stored beside the bucket (appliance/engine/bucketcors.py); cors.py parses,
validates and matches them. Put and Delete are s3:PutBucketCORS, Get s3:GetBucketCORS, as on AWS.
"""

from __future__ import annotations

from appliance.engine import get_cors, put_cors

from .body import read_xml
from .cors import DOC_LIMIT, CorsRule, parse_cors, preflight, render_cors
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op

XML = ("Content-Type", "application/xml")


async def put_bucket_cors(ctx: Ctx) -> Response:
    rules = await read_xml(ctx, parse_cors, DOC_LIMIT)
    await put_cors(ctx.store, ctx.bucket, [r.to_record() for r in rules])
    return Response(200)


async def get_bucket_cors(ctx: Ctx) -> Response:
    rec = get_cors(ctx.store, ctx.bucket)
    if rec is None:
        raise S3Error("NoSuchCORSConfiguration", BucketName=ctx.bucket)
    return Response(200, [XML], render_cors([CorsRule.of(r) for r in rec.rules]))


async def delete_bucket_cors(ctx: Ctx) -> Response:
    await put_cors(ctx.store, ctx.bucket, [])
    return Response(204)


async def preflight_request(ctx: Ctx) -> Response:
    rec = get_cors(ctx.store, ctx.bucket)
    rules = [CorsRule.of(r) for r in rec.rules] if rec is not None else None
    return Response(200, preflight(rules, ctx.req.headers))


OPS: dict[str, OpHandler] = {
    Op.PutBucketCors: put_bucket_cors,
    Op.GetBucketCors: get_bucket_cors,
    Op.DeleteBucketCors: delete_bucket_cors,
    Op.PreflightRequest: preflight_request,
}
