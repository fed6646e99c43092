"""Listings: ListObjects (v1), ListObjectsV2, ListObjectVersions.

Pages come from the engine's range scans; a continuation token is the engine's next_marker
(pagetoken.py). With encoding-type=url every key-like field is URL-encoded so keys with any
character survive XML.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import trio

from appliance.engine import ListEntry

from . import pagetoken
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .numbers import digits
from .routing import Op, check_version_id
from .xmlio import doc, el, esc, iso_seconds, iso_time, needs_escape, url_encode

XML = ("Content-Type", "application/xml")
MAX_KEYS = 1000
Encoder = Callable[[str], str]  # a key-like field as it goes into the XML (encoding-type)


def int_param(ctx: Ctx, name: str, default: int, cap: int) -> int:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return default
    value = digits(raw)
    if value is None:
        if raw.startswith("-") and digits(raw[1:]) is not None:
            raise S3Error("InvalidArgument", f"Argument {name} must be an integer between 0 and 2147483647",
                          ArgumentName=name, ArgumentValue=raw)
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range",
                      ArgumentName=name, ArgumentValue=raw)
    return min(value, cap)


def encoder(ctx: Ctx) -> Encoder:
    enc = ctx.query.get("encoding-type")
    if enc is None:
        return lambda s: s
    if enc != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type",
                      ArgumentValue=enc)
    return url_encode


# x-amz-optional-object-attributes: what a listing may be asked to add to each object. The only
# one AWS has, RestoreStatus, is added to the archived versions that have a restore (queued or
# done); AWS omits it for every other object, and so do we.
OPTIONAL_ATTRIBUTES = frozenset({"RestoreStatus"})


def optional_attributes(ctx: Ctx) -> frozenset[str]:
    raw = ctx.req.headers.get("x-amz-optional-object-attributes")
    if raw is None:
        return frozenset()
    names = frozenset(a.strip() for a in raw.split(","))
    if not names <= OPTIONAL_ATTRIBUTES:
        raise S3Error("InvalidArgument", "Invalid attribute name specified.",
                      ArgumentName="x-amz-optional-object-attributes", ArgumentValue=raw)
    return names


RestoreXml = Callable[[str, str, int], str]  # (key, version id, seq) -> its <RestoreStatus> or ""


async def restore_renderer(ctx: Ctx, wanted: frozenset[str],
                           versions: Callable[[], list[tuple[str, str, int]]]) -> RestoreXml | None:
    """<RestoreStatus> of each listed version that has a restore, when the client asked for it
    (None: it did not). `versions`: the page's (key, version id, seq), listed only then."""
    if "RestoreStatus" not in wanted:
        return None
    listed = versions()
    if not listed:
        return None
    found = await trio.to_thread.run_sync(ctx.store.restore_statuses, ctx.bucket, listed)

    def render(key: str, vid: str, seq: int) -> str:
        rec = found.get(seq)
        if rec is None:
            return ""
        if rec.ongoing:
            return "<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>"
        return ("<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress>"
                f"<RestoreExpiryDate>{iso_time(rec.expiry_ns)}</RestoreExpiryDate></RestoreStatus>")

    return render


OwnerXml = Callable[[str], str]  # an owner field -> its <Owner> element


def owner_renderer(ctx: Ctx) -> OwnerXml:
    """Owner elements for one listing: the objects of a page mostly share a few owners."""
    return functools.cache(ctx.directory.owner_xml)


def _contents(entries: list[ListEntry], url: bool, owner_xml: OwnerXml | None,
              restore_xml: RestoreXml | None) -> list[bytes]:
    """The <Contents> of a page, each encoded (see xmlio.doc). A page has a thousand: one
    f-string each, the seconds of LastModified formatted once per distinct second (iso_time's
    text), and the escaping scan done once over all of the page's text instead of per field;
    a url-encoded key has nothing to escape."""
    names = [url_encode(e.key) for e in entries] if url else [e.key for e in entries]
    escape = needs_escape("".join([f"{e.etag}{e.storage_class}{e.checksum_type}" for e in entries])
                          + ("" if url else "".join(names)))
    out: list[bytes] = []
    append = out.append
    stamp_s, stamp = -1, ""
    for e, name in zip(entries, names, strict=True):
        seconds, ns = divmod(e.last_modified_ns, 1_000_000_000)
        if seconds != stamp_s:
            stamp_s, stamp = seconds, iso_seconds(seconds)
        etag, storage_class = e.etag, e.storage_class or "STANDARD"
        if escape:
            name, etag, storage_class = esc(name), esc(etag), esc(storage_class)
        middle = ""
        if e.checksums or e.checksum_type:
            middle = "".join(f"<ChecksumAlgorithm>{esc(alg)}</ChecksumAlgorithm>" for alg in e.checksums)
            if e.checksum_type:
                middle += f"<ChecksumType>{esc(e.checksum_type)}</ChecksumType>"
        tail = "</Contents>"
        if owner_xml is not None or restore_xml is not None:
            tail = (f"{owner_xml(e.owner) if owner_xml is not None else ''}"
                    f"{restore_xml(e.key, e.version_id, e.seq) if restore_xml is not None else ''}</Contents>")
        append(f"<Contents><Key>{name}</Key><LastModified>{stamp}{ns // 1_000_000:03d}Z</LastModified>"
               f"<ETag>\"{etag}\"</ETag>{middle}<Size>{e.size}</Size>"
               f"<StorageClass>{storage_class}</StorageClass>{tail}".encode())
    return out


def _prefixes(prefixes: list[str], enc: Encoder) -> str:
    return "".join(f"<CommonPrefixes>{el('Prefix', enc(p))}</CommonPrefixes>" for p in prefixes)


async def list_objects(ctx: Ctx, *, v2: bool = False) -> Response:
    q = ctx.query
    enc = encoder(ctx)
    wanted = optional_attributes(ctx)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys = int_param(ctx, "max-keys", MAX_KEYS, MAX_KEYS)
    if v2:
        token = q.get("continuation-token")
        start = pagetoken.decode(token) if token is not None else q.get("start-after", "")
    else:
        start = q.get("marker", "")
    ctx.store.require_bucket(ctx.bucket)
    if max_keys == 0:
        entries: list[ListEntry] = []
        prefixes: list[str] = []
        truncated, next_marker = False, ""
    else:
        # a 1000-key scan plus record decoding is milliseconds of blocking work: off the loop
        page = await trio.to_thread.run_sync(ctx.store.list_entries, ctx.bucket, prefix, delimiter, start, max_keys)
        entries, prefixes = page.entries, page.common_prefixes
        truncated, next_marker = page.is_truncated, page.next_marker
    fetch_owner = not v2 or q.get("fetch-owner", "").lower() == "true"
    parts: list[str | bytes] = [el("Name", ctx.bucket), el("Prefix", enc(prefix))]
    if v2:
        if "continuation-token" in q:
            parts.append(el("ContinuationToken", q["continuation-token"]))
        if "start-after" in q:
            parts.append(el("StartAfter", enc(q["start-after"])))
        parts.append(el("KeyCount", len(entries) + len(prefixes)))
    else:
        parts.append(el("Marker", enc(start)))
    parts.append(el("MaxKeys", max_keys))
    if delimiter:
        parts.append(el("Delimiter", enc(delimiter)))
    if "encoding-type" in q:
        parts.append(el("EncodingType", "url"))
    parts.append(el("IsTruncated", truncated))
    if truncated:  # v1: NextMarker with or without a delimiter (docs/s3-compatibility.md, rclone)
        parts.append(el("NextContinuationToken", pagetoken.encode(next_marker)) if v2
                     else el("NextMarker", enc(next_marker)))
    owners = owner_renderer(ctx) if fetch_owner else None
    restores = await restore_renderer(ctx, wanted, lambda: [(v.key, v.version_id, v.seq) for v in entries])
    parts += _contents(entries, enc is url_encode, owners, restores)
    parts.append(_prefixes(prefixes, enc))
    return Response(200, [XML], doc("ListBucketResult", parts))


async def list_objects_v2(ctx: Ctx) -> Response:
    return await list_objects(ctx, v2=True)


async def list_object_versions(ctx: Ctx) -> Response:
    q = ctx.query
    enc = encoder(ctx)
    wanted = optional_attributes(ctx)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, vid_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
    if vid_marker and not key_marker:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.",
                      ArgumentName="version-id-marker", ArgumentValue=vid_marker)
    if vid_marker:  # (an empty one is none: the listing resumes after every version of key-marker)
        check_version_id(vid_marker)
    max_keys = int_param(ctx, "max-keys", MAX_KEYS, MAX_KEYS)
    ctx.store.require_bucket(ctx.bucket)
    page = await trio.to_thread.run_sync(ctx.store.list_version_entries, ctx.bucket, prefix, delimiter, key_marker,
                                         vid_marker, max_keys or 1)
    if max_keys == 0:
        page.entries, page.common_prefixes, page.is_truncated = [], [], False
    parts = [el("Name", ctx.bucket), el("Prefix", enc(prefix)), el("KeyMarker", enc(key_marker)),
             el("VersionIdMarker", vid_marker), el("MaxKeys", max_keys)]
    if delimiter:
        parts.append(el("Delimiter", enc(delimiter)))
    if "encoding-type" in q:
        parts.append(el("EncodingType", "url"))
    parts.append(el("IsTruncated", page.is_truncated))
    if page.is_truncated:
        parts.append(el("NextKeyMarker", enc(page.next_key_marker)))
        parts.append(el("NextVersionIdMarker", page.next_version_id_marker))
    owner_xml = owner_renderer(ctx)
    restores = await restore_renderer(ctx, wanted, lambda: [(v.key, v.version_id, v.seq) for v, _ in page.entries
                                                            if not v.delete_marker])
    for v, latest in page.entries:
        common = (f"<Key>{esc(enc(v.key))}</Key><VersionId>{esc(v.version_id)}</VersionId>"
                  f"<IsLatest>{'true' if latest else 'false'}</IsLatest>"
                  f"<LastModified>{iso_time(v.last_modified_ns)}</LastModified>")
        if v.delete_marker:
            parts.append(f"<DeleteMarker>{common}{owner_xml(v.owner)}</DeleteMarker>")
        else:
            restore = restores(v.key, v.version_id, v.seq) if restores is not None else ""
            parts.append(f"<Version>{common}<ETag>\"{esc(v.etag)}\"</ETag><Size>{v.size}</Size>"
                         f"<StorageClass>{esc(v.storage_class or 'STANDARD')}</StorageClass>"
                         f"{owner_xml(v.owner)}{restore}</Version>")
    parts.append(_prefixes(page.common_prefixes, enc))
    return Response(200, [XML], doc("ListVersionsResult", parts))


OPS: dict[str, OpHandler] = {
    Op.ListObjects: list_objects,
    Op.ListObjectsV2: list_objects_v2,
    Op.ListObjectVersions: list_object_versions,
}
