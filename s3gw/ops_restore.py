"""RestoreObject, and the x-amz-restore header of HEAD and GET (docs/lifecycle.md).

An archived version (GLACIER, DEEP_ARCHIVE) is read only through a restore copy: the request
is answered 202 when the restore is queued, 200 when a finished one gets a new expiry,
409 RestoreAlreadyInProgress while one runs, 403 InvalidObjectState for a version of another
class. Select requests (Type SELECT) and OutputLocation are not implemented (501).
"""

from __future__ import annotations

from appliance.engine import ObjectVersion

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .numbers import digits
from .routing import Op
from .xmlio import children, http_date, parse, text

RESTORE_DOC = 64 * 1024
MAX_DAYS = 36500
TIERS = ("Expedited", "Standard", "Bulk")


def parse_restore(body: bytes) -> tuple[int, str]:
    """(Days, Tier) of a RestoreRequest (Days 0: none given, as for an INTELLIGENT_TIERING object)."""
    root = parse(body, "RestoreRequest")
    if any(c.tag in ("Type", "SelectParameters", "OutputLocation") for c in root):
        raise S3Error("NotImplemented", "Select requests and restores to an output location are not implemented.")
    if any(c.tag not in ("Days", "GlacierJobParameters", "Tier", "Description") for c in root):
        raise S3Error("MalformedXML")
    raw = text(root, "Days")
    if raw is None:
        days = 0
    else:
        value = digits(raw.strip(), 9)
        if value is None:
            raise S3Error("MalformedXML")
        days = value
    if raw is not None and not 1 <= days <= MAX_DAYS:
        raise S3Error("InvalidArgument", "Days must be a positive integer")
    tier = text(root, "Tier")
    for job in children(root, "GlacierJobParameters"):
        if any(c.tag != "Tier" for c in job):
            raise S3Error("MalformedXML")
        tier = text(job, "Tier")
    tier = (tier or "Standard").strip()
    if tier not in TIERS:
        raise S3Error("MalformedXML")
    return days, tier


async def restore_object(ctx: Ctx) -> Response:
    days, tier = await read_xml(ctx, parse_restore, RESTORE_DOC)
    vid = ctx.query.get("versionId") or None
    v = ctx.store.head_object(ctx.bucket, ctx.key, vid)
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    if not days and v.storage_class != "INTELLIGENT_TIERING":  # an archive class's copy needs its Days
        raise S3Error("MalformedXML")
    queued = await ctx.store.request_restore(v, days, tier)
    return Response(202 if queued else 200)


def restore_headers(ctx: Ctx, v: ObjectVersion) -> list[tuple[str, str]]:
    """x-amz-restore of an archived version that has a restore (queued or done)."""
    rec = ctx.store.restore_state(v)
    if rec is None:
        return []
    if rec.ongoing:
        return [("x-amz-restore", 'ongoing-request="true"')]
    return [("x-amz-restore", f'ongoing-request="false", expiry-date="{http_date(rec.expiry_ns)}"')]


OPS: dict[str, OpHandler] = {Op.RestoreObject: restore_object}
