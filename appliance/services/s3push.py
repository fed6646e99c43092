"""Writing replicas to a remote S3 endpoint with botocore (SigV4; no protocol of our own).

Calls are blocking botocore calls run in worker threads. What S3's API has no parameter for —
the version id a Stowage target keeps, the replica marker — travels as extra signed headers,
added just before signing (`before-sign`), taken from a thread-local set for the call.

Memory: a body is sent from memory one piece at a time: an object up to
replication.multipart_threshold in one PUT, a larger one as a multipart upload of parts of
replication.part_size (or of the source's own part sizes, so that the replica has the same
ETag, when those are not larger than MAX_KEPT_PART), read from the shards one part at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import trio
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

REPLICA_VERSION_HEADER = "x-stowage-replica-version-id"
MAX_KEPT_PART = 64 << 20
# Errors a later attempt may not meet (the endpoint or the network is down, busy or failing).
TRANSIENT_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
                             "ThrottlingException", "RequestTimeTooSkewed", "503", "500", "502", "504"})


class PushFailed(Exception):
    """A replica could not be written. `transient`: a later attempt may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass
class Endpoint:
    """A remote S3 endpoint with the credentials to write to it."""

    url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    tls_verify: bool = True
    pool: int = 8
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _client: Any = field(default=None, repr=False)
    _client_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self) -> Any:
        # One client, made once: lanes call this from several threads at once, and botocore's
        # client creation is not thread-safe (a race here is the suspected cause of a run in
        # which every later request to one target failed SignatureDoesNotMatch).
        with self._client_lock:
            return self._make_client()

    def _make_client(self) -> Any:
        if self._client is None:
            session = botocore.session.Session()
            self._client = session.create_client(
                "s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key, region_name=self.region, verify=self.tls_verify,
                config=BotoConfig(s3={"addressing_style": "path", "payload_signing_enabled": False},
                                  retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                  read_timeout=120, max_pool_connections=self.pool,
                                  request_checksum_calculation="when_required",
                                  response_checksum_validation="when_required"))
            self._client.meta.events.register("before-sign.s3", self._add_headers)
        return self._client

    def _add_headers(self, request: Any, **_: Any) -> None:
        for k, v in (getattr(self._local, "headers", None) or {}).items():
            request.headers[k] = v

    def call(self, op: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        """One API call (blocking); failures become PushFailed."""
        self._local.headers = headers or {}
        try:
            result: dict[str, Any] = getattr(self.client(), op)(**params)
            return result
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise PushFailed(f"{op}: {code or status}: {err.get('Message', '')}",
                             code in TRANSIENT_CODES or status >= 500) from None
        except BotoCoreError as exc:  # connection refused, timeouts, TLS failures
            raise PushFailed(f"{op}: {exc}", True) from None
        finally:
            self._local.headers = {}

    async def acall(self, op: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        # abandoned on cancellation (the daemon stopping): the call touches no local state
        return await trio.to_thread.run_sync(lambda: self.call(op, headers, **params), abandon_on_cancel=True)


async def read_exactly(stream: AsyncIterator[bytes | bytearray], n: int, pending: bytearray) -> bytes:
    """The next n bytes of the stream (fewer at its end), `pending` holding what was read beyond."""
    while len(pending) < n:
        try:
            pending += await stream.__anext__()
        except StopAsyncIteration:
            break
    out = bytes(pending[:n])
    del pending[:n]
    return out


def part_plan(size: int, source_parts: list[int], part_size: int) -> list[int]:
    """The part sizes of a multipart replica: the source's when it has parts no larger than
    MAX_KEPT_PART (same boundaries, same ETag), else part_size pieces."""
    if source_parts and sum(source_parts) == size and max(source_parts) <= MAX_KEPT_PART:
        return list(source_parts)
    sizes = [part_size] * (size // part_size)
    if size % part_size or not sizes:
        sizes.append(size % part_size)
    return sizes


async def put_streamed(ep: Endpoint, bucket: str, key: str, size: int, body: AsyncIterator[bytes | bytearray],
                       headers: dict[str, str], complete_headers: dict[str, str], *, threshold: int,
                       part_size: int, source_parts: list[int]) -> dict[str, Any]:
    """Write one object: a PUT, or a multipart upload for more than `threshold` bytes (or a
    multipart source), its parts read from `body` one at a time. `headers` go with the PUT or
    the CreateMultipartUpload, `complete_headers` with the PUT or the CompleteMultipartUpload."""
    pending = bytearray()
    if size <= threshold and not (source_parts and len(source_parts) > 1):
        data = await read_exactly(body, size, pending)
        return await ep.acall("put_object", {**headers, **complete_headers}, Bucket=bucket, Key=key, Body=data,
                              ContentLength=len(data))
    upload = (await ep.acall("create_multipart_upload", headers, Bucket=bucket, Key=key))["UploadId"]
    try:
        parts = []
        for n, psize in enumerate(part_plan(size, source_parts, part_size), start=1):
            data = await read_exactly(body, psize, pending)
            r = await ep.acall("upload_part", Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=data,
                               ContentLength=len(data))
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        return await ep.acall("complete_multipart_upload", complete_headers, Bucket=bucket, Key=key, UploadId=upload,
                              MultipartUpload={"Parts": parts})
    except BaseException:
        with trio.CancelScope(shield=True), trio.move_on_after(30), contextlib.suppress(PushFailed):
            await ep.acall("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload)
        raise
