"""Access-control operations: bucket policies (and their public status), bucket and object ACLs,
Object Ownership controls, the public access block; and the owner and ACL of a new object.

Authorization has already run (authz.py); these handlers apply S3's rules on what may be stored:
MalformedPolicy for an invalid policy, AccessDenied for a public policy under BlockPublicPolicy or
a public ACL under BlockPublicAcls, AccessControlListNotSupported for any ACL but the owner's own
where BucketOwnerEnforced disables ACLs. docs/access-control.md describes the whole.
"""

from __future__ import annotations

from functools import partial

import trio

from appliance.engine import BucketRecord, ObjectVersion

from . import acl as acls
from .authz import (
    BUCKET_OWNER_ENFORCED,
    BUCKET_OWNER_PREFERRED,
    OBJECT_WRITER,
    PAB_FIELDS,
    BucketView,
    PublicAccessBlock,
    parse_bucket_policy,
)
from .body import read_small_body, read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op
from .xmlio import children, doc, el, parse, text

XML = ("Content-Type", "application/xml")
SMALL_DOC = 64 * 1024
ACL_DOC = 1024 * 1024
POLICY_DOC = 64 * 1024  # the policy module refuses more than 20 KiB with a MalformedPolicy naming the size


def _view(ctx: Ctx) -> BucketView:
    if ctx.view is None:  # app.py looks the bucket up for every bucket-scoped operation
        raise S3Error("InternalError")
    return ctx.view


# --- the owner and ACL of what a request creates ----------------------------------------------


def new_object_acl(ctx: Ctx) -> tuple[str, acls.ACL | None]:
    """(owner, ACL) of the object a PutObject, CopyObject or CreateMultipartUpload creates, by
    the bucket's Object Ownership: the writer owns it (ObjectWriter), the bucket owner does when
    the writer grants it bucket-owner-full-control (BucketOwnerPreferred), or always, with ACLs
    disabled (BucketOwnerEnforced: only owner-only ACLs are accepted, and none is stored)."""
    view = _view(ctx)
    h = ctx.req.headers
    known = ctx.directory.known
    if not view.acls_enabled:
        asked = acls.header_acl(h, view.owner, view.owner, for_bucket=False, known=known)
        if asked is not None and not acls.owner_only(asked, [view.owner]):
            raise S3Error("AccessControlListNotSupported")
        return view.owner, None
    owner = ctx.requester
    if view.ownership == BUCKET_OWNER_PREFERRED and h.get("x-amz-acl", "").strip() == "bucket-owner-full-control":
        owner = view.owner
    asked = acls.header_acl(h, owner, view.owner, for_bucket=False, known=known)
    if asked is None:
        return owner, None
    if view.pab.block_public_acls and acls.is_public(asked):
        raise S3Error("AccessDenied", "The request sets a public ACL and the bucket blocks public ACLs")
    return owner, acls.normalise(asked, owner)


async def _requested_acl(ctx: Ctx, owner: str, bucket_owner: str, *, for_bucket: bool) -> acls.ACL:
    """The ACL a PutBucketAcl/PutObjectAcl asks for: its headers or its AccessControlPolicy."""
    known = ctx.directory.known
    asked = acls.header_acl(ctx.req.headers, owner, bucket_owner, for_bucket=for_bucket, known=known)
    body = await read_small_body(ctx, ACL_DOC)
    if not body.strip():
        if asked is None:
            raise S3Error("MissingSecurityHeader", "Your request was missing a required header: x-amz-acl")
        return asked
    if asked is not None:
        raise S3Error("UnexpectedContent", "This request does not support content with ACL headers")
    acp = await trio.to_thread.run_sync(partial(acls.parse_acp, known=known), body)
    if acp.owner and acp.owner != owner:
        raise S3Error("AccessDenied", "The owner of a resource cannot be changed by its ACL")
    return acp.grants


def _acl_response(ctx: Ctx, owner: str, acl: acls.ACL) -> Response:
    d = ctx.directory
    return Response(200, [XML], acls.acp_xml(d.owner_fields(owner), acl, d.owner_fields))


# --- bucket ACL ---------------------------------------------------------------------------------


async def get_bucket_acl(ctx: Ctx) -> Response:
    view = _view(ctx)
    return _acl_response(ctx, view.owner, acls.effective(view.record.acl if view.acls_enabled else None, view.owner))


async def put_bucket_acl(ctx: Ctx) -> Response:
    view = _view(ctx)
    asked = await _requested_acl(ctx, view.owner, view.owner, for_bucket=True)
    if not view.acls_enabled and not acls.owner_only(asked, [view.owner]):
        raise S3Error("AccessControlListNotSupported")
    if view.pab.block_public_acls and acls.is_public(asked):
        raise S3Error("AccessDenied", "The ACL is public and the bucket blocks public ACLs")
    stored = acls.normalise(asked, view.owner)

    def change(rec: BucketRecord) -> None:
        rec.acl = stored

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(200)


# --- object ACL ---------------------------------------------------------------------------------


def _version(ctx: Ctx) -> ObjectVersion:
    vid = ctx.query.get("versionId")
    if vid == "":
        raise S3Error("InvalidArgument", "Version id cannot be the empty string", ArgumentName="versionId",
                      ArgumentValue="")
    v = ctx.store.head_object(ctx.bucket, ctx.key, vid)
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    return v


def _object_owner(ctx: Ctx, v: ObjectVersion) -> str:
    view = _view(ctx)
    return view.owner if not view.acls_enabled else ctx.directory.owner_id(v.owner)


async def get_object_acl(ctx: Ctx) -> Response:
    v = _version(ctx)
    owner = _object_owner(ctx, v)
    acl = acls.effective(v.acl if _view(ctx).acls_enabled else None, owner)
    resp = _acl_response(ctx, owner, acl)
    if v.version_id != "null":
        resp.headers.append(("x-amz-version-id", v.version_id))
    return resp


async def put_object_acl(ctx: Ctx) -> Response:
    view = _view(ctx)
    v = _version(ctx)
    owner = _object_owner(ctx, v)
    asked = await _requested_acl(ctx, owner, view.owner, for_bucket=False)
    if not view.acls_enabled and not acls.owner_only(asked, [view.owner]):
        raise S3Error("AccessControlListNotSupported")
    if view.pab.block_public_acls and acls.is_public(asked):
        raise S3Error("AccessDenied", "The ACL is public and the bucket blocks public ACLs")
    if view.acls_enabled:  # with ACLs disabled an owner-only ACL is accepted and changes nothing
        await ctx.store.set_acl(ctx.bucket, ctx.key, v.version_id, acls.normalise(asked, owner))
    headers = [("x-amz-version-id", v.version_id)] if v.version_id != "null" else []
    return Response(200, headers)


# --- bucket policy ------------------------------------------------------------------------------


async def get_bucket_policy(ctx: Ctx) -> Response:
    rec = _view(ctx).record
    if not rec.policy:
        raise S3Error("NoSuchBucketPolicy", BucketName=ctx.bucket)
    return Response(200, [("Content-Type", "application/json")], rec.policy.encode())


async def put_bucket_policy(ctx: Ctx) -> Response:
    view = _view(ctx)
    body = await read_small_body(ctx, POLICY_DOC)
    parsed = await trio.to_thread.run_sync(parse_bucket_policy, body, ctx.bucket)
    if view.pab.block_public_policy and parsed.public:
        raise S3Error("AccessDenied", "The policy is public and the bucket blocks public policies")

    def change(rec: BucketRecord) -> None:
        rec.policy = parsed.text

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(204)


async def delete_bucket_policy(ctx: Ctx) -> Response:
    def change(rec: BucketRecord) -> None:
        rec.policy = ""

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(204)


async def get_bucket_policy_status(ctx: Ctx) -> Response:
    policy = _view(ctx).policy
    if policy is None:
        raise S3Error("NoSuchBucketPolicy", BucketName=ctx.bucket)
    return Response(200, [XML], doc("PolicyStatus", [el("IsPublic", policy.public)]))


# --- Object Ownership ---------------------------------------------------------------------------


def parse_ownership(body: bytes) -> str:
    root = parse(body, "OwnershipControls")
    rules = children(root, "Rule")
    if len(rules) != 1:
        raise S3Error("MalformedXML")
    value = (text(rules[0], "ObjectOwnership") or "").strip()
    if value not in (OBJECT_WRITER, BUCKET_OWNER_PREFERRED, BUCKET_OWNER_ENFORCED):
        raise S3Error("MalformedXML")
    return value


async def get_ownership_controls(ctx: Ctx) -> Response:
    rec = _view(ctx).record
    default = ctx.cfg.s3.default_object_ownership
    if not rec.ownership and default == OBJECT_WRITER:
        # a bucket that never had controls behaves as ObjectWriter, and S3 says it has none
        raise S3Error("OwnershipControlsNotFoundError", BucketName=ctx.bucket)
    rule = f"<Rule>{el('ObjectOwnership', rec.ownership or default)}</Rule>"
    return Response(200, [XML], doc("OwnershipControls", [rule]))


async def put_ownership_controls(ctx: Ctx) -> Response:
    value = await read_xml(ctx, parse_ownership, SMALL_DOC)
    view = _view(ctx)
    if value == BUCKET_OWNER_ENFORCED and not acls.owner_only(acls.effective(view.record.acl, view.owner),
                                                             [view.owner]):
        # S3 refuses to disable ACLs while the bucket ACL still grants to others
        raise S3Error("InvalidBucketAclWithObjectOwnership")

    def change(rec: BucketRecord) -> None:
        rec.ownership = value

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(200)


async def delete_ownership_controls(ctx: Ctx) -> Response:
    # Without controls a bucket behaves as ObjectWriter; "" is the configured default.
    cleared = "" if ctx.cfg.s3.default_object_ownership == OBJECT_WRITER else OBJECT_WRITER

    def change(rec: BucketRecord) -> None:
        rec.ownership = cleared

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(204)


# --- the public access block --------------------------------------------------------------------


def parse_public_access_block(body: bytes) -> PublicAccessBlock:
    root = parse(body, "PublicAccessBlockConfiguration")
    flags: dict[str, bool] = {}
    for name in PAB_FIELDS:
        value = text(root, name)
        if value is None:
            continue
        word = value.strip().lower()
        if word not in ("true", "false"):
            raise S3Error("MalformedXML")
        flags[name] = word == "true"
    return PublicAccessBlock.of(flags)


async def get_public_access_block(ctx: Ctx) -> Response:
    rec = _view(ctx).record
    if rec.public_access_block is None:
        raise S3Error("NoSuchPublicAccessBlockConfiguration", BucketName=ctx.bucket)
    pab = PublicAccessBlock.of(rec.public_access_block)
    return Response(200, [XML], doc("PublicAccessBlockConfiguration",
                                    [el(name, value) for name, value in zip(PAB_FIELDS, pab.values(), strict=True)]))


async def put_public_access_block(ctx: Ctx) -> Response:
    pab = await read_xml(ctx, parse_public_access_block, SMALL_DOC)

    def change(rec: BucketRecord) -> None:
        rec.public_access_block = pab.to_record()

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(200)


async def delete_public_access_block(ctx: Ctx) -> Response:
    def change(rec: BucketRecord) -> None:
        rec.public_access_block = None

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(204)


OPS: dict[str, OpHandler] = {
    Op.GetBucketAcl: get_bucket_acl,
    Op.PutBucketAcl: put_bucket_acl,
    Op.GetObjectAcl: get_object_acl,
    Op.PutObjectAcl: put_object_acl,
    Op.GetBucketPolicy: get_bucket_policy,
    Op.PutBucketPolicy: put_bucket_policy,
    Op.DeleteBucketPolicy: delete_bucket_policy,
    Op.GetBucketPolicyStatus: get_bucket_policy_status,
    Op.GetBucketOwnershipControls: get_ownership_controls,
    Op.PutBucketOwnershipControls: put_ownership_controls,
    Op.DeleteBucketOwnershipControls: delete_ownership_controls,
    Op.GetPublicAccessBlock: get_public_access_block,
    Op.PutPublicAccessBlock: put_public_access_block,
    Op.DeletePublicAccessBlock: delete_public_access_block,
}
