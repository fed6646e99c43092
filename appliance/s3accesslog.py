"""S3 server access logging (PutBucketLogging): requests to a source bucket are collected as
AWS-format log records and delivered, every access_log.delivery_interval_seconds, as log objects
into the target bucket under its prefix, named as AWS names them
(`<prefix>YYYY-mm-dd-HH-MM-SS-<16 hex>`), written as the appliance itself (the target bucket's
owner owns them) with the target bucket's default encryption.

A record (AWS's field order, "-" for an empty field):

    bucket_owner bucket [06/Feb/2026:00:00:38 +0000] remote_ip requester request_id operation key
    "request_uri" status error_code bytes_sent object_size total_time turn_around_time "referrer"
    "user_agent" version_id host_id signature_version cipher_suite auth_type host_header
    tls_version access_point_arn acl_required

Delivery is best effort, as on AWS: records not yet delivered when the daemon stops are
delivered at shutdown, those of a crash are lost. The query string of the request URI is left
out when it carries a signature (a presigned URL), so no signature reaches a log object.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import trio

from appliance.engine.errors import StowageError
from appliance.engine.objectstore import ObjectStore
from appliance.engine.storecore import PutMeta
from appliance.iam.objectkeys import ObjectKeys
from s3gw.exchange import Exchange

log = logging.getLogger("stowage.s3log")
MAX_PENDING = 100_000  # records held per target between deliveries; more are dropped (and counted)

# Operation -> AWS's REST.<METHOD>.<RESOURCE> name where it differs from the default spelling
_AWS_OPS = {
    "ListBuckets": "REST.GET.SERVICE", "ListObjects": "REST.GET.BUCKET", "ListObjectsV2": "REST.GET.BUCKET",
    "HeadBucket": "REST.HEAD.BUCKET", "CreateBucket": "REST.PUT.BUCKET", "DeleteBucket": "REST.DELETE.BUCKET",
    "GetObject": "REST.GET.OBJECT", "HeadObject": "REST.HEAD.OBJECT", "PutObject": "REST.PUT.OBJECT",
    "DeleteObject": "REST.DELETE.OBJECT", "CopyObject": "REST.COPY.OBJECT", "UploadPart": "REST.PUT.PART",
    "UploadPartCopy": "REST.COPY.PART", "CreateMultipartUpload": "REST.POST.UPLOADS",
    "CompleteMultipartUpload": "REST.POST.UPLOAD", "AbortMultipartUpload": "REST.DELETE.UPLOAD",
    "ListParts": "REST.GET.UPLOAD", "ListMultipartUploads": "REST.GET.UPLOADS",
    "DeleteObjects": "REST.POST.MULTI_OBJECT_DELETE", "ListObjectVersions": "REST.GET.BUCKETVERSIONS",
    "GetObjectTagging": "REST.GET.OBJECT_TAGGING", "PutObjectTagging": "REST.PUT.OBJECT_TAGGING",
    "DeleteObjectTagging": "REST.DELETE.OBJECT_TAGGING", "GetBucketLogging": "REST.GET.LOGGING_STATUS",
    "PutBucketLogging": "REST.PUT.LOGGING_STATUS",
}
_SIGNED_QUERY = ("X-Amz-Signature", "Signature=")


def aws_operation(ex: Exchange) -> str:
    name = _AWS_OPS.get(ex.op)
    if name is not None:
        return name
    resource = ex.op.removeprefix(ex.op[:3] if ex.op.startswith(("Get", "Put")) else "")
    resource = resource.removeprefix("Delete").removeprefix("Bucket").upper() or "BUCKET"
    return f"REST.{ex.method}.{resource}"


def _q(value: str) -> str:
    return f'"{value}"' if value else "-"


def _or_dash(value: object) -> str:
    text = str(value) if value is not None else ""
    return text if text else "-"


def record(ex: Exchange, owner: str) -> str:
    t = time.gmtime(ex.wall)
    when = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", t)
    ip = ex.remote.rpartition(":")[0].strip("[]") if ":" in ex.remote else ex.remote
    uri = ex.query if not any(s in ex.query for s in _SIGNED_QUERY) else ex.query.partition("?")[0]
    request_line = f"{ex.method} {uri} HTTP/1.1"
    auth = "AuthHeader" if ex.access_key and not any(s in ex.query for s in _SIGNED_QUERY) else \
        ("QueryString" if ex.access_key else "-")
    fields = [
        _or_dash(owner), _or_dash(ex.bucket), when, _or_dash(ip), _or_dash(ex.principal if ex.access_key else ""),
        ex.request_id, aws_operation(ex), _or_dash(quote(ex.key, safe="/") if ex.key else ""), _q(request_line),
        str(ex.status), _or_dash(ex.error_code), _or_dash(ex.bytes_out),
        _or_dash(ex.bytes_in if ex.method == "PUT" and ex.key and ex.status < 300 else ex.object_size),
        str(round(ex.duration * 1000)), "-", _q(ex.referrer), _q(ex.user_agent), "-", "-",
        "SigV4" if ex.access_key else "-", "-", auth, _or_dash(ex.host), "TLSv1.3" if ex.tls else "-", "-", "-",
    ]
    return " ".join(fields)


@dataclass
class _Target:
    lines: list[str] = field(default_factory=list)
    dropped: int = 0


def object_key(prefix: str, now: float) -> str:
    return prefix + time.strftime("%Y-%m-%d-%H-%M-%S-", time.gmtime(now)) + secrets.token_hex(8).upper()


class ServerAccessLog:
    """An Observer of the S3 application plus the delivery worker."""

    def __init__(self, store: ObjectStore, keys: ObjectKeys, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keys = keys
        self.interval = interval
        self.clock = clock
        self.pending: dict[tuple[str, str], _Target] = {}  # (target bucket, prefix) -> records
        self.delivered_objects = 0
        self._kick = trio.Event()

    def observe(self, ex: Exchange) -> None:
        if not ex.bucket:
            return
        rec = self.store.bucket_logging(ex.bucket)
        if rec is None or not rec.target_bucket:
            return
        try:
            owner = self.store.get_bucket(ex.bucket).owner
        except StowageError:
            owner = ""
        target = self.pending.setdefault((rec.target_bucket, rec.target_prefix), _Target())
        if len(target.lines) >= MAX_PENDING:
            target.dropped += 1
            return
        target.lines.append(record(ex, owner))

    def deliver_soon(self) -> None:
        """Deliver now instead of at the next interval (tests, shutdown)."""
        self._kick.set()

    async def deliver(self) -> int:
        """Write one log object per target with what is pending; returns how many were written."""
        batches, self.pending = self.pending, {}
        written = 0
        for (bucket, prefix), target in batches.items():
            if not target.lines:
                continue
            if target.dropped:
                log.warning("server access log for %s: %d records dropped (over %d pending)", bucket,
                            target.dropped, MAX_PENDING)
            body = ("\n".join(target.lines) + "\n").encode()
            key = object_key(prefix, self.clock())
            try:
                rec = self.store.get_bucket(bucket)
                protection = await self.keys.bucket_default(rec, key)
                await self.store.put_object(bucket, key, body, PutMeta(content_type="text/plain",
                                                                       sse=protection.report()),
                                            size_hint=len(body), encrypt_with=self.keys.new_key(protection))
                written += 1
            except StowageError as exc:
                log.warning("server access log delivery to s3://%s/%s failed: %s (%d records lost)", bucket, key,
                            exc.message, len(target.lines))
        self.delivered_objects += written
        return written

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                with trio.move_on_after(self.interval):
                    await self._kick.wait()
                self._kick = trio.Event()
                await self.deliver()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await self.deliver()
