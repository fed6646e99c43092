"""Request target -> (bucket, key, query) and method + subresource -> operation name.

Path-style (`/bucket/key`) and virtual-hosted-style (`bucket.<domain>/key`, domain from
cfg.s3.domain) addressing. Keys are percent-decoded to bytes and must be UTF-8 (InvalidURI
otherwise); key-length and character rules are checked by the engine (appliance.names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_plus, unquote_to_bytes

from .errors import S3Error

# Subresources we recognise but do not implement: AWS-shaped 501 rather than a wrong answer.
UNSUPPORTED = frozenset({
    "policy", "cors", "lifecycle", "website", "encryption", "logging", "notification", "replication",
    "ownershipControls", "publicAccessBlock", "object-lock", "accelerate", "requestPayment", "analytics",
    "metrics", "inventory", "intelligent-tiering", "retention", "legal-hold", "restore", "select",
    "torrent", "policyStatus", "attributes",
})


@dataclass
class Route:
    bucket: str
    key: str
    raw_path: str
    raw_query: str
    query: dict[str, str] = field(default_factory=dict)
    op: str = ""
    virtual_host: bool = False


def parse_query(raw_query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        try:
            out.setdefault(unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict"))
        except UnicodeDecodeError:
            raise S3Error("InvalidArgument", "A query parameter is not valid UTF-8.") from None
    return out


def _decode_path(raw: str) -> str:
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise S3Error("InvalidURI") from None


def route(method: str, target: str, host: str, domain: str, copy_source: bool) -> Route:
    if not target.startswith("/"):
        raise S3Error("InvalidURI")
    raw_path, _, raw_query = target.partition("?")
    path = _decode_path(raw_path)
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    bucket = ""
    virtual = False
    if domain and hostname.endswith("." + domain.lower()):
        bucket = hostname[: -len(domain) - 1]
        key = path[1:]
        virtual = True
    else:
        bucket, _, key = path[1:].partition("/")
    r = Route(bucket, key, raw_path, raw_query, parse_query(raw_query), virtual_host=virtual)
    r.op = operation(method, r, copy_source)
    return r


def operation(method: str, r: Route, copy_source: bool) -> str:
    q = r.query
    for sub in q:
        if sub in UNSUPPORTED:
            return "NotImplemented"
    if not r.bucket:
        return "ListBuckets" if method == "GET" else "MethodNotAllowed"
    if not r.key:
        if method == "GET":
            for sub, op in (("location", "GetBucketLocation"), ("versioning", "GetBucketVersioning"),
                            ("versions", "ListObjectVersions"), ("uploads", "ListMultipartUploads"),
                            ("acl", "GetBucketAcl"), ("tagging", "NotImplemented")):
                if sub in q:
                    return op
            return "ListObjectsV2" if q.get("list-type") == "2" else "ListObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "PUT":
            if "versioning" in q:
                return "PutBucketVersioning"
            if "acl" in q:
                return "PutAcl"
            if "tagging" in q:
                return "NotImplemented"
            return "CreateBucket"
        if method == "DELETE":
            return "NotImplemented" if q else "DeleteBucket"
        if method == "POST":
            return "DeleteObjects" if "delete" in q else "NotImplemented"
        return "MethodNotAllowed"
    if method in ("GET", "HEAD"):
        if "tagging" in q:
            return "GetObjectTagging" if method == "GET" else "MethodNotAllowed"
        if "uploadId" in q:
            return "ListParts" if method == "GET" else "MethodNotAllowed"
        if "acl" in q:
            return "GetObjectAcl" if method == "GET" else "MethodNotAllowed"
        return "GetObject" if method == "GET" else "HeadObject"
    if method == "PUT":
        if "tagging" in q:
            return "PutObjectTagging"
        if "acl" in q:
            return "PutAcl"
        if "partNumber" in q or "uploadId" in q:
            return "UploadPartCopy" if copy_source else "UploadPart"
        return "CopyObject" if copy_source else "PutObject"
    if method == "DELETE":
        if "tagging" in q:
            return "DeleteObjectTagging"
        if "uploadId" in q:
            return "AbortMultipartUpload"
        return "DeleteObject"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
        return "NotImplemented"
    return "MethodNotAllowed"
