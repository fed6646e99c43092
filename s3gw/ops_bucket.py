"""Service and bucket operations, and DeleteObjects."""

from __future__ import annotations

from appliance.config import default_bucket_encryption
from appliance.engine import BucketRecord
from appliance.engine.errors import BucketAlreadyOwnedByYou, StowageError

from . import acl as acls
from . import bucketpages
from .authz import BUCKET_OWNER_ENFORCED, Check, etag_read, new_bucket_settings, ownership_of_header
from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error, from_exception
from .http import Response
from .objlock import BUCKET_LOCK_HEADER
from .ops_lock import may_bypass
from .refusedheaders import one_value_served, refuse_version_condition
from .routing import Op
from .xmlio import doc, el, esc, iso_time, parse_delete, parse_location, parse_versioning

XML = ("Content-Type", "application/xml")
LEGACY_REGION = "us-east-1"


async def list_buckets(ctx: Ctx) -> Response:
    buckets = await ctx.authz.visible_buckets(ctx.principal, ctx.conditions)
    shown = bucketpages.page(buckets, ctx.query, ctx.cfg.s3.region)
    items = "".join(f"<Bucket>{el('Name', b.name)}{el('CreationDate', iso_time(b.created_ns))}"
                    f"{el('BucketRegion', ctx.cfg.s3.region)}</Bucket>" for b in shown.buckets)
    return Response(200, [XML], doc("ListAllMyBucketsResult", [
        ctx.directory.owner_xml(ctx.requester), f"<Buckets>{items}</Buckets>",
        el("ContinuationToken", shown.continuation_token), el("Prefix", shown.prefix)]))


async def create_bucket(ctx: Ctx) -> Response:
    """A new bucket, owned by its creator, with the configured (or requested) Object Ownership
    and public access block. An existing name: BucketAlreadyExists unless the caller owns it
    (root owns every bucket of the account); then AWS's us-east-1 legacy answer, 200 with the
    bucket's ACL reset to private, or BucketAlreadyOwnedByYou in any other region."""
    await read_xml(ctx, parse_location, 64 * 1024)  # any region is accepted: one appliance serves them all
    h = ctx.req.headers
    _check_namespace(h)
    default_ownership, pab = new_bucket_settings(ctx.cfg)
    ownership = ownership_of_header(h)
    stored_ownership = default_ownership if ownership is None else ownership
    owner = ctx.requester
    asked = acls.header_acl(h, owner, owner, for_bucket=True, known=ctx.directory.known)
    if asked is not None:
        if (stored_ownership or ctx.cfg.s3.default_object_ownership) == BUCKET_OWNER_ENFORCED \
                and not acls.owner_only(asked, [owner]):
            raise S3Error("InvalidBucketAclWithObjectOwnership")
        if pab is not None and pab["BlockPublicAcls"] and acls.is_public(asked):
            raise S3Error("AccessDenied", "The ACL is public and new buckets block public ACLs")
    with_lock = _lock_header(h)
    try:
        await ctx.store.create_bucket(ctx.bucket, owner=owner, acl=acls.normalise(asked, owner) if asked else None,
                                      ownership=stored_ownership, public_access_block=pab,
                                      encryption=default_bucket_encryption(ctx.cfg), object_lock=with_lock)
    except BucketAlreadyOwnedByYou:
        existing = ctx.store.get_bucket(ctx.bucket)
        if ctx.principal.kind != "root" and ctx.directory.owner_id(existing.owner) != owner:
            raise S3Error("BucketAlreadyExists", BucketName=ctx.bucket) from None
        if ctx.cfg.s3.region != LEGACY_REGION:
            raise

        def reset(rec: BucketRecord) -> None:
            rec.acl = None

        await ctx.store.update_bucket(ctx.bucket, reset)
    return Response(200, [("Location", f"/{ctx.bucket}")])


def _check_namespace(headers: dict[str, str]) -> None:
    """x-amz-bucket-namespace: every bucket here is in the one (global) namespace; an account
    regional bucket, with its naming rules, is not implemented."""
    one_value_served(headers, "x-amz-bucket-namespace", "global", "account-regional",
                     "Account regional bucket namespaces are not implemented.")


def _lock_header(headers: dict[str, str]) -> bool:
    """x-amz-bucket-object-lock-enabled: a versioned bucket with object lock (docs/object-lock.md)."""
    value = headers.get(BUCKET_LOCK_HEADER, "false").strip().lower()
    if value not in ("true", "false"):
        raise S3Error("InvalidArgument", "Invalid x-amz-bucket-object-lock-enabled header",
                      ArgumentName=BUCKET_LOCK_HEADER, ArgumentValue=value)
    return value == "true"


async def delete_bucket(ctx: Ctx) -> Response:
    await ctx.store.delete_bucket(ctx.bucket)
    return Response(204)


async def head_bucket(ctx: Ctx) -> Response:
    ctx.store.require_bucket(ctx.bucket)
    return Response(200, [("x-amz-bucket-region", ctx.cfg.s3.region)])


async def get_bucket_location(ctx: Ctx) -> Response:
    ctx.store.require_bucket(ctx.bucket)
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
    replication = ctx.events.replication if ctx.events is not None else None
    await ctx.store.set_versioning(ctx.bucket, status, suspendable=(
        None if replication is None else lambda t: replication.pins_versioning(t, ctx.bucket)))
    return Response(200)


async def delete_objects(ctx: Ctx) -> Response:
    quiet, objects = await read_xml(ctx, parse_delete, 2 * 1024 * 1024, digest_required=True)
    ctx.store.require_bucket(ctx.bucket)
    out: list[str] = []
    for entry in objects:
        key, vid = entry.key, entry.version_id
        try:
            if vid == "":
                raise S3Error("InvalidArgument", "Version id cannot be the empty string")
            refuse_version_condition(entry.etag, vid)  # as If-Match beside a versionId on DeleteObject
            conditions = ctx.conditions if entry.etag is None else {**ctx.conditions, "s3:if-match": entry.etag}
            checks = (Check("s3:DeleteObjectVersion" if vid is not None else "s3:DeleteObject", ctx.bucket, key, vid),
                      *etag_read(Op.DeleteObject, ctx.bucket, key, entry.etag))
            for check in checks:
                if not await ctx.authz.decide(ctx.principal, check, conditions, ctx.view):
                    raise S3Error("AccessDenied")
            bypass = vid is not None and await may_bypass(ctx, key, vid)
            res = await ctx.store.delete_object(ctx.bucket, key, vid, bypass_governance=bypass, if_match=entry.etag)
        except (StowageError, S3Error) as exc:
            err = from_exception(exc)
            out.append(f"<Error>{el('Key', key)}{el('VersionId', vid)}{el('Code', err.code)}"
                       f"{el('Message', err.message)}</Error>")
            continue
        if quiet:
            continue
        parts = [el("Key", key), el("VersionId", vid)]
        if res.delete_marker:  # a marker made, or one deleted by its version id (AWS names it then too)
            parts.append(el("DeleteMarker", True))
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
    Op.DeleteObjects: delete_objects,
}
