"""Service and bucket operations, and DeleteObjects."""

from __future__ import annotations

from appliance.engine.errors import StowageError

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error, from_exception
from .http import Response
from .ops_object import acl_xml
from .routing import Op
from .xmlio import doc, el, esc, iso_time, parse_delete, parse_location, parse_versioning

XML = ("Content-Type", "application/xml")


def _owner(owner: str) -> str:
    return f"<Owner><ID>{esc(owner)}</ID><DisplayName>{esc(owner)}</DisplayName></Owner>"


async def list_buckets(ctx: Ctx) -> Response:
    buckets = ctx.store.list_buckets()
    items = "".join(f"<Bucket>{el('Name', b.name)}{el('CreationDate', iso_time(b.created_ns))}"
                    f"{el('BucketRegion', ctx.cfg.s3.region)}</Bucket>" for b in buckets)
    return Response(200, [XML], doc("ListAllMyBucketsResult", [_owner(ctx.owner), f"<Buckets>{items}</Buckets>"]))


async def create_bucket(ctx: Ctx) -> Response:
    await read_xml(ctx, parse_location, 64 * 1024)  # any region is accepted: one appliance serves them all
    await ctx.store.create_bucket(ctx.bucket, owner=ctx.owner)
    return Response(200, [("Location", f"/{ctx.bucket}")])


async def delete_bucket(ctx: Ctx) -> Response:
    await ctx.store.delete_bucket(ctx.bucket)
    return Response(204)


async def head_bucket(ctx: Ctx) -> Response:
    ctx.store.get_bucket(ctx.bucket)
    return Response(200, [("x-amz-bucket-region", ctx.cfg.s3.region)])


async def get_bucket_location(ctx: Ctx) -> Response:
    ctx.store.get_bucket(ctx.bucket)
    region = ctx.cfg.s3.region
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
            f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{esc(region) if region != "us-east-1" else ""}'
            "</LocationConstraint>").encode()
    return Response(200, [XML], body)


async def get_bucket_versioning(ctx: Ctx) -> Response:
    b = ctx.store.get_bucket(ctx.bucket)
    return Response(200, [XML], doc("VersioningConfiguration", [el("Status", b.versioning or None)]))


async def put_bucket_versioning(ctx: Ctx) -> Response:
    status = await read_xml(ctx, parse_versioning, 64 * 1024)
    await ctx.store.set_versioning(ctx.bucket, status)
    return Response(200)


async def get_bucket_acl(ctx: Ctx) -> Response:
    b = ctx.store.get_bucket(ctx.bucket)
    return Response(200, [XML], acl_xml(b.owner or ctx.owner))


async def delete_objects(ctx: Ctx) -> Response:
    quiet, objects = await read_xml(ctx, parse_delete, 2 * 1024 * 1024)
    ctx.store.get_bucket(ctx.bucket)
    out: list[str] = []
    for key, vid in objects:
        try:
            if vid == "":
                raise S3Error("InvalidArgument", "Version id cannot be the empty string")
            res = await ctx.store.delete_object(ctx.bucket, key, vid)
        except (StowageError, S3Error) as exc:
            err = from_exception(exc)
            out.append(f"<Error>{el('Key', key)}{el('VersionId', vid)}{el('Code', err.code)}"
                       f"{el('Message', err.message)}</Error>")
            continue
        if quiet:
            continue
        parts = [el("Key", key), el("VersionId", vid)]
        if res.delete_marker:
            parts.append(el("DeleteMarker", True))
            if vid is None:
                parts.append(el("DeleteMarkerVersionId", res.version_id))
        out.append("<Deleted>" + "".join(parts) + "</Deleted>")
    return Response(200, [XML], doc("DeleteResult", out))


OPS: dict[str, OpHandler] = {
    Op.ListBuckets: list_buckets,
    Op.CreateBucket: create_bucket,
    Op.DeleteBucket: delete_bucket,
    Op.HeadBucket: head_bucket,
    Op.GetBucketLocation: get_bucket_location,
    Op.GetBucketVersioning: get_bucket_versioning,
    Op.PutBucketVersioning: put_bucket_versioning,
    Op.GetBucketAcl: get_bucket_acl,
    Op.DeleteObjects: delete_objects,
}
