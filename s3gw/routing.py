"""Request target -> (bucket, key, query) and method + subresource -> operation name.

Path-style (`/bucket/key`) and virtual-hosted-style (`bucket.<domain>/key`, domain from
cfg.s3.domain) addressing. Keys are percent-decoded to bytes and must be UTF-8, and every '%'
must start a valid escape (InvalidURI otherwise, as AWS answers); key-length and character rules
are checked by the engine.

`Op` is every name `operation` can return. Each has a handler (s3gw/optable.py checks this at
import) unless it is in REFUSED, the gateway's not-implemented table below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import unquote_plus, unquote_to_bytes

from .errors import S3Error


class Op(StrEnum):
    """The operations the router names: AWS's operation names where AWS has one."""

    # service and buckets
    ListBuckets = "ListBuckets"
    CreateBucket = "CreateBucket"
    DeleteBucket = "DeleteBucket"
    HeadBucket = "HeadBucket"
    GetBucketLocation = "GetBucketLocation"
    GetBucketVersioning = "GetBucketVersioning"
    PutBucketVersioning = "PutBucketVersioning"
    GetBucketAcl = "GetBucketAcl"
    PutBucketAcl = "PutBucketAcl"
    GetBucketTagging = "GetBucketTagging"
    PutBucketTagging = "PutBucketTagging"
    DeleteBucketTagging = "DeleteBucketTagging"
    GetBucketLogging = "GetBucketLogging"
    PutBucketLogging = "PutBucketLogging"
    DeleteObjects = "DeleteObjects"
    # access control
    GetBucketPolicy = "GetBucketPolicy"
    PutBucketPolicy = "PutBucketPolicy"
    DeleteBucketPolicy = "DeleteBucketPolicy"
    GetBucketPolicyStatus = "GetBucketPolicyStatus"
    GetBucketOwnershipControls = "GetBucketOwnershipControls"
    PutBucketOwnershipControls = "PutBucketOwnershipControls"
    DeleteBucketOwnershipControls = "DeleteBucketOwnershipControls"
    GetPublicAccessBlock = "GetPublicAccessBlock"
    PutPublicAccessBlock = "PutPublicAccessBlock"
    DeletePublicAccessBlock = "DeletePublicAccessBlock"
    # default encryption
    GetBucketEncryption = "GetBucketEncryption"
    PutBucketEncryption = "PutBucketEncryption"
    DeleteBucketEncryption = "DeleteBucketEncryption"
    # object lock
    GetObjectLockConfiguration = "GetObjectLockConfiguration"
    PutObjectLockConfiguration = "PutObjectLockConfiguration"
    # lifecycle
    GetBucketLifecycleConfiguration = "GetBucketLifecycleConfiguration"
    PutBucketLifecycleConfiguration = "PutBucketLifecycleConfiguration"
    DeleteBucketLifecycle = "DeleteBucketLifecycle"
    RestoreObject = "RestoreObject"
    # intelligent tiering's archive tiers
    PutBucketIntelligentTieringConfiguration = "PutBucketIntelligentTieringConfiguration"
    GetBucketIntelligentTieringConfiguration = "GetBucketIntelligentTieringConfiguration"
    DeleteBucketIntelligentTieringConfiguration = "DeleteBucketIntelligentTieringConfiguration"
    ListBucketIntelligentTieringConfigurations = "ListBucketIntelligentTieringConfigurations"
    GetObjectRetention = "GetObjectRetention"
    PutObjectRetention = "PutObjectRetention"
    GetObjectLegalHold = "GetObjectLegalHold"
    PutObjectLegalHold = "PutObjectLegalHold"
    # CORS
    GetBucketCors = "GetBucketCors"
    PutBucketCors = "PutBucketCors"
    DeleteBucketCors = "DeleteBucketCors"
    PreflightRequest = "PreflightRequest"  # OPTIONS on a bucket or an object: answered from the CORS rules
    # listings
    ListObjects = "ListObjects"
    ListObjectsV2 = "ListObjectsV2"
    ListObjectVersions = "ListObjectVersions"
    # objects
    PutObject = "PutObject"
    GetObject = "GetObject"
    HeadObject = "HeadObject"
    DeleteObject = "DeleteObject"
    CopyObject = "CopyObject"
    PutObjectTagging = "PutObjectTagging"
    GetObjectTagging = "GetObjectTagging"
    DeleteObjectTagging = "DeleteObjectTagging"
    GetObjectAcl = "GetObjectAcl"
    PutObjectAcl = "PutObjectAcl"
    GetObjectAttributes = "GetObjectAttributes"
    # multipart uploads
    CreateMultipartUpload = "CreateMultipartUpload"
    UploadPart = "UploadPart"
    UploadPartCopy = "UploadPartCopy"
    CompleteMultipartUpload = "CompleteMultipartUpload"
    AbortMultipartUpload = "AbortMultipartUpload"
    ListParts = "ListParts"
    ListMultipartUploads = "ListMultipartUploads"
    # browser-form upload (POST /bucket without ?delete)
    PostObject = "PostObject"
    # notifications
    GetBucketNotificationConfiguration = "GetBucketNotificationConfiguration"
    PutBucketNotificationConfiguration = "PutBucketNotificationConfiguration"
    # replication
    GetBucketReplication = "GetBucketReplication"
    PutBucketReplication = "PutBucketReplication"
    DeleteBucketReplication = "DeleteBucketReplication"
    # recognised but not implemented (REFUSED)
    UnsupportedSubresource = "UnsupportedSubresource"
    DeleteBucketSubresource = "DeleteBucketSubresource"
    PostToKey = "PostToKey"
    MethodNotAllowed = "MethodNotAllowed"


# The gateway's not-implemented table: every request the router recognises but no handler
# serves. A feature that lands deletes its entries here and gives its operations a handler.

# Subresources answered 501 NotImplemented whatever the method (Op.UnsupportedSubresource),
# rather than a wrong answer from the operation the request would otherwise reach.
UNSUPPORTED_SUBRESOURCES = frozenset({
    "website",
    "accelerate", "requestPayment", "analytics", "metrics", "inventory",
    "select", "torrent",
    # newer operations whose requests would otherwise reach another handler (RenameObject a
    # PutObject of an empty body, DeleteObjectAnnotation a DeleteObject, PutBucketAbac and the
    # metadata tables a CreateBucket, CreateSession a listing)
    "renameObject", "annotation", "abac", "session", "metadataConfiguration", "metadataTable",
    "metadataAnnotationTable", "metadataInventoryTable", "metadataJournalTable",
    # botocore 1.44.18: GetPart (GET /key?part) would be a GetObject, the bucket's default storage
    # class a GetBucket listing or a CreateBucket
    "part", "default-storage-class",
})
# Subresources of buckets only: on an object they name nothing we serve (and must not fall
# through to PutObject or DeleteObject: `PUT /b/k?cors` would store the CORS document as k)
BUCKET_SUBRESOURCES = frozenset({"policy", "policyStatus", "ownershipControls", "publicAccessBlock", "encryption",
                                 "object-lock", "logging", "notification", "replication", "lifecycle",
                                 "intelligent-tiering", "cors", "versioning", "location", "versions"})
# Every version id this store holds: "null" and its own (storecore.new_version_id: 24 random
# bytes, 32 characters of base64url), which a replica from another Stowage keeps (replica.py).
# Anything else cannot name a version here: AWS answers such an id 400 InvalidArgument ("Invalid
# version id specified"), not 404 NoSuchVersion, and so do we.
VERSION_ID = re.compile(r"null|[A-Za-z0-9_\-]{32}")


def check_version_id(vid: str) -> str:
    """`vid` when it can name a version here, else AWS's InvalidArgument: the versionId of an
    object request, of a copy source, a ListObjectVersions version-id-marker."""
    if not VERSION_ID.fullmatch(vid):
        raise S3Error("InvalidArgument", "Invalid version id specified")
    return vid

# Subresources of objects only: on a bucket they name nothing we serve.
OBJECT_SUBRESOURCES = frozenset({"retention", "legal-hold", "attributes", "restore"})
# Object subresources with a GET and a PUT operation (and no other method).
_OBJECT_LOCK_OPS = (("retention", Op.GetObjectRetention, Op.PutObjectRetention),
                    ("legal-hold", Op.GetObjectLegalHold, Op.PutObjectLegalHold))

# Operation -> the S3 error code it is answered with.
REFUSED: Mapping[Op, str] = MappingProxyType({
    Op.UnsupportedSubresource: "NotImplemented",
    Op.DeleteBucketSubresource: "NotImplemented",  # DELETE /bucket with any other query
    Op.PostToKey: "NotImplemented",  # POST /bucket/key without ?uploads or ?uploadId
    Op.MethodNotAllowed: "MethodNotAllowed",  # a method the resource does not take
})


@dataclass(frozen=True)
class Route:
    bucket: str
    key: str
    raw_path: str
    raw_query: str
    query: dict[str, str]
    op: Op
    virtual_host: bool


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


# a '%' that does not start a two-hex-digit escape: AWS cannot parse such a URI either
_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")


def _decode_path(raw: str) -> str:
    if _BAD_ESCAPE.search(raw):
        raise S3Error("InvalidURI")
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
    if domain and hostname.endswith("." + domain.lower()):
        bucket, key, virtual = hostname[: -len(domain) - 1], path[1:], True
    else:
        bucket, _, key = path[1:].partition("/")
        virtual = False
    query = parse_query(raw_query)
    vid = query.get("versionId")
    if vid:  # "" has its own answer (ops_object._version_id)
        check_version_id(vid)
    return Route(bucket, key, raw_path, raw_query, query, operation(method, bucket, key, query, copy_source), virtual)


# GET /bucket?<subresource>, first match wins; a GET without one is a listing
_BUCKET_GETS = (("location", Op.GetBucketLocation), ("versioning", Op.GetBucketVersioning),
                ("versions", Op.ListObjectVersions), ("uploads", Op.ListMultipartUploads),
                ("acl", Op.GetBucketAcl), ("tagging", Op.GetBucketTagging), ("policy", Op.GetBucketPolicy),
                ("policyStatus", Op.GetBucketPolicyStatus), ("ownershipControls", Op.GetBucketOwnershipControls),
                ("publicAccessBlock", Op.GetPublicAccessBlock), ("encryption", Op.GetBucketEncryption),
                ("object-lock", Op.GetObjectLockConfiguration), ("logging", Op.GetBucketLogging),
                ("cors", Op.GetBucketCors), ("notification", Op.GetBucketNotificationConfiguration),
                ("replication", Op.GetBucketReplication), ("lifecycle", Op.GetBucketLifecycleConfiguration))
# PUT and DELETE /bucket?<subresource>; a PUT without one creates the bucket
_BUCKET_PUTS = (("versioning", Op.PutBucketVersioning), ("acl", Op.PutBucketAcl), ("tagging", Op.PutBucketTagging),
                ("policy", Op.PutBucketPolicy), ("ownershipControls", Op.PutBucketOwnershipControls),
                ("publicAccessBlock", Op.PutPublicAccessBlock), ("encryption", Op.PutBucketEncryption),
                ("object-lock", Op.PutObjectLockConfiguration), ("logging", Op.PutBucketLogging),
                ("cors", Op.PutBucketCors), ("notification", Op.PutBucketNotificationConfiguration),
                ("replication", Op.PutBucketReplication), ("lifecycle", Op.PutBucketLifecycleConfiguration))
_BUCKET_DELETES = (("tagging", Op.DeleteBucketTagging), ("policy", Op.DeleteBucketPolicy),
                   ("ownershipControls", Op.DeleteBucketOwnershipControls),
                   ("publicAccessBlock", Op.DeletePublicAccessBlock), ("encryption", Op.DeleteBucketEncryption),
                   ("cors", Op.DeleteBucketCors), ("replication", Op.DeleteBucketReplication),
                   ("lifecycle", Op.DeleteBucketLifecycle))


def operation(method: str, bucket: str, key: str, q: dict[str, str], copy_source: bool) -> Op:
    if not UNSUPPORTED_SUBRESOURCES.isdisjoint(q):
        return Op.UnsupportedSubresource
    if not bucket:
        return Op.ListBuckets if method == "GET" else Op.MethodNotAllowed
    if method == "OPTIONS":
        return Op.PreflightRequest
    if not key:
        if bucket == WRITE_GET_OBJECT_RESPONSE:
            return Op.UnsupportedSubresource
        return Op.UnsupportedSubresource if not OBJECT_SUBRESOURCES.isdisjoint(q) else _bucket_operation(method, q)
    if not BUCKET_SUBRESOURCES.isdisjoint(q):
        return Op.UnsupportedSubresource
    for sub, get, put in _OBJECT_LOCK_OPS:
        if sub in q:
            return get if method == "GET" else put if method == "PUT" else Op.MethodNotAllowed
    if "restore" in q:
        return Op.RestoreObject if method == "POST" else Op.MethodNotAllowed
    if method in ("GET", "HEAD"):
        if "tagging" in q:
            return Op.GetObjectTagging if method == "GET" else Op.MethodNotAllowed
        if "uploadId" in q:
            return Op.ListParts if method == "GET" else Op.MethodNotAllowed
        if "acl" in q:
            return Op.GetObjectAcl if method == "GET" else Op.MethodNotAllowed
        if "attributes" in q:
            return Op.GetObjectAttributes if method == "GET" else Op.MethodNotAllowed
        return Op.GetObject if method == "GET" else Op.HeadObject
    if method == "PUT":
        if "tagging" in q:
            return Op.PutObjectTagging
        if "acl" in q:
            return Op.PutObjectAcl
        if "partNumber" in q or "uploadId" in q:
            return Op.UploadPartCopy if copy_source else Op.UploadPart
        return Op.CopyObject if copy_source else Op.PutObject
    if method == "DELETE":
        if "tagging" in q:
            return Op.DeleteObjectTagging
        if "uploadId" in q:
            return Op.AbortMultipartUpload
        return Op.DeleteObject
    if method == "POST":
        if "uploads" in q:
            return Op.CreateMultipartUpload
        if "uploadId" in q:
            return Op.CompleteMultipartUpload
        return Op.PostToKey
    return Op.MethodNotAllowed


def _bucket_operation(method: str, q: dict[str, str]) -> Op:
    if "intelligent-tiering" in q:  # GET with an id gets one configuration, without lists them all
        if method == "GET":
            return (Op.GetBucketIntelligentTieringConfiguration if "id" in q
                    else Op.ListBucketIntelligentTieringConfigurations)
        return {"PUT": Op.PutBucketIntelligentTieringConfiguration,
                "DELETE": Op.DeleteBucketIntelligentTieringConfiguration}.get(method, Op.MethodNotAllowed)
    if method == "GET":
        for sub, op in _BUCKET_GETS:
            if sub in q:
                return op
        return Op.ListObjectsV2 if q.get("list-type") == "2" else Op.ListObjects
    if method == "HEAD":
        return Op.HeadBucket
    if method == "PUT":
        for sub, op in _BUCKET_PUTS:
            if sub in q:
                return op
        return Op.MethodNotAllowed if "policyStatus" in q else Op.CreateBucket
    if method == "DELETE":
        if not q:
            return Op.DeleteBucket
        if "object-lock" in q:  # object lock cannot be turned off: S3 has no such operation
            return Op.MethodNotAllowed
        for sub, op in _BUCKET_DELETES:
            if sub in q:
                return op
        return Op.DeleteBucketSubresource
    if method == "POST":
        return Op.DeleteObjects if "delete" in q else Op.PostObject
    return Op.MethodNotAllowed


# S3 Object Lambda's WriteGetObjectResponse is POST /WriteGetObjectResponse: no bucket can have
# that name (bucket names are lower case), so it is refused rather than read as a form upload.
WRITE_GET_OBJECT_RESPONSE = "WriteGetObjectResponse"
