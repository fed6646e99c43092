"""What the gateway tells the engine about why a request changes versions (engine/events.py):
the S3 event name of what it creates or changes, who asked, from where, with which request id."""

from __future__ import annotations

from appliance.engine import Cause

from .ctx import Ctx

# operation -> the ObjectCreated event of the versions it creates
_CREATED = {"PutObject": "Put", "PostObject": "Post", "CopyObject": "Copy",
            "CompleteMultipartUpload": "CompleteMultipartUpload"}
# operation -> the event of the in-place change it makes
_CHANGED = {"PutObjectTagging": "ObjectTagging:Put", "DeleteObjectTagging": "ObjectTagging:Delete",
            "PutObjectAcl": "ObjectAcl:Put"}


def cause_of(ctx: Ctx) -> Cause:
    op = ctx.route.op.value
    principal = ctx.principal.arn or ctx.principal.account_arn if ctx.principal.kind != "anonymous" else "anonymous"
    return Cause(created=_CREATED.get(op, "Put"), event=_CHANGED.get(op, ""), principal=principal,
                 source_ip=ctx.req.remote.rsplit(":", 1)[0] if ctx.req.remote else "", request_id=ctx.request_id)
