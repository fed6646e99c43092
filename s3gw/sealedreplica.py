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

from appliance.engine import SealedObject, SealedSegment, complete_sealed, put_sealed, put_sealed_part

from .body import ObjectBody, read_xml
from .ctx import Ctx
from .errors import S3Error
from .http import Response
from .objmeta import put_meta
from .ops_access import new_object_acl
from .ops_lock import with_lock
from .replica import VERSION_HEADER
from .xmlio import doc, el, parse_complete

SEALED_HEADER = "x-stowage-replica-sealed"  # the same name as appliance/services/sealedpush.py's


def _bad(why: str) -> S3Error:
    return S3Error("InvalidArgument", f"Invalid sealed replica description: {why}.", ArgumentName=SEALED_HEADER)


def _ints(raw: Any) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool)


def _document(raw: str) -> dict[str, Any]:
    try:
        doc = json.loads(base64.b64decode(raw, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("not base64 of JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise _bad("unknown version")
    return doc


def _segment(s: Any) -> SealedSegment:
    if not (isinstance(s, dict) and isinstance(s.get("cipher_id"), str) and isinstance(s.get("enc"), dict)
            and all(_ints(s.get(n)) for n in ("length", "block_size", "plain"))
            and all(_ints(s.get(n, 0)) for n in ("offset", "used"))):
        raise _bad("segments")
    return SealedSegment(s["cipher_id"], s["length"], s["block_size"], s["plain"], s["enc"], s.get("offset", 0),
                         s.get("used", 0))


def parse_sealed(raw: str, *, with_segments: bool = True) -> SealedObject:
    """The description, every field's type checked (SealedObject.check does the rest);
    with_segments=False: a sealed upload's completion, whose segments are its parts."""
    doc = _document(raw)
    segs = doc.get("segments") if with_segments else []
    if not isinstance(segs, list):
        raise _bad("segments")
    checksums, parts, part_checksums = doc.get("checksums"), doc.get("parts"), doc.get("part_checksums")
    if not (_ints(doc.get("size")) and isinstance(doc.get("etag"), str) and isinstance(doc.get("sse"), dict)
            and isinstance(checksums, dict) and all(isinstance(v, str) for v in checksums.values())
            and isinstance(doc.get("checksum_type"), str)
            and isinstance(parts, list) and all(_ints(p) for p in parts)
            and isinstance(part_checksums, list) and all(
                isinstance(c, dict) and all(isinstance(v, str) for v in c.values()) for c in part_checksums)):
        raise _bad("fields")
    return SealedObject(doc["size"], doc["etag"], doc["sse"], [_segment(s) for s in segs], checksums,
                        doc["checksum_type"], parts, part_checksums)


def parse_sealed_part(raw: str) -> SealedSegment:
    return _segment(_document(raw).get("segment"))


def _replica_only(ctx: Ctx) -> None:
    if VERSION_HEADER not in ctx.req.headers:  # with it, app.py required s3:ReplicateObject already
        raise S3Error("AccessDenied", f"{SEALED_HEADER} is taken from replicas only.")


async def put_sealed_replica(ctx: Ctx) -> Response:
    _replica_only(ctx)
    obj = parse_sealed(ctx.req.headers[SEALED_HEADER])
    meta = with_lock(ctx, put_meta(ctx.req.headers))
    meta.owner, meta.acl = new_object_acl(ctx)
    v = await put_sealed(ctx.store, ctx.bucket, ctx.key, meta, obj, ObjectBody(ctx).stream().__aiter__())
    return Response(200, [("ETag", f'"{v.etag}"'), ("x-amz-version-id", v.version_id)])


async def upload_sealed_part(ctx: Ctx, part_number: int) -> Response:
    _replica_only(ctx)
    seg = parse_sealed_part(ctx.req.headers[SEALED_HEADER])
    part = await put_sealed_part(ctx.store, ctx.bucket, ctx.key, ctx.query.get("uploadId", ""), part_number, seg,
                                 ObjectBody(ctx).stream().__aiter__())
    return Response(200, [("ETag", f'"{part.etag}"')])


async def complete_sealed_upload(ctx: Ctx) -> Response:
    """The XML's parts must be 1..N (the engine takes the upload's parts as its segments)."""
    _replica_only(ctx)
    obj = parse_sealed(ctx.req.headers[SEALED_HEADER], with_segments=False)
    parts = await read_xml(ctx, parse_complete, 4 * 1024 * 1024, checksum_headers=False)
    if [p.number for p in parts] != list(range(1, len(parts) + 1)):
        raise S3Error("InvalidPart", "A sealed replica's parts are numbered 1 to N.")
    v = await complete_sealed(ctx.store, ctx.bucket, ctx.key, ctx.query.get("uploadId", ""), obj)
    body = [el("Bucket", ctx.bucket), el("Key", ctx.key), el("ETag", f'"{v.etag}"')]
    return Response(200, [("Content-Type", "application/xml"), ("x-amz-version-id", v.version_id)],
                    doc("CompleteMultipartUploadResult", body))
