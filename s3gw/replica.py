"""Replicas arriving from a replicating Stowage box (appliance/services/replicate.py).

A replica write carries the version id it keeps in x-stowage-replica-version-id: a PutObject or
CompleteMultipartUpload (the version it makes gets that id) or a DeleteObject without a version
id (the delete marker it adds does); an UploadPart of an SSE-C replica's ciphertext carries it too
(sealedreplica.py). Such a request needs, beyond its own action, the permission
AWS defines for replication — s3:ReplicateObject, s3:ReplicateDelete — on the object, so that no
other principal can choose version ids or make a REPLICA. The engine is told through the event
cause (Cause.replica): the version keeps its id, is marked REPLICA, and is never replicated again.
"""

from __future__ import annotations

from dataclasses import replace

from appliance.engine import Cause
from appliance.engine.errors import NoSuchKey, NoSuchVersion

from .authz import Authorizer, BucketView, Check, Conditions
from .ctx import Ctx
from .errors import S3Error
from .http import Response
from .routing import VERSION_ID, Op

VERSION_HEADER = "x-stowage-replica-version-id"  # the same name as appliance/services/s3push.py's
_ACTIONS = {Op.PutObject: "s3:ReplicateObject", Op.CompleteMultipartUpload: "s3:ReplicateObject",
            Op.UploadPart: "s3:ReplicateObject",  # a sealed part (sealedreplica.py)
            Op.DeleteObject: "s3:ReplicateDelete", Op.PutObjectTagging: "s3:ReplicateTags",
            Op.DeleteObjectTagging: "s3:ReplicateTags"}
_NEW_VERSION = frozenset({Op.PutObject, Op.CompleteMultipartUpload, Op.DeleteObject})


async def authorize(ctx: Ctx, authz: Authorizer, conditions: Conditions, view: BucketView | None) -> str:
    """The version id a replica request keeps ("" when the request is not one), after checking it
    may write one."""
    vid = ctx.req.headers.get(VERSION_HEADER)
    if vid is None:
        return ""
    action = _ACTIONS.get(ctx.route.op)
    if action is None or (ctx.route.op is Op.DeleteObject and "versionId" in ctx.query):
        raise S3Error("InvalidRequest", f"{VERSION_HEADER} applies to PutObject, CompleteMultipartUpload, "
                      "DeleteObject without a version id, object tagging and UploadPart only.")
    if not VERSION_ID.fullmatch(vid) or vid == "null":
        raise S3Error("InvalidArgument", "Invalid replica version id.", ArgumentName=VERSION_HEADER,
                      ArgumentValue=vid)
    await authz.require(ctx.principal, [Check(action, ctx.bucket, ctx.key)], conditions, view)
    if ctx.store.get_bucket(ctx.bucket).versioning != "Enabled":
        raise S3Error("InvalidRequest", "A replica needs versioning enabled on the destination bucket.")
    return vid


def cause(base: Cause, vid: str) -> Cause:
    return replace(base, replica=True, replica_version_id=vid) if vid else base


def existing(ctx: Ctx, vid: str) -> Response | None:
    """The answer to a replica of a version the bucket holds already (the source retried after a
    crash): the same version again is never written twice. (Tagging changes a version in place.)
    This answers before the body is read; a copy that commits meanwhile is refused by the engine
    at commit (Txn.put_version: VersionExists, the same answer)."""
    if ctx.route.op not in _NEW_VERSION:
        return None
    try:
        v = ctx.store.head_object(ctx.bucket, ctx.key, vid)
    except (NoSuchKey, NoSuchVersion):  # not here yet
        return None
    if ctx.route.op is Op.DeleteObject and v.delete_marker:
        return Response(204, [("x-amz-version-id", vid), ("x-amz-delete-marker", "true")])
    raise S3Error("InvalidRequest", "This version exists on the destination already.")


def status_headers(ctx: Ctx, bucket: str, key: str, version_id: str) -> list[tuple[str, str]]:
    """x-amz-replication-status of a version (PENDING, COMPLETED, FAILED; REPLICA on a target)."""
    svc = ctx.events.replication if ctx.events is not None else None
    state = svc.state_of_key(bucket, key, version_id) if svc is not None else None
    return [("x-amz-replication-status", state.status)] if state is not None else []
