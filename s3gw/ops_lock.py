"""Object lock operations (Get/PutObjectLockConfiguration, Get/PutObjectRetention,
Get/PutObjectLegalHold) and the lock parts of the object operations: the settings a write asks
for, the bypass of GOVERNANCE retention, and what HEAD/GET report.

The bypass is what the gateway decides: `x-amz-bypass-governance-retention: true` from a caller
the authorizer allows s3:BypassGovernanceRetention on the object. The engine does the rest.
"""

from __future__ import annotations

import time

from appliance.engine import LockConfig, ObjectVersion, PutMeta, UploadRecord

from . import objlock
from .authz import Check
from .body import read_xml
from .checksums import BodyChecks
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op

XML = ("Content-Type", "application/xml")
LOCK_DOC = 64 * 1024
NOT_ENABLED = "Bucket is missing Object Lock Configuration"
# Writes whose x-amz-object-lock-* headers are settings of the version they make.
LOCK_HEADER_OPS = frozenset({Op.PutObject, Op.CopyObject, Op.CreateMultipartUpload})


def _config(ctx: Ctx) -> LockConfig | None:
    """The request's bucket's object lock, as read when the request began (it is never disabled)."""
    return LockConfig.of(ctx.view.record) if ctx.view is not None else ctx.store.lock_config(ctx.bucket)


def _version_id(ctx: Ctx) -> str | None:
    vid = ctx.query.get("versionId")
    if vid == "":
        raise S3Error("InvalidArgument", "Version id cannot be the empty string", ArgumentName="versionId",
                      ArgumentValue="")
    return vid


# --- the lock parts of writes, deletes and reads ------------------------------------------------


def asked_lock(ctx: Ctx) -> objlock.LockRequest:
    """The lock settings of the request's x-amz-object-lock-* headers; InvalidRequest when it has
    some and the bucket has no object lock."""
    asked = objlock.from_headers(ctx.req.headers, time.time_ns())
    if asked.asked and _config(ctx) is None:
        raise S3Error("InvalidRequest", NOT_ENABLED)
    return asked


def with_lock(ctx: Ctx, meta: PutMeta) -> PutMeta:
    """meta with the lock settings of the request's headers (in place)."""
    asked = asked_lock(ctx)
    meta.lock_mode, meta.retain_until_ns, meta.legal_hold = asked.mode, asked.until_ns, bool(asked.legal_hold)
    return meta


def _will_lock(ctx: Ctx, mode: str, legal_hold: bool) -> bool:
    config = _config(ctx)
    return bool(mode or legal_hold or (config is not None and config.default is not None))


def check_put_integrity(ctx: Ctx, meta: PutMeta, checks: BodyChecks) -> None:
    """A body that will be locked (by its headers or the bucket's default) needs an integrity
    header, as on AWS."""
    if _will_lock(ctx, meta.lock_mode, meta.legal_hold):
        objlock.require_integrity(checks)


def check_part_integrity(ctx: Ctx, up: UploadRecord, checks: BodyChecks) -> None:
    """The same for a part of an upload whose object will be locked."""
    if _will_lock(ctx, up.lock_mode, up.legal_hold):
        objlock.require_integrity(checks)


async def may_bypass(ctx: Ctx, key: str, version_id: str | None) -> bool:
    """Whether the request asks to bypass GOVERNANCE retention and may."""
    if not objlock.bypass_asked(ctx.req.headers):
        return False
    check = Check("s3:BypassGovernanceRetention", ctx.bucket, key, version_id)
    return await ctx.authz.decide(ctx.principal, check, ctx.conditions, ctx.view)


async def lock_headers(ctx: Ctx, v: ObjectVersion) -> list[tuple[str, str]]:
    """The lock headers of a HEAD/GET, each shown to a caller allowed to read it."""
    if not v.lock_mode and not v.legal_hold:
        return []

    async def allowed(action: str) -> bool:
        return await ctx.authz.decide(ctx.principal, Check(action, ctx.bucket, ctx.key, ctx.query.get("versionId")),
                                      ctx.conditions, ctx.view)

    retention = bool(v.lock_mode) and await allowed("s3:GetObjectRetention")
    legal_hold = v.legal_hold and await allowed("s3:GetObjectLegalHold")
    return objlock.version_headers(v, retention=retention, legal_hold=legal_hold)


# --- before authorization: condition keys -------------------------------------------------------


async def read_lock_document(ctx: Ctx) -> objlock.LockRequest | None:
    """PutObjectRetention's or PutObjectLegalHold's document: app.py reads it before authorization,
    since its settings are condition keys, and hands it to the handler (Ctx.body_lock)."""
    if ctx.route.op is Op.PutObjectRetention:
        now = time.time_ns()
        return await read_xml(ctx, lambda body: objlock.parse_retention(body, now), LOCK_DOC, digest_required=True)
    if ctx.route.op is Op.PutObjectLegalHold:
        return await read_xml(ctx, objlock.parse_legal_hold, LOCK_DOC, digest_required=True)
    return None


def lock_conditions(ctx: Ctx, body_lock: objlock.LockRequest | None) -> dict[str, str]:
    """The s3:object-lock-* condition keys of the request: from its document, or from the
    headers of a write."""
    now = time.time_ns()
    if body_lock is not None:
        return body_lock.conditions(now)
    if ctx.route.op in LOCK_HEADER_OPS:
        return objlock.from_headers(ctx.req.headers, now).conditions(now)
    return {}


# --- the lock operations ------------------------------------------------------------------------


async def put_lock_configuration(ctx: Ctx) -> Response:
    config = await read_xml(ctx, objlock.parse_configuration, LOCK_DOC, digest_required=True)
    await ctx.store.set_object_lock(ctx.bucket, config)
    return Response(200)


async def get_lock_configuration(ctx: Ctx) -> Response:
    config = ctx.store.lock_config(ctx.bucket)
    if config is None:
        raise S3Error("ObjectLockConfigurationNotFoundError")
    return Response(200, [XML], objlock.configuration_xml(config))


def _document(ctx: Ctx) -> objlock.LockRequest:
    if ctx.body_lock is None:  # app.py reads it before authorization: it supplies condition keys
        raise S3Error("InternalError")
    return ctx.body_lock


async def put_retention(ctx: Ctx) -> Response:
    asked = _document(ctx)
    vid = _version_id(ctx)
    bypass = await may_bypass(ctx, ctx.key, vid)
    await ctx.store.set_retention(ctx.bucket, ctx.key, vid, asked.mode, asked.until_ns, bypass_governance=bypass)
    return Response(200)


async def get_retention(ctx: Ctx) -> Response:
    v = ctx.store.version_for_lock(ctx.bucket, ctx.key, _version_id(ctx))
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    if not v.lock_mode:
        raise S3Error("NoSuchObjectLockConfiguration")
    return Response(200, [XML], objlock.retention_xml(v))


async def put_legal_hold(ctx: Ctx) -> Response:
    asked = _document(ctx)
    await ctx.store.set_legal_hold(ctx.bucket, ctx.key, _version_id(ctx), bool(asked.legal_hold))
    return Response(200)


async def get_legal_hold(ctx: Ctx) -> Response:
    v = ctx.store.version_for_lock(ctx.bucket, ctx.key, _version_id(ctx))
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    return Response(200, [XML], objlock.legal_hold_xml(v))


OPS: dict[str, OpHandler] = {
    Op.PutObjectLockConfiguration: put_lock_configuration,
    Op.GetObjectLockConfiguration: get_lock_configuration,
    Op.PutObjectRetention: put_retention,
    Op.GetObjectRetention: get_retention,
    Op.PutObjectLegalHold: put_legal_hold,
    Op.GetObjectLegalHold: get_legal_hold,
}
