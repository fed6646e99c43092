"""The target side of an SSE-C replica sent as ciphertext (appliance/services/sealedpush.py,
appliance/engine/sealed.py).

A PutObject carrying SEALED_HEADER (base64 of the JSON description of the sealed segments) is
accepted only as a replica: the replica version id, authorized by s3:ReplicateObject (app.py
set the replica cause before this runs). Its body is the source's stored blocks, segment after
segment; the engine stores them as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from appliance.engine import SealedObject, SealedSegment, put_sealed

from .body import ObjectBody
from .ctx import Ctx
from .errors import S3Error
from .http import Response
from .objmeta import put_meta
from .ops_access import new_object_acl
from .ops_lock import with_lock
from .replica import VERSION_HEADER

SEALED_HEADER = "x-stowage-replica-sealed"  # the same name as appliance/services/sealedpush.py's


def _bad(why: str) -> S3Error:
    return S3Error("InvalidArgument", f"Invalid sealed replica description: {why}.", ArgumentName=SEALED_HEADER)


def _ints(raw: Any) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool)


def parse_sealed(raw: str) -> SealedObject:
    """The description, every field's type checked (SealedObject.check does the rest)."""
    try:
        doc = json.loads(base64.b64decode(raw, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("not base64 of JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise _bad("unknown version")
    segs = doc.get("segments")
    if not isinstance(segs, list) or not all(
            isinstance(s, dict) and isinstance(s.get("cipher_id"), str) and isinstance(s.get("enc"), dict)
            and all(_ints(s.get(n)) for n in ("length", "block_size", "plain")) for s in segs):
        raise _bad("segments")
    checksums, parts, part_checksums = doc.get("checksums"), doc.get("parts"), doc.get("part_checksums")
    if not (_ints(doc.get("size")) and isinstance(doc.get("etag"), str) and isinstance(doc.get("sse"), dict)
            and isinstance(checksums, dict) and all(isinstance(v, str) for v in checksums.values())
            and isinstance(doc.get("checksum_type"), str)
            and isinstance(parts, list) and all(_ints(p) for p in parts)
            and isinstance(part_checksums, list) and all(
                isinstance(c, dict) and all(isinstance(v, str) for v in c.values()) for c in part_checksums)):
        raise _bad("fields")
    return SealedObject(doc["size"], doc["etag"], doc["sse"],
                        [SealedSegment(s["cipher_id"], s["length"], s["block_size"], s["plain"], s["enc"])
                         for s in segs], checksums, doc["checksum_type"], parts, part_checksums)


async def put_sealed_replica(ctx: Ctx) -> Response:
    if VERSION_HEADER not in ctx.req.headers:  # with it, app.py required s3:ReplicateObject already
        raise S3Error("AccessDenied", f"{SEALED_HEADER} is taken from replicas only.")
    obj = parse_sealed(ctx.req.headers[SEALED_HEADER])
    meta = with_lock(ctx, put_meta(ctx.req.headers))
    meta.owner, meta.acl = new_object_acl(ctx)
    v = await put_sealed(ctx.store, ctx.bucket, ctx.key, meta, obj, ObjectBody(ctx).stream().__aiter__())
    return Response(200, [("ETag", f'"{v.etag}"'), ("x-amz-version-id", v.version_id)])
