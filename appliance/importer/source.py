"""What a source bucket holds, read through the S3 API: every version and delete marker of each
key, oldest first, and the bucket's configuration (only what the service answers; a
configuration it does not have is simply absent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .cursor import version_identity

# Error codes a service answers for a configuration that is not set (or not supported).
ABSENT = {
    "NoSuchBucketPolicy", "NoSuchTagSet", "NoSuchLifecycleConfiguration", "NoSuchCORSConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError", "ObjectLockConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration", "NotImplemented", "MethodNotAllowed", "NoSuchConfiguration",
    "OwnershipControlsNotFoundError", "InvalidRequest", "XNotImplemented", "NoSuchWebsiteConfiguration",
}


@dataclass(frozen=True)
class SourceVersion:
    key: str
    version_id: str  # "null" in an unversioned bucket
    delete_marker: bool
    last_modified: dt.datetime
    etag: str  # with quotes, as listed ("" for a delete marker)
    size: int
    storage_class: str

    @property
    def identity(self) -> str:
        return version_identity(self.version_id, self.etag, self.last_modified.isoformat())

    @property
    def parts(self) -> int:
        """Parts of a multipart object, from its ETag ("...-N"); 0 for a single PUT."""
        tail = self.etag.strip('"').rpartition("-")[2]
        return int(tail) if "-" in self.etag and tail.isascii() and tail.isdigit() else 0


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def entry_order(body: bytes) -> list[bool] | None:
    """The order of a ListObjectVersions page's entries, True for a delete marker. The SDK
    parses versions and delete markers into two lists; their interleaving (newest first within a
    key) is only in the document. None when the body is not such a document (parsed without
    DTDs or entities: s3gw.xmlio)."""
    from s3gw.errors import S3Error
    from s3gw.xmlio import parse

    try:
        root = parse(body, "ListVersionsResult")
    except S3Error:
        return None
    return [c.tag == "DeleteMarker" for c in root if c.tag in ("Version", "DeleteMarker")]


def _pages(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[dict[str, Any], list[bool] | None]]:
    bodies: list[bytes] = []

    def grab(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectVersions", grab)
    try:
        args = {"Bucket": bucket, "Prefix": prefix}
        while True:
            bodies.clear()
            page = s3.list_object_versions(**args)
            yield page, entry_order(bodies[-1]) if bodies else None
            if not page.get("IsTruncated"):
                return
            args["KeyMarker"] = page.get("NextKeyMarker", "")
            args["VersionIdMarker"] = page.get("NextVersionIdMarker", "")
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectVersions", grab)


def _in_order(page: dict[str, Any], order: list[bool] | None) -> list[tuple[dict[str, Any], bool]]:
    versions, markers = list(page.get("Versions", [])), list(page.get("DeleteMarkers", []))
    if order is not None and order.count(True) == len(markers) and order.count(False) == len(versions):
        vs, ms = iter(versions), iter(markers)
        return [(next(ms), True) if marker else (next(vs), False) for marker in order]
    # no document to follow: by key, then newest first by time (ties as listed)
    entries = [(v, False) for v in versions] + [(m, True) for m in markers]
    entries.sort(key=lambda e: e[0]["LastModified"], reverse=True)
    entries.sort(key=lambda e: e[0]["Key"])
    return entries


def versions_by_key(s3: Any, bucket: str, prefix: str = "") -> Iterator[tuple[str, list[SourceVersion]]]:
    """(key, its versions oldest first), keys in listing order. A service without versioning
    for the bucket still lists each object once, with version "null"."""
    current: str | None = None
    pending: list[SourceVersion] = []  # newest first, as listed
    for page, order in _pages(s3, bucket, prefix):
        for raw, marker in _in_order(page, order):
            v = SourceVersion(raw["Key"], str(raw.get("VersionId") or "null"), marker, raw["LastModified"],
                              "" if marker else str(raw.get("ETag", "")), int(raw.get("Size", 0)),
                              str(raw.get("StorageClass", "STANDARD")))
            if v.key != current:
                if current is not None:
                    yield current, pending[::-1]
                current, pending = v.key, []
            pending.append(v)
    if current is not None:
        yield current, pending[::-1]


@dataclass
class BucketConfig:
    versioning: str = ""  # "" | Enabled | Suspended
    object_lock: dict[str, Any] | None = None  # ObjectLockConfiguration
    policy: str = ""
    tags: list[dict[str, str]] | None = None
    encryption: dict[str, Any] | None = None  # ServerSideEncryptionConfiguration
    lifecycle: list[dict[str, Any]] | None = None
    cors: list[dict[str, Any]] | None = None
    notification: dict[str, Any] | None = None
    public_access_block: dict[str, Any] | None = None
    ownership: dict[str, Any] | None = None


def _optional(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ClientError as exc:
        if error_code(exc) in ABSENT or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (404, 501):
            return None
        raise


def bucket_config(s3: Any, bucket: str) -> BucketConfig:
    c = BucketConfig()
    c.versioning = str((_optional(lambda: s3.get_bucket_versioning(Bucket=bucket)) or {}).get("Status", ""))
    lock = _optional(lambda: s3.get_object_lock_configuration(Bucket=bucket))
    if lock and lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled":
        c.object_lock = lock["ObjectLockConfiguration"]
    c.policy = str((_optional(lambda: s3.get_bucket_policy(Bucket=bucket)) or {}).get("Policy", ""))
    tags = _optional(lambda: s3.get_bucket_tagging(Bucket=bucket))
    c.tags = tags.get("TagSet") if tags else None
    enc = _optional(lambda: s3.get_bucket_encryption(Bucket=bucket))
    c.encryption = enc.get("ServerSideEncryptionConfiguration") if enc else None
    lc = _optional(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket))
    c.lifecycle = lc.get("Rules") if lc else None
    cors = _optional(lambda: s3.get_bucket_cors(Bucket=bucket))
    c.cors = cors.get("CORSRules") if cors else None
    notif = _optional(lambda: s3.get_bucket_notification_configuration(Bucket=bucket)) or {}
    notif = {k: v for k, v in notif.items() if k != "ResponseMetadata" and v}
    c.notification = notif or None
    pab = _optional(lambda: s3.get_public_access_block(Bucket=bucket))
    c.public_access_block = pab.get("PublicAccessBlockConfiguration") if pab else None
    own = _optional(lambda: s3.get_bucket_ownership_controls(Bucket=bucket))
    c.ownership = own.get("OwnershipControls") if own else None
    return c
