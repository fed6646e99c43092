"""Object operations: Put/Get/Head/Delete/Copy and tagging (ACLs are in ops_access)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from appliance.engine import KeyResolver, ObjectVersion, PutMeta
from appliance.engine.errors import MethodNotAllowed

from . import copychecksum, replica, sealedreplica, sse
from .body import ObjectBody, read_xml
from .checksums import header_name
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .mpchecksums import part_checksum_headers
from .numbers import digits
from .objmeta import (
    RESPONSE_OVERRIDES,
    check_conditions,
    parse_copy_source,
    parse_range,
    put_meta,
    response_overrides,
    validate_tags,
    version_headers,
)
from .ops_access import new_object_acl
from .ops_lifecycle import expiration_headers
from .ops_lock import asked_lock, check_put_integrity, lock_headers, may_bypass, with_lock
from .ops_restore import restore_headers
from .ops_tiering import archive_status_headers
from .posixtrust import vouch, vouch_copy
from .refusedheaders import refuse_version_condition
from .routing import Op
from .xmlio import doc, el, iso_time, parse_tagging

XML = ("Content-Type", "application/xml")


def _versioned(ctx: Ctx) -> bool:
    """Whether the request's bucket has (had) versioning, as read when the request began: its
    record was looked up for authorization (ctx.view), so the handler need not read it again."""
    rec = ctx.view.record if ctx.view is not None else ctx.store.get_bucket(ctx.bucket)
    return bool(rec.versioning)


def _version_id(ctx: Ctx) -> str | None:
    vid = ctx.query.get("versionId")
    if vid == "":
        raise S3Error("InvalidArgument", "Version id cannot be the empty string", ArgumentName="versionId",
                      ArgumentValue="")
    return vid


def _checksum_headers(checksums: dict[str, str]) -> list[tuple[str, str]]:
    return [(header_name(alg), value) for alg, value in checksums.items()]


async def put_object(ctx: Ctx) -> Response:
    if sealedreplica.SEALED_HEADER in ctx.req.headers:  # an SSE-C replica sent as ciphertext
        return await sealedreplica.put_sealed_replica(ctx)
    meta = with_lock(ctx, vouch(ctx, put_meta(ctx.req.headers)))
    meta.owner, meta.acl = new_object_acl(ctx)
    protection = await sse.for_write(ctx)
    meta.sse = protection.report()
    body = ObjectBody(ctx)
    check_put_integrity(ctx, meta, body.checks)
    h = ctx.req.headers
    v = await ctx.store.put_object(ctx.bucket, ctx.key, body.stream(), meta, if_match=h.get("if-match"),
                                   if_none_match=h.get("if-none-match"), finalize=body.finalize,
                                   size_hint=body.expected_size, encrypt_with=ctx.keys.new_key(protection))
    headers = [("ETag", f'"{v.etag}"')]
    if v.version_id != "null" or _versioned(ctx):
        headers.append(("x-amz-version-id", v.version_id))
    headers += _checksum_headers(v.checksums)
    headers += sse.headers(ctx, protection, context=True)
    if v.checksum_type:
        headers.append(("x-amz-checksum-type", v.checksum_type))
    return Response(200, headers)


async def _primed(gen: AsyncIterator[bytes | bytearray]) -> AsyncGenerator[bytes | bytearray, None]:
    """Read the first piece before the status line goes out, so early read failures
    (missing shards, a vanished segment) still become proper S3 errors."""
    try:
        first = await gen.__anext__()
    except StopAsyncIteration:
        await _close(gen)

        async def empty() -> AsyncGenerator[bytes, None]:
            return
            yield b""

        return empty()

    async def rest() -> AsyncGenerator[bytes | bytearray, None]:
        try:
            yield first
            async for piece in gen:
                yield piece
        finally:
            await _close(gen)

    return rest()


async def _close(stream: AsyncIterator[bytes | bytearray]) -> None:
    """End the engine's read now (its shard reads stop) rather than when it is garbage-collected."""
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()


def _lookup(ctx: Ctx) -> ObjectVersion:
    v = ctx.store.head_object(ctx.bucket, ctx.key, _version_id(ctx))
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true",
                                                   "x-amz-version-id": v.version_id, "Allow": "DELETE"})
    return v


def _object_headers(ctx: Ctx, v: ObjectVersion) -> list[tuple[str, str]]:
    mode = ctx.req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    headers = version_headers(v, versioned=_versioned(ctx), checksum_mode=mode)
    headers += replica.status_headers(ctx, v.bucket, v.key, v.version_id)
    overrides = response_overrides(ctx.query)
    if overrides:
        lower = {k.lower() for k in overrides}
        headers = [(k, val) for k, val in headers if k.lower() not in lower] + list(overrides.items())
    return headers


async def get_object(ctx: Ctx, *, head: bool = False) -> Response:
    if ctx.principal.kind == "anonymous" and any(name in ctx.query for name in RESPONSE_OVERRIDES):
        # AWS serves the response-* overrides to signed requests only: an unsigned link must not
        # make a public object answer with a Content-Type (or disposition) of its sender's choosing
        raise S3Error("InvalidRequest", "Request specific response headers cannot be used for anonymous GET "
                      "requests.")
    v = _lookup(ctx)
    protection, resolver = sse.for_read(ctx, v)  # before the conditions: no ETag without the key
    check_conditions(ctx.req.headers, v)
    headers = _object_headers(ctx, v) + sse.headers(ctx, protection) + await lock_headers(ctx, v)
    if _version_id(ctx) is None:  # the current version: the Expiration a lifecycle rule gives it
        headers += expiration_headers(ctx, v)
    headers += restore_headers(ctx, v) + archive_status_headers(ctx, v)
    if not head:
        ctx.store.readable_refs(v)  # an archived version not restored: 403 InvalidObjectState
    if "partNumber" in ctx.query:
        return await _get_part(ctx, v, headers, head, resolver)
    rng = parse_range(ctx.req.headers.get("range"), v.size)
    if rng is None:
        start, end, status = 0, v.size, 200
    else:
        start, end = rng
        status = 206
        headers.append(("Content-Range", f"bytes {start}-{end - 1}/{v.size}"))
        # a ranged GET returns the whole-object checksum only when the range is the whole object
        if (start, end) != (0, v.size):
            headers = [(k, val) for k, val in headers if not k.startswith("x-amz-checksum-")]
    headers.append(("Content-Length", str(end - start)))
    if head or end == start:
        return Response(status, headers)
    return Response(status, headers, await _primed(ctx.store.read_object(v, start, end, decrypt_with=resolver)))


async def _get_part(ctx: Ctx, v: ObjectVersion, headers: list[tuple[str, str]], head: bool,
                    resolver: KeyResolver) -> Response:
    """One part of the object, as a ranged read (206). An object uploaded in one piece has one
    part, the whole object, and no x-amz-mp-parts-count, as on AWS."""
    n = digits(ctx.query["partNumber"], 5) or 0
    if not 1 <= n <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                      ArgumentName="partNumber", ArgumentValue=ctx.query["partNumber"])
    if "range" in ctx.req.headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    sizes = v.parts or [v.size]
    if n > len(sizes):
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable",
                      headers={"Content-Range": f"bytes */{v.size}"}, PartNumberRequested=str(n),
                      ActualPartCount=str(len(sizes)))
    start = sum(sizes[: n - 1])
    end = start + sizes[n - 1]
    headers = [(k, val) for k, val in headers if not k.startswith("x-amz-checksum-")]
    if ctx.req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        headers += part_checksum_headers(v, n)
    if v.parts:
        headers.append(("x-amz-mp-parts-count", str(len(v.parts))))
    status = 206 if end > start else 200  # an empty part has no byte range to name
    if end > start:
        headers.append(("Content-Range", f"bytes {start}-{end - 1}/{v.size}"))
    headers.append(("Content-Length", str(end - start)))
    if head or end == start:
        return Response(status, headers)
    return Response(status, headers, await _primed(ctx.store.read_object(v, start, end, decrypt_with=resolver)))


async def head_object(ctx: Ctx) -> Response:
    return await get_object(ctx, head=True)


async def delete_object(ctx: Ctx) -> Response:
    vid = _version_id(ctx)
    if_match = ctx.req.headers.get("if-match")
    refuse_version_condition(if_match, vid)
    bypass = vid is not None and await may_bypass(ctx, ctx.key, vid)
    res = await ctx.store.delete_object(ctx.bucket, ctx.key, vid, bypass_governance=bypass, if_match=if_match)
    headers: list[tuple[str, str]] = []
    if res.version_id:
        headers.append(("x-amz-version-id", res.version_id))
    if res.delete_marker:
        headers.append(("x-amz-delete-marker", "true"))
    return Response(204, headers)


def source_version(ctx: Ctx) -> tuple[ObjectVersion, str | None]:
    bucket, key, vid = parse_copy_source(ctx.req.headers["x-amz-copy-source"])
    src = ctx.store.head_object(bucket, key, vid)
    if src.delete_marker:
        if vid is not None:
            raise S3Error("InvalidRequest", "The source of a copy request may not specifically refer to a delete "
                          "marker by version id.")
        raise S3Error("NoSuchKey")
    check_conditions(ctx.req.headers, src, prefix="x-amz-copy-source-")
    return src, vid


def check_copy_size(ctx: Ctx, size: int) -> None:
    """What one copy request may copy: a CopyObject's source, an UploadPartCopy's range. AWS
    caps both at its 5 GiB single-request limit (s3.max_object_size here, the same bound as a
    PUT's body or a part): a larger object is copied by a multipart copy of ranges."""
    cap = ctx.cfg.s3.max_object_size
    if size > cap:
        raise S3Error("InvalidRequest", "The specified copy source is larger than the maximum allowable size for a "
                      f"copy source: {cap}")


async def copy_object(ctx: Ctx) -> Response:
    h = ctx.req.headers
    src, source_vid = source_version(ctx)
    check_copy_size(ctx, src.size)
    stored, resolver = sse.for_read(ctx, src, source=True)
    protection = await sse.for_write(ctx)
    directive = h.get("x-amz-metadata-directive", "COPY").upper()
    tag_directive = h.get("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE") or tag_directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.")
    same = src.bucket == ctx.bucket and src.key == ctx.key
    if directive == "REPLACE":
        meta: PutMeta | None = put_meta(h, with_tags=False)
    else:
        meta = None
    if tag_directive == "REPLACE" or "x-amz-storage-class" in h:
        meta = meta or PutMeta.of(src)
        if "x-amz-storage-class" in h:
            meta.storage_class = put_meta(h, with_tags=False).storage_class
    if meta is not None:
        if tag_directive == "REPLACE":
            meta.tags = put_meta(h).tags if "x-amz-tagging" in h else {}
        else:
            meta.tags = dict(src.tags)
    algorithm = copychecksum.requested(h)
    new_checksum = copychecksum.changes(src, algorithm)
    if (same and meta is None and not new_checksum and source_vid is None
            and not sse.changes_encryption(ctx)):
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata, storage class, website redirect location or "
                      "encryption attributes.")
    meta = vouch(ctx, meta) if directive == "REPLACE" and meta is not None else vouch_copy(ctx, src, meta)
    owner, acl = new_object_acl(ctx)
    lock = asked_lock(ctx)  # the source's lock is never copied: the request's, or the bucket's default
    checksums = None
    if new_checksum and algorithm:
        checksums = await copychecksum.checksums_for(ctx.store, src, algorithm, resolver)
    # the same keys: the copy shares the source's segments; other keys: its data is re-encrypted
    shared, protection = sse.copy_plan(protection, stored)
    if shared:
        if meta is not None:
            meta.sse = dict(src.sse) if src.sse else None
    else:
        meta = meta or PutMeta.of(src)
        meta.sse = protection.report()
    v = await ctx.store.copy_object(src, ctx.bucket, ctx.key, meta, owner=owner, acl=acl, if_match=h.get("if-match"),
                                    if_none_match=h.get("if-none-match"), rewrite=not shared,
                                    encrypt_with=None if shared else ctx.keys.new_key(protection),
                                    decrypt_with=resolver, lock_mode=lock.mode, retain_until_ns=lock.until_ns,
                                    legal_hold=bool(lock.legal_hold), checksums=checksums)
    headers = [XML]
    if v.version_id != "null" or _versioned(ctx):
        headers.append(("x-amz-version-id", v.version_id))
    if src.version_id != "null":
        headers.append(("x-amz-copy-source-version-id", src.version_id))
    headers += sse.headers(ctx, protection, context=True)
    parts = [el("ETag", f'"{v.etag}"'), el("LastModified", iso_time(v.last_modified_ns))]
    parts += [el(f"Checksum{alg}", value) for alg, value in v.checksums.items()]
    return Response(200, headers, doc("CopyObjectResult", parts))


def _current_for_tags(ctx: Ctx) -> ObjectVersion:
    v = ctx.store.head_object(ctx.bucket, ctx.key, _version_id(ctx))
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    return v


async def _set_tags(ctx: Ctx, tags: dict[str, str]) -> ObjectVersion:
    v = _current_for_tags(ctx)
    try:
        updated = await ctx.store.set_tags(ctx.bucket, ctx.key, v.version_id, tags)
    except MethodNotAllowed as exc:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"}) from exc
    return updated


def _version_id_header(ctx: Ctx, v: ObjectVersion) -> list[tuple[str, str]]:
    """x-amz-version-id, except for the "null" version of a bucket that never had versioning
    (AWS names no version there)."""
    return [("x-amz-version-id", v.version_id)] if v.version_id != "null" or _versioned(ctx) else []


async def put_object_tagging(ctx: Ctx) -> Response:
    # app.py read the document before authorization: its tags are condition keys
    tags = ctx.body_tags if ctx.body_tags is not None else validate_tags(await read_xml(ctx, parse_tagging, 64 * 1024))
    v = await _set_tags(ctx, tags)
    return Response(200, _version_id_header(ctx, v))


async def get_object_tagging(ctx: Ctx) -> Response:
    v = _current_for_tags(ctx)
    tags = "".join(f"<Tag>{el('Key', k)}{el('Value', val)}</Tag>" for k, val in v.tags.items())
    return Response(200, [XML, *_version_id_header(ctx, v)], doc("Tagging", [f"<TagSet>{tags}</TagSet>"]))


async def delete_object_tagging(ctx: Ctx) -> Response:
    v = await _set_tags(ctx, {})
    return Response(204, _version_id_header(ctx, v))


OPS: dict[str, OpHandler] = {
    Op.PutObject: put_object,
    Op.GetObject: get_object,
    Op.HeadObject: head_object,
    Op.DeleteObject: delete_object,
    Op.CopyObject: copy_object,
    Op.PutObjectTagging: put_object_tagging,
    Op.GetObjectTagging: get_object_tagging,
    Op.DeleteObjectTagging: delete_object_tagging,
}
