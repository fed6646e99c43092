"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size, without its
body (GET /bucket/key?attributes, the fields named in x-amz-object-attributes).

As AWS answers it: the ETag unquoted; a composite checksum without its "-N" suffix (the part
count is ObjectParts' TotalPartsCount); ObjectParts only for an object uploaded in parts, with
the parts themselves (paged by x-amz-max-parts and x-amz-part-number-marker, each with its
checksum) only when the object has a checksum; a delete marker named by versionId is 405.
"""

from __future__ import annotations

from appliance.engine import ObjectVersion

from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .numbers import digits
from .routing import Op
from .xmlio import doc, el, http_date

XML = ("Content-Type", "application/xml")
ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def requested(value: str | None) -> set[str]:
    """The x-amz-object-attributes list (AWS's names, case-sensitive)."""
    names = {n.strip() for n in (value or "").split(",") if n.strip()}
    if not names:
        raise S3Error("InvalidRequest", "The x-amz-object-attributes header specifying the attributes to be "
                      "retrieved is either missing or empty")
    unknown = sorted(names - set(ATTRIBUTES))
    if unknown:
        raise S3Error("InvalidArgument", "Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                      ArgumentValue=unknown[0])
    return names


def _header_int(ctx: Ctx, name: str, default: int) -> int:
    """A paging header; AWS ignores one that is not a non-negative number."""
    value = digits(ctx.req.headers.get(name, "").strip())
    return default if value is None else value


def checksum_xml(v: ObjectVersion) -> str:
    if not v.checksums:
        return ""
    items = [el(f"Checksum{alg}", value.partition("-")[0]) for alg, value in v.checksums.items()]
    return "<Checksum>" + "".join(items) + el("ChecksumType", v.checksum_type or None) + "</Checksum>"


def parts_xml(v: ObjectVersion, marker: int, max_parts: int) -> str:
    if not v.parts:
        return ""
    items = [el("PartsCount", len(v.parts))]
    if v.part_checksums:
        numbered = list(enumerate(zip(v.parts, v.part_checksums, strict=False), 1))
        page = [p for p in numbered if p[0] > marker][:max_parts]
        truncated = bool(page) and page[-1][0] < len(numbered)
        items += [el("PartNumberMarker", marker), el("NextPartNumberMarker", page[-1][0] if page else marker),
                  el("MaxParts", max_parts), el("IsTruncated", truncated)]
        for n, (size, sums) in page:
            fields = [el("PartNumber", n), el("Size", size)] + [el(f"Checksum{a}", c) for a, c in sums.items()]
            items.append("<Part>" + "".join(fields) + "</Part>")
    return "<ObjectParts>" + "".join(items) + "</ObjectParts>"


async def get_object_attributes(ctx: Ctx) -> Response:
    wanted = requested(ctx.req.headers.get("x-amz-object-attributes"))
    vid = ctx.query.get("versionId")
    if vid == "":
        raise S3Error("InvalidArgument", "Version id cannot be the empty string", ArgumentName="versionId",
                      ArgumentValue="")
    v = ctx.store.head_object(ctx.bucket, ctx.key, vid)
    if v.delete_marker:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true", "x-amz-version-id": v.version_id,
                                                   "Last-Modified": http_date(v.last_modified_ns)})
    headers = [XML, ("Last-Modified", http_date(v.last_modified_ns))]
    if v.version_id != "null" or (ctx.view is not None and ctx.view.record.versioning):
        headers.append(("x-amz-version-id", v.version_id))
    body = []
    if "ETag" in wanted:
        body.append(el("ETag", v.etag))
    if "Checksum" in wanted:
        body.append(checksum_xml(v))
    if "ObjectParts" in wanted:
        max_parts = min(_header_int(ctx, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
        body.append(parts_xml(v, _header_int(ctx, "x-amz-part-number-marker", 0), max_parts))
    if "StorageClass" in wanted:
        body.append(el("StorageClass", v.storage_class or "STANDARD"))
    if "ObjectSize" in wanted:
        body.append(el("ObjectSize", v.size))
    return Response(200, headers, doc("GetObjectAttributesResponse", body))


OPS: dict[str, OpHandler] = {
    Op.GetObjectAttributes: get_object_attributes,
}
