"""S3 server access logging settings: GetBucketLogging, PutBucketLogging.

The settings are the bucket's logging record (appliance/engine/logstore.py); the appliance's
delivery worker (appliance/s3accesslog.py) writes the log objects. PutBucketLogging checks what
AWS checks: the target bucket exists (InvalidTargetBucketForLogging otherwise), and, since the
log objects are written on the caller's say-so, that the caller may s3:PutObject into it.
An empty BucketLoggingStatus turns logging off. TargetGrants and a PartitionedPrefix key format
are refused (NotImplemented) rather than accepted and ignored.
"""

from __future__ import annotations

from appliance.engine import BucketLoggingRecord
from appliance.engine.errors import NoSuchBucket

from .authz import Check
from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op
from .xmlio import children, doc, el, parse, text

XML = ("Content-Type", "application/xml")
LOGGING_DOC = 64 * 1024
MAX_PREFIX = 512  # a key prefix; the log object's name adds 37 characters


def parse_logging(body: bytes) -> tuple[str, str] | None:
    """(target bucket, prefix) of a BucketLoggingStatus document, or None to turn logging off."""
    root = parse(body, "BucketLoggingStatus")
    if len(root) == 0:
        return None
    enabled = children(root, "LoggingEnabled")
    if len(enabled) != 1 or len(root) != 1:
        raise S3Error("MalformedXML")
    node = enabled[0]
    if children(node, "TargetGrants"):
        raise S3Error("NotImplemented", "TargetGrants are not supported: log objects are owned by the target "
                      "bucket's owner.")
    for fmt in children(node, "TargetObjectKeyFormat"):
        if children(fmt, "PartitionedPrefix"):
            raise S3Error("NotImplemented", "PartitionedPrefix is not supported; use SimplePrefix.")
    known = {"TargetBucket", "TargetPrefix", "TargetObjectKeyFormat"}
    if any(c.tag not in known for c in node):
        raise S3Error("MalformedXML")
    target = text(node, "TargetBucket")
    prefix = text(node, "TargetPrefix", "") or ""
    if not target:
        raise S3Error("MalformedXML")
    if len(prefix) > MAX_PREFIX:
        raise S3Error("InvalidArgument", f"TargetPrefix is longer than {MAX_PREFIX} characters.")
    return target, prefix


async def put_bucket_logging(ctx: Ctx) -> Response:
    wanted = await read_xml(ctx, parse_logging, LOGGING_DOC)
    old = ctx.store.bucket_logging(ctx.bucket)
    access_log = old.access_log if old is not None else False
    if wanted is None:
        await ctx.store.set_bucket_logging(BucketLoggingRecord(ctx.bucket, access_log))
        return Response(200)
    target, prefix = wanted
    try:
        ctx.store.require_bucket(target)
    except NoSuchBucket:
        raise S3Error("InvalidTargetBucketForLogging", "The target bucket for logging does not exist",
                      TargetBucket=target) from None
    if not await ctx.authz.decide(ctx.principal, Check("s3:PutObject", target, prefix), ctx.conditions):
        raise S3Error("InvalidTargetBucketForLogging", "You must have s3:PutObject permission on the target bucket",
                      TargetBucket=target)
    await ctx.store.set_bucket_logging(BucketLoggingRecord(ctx.bucket, access_log, target, prefix))
    return Response(200)


async def get_bucket_logging(ctx: Ctx) -> Response:
    rec = ctx.store.bucket_logging(ctx.bucket)
    if rec is None or not rec.target_bucket:
        return Response(200, [XML], doc("BucketLoggingStatus", []))
    inner = el("TargetBucket", rec.target_bucket) + el("TargetPrefix", rec.target_prefix)
    return Response(200, [XML], doc("BucketLoggingStatus", [f"<LoggingEnabled>{inner}</LoggingEnabled>"]))


OPS: dict[str, OpHandler] = {
    Op.GetBucketLogging: get_bucket_logging,
    Op.PutBucketLogging: put_bucket_logging,
}
