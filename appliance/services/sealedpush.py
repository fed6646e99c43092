"""SSE-C versions replicated to a Stowage target as ciphertext (appliance/engine/sealed.py):
their customer key is never stored, so they cannot be decrypted here; their segments' stored
blocks move as they are, with each segment's envelope (the data key wrapped by the customer key,
and the key check value), so the replica opens with the same customer key there and nowhere
without it.

Up to replication.multipart_threshold stored bytes: one PutObject carrying the replica version
id (authorized by s3:ReplicateObject on the target) and SEALED_HEADER, base64 of the JSON
description; the body is the segments' stored bytes one after the other, read into memory.
Larger: a multipart upload with one part per segment (a sealed block belongs to its segment: a
segment cannot be cut), each UploadPart describing its segment and streaming its stored bytes
from the shards (memory: a few blocks), completed with the version's description.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any

import trio

from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import ObjectVersion, SegmentRecord
from appliance.engine.sealed import NotSealable, SealedObject, sealed_object

from .s3push import REPLICA_VERSION_HEADER, Endpoint, PushFailed

SEALED_HEADER = "x-stowage-replica-sealed"  # the same name as s3gw/sealedreplica.py's
MAX_DESCRIPTION = 16 * 1024


def _encoded(doc: dict[str, Any]) -> str:
    encoded = base64.b64encode(json.dumps({"v": 1, **doc}, separators=(",", ":")).encode()).decode()
    if len(encoded) > MAX_DESCRIPTION:
        raise NotSealable("the SSE-C object has too many segments to be replicated as ciphertext")
    return encoded


async def put_sealed(store: ObjectStore, ep: Endpoint, dest: str, v: ObjectVersion, headers: dict[str, str],
                     limit: int) -> int:
    """Write the version's ciphertext to a Stowage target; returns the bytes sent. `headers`
    carry the replica version id (REPLICA_VERSION_HEADER)."""
    obj, segs = sealed_object(store, v)
    if obj.stored > limit:
        await _put_parts(store, ep, dest, v, headers, obj, segs)
        return obj.stored
    encoded = _encoded(asdict(obj))
    body = bytearray()
    for s in segs:
        async for block in store.seg.read_stored(s):
            body += block
    await ep.acall("put_object", {**headers, SEALED_HEADER: encoded}, Bucket=dest, Key=v.key, Body=bytes(body),
                   ContentLength=len(body))
    return obj.stored


async def _put_parts(store: ObjectStore, ep: Endpoint, dest: str, v: ObjectVersion, headers: dict[str, str],
                     obj: SealedObject, segs: list[SegmentRecord]) -> None:
    replica = {REPLICA_VERSION_HEADER: headers[REPLICA_VERSION_HEADER]}
    created = {k: val for k, val in headers.items() if k != REPLICA_VERSION_HEADER}
    done = _encoded({k: val for k, val in asdict(obj).items() if k != "segments"})
    upload = (await ep.acall("create_multipart_upload", created, Bucket=dest, Key=v.key))["UploadId"]
    try:
        parts = []
        for n, (desc, rec) in enumerate(zip(obj.segments, segs, strict=True), start=1):
            body = StreamedBody(functools.partial(store.seg.read_stored, rec), trio.lowlevel.current_trio_token())
            try:
                r = await ep.acall("upload_part", {**replica, SEALED_HEADER: _encoded({"segment": asdict(desc)})},
                                   Bucket=dest, Key=v.key, UploadId=upload, PartNumber=n, Body=body,
                                   ContentLength=desc.length)
            finally:
                await body.aclose()
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        await ep.acall("complete_multipart_upload", {**replica, SEALED_HEADER: done}, Bucket=dest, Key=v.key,
                       UploadId=upload, MultipartUpload={"Parts": parts})
    except BaseException:
        with trio.CancelScope(shield=True), trio.move_on_after(30), contextlib.suppress(PushFailed):
            await ep.acall("abort_multipart_upload", Bucket=dest, Key=v.key, UploadId=upload)
        raise


class StreamedBody(io.RawIOBase):
    """A request body (file-like, read by botocore in its worker thread) pulled from an async
    stream of the trio run one piece at a time: the body is never all in memory. Seeking to the
    start opens the stream again (a signer that hashes the payload, over plain HTTP, reads it
    twice)."""

    def __init__(self, open_stream: Callable[[], AsyncIterator[bytes]], token: trio.lowlevel.TrioToken) -> None:
        super().__init__()
        self._open, self._token = open_stream, token
        self._stream: AsyncIterator[bytes] | None = None
        self._pending = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) == (self._pos, io.SEEK_SET) or (offset, whence) == (0, io.SEEK_CUR):
            return self._pos
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("a streamed body seeks back to its start only")
        trio.from_thread.run(self._close, trio_token=self._token)
        self._pending, self._pos = b"", 0
        return 0

    async def _next(self) -> bytes:
        if self._stream is None:
            self._stream = self._open()
        async for piece in self._stream:
            if piece:  # b"" is the end for readinto
                return piece
        return b""

    async def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(RuntimeError):  # still running if a call was abandoned
                await stream.aclose()  # type: ignore[attr-defined]

    def readinto(self, buf: Any) -> int:
        if not self._pending:
            self._pending = trio.from_thread.run(self._next, trio_token=self._token)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n

    async def aclose(self) -> None:
        await self._close()
