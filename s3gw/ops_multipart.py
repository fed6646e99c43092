"""Multipart uploads: create, upload part (and part copy), complete, abort, list parts/uploads.

Completion is a metadata operation in the engine (the parts' segments become the object's);
the object's checksum, when the upload asked for one, is made from the parts' checksums as S3
makes it, composite or full-object (mpchecksums.py).
"""

from __future__ import annotations

from appliance.engine import BodySummary, UploadRecord
from appliance.engine.errors import NoSuchUpload
from appliance.iam.objectkeys import Protection

from . import sealedreplica, sse
from .body import ObjectBody, read_xml
from .checksums import BodyChecks, header_name
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .mpchecksums import Completion, upload_checksum, upload_headers
from .numbers import digits
from .objmeta import put_meta
from .ops_access import new_object_acl
from .ops_list import encoder, int_param
from .ops_lock import check_part_integrity, with_lock
from .ops_object import check_copy_size, source_version
from .posixtrust import vouch
from .routing import Op
from .xmlio import doc, el, iso_time, parse_complete

XML = ("Content-Type", "application/xml")


def _part_number(ctx: Ctx) -> int:
    raw = ctx.query.get("partNumber", "")
    n = digits(raw, 5) or 0
    if not 1 <= n <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                      ArgumentName="partNumber", ArgumentValue=raw)
    return n


def _upload(ctx: Ctx) -> UploadRecord:
    up = ctx.store.get_upload(ctx.bucket, ctx.key, ctx.query.get("uploadId", ""))
    return up


async def create_multipart(ctx: Ctx) -> Response:
    meta = with_lock(ctx, vouch(ctx, put_meta(ctx.req.headers)))
    meta.owner, meta.acl = new_object_acl(ctx)
    alg, ctype = upload_checksum(ctx.req.headers)
    protection = await sse.for_write(ctx)
    meta.sse = protection.report()  # every part is encrypted so (each with its own data key)
    up = await ctx.store.create_multipart(ctx.bucket, ctx.key, meta, checksum_algorithm=alg, checksum_type=ctype)
    headers = [XML, *upload_headers(up)]
    headers += sse.headers(ctx, protection, context=True)
    parts = [el("Bucket", ctx.bucket), el("Key", ctx.key), el("UploadId", up.upload_id)]
    return Response(200, headers, doc("InitiateMultipartUploadResult", parts))


async def upload_part(ctx: Ctx) -> Response:
    n = _part_number(ctx)
    if sealedreplica.SEALED_HEADER in ctx.req.headers:  # a segment of an SSE-C replica sent as ciphertext
        return await sealedreplica.upload_sealed_part(ctx, n)
    up = _upload(ctx)
    protection = sse.for_part(ctx, up)
    body = ObjectBody(ctx)
    check_part_integrity(ctx, up, body.checks)
    if up.checksum_algorithm and up.checksum_algorithm not in body.checks.expected \
            and up.checksum_algorithm != body.checks.trailer_algorithm:
        # the upload promised a composite checksum: compute this part's even if the client sent none
        body.checks.compute.add(up.checksum_algorithm)
        body.checks.start()
    part = await ctx.store.upload_part(ctx.bucket, ctx.key, up.upload_id, n, body.stream(),
                                       finalize=body.finalize, size_hint=body.expected_size,
                                       encrypt_with=ctx.keys.new_key(protection))
    headers = [("ETag", f'"{part.etag}"')]
    headers += [(header_name(alg), value) for alg, value in part.checksums.items()]
    headers += sse.headers(ctx, protection)
    return Response(200, headers)


def _copy_range(ctx: Ctx, size: int) -> tuple[int, int]:
    raw = ctx.req.headers.get("x-amz-copy-source-range")
    if raw is None:
        return 0, size
    bad = S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last "
                  "where first and last are the zero-based offsets of the first and last bytes to copy",
                  ArgumentName="x-amz-copy-source-range", ArgumentValue=raw)
    spec = raw.strip()
    if not spec.startswith("bytes="):
        raise bad
    raw_first, _, raw_last = spec[6:].partition("-")
    first, last = digits(raw_first), digits(raw_last)
    if first is None or last is None or last < first:
        raise bad
    start, end = first, last + 1
    if end > size:  # AWS: 400 InvalidArgument here, where a GET's unsatisfiable Range is 416 InvalidRange
        raise S3Error("InvalidArgument", f"Range specified is not valid for source object of size: {size}",
                      ArgumentName="x-amz-copy-source-range", ArgumentValue=raw)
    return start, end


async def upload_part_copy(ctx: Ctx) -> Response:
    n = _part_number(ctx)
    up = _upload(ctx)
    protection = sse.for_part(ctx, up)
    src, _ = source_version(ctx)
    stored, resolver = sse.for_read(ctx, src, source=True)
    start, end = _copy_range(ctx, src.size)
    check_copy_size(ctx, end - start)
    # the copied range gets the upload's checksum like any part, computed as it is read
    checks = BodyChecks(compute={up.checksum_algorithm} if up.checksum_algorithm else set())
    checks.start()

    def finalize(summary: BodySummary) -> dict[str, str]:
        return checks.verify(summary.md5)

    # the upload's keys are the source's: the part shares its segments; else it is re-encrypted
    shared = protection.shares_keys_with(stored)
    part = await ctx.store.upload_part_copy(ctx.bucket, ctx.key, up.upload_id, n, src, start, end,
                                            decrypt_with=resolver, rewrite=not shared,
                                            encrypt_with=None if shared else ctx.keys.new_key(protection),
                                            observe=checks.update, finalize=finalize)
    headers = [XML]
    if src.version_id != "null":
        headers.append(("x-amz-copy-source-version-id", src.version_id))
    headers += sse.headers(ctx, protection)
    items = [el("ETag", f'"{part.etag}"'), el("LastModified", iso_time(part.last_modified_ns))]
    items += [el(f"Checksum{alg}", value) for alg, value in part.checksums.items()]
    return Response(200, headers, doc("CopyPartResult", items))


async def complete_multipart(ctx: Ctx) -> Response:
    if sealedreplica.SEALED_HEADER in ctx.req.headers:  # an SSE-C replica sent as ciphertext
        return await sealedreplica.complete_sealed_upload(ctx)
    upload_id = ctx.query.get("uploadId", "")
    try:
        up: UploadRecord | None = _upload(ctx)
    except NoSuchUpload:
        up = None  # completed already? the engine answers the same completion again, or NoSuchUpload
    h = ctx.req.headers
    # its x-amz-checksum-* headers are the object's checksum, not the XML document's
    parts = await read_xml(ctx, parse_complete, 4 * 1024 * 1024, checksum_headers=False)
    completion = Completion(up, parts, h) if up is not None else None
    v = await ctx.store.complete_multipart(
        ctx.bucket, ctx.key, upload_id, [(p.number, p.etag) for p in parts], if_match=h.get("if-match"),
        if_none_match=h.get("if-none-match"), finalize=completion)
    headers = [XML]
    if v.version_id != "null" or ctx.store.get_bucket(ctx.bucket).versioning:
        headers.append(("x-amz-version-id", v.version_id))
    headers += sse.headers(ctx, Protection.of_report(v.sse), customer=False)
    body = [el("Location", ctx.object_url(ctx.key)), el("Bucket", ctx.bucket), el("Key", ctx.key),
            el("ETag", f'"{v.etag}"')]
    body += [el(f"Checksum{alg}", value) for alg, value in v.checksums.items()]
    if v.checksums:
        body.append(el("ChecksumType", v.checksum_type))
    return Response(200, headers, doc("CompleteMultipartUploadResult", body))


async def abort_multipart(ctx: Ctx) -> Response:
    await ctx.store.abort_multipart(ctx.bucket, ctx.key, ctx.query.get("uploadId", ""))
    return Response(204)


async def list_parts(ctx: Ctx) -> Response:
    up = _upload(ctx)
    enc = encoder(ctx)  # encoding-type=url on ListParts too, as MinIO takes it
    marker = int_param(ctx, "part-number-marker", 0, 10000)
    max_parts = int_param(ctx, "max-parts", 1000, 1000)
    parts, truncated = ctx.store.list_parts(up.upload_id, marker, max_parts or 1)
    if max_parts == 0:
        parts, truncated = [], False
    out = [el("Bucket", ctx.bucket), el("Key", enc(ctx.key)), el("UploadId", up.upload_id)]
    if "encoding-type" in ctx.query:
        out.append(el("EncodingType", "url"))
    out += [ctx.directory.owner_xml(up.owner, "Initiator"), ctx.directory.owner_xml(up.owner),
            el("StorageClass", up.storage_class or "STANDARD"), el("PartNumberMarker", marker),
            el("NextPartNumberMarker", parts[-1].part_number if parts else marker), el("MaxParts", max_parts),
            el("IsTruncated", truncated)]
    if up.checksum_algorithm:
        out += [el("ChecksumAlgorithm", up.checksum_algorithm), el("ChecksumType", up.checksum_type)]
    for p in parts:
        items = [el("PartNumber", p.part_number), el("LastModified", iso_time(p.last_modified_ns)),
                 el("ETag", f'"{p.etag}"'), el("Size", p.size)]
        items += [el(f"Checksum{alg}", value) for alg, value in p.checksums.items()]
        out.append("<Part>" + "".join(items) + "</Part>")
    return Response(200, [XML], doc("ListPartsResult", out))


async def list_uploads(ctx: Ctx) -> Response:
    q = ctx.query
    enc = encoder(ctx)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    max_uploads = int_param(ctx, "max-uploads", 1000, 1000)
    page = ctx.store.list_uploads(ctx.bucket, prefix, delimiter, key_marker, id_marker, max_uploads or 1)
    if max_uploads == 0:
        page.uploads, page.common_prefixes, page.is_truncated = [], [], False
    out = [el("Bucket", ctx.bucket), el("KeyMarker", enc(key_marker)), el("UploadIdMarker", id_marker),
           el("Prefix", enc(prefix))]
    if delimiter:
        out.append(el("Delimiter", enc(delimiter)))
    if "encoding-type" in q:
        out.append(el("EncodingType", "url"))
    out.append(el("MaxUploads", max_uploads))
    out.append(el("IsTruncated", page.is_truncated))
    if page.is_truncated:
        out.append(el("NextKeyMarker", enc(page.next_key_marker)))
        out.append(el("NextUploadIdMarker", page.next_upload_id_marker))
    for up in page.uploads:
        items = [el("Key", enc(up.key)), el("UploadId", up.upload_id),
                 ctx.directory.owner_xml(up.owner, "Initiator"), ctx.directory.owner_xml(up.owner),
                 el("StorageClass", up.storage_class or "STANDARD"), el("Initiated", iso_time(up.initiated_ns))]
        if up.checksum_algorithm:
            items += [el("ChecksumAlgorithm", up.checksum_algorithm), el("ChecksumType", up.checksum_type)]
        out.append("<Upload>" + "".join(items) + "</Upload>")
    out += [f"<CommonPrefixes>{el('Prefix', enc(p))}</CommonPrefixes>" for p in page.common_prefixes]
    return Response(200, [XML], doc("ListMultipartUploadsResult", out))


OPS: dict[str, OpHandler] = {
    Op.CreateMultipartUpload: create_multipart,
    Op.UploadPart: upload_part,
    Op.UploadPartCopy: upload_part_copy,
    Op.CompleteMultipartUpload: complete_multipart,
    Op.AbortMultipartUpload: abort_multipart,
    Op.ListParts: list_parts,
    Op.ListMultipartUploads: list_uploads,
}
